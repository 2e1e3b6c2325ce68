"""A diploid sample with known variants, and its paired-end reads: the truth that calling is
scored against.

:func:`plant_variants` plants SNVs and short indels into a reference, phased on two haplotypes,
and writes the truth VCF and the two haplotype sequences; :func:`simulate_reads` runs Debian's
``art_illumina`` (ART, Huang et al. 2012, Bioinformatics 28:593) over each haplotype, with an
empirical Illumina error and quality profile, and writes one shuffled, gzipped FASTQ pair.

The variant model:

* SNVs at ``snv_rate`` per base and indels at ``indel_rate`` per base (Poisson counts over the
  usable bases: A, C, G or T, inside ``regions`` when given); never on N or any other base.
* Indel lengths ``1..max_indel``: three in four follow a geometric law (P(L) ∝ 0.55^(L-1), most
  1–3 bp), one in four is uniform on ``10..max_indel`` so that long indels are a real share.
  Insertions and deletions are equally likely; half of the insertions duplicate the bases that
  follow (tandem duplications, as in real genomes), the others are random.
* Genotypes: homozygous ``1|1`` with probability ``hom_fraction``, else heterozygous ``0|1`` or
  ``1|0`` equally.
* ``cluster_fraction`` of the variants are placed 2–10 bp from an already planted one.
* Every indel is left-aligned as it is planted, so the truth VCF is normalised (VCF 4.2: an
  indel's REF and ALT start with the reference base before the event, the padding base).
* Any two variants keep at least 1 bp of unchanged reference between their REF spans (whatever
  their haplotypes), so each site has one record and haplotypes are unambiguous; deletions stay
  inside their contig.
"""

from __future__ import annotations

import gzip
import mmap
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, NotFoundError
from ..provenance import sha256_file
from . import tools
from .reference import is_gzip

__all__ = ["PROFILES", "PlantedVariant", "SimulatedTruth", "plant_variants", "simulate_reads"]

#: ART's built-in Illumina profiles and the longest read each supports (``art_illumina`` help).
PROFILES = {
    "GA1": 44,
    "GA2": 75,
    "HS10": 100,
    "HS20": 100,
    "HS25": 150,
    "HSXn": 150,
    "HSXt": 150,
    "MinS": 50,
    "MSv1": 250,
    "MSv3": 250,
    "NS50": 75,
}

_BASES = b"ACGT"
_LINE = 60
_GEOMETRIC_KEEP = 0.55  # P(L) ∝ 0.55^(L-1) for the short indels
_LONG_SHARE = 0.25  # share of indels drawn uniformly on 10..max_indel
_CLUSTER_TRIES = 20


@dataclass(frozen=True)
class PlantedVariant:
    """One planted variant, VCF-style: ``pos0`` is the 0-based position of REF's first base."""

    contig: str
    pos0: int
    ref: str
    alt: str
    gt: tuple[int, int]
    clustered: bool = False

    @property
    def kind(self) -> str:
        if len(self.ref) == len(self.alt):
            return "SNV"
        return "INS" if len(self.alt) > len(self.ref) else "DEL"


@dataclass
class SimulatedTruth:
    """What :func:`plant_variants` wrote, and how many variants of each kind."""

    vcf: Path
    hap1: Path
    hap2: Path
    snv: int
    indel: int
    het: int
    hom: int
    insertions: int = 0
    deletions: int = 0
    clustered: int = 0
    variants: list[PlantedVariant] = field(default_factory=list, repr=False)

    @property
    def haplotypes(self) -> tuple[Path, Path]:
        return (self.hap1, self.hap2)

    @property
    def total(self) -> int:
        return self.snv + self.indel

    def as_dict(self) -> dict:
        return {
            "vcf": str(self.vcf),
            "haplotypes": [str(self.hap1), str(self.hap2)],
            "snv": self.snv,
            "indel": self.indel,
            "insertions": self.insertions,
            "deletions": self.deletions,
            "het": self.het,
            "hom": self.hom,
            "clustered": self.clustered,
        }


# --------------------------------------------------------------------------------------------
# reading the reference


def _read_fasta(path: Path) -> list[tuple[str, bytearray]]:
    """``[(name, upper-case sequence)]`` of a plain or gzip FASTA, in file order."""
    if not path.is_file():
        raise NotFoundError(f"reference FASTA not found: {path}")
    opener = gzip.open if is_gzip(path) else open
    contigs: list[tuple[str, bytearray]] = []
    names: set[str] = set()
    try:
        with opener(path, "rb") as fh:
            seq: bytearray | None = None
            for lineno, raw in enumerate(fh, 1):
                line = raw.rstrip(b"\r\n")
                if line.startswith(b">"):
                    name = line[1:].split(None, 1)[0].decode("ascii", "replace") if line[1:] else ""
                    if not name:
                        raise InputError(f"{path}: line {lineno}: a FASTA header without a name")
                    if name in names:
                        raise InputError(f"{path}: sequence {name!r} appears twice")
                    names.add(name)
                    seq = bytearray()
                    contigs.append((name, seq))
                elif line.strip():
                    if seq is None:
                        raise InputError(f"{path}: line {lineno}: sequence before any '>' header")
                    seq += line.strip().upper()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read as FASTA ({exc})") from None
    if not contigs:
        raise InputError(f"{path}: no sequences (is it a FASTA file?)")
    return contigs


def _read_regions(regions, contigs: dict[str, int]) -> dict[str, list[tuple[int, int]]]:
    """``{contig: [(start0, end0)]}`` from a BED path or ``(contig, start0, end0)`` triples."""
    triples: Iterable[tuple[str, int, int]]
    if isinstance(regions, str | os.PathLike):
        bed = Path(regions)
        if not bed.is_file():
            raise NotFoundError(f"regions BED not found: {bed}")
        parsed = []
        for lineno, line in enumerate(bed.read_text().splitlines(), 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            cols = line.split("\t")
            try:
                parsed.append((cols[0], int(cols[1]), int(cols[2])))
            except (IndexError, ValueError):
                raise InputError(f"{bed}: line {lineno}: not BED (chrom, start, end)") from None
        triples = parsed
    else:
        triples = regions
    out: dict[str, list[tuple[int, int]]] = {}
    for contig, start0, end0 in triples:
        if contig not in contigs:
            raise InputError(f"region on {contig!r}, which is not in the reference")
        if not 0 <= start0 < end0 <= contigs[contig]:
            raise InputError(
                f"region {contig}:{start0 + 1}-{end0} is empty or past the contig's end "
                f"({contigs[contig]:,} bp)"
            )
        out.setdefault(contig, []).append((int(start0), int(end0)))
    return out


# --------------------------------------------------------------------------------------------
# planting


def _indel_length(rng: np.random.Generator, max_indel: int) -> int:
    if max_indel >= 10 and rng.random() < _LONG_SHARE:
        return int(rng.integers(10, max_indel + 1))
    while True:
        length = int(rng.geometric(1.0 - _GEOMETRIC_KEEP))
        if length <= max_indel:
            return length


def _left_align_deletion(seq: bytearray, pos0: int, length: int) -> int:
    """The leftmost padding position of deleting ``seq[pos0+1 : pos0+1+length]``."""
    while pos0 > 0 and seq[pos0] == seq[pos0 + length]:
        pos0 -= 1
    return pos0


def _left_align_insertion(seq: bytearray, pos0: int, inserted: bytes) -> tuple[int, bytes]:
    """The leftmost padding position (and rotated sequence) of inserting after ``pos0``."""
    while pos0 > 0 and seq[pos0] == inserted[-1]:
        inserted = bytes([seq[pos0]]) + inserted[:-1]
        pos0 -= 1
    return pos0, inserted


def _draw_event(rng, seq: bytearray, pos0: int, kind: str, max_indel: int):
    """``(pos0, ref, alt)`` of one event near ``pos0`` (indels left-aligned), or ``None``."""
    n = len(seq)
    if kind == "SNV":
        ref = seq[pos0]
        alts = [b for b in _BASES if b != ref]
        return pos0, bytes([ref]), bytes([alts[int(rng.integers(3))]])
    length = _indel_length(rng, max_indel)
    if kind == "DEL":
        if pos0 + 1 + length > n:
            return None
        pos0 = _left_align_deletion(seq, pos0, length)
        return pos0, bytes(seq[pos0 : pos0 + 1 + length]), bytes(seq[pos0 : pos0 + 1])
    if rng.random() < 0.5 and pos0 + 1 + length <= n:
        inserted = bytes(seq[pos0 + 1 : pos0 + 1 + length])  # tandem duplication
    else:
        inserted = bytes(_BASES[i] for i in rng.integers(0, 4, size=length))
    pos0, inserted = _left_align_insertion(seq, pos0, inserted)
    return pos0, bytes(seq[pos0 : pos0 + 1]), bytes(seq[pos0 : pos0 + 1]) + inserted


def _plant_contig(
    rng: np.random.Generator,
    name: str,
    seq: bytearray,
    allowed: list[tuple[int, int]] | None,
    *,
    snv_rate: float,
    indel_rate: float,
    hom_fraction: float,
    cluster_fraction: float,
    max_indel: int,
) -> list[PlantedVariant]:
    n = len(seq)
    is_base = np.zeros(256, dtype=bool)
    is_base[np.frombuffer(_BASES, dtype=np.uint8)] = True
    usable = is_base[np.frombuffer(seq, dtype=np.uint8)]
    if allowed is not None:
        inside = np.zeros(n, dtype=bool)
        for start0, end0 in allowed:
            inside[start0:end0] = True
        usable &= inside
    n_usable = int(usable.sum())
    if n_usable == 0:
        return []
    # ``blocked`` marks bases a new REF span may not touch: unusable ones, and every planted
    # span widened by 1 bp each side (the unchanged base kept between variants).
    blocked = ~usable
    n_snv = int(rng.poisson(snv_rate * n_usable))
    n_indel = int(rng.poisson(indel_rate * n_usable))
    kinds = np.array(["SNV"] * n_snv + ["INDEL"] * n_indel)
    rng.shuffle(kinds)
    # usable stretches as (start0, length): a uniform draw over usable bases without an array
    # of every position (70 Mb would be 560 MB of int64)
    pad = np.zeros(1, dtype=np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate((pad, usable.view(np.int8), pad))))
    run_starts, run_lengths = edges[0::2], edges[1::2] - edges[0::2]
    run_ends = np.cumsum(run_lengths)
    planted: list[PlantedVariant] = []
    for kind in kinds:
        if kind == "INDEL":
            kind = "DEL" if rng.random() < 0.5 else "INS"
        clustered = bool(planted) and rng.random() < cluster_fraction
        event = None
        for _ in range(_CLUSTER_TRIES):
            if clustered:
                anchor = planted[int(rng.integers(len(planted)))]
                gap = int(rng.integers(2, 11))
                if rng.random() < 0.5:
                    pos0 = anchor.pos0 + len(anchor.ref) - 1 + gap
                else:
                    pos0 = anchor.pos0 - gap
                if not 0 <= pos0 < n:
                    continue
            else:
                u = int(rng.integers(n_usable))
                k = int(np.searchsorted(run_ends, u, side="right"))
                pos0 = int(run_starts[k] + u - (run_ends[k] - run_lengths[k]))
            if blocked[pos0]:
                continue
            event = _draw_event(rng, seq, pos0, kind, max_indel)
            if event is None:
                continue
            start0 = event[0]
            end0 = start0 + len(event[1])
            if blocked[start0:end0].any():
                event = None
                continue
            break
        if event is None:
            continue
        start0, ref, alt = event
        end0 = start0 + len(ref)
        blocked[max(0, start0 - 1) : end0 + 1] = True
        gt = (1, 1) if rng.random() < hom_fraction else (0, 1) if rng.random() < 0.5 else (1, 0)
        planted.append(
            PlantedVariant(name, start0, ref.decode(), alt.decode(), gt, clustered=clustered)
        )
    planted.sort(key=lambda v: v.pos0)
    return planted


def _haplotype(seq: bytearray, variants: list[PlantedVariant], hap: int) -> bytearray:
    out = bytearray()
    at = 0
    for v in variants:
        if v.gt[hap] != 1:
            continue
        out += seq[at : v.pos0]
        out += v.alt.encode()
        at = v.pos0 + len(v.ref)
    out += seq[at:]
    return out


# --------------------------------------------------------------------------------------------
# writing


def _write_fasta(path: Path, records: Iterable[tuple[str, bytes]]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            for name, seq in records:
                fh.write(b">" + name.encode() + b"\n")
                for i in range(0, len(seq), _LINE):
                    fh.write(seq[i : i + _LINE] + b"\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_truth_vcf(
    path: Path,
    contigs: list[tuple[str, bytearray]],
    variants: list[PlantedVariant],
    provenance: str,
    reference: Path,
) -> None:
    """Bgzip and tabix-index the truth VCF at ``path`` (``.vcf.gz``), atomically."""
    import pysam

    lines = [
        "##fileformat=VCFv4.2",
        "##source=sandgrain.calling.simulate",
        f"##reference=file://{reference.resolve()}",
        provenance,
        *(f"##contig=<ID={name},length={len(seq)}>" for name, seq in contigs),
        '##INFO=<ID=TYPE,Number=1,Type=String,Description="Planted variant: SNV, INS or DEL">',
        '##INFO=<ID=CLUSTER,Number=0,Type=Flag,Description="Planted 2-10 bp from another">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Phased genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tSIM",
    ]
    for v in variants:
        info = f"TYPE={v.kind}" + (";CLUSTER" if v.clustered else "")
        gt = f"{v.gt[0]}|{v.gt[1]}"
        lines.append(f"{v.contig}\t{v.pos0 + 1}\t.\t{v.ref}\t{v.alt}\t.\tPASS\t{info}\tGT\t{gt}")
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".truth-") as tmpdir:
        plain = Path(tmpdir) / "truth.vcf"
        plain.write_text("\n".join(lines) + "\n")
        gz = Path(tmpdir) / "truth.vcf.gz"
        pysam.tabix_compress(str(plain), str(gz), force=True)
        pysam.tabix_index(str(gz), preset="vcf", force=True)
        os.replace(gz, path)
        os.replace(str(gz) + ".tbi", str(path) + ".tbi")


def plant_variants(
    reference: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    seed: int = 1,
    snv_rate: float = 1e-3,
    indel_rate: float = 1.5e-4,
    hom_fraction: float = 1 / 3,
    cluster_fraction: float = 0.1,
    max_indel: int = 50,
    regions: str | os.PathLike | Sequence[tuple[str, int, int]] | None = None,
) -> SimulatedTruth:
    """Plant phased SNVs and indels into ``reference``; write the truth and the two haplotypes.

    Parameters
    ----------
    reference
        FASTA, plain or gzip.
    out_dir
        Folder for ``truth.vcf.gz`` (+ ``.tbi``; one sample, ``SIM``, phased GT), ``hap1.fa`` and
        ``hap2.fa`` (the haplotypes, with the reference's sequence names). Created if missing.
    seed
        Seed of the random generator: the same seed and inputs give the same files.
    snv_rate, indel_rate
        Expected variants per usable base.
    hom_fraction
        Share of homozygous (``1|1``) variants; the rest are heterozygous.
    cluster_fraction
        Share of variants placed 2–10 bp from another one.
    max_indel
        Longest indel (bp).
    regions
        Plant only inside these: a BED file or ``(contig, start0, end0)`` triples.

    Returns
    -------
    SimulatedTruth
        The paths written and the counts (SNVs, indels, het, hom).
    """
    reference = Path(reference)
    out = Path(out_dir)
    for label, value in (("snv_rate", snv_rate), ("indel_rate", indel_rate)):
        if not 0 <= value < 0.1:
            raise InputError(f"{label} must be in [0, 0.1), not {value}")
    if not 0 <= hom_fraction <= 1 or not 0 <= cluster_fraction <= 1:
        raise InputError("hom_fraction and cluster_fraction must be in [0, 1]")
    if not 1 <= max_indel <= 10_000:
        raise InputError(f"max_indel must be 1..10000, not {max_indel}")
    contigs = _read_fasta(reference)
    allowed = None
    if regions is not None:
        allowed = _read_regions(regions, {name: len(seq) for name, seq in contigs})
    rng = np.random.default_rng(seed)
    variants: list[PlantedVariant] = []
    for name, seq in contigs:
        variants += _plant_contig(
            rng,
            name,
            seq,
            None if allowed is None else allowed.get(name, []),
            snv_rate=snv_rate,
            indel_rate=indel_rate,
            hom_fraction=hom_fraction,
            cluster_fraction=cluster_fraction,
            max_indel=max_indel,
        )
    out.mkdir(parents=True, exist_ok=True)
    provenance = (
        f"##sandgrain=<program=calling.simulate.plant_variants,seed={seed},snv_rate={snv_rate},"
        f"indel_rate={indel_rate},hom_fraction={hom_fraction:.6g},"
        f"cluster_fraction={cluster_fraction},max_indel={max_indel},"
        f"reference={reference.name},reference_sha256={sha256_file(reference)}>"
    )
    by_contig: dict[str, list[PlantedVariant]] = {}
    for v in variants:
        by_contig.setdefault(v.contig, []).append(v)
    for hap in (0, 1):
        _write_fasta(
            out / f"hap{hap + 1}.fa",
            ((name, bytes(_haplotype(seq, by_contig.get(name, []), hap))) for name, seq in contigs),
        )
    vcf = out / "truth.vcf.gz"
    _write_truth_vcf(vcf, contigs, variants, provenance, reference)
    kinds = [v.kind for v in variants]
    return SimulatedTruth(
        vcf=vcf,
        hap1=out / "hap1.fa",
        hap2=out / "hap2.fa",
        snv=kinds.count("SNV"),
        indel=len(kinds) - kinds.count("SNV"),
        het=sum(1 for v in variants if v.gt != (1, 1)),
        hom=sum(1 for v in variants if v.gt == (1, 1)),
        insertions=kinds.count("INS"),
        deletions=kinds.count("DEL"),
        clustered=sum(1 for v in variants if v.clustered),
        variants=variants,
    )


# --------------------------------------------------------------------------------------------
# reads


def _index_fastq(buf: mmap.mmap | bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets of each record's name (after '@') and of its next line, plus record ends.

    Returns ``(starts, ends)`` with shape ``(n, 2)`` / ``(n,)``: ``starts[i] = (name, seq)``.
    """
    starts: list[tuple[int, int]] = []
    ends: list[int] = []
    at = 0
    size = len(buf)
    while at < size:
        if buf[at : at + 1] != b"@":
            raise InputError(f"{path}: ART wrote an unexpected record at byte {at}")
        name_end = buf.find(b"\n", at)
        cut = name_end
        for _ in range(3):
            cut = buf.find(b"\n", cut + 1)
            if cut < 0:
                raise InputError(f"{path}: truncated FASTQ record at byte {at}")
        starts.append((at + 1, name_end + 1))
        ends.append(cut + 1)
        at = cut + 1
    return np.array(starts, dtype=np.int64).reshape(-1, 2), np.array(ends, dtype=np.int64)


def _mate_name(buf, name_start: int, seq_start: int) -> bytes:
    name = buf[name_start : seq_start - 1].split()[0]
    return name[:-2] if name.endswith((b"/1", b"/2")) else name


def simulate_reads(
    haplotypes: Sequence[str | os.PathLike],
    out_prefix: str | os.PathLike,
    *,
    depth: float = 20.0,
    read_length: int = 150,
    fragment_mean: int = 400,
    fragment_sd: int = 50,
    seed: int = 1,
    profile: str = "HS25",
) -> tuple[Path, Path, int]:
    """Paired-end Illumina reads from the haplotypes with ART, as one shuffled FASTQ pair.

    Parameters
    ----------
    haplotypes
        FASTA of each haplotype (``hap1.fa``, ``hap2.fa`` from :func:`plant_variants`); each gets
        ``depth / len(haplotypes)`` of the coverage.
    out_prefix
        Writes ``{out_prefix}_1.fastq.gz`` and ``{out_prefix}_2.fastq.gz``.
    depth
        Total fold coverage of the sample.
    read_length, fragment_mean, fragment_sd
        Read length and the fragment (insert) size law, in bp.
    seed
        ART's seed (haplotype ``i`` gets ``seed + i``) and the seed of the output order.
    profile
        ART's built-in error profile (``HS25``: HiSeq 2500, reads up to 150 bp).

    Returns
    -------
    tuple
        ``(r1_path, r2_path, n_pairs)``. Read names are ``h{i}_{ART name}``, the same in both
        files (no ``/1``, ``/2``); pairs come in a seeded random order, not by position.
    """
    if profile not in PROFILES:
        raise InputError(f"unknown ART profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if not 1 <= read_length <= PROFILES[profile]:
        raise InputError(
            f"read length {read_length} is not supported by ART profile {profile} "
            f"(1..{PROFILES[profile]} bp)"
        )
    if not depth > 0:
        raise InputError(f"depth must be positive, not {depth}")
    if fragment_mean < read_length or fragment_sd < 0:
        raise InputError(
            f"fragment mean ({fragment_mean}) must be at least the read length ({read_length}) "
            f"and its SD ({fragment_sd}) not negative"
        )
    haps = [Path(h) for h in haplotypes]
    if not haps:
        raise InputError("no haplotype FASTA given")
    for h in haps:
        if not h.is_file():
            raise NotFoundError(f"haplotype FASTA not found: {h}")
    art = tools.find("art_illumina")
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    r1 = prefix.with_name(prefix.name + "_1.fastq.gz")
    r2 = prefix.with_name(prefix.name + "_2.fastq.gz")
    per_hap = depth / len(haps)
    with tempfile.TemporaryDirectory(dir=prefix.parent, prefix=".art-") as tmpdir:
        tmp = Path(tmpdir)
        pairs: list[tuple[Path, Path]] = []
        for i, hap in enumerate(haps, 1):
            art_prefix = tmp / f"h{i}_"
            tools.run(
                [art, "-ss", profile, "-i", str(hap), "-p", "-l", str(read_length),
                 "-f", f"{per_hap:.6g}", "-m", str(fragment_mean), "-s", str(fragment_sd),
                 "-rs", str(seed + i - 1), "-na", "-o", str(art_prefix)],
                what=f"art_illumina on {hap.name}",
            )  # fmt: skip
            pairs.append((Path(f"{art_prefix}1.fq"), Path(f"{art_prefix}2.fq")))
        n_pairs = _shuffle_pairs(pairs, tmp / "r1.fastq.gz", tmp / "r2.fastq.gz", seed)
        os.replace(tmp / "r1.fastq.gz", r1)
        os.replace(tmp / "r2.fastq.gz", r2)
    return r1, r2, n_pairs


def _shuffle_pairs(pairs: list[tuple[Path, Path]], out1: Path, out2: Path, seed: int) -> int:
    """Write the pairs of every haplotype's ART output in one seeded random order."""
    maps = []
    tables = []  # per haplotype: (starts1, ends1, starts2, ends2)
    try:
        for f1, f2 in pairs:
            bufs = []
            for f in (f1, f2):
                if not f.is_file() or f.stat().st_size == 0:
                    bufs.append(b"")
                    continue
                with open(f, "rb") as fh:
                    bufs.append(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
            maps.append(bufs)
            s1, e1 = _index_fastq(bufs[0], f1)
            s2, e2 = _index_fastq(bufs[1], f2)
            if len(s1) != len(s2):
                raise InputError(f"ART wrote {len(s1)} first reads but {len(s2)} second reads")
            tables.append((s1, e1, s2, e2))
        counts = [len(t[0]) for t in tables]
        total = sum(counts)
        if total == 0:
            raise InputError(
                "ART simulated no reads: are the sequences shorter than the fragments?"
            )
        which = np.repeat(np.arange(len(tables)), counts)
        index = np.concatenate([np.arange(c) for c in counts])
        order = np.random.default_rng(seed).permutation(total)
        with (
            open(out1, "wb") as raw1,
            open(out2, "wb") as raw2,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw1, mtime=0, compresslevel=4) as o1,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw2, mtime=0, compresslevel=4) as o2,
        ):
            for k in order:
                h = int(which[k])
                j = int(index[k])
                s1, e1, s2, e2 = tables[h]
                b1, b2 = maps[h]
                name1 = _mate_name(b1, int(s1[j, 0]), int(s1[j, 1]))
                name2 = _mate_name(b2, int(s2[j, 0]), int(s2[j, 1]))
                if name1 != name2:
                    raise InputError(f"ART's mates disagree: {name1.decode()} vs {name2.decode()}")
                head = b"@h%d_" % (h + 1) + name1 + b"\n"
                o1.write(head + b1[int(s1[j, 1]) : int(e1[j])])
                o2.write(head + b2[int(s2[j, 1]) : int(e2[j])])
        return total
    finally:
        for bufs in maps:
            for b in bufs:
                if isinstance(b, mmap.mmap):
                    b.close()


def confident_regions(
    reference: str | os.PathLike,
    out_bed: str | os.PathLike,
    *,
    read_length: int = 150,
    step: int = 10,
    min_mapq: int = 20,
    edge: int = 500,
) -> tuple[Path, int, int]:
    """Where a short-read caller can be held to account: the uniquely mappable bases.

    Benchmark truth sets leave out what short reads cannot resolve (the GIAB high-confidence
    regions exclude segmental duplications and low-mappability sequence; Zook et al. 2019,
    *Nat Biotechnol* 37:561). The same idea on any genome: ``read_length`` tiles of the
    reference every ``step`` bases are aligned back to it with minimap2's short-read preset; a
    base is confident when at least half the tiles covering it map back to their own place with
    MAPQ ≥ ``min_mapq`` (a mappability track in the spirit of Umap, Karimzadeh et al. 2018,
    *NAR* 46:e120). The first and last ``edge`` bases of each sequence, where read depth falls
    off, and every N are left out.

    Writes a BED (0-based, half-open) and returns ``(path, confident_bases, total_bases)``.
    """
    if read_length < 20 or step < 1:
        raise InputError("tiles of at least 20 bp, every 1 bp or more")
    ref = Path(reference)
    contigs = _read_fasta(ref)
    out = Path(out_bed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sandgrain-mappability-", dir=out.parent) as tmp:
        tiles = Path(tmp) / "tiles.fa"
        with open(tiles, "wb") as fh:
            for ci, (_, seq) in enumerate(contigs):
                for start in range(0, max(0, len(seq) - read_length) + 1, step):
                    piece = bytes(seq[start : start + read_length])
                    if piece.count(b"N") < read_length // 10:
                        fh.write(b">%d_%d\n%s\n" % (ci, start, piece))
        sam = tools.run(["minimap2", "-a", "-x", "sr", "--secondary=no", "-t", "2", ref, tiles],
                        what="map the genome's tiles")  # fmt: skip
        names = [name for name, _ in contigs]
        good = [np.zeros(len(seq) + 1, dtype=np.int32) for _, seq in contigs]
        seen = [np.zeros(len(seq) + 1, dtype=np.int32) for _, seq in contigs]
        for line in sam.splitlines():
            if line.startswith(b"@"):
                continue
            f = line.split(b"\t", 5)
            flag = int(f[1])
            if flag & 0x900:  # secondary / supplementary
                continue
            ci, start = (int(x) for x in f[0].split(b"_"))
            seen[ci][start] += 1
            seen[ci][min(start + read_length, len(seen[ci]) - 1)] -= 1
            own = not flag & 4 and f[2].decode() == names[ci] and int(f[3]) - 1 == start
            if own and int(f[4]) >= min_mapq:
                good[ci][start] += 1
                good[ci][min(start + read_length, len(good[ci]) - 1)] -= 1
    confident = total = 0
    tmp_bed = out.with_name(out.name + ".tmp")
    with open(tmp_bed, "w") as bed:
        for ci, (name, seq) in enumerate(contigs):
            n = len(seq)
            total += n
            g = np.cumsum(good[ci])[:n]
            s = np.cumsum(seen[ci])[:n]
            ok = (s > 0) & (2 * g >= s)
            ok &= np.frombuffer(bytes(seq), dtype=np.uint8) != ord("N")
            ok[: min(edge, n)] = False
            ok[max(0, n - edge) :] = False
            edges = np.flatnonzero(np.diff(np.concatenate(([0], ok.view(np.int8), [0]))))
            for a, b in zip(edges[0::2], edges[1::2], strict=True):
                bed.write(f"{name}\t{a}\t{b}\n")
                confident += int(b - a)
    os.replace(tmp_bed, out)
    return out, confident, total
