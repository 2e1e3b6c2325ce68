"""The GenBank reader (flat files, parsed by Biopython's ``SeqIO``).

``gene`` features, joined by ``/locus_tag`` (else ``/gene``) with the ``CDS`` and RNA features of
the same gene; a CDS or RNA feature without a gene feature is a gene of its own. The chromosome is
the record's ``accession.version`` (``NC_045512.2``). ID: ``/locus_tag`` (else ``/gene``); symbol:
``/gene``; aliases: ``/gene_synonym`` and the ``/gene`` names of its products (``ORF1a`` for
``orf1ab``); IDs: ``/db_xref`` and ``/protein_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from ...errors import InputError
from .builder import GeneBuilder
from .genes import Interval

__all__ = ["read_genbank"]

_GB_PRODUCT_TYPES = ("CDS", "mRNA", "tRNA", "rRNA", "ncRNA", "tmRNA", "misc_RNA", "precursor_RNA")


def _gb_values(feature, key: str) -> list[str]:
    return [v for v in feature.qualifiers.get(key, ()) if v]


def _gb_one(feature, key: str) -> str:
    values = _gb_values(feature, key)
    return values[0] if values else ""


def _gb_parts(feature) -> list[Interval]:
    return [(int(p.start), int(p.end)) for p in feature.location.parts]


def _gb_new(gid: str, chrom: str, feature, parts: list[Interval]) -> GeneBuilder:
    b = GeneBuilder(gid, chrom)
    tag = _gb_one(feature, "locus_tag")
    b.symbol = _gb_one(feature, "gene") or tag
    b.strand = "-" if feature.location.strand == -1 else "+"
    b.aliases = _gb_values(feature, "gene_synonym")
    b.ids = _gb_values(feature, "db_xref") + _gb_values(feature, "old_locus_tag")
    if tag and tag != gid:
        b.ids.append(tag)
    for s, e in parts:
        b.extend(s, e)
    return b


def _gb_fallback_id(chrom: str, parts: list[Interval]) -> str:
    return f"{chrom}:{min(s for s, _ in parts) + 1}-{max(e for _, e in parts)}"


def read_genbank(handle: IO[str], source: str, rename: Callable[[str], str]) -> tuple:
    from Bio import SeqIO

    try:
        records = list(SeqIO.parse(handle, "genbank"))
    except (ValueError, AssertionError, IndexError, KeyError) as e:
        raise InputError(f"{source}: not a valid GenBank file: {e}") from None
    if not records:
        raise InputError(f"{source}: no GenBank records found")
    builders: list[GeneBuilder] = []
    chrom_order: list[str] = []
    for rec in records:
        chrom = rename(rec.id if rec.id and rec.id != "<unknown id>" else rec.name)
        chrom_order.append(chrom)
        by_tag: dict[str, GeneBuilder] = {}
        by_name: dict[str, GeneBuilder] = {}

        def remember(b: GeneBuilder, tag: str, name: str, by_tag=by_tag, by_name=by_name) -> None:
            if tag:
                by_tag.setdefault(tag, b)
            if name:
                by_name.setdefault(name.lower(), b)

        for f in rec.features:
            if f.type != "gene" or f.location is None:
                continue
            tag, name, parts = _gb_one(f, "locus_tag"), _gb_one(f, "gene"), _gb_parts(f)
            b = _gb_new(tag or name or _gb_fallback_id(chrom, parts), chrom, f, parts)
            b.has_record = True
            b.own_parts = parts
            b.description = "; ".join(_gb_values(f, "note"))
            if "pseudo" in f.qualifiers or "pseudogene" in f.qualifiers:
                b.biotype = "pseudogene"
            builders.append(b)
            remember(b, tag, name)

        for i, f in enumerate(rec.features):
            if f.type not in _GB_PRODUCT_TYPES or f.location is None:
                continue
            tag, name, parts = _gb_one(f, "locus_tag"), _gb_one(f, "gene"), _gb_parts(f)
            b = by_tag.get(tag) if tag else None
            if b is None and name:
                b = by_name.get(name.lower())
            if b is None:  # a product without a gene feature is a gene of its own
                gid = tag or name or _gb_one(f, "protein_id") or _gb_fallback_id(chrom, parts)
                b = _gb_new(gid, chrom, f, parts)
                builders.append(b)
                remember(b, tag, name)
            if name:
                b.aliases.append(name)  # e.g. ORF1a, the name of a second product of orf1ab
            b.ids.extend(_gb_values(f, "protein_id"))
            b.ids.extend(_gb_values(f, "db_xref"))
            if not b.description:
                b.description = "; ".join(_gb_values(f, "product") or _gb_values(f, "note"))
            if f.type == "CDS":
                b.cds_groups[str(i)] = parts
            else:
                b.exon_groups[str(i)] = parts
            if not b.biotype:
                b.biotype = "protein_coding" if f.type in ("CDS", "mRNA") else f.type
    for b in builders:
        b.biotype = b.biotype or "gene"
    return builders, chrom_order
