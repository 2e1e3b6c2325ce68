"""Job handlers: long work the web app runs in the background on the configured executor."""

from __future__ import annotations

import json

from ..config import Settings
from ..genome.composition import composition
from ..genome.store import open_genome
from ..jobs import JobContext
from ..provenance import provenance
from ..storage import Store


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
