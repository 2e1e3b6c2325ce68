"""``sandgrain serve`` and ``sandgrain demo``: the web app and its demo data."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ..errors import SandgrainError
from ..genome.store import add_genome, demo_genomes, open_genome
from ..provenance import sha256_file
from ..storage import Store
from .progress import byte_progress, task_progress


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Start the web app and REST API."""
    import uvicorn

    from ..web.app import create_app

    typer.echo(f"sandgrain: serving store {ctx.obj.store} on http://{host}:{port}", err=True)
    uvicorn.run(create_app(ctx.obj), host=host, port=port, log_level="info")


def demo(
    ctx: typer.Context,
    data: str = typer.Option(
        os.environ.get("SANDGRAIN_TEST_DATA", "../shared/data"),
        "--data",
        help="The shared data folder (env SANDGRAIN_TEST_DATA).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Import the demo genomes (yeast R64 with SGD genes, SARS-CoV-2) and the demo Beacon datasets
    (1000 Genomes slices, GRCh37 genes) when the data folder exists.

    Genomes already imported from the same files (same SHA-256) are left as they are.
    """
    if not Path(data).is_dir():
        typer.echo(f"sandgrain: no demo data at {data}; starting with an empty store", err=True)
        return
    store = Store.from_settings(ctx.obj)
    for d in demo_genomes(data):
        if _up_to_date(store, d):
            typer.echo(f"demo genome {d.name} is up to date", err=True)
            continue
        with byte_progress(quiet) as progress:
            genome = add_genome(
                store,
                d.name,
                d.fasta,
                annotation=d.annotation,
                aliases=d.aliases,
                assembly=d.assembly,
                replace=True,
                progress=progress,
            )
        typer.echo(f"imported demo genome {genome.name}: {genome.meta['genes']:,} genes", err=True)
    _index_demo(store, [d.name for d in demo_genomes(data)], ctx.obj, quiet)
    _beacon_demo(store, Path(data), ctx.obj, quiet)


#: Demo Beacon datasets: id → (file under the data folder, description).
BEACON_DEMO = {
    "1000g-chr1": (
        "variants/1000g-chr1-10177-174799-2504samples.annotated.vcf.gz",
        "1000 Genomes phase 3, 2,504 samples, chr1:10,177-174,799 (GRCh37), SnpEff-annotated",
    ),
    "1000g-chr22": (
        "variants/1000g-chr22-20-21M-191samples.vcf",
        "1000 Genomes, 191 samples, chr22:20-21 Mb (GRCh37)",
    ),
}


def _beacon_demo(store: Store, data: Path, settings, quiet: bool) -> None:
    """The demo Beacon datasets (public) and the GRCh37 gene table for geneId queries."""
    from ..beacon.genes import GENES_KIND, import_genes
    from ..beacon.ingest import KIND, ingest

    genes = data / "genes/human-grch37-gene-coordinates.tsv"
    if genes.exists() and not store.has_dataset(GENES_KIND, "GRCh37"):
        n = import_genes(store, "GRCh37", genes, genes.read_bytes())
        typer.echo(f"imported {n:,} GRCh37 genes for Beacon geneId queries", err=True)
    for ident, (file, description) in BEACON_DEMO.items():
        path = data / file
        if not path.exists():
            continue
        if store.has_dataset(KIND, ident):
            inputs = store.open_dataset(KIND, ident).manifest["provenance"].get("inputs", [])
            if inputs and inputs[0].get("sha256") == sha256_file(path):
                typer.echo(f"demo Beacon dataset {ident} is up to date", err=True)
                continue
        with task_progress(f"ingest {ident}", quiet) as progress:
            ds = ingest(
                store, ident, path, assembly="GRCh37", description=description,
                executor=settings.executor, progress=progress,
            )  # fmt: skip
        typer.echo(
            f"ingested demo Beacon dataset {ident}: {ds.meta['n_variants']:,} variants", err=True
        )


def _index_demo(store: Store, names: list[str], settings, quiet: bool) -> None:
    """The SpCas9 site index of each demo genome, so guide design works at once."""
    from ..guides.nucleases import get_nuclease
    from ..guides.siteindex import SiteFamily, build_index, open_index

    family = SiteFamily.of(get_nuclease("SpCas9"))
    for genome in (open_genome(store, name) for name in names):
        try:
            open_index(genome, family)
            continue
        except SandgrainError:
            pass
        with task_progress(f"index {genome.name} for SpCas9", quiet) as progress:
            build_index(genome, family, executor=settings.executor, progress=progress)
        typer.echo(f"indexed demo genome {genome.name} for SpCas9", err=True)


def _up_to_date(store: Store, d) -> bool:
    if not store.has_dataset("genomes", d.name):
        return False
    inputs = open_genome(store, d.name).dataset.manifest["provenance"].get("inputs", [])
    have = {i.get("role"): i.get("sha256") for i in inputs}
    want = {"fasta": sha256_file(d.fasta), "annotation": d.annotation and sha256_file(d.annotation)}
    return all(have.get(k) == v for k, v in want.items() if v)
