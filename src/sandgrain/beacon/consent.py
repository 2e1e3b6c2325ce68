"""Dynamic consent: revoke a participant from every answer at once, and restore them.

Revocations of a dataset live beside it in its store, one small JSON object per revoked
participant (``beacon-consent/<dataset>/<id>.json``, the id base64url-encoded so any sample name
is a safe key), each written atomically. Two admins revoking two people at the same moment
therefore never overwrite each other (a single shared object, read-modified-written, could lose
one revocation). Every query lists the folder — one LIST request, the ids come from the keys —
so a revocation applies to the next query of every server using that store: counts, frequencies
and records are computed without the revoked individuals (see :mod:`sandgrain.beacon.query`).
The dataset itself is never rewritten, so ``restore`` (deleting the object) is immediate too.

Consent stays with the data rather than in the metadata database (:mod:`sandgrain.db`): stores
are shared between Beacons (federation) and read by fan-out workers that need not share one
database, and a dataset copied to another store keeps its revocations. The database's audit log
records who revoked or restored whom, and when.
"""

from __future__ import annotations

import base64
import binascii

from ..errors import InputError, NotFoundError
from ..provenance import utc_now
from ..storage import Store, check_name
from .ingest import KIND

#: The single object earlier versions kept per dataset; read, and folded into per-person
#: objects on the next change.
_LEGACY = "beacon-consent/{dataset}.json"


def _folder(dataset_id: str) -> str:
    return f"beacon-consent/{check_name(dataset_id, 'dataset id')}"


#: Longest path segment of an encoded id (file systems allow 255 bytes a name).
_SEGMENT = 200


def _encode(individual_id: str) -> str:
    """The id as a key: base64url, cut into segments of at most :data:`_SEGMENT` characters."""
    text = base64.urlsafe_b64encode(individual_id.encode()).decode().rstrip("=")
    return "/".join(text[i : i + _SEGMENT] for i in range(0, len(text), _SEGMENT))


def _decode(key: str, dataset_id: str) -> str | None:
    """The id a key under the dataset's folder stands for (``None``: not one of ours)."""
    stem = key.removeprefix(_folder(dataset_id) + "/")
    if stem == key or not stem.endswith(".json"):
        return None
    stem = stem.removesuffix(".json").replace("/", "")
    try:
        return base64.urlsafe_b64decode(stem + "=" * (-len(stem) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _key(dataset_id: str, individual_id: str) -> str:
    return f"{_folder(dataset_id)}/{_encode(individual_id)}.json"


def _legacy(store: Store, dataset_id: str) -> dict[str, dict]:
    try:
        return dict(store.read_json(_LEGACY.format(dataset=dataset_id)).get("revoked", {}))
    except NotFoundError:
        return {}


def revoked_ids(store: Store, dataset_id: str) -> set[str]:
    """The ids of every revoked participant of a dataset (one listing of the store)."""
    ids = {_decode(key, dataset_id) for key in store.list(_folder(dataset_id))}
    return (ids - {None}) | set(_legacy(store, dataset_id))


def revoked(store: Store, dataset_id: str) -> dict[str, dict]:
    """Individual id → {time, by, reason} of every revoked participant of a dataset."""
    found = _legacy(store, dataset_id)
    for key in store.list(_folder(dataset_id)):
        who = _decode(key, dataset_id)
        if who is None:
            continue
        try:
            entry = store.read_json(key)
        except NotFoundError:  # restored between the listing and the read
            continue
        found[who] = {k: entry.get(k, "") for k in ("time", "by", "reason")}
    return found


def _check(store: Store, dataset_id: str, individual_id: str) -> None:
    ds = store.open_dataset(KIND, dataset_id)
    if individual_id not in ds.meta.get("samples", []):
        raise NotFoundError(f"dataset {dataset_id!r} has no individual {individual_id!r}")


def _migrate(store: Store, dataset_id: str) -> None:
    """Fold the legacy single object into per-person objects, then remove it."""
    legacy = _legacy(store, dataset_id)
    for who, entry in legacy.items():
        store.write_json(_key(dataset_id, who), {"individual": who, **entry})
    if legacy:
        store.delete(_LEGACY.format(dataset=dataset_id))


def revoke(
    store: Store, dataset_id: str, individual_id: str, *, by: str = "", reason: str = ""
) -> dict:
    """Remove one individual from every answer of ``dataset_id``; returns the revocation (the
    first one stands when an individual is revoked twice)."""
    if not individual_id.strip():
        raise InputError("the individual id is empty")
    _check(store, dataset_id, individual_id)
    _migrate(store, dataset_id)
    key = _key(dataset_id, individual_id)
    try:
        entry = store.read_json(key)
        return {k: entry.get(k, "") for k in ("time", "by", "reason")}
    except NotFoundError:
        pass
    entry = {"time": utc_now(), "by": by, "reason": reason}
    store.write_json(key, {"individual": individual_id, **entry})
    return entry


def restore(store: Store, dataset_id: str, individual_id: str) -> bool:
    """Bring a revoked individual back; returns False if they were not revoked."""
    _check(store, dataset_id, individual_id)
    _migrate(store, dataset_id)
    key = _key(dataset_id, individual_id)
    if not store.exists(key):
        return False
    store.delete(key)
    return True


def forget(store: Store, dataset_id: str) -> None:
    """Delete every consent record of a dataset (when the dataset itself is removed)."""
    store.delete(_folder(dataset_id))
    store.delete(_LEGACY.format(dataset=dataset_id))
