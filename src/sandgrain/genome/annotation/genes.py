"""Genes and the gene table: what every annotation reader builds, with name look-up and overlap
queries.

Coordinates are 0-based half-open everywhere in this package (``start0``, ``end0``); the
:class:`Gene` properties :attr:`Gene.start1`, :attr:`Gene.end1` and :attr:`Gene.location` give the
1-based inclusive form users see (``XV:564476-566191``).

Exons and CDS of a gene
-----------------------
Each transcript (GTF/GFF3), each feature (GenBank) or the gene itself (SGD) contributes one set of
parts. When one of these sets covers every base the others cover, the gene keeps that set as it
is — so a -1 ribosomal frameshift (SARS-CoV-2 ORF1ab: ``join(266..13468,13468..21555)``) keeps its
two overlapping parts; otherwise the parts are merged into disjoint intervals
(:func:`combine_parts`). Parts are sorted by start; abutting parts of one transcript are joined
(GTF's stop codon to its CDS).

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
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from ...errors import AmbiguousNameError, InputError, NotFoundError

__all__ = ["Gene", "GeneTable", "Interval", "combine_parts", "join_abutting", "union_parts"]

Interval = tuple[int, int]

_MAX_CANDIDATES_SHOWN = 10


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


def union_parts(parts: Iterable[Interval]) -> list[Interval]:
    """Disjoint, sorted union; overlapping or abutting intervals are joined."""
    out: list[list[int]] = []
    for s, e in sorted(parts):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def join_abutting(parts: Iterable[Interval]) -> list[Interval]:
    """Sorted, without repeats; abutting parts joined, overlapping ones kept apart."""
    out: list[Interval] = []
    for s, e in sorted(set(parts)):
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def combine_parts(groups: Iterable[Iterable[Interval]]) -> tuple[Interval, ...]:
    """Parts of a gene from its transcripts/features: see "Exons and CDS" in the module doc."""
    sets = [join_abutting(g) for g in groups]
    sets = [g for g in sets if g]
    if not sets:
        return ()
    union = union_parts(p for g in sets for p in g)
    for g in sets:
        if union_parts(g) == union:
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

        The gene named exactly ``prefix`` first, then the others by the length of the matching
        name, then alphabetically (typing ``ADE2`` offers ADE2 before ADE1, ADE12…; ``ADE``
        offers ADE1 … ADE8 before ADE12); each gene once, at most ``limit``.
        """
        key = prefix.strip().lower()
        if not key or limit <= 0:
            return []
        lo = bisect.bisect_left(self._prefix_keys, key)
        hi = bisect.bisect_left(self._prefix_keys, key + "\U0010ffff", lo)
        ranked = sorted(self._prefix_rows[lo:hi], key=lambda row: (len(row[0]), row[0]))
        out: dict[int, None] = {}
        for _, gi in ranked:
            out.setdefault(gi)
            if len(out) >= limit:
                break
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
            table = pq.read_table(pa.BufferReader(data), use_threads=False)
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
