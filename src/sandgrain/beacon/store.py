"""The Beacon's datasets, from one store or several (federation), with per-version caches.

A :class:`BeaconCatalog` lists the datasets of kind ``beacon`` in each of its stores — e.g. the
local store and an S3 bucket of another account — and answers queries from all of them; result
sets are per dataset, so merging is concatenation. A dataset id must be unique across stores:
if two stores hold the same id, the first store listed wins and the clash is logged.

Datasets are immutable versions, so their manifest, individuals and Parquet partitions are
cached by version; the listing is refreshed after ``ttl`` seconds, so a re-ingest (which
publishes a new version atomically) is seen without restarting the server. Consent revocations
are re-read on every query (see :mod:`sandgrain.beacon.consent`). Decoded partitions are kept
in a least-recently-used cache of at most ``SANDGRAIN_BEACON_CACHE_MB`` (1,024 by default).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError, NotFoundError
from ..genome.chromosomes import ChromosomeNames
from ..storage import Dataset, Store
from .errors import DatasetChangedError
from .ingest import KIND
from .settings import DEFAULT_CACHE_MB

logger = logging.getLogger(__name__)

#: Columns every query reads (the genotype lists are read only when a subset of individuals
#: — filters, revoked consent, one individual — or record-level carriers are needed).
LIGHT = [
    "start0", "end0", "ref", "alt", "vid", "vtype", "ids", "ac", "an", "carriers", "hom",
    "genes", "effects", "aa",
]  # fmt: skip
HEAVY = ["ploidy", "carrier_idx", "carrier_dose", "exc_idx", "exc_called"]


def federated_stores(main: Store, text: str) -> list[Store]:
    """The stores a Beacon answers from: the main store, then those ``text`` names (the
    ``SANDGRAIN_BEACON_STORES`` setting, :class:`~sandgrain.beacon.settings.BeaconSettings`).

    ``text`` is a comma-separated list of store URLs, or a JSON list of
    ``{"url": "s3://bucket/prefix", "storage_options": {"endpoint_url": …, "key": …, "secret": …}}``
    (the fsspec/s3fs options of each store; another account's bucket gets its own keys).
    """
    text = text.strip()
    stores = [main]
    if not text:
        return stores
    if text.startswith("["):
        try:
            specs = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"SANDGRAIN_BEACON_STORES is not valid JSON ({exc.msg})") from None
    else:
        specs = [{"url": u.strip()} for u in text.split(",") if u.strip()]
    for spec in specs:
        if not isinstance(spec, dict) or not spec.get("url"):
            raise InputError("each entry of SANDGRAIN_BEACON_STORES needs a url")
        stores.append(Store(spec["url"], spec.get("storage_options")))
    return stores


@dataclass
class Partition:
    file: str
    table: pa.Table  # LIGHT columns
    start0: np.ndarray
    end0: np.ndarray
    heavy: pa.Table | None = None

    @property
    def nbytes(self) -> int:
        return self.table.nbytes + (self.heavy.nbytes if self.heavy is not None else 0)


@dataclass
class BeaconDataset:
    """One ingested dataset (one version of it)."""

    dataset: Dataset
    catalog: BeaconCatalog = field(repr=False)

    @property
    def id(self) -> str:
        return self.dataset.name

    @property
    def meta(self) -> dict:
        return self.dataset.meta

    @property
    def store(self) -> Store:
        return self.dataset.store

    @property
    def version(self) -> str:
        return self.dataset.manifest["version"]

    @property
    def access(self) -> str:
        return self.meta.get("access", "public")

    @property
    def assembly(self) -> str:
        return self.meta.get("assembly", "")

    @property
    def samples(self) -> list[str]:
        return self.meta.get("samples", [])

    @cached_property
    def sample_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.samples)}

    @cached_property
    def individuals(self) -> list[dict]:
        try:
            return json.loads(self.dataset.read_bytes("individuals.json"))
        except (NotFoundError, FileNotFoundError):
            raise DatasetChangedError(
                f"dataset {self.id} was replaced while it was read; ask again"
            ) from None

    @cached_property
    def chromosome_names(self) -> ChromosomeNames:
        """The dataset's chromosome names, resolved as the genome domain resolves them (``chr``
        prefix, mitochondrion spellings, and the accessions of the dataset's assembly)."""
        return ChromosomeNames(
            self.meta.get("chromosomes", []), genome=self.id, assembly=self.assembly
        )

    def resolve_chrom(self, name: str) -> str | None:
        """The dataset's own name for chromosome ``name``; None when it has no such chromosome."""
        return self.chromosome_names.get(name)

    def partitions_for(self, chrom: str | None, start0: int = 0, end0: int | None = None):
        """The partitions holding variants that may overlap ``[start0, end0)`` (all when
        ``chrom`` is None), in genomic order."""
        out = []
        for p in self.meta.get("partitions", []):
            if chrom is not None and p["chrom"] != chrom:
                continue
            if end0 is not None and p["min_start0"] >= end0:
                continue
            if p["max_end0"] <= start0:
                continue
            out.append(p)
        return out

    def partition(self, file: str, heavy: bool = False) -> Partition:
        return self.catalog._partition(self, file, heavy)

    def summary(self) -> dict:
        m = self.meta
        return {
            "id": self.id,
            "name": m.get("name", self.id),
            "description": m.get("description", ""),
            "assembly": self.assembly,
            "access": self.access,
            "n_variants": m.get("n_variants", 0),
            "n_individuals": m.get("n_individuals", 0),
            "created": self.dataset.manifest.get("created"),
            "updated": self.dataset.manifest.get("created"),
            "version": self.version,
            "provenance": self.dataset.manifest.get("provenance", {}),
            "store": self.store.url,
        }


class BeaconCatalog:
    """The datasets of one or more stores (see the module docstring)."""

    def __init__(self, stores: list[Store], *, ttl: float = 2.0, cache_bytes: int | None = None):
        if not stores:
            raise InputError("a Beacon needs at least one store")
        self.stores = stores
        self.ttl = ttl
        self.cache_bytes = DEFAULT_CACHE_MB << 20 if cache_bytes is None else cache_bytes
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self._listed_at = -1e18
        self._datasets: dict[str, BeaconDataset] = {}
        self._parts: OrderedDict[tuple, Partition] = OrderedDict()

    def refresh(self) -> None:
        found: dict[str, BeaconDataset] = {}
        for store in self.stores:
            for name in store.dataset_names(KIND):
                if name in found:
                    logger.warning(
                        "dataset %r is in %s and in %s; answering from the first",
                        name, found[name].store.url, store.url,
                    )  # fmt: skip
                    continue
                old = self._datasets.get(name)
                try:
                    ds = store.open_dataset(KIND, name)
                except NotFoundError:  # removed meanwhile
                    continue
                if old is not None and old.version == ds.manifest["version"]:
                    found[name] = old
                else:
                    found[name] = BeaconDataset(ds, self)
        with self._lock:
            self._datasets = found
            self._listed_at = time.monotonic()

    def datasets(self) -> list[BeaconDataset]:
        if time.monotonic() - self._listed_at > self.ttl:
            self.refresh()
        return list(self._datasets.values())

    def get(self, dataset_id: str) -> BeaconDataset:
        for ds in self.datasets():
            if ds.id == dataset_id:
                return ds
        raise NotFoundError(f"no dataset {dataset_id!r}")

    def _partition(self, ds: BeaconDataset, file: str, heavy: bool) -> Partition:
        key = (ds.store.url, ds.id, ds.version, file)
        with self._lock:
            part = self._parts.get(key)
            if part is not None:
                self._parts.move_to_end(key)
                if not heavy or part.heavy is not None:
                    return part
        if part is None:
            table = _read(ds, file, LIGHT)
            part = Partition(
                file, table, table.column("start0").to_numpy(), table.column("end0").to_numpy()
            )
        else:  # cached without its genotype columns: a new entry with them
            part = Partition(file, part.table, part.start0, part.end0)
        if heavy:
            part.heavy = _read(ds, file, HEAVY)
        with self._lock:
            old = self._parts.pop(key, None)
            if old is not None:
                self._cached_bytes -= old.nbytes
            self._parts[key] = part
            self._cached_bytes += part.nbytes
            while self._cached_bytes > self.cache_bytes and len(self._parts) > 1:
                _, dropped = self._parts.popitem(last=False)
                self._cached_bytes -= dropped.nbytes
        return part


def _read(ds: BeaconDataset, file: str, columns: list[str]) -> pa.Table:
    key = ds.dataset.key(file)
    store = ds.store
    try:
        if store.is_local:
            return pq.read_table(store.path(key), columns=columns, use_threads=False)
        with store._errors(key), store.fs.open(store.path(key), "rb") as fh:
            return pq.read_table(fh, columns=columns, use_threads=False)
    except (NotFoundError, FileNotFoundError):
        # a re-ingest published a new version and removed this one
        raise DatasetChangedError(
            f"dataset {ds.id} was replaced while it was read; ask again"
        ) from None
