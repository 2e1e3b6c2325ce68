"""The simulated sample: planted variants (truth VCF + haplotypes) and ART reads, on real chr22
sequence; end to end, reads called with minimap2 + bcftools must recover the planted SNVs."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pysam
import pytest
import typer
from conftest import CHR22_FASTA
from typer.testing import CliRunner

from sandgrain.calling.accuracy import compare
from sandgrain.calling.simulate import plant_variants, simulate_reads
from sandgrain.cli.calling_truth import compare_cmd, simulate_cmd
from sandgrain.errors import InputError, NotFoundError


def _chr22() -> str:
    return "".join(ln.strip() for ln in CHR22_FASTA.read_text().splitlines()[1:])


def _write_piece(path: Path, pieces: dict[str, str]) -> Path:
    with open(path, "w") as fh:
        for name, seq in pieces.items():
            fh.write(f">{name} a piece of chr22\n")
            fh.writelines(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
    return path


def _read_fa(path: Path) -> dict[str, str]:
    with pysam.FastxFile(str(path)) as fh:
        return {r.name: r.sequence for r in fh}


def _truth(vcf: Path) -> list[tuple[str, int, str, str, tuple[int, int], bool]]:
    out = []
    with pysam.VariantFile(str(vcf)) as fh:
        for rec in fh:
            gt = rec.samples["SIM"]
            out.append((rec.chrom, rec.pos, rec.ref, rec.alts[0], tuple(gt["GT"]), gt.phased))
    return out


@pytest.fixture(scope="module")
def piece(tmp_path_factory) -> Path:
    """100 kb of the real chr22 slice (no N)."""
    return _write_piece(
        tmp_path_factory.mktemp("piece") / "ref.fa", {"22s": _chr22()[300_000:400_000]}
    )


@pytest.fixture(scope="module")
def planted(piece, tmp_path_factory):
    return plant_variants(piece, tmp_path_factory.mktemp("planted"), seed=7)


def test_truth_vcf_is_valid_normalised_and_matches_reference(planted, piece):
    assert planted.vcf.name == "truth.vcf.gz"
    assert Path(str(planted.vcf) + ".tbi").is_file()
    # bcftools checks every REF against the reference (-c e) and would realign a non-normalised
    # indel: none is realigned or split.
    proc = subprocess.run(
        ["bcftools", "norm", "-c", "e", "-f", str(piece), "-O", "v", str(planted.vcf)],
        capture_output=True,
        text=True,
        check=True,
    )
    total = planted.snv + planted.indel
    assert f"total/split/realigned/skipped:\t{total}/0/0/0" in proc.stderr
    records = _truth(planted.vcf)
    assert len(records) == total
    assert [r[1] for r in records] == sorted(r[1] for r in records)
    assert all(r[5] for r in records), "genotypes are phased"
    assert {r[4] for r in records} == {(0, 1), (1, 0), (1, 1)}
    with gzip.open(planted.vcf, "rt") as fh:
        header = fh.read().split("#CHROM")[0]
    assert "##contig=<ID=22s,length=100000>" in header
    sha = hashlib.sha256(piece.read_bytes()).hexdigest()
    line = next(ln for ln in header.splitlines() if ln.startswith("##sandgrain="))
    assert "seed=7" in line and f"reference_sha256={sha}" in line and "snv_rate=0.001" in line
    # counts: around the expected rates over 100 kb (Poisson), het/hom as reported
    assert 60 <= planted.snv <= 140 and 5 <= planted.indel <= 30
    assert planted.het == sum(1 for r in records if r[4] != (1, 1))
    assert planted.hom == sum(1 for r in records if r[4] == (1, 1))
    for _, _, ref, alt, _, _ in records:
        assert ref[0] == alt[0] or len(ref) == len(alt) == 1  # indels carry the padding base


def test_haplotypes_carry_exactly_their_alleles(planted, piece):
    ref = _read_fa(piece)["22s"]
    records = _truth(planted.vcf)
    for hap in (0, 1):
        seq = _read_fa(planted.haplotypes[hap])["22s"]
        mine = [r for r in records if r[4][hap] == 1]
        assert len(seq) == len(ref) + sum(len(r[3]) - len(r[2]) for r in mine)
        shift = 0
        last_end = 0
        for _, pos, r_allele, alt, _, _ in mine:
            start0 = pos - 1
            # the reference between variants is unchanged on this haplotype
            assert seq[last_end + shift : start0 + shift] == ref[last_end:start0]
            assert seq[start0 + shift : start0 + shift + len(alt)] == alt
            shift += len(alt) - len(r_allele)
            last_end = start0 + len(r_allele)
        assert seq[last_end + shift :] == ref[last_end:]


def test_indel_lengths_spacing_clusters_and_genotype_shares(piece, tmp_path):
    truth = plant_variants(piece, tmp_path, seed=3, snv_rate=2e-3, indel_rate=3e-3)
    records = _truth(truth.vcf)
    lengths = np.array([abs(len(r[3]) - len(r[2])) for r in records if len(r[2]) != len(r[3])])
    assert truth.indel == len(lengths) > 150
    assert truth.insertions > 0.3 * truth.indel and truth.deletions > 0.3 * truth.indel
    assert lengths.min() >= 1 and lengths.max() <= 50
    assert np.mean(lengths <= 3) > 0.5, "most indels are short"
    assert 0.1 < np.mean(lengths >= 10) < 0.45, "a real share are 10-50 bp"
    spans = sorted((r[1] - 1, r[1] - 1 + len(r[2])) for r in records)
    gaps = np.array([s2 - e1 for (_, e1), (s2, _) in zip(spans[:-1], spans[1:], strict=True)])
    assert gaps.min() >= 1, "at least 1 bp of reference between variants"
    # 10% clustered, 2-10 bp apart; random placement at these rates rarely comes that close
    assert np.mean((gaps >= 1) & (gaps <= 10)) > 0.05
    assert truth.clustered > 0.05 * len(records)
    assert 0.25 < truth.hom / len(records) < 0.42


def test_never_on_n_and_deletions_stay_inside_contig(tmp_path):
    seq = _chr22()
    # the slice's N block (100 kb) with real sequence either side, and a tiny contig
    fasta = _write_piece(
        tmp_path / "n.fa", {"withN": seq[500_000:620_000], "tiny": seq[300_000:300_060]}
    )
    truth = plant_variants(fasta, tmp_path / "out", seed=2, snv_rate=0.01, indel_rate=0.03)
    records = _truth(truth.vcf)
    ref = _read_fa(fasta)
    for chrom, pos, r_allele, _, _, _ in records:
        assert "N" not in r_allele
        assert ref[chrom][pos - 1 : pos - 1 + len(r_allele)] == r_allele
        assert pos - 1 + len(r_allele) <= len(ref[chrom])
    n_start = ref["withN"].index("N")
    n_end = ref["withN"].rindex("N") + 1
    on_left = [r for r in records if r[0] == "withN" and r[1] <= n_start]
    on_right = [r for r in records if r[0] == "withN" and r[1] > n_end]
    inside = [r for r in records if r[0] == "withN" and n_start < r[1] <= n_end]
    assert on_left and on_right and not inside
    assert _read_fa(truth.hap1).keys() == {"withN", "tiny"}


def test_same_seed_same_files_other_seed_differs_gzip_input_same(piece, tmp_path):
    a = plant_variants(piece, tmp_path / "a", seed=11)
    b = plant_variants(piece, tmp_path / "b", seed=11)
    c = plant_variants(piece, tmp_path / "c", seed=12)
    gz = tmp_path / "ref.fa.gz"
    with open(piece, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    d = plant_variants(gz, tmp_path / "d", seed=11)
    assert _truth(a.vcf) == _truth(b.vcf) == _truth(d.vcf) != _truth(c.vcf)
    assert a.hap1.read_bytes() == b.hap1.read_bytes() == d.hap1.read_bytes()
    assert a.hap2.read_bytes() != c.hap2.read_bytes()


def test_regions_restrict_planting(piece, tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text("22s\t1000\t21000\n22s\t50000\t60000\n")
    truth = plant_variants(piece, tmp_path / "o", seed=5, snv_rate=5e-3, regions=bed)
    records = _truth(truth.vcf)
    assert len(records) > 50
    for _, pos, r_allele, _, _, _ in records:
        start0, end0 = pos - 1, pos - 1 + len(r_allele)
        assert (1000 <= start0 < end0 <= 21000) or (50000 <= start0 < end0 <= 60000)


def test_plant_bad_input(tmp_path, piece):
    with pytest.raises(NotFoundError, match="not found"):
        plant_variants(tmp_path / "missing.fa", tmp_path / "o")
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n>x\nACGT\n")
    with pytest.raises(InputError, match="before any '>' header"):
        plant_variants(bad, tmp_path / "o")
    with pytest.raises(InputError, match="snv_rate"):
        plant_variants(piece, tmp_path / "o", snv_rate=0.5)
    with pytest.raises(InputError, match="not in the reference"):
        plant_variants(piece, tmp_path / "o", regions=[("chr9", 0, 10)])
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# reads


@pytest.fixture(scope="module")
def reads(planted, tmp_path_factory):
    out = tmp_path_factory.mktemp("reads") / "sample"
    return simulate_reads(planted.haplotypes, out, depth=20, seed=4)


def _fastq(path: Path) -> list[tuple[str, str, str]]:
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    assert len(lines) % 4 == 0
    assert all(ln == "+" for ln in lines[2::4])
    return list(zip(lines[0::4], lines[1::4], lines[3::4], strict=True))


def test_reads_pairs_names_depth_and_order(reads, planted):
    r1, r2, n = reads
    assert r1.name == "sample_1.fastq.gz" and r2.name == "sample_2.fastq.gz"
    one, two = _fastq(r1), _fastq(r2)
    assert len(one) == len(two) == n
    # 20x over 2 x 100 kb haplotypes... 10x each, 2 x 150 bp per pair: ~6,667 pairs
    assert 6_000 < n < 7_300
    names = [h for h, _, _ in one]
    assert names == [h for h, _, _ in two], "mates share a name, no /1 /2"
    assert len(set(names)) == n
    assert all(re.fullmatch(r"@h[12]_\S+", h) and not h.endswith(("/1", "/2")) for h in names)
    hap = np.array([h.startswith("@h2_") for h in names])
    assert 0.45 < hap.mean() < 0.55
    # shuffled: haplotypes interleave and ART's own order is not kept
    assert np.abs(np.diff(hap.astype(int))).sum() > n / 4
    art_ids = [int(h.rsplit("-", 1)[1]) for h in names if h.startswith("@h1_")]
    assert art_ids != sorted(art_ids) and art_ids != sorted(art_ids, reverse=True)
    assert all(len(s) == 150 and len(q) == 150 for _, s, q in one[:500])


def test_reads_deterministic(planted, reads, tmp_path):
    r1, r2, n = simulate_reads(planted.haplotypes, tmp_path / "again", depth=20, seed=4)
    assert r1.read_bytes() == reads[0].read_bytes() and r2.read_bytes() == reads[1].read_bytes()
    other = simulate_reads(planted.haplotypes, tmp_path / "other", depth=20, seed=5)
    assert other[0].read_bytes() != r1.read_bytes()


def test_reads_bad_input(planted, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="read length 200 is not supported by ART profile HS25"):
        simulate_reads(planted.haplotypes, tmp_path / "x", read_length=200)
    with pytest.raises(NotFoundError):
        simulate_reads([tmp_path / "nope.fa"], tmp_path / "x")
    short = _write_piece(tmp_path / "short.fa", {"s": "ACGT" * 30})
    with pytest.raises(InputError, match="ART simulated no reads"):
        simulate_reads([short], tmp_path / "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.fa"], "no half-written output"
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="art_illumina is not installed: `make sysdeps`"):
        simulate_reads(planted.haplotypes, tmp_path / "x")


# ---------------------------------------------------------------------------------------------
# end to end: the simulated reads, aligned and called, give back the planted SNVs


def test_end_to_end_calls_recover_planted_snvs(piece, planted, reads, tmp_path):
    fasta = tmp_path / "ref.fa"
    shutil.copy(piece, fasta)
    pysam.faidx(str(fasta))
    bam = tmp_path / "a.bam"
    r1, r2, _ = reads
    align = subprocess.Popen(
        ["minimap2", "-t", "2", "-ax", "sr", str(fasta), str(r1), str(r2)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run(["samtools", "sort", "-o", str(bam), "-"], stdin=align.stdout, check=True)
    assert align.wait() == 0
    pileup = subprocess.Popen(
        ["bcftools", "mpileup", "-f", str(fasta), str(bam)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    calls = tmp_path / "calls.vcf.gz"
    subprocess.run(
        ["bcftools", "call", "-mv", "-Oz", "-o", str(calls)],
        stdin=pileup.stdout,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    assert pileup.wait() == 0
    report = compare(planted.vcf, calls, fasta)
    snv = report["SNV"]
    assert snv.tp + snv.fn == planted.snv
    assert snv.recall >= 0.98 and snv.precision >= 0.98
    assert snv.gt_concordance >= 0.95
    assert report["INDEL"].tp + report["INDEL"].fn == planted.indel
    assert report["INDEL"].recall >= 0.7  # measured 0.89-1.0 on 200 kb; not a target


def test_cli_simulate_and_compare(piece, tmp_path):
    app = typer.Typer()
    app.command("simulate")(simulate_cmd)
    app.command("compare")(compare_cmd)
    runner = CliRunner()
    out = tmp_path / "sim"
    result = runner.invoke(
        app, ["simulate", "--genome", str(piece), "--out", str(out), "--depth", "4",
              "--seed", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"truth: {out / 'truth.vcf.gz'}" in result.output
    assert "SNVs" in result.output and "pairs, 4x, 150 bp" in result.output
    assert (out / "reads_1.fastq.gz").is_file() and (out / "hap2.fa").is_file()
    js = tmp_path / "acc.json"
    vcf = str(out / "truth.vcf.gz")
    result = runner.invoke(
        app, ["compare", "--truth", vcf, "--calls", vcf, "--genome", str(piece), "--json", str(js)]
    )
    assert result.exit_code == 0, result.output
    assert "GT concordance" in result.output and "1.0000" in result.output
    assert '"SNV"' in js.read_text()
    help_text = runner.invoke(app, ["simulate", "--help"]).output
    assert "FASTA" in help_text and "DIR" in help_text
    result = runner.invoke(app, ["simulate", "--genome", str(piece), "--out", str(out),
                                 "--read-length", "300"])  # fmt: skip
    assert isinstance(result.exception, InputError)


def test_confident_regions_leave_out_repeats_ns_and_ends(tmp_path):
    """A 3 kb segment present twice is not uniquely mappable; unique sequence is; Ns and the
    sequence ends are left out."""
    import random

    from sandgrain.calling.simulate import confident_regions

    rng = random.Random(2)
    unique = lambda n: "".join(rng.choice("ACGT") for _ in range(n))  # noqa: E731
    repeat = unique(3_000)
    seq = unique(10_000) + repeat + unique(10_000) + "N" * 2_000 + unique(8_000) + repeat + \
        unique(10_000)  # fmt: skip
    fasta = tmp_path / "g.fa"
    fasta.write_text(">g\n" + seq + "\n")
    bed, confident, total = confident_regions(fasta, tmp_path / "c.bed")
    mask = [False] * len(seq)
    for line in bed.read_text().splitlines():
        _, a, b = line.split("\t")
        for i in range(int(a), int(b)):
            mask[i] = True
    assert total == len(seq) and confident == sum(mask)
    first, second = 10_000, 10_000 + 3_000 + 10_000 + 2_000 + 8_000
    for start in (first, second):  # the repeat's middle, both copies
        assert not any(mask[start + 500 : start + 2_500])
    assert not any(mask[23_000:25_000])  # the Ns
    assert not any(mask[:500]) and not any(mask[-500:])  # the ends
    assert all(mask[1_000:9_000]) and all(mask[14_000:22_000])  # unique sequence
