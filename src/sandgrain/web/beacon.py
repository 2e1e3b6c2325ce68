"""The Beacon v2 HTTP API at ``/api/beacon``: HTTP in, :mod:`sandgrain.beacon.service` calls,
HTTP out.

Each route reads the request into a :class:`~sandgrain.beacon.service.Call` (method, path,
``Authorization`` header, client address, query string, body), asks the app's
:class:`~sandgrain.beacon.service.BeaconService` (``app.state.beacon``) and returns its document
as JSON. Errors are Beacon error responses (``beaconErrorResponse``: ``meta`` + ``error`` with
``errorCode`` and ``errorMessage``) with the HTTP status of the error: 400 for a bad query, 401
without a valid token (with ``WWW-Authenticate``), 403 for a dataset the caller may not see, 404,
413 for a body over ``SANDGRAIN_BEACON_MAX_BODY`` (read no further), 429 over budget (with
``Retry-After``), 503 when the audit log cannot be written. A 5xx never carries data either.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..beacon import responses
from ..beacon.errors import RequestTooLargeError
from ..beacon.network import HOPS_HEADER, BeaconNetwork
from ..beacon.service import BeaconService, Call
from ..beacon.settings import BeaconSettings
from ..errors import SandgrainError
from . import beacon_spec

logger = logging.getLogger(__name__)

#: Every Beacon endpoint may answer these with a Beacon error response (``beaconErrorResponse``).
ERRORS = {
    400: {"description": "The query is not valid: `error.errorMessage` says why"},
    401: {"description": "A dataset needs a valid bearer token (or the token is not valid)"},
    403: {"description": "The token does not give access to a dataset named in the request"},
    404: {"description": "No such dataset, individual, cohort or variant id"},
    413: {"description": "The request body is over the size limit (SANDGRAIN_BEACON_MAX_BODY)"},
    429: {"description": "Query budget spent; `Retry-After` says when it refills"},
}
router = APIRouter(prefix="/api/beacon", tags=["beacon"], responses=ERRORS)
QUERY = ["GET", "POST"]


_STATE_LOCK = threading.Lock()


def service(request: Request) -> BeaconService:
    """The app's Beacon service: made when the app starts (the domain's ``web_state``), or on
    first use by an app whose lifespan did not run (closed with the app all the same)."""
    state = request.app.state
    with _STATE_LOCK:
        if getattr(state, "beacon", None) is None:
            state.beacon = BeaconService.for_app(state.services)
        return state.beacon


def _call(request: Request) -> Call:
    """The call, without its body (:func:`_body`)."""
    return Call(
        method=request.method,
        endpoint=request.url.path,
        authorization=request.headers.get("authorization"),
        ip=request.client.host if request.client else "unknown",
        query=tuple(request.query_params.multi_items()),
    )


async def _body(request: Request, max_body: int) -> bytes:
    """A POST's body, read only up to ``max_body`` bytes: a larger one raises
    :class:`~sandgrain.beacon.errors.RequestTooLargeError` (413)."""
    if request.method != "POST":
        return b""
    too_large = RequestTooLargeError(
        f"the request body is larger than {max_body:,} bytes (SANDGRAIN_BEACON_MAX_BODY)"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise too_large  # refused before a byte of it is read
    chunks, size = [], 0
    async for chunk in request.stream():  # a chunked body has no length to check up front
        size += len(chunk)
        if size > max_body:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _error(svc: BeaconService, exc: Exception) -> JSONResponse:
    if isinstance(exc, SandgrainError):
        status, message = exc.http_status, " ".join(str(exc).split())
    else:
        logger.exception("beacon internal error")
        status, message = 500, f"internal error: {type(exc).__name__}"
    body = responses.error_response(status, message, beacon_id=svc.identity.id)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="beacon"'
    retry = getattr(exc, "retry_after_s", None)
    if status == 429 and retry:
        headers["Retry-After"] = str(int(retry) + 1)
    return JSONResponse(body, status_code=status, headers=headers or None)


async def _respond(
    request: Request,
    ask: Callable[[BeaconService, Call], dict],
    network: tuple[str, ...] | None = None,
) -> JSONResponse:
    """``ask`` this Beacon; with ``network`` (the path below the base URL) and remote Beacons
    configured, the Beacon Network's merged answer (:mod:`sandgrain.beacon.network`)."""
    svc = service(request)
    call = _call(request)
    try:
        body = await _body(request, svc.settings.section(BeaconSettings).max_body)
    except RequestTooLargeError as exc:
        try:
            svc.refuse(call, exc)  # audited, without the body
        except SandgrainError as audit_failed:  # the audit log fails closed
            return _error(svc, audit_failed)
        return _error(svc, exc)
    call = dataclasses.replace(call, body=body)
    try:
        net = BeaconNetwork.for_call(svc, request.headers.get(HOPS_HEADER)) if network else None
        if net is not None:
            return JSONResponse(await net.answer(call, network, lambda c: ask(svc, c)))
        # the query runs in the thread pool, so one process answers several at once (the
        # service's caches, budgets and database connections are thread-safe)
        return JSONResponse(await run_in_threadpool(ask, svc, call))
    # The Beacon spec answers every failure, expected or not, with its error document (never a
    # bare 500 page or a stack trace); the service has audited it already.
    except Exception as exc:
        return _error(svc, exc)


# -- genomic variants ------------------------------------------------------------------------------
@router.api_route("/g_variants", methods=QUERY, summary="Genomic variant query")
async def g_variants(request: Request):
    """All six genomic query forms: sequence, range, bracket, geneId, aminoacidChange,
    genomicAlleleShortForm (coordinates 0-based)."""
    return await _respond(request, lambda svc, call: svc.variants(call), ("g_variants",))


@router.api_route("/g_variants/{variant_id}", methods=QUERY, summary="One variant")
async def g_variant(request: Request, variant_id: str):
    return await _respond(
        request, lambda svc, call: svc.variants(call, variant_id=variant_id),
        ("g_variants", variant_id),
    )  # fmt: skip


@router.api_route(
    "/g_variants/{variant_id}/individuals", methods=QUERY,
    summary="Individuals carrying a variant",
)  # fmt: skip
async def g_variant_individuals(request: Request, variant_id: str):
    return await _respond(
        request, lambda svc, call: svc.individuals(call, variant_id=variant_id),
        ("g_variants", variant_id, "individuals"),
    )  # fmt: skip


@router.api_route("/individuals", methods=QUERY, summary="Individuals")
async def individuals(request: Request):
    """Individuals, filtered by ontology terms (see /filtering_terms)."""
    return await _respond(request, lambda svc, call: svc.individuals(call), ("individuals",))


@router.api_route("/individuals/{individual_id}", methods=QUERY, summary="One individual")
async def individual(request: Request, individual_id: str):
    return await _respond(
        request, lambda svc, call: svc.individuals(call, individual_id=individual_id)
    )


@router.api_route(
    "/individuals/{individual_id}/g_variants", methods=QUERY,
    summary="Variants an individual carries",
)  # fmt: skip
async def individual_variants(request: Request, individual_id: str):
    return await _respond(
        request, lambda svc, call: svc.variants(call, individual_id=individual_id)
    )


# -- datasets and cohorts --------------------------------------------------------------------------
@router.api_route("/datasets", methods=QUERY, summary="Datasets")
async def datasets(request: Request):
    """The datasets this caller may see."""
    return await _respond(request, lambda svc, call: svc.collection(call, "dataset"), ("datasets",))


@router.api_route("/datasets/{dataset_id}", methods=QUERY, summary="One dataset")
async def dataset(request: Request, dataset_id: str):
    return await _respond(request, lambda svc, call: svc.collection(call, "dataset", dataset_id))


@router.api_route("/datasets/{dataset_id}/g_variants", methods=QUERY)
async def dataset_variants(request: Request, dataset_id: str):
    """Genomic variant query in one dataset."""
    return await _respond(request, lambda svc, call: svc.variants(call, dataset_id=dataset_id))


@router.api_route("/datasets/{dataset_id}/individuals", methods=QUERY)
async def dataset_individuals(request: Request, dataset_id: str):
    """Individuals of one dataset."""
    return await _respond(
        request, lambda svc, call: svc.individuals(call, dataset_id=dataset_id)
    )


@router.api_route("/cohorts", methods=QUERY, summary="Cohorts")
async def cohorts(request: Request):
    """Each dataset's cohort of its (consenting) individuals, and the study-defined cohorts
    (``dataset:name``) its sample metadata names."""
    return await _respond(request, lambda svc, call: svc.collection(call, "cohort"), ("cohorts",))


@router.api_route("/cohorts/{cohort_id}", methods=QUERY, summary="One cohort")
async def cohort(request: Request, cohort_id: str):
    return await _respond(request, lambda svc, call: svc.collection(call, "cohort", cohort_id))


@router.api_route("/cohorts/{cohort_id}/individuals", methods=QUERY)
async def cohort_individuals(request: Request, cohort_id: str):
    """The individuals of a cohort (a dataset's, or a study-defined ``dataset:name``)."""
    return await _respond(request, lambda svc, call: svc.cohort_individuals(call, cohort_id))


# -- informational endpoints ----------------------------------------------------------------------
def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/api/beacon"


@router.get("", include_in_schema=False)
@router.get("/", summary="Beacon information")
@router.get("/info", summary="Beacon information")
def info(request: Request):
    return JSONResponse(responses.info_response(service(request).identity))


@router.get("/service-info", summary="GA4GH service-info")
def service_info(request: Request):
    return JSONResponse(responses.service_info(service(request).identity, base_url=_base(request)))


@router.get("/configuration", summary="Beacon configuration")
def configuration(request: Request):
    return JSONResponse(responses.configuration_response(service(request).identity))


@router.get("/map", summary="Beacon map")
def beacon_map(request: Request):
    svc = service(request)
    return JSONResponse(
        responses.map_response(_base(request), beacon_id=svc.identity.id, openapi_url=None)
    )


@router.get("/entry_types", summary="Entry types")
def entry_types(request: Request):
    return JSONResponse(responses.entry_types_response(beacon_id=service(request).identity.id))


@router.api_route("/filtering_terms", methods=QUERY, summary="Filtering terms")
async def filtering_terms_endpoint(request: Request):
    """The ontology terms individuals of the visible datasets carry (usable as filters)."""
    return await _respond(
        request, lambda svc, call: svc.filtering_terms(call), ("filtering_terms",)
    )


# -- admin: dynamic consent -----------------------------------------------------------------------
@router.post(
    "/admin/datasets/{dataset_id}/individuals/{individual_id}/{action}",
    summary="Revoke or restore a participant (admins only)",
)
async def admin_consent(request: Request, dataset_id: str, individual_id: str, action: str):
    """``action`` is ``revoke`` or ``restore``; needs a token whose subject is listed in the
    security config's ``admins``. Audited."""
    return await _respond(
        request,
        lambda svc, call: svc.change_consent(call, dataset_id, individual_id, action),
    )


# -- the rest of the standard: biosamples, runs, analyses, per-entry filtering terms, declared
# parameters, CORS, Beacon errors for other paths. Keep this last: it ends the router.
beacon_spec.finish(router, _respond)
