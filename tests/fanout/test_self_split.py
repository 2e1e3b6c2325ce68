"""Tasks that split themselves: a task over its budget returns what it finished plus the rest as
subtasks (``Split(tasks, done=…)``); results are the same whatever the split, on every executor,
and progress counts the finished part as done, reaching its total exactly."""

from __future__ import annotations

import pickle

import pytest

from sandgrain.config import Settings
from sandgrain.errors import InputError
from sandgrain.fanout import NOTHING, Split, Task, TaskBudget, open_executor, run_plan
from sandgrain.fanout.budget import MB, halves
from sandgrain.fanout.runner import _children, _Node
from sandgrain.testing.fanout_tasks import metered_values, range_value

pytestmark = pytest.mark.timeout(120)

VALUES = "sandgrain.testing.fanout_tasks:metered_values"
TINY = [TaskBudget(seconds=0), TaskBudget(read_bytes=1)]


@pytest.fixture(scope="module")
def local2():
    with open_executor("local:2") as ex:
        yield ex


def plan(budget: TaskBudget | None, weighted: bool = True) -> list[Task]:
    """Three ranges of 0..60, each a task that splits itself when over ``budget``."""
    doc = None if budget is None else budget.to_json()
    return [
        Task(VALUES, {"start": a, "end": b, "budget": doc}, key=f"values {a}-{b}",
             weight=b - a if weighted else None)  # fmt: skip
        for a, b in ((0, 25), (25, 26), (26, 60))
    ]


def flat(results: list) -> list[tuple]:
    return [tuple(pair) for part in results for pair in part]


WANT = [(i, range_value(i)) for i in range(60)]


@pytest.mark.parametrize("budget", TINY, ids=["0s", "1B"])
@pytest.mark.parametrize("weighted", [True, False], ids=["weights", "no-weights"])
def test_tiny_budget_splits_repeatedly_with_the_same_results(budget, weighted, local2):
    unsplit = run_plan(plan(None, weighted), "serial")
    assert len(unsplit) == 3 and flat(unsplit) == WANT
    runs = []
    for executor in ("serial", local2):
        seen: list[tuple] = []
        results = run_plan(
            plan(budget, weighted), executor, progress=lambda *a, seen=seen: seen.append(a)
        )
        # every task did one unit, then handed the rest on: one result per value
        assert len(results) == 60 and flat(results) == WANT
        done, total, done_work, total_work = seen[-1]
        assert done == total > 3 and done_work == total_work
        assert total_work == (60 if weighted else total_work)
        assert all(d <= t and dw <= tw for d, t, dw, tw in seen)
        assert [dw for _, _, dw, _ in seen] == sorted(dw for _, _, dw, _ in seen)
        runs.append(results)
    # the same split, so the same results, on both executors
    assert [flat([r]) for r in runs[0]] == [flat([r]) for r in runs[1]]


def test_a_generous_budget_does_not_split():
    results = run_plan(plan(TaskBudget(seconds=60, read_bytes=1 << 30)), "serial")
    assert len(results) == 3 and flat(results) == WANT


def test_a_split_task_returns_its_finished_part_and_halves_of_the_rest():
    split = metered_values(10, 15, TaskBudget(seconds=0).to_json())
    assert isinstance(split, Split) and split.has_done
    assert split.done == [(10, range_value(10))] and split.done_weight == 1
    assert [(t.args["start"], t.args["end"], t.weight) for t in split.tasks] == [
        (11, 13, 2), (13, 15, 2),
    ]  # fmt: skip


def test_done_goes_before_the_subtasks_results_and_counts_as_done():
    node = _Node(Task(VALUES, {"start": 0, "end": 1}), (3,), work=10)
    sub = Task(VALUES, {"start": 0, "end": 1})
    # no weights anywhere: the finished part takes one equal share
    children, finished = _children(node, Split((sub, sub), done="x"))
    assert finished + sum(c.work for c in children) == 10 and finished == 4
    assert [c.path for c in children] == [(3, 0), (3, 1)]
    # a done_weight without subtask weights: the rest shared by the subtasks
    children, finished = _children(node, Split((sub, sub, sub), done="x", done_weight=4))
    assert finished == 4 and [c.work for c in children] == [2, 2, 2]
    # weighted subtasks: the finished part is what the parent's work exceeds theirs by
    heavy = Task(VALUES, {"start": 0, "end": 1}, weight=3)
    children, finished = _children(node, Split((heavy,), done="x"))
    assert finished == 7 and children[0].work == 3
    # without done nothing is finished
    children, finished = _children(node, Split((sub, sub)))
    assert finished == 0 and sum(c.work for c in children) == 10


def test_split_done_is_checked_and_survives_pickling():
    assert Split(()).done is NOTHING and not Split(()).has_done
    assert Split((), done=None).has_done  # None is a result like any other
    copy = pickle.loads(pickle.dumps(Split((), done=[1, 2], done_weight=2)))
    assert copy.has_done and copy.done == [1, 2]
    assert pickle.loads(pickle.dumps(Split(()))).done is NOTHING
    with pytest.raises(InputError, match="needs the finished result"):
        Split((), done_weight=1)
    with pytest.raises(InputError, match="whole number"):
        Split((), done=1, done_weight=-1)


def test_a_split_with_only_a_finished_part_is_its_result():
    results = run_plan([Task(VALUES, {"start": 0, "end": 2})], "serial")
    assert flat(results) == WANT[:2]


def test_halves_keeps_order():
    assert halves([]) == [] and halves([1]) == [[1]]
    assert halves(range(5)) == [[0, 1, 2], [3, 4]]


def test_budget_from_settings_and_json():
    env = {
        "SANDGRAIN_TASK_SECONDS": "2.5",
        "SANDGRAIN_TASK_READ_MB": "64",
        "SANDGRAIN_TASK_MEMORY_MB": "3008",
        "SANDGRAIN_TASK_DISK_MB": "512",
    }
    budget = TaskBudget.from_settings(Settings.from_env(env))
    assert budget == TaskBudget(2.5, 64 * MB, 3008 * MB, 512 * MB)
    assert TaskBudget.from_json(budget.to_json()) == budget
    default = TaskBudget.from_settings(Settings.from_env({}))
    assert default == TaskBudget() == TaskBudget.from_json(None)
    assert default.seconds is None and default.memory_bytes == default.disk_bytes == 10240 * MB
    for var, bad in (("SANDGRAIN_TASK_SECONDS", "-1"), ("SANDGRAIN_TASK_SECONDS", "soon"),
                     ("SANDGRAIN_TASK_MEMORY_MB", "0"), ("SANDGRAIN_TASK_DISK_MB", "1.5"),
                     ("SANDGRAIN_TASK_READ_MB", "-3")):  # fmt: skip
        with pytest.raises(InputError, match=var):
            Settings.from_env({var: bad})
    with pytest.raises(InputError, match="no field"):
        TaskBudget.from_json({"minutes": 3})
    with pytest.raises(InputError, match="0 seconds or more"):
        TaskBudget(seconds=-1)


def test_meter_always_lets_one_unit_finish():
    meter = TaskBudget(seconds=0, read_bytes=0).meter()
    assert not meter.over()
    meter.add(0)
    assert meter.over()
    meter = TaskBudget(read_bytes=100).meter()
    meter.add(60)
    assert not meter.over()
    meter.add(40)
    assert meter.over()
