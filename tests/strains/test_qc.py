"""QC scores follow Nextclade's published formulas and thresholds; CSIRO's limits make a genome
bad."""

from __future__ import annotations

import random

import pytest

from sandgrain.strains.mutations import Calls
from sandgrain.strains.qc import QcSettings, qc, snp_clusters, status_of


def genome(**fields) -> Calls:
    base = {"strain": "g", "length": 29_800, "n_count": 0, "longest_n_run": 0}
    return Calls(**{**base, **fields})


@pytest.mark.parametrize(
    ("score", "status"),
    [(0, "good"), (29.99, "good"), (30, "mediocre"), (99.99, "mediocre"), (100, "bad")],
)
def test_status_thresholds(score, status):
    assert status_of(score) == status


def test_missing_data_score():
    # 300 missing are free; 3000 missing score 100 (scoreBias 300, missingDataThreshold 2700)
    assert qc(genome(missing=["1-300"]), 29903)["rules"]["missing_data"]["score"] == 0
    r = qc(genome(missing=["1-100", "1001-3900"]), 29903)["rules"]["missing_data"]
    assert r["missing"] == 3000 and r["score"] == 100 and r["status"] == "bad"
    r = qc(genome(missing=["1-1650"]), 29903)["rules"]["missing_data"]
    assert r["score"] == 50 and r["status"] == "mediocre"


def test_mixed_sites_private_mutations_and_overall_score():
    q = qc(genome(mixed=[f"A{i}R" for i in range(1, 4)]), 29903)
    assert q["rules"]["mixed_sites"]["score"] == 30
    subs = [f"A{100 * i}G" for i in range(1, 21)]  # 20 spread out: (20 - 8) × 100 / 24 = 50
    q = qc(genome(substitutions=subs, mixed=["A1R"] * 10), 29903)
    assert q["rules"]["private_mutations"]["score"] == 50
    assert q["rules"]["mixed_sites"]["score"] == 100
    assert q["score"] == pytest.approx((50**2 + 100**2) / 100)
    assert q["status"] == "bad" and q["nextclade_status"] == "bad"
    assert any(r.startswith("mixed sites: bad") for r in q["reasons"])


def test_snp_clusters_against_brute_force():
    rng = random.Random(5)
    for _ in range(200):
        pos = sorted(rng.sample(range(1, 2000), rng.randint(0, 40)))
        windows = [w for w in range(1, 2000) if sum(w <= p < w + 100 for p in pos) > 6]
        clustered = sorted({p for w in windows for p in pos if w <= p < w + 100})
        found = snp_clusters(pos)
        assert sorted(p for c in found for p in c) == clustered
        assert all(found[i][-1] < found[i + 1][0] for i in range(len(found) - 1))
    q = qc(genome(substitutions=[f"C{p}T" for p in range(1000, 1070, 10)]), 29903)
    assert q["rules"]["snp_clusters"]["score"] == 50  # 7 within 100 bases: one cluster


def test_known_stop_codons_and_frame_shifts_are_not_penalised():
    q = qc(genome(stop_codons=["ORF8:Q27*", "ORF8:K68*"], frame_shifts=["ORF3a:257-276"]), 29903)
    assert q["rules"]["stop_codons"]["score"] == 0 and q["rules"]["frame_shifts"]["score"] == 0
    q = qc(genome(stop_codons=["S:Q100*"], frame_shifts=["ORF3a:20-276"]), 29903)
    assert q["rules"]["stop_codons"]["score"] == 75
    assert q["rules"]["frame_shifts"]["score"] == 75
    assert q["score"] == pytest.approx((75**2 + 75**2) / 100)  # 112.5: bad
    assert q["status"] == "bad"
    one = qc(genome(stop_codons=["S:Q100*"]), 29903)
    assert one["score"] == pytest.approx(56.25) and one["status"] == "mediocre"


def test_csiro_limits():
    ok = qc(genome(n_count=290, longest_n_run=50), 29903)
    assert ok["status"] == "good" and ok["csiro"]["pass"]
    long_run = qc(genome(n_count=100, longest_n_run=51), 29903)
    assert long_run["status"] == "bad" and long_run["nextclade_status"] == "good"
    assert "CSIRO: a run of 51 N (limit 50)" in long_run["reasons"]
    many = qc(genome(n_count=300), 29903)  # 300 / 29,800 = 1.0 %: not below 1 %
    assert many["status"] == "bad"
    short = qc(genome(length=28_000), 29903)
    assert short["status"] == "bad"
    loose = qc(genome(length=28_000), 29903, QcSettings(min_length=20_000))
    assert loose["status"] == "good"


def test_an_unaligned_genome_is_bad():
    q = qc(genome(error="no alignment"), 29903)
    assert q["status"] == "bad" and "not aligned" in q["reasons"][0]
