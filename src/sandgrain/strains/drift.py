"""Drift: how far genomes are from the root against when they were collected.

Per genome, the **distance from the root** is

- ``substitutions`` (default): the number of nucleotide substitutions separating it from the
  root, from its calls. With ``root="reference"`` that is its substitution count; with
  ``root="earliest"`` the root is the majority consensus of the genomes collected within
  ``root_days`` of the first date (the substitutions more than half of them carry), and the
  distance counts the substitutions in one but not the other, skipping root substitutions that
  fall in the genome's missing ranges;
- ``kmers``: the k-mer count (L1) distance between its profile and the root's (for 0/1 counts,
  the Hamming distance in profile space). Each substitution changes up to 2k k-mers, and
  missing data counts as difference: filter genomes with much N first (QC ``bad``).

The **drift rate** is the slope of an ordinary least-squares regression of distance on the
collection date in years (root-to-tip regression, as TempEst does: Rambaut et al. 2016), with its
95 % t confidence interval, fitted with statsmodels. Genomes of one epidemic share ancestry, so
their distances are not independent and the interval is too narrow as a statement about the
clock; it describes the collection. Dates that are not complete days (``2020-03``,
``2020-XX-XX``) are left out and counted.

**Acceleration.** Two views: the slope within each time window (``window_days``, 30 by default;
windows with at least ``min_per_window`` genomes spread over at least half the window), and a
test of a quadratic term: the regression ``distance ~ t + t²`` (t centred), whose t² coefficient
c gives the change of the rate, ``2c`` per year per year, with its 95 % interval and p-value.
A rate that grows (variants of concern did: Tay et al. 2022) shows as a positive, significant c.

**The published clock.** SARS-CoV-2 accumulates ≈ 8 × 10⁻⁴ substitutions per site per year
(Nextstrain's clock rate for its SARS-CoV-2 builds; Duchene et al. 2020 estimated 1.1 × 10⁻³,
95 % HPD 7.0 × 10⁻⁴ to 1.5 × 10⁻³, from the first months' genomes): ≈ 24 substitutions per
29,903-base genome per year. :func:`fit_drift` reports its rate per site and the ratio to it.

References
----------
.. [1] Rambaut A, Lam TT, Carvalho LM, Pybus OG. "Exploring the temporal structure of
   heterochronous sequences using TempEst." Virus Evolution 2:vew007, 2016.
.. [2] Duchene S, Featherstone L, Haritopoulou-Sinanidou M, Rambaut A, Lemey P, Baele G.
   "Temporal signal and the phylodynamic threshold of SARS-CoV-2." Virus Evolution 6:veaa061,
   2020.
.. [3] Tay JH, Porter AF, Wirth W, Duchene S. "The emergence of SARS-CoV-2 variants of concern
   is driven by acceleration of the substitution rate." Mol Biol Evol 39:msac013, 2022.
.. [4] Hadfield J, et al. "Nextstrain: real-time tracking of pathogen evolution."
   Bioinformatics 34:4121-4123, 2018.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .kmers import KmerSpace

__all__ = [
    "PUBLISHED_CLOCK",
    "DriftFit",
    "decimal_years",
    "fit_drift",
    "plot_drift",
    "root_distances",
]

#: The published SARS-CoV-2 clock the docs and reports compare with (see the module docstring).
PUBLISHED_CLOCK = {
    "substitutions_per_site_per_year": 8e-4,
    "genome_length": 29903,
    "substitutions_per_genome_per_year": 8e-4 * 29903,
    "source": "Nextstrain SARS-CoV-2 clock rate (Hadfield et al. 2018); Duchene et al. 2020: "
    "1.1e-3 (95% HPD 7.0e-4 to 1.5e-3)",
}
ROOTS = ("reference", "earliest")
METRICS = ("substitutions", "kmers")


def decimal_years(dates: Sequence[str | None]) -> np.ndarray:
    """``YYYY-MM-DD`` dates as decimal years (2020-07-02 → 2020.5); NaN for anything else."""
    out = np.full(len(dates), np.nan)
    for i, text in enumerate(dates):
        if not text or len(text) != 10:
            continue
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            continue
        start = dt.date(day.year, 1, 1)
        length = (dt.date(day.year + 1, 1, 1) - start).days
        out[i] = day.year + (day - start).days / length
    return out


def _in_missing(position: int, missing: Sequence[str]) -> bool:
    for r in missing:
        a, _, b = r.partition("-")
        if int(a) <= position <= int(b or a):
            return True
    return False


def root_distances(
    read_calls: Callable[[], Iterable[Sequence[Any]]],
    dates: Mapping[str, str],
    *,
    root: str = "reference",
    metric: str = "substitutions",
    root_days: int = 14,
    space: KmerSpace | None = None,
) -> dict[str, Any]:
    """Distance from the root of every genome with a complete date.

    ``read_calls()`` yields batches of calls (as ``Collection.iter_calls``); ``dates`` maps a
    strain to its collection date. Returns columns ``strain``, ``date``, ``years``,
    ``distance`` (numpy arrays), the root's substitutions and how many genomes were left out.
    """
    if root not in ROOTS:
        raise InputError(f"the root is one of {', '.join(ROOTS)}, not {root!r}")
    if metric not in METRICS:
        raise InputError(f"the distance is one of {', '.join(METRICS)}, not {metric!r}")
    if metric == "kmers" and space is None:
        raise InputError("the k-mer distance needs the reference's k-mer space")
    years_of = {s: y for s, y in zip(dates, decimal_years(list(dates.values())), strict=True)}
    known = [y for y in years_of.values() if np.isfinite(y)]
    if not known:
        raise InputError("no genome has a complete collection date (YYYY-MM-DD)")
    root_subs: set[str] = set()
    if root == "earliest":
        cutoff = min(known) + root_days / 365.25
        counts: Counter[str] = Counter()
        n_early = 0
        for batch in read_calls():
            for c in batch:
                if years_of.get(c.strain, np.nan) <= cutoff:
                    n_early += 1
                    counts.update(c.substitutions)
        root_subs = {s for s, n in counts.items() if n > n_early / 2}
    root_delta = None
    if metric == "kmers":
        from types import SimpleNamespace

        root_calls = SimpleNamespace(
            strain="root", substitutions=sorted(root_subs), deletions=[], insertions=[], missing=[]
        )
        root_delta = space.delta(root_calls)
    strains, out_dates, years, distance = [], [], [], []
    undated = 0
    for batch in read_calls():
        batch = list(batch)
        kept = [c for c in batch if np.isfinite(years_of.get(c.strain, np.nan))]
        undated += len(batch) - len(kept)
        if not kept:
            continue
        if metric == "kmers":
            deltas = space.deltas(kept)
            d = [(deltas.row(i) - root_delta).l1() for i in range(len(kept))]
        elif root_subs:
            d = []
            for c in kept:
                own = set(c.substitutions)
                lost = [s for s in root_subs - own if not _in_missing(int(s[1:-1]), c.missing)]
                d.append(len(own - root_subs) + len(lost))
        else:
            d = [len(c.substitutions) for c in kept]
        strains.extend(c.strain for c in kept)
        out_dates.extend(dates[c.strain] for c in kept)
        years.extend(years_of[c.strain] for c in kept)
        distance.extend(d)
    return {
        "strain": strains,
        "date": out_dates,
        "years": np.array(years, np.float64),
        "distance": np.array(distance, np.float64),
        "root": root,
        "metric": metric,
        "root_substitutions": sorted(root_subs, key=lambda s: int(s[1:-1])),
        "undated": undated,
    }


@dataclass
class DriftFit:
    """A root-to-tip regression and its acceleration tests (see the module docstring)."""

    n: int
    unit: str
    rate: float
    rate_ci: tuple[float, float]
    intercept: float
    root_year: float  # where the regression line meets distance 0 (the root's estimated date)
    r2: float
    p_value: float
    rate_per_site: float | None
    published_ratio: float | None
    acceleration: dict[str, Any]
    windows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ols(x: np.ndarray, y: np.ndarray, quadratic: bool = False):
    import statsmodels.api as sm

    cols = [x, x**2] if quadratic else [x]
    return sm.OLS(y, sm.add_constant(np.column_stack(cols), has_constant="add")).fit()


def fit_drift(
    years: np.ndarray,
    distance: np.ndarray,
    *,
    window_days: int = 30,
    min_per_window: int = 10,
    genome_length: int | None = None,
    unit: str = "substitutions",
) -> DriftFit:
    """Regress distance on date (years); per-window rates; the quadratic-term test.

    ``genome_length`` gives the rate per site (substitutions only) and its ratio to the
    published SARS-CoV-2 clock.
    """
    x, y = np.asarray(years, np.float64), np.asarray(distance, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0:
        raise InputError("a drift rate needs at least 3 genomes collected on different dates")
    if window_days < 1 or min_per_window < 3:
        raise InputError("windows are at least a day long and hold at least 3 genomes")
    fit = _ols(x, y)
    lo, hi = fit.conf_int(0.05)[1]
    rate, intercept = float(fit.params[1]), float(fit.params[0])
    # the quadratic term, with t centred so that the linear and squared terms are not collinear
    centre = float(x.mean())
    quad = _ols(x - centre, y, quadratic=True)
    c_lo, c_hi = quad.conf_int(0.05)[2]
    acceleration = {
        "quadratic_coefficient": float(quad.params[2]),
        "quadratic_ci": (float(c_lo), float(c_hi)),
        "p_value": float(quad.pvalues[2]),
        "rate_change_per_year": float(2 * quad.params[2]),
        "accelerating": bool(quad.pvalues[2] < 0.05 and quad.params[2] > 0),
        "decelerating": bool(quad.pvalues[2] < 0.05 and quad.params[2] < 0),
    }
    windows = []
    width = window_days / 365.25
    first = float(x.min())
    n_windows = int(np.floor((x.max() - first) / width)) + 1
    which = np.minimum(((x - first) / width).astype(np.int64), n_windows - 1)
    for w in range(n_windows):
        sel = which == w
        start = first + w * width
        row: dict[str, Any] = {
            "start": _year_to_date(start),
            "end": _year_to_date(start + width),
            "n": int(sel.sum()),
        }
        # a window's own regression needs its genomes spread over at least half of it (the
        # last, partial window often is not)
        if sel.sum() >= min_per_window and np.ptp(x[sel]) >= width / 2:
            wf = _ols(x[sel], y[sel])
            wlo, whi = wf.conf_int(0.05)[1]
            row.update(rate=float(wf.params[1]), ci=(float(wlo), float(whi)),
                       mean_distance=float(y[sel].mean()))  # fmt: skip
        windows.append(row)
    per_site = rate / genome_length if genome_length and unit == "substitutions" else None
    return DriftFit(
        n=int(len(x)),
        unit=unit,
        rate=rate,
        rate_ci=(float(lo), float(hi)),
        intercept=intercept,
        root_year=float(-intercept / rate) if rate else float("nan"),
        r2=float(fit.rsquared),
        p_value=float(fit.pvalues[1]),
        rate_per_site=per_site,
        published_ratio=(
            per_site / PUBLISHED_CLOCK["substitutions_per_site_per_year"] if per_site else None
        ),
        acceleration=acceleration,
        windows=windows,
    )


def _year_to_date(year: float) -> str:
    whole = int(np.floor(year))
    start = dt.date(whole, 1, 1)
    length = (dt.date(whole + 1, 1, 1) - start).days
    return (start + dt.timedelta(days=int(round((year - whole) * length)))).isoformat()


def plot_drift(
    years: np.ndarray, distance: np.ndarray, fit: DriftFit, path, title: str = ""
) -> None:
    """A PNG: distance against date with the regression line, and the per-window rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(8, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}
    )
    top.scatter(years, distance, s=6, alpha=0.4, color="#3b6ea8", linewidths=0)
    xs = np.linspace(np.nanmin(years), np.nanmax(years), 50)
    lo, hi = fit.rate_ci
    top.plot(xs, fit.intercept + fit.rate * xs, color="#c0392b",
             label=f"{fit.rate:.1f} {fit.unit}/year (95% CI {lo:.1f} to {hi:.1f})")  # fmt: skip
    if fit.unit == "substitutions":
        published = PUBLISHED_CLOCK["substitutions_per_genome_per_year"]
        top.plot(xs, published * (xs - fit.root_year), color="#7f8c8d", linestyle="--",
                 label=f"published clock, {published:.0f}/year")  # fmt: skip
    top.set_ylabel(f"distance from root ({fit.unit})")
    top.legend(loc="upper left", frameon=False)
    top.set_title(title or "Drift from the root")
    done = [w for w in fit.windows if "rate" in w]
    if done:
        mids = [np.mean(decimal_years([w["start"], w["end"]])) for w in done]
        rates = np.array([w["rate"] for w in done])
        err = np.array([[w["rate"] - w["ci"][0], w["ci"][1] - w["rate"]] for w in done]).T
        bottom.errorbar(mids, rates, yerr=err, fmt="o", color="#3b6ea8", ms=3, capsize=2)
        if fit.rate > 0:  # keep one wide interval from flattening the others
            low = min(-0.5 * fit.rate, float((rates - err[0]).min()))
            high = max(3 * fit.rate, float((rates + err[1]).max()))
            bottom.set_ylim(max(low, -2 * fit.rate), min(high, 5 * fit.rate))
    bottom.axhline(fit.rate, color="#c0392b", linewidth=1)
    bottom.set_ylabel("rate per window")
    bottom.set_xlabel("collection date (years)")
    # decimal years over a short span: no "+2.02e3" offset, the years written out
    bottom.xaxis.get_major_formatter().set_useOffset(False)
    fig.tight_layout()
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, target)  # atomic: a reader never sees half a PNG
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        plt.close(fig)


#: QC statuses of the genomes the drift of a collection counts by default.
DRIFT_QC = "good,mediocre"


def collection_drift(
    coll,
    *,
    root: str = "reference",
    metric: str = "substitutions",
    root_days: int = 14,
    window_days: int = 30,
    min_per_window: int = 10,
    qc: str = DRIFT_QC,
) -> dict[str, Any]:
    """The drift of a strains collection (``Collection``-like: ``reference()``, ``metadata()``
    with ``strain`` and ``date``, ``iter_calls(batch=…, strains=…)`` and, for the QC filter,
    ``qc_table()``): ``{"found": root_distances(…), "fit": DriftFit, "qc_left_out": n}``.

    ``qc``: the QC statuses counted, comma-separated (default good and mediocre: a bad genome's
    N runs and frame shifts are not substitutions), or ``all``. The CLI and the web API both
    answer through this function.
    """
    from .qc import STATUSES

    reference = coll.reference()
    meta = coll.metadata()
    if "date" not in meta.column_names:
        raise InputError(f"collection {coll.name} has no date column in its metadata")
    dates = {
        s: str(d) if d is not None else ""
        for s, d in zip(meta.column("strain").to_pylist(), meta.column("date").to_pylist(),
                        strict=True)
    }  # fmt: skip
    kept, left_out = None, 0
    if qc.strip().lower() != "all" and hasattr(coll, "qc_table"):
        wanted = {w.strip() for w in qc.split(",") if w.strip()}
        if not wanted or not wanted <= set(STATUSES):
            raise InputError(f"--qc takes statuses from {', '.join(STATUSES)}, or all; not {qc!r}")
        table = coll.qc_table()
        names, statuses = table.column("strain").to_pylist(), table.column("status").to_pylist()
        kept = [s for s, st in zip(names, statuses, strict=True) if st in wanted]
        left_out = len(names) - len(kept)
        if not kept:
            raise InputError(f"no genome of {coll.name} has QC status {qc}")
    space = KmerSpace(reference) if metric == "kmers" else None
    found = root_distances(
        lambda: coll.iter_calls(batch=2000, **({} if kept is None else {"strains": kept})),
        dates, root=root, metric=metric, root_days=root_days, space=space,
    )  # fmt: skip
    fit = fit_drift(
        found["years"], found["distance"], window_days=window_days,
        min_per_window=min_per_window, genome_length=len(reference), unit=metric,
    )  # fmt: skip
    return {"found": found, "fit": fit, "qc_left_out": left_out}
