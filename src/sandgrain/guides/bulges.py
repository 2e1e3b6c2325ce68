"""Off-target search with DNA and RNA bulges, exact, on the site index; Cas-OFFinder 3 output.

Cas9 cuts sites where guide and DNA pair with a bulge: an extra DNA base (a *DNA bulge*) or an
unpaired guide base (an *RNA bulge*) (Lin et al. 2014, Nucleic Acids Res 42:7473). Cas-OFFinder
3.0 (Bae, Park & Kim 2014, Bioinformatics 30:1473; bulges since its ``cas-offinder-bulge``
wrapper, built into 3.0) and CRISPRitz search them; so does this module, with their definitions.

Definitions
-----------
A *site* is a PAM of the nuclease's family (its PAM and off-target PAMs, as the site index holds
them) and the protospacer beside it on the same strand, read 5'→3' like the guide: before the
PAM for a 3' PAM (SpCas9), after it for a 5' PAM (Cas12a). An *alignment* of a guide of ``L``
bases to a site is one of:

- ``X`` (no bulge): the protospacer has ``L`` bases, guide base ``i`` pairs with base ``i``;
- ``DNA`` bulge of ``b`` bases at position ``j``: the protospacer has ``L + b`` bases; guide
  bases ``[0, j)`` pair with its first ``j``, bases ``[j, L)`` with its last ``L - j``, and the
  ``b`` DNA bases between stay unpaired (``1 ≤ j ≤ L - 1``);
- ``RNA`` bulge of ``b`` bases at position ``j``: the protospacer has ``L - b`` bases; guide
  bases ``[j, j + b)`` stay unpaired and the others pair in order (``1 ≤ j ≤ L - b - 1``).

``b`` is 1 … the largest bulge asked for (at most :data:`MAX_BULGE`, 2); ``j`` counts guide bases
from the guide's 5' end. One alignment has one bulge, of one kind, in one piece, as in Cas-OFFinder
3 (its bulge is a single gap of 1…b bases). A bulge is never at either end of the guide: at
least one paired base on each side, so never next to the PAM, and the guide's first and last
bases are never the unpaired ones — the rule of ``cas-offinder-bulge`` and of Cas-OFFinder 3.0
for a 3' PAM. (For a 5' PAM Cas-OFFinder 3.0 also moves bulges into the query's ``N`` padding of
the PAM; that is an artefact of its padding, not reproduced: here the rule is the same in guide
coordinates for both PAM sides, as the wrapper applies it.)

The *mismatches* of an alignment are its paired positions whose bases differ (bulge bases are
not mismatches; a genome ``N`` at a paired position is one, as in the plain search); a bulge
base may be any letter, ``N`` included. An alignment is reported when it has at most ``k``
mismatches (``k`` per guide, 0–5). Every placement that qualifies is its own row, as
Cas-OFFinder 3 prints it: equivalent placements in a run of equal bases (the unpaired ``A`` of
``CAAT`` taken as the first or the second ``A``) are distinct rows with distinct gapped strings,
each alignment exactly once (the search deduplicates what its several index queries reach).
Positions are Cas-OFFinder 3's ``Location``: the 0-based forward-strand coordinate of the site's
leftmost base (protospacer with its bulge, and the PAM) — on the minus strand too (its 3.0.0
release fixed the minus-strand offset, pull request 49).

Search
------
Exact, on the existing site index (:mod:`.siteindex`, searched by :func:`.search.search_table`).
The index holds each site's ``L`` PAM-proximal bases; every alignment above agrees with them in
all but its mismatches, at the positions of a *bulge variant* of the guide, with the other
positions free:

- ``DNA`` (b, j): the guide with ``b`` free bases inserted at ``j``, its PAM-proximal ``L``;
- ``RNA`` (b, j): the guide without bases ``[j, j + b)``, padded with ``b`` free bases at its
  PAM-distal end (the ``b`` genome bases beyond the shorter protospacer).

The free bases are expanded into the four bases (at most 16 queries a variant), so each site
within ``k`` mismatches of a variant at its fixed positions is found by exactly one query with
at most ``k`` mismatches: the index search of every distinct query finds a superset of the sites
with an alignment. Three kinds of site escape it and are added as candidates for every guide:
sites whose ``L`` indexed bases hold an ``N`` (the index's N-sites: an ``N`` at a free position
is no mismatch here but one there), and, with RNA bulges, the few sites within ``L`` bases of a
chromosome end whose shorter protospacer fits but whose ``L`` bases do not (not in the index).
Each candidate (guide, PAM site) is then aligned exactly, every placement at once, on the genome
bases around its PAM (:func:`align_sites`), in batches of guides and candidates, so memory grows
with a batch and with the sites found, not with the genome. The tests compare the result with a
plain aligner that tries every PAM of the genome and every placement.

Output
------
:func:`to_casoffinder3` writes Cas-OFFinder 3's format (header lines, then ``Id``, ``Bulge
Type``, ``crRNA``, ``DNA``, ``Chromosome``, ``Location``, ``Direction``, ``Mismatches``, ``Bulge
Size``); :func:`to_bulges_tsv` and :func:`bulges_document` the TSV and JSON of ``sandgrain guides
offtargets``, with ``bulge_type``, ``bulge_size``, ``bulge_position``, and the aligned ``crrna``
and ``dna`` strings with ``-`` gaps.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..errors import InputError
from ..genome.store import Genome
from ..provenance import provenance
from ..storage import Dataset
from .batch import index_hint
from .document import inputs, nuclease_parameters
from .kernels import encode
from .nucleases import Nuclease
from .request import resolve_nuclease
from .search import check_guides, check_max_mismatches, search_table
from .siteindex import SiteFamily, open_index

__all__ = [
    "BULGE_TYPES",
    "CASOFFINDER3_HEADER",
    "MAX_BULGE",
    "BULGE_TSV_COLUMNS",
    "BulgeSearch",
    "BulgeTable",
    "align_sites",
    "bulges_document",
    "check_bulge",
    "index_queries",
    "placements",
    "search_bulges",
    "to_bulges_tsv",
    "to_casoffinder3",
]

#: The largest DNA or RNA bulge searched, in bases.
MAX_BULGE = 2
#: Cas-OFFinder 3's names of the alignment kinds (``Bulge Type``), by kind code 0, 1, 2.
BULGE_TYPES = ("X", "DNA", "RNA")
X, DNA, RNA = 0, 1, 2
#: Cas-OFFinder 3's column header line.
CASOFFINDER3_HEADER = (
    "#Id\tBulge Type\tcrRNA\tDNA\tChromosome\tLocation\tDirection\tMismatches\tBulge Size"
)
#: Columns of the TSV of a bulge search (:func:`to_bulges_tsv`).
BULGE_TSV_COLUMNS = (
    "guide", "id", "chrom", "start", "end", "strand", "bulge_type", "bulge_size",
    "bulge_position", "mismatches", "crrna", "dna", "sequence", "pam", "pam_pattern",
)  # fmt: skip

#: Key variants (queries × variants of a half-key within ⌊k/2⌋ mismatches) searched in one
#: fan-out: bounds the search's per-query arrays (~17 bytes each, two halves) to ~70 MB.
VARIANT_BATCH = 2_000_000
#: Candidate sites aligned at once (bounds the alignment's arrays: ~1 KB a candidate).
ALIGN_BATCH = 1 << 16
#: Genome reads of nearby candidates are merged when closer than this many bases.
_FETCH_GAP = 1 << 15
#: … up to this many bases a read.
_FETCH_MAX = 1 << 22
_OUTSIDE = 5  # window code of a position beyond the chromosome's ends (4 is N)
_LETTERS = np.frombuffer(b"ACGTN?", np.uint8)
_LOWER = np.frombuffer(b"acgtn?", np.uint8)


# --------------------------------------------------------------------------------------------
# placements and index queries
# --------------------------------------------------------------------------------------------


def check_bulge(n, what: str = "bulge size") -> int:
    """``n`` as an int when it is a whole number 0…:data:`MAX_BULGE`, else an InputError."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 0 <= n <= MAX_BULGE:
        raise InputError(f"{what} must be a whole number 0–{MAX_BULGE}, not {n!r}")
    return int(n)


def placements(length: int, dna_bulge: int, rna_bulge: int) -> list[tuple[int, int, int]]:
    """Every alignment kind of a guide of ``length`` bases: ``(kind, size, position)`` with kind
    0 (``X``, size and position 0), 1 (``DNA``) or 2 (``RNA``); see the module doc."""
    out = [(X, 0, 0)]
    out += [(DNA, b, j) for b in range(1, dna_bulge + 1) for j in range(1, length)]
    out += [(RNA, b, j) for b in range(1, rna_bulge + 1) for j in range(1, length - b)]
    return out


def _variant(guide: str, kind: int, b: int, j: int, pam_side: str) -> str:
    """The ``L`` bases a site's index entry must match for this placement, ``N`` where free."""
    L = len(guide)
    if kind == X:
        return guide
    if kind == DNA:
        inserted = guide[:j] + "N" * b + guide[j:]
        return inserted[b:] if pam_side == "3" else inserted[:L]
    kept = guide[:j] + guide[j + b :]
    return "N" * b + kept if pam_side == "3" else kept + "N" * b


def index_queries(guide: str, pam_side: str, dna_bulge: int, rna_bulge: int) -> list[str]:
    """The distinct A/C/G/T queries whose index search finds every site where ``guide`` has an
    alignment (each bulge variant with its free bases expanded; the module doc), sorted."""
    out: set[str] = set()
    for kind, b, j in placements(len(guide), dna_bulge, rna_bulge):
        variant = _variant(guide, kind, b, j, pam_side)
        free = [i for i, c in enumerate(variant) if c == "N"]
        if not free:
            out.add(variant)
            continue
        chars = list(variant)
        for bases in itertools.product("ACGT", repeat=len(free)):
            for i, base in zip(free, bases, strict=True):
                chars[i] = base
            out.add("".join(chars))
    return sorted(out)


# --------------------------------------------------------------------------------------------
# the exact alignment of candidate sites
# --------------------------------------------------------------------------------------------


def _protospacer_left(minus: np.ndarray, pam_side: str) -> np.ndarray:
    """Whether the protospacer lies left of the PAM on the forward strand."""
    return ~minus if pam_side == "3" else minus


def _pam_matches(pam: np.ndarray, family: SiteFamily) -> np.ndarray:
    """The first of ``family``'s PAMs each row's PAM codes match, -1 for none (a genome N
    matches only a pattern N, as the index has it; a position off the chromosome nothing)."""
    masks = family.pam_masks().astype(np.int64)
    codes = pam.astype(np.int64)
    label = np.full(len(pam), -1, np.int64)
    for p in range(len(family.pams) - 1, -1, -1):
        ok = np.ones(len(pam), bool)
        for j in range(family.pam_length):
            m = masks[p, j]
            c = codes[:, j]
            base_ok = (c < 4) & ((m >> np.minimum(c, 3)) & 1).astype(bool)
            ok &= base_ok | ((c == 4) & (m == 15))
        label[ok] = p
    return label


def align_sites(
    windows: np.ndarray,
    guides: np.ndarray,
    limits: np.ndarray,
    family: SiteFamily,
    dna_bulge: int,
    rna_bulge: int,
) -> dict[str, np.ndarray]:
    """Every alignment within its limit of guide ``guides[r]`` to candidate site ``r``.

    ``windows`` (n, P + L + ``dna_bulge``) holds each site's bases read on its strand, 5'→3'
    (codes of :func:`~sandgrain.guides.kernels.encode`; 5 off the chromosome): the ``L +
    dna_bulge`` bases before the PAM then the PAM, for a 3' PAM; the PAM then the ``L +
    dna_bulge`` bases after it, for a 5' PAM. ``guides`` (n, L) are the guides' base codes,
    ``limits`` (n,) their mismatch limits. Returns columns ``row`` (the candidate), ``kind``,
    ``size``, ``position``, ``mismatches`` and ``pattern`` (the first of ``family``'s PAMs the
    site's matches), one entry per alignment (module doc: every placement in one pass, with
    prefix sums of the mismatches of the guide against the window at each shift).
    """
    n, L = guides.shape
    P, three = family.pam_length, family.pam_side == "3"
    D = L + dna_bulge
    region = windows[:, :D] if three else windows[:, P:]
    pattern = _pam_matches(windows[:, D:] if three else windows[:, :P], family)
    avail = (region != _OUTSIDE).sum(axis=1)  # the off-chromosome part is at the far end
    padded = np.full((n, D + 2 * MAX_BULGE), _OUTSIDE, np.uint8)
    padded[:, MAX_BULGE : MAX_BULGE + D] = region
    base = MAX_BULGE + (dna_bulge if three else 0)
    cum: dict[int, np.ndarray] = {}

    def before(s: int) -> np.ndarray:
        """Mismatches of guide bases [0, j) against the window shifted by ``s``, for every j."""
        if s not in cum:
            differ = guides != padded[:, base + s : base + s + L]
            cum[s] = np.concatenate(
                [np.zeros((n, 1), np.int16), np.cumsum(differ, axis=1, dtype=np.int16)], axis=1
            )
        return cum[s]

    found = {k: [] for k in ("row", "kind", "size", "position", "mismatches")}
    candidates = pattern >= 0
    for kind, b, j in placements(L, dna_bulge, rna_bulge):
        c0 = before(0)
        if kind == X:
            mm, length = c0[:, L], L
        elif kind == DNA:
            left, right = (before(-b), c0) if three else (c0, before(b))
            mm, length = left[:, j] + right[:, L] - right[:, j], L + b
        else:
            left, right = (before(b), c0) if three else (c0, before(-b))
            mm, length = left[:, j] + right[:, L] - right[:, j + b], L - b
        rows = np.flatnonzero(candidates & (mm <= limits) & (avail >= length))
        found["row"].append(rows)
        found["kind"].append(np.full(len(rows), kind, np.int8))
        found["size"].append(np.full(len(rows), b, np.int8))
        found["position"].append(np.full(len(rows), j, np.int8))
        found["mismatches"].append(mm[rows].astype(np.int8))
    out = {k: np.concatenate(v) for k, v in found.items()}
    out["pattern"] = pattern[out["row"]]
    return out


def _windows(
    genome: Genome,
    chrom_names: Sequence[str],
    lengths: np.ndarray,
    chrom: np.ndarray,
    start: np.ndarray,
    width: int,
) -> np.ndarray:
    """Forward-strand base codes ``[start, start + width)`` of each row's chromosome (5 off its
    ends), read in few merged ranges."""
    out = np.full((len(chrom), width), _OUTSIDE, np.uint8)
    offsets = np.arange(width, dtype=np.int64)
    for c in np.unique(chrom):
        rows = np.flatnonzero(chrom == c)
        rows = rows[np.argsort(start[rows], kind="stable")]
        n = int(lengths[c])
        s = start[rows]
        cut = np.flatnonzero(np.diff(s) > _FETCH_GAP) + 1
        groups = np.split(np.arange(len(rows)), cut)
        for group in groups:
            # a group of close candidates, split again where one read would grow too long
            while len(group):
                first = s[group[0]]
                take = group[s[group] - first <= _FETCH_MAX]
                group = group[len(take) :]
                lo, hi = max(0, int(first)), min(n, int(s[take[-1]]) + width)
                if hi <= lo:
                    continue
                codes = encode(genome.sequence(chrom_names[c], lo, hi))
                pos = s[take, None] + offsets[None, :]
                inside = (pos >= lo) & (pos < hi)
                out[rows[take]] = np.where(
                    inside, codes[np.clip(pos - lo, 0, hi - lo - 1)], _OUTSIDE
                )
    return out


def _site_windows(genome, chrom_names, lengths, chrom, pam_start, minus, family, dna_bulge):
    """Each candidate's bases on its strand, 5'→3', as :func:`align_sites` takes them."""
    L, P = family.length, family.pam_length
    width = L + dna_bulge + P
    left = _protospacer_left(minus, family.pam_side)
    start = np.where(left, pam_start - (L + dna_bulge), pam_start)
    fwd = _windows(genome, chrom_names, lengths, chrom, start, width)
    rc = np.where(fwd[:, ::-1] < 4, 3 - fwd[:, ::-1], fwd[:, ::-1])
    return np.where(minus[:, None], rc, fwd).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


@dataclass
class BulgeTable:
    """The alignments of a bulge search, column by column, sorted by guide then genome order.

    ``guide`` indexes ``guides`` (each distinct guide once); ``chrom`` indexes ``chroms``;
    ``pam_start`` is the forward-strand 0-based position of the PAM's leftmost base; ``kind``
    (0 ``X``, 1 ``DNA``, 2 ``RNA``), ``size`` and ``position`` (guide bases 5' of the bulge)
    describe the placement (module doc); ``window`` holds each site's bases on its strand as
    :func:`align_sites` takes them (what the aligned strings are made from).
    """

    guides: list[str]
    family: SiteFamily
    chroms: list[str]
    dna_bulge: int
    rna_bulge: int
    guide: np.ndarray
    chrom: np.ndarray
    pam_start: np.ndarray
    minus: np.ndarray
    pattern: np.ndarray
    kind: np.ndarray
    size: np.ndarray
    position: np.ndarray
    mismatches: np.ndarray
    window: np.ndarray

    def __len__(self) -> int:
        return len(self.guide)

    @property
    def protospacer_length(self) -> np.ndarray:
        size = self.size.astype(np.int64)
        return (
            self.family.length
            + np.where(self.kind == DNA, size, 0)
            - np.where(self.kind == RNA, size, 0)
        )

    def protospacer_span(self) -> tuple[np.ndarray, np.ndarray]:
        """0-based half-open forward-strand span of each protospacer (its bulge included)."""
        length = self.protospacer_length
        left = _protospacer_left(self.minus, self.family.pam_side)
        start = np.where(left, self.pam_start - length, self.pam_start + self.family.pam_length)
        return start, start + length

    def site_start(self) -> np.ndarray:
        """Cas-OFFinder 3's ``Location``: the site's leftmost forward-strand base, 0-based."""
        left = _protospacer_left(self.minus, self.family.pam_side)
        return np.where(left, self.pam_start - self.protospacer_length, self.pam_start)

    def take(self, rows) -> BulgeTable:
        """The table of some rows, in this order."""
        cols = {k: getattr(self, k)[rows] for k in _empty_columns(0)}
        return BulgeTable(
            self.guides, self.family, self.chroms, self.dna_bulge, self.rna_bulge, **cols
        )

    def bounds(self) -> np.ndarray:
        """Rows of guide ``u`` are ``bounds[u]:bounds[u + 1]``."""
        return np.searchsorted(self.guide, np.arange(len(self.guides) + 1))

    def aligned(self, rows) -> list[tuple[str, str, str, str]]:
        """``(crRNA, DNA, protospacer, PAM)`` strings of some rows, as Cas-OFFinder 3 prints the
        first two: the guide with ``N`` for each PAM base and ``-`` for a DNA bulge; the site on
        its strand with mismatched paired bases in lower case and ``-`` for an RNA bulge. The
        protospacer (bulge bases included) and the PAM as in the genome, upper case."""
        L, P = self.family.length, self.family.pam_length
        three = self.family.pam_side == "3"
        D = L + self.dna_bulge
        pad = "N" * P
        out = []
        for r in np.asarray(rows, np.int64).tolist():
            g = self.guides[int(self.guide[r])]
            kind, b, j = int(self.kind[r]), int(self.size[r]), int(self.position[r])
            length = L + (b if kind == DNA else -b if kind == RNA else 0)
            w = self.window[r]
            proto = w[D - length : D] if three else w[P : P + length]
            pam = w[D:] if three else w[:P]
            upper = _LETTERS[proto]
            letters = upper.copy()
            for i, s in _pairs(L, kind, b, j):
                if upper[s] != ord(g[i]):  # a genome N never pairs
                    letters[s] = _LOWER[proto[s]]
            dna = letters.tobytes().decode()
            crrna = g
            if kind == DNA:
                crrna = g[:j] + "-" * b + g[j:]
            elif kind == RNA:
                dna = dna[:j] + "-" * b + dna[j:]
            pam_text = _LETTERS[pam].tobytes().decode()
            if three:
                out.append((crrna + pad, dna + pam_text, upper.tobytes().decode(), pam_text))
            else:
                out.append((pad + crrna, pam_text + dna, upper.tobytes().decode(), pam_text))
        return out


def _pairs(length: int, kind: int, b: int, j: int) -> list[tuple[int, int]]:
    """(guide base, protospacer base) of each pair of a placement (module doc)."""
    if kind == X:
        return [(i, i) for i in range(length)]
    if kind == DNA:
        return [(i, i if i < j else i + b) for i in range(length)]
    return [(i, i) for i in range(j)] + [(i, i - b) for i in range(j + b, length)]


def _empty_columns(width: int) -> dict[str, np.ndarray]:
    return {
        "guide": np.zeros(0, np.int64), "chrom": np.zeros(0, np.int64),
        "pam_start": np.zeros(0, np.int64), "minus": np.zeros(0, bool),
        "pattern": np.zeros(0, np.int64), "kind": np.zeros(0, np.int8),
        "size": np.zeros(0, np.int8), "position": np.zeros(0, np.int8),
        "mismatches": np.zeros(0, np.int8), "window": np.zeros((0, width), np.uint8),
    }  # fmt: skip


@dataclass
class BulgeSearch:
    """A bulge search of given guides: the :class:`BulgeTable` of the distinct guides, and each
    given guide's ID, mismatch limit and rows (:meth:`rows`), as for a plain search."""

    genome: Genome
    nuclease: Nuclease
    index: Dataset
    guides: list[str]
    limits: list[int]
    ids: list[str]
    table: BulgeTable
    slots: list[int] = field(default_factory=list)

    @property
    def dna_bulge(self) -> int:
        return self.table.dna_bulge

    @property
    def rna_bulge(self) -> int:
        return self.table.rna_bulge

    def rows(self, i: int, max_listed: int | None = None) -> np.ndarray:
        """Table rows of ``guides[i]`` within its limit, in genome order: all, or the
        ``max_listed`` with fewest mismatches then smallest bulge (genome order among equals)."""
        b = self.table.bounds()
        u = self.slots[i]
        rows = np.arange(b[u], b[u + 1], dtype=np.int64)
        rows = rows[self.table.mismatches[rows] <= self.limits[i]]
        if max_listed is not None and len(rows) > max_listed:
            t = self.table
            keep = np.lexsort((rows, t.size[rows], t.mismatches[rows]))[:max_listed]
            rows = rows[np.sort(keep)]
        return rows

    def count(self, i: int) -> int:
        return len(self.rows(i))


# --------------------------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------------------------


def _limits(max_mismatches, n: int) -> list[int]:
    if isinstance(max_mismatches, int | np.integer) and not isinstance(max_mismatches, bool):
        return [check_max_mismatches(max_mismatches)] * n
    limits = [check_max_mismatches(k) for k in max_mismatches]
    if len(limits) != n:
        raise InputError(f"{len(limits)} mismatch limits given for {n} guides")
    return limits


def _pam_start(pos0: np.ndarray, minus: np.ndarray, family: SiteFamily) -> np.ndarray:
    """The PAM's forward-strand start of index sites at ``pos0`` (protospacer + PAM's start)."""
    return np.where(_protospacer_left(minus, family.pam_side), pos0 + family.length, pos0)


def _n_sites(index: Dataset, family: SiteFamily) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chrom, minus, pam_start) of the index's sites whose indexed bases hold an N (location
    words of ``kernels.extract_sites``)."""
    locs = [np.zeros(0, np.uint64)]
    for p in index.meta["partitions"]:
        if p.get("n_sites"):
            raw = index.read_bytes(f"part-{p['pid']:05d}/n_loc.npy")
            locs.append(np.load(io.BytesIO(raw)).astype(np.uint64))
    loc = np.concatenate(locs)
    chrom = ((loc >> np.uint64(32)) & np.uint64(0xFFFFF)).astype(np.int64)
    pos0 = (loc & np.uint64(0xFFFFFFFF)).astype(np.int64)
    minus = ((loc >> np.uint64(52)) & np.uint64(1)).astype(bool)
    return chrom, minus, _pam_start(pos0, minus, family)


def _edge_sites(lengths: np.ndarray, family: SiteFamily, rna_bulge: int):
    """PAM positions near chromosome ends where a protospacer of ``L - b`` bases fits but the
    ``L`` bases the index keeps do not (b ≤ ``rna_bulge``): not in the index."""
    L, P = family.length, family.pam_length
    chrom, minus, pam = [], [], []
    for c, n in enumerate(lengths.tolist()):
        for is_minus in (False, True):
            left = (not is_minus) if family.pam_side == "3" else is_minus
            for b in range(1, rna_bulge + 1):
                start = L - b if left else n - P - L + b
                if 0 <= start <= n - P:
                    chrom.append(c)
                    minus.append(is_minus)
                    pam.append(start)
    return (np.array(chrom, np.int64), np.array(minus, bool), np.array(pam, np.int64))


def search_bulges(
    genome: Genome,
    guides: Sequence[str],
    nuclease: Nuclease | str | None = None,
    max_mismatches: int | Sequence[int] = 3,
    dna_bulge: int = 1,
    rna_bulge: int = 1,
    *,
    ids: Sequence[str | None] | None = None,
    executor="local",
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> BulgeSearch:
    """Every alignment of each guide with at most ``dna_bulge`` DNA or ``rna_bulge`` RNA bulge
    bases (0–2 each) and at most ``max_mismatches`` mismatches (0–5, or one limit per guide),
    at the sites of ``nuclease`` (default SpCas9; with its off-target PAMs), in ``genome``
    (module doc). ``ids`` names the guides in Cas-OFFinder 3's ``Id`` column (default: their
    0-based order). Needs the genome's site index, as the plain search does. ``progress`` is
    called as ``progress(done, total)`` in index queries searched."""
    dna_bulge = check_bulge(dna_bulge, "the DNA bulge size")
    rna_bulge = check_bulge(rna_bulge, "the RNA bulge size")
    nuc = nuclease if isinstance(nuclease, Nuclease) else resolve_nuclease(nuclease)
    guides = check_guides(list(guides), nuc.guide_length)
    limits = _limits(max_mismatches, len(guides))
    ids = [str(i) if x is None else str(x) for i, x in enumerate(ids or [None] * len(guides))]
    if len(ids) != len(guides):
        raise InputError(f"{len(ids)} IDs given for {len(guides)} guides")
    family = SiteFamily.of(nuc)
    hint = index_hint(nuc)
    index = open_index(genome, family, hint)
    names = list(index.meta["chromosomes"])
    lengths = np.array([genome.length(c) for c in names], np.int64)

    unique = list(dict.fromkeys(guides))
    slot = {g: u for u, g in enumerate(unique)}
    unique_limit = np.zeros(len(unique), np.int64)
    for g, k in zip(guides, limits, strict=True):
        unique_limit[slot[g]] = max(unique_limit[slot[g]], k)
    codes = np.array([encode(g) for g in unique], np.uint8).reshape(len(unique), -1)
    queries = [index_queries(g, family.pam_side, dna_bulge, rna_bulge) for g in unique]
    extra = (np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64))
    if dna_bulge or rna_bulge:  # sites no index query may reach (module doc)
        n_sites = _n_sites(index, family)
        edges = _edge_sites(lengths, family, rna_bulge)
        extra = tuple(np.concatenate([a, e]) for a, e in zip(n_sites, edges, strict=True))

    batches = _batches(queries, family, int(unique_limit.max()))
    total, done = sum(len(qs) for _, qs in batches), 0
    width = family.length + dna_bulge + family.pam_length
    parts = [_empty_columns(width)]
    for batch, qs in batches:
        report = None if progress is None else _scaled(progress, done, len(qs), total)
        hits = search_table(
            genome, qs, family, int(unique_limit[batch].max()), executor=executor,
            retries=retries, progress=report, cancel=cancel, nuclease=hint,
        )  # fmt: skip
        done += len(qs)
        cand = _candidates(hits, qs, batch, queries, unique_limit, family, extra)
        for lo in range(0, len(cand), ALIGN_BATCH):
            parts.append(
                _align_batch(genome, names, lengths, cand[lo : lo + ALIGN_BATCH], codes,
                             unique_limit, family, dna_bulge, rna_bulge)
            )  # fmt: skip
    if progress is not None:
        progress(total, total)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    t = BulgeTable(unique, family, names, dna_bulge, rna_bulge, **cols)
    table = t.take(  # guide, then genome order
        np.lexsort((t.position, t.size, t.kind, t.minus, t.site_start(), t.chrom, t.guide))
    )
    return BulgeSearch(
        genome, nuc, index, guides, limits, ids, table, slots=[slot[g] for g in guides]
    )


def _scaled(progress, before: int, size: int, total: int) -> Callable[[int, int], None]:
    """A fan-out's ``progress(done, total)`` in tasks, reported as index queries searched."""

    def report(done: int, tasks: int) -> None:
        if tasks:
            progress(before + size * done // tasks, total)

    return report


def _batches(queries: list[list[str]], family: SiteFamily, k: int):
    """Guides in batches of whole guides (their candidates meet in one batch), each with its
    distinct queries, so that one fan-out enumerates at most about :data:`VARIANT_BATCH` key
    variants (a query has as many as the search makes of a half-key within ⌊k/2⌋)."""
    per_query = sum(math.comb(family.key_a, m) * 3**m for m in range(k // 2 + 1))
    most = max(64, VARIANT_BATCH // per_query)
    out, current, size = [], [], 0
    for u, qs in enumerate(queries):
        current.append(u)
        size += len(qs)
        if size >= most or u == len(queries) - 1:
            out.append((current, sorted({q for v in current for q in queries[v]})))
            current, size = [], 0
    return out


def _candidates(hits, qs, batch, queries, limits, family, extra) -> np.ndarray:
    """Distinct (guide, chrom, minus, pam_start) rows to align: each index hit of a query for
    every guide of the batch it serves whose limit the hit's mismatches do not exceed (they
    are a lower bound of the alignment's), and the ``extra`` sites for every guide."""
    owners: dict[str, list[int]] = {q: [] for q in qs}
    for u in batch:
        for q in queries[u]:
            owners[q].append(u)
    per_query = np.array([len(owners[q]) for q in qs], np.int64)
    ptr = np.concatenate([[0], np.cumsum(per_query)])
    flat = np.array([u for q in qs for u in owners[q]], np.int64)
    q = hits.guide
    count = per_query[q]
    rep = np.repeat(np.arange(len(hits)), count)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(count) - count, count)
    guide = flat[ptr[q[rep]] + within]
    keep = hits.mismatches[rep] <= limits[guide]
    rep, guide = rep[keep], guide[keep]
    minus = hits.minus[rep]
    pam = _pam_start(hits.pos0[rep], minus, family)
    cols = [guide, hits.chrom[rep], minus.astype(np.int64), pam]
    b = np.array(batch, np.int64)
    chrom_x, minus_x, pam_x = extra
    cols = [
        np.concatenate([cols[0], np.repeat(b, len(chrom_x))]),
        np.concatenate([cols[1], np.tile(chrom_x, len(b))]),
        np.concatenate([cols[2], np.tile(minus_x.astype(np.int64), len(b))]),
        np.concatenate([cols[3], np.tile(pam_x, len(b))]),
    ]
    return np.unique(np.stack(cols, axis=1).astype(np.int64), axis=0)


def _align_batch(genome, names, lengths, cand, codes, limits, family, dna_bulge, rna_bulge):
    guide, chrom, minus, pam = cand[:, 0], cand[:, 1], cand[:, 2].astype(bool), cand[:, 3]
    windows = _site_windows(genome, names, lengths, chrom, pam, minus, family, dna_bulge)
    found = align_sites(windows, codes[guide], limits[guide], family, dna_bulge, rna_bulge)
    r = found["row"]
    return {
        "guide": guide[r], "chrom": chrom[r], "pam_start": pam[r], "minus": minus[r],
        "pattern": found["pattern"], "kind": found["kind"], "size": found["size"],
        "position": found["position"], "mismatches": found["mismatches"], "window": windows[r],
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def _chrom_labels(search: BulgeSearch, labels: Mapping[str, str] | None) -> list[str]:
    names = search.table.chroms
    return [labels.get(c, c) for c in names] if labels else list(names)


def _lines(search: BulgeSearch, max_listed: int | None) -> Iterator[tuple[int, np.ndarray]]:
    for i in range(len(search.guides)):
        yield i, search.rows(i, max_listed)


def to_casoffinder3(
    search: BulgeSearch,
    *,
    max_listed: int | None = None,
    chrom_labels: Mapping[str, str] | None = None,
) -> str:
    """The alignments in Cas-OFFinder 3's output format: a ``##Generated by`` line, the column
    header :data:`CASOFFINDER3_HEADER`, then one tab-separated line an alignment — the guide's
    ID, the bulge type (``X``, ``DNA``, ``RNA``), crRNA and DNA (:meth:`BulgeTable.aligned`),
    the chromosome (its name, or its label in ``chrom_labels``, e.g. the full FASTA header),
    the 0-based location of the site's leftmost base, the strand, mismatches and bulge size.
    Guides in the order given, each one's alignments in genome order."""
    t = search.table
    labels = _chrom_labels(search, chrom_labels)
    start = t.site_start()
    out = [f"##Generated by sandgrain {__version__}\n", CASOFFINDER3_HEADER + "\n"]
    for i, rows in _lines(search, max_listed):
        for r, (crrna, dna, _, _) in zip(rows.tolist(), t.aligned(rows), strict=True):
            out.append(
                f"{search.ids[i]}\t{BULGE_TYPES[t.kind[r]]}\t{crrna}\t{dna}\t"
                f"{labels[t.chrom[r]]}\t{start[r]}\t{'-' if t.minus[r] else '+'}\t"
                f"{t.mismatches[r]}\t{t.size[r]}\n"
            )
    return "".join(out)


def _records(search: BulgeSearch, i: int, rows: np.ndarray, labels: list[str]) -> list[dict]:
    t = search.table
    s0, s1 = t.protospacer_span()
    out = []
    for r, (crrna, dna, proto, pam) in zip(rows.tolist(), t.aligned(rows), strict=True):
        out.append(
            {
                "chrom": labels[t.chrom[r]],
                "start": int(s0[r]) + 1,
                "end": int(s1[r]),
                "strand": "-" if t.minus[r] else "+",
                "bulge_type": BULGE_TYPES[t.kind[r]],
                "bulge_size": int(t.size[r]),
                "bulge_position": int(t.position[r]) if t.kind[r] else None,
                "mismatches": int(t.mismatches[r]),
                "crrna": crrna,
                "dna": dna,
                "sequence": proto,
                "pam": pam,
                "pam_pattern": t.family.pams[int(t.pattern[r])],
            }
        )
    return out


def _tsv_cell(value) -> str:
    return "" if value is None else str(value).replace("\t", " ").replace("\n", " ")


def to_bulges_tsv(
    search: BulgeSearch,
    *,
    max_listed: int | None = None,
    chrom_labels: Mapping[str, str] | None = None,
) -> str:
    """One row per alignment (:data:`BULGE_TSV_COLUMNS`, a header line first): the guide and
    its ID, the protospacer's 1-based inclusive span (bulge included), strand, bulge type, size
    and position (guide bases 5' of the bulge; empty without one), mismatches, the aligned
    crRNA and DNA of Cas-OFFinder 3, the protospacer and PAM as in the genome, the PAM
    pattern."""
    labels = _chrom_labels(search, chrom_labels)
    lines = ["\t".join(BULGE_TSV_COLUMNS) + "\n"]
    for i, rows in _lines(search, max_listed):
        for rec in _records(search, i, rows, labels):
            rec = {**rec, "guide": search.guides[i], "id": search.ids[i]}
            lines.append("\t".join(_tsv_cell(rec[c]) for c in BULGE_TSV_COLUMNS) + "\n")
    return "".join(lines)


def _counts(search: BulgeSearch, i: int, rows: np.ndarray) -> dict[str, list[int]]:
    """Alignments by kind and size (``X``, ``DNA1``, ``DNA2``, ``RNA1`` …), each a list by
    number of mismatches 0…the guide's limit."""
    t = search.table
    k = search.limits[i]
    out = {"X": [0] * (k + 1)}
    for kind, top in ((DNA, search.dna_bulge), (RNA, search.rna_bulge)):
        for b in range(1, top + 1):
            out[f"{BULGE_TYPES[kind]}{b}"] = [0] * (k + 1)
    for kind, b, m in zip(t.kind[rows].tolist(), t.size[rows].tolist(),
                          t.mismatches[rows].tolist(), strict=True):  # fmt: skip
        out["X" if kind == X else f"{BULGE_TYPES[kind]}{b}"][m] += 1
    return out


def bulges_document(
    search: BulgeSearch,
    *,
    max_listed: int | None = None,
    chrom_labels: Mapping[str, str] | None = None,
    command: str = "guides offtargets",
) -> dict:
    """The JSON document of a bulge search: provenance, the genome, nuclease and bulge sizes,
    and per guide (in the order given) its ID, limit, counts by bulge kind, size and mismatches
    (exact), total, whether the listing was cut, and the alignments listed (the TSV's fields)."""
    nuc = search.nuclease
    records = []
    for i, guide in enumerate(search.guides):
        every = search.rows(i)
        listed = search.rows(i, max_listed)
        records.append(
            {
                "sequence": guide,
                "id": search.ids[i],
                "max_mismatches": search.limits[i],
                "offtarget_counts": _counts(search, i, every),
                "offtargets_total": len(every),
                "offtargets_listed_truncated": len(listed) < len(every),
                "offtargets": _records(search, i, listed, _chrom_labels(search, chrom_labels)),
            }
        )
    parameters = {
        "guides": len(search.guides),
        **nuclease_parameters(nuc),
        "max_mismatches": max(search.limits, default=0),
        "guide_mismatches": search.limits if len(set(search.limits)) > 1 else None,
        "dna_bulge": search.dna_bulge,
        "rna_bulge": search.rna_bulge,
        "max_offtargets_listed": max_listed,
        "bulge_convention": "Cas-OFFinder 3.0: one bulge of 1–size bases, not at a guide end",
    }
    return {
        "provenance": provenance(command, parameters, inputs(search.genome, search.index)),
        "genome": search.genome.name,
        "nuclease": nuc.to_dict(),
        "max_mismatches": parameters["max_mismatches"],
        "dna_bulge": search.dna_bulge,
        "rna_bulge": search.rna_bulge,
        "guides": records,
    }


def bulges_json(doc: dict) -> str:
    """:func:`bulges_document` as indented JSON."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"
