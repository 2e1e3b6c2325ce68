"""The reader of SGD's ``SGD_features.tab`` (the Saccharomyces Genome Database features table).

Genes are the top-level rows (parent ``chromosome N``) of gene types (:data:`SGD_GENE_TYPES` and
any type ending in ``gene``); ARS, telomeres, centromeres, LTRs, retrotransposon spans, … are not
genes. Exons are the gene's ``noncoding_exon`` rows (RNA genes) or ``CDS`` rows (ORFs); CDS are the
``CDS`` rows; a gene with neither has one exon, itself. Chromosome numbers become
:data:`SGD_CHROMOSOMES` names (``1`` → ``I`` … ``16`` → ``XVI``, ``17`` → ``Mito``, as in the
Ensembl FASTA) unless ``chrom_map`` says otherwise (its keys may be the numbers or those default
names). Rows without coordinates (``not physically mapped``) and repeated rows are skipped. The
biotype is the feature type, with the SGD qualifier after a colon when there is one
(``ORF:Verified``, ``tRNA``). The gene ID is the systematic name; the IDs are the SGDID and the
secondary IDs. Features of the 2-micron plasmid are left out (it is not a chromosome of the
reference).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ...errors import InputError
from ..assemblies import ASSEMBLIES
from .builder import GeneBuilder
from .genes import Interval

__all__ = ["SGD_CHROMOSOMES", "SGD_GENE_TYPES", "read_sgd", "sgd_chrom"]

#: SGD chromosome numbers → the Ensembl / SGD FASTA names: SGD numbers the chromosomes of R64 in
#: order, ``1`` → ``I`` … ``16`` → ``XVI``, and 17 is the mitochondrion (``Mito``).
SGD_CHROMOSOMES: dict[str, str] = {str(i): c.name for i, c in enumerate(ASSEMBLIES["R64"], 1)}

#: SGD feature types that are genes (besides any type ending in ``gene``).
SGD_GENE_TYPES: frozenset[str] = frozenset(
    {
        "ORF",
        "tRNA",
        "tRNA_gene",
        "ncRNA",
        "ncRNA_gene",
        "rRNA",
        "rRNA_gene",
        "snRNA",
        "snRNA_gene",
        "snoRNA",
        "snoRNA_gene",
        "telomerase_RNA",
        "telomerase_RNA_gene",
        "pseudogene",
        "transposable_element_gene",
        "blocked_reading_frame",
    }
)


def _is_sgd_gene_type(ftype: str) -> bool:
    return ftype in SGD_GENE_TYPES or ftype.endswith("gene")


def sgd_chrom(number: str, chrom_map: Mapping[str, str] | None) -> str:
    """The name of SGD chromosome ``number``: ``chrom_map`` may map the number or the default
    name (``{"17": "chrM"}`` and ``{"Mito": "chrM"}`` both work)."""
    default = SGD_CHROMOSOMES.get(number, number)
    if chrom_map:
        return chrom_map.get(number) or chrom_map.get(default) or default
    return default


def read_sgd(lines: Iterable[str], source: str, chrom_map: Mapping[str, str] | None) -> list:
    seen: set[tuple[str, ...]] = set()
    builders: dict[str, GeneBuilder] = {}
    subfeatures: list[tuple[str, str, int, int]] = []  # (parent, type, start0, end0)
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 12:
            raise InputError(
                f"{source}:{lineno}: expected 16 tab-separated SGD feature columns, "
                f"found {len(cols)}"
            )
        cols += [""] * (16 - len(cols))
        sgdid, ftype, qualifier, sysname, std, aliases, parent, secondary = cols[:8]
        chrom_no, start, stop, strand = cols[8:12]
        if not start.strip() and not stop.strip():
            continue  # not physically mapped
        key = (sgdid, ftype, sysname, parent, chrom_no, start, stop)
        if key in seen:
            continue
        seen.add(key)
        try:
            a, b_ = int(start), int(stop)
        except ValueError:
            raise InputError(
                f"{source}:{lineno}: coordinates must be whole numbers, got '{start}' and '{stop}'"
            ) from None
        lo, hi = min(a, b_), max(a, b_)
        if lo < 1:
            raise InputError(f"{source}:{lineno}: bad coordinates {start}-{stop}")
        if strand == "W":
            st = "+"
        elif strand == "C":
            st = "-"
        elif strand == "":
            st = "-" if a > b_ else "+"
        else:
            raise InputError(f"{source}:{lineno}: strand must be 'W' or 'C', got '{strand}'")
        if not parent.startswith("chromosome"):
            subfeatures.append((parent, ftype, lo - 1, hi))
            continue
        if not _is_sgd_gene_type(ftype):
            continue
        gene_id = sysname or std or sgdid
        if not gene_id:
            raise InputError(f"{source}:{lineno}: gene row without any name or SGDID")
        if gene_id in builders:
            continue  # a second row for the same gene (a repeat with other trailing columns)
        b = builders[gene_id] = GeneBuilder(gene_id, sgd_chrom(chrom_no, chrom_map))
        b.has_record = True
        b.extend(lo - 1, hi)
        b.symbol = std
        b.strand = st
        b.biotype = f"{ftype}:{qualifier}" if qualifier else ftype
        b.ids = [x for x in (sgdid, *secondary.split("|")) if x]
        b.aliases = aliases.split("|")
        b.description = cols[15]
    exons: dict[str, list[Interval]] = {}
    cds: dict[str, list[Interval]] = {}
    for parent, ftype, s0, e0 in subfeatures:
        if parent not in builders:
            continue
        if ftype == "CDS":
            cds.setdefault(parent, []).append((s0, e0))
        elif ftype == "noncoding_exon":
            exons.setdefault(parent, []).append((s0, e0))
    for gid, b in builders.items():
        if gid in cds:
            b.cds_groups[gid] = cds[gid]
        if gid in exons:
            b.exon_groups[gid] = exons[gid]
    return list(builders.values())
