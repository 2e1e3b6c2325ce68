"""Bad input to `sandgrain calling`: one clear error, and no output written."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from conftest import CHR22_FASTA

from sandgrain.calling import fastq
from sandgrain.calling.pipeline import SampleInput, call_samples, read_samples_file
from sandgrain.calling.reference import index_reference, open_reference
from sandgrain.errors import InputError, NotFoundError


def _records(n: int, length: int = 100, prefix: str = "r", mate: str = "") -> bytes:
    out = []
    for i in range(n):
        out.append(f"@{prefix}{i}{mate}\n{'ACGT' * (length // 4)}\n+\n{'I' * length}\n")
    return "".join(out).encode()


@pytest.fixture(scope="module")
def small_ref(tmp_path_factory) -> Path:
    """20 kb of the real chr22 slice, indexed."""
    folder = tmp_path_factory.mktemp("ref")
    seq = "".join(ln.strip() for ln in CHR22_FASTA.read_text().splitlines()[1:])[300_000:320_000]
    fasta = folder / "ref.fa"
    fasta.write_text(">22s\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    index_reference(fasta)
    return fasta


def _run(ref: Path, tmp_path: Path, r1: Path, r2: Path | None = None, **kw):
    out = tmp_path / "out.vcf.gz"
    call_samples(open_reference(str(ref)), [SampleInput("S", str(r1), r2 and str(r2))], out,
                 executor="serial", **kw)  # fmt: skip
    return out


def _assert_nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "out.vcf.gz").exists()
    assert not (tmp_path / "out.vcf.gz.tbi").exists()


def test_truncated_gzip_fastq(small_ref, tmp_path):
    whole = gzip.compress(_records(2000))
    r1 = tmp_path / "r1.fq.gz"
    r1.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"r1\.fq\.gz: truncated"):
        _run(small_ref, tmp_path, r1)
    _assert_nothing_written(tmp_path)
    assert not (tmp_path / "out.work").exists()


def test_fastq_cut_inside_a_record(small_ref, tmp_path):
    r1 = tmp_path / "r1.fq"
    r1.write_bytes(_records(10)[:-30])
    with pytest.raises(InputError, match="truncated"):
        _run(small_ref, tmp_path, r1)
    _assert_nothing_written(tmp_path)
    assert not (tmp_path / "out.work").exists()


def test_pairs_of_different_lengths(small_ref, tmp_path):
    r1, r2 = tmp_path / "a_1.fq", tmp_path / "a_2.fq"
    r1.write_bytes(_records(10, mate="/1"))
    r2.write_bytes(_records(9, mate="/2"))
    with pytest.raises(InputError, match=r"mismatched pair: a_2\.fq ends after 9 reads"):
        _run(small_ref, tmp_path, r1, r2)
    _assert_nothing_written(tmp_path)
    assert not (tmp_path / "out.work").exists()


def test_pairs_out_of_order(small_ref, tmp_path):
    r1, r2 = tmp_path / "a_1.fq", tmp_path / "a_2.fq"
    r1.write_bytes(_records(10, mate="/1"))
    r2.write_bytes(_records(10, prefix="x", mate="/2"))
    with pytest.raises(InputError, match="mismatched pair at read 1: .*'r0/1'.*'x0/2'"):
        _run(small_ref, tmp_path, r1, r2)
    _assert_nothing_written(tmp_path)
    assert not (tmp_path / "out.work").exists()


def test_read_longer_than_declared(small_ref, tmp_path):
    r1 = tmp_path / "r1.fq"
    r1.write_bytes(_records(5, length=100) + _records(1, length=160, prefix="long"))
    with pytest.raises(InputError, match="read long0 is 160 bp, longer than the declared "
                       "--read-length 150"):  # fmt: skip
        _run(small_ref, tmp_path, r1, max_read_length=150)
    _assert_nothing_written(tmp_path)
    assert not (tmp_path / "out.work").exists()


def test_sequence_and_quality_lengths_differ(small_ref, tmp_path):
    r1 = tmp_path / "r1.fq"
    r1.write_bytes(b"@a\nACGT\n+\nIII\n@b\nACGT\n+\nIIII\n")
    with pytest.raises(InputError, match="record 1: 4 bases but 3 quality values"):
        _run(small_ref, tmp_path, r1)


def test_not_fastq(small_ref, tmp_path):
    r1 = tmp_path / "r1.fq"
    r1.write_bytes(b">a\nACGT\n>b\nACGT\n")
    with pytest.raises(InputError, match="starts with '@'"):
        _run(small_ref, tmp_path, r1)


def test_genome_without_index(tmp_path):
    fasta = tmp_path / "bare.fa"
    fasta.write_text(">x\nACGTACGTAC\n")
    with pytest.raises(InputError, match="has no index .*sandgrain calling index --genome"):
        open_reference(str(fasta))


def test_gzip_not_bgzip_genome_is_refused(tmp_path):
    fasta = tmp_path / "g.fa.gz"
    fasta.write_bytes(gzip.compress(b">x\nACGTACGTAC\n"))
    with pytest.raises(InputError, match="not with bgzip"):
        index_reference(fasta)


def test_missing_reads_file(small_ref, tmp_path):
    with pytest.raises(NotFoundError, match="no such file"):
        _run(small_ref, tmp_path, tmp_path / "absent.fq.gz")


def test_output_must_be_vcf_gz(small_ref, tmp_path):
    r1 = tmp_path / "r1.fq"
    r1.write_bytes(_records(5))
    with pytest.raises(InputError, match=r"\*\.vcf\.gz"):
        call_samples(open_reference(str(small_ref)), [SampleInput("S", str(r1))],
                     tmp_path / "out.vcf", executor="serial")  # fmt: skip


def test_work_folder_of_other_inputs_is_refused(small_ref, tmp_path):
    r1 = tmp_path / "r1.fq"
    r1.write_bytes(_records(5))
    work = tmp_path / "w"
    work.mkdir()
    (work / "params.json").write_text('{"chunk_reads": 1}')
    with pytest.raises(InputError, match="holds a run with other inputs"):
        _run(small_ref, tmp_path, r1, work=work)


def test_chunks_keep_every_read_and_pair(tmp_path):
    r1, r2 = tmp_path / "a_1.fq.gz", tmp_path / "a_2.fq.gz"
    r1.write_bytes(gzip.compress(_records(25, mate="/1")))
    r2.write_bytes(gzip.compress(_records(25, mate="/2")))
    plan = fastq.chunk_reads(r1, r2, tmp_path / "w", chunk_reads=10)
    assert plan.chunks == [10, 10, 5] and plan.reads == 25 and plan.paired
    names = []
    for i in range(3):
        a, b = (gzip.decompress(f.read_bytes()).decode().splitlines()
                for f in plan.files(tmp_path / "w", i))  # fmt: skip
        assert a[0::4] == b[0::4]  # mates side by side, the /1 /2 suffix dropped
        names += a[0::4]
    assert names == [f"@r{i}" for i in range(25)]
    assert len(plan.inputs[0]["sha256"]) == 64
    again = fastq.read_chunk_plan(r1, r2, tmp_path / "w", chunk_reads=10, max_read_length=None)
    assert again is not None and again.chunks == plan.chunks
    assert fastq.read_chunk_plan(r1, r2, tmp_path / "w", chunk_reads=11,
                                 max_read_length=None) is None  # fmt: skip


def test_samples_file(tmp_path):
    (tmp_path / "s.tsv").write_text("sample\treads1\treads2\nA\ta1.fq\ta2.fq\nB\tb1.fq\t\n")
    samples = read_samples_file(tmp_path / "s.tsv")
    assert [s.sample for s in samples] == ["A", "B"]
    assert samples[0].reads2 == str(tmp_path / "a2.fq") and samples[1].reads2 is None
    (tmp_path / "bad.tsv").write_text("name\tfile\nA\ta.fq\n")
    with pytest.raises(InputError, match="header names 'sample'"):
        read_samples_file(tmp_path / "bad.tsv")
    (tmp_path / "twice.tsv").write_text("sample\tbam\nA\ta.bam\nA\tb.bam\n")
    with pytest.raises(InputError, match="listed twice"):
        read_samples_file(tmp_path / "twice.tsv")
