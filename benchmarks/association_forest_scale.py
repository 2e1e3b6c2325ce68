"""The wide random forest at scale: synthetic cohorts up to 10,000 samples × 1,000,000 variants.

For each size the cohort is generated straight into a store by ``synth_genotypes.py`` (planted
causal variants, LD blocks, U-shaped allele frequencies, 0.5 % missing calls; kept between runs
under ``--work``), then the path a user takes runs cold: ``sandgrain association forest
--genotypes NAME --phenotypes TRAITS --trait label -o importance.tsv`` as a subprocess under
``/usr/bin/time`` (wall time, peak resident memory of the command's process) while a sampler adds
up the proportional set size (PSS: a page shared by k processes counts 1/k in each) of the whole
process tree every 0.5 s — for Dask the scheduler and workers it starts, which share the pages of
the memory-mapped training bundle, so the sum is the memory the run holds. The planted
variants' ranks in the written table tell whether the forest found them.

    .venv/bin/python benchmarks/association_forest_scale.py \\
        --sizes 10000x1000000 --trees 100 --executors local:2,dask-local:2
    .venv/bin/python benchmarks/association_forest_scale.py \\
        --sizes 2500x100000,5000x100000,10000x100000,10000x300000 --trees 20

Writes JSON (``--json``) and prints a summary table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from proctree import wait_with_peak

HERE = Path(__file__).resolve().parent


def _cohort(work: Path, samples: int, variants: int, causal: int) -> tuple[str, Path, dict]:
    """The cohort's dataset name, traits TSV and generator figures (generated once)."""
    sys.path.insert(0, str(HERE))
    from synth_genotypes import make_genotypes

    from sandgrain.storage import Store

    name = f"syn{samples}x{variants}"
    traits = work / f"{name}.tsv"
    done = work / f"{name}.generated.json"
    if done.exists():
        return name, traits, json.loads(done.read_text())
    store = Store(str(work / "home" / "store"))
    figures = make_genotypes(
        store,
        name,
        samples=samples,
        variants=variants,
        causal=causal,
        seed=1,
        traits=traits,
        replace=True,
    )
    done.write_text(json.dumps(figures, default=str))
    return name, traits, figures


def _forest(work: Path, name: str, traits: Path, trees: int, executor: str) -> dict:
    out = work / f"{name}.{executor.replace(':', '')}.importance.tsv"
    timing = work / "time.txt"
    cmd = [
        "/usr/bin/time",
        "-f",
        "%e %M",
        "-o",
        str(timing),
        str(Path(sys.executable).with_name("sandgrain")),
        "association",
        "forest",
        "--genotypes",
        name,
        "--phenotypes",
        str(traits),
        "--trait",
        "label",
        "--trees",
        str(trees),
        "--seed",
        "1",
        "--executor",
        executor,
        "-q",
        "-o",
        str(out),
    ]
    env = {**os.environ, "SANDGRAIN_HOME": str(work / "home")}
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    tree_peak = wait_with_peak(proc, "pss", 0.5)
    if proc.returncode != 0:
        raise SystemExit(f"sandgrain association forest failed ({proc.returncode})")
    wall = time.perf_counter() - t
    _, rss_kb = timing.read_text().split()[-2:]
    return {
        "wall_s": wall,
        "peak_rss_mb": int(rss_kb) / 1024,
        "tree_peak_pss_mb": tree_peak / 2**20,
        "output": str(out),
    }


def _ranks(table: Path, causal_ids: set[str]) -> dict:
    """Ranks of the planted variants in an importance table, and the OOB error from its header."""
    ranks, oob = {}, None
    with open(table) as fh:
        header = None
        for line in fh:
            if line.startswith("#"):
                if "oob" in line.lower() and oob is None:
                    oob = line.strip()
                continue
            if header is None:
                header = line.rstrip("\n").split("\t")
                i_id, i_rank = header.index("id"), header.index("rank")
                continue
            f = line.rstrip("\n").split("\t")
            if f[i_id] in causal_ids:
                ranks[f[i_id]] = int(f[i_rank])
    return {"causal_ranks": dict(sorted(ranks.items(), key=lambda kv: kv[1])), "oob": oob}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000x1000000", help="SAMPLESxVARIANTS, comma-separated")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--causal", type=int, default=20)
    ap.add_argument("--executors", default="local:2", help="comma-separated executor URLs")
    ap.add_argument("--work", type=Path, default=Path("benchmarks/results/forest-scale"))
    ap.add_argument(
        "--json", type=Path, default=Path("benchmarks/results/association_forest_scale.json")
    )
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = []
    for size in args.sizes.split(","):
        samples, variants = (int(x) for x in size.lower().split("x"))
        name, traits, gen = _cohort(args.work, samples, variants, args.causal)
        causal_ids = {c["id"] for c in gen.get("causal", [])}
        for executor in args.executors.split(","):
            r = _forest(args.work, name, traits, args.trees, executor)
            r.update(_ranks(Path(r["output"]), causal_ids))
            r.update({"samples": samples, "variants": variants, "trees": args.trees})
            r["executor"] = executor
            r["load_after"] = os.getloadavg()[0]
            top = sorted(r["causal_ranks"].values())
            r["causal_in_top_100"] = sum(1 for x in top if x <= 100)
            runs.append(r)
            print(
                f"{samples:>7} × {variants:>9}  {executor:<13} {r['wall_s']:>8.1f} s "
                f"{r['peak_rss_mb']:>8.0f} MB (all PSS {r['tree_peak_pss_mb']:.0f} MB)  "
                f"causal in top 100: {r['causal_in_top_100']}/{len(causal_ids)}  "
                f"load {r['load_after']:.1f}",
                flush=True,
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"trees": args.trees, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
