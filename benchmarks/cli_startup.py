#!/usr/bin/env python
"""Start-up time of the command line, cold and warm, against a floor (issue 12 §3).

What it measures
    Each command runs ``--runs`` times (default 10) as a fresh process; *cold* is its first run
    in the benchmark (bytecode and numba caches on disk as a user has them once sandgrain ran,
    the OS file cache as the previous commands left it: the caches cannot be dropped without
    slowing every other process on the machine), *warm* the median of the other runs.

    - **Floors**: ``python -c pass`` (the interpreter alone) and the peers installed here,
      ``bowtie --version`` (a Python wrapper) and ``bowtie-align-s --version`` (the aligner
      binary). Cas-OFFinder is not installed on this machine.
    - **Help**: ``sandgrain --help``, ``--version``, ``guides --help``, ``guides offtargets
      --help``, ``genome --help``, ``beacon --help``: the CLI with nothing to do.
    - **Real commands** on a temporary store holding SARS-CoV-2 (30 kb) with its SpCas9 site
      index: ``genome list --json``, and ``guides offtargets`` with three guides on the
      ``serial`` and ``local:2`` executors, with the guide file as the only argument and with
      ``-m 4`` typed out. For these, marked runs (as many again) record two moments inside the
      process: when the command's function is called (*command*: interpreter, CLI, argument
      parsing, the fixed part of every command) and when its fan-out plan starts (*plan*: the
      command has imported its domain's modules, opened the genome and read the guides; the
      search itself, numba loading its compiled kernels and the worker pool starting follow).
      A wrapper around the CLI takes the marks; plain runs take none.

    Target of issue 12: under 0.5 s for ``sandgrain --help`` and for the fixed part of a real
    command on this machine.

Usage::

    python benchmarks/cli_startup.py            # writes benchmarks/results/cli_startup.json
    python benchmarks/cli_startup.py --quick    # 3 runs a command
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
SARS = DATA / "genomes/sars-cov-2/NC_045512.2.fasta"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "cli_startup.json"
TARGET_S = 0.5
#: Protospacers of SARS-CoV-2 followed by NGG (positions 1020, 2013, 4024), one hit each.
GUIDES = ("GACACCTTTTGAAATTAAAT", "TATGATGTTCACATCTGATT", "TTACTTTATATTGACATTAA")

#: Runs the CLI in this interpreter, noting the wall clock when the leaf command's function is
#: called and when a fan-out plan starts; writes the marks as JSON to argv[1] on exit.
MARKED = r"""
import json, sys, time
marks_path = sys.argv.pop(1)
marks = {}
try:
    from typer._click import core as click_core
except ImportError:
    from click import core as click_core
_invoke = click_core.Context.invoke
def invoke(self, callback, *args, **kwargs):
    command = self.command
    if "command" not in marks and not hasattr(command, "commands") \
            and callback is command.callback:
        marks["command"] = time.time()
    return _invoke(self, callback, *args, **kwargs)
click_core.Context.invoke = invoke
from sandgrain.fanout import runner
_run = runner.Runner.run
def run(self, *args, **kwargs):
    marks.setdefault("plan", time.time())
    return _run(self, *args, **kwargs)
runner.Runner.run = run
try:
    from sandgrain.cli import main
    main(sys.argv[1:])
finally:
    with open(marks_path, "w") as fh:
        json.dump(marks, fh)
"""


def _common():
    """Machine info and atomic JSON writing, shared with the genome import benchmark."""
    spec = importlib.util.spec_from_file_location(
        "genome_import", REPO / "benchmarks/genome_import.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sandgrain_cmd() -> list[str]:
    """The installed console script next to this interpreter, or its equivalent."""
    script = Path(sys.executable).parent / "sandgrain"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from sandgrain.cli import main; sys.exit(main())"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict) -> tuple[float, float, int]:
    """Wall and CPU seconds of one fresh process, and its exit status (output discarded). CPU
    time is less sensitive than wall time to other load on a shared machine; it counts the
    process and the children it waited for, not a local pool's workers (the forkserver's)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start, _children_cpu() - cpu, done.returncode


def marked(args: list[str], env: dict, workdir: Path) -> dict:
    """One run of ``sandgrain ARGS`` through :data:`MARKED`: seconds from the launch to each
    mark, and in all."""
    marks_file = workdir / "marks.json"
    launched = time.time()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MARKED, str(marks_file), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    total = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"sandgrain {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    marks = json.loads(marks_file.read_text())
    return {"total_s": total} | {f"{k}_s": v - launched for k, v in marks.items()}


def measure(label: str, argv: list[str], env: dict, runs: int, group: str) -> dict:
    """Cold (first) and warm (median of the rest) wall time of ``argv`` as fresh processes."""
    times, cpus = [], []
    for _ in range(runs):
        seconds, cpu, code = timed(argv, env)
        if code != 0:
            raise RuntimeError(f"{label}: exit status {code}")
        times.append(seconds)
        cpus.append(cpu)
    warm = times[1:] or times
    return {
        "label": label,
        "group": group,
        "argv": argv,
        "runs": runs,
        "cold_s": round(times[0], 4),
        "warm_s": round(statistics.median(warm), 4),
        "warm_min_s": round(min(warm), 4),
        "warm_max_s": round(max(warm), 4),
        "cold_cpu_s": round(cpus[0], 4),
        "warm_cpu_s": round(statistics.median(cpus[1:] or cpus), 4),
    }


def measure_marks(args: list[str], env: dict, runs: int, workdir: Path) -> dict:
    """Median seconds to each mark over ``runs`` marked runs (the first one left out)."""
    found = [marked(args, env, workdir) for _ in range(runs)]
    warm = found[1:] or found
    keys = sorted({k for m in warm for k in m})
    return {k: round(statistics.median(m[k] for m in warm if k in m), 4) for k in keys}


def prepare_store(store: Path, env: dict, workdir: Path) -> Path:
    """SARS-CoV-2 with its SpCas9 index in ``store``; the guide file."""
    sg = sandgrain_cmd()
    for args in (
        ["genome", "add", "sars2", "--fasta", str(SARS), "-q"],
        ["genome", "index", "sars2", "--nuclease", "SpCas9", "-q"],
    ):
        done = subprocess.run([*sg, "--store", str(store), *args], env=env, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"setup failed: {done.stderr.decode()[-2000:]}")
    guides = workdir / "guides.txt"
    guides.write_text("\n".join(GUIDES) + "\n")
    return guides


def run(args) -> dict:
    common = _common()
    result = {"benchmark": "cli_startup", "started": common.utc_now(), "config": vars(args)}
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    sg = sandgrain_cmd()
    with tempfile.TemporaryDirectory(prefix="sandgrain-startupbench-") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, "SANDGRAIN_HOME": str(workdir / "home"), "COLUMNS": "100"}
        env.pop("SANDGRAIN_STORE", None)
        store = workdir / "store"
        log("setup: SARS-CoV-2 and its SpCas9 index in a temporary store …")
        guides = prepare_store(store, env, workdir)
        rows = []
        floors = [("python -c pass", [sys.executable, "-c", "pass"])]
        for peer in (["bowtie", "--version"], ["bowtie-align-s", "--version"]):
            if shutil.which(peer[0]):
                floors.append((" ".join(peer), [shutil.which(peer[0]), *peer[1:]]))
        for label, argv in floors:
            log(f"floor: {label}")
            rows.append(measure(label, argv, env, args.runs, "floor"))
        helps = (
            ["--help"],
            ["--version"],
            ["guides", "--help"],
            ["guides", "offtargets", "--help"],
            ["genome", "--help"],
            ["beacon", "--help"],
        )
        for extra in helps:
            label = "sandgrain " + " ".join(extra)
            log(label)
            rows.append(measure(label, [*sg, *extra], env, args.runs, "help"))
        st = ["--store", str(store)]
        reals = [
            (["--executor", "serial", "genome", "list", "--json"], "genome list --json"),
        ]
        for executor in ("serial", "local:2"):
            base = [*st, "--executor", executor, "guides", "offtargets", "-g", "sars2"]
            reals.append(([*base, str(guides)], f"guides offtargets ({executor})"))
            reals.append(([*base, "-m", "4", str(guides)], f"guides offtargets -m 4 ({executor})"))
        for extra, label in reals:
            log(f"sandgrain {label}")
            row = measure(f"sandgrain {label}", [*sg, *extra], env, args.runs, "real")
            row["marks"] = measure_marks(extra, env, args.runs, workdir)
            rows.append(row)
    result["rows"] = rows
    result["machine"] = common.machine_info(Path(tempfile.gettempdir()))
    result["machine"]["loadavg_at_start"] = load_at_start
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["finished"] = common.utc_now()
    helped = next(r for r in rows if r["label"] == "sandgrain --help")
    fixed = [r["marks"]["command_s"] for r in rows if r["group"] == "real"]
    result["target_s"] = TARGET_S
    result["help_warm_s"] = helped["warm_s"]
    result["fixed_part_max_s"] = max(fixed)
    result["pass"] = helped["warm_s"] < TARGET_S and max(fixed) < TARGET_S
    result["status"] = "ok"
    return result


def summary(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"cli_startup  {m['cpu_model']}, {m['cpus_usable']} cores, Python {m['python']}, "
        f"sandgrain {m['sandgrain']}, load {m['loadavg_at_start'][0]} → "
        f"{m['loadavg_at_end'][0]}; {result['config']['runs']} runs a command",
        "",
        f"{'command':<46}{'cold s':>8}{'warm s':>8}{'min s':>7}{'cpu s':>7}"
        f"{'command s':>11}{'plan s':>8}",
    ]
    for r in result["rows"]:
        marks = r.get("marks", {})
        lines.append(
            f"{r['label'][:46]:<46}{r['cold_s']:>8.3f}{r['warm_s']:>8.3f}{r['warm_min_s']:>7.3f}"
            f"{r['warm_cpu_s']:>7.3f}"
            + (f"{marks['command_s']:>11.3f}" if "command_s" in marks else f"{'':>11}")
            + (f"{marks['plan_s']:>8.3f}" if "plan_s" in marks else "")
        )
    lines.append("")
    lines.append(
        f"summary: `sandgrain --help` {result['help_warm_s']:.2f} s warm, the fixed part of a "
        f"real command (to its function) at most {result['fixed_part_max_s']:.2f} s; target "
        f"< {result['target_s']} s: {'PASS' if result['pass'] else 'FAIL'}"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 runs a command")
    ap.add_argument("--runs", type=int, help="fresh processes a command (default 10; quick 3)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    args.runs = args.runs or (3 if args.quick else 10)
    if not SARS.exists():
        log(f"no SARS-CoV-2 FASTA at {SARS}; set SANDGRAIN_TEST_DATA")
        return 2
    result = run(args)
    _common().write_json_atomic(Path(args.out), result)
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
