"""Shared fixtures: the real data folder, stores (local and S3 on loopback), demo genomes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandgrain.config import Settings
from sandgrain.genome.store import add_genome, open_genome
from sandgrain.storage import Store
from sandgrain.testing.s3 import LoopbackS3

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))

YEAST_FASTA = DATA / "genomes/yeast-R64/Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz"
YEAST_SGD = DATA / "genomes/yeast-R64/SGD_features.tab"
YEAST_GTF = DATA / "genomes/yeast-R64/Saccharomyces_cerevisiae.R64-1-1.96.gtf.gz"
SARS_FASTA = DATA / "genomes/sars-cov-2/NC_045512.2.fasta"
SARS_GBK = DATA / "genomes/sars-cov-2/NC_045512.2.gbk"
CHRX_FASTA = DATA / "genomes/human-grch37-chrX-1-70M/hs37chrXtrunc.fa.gz"
CHR22_FASTA = DATA / "genomes/human-grch37-chr22-20-21M/22_20-21M.fa"


def pytest_configure(config):
    if not DATA.is_dir():
        raise pytest.UsageError(
            f"real test data not found at {DATA}; set SANDGRAIN_TEST_DATA to the shared data folder"
        )


@pytest.fixture(scope="session", autouse=True)
def worker_cache_dir(tmp_path_factory):
    """Copies of files read from object storage go to a temporary worker cache, never the
    user's (``SANDGRAIN_CACHE_DIR``, inherited by worker processes and CLI subprocesses)."""
    saved = os.environ.get("SANDGRAIN_CACHE_DIR")
    path = str(tmp_path_factory.mktemp("worker-cache"))
    os.environ["SANDGRAIN_CACHE_DIR"] = path
    yield path
    if saved is None:
        os.environ.pop("SANDGRAIN_CACHE_DIR", None)
    else:
        os.environ["SANDGRAIN_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-protocol server (moto, separate process) on 127.0.0.1 for the whole session."""
    with LoopbackS3() as server:
        yield server


@pytest.fixture
def s3_store(s3_server, request) -> Store:
    """An empty store in its own bucket on the loopback S3 server."""
    bucket = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50]
    url = s3_server.create_bucket(bucket.strip("-"))
    return Store(url + "/sandgrain", {"client_kwargs": {"endpoint_url": s3_server.endpoint}})


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (Debian's ``postgresql``) in a temporary folder, for the session.

    Skipped when the server binaries are missing, except under CI, where that is a failure."""
    from pg import LocalPostgres, find_bin

    bindir = find_bin()
    if bindir is None:
        message = "PostgreSQL server binaries not found under /usr/lib/postgresql (make sysdeps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with LocalPostgres(bindir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A URL of the session's PostgreSQL server whose connections see a fresh, empty schema."""
    url, schema = postgres_server.fresh_url()
    yield url
    postgres_server.drop(schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    """The same test on a SQLite file and on PostgreSQL: a fresh metadata database URL."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "sandgrain.sqlite")


@pytest.fixture
def local_store(tmp_path) -> Store:
    return Store(str(tmp_path / "store"))


@pytest.fixture(params=["local", "s3"])
def any_store(request) -> Store:
    """The same test on a local directory and on the loopback S3 server."""
    return request.getfixturevalue("local_store" if request.param == "local" else "s3_store")


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Store:
    """A local store with yeast (SGD genes) and SARS-CoV-2 imported once per session."""
    store = Store(str(tmp_path_factory.mktemp("demo") / "store"))
    add_genome(
        store,
        "yeast",
        str(YEAST_FASTA),
        annotation=str(YEAST_SGD),
        aliases=["sacCer3"],
        assembly="R64-1-1",
    )
    add_genome(store, "sars-cov-2", str(SARS_FASTA), annotation=str(SARS_GBK))
    return store


@pytest.fixture(scope="session")
def yeast(demo_store):
    return open_genome(demo_store, "yeast")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=str(tmp_path / "home"), executor="serial")


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run ``sandgrain ARGS…`` in-process against a fresh home; returns (code, stdout, stderr)."""
    monkeypatch.setenv("SANDGRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SANDGRAIN_STORE", raising=False)
    monkeypatch.setenv("SANDGRAIN_EXECUTOR", "serial")

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_:
            from sandgrain.cli import main

            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    run.store = Store(str(tmp_path / "home" / "store"))
    return run


@pytest.fixture(scope="module")
def idp():
    """A loopback identity provider (JWKS on 127.0.0.1) whose tokens and visas tests make."""
    from sandgrain.testing.auth import LoopbackIdP

    with LoopbackIdP() as idp:
        yield idp


@pytest.fixture(scope="module")
def beacon_client(store, idp, tmp_path_factory):
    """A web client of an app over the module's own ``store`` fixture whose Beacon service (which
    verifies bearer tokens for every domain) trusts ``idp``."""
    from fastapi.testclient import TestClient

    from sandgrain.beacon.service import BeaconService
    from sandgrain.web.app import create_app

    home = tmp_path_factory.mktemp("web-home")
    settings = Settings(home=str(home), store_url=store.url, executor="serial")
    app = create_app(settings)
    app.state.beacon = BeaconService(settings, stores=[store], security=idp.config())
    with TestClient(app) as c:
        yield c
