"""Placement by maximum parsimony: every branch's cost equals a brute force that inserts the query
there and scores the whole tree again (random trees, and FastTree's tree of shared genomes);
ties, private mutations, adding genomes, the local tree and its drawing; the commands."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET

import pytest
import typer
from parsimony_reference import (
    brute_force_placements,
    evolve,
    make_collection,
    random_tree,
    tree_score,
)
from strains_fixtures import genomes

from sandgrain.errors import InputError, NotFoundError
from sandgrain.strains.collection import Collection
from sandgrain.strains.placement import (
    add_to_tree,
    branch_costs,
    local_subtree,
    nearest_leaves,
    place,
    place_calls,
    subtree_svg,
)
from sandgrain.strains.query import calls_from_mutations, calls_from_sequences
from sandgrain.strains.tree import (
    BASES,
    Leaf,
    StoredTree,
    assign_ancestral,
    build_tree,
    leaf_from_calls,
    load_tree,
    parse_newick,
    write_newick,
)


def random_query(rng, leaves, reference) -> Leaf:
    """A tree genome with a few changes, or with a stretch unknown."""
    base = rng.choice(list(leaves.values()))
    subs = dict(base.substitutions)
    for _ in range(rng.randrange(0, 4)):
        p, b = rng.randrange(1, len(reference) + 1), rng.choice(BASES)
        if b == reference[p - 1]:
            subs.pop(p, None)
        else:
            subs[p] = b
    holes = []
    if rng.random() < 0.4:
        a = rng.randrange(1, len(reference) - 5)
        holes = [(a, a + rng.randrange(0, 5))]
    leaf = Leaf({}, holes)
    leaf.substitutions = {p: b for p, b in subs.items() if not leaf.is_unknown(p)}
    return leaf


def test_branch_costs_equal_the_brute_force_on_random_trees():
    rng = random.Random(3)
    for _ in range(150):
        reference = "".join(rng.choice(BASES) for _ in range(25))
        tree = random_tree(rng, rng.randrange(3, 12))
        leaves = evolve(rng, tree, reference)
        assign_ancestral(tree, leaves, reference)
        stored = StoredTree(tree, leaves, reference, {})
        query = random_query(rng, leaves, reference)
        costs = branch_costs(stored, query)
        assert costs == brute_force_placements(tree, leaves, reference, "Q", query)
        chosen = place(stored, query, "Q")
        best = min(costs.values())
        assert chosen.parsimony == best == costs[chosen.node]
        assert chosen.ties == sum(c == best for c in costs.values())
        assert set(chosen.tied_nodes) == {n for n, c in costs.items() if c == best}
        assert len(chosen.private_mutations) == chosen.parsimony


def test_missing_data_in_the_query_is_not_informative():
    rng = random.Random(9)
    reference = "".join(rng.choice(BASES) for _ in range(30))
    tree = random_tree(rng, 8)
    leaves = evolve(rng, tree, reference, unknown=0)
    assign_ancestral(tree, leaves, reference)
    stored = StoredTree(tree, leaves, reference, {})
    blind = Leaf({}, [(1, 30)])
    assert set(branch_costs(stored, blind).values()) == {0}
    assert place(stored, blind).ties == len(tree) - 1


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = make_collection(tmp_path_factory.mktemp("place"))
    build_tree(store, Collection.open(store, "ncov"), sample=30, seed=0)
    return store


def test_branch_costs_on_fasttrees_tree_of_shared_genomes(store):
    stored = load_tree(store, "ncov")
    coll = Collection.open(store, "ncov")
    on_tree = set(stored.tree.leaf_names())
    others = [(n, s) for n, s in genomes()[60:120]][:40]
    queries = [c for c in calls_from_sequences(coll, others) if not c.error][:3]
    assert len(queries) == 3
    for calls in queries:
        leaf = leaf_from_calls(calls)
        want = brute_force_placements(stored.tree, stored.leaves, stored.reference, "Q", leaf)
        assert branch_costs(stored, leaf) == want
    # a genome of the tree goes back next to itself at no cost
    member = next(iter(sorted(on_tree)))
    placed = place(stored, stored.leaves[member], "copy")
    assert placed.parsimony == 0 and placed.private_mutations == []


def test_adding_genomes_keeps_the_tree_and_stays_most_parsimonious(store):
    stored = load_tree(store, "ncov")
    coll = Collection.open(store, "ncov")
    new = [c for c in calls_from_sequences(coll, genomes()[120:160]) if not c.error][:4]
    ds, placements = add_to_tree(store, stored, new)
    grown = load_tree(store, "ncov")
    assert grown.version == ds.manifest["version"] != stored.version
    assert set(grown.tree.leaf_names()) == set(stored.tree.leaf_names()) | {c.strain for c in new}
    assert ds.meta["previous_version"] == stored.version
    assert ds.meta["added"][-1]["genomes"] == [c.strain for c in new]
    assert ds.meta["parsimony"] == tree_score(grown.tree, grown.leaves, grown.reference)
    assert ds.meta["parsimony"] <= stored.meta["parsimony"] + sum(p.parsimony for p in placements)
    for calls in new:  # each added genome now sits on the tree at no cost
        assert place(grown, leaf_from_calls(calls)).parsimony == 0
    with pytest.raises(InputError, match="already on the tree"):
        add_to_tree(store, grown, new[:1])


def test_local_tree_and_its_drawing(store):
    stored = load_tree(store, "ncov")
    calls = calls_from_mutations("C241T,C3037T,A23403G,G29000A", stored.reference, "mine")
    placement, answer, local = place_calls(stored, calls, nearest=6)
    assert answer["query"] == "mine" and answer["parsimony"] == placement.parsimony
    assert "A29000" not in answer["private_mutations"]
    assert "G29000A" in answer["private_mutations"]
    assert len(answer["neighbours"]) == 6
    assert answer["neighbour_mutations"] == sorted(answer["neighbour_mutations"])
    assert sorted(local.leaf_names()) == sorted(["mine", *answer["neighbours"]])
    assert sorted(
        n.name
        for n in __import__("sandgrain.strains.tree", fromlist=["x"])
        .parse_newick(answer["subtree_newick"])
        .leaves()
    ) == sorted(local.leaf_names())
    svg = subtree_svg(local, "mine", title="mine")
    root = ET.fromstring(svg)
    texts = {t.text: t.attrib for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert texts["mine"]["fill"] == "#d62728" and set(texts) == set(local.leaf_names())
    assert "<script" not in svg


def test_nearest_leaves_are_by_path_mutations():
    tree = parse_newick("((a,b)x,(c,(d,q)y)z)r;")
    lengths = {"a": 1, "b": 4, "x": 2, "c": 1, "z": 1, "d": 3, "y": 0, "q": 2}
    for node in tree.preorder():
        node.mutations = [(i, "A", "C") for i in range(lengths.get(node.name, 0))]
    q = tree.nodes_by_name()["q"]
    assert nearest_leaves(tree, q, 3) == [("c", 3), ("d", 5), ("a", 6)]
    sub = local_subtree(tree, ["q", "c", "d"])
    assert write_newick(sub, internal_names=False) == "(c:1,(d:3,q:2):0);"


# -- the commands ----------------------------------------------------------------------------


@pytest.fixture
def cli(store, tmp_path):
    """``strains tree`` and ``strains place`` mounted as the strains CLI mounts them."""
    from typer.testing import CliRunner

    from sandgrain.cli import strains_tree
    from sandgrain.config import Settings

    root = typer.Typer()

    @root.callback()
    def settings(ctx: typer.Context) -> None:
        ctx.obj = Settings.from_env({}, store_url=store.url)

    root.command("tree")(strains_tree.tree_cmd)
    root.command("place")(strains_tree.place_cmd)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(root, [str(a) for a in args], catch_exceptions=True)

    return run


def test_tree_and_place_commands(cli, store, tmp_path):
    built = cli("tree", "--collection", "ncov", "--sample", "30", "--seed", "2", "--json")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["seed"] == 2
    fasta = tmp_path / "q.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in genomes()[200:202]))
    svg = tmp_path / "local.svg"
    placed = cli("place", "-c", "ncov", "--fasta", fasta, "--nearest", "5", "--svg", svg)
    assert placed.exit_code == 0, placed.output
    rows = [json.loads(line) for line in placed.stdout.splitlines()]
    assert [r["query"] for r in rows] == [genomes()[200][0], genomes()[201][0]]
    for r in rows:
        assert set(r) >= {"query", "node", "parsimony", "ties", "private_mutations",
                          "subtree_newick", "neighbours", "provenance"}  # fmt: skip
        assert len(r["neighbours"]) == 5
    assert ET.fromstring(svg.read_text()).tag.endswith("svg")
    newick = cli("place", "-c", "ncov", "--mutations", "C241T,A23403G", "--format", "newick")
    assert newick.exit_code == 0 and newick.stdout.strip().endswith(";")
    before = load_tree(store, "ncov")
    added = cli("place", "-c", "ncov", "--fasta", fasta, "--add")
    assert added.exit_code == 0, added.output
    after = load_tree(store, "ncov")
    assert len(after.tree.leaves()) == len(before.tree.leaves()) + 2


def test_bad_input_to_the_commands(cli, tmp_path):
    unknown = cli("place", "-c", "nope", "--mutations", "C241T")
    assert isinstance(unknown.exception, NotFoundError) and "no collection 'nope'" in str(
        unknown.exception
    )
    both = cli("place", "-c", "ncov")
    assert isinstance(both.exception, InputError)
    bad_fmt = cli("place", "-c", "ncov", "--mutations", "C241T", "--format", "xml")
    assert isinstance(bad_fmt.exception, InputError)
    wrong = cli("place", "-c", "ncov", "--mutations", "A241T")
    assert isinstance(wrong.exception, InputError) and "reference has C" in str(wrong.exception)
    nwk = tmp_path / "t.nwk"
    nwk.write_text("(a,b,c);")
    unknown_leaves = cli("tree", "-c", "ncov", "--newick", nwk)
    assert isinstance(unknown_leaves.exception, InputError)
    nwk.write_text("(a,b,c)")
    malformed = cli("tree", "-c", "ncov", "--newick", nwk)
    assert "malformed Newick" in str(malformed.exception)


def test_no_tree_yet_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from sandgrain.cli import strains_tree
    from sandgrain.config import Settings

    store = make_collection(tmp_path, n_genomes=5)
    root = typer.Typer()

    @root.callback()
    def settings(ctx: typer.Context) -> None:
        ctx.obj = Settings.from_env({}, store_url=store.url)

    root.command("place")(strains_tree.place_cmd)
    root.command("tree")(strains_tree.tree_cmd)
    got = CliRunner().invoke(root, ["place", "-c", "ncov", "--mutations", "C241T"])
    assert isinstance(got.exception, NotFoundError) and "has no tree yet" in str(got.exception)
