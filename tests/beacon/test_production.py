"""The Beacon run as a production service: request limits, a tamper-evident audit log that fails
closed, several server processes sharing one metadata database, and no processes or partial
versions left behind by a killed ingest.

The audit log's chain is checked on a SQLite file and on PostgreSQL (the ``database`` fixture);
``serve --workers`` and the killed ingest run as real ``sandgrain`` processes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from beacon_fixtures import BASE, check
from conftest import DATA, REPO
from fastapi.testclient import TestClient

from sandgrain.beacon.audit import GENESIS, AuditLog, chain_hash
from sandgrain.beacon.ingest import KIND, ingest
from sandgrain.beacon.policy import SecurityConfig
from sandgrain.beacon.request import MAX_JSON_DEPTH, check_json_depth
from sandgrain.beacon.service import BeaconService
from sandgrain.beacon.settings import BeaconSettings
from sandgrain.config import Settings
from sandgrain.db import connect
from sandgrain.errors import InputError, StorageError
from sandgrain.storage import Store
from sandgrain.web.app import create_app

CHR22 = DATA / "variants" / "1000g-chr22-20-21M-191samples.vcf"
DS = "c22"
VID = "22-20000864-G-A"  # a singleton: one heterozygous carrier
SINGLETON = {"referenceName": "22", "start": [20000863], "alternateBases": "A"}
SANDGRAIN = str(Path(sys.executable).parent / "sandgrain")
LIMIT = 4096  # SANDGRAIN_BEACON_MAX_BODY of the test app


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(str(tmp_path_factory.mktemp("production") / "store"))
    ingest(store, DS, CHR22, assembly="GRCh37", executor="serial")
    return store


def make_app(store: Store, root: Path, env=(), **security):
    security.setdefault("audit_db", str(root / "audit.db"))
    security.setdefault("budget_limit", 0)
    security.setdefault("rare_min_carriers", 0)  # singletons answered: the counts are the point
    settings = Settings(home=str(root / "home"), store_url=store.url, executor="serial", env=env)
    app = create_app(settings)
    app.state.beacon = BeaconService(settings, stores=[store], security=SecurityConfig(**security))
    return app


@pytest.fixture
def beacon(store, tmp_path):
    app = make_app(store, tmp_path, env=(("SANDGRAIN_BEACON_MAX_BODY", str(LIMIT)),))
    with TestClient(app) as client:
        yield client, app.state.beacon


# =================================================================================================
# 1. request limits
# =================================================================================================
def request_body(pad: int = 0) -> bytes:
    """A valid Beacon request body, padded with whitespace to ``pad`` bytes."""
    doc = {"query": {"requestParameters": SINGLETON, "requestedGranularity": "count"}}
    text = json.dumps(doc).encode()
    return text + b" " * max(0, pad - len(text))


def post_endpoints(client) -> list[str]:
    """Every Beacon path that takes a POST, its path parameters filled in."""
    fill = {
        "{variant_id}": VID,
        "{individual_id}": "HG00096",
        "{dataset_id}": DS,
        "{cohort_id}": DS,
        "{action}": "revoke",
    }
    paths = []
    for path, operations in client.app.openapi()["paths"].items():
        if path.startswith(BASE) and "post" in operations:
            for name, value in fill.items():
                path = path.replace(name, value)
            paths.append(re.sub(r"\{[^}]+\}", "x", path))  # other entry types' ids
    assert len(paths) >= 14
    return paths


def test_the_body_limit_is_a_setting_of_one_mebibyte_by_default():
    assert BeaconSettings().max_body == 1 << 20
    assert BeaconSettings.from_env({"SANDGRAIN_BEACON_MAX_BODY": "2048"}).max_body == 2048
    with pytest.raises(InputError, match="SANDGRAIN_BEACON_MAX_BODY"):
        BeaconSettings.from_env({"SANDGRAIN_BEACON_MAX_BODY": "0"})
    with pytest.raises(InputError, match="SANDGRAIN_BEACON_MAX_BODY"):
        BeaconSettings.from_env({"SANDGRAIN_BEACON_MAX_BODY": "1MB"})


def test_a_body_at_the_limit_is_answered_and_one_byte_more_is_413(beacon):
    client, svc = beacon
    r = client.post(BASE + "/g_variants", content=request_body(LIMIT))
    assert r.status_code == 200, r.text[:300]
    assert check(r.json())["responseSummary"]["numTotalResults"] == 1
    r = client.post(BASE + "/g_variants", content=request_body(LIMIT + 1))
    assert r.status_code == 413
    doc = check(r.json(), 413)
    assert "4,096 bytes" in doc["error"]["errorMessage"]
    event = svc.audit.events()[-1]  # refused, and audited as such: nothing of the body kept
    assert event["outcome"] == "denied" and "4,096 bytes" in event["detail"]
    assert event["query"] == {"unread": {"query": [], "body": None}}


def test_a_chunked_body_is_cut_off_at_the_limit(beacon):
    """Without a Content-Length the body is read up to the limit, never whole."""
    client, _ = beacon
    sent = []

    def chunks():
        for _ in range(1000):  # 1 MB offered in 1 kB chunks
            sent.append(1024)
            yield b" " * 1024

    r = client.post(BASE + "/g_variants", content=chunks())
    assert r.status_code == 413
    check(r.json(), 413)


def test_every_beacon_post_endpoint_refuses_large_and_deep_bodies(beacon):
    client, _ = beacon
    for path in post_endpoints(client):
        r = client.post(path, content=b"[" * (LIMIT + 1))
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
        check(r.json(), 413)
        r = client.post(path, content=b"[" * LIMIT)
        if "/admin/" in path:  # the admin API wants its token first
            assert r.status_code == 401
            continue
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        assert "levels deep" in check(r.json(), 400)["error"]["errorMessage"]


def test_deep_nesting_is_a_400_not_a_recursion_error(store, tmp_path):
    """``[`` × 100,000 within the default 1 MiB limit: the parser is never reached."""
    with TestClient(make_app(store, tmp_path)) as client:
        for body in (b"[" * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1"):
            r = client.post(BASE + "/individuals", content=body)
            assert r.status_code == 400, r.text[:200]
            assert "levels deep" in check(r.json(), 400)["error"]["errorMessage"]
        r = client.post(BASE + "/g_variants", content=b"1" * 5000)  # over int's 4,300 digits
        assert r.status_code == 400 and "not JSON" in r.json()["error"]["errorMessage"]


def test_depth_counts_arrays_and_objects_but_not_brackets_in_strings():
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    check_json_depth(nested)
    with pytest.raises(InputError, match=f"{MAX_JSON_DEPTH + 1} levels"):
        check_json_depth(b"[" + nested + b"]")
    check_json_depth(json.dumps({"q": "[" * 10_000 + '"\\"{'}).encode())  # all inside a string
    wide = b"[" + b",".join([b'{"a": [1]}'] * 10_000) + b"]"  # many brackets, 3 deep
    check_json_depth(wide)


# =================================================================================================
# 2. the audit log: what was asked and answered, failing closed
# =================================================================================================
def test_refused_and_forged_token_requests_keep_what_was_asked(beacon):
    client, svc = beacon
    body = {
        "query": {
            "requestParameters": {**SINGLETON, "datasetIds": [DS]},
            "filters": [{"id": "HP:0001250"}],
            "requestedGranularity": "record",
        }
    }
    r = client.post(BASE + "/g_variants", json=body, headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401
    event = svc.audit.events()[-1]
    assert event["outcome"] == "denied" and event["subject"] is None
    assert event["query"] == {
        "params": SINGLETON,
        "filters": ["HP:0001250"],
        "datasetIds": [DS],
        "granularity": "record",
    }
    params = {"referenceName": "22", "start": "20000863", "datasetIds": DS}
    r = client.get(BASE + "/individuals", params=params, headers={"Authorization": "Bearer x.y"})
    assert r.status_code == 401
    event = svc.audit.events()[-1]
    assert event["query"]["datasetIds"] == [DS] and event["query"]["params"]["start"] == "20000863"
    r = client.post(BASE + "/g_variants", content=b"{not json", headers={"Authorization": "x"})
    assert svc.audit.events()[-1]["query"] == {"unread": {"query": [], "body": "{not json"}}


def test_the_counts_recorded_are_the_reported_ones(beacon):
    """One carrier of a singleton, reported as 5 (``min_count``): the log says 5, as the answer."""
    client, svc = beacon
    count = {"requestedGranularity": "count"}
    r = client.get(BASE + f"/g_variants/{VID}/individuals", params=count)
    summary = check(r.json())["responseSummary"]
    assert summary["numTotalResults"] == 5 and summary["countAdjustedTo"] == [5]
    event = svc.audit.events()[-1]
    assert event["counts"] == {"exists": True, "numTotalResults": 5, "resultSets": {DS: 5}}
    client.get(BASE + "/g_variants", params={**SINGLETON, "start": "20000863"})
    assert svc.audit.events()[-1]["counts"] == {"exists": True}  # boolean: no number went out


def _break(log: AuditLog, monkeypatch) -> None:
    def broken(**kwargs):
        raise StorageError("cannot commit to database x: disk I/O error")

    monkeypatch.setattr(log._db, "transaction", broken)


def test_an_audit_log_that_cannot_be_written_fails_closed(beacon, monkeypatch):
    client, svc = beacon
    _break(svc.audit, monkeypatch)
    for method in ("GET", "POST"):
        if method == "GET":
            r = client.get(BASE + "/g_variants", params={**SINGLETON, "start": "20000863"})
        else:
            r = client.post(BASE + "/g_variants", content=request_body())
        assert r.status_code == 503, r.text[:300]
        doc = check(r.json(), 503)
        assert "audit log" in doc["error"]["errorMessage"]
    r = client.post(BASE + "/g_variants", content=request_body(LIMIT + 1))
    assert r.status_code == 503  # a refusal that cannot be audited is not answered either


def test_failing_open_is_a_setting(store, tmp_path, monkeypatch):
    app = make_app(store, tmp_path, env=(("SANDGRAIN_BEACON_AUDIT_FAIL_CLOSED", "false"),))
    with TestClient(app) as client:
        svc = app.state.beacon
        assert svc.audit.fail_closed is False
        _break(svc.audit, monkeypatch)
        r = client.get(BASE + "/g_variants", params={**SINGLETON, "start": "20000863"})
        assert r.status_code == 200 and r.json()["responseSummary"]["exists"] is True


# -- the hash chain -------------------------------------------------------------------------------
def _events(log: AuditLog, n: int, tag: str = "") -> list[int]:
    return [
        log.record({"kind": "query", "outcome": "ok", "subject": f"u{i}{tag}", "counts": {"ds": i}})
        for i in range(n)
    ]


def _execute(log: AuditLog, sql: str, args=()) -> None:
    with log._db.transaction(write=True, scope="beacon_audit") as tx:
        tx.execute(sql, args)


def test_the_chain_detects_every_kind_of_tampering(database):
    log = AuditLog(database)
    ids = _events(log, 6)
    intact = log.verify()
    assert intact.ok and intact.rows == 6
    stored = log._db.query("SELECT hash FROM beacon_audit ORDER BY id")
    assert intact.head == stored[-1][0]

    # a changed field: that row
    _execute(log, "UPDATE beacon_audit SET subject = 'mallory' WHERE id = ?", [ids[2]])
    report = log.verify()
    assert (report.ok, report.first_bad, report.rows) == (False, ids[2], 2)
    _execute(log, "UPDATE beacon_audit SET subject = 'u2' WHERE id = ?", [ids[2]])
    assert log.verify().ok

    # a changed row whose hash was recomputed by the tamperer: the next row
    row = log._db.query("SELECT * FROM beacon_audit WHERE id = ?", [ids[2]])[0]
    previous = log._db.query("SELECT hash FROM beacon_audit WHERE id = ?", [ids[1]])[0][0]
    forged = dict(zip(row.keys(), row, strict=True), outcome="denied")
    _execute(
        log,
        "UPDATE beacon_audit SET outcome = 'denied', hash = ? WHERE id = ?",
        [chain_hash(previous, forged), ids[2]],
    )
    assert log.verify().first_bad == ids[3]
    _execute(
        log, "UPDATE beacon_audit SET outcome = 'ok', hash = ? WHERE id = ?", [row["hash"], ids[2]]
    )
    assert log.verify().ok

    # a deleted row: the one after it
    _execute(log, "DELETE FROM beacon_audit WHERE id = ?", [ids[4]])
    assert log.verify().first_bad == ids[5]


def test_inserted_swapped_and_unchained_rows_are_found(database):
    log = AuditLog(database)
    ids = _events(log, 4)
    _execute(
        log,
        "UPDATE beacon_audit SET counts = (SELECT counts FROM beacon_audit WHERE id = ?) "
        "WHERE id = ?",
        [ids[0], ids[1]],
    )  # a copy of another row's counts (swap half done)
    assert log.verify().first_bad == ids[1]
    fresh = AuditLog(f"{database}" if "://" in database else database + "-2")
    if fresh.verify().rows:  # the same PostgreSQL schema: start over in a clean table
        _execute(fresh, "DELETE FROM beacon_audit")
    first = _events(fresh, 2, "b")
    _execute(
        fresh,
        "INSERT INTO beacon_audit (time, kind, outcome, hash) VALUES (?, 'admin', 'ok', ?)",
        ["2030-01-01T00:00:00.000000Z", "f" * 64],
    )  # appended by hand
    bad = fresh.verify()
    assert bad.first_bad > first[-1] and bad.rows == 2
    _execute(fresh, "UPDATE beacon_audit SET hash = NULL WHERE id = ?", [bad.first_bad])
    assert "no hash" in fresh.verify().reason


def test_a_log_written_before_the_chain_is_chained_on_upgrade(tmp_path):
    """A version-1 table (no hash column) gets one, its rows chained in id order."""
    db = connect(tmp_path / "old.sqlite")
    db.ensure_schema(
        "beacon_audit",
        1,
        [
            "CREATE TABLE IF NOT EXISTS beacon_audit (id {serial}, time TEXT NOT NULL, "
            "kind TEXT NOT NULL, subject TEXT, issuer TEXT, ip TEXT, endpoint TEXT, method TEXT, "
            "query TEXT, datasets TEXT, granularity TEXT, counts TEXT, outcome TEXT NOT NULL, "
            "detail TEXT)"
        ],
    )
    with db.transaction(write=True) as tx:
        for i in range(3):
            tx.execute(
                "INSERT INTO beacon_audit (time, kind, outcome, subject) VALUES (?, ?, ?, ?)",
                [f"2024-01-0{i + 1}T00:00:00.000000Z", "query", "ok", f"old{i}"],
            )
    db.close()
    log = AuditLog(tmp_path / "old.sqlite")
    _events(log, 2)
    report = log.verify()
    assert report.ok and report.rows == 5
    first = log._db.query("SELECT * FROM beacon_audit ORDER BY id LIMIT 1")[0]
    assert first["hash"] == chain_hash(GENESIS, dict(zip(first.keys(), first, strict=True)))


def _write_events(url: str, n: int, tag: str) -> None:
    log = AuditLog(url)
    for i in range(n):
        log.record({"kind": "query", "outcome": "ok", "subject": f"{tag}-{i}"})
    log.close()


def test_concurrent_writers_keep_one_valid_chain(database):
    """Four processes and four threads append at once: one chain, no row lost, none forked."""
    AuditLog(database).close()  # the table exists before the writers race
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_events, args=(database, 25, f"p{i}")) for i in range(4)]
    for p in procs:
        p.start()
    threads = [
        threading.Thread(target=_write_events, args=(database, 25, f"t{i}")) for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    log = AuditLog(database)
    report = log.verify()
    assert report.ok, report
    assert report.rows == 200
    assert len({e["subject"] for e in log.events(limit=1000)}) == 200


def test_cli_verify_passes_then_names_the_tampered_row(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("SANDGRAIN_BEACON_CONFIG", raising=False)
    monkeypatch.delenv("SANDGRAIN_DATABASE", raising=False)
    log = AuditLog(Settings.from_env().database_url)
    ids = _events(log, 3)
    code, out, err = cli("beacon", "audit", "verify")
    assert code == 0, err
    assert "3 rows, hash chain intact; head " + log.verify().head in out
    _execute(log, "UPDATE beacon_audit SET detail = 'edited' WHERE id = ?", [ids[1]])
    code, out, err = cli("beacon", "audit", "verify")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and f"row {ids[1]}:" in err and "1 rows before it" in err


# =================================================================================================
# 3. several server processes on one metadata database
# =================================================================================================
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of ``processes`` still running (zombies count as ended) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.1)


@pytest.fixture
def spawned():
    """Start commands in their own sessions; every session is killed at the end."""
    procs = []

    def start(args, env, **kw):
        proc = subprocess.Popen(args, env=env, start_new_session=True, **kw)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_workers_share_budgets_and_the_audit_chain_and_die_with_their_supervisor(
    store, tmp_path, spawned
):
    config = tmp_path / "security.json"
    config.write_text(json.dumps({"budget_limit": 12, "rare_min_carriers": 0}))
    env = {
        **os.environ,
        "SANDGRAIN_HOME": str(tmp_path / "home"),
        "SANDGRAIN_STORE": store.url,
        "SANDGRAIN_EXECUTOR": "serial",
        "SANDGRAIN_BEACON_CONFIG": str(config),
    }
    env.pop("SANDGRAIN_DATABASE", None)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as fh:
        server = spawned(
            [SANDGRAIN, "serve", "--port", str(port), "--workers", "2"],
            env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert server.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                break
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    workers = [
        p for p in psutil.Process(server.pid).children() if "spawn_main" in " ".join(p.cmdline())
    ]
    assert len(workers) == 2
    statuses = []

    def ask() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(5):
                r = client.get(BASE + "/g_variants", params={**SINGLETON, "start": "20000863"})
                statuses.append(r.status_code)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # one budget for both processes: 12 answers of 20, whichever process took each request
    assert sorted(statuses) == [200] * 12 + [429] * 8
    audit = AuditLog(Settings(home=str(tmp_path / "home")).database_url)
    report = audit.verify()
    assert report.ok and report.rows == 20
    family = psutil.Process(server.pid).children(recursive=True)
    server.kill()  # SIGKILL: the supervisor cannot stop its workers itself
    server.wait()
    alive = _gone(family, timeout=5)
    assert not alive, [" ".join(p.cmdline())[:100] for p in alive]
    assert "(2 processes)" in log.read_text()


def test_workers_must_be_one_or_more(cli):
    code, _, err = cli("serve", "--workers", "0")
    assert code == 1 and "--workers must be 1 or more" in err


# =================================================================================================
# 4. a killed ingest: no processes left, its partial version cleaned
# =================================================================================================
def _synth():
    spec = importlib.util.spec_from_file_location("synth_vcf", REPO / "benchmarks/synth_vcf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_sigkilled_ingest_leaves_no_workers_and_its_version_is_cleaned(
    tmp_path, spawned, monkeypatch
):
    vcf = tmp_path / "syn.vcf.gz"
    _synth().make_vcf(vcf, 200, 60_000, seed=3, chromosomes="21,22")
    home = tmp_path / "home"
    env = {**os.environ, "SANDGRAIN_HOME": str(home), "SANDGRAIN_EXECUTOR": "local:2"}
    env.pop("SANDGRAIN_STORE", None)
    args = [SANDGRAIN, "beacon", "ingest", "--dataset", "syn", "--vcf", str(vcf)]
    args += ["--assembly", "GRCh37", "--no-ref-check", "--window", "200000", "-q"]
    proc = spawned(args, env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dataset = home / "store" / KIND / "syn"
    tree = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while True:  # forkserver, resource tracker and two workers; a partition written
        assert proc.poll() is None, proc.stderr.read()
        family = tree.children(recursive=True)
        written = [p for p in dataset.glob("v*/**/*") if p.is_file()] if dataset.is_dir() else []
        if len(family) >= 4 and written:
            break
        assert time.monotonic() < deadline, "the ingest did not fan out within 120 s"
        time.sleep(0.05)
    family = tree.children(recursive=True)
    proc.kill()  # the ingest alone, not its process group
    proc.wait()
    alive = _gone(family, timeout=5)
    assert not alive, [" ".join(p.cmdline())[:100] for p in alive]

    store = Store(str(home / "store"))
    assert not store.has_dataset(KIND, "syn")
    (partial,) = [i for i in store.gc(older_than_s=0).items if i.what == "partial version"]
    assert partial.dataset == f"{KIND}/syn"
    # The next publish of the dataset removes it (here without waiting the hour that protects
    # a version another ingest may still be writing).
    monkeypatch.setattr("sandgrain.storage.ABANDONED_AFTER_S", 0.0)
    ingest(store, "syn", CHR22, assembly="GRCh37", executor="serial", check_ref=False)
    versions = [p.name for p in dataset.iterdir() if p.is_dir()]
    assert versions == [store.open_dataset(KIND, "syn").manifest["version"]]
    assert partial.key.rsplit("/", 1)[1] not in versions
