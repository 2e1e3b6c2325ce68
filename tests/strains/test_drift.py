"""Drift: the regression equals its closed form, recovers a planted clock and its acceleration."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import DATA
from scipy import stats

from sandgrain.errors import InputError
from sandgrain.strains.drift import (
    PUBLISHED_CLOCK,
    decimal_years,
    fit_drift,
    plot_drift,
    root_distances,
)
from sandgrain.strains.kmers import KmerSpace
from sandgrain.strains.simulate import SimulationParams, simulate

SARS_REF = DATA / "pathogen/sars-cov-2-ncov-example/reference_seq.fasta"


@pytest.fixture(scope="module")
def reference() -> str:
    return "".join(SARS_REF.read_text().splitlines()[1:])


def star(reference, **kw):
    """Every genome straight from the root (a parent lag longer than the span): independent
    distances, the case where the regression's confidence interval holds."""
    params = dict(n=700, span_days=548, parent_lag_days=1e6, clade_prob=0.0)
    params.update(kw)
    return list(simulate(reference, SimulationParams(**params)))


def distances(genomes, **kw):
    dates = {g.strain: g.date for g in genomes}
    return root_distances(lambda: [[g.calls for g in genomes[i : i + 100]]
                                   for i in range(0, len(genomes), 100)], dates, **kw)  # fmt: skip


def closed_form(x, y):
    """The plain twin of the regression: slope, its 95 % t interval, R²."""
    n = len(x)
    sxx = ((x - x.mean()) ** 2).sum()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    intercept = y.mean() - slope * x.mean()
    resid = y - intercept - slope * x
    se = np.sqrt((resid**2).sum() / (n - 2) / sxx)
    t = stats.t.ppf(0.975, n - 2)
    r2 = 1 - (resid**2).sum() / ((y - y.mean()) ** 2).sum()
    return slope, (slope - t * se, slope + t * se), intercept, r2


def test_decimal_years():
    got = decimal_years(["2020-01-01", "2020-07-02", "2021-12-31", "2020-03", "2020-XX-XX", None])
    assert got[0] == 2020.0 and np.isclose(got[1], 2020 + 183 / 366)
    assert np.isclose(got[2], 2021 + 364 / 365) and np.isnan(got[3:]).all()


def test_the_regression_equals_its_closed_form_and_numpy():
    rng = np.random.default_rng(3)
    x = 2020 + rng.uniform(0, 2, 300)
    y = 24 * (x - 2020) + rng.normal(0, 4, 300)
    fit = fit_drift(x, y, window_days=90)
    slope, ci, intercept, r2 = closed_form(x, y)
    assert np.isclose(fit.rate, slope, rtol=1e-10) and np.allclose(fit.rate_ci, ci, rtol=1e-10)
    assert np.isclose(fit.intercept, intercept) and np.isclose(fit.r2, r2)
    # the quadratic term against numpy's least squares and the t distribution
    xc = x - x.mean()
    design = np.column_stack([np.ones_like(xc), xc, xc**2])
    beta, ssr, *_ = np.linalg.lstsq(design, y, rcond=None)
    cov = ssr[0] / (len(x) - 3) * np.linalg.inv(design.T @ design)
    p = 2 * stats.t.sf(abs(beta[2] / np.sqrt(cov[2, 2])), len(x) - 3)
    assert np.isclose(fit.acceleration["quadratic_coefficient"], beta[2], rtol=1e-8)
    assert np.isclose(fit.acceleration["p_value"], p, rtol=1e-6)
    # per-window rates are the regressions of each window's genomes
    w = fit.windows[1]
    sel = (x >= decimal_years([w["start"]])[0]) & (x < decimal_years([w["end"]])[0])
    assert w["n"] == sel.sum() and np.isclose(w["rate"], closed_form(x[sel], y[sel])[0], rtol=1e-6)


def test_a_constant_clock_is_recovered_and_not_called_accelerating(reference):
    genomes = star(reference, seed=4)
    d = distances(genomes)
    fit = fit_drift(d["years"], d["distance"], genome_length=len(reference))
    lo, hi = fit.rate_ci
    assert lo < 24.0 < hi and hi - lo < 3
    assert 0.85 < fit.published_ratio < 1.15
    assert np.isclose(fit.rate_per_site, fit.rate / 29903)
    assert not fit.acceleration["accelerating"] and fit.acceleration["p_value"] > 0.05
    assert 2019.8 < fit.root_year < 2020.1  # the line meets 0 near the root date (2019-12-26)
    rated = [w for w in fit.windows if "rate" in w]
    assert len(rated) >= 15 and np.median([w["rate"] for w in rated]) > 10


def test_an_accelerating_clock_is_detected(reference):
    genomes = star(reference, seed=5, rate_growth=1.5)
    d = distances(genomes)
    fit = fit_drift(d["years"], d["distance"])
    acc = fit.acceleration
    assert acc["accelerating"] and acc["p_value"] < 1e-6
    # planted: r(t) = 24 (1 + 1.5 t), so the rate grows by 36 per year
    lo, hi = (2 * c for c in acc["quadratic_ci"])
    assert lo < 36 < hi


def test_distance_from_the_earliest_genomes(reference):
    genomes = star(reference, n=300, seed=6, parent_lag_days=21.0)
    first = decimal_years([genomes[0].date])[0]
    early = [g for g in genomes if decimal_years([g.date])[0] <= first + 30 / 365.25]
    d = distances(genomes, root="earliest", root_days=30)
    common = {s for s in set().union(*(g.calls.substitutions for g in early))
              if sum(s in g.calls.substitutions for g in early) > len(early) / 2}  # fmt: skip
    assert d["root_substitutions"] == sorted(common, key=lambda s: int(s[1:-1]))
    by = dict(zip(d["strain"], d["distance"], strict=True))
    for g in genomes[::17]:
        own = set(g.calls.substitutions)
        hidden = {s for s in common - own if any(
            int(a) <= int(s[1:-1]) <= int(b or a)
            for a, _, b in (m.partition("-") for m in g.calls.missing))}  # fmt: skip
        assert by[g.strain] == len(own ^ common) - len(hidden)


def test_kmer_distance_is_about_2k_per_substitution(reference):
    genomes = star(reference, n=120, seed=7, trim_start_max=0, trim_end_max=0, dropout_prob=0,
                   bad_fraction=0, mixed_prob=0, indel_rate=0)  # fmt: skip
    space = KmerSpace(reference)
    d = distances(genomes, metric="kmers", space=space)
    subs = np.array([len(g.calls.substitutions) for g in genomes])
    assert np.array_equal(d["distance"], [space.delta(g.calls).l1() for g in genomes])
    ratio = d["distance"][subs > 0] / subs[subs > 0]
    assert np.all(ratio <= 20) and np.median(ratio) > 18  # 10 k-mers out, 10 in, unless close


def test_undated_genomes_are_left_out_and_counted():
    calls = [SimpleNamespace(strain=s, substitutions=[], deletions=[], insertions=[], missing=[])
             for s in "abc"]  # fmt: skip
    d = root_distances(lambda: [calls], {"a": "2020-01-01", "b": "2020-02", "c": "2020-03-01"})
    assert d["strain"] == ["a", "c"] and d["undated"] == 1
    with pytest.raises(InputError, match="complete collection date"):
        root_distances(lambda: [calls], {"a": "2020"})
    with pytest.raises(InputError, match="root is one of"):
        root_distances(lambda: [calls], {"a": "2020-01-01"}, root="tip")
    with pytest.raises(InputError, match="at least 3 genomes"):
        fit_drift(np.array([2020.0, 2020.0, 2020.0]), np.array([1.0, 2.0, 3.0]))


def test_plot_writes_a_png(reference, tmp_path):
    genomes = star(reference, n=200, seed=8)
    d = distances(genomes)
    fit = fit_drift(d["years"], d["distance"])
    out = tmp_path / "drift.png"
    plot_drift(d["years"], d["distance"], fit, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert list(tmp_path.iterdir()) == [out]


def test_published_clock_is_24_per_genome_per_year():
    assert round(PUBLISHED_CLOCK["substitutions_per_genome_per_year"]) == 24
