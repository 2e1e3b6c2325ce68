"""The association domain in the web app: its routes under ``/api/v1/association`` and the page
``/association``.

Routes
------
``GET /api/v1/association/genotypes``
    the genotypes datasets in the store (``sandgrain association import``): variants, samples,
    chromosomes, assembly when the dataset knows it.
``GET /api/v1/association/traits`` and ``POST /api/v1/association/traits``
    the stored trait tables (kind ``traits``) with their columns (binary, quantitative or text);
    a POST stores one: ``{"name": "hipster", "text": "<the CSV/TSV>", "replace": false}`` (201;
    the body is read only up to :data:`MAX_TABLE_BODY` bytes, 413 beyond; 409 for a name taken
    without ``replace``).
``POST /api/v1/association/analyses``
    start an analysis job (202, ``Location`` its status): ``{"genotypes", "traits", "trait",
    "method": "test"|"forest", "test", "statistic", "covariates": [...], "impute", "trees",
    "seed", "mtry_fraction", "fdr", "assembly"}`` (:func:`sandgrain.association.jobs.
    analysis_params` checks it against the store first: 400 for a bad field, 404 for unknown
    genotypes or table).
``GET /api/v1/association/analyses/{id}``
    the job (as ``/api/v1/jobs/{id}``) and, once done, ``analysis``: method, parameters,
    summary (λ, samples, variants, OOB error), assembly and the URLs of the plots and hits.
``GET /api/v1/association/analyses/{id}/hits?offset=0&limit=20``
    the variants in rank order (smallest p first; the forest's rank), each with ``links``: the
    Beacon's variant query (``/api/beacon/g_variants`` with ``referenceName``, 0-based
    ``start``, ``referenceBases``, ``alternateBases`` and ``assemblyId``) and the UCSC Genome
    Browser at the variant (``hgTracks?db=hg19&position=chr5:…``, for a known assembly).
``GET /api/v1/association/analyses/{id}/plots/{manhattan|qq}.{png|svg}``
    the plots (:func:`sandgrain.association.plots.write_plots`).
``GET /api/v1/association/analyses/{id}/results.tsv``
    every variant's row, as a download.

A job that is not done answers 409 with the reason (running, failed, cancelled); an id that is
not an analysis is 404. Errors are problem details like the rest of ``/api/v1``.

The page (``/static/association.js``, no library, nothing from outside the app) runs an
analysis with these routes, follows its progress and shows the plots and the top hits; its URL
(``/association?job=ID``) reloads the result.
"""

from __future__ import annotations

import io
import re
from typing import Any, Literal
from urllib.parse import urlencode

import pyarrow as pa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import NotFoundError
from .common import API_PREFIX, PROBLEM_RESPONSES, JobPath, finished_job, job_view, read_json_object
from .models import NAME_PATTERN
from .pages import TEMPLATES, _page_data

__all__ = ["MAX_ANALYSIS_BODY", "MAX_HITS", "MAX_TABLE_BODY", "hit_links", "pages", "router"]

#: Largest body of ``POST /analyses`` and of ``POST /traits`` (bytes).
MAX_ANALYSIS_BODY = 64 << 10
MAX_TABLE_BODY = 16 << 20
#: Default and largest number of hits in one page of ``/hits``.
DEFAULT_HITS = 20
MAX_HITS = 1000
#: UCSC Genome Browser database of each known assembly.
UCSC_DB = {"GRCh37": "hg19", "GRCh38": "hg38", "R64": "sacCer3", "ASM985889v3": "wuhCor1"}
UCSC = "https://genome.ucsc.edu/cgi-bin/hgTracks"
BEACON_VARIANTS = "/api/beacon/g_variants"
_BASES = re.compile(r"^[ACGTNacgtn]+$")
#: The SVG plots are shown as images; served as documents they may run nothing.
_SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEM_RESPONSES,
    413: {"description": "The request body is over the route's limit"},
}
router = APIRouter(prefix=f"{API_PREFIX}/association", tags=["association"], responses=_RESPONSES)
pages = APIRouter(include_in_schema=False)


class AnalysisRequest(BaseModel):
    """An analysis to run as a job (documentation of the body; the route checks it)."""

    model_config = ConfigDict(extra="forbid")
    genotypes: str = Field(pattern=NAME_PATTERN, description="A genotypes dataset.")
    traits: str = Field(pattern=NAME_PATTERN, description="A stored trait table.")
    trait: str = Field(max_length=200, description="The trait column.")
    method: Literal["test", "forest"] = "test"
    test: Literal["linear", "logistic", "firth", "fisher", "trend"] | None = Field(
        None, description="Default: logistic for a 0/1 trait, linear otherwise."
    )
    statistic: Literal["wald", "lrt", "score"] = "wald"
    covariates: list[str] = Field(default_factory=list, max_length=50)
    impute: Literal["mean", "mode"] = "mean"
    trees: int = Field(200, ge=1, le=5000, description="Forest: number of trees.")
    seed: int = Field(0, ge=0, le=2**53, description="Forest: the seed.")
    mtry_fraction: float | None = Field(None, gt=0, le=1)
    fdr: float = Field(0.05, gt=0, lt=1)
    assembly: str | None = Field(
        None, max_length=64, description="GRCh37, GRCh38, … (default: the dataset's)."
    )


class TraitTableUpload(BaseModel):
    """A trait table to store (documentation of the body; the route checks it)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    text: str = Field(description="The CSV or TSV, header first, one row per sample.")
    replace: bool = False


def _body_doc(model: type[BaseModel]) -> dict:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


# -- lists ----------------------------------------------------------------------------------------
def _genotypes(store) -> list[dict[str, Any]]:
    from ..association.genotypes import KIND

    out = []
    for name in store.dataset_names(KIND):
        try:
            ds = store.open_dataset(KIND, name)
        except NotFoundError:
            continue
        meta = ds.meta
        out.append(
            {
                "name": name,
                "version": ds.manifest["version"],
                "variants": meta.get("n_variants"),
                "samples": meta.get("n_samples"),
                "chromosomes": meta.get("chromosomes", []),
                "assembly": meta.get("assembly"),
            }
        )
    return out


@router.get("/genotypes")
def genotypes(request: Request) -> list[dict[str, Any]]:
    """The genotypes datasets in the store."""
    return _genotypes(request.app.state.store)


@router.get("/traits")
def traits(request: Request) -> list[dict[str, Any]]:
    """The stored trait tables and their columns."""
    from ..association.trait_tables import list_trait_tables

    return list_trait_tables(request.app.state.store)


@router.post("/traits", status_code=201, openapi_extra=_body_doc(TraitTableUpload))
async def store_traits(request: Request) -> JSONResponse:
    """Store a trait table (CSV/TSV by sample id) for analyses to name."""
    from ..association.trait_tables import import_trait_table
    from ..errors import InputError

    doc = await read_json_object(request, MAX_TABLE_BODY)
    unknown = sorted(set(doc) - {"name", "text", "replace"})
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(unknown)}")
    name, text, replace = doc.get("name"), doc.get("text"), doc.get("replace", False)
    if not isinstance(name, str) or not isinstance(text, str) or not isinstance(replace, bool):
        raise InputError('give "name" and "text" (strings) and optionally "replace" (true/false)')
    summary = await run_in_threadpool(
        import_trait_table, request.app.state.store, name, text.encode(), replace=replace
    )
    return JSONResponse(summary, status_code=201)


# -- analyses -------------------------------------------------------------------------------------
@router.post(
    "/analyses",
    status_code=202,
    openapi_extra=_body_doc(AnalysisRequest),
    responses={202: {"headers": {"Location": {"description": "The analysis's status URL."}}}},
)
async def start_analysis(request: Request) -> JSONResponse:
    """Start an analysis: a classical test or the forest, with its plots."""
    from ..association.jobs import ANALYSIS, analysis_params

    doc = await read_json_object(request, MAX_ANALYSIS_BODY)
    params = await run_in_threadpool(analysis_params, request.app.state.store, doc)
    job = request.app.state.manager.submit(ANALYSIS, params)
    url = f"{API_PREFIX}/association/analyses/{job.id}"
    return JSONResponse(
        {"id": job.id, "status_url": url, "page_url": f"/association?job={job.id}"},
        status_code=202,
        headers={"Location": url},
    )


def _analysis_job(request: Request, job_id: str):
    from ..association.jobs import ANALYSIS

    job = request.app.state.jobs.get(job_id)
    if job.kind != ANALYSIS:
        raise NotFoundError(f"job {job_id} is a {job.kind} job, not an association analysis")
    return job


def _result(request: Request, job_id: str) -> dict:
    job = _analysis_job(request, job_id)
    job = finished_job(request, job.id)
    return request.app.state.results.get(job.result)


@router.get("/analyses/{job_id}")
def analysis(request: Request, job_id: str = JobPath) -> dict[str, Any]:
    """An analysis job's status and progress; once done, its summary and where its plots and
    hits are."""
    job = _analysis_job(request, job_id)
    out = job_view(job)
    if out["result_url"]:
        doc = request.app.state.results.get(job.result)
        base = f"{API_PREFIX}/association/analyses/{job.id}"
        plots = [name for name in doc["files"] if name != "table"]
        out["analysis"] = {
            "method": doc["method"],
            "parameters": doc["parameters"],
            "summary": doc["summary"],
            "assembly": doc["assembly"],
            "covariates": doc.get("covariates", []),
            "plots": {name: f"{base}/plots/{name}" for name in plots},
            "hits_url": f"{base}/hits",
            "table_url": f"{base}/results.tsv",
            "provenance": doc["provenance"],
        }
    return out


def hit_links(
    row: dict[str, Any], assembly: str | None, beacon: bool = True
) -> dict[str, str | None]:
    """Where a variant can be looked at: the Beacon's variant query (when the app serves a
    Beacon and the alleles are bases) and the UCSC Genome Browser (known assembly and
    chromosome)."""
    from ..genome.assemblies import find_assembly

    chrom, pos, ref, alt = row["chrom"], int(row["pos"]), row["ref"], row["alt"]
    links: dict[str, str | None] = {"beacon": None, "ucsc": None}
    if beacon and _BASES.match(ref or "") and _BASES.match(alt or ""):
        query = {"referenceName": chrom, "start": pos - 1, "referenceBases": ref,
                 "alternateBases": alt}  # fmt: skip
        if assembly:
            query["assemblyId"] = assembly
        links["beacon"] = f"{BEACON_VARIANTS}?{urlencode(query)}"
    known = find_assembly(assembly)
    chromosome = known.find(str(chrom)) if known else None
    if known and chromosome and known.name in UCSC_DB:
        end = pos + max(len(ref or "N"), 1) - 1
        position = f"{chromosome.ucsc}:{pos}-{end}"
        links["ucsc"] = f"{UCSC}?{urlencode({'db': UCSC_DB[known.name], 'position': position})}"
    return links


def _table(request: Request, doc: dict) -> pa.Table:
    from ..association.jobs import read_results

    key = doc["files"]["table"]
    return request.app.state.results.view(key, lambda store, _k: read_results(store, doc["job"]))


def _has_beacon(request: Request) -> bool:
    """Whether this app serves the Beacon's variant query (its domain may be left out)."""
    return BEACON_VARIANTS in request.app.openapi().get("paths", {})


@router.get("/analyses/{job_id}/hits")
def hits(
    request: Request,
    job_id: str = JobPath,
    offset: int = Query(0, ge=0, le=1_000_000_000, description="First hit of the page."),
    limit: int = Query(DEFAULT_HITS, ge=1, le=MAX_HITS, description="Hits per page."),
) -> dict[str, Any]:
    """The variants in rank order (smallest p first), a page at a time, each with links to the
    Beacon and the genome browser."""
    from ..association.jobs import top_rows

    doc = _result(request, job_id)
    table = _table(request, doc)
    rows = top_rows(table, offset, limit)
    beacon = _has_beacon(request)
    for row in rows:
        row["links"] = hit_links(row, doc["assembly"], beacon)
    return {
        "job": job_id,
        "method": doc["method"],
        "assembly": doc["assembly"],
        "total": table.num_rows,
        "offset": offset,
        "limit": limit,
        "columns": table.column_names,
        "hits": rows,
    }


@router.get(
    "/analyses/{job_id}/plots/{name}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def plot(
    request: Request,
    job_id: str = JobPath,
    name: Literal["manhattan.png", "manhattan.svg", "qq.png", "qq.svg"] = Path(...),
) -> Response:
    """A plot of a finished analysis: the Manhattan or the QQ plot, PNG or SVG."""
    doc = _result(request, job_id)
    key = doc["files"].get(name)
    if key is None:
        raise NotFoundError(f"analysis {job_id} has no {name} (no variant could be tested)")
    data = request.app.state.store.read_bytes(key)
    svg = name.endswith(".svg")
    return Response(
        data,
        media_type="image/svg+xml" if svg else "image/png",
        headers={"Cache-Control": "private, max-age=3600", **(_SVG_HEADERS if svg else {})},
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "NA"
    if isinstance(value, float):
        return "NA" if value != value else f"{value:.6g}"
    return str(value)


@router.get(
    "/analyses/{job_id}/results.tsv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/tab-separated-values": {}}}},
)
def results_tsv(request: Request, job_id: str = JobPath) -> StreamingResponse:
    """Every variant's row of a finished analysis, in variant order, as TSV."""
    doc = _result(request, job_id)
    table = _table(request, doc)

    def lines():
        yield "\t".join(table.column_names) + "\n"
        for batch in table.to_batches(max_chunksize=4096):
            columns = [col.to_pylist() for col in batch.columns]
            buffer = io.StringIO()
            for row in zip(*columns, strict=True):
                buffer.write("\t".join(_fmt(v) for v in row) + "\n")
            yield buffer.getvalue()

    name = f"association-{job_id[:8]}.tsv"
    return StreamingResponse(
        lines(),
        media_type="text/tab-separated-values",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# -- the page -------------------------------------------------------------------------------------
@pages.get("/association", response_class=HTMLResponse)
def association_page(request: Request):
    """Run an analysis and see its Manhattan and QQ plots and its top hits."""
    from ..association.demo import DEMO_EXAMPLE
    from ..association.jobs import DEFAULT_TREES, METHODS
    from ..association.tests_classical import STATISTICS, TESTS
    from ..association.trait_tables import list_trait_tables
    from ..genome.assemblies import ASSEMBLIES

    store = request.app.state.store
    genotypes_list = _genotypes(store)
    tables = list_trait_tables(store)
    names = {g["name"] for g in genotypes_list}
    example = DEMO_EXAMPLE if DEMO_EXAMPLE["genotypes"] in names and any(
        t["name"] == DEMO_EXAMPLE["traits"] for t in tables
    ) else None  # fmt: skip
    data = _page_data(
        genotypes=genotypes_list,
        traits=tables,
        methods=list(METHODS),
        tests=list(TESTS),
        statistics=list(STATISTICS),
        assemblies=[{"name": a.name, "ucsc": UCSC_DB.get(a.name)} for a in ASSEMBLIES.values()],
        default_trees=DEFAULT_TREES,
        example=example,
        max_table_bytes=MAX_TABLE_BODY,
        max_hits=MAX_HITS,
    )
    context = {
        "page": "association",
        "version": __version__,
        "store": store.url,
        "genotypes": genotypes_list,
        "default_trees": DEFAULT_TREES,
        "page_data": data,
    }
    return TEMPLATES.TemplateResponse(request, "association.html", context)
