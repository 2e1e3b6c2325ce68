"""The fields of a guide record that ``design`` and ``library`` both make, made in one place.

:func:`guide_fields` gives what the ranking reads (the candidate, its efficiency, where it cuts
in its gene, its off-target summary and on-target); :func:`feature_fields` the oligo-design
features the ranking does not read (self-complementarity, restriction sites at the cut, cloning
oligos). :mod:`.design` makes both for every candidate; :mod:`.library` the first for every
candidate and the second only for the guides it keeps.
"""

from __future__ import annotations

from collections.abc import Sequence

from .candidates import Candidate
from .cds import cds_position, gene_at_cut
from .context import ContextReader
from .features import CHOPCHOP_BACKBONE, cloning_oligos, restriction_sites, self_complementarity
from .hits import Hits
from .request import ScoreRequest

__all__ = ["RESTRICTION_FLANK", "feature_fields", "guide_fields", "scaffold_for"]

#: Bases each side of the cut searched for restriction sites the cut destroys.
RESTRICTION_FLANK = 10


def scaffold_for(scored: bool) -> str | None:
    """The sgRNA backbone self-complementarity is checked against (SpCas9-like nucleases)."""
    return CHOPCHOP_BACKBONE if scored else None


def guide_fields(
    c: Candidate,
    i: int,
    efficiency: dict,
    genes: Sequence | None,
    prefer: str | None,
    hits: Hits,
    request: ScoreRequest,
    own: int | None,
) -> dict:
    """The ranked fields of candidate ``c`` (``hits.search.guides[i]``): its own fields, its
    ``efficiency`` scores, exon and % of CDS in the gene it cuts (``genes``: the genome's gene
    table, ``None`` for a target outside the genome; ``prefer``: the target gene when several
    overlap), its off-target summary with ``own`` (its on-target site row) left out, and
    ``on_target``."""
    fields = c.to_dict()
    fields.update(efficiency)
    gene = gene_at_cut(genes, c.chrom, c.cut, prefer=prefer) if genes else None
    if gene is not None:
        fields.update(cds_position(gene, c.cut))
    k = request.max_mismatches
    fields.update(
        hits.summary(i, k, request.max_offtargets_listed, request.list_offtargets, own)
    )
    fields["on_target"] = hits.on_target_dict(own) if own is not None else None
    return fields


def feature_fields(c: Candidate, reader: ContextReader, scored: bool) -> dict:
    """Self-complementarity, restriction sites destroyed at the cut and cloning oligos (the
    oligos for SpCas9-like nucleases only)."""
    window = reader.around_cut(c, RESTRICTION_FLANK, RESTRICTION_FLANK)
    return {
        "self_complementarity": self_complementarity(c.protospacer, scaffold_for(scored)),
        "restriction_sites": restriction_sites(window, RESTRICTION_FLANK) if window else None,
        "oligos": cloning_oligos(c.protospacer) if scored else None,
    }
