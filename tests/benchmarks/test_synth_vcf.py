"""The synthetic VCF of the Beacon benchmark (benchmarks/synth_vcf.py), read back with pysam."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
from pathlib import Path

import pysam
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES, VARIANTS = 50, 2_000


def _load():
    spec = importlib.util.spec_from_file_location("synth_vcf", REPO / "benchmarks/synth_vcf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synth = _load()


@pytest.fixture(scope="module")
def vcf(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("synth") / "syn.vcf.gz"
    return path, synth.make_vcf(path, SAMPLES, VARIANTS, seed=7)


def _counts_from_genotypes(rec) -> tuple[list[int], int]:
    """AC per alternate allele and AN, recomputed from the GT fields as pysam decodes them."""
    ac, an = [0] * len(rec.alts), 0
    for sample in rec.samples.values():
        for allele in sample["GT"]:
            if allele is None:
                continue
            an += 1
            if allele > 0:
                ac[allele - 1] += 1
    return ac, an


def test_info_counts_equal_the_genotypes(vcf):
    path, info = vcf
    with pysam.VariantFile(str(path)) as vf:
        assert list(vf.header.samples) == [f"SYN{i:05d}" for i in range(1, SAMPLES + 1)]
        assert vf.header.contigs["1"].length == 249_250_621
        records = list(vf)
    assert len(records) == VARIANTS
    missing = 0
    for rec in records:
        ac, an = _counts_from_genotypes(rec)
        assert list(rec.info["AC"]) == ac, rec
        assert rec.info["AN"] == an, rec
        for a, f in zip(ac, rec.info["AF"], strict=True):
            assert f == pytest.approx(a / an, rel=1e-5)
        assert all(s.phased for s in rec.samples.values() if None not in s["GT"])
        missing += sum(None in s["GT"] for s in rec.samples.values())
        assert sum(ac) >= 1 or an < 2 * SAMPLES  # polymorphic unless genotypes went missing
    assert missing == info["missing_genotypes"]
    # Shares of record kinds: ~1 % multi-allelic, ~10 % indels sharing their first base.
    multi = [r for r in records if len(r.alts) > 1]
    indels = [r for r in records if len(r.ref) != len(r.alts[0])]
    assert 0.003 < len(multi) / VARIANTS < 0.02
    assert 0.07 < len(indels) / VARIANTS < 0.13
    assert all(r.alts[0][0] == r.ref[0] for r in indels)
    assert all(len(set(r.alts) | {r.ref}) == 3 for r in multi)
    # The spectrum is skewed to rare alleles: most sites below 5 %.
    rare = sum(sum(r.info["AC"]) / r.info["AN"] < 0.05 for r in records)
    assert rare / VARIANTS > 0.6


def test_positions_sorted_and_spread_by_length(vcf):
    path, _ = vcf
    with pysam.VariantFile(str(path)) as vf:
        order = list(vf.header.contigs)
        length = {c: vf.header.contigs[c].length for c in order}
        seen = [(order.index(r.chrom), r.pos, r.stop, length[r.chrom]) for r in vf]
    keys = [(c, p) for c, p, _, _ in seen]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # strictly increasing per contig
    assert all(stop <= length for _, _, stop, length in seen)
    per_chrom = [sum(1 for c, *_ in seen if c == i) for i in range(len(order))]
    assert per_chrom[0] > per_chrom[21] * 3  # chr1 is ~4.9× longer than chr22


def test_tabix_fetch_matches_a_scan(vcf):
    path, info = vcf
    assert Path(f"{path}.tbi").stat().st_size == info["index_bytes"] > 0
    with pysam.VariantFile(str(path)) as vf:
        all_22 = [r.pos for r in vf if r.chrom == "22"]
        lo, hi = all_22[len(all_22) // 4], all_22[3 * len(all_22) // 4]
        fetched = [r.pos for r in vf.fetch("22", lo - 1, hi)]  # 0-based half-open
    assert fetched == [p for p in all_22 if lo <= p <= hi] and fetched
    with pysam.TabixFile(str(path)) as tf:
        assert len(list(tf.fetch("22", lo - 1, hi))) == len(fetched)


def test_same_seed_same_bytes(vcf, tmp_path):
    path, _ = vcf
    again = synth.make_vcf(tmp_path / "again.vcf.gz", SAMPLES, VARIANTS, seed=7, index=False)
    other = synth.make_vcf(tmp_path / "other.vcf.gz", SAMPLES, VARIANTS, seed=8, index=False)

    def digest(p) -> str:
        return hashlib.sha256(gzip.open(p).read()).hexdigest()

    assert digest(again["path"]) == digest(path)
    assert Path(again["path"]).read_bytes() == path.read_bytes()
    assert digest(other["path"]) != digest(path)


def test_options_and_errors(tmp_path):
    assert synth.parse_chromosomes("1-3,X") == ["1", "2", "3", "X"]
    assert synth.parse_chromosomes("chr21-chr22") == ["chr21", "chr22"]
    for bad in ("Z", "3-1", "1,1", ""):
        with pytest.raises(ValueError):
            synth.parse_chromosomes(bad)
    out = tmp_path / "cli.vcf.gz"
    assert (
        synth.main(
            ["--samples", "3", "--variants", "40", "--chromosomes", "chr21", "--out", str(out)]
        )
        == 0
    )
    with pysam.VariantFile(str(out)) as vf:
        assert {r.chrom for r in vf} == {"chr21"} and len(vf.header.samples) == 3
    assert synth.main(["--variants", "5", "--chromosomes", "Q", "--out", str(out)]) == 2
