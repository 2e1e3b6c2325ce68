"""The GFF3 reader (Sequence Ontology's GFF3 specification, version 1.26).

A gene is a feature whose type ends in ``gene`` (``gene``, ``ncRNA_gene``, ``pseudogene``, …) or
that is the ``Parent`` of a transcript-like feature (type ending in ``RNA`` or ``transcript``); a
transcript-like feature or a CDS with no parent is a gene of its own. ``exon`` and ``CDS``
features reach their gene through ``Parent`` chains (exon → mRNA → gene; several parents
allowed). Attribute values are URL-decoded as the specification says; ``##FASTA`` ends the
features. Symbol: ``Name``; aliases: ``Alias``; IDs: ``Dbxref`` (and ``ID`` when a ``gene_id``
attribute, as in Ensembl's GFF3, gives the primary ID).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote

from ...errors import InputError
from .builder import GeneBuilder, columns9, first_value, parse_coords, parse_strand

__all__ = ["read_gff3"]

_GFF_EXON_TYPES = frozenset({"exon", "noncoding_exon", "pseudogenic_exon"})
_GFF_CDS_TYPES = frozenset({"CDS"})


def _is_transcript_type(ftype: str) -> bool:
    t = ftype.lower()
    return t.endswith(("rna", "transcript")) and t not in ("rna",)


def _gff_attributes(source: str, lineno: int, text: str) -> dict[str, list[str]]:
    """``ID=a;Alias=x,y%2Cz`` → ``{"ID": ["a"], "Alias": ["x", "y,z"]}`` (URL-decoded)."""
    out: dict[str, list[str]] = {}
    if text.strip() == ".":
        return out
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise InputError(f"{source}:{lineno}: malformed GFF3 attribute '{item[:40]}'")
        out.setdefault(unquote(key.strip()), []).extend(unquote(v) for v in value.split(","))
    return out


@dataclass
class _GffFeature:
    lineno: int
    chrom: str
    ftype: str
    start0: int
    end0: int
    strand: str
    attrs: dict[str, list[str]]

    @property
    def key(self) -> str:
        """The ID, or a made-up key unique to the line for features without one."""
        return first_value(self.attrs, "ID") or f"\0line{self.lineno}"

    @property
    def parents(self) -> list[str]:
        return [p for p in self.attrs.get("Parent", ()) if p]


def read_gff3(lines: Iterable[str], source: str, rename: Callable[[str], str]) -> list:
    features: list[_GffFeature] = []
    by_id: dict[str, list[_GffFeature]] = {}  # several lines may share one ID (one feature)
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if line.startswith("##FASTA") or line.startswith(">"):
            break
        if not line.strip() or line.startswith("#"):
            continue
        chrom, _, ftype, start, end, _, strand, _, attr_text = columns9(source, lineno, line)
        s0, e0 = parse_coords(source, lineno, start, end)
        f = _GffFeature(
            lineno=lineno,
            chrom=rename(unquote(chrom)),
            ftype=ftype,
            start0=s0,
            end0=e0,
            strand=parse_strand(source, lineno, strand),
            attrs=_gff_attributes(source, lineno, attr_text),
        )
        features.append(f)
        by_id.setdefault(f.key, []).append(f)

    for f in features:
        for p in f.parents:
            if p not in by_id:
                raise InputError(f"{source}:{f.lineno}: Parent '{p}' is not the ID of any feature")

    # which features are genes, and the type of a gene's first transcript (for its biotype)
    gene_keys: set[str] = set()
    child_type: dict[str, str] = {}
    for f in features:
        transcript = _is_transcript_type(f.ftype)
        top_level_product = not f.parents and (transcript or f.ftype in _GFF_CDS_TYPES)
        if f.ftype.lower().endswith("gene") or top_level_product:
            gene_keys.add(f.key)
        if transcript:
            gene_keys.update(f.parents)
            for p in f.parents:
                child_type.setdefault(p, f.ftype)

    builders: dict[str, GeneBuilder] = {}
    for f in features:
        if f.key not in gene_keys:
            continue
        a = f.attrs
        b = builders.get(f.key)
        if b is None:
            fid = first_value(a, "ID")
            gid = first_value(a, "gene_id") or fid or first_value(a, "Name")
            gid = gid or f"{f.chrom}:{f.start0 + 1}-{f.end0}"
            b = builders[f.key] = GeneBuilder(gid, f.chrom)
            b.has_record = True
            if fid and gid != fid:
                b.ids.append(fid)
        b.extend(f.start0, f.end0)
        b.strand = b.strand or f.strand
        b.symbol = b.symbol or first_value(a, "Name", "gene_name", "gene")
        b.biotype = b.biotype or first_value(a, "biotype", "gene_biotype", "gene_type")
        notes = "; ".join(a.get("Note", ()))
        b.description = b.description or first_value(a, "description") or notes
        b.aliases.extend(a.get("Alias", ()))
        b.aliases.extend(a.get("gene_synonym", ()))
        b.ids.extend(a.get("Dbxref", ()))
        b.ids.extend(a.get("locus_tag", ()))
    for key, b in builders.items():
        if not b.biotype:
            own = by_id[key][0].ftype
            child = child_type.get(key, "")
            if own == "gene" and child:
                b.biotype = "protein_coding" if child == "mRNA" else child
            elif own in _GFF_CDS_TYPES or own == "mRNA":
                b.biotype = "protein_coding"
            else:
                b.biotype = own

    def genes_above(key: str, seen: set[str]) -> Iterator[str]:
        """Genes reached from feature ``key`` through Parent links (``key`` itself included)."""
        if key in seen:
            return
        seen.add(key)
        if key in gene_keys:
            yield key
            return
        for feature in by_id.get(key, ()):
            for p in feature.parents:
                yield from genes_above(p, seen)

    for f in features:
        if f.ftype in _GFF_EXON_TYPES:
            exon = True
        elif f.ftype in _GFF_CDS_TYPES:
            exon = False
        else:
            continue
        if not exon and f.key in gene_keys:  # a CDS without a gene: a gene of its own
            builders[f.key].cds_groups.setdefault(f.key, []).append((f.start0, f.end0))
        for p in f.parents:
            for key in genes_above(p, set()):
                b = builders[key]
                groups = b.exon_groups if exon else b.cds_groups
                groups.setdefault(p, []).append((f.start0, f.end0))
    return list(builders.values())
