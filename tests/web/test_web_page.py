"""The web page in a real browser: Debian's chromium driven by Playwright against the app served
by uvicorn on a loopback port.

Designs guides for yeast ADE2 the way a user would (autocomplete, submit, progress, result
table, gene drawing, sorting, filtering, off-targets, TSV download, reload), checks that an
unknown gene is explained next to its field and that the page loads nothing from outside the
app. Screenshots of the key steps go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from sandgrain.config import Settings
from sandgrain.errors import SandgrainError
from sandgrain.guides.nucleases import get_nuclease
from sandgrain.guides.siteindex import SiteFamily, build_index, open_index
from sandgrain.web.app import create_app

playwright_sync = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("SANDGRAIN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.slow,
    # `make test` installs Debian's chromium, so in CI a missing browser is a failure, not a skip
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None
        and not Path(CHROMIUM).is_file()
        and not os.environ.get("CI"),
        reason=f"chromium not found at {CHROMIUM} (set SANDGRAIN_CHROMIUM)",
    ),
]


# --------------------------------------------------------------------------------------------
# the app on a loopback port, the browser
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_spcas9_index(yeast) -> None:
    family = SiteFamily.of(get_nuclease("SpCas9"))
    try:
        open_index(yeast, family, "SpCas9")
    except SandgrainError:
        build_index(yeast, family, executor="serial")


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_store, yeast):
    """The app (demo store: yeast indexed for SpCas9, SARS-CoV-2) served by uvicorn in a
    background thread on 127.0.0.1; yields its base URL."""
    _ensure_spcas9_index(yeast)
    home = tmp_path_factory.mktemp("web-page-home")
    app = create_app(Settings(home=str(home), store_url=demo_store.url, executor="serial"))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A fresh browser tab that records every URL it requests."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def external(self) -> list[str]:
        """Requests that left the app (anything not http://127.0.0.1:<port>)."""
        here = urlparse(self.base)
        return [
            u
            for u in self.requests
            if (urlparse(u).scheme, urlparse(u).hostname, urlparse(u).port)
            != (here.scheme, here.hostname, here.port)
        ]

    def shot(self, name: str, full_page: bool = True) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


@pytest.fixture
def tab(browser, server):
    t = Page(browser, server)
    try:
        yield t
    finally:
        t.context.close()


# generous: the suite may share 2 cores with other work, and panels wait on API calls
playwright_sync.expect.set_options(timeout=TIMEOUT_MS)


def expect(locator):
    return playwright_sync.expect(locator)


# --------------------------------------------------------------------------------------------
# helpers reading the page
# --------------------------------------------------------------------------------------------


def column(page, label: str) -> list[str]:
    """The texts of one column of the guide table's visible rows, in display order."""
    return page.evaluate(
        """(label) => {
            const ths = Array.from(document.querySelectorAll('#guides thead th'));
            const i = ths.findIndex((th) => th.textContent.trim() === label);
            if (i < 0) throw new Error('no column ' + label);
            return Array.from(document.querySelectorAll('#guides tbody tr'))
                .filter((tr) => !tr.hidden)
                .map((tr) => tr.cells[i].textContent.trim());
        }""",
        label,
    )


def contains(text: str) -> re.Pattern:
    """For Playwright's attribute and class expectations: the value contains ``text``."""
    return re.compile(re.escape(text))


def number(text: str) -> float | None:
    text = text.replace(",", "").strip()
    return None if text in ("", "—") else float(text)


def visible_marks(page) -> int:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('#model-drawing .guide-mark'))"
        ".filter((m) => m.style.display !== 'none').length"
    )


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


def test_design_ade2_in_the_browser(tab, server):
    page = tab.page
    page.goto(server + "/")
    expect(page.locator("#genome-table")).to_contain_text("yeast")
    expect(page.locator("#genome-table")).to_contain_text("7,136")  # SGD gene count

    # the genome and the nucleases it is indexed for (others disabled, and explained)
    page.select_option("#genome", "yeast")
    genomes = page.request.get(server + "/api/v1/genomes").json()
    indexed = set(next(g for g in genomes if g["name"] == "yeast")["indexed_nucleases"])
    assert "SpCas9" in indexed
    for option in page.locator("#nuclease option").all():
        name = option.get_attribute("value")
        assert option.is_disabled() == (name not in indexed), name
    if len(indexed) < len(page.locator("#nuclease option").all()):
        expect(page.locator("#nuclease-hint")).to_contain_text("sandgrain genome index yeast")
    page.select_option("#nuclease", "SpCas9")
    page.select_option("#max_mismatches", "4")

    # autocomplete: type "ADE", move to ADE2 with the arrow keys, Enter chooses it
    gene = page.locator("#gene")
    gene.click()
    gene.press_sequentially("ADE", delay=40)
    listbox = page.locator("#gene-listbox")
    expect(listbox).to_be_visible()
    expect(gene).to_have_attribute("aria-expanded", "true")
    options = listbox.locator("[role=option]")
    expect(options.filter(has_text="ADE2").first).to_be_visible()
    symbols = [o.get_attribute("data-symbol") for o in options.all()]
    assert all(s.upper().startswith("ADE") for s in symbols), symbols
    for _ in range(symbols.index("ADE2") + 1):
        gene.press("ArrowDown")
    expect(page.locator(f"#gene-option-{symbols.index('ADE2')}")).to_have_attribute(
        "aria-selected", "true"
    )
    tab.shot("01-design-form-autocomplete.png", full_page=False)
    gene.press("Enter")
    expect(gene).to_have_value("ADE2")
    expect(listbox).to_be_hidden()
    expect(page.locator("#gene-hint")).to_contain_text("YOR128C")

    # submit: the job gets its own page, whose progress bar reaches 100 %
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    job_url = page.url
    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=60_000)
    expect(page.locator("#job-status")).to_contain_text("Done")
    expect(page.locator("#cancel")).to_be_hidden()

    # the result: as many guide ticks on the gene drawing as rows in the table
    doc = page.request.get(f"{server}/api/v1/jobs/{job_id}/result?offtargets_limit=0").json()
    n = len(doc["guides"])
    assert n > 50
    rows = page.locator("#guides tbody tr")
    expect(rows).to_have_count(n)
    expect(page.locator("#model-drawing .guide-mark")).to_have_count(n)
    assert visible_marks(page) == n
    expect(page.locator("#model-drawing .exon")).to_have_count(1)  # ADE2 has one exon
    expect(page.locator("#guide-count")).to_have_text(f"Showing {n} of {n} guides")
    assert column(page, "#") == [str(g["rank"]) for g in doc["guides"]]
    expect(page.locator("#guides th[data-key=rank]")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#link-ucsc")).to_have_attribute("href", contains("db=sacCer3"))
    expect(page.locator("#link-ucsc")).to_have_attribute("href", contains("chrXV"))
    expect(page.locator("#link-ensembl")).to_have_attribute(
        "href", contains("Saccharomyces_cerevisiae/Location/View?r=XV")
    )
    tab.shot("02-result.png")

    # hovering a tick shows its guide
    first = page.locator('#model-drawing .guide-mark[data-rank="1"]')
    first.hover()
    expect(page.locator("#tooltip")).to_be_visible()
    expect(page.locator("#tooltip")).to_contain_text(doc["guides"][0]["sequence"])

    # sorting: GC % descending (two clicks), then position ascending
    page.click("#guides th[data-key=gc] button")
    page.click("#guides th[data-key=gc] button")
    expect(page.locator("#guides th[data-key=gc]")).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#guides th[data-key=rank]")).not_to_have_attribute(
        "aria-sort", "ascending"
    )
    gc = [number(t) for t in column(page, "GC %")]
    assert gc == sorted(gc, reverse=True) and gc[0] > gc[-1]
    page.click("#guides th[data-key=position] button")
    expect(page.locator("#guides th[data-key=position]")).to_have_attribute(
        "aria-sort", "ascending"
    )
    starts = [int(t.split(":")[1].split("-")[0].replace(",", "")) for t in column(page, "Position")]
    assert starts == sorted(starts) and len(starts) == n

    # filtering: hide guides with 0–3-mismatch off-targets; the drawing follows the table
    keep = [g for g in doc["guides"] if not any(g["offtarget_counts"][:4])]
    assert 0 < len(keep) < n
    page.select_option("#filter-mm", "3")
    expect(rows.locator("visible=true")).to_have_count(len(keep))
    assert visible_marks(page) == len(keep)
    page.fill("#filter-text", doc["guides"][0]["sequence"][:12].lower())
    expect(rows.locator("visible=true")).to_have_count(1)
    page.fill("#filter-text", "")
    page.select_option("#filter-mm", "-1")
    expect(rows.locator("visible=true")).to_have_count(n)

    # off-targets of the guide with the most: keyboard (focus its row, Enter)
    worst = max(doc["guides"], key=lambda g: (g["offtargets_total"], -g["rank"]))
    assert worst["offtargets_total"] > 0
    heading = f"Off-targets of guide #{worst['rank']}"
    row = page.locator(f'#guides tbody tr[data-rank="{worst["rank"]}"]')
    row.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#offtargets")).to_be_visible()
    expect(page.locator("#offtargets-heading")).to_have_text(heading)
    ot_rows = page.locator("#offtarget-table tbody tr")
    expect(ot_rows).to_have_count(min(worst["offtargets_total"], 50))
    sites = page.evaluate(
        """() => Array.from(document.querySelectorAll('#offtarget-table tbody tr')).map((tr) => ({
            site: tr.cells[3].textContent,
            marked: Array.from(tr.cells[3].childNodes).flatMap((node) =>
                Array.from(node.textContent).map(() => node.nodeName === 'MARK')),
            mismatches: Number(tr.cells[5].textContent),
            location: tr.cells[8].textContent,
        }))"""
    )
    guide_seq = worst["sequence"]
    for site in sites:
        differs = [a != b for a, b in zip(guide_seq, site["site"], strict=True)]
        assert differs == site["marked"], site
        assert sum(site["marked"]) == site["mismatches"] > 0
        assert site["location"] in ("exon", "intron", "intergenic")
    expect(row).to_have_class(contains("selected"))
    expect(page.locator(f'#model-drawing .guide-mark[data-rank="{worst["rank"]}"]')).to_have_class(
        contains("selected")
    )
    page.locator("#offtargets").scroll_into_view_if_needed()
    tab.shot("03-offtargets.png")

    # the TSV download holds the table's rows
    with page.expect_download() as info:
        page.click("#download-tsv")
    download = info.value
    text = Path(download.path()).read_text()
    tsv = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    assert download.suggested_filename.endswith(".tsv")
    page.click("#guides th[data-key=rank] button")
    table = list(zip(column(page, "#"), column(page, "Sequence"), column(page, "PAM"), strict=True))
    assert [(r["rank"], r["sequence"], r["pam"]) for r in tsv] == table
    assert len(tsv) == n
    for fmt in ("bed", "json"):
        href = page.get_attribute(f"#download-{fmt}", "href")
        assert page.request.get(server + href).ok, fmt

    # a reload (same URL, shareable) shows the result again, the chosen guide still open
    page.reload()
    assert page.url.split("#")[0] == job_url.split("#")[0]
    expect(rows).to_have_count(n)
    expect(page.locator("#model-drawing .guide-mark")).to_have_count(n)
    expect(page.locator("#offtargets-heading")).to_have_text(heading)
    expect(page.locator("#offtarget-table tbody tr")).to_have_count(
        min(worst["offtargets_total"], 50)
    )
    tab.shot("04-result-after-reload.png", full_page=False)

    assert tab.external() == [], tab.external()
    assert tab.errors == []
    assert any(u.endswith(f"/api/v1/jobs/{job_id}") for u in tab.requests)


def test_unknown_gene_is_explained_next_to_the_field(tab, server):
    page = tab.page
    page.goto(server + "/")
    page.select_option("#genome", "yeast")
    page.fill("#gene", "NOSUCHGENE1")
    page.click("#submit")
    error = page.locator("#gene-error")
    expect(error).to_contain_text("unknown gene")
    expect(error).to_contain_text("NOSUCHGENE1")
    expect(page.locator("#gene")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#gene")).to_be_focused()
    assert urlparse(page.url).path == "/"
    expect(page.locator("#gene-listbox")).to_be_hidden()
    # then what to try instead: genes that start alike, or how to find the name
    page.wait_for_function(
        """() => { const e = document.querySelector('#gene-error');
                   return e.querySelector('.suggest') || e.textContent.includes('spelling'); }"""
    )
    tab.shot("05-unknown-gene.png", full_page=False)

    # a near miss offers the genes that start like it; choosing one fills the field
    page.fill("#gene", "ADE2X")
    page.click("#submit")
    expect(error).to_contain_text("unknown gene 'ADE2X'")
    suggestion = error.locator(".suggest button", has_text="ADE2").first
    expect(suggestion).to_be_visible()
    suggestion.click()
    expect(page.locator("#gene")).to_have_value("ADE2")
    expect(error).to_be_empty()

    # an empty field is explained before anything is sent
    page.fill("#gene", "")
    page.click("#submit")
    expect(error).to_contain_text("Type a gene")

    # a bad region, next to the region field
    page.check("input[name=target][value=region]")
    expect(page.locator("#region")).to_be_visible()
    expect(page.locator("#gene")).to_be_hidden()
    page.fill("#region", "XV:900000000-900000100")
    page.click("#submit")
    expect(page.locator("#region-error")).not_to_be_empty()
    assert urlparse(page.url).path == "/"
    assert tab.external() == [], tab.external()
    assert tab.errors == []


def test_progress_cancel_and_failure_are_shown(tab, server):
    """The job page's live states, with the job API answered by the test (a real design is
    too quick to catch running): progress, cancel, then a failure's reason."""
    page = tab.page
    r = page.request.post(
        server + "/api/v1/guides/jobs",
        data={"genome": "yeast", "region": "XV:564476-564600", "nuclease": "SpCas9"},
    )
    assert r.status == 202, r.text()
    job_id = r.json()["id"]
    params = {"genome": "yeast", "region": "XV:564476-564600", "nuclease": "SpCas9"}
    view = {"id": job_id, "kind": "guides.design", "params": params, "error": None}
    state = {"deleted": False, "polls": 0}

    def running_then_cancelled(route, request):
        if request.method == "DELETE":
            state["deleted"] = True
            body = {**view, "status": "running", "progress": 0.3, "cancel_requested": True}
        elif state["deleted"]:
            body = {**view, "status": "cancelled", "progress": 0.3, "cancel_requested": True}
        else:
            state["polls"] += 1
            body = {**view, "status": "running", "progress": 0.3, "message": "searching"}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route(f"**/api/v1/jobs/{job_id}", running_then_cancelled)
    page.goto(f"{server}/jobs/{job_id}")
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "30")
    expect(page.locator("#job-status")).to_contain_text("Running: searching — 30%")
    expect(page.locator("#job-title")).to_have_text("Guides for XV:564476-564600")
    page.wait_for_timeout(1200)
    assert state["polls"] >= 2  # it keeps polling (every ~500 ms) while the job runs
    tab.shot("06-running.png", full_page=False)
    page.click("#cancel")
    expect(page.locator("#job-status")).to_have_text("Cancelled.")
    expect(page.locator("#job-error")).to_contain_text("cancelled")
    expect(page.locator("#cancel")).to_be_hidden()
    assert state["deleted"]

    page.unroute(f"**/api/v1/jobs/{job_id}")
    failed = {**view, "status": "failed", "progress": 0.5, "error": "the store went away"}
    page.route(
        f"**/api/v1/jobs/{job_id}",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(failed)
        ),
    )
    page.reload()
    expect(page.locator("#job-error")).to_contain_text("The design failed: the store went away")
    expect(page.locator("#job-error a")).to_have_attribute("href", contains("region=XV"))
    assert tab.external() == []


def test_unknown_job_page(tab, server):
    page = tab.page
    response = page.goto(server + "/jobs/0123456789abcdef0123456789abcdef")
    assert response.status == 404
    expect(page.locator("[role=alert]").first).to_contain_text("No such job")
    assert tab.external() == []


def test_empty_store_explains_how_to_add_a_genome(tmp_path):
    settings = Settings(home=str(tmp_path / "home"), executor="serial")
    with TestClient(create_app(settings)) as client:
        html = client.get("/").text
    assert "No genomes yet" in html and "sandgrain genome add" in html
    assert 'id="design-form"' not in html


def test_page_assets_are_served_by_the_app(tmp_path):
    settings = Settings(home=str(tmp_path / "home"), executor="serial")
    with TestClient(create_app(settings)) as client:
        html = client.get("/").text
        assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
        assert assets and all(a.startswith("/static/") for a in assets), assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
