"""Provenance records: which software, with which parameters, from which inputs, when.

Every stored dataset and every returned result carries one (see tskit's provenance tables for the
idea). Records are plain JSON-able dicts so they can be embedded in manifests and API responses.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import sys
from collections.abc import Iterable
from typing import Any

from . import __version__


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string with second precision."""
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def provenance(command: str, parameters: dict[str, Any], inputs: Iterable[dict] = ()) -> dict:
    """Make a provenance record.

    Parameters
    ----------
    command
        What was run, e.g. ``"genome add"``.
    parameters
        The options that shaped the result (JSON-serialisable).
    inputs
        One dict per input, each with at least ``source`` and ``sha256``.
    """
    return {
        "software": "sandgrain",
        "version": __version__,
        "command": command,
        "parameters": parameters,
        "inputs": list(inputs),
        "time": utc_now(),
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(terse=True),
        },
    }


class HashingReader:
    """Wrap a binary file object and compute the SHA-256 of everything read through it."""

    def __init__(self, raw):
        self._raw = raw
        self._hash = hashlib.sha256()
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._hash.update(data)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer)
        if n:
            view = memoryview(buffer)[:n]
            self._hash.update(view)
            self.bytes_read += n
        return n

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return getattr(self._raw, "closed", False)

    def close(self) -> None:
        """Leave the wrapped file open: whoever opened it closes it (wrappers may close early)."""

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a local file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()
