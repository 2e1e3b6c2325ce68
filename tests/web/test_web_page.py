"""The web page in a real browser: Debian's chromium driven by Playwright against the app served
by uvicorn on a loopback port.

Designs guides for yeast ADE2 the way a user would (autocomplete, submit, progress, result
table a page at a time, gene drawing, sorting and filtering on the server, off-targets,
downloads, reload); pages through a 1,644-guide design drawn as a density; checks that a large
target is confirmed before it is submitted, that an unknown gene or a too-short sequence is
explained next to its field, that the form's examples follow the genome, that SARS-CoV-2 links
to UCSC, and that the page loads nothing from outside the app. Screenshots of the key steps go
to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from sandgrain.config import Settings
from sandgrain.errors import SandgrainError
from sandgrain.genome.store import open_genome
from sandgrain.guides.nucleases import get_nuclease
from sandgrain.guides.siteindex import SiteFamily, build_index, open_index
from sandgrain.testing.web import CHROMIUM, CHROMIUM_ARGS, live_server
from sandgrain.web.app import create_app
from sandgrain.web.guides import DEFAULT_GUIDE_PAGE

playwright_sync = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 30_000
#: Guides on one page of the result table.
PAGE = DEFAULT_GUIDE_PAGE

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


def _ensure_spcas9_index(genome) -> None:
    family = SiteFamily.of(get_nuclease("SpCas9"))
    try:
        open_index(genome, family, "SpCas9")
    except SandgrainError:
        build_index(genome, family, executor="serial")


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_store, yeast):
    """The app (demo store: yeast and SARS-CoV-2, both indexed for SpCas9) served by uvicorn
    in a background thread on 127.0.0.1; yields its base URL."""
    _ensure_spcas9_index(yeast)
    _ensure_spcas9_index(open_genome(demo_store, "sars-cov-2"))
    home = tmp_path_factory.mktemp("web-page-home")
    app = create_app(Settings(home=str(home), store_url=demo_store.url, executor="serial"))
    with live_server(app) as url:
        yield url


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


def expect_column(page, label: str, want: list[str]) -> None:
    """Wait until one column of the guide table reads ``want`` (pages load from the API)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        got = column(page, label)
        if got == want or time.monotonic() > deadline:
            break
        page.wait_for_timeout(50)
    assert got == want


def width(page, selector: str) -> float:
    return page.locator(selector).bounding_box()["width"]


def rgb(colour: str) -> str:
    """``#rrggbb`` as the browser reports a computed colour."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def assert_axis_labels_apart(page) -> None:
    """No two labels of the drawing's coordinate axis overlap."""
    boxes = page.evaluate(
        """() => Array.from(document.querySelectorAll('#model-drawing .axis text'))
            .map((t) => { const b = t.getBoundingClientRect(); return [b.left, b.right]; })"""
    )
    assert len(boxes) >= 3, boxes
    boxes.sort()
    for (_, right), (left, _) in zip(boxes, boxes[1:], strict=False):
        assert right <= left, boxes


#: Left edges of the first row's rank, sequence and PAM cells.
PIN_POSITIONS = """() => {
    const tr = document.querySelector('#guides tbody tr');
    const x = (i) => tr.cells[i].getBoundingClientRect().left;
    return { rank: x(0), seq: x(1), pam: x(2) };
}"""


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


def test_design_ade2_in_the_browser(tab, server):
    page = tab.page
    page.goto(server + "/guides")
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

    # autocomplete: shorter names first (ADE1, ADE2, … before ADE12); the exact name first
    gene = page.locator("#gene")
    gene.click()
    gene.press_sequentially("ADE2", delay=40)
    listbox = page.locator("#gene-listbox")
    options = listbox.locator("[role=option]")
    expect(options.first).to_have_attribute("data-symbol", "ADE2")
    gene.press("Backspace")
    expect(options.nth(1)).to_have_attribute("data-symbol", "ADE2")
    expect(listbox).to_be_visible()
    expect(gene).to_have_attribute("aria-expanded", "true")
    symbols = [o.get_attribute("data-symbol") for o in options.all()]
    assert all(s.upper().startswith("ADE") for s in symbols), symbols
    assert symbols == sorted(symbols, key=lambda s: (len(s), s.upper())), symbols
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

    # submit: the job gets its own page, whose progress bar reaches 100 % and fills its panel
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    job_url = page.url
    job_id = job_url.rstrip("/").rsplit("/", 1)[1]
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=60_000)
    expect(page.locator("#job-status")).to_contain_text("Done")
    expect(page.locator("#cancel")).to_be_hidden()
    assert width(page, "#progress") >= 0.95 * width(page, ".progress-row")

    # the result: one page of rows (100 of 141), every guide a tick on the gene drawing
    doc = page.request.get(f"{server}/api/v1/jobs/{job_id}/result?format=json&download=true")
    doc = doc.json()
    guides = doc["guides"]
    n = len(guides)
    assert n > PAGE
    rows = page.locator("#guides tbody tr")
    expect(rows).to_have_count(PAGE)
    expect(page.locator("#model-drawing .guide-mark")).to_have_count(n)
    expect(page.locator("#model-drawing")).to_have_attribute("data-mode", "marks")
    expect(page.locator("#model-drawing .exon")).to_have_count(1)  # ADE2 has one exon
    expect(page.locator("#guide-count")).to_have_text(f"Showing 1–{PAGE} of {n} guides")
    assert column(page, "#") == [str(g["rank"]) for g in guides[:PAGE]]
    expect(page.locator("#guides th[data-key=rank]")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#link-ucsc")).to_have_attribute("href", contains("db=sacCer3"))
    expect(page.locator("#link-ucsc")).to_have_attribute("href", contains("chrXV"))
    expect(page.locator("#link-ensembl")).to_have_attribute(
        "href", contains("Saccharomyces_cerevisiae/Location/View?r=XV")
    )
    assert_axis_labels_apart(page)
    tab.shot("02-result.png")

    # the ranking rule, a tooltip on every column header, no "Score" headline
    expect(page.locator("#ranking-rule")).to_contain_text(doc["ranking"]["rule"])
    heads = page.evaluate(
        "() => Array.from(document.querySelectorAll('#guides thead th'))"
        ".map((th) => [th.dataset.key, th.title])"
    )
    assert all(len(title) > 20 for _, title in heads), heads
    keys = [k for k, _ in heads]
    assert "score" not in keys and {"efficiency", "mit_specificity", "cfd_specificity"} <= set(keys)
    assert "Hsu et al. 2013" in dict(heads)["mit_specificity"]
    assert "Doench et al. 2016" in dict(heads)["cfd_specificity"]

    # scores coloured by the bins the API serves; flags as badges explained by the document
    legend = page.request.get(f"{server}/api/v1/jobs/{job_id}/guides/overview").json()["legend"]
    cells = page.evaluate(
        """() => Array.from(document.querySelectorAll('#guides tbody tr')).map((tr) => ({
            rank: Number(tr.dataset.rank),
            swatch: tr.querySelector('td:nth-child(4) .swatch')?.style.backgroundColor,
            flags: Array.from(tr.querySelectorAll('.flag')).map((f) => f.title),
        }))"""
    )
    for cell in cells:
        g = guides[cell["rank"] - 1]
        if g["efficiency"] is None:
            assert cell["swatch"] is None, cell
        else:
            bins = legend["efficiency"]
            want = next(b for b in bins if b["min"] is None or g["efficiency"] >= b["min"])
            assert cell["swatch"] == rgb(want["colour"]), (cell, g["efficiency"])
        meanings = [doc["ranking"]["flags"][f] for f in g["flags"]]
        assert cell["flags"][: len(meanings)] == meanings, cell
    assert any(cell["flags"] for cell in cells)

    # the rank and sequence columns stay in view when the table scrolls sideways
    scroll = page.locator("#guides-scroll")
    before = page.evaluate(PIN_POSITIONS)
    scroll.evaluate("(el) => { el.scrollLeft = 500; }")
    page.wait_for_function("() => document.querySelector('#guides-scroll').scrollLeft > 100")
    after = page.evaluate(PIN_POSITIONS)
    assert abs(after["rank"] - before["rank"]) < 1 and abs(after["seq"] - before["seq"]) < 1
    assert after["pam"] < before["pam"] - 100  # the others scrolled away
    page.locator("#guide-pager").scroll_into_view_if_needed()
    tab.shot("02b-table-scrolled.png", full_page=False)
    scroll.evaluate("(el) => { el.scrollLeft = 0; }")

    # hovering a tick shows its guide
    first = page.locator('#model-drawing .guide-mark[data-rank="1"]')
    first.hover()
    expect(page.locator("#tooltip")).to_be_visible()
    expect(page.locator("#tooltip")).to_contain_text(guides[0]["sequence"])

    # sorting, on the server over every guide: GC % descending (two clicks), then position
    page.click("#guides th[data-key=gc] button")
    page.click("#guides th[data-key=gc] button")
    expect(page.locator("#guides th[data-key=gc]")).to_have_attribute("aria-sort", "descending")
    by_gc = sorted(guides, key=lambda g: (-g["gc"], g["rank"]))[:PAGE]
    expect_column(page, "#", [str(g["rank"]) for g in by_gc])
    page.click("#guides th[data-key=position] button")
    by_start = sorted(guides, key=lambda g: (g["start"], g["rank"]))[:PAGE]
    expect_column(page, "#", [str(g["rank"]) for g in by_start])
    starts = [int(t.split(":")[1].split("-")[0].replace(",", "")) for t in column(page, "Position")]
    assert starts == sorted(starts) and len(starts) == PAGE
    page.click("#page-next")  # the rest of them, in the same order
    expect_column(
        page,
        "#",
        [str(g["rank"]) for g in sorted(guides, key=lambda g: (g["start"], g["rank"]))[PAGE:]],
    )
    expect(page.locator("#guide-count")).to_have_text(f"Showing {PAGE + 1}–{n} of {n} guides")

    # filtering: hide guides with 0–3-mismatch off-targets; the drawing follows the table
    keep = [g for g in guides if not any(g["offtarget_counts"][:4])]
    assert 0 < len(keep) < n
    page.select_option("#filter-mm", "3")
    expect(page.locator("#guide-count")).to_contain_text(f"of {len(keep)} guides ({n} in all)")
    expect(rows).to_have_count(min(len(keep), PAGE))
    expect(page.locator("#model-drawing .guide-mark")).to_have_count(len(keep))
    page.fill("#filter-text", guides[0]["sequence"][:12].lower())
    expect(rows).to_have_count(1)
    page.fill("#filter-text", "")
    page.select_option("#filter-mm", "-1")
    expect(page.locator("#model-drawing .guide-mark")).to_have_count(n)

    # off-targets of the guide with the most: sort by total (descending), keyboard on its row
    worst = max(guides, key=lambda g: (g["offtargets_total"], -g["rank"]))
    assert worst["offtargets_total"] > 0
    page.click("#guides th[data-key=offtargets_total] button")
    page.click("#guides th[data-key=offtargets_total] button")
    heading = f"Off-targets of guide #{worst['rank']}"
    row = page.locator(f'#guides tbody tr[data-rank="{worst["rank"]}"]')
    expect(rows.first).to_have_attribute("data-rank", str(worst["rank"]))
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

    # downloads named {genome}_{target}_{nuclease}; the TSV holds every guide, best first
    with page.expect_download() as info:
        page.click("#download-tsv")
    download = info.value
    assert download.suggested_filename == "yeast_ADE2_SpCas9.tsv"
    tsv = list(csv.DictReader(io.StringIO(Path(download.path()).read_text()), delimiter="\t"))
    page.click("#guides th[data-key=rank] button")
    expect_column(page, "#", [str(g["rank"]) for g in guides[:PAGE]])
    table = list(zip(column(page, "#"), column(page, "Sequence"), column(page, "PAM"), strict=True))
    assert [(r["rank"], r["sequence"], r["pam"]) for r in tsv][:PAGE] == table
    assert len(tsv) == n
    assert page.get_attribute("#download-bed", "download") == "yeast_ADE2_SpCas9.bed"
    assert page.get_attribute("#download-json", "download") == "yeast_ADE2_SpCas9.json"
    assert page.request.get(server + page.get_attribute("#download-bed", "href")).ok
    # the JSON behind the link is complete: every off-target of every guide
    full = page.request.get(server + page.get_attribute("#download-json", "href")).json()
    assert all(len(g["offtargets"]) == g["offtargets_total"] for g in full["guides"])
    assert any(g["offtargets_total"] > 20 for g in full["guides"])

    # a reload (same URL, shareable) shows the result again, the chosen guide still open
    page.reload()
    assert page.url.split("#")[0] == job_url.split("#")[0]
    expect(rows).to_have_count(PAGE)
    expect(page.locator("#model-drawing .guide-mark")).to_have_count(n)
    expect(page.locator("#offtargets-heading")).to_have_text(heading)
    expect(page.locator("#offtarget-table tbody tr")).to_have_count(
        min(worst["offtargets_total"], 50)
    )
    tab.shot("04-result-after-reload.png", full_page=False)

    assert tab.external() == [], tab.external()
    assert tab.errors == []
    assert any(u.endswith(f"/api/v1/jobs/{job_id}") for u in tab.requests)
    # the page never asked for the whole document: only the overview and pages of guides
    assert not any("offtargets_limit" in u for u in tab.requests), tab.requests


def test_a_large_design_is_paged_and_drawn_as_a_density(tab, server):
    """1,644 guides (a 20 kb region): the table holds one page of rows, the drawing one bar per
    pixel, whatever the guide count; the pager walks every guide."""
    page = tab.page
    r = page.request.post(
        server + "/api/v1/guides/jobs",
        data={"genome": "yeast", "region": "IV:1-20000", "max_mismatches": 0},
    )
    assert r.status == 202, r.text()
    job_id = r.json()["id"]
    page.goto(f"{server}/jobs/{job_id}")
    expect(page.get_by_role("progressbar")).to_have_attribute(
        "aria-valuenow", "100", timeout=120_000
    )
    ranks = page.request.get(f"{server}/api/v1/jobs/{job_id}/guides?limit=1000").json()
    n = ranks["total"]
    assert n > 1000  # more guides than the drawing has pixels
    rows = page.locator("#guides tbody tr")
    expect(rows).to_have_count(PAGE)
    expect(page.locator("#guide-count")).to_have_text(f"Showing 1–{PAGE} of {n:,} guides")
    drawing = page.locator("#model-drawing")
    expect(drawing).to_have_attribute("data-mode", "density")
    expect(page.locator("#model-drawing .guide-mark")).to_have_count(0)
    assert page.locator("#model-drawing path.density").count() >= 3  # guides of each tier
    assert_axis_labels_apart(page)
    tab.shot("07-large-design.png", full_page=False)

    # hovering the density tells how many guides a bar holds
    box = page.locator("#model-drawing .density-hit").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 4)
    expect(page.locator("#tooltip")).to_contain_text("+ strand:")
    expect(page.locator("#tooltip")).to_contain_text("IV:")

    page.click("#page-next")
    expect(rows.first).to_have_attribute("data-rank", str(PAGE + 1))
    expect(page.locator("#guide-count")).to_have_text(
        f"Showing {PAGE + 1}–{2 * PAGE} of {n:,} guides"
    )
    page.click("#page-last")
    last = (n - 1) // PAGE * PAGE
    expect(rows).to_have_count(n - last)
    expect(rows.last).to_have_attribute("data-rank", str(n))
    page.select_option("#page-size", "250")
    expect(rows).to_have_count(250)
    expect(rows.first).to_have_attribute("data-rank", "1")

    # filtered on the server: the drawing follows, and turns to ticks when few enough remain
    page.fill("#filter-text", "iv:1")
    r = page.request.get(f"{server}/api/v1/jobs/{job_id}/guides?q=iv:1&limit=1").json()
    expect(page.locator("#guide-count")).to_contain_text(
        f"of {r['matched']:,} guides ({n:,} in all)"
    )
    page.select_option("#filter-tier", "1")
    one = page.request.get(f"{server}/api/v1/jobs/{job_id}/guides?q=iv:1&max_tier=1&limit=1")
    matched = one.json()["matched"]
    assert 0 < matched < 900  # fewer than the drawing's pixels
    expect(page.locator("#guide-count")).to_contain_text(f"of {matched:,} guides")
    expect(drawing).to_have_attribute("data-mode", "marks")
    expect(page.locator("#model-drawing .guide-mark")).to_have_count(matched)
    assert tab.external() == [] and tab.errors == []


def test_a_large_target_is_confirmed_before_it_is_submitted(tab, server):
    page = tab.page
    page.goto(server + "/guides")
    page.select_option("#genome", "yeast")
    page.check("input[name=target][value=region]")
    page.fill("#region", "IV:1-1000000")
    page.click("#submit")
    warning = page.locator("#large-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("76,541 candidate guides")
    tab.shot("08-large-target-warning.png", full_page=False)
    page.click("#large-back")
    expect(warning).to_be_hidden()
    expect(page.locator("#region")).to_be_focused()
    assert urlparse(page.url).path == "/guides"
    assert not any(u.endswith("/api/v1/guides/jobs") for u in tab.requests)  # nothing submitted

    # "Design anyway" submits it (answered here: a real 1 Mb design takes minutes)
    sent = []
    existing = page.request.post(
        server + "/api/v1/guides/jobs", data={"genome": "yeast", "gene": "ADE3"}
    ).json()["id"]

    def accept(route, request):
        sent.append(request.post_data_json)
        route.fulfill(
            status=202, content_type="application/json", body=json.dumps({"id": existing})
        )

    page.route("**/api/v1/guides/jobs", accept)
    page.click("#submit")
    expect(warning).to_be_visible()
    page.click("#large-go")
    page.wait_for_url(f"**/jobs/{existing}")
    assert sent == [
        {"genome": "yeast", "nuclease": "SpCas9", "max_mismatches": 4, "region": "IV:1-1000000"}
    ]

    # a small target goes straight through, with no question
    page.goto(server + "/guides")
    page.select_option("#genome", "yeast")
    page.check("input[name=target][value=sequence]")
    page.fill("#sequence", "ACGUACGU")  # RNA is fine, but too short for any guide
    page.click("#submit")
    expect(page.locator("#sequence-error")).to_contain_text("shorter than one SpCas9 site")
    expect(page.locator("#sequence")).to_have_attribute("aria-invalid", "true")
    expect(warning).to_be_hidden()
    assert tab.external() == [] and tab.errors == []


def test_placeholders_follow_the_genome_and_sars_cov_2_links_to_ucsc(tab, server):
    page = tab.page
    page.goto(server + "/guides")
    for name in (None, "yeast", "sars-cov-2"):
        if name:
            page.select_option("#genome", name)
        genome = page.input_value("#genome")
        if name is None:  # the form starts with a genome guides can be designed in
            summary = page.request.get(f"{server}/api/v1/genomes/{genome}").json()
            assert summary["indexed_nucleases"], summary
        example = page.get_attribute("#gene", "placeholder").removeprefix("e.g. ")
        gene = page.request.get(f"{server}/api/v1/genomes/{genome}/genes/{example}")
        assert gene.ok, (genome, example)  # the example is a gene of the chosen genome
        region = page.get_attribute("#region", "placeholder").removeprefix("e.g. ")
        assert region == gene.json()["location"]

    # SARS-CoV-2 (no assembly name, but its RefSeq accession) opens UCSC's wuhCor1
    r = page.request.post(
        server + "/api/v1/guides/jobs",
        data={"genome": "sars-cov-2", "gene": "E", "max_mismatches": 2},
    )
    job_id = r.json()["id"]
    page.goto(f"{server}/jobs/{job_id}")
    link = page.locator("#link-ucsc")
    expect(link).to_have_attribute("href", contains("db=wuhCor1"), timeout=60_000)
    expect(link).to_have_attribute("href", contains("NC_045512v2"))
    expect(page.locator("#link-ensembl")).to_have_count(0)
    assert tab.external() == [] and tab.errors == []


def test_unknown_gene_is_explained_next_to_the_field(tab, server):
    page = tab.page
    page.goto(server + "/guides")
    page.select_option("#genome", "yeast")
    page.fill("#gene", "NOSUCHGENE1")
    page.click("#submit")
    error = page.locator("#gene-error")
    expect(error).to_contain_text("unknown gene")
    expect(error).to_contain_text("NOSUCHGENE1")
    expect(page.locator("#gene")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#gene")).to_be_focused()
    assert urlparse(page.url).path == "/guides"
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
    assert urlparse(page.url).path == "/guides"
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
    assert width(page, "#progress") >= 0.75 * width(page, ".progress-row")  # fills its panel
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
        html = client.get("/guides").text
    assert "No genomes yet" in html and "sandgrain genome add" in html
    assert 'id="design-form"' not in html


def test_page_assets_are_served_by_the_app(tmp_path):
    settings = Settings(home=str(tmp_path / "home"), executor="serial")
    with TestClient(create_app(settings)) as client:
        html = client.get("/guides").text
        assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
        assert assets and all(a.startswith("/static/") for a in assets), assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
