#!/usr/bin/env python
"""Time of ``make run`` from a fresh clone until ``/health`` answers (issue 20).

What it measures
    For each commit asked for (default: ``HEAD``), a fresh ``git clone`` of this repository
    checked out at it, then the three things ``make run`` does, each timed:

    - **install**: ``make .venv/.installed`` — a new virtual environment, pip upgraded, the
      project and rs3 installed. pip's cache is as this machine has it: warm when the project
      was installed here before, as on a user's second try (say so with the figures);
    - **demo**: ``sandgrain demo --data DATA`` on an empty store (a new ``SANDGRAIN_HOME``), with
      its last line, each domain's time;
    - **serve**: ``sandgrain serve`` on a free port until ``GET /health`` answers 200.

    ``--quick`` skips the clone and the install: the demo and the server from this checkout's
    ``.venv`` (under a minute).

Usage::

    python benchmarks/make_run.py                       # writes benchmarks/results/make_run.json
    python benchmarks/make_run.py --commit 60d158a --commit HEAD   # before and after, in turn
    python benchmarks/make_run.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
DEFAULT_OUT = REPO / "benchmarks" / "results" / "make_run.json"
HEALTH_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def measure(checkout: Path, home: Path, *, install: bool) -> dict:
    """The install (optional), demo and serve-to-health times of one checkout."""
    env = {**os.environ, "SANDGRAIN_HOME": str(home)}
    env.pop("SANDGRAIN_STORE", None)
    env.pop("SANDGRAIN_DATABASE", None)
    out: dict = {}
    if install:
        t0 = time.perf_counter()
        subprocess.run(["make", ".venv/.installed"], cwd=checkout, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        out["install_s"] = round(time.perf_counter() - t0, 1)
    sandgrain = str(checkout / ".venv" / "bin" / "sandgrain")
    t0 = time.perf_counter()
    demo = subprocess.run([sandgrain, "demo", "--data", str(DATA), "-q"], cwd=checkout, env=env,
                          check=True, capture_output=True, text=True)  # fmt: skip
    out["demo_s"] = round(time.perf_counter() - t0, 1)
    last = [ln for ln in demo.stderr.splitlines() if "demo ready in" in ln]
    out["demo_domains"] = last[-1].split("(", 1)[1].rstrip(")") if last else None
    port = _free_port()
    t0 = time.perf_counter()
    server = subprocess.Popen([sandgrain, "serve", "--port", str(port)], cwd=checkout, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while not _healthy(port):
            if server.poll() is not None or time.perf_counter() - t0 > HEALTH_TIMEOUT_S:
                raise RuntimeError("sandgrain serve did not answer /health")
            time.sleep(0.1)
        out["serve_s"] = round(time.perf_counter() - t0, 1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    out["total_s"] = round(sum(v for k, v in out.items() if k.endswith("_s")), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commit", action="append", help="commit to measure (repeat); default HEAD")
    p.add_argument("--quick", action="store_true", help="this checkout, no clone or install")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if not DATA.is_dir():
        print(f"make_run: no shared data at {DATA}", file=sys.stderr)
        return 2
    load_start = [round(x, 2) for x in os.getloadavg()]
    runs = []
    with tempfile.TemporaryDirectory(prefix="sandgrain-make-run-", dir=REPO.parent) as tmp:
        # beside the repository, so that the clone's ../shared/data is the data folder too
        if args.quick:
            runs.append({"commit": "checkout", **measure(REPO, Path(tmp) / "home", install=False)})
        for commit in args.commit or ([] if args.quick else ["HEAD"]):
            sha = subprocess.run(["git", "rev-parse", "--short", commit], cwd=REPO, check=True,
                                 capture_output=True, text=True).stdout.strip()  # fmt: skip
            clone = Path(tmp) / f"clone-{sha}"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            subprocess.run(["git", "checkout", "-q", sha], cwd=clone, check=True)
            runs.append({"commit": sha, **measure(clone, Path(tmp) / f"home-{sha}", install=True)})
            shutil.rmtree(clone, ignore_errors=True)
    result = {
        "benchmark": "make_run",
        "machine": {
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "loadavg_at_start": load_start,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },  # fmt: skip
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for r in runs:
        parts = [f"{k[:-2]} {v} s" for k, v in r.items() if k.endswith("_s")]
        print(f"{r['commit']}: {', '.join(parts)}; demo: {r['demo_domains']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
