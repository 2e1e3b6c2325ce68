"""Scoring calls against a truth set: hand-built VCFs with known TPs, FPs, FNs and genotype
errors on real chr22 sequence, indels written differently (normalisation must match them), and a
naive loop that must agree with :func:`compare` on random simulated sets."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pysam
import pytest
from conftest import CHR22_FASTA

from sandgrain.calling.accuracy import compare, normalised_records
from sandgrain.calling.simulate import plant_variants
from sandgrain.errors import InputError, NotFoundError

CONTIG = "22s"
HEADER = (
    "##fileformat=VCFv4.2\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FILTER=<ID=LowQual,Description="Low quality">\n'
)


@pytest.fixture(scope="module")
def seq() -> str:
    full = "".join(ln.strip() for ln in CHR22_FASTA.read_text().splitlines()[1:])
    return full[300_000:320_000]


@pytest.fixture(scope="module")
def ref(seq, tmp_path_factory) -> Path:
    """20 kb of the real chr22 slice: a plain FASTA without .fai (compare must cope)."""
    path = tmp_path_factory.mktemp("accref") / "ref.fa"
    path.write_text(f">{CONTIG}\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)))
    return path


def _vcf(path: Path, samples: list[str], rows: list[tuple]) -> Path:
    """rows: (pos, ref, alt, gts...) or (pos, ref, alt, qual, filter, gts...) when qual given."""
    lines = [
        HEADER + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples)
    ]
    for row in sorted(rows, key=lambda r: r[0]):
        pos, r, a, *rest = row
        qual, flt = ("50", "PASS")
        if len(rest) > len(samples):
            qual, flt, *rest = rest
        lines.append(f"{CONTIG}\t{pos}\t.\t{r}\t{a}\t{qual}\t{flt}\t.\tGT\t" + "\t".join(rest))
    path.write_text("\n".join(lines) + "\n")
    return path


def _runs(seq: str, start: int) -> list[tuple[int, int]]:
    """Maximal homopolymer runs of 6+ bases after ``start``, as (start0, end0)."""
    return [m.span() for m in re.finditer(r"([ACGT])\1{5,}", seq) if m.start() > start]


def _other(base: str, k: int = 1) -> str:
    bases = [b for b in "ACGT" if b != base]
    return bases[k % 3]


@pytest.fixture(scope="module")
def handmade(seq, tmp_path_factory):
    """Truth and calls with every case of the rules, and the expected figures."""
    folder = tmp_path_factory.mktemp("hand")
    b = {p: seq[p - 1] for p in (1000, 2000, 3000, 4000, 5000, 6000, 6001, 7000, 8000, 9000)}
    (d0, d1), (i0, i1) = _runs(seq, 10_000)[:2]
    base_d, base_i = seq[d0], seq[i0]
    # deletion of one base of a run: truth left-aligned, calls right-shifted
    del_truth = (d0, seq[d0 - 1] + base_d, seq[d0 - 1])
    del_calls = (d1 - 1, base_d * 2, base_d)
    ins_truth = (i0, seq[i0 - 1], seq[i0 - 1] + base_i)
    ins_calls = (i1, base_i, base_i * 2)
    fp_del = (7000, seq[6999:7003], seq[6999])
    fn_ins = (8000, b[8000], b[8000] + "TGA")
    truth = _vcf(folder / "truth.vcf", ["TRUTH"], [
        (1000, b[1000], _other(b[1000]), "0|1"),          # TP, GT right
        (2000, b[2000], _other(b[2000]), "1|1"),          # TP, calls say het
        (3000, b[3000], _other(b[3000]), "1|0"),          # FN
        (5000, b[5000], _other(b[5000], 1), "0|1"),       # a 1/2 site written as two records
        (5000, b[5000], _other(b[5000], 2), "1|0"),
        (6000, b[6000], _other(b[6000]), "0|1"),          # two SNVs the caller joined (MNP)
        (6001, b[6001], _other(b[6001]), "0|1"),
        (*del_truth, "0|1"),                              # TP after left-aligning the calls
        (*ins_truth, "1|1"),
        (*fn_ins, "0|1"),                                 # FN indel
    ])  # fmt: skip
    calls = _vcf(folder / "calls.vcf", ["S1", "S2"], [
        (1000, b[1000], _other(b[1000]), "0/1", "0/0"),
        (2000, b[2000], _other(b[2000]), "0/1", "0/0"),
        (4000, b[4000], _other(b[4000]), "1/1", "0/0"),                     # FP
        (5000, b[5000], f"{_other(b[5000], 1)},{_other(b[5000], 2)}", "1/2", "0/0"),
        (6000, b[6000] + b[6001], _other(b[6000]) + _other(b[6001]), "0/1", "0/0"),
        (*del_calls, "0/1", "0/0"),
        (*ins_calls, "1/1", "0/1"),
        (*fp_del, "0/1", "0/0"),                                            # FP indel
        (9000, b[9000], _other(b[9000]), "5", "PASS", "0/1", "0/0"),       # FP, low QUAL
        (9100, seq[9099], _other(seq[9099]), "60", "LowQual", "0/1", "0/0"),  # FP, filtered
        (9200, seq[9199], _other(seq[9199]), "0/0", "0/1"),                 # no alt in S1
        (9300, seq[9299], _other(seq[9299]), "./.", "1/1"),                 # missing in S1
    ])  # fmt: skip
    return truth, calls


def test_handmade_counts(handmade, ref):
    truth, calls = handmade
    report = compare(truth, calls, ref, sample="S1")
    snv, indel = report["SNV"], report["INDEL"]
    assert (snv.tp, snv.fp, snv.fn, snv.gt_match) == (6, 3, 1, 5)
    assert (indel.tp, indel.fp, indel.fn, indel.gt_match) == (2, 1, 1, 2)
    assert snv.precision == pytest.approx(6 / 9) and snv.recall == pytest.approx(6 / 7)
    assert snv.f1 == pytest.approx(2 * (6 / 9) * (6 / 7) / (6 / 9 + 6 / 7))
    assert snv.gt_concordance == pytest.approx(5 / 6)
    assert report["ALL"].tp == 8
    assert [(r.pos, r.dosage) for r in report.false_negatives if r.kind == "SNV"] == [(3000, 1)]
    ((t, c),) = report.genotype_mismatches
    assert (t.pos, t.dosage, c.dosage) == (2000, 2, 1)
    d = report.as_dict()
    assert d["types"]["INDEL"]["tp"] == 2 and d["sample"] == "S1" and d["truth_sample"] == "TRUTH"
    assert "replayed as haplotypes" in d["method"] and d["replayed_clusters"] == 0
    assert (
        "not haplotype-aware"
        in compare(truth, calls, ref, sample="S1", replay=False).as_dict()["method"]
    )
    table = report.table().splitlines()
    assert table[0].split()[:4] == ["type", "TP", "FP", "FN"]
    assert table[1].split()[:4] == ["SNV", "6", "3", "1"]
    assert not Path(str(ref) + ".fai").exists(), "the user's folder is left alone"


def test_normalisation_moves_shifted_indels(handmade, ref, seq):
    _, calls = handmade
    _, records = normalised_records(calls, ref, sample="S1")
    (d0, _), (i0, _) = _runs(seq, 10_000)[:2]
    indels = {(r.pos, len(r.ref), len(r.alt)) for r in records if r.kind == "INDEL"}
    assert (d0, 2, 1) in indels and (i0, 1, 2) in indels  # left-aligned to the runs' starts
    # the joined SNVs (MNP) were atomised, the 1/2 site split, 0/0 and ./. dropped
    assert {(r.pos, r.dosage) for r in records if r.pos in (5000, 6000, 6001)} == {
        (5000, 1),
        (6000, 1),
        (6001, 1),
    }
    assert sum(r.pos == 5000 for r in records) == 2
    assert not any(r.pos in (9200, 9300) for r in records)


def test_filters_samples_regions(handmade, ref, tmp_path):
    truth, calls = handmade
    assert compare(truth, calls, ref, sample="S1", min_qual=10)["SNV"].fp == 2
    assert compare(truth, calls, ref, sample="S1", pass_only=True)["SNV"].fp == 2
    both = compare(truth, calls, ref, sample="S1", min_qual=10, pass_only=True)
    assert both["SNV"].fp == 1 and both.min_qual == 10 and both.pass_only
    other = compare(truth, calls, ref, sample="S2")
    assert other["ALL"].tp == 1 and other["ALL"].fp == 2  # the insertion, the 9200/9300 SNVs
    bed = tmp_path / "conf.bed"
    bed.write_text("browser hide\n22s\t0\t2500\n22s\t1500\t3500\n")  # overlapping: merged
    inside = compare(truth, calls, ref, sample="S1", regions_bed=bed)
    assert (inside["SNV"].tp, inside["SNV"].fp, inside["SNV"].fn) == (2, 0, 1)
    assert inside["INDEL"].tp + inside["INDEL"].fp + inside["INDEL"].fn == 0
    assert inside["INDEL"].precision is None and inside.table().splitlines()[2].endswith("-")
    with pytest.raises(InputError, match="has 2 samples \\(S1, S2\\): choose one"):
        compare(truth, calls, ref)
    with pytest.raises(NotFoundError, match="sample 'S9'"):
        compare(truth, calls, ref, sample="S9")


def test_reference_forms_and_bad_input(handmade, ref, seq, tmp_path):
    truth, calls = handmade
    expected = compare(truth, calls, ref, sample="S1").as_dict()["types"]
    gz = tmp_path / "ref.fa.gz"
    with open(ref, "rb") as src, gzip.open(gz, "wb") as dst:  # plain gzip, not bgzip
        shutil.copyfileobj(src, dst)
    bgz = tmp_path / "ref.bgz.fa.gz"
    pysam.tabix_compress(str(ref), str(bgz))
    pysam.faidx(str(bgz))
    for reference in (gz, bgz):
        assert compare(truth, calls, reference, sample="S1").as_dict()["types"] == expected
    bgzipped = tmp_path / "calls.vcf.gz"
    pysam.tabix_compress(str(calls), str(bgzipped))
    assert compare(truth, bgzipped, ref, sample="S1").as_dict()["types"] == expected

    wrong = _vcf(tmp_path / "wrong.vcf", ["S"], [(1000, _other(seq[999]), seq[999], "0/1")])
    with pytest.raises(InputError, match="(?i)mismatch"):
        compare(truth, wrong, ref)
    with pytest.raises(NotFoundError, match="calls VCF not found"):
        compare(truth, tmp_path / "none.vcf", ref)
    with pytest.raises(NotFoundError, match="reference FASTA not found"):
        compare(truth, calls, tmp_path / "none.fa", sample="S1")
    sites = tmp_path / "sites.vcf"
    sites.write_text(HEADER + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    with pytest.raises(InputError, match="no sample column"):
        compare(truth, sites, ref)
    bad_bed = tmp_path / "bad.bed"
    bad_bed.write_text("22s\tone\t100\n")
    with pytest.raises(InputError, match="not BED"):
        compare(truth, calls, ref, sample="S1", regions_bed=bad_bed)


# ---------------------------------------------------------------------------------------------
# exact before fast: a naive loop over the same normalised records


def _naive(truth, calls) -> dict[str, tuple[int, int, int, int]]:
    def collapse(records):
        keys, dosages = [], []
        for r in records:
            key = (r.chrom, r.pos, r.ref, r.alt)
            for i, k in enumerate(keys):
                if k == key:
                    dosages[i] = min(2, dosages[i] + r.dosage)
                    break
            else:
                keys.append(key)
                dosages.append(r.dosage)
        return keys, dosages

    tk, td = collapse(truth)
    ck, cd = collapse(calls)
    out = {}
    for kind in ("SNV", "INDEL"):
        tp = fp = fn = same = 0
        for key, dosage in zip(tk, td, strict=True):
            if ("INDEL" if len(key[2]) != len(key[3]) else "SNV") != kind:
                continue
            found = [d for k, d in zip(ck, cd, strict=True) if k == key]
            if found:
                tp += 1
                same += found[0] == dosage
            else:
                fn += 1
        for key in ck:
            if ("INDEL" if len(key[2]) != len(key[3]) else "SNV") == kind and key not in tk:
                fp += 1
        out[kind] = (tp, fp, fn, same)
    return out


def _rows(vcf: Path) -> list[list[str]]:
    with gzip.open(vcf, "rt") as fh:
        return [ln.split("\t") for ln in fh if not ln.startswith("#")]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compare_agrees_with_naive_loop_on_random_sets(ref, tmp_path, seed):
    rates = {"snv_rate": 4e-3, "indel_rate": 1.5e-3}
    truth = plant_variants(ref, tmp_path / "t", seed=100 + seed, **rates)
    other = plant_variants(ref, tmp_path / "o", seed=200 + seed, **rates)
    rng = np.random.default_rng(seed)
    rows = []
    for cols in _rows(truth.vcf):
        if rng.random() < 0.15:
            continue  # a false negative
        gt = cols[9].strip()
        if rng.random() < 0.2:
            gt = ["0/1", "1/1", "1/0"][int(rng.integers(3))]  # maybe a genotype error
        if rng.random() < 0.05:
            gt = "0/0"
        rows.append((int(cols[1]), cols[3], cols[4], str(int(rng.integers(1, 99))), "PASS", gt))
    for cols in _rows(other.vcf):
        if rng.random() < 0.3:  # false positives, some on truth sites
            rows.append((int(cols[1]), cols[3], cols[4], "30", "PASS", cols[9].strip()))
    calls = _vcf(tmp_path / "calls.vcf", ["S"], rows)

    _, truth_records = normalised_records(truth.vcf, ref)
    _, call_records = normalised_records(calls, ref)
    expected = _naive(truth_records, call_records)
    report = compare(truth.vcf, calls, ref, replay=False)
    for kind in ("SNV", "INDEL"):
        c = report[kind]
        assert (c.tp, c.fp, c.fn, c.gt_match) == expected[kind]
        assert c.tp == c.tp_calls and c.tp > 10 and c.fp > 0 and c.fn > 0
    assert report["SNV"].gt_match < report["SNV"].tp
    # replaying only turns unmatched records into matched ones, never the other way
    replayed = compare(truth.vcf, calls, ref)
    for kind in ("SNV", "INDEL"):
        a, b = report[kind], replayed[kind]
        assert b.tp - a.tp == a.fn - b.fn >= 0 and b.tp_calls - a.tp_calls == a.fp - b.fp >= 0

    _, filtered = normalised_records(calls, ref, min_qual=50)
    assert all(r.qual >= 50 for r in filtered)
    strict = compare(truth.vcf, calls, ref, min_qual=50)
    assert (strict["SNV"].tp, strict["SNV"].fp) == _naive(truth_records, filtered)["SNV"][:2]


def test_replay_matches_one_haplotype_written_two_ways(seq, ref, tmp_path):
    """An insertion and a nearby SNV on one haplotype, and the same haplotype as one complex
    record, which normalisation splits into three other primitives: no record matches, the
    haplotypes do. A
    different ALT, or another genotype, is no match; a shared record inside the cluster joins
    the replay on both sides."""
    p = 12_000
    snv_alt = _other(seq[p + 2])
    ins = "CT"
    hap = seq[p - 1] + ins + seq[p : p + 2] + snv_alt  # reference p..p+3 on this haplotype
    shared = (p - 3, seq[p - 4], _other(seq[p - 4]), "0|1")
    truth = _vcf(tmp_path / "t.vcf", ["T"], [
        (p, seq[p - 1], seq[p - 1] + ins, "0|1"),
        (p + 3, seq[p + 2], snv_alt, "0|1"),
        shared,
    ])  # fmt: skip

    def calls(alt: str, gt: str, name: str) -> Path:
        return _vcf(
            tmp_path / name, ["S"], [(p, seq[p - 1 : p + 3], alt, gt), shared[:3] + ("0/1",)]
        )

    same = compare(truth, calls(hap, "0/1", "same.vcf"), ref)
    assert same.replayed == 1 and not same.false_positives and not same.false_negatives
    assert (same["SNV"].tp, same["INDEL"].tp, same["INDEL"].tp_calls) == (2, 1, 1)
    assert same["ALL"].precision == same["ALL"].recall == same["ALL"].gt_concordance == 1.0
    plain = compare(truth, calls(hap, "0/1", "same.vcf"), ref, replay=False)
    assert (plain["ALL"].tp, plain["ALL"].fp, plain["ALL"].fn) == (1, 3, 2)
    assert same["ALL"].tp_calls == 4  # the shared record and the three primitives

    other = hap[:-1] + _other(seq[p + 2], 2)
    for vcf in (calls(other, "0/1", "other.vcf"), calls(hap, "1/1", "hom.vcf")):
        report = compare(truth, vcf, ref)
        assert report.replayed == 0 and len(report.false_negatives) == 2

    # an SNV and an insertion on one anchor base, against one record doing both (kept whole by
    # normalisation): the insertion starts after its anchor, so the two do not overlap
    q = 14_000
    base, snv = seq[q - 1], _other(seq[q - 1])
    truth = _vcf(tmp_path / "t2.vcf", ["T"], [(q, base, snv, "0|1"), (q, base, base + "A", "0|1")])
    both = compare(truth, _vcf(tmp_path / "c2.vcf", ["S"], [(q, base, snv + "A", "0/1")]), ref)
    assert both.replayed == 1 and not both.false_negatives and not both.false_positives
    assert both.table().splitlines()[0].split()[:5] == ["type", "TP", "FP", "FN", "TP-call"]
