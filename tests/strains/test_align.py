"""The anchored aligner equals a plain full-matrix dynamic programme, path for path.

Real genomes: one of the 418 shared genomes is aligned both ways here (the full matrix costs
30–80 s a genome in numpy); ``benchmarks/strains_align_exact.py`` runs the same comparison on
every one of them (or a deterministic ``--every N``-th subset). Synthetic genomes: slices of
MN908947 with planted substitutions, indels next to each other, N runs and trimmed ends.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from strains_dp_reference import full_dp
from strains_fixtures import genomes, reference, reference_text

from sandgrain.strains.align import (
    AlignmentFailed,
    Reference,
    align,
    encode,
    normalise,
    path_score,
)
from sandgrain.strains.align_kernels import OP_DEL, OP_INS, OP_MATCH, align_window


def plant(rng: random.Random, ref: str, changes: int) -> str:
    """A genome from ``ref`` with random substitutions, indels (often next to each other),
    N runs (as long as what they replace) and trimmed or extended ends."""
    q = list(ref)
    for _ in range(changes):
        p = rng.randrange(len(q))
        kind = rng.random()
        if kind < 0.35:
            q[p] = rng.choice("ACGT")
        elif kind < 0.55:
            del q[p : p + rng.randint(1, 12)]
        elif kind < 0.7:
            q[p:p] = rng.choices("ACGT", k=rng.randint(1, 9))
        elif kind < 0.8:  # a deletion and an insertion a few bases apart
            del q[p : p + rng.randint(1, 4)]
            p2 = min(len(q), p + rng.randint(1, 6))
            q[p2:p2] = rng.choices("ACGT", k=rng.randint(1, 4))
        elif kind < 0.9:  # an amplicon dropout: N in place of the bases, as consensus callers do
            span = len(q[p : p + rng.randint(5, 80)])
            q[p : p + span] = "N" * span
        else:
            q[p] = rng.choice("RYKMSWN")
    if rng.random() < 0.5:
        q = q[rng.randint(1, 60) :]
    if rng.random() < 0.5:
        q = q[: len(q) - rng.randint(1, 60)]
    if rng.random() < 0.2:
        q = q + rng.choices("ACGT", k=rng.randint(1, 30))
    return "".join(q)


@pytest.mark.parametrize("seed", range(6))
def test_synthetic_genomes_align_as_the_full_matrix(seed):
    rng = random.Random(seed)
    full = reference_text()
    for _ in range(20):
        start = rng.randrange(0, len(full) - 1500)
        ref_text = full[start : start + rng.randint(300, 1500)]
        ref = Reference.from_sequence(ref_text)
        query = plant(rng, ref_text, rng.randint(0, 10))
        got = align(ref, query)
        ops, best = full_dp(ref.masks, encode(query))
        assert got.score == best
        assert np.array_equal(got.ops, ops), (seed, start, query)
        assert path_score(ref.masks, got.query, got.ops) == best


def test_random_sequences_kernel_equals_full_matrix():
    """The window kernel alone (free ends), on unrelated random sequences: many ties."""
    rng = random.Random(7)
    for _ in range(200):
        r = "".join(rng.choices("ACGT", k=rng.randint(1, 40)))
        q = "".join(rng.choices("ACGTN", k=rng.randint(1, 40)))
        rm, qm = encode(r), encode(q)
        ops, score = align_window(rm, qm, True, True, 3, -1, 6, 0)
        ref_ops, best = full_dp(rm, qm, block=5)
        assert score == best
        assert np.array_equal(normalise(rm, qm, ops), ref_ops), (r, q)


def _subset() -> list[int]:
    """The genome with S:Y144del (an indel, N runs and a trimmed 5' end): one full matrix costs
    ~40 s here; the benchmark compares all 418."""
    names = [n for n, _ in genomes()]
    return [names.index("USA/WA-UW-6162/2020")]


@pytest.mark.slow
def test_real_genomes_align_as_the_full_matrix():
    ref = reference()
    for i in _subset():
        name, seq = genomes()[i]
        got = align(ref, seq)
        ops, best = full_dp(ref.masks, encode(seq))
        assert got.score == best, name
        assert np.array_equal(got.ops, ops), name


def test_every_shared_genome_aligns_and_scores_its_own_path():
    ref = reference()
    for name, seq in genomes():
        got = align(ref, seq)
        assert path_score(ref.masks, got.query, got.ops) == got.score, name
        consumed_q = np.isin(got.ops, [OP_MATCH, OP_INS]).sum() + (got.ops == 4).sum()
        assert consumed_q == got.query.size


def test_deletion_in_a_repeat_is_left_aligned():
    ref_text = reference_text()[:400]
    ref = Reference.from_sequence(ref_text)
    # a run of one base: delete its last copy; the call must name its first
    run = next(i for i in range(100, 380) if ref_text[i] == ref_text[i + 1] == ref_text[i + 2])
    end = run
    while ref_text[end + 1] == ref_text[run]:
        end += 1
    query = ref_text[:end] + ref_text[end + 1 :]
    got = align(ref, query)
    dels = np.flatnonzero(got.ops == OP_DEL)
    assert dels.size == 1
    assert int(dels[0]) == run


def test_a_genome_of_another_virus_is_not_aligned():
    rng = random.Random(3)
    junk = "".join(rng.choices("ACGT", k=29_000))
    with pytest.raises(AlignmentFailed):
        align(reference(), junk)


def test_iupac_and_gaps_in_the_input():
    ref = reference()
    seq = "-" + reference_text()[:5000].lower().replace("a", "a", 1) + "\n"
    got = align(ref, seq)
    assert got.query.size == 5000
    assert (got.ops[:5000] == OP_MATCH).all()
