"""The guide pages: the design form (``/guides``) and a job's result page (``/jobs/{id}``).

Both pages are rendered from Jinja2 templates and brought to life by ``/static/app.js`` (plain
JavaScript, no external library), which talks to the REST API under ``/api/v1``. Everything the
pages load — script, style sheet, icons — is served by the app itself: they work offline.

The app factory includes :data:`router` and mounts :data:`STATIC_DIR` at ``/static``.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from .. import __version__
from ..errors import SandgrainError
from ..genome.store import list_genomes
from ..guides.nucleases import NUCLEASES
from ..guides.search import MAX_MISMATCHES
from .genomes import genome_summary
from .guides import DEFAULT_GUIDE_PAGE, MAX_GUIDE_PAGE

__all__ = ["STATIC_DIR", "TEMPLATES", "router"]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))

#: Default of the "maximum mismatches" field.
DEFAULT_MISMATCHES = 4
#: Genomes whose example gene the form offers (their gene tables are loaded for it).
MAX_EXAMPLE_GENOMES = 8

router = APIRouter(include_in_schema=False)


def _genomes(request: Request) -> list[dict]:
    """Each genome's summary with the nucleases it is indexed for."""
    return [genome_summary(genome) for genome in list_genomes(request.app.state.store)]


def _example(request: Request, name: str) -> dict | None:
    """A gene of the genome to show as the form's example (placeholders follow the chosen
    genome): the first in table order with a symbol of its own and a coding sequence, else the
    first gene. Gene tables come from the app's genome cache, loaded once."""
    try:
        genes = request.app.state.genomes.get(name).genes.genes
    except (SandgrainError, OSError, ValueError):
        return None
    chosen = next((g for g in genes if g.symbol and g.symbol != g.gene_id and g.cds), None)
    chosen = chosen or (genes[0] if genes else None)
    if chosen is None:
        return None
    return {"gene": chosen.symbol or chosen.gene_id, "region": chosen.location}


def _default_genome(genomes: list[dict]) -> str | None:
    """The genome the form starts with: the first one indexed for a nuclease (guides can be
    designed in it), else the first."""
    for g in genomes:
        if g.get("indexed_nucleases"):
            return g["name"]
    return genomes[0]["name"] if genomes else None


def _nucleases() -> list[dict]:
    return [
        {
            "name": n.name,
            "pam": n.pam,
            "pam_side": n.pam_side,
            "guide_length": n.guide_length,
            "description": n.description,
        }
        for n in NUCLEASES.values()
    ]


def _page_data(**values) -> str:
    """JSON for the page's ``<script type="application/json">`` block (safe inside HTML)."""
    text = json.dumps(values, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _context(request: Request, page: str, **values) -> dict:
    store = request.app.state.store
    return {
        "page": page,
        "version": __version__,
        "store": store.url,
        **values,
    }


@router.get("/guides", response_class=HTMLResponse)
def design_page(request: Request):
    """The design form and the genomes in the store."""
    genomes = _genomes(request)
    for g in genomes[:MAX_EXAMPLE_GENOMES]:
        g["example"] = _example(request, g["name"])
    default = _default_genome(genomes)
    data = _page_data(
        genomes=genomes,
        nucleases=_nucleases(),
        max_mismatches=MAX_MISMATCHES,
        default_mismatches=DEFAULT_MISMATCHES,
        default_genome=default,
    )
    example = next((g.get("example") for g in genomes if g["name"] == default), None)
    context = _context(
        request,
        "design",
        genomes=genomes,
        nucleases=_nucleases(),
        max_mismatches=MAX_MISMATCHES,
        default_mismatches=DEFAULT_MISMATCHES,
        default_genome=default,
        example=example or {},
        page_data=data,
    )
    return TEMPLATES.TemplateResponse(request, "index.html", context)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request):
    """A job's own page: live progress while it runs, then its result. Shareable; a reload
    shows the result again (the page reads everything from the API)."""
    jobs = getattr(request.app.state, "jobs", None)
    status_code = 200
    missing = None
    if jobs is not None:
        try:
            jobs.get(job_id)
        except SandgrainError as exc:
            status_code = getattr(exc, "http_status", 404)
            missing = str(exc)
    data = _page_data(
        job_id=job_id,
        genomes=_genomes(request),
        nucleases=_nucleases(),
        page_size=DEFAULT_GUIDE_PAGE,
        max_page_size=MAX_GUIDE_PAGE,
    )
    context = _context(request, "job", job_id=job_id, missing=missing, page_data=data)
    return TEMPLATES.TemplateResponse(request, "job.html", context, status_code=status_code)
