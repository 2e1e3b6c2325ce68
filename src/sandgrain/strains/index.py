"""A collection's genomes as columns of mutation events and missing ranges, for the searches.

Every genome of a collection is kept, beside its calls, as integer columns (one ``.npz`` file per
calls part, written by the task that called the part): its **events** and its **missing ranges**.

Events (one per substitution, deletion or insertion; the calls' 1-based positions):

- a *slot* orders events along the reference: ``2·p`` for a substitution at ``p`` or a deletion
  starting at ``p``, ``2·p + 1`` for an insertion after ``p``;
- a *state* says what the genome has there: ``0``–``3`` the base (A, C, G, T) of a substitution,
  ``4 + n`` a deletion of ``n`` bases, ``-(1 + i)`` the ``i``-th distinct inserted sequence of
  the part (:attr:`IndexPart.insertions`).

Missing ranges (``[start, end)``, 1-based, merged): the calls' ``missing`` ranges (N and the
trimmed ends) and its ``mixed`` sites (ambiguity codes), so a genome *covers* a position when
it is not in one of them. A genome that could not be aligned covers nothing. An event at a
position its own genome does not cover (an insertion after an N) is dropped.

Amino-acid changes (``aa_substitutions`` and ``aa_deletions``) are kept as tokens per genome
(ids into :attr:`IndexPart.aa`) for the profile search.

A :class:`Partition` is the parts of a collection concatenated (ids of insertions and
amino-acid tokens made common to them), read once per process and kept
(:func:`load_partition`).
"""

from __future__ import annotations

import io
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from threading import Lock

import numpy as np
import pyarrow as pa

from ..errors import InputError

__all__ = [
    "BASES",
    "DEL_BASE",
    "STATUS_CODES",
    "IndexPart",
    "Partition",
    "build_part",
    "encode_events",
    "index_file",
    "load_partition",
]

BASES = "ACGT"
DEL_BASE = 4
#: QC status of a genome as a code (``error``: could not be aligned).
STATUS_CODES = {"good": 0, "mediocre": 1, "bad": 2, "error": 3}
INDEX_VERSION = 1
_BASE_CODE = {b: i for i, b in enumerate(BASES)}


def index_file(calls_file: str) -> str:
    """The index file of a calls part: ``calls/p000003.parquet`` → ``index/p000003.npz``."""
    stem = calls_file.rsplit("/", 1)[-1].split(".")[0]
    return f"index/{stem}.npz"


def _ranges(items: Sequence[str], mixed: Sequence[str]) -> list[tuple[int, int]]:
    out = []
    for r in items:
        a, _, b = r.partition("-")
        out.append((int(a), int(b or a) + 1))
    for m in mixed:
        p = int(m[1:-1])
        out.append((p, p + 1))
    out.sort()
    merged: list[list[int]] = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _covered(p: int, ranges: list[tuple[int, int]]) -> bool:
    return not any(a <= p < b for a, b in ranges)


def encode_events(
    calls, insertion_id, length: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(events, missing ranges)`` of one genome's calls (any object with the list fields of
    :class:`~sandgrain.strains.mutations.Calls`): events as sorted ``(slot, state)``;
    ``insertion_id(seq)`` gives the id of an inserted sequence."""
    if getattr(calls, "error", ""):
        return [], [(1, length + 1)]
    missing = _ranges(calls.missing, calls.mixed)
    events = []
    for s in calls.substitutions:
        p = int(s[1:-1])
        if s[-1] in _BASE_CODE:
            events.append((2 * p, _BASE_CODE[s[-1]]))
    for d in calls.deletions:
        a, _, b = d[4:].partition("-")
        a, b = int(a), int(b or a)
        events.append((2 * a, DEL_BASE + (b - a + 1)))
    for i in calls.insertions:
        _, p, seq = i.split(":", 2)
        events.append((2 * int(p) + 1, -(1 + insertion_id(seq))))
    events = [(s, st) for s, st in events if _covered(max(s >> 1, 1), missing)]
    events.sort()
    return events, missing


@dataclass
class IndexPart:
    """The index columns of some genomes (one calls part, or a partition of many)."""

    strains: list[str]
    status: np.ndarray  #: uint8, :data:`STATUS_CODES`
    ev_ptr: np.ndarray  #: int64, genome g's events are ev_*[ev_ptr[g]:ev_ptr[g + 1]]
    ev_slot: np.ndarray  #: int32
    ev_state: np.ndarray  #: int32
    ms_ptr: np.ndarray  #: int64, genome g's missing ranges are ms_*[ms_ptr[g]:ms_ptr[g + 1]]
    ms_start: np.ndarray  #: int32, 1-based, inclusive
    ms_end: np.ndarray  #: int32, exclusive
    aa_ptr: np.ndarray  #: int64, genome g's amino-acid tokens are aa_tok[aa_ptr[g]:aa_ptr[g+1]]
    aa_tok: np.ndarray  #: int32 ids into :attr:`aa`
    insertions: list[str] = field(default_factory=list)
    aa: list[str] = field(default_factory=list)
    length: int = 0  #: the reference's length

    @property
    def n(self) -> int:
        return len(self.strains)

    def to_bytes(self) -> bytes:
        sink = io.BytesIO()
        np.savez(
            sink,
            header=np.frombuffer(
                json.dumps(
                    {
                        "version": INDEX_VERSION,
                        "length": self.length,
                        "strains": self.strains,
                        "insertions": self.insertions,
                        "aa": self.aa,
                    }
                ).encode(),
                dtype=np.uint8,
            ),
            **{k: getattr(self, k) for k in _ARRAYS},
        )
        return sink.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> IndexPart:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            head = json.loads(z["header"].tobytes())
            if head.get("version") != INDEX_VERSION:
                raise InputError(f"index format {head.get('version')} is not {INDEX_VERSION}")
            arrays = {k: z[k] for k in _ARRAYS}
        return cls(
            strains=head["strains"],
            insertions=head["insertions"],
            aa=head["aa"],
            length=head["length"],
            **arrays,
        )

    def events(self, g: int) -> list[tuple[int, int]]:
        """Genome ``g``'s events as ``(slot, state)``."""
        a, b = self.ev_ptr[g], self.ev_ptr[g + 1]
        return list(zip(self.ev_slot[a:b].tolist(), self.ev_state[a:b].tolist(), strict=True))

    def missing(self, g: int) -> list[tuple[int, int]]:
        a, b = self.ms_ptr[g], self.ms_ptr[g + 1]
        return list(zip(self.ms_start[a:b].tolist(), self.ms_end[a:b].tolist(), strict=True))


_ARRAYS = (
    "status",
    "ev_ptr",
    "ev_slot",
    "ev_state",
    "ms_ptr",
    "ms_start",
    "ms_end",
    "aa_ptr",
    "aa_tok",
)


def build_part(calls_list, length: int) -> IndexPart:
    """The index of some genomes' calls (:class:`~sandgrain.strains.mutations.Calls` objects)."""
    ins_ids: dict[str, int] = {}
    aa_ids: dict[str, int] = {}
    strains, status = [], []
    ev_ptr, ms_ptr, aa_ptr = [0], [0], [0]
    slots, states, ms_a, ms_b, toks = [], [], [], [], []

    def ins_id(seq: str) -> int:
        return ins_ids.setdefault(seq, len(ins_ids))

    for c in calls_list:
        strains.append(c.strain)
        st = "error" if c.error else (c.qc or {}).get("status", "bad")
        status.append(STATUS_CODES.get(st, STATUS_CODES["bad"]))
        events, missing = encode_events(c, ins_id, length)
        slots += [s for s, _ in events]
        states += [x for _, x in events]
        ev_ptr.append(len(slots))
        ms_a += [a for a, _ in missing]
        ms_b += [b for _, b in missing]
        ms_ptr.append(len(ms_a))
        for t in (*c.aa_substitutions, *c.aa_deletions):
            toks.append(aa_ids.setdefault(t, len(aa_ids)))
        aa_ptr.append(len(toks))
    return IndexPart(
        strains=strains,
        status=np.asarray(status, dtype=np.uint8),
        ev_ptr=np.asarray(ev_ptr, dtype=np.int64),
        ev_slot=np.asarray(slots, dtype=np.int32),
        ev_state=np.asarray(states, dtype=np.int32),
        ms_ptr=np.asarray(ms_ptr, dtype=np.int64),
        ms_start=np.asarray(ms_a, dtype=np.int32),
        ms_end=np.asarray(ms_b, dtype=np.int32),
        aa_ptr=np.asarray(aa_ptr, dtype=np.int64),
        aa_tok=np.asarray(toks, dtype=np.int32),
        insertions=list(ins_ids),
        aa=list(aa_ids),
        length=length,
    )


def concat_parts(parts: Sequence[IndexPart]) -> IndexPart:
    """Parts one after another, with common insertion and amino-acid token ids."""
    if not parts:
        raise InputError("no genomes to search")
    ins_ids: dict[str, int] = {}
    aa_ids: dict[str, int] = {}
    cols: dict[str, list] = {k: [] for k in _ARRAYS}
    strains: list[str] = []
    ev0 = ms0 = aa0 = 0
    for k, p in enumerate(parts):
        ins_map = np.asarray([ins_ids.setdefault(s, len(ins_ids)) for s in p.insertions] or [0])
        aa_map = np.asarray([aa_ids.setdefault(s, len(aa_ids)) for s in p.aa] or [0])
        state = p.ev_state.copy()
        neg = state < 0
        state[neg] = -(1 + ins_map[-(state[neg] + 1)])
        strains += p.strains
        cols["status"].append(p.status)
        cols["ev_ptr"].append(p.ev_ptr[(0 if k == 0 else 1) :] + ev0)
        cols["ev_slot"].append(p.ev_slot)
        cols["ev_state"].append(state.astype(np.int32))
        cols["ms_ptr"].append(p.ms_ptr[(0 if k == 0 else 1) :] + ms0)
        cols["ms_start"].append(p.ms_start)
        cols["ms_end"].append(p.ms_end)
        cols["aa_ptr"].append(p.aa_ptr[(0 if k == 0 else 1) :] + aa0)
        cols["aa_tok"].append(aa_map[p.aa_tok].astype(np.int32) if p.aa_tok.size else p.aa_tok)
        ev0 += int(p.ev_ptr[-1])
        ms0 += int(p.ms_ptr[-1])
        aa0 += int(p.aa_ptr[-1])
    return IndexPart(
        strains=strains,
        insertions=list(ins_ids),
        aa=list(aa_ids),
        length=parts[0].length,
        **{k: np.concatenate(v) for k, v in cols.items()},
    )


def part_from_table(table: pa.Table, length: int) -> IndexPart:
    """The index of a calls table (a collection's ``calls/*.parquet``)."""
    from .collection import _calls_from_row

    return build_part((_calls_from_row(r) for r in table.to_pylist()), length)


@dataclass
class Partition:
    """Consecutive calls parts of one collection version, concatenated."""

    collection: str
    version: str
    number: int
    files: tuple[str, ...]
    index: IndexPart
    offset: int = 0  #: the row of its first genome in the whole collection


#: Partitions kept per process (the searches of a server or a worker reuse them).
_CACHE: OrderedDict[tuple, Partition] = OrderedDict()
_CACHE_LOCK = Lock()
CACHE_PARTITIONS = 16


def load_partition(coll, files: Sequence[str], number: int = 0) -> Partition:
    """The partition of a collection (:class:`~sandgrain.strains.collection.Collection`) made of
    the calls parts ``files``, read once per process (parts without an index file, from a
    collection made before indexes existed, are indexed from their calls)."""
    ds = coll.dataset
    key = (ds.store.url, ds.kind, ds.name, ds.manifest["version"], tuple(files))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    length = int(coll.meta["reference"]["length"])
    have = set(ds.manifest["files"])
    parts = []
    for f in files:
        ix = index_file(f)
        if ix in have:
            parts.append(IndexPart.from_bytes(ds.read_bytes(ix)))
        else:
            parts.append(part_from_table(coll._read_part(f), length))
    part = Partition(coll.name, ds.manifest["version"], number, tuple(files), concat_parts(parts))
    with _CACHE_LOCK:
        _CACHE[key] = part
        while len(_CACHE) > CACHE_PARTITIONS:
            _CACHE.popitem(last=False)
    return part
