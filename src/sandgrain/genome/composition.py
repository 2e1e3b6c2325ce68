"""Base composition of a genome, computed by fanning out over its regions.

The first genome-wide search on the fan-out engine: each task carries a reference to the genome
(store URL + name) and a region, reads only that region through ranged reads, and counts its
bases. A task whose region is larger than ``max_size`` splits itself in two, so the plan can
start with one task per chromosome and adapt to any genome.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InputError
from ..fanout import Split, Task, run_plan
from .store import Genome

TASK = "sandgrain.genome.composition:count_region"
FIELDS = ("length", "A", "C", "G", "T", "N", "masked")


def count_bases(seq: str) -> dict[str, int]:
    """Counts of A, C, G, T, N (either case) and of soft-masked (lowercase) bases."""
    upper = seq.upper()
    counts = {b: upper.count(b) for b in "ACGTN"}
    counts["length"] = len(seq)
    counts["masked"] = sum(seq.count(b) for b in "acgtn")
    return counts


def count_region(genome: dict, chrom: str, start0: int, end0: int, max_size: int) -> Split | dict:
    """Fan-out task: counts for ``chrom:[start0, end0)``, or a split into halves when too big."""
    if end0 - start0 > max_size:
        mid = start0 + (end0 - start0) // 2
        return Split(
            (
                Task(
                    TASK,
                    dict(genome=genome, chrom=chrom, start0=start0, end0=mid, max_size=max_size),
                    key=f"{chrom}:{start0 + 1}-{mid}",
                    weight=mid - start0,
                ),
                Task(
                    TASK,
                    dict(genome=genome, chrom=chrom, start0=mid, end0=end0, max_size=max_size),
                    key=f"{chrom}:{mid + 1}-{end0}",
                    weight=end0 - mid,
                ),
            )
        )
    seq = Genome.from_reference(genome).sequence(chrom, start0, end0)
    return {"chrom": chrom, **count_bases(seq)}


def composition(
    genome: Genome,
    executor="local",
    *,
    max_size: int = 4_000_000,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[dict]:
    """Per-chromosome base counts, computed on ``executor`` (identical on every backend)."""
    if max_size < 1000:
        raise InputError(f"max_size must be at least 1,000 bp, not {max_size}")
    ref = genome.reference()
    tasks = [
        Task(
            TASK,
            dict(genome=ref, chrom=c["name"], start0=0, end0=c["length"], max_size=max_size),
            key=c["name"],
            weight=c["length"],  # bases, for progress
        )
        for c in genome.chromosomes
    ]
    parts = run_plan(
        tasks, executor, retries=retries, progress=progress, cancel=cancel,
        store_probe=genome.dataset.store.probe,
    )
    totals: dict[str, dict] = {}
    for part in parts:
        row = totals.setdefault(part["chrom"], {"chrom": part["chrom"], **dict.fromkeys(FIELDS, 0)})
        for f in FIELDS:
            row[f] += part[f]
    return list(totals.values())
