"""Dynamic consent: revoke a participant from every answer at once, and restore them.

Revocations of a dataset live beside it in its store, as one JSON object
(``beacon-consent/<dataset>.json``) written atomically; every query reads it, so a revocation
applies to the next query of every server using that store — counts, frequencies and records
are computed without the revoked individuals (see :mod:`sandgrain.beacon.query`). The dataset
itself is never rewritten, so ``restore`` is immediate too.
"""

from __future__ import annotations

from ..errors import InputError, NotFoundError
from ..provenance import utc_now
from ..storage import Store, check_name
from .ingest import KIND


def _key(dataset_id: str) -> str:
    return f"beacon-consent/{check_name(dataset_id, 'dataset id')}.json"


def revoked(store: Store, dataset_id: str) -> dict[str, dict]:
    """Individual id → {time, by, reason} of every revoked participant of a dataset."""
    try:
        return dict(store.read_json(_key(dataset_id)).get("revoked", {}))
    except NotFoundError:
        return {}


def _check(store: Store, dataset_id: str, individual_id: str) -> None:
    ds = store.open_dataset(KIND, dataset_id)
    if individual_id not in ds.meta.get("samples", []):
        raise NotFoundError(f"dataset {dataset_id!r} has no individual {individual_id!r}")


def revoke(
    store: Store, dataset_id: str, individual_id: str, *, by: str = "", reason: str = ""
) -> dict:
    """Remove one individual from every answer of ``dataset_id``; returns the revocation."""
    if not individual_id.strip():
        raise InputError("the individual id is empty")
    _check(store, dataset_id, individual_id)
    current = revoked(store, dataset_id)
    entry = current.get(individual_id) or {"time": utc_now(), "by": by, "reason": reason}
    current[individual_id] = entry
    store.write_json(_key(dataset_id), {"dataset": dataset_id, "revoked": current})
    return entry


def restore(store: Store, dataset_id: str, individual_id: str) -> bool:
    """Bring a revoked individual back; returns False if they were not revoked."""
    _check(store, dataset_id, individual_id)
    current = revoked(store, dataset_id)
    if individual_id not in current:
        return False
    del current[individual_id]
    store.write_json(_key(dataset_id), {"dataset": dataset_id, "revoked": current})
    return True
