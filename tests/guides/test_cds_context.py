"""Where a guide cuts in its gene (exon, % of the CDS) and the windows around candidates, each
checked against the obvious computation."""

from __future__ import annotations

import random

import pytest

from sandgrain.genome.annotation.genes import Gene, GeneTable
from sandgrain.genome.regions import Region, reverse_complement
from sandgrain.guides.candidates import find_candidates, find_candidates_in_sequence
from sandgrain.guides.cds import cds_position, gene_at_cut
from sandgrain.guides.context import ContextReader


def make_gene(strand: str, cds, exons=None) -> Gene:
    exons = tuple(exons or cds)
    return Gene(
        gene_id="G1", symbol="GENE1", aliases=(), ids=(), chrom="c", start0=exons[0][0],
        end0=exons[-1][1], strand=strand, biotype="protein_coding", exons=exons, cds=tuple(cds),
    )  # fmt: skip


def plain_position(gene: Gene, cut: int) -> tuple[int | None, float]:
    """Every CDS base listed in transcript order; the cut's share counted base by base."""
    bases = [p for s, e in gene.cds for p in range(s, e)]
    if gene.strand == "-":
        bases = bases[::-1]
        upstream = sum(1 for p in bases if p >= cut)
        base = cut
    else:
        upstream = sum(1 for p in bases if p < cut)
        base = cut - 1
    exons = sorted(gene.exons, reverse=gene.strand == "-")
    exon = next((i for i, (s, e) in enumerate(exons, 1) if s <= base < e), None)
    return exon, 100.0 * upstream / len(bases)


@pytest.mark.parametrize("strand", ["+", "-"])
def test_cds_position_equals_counting_bases(strand):
    cds = [(120, 200), (300, 420), (500, 530)]
    exons = [(100, 200), (300, 420), (500, 600)]
    gene = make_gene(strand, cds, exons)
    for cut in range(121, 530):
        got = cds_position(gene, cut)
        exon, percent = plain_position(gene, cut)
        assert got["exon"] == exon and got["exon_count"] == 3
        assert got["cds_percent"] == pytest.approx(percent)
        assert got["gene"] == "GENE1"
    # the first exon in the transcript direction is the rightmost on the minus strand
    assert cds_position(gene, 150)["exon"] == (1 if strand == "+" else 3)
    assert cds_position(gene, 121)["cds_percent"] == pytest.approx(
        100 / 230 if strand == "+" else 100 * 229 / 230
    )


def test_gene_at_cut_needs_the_cut_in_the_cds():
    gene = make_gene("+", [(120, 200), (300, 420)], [(100, 200), (300, 420)])
    table = GeneTable([gene])
    assert gene_at_cut(table, "c", 150) == gene
    assert gene_at_cut(table, "c", 250) is None  # intron
    assert gene_at_cut(table, "c", 110) is None  # 5' UTR
    assert gene_at_cut(table, "other", 150) is None


def test_windows_equal_genome_reads(yeast):
    genome = yeast
    region = Region("XV", 564_476, 566_191)
    cands = find_candidates(genome, region, "SpCas9")
    # and two candidates next to a chromosome end, where windows run off
    length = genome.length("I")
    cands += find_candidates(genome, Region("I", 0, 60), "SpCas9")
    cands += find_candidates(genome, Region("I", length - 60, length), "SpCas9")
    reader = ContextReader(genome, cands)
    rng = random.Random(7)
    for c in cands:
        f5, f3 = rng.randint(0, 40), rng.randint(0, 40)
        if c.strand == "+":
            lo, hi = c.site_start0 - f5, c.site_end0 + f3
        else:
            lo, hi = c.site_start0 - f3, c.site_end0 + f5
        want = None
        if lo >= 0 and hi <= genome.length(c.chrom):
            want = genome.sequence(c.chrom, lo, hi).upper()
            want = want if c.strand == "+" else reverse_complement(want)
        assert reader.flanked(c, f5, f3) == want
        if want is not None:
            assert want[f5 : f5 + 23] == c.protospacer + c.pam
        if c.context30 is not None:
            assert reader.flanked(c, 4, 3) == c.context30
        left, right = rng.randint(17, 40), rng.randint(3, 40)
        a, b = (c.cut - left, c.cut + right) if c.strand == "+" else (c.cut - right, c.cut + left)
        cut_want = None
        if a >= 0 and b <= genome.length(c.chrom):
            cut_want = genome.sequence(c.chrom, a, b).upper()
            cut_want = cut_want if c.strand == "+" else reverse_complement(cut_want)
        assert reader.around_cut(c, left, right) == cut_want
        if cut_want is not None:  # SpCas9 cuts 3 bp 5' of the PAM: 17 spacer bases before it
            assert cut_want[left - 17 : left + 3] == c.protospacer
    assert any(reader.flanked(c, 40, 40) is None for c in cands)


def test_windows_of_a_given_sequence():
    rng = random.Random(3)
    text = "".join(rng.choice("ACGT") for _ in range(300))
    cands = find_candidates_in_sequence(text, "SpCas9")
    reader = ContextReader(None, cands, {"sequence": text})
    for c in cands:
        got = reader.flanked(c, 6, 6)
        if c.strand == "+":
            lo, hi = c.site_start0 - 6, c.site_end0 + 6
            want = text[lo:hi] if lo >= 0 and hi <= len(text) else None
        else:
            lo, hi = c.site_start0 - 6, c.site_end0 + 6
            want = reverse_complement(text[lo:hi]) if lo >= 0 and hi <= len(text) else None
        assert got == want


def test_on_target_scores_fanned_out_in_chunks_equal_in_process(yeast, monkeypatch):
    from sandgrain.guides import efficiency
    from sandgrain.guides.nucleases import get_nuclease

    cas9 = get_nuclease("SpCas9")
    cands = find_candidates(yeast, Region("XV", 564_476, 565_476), cas9)
    reader = ContextReader(yeast, cands)
    here = efficiency.efficiency_fields(cands, reader, cas9, executor="serial")
    monkeypatch.setattr(efficiency, "CHUNK", 20)
    assert len(cands) > 3 * 20
    store = yeast.dataset.store
    fanned = efficiency.efficiency_fields(
        cands, reader, cas9, store=store, executor="local:2", tracr="Hsu2013"
    )
    assert fanned == here
    assert all(f["efficiency"] == f["rs3"] for f in here)
    assert sum(f["rs3"] is not None for f in here) == len(cands)
    assert not [k for k in store.list("scratch") if "ontarget" in k]  # staged chunks removed
