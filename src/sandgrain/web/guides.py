"""The guides domain's REST routes under ``/api/v1``: nucleases, guide design jobs, scoring given
guides, a design's off-targets page by page, and a design document as TSV or BED.

The routes translate JSON into the domain's requests (:mod:`sandgrain.guides.request`), which
check every rule once; they hold no rule of their own.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from ..errors import InputError, NotFoundError
from ..guides.design import check_design, check_index, score_guides
from ..guides.formats import to_bed, to_tsv
from ..guides.jobs import GUIDES_DESIGN
from ..guides.nucleases import NUCLEASES
from ..jobs import Job
from .common import (
    API_PREFIX,
    MAX_INDEX,
    PROBLEM_RESPONSES,
    JobPath,
    finished_job,
    genomes_of,
)
from .models import (
    MAX_OFFTARGETS_LIMIT,
    DesignRequest,
    GuideDocument,
    JobCreated,
    NucleaseInfo,
    OffTargetPage,
    ScoreRequest,
)

router = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)

_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@router.get("/nucleases", tags=["guides"])
def nucleases() -> list[NucleaseInfo]:
    """The shipped nucleases: PAM, its side, protospacer length, cut position."""
    return [n.to_dict() for n in NUCLEASES.values()]


@router.post(
    "/guides/jobs",
    status_code=202,
    tags=["guides"],
    responses={202: {"headers": {"Location": {"description": "The job's URL."}}}},
)
def submit_design(request: Request, body: DesignRequest) -> JobCreated:
    """Start designing guides for a gene, a region or a sequence.

    The request is checked before anything is queued: the genome, the gene (or region, or
    sequence), and the genome's site index for the nuclease (409 naming the command that
    builds it). Poll the job at the ``Location`` given; its result is at
    ``/api/v1/jobs/{id}/result``.
    """
    g = genomes_of(request).get(body.genome)
    design = body.to_request()
    check_design(g, design)
    params = {
        "genome": g.name,
        **body.target,
        "nuclease": design.nuclease.name,
        "max_mismatches": design.max_mismatches,
        "within": design.within,
    }
    job = request.app.state.manager.submit(GUIDES_DESIGN, params)
    return JSONResponse(
        {"id": job.id}, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"}
    )


@router.post("/guides/score", tags=["guides"])
def score(request: Request, body: ScoreRequest) -> GuideDocument:
    """Score up to 50 given guides against a genome, at once (no job): off-target counts,
    MIT and CFD specificities, the off-targets listed (at most ``offtargets_limit`` each)."""
    g = genomes_of(request).get(body.genome)
    check_index(g, body.nuclease)  # a missing index (409) is told before the guides' lengths
    settings = request.app.state.settings
    doc = score_guides(g, body.to_request(), executor=settings.executor, retries=settings.retries)
    return JSONResponse(doc)



def _guides_document(request: Request, job_id: str) -> tuple[Job, dict]:
    job = finished_job(request, job_id)
    if job.kind != GUIDES_DESIGN:
        raise InputError(f"job {job.id} is a {job.kind} job, not a guide design: it has no guides")
    return job, request.app.state.results.get(job.result)


def _cut_offtargets(doc: dict, limit: int) -> dict:
    """The document with each guide's off-target list cut to its first ``limit`` entries (the
    most dangerous), as ``design_guides(max_offtargets_listed=limit)`` would list them."""
    guides = []
    for guide in doc.get("guides") or []:
        listed = guide.get("offtargets")
        if listed is not None and len(listed) > limit:
            guide = {**guide, "offtargets": listed[:limit], "offtargets_listed_truncated": True}
        guides.append(guide)
    out = {**doc, "guides": guides}
    prov = doc.get("provenance")
    if isinstance(prov, dict) and isinstance(prov.get("parameters"), dict):
        parameters = {**prov["parameters"], "max_offtargets_listed": limit}
        out["provenance"] = {**prov, "parameters": parameters}
    return out


def _download_name(doc: dict, extension: str) -> str:
    target = (doc.get("target") or {}).get("name") or "target"
    parts = [str(doc.get("genome") or "genome"), str(target), "guides"]
    name = "-".join(_FILENAME_UNSAFE.sub("_", p).strip("_") or "x" for p in parts)
    return f"{name}.{extension}"

def design_result(doc: dict, format: str, offtargets_limit: int) -> Response:
    """A design document as the API returns it: JSON (off-target lists cut to
    ``offtargets_limit``), or its TSV (one row per guide) or BED track as a download."""
    if format == "json":
        return JSONResponse(_cut_offtargets(doc, offtargets_limit))
    text, media, extension = (
        (to_tsv(doc), "text/tab-separated-values", "tsv")
        if format == "tsv"
        else (to_bed(doc), "text/plain", "bed")
    )
    filename = _download_name(doc, extension)
    return Response(
        text,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/jobs/{job_id}/guides/{rank}/offtargets", tags=["jobs"])
def guide_offtargets(
    request: Request,
    job_id: str = JobPath,
    rank: int = Path(ge=1, le=MAX_INDEX, description="The guide's rank (1 = best)."),
    offset: int = Query(0, ge=0, le=MAX_INDEX, description="Skip this many off-targets."),
    limit: int = Query(100, ge=1, le=MAX_OFFTARGETS_LIMIT, description="At most this many."),
) -> OffTargetPage:
    """A page of one guide's off-targets, most dangerous first (fewest mismatches, then
    highest CFD, then genome order)."""
    _, doc = _guides_document(request, job_id)
    guides = doc.get("guides") or []
    guide = guides[rank - 1] if rank <= len(guides) else None
    if guide is None or guide.get("rank") != rank:
        guide = next((g for g in guides if g.get("rank") == rank), None)
    if guide is None:
        raise NotFoundError(f"job {job_id} has no guide of rank {rank}: it has {len(guides)}")
    listed = guide.get("offtargets") or []
    return JSONResponse(
        {
            "rank": rank,
            "sequence": guide["sequence"],
            "total": len(listed),
            "offset": offset,
            "limit": limit,
            "offtargets": listed[offset : offset + limit],
        }
    )
