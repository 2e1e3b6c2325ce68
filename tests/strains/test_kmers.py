"""K-mer profiles from calls equal the k-mers counted on the reconstructed genome, exactly."""

from __future__ import annotations

import random
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import DATA

from sandgrain.errors import InputError
from sandgrain.strains.kmers import (
    KmerSpace,
    ProfileBatch,
    count_kmers,
    decode_kmers,
    genome_from_calls,
    kmer_codes,
)

SARS_REF = DATA / "pathogen/sars-cov-2-ncov-example/reference_seq.fasta"
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def calls(strain="g", substitutions=(), deletions=(), insertions=(), missing=()):
    return SimpleNamespace(
        strain=strain,
        substitutions=list(substitutions),
        deletions=list(deletions),
        insertions=list(insertions),
        missing=list(missing),
    )


def plain_profile(genome: str, k: int, canonical: bool = False) -> dict[str, int]:
    """The obviously-correct twin: every k-mer of the string, those with a non-ACGT dropped."""
    found: Counter[str] = Counter()
    for i in range(len(genome) - k + 1):
        kmer = genome[i : i + k]
        if set(kmer) <= set("ACGT"):
            if canonical:
                kmer = min(kmer, kmer.translate(COMPLEMENT)[::-1])
            found[kmer] += 1
    return dict(found)


def plain_genome(reference: str, c) -> str:
    """The twin of genome_from_calls: edit a list of bases, position by position."""
    bases = [[b] for b in reference]  # what each reference position becomes
    before = [""] * (len(reference) + 1)  # bases inserted before position i (0-based)
    for s in c.substitutions:
        bases[int(s[1:-1]) - 1] = [s[-1]]
    for d in c.deletions:
        a, _, b = d[4:].partition("-")
        for i in range(int(a) - 1, int(b or a)):
            bases[i] = []
    for ins in c.insertions:
        _, p, seq = ins.split(":")
        before[int(p)] += seq
    for m in c.missing:
        a, _, b = m.partition("-")
        for i in range(int(a) - 1, int(b or a)):
            bases[i] = ["N"]
    return "".join(before[i] + "".join(bases[i]) for i in range(len(reference))) + before[-1]


def random_calls(reference: str, rng: random.Random, n_events: int, strain="g"):
    """Random non-overlapping calls: clustered and isolated, at the ends too, IUPAC alts."""
    length = len(reference)
    used: set[int] = set()  # reference positions (and insertion points) taken
    subs, dels, inss, miss = [], [], [], []
    hot = [rng.randrange(length) for _ in range(3)]  # events cluster around a few places
    for _ in range(n_events):
        centre = rng.choice(hot) if rng.random() < 0.5 else rng.randrange(length)
        pos = min(max(0, centre + rng.randint(-8, 8)), length - 1)
        kind = rng.choices(["sub", "del", "ins", "missing"], [6, 2, 1, 1])[0]
        span = 1 if kind == "sub" else rng.randint(1, 12)
        lo, hi = pos, min(pos + span, length)
        if kind == "ins":
            point = rng.choice([pos, 0, length]) if rng.random() < 0.1 else pos
            if ("ins", point) in used or any(p in used for p in (point - 1, point)):
                continue
            used.add(("ins", point))
            inss.append(f"ins:{point}:{''.join(rng.choice('ACGTN') for _ in range(span))}")
            continue
        if any(p in used for p in range(lo, hi)) or ("ins", lo) in used or ("ins", hi) in used:
            continue
        if kind != "sub" and any(("ins", p) in used for p in range(lo, hi + 1)):
            continue
        used.update(range(lo, hi))
        if kind == "sub":
            ref = reference[pos]
            alt = rng.choice([b for b in "ACGTRY" if b != ref])
            subs.append(f"{ref}{pos + 1}{alt}")
        elif kind == "del":
            dels.append(f"del:{lo + 1}-{hi}")
        else:
            miss.append(f"{lo + 1}-{hi}" if hi > lo + 1 else f"{lo + 1}")
    return calls(strain, subs, dels, inss, miss)


def assert_profile(space: KmerSpace, c, genome: str) -> None:
    got = space.genome_profile(c)
    words = decode_kmers(got.codes, space.k)
    assert dict(zip(words, got.counts.tolist(), strict=True)) == plain_profile(
        genome, space.k, space.canonical
    )


def test_genome_from_calls_applies_each_kind_of_call():
    ref = "ACGTACGTACGTACGT"
    c = calls(
        substitutions=["A1G", "G3Y"],
        deletions=["del:5-7"],
        insertions=["ins:9:TT", "ins:16:AA"],
        missing=["12-13"],
    )
    # 1-4: G C Y T; 5-7 deleted; 8-9: T A; TT inserted; 10-11: C G; 12-13 missing; 14-16, AA
    assert genome_from_calls(ref, c) == "GCYT" + "TA" + "TT" + "CG" + "NN" + "CGT" + "AA"
    assert genome_from_calls(ref, calls(insertions=["ins:0:CC"])) == "CC" + ref


@pytest.mark.parametrize(
    "bad, message",
    [
        (calls(substitutions=["C1T"]), "reference has A"),
        (calls(substitutions=["A1N"]), "not another base"),
        (calls(substitutions=["A99T"]), "outside"),
        (calls(deletions=["del:3-2"]), "outside"),
        (calls(deletions=["3-4"]), "del:"),
        (calls(insertions=["ins:x:AC"]), "ins:"),
        (calls(missing=["1-4"], deletions=["del:4-5"]), "overlap"),
        (calls(insertions=["ins:4:A", "ins:4:C"]), "overlap"),
        (calls(substitutions=["T4G"], missing=["4"]), "overlap"),
    ],
)
def test_bad_calls_are_refused_with_a_reason(bad, message):
    with pytest.raises(InputError, match=message):
        genome_from_calls("ACGTACGTAC", bad)


def test_codes_read_bases_as_base_4_digits_and_drop_non_acgt():
    codes, starts = kmer_codes("ACGTNAAC", 3)
    assert codes.tolist() == [0b000110, 0b011011, 0b000001] and starts.tolist() == [0, 1, 5]
    assert decode_kmers(codes, 3) == ["ACG", "CGT", "AAC"]
    canon, _ = kmer_codes("TTT", 3, canonical=True)
    assert decode_kmers(canon, 3) == ["AAA"]


@pytest.mark.parametrize("k, canonical", [(10, False), (5, False), (7, True), (1, False)])
def test_incremental_profiles_equal_direct_counts_on_random_genomes(k, canonical):
    rng = random.Random(k * 31 + canonical)
    for trial in range(40):
        ref = "".join(rng.choice("ACGT") for _ in range(rng.randint(30, 400)))
        if trial % 7 == 0:
            ref = ref[:10] + "N" * 5 + ref[15:]  # a reference with an N run of its own
        space = KmerSpace(ref, k, canonical)
        c = random_calls(ref.replace("N", "A"), rng, rng.randint(0, 25))
        c.substitutions = [s for s in c.substitutions if ref[int(s[1:-1]) - 1] != "N"]
        genome = genome_from_calls(ref, c)
        assert genome == plain_genome(ref, c)
        assert_profile(space, c, genome)


@pytest.mark.parametrize("k", [10, 4])
def test_missing_read_as_reference_equals_the_genome_without_its_n_runs(k):
    """``missing="reference"``: a genome's profile is that of the same genome with every
    missing range read as the reference; ``"drop"`` keeps the profile of the sequence as read."""
    rng = random.Random(40 + k)
    for _ in range(30):
        ref = "".join(rng.choice("ACGT") for _ in range(rng.randint(50, 400)))
        c = random_calls(ref, rng, rng.randint(1, 25))
        filled = calls(c.strain, c.substitutions, c.deletions, c.insertions, [])
        assert_profile(KmerSpace(ref, k, missing="reference"), c, genome_from_calls(ref, filled))
        assert_profile(KmerSpace(ref, k, missing="drop"), c, genome_from_calls(ref, c))
    with pytest.raises(InputError, match="missing data is one of"):
        KmerSpace("ACGTACGTACGT", 4, missing="guess")


def test_a_batch_equals_genome_by_genome():
    rng = random.Random(5)
    ref = "".join(rng.choice("ACGT") for _ in range(600))
    space = KmerSpace(ref, 6)
    many = [random_calls(ref, rng, rng.randint(0, 30), f"s{i}") for i in range(60)]
    many.append(calls("unchanged"))
    batch = space.deltas(many)
    assert batch.strains == [c.strain for c in many]
    for i, c in enumerate(many):
        direct = count_kmers(genome_from_calls(ref, c), 6) - space.profile
        assert batch.row(i).as_dict() == direct.as_dict()
    assert batch.row(len(many) - 1).as_dict() == {}
    assert batch.l1().tolist() == [batch.row(i).l1() for i in range(len(many))]
    sub = batch.take([3, 0, 60])
    assert sub.strains == ["s3", "s0", "unchanged"]
    assert sub.row(1).as_dict() == batch.row(0).as_dict()
    both = ProfileBatch.concat([batch.take([1]), batch.take([2])])
    assert both.row(1).as_dict() == batch.row(2).as_dict()
    whole = ProfileBatch.from_profiles(
        [(c.strain, space.genome_profile(c)) for c in many[:5]], space.profile, space.fingerprint
    )
    assert all(whole.row(i).as_dict() == batch.row(i).as_dict() for i in range(5))


def test_sars_cov_2_profiles_from_synthetic_calls_are_exact():
    ref = "".join(SARS_REF.read_text().splitlines()[1:])
    assert len(ref) == 29903
    space = KmerSpace(ref)
    assert 28000 < len(space.profile) < 29903  # nearly one distinct 10-mer per position
    rng = random.Random(2020)
    many = [random_calls(ref, rng, rng.randint(0, 60), f"cov{i}") for i in range(6)]
    # the shape of real calls: trimmed ends, an amplicon dropout, D614G and its companions
    many.append(
        calls(
            "realistic",
            ["C241T", "C3037T", "C14408T", "A23403G"],
            ["del:11288-11296"],
            ["ins:22204:GAGCCAGAA"],
            ["1-54", "19000-19300", "29837-29903"],
        )
    )
    batch = space.deltas(many)
    for i, c in enumerate(many):
        genome = genome_from_calls(ref, c)
        assert genome == plain_genome(ref, c)
        words = decode_kmers((space.profile + batch.row(i)).codes, 10)
        got = dict(zip(words, (space.profile + batch.row(i)).counts.tolist(), strict=True))
        assert got == plain_profile(genome, 10)
    # the deltas are small: a few k-mers per difference, never the 30,000 of the profile
    assert batch.row(len(many) - 1).l1() < 2 * 10 * 6 + (54 + 301 + 67) + 40


def test_k_is_checked():
    with pytest.raises(InputError, match="k must be"):
        KmerSpace("ACGT" * 20, 32)
    with pytest.raises(InputError, match="shorter"):
        KmerSpace("ACG", 5)


def test_profile_arithmetic_drops_zeros():
    a = count_kmers("ACGTT", 2)
    assert (a - a).as_dict() == {} and len(a + a) == len(a)
    assert np.array_equal((a + a).counts, 2 * a.counts)
