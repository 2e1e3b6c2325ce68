"""Reference assemblies, their aliases, and the names and accessions of their chromosomes.

The one table of assembly knowledge every domain shares (the Beacon's ``assemblyId`` and
``referenceName``, a genome's ``--assembly``, HGVS accessions). Three assemblies of people and
one each of yeast and SARS-CoV-2 are known:

======== ========================================== ===============================================
name     aliases                                    chromosomes (canonical names)
======== ========================================== ===============================================
GRCh37   hg19, b37, hs37d5, GRCh37.p13              1 … 22, X, Y, MT
GRCh38   hg38, b38, GRCh38.p14                      1 … 22, X, Y, MT
R64      R64-1-1, sacCer3, S288C                    I … XVI, Mito
ASM985…  MN908947, NC_045512, wuhCor1, SARS-CoV-2   NC_045512.2
======== ========================================== ===============================================

A patch suffix is ignored (``GRCh37.p13`` is ``GRCh37``), as is the case of every alias.

Each chromosome answers to (case-insensitively): its canonical name, that name with ``chr``, the
UCSC name (``chrM``, ``NC_045512v2``), its RefSeq and GenBank (INSDC) accessions — bare or as the
CURIEs ``refseq:NC_000020.10``, ``insdc:CM000682.1``, ``genbank:CM000682.1`` — and, for a
mitochondrion, every spelling in :data:`MITO_NAMES`. So on GRCh37
``20``, ``chr20``, ``NC_000020.10`` and ``refseq:NC_000020.10`` are one chromosome, ``20``.

The accessions are those of the NCBI assembly reports: GRCh37.p13 (GCF_000001405.25), GRCh38.p14
(GCF_000001405.40), R64 (GCF_000146045.2) and ASM985889v3 (GCF_009858895.2, the RefSeq copy of
GenBank MN908947.3, Wu et al. 2020, Nature 579:265).

Example::

    resolve_chrom("hg19", "refseq:NC_000020.10")   # -> "20"
    refseq_accession("GRCh38", "chrX")             # -> "NC_000023.11"
    sequence_id("GRCh37", "chrM")                  # -> "refseq:NC_012920.1"
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import InputError, NotFoundError

__all__ = [
    "ASSEMBLIES",
    "CURIE_PREFIXES",
    "MITO_NAMES",
    "Assembly",
    "Chromosome",
    "accession_chrom",
    "canonical_assembly",
    "canonical_chrom",
    "find_assembly",
    "get_assembly",
    "refseq_accession",
    "resolve_chrom",
    "same_assembly",
    "sequence_id",
    "strip_curie",
]

#: Spellings of the mitochondrial chromosome, all taken as the same sequence.
MITO_NAMES: tuple[str, ...] = ("chrM", "M", "MT", "chrMT", "Mito", "chrMito", "mitochondrion")
#: CURIE prefixes a sequence accession may carry (GA4GH VRS / Beacon ``sequence_id`` style).
CURIE_PREFIXES: tuple[str, ...] = ("refseq:", "insdc:", "genbank:")

#: An accession with its version: RefSeq ``NC_000020.10`` or INSDC ``CM000682.1``/``J01415.2``.
_ACCESSION = re.compile(r"^(?:[A-Z]{2}_\d+|[A-Z]{1,2}\d+)\.\d+$")
#: RefSeq accessions of the human assembled chromosomes, any build: NC_000001 … NC_000024.
_HUMAN_REFSEQ = re.compile(r"^NC_0000(0[1-9]|1\d|2[0-4])\.\d+$", re.IGNORECASE)
_MITO_LOWER = frozenset(n.lower() for n in MITO_NAMES)


@dataclass(frozen=True)
class Chromosome:
    """One assembled molecule: its canonical name, UCSC name and accessions."""

    name: str
    refseq: str
    genbank: str
    ucsc: str
    mitochondrial: bool = False

    def spellings(self) -> tuple[str, ...]:
        """Every name the chromosome answers to, canonical name first (original case)."""
        names = [self.name, "chr" + self.name, self.ucsc]
        for accession in (self.refseq, self.genbank):
            if accession:
                names.append(accession)
                names.extend(prefix + accession for prefix in CURIE_PREFIXES)
        if self.mitochondrial:
            names.extend(MITO_NAMES)
        return tuple(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class Assembly:
    """A reference assembly: its name, aliases and assembled chromosomes in order."""

    name: str
    aliases: tuple[str, ...]
    chromosomes: tuple[Chromosome, ...]
    _by_spelling: dict[str, Chromosome] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Chromosome] = {}
        for chrom in self.chromosomes:
            for spelling in chrom.spellings():
                other = index.setdefault(spelling.lower(), chrom)
                if other is not chrom:  # an error in the table below, caught on import
                    raise ValueError(f"{self.name}: {spelling!r} names {other.name}, {chrom.name}")
        object.__setattr__(self, "_by_spelling", index)

    def __iter__(self) -> Iterator[Chromosome]:
        return iter(self.chromosomes)

    def find(self, name: str) -> Chromosome | None:
        """The chromosome ``name`` spells (any spelling, any case), or None."""
        return self._by_spelling.get(name.strip().lower())

    def resolve(self, name: str) -> str:
        """The canonical name of chromosome ``name``; :class:`NotFoundError` when the assembly
        has no such chromosome, :class:`InputError` for an empty name."""
        if not isinstance(name, str) or not name.strip():
            raise InputError("empty chromosome name")
        chrom = self.find(name)
        if chrom is None:
            known = ", ".join(c.name for c in self.chromosomes)
            raise NotFoundError(
                f"unknown chromosome '{name.strip()}' in assembly {self.name}; known: {known}"
            )
        return chrom.name


def _human(version37: bool) -> tuple[Chromosome, ...]:
    """The 25 assembled molecules of GRCh37 (``version37``) or GRCh38."""
    # RefSeq versions of NC_000001 … NC_000024 (GRCh37.p13, GRCh38.p14 assembly reports).
    v37 = (10, 11, 11, 11, 9, 11, 13, 10, 11, 10, 9, 11, 10, 8, 9, 9, 10, 9, 9, 10, 8, 10, 10, 9)
    v38 = (11, 12, 12, 12, 10, 12, 14, 11, 12, 11, 10, 12, 11, 9, 10, 10, 11, 10, 10, 11, 9, 11,
           11, 10)  # fmt: skip
    versions = v37 if version37 else v38
    genbank_version = 1 if version37 else 2  # CM000663 … CM000686
    out = []
    for i, version in enumerate(versions, 1):
        name = {23: "X", 24: "Y"}.get(i, str(i))
        out.append(
            Chromosome(
                name,
                refseq=f"NC_{i:06d}.{version}",
                genbank=f"CM{662 + i:06d}.{genbank_version}",
                ucsc=f"chr{name}",
            )
        )
    # the revised Cambridge Reference Sequence (Andrews et al. 1999, Nat Genet 23:147)
    out.append(Chromosome("MT", "NC_012920.1", "J01415.2", "chrM", mitochondrial=True))
    return tuple(out)


_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII",
          "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI")  # fmt: skip
#: R64 (S288C) RefSeq and GenBank accessions of chromosomes I … XVI (NCBI GCF_000146045.2).
_R64_ACCESSIONS = (
    ("NC_001133.9", "BK006935.2"), ("NC_001134.8", "BK006936.2"), ("NC_001135.5", "BK006937.2"),
    ("NC_001136.10", "BK006938.2"), ("NC_001137.3", "BK006939.2"), ("NC_001138.5", "BK006940.2"),
    ("NC_001139.9", "BK006941.2"), ("NC_001140.6", "BK006934.2"), ("NC_001141.2", "BK006942.2"),
    ("NC_001142.9", "BK006943.2"), ("NC_001143.9", "BK006944.2"), ("NC_001144.5", "BK006945.2"),
    ("NC_001145.3", "BK006946.2"), ("NC_001146.8", "BK006947.3"), ("NC_001147.6", "BK006948.2"),
    ("NC_001148.4", "BK006949.2"),
)  # fmt: skip


def _yeast() -> tuple[Chromosome, ...]:
    """Chromosomes of S. cerevisiae R64, named as in Ensembl and SGD (``I`` … ``XVI``, ``Mito``)."""
    nuclear = tuple(
        Chromosome(r, refseq, genbank, ucsc=f"chr{r}")
        for r, (refseq, genbank) in zip(_ROMAN, _R64_ACCESSIONS, strict=True)
    )
    return (*nuclear, Chromosome("Mito", "NC_001224.1", "AJ011856.1", "chrM", mitochondrial=True))


#: The known assemblies, by canonical name.
ASSEMBLIES: dict[str, Assembly] = {
    a.name: a
    for a in (
        Assembly("GRCh37", ("hg19", "b37", "hs37d5", "GRCh37-lite"), _human(True)),
        Assembly("GRCh38", ("hg38", "b38", "hs38", "hs38DH", "GRCh38-lite"), _human(False)),
        Assembly("R64", ("R64-1-1", "R64-2-1", "sacCer3", "S288C"), _yeast()),
        Assembly(
            "ASM985889v3",
            ("MN908947", "NC_045512", "wuhCor1", "SARS-CoV-2", "Wuhan-Hu-1"),
            (Chromosome("NC_045512.2", "NC_045512.2", "MN908947.3", "NC_045512v2"),),
        ),
    )
}

_BY_ALIAS: dict[str, Assembly] = {
    key.lower(): a for a in ASSEMBLIES.values() for key in (a.name, *a.aliases)
}


def _assembly_key(name: str) -> str:
    """``grch37`` for ``GRCh37.p13``: the name without a patch/version suffix, lower case."""
    return name.strip().split(".")[0].lower()


def find_assembly(name: str | None) -> Assembly | None:
    """The known assembly ``name`` means (any alias, any case, patch ignored), or None."""
    if not name or not isinstance(name, str):
        return None
    return _BY_ALIAS.get(_assembly_key(name))


def get_assembly(name: str) -> Assembly:
    """Like :func:`find_assembly`, but :class:`NotFoundError` for an assembly not in the table."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("empty assembly name")
    found = find_assembly(name)
    if found is None:
        raise NotFoundError(
            f"unknown assembly '{name.strip()}'; known: {', '.join(ASSEMBLIES)} and their aliases"
        )
    return found


def canonical_assembly(name: str) -> str:
    """``GRCh37`` for ``hg19``, ``b37``, ``hs37d5``, ``GRCh37.p13`` …; an unknown name is kept
    (stripped), since any assembly may be imported. :class:`InputError` for an empty name."""
    if not isinstance(name, str) or not name.strip():
        raise InputError("the assembly must be named, e.g. GRCh37")
    found = find_assembly(name)
    return found.name if found else name.strip()


def same_assembly(a: str | None, b: str | None) -> bool:
    """True when both name the same assembly (``hg19`` and ``GRCh37.p13``; unknown names are
    compared ignoring case); False when either is empty."""
    if not (isinstance(a, str) and a.strip() and isinstance(b, str) and b.strip()):
        return False
    return canonical_assembly(a).lower() == canonical_assembly(b).lower()


def strip_curie(name: str) -> str:
    """``NC_000020.10`` for ``refseq:NC_000020.10`` (and ``insdc:``/``genbank:``); else ``name``."""
    low = name.lower()
    for prefix in CURIE_PREFIXES:
        if low.startswith(prefix):
            return name[len(prefix) :]
    return name


def accession_chrom(name: str) -> str | None:
    """The canonical chromosome an accession names without knowing the assembly: any accession
    of the table (bare or as a CURIE), or a human RefSeq ``NC_0000NN`` of any build (``23`` is
    ``X``, ``24`` is ``Y``); None otherwise."""
    bare = strip_curie(name.strip())
    for a in ASSEMBLIES.values():
        chrom = a.find(bare)
        if chrom is not None and bare.lower() in (chrom.refseq.lower(), chrom.genbank.lower()):
            return chrom.name
    m = _HUMAN_REFSEQ.match(bare)
    if m:
        number = int(m.group(1))
        return {23: "X", 24: "Y"}.get(number, str(number))
    return None


def resolve_chrom(assembly: str, name: str) -> str:
    """The canonical name of chromosome ``name`` of ``assembly``, strictly: :class:`NotFoundError`
    for an unknown assembly or a name that is none of its chromosomes' spellings."""
    return get_assembly(assembly).resolve(name)


def _generic_chrom(name: str) -> str:
    """``chr`` removed, mitochondrion as ``MT``, ``X``/``Y`` in capitals; others unchanged."""
    if name.lower() in _MITO_LOWER:
        return "MT"
    bare = name[3:] if len(name) > 3 and name[:3].lower() == "chr" else name
    return bare.upper() if bare.upper() in ("X", "Y") else bare


def canonical_chrom(name: str, assembly: str | None = None) -> str:
    """The canonical spelling of a chromosome name, leniently (for output, never an error).

    With a known ``assembly`` every spelling of its chromosomes gives the canonical name
    (``chrM`` → ``MT`` on GRCh37, ``Mito`` on R64); a name that is an accession gives the
    chromosome of :func:`accession_chrom`; anything else loses its ``chr`` prefix, the
    mitochondrion becomes ``MT`` and ``x``/``y`` become ``X``/``Y`` (``chrUn_gl000220`` →
    ``Un_gl000220``).
    """
    text = name.strip()
    known = find_assembly(assembly)
    if known is not None:
        chrom = known.find(text)
        if chrom is not None:
            return chrom.name
    return accession_chrom(text) or _generic_chrom(strip_curie(text))


def refseq_accession(assembly: str | None, chrom: str) -> str | None:
    """The RefSeq accession of a chromosome (``NC_000001.10`` for GRCh37 ``1``), if known."""
    known = find_assembly(assembly)
    found = known.find(chrom) if known else None
    return found.refseq if found else None


def sequence_id(assembly: str | None, chrom: str) -> str:
    """A CURIE for the sequence: ``refseq:NC_…`` when known, ``refseq:``/``insdc:`` for a contig
    named by its accession, else ``<assembly>:<chrom>``."""
    accession = refseq_accession(assembly, chrom)
    if accession:
        return f"refseq:{accession}"
    if _ACCESSION.match(chrom):
        return f"refseq:{chrom}" if "_" in chrom else f"insdc:{chrom}"
    return f"{canonical_assembly(assembly) if assembly else 'unknown'}:{chrom}"
