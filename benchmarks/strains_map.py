#!/usr/bin/env python
"""K-mer map benchmark (issue 14 §5): map build time and peak memory, projection of new genomes.

For each size N (default 10,000, 25,000 and 100,000), N + 10,000 synthetic genomes are made by
:mod:`sandgrain.strains.simulate` (evolved from the MN908947 reference over two years at 24
substitutions per genome per year, with trimmed ends, amplicon dropouts and 3 % bad genomes) and
their true calls kept in memory. The FASTA is not written: the map reads calls, and reading a
collection's calls from the store is the collection's own cost, measured by its benchmark.
10,000 genomes spread evenly over the period are held out as the *new* genomes. Then,
in-process:

1. **Build**: :func:`sandgrain.strains.embed.build_map` over the N genomes as the map command runs
   it: pass 1 computes the k-mer deltas (k = 10) of the panel (at most 20,000 genomes, chosen
   by hash), the sparse PCA is fitted (10 components), pass 2 computes the delta of every genome
   and projects it, in batches of 2,000. Wall time of each step, and the peak resident memory
   above what the process held before (the calls themselves), sampled every 50 ms.
2. **Projection** of the 10,000 held-out genomes onto that map: deltas + projection, wall time.

**Extrapolation to 1 M genomes**, printed and in the JSON, an estimate and labelled so: the panel
and the fit do not grow with N (the panel is capped), pass 1 grows with N only by reading and
filtering calls, and pass 2 costs the per-genome time measured at the largest N. Memory: the
peak above baseline at the largest N plus what grows with N (the coordinates: 10 float64 per
genome, the strain names and the per-genome bookkeeping, measured as bytes per genome between
the two sizes).

Usage::

    python benchmarks/strains_map.py                      # N = 10,000 and 100,000
    python benchmarks/strains_map.py --quick              # 2,000 and 5,000 (under a minute)
    python benchmarks/strains_map.py --sizes 50000 --new 5000

Results go to ``--out`` (JSON, written atomically) and a summary table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
REFERENCE = DATA / "pathogen/sars-cov-2-ncov-example/reference_seq.fasta"

from sandgrain.strains import embed  # noqa: E402
from sandgrain.strains.embed import reader_from_calls  # noqa: E402
from sandgrain.strains.kmers import KmerSpace  # noqa: E402
from sandgrain.strains.simulate import SimulationParams, simulate  # noqa: E402


class PeakRSS:
    """Peak resident memory of this process above a baseline, sampled in a thread."""

    def __init__(self, interval: float = 0.05):
        self.proc = psutil.Process()
        self.interval = interval
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def above_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def batches(calls, size):
    for i in range(0, len(calls), size):
        yield calls[i : i + size]


def run_size(reference: str, n: int, n_new: int, seed: int, batch: int) -> dict:
    t0 = time.perf_counter()
    total = n + n_new
    params = SimulationParams(n=total, seed=seed)
    every = total / n_new
    held = {int(i * every) for i in range(n_new)}
    old, new = [], []
    for i, g in enumerate(simulate(reference, params)):
        (new if i in held else old).append(g.calls)
    generate_s = time.perf_counter() - t0
    print(f"  N={n:,}: generated {total:,} genomes' calls in {generate_s:.1f} s", file=sys.stderr)
    space = KmerSpace(reference)
    timings: dict[str, float] = {}

    def add(key: str, seconds: float) -> None:
        timings[key] = timings.get(key, 0.0) + seconds

    def timed_read(only):
        key = "deltas_panel_s" if only is not None else "deltas_all_s"
        start = time.perf_counter()
        for b in reader_from_calls(lambda: batches(old, batch), space)(only):
            add(key, time.perf_counter() - start)
            yield b
            start = time.perf_counter()
        add(key, time.perf_counter() - start)

    def timed(key, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                add(key, time.perf_counter() - start)

        return wrapper

    strains = [c.strain for c in old]
    fit, project = embed.fit_map, embed.KmerMap.project
    embed.fit_map = timed("fit_s", fit)
    embed.KmerMap.project = timed("project_s", project)
    try:
        with PeakRSS() as mem:
            start = time.perf_counter()
            built = embed.build_map(timed_read, strains, space=space, seed=seed)
            build_s = time.perf_counter() - start
    finally:
        embed.fit_map, embed.KmerMap.project = fit, project
    pass1 = timings.get("deltas_panel_s", 0.0)
    pass2 = timings.get("deltas_all_s", 0.0) + timings.get("project_s", 0.0)
    start = time.perf_counter()
    projected = sum(len(built.kmap.project(space.deltas(c))) for c in batches(new, batch))
    assert projected == n_new
    project_s = time.perf_counter() - start
    ratio = built.kmap.explained_variance_ratio
    result = {
        "genomes": n,
        "new_genomes": n_new,
        "generate_s": round(generate_s, 2),
        "build_s": round(build_s, 2),
        "pass1_panel_s": round(pass1, 2),
        "fit_s": round(timings.get("fit_s", 0.0), 2),
        "pass2_project_s": round(pass2, 2),
        "pass2_deltas_s": round(timings.get("deltas_all_s", 0.0), 2),
        "other_s": round(build_s - pass1 - pass2 - timings.get("fit_s", 0.0), 2),
        "build_peak_mb_above_baseline": round(mem.above_mb, 1),
        "process_peak_mb": round(mem.peak / 2**20, 1),
        "panel": built.kmap.n_panel,
        "columns": len(built.kmap.vocabulary),
        "explained_variance_ratio_xy": [round(float(r), 4) for r in ratio[:2]],
        "explained_variance_ratio_10": round(float(ratio.sum()), 4),
        "project_new_s": round(project_s, 2),
        "project_per_genome_ms": round(1000 * project_s / n_new, 3),
        "pass2_per_genome_ms": round(1000 * pass2 / n, 3),
    }
    return result


def extrapolate(results: list[dict], target: int = 1_000_000, cap: int = 20_000) -> dict:
    """1 M genomes from the runs whose panel was full (the fixed part no longer grows)."""
    capped = sorted((r for r in results if r["panel"] >= cap), key=lambda r: r["genomes"])
    runs = capped[-2:] if len(capped) >= 2 else sorted(results, key=lambda r: r["genomes"])[-2:]
    big = runs[-1]
    if len(runs) == 2 and runs[0]["genomes"] < big["genomes"]:
        small = runs[0]
        span = big["genomes"] - small["genomes"]
        pass1_per = max((big["pass1_panel_s"] - small["pass1_panel_s"]) / span, 0.0)
        per_genome_mb = max(
            (big["build_peak_mb_above_baseline"] - small["build_peak_mb_above_baseline"]) / span,
            0.0,
        )
        how = f"slopes between N={small['genomes']:,} and N={big['genomes']:,}"
    else:
        pass1_per = big["pass1_panel_s"] / big["genomes"]
        per_genome_mb = big["build_peak_mb_above_baseline"] / big["genomes"]
        how = f"proportional to N={big['genomes']:,} (an upper bound)"
    # what must grow with N whatever the slope says: 10 float64 coordinates, a list slot for the
    # name, the panel flag and the "added" slot, and the same again while the table is written
    floor_mb = 2 * (10 * 8 + 8 + 1 + 8) / 2**20
    if per_genome_mb < floor_mb:
        per_genome_mb = floor_mb
        how += " (memory slope below the floor of what grows per genome: the floor is used)"
    rest = target - big["genomes"]
    build = (
        big["pass1_panel_s"]
        + pass1_per * rest
        + big["fit_s"]
        + (big["pass2_per_genome_ms"] / 1000 * target)
    )
    memory = big["build_peak_mb_above_baseline"] + per_genome_mb * rest
    return {
        "genomes": target,
        "estimate": True,
        "build_s": round(build, 0),
        "build_min": round(build / 60, 1),
        "peak_mb": round(memory, 0),
        "basis": f"measured at N={big['genomes']:,} plus {how}: pass 1 "
        f"{pass1_per * 1e6:.1f} µs/genome, pass 2 {big['pass2_per_genome_ms']} ms/genome, "
        f"memory {per_genome_mb * 2**20:.0f} bytes/genome; reading the calls from the store "
        "is not included",
        "full_panel": bool(len(capped) >= 2),
        "targets": {"build_min": 15, "peak_gb": 8, "project_10k_s": 10},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 25_000, 100_000])
    parser.add_argument("--new", type=int, default=10_000, help="Held-out genomes to project.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/strains_map.json")
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 genomes, 1,000 new.")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.new = [2_000, 5_000], 1_000
    if not REFERENCE.is_file():
        print(f"no reference at {REFERENCE}; set SANDGRAIN_TEST_DATA", file=sys.stderr)
        return 2
    reference = "".join(REFERENCE.read_text().splitlines()[1:])
    results = [run_size(reference, n, args.new, args.seed, args.batch) for n in args.sizes]
    report = {
        "benchmark": "strains_map",
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(terse=True),
            "python": platform.python_version(),
        },
        "parameters": {
            "k": 10,
            "components": 10,
            "panel_cap": 20_000,
            "batch": args.batch,
            "seed": args.seed,
        },  # fmt: skip
        "results": results,
        "extrapolation": extrapolate(results),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, args.out)
    head = ("genomes", "build_s", "pass1_panel_s", "fit_s", "pass2_project_s", "other_s",
            "build_peak_mb_above_baseline", "project_new_s")  # fmt: skip
    print("\t".join(head))
    for r in results:
        print("\t".join(str(r[h]) for h in head))
    e = report["extrapolation"]
    print(f"1M genomes (estimate): build {e['build_min']} min, peak {e['peak_mb']:.0f} MB above "
          f"baseline; {e['basis']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
