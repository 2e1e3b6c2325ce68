"""Guide design on the real yeast genome: what the document says agrees with the genome, the
search, the gene table and the score functions called directly."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest

from sandgrain.errors import InputError, NotFoundError
from sandgrain.genome.regions import reverse_complement
from sandgrain.genome.store import open_genome
from sandgrain.guides import design_guides, score_guides
from sandgrain.guides.annotate import annotate_site
from sandgrain.guides.design import GUIDE_FIELDS
from sandgrain.guides.formats import to_bed, to_casoffinder, to_json, to_tsv
from sandgrain.guides.nucleases import get_nuclease
from sandgrain.guides.scores import (
    cfd_site_score,
    cfd_specificity,
    mit_site_score,
    mit_specificity,
    ruleset1,
)
from sandgrain.guides.search import search_offtargets
from sandgrain.guides.siteindex import SiteFamily, build_index

SPCAS9 = get_nuclease("SpCas9")
FAMILY = SiteFamily.of(SPCAS9)
REQUIRED = {
    "sequence", "pam", "chrom", "start", "end", "strand", "cut", "gc", "tttt", "masked",
    "ruleset1", "mit_specificity", "cfd_specificity", "offtarget_counts", "offtargets_total",
    "offtargets", "offtargets_listed_truncated", "rank", "score",
}  # fmt: skip
OFFTARGET_KEYS = {
    "chrom", "start", "end", "strand", "sequence", "pam", "mismatches", "mismatch_positions",
    "mit", "cfd", "annotation",
}  # fmt: skip


@pytest.fixture(scope="module")
def indexed(yeast):
    build_index(yeast, FAMILY, executor="serial", partition_bp=4_000_000)
    return yeast


@pytest.fixture(scope="module")
def ade2(indexed):
    return design_guides(indexed, gene="ADE2", executor="serial")


@pytest.fixture(scope="module")
def tef1(indexed):
    """TEF1 and TEF2 code for the same protein: plenty of exonic off-targets in another gene."""
    return design_guides(indexed, gene="TEF1", executor="serial")


def differences(a: str, b: str) -> list[int]:
    """0-based positions where two equally long sequences differ."""
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


def site_of(genome, guide: dict) -> str:
    """Protospacer + PAM read back from the genome on the guide's strand."""
    start0, end0, plen = guide["start"] - 1, guide["end"], len(guide["pam"])
    if guide["strand"] == "+":
        return genome.sequence(guide["chrom"], start0, end0 + plen).upper()
    return reverse_complement(genome.sequence(guide["chrom"], start0 - plen, end0).upper())


def test_document_shape_and_guides_read_back(ade2, indexed):
    assert {"provenance", "genome", "target", "nuclease", "guides"} <= set(ade2)
    assert ade2["genome"] == "yeast" and ade2["nuclease"]["name"] == "SpCas9"
    assert ade2["target"]["type"] == "gene" and ade2["target"]["name"] == "ADE2"
    gene = indexed.gene("ADE2")
    guides = ade2["guides"]
    assert len(guides) > 50
    assert [g["rank"] for g in guides] == list(range(1, len(guides) + 1))
    for g in guides:
        assert set(g) >= REQUIRED and tuple(g) == GUIDE_FIELDS
        assert all(set(o) >= OFFTARGET_KEYS for o in g["offtargets"])
        assert site_of(indexed, g) == g["sequence"] + g["pam"]
        assert g["pam"].endswith("GG") and g["end"] - g["start"] + 1 == 20
        assert gene.start0 <= g["cut"] <= gene.end0
    prov = ade2["provenance"]
    assert prov["command"] == "guides design" and prov["parameters"]["max_mismatches"] == 4
    genome_input, index_input = prov["inputs"]
    manifest = indexed.dataset.manifest
    assert genome_input["version"] == manifest["version"]
    assert genome_input["sha256"] == manifest["files"]["sequence.fa.gz"]["sha256"]
    assert index_input["source"] == "siteindex:yeast.NGG.20.3p"
    json.loads(to_json(ade2))  # JSON-able as it is


def test_on_target_is_excluded_and_counts_are_exact(ade2, indexed):
    guides = ade2["guides"]
    raw = search_offtargets(indexed, [g["sequence"] for g in guides], FAMILY, 4, executor="serial")
    for g, sites in zip(guides, raw, strict=True):
        site0 = g["start"] - 1 if g["strand"] == "+" else g["start"] - 1 - 3
        own = [s for s in sites if (s.chrom, s.pos0, s.strand, s.mismatches) == (
            g["chrom"], site0, g["strand"], 0)]  # fmt: skip
        assert len(own) == 1, g["sequence"]
        want = Counter(s.mismatches for s in sites if s is not own[0])
        assert g["offtarget_counts"] == [want[m] for m in range(5)]
        assert g["offtargets_total"] == len(sites) - 1 == len(g["offtargets"])
        recount = Counter(o["mismatches"] for o in g["offtargets"])
        assert g["offtarget_counts"] == [recount[m] for m in range(5)]
        classes = Counter(o["annotation"]["class"] for o in g["offtargets"])
        assert [g[f"offtargets_{c}"] for c in ("exon", "intron", "intergenic")] == [
            classes["exon"],
            classes["intron"],
            classes["intergenic"],
        ]
        assert g["offtargets_listed_truncated"] is False
    # most ADE2 guides are unique in the genome: their own site is not an off-target
    assert sum(g["offtarget_counts"][0] == 0 for g in guides) > len(guides) // 2


def test_scores_equal_the_score_functions(ade2):
    checked = 0
    for g in ade2["guides"]:
        mits, cfds = [], []
        for o in g["offtargets"]:
            assert o["mit"] == pytest.approx(mit_site_score(g["sequence"], o["sequence"]))
            assert o["cfd"] == pytest.approx(cfd_site_score(g["sequence"], o["sequence"], o["pam"]))
            mismatched = [i + 1 for i in differences(g["sequence"], o["sequence"])]
            assert o["mismatch_positions"] == mismatched and len(mismatched) == o["mismatches"]
            assert o["sequence"] == o["sequence"].upper()
            mits.append(o["mit"])
            cfds.append(o["cfd"])
            checked += 1
        assert g["mit_specificity"] == pytest.approx(mit_specificity(mits))
        assert g["cfd_specificity"] == pytest.approx(cfd_specificity(cfds))
        assert g["score"] == g["cfd_specificity"]
        if g["context30"]:
            assert g["ruleset1"] == pytest.approx(ruleset1(g["context30"]))
            assert g["context30"][4:27] == g["sequence"] + g["pam"]
    assert checked > 20


def test_offtargets_read_back_from_genome(tef1, indexed):
    for g in tef1["guides"][:20]:
        for o in g["offtargets"]:
            proto = indexed.sequence(o["chrom"], o["start"] - 1, o["end"], o["strand"]).upper()
            assert proto == o["sequence"]


def brute_force_annotation(genes, chrom, start0, end0):
    """Every gene checked, every exon checked: the obvious way."""
    hits = [g for g in genes if g.chrom == chrom and g.start0 < end0 and g.end0 > start0]
    if not hits:
        return {"class": "intergenic", "genes": []}
    exonic = any(
        s < end0 and e > start0 for g in hits for s, e in (g.exons or [(g.start0, g.end0)])
    )
    return {"class": "exon" if exonic else "intron", "genes": [g.symbol for g in hits]}


def test_annotation_of_offtargets_in_another_gene(tef1, indexed):
    genes = indexed.genes
    in_tef2 = [
        o
        for g in tef1["guides"]
        for o in g["offtargets"]
        if o["annotation"] == {"class": "exon", "genes": ["TEF2"]}
    ]
    assert len(in_tef2) > 10
    tef2 = indexed.gene("TEF2")
    for o in in_tef2:
        assert o["chrom"] == tef2.chrom and tef2.start0 < o["end"] and o["start"] <= tef2.end0
    # a perfect copy in TEF2 is an off-target (only the guide's own site is excluded)
    assert any(g["offtarget_counts"][0] > 0 for g in tef1["guides"])
    for g in tef1["guides"]:
        for o in g["offtargets"]:
            want = brute_force_annotation(genes, o["chrom"], o["start"] - 1, o["end"])
            assert o["annotation"] == want
    # and the function on its own, for an intron and for nothing
    intron = next(g for g in genes if len(g.exons) > 1)
    (s0, e0), (s1, _) = intron.exons[:2]
    assert annotate_site(genes, intron.chrom, e0, e0 + 5)["class"] in ("intron", "exon")
    assert brute_force_annotation(genes, intron.chrom, e0, e0 + 5) == annotate_site(
        genes, intron.chrom, e0, e0 + 5
    )
    assert annotate_site(genes, "no-such-chrom", 0, 20) == {"class": "intergenic", "genes": []}


def test_ranking_puts_flagged_guides_last(tef1):
    guides = tef1["guides"]
    flagged = [g["tttt"] or g["offtarget_counts"][0] > 0 for g in guides]
    assert any(flagged) and not all(flagged)
    assert flagged == sorted(flagged)  # False (unflagged) first
    clean = [g for g, f in zip(guides, flagged, strict=True) if not f]
    rounded = [round(g["score"]) for g in clean]
    assert rounded == sorted(rounded, reverse=True)


def test_listing_truncation_keeps_counts_exact(tef1, indexed):
    cut = design_guides(indexed, gene="TEF1", executor="serial", max_offtargets_listed=1)
    for full, short in zip(tef1["guides"], cut["guides"], strict=True):
        assert short["sequence"] == full["sequence"]
        assert short["offtarget_counts"] == full["offtarget_counts"]
        assert short["cfd_specificity"] == pytest.approx(full["cfd_specificity"])
        assert short["offtargets_listed_truncated"] == (full["offtargets_total"] > 1)
        assert short["offtargets"] == full["offtargets"][:1]


def test_region_and_sequence_targets(ade2, indexed):
    gene = indexed.gene("ADE2")
    start0, end0 = gene.start0 + 100, gene.start0 + 400
    region = design_guides(indexed, region=f"XV:{start0 + 1}-{end0}", executor="serial")
    assert region["target"]["type"] == "region" and region["guides"]
    text = indexed.sequence("XV", start0, end0)
    seq = design_guides(indexed, sequence=text, executor="serial")
    assert seq["target"] == {
        "type": "sequence",
        "name": "sequence",
        "length": 300,
        "regions": [{"chrom": "sequence", "start": 1, "end": 300, "strand": "+"}],
    }
    by_site = {(g["sequence"], g["strand"]): g for g in region["guides"]}
    assert seq["guides"]
    for g in seq["guides"]:
        # coordinates in the sequence; nothing excluded, so the guide's genome copy counts
        twin = by_site[(g["sequence"], g["strand"])]
        assert twin["start"] == g["start"] + start0
        assert g["offtarget_counts"][0] == twin["offtarget_counts"][0] + 1
        assert g["offtarget_counts"][1:] == twin["offtarget_counts"][1:]
        assert g["mit_specificity"] < 51  # its own perfect site scores 100


def test_fasta_target(indexed, tmp_path):
    text = indexed.sequence("XV", 564600, 564800)
    path = tmp_path / "t.fa"
    path.write_text(f">ade2_piece some description\n{text[:100]}\n{text[100:]}\n>tiny\nACGT\n")
    doc = design_guides(indexed, fasta=str(path), executor="serial")
    assert doc["target"]["type"] == "fasta"
    assert [r["chrom"] for r in doc["target"]["regions"]] == ["ade2_piece", "tiny"]
    assert doc["guides"] and {g["chrom"] for g in doc["guides"]} == {"ade2_piece"}
    with pytest.raises(InputError, match="not a FASTA file"):
        (tmp_path / "bad.fa").write_text("ACGT\n")
        design_guides(indexed, fasta=str(tmp_path / "bad.fa"), executor="serial")
    with pytest.raises(InputError, match="no such file"):
        design_guides(indexed, fasta=str(tmp_path / "missing.fa"), executor="serial")
    with pytest.raises(InputError, match="limit"):
        design_guides(indexed, fasta=str(path), executor="serial", max_target_bp=50)


def test_score_guides_excludes_nothing(ade2, indexed):
    chosen = [g["sequence"] for g in ade2["guides"][:3]] + ["ACGTACGTACGTACGTACGT"]
    doc = score_guides(indexed, [s.lower() for s in chosen], executor="serial")
    assert doc["target"]["type"] == "guides"
    assert [g["sequence"] for g in doc["guides"]] == chosen  # input order, ranks set
    assert sorted(g["rank"] for g in doc["guides"]) == [1, 2, 3, 4]
    for g, designed in zip(doc["guides"][:3], ade2["guides"][:3], strict=True):
        assert g["offtarget_counts"][0] == designed["offtarget_counts"][0] + 1
        assert g["offtargets_total"] == designed["offtargets_total"] + 1
        assert g["chrom"] is None and g["ruleset1"] is None
        cfds = [o["cfd"] for o in g["offtargets"]]
        assert g["cfd_specificity"] == pytest.approx(cfd_specificity(cfds))
    per_guide = score_guides(
        indexed, chosen[:2], guide_mismatches=[0, None], max_mismatches=3, executor="serial"
    )
    first, second = per_guide["guides"]
    assert all(o["mismatches"] == 0 for o in first["offtargets"])
    assert len(first["offtarget_counts"]) == 1 and len(second["offtarget_counts"]) == 4
    assert per_guide["max_mismatches"] == 3
    row = next(csv.DictReader(io.StringIO(to_tsv(per_guide)), delimiter="\t"))
    assert [row[f"mm{m}"] for m in range(4)] == ["1", "", "", ""]  # mm1…mm3 not searched


def test_other_nucleases_get_counts_not_cas9_scores(demo_store):
    sars = open_genome(demo_store, "sars-cov-2")
    cas12a = get_nuclease("AsCas12a")
    build_index(sars, SiteFamily.of(cas12a), executor="serial")
    doc = design_guides(sars, gene="S", nuclease="AsCas12a", max_mismatches=3, executor="serial")
    assert doc["guides"] and doc["nuclease"]["pam_side"] == "5"
    for g in doc["guides"]:
        assert g["mit_specificity"] is g["cfd_specificity"] is g["ruleset1"] is None
        assert len(g["sequence"]) == 23 and g["pam"][:3] == "TTT"
        total = sum(n * 100 / 4**m for m, n in enumerate(g["offtarget_counts"]))
        assert g["score"] == pytest.approx(100 * 100 / (100 + total))
        for o in g["offtargets"]:
            assert o["mit"] is None and o["cfd"] is None
            # counted from the PAM-distal end, the 3' end for a 5' PAM
            mismatched = [23 - i for i in differences(g["sequence"], o["sequence"])]
            assert o["mismatch_positions"] == sorted(mismatched)
    bed = to_bed(doc).splitlines()
    for line in bed[1:]:
        chrom, s, e, name, score, strand, ts, te = line.split("\t")
        assert int(e) - int(s) == 27 and int(te) - int(ts) == 23
        # the PAM lies 5' of the protospacer: left of it on +, right of it on -
        assert (int(ts) - int(s), int(e) - int(te)) == ((4, 0) if strand == "+" else (0, 4))


def test_tsv_columns_are_the_json_keys(ade2):
    rows = list(csv.reader(io.StringIO(to_tsv(ade2)), delimiter="\t"))
    header, body = rows[0], rows[1:]
    keys = [k for k in ade2["guides"][0] if k != "offtargets"]
    i = keys.index("offtarget_counts") + 1
    assert header == keys[:i] + [f"mm{m}" for m in range(5)] + keys[i:]
    assert len(body) == len(ade2["guides"])
    for row, g in zip(body, ade2["guides"], strict=True):
        cells = dict(zip(header, row, strict=True))
        assert cells["sequence"] == g["sequence"] and int(cells["start"]) == g["start"]
        assert [int(cells[f"mm{m}"]) for m in range(5)] == g["offtarget_counts"]
        assert cells["offtarget_counts"] == ",".join(map(str, g["offtarget_counts"]))
        assert cells["tttt"] in ("true", "false")
        assert float(cells["cfd_specificity"]) == pytest.approx(g["cfd_specificity"], rel=1e-6)
    empty = to_tsv({**ade2, "guides": []}).splitlines()
    assert len(empty) == 1 and "mm4" in empty[0]


def test_bed_track(ade2):
    lines = to_bed(ade2).splitlines()
    assert lines[0].startswith("track name=") and "useScore=1" in lines[0]
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == len(ade2["guides"])
    by_name = {r[3]: r for r in rows}
    for g in ade2["guides"]:
        chrom, s, e, name, score, strand, ts, te = by_name[
            f"{g['rank']}_{g['sequence']}_{g['pam']}"
        ]
        assert (chrom, strand) == (g["chrom"], g["strand"])
        assert (int(ts), int(te)) == (g["start"] - 1, g["end"])  # 0-based, half-open
        assert int(e) - int(s) == 23 and 0 <= int(score) <= 1000
        assert int(score) == round(10 * g["cfd_specificity"])
    starts = [(r[0], int(r[1])) for r in rows]
    assert starts == sorted(starts)


def test_casoffinder_rows(ade2, indexed):
    guides = [g["sequence"] for g in ade2["guides"] if g["offtargets_total"]][:4]
    results = search_offtargets(indexed, guides, FAMILY, 4, executor="serial")
    text = to_casoffinder(results, guides, SPCAS9)
    rows = [line.split("\t") for line in text.splitlines()]
    assert len(rows) == sum(map(len, results)) > len(guides)
    flat = [s for sites in results for s in sites]
    for row, site in zip(rows, flat, strict=True):
        query, chrom, pos, seq, strand, mm = row
        guide = guides[site.guide]
        assert query == guide + "NNN"
        assert (chrom, int(pos), strand, int(mm)) == (
            site.chrom,
            site.pos0,
            site.strand,
            site.mismatches,
        )
        lower = [i for i, c in enumerate(seq) if c.islower()]
        assert lower == [i for i in range(20) if guide[i] != seq[i].upper()]
        assert len(lower) == site.mismatches
        read = indexed.sequence(chrom, int(pos), int(pos) + 23, strand).upper()
        assert seq.upper() == read
    truncated = to_casoffinder(results, guides, SPCAS9, max_listed=1).splitlines()
    assert len(truncated) == len(guides)


def test_bad_requests(indexed, demo_store):
    with pytest.raises(InputError, match="exactly one target"):
        design_guides(indexed, executor="serial")
    with pytest.raises(InputError, match="exactly one target"):
        design_guides(indexed, gene="ADE2", region="XV:1-100", executor="serial")
    with pytest.raises(NotFoundError, match="unknown gene"):
        design_guides(indexed, gene="NOSUCHGENE1", executor="serial")
    with pytest.raises(NotFoundError, match="unknown nuclease"):
        design_guides(indexed, gene="ADE2", nuclease="Cas42", executor="serial")
    with pytest.raises(InputError, match="0–5"):
        design_guides(indexed, gene="ADE2", max_mismatches=6, executor="serial")
    with pytest.raises(InputError, match="--within"):
        design_guides(indexed, gene="ADE2", within="introns", executor="serial")
    with pytest.raises(InputError, match="limit of 1,000 bp"):
        design_guides(indexed, region="XV:1-5000", max_target_bp=1000, executor="serial")
    with pytest.raises(InputError, match="invalid letter"):
        design_guides(indexed, sequence="ACGTXACGT", executor="serial")
    with pytest.raises(InputError, match="has 19 bases"):
        score_guides(indexed, ["ACGTACGTACGTACGTACG"], executor="serial")
    with pytest.raises(InputError, match="contains 'N'"):
        score_guides(indexed, ["ACGTACGTACGTACGTACGN"], executor="serial")
    with pytest.raises(NotFoundError, match="`sandgrain genome index yeast --nuclease SpCas9 "
                       "--offtarget-pams NAG`"):  # fmt: skip
        design_guides(indexed, gene="ADE2", offtarget_pams="NAG", executor="serial")
