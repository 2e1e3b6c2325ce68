"""Helpers of the Beacon API tests: seeded sample metadata, Beacon requests (GET and POST forms
of the same query) and validation of responses against the official schemas.

Truth comes from tests/beacon_truth.py (an independent reading of the VCFs with pysam).
"""

from __future__ import annotations

import random
from pathlib import Path

from sandgrain.beacon import schemas

BASE = "/api/beacon"

# -- sample metadata -------------------------------------------------------------------------------
SEXES = {"male": "NCIT:C20197", "female": "NCIT:C16576"}
DISEASES = [("NCIT:C3117", "Hypertension"), ("NCIT:C2985", "Diabetes Mellitus")]
PHENOTYPES = [
    ("HP:0001250", "Seizure"),
    ("HP:0001513", "Obesity"),
    ("HP:0002315", "Headache"),
    ("HP:0000365", "Hearing impairment"),
]


def write_individuals(samples: list[str], path: Path, seed: int = 5) -> dict[str, set[str]]:
    """A seeded TSV describing most samples; returns sample → its ontology term ids."""
    rng = random.Random(seed)
    terms: dict[str, set[str]] = {s: set() for s in samples}
    lines = ["id\tsex\tdiseases\tphenotypicFeatures"]
    for s in samples:
        if rng.random() < 0.06:
            continue  # undescribed: no terms at all
        sex = rng.choice(list(SEXES))
        diseases = [d for d in DISEASES if rng.random() < 0.3]
        features = [p for p in PHENOTYPES if rng.random() < 0.35]
        terms[s] = {SEXES[sex]} | {d[0] for d in diseases} | {p[0] for p in features}
        lines.append(
            "\t".join(
                [
                    s,
                    sex,
                    ";".join(f"{c}|{label}" for c, label in diseases),
                    ";".join(f"{c}|{label}" for c, label in features),
                ]
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return terms


# -- requests and validation -----------------------------------------------------------------------
def body(
    params: dict | None = None,
    *,
    granularity: str | None = None,
    filters: list | None = None,
    skip: int | None = None,
    limit: int | None = None,
    include: str | None = None,
    schemas_: list | None = None,
) -> dict:
    """A Beacon v2 POST request body."""
    query: dict = {}
    if params:
        query["requestParameters"] = params
    if filters:
        query["filters"] = [{"id": f} for f in filters]
    if granularity:
        query["requestedGranularity"] = granularity
    if skip is not None or limit is not None:
        query["pagination"] = {"skip": skip or 0, "limit": 10 if limit is None else limit}
    if include:
        query["includeResultsetResponses"] = include
    meta: dict = {"apiVersion": "v2.0"}
    if schemas_:
        meta["requestedSchemas"] = schemas_
    return {"meta": meta, "query": query}


def get_params(
    params: dict | None = None,
    *,
    granularity: str | None = None,
    filters: list | None = None,
    skip: int | None = None,
    limit: int | None = None,
    include: str | None = None,
) -> dict:
    """The same request as GET query-string parameters (lists joined with commas)."""
    out = {}
    for k, v in (params or {}).items():
        out[k] = ",".join(map(str, v)) if isinstance(v, list) else v
    for key, value in (
        ("requestedGranularity", granularity),
        ("filters", ",".join(filters) if filters else None),
        ("skip", skip),
        ("limit", limit),
        ("includeResultsetResponses", include),
    ):
        if value is not None:
            out[key] = value
    return out


MODEL = {
    "genomicVariant": "genomicVariations",
    "individual": "individuals",
    "dataset": "datasets",
    "cohort": "cohorts",
    "biosample": "biosamples",
    "run": "runs",
    "analysis": "analyses",
}


def check(doc: dict, status: int = 200) -> dict:
    """Validate a Beacon response against its framework schema and each record against its
    default-model schema; return the document."""
    if status >= 400:
        schemas.validate("beaconErrorResponse", doc)
        assert doc["error"]["errorCode"] == status
        assert "response" not in doc and "responseSummary" not in doc
        return doc
    assert status == 200, doc
    granularity = doc["meta"]["returnedGranularity"]
    response = doc.get("response", {})
    entity = doc["meta"]["returnedSchemas"][0]["entityType"]
    if "collections" in response:
        schemas.validate("beaconCollectionsResponse", doc)
        records = response["collections"]
    elif granularity == "record":
        schemas.validate("beaconResultsetsResponse", doc)
        records = [r for s in response["resultSets"] for r in s["results"]]
    elif granularity == "count":
        schemas.validate("beaconCountResponse", doc)
        assert not any(s.get("results") for s in response.get("resultSets", []))
        records = []
    else:
        schemas.validate("beaconBooleanResponse", doc)
        assert "numTotalResults" not in doc["responseSummary"] and "response" not in doc
        records = []
    for record in records:
        schemas.validate(MODEL[entity], record)
    return doc


def sets(doc: dict) -> dict[str, dict]:
    """Result sets by dataset id."""
    return {s["id"]: s for s in doc.get("response", {}).get("resultSets", [])}


def records(doc: dict) -> list[dict]:
    return [r for s in doc.get("response", {}).get("resultSets", []) for r in s["results"]]


def record_key(record: dict) -> tuple:
    v = record["variation"]
    start = v["location"]["interval"]["start"]["value"]
    alt = (record.get("info") or {}).get("vcfAlternateAllele", v["alternateBases"])
    return (start, v["referenceBases"], alt)
