"""Tests of the fan-out engine: the same plans on every backend.

Every behaviour test runs on ``serial``, ``local:2``, ``dask-local:2`` and ``lithops:localhost``;
the executors are opened once per module, as starting a cluster is the slow part.
"""

from __future__ import annotations

import random
import sys
import threading
import time

import pytest

from sandgrain.errors import CancelledError, InputError, TaskFailedError
from sandgrain.fanout import (
    MAX_ARGS_BYTES,
    Split,
    Task,
    open_executor,
    run_plan,
)
from sandgrain.testing.fanout_tasks import demo_plan, range_value

pytestmark = pytest.mark.timeout(120)

DEMO = "sandgrain.testing.fanout_tasks"
BACKENDS = ["serial", "local:2", "dask-local:2", "lithops:localhost"]


@pytest.fixture(scope="module")
def executors():
    opened = {}
    yield opened
    for executor in opened.values():
        executor.close()


@pytest.fixture(params=BACKENDS)
def executor(request, executors):
    url = request.param
    if url not in executors:
        executors[url] = open_executor(url)
    return executors[url]


def sum_task(start, end, max_size, delay=0.0):
    return Task(
        f"{DEMO}:sum_range",
        {"start": start, "end": end, "max_size": max_size, "delay": delay},
        key=f"sum {start}-{end}",
    )


def expected_leaves(start, end, max_size):
    """Plain Python: the leaves sum_range splits [start, end) into, in order, with their sums."""
    if end - start > max_size:
        mid = (start + end) // 2
        return expected_leaves(start, mid, max_size) + expected_leaves(mid, end, max_size)
    return [(start, end, sum(range_value(i) for i in range(start, end)))]


def expected_task_count(start, end, max_size):
    if end - start > max_size:
        mid = (start + end) // 2
        return (
            1 + expected_task_count(start, mid, max_size) + expected_task_count(mid, end, max_size)
        )
    return 1


# --- behaviour on every backend -------------------------------------------------------------


def test_recursive_splitting_and_progress(executor):
    bounds = [(0, 600), (600, 650), (650, 1000)]
    plan = [sum_task(a, b, 150) for a, b in bounds]
    calls = []
    results = run_plan(plan, executor, progress=lambda done, total: calls.append((done, total)))

    assert results == [leaf for a, b in bounds for leaf in expected_leaves(a, b, 150)]
    assert sum(r[2] for r in results) == sum(range_value(i) for i in range(1000))
    assert len(results) == 9

    total = sum(expected_task_count(a, b, 150) for a, b in bounds)
    assert total == 15
    assert calls[0] == (0, 3)
    assert calls[-1] == (total, total)
    dones = [d for d, _ in calls]
    totals = [t for _, t in calls]
    assert dones == sorted(dones) and totals == sorted(totals)
    assert all(d <= t for d, t in calls)


def test_retry_then_success(executor, tmp_path):
    plan = [
        Task(f"{DEMO}:flaky", {"key": "a", "fail_times": 2, "marker_dir": str(tmp_path)}),
        Task(f"{DEMO}:slow", {"seconds": 0, "value": "b"}),
    ]
    assert run_plan(plan, executor, retries=2) == ["a", "b"]
    assert len(list(tmp_path.glob("a.attempt-*"))) == 3


def test_retries_exhausted(executor, tmp_path):
    hook = sys.excepthook
    plan = [
        Task(f"{DEMO}:slow", {"seconds": 0.2, "value": 1}),
        Task(f"{DEMO}:always_fail", {"message": "boom"}, key="scan I:1-100"),
        Task(f"{DEMO}:slow", {"seconds": 0.2, "value": 2}),
    ]
    with pytest.raises(TaskFailedError) as info:
        run_plan(plan, executor, retries=1)
    assert str(info.value) == (
        f"task 'scan I:1-100' ({DEMO}:always_fail) failed after 2 attempts: ValueError: boom"
    )
    assert info.value.task_key == "scan I:1-100"
    assert isinstance(info.value.__cause__, ValueError)
    assert sys.excepthook is hook

    # Without retries, and without a key, the message names the function and its arguments.
    flaky = Task(f"{DEMO}:flaky", {"key": "f", "fail_times": 5, "marker_dir": str(tmp_path)})
    with pytest.raises(
        TaskFailedError,
        match=r"^task .*:flaky\(key='f', .*\) failed after 1 "
        r"attempt: RuntimeError: f fails on purpose",
    ):
        run_plan([flaky], executor, retries=0)


def test_deterministic_order(executor):
    rng = random.Random(7)
    durations = [rng.uniform(0, 0.3) for _ in range(4)]
    plan = [
        Task(f"{DEMO}:slow", {"seconds": durations[0], "value": "first"}),
        sum_task(0, 400, 150, delay=0.3),
        *(Task(f"{DEMO}:slow", {"seconds": s, "value": i}) for i, s in enumerate(durations[1:])),
    ]
    expected = ["first", *expected_leaves(0, 400, 150), 0, 1, 2]
    assert run_plan(plan, executor) == expected


def test_cancellation(executor, tmp_path):
    stop = threading.Event()
    stopped_at = []

    def progress(done, total):
        if done >= 2 and not stop.is_set():
            stopped_at.append(time.monotonic())
            stop.set()

    plan = [
        Task(f"{DEMO}:slow", {"seconds": 0.4, "value": i, "marker_dir": str(tmp_path)})
        for i in range(10)
    ]
    with pytest.raises(CancelledError, match=r"^cancelled after \d+ of 10 tasks$"):
        run_plan(plan, executor, progress=progress, cancel=stop.is_set)
    assert time.monotonic() - stopped_at[0] < 2.0
    assert len(list(tmp_path.iterdir())) < 10


# --- backend-independent checks -------------------------------------------------------------


def test_same_results_whatever_worker_count():
    plan = [sum_task(0, 300, 40, delay=0.05), sum_task(300, 310, 40)]
    reference = run_plan(plan, "serial")
    assert reference == expected_leaves(0, 300, 40) + expected_leaves(300, 310, 40)
    for url in ("local:1", "local:3"):
        assert run_plan(plan, url) == reference


def test_dask_url_connects_to_a_running_scheduler(executors):
    if "dask-local:2" not in executors:
        executors["dask-local:2"] = open_executor("dask-local:2")
    address = executors["dask-local:2"].scheduler_address
    assert address.startswith("tcp://")
    url = "dask://" + address.removeprefix("tcp://")
    with open_executor(url) as executor:
        assert executor.name == url
        assert run_plan([sum_task(0, 100, 30)], executor) == expected_leaves(0, 100, 30)
    # Closing the client leaves the cluster running for its owner.
    assert run_plan([sum_task(0, 10, 30)], executors["dask-local:2"]) == expected_leaves(0, 10, 30)


def test_local_pool_survives_a_dead_worker(tmp_path):
    plan = [
        Task(f"{DEMO}:slow", {"seconds": 0.1, "value": "a"}),
        Task(f"{DEMO}:crash_once", {"key": "b", "marker_dir": str(tmp_path)}),
        Task(f"{DEMO}:slow", {"seconds": 0.1, "value": "c"}),
    ]
    assert run_plan(plan, "local:2", retries=2) == ["a", "b", "c"]


@pytest.mark.parametrize("seed", range(30))
def test_order_is_depth_first_in_plan_order(seed):
    rng = random.Random(seed)
    max_size = rng.randint(1, 20)
    bounds, start = [], 0
    for _ in range(rng.randint(0, 5)):
        span = rng.randint(0, 60)
        bounds.append((start, start + span))
        start += span
    calls = []
    results = run_plan(
        [sum_task(a, b, max_size) for a, b in bounds],
        "serial",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert results == [leaf for a, b in bounds for leaf in expected_leaves(a, b, max_size)]
    total = sum(expected_task_count(a, b, max_size) for a, b in bounds)
    assert calls[-1] == (total, total)


def test_cancel_before_start():
    with pytest.raises(CancelledError, match="cancelled after 0 of 4 tasks"):
        run_plan(demo_plan(n=100), "serial", cancel=lambda: True)


def test_empty_plan():
    calls = []
    assert run_plan([], "serial", progress=lambda d, t: calls.append((d, t))) == []
    assert calls == [(0, 0)]


def test_demo_plan_sums_to_reference():
    results = run_plan(demo_plan(n=20_000, parts=3, max_size=3_000), "serial")
    assert sum(r[2] for r in results) == sum(range_value(i) for i in range(20_000))


def test_split_subtasks_can_be_empty():
    plan = [Task(f"{DEMO}:slow", {"seconds": 0, "value": "x"})]
    assert run_plan(plan, "serial") == ["x"]
    assert Split(()).tasks == ()


# --- validation -----------------------------------------------------------------------------


def test_oversized_arguments_rejected():
    with pytest.raises(InputError, match=r"^task 'big' carries \d+ bytes of arguments"):
        Task(f"{DEMO}:slow", {"seconds": 0, "value": "x" * MAX_ARGS_BYTES}, key="big")
    Task(f"{DEMO}:slow", {"seconds": 0, "value": "x" * (MAX_ARGS_BYTES - 100)})


@pytest.mark.parametrize(
    "args",
    [{"data": b"bytes"}, {"data": object()}, {1: "non-string key"}, ["not", "a", "dict"]],
)
def test_non_json_arguments_rejected(args):
    with pytest.raises(InputError):
        Task(f"{DEMO}:slow", args)


@pytest.mark.parametrize("fn", ["no_colon", "mod:", ":fn", "a b:c", "mod:fn:extra", ""])
def test_bad_function_names_rejected(fn):
    with pytest.raises(InputError, match="module:function"):
        Task(fn, {})


def test_arguments_are_copied_in_json_form():
    args = {"region": (1, 100), "nested": {"a": [1]}}
    task = Task(f"{DEMO}:slow", args)
    args["nested"]["a"].append(2)
    assert task.args == {"region": [1, 100], "nested": {"a": [1]}}


def test_split_holds_tasks_only():
    with pytest.raises(InputError):
        Split(("not a task",))
    assert Split([Task(f"{DEMO}:slow", {"seconds": 0})]).tasks[0].fn == f"{DEMO}:slow"


def test_unimportable_function_fails_the_task():
    # a user error: not retried, reported with its own message naming the function
    with pytest.raises(InputError, match="cannot import task function 'sandgrain.no_such_mod"):
        run_plan([Task("sandgrain.no_such_module:fn", {})], "serial", retries=3)


def test_user_errors_are_not_retried(tmp_path):
    # flaky() would succeed on a second attempt, but an InputError is final at once
    with pytest.raises(InputError, match="genome"):
        run_plan([Task("sandgrain.testing.fanout_tasks:user_error", {"message": "no genome"})],
                 "serial", retries=3)


@pytest.mark.parametrize("url", ["", "threads", "local:x", "local:0", "dask://nohost", "lithops:"])
def test_unknown_executor_url(url):
    with pytest.raises(InputError) as info:
        open_executor(url)
    assert "\n" not in str(info.value)
    if url != "local:0":
        assert "serial, local, local:N, dask://HOST:PORT" in str(info.value)


def test_plan_must_hold_tasks():
    with pytest.raises(InputError):
        run_plan(["not a task"], "serial")
