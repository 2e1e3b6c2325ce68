"""The strains REST routes on the 418 shared SARS-CoV-2 genomes (the demo collection and its map):
the map's columns checked point by point against the stored map, metadata and QC; paging; a
genome's calls against the collection's; the drift fit against :mod:`sandgrain.strains.drift`
called directly; problem details for unknown names and bad parameters; the payload per genome."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import re

import numpy as np
import pytest
import schemathesis
from conftest import DATA
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from sandgrain.config import Settings
from sandgrain.genome.store import add_genome, demo_genomes
from sandgrain.registry import DemoContext
from sandgrain.storage import Store
from sandgrain.strains.collection import Collection
from sandgrain.strains.demo import DEMO_COLLECTION, DEMO_REFERENCE, demo
from sandgrain.strains.drift import fit_drift, root_distances
from sandgrain.strains.embed import load_map
from sandgrain.web.app import create_app
from sandgrain.web.models import NAME_PATTERN
from sandgrain.web.strains import _codes

PROBLEM = "application/problem+json"
API = "/api/v1/strains"


def strains_demo_store(path) -> Store:
    """A store with SARS-CoV-2 and the strains demo collection with its map (~4 s)."""
    store = Store(str(path / "store"))
    (sars,) = [d for d in demo_genomes(DATA) if d.name == DEMO_REFERENCE]
    add_genome(store, sars.name, sars.fasta, annotation=sars.annotation, aliases=sars.aliases,
               assembly=sars.assembly)  # fmt: skip

    @contextlib.contextmanager
    def progress(_label):
        yield lambda done, total: None

    ctx = DemoContext(
        store=store, data=DATA, settings=Settings(home=str(path), executor="serial"),
        progress=progress, byte_progress=progress, echo=lambda line: None,
    )  # fmt: skip
    demo(ctx)
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return strains_demo_store(tmp_path_factory.mktemp("strains-api"))


@pytest.fixture(scope="module")
def client(store, tmp_path_factory):
    home = tmp_path_factory.mktemp("strains-api-home")
    app = create_app(Settings(home=str(home), store_url=store.url, executor="serial"))
    with TestClient(app) as c:
        yield c


def test_collections_lists_the_demo_collection(client, store):
    body = client.get(f"{API}/collections").json()
    (only,) = body
    coll = Collection.open(store, DEMO_COLLECTION)
    assert only["collection"] == DEMO_COLLECTION and only["genomes"] == 418
    assert only["has_map"] is True and only["reference"] == DEMO_REFERENCE
    assert sum(only["statuses"].values()) == 418
    assert only["version"] == coll.dataset.manifest["version"]


def test_map_columns_match_the_stored_map_metadata_and_qc(client, store):
    r = client.get(f"{API}/{DEMO_COLLECTION}/map")
    assert r.status_code == 200
    page = r.json()
    built = load_map(store, DEMO_COLLECTION)
    coll = Collection.open(store, DEMO_COLLECTION)
    assert page["total"] == page["count"] == 418 and page["next_offset"] is None
    cols = page["columns"]
    assert cols["strain"] == built.strains
    np.testing.assert_allclose(cols["x"], built.coords[:, 0], atol=1e-5)
    np.testing.assert_allclose(cols["y"], built.coords[:, 1], atol=1e-5)
    meta = {row["strain"]: row for row in coll.metadata().to_pylist()}
    qc = dict(zip(*(coll.qc_table().column(c).to_pylist() for c in ("strain", "status")),
                  strict=True))  # fmt: skip
    cats = page["categories"]
    origin = dt.date.fromisoformat(page["date_origin"])
    for k, strain in enumerate(cols["strain"]):
        row = meta[strain]
        day = cols["day"][k]
        if len(row["date"]) == 10 and "X" not in row["date"]:
            assert (origin + dt.timedelta(days=day)).isoformat() == row["date"]
        else:
            assert day is None
        assert cats["country"][cols["country"][k]] == (row["country"] or "unknown")
        assert cats["region"][cols["region"][k]] == (row["region"] or "unknown")
        assert cats["qc"][cols["qc"][k]] == qc[strain]
    days = [d for d in cols["day"] if d is not None]
    assert page["days"] == [min(days), max(days)]
    assert page["bounds"]["x"] == pytest.approx(
        [built.coords[:, 0].min(), built.coords[:, 0].max()]
    )
    ratio = store.open_dataset("strainmaps", DEMO_COLLECTION).meta["explained_variance_ratio"]
    assert [a["explained_variance_ratio"] for a in page["axes"]] == pytest.approx(ratio[:2])
    # the most frequent country gets code 0
    counts = np.bincount(cols["country"])
    assert counts[0] == counts.max()


def test_map_pages_add_up_to_the_whole_map(client):
    whole = client.get(f"{API}/{DEMO_COLLECTION}/map").json()["columns"]
    got: dict[str, list] = {name: [] for name in whole}
    offset, pages = 0, 0
    while offset is not None:
        page = client.get(f"{API}/{DEMO_COLLECTION}/map", params={"offset": offset, "limit": 100})
        body = page.json()
        assert body["offset"] == offset and body["count"] <= 100 and body["total"] == 418
        for name, values in body["columns"].items():
            got[name].extend(values)
        offset, pages = body["next_offset"], pages + 1
    assert pages == 5 and got == whole
    beyond = client.get(f"{API}/{DEMO_COLLECTION}/map", params={"offset": 5000}).json()
    assert beyond["count"] == 0 and beyond["columns"]["strain"] == []


def test_map_payload_is_compact(client):
    r = client.get(f"{API}/{DEMO_COLLECTION}/map")
    per_genome = len(r.content) / 418
    # columns with dictionary-coded places: well under the ~600 bytes of one JSON object per
    # genome with its metadata (measured: ~55 bytes a genome, ~20 gzipped)
    assert per_genome < 80, per_genome
    assert len(gzip.compress(r.content)) / 418 < 30
    as_objects = json.dumps(
        [dict(zip(r.json()["columns"], row, strict=True))
         for row in zip(*r.json()["columns"].values(), strict=True)]
    )  # fmt: skip
    assert len(r.content) < 0.7 * len(as_objects)


def test_genome_returns_its_calls_qc_and_metadata(client, store):
    coll = Collection.open(store, DEMO_COLLECTION)
    strain = "Wuhan/WH01/2019"  # a name with slashes, as most are
    expected = coll.calls(strain).to_dict()
    for path in (strain, strain.replace("/", "%2F")):
        r = client.get(f"{API}/{DEMO_COLLECTION}/genomes/{path}")
        assert r.status_code == 200, r.text
        body = r.json()
        for key in ("substitutions", "deletions", "insertions", "missing", "aa_substitutions",
                    "aa_deletions", "frame_shifts", "stop_codons", "qc"):  # fmt: skip
            assert body[key] == expected[key], key
        assert body["metadata"]["country"] == "China" and body["metadata"]["date"] == "2019-12-26"
    # a genome with mutations
    strains = coll.strains()
    busy = max(strains[:60], key=lambda s: len(coll.calls(s).substitutions))
    body = client.get(f"{API}/{DEMO_COLLECTION}/genomes/{busy}").json()
    assert body["substitutions"] and body["substitutions"] == coll.calls(busy).substitutions


def test_drift_matches_the_drift_module(client, store):
    r = client.get(f"{API}/{DEMO_COLLECTION}/drift")
    assert r.status_code == 200, r.text
    body = r.json()
    coll = Collection.open(store, DEMO_COLLECTION)
    meta = coll.metadata()
    dates = dict(zip(meta.column("strain").to_pylist(), meta.column("date").to_pylist(),
                     strict=True))  # fmt: skip
    # by default the genomes that pass QC (good or mediocre), as `strains drift` counts them
    qc = coll.qc_table()
    kept = [s for s, st in zip(qc["strain"].to_pylist(), qc["status"].to_pylist(), strict=True)
            if st != "bad"]  # fmt: skip
    assert body["qc_left_out"] == len(qc) - len(kept) > 0
    found = root_distances(lambda: coll.iter_calls(batch=100, strains=kept), dates)
    fit = fit_drift(found["years"], found["distance"], genome_length=len(coll.reference()))
    assert body["n"] == fit.n == len(body["points"]["strain"]) == len(kept)
    everyone = client.get(f"{API}/{DEMO_COLLECTION}/drift", params={"qc": "all"}).json()
    assert everyone["n"] == len(qc) and everyone["qc_left_out"] == 0
    bad = client.get(f"{API}/{DEMO_COLLECTION}/drift", params={"qc": "great"})
    assert bad.status_code == 400 and "qc" in bad.json()["detail"]
    assert body["rate"] == pytest.approx(fit.rate)
    assert body["rate_ci"] == pytest.approx(list(fit.rate_ci))
    assert body["rate_ci"][0] < body["rate"] < body["rate_ci"][1]
    assert [w["n"] for w in body["windows"]] == [w["n"] for w in fit.windows]
    assert body["points"]["distance"] == found["distance"].tolist()
    assert body["published_clock"]["substitutions_per_site_per_year"] == 8e-4
    assert body["provenance"]["parameters"]["root"] == "reference"
    earliest = client.get(f"{API}/{DEMO_COLLECTION}/drift", params={"root": "earliest"}).json()
    found = root_distances(lambda: coll.iter_calls(batch=100, strains=kept), dates,
                           root="earliest")  # fmt: skip
    assert earliest["root"] == "earliest"
    assert earliest["root_substitutions"] == found["root_substitutions"]
    assert earliest["points"]["distance"] == found["distance"].tolist()


def test_drift_sends_an_even_spread_of_points_when_asked_for_fewer(client):
    whole = client.get(f"{API}/{DEMO_COLLECTION}/drift").json()
    assert whole["points_total"] == whole["n"] == len(whole["points"]["strain"])
    few = client.get(f"{API}/{DEMO_COLLECTION}/drift", params={"max_points": 50}).json()
    assert few["points_total"] == whole["n"] and len(few["points"]["strain"]) == 50
    assert few["rate"] == whole["rate"]  # the fit still uses every genome
    index = {s: i for i, s in enumerate(whole["points"]["strain"])}
    rows = [index[s] for s in few["points"]["strain"]]
    assert rows == sorted(rows) and rows[0] == 0 and rows[-1] == whole["n"] - 1
    assert [whole["points"]["distance"][i] for i in rows] == few["points"]["distance"]


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"{API}/nope/map", 404),
        (f"{API}/nope/drift", 404),
        (f"{API}/nope/genomes/Wuhan/Hu-1/2019", 404),
        (f"{API}/{DEMO_COLLECTION}/genomes/no-such-genome", 404),
        (f"{API}/{DEMO_COLLECTION}/map?limit=0", 422),
        (f"{API}/{DEMO_COLLECTION}/map?offset=-1", 422),
        (f"{API}/{DEMO_COLLECTION}/drift?root=tip", 422),
        (f"{API}/{DEMO_COLLECTION}/drift?window_days=0", 422),
        (f"{API}/bad%20name/map", 422),
    ],
)
def test_errors_are_problem_details(client, url, status):
    r = client.get(url)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status and body["detail"]


def test_a_collection_without_map_is_404_with_what_to_do(client, store):
    from sandgrain.strains.embed import update_map

    store.delete_dataset("strainmaps", DEMO_COLLECTION)
    try:
        r = client.get(f"{API}/{DEMO_COLLECTION}/map")
        assert r.status_code == 404 and "strains map --collection" in r.json()["detail"]
        listed = client.get(f"{API}/collections").json()
        assert listed[0]["has_map"] is False
    finally:
        update_map(store, Collection.open(store, DEMO_COLLECTION))
    assert client.get(f"{API}/{DEMO_COLLECTION}/map").status_code == 200


def test_pages_render_and_the_home_page_links_them(client):
    page = client.get("/strains")
    assert page.status_code == 200
    assert 'id="strains-canvas"' in page.text and "/static/strains.js" in page.text
    assert f'"collection":"{DEMO_COLLECTION}"' in page.text
    assert client.get(f"/strains/{DEMO_COLLECTION}").status_code == 200
    missing = client.get("/strains/nope")
    assert missing.status_code == 404 and "no collection" in missing.text
    assert 'href="/strains"' in client.get("/").text
    for asset in ("/static/strains.js", "/static/strains.css"):
        assert client.get(asset).status_code == 200


def test_codes_encode_most_frequent_first():
    names, codes = _codes(["b", "a", None, "b", "?", "c", "b", ""])
    assert names[0] == "b" and set(names) == {"a", "b", "c", "unknown"}
    assert [names[c] for c in codes] == ["b", "a", "unknown", "b", "unknown", "c", "b", "unknown"]


# the strains routes fuzzed from the app's own OpenAPI schema, on the demo collection
_schema_app = create_app(Settings(home="/nonexistent", store_url="memory://openapi-strains"))
schema = schemathesis.openapi.from_dict(_schema_app.openapi()).include(
    path_regex=r"^/api/v1/strains"
)
schema.config.checks.positive_data_acceptance.expected_statuses = ["2xx", "400", "404"]


@pytest.fixture(scope="module")
def schemathesis_app(store, tmp_path_factory):
    home = tmp_path_factory.mktemp("strains-schemathesis-home")
    yield create_app(Settings(home=str(home), store_url=store.url, executor="serial"))
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis(case, schemathesis_app):
    name = (case.path_parameters or {}).get("collection")
    if name is not None and re.fullmatch(NAME_PATTERN, name):
        # random valid names are all 404 (tested above): the demo collection's name instead
        # reaches the routes' own checks; invalid names stay, to be refused
        case.path_parameters["collection"] = DEMO_COLLECTION
    response = case.call_and_validate(app=schemathesis_app)
    assert response.status_code < 500, response.text
