"""A Beacon request in one typed shape, validated once.

A Beacon v2 request arrives either as a GET query string (``?requestedGranularity=count&
referenceName=1&start=…``) or as a POST body (``{"meta": {…}, "query": {"requestParameters":
{…}, "filters": […], "pagination": {…}}}``, the framework's ``beaconRequestBody``).
:func:`parse_request` reads both into a :class:`BeaconRequest`, whose construction checks every
framework field (granularity, paging, ``includeResultsetResponses``, filters, ``datasetIds``);
nothing downstream checks them again. The request parameters of a genomic query stay a plain
mapping here: :meth:`sandgrain.beacon.query.VariantQuery.from_params` is their one check.

Paging follows the framework (``common/beaconCommonComponents.json``): ``skip`` is a number of
*pages* of ``limit`` records to skip, and ``limit: 0`` asks for as many as the Beacon gives
(:data:`MAX_LIMIT`); :attr:`BeaconRequest.offset` and :attr:`BeaconRequest.page_size` are the
records they mean.

Parameters this Beacon does not know are refused (400, naming them) rather than ignored: the
framework's ``beaconErrorResponse`` is for "a missing parameter or an invalid query", and
``returnedSchemas`` exists to tell "no hit on a well understood request" from a request that
could not be interpreted — an ignored parameter would turn the second into the first. The
framework's GET parameters (``requestedSchema`` — singular, as the endpoints declare it — or
``requestedSchemas``, ``skip``, ``limit``, ``includeResultsetResponses``, ``filters``,
``requestedGranularity``, ``datasetIds``, ``testMode``, ``apiVersion``, and
``includeDescendantTerms`` for GET filters) are known everywhere; each entry type knows its
request parameters (genomic variants: :class:`sandgrain.beacon.query.VariantQuery`; the
others take none). In a POST body, unknown keys of ``query`` and ``query.pagination`` are
refused the same way; ``meta`` may carry anything (it describes the client).

Reference: GA4GH Beacon v2.1.1 framework, ``requests/beaconRequestBody.json`` and
``common/beaconCommonComponents.json`` (``Granularity``, ``Pagination``, ``Skip``, ``Limit``,
``IncludeResultsetResponses``, ``Filters``).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sandgrain.errors import InputError

from .filters import parse_filters

__all__ = ["BeaconRequest", "parse_filters", "parse_request"]

#: Granularities from least to most revealing (the spec's ``aggregated`` is not served).
GRANULARITIES = ("boolean", "count", "record")
#: Values of ``includeResultsetResponses``: which result sets a response lists.
INCLUDE_MODES = ("HIT", "MISS", "ALL", "NONE")
#: Most records one page may ask for.
MAX_LIMIT = 1000
#: Deepest nesting of arrays and objects in a POST body (a Beacon request nests about 5).
MAX_JSON_DEPTH = 64
#: Query-string parameters of the framework (everything else is a request parameter).
FRAMEWORK_PARAMS = {
    "requestedGranularity", "skip", "limit", "includeResultsetResponses", "filters",
    "requestedSchema", "requestedSchemas", "datasetIds", "testMode", "apiVersion",
    "includeDescendantTerms",
}  # fmt: skip
#: Keys of a POST body's ``query`` (framework ``BeaconQuery``; ``datasets`` as some clients send).
QUERY_KEYS = {
    "requestParameters", "filters", "pagination", "requestedGranularity",
    "includeResultsetResponses", "testMode", "datasets", "$schema",
}  # fmt: skip
PAGINATION_KEYS = {"skip", "limit", "currentPage", "nextPage", "previousPage"}
#: Most datasets one request may name.
MAX_DATASET_IDS = 1000


def check_granularity(value: Any) -> str:
    """``value`` if it is one of :data:`GRANULARITIES`; :class:`InputError` otherwise."""
    if value not in GRANULARITIES:
        raise InputError(
            f"requestedGranularity must be one of {', '.join(GRANULARITIES)} (got {value!r})"
        )
    return value


def check_count(value: Any, name: str, maximum: int | None = None) -> int:
    """A paging number (``skip``, ``limit``): a whole number ≥ 0, at most ``maximum``; numeric
    strings (from a query string) are accepted."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise InputError(f"{name} must be a whole number (got {value!r:.40})")
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


def _ids(value: Any, name: str = "datasetIds") -> list[str]:
    """Ids from a list of strings or a comma-separated string, each once (a repeated dataset
    must not be counted twice); anything else (an object, a number) is refused."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise InputError(f'{name} must be a list of ids ["id", …] (got {type(value).__name__})')
    if len(items) > MAX_DATASET_IDS:
        raise InputError(f"{name} may name at most {MAX_DATASET_IDS} ids")
    return list(dict.fromkeys(v.strip() for v in items if v.strip()))


@dataclass
class BeaconRequest:
    """A request in one shape, whether it came as a GET query string or a POST body.

    Construction validates: ``skip`` and ``limit`` become whole numbers (``limit`` at most
    :data:`MAX_LIMIT`), ``granularity`` and ``include`` must be known values, and
    ``raw_filters`` (as sent, echoed in the response's ``meta``) are read into ``filters``
    (ontology term ids). ``params`` are the request parameters of the entry type's query.
    """

    granularity: str = "boolean"
    skip: int = 0
    limit: int = 10
    include: str = "HIT"
    raw_filters: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    requested_schemas: list = field(default_factory=list)
    dataset_ids: list[str] | None = None
    test_mode: bool = False
    api_version: str | None = None
    descendants: bool = True
    filters: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.skip = check_count(self.skip, "skip")
        self.limit = check_count(self.limit, "limit", MAX_LIMIT)
        self.test_mode = _flag(self.test_mode, "testMode")
        self.descendants = _flag(self.descendants, "includeDescendantTerms")
        check_granularity(self.granularity)
        if self.include not in INCLUDE_MODES:
            raise InputError(f"includeResultsetResponses must be one of {', '.join(INCLUDE_MODES)}")
        self.filters = parse_filters(self.raw_filters, descendants=self.descendants)

    @property
    def page_size(self) -> int:
        """Records per page: ``limit``, or :data:`MAX_LIMIT` for ``limit: 0`` ("return all the
        results or the maximum allowed by the Beacon", framework ``Limit``)."""
        return self.limit or MAX_LIMIT

    @property
    def offset(self) -> int:
        """Records before the page: ``skip`` pages of :attr:`page_size` (framework ``Skip``:
        "number of pages to skip")."""
        return self.skip * self.page_size

    def check_no_params(self, what: str) -> None:
        """Refuse request parameters where ``what`` (an entry type's query) takes none."""
        if self.params:
            names = ", ".join(sorted(self.params)[:5])
            raise InputError(
                f"unknown parameter(s) {names}: {what} take filters, not request parameters"
            )


def parse_request(method: str, query: Iterable[tuple[str, str]], body: bytes) -> BeaconRequest:
    """The framework fields and request parameters of a GET (``query``: the query string's
    ``(key, value)`` pairs, a key may repeat) or of a POST (``body``: its JSON; empty means
    all defaults)."""
    if method == "GET":
        return _from_query(list(query))
    if not body:  # no body: every default (whitespace is not JSON)
        return BeaconRequest()
    check_json_depth(body)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, 5,000-digit ints
        raise InputError(f"the request body is not JSON ({exc})") from None
    return _from_body(doc)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def check_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse (:class:`InputError`, 400) a JSON text nesting arrays and objects deeper than
    ``limit``, before it is parsed: the standard library's parser recurses once per level and
    would fail with a ``RecursionError`` on ``[`` × 100,000. Brackets inside strings do not
    count."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(brackets) <= 2 * limit:
        return  # too few brackets to nest that deep
    depth = max(itertools.accumulate(_DEPTH_STEP[b] for b in brackets), default=0)
    if depth > limit:
        raise InputError(
            f"the request body nests arrays and objects {depth} levels deep; at most {limit} "
            "are allowed"
        )


def _from_query(items: list[tuple[str, str]]) -> BeaconRequest:
    values: dict[str, list[str]] = {}
    for key, value in items:
        values.setdefault(key, []).append(value)
    repeated = [k for k, v in values.items() if len(v) > 1 and k not in ("start", "end")]
    if repeated:
        raise InputError(f"parameter {repeated[0]} is given more than once")
    q = {k: v[0] for k, v in values.items()}
    schemas = [
        s for key in ("requestedSchema", "requestedSchemas") if q.get(key)
        for s in _ids(q[key], key)
    ]  # fmt: skip
    return BeaconRequest(
        granularity=q.get("requestedGranularity", "boolean"),
        skip=q.get("skip", 0),
        limit=q.get("limit", 10),
        include=q.get("includeResultsetResponses", "HIT"),
        raw_filters=_ids(q["filters"], "filters") if q.get("filters") else [],
        requested_schemas=list(dict.fromkeys(schemas)),
        dataset_ids=_ids(q["datasetIds"]) if q.get("datasetIds") else None,
        test_mode=q.get("testMode", "false"),
        api_version=q.get("apiVersion"),
        descendants=q.get("includeDescendantTerms", "true"),
        params={
            k: ",".join(v) if len(v) > 1 else v[0]
            for k, v in values.items()
            if k not in FRAMEWORK_PARAMS
        },
    )


def _schema_item(item: Any) -> bool:
    """Whether ``item`` reads as a requested schema: an id, or an object of strings."""
    if isinstance(item, str):
        return True
    return isinstance(item, dict) and all(isinstance(v, str) for v in item.values())


def _given(value: Any, default: Any) -> Any:
    """``value``, or ``default`` when it is null (JSON ``null`` means "not given")."""
    return default if value is None else value


def _present(fields: dict) -> dict:
    """The fields of an object that are not null."""
    return {k: v for k, v in fields.items() if v is not None}


def _from_body(body: Any) -> BeaconRequest:
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object with meta and query")
    # a null field is one not given (its default), at every level
    meta, query = _given(body.get("meta"), {}), _given(body.get("query"), {})
    if not isinstance(meta, dict) or not isinstance(query, dict):
        raise InputError("meta and query must be JSON objects")
    unknown = sorted(set(query) - QUERY_KEYS)
    meta, query = _present(meta), _present(query)
    schemas = _given(meta.get("requestedSchemas"), [])
    if not isinstance(meta.get("apiVersion", ""), str):
        raise InputError("meta.apiVersion must be a string, e.g. v2.0")
    if not isinstance(schemas, list) or not all(_schema_item(i) for i in schemas):
        raise InputError(
            'meta.requestedSchemas must be a list of {"entityType": …, "schema": …} (or ids)'
        )
    if unknown:
        raise InputError(
            f"unknown key query.{unknown[0]:.40}; a Beacon query has "
            f"{', '.join(sorted(QUERY_KEYS - {'$schema'}))}"
        )
    pagination = _given(query.get("pagination"), {})
    if not isinstance(pagination, dict):
        raise InputError("query.pagination must be an object with skip and limit")
    unknown = sorted(set(pagination) - PAGINATION_KEYS)
    pagination = _present(pagination)
    if unknown:
        raise InputError(f"unknown key query.pagination.{unknown[0]:.40}: use skip and limit")
    filters = _given(query.get("filters"), [])
    if not isinstance(filters, list):
        raise InputError('query.filters must be a list, e.g. [{"id": "HP:0001250"}]')
    params = _given(query.get("requestParameters"), {})
    if isinstance(params, list):  # some clients send a list of parameter objects
        merged: dict = {}
        for item in params:
            if not isinstance(item, dict):
                raise InputError("query.requestParameters must be an object")
            merged.update(item)
        params = merged
    if not isinstance(params, dict):
        raise InputError("query.requestParameters must be an object")
    params = dict(params)  # a null parameter is read as not given by its entry type
    given_ids = params.pop("datasetIds", None)
    dataset_ids = _ids(given_ids) if given_ids is not None else None
    if "datasets" in query:
        chosen = query["datasets"]
        if not isinstance(chosen, dict) or not isinstance(chosen.get("datasetIds"), list):
            raise InputError('query.datasets must be {"datasetIds": ["id", …]}')
        dataset_ids = _ids(chosen["datasetIds"])
    return BeaconRequest(
        granularity=query.get("requestedGranularity", "boolean"),
        skip=pagination.get("skip", 0),
        limit=pagination.get("limit", 10),
        include=query.get("includeResultsetResponses", "HIT"),
        raw_filters=filters,
        params=params,
        requested_schemas=schemas,
        dataset_ids=dataset_ids,
        test_mode=_flag(query.get("testMode", False), "query.testMode"),
        api_version=meta.get("apiVersion"),
    )
