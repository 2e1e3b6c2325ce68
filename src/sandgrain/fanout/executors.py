"""Backends that run tasks: in-process, a local process pool, Dask, Lithops.

Every backend is an :class:`Executor` opened from one URL string by :func:`open_executor`:

==========================  ==============================================================
``serial``                  in this process, one task at a time (debugging, reference)
``local`` / ``local:N``     a pool of N worker processes (default: one per CPU)
``dask://HOST:PORT``        an existing Dask scheduler
``dask-local[:N]``          a Dask ``LocalCluster`` of N single-threaded processes (default 2)
``lithops``                 Lithops with the user's config (``~/.lithops/config``)
``lithops:localhost``       Lithops on this machine, no config file and no network needed
==========================  ==============================================================

All of them submit the module-level :func:`sandgrain.fanout.plan.execute` with a picklable
:class:`~sandgrain.fanout.plan.Task`; none of them retries, splits or orders anything, which is
the runner's job.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sandgrain.errors import InputError, StorageError
from sandgrain.fanout import lifeline
from sandgrain.fanout.plan import Task, execute

__all__ = [
    "DaskExecutor",
    "Executor",
    "LithopsExecutor",
    "LocalExecutor",
    "SerialExecutor",
    "URL_FORMS",
    "open_executor",
    "preload_in_workers",
]

URL_FORMS = (
    "serial, local, local:N, dask://HOST:PORT, dask-local, dask-local:N, lithops, lithops:localhost"
)


class Executor:
    """Base of the backends: submit tasks, wait for some, read their results.

    A handle is whatever :meth:`submit` returns; it is hashable and only meaningful to the
    executor that made it. Executors are context managers that :meth:`close` on exit.

    Attributes
    ----------
    name : str
        The URL the executor was opened with.
    max_in_flight : int
        How many tasks the runner keeps submitted at once. Tasks beyond it wait in the runner,
        where cancelling them costs nothing.
    remote : bool
        Whether workers may run on other machines, not seeing this one's files (Dask, Lithops):
        the runner's ``store_probe`` checks those before a plan runs.
    parallelism : int
        How many tasks run at the same time (worker processes, Dask threads, cloud functions):
        what a plan that sizes its tasks to the executor divides its work by.
    """

    name: str = "executor"
    max_in_flight: int = 1
    remote: bool = False
    parallelism: int = 1

    def submit(self, task: Task) -> Any:
        """Start running ``task``; return a handle to it."""
        raise NotImplementedError

    def submit_many(self, tasks: Sequence[Task]) -> list[Any]:
        """Submit several tasks at once (one round trip where the backend allows it)."""
        return [self.submit(task) for task in tasks]

    def wait(self, handles: Iterable[Any], timeout: float | None) -> tuple[list[Any], list[Any]]:
        """Wait until at least one of ``handles`` is finished, or ``timeout`` seconds pass.

        Returns
        -------
        (done, not_done) : tuple of lists
            The finished handles (successfully or not) and the others.
        """
        raise NotImplementedError

    def result(self, handle: Any) -> Any:
        """The value the finished task returned; raises the exception it raised."""
        raise NotImplementedError

    def cancel(self, handles: Iterable[Any]) -> None:
        """Cancel tasks: those not started never run, results of running ones are ignored."""

    def close(self) -> None:
        """Release the backend's resources (pools, clusters, connections)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class _Outcome:
    """Handle of the serial executor: the finished task's value or exception."""

    __slots__ = ("error", "value")

    def __init__(self, task: Task):
        self.value: Any = None
        self.error: BaseException | None = None
        try:
            self.value = execute(task)
        except Exception as exc:
            self.error = exc


class SerialExecutor(Executor):
    """Run each task in this process as soon as it is submitted."""

    name = "serial"
    max_in_flight = 1

    def submit(self, task: Task) -> _Outcome:
        return _Outcome(task)

    def wait(self, handles, timeout):
        return list(handles), []

    def result(self, handle: _Outcome) -> Any:
        if handle.error is not None:
            raise handle.error
        return handle.value


#: Modules every local pool's forkserver imports when it starts (see preload_in_workers).
_PRELOAD: list[str] = []


def preload_in_workers(modules: Iterable[str]) -> None:
    """Name modules that the local pools' forkserver imports, once, when it starts, besides the
    module of the first task a pool runs: a process that will run plans of several modules (a
    web server) names them all, so that no pool's workers import them each on their own."""
    _PRELOAD.extend(m for m in modules if m not in _PRELOAD)


def _mp_context(modules: Sequence[str] = ()) -> Any:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    # A forkserver started by another thread must not die when that thread ends.
    main = threading.current_thread() is threading.main_thread()
    return lifeline.forkserver_context(main, modules)


class LocalExecutor(Executor):
    """A pool of worker processes on this machine.

    Parameters
    ----------
    workers : int, optional
        Number of processes; default ``os.cpu_count()``.

    Notes
    -----
    Workers end with the process that made the pool, whatever ends it, SIGKILL included (see
    :mod:`sandgrain.fanout.lifeline`), and so do the forkserver and the resource tracker.
    :meth:`close` after a cancel kills the workers still running abandoned tasks instead of
    waiting for them.
    """

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self.name = f"local:{self.workers}"
        self.max_in_flight = 4 * self.workers
        self.parallelism = self.workers
        self._modules: list[str] = []
        self._pool: cf.ProcessPoolExecutor | None = None  # made by the first submit
        self._abandoned = False

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_mp_context(self._modules),
            initializer=lifeline.bind_worker,
            initargs=(os.getpid(),),
        )

    def submit(self, task: Task) -> cf.Future:
        if self._pool is None:
            # The forkserver starts with the first worker: if it starts now, it imports the
            # first task's module (and with it numpy, numba, pyarrow…) once, and every worker
            # forked from it starts with them loaded instead of importing them itself. A
            # forkserver already running keeps what it has.
            self._modules = [task.fn.partition(":")[0], *_PRELOAD]
            self._pool = self._new_pool()
        try:
            return self._pool.submit(execute, task)
        except BrokenProcessPool:
            # A worker died (killed for memory, a crash in native code): the tasks it took
            # down fail with BrokenProcessPool, and their retries run on a fresh pool.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(execute, task)

    def wait(self, handles, timeout):
        done, not_done = cf.wait(list(handles), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done), list(not_done)

    def result(self, handle: cf.Future) -> Any:
        return handle.result()

    def cancel(self, handles) -> None:
        for handle in handles:
            if not handle.cancel() and not handle.done():
                self._abandoned = True

    def close(self) -> None:
        # Tasks cancelled while running (an error, SIGINT or SIGTERM) would hold up a shutdown
        # until they end, and so would the interpreter's exit, which joins the pool's threads:
        # their workers are killed instead.
        if self._pool is None:  # nothing was submitted
            return
        if not self._abandoned:
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        pool = self._pool
        kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
        if kill is not None:
            kill()
            return
        # Before 3.14, through the pool's private attributes (unchanged since 3.9). Cancelled
        # tasks are dropped first: a 3.11 pool that finds a dead worker while it still holds
        # a cancelled task fails in its own thread (InvalidStateError, fixed in 3.12). The
        # shutdown wakes the pool's thread before any worker dies, so it drops them first.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.kill()
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(timeout=5)
        if manager is not None:
            manager.join(timeout=5)


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: an existing scheduler, or a ``LocalCluster`` started here.

    Parameters
    ----------
    address : str, optional
        Scheduler address, ``"tcp://host:8786"``. Without it a ``LocalCluster`` is started and
        closed again by :meth:`close`.
    n_workers : int
        Worker processes of the local cluster (one thread each).
    """

    remote = True

    def __init__(self, address: str | None = None, n_workers: int = 2):
        from distributed import Client, LocalCluster

        self._cluster = None
        if address is None:
            self.name = f"dask-local:{n_workers}"
            self._cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            self._client = Client(self._cluster)
        else:
            self.name = f"dask://{address.removeprefix('tcp://')}"
            try:
                self._client = Client(address, timeout="10s")
            except OSError as exc:
                raise StorageError(
                    f"cannot reach the Dask scheduler at {address}: {exc}"
                ) from None
        threads = sum(self._client.nthreads().values())
        # An adaptive cluster may have no workers yet; the scheduler queues the surplus.
        self.max_in_flight = max(4 * threads, 256)
        self.parallelism = max(1, threads)

    @property
    def scheduler_address(self) -> str:
        """Address of the scheduler, ``"tcp://host:port"``."""
        return self._client.scheduler.address

    def submit(self, task: Task) -> Any:
        label = task.fn.rpartition(":")[2]
        return self._client.submit(execute, task, key=f"{label}-{uuid.uuid4().hex}", pure=False)

    def wait(self, handles, timeout):
        from distributed import wait

        handles = list(handles)
        try:
            done, not_done = wait(handles, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return [], handles
        return list(done), list(not_done)

    def result(self, handle: Any) -> Any:
        return handle.result()

    def cancel(self, handles) -> None:
        handles = list(handles)
        if handles:
            self._client.cancel(handles)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


class LithopsExecutor(Executor):
    """Tasks as Lithops function calls (AWS Lambda, GCP, Azure, Kubernetes, ...).

    Parameters
    ----------
    backend : str, optional
        ``"localhost"`` runs on this machine with this Python interpreter and local storage,
        ignoring any config file. Otherwise the user's Lithops config decides everything.

    Notes
    -----
    A Lithops call that is already running cannot be stopped; cancelling one only makes the
    runner ignore its result. :meth:`close` stops local calls and cleans the temporary data.
    """

    remote = True

    def __init__(self, backend: str | None = None):
        import lithops

        if backend == "localhost":
            self.name = "lithops:localhost"
            config = {
                "lithops": {"backend": "localhost", "storage": "localhost"},
                "localhost": {"runtime": sys.executable},
            }
            self._fexec = lithops.FunctionExecutor(config=config, log_level=None)
        else:
            self.name = "lithops"
            self._fexec = lithops.FunctionExecutor()
        backend_config = self._fexec.config.get(self._fexec.backend) or {}
        if self._fexec.backend == "localhost":
            workers = backend_config.get("worker_processes") or os.cpu_count() or 1
        else:
            workers = backend_config.get("max_workers") or 100
        self.max_in_flight = 2 * int(workers)
        self.parallelism = int(workers)
        self._downloads = cf.ThreadPoolExecutor(max_workers=16, thread_name_prefix="lithops-get")

    def submit(self, task: Task) -> Any:
        return self.submit_many([task])[0]

    def submit_many(self, tasks):
        if not tasks:
            return []
        return list(self._fexec.map(execute, [{"task": task} for task in tasks]))

    def wait(self, handles, timeout):
        # Lithops' own wait() logs at INFO on every call and times out with SIGALRM, which only
        # works in the main thread and in whole seconds. Its job monitor thread marks the calls
        # whose status has arrived as ready; this polls those marks and downloads the outcomes.
        handles = list(handles)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            arrived = [h for h in handles if (h.ready or h.success) and not h.done]
            if arrived:
                list(self._downloads.map(self._download, arrived))
            done = [h for h in handles if h.done]
            if done or (deadline is not None and time.monotonic() >= deadline):
                return done, [h for h in handles if not h.done]
            pause = 0.05 if deadline is None else min(0.05, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)

    def _download(self, handle: Any) -> None:
        # A failed call ends in its error state here; result() raises its exception.
        handle.result(throw_except=False, internal_storage=self._fexec.internal_storage)

    def result(self, handle: Any) -> Any:
        hook = sys.excepthook
        try:
            return handle.result(throw_except=True, internal_storage=self._fexec.internal_storage)
        finally:
            # Lithops installs its own hook to print the remote traceback; the runner handles
            # the exception, so the process keeps its hook.
            sys.excepthook = hook

    def close(self) -> None:
        self._downloads.shutdown(wait=True, cancel_futures=True)
        try:
            self._fexec.clean(clean_cloudobjects=False, force=True)
        finally:
            self._fexec.__exit__(None, None, None)


_LOCAL = re.compile(r"^local(?::(\d+))?$")
_DASK_LOCAL = re.compile(r"^dask-local(?::(\d+))?$")
_DASK = re.compile(r"^dask://([^/\s]+:\d+)/?$")


def _count(text: str | None, url: str) -> int | None:
    if text is None:
        return None
    n = int(text)
    if n < 1:
        raise InputError(f"executor {url!r} asks for {n} workers; use at least 1")
    return n


def is_remote(executor: Executor | str) -> bool:
    """Whether an executor (open, or named by its URL) may run tasks where this machine's files
    are not visible (Dask, Lithops): the plan must then hand them data through the store."""
    if isinstance(executor, Executor):
        return executor.remote
    text = (executor or "").strip()
    return bool(_DASK_LOCAL.match(text) or _DASK.match(text) or text.startswith("lithops"))


def open_executor(url: str = "local") -> Executor:
    """Open the executor an URL names.

    Parameters
    ----------
    url : str
        One of ``serial``, ``local``, ``local:N``, ``dask://HOST:PORT``, ``dask-local``,
        ``dask-local:N``, ``lithops``, ``lithops:localhost``.

    Returns
    -------
    Executor
        An open executor; close it (or use it as a context manager) when done.

    Raises
    ------
    InputError
        If the URL is none of these forms.
    """
    text = (url or "").strip()
    if text == "serial":
        return SerialExecutor()
    if m := _LOCAL.match(text):
        return LocalExecutor(_count(m.group(1), text))
    if m := _DASK_LOCAL.match(text):
        return DaskExecutor(n_workers=_count(m.group(1), text) or 2)
    if m := _DASK.match(text):
        return DaskExecutor(address=f"tcp://{m.group(1)}")
    if text == "lithops":
        return LithopsExecutor()
    if text == "lithops:localhost":
        return LithopsExecutor(backend="localhost")
    raise InputError(f"unknown executor {url!r}; use one of: {URL_FORMS}")
