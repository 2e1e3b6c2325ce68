"""The genome domain's job kind: ``genome.composition`` (base counts of a genome, as JSON).

A factory takes the :class:`~sandgrain.registry.Services` of the interface running it and returns
a handler for :class:`~sandgrain.jobs.JobManager`: a callable that gets a
:class:`~sandgrain.jobs.JobContext` and returns the store key of its result.
"""

from __future__ import annotations

import json

from ..jobs import JobContext
from ..provenance import provenance
from ..registry import Services
from .composition import composition

COMPOSITION = "genome.composition"


def composition_job(services: Services):
    """Handler for ``genome.composition`` jobs: base counts of a genome, stored as JSON."""

    settings, store = services.settings, services.store

    def handle(ctx: JobContext) -> str:
        genome = services.genome(ctx.params["genome"])
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
