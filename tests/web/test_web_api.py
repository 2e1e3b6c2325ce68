"""The REST API for guide design, on the real yeast genome: the whole flow of a design job
(submit, poll, result in JSON/TSV/BED, off-target pages) checked against ``design_guides``
called directly; genes, nucleases, scoring; cancelling and running jobs side by side; problem
details for every kind of bad request; and schemathesis against the app's own OpenAPI schema."""

from __future__ import annotations

import csv
import io
import re
import time

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from sandgrain.config import Settings
from sandgrain.errors import SandgrainError
from sandgrain.guides import design_guides, score_guides
from sandgrain.guides.formats import to_bed, to_tsv
from sandgrain.guides.nucleases import NUCLEASES, get_nuclease
from sandgrain.guides.siteindex import SiteFamily, build_index, open_index
from sandgrain.web.app import create_app
from sandgrain.web.guide_table import guide_flags
from sandgrain.web.guides import LARGE_DESIGN_GUIDES, SCORE_BINS
from sandgrain.web.models import (
    GuideDocument,
    GuideOverview,
    GuidePage,
    GuideTrack,
    JobInfo,
    OffTargetPage,
)

PROBLEM = "application/problem+json"
FAMILY = SiteFamily.of(get_nuclease("SpCas9"))
TERMINAL = ("done", "failed", "cancelled")


@pytest.fixture(scope="module")
def indexed(yeast):
    """Yeast with its SpCas9 site index (built here unless another module built it)."""
    try:
        open_index(yeast, FAMILY)
    except SandgrainError:
        build_index(yeast, FAMILY, executor="serial")
    return yeast


def app_settings(home, demo_store) -> Settings:
    return Settings(home=str(home), store_url=demo_store.url, executor="serial")


@pytest.fixture(scope="module")
def client(tmp_path_factory, demo_store, indexed):
    app = create_app(app_settings(tmp_path_factory.mktemp("api-home"), demo_store))
    with TestClient(app) as c:
        yield c


def wait_done(client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def wait_running(client, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] != "queued":
            return job
        time.sleep(0.005)
    raise AssertionError(f"job {job_id} did not start in {timeout} s")


def submit(client, **body) -> str:
    r = client.post("/api/v1/guides/jobs", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert r.headers["location"] == f"/api/v1/jobs/{job_id}"
    return job_id


def without_time(doc: dict) -> dict:
    """The document without the provenance record's time stamp."""
    return {**doc, "provenance": {k: v for k, v in doc["provenance"].items() if k != "time"}}


def assert_problem(r, status: int, *fragments: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


# --------------------------------------------------------------------------------------------
# the whole flow
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ade2_job(client) -> dict:
    job_id = submit(client, genome="yeast", gene="ADE2")
    job = wait_done(client, job_id)
    assert job["status"] == "done", job
    return job


@pytest.fixture(scope="module")
def ade2_direct(indexed) -> dict:
    """The design called directly, every off-target listed."""
    return design_guides(indexed, gene="ADE2", executor="serial")


def test_design_job_is_done_with_a_result_url(ade2_job):
    job = ade2_job
    assert job["kind"] == "guides.design" and job["progress"] == 1.0 and job["error"] is None
    assert job["result_url"] == f"/api/v1/jobs/{job['id']}/result"
    assert job["params"] == {
        "genome": "yeast",
        "gene": "ADE2",
        "nuclease": "SpCas9",
        "max_mismatches": 4,
        "within": "exons",
    }
    assert job["created"] <= job["started"] <= job["finished"]


def test_result_json_equals_design_guides(client, ade2_job, indexed):
    url = ade2_job["result_url"]
    got = client.get(url).json()  # default: 20 off-targets listed per guide
    direct = design_guides(indexed, gene="ADE2", executor="serial", max_offtargets_listed=20)
    assert without_time(got) == without_time(direct)
    # a cut that bites: the first two, as design_guides lists them, totals kept
    got = client.get(url, params={"offtargets_limit": 2}).json()
    direct = design_guides(indexed, gene="ADE2", executor="serial", max_offtargets_listed=2)
    assert without_time(got) == without_time(direct)
    cut = [g for g in got["guides"] if g["offtargets_total"] > 2]
    assert cut and all(len(g["offtargets"]) == 2 and g["offtargets_listed_truncated"] for g in cut)
    assert len(got["guides"]) > 50 and got["target"]["name"] == "ADE2"


def test_result_tsv_and_bed_downloads(client, ade2_job, ade2_direct):
    url = ade2_job["result_url"]
    r = client.get(url, params={"format": "tsv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/tab-separated-values")
    assert r.headers["content-disposition"] == 'attachment; filename="yeast_ADE2_SpCas9.tsv"'
    rows = list(csv.DictReader(io.StringIO(r.text), delimiter="\t"))
    assert [row["sequence"] for row in rows] == [g["sequence"] for g in ade2_direct["guides"]]
    assert [int(row["rank"]) for row in rows] == list(range(1, len(rows) + 1))
    assert r.text == to_tsv(ade2_direct)

    r = client.get(url, params={"format": "bed"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-disposition"] == 'attachment; filename="yeast_ADE2_SpCas9.bed"'
    ucsc = {"XV": "chrXV"}  # the demo yeast is R64 (sacCer3): UCSC and IGV say chrXV
    assert r.text == to_bed(ade2_direct, ucsc)
    lines = r.text.splitlines()
    assert lines[0].startswith("browser position chrXV:") and lines[1].startswith("track ")
    assert len(lines) == 2 + len(ade2_direct["guides"])
    assert {line.split("\t")[0] for line in lines[2:]} == {"chrXV"}
    r = client.get(url, params={"format": "bed", "chrom_names": "stored"})
    assert r.status_code == 200 and r.text == to_bed(ade2_direct)
    assert_problem(client.get(url, params={"format": "bed", "chrom_names": "x"}), 422, "chrom")

    assert_problem(client.get(url, params={"format": "xml"}), 422, "format")


def test_responses_match_their_documented_models(client, ade2_job, indexed):
    """The routes that send stored documents as they are (no response validation) still send
    what the OpenAPI schema says."""
    doc = client.get(ade2_job["result_url"], params={"offtargets_limit": 1000}).json()
    GuideDocument.model_validate(doc)
    JobInfo.model_validate(ade2_job)
    page = client.get(f"/api/v1/jobs/{ade2_job['id']}/guides/1/offtargets").json()
    OffTargetPage.model_validate(page)
    guides = [g["sequence"] for g in doc["guides"][:3]]
    scored = client.post("/api/v1/guides/score", json={"genome": "yeast", "guides": guides})
    GuideDocument.model_validate(scored.json())
    assert any(g["offtargets"] for g in doc["guides"])


def test_offtarget_pages(client, ade2_job, ade2_direct):
    guide = max(ade2_direct["guides"], key=lambda g: g["offtargets_total"])
    assert guide["offtargets_total"] >= 3
    url = f"/api/v1/jobs/{ade2_job['id']}/guides/{guide['rank']}/offtargets"
    pages, offset = [], 0
    while True:
        page = client.get(url, params={"offset": offset, "limit": 2}).json()
        assert page["rank"] == guide["rank"] and page["sequence"] == guide["sequence"]
        assert page["total"] == guide["offtargets_total"] and page["limit"] == 2
        if not page["offtargets"]:
            break
        pages.append(page["offtargets"])
        offset += 2
    assert [len(p) for p in pages[:-1]] == [2] * (len(pages) - 1)
    assert [o for p in pages for o in p] == guide["offtargets"]
    whole = client.get(url).json()
    assert whole["offset"] == 0 and whole["limit"] == 100
    assert whole["offtargets"] == guide["offtargets"]

    n = len(ade2_direct["guides"])
    bad = f"/api/v1/jobs/{ade2_job['id']}/guides/{n + 1}/offtargets"
    assert_problem(client.get(bad), 404, f"no guide of rank {n + 1}")
    assert_problem(client.get(url, params={"limit": 0}), 422, "limit")
    assert_problem(client.get(url, params={"offset": -1}), 422, "offset")


def test_sequence_target_and_long_sequences_shortened_in_job_view(client, indexed):
    seq = indexed.sequence("XV", 564475, 566191)  # ADE2, forward strand
    job_id = submit(client, genome="sacCer3", sequence=seq, max_mismatches=2)
    job = wait_done(client, job_id)
    assert job["status"] == "done", job
    assert job["params"]["genome"] == "yeast" and job["params"]["sequence_length"] == len(seq)
    assert job["params"]["sequence"] == seq[:1000] + "…"
    doc = client.get(job["result_url"]).json()
    assert doc["target"]["type"] == "sequence" and doc["target"]["length"] == len(seq)
    assert doc["max_mismatches"] == 2 and doc["guides"]
    r = client.get(job["result_url"], params={"format": "tsv"})
    assert "yeast_sequence_SpCas9.tsv" in r.headers["content-disposition"]


def test_sequence_as_fasta_text_and_rna(client, indexed):
    """A pasted FASTA record of RNA designs the same guides as its DNA, named by its header."""
    dna = indexed.sequence("XV", 564475, 566191)  # ADE2, forward strand
    rna = dna.replace("T", "U")
    fasta = f">ade2 exon of YOR128C\n{rna[:900]}\n{rna[900:]}\n"
    count = client.post("/api/v1/guides/count", json={"genome": "yeast", "sequence": fasta})
    assert count.status_code == 200, count.text
    assert count.json()["target"] == {"type": "sequence", "name": "ade2", "length": len(dna)}
    job = wait_done(client, submit(client, genome="yeast", sequence=fasta, max_mismatches=0))
    assert job["status"] == "done", job
    doc = client.get(job["result_url"], params={"offtargets_limit": 0}).json()
    assert doc["target"]["name"] == "ade2" and doc["target"]["regions"][0]["chrom"] == "ade2"
    assert len(doc["guides"]) == count.json()["guides"]
    direct = design_guides(indexed, sequence=dna, max_mismatches=0, executor="serial")
    site = lambda g: (g["sequence"], g["start"], g["strand"], g["rank"])  # noqa: E731
    assert [site(g) for g in doc["guides"]] == [site(g) for g in direct["guides"]]
    assert {g["chrom"] for g in doc["guides"]} == {"ade2"}


# --------------------------------------------------------------------------------------------
# a finished design, piece by piece: how many guides, overview, pages, drawing, downloads
# --------------------------------------------------------------------------------------------


def test_count_tells_how_many_guides_a_design_will_have(client, ade2_direct):
    r = client.post("/api/v1/guides/count", json={"genome": "yeast", "gene": "ADE2"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "genome": "yeast",
        "target": {"type": "gene", "name": "ADE2", "length": 1716},
        "nuclease": "SpCas9",
        "guides": len(ade2_direct["guides"]),
        "large": False,
        "large_above": LARGE_DESIGN_GUIDES,
    }
    # the 1 Mb region of issue 12: counted in a moment, and large
    big = client.post("/api/v1/guides/count", json={"genome": "yeast", "region": "IV:1-1000000"})
    assert big.json()["guides"] == 76_541 and big.json()["large"]


def rows_of(guides: list[dict]) -> list[dict]:
    """Guide records as the pages list them: without their off-target list."""
    return [{k: v for k, v in g.items() if k != "offtargets"} for g in guides]


def test_guide_pages_sort_and_filter_every_guide_on_the_server(client, ade2_job, ade2_direct):
    url = f"/api/v1/jobs/{ade2_job['id']}/guides"
    direct = ade2_direct["guides"]
    n = len(direct)
    got, offset = [], 0
    while True:
        page = client.get(url, params={"offset": offset, "limit": 40}).json()
        GuidePage.model_validate(page)
        assert (page["total"], page["matched"], page["offset"], page["limit"]) == (n, n, offset, 40)
        if not page["guides"]:
            break
        assert len(page["guides"]) == min(40, n - offset)
        got += page["guides"]
        offset += 40
    assert got == rows_of(direct)  # rank order, every guide once

    def ranks(**params) -> list[int]:
        page = client.get(url, params={"limit": 1000, **params})
        assert page.status_code == 200, page.text
        return [g["rank"] for g in page.json()["guides"]]

    by_gc = sorted(direct, key=lambda g: (-g["gc"], g["rank"]))
    assert ranks(sort="gc", order="descending") == [g["rank"] for g in by_gc]
    by_start = sorted(direct, key=lambda g: (g["start"], g["rank"]))
    assert ranks(sort="position") == [g["rank"] for g in by_start]
    by_cfd = sorted(direct, key=lambda g: (g["cfd_specificity"], g["rank"]))
    assert ranks(sort="cfd_specificity") == [g["rank"] for g in by_cfd]
    assert ranks(order="descending") == list(range(n, 0, -1))

    # every filter at once, as a plain filter of the direct design
    keep = [
        g["rank"]
        for g in direct
        if not any(g["offtarget_counts"][:4]) and "tttt" not in guide_flags(g) and g["tier"] <= 2
    ]
    assert 0 < len(keep) < n
    assert ranks(hide_mismatches=3, exclude_flags="tttt", max_tier=2) == keep
    page = client.get(url, params={"hide_mismatches": 3, "exclude_flags": "tttt", "max_tier": 2})
    assert page.json()["matched"] == len(keep) and page.json()["total"] == n
    words = direct[5]["sequence"][3:12].lower()
    assert ranks(q=words) == [g["rank"] for g in direct if words.upper() in g["sequence"]]
    near = "xv:565,0"  # positions as the page shows them, with thousands separators
    want = [g["rank"] for g in direct if f"XV:{g['start']:,}-{g['end']:,}".lower().startswith(near)]
    assert want and ranks(q=near) == want
    past = client.get(url, params={"offset": n + 5}).json()
    assert past["guides"] == [] and past["matched"] == n

    assert_problem(client.get(url, params={"sort": "bogus"}), 422, "sort")
    assert_problem(client.get(url, params={"limit": 0}), 422, "limit")
    assert_problem(client.get(url, params={"limit": 1001}), 422, "limit")
    assert_problem(client.get(url, params={"exclude_flags": "a b"}), 422, "exclude_flags")


def test_track_draws_each_guide_or_their_density(client, ade2_job, ade2_direct):
    url = f"/api/v1/jobs/{ade2_job['id']}/guides/track"
    direct = ade2_direct["guides"]
    span = {"chrom": "XV", "start": 564_000, "end": 566_999}
    few = client.get(url, params={**span, "bins": 1000}).json()
    GuideTrack.model_validate(few)
    assert few["bins"] is None and few["matched"] == len(direct)
    assert sorted(few["marks"], key=lambda g: g["rank"]) == rows_of(direct)

    # more guides than bins (pixels): their density, each guide in the bin of its middle
    dense = client.get(url, params={**span, "bins": 100}).json()
    GuideTrack.model_validate(dense)
    assert dense["marks"] is None and dense["bins"]["width"] == 30.0
    want = {"+": [[0] * 4 for _ in range(100)], "-": [[0] * 4 for _ in range(100)]}
    for g in direct:
        i = int(((g["start"] + g["end"]) / 2 - span["start"]) // 30)
        want[g["strand"]][i][g["tier"] - 1] += 1
    assert dense["bins"]["plus"] == want["+"] and dense["bins"]["minus"] == want["-"]

    # the drawing follows the table's filters
    kept = client.get(url, params={**span, "bins": 1000, "hide_mismatches": 2}).json()
    assert {g["rank"] for g in kept["marks"]} == {
        g["rank"] for g in direct if not any(g["offtarget_counts"][:3])
    }
    elsewhere = client.get(url, params={"chrom": "IV", "start": 1, "end": 10}).json()
    assert elsewhere["matched"] == 0 and elsewhere["marks"] == []
    assert_problem(client.get(url, params={**span, "end": 1}), 400, "end before start")


def test_overview_and_complete_streamed_download(client, ade2_job, ade2_direct):
    job_id = ade2_job["id"]
    ov = client.get(f"/api/v1/jobs/{job_id}/guides/overview").json()
    GuideOverview.model_validate(ov)
    direct = ade2_direct["guides"]
    assert ov["guide_count"] == len(direct) and ov["target"] == ade2_direct["target"]
    assert ov["ranking"] == ade2_direct["ranking"] and ov["ranking"]["rule"]
    starts, ends = [g["start"] for g in direct], [g["end"] for g in direct]
    assert ov["extent"] == [
        {"chrom": "XV", "start": min(starts), "end": max(ends), "guides": len(direct)}
    ]
    for flag, count in ov["flag_counts"].items():
        assert count == sum(flag in guide_flags(g) for g in direct), flag
    model = ade2_direct["ranking"]["efficiency_model"]
    assert ov["legend"]["efficiency"] == SCORE_BINS[model]
    assert ov["legend"]["cfd_specificity"] == SCORE_BINS["cfd_specificity"]
    assert [b["min"] for b in ov["legend"]["cfd_specificity"]][-1] is None

    names = {fmt: d["filename"] for fmt, d in ov["downloads"].items()}
    assert names == {f: f"yeast_ADE2_SpCas9.{f}" for f in ("tsv", "bed", "json")}
    # the JSON behind the page's link: every off-target of every guide (none cut at 20),
    # streamed (no Content-Length: sent as it is read)
    r = client.get(ov["downloads"]["json"]["url"])
    assert r.status_code == 200 and "content-length" not in r.headers
    assert r.headers["content-disposition"] == 'attachment; filename="yeast_ADE2_SpCas9.json"'
    assert without_time(r.json()) == without_time(ade2_direct)
    assert all(len(g["offtargets"]) == g["offtargets_total"] for g in r.json()["guides"])
    assert any(g["offtargets_total"] > 20 for g in direct)  # the old cut would have bitten
    cut = client.get(ade2_job["result_url"])  # the API's default still lists 20 per guide
    assert "content-length" not in cut.headers
    assert max(len(g["offtargets"]) for g in cut.json()["guides"]) == 20


# --------------------------------------------------------------------------------------------
# genomes, genes, nucleases
# --------------------------------------------------------------------------------------------


def test_genomes_list_their_indexed_nucleases(client):
    genomes = {g["name"]: g for g in client.get("/api/v1/genomes").json()}
    assert set(genomes) == {"sars-cov-2", "yeast"}
    yeast = genomes["yeast"]
    assert yeast["genes"] == 7136 and yeast["aliases"] == ["sacCer3"]
    assert "SpCas9" in yeast["indexed_nucleases"] and "SaCas9" not in yeast["indexed_nucleases"]
    one = client.get("/api/v1/genomes/sacCer3").json()
    assert one["name"] == "yeast" and one["indexed_nucleases"] == yeast["indexed_nucleases"]


def test_gene_autocomplete(client):
    hits = client.get("/api/v1/genomes/yeast/genes", params={"prefix": "AD"}).json()
    symbols = [h["symbol"] for h in hits]
    assert "ADE2" in symbols and len(hits) == 20
    assert all(s.upper().startswith("AD") or h["gene_id"].upper().startswith("AD")
               for s, h in zip(symbols, hits, strict=True))  # fmt: skip
    ade2 = next(h for h in hits if h["symbol"] == "ADE2")
    assert ade2 == {
        "symbol": "ADE2",
        "gene_id": "YOR128C",
        "chrom": "XV",
        "start": 564476,
        "end": 566191,
        "strand": "-",
        "biotype": "ORF:Verified",
    }
    # shorter names first (then alphabetical): ADE2 before ADE12; an exact name comes first
    lower = client.get("/api/v1/genomes/yeast/genes", params={"prefix": "ade", "limit": 3})
    assert [h["symbol"] for h in lower.json()] == ["ADE1", "ADE2", "ADE3"]
    exact = client.get("/api/v1/genomes/yeast/genes", params={"prefix": "ADE2"}).json()
    assert exact[0]["symbol"] == "ADE2"
    by_id = client.get("/api/v1/genomes/yeast/genes", params={"prefix": "yor128"}).json()
    assert [h["symbol"] for h in by_id] == ["ADE2"]
    assert client.get("/api/v1/genomes/yeast/genes", params={"prefix": ""}).json() == []
    assert client.get("/api/v1/genomes/yeast/genes", params={"prefix": "zzzz"}).json() == []
    r = client.get("/api/v1/genomes/yeast/genes", params={"prefix": "AD", "limit": 101})
    assert_problem(r, 422, "limit")
    r = client.get("/api/v1/genomes/mouse/genes", params={"prefix": "AD"})
    assert_problem(r, 404, "unknown genome 'mouse'", "sandgrain genome add")


def test_gene_detail(client):
    gene = client.get("/api/v1/genomes/yeast/genes/ade2").json()
    assert gene["symbol"] == "ADE2" and gene["gene_id"] == "YOR128C"
    assert gene["location"] == "XV:564476-566191" and gene["strand"] == "-"
    assert gene["exons"] == [{"start": 564476, "end": 566191}] == gene["cds"]
    assert "S000005654" in gene["ids"] and "purine" in gene["description"]
    assert_problem(client.get("/api/v1/genomes/yeast/genes/ADE99"), 404, "unknown gene 'ADE99'")
    body = assert_problem(client.get("/api/v1/genomes/yeast/genes/BOB1"), 409, "ambiguous")
    assert len(body["candidates"]) >= 2
    assert_problem(client.get("/api/v1/genomes/sars-cov-2/genes/ADE2"), 404, "unknown gene")


def test_nucleases(client):
    got = client.get("/api/v1/nucleases").json()
    assert got == [n.to_dict() for n in NUCLEASES.values()]
    assert got[0]["name"] == "SpCas9" and got[0]["pam"] == "NGG"


# --------------------------------------------------------------------------------------------
# bad requests: problem details, and nothing queued
# --------------------------------------------------------------------------------------------

BAD_DESIGNS = [
    ({"genome": "mouse", "gene": "ADE2"}, 404, ["unknown genome 'mouse'", "sandgrain genome add"]),
    ({"genome": "bad name!", "gene": "ADE2"}, 400, ["invalid genome name"]),
    ({"genome": "yeast", "gene": "ADE99"}, 404, ["unknown gene 'ADE99'", "did you mean"]),
    ({"genome": "yeast", "gene": "BOB1"}, 409, ["ambiguous gene name 'BOB1'"]),
    ({"genome": "yeast", "gene": "ADE2", "nuclease": "Cas99"}, 404, ["unknown nuclease 'Cas99'"]),
    (
        {"genome": "yeast", "gene": "ADE2", "nuclease": "SaCas9"},
        409,
        ["no site index", "sandgrain genome index yeast --nuclease SaCas9"],
    ),
    ({"genome": "yeast"}, 422, ["exactly one target", "not none"]),
    ({"genome": "yeast", "gene": "ADE2", "region": "XV:1-100"}, 422, ["gene and region"]),
    ({"genome": "yeast", "gene": "ADE2", "bogus": 1}, 422, ["bogus", "Extra inputs"]),
    ({"gene": "ADE2"}, 422, ["body.genome", "required"]),
    ({"genome": "yeast", "gene": "ADE2", "max_mismatches": 6}, 422, ["max_mismatches"]),
    ({"genome": "yeast", "gene": "ADE2", "within": "introns"}, 422, ["within"]),
    ({"genome": "yeast", "gene": "x" * 201}, 422, ["body.gene", "200"]),
    ({"genome": "yeast", "sequence": "A" * 1_000_001}, 422, ["body.sequence", "1000000"]),
    ({"genome": "yeast", "region": "XV:5-1"}, 400, ["before start"]),
    ({"genome": "yeast", "region": "I:1-999999999"}, 400, ["out of range"]),
    ({"genome": "yeast", "region": "chrZZ:1-100"}, 404, ["ZZ"]),
    ({"genome": "yeast", "sequence": "ACGTXACGT"}, 400, ["invalid letter 'X' at position 5"]),
    ({"genome": "yeast", "sequence": "ACGUACGU"}, 400, ["8 bp, shorter than one SpCas9 site"]),
    ({"genome": "yeast", "sequence": ">a\nACGT\n>b\nAC"}, 400, ["every record is shorter"]),
    ({"genome": "yeast", "gene": "TRN1", "within": "cds"}, 400, ["no CDS", "--within exons"]),
]


@pytest.mark.parametrize(("body", "status", "fragments"), BAD_DESIGNS)
def test_bad_design_requests_are_refused_before_queuing(client, body, status, fragments):
    before = len(client.app.state.jobs.list(limit=None))
    assert_problem(client.post("/api/v1/guides/jobs", json=body), status, *fragments)
    # counting a design's guides (the page does it before submitting) checks it the same way
    assert_problem(client.post("/api/v1/guides/count", json=body), status, *fragments)
    assert len(client.app.state.jobs.list(limit=None)) == before


def test_malformed_bodies_and_unknown_routes(client):
    r = client.post(
        "/api/v1/guides/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(r, 422, "JSON")
    assert_problem(client.post("/api/v1/guides/jobs", json=["yeast"]), 422)
    assert_problem(client.get("/api/v1/nothing-here"), 404, "/docs")
    r = client.put("/api/v1/guides/score", json={})
    assert_problem(r, 405, "PUT", "POST")
    assert r.headers["allow"] == "POST"


def test_unknown_jobs(client):
    for method, path in [
        ("get", "/api/v1/jobs/nope"),
        ("delete", "/api/v1/jobs/nope"),
        ("get", "/api/v1/jobs/nope/result"),
        ("get", "/api/v1/jobs/nope/guides/1/offtargets"),
    ]:
        assert_problem(client.request(method.upper(), path), 404, "unknown job 'nope'")


# --------------------------------------------------------------------------------------------
# cancelling, and several jobs at once
# --------------------------------------------------------------------------------------------


def test_cancel_a_running_design(client):
    # 100 kbp with up to 4 mismatches: ~8,000 guides, a few seconds on the serial executor
    job_id = submit(client, genome="yeast", region="IV:1-100000")
    job = wait_running(client, job_id)
    assert job["status"] == "running", job
    assert_problem(client.get(f"/api/v1/jobs/{job_id}/result"), 409, "is running", "poll")
    r = client.delete(f"/api/v1/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["id"] == job_id and r.json()["cancel_requested"]
    job = wait_done(client, job_id)
    assert job["status"] == "cancelled" and job["result_url"] is None, job
    assert_problem(client.get(f"/api/v1/jobs/{job_id}/result"), 409, "cancelled")
    assert_problem(client.get(f"/api/v1/jobs/{job_id}/guides/1/offtargets"), 409, "cancelled")
    again = client.delete(f"/api/v1/jobs/{job_id}")  # cancelling an ended job changes nothing
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_several_jobs_at_once(client):
    targets = ["IV:1-20000", "V:1-20000", "XV:564476-566191"]
    ids = [submit(client, genome="yeast", region=t, max_mismatches=5) for t in targets]
    jobs = [wait_done(client, i) for i in ids]
    assert [j["status"] for j in jobs] == ["done"] * 3, jobs
    # they ran side by side: every one started before any one finished
    assert max(j["started"] for j in jobs) < min(j["finished"] for j in jobs)
    for target, job in zip(targets, jobs, strict=True):
        doc = client.get(job["result_url"], params={"offtargets_limit": 0}).json()
        assert doc["target"]["name"] == target and doc["max_mismatches"] == 5
        assert all(g["offtargets"] == [] for g in doc["guides"])


def test_composition_results_stay_json_only(client):
    r = client.post("/api/v1/genomes/sars-cov-2/composition", params={"max_size": 5000})
    assert r.status_code == 202
    job = wait_done(client, r.json()["id"])
    assert job["status"] == "done" and job["kind"] == "genome.composition"
    assert client.get(job["result_url"]).json()["chromosomes"][0]["length"] == 29903
    assert_problem(client.get(job["result_url"], params={"format": "tsv"}), 400, "only")
    assert_problem(client.get(f"/api/v1/jobs/{job['id']}/guides/1/offtargets"), 400, "not a guide")
    r = client.post("/api/v1/genomes/sars-cov-2/composition", params={"max_size": 10})
    assert_problem(r, 422, "max_size")


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


def test_score_guides(client, indexed, ade2_direct):
    guides = [g["sequence"] for g in ade2_direct["guides"][:5]]
    r = client.post("/api/v1/guides/score", json={"genome": "yeast", "guides": guides})
    assert r.status_code == 200, r.text
    got = r.json()
    direct = score_guides(indexed, guides, executor="serial", max_offtargets_listed=20)
    assert without_time(got) == without_time(direct)
    assert [g["sequence"] for g in got["guides"]] == guides

    fifty = [g["sequence"] for g in ade2_direct["guides"][:50]]
    r = client.post(
        "/api/v1/guides/score",
        json={"genome": "yeast", "guides": fifty, "max_mismatches": 2, "offtargets_limit": 0},
    )
    assert r.status_code == 200 and len(r.json()["guides"]) == 50
    assert all(len(g["offtarget_counts"]) == 3 for g in r.json()["guides"])

    many = [g["sequence"] for g in ade2_direct["guides"][:51]]
    r = client.post("/api/v1/guides/score", json={"genome": "yeast", "guides": many})
    assert_problem(r, 422, "51 guides given", "at most 50")
    r = client.post("/api/v1/guides/score", json={"genome": "yeast", "guides": []})
    assert_problem(r, 422, "at least one guide")
    r = client.post("/api/v1/guides/score", json={"genome": "yeast", "guides": ["ACGT"]})
    assert_problem(r, 400, "20-nt")
    body = {"genome": "yeast", "guides": guides, "nuclease": "SaCas9"}
    assert_problem(client.post("/api/v1/guides/score", json=body), 409, "genome index yeast")


# --------------------------------------------------------------------------------------------
# OpenAPI, offline docs, schemathesis
# --------------------------------------------------------------------------------------------


def test_openapi_documents_the_api(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/genomes",
        "/api/v1/genomes/{name}/genes",
        "/api/v1/genomes/{name}/genes/{symbol}",
        "/api/v1/nucleases",
        "/api/v1/guides/jobs",
        "/api/v1/guides/score",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/result",
        "/api/v1/jobs/{job_id}/guides/{rank}/offtargets",
        "/api/v1/guides/count",
        "/api/v1/jobs/{job_id}/guides",
        "/api/v1/jobs/{job_id}/guides/overview",
        "/api/v1/jobs/{job_id}/guides/track",
    ]:
        assert path in paths, path
    errors = paths["/api/v1/guides/jobs"]["post"]["responses"]
    assert set(errors) >= {"202", "400", "404", "409", "422"}
    assert list(errors["404"]["content"]) == [PROBLEM]
    design = schema["components"]["schemas"]["DesignRequest"]
    assert design["additionalProperties"] is False
    assert design["properties"]["sequence"]["anyOf"][0]["maxLength"] == 1_000_000


def test_docs_are_served_without_a_cdn(client):
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", r.text, re.I), r.text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
        assert any(a.endswith(".js") for a in assets), assets
        for asset in assets:
            assert asset.startswith("/"), asset
            assert client.get(asset).status_code == 200, asset


def _openapi() -> dict:
    """The app's OpenAPI document (an app on an in-memory store: building it writes nothing)."""
    return create_app(Settings(home="/nonexistent", store_url="memory://openapi")).openapi()


schema = schemathesis.openapi.from_dict(_openapi()).include(path_regex=r"^/(api/|health)")
# Statuses a request that matches the schema may get: besides success, 404 (no such genome,
# gene, nuclease or job) and 409 (ambiguous name, missing index, no result yet), 400 for input
# that fits the schema but not the genome -- a region past a chromosome's end, a guide of the
# wrong length -- which no schema can say.
schema.config.checks.positive_data_acceptance.expected_statuses = ["2xx", "400", "404", "409"]


@pytest.fixture(scope="module")
def schemathesis_app(tmp_path_factory, demo_store, indexed):
    from sandgrain.beacon.policy import SecurityConfig
    from sandgrain.beacon.service import BeaconService

    app = create_app(app_settings(tmp_path_factory.mktemp("schemathesis-home"), demo_store))
    # the Beacon's query budget is the subject of its own tests; fuzzing must not spend it
    app.state.beacon = BeaconService(app.state.settings, security=SecurityConfig(budget_limit=0))
    yield app
    # schemathesis started the app's lifespan; stop it (running jobs end) before the
    # temporary folders go
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis(case, schemathesis_app):
    response = case.call_and_validate(app=schemathesis_app)
    assert response.status_code < 500, response.text
