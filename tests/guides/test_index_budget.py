"""Site-index partitions sized from the task budget: one build or search task fits the memory and
disk a serverless function has; the plan says how many tasks and the bytes each reads; a smaller
budget gives more, smaller partitions and the same search results."""

from __future__ import annotations

import random

import pytest

from sandgrain.errors import InputError
from sandgrain.fanout import TaskBudget
from sandgrain.fanout.budget import MB
from sandgrain.genome.store import add_genome
from sandgrain.guides.search import search_offtargets
from sandgrain.guides.siteindex import (
    DEFAULT_PARTITION_BP,
    SITE_BYTES,
    SiteFamily,
    build_bytes,
    build_index,
    partition_bp_for,
    partition_bytes,
    sites_per_base,
)

NGG = SiteFamily(("NGG",), 20, "3")
NGG_NAG_NGA = SiteFamily(("NGG", "NAG", "NGA"), 20, "3")


def test_sites_per_base_of_uniform_sequence():
    assert sites_per_base(NGG) == pytest.approx(2 / 16)
    assert sites_per_base(NGG_NAG_NGA) == pytest.approx(6 / 16)
    assert sites_per_base(SiteFamily(("TTTV",), 23, "5")) == pytest.approx(2 * 3 / 256)


def test_lambda_budget_keeps_the_default_where_it_fits():
    lam = TaskBudget()
    assert lam.memory_bytes == lam.disk_bytes == 10240 * MB
    assert partition_bp_for(NGG, lam) == DEFAULT_PARTITION_BP
    # three PAMs: three times the sites, so smaller partitions to fit 10 GB
    bp = partition_bp_for(NGG_NAG_NGA, lam)
    assert 100_000_000 < bp < DEFAULT_PARTITION_BP
    assert build_bytes(NGG_NAG_NGA, bp) <= lam.memory_bytes < build_bytes(NGG_NAG_NGA, bp + 100)
    assert partition_bytes(NGG_NAG_NGA, bp) <= lam.disk_bytes


def test_disk_budget_bounds_what_a_search_task_reads():
    budget = TaskBudget(disk_bytes=64 * MB)
    bp = partition_bp_for(NGG, budget)
    assert partition_bytes(NGG, bp) <= 64 * MB < partition_bytes(NGG, bp + 100)


def test_a_budget_too_small_for_any_partition_is_refused():
    with pytest.raises(InputError, match="SANDGRAIN_TASK_MEMORY_MB"):
        partition_bp_for(NGG, TaskBudget(memory_bytes=MB, disk_bytes=MB))


def random_fasta(path, rng: random.Random, sizes: list[int]) -> str:
    with open(path, "w") as fh:
        for i, size in enumerate(sizes):
            fh.write(f">chr{i + 1}\n{''.join(rng.choice('ACGT') for _ in range(size))}\n")
    return str(path)


def test_smaller_budget_more_partitions_same_results(local_store, tmp_path):
    rng = random.Random(19)
    genome = add_genome(local_store, "rand", random_fasta(tmp_path / "r.fa", rng, [30_000, 14_000]))
    seq = genome.sequence("chr1", 0, 30_000)
    # protospacers next to an NGG, spread over the partitions
    starts = [i for i in range(0, 29_970) if seq[i + 21 : i + 23] == "GG"]
    guides = [seq[i : i + 20] for i in starts[:: len(starts) // 4]]

    big = build_index(genome, NGG, executor="serial")
    plan = big.meta["plan"]
    assert plan["tasks"] == len(big.meta["partitions"]) == 1
    assert plan["partition_bp"] == DEFAULT_PARTITION_BP
    assert plan["task_bytes"] == big.meta["partitions"][0]["bytes"] <= TaskBudget().disk_bytes
    want = search_offtargets(genome, guides, NGG, 3, executor="serial")
    assert all(want)  # each guide finds itself at least

    # a budget holding about 10 kbp a task: 5 partitions for 44 kbp
    budget = TaskBudget(memory_bytes=build_bytes(NGG, 10_000))
    small = build_index(genome, NGG, executor="serial", budget=budget)
    plan = small.meta["plan"]
    assert plan["partition_bp"] == 10_000 and plan["tasks"] == 5 == len(small.meta["partitions"])
    assert plan["budget"] == budget.to_json()
    assert plan["task_bytes"] == max(p["bytes"] for p in small.meta["partitions"])
    assert small.manifest["provenance"]["parameters"]["tasks"] == 5
    for p in small.meta["partitions"]:
        # the estimate holds for a uniform random genome (a site: SITE_BYTES bytes)
        assert p["bytes"] <= partition_bytes(NGG, 10_000) * 1.1
        assert p["sites"] * SITE_BYTES <= p["bytes"]
    assert search_offtargets(genome, guides, NGG, 3, executor="serial") == want


def test_index_command_sizes_partitions_from_the_settings_and_prints_the_plan(
    local_store, tmp_path, monkeypatch, capsys
):
    from sandgrain.cli import main

    rng = random.Random(7)
    add_genome(local_store, "rand", random_fasta(tmp_path / "r.fa", rng, [100_000, 50_000]))
    monkeypatch.setenv("SANDGRAIN_STORE", local_store.url)
    monkeypatch.setenv("SANDGRAIN_EXECUTOR", "serial")
    monkeypatch.setenv("SANDGRAIN_TASK_MEMORY_MB", "2")
    fam = SiteFamily(("NGG",), 16, "3")  # 8-base keys: small offset tables
    bp = partition_bp_for(fam, TaskBudget(memory_bytes=2 * MB))
    assert 10_000 < bp < 75_000
    with pytest.raises(SystemExit) as exit_:
        main(["genome", "index", "rand", "--pam", "NGG", "--guide-length", "16", "-q"])
    err = capsys.readouterr().err
    assert exit_.value.code == 0, err
    ds = local_store.open_dataset("siteindex", "rand.NGG.16.3p")
    plan = ds.meta["plan"]
    assert plan["partition_bp"] == bp and plan["tasks"] == len(ds.meta["partitions"]) >= 3
    assert (
        f"plan: {plan['tasks']} tasks of at most {bp:,} bases; a search task reads at most "
        f"{plan['task_bytes'] / 1e6:,.1f} MB"
    ) in err
