#!/usr/bin/env python
"""End-to-end ``sandgrain guides offtargets`` benchmark: wall time, CPU and peak memory of the
CLI, per output format and executor, now and (optionally) for an earlier version (issue 12 §3).

What it measures, on yeast R64 and the human chrX 1–70 Mb slice (both from the shared data
folder, imported and indexed for SpCas9 into a store under the work folder, or ``--store``):

1. ``--guides`` drawn guides (default 1,000: the protospacer of a random NGG site in each of
   random 1 kb windows, as ``benchmarks/offtargets.py`` draws them) searched with
   ``--mismatches`` (default 4) by the CLI, ``sandgrain --executor E guides offtargets GUIDES
   -g GENOME --pam NGG -m K -f FORMAT -o FILE -q``, each run a fresh process (imports and
   numba's kernel cache included), for every format (``casoffinder``, ``tsv``, ``json``,
   ``parquet``) and executor (``serial``; ``local:2``, which this command runs as two search
   threads beside the writing, ``guides/batch.py``). ``--pam NGG`` as Cas-OFFinder is run (the
   index holds SpCas9's NAG and NGA sites too; the search keeps the NGG ones).
2. Per run: the wall time; the CPU time of the whole process tree (this script is a child
   subreaper, so pool workers are reaped here and counted); the peaks of the tree's summed
   RSS, PSS and anonymous memory, sampled every 0.1 s from ``/proc/PID/smaps_rollup`` (RSS and
   PSS count the pages of the memory-mapped site index too, PSS splitting shared pages between
   the processes mapping them; anonymous memory is what the processes allocated themselves:
   the heap that must stay bounded by a batch), and the largest single process's RSS; the
   output's size, lines and SHA-256 (for JSON without the
   provenance record's time), which must equal across executors, repeats and, for the
   Cas-OFFinder and TSV formats, the earlier version.
3. With ``--before REF`` (a git revision of this repository, e.g. ``f0bb9fd``, the last one
   before issue 12; extracted with ``git archive`` into the work folder, the repository
   untouched) the same runs with that version's code (``PYTHONPATH``), for
   ``--before-formats`` (default Cas-OFFinder and TSV: its JSON of a million sites takes
   minutes and GBs) and ``--before-executors``.

Every case runs once untimed first (page cache, numba cache), then ``--repeat`` rounds in which
every executor and version of a genome and format runs once, so that the variants compared
meet the same load; the fastest run and the medians are reported. The load average is recorded
with each run: on a busy machine wall times include other processes' use of the cores (CPU
times do not).

Usage::

    python benchmarks/offtargets_output.py --before f0bb9fd       # both genomes, ~20 min
    python benchmarks/offtargets_output.py --genomes chrx --formats casoffinder --repeat 3
    python benchmarks/offtargets_output.py --store /tmp/sg-bench/store   # reuse a store

Results go to ``--out`` (JSON, written atomically) and a summary table to stdout; progress lines
go to stderr. Exit status: 0 ok, 1 a failed check or error, 2 a bad setup (no data).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _load(name: str):
    path = Path(__file__).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_sandgrain_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ob = _load("offtargets")  # guide drawing, process-tree memory sampling, reaping
gi = ob.gi

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = "benchmarks/results/offtargets_output.json"
GENOMES = {
    "yeast": "genomes/yeast-R64/Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz",
    "chrx": "genomes/human-grch37-chrX-1-70M/hs37chrXtrunc.fa.gz",
}
FORMATS = ("casoffinder", "tsv", "json", "parquet")
MiB = 1 << 20
_TIME = re.compile(rb'"time": "[^"]*"')


def log(msg: str) -> None:
    print(f"[offtargets_output {time.time() - ob._T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def sandgrain(store: Path, *args: str) -> list[str]:
    """The command line of the CLI (the code ``PYTHONPATH`` names first, see
    :func:`environment`)."""
    return [
        sys.executable,
        "-c",
        "from sandgrain.cli import main; main()",
        "--store",
        str(store),
        *args,
    ]


def environment(pythonpath: str | None) -> dict:
    env = os.environ.copy()
    env.pop("SANDGRAIN_EXECUTOR", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def setup_store(store: Path, data: Path, genomes: list[str]) -> None:
    """Import and index (SpCas9: NGG, NAG, NGA) the genomes a store lacks."""
    listed = subprocess.run(
        sandgrain(store, "genome", "list"), capture_output=True, text=True, env=environment(None)
    )
    for name in genomes:
        present = re.search(rf"^\s*{name}\s", listed.stdout, re.M) is not None
        if name not in GENOMES:  # another genome of --store (a repeat-rich one, say)
            if not present or not has_index(store, name):
                raise gi.SetupError(f"no genome {name} with an SpCas9 index in {store}")
            continue
        fasta = data / GENOMES[name]
        if not fasta.exists():
            raise gi.SetupError(f"no {fasta} (set SANDGRAIN_TEST_DATA or --data)")
        if not present:
            log(f"importing {name}")
            subprocess.run(
                sandgrain(store, "genome", "add", name, "--fasta", str(fasta), "-q"),
                check=True,
                env=environment(None),
            )
        if not has_index(store, name):
            log(f"indexing {name}")
            subprocess.run(
                sandgrain(store, "--executor", "local:2", "genome", "index", name, "-q"),
                check=True,
                env=environment(None),
            )


def has_index(store: Path, name: str) -> bool:
    """Whether the genome has SpCas9's site index already."""
    from sandgrain.genome.store import open_genome
    from sandgrain.guides.nucleases import get_nuclease
    from sandgrain.guides.siteindex import SiteFamily, open_index
    from sandgrain.storage import Store

    try:
        open_index(open_genome(Store(str(store)), name), SiteFamily.of(get_nuclease("SpCas9")))
    except Exception:
        return False
    return True


def draw(store: Path, name: str, n: int, seed: int, path: Path) -> int:
    from sandgrain.genome.store import open_genome
    from sandgrain.storage import Store

    genome = open_genome(Store(str(store)), name)
    guides = ob.draw_guides(genome, n, np.random.default_rng(seed))
    path.write_text("\n".join(guides) + "\n")
    return len(guides)


def digest(path: Path, fmt: str) -> dict:
    """Size, lines and SHA-256 of an output (JSON without the provenance time; Parquet: rows)."""
    h = hashlib.sha256()
    lines = 0
    if fmt == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        return {
            "bytes": path.stat().st_size,
            "rows": meta.num_rows,
            "row_groups": meta.num_row_groups,
        }
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            lines += block.count(b"\n")
            h.update(_TIME.sub(b"", block) if fmt == "json" else block)
    return {"bytes": path.stat().st_size, "lines": lines, "sha256": h.hexdigest()}


def _memory(pid: int) -> tuple[int, int, int] | None:
    """(RSS, PSS, anonymous) bytes of a process from ``smaps_rollup``; None if it is gone.
    Anonymous memory is the heap and the like: what the process allocated itself, without
    the pages of the memory-mapped site index that RSS and PSS count too."""
    found = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss", "Anonymous"):
                    found[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    if len(found) < 3:
        return None
    return found["Rss"], found["Pss"], found["Anonymous"]


class Sampler(ob.TreeSampler):
    """:class:`TreeSampler` that also sums the tree's anonymous memory (see :func:`_memory`)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.peak_anon = 0

    def run(self) -> None:
        me = os.getpid()
        while not self.stop_event.is_set():
            rss = pss = anon = procs = 0
            for pid in ob._descendants(me):
                m = _memory(pid)
                if m is None:
                    continue
                rss, pss, anon, procs = rss + m[0], pss + m[1], anon + m[2], procs + 1
                self.max_single_rss = max(self.max_single_rss, m[0])
            self.samples += 1
            if pss > self.peak_pss:
                self.peak_pss, self.peak_procs = pss, procs
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_anon = max(self.peak_anon, anon)
            if self.limit is not None and pss > self.limit and not self.tripped:
                self.tripped = f"memory: the process tree reached {pss / 1e9:.1f} GB PSS"
            self.stop_event.wait(self.interval)

    def stats(self) -> dict:
        return {**super().stats(), "tree_peak_anon_mib": self.peak_anon / MiB}


def run_cli(cmd: list[str], env: dict, max_gb: float, time_limit: float) -> dict:
    """Run one CLI command; wall, tree CPU, tree memory; stop it over the limits."""
    sampler = Sampler(0.1, max_gb * 1e9, 1.0 * (1 << 30))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    sampler.start()
    stopped = None
    try:
        while proc.poll() is None:
            if sampler.tripped and not stopped:
                stopped = sampler.tripped
            if time.perf_counter() - t0 > time_limit and not stopped:
                stopped = f"time: still running after {time_limit:.0f} s"
            if stopped:
                ob._kill_group(proc)
            time.sleep(0.02)
    finally:
        wall = time.perf_counter() - t0
        sampler.stop_event.set()
        sampler.join()
        ob._kill_group(proc)
        ob._reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    err = proc.stderr.read().decode(errors="replace")[-2000:]
    out = {
        "loadavg": round(os.getloadavg()[0], 2),
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "exit": proc.returncode,
        **sampler.stats(),
    }
    if stopped:
        out["stopped"] = stopped
    elif proc.returncode != 0:
        out["error"] = err
    return out


def bench_format(
    args, store: Path, genome: str, guides: Path, fmt: str, variants: list, workdir: Path
) -> list[dict]:
    """Every variant ``(executor, version, pythonpath)`` of one genome and format: each run
    once untimed, then ``--repeat`` rounds in which every variant runs once, so that variants
    compared meet the same load on a shared machine."""
    pam = ["--pam", args.pam] if args.pam else []
    cases = []
    for executor, version, pythonpath in variants:
        out = workdir / f"out-{genome}-{version}-{executor.replace(':', '')}.{fmt}"
        cmd = sandgrain(
            store,
            "--executor",
            executor,
            "guides",
            "offtargets",
            str(guides),
            "-g",
            genome,
            *pam,
            "-m",
            str(args.mismatches),
            "-f",
            fmt,
            "-o",
            str(out),
            "-q",
        )
        case = {
            "genome": genome,
            "format": fmt,
            "executor": executor,
            "version": version,
            "cmd": cmd,
            "env": environment(pythonpath),
            "path": out,
            "runs": [],
        }
        cases.append(case)
    for round_ in range(args.repeat + 1):
        for case in cases:
            if "failed" in case:
                continue
            label = f"{genome} {case['version']} {case['executor']} {fmt}"
            run = run_cli(case["cmd"], case["env"], args.max_gb, args.time_limit)
            if "stopped" in run or "error" in run:
                case["failed"] = run.get("stopped") or run.get("error")
                case["runs"].append(run)
                log(f"  {label}: {case['failed']}")
                continue
            output = digest(case["path"], fmt)
            if round_ == 0:
                case["output"], case["warmup"] = output, run
                continue
            if output != case["output"]:
                raise gi.BenchmarkError(f"{label}: outputs of two runs differ")
            case["runs"].append(run)
            log(
                f"  {label:<34} {run['wall_s']:6.2f} s wall {run['cpu_s']:6.2f} s cpu "
                f"{run['tree_peak_rss_mib']:7.0f} MiB RSS {run['tree_peak_pss_mib']:7.0f} MiB "
                f"PSS {run['tree_peak_anon_mib']:7.0f} MiB anon; load "
                f"{os.getloadavg()[0]:.1f}"
            )
    for case in cases:
        case["path"].unlink(missing_ok=True)
        for key in ("cmd", "env", "path"):
            case.pop(key)
        if case["runs"] and "failed" not in case:
            case["best"] = min(case["runs"], key=lambda r: r["wall_s"])
            case["median_wall_s"] = statistics.median(r["wall_s"] for r in case["runs"])
            case["median_cpu_s"] = statistics.median(r["cpu_s"] for r in case["runs"])
    return cases


def machine(workdir: Path) -> dict:
    info = gi.machine_info(workdir)
    info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def summary(result: dict) -> str:
    m = result["machine"]
    cfg = result["config"]
    lines = [
        f"offtargets_output  {m['cpu_model']}, {m['cpus_usable']} cores, {m['ram_gib']} GiB RAM; "
        f"{cfg['guides']} drawn guides × {cfg['mismatches']} mismatches, --pam {cfg['pam']}; "
        f"load average at start {m['loadavg_at_start']}",
        "",
        f"{'genome':<7}{'version':<8}{'executor':<9}{'format':<12}{'sites':>11}{'wall s':>8}"
        f"{'median':>8}{'cpu s':>8}{'RSS MiB':>9}{'PSS MiB':>9}{'anon MiB':>10}{'same':>6}",
    ]
    for c in result["cases"]:
        if "best" not in c:
            lines.append(
                f"{c['genome']:<7}{c['version']:<8}{c['executor']:<9}{c['format']:<12}"
                f"  failed: {c.get('failed')}"
            )
            continue
        b, o = c["best"], c["output"]
        sites = o.get("rows", o.get("lines", 0))
        lines.append(
            f"{c['genome']:<7}{c['version']:<8}{c['executor']:<9}{c['format']:<12}{sites:>11,}"
            f"{b['wall_s']:>8.2f}{c['median_wall_s']:>8.2f}{b['cpu_s']:>8.2f}"
            f"{b['tree_peak_rss_mib']:>9.0f}"
            f"{b['tree_peak_pss_mib']:>9.0f}{b.get('tree_peak_anon_mib', 0):>10.0f}"
            f"{str(c.get('same_as_now', '—')):>6}"
        )
    parts = []
    for c in result["cases"]:
        if c["version"] == "now" and c["format"] == "casoffinder" and "best" in c:
            old = [
                d
                for d in result["cases"]
                if d["version"] == "before"
                and "best" in d
                and (d["genome"], d["executor"], d["format"])
                == (c["genome"], c["executor"], c["format"])
            ]
            text = f"{c['genome']} {c['executor']} {c['best']['wall_s']:.1f} s"
            text += f" / {c['best']['tree_peak_anon_mib']:.0f} MiB"
            if old:
                b = old[0]["best"]
                text += f" (before {b['wall_s']:.1f} s / {b['tree_peak_anon_mib']:.0f} MiB)"
            parts.append(text)
    for c in result["cases"]:  # parallel against serial, each round's pair under one load
        if c["version"] != "now" or c["executor"] == "serial" or "best" not in c:
            continue
        serial = [
            d
            for d in result["cases"]
            if d["version"] == "now"
            and "best" in d
            and d["executor"] == "serial"
            and (d["genome"], d["format"]) == (c["genome"], c["format"])
        ]
        if serial:
            pairs = zip(c["runs"], serial[0]["runs"], strict=True)  # a run of each a round
            ratios = [a["wall_s"] / b["wall_s"] for a, b in pairs]
            c["wall_ratio_to_serial"] = statistics.median(ratios)
            parts.append(
                f"{c['genome']} {c['format']} {c['executor']}/serial "
                f"{c['wall_ratio_to_serial']:.2f}"
            )
    lines += [
        "",
        "SUMMARY offtargets_output (casoffinder, wall / anon memory): " + "; ".join(parts),
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Benchmark `sandgrain guides offtargets` end to end.")
    p.add_argument(
        "--genomes",
        default="yeast,chrx",
        help="yeast, chrx, or genomes of --store (indexed for SpCas9), comma-separated",
    )
    p.add_argument("--formats", default=",".join(FORMATS), help="output formats to run")
    p.add_argument("--executors", default="serial,local:2", help="executor URLs to run")
    p.add_argument("--guides", type=int, default=1000, help="drawn guides (default 1000)")
    p.add_argument("--mismatches", type=int, default=4, help="mismatch limit (default 4)")
    p.add_argument("--pam", default="NGG", help="--pam for the CLI ('' for SpCas9's default)")
    p.add_argument("--repeat", type=int, default=2, help="timed runs per case (default 2)")
    p.add_argument("--before", default=None, help="a git revision to compare with, e.g. HEAD")
    p.add_argument(
        "--before-formats",
        default="casoffinder,tsv",
        help="formats run with --before's code (its JSON takes minutes and GBs; it had no Parquet)",
    )
    p.add_argument(
        "--before-executors", default="serial,local:2", help="executors run with --before's code"
    )
    p.add_argument("--store", default=None, help="a store with the genomes (default: new one)")
    p.add_argument("--workdir", default=None, help="temporary files (default: TMPDIR)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})")
    p.add_argument("--max-gb", type=float, default=12.0, help="stop a run over this tree PSS")
    p.add_argument("--time-limit", type=float, default=900.0, help="stop a run after seconds")
    p.add_argument("--seed", type=int, default=20240603, help="guide drawing seed")
    p.add_argument(
        "--data",
        default=os.environ.get("SANDGRAIN_TEST_DATA", str(REPO.parent / "shared" / "data")),
        help="shared data folder (default $SANDGRAIN_TEST_DATA or ../shared/data)",
    )
    args = p.parse_args(argv)
    args.genomes = [g for g in args.genomes.split(",") if g]
    args.formats = [f for f in args.formats.split(",") if f]
    args.executors = [e for e in args.executors.split(",") if e]
    args.before_formats = [f for f in args.before_formats.split(",") if f and f != "parquet"]
    args.before_executors = [e for e in args.before_executors.split(",") if e]
    bad = set(args.formats) - set(FORMATS)
    if not args.store:  # other genomes come from --store
        bad |= set(args.genomes) - set(GENOMES)
    if bad or args.repeat < 1:
        p.error(f"unknown genome or format: {sorted(bad)}" if bad else "--repeat must be ≥ 1")
    return args


def extract(revision: str, dest: Path) -> str:
    """The ``src`` folder of ``revision`` (``git archive``), for ``PYTHONPATH``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return str(dest / "src")


def main(argv=None) -> int:
    args = parse_args(argv)
    out_path = Path(args.out) if Path(args.out).is_absolute() else Path.cwd() / args.out
    base = Path(args.workdir).expanduser() if args.workdir else Path(tempfile.gettempdir())
    workdir = Path(tempfile.mkdtemp(prefix="sandgrain-offtargets-output-", dir=base))
    ob._set_subreaper()
    result: dict = {
        "benchmark": "offtargets_output",
        "status": "running",
        "started": gi.utc_now(),
        "command": " ".join(sys.argv),
        "config": {k: v for k, v in vars(args).items() if k != "data"},
        "cases": [],
    }
    code = 0
    t_start = time.perf_counter()
    try:
        result["machine"] = machine(workdir)
        store = Path(args.store) if args.store else workdir / "store"
        setup_store(store, Path(args.data), args.genomes)
        versions = [("now", None)]
        if args.before:
            versions.append(("before", extract(args.before, workdir / "before")))
            result["config"]["before_commit"] = subprocess.run(
                ["git", "-C", str(REPO), "rev-parse", args.before], capture_output=True, text=True
            ).stdout.strip()
        result["config"]["now_commit"] = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        for genome in args.genomes:
            guides = workdir / f"{genome}-guides.txt"
            n = draw(store, genome, args.guides, args.seed, guides)
            log(f"{genome}: {n} guides drawn")
            for fmt in args.formats:
                variants = [
                    (executor, version, path)
                    for executor in args.executors
                    for version, path in versions
                    if version == "now"
                    or (fmt in args.before_formats and executor in args.before_executors)
                ]
                result["cases"] += bench_format(args, store, genome, guides, fmt, variants, workdir)
                gi.write_json_atomic(out_path, result)
        now = {
            (c["genome"], c["format"]): c["output"]
            for c in result["cases"]
            if c["version"] == "now" and c["executor"] == args.executors[0] and "output" in c
        }
        for c in result["cases"]:
            if "output" in c and (c["genome"], c["format"]) in now:
                c["same_as_now"] = c["output"] == now[c["genome"], c["format"]]
                if c["version"] == "now" and not c["same_as_now"]:
                    raise gi.BenchmarkError(f"{c['genome']} {c['format']}: executors differ")
        result["status"] = "ok"
    except gi.BenchmarkError as exc:
        code = 2 if isinstance(exc, gi.SetupError) else 1
        result["status"], result["error"] = "failed", str(exc)
        log(f"FAILED: {exc}")
    except (KeyboardInterrupt, subprocess.CalledProcessError) as exc:
        code = 1
        result["status"], result["error"] = "failed", f"{type(exc).__name__}: {exc}"
        log(f"FAILED: {result['error']}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        result["finished"] = gi.utc_now()
        result["run_s"] = time.perf_counter() - t_start
        with contextlib.suppress(Exception):
            result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        gi.write_json_atomic(out_path, result)
    if result.get("cases"):
        with contextlib.suppress(Exception):
            print(summary(result))
    log(f"results written to {out_path} ({result['status']}, {result['run_s']:.0f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
