"""The home page (``/``): a card for every page the registered domains offer, each opening with
its real example, on a store made by the domains' own demo steps from the shared data.

The store is every domain's demo step but the guides' (the SpCas9 site index of yeast, which no
page needs in order to open: the design form opens on the genome and gene without it), about
20 s. Over HTTP: every registered page is linked from ``/`` and from the navigation, answers 200
and carries its example; an old link to the design form (``/?gene=…``) goes to ``/guides`` with
its query. In Debian's chromium: ``/`` is opened, each card's link followed, and the page seen
to load with its example (the gene in the form, the 418 genomes drawn, the note, the hipster
analysis chosen, the demo read set called into its VCF records, the Beacon's answer).
"""

from __future__ import annotations

import contextlib
import gzip
import html
import json
from urllib.parse import urlparse

import pytest
from conftest import DATA
from fastapi.testclient import TestClient
from test_strains_page import TIMEOUT_MS, browser  # noqa: F401  (the browser fixture)
from test_strains_page import pytestmark as BROWSER_MARKS

from sandgrain import registry
from sandgrain.association.demo import DEMO_EXAMPLE
from sandgrain.calling.demo import DEMO_READSET
from sandgrain.config import Settings
from sandgrain.phenotypes.domain import DOMAIN as PHENOTYPES
from sandgrain.registry import DemoContext
from sandgrain.storage import Store
from sandgrain.testing.web import live_server
from sandgrain.web.app import create_app
from sandgrain.web.phenotypes_page import EXAMPLE_NOTE
from sandgrain.web.strains_trace import EXAMPLE_MUTATIONS

if not (DATA / "reads").is_dir():
    pytest.skip(f"no shared data at {DATA}", allow_module_level=True)

#: The demo steps the store is made with (see the module docstring).
SKIPPED_DEMOS = ("guides",)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Settings:
    path = tmp_path_factory.mktemp("home-page")
    settings = Settings(home=str(path), executor="serial")

    @contextlib.contextmanager
    def progress(*_):
        yield lambda *a: None

    ctx = DemoContext(
        store=Store.from_settings(settings), data=DATA, settings=settings, progress=progress,
        byte_progress=progress, echo=lambda line: None,
    )  # fmt: skip
    for domain in registry.domains():
        if domain.demo and domain.name not in SKIPPED_DEMOS:
            registry.resolve(domain.demo)(ctx)
            ctx.done.append(domain.name)
    return settings


@pytest.fixture(scope="module")
def client(home):
    with TestClient(create_app(home)) as c:
        yield c


def test_every_registered_page_is_on_the_home_page_and_answers(client):
    pages = registry.pages()
    # every domain that serves pages to people declares them, and the registry's order is kept
    assert [p.path for p in pages] == [
        "/guides", "/api/beacon/info", "/strains", "/strains/trace", "/phenotypes",
        "/association", "/calling",
    ]  # fmt: skip
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    text = html.unescape(r.text)
    nav = text.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    for page in pages:
        assert f'href="{page.url}"' in text, page.path
        assert page.title in text and page.summary in text and page.example in text
        for _, href in page.links:
            assert f'href="{href}"' in text
            assert client.get(href).status_code == 200, href
        assert (f'href="{page.path}"' in nav) == page.nav, page.path
        answer = client.get(page.url)
        assert answer.status_code == 200, (page.url, answer.text[:200])
    assert 'href="/docs"' in text and client.get("/docs").status_code == 200
    # no page of a domain left out of the app is shown
    with TestClient(create_app(client.app.state.settings, domains=[PHENOTYPES])) as alone:
        only = alone.get("/").text
    assert 'href="/phenotypes"' in only and 'href="/strains"' not in only


def test_each_page_answers_with_its_example(client):
    # the design form offers yeast, and ADE2 is a yeast gene (the form fills it from the query)
    guides = client.get("/guides?genome=yeast&gene=ADE2").text
    assert '<option value="yeast"' in guides
    gene = client.get("/api/v1/genomes/yeast/genes/ADE2").json()
    assert gene["gene_id"] == "YOR128C", gene
    strains = client.get("/strains").text
    assert '"collection":"ncov-example"' in strains
    trace = client.get("/strains/trace").text
    assert f'value="{EXAMPLE_MUTATIONS}"' in trace
    assert html.escape(EXAMPLE_NOTE, quote=False) in client.get("/phenotypes").text
    association = client.get("/association").text
    assert json.dumps(DEMO_EXAMPLE, separators=(",", ":")) in association
    calling = client.get("/calling").text
    assert f'<option value="{DEMO_READSET}" selected>' in calling
    # the Beacon's example query is answered by the demo datasets: the allele is there
    (beacon,) = [p for p in registry.pages() if p.path == "/api/beacon/info"]
    query = dict(beacon.links)["Example query"]
    doc = client.get(query).json()
    assert doc["responseSummary"]["exists"] is True, doc


def test_an_old_link_to_the_design_form_still_opens_it(client):
    r = client.get("/?genome=yeast&gene=ADE2", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/guides?genome=yeast&gene=ADE2"
    assert client.get("/?gene=URA3").url.path == "/guides"


# -- in the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(home):
    with live_server(create_app(home), "uvicorn-home") as url:
        yield url


def _loaded_with_example(tab, path: str) -> None:
    """The page at ``path`` (reached from its card) shows its example."""
    if path == "/guides":
        tab.wait_for_selector("#design-form")
        assert tab.input_value("#gene") == "ADE2" and tab.input_value("#genome") == "yeast"
    elif path == "/api/beacon/info":
        doc = json.loads(tab.inner_text("body"))
        assert doc["meta"]["beaconId"] and doc["response"]["id"] == doc["meta"]["beaconId"]
    elif path == "/strains":
        tab.wait_for_selector("#strains-canvas[data-ready='1']")
        assert tab.get_attribute("#strains-canvas", "data-drawn") == "418"
    elif path == "/strains/trace":
        assert tab.input_value("#trace-mutations") == EXAMPLE_MUTATIONS
        tab.click("#trace-go")
        tab.wait_for_selector("#trace-table tbody tr")
        assert tab.locator("#trace-table tbody tr").count() >= 10
    elif path == "/phenotypes":
        assert tab.input_value("#ph-note") == EXAMPLE_NOTE
    elif path == "/association":
        tab.wait_for_function("() => document.querySelector('#as-trait').value === 'label'")
        assert tab.input_value("#as-genotypes") == DEMO_EXAMPLE["genotypes"]
    elif path == "/calling":
        assert tab.input_value("#calling-readset") == DEMO_READSET
        assert "HG00100, HG00101, HG00102" in tab.inner_text("#calling-about")
        tab.click("#calling-go")
        tab.wait_for_selector("#calling-results[data-ready='1']", timeout=60_000)
        # the table is the VCF's records, the download link the VCF
        href = tab.get_attribute("#calling-download", "href")
        vcf = tab.evaluate(
            "(u) => fetch(u).then((r) => r.arrayBuffer())"
            ".then((b) => Array.from(new Uint8Array(b)))",
            href,
        )
        lines = gzip.decompress(bytes(vcf)).decode().splitlines()
        records = [ln.split("\t") for ln in lines if not ln.startswith("#")]
        assert len(records) >= 5
        rows = tab.locator("#calling-table tbody tr")
        assert rows.count() == len(records)
        first = rows.first.locator("td").all_inner_texts()
        assert first[:4] == [records[0][0], f"{int(records[0][1]):,}", records[0][3],
                             records[0][4]]  # fmt: skip
        assert "job=" in tab.url
    else:
        raise AssertionError(f"no example check for the page {path}: add one here")


def _browser_test(fn):
    for mark in BROWSER_MARKS:  # slow, and skipped where there is no chromium
        fn = mark(fn)
    return fn


@_browser_test
def test_the_home_page_reaches_every_tool_with_its_example(browser, server):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    tab.on("request", lambda r: requests.append(r.url))
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{server}/")
    cards = tab.locator(".tool .tool-link")
    pages = registry.pages()
    assert cards.count() == len(pages) + 1  # and the API docs
    for i, page in enumerate(pages):
        tab.goto(f"{server}/")
        link = tab.locator(".tool .tool-link").nth(i)
        assert link.inner_text() == page.title
        link.click()
        tab.wait_for_load_state()
        assert urlparse(tab.url).path == page.path
        _loaded_with_example(tab, page.path)
    tab.goto(f"{server}/")
    tab.locator(".tool .tool-link").last.click()
    tab.wait_for_selector(".swagger-ui .opblock-tag")
    assert tab.locator(".opblock-tag", has_text="beacon").count() >= 1
    here = urlparse(server).netloc
    assert [u for u in requests if urlparse(u).netloc not in (here, "")] == []
    assert errors == []
    context.close()
