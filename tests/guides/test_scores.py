"""Guide scores against the published test values of docs/SCORES.md, and vectorised == plain."""

from __future__ import annotations

import math
from importlib import resources
from itertools import product

import numpy as np
import pytest

from sandgrain.errors import InputError
from sandgrain.guides.scores import (
    CFD_MISMATCH,
    CFD_PAM,
    MIT_WEIGHTS,
    RULESET1_WEIGHTS,
    cfd_site_score,
    cfd_site_scores,
    cfd_specificity,
    mit_site_score,
    mit_site_scores,
    mit_specificity,
    ruleset1,
)

BASES = "ACGTN"
CODE = {b: i for i, b in enumerate(BASES)}


def encode(seq: str) -> np.ndarray:
    return np.array([CODE[b] for b in seq], dtype=np.uint8)


def decode(codes: np.ndarray) -> str:
    return "".join(BASES[int(c)] for c in codes)


def random_sites(rng: np.random.Generator, guide: np.ndarray, n: int) -> np.ndarray:
    """Sites near the guide: 0..7 substitutions each (N included), plus a few random ones."""
    sites = np.tile(guide, (n, 1))
    for row in sites[: n - 10]:
        k = rng.integers(0, 8)
        positions = rng.choice(20, size=k, replace=False)
        row[positions] = rng.integers(0, 5, size=k)
    sites[n - 10 :] = rng.integers(0, 5, size=(10, 20))
    return sites.astype(np.uint8)


# --- MIT -------------------------------------------------------------------------------------


def test_mit_published_example():
    score = mit_site_score("G" * 20, "G" * 17 + "AAA")
    assert score == pytest.approx(0.0597272, abs=1e-6)
    t1 = (1 - 0.804) * (1 - 0.685) * (1 - 0.583)
    assert score == pytest.approx(100 * t1 / (18 / 19 * 4 + 1) / 9, rel=1e-12)


def test_mit_identity_and_single_mismatches():
    guide = "ATGGTCGGACTCCCTGCCAG"
    assert mit_site_score(guide, guide) == 100.0
    # One mismatch: T2 = T3 = 1, so the score is 100 * (1 - M[p]).
    site = guide[:13] + "A" + guide[14:]  # position 14 (C -> A)
    assert mit_site_score(guide, site) == pytest.approx(100 * (1 - 0.851))
    assert mit_site_score(guide, guide[:-1] + "N") == pytest.approx(100 * (1 - 0.583))
    # Mismatches at the PAM-distal positions 1 and 2 weigh nothing in T1; d = 1.
    two = "TA" + guide[2:]
    assert mit_site_score(guide, two) == pytest.approx(100 / (18 / 19 * 4 + 1) / 4)
    assert len(MIT_WEIGHTS) == 20


def test_mit_rejects_wrong_lengths_and_bad_guide():
    with pytest.raises(InputError):
        mit_site_score("A" * 19, "A" * 19)
    with pytest.raises(InputError):
        mit_site_score("A" * 20, "A" * 23)
    with pytest.raises(InputError):
        mit_site_score("N" * 20, "A" * 20)


def test_mit_specificity():
    assert mit_specificity([]) == 100.0
    assert mit_specificity([100.0]) == pytest.approx(50.0)
    assert mit_specificity([50.0, 50.0, 200.0]) == pytest.approx(25.0)
    assert mit_specificity(np.array([10.0, 90.0])) == pytest.approx(50.0)
    assert mit_specificity(s for s in [0.0597272]) == pytest.approx(1e4 / 100.0597272)


def test_mit_vectorised_equals_plain():
    rng = np.random.default_rng(20240501)
    for _ in range(5):
        guide = rng.integers(0, 4, size=20).astype(np.uint8)
        sites = random_sites(rng, guide, 400)
        got = mit_site_scores(guide, sites)
        assert got.shape == (400,) and got.dtype == np.float64
        want = np.array([mit_site_score(decode(guide), decode(s)) for s in sites])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        assert got.max() == 100.0  # identical sites are part of the sample
    assert mit_site_scores(guide, np.zeros((0, 20), np.uint8)).shape == (0,)
    with pytest.raises(InputError):
        mit_site_scores(guide[:19], sites)


# --- CFD -------------------------------------------------------------------------------------

CFD_ROWS = [
    ("GGGGGGGGGGGGGGGGGGGGGGG", "GGGGGGGGGGGGGGGGGAAAGGG", 0.4635989007074176),
    ("ATGGTCGGACTCCCTGCCAGAGG", "ATGGTGGGACTCCCTGCCAGAGG", 0.5),
    ("ATGTGGAGATTGCCACCTACCGG", "ATCTGGAGATTGCCACCTACAGG", 0.384615385),
    ("ATGTGGAGATTGCCACCTACCGG", "ATGTGGAGATTGCCACCTACCAG", 0.259259259),
]


@pytest.mark.parametrize(("guide", "site", "expected"), CFD_ROWS)
def test_cfd_published_rows(guide, site, expected):
    assert cfd_site_score(guide[:20], site[:20], site[20:]) == pytest.approx(expected, abs=1e-6)


def test_cfd_tables_complete():
    types = {
        "rA:dA", "rA:dC", "rA:dG", "rC:dA", "rC:dC", "rC:dT",
        "rG:dA", "rG:dG", "rG:dT", "rU:dC", "rU:dG", "rU:dT",
    }  # fmt: skip
    assert len(CFD_MISMATCH) == 240
    assert set(CFD_MISMATCH) == set(product(types, range(1, 21)))
    assert all(0.0 <= v <= 1.3 for v in CFD_MISMATCH.values())
    assert set(CFD_PAM) == {a + b for a, b in product("ACGT", repeat=2)}
    assert CFD_PAM["GG"] == 1.0
    assert CFD_PAM["AG"] == pytest.approx(0.259259259)
    assert CFD_PAM["TG"] == pytest.approx(0.038961039)
    assert sum(v > 0 for v in CFD_PAM.values()) == 7


def test_cfd_table_files_sorted_with_attribution():
    data = resources.files("sandgrain.guides.scores").joinpath("data")
    text = data.joinpath("cfd_mismatch.tsv").read_text("utf-8").splitlines()
    assert text[0].startswith("# Doench et al. 2016")
    body = [line.split("\t") for line in text if not line.startswith("#")]
    assert body[0] == ["type", "position", "score"]
    keys = [(t, int(p)) for t, p, _ in body[1:]]
    assert len(keys) == 240 and keys == sorted(keys)
    pam = [line for line in data.joinpath("cfd_pam.tsv").read_text("utf-8").splitlines()]
    assert len([line for line in pam if not line.startswith("#")]) == 17  # header + 16 rows


def test_cfd_identity_pam_and_n():
    guide = "ATGTGGAGATTGCCACCTAC"
    assert cfd_site_score(guide, guide, "TGG") == 1.0
    assert cfd_site_score(guide, guide.lower(), "cgg") == 1.0
    assert cfd_site_score(guide, guide, "TAG") == pytest.approx(0.259259259)
    assert cfd_site_score(guide, guide, "TAA") == 0.0
    assert cfd_site_score(guide, guide, "NNG") == 0.0
    # N: the worst of the three possible mismatches at that position (guide G at position 3).
    assert guide[2] == "G"
    site_n = guide[:2] + "N" + guide[3:]
    worst = min(cfd_site_score(guide, guide[:2] + b + guide[3:], "AGG") for b in "ACT")
    assert cfd_site_score(guide, site_n, "AGG") == pytest.approx(worst)
    table = [CFD_MISMATCH[t, 3] for t in ("rG:dT", "rG:dG", "rG:dA")]
    assert worst == pytest.approx(min(table))
    with pytest.raises(InputError):
        cfd_site_score(guide, guide[:19], "AGG")
    with pytest.raises(InputError):
        cfd_site_score(guide, guide, "G")
    with pytest.raises(InputError):
        cfd_site_score(guide, guide[:19] + "X", "AGG")


def test_cfd_specificity():
    assert cfd_specificity([]) == 100.0
    # 100 / (1 + Σ CFD): a perfect second site (CFD 1) halves the specificity, as GuideScan 2
    # defines it; the old 100·100/(100 + Σ CFD) would have shown 99.0 here
    assert cfd_specificity([1.0]) == pytest.approx(50.0)
    assert cfd_specificity([0.5, 0.5]) == pytest.approx(50.0)
    assert cfd_specificity(np.array([0.25, 0.25, 0.5, 3.0])) == pytest.approx(20.0)


def test_cfd_vectorised_equals_plain():
    rng = np.random.default_rng(7)
    for _ in range(5):
        guide = rng.integers(0, 4, size=20).astype(np.uint8)
        sites = random_sites(rng, guide, 400)
        pams = rng.choice(np.array([2, 2, 2, 0, 1, 3, 4], np.uint8), size=(400, 2))
        got = cfd_site_scores(guide, sites, pams)
        assert got.shape == (400,) and got.dtype == np.float64
        want = np.array(
            [
                cfd_site_score(decode(guide), decode(s), "N" + decode(p))
                for s, p in zip(sites, pams, strict=True)
            ]
        )
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        assert (got > 0).any() and (got == 0).any()
    empty = cfd_site_scores(guide, np.zeros((0, 20), np.uint8), np.zeros((0, 2), np.uint8))
    assert empty.shape == (0,)
    with pytest.raises(InputError):
        cfd_site_scores(guide, sites, pams[:-1])
    with pytest.raises(InputError):
        cfd_site_scores(guide, sites + 5, pams)


def test_cfd_vectorised_published_rows():
    for guide, site, expected in CFD_ROWS:
        got = cfd_site_scores(
            encode(guide[:20]), encode(site[:20])[None, :], encode(site[21:])[None]
        )
        assert got[0] == pytest.approx(expected, abs=1e-6)


# --- Rule Set 1 ------------------------------------------------------------------------------


def test_ruleset1_published_value():
    assert ruleset1("TATAGCTGCGATCTGAGGTAGGGAGGGACC") == pytest.approx(0.713089, abs=1e-6)
    assert ruleset1("tatagctgcgatctgaggtagggagggacc") == pytest.approx(0.713089, abs=1e-6)


def test_ruleset1_weights_table():
    assert len(RULESET1_WEIGHTS) == 70
    assert sum(len(t.sequence) == 1 for t in RULESET1_WEIGHTS) == 39
    assert sum(len(t.sequence) == 2 for t in RULESET1_WEIGHTS) == 31
    assert all(t.position >= 0 and t.position + len(t.sequence) <= 30 for t in RULESET1_WEIGHTS)


def test_ruleset1_hand_computed():
    # All-A context: gc = 0, so x = intercept + 10 * w_low + the terms made only of A.
    seq = "A" * 30
    x = 0.59763615 + 10 * -0.2026259
    x += sum(t.weight for t in RULESET1_WEIGHTS if set(t.sequence) == {"A"})
    assert ruleset1(seq) == pytest.approx(1 / (1 + math.exp(-x)), rel=1e-12)


def test_ruleset1_unscorable_is_none():
    seq = "TATAGCTGCGATCTGAGGTAGGGAGGGACC"
    assert ruleset1(seq[1:]) is None
    assert ruleset1(seq[:-1]) is None
    assert ruleset1(seq + "A") is None
    assert ruleset1("") is None
    assert ruleset1(seq[:10] + "N" + seq[11:]) is None
