"""The phenotypes page without a browser: ``/phenotypes`` is served with its example note, its own
script and style sheet and nothing else; and the FHIR and Phenopacket routes with an explicit term
list (``"terms"``, the shape ``/code`` returns), as the page sends its edited list: the list
replaces the coding of the text, labels come from the ontology, and a bad list is a 400
problem+json naming what is wrong. The page in chromium: ``test_phenotypes_page.py``."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from sandgrain.config import Settings
from sandgrain.phenotypes.fhir import HPO_SYSTEM
from sandgrain.web.app import create_app
from sandgrain.web.phenotypes_page import EXAMPLE_NOTE

API = "/api/v1/phenotypes"
FEVER, ANOSMIA, DIARRHEA = "HP:0001945", "HP:0000458", "HP:0002014"


def _observations(bundle: dict) -> dict[str, dict]:
    """The Bundle validated with the fhir.resources R4B models; its HPO Observations by code."""
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
    out = {}
    for entry in bundle["entry"]:
        r = entry["resource"]
        coding = r.get("code", {}).get("coding", [{}])[0]
        if r["resourceType"] == "Observation" and coding.get("system") == HPO_SYSTEM:
            out[coding["code"]] = r
    return out


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    home = tmp_path_factory.mktemp("phenotypes-terms-api")
    app = create_app(Settings(home=str(home), store_url=str(home / "store"), executor="serial"))
    with TestClient(app) as c:
        yield c


NOTE = "Lost his sense of smell, denies fever."


def test_the_page_is_served_with_its_own_assets_only(client):
    page = client.get("/phenotypes")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert EXAMPLE_NOTE in page.text
    assert '<a href="/phenotypes" aria-current="page">' in page.text  # the menu marks it
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    outside = [a for a in assets if not a.startswith("/") or a.startswith("//")]
    assert outside == [], outside
    for asset in ("/static/phenotypes.js", "/static/phenotypes.css"):
        assert any(a.startswith(asset) for a in assets)
        assert client.get(asset).status_code == 200


def test_an_explicit_term_list_replaces_the_coding_of_the_text(client):
    coded = client.post(f"{API}/code", json={"text": NOTE}).json()
    assert [m["id"] for m in coded["present"]] == [ANOSMIA]
    terms = {**coded, "present": [*coded["present"], {"id": DIARRHEA}]}  # as /code gave, + one
    r = client.post(f"{API}/fhir", json={"patient": "P1", "text": NOTE, "terms": terms})
    assert r.status_code == 200, r.text
    obs = _observations(r.json())
    assert obs[DIARRHEA]["valueBoolean"] is True and obs[FEVER]["valueBoolean"] is False
    assert obs[DIARRHEA]["code"]["coding"][0]["display"] == "Diarrhea"  # the ontology's label
    r = client.post(f"{API}/fhir", json={"patient": "P1", "text": NOTE, "terms": {}})
    assert _observations(r.json()) == {}  # an empty list is no term, not the text's terms
    body = {"patient": "P1", "text": NOTE, "terms": {"negated": [{"id": ANOSMIA}]}}
    r = client.post(f"{API}/phenopacket", json=body)
    assert r.json()["phenotypicFeatures"] == [
        {"type": {"id": ANOSMIA, "label": "Anosmia"}, "excluded": True}
    ]


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ([], "terms is"),
        ({"colour": []}, "terms is"),
        ({"present": {"id": FEVER}}, "terms is"),
        ({"present": [FEVER]}, "an object with an HPO id"),
        ({"present": [{"id": "HP:9999999"}]}, "not a current HPO term"),
        ({"present": [{"id": FEVER, "colour": "red"}]}, "id, text, start and end only"),
        ({"present": [{"id": FEVER, "start": 5}]}, "offsets in the text"),
        ({"present": [{"id": FEVER, "start": 30, "end": 99}]}, "offsets in the text"),
        ({"present": [{"id": FEVER, "text": "cough", "start": 32, "end": 37}]}, "is not 'cough'"),
        ({"present": [{"id": FEVER}] * 1001}, "at most 1,000 terms"),
    ],
)
def test_a_bad_term_list_is_problem_json(client, terms, message):
    r = client.post(f"{API}/fhir", json={"patient": "P1", "text": NOTE, "terms": terms})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    assert message in r.json()["detail"]
