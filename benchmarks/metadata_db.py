#!/usr/bin/env python
"""Metadata database benchmark for sandgrain: Beacon budget + audit writes and job life cycles.

What it measures, for each backend of :mod:`sandgrain.db`:

* **SQLite**: a fresh file in a temporary folder per case (WAL mode; the audit log commits with
  ``synchronous = FULL``, the budget and the jobs with ``NORMAL``, as the library opens them);
* **PostgreSQL**: a throwaway server started in a temporary folder on a loopback port by the
  tests' helper (``tests/pg.py``: ``initdb`` + ``pg_ctl``) with PostgreSQL's durable defaults
  (``fsync``, ``synchronous_commit``, ``full_page_writes`` on, as a production server keeps them;
  the tests turn them off for speed, and so does ``--pg-no-fsync``);
  a fresh schema per case, stopped at the end.

Workloads, each with 1 and then 2 concurrent writer processes (``multiprocessing`` *spawn*: each
process opens its own connections, as separate server processes would):

1. **Beacon per-query overhead**: what :class:`sandgrain.beacon.service.BeaconService` writes to
   the metadata database for each genomic query -- one :meth:`QueryBudget.charge` of the
   caller's budget key, then one :meth:`AuditLog.record` of an ``audit_event`` with the
   request's parameters, datasets, granularity and counts. Each process serves its own
   ``USERS`` authenticated users in turn (their own budget keys, at the default limit of 1,000
   queries an hour, which none of them reaches, so nothing is refused; a key's rows stay below
   that limit as in real use); all share the audit log. Operations/s and p50/p95 latency of the
   pair (and of each half).
2. **Job life cycle**: :meth:`JobStore.submit` → :meth:`~JobStore.start` →
   :meth:`~JobStore.update_progress` → :meth:`~JobStore.finish`; jobs/s and p50/p95 latency of
   the four calls together.

After each case the rows are counted: every budget charge, audit event and job written must be
there (a ``done`` job with progress 1 for each job), else the run fails. Each process does a
few unmeasured warm-up operations first (they are counted in the check); the processes then
start together, and throughput is all measured operations over the wall time from the common
start to the last process's end.

Usage::

    python benchmarks/metadata_db.py            # writes benchmarks/results/metadata_db.json
    python benchmarks/metadata_db.py --quick    # a few hundred operations per case (< 1 min)
    python benchmarks/metadata_db.py --backends sqlite --ops 5000

Exit status: 0 ok, 1 a failed step or a lost row, 2 a bad setup (PostgreSQL asked for by name
with ``--backends`` but not installed: ``make sysdeps``). With the default ``--backends``, a
machine without PostgreSQL (or psycopg) runs SQLite only and says why.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "metadata_db.json"
PG_HELPER = REPO / "tests" / "pg.py"  # the tests' throwaway PostgreSQL server
BACKENDS = ("sqlite", "postgresql")
WORKLOADS = ("beacon", "jobs")
PROCESSES = (1, 2)
WARMUP = 20
USERS = 20  #: budget keys per writer process
BUDGET_LIMIT = 1000
_T0 = time.time()


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load(REPO / "benchmarks" / "genome_import.py", "genome_import")
BenchmarkError = common.BenchmarkError
SetupError = common.SetupError


def log(msg: str) -> None:
    print(f"[metadata_db {time.time() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Worker processes (spawned: everything they use is importable from this file)
# ---------------------------------------------------------------------------------------------


def _beacon_op(budget, audit, principal, audit_event, i: int) -> tuple[float, float]:
    """One Beacon query's metadata writes, as ``BeaconService._query`` makes them; the
    seconds of the budget charge and of the audit record."""
    t0 = time.perf_counter()
    budget.charge(principal.budget_key)
    t1 = time.perf_counter()
    event = audit_event(
        principal,
        kind="query",
        endpoint="g_variants",
        method="GET",
        query={
            "params": {
                "referenceName": "1",
                "start": [1_000_000 + i],
                "referenceBases": "A",
                "alternateBases": "G",
                "assemblyId": "GRCh37",
            },
            "filters": [],
        },
        outcome="ok",
        datasets=["synthetic"],
        granularity="count",
        counts={"synthetic": i % 7},
    )
    if audit.record(event) is None:
        raise RuntimeError("the audit log could not write an event (see the log above)")
    return t1 - t0, time.perf_counter() - t1


def _job_op(store, i: int) -> None:
    """One job's whole life: submit, start, one progress update, finish."""
    job = store.submit("benchmark", {"i": i})
    store.start(job.id)
    store.update_progress(job.id, 0.5, "half way")
    store.finish(job.id, f"results/{job.id}.json")


def worker(workload: str, url: str, index: int, n: int, barrier, queue) -> None:
    """Run ``n`` measured operations (after ``WARMUP`` unmeasured ones); put the timings."""
    try:
        if workload == "beacon":
            from sandgrain.beacon.audit import AuditLog, audit_event
            from sandgrain.beacon.budget import QueryBudget
            from sandgrain.beacon.tokens import Principal

            # the service opens each from the configured URL (budget and audit apart)
            budget = QueryBudget(url, limit=BUDGET_LIMIT, window_s=3600)
            audit = AuditLog(url)
            users = [
                Principal(
                    subject=f"user{index}-{u}",
                    issuer="https://login.example.org",
                    ip="127.0.0.1",
                    authenticated=True,
                )
                for u in range(USERS)
            ]

            def op(i: int) -> tuple[float, float]:
                return _beacon_op(budget, audit, users[i % USERS], audit_event, i)

            closers = (budget.close, audit.close)
        else:
            from sandgrain.jobs import JobStore

            store = JobStore(url)

            def op(i: int) -> tuple[float, float]:
                _job_op(store, i)
                return 0.0, 0.0

            closers = (store.close,)
        for i in range(WARMUP):
            op(-1 - i)
        barrier.wait(timeout=120)
        start = time.monotonic()
        total, first, second = [], [], []
        for i in range(n):
            t0 = time.perf_counter()
            a, b = op(i)
            total.append(time.perf_counter() - t0)
            first.append(a)
            second.append(b)
        end = time.monotonic()
        for close in closers:
            close()
        queue.put(
            {
                "index": index,
                "start": start,
                "end": end,
                "total": total,
                "first": first,
                "second": second,
                "error": None,
            }
        )
    except BaseException as exc:  # reported by the parent
        barrier.abort()
        queue.put(
            {
                "index": index,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        )


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


def stats_ms(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def run_processes(workload: str, url: str, processes: int, ops: int) -> dict:
    """``ops`` measured operations split over ``processes`` spawned writers."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    queue = ctx.Queue()
    shares = [ops // processes + (i < ops % processes) for i in range(processes)]
    procs = [
        ctx.Process(target=worker, args=(workload, url, i, shares[i], barrier, queue))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    reports = []
    try:
        for _ in procs:
            reports.append(queue.get(timeout=900))
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    failed = [r for r in reports if r["error"]]
    if failed:
        for r in failed:
            log(f"writer {r['index']} failed:\n{r['traceback']}")
        raise BenchmarkError(f"writer {failed[0]['index']} failed: {failed[0]['error']}")
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    total = [x for r in reports for x in r["total"]]
    out = {
        "processes": processes,
        "ops": len(total),
        "wall_s": wall,
        "ops_per_s": len(total) / wall if wall else 0.0,
        **stats_ms(total),
        "per_process_ops": shares,
    }
    if workload == "beacon":
        out["charge"] = stats_ms([x for r in reports for x in r["first"]])
        out["audit"] = stats_ms([x for r in reports for x in r["second"]])
    return out


def check_rows(workload: str, url: str, processes: int, ops: int) -> dict:
    """Count what the writers left; BenchmarkError if any row is missing (or extra)."""
    from sandgrain.db import Database

    written = ops + processes * WARMUP
    with Database(url) as db:
        if workload == "beacon":
            charges = db.query("SELECT COUNT(*) FROM beacon_budget")[0][0]
            keys = db.query("SELECT COUNT(DISTINCT key) FROM beacon_budget")[0][0]
            events = db.query("SELECT COUNT(*) FROM beacon_audit WHERE kind = 'query'")[0][0]
            found = {"budget_charges": charges, "budget_keys": keys, "audit_events": events}
            expected = {
                "budget_charges": written,
                "budget_keys": processes * USERS,
                "audit_events": written,
            }
        else:
            jobs = db.query("SELECT COUNT(*) FROM jobs")[0][0]
            done = db.query(
                "SELECT COUNT(*) FROM jobs WHERE status = 'done' AND progress = 1 "
                "AND result IS NOT NULL AND started IS NOT NULL AND finished IS NOT NULL"
            )[0][0]
            found = {"jobs": jobs, "jobs_done": done}
            expected = {"jobs": written, "jobs_done": written}
    if found != expected:
        raise BenchmarkError(f"{workload}: rows lost or extra: found {found}, wrote {expected}")
    return {**found, "lost": 0}


class Backend:
    """Where each case's fresh database lives; ``stop()`` removes it all."""

    def __init__(self, name: str, work: Path, pg_bin: Path | None = None, pg_durable: bool = True):
        self.name = name
        self.work = work
        self.server = None
        self.version = sqlite3.sqlite_version
        self.settings: dict = {}
        self._cases = 0
        if name == "postgresql":
            pg = _load(PG_HELPER, "pg")
            self.server = pg.LocalPostgres(pg_bin, durable=pg_durable).start()
            import psycopg

            with psycopg.connect(self.server.url) as conn:
                self.version = conn.execute("SHOW server_version").fetchone()[0]
                self.settings = {
                    name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("fsync", "synchronous_commit", "full_page_writes")
                }

    def fresh_url(self) -> str:
        self._cases += 1
        if self.server is not None:
            return self.server.fresh_url()[0]
        return f"sqlite:///{self.work / f'case{self._cases}.sqlite'}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def postgres_available() -> tuple[Path | None, str | None]:
    """(bin folder, None), or (None, why PostgreSQL cannot run here)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed (pip install -e '.[dev]')"
    if not PG_HELPER.is_file():
        return None, f"no PostgreSQL helper at {PG_HELPER}"
    bindir = _load(PG_HELPER, "pg").find_bin()
    if bindir is None:
        return None, "no /usr/lib/postgresql/*/bin/initdb (make sysdeps installs PostgreSQL)"
    return bindir, None


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def summary(result: dict) -> str:
    m = result.get("machine", {})
    lines = [
        f"metadata_db  {m.get('cpu_model')}, {m.get('cpus_usable')} cores, {m.get('ram_gib')} GiB"
        f" RAM, Python {m.get('python')}, SQLite {m.get('sqlite')}, PostgreSQL "
        f"{m.get('postgresql') or 'n/a'}; load {m.get('loadavg_at_start')} → "
        f"{m.get('loadavg_at_end')}",
        "",
        f"{'backend':<12}{'workload':<22}{'procs':>6}{'ops':>7}{'ops/s':>9}{'p50 ms':>9}"
        f"{'p95 ms':>9}{'lost':>6}",
    ]
    label = {"beacon": "budget+audit / query", "jobs": "job life cycle"}
    for c in result.get("cases", []):
        lines.append(
            f"{c['backend']:<12}{label[c['workload']]:<22}{c['processes']:>6}{c['ops']:>7}"
            f"{c['ops_per_s']:>9,.0f}{c['p50_ms']:>9.2f}{c['p95_ms']:>9.2f}"
            f"{c['check']['lost']:>6}"
        )
        if c["workload"] == "beacon":
            lines.append(
                f"{'':<34}(charge p50 {c['charge']['p50_ms']:.2f} / p95 "
                f"{c['charge']['p95_ms']:.2f} ms; audit p50 {c['audit']['p50_ms']:.2f} / p95 "
                f"{c['audit']['p95_ms']:.2f} ms)"
            )
    if result.get("postgresql_settings"):
        settings = ", ".join(f"{k} {v}" for k, v in result["postgresql_settings"].items())
        lines.append(f"(PostgreSQL server: {settings})")
    for name, why in result.get("skipped", {}).items():
        lines.append(f"{name}: skipped ({why})")
    lines.append(f"status: {result.get('status')}")
    best = {
        (c["backend"], c["workload"]): c
        for c in result.get("cases", [])
        if c["processes"] == max(PROCESSES)
    }
    parts = [
        f"{b} {best[b, 'beacon']['ops_per_s']:,.0f} Beacon queries/s, "
        f"{best[b, 'jobs']['ops_per_s']:,.0f} jobs/s"
        for b in BACKENDS
        if (b, "beacon") in best and (b, "jobs") in best
    ]
    if parts and result.get("status") == "ok":
        lines.append(
            f"summary: metadata DB with {max(PROCESSES)} writer processes: {'; '.join(parts)}; "
            "no row lost"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few hundred operations per case")
    ap.add_argument(
        "--ops",
        type=int,
        default=None,
        help="measured operations per case, split over the processes "
        "(default 12,000 Beacon queries / 8,000 jobs; --quick 600 / 400)",
    )
    ap.add_argument("--backends", default=None, help="comma-separated: sqlite,postgresql")
    ap.add_argument(
        "--pg-no-fsync", action="store_true", help="PostgreSQL durability off, as in the tests"
    )
    ap.add_argument("--workdir", default=None, help="where the temporary databases go")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    sizes = {"beacon": 600, "jobs": 400} if args.quick else {"beacon": 12_000, "jobs": 8_000}
    ops = {workload: args.ops or sizes[workload] for workload in WORKLOADS}
    if ops["beacon"] + WARMUP > USERS * BUDGET_LIMIT:  # one process must stay within budgets
        ap.error(f"--ops: at most {USERS * BUDGET_LIMIT - WARMUP} Beacon queries per case")
    backends = args.backends.split(",") if args.backends else list(BACKENDS)
    out = Path(args.out)
    result: dict = {
        "benchmark": "metadata_db",
        "started": common.utc_now(),
        "config": {**vars(args), "ops": ops, "warmup_per_process": WARMUP},
        "cases": [],
        "skipped": {},
    }
    work = Path(tempfile.mkdtemp(prefix="sandgrain-dbbench-", dir=args.workdir))
    step = "setup"
    rc = 0
    try:
        result["machine"] = common.machine_info(work)
        result["machine"]["sqlite"] = sqlite3.sqlite_version
        unknown = sorted(set(backends) - set(BACKENDS))
        if unknown:
            raise SetupError(f"unknown backend(s) {', '.join(unknown)}; use sqlite,postgresql")
        pg_bin = None
        if "postgresql" in backends:
            pg_bin, why = postgres_available()
            if why:
                if args.backends:
                    raise SetupError(f"PostgreSQL cannot run here: {why}")
                result["skipped"]["postgresql"] = why
                backends.remove("postgresql")
                log(f"PostgreSQL skipped: {why}")
        for name in backends:
            step = f"{name} start"
            backend = Backend(name, work, pg_bin, pg_durable=not args.pg_no_fsync)
            try:
                if name == "postgresql":
                    import psycopg

                    result["machine"]["postgresql"] = backend.version
                    result["machine"]["psycopg"] = psycopg.__version__
                    result["postgresql_settings"] = backend.settings
                for workload in WORKLOADS:
                    for processes in PROCESSES:
                        step = f"{name} {workload} ×{processes}"
                        log(f"{step}: {ops[workload]} operations")
                        url = backend.fresh_url()
                        case = run_processes(workload, url, processes, ops[workload])
                        case = {"backend": name, "workload": workload, **case}
                        case["check"] = check_rows(workload, url, processes, ops[workload])
                        result["cases"].append(case)
                        log(
                            f"{step}: {case['ops_per_s']:,.0f} ops/s, p50 {case['p50_ms']:.2f}"
                            f" ms, p95 {case['p95_ms']:.2f} ms, none lost"
                        )
            finally:
                backend.stop()
        result["status"] = "ok"
    except SetupError as exc:
        result["status"] = f"setup error at {step}: {exc}"
        rc = 2
    except BenchmarkError as exc:
        result["status"] = f"failed at {step}: {exc}"
        rc = 1
    except KeyboardInterrupt:
        result["status"] = f"interrupted at {step}"
        rc = 1
    except Exception as exc:  # a bug here or a database failure: still write what we have
        traceback.print_exc()
        result["status"] = f"error at {step}: {type(exc).__name__}: {exc}"
        rc = 1
    finally:
        result.setdefault("machine", {})["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["finished"] = common.utc_now()
        common.write_json_atomic(out, result)
        shutil.rmtree(work, ignore_errors=True)
    print(summary(result))
    if rc:
        print(f"metadata_db: {result['status']}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
