"""Worker processes that end with their coordinator, however it ends.

A local process pool's workers are not children of the coordinator but of the
``multiprocessing`` forkserver, and every worker holds the pipes the forkserver and the resource
tracker wait on. When the coordinator is killed (SIGKILL, or SIGTERM without a handler), the
workers keep waiting on their call queue for ever, and so the forkserver and the resource tracker
stay too, all with parent 1. Two mechanisms, each enough on its own, end them:

- **Parent-death signal.** On Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (``prctl(2)``) has the
  kernel kill a process when the thread that started it ends: immediate, even while the process
  runs native code that holds the GIL (the numba kernels do). Workers set it against the
  forkserver; the forkserver sets it against the coordinator when the coordinator's main thread
  started it (a thread that ends before the process would kill the forkserver early, so a
  forkserver started by another thread, a web server's job for instance, goes without).
- **Watchdog.** A daemon thread in each worker waits for the coordinator to end, by its process
  id: with a pidfd on Linux ≥ 5.3 (``pidfd_open(2)``, no polling, no pid reuse), elsewhere by
  polling ``os.getppid()`` and the coordinator's pid twice a second; then it kills its process.

When the workers are gone, the forkserver and the resource tracker read end-of-file on their
pipes and exit by themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Sequence

__all__ = ["FORKSERVER_PRELOAD", "bind_worker", "die_with_parent", "forkserver_context", "watch"]

#: The module the forkserver imports (its preload) to end with the coordinator.
FORKSERVER_PRELOAD = __name__

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_POLL_S = 0.5


def die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent thread ends (Linux only).

    Returns
    -------
    bool
        Whether the signal was set; ``False`` on other systems or if ``prctl`` refused.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _die() -> None:
    kill = getattr(signal, "SIGKILL", None)
    if kill is None:  # Windows
        os._exit(1)
    os.kill(os.getpid(), kill)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_end(pid: int, parent: int) -> None:
    """Return once process ``pid`` has ended (or this process's parent has changed)."""
    if hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        except OSError:  # an older kernel, or a sandbox without the call: poll instead
            fd = None
        if fd is not None:
            try:
                # a pidfd turns readable when the process terminates, zombie or reaped
                select.select([fd], [], [])
            finally:
                os.close(fd)
            return
    while _alive(pid) and os.getppid() == parent:
        time.sleep(_POLL_S)


def watch(pid: int) -> threading.Thread:
    """Start a daemon thread that kills this process once process ``pid`` has ended."""

    parent = os.getppid()

    def run() -> None:
        _wait_for_end(pid, parent)
        _die()

    thread = threading.Thread(target=run, name="sandgrain-lifeline", daemon=True)
    thread.start()
    return thread


def bind_worker(coordinator: int) -> None:
    """Initializer of a local pool's workers: end with the pool's parent process and with the
    ``coordinator`` (the process id that made the pool), whichever ends first.

    Never raises: a pool whose initializer fails is broken for good.
    """
    with contextlib.suppress(Exception):
        die_with_parent()
    with contextlib.suppress(Exception):
        watch(coordinator)


def _in_forkserver() -> bool:
    """Whether this process is a ``multiprocessing`` forkserver importing its preload: it runs
    ``python -c 'from multiprocessing.forkserver import main; main(…)'``."""
    return sys.argv == ["-c"] and "multiprocessing.forkserver" in sys.modules


def forkserver_context(
    parent_thread_lives: bool, modules: Sequence[str] = ()
) -> multiprocessing.context.BaseContext:
    """The forkserver start method, whose server (if it starts now) imports this module and so
    dies with the coordinator when ``parent_thread_lives`` (the caller is the main thread), and
    imports ``modules`` too, once for all the workers forked from it."""
    ctx = multiprocessing.get_context("forkserver")
    preload = ["__main__", FORKSERVER_PRELOAD] if parent_thread_lives else ["__main__"]
    preload += [m for m in modules if m not in preload]
    # Read only when the forkserver starts; one that already runs keeps what it has.
    ctx.set_forkserver_preload(preload)
    return ctx


if _in_forkserver():
    die_with_parent()
