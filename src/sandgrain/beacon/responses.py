"""GA4GH Beacon v2 documents: response envelopes, as plain dicts.

Meta sections, result sets, boolean/count/result-set responses, errors and the informational
endpoints (info, service-info, configuration, map, entry types, filtering terms). The records
inside result sets (variants, individuals, datasets, cohorts) and their ontology vocabulary are
built by :mod:`sandgrain.beacon.records`.

Pure functions, no web framework: the service passes plain data (the beacon's identity, counts,
records) and the interface serialises what comes back. Every builder here is checked in
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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..errors import InputError
from .request import GRANULARITIES, INCLUDE_MODES

#: Version of the Beacon API these documents follow ("v"-prefixed, as the spec asks).
API_VERSION = "v2.1.1"
#: Default ``beaconId`` (reverse domain name).
DEFAULT_BEACON_ID = "org.sandgrain.beacon"
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
            lookups=(("individual", "individuals"), ("biosample", "biosamples")),
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
            lookups=(("genomicVariant", "g_variants"), ("biosample", "biosamples")),
            filtering_terms_path="filtering_terms",
            request_key="individual",
        ),
        EntryType(
            id="biosample",
            name="Biosample",
            description="The sample of an individual whose genotypes a dataset holds: one per "
            "VCF sample (its status and origin from the sample metadata, else unknown).",
            ontology_term={"id": "NCIT:C70699", "label": "Biospecimen"},
            schema_id="ga4gh-beacon-biosample-v2.0.0",
            schema_version="v2.0.0",
            model_folder="biosamples",
            path="biosamples",
            lookups=(
                ("genomicVariant", "g_variants"),
                ("run", "runs"),
                ("analysis", "analyses"),
            ),  # fmt: skip
            filtering_terms_path="biosamples/filtering_terms",
            request_key="biosample",
        ),
        EntryType(
            id="run",
            name="Sequencing run",
            description="The sequencing run of a sample, where the sample metadata gives its "
            "date (runDate).",
            ontology_term={"id": "NCIT:C148088", "label": "Sequencing run"},
            schema_id="ga4gh-beacon-run-v2.0.0",
            schema_version="v2.0.0",
            model_folder="runs",
            path="runs",
            lookups=(("genomicVariant", "g_variants"), ("analysis", "analyses")),
            filtering_terms_path="runs/filtering_terms",
            request_key="run",
        ),
        EntryType(
            id="analysis",
            name="Analysis",
            description="The analysis that gave a sample's genotypes as this Beacon holds them: "
            "the VCF's variant calling, then the Beacon ingest.",
            ontology_term={"id": "edam:operation_2945", "label": "Analysis"},
            schema_id="ga4gh-beacon-analysis-v2.0.0",
            schema_version="v2.0.0",
            model_folder="analyses",
            path="analyses",
            lookups=(("genomicVariant", "g_variants"),),
            filtering_terms_path="analyses/filtering_terms",
            request_key="analysis",
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
            lookups=(
                ("genomicVariant", "g_variants"),
                ("individual", "individuals"),
                ("biosample", "biosamples"),
            ),  # fmt: skip
            request_key="dataset",
        ),
        EntryType(
            id="cohort",
            name="Cohort",
            description="A group of individuals, identified by a common characteristic: the "
            "beacon-defined cohort of each dataset (all of its individuals), and the "
            "study-defined cohorts its sample metadata names.",
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
    # The summary lists filters as strings (CURIEs); requests may send {"id": ..., "scope": ...}
    # or alphanumeric {"id", "operator", "value"}, echoed in their text form (``age>5``).
    out = []
    for f in filters:
        if not isinstance(f, Mapping):
            out.append(str(f))
        elif "operator" in f or "value" in f:
            out.append(f"{f.get('id')}{f.get('operator', '=')}{f.get('value')}")
        elif f.get("includeDescendantTerms") is False:
            out.append(f"={f.get('id')}")
        else:
            out.append(str(f.get("id")))
    return out


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
    ``protection.protect_count``).
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


def iso_timestamp(value: str | date | datetime | None) -> str | None:
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


def drop_none(d: dict) -> dict:
    """``d`` without its ``None`` values (optional schema fields are left out, never null)."""
    return {k: v for k, v in d.items() if v is not None}


def info_response(identity: BeaconIdentity | Mapping | None = None) -> dict:
    """``beaconInfoResponse`` for ``/`` and ``/info``."""
    me = _identity(identity)
    organization = drop_none(
        {
            "id": me.organization_id,
            "name": me.organization_name,
            "description": me.organization_description,
            "welcomeUrl": me.organization_url,
            "contactUrl": me.contact_url,
            "logoUrl": me.logo_url,
        }
    )
    response = drop_none(
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
            "createDateTime": iso_timestamp(me.created),
            "updateDateTime": iso_timestamp(me.updated),
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
    return drop_none(
        {
            "id": me.id,
            "name": me.name,
            "type": {"group": "org.ga4gh", "artifact": "beacon", "version": API_VERSION},
            "description": me.description,
            "organization": {"name": me.organization_name, "url": url},
            "contactUrl": me.contact_url,
            "documentationUrl": me.documentation_url,
            "createdAt": iso_timestamp(me.created),
            "updatedAt": iso_timestamp(me.updated),
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


def curie_prefix(curie: str) -> str | None:
    """The prefix of a CURIE (``HP`` of ``HP:0001250``); None when it has none."""
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
    prefix = curie_prefix(term_id)
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
        resources = ontology_resources(p for t in items if (p := curie_prefix(t["id"])))
    return {
        "meta": informational_meta(beacon_id=beacon_id),
        "response": {"filteringTerms": items, "resources": [dict(r) for r in resources]},
    }
