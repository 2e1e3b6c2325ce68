"""The storage layer behaves the same on a local directory and on S3 (a real server on loopback)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from sandgrain import storage
from sandgrain.errors import ConflictError, InputError, NotFoundError, StorageError
from sandgrain.provenance import provenance
from sandgrain.storage import Store


def test_objects_round_trip(any_store: Store):
    any_store.write_bytes("a/b/c.bin", b"0123456789")
    assert any_store.exists("a/b/c.bin")
    assert any_store.read_bytes("a/b/c.bin") == b"0123456789"
    assert any_store.read_range("a/b/c.bin", 3, 7) == b"3456"
    assert any_store.size("a/b/c.bin") == 10
    any_store.write_json("a/x.json", {"k": [1, 2]})
    assert any_store.read_json("a/x.json") == {"k": [1, 2]}
    assert any_store.list("a") == ["a/b/c.bin", "a/x.json"]
    any_store.write_bytes("a/b/c.bin", b"new")  # overwrite
    assert any_store.read_bytes("a/b/c.bin") == b"new"
    any_store.delete("a")
    assert any_store.list("a") == []
    with pytest.raises(NotFoundError):
        any_store.read_bytes("a/b/c.bin")


def test_large_upload_uses_ranged_reads(any_store: Store, tmp_path):
    # 12 MiB: big enough for s3fs to use a multipart upload
    data = os.urandom(12 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    any_store.put_file(src, "big/big.bin")
    assert any_store.size("big/big.bin") == len(data)
    for start, end in [(0, 1), (5 << 20, (5 << 20) + 1234), (len(data) - 10, len(data))]:
        assert any_store.read_range("big/big.bin", start, end) == data[start:end]


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b", "", "a/b c"])
def test_bad_keys_are_refused(local_store: Store, key):
    with pytest.raises(InputError):
        local_store.write_bytes(key, b"x")


def test_dataset_is_published_by_its_manifest(any_store: Store):
    with any_store.new_dataset("things", "one", format="test.thing", format_version=3) as ds:
        ds.write_bytes("part-0.bin", b"abc")
        ds.write_bytes("part-1.bin", b"defg")
        # not visible until the manifest is written
        assert any_store.dataset_names("things") == []
        ds.meta["answer"] = 42
        ds.provenance = provenance("test", {"p": 1}, [{"source": "x", "sha256": "0" * 64}])
    assert any_store.dataset_names("things") == ["one"]
    got = any_store.open_dataset("things", "one")
    m = got.manifest
    assert m["format"] == "test.thing" and m["format_version"] == 3
    assert m["files"]["part-1.bin"] == {"size": 4, "sha256": hashlib.sha256(b"defg").hexdigest()}
    assert m["total_size"] == 7
    assert m["provenance"]["software"] == "sandgrain" and m["provenance"]["parameters"] == {"p": 1}
    assert m["provenance"]["inputs"][0]["source"] == "x"
    assert got.meta == {"answer": 42}
    assert got.read_range("part-1.bin", 1, 3) == b"ef"
    assert got.verify() == []


def test_failed_dataset_leaves_nothing(any_store: Store):
    with (
        pytest.raises(RuntimeError),
        any_store.new_dataset("things", "broken", format="t", format_version=1) as ds,
    ):
        ds.write_bytes("part.bin", b"abc")
        raise RuntimeError("the import failed half-way")
    assert any_store.dataset_names("things") == []
    assert any_store.list("things") == []


def test_replacing_a_dataset_swaps_versions(any_store: Store):
    with any_store.new_dataset("things", "x", format="t", format_version=1) as ds:
        ds.write_bytes("f", b"old")
    with pytest.raises(ConflictError):
        any_store.new_dataset("things", "x", format="t", format_version=1)
    old = any_store.open_dataset("things", "x")
    with any_store.new_dataset("things", "x", format="t", format_version=1, replace=True) as ds:
        ds.write_bytes("f", b"new")
        assert any_store.open_dataset("things", "x").read_bytes("f") == b"old"
    new = any_store.open_dataset("things", "x")
    assert new.read_bytes("f") == b"new" and new.prefix != old.prefix
    # the old version's files are gone, only the new version and the manifest remain
    assert sorted(any_store.list("things/x")) == sorted(
        [f"{new.prefix}/f", f"{new.prefix}/manifest.json", "things/x/manifest.json"]
    )
    any_store.delete_dataset("things", "x")
    assert any_store.dataset_names("things") == []
    with pytest.raises(NotFoundError):
        any_store.open_dataset("things", "x")


def test_verify_detects_corruption(local_store: Store):
    with local_store.new_dataset("things", "x", format="t", format_version=1) as ds:
        ds.write_bytes("f", b"abcdef")
    got = local_store.open_dataset("things", "x")
    local_store.write_bytes(got.key("f"), b"abcdeF")
    assert got.verify() == ["f: checksum mismatch"]


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from sandgrain.storage import Store
    store = Store(sys.argv[1])
    def endless(fh):
        fh.write(b"partial" * 1000)
        fh.flush()
        print("writing", flush=True)
        while True:
            fh.write(b"x" * 65536)
    store._local_atomic(store.path("obj.bin"), endless)
    """
)


def test_killed_writer_leaves_old_object_intact(local_store: Store):
    """A writer killed mid-write (SIGKILL) never exposes a half-written object."""
    local_store.write_bytes("obj.bin", b"complete old version")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, local_store.url], stdout=subprocess.PIPE
    )
    assert proc.stdout.readline().strip() == b"writing"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert local_store.read_bytes("obj.bin") == b"complete old version"
    assert local_store.list() == ["obj.bin"]  # the temporary file is never listed


def test_killed_dataset_import_is_invisible(local_store: Store):
    script = textwrap.dedent(
        """
        import os, sys
        from sandgrain.storage import Store
        store = Store(sys.argv[1])
        with store.new_dataset("things", "half", format="t", format_version=1) as ds:
            ds.write_bytes("part-0", b"data")
            print("wrote", flush=True)
            os.kill(os.getpid(), 9)
        """
    )
    out = subprocess.run([sys.executable, "-c", script, local_store.url], capture_output=True)
    assert out.returncode == -9 and out.stdout.strip() == b"wrote"
    assert local_store.dataset_names("things") == []
    with pytest.raises(NotFoundError):
        local_store.open_dataset("things", "half")


def test_unreachable_s3_endpoint_is_a_clear_error():
    from sandgrain.errors import StorageError

    store = Store(
        "s3://nowhere-bucket/p", {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}}
    )
    with pytest.raises(StorageError, match="cannot access 'x'.*Could not connect"):
        store.read_bytes("x")


def test_racing_imports_of_one_name_cannot_both_win(any_store: Store):
    first = any_store.new_dataset("things", "same", format="t", format_version=1)
    second = any_store.new_dataset("things", "same", format="t", format_version=1)
    with first:
        first.write_bytes("f", b"first")
    with pytest.raises(ConflictError), second:
        second.write_bytes("f", b"second")
    assert any_store.open_dataset("things", "same").read_bytes("f") == b"first"
    assert sorted(any_store.list("things/same")) == sorted(
        [f"{first.prefix}/f", f"{first.prefix}/manifest.json", "things/same/manifest.json"]
    )


def test_pinned_version_and_stale_versions(any_store: Store):
    with any_store.new_dataset("things", "x", format="t", format_version=1) as ds:
        ds.write_bytes("f", b"v1")
    v1 = any_store.open_dataset("things", "x").manifest["version"]
    assert any_store.open_dataset("things", "x", v1).read_bytes("f") == b"v1"
    # a version left by an import killed two hours ago
    any_store.write_bytes("things/x/v20000101T000000Z-deadbeef/f", b"orphan")
    with any_store.new_dataset("things", "x", format="t", format_version=1, replace=True) as ds:
        ds.write_bytes("f", b"v2")
    assert not any_store.list("things/x/v20000101T000000Z-deadbeef")
    with pytest.raises(NotFoundError, match="replaced or removed while in use"):
        any_store.open_dataset("things", "x", v1)


def test_s3_listings_see_other_writers(s3_store: Store):
    other = Store(s3_store.url, s3_store.storage_options)
    assert s3_store.dataset_names("things") == []
    with other.new_dataset("things", "late", format="t", format_version=1) as ds:
        ds.write_bytes("f", b"x")
    assert s3_store.dataset_names("things") == ["late"]
    other.delete_dataset("things", "late")
    assert not s3_store.has_dataset("things", "late")


def test_manifest_listing_missing_files_is_not_published(any_store: Store):
    """Fan-out workers that cannot see the store write their files elsewhere: the coordinator's
    manifest then lists files that are not there, and nothing may be published."""
    with any_store.new_dataset("things", "x", format="t", format_version=1) as ds:
        ds.write_bytes("f", b"v1")
    with (
        pytest.raises(StorageError) as info,
        any_store.new_dataset("things", "x", format="t", format_version=1, replace=True) as ds,
    ):
        ds.write_bytes("individuals.json", b"[]")
        for i in range(7):  # what tasks reported writing, on their own disks
            ds.add_written(f"variants/p{i:06d}.parquet", 100 + i, "0" * 64)
    message = str(info.value)
    assert message.startswith("not published: 7 of 8 files listed by the manifest are missing")
    assert f"from {any_store.url}/{ds.prefix}: variants/p000000.parquet, " in message
    assert "… (2 more)" in message and "use a store every worker can reach" in message
    assert "\n" not in message
    # the old version is still the dataset; the new one left nothing behind
    assert any_store.open_dataset("things", "x").read_bytes("f") == b"v1"
    assert not any_store.list(ds.prefix)


def test_manifest_with_a_wrong_size_or_checksum_is_not_published(any_store: Store):
    with (
        pytest.raises(StorageError, match=r"1 of 2 files .* differ .*: b \(3 bytes, not 4\)"),
        any_store.new_dataset("things", "x", format="t", format_version=1) as ds,
    ):
        ds.write_bytes("a", b"aaa")
        any_store.write_bytes(f"{ds.prefix}/b", b"bbb")
        ds.add_written("b", 4, hashlib.sha256(b"bbbb").hexdigest())
    with (
        pytest.raises(StorageError, match=r"differ .*: b \(checksum differs\)"),
        any_store.new_dataset("things", "x", format="t", format_version=1) as ds,
    ):
        any_store.write_bytes(f"{ds.prefix}/b", b"bbb")
        ds.add_written("b", 3, hashlib.sha256(b"BBB").hexdigest())
    assert any_store.dataset_names("things") == []
    assert any_store.list("things") == []


def test_large_datasets_are_published_after_a_size_check_only(local_store: Store, monkeypatch):
    """Above REHASH_BYTES the writers' checksums are trusted (re-reading would cost as much as
    the write); sizes are still checked, and ``Dataset.verify`` re-hashes on demand."""
    monkeypatch.setattr(storage, "REHASH_BYTES", 2)
    with local_store.new_dataset("things", "x", format="t", format_version=1) as ds:
        local_store.write_bytes(f"{ds.prefix}/b", b"bbb")
        ds.add_written("b", 3, hashlib.sha256(b"BBB").hexdigest())
    assert local_store.open_dataset("things", "x").verify() == ["b: checksum mismatch"]


def test_a_store_reopened_from_a_reference_is_never_created(tmp_path):
    client = Store(str(tmp_path / "store"))  # the client creates its store on purpose
    assert (tmp_path / "store").is_dir()
    assert Store.from_reference(client.reference()).url == client.url
    gone = Store(str(tmp_path / "elsewhere")).reference()
    (tmp_path / "elsewhere").rmdir()
    with pytest.raises(StorageError, match=r"the store .*elsewhere does not exist on this worker"):
        Store.from_reference(gone)
    assert not (tmp_path / "elsewhere").exists()
