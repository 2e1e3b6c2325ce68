"""Mutations of a genome collection against a clinical outcome, with covariates or strata.

A strains collection in the store (``sandgrain strains add``) becomes the genotypes and the
traits of an analysis here, through two capabilities of other domains
(:func:`sandgrain.registry.capability`; domains do not import each other):

- ``"strains.mutation-features"`` (:mod:`sandgrain.strains.features`) gives the collection's
  mutations as binary features per genome — substitutions, deletions, insertions and, on
  request, amino-acid changes — with *unknown* where a genome does not read the site (N run,
  trimmed end), and each genome's metadata. They become a
  :class:`~sandgrain.association.genotypes.GenotypeMatrix` held in memory, coded as the
  genotypes module codes a haploid call: **0** absent, **2** present (one haploid genome, the
  "homozygous" dosage, PLINK 1.9's rule for hemizygous calls), **3** missing. The tests here read
  it per genome: ``beta`` is per *presence* of the mutation, ``af`` is the share of genomes
  carrying it among those that read the site, and Fisher's test counts genomes, not alleles.
- ``"clinical-text.code-columns"`` (:mod:`sandgrain.phenotypes.integration`) reads a free-text
  patient status ("Hospitalized", "Deceased", "Released", "Live", "Mild", as GISAID writes it)
  onto the WHO clinical progression scale (0–10), or a band of it when the text fixes no more
  ("Hospitalized" is 4–9). The trait ``outcome`` is then **1** when the whole band is at or above
  ``outcome_threshold`` (default 4: hospitalised or worse; 10: death), **0** when it is all below,
  and missing when the band straddles the threshold ("Live": 1–9) or the text is not understood.
  "Released" and "Discharged" read as the state the text states (1–3, recovered), so at the
  default threshold they count as not severe.

Confounding. Outcome data in GISAID come with strong temporal and geographic structure: who is
sequenced, and whose status is reported, differs by country and period, and lineages rise and
fall in time and place, so a lineage's mutations go with outcome for reasons that are not the
virus's (Sokhansanj & Rosen 2022). Two remedies:

- **Covariates** (regressions: ``logistic``, ``firth``, ``linear``): ``date`` enters as years
  since the earliest sampling date among the genomes analysed; a text column such as ``country``
  as indicator columns (one level, the most frequent, as reference; levels with fewer than
  ``min_level`` genomes pooled as ``other``); a numeric column as it is.
- **Strata** (``fisher`` and ``trend``, which take no covariates): the Cochran–Mantel–Haenszel
  test (Mantel & Haenszel 1959) over the 2×2 tables (carrier or not × outcome) of each stratum,
  e.g. each country × quarter, with the Mantel–Haenszel common odds ratio as ``beta`` (its log)
  and the Robins–Breslow–Greenland (1986) standard error. ``date`` as a stratum is binned by
  ``date_bin`` (month, quarter or year).

References
----------
.. [1] Sokhansanj BA, Rosen GL. "Mapping data to deep understanding: making the most of the
   deluge of SARS-CoV-2 genome sequences." mSystems 7:e00035-22, 2022.
.. [2] Mantel N, Haenszel W. "Statistical aspects of the analysis of data from retrospective
   studies of disease." J Natl Cancer Inst 22:719-748, 1959.
.. [3] Robins J, Breslow N, Greenland S. "Estimators of the Mantel-Haenszel variance consistent
   in both sparse data and large-strata limiting models." Biometrics 42:311-323, 1986.
.. [4] WHO Working Group on the Clinical Characterisation and Management of COVID-19 infection.
   "A minimal common outcome measure set for COVID-19 clinical research." Lancet Infect Dis
   20:e192-e197, 2020.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import stats

from ..errors import InputError
from ..registry import capability
from .genotypes import MISSING, GenotypeMatrix, pack
from .phenotypes_table import Traits
from .sample_size import warn_small_sample
from .tests_classical import (
    COLUMNS,
    AssociationResults,
    block_columns,
    fisher_counts,
    prepare,
    results_table,
)

__all__ = [
    "DATE_BINS",
    "OUTCOME",
    "CollectionInputs",
    "cmh_counts",
    "collection_inputs",
    "collection_test",
    "outcome_from_who",
    "stratum_tables",
]

#: The trait name that means "the coded clinical outcome".
OUTCOME = "outcome"
DATE_BINS = ("month", "quarter", "year")
DEFAULT_THRESHOLD = 4
#: Text that means "no value" in a metadata column.
MISSING_TEXT = frozenset({"", "?", ".", "na", "n/a", "nan", "none", "null", "unknown", "missing"})
#: Metadata columns tried, in order, for the patient status when none is named.
STATUS_NAMES = ("patient status", "patient_status", "patientstatus", "status")


@dataclass
class CollectionInputs:
    """What an analysis of a collection reads: the features as genotypes (0/2, 3 = unknown),
    the traits of the genomes kept, the strata codes (or None), and what the provenance and the
    report say about them."""

    matrix: GenotypeMatrix
    traits: Traits
    features: pa.Table
    strata: np.ndarray | None
    strata_levels: list[str]
    source: dict
    parameters: dict
    outcome: dict | None = None
    notes: list[str] = field(default_factory=list)


# -- the trait ---------------------------------------------------------------------------------
def outcome_from_who(values: Sequence[str], threshold: int = DEFAULT_THRESHOLD) -> np.ndarray:
    """WHO-scale scores or bands (``"10"``, ``"4-9"``, empty) → 1.0 (the band is at or above
    ``threshold``), 0.0 (all below), NaN (straddles it, or no value)."""
    if not 1 <= threshold <= 10:
        raise InputError(f"the outcome threshold is a WHO scale score 1-10, not {threshold}")
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        text = (v or "").strip()
        if not text:
            continue
        lo, _, hi = text.partition("-")
        try:
            low, high = int(lo), int(hi or lo)
        except ValueError:
            continue
        if low >= threshold:
            out[i] = 1.0
        elif high < threshold:
            out[i] = 0.0
    return out


def _status_column(names: list[str]) -> str | None:
    norm = {n.strip().lower(): n for n in names}
    for want in STATUS_NAMES:
        if want in norm:
            return norm[want]
    return None


def _outcome(meta: pa.Table, column: str | None, threshold: int) -> tuple[np.ndarray, dict]:
    """The binary outcome of each metadata row and a summary for the provenance."""
    names = meta.column_names
    if column is None and "outcome_who" in names:
        who = meta["outcome_who"].to_pylist()
        coding = {"coded": "when the collection was added (strains add --status-column)"}
        column_used = "outcome_who"
    else:
        column_used = column or _status_column(names)
        if column_used is None:
            shown = ", ".join(names[:15])
            raise InputError(
                "no patient status to code: name its column with --outcome-column "
                f"(metadata columns: {shown})"
            )
        if column_used not in names:
            raise InputError(f"no metadata column {column_used!r} (columns: {', '.join(names)})")
        code_columns = capability("clinical-text.code-columns")
        coded, coding = code_columns(
            pa.table({column_used: meta[column_used]}), [], status_column=column_used
        )
        who = coded["outcome_who"].to_pylist()
    y = outcome_from_who(who, threshold)
    texts = meta[column_used].to_pylist()
    unplaced = Counter(t for t, v in zip(texts, y, strict=True) if v != v and t)
    summary = {
        "column": column_used,
        "threshold": threshold,
        "rule": f"1 when the WHO clinical progression band is all >= {threshold}, 0 when all "
        "below, missing otherwise",
        "coding": coding,
        "severe": int(np.nansum(y)),
        "not_severe": int(np.sum(y == 0)),
        "missing": int(np.isnan(y).sum()),
        "missing_texts": dict(unplaced.most_common(10)),
    }
    return y, summary


def _numbers(name: str, values: list[str]) -> np.ndarray | None:
    """Floats of a text column (NaN for missing), or None when some value is not a number."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        t = (v or "").strip()
        if t.lower() in MISSING_TEXT:
            continue
        try:
            out[i] = float(t)
        except ValueError:
            return None
    return out


# -- covariates and strata -------------------------------------------------------------------
def _dates(values: list[str]) -> np.ndarray:
    """Days (proleptic ordinal) of ``YYYY-MM-DD``; ``YYYY-MM`` is the month's 15th; anything
    coarser or unreadable is NaN."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        t = (v or "").strip()
        try:
            if len(t) == 10:
                out[i] = dt.date.fromisoformat(t).toordinal()
            elif len(t) == 7:
                out[i] = dt.date.fromisoformat(t + "-15").toordinal()
        except ValueError:
            continue
    return out


def _date_bins(days: np.ndarray, how: str) -> list[str]:
    out = []
    for d in days:
        if d != d:
            out.append("")
            continue
        day = dt.date.fromordinal(int(d))
        out.append(
            f"{day.year}-{day.month:02d}"
            if how == "month"
            else f"{day.year}Q{(day.month - 1) // 3 + 1}"
            if how == "quarter"
            else str(day.year)
        )
    return out


def _text(values: list[str]) -> list[str]:
    return ["" if (v or "").strip().lower() in MISSING_TEXT else v.strip() for v in values]


def _indicators(name: str, values: list[str], ok: np.ndarray, min_level: int):
    """Indicator columns of a text column over the rows ``ok``: (matrix, names, levels note)."""
    counts = Counter(v for v, k in zip(values, ok, strict=True) if k)
    common = {v for v, c in counts.items() if c >= min_level}
    level = [v if v in common else "other" for v in values]
    counts = Counter(v for v, k in zip(level, ok, strict=True) if k)
    if len(counts) < 2:
        return np.zeros((len(values), 0)), [], f"{name}: one level only, no columns"
    reference = max(sorted(counts), key=lambda v: counts[v])
    levels = sorted(v for v in counts if v != reference)
    X = np.column_stack([[1.0 if v == lv else 0.0 for v in level] for lv in levels])
    pooled = sorted(set(values) - common - {""})
    note = f"{name}: reference level {reference!r}, {len(levels)} indicator column(s)"
    if pooled:
        note += f"; {len(pooled)} level(s) under {min_level} genomes pooled as 'other'"
    return X, [f"{name}={lv}" for lv in levels], note


# -- the inputs ----------------------------------------------------------------------------------
def collection_inputs(
    store,
    collection: str,
    trait: str,
    covariates: Sequence[str] = (),
    *,
    strata: Sequence[str] = (),
    outcome_column: str | None = None,
    outcome_threshold: int = DEFAULT_THRESHOLD,
    kinds: Sequence[str] = ("substitutions", "deletions", "insertions"),
    min_count: int = 5,
    statuses: Sequence[str] = ("good", "mediocre", "bad"),
    date_bin: str = "quarter",
    min_level: int = 5,
) -> CollectionInputs:
    """The genotypes, traits and strata of an analysis of collection ``collection``.

    ``trait`` is :data:`OUTCOME` (the coded patient status, module docstring) or a numeric
    metadata column. ``covariates`` and ``strata`` name metadata columns (``date`` is the
    collection's date column). Genomes without the trait, a covariate or a stratum are dropped
    and counted. Raises :class:`~sandgrain.errors.InputError` for unknown columns and options.
    """
    if date_bin not in DATE_BINS:
        raise InputError(f"--date-bin is month, quarter or year, not {date_bin!r}")
    if min_level < 1:
        raise InputError("the fewest genomes of a covariate level is at least 1")
    covariates = [c.strip() for c in covariates if c.strip()]
    strata = [c.strip() for c in strata if c.strip()]
    for group in (covariates, strata):
        if len(set(group)) != len(group):
            raise InputError("a covariate or stratum is named twice")
    feats = capability("strains.mutation-features")(
        store, collection, kinds=list(kinds), min_count=min_count, statuses=list(statuses)
    )
    meta = feats.metadata
    names = meta.column_names
    date_column = feats.date_column if feats.date_column in names else "date"

    def column(name: str) -> list[str]:
        real = date_column if name == "date" else name
        if real not in names:
            raise InputError(
                f"collection {collection!r} has no metadata column {name!r} (columns: "
                f"{', '.join(names[:15])})"
            )
        return meta[real].to_pylist()

    n = len(feats.strains)
    outcome = None
    if trait == OUTCOME:
        y, outcome = _outcome(meta, outcome_column, outcome_threshold)
    else:
        if outcome_column is not None:
            raise InputError("--outcome-column codes the trait 'outcome'; use --trait outcome")
        y = _numbers(trait, column(trait))
        if y is None:
            raise InputError(
                f"metadata column {trait!r} is not numeric; a patient status is coded with "
                "--trait outcome --outcome-column COLUMN"
            )
    ok = ~np.isnan(y)
    if outcome is not None and not ok.any():
        shown = ", ".join(repr(t) for t in list(outcome["missing_texts"])[:5])
        raise InputError(
            f"no text of column {outcome['column']!r} reads as an outcome at threshold "
            f"{outcome_threshold} (e.g. {shown or 'all empty'}); name the status column with "
            "--outcome-column"
        )
    notes: list[str] = []
    # covariates: first which rows have them all, then their columns over those rows
    raw: list[tuple[str, str, Any]] = []
    for name in covariates:
        values = column(name)
        if name == "date":
            days = _dates(values)
            raw.append((name, "date", days))
            ok &= ~np.isnan(days)
            continue
        nums = _numbers(name, values)
        if nums is not None:
            raw.append((name, "number", nums))
            ok &= ~np.isnan(nums)
        else:
            texts = _text(values)
            raw.append((name, "text", texts))
            ok &= np.array([t != "" for t in texts])
    strata_text: list[list[str]] = []
    for name in strata:
        values = column(name)
        labels = _date_bins(_dates(values), date_bin) if name == "date" else _text(values)
        strata_text.append(labels)
        ok &= np.array([t != "" for t in labels])
    if not ok.any():
        raise InputError(
            f"no genome of collection {collection!r} has the trait {trait!r}"
            + (" and every covariate and stratum" if covariates or strata else "")
        )
    blocks, cov_names = [], []
    for name, kind, values in raw:
        if kind == "date":
            first = np.nanmin(values[ok])
            blocks.append(((values - first) / 365.25)[:, None])
            cov_names.append("date")
            notes.append(
                f"date: years since {dt.date.fromordinal(int(first)).isoformat()} "
                f"(column {date_column!r})"
            )
        elif kind == "number":
            blocks.append(values[:, None])
            cov_names.append(name)
        else:
            X, cols, note = _indicators(name, values, ok, min_level)
            blocks.append(X)
            cov_names += cols
            notes.append(note)
    kept = np.nonzero(ok)[0]
    x_cov = (
        np.column_stack([b[kept] for b in blocks]) if blocks else np.zeros((len(kept), 0))
    ).astype(np.float64)
    dropped = [feats.strains[i] for i in np.nonzero(~ok)[0]]
    yk = y[kept]
    traits = Traits(
        yk, x_cov, cov_names, kept,
        binary=bool(np.isin(yk, (0.0, 1.0)).all()), dropped=dropped, trait=trait,
    )  # fmt: skip
    strata_codes, strata_levels = None, []
    if strata:
        combined = ["|".join(t[i] for t in strata_text) for i in kept.tolist()]
        levels, codes_of = np.unique(np.array(combined, dtype=object), return_inverse=True)
        strata_levels = [str(s) for s in levels]
        strata_codes = codes_of.ravel().astype(np.int64)
    # the features as haploid dosages: 0 absent, 2 present, 3 not read
    codes = feats.codes
    dosage = np.where(codes == 1, 2, np.where(codes == 0, 0, MISSING)).astype(np.uint8)
    variants = feats.features.select(["chrom", "pos", "id", "ref", "alt"])
    matrix = GenotypeMatrix(feats.strains, variants, packed=pack(dosage) if len(dosage) else
                            np.zeros((0, (n + 3) // 4), np.uint8))  # fmt: skip
    matrix.source = {"collection": feats.collection, "version": feats.version}
    source = {**feats.provenance_input(), "dataset": "strains"}
    parameters = {
        "collection": feats.collection,
        "collection_version": feats.version,
        "features": {**feats.parameters, **feats.counts},
        "trait": trait,
        "covariates": covariates,
        "covariate_columns": cov_names,
        "strata": strata,
        "date_bin": date_bin if "date" in strata else None,
        "min_level": min_level,
        "genomes": int(len(kept)),
        "dropped_genomes": len(dropped),
    }
    if outcome is not None:
        parameters["outcome"] = outcome
    return CollectionInputs(
        matrix=matrix,
        traits=traits,
        features=feats.features,
        strata=strata_codes,
        strata_levels=strata_levels,
        source=source,
        parameters=parameters,
        outcome=outcome,
        notes=notes,
    )


# -- the tests -----------------------------------------------------------------------------------
def cmh_counts(
    a, b, c, d, *, correction: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cochran–Mantel–Haenszel test over strata: arrays (tests, strata) of 2×2 tables
    [[a, b], [c, d]]. Returns ``(log of the Mantel–Haenszel odds ratio, its Robins–Breslow–
    Greenland SE, the χ² statistic, p)``.

    χ² = (|Σₖ aₖ − Σₖ E aₖ| − ½)² / Σₖ Var aₖ (the ½ only with ``correction``, as Mantel &
    Haenszel 1959), E aₖ = (aₖ+bₖ)(aₖ+cₖ)/nₖ, Var aₖ = (aₖ+bₖ)(cₖ+dₖ)(aₖ+cₖ)(bₖ+dₖ) /
    (nₖ²(nₖ−1)); strata of fewer than two count nothing. OR_MH = Σ aₖdₖ/nₖ / Σ bₖcₖ/nₖ.
    Equals statsmodels' ``StratifiedTable`` (``test_null_odds``, ``oddsratio_pooled``,
    ``logodds_pooled_se``) in the tests.
    """
    a, b, c, d = (np.asarray(x, dtype=np.float64) for x in (a, b, c, d))
    n = a + b + c + d
    big = n > 1
    nn = np.where(big, n, 2.0)
    expected = np.where(big, (a + b) * (a + c) / nn, 0.0)
    var = np.where(big, (a + b) * (c + d) * (a + c) * (b + d) / (nn * nn * (nn - 1)), 0.0)
    dev = np.abs((np.where(big, a, 0.0) - expected).sum(axis=1))
    if correction:
        dev = np.maximum(dev - 0.5, 0.0)
    V = var.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(V > 0, dev * dev / V, np.nan)
        R = np.where(big, a * d / nn, 0.0)
        S = np.where(big, b * c / nn, 0.0)
        P = np.where(big, (a + d) / nn, 0.0)
        Q = np.where(big, (b + c) / nn, 0.0)
        Rs, Ss = R.sum(axis=1), S.sum(axis=1)
        beta = np.log(Rs / Ss)
        var_log = (
            (P * R).sum(axis=1) / (2 * Rs * Rs)
            + (P * S + Q * R).sum(axis=1) / (2 * Rs * Ss)
            + (Q * S).sum(axis=1) / (2 * Ss * Ss)
        )
        se = np.sqrt(var_log)
    beta = np.where(np.isfinite(beta), beta, np.nan)
    se = np.where(np.isfinite(se), se, np.nan)
    p = np.where(np.isfinite(chi2), stats.chi2.sf(chi2, 1), np.nan)
    return beta, se, chi2, p


def stratum_tables(D: np.ndarray, case: np.ndarray, strata: np.ndarray, n_strata: int):
    """Per test row and stratum, the genome counts ``(a, b, c, d)``: carriers among cases and
    controls, non-carriers among cases and controls (genomes that read the site only).
    ``D`` is features × genomes dosages (0 absent, > 0 present, :data:`MISSING` unknown)."""
    carrier = ((D != MISSING) & (D > 0)).astype(np.float32)
    absent = (D == 0).astype(np.float32)
    H = np.zeros((len(case), n_strata), dtype=np.float32)
    H[np.arange(len(case)), strata] = 1.0
    Hc = H * case[:, None]
    Hn = H * (~case)[:, None]
    return (
        np.rint(carrier @ Hc).astype(np.int64),
        np.rint(carrier @ Hn).astype(np.int64),
        np.rint(absent @ Hc).astype(np.int64),
        np.rint(absent @ Hn).astype(np.int64),
    )


def collection_test(
    inputs: CollectionInputs,
    test: str,
    *,
    statistic: str = "wald",
    impute_rule: str = "mean",
    correction: bool = True,
) -> AssociationResults:
    """One test of every feature of a collection (:func:`collection_inputs`) against its trait.

    Without strata: ``linear``, ``logistic`` and ``firth`` regress the trait on the covariates
    and the presence (0/1) of the mutation, an unknown presence imputed by ``impute_rule``;
    ``fisher`` is the exact test on genome counts; ``trend`` the Cochran–Armitage test on them
    (for a 0/1 feature, the score test of the 2×2 table). With strata, ``fisher`` and ``trend``
    become the Cochran–Mantel–Haenszel test (its ``statistic`` is χ², the run's test is
    ``cmh``). ``af`` is the share of genomes carrying the mutation among those that read the
    site and have the trait; ``n`` counts those genomes.
    """
    traits = inputs.traits
    kept = traits.kept
    D = inputs.matrix.dosages(0, inputs.matrix.n_variants)[:, kept]
    called = D != MISSING
    carriers = (called & (D > 0)).sum(axis=1)
    n_called = called.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = carriers / n_called
    name = test
    if inputs.strata is not None:
        if test not in ("fisher", "trend", "cmh"):
            raise InputError(
                f"--strata goes with --test fisher or trend (the Cochran-Mantel-Haenszel test); "
                f"for {test}, give the columns as --covariates"
            )
        if traits.cov_names:
            raise InputError("--strata takes no --covariates (strata adjust for them)")
        if statistic != "wald":
            raise InputError("--statistic applies to logistic and firth")
        y = traits.y
        if not np.isin(y, (0.0, 1.0)).all() or y.min() == y.max():
            raise InputError("the Cochran-Mantel-Haenszel test needs a 0/1 trait with both values")
        warn_small_sample(y, True, 1, "the Cochran-Mantel-Haenszel test")
        tables = stratum_tables(D, y == 1, inputs.strata, len(inputs.strata_levels))
        res = cmh_counts(*tables, correction=correction)
        name = "cmh"
    else:
        y, C = prepare(traits, test, statistic)
        if test == "fisher":
            case = y == 1
            present = called & (D > 0)
            a = (present & case).sum(axis=1)
            b = (present & ~case).sum(axis=1)
            c = ((D == 0) & case).sum(axis=1)
            d = ((D == 0) & ~case).sum(axis=1)
            res = fisher_counts(a, b, c, d)
        else:
            # presence 0/1 (3 stays unknown): beta per presence; trend scores 0, 1
            D01 = np.where(called, (D > 0).astype(np.uint8), MISSING).astype(np.uint8)
            cols = block_columns(D01, y, C, test, statistic, impute_rule)
            res = tuple(cols[k] for k in COLUMNS[:4])
    columns = {k: np.asarray(v, dtype=np.float64) for k, v in zip(COLUMNS[:4], res, strict=True)}
    columns["af"] = np.asarray(share, dtype=np.float64)
    columns["n"] = n_called.astype(np.int64)
    out = results_table(inputs.matrix.variants, columns, traits, name, statistic)
    out.extra.update(
        {
            "collection": inputs.parameters["collection"],
            "collection_version": inputs.parameters["collection_version"],
            **({"strata": len(inputs.strata_levels)} if inputs.strata is not None else {}),
        }
    )
    return out
