"""The guides domain's job kind: ``guides.design`` (a whole guide design, stored as JSON).

A factory takes the :class:`~sandgrain.registry.Services` of the interface running it and returns
a handler for :class:`~sandgrain.jobs.JobManager`: a callable that gets a
:class:`~sandgrain.jobs.JobContext` and returns the store key of its result.
"""

from __future__ import annotations

import json

from ..jobs import JobContext
from ..registry import Services
from .design import design_guides

GUIDES_DESIGN = "guides.design"

#: Share of a design job's progress given to the genome-wide off-target search; the rest is
#: finding candidates before it and scoring, annotating and storing after it.
_SEARCH_FROM, _SEARCH_TO = 0.05, 0.9


def guides_result_key(job_id: str) -> str:
    """Where a guide design job stores its document."""
    return f"results/guides/{job_id}.json"


def guides_design_job(services: Services):
    """Handler for ``guides.design`` jobs.

    ``services.genome`` opens a genome by name; the web app passes its cache, so that jobs share
    open genomes and their loaded gene tables (a :class:`~sandgrain.genome.store.Genome` only
    reads, it is safe to share between threads).

    Parameters (checked by the API before the job is queued): ``genome``, exactly one of
    ``gene``/``region``/``sequence``, ``nuclease``, ``max_mismatches`` and ``within``. The job
    runs :func:`~sandgrain.guides.design.design_guides` on the settings' executor, reporting the
    off-target search's progress and stopping when cancelled, and stores the whole document —
    every off-target of every guide listed, so the API can page through them — as JSON under
    :func:`guides_result_key`.
    """

    settings, store = services.settings, services.store

    def handle(ctx: JobContext) -> str:
        params = ctx.params
        genome = services.genome(params["genome"])
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
