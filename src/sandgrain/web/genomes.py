"""The genome domain's REST routes under ``/api/v1``: genomes, genes (autocomplete), and the
base-composition job."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from ..genome.jobs import COMPOSITION
from ..genome.store import Genome, list_genomes
from ..guides.siteindex import indexed_nucleases
from .common import API_PREFIX, PROBLEM_RESPONSES, GenomePath, genomes_of, store_of
from .models import MAX_NAME_CHARS, GeneDetail, GeneHit, GenomeDetail, GenomeSummary, JobCreated

router = APIRouter(prefix=API_PREFIX, responses=PROBLEM_RESPONSES)


def genome_summary(genome: Genome) -> dict:
    """A genome's summary with the nucleases it has a site index for (what a design can use)."""
    return {**genome.summary(), "indexed_nucleases": indexed_nucleases(genome)}


@router.get("/genomes", tags=["genomes"])
def genomes(request: Request) -> list[GenomeSummary]:
    """The genomes in the store, with the nucleases each is indexed for."""
    return [genome_summary(g) for g in list_genomes(store_of(request))]


@router.get("/genomes/{name}", tags=["genomes"])
def genome(request: Request, name: str = GenomePath) -> GenomeDetail:
    """One genome: its sequences, provenance and indexed nucleases."""
    g = genomes_of(request).get(name)
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
    table = genomes_of(request).get(name).genes
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
    g = genomes_of(request).get(name).gene(symbol)
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
    g = genomes_of(request).get(name)
    job = request.app.state.manager.submit(COMPOSITION, {"genome": g.name, "max_size": max_size})
    return JSONResponse(
        {"id": job.id}, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"}
    )

