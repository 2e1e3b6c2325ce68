"""Regions cut by coverage: the BAI's linear index read right, every base in one shard, cuts on
quiet positions — each checked against a plain computation from the reads themselves."""

from __future__ import annotations

import random

import numpy as np
import pysam
import pytest

from sandgrain.calling import regions


def _write_bam(path, contigs, reads):
    header = {"HD": {"VN": "1.6", "SO": "coordinate"},
              "SQ": [{"SN": n, "LN": ln} for n, ln in contigs]}  # fmt: skip
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for tid, pos, cigar, seq in sorted(reads):
            a = pysam.AlignedSegment(out.header)
            a.query_name = f"r{tid}_{pos}_{random.random():.6f}"
            a.reference_id, a.reference_start = tid, pos
            a.cigarstring, a.query_sequence = cigar, seq
            a.mapping_quality = 60
            a.query_qualities = pysam.qualitystring_to_array("I" * len(seq))
            out.write(a)
    pysam.index(str(path))


def test_linear_index_weights_follow_the_reads(tmp_path):
    rng = random.Random(3)
    contigs = [("a", 400_000), ("b", 100_000)]
    reads = []
    for _ in range(20_000):  # dense in a:100-150 kb, sparse elsewhere
        if rng.random() < 0.7:
            tid, pos = 0, rng.randrange(100_000, 150_000)
        else:
            tid = rng.randrange(2)
            pos = rng.randrange(contigs[tid][1] - 200)
        reads.append((tid, pos, "100M", "".join(rng.choice("ACGT") for _ in range(100))))
    bam = tmp_path / "x.bam"
    _write_bam(bam, contigs, reads)
    weights = regions.linear_weights(tmp_path / "x.bam.bai", contigs)
    # the plain count: reads starting in each 16 kb window, over both sequences
    counts, found = [], []
    for tid, (name, length) in enumerate(contigs):
        c = np.zeros(-(-length // regions.WINDOW))
        for t, pos, _, _ in reads:
            if t == tid:
                c[pos // regions.WINDOW] += 1
        assert weights[name].shape == c.shape
        counts.append(c[:-1])  # the last window of a sequence is estimated
        found.append(weights[name][:-1])
    counts, found = np.concatenate(counts), np.concatenate(found)
    assert np.corrcoef(found, counts)[0, 1] > 0.95
    # the sparse sequence's windows are told apart, not lumped into one BGZF block
    assert np.count_nonzero(weights["b"][:-1]) == np.count_nonzero(counts[-6:]) or \
        np.count_nonzero(weights["b"]) >= 4  # fmt: skip


@pytest.mark.parametrize("n", [1, 3, 8, 40])
def test_shards_cover_every_base_once(n):
    rng = np.random.default_rng(n)
    contigs = [("1", 1_000_000), ("2", 50_000), ("3", 20_000), ("4", 700_001)]
    weights = {c: rng.integers(0, 1000, -(-ln // regions.WINDOW)) for c, ln in contigs}
    weights["1"][10:20] = 100_000  # a dense patch gets short regions
    shards = regions.plan_shards(contigs, weights, n)
    flat = [r for s in shards for r in s.regions]
    for name, length in contigs:
        mine = sorted((s, e) for c, s, e in flat if c == name)
        assert mine[0][0] == 0 and mine[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(mine, mine[1:], strict=False))
    # a window is the finest cut: a shard per heavy window at most, a sequence's end adds one
    assert len(shards) <= n + len(contigs)
    assert len(shards) >= min(n, 12) // 2
    if n >= 8:  # the dense patch is cut finer than the sparse rest
        dense = [e - s for c, s, e in flat if c == "1" and s < 20 * regions.WINDOW
                 and e > 10 * regions.WINDOW]  # fmt: skip
        sparse = [e - s for c, s, e in flat if c == "4"]
        assert min(dense) < max(sparse)


def test_quiet_position_avoids_variant_evidence(tmp_path):
    rng = random.Random(5)
    ref = "".join(rng.choice("ACGT") for _ in range(20_000))
    contigs = [("c", len(ref))]
    reads = []
    het_snv, deletion = 10_000, 10_150  # evidence around the wanted cut
    for _ in range(3000):
        pos = rng.randrange(0, len(ref) - 150)
        seq = list(ref[pos : pos + 100])
        cigar = "100M"
        if pos <= het_snv < pos + 100 and rng.random() < 0.5:
            seq[het_snv - pos] = "A" if ref[het_snv] != "A" else "C"
        if pos < deletion - 10 and deletion + 30 < pos + 100 and rng.random() < 0.5:
            k = deletion - pos
            seq = list(ref[pos:deletion] + ref[deletion + 20 : pos + 120])
            cigar = f"{k}M20D{100 - k}M"
        reads.append((0, pos, cigar, "".join(seq)))
    bam = tmp_path / "q.bam"
    _write_bam(bam, contigs, reads)
    # MD tags, so mismatches are seen
    fasta = tmp_path / "ref.fa"
    fasta.write_text(">c\n" + ref + "\n")
    pysam.faidx(str(fasta))
    calmd = tmp_path / "md.bam"
    calmd.write_bytes(pysam.calmd("-b", str(bam), str(fasta)))
    pysam.index(str(calmd))
    cut = regions.quiet_position([str(calmd)], "c", 10_050, 0, len(ref))
    # the plain check: no read within 100 bp of the cut shows the SNV or the deletion
    assert not (het_snv - 100 <= cut <= het_snv + 100)
    assert not (deletion - 100 <= cut <= deletion + 20 + 100)
    assert abs(cut - 10_050) < 1_000
