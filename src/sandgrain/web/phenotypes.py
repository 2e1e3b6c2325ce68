"""The phenotypes routes under ``/api/v1/phenotypes``: free text → HPO terms, term lookup.

``POST /api/v1/phenotypes/code``
    body ``{"text": "Lost her sense of smell, no fever."}`` (or ``{"texts": ["…", "…"]}``, at
    most :data:`MAX_TEXTS`): the findings as ``sandgrain phenotypes code`` prints them —
    ``{"present": [{"id", "label", "text", "start", "end"}], "negated": […], "uncertain": […],
    "family_history": […], "history": […], "provenance": {…}}``; for ``texts``,
    ``{"results": [{…}, …], "provenance": {…}}``. The body is read only up to
    :data:`MAX_BODY` bytes (413 beyond, before parsing); each text is at most
    :data:`~sandgrain.phenotypes.coder.MAX_TEXT` characters (400).
``GET /api/v1/phenotypes/terms?q=ano&limit=20``
    HPO terms under *Phenotypic abnormality* whose label or a synonym starts with (then
    contains) the query, for autocomplete: ``{"terms": [{"id", "label", "match", "path"}]}``
    where ``path`` is one chain of labels from the root; an HPO id (``HP:0000458``) looks the
    term up directly.
``GET /api/v1/phenotypes/terms/{id}``
    one term: id, label, synonyms, parents, children, one path to the root.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from ..errors import InputError, NotFoundError
from .common import API_PREFIX, PROBLEM_RESPONSES, read_json_object

__all__ = ["router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/phenotypes", tags=["phenotypes"], responses=PROBLEM_RESPONSES
)

#: Largest request body (bytes).
MAX_BODY = 2_000_000
#: Most notes in one request.
MAX_TEXTS = 1000


async def _json_body(request: Request) -> dict:
    return await read_json_object(request, MAX_BODY)


def _texts(doc: dict) -> tuple[list[str], bool]:
    from ..phenotypes.coder import MAX_TEXT

    unknown = set(doc) - {"text", "texts"}
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if ("text" in doc) == ("texts" in doc):
        raise InputError('give "text" (one note) or "texts" (a list of notes)')
    many = "texts" in doc
    texts = doc["texts"] if many else [doc["text"]]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise InputError('"text" is a string and "texts" a list of strings')
    if len(texts) > MAX_TEXTS:
        raise InputError(f"at most {MAX_TEXTS} texts per request, not {len(texts)}")
    for i, t in enumerate(texts):
        if len(t) > MAX_TEXT:
            raise InputError(f"text {i} is longer than {MAX_TEXT:,} characters")
    return texts, many


def _code(doc: dict) -> dict[str, Any]:
    from ..phenotypes.coder import code_text, coding_provenance

    texts, many = _texts(doc)
    prov = coding_provenance(texts, source="api", notes=len(texts))
    results = [code_text(t, with_provenance=False).to_dict() for t in texts]
    if many:
        for r in results:
            r.pop("provenance")
        return {"results": results, "provenance": prov}
    results[0]["provenance"] = prov
    return results[0]


@router.post("/code")
async def code(request: Request) -> dict[str, Any]:
    """HPO terms in clinical free text, with their context (present, negated, uncertain,
    family history, history)."""
    doc = await _json_body(request)
    return await run_in_threadpool(_code, doc)


def _term_summary(term_id: str, match: str) -> dict[str, Any]:
    from ..phenotypes.ontology import hpo

    onto = hpo()
    path = onto.path_to_root(term_id)
    return {
        "id": term_id,
        "label": onto.label(term_id),
        "match": match,
        "path": [{"id": t, "label": onto.label(t)} for t in path if t in onto.terms],
    }


def _search(q: str, limit: int) -> dict[str, Any]:
    from ..phenotypes.ontology import hpo

    onto = hpo()
    query = " ".join(q.lower().split())
    if not query:
        raise InputError("q is empty")
    if query.upper().startswith("HP:"):
        term_id = onto.canonical(query.upper())
        hits = [_term_summary(term_id, term_id)] if term_id else []
        return {"query": q, "terms": hits, "hpo_version": onto.version}
    starts, contains = [], []
    for term in onto.terms.values():
        if not onto.in_phenotypic_abnormality(term.id):
            continue
        best = None
        for name in (term.label, *term.synonyms):
            low = name.lower()
            if low.startswith(query):
                best = (0, len(name), name)
                break
            if best is None and query in low:
                best = (1, len(name), name)
        if best is not None:
            (starts if best[0] == 0 else contains).append((best[1], term.id, best[2]))
    ranked = sorted(starts) + sorted(contains)
    hits = [_term_summary(tid, name) for _, tid, name in ranked[:limit]]
    return {"query": q, "terms": hits, "hpo_version": onto.version}


@router.get("/terms")
async def terms(
    q: str = Query(..., min_length=1, max_length=200, description="e.g. ano, anosmia, HP:0000458"),
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    """HPO phenotype terms for autocomplete: labels or synonyms starting with (then containing)
    the query."""
    return await run_in_threadpool(_search, q, limit)


@router.get("/terms/{term_id}")
async def term(term_id: str = Path(..., pattern=r"^HP:\d{7}$")) -> dict[str, Any]:
    """One HPO term: label, synonyms, parents, children and a path to the root."""
    from ..phenotypes.ontology import hpo

    onto = hpo()
    canonical = onto.canonical(term_id)
    if canonical is None:
        raise NotFoundError(f"{term_id} is not a current HPO term (HPO {onto.version})")
    t = onto.terms[canonical]
    return {
        "id": t.id,
        "label": t.label,
        "synonyms": [{"text": s.text, "scope": s.scope, "type": s.type} for s in t.synonym_details],
        "parents": [{"id": p, "label": onto.label(p)} for p in t.parents],
        "children": [{"id": c, "label": onto.label(c)} for c in onto.children.get(t.id, ())],
        "path": _term_summary(t.id, t.label)["path"],
        "hpo_version": onto.version,
    }
