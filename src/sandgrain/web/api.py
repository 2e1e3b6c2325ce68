"""The REST API under ``/api/v1``: genomes, genes, nucleases, guide design jobs, guide scoring.

The routes keep no state of their own: they find the store, the job store, the job manager and
the caches on ``request.app.state`` (set up by :func:`sandgrain.web.app.create_app`).

Every error is an RFC 9457 problem (``application/problem+json``) with a ``detail`` a user can
act on; the statuses are listed in ``docs/api.md``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from typing import Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from ..errors import ConflictError, InputError, NotFoundError, SandgrainError
from ..genome.store import Genome, list_genomes, open_genome
from ..guides.candidates import MAX_TARGET_BP, gene_regions
from ..guides.design import score_guides
from ..guides.formats import to_bed, to_tsv
from ..guides.nucleases import NUCLEASES, Nuclease, get_nuclease
from ..guides.siteindex import SiteFamily, open_index
from ..jobs import Job, JobStatus
from ..storage import Store
from .jobs import COMPOSITION, GUIDES_DESIGN
from .models import (
    DEFAULT_OFFTARGETS_LIMIT,
    MAX_NAME_CHARS,
    MAX_OFFTARGETS_LIMIT,
    NAME_PATTERN,
    CompositionDocument,
    DesignRequest,
    GeneDetail,
    GeneHit,
    GenomeDetail,
    GenomeSummary,
    GuideDocument,
    JobCreated,
    JobInfo,
    NucleaseInfo,
    OffTargetPage,
    Problem,
    ScoreRequest,
)

__all__ = ["GenomeCache", "MissingIndexError", "ResultCache", "router"]

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

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)

#: Longest job id accepted in a path (ids are 32 hex digits).
_MAX_ID_CHARS = 100
#: Largest rank or offset accepted in a path or query (far beyond any real document).
_MAX_INDEX = 1_000_000_000
_SEQUENCE_BAD = re.compile(r"[^ACGTRYSWKMBDHVNacgtryswkmbdhvn]")
_SPACE = re.compile(r"\s+")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class MissingIndexError(ConflictError):
    """The genome has no site index for the nuclease; the message names the command."""

    title = "Site index missing"


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
    larger than ``max_bytes`` are parsed each time rather than held in memory.
    """

    def __init__(self, store: Store, size: int = 4, max_bytes: int = 32 << 20):
        self.store = store
        self.size = size
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, dict] = OrderedDict()
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


def _genomes(request: Request) -> GenomeCache:
    return request.app.state.genomes


def _store(request: Request) -> Store:
    return request.app.state.store


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def indexed_nucleases(genome: Genome) -> list[str]:
    """The shipped nucleases whose site index (their own, or a larger one) exists and is
    up to date for ``genome``."""
    found = []
    for name, nuclease in NUCLEASES.items():
        try:
            open_index(genome, SiteFamily.of(nuclease), name)
        except SandgrainError:
            continue
        found.append(name)
    return found


def genome_summary(genome: Genome) -> dict:
    return {**genome.summary(), "indexed_nucleases": indexed_nucleases(genome)}


def _nuclease(name: str) -> Nuclease:
    """A shipped nuclease by name (case-insensitive); 404 listing the choices otherwise."""
    try:
        return get_nuclease(name)
    except NotFoundError:
        raise NotFoundError(
            f"unknown nuclease {name.strip()!r}; choose one of {', '.join(NUCLEASES)} "
            "(GET /api/v1/nucleases describes them)"
        ) from None


def _check_index(genome: Genome, nuclease: Nuclease) -> None:
    try:
        open_index(genome, SiteFamily.of(nuclease), nuclease.name)
    except (NotFoundError, InputError) as exc:
        raise MissingIndexError(str(exc)) from None


def _check_size(length: int, what: str) -> None:
    if length > MAX_TARGET_BP:
        raise InputError(
            f"{what} is {length:,} bp, more than the limit of {MAX_TARGET_BP:,} bp for one "
            "design; choose a smaller target"
        )


def _check_target(genome: Genome, req: DesignRequest) -> None:
    """The cheap checks of a design's target: the gene exists (and has the parts asked for),
    the region lies in the genome, the sequence is DNA; none is too long."""
    if req.gene is not None:
        gene = genome.gene(req.gene)
        regions = gene_regions(gene, req.within)
        _check_size(sum(r.length for r in regions), f"gene {gene.symbol or gene.gene_id}")
    elif req.region is not None:
        region = genome.region(req.region)
        _check_size(region.length, f"region {region}")
    else:
        text = _SPACE.sub("", req.sequence or "")
        if not text:
            raise InputError("the sequence is empty: give a DNA sequence (A, C, G, T, N)")
        bad = _SEQUENCE_BAD.search(text)
        if bad:
            raise InputError(
                f"the sequence has an invalid letter {bad.group()!r} at position "
                f"{bad.start() + 1}; a DNA sequence uses A, C, G, T, N (and IUPAC codes)"
            )
        _check_size(len(text), "the sequence")


#: A sequence parameter longer than this is shortened in job views (the job keeps all of it).
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


def _finished_job(request: Request, job_id: str) -> Job:
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


def _guides_document(request: Request, job_id: str) -> tuple[Job, dict]:
    job = _finished_job(request, job_id)
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


# --------------------------------------------------------------------------------------------
# genomes and genes
# --------------------------------------------------------------------------------------------

GenomePath = Path(
    description="A genome's name or alias.",
    examples=["yeast"],
    json_schema_extra={"pattern": NAME_PATTERN},
)


@router.get("/genomes", tags=["genomes"])
def genomes(request: Request) -> list[GenomeSummary]:
    """The genomes in the store, with the nucleases each is indexed for."""
    return [genome_summary(g) for g in list_genomes(_store(request))]


@router.get("/genomes/{name}", tags=["genomes"])
def genome(request: Request, name: str = GenomePath) -> GenomeDetail:
    """One genome: its sequences, provenance and indexed nucleases."""
    g = _genomes(request).get(name)
    return {
        **genome_summary(g),
        "chromosomes": g.chromosomes,
        "provenance": g.dataset.manifest.get("provenance"),
    }


@router.get("/genomes/{name}/genes", tags=["genomes"])
def search_genes(
    request: Request,
    name: str = GenomePath,
    prefix: str = Query(
        "",
        max_length=MAX_NAME_CHARS,
        description="The start of a gene symbol or ID (case-insensitive).",
        examples=["AD"],
    ),
    limit: int = Query(20, ge=1, le=100, description="At most this many genes."),
) -> list[GeneHit]:
    """Genes whose symbol or ID starts with ``prefix``, for autocomplete (shortest names
    first); an empty list for an empty prefix or a genome without genes."""
    table = _genomes(request).get(name).genes
    return [
        {
            "symbol": g.symbol,
            "gene_id": g.gene_id,
            "chrom": g.chrom,
            "start": g.start1,
            "end": g.end1,
            "strand": g.strand,
            "biotype": g.biotype,
        }
        for g in table.search_prefix(prefix, limit)
    ]


@router.get("/genomes/{name}/genes/{symbol}", tags=["genomes"])
def gene(
    request: Request,
    name: str = GenomePath,
    symbol: str = Path(
        max_length=MAX_NAME_CHARS,
        description="A gene symbol, alias or ID (case-insensitive).",
        examples=["ADE2"],
    ),
) -> GeneDetail:
    """One gene, 1-based inclusive: 404 if unknown (with close names), 409 if the name is
    ambiguous (its ``candidates`` listed)."""
    g = _genomes(request).get(name).gene(symbol)
    return {
        "symbol": g.symbol,
        "gene_id": g.gene_id,
        "aliases": list(g.aliases),
        "ids": list(g.ids),
        "chrom": g.chrom,
        "start": g.start1,
        "end": g.end1,
        "strand": g.strand,
        "biotype": g.biotype,
        "location": g.location,
        "exons": [{"start": s + 1, "end": e} for s, e in g.exons],
        "cds": [{"start": s + 1, "end": e} for s, e in g.cds],
        "description": g.description,
    }


@router.post(
    "/genomes/{name}/composition",
    status_code=202,
    tags=["genomes"],
    responses={202: {"headers": {"Location": {"description": "The job's URL."}}}},
)
def submit_composition(
    request: Request,
    name: str = GenomePath,
    max_size: int = Query(
        4_000_000, ge=1000, le=1_000_000_000, description="Largest piece one task counts (bp)."
    ),
) -> JobCreated:
    """Start a job counting the bases of a genome (a genome-wide fan-out)."""
    g = _genomes(request).get(name)
    job = request.app.state.manager.submit(COMPOSITION, {"genome": g.name, "max_size": max_size})
    return JSONResponse(
        {"id": job.id}, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"}
    )


# --------------------------------------------------------------------------------------------
# nucleases and guides
# --------------------------------------------------------------------------------------------


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
    g = _genomes(request).get(body.genome)
    nuclease = _nuclease(body.nuclease)
    _check_target(g, body)
    _check_index(g, nuclease)
    params = {
        "genome": g.name,
        **body.target,
        "nuclease": nuclease.name,
        "max_mismatches": body.max_mismatches,
        "within": body.within,
    }
    job = request.app.state.manager.submit(GUIDES_DESIGN, params)
    return JSONResponse(
        {"id": job.id}, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"}
    )


@router.post("/guides/score", tags=["guides"])
def score(request: Request, body: ScoreRequest) -> GuideDocument:
    """Score up to 50 given guides against a genome, at once (no job): off-target counts,
    MIT and CFD specificities, the off-targets listed (at most ``offtargets_limit`` each)."""
    g = _genomes(request).get(body.genome)
    nuclease = _nuclease(body.nuclease)
    _check_index(g, nuclease)
    settings = request.app.state.settings
    doc = score_guides(
        g,
        body.guides,
        nuclease=nuclease,
        max_mismatches=body.max_mismatches,
        executor=settings.executor,
        retries=settings.retries,
        max_offtargets_listed=body.offtargets_limit,
    )
    return JSONResponse(doc)


# --------------------------------------------------------------------------------------------
# jobs
# --------------------------------------------------------------------------------------------

JobPath = Path(max_length=_MAX_ID_CHARS, description="The job's id.")


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
) -> Response:
    """A finished job's result: for guide design the document of ``sandgrain guides design
    --format json``, or its TSV (one row per guide) or BED track as a download. 409 while the
    job runs, or if it failed or was cancelled."""
    job = _finished_job(request, job_id)
    doc = request.app.state.results.get(job.result)
    if job.kind != GUIDES_DESIGN:
        if format != "json":
            raise InputError(f"a {job.kind} job's result is only available as JSON")
        return JSONResponse(doc)
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
    rank: int = Path(ge=1, le=_MAX_INDEX, description="The guide's rank (1 = best)."),
    offset: int = Query(0, ge=0, le=_MAX_INDEX, description="Skip this many off-targets."),
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
