#!/usr/bin/env python
"""Genome-wide guide library benchmark (issue 12 §4).

What it measures, for SpCas9 with ``sandgrain guides library`` run end to end as a user runs it
(a fresh CLI process, ``--executor local:2``, 4 guides per gene, off-targets up to 4 mismatches):

1. **Yeast R64** with its SGD genes: every gene (7,136 rows of the gene table: 6,600 ORFs, tRNAs
   and other RNAs; CDS of coding genes, exons of the others), or every k-th gene with
   ``--genes-limit N``.
2. **Human chrX 1–70 Mb** (the shared slice; real repeats) with the genes of the shared GRCh37
   gene list that lie in it, imported as a GFF3 of gene features. That list has no exons or CDS,
   so a gene's target is its whole span, introns included (far more candidates per gene than a
   CDS); ``--chrx-genes N`` genes are taken evenly along the slice.
3. **Resume**: a run on ``--resume-genes`` yeast genes is stopped with SIGINT (Ctrl-C) half-way,
   run again, and its output compared byte for byte with an uninterrupted run's.

For each run: wall time of the command, CPU seconds of its process tree, peak memory of the tree
(summed PSS and RSS, sampled every 0.25 s from ``/proc``), genes and guides written, candidates
searched, off-target sites found and the wall and CPU seconds the batches spent by step
(``scan``, ``search``, ``efficiency`` — Rule Set 3 on every candidate — ``records`` and
``complete``), from the part files the command keeps with ``--keep-parts``.

**Extrapolation to a human genome** (20,000 protein-coding genes), printed and in the JSON, an
estimate and labelled so: candidates = ``--human-cds-mb`` of coding sequence (default 34 Mb,
about 1.1 % of the genome) × the candidates per target base measured on chrX, each costing the
CPU seconds per candidate measured here (CPU, not wall time: on a shared machine a worker's wall
time includes waiting for a core), spread over the machine's cores. Every step but the
off-target search costs the same on any genome: it gives a floor. The search grows with the
genome: chrX's CPU seconds per candidate give the low end, and × a genome-size factor
``--search-scale`` (default 16: the ratio of the warm search times of 1,000 random guides × 4
mismatches on the 3.1 Gbp synthetic genome and on chrX in the off-target benchmark,
docs/benchmarks.md) the high end. (chrX gene spans hold repeats that coding sequence mostly
lacks, so their search cost per candidate is on the high side for a CDS library.)

Usage::

    python benchmarks/library.py                 # yeast, all genes + chrX 24 genes + resume
    python benchmarks/library.py --quick         # yeast 300 genes + chrX 12 genes + resume
    python benchmarks/library.py --genes-limit 1000 --skip-chrx

Results go to ``--out`` (JSON, written atomically) and a summary to stdout; progress lines go to
stderr. Exit status: 0 ok, 1 a failed check or error, 2 a bad setup (no data).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
DEFAULT_OUT = "benchmarks/results/library.json"
SANDGRAIN = str(Path(sys.executable).parent / "sandgrain")
YEAST = (
    "genomes/yeast-R64/Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz",
    "genomes/yeast-R64/SGD_features.tab",
)
CHRX = "genomes/human-grch37-chrX-1-70M/hs37chrXtrunc.fa.gz"
GENE_LIST = "genes/human-grch37-gene-coordinates.tsv"
CHRX_END = 69_999_930  # the slice's length
RESUME_BATCH = 10  # genes per batch in the resume check
MiB = 1 << 20
_T0 = time.time()


def _load(name: str):
    path = Path(__file__).resolve().with_name(name)
    spec = importlib.util.spec_from_file_location(f"_sandgrain_bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ot = _load("offtargets.py")  # process-tree memory sampling, subreaper, reaping
gi = ot.gi  # machine information, CPU accounting, atomic JSON


def log(msg: str) -> None:
    print(f"[library {time.time() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------------


def sandgrain(home: Path, *args: str, executor: str = "local:2") -> float:
    """Run a sandgrain command to completion; its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [SANDGRAIN, "--home", str(home), "--executor", executor, *map(str, args)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise gi.BenchmarkError(f"sandgrain {' '.join(map(str, args))}: {proc.stderr.strip()}")
    return time.perf_counter() - t0


def chrx_gff3(path: Path) -> int:
    """The shared GRCh37 gene list's genes inside the chrX slice, as GFF3 gene features (the
    list's starts are 0-based, GFF3's 1-based); returns how many."""
    lines = ["##gff-version 3\n"]
    seen: dict[str, int] = {}
    for line in (DATA / GENE_LIST).read_text().splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] != "X" or int(parts[2]) > CHRX_END:
            continue
        start0, end, symbol = int(parts[1]), int(parts[2]), parts[3]
        seen[symbol] = seen.get(symbol, 0) + 1
        gid = symbol if seen[symbol] == 1 else f"{symbol}.{seen[symbol]}"
        attributes = f"ID={gid};Name={symbol}"
        lines.append(f"X\tGRCh37-list\tgene\t{start0 + 1}\t{end}\t.\t.\t.\t{attributes}\n")
    path.write_text("".join(lines))
    return len(lines) - 1


def setup_genome(home: Path, workdir: Path, key: str) -> dict:
    if key == "yeast":
        fasta, annotation = DATA / YEAST[0], DATA / YEAST[1]
        genes_in_file = None
    else:
        fasta, annotation = DATA / CHRX, workdir / "chrx-genes.gff3"
        genes_in_file = chrx_gff3(annotation)
    add_s = sandgrain(home, "genome", "add", key, "--fasta", fasta, "--annotation", annotation)
    index_s = sandgrain(home, "genome", "index", key, "-q")
    log(f"{key}: imported in {add_s:.1f} s, indexed in {index_s:.1f} s")
    return {"import_s": add_s, "index_s": index_s, "genes_in_annotation_file": genes_in_file}


def gene_sample(home: Path, key: str, limit: int | None) -> tuple[list[str] | None, dict]:
    """Every gene (``None``) or ``limit`` genes taken evenly along the gene table; with the
    target bases of the sample, as the library's plan counts them."""
    from sandgrain.genome.store import open_genome
    from sandgrain.guides.library import LibraryRequest, gene_target, plan_library
    from sandgrain.storage import Store

    genome = open_genome(Store(str(home / "store")), key)
    genes = genome.genes.genes
    names = None
    if limit is not None and limit < len(genes):
        step = len(genes) / limit
        names = [genes[int(i * step)].gene_id for i in range(limit)]
    plan = plan_library(genome, LibraryRequest(genes=names))
    bases = sum(
        gene_target(genes[row], within).description["length"]
        for row, within in zip(plan.rows, plan.within, strict=True)
    )
    within = {w: plan.within.count(w) for w in sorted(set(plan.within))}
    return names, {
        "genes_in_table": len(genes),
        "genes_asked": len(genes) if names is None else len(names),
        "genes_planned": plan.genes,
        "genes_skipped": len(plan.skipped),
        "skipped_reasons": sorted({s["reason"] for s in plan.skipped}),
        "target_parts": within,
        "target_bases": bases,
        "batches": len(plan.batches),
    }


# ---------------------------------------------------------------------------------------------
# One library run, measured
# ---------------------------------------------------------------------------------------------


def library_run(
    home: Path,
    key: str,
    names: list[str] | None,
    out: Path,
    executor: str,
    *,
    interrupt_after: float | None = None,
    extra: tuple[str, ...] = (),
) -> dict:
    """``sandgrain guides library`` in a fresh process (own process group), its tree's memory
    sampled; with ``interrupt_after`` seconds, SIGINT goes to the group then (as Ctrl-C)."""
    args = [SANDGRAIN, "--home", str(home), "--executor", executor, "guides", "library"]
    args += ["-g", key, "--per-gene", "4", "-m", "4", "-o", str(out), "--keep-parts", *extra]
    if names is not None:
        genes_file = out.with_suffix(".genes.txt")
        genes_file.write_text("\n".join(names) + "\n")
        args += ["--genes", str(genes_file)]
    sampler = ot.TreeSampler(0.25, None, 1 << 30)
    cpu0 = gi.own_cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    sampler.start()
    interrupted = False
    try:
        while proc.poll() is None:
            due = interrupt_after is not None and time.perf_counter() - t0 >= interrupt_after
            if due and not interrupted:
                os.killpg(proc.pid, signal.SIGINT)
                interrupted = True
            time.sleep(0.1)
        stderr = proc.stderr.read()
    finally:
        sampler.stop_event.set()
        sampler.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        ot._reap_orphans()
    wall = time.perf_counter() - t0
    result = {
        "wall_s": wall,
        "cpu_s": gi.own_cpu_seconds() - cpu0,
        "exit": proc.returncode,
        "interrupted": interrupted,
        "stderr_tail": stderr.strip().splitlines()[-4:],
        **sampler.stats(),
    }
    if not interrupted and proc.returncode != 0:
        raise gi.BenchmarkError(f"library run failed ({proc.returncode}): {stderr.strip()}")
    parts = sorted(out.parent.glob(out.name + ".parts/part-*.json"))
    result["parts"] = len(parts)
    if not interrupted:
        result.update(part_stats(parts))
        result["guides"] = max(0, len(out.read_text().splitlines()) - 1)
        result["output_bytes"] = out.stat().st_size
    return result


def part_stats(parts: list[Path]) -> dict:
    """Genes, candidates, sites and seconds by step, summed over the part files."""
    genes = candidates = sites = 0
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    short = 0
    for path in parts:
        part = json.loads(path.read_text())
        genes += len(part["genes"])
        short += sum(1 for g in part["genes"] if len(g["guides"]) < 4)
        candidates += part["stats"]["candidates"]
        sites += part["stats"]["sites"]
        for step, value in part["stats"]["seconds"].items():
            seconds[step] = seconds.get(step, 0.0) + value
        for step, value in part["stats"]["cpu_seconds"].items():
            cpu[step] = cpu.get(step, 0.0) + value
    return {
        "genes": genes,
        "genes_with_fewer_than_4": short,
        "candidates": candidates,
        "sites": sites,
        "task_seconds": seconds,
        "task_cpu_seconds": cpu,
    }


def bench_genome(home: Path, workdir: Path, key: str, limit: int | None, args) -> dict:
    out: dict = {"setup": setup_genome(home, workdir, key)}
    names, out["sample"] = gene_sample(home, key, limit)
    s = out["sample"]
    log(
        f"{key}: {s['genes_planned']:,} genes, {s['target_bases']:,} target bases, "
        f"{s['batches']} batches; running the library"
    )
    run = library_run(home, key, names, workdir / f"{key}.tsv", args.executor)
    out["run"] = run
    rate = run["genes"] / run["wall_s"]
    log(
        f"{key}: {run['genes']:,} genes, {run['guides']:,} guides in {run['wall_s']:.1f} s "
        f"({rate:.2f} genes/s, {run['candidates'] / run['wall_s']:.0f} candidates/s), "
        f"peak tree PSS {run['tree_peak_pss_mib']:.0f} MiB"
    )
    return out


def bench_resume(home: Path, workdir: Path, n: int, args) -> dict:
    """An uninterrupted run, then a run stopped half-way and run again: same output?"""
    names, sample = gene_sample(home, "yeast", n)
    small = ("--batch-genes", str(RESUME_BATCH))  # many small batches: some finish half-way
    batches = -(-sample["genes_planned"] // RESUME_BATCH)
    whole_out = workdir / "resume-whole.tsv"
    whole = library_run(home, "yeast", names, whole_out, args.executor, extra=small)
    stopped_out = workdir / "resume-stopped.tsv"
    stopped = library_run(
        home,
        "yeast",
        names,
        stopped_out,
        args.executor,
        interrupt_after=whole["wall_s"] / 2,
        extra=small,
    )
    again = library_run(home, "yeast", names, stopped_out, args.executor, extra=small)
    notes = " ".join(again["stderr_tail"])
    same = whole_out.read_bytes() == stopped_out.read_bytes()
    log(
        f"resume: stopped after {stopped['wall_s']:.1f} s with {stopped['parts']} of "
        f"{batches} batches saved; the rerun took {again['wall_s']:.1f} s against "
        f"{whole['wall_s']:.1f} s for a whole run; identical output: {same}"
    )
    return {
        "sample": sample,
        "batch_genes": RESUME_BATCH,
        "batches": batches,
        "whole_s": whole["wall_s"],
        "stopped_after_s": stopped["wall_s"],
        "stopped_exit": stopped["exit"],
        "batches_saved_when_stopped": stopped["parts"],
        "rerun_s": again["wall_s"],
        "rerun_note": notes,
        "identical_output": same,
    }


# ---------------------------------------------------------------------------------------------
# Extrapolation
# ---------------------------------------------------------------------------------------------


def extrapolate(result: dict, args) -> dict:
    """A human library's time, estimated from the measured CPU seconds per candidate.

    Candidates: ``--human-cds-mb`` × the candidates per target base of the human run (chrX;
    yeast's when chrX was skipped). CPU time, not wall time, per step: on a shared machine the
    workers' wall time includes waiting for a core. Every step but the search costs the same on
    any genome: its CPU seconds per candidate (the larger of the runs') give a floor. The search
    grows with the genome: chrX's CPU seconds per candidate give the low end, × ``--search-scale``
    the high end. Each is divided by this machine's cores, as if the batches kept them all busy
    (they are independent tasks, two or more per core).
    """
    genomes = result["genomes"]
    key = "chrx" if "chrx" in genomes else "yeast"
    runs = {k: g["run"] for k, g in genomes.items()}
    cores = len(os.sched_getaffinity(0))

    def per_candidate(run: dict, search: bool) -> float:
        secs = run["task_cpu_seconds"]
        picked = [v for k, v in secs.items() if (k == "search") == search]
        return sum(picked) / run["candidates"]

    density = runs[key]["candidates"] / genomes[key]["sample"]["target_bases"]
    candidates = args.human_cds_mb * 1e6 * density
    rest = max(per_candidate(r, False) for r in runs.values())
    search = per_candidate(runs[key], True)
    floor_s = candidates * rest / cores
    low_s = candidates * (rest + search) / cores
    high_s = candidates * (rest + search * args.search_scale) / cores
    return {
        "from_genome": key,
        "human_genes": args.human_genes,
        "human_cds_mb": args.human_cds_mb,
        "candidates_per_target_base": density,
        "human_candidates": candidates,
        "candidates_per_gene": candidates / args.human_genes,
        "cpu_seconds_per_candidate_but_search": rest,
        "search_cpu_seconds_per_candidate": search,
        "search_scale": args.search_scale,
        "cores": cores,
        "floor_s": floor_s,
        "estimate_low_s": low_s,
        "estimate_high_s": high_s,
        "genes_per_s_low": args.human_genes / high_s,
        "genes_per_s_high": args.human_genes / low_s,
        "target_s": 3600,
        "result": "PASS" if high_s <= 3600 else ("MISS" if low_s > 3600 else "UNDECIDED"),
    }


def summary(result: dict) -> str:
    lines = ["", "Genome-wide library (SpCas9, 4 per gene, ≤ 4 mismatches, executor "
             f"{result['config']['executor']})", ""]  # fmt: skip
    head = (
        f"{'genome':<8} {'genes':>7} {'guides':>7} {'candidates':>11} {'wall s':>8} "
        f"{'genes/s':>8} {'cand/s':>7} {'CPU s':>7} {'peak PSS':>9} {'search':>7} "
        f"{'effic.':>7} {'records':>7}  (CPU s by step)"
    )
    lines += [head, "-" * len(head)]
    for key, g in result["genomes"].items():
        r = g["run"]
        s = r["task_cpu_seconds"]
        lines.append(
            f"{key:<8} {r['genes']:>7,} {r['guides']:>7,} {r['candidates']:>11,} "
            f"{r['wall_s']:>8.1f} {r['genes'] / r['wall_s']:>8.2f} "
            f"{r['candidates'] / r['wall_s']:>7.0f} {r['cpu_s']:>7.0f} "
            f"{r['tree_peak_pss_mib']:>5.0f} MiB {s.get('search', 0):>7.0f} "
            f"{s.get('efficiency', 0):>7.0f} {s.get('records', 0) + s.get('complete', 0):>7.0f}"
        )
    if "resume" in result:
        r = result["resume"]
        lines += [
            "",
            f"resume: stopped after {r['stopped_after_s']:.1f} s ({r['batches_saved_when_stopped']}"
            f" batches saved), rerun {r['rerun_s']:.1f} s vs {r['whole_s']:.1f} s whole; "
            f"identical output: {r['identical_output']}",
        ]
    e = result.get("extrapolation")
    if e:
        lines += [
            "",
            f"human, {e['human_genes']:,} genes, from {e['from_genome']} (estimates): "
            f"{e['human_candidates'] / 1e6:.1f} M candidates ({e['human_cds_mb']:g} Mb CDS × "
            f"{e['candidates_per_target_base']:.3f}/bp), CPU time spread over {e['cores']} cores",
            f"  all but the search: {e['cpu_seconds_per_candidate_but_search'] * 1e3:.2f} ms CPU a "
            f"candidate → {e['floor_s'] / 3600:.2f} h",
            f"  with the search ({e['search_cpu_seconds_per_candidate'] * 1e3:.2f} ms CPU a "
            f"candidate on "
            f"chrX, × 1 … × {e['search_scale']:g} for 3.1 Gbp): "
            f"{e['estimate_low_s'] / 3600:.2f} … {e['estimate_high_s'] / 3600:.2f} h",
            f"  target ≤ 1 h: {e['result']}",
        ]
    other = result.get("other_cpu_fraction")
    if other is not None:
        lines.append(f"\nother processes used {other:.0%} of the machine's CPU during the run")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="yeast 300 genes, chrX 12 genes")
    ap.add_argument("--genes-limit", type=int, default=None, help="yeast genes (default all)")
    ap.add_argument("--chrx-genes", type=int, default=24, help="chrX genes (default 24)")
    ap.add_argument("--resume-genes", type=int, default=150, help="yeast genes, resume check")
    ap.add_argument("--skip-yeast", action="store_true")
    ap.add_argument("--skip-chrx", action="store_true")
    ap.add_argument("--skip-resume", action="store_true")
    ap.add_argument("--executor", default="local:2")
    ap.add_argument("--human-genes", type=int, default=20_000)
    ap.add_argument("--human-cds-mb", type=float, default=34.0)
    ap.add_argument("--search-scale", type=float, default=16.0)
    ap.add_argument("--workdir", default=None, help="scratch folder (default $TMPDIR)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if args.quick:
        args.genes_limit = args.genes_limit or 300
        args.chrx_genes = min(args.chrx_genes, 12)
        args.resume_genes = min(args.resume_genes, 60)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    for path in (DATA / YEAST[0], DATA / YEAST[1], DATA / CHRX, DATA / GENE_LIST):
        if not path.exists():
            print(f"benchmark data missing: {path} (set SANDGRAIN_TEST_DATA)", file=sys.stderr)
            return 2
    ot._set_subreaper()
    workdir = Path(tempfile.mkdtemp(prefix="sandgrain-library-", dir=args.workdir))
    home = workdir / "home"
    result = {
        "benchmark": "library",
        "started": gi.utc_now(),
        "config": vars(args),
        "machine": gi.machine_info(workdir),
        "genomes": {},
    }
    busy0, own0 = gi.busy_cpu_seconds(), gi.own_cpu_seconds()
    t0 = time.perf_counter()
    status = 0
    try:
        genomes = result["genomes"]
        if not args.skip_yeast:
            genomes["yeast"] = bench_genome(home, workdir, "yeast", args.genes_limit, args)
        if not args.skip_chrx:
            genomes["chrx"] = bench_genome(home, workdir, "chrx", args.chrx_genes, args)
        if not args.skip_resume and not args.skip_yeast:
            result["resume"] = bench_resume(home, workdir, args.resume_genes, args)
            if not result["resume"]["identical_output"]:
                status = 1
        if result["genomes"]:
            result["extrapolation"] = extrapolate(result, args)
        result["status"] = "ok" if status == 0 else "failed check"
    except Exception as exc:  # recorded, then reported by the exit status
        result["status"] = f"error: {exc}"
        log(f"error: {exc}")
        status = 1
    finally:
        result["run_s"] = time.perf_counter() - t0
        other = (gi.busy_cpu_seconds() - busy0) - (gi.own_cpu_seconds() - own0)
        result["other_cpu_s"] = round(max(other, 0.0), 1)
        cores = len(os.sched_getaffinity(0))
        result["other_cpu_fraction"] = round(max(other, 0.0) / (result["run_s"] * cores), 3)
        result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["finished"] = gi.utc_now()
        gi.write_json_atomic(Path(args.out), result)
        shutil.rmtree(workdir, ignore_errors=True)
    if result["genomes"] and all("run" in g for g in result["genomes"].values()):
        print(summary(result))
    print(f"\nwritten to {args.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
