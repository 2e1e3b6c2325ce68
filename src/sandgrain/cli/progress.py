"""Progress bars on stderr (rich) for long commands."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console = Console(stderr=True)


def _enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextlib.contextmanager
def byte_progress(quiet: bool = False) -> Iterator:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage (bytes)."""
    if not _enabled(quiet):
        yield None
        return
    bars = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    ids: dict[str, int] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in ids:
            for other in ids.values():  # a new stage means the previous ones are over
                bars.update(other, completed=bars.tasks[other].total or bars.tasks[other].completed)
            ids[stage] = bars.add_task(stage, total=total)
        bars.update(ids[stage], completed=done, total=total)

    with bars:
        yield update


@contextlib.contextmanager
def task_progress(description: str, quiet: bool = False) -> Iterator:
    """A ``progress(done, total)`` callback for a fan-out run: tasks done of tasks known."""
    if not _enabled(quiet):
        yield None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tasks"),
        TimeElapsedColumn(),
        console=console,
    )
    with bars:
        tid = bars.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bars.update(tid, completed=done, total=total)

        yield update
