"""Small deterministic task functions, for the tests and the CLI demo.

They live in the package, not in the tests, because workers (local processes, Dask workers,
Lithops functions) import them by name.
"""

from __future__ import annotations

import os
import time
import uuid
import zlib
from itertools import pairwise
from pathlib import Path

from sandgrain.fanout.plan import Split, Task

__all__ = [
    "always_fail",
    "crash_once",
    "demo_plan",
    "flaky",
    "imported_in",
    "metered_values",
    "range_value",
    "slow",
    "sum_range",
]

_HERE = __name__
_IMPORTED_IN = os.getpid()  # the process that imported this module


def range_value(i: int) -> int:
    """The deterministic function :func:`sum_range` sums, for a plain reference computation."""
    return (i * i) % 7 + i


def _pause(start: int, end: int, delay: float) -> None:
    """Sleep a pseudo-random share of ``delay`` that depends on the range only."""
    if delay > 0:
        share = (zlib.crc32(f"{start}-{end}".encode()) % 1000) / 1000
        time.sleep(delay * share)


def sum_range(start: int, end: int, max_size: int, delay: float = 0.0) -> Split | tuple:
    """Sum :func:`range_value` over ``[start, end)``, splitting ranges bigger than ``max_size``.

    Parameters
    ----------
    start, end : int
        The half-open range.
    max_size : int
        Largest range summed directly; a bigger one is split in two halves.
    delay : float
        Up to this many seconds of pseudo-random sleep, so completion order varies.

    Returns
    -------
    Split or tuple
        A :class:`Split` of the two halves, or ``(start, end, total)``.
    """
    _pause(start, end, delay)
    if end - start > max_size:
        mid = (start + end) // 2
        return Split(
            tuple(
                Task(
                    f"{_HERE}:sum_range",
                    {"start": a, "end": b, "max_size": max_size, "delay": delay},
                    key=f"sum {a}-{b}",
                )
                for a, b in ((start, mid), (mid, end))
            )
        )
    return (start, end, sum(range_value(i) for i in range(start, end)))


def flaky(key: str, fail_times: int, marker_dir: str, value: object = None) -> object:
    """Fail the first ``fail_times`` attempts, then return ``value`` (or ``key``).

    Attempts run in different processes, so they are counted with one file each in
    ``marker_dir``.

    Raises
    ------
    RuntimeError
        On the first ``fail_times`` attempts.
    """
    folder = Path(marker_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.attempt-{uuid.uuid4().hex}").touch(exist_ok=False)
    attempt = len(list(folder.glob(f"{key}.attempt-*")))
    if attempt <= fail_times:
        raise RuntimeError(f"{key} fails on purpose at attempt {attempt} of {fail_times}")
    return key if value is None else value


def crash_once(key: str, marker_dir: str) -> str:
    """End the worker process abruptly on the first attempt (as an out-of-memory kill would),
    then return ``key``. Never run it in-process (``serial``): it would end the caller."""
    marker = Path(marker_dir, f"{key}.crashed")
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os._exit(70)
    return key


def always_fail(message: str = "boom") -> None:
    """Raise ``ValueError(message)``, every time."""
    raise ValueError(message)


def slow(seconds: float, value: object = None, marker_dir: str | None = None) -> object:
    """Sleep ``seconds``, leave a marker file in ``marker_dir`` if given, return ``value``."""
    time.sleep(seconds)
    if marker_dir:
        Path(marker_dir, f"slow-{os.getpid()}-{uuid.uuid4().hex}").touch()
    return value


def imported_in(seconds: float = 0.0) -> tuple[int, int]:
    """``(process that imported this module, process running this task)``, after sleeping
    ``seconds`` (so that a pool's tasks spread over its workers): they differ on a worker that
    started with the module already imported."""
    time.sleep(seconds)
    return _IMPORTED_IN, os.getpid()


def demo_plan(n: int = 1_000_000, parts: int = 4, max_size: int = 100_000) -> list[Task]:
    """A small plan for demos: ``parts`` ranges over ``[0, n)`` that split down to ``max_size``.

    The sum of the totals of its results equals ``sum(range_value(i) for i in range(n))``.
    """
    bounds = [n * p // parts for p in range(parts + 1)]
    return [
        Task(
            f"{_HERE}:sum_range",
            {"start": a, "end": b, "max_size": max_size},
            key=f"sum {a}-{b}",
        )
        for a, b in pairwise(bounds)
    ]


def user_error(message: str) -> None:
    """Raise a user error (an :class:`InputError`): the runner must not retry it."""
    from sandgrain.errors import InputError

    raise InputError(message)


def metered_values(start: int, end: int, budget: dict | None = None) -> Split | list:
    """``[(i, range_value(i))]`` for ``[start, end)``, one unit of work per ``i``, splitting
    itself when over its task budget (:mod:`sandgrain.fanout.budget`).

    Each unit counts as 8 bytes read. Once over budget the task returns what it finished as
    ``Split(halves of the rest, done=finished values)``, with the weights of both, so the
    concatenated results equal an unsplit run's whatever the budget.
    """
    from sandgrain.fanout.budget import TaskBudget, halves

    meter = TaskBudget.from_json(budget).meter()
    values = []
    for i in range(start, end):
        if meter.over():
            rest = [
                Task(
                    f"{_HERE}:metered_values",
                    {"start": part[0], "end": part[-1] + 1, "budget": budget},
                    key=f"values {part[0]}-{part[-1] + 1}",
                    weight=len(part),
                )
                for part in halves(range(i, end))
            ]
            return Split(tuple(rest), done=values, done_weight=len(values))
        values.append((i, range_value(i)))
        meter.add(8)
    return values
