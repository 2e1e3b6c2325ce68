"""The calling routes (``/api/v1/calling``) on the demo read set: three 1000 Genomes samples over
4.2 kb of chr17, stored by the calling domain's demo step. A job calls them jointly; its records
are the VCF's, which is the one unscattered ``bcftools mpileup | call`` of the aligned reads
(checked against the pipeline's own BAMs in tests/calling); bad requests are problems.
"""

from __future__ import annotations

import contextlib
import gzip
import time

import pytest
from conftest import DATA
from fastapi.testclient import TestClient

from sandgrain.calling import demo as calling_demo
from sandgrain.calling.demo import DEMO_READSET
from sandgrain.config import Settings
from sandgrain.registry import DemoContext
from sandgrain.storage import Store
from sandgrain.web.app import create_app

API = "/api/v1/calling"
PROBLEM = "application/problem+json"

if not (DATA / calling_demo.DEMO_FOLDER).is_dir():
    pytest.skip(f"no shared reads at {DATA}", allow_module_level=True)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("calling-api")
    settings = Settings(home=str(home), executor="serial")

    @contextlib.contextmanager
    def progress(*_):
        yield lambda *a: None

    lines: list[str] = []
    ctx = DemoContext(store=Store.from_settings(settings), data=DATA, settings=settings,
                      progress=progress, byte_progress=progress, echo=lines.append)  # fmt: skip
    calling_demo.demo(ctx)
    calling_demo.demo(ctx)  # a second run keeps what the first stored
    assert lines[1] == f"demo read set {DEMO_READSET} is up to date", lines
    with TestClient(create_app(settings)) as c:
        yield c


def _done(client, url: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        job = client.get(url).json()
        if job["status"] in ("done", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_the_demo_read_set_is_listed(client):
    (rs,) = client.get(f"{API}/readsets").json()["readsets"]
    assert rs["name"] == DEMO_READSET and rs["contigs"] == [["17", 4200]]
    assert [s["sample"] for s in rs["samples"]] == ["HG00100", "HG00101", "HG00102"]
    # the pairs with both mates in the slice (of 569, 229 and 234 paired primary reads: a read
    # whose mate lies outside the 4.2 kb is left out, as samtools fastq -1/-2 does)
    assert [s["pairs"] for s in rs["samples"]] == [259, 110, 113]


def test_a_job_calls_the_read_set_jointly(client):
    r = client.post(f"{API}/jobs", json={"readset": DEMO_READSET})
    assert r.status_code == 202
    url = r.headers["location"]
    assert r.json()["page_url"] == f"/calling?job={r.json()['id']}"
    job = _done(client, url)
    assert job["status"] == "done", job
    calls = job["calls"]
    assert calls["samples"] == ["HG00100", "HG00101", "HG00102"]
    vcf = client.get(calls["vcf_url"])
    assert vcf.status_code == 200 and "attachment" in vcf.headers["content-disposition"]
    lines = gzip.decompress(vcf.content).decode().splitlines()
    records = [ln.split("\t") for ln in lines if not ln.startswith("#")]
    assert calls["total"] == len(records) == len(calls["records"]) > 0
    for got, row in zip(calls["records"], records, strict=True):
        assert [got["chrom"], str(got["pos"]), got["ref"], got["alt"]] == [row[0], row[1], row[3],
                                                                           row[4]]  # fmt: skip
        assert [c["gt"] for c in got["calls"]] == [v.split(":")[0] for v in row[9:]]
    assert calls["report"]["reads"] == 2 * (259 + 110 + 113)
    # HG00102 is homozygous for the alternate allele where the others are heterozygous
    assert any([c["gt"] for c in v["calls"]] == ["0/1", "0/1", "1/1"] for v in calls["records"])


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"readset": "nope"}, 404, "no read set 'nope'; known: 1000g-chr17"),
        ({"readset": DEMO_READSET, "gvcf": True}, 400, "unknown field(s): gvcf"),
        ({}, 400, "readset"),
        ({"readset": "../x"}, 400, "invalid read set name"),
    ],
)
def test_bad_requests_are_problems(client, body, status, words):
    r = client.post(f"{API}/jobs", json=body)
    assert r.status_code == status and r.headers["content-type"] == PROBLEM
    assert words in r.json()["detail"]


def test_unknown_jobs_are_404(client):
    unknown = f"{API}/jobs/0123456789abcdef0123456789abcdef"
    r = client.get(unknown)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert client.get(f"{unknown}/calls.vcf.gz").status_code == 404
