"""The registry: every domain's references resolve, kinds are unique, and a new domain is picked
up by the CLI, the web app, the job manager and ``demo`` without touching an interface file."""

from __future__ import annotations

import json
import time

import example_domain  # noqa: I001  (tests/architecture is on sys.path)
import pytest
from conftest import DATA
from fastapi.testclient import TestClient

from sandgrain import registry
from sandgrain.cli import build_app
from sandgrain.config import SettingsSection
from sandgrain.web.app import create_app


def test_builtin_domains_are_registered_in_order():
    assert [d.name for d in registry.domains()][:3] == ["genome", "guides", "beacon"]


@pytest.mark.parametrize("domain", registry.domains(), ids=lambda d: d.name)
def test_every_reference_resolves(domain):
    for reference in registry.references(domain):
        assert registry.resolve(reference) is not None, reference
    if domain.settings:
        assert issubclass(registry.resolve(domain.settings), SettingsSection)


def test_kinds_are_claimed_once():
    kinds = registry.dataset_kinds()
    assert kinds["genomes"] == "genome" and kinds["siteindex"] == "guides"
    assert kinds["beacon"] == "beacon"


def test_a_kind_claimed_twice_is_refused():
    twice = registry.Domain(name="twice", summary="", job_kinds={"genome.composition": "x:y"})
    services = registry.Services(settings=None, store=None, genome=lambda n: None)
    with pytest.raises(TypeError, match="registered twice"):
        registry.job_handlers(services, registry.domains() + (twice,))


def test_bad_references_and_names_are_refused():
    with pytest.raises(Exception, match="module:attribute"):
        registry.resolve("no-colon")
    with pytest.raises(Exception, match="lower-case identifier"):
        registry.Domain(name="Bad Name", summary="")


def test_entry_points_add_domains(monkeypatch):
    class EntryPoint:
        value = "example_domain:DOMAIN"

    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()])
    registry.domains.cache_clear()
    try:
        assert registry.get("example") is example_domain.DOMAIN
    finally:
        registry.domains.cache_clear()


def test_a_new_domain_reaches_the_cli(demo_store, settings, capsys):
    from typer.testing import CliRunner

    app = build_app(registry.domains() + (example_domain.DOMAIN,))
    runner = CliRunner()
    helped = runner.invoke(app, ["--help"])
    assert "example" in helped.output
    result = runner.invoke(app, ["--store", demo_store.url, "example", "gc", "sars-cov-2",
                                 "NC_045512.2"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "0.3797"  # SARS-CoV-2 GC content, 37.97 %


def test_a_new_domain_adds_its_demo_step(demo_store, tmp_path):
    from typer.testing import CliRunner

    from sandgrain.genome.domain import DOMAIN as GENOME

    app = build_app((GENOME, example_domain.DOMAIN))  # guides and beacon demos not needed here
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["--store", str(store), "--executor", "serial", "demo",
                                      "--data", str(DATA), "-q"])
    assert result.exit_code == 0, result.output
    assert (store / "results/example/demo.txt").read_text() == "0.3797"
    assert "example: GC of the demo SARS-CoV-2 genome stored" in result.output


def test_a_new_domain_reaches_the_web_app_and_the_job_manager(demo_store, settings):
    settings = settings.with_(store_url=demo_store.url)
    app = create_app(settings, domains=registry.domains() + (example_domain.DOMAIN,))
    closed = example_domain.Counter.closed
    with TestClient(app) as client:
        assert isinstance(app.state.example, example_domain.Counter)
        r = client.get("/api/example/gc/sars-cov-2/NC_045512.2")
        assert r.status_code == 200 and round(r.json()["gc"], 4) == 0.3797
        assert "/api/example/gc/{genome}/{chrom}" in client.get("/openapi.json").json()["paths"]
        # its page is on the home page, not in the navigation
        home = client.get("/").text
        card = '<a class="tool-link" href="/api/example/gc/sars-cov-2/NC_045512.2">GC content</a>'
        assert card in home and "SARS-CoV-2&#39;s NC_045512.2." in home
        assert home.count('href="/api/example/gc/sars-cov-2/NC_045512.2"') == 1
        manager = app.state.manager
        job = manager.submit("example.gc", {"genome": "sars-cov-2", "chrom": "NC_045512.2"})
        for _ in range(200):
            done = app.state.jobs.get(job.id)
            if done.status in ("done", "failed"):
                break
            time.sleep(0.05)
        assert done.status == "done", done.error
        assert demo_store.read_bytes(done.result) == b"0.3797"
    assert example_domain.Counter.closed == closed + 1


def test_pages_link_within_the_app_and_are_declared_once():
    with pytest.raises(registry.InputError, match="links within the app"):
        registry.Page("https://example.org/", "Out", "leaves the app", "none")
    with pytest.raises(registry.InputError, match="links within the app"):
        registry.Page("/x", "X", "x", "x", links=(("elsewhere", "//example.org/"),))
    page = registry.Page("/x", "X", "x", "x")
    assert page.url == "/x" and registry.Page("/x", "X", "x", "x", href="/x?a=1").url == "/x?a=1"
    one = registry.Domain(name="one", summary="", pages=(page,))
    two = registry.Domain(name="two", summary="", pages=(page,))
    assert registry.pages([one]) == (page,)
    with pytest.raises(TypeError, match="page /x is declared twice"):
        registry.pages([one, two])


def test_the_builtin_app_has_no_example(settings):
    with TestClient(create_app(settings)) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith("/api/example") for p in paths)
    assert json.dumps(sorted(paths)).count("/api/beacon") > 5


def test_capabilities_resolve_from_the_domain_that_provides_them():
    from sandgrain.phenotypes import integration

    assert registry.capability("clinical-text.features") is integration.phenotypic_features
    assert registry.capability("clinical-text.code-columns") is integration.code_columns


def test_a_missing_or_doubly_provided_capability_is_refused():
    from sandgrain.errors import ConflictError, NotFoundError

    with pytest.raises(NotFoundError, match="'no-such.thing'"):
        registry.capability("no-such.thing")
    copy = registry.Domain(
        name="copycat", summary="", provides={"clinical-text.features": "json:dumps"}
    )
    with pytest.raises(ConflictError, match="phenotypes and copycat"):
        registry.capability("clinical-text.features", registry.domains() + (copy,))
    # without the phenotypes domain, the copy is the provider
    others = tuple(d for d in registry.domains() if d.name != "phenotypes") + (copy,)
    assert registry.capability("clinical-text.features", others) is json.dumps
