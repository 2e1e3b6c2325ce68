"""K-mer profiles of genomes, computed from their differences to the reference.

A genome's *k-mer profile* counts how often each k-mer (k = 10 by default, as CSIRO's SARS-CoV-2
map used) occurs in its sequence. With 4^10 ≈ 10^6 possible 10-mers and ≈ 30,000 present in a
30-kb genome, profiles are kept sparse: sorted 2-bit k-mer codes and their counts.

Two genomes of one virus differ at a few dozen places, so a genome's profile differs from the
reference's only in the k-mers that overlap its differences. :class:`KmerSpace` therefore keeps
the reference's profile once and computes, per genome, only the **delta**: the reference k-mers
that overlap a difference (removed, count −1 each) and the genome's own k-mers around the
difference (added, +1 each), from windows of at most ``k − 1`` unchanged bases on each side.
A batch of genomes is computed at once with numpy (:meth:`KmerSpace.deltas`), and the result is
exactly the profile of the genome that :func:`genome_from_calls` reconstructs (the tests compare
both on random genomes and on SARS-CoV-2 with synthetic calls).

Conventions
-----------
- **Strand.** K-mers are read on the reference's strand, not canonicalised: consensus genomes of
  an RNA virus come in the reference's orientation, and canonical k-mers would merge a k-mer with
  its reverse complement for nothing. ``canonical=True`` counts canonical k-mers (the smaller of
  a k-mer's code and its reverse complement's) for data of mixed orientation.
- **Missing data.** A k-mer holding any base other than A, C, G, T (``N``, or an IUPAC ambiguity
  code from a mixed site) is dropped, in the reference and the genomes alike. With
  ``missing="drop"`` trimmed ends and N runs (``missing`` ranges) therefore remove the reference
  k-mers they overlap: the exact profile of the sequence as read. With ``missing="reference"``
  (what the map uses) a missing range reads as the reference's bases instead — imputation by the
  root, as the nearest-strain distance never counts missing data as a difference — so a genome
  with an N run keeps its place beside the same genome read in full, where dropping the k-mers
  would pull it away by the run's length (a 200-base run removes 200 reference k-mers: more than
  a lineage's mutations change).
- **Codes.** A k-mer's code is its bases read as base-4 digits, A=0, C=1, G=2, T=3, first base
  most significant; k ≤ 31 fits an unsigned 64-bit integer.

Mutation calls follow the Nextclade conventions of the strains domain (1-based reference
positions): substitutions ``C241T``, deletions ``del:11288-11296`` (inclusive), insertions
``ins:22204:GAGCCAGAA`` (after reference position 22204), missing ranges ``1-54`` (inclusive).
Any object with those list attributes (``substitutions``, ``deletions``, ``insertions``,
``missing``) and a ``strain`` will do, such as :class:`sandgrain.strains.mutations.Calls`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import InputError

__all__ = [
    "DEFAULT_K",
    "Edit",
    "KmerSpace",
    "Profile",
    "ProfileBatch",
    "batches_from_calls",
    "collection_batches",
    "count_kmers",
    "decode_kmers",
    "edits_from_calls",
    "genome_from_calls",
    "kmer_codes",
]

#: CSIRO's k for SARS-CoV-2 (10-mers).
DEFAULT_K = 10
#: The longest k whose codes fit 64 bits.
MAX_K = 31
#: IUPAC nucleotide codes a substitution's alternative base may be (``N`` is missing data).
IUPAC = frozenset("ACGTRYSWKMBDHV")

# byte → 2-bit base code; 4 for anything that is not A, C, G or T (upper or lower case)
_BASE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    _BASE[ord(_b)] = _BASE[ord(_b.lower())] = _i


class CallsLike(Protocol):
    """What the k-mer code reads of a genome's calls (see the module docstring)."""

    strain: str
    substitutions: Sequence[str]
    deletions: Sequence[str]
    insertions: Sequence[str]
    missing: Sequence[str]


# -- calls → edits → genome -------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Edit:
    """Reference bases ``[start, end)`` (0-based) replaced by ``replacement`` in the genome.

    A substitution replaces one base, a deletion replaces a range by ``""``, an insertion after
    1-based position ``p`` is the empty range ``[p, p)`` replaced by the inserted bases, and a
    missing range is replaced by as many ``N``.
    """

    start: int
    end: int
    replacement: str
    kind: str = ""


def _range(text: str, what: str, length: int) -> tuple[int, int]:
    """An inclusive 1-based ``a-b`` (or ``a``) range as 0-based half-open, checked."""
    a, sep, b = text.partition("-")
    try:
        first, last = int(a), int(b) if sep else int(a)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a range like 1-54") from None
    if not 1 <= first <= last <= length:
        raise InputError(f"{what} {text!r} is outside the reference (1-{length})")
    return first - 1, last


def edits_from_calls(reference: str, calls: CallsLike) -> list[Edit]:
    """The genome's differences as sorted, non-overlapping :class:`Edit` s.

    Raises
    ------
    InputError
        When a call does not parse, names a reference base the reference does not have, lies
        outside it, or overlaps another call (two calls for one base, an insertion twice at one
        place).
    """
    length = len(reference)
    edits: list[Edit] = []
    for sub in calls.substitutions:
        ref, alt = sub[:1].upper(), sub[-1:].upper()
        try:
            pos = int(sub[1:-1])
        except ValueError:
            raise InputError(f"substitution {sub!r} is not like C241T") from None
        if not 1 <= pos <= length:
            raise InputError(f"substitution {sub!r} is outside the reference (1-{length})")
        if reference[pos - 1].upper() != ref:
            raise InputError(
                f"substitution {sub!r}: the reference has {reference[pos - 1]} at {pos}, not {ref}"
            )
        if alt not in IUPAC or alt == ref:
            raise InputError(f"substitution {sub!r}: {alt!r} is not another base or IUPAC code")
        edits.append(Edit(pos - 1, pos, alt, "sub"))
    for item in calls.deletions:
        if not item.startswith("del:"):
            raise InputError(f"deletion {item!r} is not like del:11288-11296")
        start, end = _range(item[4:], "deletion", length)
        edits.append(Edit(start, end, "", "del"))
    for item in calls.insertions:
        head, _, bases = item.rpartition(":")
        tag, _, pos = head.partition(":")
        if tag != "ins" or not pos.isdigit() or not bases:
            raise InputError(f"insertion {item!r} is not like ins:22204:GAGCCAGAA")
        if not 0 <= int(pos) <= length:
            raise InputError(f"insertion {item!r} is outside the reference (0-{length})")
        if not set(bases.upper()) <= IUPAC | {"N"}:
            raise InputError(f"insertion {item!r} holds letters that are not bases")
        edits.append(Edit(int(pos), int(pos), bases.upper(), "ins"))
    for item in calls.missing:
        start, end = _range(item, "missing range", length)
        edits.append(Edit(start, end, "N" * (end - start), "missing"))
    edits.sort(key=lambda e: (e.start, e.end))
    for prev, cur in zip(edits, edits[1:], strict=False):
        if cur.start < prev.end or (cur.start == prev.start and cur.end == prev.end):
            raise InputError(
                f"{getattr(calls, 'strain', 'a genome')}: the calls overlap at reference "
                f"position {cur.start + 1} ({prev.kind} and {cur.kind})"
            )
    return edits


def _apply(reference: str, edits: Sequence[Edit]) -> str:
    parts, at = [], 0
    for e in edits:
        parts.append(reference[at : e.start])
        parts.append(e.replacement)
        at = e.end
    parts.append(reference[at:])
    return "".join(parts)


def genome_from_calls(reference: str, calls: CallsLike) -> str:
    """The genome the calls describe: the reference with its substitutions, deletions and
    insertions applied and every missing range (trimmed ends included) written as ``N``.

    >>> from types import SimpleNamespace as Calls
    >>> genome_from_calls("ACGTACGTAC", Calls(strain="x", substitutions=["G3T"],
    ...     deletions=["del:5-6"], insertions=["ins:8:GG"], missing=["10-10"]))
    'ACTTGTGGAN'
    """
    return _apply(reference, edits_from_calls(reference, calls))


# -- k-mers ---------------------------------------------------------------------------------------


def _check_k(k: int) -> int:
    if not isinstance(k, int | np.integer) or not 1 <= k <= MAX_K:
        raise InputError(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
    return int(k)


def kmer_codes(
    seq: str | bytes, k: int = DEFAULT_K, canonical: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Codes of every k-mer of ``seq`` without a non-ACGT base, and where each starts.

    Returns ``(codes, starts)``: ``uint64`` codes (see the module docstring) and the 0-based
    start of each k-mer in ``seq``, in order.
    """
    k = _check_k(k)
    raw = seq.encode("ascii") if isinstance(seq, str) else bytes(seq)
    n = len(raw) - k + 1
    if n <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    base = _BASE[np.frombuffer(raw, dtype=np.uint8)]
    bad = np.concatenate(([0], np.cumsum(base == 4, dtype=np.int64)))
    valid = bad[k:] == bad[:-k]
    b = base.astype(np.uint64) & np.uint64(3)
    codes = np.zeros(n, np.uint64)
    for j in range(k):
        codes <<= np.uint64(2)
        codes |= b[j : j + n]
    if canonical:
        rc = np.zeros(n, np.uint64)
        for j in range(k - 1, -1, -1):  # the complement of base j is digit j of the reverse
            rc <<= np.uint64(2)
            rc |= np.uint64(3) - b[j : j + n]
        codes = np.minimum(codes, rc)
    starts = np.flatnonzero(valid)
    return codes[starts], starts


@dataclass(frozen=True)
class Profile:
    """A sparse k-mer profile: sorted unique ``codes`` and their ``counts`` (a delta's counts
    may be negative; a zero count is never stored)."""

    codes: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    def as_dict(self) -> dict[int, int]:
        return dict(zip(self.codes.tolist(), self.counts.tolist(), strict=True))

    def l1(self) -> int:
        """Sum of the absolute counts (of a delta: the k-mer count distance to the base)."""
        return int(np.abs(self.counts).sum())

    def __add__(self, other: Profile) -> Profile:
        return _sum_sparse(
            np.concatenate((self.codes, other.codes)),
            np.concatenate((self.counts, other.counts)),
        )

    def __sub__(self, other: Profile) -> Profile:
        return self + Profile(other.codes, -other.counts)


def _sum_sparse(codes: np.ndarray, counts: np.ndarray) -> Profile:
    order = np.argsort(codes, kind="stable")
    codes, counts = codes[order], counts[order].astype(np.int64)
    if len(codes) == 0:
        return Profile(codes.astype(np.uint64), counts.astype(np.int32))
    first = np.concatenate(([True], codes[1:] != codes[:-1]))
    idx = np.flatnonzero(first)
    summed = np.add.reduceat(counts, idx)
    keep = summed != 0
    return Profile(codes[idx][keep], summed[keep].astype(np.int32))


def count_kmers(seq: str | bytes, k: int = DEFAULT_K, canonical: bool = False) -> Profile:
    """The k-mer profile of a whole sequence, counted directly (k-mers with non-ACGT dropped)."""
    codes, _ = kmer_codes(seq, k, canonical)
    return _sum_sparse(codes, np.ones(len(codes), np.int64))


def decode_kmers(codes: np.ndarray, k: int = DEFAULT_K) -> list[str]:
    """The k-mers (strings) of ``codes``."""
    k = _check_k(k)
    codes = np.asarray(codes, dtype=np.uint64)
    digits = np.zeros((len(codes), k), np.uint8)
    rest = codes.copy()
    for j in range(k - 1, -1, -1):
        digits[:, j] = (rest & np.uint64(3)).astype(np.uint8)
        rest >>= np.uint64(2)
    letters = np.frombuffer(b"ACGT", np.uint8)[digits]
    return [row.tobytes().decode() for row in letters]


# -- batches of deltas ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileBatch:
    """The k-mer deltas of several genomes against one base profile, as CSR rows.

    Row ``i`` (strain ``strains[i]``) holds ``codes[indptr[i]:indptr[i+1]]`` (sorted, unique)
    with ``counts`` (non-zero, signed): the genome's profile minus the base's. ``base`` names
    the base profile (:attr:`KmerSpace.fingerprint`), so deltas of different bases are never
    mixed.
    """

    strains: list[str]
    indptr: np.ndarray
    codes: np.ndarray
    counts: np.ndarray
    base: str

    def __len__(self) -> int:
        return len(self.strains)

    def row(self, i: int) -> Profile:
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        return Profile(self.codes[a:b], self.counts[a:b])

    def l1(self) -> np.ndarray:
        """Per row, the sum of absolute counts: the k-mer count (L1, "Hamming" for 0/1 counts)
        distance of each genome to the base profile."""
        rows = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        sums = np.bincount(
            rows, weights=np.abs(self.counts.astype(np.float64)), minlength=len(self)
        )
        return sums.astype(np.int64)

    def take(self, rows: Sequence[int] | np.ndarray) -> ProfileBatch:
        """The batch of the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = np.diff(self.indptr)[rows]
        indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        idx = _ranges(self.indptr[rows], self.indptr[rows] + lengths)
        return ProfileBatch(
            [self.strains[i] for i in rows], indptr, self.codes[idx], self.counts[idx], self.base
        )

    @classmethod
    def concat(cls, batches: Sequence[ProfileBatch]) -> ProfileBatch:
        if not batches:
            raise InputError("no profiles to put together")
        bases = {b.base for b in batches}
        if len(bases) > 1:
            raise InputError("profiles against different reference profiles cannot be mixed")
        offsets = np.cumsum([0] + [len(b.codes) for b in batches])
        indptr = np.concatenate(
            [[0]] + [b.indptr[1:] + off for b, off in zip(batches, offsets, strict=False)]
        ).astype(np.int64)
        return cls(
            [s for b in batches for s in b.strains],
            indptr,
            np.concatenate([b.codes for b in batches]).astype(np.uint64),
            np.concatenate([b.counts for b in batches]).astype(np.int32),
            batches[0].base,
        )

    @classmethod
    def from_profiles(
        cls, items: Iterable[tuple[str, Profile]], base: Profile, base_name: str
    ) -> ProfileBatch:
        """A batch from whole profiles (the abstract input): each minus ``base``."""
        strains, rows = [], []
        for strain, profile in items:
            strains.append(strain)
            rows.append(profile - base)
        indptr = np.concatenate(([0], np.cumsum([len(r) for r in rows]))).astype(np.int64)
        codes = np.concatenate([r.codes for r in rows]) if rows else np.zeros(0, np.uint64)
        counts = np.concatenate([r.counts for r in rows]) if rows else np.zeros(0, np.int32)
        return cls(strains, indptr, codes.astype(np.uint64), counts.astype(np.int32), base_name)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, e)`` for each pair, without a Python loop."""
    starts = np.asarray(starts, np.int64)
    lengths = np.maximum(np.asarray(ends, np.int64) - starts, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + offsets


#: How a k-mer space reads missing ranges (module docstring).
MISSING = ("drop", "reference")


class KmerSpace:
    """The k-mer profile of a reference, and the deltas of genomes called against it.

    Parameters
    ----------
    reference : str
        The reference sequence the calls' coordinates refer to.
    k : int
        K-mer length (10, as CSIRO; at most 31).
    canonical : bool
        Count canonical k-mers (see the module docstring); default the reference's strand.
    missing : str
        ``"drop"`` (the profile of the sequence as read) or ``"reference"`` (missing ranges read
        as the reference; see the module docstring).
    """

    def __init__(
        self, reference: str, k: int = DEFAULT_K, canonical: bool = False, missing: str = "drop"
    ):
        if missing not in MISSING:
            raise InputError(f"missing data is one of {', '.join(MISSING)}, not {missing!r}")
        self.missing = missing
        self.k = _check_k(k)
        if len(reference) < self.k:
            raise InputError(f"the reference ({len(reference)} bases) is shorter than k={k}")
        self.reference = reference.upper()
        self.canonical = bool(canonical)
        codes, starts = kmer_codes(self.reference, self.k, self.canonical)
        self.profile = _sum_sparse(codes, np.ones(len(codes), np.int64))
        # the code of the k-mer starting at each reference position; -1 marks a dropped k-mer
        n = len(self.reference) - self.k + 1
        self._start_code = np.zeros(n, np.uint64)
        self._start_valid = np.zeros(n, bool)
        self._start_code[starts] = codes
        self._start_valid[starts] = True
        digest = hashlib.sha256(self.reference.encode()).hexdigest()
        self.reference_sha256 = digest
        #: Names the base profile: reference, k and strand convention.
        self.fingerprint = f"sha256:{digest[:16]}/k{self.k}/{'canonical' if canonical else 'fwd'}"

    def describe(self) -> dict[str, Any]:
        """Provenance of the base profile."""
        return {
            "k": self.k,
            "canonical": self.canonical,
            "reference_length": len(self.reference),
            "reference_sha256": self.reference_sha256,
            "reference_kmers": int(self.profile.counts.sum()),
            "reference_distinct_kmers": len(self.profile),
            "missing": self.missing,
        }

    def _windows(self, edits: Sequence[Edit]) -> tuple[list[tuple[int, int]], list[str]]:
        """The reference k-mer start ranges a genome's edits disturb, and the genome's windows
        around them (see the module docstring). Edits closer than k bases form one cluster."""
        k, ref, n_starts = self.k, self.reference, len(self._start_code)
        removed: list[tuple[int, int]] = []
        windows: list[str] = []
        i = 0
        while i < len(edits):
            j = i + 1
            while j < len(edits) and edits[j].start - edits[j - 1].end < k:
                j += 1
            a, b = edits[i].start, edits[j - 1].end
            lo, hi = max(a - k + 1, 0), min(b, n_starts)  # disturbed starts: [a-k+1, b-1]
            if lo < hi:
                removed.append((lo, hi))
            parts = [ref[max(a - k + 1, 0) : a]]
            at = a
            for e in edits[i:j]:
                parts.append(ref[at : e.start])
                # one N stands for a whole missing run: no k-mer holding it is counted anyway
                parts.append("N" if e.kind == "missing" else e.replacement)
                at = e.end
            parts.append(ref[b : b + k - 1])
            windows.append("".join(parts))
            i = j
        return removed, windows

    def deltas(self, calls: Iterable[CallsLike]) -> ProfileBatch:
        """The deltas of a batch of genomes (one vectorised pass over all their windows)."""
        strains: list[str] = []
        rem_lo: list[int] = []
        rem_hi: list[int] = []
        rem_row: list[int] = []
        texts: list[str] = []
        text_row: list[int] = []
        for row, c in enumerate(calls):
            strains.append(str(c.strain))
            edits = edits_from_calls(self.reference, c)
            if self.missing == "reference":
                edits = [e for e in edits if e.kind != "missing"]
            removed, windows = self._windows(edits)
            for lo, hi in removed:
                rem_lo.append(lo)
                rem_hi.append(hi)
                rem_row.append(row)
            texts.extend(windows)
            text_row.extend([row] * len(windows))
        # removed reference k-mers
        idx = _ranges(np.array(rem_lo, np.int64), np.array(rem_hi, np.int64))
        lengths = np.array(rem_hi, np.int64) - np.array(rem_lo, np.int64)
        r_rows = np.repeat(np.array(rem_row, np.int64), lengths)
        keep = self._start_valid[idx]
        r_codes, r_rows = self._start_code[idx[keep]], r_rows[keep]
        # added genome k-mers: all windows joined by N (no k-mer crosses from one to the next)
        joined = "N".join(texts)
        a_codes, a_starts = kmer_codes(joined, self.k, self.canonical)
        offsets = np.cumsum([0] + [len(t) + 1 for t in texts])[:-1]
        a_rows = np.array(text_row, np.int64)[np.searchsorted(offsets, a_starts, "right") - 1]
        return _to_batch(
            strains,
            np.concatenate((r_rows, a_rows)),
            np.concatenate((r_codes, a_codes)),
            np.concatenate((np.full(len(r_codes), -1, np.int64), np.ones(len(a_codes), np.int64))),
            self.fingerprint,
            self.k,
        )

    def delta(self, calls: CallsLike) -> Profile:
        """One genome's delta: its profile minus the reference's."""
        return self.deltas([calls]).row(0)

    def genome_profile(self, calls: CallsLike) -> Profile:
        """One genome's whole profile, from the reference's and the genome's delta."""
        return self.profile + self.delta(calls)


def _to_batch(
    strains: list[str],
    rows: np.ndarray,
    codes: np.ndarray,
    counts: np.ndarray,
    base: str,
    k: int = MAX_K,
) -> ProfileBatch:
    """Sum the (row, code) pairs, drop zeros, and lay them out as CSR rows."""
    if 2 * k + max(len(strains), 1).bit_length() <= 64:
        # one sort of a combined key (row in the high bits) is several times faster than
        # lexsort over two arrays; k = 10 leaves 44 bits for the row
        key = (rows.astype(np.uint64) << np.uint64(2 * k)) | codes
        order = np.argsort(key)
    else:
        order = np.lexsort((codes, rows))
    rows, codes, counts = rows[order], codes[order], counts[order]
    if len(rows):
        first = np.concatenate(([True], (rows[1:] != rows[:-1]) | (codes[1:] != codes[:-1])))
        idx = np.flatnonzero(first)
        summed = np.add.reduceat(counts, idx)
        keep = summed != 0
        rows, codes, counts = rows[idx][keep], codes[idx][keep], summed[keep]
    indptr = np.searchsorted(rows, np.arange(len(strains) + 1), "left").astype(np.int64)
    return ProfileBatch(strains, indptr, codes.astype(np.uint64), counts.astype(np.int32), base)


def batches_from_calls(
    calls: Iterable[Sequence[CallsLike]], space: KmerSpace
) -> Iterator[ProfileBatch]:
    """Deltas of each batch of calls (an iterator of lists, as ``Collection.iter_calls``)."""
    for batch in calls:
        if len(batch):
            yield space.deltas(batch)


def collection_batches(
    collection: Any, space: KmerSpace, batch: int = 2000
) -> Iterator[ProfileBatch]:
    """The adapter to a strains collection: the deltas of every genome of ``collection``
    (``Collection.iter_calls(batch=…)``), a batch at a time."""
    return batches_from_calls(collection.iter_calls(batch=batch), space)
