"""The job routes under ``/api/v1/jobs``: status, cancellation and results of any domain's job.

The app includes this router itself (jobs are core, not a domain). A result is returned as the
JSON document its job stored; a guide design is streamed, complete as a download, or sent as
TSV or BED.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ..errors import InputError
from ..guides.jobs import GUIDES_DESIGN
from .common import API_PREFIX, PROBLEM_RESPONSES, JobPath, finished_job, job_view
from .guides import design_result
from .models import (
    DEFAULT_OFFTARGETS_LIMIT,
    MAX_OFFTARGETS_LIMIT,
    CompositionDocument,
    GuideDocument,
    JobInfo,
)

router = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)


@router.get("/jobs/{job_id}", tags=["jobs"])
def get_job(request: Request, job_id: str = JobPath) -> JobInfo:
    """A job's status and progress (0–1); ``result_url`` once it is done."""
    return job_view(request.app.state.jobs.get(job_id))


@router.delete("/jobs/{job_id}", tags=["jobs"])
def cancel_job(request: Request, job_id: str = JobPath) -> JobInfo:
    """Cancel a job: a queued one at once, a running one as soon as it notices (poll it).
    Cancelling a job that has ended changes nothing."""
    return job_view(request.app.state.jobs.request_cancel(job_id))


@router.get(
    "/jobs/{job_id}/result",
    tags=["jobs"],
    response_model=GuideDocument | CompositionDocument,
    responses={
        200: {
            "description": "The design document (JSON), or a TSV or BED download",
            "content": {
                "text/tab-separated-values": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
)
def job_result(
    request: Request,
    job_id: str = JobPath,
    format: Literal["json", "tsv", "bed"] = Query(
        "json", description="`json` (the document), `tsv` or `bed` (downloads)."
    ),
    offtargets_limit: int = Query(
        DEFAULT_OFFTARGETS_LIMIT,
        ge=0,
        le=MAX_OFFTARGETS_LIMIT,
        description="JSON: list at most this many off-targets per guide (most dangerous first; "
        "`offtargets_total` stays exact). Page through all of them with "
        "`/api/v1/jobs/{id}/guides/{rank}/offtargets`.",
    ),
    download: bool = Query(
        False,
        description="JSON of a guide design: the complete document (every off-target of every "
        "guide; `offtargets_limit` does not apply) as a file, streamed.",
    ),
    chrom_names: Literal["ucsc", "stored"] = Query(
        "ucsc",
        description="BED: chromosome names as the UCSC browser and IGV call them (`chrXV`, "
        "`chrM`) where the genome is of a known assembly, or as stored (`XV`, `Mito`).",
    ),
) -> Response:
    """A finished job's result: for guide design the document of ``sandgrain guides design
    --format json`` (streamed guide by guide), or its TSV (one row per guide) or BED track as a
    download. 409 while the job runs, or if it failed or was cancelled."""
    job = finished_job(request, job_id)
    if job.kind == GUIDES_DESIGN:
        return design_result(request, job, format, offtargets_limit, download, chrom_names)
    doc = request.app.state.results.get(job.result)
    if format != "json":
        raise InputError(f"a {job.kind} job's result is only available as JSON")
    return JSONResponse(doc)
