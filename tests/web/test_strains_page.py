"""The strain map page in a real browser: Debian's chromium driven by Playwright against the app
served by uvicorn on a loopback port (as ``test_web_page.py`` does), on the 418 shared SARS-CoV-2
genomes. The map draws every genome, the colour select recolours it, the time slider hides the
genomes collected later, hover names a genome, search finds one and the side panel lists its
mutations as the API has them, the drift plot shows the dated genomes, and nothing is loaded from
outside the app. The page's screenshot goes to ``test-artifacts/strains-page.png`` (the docs'
picture, ``docs/images/strains-map.png``, is made by ``scripts/screenshots.py``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from test_strains_api import strains_demo_store

from sandgrain.config import Settings
from sandgrain.strains.collection import Collection
from sandgrain.strains.demo import DEMO_COLLECTION
from sandgrain.testing.web import CHROMIUM, CHROMIUM_ARGS, live_server
from sandgrain.web.app import create_app

playwright_sync = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None
        and not Path(CHROMIUM).is_file()
        and not os.environ.get("CI"),
        reason=f"chromium not found at {CHROMIUM} (set SANDGRAIN_CHROMIUM)",
    ),
]

#: Non-white pixels of the canvas, and a digest of its pixels (to see that colours changed).
PIXELS_JS = """() => {
  const c = document.querySelector('#strains-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let ink = 0, hash = 0, first = null;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] !== 255 || d[i + 1] !== 255 || d[i + 2] !== 255) {
      ink++;
      if (first === null) first = [(i / 4) % c.width, Math.floor(i / 4 / c.width)];
    }
    hash = (hash * 31 + d[i] * 7 + d[i + 1] * 3 + d[i + 2]) | 0;
  }
  return {ink, hash, first, width: c.width, drawn: Number(c.dataset.drawn)};
}"""


def _shrink(path: Path) -> None:
    """A screenshot in 256 colours: a third of the bytes, no visible change."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    small.save(path, optimize=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return strains_demo_store(tmp_path_factory.mktemp("strains-page"))


@pytest.fixture(scope="module")
def server(tmp_path_factory, store):
    home = tmp_path_factory.mktemp("strains-page-home")
    app = create_app(Settings(home=str(home), store_url=store.url, executor="serial"))
    with live_server(app, "uvicorn-strains") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def tab(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/strains")
    page.wait_for_selector("#strains-canvas[data-ready='1']")
    page.wait_for_selector("#strains-drift svg")
    yield page
    here = urlparse(server).netloc
    assert [u for u in requests if urlparse(u).netloc not in (here, "")] == []
    assert errors == []
    context.close()


def test_the_map_draws_every_genome_and_the_drift_plot(tab, store):
    px = tab.evaluate(PIXELS_JS)
    assert px["drawn"] == 418
    assert px["ink"] > 418  # each point is several pixels; coincident points overlap
    assert "418 of 418 genomes" in tab.inner_text("#strains-count")
    coll = Collection.open(store, DEMO_COLLECTION)
    # the drift plot counts the dated genomes that pass QC (bad ones left out, as the CLI does)
    passing = {
        s for s, st in zip(coll.qc_table()["strain"].to_pylist(),
                           coll.qc_table()["status"].to_pylist(), strict=True) if st != "bad"
    }  # fmt: skip
    meta = coll.metadata()
    dated = sum(
        1 for s, d in zip(meta.column("strain").to_pylist(), meta.column("date").to_pylist(),
                          strict=True) if len(d or "") == 10 and s in passing
    )  # fmt: skip
    assert 0 < dated < 418
    assert tab.locator("#strains-drift svg circle").count() == dated
    assert "substitutions/year" in tab.inner_text("#strains-drift")


def test_the_colour_select_recolours_the_points(tab):
    by_date = tab.evaluate(PIXELS_JS)
    seen = {by_date["hash"]}
    for value in ("country", "qc", "region"):
        tab.select_option("#strains-colour", value)
        px = tab.evaluate(PIXELS_JS)
        assert px["drawn"] == 418 and px["ink"] > 0
        assert px["hash"] not in seen, value
        seen.add(px["hash"])
        assert tab.locator("#strains-legend span").count() >= 2
    tab.select_option("#strains-colour", "qc")
    assert "bad" in tab.inner_text("#strains-legend")


def test_the_time_slider_hides_later_genomes(tab, store):
    whole = tab.evaluate(PIXELS_JS)
    slider = tab.locator("#strains-slider")
    low, high = int(slider.get_attribute("min")), int(slider.get_attribute("max"))
    middle = (low + high) // 2
    slider.evaluate(
        "(e, v) => { e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); }", middle
    )
    early = tab.evaluate(PIXELS_JS)
    # exactly the genomes with a complete date up to the slider's
    import datetime as dt

    cut = (dt.date(1970, 1, 1) + dt.timedelta(days=middle)).isoformat()
    dates = Collection.open(store, DEMO_COLLECTION).metadata().column("date").to_pylist()
    assert early["drawn"] == sum(1 for d in dates if len(d or "") == 10 and d <= cut)
    assert 0 < early["drawn"] < whole["drawn"] and early["ink"] < whole["ink"]
    assert tab.inner_text("#strains-date") == cut
    slider.evaluate(
        "(e, v) => { e.value = v; e.dispatchEvent(new Event('input', {bubbles: true})); }", low
    )
    first = tab.evaluate(PIXELS_JS)["drawn"]
    assert 0 < first < early["drawn"]
    # play runs the epidemic forward to the end
    tab.click("#strains-play")
    tab.wait_for_function("() => document.querySelector('#strains-canvas').dataset.drawn === '418'")
    assert tab.inner_text("#strains-play").endswith("Play")


def test_hover_names_the_genome_under_the_pointer(tab):
    px = tab.evaluate(PIXELS_JS)
    canvas = tab.locator("#strains-canvas").bounding_box()
    scale = canvas["width"] / px["width"]
    x, y = px["first"]
    tab.mouse.move(canvas["x"] + (x + 1) * scale, canvas["y"] + (y + 1) * scale)
    tip = tab.locator("#strains-tip")
    tip.wait_for(state="visible")
    tab.wait_for_function(
        "() => /substitutions/.test(document.querySelector('#strains-tip').textContent)"
    )
    text = tip.inner_text()
    assert "/" in text.splitlines()[0]  # a strain name
    assert "20" in text  # its date


def test_search_finds_a_genome_and_the_panel_lists_its_mutations(tab, store):
    coll = Collection.open(store, DEMO_COLLECTION)
    strains = coll.strains()
    strain = max(strains[:80], key=lambda s: len(coll.calls(s).substitutions))
    calls = coll.calls(strain)
    tab.fill("#strains-query", strain)
    tab.press("#strains-query", "Enter")
    panel = tab.locator("#strains-panel")
    panel.wait_for(state="visible")
    tab.wait_for_function(
        "() => !/Loading/.test(document.querySelector('#strains-genome').textContent)"
    )
    assert tab.inner_text("#genome-heading") == strain
    text = tab.inner_text("#strains-genome")
    assert f"Substitutions ({len(calls.substitutions)})" in text
    for mutation in calls.substitutions + calls.aa_substitutions:
        assert mutation in text
    assert calls.qc["status"] in text
    ARTIFACTS.mkdir(exist_ok=True)
    tab.select_option("#strains-colour", "country")
    shot = ARTIFACTS / "strains-page.png"
    tab.screenshot(path=str(shot), full_page=True)
    _shrink(shot)
    # a name that is not there says so
    tab.fill("#strains-query", "no-such-genome-xyz")
    tab.press("#strains-query", "Enter")
    assert "no genome matches" in tab.inner_text("#strains-search-msg")


def test_click_opens_the_genome(tab):
    px = tab.evaluate(PIXELS_JS)
    canvas = tab.locator("#strains-canvas").bounding_box()
    scale = canvas["width"] / px["width"]
    x, y = px["first"]
    tab.mouse.click(canvas["x"] + (x + 1) * scale, canvas["y"] + (y + 1) * scale)
    tab.locator("#strains-panel").wait_for(state="visible")
    tab.wait_for_function(
        "() => /Substitutions/.test(document.querySelector('#strains-genome').textContent)"
    )
    assert "/" in tab.inner_text("#genome-heading")
