"""What the annotation readers share: a builder that collects one gene's lines before it becomes
a :class:`~sandgrain.genome.annotation.genes.Gene`, and checks of coordinates, strands and columns.

Text coordinates are 1-based inclusive (GTF, GFF3); they become 0-based half-open here. Strand
``.``/``?`` (unknown) is stored as ``+``. A malformed line raises
:class:`~sandgrain.errors.InputError` naming the file and the line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ...errors import InputError
from .genes import Gene, GeneTable, Interval, combine_parts, join_abutting

__all__ = [
    "GeneBuilder",
    "build_table",
    "chrom_renamer",
    "columns9",
    "first_value",
    "parse_coords",
    "parse_strand",
    "unique_names",
]

class GeneBuilder:
    """Collects what the readers learn about one gene before it becomes a :class:`Gene`."""

    __slots__ = (
        "gene_id", "symbol", "aliases", "ids", "chrom", "start0", "end0", "strand", "biotype",
        "description", "exon_groups", "cds_groups", "own_parts", "has_record",
    )  # fmt: skip

    def __init__(self, gene_id: str, chrom: str):
        self.gene_id = gene_id
        self.symbol = ""
        self.aliases: list[str] = []
        self.ids: list[str] = []
        self.chrom = chrom
        self.start0: int | None = None
        self.end0: int | None = None
        self.strand = ""
        self.biotype = ""
        self.description = ""
        self.exon_groups: dict[str, list[Interval]] = {}
        self.cds_groups: dict[str, list[Interval]] = {}
        self.own_parts: list[Interval] = []  # the gene's own location parts (GenBank joins)
        self.has_record = False  # a gene line/feature of its own was seen

    def extend(self, start0: int, end0: int) -> None:
        self.start0 = start0 if self.start0 is None else min(self.start0, start0)
        self.end0 = end0 if self.end0 is None else max(self.end0, end0)

    def build(self) -> Gene:
        exons = combine_parts(self.exon_groups.values())
        cds = combine_parts(self.cds_groups.values())
        if not exons:
            exons = cds
        start0, end0 = self.start0, self.end0
        for s, e in (*exons, *cds):
            start0 = s if start0 is None else min(start0, s)
            end0 = e if end0 is None else max(end0, e)
        assert start0 is not None and end0 is not None
        if not exons:
            exons = tuple(join_abutting(self.own_parts)) or ((start0, end0),)
        symbol = self.symbol or self.gene_id
        taken = {self.gene_id.lower(), symbol.lower()}
        ids = unique_names(self.ids, taken)
        aliases = unique_names(self.aliases, taken | {i.lower() for i in ids})
        return Gene(
            gene_id=self.gene_id,
            symbol=symbol,
            aliases=aliases,
            ids=ids,
            chrom=self.chrom,
            start0=start0,
            end0=end0,
            strand=self.strand or "+",
            biotype=self.biotype,
            exons=exons,
            cds=cds,
            description=self.description,
        )


def unique_names(names: Iterable[str], taken: set[str]) -> tuple[str, ...]:
    """Non-empty names, first spelling of each (case-insensitive), minus those in ``taken``."""
    seen = set(taken)
    out = []
    for n in names:
        n = n.strip()
        if n and n.lower() not in seen:
            seen.add(n.lower())
            out.append(n)
    return tuple(out)


def parse_coords(source: str, lineno: int, start: str, end: str) -> Interval:
    """1-based inclusive text coordinates → 0-based half-open, checked."""
    try:
        s, e = int(start), int(end)
    except ValueError:
        raise InputError(
            f"{source}:{lineno}: coordinates must be whole numbers, got '{start}' and '{end}'"
        ) from None
    if s < 1 or e < s:
        raise InputError(f"{source}:{lineno}: bad coordinates {start}-{end}")
    return s - 1, e


_STRANDS = {"+": "+", "-": "-", ".": "", "?": ""}


def parse_strand(source: str, lineno: int, value: str) -> str:
    try:
        return _STRANDS[value]
    except KeyError:
        raise InputError(
            f"{source}:{lineno}: strand must be '+', '-', '.' or '?', got '{value}'"
        ) from None


def columns9(source: str, lineno: int, line: str) -> list[str]:
    cols = line.split("\t")
    if len(cols) > 9 and not any(c.strip() for c in cols[9:]):
        cols = cols[:9]
    if len(cols) != 9:
        raise InputError(f"{source}:{lineno}: expected 9 tab-separated columns, found {len(cols)}")
    return cols


def build_table(builders: Iterable[GeneBuilder], genome: str | None, chrom_order) -> GeneTable:
    return GeneTable((b.build() for b in builders), genome=genome, chrom_order=chrom_order)


def chrom_renamer(chrom_map: Mapping[str, str] | None) -> Callable[[str], str]:
    if not chrom_map:
        return lambda c: c
    return lambda c: chrom_map.get(c, c)


def first_value(attrs: Mapping[str, list[str]], *keys: str) -> str:
    for k in keys:
        v = attrs.get(k)
        if v and v[0]:
            return v[0]
    return ""
