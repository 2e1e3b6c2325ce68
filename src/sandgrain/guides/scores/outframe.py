"""Microhomology and out-of-frame scores of a cut site (Bae, Kweon, Kim & Kim 2014).

A double-strand break repaired by microhomology-mediated end joining deletes the sequence
between two copies of a short repeat that flank it, keeping one copy. Bae et al. score every such
deletion a cut can make and predict from them whether the deletions shift the reading frame:

1. In a window with the cut in the middle, every pair of identical stretches of at least 2 nt,
   one left and one right of the cut, is a microhomology; deleting from the end of the left copy
   to the end of the right copy removes ``d = right start - left start`` bases.
2. A microhomology contained in a longer one of the same deletion (its sub-stretch at the same
   offset in both copies) is the same deletion and is dropped.
3. Each remaining pattern scores ``100 * round(exp(-d / 20), 3) * (#A/T + 2 * #G/C)`` of the
   microhomology (20 is the paper's length weight; the rounding to 3 decimals is the published
   program's).
4. The **microhomology score** is the sum of the pattern scores; the **out-of-frame score** is
   ``100 * (sum over patterns with d not a multiple of 3) / (microhomology score)``, the predicted
   share of frameshifting deletions (0-100).

The window: Bae et al.'s program (Supplementary Fig. 3) scores a 60-nt sequence with the break
after base 30, and their MICH calculator (rgenome.net) asks for "sequences flanking the same
length at a cleavage site (100 bp or less, 60-80 bp recommended)". sandgrain uses 30 nt each side
of the cut (:data:`OUT_OF_FRAME_FLANK`); ``flank`` changes it. The caller chooses the cut: for
SpCas9 it is 3 bp 5' of the PAM. CRISPOR (``crisporEffScores.py``) centres its window on the
PAM's first base instead; its published doctest value (microhomology 4404, out-of-frame 51) is
reproduced by this module with 30 nt each side of that base (see the tests).

Microhomologies are limited to ``flank - 1`` nt, as in the published program. This module finds
the patterns from the maximal runs of matching bases on each diagonal (deletion length) rather
than by the program's enumeration of every stretch and pairwise removal of the contained ones;
the tests hold it equal to a plain transcription of that enumeration.

A window that runs off the sequence, or holds a base other than A, C, G, T, gets no score
(``None``); so does the out-of-frame score of a window without any microhomology (0/0).

References
----------
.. [1] Bae S, Kweon J, Kim HS, Kim J-S. "Microhomology-based choice of Cas9 nuclease target
   sites." Nature Methods 11(7):705-706, 2014. doi:10.1038/nmeth.3015
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from sandgrain.errors import InputError

__all__ = [
    "OUT_OF_FRAME_FLANK",
    "OUT_OF_FRAME_LENGTH_WEIGHT",
    "MicrohomologyPattern",
    "microhomology_patterns",
    "microhomology_score",
    "out_of_frame",
    "out_of_frame_scores",
]

#: Bases scored on each side of the cut (Bae et al.'s program: a 60-mer, break after base 30).
OUT_OF_FRAME_FLANK = 30
#: The paper's length weight: a pattern deleting ``d`` bases is weighted ``exp(-d / 20)``.
OUT_OF_FRAME_LENGTH_WEIGHT = 20.0

_BASES = frozenset("ACGT")


class MicrohomologyPattern(NamedTuple):
    """One predicted deletion: the microhomology, where its two copies start, what it deletes.

    ``left_start`` and ``right_start`` are 0-based positions in the sequence given to
    :func:`microhomology_patterns`; the deletion removes ``seq[left_start + len(microhomology) :
    right_start + len(microhomology)]``, ``deletion_length`` bases.
    """

    microhomology: str
    left_start: int
    right_start: int
    deletion_length: int
    score: float


def _length_factor(deletion_length: int) -> float:
    # Written as the published program computes it (1/exp, then round to 3 decimals), so that
    # ties in the rounding fall the same way.
    return round(1 / math.exp(deletion_length / OUT_OF_FRAME_LENGTH_WEIGHT), 3)


def _window(seq: str, cut: int, flank: int) -> str | None:
    if flank < 2:
        raise InputError(f"the out-of-frame window needs at least 2 nt each side, not {flank}")
    if not isinstance(seq, str) or cut - flank < 0 or cut + flank > len(seq):
        return None
    window = seq[cut - flank : cut + flank].upper()
    return window if set(window) <= _BASES else None


def _patterns(window: str, offset: int) -> list[MicrohomologyPattern]:
    """Patterns of a window whose cut is in its middle; positions shifted by ``offset``."""
    n = len(window)
    left = n // 2
    longest = left - 1
    found = []
    for d in range(1, n):
        lo = max(0, left - d)
        hi = min(left, n - d)
        if hi - lo < 2:
            continue
        factor = _length_factor(d)
        p = lo
        while p < hi:
            if window[p] != window[p + d]:
                p += 1
                continue
            start = p
            while p < hi and window[p] == window[p + d]:
                p += 1
            run = p - start
            if run < 2:
                continue
            # A maximal run is one deletion; when it is longer than the program's longest
            # microhomology (flank - 1), each stretch of that length in it is one.
            size = min(run, longest)
            for s in range(start, p - size + 1):
                mh = window[s : s + size]
                weight = size + mh.count("G") + mh.count("C")
                found.append(
                    MicrohomologyPattern(mh, s + offset, s + d + offset, d, 100 * factor * weight)
                )
    return found


def microhomology_patterns(
    seq: str, cut: int, *, flank: int = OUT_OF_FRAME_FLANK
) -> tuple[MicrohomologyPattern, ...] | None:
    """The microhomology-mediated deletions predicted for a cut, with their pattern scores.

    Parameters
    ----------
    seq : str
        A sequence containing the cut; case is ignored.
    cut : int
        0-based index in ``seq`` of the first base right of the cut.
    flank : int
        Bases scored on each side of the cut (default :data:`OUT_OF_FRAME_FLANK`).

    Returns
    -------
    tuple of MicrohomologyPattern or None
        ``None`` when ``seq`` lacks ``flank`` bases on a side of the cut or the window holds a
        base other than A, C, G, T.

    References
    ----------
    Bae et al. 2014, Nature Methods 11:705, doi:10.1038/nmeth.3015.
    """
    window = _window(seq, cut, flank)
    if window is None:
        return None
    return tuple(_patterns(window, cut - flank))


def microhomology_score(seq: str, cut: int, *, flank: int = OUT_OF_FRAME_FLANK) -> float | None:
    """Bae et al.'s microhomology score of a cut: the sum of its pattern scores.

    Same parameters as :func:`microhomology_patterns`; ``None`` when the window cannot be scored.
    """
    patterns = microhomology_patterns(seq, cut, flank=flank)
    if patterns is None:
        return None
    return float(sum(p.score for p in patterns))


def out_of_frame(seq: str, cut: int, *, flank: int = OUT_OF_FRAME_FLANK) -> float | None:
    """Bae et al.'s out-of-frame score of a cut (0-100), unrounded.

    ``100 *`` the pattern scores of frameshifting deletions (length not a multiple of 3) over the
    microhomology score. Same parameters as :func:`microhomology_patterns`.

    Returns
    -------
    float or None
        ``None`` when the window cannot be scored or has no microhomology at all.

    References
    ----------
    Bae et al. 2014, Nature Methods 11:705, doi:10.1038/nmeth.3015.
    """
    patterns = microhomology_patterns(seq, cut, flank=flank)
    if not patterns:
        return None
    total = sum(p.score for p in patterns)
    if total == 0:
        return None
    frameshift = sum(p.score for p in patterns if p.deletion_length % 3)
    return 100.0 * frameshift / total


def out_of_frame_scores(
    windows: Sequence[str | None], *, flank: int = OUT_OF_FRAME_FLANK
) -> np.ndarray:
    """Out-of-frame scores of many cuts, each given as its ``2 * flank`` window, cut in the middle.

    Equals :func:`out_of_frame` ``(window, flank, flank=flank)`` per item, with ``NaN`` for
    ``None``, a window of another length, or one :func:`out_of_frame` cannot score.
    """
    if isinstance(windows, str):
        raise InputError("out_of_frame_scores takes a sequence of windows, not one string")
    out = np.full(len(windows), np.nan, dtype=np.float64)
    for i, window in enumerate(windows):
        if isinstance(window, str) and len(window) == 2 * flank:
            value = out_of_frame(window, flank, flank=flank)
            if value is not None:
                out[i] = value
    return out
