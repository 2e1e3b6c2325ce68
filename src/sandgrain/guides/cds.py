"""Where a guide cuts in its gene: exon number and how far into the coding sequence.

A knockout guide is meant to cause a frameshift early in the protein. Two numbers tell how well
a cut serves that, as CRISPOR and CHOPCHOP show them:

``exon`` / ``exon_count``
    The exon (1-based, counted in the gene's transcript direction) holding the cut, and how many
    exons the gene has.
``cds_percent``
    The share of the coding sequence (CDS bases, introns left out) upstream of the cut in the
    transcript direction, 0–100: 5 means the cut falls in the first 5 % of the protein.

Genes come from the genome's gene table, whose exons and CDS are the gene's parts (the union of
its transcripts' where they differ, :func:`~sandgrain.genome.annotation.genes.combine_parts`):
per-transcript numbers are not given, since the table keeps one model per gene.

The cut is a boundary between forward-strand bases ``cut - 1`` and ``cut`` (0-based; see
:mod:`sandgrain.guides.candidates`). The base at the cut's 5' side in the transcript direction
(``cut - 1`` on ``+``, ``cut`` on ``-``) decides the exon.
"""

from __future__ import annotations

from ..genome.annotation.genes import Gene, GeneTable

__all__ = ["LATE_CDS_PERCENT", "cds_position", "gene_at_cut"]

#: A cut beyond this share of the CDS is flagged ``late_cds``: a frameshift there leaves most of
#: the protein made (and, in the last exon, escapes nonsense-mediated decay), so it knocks the
#: gene out less often (Doench et al. 2016, doi:10.1038/nbt.3437, found guides near the
#: C-terminus less active in knockout screens; CRISPick's picking rules likewise prefer cuts in the
#: first part of the CDS).
LATE_CDS_PERCENT = 80.0


def _coding(gene: Gene) -> bool:
    return bool(gene.cds)


def gene_at_cut(genes: GeneTable, chrom: str, cut: int, prefer: Gene | None = None) -> Gene | None:
    """The gene whose CDS holds the cut: ``prefer`` (the design's target gene) when its CDS
    does, else the first coding gene in the table whose CDS does, else ``None``."""
    candidates = [prefer] if prefer is not None else []
    candidates += genes.genes_in(chrom, max(0, cut - 1), cut + 1)
    for gene in candidates:
        if gene.chrom != chrom or not _coding(gene):
            continue
        base = cut - 1 if gene.strand != "-" else cut
        if any(s <= base < e for s, e in gene.cds):
            return gene
    return None


def cds_position(gene: Gene, cut: int) -> dict:
    """``{"gene", "exon", "exon_count", "cds_percent"}`` of a cut in ``gene`` (module doc);
    ``exon`` is ``None`` when the gene table has no exon holding the cut."""
    minus = gene.strand == "-"
    base = cut if minus else cut - 1
    exons = sorted(gene.exons or gene.cds, reverse=minus)
    exon = next((i for i, (s, e) in enumerate(exons, 1) if s <= base < e), None)
    total = sum(e - s for s, e in gene.cds)
    if minus:
        upstream = sum(max(0, e - max(s, cut)) for s, e in gene.cds)
    else:
        upstream = sum(max(0, min(e, cut) - s) for s, e in gene.cds)
    return {
        "gene": gene.symbol or gene.gene_id,
        "exon": exon,
        "exon_count": len(exons),
        "cds_percent": 100.0 * upstream / total if total else None,
    }
