"""A Beacon dataset's per-sample genotypes as dosages, for analyses run by the store's operator.

The ``"beacon.genotypes"`` capability (:func:`dataset_genotypes`, see
:func:`sandgrain.registry.capability`): the association domain tests variants against traits
on the genotypes of a dataset already ingested (``sandgrain association test --beacon NAME``),
without the VCF it came from.

**Who may read this.** The function reads the store directly, as ``sandgrain beacon ingest``
writes it: it is for the operator who holds the store, on the command line. It bypasses the
Beacon's query tiers and re-identification defences (:mod:`sandgrain.beacon.privacy`) because
it answers nobody over the network, and no HTTP route calls it. What it does keep from the
Beacon's rules is **consent**: individuals revoked with ``sandgrain beacon revoke``
(:mod:`sandgrain.beacon.consent`) are left out, as every Beacon answer leaves them out, and
the number left out is reported.

**What the store holds.** Each variant row of a dataset (one per ALT allele after the
multi-allelic split, in minimal representation; :mod:`sandgrain.beacon.ingest`) keeps the
samples carrying the allele with their copy number (``carrier_idx``, ``carrier_dose``), the
row's usual number of called alleles (``ploidy``) and the samples whose number of called
alleles differs from it (``exc_idx``, ``exc_called``). Dosages follow, with the association
domain's rules (:mod:`sandgrain.association.genotypes`): 0/1/2 copies of the row's allele,
3 for a missing call, one allele of a haploid call counting 2.

One thing the store does not say: a sample with **one** called allele in a diploid row is
either a haploid call (``1``: chrX in a male) or a half-missing one (``./1``); both were stored
as "one allele called". It is read as haploid when the row's usual ploidy is 1, or when that
sample's calls on the chromosome are more often one allele than two (males on chrX, any
sample on chrY or the mitochondrion); otherwise as missing. A VCF read directly tells the two
apart; on data where the rule is wrong (a diploid sample with a few haploid calls on an
otherwise diploid chromosome) the two readings differ for those calls only.

Rows are read a Parquet row group at a time, so a block of variants costs its own rows only;
the chromosome's haploid samples are found in one pass over the (sparse) ``exc`` columns of
that chromosome's partitions the first time a block touches it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InputError, NotFoundError
from ..storage import Store
from .consent import revoked_ids
from .errors import DatasetChangedError
from .ingest import KIND

__all__ = ["MISSING", "BeaconGenotypes", "dataset_genotypes"]

#: The code of a missing call (as :data:`sandgrain.association.genotypes.MISSING`).
MISSING = 3
VARIANT_SCHEMA = pa.schema(
    [
        ("chrom", pa.string()),
        ("pos", pa.int64()),
        ("id", pa.string()),
        ("ref", pa.string()),
        ("alt", pa.string()),
    ]
)
_CALLS = ["ploidy", "carrier_idx", "carrier_dose", "exc_idx", "exc_called"]
_EXC = ["ploidy", "exc_idx", "exc_called"]


def dataset_genotypes(
    store: Store, dataset_id: str, *, include_revoked: bool = False
) -> BeaconGenotypes:
    """The genotypes of Beacon dataset ``dataset_id`` in ``store`` (its current version).

    Returns a :class:`BeaconGenotypes`: ``samples`` (ids, VCF order, revoked individuals left
    out unless ``include_revoked``), ``variants`` (a table chrom, pos, id, ref, alt; one row per
    stored variant row), ``dosages(start, stop)`` (uint8 rows × samples, 0/1/2, 3 = missing),
    ``iter_blocks(size)`` and ``source`` (dataset, version, revoked individuals left out), for
    provenance. Raises :class:`~sandgrain.errors.NotFoundError` for an unknown dataset and
    :class:`~sandgrain.errors.InputError` for one ingested without genotypes (sites only).
    """
    try:
        ds = store.open_dataset(KIND, dataset_id)
    except NotFoundError:
        known = ", ".join(store.dataset_names(KIND)) or "none yet"
        raise NotFoundError(
            f"no Beacon dataset {dataset_id!r} in store {store.url} (known: {known}); "
            "ingest one with `sandgrain beacon ingest`"
        ) from None
    samples = list(ds.meta.get("samples", []))
    if not samples:
        raise InputError(
            f"Beacon dataset {dataset_id!r} has no samples (ingested from a sites-only VCF): "
            "there are no genotypes to test"
        )
    revoked = set() if include_revoked else revoked_ids(store, dataset_id) & set(samples)
    return BeaconGenotypes(ds, samples, revoked)


class BeaconGenotypes:
    """Dosages of one dataset version, read lazily (see :func:`dataset_genotypes`)."""

    def __init__(self, dataset, all_samples: list[str], revoked: set[str]):
        self._ds = dataset
        self._n_all = len(all_samples)
        self._keep = np.array(
            [i for i, s in enumerate(all_samples) if s not in revoked], dtype=np.int64
        )
        self.samples = [all_samples[i] for i in self._keep]
        self._parts = list(dataset.meta.get("partitions", []))
        rows = np.array([p["rows"] for p in self._parts], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(rows)])
        self._haploid: dict[str, np.ndarray] = {}
        self._cached: tuple[tuple[str, int], pa.Table] | None = None
        self._open: tuple[str, pq.ParquetFile] | None = None
        self.variants = self._variant_table()
        self.source = {
            "beacon": dataset.name,
            "version": dataset.manifest["version"],
            "revoked_left_out": len(revoked),
        }

    @property
    def n_variants(self) -> int:
        return int(self._offsets[-1])

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    # -- reading the store -----------------------------------------------------------------
    def _file(self, file: str) -> pq.ParquetFile:
        if self._open is not None and self._open[0] == file:
            return self._open[1]
        try:
            self._open = (file, pq.ParquetFile(self._ds.local_path(file)))
            return self._open[1]
        except (NotFoundError, FileNotFoundError):
            raise DatasetChangedError(
                f"dataset {self._ds.name} was replaced while it was read; run the command again"
            ) from None

    def _variant_table(self) -> pa.Table:
        tables = []
        for p in self._parts:
            t = self._file(p["file"]).read(
                columns=["start0", "ref", "alt", "ids"], use_threads=False
            )
            ids = pc.if_else(pc.equal(t["ids"], ""), ".", t["ids"])
            pos = pc.add(t["start0"], 1)
            chrom = pa.array([p["chrom"]] * t.num_rows, pa.string())
            tables.append(
                pa.Table.from_arrays([chrom, pos, ids, t["ref"], t["alt"]], schema=VARIANT_SCHEMA)
            )
        return pa.concat_tables(tables) if tables else VARIANT_SCHEMA.empty_table()

    def _row_group(self, part: int, group: int) -> pa.Table:
        key = (self._parts[part]["file"], group)
        if self._cached is None or self._cached[0] != key:
            pf = self._file(key[0])
            self._cached = (key, pf.read_row_group(group, columns=_CALLS, use_threads=False))
        return self._cached[1]

    def _haploid_samples(self, chrom: str) -> np.ndarray:
        """Samples whose calls on ``chrom`` are more often one allele than two (module doc)."""
        if chrom in self._haploid:
            return self._haploid[chrom]
        n1 = np.zeros(self._n_all, dtype=np.int64)
        n2 = np.zeros(self._n_all, dtype=np.int64)
        for p in self._parts:
            if p["chrom"] != chrom:
                continue
            for batch in self._file(p["file"]).iter_batches(columns=_EXC, use_threads=False):
                ploidy = batch.column("ploidy").to_numpy(zero_copy_only=False)
                n1 += int((ploidy == 1).sum())
                n2 += int((ploidy == 2).sum())
                rows, idx = _flat(batch.column("exc_idx"))
                _, called = _flat(batch.column("exc_called"))
                usual = ploidy[rows]
                n1 -= np.bincount(idx[usual == 1], minlength=self._n_all)
                n2 -= np.bincount(idx[usual == 2], minlength=self._n_all)
                n1 += np.bincount(idx[called == 1], minlength=self._n_all)
                n2 += np.bincount(idx[called == 2], minlength=self._n_all)
        self._haploid[chrom] = n1 > n2
        return self._haploid[chrom]

    # -- dosages ---------------------------------------------------------------------------
    def dosages(self, start: int, stop: int) -> np.ndarray:
        """Dosages of variant rows ``start:stop``: uint8 (rows, samples), 3 = missing."""
        start, stop = max(0, start), min(stop, self.n_variants)
        if stop <= start:
            return np.zeros((0, self.n_samples), dtype=np.uint8)
        out = np.empty((stop - start, self.n_samples), dtype=np.uint8)
        first = int(np.searchsorted(self._offsets, start, side="right")) - 1
        for part in range(first, len(self._parts)):
            lo = max(start, int(self._offsets[part]))
            hi = min(stop, int(self._offsets[part + 1]))
            if lo >= hi:
                if lo >= stop:
                    break
                continue
            self._fill_partition(part, lo, hi, out[lo - start : hi - start])
        return out

    def _fill_partition(self, part: int, lo: int, hi: int, out: np.ndarray) -> None:
        base = int(self._offsets[part])
        meta = self._file(self._parts[part]["file"]).metadata
        group_start = 0
        for group in range(meta.num_row_groups):
            group_rows = meta.row_group(group).num_rows
            a = max(lo - base, group_start)
            b = min(hi - base, group_start + group_rows)
            if a < b:
                table = self._row_group(part, group).slice(a - group_start, b - a)
                out[a + base - lo : b + base - lo] = self._decode(part, table)
            group_start += group_rows

    def _decode(self, part: int, table: pa.Table) -> np.ndarray:
        """Dosages of a slice of one partition's rows, every sample, then the kept ones."""
        chrom = self._parts[part]["chrom"]
        n = self._n_all
        ploidy = table.column("ploidy").to_numpy(zero_copy_only=False).astype(np.int8)
        called = np.repeat(ploidy[:, None], n, axis=1)
        rows, idx = _flat(table.column("exc_idx"))
        _, n_called = _flat(table.column("exc_called"))
        called[rows, idx] = n_called
        if (called > 2).any():
            r = int(np.nonzero((called > 2).any(axis=1))[0][0])
            raise InputError(
                f"Beacon dataset {self._ds.name}: a call on {chrom} (row {r} of "
                f"{self._parts[part]['file']}) has more than 2 alleles; ploidy above 2 is "
                "not supported"
            )
        code = np.full(called.shape, MISSING, dtype=np.uint8)
        code[called == 2] = 0
        haploid = (called == 1) & ((ploidy == 1)[:, None] | self._haploid_samples(chrom)[None, :])
        code[haploid] = 0
        rows, idx = _flat(table.column("carrier_idx"))
        _, dose = _flat(table.column("carrier_dose"))
        called_here = code[rows, idx] != MISSING  # a carrier of a half-missing call stays missing
        dose = dose.astype(np.uint8) * np.where(haploid[rows, idx], 2, 1).astype(np.uint8)
        code[rows[called_here], idx[called_here]] = dose[called_here]
        return code if self._keep.size == n else code[:, self._keep]

    def iter_blocks(self, size: int = 4096) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, dosages)`` for consecutive blocks of at most ``size`` variant rows."""
        if size < 1:
            raise InputError("a block holds at least one variant")
        for start in range(0, self.n_variants, size):
            yield start, self.dosages(start, start + size)


def _flat(column) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (row of each value, values)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(len(arr)), lengths)
    return rows, arr.flatten().to_numpy(zero_copy_only=False)
