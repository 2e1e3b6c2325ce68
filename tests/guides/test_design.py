"""Guide design on the real yeast genome: what the document says agrees with the genome, the
search, the gene table and the score functions called directly."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
from conftest import SARS_FASTA

from sandgrain.errors import InputError, NotFoundError
from sandgrain.genome.regions import reverse_complement
from sandgrain.genome.store import add_genome, open_genome
from sandgrain.guides import design_guides, score_guides
from sandgrain.guides.annotate import annotate_site
from sandgrain.guides.document import GUIDE_FIELDS
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
    "offtargets", "offtargets_listed_truncated", "rank", "score", "on_target",
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
    assert index_input["source"] == "siteindex:yeast.NGG_NAG_NGA.20.3p"
    json.loads(to_json(ade2))  # JSON-able as it is


def test_on_target_is_excluded_and_counts_are_exact(ade2, indexed):
    guides = ade2["guides"]
    raw = search_offtargets(indexed, [g["sequence"] for g in guides], FAMILY, 4, executor="serial")
    for g, sites in zip(guides, raw, strict=True):
        site0 = g["start"] - 1 if g["strand"] == "+" else g["start"] - 1 - 3
        own = [s for s in sites if (s.chrom, s.pos0, s.strand, s.mismatches) == (
            g["chrom"], site0, g["strand"], 0)]  # fmt: skip
        assert len(own) == 1, g["sequence"]
        assert g["on_target"] == {
            "chrom": g["chrom"], "start": g["start"], "end": g["end"], "strand": g["strand"],
        }  # fmt: skip
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


def expected_flags(g: dict) -> set[str]:
    """The flags the documented rule gives, from the record's own fields."""
    want = set()
    if g["offtarget_counts"][0]:  # next to NGG a hard flag, next to NAG/NGA a soft one
        assert {"offtarget_0mm", "offtarget_0mm_weak_pam"} & set(g["flags"])
    if g["offtarget_counts"][1]:
        want.add("offtarget_1mm")
    if g["tttt"]:
        want.add("tttt")
    if g["cds_percent"] is not None and g["cds_percent"] > 80:
        want.add("late_cds")
    if g["mit_specificity"] < 50:
        want.add("low_specificity")
    return want


def rank_key(g: dict) -> tuple:
    """The documented ranking, written out: tier; efficiency (missing last), CFD then MIT
    specificity, each higher first."""
    eff = g["efficiency"]
    return (g["tier"], eff is None, -(eff or 0.0), -g["cfd_specificity"], -g["mit_specificity"])


@pytest.mark.parametrize("doc", ["tef1", "ade2"])
def test_ranking_tiers_then_efficiency_then_specificity(doc, request):
    document = request.getfixturevalue(doc)
    guides = document["guides"]
    assert document["ranking"]["efficiency_model"] == "rs3"
    assert "tier" in document["ranking"]["rule"]
    for g in guides:
        rule_flags = expected_flags(g)
        # the sequence features add their own soft flags; the rule's are all there
        assert rule_flags <= set(g["flags"])
        hard = {"offtarget_0mm", "tttt"} & set(g["flags"])
        ranked = set(g["flags"]) - {"gc_low", "gc_high"}  # shown, not ranked on
        assert g["tier"] == (3 if hard else 2 if ranked else 1)
        assert g["score"] == g["cfd_specificity"]  # unrounded
        assert g["efficiency"] == g["rs3"]
    keys = [rank_key(g) for g in guides]
    assert keys == sorted(keys)
    tiers = [g["tier"] for g in guides]
    assert tiers == sorted(tiers)
    # efficiency decides within a tier: the best guide is the most efficient of its tier
    first = [g for g in guides if g["tier"] == tiers[0]]
    assert guides[0]["efficiency"] == max(g["efficiency"] for g in first)
    if doc == "ade2":
        assert tiers[0] == 1
        assert all(g["cds_percent"] <= 80 for g in first)
    if doc == "tef1":
        # TEF2 codes for the same protein: most TEF1 guides have a perfect copy there and go
        # last; the ones that rank first have none next to NGG (the issue's #1 had one)
        assert sum(g["tier"] == 3 for g in guides) > len(guides) // 2
        assert all("offtarget_0mm" not in g["flags"] for g in guides[:3])


def test_ranking_at_five_mismatches_puts_efficient_guides_first(indexed):
    """The issue's case: at 5 mismatches distant sites decided the order and URA3's first two
    guides had Rule Set 1 of 0.087 and 0.071. Now the top guides are efficient ones."""
    doc = design_guides(indexed, gene="URA3", max_mismatches=5, executor="serial")
    guides = doc["guides"]
    effs = sorted(g["efficiency"] for g in guides if g["efficiency"] is not None)
    median = effs[len(effs) // 2]
    assert all(g["efficiency"] > median for g in guides[:3])
    assert all(g["ruleset1"] > 0.1 for g in guides[:2])


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
    assert seq["provenance"]["parameters"]["on_target_excluded"] is True
    for g in seq["guides"]:
        # coordinates in the sequence; the genome copy of the guide is its on-target, left out
        twin = by_site[(g["sequence"], g["strand"])]
        assert twin["start"] == g["start"] + start0
        assert g["on_target"] == twin["on_target"] == {
            "chrom": "XV", "start": twin["start"], "end": twin["end"], "strand": twin["strand"],
        }  # fmt: skip
        assert g["offtarget_counts"] == twin["offtarget_counts"]
        assert g["offtarget_counts"][0] == 0  # ADE2 guides are unique in yeast
        assert g["cfd_specificity"] == pytest.approx(twin["cfd_specificity"])
        assert g["offtargets"] == twin["offtargets"]
    # the old behaviour on request: nothing excluded, the guide's genome copy counts
    kept = design_guides(indexed, sequence=text, executor="serial", exclude_on_target=False)
    assert kept["provenance"]["parameters"]["on_target_excluded"] is False
    for g in kept["guides"]:
        twin = by_site[(g["sequence"], g["strand"])]
        assert g["on_target"] is None
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
    for g in doc["guides"]:  # the piece was copied from XV: each guide's copy there is left out
        assert g["offtarget_counts"][0] == 0 and g["on_target"]["chrom"] == "XV"
        offset = g["on_target"]["start"] - g["start"]
        assert offset == 564600 and g["on_target"]["strand"] == g["strand"]
    # BED of a sequence target: the record name as chromosome, positions in the sequence
    bed = to_bed(doc).splitlines()
    assert "relative to the given sequence" in bed[0]
    assert {line.split("\t")[0] for line in bed[1:]} == {"ade2_piece"}
    with pytest.raises(InputError, match="not a FASTA file"):
        (tmp_path / "bad.fa").write_text("ACGT\n")
        design_guides(indexed, fasta=str(tmp_path / "bad.fa"), executor="serial")
    with pytest.raises(InputError, match="no such file"):
        design_guides(indexed, fasta=str(tmp_path / "missing.fa"), executor="serial")
    with pytest.raises(InputError, match="limit"):
        design_guides(indexed, fasta=str(path), executor="serial", max_target_bp=50)


def test_score_guides_in_batches_equals_one_search(ade2, tef1, indexed, monkeypatch):
    """Scored a few guides at a time (memory bounded by a batch's sites), the document is the
    one :func:`score_search` makes from a single search of all the guides."""
    from sandgrain.guides import design as design_mod
    from sandgrain.guides.design import score_search, search_guides

    chosen = [g["sequence"] for g in ade2["guides"][:6] + tef1["guides"][:6]]
    whole = score_search(search_guides(indexed, chosen, executor="serial"))
    batches = []
    real = design_mod.iter_search

    def counted(*args, **kwargs):
        for item in real(*args, **kwargs):
            batches.append(len(item[1].guides))
            yield item

    monkeypatch.setattr(design_mod, "iter_search", counted)
    batched = score_guides(indexed, chosen, executor="serial", batch_hits=5, first_batch=2)
    assert len(batches) >= 3 and sum(batches) == len(chosen)
    assert batched["provenance"]["parameters"] == whole["provenance"]["parameters"]
    assert batched["guides"] == whole["guides"]
    assert len({g["rank"] for g in batched["guides"]}) == len(chosen)


#: What a given guide gets from the site it is placed at, as a designed guide has it.
LOCATED_FIELDS = (
    "pam", "chrom", "start", "end", "strand", "cut", "gene", "exon", "exon_count", "cds_percent",
    "efficiency", "rs3", "ruleset1", "crisprscan", "out_of_frame", "masked", "context30",
    "self_complementarity", "restriction_sites", "oligos",
)  # fmt: skip


def test_score_guides_take_the_first_perfect_site_as_on_target(ade2, tef1, indexed):
    chosen = [g["sequence"] for g in ade2["guides"][:3]] + ["ACGTACGTACGTACGTACGT"]
    doc = score_guides(indexed, [s.lower() for s in chosen], executor="serial")
    assert doc["target"]["type"] == "guides"
    assert [g["sequence"] for g in doc["guides"]] == chosen  # input order, ranks set
    assert sorted(g["rank"] for g in doc["guides"]) == [1, 2, 3, 4]
    assert doc["provenance"]["parameters"]["on_target_excluded"] is True
    for g, designed in zip(doc["guides"][:3], ade2["guides"][:3], strict=True):
        # the guide's own (only) perfect site is found and left out, as design does
        assert g["on_target"] == designed["on_target"]
        assert g["offtarget_counts"] == designed["offtarget_counts"]
        assert g["offtargets_total"] == designed["offtargets_total"]
        # placed at that site, a given guide gets the position, efficiency and features the
        # design gave it there (it had none of them: `guides score` printed empty columns)
        for field in LOCATED_FIELDS:
            assert g[field] == designed[field], field
        assert g["efficiency"] is not None and g["context30"] is not None
        cfds = [o["cfd"] for o in g["offtargets"]]
        assert g["cfd_specificity"] == pytest.approx(cfd_specificity(cfds))
        assert g["cfd_specificity"] == pytest.approx(designed["cfd_specificity"])
    assert doc["guides"][3]["on_target"] is None  # not in yeast: nothing to leave out
    absent = doc["guides"][3]  # nowhere to place it: only what its sequence tells
    assert absent["chrom"] is absent["efficiency"] is absent["context30"] is None
    assert absent["oligos"]["forward"] == "CACCG" + chosen[3]
    assert absent["self_complementarity"] > 0 and "self_complementary" in absent["flags"]
    assert doc["ranking"]["efficiency_model"] == "rs3"
    # a guide with perfect copies in TEF1 (XVI) and TEF2 (II): the first in genome order goes
    twice = next(g for g in tef1["guides"] if g["offtarget_counts"][0] == 1)
    (scored,) = score_guides(indexed, [twice["sequence"]], executor="serial")["guides"]
    sites = search_offtargets(indexed, [twice["sequence"]], FAMILY, 4, executor="serial")[0]
    first = next(s for s in sites if s.mismatches == 0)
    start0, end0 = first.protospacer_span(3, "3")
    assert scored["on_target"] == {
        "chrom": first.chrom, "start": start0 + 1, "end": end0, "strand": first.strand,
    }  # fmt: skip
    assert first.chrom == "II" and twice["chrom"] == "XVI"  # TEF2 comes first in the genome
    assert (scored["chrom"], scored["start"], scored["gene"]) == ("II", start0 + 1, "TEF2")
    assert scored["offtarget_counts"][0] == 1  # the copy in TEF1 is an off-target
    # nothing excluded on request: the guide's own site counts
    kept = score_guides(indexed, chosen, executor="serial", exclude_on_target=False)
    for g, designed in zip(kept["guides"][:3], ade2["guides"][:3], strict=True):
        assert g["on_target"] is None
        assert (g["chrom"], g["start"], g["rs3"]) == (designed["chrom"], designed["start"],
                                                      designed["rs3"])  # fmt: skip
        assert g["offtarget_counts"][0] == designed["offtarget_counts"][0] + 1
        assert g["offtargets_total"] == designed["offtargets_total"] + 1
    per_guide = score_guides(
        indexed, chosen[:2], guide_mismatches=[0, None], max_mismatches=3, executor="serial"
    )
    first, second = per_guide["guides"]
    assert first["offtargets"] == [] and first["on_target"] is not None
    assert len(first["offtarget_counts"]) == 1 and len(second["offtarget_counts"]) == 4
    assert per_guide["max_mismatches"] == 3
    row = next(csv.DictReader(io.StringIO(to_tsv(per_guide)), delimiter="\t"))
    assert [row[f"mm{m}"] for m in range(4)] == ["0", "", "", ""]  # mm1…mm3 not searched


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
    by_name = {f"{g['rank']}_{g['sequence']}_{g['pam']}": g for g in doc["guides"]}
    for line in bed[1:]:
        chrom, s, e, name, score, strand, ts, te = line.split("\t")
        assert int(e) - int(s) == 27 and int(te) - int(ts) == 23
        # no CFD: the count-based equivalent of 1000 / (1 + Σ CFD)
        counts = by_name[name]["offtarget_counts"]
        total = sum(n / 4**m for m, n in enumerate(counts))
        assert abs(int(score) - 1000 / (1 + total)) <= 0.5 + 1e-9
        # the PAM lies 5' of the protospacer: left of it on +, right of it on -
        assert (int(ts) - int(s), int(e) - int(te)) == ((4, 0) if strand == "+" else (0, 4))


def tsv_header(keys: list[str], k: int) -> list[str]:
    """TSV columns from the JSON keys: mm0…mmK after offtarget_counts, on_target flattened."""
    header = []
    for key in keys:
        if key == "on_target":
            header += [f"on_target.{sub}" for sub in ("chrom", "start", "end", "strand")]
        elif key == "oligos":
            header += ["oligos.forward", "oligos.reverse"]
        elif key == "primers":
            header += [f"primers.{sub}" for sub in ("left", "right", "product_size", "unique")]
        else:
            header.append(key)
        if key == "offtarget_counts":
            header += [f"mm{m}" for m in range(k + 1)]
    return header


def test_tsv_columns_are_the_json_keys(ade2):
    rows = list(csv.reader(io.StringIO(to_tsv(ade2)), delimiter="\t"))
    header, body = rows[0], rows[1:]
    keys = [k for k in ade2["guides"][0] if k != "offtargets"]
    assert header == tsv_header(keys, 4)
    assert len(body) == len(ade2["guides"])
    for row, g in zip(body, ade2["guides"], strict=True):
        cells = dict(zip(header, row, strict=True))
        assert cells["sequence"] == g["sequence"] and int(cells["start"]) == g["start"]
        assert cells["on_target.chrom"] == g["on_target"]["chrom"]
        assert int(cells["on_target.start"]) == g["on_target"]["start"]
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
        # 1000 / (1 + sum of the off-targets' CFD): 1000 only for a guide without off-targets
        total = sum(o["cfd"] for o in g["offtargets"])
        assert abs(int(score) - 1000 / (1 + total)) <= 0.5 + 1e-9
        assert (int(score) == 1000) == (total < 0.0005)
    starts = [(r[0], int(r[1])) for r in rows]
    assert starts == sorted(starts)
    assert len({r[4] for r in rows}) > 10  # the score tells guides apart


def test_bed_track_names_chromosomes_as_ucsc_does(ade2, indexed, local_store):
    names = indexed.ucsc_names()  # the demo genome is R64 (sacCer3)
    assert (names["XV"], names["Mito"], names["I"], len(names)) == ("chrXV", "chrM", "chrI", 17)
    stored = to_bed(ade2).splitlines()
    lines = to_bed(ade2, names).splitlines()
    (region,) = ade2["target"]["regions"]  # ADE2's one exon
    assert lines[0] == f"browser position chrXV:{region['start']}-{region['end']}"
    assert lines[1] == stored[0]
    assert [r.split("\t") for r in lines[2:]] == [
        ["chrXV", *r.split("\t")[1:]] for r in stored[1:]
    ]
    # a genome of no known assembly has no other names: its own stay, no browser line
    mine = add_genome(local_store, "mine", str(SARS_FASTA))
    assert mine.ucsc_names() == {}
    doc = {**ade2, "genome": "mine"}
    assert to_bed(doc, mine.ucsc_names()) == to_bed(doc)
    sars = add_genome(local_store, "virus", str(SARS_FASTA), aliases=["wuhCor1"])
    assert sars.ucsc_names() == {"NC_045512.2": "NC_045512v2"}  # UCSC's wuhCor1 name


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
                       "--offtarget-pams NCG`"):  # fmt: skip
        design_guides(indexed, gene="ADE2", offtarget_pams="NCG", executor="serial")
    # NAG alone is answered by the default NGG+NAG+NGA index (the search keeps NGG and NAG)
    assert design_guides(indexed, gene="ADE2", offtarget_pams="NAG", executor="serial")["guides"]


# --------------------------------------------------------------------------------------------
# on-target sites of sequence targets: the input's context decides among perfect copies
# --------------------------------------------------------------------------------------------


def context_of(genome, site, flank5: int, flank3: int, nuclease) -> str:
    """A site's protospacer + PAM with ``flank5``/``flank3`` bp around it, on its strand."""
    length = nuclease.guide_length + nuclease.pam_length
    left, right = (flank5, flank3) if site.strand == "+" else (flank3, flank5)
    start0, end0 = site.pos0 - left, site.pos0 + length + right
    if start0 < 0 or end0 > genome.length(site.chrom):
        return ""
    return genome.sequence(site.chrom, start0, end0, site.strand).upper()


def test_sequence_target_on_target_by_context(indexed):
    """A piece of TEF1 (XVI): most of its guides also sit in TEF2 (II, first in genome order).
    The on-target is the first perfect site whose 30-mer is the input's, else the first."""
    tef1 = indexed.gene("TEF1")
    text = indexed.sequence(tef1.chrom, tef1.start0, tef1.end0)
    doc = design_guides(indexed, sequence=text, executor="serial")
    guides = doc["guides"]
    raw = search_offtargets(indexed, [g["sequence"] for g in guides], FAMILY, 4, executor="serial")
    by_context = 0
    for g, sites in zip(guides, raw, strict=True):
        perfect = [s for s in sites if s.mismatches == 0]
        assert perfect, g["sequence"]  # the piece comes from the genome
        assert g["context30"]
        same = [s for s in perfect if context_of(indexed, s, 4, 3, SPCAS9) == g["context30"]]
        chosen = (same or perfect)[0]
        by_context += chosen is not perfect[0]
        start0, end0 = chosen.protospacer_span(3, "3")
        assert g["on_target"] == {
            "chrom": chosen.chrom, "start": start0 + 1, "end": end0, "strand": chosen.strand,
        }  # fmt: skip
        assert g["offtarget_counts"][0] == len(perfect) - 1
        assert g["offtargets_total"] == len(sites) - 1
    # the context told TEF1 from TEF2 for some guides; for others they share the 30-mer
    assert by_context > 0
    assert any(g["on_target"]["chrom"] == "II" for g in guides)


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """A random genome with one SpCas9 site planted three times (two flanks alike on the
    near side but not beyond) and one AsCas12a site planted twice."""
    import numpy as np

    from sandgrain.genome.store import add_genome
    from sandgrain.storage import Store

    rng = np.random.default_rng(11)
    seq = list(rng.choice(list("ACGT"), 60_000))
    cas9 = "GACCTAGGTCTTACGCAGTA" + "TGG"
    cas12a = "TTTA" + "CGATCGGTTACAGGATCCAGTAC"

    def plant(at: int, site: str) -> None:
        seq[at : at + len(site)] = list(site)

    plant(10_000, cas9)
    plant(30_000, cas9)
    plant(45_000, reverse_complement(cas9))
    plant(15_000, cas12a)
    plant(50_000, cas12a)
    # the Cas12a copies share 8 bp either side; they differ 9 bp 5' of the site
    plant(50_000 - 8, "".join(seq[15_000 - 8 : 15_000]))
    plant(50_000 + 27, "".join(seq[15_000 + 27 : 15_000 + 37]))
    seq[50_000 - 9] = "A" if seq[15_000 - 9] != "A" else "C"
    text = "".join(seq)
    folder = tmp_path_factory.mktemp("twins")
    (folder / "twins.fa").write_text(">one\n" + text + "\n")
    store = Store(str(folder / "store"))
    genome = add_genome(store, "twins", str(folder / "twins.fa"))
    build_index(genome, FAMILY, executor="serial")
    build_index(genome, SiteFamily.of(get_nuclease("AsCas12a")), executor="serial")
    return genome, text, cas9, cas12a


def test_sequence_target_context_picks_the_matching_copy(twins):
    genome, text, cas9, cas12a = twins

    def guide_for(doc: dict, protospacer: str) -> dict:
        (g,) = [g for g in doc["guides"] if g["sequence"] == protospacer]
        return g

    # the second (+) copy: its 30-mer is found there, not at the first copy
    doc = design_guides(genome, sequence=text[29_900:30_150], executor="serial")
    g = guide_for(doc, cas9[:20])
    assert g["on_target"] == {"chrom": "one", "start": 30_001, "end": 30_020, "strand": "+"}
    assert g["offtarget_counts"][0] == 2  # the two other copies
    # the third copy, on the minus strand
    doc = design_guides(genome, sequence=text[44_900:45_150], executor="serial")
    g = guide_for(doc, cas9[:20])
    assert g["on_target"] == {"chrom": "one", "start": 45_004, "end": 45_023, "strand": "-"}
    # a context found nowhere (one base changed 2 bp 5' of the site): the first copy
    piece = text[29_900:30_150]
    piece = piece[:98] + ("A" if piece[98] != "A" else "C") + piece[99:]
    doc = design_guides(genome, sequence=piece, executor="serial")
    g = guide_for(doc, cas9[:20])
    assert g["on_target"] == {"chrom": "one", "start": 10_001, "end": 10_020, "strand": "+"}
    # AsCas12a (no Rule Set 1): 10 bp each side decide; 8 bp would not tell the copies apart
    doc = design_guides(
        genome, sequence=text[49_800:50_300], nuclease="AsCas12a", executor="serial"
    )
    g = guide_for(doc, cas12a[4:])
    assert g["on_target"] == {"chrom": "one", "start": 50_005, "end": 50_027, "strand": "+"}
    assert g["offtarget_counts"][0] == 1
    doc = design_guides(
        genome, sequence=text[14_800:15_300], nuclease="AsCas12a", executor="serial"
    )
    g = guide_for(doc, cas12a[4:])
    assert g["on_target"] == {"chrom": "one", "start": 15_005, "end": 15_027, "strand": "+"}
    # exclude_on_target=False (--no-exclude-on-target) keeps every copy
    kept = design_guides(
        genome, sequence=text[29_900:30_150], executor="serial", exclude_on_target=False
    )
    g = guide_for(kept, cas9[:20])
    assert g["on_target"] is None and g["offtarget_counts"][0] == 3


# --------------------------------------------------------------------------------------------
# a guide with 100,000+ sites: exact counts, and no per-site object unless listed
# --------------------------------------------------------------------------------------------

UNIT = "GATTACAGCTTGCAGTCCAGGTCAA"  # 25 bp, an AGG on + and a CC (an NGG on -)
COPIES = 120_000
REPEAT_AT = 20_000


@pytest.fixture(scope="module")
def tandem(tmp_path_factory):
    """chr1: random, a tandem repeat of UNIT (some copies with one or two substitutions),
    random; chr2: random. Two genes overlap the repeat, one with two exons."""
    import numpy as np

    from sandgrain.genome.store import add_genome
    from sandgrain.storage import Store

    rng = np.random.default_rng(5)
    codes = np.tile(np.frombuffer(UNIT.encode(), np.uint8) - 0, (COPIES, 1))
    lut = np.frombuffer(b"ACGT", np.uint8)
    index = {b: i for i, b in enumerate(b"ACGT")}
    as_code = np.vectorize(index.get)(codes).astype(np.uint8)
    i = np.arange(COPIES)
    one, two = i % 4 == 1, i % 9 == 2
    as_code[one, (i[one] // 4) % 25] = (as_code[one, (i[one] // 4) % 25] + 1) % 4
    col = ((i[two] // 9) % 25 + 7) % 25
    as_code[two, col] = (as_code[two, col] + 2) % 4
    repeat = lut[as_code].tobytes().decode()
    chr1 = "".join(rng.choice(list("ACGT"), REPEAT_AT)) + repeat
    chr1 += "".join(rng.choice(list("ACGT"), 20_000))
    chr2 = "".join(rng.choice(list("ACGT"), 30_000))
    folder = tmp_path_factory.mktemp("tandem")
    (folder / "tandem.fa").write_text(f">chr1\n{chr1}\n>chr2\n{chr2}\n")
    gtf = []
    genes = {  # name: span and exons, relative to the repeat's start
        "REPA": (100_000, 1_100_000, [(100_000, 400_000), (900_000, 1_100_000)]),
        "REPB": (2_000_000, 2_400_000, [(2_000_000, 2_400_000)]),
    }
    for name, (s0, e0, exons) in genes.items():
        attrs = f'gene_id "{name}"; gene_name "{name}";'
        gtf.append(f"chr1\tt\tgene\t{REPEAT_AT + s0 + 1}\t{REPEAT_AT + e0}\t.\t+\t.\t{attrs}")
        for a, b in exons:
            tx = f'{attrs} transcript_id "{name}.1";'
            gtf.append(f"chr1\tt\texon\t{REPEAT_AT + a + 1}\t{REPEAT_AT + b}\t.\t+\t.\t{tx}")
    (folder / "tandem.gtf").write_text("\n".join(gtf) + "\n")
    store = Store(str(folder / "store"))
    genome = add_genome(
        store, "tandem", str(folder / "tandem.fa"), annotation=str(folder / "tandem.gtf")
    )
    build_index(genome, FAMILY, executor="serial")
    return genome, {"chr1": chr1, "chr2": chr2}


def brute_force_sites(chroms: dict[str, str], guide: str, k: int):
    """Every NGG, NAG or NGA site (SpCas9's default search) within ``k`` mismatches of
    ``guide`` on both strands, the plain way: (chrom, protospacer start0, strand, mismatches)."""
    import numpy as np

    lut = np.full(256, 4, np.uint8)
    for j, b in enumerate(b"ACGT"):
        lut[b] = j
    g = lut[np.frombuffer(guide.encode(), np.uint8)]
    found = []
    for name, text in chroms.items():
        fwd = lut[np.frombuffer(text.upper().encode(), np.uint8)]
        rev = np.array([3, 2, 1, 0, 4], np.uint8)[fwd][::-1]
        for strand, seq in (("+", fwd), ("-", rev)):
            n = len(seq) - 23 + 1
            mm = np.zeros(n, np.int16)
            for j in range(20):
                mm += seq[j : j + n] != g[j]
            b2, b3 = seq[21 : 21 + n], seq[22 : 22 + n]
            pam = ((b2 == 2) & (b3 == 2)) | ((b2 == 0) & (b3 == 2)) | ((b2 == 2) & (b3 == 0))
            ok = (mm <= k) & pam
            at = np.flatnonzero(ok)
            start0 = at if strand == "+" else len(seq) - at - 20  # protospacer on forward
            found += [(name, int(s), strand, int(m)) for s, m in zip(start0, mm[at], strict=True)]
    return found


def test_many_hits_counted_exactly_without_per_site_objects(tandem, monkeypatch):
    import tracemalloc

    from sandgrain.guides import search as search_module

    genome, chroms = tandem
    made = []

    class Counted(search_module.OffTargetSite):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(search_module, "OffTargetSite", Counted)
    middle = REPEAT_AT + 25 * 50_000  # inside REPA's intron
    region = f"chr1:{middle + 1}-{middle + 50}"
    tracemalloc.start()
    try:
        doc = design_guides(genome, region=region, executor="serial", list_offtargets=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    guides = doc["guides"]
    assert guides and all(g["offtargets"] is None for g in guides)
    most = max(g["offtargets_total"] for g in guides)
    assert most >= 100_000
    assert made == []  # no OffTargetSite for any of the hits
    # an OffTargetSite and a listing dict cost 1–2 KB a hit; the columns ~200 bytes at peak
    hits = sum(g["offtargets_total"] for g in {g["sequence"]: g for g in guides}.values())
    assert peak < 400 * hits, (peak, hits)

    genes = genome.genes
    for g in {g["sequence"]: g for g in guides}.values():
        sites = brute_force_sites(chroms, g["sequence"], 4)
        own = (g["chrom"], g["start"] - 1, g["strand"], 0)
        assert own in sites
        assert g["on_target"]["start"] == g["start"]
        sites.remove(own)
        want = Counter(m for *_, m in sites)
        assert g["offtarget_counts"] == [want[m] for m in range(5)]
        assert g["offtargets_total"] == len(sites)
        classes = Counter(
            brute_force_annotation(genes, c, s, s + 20)["class"] for c, s, _, _ in sites
        )
        assert [g[f"offtargets_{c}"] for c in ("exon", "intron", "intergenic")] == [
            classes["exon"],
            classes["intron"],
            classes["intergenic"],
        ]
        assert all(classes.values())  # all three classes occur
        assert g["cfd_specificity"] < 1  # Σ CFD in the tens of thousands

    # a listing limit makes objects for the listed sites only, and the counts stay
    listed = design_guides(genome, region=region, executor="serial", max_offtargets_listed=3)
    for short, full in zip(listed["guides"], guides, strict=True):
        assert short["offtarget_counts"] == full["offtarget_counts"]
        assert short["cfd_specificity"] == pytest.approx(full["cfd_specificity"])
        assert len(short["offtargets"]) == 3 and short["offtargets_listed_truncated"]
        assert [o["mismatches"] for o in short["offtargets"]] == [0, 0, 0]
    assert made == []


def test_many_hits_tsv_and_bed_from_the_command_line(tandem, monkeypatch, capsys):
    from sandgrain.cli import main
    from sandgrain.guides import search as search_module

    genome, _ = tandem
    monkeypatch.setenv("SANDGRAIN_STORE", genome.dataset.store.url)
    monkeypatch.setenv("SANDGRAIN_EXECUTOR", "serial")
    made = []

    class Counted(search_module.OffTargetSite):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(search_module, "OffTargetSite", Counted)
    middle = REPEAT_AT + 25 * 50_000
    region = f"chr1:{middle + 1}-{middle + 50}"
    for fmt in ("tsv", "bed"):
        with pytest.raises(SystemExit) as exit_:
            main(["guides", "design", "-g", "tandem", "--region", region, "-f", fmt, "-q"])
        out, err = capsys.readouterr()
        assert exit_.value.code == 0, err
        if fmt == "tsv":
            rows = list(csv.DictReader(io.StringIO(out), delimiter="\t"))
            assert rows and max(int(r["offtargets_total"]) for r in rows) >= 100_000
        else:
            lines = out.splitlines()[1:]
            # ΣCFD in the tens of thousands: a score of 0, not the 1000 of a unique guide
            assert lines and all(line.split("\t")[4] == "0" for line in lines)
    assert made == []


def test_vectorised_annotation_agrees_with_the_gene_table(indexed):
    import time

    import numpy as np

    from sandgrain.guides.annotate import CLASSES, GeneIntervals, annotate_classes

    genes = indexed.genes
    chroms = [c["name"] for c in indexed.chromosomes] + ["no-such-chrom"]
    rng = np.random.default_rng(3)
    # spans around exon and gene edges (where off-by-ones hide), and anywhere
    edges = [(g.chrom, p) for g in genes for s, e in (*g.exons, (g.start0, g.end0)) for p in (s, e)]
    picks = rng.integers(0, len(edges), 3000)
    ids = {c: i for i, c in enumerate(chroms)}
    chrom = [ids[edges[i][0]] for i in picks] + list(rng.integers(0, len(chroms), 3000))
    start = [edges[i][1] + int(rng.integers(-25, 5)) for i in picks]
    start += list(rng.integers(0, 1_000_000, 3000))
    chrom, start0 = np.array(chrom), np.maximum(0, np.array(start))
    got = annotate_classes(genes, chroms, chrom, start0, start0 + 20)
    for c, s, k in zip(chrom.tolist(), start0.tolist(), got.tolist(), strict=True):
        assert CLASSES[k] == annotate_site(genes, chroms[c], s, s + 20)["class"]
    for j in range(0, 6000, 40):  # and against the obvious way
        c, s = chroms[int(chrom[j])], int(start0[j])
        assert CLASSES[got[j]] == brute_force_annotation(genes, c, s, s + 20)["class"]
    assert set(got.tolist()) == {0, 1, 2}
    # a million spans at once: well under a second on an idle machine (bound left loose)
    index = GeneIntervals(genes)
    n = 1_000_000
    many = rng.integers(0, len(chroms), n), rng.integers(0, 1_500_000, n)
    began = time.perf_counter()
    classes = index.classes(chroms, many[0], many[1], many[1] + 20)
    assert time.perf_counter() - began < 5 and len(classes) == n


def test_colour_bins_never_show_a_guide_with_a_second_perfect_site_as_specific(tef1, ade2):
    from sandgrain.guides.document import SCORE_BINS, score_bin

    assert tef1["ranking"]["bins"] == SCORE_BINS
    assert score_bin("rs3", None) is None and score_bin("gc", 0.5) is None
    for name, bins in SCORE_BINS.items():
        assert bins["poor"] < bins["good"]
        assert score_bin(name, bins["good"]) == "good"
        assert score_bin(name, bins["poor"]) == "poor"
        assert score_bin(name, (bins["good"] + bins["poor"]) / 2) == "fair"
    perfect = [g for g in tef1["guides"] if "offtarget_0mm" in g["flags"]]
    assert perfect
    for g in perfect:  # one perfect NGG copy alone brings both specificities to 50
        assert score_bin("mit_specificity", g["mit_specificity"]) == "poor"
        assert score_bin("cfd_specificity", g["cfd_specificity"]) != "good"
    unique = [g for g in ade2["guides"] if sum(g["offtarget_counts"][:3]) == 0]
    assert unique
    assert all(score_bin("mit_specificity", g["mit_specificity"]) == "good" for g in unique)
