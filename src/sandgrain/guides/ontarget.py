"""The on-target site of a guide designed on a given sequence, among its perfect genome sites.

A guide designed on a raw sequence or a FASTA record has no genome position, yet its own site is
usually in the genome — once, or in several perfect copies. Its on-target is taken to be the
first 0-mismatch site, in genome order, whose **context** equals the input sequence around the
candidate: the Rule Set 1 30-mer (4 bp 5', the site, 3 bp 3'; Doench et al. 2014) for
SpCas9-like guides, else the site with :data:`ON_TARGET_FLANK` bp each side — both as much of it
as the input holds. When no copy matches, the first 0-mismatch site is taken. Every other
0-mismatch site is an off-target (a second copy of the target).
"""

from __future__ import annotations

import numpy as np

from ..genome.regions import reverse_complement
from ..genome.store import Genome
from .candidates import CONTEXT_FLANK_3, CONTEXT_FLANK_5, Candidate
from .hits import Hits
from .kernels import encode
from .nucleases import Nuclease, is_spcas9_like

__all__ = ["ON_TARGET_FLANK", "ContextMatcher", "input_context"]

#: Flank (bp each side) compared around a sequence target's candidate for nucleases without a
#: Rule Set 1 30-mer; SpCas9-like guides compare the 30-mer (4 bp 5', 3 bp 3').
ON_TARGET_FLANK = 10

#: Sites whose genome contexts are read and compared at once (bounds the read-back).
_CONTEXT_BATCH = 4096
_CONTEXT_GAP = 1 << 16  # sites closer than this share one read of the genome
_COMPLEMENT = np.array([3, 2, 1, 0, 4], np.uint8)


def input_context(text: str, c: Candidate, flank5: int, flank3: int) -> tuple[str, int, int]:
    """The candidate's site with up to ``flank5``/``flank3`` bp of the input around it (as much
    as the sequence has), on the guide's strand, and the flanks it got (5', 3')."""
    left, right = (flank5, flank3) if c.strand == "+" else (flank3, flank5)
    left = min(left, c.site_start0)
    right = min(right, len(text) - c.site_end0)
    piece = text[c.site_start0 - left : c.site_end0 + right].upper()
    if c.strand == "-":
        return reverse_complement(piece), right, left
    return piece, left, right


class ContextMatcher:
    """Picks the on-target site of a sequence target's candidate among the genome's 0-mismatch
    sites of its guide: the first (genome order) whose context equals the candidate's context in
    the input, else the first."""

    def __init__(self, hits: Hits, genome: Genome, texts: dict[str, str], nuclease: Nuclease):
        self.hits = hits
        self.genome = genome
        self.texts = texts
        rs1 = is_spcas9_like(nuclease)
        self.flank5 = CONTEXT_FLANK_5 if rs1 else ON_TARGET_FLANK
        self.flank3 = CONTEXT_FLANK_3 if rs1 else ON_TARGET_FLANK
        self._reads: dict[tuple[str, int, int], np.ndarray] = {}

    def _read(self, chrom: str, start0: int, end0: int) -> np.ndarray:
        key = (chrom, start0, end0)
        found = self._reads.get(key)
        if found is None:
            if len(self._reads) > 64:
                self._reads.clear()
            found = self._reads[key] = encode(self.genome.sequence(chrom, start0, end0))
        return found

    def choose(self, i: int, c: Candidate) -> int | None:
        t = self.hits.table
        rows = self.hits.search.rows(i)
        zero = rows[t.mismatches[rows] == 0]
        if len(zero) <= 1:
            return int(zero[0]) if len(zero) else None
        context, a5, a3 = input_context(self.texts[c.chrom], c, self.flank5, self.flank3)
        want = encode(context)
        width = len(want)
        chrom, minus = t.chrom[zero], t.minus[zero]
        lo = t.pos0[zero] - np.where(minus, a3, a5)
        hi = lo + width
        cuts = np.flatnonzero((chrom[1:] != chrom[:-1]) | (lo[1:] - hi[:-1] > _CONTEXT_GAP)) + 1
        starts = [0, *cuts.tolist()]
        ends = [*cuts.tolist(), len(zero)]
        span = np.arange(width)
        for a0, b0 in zip(starts, ends, strict=True):
            for a in range(a0, b0, _CONTEXT_BATCH):
                b = min(b0, a + _CONTEXT_BATCH)
                name = t.chroms[int(chrom[a])]
                length = self.genome.length(name)
                f0, f1 = max(0, int(lo[a:b].min())), min(length, int(hi[a:b].max()))
                idx = (lo[a:b] - f0)[:, None] + span[None, :]
                got = np.full(idx.shape, 4, np.uint8)  # N beyond the chromosome's ends
                if f1 > f0:
                    codes = self._read(name, f0, f1)
                    inside = (idx >= 0) & (idx < len(codes))
                    got[inside] = codes[idx[inside]]
                flip = minus[a:b]
                got[flip] = _COMPLEMENT[got[flip][:, ::-1]]
                same = (got == want[None, :]).all(axis=1)
                if same.any():
                    return int(zero[a + int(np.argmax(same))])
        return int(zero[0])
