"""The metadata database layer (sandgrain.db), on a SQLite file and on a real PostgreSQL server.

The last test is the one the layer exists for: two server processes writing jobs, audit rows and
budget charges to one database at the same time lose nothing.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from pathlib import Path

import pytest

from sandgrain.beacon.audit import AuditLog
from sandgrain.beacon.budget import QueryBudget
from sandgrain.beacon.errors import BudgetExceededError
from sandgrain.config import Settings
from sandgrain.db import Database, _to_pyformat, connect, redact
from sandgrain.errors import ConflictError, InputError, StorageError
from sandgrain.jobs import JobStatus, JobStore

TABLE = (
    "CREATE TABLE IF NOT EXISTS items (id {serial}, name TEXT NOT NULL UNIQUE, "
    "weight {float}, n INTEGER NOT NULL DEFAULT 0)",
)


@pytest.fixture
def db(database: str):
    d = Database(database)
    d.ensure_schema("items", 1, TABLE)
    yield d
    d.close()


# -- URLs and SQL -----------------------------------------------------------------------------


def test_urls_name_sqlite_files_or_postgresql(tmp_path: Path, monkeypatch):
    plain = Database(tmp_path / "a.sqlite")
    assert plain.dialect == "sqlite" and plain.path == tmp_path / "a.sqlite"
    assert plain.url == f"sqlite:///{tmp_path}/a.sqlite"
    assert Database(plain.url).path == plain.path  # four slashes: an absolute path
    monkeypatch.chdir(tmp_path)
    assert Database("sqlite:///rel/b.sqlite").path == Path("rel/b.sqlite")  # three: relative
    assert (tmp_path / "rel" / "b.sqlite").is_file()
    pg = Database("postgresql://u:secret@db.example:5432/sg")
    assert pg.dialect == "postgresql" and pg.path is None
    assert "secret" not in repr(pg) and "secret" not in pg.name
    assert redact("postgresql://u:pw@h:1/d") == "postgresql://u:***@h:1/d"
    assert redact("postgresql://h/d") == "postgresql://h/d"
    assert connect(plain) is plain
    for bad in ("mysql://h/d", ":memory:", "", "sqlite:///"):
        with pytest.raises(InputError):
            Database(bad)


def test_settings_choose_the_database():
    assert Settings.from_env({}, home="/h").database_url == "sqlite:////h/sandgrain.sqlite"
    env = {"SANDGRAIN_HOME": "/h", "SANDGRAIN_DATABASE": "postgresql://db/sg"}
    assert Settings.from_env(env).database_url == "postgresql://db/sg"
    assert Settings.from_env(env, database="/x.sqlite").database_url == "/x.sqlite"


def test_placeholders_become_pyformat_outside_quotes():
    sql = "SELECT * FROM t WHERE a = ? AND b LIKE 'x?%' AND c LIKE ? || '%' AND \"q?\" = ?"
    assert _to_pyformat(sql) == (
        "SELECT * FROM t WHERE a = %s AND b LIKE 'x?%%' AND c LIKE %s || '%%' AND \"q?\" = %s"
    )
    assert _to_pyformat("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', %s"


# -- statements and transactions ---------------------------------------------------------------


def test_rows_by_position_and_name(db: Database):
    with db.transaction(write=True) as tx:
        (first,) = tx.execute(
            "INSERT INTO items (name, weight) VALUES (?, ?) RETURNING id", ("a", 1.7e9 + 0.25)
        ).fetchone()
        tx.executemany("INSERT INTO items (name, weight) VALUES (?, ?)", [("b", 2), ("c", None)])
    rows = db.query("SELECT id, name, weight FROM items WHERE name LIKE '%' ORDER BY id")
    assert [r["name"] for r in rows] == ["a", "b", "c"]
    ident, name, weight = rows[0]
    assert (ident, name, weight) == (first, "a", 1.7e9 + 0.25)  # a 64-bit float on both
    assert rows[2]["weight"] is None and list(rows[0].keys()) == ["id", "name", "weight"]


def test_transactions_commit_or_roll_back(db: Database):
    with pytest.raises(RuntimeError), db.transaction(write=True) as tx:
        tx.execute("INSERT INTO items (name) VALUES (?)", ("lost",))
        raise RuntimeError("the caller changed its mind")
    assert db.query("SELECT COUNT(*) FROM items") == [(0,)]
    with db.transaction(write=True) as tx:
        assert tx.execute("INSERT INTO items (name) VALUES (?)", ("kept",)).rowcount == 1
        assert tx.execute("UPDATE items SET n = n + 1 WHERE name = ?", ("none",)).rowcount == 0
    assert [tuple(r) for r in db.query("SELECT name, n FROM items")] == [("kept", 0)]


def test_driver_errors_become_sandgrain_errors(db: Database):
    with pytest.raises(StorageError, match="cannot read database"):
        db.query("SELECT nothing FROM nowhere")
    with db.transaction(write=True) as tx:
        tx.execute("INSERT INTO items (name) VALUES (?)", ("a",))
    with pytest.raises(ConflictError), db.transaction(write=True) as tx:
        tx.execute("INSERT INTO items (name) VALUES (?)", ("a",))
    assert db.query("SELECT COUNT(*) FROM items") == [(1,)]  # the connection is usable again
    db.close()
    with pytest.raises(StorageError, match="closed"):
        db.query("SELECT 1")


def test_unreachable_postgresql_is_a_storage_error_without_the_password():
    with socket_free_port() as port:
        lost = Database(f"postgresql://u:hunter2@127.0.0.1:{port}/sg", timeout=2)
        with pytest.raises(StorageError) as info:
            lost.query("SELECT 1")
    assert "cannot open database" in str(info.value) and "hunter2" not in str(info.value)


def test_a_dropped_postgresql_connection_is_opened_again(postgres_url: str):
    with Database(postgres_url) as mine, Database(postgres_url) as admin:
        ((pid,),) = mine.query("SELECT pg_backend_pid()")
        admin.query("SELECT pg_terminate_backend(?)", (pid,))  # e.g. a server restart
        with pytest.raises(StorageError, match="terminating connection"):
            mine.query("SELECT 1")
        assert mine.query("SELECT 1") == [(1,)]


def test_writers_of_one_scope_take_turns(database: str):
    """A read-then-write in a write transaction never interleaves with another writer: without
    the turn-taking, PostgreSQL's READ COMMITTED would lose increments here."""
    with Database(database) as d:
        d.ensure_schema("items", 1, TABLE)
        with d.transaction(write=True) as tx:
            tx.execute("INSERT INTO items (name) VALUES ('counter')")
    dbs = [Database(database) for _ in range(3)]  # separate connections, as processes have

    def bump(d: Database) -> None:
        for _ in range(25):
            with d.transaction(write=True, scope="counter") as tx:
                (n,) = tx.execute("SELECT n FROM items WHERE name = 'counter'").fetchone()
                tx.execute("UPDATE items SET n = ? WHERE name = 'counter'", (n + 1,))

    threads = [threading.Thread(target=bump, args=(dbs[i % 3],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dbs[0].query("SELECT n FROM items") == [(150,)]
    for d in dbs:
        d.close()


def test_schemas_are_created_once_and_versioned(database: str):
    with Database(database) as d:
        d.ensure_schema("items", 1, TABLE)
        d.ensure_schema("items", 1, TABLE)  # idempotent
        d.ensure_schema("items", 2, TABLE)  # an upgrade records the new version
        assert d.query("SELECT version FROM schema_versions WHERE owner = 'items'") == [(2,)]
        with pytest.raises(StorageError, match="newer sandgrain"):
            d.ensure_schema("items", 1, TABLE)


# -- two server processes ----------------------------------------------------------------------

JOBS_EACH = 30
BUDGET = 40


def server_process(url: str, name: str, barrier, results) -> None:
    """One server's share of the work: submit jobs, charge the shared budget, audit each query;
    then take queued jobs (its own and the other server's) until none is left."""
    jobs, budget, audit = JobStore(url), QueryBudget(url, limit=BUDGET), AuditLog(url)
    barrier.wait(60)
    submitted, charged, audited = [], 0, []
    for i in range(JOBS_EACH):
        submitted.append(jobs.submit("search", {"server": name, "i": i}).id)
        try:
            budget.charge("anonymous:198.51.100.7")
            charged += 1
        except BudgetExceededError:
            pass
        audited.append(audit.record({"kind": "query", "outcome": "ok", "subject": name}))
    barrier.wait(60)
    ran = []
    while queued := jobs.list(status="queued", limit=10):
        for job in queued:
            try:
                jobs.start(job.id, f"{name}:1:t")
            except ConflictError:
                continue  # the other server took it
            jobs.finish(job.id, f"result/{job.id}")
            ran.append(job.id)
    results.put((name, submitted, charged, audited, ran))


def test_two_server_processes_lose_no_job_audit_row_or_budget_charge(database: str):
    # the schema exists before the servers start, as after `sandgrain serve` ran once
    for owner in (JobStore(database), QueryBudget(database), AuditLog(database)):
        owner.close()
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2), spawn.Queue()
    procs = [
        spawn.Process(target=server_process, args=(database, name, barrier, results))
        for name in ("server-a", "server-b")
    ]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    submitted = [job for _, ids, *_ in got for job in ids]
    ran = Counter(job for *_, ids in got for job in ids)
    audited = [i for *_, ids, _ in got for i in ids]
    with JobStore(database) as store:
        done = store.list(limit=None)
        assert len(done) == len(submitted) == 2 * JOBS_EACH
        assert {j.id for j in done} == set(submitted) and ran == Counter(set(submitted))
        assert all(j.status is JobStatus.DONE and j.result == f"result/{j.id}" for j in done)
        (row,) = store.db.query(
            "SELECT (SELECT COUNT(*) FROM beacon_budget), (SELECT COUNT(*) FROM beacon_audit)"
        )
    assert sum(charged for _, _, charged, _, _ in got) == BUDGET == row[0]
    assert None not in audited and len(set(audited)) == 2 * JOBS_EACH == row[1]
    log = AuditLog(database)
    assert sorted(e["id"] for e in log.events()) == sorted(audited)
    assert Counter(e["subject"] for e in log.events()) == {"server-a": 30, "server-b": 30}
    log.close()


class socket_free_port:
    """A loopback port nothing listens on (held bound, not listening, while in use)."""

    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        return self._sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
