"""The FastAPI application, built by :func:`create_app` from one :class:`Settings` object.

Everything the app holds — the store, the job store and manager, the caches — is made in
:func:`create_app` (the job store and manager when the app starts) and kept on ``app.state``;
nothing is global, so tests build as many apps as they like, each with its own settings.

The interactive API docs (``/docs``, ``/redoc``) are served with their scripts and styles from
the ``fastapi-offline`` package: they work without internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__, registry
from ..config import Settings
from ..errors import SandgrainError
from ..jobs import JobManager, JobStore
from ..storage import Store
from . import home
from . import jobs as job_routes
from .common import GenomeCache, ResultCache

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
PROBLEM = "application/problem+json"
HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})
STOPPED_ERROR = "interrupted: the sandgrain server was stopped while this job ran; submit it again"
#: Seconds a stopping server waits for its cancelled jobs to end before closing the job store.
STOP_GRACE_S = 5.0
#: Jobs one server runs at once (more wait, queued).
DEFAULT_JOB_WORKERS = 4

DESCRIPTION = """\
A search engine for genomes: CRISPR guide design on a fan-out engine.

Long work runs as **jobs**: submit (`202` with a `Location`), poll `GET /api/v1/jobs/{id}`
until `status` is `done`, then fetch `result_url`. Errors are RFC 9457 problem details
(`application/problem+json`) whose `detail` says what to do.
"""


def problem(status: int, title: str, detail: str, **extra) -> JSONResponse:
    """An RFC 9457 problem details response."""
    headers = extra.pop("headers", None)
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _validation_message(error: dict) -> tuple[str, str]:
    where = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    return where, message


def _problem_media_types(schema: dict) -> dict:
    """Document error responses as ``application/problem+json``, which is what they are."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                content = response.get("content")
                if not str(code).isdigit() or int(code) < 400 or not content:
                    continue
                if "application/json" in content:
                    content[PROBLEM] = content.pop("application/json")
    return schema


def _allowed_methods(request: Request) -> str:
    """Every documented method of the path, for a 405's ``Allow`` header (Starlette names only
    the first route's, and, say, ``GET`` and ``DELETE`` of a job are two routes)."""
    app = request.app
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = []
        for path, operations in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
            methods = {m.upper() for m in operations if m.upper() in HTTP_METHODS}
            table.append((re.compile(f"^{pattern}$"), methods))
        app.state.allowed_methods = table
    found: set[str] = set()
    for pattern, methods in table:
        if pattern.match(request.url.path):
            found |= methods
    return ", ".join(sorted(found))


def create_app(
    settings: Settings | None = None,
    *,
    job_workers: int = DEFAULT_JOB_WORKERS,
    domains: Sequence[registry.Domain] | None = None,
) -> FastAPI:
    """Build the app; tests build their own with their own settings.

    ``job_workers`` jobs run at once in this server (guide designs, genome composition).
    ``domains`` are the domains whose routers, job kinds and state the app serves (default:
    every registered domain, see :mod:`sandgrain.registry`).
    """
    settings = settings or Settings.from_env()
    domains = registry.domains() if domains is None else tuple(domains)
    store = Store.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Per-app resources of the domains, closed when the app stops. Only those made here:
        # one the caller put on app.state (a test's own BeaconService) is the caller's to
        # close, and stays usable across several starts of the app.
        made = []
        for domain in domains:
            if domain.web_state and getattr(app.state, domain.name, None) is None:
                setattr(app.state, domain.name, registry.resolve(domain.web_state)(services))
                made.append(domain.name)
        jobs = JobStore(settings.database_url)
        handlers = registry.job_handlers(services, domains)
        manager = JobManager(jobs, handlers, max_workers=job_workers)
        manager.start()  # marks jobs left running by a dead server as failed
        app.state.jobs, app.state.manager = jobs, manager
        try:
            yield
        finally:
            # Jobs this server was running end now, with a reason, rather than stay "running"
            # until the next start; their tasks see the cancellation and stop.
            for job_id in list(manager.running):
                with contextlib.suppress(SandgrainError):
                    jobs.request_cancel(job_id)
                    jobs.fail(job_id, STOPPED_ERROR)
            manager.shutdown(wait=False)
            # Give them a moment to see it and stop before their job store closes.
            deadline = time.monotonic() + STOP_GRACE_S
            while manager.running and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            jobs.close()
            for name in made:
                resource = getattr(app.state, name, None)
                setattr(app.state, name, None)  # a later start makes a fresh one
                if resource is not None and hasattr(resource, "close"):
                    resource.close()

    app = FastAPIOffline(
        title="sandgrain",
        version=__version__,
        lifespan=lifespan,
        description=DESCRIPTION,
    )
    app.state.settings = settings
    app.state.pages = registry.pages(domains)  # the navigation and the home page's cards
    app.state.store = store
    app.state.genomes = GenomeCache(store)
    app.state.results = ResultCache(store)
    services = registry.Services(settings=settings, store=store, genome=app.state.genomes.get)
    app.state.services = services

    @app.exception_handler(SandgrainError)
    async def _sandgrain_error(request: Request, exc: SandgrainError):
        return problem(
            exc.http_status,
            exc.title,
            str(exc),
            instance=request.url.path,
            candidates=getattr(exc, "candidates", None) or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = [_validation_message(e) for e in exc.errors()]
        detail = "; ".join(f"{where}: {message}" for where, message in errors)
        return problem(
            422,
            "Invalid request",
            detail or "the request is not valid",
            instance=request.url.path,
            errors=[{"loc": where, "msg": message} for where, message in errors],
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = "Error"
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}; the API is described at /docs"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = _allowed_methods(request) or headers.get("Allow", "")
            headers["Allow"] = allowed
            detail = f"{request.method} is not allowed on {request.url.path}" + (
                f"; use {allowed}" if allowed else ""
            )
        return problem(
            exc.status_code, title, detail, instance=request.url.path, headers=headers or None
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        logger.exception("internal error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "Internal Server Error",
            f"internal error: {type(exc).__name__}; the server log has the details",
            instance=request.url.path,
        )

    @app.get("/health", tags=["service"])
    def health(request: Request) -> JSONResponse:
        """The app runs, its store lists its genomes and its metadata database (jobs, audit log)
        answers a query: 200 with ``status: ok``, else 503 with ``status: unavailable`` and the
        part that failed (a load balancer takes the server out; the log has the reason)."""
        body: dict = {"status": "ok", "version": __version__, "store": store.url}
        failed = []
        try:
            body["genomes"] = len(store.dataset_names("genomes"))
        except Exception:  # noqa: BLE001 - any failure means: not healthy
            logger.exception("health: the store %s does not answer", store.url)
            failed.append("store")
        # the job store is opened by the app's lifespan; the serverless Beacon runs without one
        jobs = getattr(request.app.state, "jobs", None)
        if jobs is not None:
            body["database"] = {"kind": jobs.db.dialect, "ok": False}
            try:
                jobs.db.query("SELECT 1")
                body["database"]["ok"] = True
            except Exception:  # noqa: BLE001
                logger.exception("health: the metadata database does not answer")
                failed.append("database")
        if failed:
            body.update(status="unavailable", failed=failed)
        return JSONResponse(body, status_code=503 if failed else 200)

    app.include_router(job_routes.router)
    app.include_router(home.router)
    for domain in domains:
        for reference in domain.routers:
            app.include_router(registry.resolve(reference))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _problem_media_types(schema)
        return app.openapi_schema

    app.openapi = openapi
    return app
