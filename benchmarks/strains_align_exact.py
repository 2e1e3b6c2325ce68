"""Exactness of the strains aligner on the shared genomes: anchored windows vs one full matrix.

Aligns every shared SARS-CoV-2 genome (or every ``--every``-th, by name) both with
:func:`sandgrain.strains.align.align` and with the plain full dynamic programme of
``tests/strains/strains_dp_reference.py``, and counts genomes whose path or score differ.
Prints a table, writes JSON (``--out``). The full matrix costs 30–80 s a genome: use ``--jobs``.

    .venv/bin/python benchmarks/strains_align_exact.py --every 1 --jobs 2 --out exact.json
    .venv/bin/python benchmarks/strains_align_exact.py --every 2 --offset 1 --jobs 2  # other half
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "strains")]


def check(i: int) -> dict:
    import numpy as np
    from strains_dp_reference import full_dp
    from strains_fixtures import genomes, reference

    from sandgrain.strains.align import align, encode

    name, seq = genomes()[i]
    t = time.perf_counter()
    got = align(reference(), seq)
    fast_s = time.perf_counter() - t
    t = time.perf_counter()
    ops, best = full_dp(reference().masks, encode(seq))
    full_s = time.perf_counter() - t
    return {
        "strain": name,
        "same_path": bool(np.array_equal(ops, got.ops)),
        "score": got.score,
        "optimum": best,
        "fast_s": fast_s,
        "full_s": full_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--every", type=int, default=1, help="every N-th genome by name (1: all)")
    ap.add_argument("--offset", type=int, default=0, help="start at the N-th genome (0..every-1)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="strains_align_exact.json")
    args = ap.parse_args()
    from strains_fixtures import genomes

    names = [n for n, _ in genomes()]
    picked = sorted(range(len(names)), key=lambda i: names[i])[args.offset :: args.every]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(check, picked))
    bad = [r for r in rows if not r["same_path"] or r["score"] != r["optimum"]]
    result = {
        "genomes": len(rows),
        "differ": len(bad),
        "differing": bad,
        "wall_s": round(time.perf_counter() - t0, 1),
        "jobs": args.jobs,
        "every": args.every,
        "offset": args.offset,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'genomes':>8} {'differ':>7} {'wall s':>8}")
    print(f"{len(rows):>8} {len(bad):>7} {result['wall_s']:>8}")


if __name__ == "__main__":
    main()
