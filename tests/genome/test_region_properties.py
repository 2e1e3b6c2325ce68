"""Properties of regions and their text form (:mod:`sandgrain.genome.regions`, ``Genome.region``).

The references are the conventions as the modules state them, written out plainly:

* a :class:`Region` is 0-based half-open (``start0``, ``end0``), as BED and Python slices; its text
  is ``chrom:start-end``, 1-based inclusive, as samtools writes it (so ``start = start0 + 1`` and
  ``end = end0``, and the length is ``end - start + 1``);
* ``chrom:start`` means from ``start`` to the end of the chromosome, a bare ``chrom`` the whole of
  it; thousands separators (``,`` and ``_``) inside numbers are ignored;
* chromosome names may contain ``:`` and ``-``, so the whole text is tried as a name first and
  otherwise split at its last ``:`` (the samtools rule, ``hts_parse_reg``);
* positions start at 1, end ≥ start and both lie on the chromosome; anything else is an
  :class:`~sandgrain.errors.InputError`, an unknown name a
  :class:`~sandgrain.errors.NotFoundError` — never any other exception.

Name resolution itself (aliases, case) is covered by ``test_chromosomes.py``; here the genome's
:class:`~sandgrain.genome.chromosomes.ChromosomeNames` is only the oracle for "is this a name".
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sandgrain.errors import InputError, NotFoundError, SandgrainError
from sandgrain.genome.regions import Region, reverse_complement
from sandgrain.genome.store import Genome, add_genome
from sandgrain.storage import Store

FAST = settings(max_examples=300, deadline=None)
SOME = settings(max_examples=60, deadline=None)

# -- plain references ------------------------------------------------------------------------------
COMPLEMENT = {
    "A": "T", "C": "G", "G": "C", "T": "A", "N": "N",
    "R": "Y", "Y": "R", "K": "M", "M": "K", "S": "S", "W": "W",
    "B": "V", "V": "B", "D": "H", "H": "D",
}  # fmt: skip


def plain_reverse_complement(seq: str) -> str:
    """Complement base by base (case kept: soft-masking), read backwards."""
    out = []
    for base in reversed(seq):
        comp = COMPLEMENT[base.upper()]
        out.append(comp if base.isupper() else comp.lower())
    return "".join(out)


def plain_number(token: str) -> int | None:
    """A 1-based position with optional ``,``/``_`` separators; None when it is not one."""
    digits = token.replace(",", "").replace("_", "")
    if not digits or not all(c in "0123456789" for c in digits):
        return None
    if not all(c in "0123456789,_" for c in token):
        return None
    return int(digits)


def plain_parse(text: str, genome: Genome) -> tuple[str, int, int]:
    """``(chrom, start0, end0)`` of a region text, or raise the error the rules above name."""
    text = text.strip()
    if not text:
        raise InputError("empty")
    whole = genome.names.get(text)
    if whole is not None:
        return whole, 0, genome.length(whole)
    name, sep, rng = text.rpartition(":")
    if not sep or not name:
        name, rng = text, None
    chrom = genome.names.get(name)
    if chrom is None:
        raise NotFoundError(name)
    length = genome.length(chrom)
    if rng is None:
        return chrom, 0, length
    start_text, dash, end_text = rng.strip().partition("-")
    start = plain_number(start_text)
    end = plain_number(end_text) if dash else length
    if start is None or end is None:
        raise InputError("not a range")
    if start < 1 or end < start or end > length:
        raise InputError("bad range")
    return chrom, start - 1, end


def fake_genome(lengths: dict[str, int]) -> Genome:
    """A genome with these chromosomes; only coordinates are used, never the sequence."""
    meta = {"chromosomes": [{"name": n, "length": v} for n, v in lengths.items()]}
    return Genome(SimpleNamespace(name="props", meta=meta))


# -- strategies ------------------------------------------------------------------------------------
#: Chromosome names as FASTA headers have them, with ':' and '-' (``HLA-A*01:01:01:01``,
#: ``22:20000001-21000000`` are real GRCh38/GRCh37 names).
names = st.text(
    alphabet="ACXYMTchrIVun0123456789_.:-*|", min_size=1, max_size=14
).filter(lambda n: n[0] not in ":-" and n[-1] != ":")
lengths = st.integers(min_value=1, max_value=3_000_000_000)
genomes = st.dictionaries(names, lengths, min_size=1, max_size=6).map(fake_genome)


def number_text(n: int, style: int) -> str:
    """``n`` as a user types it: plain, with thousands commas, or with underscores."""
    return (str(n), f"{n:,}", f"{n:_}")[style]


@st.composite
def region_texts(draw, genome: Genome):
    """A valid ``chrom[:start[-end]]`` text of ``genome`` and the region it means."""
    chrom = draw(st.sampled_from(list(genome.names)))
    length = genome.length(chrom)
    start = draw(st.integers(1, length))
    end = draw(st.integers(start, length))
    style = draw(st.integers(0, 2))
    form = draw(st.sampled_from(["range", "start", "whole"]))
    if form == "whole":
        return chrom, (chrom, 0, length)
    if form == "start":
        return f"{chrom}:{number_text(start, style)}", (chrom, start - 1, length)
    text = f"{chrom}:{number_text(start, style)}-{number_text(end, style)}"
    return text, (chrom, start - 1, end)


# -- Region ----------------------------------------------------------------------------------------
@FAST
@given(
    chrom=names,
    start0=st.integers(-5, 10**10),
    size=st.integers(-5, 10**6),
    strand=st.sampled_from(["+", "-", ".", "", "x"]),
)
def test_region_checks_and_text(chrom, start0, size, strand):
    end0 = start0 + size
    if start0 < 0 or end0 < start0 or strand not in ("+", "-"):
        with pytest.raises(InputError):
            Region(chrom, start0, end0, strand)
        return
    r = Region(chrom, start0, end0, strand)
    assert r.length == end0 - start0 == len(range(start0, end0))
    # 1-based inclusive text: first base start0 + 1, last base end0
    assert str(r) == f"{chrom}:{start0 + 1}-{end0}"
    one_start, one_end = (int(x) for x in str(r).rpartition(":")[2].split("-"))
    assert (one_start - 1, one_end) == (start0, end0)
    assert r.length == one_end - one_start + 1


@FAST
@given(genome=genomes, data=st.data())
def test_format_then_parse_round_trips(genome, data):
    chrom = data.draw(st.sampled_from(list(genome.names)))
    length = genome.length(chrom)
    start0 = data.draw(st.integers(0, length - 1))
    end0 = data.draw(st.integers(start0 + 1, length))
    strand = data.draw(st.sampled_from("+-"))
    region = Region(chrom, start0, end0, strand)
    text = str(region)
    # samtools' ambiguity: when the whole text is itself a name, the name wins (checked below)
    assume(genome.names.get(text) is None)
    assert genome.region(text, strand) == region


@FAST
@given(genome=genomes, data=st.data())
def test_parse_matches_plain_reading(genome, data):
    text, expected = data.draw(region_texts(genome))
    assume(genome.names.get(text) in (None, expected[0]))
    assert plain_parse(text, genome) == expected
    got = genome.region(f"  {text} ")
    assert (got.chrom, got.start0, got.end0) == expected
    assert got.strand == "+"
    # the region's own text reads back as the same region (separators and short forms gone)
    if got.length and genome.names.get(str(got)) is None:
        assert genome.region(str(got)) == got


@FAST
@given(genome=genomes, data=st.data())
def test_whole_text_as_a_name_wins(genome, data):
    """A chromosome named like a region (``22:1-5``) is that chromosome, whole."""
    chrom = data.draw(st.sampled_from(list(genome.names)))
    start = data.draw(st.integers(1, 9))
    end = data.draw(st.integers(start, 99))
    region_name = f"{chrom}:{start}-{end}"
    lengths_ = {n: genome.length(n) for n in genome.names}
    lengths_[region_name] = data.draw(lengths)
    g = fake_genome(lengths_)
    if g.names.get(region_name) != region_name:  # an alias of another name matched first
        return
    assert g.region(region_name) == Region(region_name, 0, lengths_[region_name])


@FAST
@given(
    genome=genomes,
    data=st.data(),
    start=st.integers(-3, 2**40),
    end=st.integers(-3, 2**40),
    omit_end=st.booleans(),
)
def test_bad_coordinates_are_input_errors(genome, data, start, end, omit_end):
    chrom = data.draw(st.sampled_from(list(genome.names)))
    length = genome.length(chrom)
    text = f"{chrom}:{start}" if omit_end else f"{chrom}:{start}-{end}"
    assume(genome.names.get(text) is None)
    end_ = length if omit_end else end
    valid = 1 <= start <= end_ <= length
    if valid:
        r = genome.region(text)
        assert (r.chrom, r.start0, r.end0) == (chrom, start - 1, end_)
    else:
        with pytest.raises(InputError):
            genome.region(text)


#: Range parts that are not numbers: words, signs, blanks, decimals, extra dashes.
junk_ranges = st.one_of(
    st.sampled_from(["", " ", "-", "--", "a-b", "1-", "-5", "-5-10", "1-2-3", "1.5-2", "1e3",
                     "0x10", "+5", "5 - 9", "1;2", "5-10bp", "∞"]),
    st.text(alphabet="0123456789-+.eE ;/abc", min_size=1, max_size=10),
)  # fmt: skip


@FAST
@given(genome=genomes, data=st.data(), rng=junk_ranges)
def test_unreadable_ranges_are_input_errors(genome, data, rng):
    chrom = data.draw(st.sampled_from(list(genome.names)))
    text = f"{chrom}:{rng}"
    assume(genome.names.get(text) is None and genome.names.get(text.strip()) is None)
    try:
        expected = plain_parse(text, genome)
    except NotFoundError:
        with pytest.raises(NotFoundError):
            genome.region(text)
        return
    except InputError:
        with pytest.raises(InputError):
            genome.region(text)
        return
    got = genome.region(text)
    assert (got.chrom, got.start0, got.end0) == expected


@FAST
@given(genome=genomes, text=st.text(max_size=30))
def test_any_text_raises_only_sandgrain_errors(genome, text):
    try:
        r = genome.region(text)
    except SandgrainError:
        return
    assert r.chrom in genome.names
    assert 0 <= r.start0 <= r.end0 <= genome.length(r.chrom)


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_text_is_an_input_error(text):
    with pytest.raises(InputError):
        fake_genome({"chr1": 10}).region(text)


@pytest.mark.parametrize("rng", [",", "_", "1-,", ",-5", "1-_"])
def test_separator_only_number(rng):
    """A 'number' made only of separators passes the range pattern and reaches int('')."""
    with pytest.raises(InputError):
        fake_genome({"chr1": 10}).region(f"chr1:{rng}")


def test_numbers_beyond_int_conversion_limit():
    """Over 4,300 digits, int() refuses the string (CPython's limit since 3.11)."""
    with pytest.raises(InputError):
        fake_genome({"chr1": 10}).region("chr1:" + "9" * 5000)


# -- reverse complement and reading sequence through the text form --------------------------------
@FAST
@given(seq=st.text(alphabet="".join(COMPLEMENT) + "".join(COMPLEMENT).lower(), max_size=60))
def test_reverse_complement(seq):
    assert reverse_complement(seq) == plain_reverse_complement(seq)
    assert reverse_complement(reverse_complement(seq)) == seq


SEQS = {
    "chr1": "ACGTacgtNNNNGATTACAgattaca" * 7,
    "HLA-A*01:01:01:01": "GGGCCCAAATTT" * 11 + "ACG",
    "22:20000001-21000000": "TTAGGGnnnnACGT" * 9,
    "c": "A",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Genome:
    """A genome imported through the store, with names holding ':' and '-'."""
    tmp = tmp_path_factory.mktemp("regions")
    fasta = tmp / "small.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in SEQS.items()))
    return add_genome(Store(str(tmp / "store")), "small", str(fasta))


@SOME
@given(data=st.data())
def test_text_region_reads_the_plain_slice(small, data):
    chrom = data.draw(st.sampled_from(sorted(SEQS)))
    seq = SEQS[chrom]
    start = data.draw(st.integers(1, len(seq)))
    end = data.draw(st.integers(start, len(seq)))
    strand = data.draw(st.sampled_from("+-"))
    text = data.draw(st.sampled_from([f"{chrom}:{start:,}-{end:,}", f"{chrom}:{start}-{end}"]))
    r = small.region(text, strand)
    plain = seq[start - 1 : end]
    assert small.fetch(r) == (plain if strand == "+" else plain_reverse_complement(plain))
    assert small.sequence(chrom, r.start0, r.end0, strand) == small.fetch(r)
    assert len(small.fetch(r)) == r.length == end - start + 1
    assert small.region(chrom) == Region(chrom, 0, len(seq))


@SOME
@given(data=st.data())
def test_regions_past_the_end_are_refused(small, data):
    chrom = data.draw(st.sampled_from(sorted(SEQS)))
    length = len(SEQS[chrom])
    start0 = data.draw(st.integers(0, length + 5))
    end0 = data.draw(st.integers(max(start0, length + 1), length + 50))
    with pytest.raises(InputError):
        small.fetch(Region(chrom, start0, end0))
    with pytest.raises(InputError):
        small.region(f"{chrom}:{start0 + 1}-{end0}")
