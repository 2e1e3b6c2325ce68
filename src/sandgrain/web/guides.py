"""The guides domain's REST routes under ``/api/v1``: nucleases, guide design jobs (and how
many guides one would have), scoring given guides, and a finished design read piece by piece:
its overview, its guides page by page (sorted and filtered on the server), what to draw of them,
each guide's off-targets page by page, and the document as JSON, TSV or BED.

The routes translate JSON into the domain's requests (:mod:`sandgrain.guides.request`), which
check every rule once; they hold no rule of their own. A finished design is read once into a
:class:`~sandgrain.web.guide_table.GuideTable` (kept in the app's result cache), so a page of 100
guides out of 76,541 costs a sort of columns, not a parse of the document.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ..errors import InputError, NotFoundError
from ..guides.design import check_design, check_index, score_guides
from ..guides.document import SCORE_BINS as GUIDE_SCORE_BINS
from ..guides.formats import to_bed, to_tsv
from ..guides.jobs import GUIDES_DESIGN
from ..guides.nucleases import NUCLEASES
from ..guides.targets import target_candidates
from ..jobs import Job
from .common import (
    API_PREFIX,
    MAX_INDEX,
    PROBLEM_RESPONSES,
    JobPath,
    finished_job,
    genomes_of,
)
from .guide_table import (
    SORT_KEYS,
    GuideTable,
    document_chunks,
    read_design,
    read_guide,
    stream_document,
)
from .models import (
    MAX_OFFTARGETS_LIMIT,
    DesignRequest,
    GuideCount,
    GuideDocument,
    GuideOverview,
    GuidePage,
    GuideTrack,
    JobCreated,
    NucleaseInfo,
    OffTargetPage,
    ScoreRequest,
)

router = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)

_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")

#: A design with more guides than this is "large": the page asks before submitting it (a 1 Mb
#: region has about 76,000 SpCas9 guides; a gene's exons a few hundred).
LARGE_DESIGN_GUIDES = 5000
#: Default and largest number of guides on one page of a design.
DEFAULT_GUIDE_PAGE = 100
MAX_GUIDE_PAGE = 1000
#: Most guides a track draws one by one; past this (or past its ``bins``) it sends a density.
MAX_TRACK_MARKS = 5000
#: Most density bins a track request may ask for.
MAX_TRACK_BINS = 4000

_GOOD, _FAIR, _POOR = "#1a7f37", "#b07800", "#c0392b"


def _bins(score: str) -> list[dict]:
    """The page's colour bins of ``score``, best first (a value falls in the first bin whose
    ``min`` it reaches; ``None``: every value), from the guides domain's
    :data:`~sandgrain.guides.document.SCORE_BINS` (good at or above, poor at or below)."""
    good, poor = GUIDE_SCORE_BINS[score]["good"], GUIDE_SCORE_BINS[score]["poor"]
    return [
        {"min": good, "label": f"{good:g} or more", "colour": _GOOD},
        {"min": math.nextafter(poor, math.inf), "label": f"{poor:g} to {good:g}", "colour": _FAIR},
        {"min": None, "label": f"{poor:g} or less", "colour": _POOR},
    ]


#: Colour bins of the scores the page colours (the page reads them from a design's overview,
#: ``legend``; a design document may bring its own ``legend``). One source for the thresholds:
#: :data:`sandgrain.guides.document.SCORE_BINS`, where each is justified.
SCORE_BINS: dict[str, list[dict]] = {
    **{score: _bins(score) for score in GUIDE_SCORE_BINS},
    "tier": [
        {"min": None, "label": "tier 1: no flag", "colour": _GOOD},
        {"min": None, "label": "tier 2: soft flags", "colour": _FAIR},
        {"min": None, "label": "tier 3: a perfect NGG off-target or TTTT", "colour": _POOR},
    ],
}


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


# --------------------------------------------------------------------------------------------
# how many guides a design would have
# --------------------------------------------------------------------------------------------


@router.post("/guides/count", tags=["guides"])
def count_guides(request: Request, body: DesignRequest) -> GuideCount:
    """How many guides a design of this target would have — its candidate sites, found without
    any off-target search (0.6 s for a 1 Mb region) — checked like a submission (the same
    400/404/409). ``large`` says the design has more than ``large_above`` guides: the page
    asks before submitting it."""
    g = genomes_of(request).get(body.genome)
    design = body.to_request()
    target = check_design(g, design)
    n = len(target_candidates(g, target, design.nuclease))
    described = {k: target.description.get(k) for k in ("type", "name", "length")}
    return JSONResponse(
        {
            "genome": g.name,
            "target": described,
            "nuclease": design.nuclease.name,
            "guides": n,
            "large": n > LARGE_DESIGN_GUIDES,
            "large_above": LARGE_DESIGN_GUIDES,
        }
    )


# --------------------------------------------------------------------------------------------
# a finished design, piece by piece
# --------------------------------------------------------------------------------------------


def _design_job(request: Request, job_id: str) -> Job:
    job = finished_job(request, job_id)
    if job.kind != GUIDES_DESIGN:
        raise InputError(f"job {job.id} is a {job.kind} job, not a guide design: it has no guides")
    return job


def design_table(request: Request, job: Job) -> GuideTable:
    """The guide table of a finished design job (read once, then cached with the results)."""
    return request.app.state.results.view(job.result, read_design)


def download_name(head: dict, extension: str) -> str:
    """``{genome}_{target}_{nuclease}.{extension}``, each part reduced to letters, digits, dots
    and dashes (``yeast_ADE2_SpCas9.tsv``, ``yeast_XV-564476-566191_SpCas9.bed``)."""
    target = (head.get("target") or {}).get("name") or "target"
    nuclease = (head.get("nuclease") or {}).get("name") or "guides"
    parts = [str(head.get("genome") or "genome"), str(target), str(nuclease)]
    name = "_".join(_FILENAME_UNSAFE.sub("-", p).strip("-") or "x" for p in parts)
    return f"{name}.{extension}"


def _attachment(filename: str) -> dict:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _light_document(table: GuideTable) -> dict:
    """The document with its guides' records but no off-target lists (what TSV and BED use)."""
    return {**table.head, "guides": [json.loads(row) for row in table.rows]}


def _bed_chrom_names(request: Request, head: dict, chrom_names: str) -> dict[str, str] | None:
    """The UCSC names of the design's genome (``chrom_names="ucsc"``), none where the genome
    is gone or of no known assembly (its names as stored)."""
    if chrom_names != "ucsc":
        return None
    try:
        return genomes_of(request).get(str(head.get("genome"))).ucsc_names()
    except NotFoundError:  # removed since the design: the names it was designed on
        return None


def design_result(
    request: Request,
    job: Job,
    format: str,
    offtargets_limit: int,
    download: bool = False,
    chrom_names: str = "ucsc",
) -> Response:
    """A finished design as ``GET /api/v1/jobs/{id}/result`` sends it: JSON streamed guide by
    guide with the off-target lists cut to ``offtargets_limit`` — or, with ``download``, the
    complete stored document as a file — or its TSV (one row per guide) or BED track as a
    download. Memory stays bounded by one guide for JSON, by the guides' records for TSV/BED."""
    store = request.app.state.store
    if format == "json":
        if download:
            table = design_table(request, job)
            return StreamingResponse(
                document_chunks(store, job.result),
                media_type="application/json",
                headers=_attachment(download_name(table.head, "json")),
            )
        limit = {"max_offtargets_listed": offtargets_limit}
        return StreamingResponse(
            stream_document(document_chunks(store, job.result), offtargets_limit, limit),
            media_type="application/json",
        )
    table = design_table(request, job)
    doc = _light_document(table)
    text, media = (
        (to_tsv(doc), "text/tab-separated-values")
        if format == "tsv"
        else (to_bed(doc, _bed_chrom_names(request, table.head, chrom_names)), "text/plain")
    )
    return Response(
        text,
        media_type=f"{media}; charset=utf-8",
        headers=_attachment(download_name(table.head, format)),
    )


def _legend(head: dict) -> dict[str, list[dict]]:
    """The colour bins of each coloured field: the document's own ``legend`` where it has one,
    else :data:`SCORE_BINS`, with ``efficiency`` binned like the model behind it."""
    legend = {**SCORE_BINS, "score": SCORE_BINS["cfd_specificity"]}
    model = str((head.get("ranking") or {}).get("efficiency_model") or "rs3").lower()
    legend["efficiency"] = SCORE_BINS.get(model, SCORE_BINS["rs3"])
    own = head.get("legend")
    if isinstance(own, dict):
        legend.update({k: v for k, v in own.items() if isinstance(v, list)})
    return legend


@router.get("/jobs/{job_id}/guides/overview", tags=["jobs"])
def guide_overview(request: Request, job_id: str = JobPath) -> GuideOverview:
    """A finished design without its guides: target, nuclease, ranking rule, how many guides
    (and how many carry each flag), where they lie, the colour bins of the scores (``legend``)
    and the download links with their file names."""
    job = _design_job(request, job_id)
    table = design_table(request, job)
    head = table.head
    extent = []
    start, end = table.numbers["start"], table.numbers["end"]
    for code, chrom in enumerate(table.chroms):
        on = (table.chrom_code == code) & ~np.isnan(start)
        if on.any():
            extent.append(
                {
                    "chrom": chrom,
                    "start": int(np.nanmin(start[on])),
                    "end": int(np.nanmax(end[on])),
                    "guides": int(on.sum()),
                }
            )
    base = f"{API_PREFIX}/jobs/{job.id}/result"
    downloads = {
        "tsv": {"url": f"{base}?format=tsv", "filename": download_name(head, "tsv")},
        "bed": {"url": f"{base}?format=bed", "filename": download_name(head, "bed")},
        "json": {
            "url": f"{base}?format=json&download=true",
            "filename": download_name(head, "json"),
        },
    }
    return JSONResponse(
        {
            **{k: v for k, v in head.items() if k != "guides"},
            "max_mismatches": table.max_mismatches,
            "guide_count": len(table),
            "flag_counts": {f: int(a.sum()) for f, a in table.flags.items()},
            "extent": extent,
            "legend": _legend(head),
            "downloads": downloads,
        }
    )


@dataclass(frozen=True)
class GuideFilter:
    """Which guides a page or a track shows (every filter at once)."""

    q: str = ""
    hide_mismatches: int | None = None
    exclude_flags: tuple[str, ...] = ()
    max_tier: int | None = None

    def mask(self, table: GuideTable) -> np.ndarray:
        return table.mask(self.q, self.hide_mismatches, self.exclude_flags, self.max_tier)


def guide_filter(
    q: str = Query(
        "",
        max_length=200,
        description="Words that must all occur in a guide's sequence, PAM, position "
        "(`XV:564476-564495` or `XV:564,476-564,495`), strand or flags (case-insensitive).",
    ),
    hide_mismatches: int | None = Query(
        None,
        ge=0,
        le=5,
        description="Hide guides with an off-target of this many mismatches or fewer.",
    ),
    exclude_flags: str = Query(
        "",
        max_length=500,
        pattern=r"^[A-Za-z0-9_,]*$",
        description="Hide guides with any of these flags (comma-separated, e.g. `tttt`).",
    ),
    max_tier: int | None = Query(None, ge=1, le=3, description="Hide guides of a worse tier."),
) -> GuideFilter:
    flags = tuple(f for f in exclude_flags.split(",") if f)
    return GuideFilter(q.strip(), hide_mismatches, flags, max_tier)


@router.get("/jobs/{job_id}/guides", tags=["jobs"])
def guide_page(
    request: Request,
    job_id: str = JobPath,
    offset: int = Query(0, ge=0, le=MAX_INDEX, description="Skip this many guides."),
    limit: int = Query(
        DEFAULT_GUIDE_PAGE, ge=1, le=MAX_GUIDE_PAGE, description="At most this many guides."
    ),
    sort: Literal[SORT_KEYS] = Query(  # type: ignore[valid-type]
        "rank",
        description="Sort by this field (`position`: chromosome, then start; `mm0`…`mm5`: "
        "off-targets with that many mismatches); ties by rank, missing values last.",
    ),
    order: Literal["ascending", "descending"] = Query("ascending"),
    filters: GuideFilter = Depends(guide_filter),
) -> GuidePage:
    """A page of a finished design's guides, sorted and filtered on the server; each guide's
    record without its off-targets (page through those with
    `/api/v1/jobs/{id}/guides/{rank}/offtargets`)."""
    job = _design_job(request, job_id)
    table = design_table(request, job)
    rows = table.order(sort, order == "descending")
    rows = rows[filters.mask(table)[rows]]
    shown = rows[offset : offset + limit]
    head = json.dumps(
        {
            "total": len(table),
            "matched": int(len(rows)),
            "offset": offset,
            "limit": limit,
            "sort": sort,
            "order": order,
        },
        separators=(",", ":"),
    )
    body = head[:-1].encode() + b',"guides":[' + b",".join(table.rows[i] for i in shown) + b"]}"
    return Response(body, media_type="application/json")


@router.get("/jobs/{job_id}/guides/track", tags=["jobs"])
def guide_track(
    request: Request,
    job_id: str = JobPath,
    chrom: str = Query(..., min_length=1, max_length=200, description="The drawn sequence."),
    start: int = Query(..., ge=1, le=MAX_INDEX, description="First drawn base (1-based)."),
    end: int = Query(..., ge=1, le=MAX_INDEX, description="Last drawn base (inclusive)."),
    bins: int = Query(
        1000,
        ge=1,
        le=MAX_TRACK_BINS,
        description="The drawing's width in bins (pixels): with more guides than this, their "
        "density is sent instead of each guide.",
    ),
    filters: GuideFilter = Depends(guide_filter),
) -> GuideTrack:
    """What to draw of a finished design's guides over `chrom:start-end` (those that pass the
    filters and overlap it): each guide when they are no more than ``bins`` (and at most
    5,000), else per bin and strand the number of guides of each tier (1, 2, 3, none)."""
    if end < start:
        raise InputError(f"bad range {chrom}:{start}-{end}: end before start")
    job = _design_job(request, job_id)
    table = design_table(request, job)
    code = table.chroms.index(chrom) if chrom in table.chroms else -2
    first, last = table.numbers["start"], table.numbers["end"]
    keep = filters.mask(table) & (table.chrom_code == code) & (first <= end) & (last >= start)
    rows = np.flatnonzero(keep)
    info = {"chrom": chrom, "start": start, "end": end, "matched": int(len(rows))}
    if len(rows) <= min(bins, MAX_TRACK_MARKS):
        marks = b",".join(table.rows[i] for i in rows)
        text = json.dumps({**info, "bins": None}, separators=(",", ":"))
        return Response(
            text[:-1].encode() + b',"marks":[' + marks + b"]}", media_type="application/json"
        )
    width = (end - start + 1) / bins
    middle = (np.clip(first[rows], start, end) + np.clip(last[rows], start, end)) / 2
    where = np.minimum(((middle - start) / width).astype(np.int64), bins - 1)
    tier = table.numbers["tier"][rows]
    tier_col = np.where(np.isin(tier, (1.0, 2.0, 3.0)), np.nan_to_num(tier) - 1, 3).astype(np.int64)
    minus = table.texts["strand"][rows] == "-"
    density = {}
    for name, on in (("plus", ~minus), ("minus", minus)):
        grid = np.zeros((bins, 4), np.int64)
        np.add.at(grid, (where[on], tier_col[on]), 1)
        density[name] = grid.tolist()
    return JSONResponse({**info, "marks": None, "bins": {"width": width, **density}})


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
    job = _design_job(request, job_id)
    table = design_table(request, job)
    i = table.index_of_rank(rank)
    if i is None:
        raise NotFoundError(f"job {job_id} has no guide of rank {rank}: it has {len(table)}")
    guide = read_guide(request.app.state.store, table, i)
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
