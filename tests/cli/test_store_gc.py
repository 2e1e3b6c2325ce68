"""``sandgrain store gc``: what killed runs left in the store is listed, then freed on request,
and nothing else is ever touched."""

from __future__ import annotations

import json
import os
import time

import pytest

from sandgrain.storage import Store

HOUR = 3600


def _age(store: Store, prefix: str, seconds: float) -> None:
    """Make every file under ``prefix`` look last written ``seconds`` ago."""
    then = time.time() - seconds
    for key in store.list(prefix):
        os.utime(store.path(key), (then, then))


def _killed_run(store: Store, kind: str, name: str, started: str, data: bytes) -> str:
    """A version written by a run killed before it published: files, no manifest."""
    writer = store.new_dataset(kind, name, format="test", format_version=1, replace=True)
    writer.version = f"v{started}-deadbeef"
    writer.write_bytes("part-0.bin", data)
    writer.write_bytes("part-1.bin", data)
    return writer.prefix


@pytest.fixture
def littered(cli):
    """A store with a published genome (and its own old partial version), a never-published
    index killed two hours ago, one killed a minute ago, and an interrupted write."""
    store = cli.store
    with store.new_dataset("genomes", "yeast", format="test", format_version=1) as ds:
        ds.write_bytes("sequence.bin", b"ACGT" * 100)
    published = store.open_dataset("genomes", "yeast").manifest["version"]
    old = {
        "genome": _killed_run(store, "genomes", "yeast", "20200101T000000Z", b"x" * 1000),
        "index": _killed_run(store, "siteindex", "yeast-spcas9", "20200101T000000Z", b"y" * 500),
    }
    for prefix in old.values():
        _age(store, prefix, 2 * HOUR)
    young = _killed_run(store, "siteindex", "sars-spcas9", time.strftime("%Y%m%dT%H%M%SZ",
                        time.gmtime()), b"z" * 10)  # fmt: skip
    tmp = store.path("genomes/yeast/.manifest.json.tmp-0123abcd")
    with open(tmp, "wb") as fh:
        fh.write(b"{half")
    os.utime(tmp, (time.time() - 2 * HOUR,) * 2)
    return {"published": published, "old": old, "young": young}


def test_dry_run_lists_what_killed_runs_left_and_removes_nothing(cli, littered):
    before = cli.store.list()
    code, out, err = cli("store", "gc")
    assert code == 0, err
    assert cli.store.list() == before
    for prefix in littered["old"].values():
        assert prefix in out
    assert littered["young"] not in out
    assert littered["published"] not in out
    assert ".manifest.json.tmp-0123abcd" in out
    assert err.strip().splitlines() == [
        "would free 3.0 kB: 2 partial versions and 1 temporary file (genomes/yeast, "
        "siteindex/yeast-spcas9), older than 1 h (a dry run: add --delete to remove them)"
    ]


def test_json_reports_counts_and_bytes_per_dataset(cli, littered):
    code, out, _ = cli("store", "gc", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["deleted"] is False
    assert report["count"] == 3
    assert report["bytes"] == 2000 + 1000 + 5
    assert report["datasets"] == {
        "genomes/yeast": {"count": 2, "files": 3, "bytes": 2005},
        "siteindex/yeast-spcas9": {"count": 1, "files": 2, "bytes": 1000},
    }
    assert {item["key"] for item in report["items"] if item["what"] == "partial version"} == set(
        littered["old"].values()
    )


def test_delete_frees_them_and_keeps_the_published_dataset_and_young_runs(cli, littered):
    store = cli.store
    version = f"genomes/yeast/{littered['published']}"
    published = {k: store.read_bytes(k) for k in store.list(version)}
    code, out, err = cli("store", "gc", "--delete")
    assert code == 0, err
    assert err.startswith("freed 3.0 kB: removed 2 partial versions and 1 temporary file")
    for prefix in littered["old"].values():
        assert store.list(prefix) == []
    # the never-published index leaves no empty folder behind
    assert not os.path.exists(store.path("siteindex/yeast-spcas9"))
    assert store.list(littered["young"])  # a run that may still be going is kept
    ds = store.open_dataset("genomes", "yeast")
    assert ds.manifest["version"] == littered["published"]
    assert {k: store.read_bytes(k) for k in store.list(ds.prefix)} == published
    assert ds.verify() == []
    # and a second pass finds nothing
    code, _, err = cli("store", "gc")
    assert err.startswith("nothing to free")


def test_older_than_hours_and_a_still_written_version(cli, littered):
    store = cli.store
    code, out, _ = cli("store", "gc", "--older-than", "3", "--json")
    assert json.loads(out)["count"] == 0
    # a version started long ago but written a minute ago belongs to a run still going
    _age(store, littered["old"]["index"], 60)
    code, out, _ = cli("store", "gc", "--older-than", "0.5", "--json")
    keys = {item["key"] for item in json.loads(out)["items"]}
    assert littered["old"]["index"] not in keys
    assert littered["old"]["genome"] in keys


def test_a_negative_age_is_refused(cli):
    code, _, err = cli("store", "gc", "--older-than", "-1")
    assert code != 0
    assert err.startswith("sandgrain: error: --older-than must be 0 or more hours")


def test_gc_on_s3(s3_store: Store):
    with s3_store.new_dataset("things", "kept", format="t", format_version=1) as ds:
        ds.write_bytes("f", b"published")
    s3_store.write_bytes("things/lost/v20200101T000000Z-deadbeef/f", b"partial")
    time.sleep(1.1)  # object times have one-second resolution
    report = s3_store.gc(0)
    assert [(i.what, i.key, i.bytes) for i in report.items] == [
        ("partial version", "things/lost/v20200101T000000Z-deadbeef", 7)
    ]
    assert s3_store.list("things/lost")
    s3_store.gc(0, delete=True)
    assert s3_store.list("things/lost") == []
    assert s3_store.open_dataset("things", "kept").read_bytes("f") == b"published"
