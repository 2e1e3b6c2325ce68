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
``POST /api/v1/strains/profile``
    body ``{"collections": […], "expression": "A23403G & !G25563T", "by": ["month", "country"],
    "similar": false, "qc": […]}``: the genomes that match a mutation profile, as ``sandgrain
    strains profile`` answers (:func:`~sandgrain.strains.profile.profile_search`): count,
    frequency, breakdowns, weekly histogram, similar profiles. A collection the caller may only
    count is searched on its own, without breakdowns, and adds only its floored count to
    ``counts_only``.
``POST /api/v1/strains/place``
    body ``{"collection": "ncov", "fasta": "…" | "mutations": "…", "nearest": 20}``: each query
    placed on the collection's tree by parsimony (``sandgrain strains place``), with its local
    subtree as Newick and as SVG. Only for a collection the caller may fully see (403 else); a
    collection without a tree is 404, naming the command that builds one.
``POST /api/v1/strains/project``
    body ``{"collection": "ncov", "fasta": "…" | "mutations": "…"}``: each query's coordinates
    on the collection's stored k-mer map (projected with the map's own components: the map
    never moves). Only for a collection the caller may fully see (403 else).

Who sees what: collections of the app's store only (a request cannot name another store); a
``Authorization: Bearer`` token is verified as the Beacon verifies it (its issuers, its visas);
anonymous callers see public collections, and registered or controlled ones contribute counts
only (:mod:`sandgrain.strains.access`). Searches run in the server's worker threads, on the
collections' index partitions kept in memory between requests.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from threading import Lock
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from ..errors import InputError, SandgrainError
from ..strains.access import Caller
from ..strains.collection import Collection
from ..strains.query import read_fasta_text
from .common import API_PREFIX, PROBLEM_RESPONSES, read_json_object
from .models import NAME_PATTERN

__all__ = ["router"]

router = APIRouter(prefix=f"{API_PREFIX}/strains", tags=["strains"], responses=PROBLEM_RESPONSES)

#: Largest request body (bytes): about 60 SARS-CoV-2 genomes of FASTA.
MAX_BODY = 2_000_000
#: Most query genomes in one request.
MAX_API_QUERIES = 50
MAX_COLLECTIONS = 20


class Forbidden(SandgrainError):
    http_status = 403
    title = "Forbidden"


class Unauthorized(SandgrainError):
    http_status = 401
    title = "Unauthorized"


async def _json_body(request: Request) -> dict:
    return await read_json_object(request, MAX_BODY)


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
    colls = [Collection.open(store, n) for n in _names(doc)]
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


# -- profile search, placement, projection --------------------------------------------------------


def _fields(doc: dict, allowed: set[str]) -> None:
    unknown = set(doc) - allowed
    if unknown:
        raise InputError(f"unknown field {sorted(unknown)[0]!r}")


def _names(doc: dict) -> list[str]:
    names = doc.get("collections")
    if (
        not isinstance(names, list)
        or not names
        or len(names) > MAX_COLLECTIONS
        or not all(isinstance(n, str) and len(n) <= 200 for n in names)
    ):
        raise InputError(f"collections is a list of 1 to {MAX_COLLECTIONS} collection names")
    if len(set(names)) != len(names):
        raise InputError("a collection is named twice")
    return names


def _strings(doc: dict, name: str, default: list[str]) -> list[str]:
    value = doc.get(name, default)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise InputError(f"{name} is a list of names")
    return value


def _profile(store, caller: Caller, doc: dict) -> dict[str, Any]:
    from ..strains.access import access_of, floor, level
    from ..strains.profile import MAX_CHARS, profile_search

    _fields(doc, {"collections", "expression", "by", "similar", "qc"})
    colls = [Collection.open(store, n) for n in _names(doc)]
    expression = doc.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise InputError("expression is a mutation profile, e.g. 'A23403G & !G25563T'")
    if len(expression) > MAX_CHARS:
        raise InputError(f"the expression is at most {MAX_CHARS:,} characters")
    by = _strings(doc, "by", ["month", "country"])
    qc = _strings(doc, "qc", ["good", "mediocre", "bad"])
    similar = doc.get("similar", False)
    if not isinstance(similar, bool):
        raise InputError("similar is true or false")
    if len({c.reference() for c in colls}) > 1:
        raise InputError("the collections were aligned to different references")
    levels = {c.name: level(access_of(store, c.name), caller, c.name) for c in colls}
    full = [c for c in colls if levels[c.name] == "full"]
    counted = [c for c in colls if levels[c.name] == "counts"]
    if full:
        out = profile_search(full, expression, by=by, similar=similar, qc=qc)
    else:  # nothing to see in full: the parse and the counts only
        first = profile_search(counted[:1], expression, by=(), qc=qc)
        out = {
            "expression": first["expression"], "mutations": first["mutations"], "count": 0,
            "unknown": 0, "searched": 0, "frequency": None, "collections": [],
            "by": {name: [] for name in dict.fromkeys(by)}, "histogram": [],
            "provenance": first["provenance"],
        }  # fmt: skip
    if counted:
        counts = []
        for c in counted:
            own = profile_search([c], expression, by=(), qc=qc)
            counts.append({"collection": c.name, "access": "counts", "count": floor(own["count"])})
        out["counts_only"] = counts
    return out


def _queries(coll: Collection, doc: dict) -> list:
    from ..strains.query import calls_from_mutations, calls_from_sequences

    fasta, mutations = doc.get("fasta"), doc.get("mutations")
    if (fasta is None) == (mutations is None):
        raise InputError("give the query as fasta (text) or as mutations (one of them)")
    if fasta is not None:
        if not isinstance(fasta, str):
            raise InputError("fasta is the text of a FASTA file")
        records = list(read_fasta_text(fasta, limit=MAX_API_QUERIES))
        queries = list(calls_from_sequences(coll, records))
    else:
        if not isinstance(mutations, str):
            raise InputError("mutations is text, e.g. 'C241T,A23403G'")
        queries = [calls_from_mutations(mutations, coll.reference())]
    for calls in queries:
        if calls.error:
            raise InputError(f"query {calls.strain!r} could not be aligned: {calls.error}")
    return queries


def _one_collection(store, caller: Caller, doc: dict, what: str) -> Collection:
    from ..strains.access import access_of, level

    name = doc.get("collection")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise InputError("collection is the name of one collection")
    coll = Collection.open(store, name)
    if level(access_of(store, name), caller, name) != "full":
        raise Forbidden(f"collection {name!r} gives counts only to this caller: no {what}")
    return coll


def _place(store, caller: Caller, doc: dict) -> dict[str, Any]:
    from ..provenance import provenance
    from ..strains.placement import place_calls, subtree_svg
    from ..strains.tree import load_tree

    _fields(doc, {"collection", "fasta", "mutations", "nearest"})
    coll = _one_collection(store, caller, doc, "placement")
    nearest = _int(doc, "nearest", 20, 1, 500)
    stored = load_tree(store, coll.name)
    queries = _queries(coll, doc)
    answers = []
    for calls in queries:
        placement, answer, local = place_calls(stored, calls, nearest=nearest)
        title = f"{calls.strain} placed on the tree of {coll.name}"
        answers.append({**answer, "subtree_svg": subtree_svg(local, placement.query, title=title)})
    prov = provenance(
        "strains place",
        {"collection": coll.name, "nearest": nearest, "queries": len(queries)},
        [{"source": f"straintrees/{coll.name}", "version": stored.version,
          "sha256": stored.sha256}],
    )  # fmt: skip
    return {"collection": coll.name, "answers": answers, "provenance": prov}


def _manifest_sha256(manifest: dict) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


#: Maps kept for projection (their components only, not every genome's coordinates), by store,
#: collection and map version: a new version of the map is read at the next request.
_MAPS: OrderedDict[tuple, Any] = OrderedDict()
_MAPS_LOCK = Lock()
MAPS_KEPT = 4


def _kept_map(store, name: str):
    """``(KmerMap, info, manifest)`` of a collection's current map."""
    from ..errors import NotFoundError
    from ..strains.embed import KIND as MAP_KIND
    from ..strains.embed import load_map

    try:
        manifest = store.open_dataset(MAP_KIND, name).manifest
    except NotFoundError:
        load_map(store, name)  # raises the message that names the command
        raise
    key = (store.url, name, manifest["version"])
    with _MAPS_LOCK:
        if key in _MAPS:
            _MAPS.move_to_end(key)
            return _MAPS[key]
    build = load_map(store, name)
    value = (build.kmap, build.info, manifest)
    with _MAPS_LOCK:
        _MAPS[key] = value
        while len(_MAPS) > MAPS_KEPT:
            _MAPS.popitem(last=False)
    return value


def _project(store, caller: Caller, doc: dict) -> dict[str, Any]:
    from ..provenance import provenance
    from ..strains.embed import project_calls

    _fields(doc, {"collection", "fasta", "mutations"})
    coll = _one_collection(store, caller, doc, "map")
    kmap, info, manifest = _kept_map(store, coll.name)
    queries = _queries(coll, doc)
    coords = project_calls(kmap, info, coll.reference(), queries)
    ratio = kmap.explained_variance_ratio
    axes = [
        {"name": f"PC{i + 1}", "explained_variance_ratio": float(ratio[i])}
        for i in range(kmap.n_components)
    ]
    points = [
        {"query": calls.strain, "x": float(row[0]), "y": float(row[1]) if len(row) > 1 else 0.0,
         "coords": [float(v) for v in row]}
        for calls, row in zip(queries, coords, strict=True)
    ]  # fmt: skip
    prov = provenance(
        "strains project",
        {"collection": coll.name, "queries": len(queries), "k": info["profile"]["k"],
         "canonical": info["profile"]["canonical"],
         "missing": info["profile"].get("missing", "drop")},
        [{"source": f"strainmaps/{coll.name}", "version": manifest["version"],
          "sha256": _manifest_sha256(manifest)},
         {"source": f"strains/{coll.name}", "version": coll.dataset.manifest["version"]}],
    )  # fmt: skip
    return {"collection": coll.name, "map_version": manifest["version"], "axes": axes,
            "queries": points, "provenance": prov}  # fmt: skip


@router.post("/profile")
async def profile_post(request: Request) -> dict[str, Any]:
    """The genomes that match a mutation profile (AND/OR/NOT over mutations, amino-acid changes,
    genes and regions): count, frequency, breakdowns by date and place, similar profiles."""
    doc = await _json_body(request)
    caller = caller_of(request)
    return await run_in_threadpool(_profile, request.app.state.store, caller, doc)


@router.post("/place")
async def place_post(request: Request) -> dict[str, Any]:
    """Each query placed on the collection's tree by maximum parsimony, with its local subtree
    as Newick and as SVG."""
    doc = await _json_body(request)
    caller = caller_of(request)
    return await run_in_threadpool(_place, request.app.state.store, caller, doc)


@router.post("/project")
async def project_post(request: Request) -> dict[str, Any]:
    """Each query's coordinates on the collection's stored k-mer map."""
    doc = await _json_body(request)
    caller = caller_of(request)
    return await run_in_threadpool(_project, request.app.state.store, caller, doc)
