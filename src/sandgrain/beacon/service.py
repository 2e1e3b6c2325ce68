"""The Beacon as a service: one call in, one Beacon response document out, audited.

Every query goes through the same steps (:meth:`BeaconService.variants`,
:meth:`BeaconService.individuals`):

1. authenticate the bearer token, if any (:func:`sandgrain.beacon.tokens.authenticate`);
2. read the request into a validated :class:`~sandgrain.beacon.request.BeaconRequest`;
3. work out which datasets this caller may see and at which granularity
   (:mod:`sandgrain.beacon.access`): the answer's granularity is the lowest of what was asked and
   what each queried dataset allows;
4. check the query, charge the caller's query budget (a rejected query costs nothing), run it on
   the engine (:mod:`sandgrain.beacon.query`) and protect small counts
   (:func:`sandgrain.beacon.protection.protect_count`);
5. build the Beacon response (:mod:`sandgrain.beacon.responses`) and write an audit event — for
   a failure too, before the error goes back to the interface, which reports it.

The service knows nothing of HTTP: the web router (:mod:`sandgrain.web.beacon`) hands it a
:class:`Call` and turns what it returns, or raises, into responses.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..config import Settings
from ..errors import InputError, NotFoundError, SandgrainError
from ..fanout.budget import TaskBudget
from ..registry import Services
from ..storage import Store
from . import access, consent, entries, records, responses
from .audit import AuditLog, audit_event, returned_counts
from .budget import QueryBudget
from .errors import AuthenticationError, ForbiddenError
from .individuals import filtering_terms
from .policy import SecurityConfig
from .privacy import Guard
from .protection import protect_count
from .query import DatasetAnswer, VariantQuery, answer_individuals, answer_variants
from .request import BeaconRequest, parse_request
from .settings import BeaconSettings
from .store import BeaconCatalog, BeaconDataset, federated_stores
from .tokens import JwksCache, Principal, authenticate
from .variants import parse_variant_id

GENOMIC_VARIANT = "genomicVariant"
INDIVIDUAL = "individual"


@dataclass(frozen=True)
class Call:
    """One call of the Beacon as it was received, in no framework's terms.

    ``query`` holds the query string's ``(key, value)`` pairs (a key may repeat), ``body`` the
    POST body; ``endpoint`` and ``method`` are recorded in the audit log.
    """

    method: str
    endpoint: str
    authorization: str | None = None
    ip: str = "unknown"
    query: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


def status_of(exc: BaseException) -> int:
    """The HTTP status a failure is reported with: a sandgrain error's own, else 500."""
    return exc.http_status if isinstance(exc, SandgrainError) else 500


class BeaconService:
    """What the Beacon endpoints share: catalog, security settings, budget, audit log, and one
    fan-out executor."""

    def __init__(
        self,
        settings: Settings,
        *,
        stores: list[Store] | None = None,
        security: SecurityConfig | None = None,
        identity: responses.BeaconIdentity | None = None,
    ):
        self.settings = settings
        self.security = security or SecurityConfig.from_settings(settings)
        section = settings.section(BeaconSettings)
        main = Store.from_settings(settings)
        if stores is None:
            stores = federated_stores(main, section.stores)
            stores.extend(Store(s["url"], s.get("storage_options")) for s in self.security.stores)
        self.catalog = BeaconCatalog(stores, cache_bytes=section.cache_mb << 20)
        self.jwks = JwksCache.for_config(self.security)
        self.budget = QueryBudget.from_config(self.security, settings)
        self.audit = AuditLog.from_config(self.security, settings)
        self.guard = Guard(self.security, settings)
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

    @classmethod
    def for_app(cls, services: Services) -> BeaconService:
        """The service a web app keeps on ``app.state.beacon`` (``Domain.web_state``)."""
        return cls(services.settings)

    def close(self) -> None:
        """Stop the fan-out executor and close the budget's and audit log's connections."""
        with self._executor_lock:
            if self._executor is not None:
                self._executor.close()
                self._executor = None
        self.budget.close()
        self.audit.close()
        self.guard.close()

    def principal(self, call: Call) -> Principal:
        """Who makes ``call`` (anonymous without an ``Authorization`` header)."""
        return authenticate(call.authorization, call.ip, self.security, self.jwks)

    # -- queries ------------------------------------------------------------------------------
    def variants(
        self,
        call: Call,
        *,
        variant_id: str | None = None,
        individual_id: str | None = None,
        dataset_id: str | None = None,
    ) -> dict:
        """A genomic-variant query: by the request parameters, one ``variant_id``, or the
        variants one individual carries (which needs record-level access)."""

        def run(req: BeaconRequest, seen: access.Visible, granularity: str, charge, rare):
            if variant_id is not None:
                if req.params:
                    raise InputError("/g_variants/{id} takes no request parameters")
                if parse_variant_id(variant_id) is None:
                    raise NotFoundError(
                        f"{variant_id!r} is not a variant id of this Beacon (like 1-10177-A-AC)"
                    )
                q = VariantQuery(variant_id=variant_id)
            elif individual_id is not None:
                q = VariantQuery(individual_id=individual_id)
                if req.params:
                    q = VariantQuery.from_params(req.params)
                    q.individual_id = individual_id
            else:
                q = VariantQuery.from_params(req.params)
            charge()
            datasets = [ds for ds, _ in seen]
            if individual_id is not None:
                datasets = [ds for ds in datasets if individual_id in ds.sample_index]
            answers = answer_variants(
                self.catalog, datasets, q, filters=req.filters, skip=req.offset,
                limit=req.page_size,
                records=granularity == "record", carriers=granularity == "record",
                executor=lambda: self.executor, task_budget=TaskBudget.from_settings(self.settings),
                rare=rare,
            )  # fmt: skip
            return [
                (a.dataset, a.count, [records.variant_record(row) for row in a.rows])
                for a in answers
            ], _warnings(answers), answers

        return self._query(call, GENOMIC_VARIANT, run, dataset_id, person=individual_id)

    def individuals(
        self,
        call: Call,
        *,
        individual_id: str | None = None,
        variant_id: str | None = None,
        dataset_id: str | None = None,
    ) -> dict:
        """Individuals, by filters; one named individual (which needs record-level access); or
        those carrying ``variant_id``."""

        def run(req: BeaconRequest, seen: access.Visible, granularity: str, charge, rare):
            req.check_no_params("individual queries")
            if variant_id is not None and parse_variant_id(variant_id) is None:
                raise NotFoundError(
                    f"{variant_id!r} is not a variant id of this Beacon (like 1-10177-A-AC)"
                )
            charge()
            answers = [
                answer_individuals(
                    ds, filters=req.filters, individual_id=individual_id, variant_id=variant_id,
                    catalog=self.catalog, skip=req.offset, limit=req.page_size,
                    rare=rare.get(ds.id),
                )  # fmt: skip
                for ds, _ in seen
                if individual_id is None or individual_id in ds.sample_index
            ]
            return [
                (a.dataset, a.count, [records.individual_record(r) for r in a.rows])
                for a in answers
            ], _warnings(answers), answers

        return self._query(call, INDIVIDUAL, run, dataset_id, person=individual_id)

    def _query(
        self,
        call: Call,
        entry: str,
        run: Callable,
        dataset_id: str | None,
        *,
        person: str | None,
    ) -> dict:
        """Authenticate, read the request, decide what it may see, apply the
        re-identification defences (:mod:`sandgrain.beacon.privacy`), run
        ``run(req, seen, granularity, charge, rare)`` → (answers, info, dataset answers), charge
        the answer's risk, build the response, audit. ``run`` checks its query, then calls
        ``charge()``, then runs it, hiding rare alleles as ``rare`` says."""
        principal = req = None
        try:
            principal = self.principal(call)
            req = parse_request(call.method, call.query, call.body)
            if dataset_id is not None:  # a dataset named in the path
                req.dataset_ids = [dataset_id]
            seen = access.visible(self.catalog, principal, req.dataset_ids, self.security)
            if person is not None:
                seen = access.record_level(seen, "a request about one individual")
            access.check_group_sizes(req.filters, seen, self.security)
            rare = self.guard.before(principal, req.filters, seen)
            granularity = access.granted(req.granularity, seen)
            key = principal.budget_key
            answers, info, raw = run(req, seen, granularity, lambda: self.budget.charge(key), rare)
            self.guard.after(principal, seen, raw)
            info = dict(info or {}, provenance=provenance(seen, {a[0] for a in answers}))
            body = self._build(req, granularity, entry, answers, info)
        except Exception as exc:  # every failure is audited, then reported by the interface
            self._audit_failure(call, principal, req, exc)
            raise
        self._audit(
            call, principal, req, outcome="ok", datasets=[a[0] for a in answers],
            granularity=body["meta"]["returnedGranularity"],
            counts=returned_counts(body),
        )  # fmt: skip
        return body

    # -- datasets, cohorts, filtering terms -----------------------------------------------------
    def collection(self, call: Call, entry: str, one: str | None = None) -> dict:
        """The datasets (``entry = "dataset"``) or cohorts (``"cohort"``: each dataset's
        beacon-defined cohort of its consenting individuals and the study-defined cohorts its
        metadata names, :mod:`sandgrain.beacon.entries`) this caller may see, or the ``one``
        named."""
        build = {"dataset": self._dataset_docs, "cohort": self._cohort_docs}[entry]
        principal = req = None
        try:
            principal = self.principal(call)
            req = parse_request(call.method, call.query, call.body)
            req.check_no_params(f"/{entry}s")
            seen = access.visible(self.catalog, principal, req.dataset_ids, self.security)
            if one is not None:
                owner = entries.split_cohort_id(one)[0] if entry == "cohort" else one
                seen = [(ds, g) for ds, g in seen if ds.id == owner]
            items = [doc for ds, _ in seen for doc in build(ds)]
            if one is not None:
                items = [doc for doc in items if doc["id"] == one]
                if not items:
                    raise NotFoundError(f"no {entry} {one!r}")
            page = items[req.offset : req.offset + req.page_size]
            meta = responses.meta(
                granularity="record", entry_type=entry, requested_granularity=req.granularity,
                skip=req.skip, limit=req.limit, beacon_id=self.identity.id,
                requested_schemas=req.requested_schemas,
            )  # fmt: skip
            body = responses.collections_response(meta, page, total=len(items))
        except Exception as exc:  # every failure is audited, then reported by the interface
            self._audit_failure(call, principal, req, exc)
            raise
        self._audit(
            call, principal, req, outcome="ok", datasets=[ds.id for ds, _ in seen],
            granularity="record", counts={entry: len(items)},
        )  # fmt: skip
        return body

    def _dataset_docs(self, ds: BeaconDataset) -> list[dict]:
        revoked = consent.revoked_ids(ds.store, ds.id)
        consenting = sum(1 for s in ds.samples if s not in revoked)
        return [records.dataset_record(dict(ds.summary(), n_individuals=consenting))]

    def _cohort_docs(self, ds: BeaconDataset) -> list[dict]:
        """The dataset's cohort of consenting individuals, then its study-defined cohorts. With
        a ``min_count`` set, their sex, ethnicity, disease and phenotype distributions are left
        out: their small cells would reveal what the count protection hides."""
        revoked = consent.revoked_ids(ds.store, ds.id)
        people = [p for p in ds.individuals if p["id"] not in revoked]
        summary = dict(ds.summary(), n_individuals=len(people))
        aggregates = not self.security.min_count
        return [
            records.cohort_record(summary, people if aggregates else None),
            *entries.cohort_docs(ds, people, aggregates=aggregates),
        ]

    def filtering_terms(
        self,
        call: Call,
        *,
        entry: str | None = None,
        dataset_id: str | None = None,
        cohort_id: str | None = None,
    ) -> dict:
        """The terms (and alphanumeric fields) individuals of the visible datasets carry, usable
        as filters: of every entry type, or those whose scopes include ``entry``; of one dataset
        (``dataset_id``) or one cohort's members (``cohort_id``)."""
        principal = req = None
        try:
            principal = self.principal(call)
            req = parse_request(call.method, call.query, call.body)
            req.check_no_params("filtering terms")
            cohort = None
            if cohort_id is not None:
                dataset_id, cohort = entries.split_cohort_id(cohort_id)
            if dataset_id is not None:
                req.dataset_ids = [dataset_id]
            terms: dict[str, dict] = {}
            seen = access.visible(self.catalog, principal, req.dataset_ids, self.security)
            for ds, _ in seen:
                revoked = consent.revoked_ids(ds.store, ds.id)
                people = [p for p in ds.individuals if p["id"] not in revoked]
                if cohort is not None:
                    people = entries.study_cohorts(people).get(cohort, [])
                    if not people:
                        raise NotFoundError(f"no cohort {cohort_id!r}")
                for ident, term in filtering_terms(people).items():
                    if entry is None or entry in term["scopes"]:
                        terms.setdefault(ident, term)
            body = responses.filtering_terms_response(
                sorted(terms.values(), key=lambda t: t["id"]), beacon_id=self.identity.id
            )
        except Exception as exc:  # every failure is audited, then reported by the interface
            self._audit_failure(call, principal, req, exc)
            raise
        self._audit(
            call, principal, req, outcome="ok", datasets=[ds.id for ds, _ in seen],
            counts={"filteringTerms": len(terms)},
        )  # fmt: skip
        return body

    # -- biosamples, runs, analyses; study-defined cohorts --------------------------------------
    def entries(
        self,
        call: Call,
        entry: str,
        *,
        entry_id: str | None = None,
        individual_id: str | None = None,
        variant_id: str | None = None,
        dataset_id: str | None = None,
    ) -> dict:
        """Biosamples, runs or analyses (``entry``, :mod:`sandgrain.beacon.entries`): by
        filters; one by its id, or those of one individual (both need record-level access, as
        one individual does); or those of the carriers of ``variant_id``. Counted, protected and
        audited as individuals are."""
        sample = individual_id
        if entry_id is not None:
            sample = entries.sample_of(entry, entry_id)

        def run(req: BeaconRequest, seen: access.Visible, granularity: str, charge, rare):
            req.check_no_params(f"{entry} queries")
            if entry_id is not None and sample is None:
                raise NotFoundError(f"{entry_id!r} is not a {entry} id of this Beacon")
            if variant_id is not None and parse_variant_id(variant_id) is None:
                raise NotFoundError(
                    f"{variant_id!r} is not a variant id of this Beacon (like 1-10177-A-AC)"
                )
            charge()
            answers = [
                entries.answer_entries(
                    ds, entry, filters=req.filters, sample=sample, variant_id=variant_id,
                    catalog=self.catalog, skip=req.offset, limit=req.page_size,
                    rare=rare.get(ds.id),
                )  # fmt: skip
                for ds, _ in seen
                if sample is None or sample in ds.sample_index
            ]
            return [(a.dataset, a.count, a.rows) for a in answers], _warnings(answers), answers

        return self._query(call, entry, run, dataset_id, person=sample)

    def entry_variants(self, call: Call, entry: str, entry_id: str) -> dict:
        """The variants of one biosample, run or analysis: its sample's (record-level)."""
        sample = entries.sample_of(entry, entry_id)
        if sample is None:
            sample = "\x00"  # no sample has this name: an empty, audited answer
        return self.variants(call, individual_id=sample)

    def cohort_individuals(self, call: Call, cohort_id: str) -> dict:
        """The individuals of a cohort: a dataset's (its beacon-defined cohort), or the members
        of a study-defined cohort ``dataset:name`` — the filter ``cohort=name`` on its dataset,
        so the group checks of any filtered query apply."""
        dataset, name = entries.split_cohort_id(cohort_id)
        if name is not None:
            call = _with_filter(call, f"cohort={name}")
        return self.individuals(call, dataset_id=dataset)

    # -- admin: dynamic consent -----------------------------------------------------------------
    def change_consent(
        self, call: Call, dataset_id: str, individual_id: str, action: str
    ) -> dict:
        """Revoke or restore one participant's consent (``action``); admins only, audited."""
        principal = None
        try:
            if action not in ("revoke", "restore"):
                raise NotFoundError(f"unknown action {action!r}: use revoke or restore")
            principal = self.principal(call)
            if not principal.authenticated:
                raise AuthenticationError("the admin API needs a bearer token")
            if not access.is_admin(principal, self.security):
                raise ForbiddenError(f"{principal.subject} is not a Beacon admin")
            ds = self.catalog.get(dataset_id)
            if action == "revoke":
                consent.revoke(ds.store, dataset_id, individual_id, by=principal.subject or "")
                changed = True
            else:
                changed = consent.restore(ds.store, dataset_id, individual_id)
        except Exception as exc:  # every failure is audited, then reported by the interface
            self.audit.record(
                audit_event(
                    principal or _anonymous(call),
                    kind=action if action in ("revoke", "restore") else "admin",
                    endpoint=call.endpoint, method=call.method,
                    outcome="denied" if status_of(exc) in (401, 403) else "error",
                    datasets=[dataset_id], query={"individual": individual_id},
                    detail=str(exc)[:300],
                )  # fmt: skip
            )
            raise
        self.audit.record(
            audit_event(
                principal, kind=action, endpoint=call.endpoint, method=call.method,
                outcome="ok", datasets=[dataset_id], query={"individual": individual_id},
            )  # fmt: skip
        )
        return {
            "dataset": dataset_id, "individual": individual_id, "action": action,
            "changed": changed,
        }  # fmt: skip

    # -- responses ------------------------------------------------------------------------------
    def _meta(self, req: BeaconRequest, granularity: str, entry: str) -> dict:
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

    def _count_report(self, n: int) -> responses.CountReport | None:
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

    def _build(
        self,
        req: BeaconRequest,
        granularity: str,
        entry: str,
        answers: list[tuple[str, int, list[dict]]],
        info: dict | None = None,
    ) -> dict:
        """A boolean, count or result-sets response from (dataset, count, records) triples.

        Counts of individuals (every entry type but genomic variants) are protected, each
        dataset's on its own (``min_count``), and the total is the sum of what the datasets
        report — never a protected sum of true counts, which would give a small count away by
        subtraction. A count of variants is not a count of people: it is reported as it is
        (each variant shown has at least ``rare_min_carriers`` carriers where rare alleles are
        hidden). At record granularity the records are listed, so their number is reported as it
        is (grant record only to those who may see individual data).
        """
        exists = any(n > 0 for _, n, _ in answers)
        protect = granularity != "record" and entry != GENOMIC_VARIANT
        sets, hidden = [], False
        for ds_id, n, rows in answers:
            report = self._count_report(n) if protect else responses.CountReport(n)
            if report is None:
                hidden = True
                continue
            results = rows if granularity == "record" else ()
            sets.append(responses.result_set(ds_id, count=report, results=results, exists=n > 0))
        if hidden and not sets:
            granularity = "boolean"  # every count hidden: say only whether there is a hit
        meta = self._meta(req, granularity, entry)
        if granularity == "boolean":
            return responses.boolean_response(meta, exists, info=info)
        return responses.query_response(meta, sets, include=req.include, info=info)

    # -- audit ----------------------------------------------------------------------------------
    def _audit(self, call: Call, principal: Principal, req: BeaconRequest | None, **fields):
        """Record a query event: what was asked (:func:`_asked`) and ``fields``. The log
        fails closed (:class:`~sandgrain.beacon.errors.AuditUnavailableError`, 503) unless
        configured otherwise: then no answer goes out."""
        event = audit_event(
            principal, kind="query", endpoint=call.endpoint, method=call.method,
            query=_asked(call, req), **fields,
        )  # fmt: skip
        self.audit.record(event)

    def _audit_failure(
        self, call: Call, principal: Principal | None, req: BeaconRequest | None, exc: Exception
    ) -> None:
        outcome = "denied" if status_of(exc) in (401, 403, 413, 429) else "error"
        self._audit(
            call, principal or _anonymous(call), req, outcome=outcome, detail=str(exc)[:300]
        )

    def refuse(self, call: Call, exc: Exception) -> None:
        """Audit a call the interface refused before asking the service (a body over the size
        limit: ``call`` comes without it), as the caller its token names if it verifies."""
        try:
            principal = self.principal(call)
        except SandgrainError:
            principal = _anonymous(call)
        unread = {"query": [list(item) for item in call.query[:_RAW_ITEMS]], "body": None}
        self.audit.record(
            audit_event(
                principal, kind="query", endpoint=call.endpoint, method=call.method,
                query={"unread": unread}, outcome="denied", detail=str(exc)[:300],
            )  # fmt: skip
        )


#: How much of a request that could not be read an audit event keeps.
_RAW_ITEMS, _RAW_BODY = 50, 2000


def _asked(call: Call, req: BeaconRequest | None) -> dict:
    """What a call asked for, for the audit log: the parameters, filters, dataset ids and
    granularity of its request; read from the call when the service had not read it (the token
    was refused first), or, for a request that cannot be read, the start of what was sent."""
    if req is None:
        try:
            req = parse_request(call.method, call.query, call.body)
        except Exception:  # malformed: keep (a bounded part of) what came
            return {
                "unread": {
                    "query": [list(item) for item in call.query[:_RAW_ITEMS]],
                    "body": call.body[:_RAW_BODY].decode("utf-8", "replace"),
                }
            }
    return {
        "params": req.params,
        "filters": req.filters,
        "datasetIds": req.dataset_ids,
        "granularity": req.granularity,
    }


def _with_filter(call: Call, text: str) -> Call:
    """``call`` with one more filter (a canonical text): appended to a GET's ``filters`` or a
    POST body's ``query.filters``. A body that cannot be read is left as it is (reading it
    fails with the usual message)."""
    if call.method == "GET":
        items, added = [], False
        for key, value in call.query:
            if key == "filters" and not added:
                value, added = f"{value},{text}" if value else text, True
            items.append((key, value))
        if not added:
            items.append(("filters", text))
        return replace(call, query=tuple(items))
    try:
        doc = json.loads(call.body) if call.body.strip() else {"meta": {}}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return call
    query = doc.get("query", {}) if isinstance(doc, dict) else None
    if not isinstance(query, dict) or not isinstance(query.get("filters", []), list):
        return call
    doc["query"] = dict(query, filters=[*query.get("filters", []), text])
    return replace(call, body=json.dumps(doc).encode())


def _anonymous(call: Call) -> Principal:
    """Who a call is recorded as when authentication failed or did not happen."""
    return Principal(None, None, call.ip, False, frozenset(), ())


def provenance(seen: access.Visible, answered: set[str]) -> dict:
    """What an answer came from: the software and, per dataset, the version read and the
    SHA-256 of the files it was ingested from."""
    from .. import __version__

    datasets = {}
    for ds, _ in seen:
        if ds.id in answered:
            inputs = ds.dataset.manifest.get("provenance", {}).get("inputs", [])
            datasets[ds.id] = {
                "version": ds.version,
                "created": ds.dataset.manifest.get("created"),
                "inputs_sha256": [i.get("sha256") for i in inputs],
            }
    return {"software": "sandgrain", "version": __version__, "datasets": datasets}


def _warnings(answers: Iterable[DatasetAnswer]) -> dict[str, Any] | None:
    warnings = [w for a in answers for w in a.warnings]
    return {"warnings": warnings} if warnings else None

