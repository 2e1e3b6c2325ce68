"""The fan-out engine: run a plan of tasks on one of several backends and gather the results.

>>> from sandgrain.fanout import Task, run_plan
>>> sum_range = "sandgrain.testing.fanout_tasks:sum_range"  # a test helper task
>>> tasks = [Task(sum_range, {"start": 0, "end": 10, "max_size": 4})]
>>> run_plan(tasks, "serial")
[(0, 2, 2), (2, 5, 17), (5, 7, 16), (7, 10, 29)]

Tasks carry references to data (a store URL, a key, a region), never the data itself. A task
function may return a :class:`Split` of subtasks instead of a result; failed tasks are retried;
results come back in plan order whatever the backend. See ``docs/fanout.md``.
"""

from sandgrain.fanout.budget import Meter, TaskBudget
from sandgrain.fanout.executors import (
    URL_FORMS,
    DaskExecutor,
    Executor,
    LithopsExecutor,
    LocalExecutor,
    SerialExecutor,
    open_executor,
)
from sandgrain.fanout.plan import MAX_ARGS_BYTES, NOTHING, Plan, Split, Task, execute
from sandgrain.fanout.runner import ProgressCallback, Runner, run_plan

__all__ = [
    "MAX_ARGS_BYTES",
    "NOTHING",
    "URL_FORMS",
    "DaskExecutor",
    "Executor",
    "LithopsExecutor",
    "LocalExecutor",
    "Meter",
    "Plan",
    "ProgressCallback",
    "Runner",
    "SerialExecutor",
    "Split",
    "Task",
    "TaskBudget",
    "execute",
    "open_executor",
    "run_plan",
]
