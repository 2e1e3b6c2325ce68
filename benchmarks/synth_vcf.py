#!/usr/bin/env python
"""Synthetic multi-sample VCF for the Beacon benchmark: bgzipped, tabix-indexed, deterministic.

What it writes
    A VCF 4.2 file with ``samples`` phased diploid genotype columns (``SYN00001`` …) and
    ``variants`` records spread over GRCh37 chromosomes (``1`` … ``22`` by default, contig names
    as in the 1000 Genomes GRCh37 files) in proportion to their lengths, positions strictly
    increasing per chromosome. About 89 % of the records are SNPs, 10 % small indels (half
    insertions, half deletions of 1–10 bases; REF and ALT share their first base, as the VCF
    specification requires) and 1 % multi-allelic SNPs (``ALT=A,T``). REF bases are random: there
    is no reference genome behind the file.

Allele frequencies
    The alternate allele count of a site is drawn from a power-law site-frequency spectrum,
    P(k) ∝ k^-1.33 for k = 1 … 2N-1 (N samples). The neutral spectrum of a constant-size
    population is P(k) ∝ 1/k (Watterson 1975); human populations grew fast, which leaves an
    excess of rare variants. With 2,504 samples the exponent 1.33 gives 75 % of the sites below
    0.5 % frequency, 16 % between 0.5 % and 5 % and 9 % above (mean frequency 2.6 %), close to
    1000 Genomes phase 3 (The 1000 Genomes Project Consortium 2015, *Nature* 526:68: 64, 12 and
    8 million of its 84.7 million variants, i.e. 76 %, 14 % and 10 %). Genotypes follow
    Hardy–Weinberg: for k ≤ max(2N/16, 64) (and symmetrically near 2N) exactly k alternate
    alleles are put on distinct haplotypes drawn uniformly at random (Hardy–Weinberg proportions
    given the allele count); for the common sites in between every haplotype carries the allele
    independently with probability k/2N. About 0.1 % of the genotypes are missing (``./.``).
    ``INFO`` holds AC, AN and AF computed from the genotypes written.

How it is fast
    A sample's genotype always takes 4 bytes (``0|0`` and a tab or the final newline), so a block
    of records is one ``uint8`` matrix of ``4N`` bytes per record: filled with ``0|0\\t``, then the
    alternate alleles and missing genotypes are written in place with numpy fancy indexing, and
    the allele counts are read back from the matrix. Only the fixed columns (CHROM … FORMAT) are
    formatted in Python. The text goes to :class:`sandgrain.genome.bgzf.BgzfWriter` (BGZF blocks
    compressed on ``threads`` threads) and ``pysam.tabix_index`` writes the ``.tbi``.

Usage::

    python benchmarks/synth_vcf.py --samples 2504 --variants 1000000 --seed 1 --out syn.vcf.gz
    python benchmarks/synth_vcf.py --samples 50 --variants 2000 --chromosomes 21,22 --out t.vcf.gz

From Python: ``make_vcf(path, samples=2504, variants=1_000_000, seed=1)`` returns a dict of
figures (times, sizes, counts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

#: GRCh37 chromosome lengths (Genome Reference Consortium, GRCh37.p13 primary assembly).
GRCH37 = {
    "1": 249_250_621,
    "2": 243_199_373,
    "3": 198_022_430,
    "4": 191_154_276,
    "5": 180_915_260,
    "6": 171_115_067,
    "7": 159_138_663,
    "8": 146_364_022,
    "9": 141_213_431,
    "10": 135_534_747,
    "11": 135_006_516,
    "12": 133_851_895,
    "13": 115_169_878,
    "14": 107_349_540,
    "15": 102_531_392,
    "16": 90_354_753,
    "17": 81_195_210,
    "18": 78_077_248,
    "19": 59_128_983,
    "20": 63_025_520,
    "21": 48_129_895,
    "22": 51_304_566,
    "X": 155_270_560,
    "Y": 59_373_566,
}
DEFAULT_CHROMOSOMES = "1-22"
#: Bumped whenever the output for given arguments changes (cached files carry it in their name).
GENERATOR_VERSION = 1
SFS_EXPONENT = 1.33
INDEL_SHARE = 0.10
MULTIALLELIC_SHARE = 0.01
MISSING_RATE = 0.001
MAX_INDEL = 10
#: Uncompressed bytes of genotype columns per block of records.
BLOCK_BYTES = 16 << 20
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_ZERO, _ONE, _TWO, _DOT, _SLASH = (ord(c) for c in "012./")


def parse_chromosomes(spec: str) -> list[str]:
    """``"1-22"``, ``"21,22"``, ``"1-3,X"`` or ``"chr1-chr22"`` → contig names, in that order."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        prefix = "chr" if part.startswith("chr") else ""
        if "-" in part:
            lo, hi = (x.strip().removeprefix("chr") for x in part.split("-", 1))
            if not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
                raise ValueError(f"bad chromosome range {part!r}: use e.g. 1-22")
            names.extend(f"{prefix}{i}" for i in range(int(lo), int(hi) + 1))
        else:
            names.append(part)
    for name in names:
        if name.removeprefix("chr") not in GRCH37:
            raise ValueError(f"unknown chromosome {name!r}: GRCh37 has 1–22, X and Y")
    if len(set(names)) != len(names):
        raise ValueError(f"chromosome listed twice in {spec!r}")
    if not names:
        raise ValueError("no chromosomes given")
    return names


def cache_name(samples: int, variants: int, seed: int, chromosomes: str) -> str:
    """File name that identifies a generated VCF by everything that determines its content."""
    chroms = chromosomes.replace(",", "_").replace("-", "to")
    return f"synth-g{GENERATOR_VERSION}-s{samples}-v{variants}-seed{seed}-chr{chroms}.vcf.gz"


def sample_names(samples: int) -> list[str]:
    return [f"SYN{i:05d}" for i in range(1, samples + 1)]


def header(samples: int, chromosomes: list[str], seed: int) -> bytes:
    lines = [
        "##fileformat=VCFv4.2",
        f"##source=sandgrain benchmarks/synth_vcf.py seed={seed} sfs=k^-{SFS_EXPONENT}",
        "##reference=GRCh37",
    ]
    lines += [
        f"##contig=<ID={c},length={GRCH37[c.removeprefix('chr')]},assembly=GRCh37>"
        for c in chromosomes
    ]
    lines += [
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Alternate allele count in genotypes">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in called '
        'genotypes">',
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Alternate allele frequency (AC/AN)">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
            + sample_names(samples)
        ),
    ]
    return ("\n".join(lines) + "\n").encode()


def split_counts(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` (largest remainders), summing exactly."""
    share = weights / weights.sum() * total
    counts = np.floor(share).astype(np.int64)
    rest = total - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    return counts


def draw_allele_counts(rng: np.random.Generator, n: int, haplotypes: int) -> np.ndarray:
    """Alternate allele counts k ∈ [1, haplotypes-1] with P(k) ∝ k^-SFS_EXPONENT."""
    k = np.arange(1, haplotypes, dtype=np.float64)
    cdf = np.cumsum(k**-SFS_EXPONENT)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64) + 1


def _random_bases(rng: np.random.Generator, n: int) -> bytes:
    return _BASES[rng.integers(0, 4, n)].tobytes()


class Sites:
    """The fixed columns of every record: chromosome, position, REF, ALT, allele counts."""

    def __init__(self, rng, variants: int, chromosomes: list[str], haplotypes: int):
        lengths = np.array([GRCH37[c.removeprefix("chr")] for c in chromosomes], dtype=np.float64)
        per_chrom = split_counts(variants, lengths)
        self.chrom_index = np.repeat(np.arange(len(chromosomes)), per_chrom)
        self.chromosomes = chromosomes
        pos = []
        for length, n in zip(lengths.astype(np.int64), per_chrom, strict=True):
            room = int(length) - 2 * MAX_INDEL  # a deletion never runs past the contig's end
            if n > room:
                raise ValueError(f"{n} variants do not fit a contig of {length} bp")
            pos.append(np.sort(rng.choice(room, int(n), replace=False)) + 1)
        self.pos = np.concatenate(pos) if pos else np.empty(0, np.int64)
        kind = rng.random(variants)
        self.multi = kind < MULTIALLELIC_SHARE
        indel = (kind >= MULTIALLELIC_SHARE) & (kind < MULTIALLELIC_SHARE + INDEL_SHARE)
        ref_base = rng.integers(0, 4, variants)
        alt_base = (ref_base + rng.integers(1, 4, variants)) % 4
        alt2_base = (alt_base + rng.integers(1, 3, variants)) % 4
        alt2_base = np.where(alt2_base == ref_base, (alt2_base + 1) % 4, alt2_base)
        ref = _BASES[ref_base].tobytes().decode()
        alt = _BASES[alt_base].tobytes().decode()
        alt2 = _BASES[alt2_base].tobytes().decode()
        self.ref = list(ref)
        self.alt = list(alt)
        for i in np.flatnonzero(self.multi):
            self.alt[i] = f"{alt[i]},{alt2[i]}"
        idx = np.flatnonzero(indel)
        lens = np.minimum(rng.geometric(0.5, idx.size), MAX_INDEL)
        is_del = rng.random(idx.size) < 0.5
        extra = _random_bases(rng, int(lens.sum())).decode()
        offsets = np.concatenate([[0], np.cumsum(lens)])
        for j, i in enumerate(idx):
            tail = extra[offsets[j] : offsets[j + 1]]
            if is_del[j]:
                self.ref[i] = ref[i] + tail
                self.alt[i] = ref[i]
            else:
                self.alt[i] = ref[i] + tail
        self.indel = indel
        self.k1 = draw_allele_counts(rng, variants, haplotypes)
        self.k2 = np.where(self.multi, draw_allele_counts(rng, variants, haplotypes), 0)
        # The second allele of a multi-allelic site is the rarer one and leaves room for the first.
        self.k2 = np.minimum(self.k2, np.maximum(haplotypes - self.k1, 0) // 2)


def _distinct_slots(rng, counts: np.ndarray, n_slots: int) -> tuple[np.ndarray, np.ndarray]:
    """For each i, ``counts[i]`` distinct slots in ``[0, n_slots)``: (owner index, slot) arrays.

    Draw with replacement, drop repeats, draw again what is missing; with counts ≤ n_slots/16
    repeats are rare and two or three rounds finish (more, but still few, up to n_slots/2).
    """
    keys = np.empty(0, dtype=np.int64)
    need = counts.astype(np.int64)
    owners = np.arange(counts.size, dtype=np.int64)
    while need.any():
        r = np.repeat(owners, need)
        keys = np.unique(np.concatenate([keys, r * n_slots + rng.integers(0, n_slots, r.size)]))
        need = counts - np.bincount(keys // n_slots, minlength=counts.size)
    return keys // n_slots, keys % n_slots


def _allele_cols(slots: np.ndarray) -> np.ndarray:
    """Byte column of haplotype slot ``s`` (sample s//2, allele s%2) in a ``a|b\\t`` row."""
    return (slots >> 1) * 4 + (slots & 1) * 2


def genotype_block(rng, k1, k2, samples: int, out: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fill ``out`` (records × 4·samples bytes) with genotypes; return AC1, AC2, AN per record."""
    n_slots = 2 * samples
    n = k1.size
    out[:] = np.frombuffer(b"0|0\t" * (samples - 1) + b"0|0\n", dtype=np.uint8)
    alleles = out.reshape(n, samples, 4)[:, :, 0:3:2]  # (record, sample, haplotype): a view
    # Exact counts where the count is small (or its complement is); Bernoulli draws in between
    # only where a site cannot come out monomorphic (expected count ≥ 64: P(0) < e^-64).
    t = min(max(n_slots // 16, 64), n_slots // 2)
    sparse_lo = k1 <= t
    sparse_hi = (k1 >= n_slots - t) & ~sparse_lo
    dense = ~(sparse_lo | sparse_hi)
    if dense.any():
        rows = np.flatnonzero(dense)
        p = (k1[rows] / n_slots).astype(np.float32)
        draw = rng.random((rows.size, n_slots), dtype=np.float32) < p[:, None]
        alleles[rows] = draw.view(np.uint8).reshape(rows.size, samples, 2) + _ZERO
    if sparse_hi.any():
        rows = np.flatnonzero(sparse_hi)
        alleles[rows] = _ONE
        owner, slot = _distinct_slots(rng, n_slots - k1[rows], n_slots)
        out[rows[owner], _allele_cols(slot)] = _ZERO
    rows = np.flatnonzero(sparse_lo)
    owner, slot = _distinct_slots(rng, k1[rows], n_slots)
    out[rows[owner], _allele_cols(slot)] = _ONE
    multi = np.flatnonzero(k2)
    if multi.size:
        owner, slot = _distinct_slots(rng, k2[multi], n_slots)
        r, c = multi[owner], _allele_cols(slot)
        free = out[r, c] == _ZERO
        out[r[free], c[free]] = _TWO
    n_missing = rng.binomial(samples, MISSING_RATE, n)
    miss_row = np.repeat(np.arange(n), n_missing)
    miss_col = rng.integers(0, samples, miss_row.size) * 4
    out[miss_row, miss_col] = _DOT
    out[miss_row, miss_col + 1] = _SLASH
    out[miss_row, miss_col + 2] = _DOT
    missing = np.bincount(np.unique(miss_row * samples + miss_col // 4) // samples, minlength=n)
    ac1 = np.count_nonzero(alleles == _ONE, axis=(1, 2))
    ac2 = np.zeros(n, dtype=np.int64)
    if multi.size:
        ac2[multi] = np.count_nonzero(alleles[multi] == _TWO, axis=(1, 2))
    return ac1, ac2, 2 * (samples - missing)


def _af(ac: int, an: int) -> str:
    return f"{ac / an:.6g}" if an else "."


def record_prefixes(sites: Sites, lo: int, hi: int, ac1, ac2, an) -> list[bytes]:
    """CHROM … FORMAT columns (with the trailing tab) of records ``lo`` … ``hi``-1."""
    out = []
    chroms = sites.chromosomes
    ci, pos, ref, alt, multi = sites.chrom_index, sites.pos, sites.ref, sites.alt, sites.multi
    for j, i in enumerate(range(lo, hi)):
        a1, n = int(ac1[j]), int(an[j])
        if multi[i]:
            a2 = int(ac2[j])
            info = f"AC={a1},{a2};AN={n};AF={_af(a1, n)},{_af(a2, n)}"
        else:
            info = f"AC={a1};AN={n};AF={_af(a1, n)}"
        out.append(
            f"{chroms[ci[i]]}\t{pos[i]}\t.\t{ref[i]}\t{alt[i]}\t100\tPASS\t{info}\tGT\t".encode()
        )
    return out


def make_vcf(
    path,
    samples: int = 2504,
    variants: int = 1_000_000,
    seed: int = 1,
    *,
    chromosomes: str | list[str] = DEFAULT_CHROMOSOMES,
    level: int = 4,
    threads: int | None = None,
    index: bool = True,
    progress=None,
) -> dict:
    """Write a synthetic bgzipped VCF to ``path`` (and ``path.tbi``); return figures about it.

    Parameters
    ----------
    path
        Output file; should end in ``.vcf.gz``. Written to a temporary name, renamed at the end.
    samples, variants, seed
        Genotype columns, records, and the seed: equal arguments give byte-identical files.
    chromosomes
        ``"1-22"`` (default), ``"21,22"`` …, or a list of names; GRCh37 lengths.
    level, threads
        zlib level of the BGZF blocks and threads compressing them (default: usable cores).
    index
        Write the tabix index (``.tbi``) with pysam.
    progress
        Optional callable ``progress(records_done, records_total)``.
    """
    from sandgrain.genome.bgzf import BgzfWriter

    if samples < 1 or variants < 1:
        raise ValueError("samples and variants must be at least 1")
    names = parse_chromosomes(chromosomes) if isinstance(chromosomes, str) else list(chromosomes)
    threads = threads or len(os.sched_getaffinity(0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    seeds = np.random.SeedSequence(seed).spawn(2)
    t0 = time.perf_counter()
    sites = Sites(np.random.default_rng(seeds[0]), variants, names, 2 * samples)
    gt_rng = np.random.default_rng(seeds[1])
    block = max(1, BLOCK_BYTES // (4 * samples))
    buf = np.empty((block, 4 * samples), dtype=np.uint8)
    totals = {"alt_alleles": 0, "missing_genotypes": 0, "called_alleles": 0}
    uncompressed = 0
    try:
        with open(tmp, "wb") as fh:
            writer = BgzfWriter(fh, level=level, threads=threads)
            writer.write(header(samples, names, seed))
            for lo in range(0, variants, block):
                hi = min(lo + block, variants)
                rows = buf[: hi - lo]
                ac1, ac2, an = genotype_block(
                    gt_rng, sites.k1[lo:hi], sites.k2[lo:hi], samples, rows
                )
                prefixes = record_prefixes(sites, lo, hi, ac1, ac2, an)
                mv, w = memoryview(rows.reshape(-1)), 4 * samples
                pieces: list = [None] * (2 * (hi - lo))
                pieces[0::2] = prefixes
                pieces[1::2] = [mv[j * w : (j + 1) * w] for j in range(hi - lo)]
                writer.write(b"".join(pieces))
                totals["alt_alleles"] += int(ac1.sum() + ac2.sum())
                totals["called_alleles"] += int(an.sum())
                totals["missing_genotypes"] += int(samples * (hi - lo) - an.sum() // 2)
                if progress:
                    progress(hi, variants)
            writer.close()
            uncompressed = writer.uncompressed_offset
        generate_s = time.perf_counter() - t0
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    index_s = None
    if index:
        import pysam

        t1 = time.perf_counter()
        pysam.tabix_index(str(path), preset="vcf", force=True)
        index_s = time.perf_counter() - t1
    return {
        "path": str(path),
        "samples": samples,
        "variants": variants,
        "seed": seed,
        "chromosomes": ",".join(names),
        "snps": int(variants - sites.indel.sum() - sites.multi.sum()),
        "indels": int(sites.indel.sum()),
        "multiallelic": int(sites.multi.sum()),
        "alt_allele_share": totals["alt_alleles"] / max(totals["called_alleles"], 1),
        "missing_genotypes": totals["missing_genotypes"],
        "uncompressed_bytes": uncompressed,
        "file_bytes": path.stat().st_size,
        "index_bytes": Path(f"{path}.tbi").stat().st_size if index else None,
        "generate_s": generate_s,
        "index_s": index_s,
        "total_s": generate_s + (index_s or 0.0),
        "variants_per_s": variants / generate_s,
        "level": level,
        "threads": threads,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2504)
    ap.add_argument("--variants", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chromosomes", default=DEFAULT_CHROMOSOMES, help="e.g. 1-22, 21,22, 1-3,X")
    ap.add_argument("--level", type=int, default=4, help="zlib level of the BGZF blocks")
    ap.add_argument("--threads", type=int, default=None, help="compression threads")
    ap.add_argument("--no-index", action="store_true", help="skip the .tbi")
    ap.add_argument("--out", required=True, help="output .vcf.gz")
    args = ap.parse_args(argv)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 10 or done == total:
            last[0] = now
            print(f"[synth_vcf] {done:,}/{total:,} records", file=sys.stderr, flush=True)

    try:
        info = make_vcf(
            args.out,
            args.samples,
            args.variants,
            args.seed,
            chromosomes=args.chromosomes,
            level=args.level,
            threads=args.threads,
            index=not args.no_index,
            progress=progress,
        )
    except ValueError as exc:
        print(f"synth_vcf: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
