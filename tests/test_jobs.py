"""Tests of the job store (sandgrain.jobs): lifecycle, cancellation, concurrency, recovery.

Every test of the store runs on a SQLite file and on PostgreSQL (the ``database`` fixture)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from sandgrain.errors import (
    CancelledError,
    ConflictError,
    InputError,
    NotFoundError,
    SandgrainError,
    StorageError,
)
from sandgrain.jobs import (
    INTERRUPTED_ERROR,
    Job,
    JobContext,
    JobManager,
    JobStatus,
    JobStore,
    current_owner,
    default_url,
    owner_is_alive,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")
WAIT = 10.0


@pytest.fixture
def db(database: str) -> str:
    """A fresh metadata database: a SQLite file, then a PostgreSQL schema."""
    return database


@pytest.fixture
def store(db: str):
    s = JobStore(db)
    yield s
    s.close()


def run_python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for(predicate, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- the store ------------------------------------------------------------------------------


def test_lifecycle_queued_running_done(store: JobStore):
    job = store.submit("import", {"genome": "hg38", "n": 3})
    assert job.status is JobStatus.QUEUED and not job.terminal
    assert job.progress == 0.0 and job.result is None and job.error is None
    assert job.created and job.started is None and job.owner is None
    assert len(job.id) == 32 and job.id.isalnum()

    running = store.start(job.id, "me:1:tok")
    assert running.status is JobStatus.RUNNING
    assert running.owner == "me:1:tok" and running.started and running.heartbeat

    p = store.update_progress(job.id, 0.5, "half\nway")
    assert p.progress == 0.5 and p.message == "half way"
    assert store.update_progress(job.id, 7).progress == 1.0  # clamped; message kept
    assert store.get(job.id).message == "half way"
    assert store.update_progress(job.id, -3).progress == 0.0

    done = store.finish(job.id, "s3://bucket/results/x.parquet")
    assert done.status is JobStatus.DONE and done.terminal
    assert done.progress == 1.0 and done.result == "s3://bucket/results/x.parquet"
    assert done.finished and done.finished >= done.started >= done.created
    assert done.params == {"genome": "hg38", "n": 3}

    # terminal jobs ignore progress and refuse other changes
    assert store.update_progress(job.id, 0.1, "late").progress == 1.0
    with pytest.raises(ConflictError):
        store.start(job.id)
    with pytest.raises(ConflictError):
        store.fail(job.id, "nope")
    with pytest.raises(ConflictError):
        store.finish(job.id, "again")

    d = done.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["status"] == "done" and d["result"] == "s3://bucket/results/x.parquet"


def test_fail_keeps_one_line(store: JobStore):
    job = store.submit("search", {})
    store.start(job.id)
    failed = store.fail(job.id, "bad FASTA\n  line 3: not a base")
    assert failed.status is JobStatus.FAILED
    assert failed.error == "bad FASTA line 3: not a base"
    assert failed.result is None and failed.finished


def test_start_only_from_queued(store: JobStore):
    job = store.submit("k", {})
    store.start(job.id, "a:1:x")
    with pytest.raises(ConflictError, match="running, not queued"):
        store.start(job.id, "b:2:y")
    assert store.get(job.id).owner == "a:1:x"


def test_cancel_queued_running_terminal(store: JobStore):
    queued = store.submit("k", {})
    c = store.request_cancel(queued.id)
    assert c.status is JobStatus.CANCELLED and c.error and c.finished
    with pytest.raises(ConflictError):
        store.start(queued.id)

    running = store.submit("k", {})
    store.start(running.id)
    assert not store.is_cancel_requested(running.id)
    r = store.request_cancel(running.id)
    assert r.status is JobStatus.RUNNING and r.cancel_requested
    assert store.is_cancel_requested(running.id)
    assert store.mark_cancelled(running.id).status is JobStatus.CANCELLED
    assert store.mark_cancelled(running.id).status is JobStatus.CANCELLED  # idempotent

    done = store.submit("k", {})
    store.start(done.id)
    store.finish(done.id, "loc")
    assert store.request_cancel(done.id).status is JobStatus.DONE  # no-op on terminal jobs
    with pytest.raises(ConflictError):
        store.mark_cancelled(done.id)


def test_unknown_job_is_not_found(store: JobStore):
    for call in (
        store.get,
        store.request_cancel,
        store.is_cancel_requested,
        store.heartbeat,
        store.mark_cancelled,
        lambda i: store.start(i),
        lambda i: store.update_progress(i, 0.5),
        lambda i: store.finish(i, "x"),
        lambda i: store.fail(i, "x"),
    ):
        with pytest.raises(NotFoundError, match="unknown job 'nope'"):
            call("nope")


def test_bad_input(store: JobStore):
    with pytest.raises(InputError):
        store.submit("", {})
    with pytest.raises(InputError):
        store.submit("k", {"x": object()})
    with pytest.raises(InputError):
        store.submit("k", {"x": float("nan")})
    with pytest.raises(InputError, match="unknown job status"):
        store.list(status="sleeping")
    job = store.submit("k")
    store.start(job.id)
    with pytest.raises(InputError):
        store.update_progress(job.id, float("nan"))


def test_list_newest_first_and_filters(store: JobStore):
    ids = [store.submit("a" if i % 2 else "b", {"i": i}).id for i in range(6)]
    store.start(ids[0])
    assert [j.id for j in store.list()] == ids[::-1]
    assert [j.id for j in store.list(limit=2)] == ids[:-3:-1]
    assert [j.params["i"] for j in store.list(kind="a")] == [5, 3, 1]
    assert [j.id for j in store.list(status="running")] == [ids[0]]
    assert len(store.list(status=[JobStatus.QUEUED, JobStatus.RUNNING])) == 6
    assert store.list(status=JobStatus.DONE) == []
    assert len(store.list(limit=None)) == 6


def test_db_survives_reopening(db: str):
    with JobStore(db) as s1:
        job = s1.submit("import", {"name": "ecoli", "parts": [1, 2]})
        s1.start(job.id, "h:1:t")
        s1.update_progress(job.id, 0.25, "reading")
        before = s1.get(job.id)
    with JobStore(db) as s2:
        after = s2.get(job.id)
        assert after == before
        assert isinstance(after, Job) and after.params == {"name": "ecoli", "parts": [1, 2]}
    with pytest.raises(SandgrainError):
        s2.get(job.id)  # closed


def test_default_database_is_sqlite_under_sandgrain_home(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SANDGRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SANDGRAIN_DATABASE", raising=False)
    assert default_url() == f"sqlite:///{tmp_path}/home/sandgrain.sqlite"
    with JobStore() as s:
        assert s.path == tmp_path / "home" / "sandgrain.sqlite" and s.path.exists()
    monkeypatch.setenv("SANDGRAIN_DATABASE", str(tmp_path / "elsewhere.sqlite"))
    with JobStore() as s:
        assert s.path == tmp_path / "elsewhere.sqlite"


def test_unusable_file_is_a_storage_error(tmp_path: Path):
    bad = tmp_path / "jobs.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="database .*jobs.sqlite.*not a database"):
        JobStore(bad)


def test_sqlite_runs_in_wal_mode(tmp_path: Path):
    import sqlite3

    path = tmp_path / "jobs.sqlite"
    with JobStore(path), sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- concurrency ----------------------------------------------------------------------------


def test_two_stores_racing_to_start(db: str):
    stores = [JobStore(db) for _ in range(2)]
    jobs = [stores[0].submit("k", {"i": i}) for i in range(20)]
    wins: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(n: int) -> None:
        s = stores[n % 2]
        for job in jobs:
            try:
                s.start(job.id, f"w:{n}:t")
            except ConflictError:
                continue
            with lock:
                wins[job.id] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins == Counter({job.id: 1 for job in jobs})
    for s in stores:
        s.close()


def test_processes_racing_to_start(store: JobStore, db: str):
    jobs = [store.submit("k", {"i": i}) for i in range(30)]
    code = """
        import sys
        from sandgrain.errors import ConflictError
        from sandgrain.jobs import JobStore
        s = JobStore(sys.argv[1])
        for job_id in sys.argv[2:]:
            try:
                s.start(job_id)
            except ConflictError:
                continue
            print(job_id, flush=True)
    """
    procs = [run_python(code, str(db), *[j.id for j in jobs]) for _ in range(3)]
    started: Counter[str] = Counter()
    for p in procs:
        out, err = p.communicate(timeout=WAIT)
        assert p.returncode == 0, err
        started.update(out.split())
    assert started == Counter({j.id: 1 for j in jobs})
    assert all(j.status is JobStatus.RUNNING for j in store.list(limit=None))


# -- the manager ----------------------------------------------------------------------------


@pytest.fixture
def manager_factory(store: JobStore):
    managers: list[JobManager] = []

    def make(handlers, **kwargs) -> JobManager:
        m = JobManager(store, handlers, **kwargs)
        managers.append(m)
        return m

    yield make
    for m in managers:
        m.shutdown(wait=True)


def test_manager_runs_job_with_progress(store: JobStore, manager_factory):
    gate = threading.Event()
    seen: list[JobContext] = []

    def handler(ctx: JobContext) -> str:
        seen.append(ctx)
        ctx.progress((1, 4), "quarter")
        gate.wait(WAIT)
        return f"mem://{ctx.params['name']}"

    m = manager_factory({"import": handler})
    m.start()
    job = m.submit("import", {"name": "ecoli"})
    wait_for(lambda: store.get(job.id).message == "quarter")
    mid = store.get(job.id)
    assert mid.status is JobStatus.RUNNING and mid.progress == 0.25
    assert mid.owner == current_owner()
    assert m.running == {job.id}
    gate.set()
    done = store.wait(job.id, WAIT)
    assert done.status is JobStatus.DONE and done.result == "mem://ecoli" and done.progress == 1
    assert seen[0].id == job.id


def test_manager_errors(store: JobStore, manager_factory, caplog):
    def user_error(ctx):
        raise InputError("chromosome 'chrZ' is not in genome 'hg38'")

    def bug(ctx):
        raise ValueError("boom")

    def bad_result(ctx):
        return 42

    m = manager_factory({"user": user_error, "bug": bug, "bad": bad_result})
    with pytest.raises(InputError, match="unknown job kind 'nope'"):
        m.submit("nope", {})
    with caplog.at_level(logging.ERROR, logger="sandgrain.jobs"):
        a = m.submit("user", {})
        b = m.submit("bug", {})
        c = m.submit("bad", {})
        fa, fb, fc = (store.wait(j.id, WAIT) for j in (a, b, c))
    assert fa.status is JobStatus.FAILED
    assert fa.error == "chromosome 'chrZ' is not in genome 'hg38'"
    assert fb.status is JobStatus.FAILED and fb.error == "internal error: ValueError: boom"
    assert fc.status is JobStatus.FAILED and fc.error.startswith("internal error:")
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)


def test_manager_cancels_queued_and_running(store: JobStore, manager_factory):
    started = threading.Event()

    def loop(ctx: JobContext) -> str:
        started.set()
        while not ctx.cancelled():
            time.sleep(0.01)
        raise CancelledError("stopped")

    m = manager_factory({"loop": loop}, max_workers=1)
    running = m.submit("loop", {})
    assert started.wait(WAIT)
    queued = m.submit("loop", {})  # the only worker is busy: it stays queued
    assert store.get(queued.id).status is JobStatus.QUEUED
    assert store.request_cancel(queued.id).status is JobStatus.CANCELLED
    assert store.request_cancel(running.id).cancel_requested
    r = store.wait(running.id, WAIT)
    assert r.status is JobStatus.CANCELLED and r.cancel_requested and r.finished
    assert store.get(queued.id).started is None  # the cancelled queued job never ran


def test_context_check_cancelled(store: JobStore):
    job = store.submit("k", {})
    job = store.start(job.id)
    ctx = JobContext(store, job, check_interval=0.0)
    ctx.check_cancelled()
    store.request_cancel(job.id)
    with pytest.raises(CancelledError):
        ctx.check_cancelled()


def test_context_progress_throttled_then_flushed(store: JobStore):
    job = store.start(store.submit("k", {}).id)
    ctx = JobContext(store, job, check_interval=60.0)
    ctx.progress(0.1)
    ctx.progress(0.2)  # held back
    assert store.get(job.id).progress == 0.1
    ctx.progress(0.3, "new step")  # a new message is written at once
    assert store.get(job.id).progress == 0.3
    ctx.progress((2, 5))
    ctx.flush()
    assert store.get(job.id).progress == 0.4
    ctx.progress((5, 5))  # completion is written at once
    assert store.get(job.id).progress == 1.0


def test_concurrent_submits_each_job_runs_once(store: JobStore, manager_factory):
    runs: Counter[str] = Counter()
    lock = threading.Lock()
    active = 0
    peak = 0

    def handler(ctx: JobContext) -> str:
        nonlocal active, peak
        with lock:
            runs[ctx.id] += 1
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1
        return f"r/{ctx.id}"

    m = manager_factory({"k": handler}, max_workers=4)
    m.start()
    ids: list[str] = []

    def submitter(n: int) -> None:
        for i in range(10):
            job = m.submit("k", {"n": n, "i": i})
            with lock:
                ids.append(job.id)

    threads = [threading.Thread(target=submitter, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 80
    for job_id in ids:
        assert store.wait(job_id, WAIT).status is JobStatus.DONE
    assert runs == Counter({job_id: 1 for job_id in ids})
    assert 1 < peak <= 4


def test_heartbeat_thread_refreshes_running_jobs(store: JobStore, manager_factory):
    gate = threading.Event()
    m = manager_factory({"k": lambda ctx: gate.wait(WAIT) and "x"}, heartbeat_interval=0.05)
    job = m.submit("k", {})
    wait_for(lambda: store.get(job.id).status is JobStatus.RUNNING)
    first = store.get(job.id).heartbeat
    wait_for(lambda: store.get(job.id).heartbeat > first)
    gate.set()
    assert store.wait(job.id, WAIT).status is JobStatus.DONE


def test_manager_picks_up_jobs_stored_by_other_processes(db: str, manager_factory):
    m = manager_factory({"k": lambda ctx: "from-" + ctx.params["who"]}, poll_interval=0.05)
    m.start()
    with JobStore(db) as other:  # e.g. a CLI process writing to the same file
        job = other.submit("k", {"who": "cli"})
        stranger = other.submit("unknown-kind", {})
        assert other.wait(job.id, WAIT).result == "from-cli"
        assert other.get(stranger.id).status is JobStatus.QUEUED  # not ours: left alone


def test_manager_recovers_dead_jobs_while_running(store: JobStore, manager_factory):
    job = store.submit("k", {})
    store.start(job.id, "elsewhere.example:1:tok")  # its heartbeat will go stale
    m = manager_factory({"k": lambda ctx: "x"}, heartbeat_interval=0.05, stale_after=0.3)
    m.start()  # too early: the heartbeat is fresh
    assert store.get(job.id).status is JobStatus.RUNNING
    wait_for(lambda: store.get(job.id).status is JobStatus.FAILED)
    assert store.get(job.id).error == INTERRUPTED_ERROR


def test_shutdown_leaves_unstarted_jobs_queued(db: str):
    store = JobStore(db)
    gate = threading.Event()
    m = JobManager(store, {"k": lambda ctx: gate.wait(WAIT) and "x"}, max_workers=1)
    first = m.submit("k", {})
    second = m.submit("k", {})
    wait_for(lambda: store.get(first.id).status is JobStatus.RUNNING)
    gate.set()
    m.shutdown(wait=True)
    assert store.get(first.id).status is JobStatus.DONE
    assert store.get(second.id).status in (JobStatus.QUEUED, JobStatus.DONE)
    with pytest.raises(ConflictError):
        m.submit("k", {})
    m2 = JobManager(store, {"k": lambda ctx: "y"})
    m2.start()
    assert store.wait(second.id, WAIT).status is JobStatus.DONE
    m2.shutdown()
    store.close()


# -- restart recovery -----------------------------------------------------------------------

WORKER = """
    import sys, time
    from sandgrain.jobs import JobStore
    store = JobStore(sys.argv[1])
    running = store.submit("import", {"genome": "big"})
    store.start(running.id)
    store.update_progress(running.id, 0.3, "indexing")
    queued = store.submit("import", {"genome": "small"})
    print(running.id, queued.id, flush=True)
    time.sleep(60)
"""


def test_killed_server_job_is_recovered_and_queued_job_redispatched(db: str):
    proc = run_python(WORKER, str(db))
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        running_id, queued_id = line.split()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT)
        proc.stdout.close()
        proc.stderr.close()

    store = JobStore(db)
    try:
        zombie = store.get(running_id)
        assert zombie.status is JobStatus.RUNNING
        assert owner_is_alive(zombie.owner) is False

        ran: list[str] = []

        def handler(ctx: JobContext) -> str:
            ran.append(ctx.id)
            return "mem://" + ctx.params["genome"]

        m = JobManager(store, {"import": handler})
        recovered = m.start()  # the heartbeat is fresh, but the owner pid is gone
        try:
            assert [j.id for j in recovered] == [running_id]
            failed = store.get(running_id)
            assert failed.status is JobStatus.FAILED and failed.error == INTERRUPTED_ERROR
            assert failed.finished and failed.progress == pytest.approx(0.3)
            assert store.wait(queued_id, WAIT).result == "mem://small"
            assert ran == [queued_id]
            assert store.list(status=JobStatus.RUNNING) == []
        finally:
            m.shutdown()
        assert store.recover() == []  # nothing left to recover
    finally:
        store.close()


def test_recover_rules(store: JobStore):
    host = socket.gethostname()
    me = current_owner()

    def running(owner: str) -> str:
        job = store.submit("k", {"owner": owner})
        store.start(job.id, owner)
        return job.id

    mine = running(me)
    same_pid_old_boot = running(f"{host}:{os.getpid()}:oldtoken")
    live_parent = running(f"{host}:{os.getppid()}:sometoken")
    other_host_fresh = running("elsewhere.example:123:tok")
    dead_pid = running(f"{host}:{2**22 + 12345}:tok")

    recovered = {j.id for j in store.recover(me, stale_after=60.0)}
    assert recovered == {same_pid_old_boot, dead_pid}

    # once heartbeats are stale, owners we cannot check (or that hang) are dead too
    time.sleep(0.05)
    recovered = {j.id for j in store.recover(me, stale_after=0.01)}
    assert recovered == {live_parent, other_host_fresh}
    assert store.get(mine).status is JobStatus.RUNNING
    for job_id in (same_pid_old_boot, live_parent, other_host_fresh, dead_pid):
        job = store.get(job_id)
        assert job.status is JobStatus.FAILED and job.error == INTERRUPTED_ERROR


def test_owner_is_alive():
    assert owner_is_alive(current_owner()) is True
    assert owner_is_alive(f"{socket.gethostname()}:{os.getpid()}:other") is False
    assert owner_is_alive(f"{socket.gethostname()}:{os.getppid()}:x") is True
    assert owner_is_alive("elsewhere:1:x") is None
    assert owner_is_alive("garbage") is None
    assert owner_is_alive(None) is None
