"""MIT off-target score (Hsu et al. 2013) of single sites and its guide-level aggregate.

The score of one off-target site compares the 20-nt protospacer of the guide with the 20-nt
protospacer of the site (PAMs are not part of it), position 1 being the PAM-distal end:

* ``T1 = prod(1 - M[p])`` over the mismatched positions ``p``, with the published position
  weights ``M`` (:data:`MIT_WEIGHTS`);
* ``T2 = 1 / (((19 - d) / 19) * 4 + 1)`` with ``d`` the mean distance between consecutive
  mismatches, ``(last - first) / (n - 1)``; ``T2 = 1`` with fewer than two mismatches;
* ``T3 = 1 / n**2`` with ``n`` the number of mismatches; ``T3 = 1`` when ``n = 0``;
* site score ``= 100 * T1 * T2 * T3``, from 0 to 100 (an identical site scores 100).

A site base ``N`` (or any base other than the guide's) counts as a mismatch.

The guide aggregate (:func:`mit_specificity`) is ``100 * 100 / (100 + sum of site scores)`` over
the off-target sites. **The caller excludes the on-target site** (CRISPOR's convention), so a
guide without any off-target scores 100.

References
----------
.. [1] Hsu PD, Scott DA, Weinstein JA, et al. "DNA targeting specificity of RNA-guided Cas9
   nucleases." Nature Biotechnology 31(9):827-832, 2013. doi:10.1038/nbt.2647
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from sandgrain.errors import InputError

__all__ = ["MIT_WEIGHTS", "mit_site_score", "mit_site_scores", "mit_specificity"]

#: Position weights M[p] of Hsu et al. 2013, index 0 = position 1 (PAM-distal end).
MIT_WEIGHTS: tuple[float, ...] = (
    0.0, 0.0, 0.014, 0.0, 0.0, 0.395, 0.317, 0.0, 0.389, 0.079,
    0.445, 0.508, 0.613, 0.851, 0.732, 0.828, 0.615, 0.804, 0.685, 0.583,
)  # fmt: skip

_LENGTH = 20
_BASES = frozenset("ACGT")
_M = np.asarray(MIT_WEIGHTS, dtype=np.float64)
_ONE_MINUS_M = 1.0 - _M


def mit_site_score(guide: str, site: str) -> float:
    """MIT score (0-100) of one site for one guide.

    Parameters
    ----------
    guide : str
        The guide's 20-nt protospacer (no PAM), 5'->3', PAM-distal base first.
    site : str
        The site's 20-nt protospacer on the guide's strand (no PAM). ``N`` is a mismatch.

    Returns
    -------
    float
        ``100 * T1 * T2 * T3``; 100.0 for an identical site.

    Raises
    ------
    InputError
        When either sequence is not 20 nt long, or the guide has a base other than A, C, G, T.

    References
    ----------
    Hsu et al. 2013, Nature Biotechnology 31:827, doi:10.1038/nbt.2647.
    """
    if len(guide) != _LENGTH or len(site) != _LENGTH:
        raise InputError(
            f"MIT score needs two 20-nt protospacers, got {len(guide)} and {len(site)} nt"
        )
    guide = guide.upper()
    site = site.upper()
    if not set(guide) <= _BASES:
        raise InputError(f"guide {guide!r} must contain only A, C, G, T")
    mismatches = [i for i in range(_LENGTH) if guide[i] != site[i]]
    n = len(mismatches)
    if n == 0:
        return 100.0
    t1 = 1.0
    for i in mismatches:
        t1 *= 1.0 - MIT_WEIGHTS[i]
    if n >= 2:
        d = (mismatches[-1] - mismatches[0]) / (n - 1)
        t2 = 1.0 / (((19.0 - d) / 19.0) * 4.0 + 1.0)
    else:
        t2 = 1.0
    t3 = 1.0 / (n * n)
    return 100.0 * t1 * t2 * t3


def mit_site_scores(guide_codes: np.ndarray, site_codes: np.ndarray) -> np.ndarray:
    """Vectorised :func:`mit_site_score` of many sites for one guide.

    Parameters
    ----------
    guide_codes : numpy.ndarray, shape (20,), uint8
        The guide's protospacer as codes A=0, C=1, G=2, T=3.
    site_codes : numpy.ndarray, shape (n, 20), uint8
        The sites' protospacers on the guide's strand, same codes plus 4 for ``N`` (a mismatch).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        The site scores, equal to :func:`mit_site_score` on the decoded sequences.

    Raises
    ------
    InputError
        On wrong shapes or a guide code above 3.

    References
    ----------
    Hsu et al. 2013, Nature Biotechnology 31:827, doi:10.1038/nbt.2647.
    """
    guide = np.asarray(guide_codes)
    sites = np.asarray(site_codes)
    if guide.shape != (_LENGTH,):
        raise InputError(f"guide codes must have shape (20,), got {guide.shape}")
    if sites.ndim != 2 or sites.shape[1] != _LENGTH:
        raise InputError(f"site codes must have shape (n, 20), got {sites.shape}")
    if guide.max() > 3:
        raise InputError("guide codes must be 0..3 (A, C, G, T)")
    mismatch = sites != guide[None, :]
    n = mismatch.sum(axis=1)
    t1 = np.where(mismatch, _ONE_MINUS_M[None, :], 1.0).prod(axis=1)
    first = np.argmax(mismatch, axis=1)
    last = _LENGTH - 1 - np.argmax(mismatch[:, ::-1], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (last - first) / (n - 1)
        t2 = np.where(n >= 2, 1.0 / (((19.0 - d) / 19.0) * 4.0 + 1.0), 1.0)
        t3 = np.where(n > 0, 1.0 / (n.astype(np.float64) ** 2), 1.0)
    return 100.0 * t1 * t2 * t3


def mit_specificity(site_scores: Iterable[float]) -> float:
    """Guide specificity ``100 * 100 / (100 + sum(site_scores))``, from 0 to 100.

    Parameters
    ----------
    site_scores : iterable of float
        MIT scores of the guide's **off-target** sites. The caller must leave the on-target site
        out (CRISPOR's convention): with no off-target at all the specificity is 100.

    Returns
    -------
    float
        The aggregate specificity; higher is more specific.

    References
    ----------
    Hsu et al. 2013, Nature Biotechnology 31:827, doi:10.1038/nbt.2647.
    """
    if isinstance(site_scores, np.ndarray):
        total = float(site_scores.sum())
    else:
        total = float(sum(site_scores))
    return 100.0 * 100.0 / (100.0 + total)
