"""Beacon query fan-out tasks that split themselves: with a tiny task budget every scan task scans
one partition and hands the rest on, and the answer — count, records, their order — is the same
as one scan in process, on serial and local:2."""

from __future__ import annotations

import pytest
from conftest import DATA

from sandgrain.beacon import query
from sandgrain.beacon.ingest import ingest
from sandgrain.beacon.query import VariantQuery, query_variants
from sandgrain.beacon.store import BeaconCatalog
from sandgrain.fanout import Split, TaskBudget, open_executor
from sandgrain.storage import Store

pytestmark = pytest.mark.timeout(300)

CHR22 = DATA / "variants" / "1000g-chr22-20-21M-191samples.vcf"
TINY = {"0s": TaskBudget(seconds=0), "1B": TaskBudget(read_bytes=1)}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """chr22 20–21 Mbp in 10 kb partitions."""
    store = Store(str(tmp_path_factory.mktemp("scan-split") / "store"))
    ingest(store, "c22w", CHR22, assembly="GRCh37", window_bp=10_000, executor="serial")
    return BeaconCatalog([store], ttl=1e9)


@pytest.fixture(scope="module")
def local2():
    with open_executor("local:2") as ex:
        yield ex


@pytest.fixture
def plans(monkeypatch) -> list:
    """Fan out from 3 partitions, 4 a task; records each run's tasks, results and last progress."""
    monkeypatch.setattr(query, "FANOUT_MIN_PARTITIONS", 2)
    monkeypatch.setattr(query, "PARTITIONS_PER_TASK", 4)
    runs, real = [], query.run_plan

    def spy(tasks, executor, **kw):
        seen = []
        results = real(tasks, executor, progress=lambda *a: seen.append(a), **kw)
        runs.append((len(tasks), len(results), seen[-1]))
        return results

    monkeypatch.setattr(query, "run_plan", spy)
    return runs


def test_tiny_budget_gives_the_answer_of_one_scan(catalog, local2, plans):
    ds = catalog.get("c22w")
    parts = len(ds.meta["partitions"])
    stored = sum(p["rows"] for p in ds.meta["partitions"])  # the records scanned: the work
    assert parts >= 8
    q = VariantQuery.from_params({"referenceName": "22", "start": 0, "end": 300_000_000})
    (whole,) = query_variants(catalog, [ds], q, limit=5000, carriers=True)
    assert whole.count > 100 and len(whole.rows) == whole.count
    for skip, limit in ((0, 1000), (7, 37), (whole.count - 20, 50), (whole.count // 2, 3)):
        (want,) = query_variants(catalog, [ds], q, skip=skip, limit=limit, carriers=True)
        assert want.rows == whole.rows[skip : skip + limit]
        for executor in ("serial", local2):
            for name, budget in TINY.items():
                plans.clear()
                (got,) = query_variants(catalog, [ds], q, skip=skip, limit=limit, carriers=True,
                                        executor=executor, task_budget=budget)  # fmt: skip
                assert got.count == want.count, (executor, name)
                assert got.rows == want.rows, (executor, name)
                ((tasks, results, last),) = plans
                # each task scanned one partition and handed the rest on
                assert results == parts > tasks
                done, total, done_work, total_work = last
                assert done == total and done_work == total_work == stored
    # a budget the tasks fit in: no split
    plans.clear()
    (got,) = query_variants(catalog, [ds], q, limit=5000, carriers=True, executor="serial",
                            task_budget=TaskBudget(seconds=600))  # fmt: skip
    assert got.rows == whole.rows and plans[0][0] == plans[0][1]


def test_count_only_and_narrow_ranges_split_the_same(catalog, plans):
    ds = catalog.get("c22w")
    for start, end in ((20_000_000, 20_100_000), (20_031_000, 20_077_000)):
        q = VariantQuery.from_params({"referenceName": "22", "start": start, "end": end})
        (want,) = query_variants(catalog, [ds], q, granularity="count")
        (got,) = query_variants(catalog, [ds], q, granularity="count", executor="serial",
                                task_budget=TaskBudget(seconds=0))  # fmt: skip
        assert got.count == want.count > 0 and got.rows == want.rows == []


def test_scan_task_returns_what_it_scanned_and_the_rest(catalog):
    ds = catalog.get("c22w")
    q = VariantQuery.from_params({"referenceName": "22", "start": 0, "end": 300_000_000})
    scan = query.plan_scan(ds, q, catalog.stores)
    files = [p["file"] for p in ds.meta["partitions"]][:5]
    rows = {p["file"]: p["rows"] for p in ds.meta["partitions"]}
    args = dict(
        store=ds.store.reference(), dataset=ds.id, version=ds.version, plan=scan.to_json(),
        filters=[], individual_id=None, files=files, keep=3, carriers=False,
    )  # fmt: skip
    split = query.scan_task(**args, budget=TaskBudget(read_bytes=1).to_json())
    first = query.scan_task(**dict(args, files=files[:1]))
    assert isinstance(split, Split) and split.done == first and len(first["rows"]) == 3
    assert split.done_weight == rows[files[0]]
    assert [t.args["files"] for t in split.tasks] == [files[1:3], files[3:5]]
    assert [t.weight for t in split.tasks] == [rows[files[1]] + rows[files[2]],
                                               rows[files[3]] + rows[files[4]]]  # fmt: skip
    whole = query.scan_task(**args)
    parts = [query.scan_task(**dict(args, files=[f])) for f in files]
    assert whole["count"] == sum(p["count"] for p in parts) > first["count"]
    assert whole["rows"] == first["rows"]
