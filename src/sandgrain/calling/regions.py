"""Calling regions cut by coverage, never inside a variant.

Where the reads lie is read from the BAM index, not from the reads: the BAI's linear index holds,
for every 16 kb window of each reference sequence, the file offset of the first alignment that
overlaps it, so the compressed bytes between two windows' offsets measure the reads there
(the idea of goleft indexcov, Pedersen et al. 2017, *GigaScience* 6:1). The genome is then cut
into regions of about equal read weight: dense places get short regions, empty ones long
regions, and no region spans two sequences (small sequences are grouped into one shard).

Each cut is then moved to a quiet position: no read within ``margin`` bases shows an indel, and
no position within ``margin`` has two reads with the same mismatch (a variant's evidence), so
no variant — SNV, or an indel up to ``margin`` bases long — straddles a cut. Calls are then the
same as one run over the whole genome (the tests check it record for record).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["Shard", "linear_weights", "plan_shards", "quiet_position"]

#: Width of a BAI linear-index window (fixed by the SAM/BAM specification, §5.1.3).
WINDOW = 16_384
#: Bases on each side of a cut free of variant evidence.
MARGIN = 100


@dataclass(frozen=True)
class Shard:
    """One calling task: regions ``(chrom, start0, end0)`` in genome order."""

    regions: tuple[tuple[str, int, int], ...]
    weight: int  # index bytes, for planning
    bases: int

    def as_args(self) -> list[list]:
        return [[c, s, e] for c, s, e in self.regions]


def _read_bai(path: Path) -> list[np.ndarray]:
    """Per reference, the linear index's virtual offsets (uint64), as the BAI stores them."""
    data = path.read_bytes()
    if data[:4] != b"BAI\x01":
        raise InputError(f"{path.name} is not a BAM index (BAI)")
    (n_ref,) = struct.unpack_from("<i", data, 4)
    pos = 8
    out = []
    for _ in range(n_ref):
        (n_bin,) = struct.unpack_from("<i", data, pos)
        pos += 4
        for _ in range(n_bin):
            _bin, n_chunk = struct.unpack_from("<Ii", data, pos)
            pos += 8 + 16 * n_chunk
        (n_intv,) = struct.unpack_from("<i", data, pos)
        pos += 4
        out.append(np.frombuffer(data, dtype="<u8", count=n_intv, offset=pos).copy())
        pos += 8 * n_intv
    return out


def _compression_ratio(bam: Path, coffsets: np.ndarray, samples: int = 64) -> float:
    """Compressed / uncompressed bytes of the BAM's BGZF blocks, from a sample of blocks (each
    block's header gives its compressed size, its footer the uncompressed one: RFC 1952 with
    the BGZF ``BC`` field, SAM/BAM specification §4.1)."""
    picks = np.unique(coffsets)
    if picks.size > samples:
        picks = picks[np.linspace(0, picks.size - 1, samples).astype(int)]
    packed = unpacked = 0
    with open(bam, "rb") as fh:
        for off in picks.tolist():
            fh.seek(off)
            head = fh.read(18)
            if len(head) < 18 or head[12:14] != b"BC":
                continue
            bsize = struct.unpack_from("<H", head, 16)[0] + 1
            fh.seek(off + bsize - 4)
            tail = fh.read(4)
            if len(tail) == 4:
                packed += bsize
                unpacked += struct.unpack("<I", tail)[0]
    return packed / unpacked if unpacked else 0.3


def linear_weights(bai: Path, contigs: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    """BAM bytes per 16 kb window of each sequence, from the index of ``bai`` (the BAM beside
    it, ``x.bam.bai`` → ``x.bam``). A virtual offset is a block's file offset and a place in
    the block's uncompressed bytes; the latter is scaled by the file's compression ratio so
    windows inside one block are told apart. Windows after the last read weigh 0."""
    offsets = _read_bai(bai)
    if len(offsets) != len(contigs):
        raise InputError(f"{bai.name}: the index lists {len(offsets)} sequences, the BAM "
                         f"{len(contigs)}")  # fmt: skip
    bam = bai.with_name(bai.name[: -len(".bai")])
    nonempty = [v for v in offsets if v.size]
    every = np.concatenate(nonempty) if nonempty else np.zeros(0, dtype=np.uint64)
    ratio = _compression_ratio(bam, (every >> np.uint64(16)).astype(np.int64)) if bam.is_file() \
        else 0.3  # fmt: skip
    weights: dict[str, np.ndarray] = {}
    for (name, length), voff in zip(contigs, offsets, strict=True):
        n = -(-length // WINDOW)
        w = np.zeros(n, dtype=np.int64)
        if voff.size:
            coff = (voff >> np.uint64(16)).astype(np.float64)
            uoff = (voff & np.uint64(0xFFFF)).astype(np.float64)
            place = np.maximum.accumulate(coff + uoff * ratio)  # empty windows repeat one
            deltas = np.diff(place)
            m = min(n, deltas.size)
            w[:m] = np.rint(deltas[:m])
            if voff.size <= n:  # the last window with reads: as heavy as the mean
                w[voff.size - 1] = int(deltas.mean()) if deltas.size else 1
        weights[name] = w
    return weights


def plan_shards(
    contigs: list[tuple[str, int]], weights: dict[str, np.ndarray], n_shards: int
) -> list[Shard]:
    """Cut the genome into about ``n_shards`` shards of equal weight (cuts at window edges;
    :func:`quiet_position` then moves each). Every base of every sequence is in one shard."""
    if n_shards < 1:
        raise InputError(f"at least one region, not {n_shards}")
    base_weight = 1  # a window without reads still costs a little to walk
    total = sum(int(w.sum()) + base_weight * w.size for w in weights.values()) or 1
    target = total / n_shards
    shards: list[Shard] = []
    regions: list[tuple[str, int, int]] = []
    acc = 0
    for name, length in contigs:
        w = weights[name] + base_weight
        start = 0
        for k in range(w.size):
            acc += int(w[k])
            end = min(length, (k + 1) * WINDOW)
            if acc >= target and end < length:
                regions.append((name, start, end))
                shards.append(Shard(tuple(regions), acc, sum(e - s for _, s, e in regions)))
                regions, acc, start = [], 0, end
        if start < length:
            regions.append((name, start, length))
        if acc >= target:
            shards.append(Shard(tuple(regions), acc, sum(e - s for _, s, e in regions)))
            regions, acc = [], 0
    if regions:
        shards.append(Shard(tuple(regions), acc, sum(e - s for _, s, e in regions)))
    return shards


def quiet_position(bams: list[str], chrom: str, pos0: int, lo: int, hi: int,
                   margin: int = MARGIN, search: int = 8_000) -> int:  # fmt: skip
    """The position nearest ``pos0`` (within ``search`` bases, inside ``(lo, hi)``) with no
    variant evidence within ``margin`` bases (see the module doc); ``pos0`` if none is."""
    import pysam

    a = max(lo + 1, pos0 - search)
    b = min(hi - 1, pos0 + search)
    if b <= a:
        return pos0
    span = b - a
    noisy = np.zeros(span + 2 * margin + 1, dtype=np.int32)
    mismatches: dict[tuple[int, str], int] = {}

    def mark(p: int) -> None:  # evidence at reference position p (0-based)
        i = p - a + margin
        noisy[max(0, i - margin): max(0, min(noisy.size, i + margin + 1))] += 1

    for path in bams:
        with pysam.AlignmentFile(path) as bam:
            for read in bam.fetch(chrom, max(0, a - margin), b + margin):
                if read.is_unmapped or read.is_secondary or read.is_duplicate:
                    continue
                ref = read.reference_start
                for op, n in read.cigartuples or ():
                    if op in (1,):  # insertion before ref
                        mark(ref)
                    elif op in (2, 3):  # deletion / skip
                        for p in range(ref, ref + n):
                            mark(p)
                    if op in (0, 2, 3, 7, 8):
                        ref += n
                if read.has_tag("MD"):
                    pairs = read.get_aligned_pairs(matches_only=True, with_seq=True)
                    for qpos, rpos, base in pairs:
                        if base.islower():
                            alt = read.query_sequence[qpos] if read.query_sequence else "N"
                            key = (rpos, alt)
                            mismatches[key] = mismatches.get(key, 0) + 1
                            if mismatches[key] == 2:
                                mark(rpos)
    inner = noisy[margin: margin + span]
    quiet = np.flatnonzero(inner == 0)
    if quiet.size == 0:
        return pos0
    best = quiet[np.argmin(np.abs(quiet + a - pos0))]
    return int(best + a)


def refine(shards: list[Shard], bams: list[str]) -> list[Shard]:
    """Move each cut inside a sequence to a quiet position (see :func:`quiet_position`)."""
    flat: list[tuple[str, int, int]] = [r for s in shards for r in s.regions]
    bounds = [len(s.regions) for s in shards]
    for i in range(len(flat) - 1):
        c1, s1, e1 = flat[i]
        c2, s2, e2 = flat[i + 1]
        if c1 == c2 and e1 == s2:
            cut = quiet_position(bams, c1, e1, s1, e2)
            flat[i] = (c1, s1, cut)
            flat[i + 1] = (c2, cut, e2)
    out, k = [], 0
    for shard, n in zip(shards, bounds, strict=True):
        regions = tuple(flat[k: k + n])
        k += n
        out.append(Shard(regions, shard.weight, sum(e - s for _, s, e in regions)))
    return out
