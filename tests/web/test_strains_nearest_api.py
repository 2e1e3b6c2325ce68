"""The Path Beacon's REST routes: nearest strains by FASTA or mutation list, equal to the library
call; access tiers (counts only without access, floored); problem details for bad requests and
oversized bodies."""

from __future__ import annotations

import json

import pytest
from conftest import DATA
from test_strains_api import strains_demo_store

from sandgrain.strains.access import set_access
from sandgrain.strains.collection import Collection
from sandgrain.strains.demo import DEMO_COLLECTION
from sandgrain.strains.nearest import nearest
from sandgrain.strains.query import calls_from_mutations, calls_from_sequences
from sandgrain.web.strains_paths import MAX_BODY

API = "/api/v1/strains"
_GENOMES: list = []


def genomes() -> list[tuple[str, str]]:
    """The 418 shared genomes, read once."""
    from sandgrain.strains.collection import read_fasta

    if not _GENOMES:
        path = DATA / "pathogen/sars-cov-2-ncov-example/example_sequences.fasta.gz"
        _GENOMES.extend(read_fasta(path))
    return _GENOMES


PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return strains_demo_store(tmp_path_factory.mktemp("nearest-api"))


@pytest.fixture(scope="module")
def client(beacon_client):
    return beacon_client


def test_fasta_and_mutations_answer_as_the_library_does(client, store):
    coll = Collection.open(store, DEMO_COLLECTION)
    (n1, s1), (_, s2) = genomes()[3], genomes()[200]
    fasta = f">a\n{s1}\n>b\n{s2[:20000]}{'N' * 500}{s2[20500:]}\n"
    r = client.post(
        f"{API}/nearest", json={"collections": [DEMO_COLLECTION], "fasta": fasta, "k": 5}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    want = nearest(
        store,
        [coll],
        list(calls_from_sequences(coll, [("a", s1), ("b", s2[:20000] + "N" * 500 + s2[20500:])])),
        k=5,
    )
    assert body["answers"] == json.loads(json.dumps(want))
    assert body["answers"][0]["neighbours"][0]["strain"] == n1
    assert body["provenance"]["inputs"][0]["source"].startswith(f"strains/{DEMO_COLLECTION}@")
    r = client.get(
        f"{API}/{DEMO_COLLECTION}/nearest", params={"mutations": "C241T,A23403G", "k": 3}
    )
    assert r.status_code == 200, r.text
    want = nearest(store, [coll], [calls_from_mutations("C241T,A23403G", coll.reference())], k=3)
    assert r.json()["answers"] == json.loads(json.dumps(want))


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"collections": ["nope"], "mutations": "C241T"}, 404, "no collection 'nope'"),
        ({"collections": [DEMO_COLLECTION]}, 400, "fasta (text) or as mutations"),
        (
            {"collections": [DEMO_COLLECTION], "mutations": "C241T", "k": 0},
            400,
            "k is a whole number",
        ),
        ({"collections": [DEMO_COLLECTION], "mutations": "Z1Q"}, 400, "not a nucleotide mutation"),
        ({"collections": [DEMO_COLLECTION], "fasta": "ACGT"}, 400, "not FASTA text"),
        ({"collections": [DEMO_COLLECTION], "fasta": ">a\nACGT\n" * 51}, 400, "at most 50"),
        ({"collections": [DEMO_COLLECTION], "fasta": ">a\nACGT\n"}, 400, "4 unambiguous bases"),
        ({"collections": [DEMO_COLLECTION], "fasta": ">p\nMEEPQSD\n"}, 400, "not a nucleotide"),
        ({"collections": "x", "mutations": "C241T"}, 400, "collections is a list"),
        ({"collections": [DEMO_COLLECTION], "mutations": "C241T", "evil": 1}, 400, "unknown field"),
        (
            {"collections": [DEMO_COLLECTION], "mutations": "C241T", "distance": "x"},
            400,
            "distance is one of",
        ),
    ],
)
def test_bad_requests_are_problem_details(client, body, status, words):
    r = client.post(f"{API}/nearest", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM) and words in r.json()["detail"]


def test_a_body_over_the_limit_is_refused_unread(client):
    r = client.post(
        f"{API}/nearest", content=b"{" + b" " * (MAX_BODY + 10) + b"}",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 413 and r.headers["content-type"].startswith(PROBLEM)
    r = client.post(
        f"{API}/nearest", content=b"not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400


def test_controlled_collection_gives_counts_only_without_access(client, store, idp):
    # a second, controlled collection: 20 of the shared genomes under new ids
    import tempfile
    from pathlib import Path

    from sandgrain.genome.store import add_genome  # noqa: F401  (the demo store has the genome)
    from sandgrain.strains.collection import add_genomes

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "lab.fa"
        f.write_text("".join(f">lab{i}\n{s}\n" for i, (_, s) in enumerate(genomes()[:20])))
        add_genomes(store, "lab", reference="sars-cov-2", fasta=f, executor="serial")
    set_access(store, "lab", "controlled", ["alice"])
    q = {"collections": [DEMO_COLLECTION, "lab"], "fasta": f">q\n{genomes()[0][1]}\n", "k": 4}
    anon = client.post(f"{API}/nearest", json=q).json()["answers"][0]
    assert {n["collection"] for n in anon["neighbours"]} == {DEMO_COLLECTION}
    (counts,) = anon["counts_only"]
    assert counts["collection"] == "lab" and counts["access"] == "counts"
    # lab0 is the query itself (distance 0), alone: a count under 5 is never shown
    assert counts["genomes_by_distance"][0] == "<5"
    assert "lab0" not in json.dumps(anon)
    bob = client.post(
        f"{API}/nearest", json=q, headers={"Authorization": f"Bearer {idp.token('bob')}"}
    )
    assert "lab0" not in bob.text and bob.json()["answers"][0]["counts_only"]
    alice = client.post(
        f"{API}/nearest", json=q, headers={"Authorization": f"Bearer {idp.token('alice')}"}
    )
    first = alice.json()["answers"][0]["neighbours"][0]
    assert (first["collection"], first["distance"]) in {("lab", 0), (DEMO_COLLECTION, 0)}
    assert "counts_only" not in alice.json()["answers"][0]
    assert "lab0" in alice.text
    bad = client.post(f"{API}/nearest", json=q, headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    set_access(store, "lab", "public")


def test_a_controlled_collections_map_genomes_and_drift_need_access(client, store, idp):
    set_access(store, DEMO_COLLECTION, "controlled", ["alice"])
    try:
        routes = ("map", f"genomes/{genomes()[0][0]}", "drift")
        for route in routes:
            anon = client.get(f"{API}/{DEMO_COLLECTION}/{route}")
            assert anon.status_code == 401 and anon.headers["content-type"].startswith(PROBLEM)
            bob = client.get(
                f"{API}/{DEMO_COLLECTION}/{route}",
                headers={"Authorization": f"Bearer {idp.token('bob')}"},
            )
            assert bob.status_code == 403, route
            alice = client.get(
                f"{API}/{DEMO_COLLECTION}/{route}",
                headers={"Authorization": f"Bearer {idp.token('alice')}"},
            )
            assert alice.status_code == 200, route
    finally:
        set_access(store, DEMO_COLLECTION, "public")
    assert client.get(f"{API}/{DEMO_COLLECTION}/map").status_code == 200
