"""The Beacon v2 HTTP API at ``/api/beacon``, served by ``sandgrain serve`` beside the guide app.

Every request goes through the same steps (:meth:`BeaconService.answer`):

1. authenticate the bearer token, if any (:func:`sandgrain.beacon.security.authenticate`);
2. work out which datasets this caller may see and at which granularity: the answer's
   granularity is the lowest of what was asked and what each queried dataset allows, so a
   dataset never reveals more than its tier permits (name datasets with ``datasetIds`` to get
   more from the ones you may see in full);
3. charge the caller's query budget (genomic and individual queries only);
4. run the query on the engine (:mod:`sandgrain.beacon.query`), protect small counts;
5. build the Beacon response (:mod:`sandgrain.beacon.responses`) and write an audit event.

Errors are Beacon error responses (``beaconErrorResponse``: ``meta`` + ``error`` with
``errorCode`` and ``errorMessage``) with the HTTP status of the error: 400 for a bad query, 401
without a valid token, 403 for a dataset the caller may not see, 404, 429 over budget. A 5xx
never carries data either.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..config import Settings
from ..errors import InputError, NotFoundError, SandgrainError
from ..storage import Store
from . import consent, responses
from .individuals import filtering_terms
from .query import (
    GRANULARITIES,
    MAX_LIMIT,
    VariantQuery,
    parse_filters,
    parse_variant_id,
    query_individuals,
    query_variants,
    subset_for,
)
from .security import (
    AuditLog,
    AuthenticationError,
    JwksCache,
    Principal,
    QueryBudget,
    SecurityConfig,
    audit_event,
    authenticate,
    clamp,
    granularity_for,
    protect_count,
)
from .store import BeaconCatalog, BeaconDataset, DatasetChangedError, stores_from_env

logger = logging.getLogger(__name__)

#: Every Beacon endpoint may answer these with a Beacon error response (``beaconErrorResponse``).
ERRORS = {
    400: {"description": "The query is not valid: `error.errorMessage` says why"},
    401: {"description": "A dataset needs a valid bearer token (or the token is not valid)"},
    403: {"description": "The token does not give access to a dataset named in the request"},
    404: {"description": "No such dataset, individual, cohort or variant id"},
    429: {"description": "Query budget spent; `Retry-After` says when it refills"},
}
router = APIRouter(prefix="/api/beacon", tags=["beacon"], responses=ERRORS)
#: Query-string parameters of the framework (everything else is a request parameter).
FRAMEWORK_PARAMS = {
    "requestedGranularity", "skip", "limit", "includeResultsetResponses", "filters",
    "requestedSchemas", "datasetIds", "testMode", "apiVersion",
}  # fmt: skip
ORDER = {g: i for i, g in enumerate(GRANULARITIES)}


class ForbiddenError(SandgrainError):
    http_status = 403
    title = "Forbidden"


@dataclass
class BeaconRequest:
    """A request in one shape, whether it came as a GET query string or a POST body."""

    granularity: str = "boolean"
    skip: int = 0
    limit: int = 10
    include: str = "HIT"
    filters: list[str] = field(default_factory=list)
    raw_filters: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    requested_schemas: list = field(default_factory=list)
    dataset_ids: list[str] | None = None
    test_mode: bool = False
    api_version: str | None = None


def _int(value: Any, name: str, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number (got {value!r})")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be a whole number (got {value!r})") from None
    if number < 0:
        raise InputError(f"{name} must not be negative")
    if maximum is not None and number > maximum:
        raise InputError(f"{name} may be at most {maximum}")
    return number


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError(f"{name} must be true or false (got {value!r})")


def _ids(value) -> list[str]:
    """Ids from a list or a comma-separated string, each once (a repeated dataset must not be
    counted twice)."""
    items = value if isinstance(value, list) else str(value).split(",")
    return list(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))


def _finish(req: BeaconRequest) -> BeaconRequest:
    if req.granularity not in GRANULARITIES:
        raise InputError(
            f"requestedGranularity must be one of {', '.join(GRANULARITIES)} "
            f"(got {req.granularity!r})"
        )
    if req.include not in responses.INCLUDE_MODES:
        raise InputError(
            f"includeResultsetResponses must be one of {', '.join(responses.INCLUDE_MODES)}"
        )
    req.filters = parse_filters(req.raw_filters)
    return req


async def parse_request(request: Request) -> BeaconRequest:
    """The framework fields and request parameters of a GET or POST."""
    req = BeaconRequest()
    if request.method == "GET":
        q = request.query_params
        unknown_multi = [k for k in q if len(q.getlist(k)) > 1 and k not in ("start", "end")]
        if unknown_multi:
            raise InputError(f"parameter {unknown_multi[0]} is given more than once")
        req.granularity = q.get("requestedGranularity", req.granularity)
        req.skip = _int(q.get("skip", 0), "skip")
        req.limit = _int(q.get("limit", 10), "limit", MAX_LIMIT)
        req.include = q.get("includeResultsetResponses", req.include)
        req.raw_filters = _ids(q["filters"]) if q.get("filters") else []
        req.requested_schemas = _ids(q["requestedSchemas"]) if q.get("requestedSchemas") else []
        req.dataset_ids = _ids(q["datasetIds"]) if q.get("datasetIds") else None
        req.test_mode = _flag(q.get("testMode", "false"), "testMode")
        req.api_version = q.get("apiVersion")
        for key in q:
            if key in FRAMEWORK_PARAMS:
                continue
            values = q.getlist(key)
            req.params[key] = ",".join(values) if len(values) > 1 else values[0]
        return _finish(req)
    raw = await request.body()
    if not raw.strip():
        return _finish(req)
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object with meta and query")
    meta = body.get("meta") or {}
    query = body.get("query") or {}
    if not isinstance(meta, dict) or not isinstance(query, dict):
        raise InputError("meta and query must be JSON objects")
    req.api_version = meta.get("apiVersion")
    schemas = meta.get("requestedSchemas") or []
    req.requested_schemas = schemas if isinstance(schemas, list) else [schemas]
    req.granularity = query.get("requestedGranularity", req.granularity)
    pagination = query.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise InputError("query.pagination must be an object with skip and limit")
    req.skip = _int(pagination.get("skip", 0), "skip")
    req.limit = _int(pagination.get("limit", 10), "limit", MAX_LIMIT)
    req.include = query.get("includeResultsetResponses", req.include)
    filters = query.get("filters") or []
    req.raw_filters = filters if isinstance(filters, list) else [filters]
    params = query.get("requestParameters") or {}
    if isinstance(params, list):  # some clients send a list of parameter objects
        merged: dict = {}
        for item in params:
            if not isinstance(item, dict):
                raise InputError("query.requestParameters must be an object")
            merged.update(item)
        params = merged
    if not isinstance(params, dict):
        raise InputError("query.requestParameters must be an object")
    params = dict(params)
    if "datasetIds" in params:
        req.dataset_ids = _ids(params.pop("datasetIds"))
    if "datasets" in query:
        chosen = query["datasets"]
        if not isinstance(chosen, dict) or not isinstance(chosen.get("datasetIds"), list):
            raise InputError('query.datasets must be {"datasetIds": ["id", …]}')
        req.dataset_ids = _ids(chosen["datasetIds"])
    req.params = params
    req.test_mode = _flag(query.get("testMode", False), "query.testMode")
    return _finish(req)


class BeaconService:
    """What the Beacon endpoints share: catalog, security settings, budget, audit log."""

    def __init__(
        self,
        settings: Settings,
        *,
        stores: list[Store] | None = None,
        security: SecurityConfig | None = None,
        identity: responses.BeaconIdentity | None = None,
    ):
        self.settings = settings
        self.security = security or SecurityConfig.from_env()
        main = Store.from_settings(settings)
        if stores is None:
            stores = stores_from_env(main)
            stores.extend(Store(s["url"], s.get("storage_options")) for s in self.security.stores)
        self.catalog = BeaconCatalog(stores)
        self.jwks = JwksCache.for_config(self.security)
        self.budget = QueryBudget.from_config(self.security, settings)
        self.audit = AuditLog.from_config(self.security, settings)
        self.identity = identity or responses.BeaconIdentity()
        self._executor_url = settings.executor
        self._executor = None
        self._executor_lock = threading.Lock()

    @property
    def executor(self):
        """One fan-out executor for the server's lifetime (a process pool is not started per
        query); opened on the first query that fans out."""
        with self._executor_lock:
            if self._executor is None:
                from ..fanout import open_executor

                self._executor = open_executor(self._executor_url or "local")
            return self._executor

    def close(self) -> None:
        with self._executor_lock:
            if self._executor is not None:
                self._executor.close()
                self._executor = None

    # -- who may see what ---------------------------------------------------------------------
    def principal(self, request: Request) -> Principal:
        ip = request.client.host if request.client else "unknown"
        return authenticate(request.headers.get("authorization"), ip, self.security, self.jwks)

    def visible(self, principal: Principal, req: BeaconRequest) -> list[tuple[BeaconDataset, str]]:
        """The datasets this request reads, each with the most it may reveal."""
        out = []
        datasets = self.catalog.datasets()
        if req.dataset_ids is not None:
            by_id = {d.id: d for d in datasets}
            for ident in req.dataset_ids:
                ds = by_id.get(ident)
                if ds is None:
                    raise NotFoundError(f"no dataset {ident!r}")
                allowed = granularity_for(principal, ds.id, ds.access, self.security)
                if allowed is None:
                    if not principal.authenticated:
                        raise AuthenticationError(
                            f"dataset {ident} is {ds.access}: send a bearer token"
                        )
                    raise ForbiddenError(f"you have no access to dataset {ident} ({ds.access})")
                out.append((ds, allowed))
            return out
        for ds in datasets:
            allowed = granularity_for(principal, ds.id, ds.access, self.security)
            if allowed is not None:
                out.append((ds, allowed))
        return out

    def is_admin(self, principal: Principal) -> bool:
        """``admins`` lists ``issuer|subject`` (or a bare subject when one issuer is trusted)."""
        if not principal.authenticated or not principal.subject:
            return False
        admins = set(self.security.admins)
        if f"{principal.issuer}|{principal.subject}" in admins:
            return True
        return len(self.security.oidc_issuers) == 1 and principal.subject in admins

    def record_level(self, visible, what: str):
        """Only the datasets this caller may read at record level: anything about one named
        individual is individual-level data, whatever granularity is asked for."""
        kept = [(ds, g) for ds, g in visible if g == "record"]
        if visible and not kept:
            raise ForbiddenError(f"{what} needs record-level access to the dataset")
        return kept

    def check_group_sizes(self, req: BeaconRequest, visible) -> None:
        """Filters must not narrow a dataset below ``min_count`` individuals for a caller who may
        not see individuals (Shringarpure & Bustamante 2015): the answer would be theirs."""
        minimum = self.security.min_count
        if not minimum or not req.filters:
            return
        for ds, allowed in visible:
            if allowed == "record":
                continue
            group = subset_for(ds, req.filters)
            size = int(group.mask.sum()) if group.mask is not None else len(ds.samples)
            if 0 < size < minimum:
                raise ForbiddenError(
                    f"the filters match fewer than {minimum} individuals of dataset {ds.id}; "
                    "widen them"
                )

    def granted(self, req: BeaconRequest, visible) -> str:
        answered = req.granularity
        for _, allowed in visible:
            answered = clamp(answered, allowed)
        return answered

    # -- responses ----------------------------------------------------------------------------
    def meta(self, req: BeaconRequest, granularity: str, entry: str) -> dict:
        return responses.meta(
            granularity=granularity,
            entry_type=entry,
            requested_granularity=req.granularity,
            requested_schemas=req.requested_schemas,
            skip=req.skip,
            limit=req.limit,
            filters=req.raw_filters,
            request_parameters=req.params or None,
            include_resultset_responses=req.include,
            test_mode=req.test_mode,
            beacon_id=self.identity.id,
            requested_api_version=req.api_version,
        )

    def count_report(self, n: int) -> responses.CountReport | None:
        reported, info = protect_count(n, self.security)
        if reported is None:
            return None
        adjusted = info.get("countAdjustedTo")
        return responses.CountReport(
            reported,
            adjusted_to=tuple(adjusted) if adjusted else None,
            precision=info.get("countPrecision", "exact"),
            true_positive=n > 0,  # existence is never blurred, only the number
        )

    def build(
        self,
        req: BeaconRequest,
        granularity: str,
        entry: str,
        answers: list[tuple[str, int, list[dict]]],
        info: dict | None = None,
    ) -> dict:
        """A boolean, count or result-sets response from (dataset, count, records) triples.

        Each dataset's count is protected on its own (``min_count``) and the total is the sum of
        what the datasets report — never a protected sum of true counts, which would give a
        small count away by subtraction. At record granularity the records are listed, so their
        number is reported as it is (grant record only to those who may see individual data).
        """
        exists = any(n > 0 for _, n, _ in answers)
        protect = granularity != "record"
        sets, hidden = [], False
        for ds_id, n, records in answers:
            report = self.count_report(n) if protect else responses.CountReport(n)
            if report is None:
                hidden = True
                continue
            results = records if granularity == "record" else ()
            sets.append(responses.result_set(ds_id, count=report, results=results, exists=n > 0))
        if hidden and not sets:
            granularity = "boolean"  # every count hidden: say only whether there is a hit
        meta = self.meta(req, granularity, entry)
        if granularity == "boolean":
            return responses.boolean_response(meta, exists, info=info)
        return responses.query_response(meta, sets, include=req.include, info=info)

    def error(self, exc: Exception, req: BeaconRequest | None, entry: str | None) -> JSONResponse:
        if isinstance(exc, SandgrainError):
            status, message = exc.http_status, " ".join(str(exc).split())
        else:
            logger.exception("beacon internal error")
            status, message = 500, f"internal error: {type(exc).__name__}"
        body = responses.error_response(status, message, beacon_id=self.identity.id)
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="beacon"'
        retry = getattr(exc, "retry_after_s", None)
        if status == 429 and retry:
            headers["Retry-After"] = str(int(retry) + 1)
        return JSONResponse(body, status_code=status, headers=headers or None)

    def record_audit(self, principal, request: Request, req, **fields) -> None:
        query = {"params": req.params, "filters": req.filters} if req else None
        event = audit_event(
            principal,
            kind="query",
            endpoint=request.url.path,
            method=request.method,
            query=query,
            **fields,
        )
        self.audit.record(event)


def service(request: Request) -> BeaconService:
    svc = getattr(request.app.state, "beacon", None)
    if svc is None:
        svc = BeaconService(request.app.state.settings)
        request.app.state.beacon = svc
    return svc


async def _answer(
    request: Request, entry: str, run, *, only: str | None = None, person: str | None = None
) -> JSONResponse:
    """Authenticate, parse, run ``run(svc, req, visible, granularity, charge)`` → (answers,
    info), respond, audit — with Beacon errors for every failure. ``run`` validates the query,
    then calls ``charge()`` (the caller's budget: a rejected query costs nothing), then runs it.
    ``only`` is a dataset named in the path (``/datasets/{id}/…``); ``person`` an individual
    named in the path (``/individuals/{id}…``), which needs record-level access."""
    svc = service(request)
    req = principal = None
    try:
        principal = svc.principal(request)
        req = await parse_request(request)
        if only is not None:
            req.dataset_ids = [only]
        key = principal.budget_key
        charged = []

        def charge() -> None:
            if not charged:  # once, also when the query is asked again below
                charged.append(svc.budget.charge(key))

        for attempt in (1, 2):
            visible = svc.visible(principal, req)
            if person is not None:
                visible = svc.record_level(visible, "a request about one individual")
            svc.check_group_sizes(req, visible)
            granularity = svc.granted(req, visible)
            try:
                answers, info = run(svc, req, visible, granularity, charge)
                break
            except DatasetChangedError:
                if attempt == 2:
                    raise
                svc.catalog.refresh()  # a dataset was re-ingested meanwhile: read the new one
        info = dict(info or {}, provenance=_provenance(visible, {a[0] for a in answers}))
        body = svc.build(req, granularity, entry, answers, info)
    except Exception as exc:  # every failure is a Beacon error response, and audited
        response = svc.error(exc, req, entry)
        _audit_failure(svc, request, principal, req, response, exc)
        return response
    svc.record_audit(
        principal,
        request,
        req,
        outcome="ok",
        datasets=[a[0] for a in answers],
        granularity=body["meta"]["returnedGranularity"],
        counts={a[0]: a[1] for a in answers},
    )
    return JSONResponse(body)


def _provenance(visible, answered: set[str]) -> dict:
    """What an answer came from: the software and, per dataset, the version read and the
    SHA-256 of the files it was ingested from."""
    from .. import __version__

    datasets = {}
    for ds, _ in visible:
        if ds.id in answered:
            inputs = ds.dataset.manifest.get("provenance", {}).get("inputs", [])
            datasets[ds.id] = {
                "version": ds.version,
                "created": ds.dataset.manifest.get("created"),
                "inputs_sha256": [i.get("sha256") for i in inputs],
            }
    return {"software": "sandgrain", "version": __version__, "datasets": datasets}


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _warnings(answers) -> dict | None:
    warnings = [w for a in answers for w in a.warnings]
    return {"warnings": warnings} if warnings else None


# -- genomic variants ------------------------------------------------------------------------------
def _variants(vid: str | None = None, individual: str | None = None):
    def run(svc: BeaconService, req: BeaconRequest, visible, granularity, charge):
        if vid is not None:
            if req.params:
                raise InputError("/g_variants/{id} takes no request parameters")
            if parse_variant_id(vid) is None:
                raise NotFoundError(
                    f"{vid!r} is not a variant id of this Beacon (like 1-10177-A-AC)"
                )
            q = VariantQuery(variant_id=vid)
        elif individual is not None:
            q = VariantQuery(individual_id=individual)
            if req.params:
                q = VariantQuery.from_params(req.params)
                q.individual_id = individual
        else:
            q = VariantQuery.from_params(req.params)
        charge()
        datasets = [ds for ds, _ in visible]
        if individual is not None:
            datasets = [ds for ds in datasets if individual in ds.sample_index]
        answers = query_variants(
            svc.catalog, datasets, q, filters=req.filters, skip=req.skip, limit=req.limit,
            granularity=granularity, carriers=granularity == "record",
            executor=lambda: svc.executor,
        )  # fmt: skip
        records = {a.dataset: [responses.variant_record(row) for row in a.rows] for a in answers}
        return [(a.dataset, a.count, records[a.dataset]) for a in answers], _warnings(answers)

    return run


def _individuals(individual: str | None = None, vid: str | None = None):
    def run(svc: BeaconService, req: BeaconRequest, visible, granularity, charge):
        if req.params:
            raise InputError("individual queries take filters, not request parameters")
        if vid is not None and parse_variant_id(vid) is None:
            raise NotFoundError(f"{vid!r} is not a variant id of this Beacon (like 1-10177-A-AC)")
        charge()
        out, warnings = [], []
        for ds, _ in visible:
            if individual is not None and individual not in ds.sample_index:
                continue
            a = query_individuals(
                ds, filters=req.filters, individual_id=individual, variant_id=vid,
                catalog=svc.catalog, skip=req.skip, limit=req.limit,
            )  # fmt: skip
            warnings.extend(a.warnings)
            out.append((a.dataset, a.count, [responses.individual_record(r) for r in a.rows]))
        return out, ({"warnings": warnings} if warnings else None)

    return run


G = "genomicVariant"
I = "individual"  # noqa: E741


@router.api_route("/g_variants", methods=["GET", "POST"], summary="Genomic variant query")
async def g_variants(request: Request):
    """All six genomic query forms: sequence, range, bracket, geneId, aminoacidChange,
    genomicAlleleShortForm (coordinates 0-based)."""
    return await _answer(request, G, _variants())


@router.api_route("/g_variants/{variant_id}", methods=["GET", "POST"], summary="One variant")
async def g_variant(request: Request, variant_id: str):
    return await _answer(request, G, _variants(vid=variant_id))


@router.api_route(
    "/g_variants/{variant_id}/individuals", methods=["GET", "POST"],
    summary="Individuals carrying a variant",
)  # fmt: skip
async def g_variant_individuals(request: Request, variant_id: str):
    return await _answer(request, I, _individuals(vid=variant_id))


@router.api_route("/individuals", methods=["GET", "POST"], summary="Individuals")
async def individuals(request: Request):
    """Individuals, filtered by ontology terms (see /filtering_terms)."""
    return await _answer(request, I, _individuals())


@router.api_route("/individuals/{individual_id}", methods=["GET", "POST"], summary="One individual")
async def individual(request: Request, individual_id: str):
    return await _answer(request, I, _individuals(individual=individual_id), person=individual_id)


@router.api_route(
    "/individuals/{individual_id}/g_variants", methods=["GET", "POST"],
    summary="Variants an individual carries",
)  # fmt: skip
async def individual_variants(request: Request, individual_id: str):
    return await _answer(request, G, _variants(individual=individual_id), person=individual_id)


# -- datasets and cohorts --------------------------------------------------------------------------
async def _collections(request: Request, entry: str, build, one: str | None = None):
    svc = service(request)
    req = principal = None
    try:
        principal = svc.principal(request)
        req = await parse_request(request)
        visible = svc.visible(principal, req)
        if one is not None:
            visible = [(ds, g) for ds, g in visible if ds.id == one]
            if not visible:
                raise NotFoundError(f"no {entry} {one!r}")
        items = [build(svc, ds) for ds, _ in visible]
        page = items[req.skip : req.skip + req.limit]
        meta = responses.meta(
            granularity="record", entry_type=entry, requested_granularity=req.granularity,
            skip=req.skip, limit=req.limit, beacon_id=svc.identity.id,
            requested_schemas=req.requested_schemas,
        )  # fmt: skip
        body = responses.collections_response(meta, page, total=len(items))
    except Exception as exc:
        response = svc.error(exc, req, entry)
        _audit_failure(svc, request, principal, req, response, exc)
        return response
    svc.record_audit(
        principal, request, req, outcome="ok", datasets=[ds.id for ds, _ in visible],
        granularity="record", counts={entry: len(items)},
    )  # fmt: skip
    return JSONResponse(body)


def _audit_failure(svc, request: Request, principal, req, response, exc) -> None:
    if principal is None:
        principal = Principal(None, None, _ip(request), False, frozenset(), ())
    outcome = "denied" if response.status_code in (401, 403, 429) else "error"
    svc.record_audit(principal, request, req, outcome=outcome, detail=str(exc)[:300])


def _dataset_doc(svc: BeaconService, ds: BeaconDataset) -> dict:
    revoked = consent.revoked(ds.store, ds.id)
    consenting = sum(1 for s in ds.samples if s not in revoked)
    return responses.dataset_record(dict(ds.summary(), n_individuals=consenting))


def _cohort_doc(svc: BeaconService, ds: BeaconDataset) -> dict:
    """The dataset's cohort of consenting individuals. With a ``min_count`` set, its sex,
    ethnicity, disease and phenotype distributions are left out: their small cells would
    reveal what the count protection hides."""
    revoked = consent.revoked(ds.store, ds.id)
    people = [p for p in ds.individuals if p["id"] not in revoked]
    summary = dict(ds.summary(), n_individuals=len(people))
    return responses.cohort_record(summary, None if svc.security.min_count else people)


@router.api_route("/datasets", methods=["GET", "POST"], summary="Datasets")
async def datasets(request: Request):
    """The datasets this caller may see."""
    return await _collections(request, "dataset", _dataset_doc)


@router.api_route("/datasets/{dataset_id}", methods=["GET", "POST"], summary="One dataset")
async def dataset(request: Request, dataset_id: str):
    return await _collections(request, "dataset", _dataset_doc, one=dataset_id)


@router.api_route("/datasets/{dataset_id}/g_variants", methods=["GET", "POST"])
async def dataset_variants(request: Request, dataset_id: str):
    """Genomic variant query in one dataset."""
    return await _answer(request, G, _variants(), only=dataset_id)


@router.api_route("/datasets/{dataset_id}/individuals", methods=["GET", "POST"])
async def dataset_individuals(request: Request, dataset_id: str):
    """Individuals of one dataset."""
    return await _answer(request, I, _individuals(), only=dataset_id)


@router.api_route("/cohorts", methods=["GET", "POST"], summary="Cohorts")
async def cohorts(request: Request):
    """One cohort per dataset: all of its (consenting) individuals."""
    return await _collections(request, "cohort", _cohort_doc)


@router.api_route("/cohorts/{cohort_id}", methods=["GET", "POST"], summary="One cohort")
async def cohort(request: Request, cohort_id: str):
    return await _collections(request, "cohort", _cohort_doc, one=cohort_id)


@router.api_route("/cohorts/{cohort_id}/individuals", methods=["GET", "POST"])
async def cohort_individuals(request: Request, cohort_id: str):
    """The individuals of a cohort."""
    return await _answer(request, I, _individuals(), only=cohort_id)


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


@router.api_route("/filtering_terms", methods=["GET", "POST"], summary="Filtering terms")
async def filtering_terms_endpoint(request: Request):
    """The ontology terms individuals of the visible datasets carry (usable as filters)."""
    svc = service(request)
    req = principal = None
    try:
        principal = svc.principal(request)
        req = await parse_request(request)
        terms: dict[str, dict] = {}
        visible = svc.visible(principal, req)
        for ds, _ in visible:
            revoked = consent.revoked(ds.store, ds.id)
            people = [p for p in ds.individuals if p["id"] not in revoked]
            for ident, term in filtering_terms(people).items():
                terms.setdefault(ident, term)
        body = responses.filtering_terms_response(
            sorted(terms.values(), key=lambda t: t["id"]), beacon_id=svc.identity.id
        )
    except Exception as exc:
        response = svc.error(exc, None, None)
        _audit_failure(svc, request, principal, req, response, exc)
        return response
    svc.record_audit(
        principal, request, req, outcome="ok", datasets=[ds.id for ds, _ in visible],
        counts={"filteringTerms": len(terms)},
    )  # fmt: skip
    return JSONResponse(body)


# -- admin: dynamic consent -----------------------------------------------------------------------
@router.post(
    "/admin/datasets/{dataset_id}/individuals/{individual_id}/{action}",
    summary="Revoke or restore a participant (admins only)",
)
async def admin_consent(request: Request, dataset_id: str, individual_id: str, action: str):
    """``action`` is ``revoke`` or ``restore``; needs a token whose subject is listed in the
    security config's ``admins``. Audited."""
    svc = service(request)
    principal = None
    try:
        if action not in ("revoke", "restore"):
            raise NotFoundError(f"unknown action {action!r}: use revoke or restore")
        principal = svc.principal(request)
        if not principal.authenticated:
            raise AuthenticationError("the admin API needs a bearer token")
        if not svc.is_admin(principal):
            raise ForbiddenError(f"{principal.subject} is not a Beacon admin")
        ds = svc.catalog.get(dataset_id)
        if action == "revoke":
            consent.revoke(ds.store, dataset_id, individual_id, by=principal.subject or "")
            changed = True
        else:
            changed = consent.restore(ds.store, dataset_id, individual_id)
    except Exception as exc:
        response = svc.error(exc, None, None)
        if principal is None:
            principal = Principal(None, None, _ip(request), False, frozenset(), ())
        svc.audit.record(
            audit_event(
                principal,
                kind=action if action in ("revoke", "restore") else "admin",
                endpoint=request.url.path,
                method="POST",
                outcome="denied" if response.status_code in (401, 403) else "error",
                datasets=[dataset_id],
                query={"individual": individual_id},
                detail=str(exc)[:300],
            )  # fmt: skip
        )
        return response
    svc.audit.record(
        audit_event(
            principal,
            kind=action,
            endpoint=request.url.path,
            method="POST",
            outcome="ok",
            datasets=[dataset_id],
            query={"individual": individual_id},
        )  # fmt: skip
    )
    return JSONResponse(
        {"dataset": dataset_id, "individual": individual_id, "action": action, "changed": changed}
    )
