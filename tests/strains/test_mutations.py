"""Mutation calls: planted changes come back in Nextclade's notation, and the shared genomes carry
the changes their history says they must."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from strains_fixtures import METADATA, cds, genomes, reference, reference_text

from sandgrain.genome.annotation.read import read_annotation
from sandgrain.strains.align import Reference, align
from sandgrain.strains.mutations import call_mutations, coding_sequences


def calls_of(seq: str, strain: str = "q"):
    return call_mutations(reference(), cds(), align(reference(), seq), strain)


def mutate(subs: dict[int, str] = (), deletions=(), insertions=()) -> str:
    """MN908947 with substitutions {pos1: base}, deletions [(first1, last1)] and insertions
    [(after1, bases)], all in 1-based reference coordinates."""
    ref = reference_text()
    out = []
    subs = dict(subs)
    deleted = {p for a, b in deletions for p in range(a, b + 1)}
    inserted = dict(insertions)
    for pos1 in range(1, len(ref) + 1):
        if pos1 not in deleted:
            out.append(subs.get(pos1, ref[pos1 - 1]))
        if pos1 in inserted:
            out.append(inserted[pos1])
    return "".join(out)


def test_the_reference_has_no_differences():
    c = calls_of(reference_text())
    assert (c.substitutions, c.deletions, c.insertions, c.missing) == ([], [], [], [])
    assert (c.aa_substitutions, c.frame_shifts, c.stop_codons) == ([], [], [])
    assert (c.alignment_start, c.alignment_end) == (1, 29903)


def test_d614g_and_its_companions():
    c = calls_of(mutate({241: "T", 3037: "T", 14408: "T", 23403: "G"}))
    assert c.substitutions == ["C241T", "C3037T", "C14408T", "A23403G"]
    assert c.aa_substitutions == ["ORF1b:P314L", "S:D614G"]  # C3037T is synonymous


@pytest.mark.parametrize(
    ("deletion", "aa"),
    [
        ((21765, 21770), ["S:H69-", "S:V70-"]),  # B.1.1.7's 69/70 deletion
        ((21992, 21994), ["S:Y144-"]),  # placed right of its left-aligned form
        ((11288, 11296), ["ORF1a:S3675-", "ORF1a:G3676-", "ORF1a:F3677-"]),
    ],
)
def test_known_deletions_are_named_as_nextclade_names_them(deletion, aa):
    c = calls_of(mutate(deletions=[deletion]))
    expected = {(21992, 21994): "del:21991-21993"}.get(deletion, f"del:{deletion[0]}-{deletion[1]}")
    assert c.deletions == [expected]
    assert c.aa_deletions == aa
    assert c.frame_shifts == []


def test_insertion_inside_and_between_codons():
    c = calls_of(mutate(insertions=[(22204, "GAGCCAGAA")]))
    assert c.insertions == ["ins:22204:GAGCCAGAA"]
    assert c.frame_shifts == []
    # an in-frame insertion between two codons changes no amino acid
    s_start = 21563
    between = s_start + 3 * 100 - 1  # after the last base of S codon 100
    c = calls_of(mutate(insertions=[(between, "AAA")]))
    assert c.insertions and c.aa_substitutions == [] and c.aa_deletions == []


def test_frame_shift_to_the_end_and_a_compensated_one():
    c = calls_of(mutate(deletions=[(25500, 25500)]))  # ORF3a: 25393..26220
    codon = (25500 - 25393) // 3 + 1
    assert c.frame_shifts == [f"ORF3a:{codon}-276"]
    c = calls_of(mutate(deletions=[(25500, 25500)], insertions=[(25530, "T")]))
    assert c.frame_shifts == [f"ORF3a:{codon}-{(25530 - 25393) // 3 + 1}"]
    assert not [a for a in c.aa_substitutions if a.startswith("ORF3a")]


def test_premature_stop_codons():
    # ORF8 Q27*: C27972T (ORF8 starts at 27894; codon 27 is 27972..27974)
    c = calls_of(mutate({27972: "T"}))
    assert c.aa_substitutions == ["ORF8:Q27*"]
    assert c.stop_codons == ["ORF8:Q27*"]


def test_missing_ends_n_runs_and_mixed_sites():
    ref = reference_text()
    seq = ref[54:1000] + "N" * 300 + ref[1300:29800]
    seq = seq[:5000] + "R" + seq[5001:]
    c = calls_of(seq)
    assert c.missing == ["1-54", "1001-1300", "29801-29903"]
    assert c.mixed == [f"{ref[5054]}5055R"]
    assert c.substitutions == []
    assert (c.n_count, c.longest_n_run) == (300, 300)
    assert (c.alignment_start, c.alignment_end) == (55, 29800)


def test_ends_written_as_n_are_missing_like_cut_ends_not_a_dropout():
    """A lab that pads an unsequenced end with N and one that cuts it report the same genome:
    the same missing positions, and the ends are no internal N run (CSIRO's run limit is for
    amplicon dropouts inside the genome)."""
    ref = reference_text()
    cut = calls_of(ref[54:29800])
    padded = calls_of("N" * 54 + ref[54:29800] + "N" * 103)
    assert cut.missing == padded.missing == ["1-54", "29801-29903"]
    assert (cut.longest_n_run, padded.longest_n_run) == (0, 0)
    assert padded.n_count == 157  # still N in the genome as read
    inside = calls_of("N" * 54 + ref[54:10000] + "N" * 80 + ref[10080:29800])
    assert inside.longest_n_run == 80


def test_joined_cds_with_ribosomal_slippage():
    """NC_045512's ORF1ab is join(266..13468,13468..21555): base 13468 is read twice, so
    C14408T is P4715L of the polyprotein (codon 314 of ORF1b, 4401 + 314)."""
    from conftest import SARS_GBK

    table = read_annotation(str(SARS_GBK))
    orf1ab = [c for c in coding_sequences(list(table), 29903) if c.name.lower() == "orf1ab"]
    assert orf1ab and orf1ab[0].codons == 7097  # 7096 amino acids and the stop
    ref = Reference.from_sequence(reference_text())  # NC_045512.2 and MN908947 are one sequence
    c = call_mutations(ref, orf1ab, align(ref, mutate({14408: "T"})), "q")
    assert c.aa_substitutions == [f"{orf1ab[0].name}:P4715L"]


def test_shared_genomes_carry_their_known_changes():
    """Among the 418 genomes: the B.1 haplotype (C241T, C3037T, C14408T, A23403G → S:D614G)
    travels together, genomes sampled in December 2019 carry none of it, and the reference
    strain (Wuhan/Hu-1/2019) differs from nothing."""
    with open(METADATA) as fh:
        dates = {r["strain"]: r["date"] for r in csv.DictReader(fh, delimiter="\t")}
    by_strain = {name: calls_of(seq, name) for name, seq in genomes()}
    counts = Counter(s for c in by_strain.values() for s in c.substitutions)
    for sub in ("C241T", "C3037T", "C14408T", "A23403G"):
        assert counts[sub] >= 250, sub
    d614g = [c for c in by_strain.values() if "A23403G" in c.substitutions]
    assert all("S:D614G" in c.aa_substitutions for c in d614g)
    assert sum("C14408T" in c.substitutions for c in d614g) >= 0.95 * len(d614g)
    assert all("ORF1b:P314L" in c.aa_substitutions for c in d614g if "C14408T" in c.substitutions)
    december = [s for s, d in dates.items() if d.startswith("2019-12") and s in by_strain]
    assert december
    assert not any("A23403G" in by_strain[s].substitutions for s in december)
    wuhan = by_strain["Wuhan/Hu-1/2019"]
    assert wuhan.substitutions == [] and wuhan.deletions == [] and wuhan.missing == []
    # S:Y144del in the one genome that has it, named as Nextclade names it
    y144 = by_strain["USA/WA-UW-6162/2020"]
    assert y144.deletions == ["del:21991-21993"] and y144.aa_deletions == ["S:Y144-"]
