"""The Beacon engine (ingest, store, query, consent) against truth read with pysam.

Every answer — counts, allele counts and numbers, carriers, homozygotes, the ordered variants of
every page — is compared with :mod:`beacon_truth`, an independent reading of the same VCFs. The
shared 1000 Genomes files are ingested once per module; tests that change a dataset use their own.
"""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pysam
import pysam.bcftools
import pytest
from beacon_truth import (
    ACCESSION,
    QUERY_TYPES,
    Truth,
    hgvs_g,
    hgvs_g_3prime,
    hpo_descendants,
    minimal,
    parse_gt_field,
    read_gene_table,
    structural,
)
from conftest import CHR22_FASTA, DATA

from sandgrain.beacon import consent, query, variants
from sandgrain.beacon.ingest import ingest
from sandgrain.beacon.query import VariantQuery, query_individuals, query_variants
from sandgrain.beacon.request import parse_filters
from sandgrain.beacon.store import BeaconCatalog
from sandgrain.errors import InputError, NotFoundError
from sandgrain.fanout import open_executor
from sandgrain.genome.gene_tables import import_gene_table
from sandgrain.genome.store import add_genome
from sandgrain.storage import Store

VARIANTS = DATA / "variants"
CHR1 = VARIANTS / "1000g-chr1-10177-174799-2504samples.vcf.gz"
CHR1_ANN = VARIANTS / "1000g-chr1-10177-174799-2504samples.annotated.vcf.gz"
CHR22 = VARIANTS / "1000g-chr22-20-21M-191samples.vcf"
GENES = DATA / "genes" / "human-grch37-gene-coordinates.tsv"
FILES = {"c1": CHR1, "c1a": CHR1_ANN, "c22": CHR22}
CHROM = {"c1": "1", "c1a": "1", "c22": "22"}
EVERYTHING = {"start": 0, "end": 300_000_000}
HP_TERMS = ["HP:0001250", "HP:0000707", "HP:0001626"]
DISEASE = "NCIT:C3262"
FEMALE, MALE = "NCIT:C16576", "NCIT:C20197"
CHR22_LENGTH = 51_304_566  # GRCh37


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def truths(tmp_path_factory) -> dict[str, Truth]:
    scratch = tmp_path_factory.mktemp("truth")
    return {name: Truth.read(path, scratch) for name, path in FILES.items()}


@pytest.fixture(scope="module")
def people(tmp_path_factory, truths) -> SimpleNamespace:
    """A seeded metadata TSV for the chr22 file's 191 samples: sex, phenotypes, a disease."""
    rng = random.Random(22)
    rows, terms = [], {}
    for sample in truths["c22"].samples:
        sex = rng.choice(["male", "female"])
        hp = [t for t in HP_TERMS if rng.random() < 0.35]
        disease = [DISEASE] if rng.random() < 0.2 else []
        terms[sample] = {FEMALE if sex == "female" else MALE, *hp, *disease}
        labels = {"HP:0001250": "Seizure"}
        pheno = ";".join(f"{t}|{labels[t]}" if t in labels else t for t in hp)
        rows.append(f"{sample}\t{sex}\t{pheno}\t{';'.join(disease)}")
    path = tmp_path_factory.mktemp("meta") / "individuals.tsv"
    path.write_text("id\tsex\tphenotypicFeatures\tdiseases\n" + "\n".join(rows) + "\n")
    return SimpleNamespace(path=path, terms=terms)


@pytest.fixture(scope="module")
def beacon(tmp_path_factory, people) -> SimpleNamespace:
    """The shared files ingested once; a second store holds only the GRCh37 gene table."""
    root = tmp_path_factory.mktemp("beacon")
    store = Store(str(root / "store"))
    for name, path in FILES.items():
        meta = people.path if name == "c22" else None
        ingest(store, name, path, assembly="GRCh37", individuals=meta, executor="serial")
    genes = Store(str(root / "genes"))
    import_gene_table(genes, "GRCh37", GENES, GENES.read_bytes())
    return SimpleNamespace(
        store=store,
        catalog=BeaconCatalog([store], ttl=0),
        with_genes=BeaconCatalog([store, genes], ttl=0),
    )


@pytest.fixture(scope="module")
def local2():
    with open_executor("local:2") as ex:
        yield ex


# -- helpers ---------------------------------------------------------------------------------------
def ask(catalog, name, params=None, *, q=None, filters=(), page=1000, executor=None, **kw):
    """Every row of a query, page by page; checks that every page reports the same count."""
    ds = catalog.get(name)
    q = q or VariantQuery.from_params(params)
    rows, skip, count = [], 0, None
    while True:
        (a,) = query_variants(
            catalog, [ds], q, filters=filters, skip=skip, limit=page, executor=executor, **kw
        )
        assert count is None or a.count == count
        count = a.count
        rows.extend(a.rows)
        skip += page
        if skip >= count:
            break
        assert len(a.rows) == page
    assert len(rows) == count
    return count, rows


def row_tuple(r: dict) -> tuple:
    return (
        r["chrom"], r["start0"], r["ref"], r["alt"], r["end0"], r["variant_type"],
        r["ac"], r["an"], r["carriers"], r["hom"],
    )  # fmt: skip


def keys(rows) -> list[tuple]:
    return [(r["chrom"], r["start0"], r["ref"], r["alt"]) for r in rows]


def assert_rows(rows, expected_variants, mask=None):
    want = [v.row(mask) for v in expected_variants]
    if mask is not None:
        want = [w for w in want if w[-2] > 0]
    assert [row_tuple(r) for r in rows] == want


def picked(truth: Truth, mask: np.ndarray) -> list[str]:
    return [truth.samples[i] for i in np.flatnonzero(mask)]


# -- 1. the whole datasets -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["c1", "c1a", "c22"])
def test_every_stored_row_equals_truth(beacon, truths, name):
    truth = truths[name]
    count, rows = ask(beacon.catalog, name, {"referenceName": CHROM[name], **EVERYTHING}, page=317)
    assert count == len(truth.variants)
    stored = beacon.catalog.get(name).meta["n_variants"]
    assert stored in (len(truth.variants), len(truth.all_variants))
    assert [row_tuple(r) for r in rows] == truth.rows()
    for r, v in zip(rows, truth.variants, strict=True):
        assert r["ids"] == v.ids
        assert r["af"] == pytest.approx(v.counts()[0] / v.counts()[1])
        assert r["assembly"] == "GRCh37" and r["dataset"] == name
        plain = f"{v.chrom}-{v.start0 + 1}-{v.ref}-{v.alt}"
        if len(v.ref) + len(v.alt) <= 40 and not structural(v.alt):
            assert r["variant_id"] == plain
        else:
            assert r["variant_id"].startswith(f"{v.chrom}-{v.start0 + 1}-h")
    # the multi-allelic record of the plain chr1 file is split and trimmed
    if name == "c1":
        at = [row_tuple(r)[:4] for r in rows if r["start0"] in (66380, 66381)]
        assert ("1", 66380, "T", "A") in at and ("1", 66380, "TATATA", "T") in at
    # alleles nobody in the file carries are not answered (807 of chr22's 1,356 sites)
    gone = {v.key for v in truth.all_variants} - {v.key for v in truth.variants}
    assert not gone & set(keys(rows)) and len(gone) == {"c1": 1, "c1a": 1, "c22": 807}[name]


def test_record_carriers_equal_truth(beacon, truths):
    truth = truths["c22"]
    _, rows = ask(beacon.catalog, "c22", {"referenceName": "22", **EVERYTHING}, carriers=True)
    for r, v in zip(rows, truth.variants, strict=True):
        assert (r["carrier_ids"], r["carrier_dosage"]) == v.carriers(truth.samples)


def test_granularities_agree(beacon, truths):
    ds = beacon.catalog.get("c1")
    q = VariantQuery.from_params({"referenceName": "1", "start": 60000, "end": 70000})
    n = len(truths["c1"].range("1", 60000, 70000))
    for granularity in ("boolean", "count", "record"):
        (a,) = query_variants(beacon.catalog, [ds], q, granularity=granularity, limit=5)
        assert a.count == n
        assert len(a.rows) == (min(5, n) if granularity == "record" else 0)
    q = VariantQuery.from_params({"referenceName": "1", **EVERYTHING})
    (a,) = query_variants(beacon.catalog, [ds], q, limit=5000)
    assert a.count == len(truths["c1"].variants) and len(a.rows) == query.MAX_LIMIT


# -- 2. every query form ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["c1", "c22"])
def test_sequence_queries(beacon, truths, name):
    truth, chrom, rng = truths[name], CHROM[name], random.Random(7)
    chosen = rng.sample(truth.variants, 120) + [v for v in truth.variants if v.kind != "SNP"][:40]
    for v in chosen:
        if v.alt.startswith("<"):
            continue
        forms = [
            {"referenceBases": v.ref, "alternateBases": v.alt},
            {"alternateBases": v.alt},  # referenceBases omitted
            {"referenceBases": v.vcf_ref, "alternateBases": v.vcf_alt, "start": v.vcf_pos0},
        ]
        masked = "".join("N" if rng.random() < 0.5 else b for b in v.alt)
        forms.append({"alternateBases": masked})
        forms.append({"referenceBases": v.ref, "alternateBases": "N" * len(v.alt)})
        absent = next(b for b in "ACGT" if b != v.alt[-1] and b != v.ref[-1])
        forms.append({"referenceBases": v.ref, "alternateBases": v.alt[:-1] + absent})
        for form in forms:
            start = form.pop("start", v.start0)
            params = {"referenceName": chrom, "start": start, **form}
            want = truth.sequence(chrom, start, form["alternateBases"], form.get("referenceBases"))
            count, rows = ask(beacon.catalog, name, params)
            assert count == len(want), params
            assert_rows(rows, want)
        assert v in truth.sequence(chrom, v.vcf_pos0, v.vcf_alt, v.vcf_ref)
    # a position with no variant at all; a chromosome the dataset does not have
    nowhere = {"referenceName": chrom, "start": 1, "alternateBases": "A"}
    assert ask(beacon.catalog, name, nowhere)[0] == len(truth.sequence(chrom, 1, "A")) == 0
    assert ask(beacon.catalog, name, {**nowhere, "referenceName": "7"})[0] == 0


def test_sequence_query_chromosome_spellings(beacon, truths):
    v = truths["c1"].variants[0]
    for chrom in ("1", "chr1", "NC_000001.10", "refseq:NC_000001.10", "insdc:CM000663.1"):
        params = {"referenceName": chrom, "start": v.start0, "alternateBases": v.alt}
        assert ask(beacon.catalog, "c1", params)[0] == 1


def long_deletion_windows(truth: Truth, min_len: int = 6):
    """Windows inside long deletions that no other variant overlaps."""
    out = []
    for v in truth.variants:
        if v.kind != "DEL" or v.end0 - v.start0 < min_len:
            continue
        for s in range(v.start0 + 2, v.end0 - 1):
            hits = truth.range(v.chrom, s, s + 1)
            if all(h.start0 < s for h in hits):
                out.append((v, s, s + 1, hits))
                break
    return out


@pytest.mark.parametrize("name", ["c1", "c22"])
def test_range_queries(beacon, truths, name):
    truth, chrom = truths[name], CHROM[name]
    lo, hi = truth.variants[0].start0, truth.variants[-1].end0
    windows = [(lo, lo + 1), (lo - 10, lo), (lo, hi), (lo + 5000, lo + 5100), (hi - 1, hi + 10)]
    windows += [(s, s + 1) for v in truth.variants[100:110] for s in (v.start0, v.end0)]
    inside = long_deletion_windows(truth)
    assert inside, "the file has a long deletion overlapping a window alone"
    windows += [(s, e) for _, s, e, _ in inside]
    for s, e in windows:
        for vtype in (None, "SNP", "INDEL", "DEL", "INS"):
            params = {"referenceName": chrom, "start": max(s, 0), "end": e}
            if vtype:
                params["variantType"] = vtype
            count, rows = ask(beacon.catalog, name, params)
            want = truth.range(chrom, max(s, 0), e, vtype)
            assert count == len(want), params
            assert_rows(rows, want)
    for v, s, e, hits in inside:  # only variants starting before the window overlap it
        count, rows = ask(beacon.catalog, name, {"referenceName": chrom, "start": s, "end": e})
        assert v.key in keys(rows) and count == len(hits)
    for alt in ("A", "T", "NN", "N"):
        params = {"referenceName": chrom, "start": lo, "end": hi, "alternateBases": alt}
        count, rows = ask(beacon.catalog, name, params)
        assert_rows(rows, truth.range(chrom, lo, hi, alt=alt))


SV_VCF = """##fileformat=VCFv4.2
##contig=<ID=5,length=180915260>
##INFO=<ID=END,Number=1,Type=Integer,Description="End position">
##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">
##ALT=<ID=DEL,Description="Deletion">
##ALT=<ID=DUP,Description="Duplication">
##ALT=<ID=INV,Description="Inversion">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC\tD
5\t1000\tsnv1\tA\tG\t.\tPASS\t.\tGT\t0|1\t0|0\t1|1\t0|0
5\t1100\tdel1\tG\t<DEL>\t.\tPASS\tSVTYPE=DEL;END=6000\tGT\t0|1\t0|0\t0|0\t0|0
5\t1500\tsmalldel\tCAT\tC\t.\tPASS\t.\tGT\t0|0\t0|1\t0|0\t0|0
5\t2000\tdup1\tT\t<DUP>\t.\tPASS\tSVTYPE=DUP;END=2600\tGT\t0|0\t1|1\t0|0\t0|0
5\t2400\tins1\tA\tATTT\t.\tPASS\t.\tGT\t0|0\t0|0\t0|1\t0|0
5\t3000\tinv1\tC\t<INV>\t.\tPASS\tSVTYPE=INV;END=3900\tGT\t0|0\t0|0\t0|1\t0|0
5\t7000\tbnd1\tG\tG]5:9000]\t.\tPASS\tSVTYPE=BND\tGT\t0|0\t0|0\t0|0\t0|1
5\t8000\tdel2\tA\t<DEL>\t.\tPASS\tSVTYPE=DEL;END=8800\tGT\t0|0\t0|0\t0|0\t0|0
5\t8500\tsnv2\tT\tC\t.\tPASS\t.\tGT\t0|0\t0|0\t0|0\t1|0
5\t9500\tnoalt\tA\t.\t.\tPASS\t.\tGT\t0|0\t0|0\t0|0\t0|0
"""


@pytest.fixture(scope="module")
def sv_beacon(tmp_path_factory):
    root = tmp_path_factory.mktemp("sv")
    vcf = root / "sv.vcf"
    vcf.write_text(SV_VCF)
    store = Store(str(root / "store"))
    ingest(store, "sv", vcf, assembly="GRCh37", executor="serial")
    return BeaconCatalog([store], ttl=0), Truth.read(vcf, root)


def test_structural_variants(sv_beacon):
    catalog, truth = sv_beacon
    assert [v.kind for v in truth.variants] == [
        "SNP", "DEL", "DEL", "DUP", "INS", "INV", "BND", "SNP"
    ]  # fmt: skip
    everything = {"referenceName": "5", **EVERYTHING}
    count, rows = ask(catalog, "sv", everything)
    assert [row_tuple(r) for r in rows] == truth.rows()
    assert (rows[1]["start0"], rows[1]["end0"]) == (1099, 6000)  # END of <DEL>
    assert catalog.get("sv").meta["n_records"] == 10  # the ALT '.' record gives no row
    assert "5-8000-h" not in " ".join(r["variant_id"] for r in rows)  # nobody has del2
    for vtype in ("DEL", "INDEL", "INS", "DUP", "INV", "BND", "SNP"):
        count, rows = ask(catalog, "sv", {**everything, "variantType": vtype})
        assert keys(rows) == [v.key for v in truth.range("5", 0, 10**9, vtype)], vtype
    # windows only the structural variants overlap: inside <DEL>, <DUP>, <INV>
    for s, e in ((4000, 4100), (2500, 2550), (3200, 3300), (1100, 1101), (5999, 6000)):
        count, rows = ask(catalog, "sv", {"referenceName": "5", "start": s, "end": e})
        assert keys(rows) == [v.key for v in truth.range("5", s, e)] != []
    assert ask(catalog, "sv", {"referenceName": "5", "start": 6000, "end": 6900})[0] == 0
    # brackets: uncertain breakpoints of the deletion and the duplication
    for s1, s2, e1, e2 in ((1090, 1110, 5990, 6010), (1990, 2010, 2500, 2700), (0, 9000, 0, 4000)):
        params = {"referenceName": "5", "start": [s1, s2], "end": [e1, e2]}
        assert keys(ask(catalog, "sv", params)[1]) == [
            v.key for v in truth.bracket("5", s1, s2, e1, e2)
        ]


def test_structural_variant_types_select_structural_variants(sv_beacon):
    """variantType CNV or SV asks for structural variants, not for every small deletion or
    insertion (stored as DEL/INS too)."""
    catalog, truth = sv_beacon
    for vtype in ("CNV", "SV"):
        count, rows = ask(catalog, "sv", {"referenceName": "5", **EVERYTHING,
                                          "variantType": vtype})  # fmt: skip
        assert keys(rows) == [v.key for v in truth.range("5", 0, 10**9, vtype)], vtype


def test_reference_bases_narrow_a_range(beacon, truths):
    truth = truths["c1"]
    for ref in ("A", "C", "TATATA", "N", "NN"):
        params = {"referenceName": "1", **EVERYTHING, "referenceBases": ref}
        assert_rows(ask(beacon.catalog, "c1", params)[1], truth.range("1", 0, 300_000_000,
                                                                      ref=ref))  # fmt: skip


def test_bracket_queries(beacon, truths):
    truth = truths["c22"]
    sv = max(truth.variants, key=lambda v: v.end0 - v.start0)
    assert sv.end0 - sv.start0 > 5
    brackets = [(sv.start0 - 20, sv.start0 + 20, sv.end0 - 5, sv.end0 + 5)]
    rng = random.Random(3)
    for _ in range(30):
        s1 = rng.randrange(20_000_000, 20_100_000)
        s2 = s1 + rng.randrange(0, 3000)
        e1 = s1 + rng.randrange(0, 50)
        brackets.append((s1, s2, e1, e1 + rng.randrange(0, 4000)))
    for s1, s2, e1, e2 in brackets:
        params = {"referenceName": "22", "start": [s1, s2], "end": [e1, e2]}
        want = truth.bracket("22", s1, s2, e1, e2)
        count, rows = ask(beacon.catalog, "c22", params)
        assert count == len(want)
        assert_rows(rows, want)
    count, rows = ask(beacon.catalog, "c22", {"referenceName": "22", "start": list(brackets[0][:2]),
                                              "end": list(brackets[0][2:])})  # fmt: skip
    assert sv.key in keys(rows)


def test_gene_queries_with_a_gene_table(beacon, truths):
    table = read_gene_table(GENES)
    cases = {
        "c1": ["DDX11L1", "WASH7P", "OR4F5", "FAM138A", "LOC729737", "MIR6859-1", "TP53"],
        "c1a": ["OR4F5", "wash7p"],
        "c22": ["ARVCF", "TANGO2", "DGCR8", "MIR185", "TRMT2A", "MIR1306", "TP53"],
    }
    for name, genes in cases.items():
        for gene in genes:
            want = truths[name].overlapping(table[gene.upper()])
            count, rows = ask(beacon.with_genes, name, {"geneId": gene})
            assert count == len(want), (name, gene)
            assert_rows(rows, want)
        assert ask(beacon.with_genes, name, {"geneId": "NO_SUCH_GENE"})[0] == 0
    # with a variantType
    for vtype in ("SNP", "INDEL"):
        want = truths["c22"].overlapping(table["DGCR8"])
        count, rows = ask(beacon.with_genes, "c22", {"geneId": "DGCR8", "variantType": vtype})
        assert_rows(rows, [v for v in want if v.kind in QUERY_TYPES[vtype]])


def test_gene_narrowing_a_range_uses_the_gene_table(beacon, truths):
    """geneId beside start/end means the same genes as geneId alone: with a gene table, the
    variants overlapping the gene (the chr22 file has no annotations to match)."""
    table = read_gene_table(GENES)
    want = truths["c22"].overlapping(table["DGCR8"])
    params = {"geneId": "DGCR8", "referenceName": "22", "start": 20_080_000, "end": 20_090_000}
    count, rows = ask(beacon.with_genes, "c22", params)
    assert_rows(rows, [v for v in want if v.start0 < 20_090_000 and v.end0 > 20_080_000])
    assert count > 0


def test_gene_queries_from_annotations(beacon, truths):
    truth = truths["c1a"]
    names = {g for v in truth.variants for g in v.genes if not g.startswith("CHR_")}
    assert {"OR4F5", "WASH7P", "DDX11L1"} <= names
    for gene in sorted(names) + ["or4f5"]:
        want = truth.annotated_gene(gene)
        count, rows = ask(beacon.catalog, "c1a", {"geneId": gene})
        assert count == len(want) > 0, gene
        assert_rows(rows, want)
        for r, v in zip(rows, want, strict=True):
            assert set(r["genes"]) >= {g for g in v.genes if not g.startswith("CHR_")}
    assert ask(beacon.catalog, "c1a", {"geneId": "OR4F"})[0] == 0  # whole names only
    # the plain file has no annotations: nothing to match
    assert ask(beacon.catalog, "c1", {"geneId": "OR4F5"})[0] == 0


def test_aminoacid_change_queries(beacon, truths):
    truth = truths["c1a"]
    changes = sorted({(a, long) for v in truth.variants for a in v.aa for long in v.aa_long
                      if len(v.aa) == 1})  # fmt: skip
    assert len(changes) >= 20 and ("A133T", "p.Ala133Thr") in changes
    for short, long in changes:
        want = truth.aminoacid(short)
        assert want
        for form in (short, long, f"p.({long[2:]})"):
            for extra in ({}, {"geneId": "OR4F5"}):
                count, rows = ask(beacon.catalog, "c1a", {"aminoacidChange": form, **extra})
                expected = [v for v in want if not extra or "OR4F5" in v.genes]
                assert count == len(expected), (form, extra)
                assert_rows(rows, expected)
                for r in rows:
                    assert short in r["aa_changes"] and long in r["aa_changes"]
        v = want[0]  # a range narrowed by the change
        params = {"referenceName": "1", "start": v.start0 - 100, "end": v.end0 + 100,
                  "aminoacidChange": short}  # fmt: skip
        assert_rows(ask(beacon.catalog, "c1a", params)[1], want)
    assert ask(beacon.catalog, "c1a", {"aminoacidChange": "V600E"})[0] == 0


def hgvs_cases(truth: Truth, per_kind: int = 12):
    rng = random.Random(5)
    out = []
    for kind in ("SNP", "DEL", "INS", "MNP", "INDEL"):
        found = [v for v in truth.variants if v.kind == kind and not v.alt.startswith("<")]
        out += rng.sample(found, min(per_kind, len(found)))
    return out


@pytest.mark.parametrize("name", ["c1", "c22"])
def test_genomic_allele_short_form(beacon, truths, name):
    truth = truths[name]
    cases = hgvs_cases(truth)
    assert {v.kind for v in cases} >= {"SNP", "DEL", "INS"}
    for v in cases:
        texts = [hgvs_g(v), hgvs_g(v, accession=v.chrom)]
        if v.kind == "DEL":
            texts.append(hgvs_g(v, with_bases=True))
        for text in texts:
            want = [w for w in truth.variants if hgvs_g(w) == hgvs_g(v)]
            count, rows = ask(beacon.catalog, name, {"genomicAlleleShortForm": text})
            assert count == len(want), text
            assert_rows(rows, want)
    # a substitution that is not there
    v = next(v for v in truth.variants if v.kind == "SNP")
    other = next(b for b in "ACGT" if b not in (v.ref, v.alt))
    acc = ACCESSION[v.chrom]
    assert ask(beacon.catalog, name, {"genomicAlleleShortForm":
                                      f"{acc}:g.{v.start0 + 1}{v.ref}>{other}"})[0] == len(
        [w for w in truth.variants if w.start0 == v.start0 and w.alt == other])  # fmt: skip


def chr22_reference() -> tuple[str, int]:
    """The GRCh37 chr22:20,000,001-21,000,000 slice and its 0-based offset."""
    lines = CHR22_FASTA.read_text().split("\n")
    assert lines[0].startswith(">22:20000001-")
    return "".join(lines[1:]).upper(), 20_000_000


@pytest.fixture(scope="module")
def with_chr22_genome(tmp_path_factory) -> BeaconCatalog:
    """A store holding GRCh37 chromosome 22 at its real length (the shared 1 Mb slice in
    place, N elsewhere), and the chr22 file ingested there, its REF checked against it."""
    root = tmp_path_factory.mktemp("genome22")
    seq, offset = chr22_reference()
    fasta = root / "chr22.fa"
    with fasta.open("w") as fh:
        fh.write(">22\n")
        full = "N" * offset + seq
        full += "N" * (CHR22_LENGTH - len(full))
        fh.writelines(full[i : i + 100_000] + "\n" for i in range(0, len(full), 100_000))
    store = Store(str(root / "store"))
    add_genome(store, "grch37-chr22", str(fasta), assembly="GRCh37")
    ingest(store, "c22", CHR22, assembly="GRCh37", executor="serial")
    return BeaconCatalog([store], ttl=0)


def test_ref_checked_against_the_real_chromosome(with_chr22_genome, truths):
    ds = with_chr22_genome.get("c22")
    assert ds.meta["reference_genome"] == "grch37-chr22"
    assert ds.meta["ref_checked"] == ds.meta["n_records"] == 1356
    rows = ask(with_chr22_genome, "c22", {"referenceName": "22", **EVERYTHING})[1]
    assert [row_tuple(r) for r in rows] == truths["c22"].rows()


def test_genomic_allele_short_form_three_prime_rule(with_chr22_genome, truths):
    """HGVS describes indels in repeats at their most 3' position (and insertions of a copy as
    ``dup``), as ClinVar and VariantValidator write them; the same variant must be found (a
    GRCh37 genome is in the store, should the engine need the reference to shift alleles)."""
    truth = truths["c22"]
    seq, offset = chr22_reference()
    shifted = []
    for v in truth.variants:
        if v.kind in ("DEL", "INS") and not v.alt.startswith("<"):
            assert seq[v.start0 - offset : v.start0 - offset + len(v.ref)] == v.ref
            text = hgvs_g_3prime(v, seq, offset)
            if text != hgvs_g(v):
                shifted.append((v, text))
    assert len(shifted) > 20
    misses = []
    for v, text in shifted:
        count, rows = ask(with_chr22_genome, "c22", {"genomicAlleleShortForm": text})
        if v.key not in keys(rows):
            misses.append(text)
    assert not misses, f"{len(misses)}/{len(shifted)} 3'-rule HGVS forms missed: {misses[:4]}"


def test_variant_id_and_assembly(beacon, truths):
    ds = beacon.catalog.get("c1")
    (a,) = query_variants(beacon.catalog, [ds], VariantQuery(variant_id="1-10177-A-AC"))
    assert a.count == 1 and keys(a.rows) == [("1", 10176, "A", "AC")]
    _, rows = ask(beacon.catalog, "c1", {"referenceName": "1", **EVERYTHING})
    for r in random.Random(1).sample(rows, 40) + [r for r in rows if "-h" in r["variant_id"]]:
        count, got = ask(beacon.catalog, "c1", q=VariantQuery(variant_id=r["variant_id"]))
        assert count == 1 and got[0] == r
    assert ask(beacon.catalog, "c1", q=VariantQuery(variant_id="1-10177-A-G"))[0] == 0
    params = {"referenceName": "1", "start": 10000, "end": 20000}
    n = len(truths["c1"].range("1", 10000, 20000))
    assert ask(beacon.catalog, "c1", {**params, "assemblyId": "GRCh38"})[0] == 0
    assert ask(beacon.catalog, "c1", {**params, "assemblyId": "hg19"})[0] == n
    assert ask(beacon.catalog, "c1", {**params, "assemblyId": "GRCh37"})[0] == n


@pytest.mark.parametrize("name", ["c1", "c22"])
def test_random_queries(beacon, truths, name):
    truth, chrom, rng = truths[name], CHROM[name], random.Random(2024)
    lo, hi = truth.variants[0].start0 - 200, truth.variants[-1].end0 + 200
    for _ in range(130):
        page = rng.choice([1, 7, 50, 1000])
        if rng.random() < 0.6:
            s = rng.randrange(lo, hi)
            e = s + int(10 ** rng.uniform(0, 4.3))
            vtype = rng.choice([None, None, "SNP", "INDEL", "DEL", "INS"])
            params = {"referenceName": chrom, "start": s, "end": e}
            if vtype:
                params["variantType"] = vtype
            want = truth.range(chrom, s, e, vtype)
            if page == 1 and len(want) > 60:
                page = 50
        else:
            v = rng.choice(truth.variants)
            s = v.start0 if rng.random() < 0.8 else v.start0 + rng.choice([-1, 1])
            alt = v.alt if not v.alt.startswith("<") else "A"
            if rng.random() < 0.3:
                alt = rng.choice("ACGTN") * len(alt)
            params = {"referenceName": chrom, "start": s, "alternateBases": alt}
            if rng.random() < 0.5:
                params["referenceBases"] = v.ref if not v.alt.startswith("<") else "G"
            want = truth.sequence(chrom, s, alt, params.get("referenceBases"))
        count, rows = ask(beacon.catalog, name, params, page=page)
        assert count == len(want), params
        assert keys(rows) == [v.key for v in want], params


# -- 3. subsets: filters, consent, one individual -----------------------------------------------
def filter_mask(truth, people, terms) -> np.ndarray:
    """Who carries every term (or a term below it: descendant terms are included)."""
    below = [hpo_descendants(t) for t in terms]
    return np.array(
        [all(people.terms[s] & b for b in below) for s in truth.samples], dtype=bool
    )


@pytest.mark.parametrize(
    "terms", [[FEMALE], [MALE, "HP:0001250"], ["HP:0000707", DISEASE], [DISEASE, FEMALE, *HP_TERMS]]
)
def test_filters_count_only_those_individuals(beacon, truths, people, terms):
    truth = truths["c22"]
    mask = filter_mask(truth, people, terms)
    assert 0 < mask.sum() < len(mask) or terms[-1] == HP_TERMS[-1]
    params = {"referenceName": "22", **EVERYTHING}
    count, rows = ask(beacon.catalog, "c22", params, filters=terms, carriers=True, page=400)
    want = truth.rows(mask=mask)
    assert count == len(want)
    assert [row_tuple(r) for r in rows] == want
    carried = [v for v in truth.variants if (v.dose[mask] > 0).any()]
    for r, v in zip(rows, carried, strict=True):
        assert (r["carrier_ids"], r["carrier_dosage"]) == v.carriers(truth.samples, mask)
        assert r["af"] == pytest.approx(r["ac"] / r["an"])
    # a variant none of them carries vanishes from a sequence query
    gone = [v for v in truth.variants if not (v.dose[mask] > 0).any() and v.dose.any()]
    for v in gone[:5]:
        p = {"referenceName": "22", "start": v.start0, "referenceBases": v.ref,
             "alternateBases": v.alt}  # fmt: skip
        if v.alt.startswith("<"):
            continue
        assert ask(beacon.catalog, "c22", p)[0] == 1
        assert ask(beacon.catalog, "c22", p, filters=terms)[0] == 0
    # the filters given as Beacon filter objects work the same
    objs = [{"id": t} for t in terms]
    ds = beacon.catalog.get("c22")
    q = VariantQuery.from_params(params)
    (a,) = query_variants(beacon.catalog, [ds], q, filters=objs and parse_filters(objs))
    assert a.count == count


def test_unknown_filter_gives_nothing_and_a_warning(beacon):
    ds = beacon.catalog.get("c22")
    q = VariantQuery.from_params({"referenceName": "22", **EVERYTHING})
    (a,) = query_variants(beacon.catalog, [ds], q, filters=["HP:9999999"])
    assert a.count == 0 and a.rows == []
    assert any("HP:9999999" in w for w in a.warnings)
    (a,) = query_variants(beacon.catalog, [ds], q, filters=[FEMALE, "HP:9999999"])
    assert a.count == 0 and any("HP:9999999" in w for w in a.warnings)
    a = query_individuals(ds, filters=["HP:9999999"])
    assert a.count == 0


def test_query_individuals_follow_filters(beacon, truths, people):
    ds = beacon.catalog.get("c22")
    truth = truths["c22"]
    for terms in ([FEMALE], [MALE, "HP:0001250"]):
        mask = filter_mask(truth, people, terms)
        a = query_individuals(ds, filters=terms, limit=1000)
        assert a.count == mask.sum()
        assert [r["id"] for r in a.rows] == picked(truth, mask)
    (one,) = query_individuals(ds, individual_id=truth.samples[3]).rows
    assert one["id"] == truth.samples[3]
    assert {p["id"] for p in one["phenotypic_features"]} | {one["sex"]["id"]} | {
        d["id"] for d in one["diseases"]
    } == people.terms[truth.samples[3]]


def test_revoke_and_restore(beacon, truths):
    ds_name, truth, store = "c22", truths["c22"], beacon.store
    rare = next(v for v in truth.variants if 2 <= v.counts()[2] <= 3 and not v.alt.startswith("<"))
    gone, _ = rare.carriers(truth.samples)
    seq = {"referenceName": "22", "start": rare.start0, "referenceBases": rare.ref,
           "alternateBases": rare.alt}  # fmt: skip
    everything = {"referenceName": "22", **EVERYTHING}
    assert ask(beacon.catalog, ds_name, seq)[0] == 1
    try:
        consent.revoke(store, ds_name, gone[0], reason="test")
        mask = ~truth.mask(gone[:1])
        assert ask(beacon.catalog, ds_name, seq)[1][0]["carriers"] == len(gone) - 1
        assert [row_tuple(r) for r in ask(beacon.catalog, ds_name, everything)[1]] == truth.rows(
            mask=mask
        )
        for who in gone[1:]:
            consent.revoke(store, ds_name, who)
        mask = ~truth.mask(gone)
        assert ask(beacon.catalog, ds_name, seq) == (0, [])
        count, rows = ask(beacon.catalog, ds_name, everything, carriers=True)
        assert [row_tuple(r) for r in rows] == truth.rows(mask=mask)
        assert not {s for r in rows for s in r["carrier_ids"]} & set(gone)
        # counts drop everywhere: every range query agrees with truth without them
        for s in range(20_000_000, 20_100_000, 7_000):
            _, rows = ask(beacon.catalog, ds_name, {"referenceName": "22", "start": s,
                                                    "end": s + 9000})  # fmt: skip
            assert [row_tuple(r) for r in rows] == truth.rows(truth.range("22", s, s + 9000), mask)
        # individuals: never a revoked one, whatever the question
        ds = beacon.catalog.get(ds_name)
        ids = [r["id"] for r in query_individuals(ds, limit=1000).rows]
        assert len(ids) == len(truth.samples) - len(gone) and not set(ids) & set(gone)
        assert query_individuals(ds, individual_id=gone[0]).count == 0
        other = next(v for v in truth.variants if set(gone) < set(v.carriers(truth.samples)[0]))
        vid = ask(beacon.catalog, ds_name, {"referenceName": "22", "start": other.start0,
                                            "end": other.start0 + 1})[1]  # fmt: skip
        vid = next(r["variant_id"] for r in vid if (r["ref"], r["alt"]) == (other.ref, other.alt))
        carrying = query_individuals(ds, variant_id=vid, catalog=beacon.catalog, limit=1000)
        assert [r["id"] for r in carrying.rows] == other.carriers(truth.samples, mask)[0]
        assert ask(beacon.catalog, ds_name, q=VariantQuery(individual_id=gone[0]))[0] == 0
        # revoking twice is harmless; an unknown individual is an error
        consent.revoke(store, ds_name, gone[0])
        with pytest.raises(NotFoundError):
            consent.revoke(store, ds_name, "NA99999")
    finally:
        for who in gone:
            consent.restore(store, ds_name, who)
    assert consent.revoked(store, ds_name) == {}
    assert ask(beacon.catalog, ds_name, seq)[0] == 1
    rows = ask(beacon.catalog, ds_name, everything)[1]
    assert [row_tuple(r) for r in rows] == truth.rows()
    assert consent.restore(store, ds_name, gone[0]) is False


def test_revoked_and_filtered_together(beacon, truths, people):
    truth, store = truths["c22"], beacon.store
    mask = filter_mask(truth, people, [FEMALE])
    gone = picked(truth, mask)[:5]
    params = {"referenceName": "22", **EVERYTHING}
    try:
        for who in gone:
            consent.revoke(store, "c22", who)
        both = mask & ~truth.mask(gone)
        count, rows = ask(beacon.catalog, "c22", params, filters=[FEMALE])
        assert [row_tuple(r) for r in rows] == truth.rows(mask=both)
        ds = beacon.catalog.get("c22")
        a = query_individuals(ds, filters=[FEMALE], limit=1000)
        assert [r["id"] for r in a.rows] == picked(truth, both)
        page = query_individuals(ds, filters=[FEMALE], skip=7, limit=5)
        assert page.count == a.count and page.rows == a.rows[7:12]
    finally:
        for who in gone:
            consent.restore(store, "c22", who)


def test_metadata_as_csv_and_json(tmp_path, people):
    """The same individuals from TSV, CSV and JSON metadata."""
    import csv
    import json

    rows = list(csv.DictReader(people.path.open(), dialect="excel-tab"))
    as_csv = tmp_path / "m.csv"
    with as_csv.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    as_json = tmp_path / "m.json"
    as_json.write_text(json.dumps(rows))
    store = Store(str(tmp_path / "store"))
    got = []
    for meta in (people.path, as_csv, as_json):
        ingest(store, "m", CHR22, assembly="GRCh37", individuals=meta, executor="serial")
        ds = BeaconCatalog([store], ttl=0).get("m")
        got.append(query_individuals(ds, limit=1000).rows)
        for r in got[-1]:
            terms = {r["sex"]["id"]} | {t["id"] for t in r["phenotypic_features"] + r["diseases"]}
            assert terms == people.terms[r["id"]]
    assert got[0] == got[1] == got[2] and len(got[0]) == 191


def test_variants_of_one_individual(beacon, truths):
    truth = truths["c22"]
    for sample in random.Random(9).sample(truth.samples, 4):
        mask = truth.mask([sample])
        count, rows = ask(beacon.catalog, "c22", q=VariantQuery(individual_id=sample),
                          carriers=True)  # fmt: skip
        want = truth.rows(mask=mask)
        assert count == len(want) == len(truth.carried_by(sample))
        assert [row_tuple(r) for r in rows] == want
        assert all(r["carrier_ids"] == [sample] for r in rows)
        q = VariantQuery(reference_name="22", start=[20_040_000], end=[20_060_000],
                         individual_id=sample)  # fmt: skip
        _, rows = ask(beacon.catalog, "c22", q=q)
        assert [row_tuple(r) for r in rows] == truth.rows(
            truth.range("22", 20_040_000, 20_060_000), mask
        )
    assert ask(beacon.catalog, "c22", q=VariantQuery(individual_id="nobody"))[0] == 0


# -- 4. fan-out equals in-process ------------------------------------------------------------------
@pytest.fixture(scope="module")
def windowed(beacon, people, local2):
    """chr1 in 10 kb partitions (17: above the fan-out threshold), chr22 ingested on a process
    pool in 10 kb partitions with individuals."""
    ingest(beacon.store, "c1w", CHR1, assembly="GRCh37", window_bp=10_000, executor="serial")
    ingest(beacon.store, "c22w", CHR22, assembly="GRCh37", window_bp=10_000, executor=local2,
           individuals=people.path)  # fmt: skip
    return beacon.catalog


def test_windowed_ingest_equals_single_partition(windowed, beacon, truths):
    for name, whole in (("c1w", "c1"), ("c22w", "c22")):
        parts = windowed.get(name).meta["partitions"]
        assert len(parts) >= 10 and len(beacon.catalog.get(whole).meta["partitions"]) == 1
        params = {"referenceName": CHROM[whole], **EVERYTHING}
        a = ask(windowed, name, params, carriers=True)
        b = ask(beacon.catalog, whole, params, carriers=True)
        strip = lambda rows: [{k: v for k, v in r.items() if k != "dataset"} for r in rows]  # noqa: E731
        assert a[0] == b[0] and strip(a[1]) == strip(b[1])


@pytest.fixture
def fan_outs(monkeypatch) -> list:
    """Records every fan-out of a query (to prove the path was taken)."""
    calls, real = [], query._fan_out

    def spy(ds, q, filters, files, *args):
        calls.append(len(files))
        return real(ds, q, filters, files, *args)

    monkeypatch.setattr(query, "_fan_out", spy)
    return calls


def test_fan_out_equals_in_process(windowed, truths, local2, fan_outs):
    ds = windowed.get("c1w")
    assert len(ds.meta["partitions"]) > query.FANOUT_MIN_PARTITIONS
    truth = truths["c1"]
    sizes = np.cumsum([p["rows"] for p in ds.meta["partitions"]])
    q = VariantQuery.from_params({"referenceName": "1", **EVERYTHING})
    want = truth.rows()
    pages = [(0, 1000), (int(sizes[2]) - 5, 37), (int(sizes[8]) + 3, 300), (1040, 10), (2000, 5)]
    for skip, limit in pages:
        got = []
        for executor in (None, "serial", local2):
            (a,) = query_variants(windowed, [ds], q, skip=skip, limit=limit, executor=executor)
            assert a.count == len(want)
            assert [row_tuple(r) for r in a.rows] == want[skip : skip + limit]
            got.append(a.rows)
        assert got[0] == got[1] == got[2]
    assert len(fan_outs) == 2 * len(pages) and set(fan_outs) == {len(ds.meta["partitions"])}
    # the whole dataset through the pool, page by page
    assert [row_tuple(r) for r in ask(windowed, "c1w", q=q, page=113, executor=local2)[1]] == want


def test_fan_out_with_filters(windowed, truths, people, local2, monkeypatch, fan_outs):
    monkeypatch.setattr(query, "FANOUT_MIN_PARTITIONS", 2)
    monkeypatch.setattr(query, "PARTITIONS_PER_TASK", 3)
    truth = truths["c22"]
    mask = filter_mask(truth, people, [FEMALE])
    params = {"referenceName": "22", "start": 20_015_000, "end": 20_085_000}
    want = truth.rows(truth.range("22", 20_015_000, 20_085_000), mask)
    for executor in (None, "serial", local2):
        count, rows = ask(windowed, "c22w", params, filters=[FEMALE], page=97,
                          executor=executor, carriers=True)  # fmt: skip
        assert count == len(want)
        assert [row_tuple(r) for r in rows] == want
        carried = [v for v in truth.range("22", 20_015_000, 20_085_000) if v.dose[mask].any()]
        for r, v in zip(rows, carried, strict=True):
            assert (r["carrier_ids"], r["carrier_dosage"]) == v.carriers(truth.samples, mask)
    assert len(fan_outs) >= 2 and min(fan_outs) > query.FANOUT_MIN_PARTITIONS


# -- 5. input forms, replacement, bad input --------------------------------------------------------
def stored_rows(store: Store, name: str, chrom: str = "22") -> list[dict]:
    catalog = BeaconCatalog([store], ttl=0)
    rows = ask(catalog, name, {"referenceName": chrom, **EVERYTHING}, carriers=True)[1]
    return rows


def with_contig(tmp_path):
    """The chr22 file with the ##contig line BCF needs (the shared file has none)."""
    text = CHR22.read_text()
    cut = text.index("#CHROM")
    path = tmp_path / "x.vcf"
    path.write_text(text[:cut] + "##contig=<ID=22,length=51304566>\n" + text[cut:])
    return path


def test_input_forms_store_the_same_rows(tmp_path, truths):
    text = with_contig(tmp_path)
    plain_gz = tmp_path / "x.plain.vcf.gz"
    with open(text, "rb") as src, gzip.open(plain_gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    bgz = tmp_path / "x.bgz.vcf.gz"
    pysam.tabix_compress(str(text), str(bgz))
    indexed = tmp_path / "indexed.vcf.gz"
    pysam.tabix_compress(str(text), str(indexed))
    pysam.tabix_index(str(indexed), preset="vcf")
    assert (tmp_path / "indexed.vcf.gz.tbi").exists()
    bcf = tmp_path / "x.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(text), catch_stdout=False)
    store = Store(str(tmp_path / "store"))
    results = {}
    for path in (text, plain_gz, bgz, indexed, bcf):
        ingest(store, "forms", path, assembly="GRCh37", executor="serial")
        results[path.name] = stored_rows(store, "forms")
    reference = results.pop(text.name)
    assert [row_tuple(r) for r in reference] == truths["c22"].rows()
    for name, rows in results.items():
        assert rows == reference, name
    assert not list(tmp_path.glob("x.bgz.vcf.gz.*")), "the input folder is left alone"


def test_bcf_ingest_in_a_fresh_interpreter(tmp_path, truths):
    """BCF input through the command line in a new process (where nothing else has imported
    ``pysam.bcftools`` for the ingest)."""
    bcf = tmp_path / "x.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(with_contig(tmp_path)), catch_stdout=False)
    store = tmp_path / "store"
    args = ["--store", str(store), "--executor", "serial", "beacon", "ingest", "--dataset",
            "bcf", "--vcf", str(bcf), "--assembly", "GRCh37", "-q"]  # fmt: skip
    code = f"import sys; from sandgrain.cli import main; main({args!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-600:]
    assert [row_tuple(r) for r in stored_rows(Store(str(store)), "bcf")] == truths["c22"].rows()


def head_vcf(path_in, path_out, n_records: int, *, swap: int | None = None, edit=None):
    """The header and the first records of a VCF (optionally two swapped, or edited)."""
    lines = pysam.VariantFile(str(path_in)).header.__str__().splitlines(keepends=True)
    body = []
    with open(path_in) as fh:
        for line in fh:
            if not line.startswith("#"):
                body.append(line)
                if len(body) == n_records:
                    break
    if swap is not None:
        body[swap], body[swap + 1] = body[swap + 1], body[swap]
    if edit:
        body = [edit(i, line) for i, line in enumerate(body)]
    path_out.write_text("".join(lines) + "".join(body))
    return path_out


def test_reingest_replaces_atomically(tmp_path, truths):
    store = Store(str(tmp_path / "store"))
    ingest(store, "x", CHR22, assembly="GRCh37", executor="serial")
    first = store.open_dataset("beacon", "x").manifest["version"]
    small = head_vcf(CHR22, tmp_path / "small.vcf", 100)
    ingest(store, "x", small, assembly="GRCh37", executor="serial")
    second = store.open_dataset("beacon", "x").manifest["version"]
    assert second != first
    rows = stored_rows(store, "x")
    assert [row_tuple(r) for r in rows] == Truth.read(small, tmp_path).rows()
    assert not [k for k in store.list("beacon/x") if f"/{first}/" in f"/{k}/"]
    # a failed re-ingest leaves the current version as it was
    bad = head_vcf(CHR22, tmp_path / "bad.vcf", 50, swap=20)
    with pytest.raises(InputError):
        ingest(store, "x", bad, assembly="GRCh37", executor="serial")
    assert store.open_dataset("beacon", "x").manifest["version"] == second
    assert stored_rows(store, "x") == rows
    assert len({k.split("/")[2] for k in store.list("beacon/x") if k.count("/") >= 3}) == 1


def test_reingest_keeps_the_tier_unless_one_is_named(tmp_path):
    """Re-ingesting a controlled dataset (new calls of the same cohort) must not open it to the
    public because the command left --access out; a looser tier is only ever asked for."""
    store = Store(str(tmp_path / "store"))
    small = head_vcf(CHR22, tmp_path / "small.vcf", 100)

    def tier() -> str:
        return store.open_dataset("beacon", "x").meta["access"]

    ingest(store, "x", small, assembly="GRCh37", executor="serial")
    assert tier() == "public"  # a new dataset
    ingest(store, "x", small, assembly="GRCh37", executor="serial", access="controlled")
    assert tier() == "controlled"
    ingest(store, "x", small, assembly="GRCh37", executor="serial")
    assert tier() == "controlled"  # kept
    ingest(store, "x", small, assembly="GRCh37", executor="serial", access="public")
    assert tier() == "public"  # named


def test_reingest_while_a_server_holds_the_old_listing(tmp_path, truths):
    """A catalog that listed the dataset before a re-ingest (its listing is cached for ``ttl``
    seconds) still answers afterwards — from the old version or the new, never an error."""
    store = Store(str(tmp_path / "store"))
    ingest(store, "x", CHR22, assembly="GRCh37", window_bp=10_000, executor="serial")
    catalog = BeaconCatalog([store], ttl=60)
    first = {"referenceName": "22", "start": 20_000_000, "end": 20_010_000}
    assert ask(catalog, "x", first)[0] == len(truths["c22"].range("22", 20_000_000, 20_010_000))
    ingest(store, "x", CHR22, assembly="GRCh37", window_bp=10_000, executor="serial")
    later = {"referenceName": "22", "start": 20_050_000, "end": 20_060_000}
    count, rows = ask(catalog, "x", later)
    assert_rows(rows, truths["c22"].range("22", 20_050_000, 20_060_000))


def test_partition_cache_stays_within_its_bytes(tmp_path, truths):
    """Decoded partitions are cached up to ``cache_bytes``: a scan over many partitions (with
    their genotype columns) evicts the oldest, and the answers stay exact."""
    store = Store(str(tmp_path / "store"))
    ingest(store, "x", CHR22, assembly="GRCh37", window_bp=10_000, executor="serial")
    catalog = BeaconCatalog([store], cache_bytes=200_000)
    person = truths["c22"].samples[0]
    q = VariantQuery(individual_id=person)
    count, rows = ask(catalog, "x", q=q)
    assert_rows(rows, truths["c22"].carried_by(person), truths["c22"].mask([person]))
    sizes = [p.nbytes for p in catalog._parts.values()]
    assert len(store.open_dataset("beacon", "x").meta["partitions"]) > len(sizes) >= 1
    assert sum(sizes) <= max(200_000, max(sizes))
    assert catalog._cached_bytes == sum(sizes)


def tiny_genome(tmp_path, store: Store) -> str:
    rng = random.Random(11)
    seq = "".join(rng.choice("ACGT") for _ in range(5000))
    fasta = tmp_path / "tiny.fa"
    fasta.write_text(">7\n" + "\n".join(seq[i : i + 60] for i in range(0, 5000, 60)) + "\n")
    add_genome(store, "tiny", str(fasta), assembly="GRCh37")
    return seq


def tiny_vcf(path, seq: str, wrong_at: int | None = None):
    rng = random.Random(12)
    head = (
        "##fileformat=VCFv4.2\n##contig=<ID=7,length=5000>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\ts3\n"
    )
    lines = []
    for i, pos in enumerate(range(100, 4900, 200)):
        ref = seq[pos - 1 : pos + 1]
        if i == wrong_at:
            ref = ref[0] + next(b for b in "ACGT" if b != ref[1])
        alt = ref[0]
        gts = "\t".join(rng.choice(["0|0", "0|1", "1|1", "./."]) for _ in range(3))
        lines.append(f"7\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t{gts}\n")
    path.write_text(head + "".join(lines))
    return path


def test_ref_is_checked_against_a_stored_genome(tmp_path):
    store = Store(str(tmp_path / "store"))
    seq = tiny_genome(tmp_path, store)
    good = ingest(store, "ok", tiny_vcf(tmp_path / "ok.vcf", seq), assembly="hg19",
                  executor="serial")  # fmt: skip
    assert good.meta["reference_genome"] == "tiny" and good.meta["ref_checked"] == 24
    with pytest.raises(InputError) as err:
        ingest(store, "bad", tiny_vcf(tmp_path / "bad.vcf", seq, wrong_at=5), assembly="GRCh37",
               executor="serial")  # fmt: skip
    assert "7:1100" in str(err.value) and "\n" not in str(err.value)
    assert store.dataset_names("beacon") == ["ok"]
    # another assembly is not checked against it
    other = ingest(store, "b38", tmp_path / "bad.vcf", assembly="GRCh38", executor="serial")
    assert other.meta["reference_genome"] is None


def test_ref_check_with_windows_past_the_chromosome_end(tmp_path):
    """Windows are planned over 1 Mb or more of every contig; those starting beyond the stored
    chromosome's end hold no records and must not stop the ingest."""
    store = Store(str(tmp_path / "store"))
    seq = tiny_genome(tmp_path, store)
    vcf = tiny_vcf(tmp_path / "ok.vcf", seq)
    ds = ingest(store, "ok", vcf, assembly="GRCh37", window_bp=10_000, executor="serial")
    assert ds.meta["ref_checked"] == 24
    assert [row_tuple(r) for r in stored_rows(store, "ok", "7")] == Truth.read(vcf, tmp_path).rows()


@pytest.mark.parametrize(
    "case",
    [
        "not_vcf",
        "empty",
        "truncated_gzip",
        "truncated_bgzf",
        "unsorted",
        "unsorted_chroms",
        "bad_genotype",
        "short_row",
        "repeated_sample",
        "missing",
        "meta_unknown_sample",
        "meta_twice",
        "meta_missing",
    ],  # fmt: skip
)
def test_bad_inputs_store_nothing(tmp_path, case):
    store = Store(str(tmp_path / "store"))
    vcf, meta = tmp_path / "in.vcf", None
    expected = InputError
    if case == "not_vcf":
        vcf.write_text("chrom\tpos\nhello\tworld\n")
    elif case == "empty":
        vcf.write_bytes(b"")
    elif case == "truncated_gzip":
        data = gzip.compress(CHR22.read_bytes())
        vcf = tmp_path / "in.vcf.gz"
        vcf.write_bytes(data[: len(data) // 2])
    elif case == "truncated_bgzf":
        vcf = tmp_path / "in.vcf.gz"
        pysam.tabix_compress(str(CHR22), str(vcf))
        data = vcf.read_bytes()
        vcf.write_bytes(data[: len(data) // 2])
    elif case == "unsorted":
        head_vcf(CHR22, vcf, 200, swap=150)
    elif case == "unsorted_chroms":
        head_vcf(CHR22, vcf, 30, edit=lambda i, line: "1" + line[2:] if i == 10 else line)
    elif case == "bad_genotype":
        head_vcf(CHR22, vcf, 30, edit=lambda i, line: line.replace("\t0/0:", "\t0/x:", 1))
    elif case == "short_row":
        head_vcf(CHR22, vcf, 30, edit=lambda i, line: line.rsplit("\t", 1)[0] + "\n" if i == 7
                 else line)  # fmt: skip
    elif case == "repeated_sample":
        head_vcf(CHR22, vcf, 30)
        text = vcf.read_text().replace("\tHG00097\t", "\tHG00096\t", 1)
        vcf.write_text(text)
    elif case == "missing":
        vcf, expected = tmp_path / "nope.vcf", NotFoundError
    elif case.startswith("meta"):
        head_vcf(CHR22, vcf, 30)
        meta = tmp_path / "meta.tsv"
        if case == "meta_unknown_sample":
            meta.write_text("id\tsex\nHG00096\tmale\nNOT_A_SAMPLE\tfemale\n")
        elif case == "meta_twice":
            meta.write_text("id\tsex\nHG00096\tmale\nHG00096\tfemale\n")
        else:
            meta, expected = tmp_path / "none.tsv", NotFoundError
    with pytest.raises(expected) as err:
        ingest(store, "bad", vcf, assembly="GRCh37", individuals=meta, executor="serial")
    message = str(err.value)
    assert message and "\n" not in message.strip() and len(message) < 400, message
    assert store.dataset_names("beacon") == []


@pytest.mark.parametrize("case", ["unsorted", "unsorted_chroms"])
def test_unsorted_input_is_named_as_such(tmp_path, case):
    vcf = tmp_path / "in.vcf"
    if case == "unsorted":
        head_vcf(CHR22, vcf, 200, swap=150)
    else:
        head_vcf(CHR22, vcf, 30, edit=lambda i, line: "1" + line[2:] if i == 10 else line)
    store = Store(str(tmp_path / "store"))
    with pytest.raises(InputError) as err:
        ingest(store, "bad", vcf, assembly="GRCh37", executor="serial")
    message = str(err.value)
    assert "sort" in message.lower() and "sandgrain-beacon-" not in message, message
    assert store.dataset_names("beacon") == []


@pytest.mark.parametrize(
    "params",
    [
        {"start": 5, "alternateBases": "A"},
        {"referenceName": "1", "start": 10, "end": 10},
        {"referenceName": "1", "start": 10, "end": 9},
        {"referenceName": "1", "start": 10, "alternateBases": "XYZ"},
        {"referenceName": "1", "start": 10, "referenceBases": "A-", "alternateBases": "T"},
        {"referenceName": "1", "start": 10, "end": 20, "variantType": "FOO"},
        {"referenceName": "1", "start": -1, "end": 20},
        {"referenceName": "1", "start": "x", "end": 20},
        {"referenceName": "1", "start": 10},
        {"referenceName": "1", "start": [10, 20], "end": [30]},
        {"referenceName": "1", "start": [20, 10], "end": [30, 40]},
        {"genomicAlleleShortForm": "NC_000001.10:g.abc"},
        {"genomicAlleleShortForm": "NC_000001.10:g.100_105insA"},
        {"genomicAlleleShortForm": "1:g.100_101delins"},
        {"genomicAlleleShortForm": "1:g.100_102delAC"},
        {"notAParameter": 1},
        {},
    ],
)
def test_bad_query_parameters(params):
    with pytest.raises(InputError) as err:
        VariantQuery.from_params(params)
    assert "\n" not in str(err.value)


def test_bad_paging(beacon):
    ds = beacon.catalog.get("c1")
    q = VariantQuery(variant_id="1-10177-A-AC")
    for kw in ({"skip": -1}, {"limit": -1}, {"granularity": "aggregated"}):
        with pytest.raises(InputError):
            query_variants(beacon.catalog, [ds], q, **kw)


# -- the command line ------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    from sandgrain.cli import main

    monkeypatch.setenv("SANDGRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SANDGRAIN_STORE", raising=False)
    monkeypatch.delenv("SANDGRAIN_BEACON_CONFIG", raising=False)
    store = tmp_path / "store"

    def run(*args) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_:
            main(["--store", str(store), "--executor", "serial", *map(str, args)])
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    run.store = Store(str(store))
    run.audit = tmp_path / "home" / "sandgrain.sqlite"
    return run


def test_cli_ingest_revoke_restore(cli, people, truths):
    truth = truths["c22"]
    code, out, err = cli("beacon", "ingest", "--dataset", "cli22", "--vcf", CHR22, "--assembly",
                         "GRCh37", "--individuals", people.path, "-q")  # fmt: skip
    assert code == 0, err
    assert "549 variants" in out and "1,356 records" in out and "191 individuals" in out
    code, out, _ = cli("beacon", "genes", GENES, "--assembly", "GRCh37")
    assert code == 0 and "26,292 genes" in out
    catalog = BeaconCatalog([cli.store], ttl=0)
    table = read_gene_table(GENES)
    assert ask(catalog, "cli22", {"geneId": "TANGO2"})[0] == len(truth.overlapping(table["TANGO2"]))
    rare = next(v for v in truth.variants if v.counts()[2] == 1 and not v.alt.startswith("<"))
    (who,), _ = rare.carriers(truth.samples)
    seq = {"referenceName": "22", "start": rare.start0, "alternateBases": rare.alt}
    assert ask(catalog, "cli22", seq)[0] == 1
    code, out, err = cli("beacon", "revoke", "--dataset", "cli22", "--individual", who,
                         "--reason", "withdrew")  # fmt: skip
    assert code == 0, err
    assert ask(catalog, "cli22", seq)[0] == 0
    mask = ~truth.mask([who])
    rows = ask(catalog, "cli22", {"referenceName": "22", **EVERYTHING})[1]
    assert [row_tuple(r) for r in rows] == truth.rows(mask=mask)
    code, _, err = cli("beacon", "restore", "--dataset", "cli22", "--individual", who)
    assert code == 0, err
    assert ask(catalog, "cli22", seq)[0] == 1
    from sandgrain.beacon.audit import AuditLog

    for kind in ("revoke", "restore"):
        (event,) = AuditLog(cli.audit).events(kind=kind)
        assert event["query"]["individual"] == who and event["datasets"] == ["cli22"]
    # errors: one line on stderr, non-zero status
    code, out, err = cli("beacon", "restore", "--dataset", "cli22", "--individual", who)
    assert code != 0 and err.count("\n") == 1 and err.startswith("sandgrain: error:")
    code, _, err = cli("beacon", "revoke", "--dataset", "cli22", "--individual", "NOBODY")
    assert code != 0 and err.count("\n") == 1 and "NOBODY" in err
    code, _, err = cli("beacon", "list", "--json")
    assert code == 0
    code, _, _ = cli("beacon", "remove", "cli22")
    assert code == 0 and cli.store.dataset_names("beacon") == []


def test_cli_bad_file(cli, tmp_path):
    bad = tmp_path / "bad.vcf"
    bad.write_text("this is not a VCF\n")
    code, out, err = cli("beacon", "ingest", "--dataset", "x", "--vcf", bad, "--assembly",
                         "GRCh37", "-q")  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "bad.vcf" in err, err
    code, _, err = cli("beacon", "ingest", "--dataset", "x", "--vcf", tmp_path / "none.vcf",
                       "--assembly", "GRCh37", "-q")  # fmt: skip
    assert code != 0 and err.count("\n") == 1 and "none.vcf" in err
    code, _, err = cli("beacon", "ingest", "--dataset", "x", "--vcf", CHR22, "--assembly",
                       "GRCh37", "--access", "secret", "-q")  # fmt: skip
    assert code != 0 and err.count("\n") == 1 and "access" in err
    assert cli.store.dataset_names("beacon") == []


# -- 6. genotype decoding --------------------------------------------------------------------------
def random_genotypes(rng: random.Random, n: int, shape: str, n_alts: int) -> list[str]:
    def allele():
        if rng.random() < 0.08:
            return "."
        return str(rng.choice([0, 0, 0, *range(1, n_alts + 1)]))

    fields = []
    for _ in range(n):
        if shape == "diploid_phased":
            fields.append(f"{allele()}|{allele()}")
        elif shape == "diploid_unphased":
            fields.append(f"{allele()}/{allele()}")
        elif shape == "haploid":
            fields.append(allele())
        else:  # mixed ploidy and separators, whole-sample missing
            ploidy = rng.choice([1, 2, 2, 3])
            gt = allele()
            for _ in range(ploidy - 1):
                gt += rng.choice("|/") + allele()
            fields.append(rng.choice([gt, gt, gt, ".", "./."]))
    return fields


def plain_matrix(fields: list[str]) -> np.ndarray:
    calls = [parse_gt_field(f) for f in fields]
    width = max(len(c) for c in calls)
    out = np.full((len(calls), width), -2, dtype=np.int16)
    for i, call in enumerate(calls):
        for j, a in enumerate(call):
            out[i, j] = -1 if a is None else a
    return out


SHAPES = ["diploid_phased", "diploid_unphased", "haploid", "mixed"]


@pytest.mark.parametrize("shape", SHAPES)
def test_genotype_kernel_equals_a_plain_parse(shape):
    rng = random.Random(SHAPES.index(shape))
    for _ in range(60):
        n = rng.randrange(1, 300)
        n_alts = rng.choice([1, 2, 3, 12])  # ≥ 10: two-digit allele numbers
        gts = random_genotypes(rng, n, shape, n_alts)
        with_extra = rng.random() < 0.5
        if with_extra:
            fmt = "GT:AD:DP"
            columns = [f"{g}:{rng.randrange(40)},{rng.randrange(40)}:{rng.randrange(99)}"
                       for g in gts]  # fmt: skip
        else:
            fmt, columns = "GT", gts
        text = "\t".join(columns)
        want = plain_matrix(gts)
        # the compiled kernel the ingest uses, against the plain parse
        g = variants.Genotypes(text, n, fmt, n_alts)
        called = (want >= 0).sum(axis=1)
        assert np.array_equal(g.called, called) and g.an == called.sum()
        for k in range(1, n_alts + 1):
            dose = (want == k).sum(axis=1)
            idx, d = g.per_alt[k - 1]
            assert list(idx) == list(np.flatnonzero(dose)) and list(d) == list(dose[dose > 0])
        # what the exceptions to the usual ploidy record rebuilds every sample's count
        rebuilt = np.full(n, g.ploidy)
        rebuilt[g.exc_idx] = g.exc_called
        assert np.array_equal(rebuilt, called)


def test_decode_genotypes_rejects_bad_columns():
    with pytest.raises(ValueError):
        variants.Genotypes("0|1\t1|x", 2, "GT", 1)
    with pytest.raises(ValueError):
        variants.Genotypes("0|1\t1|1\t0|0", 2, "GT", 1)
    with pytest.raises(ValueError):
        variants.Genotypes("0|1\t1|3", 2, "GT", 2)
    with pytest.raises(ValueError):
        variants.Genotypes("0|1", 2, "GT", 1)
    g = variants.Genotypes("12|3\t0/10", 2, "GT", 12)
    assert [list(i) for i, _ in g.per_alt if len(i)] == [[0], [1], [0]]  # alleles 3, 10, 12


def synthetic_vcf(path, rng: random.Random, n_samples: int = 40, n_records: int = 80):
    """Mixed ploidy, missing calls, up to 12 ALT alleles (a spanning deletion among them),
    alleles that need trimming, GT:AD:DP columns."""
    samples = [f"S{i:03d}" for i in range(n_samples)]
    head = (
        "##fileformat=VCFv4.2\n##contig=<ID=3,length=1000000>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Depths">\n'
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples) + "\n"
    )
    lines = []
    pos = 1000
    for r in range(n_records):
        pos += rng.randrange(1, 40)
        ref = "".join(rng.choice("ACGT") for _ in range(rng.choice([1, 1, 3, 6])))
        n_alts = rng.choice([1, 1, 2, 3, 12])
        alts: list[str] = []
        while len(alts) < n_alts:
            a = ref[0] + "".join(rng.choice("ACGT") for _ in range(rng.randrange(0, 5)))
            a = a + ref[-2:] if rng.random() < 0.3 and len(ref) > 2 else a
            if a != ref and a not in alts:
                alts.append(a)
        if n_alts > 1 and rng.random() < 0.3:
            alts[rng.randrange(n_alts)] = "*"
        shape = rng.choice(SHAPES)
        gts = random_genotypes(rng, n_samples, shape, n_alts)
        cols = "\t".join(f"{g}:{rng.randrange(9)}:{rng.randrange(30)}" for g in gts)
        lines.append(f"3\t{pos}\tv{r}\t{ref}\t{','.join(alts)}\t.\tPASS\t.\tGT:AD:DP\t{cols}\n")
    path.write_text(head + "".join(lines))
    return path, samples


def test_synthetic_genotypes_end_to_end(tmp_path):
    """Odd genotypes through the whole ingest, then subsets (one individual, revoked ones)
    whose allele numbers need the per-sample ploidy exceptions."""
    vcf, samples = synthetic_vcf(tmp_path / "synthetic.vcf", random.Random(77))
    truth = Truth.read(vcf, tmp_path)
    uncarried = {v.key for v in truth.all_variants} - {v.key for v in truth.variants}
    assert uncarried  # alleles nobody carries: not answered
    store = Store(str(tmp_path / "store"))
    ingest(store, "syn", vcf, assembly="GRCh37", executor="serial")
    catalog = BeaconCatalog([store], ttl=0)
    everything = {"referenceName": "3", **EVERYTHING}
    count, rows = ask(catalog, "syn", everything, carriers=True, page=41)
    assert [row_tuple(r) for r in rows] == truth.rows()
    for r, v in zip(rows, truth.variants, strict=True):
        assert (r["carrier_ids"], r["carrier_dosage"]) == v.carriers(truth.samples)
    for who in samples[:6]:
        _, rows = ask(catalog, "syn", q=VariantQuery(individual_id=who))
        assert [row_tuple(r) for r in rows] == truth.rows(mask=truth.mask([who]))
    gone = random.Random(1).sample(samples, 9)
    for who in gone:
        consent.revoke(store, "syn", who)
    _, rows = ask(catalog, "syn", everything)
    assert [row_tuple(r) for r in rows] == truth.rows(mask=~truth.mask(gone))


def test_minimal_representation_rule():
    """The documented rule, and the truth's re-implementation of it, agree."""
    rng = random.Random(4)
    for _ in range(2000):
        ref = "".join(rng.choice("ACGT") for _ in range(rng.randrange(1, 6)))
        alt = "".join(rng.choice("ACGT") for _ in range(rng.randrange(1, 6)))
        pos = rng.randrange(1000)
        assert variants.minimal_representation(pos, ref, alt) == minimal(pos, ref, alt)
