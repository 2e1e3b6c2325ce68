"""The association page in a real browser (Debian's chromium driven by Playwright, the server and
browser of ``test_strains_page.py``) on the small synthetic study of ``test_association_api.py``:
the form offers the stored genotypes and trait table, a logistic test with a covariate runs as a
job, the Manhattan and QQ plots load, the top-hit table lists the planted variant first with the
links the API gives (the Beacon link opens the app's Beacon answer; the UCSC link points at hg19),
"Show more" pages on, a reload shows the result again, and an uploaded table without a numeric
column is explained; nothing is loaded from outside the app and no script fails. The screenshot
goes to ``test-artifacts/association-page.png`` (the docs' picture, ``docs/images/association.png``,
is made by ``scripts/screenshots.py``).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
from test_association_api import PLANTED, association_store
from test_strains_page import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    TIMEOUT_MS,
    _shrink,
    browser,
    pytestmark,
    server,
)

IMAGES_JS = """() => ['#as-manhattan', '#as-qq'].map((s) => {
  const i = document.querySelector(s);
  return {complete: i.complete, width: i.naturalWidth, src: i.getAttribute('src')};
})"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return association_store(tmp_path_factory.mktemp("association-page"))


@pytest.fixture
def tab(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/association")
    page.wait_for_selector("#as-form")
    yield page
    here = urlparse(server).netloc
    assert [u for u in requests if urlparse(u).netloc not in (here, "")] == []
    assert errors == []
    context.close()


def _result(tab) -> None:
    tab.wait_for_selector("#as-results[data-ready='1']")
    tab.wait_for_function(
        "() => ['#as-manhattan', '#as-qq'].every((s) => document.querySelector(s).complete)"
    )


def test_an_analysis_shows_its_plots_and_hits_with_links(tab):
    assert tab.input_value("#as-genotypes") == "study"
    assert tab.input_value("#as-traits") == "study"
    traits = tab.eval_on_selector_all("#as-trait option", "os => os.map((o) => o.value)")
    assert traits == ["label", "score", "age", "age2"]  # the text column is not offered
    tab.select_option("#as-trait", "label")
    assert tab.input_value("#as-test") == "logistic"  # a 0/1 trait
    assert tab.is_disabled("#as-covariates input[value=label]")
    tab.check("#as-covariates input[value=age]")
    tab.select_option("#as-assembly", "GRCh37")
    tab.click("#as-go")
    _result(tab)
    job = parse_qs(urlparse(tab.url).query)["job"][0]
    images = tab.evaluate(IMAGES_JS)
    assert all(i["width"] > 300 for i in images), images
    assert images[0]["src"] == f"/api/v1/association/analyses/{job}/plots/manhattan.png"
    assert "λ" in tab.inner_text("#as-summary") and "300 samples" in tab.inner_text("#as-summary")
    rows = tab.locator("#as-hits tbody tr")
    assert rows.count() == 20
    first = rows.first
    assert first.get_attribute("data-rank") == "1"
    assert first.locator("td.variant").inner_text() == f"{PLANTED[0]}:1,039,000 A>G"
    # the links are the API's
    api = json.loads(tab.evaluate(f"fetch('/api/v1/association/analyses/{job}/hits?limit=1')"
                                  ".then((r) => r.text())"))  # fmt: skip
    links = api["hits"][0]["links"]
    assert first.locator("a.beacon").get_attribute("href") == links["beacon"]
    ucsc = first.locator("a.ucsc").get_attribute("href")
    assert ucsc == links["ucsc"]
    assert parse_qs(urlparse(ucsc).query) == {"db": ["hg19"], "position": ["chr2:1039000-1039000"]}
    # the Beacon link opens the app's Beacon answer for the variant
    with tab.context.expect_page() as opened:
        first.locator("a.beacon").click()
    beacon = opened.value
    beacon.wait_for_load_state()
    doc = json.loads(beacon.inner_text("body"))
    assert doc["meta"]["beaconId"] and "responseSummary" in doc
    params = doc["meta"]["receivedRequestSummary"]["requestParameters"]
    assert str(PLANTED[1] - 1) in json.dumps(params)
    beacon.close()
    shot = ARTIFACTS / "association-page.png"
    shot.parent.mkdir(exist_ok=True)
    tab.screenshot(path=str(shot), full_page=True)
    _shrink(shot)
    tab.click("#as-more")
    tab.wait_for_function("() => document.querySelectorAll('#as-hits tbody tr').length === 40")
    # a reload shows the same result from the job's URL
    tab.reload()
    _result(tab)
    assert (
        tab.locator("#as-hits tbody tr")
        .first.locator("td.variant")
        .inner_text()
        .startswith(f"{PLANTED[0]}:1,039,000")
    )


def test_an_uploaded_table_is_checked_and_offered(tab, tmp_path):
    bad = tmp_path / "groups.csv"
    bad.write_text("sample,group\nS000,a\n")
    tab.set_input_files("#as-upload", str(bad))
    tab.wait_for_selector("#as-error:not([hidden])")
    assert "no numeric column" in tab.inner_text("#as-error")
    good = tmp_path / "my traits.tsv"
    good.write_text("sample\tbmi\nS000\t21.5\nS001\t23\nS002\t30\n")
    tab.set_input_files("#as-upload", str(good))
    tab.wait_for_function("() => document.querySelector('#as-traits').value === 'my-traits'")
    assert "Stored as" in tab.inner_text("#as-upload-status")
    assert tab.eval_on_selector_all("#as-trait option", "os => os.map((o) => o.value)") == ["bmi"]
    assert tab.input_value("#as-test") == "linear"
