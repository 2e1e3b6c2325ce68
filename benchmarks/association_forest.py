"""The wide random forest vs scikit-learn's RandomForestClassifier on the hipster data.

Same data (2,504 samples × 17,090 variant rows of 1000 Genomes, VariantSpark's synthetic
``label``), same number of trees, the same ``mtry`` real features per node (our forest draws
``2 × mtry`` among variants and their AIR shadows, so it tries ``mtry`` real ones on average),
the same minimum leaf size, both on 2 workers (ours: 2 threads of one process; scikit-learn:
``n_jobs=2``). Each side runs in its own child process so peak memory (ru_maxrss) is its own.
Then the path a user takes, cold: ``sandgrain association forest --vcf … -o …`` as a subprocess
(VCF parsing, the forest, p-values and the TSV written), timed with its peak memory. Prints a table
and writes JSON.

    .venv/bin/python benchmarks/association_forest.py --trees 100 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "association"
HIPSTER = DATA / "variantspark" / "hipster.vcf.bgz"
LABELS = DATA / "variantspark" / "hipster_labels_covariates.txt"


def _load(packed=False):
    from sandgrain.association.forest import forest_features
    from sandgrain.association.genotypes import GenotypeMatrix
    from sandgrain.association.phenotypes_table import load_traits

    gm = GenotypeMatrix.from_vcf(HIPSTER)
    y, _, _, kept = load_traits(LABELS, "label", (), gm.samples)
    feats, _ = forest_features(gm, kept)
    if packed:
        return feats, y
    return feats.dense(), feats.levels, y


def _ours(args, q):
    from sandgrain.association.forest import ForestParams, fit_forest

    feats, y = _load(packed=True)
    mtry = int(np.sqrt(feats.n_features))
    t = time.perf_counter()
    forest = fit_forest(
        feats,
        None,
        y,
        ForestParams(
            trees=args.trees,
            mtry=2 * mtry,
            min_leaf=args.min_leaf,
            seed=1,
            batch=max(1, args.trees // 10),
        ),
        classification=True,
        executor="local:2",
    )
    wall = time.perf_counter() - t
    cols = forest.importance_columns(0.05)
    q.put(
        {
            "wall_s": wall,
            "oob_accuracy": 1 - forest.oob_error(y),
            "mtry": mtry,
            "significant_fdr05": int(cols["significant"].sum()),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "workers_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }
    )


def _sklearn(args, q):
    from sklearn.ensemble import RandomForestClassifier

    X, _, y = _load()
    mtry = int(np.sqrt(X.shape[0]))
    t = time.perf_counter()
    model = RandomForestClassifier(
        n_estimators=args.trees,
        max_features=mtry,
        min_samples_leaf=args.min_leaf,
        oob_score=True,
        n_jobs=2,
        random_state=1,
    ).fit(X.T, y)
    wall = time.perf_counter() - t
    q.put(
        {
            "wall_s": wall,
            "oob_accuracy": float(model.oob_score_),
            "mtry": mtry,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "workers_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }
    )


def _run(fn, args):
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=fn, args=(args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def _cli(args) -> dict:
    """``sandgrain association forest`` as a user runs it: a cold process, VCF to TSV."""
    import os
    import subprocess
    import sys
    import tempfile

    exe = Path(sys.executable).with_name("sandgrain")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "/usr/bin/time",
            "-f",
            "%e %M",
            "-o",
            f"{tmp}/time",
            str(exe),
            "association",
            "forest",
            "--vcf",
            str(HIPSTER),
            "--phenotypes",
            str(LABELS),
            "--trait",
            "label",
            "--trees",
            str(args.trees),
            "--min-node-size",
            str(args.min_leaf),
            "--seed",
            "1",
            "--executor",
            "local:2",
            "-q",
            "-o",
            f"{tmp}/importance.tsv",
        ]
        env = {**os.environ, "SANDGRAIN_HOME": f"{tmp}/home"}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        wall, rss_kb = Path(f"{tmp}/time").read_text().split()[-2:]
        lines = Path(f"{tmp}/importance.tsv").read_text().splitlines()
        rows = sum(1 for line in lines if not line.startswith("#")) - 1
    return {"wall_s": float(wall), "peak_rss_mb": int(rss_kb) / 1024, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--min-leaf", type=int, default=1)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/association_forest.json"))
    args = ap.parse_args()
    ours = _run(_ours, args)
    sk = _run(_sklearn, args)
    cli = _cli(args)
    result = {
        "data": "hipster 2,504 samples x 17,090 variant rows",
        "trees": args.trees,
        "min_leaf": args.min_leaf,
        "sandgrain": ours,
        "sklearn": sk,
        "speedup": sk["wall_s"] / ours["wall_s"],
        "cli_cold": cli,
    }
    print(f"{'':12}{'wall s':>10}{'peak MB':>10}{'workers MB':>12}{'OOB acc':>10}")
    for name, r in (("sandgrain", ours), ("sklearn", sk)):
        print(
            f"{name:12}{r['wall_s']:>10.1f}{r['peak_rss_mb']:>10.0f}"
            f"{r['workers_peak_rss_mb']:>12.0f}{r['oob_accuracy']:>10.3f}"
        )
    print(f"speed-up: {result['speedup']:.1f}x (fit only; VCF parsing excluded for both)")
    print(
        f"sandgrain association forest, cold CLI, VCF to TSV: {cli['wall_s']:.1f} s, "
        f"{cli['peak_rss_mb']:.0f} MB peak, {cli['rows']} rows"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
