"""The "trace a new sample" page in a real browser (Debian's chromium driven by Playwright, the
server and browser of ``test_strains_page.py``) on the 418 shared SARS-CoV-2 genomes with a
tree of 40 of them: a pasted genome with an N run finds itself first at distance 0, the table is
the API's answer, the map draws every genome and the sample on it, the local tree is drawn, the
profile charts draw; a collection without a tree says how to build one; bad input is an error
message, not a crash. The page's screenshot goes to ``test-artifacts/strains-trace.png`` (the
docs' picture, ``docs/images/strains-trace.png``, is made by ``scripts/screenshots.py``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from test_strains_api import strains_demo_store
from test_strains_nearest_api import genomes
from test_strains_page import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    TIMEOUT_MS,
    _shrink,
    browser,
    pytestmark,
    server,
)

from sandgrain.strains.collection import Collection, add_genomes
from sandgrain.strains.demo import DEMO_COLLECTION
from sandgrain.strains.nearest import nearest
from sandgrain.strains.profile import profile_search
from sandgrain.strains.query import calls_from_mutations, calls_from_sequences
from sandgrain.strains.tree import build_tree

LAB = "lab"
K = 6

#: The colour of the canvas's pixel at the sample's mark.
QUERY_PIXEL_JS = """() => {
  const c = document.querySelector('#trace-map');
  const [x, y] = c.dataset.query.split(',').map(Number);
  return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
}"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The demo collection with its map and a tree of 40 genomes; a collection of 8 genomes with
    neither."""
    store = strains_demo_store(tmp_path_factory.mktemp("trace-page"))
    build_tree(store, Collection.open(store, DEMO_COLLECTION), sample=40, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "lab.fa"
        f.write_text("".join(f">lab{i}\n{s}\n" for i, (_, s) in enumerate(genomes()[40:48])))
        add_genomes(store, LAB, reference="sars-cov-2", fasta=f, executor="serial")
    return store


@pytest.fixture
def tab(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/strains/trace")
    page.wait_for_selector("#trace-form")
    yield page
    assert [u for u in requests if not u.startswith(server)] == []
    assert errors == []
    context.close()


def _unique_genome(store) -> tuple[str, str]:
    """A shared genome no other genome equals (so it alone is at distance 0 from itself)."""
    coll = Collection.open(store, DEMO_COLLECTION)
    for name, seq in genomes()[100:]:
        (answer,) = nearest(store, [coll], list(calls_from_sequences(coll, [(name, seq)])), k=2)
        if answer["neighbours"][1]["distance"] > 0:
            return name, seq
    raise AssertionError("every genome has a twin")


def _traced(tab) -> None:
    tab.click("#trace-go")
    tab.wait_for_selector("#trace-map[data-ready='1']")
    tab.wait_for_selector("#trace-tree[data-ready='1']")
    tab.wait_for_selector("#trace-profile-month[data-ready='1']")


def test_a_pasted_genome_with_an_n_run_finds_itself_first(tab, store):
    name, seq = _unique_genome(store)
    masked = seq[:15000] + "N" * 200 + seq[15200:]
    tab.fill("#trace-fasta", f">my-sample\n{masked}\n")
    tab.fill("#trace-k", str(K))
    _traced(tab)
    coll = Collection.open(store, DEMO_COLLECTION)
    (want,) = nearest(store, [coll], list(calls_from_sequences(coll, [("my-sample", masked)])), k=K)
    rows = tab.locator("#trace-table tbody tr")
    assert rows.count() == len(want["neighbours"]) >= K
    first = rows.nth(0).locator("td").all_inner_texts()
    assert first[:3] == ["1", name, "0"]
    assert first[6] == DEMO_COLLECTION and "none" in first[7]
    for i, n in enumerate(want["neighbours"]):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[1:4] == [n["strain"], str(n["distance"]), f"{n['covered']:,}"]
        assert cells[4:6] == [n["date"], n["country"]]
        shown = rows.nth(i).locator(".q-only, .s-only").all_inner_texts()
        assert shown == (n["query_only"][:12] + n["strain_only"][:12])
    # the map: every genome, the sample marked in red where the projection puts it
    canvas = tab.locator("#trace-map")
    assert canvas.get_attribute("data-drawn") == "418"
    assert int(canvas.get_attribute("data-ringed")) == len(want["neighbours"])
    r, g, b, _ = tab.evaluate(QUERY_PIXEL_JS)
    assert r > 150 and g < 90 and b < 90
    assert "my-sample" in tab.inner_text("#trace-map-note")
    # the tree: the local subtree with the sample on it
    assert tab.locator("#trace-tree svg").count() == 1
    assert "my-sample" in tab.text_content("#trace-tree svg")
    assert "parsimony score" in tab.inner_text("#trace-tree")
    # the profile: the sample's mutations most shared by its neighbours, charted
    expression = tab.input_value("#trace-expression")
    assert 1 <= len(expression.split(" & ")) <= 3
    got = profile_search([coll], expression, by=["month", "country"])
    months = [r for r in got["by"]["month"] if r["month"]]
    assert tab.locator("#trace-profile-month svg rect.hit").count() == len(months)
    countries = [r for r in got["by"]["country"] if r["count"] > 0][:12]
    assert tab.locator("#trace-profile-country svg rect.hit").count() == len(countries)
    assert f"{got['count']:,} of 418 genomes" in tab.inner_text("#trace-profile-summary")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "strains-trace.png"
    tab.screenshot(path=str(shot), full_page=True)
    _shrink(shot)
    # a profile typed by hand redraws the charts
    tab.fill("#trace-expression", "S:D614G")
    tab.evaluate("() => delete document.querySelector('#trace-profile-month').dataset.ready")
    tab.press("#trace-expression", "Enter")
    tab.wait_for_selector("#trace-profile-month[data-ready='1']")
    d614g = profile_search([coll], "S:D614G")
    assert f"S:D614G: {d614g['count']:,} of 418" in tab.inner_text("#trace-profile-summary")


def test_a_collection_without_a_tree_or_map_says_how_to_build_them(tab, store):
    tab.uncheck(f"#trace-collections input[value='{DEMO_COLLECTION}']")
    tab.check(f"#trace-collections input[value='{LAB}']")
    tab.fill("#trace-mutations", "C241T,C3037T,A23403G")
    tab.fill("#trace-k", str(K))
    _traced(tab)
    lab = Collection.open(store, LAB)
    (want,) = nearest(store, [lab], [calls_from_mutations("C241T,C3037T,A23403G", lab.reference())],
                      k=K)  # fmt: skip
    strains = tab.locator("#trace-table tbody td:nth-child(2)").all_inner_texts()
    assert strains == [n["strain"] for n in want["neighbours"]] and len(strains) >= K
    assert set(tab.locator("#trace-table tbody td:nth-child(7)").all_inner_texts()) == {LAB}
    assert "sandgrain strains tree -c lab" in tab.inner_text("#trace-no-tree")
    assert "sandgrain strains map --collection lab" in tab.inner_text("#trace-map-note")


def test_bad_input_is_an_error_message_not_a_crash(tab, tmp_path):
    # the form opens with an example (lineage B.1's mutations); with nothing to trace, it says so
    assert tab.input_value("#trace-mutations") == "C241T,C3037T,C14408T,A23403G"
    tab.fill("#trace-mutations", "")
    tab.click("#trace-go")
    assert "Paste a genome" in tab.inner_text("#trace-error")
    tab.fill("#trace-fasta", "this is not a genome")
    tab.click("#trace-go")
    tab.wait_for_function("() => /FASTA/.test(document.querySelector('#trace-error').textContent)")
    assert tab.locator("#trace-results").is_hidden()
    tab.fill("#trace-fasta", "")
    tab.fill("#trace-mutations", "C241T,nonsense")
    tab.click("#trace-go")
    tab.wait_for_function(
        "() => /nonsense/.test(document.querySelector('#trace-error').textContent)"
    )
    # an uploaded file fills the box
    f = tmp_path / "up.fa"
    f.write_text(f">up\n{genomes()[0][1]}\n")
    tab.set_input_files("#trace-file", str(f))
    tab.wait_for_function("() => document.querySelector('#trace-fasta').value.startsWith('>up')")
    assert tab.input_value("#trace-mutations") == ""


def test_the_map_page_and_the_menu_link_here(tab, server):  # noqa: F811
    tab.goto(f"{server}/strains/{DEMO_COLLECTION}")
    assert tab.get_attribute("#strains-trace-link", "href") == f"/strains/{DEMO_COLLECTION}/trace"
    tab.click("#strains-trace-link")
    tab.wait_for_selector("#trace-form")
    assert tab.is_checked(f"#trace-collections input[value='{DEMO_COLLECTION}']")
    assert not tab.is_checked(f"#trace-collections input[value='{LAB}']")
    assert tab.locator("header nav a[href='/strains/trace']").count() == 1
    tab.goto(f"{server}/strains/nope/trace")
    assert "no collection 'nope'" in tab.inner_text("#trace-missing")
