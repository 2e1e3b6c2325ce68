"""Reads to variants: sandgrain's scattered pipeline against the same tools in one pipe.

On a slice of the shared, repeat-rich human chrX (GRCh37; ``--mb`` Mbp, default 10, chosen by
reading the FASTA: the first window after the leading N run whose bases are < 1 % N), variants
are planted (:func:`sandgrain.calling.simulate.plant_variants`, default rates) and 2×150 bp
reads simulated at ``--depth`` (default 20×) with ART (:func:`~sandgrain.calling.simulate.
simulate_reads`). Then, each cold and each writing its output:

1. **baseline**: ``minimap2 -ax sr -E 2,0 | samtools fixmate -m | samtools sort | samtools
   markdup``, ``samtools index`` (timed as align+markdup), then ``bcftools mpileup | bcftools
   call -m -v`` over the whole slice in one process (timed as call);
2. ``sandgrain --executor local:2 calling run … --bam …`` as a subprocess (the user's path);
3. the same with ``--executor dask-local:2`` (a local Dask cluster).

For each: wall time, reads/s, Mbp/s called, peak memory of the process tree (the sum of the
RSS of every process in the tree, sampled every 0.1 s with psutil), the record count and the
accuracy against the truth (:func:`sandgrain.calling.accuracy.compare`, over the whole slice
and over the uniquely mappable "confident" regions). Also: whether the scattered VCF's records
equal a single ``bcftools mpileup | call`` run over sandgrain's own BAM (record lines compared
as text). JSON goes to ``benchmarks/results/calling/calling.json`` with the machine and the
load average before and after; one summary line is printed.

    .venv/bin/python benchmarks/calling.py              # 10 Mbp, 20x: a few minutes on 2 cores
    .venv/bin/python benchmarks/calling.py --quick      # 1 Mbp, 10x: under a minute
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
from proctree import wait_with_peak

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
CHRX = DATA / "genomes/human-grch37-chrX-1-70M/hs37chrXtrunc.fa.gz"
SANDGRAIN = Path(sys.executable).with_name("sandgrain")


# ---------------------------------------------------------------------------------------------
# inputs


def read_chrx() -> tuple[str, str]:
    """The chrX FASTA's one sequence: (name, bases)."""
    name, parts = None, []
    with gzip.open(CHRX, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                if name is not None:
                    break
                name = line[1:].split()[0]
                continue
            parts.append(line.strip())
    return name, "".join(parts)


def pick_slice(seq: str, mb: float) -> tuple[int, int]:
    """``(start0, end0)``: the first whole-Mbp-aligned window of ``mb`` Mbp after the leading N
    run with fewer than 1 % N."""
    size = int(mb * 1_000_000)
    lead = len(seq) - len(seq.lstrip("Nn"))
    start = -(-lead // 1_000_000) * 1_000_000
    while start + size <= len(seq):
        window = seq[start : start + size]
        if (window.count("N") + window.count("n")) / size < 0.01:
            return start, start + size
        start += 1_000_000
    raise SystemExit(f"no {mb} Mbp window with < 1 % N in {CHRX.name}")


def write_fasta(path: Path, name: str, seq: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(f">{name}\n")
        for i in range(0, len(seq), 60):
            fh.write(seq[i : i + 60] + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# measuring a command


def run_measured(argv, *, shell: bool = False, log: Path) -> dict:
    """Run a command; its wall time and the peak summed RSS of its process tree."""
    t0 = time.perf_counter()
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, shell=shell, stdout=err, stderr=subprocess.STDOUT,
                                executable="/bin/bash" if shell else None)  # fmt: skip
        peak = wait_with_peak(proc, "rss", 0.1)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"command failed ({proc.returncode}): {argv}\n{tail}")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak / 2**20, 1)}


def records(vcf: Path) -> list[bytes]:
    with gzip.open(vcf, "rb") as fh:
        return [ln for ln in fh if not ln.startswith(b"#")]


def accuracy(truth: Path, calls: Path, ref: Path, bed: Path | None, replay: bool = True) -> dict:
    from sandgrain.calling.accuracy import compare

    rep = compare(truth, calls, ref, regions_bed=bed, replay=replay)
    out: dict = {"replayed_clusters": rep.replayed}
    for kind in ("SNV", "INDEL", "ALL"):
        c = rep[kind].as_dict()
        out[kind] = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in c.items()}
    return out


# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# the cost of a 30x human genome, from this run's per-core rates (docs/calling.md, "Cost model")

GENOME_BP = 3.1e9  # G
GENOME_READS = 620e6  # R: 30x of 150 bp reads (310 M pairs)
VCPU_HOUR = 0.0425  # us-east-1 on-demand c5 family, $ per vCPU-hour (c5.4xlarge $0.68/16)
LAMBDA_GB_S = 0.0000166667  # x86, first 6 billion GB-s a month
LAMBDA_ALIGN = {"gb": 10.24, "vcpu": 6, "chunk_reads": 20e6, "index_load_s": 70}
LAMBDA_CALL = {"gb": 1.769, "regions": 400}


def cost_model(result: dict, depth: float = 30.0) -> dict:
    """Wall time and compute cost of a ``depth``x human genome from the local:2 run's stages.

    Rates per core: alignment ``a`` and calling ``c`` (the local:2 stage over 2 cores; calling
    work scaled by depth), the driver's FASTQ pass ``f`` and the sample's markdup ``m`` (serial).
    Wall time on P vCPUs: R/f + R/(a P) + R/m + G/(c P)."""
    run, reads = result["runs"]["local:2"], result["reads"]["reads"]
    stage, cores = run["stage_s"], 2
    a = reads / (stage["align"] * cores)
    c = result["slice_bp"] / (stage["call"] * cores) * result["reads"]["depth"] / depth
    f, m = reads / stage["read"], reads / stage["markdup"]
    serial = GENOME_READS / f + GENOME_READS / m
    rows = {}
    for name, vcpus in (("this machine (2 vCPU)", 2), ("c5.4xlarge (16 vCPU)", 16),
                        ("c5.24xlarge (96 vCPU)", 96)):  # fmt: skip
        wall = serial + (GENOME_READS / a + GENOME_BP / c) / vcpus
        rows[name] = {"wall_h": wall / 3600, "cost_usd": wall / 3600 * vcpus * VCPU_HOUR}
    chunks = int(-(-GENOME_READS // LAMBDA_ALIGN["chunk_reads"]))
    align_s = LAMBDA_ALIGN["chunk_reads"] / (LAMBDA_ALIGN["vcpu"] * a)
    align_s += LAMBDA_ALIGN["index_load_s"]
    call_core_s = GENOME_BP / c
    wall = serial + align_s + call_core_s / LAMBDA_CALL["regions"]
    align_usd = chunks * LAMBDA_ALIGN["gb"] * align_s * LAMBDA_GB_S
    call_usd = call_core_s * LAMBDA_CALL["gb"] * LAMBDA_GB_S
    driver_usd = wall / 3600 * 2 * VCPU_HOUR
    rows["AWS Lambda + 2-vCPU driver"] = {
        "wall_h": wall / 3600, "cost_usd": align_usd + call_usd + driver_usd,
        "align_workers": chunks, "align_usd": align_usd, "call_usd": call_usd,
        "driver_usd": driver_usd,
    }  # fmt: skip
    rates = {"align_reads_per_s_per_core": a, "call_mbp_per_s_per_core": c / 1e6,
             "fastq_pass_reads_per_s": f, "markdup_reads_per_s": m,
             "serial_h": serial / 3600}  # fmt: skip
    rnd = lambda d: {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}  # noqa: E731
    return {"depth": depth, "rates": rnd(rates), "where": {k: rnd(v) for k, v in rows.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=10.0, help="Mbp of chrX to use (default 10)")
    ap.add_argument("--depth", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="1 Mbp at 10x (a smoke test)")
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/calling"))
    ap.add_argument("--model-only", action="store_true",
                    help="recompute the 30x cost model from the calling.json in --out, run nothing")
    args = ap.parse_args()
    if args.model_only:
        path = Path(args.out) / "calling.json"
        result = json.loads(path.read_text())
        result["cost_30x"] = cost_model(result)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result["cost_30x"], indent=1))
        return
    if args.quick:
        args.mb, args.depth = 1.0, 10.0
    from sandgrain import __version__
    from sandgrain.calling import tools
    from sandgrain.calling.align import MINIMAP2_ARGS, read_group_line
    from sandgrain.calling.call import MPILEUP_ARGS
    from sandgrain.calling.reference import index_reference
    from sandgrain.calling.simulate import confident_regions, plant_variants, simulate_reads

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    load_before = os.getloadavg()
    t_all = time.perf_counter()

    # inputs: the slice, the truth, the reads, the confident regions, the index
    name, seq = read_chrx()
    start0, end0 = pick_slice(seq, args.mb)
    contig = f"X_{start0 + 1}_{end0}"
    ref = out / "chrX-slice.fa"
    write_fasta(ref, contig, seq[start0:end0])
    del seq
    t = time.perf_counter()
    truth = plant_variants(ref, out / "truth", seed=args.seed)
    plant_s = time.perf_counter() - t
    t = time.perf_counter()
    r1, r2, pairs = simulate_reads(truth.haplotypes, out / "reads" / "sim", depth=args.depth,
                                   seed=args.seed)  # fmt: skip
    simulate_s = time.perf_counter() - t
    t = time.perf_counter()
    bed, confident_bp, total_bp = confident_regions(ref, out / "confident.bed")
    confident_s = time.perf_counter() - t
    t = time.perf_counter()
    reference = index_reference(ref)
    index_s = time.perf_counter() - t
    reads = 2 * pairs
    mbp = (end0 - start0) / 1e6
    runs: dict[str, dict] = {}

    # 1. baseline: one pipe, one process, no scatter
    base = out / "baseline"
    base.mkdir()
    rg = read_group_line("SIM")
    align_cmd = (
        f"minimap2 -t 2 {' '.join(MINIMAP2_ARGS)} -R '{rg}' {reference.mmi} {r1} {r2}"
        f" | samtools fixmate -m -u - - | samtools sort -u -T {base}/sort"
        f" | samtools markdup -@2 -T {base}/md - {base}/out.bam && samtools index {base}/out.bam"
    )
    a = run_measured(align_cmd, shell=True, log=base / "align.log")
    call_cmd = (
        f"bcftools mpileup -Ou -f {ref} {' '.join(MPILEUP_ARGS)} {base}/out.bam"
        f" | bcftools call -m -v -Oz -o {base}/base.vcf.gz"
    )
    c = run_measured(call_cmd, shell=True, log=base / "call.log")
    base_vcf = base / "base.vcf.gz"
    runs["baseline"] = {
        "wall_s": round(a["wall_s"] + c["wall_s"], 2),
        "align_markdup_s": a["wall_s"], "call_s": c["wall_s"],
        "reads_per_s": round(reads / a["wall_s"]), "call_mbp_per_s": round(mbp / c["wall_s"], 3),
        "peak_rss_mb": max(a["peak_rss_mb"], c["peak_rss_mb"]),
        "peak_rss_mb_align": a["peak_rss_mb"], "peak_rss_mb_call": c["peak_rss_mb"],
        "records": len(records(base_vcf)),
    }  # fmt: skip

    # 2, 3. sandgrain, cold, as the user runs it
    executors = ["local:2"] + ([] if args.skip_dask else ["dask-local:2"])
    vcfs = {"baseline": base_vcf}
    for ex in executors:
        label = ex.replace(":", "")
        d = out / label
        d.mkdir()
        vcf, report = d / "calls.vcf.gz", d / "report.json"
        argv = [str(SANDGRAIN), "--executor", ex, "calling", "run", "--genome", str(ref),
                "--reads", str(r1), "--reads", str(r2), "--sample", "SIM", "-o", str(vcf),
                "--report", str(report), "--quiet"]  # fmt: skip
        if ex == "local:2":
            argv += ["--bam", str(d / "SIM.bam")]
        m = run_measured(argv, log=d / "run.log")
        rep = json.loads(report.read_text())
        runs[ex] = {
            **m, "stage_s": {k: round(v, 2) for k, v in rep["seconds"].items()},
            "reads_per_s": round(reads / rep["seconds"]["align"]),
            "reads_per_s_whole_run": round(reads / m["wall_s"]),
            "call_mbp_per_s": round(mbp / rep["seconds"]["call"], 3),
            "chunks": rep["chunks"], "shards": rep["shards"], "records": rep["records"],
        }  # fmt: skip
        vcfs[ex] = vcf

    # scattered == single run? bcftools once over sandgrain's own BAM, same options
    bam = out / "local2" / "SIM.bam"
    single = out / "local2" / "single.vcf.gz"
    one_run = (f"bcftools mpileup -Ou -f {ref} {' '.join(MPILEUP_ARGS)} {bam}"
               f" | bcftools call -m -v -Oz -o {single}")  # fmt: skip
    tools.run(["bash", "-c", one_run], what="call sandgrain's BAM in one run")
    scattered, one = records(vcfs["local:2"]), records(single)
    same = {
        "single_run_records": len(one), "scattered_records": len(scattered),
        "identical": scattered == one,
        "only_scattered": len(set(scattered) - set(one)),
        "only_single": len(set(one) - set(scattered)),
    }  # fmt: skip
    if "dask-local:2" in vcfs:
        same["dask_equals_local"] = records(vcfs["dask-local:2"]) == scattered
    base_recs = records(base_vcf)
    same["baseline_vs_scattered_shared"] = len(set(base_recs) & set(scattered))

    # accuracy
    for label, vcf in vcfs.items():
        runs[label]["accuracy"] = accuracy(truth.vcf, vcf, ref, None)
        runs[label]["accuracy_confident"] = accuracy(truth.vcf, vcf, ref, bed)
        # the same by record keys only (no haplotype replay), as earlier runs scored
        runs[label]["accuracy_confident_by_key"] = accuracy(truth.vcf, vcf, ref, bed, False)
    for ex in executors:
        runs[ex]["speedup_vs_baseline"] = round(runs["baseline"]["wall_s"] / runs[ex]["wall_s"], 3)

    load_after = os.getloadavg()
    vm = psutil.virtual_memory()
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "slice": {"source": str(CHRX.relative_to(DATA)), "sequence": name,
                  "start_1based": start0 + 1, "end": end0, "mbp": mbp,
                  "n_bases": ref.read_text().count("N")},  # fmt: skip
        "truth": {"snv": truth.snv, "indel": truth.indel, "het": truth.het, "hom": truth.hom,
                  "insertions": truth.insertions, "deletions": truth.deletions,
                  "clustered": truth.clustered},  # fmt: skip
        "reads": {"pairs": pairs, "reads": reads, "depth": args.depth, "length": 150,
                  "profile": "HS25"},  # fmt: skip
        "confident_bp": confident_bp, "slice_bp": total_bp,
        "prep_s": {"plant": round(plant_s, 1), "simulate": round(simulate_s, 1),
                   "confident_regions": round(confident_s, 1),
                   "index": round(index_s, 1)},  # fmt: skip
        "runs": runs,
        "scattered_equals_single_run": same,
        "total_s": round(time.perf_counter() - t_all, 1),
        "machine": {
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "ram_gib": round(vm.total / 2**30, 1), "python": platform.python_version(),
            "sandgrain": __version__, "tools": tools.versions(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in load_after],
        },
    }  # fmt: skip
    result["cost_30x"] = cost_model(result)
    path = out / "calling.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    b, loc = runs["baseline"], runs["local:2"]
    dsk = runs.get("dask-local:2")
    print(
        f"calling {mbp:g} Mbp x{args.depth:g}: baseline {b['wall_s']:.0f} s, local:2 "
        f"{loc['wall_s']:.0f} s (x{loc['speedup_vs_baseline']:.2f})"
        + (f", dask-local:2 {dsk['wall_s']:.0f} s (x{dsk['speedup_vs_baseline']:.2f})"
           if dsk else "")
        + f"; SNV F1 {loc['accuracy']['SNV']['f1']}, indel F1 {loc['accuracy']['INDEL']['f1']}"
        f"; scattered == single run: {same['identical']}; load {load_before[0]:.1f}"
        f"→{load_after[0]:.1f}; {path}"
    )  # fmt: skip


if __name__ == "__main__":
    main()
