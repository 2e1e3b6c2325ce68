"""One batched off-target search for many guides, each with its own mismatch limit.

Design, scoring and ``guides offtargets`` all search the same way: every *distinct* protospacer
once, in one fan-out over the site index (:func:`~sandgrain.guides.search.search_table`), up to
the largest limit asked for; each guide then sees its own rows within its own limit. The result,
a :class:`GuideSearch`, stays column-wise: Python objects are made only on request.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..fanout import LocalExecutor, SerialExecutor, Task, open_executor
from ..genome.store import Genome
from ..storage import Dataset
from .nucleases import NUCLEASES, Nuclease
from .request import ScoreRequest
from .search import OffTargetSite, OffTargetTable, search_table
from .siteindex import SiteFamily, open_index

__all__ = [
    "BATCH_HITS",
    "Cancel",
    "GuideSearch",
    "Progress",
    "iter_search",
    "open_guide_index",
    "run_search",
]

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


@dataclass
class GuideSearch:
    """Guides and their genome-wide sites (every site, nothing excluded yet), column-wise.

    ``table`` holds the sites of every *distinct* guide once (``table.guides``; ``slots[i]`` is
    the row of ``guides[i]`` there; ``None`` when there are no guides). :meth:`rows` gives the
    table rows of ``guides[i]`` within its own limit ``limits[i]``, in genome order; Python
    objects are made only on request (:meth:`sites`, :attr:`results`). ``request`` is the
    :class:`~sandgrain.guides.request.ScoreRequest` searched, when the guides were given.
    """

    genome: Genome
    nuclease: Nuclease
    family: SiteFamily
    index: Dataset
    guides: list[str]
    limits: list[int]
    table: OffTargetTable | None = None
    slots: list[int] = field(default_factory=list)
    request: ScoreRequest | None = None
    _bounds: np.ndarray | None = field(default=None, repr=False)

    @property
    def max_mismatches(self) -> int:
        return max(self.limits, default=0)

    @property
    def bounds(self) -> np.ndarray:
        """Row ranges of the distinct guides in :attr:`table` (see ``OffTargetTable.bounds``)."""
        if self._bounds is None:
            self._bounds = self.table.bounds() if self.table is not None else np.zeros(1, np.int64)
        return self._bounds

    def rows(self, i: int) -> np.ndarray:
        """Table rows of ``guides[i]``: its sites within ``limits[i]`` mismatches, genome order."""
        if self.table is None:
            return np.zeros(0, np.int64)
        u = self.slots[i]
        rows = np.arange(self.bounds[u], self.bounds[u + 1], dtype=np.int64)
        if self.limits[i] < self.max_mismatches:
            rows = rows[self.table.mismatches[rows] <= self.limits[i]]
        return rows

    def count(self, i: int) -> int:
        """How many sites ``guides[i]`` has (exact)."""
        return len(self.rows(i))

    def sites(self, i: int, max_listed: int | None = None) -> list[OffTargetSite]:
        """Sites of ``guides[i]`` as objects, in genome order: all, or the ``max_listed`` with
        fewest mismatches (genome order among equals), as
        :func:`~sandgrain.guides.formats.select_listed` chooses them."""
        rows = self.rows(i)
        if max_listed is not None and len(rows) > max_listed:
            keep = np.lexsort((rows, self.table.mismatches[rows]))[:max_listed]
            rows = rows[np.sort(keep)]
        return self.table.sites(rows) if len(rows) else []

    @property
    def results(self) -> list[list[OffTargetSite]]:
        """Every site of every guide as objects (``results[i]`` for ``guides[i]``). Costly for
        guides with many sites: prefer :meth:`rows` and the table's columns."""
        return [self.sites(i) for i in range(len(self.guides))]


def index_hint(nuclease: Nuclease) -> str | None:
    """The shipped name to put in the index command, when the nuclease is one."""
    return nuclease.name if nuclease.name in NUCLEASES else None


def open_guide_index(genome: Genome, nuclease: Nuclease) -> tuple[SiteFamily, Dataset]:
    """The site family of ``nuclease`` and the genome's index answering it; a
    :class:`~sandgrain.guides.errors.MissingIndexError` naming the command otherwise."""
    family = SiteFamily.of(nuclease)
    return family, open_index(genome, family, index_hint(nuclease))


def run_search(
    genome: Genome,
    guides: list[str],
    limits: list[int],
    nuclease: Nuclease,
    family: SiteFamily,
    index: Dataset,
    *,
    executor,
    retries: int,
    progress: Progress | None,
    cancel: Cancel | None,
    request: ScoreRequest | None = None,
) -> GuideSearch:
    """One batched search for all guides (each distinct protospacer once), guides already
    checked (:class:`~sandgrain.guides.request.ScoreRequest` or candidate protospacers)."""
    found = GuideSearch(
        genome, nuclease, family, index, list(guides), list(limits), request=request
    )
    if not guides:
        return found
    unique = list(dict.fromkeys(guides))
    found.table = search_table(
        genome,
        unique,
        family,
        max(limits),
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
        nuclease=index_hint(nuclease),
    )
    slot = {g: i for i, g in enumerate(unique)}
    found.slots = [slot[g] for g in guides]
    return found


#: Hits a guide batch of :func:`iter_search` aims at. A hit takes 64 bytes in the table and about
#: four times that while the table is built, so a batch stays within a few hundred MB.
BATCH_HITS = 2_000_000
#: Guides in the first batch, before the hit rate of the guides is known.
FIRST_BATCH = 64
#: A batch has at most this many times the guides of the one before.
BATCH_GROWTH = 4
#: Seconds a local process pool must save, as the batches searched so far in this process
#: predict (the search left, less its share a worker would do), before it is started: its
#: workers spend about a second importing the search and loading its kernels before they help,
#: and meanwhile take CPU from this process.
POOL_START_S = 1.5

logger = logging.getLogger(__name__)


class _Lanes:
    """Where the batches of one :func:`iter_search` run are searched.

    An open executor is used as it is. An executor URL is opened once for the run; a local
    process pool (``local``, ``local:N``) starts *lazily*: batches are searched in this process
    until the ones done predict that the pool would save more than :data:`POOL_START_S`
    seconds, then the pool's workers are started and warmed up
    (:func:`~sandgrain.guides.search.warm_worker`) while this process goes on, and batches go to
    the pool once every warm-up task is back. So a small search never waits for a pool, and a
    large one never idles a core."""

    def __init__(self, executor, genome: Genome, index: Dataset):
        self.owned = isinstance(executor, str)
        self.pool = open_executor(executor) if self.owned else executor
        self.lazy = self.owned and isinstance(self.pool, LocalExecutor) and self.pool.workers > 1
        self.here = SerialExecutor()
        self.genome, self.index = genome, index
        self.warming: list | None = None  # warm-up task handles, once the pool is started
        self.key: str | None = None
        self.ready = not self.lazy
        self.batches = 0  # searched in this process

    def executor(self):
        """The executor for the next batch."""
        if not self.ready and self.warming is not None:
            done, self.warming = self.pool.wait(self.warming, timeout=0)
            for handle in done:
                self.pool.result(handle)  # a worker that cannot search fails the run here
            self.ready = not self.warming
        return self.pool if self.ready else self.here

    def searched(self, seconds: float, guides: int, left: int) -> None:
        """A batch of ``guides`` took ``seconds`` in this process, ``left`` guides remain: start
        the pool when what remains is worth it. The first batch only warms this process up
        (its first search loads the kernels): the rate is taken from the second on."""
        self.batches += 1
        if self.ready or self.warming is not None or not guides or self.batches < 2:
            return
        saved = seconds / guides * left * (1 - 1 / self.pool.workers)  # were the pool warm
        if saved > POOL_START_S:
            self.start()

    def start(self) -> None:
        store = self.genome.dataset.store
        self.key = f"scratch/offtargets-warm-{uuid.uuid4().hex}.json"
        length = self.index.meta["family"]["length"]
        store.write_bytes(self.key, json.dumps(["A" * length]).encode())
        args = dict(
            store=store.reference(),
            index=self.index.name,
            version=self.index.manifest["version"],
            pid=self.index.meta["partitions"][0]["pid"],
            guides_key=self.key,
        )
        tasks = [
            Task("sandgrain.guides.search:warm_worker", args, key="warm up a worker")
            for _ in range(self.pool.workers)
        ]
        self.warming = self.pool.submit_many(tasks)
        logger.debug("starting %s: %d warm-up tasks", self.pool.name, len(tasks))

    def close(self) -> None:
        if self.warming:  # the run ended first: the workers still starting are killed
            self.pool.cancel(self.warming)
        if self.owned:
            self.pool.close()
        if self.key is not None:
            with contextlib.suppress(Exception):
                self.genome.dataset.store.delete(self.key)


def iter_search(
    genome: Genome,
    guides: list[str],
    limits: list[int],
    nuclease: Nuclease,
    family: SiteFamily,
    index: Dataset,
    *,
    executor,
    retries: int,
    progress: Progress | None,
    cancel: Cancel | None,
    request: ScoreRequest | None = None,
    batch_hits: int = BATCH_HITS,
    first_batch: int = FIRST_BATCH,
) -> Iterator[tuple[int, GuideSearch]]:
    """:func:`run_search` in consecutive batches of the guides, so that memory is bounded by
    a batch's hits, never by all of them: yields ``(start, search)`` where ``search`` holds
    ``guides[start:start + len(search.guides)]`` (each batch's distinct guides searched once).

    The first batch has ``first_batch`` guides; each next one as many as the hits per guide
    seen so far say fit ``batch_hits`` (at least one guide, at most :data:`BATCH_GROWTH` times
    the last batch). A guide's own hits are never split, so one guide with more hits than
    ``batch_hits`` makes a batch of its own that size. ``executor`` is opened once for all
    batches (a local pool lazily, see :class:`_Lanes`). Where a pool searches, the next batch
    is searched while the consumer handles this one (so two batches may be in memory at once);
    in this process, one after the other. Close the generator (``contextlib.closing``) when
    not reading it to the end. ``progress`` sees the whole run: work in sites searched, scaled
    by the guides done."""
    n = len(guides)
    if not n:
        return
    if batch_hits < 1 or first_batch < 1:
        raise ValueError("batch_hits and first_batch must be 1 or more")
    lanes = _Lanes(executor, genome, index)
    sites = sum(p.get("sites", 0) + p.get("n_sites", 0) for p in index.meta["partitions"])
    stopped = threading.Event()
    background = ThreadPoolExecutor(1, thread_name_prefix="sandgrain-search")

    def cancelled() -> bool:
        return stopped.is_set() or (cancel is not None and cancel())

    def search(start: int, stop: int, ex, tasks: int) -> tuple[GuideSearch, int]:
        report = _batch_progress(progress, start, stop, n, sites, tasks)
        began = time.perf_counter()
        batch = run_search(
            genome,
            guides[start:stop],
            limits[start:stop],
            nuclease,
            family,
            index,
            executor=ex,
            retries=retries,
            progress=report,
            cancel=cancelled,
            request=request,
        )
        if ex is lanes.here:
            lanes.searched(time.perf_counter() - began, stop - start, n - stop)
        return batch, (report.tasks if report is not None else 0)

    def launch(start: int, stop: int, tasks: int) -> _Job:
        ex = lanes.executor()
        if ex is lanes.here:  # searched when its turn comes, after the last batch is written
            return _Job(start, stop, lambda: search(start, stop, ex, tasks))
        return _Job(start, stop, background.submit(search, start, stop, ex, tasks).result)

    try:
        searched = found = tasks = 0
        job: _Job | None = launch(0, min(n, first_batch), 0)
        while job is not None:
            batch, done = job.result()
            tasks += done
            searched += len(batch.table.guides) if batch.table is not None else 0
            found += len(batch.table) if batch.table is not None else 0
            nxt = None
            if job.stop < n:
                rate = found / max(1, searched)
                size = min(BATCH_GROWTH * (job.stop - job.start), int(batch_hits / max(rate, 1e-9)))
                nxt = launch(job.stop, min(n, job.stop + max(1, size)), tasks)
            yield job.start, batch
            del batch  # written by the consumer: its memory goes before the next one's
            job = nxt
    finally:
        stopped.set()  # a search still running in the background stops at its next poll
        background.shutdown(wait=True, cancel_futures=True)
        lanes.close()


@dataclass
class _Job:
    """One batch's search: running in the background (a pool searches it while this process
    writes the batch before), or run when its result is asked for (in this process)."""

    start: int
    stop: int
    result: Callable[[], tuple[GuideSearch, int]]


def _takes_work(progress: Progress) -> bool:
    """Whether ``progress`` takes ``(done, total, done_work, total_work)`` (as the fan-out
    runner decides it)."""
    try:
        params = list(inspect.signature(progress).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in positional for p in params) >= 4


class _BatchProgress:
    """One batch's progress as a share of the whole run's: tasks counted across batches, work
    in sites searched scaled by the batch's guides."""

    def __init__(self, progress, start: int, stop: int, n: int, sites: int, tasks: int):
        self.progress, self.start, self.stop, self.n = progress, start, stop, n
        self.sites, self.before, self.tasks = sites, tasks, 0
        self.work = _takes_work(progress)

    def __call__(self, done, total, done_work=None, total_work=None) -> None:
        self.tasks = total
        if not self.work:
            self.progress(self.before + done, self.before + total)
            return
        share = done_work / total_work if total_work else (done / total if total else 1.0)
        guides = self.start + (self.stop - self.start) * share
        total_sites = max(1, self.sites)
        self.progress(
            self.before + done,
            self.before + total,
            int(total_sites * guides / self.n),
            total_sites,
        )


def _batch_progress(progress, start, stop, n, sites, tasks) -> _BatchProgress | None:
    return None if progress is None else _BatchProgress(progress, start, stop, n, sites, tasks)
