"""GA4GH Beacon v2 documents: response envelopes and default-model records, as plain dicts.

Pure functions, no web framework: the API layer passes plain data (query engine rows, dataset
manifests, the beacon's identity) and serialises what comes back. Every builder here is checked in
the tests against the official v2.1.1 JSON schemas (see :mod:`sandgrain.beacon.schemas`).

References: GA4GH Beacon v2 specification v2.1.1 (framework and default model, 2023); Rambla et al.
2022, Human Mutation 43:791 ("Beacon v2 and Beacon networks"); GA4GH service-info 1.0.0; VRS 1.3
(``SequenceLocation``/``SequenceInterval`` as used by the model's ``LegacyVariation``).

Count adjustment (``countAdjustedTo``/``countPrecision``) is not part of v2.1.1; it was added to
the framework after that release (resultsets and count summaries, ``countPrecision`` one of
``exact``/``imprecise``/``rounded``). v2.1.1 objects accept additional properties, so the fields are
emitted with their later meaning and validate against both.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..errors import InputError
from .variants import aa_short

#: Version of the Beacon API these documents follow ("v"-prefixed, as the spec asks).
API_VERSION = "v2.1.1"
#: Default ``beaconId`` (reverse domain name).
DEFAULT_BEACON_ID = "org.sandgrain.beacon"
GRANULARITIES = ("boolean", "count", "record")
INCLUDE_MODES = ("HIT", "MISS", "ALL", "NONE")
COUNT_PRECISIONS = ("exact", "imprecise", "rounded")
SECURITY_LEVELS = ("PUBLIC", "REGISTERED", "CONTROLLED")
_SPEC_URL = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/v2.1.1/"
_MODEL_URL = _SPEC_URL + "models/json/beacon-v2-default-model/"


# --------------------------------------------------------------------------------------------
# Entry types served by this beacon
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryType:
    """One Beacon entry type: its ids, default schema and endpoints (paths below the base URL)."""

    id: str
    name: str
    description: str
    ontology_term: dict
    schema_id: str
    schema_version: str
    model_folder: str
    path: str
    single_entry: bool = True
    lookups: tuple[tuple[str, str], ...] = ()  # (entry type id returned, path suffix)
    collection_of: tuple[tuple[str, str], ...] = ()  # (entry type id, name)
    non_filtered_queries_allowed: bool = True
    filtering_terms_path: str | None = None
    request_key: str = ""  # key of its parameters in receivedRequestSummary.requestParameters

    @property
    def schema_reference(self) -> dict:
        """``{"entityType", "schema"}`` as in ``returnedSchemas``."""
        return {"entityType": self.id, "schema": self.schema_id}


#: The entry types of this beacon, in the default model's words (ids as in its configuration).
ENTRY_TYPES: dict[str, EntryType] = {
    e.id: e
    for e in (
        EntryType(
            id="genomicVariant",
            name="Genomic Variants",
            description="A genomic variation: an allele at a position of a reference assembly, "
            "with its frequency and carriers in each dataset.",
            ontology_term={"id": "ENSGLOSSARY:0000092", "label": "Variant"},
            schema_id="ga4gh-beacon-variant-v2.1.0",
            schema_version="v2.1.0",
            model_folder="genomicVariations",
            path="g_variants",
            lookups=(("individual", "individuals"),),
            non_filtered_queries_allowed=False,
            request_key="g_variant",
        ),
        EntryType(
            id="individual",
            name="Individual",
            description="A human being. It could be a Patient, a Tissue Donor, a Participant, "
            "a Human Study Subject, etc.",
            ontology_term={"id": "NCIT:C25190", "label": "Person"},
            schema_id="ga4gh-beacon-individual-v2.0.0",
            schema_version="v2.0.0",
            model_folder="individuals",
            path="individuals",
            lookups=(("genomicVariant", "g_variants"),),
            filtering_terms_path="filtering_terms",
            request_key="individual",
        ),
        EntryType(
            id="dataset",
            name="Dataset",
            description="A collection of genomic variants and the individuals they were "
            "observed in, ingested from one VCF.",
            ontology_term={"id": "NCIT:C47824", "label": "Data set"},
            schema_id="ga4gh-beacon-dataset-v2.0.0",
            schema_version="v2.0.0",
            model_folder="datasets",
            path="datasets",
            collection_of=(("genomicVariant", "Genomic Variants"), ("individual", "Individuals")),
            request_key="dataset",
        ),
        EntryType(
            id="cohort",
            name="Cohort",
            description="A group of individuals, identified by a common characteristic; here "
            "one beacon-defined cohort per dataset: all of its individuals.",
            ontology_term={"id": "NCIT:C61512", "label": "Cohort"},
            schema_id="ga4gh-beacon-cohort-v2.0.0",
            schema_version="v2.0.0",
            model_folder="cohorts",
            path="cohorts",
            single_entry=False,
            collection_of=(("individual", "Individuals"),),
            request_key="cohort",
        ),
    )
}


def _entry_type(entry: str | EntryType) -> EntryType:
    if isinstance(entry, EntryType):
        return entry
    try:
        return ENTRY_TYPES[entry]
    except KeyError:
        raise InputError(
            f"unknown entry type {entry!r}; this beacon serves {', '.join(ENTRY_TYPES)}"
        ) from None


def _entry_types(entries: Iterable[str | EntryType] | None) -> list[EntryType]:
    return [_entry_type(e) for e in (ENTRY_TYPES.values() if entries is None else entries)]


# --------------------------------------------------------------------------------------------
# Who this beacon is
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeaconIdentity:
    """What ``/info``, ``/service-info`` and ``/configuration`` say about this beacon."""

    id: str = DEFAULT_BEACON_ID
    name: str = "sandgrain Beacon"
    description: str = (
        "A GA4GH Beacon v2 over variant datasets kept in their owner's storage, "
        "with per-dataset access tiers."
    )
    environment: str = "prod"  # prod | test | dev | staging
    version: str = ""  # version of the service (software); sandgrain's by default
    organization_id: str = "org.sandgrain"
    organization_name: str = "sandgrain"
    organization_url: str | None = None
    organization_description: str | None = None
    contact_url: str | None = None
    logo_url: str | None = None
    welcome_url: str | None = None
    documentation_url: str | None = None
    alternative_url: str | None = None
    created: str | datetime | None = None
    updated: str | datetime | None = None
    info: dict = field(default_factory=dict)


def _identity(identity: BeaconIdentity | Mapping | None) -> BeaconIdentity:
    if identity is None:
        return BeaconIdentity()
    if isinstance(identity, BeaconIdentity):
        return identity
    return BeaconIdentity(**identity)


def _software_version() -> str:
    from .. import __version__

    return __version__


# --------------------------------------------------------------------------------------------
# Meta sections
# --------------------------------------------------------------------------------------------


def schema_reference(entry_type: str | EntryType) -> dict:
    """The ``{"entityType", "schema"}`` item of ``returnedSchemas`` for an entry type."""
    return _entry_type(entry_type).schema_reference


def informational_meta(
    entry_types: Iterable[str | EntryType] = (),
    *,
    beacon_id: str = DEFAULT_BEACON_ID,
    api_version: str = API_VERSION,
) -> dict:
    """The meta of informational responses (info, configuration, map, entry types, terms)."""
    return {
        "beaconId": beacon_id,
        "apiVersion": api_version,
        "returnedSchemas": [schema_reference(e) for e in entry_types],
    }


def _check_granularity(granularity: str) -> str:
    if granularity not in GRANULARITIES:
        raise InputError(
            f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}"
        )
    return granularity


def _check_include(mode: str) -> str:
    if mode not in INCLUDE_MODES:
        raise InputError(
            f"includeResultsetResponses must be one of {', '.join(INCLUDE_MODES)}, not {mode!r}"
        )
    return mode


def _filter_ids(filters: Iterable[str | Mapping]) -> list[str]:
    # The summary lists filters as strings (CURIEs); requests may send {"id": ..., "scope": ...}.
    return [f["id"] if isinstance(f, Mapping) else str(f) for f in filters]


def _request_parameters(params: Mapping | None, entry: EntryType | None) -> dict | None:
    # v2.1.1 requestParameters maps a key to an *object* (e.g. {"g_variant": {...}}); a flat
    # {"referenceName": "1", "start": [..]} is therefore grouped under the entry type's key.
    if not params:
        return None
    params = {k: v for k, v in params.items() if v is not None}
    if all(isinstance(v, Mapping) for v in params.values()):
        return dict(params)
    key = entry.request_key if entry is not None else "parameters"
    return {key: params}


def _requested_schemas(schemas: Iterable[str | Mapping], entry: EntryType | None) -> list[dict]:
    out = []
    for s in schemas:
        if isinstance(s, Mapping):
            out.append(dict(s))
        else:
            out.append({"entityType": entry.id if entry else "unknown", "schema": str(s)})
    return out


def meta(
    *,
    granularity: str = "boolean",
    entry_type: str | EntryType | None = "genomicVariant",
    requested_granularity: str | None = None,
    requested_schemas: Iterable[str | Mapping] = (),
    skip: int = 0,
    limit: int = 10,
    filters: Iterable[str | Mapping] = (),
    request_parameters: Mapping | None = None,
    include_resultset_responses: str = "HIT",
    test_mode: bool = False,
    beacon_id: str = DEFAULT_BEACON_ID,
    api_version: str = API_VERSION,
    requested_api_version: str | None = None,
) -> dict:
    """The ``meta`` of a query response (``beaconResponseMeta``), with the request as understood.

    *granularity* is what is returned, *requested_granularity* what was asked (default: the
    same). *request_parameters* may be flat (``{"referenceName": "1", "start": [10176]}``): it is
    grouped under the entry type's key (``g_variant``), as the schema wants objects there.
    """
    entry = _entry_type(entry_type) if entry_type is not None else None
    summary: dict[str, Any] = {
        "apiVersion": requested_api_version or api_version,
        "requestedSchemas": _requested_schemas(requested_schemas, entry),
        "pagination": {"skip": int(skip), "limit": int(limit)},
        "requestedGranularity": _check_granularity(requested_granularity or granularity),
        "includeResultsetResponses": _check_include(include_resultset_responses),
    }
    ids = _filter_ids(filters)
    if ids:
        summary["filters"] = ids
    params = _request_parameters(request_parameters, entry)
    if params:
        summary["requestParameters"] = params
    if test_mode:
        summary["testMode"] = True
    out = {
        "beaconId": beacon_id,
        "apiVersion": api_version,
        "returnedSchemas": [entry.schema_reference] if entry else [],
        "returnedGranularity": _check_granularity(granularity),
        "receivedRequestSummary": summary,
    }
    if test_mode:
        out["testMode"] = True
    return out


_query_meta = meta  # for builders whose ``meta`` argument shadows the function


# --------------------------------------------------------------------------------------------
# Counts, result sets and query responses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountReport:
    """A count as reported: the number, and how it was adjusted (``None``: exact)."""

    count: int
    adjusted_to: tuple[int | str, ...] | None = None
    precision: str = "exact"
    true_positive: bool | None = None  # whether the true count was > 0 (for ``exists``)

    @property
    def exists(self) -> bool:
        return self.count > 0 if self.true_positive is None else self.true_positive

    def fields(self) -> dict:
        """``countAdjustedTo``/``countPrecision`` when adjusted, else nothing."""
        if self.precision == "exact" and not self.adjusted_to:
            return {}
        out: dict[str, Any] = {"countPrecision": self.precision}
        if self.adjusted_to:
            out["countAdjustedTo"] = list(self.adjusted_to)
        return out


def _report(count: int | CountReport) -> CountReport:
    return count if isinstance(count, CountReport) else CountReport(int(count))


def _combine(reports: Sequence[CountReport]) -> CountReport:
    # A total over datasets is only as exact as its least exact part.
    total = sum(r.count for r in reports)
    precisions = {r.precision for r in reports}
    precision = next((p for p in ("imprecise", "rounded") if p in precisions), "exact")
    exists = any(r.exists for r in reports)
    adjusted = sorted({a for r in reports for a in (r.adjusted_to or ())}, key=str)
    return CountReport(total, tuple(adjusted) or None, precision, exists)


def _count_summary(report: CountReport, *, exists: bool | None = None) -> dict:
    return {
        "exists": report.exists if exists is None else bool(exists),
        "numTotalResults": report.count,
        **report.fields(),
    }


def result_set(
    id: str,
    *,
    count: int | CountReport,
    results: Iterable[Mapping] = (),
    exists: bool | None = None,
    set_type: str = "dataset",
    info: Mapping | None = None,
    handovers: Iterable[Mapping] | None = None,
) -> dict:
    """One result set (per dataset): ``id``, ``setType``, ``exists``, ``resultsCount``, ``results``.

    *count* is the set's total (before pagination), an int or a :class:`CountReport` (see
    ``security.protect_count``).
    """
    report = _report(count)
    out: dict[str, Any] = {
        "id": id,
        "setType": set_type,
        "exists": report.exists if exists is None else bool(exists),
        "resultsCount": report.count,
        "results": [dict(r) for r in results],
        **report.fields(),
    }
    if info:
        out["info"] = dict(info)
    if handovers:
        out["resultsHandovers"] = [dict(h) for h in handovers]
    return out


def select_resultsets(result_sets: Iterable[Mapping], mode: str = "HIT") -> list[dict]:
    """Keep the sets ``includeResultsetResponses`` asks for: HIT (exists), MISS (not), ALL, NONE."""
    mode = _check_include(mode)
    sets = [dict(s) for s in result_sets]
    if mode == "ALL":
        return sets
    if mode == "NONE":
        return []
    wanted = mode == "HIT"
    return [s for s in sets if bool(s["exists"]) is wanted]


def _set_report(s: Mapping) -> CountReport:
    return CountReport(
        s["resultsCount"],
        tuple(s["countAdjustedTo"]) if s.get("countAdjustedTo") else None,
        s.get("countPrecision", "exact"),
        bool(s["exists"]),
    )


def _envelope(meta: Mapping, summary: dict, info: Mapping | None, handovers) -> dict:
    out: dict[str, Any] = {"meta": dict(meta), "responseSummary": summary}
    if info:
        out["info"] = dict(info)
    if handovers:
        out["beaconHandovers"] = [dict(h) for h in handovers]
    return out


def boolean_response(
    meta: Mapping,
    exists: bool,
    *,
    info: Mapping | None = None,
    handovers: Iterable[Mapping] | None = None,
) -> dict:
    """``beaconBooleanResponse``: only whether anything matched."""
    return _envelope(meta, {"exists": bool(exists)}, info, handovers)


def count_response(
    meta: Mapping,
    count: int | CountReport,
    *,
    exists: bool | None = None,
    result_sets: Iterable[Mapping] | None = None,
    info: Mapping | None = None,
    handovers: Iterable[Mapping] | None = None,
) -> dict:
    """``beaconCountResponse``: exists and ``numTotalResults`` (possibly adjusted).

    With *result_sets*, their per-dataset counts are attached as ``response.resultSets`` with
    empty ``results`` (the document then also validates as a ``beaconResultsetsResponse``).
    """
    out = _envelope(meta, _count_summary(_report(count), exists=exists), info, handovers)
    if result_sets is not None:
        out["response"] = {"resultSets": [{**s, "results": []} for s in result_sets]}
    return out


def resultsets_response(
    meta: Mapping,
    result_sets: Iterable[Mapping],
    *,
    include: str = "HIT",
    total: int | CountReport | None = None,
    info: Mapping | None = None,
    handovers: Iterable[Mapping] | None = None,
) -> dict:
    """``beaconResultsetsResponse``: the summary over *all* sets, then the sets *include* keeps.

    *total* defaults to the sum of the sets' ``resultsCount`` (inexact if any set is).
    """
    sets = [dict(s) for s in result_sets]
    report = _combine([_set_report(s) for s in sets]) if total is None else _report(total)
    out = _envelope(meta, _count_summary(report), info, handovers)
    out["response"] = {"resultSets": select_resultsets(sets, include)}
    return out


def query_response(
    meta: Mapping,
    result_sets: Iterable[Mapping],
    *,
    include: str = "HIT",
    total: int | CountReport | None = None,
    info: Mapping | None = None,
    handovers: Iterable[Mapping] | None = None,
) -> dict:
    """The response for ``meta["returnedGranularity"]``, from per-dataset result sets.

    boolean: only ``exists`` (no sets: each would have to carry a count); count: the total and
    the selected sets without records; record: the selected sets with their records.
    """
    sets = [dict(s) for s in result_sets]
    granularity = _check_granularity(meta["returnedGranularity"])
    report = _combine([_set_report(s) for s in sets]) if total is None else _report(total)
    if granularity == "boolean":
        return boolean_response(meta, report.exists, info=info, handovers=handovers)
    if granularity == "count":
        return count_response(
            meta,
            report,
            result_sets=select_resultsets(sets, include),
            info=info,
            handovers=handovers,
        )
    return resultsets_response(
        meta, sets, include=include, total=report, info=info, handovers=handovers
    )


def collections_response(
    meta: Mapping,
    collections: Iterable[Mapping],
    *,
    total: int | None = None,
    info: Mapping | None = None,
) -> dict:
    """``beaconCollectionsResponse`` for ``/datasets`` and ``/cohorts``."""
    items = [dict(c) for c in collections]
    n = len(items) if total is None else int(total)
    out = _envelope(meta, {"exists": n > 0, "numTotalResults": n}, info, None)
    out["response"] = {"collections": items}
    return out


def error_response(
    code: int,
    message: str,
    meta: Mapping | None = None,
    *,
    beacon_id: str = DEFAULT_BEACON_ID,
    entry_type: str | EntryType | None = None,
) -> dict:
    """``beaconErrorResponse``; without *meta*, one for a request that could not be read."""
    if meta is None:
        meta = _query_meta(entry_type=entry_type, beacon_id=beacon_id)
    return {"meta": dict(meta), "error": {"errorCode": int(code), "errorMessage": str(message)}}


# --------------------------------------------------------------------------------------------
# Informational endpoints
# --------------------------------------------------------------------------------------------


def _timestamp(value: str | date | datetime | None) -> str | None:
    """RFC 3339 (what ``format: date-time`` means); naive times are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def info_response(identity: BeaconIdentity | Mapping | None = None) -> dict:
    """``beaconInfoResponse`` for ``/`` and ``/info``."""
    me = _identity(identity)
    organization = _drop_none(
        {
            "id": me.organization_id,
            "name": me.organization_name,
            "description": me.organization_description,
            "welcomeUrl": me.organization_url,
            "contactUrl": me.contact_url,
            "logoUrl": me.logo_url,
        }
    )
    response = _drop_none(
        {
            "id": me.id,
            "name": me.name,
            "apiVersion": API_VERSION,
            "environment": me.environment,
            "organization": organization,
            "description": me.description,
            "version": API_VERSION,
            "welcomeUrl": me.welcome_url,
            "alternativeUrl": me.alternative_url,
            "createDateTime": _timestamp(me.created),
            "updateDateTime": _timestamp(me.updated),
            "info": {"softwareVersion": me.version or _software_version(), **me.info},
        }
    )
    return {"meta": informational_meta(beacon_id=me.id), "response": response}


def service_info(
    identity: BeaconIdentity | Mapping | None = None, *, base_url: str | None = None
) -> dict:
    """GA4GH service-info 1.0.0 for ``/service-info`` (type ``org.ga4gh:beacon``)."""
    me = _identity(identity)
    url = me.organization_url or me.welcome_url or base_url or "http://localhost/"
    return _drop_none(
        {
            "id": me.id,
            "name": me.name,
            "type": {"group": "org.ga4gh", "artifact": "beacon", "version": API_VERSION},
            "description": me.description,
            "organization": {"name": me.organization_name, "url": url},
            "contactUrl": me.contact_url,
            "documentationUrl": me.documentation_url,
            "createdAt": _timestamp(me.created),
            "updatedAt": _timestamp(me.updated),
            "environment": me.environment,
            "version": me.version or _software_version(),
        }
    )


def entry_type_definition(entry_type: str | EntryType) -> dict:
    """An ``entryTypeDefinition`` (configuration and ``/entry_types``)."""
    e = _entry_type(entry_type)
    out: dict[str, Any] = {
        "id": e.id,
        "name": e.name,
        "description": e.description,
        "ontologyTermForThisType": dict(e.ontology_term),
        "partOfSpecification": f"Beacon {API_VERSION}",
        "defaultSchema": {
            "id": e.schema_id,
            "name": f"Default schema for {e.name.lower()}",
            "referenceToSchemaDefinition": f"{_MODEL_URL}{e.model_folder}/defaultSchema.json",
            "schemaVersion": e.schema_version,
        },
        "additionallySupportedSchemas": [],
        "nonFilteredQueriesAllowed": e.non_filtered_queries_allowed,
    }
    if e.collection_of:
        out["aCollectionOf"] = [{"id": i, "name": n} for i, n in e.collection_of]
    return out


_PRODUCTION_STATUS = {"prod": "PROD", "test": "TEST", "staging": "TEST", "dev": "DEV"}


def configuration_response(
    identity: BeaconIdentity | Mapping | None = None,
    *,
    security_levels: Iterable[str] = SECURITY_LEVELS,
    default_granularity: str = "boolean",
    entry_types: Iterable[str | EntryType] | None = None,
    production_status: str | None = None,
) -> dict:
    """``beaconConfigurationResponse``: maturity, security levels and entry types."""
    me = _identity(identity)
    levels = list(security_levels)
    bad = [lvl for lvl in levels if lvl not in SECURITY_LEVELS]
    if bad:
        raise InputError(f"security levels must be among {', '.join(SECURITY_LEVELS)}: {bad}")
    entries = _entry_types(entry_types)
    status = production_status or _PRODUCTION_STATUS.get(me.environment, "DEV")
    response = {
        "$schema": _SPEC_URL + "framework/json/configuration/beaconConfigurationSchema.json",
        "maturityAttributes": {"productionStatus": status},
        "securityAttributes": {
            "defaultGranularity": _check_granularity(default_granularity),
            "securityLevels": levels,
        },
        "entryTypes": {e.id: entry_type_definition(e) for e in entries},
    }
    return {"meta": informational_meta(beacon_id=me.id), "response": response}


def entry_types_response(
    entry_types: Iterable[str | EntryType] | None = None, *, beacon_id: str = DEFAULT_BEACON_ID
) -> dict:
    """``beaconEntryTypesResponse`` for ``/entry_types``."""
    entries = _entry_types(entry_types)
    return {
        "meta": informational_meta(beacon_id=beacon_id),
        "response": {"entryTypes": {e.id: entry_type_definition(e) for e in entries}},
    }


def map_response(
    base_url: str,
    *,
    entry_types: Iterable[str | EntryType] | None = None,
    beacon_id: str = DEFAULT_BEACON_ID,
    openapi_url: str | None = None,
) -> dict:
    """``beaconMapResponse`` for ``/map``: each entry type's root, single-entry and lookup URLs.

    *base_url* is the beacon's root, e.g. ``https://host/api/beacon`` (no trailing slash needed).
    """
    base = base_url.rstrip("/")
    sets: dict[str, dict] = {}
    for e in _entry_types(entry_types):
        root = f"{base}/{e.path}"
        endpoint: dict[str, Any] = {"entryType": e.id, "rootUrl": root}
        if e.single_entry:
            endpoint["singleEntryUrl"] = root + "/{id}"
        if e.filtering_terms_path:
            endpoint["filteringTermsUrl"] = f"{base}/{e.filtering_terms_path}"
        if openapi_url:
            endpoint["openAPIEndpointsDefinition"] = openapi_url
        lookups = {
            f"{target}Lookup": {"returnedEntryType": target, "url": f"{root}/{{id}}/{suffix}"}
            for target, suffix in e.lookups
        }
        if lookups:
            endpoint["endpoints"] = lookups
        sets[e.id] = endpoint
    response = {
        "$schema": _SPEC_URL + "framework/json/configuration/beaconMapSchema.json",
        "endpointSets": sets,
    }
    return {"meta": informational_meta(beacon_id=beacon_id), "response": response}


#: Ontologies the filtering terms of this beacon typically come from (phenopackets ``Resource``).
ONTOLOGY_RESOURCES: dict[str, dict] = {
    r["nameSpacePrefix"]: r
    for r in (
        {
            "id": "ncit",
            "name": "NCI Thesaurus OBO Edition",
            "nameSpacePrefix": "NCIT",
            "iriPrefix": "http://purl.obolibrary.org/obo/NCIT_",
            "url": "http://purl.obolibrary.org/obo/ncit.owl",
        },
        {
            "id": "hp",
            "name": "Human Phenotype Ontology",
            "nameSpacePrefix": "HP",
            "iriPrefix": "http://purl.obolibrary.org/obo/HP_",
            "url": "http://purl.obolibrary.org/obo/hp.owl",
        },
        {
            "id": "mondo",
            "name": "Mondo Disease Ontology",
            "nameSpacePrefix": "MONDO",
            "iriPrefix": "http://purl.obolibrary.org/obo/MONDO_",
            "url": "http://purl.obolibrary.org/obo/mondo.owl",
        },
        {
            "id": "gaz",
            "name": "Gazetteer",
            "nameSpacePrefix": "GAZ",
            "iriPrefix": "http://purl.obolibrary.org/obo/GAZ_",
            "url": "http://purl.obolibrary.org/obo/gaz.owl",
        },
        {
            "id": "efo",
            "name": "Experimental Factor Ontology",
            "nameSpacePrefix": "EFO",
            "iriPrefix": "http://www.ebi.ac.uk/efo/EFO_",
            "url": "http://www.ebi.ac.uk/efo/efo.owl",
        },
        {
            "id": "so",
            "name": "Sequence Ontology",
            "nameSpacePrefix": "SO",
            "iriPrefix": "http://purl.obolibrary.org/obo/SO_",
            "url": "http://purl.obolibrary.org/obo/so.owl",
        },
        {
            "id": "geno",
            "name": "Genotype Ontology",
            "nameSpacePrefix": "GENO",
            "iriPrefix": "http://purl.obolibrary.org/obo/GENO_",
            "url": "http://purl.obolibrary.org/obo/geno.owl",
        },
        {
            "id": "uberon",
            "name": "Uberon multi-species anatomy ontology",
            "nameSpacePrefix": "UBERON",
            "iriPrefix": "http://purl.obolibrary.org/obo/UBERON_",
            "url": "http://purl.obolibrary.org/obo/uberon.owl",
        },
        {
            "id": "duo",
            "name": "Data Use Ontology",
            "nameSpacePrefix": "DUO",
            "iriPrefix": "http://purl.obolibrary.org/obo/DUO_",
            "url": "http://purl.obolibrary.org/obo/duo.owl",
        },
    )
}


def _prefix(curie: str) -> str | None:
    head, sep, _ = curie.partition(":")
    return head if sep and head else None


def ontology_resources(prefixes: Iterable[str]) -> list[dict]:
    """The ``resources`` entries for the given CURIE prefixes (unknown ones by prefix only)."""
    out = []
    for p in dict.fromkeys(prefixes):
        known = ONTOLOGY_RESOURCES.get(p.upper())
        out.append(dict(known) if known else {"id": p.lower(), "nameSpacePrefix": p})
    return out


def filtering_term(term: Mapping, *, scopes: Sequence[str] = ("individual",)) -> dict:
    """A ``FilteringTerm``: ``{"id", "label"?, "type", "scopes"}``; the type defaults to the
    ontology's name for a CURIE of a known prefix, the prefix otherwise, ``custom`` without one."""
    term_id = str(term["id"])
    prefix = _prefix(term_id)
    kind = term.get("type")
    if not kind:
        known = ONTOLOGY_RESOURCES.get(prefix.upper()) if prefix else None
        kind = known["name"] if known else (prefix or "custom")
    out = {"id": term_id, "type": kind, "scopes": list(term.get("scopes") or scopes)}
    if term.get("label"):
        out["label"] = str(term["label"])
    if term.get("values"):
        out["values"] = [str(v) for v in term["values"]]
    return out


def filtering_terms_response(
    terms: Iterable[Mapping],
    resources: Iterable[Mapping] | None = None,
    *,
    beacon_id: str = DEFAULT_BEACON_ID,
    scopes: Sequence[str] = ("individual",),
) -> dict:
    """``beaconFilteringTermsResponse``; *resources* default to the ontologies the terms use."""
    items = [filtering_term(t, scopes=scopes) for t in terms]
    if resources is None:
        resources = ontology_resources(p for t in items if (p := _prefix(t["id"])))
    return {
        "meta": informational_meta(beacon_id=beacon_id),
        "response": {"filteringTerms": items, "resources": [dict(r) for r in resources]},
    }


# --------------------------------------------------------------------------------------------
# Records of the default model
# --------------------------------------------------------------------------------------------

#: RefSeq accessions of the assembled chromosomes (NCBI GRCh37.p13 / GRCh38.p14 assembly reports).
REFSEQ_ACCESSIONS: dict[str, dict[str, str]] = {
    "GRCh37": {
        "1": "NC_000001.10", "2": "NC_000002.11", "3": "NC_000003.11", "4": "NC_000004.11",
        "5": "NC_000005.9", "6": "NC_000006.11", "7": "NC_000007.13", "8": "NC_000008.10",
        "9": "NC_000009.11", "10": "NC_000010.10", "11": "NC_000011.9", "12": "NC_000012.11",
        "13": "NC_000013.10", "14": "NC_000014.8", "15": "NC_000015.9", "16": "NC_000016.9",
        "17": "NC_000017.10", "18": "NC_000018.9", "19": "NC_000019.9", "20": "NC_000020.10",
        "21": "NC_000021.8", "22": "NC_000022.10", "X": "NC_000023.10", "Y": "NC_000024.9",
        "MT": "NC_012920.1",
    },
    "GRCh38": {
        "1": "NC_000001.11", "2": "NC_000002.12", "3": "NC_000003.12", "4": "NC_000004.12",
        "5": "NC_000005.10", "6": "NC_000006.12", "7": "NC_000007.14", "8": "NC_000008.11",
        "9": "NC_000009.12", "10": "NC_000010.11", "11": "NC_000011.10", "12": "NC_000012.12",
        "13": "NC_000013.11", "14": "NC_000014.9", "15": "NC_000015.10", "16": "NC_000016.10",
        "17": "NC_000017.11", "18": "NC_000018.10", "19": "NC_000019.10", "20": "NC_000020.11",
        "21": "NC_000021.9", "22": "NC_000022.11", "X": "NC_000023.11", "Y": "NC_000024.10",
        "MT": "NC_012920.1",
    },
}  # fmt: skip
_ASSEMBLY_ALIASES = {
    "grch37": "GRCh37", "hg19": "GRCh37", "b37": "GRCh37", "hs37d5": "GRCh37",
    "grch38": "GRCh38", "hg38": "GRCh38", "b38": "GRCh38",
}  # fmt: skip
_ACCESSION = re.compile(r"^(?:[A-Z]{2}_\d+|[A-Z]{1,2}\d+)\.\d+$")


def canonical_assembly(assembly: str | None) -> str | None:
    """``GRCh37`` / ``GRCh38`` for their usual names (``hg19``, ``GRCh37.p13``, ``b37`` …)."""
    if not assembly:
        return None
    key = assembly.strip().split(".")[0].lower()
    return _ASSEMBLY_ALIASES.get(key, assembly)


def canonical_chrom(chrom: str) -> str:
    """``1``…``22``, ``X``, ``Y``, ``MT`` from ``chr1``, ``chrM``, ``M`` …; others unchanged."""
    c = chrom[3:] if chrom.lower().startswith("chr") else chrom
    if c.upper() in ("M", "MT"):
        return "MT"
    return c.upper() if c.upper() in ("X", "Y") else c


def refseq_accession(assembly: str | None, chrom: str) -> str | None:
    """The RefSeq accession of a chromosome (``NC_000001.10`` for GRCh37 ``1``), if known."""
    table = REFSEQ_ACCESSIONS.get(canonical_assembly(assembly) or "", {})
    return table.get(canonical_chrom(chrom))


def sequence_id(assembly: str | None, chrom: str) -> str:
    """A CURIE for the sequence: ``refseq:NC_…`` when known, ``refseq:``/``insdc:`` for a contig
    named by its accession, else ``<assembly>:<chrom>``."""
    accession = refseq_accession(assembly, chrom)
    if accession:
        return f"refseq:{accession}"
    if _ACCESSION.match(chrom):
        return f"refseq:{chrom}" if "_" in chrom else f"insdc:{chrom}"
    return f"{canonical_assembly(assembly) or 'unknown'}:{chrom}"


#: Zygosity terms (Genotype Ontology).
HETEROZYGOUS = {"id": "GENO:0000135", "label": "heterozygous"}
HOMOZYGOUS = {"id": "GENO:0000136", "label": "homozygous"}
HEMIZYGOUS = {"id": "GENO:0000134", "label": "hemizygous"}
HEMIZYGOUS_X = {"id": "GENO:0000604", "label": "hemizygous X-linked"}

#: Sequence Ontology ids of the consequence terms SnpEff and VEP write.
SO_TERMS: dict[str, str] = {
    "transcript_ablation": "SO:0001893",
    "splice_acceptor_variant": "SO:0001574",
    "splice_donor_variant": "SO:0001575",
    "stop_gained": "SO:0001587",
    "frameshift_variant": "SO:0001589",
    "stop_lost": "SO:0001578",
    "start_lost": "SO:0002012",
    "transcript_amplification": "SO:0001889",
    "feature_elongation": "SO:0001907",
    "feature_truncation": "SO:0001906",
    "inframe_insertion": "SO:0001821",
    "inframe_deletion": "SO:0001822",
    "conservative_inframe_insertion": "SO:0001823",
    "disruptive_inframe_insertion": "SO:0001824",
    "conservative_inframe_deletion": "SO:0001825",
    "disruptive_inframe_deletion": "SO:0001826",
    "missense_variant": "SO:0001583",
    "protein_altering_variant": "SO:0001818",
    "splice_region_variant": "SO:0001630",
    "incomplete_terminal_codon_variant": "SO:0001626",
    "initiator_codon_variant": "SO:0001582",
    "start_retained_variant": "SO:0002019",
    "stop_retained_variant": "SO:0001567",
    "synonymous_variant": "SO:0001819",
    "coding_sequence_variant": "SO:0001580",
    "mature_miRNA_variant": "SO:0001620",
    "5_prime_UTR_variant": "SO:0001623",
    "3_prime_UTR_variant": "SO:0001624",
    "5_prime_UTR_premature_start_codon_gain_variant": "SO:0001988",
    "non_coding_transcript_exon_variant": "SO:0001792",
    "non_coding_exon_variant": "SO:0001792",
    "exon_variant": "SO:0001791",
    "exon_loss_variant": "SO:0001572",
    "intron_variant": "SO:0001627",
    "NMD_transcript_variant": "SO:0001621",
    "non_coding_transcript_variant": "SO:0001619",
    "upstream_gene_variant": "SO:0001631",
    "downstream_gene_variant": "SO:0001632",
    "TF_binding_site_variant": "SO:0001782",
    "regulatory_region_variant": "SO:0001566",
    "intragenic_variant": "SO:0002011",
    "intergenic_variant": "SO:0001628",
    "intergenic_region": "SO:0000605",
    "gene_fusion": "SO:0001565",
    "bidirectional_gene_fusion": "SO:0002086",
    "rare_amino_acid_variant": "SO:0002008",
    "structural_interaction_variant": "SO:0002093",
    "sequence_feature": "SO:0000110",
}

_BASES_RE = re.compile(r"^[ACGTUNRYSWKMBDHV\-.]*$")


def molecular_effect(term: str) -> dict:
    """An ontology term for a consequence name (``missense_variant`` → ``SO:0001583``).

    Unknown names get a ``CUSTOM:`` CURIE, as the framework suggests where no ontology applies.
    """
    if ":" in term and _prefix(term):
        return {"id": term}
    so = SO_TERMS.get(term)
    return {"id": so, "label": term} if so else {"id": f"CUSTOM:{term}", "label": term}


def _unique(items: Iterable[str]) -> list[str]:
    return [i for i in dict.fromkeys(i for i in items if i)]


def _zygosity(dosage: int, chrom: str, haploid: bool) -> dict:
    if dosage >= 2:
        return dict(HOMOZYGOUS)
    if haploid or chrom in ("Y", "MT"):
        return dict(HEMIZYGOUS_X if chrom == "X" else HEMIZYGOUS)
    return dict(HETEROZYGOUS)


def _alternate_ids(ids: Iterable[str]) -> list[dict]:
    out = []
    for raw in _unique(i.strip() for i in ids if i and i != "."):
        if re.fullmatch(r"rs\d+", raw):
            out.append(
                {
                    "id": f"dbSNP:{raw}",
                    "reference": f"https://www.ncbi.nlm.nih.gov/snp/{raw}",
                    "notes": "dbSNP id",
                }
            )
        else:
            out.append({"id": raw, "notes": "VCF ID"})
    return out


def _hgvs_g(accession: str | None, start0: int, end0: int, ref: str, alt: str, kind: str):
    # Only the forms that need no 3' normalisation against the reference (HGVS 2016 rules).
    if not accession or not _BASES_RE.match(ref + alt):
        return None
    if kind == "SNP" and len(ref) == len(alt) == 1:
        return f"{accession}:g.{start0 + 1}{ref}>{alt}"
    if kind == "MNP" and len(ref) == len(alt) > 1:
        return f"{accession}:g.{start0 + 1}_{end0}delins{alt}"
    return None


def variant_record(
    row: Mapping,
    *,
    case_level: bool = True,
    haploid_ids: Iterable[str] = (),
    population: str = "ALL",
    source: str | None = None,
    source_reference: str | None = None,
) -> dict:
    """A ``genomicVariations`` default-model record from a query-engine variant row.

    Location is a VRS 1.3 ``SequenceLocation`` on the RefSeq accession with 0-based interbase
    ``start``/``end`` (the row's ``start0``/``end0``); alleles are the row's VCF-style alleles, a
    symbolic ALT (``<DEL>``, breakends) becoming ``N`` with the VCF allele kept in ``info``.
    Frequencies carry the dataset's ``AC``/``AN`` and homozygote count beside the required
    frequency (``alleleCount``/``alleleNumber``/``alleleCountHomozygous``, as Beacon networks use).
    With *case_level* and carrier ids in the row, each carrier becomes a ``caseLevelData`` item
    with its zygosity; *haploid_ids* are carriers with one copy of this chromosome (males on X).
    """
    chrom = canonical_chrom(str(row["chrom"]))
    assembly = row.get("assembly")
    accession = refseq_accession(assembly, chrom)
    ref = str(row["ref"]).upper()
    alt = str(row["alt"])
    kind = str(row.get("variant_type") or "")
    start0, end0 = int(row["start0"]), int(row["end0"])
    info: dict[str, Any] = {}
    if not _BASES_RE.match(ref):
        info["vcfReferenceAllele"] = ref
        ref = "N"
    alt_bases = alt.upper()
    if not _BASES_RE.match(alt_bases):
        info["vcfAlternateAllele"] = alt
        alt_bases = "N"
    record: dict[str, Any] = {
        "variantInternalId": str(row["variant_id"]),
        "variation": {
            "variantType": kind or "SNP",
            "referenceBases": ref,
            "alternateBases": alt_bases,
            "location": {
                "type": "SequenceLocation",
                "sequence_id": sequence_id(assembly, chrom),
                "interval": {
                    "type": "SequenceInterval",
                    "start": {"type": "Number", "value": start0},
                    "end": {"type": "Number", "value": max(end0, start0 + 1)},
                },
            },
        },
    }
    identifiers: dict[str, Any] = {}
    alternative = _alternate_ids(row.get("ids") or ())
    if alternative:
        identifiers["variantAlternativeIds"] = alternative
    hgvs = _hgvs_g(accession, start0, end0, ref, alt_bases, kind)
    if hgvs:
        identifiers["genomicHGVSId"] = hgvs
    if identifiers:
        record["identifiers"] = identifiers

    af = row.get("af")
    if af is None and row.get("an"):
        af = row.get("ac", 0) / row["an"]
    if af is not None:
        frequency: dict[str, Any] = {"population": population, "alleleFrequency": float(af)}
        for key, name in (("ac", "alleleCount"), ("an", "alleleNumber")):
            if row.get(key) is not None:
                frequency[name] = int(row[key])
        if row.get("hom") is not None:
            frequency["alleleCountHomozygous"] = int(row["hom"])
        dataset = row.get("dataset", "")
        record["frequencyInPopulations"] = [
            {
                "source": source or f"sandgrain Beacon dataset {dataset}".strip(),
                "sourceReference": source_reference or f"dataset:{dataset}",
                "frequencies": [frequency],
            }
        ]

    molecular: dict[str, Any] = {}
    genes = _unique(row.get("genes") or ())
    if genes:
        molecular["geneIds"] = genes
    changes = _unique(aa_short(c) for c in row.get("aa_changes") or ())
    if changes:
        molecular["aminoacidChanges"] = changes
    effects = _unique(e for raw in row.get("effects") or () for e in str(raw).split("&"))
    if effects:
        molecular["molecularEffects"] = [molecular_effect(e) for e in effects]
    if molecular:
        record["molecularAttributes"] = molecular

    carriers = row.get("carrier_ids")
    if case_level and carriers:
        dosages = row.get("carrier_dosage") or [1] * len(carriers)
        haploid = set(haploid_ids)
        record["caseLevelData"] = [
            {
                "biosampleId": str(sample),
                "individualId": str(sample),
                "zygosity": _zygosity(int(d), chrom, sample in haploid),
            }
            for sample, d in zip(carriers, dosages, strict=True)
        ]
    if info:
        record["info"] = info
    return record


UNKNOWN_SEX = {"id": "NCIT:C17998", "label": "unknown"}


def _term(term: Mapping | None) -> dict | None:
    if not term or not term.get("id"):
        return None
    out = {"id": str(term["id"])}
    if term.get("label"):
        out["label"] = str(term["label"])
    return out


def individual_record(row: Mapping) -> dict:
    """An ``individuals`` default-model record; an unknown sex is ``NCIT:C17998`` (required)."""
    record: dict[str, Any] = {"id": str(row["id"]), "sex": _term(row.get("sex")) or UNKNOWN_SEX}
    for key, name in (("ethnicity", "ethnicity"), ("geographic_origin", "geographicOrigin")):
        term = _term(row.get(key))
        if term:
            record[name] = term
    diseases = [t for t in map(_term, row.get("diseases") or ()) if t]
    if diseases:
        record["diseases"] = [{"diseaseCode": t} for t in diseases]
    features = [t for t in map(_term, row.get("phenotypic_features") or ()) if t]
    if features:
        record["phenotypicFeatures"] = [{"featureType": t} for t in features]
    return record


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def dataset_record(ds: Any) -> dict:
    """A ``datasets`` default-model record from a dataset manifest (mapping or object)."""
    record: dict[str, Any] = {
        "id": str(_get(ds, "id")),
        "name": str(_get(ds, "name") or _get(ds, "id")),
    }
    for key, name in (("description", "description"), ("version", "version")):
        value = _get(ds, key)
        if value not in (None, ""):
            record[name] = str(value)
    for key, name in (("created", "createDateTime"), ("updated", "updateDateTime")):
        stamp = _timestamp(_get(ds, key))
        if stamp:
            record[name] = stamp
    url = _get(ds, "external_url")
    if url:
        record["externalUrl"] = str(url)
    info = _drop_none(
        {
            "assemblyId": _get(ds, "assembly"),
            "accessLevel": str(_get(ds, "access")).upper() if _get(ds, "access") else None,
            "variantCount": _get(ds, "n_variants"),
            "individualCount": _get(ds, "n_individuals"),
        }
    )
    if info:
        record["info"] = info
    return record


_GENOTYPING = {"id": "OBI:0000070", "label": "genotyping assay"}
_CLINICAL = {"id": "OGMS:0000015", "label": "clinical history"}


def _distribution(name: str, values: list[list[dict]]) -> dict:
    # Aggregate only (a count per category): members are never listed (Beacon cohort model).
    counts: Counter[str] = Counter()
    with_data = 0
    for terms in values:
        if terms:
            with_data += 1
        for t in {(t.get("label") or t["id"]) for t in terms}:
            counts[t] += 1
    out: dict[str, Any] = {"availability": with_data > 0, "availabilityCount": with_data}
    if counts:
        out["distribution"] = {name: dict(sorted(counts.items()))}
    return out


def cohort_record(ds: Any, individuals: Iterable[Mapping] | None = None) -> dict:
    """The beacon-defined cohort of a dataset: all its individuals, with aggregate
    sex/ethnicity/origin/disease/phenotype distributions when *individuals* are given."""
    ds_id = str(_get(ds, "id"))
    name = _get(ds, "name") or ds_id
    rows = None if individuals is None else list(individuals)
    size = len(rows) if rows is not None else _get(ds, "n_individuals")
    record: dict[str, Any] = {
        "id": ds_id,
        "name": f"All individuals of dataset {name}",
        "cohortType": "beacon-defined",
        "cohortDataTypes": [dict(_GENOTYPING)],
    }
    if size is not None:
        record["cohortSize"] = int(size)
    if rows:
        if any(r.get("diseases") or r.get("phenotypic_features") for r in rows):
            record["cohortDataTypes"].append(dict(_CLINICAL))

        def terms(r: Mapping, key: str) -> list[dict]:
            value = r.get(key)
            items = value if isinstance(value, list) else [value]
            return [t for t in map(_term, items) if t]

        n = len(rows)
        record["collectionEvents"] = [
            {
                "eventNum": 1,
                "eventSize": n,
                "eventGenders": _distribution("genders", [terms(r, "sex") for r in rows]),
                "eventEthnicities": _distribution(
                    "ethnicities", [terms(r, "ethnicity") for r in rows]
                ),
                "eventLocations": _distribution(
                    "locations", [terms(r, "geographic_origin") for r in rows]
                ),
                "eventDiseases": _distribution("diseases", [terms(r, "diseases") for r in rows]),
                "eventPhenotypes": _distribution(
                    "phenotypes", [terms(r, "phenotypic_features") for r in rows]
                ),
            }
        ]
    return record
