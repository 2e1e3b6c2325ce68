"""The GTF reader (GTF2.2; Ensembl, GENCODE and NCBI GTF files).

``gene`` lines give the genes (``gene_id``, ``gene_name``, ``gene_biotype``/``gene_type``);
``exon`` and ``CDS`` (+ ``stop_codon``, which GTF leaves out of ``CDS``) lines are collected per
transcript. A GTF without ``gene`` lines gets its genes from the span of their other lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from ...errors import InputError
from .builder import GeneBuilder, columns9, first_value, parse_coords, parse_strand

__all__ = ["read_gtf"]

# GTF attributes: `key "quoted value";` or `key bare_value;`, pairs separated by semicolons.
# The grammar for a whole column, and one pair at a time (both run in C, no Python loop).
_GTF_WELL_FORMED = re.compile(
    r'(?:[ \t;]*[^\s";]+[ \t]+(?:"(?:[^"\\]|\\.)*"|[^\s";]+)[ \t]*(?:;|$))*[ \t;]*'
)
_GTF_PAIR = re.compile(r'[ \t;]*([^\s";]+)[ \t]+(?:"((?:[^"\\]|\\.)*)"|([^\s";]+))[ \t]*(?:;|$)')
_GTF_RAW_PAIR = re.compile(r'[ \t;]*([^\s";]+)[ \t]+("(?:[^"\\]|\\.)*"|[^\s";]+)[ \t]*(?:;|$)')
_BACKSLASH = re.compile(r"\\(.)")


def _gtf_attribute_error(source: str, lineno: int, text: str) -> InputError:
    """The error for a malformed attribute column, pointing at where it goes wrong."""
    pos, n = 0, len(text)
    while pos < n:
        if text[pos] in " \t;":
            pos += 1
            continue
        m = _GTF_PAIR.match(text, pos)
        if m is None:
            break
        pos = m.end()
    return InputError(f"{source}:{lineno}: malformed GTF attribute at '{text[pos : pos + 40]}'")


def _gtf_pairs(source: str, lineno: int, text: str) -> dict[str, str]:
    """The attribute column checked, as ``{key: raw value}`` (quotes kept; a repeated key keeps
    its last value). Cheap: both steps run in the regex engine."""
    if _GTF_WELL_FORMED.fullmatch(text) is None:
        raise _gtf_attribute_error(source, lineno, text)
    return dict(_GTF_RAW_PAIR.findall(text))


def _gtf_value(raw: str) -> str:
    """A raw attribute value without its quotes and backslash escapes."""
    if raw.startswith('"'):
        raw = raw[1:-1]
        if "\\" in raw:
            raw = _BACKSLASH.sub(r"\1", raw)
    return raw


def _gtf_attributes(text: str) -> dict[str, list[str]]:
    """``key "value"; key2 value2; tag "a"; tag "b";`` → ``{key: [value], tag: [a, b], …}``.

    ``text`` must have passed :func:`_gtf_pairs` (which checks it)."""
    out: dict[str, list[str]] = {}
    for key, quoted, bare in _GTF_PAIR.findall(text):
        value = _BACKSLASH.sub(r"\1", quoted) if "\\" in quoted else quoted or bare
        out.setdefault(key, []).append(value)
    return out


def _gtf_fill(b: GeneBuilder, attrs: Mapping[str, list[str]], strand: str, win: bool) -> None:
    """Gene fields from one line's attributes; ``win``: they replace what earlier lines gave."""

    def put(old: str, new: str) -> str:
        return (new or old) if win else (old or new)

    b.strand = put(b.strand, strand)
    b.symbol = put(b.symbol, first_value(attrs, "gene_name", "gene_symbol", "gene"))
    b.biotype = put(b.biotype, first_value(attrs, "gene_biotype", "gene_type"))
    b.description = put(b.description, first_value(attrs, "description"))
    if b.gene_id.startswith("ENS") and "." in b.gene_id:
        b.ids.append(b.gene_id.split(".", 1)[0])  # GENCODE versioned ID: also the bare one
    for k in ("havana_gene", "hgnc_id", "db_xref", "Dbxref"):
        b.ids.extend(attrs.get(k, ()))
    b.aliases.extend(attrs.get("gene_synonym", ()))


def read_gtf(lines: Iterable[str], source: str, rename: Callable[[str], str]) -> list:
    genes: dict[tuple[str, str], GeneBuilder] = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        chrom, _, ftype, start, end, _, strand, _, attr_text = columns9(source, lineno, line)
        s0, e0 = parse_coords(source, lineno, start, end)
        st = parse_strand(source, lineno, strand)
        pairs = _gtf_pairs(source, lineno, attr_text)
        gene_id = _gtf_value(pairs.get("gene_id", ""))
        if not gene_id:
            raise InputError(f"{source}:{lineno}: GTF line without a gene_id attribute")
        chrom = rename(chrom)
        # genes are keyed by ID and chromosome: old GTFs reuse IDs for the X/Y PAR copies
        b = genes.get((gene_id, chrom))
        is_new = b is None
        if b is None:
            b = genes[(gene_id, chrom)] = GeneBuilder(gene_id, chrom)
        if ftype == "gene":
            if not b.has_record:  # the gene line's span replaces the span of earlier lines
                b.start0 = b.end0 = None
                b.has_record = True
            b.extend(s0, e0)
            _gtf_fill(b, _gtf_attributes(attr_text), st, win=True)
            continue
        if not b.has_record:
            b.extend(s0, e0)
        if is_new:
            _gtf_fill(b, _gtf_attributes(attr_text), st, win=False)
        if ftype in ("exon", "CDS", "stop_codon"):
            tid = _gtf_value(pairs.get("transcript_id", "")) or gene_id
            groups = b.exon_groups if ftype == "exon" else b.cds_groups
            groups.setdefault(tid, []).append((s0, e0))
        elif ftype == "transcript" and not b.biotype:
            biotype = pairs.get("transcript_biotype") or pairs.get("transcript_type") or ""
            b.biotype = _gtf_value(biotype)
    return list(genes.values())
