"""Chromosome names: aliases both ways, resolution to the genome's own names, clear errors."""

from __future__ import annotations

import pytest

from sandgrain.errors import AmbiguousNameError, InputError, NotFoundError
from sandgrain.genome.chromosomes import ChromosomeNames, alias_candidates

YEAST = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII"] + [
    "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI", "Mito",
]  # fmt: skip
UCSC_YEAST = ["chr" + n for n in YEAST[:-1]] + ["chrM"]
HUMAN_ENSEMBL = [str(i) for i in range(1, 23)] + ["X", "Y", "MT"]
HUMAN_UCSC = ["chr" + n for n in HUMAN_ENSEMBL[:-1]] + ["chrM"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("chrI", ["I"]),
        ("I", ["chrI"]),
        ("chr22", ["22"]),
        ("22", ["chr22"]),
        ("CHR22", ["22"]),  # the case of the prefix does not matter
        ("Chr3", ["3"]),
        ("chrX", ["X"]),
    ],
)
def test_alias_candidates_add_or_remove_chr(name, expected):
    assert alias_candidates(name) == expected


@pytest.mark.parametrize("name", ["chrM", "M", "MT", "chrMT", "Mito", "mitochondrion", "mt"])
def test_alias_candidates_know_the_mitochondrion(name):
    candidates = alias_candidates(name)
    assert name not in candidates
    spellings = {c.lower() for c in candidates} | {name.lower()}
    assert {"chrm", "m", "mt", "chrmt", "mito", "mitochondrion"} <= spellings


def test_alias_candidates_do_not_translate_numbers_to_roman():
    assert alias_candidates("chr15") == ["15"]
    assert "XV" not in alias_candidates("15")
    assert alias_candidates("") == []


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("I", "I"),  # exact
        ("xv", "XV"),  # case-insensitive
        ("chrI", "I"),  # alias: prefix removed
        ("CHRxv", "XV"),
        ("chrM", "Mito"),  # the mitochondrion, any spelling
        ("MT", "Mito"),
        ("M", "Mito"),
        ("mitochondrion", "Mito"),
        (" II ", "II"),  # surrounding blanks are ignored
    ],
)
def test_resolve_yeast_ensembl_names(given, canonical):
    assert ChromosomeNames(YEAST, genome="yeast").resolve(given) == canonical


@pytest.mark.parametrize(
    ("given", "canonical"),
    [("I", "chrI"), ("chrI", "chrI"), ("Mito", "chrM"), ("MT", "chrM"), ("xvi", "chrXVI")],
)
def test_resolve_yeast_ucsc_names(given, canonical):
    assert ChromosomeNames(UCSC_YEAST).resolve(given) == canonical


def test_resolve_human_both_ways():
    ensembl = ChromosomeNames(HUMAN_ENSEMBL, genome="GRCh37")
    ucsc = ChromosomeNames(HUMAN_UCSC, genome="hg19")
    assert ensembl.resolve("chr22") == "22"
    assert ucsc.resolve("22") == "chr22"
    assert ensembl.resolve("chrM") == "MT"
    assert ucsc.resolve("MT") == "chrM"
    assert ensembl.resolve("chrx") == "X"


def test_unknown_chromosome_lists_the_known_names():
    names = ChromosomeNames(YEAST, genome="yeast")
    with pytest.raises(NotFoundError) as err:
        names.resolve("chrZZ")
    message = str(err.value)
    assert message.startswith("unknown chromosome 'chrZZ' in genome yeast; known: I, II, III")
    assert message.endswith("XVI, Mito")
    assert "\n" not in message


def test_unknown_chromosome_in_a_big_assembly_shortens_the_list():
    contigs = [f"scaffold_{i}" for i in range(500)]
    with pytest.raises(NotFoundError) as err:
        ChromosomeNames(contigs, genome="draft").resolve("chr1")
    message = str(err.value)
    assert "scaffold_0, scaffold_1" in message
    assert "scaffold_498, scaffold_499 (500 in all)" in message
    assert "scaffold_250" not in message
    assert len(message) < 400


def test_two_genome_names_for_one_alias_is_ambiguous():
    names = ChromosomeNames(["1", "M", "MT"])
    with pytest.raises(AmbiguousNameError) as err:
        names.resolve("chrM")
    assert sorted(err.value.candidates) == ["M", "MT"]
    # an exact name is never ambiguous
    assert names.resolve("MT") == "MT"


def test_names_differing_only_in_case_are_ambiguous_when_the_case_does_not_match():
    names = ChromosomeNames(["chrX", "chrx"])
    assert names.resolve("chrx") == "chrx"
    with pytest.raises(AmbiguousNameError):
        names.resolve("CHRX")


def test_exact_match_wins_over_an_alias():
    # a genome with both spellings: each resolves to itself
    names = ChromosomeNames(["1", "chr1"])
    assert names.resolve("1") == "1"
    assert names.resolve("chr1") == "chr1"


def test_empty_name_is_an_input_error():
    with pytest.raises(InputError):
        ChromosomeNames(YEAST).resolve("  ")


def test_aliases_of_for_display():
    names = ChromosomeNames(YEAST, genome="yeast")
    assert names.aliases_of("I") == ["chrI"]
    mito = names.aliases_of("Mito")
    assert mito[0] == "chrM"
    assert {"MT", "M", "mitochondrion"} <= set(mito)
    with pytest.raises(NotFoundError):
        names.aliases_of("chrI")  # not a canonical name of this genome


def test_get_contains_and_order():
    names = ChromosomeNames(YEAST, genome="yeast")
    assert names.get("chrIV") == "IV"
    assert names.get("chrZZ") is None
    assert "chrM" in names
    assert "chr99" not in names
    assert list(names) == YEAST
    assert len(names) == 17
