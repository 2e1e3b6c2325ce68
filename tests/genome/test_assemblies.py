"""Assemblies, chromosome names and accessions: the table's published facts, and properties of
the name resolution every domain uses (any spelling of a chromosome gives one canonical name;
anything else is a clear error, never a crash)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandgrain.errors import AmbiguousNameError, InputError, NotFoundError
from sandgrain.genome.assemblies import (
    ASSEMBLIES,
    MITO_NAMES,
    accession_chrom,
    canonical_assembly,
    canonical_chrom,
    find_assembly,
    get_assembly,
    refseq_accession,
    resolve_chrom,
    same_assembly,
    sequence_id,
    strip_curie,
)
from sandgrain.genome.chromosomes import ChromosomeNames

HUMAN = [str(i) for i in range(1, 23)] + ["X", "Y", "MT"]

# every (assembly, chromosome, spelling) of the table
SPELLINGS = [
    (a.name, c.name, spelling) for a in ASSEMBLIES.values() for c in a for spelling in c.spellings()
]


def _recase(text: str, flips: list[bool]) -> str:
    """``text`` with the case of the letters where ``flips`` says so swapped."""
    flips = flips + [False] * (len(text) - len(flips))
    return "".join(ch.swapcase() if f else ch for ch, f in zip(text, flips, strict=False))


# -- the table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assembly", "chrom", "refseq", "genbank"),
    [
        ("GRCh37", "20", "NC_000020.10", "CM000682.1"),
        ("GRCh38", "20", "NC_000020.11", "CM000682.2"),
        ("GRCh37", "1", "NC_000001.10", "CM000663.1"),
        ("GRCh38", "X", "NC_000023.11", "CM000685.2"),
        ("GRCh37", "Y", "NC_000024.9", "CM000686.1"),
        ("GRCh38", "MT", "NC_012920.1", "J01415.2"),
        ("R64", "I", "NC_001133.9", "BK006935.2"),
        ("R64", "VIII", "NC_001140.6", "BK006934.2"),
        ("R64", "XIV", "NC_001146.8", "BK006947.3"),
        ("R64", "Mito", "NC_001224.1", "AJ011856.1"),
        ("ASM985889v3", "NC_045512.2", "NC_045512.2", "MN908947.3"),
    ],
)
def test_accessions_of_the_ncbi_assembly_reports(assembly, chrom, refseq, genbank):
    c = ASSEMBLIES[assembly].find(chrom)
    assert (c.name, c.refseq, c.genbank) == (chrom, refseq, genbank)
    assert resolve_chrom(assembly, refseq) == resolve_chrom(assembly, genbank) == chrom


def test_human_assemblies_have_every_chromosome_in_order():
    for name in ("GRCh37", "GRCh38"):
        chroms = ASSEMBLIES[name].chromosomes
        assert [c.name for c in chroms] == HUMAN
        for i, c in enumerate(chroms[:24], 1):
            assert c.refseq.startswith(f"NC_{i:06d}.")
            assert c.genbank.startswith(f"CM{662 + i:06d}.")
            assert c.ucsc == f"chr{c.name}"
    # every nuclear chromosome got a new version in GRCh38; the mitochondrion (rCRS) did not
    for c37, c38 in zip(ASSEMBLIES["GRCh37"], ASSEMBLIES["GRCh38"], strict=True):
        v37, v38 = int(c37.refseq.split(".")[1]), int(c38.refseq.split(".")[1])
        assert v38 == (v37 if c37.name == "MT" else v37 + 1)
    yeast = [c.name for c in ASSEMBLIES["R64"]]
    assert yeast[-1] == "Mito" and len(yeast) == 17


@pytest.mark.parametrize("assembly", ["GRCh37", "GRCh38"])
def test_refseq_curie_resolves_like_accession_number_and_chr_name(assembly):
    accession = ASSEMBLIES[assembly].find("20").refseq
    given = [f"refseq:{accession}", accession, "20", "chr20", f"REFSEQ:{accession.lower()}"]
    assert {resolve_chrom(assembly, g) for g in given} == {"20"}
    for genome_names in (HUMAN, ["chr" + c for c in HUMAN[:-1]] + ["chrM"]):
        names = ChromosomeNames(genome_names, assembly=assembly)
        assert {names.resolve(g) for g in given} == {genome_names[19]}
    # another build's accession is another sequence: not a chromosome of this assembly
    other = ASSEMBLIES["GRCh38" if assembly == "GRCh37" else "GRCh37"].find("20").refseq
    with pytest.raises(NotFoundError, match=f"unknown chromosome '{other}' in assembly"):
        resolve_chrom(assembly, other)
    assert ChromosomeNames(HUMAN, assembly=assembly).get(other) is None


def test_assembly_aliases():
    for alias in ("hg19", "b37", "hs37d5", "GRCh37", "grch37", "GRCh37.p13"):
        assert canonical_assembly(alias) == "GRCh37"
    for alias in ("hg38", "GRCh38.p14", "b38"):
        assert canonical_assembly(alias) == "GRCh38"
    for alias in ("R64", "R64-1-1", "sacCer3"):
        assert canonical_assembly(alias) == "R64"
    for alias in ("MN908947", "MN908947.3", "NC_045512", "NC_045512.2", "wuhCor1"):
        assert canonical_assembly(alias) == "ASM985889v3"
    assert canonical_assembly(" T2T-CHM13 ") == "T2T-CHM13"  # unknown: kept
    assert find_assembly("T2T-CHM13") is None and find_assembly(None) is None
    assert same_assembly("hg19", "GRCh37.p13") and not same_assembly("hg19", "hg38")
    assert not same_assembly("", "GRCh37") and not same_assembly(None, None)
    with pytest.raises(InputError):
        canonical_assembly("  ")
    with pytest.raises(NotFoundError, match="unknown assembly 'hg17'"):
        get_assembly("hg17")


def test_refseq_accession_and_sequence_id():
    assert refseq_accession("hg19", "chr17") == "NC_000017.10"
    assert refseq_accession("GRCh38.p14", "17") == "NC_000017.11"
    assert refseq_accession("GRCh38", "chrM") == "NC_012920.1"
    assert refseq_accession("sacCer3", "chrXV") == "NC_001147.6"
    assert refseq_accession("T2T-CHM13", "1") is None
    assert refseq_accession(None, "1") is None
    assert sequence_id("GRCh37", "chrM") == "refseq:NC_012920.1"
    assert sequence_id("GRCh37", "GL000192.1") == "insdc:GL000192.1"
    assert sequence_id("GRCh37", "NT_113878.1") == "refseq:NT_113878.1"
    assert sequence_id("GRCh37", "chrUn_gl000220") == "GRCh37:chrUn_gl000220"
    assert sequence_id(None, "contig7") == "unknown:contig7"


def test_canonical_chrom_without_a_known_assembly():
    assert canonical_chrom("chrM") == canonical_chrom("M") == canonical_chrom("chrMT") == "MT"
    assert canonical_chrom("chrx") == "X" and canonical_chrom("chr1") == "1"
    assert canonical_chrom("chrUn_gl000220") == "Un_gl000220"
    assert canonical_chrom("NC_000020.9") == "20"  # a human RefSeq chromosome of any build
    assert canonical_chrom("refseq:NC_000023.11") == "X"
    assert canonical_chrom("chrM", "R64") == "Mito" and canonical_chrom("chrM", "hg19") == "MT"
    assert accession_chrom("BK006934.2") == "VIII" and accession_chrom("chr1") is None


def test_mitochondrion_spellings_are_one_chromosome():
    for assembly, canonical in (("GRCh37", "MT"), ("GRCh38", "MT"), ("R64", "Mito")):
        assert {resolve_chrom(assembly, n) for n in MITO_NAMES} == {canonical}


def test_genome_names_resolve_accessions_of_their_assembly():
    yeast = ChromosomeNames(["I", "II", "Mito"], genome="yeast", assembly="R64-1-1")
    assert yeast.resolve("NC_001133.9") == yeast.resolve("refseq:NC_001133.9") == "I"
    assert yeast.resolve("insdc:BK006936.2") == "II"
    assert yeast.resolve("NC_001224.1") == "Mito"
    # a genome named by accessions answers to the usual names
    ncbi = ChromosomeNames(["NC_000001.11", "NC_000002.12"], assembly="GRCh38")
    assert ncbi.resolve("chr2") == ncbi.resolve("2") == "NC_000002.12"
    # without an assembly, a CURIE still reaches a sequence named by its accession
    sars = ChromosomeNames(["NC_045512.2"])
    assert sars.resolve("refseq:NC_045512.2") == "NC_045512.2"
    # with both spellings in the genome, the accession is ambiguous, not a guess
    with pytest.raises(AmbiguousNameError):
        ChromosomeNames(["1", "chr1"], assembly="GRCh37").resolve("NC_000001.10")
    with pytest.raises(NotFoundError):
        yeast.resolve("NC_000001.10")


# -- properties -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SPELLINGS), st.lists(st.booleans(), max_size=40), st.sampled_from(["", " "]))
def test_every_spelling_of_every_chromosome_resolves_to_its_canonical_name(entry, flips, pad):
    assembly, canonical, spelling = entry
    given = pad + _recase(spelling, flips) + pad
    assert resolve_chrom(assembly, given) == canonical
    assert canonical_chrom(given, assembly) == canonical
    # ... and through any alias of the assembly
    alias = ASSEMBLIES[assembly].aliases[0]
    assert resolve_chrom(alias, given) == canonical


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(ASSEMBLIES)), st.data())
def test_accessions_round_trip(assembly, data):
    chrom = data.draw(st.sampled_from(ASSEMBLIES[assembly].chromosomes))
    spelling = data.draw(st.sampled_from(chrom.spellings()))
    accession = refseq_accession(assembly, spelling)
    assert accession == chrom.refseq
    assert resolve_chrom(assembly, accession) == chrom.name
    assert resolve_chrom(assembly, strip_curie(sequence_id(assembly, spelling))) == chrom.name
    assert accession_chrom(chrom.genbank) == chrom.name


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(ASSEMBLIES)), st.data())
def test_genome_names_in_any_style_resolve_every_spelling(assembly, data):
    """A genome whose FASTA uses canonical, UCSC or RefSeq names finds each chromosome by any
    spelling of the assembly."""
    chroms = ASSEMBLIES[assembly].chromosomes
    style = data.draw(st.sampled_from(["name", "ucsc", "refseq", "genbank"]))
    names = ChromosomeNames([getattr(c, style) for c in chroms], assembly=assembly)
    chrom = data.draw(st.sampled_from(chroms))
    spelling = data.draw(st.sampled_from(chrom.spellings()))
    assert names.resolve(spelling) == getattr(chrom, style)


_KNOWN = {a.name: {s.lower() for c in a for s in c.spellings()} for a in ASSEMBLIES.values()}
# names to try: any text, and the spellings of every assembly (each valid for only some)
_NAMES = st.one_of(st.text(max_size=30), st.sampled_from([s for _, _, s in SPELLINGS]))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(list(ASSEMBLIES)), _NAMES)
def test_other_names_are_rejected_cleanly(assembly, text):
    try:
        result = resolve_chrom(assembly, text)
    except InputError:
        assert not text.strip()
    except NotFoundError as e:
        assert text.strip().lower() not in _KNOWN[assembly]
        assert str(e).startswith("unknown chromosome")
    else:
        assert result in {c.name for c in ASSEMBLIES[assembly]}
    # the lenient forms never raise
    assert isinstance(canonical_chrom(text or "x", assembly), str)
    assert accession_chrom(text) is None or accession_chrom(text) in {
        c.name for a in ASSEMBLIES.values() for c in a
    } | {str(i) for i in range(1, 23)} | {"X", "Y"}
    assert isinstance(sequence_id(assembly, text), str)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.text(alphabet="0123456789.p", max_size=4))
def test_assembly_names_never_crash(name, suffix):
    if not name.strip():
        with pytest.raises(InputError):
            canonical_assembly(name)
        return
    canonical = canonical_assembly(name)
    known = find_assembly(name)
    assert canonical == (known.name if known else name.strip())
    if known is not None and "." not in name:
        assert canonical_assembly(name + "." + suffix) == known.name
