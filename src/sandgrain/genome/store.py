"""The genome store: named genomes (indexed sequence + gene table) kept in the storage layer.

A genome is a dataset of kind ``genomes`` holding

- ``sequence.fa.gz`` (BGZF), ``sequence.fa.gz.fai`` and ``sequence.fa.gz.gzi`` — readable by
  samtools/pysam and, through ranged reads, by any worker without downloading the genome;
- ``genes.parquet`` — the gene table, when an annotation was given;

and a manifest with per-chromosome lengths, N and soft-masked counts, MD5s, and provenance.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import AmbiguousNameError, ConflictError, InputError, NotFoundError
from ..provenance import HashingReader, provenance, sha256_file
from ..storage import Dataset, Store, check_name, scratch_dir
from .annotation.genes import GeneTable
from .annotation.read import read_annotation
from .assemblies import ASSEMBLIES, find_assembly, strip_curie
from .bgzf import BgzfRangeReader, BgzfWriter, parse_gzi
from .chromosomes import ChromosomeNames
from .fasta import FastaImporter, open_maybe_gzip, parse_fai
from .regions import Region, parse_range, reverse_complement, split_region_text
from .sources import Progress, fetch_source

KIND = "genomes"
FORMAT = "sandgrain.genome"
FORMAT_VERSION = 1
SEQUENCE = "sequence.fa.gz"
GENES = "genes.parquet"


class Genome:
    """An imported genome: chromosomes, sequence access by region, and its gene table."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.name = dataset.name
        self.meta = dataset.meta
        self.chromosomes: list[dict] = self.meta["chromosomes"]
        self._lengths = {c["name"]: c["length"] for c in self.chromosomes}
        self.names = ChromosomeNames(
            [c["name"] for c in self.chromosomes],
            genome=self.name,
            assembly=self.meta.get("assembly"),
        )

    def __repr__(self) -> str:
        return f"Genome({self.name!r}, {len(self.chromosomes)} sequences)"

    @property
    def aliases(self) -> list[str]:
        return list(self.meta.get("aliases", []))

    @property
    def total_length(self) -> int:
        return sum(self._lengths.values())

    def reference(self) -> dict:
        """A small, picklable reference a fan-out task uses to reopen this genome."""
        return {
            "store": self.dataset.store.reference(),
            "genome": self.name,
            "version": self.dataset.manifest["version"],
        }

    @classmethod
    def from_reference(cls, ref: dict) -> Genome:
        store = Store.from_reference(ref["store"])
        return Genome(store.open_dataset(KIND, ref["genome"], ref.get("version")))

    # -- coordinates ------------------------------------------------------------------------------
    def resolve_chrom(self, name: str) -> str:
        """The genome's own name for a chromosome given as ``chrI``, ``I``, ``chrM``, ``MT``…"""
        return self.names.resolve(name)

    def ucsc_names(self) -> dict[str, str]:
        """Each chromosome's UCSC name (``XV`` → ``chrXV``, ``Mito`` → ``chrM``, ``1`` →
        ``chr1``), what a UCSC or IGV track of this genome must say: for a genome of a known
        assembly (:mod:`sandgrain.genome.assemblies`) — its ``assembly``, else its name or an
        alias naming one (``sacCer3``, ``hg38``) — each of its chromosomes that assembly holds.
        Empty for a genome of no known assembly: its own names are the only ones it has."""
        for label in (self.meta.get("assembly"), self.name, *self.aliases):
            assembly = find_assembly(label)
            if assembly is not None:
                break
        else:
            return {}
        found = ((c["name"], assembly.find(c["name"])) for c in self.chromosomes)
        return {name: chrom.ucsc for name, chrom in found if chrom is not None}

    def length(self, chrom: str) -> int:
        return self._lengths[self.resolve_chrom(chrom)]

    def fasta_headers(self) -> dict[str, str]:
        """Each sequence's FASTA header line as imported, without the ``>`` (what Cas-OFFinder
        prints as the chromosome): stored at import; for a genome imported before it was,
        rebuilt from the name and description (exact unless the header had a tab or runs of
        spaces)."""
        return {
            c["name"]: c.get("header")
            or (f"{c['name']} {c['description']}" if c.get("description") else c["name"])
            for c in self.chromosomes
        }

    def region(self, text: str, strand: str = "+") -> Region:
        """Parse ``chrom:start-end`` (1-based inclusive) into a checked :class:`Region`."""

        def is_chrom(name: str) -> bool:
            try:
                self.resolve_chrom(name)
            except (NotFoundError, LookupError):
                return False
            return True

        name, rng = split_region_text(text, is_chrom)
        chrom = self.resolve_chrom(name)
        start0, end0 = parse_range(chrom, rng, self._lengths[chrom], text)
        return Region(chrom, start0, end0, strand)

    # -- sequence ---------------------------------------------------------------------------------
    @functools.cached_property
    def _fai(self):
        return {e.name: e for e in parse_fai(self.dataset.read_bytes(SEQUENCE + ".fai").decode())}

    @functools.cached_property
    def _reader(self) -> BgzfRangeReader:
        gzi = parse_gzi(self.dataset.read_bytes(SEQUENCE + ".gzi"))
        size = self.dataset.manifest["files"][SEQUENCE]["size"]

        def fetch(start: int, end: int) -> bytes:
            return self.dataset.read_range(SEQUENCE, start, end)

        return BgzfRangeReader(fetch, gzi, size)

    def fetch(self, region: Region) -> str:
        """The sequence of a region as stored (soft-masked lowercase and N kept); the reverse
        complement for strand '-'. Reads only the BGZF blocks that cover the region."""
        chrom = self.resolve_chrom(region.chrom)
        if region.end0 > self._lengths[chrom]:
            raise InputError(
                f"region {region} is out of range: chromosome {chrom} has "
                f"{self._lengths[chrom]:,} bp"
            )
        if region.length == 0:
            return ""
        entry = self._fai[chrom]
        raw = self._reader.read(
            entry.byte_offset(region.start0), entry.byte_offset(region.end0 - 1) + 1
        )
        seq = raw.replace(b"\n", b"").decode("ascii")
        return reverse_complement(seq) if region.strand == "-" else seq

    def sequence(self, chrom: str, start0: int, end0: int, strand: str = "+") -> str:
        return self.fetch(Region(self.resolve_chrom(chrom), start0, end0, strand))

    # -- genes ------------------------------------------------------------------------------------
    @property
    def has_genes(self) -> bool:
        return GENES in self.dataset.manifest["files"]

    @functools.cached_property
    def genes(self) -> GeneTable:
        if not self.has_genes:
            return GeneTable([], genome=self.name)
        return GeneTable.from_parquet_bytes(self.dataset.read_bytes(GENES)).with_genome(self.name)

    def gene(self, name: str):
        """Look a gene up by symbol, alias or ID (case-insensitive)."""
        if not self.has_genes:
            raise NotFoundError(
                f"genome {self.name} has no gene annotation; add one with "
                f"`sandgrain genome add {self.name} --fasta … --annotation FILE --replace`"
            )
        return self.genes.lookup(name)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "aliases": self.aliases,
            "assembly": self.meta.get("assembly"),
            "sequences": len(self.chromosomes),
            "total_length": self.total_length,
            "genes": self.meta.get("genes", 0),
            "created": self.dataset.manifest.get("created"),
        }


def open_genome(store: Store, name: str) -> Genome:
    """Open a genome by name or alias."""
    check_name(name, "genome name")
    if store.has_dataset(KIND, name):
        return Genome(store.open_dataset(KIND, name))
    lowered = name.lower()
    for other in store.dataset_names(KIND):
        ds = store.open_dataset(KIND, other)
        if other.lower() == lowered or lowered in (a.lower() for a in ds.meta.get("aliases", [])):
            return Genome(ds)
    known = ", ".join(store.dataset_names(KIND)) or "none yet"
    raise NotFoundError(
        f"unknown genome {name!r} (known: {known}); add it with "
        f"`sandgrain genome add {name} --fasta FILE`"
    )


def _known_assembly(name: str):
    """The known assembly a reference name means: an assembly name or alias (``MN908947``,
    ``wuhCor1``, ``hg19``) or the accession of one of its sequences (``MN908947.3``,
    ``NC_045512.2``, ``refseq:NC_045512.2``); None for anything else."""
    found = find_assembly(name)
    if found is not None:
        return found
    bare = strip_curie(name.strip())
    return next((a for a in ASSEMBLIES.values() if a.find(bare) is not None), None)


def _genome_assembly(genome: Genome):
    """The known assembly of a stored genome: its ``assembly``, name or an alias naming one,
    else the assembly that holds every one of its sequences (a FASTA named ``MN908947.3``)."""
    for label in (genome.meta.get("assembly"), genome.name, *genome.aliases):
        found = find_assembly(label)
        if found is not None:
            return found
    names = [c["name"] for c in genome.chromosomes]
    for assembly in ASSEMBLIES.values():
        if names and all(assembly.find(n) is not None for n in names):
            return assembly
    return None


def open_reference_genome(store: Store, name: str) -> Genome:
    """A reference genome by name or alias (:func:`open_genome`), or else by what it is: the one
    stored genome of the assembly ``name`` names or holds a sequence of, so that the usual
    accession ``MN908947`` finds SARS-CoV-2 whatever the store calls it (the demo's
    ``sars-cov-2``, assembly ``NC_045512.2``).

    :class:`AmbiguousNameError` when several genomes are of that assembly;
    :class:`NotFoundError` naming the stored genomes when none is.
    """
    try:
        return open_genome(store, name)
    except (NotFoundError, InputError):  # not a genome's name, or no name at all (a CURIE)
        assembly = _known_assembly(name) if isinstance(name, str) else None
        if assembly is None:
            raise
    genomes = list_genomes(store)
    matches = [g for g in genomes if _genome_assembly(g) is assembly]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = [g.name for g in matches]
        raise AmbiguousNameError(
            f"{name!r} is assembly {assembly.name}, which genomes {', '.join(names)} all are; "
            "name one of them",
            names,
        )
    known = ", ".join(g.name for g in genomes) or "none yet"
    raise NotFoundError(
        f"no genome of assembly {assembly.name} ({name}) in the store (known: {known}); "
        f"add it with `sandgrain genome add {name} --fasta FILE`"
    )


def list_genomes(store: Store) -> list[Genome]:
    return [Genome(store.open_dataset(KIND, n)) for n in store.dataset_names(KIND)]


def remove_genome(store: Store, name: str) -> None:
    genome = open_genome(store, name)
    store.delete_dataset(KIND, genome.name)


def _check_aliases(store: Store, name: str, aliases: Sequence[str]) -> list[str]:
    """Aliases must not clash with another genome's name or aliases, nor the name with theirs."""
    for other in list_genomes(store):
        if other.name != name and name.lower() in (a.lower() for a in [other.name, *other.aliases]):
            raise ConflictError(f"{name!r} is already a name or alias of genome {other.name!r}")
    clean = []
    for alias in aliases:
        check_name(alias, "genome alias")
        if alias.lower() == name.lower():
            continue
        for other in list_genomes(store):
            if other.name == name:
                continue
            taken = [other.name.lower(), *(a.lower() for a in other.aliases)]
            if alias.lower() in taken:
                raise ConflictError(f"alias {alias!r} is already used by genome {other.name!r}")
        clean.append(alias)
    return sorted(set(clean))


def _map_gene_chromosomes(
    table: GeneTable, names: ChromosomeNames, lengths: dict[str, int]
) -> tuple[GeneTable, dict]:
    """Rename annotation chromosomes to the genome's names; report those that match nothing;
    refuse genes that lie beyond the end of their chromosome (an annotation of another
    assembly)."""
    mapping, unknown = {}, []
    for chrom in table.chromosomes():
        try:
            mapping[chrom] = names.resolve(chrom)
        except (NotFoundError, LookupError):
            unknown.append(chrom)
    if len(table) and not mapping:
        raise InputError(
            "the annotation's chromosomes ("
            + ", ".join(table.chromosomes()[:5])
            + ") match none of the genome's ("
            + ", ".join(names.names[:5])
            + ")"
        )
    renamed = GeneTable([g for g in table if g.chrom in mapping]).rename_chromosomes(mapping)
    for gene in renamed:
        if gene.end0 > lengths[gene.chrom]:
            raise InputError(
                f"gene {gene.symbol} ({gene.chrom}:{gene.start0 + 1}-{gene.end0}) lies beyond "
                f"the end of {gene.chrom} ({lengths[gene.chrom]:,} bp): is the annotation for "
                "another assembly?"
            )
    present = set(renamed.chromosomes())
    ordered = GeneTable(list(renamed), chrom_order=[n for n in names.names if n in present])
    return ordered, {"unplaced_chromosomes": unknown, "unplaced_genes": len(table) - len(ordered)}


def add_genome(
    store: Store,
    name: str,
    fasta: str,
    *,
    annotation: str | None = None,
    annotation_format: str | None = None,
    aliases: Sequence[str] = (),
    assembly: str | None = None,
    replace: bool = False,
    iupac_to_n: bool = False,
    progress: Progress | None = None,
    compression_level: int = 4,
    threads: int = 2,
) -> Genome:
    """Import a genome from a FASTA (path or URL, plain or gzipped) and an optional annotation.

    Memory stays bounded whatever the genome size: the FASTA is streamed in chunks into a BGZF
    file. Nothing becomes visible in the store until everything has been checked and written.

    Parameters
    ----------
    name
        The genome's name in the store (e.g. ``yeast``, ``hg38``).
    fasta, annotation
        A local path or an http(s)/ftp URL. Annotation: GTF, GFF3, SGD features table or GenBank.
    aliases
        Other names the genome answers to (``sacCer3``…).
    replace
        Replace an existing genome of that name (atomically).
    iupac_to_n
        Turn IUPAC ambiguity codes into N instead of refusing the FASTA.
    """
    check_name(name, "genome name")
    aliases = _check_aliases(store, name, aliases)
    if not replace and store.has_dataset(KIND, name):
        raise ConflictError(f"genome {name!r} already exists (use --replace to re-import it)")
    with scratch_dir() as tmp:
        fa_src = fetch_source(fasta, tmp, progress=progress)
        ann_src = fetch_source(annotation, tmp, progress=progress) if annotation else None
        out_path = tmp / SEQUENCE
        importer = FastaImporter(fasta, iupac_to_n=iupac_to_n)
        with open(fa_src.path, "rb") as raw_fh, open(out_path, "wb") as out:
            raw = HashingReader(raw_fh)
            writer = BgzfWriter(out, level=compression_level, threads=threads)

            def tick() -> None:
                if progress:
                    progress("import sequence", raw.bytes_read, fa_src.size)

            importer.run(open_maybe_gzip(raw), writer, tick)
            # read whatever trails the last gzip member so the checksum covers the whole file
            while raw.read(1 << 22):
                pass
            writer.close()
        fasta_sha = raw.hexdigest()
        inputs = [fa_src.record(fasta_sha) | {"role": "fasta"}]
        genes, placement = None, {}
        if ann_src is not None:
            if progress:
                progress("read annotation", 0, None)
            table = read_annotation(str(ann_src.path), annotation_format)
            genes, placement = _map_gene_chromosomes(
                table,
                ChromosomeNames([s.name for s in importer.sequences]),
                {s.name: s.length for s in importer.sequences},
            )
            inputs.append(
                ann_src.record(ann_src.sha256 or sha256_file(ann_src.path)) | {"role": "annotation"}
            )
        if progress:
            progress("store", 0, None)
        with store.new_dataset(
            KIND, name, format=FORMAT, format_version=FORMAT_VERSION, replace=replace
        ) as ds:
            ds.put_file(SEQUENCE, out_path)
            ds.write_bytes(SEQUENCE + ".fai", importer.fai_text().encode())
            ds.write_bytes(SEQUENCE + ".gzi", writer.gzi_bytes())
            if genes is not None:
                ds.write_bytes(GENES, genes.to_parquet_bytes())
            ds.meta = {
                "assembly": assembly,
                "aliases": aliases,
                "chromosomes": [s.to_dict() for s in importer.sequences],
                "genes": len(genes) if genes is not None else 0,
                "annotation": placement,
                "line_width": importer.width,
            }
            ds.provenance = provenance(
                "genome add",
                {
                    "name": name,
                    "aliases": aliases,
                    "assembly": assembly,
                    "annotation_format": annotation_format,
                    "iupac_to_n": iupac_to_n,
                    "compression_level": compression_level,
                },
                inputs,
            )
    return open_genome(store, name)


@dataclass(frozen=True)
class DemoGenome:
    """A demo genome from the shared data folder."""

    name: str
    fasta: str
    annotation: str | None
    aliases: tuple[str, ...]
    assembly: str


def demo_genomes(data_dir) -> list[DemoGenome]:
    """The demo genomes that ``make run`` imports when the shared data folder is present."""
    from pathlib import Path

    root = Path(data_dir)
    demos = [
        DemoGenome(
            "yeast",
            str(root / "genomes/yeast-R64/Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz"),
            str(root / "genomes/yeast-R64/SGD_features.tab"),
            ("sacCer3", "R64"),
            "R64-1-1",
        ),
        DemoGenome(
            "sars-cov-2",
            str(root / "genomes/sars-cov-2/NC_045512.2.fasta"),
            str(root / "genomes/sars-cov-2/NC_045512.2.gbk"),
            ("wuhCor1", "NC_045512.2"),
            "NC_045512.2",
        ),
    ]
    return [d for d in demos if Path(d.fasta).exists()]
