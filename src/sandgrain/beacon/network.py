"""Beacon Network: one Beacon answering from its own datasets and from remote Beacons.

An aggregator is a Beacon whose security config lists remote Beacons (``network``, see
:class:`RemoteBeacon`). A query to one of its network endpoints (``/g_variants``,
``/g_variants/{id}``, ``/g_variants/{id}/individuals``, ``/individuals``, ``/datasets``,
``/cohorts``, ``/filtering_terms``) is answered in two steps:

1. **This Beacon first.** The local service reads, checks, authorises, charges and audits the
   query exactly as without a network (:class:`~sandgrain.beacon.service.BeaconService`). A
   request it refuses (400, 401, 403, 404, 429) is refused as a whole and nothing is sent to any
   remote, so the network adds no way around validation, access rules or the query budget.
2. **Then every remote, in parallel** (:mod:`httpx`, asynchronous), each within its own
   ``timeout_s``. What goes out is rebuilt from the validated request (:func:`forward_query`,
   :func:`forward_body`), never the caller's bytes or headers: the caller's bearer token is sent
   only to remotes configured with ``forward_token``. A remote that is down, slow, refuses, or
   answers something that is not a Beacon response is left out and marked; the answer is then
   partial (``info.network.partial``) rather than an error.

The answers are merged per dataset (:func:`merge`): every result set, dataset and cohort carries
the ``beaconId`` that declared it and the ``beaconName`` it is configured under (``local`` for
this Beacon). The merged answer's granularity is the lowest any part returned (a remote that only
says yes/no makes the whole answer boolean: a sum of counts that leaves one part out would be
wrong), and its total is the sum of what each Beacon reported, each protected by its own Beacon's
small-count rule. ``info.network.beacons`` lists each Beacon with its status, HTTP status, time
and, where it gave one, its provenance.

Requests with ``datasetIds`` are routed: the remotes' ``/datasets`` lists are read first (same
token rule) and each Beacon is asked only for the datasets it holds. Forwarded requests carry the
header ``X-Beacon-Network-Hops``; a sandgrain Beacon receiving it answers from its own datasets
only, so two aggregators listing each other cannot loop.

References
----------
- Rambla J, Baudis M, Ariosto R, et al. (2022). Beacon v2 and Beacon networks: A "lingua franca"
  for federated data discovery in biomedical genomics, and beyond. Human Mutation 43(6):791-799.
- GA4GH Beacon v2.1.1 framework: ``beaconResultsets.json`` (``ResultsetInstance`` allows
  additional properties, which carry ``beaconId``), ``beaconFilteringTermsResponse.json``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from sandgrain.errors import InputError

from . import responses
from .request import GRANULARITIES, BeaconRequest, parse_request

if TYPE_CHECKING:  # the service imports the security config, which imports this module
    from .service import BeaconService, Call

#: Header on every forwarded request; a sandgrain Beacon receiving it does not forward again.
HOPS_HEADER = "X-Beacon-Network-Hops"
#: Name under which this Beacon's own part of a network answer is listed.
LOCAL = "local"
DEFAULT_TIMEOUT_S = 5.0
#: Largest remote response read (bytes); a larger one is left out as ``invalid``.
DEFAULT_MAX_BYTES = 16 << 20
#: Most datasets read from a remote's ``/datasets`` to route ``datasetIds`` (one page).
DISCOVERY_LIMIT = 1000
#: How a remote's part of an answer went.
STATUSES = ("ok", "error", "timeout", "unreachable", "invalid", "skipped")
#: Paths below the Beacon's base URL that a network answers; the rest stay local.
NETWORK_ROOTS = ("g_variants", "individuals", "datasets", "cohorts", "filtering_terms")


# -- configuration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteBeacon:
    """A remote Beacon an aggregator asks (one entry of the security config's ``network``).

    Attributes
    ----------
    url
        The remote's Beacon base URL (``https://host/api/beacon``); ``http://`` only on
        loopback.
    name
        What the aggregator calls it in answers (``beaconName``, ``info.network``); default: the
        URL's host and port. Unique within the network; ``local`` is this Beacon's.
    timeout_s
        The longest the aggregator waits for this remote's whole answer (default 5 s).
    forward_token
        Whether the caller's ``Authorization`` header is sent to this remote (default false:
        a token is meant for this Beacon, and a remote that receives it could replay it).
    max_bytes
        Largest answer read from this remote (default 16 MiB).
    """

    url: str
    name: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S
    forward_token: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_config(cls, item: Any) -> RemoteBeacon:
        """One ``network`` entry (a mapping, or a :class:`RemoteBeacon`), checked; unknown keys
        are errors."""
        if isinstance(item, RemoteBeacon):
            return item
        if not isinstance(item, Mapping):
            raise InputError('each entry of network must be an object like {"url": …}')
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(item) - names)
        if unknown:
            raise InputError(
                f"unknown network setting(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )
        url = item.get("url")
        if not isinstance(url, str) or not url:
            raise InputError("each entry of network needs a url")
        parts = urllib.parse.urlsplit(url)
        if parts.query or parts.fragment or parts.username or parts.password:
            raise InputError(f"network url {url!r} must be a plain base URL (no query, no user)")
        if not (parts.scheme == "https" and parts.hostname) and not (
            parts.scheme == "http" and _loopback(parts.hostname)
        ):
            raise InputError(
                f"network url must be https:// (http:// only on loopback), not {url!r}"
            )
        name = item.get("name") or parts.netloc
        if not isinstance(name, str) or name == LOCAL:
            raise InputError(f"network name must be a string other than {LOCAL!r}")
        timeout = item.get("timeout_s", DEFAULT_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise InputError(f"network timeout_s must be a number > 0, not {timeout!r}")
        forward = item.get("forward_token", False)
        if not isinstance(forward, bool):
            raise InputError(f"network forward_token must be true or false, not {forward!r}")
        size = item.get("max_bytes", DEFAULT_MAX_BYTES)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1024:
            raise InputError(f"network max_bytes must be a whole number ≥ 1024, not {size!r}")
        return cls(url.rstrip("/"), name, float(timeout), forward, size)


def remote_beacons(items: Iterable[Any]) -> tuple[RemoteBeacon, ...]:
    """The ``network`` setting, each entry checked, names unique."""
    if isinstance(items, str | bytes | Mapping):
        raise InputError('network must be a list of {"url": …} objects')
    remotes = tuple(RemoteBeacon.from_config(item) for item in items)
    names = [r.name for r in remotes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"network names must be unique: {', '.join(repeated)} repeated")
    return remotes


def _loopback(host: str | None) -> bool:
    from .policy import is_loopback  # the policy module imports this one

    return is_loopback(host)


# -- what goes out ---------------------------------------------------------------------------------
def forward_query(req: BeaconRequest, dataset_ids: Sequence[str] | None) -> list[tuple[str, str]]:
    """A GET query string with the request's validated fields only (``dataset_ids`` replacing
    the caller's)."""
    pairs = [(str(k), str(v)) for k, v in req.params.items()]
    pairs += [
        ("requestedGranularity", req.granularity),
        ("skip", str(req.skip)),
        ("limit", str(req.limit)),
        ("includeResultsetResponses", req.include),
    ]
    if req.raw_filters:
        pairs.append(("filters", ",".join(_filter_id(f) for f in req.raw_filters)))
    if req.requested_schemas:
        pairs.append(("requestedSchemas", ",".join(map(_schema_id, req.requested_schemas))))
    if dataset_ids is not None:
        pairs.append(("datasetIds", ",".join(dataset_ids)))
    if req.test_mode:
        pairs.append(("testMode", "true"))
    return pairs


def forward_body(req: BeaconRequest, dataset_ids: Sequence[str] | None) -> dict:
    """A POST body (``beaconRequestBody``) with the request's validated fields only."""
    query: dict[str, Any] = {
        "requestParameters": dict(req.params),
        "filters": list(req.raw_filters),
        "requestedGranularity": req.granularity,
        "pagination": {"skip": req.skip, "limit": req.limit},
        "includeResultsetResponses": req.include,
        "testMode": req.test_mode,
    }
    if dataset_ids is not None:
        query["datasets"] = {"datasetIds": list(dataset_ids)}
    meta: dict[str, Any] = {"apiVersion": req.api_version or responses.API_VERSION}
    if req.requested_schemas:
        meta["requestedSchemas"] = list(req.requested_schemas)
    return {"meta": meta, "query": query}


def _filter_id(item: Any) -> str:
    return str(item.get("id")) if isinstance(item, Mapping) else str(item)


def _schema_id(item: Any) -> str:
    return str(item.get("schema")) if isinstance(item, Mapping) else str(item)


# -- one remote's answer ---------------------------------------------------------------------------
@dataclass
class Reply:
    """What one Beacon contributed: its document (``status == "ok"``) or why not."""

    name: str
    status: str
    doc: dict | None = None
    http_status: int | None = None
    error: str | None = None
    elapsed_ms: float | None = None

    @property
    def beacon_id(self) -> str | None:
        meta = (self.doc or {}).get("meta")
        return meta.get("beaconId") if isinstance(meta, Mapping) else None

    def summary(self) -> dict:
        """This Beacon's entry in ``info.network.beacons``."""
        out: dict[str, Any] = {"name": self.name, "beaconId": self.beacon_id, "status": self.status}
        if self.http_status is not None:
            out["httpStatus"] = self.http_status
        if self.elapsed_ms is not None:
            out["elapsedMs"] = round(self.elapsed_ms, 1)
        if self.error:
            out["error"] = self.error
        if self.status == "ok" and self.doc is not None:
            summary = self.doc.get("responseSummary") or {}
            granularity = (self.doc.get("meta") or {}).get("returnedGranularity")
            if granularity:
                out["returnedGranularity"] = granularity
            if "exists" in summary:
                out["exists"] = summary["exists"]
            if "numTotalResults" in summary:
                out["numTotalResults"] = summary["numTotalResults"]
            provenance = (self.doc.get("info") or {}).get("provenance")
            if provenance:
                out["provenance"] = provenance
        return {k: v for k, v in out.items() if v is not None}


async def fetch(
    client: httpx.AsyncClient,
    remote: RemoteBeacon,
    method: str,
    path: Sequence[str],
    *,
    authorization: str | None,
    params: list[tuple[str, str]] | None = None,
    body: dict | None = None,
) -> Reply:
    """Ask ``remote`` once: its JSON document, or a :class:`Reply` saying what went wrong. Never
    raises for the remote's faults; the whole exchange ends within ``remote.timeout_s``."""
    from .. import __version__

    url = remote.url + "".join("/" + urllib.parse.quote(p, safe="") for p in path)
    headers = {
        "Accept": "application/json",
        "User-Agent": f"sandgrain/{__version__} beacon-network",
        HOPS_HEADER: "1",
    }
    if remote.forward_token and authorization:
        headers["Authorization"] = authorization
    started = time.perf_counter()

    def reply(status: str, **kw) -> Reply:
        return Reply(remote.name, status, elapsed_ms=(time.perf_counter() - started) * 1e3, **kw)

    async def exchange() -> tuple[int, bytes]:
        async with client.stream(
            method, url, params=params, json=body, headers=headers,
            timeout=httpx.Timeout(remote.timeout_s),
        ) as response:  # fmt: skip
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > remote.max_bytes:
                    raise _TooLarge(remote.max_bytes)
            return response.status_code, bytes(data)

    try:
        status, data = await asyncio.wait_for(exchange(), remote.timeout_s)
    except (TimeoutError, httpx.TimeoutException):
        return reply("timeout", error=f"no answer within {remote.timeout_s:g} s")
    except _TooLarge as exc:
        return reply("invalid", error=str(exc))
    except httpx.HTTPError as exc:
        return reply("unreachable", error=f"{type(exc).__name__}: {exc}"[:300])
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        doc = None
    if status != 200:
        message = _error_message(doc) or f"HTTP {status}"
        return reply("error", http_status=status, error=message[:300])
    if not isinstance(doc, dict):
        return reply("invalid", http_status=status, error="the answer is not a JSON object")
    return reply("ok", http_status=status, doc=doc)


class _TooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"the answer is larger than {limit} bytes")


def _error_message(doc: Any) -> str | None:
    error = doc.get("error") if isinstance(doc, dict) else None
    message = error.get("errorMessage") if isinstance(error, dict) else None
    return str(message) if message else None


# -- checking what came back -----------------------------------------------------------------------
def _shape_error(doc: dict, kind: str) -> str | None:
    """Why ``doc`` cannot be merged as a ``kind`` answer (``query``, ``collections``,
    ``filteringTerms``), or ``None``. Only what the merge reads is checked: a remote's records
    are passed on as it sent them."""
    meta, summary, response = doc.get("meta"), doc.get("responseSummary"), doc.get("response")
    if not isinstance(meta, dict):
        return "no meta"
    if kind == "filteringTerms":
        terms = response.get("filteringTerms") if isinstance(response, dict) else None
        if not isinstance(terms, list) or not all(
            isinstance(t, dict) and isinstance(t.get("id"), str) for t in terms
        ):
            return "no response.filteringTerms list"
        return None
    if not isinstance(summary, dict) or not isinstance(summary.get("exists"), bool):
        return "no responseSummary.exists"
    if kind == "collections":
        items = response.get("collections") if isinstance(response, dict) else None
        if not isinstance(items, list) or not all(
            isinstance(c, dict) and isinstance(c.get("id"), str) for c in items
        ):
            return "no response.collections list"
        return None if _count(summary.get("numTotalResults")) else "no numTotalResults"
    granularity = meta.get("returnedGranularity")
    if granularity not in GRANULARITIES:
        return f"unknown returnedGranularity {granularity!r}"
    if granularity != "boolean" and not _count(summary.get("numTotalResults")):
        return "a count or record answer without numTotalResults"
    sets = response.get("resultSets", []) if isinstance(response, dict) else []
    if not isinstance(sets, list):
        return "response.resultSets is not a list"
    for s in sets:
        if not (
            isinstance(s, dict)
            and isinstance(s.get("id"), str)
            and isinstance(s.get("exists"), bool)
            and _count(s.get("resultsCount"))
            and isinstance(s.get("results", []), list)
        ):
            return "a result set without id, exists and resultsCount"
    return None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def kind_of(doc: Mapping) -> str:
    """The kind of a (local) answer: ``filteringTerms``, ``collections`` or ``query``."""
    response = doc.get("response")
    if isinstance(response, Mapping):
        if "filteringTerms" in response:
            return "filteringTerms"
        if "collections" in response:
            return "collections"
    return "query"


# -- merging ---------------------------------------------------------------------------------------
def merge(local: dict, replies: Sequence[Reply], *, local_id: str) -> dict:
    """One Beacon answer from this Beacon's document ``local`` and the remotes' ``replies``.

    Replies that are ``ok`` but cannot be read as the same kind of answer become ``invalid``.
    """
    kind = kind_of(local)
    parts = [Reply(LOCAL, "ok", doc=local)]
    for reply in replies:
        if reply.status == "ok" and reply.doc is not None:
            problem = _shape_error(reply.doc, kind)
            if problem:
                reply = dataclasses.replace(reply, status="invalid", doc=None, error=problem)
        parts.append(reply)
    answered = [p for p in parts if p.status == "ok"]
    network = {
        "partial": any(p.status not in ("ok", "skipped") for p in parts),
        "beacons": [p.summary() for p in parts],
    }
    info = dict(local.get("info") or {}, network=network)
    if kind == "filteringTerms":
        return _merge_terms(local, answered, info)
    if kind == "collections":
        return _merge_collections(local, answered, info, local_id)
    return _merge_query(local, answered, info, local_id)


def _tag(item: Mapping, part: Reply, local_id: str) -> dict:
    return {**item, "beaconId": part.beacon_id or local_id, "beaconName": part.name}


def _merge_query(local: dict, parts: list[Reply], info: dict, local_id: str) -> dict:
    granularity = min(
        (p.doc["meta"]["returnedGranularity"] for p in parts), key=GRANULARITIES.index
    )
    sets, reports = [], []
    for part in parts:
        summary = part.doc["responseSummary"]
        reports.append(
            responses.CountReport(
                int(summary.get("numTotalResults", 0)),
                tuple(summary["countAdjustedTo"]) if summary.get("countAdjustedTo") else None,
                summary.get("countPrecision", "exact"),
                bool(summary["exists"]),
            )
        )
        for s in (part.doc.get("response") or {}).get("resultSets", []):
            s = _tag(s, part, local_id)
            s["results"] = list(s.get("results", [])) if granularity == "record" else []
            sets.append(s)
    meta = dict(local["meta"], returnedGranularity=granularity)
    # Each Beacon already chose its sets by includeResultsetResponses: keep them all.
    total = responses._combine(reports)
    return responses.query_response(meta, sets, include="ALL", total=total, info=info)


def _merge_collections(local: dict, parts: list[Reply], info: dict, local_id: str) -> dict:
    items = [
        _tag(item, part, local_id) for part in parts for item in part.doc["response"]["collections"]
    ]
    total = sum(int(p.doc["responseSummary"]["numTotalResults"]) for p in parts)
    return responses.collections_response(local["meta"], items, total=total, info=info)


def _merge_terms(local: dict, parts: list[Reply], info: dict) -> dict:
    terms: dict[str, dict] = {}
    resources: dict[str, dict] = {}
    for part in parts:
        response = part.doc["response"]
        for term in response["filteringTerms"]:
            known = terms.setdefault(term["id"], dict(term))
            scopes = list(dict.fromkeys([*known.get("scopes", []), *term.get("scopes", [])]))
            if scopes:
                known["scopes"] = scopes
        for resource in response.get("resources") or []:
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                resources.setdefault(resource["id"], dict(resource))
    return {
        "meta": dict(local["meta"]),
        "response": {
            "filteringTerms": sorted(terms.values(), key=lambda t: t["id"]),
            "resources": list(resources.values()),
        },
        "info": info,
    }


# -- the aggregator --------------------------------------------------------------------------------
class BeaconNetwork:
    """The remotes of one Beacon service and how to ask them (holds no connections: each answer
    opens its own HTTP client, so it works under any event loop)."""

    def __init__(self, service: BeaconService, remotes: Sequence[RemoteBeacon]):
        self.service = service
        self.remotes = tuple(remotes)

    @classmethod
    def for_call(cls, service: BeaconService, hops: str | None) -> BeaconNetwork | None:
        """The network to answer a call with, or ``None``: no remotes are configured, or the
        call was forwarded by an aggregator (``hops``: its :data:`HOPS_HEADER`)."""
        remotes = getattr(service.security, "network", ())
        if not remotes or hops is not None:
            return None
        return cls(service, remotes)

    async def answer(self, call: Call, path: Sequence[str], local: Callable[[Call], dict]) -> dict:
        """The merged answer to ``call``, asked of remotes at ``path`` (segments below their
        base URL, e.g. ``("g_variants",)``); ``local(call)`` is this Beacon's own answer and
        raises what this Beacon refuses."""
        if not path or path[0] not in NETWORK_ROOTS:
            raise InputError(f"/{'/'.join(path)} is not answered by a Beacon network")
        req = parse_request(call.method, call.query, call.body)  # 400 before anything goes out
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            routes: dict[str, list[str] | None] = {r.name: None for r in self.remotes}
            skipped: dict[str, Reply] = {}
            if req.dataset_ids is not None:
                local_ids, routes, skipped = await self._route(client, call, req.dataset_ids)
                local_call = self._narrowed(call, req, local_ids)
            else:
                local_call = call
            doc = local(local_call)
            asks: list[Awaitable[Reply]] = []
            for remote in self.remotes:
                if remote.name in skipped:
                    continue
                ids = routes[remote.name]
                asks.append(
                    fetch(
                        client,
                        remote,
                        call.method,
                        path,
                        authorization=call.authorization,
                        params=forward_query(req, ids) if call.method == "GET" else None,
                        body=forward_body(req, ids) if call.method != "GET" else None,
                    )  # fmt: skip
                )
            got = iter(await asyncio.gather(*asks))  # each ends within its own timeout
        replies = [skipped.get(r.name) or next(got) for r in self.remotes]
        return merge(doc, replies, local_id=self.service.identity.id)

    async def _route(
        self, client: httpx.AsyncClient, call: Call, wanted: list[str]
    ) -> tuple[list[str], dict[str, list[str] | None], dict[str, Reply]]:
        """Which of the ``wanted`` datasets each Beacon holds: (this Beacon's ids, each remote's
        ids, remotes not to ask with why). A wanted id nobody holds goes to this Beacon, whose
        404 is the answer, unless a remote could not be asked (it may hold it)."""
        held = {ds.id for ds in self.service.catalog.datasets()}
        listings = await asyncio.gather(
            *(
                fetch(
                    client,
                    r,
                    "GET",
                    ("datasets",),
                    authorization=call.authorization,
                    params=[("limit", str(DISCOVERY_LIMIT))],
                )
                for r in self.remotes
            )
        )
        routes: dict[str, list[str] | None] = {}
        skipped: dict[str, Reply] = {}
        found: set[str] = set(held)
        for remote, listing in zip(self.remotes, listings, strict=True):
            problem = None
            if listing.status == "ok":
                problem = _shape_error(listing.doc or {}, "collections")
            if listing.status != "ok" or problem:
                status = "invalid" if problem else listing.status
                skipped[remote.name] = dataclasses.replace(
                    listing, status=status, doc=None,
                    error=f"listing its datasets: {problem or listing.error}",
                )  # fmt: skip
                continue
            theirs = {c["id"] for c in listing.doc["response"]["collections"]}
            ids = [i for i in wanted if i in theirs]
            found.update(ids)
            routes[remote.name] = ids
            if not ids:
                skipped[remote.name] = Reply(
                    remote.name, "skipped", error="holds none of datasetIds"
                )
        unresolved = [i for i in wanted if i not in found]
        local_ids = [i for i in wanted if i in held]
        if unresolved and not any(r.status != "skipped" for r in skipped.values()):
            local_ids += unresolved  # this Beacon says 404 (and audits it)
        return local_ids, routes, skipped

    @staticmethod
    def _narrowed(call: Call, req: BeaconRequest, dataset_ids: list[str]) -> Call:
        """``call`` asking only for ``dataset_ids`` (possibly none) of this Beacon, as a POST
        (a GET cannot name an empty list: no ``datasetIds`` means all)."""
        if dataset_ids == req.dataset_ids:
            return call
        body = json.dumps(forward_body(req, dataset_ids)).encode()
        return dataclasses.replace(call, method="POST", query=(), body=body)
