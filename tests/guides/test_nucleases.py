"""Nucleases as data, and the IUPAC codes their PAMs are written in."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from sandgrain.errors import InputError, NotFoundError
from sandgrain.guides.iupac import (
    CODES,
    check_pattern,
    compile_regex,
    expand,
    matches,
    reverse_complement_pattern,
)
from sandgrain.guides.nucleases import (
    NUCLEASES,
    Nuclease,
    custom_nuclease,
    get_nuclease,
    normalize_pam_side,
)

# -- IUPAC ----------------------------------------------------------------------------------------


def test_check_pattern_uppercases_and_names_the_bad_letter():
    assert check_pattern(" nGg ") == "NGG"
    with pytest.raises(InputError, match=r"invalid letter 'X'.*A C G T R Y S W K M B D H V N"):
        check_pattern("NXG")
    with pytest.raises(InputError, match="off-target PAM"):
        check_pattern("N-G", what="off-target PAM")
    with pytest.raises(InputError, match="empty"):
        check_pattern("")


def test_expand_lists_every_concrete_sequence():
    assert expand("NGG") == ["AGG", "CGG", "GGG", "TGG"]
    assert expand("TTTV") == ["TTTA", "TTTC", "TTTG"]
    assert len(expand("NNGRRT")) == 4 * 4 * 2 * 2
    assert expand("A") == ["A"]


def test_matches_agrees_with_expand_on_concrete_sequences():
    for pattern in ("NGG", "NRG", "TTTV", "YBD", "KMS"):
        allowed = set(expand(pattern))
        for letters in itertools.product("ACGT", repeat=len(pattern)):
            seq = "".join(letters)
            assert matches(pattern, seq) == (seq in allowed)
            assert matches(pattern, seq.lower()) == (seq in allowed)


def test_a_genome_n_matches_only_a_pattern_n():
    assert matches("NGG", "NGG")
    assert not matches("NGG", "ANG")
    assert not matches("NGG", "AGN")
    assert not matches("V", "N")
    assert matches("N", "n")
    # an ambiguous sequence letter matches a code that allows all of its bases
    assert matches("R", "R") and matches("V", "R") and not matches("Y", "R")
    assert not matches("NGG", "AG")  # other length
    assert not matches("NGG", "A-G")


def test_reverse_complement_pattern():
    assert reverse_complement_pattern("NGG") == "CCN"
    assert reverse_complement_pattern("TTTV") == "BAAA"
    assert reverse_complement_pattern("NNGRRT") == "AYYCNN"
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    for pattern in ("NGG", "TTTV", "NNGRRT", "SWKMBDH"):
        rc = {"".join(comp[b] for b in reversed(s)) for s in expand(pattern)}
        assert set(expand(reverse_complement_pattern(pattern))) == rc


def test_compile_regex_matches_exactly_the_expansion():
    for pattern in ("NGG", "TTTV", "NRG"):
        rx = compile_regex(pattern)
        allowed = set(expand(pattern))
        for letters in itertools.product("ACGTN", repeat=len(pattern)):
            seq = "".join(letters)
            assert bool(rx.fullmatch(seq)) == (seq in allowed), (pattern, seq)
    assert compile_regex("NGG").fullmatch("agg") is None
    assert compile_regex("NGG", ignore_case=True).fullmatch("agg")
    amb = compile_regex("NGG", ambiguous=True)
    assert amb.fullmatch("NGG") and not amb.fullmatch("ANG")
    overlapping = re.compile(f"(?=({compile_regex('NGG').pattern}))")
    assert [m.start() for m in overlapping.finditer("AGGGG")] == [0, 1, 2]
    assert set(CODES) == set("ACGTRYSWKMBDHVN")


# -- shipped nucleases ----------------------------------------------------------------------------


def test_spcas9():
    cas9 = get_nuclease("SpCas9")
    assert (cas9.pam, cas9.pam_side, cas9.guide_length, cas9.cut_offset) == ("NGG", "3", 20, 17)
    assert cas9.site_length == 23
    assert dict(cas9.offtarget_pams) == pytest.approx({"NAG": 0.259259259, "NGA": 0.069444444})
    # NAG and NGA are searched by default, as CRISPOR does
    assert cas9.default_offtarget_pams == ("NAG", "NGA")
    assert cas9.searched_pams == ("NGG", "NAG", "NGA")
    assert cas9.pam_weight("ngg") == 1.0 and cas9.pam_weight("NAG") == pytest.approx(0.259259259)
    assert cas9.pam_weight("NCG") == 0.0


def test_other_shipped_nucleases():
    sa = get_nuclease("SaCas9")
    assert (sa.pam, sa.pam_side, sa.guide_length, sa.cut_offset, sa.site_length) == (
        "NNGRRT",
        "3",
        21,
        18,
        27,
    )
    for name in ("AsCas12a", "LbCas12a"):
        n = get_nuclease(name)
        assert (n.pam, n.pam_side, n.guide_length, n.cut_offset, n.site_length) == (
            "TTTV",
            "5",
            23,
            18,
            27,
        )
    assert list(NUCLEASES) == ["SpCas9", "SaCas9", "AsCas12a", "LbCas12a"]


def test_get_nuclease_is_case_insensitive_and_lists_the_known_ones():
    assert get_nuclease("spcas9") is NUCLEASES["SpCas9"]
    assert get_nuclease(" ASCAS12A ") is NUCLEASES["AsCas12a"]
    assert get_nuclease("Cas9") is NUCLEASES["SpCas9"]
    assert get_nuclease(NUCLEASES["SaCas9"]) is NUCLEASES["SaCas9"]
    with pytest.raises(NotFoundError, match=r"unknown nuclease 'Cas99'.*SpCas9, SaCas9"):
        get_nuclease("Cas99")


def test_with_offtarget_pams_selects_and_checks():
    cas9 = get_nuclease("SpCas9").with_offtarget_pams(["NAG", "nga"])
    assert cas9.default_offtarget_pams == ("NAG", "NGA")
    assert cas9.searched_pams == ("NGG", "NAG", "NGA")
    assert cas9.pam_weight("NGA") == pytest.approx(0.069444444)
    # a comma-separated string, the main PAM dropped, an unknown PAM gets weight 1
    other = get_nuclease("SpCas9").with_offtarget_pams("NGG,NAG,NCG")
    assert other.default_offtarget_pams == ("NAG", "NCG")
    assert other.pam_weight("NCG") == 1.0
    assert get_nuclease("SpCas9").with_offtarget_pams([]).searched_pams == ("NGG",)
    with pytest.raises(InputError, match="NAGG has 4 letters.*NGG has 3"):
        get_nuclease("SpCas9").with_offtarget_pams(["NAGG"])
    with pytest.raises(InputError, match="invalid letter 'Z'"):
        get_nuclease("SpCas9").with_offtarget_pams(["NZG"])
    # the shipped record is untouched (frozen)
    assert get_nuclease("SpCas9").default_offtarget_pams == ("NAG", "NGA")


def test_to_dict_is_plain_json():
    d = get_nuclease("SpCas9").with_offtarget_pams(["NAG"]).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["pam"] == "NGG" and d["cut_offset"] == 17
    assert d["default_offtarget_pams"] == ["NAG"]
    assert {"pam": "NAG", "weight": 0.259259259} in d["offtarget_pams"]


# -- user-defined ---------------------------------------------------------------------------------


def test_custom_nuclease():
    n = custom_nuclease("nngrrt", 21, "3")
    assert (n.pam, n.guide_length, n.pam_side, n.cut_offset) == ("NNGRRT", 21, "3", 18)
    assert n.name == "custom-NNGRRT-21nt-3'"
    five = custom_nuclease("TTN", "20", "5'", name="mine")
    assert (five.name, five.pam_side, five.cut_offset, five.site_length) == ("mine", "5", 18, 23)
    assert custom_nuclease("TTTV", 16, "5prime").cut_offset == 16
    assert custom_nuclease("NGG", 20, 3, cut_offset=10).cut_offset == 10


@pytest.mark.parametrize("side", ["3", "3'", "3prime", "3 prime", 3, "3′"])
def test_pam_side_spellings(side):
    assert normalize_pam_side(side) == "3"
    assert normalize_pam_side(str(side).replace("3", "5")) == "5"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pam": "NXG"}, r"invalid letter 'X'"),
        ({"pam": "NGU"}, r"invalid letter 'U'"),
        ({"pam": ""}, r"PAM is empty"),
        ({"pam": "NNNNNNNNN"}, r"at most 8"),
        ({"guide_length": 15}, r"guide length 15 is out of range.*16 to 27.*64-bit"),
        ({"guide_length": 28}, r"guide length 28 is out of range"),
        ({"guide_length": "twenty"}, r"whole number"),
        ({"guide_length": 20.5}, r"whole number"),
        ({"pam_side": "left"}, r"PAM side must be 3 .* or 5"),
        ({"cut_offset": 21}, r"cut offset 21 must lie within the 20-nt protospacer"),
    ],
)
def test_custom_nuclease_errors(kwargs, message):
    args = {"pam": "NGG", "guide_length": 20, "pam_side": "3"} | kwargs
    with pytest.raises(InputError, match=message):
        custom_nuclease(**args)


def test_guide_length_limits_are_inclusive():
    assert custom_nuclease("NGG", 16).guide_length == 16
    assert custom_nuclease("NGG", 27).guide_length == 27
    assert custom_nuclease("NNNNNNNN", 20).pam == "NNNNNNNN"


def test_direct_construction_is_checked_too():
    with pytest.raises(InputError, match="off-target PAM NA has 2 letters"):
        Nuclease("x", "NGG", "3", 20, 17, offtarget_pams=(("NA", 0.5),))
    with pytest.raises(InputError, match="not among the off-target PAMs"):
        Nuclease("x", "NGG", "3", 20, 17, default_offtarget_pams=("NAG",))
    n = Nuclease("x", "ngg", "3'", 20, 17)
    assert (n.pam, n.pam_side) == ("NGG", "3")
