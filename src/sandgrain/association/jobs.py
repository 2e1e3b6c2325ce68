"""The association domain's job kind: ``association.analysis`` — a classical per-variant test or
the wide random forest on stored genotypes and a stored trait table, with its plots.

:func:`analysis_params` checks a request against what the store holds (the genotypes and the
trait table exist, the trait and covariates are numeric columns, the test fits the trait) and
returns the job's parameters, so that a bad request is refused before a job is queued; the
handler (:func:`analysis_job`) checks them again and runs:

- ``method="test"``: :func:`~.tests_classical.association_test` (linear, logistic, firth, fisher
  or trend, with covariates); ``rank`` orders variants by p;
- ``method="forest"``: :func:`~.forest.fit_forest` with AIR importances (Nembrini et al. 2018)
  and their p-values (Janitza et al. 2018); covariates enter as features and are reported apart;
  ``p`` is the AIR p-value, ``rank`` the forest's (p-values of 0, beyond the test's resolution,
  are drawn at half the smallest positive one).

It writes under ``results/association/<job id>/``: ``results.parquet`` (one row per variant:
chrom, pos, id, ref, alt, the method's columns, ``p`` and ``rank``), the Manhattan and QQ plots
(:func:`~.plots.write_plots`: ``manhattan.png``, ``manhattan.svg``, ``qq.png``, ``qq.svg``) and
``result.json`` — parameters, summary (λ, samples, variants, OOB error), the assembly, the top
hits, the file keys and the provenance — whose key is the job's result.

The assembly is the request's ``assembly`` or else the genotypes dataset's own (``meta.assembly``,
when its import recorded one); links to genome browsers need it, the analysis does not.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import CancelledError, InputError, NotFoundError
from ..jobs import JobContext
from ..provenance import provenance
from ..registry import Services
from .genotypes import KIND as GENOTYPES_KIND
from .tests_classical import STATISTICS, TESTS

__all__ = [
    "ANALYSIS",
    "METHODS",
    "PLOTS",
    "TOP_HITS",
    "analysis_job",
    "analysis_params",
    "read_results",
    "result_prefix",
]

ANALYSIS = "association.analysis"
METHODS = ("test", "forest")
#: The plot files a finished analysis has.
PLOTS = ("manhattan.png", "manhattan.svg", "qq.png", "qq.svg")
#: Hits kept in ``result.json`` (the whole table is in ``results.parquet``).
TOP_HITS = 20
MAX_COVARIATES = 50
MAX_TREES = 5000
DEFAULT_TREES = 200
BINARY_TESTS = ("logistic", "firth", "fisher", "trend")

_ASSEMBLY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELDS = {
    "genotypes", "traits", "trait", "method", "test", "statistic", "covariates", "impute",
    "trees", "seed", "mtry_fraction", "fdr", "assembly",
}  # fmt: skip


def result_prefix(job_id: str) -> str:
    """Where an analysis job writes its files in the store."""
    return f"results/association/{job_id}"


def _columns(store, name: str) -> dict[str, str]:
    from .trait_tables import KIND

    try:
        ds = store.open_dataset(KIND, name)
    except NotFoundError:
        known = ", ".join(store.dataset_names(KIND)) or "none yet"
        raise NotFoundError(f"no trait table named {name!r} (known: {known})") from None
    return {c["name"]: c["kind"] for c in ds.meta.get("columns", [])}


def _int(doc: dict, key: str, default: int, lo: int, hi: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(f'"{key}" is a whole number from {lo} to {hi}, not {value!r}')
    return value


def analysis_params(store, doc: dict[str, Any]) -> dict[str, Any]:
    """The parameters of an analysis job from a request ``doc``, checked against the store.

    Raises :class:`~sandgrain.errors.InputError` for a bad field and
    :class:`~sandgrain.errors.NotFoundError` for genotypes or a trait table the store lacks.
    """
    from ..genome.assemblies import canonical_assembly
    from ..storage import check_name

    if not isinstance(doc, dict):
        raise InputError("the analysis is a JSON object")
    unknown = sorted(set(doc) - _FIELDS)
    if unknown:
        raise InputError(f"unknown field(s): {', '.join(unknown)}")
    for key in ("genotypes", "traits", "trait"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise InputError(f'"{key}" is required: a name')
    genotypes = check_name(doc["genotypes"], "genotypes name")
    traits = check_name(doc["traits"], "trait table name")
    if not store.has_dataset(GENOTYPES_KIND, genotypes):
        known = ", ".join(store.dataset_names(GENOTYPES_KIND)) or "none yet"
        raise NotFoundError(
            f"no genotypes named {genotypes!r} (known: {known}); import a VCF with "
            "`sandgrain association import --vcf FILE --name NAME`"
        )
    columns = _columns(store, traits)
    trait = doc["trait"]
    covariates = doc.get("covariates", [])
    if isinstance(covariates, str):
        covariates = [c.strip() for c in covariates.split(",") if c.strip()]
    if not isinstance(covariates, list) or not all(isinstance(c, str) for c in covariates):
        raise InputError('"covariates" is a list of column names')
    if len(covariates) > MAX_COVARIATES:
        raise InputError(f"at most {MAX_COVARIATES} covariates")
    if len(set(covariates)) != len(covariates):
        raise InputError("a covariate is named twice")
    for name in (trait, *covariates):
        if name not in columns:
            raise InputError(
                f"trait table {traits!r} has no column {name!r} (columns: "
                f"{', '.join(list(columns)[:12])})"
            )
        if columns[name] == "text":
            raise InputError(f"column {name!r} of {traits!r} is not numeric")
    if trait in covariates:
        raise InputError(f"the trait {trait!r} cannot be a covariate too")
    binary = columns[trait] == "binary"
    method = doc.get("method", "test")
    if method not in METHODS:
        raise InputError(f'"method" is test or forest, not {method!r}')
    params: dict[str, Any] = {
        "genotypes": genotypes,
        "traits": traits,
        "trait": trait,
        "method": method,
        "covariates": covariates,
    }
    if method == "test":
        test = doc.get("test") or ("logistic" if binary else "linear")
        if test not in TESTS:
            raise InputError(f'"test" is one of {", ".join(TESTS)}, not {test!r}')
        if test in BINARY_TESTS and not binary:
            raise InputError(f"the {test} test needs a 0/1 trait; {trait!r} is quantitative")
        if test in ("fisher", "trend") and covariates:
            raise InputError(f"the {test} test takes no covariates (use logistic or firth)")
        statistic = doc.get("statistic") or "wald"
        if statistic not in STATISTICS:
            raise InputError(f'"statistic" is one of {", ".join(STATISTICS)}, not {statistic!r}')
        if statistic != "wald" and test not in ("logistic", "firth"):
            raise InputError(f'"statistic" applies to logistic and firth, not {test}')
        if test == "firth" and statistic == "score":
            raise InputError("firth takes the wald or lrt statistic")
        impute = doc.get("impute", "mean")
        if impute not in ("mean", "mode"):
            raise InputError(f'"impute" is mean or mode, not {impute!r}')
        params.update(test=test, statistic=statistic, impute=impute)
    else:
        params["trees"] = _int(doc, "trees", DEFAULT_TREES, 1, MAX_TREES)
        params["seed"] = _int(doc, "seed", 0, 0, 2**53)
        fraction = doc.get("mtry_fraction")
        if fraction is not None and (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not 0 < fraction <= 1
        ):
            raise InputError(f'"mtry_fraction" is a number in (0, 1], not {fraction!r}')
        fdr = doc.get("fdr", 0.05)
        if isinstance(fdr, bool) or not isinstance(fdr, int | float) or not 0 < fdr < 1:
            raise InputError(f'"fdr" is a number between 0 and 1, not {fdr!r}')
        params.update(mtry_fraction=fraction, fdr=float(fdr))
    assembly = doc.get("assembly")
    if assembly in (None, ""):
        meta = store.open_dataset(GENOTYPES_KIND, genotypes).meta
        assembly = meta.get("assembly")
    if assembly is not None:
        if not isinstance(assembly, str) or not _ASSEMBLY.match(assembly):
            raise InputError(f'"assembly" is an assembly name such as GRCh37, not {assembly!r}')
        assembly = canonical_assembly(assembly)
    params["assembly"] = assembly
    return params


# -- running ------------------------------------------------------------------------------------
def _rank(p: np.ndarray) -> np.ndarray:
    """1 for the smallest p, NaN p last; ties keep variant order."""
    key = np.where(np.isfinite(p), p, np.inf)
    order = np.argsort(key, kind="stable")
    rank = np.empty(len(p), dtype=np.int64)
    rank[order] = np.arange(1, len(p) + 1)
    return rank


def _run_test(matrix, traits, params, progress) -> tuple[pa.Table, dict, list]:
    from .tests_classical import association_test

    results = association_test(
        matrix, traits, params["test"], statistic=params["statistic"],
        impute_rule=params["impute"], progress=progress,
    )  # fmt: skip
    table = results.table
    p = table["p"].to_numpy(zero_copy_only=False).astype(np.float64)
    table = table.append_column("rank", pa.array(_rank(p)))
    summary = results.summary()
    return table, summary, []


def _run_forest(matrix, traits, params, settings, progress) -> tuple[pa.Table, dict, list]:
    from . import forest as F
    from .sample_size import warn_small_sample
    from .tests_classical import genomic_inflation

    y, cov, cov_names, kept = traits[0], traits[1], traits[2], traits[3]
    classification = bool(traits.binary)
    warn_small_sample(y, classification, 1 + len(cov_names), "the forest")
    feats, _ = F.forest_features(matrix, kept, cov if cov_names else None)
    forest_params = F.ForestParams(
        trees=params["trees"],
        mtry=F.default_mtry(feats.n_features * 2, classification, params["mtry_fraction"]),
        seed=params["seed"],
    )
    forest = F.fit_forest(
        feats, None, y, forest_params, classification=classification,
        executor=settings.executor, retries=settings.retries, progress=progress,
    )  # fmt: skip
    cols = forest.importance_columns(params["fdr"])
    n_var = matrix.n_variants
    table = matrix.variants
    for key in ("importance", "air", "p_value", "q_value"):
        table = table.append_column(key, pa.array(np.asarray(cols[key][:n_var], np.float64)))
    table = table.append_column("split_count", pa.array(cols["split_count"][:n_var], pa.int64()))
    p = np.asarray(cols["p_value"][:n_var], np.float64)
    table = table.append_column("p", pa.array(p))
    # the rank among variants, in the forest's order (covariates are reported apart)
    order = np.argsort(cols["rank"][:n_var], kind="stable")
    rank = np.empty(n_var, dtype=np.int64)
    rank[order] = np.arange(1, n_var + 1)
    table = table.append_column("rank", pa.array(rank))
    covariates = [
        {
            "name": name,
            "importance": float(cols["importance"][n_var + k]),
            "air": float(cols["air"][n_var + k]),
            "split_count": int(cols["split_count"][n_var + k]),
            "p_value": float(cols["p_value"][n_var + k]),
            "q_value": float(cols["q_value"][n_var + k]),
            "rank": int(cols["rank"][n_var + k]),
        }
        for k, name in enumerate(cov_names)
    ]
    oob = forest.oob_error(y)
    summary = {
        "trait": traits.trait,
        "covariates": list(cov_names),
        "samples": int(len(y)),
        "variants": n_var,
        "tested": int(np.isfinite(p).sum()),
        "lambda_gc": genomic_inflation(p),
        "min_p": float(np.nanmin(p)) if np.isfinite(p).any() else None,
        "dropped_samples": len(traits.dropped),
        "mode": "classification" if classification else "regression",
        "oob_error": oob,
        "oob_error_kind": "misclassification" if classification else "MSE",
        "mtry": forest_params.mtry,
        "significant": int(np.sum(cols["significant"][:n_var])),
    }
    return table, summary, covariates


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: ``None`` in their place, all the way down."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def top_rows(table: pa.Table, offset: int = 0, limit: int = TOP_HITS) -> list[dict]:
    """Rows ``offset … offset+limit`` of ``table`` in rank order, JSON-ready."""
    rank = table["rank"].to_numpy(zero_copy_only=False)
    order = np.argsort(rank, kind="stable")[offset : offset + limit]
    return _finite(table.take(pa.array(order, pa.int64())).to_pylist())


def read_results(store, job_id: str) -> pa.Table:
    """The whole results table of a finished analysis."""
    data = store.read_bytes(f"{result_prefix(job_id)}/results.parquet")
    return pq.read_table(io.BytesIO(data), use_threads=False)


def _floor_zero_p(table: pa.Table) -> pa.Table:
    """For the plots of a forest: Janitza's p-values are 0 where the AIR is beyond every null
    importance (the test's resolution), drawn at half the smallest positive p rather than at
    the float's limit, so the Manhattan plot keeps its scale. The table keeps them at 0."""
    p = table["p"].to_numpy(zero_copy_only=False).astype(np.float64)
    positive = p[p > 0]
    floor = 0.5 * positive.min() if positive.size else 1.0 / max(len(p), 1)
    index = table.column_names.index("p")
    return table.set_column(index, "p", pa.array(np.where(p == 0, floor, p)))


def run_analysis(store, settings, params: dict, job_id: str, ctx: JobContext | None = None) -> str:
    """Run one analysis and write its files (see the module docstring); returns the key of
    ``result.json``."""
    from ..storage import scratch_dir
    from .genotypes import GenotypeMatrix
    from .phenotypes_table import load_traits
    from .plots import write_plots
    from .trait_tables import trait_table

    def report(fraction: float, message: str) -> None:
        if ctx is not None:
            if ctx.cancelled():
                raise CancelledError(f"job {job_id} was cancelled")
            ctx.progress(min(max(fraction, 0.0), 1.0), message)

    def stepper(lo: float, hi: float, message: str):
        def progress(done, total, *_):
            report(lo + (hi - lo) * (done / total if total else 1.0), message)

        return progress

    report(0.0, "reading the genotypes")
    matrix = GenotypeMatrix.open(store, params["genotypes"])
    with trait_table(store, params["traits"]) as (path, table_record):
        traits = load_traits(path, params["trait"], params["covariates"], matrix.samples)
    if params["method"] == "test":
        step = stepper(0.05, 0.85, f"{params['test']} test")
        table, summary, covariates = _run_test(matrix, traits, params, step)
    else:
        step = stepper(0.05, 0.85, f"forest of {params['trees']} trees")
        table, summary, covariates = _run_forest(matrix, traits, params, settings, step)
    report(0.88, "drawing the plots")
    prefix = result_prefix(job_id)
    files = {"table": f"{prefix}/results.parquet"}
    what = params.get("test") or "forest"
    with scratch_dir("sandgrain-association-") as tmp:
        p = table["p"].to_numpy(zero_copy_only=False).astype(np.float64)
        finite = np.isfinite(p)
        if finite.any():
            plotted = table.filter(pa.array(finite))
            if params["method"] == "forest":
                plotted = _floor_zero_p(plotted)
            for path in write_plots(plotted, tmp / "plot", title=f"{params['trait']} ({what})"):
                name = path.name.removeprefix("plot.")
                store.write_bytes(f"{prefix}/{name}", path.read_bytes())
                files[name] = f"{prefix}/{name}"
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        store.write_bytes(files["table"], buffer.getvalue())
    inputs = [
        {"source": f"genotypes/{params['genotypes']}", "version": matrix.source.get("version")},
        table_record,
    ]
    result = {
        "kind": ANALYSIS,
        "job": job_id,
        "method": params["method"],
        "parameters": params,
        "assembly": params.get("assembly"),
        "summary": summary,
        "columns": table.column_names,
        "top": top_rows(table),
        "covariates": covariates,
        "files": files,
        "provenance": provenance(f"association {params['method']} (web)", params, inputs),
    }
    key = f"{prefix}/result.json"
    store.write_bytes(key, json.dumps(_finite(result), allow_nan=False).encode())
    report(1.0, "done")
    return key


def analysis_job(services: Services):
    """Handler for ``association.analysis`` jobs (see the module docstring)."""
    store, settings = services.store, services.settings

    def handle(ctx: JobContext) -> str:
        params = analysis_params(store, dict(ctx.params))
        return run_analysis(store, settings, params, ctx.id, ctx)

    return handle
