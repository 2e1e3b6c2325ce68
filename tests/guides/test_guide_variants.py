"""Known variants in guide sites, read from a VCF streamed or through its index, equal a plain
overlap of the VCF's lines with the sites; checked on 1000 Genomes variants of a human chr22
slice."""

from __future__ import annotations

import re
import shutil

import pysam
import pytest
from conftest import CHR22_FASTA, DATA

from sandgrain.errors import InputError
from sandgrain.guides.variants import VariantOverlaps

VCF = DATA / "variants/1000g-chr22-20-21M-191samples.vcf"
OFFSET = 20_000_000  # the slice is chr22:20,000,001-21,000,000


@pytest.fixture(scope="module")
def chr22() -> str:
    lines = CHR22_FASTA.read_text().splitlines()
    assert lines[0] == ">22:20000001-21000000"
    return "".join(lines[1:]).upper()


@pytest.fixture(scope="module")
def sites(chr22) -> list[tuple]:
    """Every SpCas9 site (20 nt + NGG) of the slice, both strands, in chr22 coordinates,
    named the UCSC way (``chr22``) while the VCF says ``22``."""
    out = []
    for m in re.finditer(r"(?=[ACGT]{21}GG)", chr22):
        s = m.start() + OFFSET
        out.append(("chr22", s, s + 20, s + 20, s + 23))
    for m in re.finditer(r"(?=CC[ACGT]{21})", chr22):
        s = m.start() + OFFSET
        out.append(("chr22", s + 3, s + 23, s, s + 3))
    return out


def reference_overlaps(vcf_text: str, sites: list[tuple], chrom: str) -> list[list[tuple]]:
    """Per site, the VCF lines whose reference span touches it, as (pos, id, ref, alts, where):
    every base each record covers (POS to POS + len(REF) − 1, or to INFO END for structural
    variants), looked up base by base for each site."""
    covering: dict[int, list[tuple]] = {}
    for line in vcf_text.splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        pos, ref = int(f[1]), f[3]
        rec = (pos, None if f[2] == "." else f[2], ref, f[4].split(","))
        end = re.search(r"(?:^|;)END=(\d+)", f[7])
        for b in range(pos - 1, int(end.group(1)) if end else pos - 1 + len(ref)):
            covering.setdefault(b, []).append(rec)
    out = []
    for c, s0, s1, p0, p1 in sites:
        assert c == chrom
        in_pam = {r for b in range(p0, p1) for r in map(_key, covering.get(b, []))}
        in_proto = {r for b in range(s0, s1) for r in map(_key, covering.get(b, []))}
        found = [(*r, "pam") for r in in_pam] + [(*r, "protospacer") for r in in_proto - in_pam]
        out.append(sorted(found))
    return out


def _key(rec: tuple) -> tuple:
    pos, vid, ref, alts = rec
    return pos, vid, ref, tuple(alts)


def as_tuples(found: list[list[dict]]) -> list[list[tuple]]:
    return [sorted((v["pos"], v["id"], v["ref"], tuple(v["alt"]), v["in"]) for v in vs)
            for vs in found]  # fmt: skip


@pytest.fixture(scope="module")
def indexed_vcf(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("vcf")
    shutil.copy(VCF, tmp / "chr22.vcf")
    return pysam.tabix_index(str(tmp / "chr22.vcf"), preset="vcf", force=True)


def test_streamed_vcf_equals_plain_overlap(sites, chr22):
    overlaps = VariantOverlaps(VCF)
    assert not overlaps.indexed
    got = overlaps.for_sites(sites)
    want = reference_overlaps(VCF.read_text(), sites, "chr22")
    assert as_tuples(got) == want
    flagged = [vs for vs in got if vs]
    assert len(flagged) > 1000
    assert {v["in"] for vs in flagged for v in vs} == {"pam", "protospacer"}
    for vs in flagged:
        for v in vs:
            assert v["chrom"] == "chr22"
            at = v["pos"] - 1 - OFFSET
            assert chr22[at : at + len(v["ref"])] == v["ref"]  # the VCF's REF is the genome's
            assert v["af"] is None or 0 <= v["af"] <= 1


def test_indexed_vcf_gives_the_same_answer(sites, indexed_vcf):
    overlaps = VariantOverlaps(indexed_vcf)
    assert overlaps.indexed and overlaps.contigs == ["22"]
    assert overlaps.for_sites(sites) == VariantOverlaps(VCF).for_sites(sites)


@pytest.mark.parametrize("name", ["22", "chr22"])
def test_chromosome_names_meet_and_unknown_ones_give_nothing(name, indexed_vcf):
    # rs138720731 (T>C) lies at 22:20,000,086; a site on the minus strand with it in its PAM
    site = (name, 20_000_088, 20_000_108, 20_000_085, 20_000_088)
    other = ("chr1", 20_000_088, 20_000_108, 20_000_085, 20_000_088)
    for path in (VCF, indexed_vcf):
        here, there = VariantOverlaps(path).for_sites([site, other])
        assert [(v["chrom"], v["pos"], v["id"], v["in"]) for v in here] == [
            (name, 20_000_086, "rs138720731", "pam")
        ]
        assert there == []


def test_deletions_multiallelic_records_and_chr_prefixes(tmp_path):
    vcf = tmp_path / "small.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n"
        "##contig=<ID=chrX,length=1000>\n"
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        "chrX\t95\tdel1\tACGTACGT\tA\t.\tPASS\tAF=0.5\n"  # spans 94..102 (0-based)
        "chrX\t110\t.\tG\tA,T\t.\tPASS\tAF=0.1,0.2\n"
        "chrX\t124\tpam1\tC\tG\t.\tPASS\t.\n"
        "chrX\t200\tfar\tC\tG\t.\tPASS\t.\n"
    )
    sites = [("X", 100, 120, 120, 123), ("X", 103, 123, 123, 126), ("X", 150, 170, 170, 173)]
    first, second, third = VariantOverlaps(vcf).for_sites(sites)
    assert [(v["id"], v["in"], v["alt"], v["af"]) for v in first] == [
        ("del1", "protospacer", ["A"], [0.5]),
        (None, "protospacer", ["A", "T"], [0.1, 0.2]),
    ]
    assert [(v["id"], v["in"]) for v in second] == [(None, "protospacer"), ("pam1", "pam")]
    assert third == []
    compressed = pysam.tabix_index(str(vcf), preset="vcf", force=True)
    assert VariantOverlaps(compressed).for_sites(sites) == [first, second, third]


def test_sites_without_pam_and_bad_input(tmp_path):
    assert VariantOverlaps(VCF).for_sites([("22", 20_000_080, 20_000_090, None, None)]) == [
        [
            {"chrom": "22", "pos": 20_000_086, "id": "rs138720731", "ref": "T", "alt": ["C"],
             "in": "protospacer", "af": 0.0032}
        ]
    ]  # fmt: skip
    assert VariantOverlaps(VCF).for_sites([]) == []
    with pytest.raises(InputError, match="does not exist"):
        VariantOverlaps(tmp_path / "missing.vcf")
    bad = tmp_path / "bad.vcf"
    bad.write_text("this is not a VCF\n")
    with pytest.raises(InputError, match="VCF"):
        VariantOverlaps(bad)
    with pytest.raises(InputError, match="not \\(chrom"):
        VariantOverlaps(VCF).for_sites([("22", 5)])
    with pytest.raises(InputError, match="empty or negative"):
        VariantOverlaps(VCF).for_sites([("22", 10, 5, None, None)])
