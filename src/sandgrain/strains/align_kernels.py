"""Numba kernel of the strains aligner: affine-gap dynamic programming over one window.

The readable layer is :mod:`sandgrain.strains.align`; this module only holds the hot loop (the
sgkit habit: kernels apart from the API). Its twin, a plain full-matrix aligner written with numpy
and no window or band, lives in ``tests/strains/strains_dp_reference.py``; the two share the
recurrences and the tie rules below, and the tests hold them together.

Bases are IUPAC bit masks (A=1, C=2, G=4, T=8, N=15, R=A|G …). A reference base and a query
base *match* when their masks share a bit (so N and any compatible ambiguity code match, as in
Nextclade's scoring), otherwise they mismatch.

Recurrences (Gotoh 1982), with ``open`` the cost of a gap's first base and ``ext`` of each
further base::

    D[i,j] = max(H[i-1,j] - open, D[i-1,j] - ext)          deletion: reference base i unmatched
    I[i,j] = max(H[i,j-1] - open, I[i,j-1] - ext)          insertion: query base j unmatched
    H[i,j] = max(H[i-1,j-1] + s(r_i, q_j), D[i,j], I[i,j])

Tie rules (what makes two implementations give the same path, not just the same score):
``H`` prefers the diagonal, then ``D``, then ``I``; ``D`` and ``I`` prefer opening a gap over
extending one. With a *free start*, row 0 and column 0 are 0 (unaligned leading bases cost
nothing); otherwise they are gaps from the corner. With a *free end* the path may end anywhere
on the last row or column: the highest ``H`` wins, ties going to the cell with the largest
``i + j``, then the largest ``i``.

Operations of a path (what :func:`align_window` returns, first to last):
``OP_MATCH`` (a reference and a query base aligned), ``OP_DEL`` (a reference base without a query
base), ``OP_INS`` (a query base without a reference base), ``OP_REF_OVERHANG`` (a reference base
before or after the query, with a free start or end: not sequenced), ``OP_QRY_OVERHANG`` (a
query base beyond the reference's ends: ignored).
"""

from __future__ import annotations

import numpy as np
from numba import njit

OP_MATCH, OP_DEL, OP_INS, OP_REF_OVERHANG, OP_QRY_OVERHANG = 0, 1, 2, 3, 4

#: A score no path reaches (well below any real alignment, far from int32 overflow).
NEG = -(1 << 28)

# traceback bits of one cell
_H_DIAG, _H_DEL, _H_INS = 0, 1, 2
_D_EXT = 4
_I_EXT = 8


@njit(cache=True)
def align_window(r, q, free_start, free_end, match, mismatch, gap_open, gap_ext):
    """Optimal path through ``r`` (reference masks) × ``q`` (query masks), as operations.

    Returns ``(ops, score)``: a uint8 array of operations (see the module docstring) and the
    path's score. Memory: one traceback byte per cell and three score rows.
    """
    n = r.shape[0]
    m = q.shape[0]
    tb = np.zeros((n + 1, m + 1), dtype=np.uint8)
    h_prev = np.empty(m + 1, dtype=np.int32)
    d_prev = np.empty(m + 1, dtype=np.int32)
    h_cur = np.empty(m + 1, dtype=np.int32)
    d_cur = np.empty(m + 1, dtype=np.int32)
    last_col = np.empty(n + 1, dtype=np.int32)
    # row 0
    h_prev[0] = 0
    d_prev[0] = NEG
    for j in range(1, m + 1):
        h_prev[j] = 0 if free_start else -gap_open - (j - 1) * gap_ext
        d_prev[j] = NEG
    last_col[0] = h_prev[m]
    for i in range(1, n + 1):
        ri = r[i - 1]
        h_cur[0] = 0 if free_start else -gap_open - (i - 1) * gap_ext
        d_cur[0] = NEG
        ins = NEG
        for j in range(1, m + 1):
            bits = 0
            # deletion (vertical)
            dopen = h_prev[j] - gap_open
            dext = d_prev[j] - gap_ext
            if dopen >= dext:
                dv = dopen
            else:
                dv = dext
                bits |= _D_EXT
            # insertion (horizontal)
            iopen = h_cur[j - 1] - gap_open
            iext = ins - gap_ext
            if iopen >= iext:
                ins = iopen
            else:
                ins = iext
                bits |= _I_EXT
            diag = h_prev[j - 1] + (match if (ri & q[j - 1]) != 0 else mismatch)
            if diag >= dv and diag >= ins:
                hv = diag
            elif dv >= ins:
                hv = dv
                bits |= _H_DEL
            else:
                hv = ins
                bits |= _H_INS
            h_cur[j] = hv
            d_cur[j] = dv
            tb[i, j] = bits
        last_col[i] = h_cur[m]
        h_prev, h_cur = h_cur, h_prev
        d_prev, d_cur = d_cur, d_prev
    # h_prev is now row n
    end_i, end_j = n, m
    best = h_prev[m]
    if free_end:
        # candidates by decreasing i + j, then decreasing i: (n, m), then (n, m-1) / (n-1, m), …
        for t in range(1, n + m + 1):
            # on the anti-diagonal i + j = n + m - t: the last-row cell has the larger i
            j = m - t
            if j >= 0 and h_prev[j] > best:
                best = h_prev[j]
                end_i, end_j = n, j
            i = n - t
            if i >= 0 and last_col[i] > best:
                best = last_col[i]
                end_i, end_j = i, m
    out = np.empty(n + m, dtype=np.uint8)
    k = 0
    # trailing overhangs of a free end
    for _ in range(m - end_j):
        out[k] = OP_QRY_OVERHANG
        k += 1
    for _ in range(n - end_i):
        out[k] = OP_REF_OVERHANG
        k += 1
    i, j = end_i, end_j
    state = 0  # 0: H, 1: D, 2: I
    while i > 0 and j > 0:
        bits = tb[i, j]
        if state == 0:
            src = bits & 3
            if src == _H_DIAG:
                out[k] = OP_MATCH
                k += 1
                i -= 1
                j -= 1
            elif src == _H_DEL:
                state = 1
            else:
                state = 2
        elif state == 1:
            out[k] = OP_DEL
            k += 1
            if not (bits & _D_EXT):
                state = 0
            i -= 1
        else:
            out[k] = OP_INS
            k += 1
            if not (bits & _I_EXT):
                state = 0
            j -= 1
    while i > 0:
        out[k] = OP_REF_OVERHANG if free_start else OP_DEL
        k += 1
        i -= 1
    while j > 0:
        out[k] = OP_QRY_OVERHANG if free_start else OP_INS
        k += 1
        j -= 1
    return out[:k][::-1].copy(), best


# -- seeds ----------------------------------------------------------------------------------------
#: bit mask → 2-bit base code (A=0, C=1, G=2, T=3), 4 for N and ambiguity codes
_CODE2 = np.array([4, 0, 1, 4, 2, 4, 4, 4, 3, 4, 4, 4, 4, 4, 4, 4], dtype=np.uint8)


@njit(cache=True)
def _hash(code, size_mask):
    return (code * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40) & size_mask


@njit(cache=True)
def kmer_table(masks, k):
    """Open-addressing table of the k-mers (A/C/G/T only) seen exactly once in ``masks``:
    ``(keys, positions)``, a position of -1 marking an empty slot and -2 a repeated k-mer."""
    size = 1
    while size < 4 * masks.shape[0]:
        size *= 2
    keys = np.zeros(size, dtype=np.uint64)
    pos = np.full(size, -1, dtype=np.int64)
    size_mask = np.uint64(size - 1)
    full = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    code = np.uint64(0)
    valid = 0
    for i in range(masks.shape[0]):
        c = _CODE2[masks[i]]
        if c == 4:
            valid = 0
            code = np.uint64(0)
            continue
        code = ((code << np.uint64(2)) | np.uint64(c)) & full
        valid += 1
        if valid < k:
            continue
        slot = _hash(code, size_mask)
        while True:
            if pos[slot] == -1:
                keys[slot] = code
                pos[slot] = i - k + 1
                break
            if keys[slot] == code:
                pos[slot] = -2
                break
            slot = (slot + np.uint64(1)) & size_mask
    return keys, pos


@njit(cache=True)
def seed_runs(q, keys, pos, k, ref_code, unique_at):
    """Runs of consecutive query k-mers found once in the reference on one diagonal:
    ``(r_start, q_start, length)`` arrays, each run an exact match of ``length`` bases.

    ``ref_code`` holds the reference's 2-bit base codes (4 for N and ambiguity codes) and
    ``unique_at[p]`` whether the reference k-mer starting at ``p`` is in the table (seen once).
    A k-mer that follows a hit is first checked against the next reference k-mer on the same
    diagonal (its one new base, and whether that k-mer is unique) before the table is probed:
    when both hold, the probe would find exactly that position, so the answer is the same and
    the run of a genome that agrees with its reference costs a comparison per base, not a
    probe of the table."""
    size_mask = np.uint64(keys.shape[0] - 1)
    n_ref = ref_code.shape[0]
    full = (np.uint64(1) << np.uint64(2 * k)) - np.uint64(1)
    n = q.shape[0]
    rs = np.empty(n, dtype=np.int64)
    qs = np.empty(n, dtype=np.int64)
    ls = np.empty(n, dtype=np.int64)
    count = 0
    code = np.uint64(0)
    valid = 0
    last_q = -10
    last_d = 0
    prev_hit = -1  # reference start of the previous query k-mer's hit (-1: it had none)
    for i in range(n):
        c = _CODE2[q[i]]
        if c == 4:
            valid = 0
            code = np.uint64(0)
            prev_hit = -1
            continue
        code = ((code << np.uint64(2)) | np.uint64(c)) & full
        valid += 1
        if valid < k:
            continue
        hit = -1
        nxt = prev_hit + 1
        if prev_hit >= 0 and nxt + k - 1 < n_ref and ref_code[nxt + k - 1] == c and unique_at[nxt]:
            hit = nxt
        else:
            slot = _hash(code, size_mask)
            while pos[slot] != -1:
                if keys[slot] == code:
                    hit = pos[slot]
                    break
                slot = (slot + np.uint64(1)) & size_mask
        prev_hit = hit
        if hit < 0:
            continue
        qstart = i - k + 1
        d = hit - qstart
        if count > 0 and qstart == last_q + 1 and d == last_d:
            ls[count - 1] += 1
        else:
            rs[count] = hit
            qs[count] = qstart
            ls[count] = k
            count += 1
        last_q = qstart
        last_d = d
    return rs[:count], qs[:count], ls[:count]
