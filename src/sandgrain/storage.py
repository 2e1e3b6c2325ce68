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
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec

from .errors import ConflictError, InputError, NotFoundError, SandgrainError, StorageError
from .provenance import utc_now

MANIFEST = "manifest.json"
_TMP_MARK = ".tmp-"
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
        A local directory (created if missing) or ``s3://bucket/prefix``.
    storage_options
        Passed to fsspec (for S3: ``{"client_kwargs": {"endpoint_url": ...}}``, credentials…).
    """

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = url.rstrip("/") if "://" in url else str(Path(url).expanduser().absolute())
        self.storage_options = dict(storage_options or {})
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        except (ImportError, ValueError) as exc:
            raise InputError(f"unsupported storage URL {url!r}: {exc}") from None
        self.root = self.root.rstrip("/")
        self.is_local = self.fs.protocol in ("file", ("file", "local"), "local") or (
            isinstance(self.fs.protocol, tuple) and "file" in self.fs.protocol
        )
        if self.is_local:
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
        return cls(ref["url"], ref.get("storage_options"))

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

    def local_path(self, file: str) -> str:
        """A local file holding ``file``: the object itself on a local store, otherwise a copy
        downloaded once into a cache directory keyed by the dataset version (safe to share)."""
        key = self.key(file)
        if self.store.is_local:
            return self.store.path(key)
        cache = os.path.join(
            tempfile.gettempdir(), "sandgrain-cache", self.kind, self.name, self.manifest["version"]
        )
        path = os.path.join(cache, file)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}{_TMP_MARK}{uuid.uuid4().hex}"
            with self.store._errors(key):
                self.store.fs.get_file(self.store.path(key), tmp)
            os.replace(tmp, path)
        return path

    def verify(self) -> list[str]:
        """Re-read every file and compare size and SHA-256 with the manifest; returns problems."""
        problems = []
        step = 8 << 20  # ranged reads: memory stays small whatever the file size
        for file, info in self.manifest["files"].items():
            size = self.store.size(self.key(file))
            if size != info["size"]:
                problems.append(f"{file}: size {size} != {info['size']}")
                continue
            digest = hashlib.sha256()
            for start in range(0, size, step):
                digest.update(self.read_range(file, start, min(size, start + step)))
            if digest.hexdigest() != info["sha256"]:
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
            with contextlib.suppress(Exception):
                self.store.delete(self.prefix)
            raise

    def _publish(self) -> None:
        store, base = self.store, f"{self.kind}/{self.name}"
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
        # Old versions go: the one replaced now, and any left by killed imports (> 1 hour old).
        for key in {k.split("/")[2] for k in store.list(base) if k.count("/") >= 3}:
            if key != self.version and (key == previous or _version_age(key) > 3600):
                with contextlib.suppress(Exception):
                    store.delete(f"{base}/{key}")


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
