"""Exhaustive genome-wide off-target search on the site index.

For every guide, all sites with at most ``k`` mismatches to its protospacer (0 ≤ k ≤ 5) next
to an allowed PAM, on both strands. Exact, not heuristic: by the pigeonhole principle a site
within k mismatches has at most ⌊k/2⌋ mismatches in one of the two halves of its protospacer, so
enumerating every ⌊k/2⌋-mismatch variant of each half-key and checking the sites in those index
buckets finds every hit, each exactly once (see :func:`kernels.search_partition`). Tests compare
the result with a plain scan of the whole genome. Sites with N count the N as a mismatch.

The search fans out: one task per index partition, each loading only its partition, all
returning hits that are merged in genome order. Counts are never capped.
"""

from __future__ import annotations

import functools
import itertools
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..fanout import Task, run_plan
from ..genome.store import Genome
from ..storage import Store
from . import kernels
from .siteindex import ARRAYS_A, ARRAYS_B, ARRAYS_N, KIND, SiteFamily, open_index

MAX_MISMATCHES = 5
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


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


def unpack(values: np.ndarray, n: int) -> list[str]:
    """Packed sequences (2 bits a base, first base highest) back to strings."""
    if len(values) == 0:
        return []
    shifts = np.arange(2 * (n - 1), -1, -2, dtype=np.uint64)
    codes = ((values.astype(np.uint64)[:, None] >> shifts[None, :]) & np.uint64(3)).astype(np.uint8)
    letters = _BASES[codes]
    return [row.tobytes().decode("ascii") for row in letters]


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
    return {
        "full": packed,
        "rest_a": rest_a,
        "rest_b": rest_b,
        "va_keys": (key_a[:, None] ^ da[None, :]).ravel(),
        "va_mm": np.tile(ca, n),
        "va_ptr": np.arange(n + 1, dtype=np.int64) * len(da),
        "vb_keys": (key_b[:, None] ^ db[None, :]).ravel(),
        "vb_mm": np.tile(cb, n),
        "vb_ptr": np.arange(n + 1, dtype=np.int64) * len(db),
        "codes": np.array([kernels.encode(g) for g in guides], dtype=np.uint8).reshape(n, L),
    }


@functools.lru_cache(maxsize=8)
def _load_partition(store_url: str, options: str, name: str, version: str, pid: int) -> dict:
    ds = Store(store_url, json.loads(options)).open_dataset(KIND, name, version)
    return {
        a: np.load(ds.local_path(f"part-{pid:05d}/{a}.npy"), mmap_mode="r")
        for a in ARRAYS_A + ARRAYS_B + ARRAYS_N
    }


def search_partition(
    store: dict, index: str, version: str, pid: int, guides_key: str, max_mismatches: int
) -> dict:
    """Fan-out task: hits of all guides in one partition (arrays, small: hits only)."""
    st = Store.from_reference(store)
    guides = json.loads(st.read_bytes(guides_key))
    meta = st.open_dataset(KIND, index, version).meta
    fam = SiteFamily(
        tuple(meta["family"]["pams"]), meta["family"]["length"], meta["family"]["pam_side"]
    )
    arr = _load_partition(
        st.url, json.dumps(st.storage_options, sort_keys=True), index, version, pid
    )
    k = max_mismatches
    prep = prepare_guides(guides, fam, k)
    g, i, m, s = kernels.search_partition(
        prep["full"],
        prep["rest_a"],
        prep["rest_b"],
        prep["va_keys"],
        prep["va_mm"],
        prep["va_ptr"],
        prep["vb_keys"],
        prep["vb_mm"],
        prep["vb_ptr"],
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
        "codes": np.zeros((len(g), fam.length), np.uint8),
        "packed": s,
    }
    if len(arr["n_loc"]):
        ng, nj, nm = kernels.search_nsites(prep["codes"], np.asarray(arr["n_codes"]), k)
        out["n"] = {
            "g": ng,
            "loc": np.asarray(arr["n_loc"][nj]),
            "pam": np.asarray(arr["n_pam"][nj]),
            "mm": nm,
            "codes": np.asarray(arr["n_codes"][nj]),
        }
    return out


def search_offtargets(
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
) -> list[list[OffTargetSite]]:
    """All sites within ``max_mismatches`` of each guide, in genome order, per guide."""
    if not 0 <= max_mismatches <= MAX_MISMATCHES:
        raise InputError(f"maximum mismatches must be 0–{MAX_MISMATCHES}, not {max_mismatches}")
    guides = check_guides(guides, family.length)
    ds = open_index(genome, family, nuclease)
    store = genome.dataset.store
    guides_key = f"scratch/offtargets-{uuid.uuid4().hex}.json"
    store.write_bytes(guides_key, json.dumps(guides).encode())
    try:
        tasks = [
            Task(
                "sandgrain.guides.search:search_partition",
                dict(
                    store=store.reference(),
                    index=ds.name,
                    version=ds.manifest["version"],
                    pid=p["pid"],
                    guides_key=guides_key,
                    max_mismatches=max_mismatches,
                ),
                key=f"off-target search, partition {p['pid']}",
            )
            for p in ds.meta["partitions"]
        ]
        parts = run_plan(tasks, executor, retries=retries, progress=progress, cancel=cancel)
    finally:
        store.delete(guides_key)
    return _decode(parts, ds.meta, family, len(guides))


def _decode(parts: list[dict], meta: dict, fam: SiteFamily, n_guides: int):
    chroms = meta["chromosomes"]
    L, P = fam.length, fam.pam_length
    per_guide: list[list[OffTargetSite]] = [[] for _ in range(n_guides)]
    for part in parts:
        blocks = [(part, unpack(part["packed"], L))]
        if "n" in part:
            n = part["n"]
            blocks.append((n, ["".join("ACGTN"[c] for c in row) for row in n["codes"]]))
        for block, protos in blocks:
            pams = unpack(block["pam"], P)
            for j in range(len(block["g"])):
                loc = int(block["loc"][j])
                per_guide[int(block["g"][j])].append(
                    OffTargetSite(
                        guide=int(block["g"][j]),
                        chrom=chroms[(loc >> 32) & 0xFFFFF],
                        pos0=loc & 0xFFFFFFFF,
                        strand="-" if (loc >> 52) & 1 else "+",
                        protospacer=protos[j],
                        pam=pams[j],
                        mismatches=int(block["mm"][j]),
                        pam_pattern=fam.pams[(loc >> 53) & 7],
                    )
                )
    order = {c: i for i, c in enumerate(chroms)}
    for sites in per_guide:
        sites.sort(key=lambda s: (order[s.chrom], s.pos0, s.strand))
    return per_guide
