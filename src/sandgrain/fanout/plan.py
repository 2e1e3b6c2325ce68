"""Tasks, splits and the worker-side entry point of the fan-out engine.

A :class:`Task` names a function by its importable ``"module:function"`` name and carries
keyword arguments that *refer* to data (a store URL, an object key, a region), never the data
itself: the same task can then be shipped to a local process, a Dask worker or a cloud function.
A task function that finds its share of work too big returns a :class:`Split` of smaller tasks
instead of a result. :func:`execute` is what every backend runs on the worker.
"""

from __future__ import annotations

import enum
import importlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sandgrain.errors import InputError

__all__ = ["MAX_ARGS_BYTES", "NOTHING", "Plan", "Split", "Task", "execute", "resolve"]

#: Largest JSON encoding of a task's arguments, in bytes.
MAX_ARGS_BYTES = 16 * 1024

class _Nothing(enum.Enum):
    """The type of :data:`NOTHING` (an enum member stays itself through pickling)."""

    NOTHING = "nothing"

    def __repr__(self) -> str:
        return "NOTHING"


#: What :attr:`Split.done` holds when the split task finished nothing itself.
NOTHING = _Nothing.NOTHING

_IDENTIFIER = r"[A-Za-z_]\w*"
_FN_FORM = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")


@dataclass(frozen=True)
class Task:
    """One unit of work: an importable function and references to its data.

    Parameters
    ----------
    fn : str
        Importable name of the function, ``"package.module:function"``.
    args : dict
        Keyword arguments of the function. They must be JSON-serialisable and their JSON at most
        :data:`MAX_ARGS_BYTES` long: tasks carry references to data (store URL, key, region),
        not the data. They are stored in their JSON form, so tuples become lists, whatever
        backend runs the task.
    key : str, optional
        Human-readable name used in messages, e.g. ``"scan I:1-100000"``.
    weight : int, optional
        How much work the task is, in the plan's own unit (bases, records, sites), for progress
        reports: the runner counts work done as well as tasks done. Without a weight a task
        counts as 1 unit, and the subtasks of a :class:`Split` that carry no weights of their
        own share their parent's, so splitting never changes a plan's total work.

    Raises
    ------
    InputError
        If ``fn`` is not of the ``module:function`` form, or ``args`` is not a JSON-serialisable
        dict with string keys, or is too big, or ``weight`` is not a whole number 0 or more.
    """

    fn: str
    args: dict = field(default_factory=dict)
    key: str = ""
    weight: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fn, str) or not _FN_FORM.match(self.fn):
            raise InputError(
                f"task function {self.fn!r} is not an importable name of the form "
                "'package.module:function'"
            )
        if not isinstance(self.key, str):
            raise InputError(f"task key must be a string, not {type(self.key).__name__}")
        if self.weight is not None and (
            isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 0
        ):
            raise InputError(f"task weight must be a whole number 0 or more, not {self.weight!r}")
        if not isinstance(self.args, dict) or not all(isinstance(k, str) for k in self.args):
            raise InputError(f"{self._name()} arguments must be a dict with string keys")
        try:
            encoded = json.dumps(self.args, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"{self._name()} arguments are not JSON-serialisable ({exc}); tasks carry "
                "references to data (store URL, key, region), not the data"
            ) from None
        size = len(encoded.encode("utf-8"))
        if size > MAX_ARGS_BYTES:
            raise InputError(
                f"{self._name()} carries {size} bytes of arguments (at most {MAX_ARGS_BYTES}); "
                "tasks carry references to data (store URL, key, region), not the data"
            )
        # A private copy in JSON form: later changes to the caller's dict do not leak in, and
        # every backend sees the same values.
        object.__setattr__(self, "args", json.loads(encoded))

    def _name(self) -> str:
        return f"task {self.key!r}" if self.key else f"task {self.fn}"

    def describe(self, limit: int = 200) -> str:
        """Name the task for a one-line message.

        Parameters
        ----------
        limit : int
            Longest rendering of the arguments when the task has no key.

        Returns
        -------
        str
            ``"task 'KEY' (FN)"``, or ``"task FN(ARGS)"`` for a task without a key.
        """
        if self.key:
            return f"task {self.key!r} ({self.fn})"
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        if len(args) > limit:
            args = args[: limit - 3] + "..."
        return f"task {self.fn}({args})"


@dataclass(frozen=True)
class Split:
    """What a task function returns instead of a result when its work is too big.

    The runner submits ``tasks`` in its place; their results take the place of the split task's
    result, in order. A split may itself return splits, to any depth.

    A task that measured its work while running and found itself over budget (see
    :mod:`sandgrain.fanout.budget`) returns what it has finished as well: ``Split(rest,
    done=partial)`` puts ``partial`` first, then the results of ``rest``, in the split task's
    place — so the results read the same whatever the task did before it split.

    Parameters
    ----------
    tasks : tuple of Task
        The subtasks, in the order their results must appear.
    done : optional
        The result of the work the task finished before splitting; it comes before the
        subtasks' results. Without it the split task leaves no result of its own.
    done_weight : int, optional
        How much of the task's weight (see :class:`Task`) ``done`` stands for, so progress
        counts the finished part as done. Without it the finished part is the task's weight less
        its subtasks' weights, or, when they carry none, one equal share beside them.

    Raises
    ------
    InputError
        If ``tasks`` holds something other than Tasks, or ``done_weight`` is given without
        ``done`` or is not a whole number 0 or more.
    """

    tasks: tuple[Task, ...]
    done: Any = NOTHING
    done_weight: int | None = None

    def __post_init__(self) -> None:
        tasks = tuple(self.tasks)
        for task in tasks:
            if not isinstance(task, Task):
                raise InputError(f"a Split holds Tasks, not {type(task).__name__}")
        object.__setattr__(self, "tasks", tasks)
        if self.done_weight is not None:
            if not self.has_done:
                raise InputError("a Split's done_weight needs the finished result, done")
            w = self.done_weight
            if isinstance(w, bool) or not isinstance(w, int) or w < 0:
                raise InputError(
                    f"a Split's done_weight must be a whole number 0 or more, not {w!r}"
                )

    @property
    def has_done(self) -> bool:
        """Whether the split task finished part of its work (:attr:`done` holds its result)."""
        return self.done is not NOTHING


#: A plan is simply the tasks to run, in the order their results are wanted.
Plan = list[Task]


@lru_cache(maxsize=256)
def resolve(fn: str) -> Any:
    """Import the function named ``"module:function"`` (cached per process).

    Parameters
    ----------
    fn : str
        The importable name.

    Returns
    -------
    callable
        The function.

    Raises
    ------
    InputError
        If the module cannot be imported or has no such attribute.
    """
    module_name, _, attr_path = fn.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for attr in attr_path.split("."):
            obj = getattr(obj, attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot import task function {fn!r}: {exc}") from None
    if not callable(obj):
        raise InputError(f"task function {fn!r} is not callable")
    return obj


def execute(task: Task) -> Any:
    """Run one task: the worker-side entry point every backend submits.

    Parameters
    ----------
    task : Task
        The task to run.

    Returns
    -------
    Any
        Whatever the task function returns: a result, or a :class:`Split`.
    """
    return resolve(task.fn)(**task.args)
