"""Run a plan of tasks on an executor: splitting, retries, progress, cancellation, order.

The runner keeps every task it knows of as a *node* with a path: ``(i,)`` for the i-th task of
the plan, ``(i, j)`` for the j-th subtask of its split, and so on; the part a split task
finished itself (``Split.done``) is kept at ``(i, -1)``. Results are keyed by path, so sorting
the paths gives plan order with each split's finished part and subtasks' results in place of the
split task, whatever order the tasks finished in.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandgrain.errors import CancelledError, InputError, SandgrainError, TaskFailedError
from sandgrain.fanout import failures
from sandgrain.fanout.executors import Executor, open_executor
from sandgrain.fanout.plan import Split, Task

__all__ = ["ProgressCallback", "Runner", "run_plan"]

#: ``progress(done, total)``: tasks finished so far and tasks known so far. A callback that
#: takes four arguments is called ``progress(done, total, done_work, total_work)``, with the
#: work units of the tasks' weights as well (see :class:`~sandgrain.fanout.plan.Task`).
ProgressCallback = Callable[..., None]

#: Retried tasks are reported here as warnings, one line each (the CLI prints them on stderr).
logger = logging.getLogger(__name__)


@dataclass
class _Node:
    task: Task
    path: tuple[int, ...]
    work: int = 1
    attempts: int = 0


def _shares(work: int, n: int) -> list[int]:
    """``work`` in ``n`` whole shares as equal as can be, summing to ``work``."""
    share, extra = divmod(work, max(1, n))
    return [share + (j < extra) for j in range(n)]


def _children(node: _Node, split: Split) -> tuple[list[_Node], int]:
    """Nodes of a split's subtasks, and the work of the part the split task finished.

    Subtasks without weights share their parent's work (the finished part, if any, taking one
    share, or its ``done_weight``); with weights, the finished part is ``done_weight`` or what
    the parent's work exceeds theirs by. So a split that finished work counts it as done."""
    tasks = split.tasks
    if any(task.weight is not None for task in tasks):
        works = [1 if task.weight is None else task.weight for task in tasks]
        finished = split.done_weight
        if finished is None:
            finished = max(0, node.work - sum(works)) if split.has_done else 0
    elif not split.has_done:
        works, finished = _shares(node.work, len(tasks)), 0
    elif split.done_weight is not None:
        finished = split.done_weight
        works = _shares(max(0, node.work - finished), len(tasks))
    else:
        finished, *works = _shares(node.work, len(tasks) + 1)
    nodes = [_Node(task, (*node.path, j), works[j]) for j, task in enumerate(tasks)]
    return nodes, finished


def _takes_work(progress: ProgressCallback | None) -> bool:
    """Whether ``progress`` accepts ``(done, total, done_work, total_work)``."""
    if progress is None:
        return False
    try:
        params = inspect.signature(progress).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the two-argument form
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    return sum(p.kind in positional for p in params) >= 4


class Runner:
    """Runs plans on one executor.

    Parameters
    ----------
    executor : Executor or str
        An open executor, or an executor URL (see :func:`open_executor`); an executor opened
        from a URL is closed by :meth:`close`.
    retries : int
        How many more times a task that raised is submitted before the run fails.
    progress : callable, optional
        ``progress(done, total)``, called once at the start and then as each task finishes;
        ``total`` grows when splits add tasks, and equals ``done`` at the end. A callback with
        four parameters gets ``progress(done, total, done_work, total_work)``: the same, plus
        the work of the tasks' weights, where ``done_work`` reaches ``total_work`` exactly.
    cancel : callable, optional
        Returns True when the caller wants the run stopped, e.g. ``event.is_set``; polled every
        ``poll_interval`` seconds.
    poll_interval : float
        Longest wait, in seconds, for a task to finish before checking ``cancel`` again.
    max_in_flight : int, optional
        Most tasks submitted at once; default is the executor's ``max_in_flight``.
    store_probe : callable, optional
        ``store_probe(executor)``, called before each plan runs: checks that the executor's
        workers see the data the tasks refer to, raising if not (the runner knows no store;
        domains pass their store's :meth:`~sandgrain.storage.Store.probe`).
    """

    def __init__(
        self,
        executor: Executor | str,
        *,
        retries: int = 2,
        progress: ProgressCallback | None = None,
        cancel: Callable[[], bool] | None = None,
        poll_interval: float = 0.05,
        max_in_flight: int | None = None,
        store_probe: Callable[[Executor], None] | None = None,
    ):
        if retries < 0:
            raise InputError(f"retries must be 0 or more, not {retries}")
        self._owned = isinstance(executor, str)
        self.executor = open_executor(executor) if isinstance(executor, str) else executor
        self.retries = retries
        self.progress = progress
        self._takes_work = _takes_work(progress)
        self.cancel = cancel
        self.poll_interval = poll_interval
        self.max_in_flight = max(1, max_in_flight or self.executor.max_in_flight)
        self.store_probe = store_probe

    def close(self) -> None:
        """Close the executor if this runner opened it."""
        if self._owned:
            self.executor.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, tasks: Iterable[Task]) -> list[Any]:
        """Run ``tasks`` and return their results in plan order.

        Parameters
        ----------
        tasks : iterable of Task
            The plan.

        Returns
        -------
        list
            One result per task that did not split, depth-first in plan order: a split task's
            place holds the result of the part it finished (``Split.done``), if any, then its
            subtasks' results.

        Raises
        ------
        TaskFailedError
            When a task still raises after ``retries`` more attempts; pending tasks are
            cancelled first.
        CancelledError
            When ``cancel()`` became true; outstanding tasks are cancelled first.
        """
        plan = list(tasks)
        for task in plan:
            if not isinstance(task, Task):
                raise InputError(f"a plan holds Tasks, not {type(task).__name__}")
        if self.store_probe is not None:
            self.store_probe(self.executor)
        executor = self.executor
        queued = deque(
            _Node(task, (i,), 1 if task.weight is None else task.weight)
            for i, task in enumerate(plan)
        )
        in_flight: dict[Any, _Node] = {}
        results: dict[tuple[int, ...], Any] = {}
        done = done_work = 0
        total = len(plan)
        total_work = sum(node.work for node in queued)
        started = False  # whether a task ever came back from a worker: workers can start
        self._report(done, total, done_work, total_work)
        try:
            while queued or in_flight:
                if self.cancel is not None and self.cancel():
                    raise CancelledError(f"cancelled after {done} of {total} tasks")
                room = self.max_in_flight - len(in_flight)
                if queued and room > 0:
                    batch = [queued.popleft() for _ in range(min(room, len(queued)))]
                    handles = executor.submit_many([node.task for node in batch])
                    in_flight.update(zip(handles, batch, strict=True))
                finished, _ = executor.wait(list(in_flight), timeout=self.poll_interval)
                # In path order, so a run on one backend behaves the same every time.
                for handle in sorted(finished, key=lambda h: in_flight[h].path):
                    node = in_flight.pop(handle)
                    try:
                        value = executor.result(handle)
                    except Exception as exc:
                        self._retry_or_raise(node, exc, started)
                        started = started or not failures.lost_worker(exc)  # a worker raised it
                        queued.appendleft(node)
                        continue
                    started = True
                    if isinstance(value, Split):
                        children, finished = _children(node, value)
                        total += len(children)
                        total_work += sum(c.work for c in children) + finished - node.work
                        if value.has_done:
                            # the finished part goes before the subtasks': path (..., -1)
                            results[(*node.path, -1)] = value.done
                            done_work += finished
                        # Depth first: a split's subtasks go before the rest of the queue.
                        queued.extendleft(reversed(children))
                    else:
                        results[node.path] = value
                        done_work += node.work
                    done += 1
                    self._report(done, total, done_work, total_work)
        except BaseException:
            if in_flight:
                # The original error matters more than a failed cleanup.
                with contextlib.suppress(Exception):
                    executor.cancel(list(in_flight))
            raise
        return [results[path] for path in sorted(results)]

    def _retry_or_raise(self, node: _Node, exc: Exception, started: bool) -> None:
        """Count a failed attempt of ``node``: warn and return when it is to run again, raise
        the error the run fails with otherwise."""
        task = node.task
        if isinstance(exc, SandgrainError) and not failures.is_retryable(exc):
            # the request is wrong, not the worker: a retry cannot help, and the user gets
            # the task's own message
            raise exc from None
        if failures.lost_worker(exc) and not started and failures.main_lacks_guard():
            # every worker re-ran the unguarded script instead of starting: retries would
            # only break fresh pools the same way
            raise TaskFailedError(failures.GUARD_MESSAGE, task_key=task.key or task.fn) from exc
        if not failures.is_retryable(exc):
            raise TaskFailedError(
                f"{task.describe()} failed: {failures.describe_error(exc)} (not retried: a "
                "module it needs cannot be imported where it runs)",
                task_key=task.key or task.fn,
            ) from exc
        node.attempts += 1
        if node.attempts > self.retries:
            raise TaskFailedError(
                f"{task.describe()} failed after {node.attempts} "
                f"attempt{'s' if node.attempts > 1 else ''}: {failures.describe_error(exc)}",
                task_key=task.key or task.fn,
            ) from exc
        logger.warning(
            "%s %s; retrying (attempt %d of %d)",
            task.describe(),
            failures.cause(exc),
            node.attempts + 1,
            self.retries + 1,
        )

    def _report(self, done: int, total: int, done_work: int, total_work: int) -> None:
        if self.progress is None:
            return
        if self._takes_work:
            self.progress(done, total, done_work, total_work)
        else:
            self.progress(done, total)


def run_plan(
    tasks: Iterable[Task],
    executor: Executor | str = "local",
    *,
    retries: int = 2,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    poll_interval: float = 0.05,
    max_in_flight: int | None = None,
    store_probe: Callable[[Executor], None] | None = None,
) -> list[Any]:
    """Run a plan of tasks on an executor and return the results in plan order.

    Parameters
    ----------
    tasks : iterable of Task
        The plan.
    executor : Executor or str
        An open executor, or an executor URL such as ``"local:4"`` or ``"dask://host:8786"``;
        an executor opened here is closed before returning.
    retries, progress, cancel, poll_interval, max_in_flight, store_probe
        See :class:`Runner`.

    Returns
    -------
    list
        The results, depth-first in plan order (see :meth:`Runner.run`).
    """
    with Runner(
        executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
        poll_interval=poll_interval,
        max_in_flight=max_in_flight,
        store_probe=store_probe,
    ) as runner:
        return runner.run(tasks)
