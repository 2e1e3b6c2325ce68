"""Profile search: how many genomes carry a mutation profile, where and when (as PathsBeacon).

**The language.** A profile is an expression of *literals* joined by ``&`` (``and``), ``|``
(``or``) and ``!`` (``not``), with parentheses; ``!`` binds tightest, then ``&``, then ``|``::

    A23403G & C14408T & !G25563T
    (S:D614G or S:N501Y) and not del:11288-11296

Literals (1-based reference coordinates, the notation of :mod:`sandgrain.strains.mutations`):

- ``A23403G`` a substitution (the reference base is checked); ``del:11288-11296`` a deletion of
  exactly those bases; ``ins:22204:GAG`` an insertion of exactly those bases after 22204;
- ``S:D614G`` an amino-acid substitution, ``S:H69-`` or ``S:del69`` an amino-acid deletion (the
  reference amino acid is checked; gene names as the collection's annotation, any case);
- ``S:*`` or ``gene:S``: any amino-acid change (substitution or deletion) in the gene;
- ``21563-25384`` or ``region:21563-25384`` (``region:P`` for one base): any nucleotide event at
  those positions (an insertion sits at the base it follows).

At most :data:`MAX_TERMS` literals and :data:`MAX_DEPTH` levels of nesting (parentheses or
``not``) are accepted: a longer expression is refused before any work, not evaluated.

**Missing data, honestly.** Each literal is three-valued per genome (Kleene's strong logic,
Kleene 1938; *Introduction to Metamathematics*, 1952, §64): *true* where the genome has the
event; *false* where it lacks it and covers every base the literal reads (the base, the deleted
bases, the codon, the whole gene or region); *unknown* otherwise (N, trimmed ends, ambiguity
codes; an event at a position its own genome does not cover is no evidence either, as the index
drops it). ``and`` is the minimum, ``or`` the maximum, ``not`` swaps true and false, so
``!G25563T`` is true only for genomes that cover 25563 and do not carry it. The answer counts
*true* genomes (``count``), *unknown* ones and all genomes searched, and ``frequency = true /
(true + false)``: unknown genomes are neither counted for nor against a profile.

**Breakdowns.** The true, unknown and searched genomes per ISO week and month of the sampling
date, and per country, region and division (metadata columns, when present); a weekly histogram
of the same, i.e. the profile's frequency over time.

**Similar profiles** (``similar=True``): PathsBeacon's relaxation (Wilson et al. 2021, "CSIRO's
serverless Beacon"; the ``similar`` search of its web tool), made exact. For the query's ``m``
distinct literals (at most :data:`MAX_SIMILAR`) each genome has a *pattern*: the set of
literals it carries. The genomes per exact pattern are counted, and for every subset ``S`` of
the literals, the genomes carrying all of ``S`` (the sum over patterns containing ``S``: a
superset-sum transform over ``2^m`` patterns, Yates 1937) and those covering all of ``S``; the
best subsets of each size are reported.

**Fast.** Per partition (:func:`~sandgrain.strains.index.load_partition`) an inverted index is
built once and kept: every event ``(slot, state)`` and amino-acid token → the sorted rows that
carry it (one ``argsort`` of the events), and the missing ranges split into leading and trailing
ends (one number per genome) and interior runs sorted by start. A literal is then a slice of
rows plus a few vector comparisons, and an expression is boolean numpy arrays over the whole
partition. The tests compare every answer with a plain per-genome evaluation of the calls.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from threading import Lock

import numpy as np

from ..errors import InputError
from ..fanout import Task, run_plan
from ..provenance import provenance
from .collection import KIND, Collection
from .index import BASES, DEL_BASE, STATUS_CODES, Partition
from .nearest import PARTITION_GENOMES, _allowed, _kept, _partition, plan_partitions

__all__ = [
    "BREAKDOWNS",
    "MAX_DEPTH",
    "MAX_SIMILAR",
    "MAX_TERMS",
    "Literal",
    "Profile",
    "parse_profile",
    "profile_search",
    "profile_task",
]

MAX_TERMS = 200
MAX_DEPTH = 20
MAX_SIMILAR = 16
MAX_CHARS = 10_000
#: Grouping columns a search can break its answer down by.
BREAKDOWNS = ("week", "month", "country", "region", "division")
#: Best subsets reported per size by the similar-profiles relaxation.
SIMILAR_BEST = 5
#: Exact patterns reported by the similar-profiles relaxation.
SIMILAR_PATTERNS = 20
_TASK = "sandgrain.strains.profile:profile_task"
_SHORT = 1024  # interior missing runs at most this long are found by a window on their start
_CODONS = "KNKNTTTTRSRSIIMIQHQHPPPPRRRRLLLLEDEDAAAAGGGGVVVV*Y*YSSSS*CWCLFLF"  # A=0 C=1 G=2 T=3
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


# -- the language ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Literal:
    """One resolved literal. ``kind``: ``event`` (a nucleotide event ``slot``/``state``, or
    ``seq`` for an insertion), ``aa`` (an amino-acid ``token``), ``region`` (any event in slots
    ``slot``..``slot_end``) or ``gene`` (any amino-acid token of gene ``token``). ``cover``: the
    1-based inclusive base ranges a genome must cover for the literal to be known."""

    kind: str
    text: str
    cover: tuple[tuple[int, int], ...]
    slot: int = 0
    slot_end: int = 0
    state: int = 0
    seq: str = ""
    token: str = ""


@dataclass
class Profile:
    """A parsed expression: a tree of ``("lit", i)``, ``("not", x)``, ``("and", [xs])``,
    ``("or", [xs])`` over :attr:`literals` (distinct, in order of first appearance)."""

    tree: tuple
    literals: list[Literal]

    def text(self) -> str:
        """The expression written back canonically (every group in parentheses)."""

        def show(node, top=False) -> str:
            op = node[0]
            if op == "lit":
                return self.literals[node[1]].text
            if op == "not":
                return "!" + show(node[1])
            inner = f" {'&' if op == 'and' else '|'} ".join(show(x) for x in node[1])
            return inner if top else f"({inner})"

        return show(self.tree, True)


@dataclass(frozen=True)
class _Context:
    """What literals are resolved against: the reference and its coding sequences."""

    reference: str
    genes: dict  # name → 0-based positions in reading order (np.ndarray)
    strands: dict  # name → "+" or "-"

    @property
    def length(self) -> int:
        return len(self.reference)

    def gene(self, name: str, atom: str) -> str:
        by_lower = {g.lower(): g for g in self.genes}
        if name.lower() not in by_lower:
            known = ", ".join(self.genes) or "none: the reference has no genes"
            raise InputError(f"{atom!r}: no gene {name!r} (known: {known})")
        return by_lower[name.lower()]

    def codon(self, gene: str, number: int, atom: str) -> tuple[str, list[int]]:
        """The reference amino acid of codon ``number`` (1-based) and its 1-based bases."""
        pos = self.genes[gene]
        if not 1 <= number <= pos.size // 3:
            raise InputError(f"{atom!r}: {gene} has codons 1 to {pos.size // 3}")
        bases = [int(p) + 1 for p in pos[3 * (number - 1) : 3 * number]]
        codon = "".join(self.reference[b - 1] for b in bases)
        if self.strands[gene] == "-":
            codon = codon.translate(_COMPLEMENT)
        if any(c not in "ACGT" for c in codon):
            return "X", bases
        i = 16 * "ACGT".index(codon[0]) + 4 * "ACGT".index(codon[1]) + "ACGT".index(codon[2])
        return _CODONS[i], bases


def _merge(points: Sequence[int]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for p in sorted(set(points)):
        if out and p == out[-1][1] + 1:
            out[-1][1] = p
        else:
            out.append([p, p])
    return tuple((a, b) for a, b in out)


_SUB = re.compile(r"^([ACGT])(\d+)([ACGT])$", re.I)
_DEL = re.compile(r"^del:(\d+)(?:-(\d+))?$", re.I)
_INS = re.compile(r"^ins:(\d+):([ACGT]+)$", re.I)
_REGION = re.compile(r"^(?:region:)?(\d+)-(\d+)$|^region:(\d+)$", re.I)
_GENE = re.compile(r"^gene:([\w.]+)$|^([\w.]+):\*$", re.I)
_AA = re.compile(r"^([\w.]+):([A-Z*])(\d+)([A-Z*-])$", re.I)
_AA_DEL = re.compile(r"^([\w.]+):del(\d+)$", re.I)


def _position(text: str, ctx: _Context, atom: str) -> int:
    p = int(text)
    if not 1 <= p <= ctx.length:
        raise InputError(f"{atom!r}: positions are 1 to {ctx.length:,}")
    return p


def _literal(atom: str, ctx: _Context) -> Literal:
    """Resolve one literal's text against the reference (module docstring for the forms)."""
    if m := _SUB.match(atom):
        ref, alt = m[1].upper(), m[3].upper()
        p = _position(m[2], ctx, atom)
        if ctx.reference[p - 1] != ref:
            raise InputError(f"{atom!r}: the reference has {ctx.reference[p - 1]} at {p}")
        if ref == alt:
            raise InputError(f"{atom!r} is not a change")
        return Literal("event", f"{ref}{p}{alt}", ((p, p),), 2 * p, 2 * p, BASES.index(alt))
    if m := _DEL.match(atom):
        a = _position(m[1], ctx, atom)
        b = _position(m[2] or m[1], ctx, atom)
        if b < a:
            raise InputError(f"{atom!r}: the deletion ends before it starts")
        text = f"del:{a}-{b}"
        return Literal("event", text, ((a, b),), 2 * a, 2 * a, DEL_BASE + b - a + 1)
    if m := _INS.match(atom):
        p = int(m[1])
        if not 0 <= p <= ctx.length:
            raise InputError(f"{atom!r}: an insertion follows a base 0 to {ctx.length:,}")
        seq = m[2].upper()
        q = max(p, 1)
        return Literal("event", f"ins:{p}:{seq}", ((q, q),), 2 * p + 1, 2 * p + 1, seq=seq)
    if m := _REGION.match(atom):
        a = _position(m[1] or m[3], ctx, atom)
        b = _position(m[2] or m[3], ctx, atom)
        if b < a:
            raise InputError(f"{atom!r}: the region ends before it starts")
        return Literal("region", f"region:{a}-{b}", ((a, b),), 2 * a, 2 * b + 1)
    if m := _GENE.match(atom):
        gene = ctx.gene(m[1] or m[2], atom)
        cover = _merge([int(p) + 1 for p in ctx.genes[gene]])
        return Literal("gene", f"{gene}:*", cover, token=gene)
    if m := _AA.match(atom):
        gene = ctx.gene(m[1], atom)
        ref, alt = m[2].upper(), m[4].upper()
        number = int(m[3])
        have, bases = ctx.codon(gene, number, atom)
        if have != ref:
            raise InputError(f"{atom!r}: {gene} has {have} at codon {number}")
        if ref == alt:
            raise InputError(f"{atom!r} is not a change")
        text = f"{gene}:{ref}{number}{alt}"
        return Literal("aa", text, _merge(bases), token=text)
    if m := _AA_DEL.match(atom):
        gene = ctx.gene(m[1], atom)
        number = int(m[2])
        have, bases = ctx.codon(gene, number, atom)
        text = f"{gene}:{have}{number}-"
        return Literal("aa", text, _merge(bases), token=text)
    raise InputError(
        f"{atom!r} is not a mutation: write A23403G, del:11288-11296, ins:22204:GAG, S:D614G, "
        "S:H69- (or S:del69), S:* (or gene:S), or 21563-25384 (or region:21563-25384)"
    )


_TOKEN = re.compile(r"\s*(?:(&&|&|\|\||\||!|~|\(|\))|([^\s()&|!~]+))")
_WORDS = {"and": "&", "or": "|", "not": "!"}
_OPS = {"&&": "&", "||": "|", "~": "!"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """``(kind, value, offset)``: kind ``op`` (``& | ! ( )``) or ``atom``."""
    out = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - every non-space character starts a token
            raise InputError(f"profile: cannot read {text[pos:]!r}")
        if m[1]:
            out.append(("op", _OPS.get(m[1], m[1]), m.start(1)))
        elif m[2].lower() in _WORDS:
            out.append(("op", _WORDS[m[2].lower()], m.start(2)))
        else:
            out.append(("atom", m[2], m.start(2)))
        pos = m.end()
    return out


def parse_profile(text: str, ctx: _Context) -> Profile:
    """Parse and resolve a profile expression (module docstring for the grammar); raises
    :class:`~sandgrain.errors.InputError` with the place of the first mistake."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("the profile expression is empty")
    if len(text) > MAX_CHARS:
        raise InputError(f"the profile expression is longer than {MAX_CHARS:,} characters")
    toks = _tokens(text)
    atoms = sum(1 for k, _, _ in toks if k == "atom")
    if atoms > MAX_TERMS:
        raise InputError(f"the profile has {atoms} terms; at most {MAX_TERMS} are searched")
    literals: list[Literal] = []
    index: dict[str, int] = {}
    i = 0

    def where() -> str:
        return f"at character {toks[i][2] + 1}" if i < len(toks) else "at the end"

    def peek() -> tuple[str, str, int] | None:
        return toks[i] if i < len(toks) else None

    def parse_or(depth: int):
        nonlocal i
        items = [parse_and(depth)]
        while (t := peek()) and t[:2] == ("op", "|"):
            i += 1
            items.append(parse_and(depth))
        return items[0] if len(items) == 1 else ("or", items)

    def parse_and(depth: int):
        nonlocal i
        items = [parse_not(depth)]
        while (t := peek()) and t[:2] == ("op", "&"):
            i += 1
            items.append(parse_not(depth))
        return items[0] if len(items) == 1 else ("and", items)

    def deeper(depth: int) -> int:
        if depth + 1 > MAX_DEPTH:
            raise InputError(f"the profile nests deeper than {MAX_DEPTH} levels {where()}")
        return depth + 1

    def parse_not(depth: int):
        nonlocal i
        t = peek()
        if t is None:
            raise InputError(
                f"the profile expression ends where a mutation was expected ({text!r})"
            )
        kind, value, _ = t
        if kind == "op" and value == "!":
            d = deeper(depth)
            i += 1
            return ("not", parse_not(d))
        if kind == "op" and value == "(":
            d = deeper(depth)
            i += 1
            inner = parse_or(d)
            if peek() is None or peek()[:2] != ("op", ")"):
                raise InputError(f"the profile misses a ')' {where()}")
            i += 1
            return inner
        if kind == "op":
            raise InputError(f"the profile has {value!r} {where()} where a mutation was expected")
        i += 1
        lit = _literal(value, ctx)
        if lit.text not in index:
            index[lit.text] = len(literals)
            literals.append(lit)
        return ("lit", index[lit.text])

    tree = parse_or(0)
    if i < len(toks):
        kind, value, _ = toks[i]
        what = repr(value) if kind == "op" else f"{value!r} (join terms with & or |)"
        raise InputError(f"the profile has an unexpected {what} {where()}")
    return Profile(tree, literals)


def _context(coll: Collection) -> _Context:
    def make() -> _Context:
        cds = json.loads(coll.dataset.read_bytes("cds.json"))
        return _Context(
            coll.reference(),
            {c["name"]: np.asarray(c["positions"], dtype=np.int64) for c in cds},
            {c["name"]: c.get("strand", "+") for c in cds},
        )

    return _kept("profile-context", coll, make)


# -- the inverted index of a partition ----------------------------------------------------------
@dataclass
class _Postings:
    n: int
    length: int
    ev_keys: np.ndarray  # int64, sorted: slot << 32 | (state + 2**31)
    ev_rows: np.ndarray  # int32, the row of each key
    aa_keys: np.ndarray  # int64, sorted: gene id << 32 | token id
    aa_rows: np.ndarray
    token_ids: dict  # token text → id
    gene_ids: dict  # gene name → id
    insertion_ids: dict  # inserted sequence → id
    lead_end: np.ndarray  # int32: the first base after a leading missing range (1 when none)
    tail_start: np.ndarray  # int32: the first base of a trailing missing range (L + 1 when none)
    short_start: np.ndarray  # interior missing runs of at most _SHORT bases, sorted by start
    short_end: np.ndarray
    short_row: np.ndarray
    long_start: np.ndarray  # the longer interior runs
    long_end: np.ndarray
    long_row: np.ndarray
    status: np.ndarray

    def event_rows(self, slot: int, state: int) -> np.ndarray:
        key = (slot << 32) | (state + 2**31)
        lo, hi = np.searchsorted(self.ev_keys, [key, key + 1])
        return self.ev_rows[lo:hi]

    def slot_rows(self, first: int, last: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.ev_keys, [first << 32, (last + 1) << 32])
        return self.ev_rows[lo:hi]

    def token_rows(self, token: str) -> np.ndarray:
        tid = self.token_ids.get(token)
        if tid is None:
            return self.aa_rows[:0]
        key = (self.gene_ids[token.split(":", 1)[0]] << 32) | tid
        lo, hi = np.searchsorted(self.aa_keys, [key, key + 1])
        return self.aa_rows[lo:hi]

    def gene_rows(self, gene: str) -> np.ndarray:
        gid = self.gene_ids.get(gene)
        if gid is None:
            return self.aa_rows[:0]
        lo, hi = np.searchsorted(self.aa_keys, [gid << 32, (gid + 1) << 32])
        return self.aa_rows[lo:hi]

    def uncovered(self, cover: Sequence[tuple[int, int]]) -> np.ndarray:
        """Rows that miss a base of any of the inclusive ranges ``cover``."""
        a0 = min(a for a, _ in cover)
        b1 = max(b for _, b in cover)
        out = (self.lead_end > a0) | (self.tail_start <= b1)
        for a, b in cover:  # missing [s, e) meets [a, b] when s <= b and e > a
            lo, hi = np.searchsorted(self.short_start, [a - _SHORT + 1, b + 1])
            out[self.short_row[lo:hi][self.short_end[lo:hi] > a]] = True
            hit = (self.long_start <= b) & (self.long_end > a)
            out[self.long_row[hit]] = True
        return out


def _build_postings(part: Partition) -> _Postings:
    ix = part.index
    n, L = ix.n, ix.length
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(ix.ev_ptr))
    keys = (ix.ev_slot.astype(np.int64) << 32) | (ix.ev_state.astype(np.int64) + 2**31)
    order = np.argsort(keys, kind="stable")
    gene_ids: dict[str, int] = {}
    tok_gene = np.asarray(
        [gene_ids.setdefault(t.split(":", 1)[0], len(gene_ids)) for t in ix.aa] or [0],
        dtype=np.int64,
    )
    aa_rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(ix.aa_ptr))
    tok = ix.aa_tok.astype(np.int64)
    aa_keys = (tok_gene[tok] << 32) | tok if tok.size else tok
    aa_order = np.argsort(aa_keys, kind="stable")
    # missing ranges: leading and trailing ends as one number per genome, the rest as runs
    count = np.diff(ix.ms_ptr)
    has = count > 0
    first = ix.ms_ptr[:-1][has]
    last = ix.ms_ptr[1:][has] - 1
    lead_end = np.ones(n, dtype=np.int32)
    tail_start = np.full(n, L + 1, dtype=np.int32)
    is_lead = ix.ms_start[first] == 1
    lead_end[np.flatnonzero(has)[is_lead]] = ix.ms_end[first[is_lead]]
    is_tail = (ix.ms_end[last] == L + 1) & ~(is_lead & (first == last))
    tail_start[np.flatnonzero(has)[is_tail]] = ix.ms_start[last[is_tail]]
    interior = np.ones(ix.ms_start.size, dtype=bool)
    interior[first[is_lead]] = False
    interior[last[is_tail]] = False
    ms_row = np.repeat(np.arange(n, dtype=np.int32), count)[interior]
    s, e = ix.ms_start[interior], ix.ms_end[interior]
    short = (e - s) <= _SHORT
    so = np.argsort(s[short], kind="stable")
    return _Postings(
        n=n,
        length=L,
        ev_keys=keys[order],
        ev_rows=rows[order],
        aa_keys=aa_keys[aa_order],
        aa_rows=aa_rows[aa_order],
        token_ids={t: i for i, t in enumerate(ix.aa)},
        gene_ids=gene_ids,
        insertion_ids={t: i for i, t in enumerate(ix.insertions)},
        lead_end=lead_end,
        tail_start=tail_start,
        short_start=s[short][so],
        short_end=e[short][so],
        short_row=ms_row[short][so],
        long_start=s[~short],
        long_end=e[~short],
        long_row=ms_row[~short],
        status=ix.status,
    )


_POSTINGS: OrderedDict[tuple, tuple[Partition, _Postings]] = OrderedDict()
_POSTINGS_LOCK = Lock()


def _postings(part: Partition) -> _Postings:
    """The inverted index of a partition, built once per process (as many kept as partitions)."""
    from .index import CACHE_PARTITIONS

    key = (part.collection, part.version, part.files)
    with _POSTINGS_LOCK:
        hit = _POSTINGS.get(key)
        if hit is not None and hit[0] is part:
            _POSTINGS.move_to_end(key)
            return hit[1]
    built = _build_postings(part)
    with _POSTINGS_LOCK:
        _POSTINGS[key] = (part, built)
        while len(_POSTINGS) > CACHE_PARTITIONS:
            _POSTINGS.popitem(last=False)
    return built


# -- evaluation ---------------------------------------------------------------------------------
def _literal_values(lit: Literal, post: _Postings) -> tuple[np.ndarray, np.ndarray]:
    """``(true, false)`` rows of one literal over a partition (module docstring)."""
    if lit.kind == "event":
        if lit.seq:
            iid = post.insertion_ids.get(lit.seq)
            rows = post.event_rows(lit.slot, -(1 + iid)) if iid is not None else post.ev_rows[:0]
        else:
            rows = post.event_rows(lit.slot, lit.state)
    elif lit.kind == "region":
        rows = post.slot_rows(lit.slot, lit.slot_end)
    elif lit.kind == "aa":
        rows = post.token_rows(lit.token)
    else:
        rows = post.gene_rows(lit.token)
    true = np.zeros(post.n, dtype=bool)
    true[rows] = True
    false = ~post.uncovered(lit.cover)
    false &= ~true
    return true, false


def evaluate(profile: Profile, post: _Postings) -> tuple[np.ndarray, np.ndarray, list]:
    """``(true, false, per-literal (true, false))`` boolean rows of a partition (Kleene)."""
    values = [_literal_values(lit, post) for lit in profile.literals]

    def ev(node):
        op = node[0]
        if op == "lit":
            return values[node[1]]
        if op == "not":
            t, f = ev(node[1])
            return f, t
        parts = [ev(x) for x in node[1]]
        t, f = parts[0][0].copy(), parts[0][1].copy()
        for pt, pf in parts[1:]:
            if op == "and":
                t &= pt
                f |= pf
            else:
                t |= pt
                f &= pf
        return t, f

    t, f = ev(profile.tree)
    return t, f, values


# -- metadata groups ---------------------------------------------------------------------------
def _date_labels(value: str) -> tuple[str, str]:
    """``(ISO week, month)`` of a sampling date; ``""`` for what the date does not say."""
    value = (value or "").strip()
    month = value[:7] if re.match(r"^\d{4}-(0[1-9]|1[0-2])(?:-|$)", value) else ""
    try:
        d = dt.date.fromisoformat(value[:10]) if len(value) >= 10 else None
    except ValueError:
        d = None
    if d is None:
        return "", month
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}", month


def _collection_groups(coll: Collection) -> dict:
    """Per metadata row, a code per breakdown (and the labels), plus strain → row."""

    def make() -> dict:
        table = coll.metadata()
        strains = table["strain"].to_pylist()
        date_col = coll.meta.get("date_column") or "date"
        out: dict = {"row": {s: i for i, s in enumerate(strains)}}
        dates = table[date_col].to_pylist() if date_col in table.column_names else None
        labels = {"week": [], "month": []}
        if dates is not None:
            seen: dict[str, tuple[str, str]] = {}
            for d in dates:
                if d not in seen:
                    seen[d] = _date_labels(d)
            labels = {
                "week": [seen[d][0] for d in dates],
                "month": [seen[d][1] for d in dates],
            }
        for name in BREAKDOWNS:
            if name in labels:
                values = labels[name]
            elif name in table.column_names:
                values = [(v or "").strip() for v in table[name].to_pylist()]
            else:
                values = [""] * len(strains)
            uniq, codes = np.unique(
                np.asarray(values, dtype=object).astype(str), return_inverse=True
            )
            out[name] = (codes.astype(np.int32), [str(u) for u in uniq])
        return out

    return _kept("profile-groups", coll, make)


_GROUPS: OrderedDict[tuple, tuple[Partition, dict]] = OrderedDict()


def _partition_groups(coll: Collection, part: Partition) -> dict:
    """Breakdown codes of a partition's rows (``-1``: the genome has no metadata row)."""
    key = (part.collection, part.version, part.files)
    with _POSTINGS_LOCK:
        hit = _GROUPS.get(key)
        if hit is not None and hit[0] is part:
            return hit[1]
    groups = _collection_groups(coll)
    row_of = groups["row"]
    rows = np.fromiter((row_of.get(s, -1) for s in part.index.strains), np.int64, part.index.n)
    out = {}
    for name in BREAKDOWNS:
        codes, labels = groups[name]
        c = np.where(rows >= 0, codes[np.maximum(rows, 0)] if codes.size else -1, -1)
        out[name] = (c.astype(np.int32), labels)
    with _POSTINGS_LOCK:
        _GROUPS[key] = (part, out)
        while len(_GROUPS) > 16:
            _GROUPS.popitem(last=False)
    return out


def _group_counts(codes, labels, true, unknown, searched) -> dict:
    k = len(labels) + 1
    shifted = codes + 1  # 0: no metadata row
    t = np.bincount(shifted[true], minlength=k)
    u = np.bincount(shifted[unknown], minlength=k)
    s = np.bincount(shifted[searched], minlength=k)
    names = ["", *labels]
    out: dict[str, list[int]] = {}
    for i in np.flatnonzero(s).tolist():
        row = out.setdefault(names[i], [0, 0, 0])
        row[0] += int(t[i])
        row[1] += int(u[i])
        row[2] += int(s[i])
    return out


# -- one task ----------------------------------------------------------------------------------
def profile_task(
    store: dict,
    collection: str,
    version: str,
    partition: int,
    parts: list[int],
    expression: str,
    by: list[str] = ("month", "country"),
    similar: bool = False,
    qc: list[str] = ("good", "mediocre", "bad"),
) -> dict:
    """Fan-out task: the profile's counts, breakdowns (and patterns) over one partition.

    The evaluation is one vectorised pass over postings kept per worker, so a task does not
    split itself: its cost is the literals' rows, not the partition's genomes."""
    coll, part = _partition(store, collection, version, partition, parts)
    profile = parse_profile(expression, _context(coll))
    post = _postings(part)
    searched = _allowed(qc)[post.status]
    t, f, values = evaluate(profile, post)
    true = t & searched
    unknown = searched & ~t & ~f
    groups = _partition_groups(coll, part)
    out = {
        "collection": collection,
        "searched": int(searched.sum()),
        "true": int(true.sum()),
        "unknown": int(unknown.sum()),
        "groups": {
            name: _group_counts(*groups[name], true, unknown, searched)
            for name in dict.fromkeys(("week", *by))
        },
    }
    if similar:
        carry = np.zeros(post.n, dtype=np.int32)
        known = np.zeros(post.n, dtype=np.int32)
        for i, (lt, lf) in enumerate(values):
            carry |= lt.astype(np.int32) << i
            known |= (lt | lf).astype(np.int32) << i
        out["patterns"] = {
            name: {str(p): int(c) for p, c in zip(*np.unique(v[searched], return_counts=True),
                                                  strict=True)}
            for name, v in (("carry", carry), ("known", known))
        }  # fmt: skip
    return out


# -- the whole search --------------------------------------------------------------------------
def _superset_sums(counts: np.ndarray, m: int) -> np.ndarray:
    """``out[S] = Σ counts[P]`` over patterns ``P ⊇ S`` (the subset-sum transform, one pass
    per bit; Yates 1937's algorithm for factorial designs)."""
    f = counts.astype(np.int64).copy()
    for i in range(m):
        v = f.reshape(-1, 2, 1 << i)
        v[:, 0, :] += v[:, 1, :]
    return f


def _similar(literals: list[Literal], carry: dict, known: dict) -> dict:
    m = len(literals)
    c = np.zeros(1 << m, dtype=np.int64)
    k = np.zeros(1 << m, dtype=np.int64)
    for p, n in carry.items():
        c[int(p)] += n
    for p, n in known.items():
        k[int(p)] += n
    carriers = _superset_sums(c, m)
    covering = _superset_sums(k, m)
    names = [lit.text for lit in literals]

    def members(mask: int) -> list[str]:
        return [names[i] for i in range(m) if mask >> i & 1]

    subsets = []
    for size in range(1, m + 1):
        masks = [sum(1 << i for i in combo) for combo in combinations(range(m), size)]
        masks.sort(key=lambda s: (-int(carriers[s]), [i for i in range(m) if s >> i & 1]))
        best = []
        for s in masks[:SIMILAR_BEST]:
            cov = int(covering[s])
            best.append(
                {"mutations": members(s), "genomes": int(carriers[s]), "covered": cov,
                 "frequency": int(carriers[s]) / cov if cov else None}
            )  # fmt: skip
        subsets.append({"size": size, "best": best})
    exact = sorted(((n, int(p)) for p, n in carry.items() if n), key=lambda x: (-x[0], x[1]))
    return {
        "mutations": names,
        "subsets": subsets,
        "patterns": [{"mutations": members(p), "genomes": n} for n, p in exact[:SIMILAR_PATTERNS]],
    }


def _row(t: int, u: int, s: int) -> dict:
    f = s - t - u
    return {"count": t, "unknown": u, "searched": s, "frequency": t / (t + f) if t + f else None}


def profile_search(
    collections: Sequence[Collection],
    expression: str,
    *,
    by: Sequence[str] = ("month", "country"),
    similar: bool = False,
    qc: Sequence[str] = ("good", "mediocre", "bad"),
    executor="serial",
    partition_genomes: int = PARTITION_GENOMES,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """The genomes of one or more collections that match a profile (module docstring).

    Returns ``{"expression", "mutations", "count", "unknown", "searched", "frequency",
    "collections": [...], "by": {name: [...]}, "histogram": [...], "similar"?, "provenance"}``;
    ``frequency`` is ``count / (count + false)``, ``None`` when no genome is known.
    """
    if not collections:
        raise InputError("give at least one collection")
    names = [c.name for c in collections]
    if len(set(names)) != len(names):
        raise InputError("a collection is named twice")
    if len({c.reference() for c in collections}) > 1:
        raise InputError("the collections were aligned to different references")
    by = list(dict.fromkeys(by))
    bad = [b for b in by if b not in BREAKDOWNS]
    if bad:
        raise InputError(f"breakdowns are {', '.join(BREAKDOWNS)}; not {', '.join(bad)}")
    bad = [s for s in qc if s not in STATUS_CODES or s == "error"]
    if bad or not qc:
        raise InputError(f"QC statuses are good, mediocre, bad; not {', '.join(bad) or 'none'}")
    profile = parse_profile(expression, _context(collections[0]))
    if similar and len(profile.literals) > MAX_SIMILAR:
        raise InputError(
            f"similar profiles take at most {MAX_SIMILAR} distinct mutations, "
            f"not {len(profile.literals)}"
        )
    tasks = []
    for coll in collections:
        for number, (parts, genomes) in enumerate(plan_partitions(coll, partition_genomes)):
            if genomes == 0:
                continue
            tasks.append(
                Task(
                    _TASK,
                    {"store": coll.dataset.store.reference(), "collection": coll.name,
                     "version": coll.dataset.manifest["version"], "partition": number,
                     "parts": parts, "expression": expression, "by": by, "similar": similar,
                     "qc": list(qc)},
                    key=f"{coll.name} partition {number}",
                    weight=genomes,
                )
            )  # fmt: skip
    results = run_plan(tasks, executor, retries=retries, progress=progress) if tasks else []
    per_coll: dict[str, list[int]] = {n: [0, 0, 0] for n in names}
    groups: dict[str, dict[str, list[int]]] = {}
    carry: dict[str, int] = {}
    known: dict[str, int] = {}
    for r in results:
        row = per_coll[r["collection"]]
        row[0] += r["true"]
        row[1] += r["unknown"]
        row[2] += r["searched"]
        for name, counts in r["groups"].items():
            g = groups.setdefault(name, {})
            for label, (t, u, s) in counts.items():
                acc = g.setdefault(label, [0, 0, 0])
                acc[0] += t
                acc[1] += u
                acc[2] += s
        for p, n in r.get("patterns", {}).get("carry", {}).items():
            carry[p] = carry.get(p, 0) + n
        for p, n in r.get("patterns", {}).get("known", {}).items():
            known[p] = known.get(p, 0) + n
    total = [sum(v[i] for v in per_coll.values()) for i in range(3)]

    def listed(name: str) -> list[dict]:
        items = [{name: label, **_row(*v)} for label, v in groups.get(name, {}).items()]
        if name in ("week", "month"):
            return sorted(items, key=lambda x: (x[name] == "", x[name]))
        return sorted(items, key=lambda x: (-x["count"], -x["searched"], x[name]))

    out = {
        "expression": profile.text(),
        "mutations": [lit.text for lit in profile.literals],
        **_row(*total),
        "collections": [{"collection": n, **_row(*v)} for n, v in per_coll.items()],
        "by": {name: listed(name) for name in by},
        "histogram": listed("week"),
    }
    if similar:
        out["similar"] = _similar(profile.literals, carry, known)
    out["provenance"] = provenance(
        "strains profile",
        {"expression": expression, "by": by, "similar": similar, "qc": list(qc),
         "tasks": len(tasks)},
        [{"source": f"{KIND}/{c.name}@{c.dataset.manifest['version']}", "role": "collection",
          "store": c.dataset.store.url} for c in collections],
    )  # fmt: skip
    return out
