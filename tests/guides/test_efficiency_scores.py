"""On-target efficiency scores: Rule Set 3, CRISPRscan and the out-of-frame score.

Each score is held to the published tool's values on fixed sequences (sources in the comments),
to a hand-computed case where that pins a choice, and its vectorised form to its scalar form.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys

import numpy as np
import pytest

from sandgrain.errors import InputError
from sandgrain.guides.scores import (
    CRISPRSCAN_FLANK_3,
    CRISPRSCAN_FLANK_5,
    CRISPRSCAN_WEIGHTS,
    OUT_OF_FRAME_FLANK,
    RS3_TRACRS,
    crisprscan,
    crisprscan_scores,
    microhomology_patterns,
    microhomology_score,
    out_of_frame,
    out_of_frame_scores,
    rs3_score,
    rs3_scores,
    rs3_version,
)
from sandgrain.guides.scores import ruleset3 as ruleset3_module

# --- Rule Set 3 ---------------------------------------------------------------------------------

#: The two 30-mers of the rs3 README ("Sequence based model" example).
RS3_CONTEXTS = ["GACGAAAGCGACAACGCGTTCATCCGGGCA", "AGAAAACACTAGCATCCCCACCCGCGGACT"]
#: rs3 README, "Sequence based model", ``predict_seq(context_seqs, sequence_tracr='Hsu2013')``.
RS3_HSU2013 = [-0.90030944, 1.11451622]
#: Measured, not published: the same contexts with ``sequence_tracr='Chen2013'``, from rs3 0.0.18's
#: model and featuriser (booster called directly, as in the module) in a scratch environment.
RS3_CHEN2013 = [-0.02264831, 0.50669169]


def _random_contexts30(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice("ACGT") for _ in range(24))
        + rng.choice("ACGT")
        + "GG"
        + "".join(rng.choice("ACGT") for _ in range(3))
        for _ in range(n)
    ]


def test_rs3_reproduces_the_readme_values_with_the_hsu2013_tracr():
    assert rs3_scores(RS3_CONTEXTS) == pytest.approx(RS3_HSU2013, abs=1e-7)
    assert rs3_scores(RS3_CONTEXTS, tracr="Hsu2013") == pytest.approx(RS3_HSU2013, abs=1e-7)


def test_rs3_with_the_chen2013_tracr():
    assert rs3_scores(RS3_CONTEXTS, tracr="Chen2013") == pytest.approx(RS3_CHEN2013, abs=1e-7)


def test_rs3_returns_nan_where_a_context_cannot_be_scored():
    contexts = [
        None,
        RS3_CONTEXTS[0],
        RS3_CONTEXTS[0][:29],
        "N" + RS3_CONTEXTS[1][1:],
        RS3_CONTEXTS[1].lower(),
        RS3_CONTEXTS[0] + "A",
    ]
    scores = rs3_scores(contexts)
    assert scores.dtype == np.float64 and scores.shape == (6,)
    assert np.isnan(scores[[0, 2, 3, 5]]).all()
    assert scores[1] == pytest.approx(RS3_HSU2013[0], abs=1e-7)
    assert scores[4] == pytest.approx(RS3_HSU2013[1], abs=1e-7)  # case is ignored
    assert rs3_scores([]).shape == (0,)
    assert np.isnan(rs3_scores([None, "ACGT"])).all()


def test_rs3_scalar_equals_the_vectorised_form_and_batches_keep_order(monkeypatch):
    contexts = [*_random_contexts30(7, seed=11), None, *RS3_CONTEXTS]
    together = rs3_scores(contexts)
    scalar = [rs3_score(c) for c in contexts]
    assert scalar[7] is None
    assert [s for i, s in enumerate(scalar) if i != 7] == pytest.approx(
        np.delete(together, 7), abs=1e-12
    )
    monkeypatch.setattr(ruleset3_module, "_BATCH", 3)
    assert np.array_equal(rs3_scores(contexts), together, equal_nan=True)


def test_rs3_rejects_an_unknown_tracr_and_a_bare_string():
    assert RS3_TRACRS == ("Hsu2013", "Chen2013")
    with pytest.raises(InputError, match="tracrRNA"):
        rs3_scores(RS3_CONTEXTS, tracr="Dang2015")
    with pytest.raises(InputError):
        rs3_scores(RS3_CONTEXTS[0])


def test_rs3_prints_no_progress_bar(capfd):
    rs3_scores(_random_contexts30(5, seed=3))
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_rs3_version_is_the_installed_package():
    version = rs3_version()
    assert version is not None
    assert tuple(int(x) for x in version.split(".")[:3]) >= (0, 0, 18)


def test_importing_the_scores_loads_no_model_library():
    code = (
        "import sys, sandgrain.guides.scores; "
        "print(sorted(m for m in ('rs3', 'lightgbm', 'pandas', 'sglearn', 'joblib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- CRISPRscan ---------------------------------------------------------------------------------


def test_crisprscan_reproduces_crispor():
    # CRISPOR crisporEffScores.py, calcCrisprScanScores doctest: raw 0.7738634886289999 (9-decimal
    # weights), shown as int(100 * score) = 77.
    score = crisprscan("TCCTCTGGTGGCGCTGCTGGATGGACGGGACTGTA")
    assert score == pytest.approx(77.38634886289999, abs=1e-5)
    assert int(score) == 77
    # CRISPOR crisporEffScores.py, calcAllScores doctest on a 100-mer (PAM at 50): crisprScan 39
    # on its 35-mer trimSeqs(seqs, -26, 9).
    long = (
        "CCACGTCTCCACACATCAGCACAACTACGCAGCGCCTCCCTCCACTCGGAAGGACTATCCTGCTGCCAAGAGGGTCAAGTTGGAC"
        "AGTGTCAGAGTCCTG"
    )
    assert int(crisprscan(long[24:59])) == 39


def test_crisprscan_reproduces_crisprscore():
    # crisprScore (crisprVerse, Bioconductor) tests/testthat, "CRISPRscan score": raw scores
    # rounded to 3 decimals.
    contexts = [
        "CCCCCCCCCCCTGCTGATGCTAGATAAGGTTGTGA",
        "GGACCTATCGATGCTGATGCTAGATATGGTTGTGA",
        "GGAAAAAAAAAAACTGATGCTAGATACGGTTGTGA",
        "GGACCTATCGATGCTCGTGCTGGGTACGGTTGTGA",
        "GCCCCCCTCGATGCTGATGCTAGATAGGGCACACA",
    ]
    expected = [0.531, 0.531, 0.45, 0.712, 0.618]
    assert [round(crisprscan(c) / 100, 3) for c in contexts] == expected
    # AddTag (tdseher/addtag-project) source/morenomateos test(): 50.76752636289999 from CRISPOR's
    # 9-decimal weights.
    assert crisprscan("AAGTGTCGACTCCCGCTCTCAAAGAGCGGAGCTCC") == pytest.approx(
        50.767526363, abs=1e-5
    )


def test_crisprscan_places_the_aa_term_at_19_as_the_supplementary_table():
    # C everywhere but A at 1-based 19 and 20: matching terms, from the paper's table, are the
    # intercept, the C terms at 9, 13, 15, 16, 21, 22, 24, 25, 26, 27, 30, 31 (none at 19 or 20),
    # CC21, CC23, A19 and AA19. CRISPOR's transcription puts AA at 18 and would miss it.
    context = "C" * 18 + "AA" + "C" * 15
    c_terms = [
        0.0024492239247,  # C09
        0.0694959439929,  # C13
        -0.000477727288834,  # C15
        -0.0216386089249,  # C16
        0.0342629206803,  # C21
        0.0376316196793,  # C22
        0.0529723136618,  # C24
        -0.031648352971,  # C25
        -0.000368972859222,  # C26
        0.0799339215437,  # C27
        -0.0131827325942,  # C30
        -0.030715556059,  # C31
    ]
    raw = (
        0.183930943629
        + sum(c_terms)
        + 0.0889196009093  # CC21
        + 0.0950722864525  # CC23
        - 0.0155764988875  # A19
        - 0.0973770966031  # AA19
    )
    assert crisprscan(context) == pytest.approx(100 * raw, abs=1e-9)


def test_crisprscan_table_and_context():
    assert len(CRISPRSCAN_WEIGHTS) == 91
    assert sum(len(t.sequence) == 1 for t in CRISPRSCAN_WEIGHTS) == 57
    assert CRISPRSCAN_FLANK_5 == 6 and CRISPRSCAN_FLANK_3 == 6
    assert all(1 <= t.position <= 36 - len(t.sequence) for t in CRISPRSCAN_WEIGHTS)


def test_crisprscan_returns_none_or_nan_for_bad_contexts():
    good = "TCCTCTGGTGGCGCTGCTGGATGGACGGGACTGTA"
    bad = [None, good[:34], good + "A", "N" + good[1:], "TCCTCTGGTGGCGCTGCTGGATGGACGGGACTGTÄ"]
    assert [crisprscan(c) for c in bad] == [None] * len(bad)
    assert np.isnan(crisprscan_scores(bad)).all()
    assert crisprscan(good.lower()) == crisprscan(good)
    with pytest.raises(InputError):
        crisprscan_scores(good)


def test_crisprscan_vectorised_equals_scalar():
    rng = random.Random(5)
    contexts = ["".join(rng.choice("ACGTacgt") for _ in range(35)) for _ in range(300)]
    contexts[7] = None
    contexts[8] = contexts[9][:20] + "N" + contexts[9][21:]
    vector = crisprscan_scores(contexts)
    scalar = np.array([np.nan if s is None else s for s in map(crisprscan, contexts)])
    assert np.isnan(vector[[7, 8]]).all()
    np.testing.assert_allclose(vector, scalar, rtol=0, atol=1e-10)


# --- Out-of-frame (Bae et al. 2014) -------------------------------------------------------------

#: The example sequence of Bae et al. 2014, Supplementary Fig. 3 (break after base 30).
BAE_EXAMPLE = "GGAGGAAGGGCCTGAGTCCGAGCAGAAGAAGAAGGGCTCCCATCACATCAACCGGTGGCG"


def _published_patterns(window: str) -> list[tuple[str, int, int, float]]:
    """Plain twin: the enumeration of Bae et al.'s program, written out as its paper describes.

    Every stretch of 2 to left-1 nt left of the middle equal to one right of it, longest first;
    a stretch inside an earlier (longer) one at the same offset in both copies is dropped.
    Returns (microhomology, left start, deletion length, score).
    """
    n = len(window)
    left = n // 2
    rows = []
    for k in range(left - 1, 1, -1):
        for j in range(left, n - k + 1):
            for i in range(0, left - k + 1):
                if window[i : i + k] == window[j : j + k]:
                    rows.append((i, i + k, j, j + k))
    kept = []
    for r, (ls, le, rs, re_) in enumerate(rows):
        inside = any(
            ls >= a and le <= b and rs >= c and re_ <= d and ls - a == rs - c and le - b == re_ - d
            for a, b, c, d in rows[:r]
        )
        if inside:
            continue
        mh = window[ls:le]
        length = rs - ls
        gc = mh.count("G") + mh.count("C")
        factor = round(1 / math.exp(length / 20.0), 3)
        kept.append((mh, ls, length, 100 * factor * ((len(mh) - gc) + 2 * gc)))
    return kept


def test_out_of_frame_reproduces_bae_2014_supplementary_example():
    # Bae et al. 2014 Supplementary Fig. 3 program on its own example (left = 30): output recorded
    # in Azimuth (MicrosoftResearch/Azimuth) azimuth/features/microhomology.py, "correct output
    # is: Microhomology score = 4662.9, Out-of-frame score = 50.7473889639".
    assert OUT_OF_FRAME_FLANK == 30
    assert microhomology_score(BAE_EXAMPLE, 30) == pytest.approx(4662.9, abs=1e-9)
    assert out_of_frame(BAE_EXAMPLE, 30) == pytest.approx(50.7473889639, abs=1e-9)


def test_out_of_frame_reproduces_crispor():
    # CRISPOR crisporEffScores.py, calcAllScores doctest on a 100-mer whose PAM starts at 50:
    # mh 4404, oof 51 (both int()). CRISPOR centres the window on the PAM's first base.
    long = (
        "CCACGTCTCCACACATCAGCACAACTACGCAGCGCCTCCCTCCACTCGGAAGGACTATCCTGCTGCCAAGAGGGTCAAGTTGGAC"
        "AGTGTCAGAGTCCTG"
    )
    assert int(microhomology_score(long, 50, flank=30)) == 4404
    assert int(out_of_frame(long, 50, flank=30)) == 51


def test_out_of_frame_hand_computed_case():
    # Window CCGCGT|GCGAGT (flank 6). Microhomologies, longest first:
    #   GCG at 2 and 6: deletes 4 nt; round(exp(-4/20), 3) = 0.819; 3 GC -> 0.819 * 6 * 100 = 491.4
    #     (its parts GC at 2/6 and CG at 3/7 are the same deletion: dropped)
    #   CG  at 1 and 7: deletes 6 nt; round(exp(-6/20), 3) = 0.741; 2 GC -> 0.741 * 4 * 100 = 296.4
    #   GT  at 4 and 10: deletes 6 nt; 0.741 * (1 + 2) * 100 = 222.3
    # microhomology score 1010.1; frameshifting (4 nt) 491.4 -> out-of-frame 100 * 491.4 / 1010.1.
    window = "CCGCGTGCGAGT"
    patterns = microhomology_patterns(window, 6, flank=6)
    assert sorted(
        (p.microhomology, p.left_start, p.right_start, p.deletion_length) for p in patterns
    ) == [
        ("CG", 1, 7, 6),
        ("GCG", 2, 6, 4),
        ("GT", 4, 10, 6),
    ]
    assert sorted(p.score for p in patterns) == pytest.approx([222.3, 296.4, 491.4])
    assert microhomology_score(window, 6, flank=6) == pytest.approx(1010.1)
    assert out_of_frame(window, 6, flank=6) == pytest.approx(100 * 491.4 / 1010.1)
    # Positions are in the sequence given: the same window inside a longer sequence.
    shifted = microhomology_patterns("TTT" + window + "A", 9, flank=6)
    assert sorted((p.left_start, p.right_start) for p in shifted) == [(4, 10), (5, 9), (7, 13)]


def test_out_of_frame_equals_the_published_enumeration_on_random_windows():
    rng = random.Random(17)
    for _ in range(40):
        window = "".join(rng.choice("ACGT") for _ in range(60))
        _check_against_twin(window, 30)


@pytest.mark.parametrize(
    "window",
    [
        "A" * 12,  # one run longer than the longest microhomology (flank - 1) on several diagonals
        "AC" * 8,
        "AAT" * 6,
        "ACGTACGTACGTACGT",
        "GGGGCCCCGGGGCCCC",
        "ATATATATCGCGCGCG",
    ],
)
def test_out_of_frame_equals_the_published_enumeration_on_repeats(window):
    _check_against_twin(window, len(window) // 2)


def _check_against_twin(window: str, flank: int) -> None:
    twin = _published_patterns(window)
    ours = microhomology_patterns(window, flank, flank=flank)
    assert sorted((p.microhomology, p.left_start, p.deletion_length) for p in ours) == sorted(
        (mh, start, length) for mh, start, length, _ in twin
    )
    total = sum(s for *_, s in twin)
    assert microhomology_score(window, flank, flank=flank) == pytest.approx(total, abs=1e-9)
    if total:
        frameshift = sum(s for _, _, length, s in twin if length % 3)
        assert out_of_frame(window, flank, flank=flank) == pytest.approx(
            100 * frameshift / total, abs=1e-9
        )


def test_out_of_frame_returns_none_where_it_cannot_score():
    assert out_of_frame(BAE_EXAMPLE, 29) is None  # 29 nt left of the cut
    assert out_of_frame(BAE_EXAMPLE, 31) is None  # 29 nt right of the cut
    assert microhomology_patterns(BAE_EXAMPLE[:30] + "N" + BAE_EXAMPLE[31:], 30) is None
    assert out_of_frame(BAE_EXAMPLE.lower(), 30) == out_of_frame(BAE_EXAMPLE, 30)
    # No microhomology at all: score 0, out-of-frame undefined.
    assert microhomology_score("AAAAACCCCC", 5, flank=5) == 0.0
    assert out_of_frame("AAAAACCCCC", 5, flank=5) is None
    with pytest.raises(InputError):
        out_of_frame("ACGT", 2, flank=1)


def test_out_of_frame_vectorised_equals_scalar():
    rng = random.Random(23)
    windows = ["".join(rng.choice("ACGT") for _ in range(60)) for _ in range(25)]
    windows += [None, BAE_EXAMPLE[:59], "N" * 60, BAE_EXAMPLE]
    vector = out_of_frame_scores(windows)
    scalar = [out_of_frame(w, 30) if w is not None and len(w) == 60 else None for w in windows]
    assert np.isnan(vector[25:28]).all()
    assert vector[-1] == pytest.approx(50.7473889639, abs=1e-9)
    expected = np.array([np.nan if s is None else s for s in scalar])
    np.testing.assert_array_equal(vector, expected)
    with pytest.raises(InputError):
        out_of_frame_scores(BAE_EXAMPLE)
