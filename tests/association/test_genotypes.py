"""Genotypes from VCF/BCF: 2-bit packing, the multi-allelic split, missing and haploid calls, the
store round trip, imputation and the trait table — each against a plain reading."""

from __future__ import annotations

import numpy as np
import pysam
import pytest
from conftest import DATA

from sandgrain.association.genotypes import (
    MISSING,
    GenotypeMatrix,
    import_vcf,
    impute,
    pack,
    parse_genotypes,
    unpack,
)
from sandgrain.association.phenotypes_table import load_traits
from sandgrain.errors import InputError, NotFoundError
from sandgrain.storage import Store

VS = DATA / "association" / "variantspark"
CHR22 = VS / "chr22_1000.vcf.gz"

TOY_VCF = """##fileformat=VCFv4.2
##contig=<ID=1,length=1000>
##contig=<ID=X,length=1000>
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC\tD\tE
1\t10\trs1\tA\tG\t.\tPASS\t.\tGT\t0|0\t0|1\t1|1\t./.\t1/0
1\t20\t.\tC\tT,G\t.\tPASS\t.\tGT:DP\t1/2:3\t2/2:4\t0/1:5\t./1:1\t0/0:9
1\t30\trs3\tT\t.\t.\tPASS\t.\tGT\t0/0\t0/0\t0/0\t0/0\t0/0
X\t40\trs4\tG\tA\t.\tPASS\t.\tGT\t1\t0\t.\t1/1\t0/1
"""
# Expected dosages, one row per alt allele (the T,G site split in two, the no-ALT site skipped).
TOY_DOSAGES = np.array(
    [
        [0, 1, 2, MISSING, 1],
        [1, 0, 1, MISSING, 0],  # copies of T
        [1, 2, 0, MISSING, 0],  # copies of G
        [2, 0, MISSING, 2, 1],  # haploid 1 → 2, 0 → 0
    ],
    dtype=np.uint8,
)


def plain_dosage(gt: tuple, k: int) -> int:
    """One call's dosage of alt ``k`` by the module's rules, written out case by case."""
    if gt is None or len(gt) == 0 or any(a is None for a in gt):
        return MISSING
    if len(gt) == 1:
        return 2 if gt[0] == k else 0
    return sum(a == k for a in gt)


@pytest.fixture
def toy(tmp_path):
    plain = tmp_path / "toy.vcf"
    plain.write_text(TOY_VCF)
    bgz = tmp_path / "toy.vcf.gz"
    pysam.tabix_compress(str(plain), str(bgz))
    bcf = tmp_path / "toy.bcf"
    with (
        pysam.VariantFile(str(plain)) as src,
        pysam.VariantFile(str(bcf), "wb", header=src.header) as dst,
    ):
        for rec in src:
            dst.write(rec)
    return {"vcf": plain, "bgz": bgz, "bcf": bcf}


def test_pack_round_trip_any_sample_count():
    rng = np.random.default_rng(0)
    for n in (1, 3, 4, 5, 17, 1092):
        block = rng.integers(0, 4, size=(7, n), dtype=np.uint8)
        packed = pack(block)
        assert packed.shape == (7, (n + 3) // 4)
        assert np.array_equal(unpack(packed, n), block)


@pytest.mark.parametrize("kind", ["vcf", "bgz", "bcf"])
def test_toy_vcf_split_missing_haploid(toy, kind):
    m = GenotypeMatrix.from_vcf(toy[kind])
    assert m.samples == ["A", "B", "C", "D", "E"]
    assert m.variants["alt"].to_pylist() == ["G", "T", "G", "A"]
    assert m.variants["pos"].to_pylist() == [10, 20, 20, 40]
    assert m.variants["id"].to_pylist() == ["rs1", ".", ".", "rs4"]
    assert np.array_equal(m.dosages(0, 4), TOY_DOSAGES)
    blocks = list(m.iter_blocks(3))
    assert [s for s, _ in blocks] == [0, 3]
    assert np.array_equal(np.concatenate([b for _, b in blocks]), TOY_DOSAGES)


def test_sample_subset_and_order(toy):
    m = GenotypeMatrix.from_vcf(toy["bgz"], samples=["E", "A"])
    assert np.array_equal(m.dosages(0, 4), TOY_DOSAGES[:, [4, 0]])
    with pytest.raises(InputError, match="not in the VCF"):
        GenotypeMatrix.from_vcf(toy["bgz"], samples=["Z"])


def test_slow_parser_multi_digit_alleles():
    # 11 alts: allele 10 and 11 take the general path; "0/10" gives one copy of alt 10.
    text = "0/10\t10|10\t11/.\t1/1"
    out = parse_genotypes(text, "GT", 11, 4)
    assert out[9].tolist() == [1, 2, MISSING, 0]
    assert out[10].tolist() == [0, 0, MISSING, 0]
    assert out[0].tolist() == [0, 0, MISSING, 2]
    with pytest.raises(InputError, match="ploidy"):
        parse_genotypes("0/1/1", "GT", 1, 1)


def test_chr22_equals_plain_pysam_reading():
    """The fast parser against pysam's own GT tuples on real 1000 Genomes data (plain gzip,
    which htslib reads through a pipe)."""
    m = GenotypeMatrix.from_vcf(CHR22)
    assert (m.n_variants, m.n_samples) == (1988, 1092)
    rows = []
    with _plain_open(CHR22) as vf:
        for i, rec in enumerate(vf):
            if i == 300:
                break
            for k in range(1, len(rec.alts) + 1):
                rows.append([plain_dosage(s["GT"], k) for s in rec.samples.values()])
    assert np.array_equal(m.dosages(0, len(rows)), np.array(rows, dtype=np.uint8))


def _plain_open(path):
    """pysam on a decompressed copy (htslib will not open plain gzip by name)."""
    import gzip
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".vcf", delete=False) as tmp, gzip.open(path) as src:
        tmp.write(src.read())
    return pysam.VariantFile(tmp.name)


def test_import_into_store_two_bits_per_call(tmp_path, toy):
    store = Store(str(tmp_path / "store"))
    m = import_vcf(store, CHR22, "chr22")
    ds = store.open_dataset("genotypes", "chr22")
    assert ds.manifest["files"]["genotypes.bin"]["size"] == 1988 * ((1092 + 3) // 4)
    assert ds.meta["n_variants"] == 1988 and ds.manifest["provenance"]["inputs"][0]["sha256"]
    memory = GenotypeMatrix.from_vcf(CHR22)
    again = GenotypeMatrix.open(store, "chr22")
    assert again.samples == memory.samples == m.samples
    assert again.variants.equals(memory.variants)
    assert np.array_equal(again.dosages(100, 700), memory.dosages(100, 700))
    with pytest.raises(NotFoundError, match="association import"):
        GenotypeMatrix.open(store, "nope")
    # The assembly: from the header (chr22_1000 has ##reference=GRCh37), or as told.
    assert ds.meta["assembly"] == "GRCh37"
    import_vcf(store, toy["bgz"], "toy")  # its header names none
    assert "assembly" not in store.open_dataset("genotypes", "toy").meta
    import_vcf(store, toy["bgz"], "toy", replace=True, assembly="hg38")
    assert store.open_dataset("genotypes", "toy").meta["assembly"] == "GRCh38"


def test_impute_mean_and_mode():
    block = np.array([[0, 2, MISSING, 2], [MISSING] * 4, [1, 1, 0, MISSING]], dtype=np.uint8)
    mean = impute(block)
    assert mean[0].tolist() == [0, 2, 4 / 3, 2]
    assert mean[1].tolist() == [0, 0, 0, 0]
    assert mean[2].tolist() == [1, 1, 0, 2 / 3]
    assert impute(block, "mode")[0, 2] == 2 and impute(block, "mode")[2, 3] == 1
    with pytest.raises(InputError):
        impute(block, "median")


def test_load_traits_csv_tsv_missing_binary(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("id,score,label,age\nA,1.5,1,30\nB,2.5,0,\nC,NA,1,40\nD,4,0,50\n")
    y, x, names, kept = traits = load_traits(csv, "label", ["age"], ["D", "A", "B", "C", "Z"])
    # B lacks age, Z is not in the table; C's missing score does not matter for label.
    assert kept.tolist() == [0, 1, 3] and y.tolist() == [0, 1, 1]
    assert x[:, 0].tolist() == [50, 30, 40]
    assert names == ["age"] and traits.binary and sorted(traits.dropped) == ["B", "Z"]
    tsv = tmp_path / "t.tsv"
    tsv.write_text(csv.read_text().replace(",", "\t").replace("id", "sample"))
    q = load_traits(tsv, "score", [], ["A", "B", "C", "D"])
    assert not q.binary and q.kept.tolist() == [0, 1, 3]
    with pytest.raises(InputError, match="no column"):
        load_traits(csv, "height", [], ["A"])
    csv.write_text("sample,x\nA,tall\n")
    with pytest.raises(InputError, match="non-numeric"):
        load_traits(csv, "x", [], ["A"])
