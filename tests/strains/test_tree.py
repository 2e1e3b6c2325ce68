"""A collection's tree: Newick in and out, ancestral substitutions by parsimony (checked against
plain Fitch and against trying every assignment), FastTree on shared genomes, the store."""

from __future__ import annotations

import random

import pytest
from parsimony_reference import (
    evolve,
    exhaustive_site,
    make_collection,
    mpr_states,
    random_tree,
    state,
    tree_score,
)

from sandgrain.errors import InputError, NotFoundError
from sandgrain.strains.collection import Collection
from sandgrain.strains.tree import (
    BASES,
    Leaf,
    assign_ancestral,
    build_tree,
    leaf_from_calls,
    load_tree,
    parse_newick,
    write_newick,
)


def test_newick_round_trip():
    text = "((A/x/2020:1,'b c''d':2.5)[a comment]inner:3,(C,D)0.95,E_f);"
    tree = parse_newick(text)
    assert tree.leaf_names() == ["A/x/2020", "b c'd", "C", "D", "E_f"]
    assert [n.name for n in tree.preorder() if not n.is_leaf] == ["", "inner", "0.95"]
    written = write_newick(tree)
    assert written == "((A/x/2020:1,'b c''d':2.5)inner:3,(C,D)0.95,E_f);"
    assert write_newick(parse_newick(written)) == written
    assert (
        write_newick(tree, lengths=False, internal_names=False)
        == "((A/x/2020,'b c''d'),(C,D),E_f);"
    )
    assert write_newick(parse_newick("only;")) == "only;"


def test_random_trees_round_trip():
    rng = random.Random(5)
    for _ in range(30):
        tree = random_tree(rng, rng.randrange(2, 40), max_children=4)
        for node in tree.preorder():
            node.length = rng.choice([None, 0.0, 1.0, 0.125])
        text = write_newick(tree)
        again = parse_newick(text)
        assert write_newick(again) == text
        assert len(again) == len(tree)


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        ("((a,b);", "expected ','"),
        ("(a,b)", "does not end with ';'"),
        ("(a,,b);", "without a name"),
        ("(a,b);(c,d);", "one tree only"),
        ("(a,b:x);", "not a number"),
        ("(a b,c);", "unexpected 'b'"),
        ("('a,b);", "unclosed quoted"),
        ("(a,b)[x;", "unclosed [comment]"),
    ],
)
def test_malformed_newick_is_refused(text, why):
    with pytest.raises(InputError, match="Newick") as err:
        parse_newick(text)
    assert why in str(err.value)


def test_leaf_characters_from_calls():
    from sandgrain.strains.mutations import Calls

    calls = Calls("x", substitutions=["C10T", "A20G"], deletions=["del:30-32"],
                  insertions=["ins:40:GG"], missing=["1-5", "19-21"], mixed=["G50R"])  # fmt: skip
    leaf = leaf_from_calls(calls)
    assert leaf.substitutions == {10: "T"}  # A20G lies in a missing range
    assert leaf.unknown == [(1, 5), (19, 21), (30, 32), (50, 50)]
    assert Leaf.from_json(leaf.to_json()) == leaf


def random_case(rng, n_leaves, length=25):
    reference = "".join(rng.choice(BASES) for _ in range(length))
    tree = random_tree(rng, n_leaves)
    return reference, tree, evolve(rng, tree, reference)


def test_ancestral_states_are_most_parsimonious():
    """The score equals plain Fitch/Hartigan per site and the least over every assignment; the
    stored mutations rebuild every leaf's known bases and add up to the score."""
    rng = random.Random(7)
    for trial in range(60):
        reference, tree, leaves = random_case(rng, rng.randrange(3, 7 if trial < 30 else 25))
        score = assign_ancestral(tree, leaves, reference)
        assert score == tree_score(tree, leaves, reference) == tree.parsimony()
        if len(tree) <= 9:
            assert score == tree_score(tree, leaves, reference, exhaustive_site)
        for node in tree.leaves():
            genome = {}
            path = []
            walker = node
            while walker is not None:
                path.append(walker)
                walker = walker.parent
            for n in reversed(path):
                genome.update({p: b for p, _, b in n.mutations})
            for p in {p for lf in leaves.values() for p in lf.substitutions}:
                known = state(leaves[node.name], p, reference)
                if known is not None:
                    assert genome.get(p, reference[p - 1]) == known


def test_ambiguous_states_are_the_other_mpr_states():
    """A node's stored base plus its ``ambiguous`` states are exactly the bases it has in some
    most parsimonious assignment (found by trying them all)."""
    rng = random.Random(11)
    checked = 0
    for _ in range(40):
        reference, tree, leaves = random_case(rng, rng.randrange(3, 6), length=15)
        if len(tree) > 8:
            continue
        assign_ancestral(tree, leaves, reference)
        sites = sorted({p for lf in leaves.values() for p in lf.substitutions})
        names = [n.name for n in tree.leaves()]
        for p in sites:
            truth = mpr_states(tree, {s: state(leaves[s], p, reference) for s in names})
            for node in tree.preorder():
                genome = reference[p - 1]
                walker, path = node, []
                while walker is not None:
                    path.append(walker)
                    walker = walker.parent
                for n in reversed(path):
                    genome = next((b for q, _, b in n.mutations if q == p), genome)
                mine = {genome} | {
                    b for i, b in enumerate(BASES) if node.ambiguous.get(p, 0) >> i & 1
                }
                assert mine == truth[node.name], (p, node.name)
                checked += 1
    assert checked > 200


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_collection(tmp_path_factory.mktemp("tree"))


def test_fasttree_on_shared_genomes_is_stored_and_read_back(store):
    coll = Collection.open(store, "ncov")
    ds = build_tree(store, coll, sample=30, seed=1)
    meta = ds.meta
    assert meta["method"] == "fasttree" and meta["tool"]["program"] == "FastTree"
    assert meta["tool"]["version"].startswith("2.")
    assert meta["collection_version"] == coll.dataset.manifest["version"]
    assert meta["sample"] == 30 and meta["seed"] == 1
    assert ds.manifest["provenance"]["parameters"]["sampled"] == meta["leaves"] <= 30
    stored = load_tree(store, "ncov")
    passing = {s for s, st in zip(coll.qc_table()["strain"].to_pylist(),
                                  coll.qc_table()["status"].to_pylist(), strict=True)
               if st in ("good", "mediocre")}  # fmt: skip
    assert set(stored.tree.leaf_names()) <= passing
    assert stored.tree.parsimony() == meta["parsimony"]
    assert meta["parsimony"] == tree_score(stored.tree, stored.leaves, stored.reference)
    # the same sample and seed: the same tree
    first = ds.read_bytes("tree.nwk")
    again = build_tree(store, coll, sample=30, seed=1)
    assert again.read_bytes("tree.nwk") == first


def test_a_newick_given_by_the_user(store, tmp_path):
    coll = Collection.open(store, "ncov")
    names = coll.strains()[:6]
    path = tmp_path / "t.nwk"
    path.write_text(f"(({names[0]},{names[1]}),({names[2]},'{names[3]}'),{names[4]},{names[5]});")
    ds = build_tree(store, coll, newick=path)
    stored = load_tree(store, "ncov")
    assert ds.meta["method"] == "newick" and sorted(stored.tree.leaf_names()) == sorted(names)
    assert ds.meta["parsimony"] == tree_score(stored.tree, stored.leaves, stored.reference)
    path.write_text(f"(({names[0]},nobody),{names[2]});")
    with pytest.raises(InputError, match="not genomes of collection 'ncov': nobody"):
        build_tree(store, coll, newick=path)
    path.write_text(f"(({names[0]},{names[1]}),{names[2]}")
    with pytest.raises(InputError, match="malformed Newick"):
        build_tree(store, coll, newick=path)
    with pytest.raises(InputError, match="no such file"):
        build_tree(store, coll, newick=tmp_path / "absent.nwk")


def test_no_tree_yet(tmp_path):
    from sandgrain.storage import Store

    with pytest.raises(NotFoundError, match="has no tree yet"):
        load_tree(Store(str(tmp_path / "s")), "ncov")
