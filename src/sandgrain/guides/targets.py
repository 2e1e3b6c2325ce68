"""Design targets: where in a genome, or in a given sequence, guides are looked for.

A :class:`~sandgrain.guides.request.DesignRequest` names its target as a gene, a region, a raw
sequence or a FASTA file. :func:`locate_target` checks it against the genome (the gene exists and
has the parts asked for, the region lies in the genome, the target is not over the size limit)
and describes it as the design document's ``target``; :func:`target_candidates` then finds the
nuclease's candidate sites in it (:mod:`sandgrain.guides.candidates`).

Coordinates in ``target["regions"]`` are 1-based inclusive (``start``/``end``), as in every
output; for a sequence or FASTA target they refer to the given sequences, named by record.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from ..genome.annotation.genes import Gene
from ..genome.regions import Region
from ..genome.store import Genome
from .candidates import (
    Candidate,
    check_target_size,
    find_candidates,
    find_candidates_in_regions,
    find_candidates_in_sequence,
    gene_regions,
)
from .nucleases import Nuclease
from .request import DesignRequest

__all__ = ["Target", "locate_target", "region_dict", "target_candidates"]


def region_dict(chrom: str, start0: int, end0: int, strand: str = "+") -> dict:
    """A 0-based half-open span as the documents give it: 1-based inclusive."""
    return {"chrom": chrom, "start": start0 + 1, "end": end0, "strand": strand}


@dataclass
class Target:
    """A design target, checked against its genome.

    ``description`` is the document's ``target``; ``regions`` the genome regions to scan (gene
    and region targets) or ``records`` the given sequences by name (sequence and FASTA
    targets: their guides' positions refer to them); ``inputs`` the provenance records of the
    given sequences (their SHA-256).
    """

    description: dict
    regions: list[Region] | None = None
    records: dict[str, str] | None = None
    inputs: list[dict] = field(default_factory=list)
    gene: Gene | None = None

    @property
    def in_genome(self) -> bool:
        """Whether the candidates lie in the genome (a gene or region target)."""
        return self.records is None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.upper().encode()).hexdigest()


def locate_target(genome: Genome, request: DesignRequest) -> Target:
    """The request's target in ``genome``, checked: an unknown gene or chromosome is a
    :class:`~sandgrain.errors.NotFoundError`; a region out of range, a gene part that does not
    exist (``within="cds"`` of a tRNA) or a target over ``request.max_target_bp`` an
    :class:`~sandgrain.errors.InputError`. Nothing is scanned yet."""
    max_bp = request.max_target_bp
    if request.gene is not None:
        g = genome.gene(str(request.gene))
        regions = gene_regions(g, request.within)
        total = sum(r.length for r in regions)
        what = f"target {regions[0]}" if len(regions) == 1 else f"target of {len(regions)} regions"
        check_target_size(total, what, max_bp)
        description = {
            "type": "gene",
            "name": g.symbol or g.gene_id,
            "gene_id": g.gene_id,
            "location": g.location,
            "strand": g.strand,
            "within": request.within,
            "length": total,
            "regions": [region_dict(r.chrom, r.start0, r.end0, r.strand) for r in regions],
        }
        return Target(description, regions=regions, gene=g)
    if request.region is not None:
        r = genome.region(str(request.region))
        check_target_size(r.length, f"target {r}", max_bp)
        description = {
            "type": "region",
            "name": str(r),
            "length": r.length,
            "regions": [region_dict(r.chrom, r.start0, r.end0)],
        }
        return Target(description, regions=[r])
    records = dict(request.records)
    if request.sequence is not None:
        # raw DNA is one record named "sequence"; pasted FASTA text keeps its records' names
        description = {
            "type": "sequence",
            "name": next(iter(records)) if len(records) == 1 else "sequence",
            "length": sum(len(text) for text in records.values()),
            "regions": [region_dict(name, 0, len(text)) for name, text in records.items()],
        }
        inputs = [
            {
                "source": "sequence" if name == "sequence" else f"sequence#{name}",
                "role": "target",
                "sha256": _sha256(text),
            }
            for name, text in records.items()
        ]
        return Target(description, records=records, inputs=inputs)
    label = os.fspath(request.fasta)
    description = {
        "type": "fasta",
        "name": os.path.basename(label),
        "length": sum(len(text) for text in records.values()),
        "regions": [region_dict(name, 0, len(text)) for name, text in records.items()],
    }
    inputs = [
        {"source": f"{label}#{name}", "role": "target", "sha256": _sha256(text)}
        for name, text in records.items()
    ]
    return Target(description, records=records, inputs=inputs)


def target_candidates(genome: Genome, target: Target, nuclease: Nuclease) -> list[Candidate]:
    """Every candidate site of ``nuclease`` in the target (its size was checked already)."""
    if target.records is not None:
        found: list[Candidate] = []
        for name, text in target.records.items():
            found += find_candidates_in_sequence(text, nuclease, name, max_bp=0)
        return found
    if target.description["type"] == "gene":
        return find_candidates_in_regions(genome, target.regions, nuclease, max_bp=0)
    (region,) = target.regions
    return find_candidates(genome, region, nuclease, max_bp=0)
