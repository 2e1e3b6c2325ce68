"""The job store: long-running work (genome imports, searches) that survives server restarts.

A job is a row of the ``jobs`` table in the metadata database (:mod:`sandgrain.db`: the SQLite file
``$SANDGRAIN_HOME/sandgrain.sqlite`` by default, or PostgreSQL) with a status:

* ``queued``    -- stored, waiting for a worker;
* ``running``   -- a worker process (its :attr:`Job.owner`) is running it;
* ``done``      -- finished; :attr:`Job.result` says where the result is;
* ``failed``    -- :attr:`Job.error` says why;
* ``cancelled`` -- cancelled on request.

The last three are terminal: a terminal job never changes again.

:class:`JobStore` is the table. It is safe to use from several threads and several processes
on the same database: each thread gets its own connection, and every state change is a
conditional ``UPDATE`` inside a write transaction (writers of the job table take turns), so two
workers can never both start the same job.

:class:`JobManager` runs jobs in a thread pool inside the server process. Each job kind has a
handler, a callable that takes a :class:`JobContext` and returns the result location.

Restart semantics: when a manager starts it calls :meth:`JobStore.recover`, which marks every
``running`` job whose owner process is dead as ``failed`` ("interrupted: ..."), and then runs the
jobs that are still ``queued`` (they never started, so they can simply run now).

All times are ISO-8601 UTC strings with microseconds (``2024-05-01T12:00:00.123456Z``); they sort
lexicographically in time order.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import psutil

from sandgrain.db import Database, Transaction, connect
from sandgrain.errors import (
    CancelledError,
    ConflictError,
    InputError,
    NotFoundError,
    SandgrainError,
)

__all__ = [
    "INTERRUPTED_ERROR",
    "Job",
    "JobContext",
    "JobManager",
    "JobStatus",
    "JobStore",
    "current_owner",
    "default_url",
    "owner_is_alive",
]

logger = logging.getLogger(__name__)

#: The error of a job whose worker process died while it was running.
INTERRUPTED_ERROR = (
    "interrupted: the sandgrain server stopped while this job was running; submit it again"
)
#: The error of a job cancelled on request.
CANCELLED_ERROR = "cancelled on request"
CANCELLED_BEFORE_START_ERROR = "cancelled on request before it started"

_MESSAGE_LIMIT = 200
_ERROR_LIMIT = 1000
_KIND_LIMIT = 100
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class JobStatus(StrEnum):
    """The state of a job (a ``str`` and an ``Enum``). ``done``, ``failed`` and ``cancelled``
    are terminal."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for a state a job never leaves."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass
class Job:
    """One job, as stored. Times are ISO-8601 UTC strings (see the module doc)."""

    id: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    status: JobStatus = JobStatus.QUEUED
    progress: float = 0.0
    message: str | None = None
    result: str | None = None
    error: str | None = None
    created: str = ""
    started: str | None = None
    finished: str | None = None
    owner: str | None = None
    heartbeat: str | None = None
    cancel_requested: bool = False

    @property
    def terminal(self) -> bool:
        """True once the job is done, failed or cancelled."""
        return self.status.terminal

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the status as its string value)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "params": dict(self.params),
            "status": self.status.value,
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "owner": self.owner,
            "heartbeat": self.heartbeat,
            "cancel_requested": self.cancel_requested,
        }

    @classmethod
    def _from_row(cls, row: Any) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            params=json.loads(row["params"]),
            status=JobStatus(row["status"]),
            progress=float(row["progress"]),
            message=row["message"],
            result=row["result"],
            error=row["error"],
            created=row["created"],
            started=row["started"],
            finished=row["finished"],
            owner=row["owner"],
            heartbeat=row["heartbeat"],
            cancel_requested=bool(row["cancel_requested"]),
        )


# --------------------------------------------------------------------------------------------
# Helpers: time, owners, paths
# --------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime(_TIME_FORMAT)


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def _one_line(text: object, limit: int) -> str:
    """Collapse whitespace (newlines included) and cut to ``limit`` characters."""
    line = re.sub(r"\s+", " ", str(text)).strip()
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


_HOST = socket.gethostname()
_boot_token = uuid.uuid4().hex[:12]


def _new_boot_token() -> None:
    global _boot_token
    _boot_token = uuid.uuid4().hex[:12]


if hasattr(os, "register_at_fork"):  # a forked child is a different process: new token
    os.register_at_fork(after_in_child=_new_boot_token)


def current_owner() -> str:
    """This process's owner string, ``"host:pid:boot-token"``.

    The boot token is random and made once per process, so a process that reuses an old pid
    (after a restart in a container, say) has a different owner string.
    """
    return f"{_HOST}:{os.getpid()}:{_boot_token}"


def _parse_owner(owner: str | None) -> tuple[str, int, str] | None:
    if not owner:
        return None
    parts = owner.rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid_text, token = parts
    try:
        pid = int(pid_text)
    except ValueError:
        return None
    if pid <= 0 or not host:
        return None
    return host, pid, token


def owner_is_alive(owner: str | None) -> bool | None:
    """Whether the process named by ``owner`` is alive: True, False, or None if unknowable.

    Only processes on this host can be checked; for another host (or a malformed owner) the
    answer is None and callers fall back on the job's heartbeat.
    """
    parsed = _parse_owner(owner)
    if parsed is None:
        return None
    host, pid, token = parsed
    if host != _HOST:
        return None
    if pid == os.getpid():
        return token == _boot_token
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # exists, but we may not look at it
        return True
    return True


def default_url() -> str:
    """The settings' metadata database: ``SANDGRAIN_DATABASE`` or
    ``$SANDGRAIN_HOME/sandgrain.sqlite``."""
    from .config import Settings

    return Settings.from_env().database_url


def _check_status(status: JobStatus | str) -> JobStatus:
    try:
        return JobStatus(status)
    except ValueError:
        names = ", ".join(s.value for s in JobStatus)
        raise InputError(f"unknown job status '{status}'; use one of: {names}") from None


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------

_SCHEMA_VERSION = 1
_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS jobs (
        seq {serial},
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        progress {float} NOT NULL DEFAULT 0,
        message TEXT,
        result TEXT,
        error TEXT,
        created TEXT NOT NULL,
        started TEXT,
        finished TEXT,
        owner TEXT,
        heartbeat TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created, seq)",
    "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created, seq)",
)
#: Writers of the job table take turns under this scope (see :mod:`sandgrain.db`).
_SCOPE = "jobs"


class JobStore:
    """Jobs in the metadata database; safe for several threads and several processes.

    ``database`` is a URL or path (:mod:`sandgrain.db`) or an open
    :class:`~sandgrain.db.Database`; it defaults to :func:`default_url`. A SQLite file must be
    on a local file system: SQLite's WAL mode does not work over network file systems.
    """

    def __init__(
        self, database: str | os.PathLike[str] | Database | None = None, *, timeout: float = 30.0
    ):
        self._owns_db = not isinstance(database, Database)
        self.db = connect(database if database is not None else default_url(), timeout=timeout)
        self.path = self.db.path
        self.db.ensure_schema("jobs", _SCHEMA_VERSION, _SCHEMA)

    def __repr__(self) -> str:
        return f"JobStore({self.db.name!r})"

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection this store opened in this process (unless the database was
        handed in open, in which case its opener closes it)."""
        if self._owns_db:
            self.db.close()

    def _tx(self) -> contextlib.AbstractContextManager[Transaction]:
        """A write transaction: job writers take turns."""
        return self.db.transaction(write=True, scope=_SCOPE)

    def _query(self, sql: str, args: Iterable[Any] = ()) -> builtins.list[Any]:
        return self.db.query(sql, args)

    # -- reading -------------------------------------------------------------------------------

    @staticmethod
    def _fetch(conn: Transaction, job_id: str) -> Job:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"unknown job '{job_id}'")
        return Job._from_row(row)

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; NotFoundError if there is none."""
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (str(job_id),))
        if not rows:
            raise NotFoundError(f"unknown job '{job_id}'")
        return Job._from_row(rows[0])

    def list(
        self,
        status: JobStatus | str | Iterable[JobStatus | str] | None = None,
        kind: str | None = None,
        limit: int | None = 100,
    ) -> builtins.list[Job]:
        """Jobs, newest first, optionally of one status (or several) and one kind.

        ``limit=None`` lists them all.
        """
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, str) else builtins.list(status)
            checked = [_check_status(s).value for s in statuses]
            if not checked:
                return []
            where.append(f"status IN ({', '.join('?' * len(checked))})")
            args.extend(checked)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        sql = "SELECT * FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, seq DESC"
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise InputError(f"limit must be a whole number >= 0, not {limit!r}")
            sql += " LIMIT ?"
            args.append(limit)
        return [Job._from_row(row) for row in self._query(sql, args)]

    def _oldest_queued(self, kinds: Iterable[str], limit: int) -> builtins.list[str]:
        kinds = builtins.list(kinds)
        if not kinds or limit <= 0:
            return []
        rows = self._query(
            f"SELECT id FROM jobs WHERE status = 'queued' AND kind IN "
            f"({', '.join('?' * len(kinds))}) ORDER BY created, seq LIMIT ?",
            [*kinds, limit],
        )
        return [row["id"] for row in rows]

    def is_cancel_requested(self, job_id: str) -> bool:
        """True if someone asked to cancel the job (or it is already cancelled)."""
        rows = self._query("SELECT status, cancel_requested FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise NotFoundError(f"unknown job '{job_id}'")
        return bool(rows[0]["cancel_requested"]) or rows[0]["status"] == JobStatus.CANCELLED

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.05) -> Job:
        """Poll until the job is terminal and return it; TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.terminal:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job '{job_id}' is still {job.status} after {timeout} s")
            time.sleep(poll)

    # -- state changes -------------------------------------------------------------------------

    def submit(self, kind: str, params: Mapping[str, Any] | None = None) -> Job:
        """Store a new ``queued`` job and return it."""
        if not isinstance(kind, str) or not kind.strip() or len(kind) > _KIND_LIMIT:
            raise InputError(f"a job kind is a short non-empty name, not {kind!r}")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InputError(f"job parameters must be a mapping, not {type(params).__name__}")
        try:
            params_json = json.dumps(dict(params), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"job parameters must be JSON-serialisable: {exc}") from None
        job = Job(
            id=uuid.uuid4().hex,
            kind=kind,
            params=json.loads(params_json),
            status=JobStatus.QUEUED,
            created=_now(),
        )
        with self._tx() as tx:
            tx.execute(
                "INSERT INTO jobs (id, kind, params, status, progress, created) "
                "VALUES (?, ?, ?, ?, 0, ?)",
                (job.id, job.kind, params_json, job.status.value, job.created),
            )
        return job

    def start(self, job_id: str, owner: str | None = None) -> Job:
        """queued -> running, owned by ``owner`` (default: this process).

        ConflictError if the job is not queued -- in particular when another worker started
        it first: the change is a conditional UPDATE, so only one worker can win.
        """
        owner = owner or current_owner()
        now = _now()
        with self._tx() as tx:
            cur = tx.execute(
                "UPDATE jobs SET status = 'running', owner = ?, started = ?, heartbeat = ?, "
                "message = NULL WHERE id = ? AND status = 'queued'",
                (owner, now, now, job_id),
            )
            job = self._fetch(tx, job_id)
        if cur.rowcount != 1:
            raise ConflictError(f"job '{job_id}' is {job.status}, not queued; it cannot start")
        return job

    def update_progress(self, job_id: str, progress: float, message: str | None = None) -> Job:
        """Record progress (clamped to [0, 1]) and refresh the heartbeat.

        ``message=None`` keeps the previous message. Ignored for terminal jobs.
        """
        try:
            value = float(progress)
        except (TypeError, ValueError):
            raise InputError(f"progress must be a number, not {progress!r}") from None
        if math.isnan(value):
            raise InputError("progress must be a number, not NaN")
        value = min(1.0, max(0.0, value))
        text = None if message is None else _one_line(message, _MESSAGE_LIMIT)
        with self._tx() as tx:
            tx.execute(
                "UPDATE jobs SET progress = ?, message = COALESCE(?, message), "
                "heartbeat = CASE WHEN status = 'running' THEN ? ELSE heartbeat END "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (value, text, _now(), job_id),
            )
            return self._fetch(tx, job_id)

    def heartbeat(self, job_id: str) -> None:
        """Refresh a running job's heartbeat (ignored for other states)."""
        with self._tx() as tx:
            cur = tx.execute(
                "UPDATE jobs SET heartbeat = ? WHERE id = ? AND status = 'running'",
                (_now(), job_id),
            )
            if cur.rowcount == 0:
                self._fetch(tx, job_id)  # NotFoundError for an unknown job

    def _heartbeat_many(self, job_ids: Iterable[str]) -> None:
        ids = builtins.list(job_ids)
        if not ids:
            return
        now = _now()
        with self._tx() as tx:
            tx.executemany(
                "UPDATE jobs SET heartbeat = ? WHERE id = ? AND status = 'running'",
                [(now, job_id) for job_id in ids],
            )

    def finish(self, job_id: str, result: str | None) -> Job:
        """running -> done, progress 1, with the result location. ConflictError otherwise."""
        if result is not None and not isinstance(result, str):
            raise InputError(f"a job result is a location string, not {type(result).__name__}")
        with self._tx() as tx:
            cur = tx.execute(
                "UPDATE jobs SET status = 'done', progress = 1, result = ?, finished = ?, "
                "error = NULL WHERE id = ? AND status = 'running'",
                (result, _now(), job_id),
            )
            job = self._fetch(tx, job_id)
        if cur.rowcount != 1:
            raise ConflictError(f"job '{job_id}' is {job.status}, not running; it cannot finish")
        return job

    def fail(self, job_id: str, error: str) -> Job:
        """queued/running -> failed with a one-line ``error``. ConflictError if terminal."""
        text = _one_line(error, _ERROR_LIMIT) or "failed"
        with self._tx() as tx:
            cur = tx.execute(
                "UPDATE jobs SET status = 'failed', error = ?, finished = ? "
                "WHERE id = ? AND status IN ('queued', 'running')",
                (text, _now(), job_id),
            )
            job = self._fetch(tx, job_id)
        if cur.rowcount != 1:
            raise ConflictError(f"job '{job_id}' is already {job.status}; it cannot fail")
        return job

    def request_cancel(self, job_id: str) -> Job:
        """Ask for a job to stop.

        A queued job is cancelled at once. A running job gets ``cancel_requested``; its runner
        sees that through :meth:`is_cancel_requested` and calls :meth:`mark_cancelled`. For a
        terminal job this is a no-op (it is idempotent) and returns the job unchanged.
        """
        with self._tx() as tx:
            cur = tx.execute(
                "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished = ?, "
                "error = ? WHERE id = ? AND status = 'queued'",
                (_now(), CANCELLED_BEFORE_START_ERROR, job_id),
            )
            if cur.rowcount == 0:
                tx.execute(
                    "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'",
                    (job_id,),
                )
            return self._fetch(tx, job_id)

    def mark_cancelled(self, job_id: str) -> Job:
        """queued/running -> cancelled. A no-op if already cancelled; ConflictError if
        done or failed."""
        with self._tx() as tx:
            cur = tx.execute(
                "UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished = ?, "
                "error = ? WHERE id = ? AND status IN ('queued', 'running')",
                (_now(), CANCELLED_ERROR, job_id),
            )
            job = self._fetch(tx, job_id)
        if cur.rowcount != 1 and job.status != JobStatus.CANCELLED:
            raise ConflictError(f"job '{job_id}' is already {job.status}; it cannot be cancelled")
        return job

    def recover(self, owner: str | None = None, stale_after: float = 60.0) -> builtins.list[Job]:
        """Fail every running job whose owner is dead; return those jobs.

        Called when a server starts. ``owner`` is the calling process's owner string (default
        :func:`current_owner`); its own jobs are left alone. Another owner is dead if it is a
        process on this host that no longer exists (or a pid now used by another boot of
        sandgrain), or if the job's heartbeat is older than ``stale_after`` seconds. Dead
        jobs become ``failed`` with :data:`INTERRUPTED_ERROR`.
        """
        owner = owner or current_owner()
        cutoff = datetime.now(UTC) - timedelta(seconds=float(stale_after))
        recovered: builtins.list[Job] = []
        with self._tx() as tx:
            rows = tx.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall()
            for row in rows:
                job = Job._from_row(row)
                if job.owner == owner:
                    continue
                try:
                    stale = job.heartbeat is None or _parse_time(job.heartbeat) < cutoff
                except ValueError:
                    stale = True
                if not stale and owner_is_alive(job.owner) is not False:
                    continue
                cur = tx.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished = ? "
                    "WHERE id = ? AND status = 'running' AND owner IS NOT DISTINCT FROM ? "
                    "AND heartbeat IS NOT DISTINCT FROM ?",
                    (INTERRUPTED_ERROR, _now(), job.id, job.owner, job.heartbeat),
                )
                if cur.rowcount == 1:
                    recovered.append(self._fetch(tx, job.id))
        for job in recovered:
            logger.warning("job %s (%s) of %s was interrupted", job.id, job.kind, job.owner)
        return recovered


# --------------------------------------------------------------------------------------------
# Running jobs
# --------------------------------------------------------------------------------------------


class JobContext:
    """What a handler gets: the job, a progress reporter and a cancellation check."""

    def __init__(self, store: JobStore, job: Job, *, check_interval: float = 0.2):
        self.store = store
        self.job = job
        self._interval = check_interval
        self._cancel_seen = False
        self._cancel_checked = -math.inf
        self._progress_written = -math.inf
        self._last_message: str | None = None
        self._pending: tuple[float, str | None] | None = None
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, value: float | tuple[float, float], message: str | None = None) -> None:
        """Report progress: a fraction in [0, 1] or a ``(done, total)`` pair.

        Writes are throttled to one per ~0.2 s, except when the message changes or the work is
        complete; a skipped value is written by the next call (or when the job ends).
        """
        if isinstance(value, tuple):
            done, total = value
            fraction = float(done) / float(total) if total > 0 else 0.0
        else:
            fraction = float(value)
        if math.isnan(fraction):
            raise InputError("progress must be a number, not NaN")
        now = time.monotonic()
        with self._lock:
            urgent = (message is not None and message != self._last_message) or fraction >= 1
            if not urgent and now - self._progress_written < self._interval:
                pending_msg = message if self._pending is None else (message or self._pending[1])
                self._pending = (fraction, pending_msg)
                return
            self._pending = None
            self._progress_written = now
            if message is not None:
                self._last_message = message
        self.store.update_progress(self.job.id, fraction, message)

    def flush(self) -> None:
        """Write a progress value held back by throttling."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self.store.update_progress(self.job.id, *pending)

    def cancelled(self) -> bool:
        """True once cancellation was requested. Cheap: asks the store at most every ~0.2 s."""
        if self._cancel_seen:
            return True
        now = time.monotonic()
        if now - self._cancel_checked >= self._interval:
            self._cancel_checked = now
            self._cancel_seen = self.store.is_cancel_requested(self.job.id)
        return self._cancel_seen

    def check_cancelled(self) -> None:
        """Raise :class:`~sandgrain.errors.CancelledError` if cancellation was requested."""
        if self.cancelled():
            raise CancelledError(f"job '{self.job.id}' was cancelled")


Handler = Callable[[JobContext], "str | None"]


class JobManager:
    """Runs jobs of known kinds in a thread pool of this process.

    ``handlers`` maps a job kind to a callable taking a :class:`JobContext` and returning the
    result location (a store key or URL). A handler that raises
    :class:`~sandgrain.errors.CancelledError` cancels its job; one that raises another
    :class:`~sandgrain.errors.SandgrainError` fails it with that message; any other exception
    fails it with ``"internal error: <Type>: <message>"`` and is logged with its traceback.
    """

    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, Handler],
        max_workers: int = 2,
        *,
        owner: str | None = None,
        heartbeat_interval: float = 5.0,
        stale_after: float = 60.0,
        poll_interval: float | None = 2.0,
    ):
        if max_workers < 1:
            raise InputError(f"max_workers must be at least 1, not {max_workers}")
        if heartbeat_interval <= 0 or stale_after <= heartbeat_interval:
            raise InputError("need 0 < heartbeat_interval < stale_after")
        self.store = store
        self.handlers: dict[str, Handler] = dict(handlers)
        self.max_workers = max_workers
        self.owner = owner or current_owner()
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.poll_interval = poll_interval
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="sandgrain-job")
        self._lock = threading.Lock()
        self._dispatched: set[str] = set()
        self._running: set[str] = set()
        self._started = False
        self._closed = False
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None

    def __enter__(self) -> JobManager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def running(self) -> set[str]:
        """Ids of the jobs this manager is running now."""
        with self._lock:
            return set(self._running)

    def start(self) -> list[Job]:
        """Recover interrupted jobs, start heartbeats, and run the jobs still queued.

        Returns the jobs that :meth:`JobStore.recover` failed. Queued jobs of a kind this
        manager has no handler for are failed too. Calling it again does nothing.
        """
        with self._lock:
            if self._closed:
                raise ConflictError("the job manager is shut down; make a new one")
            if self._started:
                return []
            self._started = True
        recovered = self.store.recover(self.owner, self.stale_after)
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_loop, name="sandgrain-job-heartbeat", daemon=True
        )
        self._heartbeat_thread.start()
        for job in reversed(self.store.list(status=JobStatus.QUEUED, limit=None)):
            if job.kind in self.handlers:
                self._dispatch(job.id)
                continue
            with contextlib.suppress(ConflictError):
                self.store.fail(job.id, f"no handler for job kind '{job.kind}' in this server")
        return recovered

    def submit(self, kind: str, params: Mapping[str, Any] | None = None) -> Job:
        """Store a job and run it as soon as a worker is free (starting the manager if needed)."""
        if kind not in self.handlers:
            known = ", ".join(sorted(self.handlers)) or "none"
            raise InputError(f"unknown job kind '{kind}'; known kinds: {known}")
        with self._lock:
            if self._closed:
                raise ConflictError("the job manager is shut down; no new jobs")
            started = self._started
        if not started:
            self.start()
        job = self.store.submit(kind, params)
        self._dispatch(job.id)
        return job

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking jobs. Jobs not yet started stay queued (the next start() runs them);
        with ``wait`` this waits for the running ones to end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._executor.shutdown(wait=wait, cancel_futures=True)
        if wait and self._heartbeat_thread is not None:
            self._heartbeat_thread.join()

    def _dispatch(self, job_id: str) -> None:
        with self._lock:
            if self._closed or job_id in self._dispatched:
                return
            self._dispatched.add(job_id)
        try:
            self._executor.submit(self._run, job_id)
        except RuntimeError:  # shut down meanwhile: the job stays queued for the next start
            with self._lock:
                self._dispatched.discard(job_id)

    def _heartbeat_loop(self) -> None:
        """Refresh heartbeats; now and then recover dead jobs and pick up queued ones."""
        tick = self.heartbeat_interval
        if self.poll_interval:
            tick = min(tick, self.poll_interval)
        now = time.monotonic()
        next_beat, next_recover = now + self.heartbeat_interval, now + self.stale_after
        next_poll = now + (self.poll_interval or math.inf)
        while not self._stop.wait(tick):
            now = time.monotonic()
            try:
                if now >= next_beat:
                    next_beat = now + self.heartbeat_interval
                    self.store._heartbeat_many(self.running)
                if now >= next_recover:
                    next_recover = now + self.stale_after
                    self.store.recover(self.owner, self.stale_after)
                if now >= next_poll:
                    next_poll = now + (self.poll_interval or math.inf)
                    self._poll_queued()
            except Exception:
                logger.warning("job manager housekeeping failed", exc_info=True)

    def _poll_queued(self) -> None:
        """Run queued jobs stored by other processes (oldest first)."""
        with self._lock:
            busy = len(self._dispatched)
        if busy >= self.max_workers:
            return  # leave them to other processes, or to the next poll
        for job_id in self.store._oldest_queued(self.handlers, limit=self.max_workers + busy):
            self._dispatch(job_id)

    def _run(self, job_id: str) -> None:
        try:
            try:
                job = self.store.start(job_id, self.owner)
            except (ConflictError, NotFoundError):
                return  # cancelled, or taken by another worker
            with self._lock:
                self._running.add(job_id)
            self._execute(job)
        except Exception:
            logger.exception("bookkeeping of job %s failed", job_id)
        finally:
            with self._lock:
                self._running.discard(job_id)
                self._dispatched.discard(job_id)

    def _execute(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        ctx = JobContext(self.store, job)
        try:
            result = handler(ctx)
        except CancelledError:
            self._flush(ctx)
            if not self.store.get(job.id).terminal:  # a stopping server may have failed it
                self.store.mark_cancelled(job.id)
            return
        except SandgrainError as exc:
            self._flush(ctx)
            self.store.fail(job.id, str(exc) or type(exc).__name__)
            return
        except Exception as exc:
            logger.exception("job %s (%s) failed", job.id, job.kind)
            self._flush(ctx)
            self.store.fail(job.id, f"internal error: {type(exc).__name__}: {exc}")
            return
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.store.fail(job.id, f"internal error: {type(exc).__name__}: {exc}")
            raise
        if result is not None and not isinstance(result, str):
            logger.error("handler of %s returned %r, not a location", job.kind, result)
            self.store.fail(
                job.id,
                f"internal error: the handler returned {type(result).__name__}, "
                "not a result location",
            )
            return
        self.store.finish(job.id, result)

    @staticmethod
    def _flush(ctx: JobContext) -> None:
        try:
            ctx.flush()
        except SandgrainError:
            logger.warning("could not record the last progress of job %s", ctx.id)
