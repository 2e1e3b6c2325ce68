"""A cohort: the real 1000 Genomes reads of three people (HG00100-HG00102, chr17 slice), joint
calling from their BAMs and from their reads realigned, and the result shared by a Beacon."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess

import pytest
from conftest import DATA

from sandgrain.calling.pipeline import call_samples, read_samples_file
from sandgrain.calling.reference import index_reference
from sandgrain.testing.calling import bcftools_once, vcf_records

READS = DATA / "reads" / "bcftools-mpileup"
PEOPLE = ("HG00100", "HG00101", "HG00102")



@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """The three BAMs indexed, their reads as paired FASTQ, sample sheets for both, the genome."""
    folder = tmp_path_factory.mktemp("cohort")
    shutil.copyfile(READS / "mpileup.ref.fa", folder / "ref.fa")
    index_reference(folder / "ref.fa")
    bams, fastqs = ["sample\tbam"], ["sample\treads1\treads2"]
    for i, person in enumerate(PEOPLE, start=1):
        bam = folder / f"{person}.bam"
        shutil.copyfile(READS / f"mpileup.{i}.bam", bam)
        subprocess.run(["samtools", "index", bam], check=True)
        collated = subprocess.run(["samtools", "collate", "-u", "-O", bam],
                                  check=True, capture_output=True).stdout  # fmt: skip
        subprocess.run(["samtools", "fastq", "-1", folder / f"{person}_1.fq.gz", "-2",
                        folder / f"{person}_2.fq.gz", "-0", "/dev/null", "-s", "/dev/null",
                        "-n", "-"], input=collated, check=True, capture_output=True)  # fmt: skip
        bams.append(f"{person}\t{bam.name}")
        fastqs.append(f"{person}\t{person}_1.fq.gz\t{person}_2.fq.gz")
    (folder / "bams.tsv").write_text("\n".join(bams) + "\n")
    (folder / "reads.tsv").write_text("\n".join(fastqs) + "\n")
    return folder


def _bcftools_once(folder) -> list[str]:
    """The plain reference: one bcftools run over the three BAMs, no scatter."""
    return bcftools_once(folder / "ref.fa", [folder / f"{p}.bam" for p in PEOPLE])


def test_joint_call_from_bams_is_one_bcftools_run(cohort, tmp_path):
    from sandgrain.calling.reference import open_reference

    out = tmp_path / "cohort.vcf.gz"
    samples = read_samples_file(cohort / "bams.tsv")
    report = call_samples(open_reference(str(cohort / "ref.fa")), samples, out, executor="serial")
    records = vcf_records(out)
    assert records == _bcftools_once(cohort)
    assert report.records == len(records) >= 10
    with gzip.open(out, "rt") as fh:
        columns = next(ln for ln in fh if ln.startswith("#CHROM")).split()
    assert columns[9:] == list(PEOPLE)
    assert (tmp_path / "cohort.vcf.gz.tbi").is_file()


def test_real_reads_realigned_find_the_same_variants(cohort, tmp_path):
    """The reads back to FASTQ, aligned again by minimap2 instead of the 1000 Genomes BWA
    alignments: every site and every genotype bcftools calls from the originals."""
    from sandgrain.calling.reference import open_reference

    out = tmp_path / "realigned.vcf.gz"
    report = call_samples(open_reference(str(cohort / "ref.fa")),
                          read_samples_file(cohort / "reads.tsv"), out, executor="serial",
                          chunk_reads=100)  # fmt: skip
    assert report.chunks >= 6  # each person's reads in several chunks

    def sites(lines):
        out = {}
        for ln in lines:
            f = ln.rstrip("\n").split("\t")
            out[(f[1], f[3], f[4])] = [g.split(":")[0] for g in f[9:]]
        return out

    original, realigned = sites(_bcftools_once(cohort)), sites(vcf_records(out))
    assert realigned == original


def test_cli_joint_into_a_beacon(cli, cohort, tmp_path):
    out = tmp_path / "cohort.vcf.gz"
    code, stdout, err = cli("calling", "joint", "--genome", cohort / "ref.fa", "--samples",
                            cohort / "bams.tsv", "-o", out, "--beacon", "trio",
                            "--assembly", "GRCh37", "-q")  # fmt: skip
    assert code == 0, err
    assert "records from 3 samples" in stdout and "beacon dataset trio" in stdout
    code, stdout, err = cli("beacon", "list", "--json")
    assert code == 0, err
    (row,) = [r for r in json.loads(stdout) if r["id"] == "trio"]
    assert row["n_individuals"] == 3 and row["n_variants"] == len(vcf_records(out))
    assert row["assembly"] == "GRCh37"
    assert row["access"] == "public"  # the default, as `beacon ingest`'s


def test_cli_joint_publishes_a_controlled_cohort_in_one_step(cli, cohort, tmp_path):
    """``--access`` goes through to the Beacon ingest: the cohort is controlled from its first
    version, never public for a moment."""
    from sandgrain.beacon.ingest import ACCESS_TIERS
    from sandgrain.cli.calling import ACCESS_TIERS as CALLING_TIERS

    assert CALLING_TIERS == ACCESS_TIERS  # checked before the calling, as the ingest checks them
    out = tmp_path / "cohort.vcf.gz"
    code, stdout, err = cli("calling", "joint", "--genome", cohort / "ref.fa", "--samples",
                            cohort / "bams.tsv", "-o", out, "--beacon", "trio", "--assembly",
                            "GRCh37", "--access", "controlled", "-q")  # fmt: skip
    assert code == 0, err
    assert "beacon dataset trio: version" in stdout and "access controlled" in stdout
    code, stdout, err = cli("beacon", "list", "--json")
    (row,) = [r for r in json.loads(stdout) if r["id"] == "trio"]
    assert row["access"] == "controlled" and row["n_individuals"] == 3
    # bad uses are refused at once, before any reads are aligned
    never = tmp_path / "never.vcf.gz"
    for extra, message in (
        (["--beacon", "t2", "--assembly", "GRCh37", "--access", "secret"], "--access must be"),
        (["--access", "controlled"], "give --beacon DATASET"),
    ):
        code, _, err = cli("calling", "joint", "--genome", cohort / "ref.fa", "--samples",
                           cohort / "bams.tsv", "-o", never, *extra)  # fmt: skip
        assert code != 0 and message in err and err.count("\n") == 1, err
        assert not never.exists()


def test_cli_errors_are_one_line(cli, cohort, tmp_path):
    reads = cohort / "HG00100_1.fq.gz"
    code, _, err = cli("calling", "run", "--genome", tmp_path / "nope.fa", "--reads", reads,
                       "--sample", "X", "-o", tmp_path / "x.vcf.gz")  # fmt: skip
    assert code != 0 and err.count("\n") == 1 and "no such FASTA" in err
    code, _, err = cli("calling", "run", "--genome", cohort / "ref.fa", "--reads",
                       cohort / "HG00100_1.fq.gz", "--reads", cohort / "HG00101_2.fq.gz",
                       "--sample", "X", "-o", tmp_path / "x.vcf.gz")  # fmt: skip
    assert code != 0 and err.count("\n") == 1 and "mismatched pair" in err
    assert not (tmp_path / "x.vcf.gz").exists()


def test_header_names_relative_bams_by_their_absolute_paths(cohort, tmp_path, monkeypatch):
    """BAMs given relative to the working folder are named absolute, as the reference and the
    FASTQ are (a sample sheet's paths already were)."""
    from sandgrain.calling.pipeline import SampleInput
    from sandgrain.calling.reference import open_reference

    monkeypatch.chdir(cohort)
    out = tmp_path / "rel.vcf.gz"
    samples = [SampleInput(p, None, None, f"{p}.bam") for p in PEOPLE]
    call_samples(open_reference("ref.fa"), samples, out, executor="serial")
    with gzip.open(out, "rt") as fh:
        sources = [ln.split('source="', 1)[1].split('"', 1)[0] for ln in fh
                   if ln.startswith("##sandgrain_input=")]  # fmt: skip
    assert sources == [str((cohort / name).resolve())
                       for name in ("ref.fa", *(f"{p}.bam" for p in PEOPLE))]  # fmt: skip
