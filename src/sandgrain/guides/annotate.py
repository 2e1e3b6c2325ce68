"""Where a site falls among the genes: exon, intron or intergenic, and which genes.

The class of a span (an off-target's protospacer, 0-based half-open on the forward strand):

``exon``
    it overlaps at least one base of an exon of a gene it overlaps;
``intron``
    it lies (partly) within a gene's span but touches none of its exons;
``intergenic``
    it overlaps no gene.

``genes`` lists the symbols (the gene ID when a gene has no symbol) of every gene whose span the
site overlaps, in genome order, whatever the class; so an ``exon`` site inside a gene nested in
another gene's intron names both. A gene without exon records counts as one exon, itself (as
:func:`sandgrain.guides.candidates.gene_regions` targets it).

Look-ups go through :meth:`GeneTable.genes_in` (binary search on gene starts), so each site
costs a few microseconds; :class:`SiteAnnotator` also remembers the answer per span, which helps
when many guides share off-target sites (repeats).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from ..genome.annotation import Gene, GeneTable

__all__ = ["CLASSES", "SiteAnnotator", "annotate_site", "annotate_sites"]

#: The location classes, from the most to the least consequential.
CLASSES = ("exon", "intron", "intergenic")


class _Exons:
    """A gene's exons ready for overlap tests: sorted starts and the longest exon's length."""

    __slots__ = ("ends", "max_len", "starts")

    def __init__(self, gene: Gene):
        parts = sorted(gene.exons or ((gene.start0, gene.end0),))
        self.starts = [s for s, _ in parts]
        self.ends = [e for _, e in parts]
        self.max_len = max(e - s for s, e in parts)

    def overlaps(self, start0: int, end0: int) -> bool:
        # an exon starting at or before start0 - max_len ends at or before start0
        lo = bisect.bisect_right(self.starts, start0 - self.max_len)
        hi = bisect.bisect_left(self.starts, end0)
        return any(self.ends[i] > start0 for i in range(lo, hi))


def _classify(genes: GeneTable, chrom: str, start0: int, end0: int, exons) -> dict:
    hits = genes.genes_in(chrom, start0, end0) if end0 > start0 else []
    if not hits:
        return {"class": "intergenic", "genes": []}
    exonic = any(exons(g).overlaps(start0, end0) for g in hits)
    return {
        "class": "exon" if exonic else "intron",
        "genes": list(dict.fromkeys(g.symbol or g.gene_id for g in hits)),
    }


def annotate_site(genes: GeneTable, chrom: str, start0: int, end0: int) -> dict:
    """``{"class": "exon" | "intron" | "intergenic", "genes": [symbols]}`` for one span.

    ``start0``/``end0`` are 0-based half-open on the forward strand; ``chrom`` the genome's own
    chromosome name (an unknown name simply has no genes). See the module doc for the classes.
    """
    return _classify(genes, chrom, start0, end0, _Exons)


class SiteAnnotator:
    """:func:`annotate_site` with a memory: one instance per gene table and result.

    The same span asked twice gets the same (shared, not to be mutated) dict back.
    """

    def __init__(self, genes: GeneTable):
        self.genes = genes
        self._cache: dict[tuple[str, int, int], dict] = {}
        self._exons: dict[int, _Exons] = {}

    def _exons_of(self, gene: Gene) -> _Exons:
        # genes live as long as their table, so their ids are stable keys here
        found = self._exons.get(id(gene))
        if found is None:
            found = self._exons[id(gene)] = _Exons(gene)
        return found

    def __call__(self, chrom: str, start0: int, end0: int) -> dict:
        key = (chrom, start0, end0)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = _classify(self.genes, chrom, start0, end0, self._exons_of)
        return found


def annotate_sites(genes: GeneTable, spans: Iterable[tuple[str, int, int]]) -> list[dict]:
    """:func:`annotate_site` of many ``(chrom, start0, end0)`` spans, in their order."""
    annotator = SiteAnnotator(genes)
    return [annotator(c, s, e) for c, s, e in spans]
