"""Placing a genome on a collection's tree by maximum parsimony, as UShER does, and its local tree.

**The cost of a branch.** Attaching a query as a new leaf on the branch from ``p`` to ``c``
subdivides it with a new node ``m`` whose other child is the query. With the rest of the tree
free to change its ancestral states, the tree's parsimony score grows, at each site where the
query's base ``q`` is known, by 0 when ``q`` is a state ``p`` or ``c`` has in some most
parsimonious reconstruction (MPR) of the tree without it, and by 1 otherwise: give ``m`` the
base ``q`` in that reconstruction (no change on ``p–m–c`` beyond the one ``p–c`` had, none to
the query), or else ``p``'s base (one change, to the query); and no reconstruction of the new
tree costs less, since removing the query and ``m`` leaves a reconstruction of the old tree.
So the placement cost of a branch is the number of the query's known sites whose base is in
neither node's MPR set — exactly the score increase a full re-run of Fitch's algorithm on the
tree with the query inserted would give (the tests check this on every branch).

**Without re-running Fitch.** The sets come from the stored tree (:mod:`.tree`): a node's base
is the reference's plus the mutations on its path from the root, and its few other MPR states
are kept sparsely per node. One depth-first walk keeps the set of sites where the query differs
from the current node, updating it only at the mutations of each branch, as UShER's
placement does (Turakhia et al. 2021); a branch costs the sites in the sets of both its ends that
neither end's other MPR states explain. Sites where the query has a substitution and no tree
genome does cost 1 on every branch (they are private to the query), unless every genome on the
tree is unknown there (then no branch can tell).

Only substitutions are characters: a query's missing, deleted or ambiguous positions are not
informative (they never cost anything), and insertions and deletions are ignored.

**Ties.** All branches of least cost are equally parsimonious placements; they are counted and
listed (:attr:`Placement.tied_nodes`), and the one chosen is the branch whose lower node ``c``
differs least from the query at the tree's sites (the node nearest the query), then the first in
preorder (children in Newick order).

**Private mutations** are the query's changes on its own branch in the chosen placement: at each
site that costs 1, from ``c``'s base (``m`` takes it) to the query's.

**Adding genomes** (:func:`add_to_tree`) inserts each query on its chosen branch, one after the
other (a later query can join an earlier one), and solves the ancestral states of the grown
tree again, keeping its topology: genomes are added by placement, not by rebuilding the tree.

**The local tree.** The query's ``N`` nearest genomes are those with the fewest mutations on the
tree path from the query (then the fewest branches, then by name), on the tree with the query
inserted (its mutations as in UShER's update: ``p``'s mutations towards ``c`` split between
``p–m`` and ``m–c`` by the query's bases, the private ones on the query's branch). The local
tree is the smallest subtree joining them and the query, branches that lead to one child
merged, branch lengths in mutations, given as Newick and as an SVG cladogram.

References
----------
.. [1] Turakhia Y, Thornlow B, Hinrichs AS, et al. "Ultrafast Sample placement on Existing
   tRees (UShER) enables real-time phylogenetics for the SARS-CoV-2 pandemic." Nat Genet
   53:809-816, 2021.
.. [2] Fitch WM. "Toward defining the course of evolution: minimum change for a specific tree
   topology." Systematic Zoology 20:406-416, 1971.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..errors import InputError
from ..provenance import provenance
from .tree import (
    _BIT,
    KIND,
    Leaf,
    Node,
    StoredTree,
    Tree,
    assign_ancestral,
    leaf_from_calls,
    publish_tree,
    write_newick,
)

__all__ = [
    "DEFAULT_NEAREST",
    "Placement",
    "add_to_tree",
    "branch_costs",
    "insert",
    "local_subtree",
    "nearest_leaves",
    "place",
    "place_calls",
    "subtree_svg",
]

DEFAULT_NEAREST = 20
#: Tied placements listed at most (all are counted).
MAX_TIES_LISTED = 100


@dataclass
class Placement:
    """Where a query goes: on the branch from ``parent`` to ``node``."""

    query: str
    node: str
    parent: str
    parsimony: int
    ties: int
    tied_nodes: list[str]
    private_mutations: list[str]
    #: the mutations of ``node``'s branch, split: towards the query's base (on ``m–node``)
    below: list[tuple[int, str, str]] = field(default_factory=list, repr=False)


# -- costs -----------------------------------------------------------------------------------------


def _query_states(leaf: Leaf, sites: set[int], reference: str) -> dict[int, str]:
    """The query's known base at each tree site."""
    return {
        p: leaf.substitutions.get(p, reference[p - 1].upper())
        for p in sites
        if not leaf.is_unknown(p)
    }


def _outside(leaf: Leaf, sites: set[int], leaves: Sequence[Leaf], reference: str) -> list[str]:
    """The query's substitutions at positions no tree genome has one, that some tree genome
    covers (those cost 1 wherever the query goes)."""
    out = []
    for p, b in sorted(leaf.substitutions.items()):
        if p in sites:
            continue
        if all(lf.is_unknown(p) for lf in leaves):
            continue  # every tree genome is unknown here: no branch can tell
        out.append(f"{reference[p - 1].upper()}{p}{b}")
    return out


def _walk(tree: Tree, q: dict[int, str], reference: str):
    """Yield ``(node, mismatches of its parent, its own mismatches)`` for every non-root node,
    in preorder: the sites where the query's base differs from the node's."""
    root = tree.root
    genome = {p: b for p, _, b in root.mutations}
    start = frozenset(p for p, b in q.items() if genome.get(p, reference[p - 1].upper()) != b)
    stack: list[tuple[Node, frozenset]] = [(c, start) for c in reversed(root.children)]
    while stack:
        node, above = stack.pop()
        mine = set(above)
        for p, _, b in node.mutations:
            if p in q:
                if q[p] == b:
                    mine.discard(p)
                else:
                    mine.add(p)
        frozen = frozenset(mine)
        yield node, above, frozen
        stack.extend((c, frozen) for c in reversed(node.children))


def _cost(node: Node, above: frozenset, mine: frozenset, q: dict[int, str]) -> list[int]:
    """The sites that cost 1 on ``node``'s branch: in both ends' mismatch sets, and not
    explained by another MPR state of either end."""
    parent = node.parent
    return sorted(
        p for p in above & mine
        if not (_BIT[q[p]] & (parent.ambiguous.get(p, 0) | node.ambiguous.get(p, 0)))
    )  # fmt: skip


def _sites(stored: StoredTree) -> set[int]:
    return {p for lf in stored.leaves.values() for p in lf.substitutions}


def branch_costs(stored: StoredTree, leaf: Leaf) -> dict[str, int]:
    """The placement cost of every branch, by the name of its lower node (preorder)."""
    sites = _sites(stored)
    q = _query_states(leaf, sites, stored.reference)
    extra = len(_outside(leaf, sites, list(stored.leaves.values()), stored.reference))
    return {
        node.name: len(_cost(node, above, mine, q)) + extra
        for node, above, mine in _walk(stored.tree, q, stored.reference)
    }


def _genome_at(node: Node, reference: str, positions) -> dict[int, str]:
    path = []
    while node is not None:
        path.append(node)
        node = node.parent
    genome: dict[int, str] = {}
    for n in reversed(path):
        for p, _, b in n.mutations:
            genome[p] = b
    return {p: genome.get(p, reference[p - 1].upper()) for p in positions}


def place(stored: StoredTree, leaf: Leaf, name: str = "query") -> Placement:
    """The most parsimonious placement of a query on the stored tree (module docstring)."""
    if len(stored.tree.root.children) == 0:
        raise InputError("the tree has a single node: nothing to place against")
    sites = _sites(stored)
    reference = stored.reference
    q = _query_states(leaf, sites, reference)
    outside = _outside(leaf, sites, list(stored.leaves.values()), reference)
    best: tuple | None = None
    tied: list[str] = []
    n_ties = 0
    for order, (node, above, mine) in enumerate(_walk(stored.tree, q, reference)):
        costly = _cost(node, above, mine, q)
        cost = len(costly)
        key = (cost, len(mine), order)
        if best is None or cost < best[0][0]:
            n_ties, tied = 0, []
        if best is None or cost <= best[0][0]:
            n_ties += 1
            if len(tied) < MAX_TIES_LISTED:
                tied.append(node.name)
        if best is None or key < best[0]:
            best = (key, node, costly)
    assert best is not None
    (_, _, _), node, costly = best
    here = _genome_at(node, reference, costly)
    private = [f"{here[p]}{p}{q[p]}" for p in costly]
    private = sorted(private + outside, key=lambda t: int(t[1:-1]))
    below = [(p, a, b) for p, a, b in node.mutations if q.get(p) == a]
    return Placement(
        query=name, node=node.name, parent=node.parent.name, parsimony=len(costly) + len(outside),
        ties=n_ties, tied_nodes=tied, private_mutations=private, below=below,
    )  # fmt: skip


# -- inserting, the local tree ---------------------------------------------------------------------


def _new_name(taken: set[str], prefix: str = "node_") -> str:
    i = len(taken)
    while f"{prefix}{i}" in taken:
        i += 1
    return f"{prefix}{i}"


def insert(tree: Tree, placement: Placement) -> Node:
    """Insert the query into ``tree`` (in place) at its placement, with UShER's local update of
    the mutations (module docstring); returns the query's leaf."""
    names = tree.nodes_by_name()
    if placement.query in names:
        raise InputError(f"{placement.query!r} is already on the tree")
    node = names[placement.node]
    parent = node.parent
    below = set(placement.below)
    mid = Node(_new_name(set(names)))
    mid.mutations = [m for m in node.mutations if m not in below]
    node.mutations = [m for m in node.mutations if m in below]
    k = parent.children.index(node)
    parent.children[k] = mid
    mid.parent = parent
    mid.add(node)
    leaf = mid.add(Node(placement.query))
    leaf.mutations = [(int(t[1:-1]), t[0], t[-1]) for t in placement.private_mutations]
    for n in (mid, node, leaf):
        n.length = float(len(n.mutations))
    return leaf


def nearest_leaves(tree: Tree, start: Node, n: int) -> list[tuple[str, int]]:
    """The ``n`` leaves nearest ``start`` (but itself): ``(name, mutations on the path)``,
    ordered by mutations, then branches, then name."""
    heap: list[tuple[int, int, str, int]] = [(0, 0, start.name, id(start))]
    nodes = {id(start): start}
    seen: set[int] = set()
    out: list[tuple[str, int]] = []
    while heap and len(out) < n:
        dist, hops, name, key = heapq.heappop(heap)
        if key in seen:
            continue
        seen.add(key)
        node = nodes[key]
        if node.is_leaf and node is not start:
            out.append((node.name, dist))
            continue
        steps = [(c, len(c.mutations)) for c in node.children]
        if node.parent is not None:
            steps.append((node.parent, len(node.mutations)))
        for nxt, w in steps:
            if id(nxt) not in seen:
                nodes[id(nxt)] = nxt
                heapq.heappush(heap, (dist + w, hops + 1, nxt.name, id(nxt)))
    return out


def local_subtree(tree: Tree, names: Sequence[str]) -> Tree:
    """The smallest subtree joining the leaves ``names``: rooted at their last common ancestor,
    other leaves dropped, nodes left with one child merged into it (lengths added: mutations)."""
    wanted = set(names)
    if len(wanted) < 1:
        raise InputError("a local tree needs at least one leaf")
    count: dict[int, int] = {}
    for node in tree.postorder():
        count[id(node)] = (node.name in wanted if node.is_leaf else 0) + sum(
            count[id(c)] for c in node.children
        )
    if count[id(tree.root)] != len(wanted):
        raise InputError("some leaves of the local tree are not on the tree")
    top = tree.root
    while True:  # descend while a single child holds every wanted leaf
        inner = [c for c in top.children if count[id(c)] == len(wanted)]
        if not inner:
            break
        top = inner[0]

    def chain(node: Node) -> tuple[Node, float]:
        """Follow ``node`` down while it keeps one child; the end and the mutations on the way."""
        length = len(node.mutations)
        while not node.is_leaf:
            kept = [c for c in node.children if count[id(c)] > 0]
            if len(kept) != 1:
                break
            node = kept[0]
            length += len(node.mutations)
        return node, float(length)

    root = Node(top.name)
    stack = [(top, root)]
    while stack:
        src, dst = stack.pop()
        for c in src.children:
            if count[id(c)] == 0:
                continue
            end, length = chain(c)
            copy = dst.add(Node(end.name, length=length))
            stack.append((end, copy))
    return Tree(root)


def subtree_svg(tree: Tree, highlight: str = "", *, title: str = "") -> str:
    """A rectangular cladogram of ``tree`` as standalone SVG (no script): leaves in a column,
    each internal node one step left of its furthest child, ``highlight`` in red."""
    leaves = tree.leaves()
    row = 18
    step = 22
    # depth from the leaves: a leaf 0, a node one more than its deepest child
    height: dict[int, int] = {}
    ys: dict[int, float] = {}
    for k, leaf in enumerate(leaves):
        ys[id(leaf)] = 20 + k * row
    for node in tree.postorder():
        if node.is_leaf:
            height[id(node)] = 0
        else:
            height[id(node)] = 1 + max(height[id(c)] for c in node.children)
            ys[id(node)] = (ys[id(node.children[0])] + ys[id(node.children[-1])]) / 2
    top = height[id(tree.root)]

    def x(node: Node) -> float:
        return 10 + (top - height[id(node)]) * step

    longest = max((len(n.name) for n in leaves), default=1)
    width = int(10 + top * step + 10 + 7.2 * longest + 10)
    total = int(20 + len(leaves) * row)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" '
        f'viewBox="0 0 {width} {total}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title or 'local tree')}</title>",
    ]
    for node in tree.preorder():
        if node.is_leaf:
            continue
        first, last = ys[id(node.children[0])], ys[id(node.children[-1])]
        parts.append(
            f'<line x1="{x(node)}" y1="{first}" x2="{x(node)}" y2="{last}" stroke="#444"/>'
        )
        for c in node.children:
            colour = "#d62728" if c.name == highlight and c.is_leaf else "#444"
            wide = 2.5 if colour != "#444" else 1.2
            parts.append(
                f'<line x1="{x(node)}" y1="{ys[id(c)]}" x2="{x(c)}" y2="{ys[id(c)]}" '
                f'stroke="{colour}" stroke-width="{wide}">'
                f"<title>{int(c.length or 0)} mutations</title></line>"
            )
    for leaf in leaves:
        mark = leaf.name == highlight
        style = ' fill="#d62728" font-weight="bold"' if mark else ""
        parts.append(
            f'<text x="{x(leaf) + 4}" y="{ys[id(leaf)] + 4}"{style}>{escape(leaf.name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# -- the whole answer ------------------------------------------------------------------------------


def place_calls(
    stored: StoredTree, calls: Any, *, nearest: int = DEFAULT_NEAREST
) -> tuple[Placement, dict[str, Any], Tree]:
    """Place one query (:class:`~.mutations.Calls`) and describe it: the answer as a dict
    (query, node, parsimony, ties, private mutations, the local tree as Newick, the neighbours),
    with the local tree itself (for :func:`subtree_svg`)."""
    if nearest < 1:
        raise InputError("--nearest is at least 1")
    if getattr(calls, "error", ""):
        raise InputError(f"query {calls.strain!r} could not be aligned: {calls.error}")
    leaf = leaf_from_calls(calls)
    placement = place(stored, leaf, calls.strain)
    grown = stored.tree.copy()
    query_name = calls.strain
    if query_name in grown.nodes_by_name():
        query_name = f"{calls.strain} (query)"
        placement = Placement(**{**placement.__dict__, "query": query_name})
    tip = insert(grown, placement)
    near = nearest_leaves(grown, tip, nearest)
    local = local_subtree(grown, [query_name] + [s for s, _ in near])
    answer = {
        "query": calls.strain,
        "node": placement.node,
        "parent": placement.parent,
        "parsimony": placement.parsimony,
        "ties": placement.ties,
        "tied_nodes": placement.tied_nodes,
        "private_mutations": placement.private_mutations,
        "subtree_newick": write_newick(local, internal_names=False),
        "neighbours": [s for s, _ in near],
        "neighbour_mutations": [d for _, d in near],
        "tree_version": stored.version,
    }
    return placement, answer, local


def add_to_tree(store, stored: StoredTree, queries: Sequence[Any], *, inputs: Sequence[dict] = ()):
    """Add genomes (their :class:`~.mutations.Calls`) to the stored tree by placement, one after
    the other, solving the ancestral states again after each; publish a new version of the tree
    and return ``(dataset, placements)``."""
    tree = stored.tree.copy()
    leaves = dict(stored.leaves)
    work = StoredTree(tree, leaves, stored.reference, stored.meta, stored.version)
    placements = []
    for calls in queries:
        if getattr(calls, "error", ""):
            raise InputError(f"{calls.strain!r} could not be aligned: {calls.error}")
        if calls.strain in leaves or calls.strain in tree.nodes_by_name():
            raise InputError(
                f"{calls.strain!r} is already on the tree of {stored.meta.get('collection')!r}"
            )
        leaf = leaf_from_calls(calls)
        placement = place(work, leaf, calls.strain)
        insert(tree, placement)
        leaves[calls.strain] = leaf
        assign_ancestral(tree, leaves, stored.reference)
        placements.append(placement)
    name = stored.meta["collection"]
    added = list(stored.meta.get("added", [])) + [
        {"genomes": [p.query for p in placements], "previous_version": stored.version}
    ]
    meta = {**{k: v for k, v in stored.meta.items() if k not in ("leaves", "nodes", "sites")},
            "added": added, "previous_version": stored.version}  # fmt: skip
    prov = provenance(
        "strains place --add",
        {"collection": name, "genomes": [p.query for p in placements]},
        [{"source": f"{KIND}/{name}", "version": stored.version, "sha256": stored.sha256}, *inputs],
    )
    ds = publish_tree(store, name, tree, leaves, stored.reference, meta=meta, prov=prov)
    return ds, placements
