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
:func:`sandgrain.guides.candidates.gene_regions` targets it). An exon is taken within its gene's
span (the readers always build genes that cover their exons).

Classes are computed on arrays (:class:`GeneIntervals`, :func:`annotate_classes`): the genes and
exons of all chromosomes are laid out on one number line (chromosome ``i`` at ``i · 2**32``),
sorted, and each span's overlaps are counted with :func:`numpy.searchsorted` — a million spans
take a fraction of a second. Single spans (:func:`annotate_site`, :class:`SiteAnnotator`, for
the off-targets that are listed, with their gene names) go through :meth:`GeneTable.genes_in`
(binary search on gene starts); both ways apply the same rule to the same intervals, so they
agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..genome.annotation.genes import Gene, GeneTable

__all__ = [
    "CLASSES",
    "GeneIntervals",
    "SiteAnnotator",
    "annotate_classes",
    "annotate_site",
    "annotate_sites",
]

#: The location classes, from the most to the least consequential; class codes index it.
CLASSES = ("exon", "intron", "intergenic")
EXON, INTRON, INTERGENIC = 0, 1, 2

_SHIFT = np.int64(1 << 32)  # chromosome i occupies [i · 2**32, (i + 1) · 2**32) on the line


def _exon_parts(gene: Gene) -> list[tuple[int, int]]:
    """The gene's exons (itself when it has none), each cut to the gene's span."""
    parts = gene.exons or ((gene.start0, gene.end0),)
    out = []
    for s, e in parts:
        s, e = max(s, gene.start0), min(e, gene.end0)
        if s <= e:
            out.append((s, e))
    return out


def _count_overlaps(starts: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """How many intervals ``[starts[i], ends[i])`` (``starts``, ``ends`` each sorted) overlap
    each span ``[lo, hi)`` with ``lo < hi``: those starting before ``hi`` less those ending at
    or before ``lo`` (every one of which starts before ``hi`` too)."""
    return np.searchsorted(starts, hi, side="left") - np.searchsorted(ends, lo, side="right")


class GeneIntervals:
    """The genes and exons of a gene table as sorted arrays, for classifying many spans.

    Build one per gene table and use it for many calls; ``classes`` is the vectorised
    counterpart of :func:`annotate_site`'s ``class``.
    """

    def __init__(self, genes: GeneTable):
        self.genes = genes
        self._chrom_ids: dict[str, int] = {}
        gene_s, gene_e, exon_s, exon_e = [], [], [], []
        for g in genes:
            c = self._chrom_ids.setdefault(g.chrom, len(self._chrom_ids))
            base = c << 32
            gene_s.append(base + g.start0)
            gene_e.append(base + g.end0)
            for s, e in _exon_parts(g):
                exon_s.append(base + s)
                exon_e.append(base + e)
        self._gene_s = np.sort(np.asarray(gene_s, np.int64))
        self._gene_e = np.sort(np.asarray(gene_e, np.int64))
        self._exon_s = np.sort(np.asarray(exon_s, np.int64))
        self._exon_e = np.sort(np.asarray(exon_e, np.int64))

    def classes(
        self, chroms: Sequence[str], chrom: np.ndarray, start0: np.ndarray, end0: np.ndarray
    ) -> np.ndarray:
        """Class codes (indices into :data:`CLASSES`) of many spans.

        ``chrom`` holds indices into ``chroms`` (chromosome names; a name without genes simply
        has none); ``start0``/``end0`` the spans, 0-based half-open on the forward strand.
        """
        chrom = np.asarray(chrom, np.int64)
        start0 = np.asarray(start0, np.int64)
        end0 = np.asarray(end0, np.int64)
        out = np.full(len(chrom), INTERGENIC, np.int8)
        if not len(chrom) or not len(self._gene_s):
            return out
        # chromosome numbers of the gene table for the caller's chromosome indices (-1: none)
        ids = np.array([self._chrom_ids.get(str(c), -1) for c in chroms], np.int64)
        mine = ids[chrom]
        ok = (mine >= 0) & (end0 > start0)
        if not ok.any():
            return out
        base = mine[ok] * _SHIFT
        lo, hi = base + start0[ok], base + end0[ok]
        in_gene = _count_overlaps(self._gene_s, self._gene_e, lo, hi) > 0
        in_exon = _count_overlaps(self._exon_s, self._exon_e, lo, hi) > 0
        out[ok] = np.where(in_exon, EXON, np.where(in_gene, INTRON, INTERGENIC))
        return out


def annotate_classes(
    genes: GeneTable | GeneIntervals,
    chroms: Sequence[str],
    chrom: np.ndarray,
    start0: np.ndarray,
    end0: np.ndarray,
) -> np.ndarray:
    """Class codes (indices into :data:`CLASSES`) of many spans at once.

    ``chrom`` indexes ``chroms``; ``start0``/``end0`` are 0-based half-open forward-strand
    spans. Pass a :class:`GeneIntervals` to reuse its arrays across calls.
    """
    index = genes if isinstance(genes, GeneIntervals) else GeneIntervals(genes)
    return index.classes(chroms, chrom, start0, end0)


def _classify(genes: GeneTable, chrom: str, start0: int, end0: int) -> tuple[str, list[str]]:
    """The class and gene names of one span, from the genes overlapping it."""
    hits = genes.genes_in(chrom, start0, end0) if end0 > start0 else []
    if not hits:
        return "intergenic", []
    exonic = any(s < end0 and e > start0 for g in hits for s, e in _exon_parts(g))
    names = list(dict.fromkeys(g.symbol or g.gene_id for g in hits))
    return ("exon" if exonic else "intron"), names


def annotate_site(genes: GeneTable, chrom: str, start0: int, end0: int) -> dict:
    """``{"class": "exon" | "intron" | "intergenic", "genes": [symbols]}`` for one span.

    ``start0``/``end0`` are 0-based half-open on the forward strand; ``chrom`` the genome's own
    chromosome name (an unknown name simply has no genes). See the module doc for the classes.
    """
    cls, names = _classify(genes, chrom, start0, end0)
    return {"class": cls, "genes": names}


class SiteAnnotator:
    """:func:`annotate_site` with a memory: one instance per gene table and result.

    The same span asked twice gets the same (shared, not to be mutated) dict back.
    """

    def __init__(self, genes: GeneTable):
        self.genes = genes
        self._cache: dict[tuple[str, int, int], dict] = {}

    def __call__(self, chrom: str, start0: int, end0: int) -> dict:
        key = (chrom, start0, end0)
        found = self._cache.get(key)
        if found is None:
            cls, names = _classify(self.genes, chrom, start0, end0)
            found = self._cache[key] = {"class": cls, "genes": names}
        return found


def annotate_sites(genes: GeneTable, spans: Iterable[tuple[str, int, int]]) -> list[dict]:
    """:func:`annotate_site` of many ``(chrom, start0, end0)`` spans, in their order."""
    annotator = SiteAnnotator(genes)
    return [annotator(c, s, e) for c, s, e in spans]
