"""The web app: health, the genome page, the genome API, jobs that survive a server restart."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from sandgrain.config import Settings
from sandgrain.jobs import INTERRUPTED_ERROR, JobStore
from sandgrain.web.app import create_app


@pytest.fixture
def app_settings(tmp_path, demo_store) -> Settings:
    return Settings(home=str(tmp_path / "home"), store_url=demo_store.url, executor="serial")


@pytest.fixture
def client(app_settings):
    with TestClient(create_app(app_settings)) as c:
        yield c


def test_health(client, demo_store):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["genomes"] == 2 and body["store"] == demo_store.url
    assert body["database"] == {"kind": "sqlite", "ok": True}


def test_health_is_503_naming_the_part_that_fails(app_settings, monkeypatch):
    """A load balancer must take a server out whose database or store does not answer."""
    app = create_app(app_settings)
    with TestClient(app) as c:
        app.state.jobs.db.close()  # as a PostgreSQL server gone away
        r = c.get("/health")
        assert r.status_code == 503
        assert r.json()["status"] == "unavailable" and r.json()["failed"] == ["database"]
        assert r.json()["database"] == {"kind": "sqlite", "ok": False}

        def unreachable(kind):
            raise OSError("the bucket does not answer")

        monkeypatch.setattr(app.state.store, "dataset_names", unreachable)
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["failed"] == ["store", "database"]
        assert "genomes" not in r.json()


def test_design_page_is_html(client):
    r = client.get("/guides")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


def test_page_lists_genomes_with_gene_counts(client):
    html = client.get("/guides").text
    assert "yeast" in html and "7,136" in html  # SGD gene count
    assert "sars-cov-2" in html and "29,903" in html


def test_empty_store_page_explains_how_to_add(tmp_path):
    settings = Settings(home=str(tmp_path / "h"), executor="serial")
    with TestClient(create_app(settings)) as c:
        assert "sandgrain genome add" in c.get("/guides").text


def test_genome_api_and_problem_details(client):
    names = [g["name"] for g in client.get("/api/v1/genomes").json()]
    assert names == ["sars-cov-2", "yeast"]
    yeast = client.get("/api/v1/genomes/sacCer3").json()
    assert yeast["name"] == "yeast" and len(yeast["chromosomes"]) == 17
    assert yeast["provenance"]["command"] == "genome add"
    r = client.get("/api/v1/genomes/mouse")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert "unknown genome 'mouse'" in r.json()["detail"]
    r = client.get("/api/v1/genomes/bad name!")
    assert r.status_code == 400 and r.json()["status"] == 400


def wait_done(client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_composition_job(client, yeast):
    r = client.post("/api/v1/genomes/sars-cov-2/composition", params={"max_size": 5000})
    assert r.status_code == 202 and r.headers["location"] == f"/api/v1/jobs/{r.json()['id']}"
    job = wait_done(client, r.json()["id"])
    assert job["status"] == "done" and job["progress"] == 1.0, job
    result = client.get(f"/api/v1/jobs/{job['id']}/result").json()
    (row,) = result["chromosomes"]
    assert row["length"] == 29903 and result["provenance"]["parameters"]["max_size"] == 5000
    assert client.get("/api/v1/jobs/nope").status_code == 404


def test_restart_marks_running_jobs_failed(app_settings, tmp_path):
    """A job left 'running' by a server that died is failed with a clear reason on restart."""
    jobs = JobStore(app_settings.database_url)
    job = jobs.submit("genome.composition", {"genome": "yeast"})
    jobs.start(job.id, owner="some-host-that-died:4242:token")
    with jobs._tx() as conn:  # the dead server's last heartbeat was long ago
        conn.execute(
            "UPDATE jobs SET heartbeat = ? WHERE id = ?", ("2000-01-01T00:00:00.000000Z", job.id)
        )
    jobs.close()
    with TestClient(create_app(app_settings)) as c:
        got = c.get(f"/api/v1/jobs/{job.id}").json()
    assert got["status"] == "failed" and got["error"] == INTERRUPTED_ERROR


def test_cancel_a_running_job(client):
    # ~1,200 small tasks on the serial executor: long enough to cancel half-way
    r = client.post("/api/v1/genomes/yeast/composition", params={"max_size": 10_000})
    job_id = r.json()["id"]
    deadline = time.monotonic() + 30
    while client.get(f"/api/v1/jobs/{job_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 200
    job = wait_done(client, job_id)
    assert job["status"] == "cancelled" and job["progress"] < 1.0
    r = client.get(f"/api/v1/jobs/{job_id}/result")
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    assert r.headers["content-type"] == "application/problem+json"


def test_stopping_the_server_ends_its_running_jobs(app_settings):
    from sandgrain.web.app import STOPPED_ERROR

    with TestClient(create_app(app_settings)) as c:
        job_id = c.post("/api/v1/genomes/yeast/composition", params={"max_size": 1000}).json()["id"]
        deadline = time.monotonic() + 30
        while c.get(f"/api/v1/jobs/{job_id}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    job = JobStore(app_settings.database_url).get(job_id)
    assert job.status == "failed" and job.error == STOPPED_ERROR


def test_building_an_app_writes_nothing(tmp_path):
    """Only a started app opens its database and domain resources: building one (for its
    OpenAPI schema, say) leaves the data home untouched."""
    from sandgrain.config import Settings
    from sandgrain.web.app import create_app

    home = tmp_path / "home"
    app = create_app(Settings(home=str(home), store_url=str(tmp_path / "store")))
    assert "/api/beacon/g_variants" in app.openapi()["paths"]
    assert not home.exists() and not hasattr(app.state, "beacon")
