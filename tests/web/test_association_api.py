"""The association routes on a small synthetic study (300 samples × 240 variants on chromosomes 1,
2 and 22, one variant planted to carry a 0/1 trait): an analysis runs as a job and its summary and
hits equal the tests called directly, the hits are in p order with links to the Beacon and UCSC
(hg19 for GRCh37), the plots are PNG and SVG, the TSV has every variant; the forest finds the
planted variant; trait tables are stored and listed; bad requests are problem details (400, 404,
409, 413) refused before a job is queued; the demo step imports its data once. The page in
chromium: ``test_association_page.py``."""

from __future__ import annotations

import contextlib
import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pysam
import pytest
from fastapi.testclient import TestClient

from sandgrain.association.demo import DEMO_FOLDER, DEMO_NAME, DEMO_TABLE, DEMO_VCF, demo
from sandgrain.association.genotypes import KIND as GENOTYPES_KIND
from sandgrain.association.genotypes import GenotypeMatrix, import_vcf
from sandgrain.association.jobs import ANALYSIS
from sandgrain.association.phenotypes_table import load_traits
from sandgrain.association.tests_classical import association_test
from sandgrain.association.trait_tables import KIND as TRAITS_KIND
from sandgrain.association.trait_tables import import_trait_table, trait_table
from sandgrain.config import Settings
from sandgrain.registry import DemoContext
from sandgrain.storage import Store
from sandgrain.web.app import create_app

PROBLEM = "application/problem+json"
API = "/api/v1/association"
N_SAMPLES = 300
#: (chromosome, number of variants); the planted variant is the 40th of chromosome 2.
LAYOUT = (("1", 80), ("2", 80), ("22", 80))
PLANTED = ("2", 1_000_000 + 39 * 1000)


def synthetic_study(folder) -> tuple:
    """A bgzipped VCF and a trait table: ``label`` (0/1) follows the planted variant's dosage,
    ``score`` is quantitative, ``age`` a covariate, ``age2`` = 2 × age (collinear), ``group``
    text."""
    rng = np.random.default_rng(17)
    samples = [f"S{i:03d}" for i in range(N_SAMPLES)]
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={c},length=50000000,assembly=b37>" for c, _ in LAYOUT]
    lines += ['##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">']
    lines += ["\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                         *samples])]  # fmt: skip
    planted = None
    for chrom, count in LAYOUT:
        for k in range(count):
            pos = 1_000_000 + k * 1000
            af = rng.uniform(0.1, 0.5)
            dose = rng.binomial(2, af, N_SAMPLES)
            if (chrom, pos) == PLANTED:
                planted = dose
            calls = ["0|0" if d == 0 else "0|1" if d == 1 else "1|1" for d in dose]
            if k % 17 == 3:
                calls[k % N_SAMPLES] = "./."
            lines.append("\t".join([chrom, str(pos), f"rs{chrom}{k:04d}", "A", "G", ".", "PASS",
                                    ".", "GT", *calls]))  # fmt: skip
    plain = folder / "study.vcf"
    plain.write_text("\n".join(lines) + "\n")
    vcf = folder / DEMO_VCF
    pysam.tabix_compress(str(plain), str(vcf), force=True)
    age = np.round(rng.uniform(20, 70, N_SAMPLES), 3)
    eta = -2.2 + 1.8 * planted + 0.01 * (age - 45)
    label = (rng.uniform(size=N_SAMPLES) < 1 / (1 + np.exp(-eta))).astype(int)
    score = planted * 1.5 + rng.normal(size=N_SAMPLES)
    rows = ["samples,label,score,age,age2,group"]
    for i, s in enumerate(samples):
        rows.append(f"{s},{label[i]},{score[i]:.4f},{age[i]:.3f},{2 * age[i]:.3f},g{i % 3}")
    table = folder / DEMO_TABLE
    table.write_text("\n".join(rows) + "\n")
    return vcf, table


def association_store(path) -> Store:
    """A store with the synthetic study as genotypes ``study`` and trait table ``study``."""
    path.mkdir(parents=True, exist_ok=True)
    vcf, table = synthetic_study(path)
    store = Store(str(path / "store"))
    import_vcf(store, vcf, "study")
    import_trait_table(store, "study", table.read_bytes(), source=str(table))
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return association_store(tmp_path_factory.mktemp("association-api"))


@pytest.fixture(scope="module")
def client(store, tmp_path_factory):
    home = tmp_path_factory.mktemp("association-api-home")
    app = create_app(Settings(home=str(home), store_url=store.url, executor="serial"))
    with TestClient(app) as c:
        yield c


def _wait(client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"{API}/analyses/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def _run(client, body: dict) -> dict:
    r = client.post(f"{API}/analyses", json=body)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"{API}/analyses/{r.json()['id']}"
    return _wait(client, r.json()["id"])


BODY = {"genotypes": "study", "traits": "study", "trait": "label", "test": "logistic",
        "covariates": ["age"], "assembly": "hg19"}  # fmt: skip


@pytest.fixture(scope="module")
def logistic_job(client):
    job = _run(client, BODY)
    assert job["status"] == "done", job
    return job


def test_lists_name_the_genotypes_and_the_trait_tables(client):
    (g,) = client.get(f"{API}/genotypes").json()
    assert (g["name"], g["variants"], g["samples"]) == ("study", 240, N_SAMPLES)
    assert g["chromosomes"] == ["1", "2", "22"]
    (t,) = [t for t in client.get(f"{API}/traits").json() if t["name"] == "study"]
    kinds = {c["name"]: c["kind"] for c in t["columns"]}
    assert kinds == {"label": "binary", "score": "quantitative", "age": "quantitative",
                     "age2": "quantitative", "group": "text"}  # fmt: skip
    assert t["samples"] == N_SAMPLES and t["id_column"] == "samples"


def test_a_logistic_analysis_equals_the_test_called_directly(client, store, logistic_job):
    matrix = GenotypeMatrix.open(store, "study")
    with trait_table(store, "study") as (path, _):
        traits = load_traits(path, "label", ["age"], matrix.samples)
    direct = association_test(matrix, traits, "logistic")
    p = direct.table["p"].to_numpy(zero_copy_only=False)
    a = logistic_job["analysis"]
    assert a["assembly"] == "GRCh37"
    assert a["parameters"]["statistic"] == "wald"
    assert a["summary"]["lambda_gc"] == pytest.approx(direct.lambda_gc, rel=1e-12)
    assert a["summary"]["samples"] == N_SAMPLES and a["summary"]["variants"] == 240
    prov = a["provenance"]
    assert prov["command"] == "association test (web)"
    assert {i["source"] for i in prov["inputs"]} == {"genotypes/study", "traits/study"}

    page = client.get(a["hits_url"], params={"limit": 240}).json()
    assert page["total"] == 240 and len(page["hits"]) == 240
    order = np.argsort(np.where(np.isfinite(p), p, np.inf), kind="stable")
    got = [(h["chrom"], h["pos"]) for h in page["hits"]]
    chrom = direct.table["chrom"].to_pylist()
    pos = direct.table["pos"].to_pylist()
    assert got == [(chrom[i], pos[i]) for i in order]
    assert [h["rank"] for h in page["hits"]] == list(range(1, 241))
    top = page["hits"][0]
    assert (top["chrom"], top["pos"]) == PLANTED and top["p"] < 1e-8
    assert top["p"] == pytest.approx(float(p[order[0]]), rel=1e-12)
    # links: the Beacon's variant query (0-based start) and UCSC on hg19
    beacon = urlparse(top["links"]["beacon"])
    assert beacon.path == "/api/beacon/g_variants"
    assert parse_qs(beacon.query) == {
        "referenceName": ["2"], "start": [str(PLANTED[1] - 1)], "referenceBases": ["A"],
        "alternateBases": ["G"], "assemblyId": ["GRCh37"],
    }  # fmt: skip
    assert client.get(top["links"]["beacon"]).status_code == 200
    ucsc = urlparse(top["links"]["ucsc"])
    assert ucsc.netloc == "genome.ucsc.edu" and ucsc.path == "/cgi-bin/hgTracks"
    assert parse_qs(ucsc.query) == {"db": ["hg19"], "position": [f"chr2:{PLANTED[1]}-{PLANTED[1]}"]}
    second = client.get(a["hits_url"], params={"offset": 20, "limit": 5}).json()["hits"]
    assert [h["rank"] for h in second] == [21, 22, 23, 24, 25]


def test_plots_table_and_generic_result(client, logistic_job):
    a = logistic_job["analysis"]
    assert set(a["plots"]) == {"manhattan.png", "manhattan.svg", "qq.png", "qq.svg"}
    png = client.get(a["plots"]["manhattan.png"])
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    svg = client.get(a["plots"]["qq.svg"])
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    assert "default-src 'none'" in svg.headers["content-security-policy"]
    tsv = client.get(a["table_url"])
    assert tsv.status_code == 200 and "attachment" in tsv.headers["content-disposition"]
    rows = tsv.text.splitlines()
    assert rows[0].split("\t")[:5] == ["chrom", "pos", "id", "ref", "alt"] and len(rows) == 241
    doc = client.get(f"/api/v1/jobs/{logistic_job['id']}/result").json()
    assert doc["kind"] == ANALYSIS and len(doc["top"]) == 20
    assert doc["top"][0]["pos"] == PLANTED[1]


def test_the_forest_finds_the_planted_variant(client):
    body = {"genotypes": "study", "traits": "study", "trait": "label", "method": "forest",
            "trees": 60, "seed": 3, "covariates": ["age"]}  # fmt: skip
    job = _run(client, body)
    assert job["status"] == "done", job
    a = job["analysis"]
    assert a["summary"]["mode"] == "classification" and 0 <= a["summary"]["oob_error"] < 0.5
    assert [c["name"] for c in a["covariates"]] == ["age"]
    assert a["assembly"] == "GRCh37"  # not told: the dataset's VCF header says b37
    hits = client.get(a["hits_url"], params={"limit": 3}).json()["hits"]
    assert (hits[0]["chrom"], hits[0]["pos"]) == PLANTED
    assert "db=hg19" in hits[0]["links"]["ucsc"] and hits[0]["links"]["beacon"]
    assert {"air", "importance", "split_count", "p_value", "q_value"} <= set(hits[0])
    assert client.get(a["plots"]["manhattan.png"]).status_code == 200


def test_a_job_that_fails_says_why(client):
    job = _run(client, {**BODY, "covariates": ["age", "age2"]})
    assert job["status"] == "failed" and "collinear" in job["error"]
    r = client.get(f"{API}/analyses/{job['id']}/hits")
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert "collinear" in r.json()["detail"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({**BODY, "genotypes": "nope"}, 404, "no genotypes named 'nope'"),
        ({**BODY, "traits": "nope"}, 404, "no trait table named 'nope'"),
        ({**BODY, "trait": "height"}, 400, "no column 'height'"),
        ({**BODY, "trait": "group"}, 400, "not numeric"),
        ({**BODY, "trait": "score"}, 400, "needs a 0/1 trait"),
        ({**BODY, "test": "fisher"}, 400, "takes no covariates"),
        ({**BODY, "test": "anova"}, 400, '"test" is one of'),
        ({**BODY, "covariates": ["label"]}, 400, "cannot be a covariate"),
        ({**BODY, "genotypes": "../etc"}, 400, "invalid genotypes name"),
        ({**BODY, "assembly": "<script>"}, 400, "assembly"),
        ({**BODY, "colour": "red"}, 400, "unknown field(s): colour"),
        ({**BODY, "method": "forest", "trees": 0}, 400, '"trees"'),
        ({"genotypes": "study"}, 400, '"traits" is required'),
    ],
)
def test_bad_requests_are_refused_before_a_job_is_queued(client, body, status, fragment):
    jobs = client.app.state.jobs
    before = len(jobs.list(kind=ANALYSIS, limit=None))
    r = client.post(f"{API}/analyses", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM and fragment in r.json()["detail"]
    assert len(jobs.list(kind=ANALYSIS, limit=None)) == before


def test_malformed_bodies_jobs_and_plots(client, monkeypatch, logistic_job):
    r = client.post(
        f"{API}/analyses", content=b"[1, 2]", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    r = client.post(f"{API}/analyses", content=b"{nope")
    assert r.status_code == 400
    monkeypatch.setattr("sandgrain.web.association.MAX_ANALYSIS_BODY", 100)
    r = client.post(f"{API}/analyses", json={**BODY, "covariates": ["x" * 200]})
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    assert client.get(f"{API}/analyses/{'0' * 32}").status_code == 404
    assert client.get(f"{API}/analyses/{logistic_job['id']}/plots/other.png").status_code == 422
    # a job of another kind is not an analysis; a queued analysis has no hits yet
    other = client.app.state.jobs.submit("genome.composition", {"genome": "none"})
    r = client.get(f"{API}/analyses/{other.id}")
    assert r.status_code == 404 and "not an association analysis" in r.json()["detail"]
    queued = client.app.state.jobs.submit(ANALYSIS, {})
    r = client.get(f"{API}/analyses/{queued.id}/hits")
    assert r.status_code == 409 and "queued" in r.json()["detail"]


def test_trait_tables_are_stored_checked_and_not_overwritten(client, monkeypatch):
    text = "sample\tbmi\tsmoker\nS000\t21.5\t0\nS001\tNA\t1\n"
    r = client.post(f"{API}/traits", json={"name": "bmi", "text": text})
    assert r.status_code == 201, r.text
    assert r.json()["columns"] == [{"name": "bmi", "kind": "quantitative"},
                                   {"name": "smoker", "kind": "binary"}]  # fmt: skip
    r = client.post(f"{API}/traits", json={"name": "bmi", "text": text})
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert (
        client.post(
            f"{API}/traits", json={"name": "bmi", "text": text, "replace": True}
        ).status_code
        == 201
    )
    for body, fragment in [
        ({"name": "t1", "text": "sample,group\nS1,a\n"}, "no numeric column"),
        ({"name": "t2", "text": "sample,x\n"}, "no sample"),
        ({"name": "t3", "text": "sample,x\nS1,1\nS1,2\n"}, "appears twice"),
        ({"name": "../t", "text": "sample,x\nS1,1\n"}, "invalid trait table name"),
        ({"name": "t4"}, '"name" and "text"'),
    ]:
        r = client.post(f"{API}/traits", json=body)
        assert r.status_code == 400 and fragment in r.json()["detail"], (body, r.text)
    monkeypatch.setattr("sandgrain.web.association.MAX_TABLE_BODY", 1000)
    r = client.post(f"{API}/traits", json={"name": "big", "text": "x" * 2000})
    assert r.status_code == 413
    assert not client.app.state.store.has_dataset(TRAITS_KIND, "big")


def test_the_page_offers_the_datasets(client):
    r = client.get("/association")
    assert r.status_code == 200 and 'id="as-form"' in r.text
    assert '"name":"study"' in r.text and '"example":null' in r.text


def test_the_demo_imports_its_data_once(tmp_path):
    folder = tmp_path / "data" / DEMO_FOLDER
    folder.mkdir(parents=True)
    synthetic_study(folder)
    store = Store(str(tmp_path / "store"))
    lines: list[str] = []

    @contextlib.contextmanager
    def progress(_label):
        yield lambda done, total: None

    settings = Settings(home=str(tmp_path), executor="serial")
    ctx = DemoContext(
        store=store, data=tmp_path / "data", settings=settings, progress=progress,
        byte_progress=progress, echo=lines.append,
    )  # fmt: skip
    demo(ctx)
    assert store.has_dataset(GENOTYPES_KIND, DEMO_NAME) and store.has_dataset(
        TRAITS_KIND, DEMO_NAME
    )
    version = store.open_dataset(GENOTYPES_KIND, DEMO_NAME).manifest["version"]
    demo(ctx)
    assert store.open_dataset(GENOTYPES_KIND, DEMO_NAME).manifest["version"] == version
    assert lines[-1] == f"demo genotypes {DEMO_NAME} are up to date"
