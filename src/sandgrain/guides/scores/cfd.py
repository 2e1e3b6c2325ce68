"""Cutting Frequency Determination (CFD) off-target score (Doench et al. 2016).

The CFD score of one site is the product of the published activities of each mismatch, by type and
position, times the activity of the site's PAM::

    CFD = prod(mm[r{guide base, T->U}:d{complement of site base}, i]) * pam[last two PAM bases]

over the mismatched positions ``i`` = 1..20 counted from the PAM-distal end. The guide and the site
are the 20-nt protospacers, the site written on the guide's strand; the mismatch type pairs the
guide RNA base (``rN``, ``T`` written ``U``) with the target-strand DNA base facing it (``dN``, the
complement of the site base). An identical site with an ``NGG`` PAM scores 1.0.

Conventions of sandgrain, not of the paper:

* a site base ``N`` counts as the **worst** mismatch at its position: the minimum activity over
  the three bases that differ from the guide's, i.e. the lowest score any real base there could
  give (unknown reference sequence is never scored as a likely cut);
* a PAM whose last two bases are not both A, C, G or T (e.g. ``NNG``) scores 0.
* The guide aggregate :func:`cfd_specificity` is ``100 * 100 / (100 + sum of CFD)`` over the
  off-target sites; **the caller excludes the on-target site** (CRISPOR's convention).

The 240 mismatch and 16 PAM activities are data of the paper's supplementary tables, shipped in
``data/cfd_mismatch.tsv`` and ``data/cfd_pam.tsv`` (transcribed as data, as carried by the
MIT-licensed guidescan-cli, pritykinlab).

References
----------
.. [1] Doench JG, Fusi N, Sullender M, et al. "Optimized sgRNA design to maximize activity and
   minimize off-target effects of CRISPR-Cas9." Nature Biotechnology 34(2):184-191, 2016.
   doi:10.1038/nbt.3437
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from types import MappingProxyType

import numpy as np

from sandgrain.errors import InputError

__all__ = ["CFD_MISMATCH", "CFD_PAM", "cfd_site_score", "cfd_site_scores", "cfd_specificity"]

_LENGTH = 20
_BASES = "ACGT"
_RNA = {"A": "A", "C": "C", "G": "G", "T": "U"}
_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}
_MM_HEADER = ("type", "position", "score")


def _read_tsv(name: str, header: tuple[str, ...]) -> list[list[str]]:
    """Rows of a packaged TSV, ``#`` comment lines skipped, the header line checked."""
    text = resources.files("sandgrain.guides.scores").joinpath("data", name).read_text("utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines or tuple(lines[0].split("\t")) != header:
        raise RuntimeError(f"packaged table {name} lacks the header {header}")
    rows = [line.split("\t") for line in lines[1:]]
    for row in rows:
        if len(row) != len(header):
            raise RuntimeError(f"packaged table {name} has a malformed row {row}")
    return rows


def _load_mismatch() -> Mapping[tuple[str, int], float]:
    table = {(t, int(p)): float(v) for t, p, v in _read_tsv("cfd_mismatch.tsv", _MM_HEADER)}
    return MappingProxyType(table)


def _load_pam() -> Mapping[str, float]:
    return MappingProxyType({k: float(v) for k, v in _read_tsv("cfd_pam.tsv", ("pam", "score"))})


#: Mismatch activity by (type ``"rG:dT"``, position 1..20 from the PAM-distal end): 240 entries.
CFD_MISMATCH: Mapping[tuple[str, int], float] = _load_mismatch()
#: PAM activity by the last two bases of the PAM (``"GG"`` -> 1.0): 16 entries.
CFD_PAM: Mapping[str, float] = _load_pam()


def _mismatch_type(guide_base: str, site_base: str) -> str:
    return f"r{_RNA[guide_base]}:d{_COMPLEMENT[site_base]}"


def _build_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Position factors ``[guide code, site code, position]`` and PAM factors ``[a, b]``."""
    mm = np.ones((4, 5, _LENGTH), dtype=np.float64)
    for g, gb in enumerate(_BASES):
        for s, sb in enumerate(_BASES):
            if g != s:
                for i in range(_LENGTH):
                    mm[g, s, i] = CFD_MISMATCH[_mismatch_type(gb, sb), i + 1]
        others = [s for s in range(4) if s != g]
        mm[g, 4, :] = mm[g, others, :].min(axis=0)  # N: the worst of the three mismatches
    pam = np.zeros((5, 5), dtype=np.float64)
    for a, ab in enumerate(_BASES):
        for b, bb in enumerate(_BASES):
            pam[a, b] = CFD_PAM[ab + bb]
    return mm, pam


_MM_ARRAY, _PAM_ARRAY = _build_arrays()
_POSITIONS = np.arange(_LENGTH)


def cfd_site_score(guide: str, site: str, pam: str) -> float:
    """CFD score (0-1) of one site for one guide.

    Parameters
    ----------
    guide : str
        The guide's 20-nt protospacer (no PAM), 5'->3', PAM-distal base first; A, C, G, T.
    site : str
        The site's 20-nt protospacer as it stands on the guide's strand; A, C, G, T or N (the
        worst mismatch at that position).
    pam : str
        The site's PAM (e.g. ``"AGG"``); its last two bases are used. Two bases that are not both
        A, C, G, T give 0.

    Returns
    -------
    float
        The product of the mismatch activities times the PAM activity; 1.0 for an identical
        site with an ``NGG`` PAM.

    Raises
    ------
    InputError
        On wrong lengths or characters.

    References
    ----------
    Doench et al. 2016, Nature Biotechnology 34:184, doi:10.1038/nbt.3437.
    """
    if len(guide) != _LENGTH or len(site) != _LENGTH:
        raise InputError(
            f"CFD score needs two 20-nt protospacers, got {len(guide)} and {len(site)} nt"
        )
    if len(pam) < 2:
        raise InputError(f"CFD score needs a PAM of at least 2 nt, got {pam!r}")
    guide = guide.upper()
    site = site.upper()
    if not set(guide) <= set(_BASES):
        raise InputError(f"guide {guide!r} must contain only A, C, G, T")
    if not set(site) <= set("ACGTN"):
        raise InputError(f"site {site!r} must contain only A, C, G, T, N")
    score = 1.0
    for i, (g, s) in enumerate(zip(guide, site, strict=True)):
        if g == s:
            continue
        if s == "N":
            score *= min(CFD_MISMATCH[_mismatch_type(g, b), i + 1] for b in _BASES if b != g)
        else:
            score *= CFD_MISMATCH[_mismatch_type(g, s), i + 1]
    return score * CFD_PAM.get(pam[-2:].upper(), 0.0)


def cfd_site_scores(
    guide_codes: np.ndarray, site_codes: np.ndarray, pam_codes: np.ndarray
) -> np.ndarray:
    """Vectorised :func:`cfd_site_score` of many sites for one guide.

    Parameters
    ----------
    guide_codes : numpy.ndarray, shape (20,), uint8
        The guide's protospacer as codes A=0, C=1, G=2, T=3.
    site_codes : numpy.ndarray, shape (n, 20), uint8
        The sites' protospacers on the guide's strand, same codes plus 4 for ``N``.
    pam_codes : numpy.ndarray, shape (n, 2), uint8
        The last two bases of each site's PAM, same codes (4 = ``N`` gives 0).

    Returns
    -------
    numpy.ndarray, shape (n,), float64
        The CFD scores, equal to :func:`cfd_site_score` on the decoded sequences.

    Raises
    ------
    InputError
        On wrong shapes or codes out of range.

    References
    ----------
    Doench et al. 2016, Nature Biotechnology 34:184, doi:10.1038/nbt.3437.
    """
    guide = np.asarray(guide_codes)
    sites = np.asarray(site_codes)
    pams = np.asarray(pam_codes)
    if guide.shape != (_LENGTH,):
        raise InputError(f"guide codes must have shape (20,), got {guide.shape}")
    if sites.ndim != 2 or sites.shape[1] != _LENGTH:
        raise InputError(f"site codes must have shape (n, 20), got {sites.shape}")
    if pams.shape != (sites.shape[0], 2):
        raise InputError(f"PAM codes must have shape ({sites.shape[0]}, 2), got {pams.shape}")
    if guide.max() > 3:
        raise InputError("guide codes must be 0..3 (A, C, G, T)")
    if sites.size and (sites.max() > 4 or pams.max() > 4):
        raise InputError("site and PAM codes must be 0..4 (A, C, G, T, N)")
    g = guide.astype(np.intp)
    factors = _MM_ARRAY[g[None, :], sites.astype(np.intp), _POSITIONS[None, :]]
    pam_factor = _PAM_ARRAY[pams[:, 0].astype(np.intp), pams[:, 1].astype(np.intp)]
    return factors.prod(axis=1) * pam_factor


def cfd_specificity(scores: Iterable[float]) -> float:
    """Guide aggregate ``100 / (1 + sum(scores))``, from 0 to 100.

    The guide's own site has CFD 1, so this is the share (in %) of the guide's predicted
    cutting that falls on its target: a perfect second site (CFD 1) halves it to 50, four sites
    of CFD 0.25 do the same. This is the specificity GuideScan 2 defines (Schmidt et al. 2025,
    ``1 / (1 + Σ CFD)``) and Tycko et al. 2019 use ("aggregate CFD"); it replaces the earlier
    ``100·100 / (100 + Σ CFD)``, which put the CFD sum (0–1 a site) on MIT's 0–100 scale and
    so showed a guide with a perfect second site as 99.0.

    Parameters
    ----------
    scores : iterable of float
        CFD scores of the guide's **off-target** sites. The caller must leave the on-target site
        out (CRISPOR's convention): with no off-target the aggregate is 100.

    Returns
    -------
    float
        The aggregate specificity; higher is more specific.

    References
    ----------
    Doench et al. 2016, Nature Biotechnology 34:184, doi:10.1038/nbt.3437 (the CFD score);
    Tycko et al. 2019, Nature Communications 10:4063, doi:10.1038/s41467-019-11955-7;
    Schmidt et al. 2025, Nature Biotechnology, doi:10.1038/s41587-024-02262-9 (GuideScan 2).
    """
    total = float(scores.sum()) if isinstance(scores, np.ndarray) else float(sum(scores))
    return 100.0 / (1.0 + total)
