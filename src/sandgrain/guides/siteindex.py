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
genome, built with memory bounded by the partition size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..fanout import Task, run_plan
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
):
    """Build (or rebuild) the site index of ``genome`` for ``family``; returns the dataset."""
    if partition_bp < 1000:
        raise InputError("partition size must be at least 1,000 bp")
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
            )
            for i, segs in enumerate(parts)
        ]
        results = run_plan(tasks, executor, retries=retries, progress=progress, cancel=cancel)
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
                {"pid": i, "segments": segs, "sites": r["sites"], "n_sites": r["n_sites"]}
                for i, (segs, r) in enumerate(zip(parts, results, strict=True))
            ],
            "sites": sum(r["sites"] + r["n_sites"] for r in results),
        }
        ds.provenance = provenance(
            "genome index",
            {"genome": genome.name, **family.to_dict(), "partition_bp": partition_bp},
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
