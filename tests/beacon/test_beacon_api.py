"""The Beacon v2 API over HTTP, end to end, on the shared 1000 Genomes files.

Every response is validated against the official v2.1.1 schemas (offline), every record against
its default-model schema; answers are compared with truth read independently with pysam
(tests/beacon_fixtures.py). Security runs with real signed tokens and visas from a loopback
identity provider; federation with a local store and an S3 store on the loopback moto server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from beacon_fixtures import (
    BASE,
    body,
    check,
    get_params,
    record_key,
    records,
    sets,
    write_individuals,
)
from beacon_truth import Truth, hgvs_g, read_gene_table
from conftest import DATA
from fastapi.testclient import TestClient

from sandgrain.beacon import schemas
from sandgrain.beacon.ingest import ingest
from sandgrain.beacon.policy import SecurityConfig
from sandgrain.beacon.service import BeaconService
from sandgrain.config import Settings
from sandgrain.genome.gene_tables import import_gene_table
from sandgrain.storage import Store
from sandgrain.testing.auth import LoopbackIdP, ec_key, make_token, make_visa
from sandgrain.web.app import create_app

VARIANTS = DATA / "variants"
CHR1 = VARIANTS / "1000g-chr1-10177-174799-2504samples.vcf.gz"
CHR1_ANN = VARIANTS / "1000g-chr1-10177-174799-2504samples.annotated.vcf.gz"
CHR22 = VARIANTS / "1000g-chr22-20-21M-191samples.vcf"
GENES = DATA / "genes" / "human-grch37-gene-coordinates.tsv"
GRANULARITIES = ("boolean", "count", "record")


def app_with(settings: Settings, stores: list[Store], security: SecurityConfig):
    app = create_app(settings)
    app.state.beacon = BeaconService(settings, stores=stores, security=security)
    return app


@dataclass
class World:
    """Three public datasets (chr1, its annotated twin, chr22 with individuals) in one store."""

    root: Path
    store: Store
    client: TestClient
    service: BeaconService
    truth: dict[str, Truth]
    terms: dict[str, set[str]]  # chr22 sample → ontology terms
    genes: dict

    def ask(self, method: str, path: str, params=None, status: int = 200, **kw) -> dict:
        """GET or POST the same Beacon request; the validated response."""
        if method == "GET":
            r = self.client.get(BASE + path, params=get_params(params, **kw))
        else:
            r = self.client.post(BASE + path, json=body(params, **kw))
        assert r.status_code == status, (r.status_code, r.text[:500])
        return check(r.json(), r.status_code)

    def both(self, path: str, params=None, **kw) -> dict:
        """GET and POST give the same answer; returns it."""
        got = self.ask("GET", path, params, **kw)
        posted = self.ask("POST", path, params, **kw)
        assert got["responseSummary"] == posted["responseSummary"]
        assert got.get("response") == posted.get("response")
        assert got["meta"]["returnedGranularity"] == posted["meta"]["returnedGranularity"]
        return posted


C1, C1A, C22 = "g1k-chr1", "g1k-chr1-ann", "g1k-chr22"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("beacon-api")
    store = Store(str(root / "store"))
    import_gene_table(store, "GRCh37", GENES, GENES.read_bytes())
    truth = {
        C1: Truth.read(CHR1, root),
        C1A: Truth.read(CHR1_ANN, root),
        C22: Truth.read(CHR22, root),
    }
    terms = write_individuals(truth[C22].samples, root / "people.tsv")
    for ds, vcf in ((C1, CHR1), (C1A, CHR1_ANN), (C22, CHR22)):
        people = root / "people.tsv" if ds == C22 else None
        ingest(store, ds, vcf, assembly="GRCh37", individuals=people, executor="serial")
    settings = Settings(home=str(root / "home"), store_url=store.url, executor="serial")
    security = SecurityConfig(
        max_granularity={"public": "record"}, budget_limit=0, audit_db=str(root / "audit.db")
    )
    app = app_with(settings, [store], security)
    client = TestClient(app)
    return World(
        root, store, client, app.state.beacon, truth, terms, read_gene_table(GENES)
    )  # fmt: skip


def observed(variants, mask=None) -> list:
    """The variants some (counted) individual carries: what a Beacon may say exists."""
    return [v for v in variants if v.counts(mask)[0] > 0]


def key(v) -> tuple:
    """A truth variant as :func:`record_key` reads a record: (start0, ref, alt)."""
    return v.key[1:]


def by_hgvs(t: Truth, text: str) -> list:
    """The variants whose HGVS g. form (at the VCF position) is ``text``."""
    return [v for v in t.variants if hgvs_g(v, text.split(":")[0]) == text]


# =================================================================================================
# 1. every endpoint × granularity × method validates
# =================================================================================================
VID22 = "22-20000864-G-A"  # a singleton of the chr22 file (one heterozygous carrier)
QUERY_ENDPOINTS = {
    "/g_variants": {"referenceName": "22", "start": [20000000], "end": [20002000]},
    f"/g_variants/{VID22}": None,
    f"/g_variants/{VID22}/individuals": None,
    "/individuals": None,
    "/individuals/HG00096": None,
    "/individuals/HG00096/g_variants": None,
    "/datasets": None,
    f"/datasets/{C22}": None,
    f"/datasets/{C22}/g_variants": {"referenceName": "22", "start": [20000000], "end": [20002000]},
    f"/datasets/{C22}/individuals": None,
    "/cohorts": None,
    f"/cohorts/{C22}": None,
    f"/cohorts/{C22}/individuals": None,
    "/filtering_terms": None,
}
INFO_ENDPOINTS = {
    "": "beaconInfoResponse",
    "/": "beaconInfoResponse",
    "/info": "beaconInfoResponse",
    "/service-info": "ga4gh-service-info",
    "/configuration": "beaconConfigurationResponse",
    "/map": "beaconMapResponse",
    "/entry_types": "beaconEntryTypesResponse",
    "/filtering_terms": "beaconFilteringTermsResponse",
}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", list(QUERY_ENDPOINTS))
def test_every_query_endpoint_validates_at_every_granularity(world, path, method):
    for granularity in GRANULARITIES:
        if path == "/filtering_terms":
            r = (
                world.client.get(BASE + path, params={"requestedGranularity": granularity})
                if method == "GET"
                else world.client.post(BASE + path, json=body(granularity=granularity))
            )
            assert r.status_code == 200
            schemas.validate("beaconFilteringTermsResponse", r.json())
            continue
        doc = world.ask(method, path, QUERY_ENDPOINTS[path], granularity=granularity, limit=3)
        meta = doc["meta"]
        assert meta["receivedRequestSummary"]["requestedGranularity"] == granularity
        if path.startswith(("/datasets", "/cohorts")) and not path.endswith(
            ("g_variants", "individuals")
        ):
            assert doc["response"]["collections"], path
            continue
        assert meta["returnedGranularity"] == granularity
        assert doc["responseSummary"]["exists"] is True, path
        if granularity == "record":
            assert records(doc), path


@pytest.mark.parametrize("path", list(INFO_ENDPOINTS))
def test_informational_endpoints_validate(world, path):
    r = world.client.get(BASE + path)
    assert r.status_code == 200, r.text
    schemas.validate(INFO_ENDPOINTS[path], r.json())


def test_map_and_configuration_name_every_served_entry_type(world):
    conf = world.client.get(BASE + "/configuration").json()["response"]
    assert {"genomicVariant", "individual", "dataset", "cohort"} <= set(conf["entryTypes"])
    endpoints = world.client.get(BASE + "/map").json()["response"]["endpointSets"]
    assert {"genomicVariant", "individual", "dataset", "cohort"} <= set(endpoints)


def test_include_resultset_responses(world):
    q = {"referenceName": "22", "start": [20000000], "end": [20002000]}
    answers = {}
    for include in ("HIT", "MISS", "ALL", "NONE"):
        answers[include] = world.both("/g_variants", q, granularity="record", include=include)
    n22 = len(observed(world.truth[C22].range("22", 20000000, 20002000)))
    summary = answers["ALL"]["responseSummary"]
    assert summary["exists"] is True
    for doc in answers.values():  # the summary covers all datasets whatever is included
        assert doc["responseSummary"] == summary
    assert set(sets(answers["ALL"])) == {C1, C1A, C22}
    assert set(sets(answers["HIT"])) == {C22}
    assert set(sets(answers["MISS"])) == {C1, C1A}
    assert answers["NONE"]["response"]["resultSets"] == []
    missed = answers["MISS"]["response"]["resultSets"]
    assert all(not s["exists"] and s["resultsCount"] == 0 for s in missed)
    assert sets(answers["HIT"])[C22]["resultsCount"] >= n22 > 0


def test_skip_limit_page_through_every_record_once(world):
    q = {"referenceName": "1", "start": [65000], "end": [70100]}
    truth = observed(world.truth[C1].range("1", 65000, 70100))
    seen = []
    for skip in range(0, len(truth) // 7 + 2):  # skip counts pages of limit records
        doc = world.ask(
            "POST", f"/datasets/{C1}/g_variants", q, granularity="record", skip=skip, limit=7
        )
        page = sets(doc).get(C1, {"results": []})["results"]
        assert len(page) == max(0, min(7, len(truth) - 7 * skip))
        assert doc["meta"]["receivedRequestSummary"]["pagination"] == {"skip": skip, "limit": 7}
        seen.extend(r["variantInternalId"] for r in page)
    assert len(seen) == len(set(seen)) == len(truth)
    assert {record_key(r) for r in _all_records(world, C1, q)} == {key(v) for v in truth}

    doc = world.ask("GET", "/datasets", granularity="record", skip=1, limit=1)
    assert doc["responseSummary"]["numTotalResults"] == 3
    assert [c["id"] for c in doc["response"]["collections"]] == [C1A]
    ids = []
    for skip in range(4):
        path = f"/datasets/{C22}/individuals"
        doc = world.ask("GET", path, granularity="record", skip=skip, limit=50)
        ids.extend(r["id"] for r in records(doc))
    assert ids == world.truth[C22].samples


def _all_records(world, ds, q):
    doc = world.ask("POST", f"/datasets/{ds}/g_variants", q, granularity="record", limit=1000)
    return records(doc)


def test_requested_schemas_are_echoed(world):
    schema = "ga4gh-beacon-variant-v2.1.0"
    q = {"referenceName": "1", "start": [15273], "alternateBases": "G"}
    r = world.client.get(BASE + "/g_variants", params={**get_params(q), "requestedSchemas": schema})
    got = check(r.json())["meta"]
    assert got["receivedRequestSummary"]["requestedSchemas"] == [
        {"entityType": "genomicVariant", "schema": schema}
    ]
    assert {"entityType": "genomicVariant", "schema": schema} in got["returnedSchemas"]
    wanted = [{"entityType": "genomicVariant", "schema": schema}]
    r = world.client.post(BASE + "/g_variants", json=body(q, schemas_=wanted))
    assert check(r.json())["meta"]["receivedRequestSummary"]["requestedSchemas"] == wanted


def test_answers_carry_their_provenance(world):
    """Every query answer names the software and, per dataset answered, the version read and
    the SHA-256 of the VCF it came from."""
    from sandgrain import __version__
    from sandgrain.provenance import sha256_file

    q = {"referenceName": "22", "start": [20000000], "end": [20100000]}
    doc = world.ask("GET", "/g_variants", q, granularity="count")
    prov = doc["info"]["provenance"]
    assert prov["software"] == "sandgrain" and prov["version"] == __version__
    assert set(prov["datasets"]) == {C1, C1A, C22}
    current = world.store.open_dataset("beacon", C22).manifest["version"]
    assert prov["datasets"][C22]["version"] == current
    assert prov["datasets"][C22]["inputs_sha256"][0] == sha256_file(CHR22)


def test_post_echoes_the_request(world):
    q = {"referenceName": "22", "start": [20000000], "end": [20002000]}
    doc = world.ask("POST", "/g_variants", q, granularity="count", filters=["HP:0001250"])
    summary = doc["meta"]["receivedRequestSummary"]
    assert summary["apiVersion"] == "v2.0"
    assert summary["filters"] == ["HP:0001250"]
    assert summary["requestParameters"]["g_variant"] == q
    assert summary["requestedGranularity"] == "count"


# =================================================================================================
# 2. the six query forms equal truth from pysam, GET and POST alike
# =================================================================================================
def _first(truth: Truth, kind: str):
    return next(v for v in truth.variants if v.kind == kind and v.counts()[2] > 0)


def _chr1(query):
    """Truth of a chr1 query: the same in the plain and the annotated file."""
    return lambda w: {d: query(w.truth[d]) for d in (C1, C1A)}


def _chr22(query):
    return lambda w: {C22: query(w.truth[C22])}


def _annotated(query):
    """Truth of an annotation query: only the annotated file has SnpEff ANN."""
    return lambda w: {C1A: query(w.truth[C1A]), C1: []}


def _gene(name):
    return lambda t: t.overlapping(_genes()[name])


def _hgvs_of_first(kind):
    return lambda w: {"genomicAlleleShortForm": hgvs_g(_first(w.truth[C22], kind))}


def _seq(chrom, start, alt, ref=None) -> dict:
    q = {"referenceName": chrom, "start": [start], "alternateBases": alt}
    return q | ({"referenceBases": ref} if ref else {})


def _range(chrom, start, end, **more) -> dict:
    return {"referenceName": chrom, "start": [start], "end": [end], **more}


#: (id, request parameters (or world → parameters), world → {dataset: truth variants})
# fmt: off
CASES = [
    # sequence
    ("seq-split-multiallelic", _seq("1", 15273, "T", "A"), _chr1(lambda t: t.sequence("1", 15273, "T", "A"))),  # noqa: E501
    ("seq-no-ref", _seq("1", 15273, "G"), _chr1(lambda t: t.sequence("1", 15273, "G"))),
    ("seq-normalised", _seq("1", 66380, "AATATA", "TATATA"), _chr1(lambda t: t.sequence("1", 66380, "AATATA", "TATATA"))),  # noqa: E501
    ("seq-N", _seq("chr1", 15273, "N"), _chr1(lambda t: t.sequence("1", 15273, "N"))),
    ("seq-deletion", _seq("1", 13288, "C", "CCT"), _chr1(lambda t: t.sequence("1", 13288, "C", "CCT"))),  # noqa: E501
    ("seq-chr22-singleton", _seq("22", 20000863, "A", "G"), _chr22(lambda t: t.sequence("22", 20000863, "A", "G"))),  # noqa: E501
    ("seq-miss", _seq("1", 15273, "C"), _chr1(lambda t: [])),
    # range
    ("range", _range("1", 10000, 11000), _chr1(lambda t: t.range("1", 10000, 11000))),
    ("range-refseq-snp", _range("NC_000001.10", 69000, 70100, variantType="SNP"), _chr1(lambda t: t.range("1", 69000, 70100, "SNP"))),  # noqa: E501
    ("range-indel", _range("1", 10000, 20000, variantType="INDEL"), _chr1(lambda t: t.range("1", 10000, 20000, "INDEL"))),  # noqa: E501
    ("range-alt", _range("1", 10000, 30000, alternateBases="T"), _chr1(lambda t: t.range("1", 10000, 30000, alt="T"))),  # noqa: E501
    ("range-in-a-deletion", _range("1", 10620, 10621), _chr1(lambda t: t.range("1", 10620, 10621))),  # noqa: E501
    # bracket
    ("bracket", {"referenceName": "1", "start": [10000, 10300], "end": [10000, 10400]}, _chr1(lambda t: t.bracket("1", 10000, 10300, 10000, 10400))),  # noqa: E501
    ("bracket-deletions", {"referenceName": "1", "start": [10000, 20000], "end": [10630, 13300]}, _chr1(lambda t: t.bracket("1", 10000, 20000, 10630, 13300))),  # noqa: E501
    # geneId (the shared GRCh37 gene table is imported into the store)
    ("gene", {"geneId": "OR4F5"}, _chr1(_gene("OR4F5"))),
    ("gene-snp", {"geneId": "WASH7P", "variantType": "SNP"}, _chr1(lambda t: [v for v in _gene("WASH7P")(t) if v.kind == "SNP"])),  # noqa: E501
    ("gene-unknown", {"geneId": "NOSUCHGENE1"}, _chr1(lambda t: [])),
    # aminoacidChange (SnpEff ANN of the annotated file)
    ("aa-short", {"aminoacidChange": "D45V"}, _annotated(lambda t: t.aminoacid("D45V"))),
    ("aa-long-in-gene", {"geneId": "OR4F5", "aminoacidChange": "p.Phe113Cys"}, _annotated(lambda t: t.aminoacid("F113C"))),  # noqa: E501
    ("aa-stop", {"aminoacidChange": "p.Leu260Ter"}, _annotated(lambda t: t.aminoacid("L260*"))),
    ("aa-miss", {"aminoacidChange": "V600E"}, _annotated(lambda t: [])),
    # genomicAlleleShortForm (HGVS g.)
    ("hgvs-snp", {"genomicAlleleShortForm": "NC_000001.10:g.15274A>G"}, _chr1(lambda t: by_hgvs(t, "NC_000001.10:g.15274A>G"))),  # noqa: E501
    ("hgvs-snp-bare-chrom", {"genomicAlleleShortForm": "22:g.20000864G>A"}, _chr22(lambda t: by_hgvs(t, "22:g.20000864G>A"))),  # noqa: E501
    ("hgvs-del", _hgvs_of_first("DEL"), _chr22(lambda t: by_hgvs(t, hgvs_g(_first(t, "DEL"))))),  # noqa: E501
    ("hgvs-ins", _hgvs_of_first("INS"), _chr22(lambda t: by_hgvs(t, hgvs_g(_first(t, "INS"))))),  # noqa: E501
    ("hgvs-del-chr1", {"genomicAlleleShortForm": "NC_000001.10:g.13290_13291del"}, _chr1(lambda t: by_hgvs(t, "NC_000001.10:g.13290_13291del"))),  # noqa: E501
    ("hgvs-miss", {"genomicAlleleShortForm": "NC_000001.10:g.15274A>C"}, _chr1(lambda t: [])),
]
# fmt: on


_GENES: dict = {}


def _genes():
    if not _GENES:
        _GENES.update(read_gene_table(GENES))
    return _GENES


def _check_record(record: dict, v, mask=None, samples=None) -> None:
    ac, an, _, hom = v.counts(mask)
    (freq,) = record["frequencyInPopulations"][0]["frequencies"]
    assert (freq["alleleCount"], freq["alleleNumber"]) == (ac, an)
    assert freq["alleleFrequency"] == pytest.approx(ac / an)
    assert freq["alleleCountHomozygous"] == hom
    cases = {c["individualId"]: c["zygosity"]["label"] for c in record.get("caseLevelData", [])}
    dose = v.dose if mask is None else np.where(mask, v.dose, 0)
    carriers = {samples[i]: int(d) for i, d in enumerate(dose) if d > 0}
    assert set(cases) == set(carriers)
    assert {s for s, z in cases.items() if z == "homozygous"} == {
        s for s, d in carriers.items() if d >= 2
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_query_forms_equal_truth(world, case):
    name, params, truth_of = case
    params = params(world) if callable(params) else params
    truth = {ds: observed(vs) for ds, vs in truth_of(world).items()}
    total = sum(len(vs) for vs in truth.values())
    assert (total == 0) is name.endswith(("miss", "unknown"))  # the case tests what it says
    doc = world.both("/g_variants", params, granularity="record", include="ALL", limit=1000)
    assert doc["responseSummary"]["exists"] is (total > 0)
    assert doc["responseSummary"]["numTotalResults"] == total
    got = sets(doc)
    for ds, vs in truth.items():
        assert got[ds]["resultsCount"] == len(vs), ds
        assert got[ds]["exists"] is bool(vs)
        by_key = {key(v): v for v in vs}
        results = got[ds]["results"]
        assert sorted(record_key(r) for r in results) == sorted(by_key)
        for r in results:
            _check_record(r, by_key[record_key(r)], samples=world.truth[ds].samples)
    count = world.both("/g_variants", params, granularity="count")
    assert count["responseSummary"] == {"exists": total > 0, "numTotalResults": total}
    boolean = world.both("/g_variants", params, granularity="boolean")
    assert boolean["responseSummary"] == {"exists": total > 0}


def test_large_ranges_are_not_capped(world):
    """A range over the whole chr1 slice (165 kb, beyond sBeacon's 10 kb cap) answers exactly."""
    q = {"referenceName": "1", "start": [61170], "end": [250000000], "variantType": "SNP"}
    doc = world.both(f"/datasets/{C1}/g_variants", q, granularity="count")
    truth = observed(world.truth[C1].range("1", 61170, 250000000, "SNP"))
    assert doc["responseSummary"]["numTotalResults"] == len(truth) > 500


def test_variant_and_individual_lookups_equal_truth(world):
    t22 = world.truth[C22]
    (v,) = t22.sequence("22", 20000863, "A", "G")
    doc = world.both(f"/g_variants/{VID22}", granularity="record", include="ALL")
    assert sets(doc)[C22]["resultsCount"] == 1
    assert not sets(doc)[C1]["exists"]
    _check_record(records(doc)[0], v, samples=t22.samples)

    # every record's variantInternalId finds that very record
    for r in _all_records(world, C1, {"referenceName": "1", "start": [10000], "end": [10500]}):
        path = f"/g_variants/{r['variantInternalId']}"
        assert records(world.both(path, {"datasetIds": [C1]}, granularity="record")) == [r]

    carriers = [t22.samples[i] for i in np.flatnonzero(v.dose)]
    doc = world.both(f"/g_variants/{VID22}/individuals", granularity="record")
    assert [r["id"] for r in records(doc)] == carriers
    assert doc["responseSummary"]["numTotalResults"] == len(carriers)

    person = "HG00096"
    doc = world.both(f"/individuals/{person}/g_variants", granularity="count")
    truth = {ds: observed(world.truth[ds].carried_by(person)) for ds in (C1, C1A, C22)}
    assert doc["responseSummary"]["numTotalResults"] == sum(map(len, truth.values()))
    doc = world.both(
        f"/individuals/{person}/g_variants",
        {"referenceName": "1", "start": [10000], "end": [20000]},
        granularity="record", include="ALL", limit=1000,
    )  # fmt: skip
    for ds in (C1, C1A):
        want = {key(v) for v in world.truth[ds].carried_by(person) if v.start0 < 20000}
        assert {record_key(r) for r in sets(doc)[ds]["results"]} == want
        for r in sets(doc)[ds]["results"]:
            assert [c["individualId"] for c in r["caseLevelData"]] == [person]

    doc = world.both(f"/individuals/{person}", granularity="record", include="ALL")
    assert {s["id"] for s in doc["response"]["resultSets"]} == {C1, C1A, C22}
    assert all(s["results"][0]["id"] == person for s in doc["response"]["resultSets"])
    assert world.both("/individuals/NOBODY", granularity="count")["responseSummary"] == {
        "exists": False,
        "numTotalResults": 0,
    }


# -- filters ---------------------------------------------------------------------------------------
def _with(world, *terms) -> list[str]:
    return [s for s in world.truth[C22].samples if set(terms) <= world.terms[s]]


@pytest.mark.parametrize(
    "terms", [("HP:0001250",), ("NCIT:C20197",), ("NCIT:C16576", "HP:0001513"), ("NCIT:C3117",)]
)
def test_filters_on_individuals_equal_truth(world, terms):
    want = _with(world, *terms)
    assert 0 < len(want) < 191
    doc = world.both(
        "/individuals", granularity="record", filters=list(terms), limit=1000, include="ALL"
    )
    assert doc["responseSummary"]["numTotalResults"] == len(want)
    assert [r["id"] for r in sets(doc)[C22]["results"]] == want
    assert sets(doc)[C1]["resultsCount"] == 0  # chr1 individuals carry no terms
    for r in sets(doc)[C22]["results"]:
        ids = {r["sex"]["id"]} | {d["diseaseCode"]["id"] for d in r.get("diseases", [])}
        ids |= {p["featureType"]["id"] for p in r.get("phenotypicFeatures", [])}
        assert set(terms) <= ids
    count = world.both(f"/cohorts/{C22}/individuals", granularity="count", filters=list(terms))
    assert count["responseSummary"]["numTotalResults"] == len(want)


@pytest.mark.parametrize("terms", [("HP:0001250",), ("NCIT:C16576", "HP:0002315")])
def test_filters_on_variants_equal_truth(world, terms):
    t22 = world.truth[C22]
    mask = t22.mask(_with(world, *terms))
    q = {"referenceName": "22", "start": [20000000], "end": [20030000]}
    truth = observed(t22.range("22", 20000000, 20030000), mask)
    doc = world.both(
        f"/datasets/{C22}/g_variants", q, granularity="record", filters=list(terms), limit=1000
    )
    assert doc["responseSummary"]["numTotalResults"] == len(truth) > 0
    by_key = {key(v): v for v in truth}
    results = records(doc)
    assert sorted(record_key(r) for r in results) == sorted(by_key)
    for r in results:
        _check_record(r, by_key[record_key(r)], mask=mask, samples=t22.samples)


def test_filtering_terms_list_what_individuals_carry(world):
    doc = world.client.get(BASE + "/filtering_terms").json()
    terms = doc["response"]["filteringTerms"]
    got = {t["id"] for t in terms if t["type"] == "ontologyTerm"}
    assert got == set().union(*world.terms.values())
    # and the alphanumeric fields the metadata has (no ages or cohorts here)
    assert {t["id"] for t in terms if t["type"] == "alphanumeric"} == {"sex"}


def test_unknown_filter_matches_nobody_and_says_so(world):
    doc = world.both("/individuals", granularity="count", filters=["HP:9999999"])
    assert doc["responseSummary"] == {"exists": False, "numTotalResults": 0}
    assert "HP:9999999" in str(doc.get("info", {}).get("warnings"))


def test_alleles_nobody_carries_do_not_exist(world):
    """807 of the 1,356 chr22 records have AC=0 among the file's 191 samples (the file is a
    subset of 1,092). A Beacon answers whether the allele was observed: nobody carries it, so it
    does not exist, with or without a subset of individuals (filters, revocations)."""
    t22 = world.truth[C22]
    (v,) = [v for v in t22.all_variants if (v.start0, v.ref, v.alt) == (20000085, "T", "C")]
    assert v.counts()[0] == 0 and not t22.sequence("22", 20000085, "C", "T")
    q = {"referenceName": "22", "start": [20000085], "referenceBases": "T", "alternateBases": "C"}
    assert world.both(f"/datasets/{C22}/g_variants", q)["responseSummary"] == {"exists": False}
    q = {"referenceName": "22", "start": [20000000], "end": [21000000]}
    doc = world.both(f"/datasets/{C22}/g_variants", q, granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == len(observed(t22.variants)) == 549
    # the structural <DEL> (bracket form) is carried by none of the 191 either
    q = {"referenceName": "22", "start": [20031000, 20031200], "end": [20032600, 20032700]}
    assert not t22.bracket("22", 20031000, 20031200, 20032600, 20032700)
    assert any(v.alt == "<DEL>" and not v.dose.any() for v in t22.all_variants)
    assert world.both(f"/datasets/{C22}/g_variants", q)["responseSummary"] == {"exists": False}


# =================================================================================================
# 3. security end to end: tiers, tokens, visas, granularity, small counts, budget, audit
# =================================================================================================
PUB, REG, CTL = "tier-public", "tier-registered", "tier-controlled"
SINGLETON = {"referenceName": "22", "start": [20000863], "alternateBases": "A"}


@dataclass
class Tiers:
    root: Path
    store: Store
    settings: Settings
    idp: LoopbackIdP
    truth: Truth
    n: int = 0

    def client(self, ip: str = "testclient", **config) -> tuple[TestClient, BeaconService]:
        """A fresh app (own audit log and budget) over the three tiers."""
        self.n += 1
        config.setdefault("audit_db", str(self.root / f"audit-{self.n}.db"))
        # These tests are about tiers, tokens and counts, asked with a singleton: the rare-allele
        # rule (which would answer it as absent) has its own suite, test_reidentification.py.
        config.setdefault("rare_min_carriers", 0)
        app = app_with(self.settings, [self.store], self.idp.config(**config))
        return TestClient(app, client=(ip, 50000)), app.state.beacon


@pytest.fixture(scope="module")
def tiers(tmp_path_factory, world):
    root = tmp_path_factory.mktemp("beacon-tiers")
    store = Store(str(root / "store"))
    for ds, access in ((PUB, "public"), (REG, "registered"), (CTL, "controlled")):
        ingest(store, ds, CHR22, assembly="GRCh37", access=access, executor="serial")
    settings = Settings(home=str(root / "home"), store_url=store.url, executor="serial")
    with LoopbackIdP() as idp:
        yield Tiers(root, store, settings, idp, world.truth[C22])


def bearer(token: str | None) -> dict:
    return {"Authorization": f"Bearer {token}"} if token else {}


def ask(client, path, params=None, token=None, status=200, method="POST", **kw) -> dict:
    if method == "GET":
        r = client.get(BASE + path, params=get_params(params, **kw), headers=bearer(token))
    else:
        r = client.post(BASE + path, json=body(params, **kw), headers=bearer(token))
    assert r.status_code == status, (r.status_code, r.text[:400])
    doc = check(r.json(), r.status_code)
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    return doc


def _datasets(client, token=None) -> set[str]:
    return {c["id"] for c in ask(client, "/datasets", token=token)["response"]["collections"]}


def _with_ids(params: dict, *ids) -> dict:
    return {**params, "datasetIds": list(ids)}


def test_anonymous_sees_only_public_data(tiers):
    client, _ = tiers.client()
    assert _datasets(client) == {PUB}
    for method in ("GET", "POST"):
        doc = ask(client, "/g_variants", SINGLETON, granularity="record", method=method)
        assert doc["meta"]["returnedGranularity"] == "count"  # public tier: count at most
        assert doc["responseSummary"] == {"exists": True, "numTotalResults": 1}
        doc = ask(client, "/individuals", granularity="count", method=method)
        assert doc["responseSummary"]["numTotalResults"] == 191
    for ds in (REG, CTL):
        doc = ask(client, "/g_variants", _with_ids(SINGLETON, ds), status=401)
        assert ds in doc["error"]["errorMessage"]
        ask(client, f"/datasets/{ds}", status=404)  # invisible datasets are not listed at all
    assert {t["id"] for t in client.get(BASE + "/filtering_terms").json()["response"][
        "filteringTerms"]} == set()  # fmt: skip


def test_registered_token_sees_public_and_registered(tiers):
    client, _ = tiers.client()
    token = tiers.idp.token("rita")
    assert _datasets(client, token) == {PUB, REG}
    doc = ask(client, "/g_variants", SINGLETON, token=token, granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 2
    doc = ask(client, "/g_variants", _with_ids(SINGLETON, REG), token=token, granularity="record")
    assert doc["meta"]["returnedGranularity"] == "count"  # registered data: count by default
    assert set(sets(doc)) == {REG}
    recorded, _ = tiers.client(max_granularity={"registered": "record"})  # an explicit choice
    doc = ask(recorded, "/g_variants", _with_ids(SINGLETON, REG), token=token, granularity="record")
    assert doc["meta"]["returnedGranularity"] == "record"
    doc = ask(client, "/g_variants", _with_ids(SINGLETON, CTL), token=token, status=403)
    assert CTL in doc["error"]["errorMessage"]
    ask(client, f"/datasets/{CTL}/g_variants", SINGLETON, token=token, status=403)


def test_signed_visa_unlocks_the_controlled_dataset(tiers):
    client, _ = tiers.client(max_granularity={"registered": "record"})
    token = tiers.idp.token("carol", datasets=[CTL])
    assert _datasets(client, token) == {PUB, REG, CTL}
    doc = ask(client, "/g_variants", SINGLETON, token=token, granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 3
    (v,) = tiers.truth.sequence("22", 20000863, "A")
    carrier = tiers.truth.samples[int(np.flatnonzero(v.dose)[0])]
    q = _with_ids(SINGLETON, REG, CTL)
    for method in ("GET", "POST"):
        doc = ask(client, "/g_variants", q, token=token, granularity="record", method=method)
        assert set(sets(doc)) == {REG, CTL}
        for s in sets(doc).values():
            (record,) = s["results"]
            assert [c["individualId"] for c in record["caseLevelData"]] == [carrier]
    doc = ask(
        client, "/individuals", {"datasetIds": [CTL]}, token=token, granularity="record", limit=5
    )
    assert set(sets(doc)) == {CTL} and len(records(doc)) == 5


@pytest.mark.parametrize(
    "path",
    [f"/datasets/{CTL}/individuals", f"/cohorts/{CTL}/individuals", f"/datasets/{CTL}/g_variants"],
)
def test_a_dataset_in_the_path_is_answered_at_its_own_granularity(tiers, path):
    """A dataset named in the path is the only one read, so the answer's granularity is that
    dataset's (record for a visa holder), not the lowest of every visible dataset's."""
    client, _ = tiers.client()
    token = tiers.idp.token("carol", datasets=[CTL])
    params = SINGLETON if path.endswith("g_variants") else None
    doc = ask(client, path, params, token=token, granularity="record")
    assert doc["meta"]["returnedGranularity"] == "record"
    assert set(sets(doc)) == {CTL}


def test_bad_visas_grant_nothing(tiers):
    client, _ = tiers.client()
    idp = tiers.idp
    visas = {
        "unsigned": make_visa(None, issuer=idp.visa_issuer, subject="dave", value=CTL, alg="none"),
        "other dataset": idp.visa("dave", "tier-elsewhere"),
        "foreign key": make_visa(ec_key(), issuer=idp.visa_issuer, subject="dave", value=CTL),
        "other subject": idp.visa("erin", CTL),
        "expired": idp.visa("dave", CTL, expires_in=-3600),
        "login key": make_visa(idp.login_key, issuer=idp.visa_issuer, subject="dave", value=CTL),
    }
    for why, visa in visas.items():
        token = idp.token("dave", visas=[visa])
        assert _datasets(client, token) == {PUB, REG}, why
        ask(client, "/g_variants", _with_ids(SINGLETON, CTL), token=token, status=403)
        doc = ask(client, "/g_variants", SINGLETON, token=token, granularity="count")
        assert doc["responseSummary"]["numTotalResults"] == 2, why


def _bad_tokens(idp) -> dict[str, str]:
    return {
        "expired": idp.token("x", expires_in=-3600),
        "wrong audience": make_token(
            idp.login_key, issuer=idp.issuer, audience="someone-else", subject="x"
        ),
        "wrong issuer": make_token(
            idp.login_key, issuer="https://evil.example", audience=idp.audience, subject="x"
        ),
        "unsigned": make_token(None, issuer=idp.issuer, audience=idp.audience, alg="none"),
        "foreign key": make_token(
            ec_key(), issuer=idp.issuer, audience=idp.audience, subject="x", kid="login-1"
        ),
        "garbage": "not-a-jwt",
        "hmac with the public key": make_token(
            None, issuer=idp.issuer, audience=idp.audience, hmac_secret=idp.login_key.public_pem()
        ),
    }


@pytest.mark.parametrize(
    "path", ["/g_variants", "/individuals", "/datasets", f"/datasets/{PUB}/g_variants", "/cohorts"]
)
def test_invalid_tokens_get_401_and_no_data(tiers, path):
    client, svc = tiers.client()
    params = SINGLETON if "g_variants" in path else None
    for why, token in _bad_tokens(tiers.idp).items():
        for method in ("GET", "POST"):
            doc = ask(client, path, params, token=token, status=401, method=method)
            assert "token" in doc["error"]["errorMessage"], why
            assert token not in doc["error"]["errorMessage"]
    r = client.get(BASE + path, params=get_params(params), headers={"Authorization": "Basic eDp5"})
    assert r.status_code == 401 and check(r.json(), 401)


def test_filtering_terms_refuse_invalid_tokens(tiers):
    client, _ = tiers.client()
    r = client.get(BASE + "/filtering_terms", headers=bearer("not-a-jwt"))
    assert r.status_code == 401
    check(r.json(), 401)


def test_granularity_is_clamped_per_tier(tiers):
    client, _ = tiers.client(
        max_granularity={"public": "boolean", "registered": "count", "controlled": "record"}
    )
    token = tiers.idp.token("carol", datasets=[CTL])
    expect = [
        ((), None, "boolean"),
        ((), token, "boolean"),  # a public dataset in the answer: boolean at most
        ((REG,), token, "count"),
        ((CTL,), token, "record"),
        ((REG, CTL), token, "count"),
        ((PUB, CTL), token, "boolean"),
    ]
    for ids, tok, returned in expect:
        q = _with_ids(SINGLETON, *ids) if ids else SINGLETON
        for method in ("GET", "POST"):
            doc = ask(client, "/g_variants", q, token=tok, granularity="record", method=method)
            assert doc["meta"]["returnedGranularity"] == returned, (ids, method)
            assert doc["meta"]["receivedRequestSummary"]["requestedGranularity"] == "record"
            assert doc["responseSummary"]["exists"] is True
    # never more than asked
    doc = ask(client, "/g_variants", _with_ids(SINGLETON, CTL), token=token, granularity="count")
    assert doc["meta"]["returnedGranularity"] == "count"
    doc = ask(client, "/individuals", granularity="record")
    assert doc["meta"]["returnedGranularity"] == "boolean"
    assert "numTotalResults" not in doc["responseSummary"]


def test_small_counts_are_never_reported(tiers):
    client, _ = tiers.client(min_count=5, max_granularity={"public": "record"})
    t = tiers.truth
    assert len(observed(t.sequence("22", 20000863, "A"))) == 1
    for method in ("GET", "POST"):
        # a count of variants is not a count of people: one variant is 1 (the people who carry
        # it are what min_count protects, and rare alleles have their own rule)
        doc = ask(client, "/g_variants", SINGLETON, granularity="count", method=method)
        summary = doc["responseSummary"]
        assert summary["numTotalResults"] == 1 and summary["exists"] is True
        assert "countAdjustedTo" not in summary
        # at record granularity the records are listed: their number is given as it is
        doc = ask(client, "/g_variants", SINGLETON, granularity="record", method=method)
        assert doc["responseSummary"]["numTotalResults"] == 1
        (s,) = doc["response"]["resultSets"]
        assert s["resultsCount"] == len(s["results"]) == 1 and "countAdjustedTo" not in s
    # individuals carrying a singleton: one person, reported as "fewer than 5"
    doc = ask(client, f"/g_variants/{VID22}/individuals", granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 5
    # large counts and zero stay exact
    q = {"referenceName": "22", "start": [20000000], "end": [20010000], "variantType": "SNP"}
    doc = ask(client, "/g_variants", q, granularity="count", filters=["NCIT:C99999"])
    assert doc["responseSummary"] == {"exists": False, "numTotalResults": 0} | (
        {"countPrecision": "exact"} if "countPrecision" in doc["responseSummary"] else {}
    )
    doc = ask(client, "/individuals", granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 191
    assert "countAdjustedTo" not in doc["responseSummary"]
    # cohorts give no per-category distributions whose small cells would reveal people
    cohort = ask(client, f"/cohorts/{PUB}")["response"]["collections"][0]
    assert cohort["cohortSize"] == 191 and "collectionEvents" not in cohort
    # hidden small counts: answered as a boolean
    client, _ = tiers.client(min_count=5, small_counts="hide", max_granularity={"public": "record"})
    doc = ask(client, f"/g_variants/{VID22}/individuals", granularity="count")
    assert doc["meta"]["returnedGranularity"] == "boolean"
    assert doc["responseSummary"] == {"exists": True}


def test_repeated_dataset_ids_are_counted_once(tiers):
    """A dataset named twice in ``datasetIds`` is read once: otherwise counts double (191
    individuals → 382), and with ``min_count=5`` seven mentions of a singleton would give an
    exact total of 7 — the small-count protection undone."""
    client, _ = tiers.client(min_count=5, max_granularity={"public": "record"})
    doc = ask(client, "/individuals", {"datasetIds": [PUB, PUB]}, granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 191
    doc = ask(
        client, f"/g_variants/{VID22}/individuals", {"datasetIds": [PUB] * 7}, granularity="count"
    )
    assert [s["id"] for s in doc["response"]["resultSets"]] == [PUB]
    assert doc["responseSummary"]["numTotalResults"] == 5
    assert doc["responseSummary"]["countPrecision"] == "imprecise"


def test_query_budget_per_ip_and_per_subject(tiers):
    client_a, svc = tiers.client(ip="198.51.100.1", budget_limit=3)
    for _ in range(3):
        ask(client_a, "/g_variants", SINGLETON, granularity="count")
    r = client_a.post(BASE + "/g_variants", json=body(SINGLETON))
    assert r.status_code == 429
    doc = check(r.json(), 429)
    assert "budget" in doc["error"]["errorMessage"]
    assert int(r.headers["Retry-After"]) > 0
    r = client_a.get(BASE + "/g_variants", params=get_params(SINGLETON))
    assert r.status_code == 429
    assert client_a.get(BASE + "/datasets").status_code == 200  # not a genomic query
    # another address has its own budget (same service, same database)
    client_b = TestClient(client_a.app, client=("198.51.100.2", 50000))
    ask(client_b, "/g_variants", SINGLETON)
    # a logged-in user is counted by subject, not by the (spent) address
    alice, bob = tiers.idp.token("alice"), tiers.idp.token("bob")
    for _ in range(3):
        ask(client_a, "/g_variants", SINGLETON, token=alice)
    ask(client_a, "/g_variants", SINGLETON, token=alice, status=429)
    ask(client_b, "/g_variants", SINGLETON, token=alice, status=429)  # any address
    ask(client_a, "/g_variants", SINGLETON, token=bob)
    denied = [e for e in svc.audit.events() if e["outcome"] == "denied"]
    assert len(denied) == 4 and all("budget" in e["detail"] for e in denied)


def test_every_query_is_audited(tiers):
    client, svc = tiers.client()
    token = tiers.idp.token("rita")
    # fmt: off
    steps = [
        # (request, outcome, subject, granularity, counts)
        # counts: what the response reported (a boolean answer reports none)
        (lambda: ask(client, "/g_variants", SINGLETON, granularity="count"), "ok", None, "count", {"exists": True, "numTotalResults": 1, "resultSets": {PUB: 1}}),  # noqa: E501
        (lambda: ask(client, "/g_variants", SINGLETON, token=token, method="GET", granularity="record"), "ok", "rita", "count", {"exists": True, "numTotalResults": 2, "resultSets": {PUB: 1, REG: 1}}),  # noqa: E501
        (lambda: ask(client, "/individuals", token=token, granularity="boolean"), "ok", "rita", "boolean", {"exists": True}),  # noqa: E501
        (lambda: ask(client, "/g_variants", {"start": [5]}, status=400), "error", None, None, None),  # noqa: E501
        (lambda: ask(client, "/g_variants", SINGLETON, token="garbage", status=401), "denied", None, None, None),  # noqa: E501
        (lambda: ask(client, "/g_variants", _with_ids(SINGLETON, CTL), token=token, status=403), "denied", "rita", None, None),  # noqa: E501
        (lambda: ask(client, "/g_variants", _with_ids(SINGLETON, REG), status=401), "denied", None, None, None),  # noqa: E501
        (lambda: ask(client, "/datasets", token=token), "ok", "rita", ..., ...),
        (lambda: ask(client, f"/cohorts/{CTL}", token=token, status=404), "error", "rita", None, None),  # noqa: E501
        (lambda: client.get(BASE + "/filtering_terms", headers=bearer("garbage")), "denied", None, None, None),  # noqa: E501
    ]
    # fmt: on
    for request, outcome, subject, granularity, counts in steps:
        before = svc.audit.events()
        request()
        after = svc.audit.events()
        assert len(after) == len(before) + 1, outcome
        event = after[-1]
        assert event["kind"] == "query" and event["outcome"] == outcome
        assert event["subject"] == subject and event["ip"] == "testclient"
        assert event["endpoint"].startswith(BASE + "/")
        if counts is ...:  # collections: what was listed
            assert set(event["datasets"]) == {PUB, REG}
            continue
        assert event["granularity"] == granularity
        assert event["counts"] == counts
        if outcome == "ok":
            assert set(event["datasets"]) == set(counts.get("resultSets") or (PUB, REG))
        else:
            assert event["detail"]


# =================================================================================================
# 4. dynamic consent over HTTP and from the command line
# =================================================================================================
DS = "consent-chr22"


@dataclass
class Consent:
    root: Path
    store: Store
    client: TestClient
    service: BeaconService
    idp: LoopbackIdP
    truth: Truth
    terms: dict


@pytest.fixture(scope="module")
def consent_env(tmp_path_factory, world, tiers):
    root = tmp_path_factory.mktemp("beacon-consent")
    store = Store(str(root / "store"))
    ingest(
        store, DS, CHR22, assembly="GRCh37", individuals=world.root / "people.tsv",
        executor="serial",
    )  # fmt: skip
    settings = Settings(home=str(root / "home"), store_url=store.url, executor="serial")
    security = tiers.idp.config(
        admins=("alice",), max_granularity={"public": "record"}, audit_db=str(root / "audit.db")
    )
    app = app_with(settings, [store], security)
    return Consent(
        root, store, TestClient(app), app.state.beacon, tiers.idp, world.truth[C22], world.terms
    )


def _consent_subjects(t: Truth):
    """A singleton variant, its only carrier, and a variant the carrier shares with others."""
    single = next(v for v in t.variants if v.counts()[2] == 1)
    person = t.samples[int(np.flatnonzero(single.dose)[0])]
    i = t.samples.index(person)
    shared = next(v for v in t.variants if v.dose[i] > 0 and v.counts()[2] >= 3)
    return single, person, shared


def _seq_of(v) -> dict:
    return _seq("22", v.start0, v.alt, v.ref)


def _vid(v) -> str:
    return f"22-{v.start0 + 1}-{v.ref}-{v.alt}"


def _admin(env, action, person, token=None, status=200) -> dict:
    r = env.client.post(f"{BASE}/admin/datasets/{DS}/individuals/{person}/{action}",
                        headers=bearer(token))  # fmt: skip
    assert r.status_code == status, r.text
    return r.json() if status == 200 else check(r.json(), status)


def _consent_state(env: Consent, single, person, shared) -> dict:
    """What the Beacon says about the person and the two variants, over every route."""
    c, t = env.client, env.truth
    out = {}
    doc = ask(c, "/g_variants", _seq_of(single), granularity="count")
    out["single"] = doc["responseSummary"]
    doc = ask(c, "/g_variants", _seq_of(shared), granularity="record")
    (rec,) = records(doc)
    out["shared_freq"] = rec["frequencyInPopulations"][0]["frequencies"][0]
    out["shared_cases"] = {x["individualId"] for x in rec["caseLevelData"]}
    ids = [r["id"] for r in records(ask(c, "/individuals", granularity="record", limit=1000))]
    out["individuals"] = ids
    out["one"] = ask(c, f"/individuals/{person}", granularity="record")["responseSummary"]
    out["own_variants"] = ask(c, f"/individuals/{person}/g_variants", granularity="count")[
        "responseSummary"]  # fmt: skip
    doc = ask(c, f"/g_variants/{_vid(shared)}/individuals", granularity="record", limit=1000)
    out["carriers"] = {r["id"] for r in records(doc)}
    terms = sorted(env.terms[person])
    out["filtered"] = ask(c, "/individuals", granularity="count", filters=terms[:1])[
        "responseSummary"]["numTotalResults"] if terms else None  # fmt: skip
    cohort = ask(c, f"/cohorts/{DS}")["response"]["collections"][0]
    out["cohort_size"] = cohort["cohortSize"]
    out["truth_mask"] = t.mask(s for s in t.samples if s in set(ids))
    return out


def test_admin_revoke_and_restore(consent_env):
    env, t = consent_env, consent_env.truth
    single, person, shared = _consent_subjects(t)
    before = _consent_state(env, single, person, shared)
    assert before["single"] == {"exists": True, "numTotalResults": 1}
    assert person in before["individuals"] and person in before["shared_cases"]
    assert len(before["individuals"]) == 191 and before["cohort_size"] == 191

    # only an admin may revoke
    _admin(env, "revoke", person, status=401)
    _admin(env, "revoke", person, token="garbage", status=401)
    _admin(env, "revoke", person, token=env.idp.token("bob"), status=403)
    assert _consent_state(env, single, person, shared)["individuals"] == before["individuals"]
    alice = env.idp.token("alice")
    assert _admin(env, "revoke", person, token=alice)["changed"] is True

    after = _consent_state(env, single, person, shared)
    mask = t.mask(s for s in t.samples if s != person)
    assert after["single"] == {"exists": False, "numTotalResults": 0}
    ac, an, _, _ = shared.counts(mask)
    freq = after["shared_freq"]
    assert (freq["alleleCount"], freq["alleleNumber"]) == (ac, an)
    assert freq["alleleCount"] < before["shared_freq"]["alleleCount"]
    assert freq["alleleFrequency"] == pytest.approx(ac / an)
    assert person not in after["shared_cases"] and person not in after["carriers"]
    assert after["individuals"] == [s for s in before["individuals"] if s != person]
    assert after["one"] == {"exists": False, "numTotalResults": 0}
    assert after["own_variants"]["exists"] is False
    assert after["cohort_size"] == 190
    if before["filtered"] is not None:
        assert after["filtered"] == before["filtered"] - 1
    r = env.client.get(f"{BASE}/datasets/{DS}/individuals",
                       params={"requestedGranularity": "record", "limit": 1000})  # fmt: skip
    assert person not in {x["id"] for x in records(check(r.json()))}

    assert _admin(env, "restore", person, token=alice)["changed"] is True
    again = _consent_state(env, single, person, shared)
    assert {k: v for k, v in again.items() if k != "truth_mask"} == {
        k: v for k, v in before.items() if k != "truth_mask"
    }
    assert _admin(env, "restore", person, token=alice)["changed"] is False

    events = [e for e in env.service.audit.events(limit=10000) if e["kind"] != "query"]
    kinds = [(e["kind"], e["outcome"], e["subject"]) for e in events]
    assert ("revoke", "ok", "alice") in kinds and ("restore", "ok", "alice") in kinds
    assert ("revoke", "denied", "bob") in kinds
    assert all(e["query"]["individual"] == person for e in events)
    _admin(env, "revoke", "NOBODY", token=alice, status=404)
    _admin(env, "frobnicate", person, token=alice, status=404)


def test_every_admin_attempt_is_audited(consent_env):
    """Every admin call is audited, also one whose token fails verification (no principal yet):
    a forged or expired admin token leaves a trace."""
    env = consent_env
    person = env.truth.samples[0]
    attempts = [(None, 401), ("garbage", 401), (env.idp.token("bob"), 403)]
    for token, status in attempts:
        before = len(env.service.audit.events(limit=10000))
        _admin(env, "revoke", person, token=token, status=status)
        events = env.service.audit.events(limit=10000)
        assert len(events) == before + 1, token
        assert events[-1]["outcome"] == "denied" and events[-1]["kind"] == "revoke"


def test_cli_revoke_changes_a_running_beacon(consent_env, monkeypatch, capsys):
    from sandgrain.cli import main

    env, t = consent_env, consent_env.truth
    single, person, _ = _consent_subjects(t)
    monkeypatch.delenv("SANDGRAIN_BEACON_CONFIG", raising=False)
    home = str(env.root / "cli-home")

    def cli(*args):
        with pytest.raises(SystemExit) as done:
            main(["--home", home, "--store", env.store.url, "beacon", *args])
        assert done.value.code == 0, capsys.readouterr().err

    q = _seq_of(single)
    assert ask(env.client, "/g_variants", q)["responseSummary"]["exists"] is True
    cli("revoke", "--dataset", DS, "--individual", person, "--reason", "withdrew")
    assert ask(env.client, "/g_variants", q)["responseSummary"]["exists"] is False
    assert ask(env.client, f"/individuals/{person}")["responseSummary"]["exists"] is False
    cli("restore", "--dataset", DS, "--individual", person)
    assert ask(env.client, "/g_variants", q)["responseSummary"]["exists"] is True


def test_revoking_someone_changes_nothing_they_do_not_carry(consent_env):
    env, t = consent_env, consent_env.truth
    single, person, _ = _consent_subjects(t)
    i = t.samples.index(person)
    q = {"referenceName": "22", "start": [20000000], "end": [21000000]}
    before = ask(env.client, "/g_variants", q, granularity="count")["responseSummary"]
    unrelated = ask(env.client, "/g_variants", _seq_of(t.variants[0]))["responseSummary"]
    assert t.variants[0].dose[i] == 0
    alice = env.idp.token("alice")
    _admin(env, "revoke", person, token=alice)
    try:
        after = ask(env.client, "/g_variants", q, granularity="count")["responseSummary"]
        sole = sum(1 for v in t.variants if v.dose[i] > 0 and v.counts()[2] == 1)
        assert after["numTotalResults"] == before["numTotalResults"] - sole
        assert (
            ask(env.client, "/g_variants", _seq_of(t.variants[0]))["responseSummary"] == unrelated
        )
    finally:
        _admin(env, "restore", person, token=alice)


# =================================================================================================
# 5. federation: a local store and an S3 store answer as one Beacon
# =================================================================================================
def test_federation_over_a_local_and_an_s3_store(tmp_path, s3_store, world):
    local = Store(str(tmp_path / "store"))
    ingest(local, "fed-local", CHR22, assembly="GRCh37", executor="serial",
           individuals=world.root / "people.tsv")  # fmt: skip
    ingest(s3_store, "fed-s3", CHR22, assembly="GRCh37", executor="serial")
    settings = Settings(home=str(tmp_path / "home"), store_url=local.url, executor="serial")
    security = SecurityConfig(
        max_granularity={"public": "record"}, audit_db=str(tmp_path / "audit.db")
    )
    client = TestClient(app_with(settings, [local, s3_store], security))
    t = world.truth[C22]

    doc = ask(client, "/datasets")
    assert {c["id"] for c in doc["response"]["collections"]} == {"fed-local", "fed-s3"}
    for method in ("GET", "POST"):
        doc = ask(client, "/g_variants", SINGLETON, granularity="record", method=method)
        assert doc["responseSummary"]["numTotalResults"] == 2
        assert set(sets(doc)) == {"fed-local", "fed-s3"}
        for s in sets(doc).values():
            (record,) = s["results"]
            _check_record(record, t.sequence("22", 20000863, "A")[0], samples=t.samples)
    q = {"referenceName": "22", "start": [20000000], "end": [20010000]}
    doc = ask(client, "/g_variants", q, granularity="record", include="ALL", limit=1)
    per_set = {s["id"]: s["resultsCount"] for s in doc["response"]["resultSets"]}
    assert per_set["fed-local"] == per_set["fed-s3"] > 0
    assert doc["responseSummary"]["numTotalResults"] == sum(per_set.values())
    doc = ask(client, "/individuals", granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 2 * 191
    # filters: only the local copy has individuals' metadata
    want = [s for s in t.samples if "HP:0001250" in world.terms[s]]
    doc = ask(client, "/individuals", granularity="record", filters=["HP:0001250"], limit=1000)
    assert [r["id"] for r in records(doc)] == want and set(sets(doc)) == {"fed-local"}
    doc = ask(client, "/g_variants", {**SINGLETON, "datasetIds": ["fed-s3"]}, granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == 1


# =================================================================================================
# 6. bad input: 4xx Beacon errors that say what is wrong, never a 5xx
# =================================================================================================
R = {"referenceName": "1", "start": "10000", "end": "20000"}
# fmt: off
BAD_GET = [
    ("/g_variants", {"start": "100", "end": "200"}, 400, "referenceName"),
    ("/g_variants", {"referenceName": "1", "start": "200", "end": "100"}, 400, "end greater than start"),  # noqa: E501
    ("/g_variants", {"referenceName": "1", "start": "200", "end": "200"}, 400, "end greater than start"),  # noqa: E501
    ("/g_variants", {"referenceName": "1", "start": "abc", "alternateBases": "A"}, 400, "whole number"),  # noqa: E501
    ("/g_variants", {"referenceName": "1", "start": "-5", "alternateBases": "A"}, 400, "negative"),  # noqa: E501
    ("/g_variants", {"referenceName": "1", "start": "1,2,3", "end": "9"}, 400, "one or two"),
    ("/g_variants", {"referenceName": "1", "start": "100", "alternateBases": "XYZ"}, 400, "DNA bases"),  # noqa: E501
    ("/g_variants", {"referenceName": "1", "start": "100", "referenceBases": "A1", "alternateBases": "T"}, 400, "referenceBases"),  # noqa: E501
    ("/g_variants", {"referenceName": "1", "start": "100"}, 400, "alternateBases"),
    ("/g_variants", {**R, "variantType": "WOBBLE"}, 400, "variantType"),
    ("/g_variants", {"genomicAlleleShortForm": "BRAF V600E"}, 400, "HGVS"),
    ("/g_variants", {"genomicAlleleShortForm": "1:g.100_105insA"}, 400, "insertion"),
    ("/g_variants", {**R, "colour": "red"}, 400, "unknown request parameter 'colour'"),
    ("/g_variants", {**R, "requestedGranularity": "everything"}, 400, "requestedGranularity"),
    ("/g_variants", {**R, "includeResultsetResponses": "SOME"}, 400, "includeResultsetResponses"),  # noqa: E501
    ("/g_variants", {**R, "skip": "-1"}, 400, "skip"),
    ("/g_variants", {**R, "skip": "many"}, 400, "skip"),
    ("/g_variants", {**R, "limit": "1001"}, 400, "limit may be at most 1000"),
    ("/g_variants", {**R, "datasetIds": "no-such-dataset"}, 404, "no-such-dataset"),
    ("/g_variants", {"referenceName": "1", "start": "100,50", "end": "200,300"}, 400, "in order"),
    ("/g_variants", {"geneId": "BRCA1; DROP TABLE"}, 400, "gene name"),
    ("/g_variants", {}, 400, "no query"),
    (f"/g_variants/{VID22}", {"referenceName": "1"}, 400, "no request parameters"),
    ("/individuals", {"referenceName": "1"}, 400, "filters, not request parameters"),
    ("/datasets", {"limit": "5000"}, 400, "limit"),
    ("/datasets/no-such-dataset", {}, 404, "no-such-dataset"),
    ("/cohorts/no-such-cohort", {}, 404, "no-such-cohort"),
    ("/datasets/no-such-dataset/g_variants", R, 404, "no-such-dataset"),
    ("/filtering_terms", {"datasetIds": "no-such-dataset"}, 404, "no-such-dataset"),
]
# fmt: on
# fmt: off
BAD_POST = [
    ("not json", b"{", 400, "not JSON"),
    ("not utf-8", b"\xff\xfe\x00", 400, "not JSON"),
    ("a list", b"[1, 2]", 400, "JSON object"),
    ("query a string", b'{"query": "x"}', 400, "JSON objects"),
    ("pagination a list", b'{"query": {"pagination": [0, 10]}}', 400, "pagination"),
    ("negative skip", b'{"query": {"pagination": {"skip": -3}}}', 400, "skip"),
    ("limit too big", b'{"query": {"pagination": {"limit": 100000}}}', 400, "limit"),
    ("parameters a string", b'{"query": {"requestParameters": "chr1:100"}}', 400, "requestParameters"),  # noqa: E501
    ("alphanumeric filter", b'{"query": {"requestParameters": {"referenceName": "1", "start": [10], "end": [20]}, "filters": [{"id": "height", "operator": ">", "value": "30"}]}}', 400, "alphanumeric"),  # noqa: E501
    ("filter without id", b'{"query": {"filters": [{"scope": "individuals"}]}}', 400, "needs an id"),  # noqa: E501
    ("granularity a number", b'{"query": {"requestedGranularity": 3}}', 400, "requestedGranularity"),  # noqa: E501
    ("start infinite", b'{"query": {"requestParameters": {"referenceName": "1", "start": [1e999], "end": [5]}}}', 400, "whole number"),  # noqa: E501
    ("start fractional", b'{"query": {"requestParameters": {"referenceName": "1", "start": [1.5], "end": [5]}}}', 400, "whole number"),  # noqa: E501
    ("start an object", b'{"query": {"requestParameters": {"referenceName": "1", "start": {"a": 1}, "end": [5]}}}', 400, "whole number"),  # noqa: E501
    ("unknown dataset", b'{"query": {"requestParameters": {"referenceName": "1", "start": [10], "end": [20], "datasetIds": ["nope"]}}}', 404, "nope"),  # noqa: E501
    ("unknown parameter", b'{"query": {"requestParameters": {"referenceName": "1", "start": [10], "end": [20], "chromosome": "1"}}}', 400, "chromosome"),  # noqa: E501
]
# fmt: on


@pytest.mark.parametrize("path,params,status,words", BAD_GET, ids=[b[3] for b in BAD_GET])
def test_bad_get_requests_are_beacon_errors(world, path, params, status, words):
    r = world.client.get(BASE + path, params=params)
    assert r.status_code == status, r.text
    doc = check(r.json(), status)
    assert words.lower() in doc["error"]["errorMessage"].lower()
    assert "Traceback" not in r.text


@pytest.mark.parametrize("why,raw,status,words", BAD_POST, ids=[b[0] for b in BAD_POST])
def test_bad_post_requests_are_beacon_errors(world, why, raw, status, words):
    for path in ("/g_variants", "/individuals"):
        if path == "/individuals" and b"requestParameters" in raw:
            continue
        r = world.client.post(
            BASE + path, content=raw, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == status, (path, r.text)
        doc = check(r.json(), status)
        assert words.lower() in doc["error"]["errorMessage"].lower(), (path, doc["error"])


@pytest.mark.parametrize("vid", ["not-a-variant", "1-abc-A-T", "1-10177-A"])
def test_malformed_variant_id_is_an_error(world, vid):
    """An id that is not of this Beacon's form (``1-10177-A-AC``) is an error naming the form,
    not a plain miss."""
    for sub in ("", "/individuals"):
        r = world.client.get(f"{BASE}/g_variants/{vid}{sub}")
        assert r.status_code in (400, 404), r.text
        assert "variant id" in check(r.json(), r.status_code)["error"]["errorMessage"]


def test_post_datasets_must_be_an_object(world):
    """``"query": {"datasets": ["g1k-chr22"]}`` (a list, not ``{"datasetIds": [...]}``) is a
    400 naming the field, never a silent query over no dataset."""
    raw = body({"referenceName": "22", "start": [20000863], "alternateBases": "A"})
    raw["query"]["datasets"] = [C22]
    r = world.client.post(BASE + "/g_variants", json=raw)
    assert r.status_code == 400, r.text
    assert "datasets" in check(r.json(), 400)["error"]["errorMessage"]


def test_no_request_gives_a_5xx(world):
    """Odd but well-formed requests answer 2xx/4xx, never 5xx."""
    odd = [
        {"referenceName": "1", "start": str(10**30), "alternateBases": "A"},
        {"referenceName": "1", "start": "0", "end": str(10**30)},
        {"referenceName": "1", "start": f"{10**20},{10**21}", "end": f"{10**22},{10**23}"},
        {"referenceName": "chrUn_gl000220", "start": "0", "end": "10"},
        {"referenceName": "\x00", "start": "0", "end": "10"},
        {"genomicAlleleShortForm": "22:g.99999999999999999999999A>T"},
        {"geneId": "A" * 5000},
        {"aminoacidChange": "(*)[.+?]"},
        {"referenceName": "1", "start": "10000", "end": "20000", "skip": str(10**30)},
        {"referenceName": "1", "start": "10000", "end": "20000", "assemblyId": "GRCh38"},
    ]
    for params in odd:
        for granularity in GRANULARITIES:
            r = world.client.get(
                BASE + "/g_variants", params={**params, "requestedGranularity": granularity}
            )
            assert r.status_code < 500, (params, r.text)
            check(r.json(), r.status_code)
    r = world.client.get(BASE + "/individuals", params={"skip": str(10**30)})
    assert r.status_code < 500


# =================================================================================================
# review findings: protections that must hold together
# =================================================================================================
@pytest.fixture(scope="module")
def guarded(tmp_path_factory, world, tiers):
    """Two public datasets of the chr22 file with individuals, counts below 5 protected, public
    answers at most count; alice is an admin (issuer-qualified)."""
    root = tmp_path_factory.mktemp("beacon-guarded")
    store = Store(str(root / "store"))
    for ds in ("g1", "g2"):
        ingest(
            store, ds, CHR22, assembly="GRCh37", individuals=world.root / "people.tsv",
            executor="serial",
        )  # fmt: skip
    settings = Settings(home=str(root / "home"), store_url=store.url, executor="serial")
    issuer = tiers.idp.config().oidc_issuers[0].issuer
    security = tiers.idp.config(
        min_count=5, admins=(f"{issuer}|alice",), audit_db=str(root / "audit.db"),
        rare_min_carriers=0,  # counts of 3 carriers are the point here (rare rule: elsewhere)
    )  # fmt: skip
    app = app_with(settings, [store], security)
    return SimpleNamespace(
        client=TestClient(app), store=store, truth=world.truth[C22], terms=world.terms
    )


def test_the_total_is_the_sum_of_what_each_dataset_reports(guarded):
    """Two datasets with 3 carriers each: each reports 5 (fewer than 5); the total is 10 and
    imprecise — never the exact 6 that would give both true counts away."""
    t = guarded.truth
    v = next(v for v in t.variants if v.counts()[2] == 3)
    vid = f"22-{v.start0 + 1}-{v.ref}-{v.alt}"
    doc = ask(guarded.client, f"/g_variants/{vid}/individuals", granularity="count",
              include="ALL")  # fmt: skip
    assert {s["resultsCount"] for s in doc["response"]["resultSets"]} == {5}
    assert doc["responseSummary"]["numTotalResults"] == 10
    assert doc["responseSummary"]["countPrecision"] == "imprecise"


def test_one_named_individual_needs_record_level_access(guarded):
    person = guarded.truth.samples[0]
    for path in (f"/individuals/{person}", f"/individuals/{person}/g_variants"):
        doc = ask(guarded.client, path, granularity="boolean", status=403)
        assert "record-level" in doc["error"]["errorMessage"]


def test_filters_may_not_narrow_below_the_minimum(guarded):
    """A set of terms only one person has would make every count theirs: refused."""
    sets = [frozenset(ts) for ts in guarded.terms.values()]
    # all of one person's terms, which nobody else has all of
    unique = next(
        sorted(ts) for ts in sets if len(ts) >= 2 and sum(ts <= other for other in sets) == 1
    )
    q = {"referenceName": "22", "start": [20000000], "end": [20100000]}
    doc = ask(guarded.client, "/g_variants", q, granularity="count", filters=unique, status=403)
    assert "fewer than 5 individuals" in doc["error"]["errorMessage"]
    # a term many share is fine
    big = next(t for t in ("NCIT:C16576", "NCIT:C20197") if any(t in ts for ts in sets))
    doc = ask(guarded.client, "/g_variants", q, granularity="count", filters=[big])
    assert doc["responseSummary"]["exists"] is True


def test_revoked_people_leave_filtering_terms_and_dataset_counts(guarded, tiers):
    """Revoking every holder of a term removes the term from /filtering_terms and the people
    from /datasets' individual count (audited admin API, issuer-qualified admin)."""
    holders: dict[str, list[str]] = {}
    for sample, terms in guarded.terms.items():
        for term in terms:
            holders.setdefault(term, []).append(sample)
    term, who = min(((t, w) for t, w in holders.items() if t.startswith("HP:")),
                    key=lambda tw: len(tw[1]))  # fmt: skip
    token = tiers.idp.token("alice")
    for person in who:
        r = guarded.client.post(
            f"{BASE}/admin/datasets/g2/individuals/{person}/revoke", headers=bearer(token)
        )
        assert r.status_code == 200, r.text
    try:
        listed = guarded.client.get(BASE + "/filtering_terms", params={"datasetIds": "g2"})
        schemas.validate("beaconFilteringTermsResponse", listed.json())
        assert term not in {t["id"] for t in listed.json()["response"]["filteringTerms"]}
        both = guarded.client.get(BASE + "/filtering_terms").json()["response"]
        assert term in {t["id"] for t in both["filteringTerms"]}  # g1 still has them
        ds = guarded.client.get(BASE + "/datasets/g2").json()["response"]["collections"][0]
        assert ds["info"]["individualCount"] == 191 - len(who)
        other = guarded.client.get(BASE + "/datasets/g1").json()["response"]["collections"][0]
        assert other["info"]["individualCount"] == 191
    finally:
        for person in who:
            guarded.client.post(
                f"{BASE}/admin/datasets/g2/individuals/{person}/restore", headers=bearer(token)
            )


def test_an_admin_is_named_with_the_issuer(guarded, tiers):
    """``admins`` holds ``issuer|subject``: a token of bob is refused even though alice's works."""
    person = guarded.truth.samples[1]
    url = f"{BASE}/admin/datasets/g1/individuals/{person}/restore"
    r = guarded.client.post(url, headers=bearer(tiers.idp.token("bob")))
    assert r.status_code == 403
    r = guarded.client.post(url, headers=bearer(tiers.idp.token("alice")))
    assert r.status_code == 200 and r.json()["changed"] is False


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"query": {"pagination": {"skip": 1e300 * 1e300}}}, "skip"),
        ({"query": {"pagination": {"limit": True}}}, "limit"),
        ({"query": {"testMode": "maybe"}}, "testMode"),
        ({"query": {"requestParameters": {"referenceName": ["22"], "start": [1], "end": [9]}}},
         "referenceName"),
        ({"query": {"requestParameters": {"geneId": {"x": 1}}}}, "geneId"),
        ({"query": {"requestParameters": {"aminoacidChange": "p.()"}}}, "aminoacidChange"),
        ({"query": {"requestParameters": {"referenceName": "22", "start": [20000427],
                                          "referenceBases": "N" * 5000, "alternateBases": "T"}}},
         "referenceBases"),
        ({"query": {"requestParameters": {"referenceName": "22", "start": [1],
                                          "mateName": "X"}}}, "mateName"),
        ({"query": {"filters": [{"id": ["HP:0001250"]}]}}, "filter"),
    ],
)  # fmt: skip
def test_odd_values_are_refused_not_guessed(world, raw, message):
    raw = {"meta": {"apiVersion": "v2.0"}, **raw}
    r = world.client.post(BASE + "/g_variants", content=json.dumps(raw, allow_nan=True))
    assert r.status_code == 400, r.text
    assert message in check(r.json(), 400)["error"]["errorMessage"]


def test_test_mode_false_is_false(world):
    raw = body({"referenceName": "22", "start": [0], "end": [9]})
    raw["query"]["testMode"] = "false"
    r = world.client.post(BASE + "/g_variants", json=raw)
    assert r.status_code == 200
    assert r.json()["meta"]["receivedRequestSummary"].get("testMode", False) is False


def test_variant_length_bounds_filter_by_span(world):
    """variantMinLength/variantMaxLength bound the span on the reference (end − start)."""
    q = {"referenceName": "22", "start": [20000000], "end": [21000000], "variantType": "DEL"}
    doc = world.ask("GET", f"/datasets/{C22}/g_variants", q, granularity="record", limit=1000)
    spans = [
        r["variation"]["location"]["interval"]["end"]["value"]
        - r["variation"]["location"]["interval"]["start"]["value"]
        for r in records(doc)
    ]
    assert spans and max(spans) > 2
    q2 = {**q, "variantMinLength": 3}
    doc = world.ask("GET", f"/datasets/{C22}/g_variants", q2, granularity="count")
    assert doc["responseSummary"]["numTotalResults"] == sum(1 for s in spans if s >= 3)
