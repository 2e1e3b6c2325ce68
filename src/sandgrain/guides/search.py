"""Exhaustive genome-wide off-target search on the site index.

For every guide, all sites with at most ``k`` mismatches to its protospacer (0 ≤ k ≤ 5) next
to an allowed PAM, on both strands. Exact, not heuristic: by the pigeonhole principle a site
within k mismatches has at most ⌊k/2⌋ mismatches in one of the two halves of its protospacer, so
enumerating every ⌊k/2⌋-mismatch variant of each half-key and checking the sites in those index
buckets finds every hit, each exactly once (see :func:`kernels.search_partition`). Tests compare
the result with a plain scan of the whole genome. Sites with N count the N as a mismatch.

The search fans out: one task per index partition — and per guide set, when there are fewer
partitions than workers (:func:`plan_search`) — each returning its hits sorted, merged in
genome order. Counts are never capped. On a local store a task memory-maps its partition (no
copy). On object storage a task reads only the index buckets its guides can hit: the ``.npy``
headers, the bucket offsets of the guides' key variants, then the bucket slices of the rests
and, for the hits alone, their locations — ranged reads, nearby ranges merged
(:class:`~sandgrain.guides.siteindex.RangedPartition`). When those ranges would cost at least
half the partition (many guides touch most buckets; see
:data:`~sandgrain.guides.siteindex.WHOLE_FRACTION`), or the partition is already in the worker
cache, the task uses a whole copy in the worker cache instead (:mod:`sandgrain.cache`). Each task
reports what it read; :attr:`OffTargetTable.reads` and :meth:`OffTargetTable.plan_summary` say
how many tasks and how many bytes each read.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..cache import worker_cache
from ..errors import InputError
from ..fanout import Executor, Task, open_executor, run_plan
from ..genome.store import Genome
from ..storage import Store
from . import kernels
from .siteindex import (
    ARRAYS_A,
    ARRAYS_B,
    ARRAYS_N,
    KIND,
    RANGE_GAP,
    WHOLE_FRACTION,
    RangedPartition,
    SiteFamily,
    open_index,
)

MAX_MISMATCHES = 5
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OffTargetSite:
    """One site within the mismatch limit of a guide (the on-target site included)."""

    guide: int  # index of the guide in the query
    chrom: str
    pos0: int  # 0-based leftmost base of protospacer + PAM on the forward strand
    strand: str
    protospacer: str  # as it stands in the genome, read on the site's strand
    pam: str
    mismatches: int
    pam_pattern: str  # the PAM pattern of the index it matched (NGG, NAG, …)

    def protospacer_span(self, pam_length: int, pam_side: str) -> tuple[int, int]:
        """0-based half-open forward-strand span of the protospacer alone."""
        L = len(self.protospacer)
        before = (self.strand == "+") == (pam_side == "5")  # PAM left of the protospacer
        start = self.pos0 + pam_length if before else self.pos0
        return start, start + L


def check_max_mismatches(k) -> int:
    """``k`` as an int when it is a whole number 0…:data:`MAX_MISMATCHES` (the most the
    pigeonhole search enumerates), else an InputError."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= MAX_MISMATCHES:
        raise InputError(f"maximum mismatches must be a whole number 0–{MAX_MISMATCHES}, not {k!r}")
    return int(k)


def check_guides(guides: Sequence[str], length: int) -> list[str]:
    """Upper-case guides, each exactly ``length`` letters of A, C, G, T."""
    clean = []
    for i, g in enumerate(guides, 1):
        s = g.strip().upper()
        if len(s) != length:
            raise InputError(
                f"guide {i} ({g.strip()!r}) has {len(s)} bases; this nuclease "
                f"takes {length}-nt protospacers (without the PAM)"
            )
        bad = set(s) - set("ACGT")
        if bad:
            raise InputError(
                f"guide {i} ({g.strip()!r}) contains {''.join(sorted(bad))!r}; "
                "guides are A, C, G, T only"
            )
        clean.append(s)
    if not clean:
        raise InputError("no guides given")
    return clean


def pack(seq: str) -> int:
    v = 0
    for c in seq:
        v = (v << 2) | "ACGT".index(c)
    return v


def unpack_codes(values: np.ndarray, n: int) -> np.ndarray:
    """Packed sequences (2 bits a base, first base highest) → base codes, shape (len, n)."""
    values = np.asarray(values, np.uint64)
    out = np.empty((len(values), n), np.uint8)
    for j in range(n):  # column by column: temporaries of 8 bytes a hit, not 8 × n
        out[:, j] = (values >> np.uint64(2 * (n - 1 - j))) & np.uint64(3)
    return out


def codes_to_strings(codes: np.ndarray) -> list[str]:
    """Rows of base codes (4 = N) → strings."""
    if len(codes) == 0:
        return []
    letters = np.frombuffer(b"ACGTN", np.uint8)[codes]
    flat = letters.tobytes().decode("ascii")
    w = codes.shape[1]
    return [flat[i : i + w] for i in range(0, len(flat), w)]


def unpack(values: np.ndarray, n: int) -> list[str]:
    """Packed sequences (2 bits a base, first base highest) back to strings."""
    return codes_to_strings(unpack_codes(values, n))


@functools.lru_cache(maxsize=16)
def _deltas(k: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """XOR masks that change ≤ t of k bases (each to any other base), with their counts."""
    masks, counts = [0], [0]
    for m in range(1, t + 1):
        for positions in itertools.combinations(range(k), m):
            for subs in itertools.product((1, 2, 3), repeat=m):
                v = 0
                for p, s in zip(positions, subs, strict=True):
                    v |= s << (2 * (k - 1 - p))
                masks.append(v)
                counts.append(m)
    return np.array(masks, np.int64), np.array(counts, np.uint8)


def prepare_guides(guides: Sequence[str], fam: SiteFamily, k: int) -> dict:
    """Per-guide keys, rests and key variants for the search kernel."""
    L, h, ka, kb = fam.length, fam.half, fam.key_a, fam.key_b
    packed = np.array([pack(g) for g in guides], dtype=np.uint64)
    b_low = L - h - kb
    key_a = (packed >> np.uint64(2 * (L - ka))).astype(np.int64)
    rest_a = packed & np.uint64((1 << (2 * (L - ka))) - 1)
    key_b = ((packed >> np.uint64(2 * b_low)) & np.uint64((1 << (2 * kb)) - 1)).astype(np.int64)
    rest_b = ((packed >> np.uint64(2 * (L - h))) << np.uint64(2 * b_low)) | (
        packed & np.uint64((1 << (2 * b_low)) - 1)
    )
    t = k // 2
    da, ca = _deltas(ka, t)
    db, cb = _deltas(kb, t)
    n = len(guides)
    va = (key_a[:, None] ^ da[None, :]).ravel()
    vb = (key_b[:, None] ^ db[None, :]).ravel()
    # bucket visits in key order: the index is swept front to back instead of jumped around
    oa, ob = np.argsort(va, kind="stable"), np.argsort(vb, kind="stable")
    return {
        "rest_a": rest_a,
        "rest_b": rest_b,
        "va_keys": va[oa],
        "va_mm": np.tile(ca, n)[oa],
        "va_guide": np.repeat(np.arange(n), len(da))[oa],
        "vb_keys": vb[ob],
        "vb_mm": np.tile(cb, n)[ob],
        "vb_guide": np.repeat(np.arange(n), len(db))[ob],
        "codes": np.array([kernels.encode(g) for g in guides], dtype=np.uint8).reshape(n, L),
    }


@functools.lru_cache(maxsize=8)
def _open_index(store_url: str, options: str, name: str, version: str):
    return Store(store_url, json.loads(options), create=False).open_dataset(KIND, name, version)


@functools.lru_cache(maxsize=1)
def _load_partition(store_url: str, options: str, name: str, version: str, pid: int) -> dict:
    """The arrays of one partition, memory-mapped: the store's files on a local store, copies
    in the worker cache otherwise (a mapping outlives the copy's eviction, see
    :mod:`sandgrain.cache`).

    Only the last partition stays mapped: a partition is up to 1.6 GB that a search reads
    whole, and every mapped page it touched counts in the process's resident memory until it
    is unmapped (8 cached partitions of a 3.1 Gbp index held 19 GB resident). Mapping again is
    a few file opens; the pages are still in the page cache. A thread searching a partition
    keeps its mapping alive while it does."""
    ds = _open_index(store_url, options, name, version)
    return {
        a: np.load(ds.local_path(f"part-{pid:05d}/{a}.npy"), mmap_mode="r")
        for a in ARRAYS_A + ARRAYS_B + ARRAYS_N
    }


def _partition_files(pid: int) -> list[str]:
    return [f"part-{pid:05d}/{a}.npy" for a in ARRAYS_A + ARRAYS_B + ARRAYS_N]


@functools.lru_cache(maxsize=8)
def _prepared(
    store_url: str,
    options: str,
    index: str,
    version: str,
    guides_key: str,
    k: int,
    part: int = 0,
    parts: int = 1,
):
    """The guides ``part::parts`` of a run, prepared once per worker process (a worker runs
    many partitions)."""
    st = Store(store_url, json.loads(options), create=False)
    guides = json.loads(st.read_bytes(guides_key))[part::parts]
    meta = st.open_dataset(KIND, index, version).meta
    fam = SiteFamily(
        tuple(meta["family"]["pams"]), meta["family"]["length"], meta["family"]["pam_side"]
    )
    return fam, prepare_guides(guides, fam, k)


def search_partition(
    store: dict,
    index: str,
    version: str,
    pid: int,
    guides_key: str,
    max_mismatches: int,
    part: int = 0,
    parts: int = 1,
    pams: list[str] | None = None,
) -> dict:
    """Fan-out task: hits in one partition of the guides ``part::parts`` of the run (every
    ``parts``-th guide from ``part``), as small arrays (:func:`task_hits`: hits only, sorted by
    guide then genome order, ``"g"`` numbering the guides in the whole run; only the sites
    next to ``pams`` when given, a subset of the index's PAMs), and under ``"read"`` what the
    task read: ``mode`` (``local``: a local store's files mapped; ``cached``: copies already in
    the worker cache; ``ranges``: ranged reads of the buckets searched; ``whole``: the
    partition downloaded into the worker cache), ``bytes`` and ``requests``."""
    fam, out = _search_partition(
        store, index, version, pid, guides_key, max_mismatches, part, parts
    )
    want = None if pams is None else SiteFamily(tuple(pams), fam.length, fam.pam_side)
    hits = task_hits(out, fam, part, parts, want)
    hits["read"] = out["read"]
    return hits


def _search_partition(
    store: dict,
    index: str,
    version: str,
    pid: int,
    guides_key: str,
    max_mismatches: int,
    part: int,
    parts: int,
) -> tuple[SiteFamily, dict]:
    st = Store.from_reference(store)
    options = json.dumps(st.storage_options, sort_keys=True)
    fam, prep = _prepared(
        st.url, options, index, version, guides_key, max_mismatches, part, parts
    )
    ds = _open_index(st.url, options, index, version)
    read = {"pid": pid, "mode": "local", "bytes": 0, "requests": 0}
    if not st.is_local:
        read["mode"] = "cached"
        if not all(ds.cached_path(f) for f in _partition_files(pid)):
            reader = RangedPartition(ds, pid)
            out = search_ranged(reader, prep, fam, max_mismatches)
            if out is not None:
                out["read"] = {**read, "mode": "ranges", "bytes": reader.bytes_read,
                               "requests": reader.requests}
                return fam, out
            size = sum(ds.manifest["files"][f]["size"] for f in _partition_files(pid))
            read = {**read, "mode": "whole", "bytes": reader.bytes_read + size,
                    "requests": reader.requests + len(_partition_files(pid))}
    arr = _load_partition(st.url, options, index, version, pid)
    out = search_arrays(arr, prep, fam, max_mismatches)
    out["read"] = read
    return fam, out


def pam_labels(pam: np.ndarray, family: SiteFamily) -> tuple[np.ndarray, np.ndarray]:
    """Which sites (PAM codes, one row each) lie next to one of ``family``'s PAMs, and the
    first of its patterns each matches (the label a search of ``family``'s own index gives)."""
    masks = family.pam_masks()  # bit b set where pattern p allows base b at position j
    pam = np.minimum(pam, 3).astype(np.int64)  # PAM codes never hold N here
    keep = np.zeros(len(pam), bool)
    label = np.zeros(len(pam), np.int64)
    for p in range(len(family.pams)):
        ok = np.ones(len(pam), bool)
        for j in range(family.pam_length):
            ok &= ((masks[p, j] >> pam[:, j]) & 1).astype(bool)
        label[ok & ~keep] = p
        keep |= ok
    return keep, label


def genome_order(g: np.ndarray, loc: np.ndarray) -> np.ndarray:
    """The order of hits by guide, then genome order (chromosome, position, strand), from
    their guides and location words: one sort of one 64-bit key when guide, chromosome and
    position fit in it together (they do but for the largest runs), else a two-key sort."""
    chrom = (loc >> np.uint64(32)) & np.uint64(0xFFFFF)
    pos = loc & np.uint64(0xFFFFFFFF)
    minus = (loc >> np.uint64(52)) & np.uint64(1)
    if not len(g):
        return np.zeros(0, np.int64)
    gb, cb, pb = (int(x.max()).bit_length() for x in (g, chrom, pos))
    if gb + cb + pb + 1 <= 64:
        key = (g.astype(np.uint64) << np.uint64(cb + pb + 1)) | (chrom << np.uint64(pb + 1))
        return np.argsort(key | (pos << np.uint64(1)) | minus)  # keys are distinct
    where = (chrom << np.uint64(33)) | (pos << np.uint64(1)) | minus
    return np.lexsort((where, g))


def task_hits(
    out: dict, fam: SiteFamily, part: int, parts: int, want: SiteFamily | None = None
) -> dict:
    """A task's hits (:func:`search_arrays`' or :func:`search_ranged`' dict) as the table is
    built from them: one block, sorted by guide then genome order, guides numbered in the run
    (``g · parts + part``), only the sites next to ``want``'s PAMs (relabelled) when given.
    ``packed`` holds the A/C/G/T protospacers; ``n_rows`` (ascending) are the rows of the
    sites with an N, whose protospacers are in ``n_codes``. Narrow types: a hit takes 27 bytes
    on its way back."""
    blocks = [out] + ([out["n"]] if "n" in out else [])
    plain = len(out["g"])
    g = np.concatenate([np.asarray(b["g"], np.int64) for b in blocks])
    loc = np.concatenate([np.asarray(b["loc"], np.uint64) for b in blocks])
    pam = np.concatenate([np.asarray(b["pam"], np.uint16) for b in blocks])
    mm = np.concatenate([np.asarray(b["mm"], np.int8) for b in blocks])
    packed = np.concatenate([np.asarray(out["packed"], np.uint64),
                             np.zeros(len(g) - plain, np.uint64)])
    codes = np.asarray(out["n"]["codes"], np.uint8).reshape(-1, fam.length) if "n" in out else (
        np.zeros((0, fam.length), np.uint8))
    is_n = np.arange(len(g)) >= plain
    if want is not None:
        keep, label = pam_labels(unpack_codes(pam, fam.pam_length), want)
        codes = codes[keep[plain:]]
        g, loc, pam, mm, packed, is_n = (a[keep] for a in (g, loc, pam, mm, packed, is_n))
        loc = (loc & ~np.uint64(7 << 53)) | (label[keep].astype(np.uint64) << np.uint64(53))
    order = genome_order(g, loc)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    n_rows = rank[is_n]  # the N sites in their (sorted) rows, codes in the same order
    by_row = np.argsort(n_rows)
    return {
        "g": g[order] * parts + part,
        "loc": loc[order],
        "pam": pam[order],
        "mm": mm[order],
        "packed": packed[order],
        "n_rows": n_rows[by_row],
        "n_codes": codes[by_row],
    }


def search_ranged(reader: RangedPartition, prep: dict, fam: SiteFamily, k: int) -> dict | None:
    """:func:`search_arrays` on a partition read by ranges: the offsets of the guides' key
    variants, the rests of those buckets, then the locations of the hits alone. ``None`` when
    the ranges (offsets, then rests — guessed from even buckets before the offsets are read,
    then exactly; each request counted as
    :data:`~sandgrain.guides.siteindex.RANGE_GAP` bytes) would cost at least
    :data:`~sandgrain.guides.siteindex.WHOLE_FRACTION` of the partition and the partition fits
    the worker cache: the caller then reads it whole.

    The kernel runs on compact arrays: the wanted buckets' rests back to back, with offsets in
    an array of the full key range whose entries for the wanted keys point into them (keys are
    visited in order, so a bucket's end is the next wanted bucket's start when they touch), and
    the pass-A site numbers mapped back to the partition's own. The hits equal
    :func:`search_arrays`' on the whole partition."""
    files = _partition_files(reader.pid)
    size = sum(int(reader.dataset.manifest["files"][f]["size"]) for f in files)
    limit = WHOLE_FRACTION * size if worker_cache().fits(size) else float("inf")

    def cost(array: str, starts, ends) -> int:
        m0, m1 = reader.plan(array, starts, ends)
        return int((m1 - m0).sum()) + len(m0) * RANGE_GAP

    def guess(array: str, keys: np.ndarray, key_bases: int) -> int:
        """The cost of the rows of ``keys``' buckets were the sites spread evenly over them."""
        per = reader.layouts[array].shape[0] / 4**key_bases
        return cost(array, np.floor(keys * per), np.ceil((keys + 1) * per))

    ua, ub = np.unique(prep["va_keys"]), np.unique(prep["vb_keys"])
    spent = cost("a_off", ua, ua + 2) + cost("b_off", ub, ub + 2)
    # decided before reading any offsets where the guess already says "whole"
    if spent + guess("a_rest", ua, fam.key_a) + 2 * guess("b_rest", ub, fam.key_b) >= limit:
        return None
    offa = reader.rows("a_off", ua, ua + 2).reshape(-1, 2).astype(np.int64)
    offb = reader.rows("b_off", ub, ub + 2).reshape(-1, 2).astype(np.int64)
    spent += cost("a_rest", offa[:, 0], offa[:, 1])
    spent += 2 * cost("b_rest", offb[:, 0], offb[:, 1])  # b_idx: the same rows, as wide
    if spent >= limit:
        return None
    a_rest = reader.rows("a_rest", offa[:, 0], offa[:, 1])
    b_rest = reader.rows("b_rest", offb[:, 0], offb[:, 1])
    b_idx = reader.rows("b_idx", offb[:, 0], offb[:, 1])
    a_off, a_map = _compact_offsets(ua, offa, fam.key_a, reader.layouts["a_off"].dtype)
    b_off, _ = _compact_offsets(ub, offb, fam.key_b, reader.layouts["b_off"].dtype)
    args = (fam.length, fam.half, fam.key_a, fam.key_b, k, k // 2)
    none_a = [prep[x][:0] for x in ("va_keys", "va_mm", "va_guide")]
    none_b = [prep[x][:0] for x in ("vb_keys", "vb_mm", "vb_guide")]
    ga, ia, ma, sa = kernels.search_partition(
        prep["rest_a"], prep["rest_b"], prep["va_keys"], prep["va_mm"], prep["va_guide"],
        *none_b, a_off, a_rest, b_off, b_rest[:0], b_idx[:0], *args,
    )
    gb, ib, mb, sb = kernels.search_partition(
        prep["rest_a"], prep["rest_b"], *none_a, prep["vb_keys"], prep["vb_mm"],
        prep["vb_guide"], a_off, a_rest[:0], b_off, b_rest, b_idx, *args,
    )
    idx = np.concatenate([a_map[ia.astype(np.int64)], ib.astype(np.int64)])
    sites = np.unique(idx)
    where = np.searchsorted(sites, idx)
    out = {
        "g": np.concatenate([ga, gb]).astype(np.int64),
        "loc": reader.rows("a_loc", sites, sites + 1)[where],
        "pam": reader.rows("a_pam", sites, sites + 1)[where],
        "mm": np.concatenate([ma, mb]).astype(np.int64),
        "packed": np.concatenate([sa, sb]),
    }
    if reader.layouts["n_loc"].shape[0]:
        n = {a: reader.whole(a) for a in ARRAYS_N}
        out["n"] = _nsite_hits(prep, n["n_codes"], n["n_loc"], n["n_pam"], k)
    return out


def _compact_offsets(keys: np.ndarray, off: np.ndarray, key_bases: int, dtype):
    """Offsets over the full key range for buckets stored back to back in ``keys`` order, and
    each compact row's row number in the partition."""
    lens = off[:, 1] - off[:, 0]
    start = np.r_[0, np.cumsum(lens)[:-1]].astype(np.int64)
    full = np.zeros(4**key_bases + 1, dtype)
    full[keys] = start
    full[keys + 1] = start + lens  # equals the next bucket's start where two wanted keys touch
    rows = np.repeat(off[:, 0] - start, lens) + np.arange(int(lens.sum()), dtype=np.int64)
    return full, rows


def _nsite_hits(prep: dict, n_codes, n_loc, n_pam, k: int) -> dict:
    """Brute-force hits among the sites whose protospacer holds an N."""
    ng, nj, nm = kernels.search_nsites(prep["codes"], np.asarray(n_codes), k)
    return {
        "g": ng,
        "loc": np.asarray(n_loc[nj]),
        "pam": np.asarray(n_pam[nj]),
        "mm": nm,
        "codes": np.asarray(n_codes[nj]),
    }


def search_arrays(arr: dict, prep: dict, fam: SiteFamily, k: int) -> dict:
    """Hits of the guides of ``prep`` (:func:`prepare_guides`) in the arrays of one partition
    (:func:`~sandgrain.guides.siteindex.site_arrays`) within ``k`` mismatches: the pigeonhole
    kernel over the A/C/G/T sites, brute force over the sites with an N."""
    g, i, m, s = kernels.search_partition(
        prep["rest_a"],
        prep["rest_b"],
        prep["va_keys"],
        prep["va_mm"],
        prep["va_guide"],
        prep["vb_keys"],
        prep["vb_mm"],
        prep["vb_guide"],
        arr["a_off"],
        arr["a_rest"],
        arr["b_off"],
        arr["b_rest"],
        arr["b_idx"],
        fam.length,
        fam.half,
        fam.key_a,
        fam.key_b,
        k,
        k // 2,
    )
    idx = i.astype(np.int64)
    out = {
        "g": g.astype(np.int64),
        "loc": np.asarray(arr["a_loc"][idx]),
        "pam": np.asarray(arr["a_pam"][idx]),
        "mm": m.astype(np.int64),
        "packed": s,
    }
    if len(arr["n_loc"]):
        out["n"] = _nsite_hits(prep, arr["n_codes"], arr["n_loc"], arr["n_pam"], k)
    return out


@dataclass
class OffTargetTable:
    """All hits of a search, column by column (NumPy arrays), sorted by guide then genome order.

    Millions of hits stay cheap: scores and counts are computed on the columns; Python objects
    are made only for the sites a caller lists (:meth:`sites`).
    """

    guides: list[str]
    family: SiteFamily
    chroms: list[str]
    guide: np.ndarray  # int64, index into guides
    chrom: np.ndarray  # int64, index into chroms
    pos0: np.ndarray  # int64, leftmost base of protospacer + PAM on the forward strand
    minus: np.ndarray  # bool, site on the minus strand
    mismatches: np.ndarray  # int64
    pattern: np.ndarray  # int64, index into family.pams
    protospacer: np.ndarray  # uint8 (n, L) base codes as in the genome on the site's strand
    pam: np.ndarray  # uint8 (n, P)
    #: What each task of the search read (``"read"`` of :func:`search_partition`).
    reads: list[dict] = field(default_factory=list)

    def plan_summary(self) -> str:
        """One line: how many tasks the search ran and how many bytes each read."""
        if not self.reads:
            return "0 tasks"
        per = [r["bytes"] for r in self.reads]
        modes = sorted({r["mode"] for r in self.reads})
        return (
            f"{len(per)} tasks ({', '.join(modes)}), {sum(per) / 1e6:.3f} MB read: "
            f"{min(per) / 1e6:.3f}–{max(per) / 1e6:.3f} MB a task, "
            f"{sum(r['requests'] for r in self.reads)} requests"
        )

    def __len__(self) -> int:
        return len(self.guide)

    def bounds(self) -> np.ndarray:
        """Row ranges per guide: hits of guide i are rows ``bounds[i]:bounds[i + 1]``."""
        return np.searchsorted(self.guide, np.arange(len(self.guides) + 1))

    def counts(self, max_mismatches: int) -> np.ndarray:
        """Hits per guide and mismatch number, shape (guides, max_mismatches + 1); exact."""
        out = np.zeros((len(self.guides), max_mismatches + 1), np.int64)
        np.add.at(out, (self.guide, self.mismatches), 1)
        return out

    def sites(self, rows=None) -> list[OffTargetSite]:
        """Python objects for some rows (all by default)."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        protos = codes_to_strings(self.protospacer[rows])
        pams = codes_to_strings(self.pam[rows])
        return [
            OffTargetSite(int(g), self.chroms[c], int(p), "-" if m else "+", pr, pa, int(mm),
                          self.family.pams[pt])
            for g, c, p, m, pr, pa, mm, pt in zip(
                self.guide[rows].tolist(), self.chrom[rows].tolist(), self.pos0[rows].tolist(),
                self.minus[rows].tolist(), protos, pams, self.mismatches[rows].tolist(),
                self.pattern[rows].tolist(), strict=True,
            )
        ]

    def only_pams(self, family: SiteFamily) -> OffTargetTable:
        """The hits next to one of ``family``'s PAMs (answering from a larger index)."""
        keep, label = pam_labels(self.pam, family)
        return OffTargetTable(
            guides=self.guides, family=family, chroms=self.chroms, guide=self.guide[keep],
            chrom=self.chrom[keep], pos0=self.pos0[keep], minus=self.minus[keep],
            mismatches=self.mismatches[keep], pattern=label[keep],
            protospacer=self.protospacer[keep], pam=self.pam[keep], reads=self.reads,
        )

    def per_guide(self) -> list[list[OffTargetSite]]:
        b = self.bounds()
        sites = self.sites()
        return [sites[b[i] : b[i + 1]] for i in range(len(self.guides))]


def search_offtargets(*args, **kwargs) -> list[list[OffTargetSite]]:
    """All sites within ``max_mismatches`` of each guide, in genome order, per guide, as Python
    objects; the same arguments as :func:`search_table` (prefer it for many hits)."""
    return search_table(*args, **kwargs).per_guide()


#: Tasks per worker a search plan aims at, so that workers that finish early find more work.
TASKS_PER_WORKER = 3
#: Fewest guides a task searches when a partition's guides are split over tasks.
MIN_TASK_GUIDES = 8


def guide_parts(guides: int, partitions: int, workers: int) -> int:
    """Into how many guide sets each partition's search is split: enough for
    :data:`TASKS_PER_WORKER` tasks a worker over all partitions, none with fewer than
    :data:`MIN_TASK_GUIDES` guides; 1 for one worker. So a genome of one partition keeps every
    worker busy, and a genome of three partitions does not leave one of two workers idle while
    the other does the third."""
    if workers <= 1 or partitions >= TASKS_PER_WORKER * workers:
        return 1
    want = -(-TASKS_PER_WORKER * workers // max(1, partitions))
    return max(1, min(want, guides // MIN_TASK_GUIDES))


def executor_workers(executor: Executor) -> int:
    """How many tasks an open executor runs at once: a pool's workers, else a quarter of
    what the runner keeps in flight (4 a worker for the local pool)."""
    return int(getattr(executor, "workers", 0) or max(1, executor.max_in_flight // 4))


def plan_search(
    store: Store,
    ds,
    guides_key: str,
    n_guides: int,
    max_mismatches: int,
    workers: int,
    pams: list[str] | None = None,
) -> list[Task]:
    """The tasks of one search: one per index partition and guide set (:func:`guide_parts`;
    guide set ``j`` of ``m`` holds guides ``j, j + m, j + 2m, …``, so neighbouring guides —
    often alike, e.g. one gene's candidates — spread over the tasks), in partition order. Each
    task weighs its share of the partition's sites, so the weights sum to the sites searched.
    ``pams``: keep only the sites next to these (a subset of the index's PAMs)."""
    partitions = ds.meta["partitions"]
    parts = guide_parts(n_guides, len(partitions), workers)
    tasks = []
    for p in partitions:
        sites = p.get("sites", 0) + p.get("n_sites", 0)
        for j in range(parts):
            count = len(range(j, n_guides, parts))
            args = dict(store=store.reference(), index=ds.name, version=ds.manifest["version"],
                        pid=p["pid"], guides_key=guides_key, max_mismatches=max_mismatches)
            key = f"off-target search, partition {p['pid']}"
            if parts > 1:
                args.update(part=j, parts=parts)
                key += f", guides {j + 1}::{parts} ({count})"
            if pams is not None:
                args["pams"] = list(pams)
            weight = sites * count // max(1, n_guides)  # sites searched, for progress
            tasks.append(Task("sandgrain.guides.search:search_partition", args, key=key,
                              weight=weight))
    return tasks


def search_table(
    genome: Genome,
    guides: Sequence[str],
    family: SiteFamily,
    max_mismatches: int = 4,
    *,
    executor="local",
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    nuclease: str | None = None,
) -> OffTargetTable:
    """All sites within ``max_mismatches`` of each guide, as an :class:`OffTargetTable`.

    ``executor`` is an executor URL (opened and closed here) or an open
    :class:`~sandgrain.fanout.Executor` (kept open: a caller searching batch after batch
    starts its pool once). The plan (:func:`plan_search`) splits the guides of each index
    partition over tasks when there are fewer partitions than the executor has workers. Each
    task returns its hits sorted (:func:`task_hits`); the table merges them."""
    max_mismatches = check_max_mismatches(max_mismatches)
    guides = check_guides(guides, family.length)
    ds = open_index(genome, family, nuclease)
    store = genome.dataset.store
    guides_key = f"scratch/offtargets-{uuid.uuid4().hex}.json"
    subset = tuple(ds.meta["family"]["pams"]) != family.pams
    owned = isinstance(executor, str)
    ex = open_executor(executor) if owned else executor
    try:
        store.write_bytes(guides_key, json.dumps(guides).encode())
        tasks = plan_search(
            store, ds, guides_key, len(guides), max_mismatches, executor_workers(ex),
            list(family.pams) if subset else None,
        )  # fmt: skip
        parts = run_plan(
            tasks, ex, retries=retries, progress=progress, cancel=cancel,
            store_probe=store.probe,
        )
    finally:
        with contextlib.suppress(Exception):
            store.delete(guides_key)
        if owned:
            ex.close()
    reads = [p.pop("read") for p in parts if "read" in p]
    table = _table(parts, ds.meta, family, guides)
    table.reads = reads
    logger.info("off-target search of %d guides: %s", len(guides), table.plan_summary())
    return table


def partitions_in_genome_order(meta: dict) -> bool:
    """Whether the index's partitions follow each other in genome order (each one's segments
    after the last one's), as :func:`~sandgrain.guides.siteindex.plan_partitions` makes them."""
    rank = {name: i for i, name in enumerate(meta["chromosomes"])}
    last = (-1, -1)
    for p in meta["partitions"]:
        for seg in p.get("segments") or [[None]]:
            if seg[0] not in rank:
                return False
            here = (rank[seg[0]], int(seg[1]))
            if here <= last:
                return False
            last = here
    return True


def _take(parts: list[dict], key: str) -> np.ndarray:
    """One column of every task's hits, concatenated; the tasks' own arrays are dropped (the
    task results are not needed afterwards, and a batch's hits should be in memory once)."""
    return np.concatenate([block.pop(key) for block in parts])


def _table(parts: list[dict], meta: dict, fam: SiteFamily, guides: list[str]) -> OffTargetTable:
    """The hits of the tasks (:func:`task_hits`, each sorted by guide then genome order) as
    one table sorted the same way. Tasks come in partition order, so when the partitions are
    in genome order a stable sort by guide alone (a radix sort for up to 65,536 guides) puts
    them in order; otherwise the whole key is sorted again."""
    L, P = fam.length, fam.pam_length
    if not parts:
        parts = [task_hits({k: np.zeros(0, np.uint64) for k in ("g", "loc", "pam", "mm",
                                                              "packed")}, fam, 0, 1)]
    sizes = np.array([len(b["g"]) for b in parts], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    n_rows = np.concatenate([b.pop("n_rows") + s for b, s in zip(parts, starts, strict=True)])
    n_codes = np.concatenate([b.pop("n_codes") for b in parts]).reshape(-1, L)
    g = _take(parts, "g")
    if len(parts) == 1:
        order = None  # one task: already in order
    elif partitions_in_genome_order(meta):
        small = g.astype(np.uint16) if len(guides) <= 1 << 16 else g
        order = np.argsort(small, kind="stable")
    else:
        loc = np.concatenate([b["loc"] for b in parts])
        order = genome_order(g, loc)
        del loc

    def sort(a):
        return a if order is None else a[order]

    g = sort(g)
    loc = sort(_take(parts, "loc"))
    mm = sort(_take(parts, "mm")).astype(np.int64)
    pam = unpack_codes(sort(_take(parts, "pam")), P).reshape(-1, P)
    proto = unpack_codes(sort(_take(parts, "packed")), L).reshape(-1, L)
    if len(n_rows):
        if order is not None:
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            n_rows = rank[n_rows]
        proto[n_rows] = n_codes
    return OffTargetTable(
        guides=list(guides), family=fam, chroms=list(meta["chromosomes"]), guide=g,
        chrom=((loc >> np.uint64(32)) & np.uint64(0xFFFFF)).astype(np.int64),
        pos0=(loc & np.uint64(0xFFFFFFFF)).astype(np.int64),
        minus=((loc >> np.uint64(52)) & np.uint64(1)).astype(bool), mismatches=mm,
        pattern=((loc >> np.uint64(53)) & np.uint64(7)).astype(np.int64),
        protospacer=proto, pam=pam,
    )
