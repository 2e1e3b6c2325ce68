"""Why a task failed, and whether running it again can help.

The runner retries a task whose failure may be transient (a lost worker, a timeout, an
unreachable store) and fails at once, with the task's own message, when another attempt would
fail the same way (an error in the request, a module missing where the task runs, a script that
cannot start a process pool).
"""

from __future__ import annotations

import ast
import multiprocessing
import sys
from concurrent.futures.process import BrokenProcessPool

from sandgrain.errors import DownloadError, SandgrainError, StorageError

__all__ = [
    "GUARD_MESSAGE",
    "cause",
    "describe_error",
    "is_retryable",
    "lost_worker",
    "main_lacks_guard",
]

#: What a plan run from a script without a ``__main__`` guard fails with on a process pool.
GUARD_MESSAGE = (
    "the process pool could not start its workers: a script that runs a plan on a process pool "
    'needs `if __name__ == "__main__":` (see docs/fanout.md)'
)

#: Sandgrain errors a retry may cure: the store or a download may answer next time.
_TRANSIENT = (StorageError, DownloadError)


def describe_error(exc: BaseException) -> str:
    """``"Type: message"`` on one line (just ``"Type"`` for an empty message)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def lost_worker(exc: BaseException) -> bool:
    """Whether ``exc`` says the worker running the task went away, rather than the task
    raising: a broken local process pool (a worker killed for memory, a crash in native code)
    or Dask's ``KilledWorker`` (a task that took down every worker it was given)."""
    return isinstance(exc, BrokenProcessPool) or type(exc).__name__ == "KilledWorker"


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt of a task that raised ``exc`` may succeed.

    A :class:`~sandgrain.errors.SandgrainError` says the request is wrong (bad input, a name
    that does not exist, a conflict) and an :class:`ImportError` that a module is missing
    where the task runs: both fail the same way every time. Storage and download errors, lost
    workers, :class:`OSError`, timeouts and any other exception may be transient.
    """
    if isinstance(exc, SandgrainError):
        return isinstance(exc, _TRANSIENT)
    return not isinstance(exc, ImportError)


def cause(exc: BaseException) -> str:
    """What happened to a task, for a message that starts with the task's name."""
    if lost_worker(exc):
        return f"lost its worker ({describe_error(exc)})"
    return f"failed ({describe_error(exc)})"


def main_lacks_guard() -> bool:
    """Whether this process runs a script whose top level has no ``if __name__ ==
    "__main__":`` block.

    Process pools started with ``spawn`` or ``forkserver`` import the main script again in each
    worker; without the guard, each worker runs the script's plan again instead of starting,
    and the pool breaks before any task finishes. False for an interactive session, ``-c``
    code, a script that cannot be read, and in a worker process.
    """
    if multiprocessing.parent_process() is not None:
        return False
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path:
        return False
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return False
    return not any(isinstance(node, ast.If) and _is_guard(node.test) for node in tree.body)


def _is_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1
