#!/usr/bin/env python
"""Web guide-design benchmark for sandgrain (issue 4 §6).

What it measures, against a real ``sandgrain serve`` process on a loopback port:

1. Time from submit to result for guide design of yeast ADE2 (SpCas9, ≤ 4 mismatches) through
   the REST API: ``POST /api/v1/guides/jobs`` → poll ``GET /api/v1/jobs/{id}`` → ``GET
   /api/v1/jobs/{id}/result``. *Cold* is the first job of a freshly started server (the worker
   pool starts, the numba kernels load from their cache, the index is read); *warm* is the median
   of the following jobs.
2. Requests per second and latency of the gene autocomplete endpoint
   (``GET /api/v1/genomes/yeast/genes?prefix=…``) under concurrent load from local client threads,
   bounded in count and time.
3. The result page of a large design (issue 12: a 1 Mb region, 76,541 guides): the design's
   time, the stored document's size, the time and size of the API calls the page makes
   (overview, a page of guides sorted or filtered on the server, the drawing's track, one
   guide's off-targets, the complete JSON download) and, in headless Chromium, the time from
   opening the job's page to its first rows, cold (the first visit after the server started,
   which reads the document into the server's guide table) and warm, with the rows in the DOM
   and the bytes transferred.

Usage::

    python benchmarks/web_design.py            # writes benchmarks/results/web_design.json
    python benchmarks/web_design.py --quick    # fewer repetitions, a shorter load test
    python benchmarks/web_design.py --large-only --large-region IV:1-1000000   # ~15 min design
    python benchmarks/web_design.py --large-only --server URL --job ID   # an existing design
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
DEFAULT_OUT = REPO / "benchmarks" / "results" / "web_design.json"


def _common():
    """Machine info and atomic JSON writing, shared with the genome import benchmark."""
    spec = importlib.util.spec_from_file_location(
        "genome_import", REPO / "benchmarks/genome_import.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SANDGRAIN = str(Path(sys.executable).parent / "sandgrain")  # the console script of this venv


def sandgrain(home: Path, *args: str, executor: str = "serial") -> None:
    subprocess.run(
        [SANDGRAIN, "--home", str(home), "--executor", executor, *args],
        check=True,
        capture_output=True,
        text=True,
    )


def start_server(home: Path, port: int, executor: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [SANDGRAIN, "--home", str(home), "--executor", executor, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start within 60 s")


def design_once(client: httpx.Client, body: dict) -> tuple[float, int]:
    """Seconds from submit to the result document, and the number of guides in it."""
    t0 = time.perf_counter()
    r = client.post("/api/v1/guides/jobs", json=body)
    r.raise_for_status()
    job_id = r.json()["id"]
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.02)
    if job["status"] != "done":
        raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')}")
    doc = client.get(f"/api/v1/jobs/{job_id}/result").json()
    return time.perf_counter() - t0, len(doc["guides"])


def autocomplete_load(base: str, threads: int, seconds: float, max_requests: int) -> dict:
    """Concurrent autocomplete requests; bounded by time and by count."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    budget = [max_requests]

    def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        with httpx.Client(base_url=base, timeout=10) as client:
            while time.monotonic() < stop:
                with lock:
                    if budget[0] <= 0:
                        return
                    budget[0] -= 1
                prefix = "".join(
                    rng.choice(string.ascii_uppercase) for _ in range(rng.randint(1, 3))
                )
                t0 = time.perf_counter()
                r = client.get(
                    "/api/v1/genomes/yeast/genes", params={"prefix": prefix, "limit": 10}
                )
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    errors += r.status_code != 200

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - t0
    ms = sorted(x * 1000 for x in latencies)
    return {
        "threads": threads,
        "requests": len(ms),
        "errors": errors,
        "wall_s": wall,
        "requests_per_s": len(ms) / wall if wall else 0.0,
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[int(0.95 * (len(ms) - 1))],
    }


class _Done(Exception):
    """Ends the server's measurements early (``--large-only``)."""


def _timed_get(client: httpx.Client, url: str, **params) -> dict:
    t0 = time.perf_counter()
    r = client.get(url, params=params)
    r.raise_for_status()
    return {"s": time.perf_counter() - t0, "bytes": len(r.content)}


def _browser_load(base: str, job_id: str) -> dict | None:
    """Open the job's page in headless Chromium; seconds until its first table rows and its
    drawing are shown, twice (the second a reload), with rows in the DOM and bytes fetched."""
    chromium = os.environ.get("SANDGRAIN_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        return None
    from playwright.sync_api import sync_playwright

    loads = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for _ in range(2):
            t0 = time.perf_counter()
            page.goto(f"{base}/jobs/{job_id}")
            page.wait_for_selector("#guides tbody tr[data-rank]", timeout=600_000)
            page.wait_for_selector("#model-drawing", timeout=600_000)
            seconds = time.perf_counter() - t0
            loads.append(
                {
                    "first_rows_s": seconds,
                    "dom_rows": page.locator("#guides tbody tr").count(),
                    "drawing": page.get_attribute("#model-drawing", "data-mode"),
                    "transferred_bytes": page.evaluate(
                        "() => performance.getEntriesByType('resource')"
                        ".reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0)"
                    ),
                }
            )
        browser.close()
    return {"cold": loads[0], "warm": loads[1]}


def large_page(base: str, job_id: str, design_s: float | None = None) -> dict:
    """The API calls and the page load of a finished large design (see the module doc)."""
    api = f"/api/v1/jobs/{job_id}"
    browser = _browser_load(base, job_id)  # first: its cold load reads the document
    with httpx.Client(base_url=base, timeout=900) as client:
        overview = _timed_get(client, f"{api}/guides/overview")
        ov = client.get(f"{api}/guides/overview").json()
        extent = ov["extent"][0]
        calls = {
            "overview": overview,
            "page_100_by_rank": _timed_get(client, f"{api}/guides", limit=100),
            "page_100_by_gc": _timed_get(
                client, f"{api}/guides", limit=100, sort="gc", order="descending"
            ),
            "page_100_filtered": _timed_get(
                client, f"{api}/guides", limit=100, q="tttt", hide_mismatches=1
            ),
            "track_900_bins": _timed_get(
                client,
                f"{api}/guides/track",
                chrom=extent["chrom"],
                start=extent["start"],
                end=extent["end"],
                bins=900,
            ),
            "offtargets_of_one_guide": _timed_get(client, f"{api}/guides/1/offtargets"),
        }
        t0 = time.perf_counter()
        size = 0
        with client.stream("GET", f"{api}/result", params={"download": "true"}) as r:
            for chunk in r.iter_bytes():
                size += len(chunk)
        calls["json_download"] = {"s": time.perf_counter() - t0, "bytes": size}
    return {
        "job": job_id,
        "guides": ov["guide_count"],
        "target": ov["target"].get("name"),
        "design_s": design_s,
        "document_bytes": size,
        "api": calls,
        "browser": browser,
    }


def _print_large(large: dict) -> None:
    api = large["api"]
    print(
        f"large design {large['target']} ({large['guides']:,} guides"
        + (f", designed in {large['design_s']:.0f} s" if large["design_s"] else "")
        + f"): stored document {large['document_bytes'] / 1e6:.0f} MB"
    )
    for name, call in api.items():
        print(f"  {name:24s} {call['s'] * 1000:9.0f} ms {call['bytes'] / 1e3:10.1f} kB")
    b = large["browser"]
    if b:
        for when in ("cold", "warm"):
            x = b[when]
            print(
                f"  page load ({when}): first rows in {x['first_rows_s']:.2f} s, "
                f"{x['dom_rows']} rows in the DOM, drawing {x['drawing']}, "
                f"{x['transferred_bytes'] / 1e3:.0f} kB transferred"
            )


def run_large(args, base: str) -> dict:
    """Design the large region on the server at ``base`` (or take ``--job``) and measure it."""
    if args.job:
        return large_page(base, args.job)
    body = {
        "genome": "yeast",
        "region": args.large_region,
        "nuclease": "SpCas9",
        "max_mismatches": args.large_mismatches,
    }
    with httpx.Client(base_url=base, timeout=900) as client:
        t0 = time.perf_counter()
        r = client.post("/api/v1/guides/jobs", json=body)
        r.raise_for_status()
        job_id = r.json()["id"]
        while client.get(f"/api/v1/jobs/{job_id}").json()["status"] not in (
            "done",
            "failed",
            "cancelled",
        ):
            time.sleep(1)
        design_s = time.perf_counter() - t0
    return large_page(base, job_id, design_s)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, shorter load test")
    ap.add_argument("--executor", default="local:2", help="the server's executor (default local:2)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--large-region", default="IV:1-1000000", help="the large design's region")
    ap.add_argument("--large-mismatches", type=int, default=4)
    ap.add_argument("--skip-large", action="store_true", help="no large design (it takes minutes)")
    ap.add_argument("--large-only", action="store_true", help="only the large design's page")
    ap.add_argument("--server", help="measure on this running server (with --large-only)")
    ap.add_argument("--job", help="an existing large design job on --server to measure")
    args = ap.parse_args(argv)
    common = _common()
    if args.large_only and args.server:
        result = {"benchmark": "web_design", "started": common.utc_now(), "config": vars(args)}
        result["large_page"] = run_large(args, args.server.rstrip("/"))
        result["machine"] = common.machine_info(Path(tempfile.gettempdir()))
        result["finished"] = common.utc_now()
        result["status"] = "ok"
        common.write_json_atomic(Path(args.out), result)
        _print_large(result["large_page"])
        return 0
    repeats, load_s = (3, 3.0) if args.quick else (8, 10.0)
    result = {"benchmark": "web_design", "started": common.utc_now(), "config": vars(args)}
    with tempfile.TemporaryDirectory(prefix="sandgrain-webbench-") as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        sandgrain(home, "demo", "--data", str(DATA), "-q")
        result["setup_s"] = time.perf_counter() - t0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(home, port, args.executor)
        try:
            if not args.skip_large:
                result["large_page"] = run_large(args, base)
            if args.large_only:
                raise _Done
            body = {"genome": "yeast", "gene": "ADE2", "nuclease": "SpCas9", "max_mismatches": 4}
            with httpx.Client(base_url=base, timeout=120) as client:
                cold, n_guides = design_once(client, body)
                warm = [design_once(client, body)[0] for _ in range(repeats)]
            result["design_ade2"] = {
                "guides": n_guides,
                "cold_s": cold,
                "warm_median_s": statistics.median(warm),
                "warm_min_s": min(warm),
                "warm_max_s": max(warm),
                "warm_runs": warm,
            }
            result["autocomplete"] = [
                autocomplete_load(base, threads, load_s, 20_000) for threads in (1, 8)
            ]
        except _Done:
            pass
        finally:
            server.terminate()
            server.wait(10)
    result["machine"] = common.machine_info(Path(tempfile.gettempdir()))
    result["finished"] = common.utc_now()
    result["status"] = "ok"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    common.write_json_atomic(out, result)
    if "large_page" in result:
        _print_large(result["large_page"])
    if args.large_only:
        return 0
    d = result["design_ade2"]
    print(
        f"ADE2 design (SpCas9, ≤4 mm, {d['guides']} guides, executor {args.executor}): "
        f"cold {d['cold_s']:.2f} s, warm median {d['warm_median_s']:.2f} s"
    )
    for a in result["autocomplete"]:
        print(
            f"autocomplete, {a['threads']} client threads: {a['requests_per_s']:.0f} req/s, "
            f"p50 {a['p50_ms']:.1f} ms, p95 {a['p95_ms']:.1f} ms, errors {a['errors']}"
        )
    print(
        f"summary: ADE2 submit→result {d['cold_s']:.2f} s cold / {d['warm_median_s']:.2f} s warm; "
        f"autocomplete {result['autocomplete'][-1]['requests_per_s']:.0f} req/s with 8 clients"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
