"""Numba kernels that write off-target sites as text (the hot loops of :mod:`.output`).

:func:`assemble` writes lines. A line is a fixed sequence of *segments*, each one of:

``TOKEN``
    the same text on every line (a tab, a JSON key): token ``arg`` of the token table;
``ROW_TOKEN``
    a text chosen per line (a chromosome name, a formatted score): the token whose number is in
    column ``arg`` of ``cols``;
``INTEGER``
    the integer in column ``arg`` of ``cols``, in decimal;
``BYTES``
    ``width`` bytes of each line's row of ``fixed``, from column ``arg`` (a protospacer).

Tokens are stored back to back in ``tok_data``, token ``t`` at ``tok_data[tok_off[t]:
tok_off[t + 1]]``. The kernel sizes each line exactly in a first pass, then fills the text, so
a chunk costs its text and nothing more. :func:`site_letters` and :func:`mismatch_masks` read
the sites' base codes straight from a search table's columns. The readable layer
(:mod:`.output`) builds the columns and the tokens; the tests compare its text with the plain
writers of :mod:`.formats`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TOKEN, ROW_TOKEN, INTEGER, BYTES = 0, 1, 2, 3

#: "00" … "99", for writing integers two digits at a time.
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), np.uint8).copy()
#: Base codes (A, C, G, T, N) to letters; code + 5 gives the lower-case letter.
_LETTERS = np.frombuffer(b"ACGTNacgtn", np.uint8).copy()


@njit(cache=True, inline="always")
def _digits(v):
    """Decimal digits of ``v`` ≥ 0."""
    n = 1
    while v >= 10:
        if v < 100:
            return n + 1
        if v < 10000:
            return n + 2 + (v >= 1000)
        v //= 10000
        n += 4
    return n


@njit(cache=True, inline="always")
def _length(v):
    """Characters of ``v`` in decimal, a minus sign included."""
    return _digits(-v) + 1 if v < 0 else _digits(v)


@njit(cache=True, nogil=True)
def assemble(kind, arg, width, cols, fixed, tok_data, tok_off):
    """The text of ``cols.shape[0]`` lines (module doc) as one ``uint8`` array, and the end
    of each line in it."""
    n = cols.shape[0]
    nseg = kind.shape[0]
    const = 0  # the segments every line has the same length of
    for s in range(nseg):
        if kind[s] == TOKEN:
            const += tok_off[arg[s] + 1] - tok_off[arg[s]]
        elif kind[s] == BYTES:
            const += width[s]
    ends = np.empty(n, np.int64)
    total = 0
    for i in range(n):
        total += const
        for s in range(nseg):
            k = kind[s]
            if k == ROW_TOKEN:
                t = cols[i, arg[s]]
                total += tok_off[t + 1] - tok_off[t]
            elif k == INTEGER:
                total += _length(cols[i, arg[s]])
        ends[i] = total
    out = np.empty(total, np.uint8)
    p = 0
    for i in range(n):
        for s in range(nseg):
            k = kind[s]
            if k == TOKEN or k == ROW_TOKEN:  # noqa: SIM109 (numba-compiled: plain compares)
                t = arg[s] if k == TOKEN else cols[i, arg[s]]
                for j in range(tok_off[t], tok_off[t + 1]):
                    out[p] = tok_data[j]
                    p += 1
            elif k == INTEGER:
                v = cols[i, arg[s]]
                if v < 0:
                    out[p] = 45  # "-"
                    p += 1
                    v = -v
                d = _digits(v)
                p += d
                q = p
                while v >= 100:  # two digits at a time, from the right
                    r = v % 100
                    v //= 100
                    q -= 2
                    out[q] = _PAIRS[2 * r]
                    out[q + 1] = _PAIRS[2 * r + 1]
                if v >= 10:
                    out[q - 2] = _PAIRS[2 * v]
                    out[q - 1] = _PAIRS[2 * v + 1]
                else:
                    out[q - 1] = 48 + v
            else:
                c0 = arg[s]
                for j in range(width[s]):
                    out[p] = fixed[i, c0 + j]
                    p += 1
    return out, ends


@njit(cache=True, nogil=True)
def site_letters(proto, pam, rows, gcodes, slot, lowercase, pam_first):
    """The letters of sites ``rows`` of a table (``proto`` and ``pam``: its base-code columns),
    one row each: protospacer then PAM, or PAM first (``pam_first``); with ``lowercase``, the
    protospacer bases that differ from the guide's (``gcodes[slot[i]]``) in lower case, as
    Cas-OFFinder writes them."""
    n = rows.shape[0]
    L = proto.shape[1]
    P = pam.shape[1]
    out = np.empty((n, L + P), np.uint8)
    a = P if pam_first else 0  # where the protospacer starts in a row
    b = 0 if pam_first else L  # where the PAM starts
    for i in range(n):
        r = rows[i]
        g = slot[i]
        for j in range(L):
            c = proto[r, j]
            if lowercase and c != gcodes[g, j]:
                c += 5
            out[i, a + j] = _LETTERS[c]
        for j in range(P):
            out[i, b + j] = _LETTERS[pam[r, j]]
    return out


@njit(cache=True, nogil=True)
def mismatch_masks(proto, rows, gcodes, slot, from_end):
    """Each site's mismatch positions as bits (bit ``p - 1`` for position ``p``): the bases of
    ``proto[rows[i]]`` that differ from ``gcodes[slot[i]]``, positions counted from the first
    base, or from the last (``from_end``; the PAM-distal end of a 5' PAM's protospacer)."""
    n = rows.shape[0]
    L = proto.shape[1]
    out = np.zeros(n, np.int64)
    for i in range(n):
        r = rows[i]
        g = slot[i]
        m = 0
        for j in range(L):
            if proto[r, j] != gcodes[g, j]:
                m |= np.int64(1) << (L - 1 - j if from_end else j)
        out[i] = m
    return out
