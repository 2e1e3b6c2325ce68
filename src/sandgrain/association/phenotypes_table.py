"""Traits and covariates from a CSV/TSV table, matched to genotype samples by id.

The table has a header line; the sample id column is ``samples``, ``sample`` (any case) or else
the first column; the delimiter is a tab when the header has one, a comma otherwise. Empty
cells, ``NA``, ``NaN`` and ``.`` are missing. A trait whose values are all 0 or 1 is binary;
anything else numeric is quantitative. Samples of the genotypes without a trait or covariate
value (or absent from the table) are dropped and counted in :attr:`Traits.dropped`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["Traits", "load_traits", "read_table"]

MISSING_VALUES = {"", "na", "nan", ".", "n/a", "null", "none"}


class Traits(tuple):
    """``(y, X_cov, cov_names, kept_sample_index)``, with ``.binary`` (the trait is 0/1),
    ``.dropped`` (samples dropped for a missing value or absent from the table) and
    ``.trait``."""

    binary: bool
    dropped: list[str]
    trait: str

    def __new__(cls, y, x_cov, names, kept, *, binary, dropped, trait):
        obj = super().__new__(cls, (y, x_cov, names, kept))
        obj.binary = binary
        obj.dropped = dropped
        obj.trait = trait
        return obj

    @property
    def y(self) -> np.ndarray:
        return self[0]

    @property
    def covariates(self) -> np.ndarray:
        return self[1]

    @property
    def cov_names(self) -> list[str]:
        return self[2]

    @property
    def kept(self) -> np.ndarray:
        return self[3]


def read_table(path: str | os.PathLike) -> tuple[list[str], dict[str, list[str]]]:
    """``(sample ids, {column: text values})`` of a CSV/TSV phenotype table."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        first = fh.readline()
        if not first.strip():
            raise InputError(f"{path.name}: empty phenotype table")
        delimiter = "\t" if "\t" in first else ","
        fh.seek(0)
        rows = list(csv.reader(fh, delimiter=delimiter))
    header = [h.strip() for h in rows[0]]
    lowered = [h.lower() for h in header]
    id_col = next((lowered.index(c) for c in ("samples", "sample") if c in lowered), 0)
    columns: dict[str, list[str]] = {h: [] for h in header}
    ids = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(
                f"{path.name} line {lineno}: {len(row)} fields, the header has {len(header)}"
            )
        ids.append(row[id_col].strip())
        for h, cell in zip(header, row, strict=True):
            columns[h].append(cell.strip())
    seen = set()
    for s in ids:
        if s in seen:
            raise InputError(f"{path.name}: sample {s!r} appears twice")
        seen.add(s)
    return ids, columns


def _numbers(path: Path, name: str, values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v.lower() in MISSING_VALUES:
            out[i] = np.nan
            continue
        try:
            out[i] = float(v)
        except ValueError:
            raise InputError(
                f"{path.name}: column {name!r} has a non-numeric value {v!r} (code categories "
                "as numbers or indicator columns)"
            ) from None
    return out


def load_traits(
    path: str | os.PathLike,
    trait: str,
    covariates: Sequence[str] = (),
    samples: Sequence[str] = (),
) -> Traits:
    """The trait and covariates of the genotype ``samples`` that have them all.

    Returns ``(y, X_cov, cov_names, kept_sample_index)``: ``y`` float64 (n,), ``X_cov`` float64
    (n, c) without an intercept, and ``kept_sample_index`` the positions in ``samples`` of the n
    samples kept, in genotype order (see :class:`Traits` for the extra attributes).
    """
    path = Path(path)
    ids, columns = read_table(path)
    for name in (trait, *covariates):
        if name not in columns:
            raise InputError(
                f"{path.name}: no column {name!r} (columns: {', '.join(list(columns)[:12])})"
            )
    if len(set(covariates)) != len(covariates):
        raise InputError("a covariate is named twice")
    row_of = {s: i for i, s in enumerate(ids)}
    y_all = _numbers(path, trait, columns[trait])
    cov_all = [_numbers(path, c, columns[c]) for c in covariates]
    kept, dropped = [], []
    for j, s in enumerate(samples):
        i = row_of.get(s)
        if i is None or np.isnan(y_all[i]) or any(np.isnan(c[i]) for c in cov_all):
            dropped.append(s)
        else:
            kept.append((j, i))
    if not kept:
        raise InputError(
            f"{path.name}: no genotype sample has a value of {trait!r}"
            + (" and every covariate" if covariates else "")
            + " (are the sample ids the VCF's?)"
        )
    kept_index = np.array([j for j, _ in kept], dtype=np.int64)
    rows = np.array([i for _, i in kept], dtype=np.int64)
    y = y_all[rows]
    x_cov = (
        np.column_stack([c[rows] for c in cov_all])
        if cov_all
        else np.zeros((len(rows), 0), dtype=np.float64)
    )
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    return Traits(
        y, x_cov, list(covariates), kept_index, binary=binary, dropped=dropped, trait=trait
    )
