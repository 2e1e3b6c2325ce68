"""The sequence around each candidate site, as the on-target scores and site features need it.

Rule Set 1 and 3 read a 30-mer, CRISPRscan a 35-mer, the out-of-frame score a window centred on
the cut, restriction sites and primers the bases around the cut. :class:`ContextReader` reads
each target region of the genome once, with a margin, and cuts every candidate's window from
it — never one genome read per candidate (a 1 Mb target has ~80,000 candidates).

A window is given on the candidate's own strand, uppercase: ``flanked(c, f5, f3)`` is ``f5``
bases 5' of the site (protospacer + PAM, in their order on the strand), the site, and ``f3``
bases 3' of it; ``around_cut(c, left, right)`` is ``left`` bases 5' of the cut and ``right`` 3'
of it, so the cut sits at index ``left``. Where the window runs off the chromosome (or off a
given sequence) the answer is ``None``.
"""

from __future__ import annotations

from ..genome.regions import reverse_complement
from ..genome.store import Genome
from .candidates import Candidate

__all__ = ["MARGIN", "ContextReader"]

#: Bases read beyond each target region: enough for every window the scores and features use
#: (primers are read apart, as they look further).
MARGIN = 200


class ContextReader:
    """Windows around candidates of one target: from the genome (gene and region targets) or
    from the given sequences (``records``: sequence and FASTA targets)."""

    def __init__(
        self,
        genome: Genome | None,
        candidates: list[Candidate],
        records: dict[str, str] | None = None,
    ):
        self._pieces: dict[str, list[tuple[int, str]]] = {}
        if records is not None:
            for name, text in records.items():
                self._pieces[name] = [(0, text.upper())]
            return
        spans: dict[str, list[list[int]]] = {}
        for c in sorted(candidates, key=lambda c: (c.chrom, c.start0)):
            lo, hi = c.start0 - MARGIN, c.end0 + MARGIN
            runs = spans.setdefault(c.chrom, [])
            if runs and lo <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], hi)
            else:
                runs.append([lo, hi])
        for chrom, runs in spans.items():
            length = genome.length(chrom)
            for lo, hi in runs:
                lo, hi = max(0, lo), min(length, hi)
                self._pieces.setdefault(chrom, []).append(
                    (lo, genome.sequence(chrom, lo, hi).upper())
                )

    def _forward(self, chrom: str, start0: int, end0: int) -> str | None:
        if start0 < 0:
            return None
        for lo, text in self._pieces.get(chrom, ()):
            if lo <= start0 and end0 <= lo + len(text):
                return text[start0 - lo : end0 - lo]
        return None

    def _window(self, c: Candidate, left5: int, right3: int, anchor5: int, anchor3: int):
        """``left5`` bases 5' of ``anchor5`` to ``right3`` bases 3' of ``anchor3``, on the
        candidate's strand (anchors are forward-strand boundaries of the feature)."""
        if c.strand == "+":
            piece = self._forward(c.chrom, anchor5 - left5, anchor3 + right3)
            return piece
        piece = self._forward(c.chrom, anchor3 - right3, anchor5 + left5)
        return reverse_complement(piece) if piece is not None else None

    def flanked(self, c: Candidate, flank5: int, flank3: int) -> str | None:
        """The site with ``flank5``/``flank3`` bases around it on the candidate's strand."""
        if c.strand == "+":
            return self._window(c, flank5, flank3, c.site_start0, c.site_end0)
        return self._window(c, flank5, flank3, c.site_end0, c.site_start0)

    def around_cut(self, c: Candidate, left: int, right: int) -> str | None:
        """``left`` bases 5' of the cut and ``right`` 3' of it, on the candidate's strand."""
        return self._window(c, left, right, c.cut, c.cut)
