#!/usr/bin/env python
"""Where the guide scores of real genes fall: the evidence behind the page's colour bins.

The page colours each guide's efficiency (Rule Set 3) and specificity (MIT and CFD guide
scores, :mod:`sandgrain.guides.document`) green, amber or red. This script designs guides for
real genes and reports how the scores spread, and how the bins split guides that the ranking
flags as bad (a second perfect site, an off-target with 1 mismatch) from the others:

* yeast R64: ``--genes`` random protein-coding genes (SGD models, exons);
* human chrX 1–70 Mb (GRCh37; real Alu/L1 repeats): ``--windows`` random 2 kb windows inside the
  spans of genes from ``genes/human-grch37-gene-coordinates.tsv`` (the slice has no exon models).

Both run through :func:`sandgrain.design_guides` with SpCas9 at 4 mismatches (NAG/NGA
off-targets included, the default). The genomes are imported and indexed into ``--workdir``
once (reused when present).

Usage::

    python benchmarks/score_bins.py                     # ~5–10 minutes on 2 cores
    python benchmarks/score_bins.py --genes 20 --windows 20 --out /tmp/bins.json

Results go to ``--out`` (JSON, written atomically) and a summary to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(
    os.environ.get(
        "SANDGRAIN_TEST_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)
YEAST = DATA / "genomes" / "yeast-R64"
CHRX = DATA / "genomes" / "human-grch37-chrX-1-70M" / "hs37chrXtrunc.fa.gz"
GENES = DATA / "genes" / "human-grch37-gene-coordinates.tsv"
QUANTILES = (0.1, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 0.9)


def log(message: str) -> None:
    print(f"[score_bins] {message}", file=sys.stderr, flush=True)


def open_store(workdir: Path):
    from sandgrain.genome.store import KIND, add_genome, open_genome
    from sandgrain.guides.nucleases import get_nuclease
    from sandgrain.guides.siteindex import SiteFamily, build_index
    from sandgrain.storage import Store

    store = Store(str(workdir / "store"))
    family = SiteFamily.of(get_nuclease("SpCas9"))
    genomes = {}
    for name, fasta, annotation in (
        ("yeast", YEAST / "Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz",
         YEAST / "SGD_features.tab"),
        ("chrx", CHRX, None),
    ):  # fmt: skip
        if not store.has_dataset(KIND, name):
            log(f"importing {name}")
            add_genome(store, name, str(fasta), annotation=str(annotation) if annotation else None)
        genome = open_genome(store, name)
        if not store.has_dataset("siteindex", f"{name}.{family.slug}"):
            log(f"indexing {name} ({family.slug})")
            build_index(genome, family, executor="local:2")
        genomes[name] = genome
    return genomes


def targets(genomes, n_genes: int, n_windows: int, seed: int):
    rng = random.Random(seed)
    yeast = genomes["yeast"]
    coding = [g for g in yeast.genes if g.cds and g.chrom != "Mito"]
    for g in rng.sample(coding, n_genes):
        yield "yeast", {"gene": g.gene_id, "within": "cds"}
    spans = []
    for line in GENES.read_text().splitlines():
        chrom, start, end, symbol = line.split()[:4]
        if chrom == "X" and int(end) < 69_990_000 and int(end) - int(start) > 2_000:
            spans.append((int(start), int(end), symbol))
    chrx = genomes["chrx"].chromosomes[0]["name"]
    for start, end, _symbol in rng.sample(spans, n_windows):
        a = rng.randint(start, end - 2_000)
        yield "chrx", {"region": f"{chrx}:{a}-{a + 1_999}"}


def summarise(values: list[float]) -> dict:
    arr = np.asarray([v for v in values if v is not None], float)
    if not len(arr):
        return {"n": 0}
    return {
        "n": int(len(arr)),
        "mean": float(arr.mean()),
        "quantiles": {f"{q:.3f}": float(np.quantile(arr, q)) for q in QUANTILES},
    }


def bin_table(guides: list[dict]) -> dict:
    """Per bin of each score: guides, and how many carry a close off-target (0/1 mismatch)."""
    from sandgrain.guides.document import SCORE_BINS, score_bin

    out = {}
    for score in SCORE_BINS:
        rows = {"good": [0, 0], "fair": [0, 0], "poor": [0, 0]}
        for g in guides:
            which = score_bin(score, g.get(score))
            if which is None:
                continue
            close = g["offtarget_counts"][0] + g["offtarget_counts"][1] > 0
            rows[which][0] += 1
            rows[which][1] += int(close)
        out[score] = {k: {"guides": n, "with_0_or_1_mismatch_offtarget": c}
                      for k, (n, c) in rows.items()}  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=60, help="random yeast genes")
    parser.add_argument("--windows", type=int, default=60, help="random 2 kb chrX gene windows")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "sg-bins")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/score_bins.json"))
    args = parser.parse_args()
    if not YEAST.is_dir() or not CHRX.is_file():
        log(f"shared data not found under {DATA} (set SANDGRAIN_TEST_DATA)")
        return 2
    from sandgrain.guides import design_guides
    from sandgrain.guides.document import SCORE_BINS

    args.workdir.mkdir(parents=True, exist_ok=True)
    genomes = open_store(args.workdir)
    guides: dict[str, list[dict]] = {"yeast": [], "chrx": []}
    t0 = time.perf_counter()
    for name, target in targets(genomes, args.genes, args.windows, args.seed):
        doc = design_guides(genomes[name], executor="serial", list_offtargets=False, **target)
        guides[name] += doc["guides"]
    elapsed = time.perf_counter() - t0
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "parameters": vars(args) | {"workdir": str(args.workdir), "out": str(args.out)},
        "bins": SCORE_BINS,
        "seconds": elapsed,
        "genomes": {},
    }
    for name, gs in guides.items():
        result["genomes"][name] = {
            "guides": len(gs),
            "tiers": {t: sum(g["tier"] == t for g in gs) for t in (1, 2, 3)},
            "scores": {s: summarise([g[s] for g in gs]) for s in SCORE_BINS},
            "bins": bin_table(gs),
        }
    pooled = guides["yeast"] + guides["chrx"]
    result["pooled_terciles"] = {
        s: [float(np.quantile(v, 1 / 3)), float(np.quantile(v, 2 / 3))]
        for s in SCORE_BINS
        if (v := [g[s] for g in pooled if g[s] is not None])
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False) as f:
        json.dump(result, f, indent=2)
    os.replace(f.name, args.out)
    print(f"{'genome':7} {'score':16} {'n':>6} {'p25':>8} {'p50':>8} {'p75':>8}   "
          f"good / fair / poor (guides with a 0–1 mm off-target)")  # fmt: skip
    for name, g in result["genomes"].items():
        for s, summ in g["scores"].items():
            if not summ["n"]:
                continue
            q = summ["quantiles"]
            b = g["bins"][s]
            cells = " / ".join(
                f"{b[k]['guides']} ({b[k]['with_0_or_1_mismatch_offtarget']})"
                for k in ("good", "fair", "poor")
            )
            print(f"{name:7} {s:16} {summ['n']:6} {q['0.250']:8.3f} {q['0.500']:8.3f} "
                  f"{q['0.750']:8.3f}   {cells}")  # fmt: skip
    print(
        f"{sum(len(v) for v in guides.values())} guides in {elapsed:.1f} s; results in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
