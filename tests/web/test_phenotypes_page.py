"""The "code a clinical note" page in a real browser (Debian's chromium driven by Playwright, the
server and browser of ``test_strains_page.py``): the example note is marked where the coder read
each term, in the style of its context (and not by colour alone), the list gives each term's path
from the ontology's root, the status and vaccination are read; removing and adding terms changes
the FHIR Bundle and the Phenopacket downloaded; an empty, term-less or too long note is a message,
not a crash; nothing is loaded from outside the app and no script fails. The page's screenshot
goes to ``test-artifacts/phenotypes-page.png`` (the docs' picture, ``docs/images/phenotypes.png``,
is made by ``scripts/screenshots.py``). The routes' explicit term list, which the downloads use:
``test_phenotypes_page_api.py``.
"""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest
from test_phenotypes_page_api import _observations
from test_strains_page import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    TIMEOUT_MS,
    _shrink,
    browser,
    pytestmark,
    server,
)

from sandgrain.phenotypes.coder import LISTS, MAX_TEXT, code_text
from sandgrain.phenotypes.ontology import hpo
from sandgrain.storage import Store
from sandgrain.web.phenotypes_page import EXAMPLE_NOTE

FEVER, DYSPNEA, ANOSMIA = "HP:0001945", "HP:0002094", "HP:0000458"
CHEST_PAIN, PNEUMONIA, SEIZURE = "HP:0100749", "HP:0002090", "HP:0001250"
DIARRHEA, HEADACHE = "HP:0002014", "HP:0002315"

#: Each mark of the note: what it says, and how it is drawn.
MARKS_JS = """() => [...document.querySelectorAll('#ph-marked mark')].map((m) => {
  const s = getComputedStyle(m);
  return {id: m.dataset.id, kind: m.dataset.kind, text: m.querySelector('.w').textContent,
          line: s.textDecorationLine, style: s.textDecorationStyle, outline: s.outlineStyle,
          background: s.backgroundColor};
})"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An empty store: the page needs none of its data."""
    return Store(str(tmp_path_factory.mktemp("phenotypes-page") / "store"))


@pytest.fixture
def tab(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/phenotypes")
    page.wait_for_selector("#ph-form")
    yield page
    here = urlparse(server).netloc
    assert [u for u in requests if urlparse(u).netloc not in (here, "")] == []
    assert errors == []
    context.close()


def _coded(tab) -> None:
    tab.evaluate("() => delete document.querySelector('#ph-results').dataset.ready")
    tab.click("#ph-go")
    tab.wait_for_selector("#ph-results[data-ready='1']")


def _download(tab, button: str) -> tuple[str, dict]:
    with tab.expect_download() as got:
        tab.click(button)
    download = got.value
    return download.suggested_filename, json.loads(open(download.path(), encoding="utf-8").read())


def test_the_example_note_is_marked_in_the_style_of_each_context(tab):
    assert tab.input_value("#ph-note") == EXAMPLE_NOTE
    _coded(tab)
    want = code_text(EXAMPLE_NOTE).to_dict()
    expected = sorted(
        ((m["start"], m["id"], kind, m["text"]) for kind in LISTS for m in want[kind]),
    )
    marks = tab.evaluate(MARKS_JS)
    assert [(m["id"], m["kind"], m["text"]) for m in marks] == [e[1:] for e in expected]
    by_id = {m["id"]: m for m in marks}
    # what a curator codes in this note, as the coder returns it
    assert by_id[FEVER]["kind"] == "present" and by_id[FEVER]["text"] == "febrile to 39.2C"
    assert by_id[DYSPNEA]["kind"] == "present" and by_id[DYSPNEA]["text"] == "SOB"
    assert by_id[ANOSMIA]["kind"] == "present"
    assert by_id[CHEST_PAIN]["kind"] == "negated"
    assert by_id[PNEUMONIA]["kind"] == "uncertain"
    assert by_id[SEIZURE]["kind"] == "family_history"
    # not colour alone: a solid underline, a strike, dots, a dashed box
    assert "underline" in by_id[FEVER]["line"] and by_id[FEVER]["style"] == "solid"
    assert "line-through" in by_id[CHEST_PAIN]["line"]
    assert "underline" in by_id[PNEUMONIA]["line"] and by_id[PNEUMONIA]["style"] == "dotted"
    assert by_id[SEIZURE]["outline"] == "dashed"
    assert len({m["background"] for m in marks}) == len({m["kind"] for m in marks})
    assert tab.locator(".ph-legend li").count() == len(LISTS)
    # the list: one row per term, each with its path from the root as the ontology has it
    onto = hpo()
    rows = tab.locator("#ph-terms tbody tr")
    assert rows.count() == len(expected)
    for i in range(rows.count()):
        row = rows.nth(i)
        term_id = row.get_attribute("data-id")
        labels = [onto.label(t) for t in onto.path_to_root(term_id)]
        assert row.locator("td.label").inner_text() == onto.label(term_id)
        assert row.locator("td.path").inner_text() == " › ".join(labels)
        assert labels[-1] == onto.label(term_id) and len(labels) >= 3
    # the status on the WHO scale and the vaccine's CVX code
    assert "5–9 of 10" in tab.inner_text("#ph-outcome")
    assert "CVX 208" in tab.inner_text("#ph-vaccines")
    assert f"{len(expected)} terms found (HPO {onto.version})" in tab.inner_text("#ph-status-line")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "phenotypes-page.png"
    tab.screenshot(path=str(shot), full_page=True)
    _shrink(shot)


def test_removing_and_adding_terms_changes_the_downloads(tab):
    _coded(tab)
    listed = tab.locator("#ph-terms tbody tr").count()
    name, before = _download(tab, "#ph-fhir")
    assert name == "patient-1-fhir-bundle.json"
    obs = _observations(before)
    assert obs[FEVER]["valueBoolean"] is True and obs[CHEST_PAIN]["valueBoolean"] is False
    assert DIARRHEA not in obs and HEADACHE not in obs
    immunizations = [e["resource"] for e in before["entry"]
                     if e["resource"]["resourceType"] == "Immunization"]  # fmt: skip
    assert immunizations[0]["vaccineCode"]["coding"][0]["code"] == "208"
    # remove Fever: its row and its mark go
    tab.click(f"#ph-terms tr[data-id='{FEVER}'] button.remove")
    assert tab.locator(f"#ph-terms tr[data-id='{FEVER}']").count() == 0
    assert tab.locator(f"#ph-marked mark[data-id='{FEVER}']").count() == 0
    assert "febrile to 39.2C" in tab.inner_text("#ph-marked")
    # add Diarrhea by keyboard, Headache as absent by click
    tab.fill("#ph-add", "diarrh")
    tab.wait_for_selector(f"#ph-add-listbox [role=option][data-id='{DIARRHEA}']")
    assert tab.get_attribute("#ph-add", "aria-expanded") == "true"
    while tab.get_attribute("#ph-add-listbox [aria-selected=true]", "data-id") != DIARRHEA:
        tab.press("#ph-add", "ArrowDown")
    tab.press("#ph-add", "Enter")
    tab.select_option("#ph-add-kind", "negated")
    tab.fill("#ph-add", "headache")
    tab.click(f"#ph-add-listbox [role=option][data-id='{HEADACHE}']")
    added = tab.locator(f"#ph-terms tr[data-id='{HEADACHE}']")
    assert added.get_attribute("data-kind") == "negated"
    assert "added by hand" in added.locator("td.words").inner_text()
    assert tab.locator("#ph-terms tbody tr").count() == listed + 1  # one removed, two added
    _, after = _download(tab, "#ph-fhir")
    obs = _observations(after)
    assert FEVER not in obs
    assert obs[DIARRHEA]["valueBoolean"] is True
    assert obs[HEADACHE]["valueBoolean"] is False
    assert set(_observations(before)) - {FEVER} <= set(obs)
    name, packet = _download(tab, "#ph-phenopacket")
    assert name == "patient-1-phenopacket.json"
    features = {f["type"]["id"]: f.get("excluded", False) for f in packet["phenotypicFeatures"]}
    assert features == {DYSPNEA: False, "HP:0031245": False, ANOSMIA: False, CHEST_PAIN: True,
                        DIARRHEA: False, HEADACHE: True}  # fmt: skip
    assert packet["subject"] == {"id": "patient-1", "vitalStatus": {"status": "ALIVE"}}


def test_an_empty_or_bad_note_is_a_message_not_a_crash(tab):
    tab.fill("#ph-note", "   ")
    tab.click("#ph-go")
    assert "Type or paste a clinical note" in tab.inner_text("#ph-error")
    assert tab.locator("#ph-results").is_hidden()
    tab.fill("#ph-note", "Booked for review next Tuesday, see letter.")
    tab.fill("#ph-status", "xyzzy")
    _coded(tab)
    assert tab.locator("#ph-error").is_hidden()
    assert "No phenotype term was found" in tab.inner_text("#ph-status-line")
    assert tab.locator("#ph-terms tbody tr").count() == 0 and tab.is_visible("#ph-none")
    assert "not understood, not guessed" in tab.inner_text("#ph-outcome")
    # longer than the coder takes (the text area's own limit removed): the API's problem detail
    tab.evaluate("() => document.querySelector('#ph-note').removeAttribute('maxlength')")
    tab.fill("#ph-note", "fever " * (MAX_TEXT // 6 + 1))
    tab.click("#ph-go")
    tab.wait_for_function("() => !document.querySelector('#ph-error').hidden")
    assert f"longer than {MAX_TEXT:,} characters" in tab.inner_text("#ph-error")


def test_the_menu_links_here(tab, server):  # noqa: F811
    tab.goto(f"{server}/")
    tab.click("header nav a[href='/phenotypes']")
    tab.wait_for_selector("#ph-form")
    assert tab.input_value("#ph-note") == EXAMPLE_NOTE
