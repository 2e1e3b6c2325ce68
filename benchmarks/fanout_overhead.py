#!/usr/bin/env python
"""Fan-out overhead and bytes read per task, per executor (issue 19 §4).

What it measures
    1. **Overhead per task** on each executor (``serial``, ``local:2``, ``dask-local:2``,
       ``lithops:localhost``): a plan of ``--tasks`` trivial tasks
       (:func:`sandgrain.testing.fanout_tasks.sum_range` over 10 numbers, microseconds of work)
       (at most 100 on ``lithops:localhost``, whose backend runs every task as a job of its
       own) on an executor opened and warmed up beforehand (its start-up is reported apart, as
       ``start_s``). Overhead per task = wall time / tasks − the task's own time (measured
       in-process). With two workers the tasks overlap, so this is the engine's throughput cost
       a task: submission, pickling, scheduling, result collection. Target of issue 19: ≤ 50 ms
       locally.
    2. **Bytes read per task on object storage**: a store on a loopback S3 server (moto, a
       separate process, as the tests start it) holding yeast (R64) with its SpCas9 site index
       (``--partition-mb`` Mbp partitions; default 256, the index's own default, so yeast is
       one partition) and the 1000 Genomes chr22 slice as a Beacon dataset (10 kb windows).
       *Guide search*: ``--guides`` guides drawn from the genome, ≤ 4 mismatches, on each
       executor; the tasks report what they read (ranged reads of the buckets the guides can
       hit, or the partition whole into the worker cache, see :mod:`sandgrain.guides.search`),
       and once more with ranged reads forced, as for a partition too big to read whole.
       *Beacon query*: a count query over the whole slice, fanned out in tasks of 2 partitions
       (the slice has 10, fewer than the 16 from which queries fan out, so the benchmark lowers
       that threshold); bytes are counted in-process (serial executor) by wrapping s3fs's reads
       (``_cat_file``, ``_get_file``, ranged file reads), since Beacon tasks do not report them.

Usage::

    python benchmarks/fanout_overhead.py           # writes benchmarks/results/fanout_overhead.json
    python benchmarks/fanout_overhead.py --quick   # fewer tasks, fewer guides
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
DEFAULT_OUT = REPO / "benchmarks" / "results" / "fanout_overhead.json"
YEAST = DATA / "genomes/yeast-R64/Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz"
CHR22_VCF = DATA / "variants/1000g-chr22-20-21M-191samples.vcf"
EXECUTORS = ("serial", "local:2", "dask-local:2", "lithops:localhost")
TARGET_MS = 50.0
BEACON_PARTITIONS_PER_TASK = 2
LITHOPS_TASKS = 100
LOCAL = ("serial", "local:2", "dask-local:2")  # the executors the 50 ms target is about


def _common():
    """Machine info and atomic JSON writing, shared with the genome import benchmark."""
    spec = importlib.util.spec_from_file_location(
        "genome_import", REPO / "benchmarks/genome_import.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- 1. overhead per task ----------------------------------------------------------------------
def trivial_plan(n: int):
    from sandgrain.fanout import Task

    return [
        Task(
            "sandgrain.testing.fanout_tasks:sum_range",
            {"start": 10 * i, "end": 10 * i + 10, "max_size": 100},
            key=f"sum {i}",
        )
        for i in range(n)
    ]


def own_task_seconds(n: int = 2000) -> float:
    from sandgrain.testing.fanout_tasks import sum_range

    t0 = time.perf_counter()
    for i in range(n):
        sum_range(10 * i, 10 * i + 10, 100)
    return (time.perf_counter() - t0) / n


def overhead(executor: str, n: int, own_s: float) -> dict:
    from sandgrain.fanout import open_executor, run_plan

    t0 = time.perf_counter()
    with open_executor(executor) as ex:
        run_plan(trivial_plan(4), ex)  # warm-up: workers started, modules imported
        start_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        results = run_plan(trivial_plan(n), ex)
        wall = time.perf_counter() - t1
    assert len(results) == n
    per_task_ms = (wall / n - own_s) * 1000
    return {
        "executor": executor,
        "tasks": n,
        "start_s": round(start_s, 3),
        "wall_s": round(wall, 3),
        "overhead_ms_per_task": round(per_task_ms, 3),
        "target_ms": TARGET_MS,
        "pass": per_task_ms <= TARGET_MS,
    }


# -- 2. bytes per task on S3 -------------------------------------------------------------------
class S3ReadCounter:
    """Counts the bytes and requests s3fs reads in this process (a wrapper, undone on exit)."""

    def __init__(self):
        self.bytes = 0
        self.requests = 0
        self._undo = []

    def __enter__(self) -> S3ReadCounter:
        import s3fs.core as core

        counter = self
        cat, get = core.S3FileSystem._cat_file, core.S3FileSystem._get_file
        fetch = core._fetch_range

        async def cat_file(self, path, *a, **kw):
            data = await cat(self, path, *a, **kw)
            counter.bytes += len(data)
            counter.requests += 1
            return data

        async def get_file(self, rpath, lpath, *a, **kw):
            out = await get(self, rpath, lpath, *a, **kw)
            counter.bytes += os.path.getsize(lpath)
            counter.requests += 1
            return out

        def fetch_range(*a, **kw):
            data = fetch(*a, **kw)
            counter.bytes += len(data)
            counter.requests += 1
            return data

        core.S3FileSystem._cat_file, core.S3FileSystem._get_file = cat_file, get_file
        core._fetch_range = fetch_range
        self._undo = [(core.S3FileSystem, "_cat_file", cat), (core.S3FileSystem, "_get_file", get),
                      (core, "_fetch_range", fetch)]  # fmt: skip
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, value in self._undo:
            setattr(owner, name, value)


def guides_from(genome, n: int, seed: int = 19) -> list[str]:
    """Protospacers next to an NGG in the genome."""
    rng = random.Random(seed)
    chroms = [c for c in genome.chromosomes if c["length"] > 100_000]
    out = []
    while len(out) < n:
        c = rng.choice(chroms)
        p = rng.randrange(0, c["length"] - 23)
        s = genome.sequence(c["name"], p, p + 23).upper()
        if s[21:] == "GG" and set(s[:20]) <= set("ACGT"):
            out.append(s[:20])
    return out


def guide_search(store, executor: str, guides: list[str], family) -> dict:
    from sandgrain.genome.store import open_genome
    from sandgrain.guides.search import search_table

    genome = open_genome(store, "yeast")
    t0 = time.perf_counter()
    table = search_table(genome, guides, family, 4, executor=executor)
    wall = time.perf_counter() - t0
    per = [r["bytes"] for r in table.reads]
    return {
        "executor": executor,
        "guides": len(guides),
        "hits": len(table),
        "tasks": len(per),
        "modes": sorted({r["mode"] for r in table.reads}),
        "bytes_per_task_mean": sum(per) / len(per),
        "bytes_per_task_max": max(per),
        "bytes_total": sum(per),
        "requests_total": sum(r["requests"] for r in table.reads),
        "wall_s": round(wall, 3),
        "summary": table.plan_summary(),
    }


def beacon_query(store, executor: str) -> dict:
    from sandgrain.beacon import query as bq
    from sandgrain.beacon.store import BeaconCatalog

    catalog = BeaconCatalog([store], ttl=0)
    ds = catalog.get("c22")
    q = bq.VariantQuery(reference_name="22", start=[0], end=[60_000_000])
    files = [p["file"] for p in ds.meta.get("partitions", [])]
    # The slice has fewer partitions than the 16 from which a query fans out: lower that
    # threshold here so that the query runs as tasks of PER_TASK partitions each.
    saved = bq.FANOUT_MIN_PARTITIONS, bq.PARTITIONS_PER_TASK
    bq.FANOUT_MIN_PARTITIONS, bq.PARTITIONS_PER_TASK = 1, BEACON_PARTITIONS_PER_TASK
    tasks = -(-len(files) // BEACON_PARTITIONS_PER_TASK)
    try:
        with S3ReadCounter() as counter:
            t0 = time.perf_counter()
            (answer,) = bq.query_variants(
                catalog, [ds], q, granularity="count", executor=executor
            )
            wall = time.perf_counter() - t0
    finally:
        bq.FANOUT_MIN_PARTITIONS, bq.PARTITIONS_PER_TASK = saved
    return {
        "executor": executor,
        "count": answer.count,
        "partitions": len(files),
        "tasks": tasks,
        "bytes_total": counter.bytes,
        "requests_total": counter.requests,
        "bytes_per_task_mean": counter.bytes / max(tasks, 1),
        "dataset_bytes": ds.dataset.manifest["total_size"],
        "wall_s": round(wall, 3),
    }


@contextlib.contextmanager
def s3_store():
    """A store on a fresh loopback S3 server; started before any worker, so that workers
    inherit the credentials it sets in the environment."""
    from sandgrain.storage import Store
    from sandgrain.testing.s3 import LoopbackS3

    with LoopbackS3() as server:
        url = server.create_bucket("fanout-bench")
        yield Store(url + "/sg", {"client_kwargs": {"endpoint_url": server.endpoint}})


def empty_worker_cache(path: Path) -> None:
    """What a fresh worker has: nothing cached (also nothing mapped in this process)."""
    import shutil

    from sandgrain.guides import search

    shutil.rmtree(path, ignore_errors=True)
    search._load_partition.cache_clear()


def bytes_benchmark(args, store, tmp: Path, result: dict) -> None:
    from sandgrain.beacon.ingest import ingest
    from sandgrain.genome.store import add_genome
    from sandgrain.guides.siteindex import SiteFamily, build_index

    family = SiteFamily(("NGG",), 20, "3")
    t0 = time.perf_counter()
    genome = add_genome(store, "yeast", str(YEAST))
    index = build_index(
        genome, family, executor="local:2", partition_bp=int(args.partition_mb * 1e6)
    )
    ingest(store, "c22", CHR22_VCF, assembly="GRCh37", executor="local:2", window_bp=10_000)
    result["s3_setup_s"] = round(time.perf_counter() - t0, 1)
    result["site_index"] = {
        "bytes": index.manifest["total_size"],
        "partitions": len(index.meta["partitions"]),
        "sites": index.meta["sites"],
    }
    guides = guides_from(genome, args.guides)
    result["guide_search"] = []
    result["beacon_query"] = []
    for executor in args.executors:
        empty_worker_cache(tmp / "cache")
        log(f"guide search on S3, {executor} …")
        result["guide_search"].append(guide_search(store, executor, guides, family))
    # what a task reads by ranges alone, as on a partition too big to read whole (human-sized)
    from sandgrain.guides import search

    empty_worker_cache(tmp / "cache")
    saved, search.WHOLE_FRACTION = search.WHOLE_FRACTION, float("inf")
    try:
        forced = guide_search(store, "serial", guides, family)
    finally:
        search.WHOLE_FRACTION = saved
    result["guide_search"].append({**forced, "executor": "serial, ranges forced"})
    log("Beacon query on S3, serial (bytes counted in-process) …")
    result["beacon_query"].append(beacon_query(store, "serial"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer tasks and guides")
    ap.add_argument("--tasks", type=int, help="trivial tasks a plan (default 1000; quick 100)")
    ap.add_argument("--guides", type=int, help="guides searched (default 20; quick 5)")
    ap.add_argument(
        "--partition-mb", type=float, default=256.0, help="site index partition, Mbp (256)"
    )
    ap.add_argument("--executors", nargs="+", default=list(EXECUTORS))
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    args.tasks = args.tasks or (100 if args.quick else 1000)
    args.guides = args.guides or (5 if args.quick else 20)
    common = _common()
    result = {"benchmark": "fanout_overhead", "started": common.utc_now(), "config": vars(args)}
    with tempfile.TemporaryDirectory(prefix="sandgrain-fanoutbench-") as tmp, s3_store() as store:
        os.environ["SANDGRAIN_CACHE_DIR"] = str(Path(tmp) / "cache")  # inherited by workers
        own = own_task_seconds()
        result["task_own_ms"] = round(own * 1000, 4)
        result["overhead"] = []
        for executor in args.executors:
            log(f"overhead, {executor}: {args.tasks} trivial tasks …")
            # lithops' localhost backend runs each task as its own job (≈ 0.3 s): fewer tasks
            n = min(args.tasks, LITHOPS_TASKS) if executor.startswith("lithops") else args.tasks
            result["overhead"].append(overhead(executor, n, own))
        bytes_benchmark(args, store, Path(tmp), result)
    result["machine"] = common.machine_info(Path(tempfile.gettempdir()))
    result["finished"] = common.utc_now()
    result["status"] = "ok"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    common.write_json_atomic(out, result)

    print(f"{'executor':<20}{'start s':>9}{'tasks':>7}{'wall s':>9}{'ms/task':>9}  target")
    for o in result["overhead"]:
        print(
            f"{o['executor']:<20}{o['start_s']:>9.2f}{o['tasks']:>7}{o['wall_s']:>9.2f}"
            f"{o['overhead_ms_per_task']:>9.2f}  ≤ {TARGET_MS:.0f} ms "
            f"{'PASS' if o['pass'] else 'FAIL'}"
        )
    si = result["site_index"]
    print(
        f"\nguide search on S3 (yeast SpCas9 index {si['bytes'] / 1e6:.0f} MB in "
        f"{si['partitions']} partitions, {args.guides} guides, ≤ 4 mismatches):"
    )
    print(f"{'executor':<24}{'tasks':>7}{'MB/task':>10}{'max MB':>9}{'requests':>10}{'wall s':>9}")
    for g in result["guide_search"]:
        print(
            f"{g['executor']:<24}{g['tasks']:>7}{g['bytes_per_task_mean'] / 1e6:>10.2f}"
            f"{g['bytes_per_task_max'] / 1e6:>9.2f}{g['requests_total']:>10}{g['wall_s']:>9.2f}"
            f"  {','.join(g['modes'])}"
        )
    b = result["beacon_query"][0]
    print(
        f"\nBeacon count query on S3 (chr22 slice, {b['partitions']} partitions, "
        f"{b['dataset_bytes'] / 1e6:.1f} MB): {b['tasks']} tasks, "
        f"{b['bytes_per_task_mean'] / 1e6:.3f} MB a task, {b['requests_total']} requests, "
        f"{b['wall_s']:.2f} s"
    )
    local = [o["overhead_ms_per_task"] for o in result["overhead"] if o["executor"] in LOCAL]
    others = [o for o in result["overhead"] if o["executor"] not in LOCAL]
    g, r = result["guide_search"][0], result["guide_search"][-1]
    print(
        f"summary: fan-out overhead ≤ {max(local, default=float('nan')):.1f} ms a task on "
        f"{', '.join(LOCAL)} (target ≤ {TARGET_MS:.0f} ms)"
        + "".join(f", {o['overhead_ms_per_task']:.0f} ms on {o['executor']}" for o in others)
        + f"; guide search reads {g['bytes_per_task_mean'] / 1e6:.1f} MB a task "
        f"({r['bytes_per_task_mean'] / 1e6:.1f} MB by ranges) of a "
        f"{si['bytes'] / si['partitions'] / 1e6:.0f} MB partition"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
