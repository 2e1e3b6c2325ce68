"""``sandgrain strains simulate-outcomes``: patient statuses with planted causal mutations and
confounding for a synthetic collection (:mod:`sandgrain.strains.simulate_outcomes`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["simulate_outcomes_cmd"]


def simulate_outcomes_cmd(
    ctx: typer.Context,
    folder: Path = typer.Option(
        ..., "--simulation", "-s", help="A folder `strains simulate` wrote.", metavar="DIR"
    ),
    reference: str = typer.Option(
        "MN908947",
        "--reference",
        help="The reference it was simulated from: a FASTA file or a genome of the store "
        "(MN908947: the store's SARS-CoV-2 genome, whatever its name).",
        metavar="FASTA|NAME",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same outcomes)."),
    causal: int = typer.Option(2, "--causal", min=0, help="Planted causal substitutions."),
    log_or: float = typer.Option(
        2.0, "--log-or", help="Log odds ratio of severe outcome per causal mutation."
    ),
    causal_freq: float = typer.Option(
        0.25, "--causal-freq", help="Share of genomes given each causal mutation."
    ),
    country_log_or: float = typer.Option(
        2.5, "--country-log-or", help="Log odds ratio of the confounding country."
    ),
    per_year: float = typer.Option(1.0, "--per-year", help="Log odds ratio per year of date."),
    column: str = typer.Option(
        "Patient status", "--column", help="Name of the status column written.", metavar="NAME"
    ),
) -> None:
    """Plant causal substitutions in a synthetic collection and write a patient status for each
    genome, with a lineage confounded by country and date; prints the truth (outcomes.json)."""
    from ..strains.simulate_outcomes import OutcomeParams, simulate_outcomes
    from .strains_map import reference_sequence

    sequence, _ = reference_sequence(ctx, reference)
    params = OutcomeParams(
        seed=seed, causal=causal, log_or=log_or, causal_freq=causal_freq,
        country_log_or=country_log_or, per_year=per_year, column=column,
    )  # fmt: skip
    summary = simulate_outcomes(folder, sequence, params)
    shown = {k: v for k, v in summary.items() if k != "provenance"}
    typer.echo(json.dumps(shown, indent=1))
