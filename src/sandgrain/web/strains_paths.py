"""The Path Beacon's routes under ``/api/v1/strains``: nearest strains for new samples.

``POST /api/v1/strains/nearest``
    body ``{"collections": ["ncov", …], "fasta": ">s1\\nACGT…", "k": 10, "max_distance": null,
    "distance": "covered", "qc": ["good", "mediocre", "bad"]}`` (or ``"mutations":
    "C241T,A23403G"`` instead of ``fasta``): one answer per query genome, as ``sandgrain
    strains nearest`` prints them, with provenance. The body is read only up to
    :data:`MAX_BODY` bytes (413 beyond, before parsing); at most :data:`MAX_API_QUERIES` query
    genomes (400).
``GET /api/v1/strains/{collection}/nearest?mutations=C241T,A23403G&k=10``
    the same for a mutation list, on one collection.

Who sees what: collections of the app's store only (a request cannot name another store); a
``Authorization: Bearer`` token is verified as the Beacon verifies it (its issuers, its visas);
anonymous callers see public collections, and registered or controlled ones contribute counts
only (:mod:`sandgrain.strains.access`). Searches run in the server's worker threads, on the
collections' index partitions kept in memory between requests.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from ..errors import InputError, SandgrainError
from ..strains.access import Caller
from ..strains.collection import Collection
from ..strains.query import read_fasta_text
from .common import API_PREFIX, PROBLEM_RESPONSES
from .models import NAME_PATTERN

__all__ = ["router"]

router = APIRouter(prefix=f"{API_PREFIX}/strains", tags=["strains"], responses=PROBLEM_RESPONSES)

#: Largest request body (bytes): about 60 SARS-CoV-2 genomes of FASTA.
MAX_BODY = 2_000_000
#: Most query genomes in one request.
MAX_API_QUERIES = 50
MAX_COLLECTIONS = 20


class RequestTooLarge(SandgrainError):
    http_status = 413
    title = "Payload Too Large"


async def _json_body(request: Request) -> dict:
    declared = request.headers.get("content-length", "")
    too_large = RequestTooLarge(f"the request body is larger than {MAX_BODY:,} bytes")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
    try:
        doc = json.loads(b"".join(chunks) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InputError("the request body is not JSON") from None
    if not isinstance(doc, dict):
        raise InputError("the request body is a JSON object")
    return doc


def caller_of(request: Request) -> Caller:
    """The caller behind the request's bearer token (verified as the Beacon does), or anonymous."""
    header = request.headers.get("authorization")
    if not header or not header.strip():
        return Caller()
    from .beacon import service

    principal = service(request).principal(_beacon_call(request))
    return Caller(
        subject=principal.subject,
        authenticated=principal.authenticated,
        granted=frozenset(principal.granted_datasets),
    )


def _beacon_call(request: Request):
    from .beacon import _call

    return _call(request)


def _int(doc: dict, name: str, default, lo: int, hi: int) -> int | None:
    value = doc.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(f"{name} is a whole number from {lo} to {hi:,}, not {value!r}")
    return value


def _nearest(store, caller: Caller, doc: dict) -> dict[str, Any]:
    from ..strains.nearest import nearest, nearest_provenance
    from ..strains.query import calls_from_mutations, calls_from_sequences

    unknown = set(doc) - {
        "collections",
        "fasta",
        "mutations",
        "k",
        "max_distance",
        "distance",
        "qc",
    }
    if unknown:
        raise InputError(f"unknown field {sorted(unknown)[0]!r}")
    names = doc.get("collections")
    if (
        not isinstance(names, list)
        or not names
        or len(names) > MAX_COLLECTIONS
        or not all(isinstance(n, str) and len(n) <= 200 for n in names)
    ):
        raise InputError(f"collections is a list of 1 to {MAX_COLLECTIONS} collection names")
    colls = [Collection.open(store, n) for n in names]
    fasta, mutations = doc.get("fasta"), doc.get("mutations")
    if (fasta is None) == (mutations is None):
        raise InputError("give the query as fasta (text) or as mutations (one of them)")
    if fasta is not None:
        if not isinstance(fasta, str):
            raise InputError("fasta is the text of a FASTA file")
        records = list(read_fasta_text(fasta, limit=MAX_API_QUERIES))
        queries = list(calls_from_sequences(colls[0], records))
    else:
        if not isinstance(mutations, str):
            raise InputError("mutations is text, e.g. 'C241T,A23403G'")
        queries = [calls_from_mutations(mutations, colls[0].reference())]
    qc = doc.get("qc", ["good", "mediocre", "bad"])
    if not isinstance(qc, list) or not all(isinstance(s, str) for s in qc):
        raise InputError("qc is a list of QC statuses")
    params = {
        "k": _int(doc, "k", 10, 1, 1000),
        "max_distance": _int(doc, "max_distance", None, 0, 1_000_000),
        "metric": doc.get("distance", "covered"),
        "qc": qc,
    }
    if not isinstance(params["metric"], str):
        raise InputError("distance is covered or nextclade")
    answers = nearest(store, colls, queries, caller=caller, **params)
    prov = nearest_provenance(colls, {**params, "queries": len(queries)})
    return {"answers": answers, "provenance": prov}


@router.post("/nearest")
async def nearest_post(request: Request) -> dict[str, Any]:
    """The k nearest genomes of each query (FASTA text or a mutation list), exactly, over the
    collections named; neighbours with distance, covered length, shared and private mutations,
    date and country."""
    doc = await _json_body(request)
    caller = caller_of(request)
    return await run_in_threadpool(_nearest, request.app.state.store, caller, doc)


@router.get("/{collection}/nearest")
async def nearest_get(
    request: Request,
    collection: str = Path(..., pattern=NAME_PATTERN, max_length=200),
    mutations: str = Query(..., max_length=20_000, description="e.g. C241T,A23403G"),
    k: int = Query(10, ge=1, le=1000),
    max_distance: int | None = Query(None, ge=0),
    distance: str = Query("covered", pattern="^(covered|nextclade)$"),
) -> dict[str, Any]:
    """The k nearest genomes of one collection to a mutation list."""
    doc = {
        "collections": [collection],
        "mutations": mutations,
        "k": k,
        "max_distance": max_distance,
        "distance": distance,
    }
    caller = caller_of(request)
    return await run_in_threadpool(_nearest, request.app.state.store, caller, doc)
