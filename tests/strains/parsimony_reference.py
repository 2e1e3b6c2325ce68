"""Slow, obviously correct twins of the tree code: parsimony by Fitch/Hartigan sets per site in
plain Python, parsimony by trying every ancestral assignment, placement by inserting the query
on each branch and scoring the whole tree again, and random trees with genomes evolved on them."""

from __future__ import annotations

import itertools
import random

from sandgrain.strains.tree import BASES, Leaf, Node, Tree


def state(leaf: Leaf, position: int, reference: str) -> str | None:
    """A leaf's base at a position, ``None`` when unknown."""
    if leaf.is_unknown(position):
        return None
    return leaf.substitutions.get(position, reference[position - 1])


def fitch_site(tree: Tree, states: dict[str, str | None]) -> int:
    """Fitch's (1971) count for one site, with Hartigan's (1973) rule at multifurcations:
    a node's set is the states most of its children's sets hold; each child without it costs 1."""

    def visit(node: Node) -> tuple[set[str], int]:
        if node.is_leaf:
            s = states[node.name]
            return (set(BASES) if s is None else {s}), 0
        sets, cost = [], 0
        for c in node.children:
            cs, cc = visit(c)
            sets.append(cs)
            cost += cc
        counts = {b: sum(b in s for s in sets) for b in BASES}
        top = max(counts.values())
        return {b for b in BASES if counts[b] == top}, cost + len(sets) - top

    return visit(tree.root)[1]


def exhaustive_site(tree: Tree, states: dict[str, str | None]) -> int:
    """The least number of changes over every assignment of bases to the internal nodes and the
    unknown leaves (tiny trees only)."""
    nodes = list(tree.preorder())
    free = [n for n in nodes if not n.is_leaf or states[n.name] is None]
    best = None
    for combo in itertools.product(BASES, repeat=len(free)):
        value = {id(n): b for n, b in zip(free, combo, strict=True)}
        for n in nodes:
            if id(n) not in value:
                value[id(n)] = states[n.name]
        cost = sum(value[id(n)] != value[id(n.parent)] for n in nodes if n.parent is not None)
        best = cost if best is None else min(best, cost)
    return best


def tree_score(tree: Tree, leaves: dict[str, Leaf], reference: str, site_score=fitch_site) -> int:
    sites = sorted({p for lf in leaves.values() for p in lf.substitutions})
    names = [n.name for n in tree.leaves()]
    return sum(site_score(tree, {s: state(leaves[s], p, reference) for s in names}) for p in sites)


def brute_force_placements(
    tree: Tree, leaves: dict[str, Leaf], reference: str, name: str, query: Leaf
) -> dict[str, int]:
    """For each branch (by its lower node's name): the whole tree's parsimony with the query
    inserted there, minus the tree's own."""
    before = tree_score(tree, leaves, reference)
    both = {**leaves, name: query}
    out = {}
    for node in list(tree.preorder()):
        if node.parent is None:
            continue
        grown = tree.copy()
        target = grown.nodes_by_name()[node.name]
        parent = target.parent
        mid = Node("brute_mid")
        parent.children[parent.children.index(target)] = mid
        mid.parent = parent
        mid.add(target)
        mid.add(Node(name))
        out[node.name] = tree_score(grown, both, reference) - before
    return out


def random_tree(rng: random.Random, n_leaves: int, max_children: int = 3) -> Tree:
    """A random rooted tree: join 2 (or up to ``max_children``) random subtrees until one is
    left; leaves s0, s1, …, internal nodes n0, n1, …"""
    pool = [Node(f"s{i}") for i in range(n_leaves)]
    k = 0
    while len(pool) > 1:
        size = min(len(pool), rng.choice([2, 2, 2, max_children]))
        picked = rng.sample(range(len(pool)), size)
        parent = Node(f"n{k}")
        k += 1
        for i in sorted(picked, reverse=True):
            parent.add(pool.pop(i))
        pool.append(parent)
    return Tree(pool[0])


def evolve(
    rng: random.Random, tree: Tree, reference: str, rate: float = 0.08, unknown: float = 0.15
) -> dict[str, Leaf]:
    """Genomes evolved down the tree (substitutions at random sites, homoplasy allowed), with
    random unknown stretches."""
    genome = {id(tree.root): list(reference)}
    leaves = {}
    for node in tree.preorder():
        if node.parent is not None:
            seq = list(genome[id(node.parent)])
            for i in range(len(seq)):
                if rng.random() < rate:
                    seq[i] = rng.choice([b for b in BASES if b != seq[i]])
            genome[id(node)] = seq
        if node.is_leaf:
            seq = genome[id(node)]
            subs = {i + 1: b for i, b in enumerate(seq) if b != reference[i]}
            holes = []
            if rng.random() < unknown * 3:
                a = rng.randrange(1, len(reference) + 1)
                holes.append((a, min(len(reference), a + rng.randrange(0, 6))))
            leaf = Leaf({}, sorted(holes))
            leaf.substitutions = {p: b for p, b in subs.items() if not leaf.is_unknown(p)}
            leaves[node.name] = leaf
    return leaves


def mpr_states(tree: Tree, states: dict[str, str | None]) -> dict[str, set[str]]:
    """For every node, the bases it has in at least one assignment of least cost (tiny trees)."""
    nodes = list(tree.preorder())
    free = [n for n in nodes if not n.is_leaf or states[n.name] is None]
    scored = []
    for combo in itertools.product(BASES, repeat=len(free)):
        value = {id(n): b for n, b in zip(free, combo, strict=True)}
        for n in nodes:
            if id(n) not in value:
                value[id(n)] = states[n.name]
        cost = sum(value[id(n)] != value[id(n.parent)] for n in nodes if n.parent is not None)
        scored.append((cost, value))
    best = min(c for c, _ in scored)
    out: dict[str, set[str]] = {n.name: set() for n in nodes}
    for cost, value in scored:
        if cost == best:
            for n in nodes:
                out[n.name].add(value[id(n)])
    return out


def make_collection(root, n_genomes: int = 60):
    """A store under ``root`` with MN908947 and a collection ``ncov`` of the first shared
    genomes (aligned and called as ``strains add`` does)."""
    from strains_fixtures import METADATA, REF_FASTA, REF_GB, genomes

    from sandgrain.genome.store import add_genome
    from sandgrain.storage import Store
    from sandgrain.strains.collection import add_genomes

    store = Store(str(root / "store"))
    add_genome(store, "MN908947", str(REF_FASTA), annotation=str(REF_GB))
    fasta = root / "genomes.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in genomes()[:n_genomes]))
    add_genomes(store, "ncov", reference="MN908947", fasta=fasta, metadata=METADATA,
                on_duplicate="replace", executor="serial")  # fmt: skip
    return store
