"""Options that ``sandgrain association test`` and ``forest`` share, declared once.

Each is an ``Annotated`` type carrying its ``typer.Option``; a command gives the default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "Beacon",
    "Collection",
    "Features",
    "MinCount",
    "OutcomeColumn",
    "OutcomeThreshold",
    "Phenotypes",
    "Qc",
]

Beacon = Annotated[
    str | None,
    typer.Option(
        "--beacon",
        help="Genotypes of a Beacon dataset in the store (read directly, as the operator).",
        metavar="DATASET",
    ),
]
Phenotypes = Annotated[
    Path | None,
    typer.Option("--phenotypes", help="CSV/TSV of traits by sample id.", metavar="FILE"),
]
Collection = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="Instead of genotypes and --phenotypes: a strains collection's mutations against "
        "a trait of its metadata ('outcome': the coded patient status).",
        metavar="NAME",
    ),
]
OutcomeColumn = Annotated[
    str | None,
    typer.Option(
        "--outcome-column",
        help="With --collection: the free-text patient status column to code (default: the "
        "status coded when the collection was added, else a 'Patient status' column).",
        metavar="COLUMN",
    ),
]
OutcomeThreshold = Annotated[
    int,
    typer.Option(
        "--outcome-threshold",
        help="With --collection: WHO clinical progression score at or above which the "
        "outcome is 1 (4 hospitalised, 6 severe, 10 dead).",
        metavar="SCORE",
    ),
]
Features = Annotated[
    str,
    typer.Option(
        "--features",
        help="With --collection: kinds of mutation (substitutions, deletions, insertions, aa).",
        metavar="KINDS",
    ),
]
MinCount = Annotated[
    int,
    typer.Option(
        "--min-count",
        help="With --collection: fewest genomes carrying a mutation, and not carrying it.",
        metavar="N",
    ),
]
Qc = Annotated[
    str,
    typer.Option(
        "--qc", help="With --collection: QC statuses of the genomes analysed.", metavar="STATUSES"
    ),
]
