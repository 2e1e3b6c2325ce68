"""``sandgrain store …``: look after the store itself (what killed runs left behind)."""

from __future__ import annotations

import json
import sys

import typer

from ..errors import InputError
from ..storage import ABANDONED_AFTER_S, GcReport, Store

app = typer.Typer(help="Look after the store: what killed runs left behind.", no_args_is_help=True)


@app.command("gc")
def gc(
    ctx: typer.Context,
    delete: bool = typer.Option(False, "--delete", help="Remove what is found (default: list)."),
    older_than: float = typer.Option(
        ABANDONED_AFTER_S / 3600,
        "--older-than",
        help="Only what was started and last written more than this many hours ago.",
        metavar="HOURS",
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """List (or with --delete, remove) partial dataset versions and temporary files that
    killed runs left: versions no manifest names, interrupted writes, scratch objects."""
    if older_than < 0:
        raise InputError(f"--older-than must be 0 or more hours, not {older_than:g}")
    report = Store.from_settings(ctx.obj).gc(older_than * 3600, delete=delete)
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return
    if report.items:
        from rich.console import Console
        from rich.table import Table

        table = Table("what", "dataset", "key", "files", "size", "age", box=None)
        for item in report.items:
            table.add_row(
                item.what, item.dataset or "-", item.key, f"{item.files:,}",
                size_text(item.bytes), age_text(item.age_s),
            )  # fmt: skip
        # piped output is never cut to 80 columns
        out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 250)
        out.print(table)
    typer.echo(summary(report), err=True)


def summary(report: GcReport) -> str:
    """One line: what was (or would be) freed, in how many datasets."""
    hours = f"{report.older_than_s / 3600:g} h"
    if not report.items:
        return f"nothing to free in {report.store} (nothing abandoned older than {hours})"
    kinds: dict[str, int] = {}
    for item in report.items:
        kinds[item.what] = kinds.get(item.what, 0) + 1
    what = " and ".join(f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in kinds.items())
    names = [name or "(store)" for name in report.by_dataset()]
    where = ", ".join(names[:5]) + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
    if report.deleted:
        return f"freed {size_text(report.bytes)}: removed {what} ({where})"
    return (
        f"would free {size_text(report.bytes)}: {what} ({where}), older than {hours} "
        "(a dry run: add --delete to remove them)"
    )


def size_text(n: int) -> str:
    """Bytes in decimal units, as ``du --si`` prints them."""
    if n < 1000:
        return f"{n:,} B"
    value = n / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"


def age_text(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"
