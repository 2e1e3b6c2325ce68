"""The Beacon's audit log: who asked what, when, and what was answered.

:class:`AuditLog` keeps one row per query, revocation, restoration and admin action in the
``beacon_audit`` table of the metadata database (:mod:`sandgrain.db`: the SQLite file under
``SANDGRAIN_HOME`` or PostgreSQL), so every server process sharing that database writes to one
log. :func:`audit_event` builds an event for a caller; :func:`returned_counts` reads what a
response document revealed, which is what a query's event records.

Tamper evidence
    The rows form a hash chain: each stores ``hash = SHA-256(previous row's hash + "\n" +
    its canonical content)`` (the first row chains from 64 zeros), the construction of
    Haber & Stornetta 1991 ("How to time-stamp a digital document", *J Cryptology* 3:99) and of
    Schneier & Kelsey 1999 ("Secure audit logs to support computer forensics", *ACM TISSEC*
    2:159), without their keys. Changing, inserting, deleting or reordering a row breaks the
    chain at that row or the next: :meth:`AuditLog.verify` (``sandgrain beacon audit verify``)
    names the first row that does not match. Removing rows from the end leaves a shorter valid
    chain, and someone who can rewrite the table can also recompute every hash after a change
    (there is no key): an operator who records the head hash that ``verify`` prints somewhere
    else (a ticket, a log shipper) detects both. Appends take turns across processes and machines
    (``db.transaction(write=True, scope="beacon_audit")``: ``BEGIN IMMEDIATE`` on SQLite, a
    transaction-scoped advisory lock on PostgreSQL), so concurrent writers never fork the chain.

Failing closed
    An event that cannot be written raises :class:`AuditUnavailableError` (503) by default, so
    the Beacon answers nothing it could not audit; ``fail_closed=False`` (setting
    ``SANDGRAIN_BEACON_AUDIT_FAIL_CLOSED=false``) logs the failure and answers anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandgrain.config import Settings
from sandgrain.db import Database, connect
from sandgrain.errors import InputError, StorageError

from .errors import AuditUnavailableError
from .policy import SecurityConfig, _check_number
from .settings import BeaconSettings
from .tokens import Principal

logger = logging.getLogger(__name__)

#: Audit event kinds and outcomes.
AUDIT_KINDS = ("query", "revoke", "restore", "admin")
AUDIT_OUTCOMES = ("ok", "denied", "error")

#: 2: rows carry ``hash`` (the chain); a version-1 table is upgraded and its rows chained.
_SCHEMA_VERSION = 2
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS beacon_audit (
        id {serial},
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT,
        issuer TEXT,
        ip TEXT,
        endpoint TEXT,
        method TEXT,
        query TEXT,
        datasets TEXT,
        granularity TEXT,
        counts TEXT,
        outcome TEXT NOT NULL,
        detail TEXT,
        hash TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS beacon_audit_by_time ON beacon_audit (time)",
)
#: Audit writers take turns, so ids grow in commit order (a reader paging by id misses none).
_SCOPE = "beacon_audit"

_AUDIT_FIELDS = (
    "time",
    "kind",
    "subject",
    "issuer",
    "ip",
    "endpoint",
    "method",
    "query",
    "datasets",
    "granularity",
    "counts",
    "outcome",
    "detail",
)
_AUDIT_JSON = ("query", "datasets", "counts")
#: The ``previous hash`` of the first row.
GENESIS = "0" * 64
#: Rows read at a time by :meth:`AuditLog.verify`.
_VERIFY_PAGE = 5000


def chain_hash(previous: str, row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``previous`` (the hash of the row before, or :data:`GENESIS`), a
    newline and the row's canonical content: its stored fields in :data:`_AUDIT_FIELDS` order
    as a compact JSON array (every field is text or null as stored, so the content a verifier
    reads back is byte for byte what was hashed)."""
    content = json.dumps(
        [row[name] for name in _AUDIT_FIELDS], ensure_ascii=True, separators=(",", ":")
    )
    return hashlib.sha256(f"{previous}\n{content}".encode()).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """What :meth:`AuditLog.verify` found: ``rows`` checked, the ``head`` hash (of the last
    row), and for a broken chain the id of the ``first_bad`` row and the ``reason``."""

    rows: int
    head: str
    first_bad: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def returned_counts(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a Beacon response document revealed, for the audit log: ``exists``, and at count
    and record granularity ``numTotalResults`` and each result set's ``resultsCount`` — the
    reported (protected) numbers, never the true counts behind them."""
    summary = body.get("responseSummary") or {}
    out: dict[str, Any] = {"exists": summary.get("exists")}
    if "numTotalResults" in summary:
        out["numTotalResults"] = summary["numTotalResults"]
    sets = (body.get("response") or {}).get("resultSets")
    if sets is not None:
        out["resultSets"] = {s.get("id"): s.get("resultsCount") for s in sets}
    return out


def _iso(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z``: sorts lexicographically in time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _normalise_time(value: Any, what: str) -> str:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"{what} must be an ISO-8601 time, not {value!r}") from None
    else:
        raise InputError(f"{what} must be an ISO-8601 time, not {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _iso(moment)


def audit_event(principal: Principal, **fields: Any) -> dict[str, Any]:
    """An audit event for ``principal`` (subject, issuer, ip filled in) plus ``fields``."""
    return {
        "subject": principal.subject,
        "issuer": principal.issuer,
        "ip": principal.ip,
        **fields,
    }


class AuditLog:
    """Every query, revocation, restoration and admin action, one database row each.

    An event is a dict with the keys: ``kind`` (``query`` | ``revoke`` | ``restore`` |
    ``admin``, required), ``outcome`` (``ok`` | ``denied`` | ``error``, required), ``time``
    (default now; stored as ISO-8601 UTC), ``subject`` (alias ``user``), ``issuer``, ``ip``,
    ``endpoint``, ``method``, ``query`` (any JSON: the request parameters), ``datasets`` (the
    dataset ids answered), ``granularity`` (the granularity answered), ``counts`` (JSON: e.g.
    dataset → count returned) and ``detail`` (free text, e.g. why it was denied).

    Each event is committed on its own, durably (SQLite ``synchronous = FULL``), so an
    acknowledged query is on disk, and chained to the row before it (see the module doc).
    When the database cannot be written, :meth:`record` raises
    :class:`~sandgrain.beacon.errors.AuditUnavailableError` (503) if ``fail_closed`` (the
    default), else logs the failure and returns ``None``. It raises
    :class:`~sandgrain.errors.InputError` for a malformed event, a programming error.

    ``database`` is a URL or path (:mod:`sandgrain.db`) or an open
    :class:`~sandgrain.db.Database`.
    """

    def __init__(self, database: str | os.PathLike[str] | Database, *, fail_closed: bool = True):
        self._owns_db = not isinstance(database, Database)
        self._db = connect(database, durable=True)
        self.fail_closed = fail_closed
        self._db.ensure_schema("beacon_audit", _SCHEMA_VERSION, _SCHEMA)
        self._upgrade()

    @classmethod
    def from_config(cls, config: SecurityConfig, settings: Settings | None = None) -> AuditLog:
        """The audit log of ``config`` (its database), failing closed unless the settings'
        ``SANDGRAIN_BEACON_AUDIT_FAIL_CLOSED`` is false."""
        section = (settings or Settings.from_env()).section(BeaconSettings)
        return cls(config.database_url(settings), fail_closed=section.audit_fail_closed)

    @property
    def database(self) -> str:
        """The audit database in words (no password)."""
        return self._db.name

    def _columns(self, tx) -> set[str]:
        if self._db.dialect == "postgresql":
            rows = tx.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'beacon_audit' AND table_schema = current_schema()"
            ).fetchall()
        else:
            rows = tx.execute("SELECT name FROM pragma_table_info('beacon_audit')").fetchall()
        return {str(r[0]) for r in rows}

    def _upgrade(self) -> None:
        """A table written before the chain gets its ``hash`` column, and its rows are chained
        in id order (once, by whichever process gets there first)."""
        with self._db.transaction(write=True, scope=_SCOPE) as tx:
            if "hash" in self._columns(tx):
                return
            tx.execute("ALTER TABLE beacon_audit ADD COLUMN hash TEXT")
            previous = GENESIS
            rows = tx.execute(
                f"SELECT id, {', '.join(_AUDIT_FIELDS)} FROM beacon_audit ORDER BY id"
            ).fetchall()
            for row in rows:
                previous = chain_hash(previous, dict(zip(_AUDIT_FIELDS, row[1:], strict=True)))
                tx.execute("UPDATE beacon_audit SET hash = ? WHERE id = ?", (previous, row[0]))
            logger.warning(
                "audit log %s: %d rows written before chaining, chained", self.database, len(rows)
            )

    def record(self, event: Mapping[str, Any]) -> int | None:
        """Store one event, chained to the last; return its id (``None`` if the database could
        not be written and the log does not fail closed)."""
        row = self._row(event)
        try:
            with self._db.transaction(write=True, scope=_SCOPE) as tx:
                # the writers of this scope take turns: the last row stays the last until commit
                last = tx.execute(
                    "SELECT hash FROM beacon_audit ORDER BY id DESC LIMIT 1"
                ).fetchone()
                previous = (last[0] if last is not None else None) or GENESIS
                values = [row[name] for name in _AUDIT_FIELDS]
                (new_id,) = tx.execute(
                    f"INSERT INTO beacon_audit ({', '.join(_AUDIT_FIELDS)}, hash) "
                    f"VALUES ({', '.join('?' * (len(_AUDIT_FIELDS) + 1))}) RETURNING id",
                    [*values, chain_hash(previous, row)],
                ).fetchone()
                return int(new_id)
        except (StorageError, OSError) as exc:
            logger.exception("could not write a beacon audit event (%s)", row["kind"])
            if self.fail_closed:
                raise AuditUnavailableError(
                    "the audit log cannot be written, and this Beacon answers nothing it "
                    "cannot audit; try again later"
                ) from exc
            return None

    def verify(self) -> ChainReport:
        """Walk the chain from the first row; report the first row whose hash does not match
        its content and the row before it (changed, inserted, deleted or reordered rows)."""
        previous, count, after = GENESIS, 0, None
        fields = ", ".join(_AUDIT_FIELDS)
        while True:
            where, args = ("WHERE id > ? ", [after]) if after is not None else ("", [])
            page = self._db.query(
                f"SELECT id, {fields}, hash FROM beacon_audit {where}ORDER BY id LIMIT ?",
                [*args, _VERIFY_PAGE],
            )
            for row in page:
                row_id, stored = int(row[0]), row[-1]
                content = dict(zip(_AUDIT_FIELDS, row[1:-1], strict=True))
                if not stored:
                    return ChainReport(count, previous, row_id, "it has no hash (not chained)")
                if chain_hash(previous, content) != stored:
                    return ChainReport(
                        count,
                        previous,
                        row_id,
                        "its hash does not match its content and the row before it "
                        "(this row was changed, or a row before it was changed, inserted "
                        "or deleted)",
                    )
                previous, count = stored, count + 1
            if len(page) < _VERIFY_PAGE:
                return ChainReport(count, previous)
            after = int(page[-1][0])

    @staticmethod
    def _row(event: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(event, Mapping):
            raise InputError("an audit event must be a dict")
        event = dict(event)
        if "user" in event:
            if event.get("subject") not in (None, event["user"]):
                raise InputError("an audit event has both 'user' and 'subject'")
            event["subject"] = event.pop("user")
        unknown = sorted(set(event) - set(_AUDIT_FIELDS))
        if unknown:
            raise InputError(f"unknown audit event field(s): {', '.join(unknown)}")
        if event.get("kind") not in AUDIT_KINDS:
            raise InputError(f"audit kind must be one of {', '.join(AUDIT_KINDS)}")
        if event.get("outcome") not in AUDIT_OUTCOMES:
            raise InputError(f"audit outcome must be one of {', '.join(AUDIT_OUTCOMES)}")
        row = {name: event.get(name) for name in _AUDIT_FIELDS}
        row["time"] = _normalise_time(event.get("time") or datetime.now(UTC), "audit time")
        for name in _AUDIT_JSON:
            if row[name] is not None:
                try:
                    row[name] = json.dumps(row[name], sort_keys=True, default=str)
                except (TypeError, ValueError) as exc:
                    raise InputError(
                        f"audit field {name} is not JSON-serialisable: {exc}"
                    ) from None
        for name in ("subject", "issuer", "ip", "endpoint", "method", "granularity", "detail"):
            if row[name] is not None:
                row[name] = str(row[name])
        return row

    def events(
        self,
        since: str | datetime | None = None,
        limit: int = 1000,
        *,
        kind: str | None = None,
        subject: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events at or after ``since`` (oldest first), at most ``limit``; optionally only of
        one ``kind`` or ``subject``. JSON fields come back decoded; each event has its ``id``."""
        _check_number(limit, "limit", minimum=1, integer=True)
        where, args = [], []
        if since is not None:
            where.append("time >= ?")
            args.append(_normalise_time(since, "since"))
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if subject is not None:
            where.append("subject = ?")
            args.append(subject)
        sql = f"SELECT id, {', '.join(_AUDIT_FIELDS)} FROM beacon_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        out = []
        for row in self._db.query(sql, [*args, limit]):
            event = dict(zip(("id", *_AUDIT_FIELDS), row, strict=True))
            for name in _AUDIT_JSON:
                if event[name] is not None:
                    event[name] = json.loads(event[name])
            out.append(event)
        return out

    def close(self) -> None:
        if self._owns_db:
            self._db.close()
