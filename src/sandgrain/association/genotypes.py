"""Genotypes as alt-allele dosages, read from VCF/BCF and stored 2 bits per call.

A :class:`GenotypeMatrix` is variants × samples of dosages: 0, 1 or 2 copies of the alt allele,
and :data:`MISSING` (3) for a call that is absent. It comes from a VCF/BCF read once with pysam
(:meth:`GenotypeMatrix.from_vcf`, kept in memory 2 bits per call) or from a dataset of kind
``genotypes`` in the store (:func:`import_vcf`, :meth:`GenotypeMatrix.open`), so repeated
analyses do not parse the VCF again. Both read in blocks of variants (:meth:`iter_blocks`): a
test never holds more than one block unpacked.

Rules, stated once:

- **Multi-allelic sites are split** into one row per alt allele (as ``bcftools norm -m-``); the
  dosage of row *k* counts copies of alt *k* only, so in a ``1/2`` call each row sees one copy.
- **Missing**: a call with any allele ``.`` (``./.``, ``./1``) is missing; so is a sample with no
  GT field. Phased (``|``) and unphased (``/``) calls are the same here.
- **Haploid** calls (chrX/Y in males, mitochondria) count as homozygous: ``1`` → 2, ``0`` → 0, as
  PLINK 1.9 codes hemizygous calls, so one allele scale serves the whole genome.
- Ploidy above 2 is refused.
- Sites without an ALT allele (``.``) carry no information and are skipped.
- :func:`impute` fills missing calls with the variant's mean dosage over called samples (the
  rule of PLINK 2 ``--glm`` mean-imputation and of VariantSpark), or its most frequent dosage
  (``rule="mode"``), before a regression or a forest sees the data.

Packing: call *i* of a variant is bits ``2*(i % 4)`` of byte ``i // 4`` of that variant's row;
a row is ``ceil(n_samples / 4)`` bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError, NotFoundError

__all__ = [
    "FORMAT",
    "KIND",
    "MISSING",
    "GenotypeMatrix",
    "impute",
    "import_vcf",
    "iter_vcf",
    "pack",
    "parse_genotypes",
    "unpack",
]

KIND = "genotypes"
FORMAT = "sandgrain.genotypes"
FORMAT_VERSION = 1
MISSING = 3
#: Variants parsed and packed together while reading a VCF.
READ_BLOCK = 2048
VARIANT_SCHEMA = pa.schema(
    [
        ("chrom", pa.string()),
        ("pos", pa.int64()),
        ("id", pa.string()),
        ("ref", pa.string()),
        ("alt", pa.string()),
    ]
)

_SHIFTS = np.array([0, 2, 4, 6], dtype=np.uint8)
_GT_SPLIT = re.compile(r"[|/]")


# -- packing ------------------------------------------------------------------------------------
def pack(block: np.ndarray) -> np.ndarray:
    """Pack a (variants, samples) uint8 block of codes 0-3 into (variants, ceil(samples/4))."""
    block = np.asarray(block, dtype=np.uint8)
    m, n = block.shape
    width = (n + 3) // 4
    padded = np.zeros((m, width * 4), dtype=np.uint8)
    padded[:, :n] = block
    quads = padded.reshape(m, width, 4) << _SHIFTS
    return np.bitwise_or.reduce(quads, axis=2).astype(np.uint8)


def unpack(packed: np.ndarray, n_samples: int) -> np.ndarray:
    """The inverse of :func:`pack`: a (variants, n_samples) uint8 block of codes 0-3."""
    packed = np.asarray(packed, dtype=np.uint8)
    m = packed.shape[0]
    codes = (packed[:, :, None] >> _SHIFTS) & 3
    return np.ascontiguousarray(codes.reshape(m, -1)[:, :n_samples])


# -- parsing ------------------------------------------------------------------------------------
def parse_genotypes(sample_text: str, fmt: str, n_alts: int, n_samples: int) -> np.ndarray:
    """Dosages (n_alts, n_samples) uint8 of one VCF line's sample columns (the text after the
    FORMAT column), with the module's rules for split alts, missing and haploid calls."""
    if fmt.split(":", 1)[0] != "GT":
        return np.full((n_alts, n_samples), MISSING, dtype=np.uint8)
    a1 = a2 = None
    # Fast path: every call is one-digit diploid "a|b" or "a/b" and GT the only FORMAT field.
    if fmt == "GT" and len(sample_text) == 4 * n_samples - 1:
        raw = np.frombuffer((sample_text + "\t").encode(), dtype=np.uint8).reshape(n_samples, 4)
        sep_ok = np.isin(raw[:, 1], (ord("|"), ord("/"))).all()
        if sep_ok and (raw[:, 3] == ord("\t")).all():
            a1 = raw[:, 0].astype(np.int16) - ord("0")
            a2 = raw[:, 2].astype(np.int16) - ord("0")
            dots = ord(".") - ord("0")
            if ((a1 >= 0) & (a1 <= 9) | (a1 == dots)).all() and (
                (a2 >= 0) & (a2 <= 9) | (a2 == dots)
            ).all():
                a1 = np.where(a1 == dots, -1, a1)
                a2 = np.where(a2 == dots, -1, a2)
            else:
                a1 = a2 = None
    if a1 is None:
        a1, a2 = _parse_slow(sample_text, n_samples)
    out = np.empty((n_alts, n_samples), dtype=np.uint8)
    haploid = a2 == -2
    missing = (a1 < 0) | (a2 == -1)
    for k in range(1, n_alts + 1):
        dose = (a1 == k).astype(np.uint8) + (a2 == k)
        dose[haploid] *= 2
        dose[missing] = MISSING
        out[k - 1] = dose
    return out


def _parse_slow(sample_text: str, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Allele indices of each call: -1 for '.', -2 for the second allele of a haploid call."""
    a1 = np.full(n_samples, -1, dtype=np.int16)
    a2 = np.full(n_samples, -1, dtype=np.int16)
    fields = sample_text.split("\t")
    if len(fields) != n_samples:
        raise InputError(f"a VCF line has {len(fields)} sample columns, the header {n_samples}")
    for i, f in enumerate(fields):
        gt = f.split(":", 1)[0]
        alleles = _GT_SPLIT.split(gt)
        if len(alleles) > 2:
            raise InputError(f"genotype {gt!r}: ploidy above 2 is not supported")
        try:
            a1[i] = -1 if alleles[0] in (".", "") else int(alleles[0])
            if len(alleles) == 1:
                a2[i] = -2
            else:
                a2[i] = -1 if alleles[1] == "." else int(alleles[1])
        except ValueError:
            raise InputError(f"genotype {gt!r} is not a VCF GT value") from None
    return a1, a2


def _is_bgzf(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(18)
    return len(head) >= 18 and head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


@contextlib.contextmanager
def _variant_file(path: Path):
    """A pysam VariantFile streaming ``path``: VCF (plain, BGZF or plain gzip) or BCF. htslib
    cannot open plain (non-BGZF) gzip by name, so that is fed through a pipe."""
    import pysam

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(4)
    quiet = pysam.set_verbosity(0)  # "no index" and "contig not in header" are not our concern
    feeder = None
    try:
        if head[:2] == b"\x1f\x8b" and not _is_bgzf(path):
            read_fd, write_fd = os.pipe()

            def feed() -> None:
                with (
                    contextlib.suppress(BrokenPipeError, OSError),
                    gzip.open(path, "rb") as src,
                    os.fdopen(write_fd, "wb") as dst,
                ):
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            handle = os.fdopen(read_fd, "rb")
            try:
                vf = pysam.VariantFile(handle)
            except (OSError, ValueError) as exc:
                handle.close()
                raise InputError(f"{path.name}: not a VCF ({exc})") from None
        else:
            try:
                vf = pysam.VariantFile(str(path))
            except (OSError, ValueError) as exc:
                raise InputError(f"{path.name}: not a VCF or BCF ({exc})") from None
        try:
            yield vf
        finally:
            vf.close()
    finally:
        pysam.set_verbosity(quiet)


@dataclass
class VcfBlock:
    """Variants parsed from a VCF together: their table columns and their dosages."""

    chrom: list[str] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    id: list[str] = field(default_factory=list)
    ref: list[str] = field(default_factory=list)
    alt: list[str] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)

    def table(self) -> pa.Table:
        return pa.table([self.chrom, self.pos, self.id, self.ref, self.alt], schema=VARIANT_SCHEMA)

    def dosages(self, n_samples: int) -> np.ndarray:
        if not self.rows:
            return np.zeros((0, n_samples), dtype=np.uint8)
        return np.concatenate(self.rows, axis=0)


@dataclass
class VcfHeader:
    samples: list[str]
    #: positions of the chosen samples among the VCF's columns (None: all, in file order)
    columns: np.ndarray | None


def _choose_samples(vcf_samples: list[str], samples: Sequence[str] | None) -> VcfHeader:
    if samples is None:
        return VcfHeader(list(vcf_samples), None)
    index = {s: i for i, s in enumerate(vcf_samples)}
    absent = [s for s in samples if s not in index]
    if absent:
        raise InputError(f"{len(absent)} sample(s) not in the VCF, e.g. {', '.join(absent[:3])}")
    return VcfHeader(list(samples), np.array([index[s] for s in samples], dtype=np.int64))


def header_assembly(vf) -> str | None:
    """The assembly a VCF header names, canonical (``GRCh37`` for ``b37``, ``hg19`` …): the
    ``assembly`` of its ``##contig`` lines, else its ``##reference`` (a name or a file name such
    as ``human_g1k_v37.fasta``); None when neither names a known assembly."""
    from ..genome.assemblies import find_assembly

    names = []
    for rec in vf.header.records:
        if rec.key == "contig" and rec.get("assembly"):
            names.append(rec.get("assembly"))
        elif rec.key == "reference" and rec.value:
            ref = Path(str(rec.value).split("://")[-1]).name
            names += [ref, ref.split(".")[0]]
    for name in names:
        found = find_assembly(name)
        if found is not None:
            return found.name
    return None


def iter_vcf(
    path: str | os.PathLike,
    samples: Sequence[str] | None = None,
    block: int = READ_BLOCK,
    header: list | None = None,
    meta: dict | None = None,
) -> Iterator[VcfBlock]:
    """Stream a VCF/BCF as blocks of about ``block`` variants (after the multi-allelic split).

    ``samples`` picks and orders samples (all, in file order, when None). The chosen sample ids
    are appended to ``header`` (a list) before the first block, for callers that need them even
    when the file has no variants; ``meta`` (a dict) gets the header's ``assembly`` (see
    :func:`header_assembly`).
    """
    path = Path(path)
    with _variant_file(path) as vf:
        if meta is not None:
            meta["assembly"] = header_assembly(vf)
        chosen = _choose_samples(list(vf.header.samples), samples)
        n_vcf = len(vf.header.samples)
        if n_vcf == 0:
            raise InputError(f"{path.name}: the VCF has no samples (no genotype columns)")
        if header is not None:
            header.extend(chosen.samples)
        current = VcfBlock()
        count = 0
        for rec in vf:
            alts = rec.alts
            if not alts:
                continue
            line = str(rec).rstrip("\n")
            parts = line.split("\t", 9)
            if len(parts) < 10:
                raise InputError(f"{path.name}: {rec.chrom}:{rec.pos} has no genotype columns")
            dos = parse_genotypes(parts[9], parts[8], len(alts), n_vcf)
            if chosen.columns is not None:
                dos = dos[:, chosen.columns]
            vid = rec.id or "."
            for alt in alts:
                current.chrom.append(rec.chrom)
                current.pos.append(rec.pos)
                current.id.append(vid)
                current.ref.append(rec.ref)
                current.alt.append(alt)
            current.rows.append(dos)
            count += len(alts)
            if count >= block:
                yield current
                current, count = VcfBlock(), 0
        if count:
            yield current


# -- imputation ---------------------------------------------------------------------------------
def impute(block: np.ndarray, rule: str = "mean") -> np.ndarray:
    """Dosages as float64 with missing calls filled per variant.

    ``rule="mean"``: the variant's mean dosage over its called samples (PLINK 2 and
    VariantSpark); ``rule="mode"``: its most frequent called dosage (ties to the lower). A
    variant with no called sample gets 0 everywhere.
    """
    block = np.asarray(block)
    values = block.astype(np.float64)
    missing = block == MISSING
    if not missing.any():
        return values
    called = ~missing
    if rule == "mean":
        n = called.sum(axis=1)
        total = np.where(called, values, 0.0).sum(axis=1)
        fill = np.divide(total, n, out=np.zeros_like(total), where=n > 0)
    elif rule == "mode":
        counts = np.stack([(block == d).sum(axis=1) for d in (0, 1, 2)], axis=1)
        fill = counts.argmax(axis=1).astype(np.float64)
    else:
        raise InputError(f"imputation rule {rule!r}: use mean or mode")
    rows, cols = np.nonzero(missing)
    values[rows, cols] = fill[rows]
    return values


# -- the matrix ---------------------------------------------------------------------------------
class GenotypeMatrix:
    """Variants × samples of dosages (0/1/2, 3 = missing), packed 2 bits per call.

    Build with :meth:`from_vcf` (in memory) or :meth:`open` (a ``genotypes`` dataset).
    """

    def __init__(self, samples: list[str], variants: pa.Table, packed=None, dataset=None):
        self.samples = list(samples)
        self.variants = variants
        self._packed = packed
        self._dataset = dataset
        self.source: dict = {}

    @property
    def n_variants(self) -> int:
        return self.variants.num_rows

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def row_bytes(self) -> int:
        return (self.n_samples + 3) // 4

    def __repr__(self) -> str:
        return f"GenotypeMatrix({self.n_variants} variants × {self.n_samples} samples)"

    @classmethod
    def from_vcf(
        cls, path: str | os.PathLike, samples: Sequence[str] | None = None
    ) -> GenotypeMatrix:
        """Read a VCF/BCF (streamed with pysam) into memory, 2 bits per call."""
        header: list[str] = []
        tables, packed = [], []
        for blk in iter_vcf(path, samples, header=header):
            tables.append(blk.table())
            packed.append(pack(blk.dosages(len(header))))
        variants = pa.concat_tables(tables) if tables else VARIANT_SCHEMA.empty_table()
        width = (len(header) + 3) // 4
        matrix = np.concatenate(packed) if packed else np.zeros((0, width), np.uint8)
        out = cls(header, variants, packed=matrix)
        out.source = {"vcf": str(path)}
        return out

    @classmethod
    def open(cls, store, name: str) -> GenotypeMatrix:
        """A genotypes dataset imported with :func:`import_vcf`."""
        try:
            ds = store.open_dataset(KIND, name)
        except NotFoundError:
            known = ", ".join(store.dataset_names(KIND)) or "none yet"
            raise NotFoundError(
                f"no genotypes named {name!r} (known: {known}); import a VCF with "
                "`sandgrain association import --vcf FILE --name NAME`"
            ) from None
        samples = ds.read_bytes("samples.txt").decode().splitlines()
        # Arrow's reader threads, once started in a process that has loaded htslib (pysam), made
        # the process abort at exit ("terminate called without an active exception") 4 runs in 5;
        # a one-thread read never did (a table of a few MB: no time lost)
        variants = pq.read_table(
            io.BytesIO(ds.read_bytes("variants.parquet")), use_threads=False
        )
        out = cls(samples, variants, dataset=ds)
        out.source = {"genotypes": name, "version": ds.manifest["version"]}
        return out

    def packed(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as packed bytes (variants, ceil(samples/4))."""
        start, stop = max(0, start), min(stop, self.n_variants)
        if stop <= start:
            return np.zeros((0, self.row_bytes), dtype=np.uint8)
        if self._packed is not None:
            return self._packed[start:stop]
        w = self.row_bytes
        data = self._dataset.read_range("genotypes.bin", start * w, stop * w)
        return np.frombuffer(data, dtype=np.uint8).reshape(stop - start, w)

    def dosages(self, start: int, stop: int) -> np.ndarray:
        """Dosages of variants ``start:stop``: uint8 (stop-start, n_samples), 3 = missing."""
        return unpack(self.packed(start, stop), self.n_samples)

    def iter_blocks(self, size: int = 4096) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, dosages)`` for consecutive blocks of at most ``size`` variants."""
        if size < 1:
            raise InputError("a block holds at least one variant")
        for start in range(0, self.n_variants, size):
            yield start, self.dosages(start, start + size)


def import_vcf(
    store,
    path: str | os.PathLike,
    name: str,
    *,
    samples: Sequence[str] | None = None,
    replace: bool = False,
    assembly: str | None = None,
) -> GenotypeMatrix:
    """Read a VCF/BCF once and publish it as a ``genotypes`` dataset: ``genotypes.bin`` (rows of
    2-bit calls), ``variants.parquet`` (chrom, pos, id, ref, alt) and ``samples.txt``.

    The dataset's ``meta["assembly"]`` is ``assembly`` when given, else the one the VCF header
    names (:func:`header_assembly`), else absent; pages link hits to a genome browser with it.
    """
    from ..genome.assemblies import canonical_assembly
    from ..provenance import provenance, sha256_file
    from ..storage import scratch_dir

    path = Path(path)
    if assembly is not None:
        assembly = canonical_assembly(assembly)
    found: dict = {}
    header: list[str] = []
    tables = []
    n_missing = 0
    with scratch_dir("sandgrain-genotypes-") as tmp:
        bin_path = tmp / "genotypes.bin"
        with open(bin_path, "wb") as out:
            for blk in iter_vcf(path, samples, header=header, meta=found):
                dos = blk.dosages(len(header))
                n_missing += int((dos == MISSING).sum())
                out.write(pack(dos).tobytes())
                tables.append(blk.table())
        variants = pa.concat_tables(tables) if tables else VARIANT_SCHEMA.empty_table()
        pq.write_table(variants, tmp / "variants.parquet")
        (tmp / "samples.txt").write_text("".join(s + "\n" for s in header))
        with store.new_dataset(
            KIND, name, format=FORMAT, format_version=FORMAT_VERSION, replace=replace
        ) as ds:
            for file in ("genotypes.bin", "variants.parquet", "samples.txt"):
                ds.put_file(file, tmp / file)
            ds.meta.update(
                {
                    "n_variants": variants.num_rows,
                    "n_samples": len(header),
                    "missing_calls": n_missing,
                    "bits_per_call": 2,
                    "chromosomes": sorted(set(variants["chrom"].to_pylist())),
                }
            )
            if assembly or found.get("assembly"):
                ds.meta["assembly"] = assembly or found["assembly"]
            ds.provenance = provenance(
                "association import",
                {"name": name, "samples": None if samples is None else len(samples)},
                [{"source": str(path), "sha256": sha256_file(path)}],
            )
    return GenotypeMatrix.open(store, name)
