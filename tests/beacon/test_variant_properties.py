"""Properties of variant normalisation, identifiers and HGVS alleles (:mod:`sandgrain.beacon`).

The references are plain statements of the conventions the modules cite:

* a VCF-style edit ``(pos0, REF, ALT)`` replaces ``REF``, which must be the reference's bases at
  0-based ``pos0``, by ``ALT`` (VCF v4.3 §1.6.1); two edits are the same variant when they turn the
  same reference into the same haplotype — :func:`apply_vcf` does exactly that, on strings;
* the minimal representation (Lek et al. 2016, Nature 536:285) drops the bases REF and ALT share
  at the end, then at the start, always keeping one base of each;
* a multi-allelic record is split into one REF/ALT pair per ALT, each normalised on its own;
* HGVS genomic edits (den Dunnen et al. 2016, Hum Mutat 37:564) are 1-based inclusive: ``g.5A>T``
  substitutes, ``g.5_7del`` removes bases 5..7, ``g.5_6insAC`` inserts between 5 and 6,
  ``g.5_7dup`` repeats 5..7 after 7, ``g.5_7delinsAC`` replaces 5..7 — :func:`apply_hgvs`.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sandgrain.beacon import ingest
from sandgrain.beacon.query import Hgvs, hgvs_to_vcf, parse_hgvs
from sandgrain.beacon.variants import (
    MAX_PLAIN_ID,
    minimal_representation,
    parse_variant_id,
    variant_id,
    variant_type,
)
from sandgrain.errors import InputError
from sandgrain.genome.chromosomes import ChromosomeNames

FAST = settings(max_examples=300, deadline=None)


# -- plain references ------------------------------------------------------------------------------
def apply_vcf(seq: str, pos0: int, ref: str, alt: str) -> str:
    """The haplotype a VCF-style edit makes of ``seq``; REF must be what ``seq`` has there."""
    assert seq[pos0 : pos0 + len(ref)] == ref, "REF does not match the reference"
    return seq[:pos0] + alt + seq[pos0 + len(ref) :]


def plain_minimal(pos0: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Count the shared suffix, then the shared prefix, each leaving at least one base."""
    suffix = 0
    while suffix < min(len(ref), len(alt)) - 1 and ref[-1 - suffix] == alt[-1 - suffix]:
        suffix += 1
    ref, alt = ref[: len(ref) - suffix], alt[: len(alt) - suffix]
    prefix = 0
    while prefix < min(len(ref), len(alt)) - 1 and ref[prefix] == alt[prefix]:
        prefix += 1
    return pos0 + prefix, ref[prefix:], alt[prefix:]


def plain_type(ref: str, alt: str) -> str:
    if len(ref) == len(alt):
        return "SNP" if len(ref) == 1 else "MNP"
    if len(ref) == 1 and alt.startswith(ref):
        return "INS"
    if len(alt) == 1 and ref.startswith(alt):
        return "DEL"
    return "INDEL"


def plain_parse_id(text: str) -> tuple[str, int] | None:
    """``chrom-pos1-REF-ALT`` (bases ACGTN) or ``chrom-pos1-h<16 hex>``; anything else None."""
    parts = text.split("-")

    def pos(token: str) -> int | None:
        return int(token) - 1 if token and all(c in "0123456789" for c in token) else None

    def bases(token: str) -> bool:
        return bool(token) and all(c in "ACGTN" for c in token)

    if len(parts) >= 4 and bases(parts[-2]) and bases(parts[-1]):
        chrom, p = "-".join(parts[:-3]), pos(parts[-3])
        if chrom and "\n" not in chrom and p is not None:
            return chrom, p
    if len(parts) >= 3:
        h = parts[-1]
        hashed = len(h) == 17 and h[0] == "h" and all(c in "0123456789abcdef" for c in h[1:])
        chrom, p = "-".join(parts[:-2]), pos(parts[-2])
        if hashed and chrom and "\n" not in chrom and p is not None:
            return chrom, p
    return None


def apply_hgvs(seq: str, h: Hgvs) -> str:
    """The haplotype an HGVS genomic edit makes of ``seq`` (0-based ``start0``/``end0`` of h)."""
    if h.op == "sub":
        assert seq[h.start0] == h.ref
        return seq[: h.start0] + h.alt + seq[h.start0 + 1 :]
    if h.op == "del":
        return seq[: h.start0] + seq[h.end0 :]
    if h.op == "ins":  # between 0-based start0 - 1 and start0
        return seq[: h.start0] + h.alt + seq[h.start0 :]
    if h.op == "dup":
        return seq[: h.end0] + seq[h.start0 : h.end0] + seq[h.end0 :]
    return seq[: h.start0] + h.alt + seq[h.end0 :]  # delins


# -- strategies ------------------------------------------------------------------------------------
dna = st.text(alphabet="ACGT", min_size=1, max_size=8)
#: Low-complexity references make shared prefixes, suffixes and repeats common.
references = st.text(alphabet="ACGT", min_size=1, max_size=40) | st.text(
    alphabet="AC", min_size=1, max_size=40
)
chroms = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="\n\r"), min_size=1, max_size=12
)


@st.composite
def vcf_edits(draw):
    """A reference and a VCF edit on it: REF taken from the reference, ALT random, ALT ≠ REF."""
    seq = draw(references)
    pos0 = draw(st.integers(0, len(seq) - 1))
    ref = seq[pos0 : pos0 + draw(st.integers(1, len(seq) - pos0))]
    alt = draw(st.text(alphabet=draw(st.sampled_from(["ACGT", "AC", "A"])), min_size=1, max_size=8))
    assume(alt != ref)
    return seq, pos0, ref, alt


# -- minimal representation ------------------------------------------------------------------------
@FAST
@given(edit=vcf_edits())
def test_minimal_representation_keeps_the_haplotype(edit):
    seq, pos0, ref, alt = edit
    p, r, a = minimal_representation(pos0, ref, alt)
    assert (p, r, a) == plain_minimal(pos0, ref, alt)
    assert r and a, "an allele never becomes empty: one base is kept"
    assert apply_vcf(seq, p, r, a) == apply_vcf(seq, pos0, ref, alt)
    assert minimal_representation(p, r, a) == (p, r, a), "normalising is idempotent"
    # nothing more can be trimmed: shared end or start only where an allele is one base
    if len(r) > 1 and len(a) > 1:
        assert r[-1] != a[-1] and r[0] != a[0]
    assert variant_type(r, a) == plain_type(r, a)


@FAST
@given(
    seq=references,
    data=st.data(),
    alts=st.lists(st.text(alphabet="ACGT", min_size=1, max_size=6), min_size=2, max_size=4),
)
def test_multiallelic_split_keeps_each_haplotype(seq, data, alts):
    """Each ALT of a multi-allelic record, split and normalised alone, is still that ALT."""
    pos0 = data.draw(st.integers(0, len(seq) - 1))
    ref = seq[pos0 : pos0 + data.draw(st.integers(1, len(seq) - pos0))]
    for alt in alts:
        if alt == ref:
            continue
        p, r, a = minimal_representation(pos0, ref, alt)
        assert apply_vcf(seq, p, r, a) == apply_vcf(seq, pos0, ref, alt)


@FAST
@given(
    pos0=st.integers(0, 10**9),
    ref=dna,
    alt=st.sampled_from(["<DEL>", "<DUP:TANDEM>", "<INV>", "<CNV>", "G]17:198982]", "]13:123]T"]),
)
def test_symbolic_alleles_are_left_alone(pos0, ref, alt):
    assert minimal_representation(pos0, ref, alt) == (pos0, ref, alt)


# -- identifiers -----------------------------------------------------------------------------------
@FAST
@given(
    chrom=chroms,
    pos0=st.integers(0, 10**10),
    ref=st.text(alphabet="ACGTN", min_size=1, max_size=30) | st.sampled_from(["<DEL>", "a", ""]),
    alt=st.text(alphabet="ACGTN", min_size=1, max_size=30) | st.sampled_from(["<INS>", "G]2:9]"]),
)
def test_variant_ids_round_trip(chrom, pos0, ref, alt):
    vid = variant_id(chrom, pos0, ref, alt)
    assert parse_variant_id(vid) == (chrom, pos0) == plain_parse_id(vid)
    tail = vid[len(chrom) :]
    assert vid.startswith(chrom) and re.fullmatch(r"[-0-9A-Za-z]+", tail), "URL-safe after chrom"
    plain = len(ref) + len(alt) <= MAX_PLAIN_ID and bool(
        re.fullmatch("[ACGTN]+", ref) and re.fullmatch("[ACGTN]+", alt)
    )
    assert (vid == f"{chrom}-{pos0 + 1}-{ref}-{alt}") == plain
    assert variant_id(chrom, pos0, ref, alt) == vid, "stable"
    if (ref, alt) != (alt, ref):
        assert variant_id(chrom, pos0, alt, ref) != vid


#: Texts near the id form: ids with one character changed, cut or added, and plain junk.
@st.composite
def id_like(draw):
    vid = variant_id(draw(chroms), draw(st.integers(0, 10**6)), draw(dna), draw(dna))
    i = draw(st.integers(0, len(vid)))
    change = draw(st.sampled_from(["cut", "drop", "insert", "replace"]))
    c = draw(st.sampled_from(list("-0123456789ACGTNhafx ") + ["", "--"]))
    if change == "cut":
        return vid[:i]
    if change == "drop":
        return vid[:i] + vid[i + 1 :]
    if change == "insert":
        return vid[:i] + c + vid[i:]
    return vid[:i] + c + vid[i + 1 :]


@FAST
@given(text=id_like() | st.text(max_size=40))
def test_parse_variant_id_matches_plain_reading(text):
    assert parse_variant_id(text) == plain_parse_id(text)


def test_trailing_newline_is_not_an_id():
    assert parse_variant_id("1-5-A-C\n") is None


def test_huge_position_is_not_an_id():
    assert parse_variant_id("1-" + "9" * 5000 + "-A-C") is None


# -- HGVS ------------------------------------------------------------------------------------------
accessions = st.text(alphabet="ACGNT_0123456789.XYMchr", min_size=1, max_size=14)


@st.composite
def hgvs_texts(draw):
    """A valid HGVS genomic allele and the :class:`Hgvs` it means."""
    seq_name = draw(accessions)
    s = draw(st.integers(1, 10**9))
    op = draw(st.sampled_from(["sub", "del", "ins", "dup", "delins"]))
    if op == "sub":
        ref, alt = draw(st.sampled_from("ACGTN")), draw(st.sampled_from("ACGTN"))
        return f"{seq_name}:g.{s}{ref}>{alt}", Hgvs(seq_name, seq_name, s - 1, s, "sub", ref, alt)
    if op == "ins":
        bases = draw(dna)
        h = Hgvs(seq_name, seq_name, s, s, "ins", "", bases)
        return f"{seq_name}:g.{s}_{s + 1}ins{bases}", h
    e = s + draw(st.integers(0, 20))
    span = f"{s}" if e == s and draw(st.booleans()) else f"{s}_{e}"
    if op == "del":
        bases = draw(st.text(alphabet="ACGT", min_size=e - s + 1, max_size=e - s + 1))
        bases = bases if draw(st.booleans()) else ""
        return f"{seq_name}:g.{span}del{bases}", Hgvs(seq_name, seq_name, s - 1, e, "del", bases)
    if op == "dup":
        return f"{seq_name}:g.{span}dup", Hgvs(seq_name, seq_name, s - 1, e, "dup")
    bases = draw(dna)
    h = Hgvs(seq_name, seq_name, s - 1, e, "delins", "", bases)
    return f"{seq_name}:g.{span}delins{bases}", h


@FAST
@given(case=hgvs_texts(), pad=st.sampled_from(["", " ", "\t"]))
def test_hgvs_parses_to_its_edit(case, pad):
    text, expected = case
    assert parse_hgvs(pad + text + pad) == expected
    assert 0 <= expected.start0 <= expected.end0


hgvs_junk = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789_:g.ACGTNdelinsup>()?+- ", max_size=30),
    st.builds(lambda a, b: f"{a}:g.{b}", accessions, st.text(alphabet="0123456789_ACGT>delinsup",
                                                            max_size=16)),
)  # fmt: skip


@FAST
@given(text=hgvs_junk)
def test_hgvs_junk_raises_only_input_errors(text):
    try:
        h = parse_hgvs(text)
    except InputError:
        return
    assert 0 <= h.start0 <= h.end0
    assert h.op in ("sub", "del", "ins", "dup", "delins")


def test_hgvs_substitution_with_a_range_is_refused():
    with pytest.raises(InputError):
        parse_hgvs("1:g.5_7A>T")


def test_hgvs_huge_position_is_an_input_error():
    with pytest.raises(InputError):
        parse_hgvs("1:g." + "9" * 5000 + "del")


# -- HGVS → VCF on a reference ---------------------------------------------------------------------
def reference_genome(seq: str):
    """A one-chromosome genome that hgvs_to_vcf reads through the ingest's genome lookup."""
    return SimpleNamespace(
        names=ChromosomeNames(["1"]),
        length=lambda chrom: len(seq),
        sequence=lambda chrom, s, e: seq[s:e],
    )


def to_vcf(seq: str, h: Hgvs):
    """:func:`hgvs_to_vcf` of ``h`` with ``seq`` as the assembly's only chromosome, ``1``."""
    with mock.patch.object(ingest, "_reference_genome", lambda store, asm: reference_genome(seq)):
        return hgvs_to_vcf(h, [None], "test")


@st.composite
def hgvs_on(draw):
    """A reference and an HGVS edit that fits on it (bases as the reference has them)."""
    seq = draw(references)
    op = draw(st.sampled_from(["sub", "del", "ins", "dup", "delins"]))
    assume(op != "del" or len(seq) > 1)
    s0 = draw(st.integers(0, len(seq) - 1))
    e0 = draw(st.integers(s0 + 1, len(seq)))
    assume(op != "del" or s0 > 0 or e0 < len(seq))  # deleting a whole chromosome has no VCF form
    if op == "sub":
        alt = draw(st.sampled_from([b for b in "ACGT" if b != seq[s0]]))
        return seq, Hgvs("1", "1", s0, s0 + 1, "sub", seq[s0], alt)
    if op == "ins":
        return seq, Hgvs("1", "1", max(s0, 1), max(s0, 1), "ins", "", draw(dna))
    if op == "del":
        return seq, Hgvs("1", "1", s0, e0, "del", seq[s0:e0] if draw(st.booleans()) else "")
    if op == "dup":
        return seq, Hgvs("1", "1", s0, e0, "dup")
    alt = draw(dna)
    assume(alt != seq[s0:e0])
    return seq, Hgvs("1", "1", s0, e0, "delins", "", alt)


@FAST
@given(case=hgvs_on())
def test_hgvs_to_vcf_keeps_the_haplotype(case):
    seq, h = case
    vcf = to_vcf(seq, h)
    assert vcf not in (None, False)
    p, r, a = vcf
    assert p >= 0 and r and a
    assert apply_vcf(seq, p, r, a) == apply_hgvs(seq, h)
    if h.op in ("del", "ins", "dup") and p > 0:
        # left-aligned: the anchor base differs from the last base deleted or inserted
        assert r[0] == a[0] and (r[0] != r[-1] if len(r) > 1 else a[0] != a[-1])


@FAST
@given(case=hgvs_on(), wrong=st.sampled_from("ACGT"))
def test_hgvs_bases_that_contradict_the_reference_are_false(case, wrong):
    seq, h = case
    if h.op == "sub":
        assume(wrong != seq[h.start0])
        h = Hgvs("1", "1", h.start0, h.end0, "sub", wrong, h.alt if h.alt != wrong else "N")
    elif h.op == "del":
        bad = wrong * (h.end0 - h.start0)
        assume(bad != seq[h.start0 : h.end0])
        h = Hgvs("1", "1", h.start0, h.end0, "del", bad)
    else:
        h = Hgvs("1", "1", len(seq) + 1, len(seq) + 2, h.op, "", h.alt)  # past the end
    assert to_vcf(seq, h) is False


def test_hgvs_deletion_of_the_first_base():
    seq = "ACGTTTGCA"
    h = parse_hgvs("1:g.1_2del")
    p, r, a = to_vcf(seq, h)
    assert p >= 0 and r and a
    assert apply_vcf(seq, p, r, a) == seq[2:]
