"""Pairwise alignment of a consensus genome to its reference: exact, and fast where genomes agree.

The alignment is the optimal path under an affine-gap score with free end gaps (a genome may
miss either end of the reference, or run past it), with Nextclade's default nucleotide scores
(match +3, mismatch −1, gap open −6, gap extension 0: ``scoreMatch``, ``penaltyMismatch``,
``penaltyGapOpen``, ``penaltyGapExtend`` in Nextclade's alignment parameters; Aksamentov et al.
2021, JOSS 6:3773). N and the IUPAC ambiguity codes match every base they stand for. Unlike
Nextclade, gap opening costs the same inside and outside codons: gap placement is made unique by
normalisation instead (below).

How it is fast (the idea of Nextclade's seeded band, taken one step further): genomes of one
virus differ from the reference in a few dozen places. Exact matches of unique reference k-mers
(``K`` = 21) are chained into long exact stretches (*anchors*, the best chain by total length);
each anchor, shortened by ``MARGIN`` bases at both ends, is aligned base to base, and only the
*windows* between anchors (and the two ends, with free end gaps) go through the dynamic
programme of :func:`sandgrain.strains.align_kernels.align_window`. A window whose two corners lie
on one diagonal and whose diagonal has at most three mismatching columns needs no dynamic
programme: any path with gaps there has a deletion and an insertion (−12) and at least one column
fewer, so it scores below ``3n − 15``, while the diagonal scores ``3n − 4x ≥ 3n − 12``.

Exactness is checked, not assumed: the tests compare the operations (and so every call) with a
plain full-matrix aligner on every shared genome and on synthetic genomes with planted changes.
The score of the returned path is reported, and equals the full-matrix optimum there.

Normalisation (what makes the calls unique): every deletion and insertion is moved left, one
column at a time, past an aligned column that matches both before and after the move (for a
deletion, the query base of that column against the reference base it leaves and against the
deletion's last base; for an insertion, the reference base against the query base it leaves and
against the insertion's last base). With A/C/G/T only this is the VCF convention of left
alignment (Tan et al. 2015, Bioinformatics 31:2202); Nextclade's published examples
(``del:21765-21770``, S:H69-/V70-; ``del:21991-21993``, S:Y144-; ``del:11288-11296``) read the
same. Because N matches every base, an indel beside a run of N moves to the run's left end:
without that, an indel next to N has many equally good places, and which one a dynamic
programme returns would depend on where its window starts. A move never crosses a mismatch or
another indel and never changes the score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..genome.iupac import CODES
from .align_kernels import (
    OP_DEL,
    OP_INS,
    OP_MATCH,
    OP_QRY_OVERHANG,
    OP_REF_OVERHANG,
    align_window,
    kmer_table,
    seed_runs,
)

__all__ = [
    "GAP_EXTEND",
    "GAP_OPEN",
    "MATCH",
    "MISMATCH",
    "Alignment",
    "AlignmentFailed",
    "Reference",
    "align",
    "encode",
    "normalise",
    "path_score",
]

MATCH, MISMATCH, GAP_OPEN, GAP_EXTEND = 3, -1, 6, 0
#: Seed length (bases) and how far each anchor is shortened on both sides before it is trusted.
K, MARGIN = 21, 16
#: Largest window (cells) the dynamic programme takes on; a genome needing more is not aligned.
MAX_WINDOW_CELLS = 64_000_000
#: Fewest anchored bases for a genome to count as aligned (a genome of another virus has none).
MIN_ANCHORED = 200

#: IUPAC code → bit mask (A=1, C=2, G=4, T=8); U reads as T; anything else as N.
MASK = np.full(256, 15, dtype=np.uint8)
for _code, _bases in {**CODES, "U": "T"}.items():
    _m = sum(1 << "ACGT".index(b) for b in _bases)
    MASK[ord(_code)] = _m
    MASK[ord(_code.lower())] = _m
del _code, _bases, _m
#: bit mask → IUPAC letter (the canonical spelling of each mask)
LETTER = np.frombuffer(b"-ACMGRSVTWYHKDBN", dtype=np.uint8)
#: bit mask → 2-bit code for single bases (A=0 … T=3), 4 otherwise
CODE2 = np.full(16, 4, dtype=np.uint8)
CODE2[[1, 2, 4, 8]] = [0, 1, 2, 3]

_DROP = bytes(range(33)) + b"-.*"  # whitespace, alignment gaps and stray stars in a FASTA record


class AlignmentFailed(InputError):
    """A genome that cannot be aligned to the reference (another virus, mostly N, far too short)."""


def encode(seq: str | bytes) -> np.ndarray:
    """IUPAC bit masks of a sequence; gaps (``-``, ``.``) and whitespace are dropped first."""
    data = seq.encode("ascii", "replace") if isinstance(seq, str) else bytes(seq)
    data = data.translate(None, _DROP)
    return MASK[np.frombuffer(data, dtype=np.uint8)]


def decode(masks: np.ndarray) -> str:
    """The IUPAC letters of bit masks (0, no base, is ``-``)."""
    return LETTER[masks].tobytes().decode("ascii")


@dataclass(frozen=True)
class Reference:
    """A reference sequence prepared for alignment: masks and a table of its unique k-mers."""

    sequence: str
    masks: np.ndarray
    kmer_keys: np.ndarray  # open-addressing table of the k-mers seen once (align_kernels)
    kmer_pos: np.ndarray
    codes: np.ndarray  # 2-bit base codes (4: N or an ambiguity code)
    unique_at: np.ndarray  # whether the k-mer starting at each position is in the table

    @classmethod
    def from_sequence(cls, sequence: str) -> Reference:
        masks = encode(sequence.upper())
        if masks.size < 2 * K:
            raise InputError(f"a reference of {masks.size} bases is too short to align to")
        keys, pos = kmer_table(masks, K)
        unique_at = np.zeros(masks.size, dtype=np.bool_)
        unique_at[pos[pos >= 0]] = True
        return cls(decode(masks), masks, keys, pos, CODE2[masks], unique_at)

    def __len__(self) -> int:
        return int(self.masks.size)


@dataclass(frozen=True)
class Alignment:
    """A genome aligned to the reference: the operations of the path (see
    :mod:`~sandgrain.strains.align_kernels`), the query's masks and the path's score."""

    ops: np.ndarray
    query: np.ndarray
    score: int
    windows: int = 0  # windows that went through the dynamic programme
    dp_cells: int = 0


def _anchors(ref: Reference, q: np.ndarray) -> list[tuple[int, int, int]]:
    """Exact stretches ``(r_start, q_start, length)`` on the best chain of seed matches."""
    rs, qs, ls = seed_runs(q, ref.kmer_keys, ref.kmer_pos, K, ref.codes, ref.unique_at)
    runs = list(zip(rs.tolist(), qs.tolist(), ls.tolist(), strict=True))
    if len(runs) > 2000:  # a very divergent or chimeric genome: keep the longest runs
        runs = sorted(runs, key=lambda x: -x[2])[:2000]
    return _chain(runs)


def _chain(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The chain of runs, increasing on both sequences, with the most bases (overlaps clipped)."""
    runs.sort(key=lambda x: (x[1], x[0]))
    n = len(runs)
    best = [0] * n
    back = [-1] * n
    for i, (ri, qi, li) in enumerate(runs):
        best[i], back[i] = li, -1
        for j in range(i):
            rj, qj, lj = runs[j]
            if rj >= ri or qj >= qi or rj + lj >= ri + li or qj + lj >= qi + li:
                continue
            overlap = max(0, rj + lj - ri, qj + lj - qi)
            value = best[j] + li - overlap
            if value > best[i]:
                best[i], back[i] = value, j
    if not n:
        return []
    i = max(range(n), key=lambda t: (best[t], -t))
    chain = []
    while i >= 0:
        chain.append(runs[i])
        i = back[i]
    chain.reverse()
    out: list[tuple[int, int, int]] = []
    for r, q, length in chain:
        if out:
            pr, pq, pl = out[-1]
            clip = max(0, pr + pl - r, pq + pl - q)
            r, q, length = r + clip, q + clip, length - clip
        if length > 0:
            out.append((r, q, length))
    return out


def align(ref: Reference, query: str | bytes | np.ndarray) -> Alignment:
    """Align one genome to the reference (see the module docstring); raises
    :class:`AlignmentFailed` for a genome that shares too little with the reference."""
    q = query if isinstance(query, np.ndarray) else encode(query)
    n, m = len(ref), int(q.size)
    if m == 0:
        raise AlignmentFailed("the genome has no bases")
    anchors = []
    for r0, q0, length in _anchors(ref, q):
        r0, q0, length = r0 + MARGIN, q0 + MARGIN, length - 2 * MARGIN
        if length <= 0:
            continue
        if anchors:
            pr, pq, pl = anchors[-1]
            if r0 < pr + pl or q0 < pq + pl:
                continue
        anchors.append((r0, q0, length))
    if sum(a[2] for a in anchors) < min(MIN_ANCHORED, n // 2) and n * m > MAX_WINDOW_CELLS:
        raise AlignmentFailed("no alignment: the genome shares too little with the reference")
    pieces: list[np.ndarray] = []
    score = 0
    windows = cells = 0
    r_at = q_at = 0
    for k in range(len(anchors) + 1):
        if k < len(anchors):
            r1, q1, length = anchors[k]
        else:
            r1, q1, length = n, m, 0
        free_start, free_end = k == 0, k == len(anchors)
        rw, qw = ref.masks[r_at:r1], q[q_at:q1]
        ops, s, used = _window(rw, qw, free_start, free_end)
        if used:
            windows += 1
            cells += rw.size * qw.size
        pieces.append(ops)
        score += s
        if length:
            pieces.append(np.zeros(length, dtype=np.uint8))
            score += MATCH * length
        r_at, q_at = r1 + length, q1 + length
    ops = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)
    return Alignment(normalise(ref.masks, q, ops), q, int(score), windows, cells)


def _window(rw: np.ndarray, qw: np.ndarray, free_start: bool, free_end: bool):
    """Operations and score of one window; ``used`` says whether the dynamic programme ran."""
    n, m = rw.size, qw.size
    if not free_start and not free_end and n == m:
        mism = int(np.count_nonzero((rw & qw) == 0))
        if mism <= 3:  # the diagonal beats every gapped path (module docstring)
            return np.zeros(n, np.uint8), MATCH * (n - mism) + MISMATCH * mism, False
    if n * m > MAX_WINDOW_CELLS:
        raise AlignmentFailed(
            f"no alignment: a stretch of {n:,} reference × {m:,} genome bases has no anchor"
        )
    if n == 0 or m == 0:
        if n == 0 and m == 0:
            return np.zeros(0, np.uint8), 0, False
        ops, s = align_window(rw, qw, free_start, free_end, MATCH, MISMATCH, GAP_OPEN, GAP_EXTEND)
        return ops, int(s), False
    ops, s = align_window(rw, qw, free_start, free_end, MATCH, MISMATCH, GAP_OPEN, GAP_EXTEND)
    return ops, int(s), True


def path_score(ref: np.ndarray, q: np.ndarray, ops: np.ndarray) -> int:
    """The score of a path (for checks: a normalised path scores as its original)."""
    consumes_r = (ops == OP_MATCH) | (ops == OP_DEL) | (ops == OP_REF_OVERHANG)
    consumes_q = (ops == OP_MATCH) | (ops == OP_INS) | (ops == OP_QRY_OVERHANG)
    ri = np.cumsum(consumes_r) - 1
    qi = np.cumsum(consumes_q) - 1
    is_m = ops == OP_MATCH
    ok = (ref[ri[is_m]] & q[qi[is_m]]) != 0
    score = MATCH * int(ok.sum()) + MISMATCH * int((~ok).sum())
    for code in (OP_DEL, OP_INS):
        mask = (ops == code).astype(np.int8)
        starts = int(np.count_nonzero(np.diff(np.concatenate(([0], mask))) == 1))
        score -= GAP_OPEN * starts + GAP_EXTEND * (int(mask.sum()) - starts)
    return score


def normalise(ref: np.ndarray, q: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """Shift every deletion and insertion to its leftmost equivalent place (module docstring)."""
    ops = ops.copy()
    gaps = np.flatnonzero((ops == OP_DEL) | (ops == OP_INS))
    if not gaps.size:
        return ops
    consumes_r = (ops == OP_MATCH) | (ops == OP_DEL) | (ops == OP_REF_OVERHANG)
    consumes_q = (ops == OP_MATCH) | (ops == OP_INS) | (ops == OP_QRY_OVERHANG)
    r_before = np.concatenate(([0], np.cumsum(consumes_r)))  # reference bases before op t
    q_before = np.concatenate(([0], np.cumsum(consumes_q)))
    # runs of one kind of gap, left to right; a shifted run may meet the one before it
    bounds = np.flatnonzero(np.diff(gaps) != 1) + 1
    for run in np.split(gaps, bounds):
        a, b = int(run[0]), int(run[-1]) + 1
        # a run may mix deletions and insertions (a deletion next to an insertion): split it
        start = a
        while start < b:
            kind = ops[start]
            end = start
            while end < b and ops[end] == kind:
                end += 1
            _shift_left(ops, ref, q, r_before, q_before, start, end, kind)
            start = end
    return ops


def _shift_left(ops, ref, q, r_before, q_before, a, b, kind) -> None:
    """Shift the gap run ``ops[a:b]`` left while the column before it matches before and after
    the move (module docstring)."""
    while a > 0 and ops[a - 1] == OP_MATCH:
        rb = ref[int(r_before[a - 1])]  # the column before the run: reference and query base
        qb = q[int(q_before[a - 1])]
        if kind == OP_DEL:  # after the move, qb faces the run's last reference base
            before, after = qb & rb, qb & ref[int(r_before[b - 1])]
        else:  # after the move, rb faces the run's last query base
            before, after = qb & rb, q[int(q_before[b - 1])] & rb
        if not (before and after):
            return
        ops[a - 1], ops[b - 1] = kind, OP_MATCH
        # only the ops between the two swapped ones see other base counts before them
        r_before[a - 1 : b] = _recount(ops, a - 1, b, r_before[a - 1], consumes="r")
        q_before[a - 1 : b] = _recount(ops, a - 1, b, q_before[a - 1], consumes="q")
        a, b = a - 1, b - 1


def _recount(ops: np.ndarray, a: int, b: int, start: int, consumes: str) -> np.ndarray:
    """Bases consumed before each op of ``ops[a:b]``, given ``start`` before ``ops[a]``."""
    part = ops[a:b]
    if consumes == "r":
        used = (part == OP_MATCH) | (part == OP_DEL) | (part == OP_REF_OVERHANG)
    else:
        used = (part == OP_MATCH) | (part == OP_INS) | (part == OP_QRY_OVERHANG)
    return start + np.concatenate(([0], np.cumsum(used)[:-1]))
