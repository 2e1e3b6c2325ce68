"""The worker cache: local copies of dataset files, under a size cap, evicted least recently used.

A worker (a local process, a Dask worker, a serverless function) that needs a whole file of a
dataset held on object storage keeps a copy here, so the next task on the same worker does not
download it again. Datasets are immutable once published and every version has its own name, so
a copy keyed by ``<kind>/<name>/<version>/<file>`` never goes stale.

Where and how much
    ``Settings.cache_dir`` (``SANDGRAIN_CACHE_DIR``, default ``$SANDGRAIN_HOME/cache``) and
    ``Settings.cache_mb`` (``SANDGRAIN_CACHE_MB``, default 10240: the 10 GB of ``/tmp`` an AWS
    Lambda function may have). The cache is a property of the machine a task runs on, not of the
    client that planned it: tasks carry only references to data, and a worker reads these two
    variables from its own environment (:func:`worker_cache`), so a Lambda function or a Dask
    worker sets them for its own disk.

Shared by concurrent processes
    A download goes to a temporary name in the cache and is renamed into place (atomic on one
    file system), so no process ever sees half a file; two processes fetching the same file at
    once both download, and the later rename wins with the same bytes. A hit touches the file's
    modification time, which is its last use. Eviction (oldest last use first, until the new file
    fits under the cap) runs under an ``fcntl`` lock on ``<dir>/.lock``, so two processes never
    evict against each other's stale view; the download's temporary file, named with the size it
    will reach, is created under the same lock, so the room made for it is counted by the next
    process to make room before a byte arrives, and the finished download is renamed into place
    under the lock too, so no eviction's listing misses it half-way; a hit takes no lock, and
    eviction re-reads a file's last use just before removing it, so a file used meanwhile stays.
    A file another process is reading, or has mapped (``np.load(..., mmap_mode="r")``), may be
    evicted: on Linux and other POSIX systems unlinking removes only the name, and the open file
    or mapping stays valid until it is closed, so the reader is never disturbed. Temporary files
    left by killed downloads are removed by eviction after an hour.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import InputError, StorageError

_TMP_MARK = ".tmp-"
_LOCK = ".lock"
_STALE_TMP_S = 3600.0


@dataclass(frozen=True)
class CacheEntry:
    path: str
    size: int
    last_use: float


class WorkerCache:
    """Local copies of dataset files under ``directory``, at most ``max_bytes`` in all.

    >>> cache = WorkerCache("/tmp/c", 10 << 30)                          # doctest: +SKIP
    >>> cache.get("siteindex/yeast.NGG.20.3p/v2026…/part-00000/a_rest.npy", size, fetch)
    """

    def __init__(self, directory: str | os.PathLike, max_bytes: int):
        if max_bytes < 0:
            raise InputError(f"the cache size must be 0 MB or more, not {max_bytes} bytes")
        self.directory = str(Path(directory).expanduser().absolute())
        self.max_bytes = int(max_bytes)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerCache:
        return cls(settings.cache_path, settings.cache_mb << 20)

    def __repr__(self) -> str:
        return f"WorkerCache({self.directory!r}, {self.max_bytes >> 20} MB)"

    def path(self, key: str) -> str:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise InputError(f"invalid cache key {key!r}")
        return os.path.join(self.directory, *parts)

    def fits(self, size: int) -> bool:
        """Whether a file of ``size`` bytes can be cached at all (the cap holds it alone)."""
        return size <= self.max_bytes

    def lookup(self, key: str) -> str | None:
        """The local copy of ``key`` if cached (its last use set to now), else ``None``."""
        path = self.path(key)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    def get(self, key: str, size: int, fetch: Callable[[str], None]) -> str:
        """The local copy of ``key``, fetched with ``fetch(tmp_path)`` when missing.

        ``size`` is the file's size in bytes (from the manifest): room is made for it first,
        evicting the least recently used files. A file larger than the whole cap is refused
        with an error naming ``SANDGRAIN_CACHE_MB``. Open (or map) the path at once: when the
        cache is full and shared, another process may evict it before a late open (an open or
        mapped file stays readable); a caller that finds it gone calls ``get`` again.
        """
        found = self.lookup(key)
        if found is not None:
            return found
        if not self.fits(size):
            raise StorageError(
                f"{key} ({size / 1e6:.0f} MB) is larger than the worker cache "
                f"({self.max_bytes / 1e6:.0f} MB); raise SANDGRAIN_CACHE_MB"
            )
        path = self.path(key)
        # the temporary name carries the size it will grow to: it is created under the lock
        # that makes room for it, so another process making room meanwhile counts it in full
        tmp = os.path.join(
            os.path.dirname(path),
            f".{os.path.basename(path)}{_TMP_MARK}{uuid.uuid4().hex}-{int(size)}",
        )
        self.make_room(size, reserve=tmp)
        try:
            fetch(tmp)
            # renamed under the lock: eviction lists names, then reads each one's size; a
            # rename between the two would hide the file from that count (the temporary name
            # gone, the final one not listed) and let it make room that is not there
            with self._locked():
                os.replace(tmp, path)
                os.utime(path)  # its use is now, not when its download began
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def entries(self) -> list[CacheEntry]:
        """The cached files (temporary downloads excluded), least recently used first."""
        found = []
        for path, st in self._walk():
            if _TMP_MARK not in os.path.basename(path):
                found.append(CacheEntry(path, st.st_size, st.st_mtime))
        return sorted(found, key=lambda e: (e.last_use, e.path))

    def usage(self) -> int:
        """Bytes the cache holds now, downloads in progress included."""
        return sum(st.st_size for _, st in self._walk())

    def make_room(self, size: int, reserve: str | None = None) -> list[str]:
        """Evict least recently used files until ``size`` more bytes fit under the cap; returns
        the evicted paths. Runs under the cache's lock file; ``reserve`` (a temporary download
        name) is created before the lock is released, so the room made stays taken."""
        evicted = []
        with self._locked():
            now = time.time()
            held = 0
            files = []
            for path, st in self._walk():
                if _TMP_MARK in os.path.basename(path):
                    if now - st.st_mtime > _STALE_TMP_S:  # left by a killed download
                        with contextlib.suppress(OSError):
                            os.unlink(path)
                        continue
                    held += _reserved(path, st.st_size)  # another process's download
                    continue
                files.append((st.st_mtime, path, st.st_size))
                held += st.st_size
            for last_use, path, file_size in sorted(files):
                if held + size <= self.max_bytes:
                    break
                with contextlib.suppress(FileNotFoundError):
                    # a hit in another process (hits take no lock) may have used it since the
                    # listing: then it is no longer the least recently used; keep it
                    if os.stat(path).st_mtime != last_use:
                        continue
                    os.unlink(path)  # readers that have it open or mapped keep it until closed
                    evicted.append(path)
                held -= file_size
            if reserve is not None:
                os.makedirs(os.path.dirname(reserve), exist_ok=True)
                os.close(os.open(reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        return evicted

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        for root, _dirs, names in os.walk(self.directory):
            for name in names:
                if root == self.directory and name == _LOCK:
                    continue
                path = os.path.join(root, name)
                with contextlib.suppress(FileNotFoundError):
                    yield path, os.stat(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd = os.open(os.path.join(self.directory, _LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(
                f"cannot use {self.directory} as the worker cache: {exc.strerror}; "
                "set SANDGRAIN_CACHE_DIR to a writable folder"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _reserved(tmp_path: str, st_size: int) -> int:
    """The bytes a download in progress will hold: the size its name declares (written by
    :meth:`WorkerCache.get`), or what it holds now if larger or the name declares none."""
    tail = os.path.basename(tmp_path).rsplit(_TMP_MARK, 1)[-1]
    declared = tail.rsplit("-", 1)[-1] if "-" in tail else ""
    return max(st_size, int(declared)) if declared.isdigit() else st_size


_WORKER_CACHES: dict[tuple[str, int], WorkerCache] = {}


def worker_cache(settings: Settings | None = None) -> WorkerCache:
    """The cache of the machine this process runs on: from ``settings``, else from this
    process's own ``SANDGRAIN_*`` environment (a worker's, not the client's that planned the
    task)."""
    settings = settings or Settings.from_env()
    key = (settings.cache_path, settings.cache_mb)
    if key not in _WORKER_CACHES:
        _WORKER_CACHES[key] = WorkerCache.from_settings(settings)
    return _WORKER_CACHES[key]
