"""A plain, obviously-right off-target scan: every window of every chromosome, both strands.

The accelerated search (site index + pigeonhole kernel) must return exactly this set.
"""

from __future__ import annotations

import numpy as np

from sandgrain.guides.iupac import bases
from sandgrain.guides.kernels import encode


def reference_offtargets(
    seqs: dict[str, str], guides: list[str], pams: list[str], length: int, pam_side: str, k: int
) -> set[tuple]:
    """{(guide index, chrom, pos0, strand, mismatches, protospacer, pam, pam pattern)}.

    A window is ``seq[s : s + length + len(pam)]``; on the minus strand it is read as its
    reverse complement. The first PAM pattern that matches wins; a genome N matches only a
    pattern N and always counts as a mismatch in the protospacer.
    """
    P = len(pams[0])
    W = length + P
    proto_cols = range(0, length) if pam_side == "3" else range(P, W)
    pam_cols = range(length, W) if pam_side == "3" else range(0, P)
    hits = set()
    for chrom, seq in seqs.items():
        cd = encode(seq)
        n = len(cd) - W + 1
        if n <= 0:
            continue
        comp = np.where(cd < 4, 3 - cd, 4).astype(np.uint8)
        for strand in "+-":
            src = cd if strand == "+" else comp

            def col(j, src=src, n=n, plus=strand == "+"):
                return src[j : j + n] if plus else src[W - 1 - j : W - 1 - j + n]

            matched = np.zeros(n, bool)
            which = np.full(n, -1)
            for pi, pattern in enumerate(pams):
                ok = np.ones(n, bool)
                for j, code in zip(pam_cols, pattern, strict=True):
                    allowed = ["ACGT".index(b) for b in bases(code)] + ([4] if code == "N" else [])
                    ok &= np.isin(col(j), allowed)
                which[ok & ~matched] = pi
                matched |= ok
            for gi, guide in enumerate(guides):
                mm = np.zeros(n, int)
                for i, j in enumerate(proto_cols):
                    mm += col(j) != "ACGT".index(guide[i])
                for s in np.nonzero(matched & (mm <= k))[0]:
                    w = seq[s : s + W].upper()
                    if strand == "-":
                        w = w[::-1].translate(str.maketrans("ACGTN", "TGCAN"))
                    proto = w[:length] if pam_side == "3" else w[P:]
                    pam = w[length:] if pam_side == "3" else w[:P]
                    hits.add((gi, chrom, int(s), strand, int(mm[s]), proto, pam, pams[which[s]]))
    return hits
