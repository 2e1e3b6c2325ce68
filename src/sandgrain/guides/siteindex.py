"""The site index: every PAM-adjacent protospacer of a genome, packed and bucketed for search.

One index per genome and *PAM family* (the PAM patterns, the protospacer length and the PAM
side). It is built once (``sandgrain genome index``), stored through the storage layer as a
dataset with a manifest, and split into partitions of at most ``partition_bp`` genome bases so
that both the build and every search fan out over the engine's executors, each task loading
only its partition.

Layout of a partition (NumPy ``.npy`` files; L = protospacer length, h = L // 2, keys of
``ka``/``kb`` ≤ 11 bases taken from the start of each half):

``a_off``  int64 (4^ka + 1)   bucket offsets of the sites sorted by their first-half key
``a_rest`` uint32 (n)         the other L − ka bases, packed 2 bits a base
``a_loc``  uint64 (n)         position | chromosome << 32 | strand << 52 | PAM pattern << 53
``a_pam``  uint16 (n)         the site's PAM bases, packed
``b_off``  int64 (4^kb + 1)   bucket offsets of the same sites sorted by their second-half key
``b_rest`` uint32 (n)         bases [0, h) then [h + kb, L), packed
``b_idx``  uint32 (n)         the site's index in the ``a_*`` arrays
``n_codes`` uint8 (m, L), ``n_loc`` uint64 (m), ``n_pam`` uint16 (m): the few sites whose
protospacer contains N (next to N runs); searched by brute force.

16–22 bytes a site: SpCas9 (NGG) has ~1 site per 8 bp on both strands, so ~8 GB for a 3.1 Gbp
genome, built with memory bounded by the partition size. Partitions are sized so one build or
search task fits the task budget (:class:`~sandgrain.fanout.TaskBudget`; default an AWS Lambda
function's 10 GB memory and 10 GB ``/tmp``): :func:`partition_bp_for`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..fanout import Task, TaskBudget, run_plan
from ..genome.store import Genome
from ..provenance import provenance
from ..storage import Store, scratch_dir
from . import kernels
from .errors import MissingIndexError
from .iupac import check_pattern
from .nucleases import NUCLEASES

KIND = "siteindex"
FORMAT = "sandgrain.siteindex"
FORMAT_VERSION = 1
DEFAULT_PARTITION_BP = 256_000_000
#: Smallest partition, in genome bases.
MIN_PARTITION_BP = 1000
#: Bytes one site takes in a partition's files: ``a_rest`` 4 + ``a_loc`` 8 + ``a_pam`` 2 +
#: ``b_rest`` 4 + ``b_idx`` 4 (the few N-sites aside).
SITE_BYTES = 22
#: Most bytes a site takes at once while :func:`build_partition` builds its partition: the
#: extracted and concatenated ``packed``/``loc``/``pam`` words (2 × 18), the keys and rests
#: (24), both sort orders and the sorted copies (≈ 58), rounded up.
BUILD_SITE_BYTES = 128
#: Bytes a genome base takes while its partition is built: the sequence text and its codes.
BUILD_BASE_BYTES = 2
MAX_KEY = 11
ARRAYS_A = ("a_off", "a_rest", "a_loc", "a_pam")
ARRAYS_B = ("b_off", "b_rest", "b_idx")
ARRAYS_N = ("n_codes", "n_loc", "n_pam")
_BASE_BITS = {"A": 1, "C": 2, "G": 4, "T": 8}
_IUPAC_BITS = {
    "A": 1,
    "C": 2,
    "G": 4,
    "T": 8,
    "R": 5,
    "Y": 10,
    "S": 6,
    "W": 9,
    "K": 12,
    "M": 3,
    "B": 14,
    "D": 13,
    "H": 11,
    "V": 7,
    "N": 15,
}


@dataclass(frozen=True)
class SiteFamily:
    """What an index holds: protospacers of ``length`` next to any of ``pams`` on ``pam_side``."""

    pams: tuple[str, ...]
    length: int
    pam_side: str  # "3" or "5"

    def __post_init__(self):
        if not self.pams:
            raise InputError("a site index needs at least one PAM")
        if len({len(p) for p in self.pams}) != 1:
            raise InputError(f"PAMs {', '.join(self.pams)} differ in length")
        if not 16 <= self.length <= 27:
            raise InputError(f"protospacer length must be 16–27, not {self.length}")
        if len(self.pams) > 8 or len(self.pams[0]) > 8:
            raise InputError("at most 8 PAM patterns of at most 8 bases")

    @classmethod
    def of(cls, nuclease, offtarget_pams: Sequence[str] | None = None) -> SiteFamily:
        extra = list(
            offtarget_pams
            if offtarget_pams is not None
            else getattr(nuclease, "default_offtarget_pams", ())
        )
        pams = [check_pattern(nuclease.pam)]
        pams += [check_pattern(p) for p in extra if check_pattern(p) not in pams]
        return cls(tuple(pams), nuclease.guide_length, nuclease.pam_side)

    @property
    def pam_length(self) -> int:
        return len(self.pams[0])

    @property
    def half(self) -> int:
        return self.length // 2

    @property
    def key_a(self) -> int:
        return min(self.half, MAX_KEY)

    @property
    def key_b(self) -> int:
        return min(self.length - self.half, MAX_KEY)

    @property
    def slug(self) -> str:
        return f"{'_'.join(self.pams)}.{self.length}.{self.pam_side}p"

    def pam_masks(self) -> np.ndarray:
        return np.array([[_IUPAC_BITS[c] for c in p] for p in self.pams], dtype=np.uint8)

    def to_dict(self) -> dict:
        return {"pams": list(self.pams), "length": self.length, "pam_side": self.pam_side}


def index_name(genome: str, family: SiteFamily) -> str:
    return f"{genome}.{family.slug}"


def sites_per_base(family: SiteFamily) -> float:
    """Expected sites per genome base of ``family`` in a genome of uniform base composition:
    on each strand, the chance that a position starts a PAM, summed over the PAMs (an upper
    bound when their matches overlap), so 1/16 per strand for NGG and 1/8 on both strands.
    Real genomes differ by GC content and repeats by tens of percent, not by multiples."""
    per_strand = sum(
        float(np.prod([bin(_IUPAC_BITS[c]).count("1") / 4 for c in pam])) for pam in family.pams
    )
    return 2 * min(1.0, per_strand)


def _offset_bytes(family: SiteFamily) -> int:
    """Bytes of a partition's two bucket-offset arrays (``uint32``, 4^k + 1 entries each)."""
    return 4 * (4**family.key_a + 1 + 4**family.key_b + 1)


def partition_bytes(family: SiteFamily, bp: int) -> int:
    """Estimated bytes of the files of a partition of ``bp`` genome bases: what one search task
    reads (or caches on disk) at most."""
    return int(bp * sites_per_base(family) * SITE_BYTES) + _offset_bytes(family)


def build_bytes(family: SiteFamily, bp: int) -> int:
    """Estimated peak memory of the task that builds a partition of ``bp`` genome bases."""
    per_base = BUILD_BASE_BYTES + sites_per_base(family) * BUILD_SITE_BYTES
    return int(bp * per_base) + 2 * _offset_bytes(family)


def partition_bp_for(
    family: SiteFamily, budget: TaskBudget, largest: int = DEFAULT_PARTITION_BP
) -> int:
    """The partition size, in genome bases, at most ``largest``, such that one task fits
    ``budget``: the build task's memory (:func:`build_bytes`) within its memory budget, and
    the partition's files (:func:`partition_bytes`) — what a search task reads or keeps in its
    worker cache, memory-mapped — within both its disk and its memory budget.

    Raises
    ------
    InputError
        If even a :data:`MIN_PARTITION_BP` partition would not fit the budget.
    """
    spb = sites_per_base(family)
    fixed = _offset_bytes(family)
    by_memory = (budget.memory_bytes - 2 * fixed) / (BUILD_BASE_BYTES + spb * BUILD_SITE_BYTES)
    by_disk = (budget.fits_bytes - fixed) / (spb * SITE_BYTES)
    bp = min(largest, int(by_memory), int(by_disk))
    if bp < MIN_PARTITION_BP:
        need = max(build_bytes(family, MIN_PARTITION_BP), partition_bytes(family, MIN_PARTITION_BP))
        raise InputError(
            f"a task budget of {budget.memory_bytes / 2**20:,.0f} MB memory and "
            f"{budget.disk_bytes / 2**20:,.0f} MB disk cannot hold the smallest partition of a "
            f"{','.join(family.pams)} site index ({need / 2**20:,.1f} MB); raise "
            "SANDGRAIN_TASK_MEMORY_MB and SANDGRAIN_TASK_DISK_MB"
        )
    return bp


def plan_partitions(chromosomes: list[dict], partition_bp: int) -> list[list[list]]:
    """Group chromosome segments into partitions of at most ``partition_bp`` window starts."""
    parts: list[list[list]] = []
    current: list[list] = []
    size = 0
    for c in chromosomes:
        start = 0
        while start < c["length"]:
            take = min(c["length"] - start, partition_bp - size)
            current.append([c["name"], start, start + take])
            size += take
            start += take
            if size >= partition_bp:
                parts.append(current)
                current, size = [], 0
    if current:
        parts.append(current)
    return parts


# -- building ---------------------------------------------------------------------------------
def split_keys(packed: np.ndarray, fam: SiteFamily):
    """The bucket keys and rests of packed protospacers: key A is the first ``key_a`` bases,
    rest A the others; key B is ``key_b`` bases from the start of the second half, rest B the
    first half followed by the bases after key B."""
    L, h, ka, kb = fam.length, fam.half, fam.key_a, fam.key_b
    key_a = (packed >> np.uint64(2 * (L - ka))).astype(np.int64)
    rest_a = (packed & np.uint64((1 << (2 * (L - ka))) - 1)).astype(np.uint32)
    b_low = L - h - kb
    key_b = ((packed >> np.uint64(2 * b_low)) & np.uint64((1 << (2 * kb)) - 1)).astype(np.int64)
    rest_b = (
        ((packed >> np.uint64(2 * (L - h))) << np.uint64(2 * b_low))
        | (packed & np.uint64((1 << (2 * b_low)) - 1))
    ).astype(np.uint32)
    return key_a, rest_a, key_b, rest_b


def segment_sites(
    codes: np.ndarray, lo: int, hi: int, fam: SiteFamily, chrom_idx: int, pos_base: int
):
    """The sites of ``fam`` whose window starts in ``codes[lo:hi]`` (base codes of
    :func:`kernels.encode`), both strands: ``(packed, loc, pam)`` of the sites whose protospacer
    is all A/C/G/T, and ``(n_codes, n_loc, n_pam)`` of those with an N in it (their protospacer's
    codes kept whole, since 2 bits cannot hold an N). ``loc`` words are those of
    :func:`kernels.extract_sites`, positions offset by ``pos_base``."""
    L, P = fam.length, fam.pam_length
    pam5 = fam.pam_side == "5"
    packed, loc, pam, hasn = kernels.extract_sites(
        codes, lo, hi, L, P, fam.pam_masks(), pam5, chrom_idx, pos_base
    )
    keep = ~hasn
    nloc = loc[hasn]
    if len(nloc):
        ncodes = np.stack(
            [
                kernels.window_codes(
                    codes, int(x & 0xFFFFFFFF) - pos_base, L, P, pam5, int((x >> 52) & 1)
                )
                for x in nloc
            ]
        )
    else:
        ncodes = np.zeros((0, L), np.uint8)
    return (packed[keep], loc[keep], pam[keep]), (ncodes, nloc, pam[hasn])


def site_arrays(pieces: list, npieces: list, fam: SiteFamily) -> dict[str, np.ndarray]:
    """The arrays of one index partition from the :func:`segment_sites` of its segments:
    sites bucketed by first-half key (``a_*``) and by second-half key (``b_*``, pointing into
    the ``a_*`` order), and the N-sites apart (``n_*``)."""
    L = fam.length
    packed = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros(0, np.uint64)
    loc = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0, np.uint64)
    pam = np.concatenate([p[2] for p in pieces]) if pieces else np.zeros(0, np.uint16)
    key_a, rest_a, key_b, rest_b = split_keys(packed, fam)
    order_a = np.argsort(key_a, kind="stable")
    arrays = {
        "a_off": _offsets(key_a[order_a], fam.key_a),
        "a_rest": rest_a[order_a],
        "a_loc": loc[order_a],
        "a_pam": pam[order_a],
    }
    kb_sorted = key_b[order_a]
    order_b = np.argsort(kb_sorted, kind="stable")
    arrays["b_off"] = _offsets(kb_sorted[order_b], fam.key_b)
    arrays["b_rest"] = rest_b[order_a][order_b]
    arrays["b_idx"] = order_b.astype(np.uint32)
    npieces = [p for p in npieces if len(p[1])]
    if npieces:
        arrays["n_codes"] = np.concatenate([p[0] for p in npieces])
        arrays["n_loc"] = np.concatenate([p[1] for p in npieces])
        arrays["n_pam"] = np.concatenate([p[2] for p in npieces])
    else:
        arrays["n_codes"] = np.zeros((0, L), np.uint8)
        arrays["n_loc"] = np.zeros(0, np.uint64)
        arrays["n_pam"] = np.zeros(0, np.uint16)
    return arrays


def build_partition(
    store: dict, genome: dict, prefix: str, pid: int, segments: list, family: dict
) -> dict:
    """Fan-out task: extract, bucket and store the sites of one partition."""
    fam = SiteFamily(tuple(family["pams"]), family["length"], family["pam_side"])
    g = Genome.from_reference(genome)
    L, P = fam.length, fam.pam_length
    pieces, npieces = [], []
    for chrom, start, end, chrom_idx in segments:
        stop = min(end + L + P - 1, g.length(chrom))
        codes = kernels.encode(g.sequence(chrom, start, stop))
        sites, nsites = segment_sites(codes, 0, end - start, fam, chrom_idx, start)
        pieces.append(sites)
        npieces.append(nsites)
    arrays = site_arrays(pieces, npieces, fam)
    st = Store.from_reference(store)
    files = {}
    with scratch_dir("sandgrain-index-") as tmp:
        for name, arr in arrays.items():
            path = os.path.join(tmp, f"{name}.npy")
            np.save(path, arr)
            file = f"part-{pid:05d}/{name}.npy"
            st.put_file(path, f"{prefix}/{file}")
            files[file] = {"size": os.path.getsize(path), "sha256": _sha256(path)}
    return {
        "pid": pid,
        "sites": int(len(arrays["a_loc"])),
        "n_sites": int(len(arrays["n_loc"])),
        "files": files,
    }


def _offsets(sorted_keys: np.ndarray, k: int) -> np.ndarray:
    offsets = np.searchsorted(sorted_keys, np.arange(4**k + 1, dtype=np.int64))
    return offsets.astype(np.uint32 if len(sorted_keys) < 2**32 else np.int64)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def build_index(
    genome: Genome,
    family: SiteFamily,
    *,
    executor="local",
    partition_bp: int = DEFAULT_PARTITION_BP,
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    replace: bool = True,
    budget: TaskBudget | None = None,
):
    """Build (or rebuild) the site index of ``genome`` for ``family``; returns the dataset.

    Partitions hold at most ``partition_bp`` genome bases, fewer when one task would not fit
    ``budget`` (default: an AWS Lambda function's 10 GB memory and 10 GB ``/tmp``; see
    :func:`partition_bp_for`). The dataset's ``meta["plan"]`` and provenance say how many tasks
    the plan had, the partition size chosen and the bytes the largest partition's files take —
    the most one search task reads."""
    if partition_bp < MIN_PARTITION_BP:
        raise InputError("partition size must be at least 1,000 bp")
    budget = budget or TaskBudget()
    partition_bp = partition_bp_for(family, budget, partition_bp)
    store = genome.dataset.store
    name = index_name(genome.name, family)
    chrom_index = {c["name"]: i for i, c in enumerate(genome.chromosomes)}
    parts = plan_partitions(genome.chromosomes, partition_bp)
    with store.new_dataset(
        KIND, name, format=FORMAT, format_version=FORMAT_VERSION, replace=replace
    ) as ds:
        tasks = [
            Task(
                "sandgrain.guides.siteindex:build_partition",
                dict(
                    store=store.reference(),
                    genome=genome.reference(),
                    prefix=ds.prefix,
                    pid=i,
                    segments=[[c, s, e, chrom_index[c]] for c, s, e in segs],
                    family=family.to_dict(),
                ),
                key=f"index partition {i} ({segs[0][0]}:{segs[0][1] + 1}…)",
                weight=sum(e - s for _, s, e in segs),  # bases, for progress
            )
            for i, segs in enumerate(parts)
        ]
        results = run_plan(
            tasks, executor, retries=retries, progress=progress, cancel=cancel,
            store_probe=store.probe,
        )
        for r in results:
            for file, info in r["files"].items():
                ds.add_written(file, info["size"], info["sha256"])
        seq = genome.dataset.manifest["files"]["sequence.fa.gz"]
        ds.meta = {
            "genome": genome.name,
            "genome_version": genome.dataset.manifest["version"],
            "family": family.to_dict(),
            "keys": {"half": family.half, "a": family.key_a, "b": family.key_b},
            "chromosomes": [c["name"] for c in genome.chromosomes],
            "partitions": [
                {
                    "pid": i, "segments": segs, "sites": r["sites"], "n_sites": r["n_sites"],
                    "bytes": sum(f["size"] for f in r["files"].values()),
                }  # fmt: skip
                for i, (segs, r) in enumerate(zip(parts, results, strict=True))
            ],
            "sites": sum(r["sites"] + r["n_sites"] for r in results),
            "plan": {
                "tasks": len(parts),
                "partition_bp": partition_bp,
                "task_bytes": max(
                    (sum(f["size"] for f in r["files"].values()) for r in results), default=0
                ),  # the largest partition: the most one search task reads
                "budget": budget.to_json(),
            },
        }
        ds.provenance = provenance(
            "genome index",
            {
                "genome": genome.name, **family.to_dict(), "partition_bp": partition_bp,
                "tasks": len(parts), "task_memory_bytes": budget.memory_bytes,
                "task_disk_bytes": budget.disk_bytes,
            },  # fmt: skip
            [
                {
                    "source": f"genome:{genome.name}",
                    "version": genome.dataset.manifest["version"],
                    "sha256": seq["sha256"],
                }
            ],
        )
    return store.open_dataset(KIND, name)


def index_command(genome: str, family: SiteFamily, nuclease: str | None = None) -> str:
    """The command that builds the index of ``family`` for ``genome``."""
    if nuclease:
        command = f"sandgrain genome index {genome} --nuclease {nuclease}"
    else:
        command = (
            f"sandgrain genome index {genome} --pam {family.pams[0]} "
            f"--guide-length {family.length} --pam-side {family.pam_side}"
        )
    if len(family.pams) > 1:
        command += f" --offtarget-pams {','.join(family.pams[1:])}"
    return command


def open_index(genome: Genome, family: SiteFamily, nuclease: str | None = None):
    """The stored index that answers ``family`` for ``genome``: its own, or else the smallest
    index of the same protospacer length and PAM side whose PAMs include all of ``family``'s
    (the search then keeps only sites next to the requested PAMs). A
    :class:`~sandgrain.guides.errors.MissingIndexError` naming the command to run when there is
    none, or when it was built for an older import of the genome."""
    store = genome.dataset.store
    pams = ",".join(family.pams)
    command = index_command(genome.name, family, nuclease)
    ds = None
    if store.has_dataset(KIND, index_name(genome.name, family)):
        ds = store.open_dataset(KIND, index_name(genome.name, family))
    else:
        wanted = set(family.pams)
        supersets = []
        for name in store.dataset_names(KIND):
            if not name.startswith(f"{genome.name}."):
                continue
            other = store.open_dataset(KIND, name)
            fam = other.meta.get("family", {})
            if (
                other.meta.get("genome") == genome.name
                and fam.get("length") == family.length
                and fam.get("pam_side") == family.pam_side
                and wanted <= set(fam.get("pams", ()))
            ):
                supersets.append((len(fam["pams"]), name, other))
        if supersets:
            ds = min(supersets, key=lambda x: x[:2])[2]
    if ds is None:
        raise MissingIndexError(
            f"genome {genome.name} has no site index for PAM {pams}, {family.length}-nt "
            f"protospacers; build it with `{command}`"
        )
    if ds.meta.get("genome_version") != genome.dataset.manifest["version"]:
        raise MissingIndexError(
            f"the site index of {genome.name} was built for an older import of the genome; "
            f"rebuild it with `{command}`"
        )
    return ds


def indexed_nucleases(genome: Genome) -> list[str]:
    """The shipped nucleases whose site index (their own, or a larger one) exists and is up to
    date for ``genome``: those a guide design in it can use."""
    found = []
    for name, nuclease in NUCLEASES.items():
        try:
            open_index(genome, SiteFamily.of(nuclease), name)
        except MissingIndexError:
            continue
        found.append(name)
    return found


# -- reading ----------------------------------------------------------------------------------
#: Two wanted byte ranges of a file closer than this are read as one. The ranged reads of a
#: task go out concurrently (``fsspec`` ``cat_ranges``), so a request costs less than its
#: latency alone; 64 KiB is roughly what one connection transfers in the ≈ 1 ms a further
#: request adds to a batch, so reading a smaller gap is cheaper than asking twice.
RANGE_GAP = 1 << 16
#: A partition is read whole (into the worker cache, then memory-mapped) rather than by ranges
#: when its ranges would cost at least this fraction of its size, counting each request as
#: :data:`RANGE_GAP` bytes: many guides touch most buckets, and then one sequential download of
#: each file (kept for the next task on the worker) beats thousands of ranged reads.
WHOLE_FRACTION = 0.5


@dataclass(frozen=True)
class NpyLayout:
    """Where the elements of a stored ``.npy`` file start, their type and shape (the header
    of NumPy's format, parsed once: ``numpy.lib.format``, format versions 1.0–3.0)."""

    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def row_bytes(self) -> int:
        return int(self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64)))


def npy_layout(head: bytes) -> NpyLayout | None:
    """The layout of a ``.npy`` file from its first bytes, or ``None`` if more are needed."""
    import io

    from numpy.lib import format as npy

    if len(head) < 12:
        return None
    major = head[6]
    hlen = int.from_bytes(head[8:10] if major == 1 else head[8:12], "little")
    if len(head) < (10 if major == 1 else 12) + hlen:
        return None
    bio = io.BytesIO(head)
    version = npy.read_magic(bio)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(bio)
    else:
        shape, fortran, dtype = npy.read_array_header_2_0(bio)
    if fortran and len(shape) > 1:
        raise InputError("a site index array is stored in Fortran order; rebuild the index")
    return NpyLayout(bio.tell(), np.dtype(dtype), tuple(shape))


def merge_ranges(starts: np.ndarray, ends: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, disjoint ``[start, end)`` ranges covering the given ones, neighbours closer than
    ``gap`` merged into one."""
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if not len(starts):
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.maximum.accumulate(ends[order])
    new = np.ones(len(starts), bool)
    new[1:] = starts[1:] > ends[:-1] + gap
    first = np.flatnonzero(new)
    last = np.r_[first[1:], len(starts)] - 1
    return starts[first], ends[last]


class RangedPartition:
    """Reads of the rows of one partition's arrays by ranges, without downloading the files.

    ``rows(array, starts, ends)`` returns the rows ``[start, end)`` of each range, concatenated
    in order; nearby ranges are fetched in one request (:data:`RANGE_GAP`). :attr:`bytes_read`
    and :attr:`requests` count what was fetched.
    """

    def __init__(self, dataset, pid: int, layouts: dict[str, NpyLayout] | None = None):
        self.dataset = dataset
        self.pid = pid
        self.bytes_read = 0
        self.requests = 0
        self.layouts = layouts if layouts is not None else self._read_layouts()

    def file(self, array: str) -> str:
        return f"part-{self.pid:05d}/{array}.npy"

    def _read_layouts(self) -> dict[str, NpyLayout]:
        names = ARRAYS_A + ARRAYS_B + ARRAYS_N
        out = {}
        for name in names:
            file = self.file(name)
            size = int(self.dataset.manifest["files"][file]["size"])
            head = b""
            want = min(size, 256)
            while True:
                head = self.dataset.read_range(file, 0, want)
                self.bytes_read += len(head)
                self.requests += 1
                layout = npy_layout(head)
                if layout is not None or want >= size:
                    break
                want = min(size, want * 16)
            if layout is None:
                raise InputError(f"{file} of site index {self.dataset.name} is not a .npy file")
            out[name] = layout
        return out

    def plan(self, array: str, starts: np.ndarray, ends: np.ndarray):
        """The merged byte ranges that hold rows ``[starts, ends)`` of ``array``."""
        lay = self.layouts[array]
        b0 = lay.offset + np.asarray(starts, np.int64) * lay.row_bytes
        b1 = lay.offset + np.asarray(ends, np.int64) * lay.row_bytes
        return merge_ranges(b0, b1, RANGE_GAP)

    def rows(self, array: str, starts, ends) -> np.ndarray:
        lay = self.layouts[array]
        starts = np.asarray(starts, np.int64)
        ends = np.asarray(ends, np.int64)
        keep = ends > starts
        starts, ends = starts[keep], ends[keep]
        empty = np.zeros((0, *lay.shape[1:]), lay.dtype)
        if not len(starts):
            return empty
        m0, m1 = self.plan(array, starts, ends)
        pairs = list(zip(m0.tolist(), m1.tolist(), strict=True))
        chunks = self.dataset.read_ranges(self.file(array), pairs)
        self.requests += len(chunks)
        self.bytes_read += sum(len(c) for c in chunks)
        flat = np.frombuffer(b"".join(chunks), lay.dtype).reshape(-1, *lay.shape[1:])
        # row r of the file sits at: its merged read's place in ``flat`` + its offset in the read
        rb = lay.row_bytes
        base = np.r_[0, np.cumsum((m1 - m0) // rb)[:-1]]
        which = np.searchsorted(m0, lay.offset + starts * rb, side="right") - 1
        first = base[which] + (lay.offset + starts * rb - m0[which]) // rb
        lens = ends - starts
        idx = np.repeat(first - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(lens.sum())
        return flat[idx]

    def whole(self, array: str) -> np.ndarray:
        """All rows of a (small) array."""
        n = self.layouts[array].shape[0]
        return self.rows(array, np.array([0]), np.array([n]))
