"""The rest of the Beacon v2 standard on the HTTP side: the biosamples, runs and analyses
endpoints and per-entry filtering terms, the declared parameters of every query endpoint,
CORS, and Beacon error responses for paths the Beacon does not have.

:func:`finish` is called once, at the end of :mod:`sandgrain.web.beacon`, after every route is
defined. It

- adds the entry-type routes of the default model (``/biosamples``, ``/biosamples/{id}``,
  ``/biosamples/{id}/g_variants|runs|analyses``, ``/runs…``, ``/analyses…``,
  ``/individuals/{id}/biosamples``, ``/g_variants/{id}/biosamples``,
  ``/datasets/{id}/biosamples``, ``/{entry}/filtering_terms``, ``/datasets/{id}/filtering_terms``,
  ``/cohorts/{id}/filtering_terms``), each translating to one
  :class:`~sandgrain.beacon.service.BeaconService` call;
- splits every GET-and-POST query route into a GET operation that declares its query
  parameters (the framework's ``requestedSchema``, ``skip``, ``limit``,
  ``includeResultsetResponses``, ``filters`` …, and a genomic query's ``referenceName``,
  ``start``, ``end`` …, as the default model's ``endpoints.json`` list them) and a POST
  operation that declares its ``beaconRequestBody``. The handlers still read the raw request
  (the domain's :mod:`sandgrain.beacon.request` checks it once); the declarations are what
  clients and fuzzers discover in ``/openapi.json``;
- answers browsers' cross-origin calls for the origins ``SANDGRAIN_BEACON_CORS_ORIGINS`` allows
  (none by default; ``*`` for any): ``Access-Control-Allow-Origin`` on every Beacon response and
  ``OPTIONS`` preflights with the allowed methods and headers (``Authorization``,
  ``Content-Type``);
- ends the router with a catch-all: any other path below ``/api/beacon`` is answered with a
  Beacon error response (``beaconErrorResponse``) — 404, or 405 with ``Allow`` for a known path
  and a method it does not take — not the app's generic problem document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.routing import Match, Route

from ..beacon.request import INCLUDE_MODES, MAX_LIMIT
from ..beacon.settings import BeaconSettings
from ..errors import NotFoundError, SandgrainError


class NoSuchEndpoint(NotFoundError):
    """A path below the Beacon's base that is not one of its endpoints."""


class MethodNotAllowed(SandgrainError):
    """A Beacon endpoint asked with a method it does not take."""

    http_status = 405
    title = "Method not allowed"


#: Methods a browser may use across origins, and the request headers it may send.
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
#: Response headers a cross-origin page may read.
CORS_EXPOSE = "Retry-After, WWW-Authenticate"
_GRANULARITIES = ["boolean", "count", "record"]


# -- declared parameters ---------------------------------------------------------------------------
def _query_param(name: str, schema: dict, description: str, *, array: bool = False) -> dict:
    out: dict[str, Any] = {
        "name": name, "in": "query", "required": False, "description": description,
        "schema": schema,
    }  # fmt: skip
    if array:  # comma-separated, as the framework's GET examples write them
        out.update(style="form", explode=False)
    return out


_STRINGS = {"type": "array", "items": {"type": "string"}}
_COORDS = {
    "type": "array",
    "items": {"type": "integer", "minimum": 0},
    "minItems": 1,
    "maxItems": 2,
}
_BASES = {"type": "string", "pattern": "^[ACGTNacgtn]+$"}

#: The framework's GET parameters, known by every query endpoint.
FRAMEWORK_PARAMETERS = [
    _query_param(
        "requestedSchema",
        {"type": "string"},
        "Schema to format the results with (echoed; this Beacon answers in its default schemas)",
    ),
    _query_param(
        "skip",
        {"type": "integer", "minimum": 0, "default": 0},
        "Number of pages (of `limit` records) to skip",
    ),
    _query_param(
        "limit",
        {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT, "default": 10},
        f"Size of the page; 0 asks for the most this Beacon gives ({MAX_LIMIT})",
    ),
    _query_param(
        "includeResultsetResponses",
        {"type": "string", "enum": list(INCLUDE_MODES)},
        "Which result sets to list: HIT (default), MISS, ALL or NONE",
    ),
    _query_param(
        "requestedGranularity",
        {"type": "string", "enum": _GRANULARITIES},
        "boolean (default), count or record; the answer may be coarser",
    ),
    _query_param(
        "filters",
        _STRINGS,
        "Filters, ANDed: ontology terms (`HP:0001250`, with their descendants; `=HP:0001250` "
        "alone), alphanumeric (`age>5`, `sex=female`, `cohort=NAME`)",
        array=True,
    ),
    _query_param(
        "includeDescendantTerms",
        {"type": "boolean", "default": True},
        "Whether ontology filters match their descendant terms",
    ),
    _query_param("datasetIds", _STRINGS, "Datasets to ask (default: all visible)", array=True),
    _query_param("testMode", {"type": "boolean"}, "Mark the request as a test"),
]

#: A genomic query's request parameters (default model ``genomicVariations/endpoints.json``).
VARIANT_PARAMETERS = [
    _query_param("referenceName", {"type": "string"}, "Chromosome (`1`, `chr1`, `NC_000001.10`)"),
    _query_param("start", _COORDS, "0-based start; two values for a bracket query", array=True),
    _query_param("end", _COORDS, "0-based end (exclusive); two values for a bracket", array=True),
    _query_param("assemblyId", {"type": "string"}, "Assembly, e.g. GRCh37"),
    _query_param("referenceBases", _BASES, "Reference allele (N: any base)"),
    _query_param("alternateBases", _BASES, "Alternate allele (N: any base)"),
    _query_param("variantType", {"type": "string"}, "SNP, INDEL, DEL, DUP, CNV, …"),
    _query_param("variantMinLength", {"type": "integer", "minimum": 0}, "Shortest span"),
    _query_param("variantMaxLength", {"type": "integer", "minimum": 0}, "Longest span"),
    _query_param(
        "genomicAlleleShortForm", {"type": "string"}, "HGVS genomic, e.g. NC_000001.10:g.69224A>T"
    ),
    _query_param("geneId", {"type": "string"}, "HGNC gene symbol, e.g. BRCA1"),
    _query_param("aminoacidChange", {"type": "string"}, "Protein change, e.g. V600E"),
]

#: Positions: a list of one or two (a bracket), or one number.
_POSITIONS = {
    "anyOf": [
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 2},
        {"type": "integer", "minimum": 0},
    ]
}
#: A name a POST may also give as a number (``"referenceName": 1``), as the domain accepts.
_NAME = {"type": ["string", "integer"]}
_VARIANT_REQUEST = {
    "type": "object",
    "properties": {
        "referenceName": _NAME,
        "start": _POSITIONS,
        "end": _POSITIONS,
        "assemblyId": _NAME,
        "referenceBases": _BASES,
        "alternateBases": _BASES,
        "variantType": _NAME,
        "variantMinLength": {"type": "integer", "minimum": 0},
        "variantMaxLength": {"type": "integer", "minimum": 0},
        "genomicAlleleShortForm": _NAME,
        "geneId": _NAME,
        "aminoacidChange": _NAME,
        "datasetIds": _STRINGS,
    },
    "additionalProperties": False,
}
_FILTER = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "description": "OntologyFilter",
            "properties": {
                "id": {"type": "string"},
                "scope": {"type": "string"},
                "includeDescendantTerms": {"type": "boolean", "default": True},
                "similarity": {"type": "string", "enum": ["exact"]},
            },  # fmt: skip
            "required": ["id"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "description": "AlphanumericFilter",
            "properties": {
                "id": {"type": "string", "enum": ["age", "sex", "cohort"]},
                "operator": {"type": "string", "enum": ["=", "<", ">", "!", ">=", "<="]},
                "value": {"type": "string"},
                "scope": {"type": "string"},
            },
            "required": ["id", "operator", "value"],
            "additionalProperties": False,
        },
    ]
}


def request_body(variants: bool) -> dict:
    """The ``requestBody`` of a POST query operation (framework ``beaconRequestBody``)."""
    params = _VARIANT_REQUEST if variants else {
        "type": "object", "properties": {"datasetIds": _STRINGS}, "additionalProperties": False,
    }  # fmt: skip
    schema = {
        "type": "object",
        "title": "beaconRequestBody",
        "properties": {
            "meta": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "requestedSchemas": {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                {"type": "string"},
                                {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                    "properties": {
                                        "entityType": {"type": "string"},
                                        "schema": {"type": "string"},
                                    },
                                },
                            ]
                        },
                    },
                },
            },
            "query": {
                "type": "object",
                "properties": {
                    "requestParameters": params,
                    "filters": {"type": "array", "items": _FILTER},
                    "pagination": {
                        "type": "object",
                        "properties": {
                            "skip": {"type": "integer", "minimum": 0},
                            "limit": {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT},
                        },
                        "additionalProperties": False,
                    },
                    "requestedGranularity": {"type": "string", "enum": _GRANULARITIES},
                    "includeResultsetResponses": {"type": "string", "enum": list(INCLUDE_MODES)},
                    "testMode": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
        },
    }
    return {"required": False, "content": {"application/json": {"schema": _nullable(schema)}}}


def _nullable(schema: dict) -> dict:
    """``schema`` with every object property also accepting ``null``: the domain reads a
    ``null`` field as one not given (its default), so the declaration says so."""
    if schema.get("type") != "object" or "properties" not in schema:
        return schema
    props = {
        name: {"anyOf": [_nullable(sub), {"type": "null"}]}
        for name, sub in schema["properties"].items()
    }
    return {**schema, "properties": props}


def _is_variant_query(path: str) -> bool:
    """Whether a path takes genomic request parameters (``/g_variants``,
    ``/datasets/{id}/g_variants``)."""
    return path.endswith("/g_variants") and "{" not in path.rsplit("/", 2)[0].rsplit("/", 1)[-1]


# -- CORS ----------------------------------------------------------------------------------------
def _origins(request: Request) -> tuple[str, ...]:
    from .beacon import service

    text = service(request).settings.section(BeaconSettings).cors_origins
    return tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())


def cors_headers(request: Request, *, preflight: bool = False) -> dict[str, str]:
    """The CORS headers for ``request``'s ``Origin`` (none when it is not allowed)."""
    origin = request.headers.get("origin")
    allowed = _origins(request)
    if not origin or not allowed:
        return {}
    if "*" in allowed:
        headers = {"Access-Control-Allow-Origin": "*"}
    elif origin.rstrip("/") in allowed:
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    else:
        return {}
    if preflight:
        headers.update({
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": "600",
        })  # fmt: skip
    else:
        headers["Access-Control-Expose-Headers"] = CORS_EXPOSE
    return headers


class BeaconRoute(APIRoute):
    """A Beacon route: its responses carry the CORS headers the request's origin is allowed."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            response = await handler(request)
            for key, value in cors_headers(request).items():
                response.headers[key] = value
            return response

        return run


def _clone(route: APIRoute, methods: list[str], extra: dict | None) -> BeaconRoute:
    method = methods[0].lower()
    return BeaconRoute(
        route.path, route.endpoint, methods=methods, name=route.name, summary=route.summary,
        description=route.description, responses=route.responses, tags=route.tags,
        include_in_schema=route.include_in_schema, response_class=route.response_class,
        openapi_extra=extra,
        operation_id=f"{method}_{route.unique_id}" if len(methods) == 1 else None,
    )  # fmt: skip


# -- the routes of the other entry types -----------------------------------------------------------
Respond = Callable[..., Any]
QUERY = ["GET", "POST"]


def add_entry_routes(router: APIRouter, respond: Respond) -> None:
    """The default model's biosamples, runs and analyses endpoints, their lookups, and the
    per-entry filtering terms (translation only)."""

    def route(path: str, summary: str, ask: Callable[..., dict]):
        async def endpoint(request: Request):
            ids = dict(request.path_params)
            return await respond(request, lambda svc, call: ask(svc, call, **ids))

        endpoint.__name__ = "beacon_" + "".join(c if c.isalnum() else "_" for c in path).strip("_")
        router.add_api_route(path, endpoint, methods=QUERY, summary=summary)

    for entry, plural, name in (
        ("biosample", "biosamples", "Biosamples"),
        ("run", "runs", "Sequencing runs"),
        ("analysis", "analyses", "Analyses"),
    ):
        route(
            f"/{plural}", name,
            lambda svc, call, entry=entry: svc.entries(call, entry),
        )  # fmt: skip
        route(
            f"/{plural}/{{entry_id}}", f"One {entry}",
            lambda svc, call, entry_id, entry=entry: svc.entries(call, entry, entry_id=entry_id),
        )  # fmt: skip
        route(
            f"/{plural}/{{entry_id}}/g_variants", f"Variants of a {entry}'s sample",
            lambda svc, call, entry_id, entry=entry: svc.entry_variants(call, entry, entry_id),
        )  # fmt: skip
        route(
            f"/{plural}/filtering_terms", f"Filtering terms of {plural}",
            lambda svc, call, entry=entry: svc.filtering_terms(call, entry=entry),
        )  # fmt: skip
    for source, target in (("biosample", "run"), ("biosample", "analysis"), ("run", "analysis")):
        plural = {"biosample": "biosamples", "run": "runs", "analysis": "analyses"}
        route(
            f"/{plural[source]}/{{entry_id}}/{plural[target]}", f"{plural[target]} of a {source}",
            lambda svc, call, entry_id, source=source, target=target: svc.entries(
                call, target, individual_id=_sample(source, entry_id)
            ),
        )  # fmt: skip
    route(
        "/individuals/{individual_id}/biosamples", "Biosamples of an individual",
        lambda svc, call, individual_id: svc.entries(
            call, "biosample", individual_id=individual_id
        ),
    )  # fmt: skip
    route(
        "/g_variants/{variant_id}/biosamples", "Biosamples carrying a variant",
        lambda svc, call, variant_id: svc.entries(call, "biosample", variant_id=variant_id),
    )  # fmt: skip
    route(
        "/datasets/{dataset_id}/biosamples", "Biosamples of a dataset",
        lambda svc, call, dataset_id: svc.entries(call, "biosample", dataset_id=dataset_id),
    )  # fmt: skip
    route(
        "/individuals/filtering_terms", "Filtering terms of individuals",
        lambda svc, call: svc.filtering_terms(call, entry="individual"),
    )  # fmt: skip
    route(
        "/datasets/{dataset_id}/filtering_terms", "Filtering terms of a dataset",
        lambda svc, call, dataset_id: svc.filtering_terms(call, dataset_id=dataset_id),
    )  # fmt: skip
    route(
        "/cohorts/{cohort_id}/filtering_terms", "Filtering terms of a cohort",
        lambda svc, call, cohort_id: svc.filtering_terms(call, cohort_id=cohort_id),
    )  # fmt: skip


def _sample(entry: str, entry_id: str) -> str:
    from ..beacon.entries import sample_of

    return sample_of(entry, entry_id) or "\x00"  # no sample has that name: an empty answer


# -- finishing the router --------------------------------------------------------------------------
def _path_parameters(route: APIRoute) -> list[dict]:
    """The path parameters of ``route`` its endpoint does not declare itself (the entry routes
    read them from the request)."""
    declared = {p.name for p in route.dependant.path_params}
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{(\w+)\}", route.path)
        if name not in declared
    ]


def finish(router: APIRouter, respond: Respond) -> None:
    """Add the entry routes, declare every query route's parameters (one GET and one POST
    operation each), make every route a :class:`BeaconRoute`, and end the router with the
    catch-all (see the module docstring). Called once, after the last route is defined."""
    add_entry_routes(router, respond)
    # Fixed paths before templated ones (``/biosamples/filtering_terms`` is not a biosample).
    routes = sorted(
        router.routes, key=lambda r: isinstance(r, APIRoute) and "{" in r.path, reverse=False
    )
    done: list = []
    for route in routes:
        if not isinstance(route, APIRoute):
            done.append(route)
            continue
        if set(route.methods) >= {"GET", "POST"}:
            variants = _is_variant_query(route.path)
            ids = _path_parameters(route)
            params = FRAMEWORK_PARAMETERS + (VARIANT_PARAMETERS if variants else [])
            done.append(_clone(route, ["GET"], {"parameters": ids + list(params)}))
            post = {"requestBody": request_body(variants)}
            done.append(_clone(route, ["POST"], {**post, "parameters": ids} if ids else post))
        else:
            done.append(_clone(route, sorted(route.methods), route.openapi_extra))
    router.routes[:] = done

    class NotABeaconPath:
        """A bare ASGI app: a Route to one takes every method (to a function, GET only)."""

        async def __call__(self, scope, receive, send) -> None:
            request = Request(scope, receive)
            response = await _not_a_beacon_path(request)
            response.headers.update(cors_headers(request))
            await response(scope, receive, send)

    async def _not_a_beacon_path(request: Request) -> Response:
        from .beacon import _error, service

        svc = service(request)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=cors_headers(request, preflight=True))
        allowed: set[str] = set()
        for other in router.routes:
            if other.path.endswith("{rest:path}"):
                continue
            match, _ = other.matches(request.scope)
            if match in (Match.FULL, Match.PARTIAL):
                allowed |= set(getattr(other, "methods", ()) or ())
        if allowed:
            exc = MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}; use "
                f"{', '.join(sorted(allowed))}"
            )
            response = _error(svc, exc)
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        return _error(
            svc,
            NoSuchEndpoint(
                f"no Beacon endpoint {request.url.path}; /api/beacon/map lists this Beacon's"
            ),
        )

    # any method: one the Beacon does not know (TRACE, QUERY …) is answered 405 here too
    router.routes.append(
        Route(
            f"{router.prefix}/{{rest:path}}",
            NotABeaconPath(),
            include_in_schema=False,
            name="beacon_not_found",
        )
    )
