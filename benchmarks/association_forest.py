"""The wide random forest vs scikit-learn's RandomForestClassifier on the hipster data.

Same data (2,504 samples × 17,090 variant rows of 1000 Genomes, VariantSpark's synthetic
``label``), same number of trees, the same ``mtry`` real features per node (our forest draws
``2 × mtry`` among variants and their AIR shadows, so it tries ``mtry`` real ones on average),
the same minimum leaf size, both on 2 workers. Each side runs in its own child process so peak
memory (ru_maxrss) is its own. Prints a table and writes JSON.

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


def _load():
    from sandgrain.association.forest import feature_matrix
    from sandgrain.association.genotypes import GenotypeMatrix
    from sandgrain.association.phenotypes_table import load_traits

    gm = GenotypeMatrix.from_vcf(HIPSTER)
    y, _, _, kept = load_traits(LABELS, "label", (), gm.samples)
    X, levels, _ = feature_matrix(gm, kept)
    return X, levels, y


def _ours(args, q):
    from sandgrain.association.forest import ForestParams, fit_forest

    X, levels, y = _load()
    mtry = int(np.sqrt(X.shape[0]))
    t = time.perf_counter()
    forest = fit_forest(
        X,
        levels,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--min-leaf", type=int, default=1)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/association_forest.json"))
    args = ap.parse_args()
    ours = _run(_ours, args)
    sk = _run(_sklearn, args)
    result = {
        "data": "hipster 2,504 samples x 17,090 variant rows",
        "trees": args.trees,
        "min_leaf": args.min_leaf,
        "sandgrain": ours,
        "sklearn": sk,
        "speedup": sk["wall_s"] / ours["wall_s"],
    }
    print(f"{'':12}{'wall s':>10}{'peak MB':>10}{'workers MB':>12}{'OOB acc':>10}")
    for name, r in (("sandgrain", ours), ("sklearn", sk)):
        print(
            f"{name:12}{r['wall_s']:>10.1f}{r['peak_rss_mb']:>10.0f}"
            f"{r['workers_peak_rss_mb']:>12.0f}{r['oob_accuracy']:>10.3f}"
        )
    print(f"speed-up: {result['speedup']:.1f}x (fit only; VCF parsing excluded for both)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
