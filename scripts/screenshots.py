"""Make the pictures the docs show: every file under ``docs/images/``.

    .venv/bin/python scripts/screenshots.py [--only NAME ...] [--out docs/images] [--home DIR]

It builds a store with ``sandgrain demo --data DATA`` in a temporary ``SANDGRAIN_HOME`` (or in
``--home``, reused: the demo keeps what is already imported), starts ``sandgrain serve`` on a
free loopback port, drives Debian's chromium (``SANDGRAIN_CHROMIUM`` for another) with
Playwright, and writes each picture of :data:`SHOTS` at a fixed viewport of 1200×800 CSS pixels
(or the whole page where the entry says so), quantized to a palette of 256 colours (fewer while
above 150 kB). A few pictures are figures the command line draws (``--plot``); their entries run
the command instead of the browser. A page the server does not serve is skipped, and said so.
``make screenshots`` runs it: about two minutes from a fresh home on 2 cores (the demo 13 s).
``tests/docs/test_images.py`` checks that every picture a README or docs page embeds is one of
:data:`SHOTS`, so every picture can be made again.

The table :data:`SHOTS` lists each picture: its file name, the page it opens, what is done there
before the picture is taken, and the docs pages that embed it. The URLs of the pages are the
constants below, in one place.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sandgrain.testing.web import CHROMIUM, free_port
from sandgrain.testing.web import CHROMIUM_ARGS as TEST_CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SANDGRAIN = str(BIN / "sandgrain") if (BIN / "sandgrain").exists() else "sandgrain"
#: the tests' browser, with text drawn the same on every machine
CHROMIUM_ARGS = [*TEST_CHROMIUM_ARGS, "--font-render-hinting=none"]
VIEWPORT = {"width": 1200, "height": 800}
TIMEOUT_MS = 60_000
#: A picture above this many bytes is quantized to fewer colours until it fits.
MAX_BYTES = 150_000

#: The demo's SARS-CoV-2 collection (``sandgrain demo``).
COLLECTION = "ncov-example"

# The pages' URLs, in one place.
HOME_URL = "/"
GUIDES_URL = "/guides"
API_DOCS_URL = "/docs"
STRAINS_URL = f"/strains/{COLLECTION}"
TRACE_URL = f"/strains/{COLLECTION}/trace"
PHENOTYPES_URL = "/phenotypes"
ASSOCIATION_URL = "/association"
CALLING_URL = "/calling"

#: The shared genome the trace page is given, with a run of 200 N written over 15,001-15,200.
TRACE_GENOME = "France/10045DZ/2020"
#: The synthetic collection the strains figures draw (made by the script).
SYNTHETIC = "synthetic-3000"
#: The genome the map page's search opens.
MAP_GENOME = "Australia/VIC1208/2020"


# --------------------------------------------------------------------------------------------
# what a picture's actions are given
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run of the script: the server's address, the store's home, the shared data, and
    what the pictures share (the ADE2 design's job, made once)."""

    base: str
    home: Path
    data: Path
    env: dict
    shared: dict = field(default_factory=dict)

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read()
        return json.loads(text) if text else {}

    def sandgrain(self, *args: str) -> str:
        done = subprocess.run(
            [SANDGRAIN, *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"sandgrain {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout


def _job_done(page, run: Run, job: str, timeout_ms: int = TIMEOUT_MS) -> None:
    page.goto(f"{run.base}/jobs/{job}")
    page.wait_for_selector("[role=progressbar][aria-valuenow='100']", timeout=timeout_ms)
    page.wait_for_selector("#guides tbody tr")
    page.wait_for_selector("#model-drawing[data-mode]")


def _ade2(page, run: Run) -> str:
    """The ADE2 design's job (yeast, SpCas9, up to 4 mismatches), submitted once."""
    if "ade2" not in run.shared:
        job = run.api(
            "POST",
            "/api/v1/guides/jobs",
            {"genome": "yeast", "gene": "ADE2", "nuclease": "SpCas9", "max_mismatches": 4},
        )
        run.shared["ade2"] = job["id"]
    return run.shared["ade2"]


def _form(page, run: Run) -> None:
    page.goto(run.base + GUIDES_URL)
    page.wait_for_selector("#genome")
    page.select_option("#genome", "yeast")


# --------------------------------------------------------------------------------------------
# the pictures' actions: each gets the Playwright page (already at the entry's URL) and the run
# --------------------------------------------------------------------------------------------


def type_ade2_and_choose_it(page, run: Run) -> None:
    _form(page, run)
    gene = page.locator("#gene")
    gene.click()
    gene.press_sequentially("ADE2", delay=40)
    page.wait_for_selector("#gene-listbox [role=option][data-symbol='ADE2']")
    gene.press("ArrowDown")  # ADE2, the exact name, is first
    gene.press("Enter")
    page.wait_for_function("() => /YOR128C/.test(document.querySelector('#gene-hint').textContent)")
    gene.blur()


def open_the_gene_autocomplete(page, run: Run) -> None:
    _form(page, run)
    gene = page.locator("#gene")
    gene.click()
    gene.press_sequentially("ADE", delay=40)
    page.wait_for_selector("#gene-listbox [role=option][data-symbol='ADE2']")
    page.wait_for_function(
        "() => document.querySelectorAll('#gene-listbox [role=option]').length >= 8"
    )
    symbols = page.eval_on_selector_all(
        "#gene-listbox [role=option]", "os => os.map((o) => o.dataset.symbol)"
    )
    for _ in range(symbols.index("ADE2") + 1):
        gene.press("ArrowDown")
    page.wait_for_selector("#gene-listbox [role=option][data-symbol='ADE2'][aria-selected=true]")


def ask_about_a_large_target(page, run: Run) -> None:
    _form(page, run)
    page.check("input[name=target][value=region]")
    page.fill("#region", "IV:1-1000000")
    page.click("#submit")
    page.wait_for_selector("#large-warning", state="visible")


def submit_an_unknown_gene(page, run: Run) -> None:
    _form(page, run)
    page.fill("#gene", "ADE2X")
    page.click("#submit")
    page.wait_for_function("() => document.querySelector('#gene-error').textContent.trim()")
    page.wait_for_timeout(300)  # the suggestions follow the error


def watch_a_running_design(page, run: Run) -> None:
    """A real design of a 1 Mb region (76,541 guides, minutes): the picture is taken while it
    runs, then the job is cancelled."""
    job = run.api(
        "POST",
        "/api/v1/guides/jobs",
        {"genome": "yeast", "region": "IV:1-1000000", "nuclease": "SpCas9", "max_mismatches": 4},
    )["id"]
    try:
        page.goto(f"{run.base}/jobs/{job}")
        page.wait_for_function(
            "() => Number(document.querySelector('[role=progressbar]')"
            ".getAttribute('aria-valuenow')) >= 5",
            timeout=120_000,
        )
        page.wait_for_timeout(600)
    finally:
        run.shared["cancel"] = job


def open_the_ade2_result(page, run: Run) -> None:
    _job_done(page, run, _ade2(page, run))
    page.evaluate("() => window.scrollTo(0, 0)")


def scroll_the_table_sideways(page, run: Run) -> None:
    _job_done(page, run, _ade2(page, run))
    scroll = page.locator("#guides-scroll")
    scroll.evaluate("(el) => { el.scrollLeft = 500; }")
    page.wait_for_function("() => document.querySelector('#guides-scroll').scrollLeft > 100")
    page.locator("#guide-pager").scroll_into_view_if_needed()


def open_the_worst_guides_offtargets(page, run: Run) -> None:
    """Sort by total off-targets (descending) and open the first guide's off-targets."""
    _job_done(page, run, _ade2(page, run))
    for _ in range(2):
        page.click("#guides th[data-key=offtargets_total] button")
    page.wait_for_selector("#guides th[data-key=offtargets_total][aria-sort=descending]")
    page.wait_for_timeout(300)
    page.locator("#guides tbody tr").first.click()
    page.wait_for_selector("#offtarget-table tbody tr")
    page.locator("#offtargets").scroll_into_view_if_needed()
    page.evaluate(
        "() => window.scrollBy(0, document.querySelector('#offtargets')"
        ".getBoundingClientRect().top - 8)"
    )


def open_a_large_design(page, run: Run) -> None:
    job = run.api(
        "POST",
        "/api/v1/guides/jobs",
        {"genome": "yeast", "region": "IV:1-20000", "nuclease": "SpCas9", "max_mismatches": 0},
    )["id"]
    _job_done(page, run, job, timeout_ms=300_000)
    page.wait_for_selector("#model-drawing[data-mode=density]")


class Skip(Exception):
    """The page this picture shows is not served (yet): the picture is left as it is."""


def show_the_home_page(page, run: Run) -> None:
    page.wait_for_load_state("networkidle")
    if page.locator("#gene").count():
        raise Skip(f"{HOME_URL} is the design form, not a home page")


def show_the_beacon_endpoints(page, run: Run) -> None:
    """The interactive API docs, scrolled to the Beacon section (its routes' tag)."""
    page.wait_for_selector(".opblock-tag")
    tag = page.locator(".opblock-tag", has_text="Beacon").first
    tag.scroll_into_view_if_needed()
    page.evaluate(
        "(el) => window.scrollBy(0, el.getBoundingClientRect().top - 8)",
        tag.element_handle(),
    )


def search_a_genome_on_the_map(page, run: Run) -> None:
    page.wait_for_selector("#strains-canvas[data-ready='1']")
    page.wait_for_selector("#strains-drift svg")
    page.select_option("#strains-colour", "country")
    page.fill("#strains-query", MAP_GENOME)
    page.press("#strains-query", "Enter")
    page.wait_for_selector("#strains-panel", state="visible")
    page.wait_for_function(
        "() => /Substitutions/.test(document.querySelector('#strains-genome').textContent)"
    )
    page.locator("#strains-query").blur()


def _shared_genome(data: Path, name: str) -> str:
    path = data / "pathogen/sars-cov-2-ncov-example/example_sequences.fasta.gz"
    seq: list[str] = []
    found = False
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith(">"):
                if found:
                    break
                found = line[1:].split()[0] == name
            elif found:
                seq.append(line.strip())
    if not seq:
        raise RuntimeError(f"{name} is not in {path}")
    return "".join(seq)


def trace_a_genome_with_an_n_run(page, run: Run) -> None:
    """A shared genome with 200 N written over it, traced: nearest strains (k = 6), the map,
    the tree (FastTree on 40 genomes, built here: about 2 s) and the profile."""
    run.sandgrain("strains", "tree", "-c", COLLECTION, "--sample", "40", "--seed", "0")
    seq = _shared_genome(run.data, TRACE_GENOME)
    masked = seq[:15000] + "N" * 200 + seq[15200:]
    page.goto(run.base + TRACE_URL)
    page.wait_for_selector("#trace-form")
    page.fill("#trace-mutations", "")  # the page's example; the genome is traced instead
    page.fill("#trace-fasta", f">my-sample\n{masked}\n")
    page.fill("#trace-k", "6")
    page.click("#trace-go")
    for panel in ("#trace-map", "#trace-tree", "#trace-profile-month"):
        page.wait_for_selector(f"{panel}[data-ready='1']")


def code_the_example_note(page, run: Run) -> None:
    page.wait_for_selector("#ph-form")
    page.click("#ph-go")
    page.wait_for_selector("#ph-results[data-ready='1']")


def run_the_example_association(page, run: Run) -> None:
    page.wait_for_selector("#as-form")
    page.click("#as-go")
    page.wait_for_selector("#as-results[data-ready='1']", timeout=180_000)
    page.wait_for_function(
        "() => ['#as-manhattan', '#as-qq'].every((s) => document.querySelector(s).complete)"
    )


def call_the_demo_read_set(page, run: Run) -> None:
    """The demo read set (three 1000 Genomes samples over 4.2 kb of chr17) called as a job."""
    page.wait_for_selector("#calling-form")
    page.click("#calling-go")
    page.wait_for_selector("#calling-results[data-ready='1']", timeout=300_000)


# --------------------------------------------------------------------------------------------
# figures the command line draws
# --------------------------------------------------------------------------------------------


def _synthetic(run: Run) -> str:
    """The synthetic collection the figures draw: 3,000 genomes evolved from the reference
    along a random dated tree (``strains simulate -n 3000 --seed 7``) by a clock that starts at
    24 substitutions per genome per year and speeds up by 60 % a year, added as a collection
    (about 10 s; kept in the store, so made once)."""
    listed = json.loads(run.sandgrain("strains", "list", "--json"))
    names = {c["collection"] for c in listed}
    if SYNTHETIC not in names:
        with tempfile.TemporaryDirectory() as tmp:
            run.sandgrain(
                "strains", "simulate", "-n", "3000", "--seed", "7", "--rate-growth", "0.6",
                "--reference", "sars-cov-2", "-o", tmp,
            )  # fmt: skip
            run.sandgrain(
                "strains", "add", "--collection", SYNTHETIC, "--reference", "sars-cov-2",
                "--fasta", f"{tmp}/sequences.fasta", "--metadata", f"{tmp}/metadata.tsv",
            )  # fmt: skip
    return SYNTHETIC


def plot_the_drift(run: Run, out: Path) -> None:
    """``strains drift --plot`` on the synthetic collection, every genome counted (``--qc
    all``: read without a tree, Nextclade's private-mutation rule fails most of them, the
    later ones far from the reference by then)."""
    run.sandgrain("strains", "drift", "--collection", _synthetic(run), "--qc", "all",
                  "--plot", str(out))  # fmt: skip


def plot_the_map_and_its_tsne(run: Run, out: Path) -> None:
    """The synthetic collection's k-mer map built with a t-SNE beside it (``strains map
    --second tsne``), exported, and drawn side by side coloured by date."""
    import csv
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = _synthetic(run)
    summary = json.loads(
        run.sandgrain(
            "strains", "map", "--collection", name, "--second", "tsne", "--seed", "7", "--json"
        )  # fmt: skip
    )
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "map.tsv"
        run.sandgrain("strains", "map", "export", "--collection", name, "-o", str(tsv))
        with tsv.open() as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
    dated = [r for r in rows if len(r.get("date") or "") == 10]
    days = [dt.date.fromisoformat(r["date"]).toordinal() for r in dated]
    variance = summary.get("explained_variance_ratio") or []
    pca = "PCA map, axes 1 and 2" + (
        f" ({variance[0]:.0%} and {variance[1]:.0%} of the variance)" if len(variance) > 1 else ""
    )
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), dpi=100, layout="constrained")
    for ax, (x, y, title) in zip(
        axes, [("x", "y", pca), ("tsne_x", "tsne_y", "t-SNE of the ten PCA coordinates")],
        strict=True,
    ):  # fmt: skip
        points = ax.scatter(
            [float(r[x]) for r in dated], [float(r[y]) for r in dated], c=days, s=4,
            cmap="viridis",
        )  # fmt: skip
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(points, ax=axes, shrink=0.8)
    ticks = [t for t in bar.get_ticks() if min(days) <= t <= max(days)]
    bar.set_ticks(ticks)
    bar.set_ticklabels([dt.date.fromordinal(int(t)).isoformat() for t in ticks])
    fig.suptitle(f"{len(dated):,} synthetic genomes, coloured by date")
    fig.savefig(out)
    plt.close(fig)


def _hipster_plots(run: Run) -> Path:
    """The plots of the cohort tutorial's test: the hipster ``label`` by the logistic score test
    with age and PC0-PC2 (``association test --genotypes hipster … --plot``), made once."""
    if "hipster" not in run.shared:
        folder = Path(tempfile.mkdtemp(prefix="sandgrain-hipster-plots-"))
        run.sandgrain(
            "association", "test", "--genotypes", "hipster", "--phenotypes",
            str(run.data / "association/variantspark/hipster_labels_covariates.txt"),
            "--trait", "label", "--test", "logistic", "--statistic", "score",
            "--covariates", "age,PC0,PC1,PC2", "-o", str(folder / "hipster-label.tsv"),
            "--plot", str(folder / "hipster-label"), "-q",
        )  # fmt: skip
        run.shared["hipster"] = folder
    return run.shared["hipster"]


def plot_the_hipster_manhattan(run: Run, out: Path) -> None:
    """The Manhattan plot ``association test --plot`` draws for the hipster label."""
    shutil.copyfile(_hipster_plots(run) / "hipster-label.manhattan.png", out)


def plot_the_hipster_qq(run: Run, out: Path) -> None:
    """The QQ plot ``association test --plot`` draws for the hipster label."""
    shutil.copyfile(_hipster_plots(run) / "hipster-label.qq.png", out)


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shot:
    """One picture: ``name`` under the output folder, the ``url`` opened (None: a figure the
    command line draws, by ``act(run, path)``), what is done before it is taken, the docs pages
    that embed it, and whether it shows the whole page rather than the 1200×800 viewport."""

    name: str
    url: str | None
    act: Callable
    pages: tuple[str, ...]
    full_page: bool = False


#: The tutorials (each may show any picture of its domain).
BIOLOGIST = "docs/tutorial-biologist.md"
STEWARD = "docs/tutorial-data-steward.md"
HEALTH = "docs/tutorial-public-health.md"
COHORT = "docs/tutorial-cohort.md"
OPERATOR = "docs/tutorial-operator.md"
TUTORIALS = (BIOLOGIST, STEWARD, HEALTH, COHORT, OPERATOR)
WEB = "docs/web.md"
GUIDES = (WEB, BIOLOGIST, "docs/guides.md")

SHOTS: list[Shot] = [
    Shot("home.png", HOME_URL, show_the_home_page, ("README.md", WEB, *TUTORIALS), full_page=True),
    Shot("guides-form.png", GUIDES_URL, type_ade2_and_choose_it, GUIDES),
    Shot("guides-autocomplete.png", GUIDES_URL, open_the_gene_autocomplete, GUIDES),
    Shot("guides-large-target.png", GUIDES_URL, ask_about_a_large_target, GUIDES),
    Shot("guides-unknown-gene.png", GUIDES_URL, submit_an_unknown_gene, GUIDES),
    Shot("guides-running.png", GUIDES_URL, watch_a_running_design, GUIDES),
    Shot("guides-result.png", GUIDES_URL, open_the_ade2_result, GUIDES),
    Shot("guides-table-scrolled.png", GUIDES_URL, scroll_the_table_sideways, GUIDES),
    Shot("guides-offtargets.png", GUIDES_URL, open_the_worst_guides_offtargets, GUIDES),
    Shot("guides-density.png", GUIDES_URL, open_a_large_design, GUIDES),
    Shot("beacon-docs.png", API_DOCS_URL, show_the_beacon_endpoints,
         ("docs/beacon.md", "docs/api.md", STEWARD, COHORT, OPERATOR)),
    Shot("strains-map.png", STRAINS_URL, search_a_genome_on_the_map, ("docs/strains.md", HEALTH),
         full_page=True),
    Shot("strains-trace.png", TRACE_URL, trace_a_genome_with_an_n_run,
         ("docs/strains.md", HEALTH), full_page=True),
    Shot("phenotypes.png", PHENOTYPES_URL, code_the_example_note,
         ("docs/phenotypes.md", HEALTH, COHORT), full_page=True),
    Shot("association.png", ASSOCIATION_URL, run_the_example_association,
         ("docs/association.md", HEALTH, COHORT), full_page=True),
    Shot("calling.png", CALLING_URL, call_the_demo_read_set, ("docs/calling.md", COHORT),
         full_page=True),
    Shot("strains-drift.png", None, plot_the_drift, ("docs/strains.md", HEALTH)),
    Shot("strains-map-tsne.png", None, plot_the_map_and_its_tsne, ("docs/strains.md", HEALTH)),
    Shot("tutorial-cohort-manhattan.png", None, plot_the_hipster_manhattan, (COHORT,)),
    Shot("tutorial-cohort-qq.png", None, plot_the_hipster_qq, (COHORT,)),
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# running it
# --------------------------------------------------------------------------------------------


def shrink(path: Path, limit: int = MAX_BYTES) -> int:
    """Quantize to a palette (256 colours, fewer while above ``limit``) and optimize; returns
    the bytes written."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    for colours in (256, 128, 64, 32):
        small = rgb.quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)
        if path.stat().st_size <= limit:
            break
    return path.stat().st_size


def settle(page) -> None:
    """Let the page paint what the actions changed (sticky cells scrolled sideways were taken
    stale without it): two animation frames, then a quarter of a second."""
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.wait_for_timeout(250)


def _wait_for(base: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"sandgrain serve ended with status {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/api/v1/genomes", timeout=5):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError("sandgrain serve did not answer in time") from None
            time.sleep(0.2)


def _exists(base: str, url: str) -> bool:
    try:
        with urllib.request.urlopen(base + url, timeout=30) as answer:
            return answer.status == 200
    except urllib.error.HTTPError:
        return False


def take(shots: list[Shot], run: Run, out: Path) -> list[tuple[str, str]]:
    """Take each picture; returns (name, what happened) for each."""
    from playwright.sync_api import sync_playwright

    report: list[tuple[str, str]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for shot in shots:
                started = time.monotonic()
                target = out / shot.name
                if shot.url is None:
                    shot.act(run, target)
                elif not _exists(run.base, shot.url):
                    report.append((shot.name, f"skipped: {shot.url} is not served"))
                    print(f"{shot.name}: skipped, {shot.url} is not served", file=sys.stderr)
                    continue
                else:
                    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
                    context.set_default_timeout(TIMEOUT_MS)
                    page = context.new_page()
                    try:
                        page.goto(run.base + shot.url)
                        shot.act(page, run)
                        settle(page)
                        page.screenshot(
                            path=str(target),
                            full_page=shot.full_page,
                            animations="disabled",
                            caret="hide",
                        )
                    except Skip as e:
                        report.append((shot.name, f"skipped: {e}"))
                        print(f"{shot.name}: skipped, {e}", file=sys.stderr)
                        continue
                    finally:
                        context.close()
                        job = run.shared.pop("cancel", None)
                        if job:
                            run.api("DELETE", f"/api/v1/jobs/{job}")
                size = shrink(target)
                took = time.monotonic() - started
                report.append((shot.name, f"{size / 1000:.0f} kB in {took:.1f} s"))
                print(f"{shot.name}: {size / 1000:.0f} kB in {took:.1f} s", file=sys.stderr)
        finally:
            browser.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="Only these pictures.")
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs/images", metavar="DIR",
        help="Where the pictures go (docs/images).",
    )  # fmt: skip
    parser.add_argument(
        "--home", type=Path, metavar="DIR", help="Use (and keep) this SANDGRAIN_HOME."
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        default=Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared/data")),
        help="The shared data folder (env SANDGRAIN_TEST_DATA; ../shared/data).",
    )
    args = parser.parse_args(argv)
    names = {s.name for s in SHOTS}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        parser.error(f"no picture named {', '.join(unknown)} (known: {', '.join(sorted(names))})")
    shots = [s for s in SHOTS if not args.only or s.name in args.only]
    if not args.data.is_dir():
        parser.error(f"no shared data at {args.data} (give --data or SANDGRAIN_TEST_DATA)")
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).is_file():
        parser.error(f"no chromium at {CHROMIUM} (make sysdeps, or set SANDGRAIN_CHROMIUM)")
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sandgrain-screenshots-") as tmp:
        home = (args.home or Path(tmp) / "home").resolve()
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SANDGRAIN_HOME": str(home)}
        for key in ("SANDGRAIN_STORE", "SANDGRAIN_DATABASE"):
            env.pop(key, None)
        print(f"sandgrain demo in {home} ...", file=sys.stderr)
        subprocess.run(
            [SANDGRAIN, "demo", "--data", str(args.data.resolve()), "-q"], env=env, check=True
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = (Path(tmp) / "serve.log").open("w")
        server = subprocess.Popen(
            [SANDGRAIN, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(base, server)
            run = Run(base=base, home=home, data=args.data.resolve(), env=env)
            report = take(shots, run, args.out)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    took = time.monotonic() - started
    skipped = [name for name, what in report if what.startswith("skipped")]
    print(
        f"{len(report) - len(skipped)} pictures in {args.out} in {took:.0f} s"
        + (f"; skipped: {', '.join(skipped)}" if skipped else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
