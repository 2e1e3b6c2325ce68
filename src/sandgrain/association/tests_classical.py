"""Classical per-variant association tests, vectorised over blocks of variants.

Every test here equals a plain reference in ``tests/association/test_classical.py``: statsmodels
OLS and Logit, scipy's ``fisher_exact``, a Cochran–Armitage statistic written from the formula
and an unvectorised Newton fit of Firth's penalised likelihood.

- **linear** — OLS of the trait on [1, covariates, dosage]. By the Frisch–Waugh–Lovell theorem
  the dosage's coefficient equals that of the trait residualised on the covariates regressed on
  the dosage residualised on them, so one QR of the covariates serves every variant and each
  variant costs two dot products; ``statistic`` is t with n − c − 2 degrees of freedom.
- **logistic** — logistic regression on [1, covariates, dosage] by Newton–Raphson, run for a
  whole block of variants at once (batched (c+2)×(c+2) solves), started at the covariates-only
  fit. ``--statistic wald`` (default, as PLINK 2 ``--glm``): z = β/SE; ``lrt``: 2(ℓ₁ − ℓ₀);
  ``score``: Rao's score test at the covariates-only fit, no per-variant fit at all (fastest),
  with β and SE its one-step estimates U/V and 1/√V. A variant whose fit does not converge
  (separation) gets NaN: use ``firth`` for it.
- **firth** — Firth's (1993) penalised likelihood ℓ(β) + ½ log|I(β)|, which has finite
  estimates under separation and less small-sample bias for rare variants (Heinze & Schemper
  2002). Newton steps with the modified score Uᵣ* = Σ (yᵢ − μᵢ + hᵢ(½ − μᵢ)) xᵢᵣ, hᵢ the hat
  values, and the information of Heinze & Schemper's augmented data Σ (1 + hᵢ) wᵢ xᵢ xᵢᵀ (exact
  for a singleton, whose own leverage stays 1: with I(β) alone, as logistf, the step lands as
  far past its optimum as it began before it, and back, for ever), steps capped at 5 and
  step-halving on the penalised likelihood (as logistf).
  ``wald`` uses SE from I(β̂)⁻¹ (logistf's ``var``); ``lrt`` is the penalised likelihood ratio
  with β_dosage = 0.
- **fisher** — Fisher's exact test on the 2×2 table of alleles (cases/controls × alt/ref) of
  called genotypes; two-sided p sums the tables no more probable than the observed (as
  ``scipy.stats.fisher_exact``); β = log odds ratio, SE Woolf's, ``statistic`` the odds ratio.
- **trend** — Cochran–Armitage trend test (Armitage 1955) on the 2×3 table of genotype counts
  with scores 0, 1, 2; ``statistic`` is the signed Z, β the slope of case status on dosage (the
  regression the test is the score test of) and SE = |β/Z|.

Genomic inflation λ (Devlin & Roeder 1999) = median of the 1-df χ² equivalents of the p-values
divided by the χ²₁ median 0.4549.

References: Firth D (1993) Bias reduction of maximum likelihood estimates. Biometrika 80:27-38.
Armitage P (1955) Tests for linear trends in proportions and frequencies. Biometrics 11:375-386.
Devlin B, Roeder K (1999) Genomic control for association studies. Biometrics 55:997-1004.
Purcell S et al. (2007) PLINK. Am J Hum Genet 81:559-575. Heinze G, Schemper M (2002) A solution
to the problem of separation in logistic regression. Stat Med 21:2409-2419.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from scipy import special, stats

from ..errors import InputError
from .genotypes import MISSING, impute
from .sample_size import warn_small_sample

__all__ = [
    "COLUMNS",
    "STATISTICS",
    "TESTS",
    "AssociationResults",
    "association_test",
    "block_columns",
    "firth_block",
    "fisher_block",
    "genomic_inflation",
    "linear_block",
    "logistic_block",
    "prepare",
    "results_table",
    "trend_block",
]

TESTS = ("linear", "logistic", "firth", "fisher", "trend")
STATISTICS = ("wald", "lrt", "score")
CHI2_MEDIAN = stats.chi2.ppf(0.5, 1)  # 0.45494…
MAX_ITER = 100
TOL = 1e-10
FIRTH_TOL = 1e-7

_Kernel = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # beta, se, statistic, p


def _nans(m: int) -> _Kernel:
    return tuple(np.full(m, np.nan) for _ in range(4))  # type: ignore[return-value]


# -- linear ---------------------------------------------------------------------------------------
def linear_block(G: np.ndarray, y: np.ndarray, C: np.ndarray) -> _Kernel:
    """OLS of ``y`` on [C, g] for each row g of ``G`` (m, n); ``C`` (n, k) includes the
    intercept. Frisch–Waugh–Lovell: β = (g̃·ỹ)/(g̃·g̃) with ~ the residual after C."""
    n, k = C.shape
    q, _ = np.linalg.qr(C)
    y_r = y - q @ (q.T @ y)
    G_r = G - (G @ q) @ q.T
    sxx = np.einsum("mn,mn->m", G_r, G_r)
    sxy = G_r @ y_r
    df = n - k - 1
    ok = sxx > 1e-12 * np.maximum(1.0, np.einsum("mn,mn->m", G, G))
    sxx_safe = np.where(ok, sxx, 1.0)
    beta = sxy / sxx_safe
    rss = np.maximum(y_r @ y_r - beta * sxy, 0.0)
    se = np.sqrt(rss / df / sxx_safe)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta / se
    p = 2 * stats.t.sf(np.abs(t), df)
    bad = ~ok
    for a in (beta, se, t, p):
        a[bad] = np.nan
    return beta, se, t, p


# -- logistic -------------------------------------------------------------------------------------
def _loglik(eta: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (y * eta - np.logaddexp(0.0, eta)).sum(axis=-1)


def logit_null(y: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Covariates-only logistic fit (Newton–Raphson); its coefficients."""
    b = np.zeros(C.shape[1])
    for _ in range(MAX_ITER):
        mu = special.expit(C @ b)
        w = mu * (1 - mu)
        step = np.linalg.solve(C.T @ (C * w[:, None]), C.T @ (y - mu))
        b = b + step
        if np.abs(step).max() < TOL:
            return b
    raise InputError("the covariates-only logistic model does not converge (separation?)")


def _information(w: np.ndarray, G: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Fisher information (m, k+1, k+1) of design [C, g] for each row of weights ``w`` (m, n)."""
    m, k = G.shape[0], C.shape[1]
    info = np.empty((m, k + 1, k + 1))
    info[:, :k, :k] = (w @ _outer(C)).reshape(m, k, k)
    wg = w * G
    cross = wg @ C
    info[:, :k, k] = cross
    info[:, k, :k] = cross
    info[:, k, k] = np.einsum("mn,mn->m", wg, G)
    return info


def _outer(C: np.ndarray) -> np.ndarray:
    """Rows c_i ⊗ c_i (n, k²): Σ_i w_i c_i c_iᵀ for many weight vectors is then one matmul."""
    return (C[:, :, None] * C[:, None, :]).reshape(C.shape[0], -1)


def _solve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched solve; rows whose matrix is singular get NaN and False."""
    try:
        return np.linalg.solve(a, b[..., None])[..., 0], np.ones(len(a), bool)
    except np.linalg.LinAlgError:
        out = np.full(b.shape, np.nan)
        good = np.zeros(len(a), bool)
        for i in range(len(a)):
            try:
                out[i] = np.linalg.solve(a[i], b[i])
                good[i] = True
            except np.linalg.LinAlgError:
                pass
        return out, good


def _eta(b: np.ndarray, G: np.ndarray, C: np.ndarray) -> np.ndarray:
    k = C.shape[1]
    return b[:, :k] @ C.T + b[:, k : k + 1] * G


def logistic_block(G: np.ndarray, y: np.ndarray, C: np.ndarray, statistic: str = "wald") -> _Kernel:
    """Logistic regression of ``y`` on [C, g] for each row g of ``G``, all rows at once."""
    m, k = G.shape[0], C.shape[1]
    b0 = logit_null(y, C)
    mu0 = special.expit(C @ b0)
    if statistic == "score":
        w0 = mu0 * (1 - mu0)
        u = G @ (y - mu0)
        cw = C * w0[:, None]
        gwc = G @ cw  # (m, k)
        proj = np.einsum("mi,ij,mj->m", gwc, np.linalg.inv(C.T @ cw), gwc)
        v = (G * G) @ w0 - proj
        ok = v > 1e-12
        v = np.where(ok, v, np.nan)
        chi2 = u * u / v
        beta, se = u / v, 1 / np.sqrt(v)
        return beta, se, chi2, stats.chi2.sf(chi2, 1)
    b = np.zeros((m, k + 1))
    b[:, :k] = b0
    active = np.ones(m, bool)
    converged = np.zeros(m, bool)
    for _ in range(MAX_ITER):
        idx = np.nonzero(active)[0]
        if not len(idx):
            break
        g = G[idx]
        mu = special.expit(_eta(b[idx], g, C))
        w = mu * (1 - mu)
        r = y - mu
        score = np.concatenate([r @ C, np.einsum("mn,mn->m", r, g)[:, None]], axis=1)
        step, good = _solve(_information(w, g, C), score)
        step[~good] = 0
        b[idx] += step
        done = good & (np.abs(step).max(axis=1) < TOL)
        diverged = ~good | ~np.isfinite(b[idx]).all(axis=1) | (np.abs(b[idx, k]) > 20)
        converged[idx[done & ~diverged]] = True
        active[idx[done | diverged]] = False
    mu = special.expit(_eta(b, G, C))
    w = mu * (1 - mu)
    info = _information(w, G, C)
    ok = converged.copy()
    cov = np.full_like(info, np.nan)
    inv_ok = ok & (np.linalg.cond(info) < 1e14)
    if inv_ok.any():
        cov[inv_ok] = np.linalg.inv(info[inv_ok])
    beta = np.where(inv_ok, b[:, k], np.nan)
    se = np.sqrt(cov[:, k, k])
    if statistic == "wald":
        z = beta / se
        return beta, se, z, 2 * stats.norm.sf(np.abs(z))
    if statistic == "lrt":
        chi2 = np.maximum(2 * (_loglik(_eta(b, G, C), y) - _loglik(C @ b0, y)), 0.0)
        chi2 = np.where(inv_ok, chi2, np.nan)
        return beta, se, chi2, stats.chi2.sf(chi2, 1)
    raise InputError(f"statistic {statistic!r}: use one of {', '.join(STATISTICS)}")


# -- Firth ----------------------------------------------------------------------------------------
def _penalised(b, G, y, C) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Penalised log-likelihood, modified score, the augmented information (the matrix of the
    Newton steps, :func:`_firth_fit`) and the inverse of the information I(β) at ``b``."""
    k = C.shape[1]
    eta = _eta(b, G, C)
    mu = special.expit(eta)
    w = mu * (1 - mu)
    info = _information(w, G, C)
    sign, logdet = np.linalg.slogdet(info)
    inv = np.linalg.inv(np.where((sign > 0)[:, None, None], info, np.eye(k + 1)))
    # hat values h_i = w_i x_iᵀ I⁻¹ x_i with x_i = [c_i, g_i]
    q = (
        np.ascontiguousarray(inv[:, :k, :k]).reshape(len(G), k * k) @ _outer(C).T
        + 2 * G * (inv[:, :k, k] @ C.T)
        + G * G * inv[:, k, k][:, None]
    )
    h = w * q
    r = y - mu + h * (0.5 - mu)
    score = np.concatenate([r @ C, np.einsum("mn,mn->m", r, G)[:, None]], axis=1)
    pll = _loglik(eta, y) + 0.5 * np.where(sign > 0, logdet, -np.inf)
    # Heinze & Schemper's (2002) augmented data: observation i counted 1 + hᵢ/2 times with its
    # response and hᵢ/2 times with the other one; their score is U*, their information
    # Σ (1 + hᵢ) wᵢ xᵢ xᵢᵀ, a far better Hessian for U* than I(β) where leverages are large
    return pll, score, _information(w * (1 + h), G, C), inv


def _firth_fit(G, y, C, b0, fix_dosage: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximise the penalised likelihood for every row; with ``fix_dosage`` the dosage's β stays
    0 (the constrained fit of the penalised LRT, penalty still of the full design)."""
    m, k = G.shape[0], C.shape[1]
    b = np.zeros((m, k + 1))
    b[:, :k] = b0
    free = k if fix_dosage else k + 1
    pll, score, info, _ = _penalised(b, G, y, C)
    active = np.ones(m, bool)
    converged = np.zeros(m, bool)
    for _ in range(MAX_ITER):
        idx = np.nonzero(active)[0]
        if not len(idx):
            break
        step = np.zeros((len(idx), k + 1))
        s, good = _solve(info[idx][:, :free, :free], score[idx][:, :free])
        s[~good] = 0
        step[:, :free] = s
        big = np.abs(step).max(axis=1, keepdims=True)
        step = np.where(big > 5, step * 5 / np.maximum(big, 1e-300), step)
        g = G[idx]
        new = b[idx] + step
        new_pll, new_score, new_info, _ = _penalised(new, g, y, C)
        # Step-halving when the penalised likelihood drops by more than rounding (near the
        # optimum its changes are at the level of floating-point noise and must not count).
        slack = 1e-10 * np.maximum(1.0, np.abs(pll[idx]))
        halved = np.zeros(len(idx), bool)
        for _half in range(30):
            worse = new_pll < pll[idx] - slack
            if not worse.any():
                break
            halved |= worse
            step[worse] /= 2
            new[worse] = b[idx][worse] + step[worse]
            p2, s2, i2, _ = _penalised(new[worse], g[worse], y, C)
            new_pll[worse], new_score[worse], new_info[worse] = p2, s2, i2
        b[idx], pll[idx], score[idx], info[idx] = new, new_pll, new_score, new_info
        # The augmented information is not the exact Hessian either: convergence is fast but
        # not quadratic, so stop on a small full step or a small modified score.
        done = (np.abs(step).max(axis=1) < FIRTH_TOL) & ~halved
        done |= np.abs(new_score[:, :free]).max(axis=1) < FIRTH_TOL
        converged[idx[done & good]] = True
        active[idx[done | ~good]] = False
    # Rows still moving after MAX_ITER are accepted at |U*| < 1e-4, otherwise reported as NaN.
    converged |= active & (np.abs(score[:, :free]).max(axis=1) < 1e-4)
    return b, pll, converged


def firth_block(G: np.ndarray, y: np.ndarray, C: np.ndarray, statistic: str = "wald") -> _Kernel:
    """Firth's penalised logistic regression of ``y`` on [C, g] for each row g of ``G``."""
    k = C.shape[1]
    b0 = logit_null_firth(y, C)
    b, pll, converged = _firth_fit(G, y, C, b0, fix_dosage=False)
    _, _, _, inv = _penalised(b, G, y, C)
    beta = np.where(converged, b[:, k], np.nan)
    se = np.sqrt(inv[:, k, k])
    if statistic == "wald":
        z = beta / se
        return beta, se, z, 2 * stats.norm.sf(np.abs(z))
    if statistic == "lrt":
        _, pll0, conv0 = _firth_fit(G, y, C, b0, fix_dosage=True)
        chi2 = np.where(converged & conv0, np.maximum(2 * (pll - pll0), 0.0), np.nan)
        return beta, se, chi2, stats.chi2.sf(chi2, 1)
    raise InputError(f"statistic {statistic!r} with firth: use wald or lrt")


def logit_null_firth(y: np.ndarray, C: np.ndarray) -> np.ndarray:
    """A start for Firth fits: the covariates-only logistic fit, or zeros if it diverges."""
    try:
        return logit_null(y, C)
    except InputError:
        return np.zeros(C.shape[1])


# -- count tests ----------------------------------------------------------------------------------
def _log_comb(n, k):
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def fisher_block(D: np.ndarray, case: np.ndarray) -> _Kernel:
    """Fisher's exact test on allele counts of called genotypes, ``D`` uint8 (m, n)."""
    called = D != MISSING
    dose = np.where(called, D, 0).astype(np.int64)
    a = (dose * case).sum(1)  # alt alleles in cases
    b = 2 * (called & case).sum(1) - a  # ref alleles in cases
    c = (dose * ~case).sum(1)
    d = 2 * (called & ~case).sum(1) - c
    return fisher_counts(a, b, c, d)


def fisher_counts(a, b, c, d) -> _Kernel:
    """Fisher's exact test on 2×2 tables [[a, b], [c, d]] (arrays, one table each), two-sided
    as ``scipy.stats.fisher_exact`` (the tables no more probable than the observed): ``(log
    odds ratio, Woolf SE, odds ratio, p)``."""
    a, b, c, d = (np.asarray(x, dtype=np.int64) for x in (a, b, c, d))
    r1, total, c1 = a + b, a + b + c + d, a + c
    lo = np.maximum(0, r1 - (total - c1))
    hi = np.minimum(r1, c1)
    width = int((hi - lo).max(initial=0)) + 1
    x = lo[:, None] + np.arange(width)[None, :]
    inside = x <= hi[:, None]
    xs = np.where(inside, x, lo[:, None])
    logpmf = (
        _log_comb(c1[:, None], xs)
        + _log_comb((total - c1)[:, None], r1[:, None] - xs)
        - _log_comb(total, r1)[:, None]
    )
    obs = logpmf[np.arange(len(a)), a - lo] if len(a) else np.zeros(0)
    keep = inside & (logpmf <= obs[:, None] + 1e-7)
    p = np.minimum(np.where(keep, np.exp(logpmf), 0.0).sum(1), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (a * d) / (b * c)
        beta = np.log(odds)
        se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    se = np.where(np.isfinite(se), se, np.nan)
    p = np.where(total == 0, np.nan, p)
    return beta, se, odds.astype(float), p


def trend_block(D: np.ndarray, case: np.ndarray) -> _Kernel:
    """Cochran–Armitage trend test (scores 0, 1, 2) on genotype counts of called genotypes."""
    called = D != MISSING
    t = np.where(called, D, 0).astype(np.float64)
    n = called.sum(1).astype(np.float64)
    r = (called & case).sum(1).astype(np.float64)  # cases called
    st = t.sum(1)  # Σ t_k n_k
    stt = (t * t).sum(1)  # Σ t_k² n_k
    str_ = (t * case).sum(1)  # Σ t_k r_k
    s = n - r
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = str_ * n - st * r  # Σ t_k (r_k N − n_k R)
        var = r * s / n * (n * stt - st * st)
        z = tstat / np.sqrt(var)
        sxx = stt - st * st / n
        beta = (str_ - r * st / n) / sxx
        se = np.abs(beta / z)
    z = np.where(var > 0, z, np.nan)
    beta = np.where(var > 0, beta, np.nan)
    se = np.where(var > 0, se, np.nan)
    return beta, se, z, 2 * stats.norm.sf(np.abs(z))


# -- driver ---------------------------------------------------------------------------------------
def genomic_inflation(p: np.ndarray) -> float:
    """λ (Devlin & Roeder 1999): median χ²₁ equivalent of the p-values / 0.4549; NaN if none."""
    p = np.asarray(p, dtype=float)
    p = p[np.isfinite(p)]
    if not len(p):
        return float("nan")
    return float(np.median(stats.chi2.isf(p, 1)) / CHI2_MEDIAN)


@dataclass
class AssociationResults:
    """One row per variant (:attr:`table`) and the run's summary (λ, counts, parameters)."""

    table: pa.Table
    test: str
    statistic: str
    trait: str
    n_samples: int
    covariates: list[str]
    lambda_gc: float
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        p = self.table["p"].to_numpy(zero_copy_only=False)
        return {
            "test": self.test,
            "statistic": self.statistic,
            "trait": self.trait,
            "covariates": self.covariates,
            "samples": self.n_samples,
            "variants": self.table.num_rows,
            "tested": int(np.isfinite(p).sum()),
            "lambda_gc": self.lambda_gc,
            "min_p": float(np.nanmin(p)) if np.isfinite(p).any() else None,
            **self.extra,
        }


def prepare(
    traits, test: str, statistic: str = "wald", firth_fallback: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Check a request and return ``(y, C)``: the trait and the design of the covariates with
    the intercept first; every refusal is an :class:`InputError`, raised before any variant is
    read. Too few samples for the test to mean anything (:mod:`.sample_size`) is a logged
    warning."""
    if firth_fallback and (test != "logistic" or statistic == "score"):
        raise InputError("--firth-fallback applies to --test logistic (--statistic wald or lrt)")
    if test not in TESTS:
        raise InputError(f"test {test!r}: use one of {', '.join(TESTS)}")
    if statistic not in STATISTICS:
        raise InputError(f"statistic {statistic!r}: use one of {', '.join(STATISTICS)}")
    y, x_cov, cov_names = traits[0], traits[1], traits[2]
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    if test != "linear" and not binary:
        raise InputError(f"the {test} test needs a binary (0/1) trait")
    if test in ("fisher", "trend") and cov_names:
        raise InputError(f"the {test} test takes no covariates (use logistic or firth)")
    if test in ("fisher", "trend", "linear") and statistic != "wald":
        raise InputError(f"--statistic applies to logistic and firth, not {test}")
    if test == "firth" and statistic == "score":
        raise InputError("firth takes --statistic wald or lrt")
    if binary and test != "linear" and (y.min() == y.max()):
        raise InputError("the trait has one value only (no cases or no controls)")
    if y.min() == y.max():
        raise InputError(f"the trait has one value only ({y[0]:g}): nothing varies to test")
    n = len(y)
    C = np.column_stack([np.ones(n), x_cov])
    if np.linalg.matrix_rank(C) < C.shape[1]:
        raise InputError("the covariates are collinear (one is a combination of the others)")
    if n <= C.shape[1] + 1:
        raise InputError(f"{n} samples are too few for {C.shape[1] + 1} parameters")
    # the variables estimated besides the intercept: the variant and each covariate
    warn_small_sample(y, test != "linear", C.shape[1], f"the {test} test")
    return y, C


#: The per-variant columns a test adds to the variant table, in order.
COLUMNS = ("beta", "se", "statistic", "p", "af", "n")


def block_columns(
    D: np.ndarray,
    y: np.ndarray,
    C: np.ndarray,
    test: str,
    statistic: str = "wald",
    impute_rule: str = "mean",
    firth_fallback: bool = False,
) -> dict[str, np.ndarray]:
    """One test on a block of dosages ``D`` (variants, kept samples; uint8, 3 = missing): the
    :data:`COLUMNS` as arrays (``n`` int64, the rest float64). ``y`` and ``C`` come from
    :func:`prepare`.

    ``firth_fallback`` (logistic only): a variant whose logistic fit fails (no convergence,
    mostly separation by a rare variant) is fitted by Firth's penalised likelihood instead, as
    PLINK 2 ``--glm firth-fallback`` does; an extra column ``firth`` (0/1) marks those rows.
    """
    called = D != MISSING
    n_called = called.sum(1)
    alt = np.where(called, D, 0).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        af = alt / (2.0 * n_called)
    res = _nans(len(D))
    firth = np.zeros(len(D), np.int64)
    if test in ("fisher", "trend"):
        res = (fisher_block if test == "fisher" else trend_block)(D, y == 1)
    else:
        G = impute(D, impute_rule)
        poly = G.std(axis=1) > 0
        idx = np.nonzero(poly)[0]
        if len(idx):
            if test == "linear":
                sub = linear_block(G[idx], y, C)
            elif test == "logistic":
                sub = logistic_block(G[idx], y, C, statistic)
                if firth_fallback:
                    failed = np.nonzero(~np.isfinite(sub[0]))[0]
                    if len(failed):
                        redo = firth_block(G[idx[failed]], y, C, statistic)
                        for part, again in zip(sub, redo, strict=True):
                            part[failed] = again
                        firth[idx[failed]] = 1
            else:
                sub = firth_block(G[idx], y, C, statistic)
            for full, part in zip(res, sub, strict=True):
                full[idx] = part
    out = {k: np.asarray(a, dtype=np.float64) for k, a in zip(COLUMNS[:4], res, strict=True)}
    out["af"] = np.asarray(af, dtype=np.float64)
    out["n"] = n_called.astype(np.int64)
    if firth_fallback:
        out["firth"] = firth
    return out


def results_table(
    variants: pa.Table, columns: dict[str, np.ndarray], traits, test: str, statistic: str
) -> AssociationResults:
    """:class:`AssociationResults` from the variant table and the :data:`COLUMNS` of all its
    variants, in order."""
    table = variants
    for key in (*COLUMNS, "firth"):
        if key in columns:
            kind = pa.int64() if key in ("n", "firth") else pa.float64()
            table = table.append_column(key, pa.array(columns[key], kind))
    used = statistic if test in ("logistic", "firth") else {"linear": "t"}.get(test, test)
    return AssociationResults(
        table=table,
        test=test,
        statistic=used,
        trait=getattr(traits, "trait", ""),
        n_samples=len(traits[0]),
        covariates=list(traits[2]),
        lambda_gc=genomic_inflation(columns["p"]),
        extra={
            "dropped_samples": len(getattr(traits, "dropped", [])),
            **({"firth_fallback": int(columns["firth"].sum())} if "firth" in columns else {}),
        },
    )


def concat_columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The :data:`COLUMNS` (and ``firth``, if there) of consecutive blocks, joined."""
    keys = list(parts[0]) if parts else list(COLUMNS)
    return {
        k: np.concatenate([p[k] for p in parts])
        if parts
        else np.zeros(0, np.int64 if k == "n" else np.float64)
        for k in keys
    }


def association_test(
    matrix,
    traits,
    test: str,
    *,
    statistic: str = "wald",
    block: int = 2048,
    impute_rule: str = "mean",
    progress: Callable[[int, int], None] | None = None,
    firth_fallback: bool = False,
) -> AssociationResults:
    """Run one test over every variant of a :class:`~.genotypes.GenotypeMatrix`, in this
    process (:func:`sandgrain.association.scatter.scatter_test` fans a stored matrix out).

    ``traits`` is what :func:`~.phenotypes_table.load_traits` returns for the matrix's samples.
    Regressions see missing calls imputed by ``impute_rule``; Fisher and the trend test count
    called genotypes only. ``n`` is the number of samples with a called genotype and the trait,
    ``af`` the alt allele frequency among them. ``firth_fallback``: see :func:`block_columns`.
    """
    y, C = prepare(traits, test, statistic, firth_fallback)
    kept = traits[3]
    parts = []
    total = matrix.n_variants
    for start, D in matrix.iter_blocks(block):
        parts.append(block_columns(D[:, kept], y, C, test, statistic, impute_rule, firth_fallback))
        if progress:
            progress(min(start + len(D), total), total)
    return results_table(matrix.variants, concat_columns(parts), traits, test, statistic)
