"""Quality control of a genome after Nextclade's published rules, plus CSIRO's limits.

Nextclade's rules and SARS-CoV-2 thresholds (Nextclade documentation, "Quality Control",
docs.nextstrain.org/projects/nextclade, algorithm section 7; the ``qc.json`` of the MN908947
dataset in nextstrain/nextclade_data). Each rule gives a score; 0–29 is *good*, 30–99
*mediocre*, 100 and above *bad*; the overall score is ``S = Σ S_i² / 100`` with the same
thresholds.

- **Missing data (N)**: ``max(0, (missing − 300) × 100 / 2700)`` (``scoreBias`` 300,
  ``missingDataThreshold`` 2700). *Missing* counts the reference positions that are N in the
  genome or that it does not reach (its trimmed ends).
- **Mixed sites (M)**: ``100 × mixed / 10`` (``mixedSitesThreshold`` 10): IUPAC codes other
  than A, C, G, T and N.
- **Private mutations (P)**: ``max(0, weighted − 8) × 100 / 24`` (``typical`` 8, ``cutoff``
  24), weighted = unlabeled substitutions × 1 + deletion ranges × 1. Nextclade counts
  mutations beyond the genome's nearest node on a reference tree; a collection has no tree, so
  here they are the differences from the reference (no reversions or labelled mutations to
  weigh 6 and 4). For genomes far from the reference (later lineages) this rule over-counts:
  read it as divergence.
- **Mutation clusters (C)**: more than 6 (``clusterCutOff``) of those substitutions within a
  100-base window (``windowSize``) make a cluster (overlapping windows are one cluster);
  score ``50 × clusters`` (``scoreWeight``).
- **Frame shifts (F)**: ``75 ×`` frame shifts, those known in circulating viruses excepted
  (``ignoredFrameShifts``: ORF3a codons 257–276 and 259–276).
- **Stop codons (S)**: ``75 ×`` premature stops, the known ones excepted
  (``ignoredStopCodons``: ORF8 codons 27 and 68).

CSIRO's limits for the genomes of their SARS-CoV-2 k-mer map, as the project's issue 14 states
them (fewer than 1 % N and no run of N longer than 50 bases inside the genome: a run at either
end is an unsequenced end, the same missing data whether written as N or cut, and Nextclade's
missing-data rule counts it either way; on the 418 genomes of Nextstrain's example the same 123
fail with or without the ends); and the Nextstrain ingest's length
floor (sequences of more than 29,000 bases; discussion.nextstrain.org, "GISAID nextfasta QC
criteria"). A genome outside them is *bad*.
A genome that could not be aligned is *bad*.
"""

from __future__ import annotations

from dataclasses import dataclass

from .mutations import Calls

__all__ = ["QcSettings", "STATUSES", "qc", "status_of"]

STATUSES = ("good", "mediocre", "bad")


@dataclass(frozen=True)
class QcSettings:
    """The thresholds (defaults: Nextclade's SARS-CoV-2 dataset and CSIRO's limits)."""

    missing_score_bias: int = 300
    missing_threshold: int = 2700
    mixed_threshold: int = 10
    private_typical: float = 8
    private_cutoff: float = 24
    cluster_window: int = 100
    cluster_cutoff: int = 6
    cluster_weight: float = 50
    frame_shift_weight: float = 75
    stop_codon_weight: float = 75
    ignored_frame_shifts: tuple[str, ...] = ("ORF3a:257-276", "ORF3a:259-276")
    ignored_stop_codons: tuple[tuple[str, int], ...] = (("ORF8", 27), ("ORF8", 68))
    max_n_fraction: float = 0.01
    max_n_run: int = 50
    min_length: int = 29_000


def status_of(score: float) -> str:
    """good (< 30), mediocre (30–99) or bad (≥ 100): Nextclade's thresholds."""
    return "good" if score < 30 else "mediocre" if score < 100 else "bad"


def _span(text: str) -> int:
    a, _, b = text.rpartition(":")[2].partition("-")
    return int(b) - int(a) + 1


def snp_clusters(positions: list[int], window: int = 100, cutoff: int = 6) -> list[list[int]]:
    """Clusters of substitutions: every window of ``window`` bases holding more than ``cutoff``
    of them, overlapping windows joined; each cluster as its sorted positions."""
    pos = sorted(positions)
    clusters: list[list[int]] = []
    j = 0
    for i, p in enumerate(pos):
        while pos[j] < p - window + 1:
            j += 1
        if i - j + 1 > cutoff:
            members = pos[j : i + 1]
            if clusters and members[0] <= clusters[-1][-1]:
                clusters[-1] = sorted(set(clusters[-1]) | set(members))
            else:
                clusters.append(list(members))
    return clusters


def _position(sub: str) -> int:
    return int(sub[1:-1])


def qc(calls: Calls, reference_length: int, settings: QcSettings | None = None) -> dict:
    """The QC of one genome: each rule's value and score, the overall score, the status and the
    reasons (one line per rule that is not good, and per CSIRO limit exceeded)."""
    s = settings or QcSettings()
    if calls.error:
        return {
            "status": "bad",
            "score": None,
            "reasons": [f"not aligned: {calls.error}"],
            "rules": {},
        }
    missing = sum(_span(r) for r in calls.missing)
    rules = {}
    rules["missing_data"] = {
        "missing": missing,
        "score": max(0.0, (missing - s.missing_score_bias) * 100 / s.missing_threshold),
    }
    rules["mixed_sites"] = {
        "mixed": len(calls.mixed),
        "score": 100 * len(calls.mixed) / s.mixed_threshold,
    }
    weighted = len(calls.substitutions) + len(calls.deletions)
    rules["private_mutations"] = {
        "substitutions": len(calls.substitutions),
        "deletion_ranges": len(calls.deletions),
        "score": max(0.0, weighted - s.private_typical) * 100 / s.private_cutoff,
    }
    clusters = snp_clusters(
        [_position(x) for x in calls.substitutions], s.cluster_window, s.cluster_cutoff
    )
    rules["snp_clusters"] = {
        "clusters": [f"{c[0]}-{c[-1]}" for c in clusters],
        "score": s.cluster_weight * len(clusters),
    }
    shifts = [f for f in calls.frame_shifts if f not in s.ignored_frame_shifts]
    rules["frame_shifts"] = {
        "frame_shifts": shifts,
        "ignored": [f for f in calls.frame_shifts if f in s.ignored_frame_shifts],
        "score": s.frame_shift_weight * len(shifts),
    }
    ignored_stops = {f"{g}:{c}" for g, c in s.ignored_stop_codons}
    stops = [x for x in calls.stop_codons if _stop_key(x) not in ignored_stops]
    rules["stop_codons"] = {
        "stop_codons": stops,
        "ignored": [x for x in calls.stop_codons if _stop_key(x) in ignored_stops],
        "score": s.stop_codon_weight * len(stops),
    }
    for rule in rules.values():
        rule["score"] = round(float(rule["score"]), 2)
        rule["status"] = status_of(rule["score"])
    total = round(sum(r["score"] ** 2 for r in rules.values()) / 100, 2)
    status = status_of(total)
    reasons = [
        f"{name.replace('_', ' ')}: {r['status']} (score {r['score']:g})"
        for name, r in rules.items()
        if r["status"] != "good"
    ]
    n_fraction = calls.n_count / calls.length if calls.length else 1.0
    csiro = {
        "n_fraction": round(n_fraction, 5),
        "longest_n_run": calls.longest_n_run,
        "length": calls.length,
        "pass": True,
    }
    limits = [
        (
            n_fraction >= s.max_n_fraction,
            f"CSIRO: {100 * n_fraction:.2f} % N (limit < {100 * s.max_n_fraction:g} %)",
        ),
        (
            calls.longest_n_run > s.max_n_run,
            f"CSIRO: a run of {calls.longest_n_run} N (limit {s.max_n_run})",
        ),
        (calls.length <= s.min_length, f"length {calls.length:,} bases (limit > {s.min_length:,})"),
    ]
    for failed, reason in limits:
        if failed:
            csiro["pass"] = False
            reasons.append(reason)
    if not csiro["pass"]:
        status = "bad"
    return {
        "status": status,
        "nextclade_status": status_of(total),
        "score": total,
        "reasons": reasons,
        "rules": rules,
        "csiro": csiro,
    }


def _stop_key(stop: str) -> str:
    """``ORF8:Q27*`` → ``ORF8:27``."""
    gene, _, change = stop.partition(":")
    return f"{gene}:{change[1:-1]}"
