"""Beacon v2 documents against the official v2.1.1 schemas, resolved offline.

Every envelope (each granularity and includeResultsetResponses mode, each collection and
informational endpoint, errors) and every record converter is validated against the spec's own
JSON schemas; broken documents are shown to fail, so a pass means something; and the schema
registry is shown never to touch the network.
"""

from __future__ import annotations

import copy
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DATA
from jsonschema import Draft202012Validator

from sandgrain.beacon import records as rc
from sandgrain.beacon import responses as r
from sandgrain.beacon import schemas
from sandgrain.beacon.errors import SchemaUnavailableError, SchemaValidationError
from sandgrain.errors import InputError

SPEC = DATA / "beacon-v2-schemas"
VCF_1KG = DATA / "variants/1000g-chr1-10177-174799-2504samples.annotated.vcf.gz"
VCF_22 = DATA / "variants/1000g-chr22-20-21M-191samples.vcf"

pytestmark = pytest.mark.skipif(not SPEC.is_dir(), reason=f"Beacon spec not found at {SPEC}")


def check(name: str, doc) -> None:
    schemas.validate(name, doc, SPEC)


def fails(name: str, doc) -> list[str]:
    found = schemas.errors(name, doc, SPEC)
    assert found, f"a broken {name} document passed validation"
    return found


# -- realistic rows, in the engine's formats ----------------------------------------------------

SNP = {
    "dataset": "1kg-chr1",
    "variant_id": "1-69428-T-G",
    "chrom": "1",
    "start0": 69427,
    "end0": 69428,
    "ref": "T",
    "alt": "G",
    "variant_type": "SNP",
    "ids": ["rs140739101"],
    "ac": 95,
    "an": 5008,
    "af": 95 / 5008,
    "carriers": 93,
    "hom": 2,
    "genes": ["OR4F5"],
    "aa_changes": ["F113C", "p.Phe113Cys"],
    "effects": ["missense_variant"],
    "assembly": "GRCh37",
}
SNP_RECORD = {
    **SNP,
    "carrier_ids": ["HG00096", "HG00097", "NA12878"],
    "carrier_dosage": [1, 2, 1],
}
INSERTION = {
    **SNP,
    "variant_id": "1-10177-A-AC",
    "start0": 10176,
    "end0": 10177,
    "ref": "A",
    "alt": "AC",
    "variant_type": "INS",
    "ids": ["rs367896724"],
    "ac": 2130,
    "af": 2130 / 5008,
    "carriers": 1900,
    "hom": 230,
    "genes": ["DDX11L1", "LOC102725121"],
    "aa_changes": [],
    "effects": ["upstream_gene_variant&intron_variant"],
}
DELETION_SV = {
    "dataset": "1kg-chr22",
    "variant_id": "22-20100000-h0123456789abcdef",
    "chrom": "22",
    "start0": 20099999,
    "end0": 20105000,
    "ref": "G",
    "alt": "<DEL>",
    "variant_type": "DEL",
    "ids": [],
    "ac": 3,
    "an": 382,
    "af": 3 / 382,
    "carriers": 3,
    "hom": 0,
    "genes": [],
    "aa_changes": [],
    "effects": [],
    "assembly": "GRCh37",
}
FEMALE = {"id": "NCIT:C16576", "label": "female"}
MALE = {"id": "NCIT:C20197", "label": "male"}
INDIVIDUALS = [
    {
        "dataset": "1kg-chr1",
        "id": "HG00096",
        "sex": MALE,
        "ethnicity": {"id": "NCIT:C43851", "label": "European"},
        "geographic_origin": {"id": "GAZ:00002641", "label": "England"},
        "diseases": [{"id": "MONDO:0005148", "label": "type 2 diabetes mellitus"}],
        "phenotypic_features": [{"id": "HP:0001250", "label": "Seizure"}],
    },
    {
        "dataset": "1kg-chr1",
        "id": "HG00097",
        "sex": FEMALE,
        "ethnicity": None,
        "geographic_origin": None,
        "diseases": [],
        "phenotypic_features": [],
    },
    {"dataset": "1kg-chr1", "id": "NA12878", "sex": None},
]
DATASET = {
    "id": "1kg-chr1",
    "name": "1000 Genomes chr1:10177-174799",
    "description": "2,504 samples of the 1000 Genomes Project phase 3",
    "assembly": "GRCh37",
    "access": "public",
    "n_variants": 2130,
    "n_individuals": 2504,
    "created": "2025-01-02T03:04:05+00:00",
    "updated": "2025-01-03T00:00:00",
    "version": 2,
    "provenance": {"software": "sandgrain"},
    "store": "file:///tmp/store",
}


@dataclass
class Manifest:  # datasets may also come as objects (the lead's BeaconDataset)
    id: str
    name: str
    description: str
    assembly: str
    access: str
    n_variants: int
    n_individuals: int
    created: str
    updated: str
    version: str


# -- the registry --------------------------------------------------------------------------------


def test_every_spec_file_is_registered_under_its_file_uri_and_github_url():
    registry = schemas.registry(SPEC.resolve())
    files = list(SPEC.rglob("*.json"))
    assert len(files) > 100
    for file in files:
        relative = file.relative_to(SPEC).as_posix()
        assert registry.contents(file.resolve().as_uri()) is not None
        assert registry.contents(schemas.GITHUB_BASE + relative) is not None


def test_misplaced_info_json_is_served_where_the_models_look_for_it():
    registry = schemas.registry(SPEC.resolve())
    missing = SPEC.resolve() / "models/json/beacon-v2-default-model/common/info.json"
    assert not missing.exists()
    assert registry.contents(missing.as_uri())["title"] == "Info"
    # and the model schemas that refer to it resolve (they would raise otherwise)
    check("individuals", {"id": "x", "sex": FEMALE, "info": {"a": 1}})
    check("datasets", {"id": "x", "name": "y", "info": {}})
    assert any("info" in e for e in fails("datasets", {"id": "x", "name": "y", "info": []}))


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection or resolve a name fails the test loudly."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    schemas.registry.cache_clear()
    schemas._validator.cache_clear()
    yield attempts
    schemas.registry.cache_clear()
    schemas._validator.cache_clear()


def test_validation_never_uses_the_network(no_network):
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("raw.githubusercontent.com", 443))
    no_network.clear()  # the fixture bites; from here on nothing may try
    # every schema, exercised with a document that walks its references
    docs = {
        "beaconResultsetsResponse": _query("record", "ALL"),
        "genomicVariations": rc.variant_record(SNP_RECORD),
        "individuals": rc.individual_record(INDIVIDUALS[0]),
        "datasets": rc.dataset_record(DATASET),
        "cohorts": rc.cohort_record(DATASET, INDIVIDUALS),
        "beaconConfigurationResponse": r.configuration_response(),
        "beaconMapResponse": r.map_response("http://127.0.0.1/api/beacon"),
        "beaconFilteringTermsResponse": r.filtering_terms_response([FEMALE]),
    }
    for name in schemas.SCHEMA_PATHS:
        schemas.errors(name, docs.get(name, {}), SPEC)
    for name, doc in docs.items():
        check(name, doc)
    assert no_network == []


def test_a_reference_outside_the_spec_is_refused_not_fetched(no_network):
    # the non-dereferenced genomicVariations schema points at VRS on w3id.org
    source = SPEC / "models/json/beacon-v2-default-model/genomicVariations/defaultSchema.json"
    validator = Draft202012Validator(
        {"$ref": source.resolve().as_uri()}, registry=schemas.registry(SPEC.resolve())
    )
    doc = rc.variant_record(SNP)
    with pytest.raises(Exception, match="w3id.org"):
        list(validator.iter_errors(doc))
    assert no_network == []
    # the dereferenced copy, which validator_for uses, needs nothing from outside
    check("genomicVariations", doc)


def test_validators_are_cached_and_names_have_aliases():
    assert schemas.validator_for("beaconCountResponse", SPEC) is schemas.validator_for(
        "beaconCountResponse", SPEC
    )
    assert schemas.validator_for("serviceInfo", SPEC) is schemas.validator_for(
        "ga4gh-service-info", SPEC
    )
    with pytest.raises(KeyError, match="unknown Beacon schema"):
        schemas.validator_for("beaconNopeResponse", SPEC)


def test_spec_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(schemas.ENV_VAR, str(SPEC))
    assert schemas.schema_dir() == SPEC.resolve()
    monkeypatch.setenv(schemas.ENV_VAR, str(tmp_path))
    assert not schemas.available()
    with pytest.raises(SchemaUnavailableError, match=schemas.ENV_VAR):
        schemas.validator_for("beaconBooleanResponse")
    monkeypatch.delenv(schemas.ENV_VAR)
    monkeypatch.setenv("SANDGRAIN_TEST_DATA", str(DATA))
    assert schemas.schema_dir() == SPEC.resolve()


def test_responses_are_built_without_the_spec(monkeypatch, tmp_path):
    monkeypatch.setenv(schemas.ENV_VAR, str(tmp_path / "nowhere"))
    doc = r.query_response(r.meta(granularity="count"), [r.result_set("d", count=3)])
    assert doc["responseSummary"] == {"exists": True, "numTotalResults": 3}
    with pytest.raises(SchemaUnavailableError):
        schemas.validate("beaconCountResponse", doc)


def test_validate_raises_with_a_readable_list_of_errors():
    doc = _query("count", "ALL")
    del doc["meta"]["beaconId"]
    doc["responseSummary"]["exists"] = "yes"
    with pytest.raises(SchemaValidationError) as info:
        check("beaconCountResponse", doc)
    errors = info.value.errors
    assert "meta: 'beaconId' is a required property" in errors
    assert "responseSummary/exists: 'yes' is not of type 'boolean'" in errors
    assert "2 error(s) against beaconCountResponse" in str(info.value)


# -- broken documents fail -------------------------------------------------------------------------


def _broken(doc, path: str, value=KeyError):
    """A copy of *doc* with the item at *path* (``a/0/b``) deleted or replaced by *value*."""
    doc = copy.deepcopy(doc)
    *head, last = [int(p) if p.isdigit() else p for p in path.split("/")]
    target = doc
    for key in head:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


GOOD = {
    "boolean": lambda: _query("boolean", "HIT"),
    "count": lambda: _query("count", "HIT"),
    "record": lambda: _query("record", "ALL"),
    "datasets": lambda: _datasets(),
    "info": r.info_response,
    "service": r.service_info,
    "conf": r.configuration_response,
    "map": lambda: r.map_response("http://h/b"),
    "types": r.entry_types_response,
    "terms": lambda: r.filtering_terms_response([FEMALE]),
    "error": lambda: r.error_response(400, "bad"),
    "variant": lambda: rc.variant_record(SNP_RECORD),
    "individual": lambda: rc.individual_record(INDIVIDUALS[0]),
    "dataset": lambda: rc.dataset_record(DATASET),
    "cohort": lambda: rc.cohort_record(DATASET, INDIVIDUALS),
    "request": lambda: _request_body(),
}
SUMMARY = "meta/receivedRequestSummary"
LOCATION = "variation/location"
BROKEN = [
    ("beaconBooleanResponse", "boolean", "responseSummary/exists", 1),
    ("beaconBooleanResponse", "boolean", "meta/returnedGranularity", "maybe"),
    ("beaconCountResponse", "count", "responseSummary/numTotalResults", KeyError),
    ("beaconCountResponse", "count", "responseSummary/numTotalResults", -1),
    ("beaconResultsetsResponse", "record", "response/resultSets/0/resultsCount", KeyError),
    ("beaconResultsetsResponse", "record", f"{SUMMARY}/pagination/skip", -5),
    ("beaconResultsetsResponse", "record", f"{SUMMARY}/requestParameters", {"g_variant": "1"}),
    ("beaconCollectionsResponse", "datasets", "response/collections", {"a": 1}),
    ("beaconInfoResponse", "info", "response/environment", "production"),
    ("beaconInfoResponse", "info", "response/organization/name", KeyError),
    ("ga4gh-service-info", "service", "type/artifact", KeyError),
    ("ga4gh-service-info", "service", "createdAt", "yesterday"),
    ("beaconConfigurationResponse", "conf", "response/maturityAttributes/productionStatus", "X"),
    (
        "beaconConfigurationResponse",
        "conf",
        "response/entryTypes/individual/defaultSchema",
        KeyError,
    ),
    ("beaconMapResponse", "map", "response/endpointSets/individual/rootUrl", KeyError),
    ("beaconEntryTypesResponse", "types", "response/entryTypes", {}),
    ("beaconFilteringTermsResponse", "terms", "response/filteringTerms/0/type", KeyError),
    ("beaconErrorResponse", "error", "error/errorCode", "400"),
    ("genomicVariations", "variant", f"{LOCATION}/interval/start", 69427),
    ("genomicVariations", "variant", f"{LOCATION}/sequence_id", "chr1"),
    ("genomicVariations", "variant", "variation/alternateBases", "<DEL>"),
    ("genomicVariations", "variant", "caseLevelData/0/zygosity/id", "heterozygous"),
    ("genomicVariations", "variant", "caseLevelData/0/biosampleId", KeyError),
    ("genomicVariations", "variant", "frequencyInPopulations/0/frequencies/0/alleleFrequency", "1"),
    ("individuals", "individual", "sex", KeyError),
    ("individuals", "individual", "diseases/0/diseaseCode/id", "diabetes"),
    ("datasets", "dataset", "createDateTime", "2 Jan 2025"),
    ("cohorts", "cohort", "cohortType", "everyone"),
    ("cohorts", "cohort", "collectionEvents/0/eventGenders/availability", KeyError),
    ("beaconRequestBody", "request", "meta/apiVersion", KeyError),
]


@pytest.mark.parametrize(("name", "good", "path", "value"), BROKEN)
def test_broken_documents_fail(name, good, path, value):
    doc = GOOD[good]()
    check(name, doc)
    fails(name, _broken(doc, path, value))


# -- query responses: every granularity × includeResultsetResponses --------------------------------


def _sets(entry: str = "genomicVariant", granularity: str = "record") -> list[dict]:
    if entry == "genomicVariant":
        hit = [rc.variant_record(SNP_RECORD), rc.variant_record(INSERTION)]
    else:
        hit = [rc.individual_record(i) for i in INDIVIDUALS]
    return [
        r.result_set("1kg-chr1", count=len(hit), results=hit if granularity == "record" else ()),
        r.result_set("1kg-chr22", count=0),
        r.result_set("controlled-ds", count=r.CountReport(5, (5,), "imprecise", True)),
    ]


def _query(granularity: str, include: str, entry: str = "genomicVariant") -> dict:
    params = (
        {"referenceName": "1", "start": [69427], "alternateBases": "G", "referenceBases": "T"}
        if entry == "genomicVariant"
        else None
    )
    m = r.meta(
        granularity=granularity,
        entry_type=entry,
        requested_granularity="record",
        skip=0,
        limit=10,
        filters=[{"id": "NCIT:C16576", "scope": "individual"}, "HP:0001250"],
        request_parameters=params,
        include_resultset_responses=include,
    )
    return r.query_response(m, _sets(entry, granularity), include=include)


@pytest.mark.parametrize("entry", ["genomicVariant", "individual"])
@pytest.mark.parametrize("include", r.INCLUDE_MODES)
@pytest.mark.parametrize("granularity", r.GRANULARITIES)
def test_query_responses_validate(granularity, include, entry):
    doc = _query(granularity, include, entry)
    assert doc["meta"]["returnedGranularity"] == granularity
    assert doc["meta"]["returnedSchemas"] == [r.schema_reference(entry)]
    summary = doc["responseSummary"]
    assert summary["exists"] is True
    if granularity == "boolean":
        check("beaconBooleanResponse", doc)
        assert set(summary) == {"exists"} and "response" not in doc
        return
    # the summary covers every dataset, whatever the sets returned
    assert summary["numTotalResults"] == (2 if entry == "genomicVariant" else 3) + 5
    assert summary["countPrecision"] == "imprecise"
    check("beaconCountResponse", doc)
    check("beaconResultsetsResponse", doc)
    sets = doc["response"]["resultSets"]
    expected = {
        "HIT": ["1kg-chr1", "controlled-ds"],
        "MISS": ["1kg-chr22"],
        "ALL": ["1kg-chr1", "1kg-chr22", "controlled-ds"],
        "NONE": [],
    }[include]
    assert [s["id"] for s in sets] == expected
    model = "genomicVariations" if entry == "genomicVariant" else "individuals"
    for s in sets:
        assert s["setType"] == "dataset"
        if granularity == "count":
            assert s["results"] == []
        for record in s["results"]:
            check(model, record)
    if granularity == "record" and include in ("HIT", "ALL"):
        assert len(sets[0]["results"]) == sets[0]["resultsCount"]


def test_no_hit_anywhere():
    m = r.meta(granularity="count")
    doc = r.query_response(m, [r.result_set("a", count=0), r.result_set("b", count=0)])
    check("beaconCountResponse", doc)
    assert doc["responseSummary"] == {"exists": False, "numTotalResults": 0}
    assert doc["response"]["resultSets"] == []  # HIT: none
    doc = r.query_response(r.meta(granularity="boolean"), [])
    check("beaconBooleanResponse", doc)
    assert doc["responseSummary"] == {"exists": False}


def test_meta_reports_the_request_as_understood():
    m = r.meta(
        granularity="count",
        requested_granularity="record",
        request_parameters={"referenceName": "1", "start": [100], "end": None},
        filters=[{"id": "NCIT:C16576"}],
        requested_schemas=["ga4gh-beacon-variant-v2.1.0"],
        skip=20,
        limit=5,
        test_mode=True,
        beacon_id="au.org.example.beacon",
    )
    summary = m["receivedRequestSummary"]
    # v2.1.1 wants an object per key of requestParameters: flat parameters are grouped
    assert summary["requestParameters"] == {"g_variant": {"referenceName": "1", "start": [100]}}
    assert summary["filters"] == ["NCIT:C16576"]
    assert summary["pagination"] == {"skip": 20, "limit": 5}
    assert summary["requestedGranularity"] == "record"
    assert summary["requestedSchemas"] == [
        {"entityType": "genomicVariant", "schema": "ga4gh-beacon-variant-v2.1.0"}
    ]
    assert m["beaconId"] == "au.org.example.beacon" and m["testMode"] is True
    assert m["apiVersion"] == r.API_VERSION
    check("beaconBooleanResponse", r.boolean_response(m, True))
    nested = r.meta(request_parameters={"g_variant": {"referenceName": "1"}})
    assert nested["receivedRequestSummary"]["requestParameters"] == {
        "g_variant": {"referenceName": "1"}
    }
    with pytest.raises(InputError, match="granularity"):
        r.meta(granularity="full")
    with pytest.raises(InputError, match="includeResultsetResponses"):
        r.meta(include_resultset_responses="SOME")
    with pytest.raises(InputError, match="entry type"):
        r.meta(entry_type="planet")


def test_select_resultsets():
    sets = [r.result_set(n, count=c) for n, c in (("a", 2), ("b", 0), ("c", 1))]
    assert [s["id"] for s in r.select_resultsets(sets, "HIT")] == ["a", "c"]
    assert [s["id"] for s in r.select_resultsets(sets, "MISS")] == ["b"]
    assert [s["id"] for s in r.select_resultsets(sets, "ALL")] == ["a", "b", "c"]
    assert r.select_resultsets(sets, "NONE") == []
    with pytest.raises(InputError):
        r.select_resultsets(sets, "hit")


def test_adjusted_counts():
    """A count blurred by the security policy (``protection.protect_count``) carries its
    precision fields; an exact one carries none."""
    assert r.CountReport(12).fields() == {}
    low = r.CountReport(5, (5,), "imprecise", True)
    assert low.count == 5 and low.exists
    assert low.fields() == {"countPrecision": "imprecise", "countAdjustedTo": [5]}
    rounded = r.CountReport(20, (10,), "rounded", True)
    assert rounded.fields() == {"countPrecision": "rounded", "countAdjustedTo": [10]}
    assert not r.CountReport(0).exists
    # the adjusted fields ride on the summary and the sets, and still validate
    m = r.meta(granularity="count", include_resultset_responses="ALL")
    doc = r.count_response(m, low, result_sets=[r.result_set("d", count=low)])
    check("beaconCountResponse", doc)
    check("beaconResultsetsResponse", doc)
    assert doc["responseSummary"]["countAdjustedTo"] == [5]
    assert doc["response"]["resultSets"][0]["countPrecision"] == "imprecise"
    for doc in (r.count_response(m, 7), r.count_response(m, 0)):
        check("beaconCountResponse", doc)
        assert "countPrecision" not in doc["responseSummary"]


def test_handovers_and_info_are_carried():
    handover = {
        "handoverType": {"id": "EDAM:3016", "label": "VCF"},
        "url": "https://example.org/vcf/1kg-chr1.vcf.gz",
        "note": "the dataset's VCF",
    }
    s = r.result_set("1kg-chr1", count=1, results=[rc.variant_record(SNP)], handovers=[handover])
    doc = r.resultsets_response(
        r.meta(granularity="record"), [s], info={"queryTimeMs": 3}, handovers=[handover]
    )
    check("beaconResultsetsResponse", doc)
    assert doc["beaconHandovers"][0]["url"].endswith(".vcf.gz")
    assert doc["response"]["resultSets"][0]["resultsHandovers"] == [handover]
    broken = _broken(doc, "beaconHandovers/0/handoverType/id", "VCF")
    fails("beaconResultsetsResponse", broken)


# -- collections and informational endpoints ------------------------------------------------------


def _datasets() -> dict:
    m = r.meta(granularity="record", entry_type="dataset")
    return r.collections_response(m, [rc.dataset_record(DATASET), rc.dataset_record({"id": "x"})])


def test_datasets_and_cohorts_collections():
    doc = _datasets()
    check("beaconCollectionsResponse", doc)
    assert doc["responseSummary"] == {"exists": True, "numTotalResults": 2}
    for record in doc["response"]["collections"]:
        check("datasets", record)
    m = r.meta(granularity="record", entry_type="cohort")
    doc = r.collections_response(m, [rc.cohort_record(DATASET, INDIVIDUALS)])
    check("beaconCollectionsResponse", doc)
    check("cohorts", doc["response"]["collections"][0])
    assert doc["meta"]["returnedSchemas"] == [
        {"entityType": "cohort", "schema": "ga4gh-beacon-cohort-v2.0.0"}
    ]
    empty = r.collections_response(m, [])
    check("beaconCollectionsResponse", empty)
    assert empty["responseSummary"] == {"exists": False, "numTotalResults": 0}


def test_info_and_service_info():
    identity = r.BeaconIdentity(
        id="org.example.beacon",
        name="Example Beacon",
        environment="test",
        organization_url="https://example.org",
        contact_url="mailto:beacon@example.org",
        documentation_url="https://example.org/docs",
        created="2025-01-01T00:00:00",
        updated="2025-02-01T12:00:00+01:00",
        version="1.2.3",
    )
    for doc in (r.info_response(), r.info_response(identity), r.info_response({"id": "a.b"})):
        check("beaconInfoResponse", doc)
    info = r.info_response(identity)
    assert info["meta"] == {
        "beaconId": "org.example.beacon",
        "apiVersion": r.API_VERSION,
        "returnedSchemas": [],
    }
    assert info["response"]["organization"]["welcomeUrl"] == "https://example.org"
    si = r.service_info(identity)
    check("ga4gh-service-info", si)
    assert si["type"] == {"group": "org.ga4gh", "artifact": "beacon", "version": r.API_VERSION}
    assert si["createdAt"] == "2025-01-01T00:00:00Z"
    assert si["updatedAt"] == "2025-02-01T12:00:00+01:00"
    assert si["version"] == "1.2.3"
    plain = r.service_info(base_url="http://127.0.0.1:8000/api/beacon")
    check("ga4gh-service-info", plain)
    assert plain["organization"]["url"] == "http://127.0.0.1:8000/api/beacon"


def test_configuration_entry_types_and_map():
    conf = r.configuration_response(
        r.BeaconIdentity(environment="dev"),
        security_levels=["PUBLIC", "CONTROLLED"],
        default_granularity="count",
    )
    check("beaconConfigurationResponse", conf)
    response = conf["response"]
    assert response["maturityAttributes"] == {"productionStatus": "DEV"}
    assert response["securityAttributes"]["securityLevels"] == ["PUBLIC", "CONTROLLED"]
    assert set(response["entryTypes"]) == {
        "genomicVariant", "individual", "biosample", "run", "analysis", "dataset", "cohort",
    }  # fmt: skip
    with pytest.raises(InputError):
        r.configuration_response(security_levels=["SECRET"])

    types = r.entry_types_response()
    check("beaconEntryTypesResponse", types)
    assert types["response"]["entryTypes"]["dataset"]["aCollectionOf"][0]["id"] == "genomicVariant"
    check("beaconEntryTypesResponse", r.entry_types_response(["genomicVariant"]))

    doc = r.map_response("http://127.0.0.1:8000/api/beacon/")
    check("beaconMapResponse", doc)
    sets = doc["response"]["endpointSets"]
    base = "http://127.0.0.1:8000/api/beacon"
    assert sets["genomicVariant"]["rootUrl"] == f"{base}/g_variants"
    assert sets["genomicVariant"]["singleEntryUrl"] == f"{base}/g_variants/{{id}}"
    assert sets["genomicVariant"]["endpoints"]["individualLookup"] == {
        "returnedEntryType": "individual",
        "url": f"{base}/g_variants/{{id}}/individuals",
    }
    assert sets["individual"]["endpoints"]["genomicVariantLookup"]["url"] == (
        f"{base}/individuals/{{id}}/g_variants"
    )
    assert sets["individual"]["filteringTermsUrl"] == f"{base}/filtering_terms"
    assert sets["dataset"]["singleEntryUrl"] == f"{base}/datasets/{{id}}"
    assert sets["cohort"]["rootUrl"] == f"{base}/cohorts" and "singleEntryUrl" not in sets["cohort"]


def test_filtering_terms():
    terms = [FEMALE, MALE, {"id": "HP:0001250", "label": "Seizure"}, {"id": "XYZ:1"}]
    doc = r.filtering_terms_response(terms)
    check("beaconFilteringTermsResponse", doc)
    items = doc["response"]["filteringTerms"]
    assert items[0] == {
        "id": "NCIT:C16576",
        "label": "female",
        "type": "NCI Thesaurus OBO Edition",
        "scopes": ["individual"],
    }
    assert items[2]["type"] == "Human Phenotype Ontology"
    assert items[3]["type"] == "XYZ"
    prefixes = [res["nameSpacePrefix"] for res in doc["response"]["resources"]]
    assert prefixes == ["NCIT", "HP", "XYZ"]
    check("beaconFilteringTermsResponse", r.filtering_terms_response([], []))


def test_error_responses():
    doc = r.error_response(401, "a bearer token is required for dataset d")
    check("beaconErrorResponse", doc)
    assert doc["error"] == {
        "errorCode": 401,
        "errorMessage": "a bearer token is required for dataset d",
    }
    m = r.meta(granularity="record", entry_type="individual", include_resultset_responses="ALL")
    doc = r.error_response(403, "forbidden", m)
    check("beaconErrorResponse", doc)
    assert doc["meta"]["returnedSchemas"] == [r.schema_reference("individual")]


def test_request_bodies():
    check("beaconRequestBody", _request_body())
    # A flat requestParameters object, as most clients send it, is not valid v2.1.1: the
    # framework declares every value of requestParameters an object (a spec issue).
    flat = _request_body()
    flat["query"]["requestParameters"] = flat["query"]["requestParameters"]["g_variant"]
    fails("beaconRequestBody", flat)
    # the model's own g_variant parameters validate the flat form
    check("g_variantRequestParameters", flat["query"]["requestParameters"])
    fails("g_variantRequestParameters", {"referenceName": "1", "start": [-1]})


def _request_body() -> dict:
    return {
        "meta": {"apiVersion": "v2.0"},
        "query": {
            "requestParameters": {
                "g_variant": {
                    "referenceName": "1",
                    "start": [69427],
                    "referenceBases": "T",
                    "alternateBases": "G",
                    "assemblyId": "GRCh37",
                }
            },
            "filters": [{"id": "NCIT:C16576"}],
            "includeResultsetResponses": "HIT",
            "pagination": {"skip": 0, "limit": 10},
            "requestedGranularity": "record",
        },
    }


# -- record converters -----------------------------------------------------------------------------


def test_variant_record_fields():
    rec = rc.variant_record(SNP_RECORD)
    check("genomicVariations", rec)
    assert rec["variantInternalId"] == "1-69428-T-G"
    assert rec["variation"] == {
        "variantType": "SNP",
        "referenceBases": "T",
        "alternateBases": "G",
        "location": {
            "type": "SequenceLocation",
            "sequence_id": "refseq:NC_000001.10",
            "interval": {
                "type": "SequenceInterval",
                "start": {"type": "Number", "value": 69427},
                "end": {"type": "Number", "value": 69428},
            },
        },
    }
    assert rec["identifiers"]["genomicHGVSId"] == "NC_000001.10:g.69428T>G"
    assert rec["identifiers"]["variantAlternativeIds"][0]["id"] == "dbSNP:rs140739101"
    freq = rec["frequencyInPopulations"][0]["frequencies"][0]
    assert freq == {
        "population": "ALL",
        "alleleFrequency": 95 / 5008,
        "alleleCount": 95,
        "alleleNumber": 5008,
        "alleleCountHomozygous": 2,
    }
    assert rec["molecularAttributes"] == {
        "geneIds": ["OR4F5"],
        "aminoacidChanges": ["F113C"],
        "molecularEffects": [{"id": "SO:0001583", "label": "missense_variant"}],
    }
    assert [c["zygosity"]["id"] for c in rec["caseLevelData"]] == [
        "GENO:0000135",
        "GENO:0000136",
        "GENO:0000135",
    ]
    assert rec["caseLevelData"][0]["individualId"] == "HG00096"
    # without case-level detail (boolean/count datasets, or asked not to)
    assert "caseLevelData" not in rc.variant_record(SNP)
    assert "caseLevelData" not in rc.variant_record(SNP_RECORD, case_level=False)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"variant_id": "1-10177-A-AC", "ref": "A", "alt": "AC", "variant_type": "INS"},
        {"ref": "CT", "alt": "C", "end0": 69429, "variant_type": "DEL"},
        {"ref": "TG", "alt": "GA", "end0": 69429, "variant_type": "MNP"},
        {"ref": "G", "alt": "<DEL>", "end0": 70000, "variant_type": "DEL"},
        {"ref": "G", "alt": "G]17:198982]", "variant_type": "BND"},
        {"chrom": "X", "carrier_ids": ["HG00096", "HG00097"], "carrier_dosage": [1, 1]},
        {"chrom": "chrM", "carrier_ids": ["HG00096"], "carrier_dosage": [1]},
        {"chrom": "Y", "assembly": "GRCh38"},
        {"chrom": "GL000192.1"},
        {"chrom": "scaffold_7", "assembly": "CanFam3.1"},
        {"af": None, "ac": 0, "an": 0},
        {"ids": ["rs1", "COSV123", "."], "effects": ["stop_gained", "made_up_effect"]},
        {"aa_changes": ["p.Val600Glu", "p.(Arg117His)", "K23fs"], "genes": ["BRAF", "BRAF"]},
    ],
)
def test_variant_records_validate(change):
    row = {**SNP_RECORD, **change}
    row.setdefault("carrier_ids", SNP_RECORD["carrier_ids"])
    rec = rc.variant_record(row, haploid_ids=["HG00096"])
    check("genomicVariations", rec)
    location = rec["variation"]["location"]
    assert location["interval"]["start"]["value"] < location["interval"]["end"]["value"]
    if change.get("alt", "").startswith("<") or "]" in change.get("alt", ""):
        assert rec["variation"]["alternateBases"] == "N"
        assert rec["info"]["vcfAlternateAllele"] == change["alt"]
    if change.get("chrom") == "X":
        assert [c["zygosity"]["id"] for c in rec["caseLevelData"]] == [
            "GENO:0000604",  # hemizygous X-linked: HG00096 is haploid here
            "GENO:0000135",
        ]
    if change.get("chrom") == "chrM":
        assert location["sequence_id"] == "refseq:NC_012920.1"
        assert rec["caseLevelData"][0]["zygosity"]["id"] == "GENO:0000134"
    if change.get("chrom") == "Y":
        assert location["sequence_id"] == "refseq:NC_000024.10"
    if change.get("chrom") == "GL000192.1":
        assert location["sequence_id"] == "insdc:GL000192.1"
    if change.get("an") == 0:
        assert "frequencyInPopulations" not in rec
    if "aa_changes" in change:
        assert rec["molecularAttributes"]["aminoacidChanges"] == ["V600E", "R117H", "K23fs"]
        assert rec["molecularAttributes"]["geneIds"] == ["BRAF"]
    if "effects" in change:
        assert [e["id"] for e in rec["molecularAttributes"]["molecularEffects"]] == [
            "SO:0001587",
            "CUSTOM:made_up_effect",
        ]
        assert [i["id"] for i in rec["identifiers"]["variantAlternativeIds"]] == [
            "dbSNP:rs1",
            "COSV123",
        ]




def test_individual_records():
    full = rc.individual_record(INDIVIDUALS[0])
    check("individuals", full)
    assert full == {
        "id": "HG00096",
        "sex": MALE,
        "ethnicity": {"id": "NCIT:C43851", "label": "European"},
        "geographicOrigin": {"id": "GAZ:00002641", "label": "England"},
        "diseases": [{"diseaseCode": {"id": "MONDO:0005148", "label": "type 2 diabetes mellitus"}}],
        "phenotypicFeatures": [{"featureType": {"id": "HP:0001250", "label": "Seizure"}}],
    }
    for row in INDIVIDUALS[1:]:
        check("individuals", rc.individual_record(row))
    assert rc.individual_record(INDIVIDUALS[2])["sex"] == rc.UNKNOWN_SEX


def test_dataset_records():
    rec = rc.dataset_record(DATASET)
    check("datasets", rec)
    assert rec["createDateTime"] == "2025-01-02T03:04:05Z"
    assert rec["updateDateTime"] == "2025-01-03T00:00:00Z"  # naive: taken as UTC
    assert rec["version"] == "2"
    assert rec["info"] == {
        "assemblyId": "GRCh37",
        "accessLevel": "PUBLIC",
        "variantCount": 2130,
        "individualCount": 2504,
    }
    keys = Manifest.__dataclass_fields__
    obj = Manifest(**{k: str(v) if k == "version" else v for k, v in DATASET.items() if k in keys})
    assert rc.dataset_record(obj) == rec
    odd = rc.dataset_record({**DATASET, "created": "last tuesday", "updated": None})
    check("datasets", odd)
    assert "createDateTime" not in odd and "updateDateTime" not in odd


def test_cohort_records():
    rec = rc.cohort_record(DATASET, INDIVIDUALS)
    check("cohorts", rec)
    assert rec["cohortType"] == "beacon-defined" and rec["cohortSize"] == 3
    event = rec["collectionEvents"][0]
    assert event["eventGenders"] == {
        "availability": True,
        "availabilityCount": 2,
        "distribution": {"genders": {"female": 1, "male": 1}},
    }
    assert event["eventDiseases"]["distribution"] == {"diseases": {"type 2 diabetes mellitus": 1}}
    assert {"id": "OGMS:0000015", "label": "clinical history"} in rec["cohortDataTypes"]
    bare = rc.cohort_record(DATASET)
    check("cohorts", bare)
    assert bare["cohortSize"] == 2504 and "collectionEvents" not in bare


# -- real rows from the 1000 Genomes VCFs ----------------------------------------------------------


def _rows_from_vcf(path: Path, limit: int, dataset: str):
    """Engine rows of a real VCF (ingested into a scratch store), with their carriers."""
    from sandgrain.beacon.ingest import ingest
    from sandgrain.beacon.query import VariantQuery, query_variants
    from sandgrain.beacon.store import BeaconCatalog
    from sandgrain.storage import Store, scratch_dir

    with scratch_dir() as tmp:
        store = Store(str(tmp / "store"))
        ingest(store, dataset, path, assembly="GRCh37", executor="serial")
        catalog = BeaconCatalog([store])
        q = VariantQuery.from_params({"referenceName": "1" if "chr1" in path.name else "22",
                                      "start": 0, "end": 300_000_000})  # fmt: skip
        rows, skip = [], 0
        while len(rows) < limit:
            (a,) = query_variants(
                catalog, catalog.datasets(), q, skip=skip, limit=1000, carriers=True
            )
            rows.extend(a.rows)
            skip += 1000
            if skip >= a.count:
                break
    yield from rows[:limit]


@pytest.mark.skipif(not VCF_1KG.exists(), reason="1000 Genomes test VCF not found")
def test_records_from_the_annotated_1000_genomes_file_validate():
    validator = schemas.validator_for("genomicVariations", SPEC)
    rows = list(_rows_from_vcf(VCF_1KG, 2000, "1kg-chr1"))
    assert len(rows) >= 1040
    seen_effects = set()
    for row in rows:
        # case-level data in full for rare variants (validating ~90,000 carriers takes seconds)
        rec = rc.variant_record(row, case_level=row["carriers"] <= 100)
        assert not list(validator.iter_errors(rec)), row["variant_id"]
        seen_effects.update(
            e["id"] for e in rec.get("molecularAttributes", {}).get("molecularEffects", [])
        )
    # every consequence SnpEff wrote in this file has its Sequence Ontology id
    assert not any(e.startswith("CUSTOM:") for e in seen_effects)
    missense = next(x for x in rows if "missense_variant" in x["effects"])
    rec = rc.variant_record(missense)
    assert rec["molecularAttributes"]["aminoacidChanges"][0][0].isupper()
    m = r.meta(granularity="record", include_resultset_responses="ALL")
    sets = [
        r.result_set("1kg-chr1", count=len(rows), results=[rc.variant_record(x) for x in rows[:10]])
    ]
    check("beaconResultsetsResponse", r.query_response(m, sets, include="ALL"))


@pytest.mark.skipif(not VCF_22.exists(), reason="chr22 test VCF not found")
def test_records_from_the_chr22_file_with_a_structural_variant_validate():
    validator = schemas.validator_for("genomicVariations", SPEC)
    rows = list(_rows_from_vcf(VCF_22, 100_000, "1kg-chr22"))
    # the file's one <DEL> is carried by none of its 191 samples, so no query returns it: a
    # carried twin of a real row stands in for it
    assert not any(x["alt"].startswith("<") for x in rows)
    first = rows[0]
    symbolic = [dict(first, alt="<DEL>", variant_type="DEL", end0=first["start0"] + 1_500)]
    for row in symbolic + rows[:300]:
        rec = rc.variant_record(row)
        assert not list(validator.iter_errors(rec)), row["variant_id"]
    sv = rc.variant_record(symbolic[0])
    assert sv["variation"]["variantType"] == "DEL"
    interval = sv["variation"]["location"]["interval"]
    assert interval["end"]["value"] - interval["start"]["value"] > 1
