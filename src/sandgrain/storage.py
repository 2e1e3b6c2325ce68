"""One storage layer for everything sandgrain keeps: a local directory or S3-compatible storage.

Built on fsspec, so the same code runs on ``/path/to/store`` and ``s3://bucket/prefix``.

Atomic writes
    A single object is written to a temporary name and renamed into place (local disk), or uploaded
    in one PUT / one completed multipart upload (object storage), so no reader ever sees a
    half-written object, also when the writer is killed.

Datasets
    A dataset (a genome, a site index, a variant table…) is a set of objects under
    ``<kind>/<name>/<version>/`` plus ``<kind>/<name>/manifest.json``, written last. The manifest
    lists every file with its size and SHA-256, the format and its version, and the provenance.
    A dataset exists only once its manifest exists, so a crashed import leaves nothing visible,
    and re-importing replaces the old version atomically (the manifest is swapped in one write).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cache import WorkerCache, worker_cache
from .errors import ConflictError, InputError, NotFoundError, SandgrainError, StorageError
from .provenance import utc_now

MANIFEST = "manifest.json"
_TMP_MARK = ".tmp-"
#: A version no manifest names is abandoned (its run was killed) after this many seconds.
ABANDONED_AFTER_S = 3600.0
#: What :class:`DatasetWriter` names its versions: ``v<UTC start time>-<8 hex digits>``.
_VERSION_RE = re.compile(r"^v\d{8}T\d{6}Z-[0-9a-f]{8}$")
#: The top-level prefix where runs keep temporary objects (removed by them, or by ``gc``).
SCRATCH = "scratch"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_KEY_PART_RE = re.compile(r"^[A-Za-z0-9_.=-][A-Za-z0-9_.=+-]*$")


def check_name(name: str, what: str = "name") -> str:
    """Validate a dataset name: letters, digits, '.', '_', '-' (at most 128, not starting with a
    punctuation mark)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InputError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return name


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _KEY_PART_RE.match(p) for p in parts):
        raise InputError(f"invalid storage key {key!r}")
    return key


class Store:
    """A key → bytes store rooted at an fsspec URL.

    Parameters
    ----------
    url
        A local directory or ``s3://bucket/prefix``.
    storage_options
        Passed to fsspec (for S3: ``{"client_kwargs": {"endpoint_url": ...}}``, credentials…).
    create
        Create a missing local directory: what a client opening its store on purpose does.
        A fan-out worker reopens the client's store with :meth:`from_reference`, which never
        creates one: an empty store made on a worker that cannot see the client's would make
        every dataset look replaced or removed, and files written there would be lost.
    """

    def __init__(self, url: str, storage_options: dict | None = None, *, create: bool = True):
        self.url = url.rstrip("/") if "://" in url else str(Path(url).expanduser().absolute())
        self.storage_options = dict(storage_options or {})
        import fsspec  # here, not at the top: `sandgrain --help` opens no store

        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        except (ImportError, ValueError) as exc:
            raise InputError(f"unsupported storage URL {url!r}: {exc}") from None
        self.root = self.root.rstrip("/")
        self.is_local = self.fs.protocol in ("file", ("file", "local"), "local") or (
            isinstance(self.fs.protocol, tuple) and "file" in self.fs.protocol
        )
        if self.is_local and not os.path.isdir(self.root):
            if not create:
                raise StorageError(
                    f"the store {self.url} does not exist on this worker (host "
                    f"{socket.gethostname()}): workers must see the client's store; use an "
                    "s3:// store, or a shared filesystem mounted at the same path on every worker"
                )
            try:
                Path(self.root).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot use {self.url} as a store: {exc.strerror}") from None

    @classmethod
    def from_settings(cls, settings) -> Store:
        return cls(settings.store, settings.storage_options())

    def reference(self) -> dict:
        """What a fan-out task needs to reopen this store in another process."""
        return {"url": self.url, "storage_options": self.storage_options}

    @classmethod
    def from_reference(cls, ref: dict) -> Store:
        """Reopen a store from :meth:`reference` (in a fan-out task); a local store that does
        not exist here is refused with a :class:`StorageError`, never created."""
        return cls(ref["url"], ref.get("storage_options"), create=False)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- single objects -------------------------------------------------------------------------
    def path(self, key: str) -> str:
        return f"{self.root}/{_check_key(key)}"

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Turn what the file system raises into errors that say which store and key."""
        try:
            yield
        except SandgrainError:
            raise
        except FileNotFoundError:
            raise NotFoundError(f"no object {key!r} in store {self.url}") from None
        except Exception as exc:  # botocore, aiohttp and OS errors alike
            raise StorageError(
                f"store {self.url}: cannot access {key!r}: {type(exc).__name__}: {exc}"
            ) from None

    def _fresh(self, path: str) -> None:
        """Forget cached listings: other processes may have written since (s3fs caches them)."""
        if not self.is_local:
            self.fs.invalidate_cache(path)

    def exists(self, key: str) -> bool:
        with self._errors(key):
            self._fresh(self.path(key))
            return self.fs.exists(self.path(key))

    def size(self, key: str) -> int:
        with self._errors(key):
            return int(self.fs.size(self.path(key)))

    def read_bytes(self, key: str) -> bytes:
        with self._errors(key):
            return self.fs.cat_file(self.path(key))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an object: one ranged read, never the whole object."""
        if end <= start:
            return b""
        with self._errors(key):
            return self.fs.cat_file(self.path(key), start=start, end=end)

    def read_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes ``[start, end)`` of an object for each of ``ranges``, read together: one
        open file on local disk, concurrent ranged GETs on object storage (never the whole
        object). Callers merge nearby ranges first; each range here is one request."""
        ranges = [(int(a), int(b)) for a, b in ranges]
        if not ranges:
            return []
        path = self.path(key)
        with self._errors(key):
            if self.is_local:
                out = []
                with open(path, "rb") as fh:
                    for start, end in ranges:
                        fh.seek(start)
                        out.append(fh.read(max(0, end - start)))
                return out
            return self.fs.cat_ranges(
                [path] * len(ranges),
                [a for a, _ in ranges],
                [b for _, b in ranges],
                on_error="raise",
            )

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write one object atomically."""
        path = self.path(key)
        with self._errors(key):
            if self.is_local:
                self._local_atomic(path, lambda fh: fh.write(data))
            else:
                self.fs.pipe_file(path, data)  # a single PUT: visible whole or not at all
                self.fs.invalidate_cache(path)

    def write_json(self, key: str, obj: Any) -> None:
        self.write_bytes(key, json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n")

    def publish_json(self, key: str, obj: Any, *, exclusive: bool) -> None:
        """Write a JSON object atomically; with ``exclusive``, fail if the key already exists.

        On local disk the exclusive create is atomic (``os.link`` refuses an existing name). On
        object storage the existence check and the PUT are separate requests: two writers racing
        within that instant both succeed, and the later one wins.
        """
        data = json.dumps(obj, indent=1, sort_keys=True).encode() + b"\n"
        if not exclusive:
            self.write_bytes(key, data)
            return
        path = self.path(key)
        if self.is_local:
            tmp = f"{path}{_TMP_MARK}{uuid.uuid4().hex}"
            with self._errors(key):
                self._local_atomic(tmp, lambda fh: fh.write(data))
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise ConflictError(f"{key} was created meanwhile by another writer") from None
                finally:
                    os.unlink(tmp)
            return
        if self.exists(key):
            raise ConflictError(f"{key} was created meanwhile by another writer")
        self.write_bytes(key, data)

    def local_copy(
        self, key: str, size: int | None = None, cache: WorkerCache | None = None
    ) -> str:
        """A local file holding the object ``key``: the object itself on a local store, else a
        copy in the worker cache (:mod:`sandgrain.cache`), downloaded once per worker and
        evicted least recently used. ``size`` saves a request when the caller knows it."""
        if self.is_local:
            return self.path(key)

        def fetch(tmp: str) -> None:
            with self._errors(key):
                self.fs.get_file(self.path(key), tmp)

        size = self.size(key) if size is None else int(size)
        return (cache or worker_cache()).get(key, size, fetch)

    def put_file(self, local_path: str | os.PathLike, key: str) -> None:
        """Copy a local file into the store atomically."""
        path = self.path(key)
        with self._errors(key):
            if self.is_local:

                def copy(fh):
                    with open(local_path, "rb") as src:
                        shutil.copyfileobj(src, fh, 1 << 22)

                self._local_atomic(path, copy)
            else:
                # s3fs uses one PUT or a multipart upload; a multipart object appears only when
                # the upload is completed, so readers never see part of it.
                self.fs.put_file(str(local_path), path)
                self.fs.invalidate_cache(path)

    def _local_atomic(self, path: str, write) -> None:
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{os.path.basename(path)}{_TMP_MARK}{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (recursive), sorted; temporary files are never listed."""
        base = self.path(prefix.rstrip("/")) if prefix else self.root
        with self._errors(prefix):
            self._fresh(base)
            if not self.fs.exists(base):
                return []
            found = self.fs.find(base)
        keys = []
        for p in found:
            key = p[len(self.root) + 1 :] if p.startswith(self.root + "/") else p
            if _TMP_MARK not in os.path.basename(key):
                keys.append(key)
        return sorted(keys)

    def sizes(self, prefix: str) -> dict[str, int]:
        """Size of every object under ``prefix``, keyed by its key relative to ``prefix``, from
        one recursive listing (one LIST request per 1,000 objects on object storage)."""
        base = self.path(prefix.rstrip("/"))
        with self._errors(prefix):
            self._fresh(base)
            if not self.fs.exists(base):
                return {}
            found = self.fs.find(base, detail=True)
        return {
            p[len(base) + 1 :]: int(info.get("size") or 0)
            for p, info in found.items()
            if p.startswith(base + "/") and _TMP_MARK not in os.path.basename(p)
        }

    def delete(self, prefix: str) -> None:
        """Delete an object or everything under a prefix; missing is fine."""
        path = self.path(prefix.rstrip("/"))
        with contextlib.suppress(NotFoundError), self._errors(prefix):
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)
            self.fs.invalidate_cache(path)

    # -- datasets -------------------------------------------------------------------------------
    def dataset_names(self, kind: str) -> list[str]:
        """Names of the complete datasets (those with a manifest) of one kind."""
        base = f"{self.root}/{_check_key(kind)}"
        found = []
        with contextlib.suppress(NotFoundError), self._errors(kind):
            self._fresh(base)
            found = self.fs.glob(f"{base}/*/{MANIFEST}")
        return sorted(p.rstrip("/").split("/")[-2] for p in found)

    def open_dataset(self, kind: str, name: str, version: str | None = None) -> Dataset:
        """The current version of a dataset, or a given version while it still exists (a
        fan-out task pins the version its run started with)."""
        check_name(name)
        key = f"{kind}/{name}/{MANIFEST}"
        try:
            manifest = self.read_json(key)
            if version and manifest.get("version") != version:
                manifest = self.read_json(f"{kind}/{name}/{version}/{MANIFEST}")
        except NotFoundError:
            what = kind[:-1] if kind.endswith("s") else kind
            if version:
                raise NotFoundError(
                    f"{what} {name!r} was replaced or removed while in use (version {version} "
                    "is gone); run the command again"
                ) from None
            raise NotFoundError(f"no {what} named {name!r}") from None
        return Dataset(self, kind, name, manifest)

    def has_dataset(self, kind: str, name: str) -> bool:
        return self.exists(f"{kind}/{check_name(name)}/{MANIFEST}")

    def new_dataset(
        self, kind: str, name: str, *, format: str, format_version: int, replace: bool = False
    ) -> DatasetWriter:
        """Start writing a dataset; use as a context manager (see :class:`DatasetWriter`)."""
        check_name(name)
        if not replace and self.has_dataset(kind, name):
            raise ConflictError(
                f"{kind[:-1] if kind.endswith('s') else kind} {name!r} already exists "
                "(remove it first, or use --replace)"
            )
        return DatasetWriter(self, kind, name, format, format_version, replace=replace)

    def delete_dataset(self, kind: str, name: str) -> None:
        ds = self.open_dataset(kind, name)
        # The manifest goes first: from that instant the dataset no longer exists for readers.
        self.delete(f"{kind}/{name}/{MANIFEST}")
        self.delete(f"{kind}/{name}")
        del ds

    # -- garbage --------------------------------------------------------------------------------
    def gc(self, older_than_s: float = ABANDONED_AFTER_S, *, delete: bool = False) -> GcReport:
        """Find (and with ``delete``, remove) what killed runs left in the store.

        - **Partial versions**: ``<kind>/<name>/<version>/`` folders that the dataset's manifest
          does not name, left by an import or index killed before it published (SIGKILL, a lost
          machine) or by a replace whose cleanup was cut short. The rule is the one every
          publish applies to its own dataset (:func:`_abandoned`); here it covers every dataset,
          and a version counts as abandoned only when it was started *and* last written more
          than ``older_than_s`` seconds ago, so a long run still writing is left alone.
        - **Temporary files**: objects of an atomic write that never completed (``.tmp-`` in
          the name) and scratch objects (under ``scratch/``), unchanged for ``older_than_s``.

        Parameters
        ----------
        older_than_s : float
            Only what is older than this many seconds (default one hour, as at publish).
        delete : bool
            Remove what was found; otherwise only report it (a dry run).

        Returns
        -------
        GcReport
            What was found (and removed), with sizes.
        """
        if older_than_s < 0:
            raise InputError(f"the age must be 0 or more seconds, not {older_than_s}")
        with self._errors(""):
            self._fresh(self.root)
            found = self.fs.find(self.root, detail=True) if self.fs.exists(self.root) else {}
        now = time.time()
        versions: dict[tuple[str, str], dict[str, list[tuple[int, float | None]]]] = {}
        loose: list[tuple[str, int, float | None]] = []
        for path, info in found.items():
            if not path.startswith(self.root + "/"):
                continue
            key = path[len(self.root) + 1 :]
            parts = key.split("/")
            entry = (int(info.get("size") or 0), _mtime(info))
            if len(parts) >= 4 and _VERSION_RE.match(parts[2]):
                versions.setdefault((parts[0], parts[1]), {}).setdefault(parts[2], []).append(entry)
            elif _TMP_MARK in parts[-1] or parts[0] == SCRATCH:
                loose.append((key, *entry))
        items: list[GcItem] = []
        for (kind, name), by_version in sorted(versions.items()):
            idle = {
                v: min((now - m for _, m in files if m is not None), default=float("inf"))
                for v, files in by_version.items()
            }
            stale = _abandoned(by_version, None, older_than_s, idle)
            if not stale:
                continue
            current = self._current_version(kind, name)
            if current is False:  # an unreadable manifest: leave the dataset alone
                continue
            for version in stale:
                if version == current:
                    continue
                files = by_version[version]
                items.append(
                    GcItem(
                        what="partial version",
                        dataset=f"{kind}/{name}",
                        key=f"{kind}/{name}/{version}",
                        files=len(files),
                        bytes=sum(size for size, _ in files),
                        age_s=min(_version_age(version), idle[version]),
                    )
                )
        for key, size, mtime in sorted(loose):
            age = now - mtime if mtime is not None else 0.0
            if age > older_than_s:
                where = "/".join(key.split("/")[:-1][:2])  # its dataset, or its folder
                items.append(GcItem("temporary file", where, key, 1, size, age))
        report = GcReport(self.url, float(older_than_s), delete, items)
        if delete:
            for item in items:
                self._gc_remove(item)
        return report

    def _current_version(self, kind: str, name: str) -> str | None | bool:
        """The version a dataset's manifest names; None without a manifest, False when the
        manifest cannot be read (then nothing of the dataset is touched)."""
        try:
            return str(self.read_json(f"{kind}/{name}/{MANIFEST}")["version"])
        except NotFoundError:
            return None
        except (SandgrainError, ValueError, KeyError, TypeError):
            return False

    def _gc_remove(self, item: GcItem) -> None:
        path = f"{self.root}/{item.key}"
        if item.what == "partial version":
            kind, name, version = item.key.split("/")
            # A publish between the listing and now may have made it current: look again.
            if self._current_version(kind, name) in (version, False):
                return
        with contextlib.suppress(FileNotFoundError), self._errors(item.key):
            self.fs.rm(path, recursive=True)
            self._fresh(path)
        if self.is_local and item.what == "partial version":
            # the dataset's folder, when the killed run was its first import (never published)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))

    # -- fan-out --------------------------------------------------------------------------------
    def probe(self, executor) -> None:
        """Check that the workers of a remote executor see this store, before a plan runs there.

        The ``store_probe`` hook of :func:`sandgrain.fanout.run_plan`. On an executor whose
        workers may run elsewhere (``executor.remote``: Dask, Lithops), this writes a random
        token into the store and runs one task that reads it back on a worker; a worker that
        cannot see the store (a local directory on another machine) fails the check at once,
        before any task writes where the client will never look. Done once per executor and
        store in a process; local executors share this machine's files and are not probed.

        Raises
        ------
        StorageError
            When a worker cannot read the token back, saying what to use instead.
        """
        if not getattr(executor, "remote", False):
            return
        seen_key = (executor.name, self.url, json.dumps(self.storage_options, sort_keys=True))
        if seen_key in _PROBED:
            return
        from .fanout import Task

        token = uuid.uuid4().hex
        key = f"_probes/probe{_TMP_MARK}{token}"
        task = Task(PROBE_TASK, {"store": self.reference(), "key": key}, key="store probe")
        self.write_bytes(key, token.encode())
        try:
            handle = executor.submit(task)
            done, _ = executor.wait([handle], timeout=PROBE_TIMEOUT)
            if not done:
                with contextlib.suppress(Exception):
                    executor.cancel([handle])
                raise StorageError(
                    f"no worker of {executor.name} answered the store probe within "
                    f"{PROBE_TIMEOUT:.0f} s; check that the cluster has workers"
                )
            try:
                seen = executor.result(handle)
            except Exception as exc:
                raise StorageError(
                    f"cannot check that the workers of {executor.name} see the store "
                    f"{self.url}: the probe task failed: {type(exc).__name__}: {exc}"
                ) from None
        finally:
            with contextlib.suppress(SandgrainError):
                self.delete(key)
        if seen.get("token") != token:
            reason = f"on host {seen.get('host')}, {seen.get('problem')}"
            if self.is_local:
                raise StorageError(
                    f"workers of {executor.name} cannot see the local store {self.url} ({reason}): "
                    "use an s3:// store, or a shared filesystem mounted at the same path on "
                    "every worker"
                )
            raise StorageError(
                f"workers of {executor.name} cannot read the store {self.url} ({reason}): give "
                "them the same endpoint, credentials and network access as this client"
            )
        _PROBED.add(seen_key)


@dataclass
class Dataset:
    """A complete, immutable dataset as its manifest describes it."""

    store: Store
    kind: str
    name: str
    manifest: dict

    @property
    def prefix(self) -> str:
        return f"{self.kind}/{self.name}/{self.manifest['version']}"

    @property
    def meta(self) -> dict:
        return self.manifest.get("meta", {})

    def key(self, file: str) -> str:
        if file not in self.manifest["files"]:
            raise NotFoundError(f"dataset {self.kind}/{self.name} has no file {file!r}")
        return f"{self.prefix}/{file}"

    def read_bytes(self, file: str) -> bytes:
        return self.store.read_bytes(self.key(file))

    def read_range(self, file: str, start: int, end: int) -> bytes:
        return self.store.read_range(self.key(file), start, end)

    def read_ranges(self, file: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return self.store.read_ranges(self.key(file), ranges)

    def local_path(self, file: str, cache: WorkerCache | None = None) -> str:
        """A local file holding ``file``: the object itself on a local store, otherwise a copy
        in the worker cache (:mod:`sandgrain.cache`; this process's own settings unless
        ``cache`` is given), keyed by the dataset version, downloaded once and evicted least
        recently used when the cache is full."""
        return self.store.local_copy(self.key(file), self.manifest["files"][file]["size"], cache)

    def cached_path(self, file: str, cache: WorkerCache | None = None) -> str | None:
        """A local file holding ``file`` if there is one without downloading (a local store's
        object, or a copy already in the worker cache), else ``None``."""
        key = self.key(file)
        if self.store.is_local:
            return self.store.path(key)
        return (cache or worker_cache()).lookup(key)

    def verify(self) -> list[str]:
        """Re-read every file and compare size and SHA-256 with the manifest; returns problems."""
        problems = []
        for file, info in self.manifest["files"].items():
            size = self.store.size(self.key(file))
            if size != info["size"]:
                problems.append(f"{file}: size {size} != {info['size']}")
            elif _sha256_object(self.store, self.key(file), size) != info["sha256"]:
                problems.append(f"{file}: checksum mismatch")
        return problems


@dataclass
class DatasetWriter:
    """Writes the files of a new dataset version, then publishes it with one manifest write.

    >>> with store.new_dataset("genomes", "yeast", format="sandgrain.genome",
    ...                        format_version=1) as ds:               # doctest: +SKIP
    ...     ds.put_file("sequence.fa.bgz", "/tmp/x.fa.bgz")
    ...     ds.meta["chromosomes"] = [...]
    ...     ds.provenance = provenance("genome add", {...}, inputs)

    If the block raises (or the process dies), no manifest is written: the partial version is
    invisible, and removed at once when the failure is an exception.
    """

    store: Store
    kind: str
    name: str
    format: str
    format_version: int
    meta: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    version: str = ""
    replace: bool = False
    #: Set once the manifest is written: a failure (or a signal) after it removes nothing.
    published: bool = False

    def __post_init__(self):
        self.version = f"v{utc_now().replace(':', '').replace('-', '')}-{uuid.uuid4().hex[:8]}"

    @property
    def prefix(self) -> str:
        return f"{self.kind}/{self.name}/{self.version}"

    def put_file(self, file: str, local_path, sha256: str | None = None) -> None:
        if sha256 is None:
            from .provenance import sha256_file

            sha256 = sha256_file(local_path)
        self.store.put_file(local_path, f"{self.prefix}/{file}")
        self.files[file] = {"size": os.path.getsize(local_path), "sha256": sha256}

    def write_bytes(self, file: str, data: bytes) -> None:
        self.store.write_bytes(f"{self.prefix}/{file}", data)
        self.files[file] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def add_written(self, file: str, size: int, sha256: str) -> None:
        """Register a file that a fan-out task wrote under :attr:`prefix` itself."""
        self.files[file] = {"size": int(size), "sha256": sha256}

    def manifest(self) -> dict:
        return {
            "format": self.format,
            "format_version": self.format_version,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "created": utc_now(),
            "files": dict(sorted(self.files.items())),
            "total_size": sum(f["size"] for f in self.files.values()),
            "provenance": self.provenance,
            "meta": self.meta,
        }

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            with contextlib.suppress(Exception):
                self.store.delete(self.prefix)
            return
        try:
            self._publish()
        except BaseException:
            if not self.published:
                with contextlib.suppress(Exception):
                    self.store.delete(self.prefix)
            raise

    def check_files(self) -> None:
        """Check that every file the manifest lists is in the store as recorded, before it is
        published; raise a :class:`StorageError` naming the missing or wrong files otherwise.

        Sizes are always checked, all at once from one listing of the version's prefix: a file
        a fan-out task wrote onto a worker's own disk (a worker that cannot see this store) is
        missing here. SHA-256 checksums are recomputed by re-reading the files only when they
        total at most :data:`REHASH_BYTES`: each was hashed by its writer from the bytes it
        wrote, and re-reading costs as much as the write on object storage (≈ 0.1 s per 167 MB
        from a local disk's cache, a second download on S3). ``Dataset.verify`` (``sandgrain
        genome verify``) re-hashes everything on demand.
        """
        where = f"{self.store.url}/{self.prefix}"
        found = self.store.sizes(self.prefix)
        missing = [f for f in self.files if f not in found]
        wrong = [
            f"{f} ({found[f]} bytes, not {info['size']})"
            for f, info in self.files.items()
            if f in found and found[f] != info["size"]
        ]
        if not missing and not wrong and sum(found[f] for f in self.files) <= REHASH_BYTES:
            wrong = [
                f"{f} (checksum differs)"
                for f, info in self.files.items()
                if _sha256_object(self.store, f"{self.prefix}/{f}", found[f]) != info["sha256"]
            ]
        n = len(self.files)
        if missing:
            raise StorageError(
                f"not published: {len(missing)} of {n} files listed by the manifest are missing "
                f"from {where}: {_names(missing)} (written elsewhere: fan-out workers that cannot "
                "see this store write to their own disks; use a store every worker can reach)"
            )
        if wrong:
            raise StorageError(
                f"not published: {len(wrong)} of {n} files listed by the manifest differ from "
                f"what is in {where}: {_names(wrong)} (changed or rewritten while the dataset "
                "was written; write it again)"
            )

    def _publish(self) -> None:
        store, base = self.store, f"{self.kind}/{self.name}"
        self.check_files()
        manifest = self.manifest()
        # the version keeps its own copy, so readers can pin it
        store.write_json(f"{self.prefix}/{MANIFEST}", manifest)
        previous = None
        with contextlib.suppress(NotFoundError, ValueError, KeyError):
            previous = store.read_json(f"{base}/{MANIFEST}")["version"]
        if previous and not self.replace:
            raise ConflictError(
                f"{self.name!r} was created meanwhile by another import; "
                "use --replace to replace it"
            )
        store.publish_json(f"{base}/{MANIFEST}", manifest, exclusive=not self.replace)
        self.published = True
        # Old versions go: the one replaced now, and any left by killed runs (as Store.gc does).
        versions = {k.split("/")[2] for k in store.list(base) if k.count("/") >= 3}
        stale = set(_abandoned(versions, self.version, ABANDONED_AFTER_S))
        for key in stale | ({previous} & versions):
            with contextlib.suppress(Exception):
                store.delete(f"{base}/{key}")


#: The task :meth:`Store.probe` runs on a worker, and how long it waits for one to answer.
PROBE_TASK = "sandgrain.storage:read_probe"
PROBE_TIMEOUT = 120.0
#: (executor, store URL, options) checked by :meth:`Store.probe` in this process.
_PROBED: set[tuple[str, str, str]] = set()


def read_probe(store: dict, key: str) -> dict:
    """Fan-out task of :meth:`Store.probe`: what this worker reads at ``key``.

    Returns ``{"host", "token", "problem"}``, with ``token`` None and ``problem`` saying why
    when the worker cannot read it; never raises for a store it cannot see, so the answer
    reaches the client without retries.
    """
    host = socket.gethostname()
    local = "://" not in store["url"] or store["url"].startswith("file://")
    try:
        st = Store.from_reference(store)
    except StorageError:
        problem = "the directory does not exist" if local else "the store cannot be opened"
        return {"host": host, "token": None, "problem": problem}
    try:
        return {"host": host, "token": st.read_bytes(key).decode(), "problem": ""}
    except NotFoundError:
        problem = "a different directory is at that path (the client's token is not in it)"
    except SandgrainError as exc:
        problem = str(exc)
    return {"host": host, "token": None, "problem": problem}


#: Largest total size of a new dataset whose files are re-hashed before it is published.
REHASH_BYTES = 256 << 20


def _sha256_object(store: Store, key: str, size: int) -> str:
    """SHA-256 of an object, read in ranges so memory stays small whatever its size."""
    digest = hashlib.sha256()
    step = 8 << 20
    for start in range(0, size, step):
        digest.update(store.read_range(key, start, min(size, start + step)))
    return digest.hexdigest()


def _names(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, … ({len(items) - limit} more)"


@dataclass(frozen=True)
class GcItem:
    """One thing :meth:`Store.gc` found: a partial version or a temporary file."""

    what: str  #: ``"partial version"`` or ``"temporary file"``
    dataset: str  #: ``<kind>/<name>`` (for a temporary file: the folder it is in)
    key: str  #: the version's prefix or the file's key
    files: int
    bytes: int
    age_s: float  #: seconds since it was started or last written, whichever is later


@dataclass
class GcReport:
    """What :meth:`Store.gc` found in a store, and whether it removed it."""

    store: str
    older_than_s: float
    deleted: bool
    items: list[GcItem]

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.items)

    def by_dataset(self) -> dict[str, dict[str, int]]:
        """Count, files and bytes per dataset (or folder), sorted by name."""
        out: dict[str, dict[str, int]] = {}
        for item in sorted(self.items, key=lambda i: i.dataset):
            row = out.setdefault(item.dataset, {"count": 0, "files": 0, "bytes": 0})
            row["count"] += 1
            row["files"] += item.files
            row["bytes"] += item.bytes
        return out

    def to_dict(self) -> dict:
        return {
            "store": self.store,
            "older_than_s": self.older_than_s,
            "deleted": self.deleted,
            "count": len(self.items),
            "bytes": self.bytes,
            "datasets": self.by_dataset(),
            "items": [
                {**asdict(item), "age_s": round(item.age_s, 1)} for item in self.items
            ],
        }


def _abandoned(
    versions: Iterable[str],
    current: str | None,
    older_than_s: float,
    idle_s: Mapping[str, float] | None = None,
) -> list[str]:
    """The versions of one dataset that killed runs left: not ``current`` (the version its
    manifest names, or the one being published), started more than ``older_than_s`` seconds
    ago and, where ``idle_s`` says how long each has gone unwritten, idle as long."""
    idle_s = idle_s or {}
    return sorted(
        v
        for v in versions
        if v != current
        and _version_age(v) > older_than_s
        and idle_s.get(v, float("inf")) > older_than_s
    )


def _mtime(info: dict) -> float | None:
    """When an object was last written, from an fsspec listing entry (local or S3)."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _version_age(version: str) -> float:
    """Seconds since a version (``vYYYYMMDDTHHMMSSZ-xxxx``) was started; 0 if unreadable."""
    import datetime as dt

    try:
        stamp = dt.datetime.strptime(version[1:16], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return 0.0
    return (dt.datetime.now(dt.UTC) - stamp).total_seconds()


@contextlib.contextmanager
def scratch_dir(prefix: str = "sandgrain-") -> Iterator[Path]:
    """A temporary local directory, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
