"""A local pool's workers do not import the plan's task module (and what it imports: numpy,
numba, pyarrow…) each on their own: the forkserver imports it once and they are forked from it.
Run in a fresh interpreter, whose forkserver starts with this plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no forkserver")

SCRIPT = """
import json
from sandgrain.fanout import Task, run_plan

if __name__ == "__main__":
    tasks = [Task("sandgrain.testing.fanout_tasks:imported_in", {"seconds": 0.5}) for _ in range(4)]
    print(json.dumps(run_plan(tasks, "local:2")))
"""


def test_workers_start_with_the_task_module_imported(tmp_path):
    script = tmp_path / "plan.py"
    script.write_text(SCRIPT)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.strip().splitlines()[-1])
    workers = {worker for _, worker in results}
    importers = {importer for importer, _ in results}
    assert len(workers) == 2  # both workers ran tasks
    assert len(importers) == 1 and not importers & workers  # one import, in neither worker


SERVER = """
import json
from sandgrain.fanout import Task, run_plan
from sandgrain.fanout.executors import preload_in_workers

if __name__ == "__main__":
    preload_in_workers(["sandgrain.testing.fanout_tasks"])  # as `sandgrain serve` names them
    run_plan([Task("probe:noop")], "local:2")  # the first plan starts the forkserver
    tasks = [Task("sandgrain.testing.fanout_tasks:imported_in", {"seconds": 0.5}) for _ in range(4)]
    print(json.dumps(run_plan(tasks, "local:2")))
"""


def test_modules_named_beforehand_are_imported_once_for_later_plans(tmp_path):
    (tmp_path / "probe.py").write_text("def noop():\n    return 0\n")
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.strip().splitlines()[-1])
    importers = {importer for importer, _ in results}
    assert len(importers) == 1 and not importers & {worker for _, worker in results}
