"""The Beacon's demo step: public demo datasets (1000 Genomes slices) and the GRCh37 gene table
for ``geneId`` queries, when the shared data folder has them.

A dataset already ingested from the same file (same SHA-256) is left as it is.
"""

from __future__ import annotations

from ..genome import gene_tables
from ..provenance import sha256_file
from ..registry import DemoContext
from .ingest import KIND, ingest

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

#: The GRCh37 gene coordinates under the data folder.
GENES_FILE = "genes/human-grch37-gene-coordinates.tsv"


def demo(ctx: DemoContext) -> None:
    """Import the gene table and ingest each demo dataset that is missing or out of date."""
    store = ctx.store
    genes = ctx.data / GENES_FILE
    if genes.exists() and not store.has_dataset(gene_tables.KIND, "GRCh37"):
        n = gene_tables.import_gene_table(store, "GRCh37", genes, genes.read_bytes())
        ctx.echo(f"imported {n:,} GRCh37 genes for Beacon geneId queries")
    for ident, (file, description) in BEACON_DEMO.items():
        path = ctx.data / file
        if not path.exists():
            continue
        if store.has_dataset(KIND, ident):
            inputs = store.open_dataset(KIND, ident).manifest["provenance"].get("inputs", [])
            if inputs and inputs[0].get("sha256") == sha256_file(path):
                ctx.echo(f"demo Beacon dataset {ident} is up to date")
                continue
        with ctx.progress(f"ingest {ident}") as progress:
            ds = ingest(
                store, ident, path, assembly="GRCh37", description=description,
                executor=ctx.settings.executor, progress=progress,
            )  # fmt: skip
        ctx.echo(f"ingested demo Beacon dataset {ident}: {ds.meta['n_variants']:,} variants")
