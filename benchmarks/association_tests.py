#!/usr/bin/env python
"""Classical association tests as a user runs them (the CLI, cold), next to per-variant peers.

Hipster part (default)
    The hipster data (2,504 samples × 17,090 variant rows of 1000 Genomes, VariantSpark's
    synthetic traits): ``sandgrain association import`` once, then ``sandgrain association test
    --genotypes hipster`` as a subprocess for each test — linear on ``score`` and logistic and
    Firth on ``label`` with the covariates age, PC0…PC2; Fisher and the trend test on ``label``
    (they take no covariates) — each writing its TSV, timed with ``/usr/bin/time`` (wall, peak
    RSS of the largest process). Linear once more straight from the VCF (``--vcf``: the VCF
    parsed in the same run). In the same run, the peers on a random subset of variants
    (``--peer-subset``, 500): statsmodels ``OLS`` and ``Logit`` fitted per variant (design [1,
    covariates, dosage], mean-imputed) and ``scipy.stats.fisher_exact`` per variant on the
    allele 2×2 table; their time per variant is extrapolated to all variants (data loading
    excluded: a generous comparison for the peers).

Synthetic part (``--synthetic N M``, repeatable)
    Genotypes of N samples × M variants written by ``benchmarks/synth_genotypes.py`` (timed:
    the generator is part of the cost of a scale test, not of the tests), then ``association
    test --test linear`` (score) and ``--test logistic`` (label), covariates age, PC0…PC2, via
    the CLI on ``--executor`` (default ``local:2``), each timed with ``/usr/bin/time -v``.
    Datasets are kept in ``--work`` (named by N, M and the seed) and reused by later runs.

JSON goes to ``--json`` (default benchmarks/results/association_tests.json, git-ignored) and a
summary is printed. Usage::

    .venv/bin/python benchmarks/association_tests.py
    .venv/bin/python benchmarks/association_tests.py --no-hipster \\
        --synthetic 2500 100000 --synthetic 10000 100000 --tests linear,logistic
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "association" / "variantspark"
HIPSTER = DATA / "hipster.vcf.bgz"
LABELS = DATA / "hipster_labels_covariates.txt"
COVS = "age,PC0,PC1,PC2"
EXE = Path(sys.executable).with_name("sandgrain")
#: (name, test, trait, covariates, extra options) of the hipster runs.
HIPSTER_RUNS = (
    ("linear", "linear", "score", COVS, []),
    ("logistic", "logistic", "label", COVS, []),
    ("logistic_firth_fallback", "logistic", "label", COVS, ["--firth-fallback"]),
    ("firth", "firth", "label", COVS, []),
    ("fisher", "fisher", "label", "", []),
    ("trend", "trend", "label", "", []),
)


def timed(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v``: wall seconds, peak RSS (MB, the largest single
    process: a pool's workers are not summed), exit status and the last stderr lines."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", tf.name, *cmd],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
        )
        report = tf.read()
    fields = {}
    for line in report.splitlines():
        key, _, value = line.strip().rpartition(": ")
        fields[key] = value
    wall = fields.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "0:0")
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    out = {
        "wall_s": round(seconds, 2),
        "peak_rss_mb": round(int(fields.get("Maximum resident set size (kbytes)", 0)) / 1024, 1),
        "user_s": float(fields.get("User time (seconds)", 0)),
        "system_s": float(fields.get("System time (seconds)", 0)),
        "rc": proc.returncode,
    }
    if proc.returncode:
        out["stderr"] = proc.stderr[-2000:]
        print(
            f"FAILED ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}", file=sys.stderr
        )
    return out


def read_results(path: Path) -> dict:
    """Rows, tested variants (p not NA) and λ of a results TSV."""
    rows = tested = by_firth = 0
    lam = None
    firth_col = None
    with open(path) as fh:
        for line in fh:
            if line.startswith("#"):
                if line.startswith("# lambda_gc = "):
                    lam = float(line.split("=")[1])
                continue
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "chrom":
                firth_col = fields.index("firth") if "firth" in fields else None
                continue
            rows += 1
            tested += fields[8] != "NA"
            by_firth += firth_col is not None and fields[firth_col] == "1"
    out = {"rows": rows, "tested": tested, "lambda_gc": lam}
    if firth_col is not None:
        out["fitted_by_firth"] = by_firth
    return out


def cli_test(
    store: str, executor: str, source: list[str], pheno, trait, covs, test, out, extra=()
) -> dict:
    cmd = [str(EXE), "--store", store, "--executor", executor, "association", "test", *source]
    cmd += ["--phenotypes", str(pheno), "--trait", trait, "--test", test, "-q", "-o", str(out)]
    cmd += list(extra)
    if covs:
        cmd += ["--covariates", covs]
    r = timed(cmd)
    if not r["rc"]:
        r.update(read_results(out))
    return r


# -- peers ----------------------------------------------------------------------------------------
def peers(n_subset: int, seed: int = 1) -> dict:
    """statsmodels OLS/Logit and scipy fisher_exact per variant on a random subset of hipster's
    variants; seconds per variant (model building and fit, data loading excluded)."""
    import statsmodels.api as sm
    from scipy import stats

    from sandgrain.association.genotypes import MISSING, GenotypeMatrix, impute
    from sandgrain.association.phenotypes_table import load_traits

    gm = GenotypeMatrix.from_vcf(HIPSTER)
    D = gm.dosages(0, gm.n_variants)
    cov = COVS.split(",")
    qt = load_traits(LABELS, "score", cov, gm.samples)
    bt = load_traits(LABELS, "label", cov, gm.samples)
    G = impute(D[:, qt.kept])
    poly = np.nonzero(G.std(1) > 0)[0]
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(poly, size=min(n_subset, len(poly)), replace=False))
    out: dict = {"variants_total": gm.n_variants, "subset": len(pick)}
    X0 = np.column_stack([np.ones(len(qt.y)), qt.covariates])

    t = time.perf_counter()
    for j in pick:
        sm.OLS(qt.y, np.column_stack([X0, G[j]])).fit()
    out["statsmodels_ols_s_per_variant"] = (time.perf_counter() - t) / len(pick)

    Xb = np.column_stack([np.ones(len(bt.y)), bt.covariates])
    Gb = impute(D[:, bt.kept])
    failed = 0
    t = time.perf_counter()
    for j in pick:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sm.Logit(bt.y, np.column_stack([Xb, Gb[j]])).fit(disp=0, maxiter=100)
        except Exception:  # perfect separation, singular matrix: counted, as PLINK's NA
            failed += 1
    out["statsmodels_logit_s_per_variant"] = (time.perf_counter() - t) / len(pick)
    out["statsmodels_logit_failed"] = failed

    # Firth: firthmodels (logistf's algorithm in Python), one variant at a time as it fits
    from firthmodels import FirthLogisticRegression

    firth = FirthLogisticRegression(backend="numpy")
    unconverged = 0
    t = time.perf_counter()
    for j in pick:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            firth.fit(np.column_stack([bt.covariates, Gb[j]]), bt.y)
        unconverged += any("converge" in str(w.message) for w in caught)
    out["firthmodels_s_per_variant"] = (time.perf_counter() - t) / len(pick)
    out["firthmodels_unconverged"] = unconverged

    case = bt.y == 1
    Db = D[:, bt.kept]
    t = time.perf_counter()
    for j in pick:
        d = Db[j]
        called = d != MISSING
        a = int(d[called & case].sum())
        b = 2 * int((called & case).sum()) - a
        c = int(d[called & ~case].sum())
        e = 2 * int((called & ~case).sum()) - c
        stats.fisher_exact([[a, b], [c, e]])
    out["scipy_fisher_s_per_variant"] = (time.perf_counter() - t) / len(pick)
    for k in ("statsmodels_ols", "statsmodels_logit", "firthmodels", "scipy_fisher"):
        out[f"{k}_extrapolated_s"] = round(out[f"{k}_s_per_variant"] * gm.n_variants, 1)
    return out


def hipster(work: Path, executor: str, n_subset: int, which: list[str]) -> dict:
    store = str(work / "store")
    res: dict = {"data": "hipster: 2,504 samples x 17,090 variant rows", "executor": executor}
    res["import"] = timed(
        [str(EXE), "--store", store, "association", "import", "--vcf", str(HIPSTER)]
        + ["--name", "hipster", "--replace"]
    )
    runs = {}
    for key, test, trait, covs, extra in HIPSTER_RUNS:
        if key not in which:
            continue
        out = work / f"hipster.{key}.tsv"
        source = ["--genotypes", "hipster"]
        runs[key] = cli_test(store, executor, source, LABELS, trait, covs, test, out, extra)
        print(f"hipster {key}: {runs[key]}", file=sys.stderr)
    runs["linear_from_vcf"] = cli_test(
        store, executor, ["--vcf", str(HIPSTER)], LABELS, "score", COVS, "linear",
        work / "hipster.linear_vcf.tsv",
    )  # fmt: skip
    res["cli"] = runs
    res["peers"] = peers(n_subset)
    return res


# -- synthetic ------------------------------------------------------------------------------------
def synthetic(work: Path, n: int, m: int, tests: list[str], executor: str, seed: int) -> dict:
    store = str(work / "store")
    name = f"syn-n{n}-m{m}-s{seed}"
    traits = work / f"{name}.tsv"
    point: dict = {"samples": n, "variants": m, "executor": executor}
    from sandgrain.storage import Store

    if not (Store(store).has_dataset("genotypes", name) and traits.is_file()):
        point["generate"] = timed(
            [sys.executable, str(REPO / "benchmarks" / "synth_genotypes.py")]
            + ["--samples", str(n), "--variants", str(m), "--causal", "20", "--seed", str(seed)]
            + ["--store", store, "--name", name, "--traits", str(traits), "--replace", "--quiet"]
        )
        print(f"generate {n} x {m}: {point['generate']}", file=sys.stderr)
    for test in tests:
        trait = "score" if test == "linear" else "label"
        out = work / f"{name}.{test}.tsv"
        covs = "" if test in ("fisher", "trend") else COVS
        r = cli_test(store, executor, ["--genotypes", name], traits, trait, covs, test, out)
        if not r["rc"]:
            r["us_per_variant"] = round(r["wall_s"] / m * 1e6, 1)
            r["ns_per_call"] = round(r["wall_s"] / (m * n) * 1e9, 2)
        with __import__("contextlib").suppress(OSError):
            out.unlink()  # results of a million variants are ~100 MB: not kept
        point[test] = r
        print(f"{n} x {m} {test}: {r}", file=sys.stderr)
    return point


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-hipster", action="store_true", help="skip the hipster part")
    ap.add_argument("--peer-subset", type=int, default=500)
    ap.add_argument(
        "--hipster-tests", default="linear,logistic,logistic_firth_fallback,firth,fisher,trend",
        help="tests of the hipster part (firth takes ~10 minutes on 2 cores)",
    )  # fmt: skip
    ap.add_argument(
        "--synthetic", nargs=2, type=int, action="append", default=[], metavar=("N", "M"),
        help="a synthetic point: N samples x M variants (repeatable)",
    )  # fmt: skip
    ap.add_argument("--tests", default="linear,logistic", help="tests of the synthetic points")
    ap.add_argument("--executor", default="local:2")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sg-assoc-bench")
    ap.add_argument(
        "--json", type=Path, default=REPO / "benchmarks" / "results" / "association_tests.json"
    )
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_1min_at_start": os.getloadavg()[0],
            "platform": platform.platform(terse=True),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not args.no_hipster:
        which = [t.strip() for t in args.hipster_tests.split(",")]
        result["hipster"] = hipster(args.work, args.executor, args.peer_subset, which)
    tests = [t.strip() for t in args.tests.split(",") if t.strip()]
    result["synthetic"] = [
        synthetic(args.work, n, m, tests, args.executor, args.seed) for n, m in args.synthetic
    ]
    result["load_1min_at_end"] = os.getloadavg()[0]
    summary(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    if args.json.is_file():  # keep earlier parts of a run made in pieces
        old = json.loads(args.json.read_text())
        if "hipster" not in result and "hipster" in old:
            result["hipster"] = old["hipster"]
        elif "hipster" in old:  # tests not rerun keep their earlier figures (marked)
            for test, r in old["hipster"]["cli"].items():
                if test not in result["hipster"]["cli"]:
                    result["hipster"]["cli"][test] = {**r, "earlier_run": old.get("started")}
        new = {(p["samples"], p["variants"]): p for p in result["synthetic"]}
        for p in old.get("synthetic", []):
            same = new.get((p["samples"], p["variants"]))
            if same is None:
                result["synthetic"].append(p)
            else:  # tests of that point not rerun keep their earlier figures
                same.update({k: v for k, v in p.items() if k not in same})
    result["synthetic"].sort(key=lambda p: (p["samples"], p["variants"]))
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"JSON: {args.json}")
    return 0


def summary(result: dict) -> None:
    h = result.get("hipster")
    if h:
        print(
            f"hipster (2,504 x 17,090), CLI cold on {h['executor']}; "
            f"import {h['import']['wall_s']} s"
        )
        print(f"  {'test':18}{'wall s':>8}{'peak MB':>9}{'tested':>8}{'lambda':>8}")
        for test, r in h["cli"].items():
            print(
                f"  {test[:18]:18}{r['wall_s']:>8.1f}{r['peak_rss_mb']:>9.0f}"
                f"{r.get('tested', 0):>8}{(r.get('lambda_gc') or float('nan')):>8.3f}"
            )
        p = h["peers"]
        print(f"  peers on {p['subset']} variants, extrapolated to {p['variants_total']:,}:")
        for k, ours in (
            ("statsmodels_ols", "linear"),
            ("statsmodels_logit", "logistic"),
            ("firthmodels", "firth"),
            ("scipy_fisher", "fisher"),
        ):
            if ours not in h["cli"]:
                continue
            print(
                f"    {k:18}{p[k + '_s_per_variant'] * 1e3:>8.2f} ms/variant"
                f"{p[k + '_extrapolated_s']:>9.1f} s   (sandgrain {ours}: "
                f"{h['cli'][ours]['wall_s']:.1f} s cold CLI)"
            )
    for pt in result.get("synthetic", []):
        for test, r in pt.items():
            if isinstance(r, dict) and "wall_s" in r:
                extra = (
                    f"  {r['us_per_variant']} µs/variant, {r['ns_per_call']} ns/call"
                    if "us_per_variant" in r
                    else ""
                )
                print(
                    f"{pt['samples']:>7,} x {pt['variants']:>9,} {test:9}{r['wall_s']:>8.1f} s"
                    f"{r['peak_rss_mb']:>8.0f} MB{extra}"
                )


if __name__ == "__main__":
    sys.exit(main())
