"""The calling domain in the web app: its routes under ``/api/v1/calling`` and the page
``/calling``.

Routes
------
``GET /api/v1/calling/readsets``
    the read sets in the store (kind ``readsets``; ``sandgrain demo`` stores ``1000g-chr17``):
    their samples, read pairs and reference.
``POST /api/v1/calling/jobs``
    call a read set jointly as a job (202, ``Location`` its status): ``{"readset": NAME}``
    (400 for a bad body, 404 for an unknown read set).
``GET /api/v1/calling/jobs/{id}``
    the job (as ``/api/v1/jobs/{id}``) and, once done, ``calls``: the samples, the VCF's
    records (each with every sample's genotype and depth), the run's figures and the VCF's URL.
``GET /api/v1/calling/jobs/{id}/calls.vcf.gz``
    the VCF itself (bgzipped), as a download.

A job that is not done answers 409 with the reason; an id that is not a calling job is 404.

The page (``/static/calling.js``, no library) starts a job on the chosen read set, follows its
progress and shows the records with a download link; its URL (``/calling?job=ID``) reloads the
result.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import NotFoundError
from .common import API_PREFIX, PROBLEM_RESPONSES, JobPath, finished_job, job_view, read_json_object
from .models import NAME_PATTERN
from .pages import TEMPLATES, _page_data

__all__ = ["pages", "router"]

MAX_JOB_BODY = 4 << 10

router = APIRouter(prefix=f"{API_PREFIX}/calling", tags=["calling"], responses=PROBLEM_RESPONSES)
pages = APIRouter(include_in_schema=False)


class JointRequest(BaseModel):
    """A read set to call (documentation of the body; the route checks it)."""

    model_config = ConfigDict(extra="forbid")
    readset: str = Field(pattern=NAME_PATTERN, description="A stored read set.")


@router.get("/readsets")
def readsets(request: Request) -> dict[str, Any]:
    """The read sets in the store, with their samples and reference."""
    from ..calling.readsets import list_readsets

    return {"readsets": list_readsets(request.app.state.store)}


@router.post(
    "/jobs",
    status_code=202,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": JointRequest.model_json_schema()}}}},
    responses={202: {"headers": {"Location": {"description": "The job's status URL."}}}},
)  # fmt: skip
async def start_job(request: Request) -> JSONResponse:
    """Call a read set: align its reads, mark duplicates and call all samples together."""
    from ..calling.jobs import JOINT, joint_params

    doc = await read_json_object(request, MAX_JOB_BODY)
    params = await run_in_threadpool(joint_params, request.app.state.store, doc)
    job = request.app.state.manager.submit(JOINT, params)
    url = f"{API_PREFIX}/calling/jobs/{job.id}"
    return JSONResponse(
        {"id": job.id, "status_url": url, "page_url": f"/calling?job={job.id}"},
        status_code=202,
        headers={"Location": url},
    )


def _calling_job(request: Request, job_id: str):
    from ..calling.jobs import JOINT

    job = request.app.state.jobs.get(job_id)
    if job.kind != JOINT:
        raise NotFoundError(f"job {job_id} is a {job.kind} job, not a calling job")
    return job


@router.get("/jobs/{job_id}")
def calling_job(request: Request, job_id: str = JobPath) -> dict[str, Any]:
    """A calling job's status and progress; once done, its VCF's records and figures."""
    job = _calling_job(request, job_id)
    out = job_view(job)
    if out["result_url"]:
        doc = request.app.state.results.get(job.result)
        out["calls"] = {
            "readset": doc["readset"],
            "samples": doc["samples"],
            "total": doc["total"],
            "truncated": doc["truncated"],
            "records": doc["records"],
            "report": doc["report"],
            "vcf_url": f"{API_PREFIX}/calling/jobs/{job.id}/calls.vcf.gz",
        }
    return out


@router.get(
    "/jobs/{job_id}/calls.vcf.gz",
    response_class=Response,
    responses={200: {"content": {"application/gzip": {}}}},
)
def calls_vcf(request: Request, job_id: str = JobPath) -> Response:
    """The VCF of a finished calling job (bgzipped)."""
    job = finished_job(request, _calling_job(request, job_id).id)
    doc = request.app.state.results.get(job.result)
    data = request.app.state.store.read_bytes(doc["files"]["vcf"])
    name = f"{doc['readset']['name']}-{job.id[:8]}.vcf.gz"
    return Response(data, media_type="application/gzip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


# -- the page -------------------------------------------------------------------------------------
@pages.get("/calling", response_class=HTMLResponse)
def calling_page(request: Request):
    """Call a read set's variants and see the records."""
    from ..calling.demo import DEMO_READSET
    from ..calling.readsets import list_readsets

    store = request.app.state.store
    sets = list_readsets(store)
    names = [s["name"] for s in sets]
    default = DEMO_READSET if DEMO_READSET in names else (names[0] if names else None)
    context = {
        "page": "calling",
        "version": __version__,
        "store": store.url,
        "readsets": sets,
        "default": default,
        "page_data": _page_data(readsets=sets, default=default),
    }
    return TEMPLATES.TemplateResponse(request, "calling.html", context)
