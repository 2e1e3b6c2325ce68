"""Job handlers: long work the web app runs in the background on the configured executor.

Each factory takes the settings and returns a handler for :class:`~sandgrain.jobs.JobManager`:
a callable that gets a :class:`~sandgrain.jobs.JobContext` and returns the store key of its
result.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..config import Settings
from ..genome.composition import composition
from ..genome.store import Genome, open_genome
from ..guides.design import design_guides
from ..jobs import JobContext
from ..provenance import provenance
from ..storage import Store

#: Job kinds and the handler factories of this module.
COMPOSITION = "genome.composition"
GUIDES_DESIGN = "guides.design"

#: Share of a design job's progress given to the genome-wide off-target search; the rest is
#: finding candidates before it and scoring, annotating and storing after it.
_SEARCH_FROM, _SEARCH_TO = 0.05, 0.9


def guides_result_key(job_id: str) -> str:
    """Where a guide design job stores its document."""
    return f"results/guides/{job_id}.json"


def composition_job(settings: Settings):
    """Handler for ``genome.composition`` jobs: base counts of a genome, stored as JSON."""

    def handle(ctx: JobContext) -> str:
        store = Store.from_settings(settings)
        genome = open_genome(store, ctx.params["genome"])
        max_size = int(ctx.params.get("max_size", 4_000_000))
        rows = composition(
            genome,
            settings.executor,
            max_size=max_size,
            retries=settings.retries,
            progress=lambda done, total: ctx.progress((done, total)),
            cancel=ctx.cancelled,
        )
        key = f"results/composition/{ctx.id}.json"
        result = {
            "provenance": provenance(
                "genome composition",
                {"genome": genome.name, "max_size": max_size, "executor": settings.executor},
                [
                    {
                        "source": f"genome:{genome.name}",
                        "version": genome.dataset.manifest["version"],
                        "sha256": genome.dataset.manifest["files"]["sequence.fa.gz"]["sha256"],
                    }
                ],
            ),
            "genome": genome.name,
            "chromosomes": rows,
        }
        store.write_bytes(key, json.dumps(result).encode())
        return key

    return handle


def guides_design_job(settings: Settings, genomes: Callable[[str], Genome] | None = None):
    """Handler for ``guides.design`` jobs.

    ``genomes`` opens a genome by name; the web app passes its cache, so that jobs share open
    genomes and their loaded gene tables (a :class:`~sandgrain.genome.store.Genome` only reads,
    it is safe to share between threads). Without it each job opens the genome itself.

    Parameters (checked by the API before the job is queued): ``genome``, exactly one of
    ``gene``/``region``/``sequence``, ``nuclease``, ``max_mismatches`` and ``within``. The job
    runs :func:`~sandgrain.guides.design.design_guides` on the settings' executor, reporting the
    off-target search's progress and stopping when cancelled, and stores the whole document —
    every off-target of every guide listed, so the API can page through them — as JSON under
    :func:`guides_result_key`.
    """

    def handle(ctx: JobContext) -> str:
        params = ctx.params
        store = Store.from_settings(settings)
        if genomes is not None:
            genome = genomes(params["genome"])
        else:
            genome = open_genome(store, params["genome"])
        target = {k: params[k] for k in ("gene", "region", "sequence") if params.get(k) is not None}
        ctx.progress(0.0, "finding candidate sites")

        def searched(done: int, total: int) -> None:
            share = done / total if total > 0 else 0.0
            fraction = _SEARCH_FROM + (_SEARCH_TO - _SEARCH_FROM) * share
            ctx.progress(fraction, "searching the genome for off-targets")

        doc = design_guides(
            genome,
            **target,
            nuclease=params.get("nuclease", "SpCas9"),
            max_mismatches=int(params.get("max_mismatches", 4)),
            within=params.get("within", "exons"),
            executor=settings.executor,
            retries=settings.retries,
            max_offtargets_listed=None,  # all of them: the API pages through them
            progress=searched,
            cancel=ctx.cancelled,
        )
        # A cancel that came while the last step ran still wins: nothing is stored.
        ctx.check_cancelled()
        ctx.progress(_SEARCH_TO + 0.05, "storing the result")
        key = guides_result_key(ctx.id)
        store.write_bytes(key, json.dumps(doc, allow_nan=False, separators=(",", ":")).encode())
        count = len(doc["guides"])
        ctx.progress(0.99, f"{count} guide{'' if count == 1 else 's'} designed")
        return key

    return handle
