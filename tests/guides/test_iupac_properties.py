"""Properties of IUPAC matching (:mod:`sandgrain.guides.iupac`) against a plain per-base rule.

The reference is the rule as the module states it, written out base by base: a sequence letter
matches a pattern code when every base the letter may stand for is allowed by the code (a genome
``N`` stands for any base, so it matches only ``N``); letters that are no IUPAC code match
nothing; case is ignored.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sandgrain.guides.iupac import (
    CODES,
    compile_regex,
    expand,
    matches,
    reverse_complement_pattern,
)

# The IUPAC table written out again, independently of the module (IUB 1985).
STANDS_FOR = {
    "A": {"A"},
    "C": {"C"},
    "G": {"G"},
    "T": {"T"},
    "R": {"A", "G"},
    "Y": {"C", "T"},
    "S": {"C", "G"},
    "W": {"A", "T"},
    "K": {"G", "T"},
    "M": {"A", "C"},
    "B": {"C", "G", "T"},
    "D": {"A", "G", "T"},
    "H": {"A", "C", "T"},
    "V": {"A", "C", "G"},
    "N": {"A", "C", "G", "T"},
}
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}

codes = st.sampled_from(sorted(STANDS_FOR))
patterns = st.text(alphabet="".join(sorted(STANDS_FOR)), min_size=1, max_size=8)
#: Sequence letters: IUPAC codes in either case, and a few that are none.
letters = st.sampled_from(sorted(STANDS_FOR) + [c.lower() for c in STANDS_FOR] + list("-.XU"))

FAST = settings(max_examples=300, deadline=None)


def letter_matches(code: str, letter: str) -> bool:
    """The module's matching rule for one position, written plainly."""
    bases = STANDS_FOR.get(letter.upper())
    return bases is not None and bases <= STANDS_FOR[code]


def test_the_table_is_the_iupac_table():
    assert {code: set(b) for code, b in CODES.items()} == STANDS_FOR


@FAST
@given(st.data(), patterns)
def test_matches_is_the_per_base_rule(data, pattern):
    seq = data.draw(st.text(alphabet=letters, min_size=len(pattern), max_size=len(pattern)))
    want = all(letter_matches(p, s) for p, s in zip(pattern, seq, strict=True))
    assert matches(pattern, seq) is want
    assert matches(pattern.lower(), seq) is want  # case is ignored on both sides


@FAST
@given(patterns, st.text(alphabet=letters, max_size=10))
def test_other_lengths_never_match(pattern, seq):
    if len(seq) != len(pattern):
        assert not matches(pattern, seq)


@FAST
@given(patterns, st.data())
def test_the_regexes_follow_the_rule(pattern, data):
    seq = data.draw(st.text(alphabet="ACGTNRYacgtn", min_size=len(pattern), max_size=len(pattern)))
    concrete = all(s in "ACGT" and s in STANDS_FOR[p] for p, s in zip(pattern, seq, strict=True))
    assert bool(compile_regex(pattern).fullmatch(seq)) is concrete
    caseless = compile_regex(pattern, ignore_case=True).fullmatch(seq)
    upper = seq.upper()
    assert bool(caseless) is all(
        s in "ACGT" and s in STANDS_FOR[p] for p, s in zip(pattern, upper, strict=True)
    )
    ambiguous = compile_regex(pattern, ambiguous=True).fullmatch(seq.upper())
    assert bool(ambiguous) is matches(pattern, seq)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="".join(sorted(STANDS_FOR)), min_size=1, max_size=4))
def test_expand_lists_exactly_the_concrete_matches(pattern):
    every = ["".join(p) for p in itertools.product("ACGT", repeat=len(pattern))]
    assert expand(pattern) == [s for s in every if matches(pattern, s)]


@FAST
@given(patterns, st.data())
def test_reverse_complement_reads_the_other_strand(pattern, data):
    rc = reverse_complement_pattern(pattern)
    assert reverse_complement_pattern(rc) == pattern
    assert [STANDS_FOR[c] for c in rc] == [
        {COMPLEMENT[b] for b in STANDS_FOR[c]} for c in reversed(pattern)
    ]
    seq = data.draw(st.text(alphabet="ACGT", min_size=len(pattern), max_size=len(pattern)))
    other = "".join(COMPLEMENT[b] for b in reversed(seq))
    assert matches(pattern, seq) is matches(rc, other)


@FAST
@given(codes, codes)
def test_a_code_matches_exactly_the_codes_it_contains(code, letter):
    assert matches(code, letter) is (STANDS_FOR[letter] <= STANDS_FOR[code])
