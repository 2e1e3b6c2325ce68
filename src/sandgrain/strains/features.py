"""A collection's mutations as binary features per genome, for other domains (association).

Provided to other domains as the capability ``"strains.mutation-features"``
(:func:`sandgrain.registry.capability`; :data:`sandgrain.strains.domain.DOMAIN`'s ``provides``):
:func:`mutation_features` reads a collection's index (:mod:`sandgrain.strains.index`) and returns
one row per mutation seen in it and one column per genome, each cell a code:

==  ========================================================================================
0   the genome reads the site and does not carry the mutation
1   the genome carries it
3   the genome does not read the site: an N run, a trimmed end, an ambiguity code there, or a
    genome that could not be aligned — *unknown*, never "absent"
==  ========================================================================================

Features (``kinds``): nucleotide ``substitutions`` (``C241T``), ``deletions``
(``del:11288-11296``, one feature per exact deleted range), ``insertions`` (``ins:22204:GAG``,
one per inserted sequence) and, with ``"aa"``, amino-acid changes of the coding sequences
(``S:D614G``, ``ORF1a:S3675-``). The site a genome must read for its cell to be known: the base
of a substitution, every deleted base of a deletion, the two bases around an insertion, the
three bases of a codon.

Each feature also has a VCF-style description (the reference sequence's name as ``chrom``;
``pos``, ``ref``, ``alt`` as a VCF would write the change: a deletion or insertion anchored on
the base before it, an amino-acid change as the codon's first base and the two amino acids) and
its Nextclade label as ``id``, so it can stand where a variant of a VCF stands.

``min_count`` keeps a feature only when at least that many of the chosen genomes carry it *and*
at least that many read the site without carrying it (a minor-count filter: a mutation in two
genomes, or in all genomes, says nothing about a trait). ``statuses`` chooses genomes by QC
status (``good``, ``mediocre``, ``bad``, ``error``: not aligned); by default every aligned
genome, since the QC's private-mutation rule counts differences from the reference and so calls
genomes sampled long after the reference "bad" for their distance alone.

Memory: the codes are one byte a cell (features × genomes) while they are returned; the caller
packs them (the association domain keeps 2 bits a cell).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..errors import InputError
from .collection import Collection
from .index import DEL_BASE, STATUS_CODES, load_partition

__all__ = ["ABSENT", "FEATURE_KINDS", "MISSING", "PRESENT", "MutationFeatures", "mutation_features"]

ABSENT, PRESENT, MISSING = 0, 1, 3
#: The kinds of feature, as ``kinds`` names them.
FEATURE_KINDS = ("substitutions", "deletions", "insertions", "aa")
_BASES = "ACGT"


@dataclass
class MutationFeatures:
    """What :func:`mutation_features` returns (plain types and numpy/Arrow, for any domain).

    ``features`` columns: ``chrom``, ``pos``, ``id``, ``ref``, ``alt`` (VCF-style, module
    docstring), ``kind`` (substitution, deletion, insertion, aa), ``start``, ``end`` (1-based,
    inclusive: the reference bases a genome must read), ``carriers``, ``called`` (genomes that
    read the site). ``codes`` is uint8 (features, genomes) with :data:`ABSENT`, :data:`PRESENT`,
    :data:`MISSING`; ``strains`` names the genomes (columns) and ``metadata`` is their metadata
    rows in that order (``strain`` first, every column as text)."""

    collection: str
    version: str
    strains: list[str]
    features: pa.Table
    codes: np.ndarray
    metadata: pa.Table
    date_column: str | None
    parameters: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    def provenance_input(self) -> dict:
        """The collection as a provenance input record."""
        return {
            "source": f"strains/{self.collection}@{self.version}",
            "collection": self.collection,
            "version": self.version,
        }


def _kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(k.strip() for k in kinds if k.strip()))
    bad = [k for k in out if k not in FEATURE_KINDS]
    if bad or not out:
        raise InputError(
            f"feature kinds are {', '.join(FEATURE_KINDS)}, not {', '.join(bad) or 'nothing'}"
        )
    return out


def mutation_features(
    store,
    collection: str,
    *,
    kinds: Sequence[str] = ("substitutions", "deletions", "insertions"),
    min_count: int = 1,
    statuses: Sequence[str] = ("good", "mediocre", "bad"),
) -> MutationFeatures:
    """The mutations of collection ``collection`` of ``store`` as features × genomes codes.

    Parameters
    ----------
    store
        A :class:`~sandgrain.storage.Store`.
    collection
        The collection's name (its latest version is read).
    kinds
        Which features (:data:`FEATURE_KINDS`).
    min_count
        Fewest carriers, and fewest non-carriers that read the site (module docstring).
    statuses
        QC statuses of the genomes kept (``good``, ``mediocre``, ``bad``, ``error``).

    Raises :class:`~sandgrain.errors.InputError` for unknown kinds or statuses, a ``min_count``
    below 1, or no genome of those statuses; :class:`~sandgrain.errors.NotFoundError` for an
    unknown collection.
    """
    kinds = _kinds(kinds)
    statuses = tuple(dict.fromkeys(statuses))
    unknown = [s for s in statuses if s not in STATUS_CODES]
    if unknown or not statuses:
        raise InputError(
            f"QC statuses are {', '.join(STATUS_CODES)}, not {', '.join(unknown) or 'nothing'}"
        )
    if min_count < 1:
        raise InputError(f"the minimum count is at least 1, not {min_count}")
    coll = Collection.open(store, collection)
    version = coll.dataset.manifest["version"]
    if not coll.parts():
        raise InputError(f"collection {collection!r} has no genomes")
    index = load_partition(coll, coll.parts()).index
    reference = coll.reference()
    chrom = coll.meta["reference"].get("sequence") or "ref"
    length = index.length
    keep = np.isin(index.status, [STATUS_CODES[s] for s in statuses])
    genomes = np.nonzero(keep)[0]
    if not len(genomes):
        raise InputError(
            f"no genome of collection {collection!r} has QC status {' or '.join(statuses)}"
        )
    column_of = np.full(index.n, -1, np.int64)
    column_of[genomes] = np.arange(len(genomes))
    n = len(genomes)

    # -- nucleotide events: (slot, state) pairs, one feature each ------------------------------
    per_genome = np.diff(index.ev_ptr)
    ev_genome = np.repeat(np.arange(index.n), per_genome)
    slot = index.ev_slot.astype(np.int64)
    state = index.ev_state.astype(np.int64)
    is_sub = (slot % 2 == 0) & (state >= 0) & (state < DEL_BASE)
    is_del = (slot % 2 == 0) & (state >= DEL_BASE)
    is_ins = slot % 2 == 1
    wanted = keep[ev_genome] & (
        (is_sub & ("substitutions" in kinds))
        | (is_del & ("deletions" in kinds))
        | (is_ins & ("insertions" in kinds))
    )
    key = np.stack([slot[wanted], state[wanted]], axis=1)
    rows: list[dict] = []
    ev_cols: list[np.ndarray] = []  # per feature: the genome columns that carry it
    if len(key):
        uniq, inverse, carriers = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        cols = column_of[ev_genome[wanted]]
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(uniq)))])
        for f, ((s, st), count) in enumerate(zip(uniq.tolist(), carriers.tolist(), strict=True)):
            if count < min_count:
                continue
            rows.append(_nucleotide_feature(s, st, index.insertions, reference, chrom))
            ev_cols.append(cols[order[bounds[f] : bounds[f + 1]]])

    # -- amino-acid changes ----------------------------------------------------------------------
    if "aa" in kinds and len(index.aa_tok):
        cds = {c["name"]: c["positions"] for c in json.loads(coll.dataset.read_bytes("cds.json"))}
        tok_genome = np.repeat(np.arange(index.n), np.diff(index.aa_ptr))
        sel = keep[tok_genome]
        toks, tok_counts = np.unique(index.aa_tok[sel], return_counts=True)
        tcols = column_of[tok_genome[sel]]
        tids = index.aa_tok[sel]
        order = np.argsort(tids, kind="stable")
        sorted_ids = tids[order]
        for t, count in zip(toks.tolist(), tok_counts.tolist(), strict=True):
            if count < min_count:
                continue
            row = _aa_feature(index.aa[t], cds, chrom)
            if row is None:
                continue
            a, b = np.searchsorted(sorted_ids, [t, t + 1])
            rows.append(row)
            ev_cols.append(tcols[order[a:b]])

    # -- codes: missing where the site is not read, then the carriers ---------------------------
    n_feat = len(rows)
    codes = np.zeros((n_feat, n), dtype=np.uint8)
    if n_feat:
        lo = np.array([r["start"] for r in rows], dtype=np.int64)
        hi = np.array([r["end"] for r in rows], dtype=np.int64)
        _mark_missing(codes, lo, hi, index, genomes)
        for f, cols in enumerate(ev_cols):
            codes[f, cols] = PRESENT
    carriers = (codes == PRESENT).sum(axis=1)
    called = (codes != MISSING).sum(axis=1)
    informative = (carriers >= min_count) & (called - carriers >= min_count)
    rows = [r for r, ok in zip(rows, informative.tolist(), strict=True) if ok]
    codes = codes[informative]
    carriers, called = carriers[informative], called[informative]
    order = sorted(
        range(len(rows)), key=lambda i: (rows[i]["start"], rows[i]["kind"], rows[i]["id"])
    )
    rows = [rows[i] for i in order]
    codes = np.ascontiguousarray(codes[order]) if len(order) else codes
    carriers, called = carriers[order], called[order]
    features = pa.table(
        {
            "chrom": pa.array([r["chrom"] for r in rows], pa.string()),
            "pos": pa.array([r["pos"] for r in rows], pa.int64()),
            "id": pa.array([r["id"] for r in rows], pa.string()),
            "ref": pa.array([r["ref"] for r in rows], pa.string()),
            "alt": pa.array([r["alt"] for r in rows], pa.string()),
            "kind": pa.array([r["kind"] for r in rows], pa.string()),
            "start": pa.array([r["start"] for r in rows], pa.int64()),
            "end": pa.array([r["end"] for r in rows], pa.int64()),
            "carriers": pa.array(carriers.astype(np.int64), pa.int64()),
            "called": pa.array(called.astype(np.int64), pa.int64()),
        }
    )
    strains = [index.strains[g] for g in genomes.tolist()]
    return MutationFeatures(
        collection=coll.name,
        version=version,
        strains=strains,
        features=features,
        codes=codes,
        metadata=_metadata_rows(coll, strains),
        date_column=coll.meta.get("date_column") or "date",
        parameters={"kinds": list(kinds), "min_count": min_count, "statuses": list(statuses)},
        counts={
            "genomes": n,
            "genomes_in_collection": index.n,
            "features": len(rows),
            "reference_length": length,
        },
    )


def _nucleotide_feature(slot: int, state: int, insertions: list[str], ref: str, chrom: str):
    p = slot >> 1
    if slot % 2 == 1:  # an insertion after p
        seq = insertions[-(state + 1)]
        anchor = ref[p - 1] if p >= 1 else ref[0]
        vcf = (p, anchor, anchor + seq) if p >= 1 else (1, anchor, seq + anchor)
        return {
            "chrom": chrom, "pos": vcf[0], "id": f"ins:{p}:{seq}", "ref": vcf[1], "alt": vcf[2],
            "kind": "insertion", "start": max(p, 1), "end": min(p + 1, len(ref)),
        }  # fmt: skip
    if state >= DEL_BASE:
        n = state - DEL_BASE
        b = p + n - 1
        deleted = ref[p - 1 : b]
        # no base before: anchor on the base after, as VCF does at a sequence's start
        vcf = (p - 1, ref[p - 2] + deleted, ref[p - 2]) if p > 1 else (1, deleted + ref[b], ref[b])
        return {
            "chrom": chrom, "pos": vcf[0], "id": f"del:{p}-{b}", "ref": vcf[1], "alt": vcf[2],
            "kind": "deletion", "start": p, "end": b,
        }  # fmt: skip
    base = _BASES[state]
    return {
        "chrom": chrom, "pos": p, "id": f"{ref[p - 1]}{p}{base}", "ref": ref[p - 1], "alt": base,
        "kind": "substitution", "start": p, "end": p,
    }  # fmt: skip


def _aa_feature(token: str, cds: dict, chrom: str) -> dict | None:
    """``S:D614G`` / ``ORF1a:S3675-`` → a feature row (None when its CDS is unknown)."""
    gene, _, change = token.partition(":")
    positions = cds.get(gene)
    digits = "".join(ch for ch in change[1:] if ch.isdigit())
    if positions is None or not digits:
        return None
    codon = int(digits)
    bases = positions[3 * (codon - 1) : 3 * codon]
    if len(bases) < 3:
        return None
    start, end = min(bases) + 1, max(bases) + 1
    ref_aa, alt_aa = change[0], change[1 + len(digits) :] or "-"
    return {
        "chrom": chrom, "pos": start, "id": token, "ref": ref_aa, "alt": alt_aa,
        "kind": "aa", "start": start, "end": end,
    }  # fmt: skip


def _mark_missing(codes: np.ndarray, lo, hi, index, genomes: np.ndarray) -> None:
    """Set :data:`MISSING` where a chosen genome's missing range ``[s, e)`` overlaps a feature's
    site ``[lo, hi]`` (vectorised over all ranges of all genomes)."""
    order = np.argsort(lo, kind="stable")
    lo_s, hi_s = lo[order], hi[order]
    widest = int((hi - lo).max(initial=0))
    counts = np.diff(index.ms_ptr)[genomes]
    first = index.ms_ptr[genomes]
    take = np.repeat(first, counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    col = np.repeat(np.arange(len(genomes)), counts)
    s = index.ms_start[take].astype(np.int64)
    e = index.ms_end[take].astype(np.int64)
    # candidates: features starting in [s − widest, e), then those whose end reaches s
    a = np.searchsorted(lo_s, s - widest, "left")
    b = np.searchsorted(lo_s, e, "left")
    span = np.maximum(b - a, 0)
    if not span.sum():
        return
    rng = np.repeat(a, span) + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    cols = np.repeat(col, span)
    starts = np.repeat(s, span)
    hit = hi_s[rng] >= starts
    codes[order[rng[hit]], cols[hit]] = MISSING


def _metadata_rows(coll: Collection, strains: list[str]) -> pa.Table:
    """The metadata rows of ``strains``, in that order (a genome without a row gets empty text)."""
    meta = coll.metadata()
    where = {s: i for i, s in enumerate(meta["strain"].to_pylist())}
    idx = [where.get(s, -1) for s in strains]
    columns = {}
    for name in meta.column_names:
        values = meta[name].to_pylist()
        blank = [s if name == "strain" else "" for s in strains]
        columns[name] = pa.array(
            [values[i] if i >= 0 else b for i, b in zip(idx, blank, strict=True)], pa.string()
        )
    return pa.table(columns)
