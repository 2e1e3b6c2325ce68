"""The genome domain's demo step: the demo genomes (yeast R64 with SGD genes, SARS-CoV-2).

Genomes already imported from the same files (same SHA-256) are left as they are.
"""

from __future__ import annotations

from ..provenance import sha256_file
from ..registry import DemoContext
from ..storage import Store
from .store import KIND, DemoGenome, add_genome, demo_genomes, open_genome


def demo(ctx: DemoContext) -> None:
    """Import every demo genome found under the data folder that is not up to date."""
    for d in demo_genomes(ctx.data):
        if up_to_date(ctx.store, d):
            ctx.echo(f"demo genome {d.name} is up to date")
            continue
        with ctx.byte_progress() as progress:
            genome = add_genome(
                ctx.store,
                d.name,
                d.fasta,
                annotation=d.annotation,
                aliases=d.aliases,
                assembly=d.assembly,
                replace=True,
                progress=progress,
            )
        ctx.echo(f"imported demo genome {genome.name}: {genome.meta['genes']:,} genes")


def up_to_date(store: Store, d: DemoGenome) -> bool:
    """Whether the store holds ``d`` imported from the same files (by SHA-256)."""
    if not store.has_dataset(KIND, d.name):
        return False
    inputs = open_genome(store, d.name).dataset.manifest["provenance"].get("inputs", [])
    have = {i.get("role"): i.get("sha256") for i in inputs}
    want = {"fasta": sha256_file(d.fasta), "annotation": d.annotation and sha256_file(d.annotation)}
    return all(have.get(k) == v for k, v in want.items() if v)
