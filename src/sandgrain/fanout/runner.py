"""Run a plan of tasks on an executor: splitting, retries, progress, cancellation, order.

The runner keeps every task it knows of as a *node* with a path: ``(i,)`` for the i-th task of
the plan, ``(i, j)`` for the j-th subtask of its split, and so on. Results are keyed by path,
so sorting the paths gives plan order with each split's subtasks' results in place of the split
task, whatever order the tasks finished in.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandgrain.errors import (
    AmbiguousNameError,
    CancelledError,
    ConflictError,
    InputError,
    NotFoundError,
    TaskFailedError,
)
from sandgrain.fanout.executors import Executor, open_executor
from sandgrain.fanout.plan import Split, Task

#: Errors that say the request is wrong; a task raising one fails the run at once, unretried.
_USER_ERRORS = (InputError, NotFoundError, AmbiguousNameError, ConflictError)

__all__ = ["ProgressCallback", "Runner", "run_plan"]

#: ``progress(done, total)``: tasks finished so far and tasks known so far.
ProgressCallback = Callable[[int, int], None]


@dataclass
class _Node:
    task: Task
    path: tuple[int, ...]
    attempts: int = 0


def _error_text(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


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
        ``total`` grows when splits add tasks, and equals ``done`` at the end.
    cancel : callable, optional
        Returns True when the caller wants the run stopped, e.g. ``event.is_set``; polled every
        ``poll_interval`` seconds.
    poll_interval : float
        Longest wait, in seconds, for a task to finish before checking ``cancel`` again.
    max_in_flight : int, optional
        Most tasks submitted at once; default is the executor's ``max_in_flight``.
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
    ):
        if retries < 0:
            raise InputError(f"retries must be 0 or more, not {retries}")
        self._owned = isinstance(executor, str)
        self.executor = open_executor(executor) if isinstance(executor, str) else executor
        self.retries = retries
        self.progress = progress
        self.cancel = cancel
        self.poll_interval = poll_interval
        self.max_in_flight = max(1, max_in_flight or self.executor.max_in_flight)

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
            place holds its subtasks' results.

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
        executor = self.executor
        queued = deque(_Node(task, (i,)) for i, task in enumerate(plan))
        in_flight: dict[Any, _Node] = {}
        results: dict[tuple[int, ...], Any] = {}
        done = 0
        total = len(plan)
        self._report(done, total)
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
                        if isinstance(exc, _USER_ERRORS):
                            # the input is wrong, not the worker: a retry cannot help, and the
                            # user gets the task's own message
                            raise exc from None
                        node.attempts += 1
                        if node.attempts > self.retries:
                            raise TaskFailedError(
                                f"{node.task.describe()} failed after {node.attempts} "
                                f"attempt{'s' if node.attempts > 1 else ''}: {_error_text(exc)}",
                                task_key=node.task.key or node.task.fn,
                            ) from exc
                        queued.appendleft(node)
                        continue
                    if isinstance(value, Split):
                        children = [
                            _Node(task, (*node.path, j)) for j, task in enumerate(value.tasks)
                        ]
                        total += len(children)
                        # Depth first: a split's subtasks go before the rest of the queue.
                        queued.extendleft(reversed(children))
                    else:
                        results[node.path] = value
                    done += 1
                    self._report(done, total)
        except BaseException:
            if in_flight:
                # The original error matters more than a failed cleanup.
                with contextlib.suppress(Exception):
                    executor.cancel(list(in_flight))
            raise
        return [results[path] for path in sorted(results)]

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
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
) -> list[Any]:
    """Run a plan of tasks on an executor and return the results in plan order.

    Parameters
    ----------
    tasks : iterable of Task
        The plan.
    executor : Executor or str
        An open executor, or an executor URL such as ``"local:4"`` or ``"dask://host:8786"``;
        an executor opened here is closed before returning.
    retries, progress, cancel, poll_interval, max_in_flight
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
    ) as runner:
        return runner.run(tasks)
