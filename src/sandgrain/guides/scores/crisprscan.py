"""CRISPRscan on-target activity score (Moreno-Mateos et al. 2015).

CRISPRscan is a linear model of sgRNA activity fitted on about a thousand guides injected as in
vitro (T7-)transcribed sgRNAs into zebrafish embryos. Its input is a 35-mer on the guide's strand::

    6 nt 5' context + 20 nt protospacer + NGG PAM + 6 nt 3' context

and the score is the intercept plus the weight of every position-specific single nucleotide or
dinucleotide term that matches (:data:`CRISPRSCAN_WEIGHTS`: 57 single and 34 dinucleotide terms,
positions **1-based** in the 35-mer as the paper labels them, e.g. ``AA19`` = ``A`` at 19 and 20).

Scale: sandgrain reports ``100 * (intercept + sum)``, the 0-100 scale of the crisprscan.org site
and of CRISPOR, which shows it truncated to an integer (``int(100 * score)``); crisprScore
(Bioconductor) reports the raw sum (0-1). The value is **not clipped**: being linear, a few
sequences score slightly below 0 or above 100.

The intercept and the 91 weights are the data of the paper's Supplementary Data
(``41592_2015_BFnmeth3543_MOESM640_ESM.xlsx``), transcribed here as data; crisprScore
(crisprVerse, ``inst/crisprscan/crisprscan_coefficients.csv``) reads that same table. CRISPOR's
transcription (``crisporEffScores.py``) rounds the weights to 9 decimals and places the largest
negative weight (-0.0973770966031) on ``AA`` at position 18 instead of 19; sandgrain follows the
supplementary table (``AA19``). Both agree on every test value below, which lack that motif.

Candidates without the full 35-mer (fewer than 6 nt before or after, at a chromosome end) or with
a base other than A, C, G, T get no score. The PAM bases are not checked: the model was fitted on
``NGG`` sites and is meaningless for others.

References
----------
.. [1] Moreno-Mateos MA, Vejnar CE, Beaudoin J-D, Fernandez JP, Mis EK, Khokha MK, Giraldez AJ.
   "CRISPRscan: designing highly efficient sgRNAs for CRISPR-Cas9 targeting in vivo." Nature
   Methods 12(10):982-988, 2015. doi:10.1038/nmeth.3543
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from sandgrain.errors import InputError

__all__ = [
    "CRISPRSCAN_FLANK_3",
    "CRISPRSCAN_FLANK_5",
    "CRISPRSCAN_INTERCEPT",
    "CRISPRSCAN_LENGTH",
    "CRISPRSCAN_WEIGHTS",
    "CrisprScanTerm",
    "crisprscan",
    "crisprscan_scores",
]

#: Bases of 5' context before the protospacer.
CRISPRSCAN_FLANK_5 = 6
#: Bases of 3' context after the PAM.
CRISPRSCAN_FLANK_3 = 6
#: Length of the scored context: 6 + 20 + 3 (PAM) + 6.
CRISPRSCAN_LENGTH = CRISPRSCAN_FLANK_5 + 20 + 3 + CRISPRSCAN_FLANK_3
#: Intercept of the linear model (raw scale, 0-1).
CRISPRSCAN_INTERCEPT = 0.183930943629


class CrisprScanTerm(NamedTuple):
    """One published term: ``sequence`` at 1-based ``position`` of the 35-mer adds ``weight``."""

    position: int
    sequence: str
    weight: float


#: The 91 terms of the paper's supplementary table, in its order (raw scale, 0-1).
CRISPRSCAN_WEIGHTS: tuple[CrisprScanTerm, ...] = (
    CrisprScanTerm(19, "AA", -0.0973770966031),
    CrisprScanTerm(18, "TT", -0.0944240749849),
    CrisprScanTerm(13, "TT", -0.0861877104467),
    CrisprScanTerm(26, "CT", -0.0842648932315),
    CrisprScanTerm(25, "GC", -0.0734536086796),
    CrisprScanTerm(21, "T", -0.0687304966631),
    CrisprScanTerm(23, "TG", -0.0663880753745),
    CrisprScanTerm(23, "AG", -0.0543384556991),
    CrisprScanTerm(30, "G", -0.0463159143121),
    CrisprScanTerm(4, "A", -0.0421535206047),
    CrisprScanTerm(34, "AG", -0.0419359084607),
    CrisprScanTerm(34, "GA", -0.0377977074249),
    CrisprScanTerm(18, "A", -0.0338204320002),
    CrisprScanTerm(25, "C", -0.031648352971),
    CrisprScanTerm(31, "C", -0.030715556059),
    CrisprScanTerm(1, "G", -0.0296937089124),
    CrisprScanTerm(16, "C", -0.0216386089249),
    CrisprScanTerm(14, "A", -0.0184872292452),
    CrisprScanTerm(11, "A", -0.0182872920807),
    CrisprScanTerm(34, "T", -0.0176476916909),
    CrisprScanTerm(10, "AA", -0.0169054146176),
    CrisprScanTerm(19, "A", -0.0155764988875),
    CrisprScanTerm(34, "G", -0.0141671225608),
    CrisprScanTerm(30, "C", -0.0131827325942),
    CrisprScanTerm(31, "GA", -0.01227989),
    CrisprScanTerm(24, "T", -0.0119961724142),
    CrisprScanTerm(15, "A", -0.0105952955376),
    CrisprScanTerm(4, "G", -0.00544886928417),
    CrisprScanTerm(9, "GG", -0.00157798989048),
    CrisprScanTerm(23, "T", -0.00142224326996),
    CrisprScanTerm(15, "C", -0.000477727288834),
    CrisprScanTerm(26, "C", -0.000368972859222),
    CrisprScanTerm(27, "T", -0.000280844938195),
    CrisprScanTerm(31, "A", 0.00158974977347),
    CrisprScanTerm(18, "GT", 0.00239174406352),
    CrisprScanTerm(9, "C", 0.0024492239247),
    CrisprScanTerm(20, "GA", 0.00974079889824),
    CrisprScanTerm(25, "A", 0.0105064050328),
    CrisprScanTerm(12, "A", 0.0116332345075),
    CrisprScanTerm(32, "A", 0.0124352308169),
    CrisprScanTerm(22, "T", 0.0132240349237),
    CrisprScanTerm(20, "C", 0.0150895135396),
    CrisprScanTerm(17, "G", 0.0154937801148),
    CrisprScanTerm(18, "G", 0.016457815932),
    CrisprScanTerm(30, "T", 0.0172631618141),
    CrisprScanTerm(13, "A", 0.017628924254),
    CrisprScanTerm(19, "G", 0.0179168436986),
    CrisprScanTerm(27, "A", 0.0191268154262),
    CrisprScanTerm(11, "G", 0.0209290394428),
    CrisprScanTerm(3, "TG", 0.0229499956202),
    CrisprScanTerm(3, "GC", 0.0246817853421),
    CrisprScanTerm(14, "G", 0.0251167144259),
    CrisprScanTerm(10, "GG", 0.0268021578544),
    CrisprScanTerm(12, "G", 0.0275911379406),
    CrisprScanTerm(32, "G", 0.0307124896871),
    CrisprScanTerm(22, "A", 0.0319309087749),
    CrisprScanTerm(20, "G", 0.0339570080799),
    CrisprScanTerm(21, "C", 0.0342629206803),
    CrisprScanTerm(17, "TT", 0.0349288099016),
    CrisprScanTerm(13, "T", 0.0354451707029),
    CrisprScanTerm(26, "G", 0.0361466486748),
    CrisprScanTerm(24, "A", 0.0374664775295),
    CrisprScanTerm(22, "C", 0.0376316196793),
    CrisprScanTerm(16, "G", 0.0379709424474),
    CrisprScanTerm(12, "GG", 0.041883008595),
    CrisprScanTerm(18, "TG", 0.0459089908401),
    CrisprScanTerm(31, "TG", 0.04813681225),
    CrisprScanTerm(35, "A", 0.0485962591677),
    CrisprScanTerm(15, "G", 0.0511297166878),
    CrisprScanTerm(24, "C", 0.0529723136618),
    CrisprScanTerm(15, "TG", 0.0533728222344),
    CrisprScanTerm(11, "GT", 0.0536784362118),
    CrisprScanTerm(9, "GC", 0.0541714023256),
    CrisprScanTerm(30, "CA", 0.0577598506643),
    CrisprScanTerm(24, "GT", 0.0609521142769),
    CrisprScanTerm(13, "G", 0.061360904679),
    CrisprScanTerm(24, "CA", 0.0622193697604),
    CrisprScanTerm(10, "AG", 0.0637170933285),
    CrisprScanTerm(10, "G", 0.0677391822097),
    CrisprScanTerm(13, "C", 0.0694959439929),
    CrisprScanTerm(31, "GT", 0.0734253503704),
    CrisprScanTerm(13, "GG", 0.0743558475817),
    CrisprScanTerm(27, "C", 0.0799339215437),
    CrisprScanTerm(27, "G", 0.085151051597),
    CrisprScanTerm(21, "CC", 0.0889196009093),
    CrisprScanTerm(23, "CC", 0.0950722864525),
    CrisprScanTerm(22, "G", 0.101144380251),
    CrisprScanTerm(24, "G", 0.105488324852),
    CrisprScanTerm(23, "GT", 0.106718562559),
    CrisprScanTerm(25, "GG", 0.111559440706),
    CrisprScanTerm(9, "G", 0.114600681211),
)

_BASES = frozenset("ACGT")
_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _i


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Weights by 0-based position and base code (35 x 4) and dinucleotide code (34 x 16)."""
    single = np.zeros((CRISPRSCAN_LENGTH, 4), dtype=np.float64)
    double = np.zeros((CRISPRSCAN_LENGTH - 1, 16), dtype=np.float64)
    for term in CRISPRSCAN_WEIGHTS:
        codes = [int(_CODE[ord(b)]) for b in term.sequence]
        if len(codes) == 1:
            single[term.position - 1, codes[0]] += term.weight
        else:
            double[term.position - 1, codes[0] * 4 + codes[1]] += term.weight
    return single, double


_SINGLE, _DOUBLE = _tables()


def crisprscan(context35: str | None) -> float | None:
    """CRISPRscan score (0-100 scale) of one candidate, or ``None`` when it cannot be scored.

    Parameters
    ----------
    context35 : str or None
        6 nt 5' context + 20 nt protospacer + PAM (``NGG``) + 6 nt 3' context, on the guide's
        strand; case is ignored.

    Returns
    -------
    float or None
        ``100 * (intercept + sum of the matching terms)``, unrounded; ``None`` when
        ``context35`` is ``None``, not exactly 35 nt long or holds a base other than A, C, G, T.

    References
    ----------
    Moreno-Mateos et al. 2015, Nature Methods 12:982, doi:10.1038/nmeth.3543.
    """
    if not isinstance(context35, str) or len(context35) != CRISPRSCAN_LENGTH:
        return None
    seq = context35.upper()
    if not set(seq) <= _BASES:
        return None
    score = CRISPRSCAN_INTERCEPT
    for term in CRISPRSCAN_WEIGHTS:
        if seq.startswith(term.sequence, term.position - 1):
            score += term.weight
    return 100.0 * score


def crisprscan_scores(contexts35: Sequence[str | None]) -> np.ndarray:
    """CRISPRscan scores of many candidates, vectorised; equals :func:`crisprscan` per item.

    Parameters
    ----------
    contexts35 : sequence of str or None
        One 35-mer (see :func:`crisprscan`) per candidate, or ``None``.

    Returns
    -------
    numpy.ndarray
        ``float64`` scores on the 0-100 scale in input order, ``NaN`` where :func:`crisprscan`
        gives ``None``.
    """
    if isinstance(contexts35, str):
        raise InputError("crisprscan_scores takes a sequence of 35-mers, not one string")
    n = len(contexts35)
    codes = np.full((n, CRISPRSCAN_LENGTH), 4, dtype=np.uint8)
    for i, context in enumerate(contexts35):
        if isinstance(context, str) and len(context) == CRISPRSCAN_LENGTH and context.isascii():
            codes[i] = _CODE[np.frombuffer(context.encode("ascii"), dtype=np.uint8)]
    valid = (codes < 4).all(axis=1)
    good = codes[valid].astype(np.intp)
    positions = np.arange(CRISPRSCAN_LENGTH)
    raw = (
        CRISPRSCAN_INTERCEPT
        + _SINGLE[positions, good].sum(axis=1)
        + _DOUBLE[positions[:-1], good[:, :-1] * 4 + good[:, 1:]].sum(axis=1)
    )
    out = np.full(n, np.nan, dtype=np.float64)
    out[valid] = 100.0 * raw
    return out
