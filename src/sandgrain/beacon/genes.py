"""Gene coordinates for ``geneId`` queries, per assembly.

Where a gene's coordinates come from, first hit wins:

1. a Beacon gene table of that assembly, imported with
   ``sandgrain beacon genes --assembly GRCh37 FILE`` (BED-like ``chrom start end symbol`` with
   0-based starts — e.g. the GRCh37 gene list in ``../shared/data/genes`` — or GTF/GFF3);
2. the gene table of a genome in the store whose assembly is the same;
3. otherwise the query matches the gene names of the variants' own annotations (SnpEff ANN).
"""

from __future__ import annotations

import io
import json
import re

from ..errors import InputError, NotFoundError
from ..provenance import provenance
from ..storage import Store

GENES_KIND = "beacon-genes"


def parse_gene_list(data: bytes, source: str) -> list[list]:
    """``chrom start0 end symbol`` rows (whitespace separated, ``#`` comments skipped)."""
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


def import_genes(store: Store, assembly: str, path, data: bytes) -> int:
    """Store the gene table of ``assembly``; returns the number of genes."""
    from ..genome.annotation import _format_from_name, parse_annotation
    from ..provenance import sha256_file
    from .ingest import canonical_assembly

    assembly = canonical_assembly(assembly)
    name = str(path)
    fmt = _format_from_name(name.removesuffix(".gz"))
    if fmt in ("gtf", "gff3"):
        table = parse_annotation(data, fmt, source=name)
        genes = [[g.symbol or g.gene_id, g.chrom, g.start0, g.end0] for g in table]
    else:
        genes = parse_gene_list(data, name)
    with store.new_dataset(
        GENES_KIND, assembly, format="sandgrain.beacon-genes", format_version=1, replace=True
    ) as ds:
        ds.write_bytes("genes.json", json.dumps(genes).encode())
        ds.meta = {"assembly": assembly, "genes": len(genes)}
        ds.provenance = provenance(
            "beacon genes", {"assembly": assembly}, [{"source": name, "sha256": sha256_file(path)}]
        )
    _cache.pop((store.url, assembly), None)
    return len(genes)


_cache: dict[tuple, tuple[str, dict]] = {}


def _table(store: Store, assembly: str) -> dict[str, list] | None:
    if not store.has_dataset(GENES_KIND, assembly):
        return None
    ds = store.open_dataset(GENES_KIND, assembly)
    version = ds.manifest["version"]
    cached = _cache.get((store.url, assembly))
    if cached and cached[0] == version:
        return cached[1]
    by_name: dict[str, list] = {}
    for symbol, chrom, start0, end0 in json.loads(ds.read_bytes("genes.json")):
        by_name.setdefault(symbol.upper(), []).append([chrom, start0, end0])
    _cache[(store.url, assembly)] = (version, by_name)
    return by_name


def gene_regions(
    stores: list[Store], assembly: str, gene: str
) -> list[tuple[str, int, int]] | None:
    """Where ``gene`` is on ``assembly``: a list of (chrom, start0, end0); None when no gene
    table of that assembly exists (the caller then matches annotations instead)."""
    from ..genome.store import list_genomes
    from .ingest import canonical_assembly

    name = gene.strip()
    if not name or not re.match(r"^[\w.\-:@/]+$", name):
        raise InputError(f"geneId {gene!r} is not a gene name")
    assembly = canonical_assembly(assembly)
    for store in stores:
        table = _table(store, assembly)
        if table is not None:
            return [tuple(r) for r in table.get(name.upper(), [])]
    for store in stores:
        for genome in list_genomes(store):
            same = canonical_assembly(str(genome.meta.get("assembly") or "?")) == assembly
            if same and genome.has_genes:
                try:
                    g = genome.gene(name)
                except NotFoundError:
                    return []
                return [(g.chrom, g.start0, g.end0)]
    return None
