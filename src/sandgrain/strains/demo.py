"""The strains demo step: the shared SARS-CoV-2 example genomes as a collection, with its map.

Needs the ``sars-cov-2`` demo genome (the genome domain's demo step imports NC_045512.2 with its
GenBank genes) and ``pathogen/sars-cov-2-ncov-example/`` under the data folder (418 genomes of
Nextstrain's ncov example, with metadata). A collection already made from the same files (same
SHA-256) is left as it is; its map is built when missing.
"""

from __future__ import annotations

from ..genome.store import KIND as GENOME_KIND
from ..provenance import sha256_file
from ..registry import DemoContext
from .collection import KIND, Collection, add_genomes

#: The demo collection's name, and where its files lie under the data folder.
DEMO_COLLECTION = "ncov-example"
DEMO_FOLDER = "pathogen/sars-cov-2-ncov-example"
DEMO_REFERENCE = "sars-cov-2"


def demo(ctx: DemoContext) -> None:
    """Add the demo collection when missing or out of date, then build its map if missing."""
    from .embed import KIND as MAP_KIND
    from .embed import update_map

    store = ctx.store
    folder = ctx.data / DEMO_FOLDER
    fasta, metadata = folder / "example_sequences.fasta.gz", folder / "example_metadata.tsv"
    if not (fasta.exists() and metadata.exists()) or not store.has_dataset(
        GENOME_KIND, DEMO_REFERENCE
    ):
        return
    if not _up_to_date(store, fasta):
        with ctx.progress(f"add {DEMO_COLLECTION}") as progress:
            report = add_genomes(
                store, DEMO_COLLECTION, reference=DEMO_REFERENCE, fasta=fasta,
                metadata=metadata, on_duplicate="replace", executor=ctx.settings.executor,
                progress=progress,
            )  # fmt: skip
        ctx.echo(f"added {report.total:,} demo genomes to the collection {DEMO_COLLECTION}")
    else:
        ctx.echo(f"demo collection {DEMO_COLLECTION} is up to date")
    if not store.has_dataset(MAP_KIND, DEMO_COLLECTION):
        ds = update_map(store, Collection.open(store, DEMO_COLLECTION))
        ctx.echo(f"built the k-mer map of {DEMO_COLLECTION}: {ds.meta['genomes']:,} genomes")


def _up_to_date(store, fasta) -> bool:
    if not store.has_dataset(KIND, DEMO_COLLECTION):
        return False
    inputs = store.open_dataset(KIND, DEMO_COLLECTION).manifest.get("provenance", {})
    digests = {i.get("sha256") for i in inputs.get("inputs", []) if isinstance(i, dict)}
    return sha256_file(fasta) in digests
