"""Routes under ``/api/v1/phenotypes`` for outcomes and exports.

``POST /api/v1/phenotypes/fhir``
    body ``{"patient": "P1", "text": "…", "status": "Hospitalized", "vaccination": "2 doses
    Pfizer"}`` (``text``, ``status`` and ``vaccination`` optional, at least one given): a FHIR R4
    Bundle (``application/fhir+json``), as ``sandgrain phenotypes fhir`` prints it.
``POST /api/v1/phenotypes/phenopacket``
    body ``{"patient": "P1", "text": "…", "status": "…"}``: the GA4GH Phenopacket v2.
``POST /api/v1/phenotypes/outcome``
    body ``{"status": "hopsitalized"}`` or ``{"vaccination": "Moderna booster"}``: the status
    on the WHO clinical progression scale, or the vaccines with CVX codes, with provenance.

Bodies are read only up to :data:`MAX_BODY` bytes (413 beyond, before parsing); bad input is a
400 problem+json.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import InputError, SandgrainError
from .common import API_PREFIX, PROBLEM_RESPONSES

__all__ = ["MAX_BODY", "router"]

router = APIRouter(
    prefix=f"{API_PREFIX}/phenotypes", tags=["phenotypes"], responses=PROBLEM_RESPONSES
)

#: Largest request body (bytes): a long discharge summary with room to spare.
MAX_BODY = 1_000_000


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


def _fields(doc: dict, allowed: set[str]) -> None:
    unknown = set(doc) - allowed
    if unknown:
        raise InputError(f"unknown field {sorted(unknown)[0]!r}")


def _export(doc: dict, fmt: str) -> dict[str, Any]:
    from ..phenotypes.export import export_patient

    allowed = {"patient", "text", "status"} | ({"vaccination"} if fmt == "fhir" else set())
    _fields(doc, allowed)
    if not isinstance(doc.get("patient"), str):
        raise InputError("patient is the patient's id, as text")
    if all(doc.get(k) is None for k in allowed - {"patient"}):
        raise InputError(f"give at least one of {', '.join(sorted(allowed - {'patient'}))}")
    return export_patient(
        doc["patient"],
        doc.get("text"),
        status=doc.get("status"),
        vaccination=doc.get("vaccination"),
        fmt=fmt,
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
