"""Candidate target sites, checked against a plain scan of every position on both strands."""

from __future__ import annotations

import random

import pytest

from sandgrain.errors import InputError
from sandgrain.genome.regions import Region
from sandgrain.genome.store import add_genome
from sandgrain.guides.candidates import (
    MAX_TARGET_BP,
    Candidate,
    find_candidates,
    find_candidates_in_regions,
    find_candidates_in_sequence,
    gene_regions,
)
from sandgrain.guides.nucleases import custom_nuclease, get_nuclease
from sandgrain.storage import Store

# -- the obviously-right twin ---------------------------------------------------------------------

IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT",
    "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}  # fmt: skip
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N"}


def revcomp(seq: str) -> str:
    out = ""
    for base in reversed(seq):
        c = COMPLEMENT[base.upper()]
        out += c if base.isupper() else c.lower()
    return out


def all_sites(chrom_seq, chrom, nuclease):
    """Every site on both strands of a whole chromosome, one position at a time, no regex.

    Each site is ``(candidate fields as in as_tuples, (site_start0, site_end0))``.
    """
    glen, plen = nuclease.guide_length, len(nuclease.pam)
    size = glen + plen
    found = []
    for i in range(len(chrom_seq) - size + 1):
        for strand in "+-":
            fwd = chrom_seq[i : i + size]
            site = fwd if strand == "+" else revcomp(fwd)
            if nuclease.pam_side == "3":
                proto, pam = site[:glen], site[glen:]
            else:
                pam, proto = site[:plen], site[plen:]
            if any(b not in "ACGT" for b in (proto + pam).upper()):
                continue
            if any(b not in IUPAC[code] for b, code in zip(pam.upper(), nuclease.pam, strict=True)):
                continue
            # where the protospacer lies on the forward strand
            start0 = i if (strand == "+") == (nuclease.pam_side == "3") else i + plen
            end0 = start0 + glen
            cut = start0 + nuclease.cut_offset if strand == "+" else end0 - nuclease.cut_offset
            context = None
            if nuclease.pam_side == "3" and glen == 20 and plen == 3:
                if strand == "+":
                    a, b = i - 4, i + size + 3
                else:
                    a, b = i - 3, i + size + 4
                if a >= 0 and b <= len(chrom_seq):
                    piece = chrom_seq[a:b].upper()
                    context = piece if strand == "+" else revcomp(piece)
            upper = proto.upper()
            fields = (
                upper,
                pam.upper(),
                chrom,
                start0,
                end0,
                strand,
                cut,
                (upper.count("G") + upper.count("C")) / glen,
                "TTTT" in upper,
                sum(b.islower() for b in proto),
                context,
            )
            found.append((fields, (i, i + size)))
    return found


def select(sites, lo, hi, cut_within=True):
    """The sites a target lo..hi keeps: cut within it (edges included), or overlapping it."""
    kept = []
    for fields, (a, b) in sites:
        cut = fields[6]
        if (lo <= cut <= hi) if cut_within else (a < hi and b > lo):
            kept.append(fields)
    return sorted(kept, key=lambda t: (t[3], t[5]))


def brute_force(chrom_seq, chrom, nuclease, lo, hi, cut_within=True):
    return select(all_sites(chrom_seq, chrom, nuclease), lo, hi, cut_within)


def as_tuples(candidates: list[Candidate]):
    return [
        (
            c.protospacer,
            c.pam,
            c.chrom,
            c.start0,
            c.end0,
            c.strand,
            c.cut,
            c.gc,
            c.tttt,
            c.masked,
            c.context30,
        )
        for c in candidates
    ]


NUCLEASES = [
    get_nuclease("SpCas9"),
    get_nuclease("SaCas9"),
    get_nuclease("AsCas12a"),
    custom_nuclease("NRG", 20, "3"),
    custom_nuclease("YTN", 18, "5", cut_offset=5),
    custom_nuclease("G", 16, "3", cut_offset=0),
    custom_nuclease("TTN", 24, "5", cut_offset=24),
]


# -- a random genome ------------------------------------------------------------------------------


def random_chromosome(rng: random.Random, length: int) -> str:
    bases = []
    while len(bases) < length:
        kind = rng.random()
        run = rng.randint(1, 60)
        if kind < 0.05:
            bases.extend("N" * run)
        elif kind < 0.10:
            bases.extend("T" * rng.randint(3, 6))
        elif kind < 0.30:
            bases.extend(rng.choice("acgt") for _ in range(run))
        else:
            bases.extend(rng.choice("ACGGT") for _ in range(run))
    return "".join(bases[:length])


@pytest.fixture(scope="module")
def random_genome(tmp_path_factory):
    rng = random.Random(20240611)
    chroms = {"r1": random_chromosome(rng, 6000), "r2": random_chromosome(rng, 2500), "r3": "GGG"}
    chroms["r4"] = "ACGTAGGCCTTTTACGGACGTACGTTGGAC"  # 30 bp, sites touching both ends
    path = tmp_path_factory.mktemp("random") / "random.fa"
    with open(path, "w") as fh:
        for name, seq in chroms.items():
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                fh.write(seq[i : i + 60] + "\n")
    store = Store(str(tmp_path_factory.mktemp("random-store") / "s"))
    return add_genome(store, "random", str(path)), chroms


@pytest.mark.parametrize("nuclease", NUCLEASES, ids=lambda n: n.name)
def test_whole_chromosomes_match_the_brute_force_scan(random_genome, nuclease):
    genome, chroms = random_genome
    for chrom, seq in chroms.items():
        got = find_candidates(genome, Region(chrom, 0, len(seq)), nuclease)
        assert as_tuples(got) == brute_force(seq, chrom, nuclease, 0, len(seq))
        if chrom == "r1":  # the random chromosome exercises masked bases and TTTT runs
            assert any(c.masked for c in got) and any(c.masked < len(c.protospacer) for c in got)


@pytest.mark.parametrize("nuclease", NUCLEASES, ids=lambda n: n.name)
def test_random_regions_match_the_brute_force_scan(random_genome, nuclease):
    genome, chroms = random_genome
    rng = random.Random(7)
    seq = chroms["r1"]
    sites = all_sites(seq, "r1", nuclease)
    total = 0
    for _ in range(25):
        a = rng.randrange(len(seq))
        b = min(len(seq), a + rng.choice([1, 5, 30, 200, 1000]))
        for cut_within in (True, False):
            got = find_candidates(genome, Region("r1", a, b), nuclease, cut_within=cut_within)
            assert as_tuples(got) == select(sites, a, b, cut_within), (a, b)
            total += len(got)
    assert total > 0


def test_regions_at_chromosome_ends_and_empty_regions(random_genome):
    genome, chroms = random_genome
    cas9 = get_nuclease("SpCas9")
    seq = chroms["r1"]
    n = len(seq)
    for a, b in [(0, 10), (n - 10, n), (0, 0), (n, n), (100, 100)]:
        got = find_candidates(genome, Region("r1", a, b), cas9)
        assert as_tuples(got) == brute_force(seq, "r1", cas9, a, b)
    assert find_candidates(genome, Region("r3", 0, 3), cas9) == []


def test_context30_is_none_where_the_flanks_leave_the_chromosome(random_genome):
    genome, chroms = random_genome
    seq = chroms["r4"]
    got = find_candidates(genome, Region("r4", 0, len(seq)), "SpCas9")
    assert got, "the 30-bp chromosome has SpCas9 sites"
    for c in got:
        left = c.site_start0 - (4 if c.strand == "+" else 3)
        right = c.site_end0 + (3 if c.strand == "+" else 4)
        assert (c.context30 is None) == (left < 0 or right > len(seq))
    # a 23-bp site fills a 30-bp chromosome only if it starts at 3 (+) or 4 (-): no full context
    assert all(c.context30 is None for c in got if c.strand == "+" and c.start0 != 4)
    # other nucleases get no 30-mer at all
    assert all(
        c.context30 is None for c in find_candidates(genome, Region("r1", 0, 3000), "SaCas9")
    )


def test_region_size_limit(random_genome):
    genome, _ = random_genome
    assert MAX_TARGET_BP == 1_000_000
    with pytest.raises(InputError, match=r"2,000 bp, more than the limit of 1,000 bp.*max_bp"):
        find_candidates(genome, Region("r1", 0, 2000), "SpCas9", max_bp=1000)
    assert find_candidates(genome, Region("r1", 0, 2000), "SpCas9", max_bp=2000)
    with pytest.raises(InputError, match="out of range"):
        find_candidates(genome, Region("r2", 0, 2501), "SpCas9")


# -- raw sequences --------------------------------------------------------------------------------


def test_candidates_in_a_raw_sequence():
    #      0     6                   26 29
    seq = "ttgacCTTTTAGCTAGCTAGCTAGCTAGGAAACCC"
    got = find_candidates_in_sequence(seq, "SpCas9", name="query")
    assert as_tuples(got) == brute_force(seq, "query", get_nuclease("SpCas9"), 0, len(seq))
    (c,) = [c for c in got if c.strand == "+"]
    assert c.site == "TTTTAGCTAGCTAGCTAGCTAGG" and c.chrom == "query"
    assert c.protospacer == "TTTTAGCTAGCTAGCTAGCT" and c.pam == "AGG"
    assert (c.start0, c.end0, c.start, c.end) == (6, 26, 7, 26)
    assert c.cut == 6 + 17
    assert c.tttt and c.masked == 0 and c.gc == pytest.approx(8 / 20)
    assert c.context30 == "GACC" + "TTTTAGCTAGCTAGCTAGCT" + "AGG" + "AAA"
    # 'cCT' at 4..7 reads AGG on the minus strand: its protospacer is the reverse complement of
    # 7..27. The CCC at the 3' end has no room for a protospacer.
    (m,) = [c for c in got if c.strand == "-"]
    assert (m.start0, m.end0, m.pam, m.site_start0, m.site_end0) == (7, 27, "AGG", 4, 27)
    assert m.protospacer == revcomp(seq[7:27]).upper()
    assert m.cut == 27 - 17
    assert m.context30 == revcomp(seq[1:31]).upper()


def test_masked_count_and_tttt_flag():
    proto = "acgtACGTacgtACGTACGT"
    got = find_candidates_in_sequence("A" * 5 + proto + "TGG" + "A" * 5, "SpCas9")
    (c,) = [c for c in got if c.strand == "+"]
    assert c.protospacer == proto.upper() and c.masked == 8 and not c.tttt
    got = find_candidates_in_sequence("ACGTTTTTACGTACGTACGTAGG", "SpCas9")
    (c,) = [c for c in got if c.strand == "+"]
    assert c.tttt and c.masked == 0 and c.context30 is None


def test_sites_with_n_are_skipped_and_whitespace_is_ignored():
    seq = "ACGTACGTACGTACGTACGT" + "NGG" + "ACGTACGTACGTACGTACNTAGG"
    assert [c for c in find_candidates_in_sequence(seq, "SpCas9") if c.strand == "+"] == []
    spaced = "ACGTACGTAC GTACGTACGT\nAGG"
    assert [c.site for c in find_candidates_in_sequence(spaced, "SpCas9")] == [
        "ACGTACGTACGTACGTACGTAGG"
    ]


def test_cas12a_in_a_raw_sequence():
    proto = "ACGTACGTACGTACGTACGTACG"
    got = find_candidates_in_sequence("GG" + "TTTA" + proto + "GG", "AsCas12a")
    plus = [c for c in got if c.strand == "+"]
    assert [(c.pam, c.protospacer, c.start0, c.end0, c.cut) for c in plus] == [
        ("TTTA", proto, 6, 29, 6 + 18)
    ]
    assert plus[0].site == "TTTA" + proto and plus[0].site_start0 == 2


@pytest.mark.parametrize(
    ("seq", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("ACGTX", r"invalid letter 'X' at position 5"),
        ("ACG1", r"invalid letter '1' at position 4"),
    ],
)
def test_bad_raw_sequences(seq, message):
    with pytest.raises(InputError, match=message):
        find_candidates_in_sequence(seq, "SpCas9")


def test_raw_sequence_size_limit():
    with pytest.raises(InputError, match="more than the limit of 10 bp"):
        find_candidates_in_sequence("A" * 11, "SpCas9", max_bp=10)


def test_to_dict_uses_output_coordinates():
    (c,) = [
        c
        for c in find_candidates_in_sequence("ACGTACGTACGTACGTACGTAGG", "SpCas9")
        if c.strand == "+"
    ]
    d = c.to_dict()
    assert d["sequence"] == "ACGTACGTACGTACGTACGT" and d["pam"] == "AGG"
    assert (d["start"], d["end"], d["strand"], d["cut"]) == (1, 20, "+", 17)
    assert "start0" not in d and "protospacer" not in d


# -- real yeast -----------------------------------------------------------------------------------


def check_against_genome(genome, candidates, nuclease, region):
    """What every candidate claims, read back from the genome."""
    for c in candidates:
        site = genome.sequence(c.chrom, c.site_start0, c.site_end0, c.strand).upper()
        assert site == c.site
        assert genome.sequence(c.chrom, c.start0, c.end0, c.strand).upper() == c.protospacer
        assert c.end0 - c.start0 == nuclease.guide_length
        assert all(b in IUPAC[code] for b, code in zip(c.pam, nuclease.pam, strict=True))
        assert region.start0 <= c.cut <= region.end0
        if c.strand == "-":
            fwd = genome.sequence(c.chrom, c.start0, c.end0).upper()
            assert revcomp(fwd) == c.protospacer
        if nuclease.pam_side == "3" and c.strand == "-":
            # the PAM lies to the left of the protospacer on the forward strand
            left = genome.sequence(c.chrom, c.start0 - len(c.pam), c.start0).upper()
            assert revcomp(left) == c.pam
        if nuclease.pam_side == "5" and c.strand == "+":
            left = genome.sequence(c.chrom, c.start0 - len(c.pam), c.start0).upper()
            assert left == c.pam


@pytest.fixture(scope="module")
def ade2(yeast):
    return yeast.gene("ADE2")


def test_ade2_spcas9(yeast, ade2):
    assert (ade2.location, ade2.strand) == ("XV:564476-566191", "-")
    (exon,) = gene_regions(ade2, "exons")
    assert (exon.chrom, exon.start0, exon.end0) == ("XV", 564475, 566191)
    cas9 = get_nuclease("SpCas9")
    got = find_candidates(yeast, exon, cas9)
    assert len(got) > 100
    assert {c.strand for c in got} == {"+", "-"}
    check_against_genome(yeast, got, cas9, exon)
    for c in got:
        assert c.pam[1:] == "GG"
        cut_in_protospacer = c.cut - c.start0 if c.strand == "+" else c.end0 - c.cut
        assert cut_in_protospacer == 17  # 3 bp from the PAM
        assert c.context30 is not None and c.context30[4:24] == c.protospacer
        assert c.context30[24:27] == c.pam
    chrom_seq = yeast.sequence("XV", 0, yeast.length("XV"))
    a, b = exon.start0 - 100, exon.end0 + 100
    window = chrom_seq[a:b]
    expected = [
        (p, pam, ch, s + a, e + a, st, cut + a, gc, t, m, ctx)
        for p, pam, ch, s, e, st, cut, gc, t, m, ctx in brute_force(
            window, "XV", cas9, exon.start0 - a, exon.end0 - a
        )
    ]
    assert as_tuples(got) == expected


@pytest.mark.parametrize("name", ["SaCas9", "AsCas12a", "LbCas12a"])
def test_ade2_other_nucleases(yeast, ade2, name):
    nuclease = get_nuclease(name)
    (exon,) = gene_regions(ade2)
    got = find_candidates(yeast, exon, nuclease)
    assert len(got) > 10
    check_against_genome(yeast, got, nuclease, exon)
    a = exon.start0 - 100
    window = yeast.sequence("XV", a, exon.end0 + 100)
    expected = brute_force(window, "XV", nuclease, exon.start0 - a, exon.end0 - a)
    assert [(c.start0 - a, c.strand, c.cut - a) for c in got] == [
        (t[3], t[5], t[6]) for t in expected
    ]
    if nuclease.pam_side == "5":
        assert all(c.pam.startswith("TTT") and c.pam[3] != "T" for c in got)


def test_yeast_chromosome_i_matches_the_brute_force_scan(yeast):
    chrom_seq = yeast.sequence("I", 0, yeast.length("I"))
    cas9 = get_nuclease("SpCas9")
    got = find_candidates(yeast, Region("I", 0, len(chrom_seq)), cas9)
    assert as_tuples(got) == brute_force(chrom_seq, "I", cas9, 0, len(chrom_seq))
    # the telomere starts with CCACACC…: a minus-strand site at the very start, without 30-mer
    first = got[0]
    assert first.site_start0 < 3 and first.strand == "-" and first.context30 is None
    assert any(c.masked for c in got) == any(b.islower() for b in chrom_seq)


def test_gene_regions_within(yeast):
    act1 = yeast.gene("ACT1")  # one intron
    exons = gene_regions(act1, "exons")
    assert len(exons) == 2 and all(r.strand == act1.strand for r in exons)
    assert gene_regions(act1, "gene") == [Region(act1.chrom, act1.start0, act1.end0, act1.strand)]
    assert sum(r.length for r in gene_regions(act1, "cds")) % 3 == 0
    got = find_candidates_in_regions(yeast, exons, "SpCas9")
    assert got == sorted(got, key=lambda c: (c.start0, c.strand))
    assert len({(c.start0, c.strand) for c in got}) == len(got)
    for c in got:
        assert any(r.start0 <= c.cut <= r.end0 for r in exons)
    whole = find_candidates(yeast, gene_regions(act1, "gene")[0], "SpCas9")
    assert set(got) <= set(whole) and len(whole) > len(got)
    with pytest.raises(InputError, match="--within must be one of exons, cds, gene"):
        gene_regions(act1, "introns")


def test_a_gene_without_cds_cannot_be_targeted_within_cds(yeast):
    trna = next(g for g in yeast.genes if not g.cds)
    assert gene_regions(trna, "exons")
    with pytest.raises(InputError, match=r"has no CDS.*--within exons"):
        gene_regions(trna, "cds")


def test_whole_yeast_chromosome_iv_is_over_the_default_limit(yeast):
    with pytest.raises(InputError, match=r"more than the limit of 1,000,000 bp"):
        find_candidates(yeast, yeast.region("IV"), "SpCas9")
    exons = [yeast.region("IV:1-600000"), yeast.region("IV:700001-1200000")]
    with pytest.raises(InputError, match=r"target of 2 regions is 1,100,000 bp"):
        find_candidates_in_regions(yeast, exons, "SpCas9")


def test_a_gene_without_a_strand_is_read_on_plus(yeast):
    """GFF3 allows strand ``.``; such a gene is targeted like any other (it raised before)."""
    import dataclasses

    act1 = yeast.gene("ACT1")
    unstranded = dataclasses.replace(act1, strand=".")
    regions = gene_regions(unstranded, "exons")
    assert [(r.start0, r.end0) for r in regions] == [
        (r.start0, r.end0) for r in gene_regions(act1, "exons")
    ]
    assert all(r.strand == "+" for r in regions)
