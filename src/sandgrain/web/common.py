"""What every REST router under ``/api/v1`` shares: the problems it documents, the per-app caches
(on ``app.state``, made by :func:`sandgrain.web.app.create_app`) and the job helpers.

The routes keep no state of their own. Every error is an RFC 9457 problem
(``application/problem+json``) with a ``detail`` a user can act on; the statuses are listed in
``docs/api.md``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import Path, Request

from ..errors import ConflictError, InputError, SandgrainError
from ..genome.store import Genome, open_genome
from ..jobs import Job, JobStatus
from ..storage import Store
from .models import NAME_PATTERN, Problem

__all__ = ["GenomeCache", "ResultCache", "PROBLEM_RESPONSES", "API_PREFIX"]

API_PREFIX = "/api/v1"

#: Problems any route may answer with (documented once for all of them).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Invalid input (a bad name, region or sequence)"},
    404: {"model": Problem, "description": "No such genome, gene, nuclease or job"},
    409: {
        "model": Problem,
        "description": "Conflict: an ambiguous gene name (with `candidates`), a missing site "
        "index, or a job that has no result (yet)",
    },
    422: {"model": Problem, "description": "The request does not match its schema"},
    503: {"model": Problem, "description": "The store cannot be reached"},
}

#: Longest job id accepted in a path (ids are 32 hex digits).
_MAX_ID_CHARS = 100
#: Largest rank or offset accepted in a path or query (far beyond any real document).
MAX_INDEX = 1_000_000_000
_SPACE = re.compile(r"\s+")


class RequestTooLarge(SandgrainError):
    """A request body over a route's limit (413), refused before it is read further."""

    http_status = 413
    title = "Payload Too Large"


async def read_json_object(request: Request, max_body: int) -> dict:
    """A POST body that must be a JSON object, read only up to ``max_body`` bytes: a declared
    or streamed body over it is a 413 before a byte more is read; anything not a JSON object
    is a 400."""
    declared = request.headers.get("content-length", "")
    too_large = RequestTooLarge(f"the request body is larger than {max_body:,} bytes")
    if declared.isdigit() and int(declared) > max_body:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():  # a chunked body has no length to check up front
        size += len(chunk)
        if size > max_body:
            raise too_large
        chunks.append(chunk)
    try:
        doc = json.loads(b"".join(chunks) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InputError("the request body is not JSON") from None
    if not isinstance(doc, dict):
        raise InputError("the request body is a JSON object")
    return doc


class JobNotReadyError(ConflictError):
    """The job has no result: it is still running, it failed, or it was cancelled."""

    title = "No result"


# --------------------------------------------------------------------------------------------
# caches (one of each per app, on app.state)
# --------------------------------------------------------------------------------------------


class GenomeCache:
    """Open genomes by name, kept while their stored version stays the same.

    A genome's gene table takes a moment to load (0.4 s for yeast): autocomplete must not pay
    that on every keystroke. Each look-up still reads the genome's manifest, so a re-imported
    genome is picked up at once.
    """

    def __init__(self, store: Store, size: int = 8):
        self.store = store
        self.size = size
        self._items: OrderedDict[tuple[str, str], Genome] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> Genome:
        genome = open_genome(self.store, name)
        key = (genome.name, str(genome.dataset.manifest.get("version")))
        with self._lock:
            cached = self._items.get(key)
            if cached is not None:
                self._items.move_to_end(key)
                return cached
            self._items[key] = genome
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return genome


class ResultCache:
    """Parsed result documents of finished jobs (they never change), the latest few.

    Paging through a guide's off-targets reads the same document again and again; documents
    larger than ``max_bytes`` are parsed each time rather than held in memory. Views derived
    from a document (:meth:`view`: the guide table the page pages through) are kept apart.
    """

    def __init__(
        self,
        store: Store,
        size: int = 4,
        max_bytes: int = 32 << 20,
        max_view_bytes: int = 512 << 20,
    ):
        self.store = store
        self.size = size
        self.max_bytes = max_bytes
        self.max_view_bytes = max_view_bytes
        self._items: OrderedDict[str, dict] = OrderedDict()
        self._views: OrderedDict[str, Any] = OrderedDict()
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> dict:
        with self._lock:
            cached = self._items.get(key)
            if cached is not None:
                self._items.move_to_end(key)
                return cached
        data = self.store.read_bytes(key)
        doc = json.loads(data)
        if len(data) <= self.max_bytes:
            with self._lock:
                self._items[key] = doc
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return doc

    def view(self, key: str, build: Callable[[Store, str], Any]) -> Any:
        """A view derived from the document at ``key`` by ``build(store, key)`` (a guide table),
        built once — concurrent callers wait for the first — and kept with the latest few while
        their ``nbytes`` add up to at most ``max_view_bytes`` (the latest is always kept)."""
        with self._lock:
            cached = self._views.get(key)
            if cached is not None:
                self._views.move_to_end(key)
                return cached
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                cached = self._views.get(key)
            if cached is not None:
                return cached
            try:
                view = build(self.store, key)
            finally:
                with self._lock:
                    self._building.pop(key, None)
            with self._lock:
                self._views[key] = view
                total = sum(getattr(v, "nbytes", 0) for v in self._views.values())
                while len(self._views) > 1 and (
                    len(self._views) > self.size or total > self.max_view_bytes
                ):
                    _, dropped = self._views.popitem(last=False)
                    total -= getattr(dropped, "nbytes", 0)
        return view


def _genomes(request: Request) -> GenomeCache:
    return request.app.state.genomes


def _store(request: Request) -> Store:
    return request.app.state.store


def genomes_of(request: Request) -> GenomeCache:
    return request.app.state.genomes


def store_of(request: Request) -> Store:
    return request.app.state.store


GenomePath = Path(
    description="A genome's name or alias.",
    examples=["yeast"],
    json_schema_extra={"pattern": NAME_PATTERN},
)
JobPath = Path(max_length=_MAX_ID_CHARS, description="The job's id.")


# --------------------------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------------------------

_PARAM_SEQUENCE_SHOWN = 1000


def job_view(job: Job) -> dict:
    """A job as the API shows it (:class:`~sandgrain.web.models.JobInfo`)."""
    params = dict(job.params)
    sequence = params.get("sequence")
    if isinstance(sequence, str):
        params["sequence_length"] = len(_SPACE.sub("", sequence))
        if len(sequence) > _PARAM_SEQUENCE_SHOWN:
            params["sequence"] = sequence[:_PARAM_SEQUENCE_SHOWN] + "…"
    done = job.status == JobStatus.DONE and job.result is not None
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status.value,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "params": params,
        "cancel_requested": job.cancel_requested,
        "result_url": f"/api/v1/jobs/{job.id}/result" if done else None,
    }


def finished_job(request: Request, job_id: str) -> Job:
    """The job, which must be done; 404 if unknown, 409 with the reason otherwise."""
    job = request.app.state.jobs.get(job_id)
    if job.status == JobStatus.DONE and job.result is not None:
        return job
    poll = f"poll GET /api/v1/jobs/{job.id} until its status is done"
    if job.status == JobStatus.QUEUED:
        raise JobNotReadyError(f"job {job.id} is queued: it has not started yet; {poll}")
    if job.status == JobStatus.RUNNING:
        raise JobNotReadyError(
            f"job {job.id} is running ({job.progress:.0%} done); it has no result yet; {poll}"
        )
    if job.status == JobStatus.FAILED:
        raise JobNotReadyError(f"job {job.id} failed, so it has no result: {job.error}")
    if job.status == JobStatus.CANCELLED:
        raise JobNotReadyError(f"job {job.id} was cancelled, so it has no result; submit again")
    raise JobNotReadyError(f"job {job.id} has no result")
