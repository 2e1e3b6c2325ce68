"""The guides domain's demo step: the SpCas9 site index of each demo genome, so that guide
design works at once after ``make run``."""

from __future__ import annotations

from ..genome.store import demo_genomes, open_genome
from ..registry import DemoContext
from .errors import MissingIndexError
from .nucleases import get_nuclease
from .siteindex import SiteFamily, build_index, open_index


def demo(ctx: DemoContext) -> None:
    """Index every demo genome in the store for SpCas9 (NGG) unless it already is."""
    family = SiteFamily.of(get_nuclease("SpCas9"))
    for d in demo_genomes(ctx.data):
        genome = open_genome(ctx.store, d.name)
        try:
            open_index(genome, family)
            continue
        except MissingIndexError:  # none yet, or built for an older import of the genome
            pass
        with ctx.progress(f"index {genome.name} for SpCas9") as progress:
            build_index(genome, family, executor=ctx.settings.executor, progress=progress)
        ctx.echo(f"indexed demo genome {genome.name} for SpCas9")
