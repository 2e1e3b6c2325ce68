"""The Path Beacon's profile, placement and projection routes: each answers as the library call
does (profile search, parsimony placement with its local subtree, projection on the stored k-mer
map); a collection the caller may only count gives a floored count and nothing else; every user
mistake is a problem+json 4xx, an oversized body a 413 before it is parsed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_strains_api import strains_demo_store
from test_strains_nearest_api import PROBLEM, genomes

from sandgrain.strains.access import MIN_COUNT, set_access
from sandgrain.strains.collection import Collection, add_genomes
from sandgrain.strains.demo import DEMO_COLLECTION
from sandgrain.strains.embed import load_map
from sandgrain.strains.kmers import KmerSpace
from sandgrain.strains.placement import place_calls, subtree_svg
from sandgrain.strains.profile import profile_search
from sandgrain.strains.query import calls_from_mutations, calls_from_sequences
from sandgrain.strains.tree import build_tree, load_tree
from sandgrain.web.strains_paths import MAX_BODY

API = "/api/v1/strains"
LAB = "lab"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The demo collection with its map and a tree of 40 genomes, and a controlled collection of
    20 shared genomes under new ids (no map, no tree)."""
    store = strains_demo_store(tmp_path_factory.mktemp("trace-api"))
    build_tree(store, Collection.open(store, DEMO_COLLECTION), sample=40, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "lab.fa"
        f.write_text("".join(f">lab{i}\n{s}\n" for i, (_, s) in enumerate(genomes()[:20])))
        add_genomes(store, LAB, reference="sars-cov-2", fasta=f, executor="serial")
    set_access(store, LAB, "controlled", ["alice"])
    return store


@pytest.fixture(scope="module")
def client(beacon_client):
    return beacon_client


def _plain(doc: dict) -> dict:
    """The answer as JSON has it, without its provenance (which holds the time)."""
    return {k: v for k, v in json.loads(json.dumps(doc)).items() if k != "provenance"}


def _with_n_run(seq: str, start: int = 20000, length: int = 500) -> str:
    return seq[:start] + "N" * length + seq[start + length :]


def test_profile_answers_as_the_library_does(client, store):
    coll = Collection.open(store, DEMO_COLLECTION)
    for expression, by, similar in [
        ("C241T & A23403G", ["month", "country"], False),
        ("(S:D614G | C14408T) & !G25563T", ["week", "region"], True),
    ]:
        body = {"collections": [DEMO_COLLECTION], "expression": expression, "by": by,
                "similar": similar}  # fmt: skip
        r = client.post(f"{API}/profile", json=body)
        assert r.status_code == 200, r.text
        want = profile_search([coll], expression, by=by, similar=similar)
        assert _plain(r.json()) == _plain(want)
        assert r.json()["provenance"]["command"] == "strains profile"
        assert "counts_only" not in r.json()
    got = client.post(
        f"{API}/profile", json={"collections": [DEMO_COLLECTION], "expression": "A23403G"}
    ).json()
    assert got["count"] > 0 and [r["month"] for r in got["by"]["month"]][0] == "2019-12"


def test_place_answers_as_the_library_does_with_the_subtree_drawn(client, store):
    coll = Collection.open(store, DEMO_COLLECTION)
    stored = load_tree(store, DEMO_COLLECTION)
    leaf = sorted(stored.leaves)[5]
    seq = dict(genomes())[leaf]
    fasta = f">mine\n{_with_n_run(seq)}\n>other\n{genomes()[300][1]}\n"
    r = client.post(
        f"{API}/place", json={"collection": DEMO_COLLECTION, "fasta": fasta, "nearest": 8}
    )
    assert r.status_code == 200, r.text
    got = r.json()["answers"]
    queries = list(
        calls_from_sequences(coll, [("mine", _with_n_run(seq)), ("other", genomes()[300][1])])
    )
    assert len(got) == 2
    for answer, calls in zip(got, queries, strict=True):
        placement, want, local = place_calls(stored, calls, nearest=8)
        svg = answer.pop("subtree_svg")
        assert answer == json.loads(json.dumps(want))
        title = f"{calls.strain} placed on the tree of {DEMO_COLLECTION}"
        assert svg == subtree_svg(local, placement.query, title=title)
        assert svg.lstrip().startswith("<svg") and "mine" in got[0]["subtree_newick"]
    # the same genome with an N run sits on its own leaf's branch at no cost
    assert got[0]["parsimony"] == 0 and leaf in got[0]["neighbours"]
    by_mutations = client.post(
        f"{API}/place", json={"collection": DEMO_COLLECTION, "mutations": "C241T,A23403G"}
    ).json()["answers"][0]
    _, want, _ = place_calls(stored, calls_from_mutations("C241T,A23403G", coll.reference()))
    assert {k: v for k, v in by_mutations.items() if k != "subtree_svg"} == json.loads(
        json.dumps(want)
    )
    assert r.json()["provenance"]["inputs"][0]["version"] == stored.version


def test_a_genome_with_an_n_run_lands_beside_its_full_self(client, store):
    build = load_map(store, DEMO_COLLECTION)
    row = {s: i for i, s in enumerate(build.strains)}
    name, seq = genomes()[7]
    gapped = seq[:12000] + "N" * 400 + seq[12400:]
    r = client.post(f"{API}/project", json={"collection": DEMO_COLLECTION,
                                             "fasta": f">gapped\n{gapped}\n"})  # fmt: skip
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["queries"][0]["coords"][:2])
    spread = np.linalg.norm(build.coords[:, :2].std(0))
    assert np.linalg.norm(got - build.coords[row[name], :2]) < 0.05 * spread


def test_project_puts_a_known_genome_where_the_map_has_it(client, store):
    coll = Collection.open(store, DEMO_COLLECTION)
    build = load_map(store, DEMO_COLLECTION)
    row = {s: i for i, s in enumerate(build.strains)}
    names = [genomes()[7][0], genomes()[250][0]]
    seqs = dict(genomes())
    fasta = "".join(f">{n}\n{seqs[n]}\n" for n in names)
    r = client.post(f"{API}/project", json={"collection": DEMO_COLLECTION, "fasta": fasta})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["map_version"] == build.info["version"]
    assert [a["name"] for a in body["axes"][:2]] == ["PC1", "PC2"]
    for point, name in zip(body["queries"], names, strict=True):
        # the map never moves: a genome of the collection projects onto its stored coordinates
        assert np.allclose(point["coords"], build.coords[row[name]], atol=1e-9)
        assert (point["x"], point["y"]) == (point["coords"][0], point["coords"][1])
    # a mutation list is projected by the map's own components, as embed's functions do it
    calls = calls_from_mutations("C241T,A23403G,del:11288-11296", coll.reference())
    profile = build.info["profile"]
    assert profile["missing"] == "reference"  # a new map reads N runs as the reference
    space = KmerSpace(coll.reference(), profile["k"], profile["canonical"], profile["missing"])
    want = build.kmap.project(space.deltas([calls]))[0]
    got = client.post(
        f"{API}/project",
        json={"collection": DEMO_COLLECTION, "mutations": "C241T,A23403G,del:11288-11296"},
    ).json()["queries"][0]
    assert np.allclose(got["coords"], want) and got["query"] == "query"
    # an N run leaves the query near its genome (its k-mers there are unknown, not different)
    n_run = client.post(
        f"{API}/project",
        json={"collection": DEMO_COLLECTION, "fasta": f">q\n{_with_n_run(seqs[names[0]])}\n"},
    ).json()["queries"][0]
    spread = np.ptp(build.coords[:, 0])
    assert abs(n_run["x"] - build.coords[row[names[0]], 0]) < 0.2 * spread


def test_a_controlled_collection_gives_a_floored_count_only(client, store, idp):
    expression = "C241T"
    q = {"collections": [DEMO_COLLECTION, LAB], "expression": expression}
    anon = client.post(f"{API}/profile", json=q)
    assert anon.status_code == 200, anon.text
    body = anon.json()
    own = profile_search([Collection.open(store, LAB)], expression, by=())
    (counts,) = body["counts_only"]
    assert counts == {
        "collection": LAB,
        "access": "counts",
        "count": own["count"] if own["count"] >= MIN_COUNT else f"<{MIN_COUNT}",
    }
    # the visible part is the public collection's answer alone: no breakdown holds lab's genomes
    want = profile_search([Collection.open(store, DEMO_COLLECTION)], expression)
    assert _plain({k: v for k, v in body.items() if k != "counts_only"}) == _plain(want)
    assert "lab0" not in anon.text
    # a rare profile in lab alone: the count is floored, nothing else is said
    only = client.post(
        f"{API}/profile",
        json={"collections": [LAB], "expression": "C241T & !C241T | ins:1:A", "by": ["country"]},
    ).json()
    assert only["counts_only"] == [{"collection": LAB, "access": "counts", "count": "<5"}]
    assert only["count"] == 0 and only["by"] == {"country": []} and only["histogram"] == []
    alice = {"Authorization": f"Bearer {idp.token('alice')}"}
    seen = client.post(f"{API}/profile", json=q, headers=alice).json()
    assert "counts_only" not in seen
    assert {c["collection"] for c in seen["collections"]} == {DEMO_COLLECTION, LAB}
    # placement and projection show genomes' places: refused without full access
    for path in ("place", "project"):
        r = client.post(f"{API}/{path}", json={"collection": LAB, "mutations": "C241T"})
        assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
        assert "counts only" in r.json()["detail"]
    # with access, the missing tree and map are named with the commands that build them
    r = client.post(f"{API}/place", json={"collection": LAB, "mutations": "C241T"}, headers=alice)
    assert r.status_code == 404 and "sandgrain strains tree --collection lab" in r.json()["detail"]
    r = client.post(f"{API}/project", json={"collection": LAB, "mutations": "C241T"}, headers=alice)
    assert r.status_code == 404 and "sandgrain strains map --collection lab" in r.json()["detail"]


C = DEMO_COLLECTION


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("profile", {"collections": [C]}, 400, "expression is a mutation profile"),
        ("profile", {"collections": [C], "expression": "A23403G &"}, 400, ""),
        ("profile", {"collections": [C], "expression": "Q1Z"}, 400, ""),
        ("profile", {"collections": [C], "expression": "C241T", "by": ["planet"]}, 400, "planet"),
        ("profile", {"collections": [C], "expression": "C241T", "by": "month"}, 400, "by is a"),
        ("profile", {"collections": [C], "expression": "C241T", "similar": 1}, 400, "similar"),
        ("profile", {"collections": [C], "expression": "C241T", "qc": ["ok"]}, 400, "QC"),
        ("profile", {"collections": [C, C], "expression": "C241T"}, 400, "named twice"),
        ("profile", {"collections": ["nope"], "expression": "C241T"}, 404, "no collection"),
        ("profile", {"collections": [C], "expression": "C241T", "evil": 1}, 400, "unknown field"),
        ("place", {"collection": C}, 400, "fasta (text) or as mutations"),
        ("place", {"collection": C, "mutations": "C241T", "fasta": ">a\nA"}, 400, "one of them"),
        ("place", {"collection": C, "mutations": "C241T", "nearest": 0}, 400, "nearest is"),
        ("place", {"collection": C, "fasta": "not a genome"}, 400, "not FASTA"),
        ("place", {"collection": ["x"], "mutations": "C241T"}, 400, "collection is the name"),
        ("place", {"collection": "nope", "mutations": "C241T"}, 404, "no collection"),
        ("project", {"collection": C, "mutations": "Z1Q"}, 400, "not a nucleotide mutation"),
        ("project", {"collection": C, "fasta": 7}, 400, "fasta is the text"),
        ("project", {"collection": C, "fasta": ">a\nACGT\n" * 51}, 400, "at most 50"),
        ("project", {"collection": C, "mutations": "C241T", "k": 3}, 400, "unknown field"),
    ],
)
def test_mistakes_are_problem_details(client, path, body, status, words):
    r = client.post(f"{API}/{path}", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM) and words in r.json()["detail"]


@pytest.mark.parametrize("path", ["profile", "place", "project"])
def test_a_body_over_the_limit_or_not_json_is_refused(client, path):
    r = client.post(
        f"{API}/{path}", content=b"{" + b" " * (MAX_BODY + 10) + b"}",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert r.status_code == 413 and r.headers["content-type"].startswith(PROBLEM)
    for content in (b"not json", b"[1, 2]"):
        r = client.post(
            f"{API}/{path}", content=content, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM)
