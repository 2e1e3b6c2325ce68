"""A collection's phylogeny whose nodes carry substitutions: Newick, ancestral states, the store.

**The tree.** A rooted tree (:class:`Tree`) of :class:`Node` s; every node carries the
substitutions on the branch that leads to it (the root: its differences from the reference), as
UShER's mutation-annotated tree does (Turakhia et al. 2021). A node's genome at the tree's
*sites* is the reference plus the mutations on its path from the root.

**Only substitutions count.** A leaf's state at a site is its base there (the reference's unless
it has a substitution), or *unknown* where its genome is missing (``N``, trimmed ends), deleted,
or an ambiguity code (``mixed``). Unknown states are never informative: they cost nothing
wherever they are. Insertions and deletions are not characters of the parsimony. The sites are
the positions where some leaf has a substitution.

**Ancestral states.** The small-parsimony problem on a fixed tree is solved per site with
Sankoff's dynamic programme (Sankoff 1975) under unit costs, which for unit costs is Fitch's
algorithm (Fitch 1971; Hartigan 1973 for nodes with more than two children): the states of
least cost below a node are Fitch's preliminary set. Down pass: ``D[v][x]`` = least number of
changes in the subtree of ``v`` when ``v`` has state ``x`` (a leaf: 0 for its base, or every
state when unknown). Up pass: ``U[v][x]`` = least number of changes in the rest of the tree
(the branch into ``v`` included) when ``v`` has state ``x``. Then the tree's parsimony score is
``min D[root]``, and the states ``x`` with ``D[v][x] + U[v][x]`` equal to it are the states ``v``
has in at least one most parsimonious reconstruction (its *MPR set*, Hartigan 1973).

One reconstruction is stored as the node mutations: the root takes the reference base when it
is among its least-cost states (else the first of A, C, G, T that is); a child keeps its
parent's state when that is among its own least-cost states (Fitch's rule), else the same
choice as the root. The MPR states a node has *besides* its stored one are kept per node
(:attr:`Node.ambiguous`, sparse: most sites have one MPR state), so that placement
(:mod:`sandgrain.strains.placement`) is exact without re-running the programme.

**Building.** A collection's starting tree is FastTree's (Price, Dehal & Arkin 2010; Debian's
``fasttree``, ``-nt -gtr``) maximum-likelihood tree of a sample of its genomes that pass QC,
each written as the reference with its substitutions, and ``N`` wherever it is missing,
deleted or ambiguous (insertions dropped), so that every sequence has the reference's length.
FastTree is given only the columns where some sampled genome has a substitution: constant
columns tell nothing about the topology, and at genome length they make FastTree two hundred
times slower (10 s instead of 0.05 s for 20 SARS-CoV-2 genomes here); its branch lengths are
not kept (the stored ones are mutation counts). Or the tree is a Newick tree the user gives,
whose leaves are genomes of the collection. The tree is stored as a dataset of kind
:data:`KIND` named as the collection; genomes are later added by placement, which keeps the
topology and publishes a new version.

References
----------
.. [1] Fitch WM. "Toward defining the course of evolution: minimum change for a specific tree
   topology." Systematic Zoology 20:406-416, 1971.
.. [2] Hartigan JA. "Minimum mutation fits to a given tree." Biometrics 29:53-65, 1973.
.. [3] Sankoff D. "Minimal mutation trees of sequences." SIAM J Appl Math 28:35-42, 1975.
.. [4] Price MN, Dehal PS, Arkin AP. "FastTree 2 — approximately maximum-likelihood trees for
   large alignments." PLoS ONE 5:e9490, 2010.
.. [5] Turakhia Y, et al. "Ultrafast Sample placement on Existing tRees (UShER) enables
   real-time phylogenetics for the SARS-CoV-2 pandemic." Nat Genet 53:809-816, 2021.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import InputError, NotFoundError
from ..provenance import provenance, sha256_file

__all__ = [
    "BASES",
    "KIND",
    "TREE_QC",
    "Leaf",
    "Node",
    "StoredTree",
    "Tree",
    "assign_ancestral",
    "build_tree",
    "fasttree_newick",
    "leaf_from_calls",
    "load_tree",
    "parse_newick",
    "publish_tree",
    "sample_strains",
    "write_newick",
]

#: The store's dataset kind for trees; one tree per collection, named as the collection.
KIND = "straintrees"
FORMAT = "sandgrain.straintree"
FORMAT_VERSION = 1
#: QC statuses of the genomes a starting tree is built from.
TREE_QC = ("good", "mediocre")
DEFAULT_SAMPLE = 500
BASES = "ACGT"
_BIT = {b: 1 << i for i, b in enumerate(BASES)}
_ALL = 15
_MUTATION = re.compile(r"^([ACGT])(\d+)([ACGT])$")
#: Sites per chunk of the dynamic programme (bounds its memory: nodes × chunk × 4 integers).
_CHUNK = 2048


# -- the tree --------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """A node of a :class:`Tree`; ``mutations`` are ``(position, from, to)`` on its branch."""

    name: str = ""
    children: list[Node] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)
    length: float | None = None
    mutations: list[tuple[int, str, str]] = field(default_factory=list)
    #: position → bit mask of the states it has in other most parsimonious reconstructions
    ambiguous: dict[int, int] = field(default_factory=dict)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def add(self, child: Node) -> Node:
        child.parent = self
        self.children.append(child)
        return child


class Tree:
    """A rooted tree; iteration helpers are iterative (trees can be deep)."""

    def __init__(self, root: Node):
        self.root = root

    def preorder(self) -> Iterator[Node]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def postorder(self) -> list[Node]:
        return list(self.preorder())[::-1]

    def leaves(self) -> list[Node]:
        return [n for n in self.preorder() if n.is_leaf]

    def leaf_names(self) -> list[str]:
        return [n.name for n in self.leaves()]

    def nodes_by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.preorder() if n.name}

    def __len__(self) -> int:
        return sum(1 for _ in self.preorder())

    def parsimony(self) -> int:
        """Mutations on the tree's branches (the root's differences from the reference aside)."""
        return sum(len(n.mutations) for n in self.preorder() if n.parent is not None)

    def name_internal_nodes(self, prefix: str = "node_") -> None:
        """Give every internal node a unique name ``<prefix><i>`` (preorder), replacing any label
        (FastTree's and other programs' support values), avoiding the leaves' names."""
        taken = {n.name for n in self.leaves()}
        i = 0
        for node in self.preorder():
            if node.is_leaf:
                continue
            i += 1
            while f"{prefix}{i}" in taken:
                i += 1
            node.name = f"{prefix}{i}"

    def copy(self) -> Tree:
        """A deep copy (names, lengths, mutations, ambiguous states)."""
        clones: dict[int, Node] = {}
        for node in self.preorder():
            clone = Node(node.name, [], None, node.length, list(node.mutations),
                         dict(node.ambiguous))  # fmt: skip
            clones[id(node)] = clone
            if node.parent is not None:
                clones[id(node.parent)].add(clone)
        return Tree(clones[id(self.root)])


# -- Newick ----------------------------------------------------------------------------------------

_SPECIAL = set("()[]':;,") | set(" \t\r\n")


def parse_newick(text: str) -> Tree:
    """A tree from Newick text (one tree, ending in ``;``).

    Labels are plain (no blanks or ``()[]':;,``) or single-quoted (``''`` is a quote); comments
    in ``[…]`` are skipped; branch lengths are optional. Underscores are kept as they are (not
    read as blanks), as sequence ids use them.

    Raises
    ------
    InputError
        On malformed text, with the character offset.
    """
    s = text.strip()
    n = len(s)
    i = 0

    def fail(why: str) -> InputError:
        return InputError(f"malformed Newick at character {i + 1}: {why}")

    def skip() -> None:
        nonlocal i
        while i < n:
            if s[i].isspace():
                i += 1
            elif s[i] == "[":
                end = s.find("]", i)
                if end < 0:
                    raise fail("an unclosed [comment]")
                i = end + 1
            else:
                return

    def label() -> str:
        nonlocal i
        skip()
        if i < n and s[i] == "'":
            out, i = [], i + 1
            while True:
                if i >= n:
                    raise fail("an unclosed quoted label")
                if s[i] == "'":
                    if i + 1 < n and s[i + 1] == "'":
                        out.append("'")
                        i += 2
                        continue
                    i += 1
                    return "".join(out)
                out.append(s[i])
                i += 1
        start = i
        while i < n and s[i] not in _SPECIAL:
            i += 1
        return s[start:i]

    def length() -> float | None:
        nonlocal i
        skip()
        if i < n and s[i] == ":":
            i += 1
            skip()
            start = i
            while i < n and s[i] not in _SPECIAL:
                i += 1
            try:
                return float(s[start:i])
            except ValueError:
                raise fail(f"branch length {s[start:i]!r} is not a number") from None
        return None

    if not s:
        raise InputError("malformed Newick: the text is empty")
    skip()
    root = Node()
    if i < n and s[i] == "(":
        i += 1
        stack = [root]  # the open internal nodes; children go to the last
        want_child = True
        while stack:
            skip()
            if i >= n:
                raise fail("the text ends inside the tree (a ')' is missing)")
            c = s[i]
            if want_child:
                if c == "(":
                    stack.append(stack[-1].add(Node()))
                    i += 1
                    continue
                leaf = stack[-1].add(Node())
                leaf.name = label()
                leaf.length = length()
                want_child = False
            elif c == ",":
                i += 1
                want_child = True
            elif c == ")":
                i += 1
                closed = stack.pop()
                closed.name = label()
                closed.length = length()
            else:
                raise fail(f"unexpected {c!r} (expected ',' or ')')")
    else:  # a tree of one leaf
        root.name = label()
        root.length = length()
    skip()
    if i >= n or s[i] != ";":
        raise fail("the tree does not end with ';'")
    i += 1
    skip()
    if i < n:
        raise fail("text after the tree's ';' (one tree only)")
    tree = Tree(root)
    for nd in tree.preorder():
        if nd.is_leaf and not nd.name:
            raise InputError("malformed Newick: a leaf without a name")
    return tree


def _quote(name: str) -> str:
    if name and not (set(name) & _SPECIAL):
        return name
    return "'" + name.replace("'", "''") + "'"


def _format_length(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def write_newick(tree: Tree, *, lengths: bool = True, internal_names: bool = True) -> str:
    """Newick text of ``tree`` (names quoted when needed; lengths when set and asked for)."""
    out: list[str] = []

    def tail(node: Node) -> str:
        text = _quote(node.name) if (node.is_leaf or internal_names) and node.name else ""
        if lengths and node.length is not None:
            text += ":" + _format_length(node.length)
        return text

    # (node, index of the next child to write)
    stack: list[tuple[Node, int]] = [(tree.root, 0)]
    while stack:
        node, k = stack.pop()
        if node.is_leaf:
            out.append(tail(node))
            continue
        if k == 0:
            out.append("(")
        elif k < len(node.children):
            out.append(",")
        if k < len(node.children):
            stack.append((node, k + 1))
            stack.append((node.children[k], 0))
        else:
            out.append(")" + tail(node))
    return "".join(out) + ";"


# -- leaves and ancestral states -------------------------------------------------------------------


@dataclass
class Leaf:
    """What parsimony reads of a genome: its substitutions (position → base) and the inclusive
    1-based ranges where its state is unknown (missing, deleted, ambiguous)."""

    substitutions: dict[int, str]
    unknown: list[tuple[int, int]]

    def is_unknown(self, position: int) -> bool:
        import bisect

        k = bisect.bisect_right(self.unknown, (position, float("inf"))) - 1
        return k >= 0 and self.unknown[k][0] <= position <= self.unknown[k][1]

    def to_json(self) -> dict:
        return {
            "substitutions": [f"{p}{b}" for p, b in sorted(self.substitutions.items())],
            "unknown": [f"{a}-{b}" for a, b in self.unknown],
        }

    @classmethod
    def from_json(cls, obj: dict) -> Leaf:
        subs = {int(t[:-1]): t[-1] for t in obj.get("substitutions", [])}
        unknown = [tuple(int(x) for x in r.split("-")) for r in obj.get("unknown", [])]
        return cls(subs, [(a, b) for a, b in unknown])


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _span(text: str) -> tuple[int, int]:
    a, _, b = text.partition("-")
    return int(a), int(b or a)


def leaf_from_calls(calls: Any) -> Leaf:
    """The parsimony characters of a genome's calls (:class:`~.mutations.Calls`): substitutions
    to A, C, G or T; unknown where missing, deleted or mixed. Insertions are not characters."""
    subs: dict[int, str] = {}
    unknown = [_span(r) for r in calls.missing]
    unknown += [_span(d[4:]) for d in calls.deletions]
    for m in calls.mixed:
        p = int(m[1:-1])
        unknown.append((p, p))
    for t in calls.substitutions:
        if t[-1] in _BIT:
            subs[int(t[1:-1])] = t[-1]
        else:  # an ambiguity code written as a substitution: unknown
            p = int(t[1:-1])
            unknown.append((p, p))
    merged = _merge(unknown)
    leaf = Leaf({}, merged)
    leaf.substitutions = {p: b for p, b in subs.items() if not leaf.is_unknown(p)}
    return leaf


def genome_for_tree(reference: str, calls: Any) -> str:
    """The genome of ``calls`` (or of a :class:`Leaf`) written for tree building: the reference
    with the substitutions, ``N``
    wherever the state is unknown, insertions dropped (so it has the reference's length); made
    by :func:`~sandgrain.strains.kmers.genome_from_calls`."""
    from .kmers import genome_from_calls

    leaf = calls if isinstance(calls, Leaf) else leaf_from_calls(calls)
    plain = SimpleNamespace(
        strain=getattr(calls, "strain", "genome"),
        substitutions=[f"{reference[p - 1]}{p}{b}" for p, b in sorted(leaf.substitutions.items())],
        deletions=[], insertions=[],
        missing=[f"{a}-{b}" for a, b in leaf.unknown],
    )  # fmt: skip
    return genome_from_calls(reference, plain)


def _leaf_matrix(leaves: Sequence[Leaf], sites: np.ndarray, reference: str) -> np.ndarray:
    """Bit masks (leaves × sites) of the leaves' states: one bit, or all four when unknown."""
    index = {int(p): j for j, p in enumerate(sites)}
    ref_bits = np.array([_BIT.get(reference[p - 1].upper(), _ALL) for p in sites], np.uint8)
    out = np.tile(ref_bits, (len(leaves), 1))
    for i, leaf in enumerate(leaves):
        for p, b in leaf.substitutions.items():
            out[i, index[p]] = _BIT[b]
        if leaf.unknown:
            starts = np.searchsorted(sites, [a for a, _ in leaf.unknown], side="left")
            ends = np.searchsorted(sites, [b for _, b in leaf.unknown], side="right")
            for s0, s1 in zip(starts, ends, strict=True):
                out[i, s0:s1] = _ALL
    return out


def _bits_to_cost(bits: np.ndarray, inf: int) -> np.ndarray:
    """Sankoff leaf costs (sites × 4): 0 for the states in the mask, ``inf`` for the others."""
    allowed = (bits[:, None] >> np.arange(4, dtype=np.uint8)) & 1
    return np.where(allowed.astype(bool), 0, inf).astype(np.int32)


def _pick(costs: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """Per site, ``preferred`` (state index) when it has the least cost, else the first state
    of least cost."""
    best = costs.min(axis=1)
    ok = costs[np.arange(len(costs)), preferred] == best
    return np.where(ok, preferred, costs.argmin(axis=1))


def assign_ancestral(tree: Tree, leaves: Mapping[str, Leaf], reference: str) -> int:
    """Solve the small-parsimony problem on ``tree`` (module docstring) and store the result in
    its nodes: ``mutations`` (one most parsimonious reconstruction), ``ambiguous`` (the other
    MPR states) and ``length`` (mutations on the branch). Returns the parsimony score.

    Every leaf must be in ``leaves``; the sites are the positions where some leaf has a
    substitution. Memory: nodes × 2048 sites × 4 integers at a time.
    """
    order = tree.postorder()
    tips = [n for n in order if n.is_leaf]
    missing = [n.name for n in tips if n.name not in leaves]
    if missing:
        raise InputError(f"no genome for the tree's leaves {', '.join(missing[:5])}")
    if len(set(n.name for n in tips)) != len(tips):
        raise InputError("the tree's leaf names repeat")
    leaf_list = [leaves[n.name] for n in tips]
    sites = np.array(sorted({p for lf in leaf_list for p in lf.substitutions}), dtype=np.int64)
    for node in order:
        node.mutations, node.ambiguous = [], {}
    position = {id(n): k for k, n in enumerate(order)}
    parent_pos = np.array(
        [position[id(n.parent)] if n.parent is not None else -1 for n in order], dtype=np.int64
    )
    tip_row = {id(n): k for k, n in enumerate(tips)}
    total = 0
    inf = len(order) + 1
    for c0 in range(0, len(sites), _CHUNK):
        chunk = sites[c0 : c0 + _CHUNK]
        bits = _leaf_matrix(leaf_list, chunk, reference)
        ref_state = np.array([BASES.find(reference[p - 1].upper()) for p in chunk])
        ref_state[ref_state < 0] = 0
        m = len(chunk)
        down = np.zeros((len(order), m, 4), np.int32)
        # message of each node to its parent: min_y D[v][y] + [x != y]
        msg = np.zeros((len(order), m, 4), np.int32)
        for k, node in enumerate(order):
            if node.is_leaf:
                down[k] = _bits_to_cost(bits[tip_row[id(node)]], inf)
            best = down[k].min(axis=1, keepdims=True)
            msg[k] = np.minimum(down[k], best + 1)
            if parent_pos[k] >= 0:
                down[parent_pos[k]] += msg[k]
        root = len(order) - 1
        score = down[root].min(axis=1)
        total += int(score.sum())
        up = np.zeros_like(down)
        state = np.zeros((len(order), m), np.int64)
        state[root] = _pick(down[root], ref_state)
        for k in range(root - 1, -1, -1):
            p = parent_pos[k]
            w = up[p] + down[p] - msg[k]  # the tree outside v's subtree, given the parent's state
            up[k] = np.minimum(w, w.min(axis=1, keepdims=True) + 1)
            state[k] = _pick(down[k], state[p])
        mpr = (down + up) == score[None, :, None]
        for k, node in enumerate(order):
            st = state[k]
            prev = state[parent_pos[k]] if parent_pos[k] >= 0 else ref_state
            for j in np.flatnonzero(st != prev):
                node.mutations.append((int(chunk[j]), BASES[prev[j]], BASES[st[j]]))
            mask = mpr[k].copy()
            mask[np.arange(m), st] = False
            for j in np.flatnonzero(mask.any(axis=1)):
                node.ambiguous[int(chunk[j])] = int(sum(1 << b for b in range(4) if mask[j, b]))
    for node in order:
        node.length = float(len(node.mutations)) if node.parent is not None else None
    return total


# -- sampling and FastTree -------------------------------------------------------------------------


def sample_strains(strains: Iterable[str], size: int, seed: int = 0) -> list[str]:
    """The ``size`` strains whose SHA-256 of ``"<seed>:<strain>"`` is smallest (all when fewer),
    sorted: a sample that does not depend on the collection's order."""
    import heapq

    if size < 3:
        raise InputError("a tree needs at least 3 genomes (--sample)")

    def key(s: str) -> bytes:
        return hashlib.sha256(f"{seed}:{s}".encode()).digest()[:12]

    return sorted(heapq.nsmallest(size, set(strains), key=key))


def fasttree_binary() -> str:
    """The FastTree program (Debian's ``fasttree``)."""
    found = shutil.which("fasttree") or shutil.which("FastTree")
    if not found:
        raise NotFoundError("FastTree is not installed (Debian: apt-get install fasttree)")
    return found


def fasttree_newick(fasta: str | Path, *, seed: int = 0) -> tuple[str, str]:
    """``(Newick, FastTree version)`` of FastTree's ``-nt -gtr`` tree of an aligned FASTA."""
    cmd = [fasttree_binary(), "-nt", "-gtr", "-nosupport", "-seed", str(seed + 1), str(fasta)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"FastTree failed: {last}")
    version = re.search(r"FastTree Version (\S+)", done.stderr)
    return done.stdout.strip(), version.group(1) if version else "unknown"


# -- building and storing --------------------------------------------------------------------------


@dataclass
class StoredTree:
    """A collection's tree as stored: the tree (with its node mutations), the genomes of its
    leaves, the reference, and the dataset's meta."""

    tree: Tree
    leaves: dict[str, Leaf]
    reference: str
    meta: dict
    version: str = ""
    sha256: str = ""  #: of the dataset's manifest


def _qc_passing(collection, qc: Sequence[str] | None) -> list[str]:
    table = collection.qc_table()
    strains, statuses = table["strain"].to_pylist(), table["status"].to_pylist()
    if qc is None:
        return strains
    wanted = set(qc)
    return [s for s, st in zip(strains, statuses, strict=True) if st in wanted]


def collection_input(collection) -> dict[str, Any]:
    """Provenance of a collection: name, version and the SHA-256 of its manifest."""
    manifest = collection.dataset.manifest
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    return {"source": f"strains collection {collection.name}", "version": manifest["version"],
            "sha256": digest}  # fmt: skip


def build_tree(
    store,
    collection,
    *,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
    newick: str | Path | None = None,
    qc: Sequence[str] | None = TREE_QC,
    batch: int = 1000,
):
    """Build a collection's starting tree and publish it (returns the dataset).

    Without ``newick``: FastTree on a sample of ``sample`` genomes whose QC status is in ``qc``
    (hash-chosen, :func:`sample_strains`). With ``newick``: that tree, whose leaves must all be
    genomes of the collection (any QC status). Either way the ancestral states are solved by
    parsimony and stored as node mutations.
    """
    reference = collection.reference()
    parameters: dict[str, Any] = {"collection": collection.name, "seed": seed}
    inputs = [collection_input(collection)]
    if newick is not None:
        path = Path(newick)
        if not path.is_file():
            raise InputError(f"no such file: {path}")
        tree = parse_newick(path.read_text())
        names = tree.leaf_names()
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InputError(f"{path.name}: leaf names repeat: {', '.join(dup[:5])}")
        known = set(collection.strains())
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InputError(
                f"{path.name}: {len(unknown)} leaves are not genomes of collection "
                f"{collection.name!r}: {', '.join(unknown[:5])}"
            )
        if len(names) < 3:
            raise InputError(f"{path.name}: a tree needs at least 3 leaves")
        leaves: dict[str, Leaf] = {}
        for chunk in collection.iter_calls(batch=batch, strains=names):
            leaves.update((c.strain, leaf_from_calls(c)) for c in chunk)
        parameters.update({"method": "newick", "newick": path.name})
        inputs.append({"source": path.name, "sha256": sha256_file(path)})
        tool = None
    else:
        eligible = _qc_passing(collection, qc)
        if len(eligible) < 3:
            raise InputError(
                f"collection {collection.name!r} has {len(eligible)} genomes that pass QC: a "
                "tree needs at least 3"
            )
        chosen = sample_strains(eligible, sample, seed)
        leaves = {}
        for chunk in collection.iter_calls(batch=batch, strains=chosen):
            leaves.update((c.strain, leaf_from_calls(c)) for c in chunk)
        columns = np.array(sorted({p for lf in leaves.values() for p in lf.substitutions}))
        if len(columns) == 0:
            raise InputError(
                f"the {len(leaves)} sampled genomes of {collection.name!r} have no substitution: "
                "there is no tree to build"
            )
        with tempfile.TemporaryDirectory(prefix="sandgrain-tree-") as tmp:
            fasta = Path(tmp) / "sample.fa"
            with open(fasta, "w") as fh:
                for strain in chosen:
                    genome = np.frombuffer(
                        genome_for_tree(reference, leaves[strain]).encode(), np.uint8
                    )
                    fh.write(f">{strain}\n{genome[columns - 1].tobytes().decode()}\n")
            text, version = fasttree_newick(fasta, seed=seed)
        tree = parse_newick(text)
        tool = {"program": "FastTree", "version": version, "options": "-nt -gtr -nosupport",
                "columns": int(len(columns))}  # fmt: skip
        parameters.update({"method": "fasttree", "sample": sample, "sampled": len(chosen),
                           "qc": list(qc) if qc is not None else None})  # fmt: skip
    tree.name_internal_nodes()
    for node in tree.preorder():
        node.length = None
    score = assign_ancestral(tree, leaves, reference)
    return publish_tree(
        store, collection.name, tree, leaves, reference,
        meta={"method": parameters["method"], "tool": tool, "parsimony": score,
              "collection_version": collection.dataset.manifest["version"],
              "sample": parameters.get("sample"), "seed": seed, "added": []},
        prov=provenance("strains tree", parameters, inputs),
    )  # fmt: skip


def publish_tree(store, name: str, tree: Tree, leaves: Mapping[str, Leaf], reference: str, *,
                 meta: dict, prov: dict):  # fmt: skip
    """Publish a tree as a new version of dataset ``straintrees/<name>`` (atomically).

    Files: ``tree.nwk`` (internal nodes named, branch lengths = mutations on the branch),
    ``mutations.json`` (node → its branch's mutations, ``C241T``; the root's are against the
    reference), ``ambiguous.json`` (node → position → other MPR states), ``leaves.json`` (leaf
    → substitutions and unknown ranges), ``reference.txt``.
    """
    names = tree.leaf_names()
    muts = {n.name: [f"{a}{p}{b}" for p, a, b in n.mutations] for n in tree.preorder()}
    amb = {
        n.name: {str(p): "".join(BASES[b] for b in range(4) if m >> b & 1)
                 for p, m in sorted(n.ambiguous.items())}
        for n in tree.preorder() if n.ambiguous
    }  # fmt: skip
    sites = sorted({p for name in names for p in leaves[name].substitutions})
    with store.new_dataset(
        KIND, name, format=FORMAT, format_version=FORMAT_VERSION, replace=True
    ) as ds:
        ds.write_bytes("tree.nwk", (write_newick(tree) + "\n").encode())
        ds.write_bytes("mutations.json", json.dumps(muts).encode())
        ds.write_bytes("ambiguous.json", json.dumps(amb).encode())
        ds.write_bytes("leaves.json",
                       json.dumps({s: leaves[s].to_json() for s in names}).encode())  # fmt: skip
        ds.write_bytes("reference.txt", reference.encode())
        ds.meta = {
            "collection": name, "leaves": len(names), "nodes": len(tree), "sites": len(sites),
            "parsimony": tree.parsimony(), **{k: v for k, v in meta.items() if k != "parsimony"},
        }  # fmt: skip
        ds.provenance = prov
    return store.open_dataset(KIND, name)


def load_tree(store, name: str) -> StoredTree:
    """The current tree of collection ``name``."""
    try:
        ds = store.open_dataset(KIND, name)
    except NotFoundError:
        raise NotFoundError(
            f"collection {name!r} has no tree yet: run `sandgrain strains tree --collection {name}`"
        ) from None
    tree = parse_newick(ds.read_bytes("tree.nwk").decode())
    muts = json.loads(ds.read_bytes("mutations.json"))
    amb = json.loads(ds.read_bytes("ambiguous.json"))
    for node in tree.preorder():
        node.mutations = [(int(t[1:-1]), t[0], t[-1]) for t in muts.get(node.name, [])]
        node.ambiguous = {
            int(p): sum(_BIT[b] for b in states) for p, states in amb.get(node.name, {}).items()
        }
    leaves = {s: Leaf.from_json(v) for s, v in json.loads(ds.read_bytes("leaves.json")).items()}
    reference = ds.read_bytes("reference.txt").decode()
    digest = hashlib.sha256(json.dumps(ds.manifest, sort_keys=True).encode()).hexdigest()
    return StoredTree(tree, leaves, reference, dict(ds.meta), ds.manifest["version"], digest)
