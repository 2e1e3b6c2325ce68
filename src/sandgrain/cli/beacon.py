"""``sandgrain beacon …``: ingest variant datasets, manage consent and gene tables."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..beacon import consent
from ..beacon.ingest import ACCESS_TIERS, DEFAULT_WINDOW_BP, KIND, ingest
from ..beacon.store import BeaconCatalog
from ..errors import InputError, NotFoundError
from ..genome.gene_tables import import_gene_table
from ..storage import Store
from .beacon_dev_issuer import app as dev_issuer_app
from .progress import task_progress

app = typer.Typer(
    help="A GA4GH Beacon v2: ingest VCFs as datasets, revoke consent, gene tables.",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 250)


def _store(ctx: typer.Context) -> Store:
    return Store.from_settings(ctx.obj)


def _audit(ctx: typer.Context, kind: str, dataset: str, individual: str, reason: str) -> None:
    from ..beacon.audit import AuditLog
    from ..beacon.policy import SecurityConfig

    config = SecurityConfig.from_settings(ctx.obj)
    AuditLog.from_config(config, ctx.obj).record(
        {
            "kind": kind,
            "subject": f"cli:{_user()}",
            "endpoint": f"sandgrain beacon {kind}",
            "method": "CLI",
            "query": {"dataset": dataset, "individual": individual, "reason": reason},
            "datasets": [dataset],
            "outcome": "ok",
        }
    )


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in some containers (no passwd entry)
        return "unknown"


@app.command("ingest")
def ingest_cmd(
    ctx: typer.Context,
    dataset: str = typer.Option(
        ..., "--dataset", help="Dataset id, e.g. 1000g-chr1.", metavar="ID"
    ),
    vcf: Path = typer.Option(
        ..., "--vcf", help="VCF or BCF: plain, gzip or bgzip (an index beside it is used)."
    ),
    assembly: str = typer.Option(
        ..., "--assembly", help="Reference assembly, e.g. GRCh37.", metavar="NAME"
    ),
    individuals: Path = typer.Option(
        None,
        "--individuals",
        help="Sample metadata (CSV, TSV or JSON): id, sex, ethnicity, geographicOrigin, diseases, "
        "phenotypicFeatures as ontology terms (HP:0001250|Seizure).",
    ),
    phenotype_text_columns: list[str] = typer.Option(
        [],
        "--phenotype-text-column",
        metavar="COLUMN",
        help="A free-text column of --individuals (symptoms, notes) coded into HPO "
        "phenotypicFeatures; negated findings are kept as excluded. Repeatable.",
    ),
    access: str = typer.Option(
        None,
        "--access",
        help=f"Who may query it: {', '.join(ACCESS_TIERS)} [default: the tier of the dataset "
        "it replaces, public for a new one].",
        metavar="[public|registered|controlled]",
    ),
    name: str = typer.Option(None, "--name", help="Human-readable dataset name.", metavar="TEXT"),
    description: str = typer.Option(
        None, "--description", help="Dataset description.", metavar="TEXT"
    ),
    window: int = typer.Option(
        DEFAULT_WINDOW_BP, "--window", help="Genomic window of one partition and one task (bp)."
    ),
    no_ref_check: bool = typer.Option(
        False, "--no-ref-check", help="Do not compare REF with a stored genome of the assembly."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Ingest a VCF/BCF as a Beacon dataset (replaces a dataset of that id atomically).

    Multi-allelic records are split, alleles kept in minimal representation; REF is checked
    against a genome of the same assembly in the store (sandgrain genome add … --assembly).
    """
    settings = ctx.obj
    with task_progress(f"ingest {dataset}", quiet, unit="bases") as progress:
        ds = ingest(
            _store(ctx),
            dataset,
            vcf,
            assembly=assembly,
            individuals=individuals,
            access=access,
            name=name,
            description=description,
            executor=settings.executor,
            retries=settings.retries,
            window_bp=window,
            check_ref=not no_ref_check,
            progress=progress,
            phenotype_text_columns=phenotype_text_columns,
        )
    m = ds.meta
    checked = (
        f"REF checked against genome {m['reference_genome']} ({m['ref_checked']:,} records)"
        if m.get("reference_genome")
        else f"REF not checked (no {m['assembly']} genome in the store)"
    )
    out.print(
        f"dataset {m['id']}: {m['n_variants']:,} variants carried by its individuals "
        f"({m.get('n_rows', m['n_variants']):,} alleles from {m['n_records']:,} records), "
        f"{m['n_individuals']:,} individuals, {len(m['partitions'])} partitions, "
        f"access {m['access']}; {checked}"
    )


@app.command("list")
def list_cmd(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")
) -> None:
    """The datasets in the store."""
    catalog = BeaconCatalog([_store(ctx)])
    rows = [d.summary() for d in catalog.datasets()]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print("no Beacon datasets (add one with `sandgrain beacon ingest`)")
        return
    table = Table("dataset", "assembly", "access", "variants", "individuals", "created", box=None)
    for r in rows:
        table.add_row(
            r["id"], r["assembly"], r["access"], f"{r['n_variants']:,}",
            f"{r['n_individuals']:,}", r["created"] or "",
        )  # fmt: skip
    out.print(table)


@app.command("remove")
def remove_cmd(ctx: typer.Context, dataset: str = typer.Argument(..., help="Dataset id.")) -> None:
    """Remove a dataset (and its consent records)."""
    store = _store(ctx)
    store.delete_dataset(KIND, dataset)
    consent.forget(store, dataset)
    out.print(f"removed dataset {dataset}")


@app.command("revoke")
def revoke_cmd(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset", help="Dataset id.", metavar="ID"),
    individual: str = typer.Option(
        ..., "--individual", help="Individual (sample) id.", metavar="ID"
    ),
    reason: str = typer.Option("", "--reason", help="Why (kept in the audit log).", metavar="TEXT"),
) -> None:
    """Remove one participant from every answer of a dataset at once (dynamic consent)."""
    consent.revoke(_store(ctx), dataset, individual, by=f"cli:{_user()}", reason=reason)
    _audit(ctx, "revoke", dataset, individual, reason)
    out.print(f"revoked {individual} from {dataset}: no answer includes them from now on")


@app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset", help="Dataset id.", metavar="ID"),
    individual: str = typer.Option(
        ..., "--individual", help="Individual (sample) id.", metavar="ID"
    ),
    reason: str = typer.Option("", "--reason", help="Why (kept in the audit log).", metavar="TEXT"),
) -> None:
    """Bring a revoked participant back into the answers of a dataset."""
    if not consent.restore(_store(ctx), dataset, individual):
        raise NotFoundError(f"{individual} is not revoked in {dataset}")
    _audit(ctx, "restore", dataset, individual, reason)
    out.print(f"restored {individual} in {dataset}")


@app.command("genes")
def genes_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="Gene coordinates: 'chrom start0 end symbol' (BED-like), GTF or GFF3."
    ),
    assembly: str = typer.Option(
        ..., "--assembly", help="Assembly of the coordinates.", metavar="NAME"
    ),
) -> None:
    """Import the gene table geneId queries of an assembly use."""
    if not file.is_file():
        raise NotFoundError(f"no such file: {file}")
    data = file.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{file.name}: damaged gzip data ({exc})") from None
    n = import_gene_table(_store(ctx), assembly, file, data)
    out.print(f"{n:,} genes for {assembly}")


audit_app = typer.Typer(help="The Beacon's audit log: check its hash chain.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(dev_issuer_app, name="dev-issuer")


@audit_app.command("verify")
def audit_verify_cmd(ctx: typer.Context) -> None:
    """Check the audit log's hash chain from its first row: exit 0 and print the head hash
    (record it elsewhere to detect rows cut from the end), or exit 1 naming the first row that
    was changed, inserted, or follows a deleted one."""
    from ..beacon.audit import AuditLog
    from ..beacon.errors import AuditChainBrokenError
    from ..beacon.policy import SecurityConfig

    log = AuditLog.from_config(SecurityConfig.from_settings(ctx.obj), ctx.obj)
    try:
        report = log.verify()
    finally:
        log.close()
    if not report.ok:
        raise AuditChainBrokenError(
            f"audit log {log.database}: row {report.first_bad}: {report.reason}; "
            f"the {report.rows:,} rows before it are intact"
        )
    out.print(
        f"audit log {log.database}: {report.rows:,} rows, hash chain intact; head {report.head}"
    )
