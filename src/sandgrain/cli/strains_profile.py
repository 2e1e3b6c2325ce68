"""``sandgrain strains profile``: genomes that match a mutation profile, where and when.

Registered on the ``strains`` group through the domain's ``cli_extensions``.
"""

from __future__ import annotations

import json
import sys

import typer

from ..errors import InputError
from .strains_paths import open_sources

__all__ = ["profile_cmd"]


def profile_cmd(
    ctx: typer.Context,
    expression: str = typer.Argument(
        ...,
        help="The profile, e.g. 'A23403G & C14408T & !G25563T' or 'S:D614G and not "
        "del:11288-11296' (& | ! or and/or/not, parentheses; S:* any change in S; "
        "21563-25384 any event in a region).",
        metavar="EXPR",
    ),
    collection: list[str] = typer.Option(
        ...,
        "--collection",
        "-c",
        help="A collection to search: NAME, or STORE#NAME for one in another store. Repeat to "
        "search several.",
        metavar="[STORE#]NAME",
    ),
    by: list[str] = typer.Option(
        None,
        "--by",
        help="Break the matches down by week, month, country, region or division (repeat; "
        "default: month and country).",
        metavar="GROUP",
    ),
    similar: bool = typer.Option(
        False,
        "--similar",
        help="Also the subsets of the profile's mutations shared by the most genomes "
        "(PathsBeacon's similar search; at most 16 mutations).",
    ),
    qc: str = typer.Option(
        "good,mediocre,bad",
        "--qc",
        help="Search only genomes of these QC statuses (comma-separated).",
        metavar="STATUSES",
    ),
    fmt: str = typer.Option(
        "json",
        "--format",
        help="json (one object) or tsv (one row per group).",
        metavar="[json|tsv]",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Count the genomes that match a mutation profile, with breakdowns and a weekly histogram.

    Missing data is honest: a genome that does not cover a mutation's position is unknown for
    it (three-valued logic), and frequency = matching / (matching + not matching). JSON:
    {"expression", "mutations", "count", "unknown", "searched", "frequency", "collections",
    "by": {GROUP: [...]}, "histogram": [...], "similar"?, "provenance"}. TSV: one row per
    breakdown group (the whole search first, then each --by group, then each week).
    """
    from ..strains.profile import profile_search
    from .progress import task_progress

    settings = ctx.obj
    if fmt not in ("json", "tsv"):
        raise InputError(f"--format is json or tsv, not {fmt!r}")
    colls = open_sources(settings, list(collection))
    groups = [g.strip() for item in (by or ["month", "country"]) for g in item.split(",")]
    statuses = [s.strip() for s in qc.split(",") if s.strip()]
    with task_progress("profile search", quiet, unit="genomes") as progress:
        answer = profile_search(
            colls,
            expression,
            by=[g for g in groups if g],
            similar=similar,
            qc=statuses,
            executor=settings.executor,
            retries=settings.retries,
            progress=progress,
        )
    write = sys.stdout.write
    if fmt == "json":
        write(json.dumps(answer) + "\n")
        return
    cols = ("count", "unknown", "searched", "frequency")
    write("\t".join(("group", "value", *cols)) + "\n")

    def row(group: str, value: str, d: dict) -> None:
        freq = "" if d["frequency"] is None else f"{d['frequency']:.6g}"
        write(f"{group}\t{value}\t{d['count']}\t{d['unknown']}\t{d['searched']}\t{freq}\n")

    row("all", answer["expression"], answer)
    for c in answer["collections"]:
        row("collection", c["collection"], c)
    for name, items in answer["by"].items():
        for d in items:
            row(name, d[name], d)
    for d in answer["histogram"]:
        row("histogram", d["week"], d)
    for s in answer.get("similar", {}).get("subsets", []):
        for b in s["best"]:
            d = {"count": b["genomes"], "unknown": "", "searched": b["covered"],
                 "frequency": b["frequency"]}  # fmt: skip
            row(f"similar:{s['size']}", ",".join(b["mutations"]), d)
