"""Trait tables kept in the store: a CSV/TSV of traits and covariates by sample id, stored once
(dataset kind ``traits``) so that analyses run as jobs (the web page's) name it rather than send
it again.

A table is checked as :func:`~sandgrain.association.phenotypes_table.read_table` reads it (a
header, one row per sample, no sample twice) and must have a numeric column besides the ids; its
manifest's ``meta`` lists the columns with their kind — ``binary`` (every value 0 or 1),
``quantitative`` (numeric) or ``text`` — so a form can offer the traits and covariates without
reading the table. The table itself is stored byte for byte (``table.txt``), at most
:data:`MAX_TABLE_BYTES`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from .phenotypes_table import MISSING_VALUES, read_table

__all__ = ["KIND", "MAX_TABLE_BYTES", "import_trait_table", "list_trait_tables", "trait_table"]

KIND = "traits"
FORMAT = "sandgrain.traits"
FORMAT_VERSION = 1
#: Largest trait table accepted (bytes): 1,000,000 samples × a few columns.
MAX_TABLE_BYTES = 64 << 20
#: Most columns a table may have.
MAX_COLUMNS = 1000


def _kind(values: list[str]) -> str:
    """``binary``, ``quantitative`` or ``text`` for one column's values (missing ones aside)."""
    seen = [v for v in values if v.lower() not in MISSING_VALUES]
    if not seen:
        return "text"
    numbers = set()
    for v in seen:
        try:
            numbers.add(float(v))
        except ValueError:
            return "text"
    return "binary" if numbers <= {0.0, 1.0} else "quantitative"


def describe(path: str | Path) -> dict:
    """The ``meta`` of a table: samples, id column, columns with their kind."""
    ids, columns = read_table(path)
    if not ids:
        raise InputError(f"{Path(path).name}: the table has a header but no sample")
    if len(columns) > MAX_COLUMNS:
        raise InputError(f"{Path(path).name}: more than {MAX_COLUMNS} columns")
    header = list(columns)
    lowered = [h.lower() for h in header]
    id_col = header[next((lowered.index(c) for c in ("samples", "sample") if c in lowered), 0)]
    kinds = {h: _kind(v) for h, v in columns.items() if h != id_col}
    if not any(k != "text" for k in kinds.values()):
        raise InputError(f"{Path(path).name}: no numeric column besides the sample ids")
    return {
        "samples": len(ids),
        "id_column": id_col,
        "columns": [{"name": h, "kind": k} for h, k in kinds.items()],
    }


def import_trait_table(
    store, name: str, data: bytes, *, source: str = "upload", replace: bool = False
) -> dict:
    """Check ``data`` (a CSV/TSV) and publish it as trait table ``name``; returns its summary
    (:func:`summary`). Refuses a table over :data:`MAX_TABLE_BYTES` or one that does not parse."""
    from ..provenance import provenance
    from ..storage import check_name, scratch_dir

    check_name(name, "trait table name")
    if len(data) > MAX_TABLE_BYTES:
        raise InputError(f"a trait table is at most {MAX_TABLE_BYTES:,} bytes")
    with scratch_dir("sandgrain-traits-") as tmp:
        path = tmp / "table.txt"
        path.write_bytes(data)
        try:
            meta = describe(path)
        except UnicodeDecodeError:
            raise InputError("the trait table is not UTF-8 text") from None
        with store.new_dataset(
            KIND, name, format=FORMAT, format_version=FORMAT_VERSION, replace=replace
        ) as ds:
            ds.put_file("table.txt", path)
            ds.meta.update(meta)
            ds.provenance = provenance(
                "association traits import",
                {"name": name},
                [{"source": source, "sha256": hashlib.sha256(data).hexdigest()}],
            )
    return summary(store.open_dataset(KIND, name))


def summary(ds) -> dict:
    """What a list or a form shows of a stored table."""
    return {
        "name": ds.name,
        "version": ds.manifest["version"],
        "samples": ds.meta.get("samples"),
        "id_column": ds.meta.get("id_column"),
        "columns": ds.meta.get("columns", []),
        "bytes": ds.manifest["files"]["table.txt"]["size"],
    }


def list_trait_tables(store) -> list[dict]:
    """Every stored trait table's :func:`summary`, by name."""
    out = []
    for name in store.dataset_names(KIND):
        with contextlib.suppress(Exception):  # one removed meanwhile is simply not listed
            out.append(summary(store.open_dataset(KIND, name)))
    return out


@contextlib.contextmanager
def trait_table(store, name: str) -> Iterator[tuple[Path, dict]]:
    """A local copy of trait table ``name`` (removed afterwards) and its input record for
    provenance (name, version, SHA-256)."""
    from ..errors import NotFoundError
    from ..storage import scratch_dir

    try:
        ds = store.open_dataset(KIND, name)
    except NotFoundError:
        known = ", ".join(store.dataset_names(KIND)) or "none yet"
        raise NotFoundError(f"no trait table named {name!r} (known: {known})") from None
    with scratch_dir("sandgrain-traits-") as tmp:
        path = tmp / f"{name}.txt"
        path.write_bytes(ds.read_bytes("table.txt"))
        record = {
            "source": f"traits/{name}",
            "version": ds.manifest["version"],
            "sha256": ds.manifest["files"]["table.txt"]["sha256"],
        }
        yield path, record
