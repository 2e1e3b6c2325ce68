"""Genotypes of a Beacon dataset already in the store, as a :class:`~.genotypes.GenotypeMatrix`.

The Beacon domain offers a dataset's per-sample dosages through the ``"beacon.genotypes"``
capability (:mod:`sandgrain.beacon.genotypes_export`, which states how dosages are read from
what the Beacon stores); this module wraps them so the tests and the forest read them as they
read any genotypes, a block of variants at a time. It reads the operator's own store, like
``sandgrain beacon ingest``: no HTTP route leads here. Individuals whose consent was revoked
are left out.
"""

from __future__ import annotations

import numpy as np

from ..registry import capability
from .genotypes import GenotypeMatrix, pack

__all__ = ["BeaconMatrix", "open_beacon"]


class BeaconMatrix(GenotypeMatrix):
    """A Beacon dataset's genotypes, decoded from the store when a block is asked for."""

    def __init__(self, reader):
        super().__init__(reader.samples, reader.variants)
        self._reader = reader
        self.source = dict(reader.source)

    def dosages(self, start: int, stop: int) -> np.ndarray:
        return self._reader.dosages(start, stop)

    def packed(self, start: int, stop: int) -> np.ndarray:
        return pack(self.dosages(start, stop)).reshape(-1, self.row_bytes)


def open_beacon(store, dataset: str) -> BeaconMatrix:
    """The genotypes of Beacon dataset ``dataset`` (current version; revoked individuals out)."""
    return BeaconMatrix(capability("beacon.genotypes")(store, dataset))
