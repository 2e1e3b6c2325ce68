"""The Beacon's audit log: who asked what, when, and what was answered.

:class:`AuditLog` keeps one row per query, revocation, restoration and admin action in the
``beacon_audit`` table of the metadata database (:mod:`sandgrain.db`: the SQLite file under
``SANDGRAIN_HOME`` or PostgreSQL), so every server process sharing that database writes to one
log. :func:`audit_event` builds an event for a caller.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sandgrain.config import Settings
from sandgrain.db import Database, connect
from sandgrain.errors import InputError, StorageError

from .policy import SecurityConfig, _check_number
from .tokens import Principal

logger = logging.getLogger(__name__)

#: Audit event kinds and outcomes.
AUDIT_KINDS = ("query", "revoke", "restore", "admin")
AUDIT_OUTCOMES = ("ok", "denied", "error")

_SCHEMA_VERSION = 1
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
        detail TEXT
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
    acknowledged query is on disk. :meth:`record` never raises because the database failed (it
    logs the failure and returns ``None``); it raises :class:`~sandgrain.errors.InputError` only
    for a malformed event, which is a programming error.

    ``database`` is a URL or path (:mod:`sandgrain.db`) or an open
    :class:`~sandgrain.db.Database`.
    """

    def __init__(self, database: str | os.PathLike[str] | Database):
        self._owns_db = not isinstance(database, Database)
        self._db = connect(database, durable=True)
        self._db.ensure_schema("beacon_audit", _SCHEMA_VERSION, _SCHEMA)

    @classmethod
    def from_config(cls, config: SecurityConfig, settings: Settings | None = None) -> AuditLog:
        return cls(config.database_url(settings))

    def record(self, event: Mapping[str, Any]) -> int | None:
        """Store one event; return its id (``None`` if the database could not be written)."""
        row = self._row(event)
        try:
            with self._db.transaction(write=True, scope=_SCOPE) as tx:
                (new_id,) = tx.execute(
                    f"INSERT INTO beacon_audit ({', '.join(_AUDIT_FIELDS)}) "
                    f"VALUES ({', '.join('?' * len(_AUDIT_FIELDS))}) RETURNING id",
                    [row[name] for name in _AUDIT_FIELDS],
                ).fetchone()
                return int(new_id)
        except (StorageError, OSError):
            logger.exception("could not write a beacon audit event (%s)", row["kind"])
            return None

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
