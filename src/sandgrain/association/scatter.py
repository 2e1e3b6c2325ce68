"""Classical association tests over a stored genotypes dataset, fanned out over variant ranges.

:func:`scatter_test` cuts the variants of a ``genotypes`` dataset (:func:`~.genotypes.import_vcf`)
into consecutive ranges of at most :data:`MAX_CHUNK` variants (and at least
:data:`MIN_TASK_CALLS` calls), one fan-out task each
(:mod:`sandgrain.fanout`: ``serial``, ``local:N``, Dask, Lithops). A task carries references
only — the store, the dataset's name and pinned version, its range and the key of the trait and
covariates staged in the store's ``scratch/`` — reads its own rows of ``genotypes.bin`` block by
block, runs :func:`~.tests_classical.block_columns` on them and returns the per-variant columns;
the runner gives them back in plan order, so the table is the one
:func:`~.tests_classical.association_test` computes in one process, value for value, on every
executor. A plan of one range runs in this process (no pool to start for a small dataset).

Memory: a worker holds one block of dosages unpacked (``block`` variants × samples as float64
for the regressions) and its range's six result columns (48 bytes a variant); the client holds
the variant table and every result column (~100 bytes a variant).
"""

from __future__ import annotations

import io
import math
import uuid
from collections.abc import Callable

import numpy as np

from ..errors import InputError
from ..fanout import Task, run_plan
from .genotypes import KIND, unpack
from .tests_classical import (
    AssociationResults,
    block_columns,
    concat_columns,
    prepare,
    results_table,
)

__all__ = [
    "MAX_CHUNK",
    "MIN_TASK_CALLS",
    "TASK",
    "default_block",
    "partition",
    "range_columns",
    "scatter_test",
]

TASK = "sandgrain.association.scatter:range_columns"
#: Variants per task at most (a task's result columns stay under ~10 MB).
MAX_CHUNK = 200_000
#: Calls (variants × samples) below which a range is not worth a task of its own: hipster's
#: 17,090 variants × 2,504 samples make 2 tasks, 10,000 samples make tasks of 3,072 variants
#: or more.
MIN_TASK_CALLS = 1 << 25
#: Ranges wanted when the dataset allows (several per worker of a small pool, for balance).
TASKS_WANTED = 16
#: Calls unpacked at once in a task: a block of variants is about this many float64 values
#: (16 MB) whatever the number of samples. Blocks of 2,048 variants × 10,000 samples (160 MB
#: per array, each mapped and unmapped afresh) spent as long in page faults as in the tests.
BLOCK_CALLS = 1 << 21


def default_block(n_samples: int) -> int:
    """Variants per block: a power of two from 64 to 2,048, about BLOCK_CALLS calls."""
    size = 2048
    while size > 64 and size * n_samples > BLOCK_CALLS:
        size //= 2
    return size


def partition(
    n_variants: int, chunk: int | None = None, block: int = 2048, n_samples: int = 1
) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` ranges covering ``n_variants``: of ``chunk`` variants, or
    by default ``n_variants / TASKS_WANTED`` but at least MIN_TASK_CALLS calls (of
    ``n_samples`` each) and at most MAX_CHUNK variants; rounded to a multiple of ``block``
    (``chunk`` up, the default down). Ranges then start on block boundaries, so every task
    computes the very blocks that one process would (a batched fit of a block of another size
    may differ in the last bits: BLAS kernels depend on shapes)."""
    if chunk is None:
        least = MIN_TASK_CALLS // max(n_samples, 1)
        chunk = min(MAX_CHUNK, max(least, math.ceil(n_variants / TASKS_WANTED)))
        chunk = max(1, chunk // block) * block
    else:
        chunk = max(1, math.ceil(int(chunk) / block)) * block
    return [(a, min(a + chunk, n_variants)) for a in range(0, n_variants, chunk)]


def range_columns(
    store: dict,
    name: str,
    version: str,
    start: int,
    stop: int,
    traits: str,
    test: str,
    statistic: str,
    impute: str,
    block: int,
    firth_fallback: bool = False,
) -> dict[str, np.ndarray]:
    """Fan-out task: the per-variant columns of variants ``start:stop`` of a genotypes dataset
    (its version pinned), for the trait and design staged at the store key ``traits``."""
    from ..storage import Store

    st = Store.from_reference(store)
    ds = st.open_dataset(KIND, name, version)
    staged = np.load(io.BytesIO(st.read_bytes(traits)))
    y, C, kept = staged["y"], staged["C"], staged["kept"]
    n_samples = int(staged["n_samples"])
    width = (n_samples + 3) // 4
    every = len(kept) == n_samples and bool((kept == np.arange(n_samples)).all())
    parts = []
    for a in range(start, stop, block):
        b = min(stop, a + block)
        raw = ds.read_range("genotypes.bin", a * width, b * width)
        D = unpack(np.frombuffer(raw, dtype=np.uint8).reshape(b - a, width), n_samples)
        G = D if every else D[:, kept]
        parts.append(block_columns(G, y, C, test, statistic, impute, firth_fallback))
    return concat_columns(parts)


def scatter_test(
    matrix,
    traits,
    test: str,
    *,
    store,
    statistic: str = "wald",
    impute_rule: str = "mean",
    executor="serial",
    retries: int = 2,
    progress: Callable | None = None,
    chunk: int | None = None,
    block: int | None = None,
    firth_fallback: bool = False,
) -> AssociationResults:
    """:func:`~.tests_classical.association_test` of a matrix opened from ``store`` with
    :meth:`~.genotypes.GenotypeMatrix.open`, as a plan of variant ranges (module doc) run on
    ``executor``. ``progress`` is a fan-out progress callback (weights: variants). ``block``:
    variants tested together (default :func:`default_block`); with the same ``block`` the
    results equal :func:`~.tests_classical.association_test`'s exactly."""
    y, C = prepare(traits, test, statistic, firth_fallback)
    block = block or default_block(matrix.n_samples)
    name, version = matrix.source.get("genotypes"), matrix.source.get("version")
    if name is None or version is None:
        raise InputError("scatter_test needs a matrix opened from a store (GenotypeMatrix.open)")
    ranges = partition(matrix.n_variants, chunk, block, matrix.n_samples)
    parts: list[dict[str, np.ndarray]] = []
    if ranges:
        buf = io.BytesIO()
        np.savez(buf, y=y, C=C, kept=np.asarray(traits[3]), n_samples=matrix.n_samples)
        key = f"scratch/association-test-{uuid.uuid4().hex}.npz"
        store.write_bytes(key, buf.getvalue())
        common = {
            "store": store.reference(),
            "name": name,
            "version": version,
            "traits": key,
            "test": test,
            "statistic": statistic,
            "impute": impute_rule,
            "block": block,
            "firth_fallback": firth_fallback,
        }
        tasks = [
            Task(
                TASK,
                {**common, "start": a, "stop": b},
                key=f"{test} test of variants {a + 1:,}–{b:,}",
                weight=b - a,
            )
            for a, b in ranges
        ]
        try:
            parts = run_plan(
                tasks,
                executor if len(tasks) > 1 else "serial",
                retries=retries,
                progress=progress,
                store_probe=store.probe,
            )
        finally:
            store.delete(key)
    return results_table(matrix.variants, concat_columns(parts), traits, test, statistic)
