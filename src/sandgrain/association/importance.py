"""P-values and q-values for random-forest importances.

- :func:`janitza_pvalues`: Janitza, Celik & Boulesteix (2018), "A computationally fast variable
  importance test for random forests for high-dimensional data", Advances in Data Analysis and
  Classification 12:885. In wide data most variants are unrelated to the trait, and an unbiased
  importance such as AIR (Nembrini, König & Wright 2018) is then symmetric around zero for them;
  the non-positive importances (which come from null variants) and the negatives mirrored
  approximate the null distribution ``F0``, and a variant's p-value is the share of ``F0`` at
  or above its importance. Ties count in the tail (conservative): ranger's
  ``importance_pvalues`` takes ``1 - ecdf(x)``, the share strictly above, which gives every
  importance of exactly 0 a p-value of ``#negative / #null`` — in wide data grown with few
  trees most variants are never tried (AIR exactly 0), and that made nearly all of a
  1,000,000-variant forest "significant"; here they get a p-value near 1.
- :func:`bh_qvalues`: Benjamini & Hochberg (1995), "Controlling the false discovery rate", JRSS B
  57:289; the q-value of a test is the smallest FDR at which it is rejected.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bh_qvalues", "janitza_pvalues"]


def janitza_pvalues(importance: np.ndarray) -> np.ndarray:
    """P-values of importances from the null built of the non-positive ones (Janitza 2018).

    Parameters
    ----------
    importance : array of float
        An unbiased importance per feature (AIR): null features scatter around zero.

    Returns
    -------
    array of float
        ``P(F0 >= x)`` per feature, where ``F0`` is the empirical distribution of the negative
        importances, their negations and the zero importances. All NaN when no importance is
        negative (the null cannot be estimated; grow more trees).
    """
    x = np.asarray(importance, dtype=np.float64)
    neg = x[x < 0]
    if neg.size == 0:
        return np.full(x.shape, np.nan)
    null = np.sort(np.concatenate([neg, -neg, x[x == 0]]))
    # The share of the null at or above x.
    return 1.0 - np.searchsorted(null, x, side="left") / null.size


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values (NaN p-values stay NaN and do not count as tests)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q[order] = np.minimum(ranked, 1.0)
    return q
