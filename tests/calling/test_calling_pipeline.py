"""One sample end to end on simulated reads from the real chr22 slice: the scattered run's
records are a single bcftools run's, resumed runs redo nothing finished, gVCF and CRAM."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest
from conftest import CHR22_FASTA

from sandgrain.calling.pipeline import SampleInput, call_samples
from sandgrain.calling.reference import index_reference, open_reference
from sandgrain.testing.calling import bcftools_once, vcf_records

CONTIG = "22:20400001-20550000"



@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """150 kb of the real chr22 slice with planted SNVs and indels, 2×150 reads at 20×."""
    from sandgrain.calling.simulate import plant_variants, simulate_reads

    folder = tmp_path_factory.mktemp("sim")
    seq = "".join(ln.strip() for ln in CHR22_FASTA.read_text().splitlines()[1:])
    seq = seq[400_000:550_000]
    fasta = folder / "ref.fa"
    # named as the shared FASTA names its slice: a ':' in a sequence name must not break regions
    text = "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60))
    fasta.write_text(f">{CONTIG}\n{text}\n")
    index_reference(fasta)
    truth = plant_variants(fasta, folder / "truth", seed=11)
    r1, r2, pairs = simulate_reads(truth.haplotypes, folder / "reads", depth=20, seed=11)
    return {"fasta": fasta, "truth": truth, "r1": r1, "r2": r2, "pairs": pairs}


def _run(sample, out: Path, **kw):
    return call_samples(open_reference(str(sample["fasta"])),
                        [SampleInput("SIM", str(sample["r1"]), str(sample["r2"]))], out,
                        chunk_reads=2_000, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def scattered(sample, tmp_path_factory):
    """The sample called on local:2 in 12 regions, work folder kept."""
    folder = tmp_path_factory.mktemp("run")
    out = folder / "SIM.vcf.gz"
    report = _run(sample, out, executor="local:2", shards=12, keep_work=True,
                  bam_out=folder / "SIM.bam")  # fmt: skip
    return {"out": out, "report": report, "work": folder / "SIM.work", "bam": folder / "SIM.bam"}


def test_scattered_records_are_a_single_runs(sample, scattered):
    report = scattered["report"]
    assert report.shards >= 6 and report.chunks >= 3
    assert report.reads == 2 * sample["pairs"]
    records = vcf_records(scattered["out"])
    assert records == bcftools_once(sample["fasta"], [scattered["bam"]])
    assert report.records == len(records) > 100
    truth_sites = {(v.contig, v.pos0 + 1) for v in sample["truth"].variants}
    called = {(ln.split("\t")[0], int(ln.split("\t")[1])) for ln in records}
    assert len(truth_sites & called) > 0.9 * len(truth_sites)


def test_vcf_is_indexed_and_carries_provenance(sample, scattered):
    import pysam

    out = scattered["out"]
    with pysam.VariantFile(str(out)) as vcf:
        header = str(vcf.header)
        assert list(vcf.header.samples) == ["SIM"]
        assert len(list(vcf.fetch(CONTIG, 50_000, 60_000))) >= 1  # the .tbi answers
    assert "##sandgrain_version=" in header and "##sandgrain_tools=" in header
    assert '"minimap2": "2.' in header and '"bcftools": "1.' in header
    from sandgrain.provenance import sha256_file

    assert f'sha256="{sha256_file(sample["r1"])}"' in header
    assert f'sha256="{sha256_file(sample["fasta"])}"' in header
    assert "-r " not in header.split("##bcftools_callCommand=")[1].splitlines()[0]


def test_cuts_fall_between_variants(scattered):
    import json

    shards = json.loads((scattered["work"] / "shards.json").read_text())
    cuts = [r[1] for s in shards for r in s["regions"] if r[1] > 0]
    records = vcf_records(scattered["out"])
    for ln in records:
        f = ln.split("\t")
        start0 = int(f[1]) - 1
        end0 = start0 + max(len(f[3]), *(len(a) for a in f[4].split(",")))
        assert not any(start0 < c < end0 for c in cuts), (f[:5], cuts)


def test_resume_redoes_only_what_is_missing(sample, scattered, tmp_path):
    """Shards lost after a crash are called again; finished chunks and shards are not."""
    import shutil

    work = tmp_path / "SIM.work"
    shutil.copytree(scattered["work"], work)
    shards = sorted((work / "called").glob("shard-*.vcf.gz"))
    for lost in shards[5:]:
        lost.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in shards[:5]}
    out = tmp_path / "SIM.vcf.gz"
    report = _run(sample, out, executor="serial", shards=12, work=work, keep_work=True)
    assert report.chunks_reused == report.chunks
    assert report.shards_reused == 5
    assert {p.name: p.stat().st_mtime_ns for p in shards[:5]} == before
    assert vcf_records(out) == vcf_records(scattered["out"])


def test_gvcf_blocks_and_cram(sample, scattered, tmp_path):
    out = tmp_path / "SIM.g.vcf.gz"
    _run(sample, out, executor="serial", shards=5, gvcf=True, bam_out=tmp_path / "SIM.cram")
    records = vcf_records(out)
    variants = [ln for ln in records if ln.split("\t")[4] != "."]
    blocks = [ln for ln in records if ln.split("\t")[4] == "."]
    assert len(blocks) > len(variants) > 100
    assert sum("END=" in ln for ln in blocks) > 0.5 * len(blocks)  # single sites have no END
    # reference blocks and variants tile the covered genome: no overlaps, in order
    last = 0
    for ln in records:
        f = ln.split("\t")
        start = int(f[1])
        end = int(f[7].split("END=")[1].split(";")[0]) if "END=" in f[7] else start
        assert start > last or (f[4] != "." and start == last), (last, f[:5])
        last = max(last, end)
    # the variant sites are those of the plain VCF
    site = lambda ln: tuple(ln.split("\t")[:5])  # noqa: E731
    assert [site(v) for v in variants] == [site(v) for v in vcf_records(scattered["out"])]
    cram = tmp_path / "SIM.cram"
    assert cram.is_file() and (tmp_path / "SIM.cram.crai").is_file()
    count = subprocess.run(["samtools", "view", "-c", "-T", sample["fasta"], cram],
                           check=True, capture_output=True).stdout  # fmt: skip
    assert int(count) == 2 * sample["pairs"]


def test_changed_reads_are_not_resumed_from_old_alignments(sample, tmp_path):
    """Reads replaced under the same name: the work folder's chunks, BAM and calls are stale."""
    import shutil

    r1, r2 = tmp_path / "r_1.fq.gz", tmp_path / "r_2.fq.gz"
    shutil.copyfile(sample["r1"], r1)
    shutil.copyfile(sample["r2"], r2)
    ref = open_reference(str(sample["fasta"]))
    work = tmp_path / "w"

    def run(out):
        return call_samples(ref, [SampleInput("SIM", str(r1), str(r2))], out, executor="serial",
                            chunk_reads=2_000, shards=4, work=work, keep_work=True)  # fmt: skip

    first = run(tmp_path / "a.vcf.gz")
    for f in (r1, r2):  # the first 3,000 pairs only
        lines = gzip.decompress(f.read_bytes()).splitlines(keepends=True)[: 4 * 3000]
        f.write_bytes(gzip.compress(b"".join(lines)))
    second = run(tmp_path / "b.vcf.gz")
    assert second.chunks_reused == 0 and second.shards_reused == 0
    assert second.reads == 6000 < first.reads
    fresh = call_samples(ref, [SampleInput("SIM", str(r1), str(r2))], tmp_path / "c.vcf.gz",
                         executor="serial", chunk_reads=2_000, shards=4)  # fmt: skip
    assert fresh.records == second.records
    assert vcf_records(tmp_path / "b.vcf.gz") == vcf_records(tmp_path / "c.vcf.gz")


def test_cli_run_reports_rates_and_writes_json(cli, sample, scattered, tmp_path):
    import json

    out = tmp_path / "cli.vcf.gz"
    code, stdout, err = cli("calling", "run", "--genome", sample["fasta"], "--reads",
                            sample["r1"], "--reads", sample["r2"], "--sample", "SIM", "-o", out,
                            "--chunk-reads", "2000", "--regions", "12", "--report",
                            tmp_path / "r.json")  # fmt: skip
    assert code == 0, err
    assert "reads/s" in stdout and "Mbp/s" in stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["reads"] == 2 * sample["pairs"] and report["reads_per_second"] > 0
    assert report["records"] == len(vcf_records(out)) == len(vcf_records(scattered["out"]))
    assert vcf_records(out) == vcf_records(scattered["out"])  # serial here, local:2 there
    assert not (tmp_path / "cli.work").exists()  # removed after success


def test_header_names_every_input_by_its_absolute_path(sample, tmp_path, monkeypatch):
    """The reference and the reads given relative to the working folder: every
    ``##sandgrain_input`` names its file by the same rule, the absolute path (the reference was
    written as given, ``ref.fa``, beside absolute FASTQ paths)."""
    import os

    folder = sample["fasta"].parent
    monkeypatch.chdir(folder)
    r1, r2 = (os.path.relpath(sample[k], folder) for k in ("r1", "r2"))
    out = tmp_path / "rel.vcf.gz"
    call_samples(open_reference("ref.fa"), [SampleInput("SIM", r1, r2)], out,
                 chunk_reads=50_000, executor="serial")  # fmt: skip
    with gzip.open(out, "rt") as fh:
        header = [ln for ln in fh if ln.startswith("##sandgrain_input=")]
    sources = [ln.split('source="', 1)[1].split('"', 1)[0] for ln in header]
    assert sources == [str(sample[k].resolve()) for k in ("fasta", "r1", "r2")]
