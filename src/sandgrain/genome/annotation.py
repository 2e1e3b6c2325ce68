"""Gene annotations (GTF, GFF3, the SGD features table, GenBank) read into one :class:`GeneTable`.

Coordinates are 0-based half-open everywhere in this module (``start0``, ``end0``); the
:class:`Gene` properties :attr:`Gene.start1`, :attr:`Gene.end1` and :attr:`Gene.location` give the
1-based inclusive form users see (``XV:564476-566191``).

Readers
-------
:func:`read_annotation` picks the reader from the file name (``.gtf``, ``.gff``/``.gff3``,
``.tab`` or a name with ``SGD_features``, ``.gb``/``.gbk``/``.gbff``/``.genbank``; each with or
without ``.gz``) and, when the name says nothing, from the first lines of the content. Gzip is
recognised by its magic bytes. :func:`parse_annotation` does the same for bytes in memory (an
upload). A malformed line raises :class:`~sandgrain.errors.InputError` naming the file and the line.

* **GTF** (Ensembl, GENCODE, NCBI): ``gene`` lines give the genes (``gene_id``, ``gene_name``,
  ``gene_biotype``/``gene_type``); ``exon`` and ``CDS`` (+ ``stop_codon``, which GTF leaves out of
  ``CDS``) lines are collected per transcript. A GTF without ``gene`` lines gets its genes from the
  span of their other lines.
* **GFF3**: a gene is a feature whose type ends in ``gene`` (``gene``, ``ncRNA_gene``,
  ``pseudogene``, …) or that is the ``Parent`` of a transcript-like feature (type ending in ``RNA``
  or ``transcript``); a transcript-like feature or a CDS with no parent is a gene of its own.
  ``exon`` and ``CDS`` features reach their gene through ``Parent`` chains (exon → mRNA → gene;
  several parents allowed). Attribute values are URL-decoded as the specification says;
  ``##FASTA`` ends the features. Symbol: ``Name``; aliases: ``Alias``; IDs: ``Dbxref`` (and
  ``ID`` when a ``gene_id`` attribute, as in Ensembl's GFF3, gives the primary ID).
* **SGD** ``SGD_features.tab``: genes are the top-level rows (parent ``chromosome N``) of gene
  types (:data:`SGD_GENE_TYPES` and any type ending in ``gene``); ARS, telomeres, centromeres,
  LTRs, retrotransposon spans, … are not genes. Exons are the gene's ``noncoding_exon`` rows (RNA
  genes) or ``CDS`` rows (ORFs); CDS are the ``CDS`` rows; a gene with neither has one exon, itself.
  Chromosome numbers become :data:`SGD_CHROMOSOMES` names (``1`` → ``I`` … ``16`` → ``XVI``,
  ``17`` → ``Mito``, as in the Ensembl FASTA) unless ``chrom_map`` says otherwise (its keys may be
  the numbers or those default names). Rows without coordinates (``not physically mapped``) and
  repeated rows are skipped. The biotype is the feature type, with the SGD qualifier after a colon
  when there is one (``ORF:Verified``, ``tRNA``). The gene ID is the systematic name; the IDs are
  the SGDID and the secondary IDs. Features of the 2-micron plasmid are left out (it is not a
  chromosome of the reference).
* **GenBank** (Biopython): ``gene`` features, joined by ``/locus_tag`` (else ``/gene``) with the
  ``CDS`` and RNA features of the same gene; a CDS or RNA feature without a gene feature is a gene
  of its own. The chromosome is the record's ``accession.version`` (``NC_045512.2``). ID:
  ``/locus_tag`` (else ``/gene``); symbol: ``/gene``; aliases: ``/gene_synonym`` and the ``/gene``
  names of its products (``ORF1a`` for ``orf1ab``); IDs: ``/db_xref`` and ``/protein_id``.

Strand ``.``/``?`` (unknown) is stored as ``+``.

Exons and CDS of a gene
-----------------------
Each transcript (GTF/GFF3), each feature (GenBank) or the gene itself (SGD) contributes one set of
parts. When one of these sets covers every base the others cover, the gene keeps that set as it
is — so a -1 ribosomal frameshift (SARS-CoV-2 ORF1ab: ``join(266..13468,13468..21555)``) keeps its
two overlapping parts; otherwise the parts are merged into disjoint intervals. Parts are sorted by
start; abutting parts of one transcript are joined (GTF's stop codon to its CDS).

Names
-----
:meth:`GeneTable.lookup` is case-insensitive and tries, in this order, and stops at the first kind
of name that matches anything:

1. the primary ID (``gene_id``),
2. the symbol,
3. the other IDs (``ids``: SGDID, ``GeneID:…``, unversioned Ensembl IDs, …),
4. the aliases.

So a name that is one gene's symbol and another gene's alias means the first gene. Several genes
matching at the same step raise :class:`~sandgrain.errors.AmbiguousNameError`.
"""

from __future__ import annotations

import bisect
import difflib
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO
from urllib.parse import unquote

from ..errors import AmbiguousNameError, InputError, NotFoundError

__all__ = [
    "FORMATS",
    "SGD_CHROMOSOMES",
    "SGD_GENE_TYPES",
    "Gene",
    "GeneTable",
    "detect_format",
    "parse_annotation",
    "read_annotation",
]

Interval = tuple[int, int]

#: Format names accepted by :func:`read_annotation` (and their aliases).
FORMATS: dict[str, str] = {
    "gtf": "gtf",
    "gff2": "gtf",
    "gff3": "gff3",
    "gff": "gff3",
    "sgd": "sgd",
    "tab": "sgd",
    "genbank": "genbank",
    "gb": "genbank",
    "gbk": "genbank",
    "gbff": "genbank",
}

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII",
          "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI")  # fmt: skip
#: SGD chromosome numbers → the Ensembl / SGD FASTA names (17 is the mitochondrion).
SGD_CHROMOSOMES: dict[str, str] = {str(i + 1): r for i, r in enumerate(_ROMAN)} | {"17": "Mito"}

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

_MAX_CANDIDATES_SHOWN = 10


# --------------------------------------------------------------------------------------------
# Gene
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gene:
    """One gene. Coordinates are 0-based half-open; ``exons``/``cds`` are sorted parts."""

    gene_id: str
    symbol: str
    aliases: tuple[str, ...]
    ids: tuple[str, ...]
    chrom: str
    start0: int
    end0: int
    strand: str
    biotype: str
    exons: tuple[Interval, ...]
    cds: tuple[Interval, ...]
    description: str = ""

    @property
    def start1(self) -> int:
        """First base, 1-based."""
        return self.start0 + 1

    @property
    def end1(self) -> int:
        """Last base, 1-based inclusive."""
        return self.end0

    @property
    def length(self) -> int:
        return self.end0 - self.start0

    @property
    def location(self) -> str:
        """``chrom:start-end``, 1-based inclusive, e.g. ``XV:564476-566191``."""
        return f"{self.chrom}:{self.start1}-{self.end1}"

    @property
    def label(self) -> str:
        """``SYMBOL (ID, chrom:start-end)``, as listed in ambiguity errors."""
        if self.symbol != self.gene_id:
            return f"{self.symbol} ({self.gene_id}, {self.location})"
        return f"{self.symbol} ({self.location})"

    def names(self) -> tuple[str, ...]:
        """Every name the gene answers to: ID, symbol, other IDs, aliases (no repeats)."""
        return tuple(dict.fromkeys((self.gene_id, self.symbol, *self.ids, *self.aliases)))


# --------------------------------------------------------------------------------------------
# intervals
# --------------------------------------------------------------------------------------------


def _union(parts: Iterable[Interval]) -> list[Interval]:
    """Disjoint, sorted union; overlapping or abutting intervals are joined."""
    out: list[list[int]] = []
    for s, e in sorted(parts):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _join_abutting(parts: Iterable[Interval]) -> list[Interval]:
    """Sorted, without repeats; abutting parts joined, overlapping ones kept apart."""
    out: list[Interval] = []
    for s, e in sorted(set(parts)):
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _combine(groups: Iterable[Iterable[Interval]]) -> tuple[Interval, ...]:
    """Parts of a gene from its transcripts/features: see "Exons and CDS" in the module doc."""
    sets = [_join_abutting(g) for g in groups]
    sets = [g for g in sets if g]
    if not sets:
        return ()
    union = _union(p for g in sets for p in g)
    for g in sets:
        if _union(g) == union:
            return tuple(g)
    return tuple(union)


# --------------------------------------------------------------------------------------------
# gene table
# --------------------------------------------------------------------------------------------


class GeneTable:
    """Genes of one genome, in genomic order, with name look-up and overlap queries.

    ``chrom_order`` gives the order of chromosomes (e.g. the FASTA order); chromosomes it does not
    name follow in order of first appearance. ``genome`` is the genome's name, used in messages.
    """

    def __init__(
        self,
        genes: Iterable[Gene],
        *,
        genome: str | None = None,
        chrom_order: Sequence[str] | None = None,
    ):
        genes = list(genes)
        order: dict[str, int] = {}
        for c in chrom_order or ():
            order.setdefault(c, len(order))
        for g in genes:
            order.setdefault(g.chrom, len(order))
        genes.sort(key=lambda g: (order[g.chrom], g.start0, g.end0, g.gene_id))
        self._genes: tuple[Gene, ...] = tuple(genes)
        self.genome = genome
        present = {g.chrom for g in genes}
        self._chroms: list[str] = [c for c in order if c in present]

        # overlap index: per chromosome, genes sorted by start, their starts, the longest gene
        self._by_chrom: dict[str, list[Gene]] = {}
        for g in self._genes:
            self._by_chrom.setdefault(g.chrom, []).append(g)
        self._starts = {c: [g.start0 for g in gs] for c, gs in self._by_chrom.items()}
        self._max_len = {c: max(g.length for g in gs) for c, gs in self._by_chrom.items()}

        # name index, one dict per kind of name (see the module doc for the order)
        self._tiers: list[dict[str, list[int]]] = [{}, {}, {}, {}]
        display: dict[str, str] = {}  # lower-case name -> a spelling to suggest
        prefix_rows: set[tuple[str, int]] = set()
        for i, g in enumerate(self._genes):
            kinds = ((0, (g.gene_id,)), (1, (g.symbol,)), (2, g.ids), (3, g.aliases))
            for tier, names in kinds:
                for n in names:
                    key = n.lower()
                    hits = self._tiers[tier].setdefault(key, [])
                    if not hits or hits[-1] != i:
                        hits.append(i)
                    display.setdefault(key, n)
                    if tier < 3:
                        prefix_rows.add((key, i))
        self._display = display
        self._prefix_rows = sorted(prefix_rows)
        self._prefix_keys = [k for k, _ in self._prefix_rows]

    # -- container ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._genes)

    def __iter__(self) -> Iterator[Gene]:
        return iter(self._genes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GeneTable):
            return NotImplemented
        return (
            self._genes == other._genes
            and self.genome == other.genome
            and self._chroms == other._chroms
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = f" of {self.genome}" if self.genome else ""
        return f"<GeneTable{where}: {len(self)} genes on {len(self._chroms)} chromosomes>"

    @property
    def genes(self) -> tuple[Gene, ...]:
        return self._genes

    def chromosomes(self) -> list[str]:
        """Chromosomes that carry genes, in table order."""
        return list(self._chroms)

    # -- names --------------------------------------------------------------------------------

    def _where(self) -> str:
        return f" in genome {self.genome}" if self.genome else ""

    def find(self, name: str) -> list[Gene]:
        """Every gene ``name`` can mean by the look-up rules (empty when unknown)."""
        key = name.strip().lower()
        for tier in self._tiers:
            hits = tier.get(key)
            if hits:
                return [self._genes[i] for i in hits]
        return []

    def lookup(self, name: str) -> Gene:
        """The gene called ``name`` (ID, symbol, other ID or alias; case-insensitive).

        Raises :class:`NotFoundError` with up to five close names, or
        :class:`AmbiguousNameError` listing ``SYMBOL (ID, chrom:start-end)`` of each candidate.
        """
        if not isinstance(name, str) or not name.strip():
            raise InputError("empty gene name")
        name = name.strip()
        hits = self.find(name)
        if len(hits) == 1:
            return hits[0]
        if hits:
            labels = [g.label for g in hits]
            shown = ", ".join(labels[:_MAX_CANDIDATES_SHOWN])
            if len(labels) > _MAX_CANDIDATES_SHOWN:
                shown += f", and {len(labels) - _MAX_CANDIDATES_SHOWN} more"
            raise AmbiguousNameError(
                f"ambiguous gene name '{name}'{self._where()}: matches {shown}", labels
            )
        close = difflib.get_close_matches(name.lower(), self._display.keys(), n=5, cutoff=0.75)
        hint = f"; did you mean {', '.join(self._display[c] for c in close)}?" if close else ""
        raise NotFoundError(f"unknown gene '{name}'{self._where()}{hint}")

    def search_prefix(self, prefix: str, limit: int = 20) -> list[Gene]:
        """Genes whose symbol or an ID starts with ``prefix`` (case-insensitive), for autocomplete.

        Sorted by the matching name (shortest-first within equal prefixes, as in a dictionary),
        each gene once, at most ``limit``.
        """
        key = prefix.strip().lower()
        if not key or limit <= 0:
            return []
        out: dict[int, None] = {}
        i = bisect.bisect_left(self._prefix_keys, key)
        while i < len(self._prefix_rows) and len(out) < limit:
            name, gi = self._prefix_rows[i]
            if not name.startswith(key):
                break
            out.setdefault(gi)
            i += 1
        return [self._genes[gi] for gi in out]

    # -- positions ----------------------------------------------------------------------------

    def genes_in(self, chrom: str, start0: int, end0: int) -> list[Gene]:
        """Genes overlapping ``[start0, end0)`` on ``chrom`` (0-based half-open), in order.

        A gene overlaps when ``gene.start0 < end0 and gene.end0 > start0``; for an empty range
        (``start0 == end0``) that is the genes strictly around the point. An unknown chromosome
        has no genes.
        """
        if end0 < start0:
            raise InputError(f"bad range {chrom}:{start0}-{end0}: end before start")
        genes = self._by_chrom.get(chrom)
        if not genes:
            return []
        starts = self._starts[chrom]
        # every gene starting at or before start0 - max_len ends at or before start0
        lo = bisect.bisect_right(starts, start0 - self._max_len[chrom])
        hi = bisect.bisect_left(starts, end0)
        return [g for g in genes[lo:hi] if g.end0 > start0]

    # -- transformations ----------------------------------------------------------------------

    def rename_chromosomes(self, mapping: Mapping[str, str] | Callable[[str], str]) -> GeneTable:
        """A new table with chromosomes renamed; names the mapping lacks stay as they are."""
        rename = mapping if callable(mapping) else (lambda c: mapping.get(c, c))
        new = {c: rename(c) for c in self._chroms}
        return GeneTable(
            (replace(g, chrom=new[g.chrom]) for g in self._genes),
            genome=self.genome,
            chrom_order=[new[c] for c in self._chroms],
        )

    def with_genome(self, genome: str | None) -> GeneTable:
        """The same genes under another genome name (for messages)."""
        return GeneTable(self._genes, genome=genome, chrom_order=self._chroms)

    # -- parquet ------------------------------------------------------------------------------

    def to_parquet_bytes(self) -> bytes:
        """The table as one Parquet file (exons/CDS as ``list<struct<start0, end0>>``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        part = pa.list_(pa.struct([("start0", pa.int64()), ("end0", pa.int64())]))
        schema = pa.schema(
            [
                ("gene_id", pa.string()),
                ("symbol", pa.string()),
                ("aliases", pa.list_(pa.string())),
                ("ids", pa.list_(pa.string())),
                ("chrom", pa.string()),
                ("start0", pa.int64()),
                ("end0", pa.int64()),
                ("strand", pa.string()),
                ("biotype", pa.string()),
                ("exons", part),
                ("cds", part),
                ("description", pa.string()),
            ],
            metadata={
                "sandgrain.kind": "gene-table",
                "sandgrain.version": "1",
                "sandgrain.genome": json.dumps(self.genome),
                "sandgrain.chromosomes": json.dumps(self._chroms),
            },
        )
        gs = self._genes

        def parts(xs: tuple[Interval, ...]) -> list[dict[str, int]]:
            return [{"start0": s, "end0": e} for s, e in xs]

        columns = [
            [g.gene_id for g in gs],
            [g.symbol for g in gs],
            [list(g.aliases) for g in gs],
            [list(g.ids) for g in gs],
            [g.chrom for g in gs],
            [g.start0 for g in gs],
            [g.end0 for g in gs],
            [g.strand for g in gs],
            [g.biotype for g in gs],
            [parts(g.exons) for g in gs],
            [parts(g.cds) for g in gs],
            [g.description for g in gs],
        ]
        table = pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)],
            schema=schema,
        )
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()

    @classmethod
    def from_parquet_bytes(cls, data: bytes) -> GeneTable:
        """The table written by :meth:`to_parquet_bytes`."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as e:
            raise InputError(f"not a gene table Parquet file: {e}") from None
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        if meta.get("sandgrain.kind") != "gene-table":
            raise InputError("not a gene table Parquet file: no sandgrain gene-table metadata")
        cols = table.to_pydict()
        missing = {"gene_id", "symbol", "chrom", "start0", "end0", "exons", "cds"} - set(cols)
        if missing:
            raise InputError(f"not a gene table Parquet file: no column {sorted(missing)[0]}")

        def parts(xs: list[dict[str, int]] | None) -> tuple[Interval, ...]:
            return tuple((p["start0"], p["end0"]) for p in xs or ())

        genes = [
            Gene(
                gene_id=cols["gene_id"][i],
                symbol=cols["symbol"][i],
                aliases=tuple(cols["aliases"][i] or ()),
                ids=tuple(cols["ids"][i] or ()),
                chrom=cols["chrom"][i],
                start0=cols["start0"][i],
                end0=cols["end0"][i],
                strand=cols["strand"][i],
                biotype=cols["biotype"][i],
                exons=parts(cols["exons"][i]),
                cds=parts(cols["cds"][i]),
                description=cols["description"][i] or "",
            )
            for i in range(table.num_rows)
        ]
        return cls(
            genes,
            genome=json.loads(meta.get("sandgrain.genome", "null")),
            chrom_order=json.loads(meta.get("sandgrain.chromosomes", "[]")),
        )


# --------------------------------------------------------------------------------------------
# shared reader helpers
# --------------------------------------------------------------------------------------------


class _GeneBuilder:
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
        exons = _combine(self.exon_groups.values())
        cds = _combine(self.cds_groups.values())
        if not exons:
            exons = cds
        start0, end0 = self.start0, self.end0
        for s, e in (*exons, *cds):
            start0 = s if start0 is None else min(start0, s)
            end0 = e if end0 is None else max(end0, e)
        assert start0 is not None and end0 is not None
        if not exons:
            exons = tuple(_join_abutting(self.own_parts)) or ((start0, end0),)
        symbol = self.symbol or self.gene_id
        taken = {self.gene_id.lower(), symbol.lower()}
        ids = _unique(self.ids, taken)
        aliases = _unique(self.aliases, taken | {i.lower() for i in ids})
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


def _unique(names: Iterable[str], taken: set[str]) -> tuple[str, ...]:
    """Non-empty names, first spelling of each (case-insensitive), minus those in ``taken``."""
    seen = set(taken)
    out = []
    for n in names:
        n = n.strip()
        if n and n.lower() not in seen:
            seen.add(n.lower())
            out.append(n)
    return tuple(out)


def _coords(source: str, lineno: int, start: str, end: str) -> Interval:
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


def _strand(source: str, lineno: int, value: str) -> str:
    try:
        return _STRANDS[value]
    except KeyError:
        raise InputError(
            f"{source}:{lineno}: strand must be '+', '-', '.' or '?', got '{value}'"
        ) from None


def _columns9(source: str, lineno: int, line: str) -> list[str]:
    cols = line.split("\t")
    if len(cols) > 9 and not any(c.strip() for c in cols[9:]):
        cols = cols[:9]
    if len(cols) != 9:
        raise InputError(f"{source}:{lineno}: expected 9 tab-separated columns, found {len(cols)}")
    return cols


def _table(builders: Iterable[_GeneBuilder], genome: str | None, chrom_order) -> GeneTable:
    return GeneTable((b.build() for b in builders), genome=genome, chrom_order=chrom_order)


def _mapper(chrom_map: Mapping[str, str] | None) -> Callable[[str], str]:
    if not chrom_map:
        return lambda c: c
    return lambda c: chrom_map.get(c, c)


# --------------------------------------------------------------------------------------------
# GTF
# --------------------------------------------------------------------------------------------

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


def _first(attrs: Mapping[str, list[str]], *keys: str) -> str:
    for k in keys:
        v = attrs.get(k)
        if v and v[0]:
            return v[0]
    return ""


def _gtf_fill(b: _GeneBuilder, attrs: Mapping[str, list[str]], strand: str, win: bool) -> None:
    """Gene fields from one line's attributes; ``win``: they replace what earlier lines gave."""

    def put(old: str, new: str) -> str:
        return (new or old) if win else (old or new)

    b.strand = put(b.strand, strand)
    b.symbol = put(b.symbol, _first(attrs, "gene_name", "gene_symbol", "gene"))
    b.biotype = put(b.biotype, _first(attrs, "gene_biotype", "gene_type"))
    b.description = put(b.description, _first(attrs, "description"))
    if b.gene_id.startswith("ENS") and "." in b.gene_id:
        b.ids.append(b.gene_id.split(".", 1)[0])  # GENCODE versioned ID: also the bare one
    for k in ("havana_gene", "hgnc_id", "db_xref", "Dbxref"):
        b.ids.extend(attrs.get(k, ()))
    b.aliases.extend(attrs.get("gene_synonym", ()))


def _read_gtf(lines: Iterable[str], source: str, rename: Callable[[str], str]) -> list:
    genes: dict[tuple[str, str], _GeneBuilder] = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        chrom, _, ftype, start, end, _, strand, _, attr_text = _columns9(source, lineno, line)
        s0, e0 = _coords(source, lineno, start, end)
        st = _strand(source, lineno, strand)
        pairs = _gtf_pairs(source, lineno, attr_text)
        gene_id = _gtf_value(pairs.get("gene_id", ""))
        if not gene_id:
            raise InputError(f"{source}:{lineno}: GTF line without a gene_id attribute")
        chrom = rename(chrom)
        # genes are keyed by ID and chromosome: old GTFs reuse IDs for the X/Y PAR copies
        b = genes.get((gene_id, chrom))
        is_new = b is None
        if b is None:
            b = genes[(gene_id, chrom)] = _GeneBuilder(gene_id, chrom)
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


# --------------------------------------------------------------------------------------------
# GFF3
# --------------------------------------------------------------------------------------------

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
        return _first(self.attrs, "ID") or f"\0line{self.lineno}"

    @property
    def parents(self) -> list[str]:
        return [p for p in self.attrs.get("Parent", ()) if p]


def _read_gff3(lines: Iterable[str], source: str, rename: Callable[[str], str]) -> list:
    features: list[_GffFeature] = []
    by_id: dict[str, list[_GffFeature]] = {}  # several lines may share one ID (one feature)
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if line.startswith("##FASTA") or line.startswith(">"):
            break
        if not line.strip() or line.startswith("#"):
            continue
        chrom, _, ftype, start, end, _, strand, _, attr_text = _columns9(source, lineno, line)
        s0, e0 = _coords(source, lineno, start, end)
        f = _GffFeature(
            lineno=lineno,
            chrom=rename(unquote(chrom)),
            ftype=ftype,
            start0=s0,
            end0=e0,
            strand=_strand(source, lineno, strand),
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

    builders: dict[str, _GeneBuilder] = {}
    for f in features:
        if f.key not in gene_keys:
            continue
        a = f.attrs
        b = builders.get(f.key)
        if b is None:
            fid = _first(a, "ID")
            gid = _first(a, "gene_id") or fid or _first(a, "Name")
            gid = gid or f"{f.chrom}:{f.start0 + 1}-{f.end0}"
            b = builders[f.key] = _GeneBuilder(gid, f.chrom)
            b.has_record = True
            if fid and gid != fid:
                b.ids.append(fid)
        b.extend(f.start0, f.end0)
        b.strand = b.strand or f.strand
        b.symbol = b.symbol or _first(a, "Name", "gene_name", "gene")
        b.biotype = b.biotype or _first(a, "biotype", "gene_biotype", "gene_type")
        b.description = b.description or _first(a, "description") or "; ".join(a.get("Note", ()))
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


# --------------------------------------------------------------------------------------------
# SGD features table
# --------------------------------------------------------------------------------------------


def _is_sgd_gene_type(ftype: str) -> bool:
    return ftype in SGD_GENE_TYPES or ftype.endswith("gene")


def _sgd_chrom(number: str, chrom_map: Mapping[str, str] | None) -> str:
    """The name of SGD chromosome ``number``: ``chrom_map`` may map the number or the default
    name (``{"17": "chrM"}`` and ``{"Mito": "chrM"}`` both work)."""
    default = SGD_CHROMOSOMES.get(number, number)
    if chrom_map:
        return chrom_map.get(number) or chrom_map.get(default) or default
    return default


def _read_sgd(lines: Iterable[str], source: str, chrom_map: Mapping[str, str] | None) -> list:
    seen: set[tuple[str, ...]] = set()
    builders: dict[str, _GeneBuilder] = {}
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
        b = builders[gene_id] = _GeneBuilder(gene_id, _sgd_chrom(chrom_no, chrom_map))
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


# --------------------------------------------------------------------------------------------
# GenBank
# --------------------------------------------------------------------------------------------

_GB_PRODUCT_TYPES = ("CDS", "mRNA", "tRNA", "rRNA", "ncRNA", "tmRNA", "misc_RNA", "precursor_RNA")


def _gb_values(feature, key: str) -> list[str]:
    return [v for v in feature.qualifiers.get(key, ()) if v]


def _gb_one(feature, key: str) -> str:
    values = _gb_values(feature, key)
    return values[0] if values else ""


def _gb_parts(feature) -> list[Interval]:
    return [(int(p.start), int(p.end)) for p in feature.location.parts]


def _gb_new(gid: str, chrom: str, feature, parts: list[Interval]) -> _GeneBuilder:
    b = _GeneBuilder(gid, chrom)
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


def _read_genbank(handle: IO[str], source: str, rename: Callable[[str], str]) -> tuple:
    from Bio import SeqIO

    try:
        records = list(SeqIO.parse(handle, "genbank"))
    except (ValueError, AssertionError, IndexError, KeyError) as e:
        raise InputError(f"{source}: not a valid GenBank file: {e}") from None
    if not records:
        raise InputError(f"{source}: no GenBank records found")
    builders: list[_GeneBuilder] = []
    chrom_order: list[str] = []
    for rec in records:
        chrom = rename(rec.id if rec.id and rec.id != "<unknown id>" else rec.name)
        chrom_order.append(chrom)
        by_tag: dict[str, _GeneBuilder] = {}
        by_name: dict[str, _GeneBuilder] = {}

        def remember(b: _GeneBuilder, tag: str, name: str, by_tag=by_tag, by_name=by_name) -> None:
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


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def _format_from_name(name: str) -> str | None:
    low = name.lower()
    for z in (".gz", ".bgz", ".gzip"):
        if low.endswith(z):
            low = low[: -len(z)]
            break
    base = os.path.basename(low)
    if base.endswith(".gtf") or base.endswith(".gff2"):
        return "gtf"
    if base.endswith((".gff3", ".gff")):
        return "gff3"
    if base.endswith((".gb", ".gbk", ".gbff", ".genbank")):
        return "genbank"
    if base.endswith(".tab") or "sgd_features" in base:
        return "sgd"
    return None


def _sniff(head: str) -> str | None:
    """The format of a file from its first lines, or ``None``."""
    for line in head.splitlines():
        if not line.strip():
            continue
        if line.startswith("LOCUS "):
            return "genbank"
        if line.startswith("##gff-version"):
            return "gff3" if line.split()[1:2] and line.split()[1].startswith("3") else "gtf"
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) >= 9 and cols[3].strip().isdigit() and cols[4].strip().isdigit():
            attrs = cols[8].strip()
            if re.match(r'^[^\s=;"]+\s+"', attrs):
                return "gtf"
            if re.match(r"^[^\s=;]+=", attrs) or attrs == ".":
                return "gff3"
        if len(cols) == 16 and re.match(r"^S\d{9}$", cols[0]):
            return "sgd"
        return None
    return None


def detect_format(path: str | os.PathLike[str], head: str | None = None) -> str:
    """``gtf``, ``gff3``, ``sgd`` or ``genbank`` for ``path`` (name first, then content)."""
    fmt = _format_from_name(os.fspath(path))
    if fmt is None:
        if head is None:
            try:
                with _open_text(Path(path)) as fh:
                    head = fh.read(64 * 1024)
            except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error):
                head = ""  # binary or corrupt: not any annotation format
        fmt = _sniff(head)
    if fmt is None:
        raise InputError(
            f"{os.fspath(path)}: cannot tell the annotation format; expected GTF, GFF3, "
            "an SGD features table or GenBank (name the file .gtf, .gff3, .tab or .gbk)"
        )
    return fmt


def _normalise_format(fmt: str) -> str:
    try:
        return FORMATS[fmt.lower().lstrip(".")]
    except KeyError:
        raise InputError(
            f"unknown annotation format '{fmt}'; use one of gtf, gff3, sgd, genbank"
        ) from None


def _open_text(path: Path) -> IO[str]:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except FileNotFoundError:
        raise NotFoundError(f"annotation file not found: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read annotation file {path}: {e.strerror}") from None
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _parse(
    handle: IO[str],
    fmt: str,
    source: str,
    chrom_map: Mapping[str, str] | None,
    genome: str | None,
    chrom_order: Sequence[str] | None,
) -> GeneTable:
    rename = _mapper(chrom_map)
    try:
        if fmt == "gtf":
            builders = _read_gtf(handle, source, rename)
            order = chrom_order
        elif fmt == "gff3":
            builders = _read_gff3(handle, source, rename)
            order = chrom_order
        elif fmt == "sgd":
            builders = _read_sgd(handle, source, chrom_map)
            order = chrom_order or [_sgd_chrom(str(i), chrom_map) for i in range(1, 18)]
        else:
            builders, rec_order = _read_genbank(handle, source, rename)
            order = chrom_order or rec_order
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise InputError(f"{source}: corrupt gzip data: {e}") from None
    if not builders:
        raise InputError(f"{source}: no genes found in this {fmt.upper()} file")
    return _table(builders, genome, order)


def read_annotation(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    chrom_map: Mapping[str, str] | None = None,
    genome: str | None = None,
    chrom_order: Sequence[str] | None = None,
) -> GeneTable:
    """Read a gene annotation file (GTF, GFF3, SGD features table or GenBank; gzip or plain).

    ``format`` is ``gtf``, ``gff3``, ``sgd`` or ``genbank`` (or an alias in :data:`FORMATS`);
    ``None`` detects it. ``chrom_map`` renames chromosomes as they are read (for SGD it maps the
    chromosome numbers, on top of :data:`SGD_CHROMOSOMES`). ``genome`` names the genome in error
    messages; ``chrom_order`` orders the table's chromosomes (e.g. as in the FASTA).
    """
    p = Path(path)
    fmt = _normalise_format(format) if format else detect_format(p)
    with _open_text(p) as fh:
        return _parse(fh, fmt, str(p), chrom_map, genome, chrom_order)


def parse_annotation(
    data: bytes | str,
    format: str | None = None,
    *,
    source: str = "<annotation>",
    chrom_map: Mapping[str, str] | None = None,
    genome: str | None = None,
    chrom_order: Sequence[str] | None = None,
) -> GeneTable:
    """Like :func:`read_annotation` for content in memory; ``source`` is its name in messages
    (and, when ``format`` is ``None``, the file name the format is guessed from)."""
    if isinstance(data, bytes):
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as e:
                raise InputError(f"{source}: corrupt gzip data: {e}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    else:
        text = data
    if format:
        fmt = _normalise_format(format)
    else:
        fmt = _format_from_name(source) or _sniff(text[: 64 * 1024])
        if fmt is None:
            raise InputError(
                f"{source}: cannot tell the annotation format; expected GTF, GFF3, "
                "an SGD features table or GenBank"
            )
    return _parse(io.StringIO(text), fmt, source, chrom_map, genome, chrom_order)
