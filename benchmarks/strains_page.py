#!/usr/bin/env python
"""The strains map page at scale (issue 14 §5): how long a collection's map takes to load and
draw in Debian's chromium, and how long a recolour and a time-slider step take.

Serves the app on 127.0.0.1 over a store that holds the collection and its map (``--store``,
``--collection``; e.g. the 1,000,000-genome store ``benchmarks/strains_nearest.py --keep``
leaves, after ``sandgrain strains map -c sim``), opens ``/strains/<collection>`` in headless
chromium (the browser the page tests drive) and measures, ``--rounds`` times in fresh tabs:

- **load**: from navigation to ``data-ready="1"`` on the canvas (every page of points fetched
  and drawn), and the first page's draw (``data-drawn`` > 0);
- **recolour**: selecting each colour (country, QC, region, date) until the canvas has been
  redrawn (``data-drawn`` set again after the change, read after the next animation frame);
- **slider**: moving the time slider to the middle of the period until it has been redrawn.

Prints a table and writes JSON (``--out``). A server cold start is not part of it: the first
request builds the map table (measured and reported separately as ``first_request_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

REDRAWN_JS = """async (value) => {
  const c = document.querySelector('#strains-canvas');
  const s = document.querySelector('#strains-colour');
  c.dataset.drawn = '';
  const t0 = performance.now();
  s.value = value;
  s.dispatchEvent(new Event('change', {bubbles: true}));
  while (!c.dataset.drawn) await new Promise(r => requestAnimationFrame(r));
  await new Promise(r => requestAnimationFrame(r));
  return performance.now() - t0;
}"""

SLIDER_JS = """async () => {
  const c = document.querySelector('#strains-canvas');
  const s = document.querySelector('#strains-slider');
  c.dataset.drawn = '';
  const t0 = performance.now();
  s.value = String(Math.round((Number(s.min) + Number(s.max)) / 2));
  s.dispatchEvent(new Event('input', {bubbles: true}));
  while (!c.dataset.drawn) await new Promise(r => requestAnimationFrame(r));
  await new Promise(r => requestAnimationFrame(r));
  return performance.now() - t0;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True, help="store folder holding the collection and map")
    ap.add_argument("--collection", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="strains_page.json")
    args = ap.parse_args()

    import urllib.request

    import uvicorn
    from playwright.sync_api import sync_playwright

    from sandgrain.config import Settings
    from sandgrain.web.app import create_app

    home = tempfile.mkdtemp(prefix="strains-page-bench-")
    app = create_app(Settings(home=home, store_url=args.store, executor="serial"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"{base}/api/v1/strains/{args.collection}/map?limit=1") as r:
        total = json.loads(r.read())["total"]
    result: dict = {
        "collection": args.collection,
        "points": total,
        "first_request_s": round(time.perf_counter() - t0, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": round(os.getloadavg()[0], 2),
        "rounds": [],
    }
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
            for _ in range(args.rounds):
                ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
                ctx.set_default_timeout(600_000)
                page = ctx.new_page()
                t0 = time.perf_counter()
                page.goto(f"{base}/strains/{args.collection}")
                page.wait_for_selector("#strains-canvas[data-drawn]:not([data-drawn=''])")
                first = time.perf_counter() - t0
                page.wait_for_selector("#strains-canvas[data-ready='1']")
                load = time.perf_counter() - t0
                drawn = int(
                    page.evaluate("document.querySelector('#strains-canvas').dataset.drawn")
                )
                colours = {
                    v: page.evaluate(REDRAWN_JS, v) for v in ("country", "qc", "region", "date")
                }
                slider = page.evaluate(SLIDER_JS)
                result["rounds"].append({
                    "first_draw_s": round(first, 2), "load_s": round(load, 2), "drawn": drawn,
                    "recolour_ms": {k: round(v, 1) for k, v in colours.items()},
                    "slider_ms": round(slider, 1),
                })  # fmt: skip
                ctx.close()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        shutil.rmtree(home, ignore_errors=True)
    rounds = result["rounds"]
    result["load_s_median"] = statistics.median(r["load_s"] for r in rounds)
    result["recolour_ms_median"] = statistics.median(
        v for r in rounds for v in r["recolour_ms"].values()
    )
    result["slider_ms_median"] = statistics.median(r["slider_ms"] for r in rounds)
    out = Path(args.out)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)
    print(
        f"{'points':>10} {'first draw s':>12} {'load s':>8} {'recolour ms':>12} {'slider ms':>10}"
    )
    for r in rounds:
        recolour = statistics.median(r["recolour_ms"].values())
        print(
            f"{total:>10,} {r['first_draw_s']:>12} {r['load_s']:>8} {recolour:>12} "
            f"{r['slider_ms']:>10}"
        )


if __name__ == "__main__":
    main()
