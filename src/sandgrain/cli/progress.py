"""Progress and warnings on stderr for long commands.

On a terminal, progress is drawn as rich bars. Elsewhere (a batch job's log, CI) a fan-out run
prints one line every :data:`LOG_INTERVAL` seconds instead. Warnings that sandgrain logs (a
retried task, say) are printed as one ``sandgrain: warning: ...`` line each.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def console() -> Console:
    """The rich console on stderr that bars and warnings share (rich is imported on first
    use: a command that draws no bar and logs no warning never loads it)."""
    from rich.console import Console

    return Console(stderr=True)


#: Seconds between two progress lines when stderr is not a terminal.
LOG_INTERVAL = 10.0


class _WarningLine(logging.Handler):
    """Prints a log record as one ``sandgrain: warning: ...`` line on stderr, above any bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = " ".join(self.format(record).split())
            console().print(
                f"sandgrain: warning: {line}", markup=False, highlight=False, soft_wrap=True
            )
        except Exception:  # a handler must not raise into the code that logged
            self.handleError(record)


def show_warnings() -> None:
    """Print sandgrain's warnings (e.g. a fan-out task retried after losing its worker) on
    stderr, one line each; calling it again adds nothing."""
    logger = logging.getLogger("sandgrain")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(logging.WARNING))


def _enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


@contextlib.contextmanager
def byte_progress(quiet: bool = False) -> Iterator:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage (bytes)."""
    if not _enabled(quiet):
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bars = Progress(
        TextColumn("{task.description:<18}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console(),
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
def task_progress(
    description: str, quiet: bool = False, *, unit: str | None = None, interval: float | None = None
) -> Iterator:
    """A ``progress(done, total, done_work=None, total_work=None)`` callback for a fan-out run.

    Parameters
    ----------
    description : str
        What runs, e.g. ``"index yeast for NGG"``.
    quiet : bool
        Show nothing (the callback is None).
    unit : str, optional
        The unit of the plan's task weights (``"bases"``, ``"records"``, ``"sites"``): the bar
        and the rate count work in it. Without it they count tasks.
    interval : float, optional
        Seconds between two lines when stderr is not a terminal; default :data:`LOG_INTERVAL`.

    Yields
    ------
    callable or None
        On a terminal, updates a rich bar. Elsewhere, records the state, which a background
        thread prints every ``interval`` seconds as ``sandgrain: DESCRIPTION: 812/1,024 tasks
        (79%), 12.1 Mbases/s, ETA 0:03``; once any line was printed, a last one follows when
        the run ends, so a run shorter than ``interval`` prints nothing.
    """
    if quiet:
        yield None
        return
    tally = _Tally(description, unit)
    if not sys.stderr.isatty():
        with _log_lines(tally, LOG_INTERVAL if interval is None else interval):
            yield tally.update
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(),
    )
    with bars:
        tid = bars.add_task(description, total=None, counts="")

        def update(
            done: int, total: int, done_work: int | None = None, total_work: int | None = None
        ) -> None:
            tally.update(done, total, done_work, total_work)
            completed, size = tally.measure()
            bars.update(tid, completed=completed, total=size, counts=tally.counts())

        yield update


class _Tally:
    """The state of a fan-out run as its progress callback reports it, and its wording."""

    def __init__(self, description: str, unit: str | None):
        self.description = description
        self.unit = unit
        self.started = time.monotonic()
        self.state: tuple[int, int, int | None, int | None] = (0, 0, None, None)

    def update(
        self, done: int, total: int, done_work: int | None = None, total_work: int | None = None
    ) -> None:
        self.state = (done, total, done_work, total_work)  # one assignment: read whole

    def measure(self) -> tuple[int, int]:
        """``(done, total)`` in work units when the run reports them, else in tasks."""
        done, total, done_work, total_work = self.state
        if self.unit and done_work is not None and total_work is not None:
            return done_work, total_work
        return done, total

    def counts(self) -> str:
        """``"812/1,024 tasks, 12.1 Mbases/s"``."""
        done, total, _, _ = self.state
        text = f"{done:,}/{total:,} tasks"
        rate = self._rate(time.monotonic() - self.started)
        return f"{text}, {_si(rate)}{self._rate_unit()}/s" if rate else text

    def line(self, final: bool = False) -> str:
        """One log line: counts, share done, rate, and the time left (or taken, at the end)."""
        done, total, _, _ = self.state
        completed, size = self.measure()
        share = f" ({100 * completed // size}%)" if size else ""
        parts = [f"{done:,}/{total:,} tasks{share}"]
        elapsed = time.monotonic() - self.started
        rate = self._rate(elapsed)
        if rate:
            parts.append(f"{_si(rate)}{self._rate_unit()}/s")
        if final:
            parts.append(f"took {_clock(elapsed)}")
        elif rate and size:
            parts.append(f"ETA {_clock(max(0, size - completed) / rate)}")
        else:  # nothing finished yet: at least show the run is alive
            parts.append(f"{_clock(elapsed)} elapsed")
        return f"sandgrain: {self.description}: " + ", ".join(parts)

    def _rate(self, elapsed: float) -> float:
        completed, _ = self.measure()
        return completed / elapsed if completed and elapsed > 0 else 0.0

    def _rate_unit(self) -> str:
        _, _, done_work, _ = self.state
        return self.unit if self.unit and done_work is not None else "tasks"


@contextlib.contextmanager
def _log_lines(tally: _Tally, interval: float) -> Iterator[None]:
    """Print ``tally``'s line on stderr every ``interval`` seconds while the block runs, and a
    last one when it ends normally after any was printed."""
    stop = threading.Event()
    printed = threading.Event()

    def tick() -> None:
        while not stop.wait(max(interval, 0.01)):
            _print_line(tally.line())
            printed.set()

    thread = threading.Thread(target=tick, name="sandgrain-progress", daemon=True)
    thread.start()
    ended = False
    try:
        yield
        ended = True
    finally:
        stop.set()
        thread.join()
        if ended and printed.is_set():
            _print_line(tally.line(final=True))


def _print_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _si(value: float) -> str:
    """``12_100_000`` → ``"12.1 M"``: three significant figures and an SI prefix."""
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def _clock(seconds: float) -> str:
    """``"0:03"``, ``"12:30"`` or ``"2:05:00"``: minutes and seconds, hours when needed."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
