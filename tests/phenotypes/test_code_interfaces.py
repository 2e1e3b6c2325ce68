"""``sandgrain phenotypes code`` and ``/api/v1/phenotypes/code|terms``: the same findings as
the library, the issue's JSON shape, one-line errors and problem details for bad input."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.testclient import TestClient

from sandgrain.phenotypes.coder import MAX_TEXT, code_text
from sandgrain.phenotypes.domain import DOMAIN
from sandgrain.web.phenotypes import MAX_BODY

NOTE = "She lost her sense of smell; no fever. Mother has seizures."
API = "/api/v1/phenotypes"
PROBLEM = "application/problem+json"


def _without_provenance(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "provenance"}


def test_cli_codes_one_note_as_the_library_does(cli):
    code, out, err = cli("phenotypes", "code", NOTE)
    assert code == 0, err
    doc = json.loads(out)
    assert _without_provenance(doc) == _without_provenance(code_text(NOTE).to_dict())
    assert doc["present"][0] == {
        "id": "HP:0000458",
        "label": "Anosmia",
        "text": "lost her sense of smell",
        "start": 4,
        "end": 27,
    }
    assert [m["id"] for m in doc["family_history"]] == ["HP:0001250"]
    assert doc["provenance"]["parameters"]["hpo_version"]
    assert doc["provenance"]["inputs"][0]["sha256"]


def test_cli_file_one_note_per_line_or_whole(cli, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("fever and cough\n\nno fever\nSOB\n", encoding="utf-8")
    code, out, err = cli("phenotypes", "code", "--file", path)
    assert code == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["note"] for d in docs] == [1, 2, 3]
    assert [m["id"] for m in docs[1]["negated"]] == ["HP:0001945"]
    code, out, err = cli("phenotypes", "code", "--file", path, "--whole")
    (doc,) = [json.loads(line) for line in out.splitlines()]
    assert {m["id"] for m in doc["present"]} == {"HP:0001945", "HP:0012735", "HP:0002094"}
    assert doc["negated"][0]["start"] == len("fever and cough\n\n") + 3


def test_cli_tsv(cli):
    code, out, err = cli("phenotypes", "code", NOTE, "--format", "tsv")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("# {") and lines[1].split("\t") == [
        "note", "context", "id", "label", "text", "start", "end",
    ]  # fmt: skip
    rows = [line.split("\t") for line in lines[2:]]
    assert ["1", "present", "HP:0000458", "Anosmia", "lost her sense of smell", "4", "27"] in rows
    assert {r[1] for r in rows} == {"present", "negated", "family_history"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("phenotypes", "code"), "give the note as TEXT or as --file"),
        (("phenotypes", "code", "x", "--file", "y"), "one of them"),
        (("phenotypes", "code", "fever", "--format", "xml"), "--format is json or tsv"),
        (("phenotypes", "code", "--file", "/no/such/file"), "no such file"),
    ],
)
def test_cli_bad_input_is_one_line(cli, args, message):
    code, out, err = cli(*args)
    assert code != 0 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_rejects_a_note_too_long(cli, tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("a" * (MAX_TEXT + 1), encoding="utf-8")
    code, _, err = cli("phenotypes", "code", "--file", path)
    assert code != 0 and "longer than" in err


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from sandgrain.config import Settings
    from sandgrain.web.app import create_app

    home = tmp_path_factory.mktemp("phenotypes-web")
    settings = Settings(home=str(home), executor="serial")
    domain = dataclasses.replace(DOMAIN, routers=("sandgrain.web.phenotypes:router",))
    with TestClient(create_app(settings, domains=[domain])) as c:
        yield c


def test_api_code_one_text(client):
    r = client.post(f"{API}/code", json={"text": NOTE})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert _without_provenance(doc) == _without_provenance(code_text(NOTE).to_dict())
    assert doc["provenance"]["parameters"]["hpo_version"]


def test_api_code_many_texts(client):
    r = client.post(f"{API}/code", json={"texts": ["fever", "no cough"]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["present"][0]["id"] == "HP:0001945"
    assert results[1]["negated"][0]["id"] == "HP:0012735"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (json.dumps({"text": 5}).encode(), 400),
        (json.dumps({"text": "a", "texts": ["b"]}).encode(), 400),
        (json.dumps({"txt": "a"}).encode(), 400),
        (json.dumps({"text": "a" * (MAX_TEXT + 1)}).encode(), 400),
        (b'{"text": "' + b"a" * MAX_BODY + b'"}', 413),
    ],
)
def test_api_bad_bodies_are_problems(client, body, status):
    r = client.post(f"{API}/code", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)


def test_api_term_autocomplete(client):
    r = client.get(f"{API}/terms", params={"q": "ano"})
    assert r.status_code == 200, r.text
    terms = r.json()["terms"]
    assert terms and all(
        t["match"].lower().startswith("ano") or "ano" in t["match"].lower() for t in terms
    )
    assert "HP:0000458" in [t["id"] for t in terms]
    anosmia = next(t for t in terms if t["id"] == "HP:0000458")
    assert anosmia["path"][0]["id"] == "HP:0000001" and anosmia["path"][-1]["id"] == "HP:0000458"
    by_synonym = client.get(f"{API}/terms", params={"q": "loss of smell"}).json()["terms"]
    assert by_synonym[0]["id"] == "HP:0000458"
    by_id = client.get(f"{API}/terms", params={"q": "HP:0000458"}).json()["terms"]
    assert [t["id"] for t in by_id] == ["HP:0000458"]


def test_api_term_lookup(client):
    r = client.get(f"{API}/terms/HP:0000458")
    assert r.status_code == 200
    doc = r.json()
    assert doc["label"] == "Anosmia" and doc["parents"][0]["id"] == "HP:0004408"
    assert {"text": "Loss of smell", "scope": "EXACT", "type": ""} in doc["synonyms"]
    missing = client.get(f"{API}/terms/HP:9999999")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM)
    assert client.get(f"{API}/terms", params={"q": ""}).status_code == 422
