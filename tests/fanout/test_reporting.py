"""What the runner says: a warning per retry, the real cause of a failure, progress in work."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from sandgrain.errors import ConflictError, DownloadError, SandgrainError, TaskFailedError
from sandgrain.fanout import Split, Task, run_plan
from sandgrain.fanout.failures import GUARD_MESSAGE, main_lacks_guard
from sandgrain.genome.composition import composition
from sandgrain.genome.store import open_genome

pytestmark = pytest.mark.timeout(120)

DEMO = "sandgrain.testing.fanout_tasks"
HERE = __name__  # serial tasks run in this process, so this module's functions are importable

_attempts: dict[str, int] = {}


class _PlanError(SandgrainError):
    """A sandgrain error none of the runner's lists name: still the user's, still final."""


def fail_with(key: str, kind: str) -> None:
    """Task: count the attempt, then raise the error ``kind`` names."""
    _attempts[key] = _attempts.get(key, 0) + 1
    if kind == "plan":
        raise _PlanError(f"{key}: the plan asks for something impossible")
    if kind == "conflict":
        raise ConflictError(f"{key}: dataset is being replaced")
    if kind == "download":
        raise DownloadError(f"{key}: connection reset")
    if kind == "import":
        import sandgrain_no_such_dependency  # noqa: F401
    if kind == "oserror":
        raise TimeoutError(f"{key}: read timed out")
    raise AssertionError(kind)


def split_weighted(parts: int) -> Split:
    """Task: a split into ``parts`` subtasks that carry their own weights (10, 20, 30, ...)."""
    return Split(
        tuple(
            Task(f"{DEMO}:slow", {"seconds": 0, "value": i}, key=f"part {i}", weight=10 * (i + 1))
            for i in range(parts)
        )
    )


@pytest.fixture(autouse=True)
def _fresh_counts():
    _attempts.clear()


def test_a_retried_task_is_reported_with_its_key_and_cause(tmp_path, caplog):
    task = Task(f"{DEMO}:flaky", {"key": "k", "fail_times": 1, "marker_dir": str(tmp_path)},
                key="chrI:1-1000")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="sandgrain"):
        assert run_plan([task], "serial", retries=2) == ["k"]
    (record,) = caplog.records
    assert record.name == "sandgrain.fanout.runner" and record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"task 'chrI:1-1000' ({DEMO}:flaky) failed (RuntimeError: k fails on purpose at "
        "attempt 1 of 1); retrying (attempt 2 of 3)"
    )


def test_a_lost_worker_is_reported_and_its_task_retried(tmp_path, caplog):
    task = Task(f"{DEMO}:crash_once", {"key": "a", "marker_dir": str(tmp_path)}, key="crash a")
    with caplog.at_level(logging.WARNING, logger="sandgrain"):
        assert run_plan([task], "local:1") == ["a"]
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"task 'crash a' ({DEMO}:crash_once) lost its worker (")
    assert "BrokenProcessPool" in message and message.endswith("retrying (attempt 2 of 3)")


@pytest.mark.parametrize("kind", ["plan", "conflict"])
def test_a_sandgrain_error_fails_at_once_with_its_own_message(kind, caplog):
    task = Task(f"{HERE}:fail_with", {"key": kind, "kind": kind}, key=kind)
    with pytest.raises(SandgrainError) as info:
        run_plan([task], "serial", retries=3)
    assert type(info.value) is (_PlanError if kind == "plan" else ConflictError)
    assert str(info.value).startswith(f"{kind}: ")
    assert _attempts[kind] == 1 and not caplog.records


def test_a_missing_module_is_not_retried_and_named():
    task = Task(f"{HERE}:fail_with", {"key": "imp", "kind": "import"}, key="imp")
    with pytest.raises(TaskFailedError) as info:
        run_plan([task], "serial", retries=3)
    assert _attempts["imp"] == 1
    assert str(info.value).startswith(
        f"task 'imp' ({HERE}:fail_with) failed: ModuleNotFoundError: No module named "
        "'sandgrain_no_such_dependency' (not retried"
    )


@pytest.mark.parametrize(("kind", "error"), [("download", "DownloadError"),
                                             ("oserror", "TimeoutError")])  # fmt: skip
def test_transient_errors_are_retried_and_the_last_one_kept(kind, error, caplog):
    task = Task(f"{HERE}:fail_with", {"key": kind, "kind": kind}, key=kind)
    warnings = caplog.at_level(logging.WARNING, logger="sandgrain")
    with warnings, pytest.raises(TaskFailedError) as info:
        run_plan([task], "serial", retries=2)
    assert _attempts[kind] == 3 and len(caplog.records) == 2
    assert str(info.value) == (
        f"task '{kind}' ({HERE}:fail_with) failed after 3 attempts: {error}: {kind}: "
        + ("connection reset" if kind == "download" else "read timed out")
    )
    assert type(info.value.__cause__).__name__ == error


_SCRIPT = """
from sandgrain.fanout import Task, run_plan

tasks = [Task("sandgrain.testing.fanout_tasks:sum_range",
              {"start": 0, "end": 1000, "max_size": 100}, key="sum 0-1000")]
{body}
"""


def _run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "plan.py"
    script.write_text(_SCRIPT.replace("{body}", textwrap.dedent(body)))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=90, cwd=tmp_path)  # fmt: skip


def test_a_script_without_main_guard_is_told_to_add_one(tmp_path):
    done = _run_script(tmp_path, 'print(len(run_plan(tasks, "local:1")))')
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"sandgrain.errors.TaskFailedError: {GUARD_MESSAGE}"
    assert "failed after" not in done.stderr  # no retries of a pool that cannot start


def test_the_same_script_with_the_guard_runs(tmp_path):
    done = _run_script(tmp_path, """
        if __name__ == "__main__":
            print(len(run_plan(tasks, "local:1")))
    """)
    assert done.returncode == 0, done.stderr[-600:]
    assert done.stdout.strip() == "16"


def test_guard_detection(tmp_path, monkeypatch):
    main = sys.modules["__main__"]
    for text, lacks in [
        ("run()\n", True),
        ("if __name__ == '__main__':\n    run()\n", False),
        ('if "__main__" == __name__:\n    run()\n', False),
        ("def f():\n    if __name__ == '__main__':\n        run()\n", True),
    ]:
        script = tmp_path / "script.py"
        script.write_text(text)
        monkeypatch.setattr(main, "__file__", str(script), raising=False)
        assert main_lacks_guard() is lacks, text
    monkeypatch.delattr(main, "__file__", raising=False)  # python -c, a notebook
    assert main_lacks_guard() is False


def test_weighted_progress_reaches_total_work_exactly():
    calls = []
    plan = [
        # a split without weights of its own shares its parent's 1,000 units: 500 + 500 ...
        Task(f"{DEMO}:sum_range", {"start": 0, "end": 700, "max_size": 100}, weight=1000),
        # ... one whose subtasks carry weights replaces its parent's 7 units with theirs
        Task(f"{HERE}:split_weighted", {"parts": 3}, weight=7),
        Task(f"{DEMO}:slow", {"seconds": 0, "value": "x"}),  # no weight: 1 unit
    ]
    results = run_plan(plan, "serial", progress=lambda d, t, dw, tw: calls.append((d, t, dw, tw)))
    assert results[-4:] == [0, 1, 2, "x"]
    assert calls[0] == (0, 3, 0, 1000 + 7 + 1)
    done, total, done_work, total_work = calls[-1]
    assert done == total and done_work == total_work == 1000 + (10 + 20 + 30) + 1
    assert all(a[2] <= b[2] for a, b in zip(calls, calls[1:], strict=False))
    # the two-argument form is unchanged: tasks only
    two = []
    run_plan(plan, "serial", progress=lambda d, t: two.append((d, t)))
    assert two == [(d, t) for d, t, _, _ in calls]


def test_composition_progress_counts_bases(demo_store):
    sars = open_genome(demo_store, "sars-cov-2")
    calls = []
    composition(sars, "serial", max_size=4000, progress=lambda *a: calls.append(a))
    length = sum(c["length"] for c in sars.chromosomes)
    assert calls[0][2:] == (0, length)
    assert calls[-1][0] == calls[-1][1] > 1 and calls[-1][2:] == (length, length)
    assert {c[3] for c in calls} == {length}  # splits share their parent's bases


def test_task_weight_is_checked():
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(SandgrainError, match="weight"):
            Task(f"{DEMO}:slow", {"seconds": 0}, weight=bad)
    assert Task(f"{DEMO}:slow", {"seconds": 0}, weight=0).weight == 0
