"""A genome-wide fan-out over real data gives the same answer on every executor."""

from __future__ import annotations

import pytest

from sandgrain.fanout import Task
from sandgrain.genome.composition import TASK, composition, count_bases


@pytest.fixture(scope="module")
def truth(yeast):
    """Counts by a plain loop over each whole chromosome, and the import-time statistics."""
    rows = []
    for c in yeast.chromosomes:
        seq = yeast.sequence(c["name"], 0, c["length"])
        rows.append({"chrom": c["name"], **count_bases(seq)})
        assert c["gc"] == rows[-1]["G"] + rows[-1]["C"]
        assert c["n_count"] == rows[-1]["N"] and c["masked"] == rows[-1]["masked"]
    return rows


@pytest.mark.parametrize("executor", ["serial", "local:2", "dask-local:2", "lithops:localhost"])
def test_same_answer_on_every_executor(yeast, truth, executor):
    seen = []
    # Lithops' localhost backend starts a process per task: give it fewer, bigger tasks.
    max_size = 1_000_000 if executor.startswith("lithops") else 250_000
    rows = composition(
        yeast, executor, max_size=max_size, progress=lambda d, t: seen.append((d, t))
    )
    assert rows == truth
    done, total = seen[-1]
    assert done == total > len(yeast.chromosomes)  # splits added tasks, all finished


def test_tasks_carry_references_not_data(yeast):
    task = Task(TASK, dict(genome=yeast.reference(), chrom="XV", start0=0, end0=10, max_size=5))
    assert task.args["genome"]["store"]["url"] == yeast.dataset.store.url
    assert len(repr(task.args)) < 500
