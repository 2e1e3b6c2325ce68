"""The slow, obviously-correct twin of the strains aligner: one full dynamic-programming matrix.

No seeds, no anchors, no windows, no band: every cell of reference × genome is computed with
numpy, one row at a time, under the recurrences, scores and tie rules written out in
:mod:`sandgrain.strains.align_kernels` (free end gaps on both sequences). Memory stays small by
checkpointing: every ``block``-th row is kept during the forward pass, and the traceback
recomputes one block of rows at a time from its checkpoint.

The insertion row uses the closed form of its recurrence: with ``open >= ext``,
``I[i,j] = max over k < j of (H'[i,k] + k·ext) − open − (j−1)·ext`` where ``H'`` is the row
before insertions are considered (an insertion never follows another insertion's opening more
cheaply than its extension), a running maximum.
"""

from __future__ import annotations

import numpy as np

from sandgrain.strains.align import GAP_EXTEND, GAP_OPEN, MATCH, MISMATCH, normalise
from sandgrain.strains.align_kernels import (
    NEG,
    OP_DEL,
    OP_INS,
    OP_MATCH,
    OP_QRY_OVERHANG,
    OP_REF_OVERHANG,
)


def _rows(r, q, start_row, h0, d0, i_count, free_start):
    """Rows ``start_row+1 … start_row+i_count`` of H, D and I, from row ``start_row``."""
    m = q.size
    ks = np.arange(m + 1, dtype=np.int64)
    h_prev, d_prev = h0, d0
    out = []
    scores = {}  # one score row per distinct reference base
    for i in range(start_row + 1, start_row + i_count + 1):
        s = scores.get(int(r[i - 1]))
        if s is None:
            s = scores[int(r[i - 1])] = np.where((r[i - 1] & q) != 0, MATCH, MISMATCH)
        d = np.maximum(h_prev - GAP_OPEN, d_prev - GAP_EXTEND)
        d[0] = NEG
        hx = np.empty(m + 1, np.int64)
        hx[0] = 0 if free_start else -GAP_OPEN - (i - 1) * GAP_EXTEND
        hx[1:] = np.maximum(h_prev[:-1] + s, d[1:])
        ins = np.full(m + 1, NEG, np.int64)
        run = np.maximum.accumulate(hx + ks * GAP_EXTEND)
        ins[1:] = run[:-1] - GAP_OPEN - (ks[1:] - 1) * GAP_EXTEND
        h = np.maximum(hx, ins)
        h[0] = hx[0]
        out.append((h, d, ins))
        h_prev, d_prev = h, d
    return out


def full_dp(ref_masks: np.ndarray, q: np.ndarray, block: int = 256) -> tuple[np.ndarray, int]:
    """The optimal path (operations, normalised) and its score, from the full matrix."""
    r = ref_masks.astype(np.int64)
    q = q.astype(np.int64)
    n, m = r.size, q.size
    free_start = free_end = True
    h0 = np.zeros(m + 1, np.int64)
    d0 = np.full(m + 1, NEG, np.int64)
    checkpoints = {0: (h0, d0)}
    last_col = np.empty(n + 1, np.int64)
    last_col[0] = h0[m]
    h, d = h0, d0
    for start in range(0, n, block):
        count = min(block, n - start)
        rows = _rows(r, q, start, h, d, count, free_start)
        for t, (hr, _, _) in enumerate(rows):
            last_col[start + t + 1] = hr[m]
        h, d = rows[-1][0], rows[-1][1]
        checkpoints[start + count] = (h, d)
    last_row = h
    # the end cell: best H on the last row or column; ties: larger i + j, then larger i
    end_i, end_j, best = n, m, last_row[m]
    if free_end:
        for t in range(1, n + m + 1):
            j, i = m - t, n - t
            if j >= 0 and last_row[j] > best:
                best, end_i, end_j = last_row[j], n, j
            if i >= 0 and last_col[i] > best:
                best, end_i, end_j = last_col[i], i, m
    ops = [OP_QRY_OVERHANG] * (m - end_j) + [OP_REF_OVERHANG] * (n - end_i)
    cache: dict[int, tuple] = {}

    def row(i):
        """(H, D, I) of row i, recomputing its block of rows from the checkpoint when needed."""
        if i == 0:
            return h0, d0, np.full(m + 1, NEG, np.int64)
        if i not in cache:
            cache.clear()
            start = (i - 1) // block * block
            hs, ds = checkpoints[start]
            for t, vals in enumerate(_rows(r, q, start, hs, ds, min(block, n - start), free_start)):
                cache[start + t + 1] = vals
        return cache[i]

    i, j, state = end_i, end_j, "H"
    while i > 0 and j > 0:
        h_i, d_i, ins_i = row(i)
        if state == "H":
            h_up = row(i - 1)[0]
            diag = h_up[j - 1] + (MATCH if (r[i - 1] & q[j - 1]) else MISMATCH)
            if diag >= d_i[j] and diag >= ins_i[j]:
                ops.append(OP_MATCH)
                i, j = i - 1, j - 1
            elif d_i[j] >= ins_i[j]:
                state = "D"
            else:
                state = "I"
        elif state == "D":
            h_up, d_up, _ = row(i - 1)
            ops.append(OP_DEL)
            if h_up[j] - GAP_OPEN >= d_up[j] - GAP_EXTEND:
                state = "H"
            i -= 1
        else:
            ops.append(OP_INS)
            if h_i[j - 1] - GAP_OPEN >= ins_i[j - 1] - GAP_EXTEND:
                state = "H"
            j -= 1
    ops += [OP_REF_OVERHANG] * i + [OP_QRY_OVERHANG] * j
    path = np.array(ops[::-1], dtype=np.uint8)
    return normalise(ref_masks, q.astype(np.uint8), path), int(best)
