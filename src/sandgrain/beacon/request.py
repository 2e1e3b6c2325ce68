"""A Beacon request in one typed shape, validated once.

A Beacon v2 request arrives either as a GET query string (``?requestedGranularity=count&
referenceName=1&start=…``) or as a POST body (``{"meta": {…}, "query": {"requestParameters":
{…}, "filters": […], "pagination": {…}}}``, the framework's ``beaconRequestBody``).
:func:`parse_request` reads both into a :class:`BeaconRequest`, whose construction checks every
framework field (granularity, paging, ``includeResultsetResponses``, filters, ``datasetIds``);
nothing downstream checks them again. The request parameters of a genomic query stay a plain
mapping here: :meth:`sandgrain.beacon.query.VariantQuery.from_params` is their one check.

Reference: GA4GH Beacon v2.1.1 framework, ``requests/beaconRequestBody.json`` and
``common/beaconCommonComponents.json`` (``Granularity``, ``Pagination``,
``IncludeResultsetResponses``, ``Filters``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sandgrain.errors import InputError

#: Granularities from least to most revealing (the spec's ``aggregated`` is not served).
GRANULARITIES = ("boolean", "count", "record")
#: Values of ``includeResultsetResponses``: which result sets a response lists.
INCLUDE_MODES = ("HIT", "MISS", "ALL", "NONE")
#: Most records one page may ask for.
MAX_LIMIT = 1000
#: Query-string parameters of the framework (everything else is a request parameter).
FRAMEWORK_PARAMS = {
    "requestedGranularity", "skip", "limit", "includeResultsetResponses", "filters",
    "requestedSchemas", "datasetIds", "testMode", "apiVersion",
}  # fmt: skip


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


def parse_filters(filters: Any) -> list[str]:
    """Ontology term ids from Beacon filters (``[{"id": …}]``, ``["HP:…"]`` or ``"A,B"``).

    Only exact ontology-term filters are served; alphanumeric filters (``operator``/``value``)
    and similarity searches are refused rather than ignored, so an answer never silently counts
    more individuals than the filter meant.
    """
    if not filters:
        return []
    items = filters if isinstance(filters, list) else str(filters).split(",")
    ids = []
    for item in items:
        if isinstance(item, dict):
            if "operator" in item or "value" in item:
                raise InputError(
                    'only ontology-term filters ({"id": "HP:0001250"}) are supported; '
                    "alphanumeric filters with operator/value are not"
                )
            if "similarity" in item and item["similarity"] not in ("exact", None):
                raise InputError("only exact ontology-term filters are supported (similarity)")
            value = item.get("id")
        else:
            value = item
        if not isinstance(value, str) or not value.strip():
            raise InputError("a filter needs an id, e.g. NCIT:C16576")
        ids.append(value.strip())
    return ids


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError(f"{name} must be true or false (got {value!r})")


def _ids(value: Any) -> list[str]:
    """Ids from a list or a comma-separated string, each once (a repeated dataset must not be
    counted twice)."""
    items = value if isinstance(value, list) else str(value).split(",")
    return list(dict.fromkeys(str(v).strip() for v in items if str(v).strip()))


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
    filters: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.skip = check_count(self.skip, "skip")
        self.limit = check_count(self.limit, "limit", MAX_LIMIT)
        self.test_mode = _flag(self.test_mode, "testMode")
        check_granularity(self.granularity)
        if self.include not in INCLUDE_MODES:
            raise InputError(
                f"includeResultsetResponses must be one of {', '.join(INCLUDE_MODES)}"
            )
        self.filters = parse_filters(self.raw_filters)


def parse_request(method: str, query: Iterable[tuple[str, str]], body: bytes) -> BeaconRequest:
    """The framework fields and request parameters of a GET (``query``: the query string's
    ``(key, value)`` pairs, a key may repeat) or of a POST (``body``: its JSON; empty means
    all defaults)."""
    if method == "GET":
        return _from_query(list(query))
    if not body.strip():
        return BeaconRequest()
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not JSON ({exc})") from None
    return _from_body(doc)


def _from_query(items: list[tuple[str, str]]) -> BeaconRequest:
    values: dict[str, list[str]] = {}
    for key, value in items:
        values.setdefault(key, []).append(value)
    repeated = [k for k, v in values.items() if len(v) > 1 and k not in ("start", "end")]
    if repeated:
        raise InputError(f"parameter {repeated[0]} is given more than once")
    q = {k: v[0] for k, v in values.items()}
    return BeaconRequest(
        granularity=q.get("requestedGranularity", "boolean"),
        skip=q.get("skip", 0),
        limit=q.get("limit", 10),
        include=q.get("includeResultsetResponses", "HIT"),
        raw_filters=_ids(q["filters"]) if q.get("filters") else [],
        requested_schemas=_ids(q["requestedSchemas"]) if q.get("requestedSchemas") else [],
        dataset_ids=_ids(q["datasetIds"]) if q.get("datasetIds") else None,
        test_mode=q.get("testMode", "false"),
        api_version=q.get("apiVersion"),
        params={
            k: ",".join(v) if len(v) > 1 else v[0]
            for k, v in values.items()
            if k not in FRAMEWORK_PARAMS
        },
    )


def _from_body(body: Any) -> BeaconRequest:
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object with meta and query")
    meta = body.get("meta") or {}
    query = body.get("query") or {}
    if not isinstance(meta, dict) or not isinstance(query, dict):
        raise InputError("meta and query must be JSON objects")
    schemas = meta.get("requestedSchemas") or []
    pagination = query.get("pagination") or {}
    if not isinstance(pagination, dict):
        raise InputError("query.pagination must be an object with skip and limit")
    filters = query.get("filters") or []
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
    dataset_ids = _ids(params.pop("datasetIds")) if "datasetIds" in params else None
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
        raw_filters=filters if isinstance(filters, list) else [filters],
        params=params,
        requested_schemas=schemas if isinstance(schemas, list) else [schemas],
        dataset_ids=dataset_ids,
        test_mode=_flag(query.get("testMode", False), "query.testMode"),
        api_version=meta.get("apiVersion"),
    )
