"""The worker cache: a size cap, least recently used evicted first, shared by processes."""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pytest

from sandgrain.cache import WorkerCache, worker_cache
from sandgrain.config import Settings
from sandgrain.errors import InputError, StorageError


def writer(data: bytes):
    def fetch(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    return fetch


def put(cache: WorkerCache, key: str, size: int = 100) -> str:
    return cache.get(key, size, writer(key.encode().ljust(size, b".")))


def names(cache: WorkerCache) -> list[str]:
    return [os.path.relpath(e.path, cache.directory) for e in cache.entries()]


def test_least_recently_used_goes_first(tmp_path):
    cache = WorkerCache(tmp_path / "c", 300)
    for key in ("k/v1/a", "k/v1/b", "k/v1/c"):
        put(cache, key)
        time.sleep(0.01)
    assert cache.lookup("k/v1/a")  # a hit is a use: "a" is now the most recent
    time.sleep(0.01)
    put(cache, "k/v1/d")
    assert names(cache) == ["k/v1/c", "k/v1/a", "k/v1/d"]  # "b" was least recently used
    assert cache.usage() == 300
    assert cache.lookup("k/v1/b") is None
    fetched = []
    cache.get("k/v1/a", 100, lambda tmp: fetched.append(tmp))
    assert fetched == []  # a hit downloads nothing


def test_a_file_larger_than_the_cap_is_refused(tmp_path):
    cache = WorkerCache(tmp_path / "c", 100)
    with pytest.raises(StorageError, match="SANDGRAIN_CACHE_MB"):
        put(cache, "k/v1/big", 101)
    with pytest.raises(InputError):
        WorkerCache(tmp_path / "c", -1)
    with pytest.raises(InputError):
        cache.path("k/../x")


def test_a_failed_download_leaves_nothing(tmp_path):
    cache = WorkerCache(tmp_path / "c", 1000)

    def broken(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise OSError("connection reset")

    with pytest.raises(OSError):
        cache.get("k/v1/x", 10, broken)
    assert cache.usage() == 0


def test_stale_temporary_files_are_removed(tmp_path):
    cache = WorkerCache(tmp_path / "c", 1000)
    stale = tmp_path / "c" / "k" / ".x.tmp-dead"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x" * 50)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert cache.usage() == 50
    cache.make_room(10)
    assert not stale.exists() and cache.usage() == 0


def test_an_evicted_file_stays_readable_where_it_is_mapped(tmp_path):
    """Unlinking removes the name only: an open mapping keeps its pages (POSIX)."""
    cache = WorkerCache(tmp_path / "c", 300)
    arr = np.arange(10, dtype=np.int64)

    def fetch(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, arr)

    mapped = np.load(cache.get("k/v1/arr.npy", 208, fetch), mmap_mode="r")
    time.sleep(0.01)
    put(cache, "k/v1/other", 150)
    assert cache.lookup("k/v1/arr.npy") is None  # evicted
    assert mapped.tolist() == arr.tolist()


def test_a_download_in_flight_holds_its_room(tmp_path):
    """Room made for a download stays taken before its first byte: another process making room
    meanwhile counts it (the race that let two processes fill the same 100 bytes)."""
    cache = WorkerCache(tmp_path / "c", 300)
    put(cache, "k/v1/a")
    time.sleep(0.01)
    put(cache, "k/v1/b")
    seen = {}

    def fetch(tmp: str) -> None:
        other = WorkerCache(tmp_path / "c", 300)  # as a second process would see the cache
        seen["evicted"] = [os.path.basename(p) for p in other.make_room(100)]
        with open(tmp, "wb") as fh:
            fh.write(b"x" * 100)

    cache.get("k/v1/c", 100, fetch)
    assert seen["evicted"] == ["a"]  # 200 held + 100 reserved + 100 wanted > 300
    assert cache.usage() <= 300


def test_a_download_is_renamed_into_place_under_the_lock(tmp_path, monkeypatch):
    """Eviction lists names, then reads each size: a rename between the two (a finished
    download in another process) would hide the file from the count and let the cache grow a
    file over its cap. The rename must therefore wait for the lock eviction holds."""
    import fcntl

    cache = WorkerCache(tmp_path / "c", 300)
    rename = os.replace
    held = []

    def replace(src, dst):
        fd = os.open(tmp_path / "c" / ".lock", os.O_RDWR)
        try:  # a second open file description: its lock conflicts with the cache's own
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        rename(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    put(cache, "k/v1/a")
    assert held == [True]


def _hammer(args) -> list[str]:
    """One process: fetch and read back keys, some shared with the other processes."""
    directory, cap, worker, n = args
    cache = WorkerCache(directory, cap)
    bad = []
    for i in range(n):
        key = f"k/v1/shared-{i % 5}" if i % 2 else f"k/v1/w{worker}-{i}"
        data = key.encode().ljust(100, b".")
        for _attempt in range(3):
            path = cache.get(key, 100, writer(data))
            try:  # a full cache shared by processes may evict it before it is opened: get again
                with open(path, "rb") as fh:
                    if fh.read() != data:
                        bad.append(key)
                break
            except FileNotFoundError:
                continue
        else:
            bad.append(f"{key}: evicted three times before it could be opened")
        if cache.usage() > cap + 4 * 100:  # at most one download in flight a process
            bad.append(f"over the cap: {cache.usage()}")
    return bad


def test_processes_share_one_cache_under_its_cap(tmp_path):
    cap = 1000
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        bad = pool.map(_hammer, [(str(tmp_path / "c"), cap, w, 40) for w in range(4)])
    assert bad == [[], [], [], []]
    cache = WorkerCache(tmp_path / "c", cap)
    assert cache.usage() <= cap
    assert not [p for p in (tmp_path / "c").rglob("*") if ".tmp-" in p.name]
    # full, never over: as many files as the cap holds, less at most one a process when
    # evictions made room for downloads that were in flight at the same time
    assert cap // 100 - 4 <= len(cache.entries()) <= cap // 100


def test_settings_and_environment(tmp_path, monkeypatch):
    s = Settings.from_env({"SANDGRAIN_HOME": str(tmp_path / "h")})
    assert s.cache_path == str(tmp_path / "h" / "cache") and s.cache_mb == 10240
    s = Settings.from_env(
        {"SANDGRAIN_CACHE_DIR": str(tmp_path / "elsewhere"), "SANDGRAIN_CACHE_MB": "5"}
    )
    assert s.cache_path == str(tmp_path / "elsewhere") and s.cache_mb == 5
    for bad in ("lots", "-1"):
        with pytest.raises(InputError, match="SANDGRAIN_CACHE_MB"):
            Settings.from_env({"SANDGRAIN_CACHE_MB": bad})
    monkeypatch.setenv("SANDGRAIN_CACHE_DIR", str(tmp_path / "worker"))
    monkeypatch.setenv("SANDGRAIN_CACHE_MB", "3")
    cache = worker_cache()
    assert cache.directory == str(tmp_path / "worker") and cache.max_bytes == 3 << 20


def test_a_dataset_on_object_storage_is_copied_into_the_worker_cache(
    s3_store, tmp_path, monkeypatch
):
    with s3_store.new_dataset("things", "t", format="x", format_version=1) as w:
        w.write_bytes("a.bin", b"a" * 600_000)
        w.write_bytes("b.bin", b"b" * 600_000)
    ds = s3_store.open_dataset("things", "t")
    monkeypatch.setenv("SANDGRAIN_CACHE_DIR", str(tmp_path / "wc"))
    monkeypatch.setenv("SANDGRAIN_CACHE_MB", "1")  # 1 MiB: room for one of the two files
    assert ds.cached_path("a.bin") is None
    a = ds.local_path("a.bin")
    assert a.startswith(str(tmp_path / "wc")) and ds.manifest["version"] in a
    with open(a, "rb") as fh:
        assert fh.read() == b"a" * 600_000
    assert ds.cached_path("a.bin") == a
    ds.local_path("b.bin")  # evicts a
    assert ds.cached_path("a.bin") is None and ds.cached_path("b.bin")
    monkeypatch.setenv("SANDGRAIN_CACHE_MB", "0")
    with pytest.raises(StorageError, match="larger than the worker cache"):
        ds.local_path("a.bin")
