"""The closest known genomes to a query: an exact k-nearest-neighbour search over collections.

**Distance** (the default, ``metric="covered"``): the number of mutation events — substitutions,
deletions, insertions, as :mod:`sandgrain.strains.index` encodes them — that one genome has and
the other lacks, over the positions *both* cover. Missing data (N, trimmed ends, ambiguity
codes) on either side never counts as a difference. Two different changes at the same place
(``C241T`` against ``C241A``, or deletions of different lengths starting at the same base)
count once. A deletion counts as one event whatever its length: one mutation, as parsimony
counts it (UShER, Turakhia et al. 2021, Nat Genet 53:809). Each neighbour reports ``covered``,
the reference positions both genomes cover.

``metric="nextclade"`` is Nextclade's placement distance (Nextclade documentation, "Algorithm:
phylogenetic placement"; Aksamentov et al. 2021, JOSS 6:3773), with the collection genome in the
place of the tree node: :math:`D = M_{ref} + M_{query} - 2 M_{agree} - M_{disagree} -
M_{unknown}` over nucleotide substitutions, where *agree* are substitutions both have,
*disagree* substitutions at the same position to different bases, and *unknown* the genome's
substitutions where the query is missing, ambiguous or deleted (deleted positions are
uninformative since Nextclade 3.21.2). The genome's own missing data is read as reference, as
a tree node's would be.

**Ranking** (the documented tie rule): distance ascending, then ``covered`` descending (more
shared evidence first), then strain id, then collection name. The answer is exactly the first
``k`` of that order; ``ties_at_k`` says how many genomes share the ``k``-th distance, so a
user sees when the cut fell inside a tie.

**Exact and fast.** The distances of a whole partition come from one numba kernel that walks
each genome's events against a dense copy of the query (``O(events + query events + missing
ranges)`` per genome). The tests compare every answer with a plain all-pairs computation over
reconstructed genomes (``tests/strains/test_nearest.py``).

**Fan-out that splits itself.** A search is a plan of one task per partition of each
collection (:data:`PARTITION_GENOMES` genomes of consecutive calls parts). A task scans its rows
in chunks and measures its own time against its :class:`~sandgrain.fanout.TaskBudget`: once
over, it returns what it has finished and the rest of its rows in two halves as new tasks
(:class:`~sandgrain.fanout.Split`), recursively, as CSIRO's serverless PathsBeacon hands the
remainder of a query to new invocations of its own function. Each task returns its own first
``k`` in the ranking order, with the counts of distances up to its ``k``-th; merging those is
exact (a genome among the first ``k`` overall is among the first ``k`` of its task).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from threading import Lock

import numpy as np
from numba import njit, prange

from ..errors import InputError
from ..fanout import Split, Task, TaskBudget, run_plan
from ..fanout.budget import halves
from ..provenance import provenance
from ..storage import Store
from .access import Caller, access_of, floor, level
from .collection import KIND, Collection
from .index import (
    BASES,
    DEL_BASE,
    STATUS_CODES,
    IndexPart,
    Partition,
    encode_events,
    load_partition,
)

__all__ = [
    "METRICS",
    "PARTITION_GENOMES",
    "Query",
    "nearest",
    "nearest_task",
    "plan_partitions",
    "query_from_calls",
    "rank",
    "rank_many",
]

METRICS = ("covered", "nextclade")
#: Genomes per partition (one fan-out task each, before any split).
PARTITION_GENOMES = 200_000
#: Rows a task scans between two looks at its budget.
CHUNK_ROWS = 25_000
MAX_K = 1000
_NONE = np.int32(-(2**31))  # no query event in a slot
_ABSENT = -(2**31) + 1  # a query insertion the partition has never seen: matches nothing
_FAR = np.int32(2**31 - 1)
_NONE_I = -(2**31)  # the same, as the kernel reads it
_MISS = -(2**31) + 2  # the query does not cover the slot's position
_TASK = "sandgrain.strains.nearest:nearest_task"


# -- the query ---------------------------------------------------------------------------------
@dataclass
class Query:
    """A query genome as the search reads it (JSON-friendly, so tasks can carry it)."""

    name: str
    events: list  #: ``[slot, state]``; an insertion's state is its inserted sequence (text)
    missing: list  #: ``[start, end)`` ranges, 1-based

    def to_json(self) -> dict:
        return {"name": self.name, "events": self.events, "missing": self.missing}

    @classmethod
    def from_json(cls, doc: dict) -> Query:
        return cls(doc["name"], [list(e) for e in doc["events"]], [list(m) for m in doc["missing"]])


def query_from_calls(calls, length: int) -> Query:
    """The :class:`Query` of a genome's calls (from :mod:`sandgrain.strains.query`)."""
    seqs: list[str] = []

    def ins_id(seq: str) -> int:
        seqs.append(seq)
        return len(seqs) - 1

    if calls.error:
        raise InputError(f"query {calls.strain!r} could not be aligned: {calls.error}")
    events, missing = encode_events(calls, ins_id, length)
    out = [[s, seqs[-(st + 1)] if st < 0 else st] for s, st in events]
    return Query(calls.strain, out, [list(m) for m in missing])


@dataclass
class _Prepared:
    slots: np.ndarray
    states: np.ndarray
    dense: np.ndarray
    miss: np.ndarray  # uint8 [L + 2]: the query does not cover p (1-based)
    miss_nc: np.ndarray  # the same, or p is deleted in the query (Nextclade's unknown)
    miss_cum: np.ndarray  # int32 [L + 2]: missing positions in 1..p-1
    ev_cum: np.ndarray  # int32 [L + 2]: query events at positions 1..p-1
    missing_total: int
    n_subs: int


@lru_cache(maxsize=4)
def _slot_positions(length: int) -> np.ndarray:
    """The reference position each slot reads, for a reference of ``length``."""
    return np.maximum(np.arange(2 * length + 4) >> 1, 1).clip(max=length + 1)


def _prepare(q: Query, part: IndexPart) -> _Prepared:
    L = part.length
    ins = {s: i for i, s in enumerate(part.insertions)}
    slots = np.asarray([e[0] for e in q.events], dtype=np.int32)
    states = np.asarray(
        [(-(1 + ins[st]) if st in ins else _ABSENT) if isinstance(st, str) else st
         for _, st in q.events],
        dtype=np.int32,
    )  # fmt: skip
    dense = np.full(2 * L + 4, _NONE, dtype=np.int32)
    dense[slots] = states
    miss = np.zeros(L + 2, dtype=np.uint8)
    for a, b in q.missing:
        miss[a:b] = 1
    miss[0] = miss[L + 1] = 1
    miss_nc = miss.copy()
    for s, st in zip(slots.tolist(), states.tolist(), strict=True):
        if s % 2 == 0 and st >= DEL_BASE:
            miss_nc[s // 2 : s // 2 + st - DEL_BASE] = 1
    cum = np.zeros(L + 2, dtype=np.int32)
    np.cumsum(miss[:-1], out=cum[1:])
    # one lookup per genome event: the query's state in the slot, or _MISS where the query does
    # not cover the slot's position (slot 2p and 2p + 1 read position p; slot 1 reads 1)
    dense[miss[_slot_positions(L)] == 1] = _MISS
    n_subs = int(((slots % 2 == 0) & (states >= 0) & (states < DEL_BASE)).sum())
    per_pos = np.bincount(np.maximum(slots >> 1, 1), minlength=L + 2)[: L + 2]
    ev_cum = np.zeros(L + 2, dtype=np.int32)
    np.cumsum(per_pos[:-1], out=ev_cum[1:])
    return _Prepared(
        slots, states, dense, miss, miss_nc, cum, ev_cum, int(miss[1 : L + 1].sum()), n_subs
    )


# -- the kernel --------------------------------------------------------------------------------
@njit(parallel=True, cache=True)
def _distances(
    lo, hi, ev_ptr, ev_slot, ev_state, ms_ptr, ms_start, ms_end, status, allowed,
    q_slots, q_ev_cum, q_dense, q_miss, q_miss_nc, q_cum, q_missing_total, q_subs, length,
    nextclade,
):  # fmt: skip
    n = hi - lo
    dist = np.empty(n, dtype=np.int32)
    cov = np.empty(n, dtype=np.int32)
    m = q_slots.size
    for r in prange(n):
        g = lo + r
        if not allowed[status[g]]:
            dist[r] = 2**31 - 1
            cov[r] = 0
            continue
        # the genome's missing ranges: coverage, and the query events it does not cover
        lost = 0
        covered_q = m
        for j in range(ms_ptr[g], ms_ptr[g + 1]):
            a = ms_start[j]
            b = ms_end[j]
            lost += (b - a) - (q_cum[b] - q_cum[a])
            covered_q -= q_ev_cum[b] - q_ev_cum[a]
        cov[r] = length - q_missing_total - lost
        if nextclade:
            m_ref = 0
            agree = 0
            disagree = 0
            unknown = 0
            for e in range(ev_ptr[g], ev_ptr[g + 1]):
                s = ev_slot[e]
                st = ev_state[e]
                if s & 1 or st < 0 or st >= 4:
                    continue
                m_ref += 1
                p = s >> 1
                if q_miss_nc[p]:
                    unknown += 1
                    continue
                qs = q_dense[s]
                if qs == st:
                    agree += 1
                elif qs >= 0 and qs < 4:
                    disagree += 1
            dist[r] = m_ref + q_subs - 2 * agree - disagree - unknown
            continue
        d = 0
        agree = 0
        samepos = 0
        for e in range(ev_ptr[g], ev_ptr[g + 1]):
            qs = q_dense[ev_slot[e]]  # the query's state there, or that it does not cover it
            if qs == _MISS:
                continue
            if qs == ev_state[e]:
                agree += 1
            else:
                d += 1
                if qs != _NONE_I:
                    samepos += 1
        dist[r] = d + covered_q - agree - samepos
    return dist, cov


def _scan(part: IndexPart, q: _Prepared, lo: int, hi: int, allowed: np.ndarray, metric: str):
    return _distances(
        lo, hi, part.ev_ptr, part.ev_slot, part.ev_state, part.ms_ptr, part.ms_start,
        part.ms_end, part.status, allowed, q.slots, q.ev_cum, q.dense, q.miss, q.miss_nc,
        q.miss_cum, q.missing_total, q.n_subs, part.length, metric == "nextclade",
    )  # fmt: skip


# -- one task's share --------------------------------------------------------------------------
def _event_text(slot: int, state, ref: str) -> str:
    p = slot >> 1
    if slot & 1:
        return f"ins:{p}:{state}"
    if state >= DEL_BASE:
        return f"del:{p}-{p + state - DEL_BASE - 1}"
    return f"{ref[p - 1]}{p}{BASES[state]}"


def _detail(part: IndexPart, g: int, q: Query, ref: str, metric: str) -> dict:
    """The shared, query-only and strain-only mutations of one genome against the query, over
    the positions that count for the metric."""
    g_miss = part.missing(g)
    q_miss = [tuple(m) for m in q.missing]

    def covered(ranges, p):
        return not any(a <= p < b for a, b in ranges)

    def named(slot, state):
        return part.insertions[-(state + 1)] if state < 0 else state

    mine = {s: named(s, st) for s, st in part.events(g)}
    theirs = {s: st for s, st in q.events}
    if metric == "nextclade":

        def subs(events: dict) -> dict:
            return {s: v for s, v in events.items() if s % 2 == 0 and isinstance(v, int) and v < 4}

        mine, theirs = subs(mine), subs(theirs)
    shared, q_only, s_only = [], [], []
    for s in sorted(set(mine) | set(theirs)):
        p = max(s >> 1, 1)
        if not (covered(g_miss, p) or metric == "nextclade") or not covered(q_miss, p):
            continue
        if s in mine and s in theirs and mine[s] == theirs[s]:
            shared.append(_event_text(s, mine[s], ref))
            continue
        if s in theirs:
            q_only.append(_event_text(s, theirs[s], ref))
        if s in mine:
            s_only.append(_event_text(s, mine[s], ref))
    return {"shared": shared, "query_only": q_only, "strain_only": s_only}


def _best(part: Partition, q: Query, prep: _Prepared, lo: int, hi: int, k: int,
          max_distance: int | None, allowed: np.ndarray, metric: str) -> dict:  # fmt: skip
    """The first ``k`` rows of ``[lo, hi)`` in the ranking order, and the distance counts."""
    dist, cov = _scan(part.index, prep, lo, hi, allowed, metric)
    return _select(part.index, dist, cov, lo, k, max_distance)


def _select(
    ix: IndexPart, dist, cov, lo: int, k: int, max_distance: int | None, where=None
) -> dict:
    """The first ``k`` of scanned rows and the counts of distances up to the ``k``-th:
    ``dist``/``cov`` of rows ``lo, lo + 1, …``, or of rows ``lo + where[i]`` when given."""

    def row(i: int) -> int:
        return lo + (i if where is None else int(where[i]))

    ok = dist < _FAR
    if max_distance is not None:
        ok &= dist <= max_distance
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return {"hits": [], "counts": [], "complete": True}
    key = dist[rows].astype(np.int64) * (ix.length + 2) + (ix.length - cov[rows])
    if rows.size > k:
        kth = np.partition(key, k - 1)[k - 1]
        pick = rows[key <= kth]
    else:
        pick = rows
    order = sorted(pick.tolist(), key=lambda i: (int(dist[i]), -int(cov[i]), ix.strains[row(i)]))
    order = order[:k]
    kth_d = int(dist[order[-1]]) if len(order) == k else None
    d_ok = dist[rows]
    counts = np.bincount(d_ok[d_ok <= kth_d] if kth_d is not None else d_ok).tolist()
    hits = [[row(i), int(dist[i]), int(cov[i]), ix.strains[row(i)]] for i in order]
    return {"hits": hits, "counts": counts, "complete": kth_d is None}


#: Queries scanned together in one pass over the genomes (the ``covered`` distance).
BLOCK = 32


@njit(parallel=True, cache=True)
def _distances_block(
    lo, hi, ev_ptr, ev_slot, ev_state, ms_ptr, ms_start, ms_end, status, allowed,
    q_dense, q_ev_cum, q_cum, q_m, q_missing_total, length, none,
):  # fmt: skip
    """:func:`_distances` (``covered``) for a block of queries at once: each genome's events
    are read once, and each event's slot gives one contiguous row of the queries' states
    (int32, or int16 when the partition's states fit: ``none`` is the "no query event" value of
    that width; numba compiles one kernel per width).

    Per query the distance starts at the query's events the genome covers; each genome event
    the query covers then adds 1 if the query has nothing in its slot, takes 1 away if the
    query has the same change (counted once, not twice), and adds nothing if the query changed
    the slot differently (the pair counted once, as the query's event). A slot the query does
    not cover holds a value equal to neither, so it adds nothing: no branches."""
    B = q_m.size
    n = hi - lo
    dist = np.empty((n, B), dtype=np.int32)
    cov = np.empty((n, B), dtype=np.int32)
    for r in prange(n):
        g = lo + r
        if not allowed[status[g]]:
            for b in range(B):
                dist[r, b] = 2**31 - 1
                cov[r, b] = 0
            continue
        d = dist[r]
        c = cov[r]
        for b in range(B):
            d[b] = q_m[b]
            c[b] = length - q_missing_total[b]
        for j in range(ms_ptr[g], ms_ptr[g + 1]):
            a = ms_start[j]
            e = ms_end[j]
            for b in range(B):
                c[b] -= (e - a) - (q_cum[e, b] - q_cum[a, b])
                d[b] -= q_ev_cum[e, b] - q_ev_cum[a, b]
        for e in range(ev_ptr[g], ev_ptr[g + 1]):
            row = q_dense[ev_slot[e]]
            st = ev_state[e]
            for b in range(B):
                qs = row[b]
                d[b] += np.int32(qs == none) - np.int32(qs == st)
    return dist, cov


@njit(cache=True)
def _candidates_block(dist, cov, k, max_distance):
    """Per query (column): the histogram of distances, the ``k``-th distance ``D``, and every
    row at distance ``D`` or less (all usable rows when there are fewer than ``k``): two passes
    over the rows, whatever the number of genomes; the ranking is settled on these few."""
    n, B = dist.shape
    H = 1 << 14
    hist = np.zeros((B, H + 1), dtype=np.int64)
    for r in range(n):
        for b in range(B):
            d = dist[r, b]
            if d == 2**31 - 1 or (max_distance >= 0 and d > max_distance):
                continue
            hist[b, min(d, H)] += 1
    cut = np.full(B, H + 1, dtype=np.int64)  # H + 1: take every usable row
    for b in range(B):
        c = 0
        for d in range(H):
            c += hist[b, d]
            if c >= k:
                cut[b] = d
                break
    size = np.zeros(B, dtype=np.int64)
    for b in range(B):
        for d in range(min(cut[b], H) + 1):  # cut H + 1: the whole histogram, bucket H too
            size[b] += hist[b, d]
    ptr = np.zeros(B + 1, dtype=np.int64)
    for b in range(B):
        ptr[b + 1] = ptr[b] + size[b]
    rows = np.empty(ptr[B], dtype=np.int64)
    fill = ptr[:-1].copy()
    for r in range(n):
        for b in range(B):
            d = dist[r, b]
            if d == 2**31 - 1 or (max_distance >= 0 and d > max_distance):
                continue
            if cut[b] > H or d <= cut[b]:
                rows[fill[b]] = r
                fill[b] += 1
    return hist, rows, ptr


#: Queries per block when the partition's states fit 16 bits (twice as many per cache line).
BLOCK16 = 64


def _state16(ix: IndexPart) -> np.ndarray | None:
    """The partition's event states as int16 when every one fits (kept on the index), else
    ``None``: -32768 and -32767 stay free for "no query event" and "not covered"."""
    if not hasattr(ix, "_ev_state16"):
        st = ix.ev_state
        fits = st.size == 0 or (int(st.min()) >= -32766 and int(st.max()) <= 32767)
        ix._ev_state16 = st.astype(np.int16) if fits else None
    return ix._ev_state16


def _dense16(dense: np.ndarray) -> np.ndarray:
    """A query's slot states as int16: no event → -32768; not covered, or an insertion the
    partition has never seen (either way a genome event there adds nothing) → -32767."""
    out = dense.astype(np.int64)
    out[dense == _NONE_I] = -32768
    out[(dense == _MISS) | (dense == _ABSENT)] = -32767
    return out.astype(np.int16)


def _best_block(part: Partition, preps: list[_Prepared], lo: int, hi: int, k: int,
                max_distance: int | None, allowed: np.ndarray) -> list[dict]:  # fmt: skip
    """:func:`_best` for several queries (``covered`` distance), a block at a time."""
    ix = part.index
    st16 = _state16(ix)
    size = BLOCK16 if st16 is not None else BLOCK
    out = []
    for s0 in range(0, len(preps), size):
        block = preps[s0 : s0 + size]
        ev_cum = np.ascontiguousarray(np.stack([p.ev_cum for p in block], axis=1))
        cum = np.ascontiguousarray(np.stack([p.miss_cum for p in block], axis=1))
        m = np.asarray([p.slots.size for p in block], dtype=np.int32)
        missing = np.asarray([p.missing_total for p in block], dtype=np.int32)
        if st16 is not None:
            dense = np.ascontiguousarray(np.stack([_dense16(p.dense) for p in block], axis=1))
            dist, cov = _distances_block(
                lo, hi, ix.ev_ptr, ix.ev_slot, st16, ix.ms_ptr, ix.ms_start, ix.ms_end,
                ix.status, allowed, dense, ev_cum, cum, m, missing, ix.length, np.int16(-32768),
            )  # fmt: skip
        else:
            dense = np.ascontiguousarray(np.stack([p.dense for p in block], axis=1))
            dist, cov = _distances_block(
                lo, hi, ix.ev_ptr, ix.ev_slot, ix.ev_state, ix.ms_ptr, ix.ms_start, ix.ms_end,
                ix.status, allowed, dense, ev_cum, cum, m, missing, ix.length, np.int32(_NONE_I),
            )  # fmt: skip
        md = -1 if max_distance is None else int(max_distance)
        hist, rows, ptr = _candidates_block(dist, cov, k, md)
        for b in range(len(block)):
            r = rows[ptr[b] : ptr[b + 1]]
            picked = _select(ix, dist[r, b], cov[r, b], lo, k, max_distance, r)
            if not picked["complete"]:  # the counts come from the whole histogram
                picked["counts"] = hist[b, : picked["hits"][-1][1] + 1].tolist()
            out.append(picked)
    return out


def rank(
    index: IndexPart,
    query: Query,
    k: int,
    *,
    metric: str = "covered",
    max_distance: int | None = None,
    qc: Sequence[str] = ("good", "mediocre", "bad"),
) -> list[tuple[str, int, int]]:
    """The first ``k`` genomes of an index for one query, in process: ``(strain, distance,
    covered)`` (the kernel without the fan-out; the tests and benchmarks use it)."""
    part = Partition("", "", 0, (), index)
    got = _best(
        part, query, _prepare(query, index), 0, index.n, k, max_distance, _allowed(qc), metric
    )
    return [(strain, d, cov) for _, d, cov, strain in got["hits"]]


def rank_many(
    index: IndexPart,
    queries: Sequence[Query],
    k: int,
    *,
    max_distance: int | None = None,
    qc: Sequence[str] = ("good", "mediocre", "bad"),
) -> list[list[tuple[str, int, int]]]:
    """:func:`rank` (``covered`` distance) for many queries, scanned in blocks together."""
    part = Partition("", "", 0, (), index)
    preps = [_prepare(q, index) for q in queries]
    got = _best_block(part, preps, 0, index.n, k, max_distance, _allowed(qc))
    return [[(strain, d, cov) for _, d, cov, strain in g["hits"]] for g in got]


@lru_cache(maxsize=8)
def _collection_at(url: str, opts: str, name: str, version: str) -> Collection:
    st = Store.from_reference({"url": url, "storage_options": json.loads(opts)})
    return Collection(st.open_dataset(KIND, name, version))


def _partition(store: dict, collection: str, version: str, number: int, parts: list[int]):
    coll = _collection_at(
        store["url"], json.dumps(store.get("storage_options") or {}, sort_keys=True),
        collection, version,
    )  # fmt: skip
    files = coll.parts()[parts[0] : parts[1]]
    return coll, load_partition(coll, files, number)


def _allowed(qc: Sequence[str]) -> np.ndarray:
    allowed = np.zeros(len(STATUS_CODES), dtype=np.bool_)
    for s in qc:
        allowed[STATUS_CODES[s]] = True
    return allowed


def nearest_task(
    store: dict,
    collection: str,
    version: str,
    partition: int,
    parts: list[int],
    rows: list[int],
    queries: list[dict] | None = None,
    queries_key: str | None = None,
    k: int = 10,
    max_distance: int | None = None,
    metric: str = "covered",
    qc: list[str] = ("good", "mediocre", "bad"),
    budget: dict | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict | Split:
    """Fan-out task: the first ``k`` genomes of rows ``[rows[0], rows[1])`` of one partition for
    every query; over its time budget it returns what it has done and splits the rest."""
    coll, part = _partition(store, collection, version, partition, parts)
    if queries is None:
        st = Store.from_reference(store)
        queries = json.loads(st.read_bytes(queries_key))
    qs = [Query.from_json(d) for d in queries]
    prepared = [_prepare(q, part.index) for q in qs]
    allowed = _allowed(qc)
    ref = _reference(coll)
    meter = TaskBudget.from_json(budget).meter()
    lo, hi = rows
    results: list[dict] | None = None
    while lo < hi:
        end = min(hi, lo + max(1, chunk_rows))
        if metric == "covered" and len(qs) > 1:
            chunk = _best_block(part, prepared, lo, end, k, max_distance, allowed)
        else:
            chunk = [
                _best(part, q, p, lo, end, k, max_distance, allowed, metric)
                for q, p in zip(qs, prepared, strict=True)
            ]
        if results is not None:
            chunk = [_merge_answers([a, b], k) for a, b in zip(results, chunk, strict=True)]
        results = chunk
        meter.add(int(part.index.ev_ptr[end] - part.index.ev_ptr[lo]))
        lo = end
        if lo < hi and meter.over():
            done = _finish(results, part, qs, ref, metric, collection)
            rest = [
                Task(
                    _TASK,
                    {
                        "store": store,
                        "collection": collection,
                        "version": version,
                        "partition": partition,
                        "parts": parts,
                        "rows": [h[0], h[-1] + 1],
                        "queries": queries if queries_key is None else None,
                        "queries_key": queries_key,
                        "k": k,
                        "max_distance": max_distance,
                        "metric": metric,
                        "qc": list(qc),
                        "budget": budget,
                        "chunk_rows": chunk_rows,
                    },
                    key=f"{collection} p{partition} rows {h[0]}-{h[-1] + 1}",
                    weight=h[-1] + 1 - h[0],
                )  # fmt: skip
                for h in halves(range(lo, hi))
            ]
            return Split(tuple(rest), done=done, done_weight=lo - rows[0])
    return _finish(results or [], part, qs, ref, metric, collection)


def _finish(results, part: Partition, qs, ref, metric, collection) -> dict:
    """A task's answer: per query its hits with their details, and the distance counts."""
    out = []
    for q, r in zip(qs, results, strict=True):
        hits = []
        for row, d, cov, strain in r["hits"]:
            hits.append(
                {"strain": strain, "distance": d, "covered": cov, "collection": collection,
                 **_detail(part.index, row, q, ref, metric)}
            )  # fmt: skip
        out.append({"hits": hits, "counts": r["counts"], "complete": r["complete"]})
    return {"collection": collection, "queries": out}


_KEPT: dict[tuple, object] = {}
_KEPT_LOCK = Lock()


def _kept(what: str, coll: Collection, make: Callable[[], object]):
    """A value derived from one collection version, made once per process (8 kept)."""
    ds = coll.dataset
    key = (what, ds.store.url, ds.name, ds.manifest["version"])
    with _KEPT_LOCK:
        if key in _KEPT:
            return _KEPT[key]
    value = make()
    with _KEPT_LOCK:
        _KEPT[key] = value
        while len(_KEPT) > 8:
            _KEPT.pop(next(iter(_KEPT)))
    return value


def _reference(coll: Collection) -> str:
    return _kept("reference", coll, coll.reference)


# -- merging -----------------------------------------------------------------------------------
def _hit_key(h) -> tuple:
    if isinstance(h, dict):
        return (h["distance"], -h["covered"], h["strain"], h.get("collection", ""))
    return (h[1], -h[2], h[3])


def _merge_answers(answers: list[dict], k: int) -> dict:
    """Answers of disjoint sets of genomes for one query, as one (exact; see module)."""
    hits = sorted((h for a in answers for h in a["hits"]), key=_hit_key)[:k]
    dmax = None
    if len(hits) == k:
        dmax = hits[-1]["distance"] if isinstance(hits[-1], dict) else hits[-1][1]
    counts: list[int] = []
    for a in answers:
        c = a["counts"] if dmax is None else a["counts"][: dmax + 1]
        if len(c) > len(counts):
            counts += [0] * (len(c) - len(counts))
        for i, v in enumerate(c):
            counts[i] += v
    return {"hits": hits, "counts": counts, "complete": dmax is None}


# -- planning and the whole search -------------------------------------------------------------
def plan_partitions(coll: Collection, size: int = PARTITION_GENOMES) -> list[tuple[list[int], int]]:
    """Consecutive calls parts of about ``size`` genomes: ``([first, end) part numbers,
    genomes)``."""
    counts = _part_genomes(coll)
    out: list[tuple[list[int], int]] = []
    start, total = 0, 0
    for i, n in enumerate(counts):
        if total and total + n > size:
            out.append(([start, i], total))
            start, total = i, 0
        total += n
    if total or not out:
        out.append(([start, len(counts)], total))
    return out


def _part_genomes(coll: Collection) -> list[int]:
    known = coll.meta.get("part_genomes") or {}
    out = []
    for f in coll.parts():
        if f in known:
            out.append(int(known[f]))
        else:  # a collection made before the counts were kept
            import pyarrow.parquet as pq

            out.append(pq.ParquetFile(io.BytesIO(coll.dataset.read_bytes(f))).metadata.num_rows)
    return out


def nearest(
    store: Store,
    collections: Sequence[Collection],
    query_calls: Sequence,
    *,
    k: int = 10,
    max_distance: int | None = None,
    metric: str = "covered",
    qc: Sequence[str] = ("good", "mediocre", "bad"),
    executor="serial",
    budget: TaskBudget | None = None,
    partition_genomes: int = PARTITION_GENOMES,
    chunk_rows: int = CHUNK_ROWS,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
    stats: dict | None = None,
    caller: Caller | None = None,
) -> list[dict]:
    """The ``k`` nearest genomes of every query over one or more collections (module docstring).

    ``collections`` may lie in different stores (a lab's own and an international one): each
    answers from its own store, and neighbours are labelled with their collection. Returns one
    document per query: ``{"query", "neighbours": [...], "ties_at_k", "searched", ...}``.
    ``caller`` (:class:`~sandgrain.strains.access.Caller`; ``None``: the store's owner) sees
    the neighbours of the collections its access allows; each other collection contributes
    only its counts of genomes by distance, up to its own ``k``-th (``"counts_only"``, floored
    as :func:`~sandgrain.strains.access.floor` says).
    ``stats`` (a dict), when given, receives the number of tasks the plan started with and the
    number of answers they gave (more when tasks split). A task looks at its time budget every
    ``chunk_rows`` genomes.
    """
    if not collections:
        raise InputError("give at least one collection")
    if not 1 <= k <= MAX_K:
        raise InputError(f"k is 1 to {MAX_K}, not {k}")
    if metric not in METRICS:
        raise InputError(f"the distance is one of {', '.join(METRICS)}, not {metric!r}")
    if max_distance is not None and max_distance < 0:
        raise InputError("the largest distance is 0 or more")
    bad = [s for s in qc if s not in STATUS_CODES or s == "error"]
    if bad or not qc:
        raise InputError(f"QC statuses are good, mediocre, bad; not {', '.join(bad) or 'none'}")
    refs = {c.reference() for c in collections}
    if len(refs) > 1:
        raise InputError("the collections were aligned to different references")
    names = [c.name for c in collections]
    if len(set(names)) != len(names):
        raise InputError("a collection is named twice")
    length = int(collections[0].meta["reference"]["length"])
    queries = [query_from_calls(c, length) for c in query_calls]
    if not queries:
        raise InputError("no query genomes")
    qdocs = [q.to_json() for q in queries]
    encoded = json.dumps(qdocs, separators=(",", ":"))
    budget = budget or TaskBudget()
    tasks, staged = [], []
    for coll in collections:
        st = coll.dataset.store
        key = None
        if len(encoded) > 8_000:  # tasks carry references, not data: stage the queries
            key = f"scratch/strains-nearest-{uuid.uuid4().hex}.json"
            st.write_bytes(key, encoded.encode())
            staged.append((st, key))
        for number, (parts, genomes) in enumerate(plan_partitions(coll, partition_genomes)):
            if genomes == 0:
                continue
            tasks.append(
                Task(
                    _TASK,
                    {
                        "store": st.reference(),
                        "collection": coll.name,
                        "version": coll.dataset.manifest["version"],
                        "partition": number,
                        "parts": parts,
                        "rows": [0, genomes],
                        "queries": qdocs if key is None else None,
                        "queries_key": key,
                        "k": k,
                        "max_distance": max_distance,
                        "metric": metric,
                        "qc": list(qc),
                        "budget": budget.to_json(),
                        "chunk_rows": chunk_rows,
                    },
                    key=f"{coll.name} partition {number}",
                    weight=genomes,
                )  # fmt: skip
            )
    try:
        results = run_plan(tasks, executor, retries=retries, progress=progress) if tasks else []
    finally:
        for st, key in staged:
            st.delete(key)
    if stats is not None:
        stats["tasks_planned"] = len(tasks)
        stats["tasks_answered"] = len(results)
    levels = {
        c.name: level(access_of(c.dataset.store, c.name), caller, c.name) for c in collections
    }
    searched = sum(c.meta.get("genomes", 0) for c in collections if levels[c.name] == "full")
    winners: dict[str, set[str]] = {}
    for r in results:
        if levels[r["collection"]] == "full":
            for answer in r["queries"]:
                winners.setdefault(r["collection"], set()).update(
                    h["strain"] for h in answer["hits"]
                )
    meta = {c.name: _metadata(c, winners.get(c.name, set())) for c in collections}
    out = []
    for i, q in enumerate(queries):
        seen = [r["queries"][i] for r in results if levels[r["collection"]] == "full"]
        merged = _merge_answers(seen, k) if seen else {"hits": [], "counts": []}
        counts = merged["counts"]
        counts_only = []
        for c in collections:
            if levels[c.name] != "counts":
                continue
            own = _merge_answers([r["queries"][i] for r in results if r["collection"] == c.name], k)
            counts_only.append(
                {"collection": c.name, "access": "counts",
                 "genomes_by_distance": [floor(n) for n in own["counts"]]}
            )  # fmt: skip
        neighbours = []
        for h in merged["hits"]:
            row = meta[h["collection"]].get(h["strain"], {})
            neighbours.append(
                {"strain": h["strain"], "distance": h["distance"], "covered": h["covered"],
                 "shared": h["shared"], "query_only": h["query_only"],
                 "strain_only": h["strain_only"], "date": row.get("date", ""),
                 "country": row.get("country", ""), "collection": h["collection"]}
            )  # fmt: skip
        kth = neighbours[-1]["distance"] if len(neighbours) == k else None
        out.append(
            {
                "query": q.name,
                "query_mutations": len(q.events),
                "query_covered": length - sum(b - a for a, b in q.missing),
                "metric": metric,
                "k": k,
                "neighbours": neighbours,
                "ties_at_k": counts[kth] if kth is not None and kth < len(counts) else 0,
                "searched": searched,
                **({"counts_only": counts_only} if counts_only else {}),
            }
        )
    return out


def _metadata(coll: Collection, strains: set[str]) -> dict[str, dict]:
    """Date and country of some genomes of a collection, by strain: one vectorised look-up in
    the metadata table (read once per collection version and kept)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _kept("metadata", coll, coll.metadata)
    if not strains:
        return {}
    rows = table.filter(pc.is_in(table["strain"], pa.array(sorted(strains), pa.string())))
    date_col = coll.meta.get("date_column") or "date"
    names = rows["strain"].to_pylist()
    dates = rows[date_col].to_pylist() if date_col in rows.column_names else [""] * len(names)
    places = rows["country"].to_pylist() if "country" in rows.column_names else [""] * len(names)
    return {
        s: {"date": d or "", "country": c or ""}
        for s, d, c in zip(names, dates, places, strict=True)
    }


def nearest_provenance(collections: Sequence[Collection], params: dict) -> dict:
    """Provenance of a nearest-strains answer: the collections' versions and the parameters."""
    return provenance(
        "strains nearest",
        params,
        [
            {"source": f"{KIND}/{c.name}@{c.dataset.manifest['version']}", "role": "collection",
             "store": c.dataset.store.url}
            for c in collections
        ],
    )  # fmt: skip
