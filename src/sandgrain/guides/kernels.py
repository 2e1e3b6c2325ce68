"""Numba kernels of the off-target search: site extraction and the pigeonhole search.

The readable layer is :mod:`sandgrain.guides.siteindex` and :mod:`sandgrain.guides.search`; this
module only holds the hot loops (the sgkit habit: kernels apart from the API). Bases are coded
A=0, C=1, G=2, T=3, anything else (N) 4; a protospacer of L ≤ 32 bases is packed 2 bits a base,
first base in the highest bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: bytes → base codes (A/a=0, C/c=1, G/g=2, T/t=3, everything else 4)
CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    CODE[_b] = _i
    CODE[_b + 32] = _i
del _i, _b

_M1 = np.uint64(0x5555555555555555)


def encode(seq: str | bytes) -> np.ndarray:
    """Base codes of a sequence (soft-masked bases code like upper-case ones)."""
    data = seq.encode("ascii") if isinstance(seq, str) else seq
    return CODE[np.frombuffer(data, dtype=np.uint8)]


@njit(cache=True, inline="always")
def popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit(cache=True, inline="always")
def mismatches(a, b, nbases):
    """Number of differing bases between two packed sequences of ``nbases`` bases."""
    x = a ^ b
    y = (x | (x >> np.uint64(1))) & np.uint64(0x5555555555555555)
    if nbases < 32:
        y &= (np.uint64(1) << np.uint64(2 * nbases)) - np.uint64(1)
    return popcount64(y)


@njit(cache=True)
def extract_sites(codes, lo, hi, L, P, pam_masks, pam5, chrom_idx, pos_base):
    """All PAM-adjacent protospacers whose window starts in ``codes[lo:hi]``, both strands.

    A window is ``codes[s : s + L + P]``; on the minus strand it is read reverse-complemented.
    ``pam_masks[p, j]`` has bit b set when PAM pattern p allows base b at position j (15 = N,
    which also accepts a genome N). Returns packed protospacers (uint64), a location word per
    site (position ``pos_base + s`` in bits 0–31, chromosome index in bits 32–51, strand in bit
    52 (1 = minus), PAM pattern in bits 53–55), the PAM bases packed (uint16), and a flag for
    protospacers containing N (their packed value is meaningless; the caller keeps their codes).
    """
    W = L + P
    n = 0
    cap = max(1024, (hi - lo) // 4)
    packed = np.empty(cap, np.uint64)
    loc = np.empty(cap, np.uint64)
    pams = np.empty(cap, np.uint16)
    hasn = np.empty(cap, np.bool_)
    npat = pam_masks.shape[0]
    for s in range(lo, hi):
        if s + W > codes.shape[0]:
            break
        for strand in range(2):
            # which pattern (if any) the PAM matches
            pat = -1
            for p in range(npat):
                ok = True
                for j in range(P):
                    if strand == 0:
                        c = codes[s + L + j] if not pam5 else codes[s + j]
                    else:
                        c = codes[s + P - 1 - j] if not pam5 else codes[s + W - 1 - j]
                        if c < 4:
                            c = 3 - c
                    m = pam_masks[p, j]
                    if c == 4:
                        if m != 15:
                            ok = False
                            break
                    elif not (m >> c) & 1:
                        ok = False
                        break
                if ok:
                    pat = p
                    break
            if pat < 0:
                continue
            v = np.uint64(0)
            pv = np.uint16(0)
            nflag = False
            for i in range(L):
                if strand == 0:
                    c = codes[s + i] if not pam5 else codes[s + P + i]
                else:
                    c = codes[s + W - 1 - i] if not pam5 else codes[s + L - 1 - i]
                    if c < 4:
                        c = 3 - c
                if c == 4:
                    nflag = True
                    c = 0
                v = (v << np.uint64(2)) | np.uint64(c)
            for j in range(P):
                if strand == 0:
                    c = codes[s + L + j] if not pam5 else codes[s + j]
                else:
                    c = codes[s + P - 1 - j] if not pam5 else codes[s + W - 1 - j]
                    if c < 4:
                        c = 3 - c
                if c == 4:
                    c = 0
                pv = np.uint16((pv << 2) | c)
            if n == cap:
                cap *= 2
                packed = _grow_u64(packed, cap)
                loc = _grow_u64(loc, cap)
                pams2 = np.empty(cap, np.uint16)
                pams2[:n] = pams[:n]
                pams = pams2
                hasn2 = np.empty(cap, np.bool_)
                hasn2[:n] = hasn[:n]
                hasn = hasn2
            packed[n] = v
            loc[n] = (
                np.uint64(pos_base + s)
                | (np.uint64(chrom_idx) << np.uint64(32))
                | (np.uint64(strand) << np.uint64(52))
                | (np.uint64(pat) << np.uint64(53))
            )
            pams[n] = pv
            hasn[n] = nflag
            n += 1
    return packed[:n], loc[:n], pams[:n], hasn[:n]


@njit(cache=True)
def _grow_u64(a, cap):
    b = np.empty(cap, np.uint64)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def window_codes(codes, s, L, P, pam5, strand):
    """Protospacer codes (with 4 for N) of the window at ``s`` on ``strand`` (for N-sites)."""
    W = L + P
    out = np.empty(L, np.uint8)
    for i in range(L):
        if strand == 0:
            c = codes[s + i] if not pam5 else codes[s + P + i]
        else:
            c = codes[s + W - 1 - i] if not pam5 else codes[s + L - 1 - i]
            if c < 4:
                c = 3 - c
        out[i] = c
    return out


@njit(cache=True, nogil=True)
def search_partition(
    g_rest_a,
    g_rest_b,
    va_keys,
    va_mm,
    va_guide,
    vb_keys,
    vb_mm,
    vb_guide,
    a_off,
    a_rest,
    b_off,
    b_rest,
    b_idx,
    L,
    h,
    ka,
    kb,
    k,
    t,
):
    """Pigeonhole search of one partition (see :mod:`sandgrain.guides.search`).

    For guide g, every site within ``k`` mismatches has ≤ ``t = k // 2`` mismatches in its first
    half [0, h) or in its second half [h, L). Pass A enumerates the guides' first-half key
    variants with ≤ t mismatches (``va_*``: key, mismatches, guide; sorted by key, so buckets are
    visited in memory order) and scans their buckets; pass B does the same on the second half and
    keeps only sites whose first half has > t mismatches, so each site is found once.
    Returns (guide index, site index in the A arrays, mismatches, packed protospacer).
    """
    cap = 1 << 16
    out_g = np.empty(cap, np.uint32)
    out_i = np.empty(cap, np.uint32)
    out_m = np.empty(cap, np.uint8)
    out_s = np.empty(cap, np.uint64)
    n = 0
    rest_a_len = L - ka  # bases in a_rest: positions ka..L-1
    a_tail = h - ka  # of which the first a_tail belong to the first half
    b_low = L - h - kb  # bases after the key in the second half
    for v in range(va_keys.shape[0]):
        key = va_keys[v]
        mk = va_mm[v]
        g = va_guide[v]
        ra = g_rest_a[g]
        for i in range(a_off[key], a_off[key + 1]):
            x = np.uint64(a_rest[i]) ^ ra
            y = (x | (x >> np.uint64(1))) & np.uint64(0x5555555555555555)
            total = mk + popcount64(y)
            if total > k:
                continue
            if a_tail > 0:
                first = mk + popcount64(y >> np.uint64(2 * (rest_a_len - a_tail)))
                if first > t:
                    continue
            if n == cap:
                cap *= 2
                out_g, out_i, out_m, out_s = _grow4(out_g, out_i, out_m, out_s, n, cap)
            out_g[n] = g
            out_i[n] = i
            out_m[n] = total
            out_s[n] = (np.uint64(key) << np.uint64(2 * rest_a_len)) | np.uint64(a_rest[i])
            n += 1
    for v in range(vb_keys.shape[0]):
        key = vb_keys[v]
        mk = vb_mm[v]
        g = vb_guide[v]
        rb = g_rest_b[g]
        for i in range(b_off[key], b_off[key + 1]):
            x = np.uint64(b_rest[i]) ^ rb
            y = (x | (x >> np.uint64(1))) & np.uint64(0x5555555555555555)
            total = mk + popcount64(y)
            if total > k:
                continue
            first = popcount64(y >> np.uint64(2 * b_low))
            if first <= t:
                continue  # first half within t: pass A found it
            if n == cap:
                cap *= 2
                out_g, out_i, out_m, out_s = _grow4(out_g, out_i, out_m, out_s, n, cap)
            r = np.uint64(b_rest[i])
            hi_part = r >> np.uint64(2 * b_low)
            lo_part = r & ((np.uint64(1) << np.uint64(2 * b_low)) - np.uint64(1))
            full = (
                (hi_part << np.uint64(2 * (L - h)))
                | (np.uint64(key) << np.uint64(2 * b_low))
                | lo_part
            )
            out_g[n] = g
            out_i[n] = b_idx[i]
            out_m[n] = total
            out_s[n] = full
            n += 1
    return out_g[:n], out_i[:n], out_m[:n], out_s[:n]


@njit(cache=True)
def _grow4(a, b, c, d, n, cap):
    a2 = np.empty(cap, a.dtype)
    b2 = np.empty(cap, b.dtype)
    c2 = np.empty(cap, c.dtype)
    d2 = np.empty(cap, d.dtype)
    a2[:n] = a[:n]
    b2[:n] = b[:n]
    c2[:n] = c[:n]
    d2[:n] = d[:n]
    return a2, b2, c2, d2


@njit(cache=True, nogil=True)
def search_nsites(g_codes, n_codes, k):
    """Brute force over the few sites whose protospacer contains N (N never matches)."""
    out_g = []
    out_j = []
    out_m = []
    for g in range(g_codes.shape[0]):
        for j in range(n_codes.shape[0]):
            mm = 0
            for i in range(g_codes.shape[1]):
                if n_codes[j, i] != g_codes[g, i]:
                    mm += 1
                    if mm > k:
                        break
            if mm <= k:
                out_g.append(g)
                out_j.append(j)
                out_m.append(mm)
    return np.array(out_g, np.int64), np.array(out_j, np.int64), np.array(out_m, np.int64)
