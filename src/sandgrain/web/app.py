"""The FastAPI application, built by :func:`create_app` from one :class:`Settings` object."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import Settings
from ..errors import NotFoundError, SandgrainError
from ..genome.store import list_genomes, open_genome
from ..jobs import JobManager, JobStatus, JobStore
from ..storage import Store
from .jobs import composition_job

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PROBLEM = "application/problem+json"
STOPPED_ERROR = "interrupted: the sandgrain server was stopped while this job ran; submit it again"


def problem(status: int, title: str, detail: str, **extra) -> JSONResponse:
    """An RFC 9457 problem details response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; tests build their own with their own settings."""
    settings = settings or Settings.from_env()
    store = Store.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        Path(settings.jobs_path).parent.mkdir(parents=True, exist_ok=True)
        jobs = JobStore(settings.jobs_path)
        manager = JobManager(jobs, {"genome.composition": composition_job(settings)})
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
            jobs.close()

    app = FastAPI(
        title="sandgrain",
        version=__version__,
        lifespan=lifespan,
        description="A search engine for genomes.",
    )
    app.state.settings = settings
    app.state.store = store

    @app.exception_handler(SandgrainError)
    async def _sandgrain_error(request: Request, exc: SandgrainError):
        extra = {"candidates": exc.candidates} if getattr(exc, "candidates", None) else {}
        return problem(exc.http_status, exc.title, str(exc), **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return problem(422, "Invalid request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, "Error", str(exc.detail))

    @app.get("/health")
    def health() -> dict:
        """Liveness: the app runs and its store answers."""
        return {
            "status": "ok",
            "version": __version__,
            "store": store.url,
            "genomes": len(store.dataset_names("genomes")),
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request):
        genomes = [g.summary() for g in list_genomes(store)]
        return TEMPLATES.TemplateResponse(
            request, "index.html", {"genomes": genomes, "version": __version__, "store": store.url}
        )

    @app.get("/api/v1/genomes")
    def genomes() -> list[dict]:
        """The genomes in the store."""
        return [g.summary() for g in list_genomes(store)]

    @app.get("/api/v1/genomes/{name}")
    def genome(name: str) -> dict:
        """One genome: its sequences and provenance."""
        g = open_genome(store, name)
        return {
            **g.summary(),
            "chromosomes": g.chromosomes,
            "provenance": g.dataset.manifest.get("provenance"),
        }

    @app.post("/api/v1/genomes/{name}/composition", status_code=202)
    def submit_composition(name: str, request: Request, max_size: int = 4_000_000) -> JSONResponse:
        """Start a job counting the bases of a genome (a genome-wide fan-out)."""
        g = open_genome(store, name)
        job = request.app.state.manager.submit(
            "genome.composition", {"genome": g.name, "max_size": max_size}
        )
        return JSONResponse(
            {"id": job.id}, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"}
        )

    @app.get("/api/v1/jobs/{job_id}")
    def get_job(job_id: str, request: Request) -> dict:
        return request.app.state.jobs.get(job_id).to_dict()

    @app.delete("/api/v1/jobs/{job_id}")
    def cancel_job(job_id: str, request: Request) -> dict:
        return request.app.state.jobs.request_cancel(job_id).to_dict()

    @app.get("/api/v1/jobs/{job_id}/result")
    def job_result(job_id: str, request: Request) -> JSONResponse:
        job = request.app.state.jobs.get(job_id)
        if job.status != JobStatus.DONE:
            raise NotFoundError(f"job {job_id} has no result: it is {job.status.value}")
        return JSONResponse(json.loads(store.read_bytes(job.result)))

    return app
