"""The start-up benchmark's marks (benchmarks/cli_startup.py): taken inside the process, in order,
for a real command."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from conftest import SARS_FASTA

REPO = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("cli_startup", REPO / "benchmarks/cli_startup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()


def test_marks_of_a_command_and_of_its_plan(tmp_path):
    env = {**os.environ, "SANDGRAIN_HOME": str(tmp_path / "home")}
    env.pop("SANDGRAIN_STORE", None)
    assert bench.SARS == SARS_FASTA
    listed = bench.marked(["--executor", "serial", "genome", "list", "--json"], env, tmp_path)
    assert set(listed) == {"command_s", "total_s"}  # no fan-out plan
    assert 0 < listed["command_s"] < listed["total_s"]
    store = tmp_path / "store"
    guides = bench.prepare_store(store, env, tmp_path)
    args = ["--store", str(store), "--executor", "serial", "guides", "offtargets", "-g", "sars2"]
    searched = bench.marked([*args, str(guides)], env, tmp_path)
    assert 0 < searched["command_s"] < searched["plan_s"] < searched["total_s"]
