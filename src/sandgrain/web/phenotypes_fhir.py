"""Routes under ``/api/v1/phenotypes`` for outcomes and exports.

``POST /api/v1/phenotypes/fhir``
    body ``{"patient": "P1", "text": "…", "status": "Hospitalized", "vaccination": "2 doses
    Pfizer"}`` (``text``, ``status`` and ``vaccination`` optional, at least one given): a FHIR R4
    Bundle (``application/fhir+json``), as ``sandgrain phenotypes fhir`` prints it.
``POST /api/v1/phenotypes/phenopacket``
    body ``{"patient": "P1", "text": "…", "status": "…"}``: the GA4GH Phenopacket v2.
``"terms"`` (both routes) replaces the coding of ``text`` by an explicit term list, in the
    shape ``POST /api/v1/phenotypes/code`` returns — ``{"present": [{"id": "HP:0001945",
    "text": "febrile to 39.2C", "start": 46, "end": 62}], "negated": […], "uncertain": […],
    "family_history": […]}`` — as the phenotypes page sends its edited list (:func:`_terms`).
``POST /api/v1/phenotypes/outcome``
    body ``{"status": "hopsitalized"}`` or ``{"vaccination": "Moderna booster"}``: the status
    on the WHO clinical progression scale, or the vaccines with CVX codes, with provenance.

Bodies are read only up to :data:`MAX_BODY` bytes (413 beyond, before parsing); bad input is a
400 problem+json.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import InputError
from .common import API_PREFIX, PROBLEM_RESPONSES, read_json_object

__all__ = ["MAX_BODY", "MAX_TERMS", "router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/phenotypes", tags=["phenotypes"], responses=PROBLEM_RESPONSES
)

#: Largest request body (bytes): a long discharge summary with room to spare.
MAX_BODY = 1_000_000
#: Most terms in an explicit term list (``"terms"``).
MAX_TERMS = 1000


async def _json_body(request: Request) -> dict:
    return await read_json_object(request, MAX_BODY)


def _fields(doc: dict, allowed: set[str]) -> None:
    unknown = set(doc) - allowed
    if unknown:
        raise InputError(f"unknown field {sorted(unknown)[0]!r}")


def _terms(terms: Any, text: str | None) -> dict[str, list[dict[str, Any]]]:
    """An explicit term list as a coder result (the ``/code`` shape, its ``provenance`` ignored).

    Each term is ``{"id", "text", "start", "end"}`` (all but ``id`` optional); the id must be a
    current HPO term (an alternative or obsolete id becomes its current one), the label is the
    ontology's (a ``label`` sent is ignored), and ``start``/``end`` must point at ``text`` in
    the note.
    """
    from ..phenotypes.coder import LISTS
    from ..phenotypes.ontology import hpo

    shape = 'terms is {"present": [{"id": "HP:0000458"}, …], "negated": […], …}'
    if not isinstance(terms, dict) or set(terms) - {*LISTS, "provenance"}:
        raise InputError(shape)
    onto, note = hpo(), text or ""
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in LISTS}
    for kind in LISTS:
        items = terms.get(kind) or []
        if not isinstance(items, list):
            raise InputError(shape)
        if sum(map(len, out.values())) + len(items) > MAX_TERMS:
            raise InputError(f"at most {MAX_TERMS:,} terms")
        for i, item in enumerate(items):
            where = f"terms.{kind}[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise InputError(f"{where} is an object with an HPO id")
            if set(item) - {"id", "label", "text", "start", "end"}:
                raise InputError(f"{where} has id, text, start and end only")
            term_id = onto.canonical(item["id"].strip().upper())
            if term_id is None:
                raise InputError(f"{where}: {item['id']!r} is not a current HPO term")
            words, start, end = item.get("text"), item.get("start"), item.get("end")
            if words is not None and not isinstance(words, str):
                raise InputError(f"{where}: text is the words the term was read from")
            if (start, end) != (None, None):
                if not (type(start) is int and type(end) is int and 0 <= start < end <= len(note)):
                    raise InputError(
                        f"{where}: start < end are offsets in the text (0-{len(note)})"
                    )
                if words is not None and note[start:end] != words:
                    raise InputError(f"{where}: the text at {start}-{end} is not {words!r}")
            out[kind].append(
                {"id": term_id, "label": onto.label(term_id), "text": words,
                 "start": start, "end": end}
            )  # fmt: skip
    return out


def _export(doc: dict, fmt: str) -> dict[str, Any]:
    from ..phenotypes.export import export_patient

    allowed = {"patient", "text", "status", "terms"}
    allowed |= {"vaccination"} if fmt == "fhir" else set()
    _fields(doc, allowed)
    if not isinstance(doc.get("patient"), str):
        raise InputError("patient is the patient's id, as text")
    if all(doc.get(k) is None for k in allowed - {"patient"}):
        raise InputError(f"give at least one of {', '.join(sorted(allowed - {'patient'}))}")
    text = doc.get("text")
    # an explicit term list (the page's edited one) replaces coding the note
    coding = _terms(doc["terms"], text) if doc.get("terms") is not None else None
    return export_patient(
        doc["patient"],
        text,
        status=doc.get("status"),
        vaccination=doc.get("vaccination"),
        fmt=fmt,
        coding=coding,
    )


@router.post("/fhir")
async def fhir_post(request: Request) -> JSONResponse:
    """A patient's note, status and vaccination as a validated FHIR R4 Bundle."""
    doc = await _json_body(request)
    bundle = await run_in_threadpool(_export, doc, "fhir")
    return JSONResponse(bundle, media_type="application/fhir+json")


@router.post("/phenopacket")
async def phenopacket_post(request: Request) -> dict[str, Any]:
    """A patient's note and status as a GA4GH Phenopacket v2."""
    doc = await _json_body(request)
    return await run_in_threadpool(_export, doc, "phenopacket")


@router.post("/outcome")
async def outcome_post(request: Request) -> dict[str, Any]:
    """A free-text patient status on the WHO clinical progression scale, or a vaccination
    status with CVX codes; unknown text is reported as unknown, never guessed."""
    from ..phenotypes.export import outcome_result

    doc = await _json_body(request)
    _fields(doc, {"status", "vaccination"})
    if len(doc) != 1:
        raise InputError("give status or vaccination (one of them)")
    ((kind, text),) = doc.items()
    return outcome_result(text, kind)
