"""Gene coordinates per assembly, for any domain that turns a gene name into regions.

A gene table of an assembly is a dataset of kind ``gene-tables`` named after the assembly's
canonical name (:func:`~sandgrain.genome.assemblies.canonical_assembly`), holding ``genes.json``:
``[symbol, chrom, start0, end0]`` rows. It is imported with
``sandgrain beacon genes --assembly GRCh37 FILE`` from a BED-like list (``chrom start end symbol``
with 0-based starts — e.g. the GRCh37 gene list in ``../shared/data/genes``) or a GTF/GFF3 file.

Where :func:`gene_regions` finds a gene of an assembly, first hit wins:

1. the gene table of that assembly;
2. the gene table of a genome in the store whose assembly is the same;
3. otherwise nothing (``None``): the caller decides (the Beacon then matches the gene names of
   the variants' own annotations).

Loaded tables are kept in a small least-recently-used cache (:data:`CACHE_SIZE` tables, keyed
by store, assembly and dataset version), so a long-running server holds a bounded amount of
memory however many stores and assemblies it serves.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from ..errors import InputError, NotFoundError
from ..provenance import provenance, sha256_file
from ..storage import Store
from .annotation.read import format_from_name, parse_annotation
from .assemblies import canonical_assembly, same_assembly
from .store import list_genomes

__all__ = [
    "CACHE_SIZE",
    "KIND",
    "BoundedCache",
    "gene_regions",
    "import_gene_table",
    "parse_gene_list",
]

#: Dataset kind of the gene tables.
KIND = "gene-tables"
FORMAT = "sandgrain.gene-table"
FORMAT_VERSION = 1
#: How many loaded gene tables the process keeps.
CACHE_SIZE = 8
_GENE_NAME = re.compile(r"^[\w.\-:@/]+$")


class BoundedCache:
    """A thread-safe least-recently-used mapping of at most ``maxsize`` entries.

    Each entry carries a version; :meth:`get` answers only for the version asked, so a replaced
    dataset is never served from the cache.
    """

    def __init__(self, maxsize: int):
        if maxsize < 1:
            raise ValueError("a cache holds at least one entry")
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: Hashable, version: str) -> Any | None:
        """The value stored for ``key`` at ``version`` (now the most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != version:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, version: str, value: Any) -> None:
        """Store ``value``, dropping the least recently used entries beyond ``maxsize``."""
        with self._lock:
            self._entries[key] = (version, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = BoundedCache(CACHE_SIZE)


def parse_gene_list(data: bytes, source: str) -> list[list]:
    """``chrom start0 end symbol`` rows (whitespace separated, ``#`` comments skipped), as
    ``[symbol, chrom, start0, end0]``."""
    genes = []
    for n, line in enumerate(io.StringIO(data.decode("utf-8", errors="replace")), 1):
        parts = line.split()
        if not parts or parts[0].startswith(("#", "track", "browser")):
            continue
        if len(parts) < 4 or not (parts[1].isdigit() and parts[2].isdigit()):
            raise InputError(f"{source}: line {n}: expected 'chrom start end symbol'")
        start0, end0 = int(parts[1]), int(parts[2])
        if end0 <= start0:
            raise InputError(f"{source}: line {n}: end {end0} is not after start {start0}")
        genes.append([parts[3], parts[0], start0, end0])
    if not genes:
        raise InputError(f"{source}: no genes found")
    return genes


def import_gene_table(store: Store, assembly: str, path, data: bytes) -> int:
    """Store the gene table of ``assembly`` read from ``data`` (the content of ``path``: a gene
    list, GTF or GFF3, plain or gzip); returns the number of genes."""
    assembly = canonical_assembly(assembly)
    name = str(path)
    fmt = format_from_name(name.removesuffix(".gz"))
    if fmt in ("gtf", "gff3"):
        table = parse_annotation(data, fmt, source=name)
        genes = [[g.symbol or g.gene_id, g.chrom, g.start0, g.end0] for g in table]
    else:
        genes = parse_gene_list(data, name)
    with store.new_dataset(
        KIND, assembly, format=FORMAT, format_version=FORMAT_VERSION, replace=True
    ) as ds:
        ds.write_bytes("genes.json", json.dumps(genes).encode())
        ds.meta = {"assembly": assembly, "genes": len(genes)}
        ds.provenance = provenance(
            "gene table", {"assembly": assembly}, [{"source": name, "sha256": sha256_file(path)}]
        )
    _cache.discard((store.url, assembly))
    return len(genes)


def _table(store: Store, assembly: str) -> dict[str, list] | None:
    """Gene symbol (upper case) → its ``[chrom, start0, end0]`` places; None without a table."""
    if not store.has_dataset(KIND, assembly):
        return None
    ds = store.open_dataset(KIND, assembly)
    version = ds.manifest["version"]
    key = (store.url, assembly)
    by_name = _cache.get(key, version)
    if by_name is not None:
        return by_name
    by_name = {}
    for symbol, chrom, start0, end0 in json.loads(ds.read_bytes("genes.json")):
        by_name.setdefault(symbol.upper(), []).append([chrom, start0, end0])
    _cache.put(key, version, by_name)
    return by_name


def gene_regions(
    stores: list[Store], assembly: str, gene: str
) -> list[tuple[str, int, int]] | None:
    """Where ``gene`` is on ``assembly``: a list of (chrom, start0, end0); None when neither a
    gene table nor a genome with genes of that assembly exists (see the module doc)."""
    name = gene.strip()
    if not name or not _GENE_NAME.match(name):
        raise InputError(f"geneId {gene!r} is not a gene name")
    assembly = canonical_assembly(assembly)
    for store in stores:
        table = _table(store, assembly)
        if table is not None:
            return [tuple(r) for r in table.get(name.upper(), [])]
    for store in stores:
        for genome in list_genomes(store):
            if same_assembly(genome.meta.get("assembly"), assembly) and genome.has_genes:
                try:
                    g = genome.gene(name)
                except NotFoundError:
                    return []
                return [(g.chrom, g.start0, g.end0)]
    return None
