"""One batched off-target search for many guides, each with its own mismatch limit.

Design, scoring and ``guides offtargets`` all search the same way: every *distinct* protospacer
once, in one fan-out over the site index (:func:`~sandgrain.guides.search.search_table`), up to
the largest limit asked for; each guide then sees its own rows within its own limit. The result,
a :class:`GuideSearch`, stays column-wise: Python objects are made only on request.
:func:`iter_search` does it a batch of guides at a time, each batch's hits within a memory
budget, for output streamed whatever the number of sites (:mod:`sandgrain.guides.output`).
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..fanout import Executor, LocalExecutor, SerialExecutor, Task, execute, open_executor
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
    _max: int | None = field(default=None, repr=False)

    @property
    def max_mismatches(self) -> int:
        # computed once: rows() asks for it per guide, and a search may hold 100,000 guides
        if self._max is None:
            self._max = max(self.limits, default=0)
        return self._max

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


class ThreadExecutor(Executor):
    """Fan-out tasks on ``workers`` threads of this process.

    What a local process pool (``local:N``) does for the off-target search, without starting
    processes: the search kernels release the GIL, so N threads search N tasks at once, in one
    address space where the index is mapped once and the hits need no pickling, and the first
    task does not wait for workers to import the search and load its kernels. (A pool's start
    costs more than a small search takes, which made ``local:2`` slower than ``serial``.)"""

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))
        self.name = f"threads:{self.workers}"
        self.max_in_flight = 4 * self.workers
        self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="sandgrain-task")

    def submit(self, task: Task) -> cf.Future:
        return self._pool.submit(execute, task)

    def wait(self, handles, timeout):
        done, not_done = cf.wait(list(handles), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done), list(not_done)

    def result(self, handle: cf.Future):
        return handle.result()

    def cancel(self, handles) -> None:
        for handle in handles:
            handle.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def search_executor(executor) -> tuple[Executor, bool]:
    """The executor a batched search runs on, and whether it was opened here (to be closed):
    an open executor as it is; a local pool URL (``local``, ``local:N``) as that many threads
    of this process (:class:`ThreadExecutor`); any other URL opened."""
    if not isinstance(executor, str):
        return executor, False
    opened = open_executor(executor)
    if isinstance(opened, LocalExecutor):  # no process is started until a task is submitted
        workers = opened.workers
        opened.close()
        return ThreadExecutor(workers), True
    return opened, True


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
    ``batch_hits`` makes a batch of its own that size. The next batch is searched (from a
    thread) while the consumer handles this one, so two batches are in memory at most;
    ``serial`` searches one batch after the other, in this thread. ``executor`` is opened once
    for all batches, a local pool as threads (:func:`search_executor`). Close the generator
    (``contextlib.closing``) when not reading it to the end. ``progress`` sees the whole run:
    work in sites searched, scaled by the guides done."""
    n = len(guides)
    if not n:
        return
    if batch_hits < 1 or first_batch < 1:
        raise ValueError("batch_hits and first_batch must be 1 or more")
    ex, owned = search_executor(executor)
    sites = sum(p.get("sites", 0) + p.get("n_sites", 0) for p in index.meta["partitions"])
    stopped = threading.Event()
    background = cf.ThreadPoolExecutor(1, thread_name_prefix="sandgrain-search")
    in_thread = not isinstance(ex, SerialExecutor)  # "serial" stays in this thread

    def cancelled() -> bool:
        return stopped.is_set() or (cancel is not None and cancel())

    def search(start: int, stop: int, tasks: int) -> tuple[GuideSearch, int]:
        report = _batch_progress(progress, start, stop, n, sites, tasks)
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
        return batch, (report.tasks if report is not None else 0)

    def launch(start: int, stop: int, tasks: int) -> Callable[[], tuple[GuideSearch, int]]:
        if not in_thread:
            return lambda: search(start, stop, tasks)
        return background.submit(search, start, stop, tasks).result

    try:
        searched = found = tasks = 0
        start, stop = 0, min(n, first_batch)
        job = launch(start, stop, 0)
        while job is not None:
            batch, done = job()
            tasks += done
            searched += len(batch.table.guides) if batch.table is not None else 0
            found += len(batch.table) if batch.table is not None else 0
            job = None
            if stop < n:  # the next batch, sized by the hits per guide so far
                rate = found / max(1, searched)
                fits = int(batch_hits / rate) if rate else n
                after = (stop, min(n, stop + max(1, min(BATCH_GROWTH * (stop - start), fits))))
                job = launch(*after, tasks)
            yield start, batch
            del batch  # written: its memory goes before the next batch's
            if job is not None:
                start, stop = after
    finally:
        stopped.set()  # a search still running in the background stops at its next poll
        background.shutdown(wait=True, cancel_futures=True)
        if owned:
            ex.close()


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
