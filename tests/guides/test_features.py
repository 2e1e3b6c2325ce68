"""Per-guide sequence features: GC flags, CHOPCHOP's self-complementarity, restriction sites at
the cut and cloning oligos, each checked against a plain twin or a worked example."""

from __future__ import annotations

import random

import pytest

from sandgrain.errors import InputError
from sandgrain.guides.features import (
    CHOPCHOP_BACKBONE,
    COMMON_ENZYMES,
    GC_HIGH,
    GC_LOW,
    cloning_oligos,
    feature_flags,
    gc_flags,
    restriction_sites,
    restriction_sites_anywhere,
    self_complementarity,
)
from sandgrain.guides.iupac import matches, reverse_complement_pattern

COMP = str.maketrans("ACGT", "TGCA")


def rc(s: str) -> str:
    return s.translate(COMP)[::-1]


def chopchop_count(guide: str, backbone: str | None) -> int:
    """CHOPCHOP's self-complementarity as Labun et al. describe it, written the slow way: each
    4-mer (but the last) with ≥ 50 % GC counts when it occurs in the first len − 5 − i bases of
    the guide's reverse complement, or in the reverse complement of the backbone."""
    rvs = rc(guide)
    regions = [rc(backbone)] if backbone else []
    count = 0
    for i in range(len(guide) - 4):
        w = guide[i : i + 4]
        gc = sum(b in "GC" for b in w) / 4
        if gc >= 0.5 and (w in rvs[: len(guide) - 5 - i] or any(w in r for r in regions)):
            count += 1
    return count


def test_gc_flags_follow_chopchop_thresholds():
    assert (GC_LOW, GC_HIGH) == (40.0, 70.0)
    at = "ATATATATATATATATATAT"
    for n_gc, expected in [(0, ["gc_low"]), (7, ["gc_low"]), (8, []), (14, []), (15, ["gc_high"]),
                           (20, ["gc_high"])]:  # fmt: skip
        guide = "G" * n_gc + at[n_gc:]
        assert gc_flags(guide) == expected, (n_gc, guide)


def test_gc_flags_refuse_non_dna():
    with pytest.raises(InputError, match="only A, C, G, T"):
        gc_flags("ACGTNACGT")
    with pytest.raises(InputError, match="empty"):
        gc_flags("  ")


def test_self_complementarity_worked_examples():
    # GGGG pairs with CCCC 8 bases later (a stem of 4 and a loop of 4)
    assert self_complementarity("GGGGAAAACCCCAAAAAAAA", scaffold=None) == 1
    # the same stem with no loop base between (CCCC right after GGGG) does not count
    assert self_complementarity("AAAAGGGGCCCCAAAAAAAA", scaffold=None) == 0
    # GGAC pairs with the backbone (GTCC in AGGCTAGTCCGT); AT-rich stretches never count
    guide = "AAAAAAGGACAAAAAAAAAA"
    assert self_complementarity(guide, scaffold=None) == 0
    assert self_complementarity(guide) == 1
    assert self_complementarity("ATATATATATATATATATAT") == 0
    # flagged above SELF_COMPLEMENTARITY_MAX (2): a GGGG…CCCC stem, and TAGC and AGCC that
    # pair with the backbone's GCTA and GGCT
    strong = "GGGGATAGCCAAAACCCCAT"
    assert self_complementarity(strong, scaffold=None) == 1
    assert self_complementarity(strong) == chopchop_count(strong, CHOPCHOP_BACKBONE) == 3
    assert feature_flags(strong) == ["self_complementary"]
    assert "self_complementary" not in feature_flags(guide)


def test_self_complementarity_equals_chopchop_rule_on_random_guides():
    rng = random.Random(12)
    for _ in range(3000):
        n = rng.choice([17, 20, 20, 20, 23])
        guide = "".join(rng.choice("ACGT") for _ in range(n))
        backbone = rng.choice([CHOPCHOP_BACKBONE, None, "GTTTTAGAGCTAGAAATAGC"])
        assert self_complementarity(guide, backbone) == chopchop_count(guide, backbone), guide


def reference_sites(window: str, cut: int, enzymes: dict[str, str]) -> list[str]:
    """Every enzyme with a site (either strand) at some start s with s < cut < s + len."""
    found = []
    for name, site in enzymes.items():
        n = len(site)
        for s in range(len(window) - n + 1):
            piece = window[s : s + n]
            if "N" in piece.upper():
                continue
            if s < cut < s + n and (
                matches(site, piece) or matches(reverse_complement_pattern(site), piece)
            ):
                found.append(name)
                break
    return sorted(found, key=str.lower)


def test_restriction_sites_span_the_cut():
    window = "TTTTTGAATTCTTTTT"  # EcoRI GAATTC at 5..11
    assert restriction_sites(window, 8) == ["EcoRI"]
    assert restriction_sites(window, 6) == ["EcoRI"]
    assert restriction_sites(window, 10) == ["EcoRI"]
    assert restriction_sites(window, 5) == []  # the cut is just before the site
    assert restriction_sites(window, 11) == []  # just after it
    # BsaI (GGTCTC) read on the minus strand only, HinfI (GANTC) through its N
    assert restriction_sites("AAAAGAGACCAAAA", 7) == ["BsaI"]
    assert restriction_sites("AAAAGACTCAAAA", 6, {"HinfI": "GANTC"}) == ["HinfI"]
    assert restriction_sites("aaaagaattcaaaa", 7) == ["EcoRI"]  # soft-masked
    assert restriction_sites("AAAAGAANTCAAAA", 7, {"HinfI": "GANTC"}) == []  # genome N
    with pytest.raises(InputError):
        restriction_sites(window, 0)
    with pytest.raises(InputError):
        restriction_sites(window, len(window))


def test_restriction_sites_equal_a_plain_scan_on_random_windows():
    rng = random.Random(5)
    for _ in range(400):
        window = "".join(rng.choice("ACGT" if rng.random() < 0.98 else "N") for _ in range(40))
        cut = rng.randrange(1, len(window))
        assert restriction_sites(window, cut) == reference_sites(window, cut, COMMON_ENZYMES)


def test_enzyme_table_is_well_formed():
    assert len(COMMON_ENZYMES) >= 30
    for name, site in COMMON_ENZYMES.items():
        assert 4 <= len(site) <= 8 and set(site) <= set("ACGTRYSWKMBDHVN"), name
    assert COMMON_ENZYMES["EcoRI"] == "GAATTC" and COMMON_ENZYMES["BsmBI"] == "CGTCTC"


def test_cloning_oligos_for_a_guide_starting_with_g():
    guide = "GAGTCCGAGCAGAAGAAGAA"  # EMX1 guide of Ran et al. 2013
    oligos = cloning_oligos(guide)
    assert oligos["forward"] == "CACC" + guide
    assert oligos["reverse"] == "AAAC" + rc(guide)
    assert oligos["added_g"] is False and oligos["note"] is None
    assert oligos["enzyme"] == "BsmBI" and "lentiCRISPRv2" in oligos["vectors"]
    # the annealed pair: overhangs CACC / AAAC around a perfect duplex
    assert rc(oligos["reverse"][4:]) == oligos["forward"][4:]


def test_cloning_oligos_add_a_5prime_g_for_u6():
    guide = "ACGTACGTACGTACGTACGA"
    oligos = cloning_oligos(guide, system="U6-BbsI")
    assert oligos["forward"] == "CACCG" + guide
    assert oligos["reverse"] == "AAAC" + rc(guide) + "C"
    assert oligos["added_g"] is True and "U6" in oligos["note"]
    assert oligos["enzyme"] == "BbsI" and "pX330" in oligos["vectors"]
    assert rc(oligos["reverse"][4:]) == oligos["forward"][4:]


def test_cloning_oligos_warn_about_an_internal_enzyme_site_and_tttt():
    oligos = cloning_oligos("GACGTCTCAATTTTAGCAGT")
    assert "BsmBI site" in oligos["note"] and "TTTT" in oligos["note"]
    assert restriction_sites_anywhere("GACGTCTCAA", {"BsmBI": "CGTCTC"}) == ["BsmBI"]
    with pytest.raises(InputError, match="unknown cloning system"):
        cloning_oligos("GACGTCTCAATTTTAGCAGT", system="U6-EcoRI")
