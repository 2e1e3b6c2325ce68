"""``sandgrain strains …``: genome collections, their mutations and QC.

The k-mer map (``strains map``), ``drift`` and ``simulate`` live in :mod:`sandgrain.cli.strains_map`
(the map sub-app is mounted here; the other two come through the domain's ``cli_extensions``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..errors import InputError
from ..storage import Store
from .progress import task_progress
from .strains_map import app as map_app

app = typer.Typer(
    help="Pathogen genome collections: add genomes, list their mutations and QC.",
    no_args_is_help=True,
)
app.add_typer(map_app, name="map")  # the k-mer map's commands (sandgrain.cli.strains_map)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 250)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _store(ctx: typer.Context) -> Store:
    return Store.from_settings(ctx.obj)


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(
        ..., "--collection", "-c", help="The collection's name (created if new)."
    ),
    reference: str = typer.Option(
        ...,
        "--reference",
        help="Reference genome in the genome store, e.g. MN908947.",
        metavar="NAME",
    ),
    fasta: Path = typer.Option(..., "--fasta", help="Consensus genomes (FASTA, plain or gzip)."),
    metadata: Path = typer.Option(None, "--metadata", help="Metadata table (TSV or CSV)."),
    id_column: str = typer.Option(
        "strain", "--id-column", help="Metadata column of genome ids.", metavar="COLUMN"
    ),
    date_column: str = typer.Option(
        "date", "--date-column", help="Metadata column of dates.", metavar="COLUMN"
    ),
    on_duplicate: str = typer.Option(
        "refuse",
        "--on-duplicate",
        help="An id already present: refuse (default) or replace.",
        metavar="[refuse|replace]",
    ),
    batch: int = typer.Option(
        None,
        "--batch",
        help="Genomes per fan-out task (default 500, the first tasks 50, 100, 200 so that every "
        "worker starts at once).",
        metavar="N",
    ),
    clinical_columns: list[str] = typer.Option(
        [],
        "--clinical-column",
        metavar="COLUMN",
        help="Free-text metadata column (symptoms, notes) to code into HPO terms: adds "
        "COLUMN_hpo and COLUMN_hpo_absent. Repeatable.",
    ),
    status_column: str = typer.Option(
        None,
        "--status-column",
        metavar="COLUMN",
        help="Free-text patient status column (GISAID's): adds outcome_who (WHO clinical "
        "progression scale score or low-high) and outcome_status (known/unknown).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Add genomes to a collection: align each to the reference, call mutations, run QC.

    The collection is published as a new version atomically; genomes without metadata and
    metadata rows without a genome are reported (stderr) and kept in the provenance.
    """
    from ..strains.collection import add_genomes

    settings = ctx.obj
    with task_progress(f"add to {collection}", quiet, unit="genomes") as progress:
        report = add_genomes(
            _store(ctx),
            collection,
            reference=reference,
            fasta=fasta,
            metadata=metadata,
            id_column=id_column,
            date_column=date_column,
            on_duplicate=on_duplicate,
            batch=batch,
            executor=settings.executor,
            retries=settings.retries,
            progress=progress,
            clinical_columns=clinical_columns,
            status_column=status_column,
        )
    r = report
    if r.n_genomes_without_metadata:
        err.print(
            f"{r.n_genomes_without_metadata:,} genomes without metadata: "
            f"{', '.join(r.genomes_without_metadata[:5])}"
            + (" …" if r.n_genomes_without_metadata > 5 else "")
        )
    if r.n_metadata_without_genome:
        err.print(
            f"{r.n_metadata_without_genome:,} metadata rows without a genome: "
            f"{', '.join(r.metadata_without_genome[:5])}"
            + (" …" if r.n_metadata_without_genome > 5 else "")
        )
    if as_json:
        sys.stdout.write(json.dumps(r.to_dict(), indent=1) + "\n")
        return
    s = r.statuses
    out.print(
        f"collection {collection}: {r.added:,} genomes added, {r.replaced:,} replaced, "
        f"{r.total:,} in all (QC: {s.get('good', 0):,} good, {s.get('mediocre', 0):,} mediocre, "
        f"{s.get('bad', 0):,} bad)"
    )


@app.command("list")
def list_cmd(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")
) -> None:
    """The collections in the store."""
    from ..strains.collection import list_collections

    rows = [c.summary() for c in list_collections(_store(ctx))]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    if not rows:
        out.print("no collections (add genomes with `sandgrain strains add`)")
        return
    table = Table(
        "collection", "genomes", "reference", "good", "mediocre", "bad", "created", box=None
    )
    for r in rows:
        st = r["statuses"]
        table.add_row(
            r["collection"],
            f"{r['genomes']:,}",
            r["reference"] or "",
            str(st.get("good", 0)),
            str(st.get("mediocre", 0)),
            str(st.get("bad", 0)),
            r["created"] or "",
        )
    out.print(table)


@app.command("mutations")
def mutations_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-c", help="The collection's name."),
    strain: list[str] = typer.Option(
        None, "--strain", help="Only this genome (repeatable).", metavar="ID"
    ),
    fmt: str = typer.Option(
        "json", "--format", help="json (one object per line) or tsv.", metavar="[json|tsv]"
    ),
) -> None:
    """Each genome's mutations and QC: substitutions, deletions, insertions, missing ranges,
    amino-acid changes, frame shifts, stop codons (Nextclade's notation, 1-based)."""
    from ..strains.collection import Collection
    from ..strains.mutations import LIST_FIELDS

    if fmt not in ("json", "tsv"):
        raise InputError(f"--format is json or tsv, not {fmt!r}")
    coll = Collection.open(_store(ctx), collection)
    wanted = list(strain) if strain else None
    seen: set[str] = set()
    write = sys.stdout.write
    if fmt == "tsv":
        write("\t".join(("strain", *LIST_FIELDS, "qc_status", "qc_score")) + "\n")
    for batch in coll.iter_calls(batch=1000, strains=wanted):
        for c in batch:
            seen.add(c.strain)
            if fmt == "json":
                row = {
                    "strain": c.strain,
                    **{f: getattr(c, f) for f in LIST_FIELDS},
                    "error": c.error,
                    "qc": c.qc,
                }
                write(json.dumps(row) + "\n")
            else:
                write(
                    "\t".join(
                        (
                            c.strain,
                            *(",".join(getattr(c, f)) for f in LIST_FIELDS),
                            str(c.qc.get("status", "")),
                            str(c.qc.get("score", "")),
                        )
                    )
                    + "\n"
                )
    if wanted:
        missing = [s for s in wanted if s not in seen]
        if missing:
            raise InputError(f"no genome {', '.join(map(repr, missing))} in {collection!r}")


@app.command("qc")
def qc_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(..., "--collection", "-c", help="The collection's name."),
    status: str = typer.Option(
        None,
        "--status",
        "--qc",
        help="Only genomes of these QC statuses (comma-separated), as --qc of the other strains "
        "commands.",
        metavar="STATUSES",
    ),
) -> None:
    """The QC table: status (good/mediocre/bad), overall score, each rule's score, reasons."""
    from ..strains.collection import Collection
    from ..strains.qc import STATUSES

    wanted = None
    if status is not None:
        wanted = {s.strip() for s in status.split(",") if s.strip()}
        if not wanted or not wanted <= set(STATUSES):
            raise InputError(
                f"--status takes statuses from {', '.join(STATUSES)} (comma-separated), "
                f"not {status!r}"
            )
    table = Collection.open(_store(ctx), collection).qc_table()
    cols = table.column_names
    sys.stdout.write("\t".join(cols) + "\n")
    for row in table.to_pylist():
        if wanted is not None and row["status"] not in wanted:
            continue
        sys.stdout.write("\t".join("" if row[c] is None else str(row[c]) for c in cols) + "\n")
