"""What one fan-out task may use, so that it fits where it runs: time, bytes read, memory, disk.

A serverless function has hard limits — an AWS Lambda function at most 15 minutes, 10,240 MB of
memory and 10,240 MB of ``/tmp`` (AWS Lambda Developer Guide, "Lambda quotas") — and a cluster
worker soft ones. A :class:`TaskBudget` states them for one task. It is made by the coordinator
from its settings (:meth:`TaskBudget.from_settings`) and travels in the task's arguments
(:meth:`TaskBudget.to_json`): workers never read settings.

Planners use the memory and disk budget to size partitions before the run (e.g. the guide site
index). Tasks use the time and read budget *while* they run: a task keeps a :class:`Meter`, and
once it is over budget it returns the work it has finished with the rest re-planned as
subtasks — ``Split(tasks, done=partial_result)`` — the recursive pattern of CSIRO's serverless
PathsBeacon (github.com/aehrc/PathsBeacon), where a function that finds its share too big hands
the remainder to new invocations of itself. A task always finishes at least one unit of work
before it checks, so splitting ends whatever the budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sandgrain.errors import InputError

if TYPE_CHECKING:
    from sandgrain.config import Settings

__all__ = ["DEFAULT_DISK_MB", "DEFAULT_MEMORY_MB", "MB", "Meter", "TaskBudget", "halves"]

#: One MB of the settings, as AWS counts Lambda memory and ``/tmp``: 2**20 bytes.
MB = 1 << 20
#: An AWS Lambda function's largest memory (MB).
DEFAULT_MEMORY_MB = 10240
#: An AWS Lambda function's largest ephemeral storage, ``/tmp`` (MB).
DEFAULT_DISK_MB = 10240

T = TypeVar("T")


@dataclass(frozen=True)
class TaskBudget:
    """The most one task may use.

    Parameters
    ----------
    seconds : float, optional
        Wall time after which a task that can split itself hands its remainder on; ``None``:
        no limit. ``0`` makes every such task split after its first unit of work (tests).
    read_bytes : int, optional
        Bytes read after which such a task hands its remainder on; ``None``: no limit.
    memory_bytes : int
        Memory one task may use; planners size partitions so one task fits.
    disk_bytes : int
        Local disk (worker cache, scratch) one task may fill; planners size partitions so the
        files one task reads fit.

    Raises
    ------
    InputError
        If a value is negative, or a size is not a whole number.
    """

    seconds: float | None = None
    read_bytes: int | None = None
    memory_bytes: int = DEFAULT_MEMORY_MB * MB
    disk_bytes: int = DEFAULT_DISK_MB * MB

    def __post_init__(self) -> None:
        if self.seconds is not None:
            if isinstance(self.seconds, bool) or not isinstance(self.seconds, int | float):
                raise InputError(f"a task's time budget must be seconds, not {self.seconds!r}")
            if not math.isfinite(self.seconds) or self.seconds < 0:
                raise InputError(
                    f"a task's time budget must be 0 seconds or more, not {self.seconds}"
                )
        for name in ("read_bytes", "memory_bytes", "disk_bytes"):
            value = getattr(self, name)
            if value is None and name == "read_bytes":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(
                    f"a task's {name.replace('_', ' ')} must be a whole number 0 or more, "
                    f"not {value!r}"
                )

    @classmethod
    def from_settings(cls, settings: Settings) -> TaskBudget:
        """The budget of ``SANDGRAIN_TASK_SECONDS``, ``…_READ_MB``, ``…_MEMORY_MB`` and
        ``…_DISK_MB``."""
        return cls(
            seconds=settings.task_seconds,
            read_bytes=None if settings.task_read_mb is None else settings.task_read_mb * MB,
            memory_bytes=settings.task_memory_mb * MB,
            disk_bytes=settings.task_disk_mb * MB,
        )

    def to_json(self) -> dict:
        """The budget as task arguments carry it."""
        return {
            "seconds": self.seconds,
            "read_bytes": self.read_bytes,
            "memory_bytes": self.memory_bytes,
            "disk_bytes": self.disk_bytes,
        }

    @classmethod
    def from_json(cls, doc: dict | None) -> TaskBudget:
        """The budget :meth:`to_json` wrote; ``None`` or ``{}``: the default budget."""
        if not doc:
            return cls()
        if not isinstance(doc, dict):
            raise InputError(f"a task budget is a JSON object, not {type(doc).__name__}")
        unknown = set(doc) - {"seconds", "read_bytes", "memory_bytes", "disk_bytes"}
        if unknown:
            raise InputError(f"a task budget has no field {sorted(unknown)[0]!r}")
        return cls(**doc)

    @property
    def fits_bytes(self) -> int:
        """The most data one task may hold: the smaller of its memory and disk budgets."""
        return min(self.memory_bytes, self.disk_bytes)

    def meter(self) -> Meter:
        """A :class:`Meter` started now."""
        return Meter(self)


@dataclass
class Meter:
    """A task's measure of its own work against its :class:`TaskBudget`.

    Call :meth:`add` with the bytes of each unit of work read, and :meth:`over` before the next
    unit: true once the time or read budget is spent.
    """

    budget: TaskBudget
    started: float = field(default_factory=time.monotonic)
    bytes_read: int = 0
    units: int = 0

    def add(self, nbytes: int = 0) -> None:
        """Count one finished unit of work that read ``nbytes``."""
        self.units += 1
        self.bytes_read += int(nbytes)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def over(self) -> bool:
        """Whether the task should hand the rest of its work on: it has finished at least one
        unit, and it has run for ``seconds`` or read ``read_bytes`` (whichever is set)."""
        if self.units == 0:
            return False
        b = self.budget
        if b.read_bytes is not None and self.bytes_read >= b.read_bytes:
            return True
        return b.seconds is not None and self.elapsed >= b.seconds


def halves(items: Sequence[T]) -> list[list[T]]:
    """``items`` in two halves, in order (one list when there is one item, none when empty):
    how a task re-plans its remainder, so a remainder that is still too big splits again."""
    items = list(items)
    if len(items) <= 1:
        return [items] if items else []
    mid = (len(items) + 1) // 2
    return [items[:mid], items[mid:]]
