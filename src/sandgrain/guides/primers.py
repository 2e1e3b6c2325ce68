"""PCR primers around a guide's cut site, with their genome-wide uniqueness counted exactly.

Design
------
Primer3 (Untergasser et al. 2012, Nucleic Acids Res 40:e115; through ``primer3-py``) picks a
pair on the genome around the cut: product :data:`DEFAULT_PRODUCT` (150–250 bp, an amplicon for
indel detection by amplicon sequencing, as CRISPOR and CHOPCHOP offer), primers 18–25 nt of Tm
57–63 °C (optimum 20 nt, 60 °C — CHOPCHOP's primer3 settings), and the cut at least
:data:`MIN_DISTANCE` bases from each primer's 3' end (a ``SEQUENCE_TARGET`` of
``[cut − 50, cut + 50)``). Soft-masked (lowercase) repeats may not hold a primer's 3' end
(``PRIMER_LOWERCASE_MASKING``); when that leaves no pair, the design is repeated without it.

Uniqueness
----------
A primer *binds* a genome site, on either strand, when its 3'-terminal :data:`SEED` (15) bases
match the site exactly and the whole primer has at most :data:`MAX_MISMATCHES` (2) mismatches
(a genome ``N`` is a mismatch; the whole primer must lie on the chromosome). That is the usual
in-silico PCR practice: a mismatch-free 3' end is what a polymerase extends, and Primer-BLAST
(Ye et al. 2012, BMC Bioinformatics 13:134) reports templates with few mismatches, weighting the
3' end. ``left_sites``/``right_sites`` count every such site in the whole genome (the primer's
own site included, so 1 is unique), never capped.

The count is a scan of the whole genome: every genome 15-mer is looked up among the 3' seeds of
all primers at once (a bitmap, then a binary search in the sorted seeds), and seed hits are
extended to the whole primer. The scan fans out over genome chunks on the fan-out engine (one
:class:`~sandgrain.fanout.Task` per group of segments, reading :data:`CHUNK_BP` bases at a
time), so memory is bounded by a chunk and the primers, and it runs on local processes, Dask or
Lambda alike. :func:`design_primers_batch` scans once for the primers of all guides. The tests
compare it with a plain string search.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Sequence

import numpy as np
from numba import njit

from ..errors import InputError
from ..fanout import Task, run_plan
from ..genome.regions import reverse_complement
from ..genome.store import Genome
from ..storage import Store
from . import kernels
from .siteindex import plan_partitions

__all__ = [
    "CHUNK_BP",
    "DEFAULT_PRODUCT",
    "MAX_MISMATCHES",
    "MIN_DISTANCE",
    "PRIMER3_SETTINGS",
    "SEED",
    "count_primer_sites",
    "design_primers",
    "design_primers_batch",
    "primer_pairs",
]

#: Default PCR product size range, bp.
DEFAULT_PRODUCT = (150, 250)
#: Least number of bases between the cut and each primer's 3' end.
MIN_DISTANCE = 50
#: Primer3 settings besides the product size and the target (CHOPCHOP's defaults for size and
#: Tm; Primer3's own for the rest). ``PRIMER_NUM_RETURN`` pairs are tried for uniqueness.
PRIMER3_SETTINGS = {
    "PRIMER_OPT_SIZE": 20,
    "PRIMER_MIN_SIZE": 18,
    "PRIMER_MAX_SIZE": 25,
    "PRIMER_OPT_TM": 60.0,
    "PRIMER_MIN_TM": 57.0,
    "PRIMER_MAX_TM": 63.0,
    "PRIMER_NUM_RETURN": 5,
}
#: Bases at a primer's 3' end that must match a site exactly.
SEED = 15
#: Most mismatches over the whole primer at a site it binds.
MAX_MISMATCHES = 2
#: Bases of genome sequence one scan step reads and encodes at a time.
CHUNK_BP = 4_000_000
#: Largest genome share of one scan task; smaller genomes are cut in about 16 tasks.
TASK_BP = 64_000_000
#: Sites listed per primer (positions, for display); the counts are never capped.
MAX_LISTED_SITES = 10
_BITMAP_SHIFT = 6  # the bitmap is indexed by a seed's first 12 bases: 2^24 bits, 2 MiB


# -- design -----------------------------------------------------------------------------------
def _check_product(product) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in product)
    except (TypeError, ValueError):
        raise InputError(
            f"product size must be two whole numbers (min, max), not {product!r}"
        ) from None
    least = 2 * MIN_DISTANCE + 2 * PRIMER3_SETTINGS["PRIMER_MIN_SIZE"]
    if not least <= lo <= hi <= 5000:
        raise InputError(
            f"product size range {lo}–{hi} bp is not possible: it must hold both primers and "
            f"{MIN_DISTANCE} bp on each side of the cut ({least}–5000 bp, min ≤ max)"
        )
    return lo, hi


def primer_pairs(genome: Genome, chrom: str, cut0: int, *, product=DEFAULT_PRODUCT) -> list[dict]:
    """Primer3's pairs around the cut between bases ``cut0 - 1`` and ``cut0`` (0-based) of
    ``chrom``, best first (at most ``PRIMER_NUM_RETURN``): each ``{"left", "right",
    "left_start", "right_end", "product_size", "tm_left", "tm_right"}`` with genome
    coordinates (``left_start`` 0-based, ``right_end`` 0-based exclusive). Empty when the cut is
    too close to a chromosome end or Primer3 finds no pair."""
    lo_size, hi_size = _check_product(product)
    chrom = genome.resolve_chrom(chrom)
    length = genome.length(chrom)
    if isinstance(cut0, bool) or not isinstance(cut0, int | np.integer) or not 0 < cut0 < length:
        raise InputError(f"cut {cut0!r} is not inside {chrom} (1–{length - 1})")
    cut0 = int(cut0)
    if cut0 - MIN_DISTANCE < 0 or cut0 + MIN_DISTANCE > length:
        return []
    start = max(0, cut0 + MIN_DISTANCE - hi_size)
    end = min(length, cut0 - MIN_DISTANCE + hi_size)
    template = genome.sequence(chrom, start, end)
    seq_args = {
        "SEQUENCE_ID": f"{chrom}:{cut0}",
        "SEQUENCE_TEMPLATE": template,
        "SEQUENCE_TARGET": [cut0 - MIN_DISTANCE - start, 2 * MIN_DISTANCE],
    }
    import primer3  # here, not at the top: only primer design needs it

    pairs = []
    for masking in (1, 0):
        settings = {
            **PRIMER3_SETTINGS,
            "PRIMER_PRODUCT_SIZE_RANGE": [[lo_size, hi_size]],
            "PRIMER_LOWERCASE_MASKING": masking,
        }
        out = primer3.bindings.design_primers(seq_args, settings)
        for i in range(out.get("PRIMER_PAIR_NUM_RETURNED", 0)):
            left_at, left_len = out[f"PRIMER_LEFT_{i}"]
            right_at, right_len = out[f"PRIMER_RIGHT_{i}"]  # right primer: its 5' end, 3'-most
            pairs.append(
                {
                    "left": out[f"PRIMER_LEFT_{i}_SEQUENCE"].upper(),
                    "right": out[f"PRIMER_RIGHT_{i}_SEQUENCE"].upper(),
                    "left_start": start + left_at,
                    "right_end": start + right_at + 1,
                    "product_size": out[f"PRIMER_PAIR_{i}_PRODUCT_SIZE"],
                    "tm_left": round(out[f"PRIMER_LEFT_{i}_TM"], 2),
                    "tm_right": round(out[f"PRIMER_RIGHT_{i}_TM"], 2),
                }
            )
        if pairs or not any(c.islower() for c in template):
            break
    return pairs


def design_primers(
    genome: Genome,
    chrom: str,
    cut0: int,
    *,
    product=DEFAULT_PRODUCT,
    executor="serial",
    check_unique: bool = True,
) -> dict | None:
    """A PCR primer pair around one cut (see the module), or ``None`` when there is none.

    Returns ``{"left", "right", "left_start", "right_end", "product_size", "tm_left",
    "tm_right", "left_sites", "right_sites", "unique"}``: primer sequences 5'→3' (``right`` on
    the minus strand), ``left_start`` 0-based and ``right_end`` 0-based exclusive on the forward
    strand (the product is ``[left_start, right_end)``), Tm in °C, the number of genome sites
    each primer binds and whether both bind only their own. Of Primer3's pairs the first whose
    primers are both unique is kept, else the one with the fewest sites. With
    ``check_unique=False`` the genome is not scanned and Primer3's best pair is returned with
    ``left_sites``, ``right_sites`` and ``unique`` None. One genome scan per call: for many
    cuts use :func:`design_primers_batch`.
    """
    return design_primers_batch(
        genome, [(chrom, cut0)], product=product, executor=executor, check_unique=check_unique
    )[0]


def design_primers_batch(
    genome: Genome,
    cuts: Sequence[tuple[str, int]],
    *,
    product=DEFAULT_PRODUCT,
    executor="serial",
    check_unique: bool = True,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[dict | None]:
    """:func:`design_primers` for many cuts ``(chrom, cut0)``, in order, with one genome scan
    for the candidate primers of all of them."""
    candidates = [primer_pairs(genome, chrom, cut0, product=product) for chrom, cut0 in cuts]
    if not check_unique:
        return [
            {**pairs[0], "left_sites": None, "right_sites": None, "unique": None} if pairs else None
            for pairs in candidates
        ]
    primers = sorted({p[side] for pairs in candidates for p in pairs for side in ("left", "right")})
    counts = {}
    if primers:
        found = count_primer_sites(
            genome, primers, executor=executor, retries=retries, progress=progress, cancel=cancel
        )
        counts = dict(zip(primers, found["counts"], strict=True))
    out: list[dict | None] = []
    for pairs in candidates:
        if not pairs:
            out.append(None)
            continue
        scored = [
            {
                **p,
                "left_sites": counts[p["left"]],
                "right_sites": counts[p["right"]],
                "unique": counts[p["left"]] == 1 and counts[p["right"]] == 1,
            }
            for p in pairs
        ]
        best = next((p for p in scored if p["unique"]), None)
        if best is None:
            best = min(scored, key=lambda p: p["left_sites"] + p["right_sites"])
        out.append(best)
    return out


# -- uniqueness scan --------------------------------------------------------------------------
def check_primers(primers: Sequence[str]) -> list[str]:
    """Upper-case primers of A/C/G/T, each at least :data:`SEED` and at most 64 bases."""
    clean = []
    for i, p in enumerate(primers, 1):
        s = str(p).strip().upper()
        if not SEED <= len(s) <= 64 or set(s) - set("ACGT"):
            raise InputError(
                f"primer {i} ({str(p).strip()!r}) must be {SEED}–64 bases of A, C, G, T"
            )
        clean.append(s)
    return clean


def _pack(seq: str) -> int:
    v = 0
    for c in seq:
        v = (v << 2) | "ACGT".index(c)
    return v


def prepare_primers(primers: Sequence[str]) -> dict:
    """The seed table of a scan: every primer's 3' seed as met on the forward strand — strand 0,
    the primer's own last :data:`SEED` bases; strand 1, the first bases of its reverse
    complement — sorted by seed, with the bitmap of seeds present and the primers' codes."""
    primers = check_primers(primers)
    m = len(primers)
    width = max(len(p) for p in primers)
    fwd = np.full((m, width), 4, np.uint8)
    rev = np.full((m, width), 4, np.uint8)
    keys, who, strand = [], [], []
    for i, p in enumerate(primers):
        rc = reverse_complement(p)
        fwd[i, : len(p)] = kernels.encode(p)
        rev[i, : len(p)] = kernels.encode(rc)
        keys += [_pack(p[-SEED:]), _pack(rc[:SEED])]
        who += [i, i]
        strand += [0, 1]
    keys_arr = np.array(keys, np.int64)
    order = np.argsort(keys_arr, kind="stable")
    bitmap = np.zeros((1 << (2 * SEED - _BITMAP_SHIFT)) // 64, np.uint64)
    top = keys_arr >> _BITMAP_SHIFT
    np.bitwise_or.at(bitmap, top >> 6, np.uint64(1) << (top & 63).astype(np.uint64))
    return {
        "keys": keys_arr[order],
        "primer": np.array(who, np.int64)[order],
        "strand": np.array(strand, np.uint8)[order],
        "fwd": fwd,
        "rev": rev,
        "length": np.array([len(p) for p in primers], np.int64),
        "bitmap": bitmap,
        "width": width,
    }


@njit(cache=True)
def _scan_kernel(
    codes, j_lo, j_hi, keys, ent_primer, ent_strand, fwd, rev, plen, bitmap, shift, k, max_mm,
    counts, listed, max_listed, pos_base,
):  # fmt: skip
    """Seed hits of a chunk, extended to whole primers (see the module). ``codes`` holds the
    chunk and its flanks; seeds (genome k-mers) starting at ``codes[j_lo:j_hi]`` are this
    chunk's. Adds to ``counts`` per primer; returns (primer, strand, window start + pos_base)
    of the first ``max_listed`` sites per primer and strand (``listed[p, strand]`` counts them:
    on one strand sites come in the order of their window starts, on both they need not)."""
    n = codes.shape[0]
    out_p = np.empty(64, np.int64)
    out_s = np.empty(64, np.int64)
    out_x = np.empty(64, np.int64)
    nout = 0
    mask = (np.int64(1) << np.int64(2 * k)) - 1
    v = np.int64(0)
    run = 0
    nkeys = keys.shape[0]
    for i in range(j_lo, min(j_hi + k - 1, n)):
        c = codes[i]
        if c > 3:
            run = 0
            v = 0
            continue
        v = ((v << 2) | c) & mask
        run += 1
        if run < k:
            continue
        j = i - k + 1
        top = v >> shift
        if not (bitmap[top >> 6] >> np.uint64(top & 63)) & np.uint64(1):
            continue
        lo, hi = 0, nkeys
        while lo < hi:
            mid = (lo + hi) // 2
            if keys[mid] < v:
                lo = mid + 1
            else:
                hi = mid
        e = lo
        while e < nkeys and keys[e] == v:
            p = ent_primer[e]
            L = plen[p]
            if ent_strand[e] == 0:
                s = j + k - L
                ok = s >= 0
                mm = 0
                if ok:
                    for t in range(L - k):
                        if codes[s + t] != fwd[p, t]:
                            mm += 1
                            if mm > max_mm:
                                break
            else:
                s = j
                ok = j + L <= n
                mm = 0
                if ok:
                    for t in range(k, L):
                        if codes[j + t] != rev[p, t]:
                            mm += 1
                            if mm > max_mm:
                                break
            if ok and mm <= max_mm:
                counts[p] += 1
                if listed[p, ent_strand[e]] < max_listed:
                    listed[p, ent_strand[e]] += 1
                    if nout == out_p.shape[0]:
                        out_p = np.concatenate((out_p, np.empty(nout, np.int64)))
                        out_s = np.concatenate((out_s, np.empty(nout, np.int64)))
                        out_x = np.concatenate((out_x, np.empty(nout, np.int64)))
                    out_p[nout] = p
                    out_s[nout] = ent_strand[e]
                    out_x[nout] = s + pos_base
                    nout += 1
            e += 1
    return out_p[:nout], out_s[:nout], out_x[:nout]


def scan_sequence(codes: np.ndarray, j_lo: int, j_hi: int, prep: dict, counts, listed, pos_base):
    """Run the scan kernel on one chunk of base codes (see :func:`_scan_kernel`)."""
    return _scan_kernel(
        codes, j_lo, j_hi, prep["keys"], prep["primer"], prep["strand"], prep["fwd"],
        prep["rev"], prep["length"], prep["bitmap"], _BITMAP_SHIFT, SEED, MAX_MISMATCHES,
        counts, listed, MAX_LISTED_SITES, pos_base,
    )  # fmt: skip


@functools.lru_cache(maxsize=4)
def _prepared(store_url: str, options: str, primers_key: str) -> dict:
    """The primers of a scan, prepared once per worker process (a worker runs many tasks)."""
    st = Store(store_url, json.loads(options), create=False)
    return prepare_primers(json.loads(st.read_bytes(primers_key)))


def scan_task(store: dict, genome: dict, primers_key: str, segments: list) -> dict:
    """Fan-out task: the sites of all primers in some genome segments ``[chrom, start, end]``
    (seeds starting there), read :data:`CHUNK_BP` bases at a time. Returns per-primer
    ``counts`` and the first sites found ``[primer, chrom, window start, strand]``."""
    st = Store.from_reference(store)
    prep = _prepared(st.url, json.dumps(st.storage_options, sort_keys=True), primers_key)
    g = Genome.from_reference(genome)
    m = len(prep["length"])
    counts = np.zeros(m, np.int64)
    listed = np.zeros((m, 2), np.int64)
    sites = []
    flank = prep["width"] - SEED
    for chrom, start, end in segments:
        length = g.length(chrom)
        for lo in range(start, end, CHUNK_BP):
            hi = min(end, lo + CHUNK_BP)
            a, b = max(0, lo - flank), min(length, hi + SEED - 1 + flank)
            codes = kernels.encode(g.sequence(chrom, a, b))
            p, s, x = scan_sequence(codes, lo - a, hi - a, prep, counts, listed, a)
            for pi, si, xi in zip(p.tolist(), s.tolist(), x.tolist(), strict=True):
                sites.append([pi, chrom, xi, "-" if si else "+"])
    return {"counts": counts.tolist(), "sites": sites}


def count_primer_sites(
    genome: Genome,
    primers: Sequence[str],
    *,
    executor="serial",
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    task_bp: int | None = None,
) -> dict:
    """The genome sites each primer binds (see the module's rule), both strands, exactly.

    Returns ``{"counts": [int per primer], "sites": [[(chrom, window start 0-based, strand),
    …] per primer]}``; ``sites`` lists at most :data:`MAX_LISTED_SITES` per primer, in genome
    order, while ``counts`` are complete. ``task_bp`` sets the genome bases per fan-out task
    (default: a sixteenth of the genome, 1–64 Mbp)."""
    primers = check_primers(primers)
    if not primers:
        return {"counts": [], "sites": []}
    total = genome.total_length
    if task_bp is None:
        task_bp = min(TASK_BP, max(1_000_000, -(-total // 16)))
    if task_bp < 1:
        raise InputError("task size must be at least 1 bp")
    store = genome.dataset.store
    key = f"scratch/primers-{uuid.uuid4().hex}.json"
    store.write_bytes(key, json.dumps(primers).encode())
    try:
        tasks = [
            Task(
                "sandgrain.guides.primers:scan_task",
                dict(
                    store=store.reference(),
                    genome=genome.reference(),
                    primers_key=key,
                    segments=segs,
                ),
                key=f"primer uniqueness, {segs[0][0]}:{segs[0][1] + 1}…",
                weight=sum(e - s for _, s, e in segs),
            )  # fmt: skip
            for segs in plan_partitions(genome.chromosomes, task_bp)
        ]
        parts = run_plan(
            tasks, executor, retries=retries, progress=progress, cancel=cancel,
            store_probe=store.probe,
        )  # fmt: skip
    finally:
        store.delete(key)
    counts = np.zeros(len(primers), np.int64)
    order = {c["name"]: i for i, c in enumerate(genome.chromosomes)}
    sites: list[list] = [[] for _ in primers]
    for part in parts:
        counts += np.asarray(part["counts"], np.int64)
        for p, chrom, x, strand in part["sites"]:
            sites[p].append((chrom, x, strand))
    for found in sites:
        found.sort(key=lambda t: (order[t[0]], t[1], t[2]))
        del found[MAX_LISTED_SITES:]
    return {"counts": counts.tolist(), "sites": sites}
