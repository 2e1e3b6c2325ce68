"""On object storage a search reads only the index buckets its guides can hit, and finds exactly
what the local store's search and a plain scan find."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import SARS_FASTA, YEAST_FASTA
from offtarget_reference import reference_offtargets

from sandgrain.genome.store import add_genome
from sandgrain.guides import search as search_mod
from sandgrain.guides.search import search_table
from sandgrain.guides.siteindex import (
    RangedPartition,
    SiteFamily,
    build_index,
    merge_ranges,
    npy_layout,
)

SPCAS9 = SiteFamily(("NGG", "NAG"), 20, "3")
NGG = SiteFamily(("NGG",), 20, "3")


def as_set(table):
    return {
        (s.guide, s.chrom, s.pos0, s.strand, s.mismatches, s.protospacer, s.pam, s.pam_pattern)
        for s in table.sites()
    }


def sars_seqs() -> dict[str, str]:
    lines = SARS_FASTA.read_text().splitlines()
    return {lines[0][1:].split()[0]: "".join(lines[1:]).upper()}


def guides_of(seq: str, n: int, rng: random.Random) -> list[str]:
    """Protospacers next to a GG in the genome, some with one or two substitutions."""
    out = []
    seq = seq.upper()
    while len(out) < n:
        p = rng.randrange(0, len(seq) - 23)
        if seq[p + 21 : p + 23] != "GG" or "N" in seq[p : p + 20]:
            continue
        g = list(seq[p : p + 20])
        for _ in range(rng.choice([0, 1, 2])):
            g[rng.randrange(20)] = rng.choice("ACGT")
        out.append("".join(g))
    return out


@pytest.fixture(scope="module")
def sars_on_both(s3_server, tmp_path_factory):
    """The SARS-CoV-2 genome and its index (3 partitions) on a local store and on loopback S3."""
    from sandgrain.storage import Store

    url = s3_server.create_bucket("ranged-search")
    s3 = Store(url + "/sg", {"client_kwargs": {"endpoint_url": s3_server.endpoint}})
    local = Store(str(tmp_path_factory.mktemp("ranged") / "store"))
    out = {}
    for name, store in (("local", local), ("s3", s3)):
        genome = add_genome(store, "sars", str(SARS_FASTA))
        index = build_index(genome, SPCAS9, executor="serial", partition_bp=12_000)
        out[name] = (genome, index)
    return out


@pytest.fixture(scope="module")
def yeast_on_both(s3_server, tmp_path_factory):
    """Yeast and its SpCas9 index (3 partitions, 46 MB) on a local store and on loopback S3."""
    from sandgrain.storage import Store

    url = s3_server.create_bucket("ranged-search-yeast")
    s3 = Store(url + "/sg", {"client_kwargs": {"endpoint_url": s3_server.endpoint}})
    local = Store(str(tmp_path_factory.mktemp("ranged-yeast") / "store"))
    out = {}
    for name, store in (("local", local), ("s3", s3)):
        genome = add_genome(store, "yeast", str(YEAST_FASTA))
        index = build_index(genome, NGG, executor="serial", partition_bp=6_000_000)
        out[name] = (genome, index)
    return out


def test_s3_search_reads_few_bytes_and_finds_the_same_hits(yeast_on_both):
    (local_genome, _), (s3_genome, s3_index) = yeast_on_both["local"], yeast_on_both["s3"]
    seqs = {c["name"]: local_genome.sequence(c["name"], 0, c["length"])
            for c in local_genome.chromosomes}
    rng = random.Random(7)
    guides = [g for c in ("IV", "XII") for g in guides_of(seqs[c], 2, rng)]
    index_bytes = s3_index.manifest["total_size"]
    for k in (0, 3, 4):
        on_s3 = search_table(s3_genome, guides, NGG, k, executor="serial")
        on_disk = search_table(local_genome, guides, NGG, k, executor="serial")
        assert as_set(on_s3) == as_set(on_disk)
        if k == 3:
            assert as_set(on_s3) == reference_offtargets(seqs, guides, ["NGG"], 20, "3", k)
        assert {r["mode"] for r in on_disk.reads} == {"local"}
        read = sum(r["bytes"] for r in on_s3.reads)
        assert len(on_s3.reads) == 3 and on_s3.plan_summary().startswith("3 tasks")
        # Mostly bucket offsets are read (4 MB a side a partition whatever its size; half of
        # this index), of which the key variants of k = 3 touch a good part; a partition whose
        # ranges would cost more than half of it is read whole into the worker cache (the last one,
        # 0.1 Mbp, at k = 3), and found there after
        assert {r["mode"] for r in on_s3.reads} <= {"ranges", "whole", "cached"}
        if k == 0:
            assert {r["mode"] for r in on_s3.reads} == {"ranges"}
        if k < 4:
            assert 0 < read < index_bytes / (100 if k == 0 else 2), (k, read, index_bytes)
        else:
            # at worst the offsets read before deciding, then the partition whole
            assert read < index_bytes * 1.25
    assert {s.mismatches for s in on_s3.sites()} >= {0, 4}


def test_s3_search_of_a_small_genome_equals_a_plain_scan(sars_on_both, monkeypatch):
    """Several partitions, two PAMs, N-sites, every mismatch count: the same hits by ranges
    (forced: a genome this small is mostly bucket offsets, which many key variants cover)."""
    monkeypatch.setattr(search_mod, "WHOLE_FRACTION", float("inf"))
    seqs = sars_seqs()
    guides = guides_of(next(iter(seqs.values())), 4, random.Random(7))
    (local_genome, _), (s3_genome, _) = sars_on_both["local"], sars_on_both["s3"]
    for k in range(6):
        on_s3 = search_table(s3_genome, guides, SPCAS9, k, executor="serial")
        on_disk = search_table(local_genome, guides, SPCAS9, k, executor="serial")
        want = reference_offtargets(seqs, guides, list(SPCAS9.pams), 20, "3", k)
        assert as_set(on_s3) == as_set(on_disk) == want
        assert {r["mode"] for r in on_s3.reads} == {"ranges"}
    assert any(s.mismatches > 0 for s in on_s3.sites())


def test_byte_counts_match_what_the_store_served(sars_on_both, monkeypatch):
    """The task's own count equals the bytes the store returned (a wrapper counts them)."""
    genome, index = sars_on_both["s3"]
    served = []
    store_cls = type(index.store)
    read_range, read_ranges = store_cls.read_range, store_cls.read_ranges

    def counted_range(self, key, start, end):
        data = read_range(self, key, start, end)
        served.append(len(data)) if key.startswith("siteindex/") else None
        return data

    def counted_ranges(self, key, ranges):
        data = read_ranges(self, key, ranges)
        served.extend(len(d) for d in data) if key.startswith("siteindex/") else None
        return data

    monkeypatch.setattr(store_cls, "read_range", counted_range)
    monkeypatch.setattr(store_cls, "read_ranges", counted_ranges)
    guides = guides_of(next(iter(sars_seqs().values())), 3, random.Random(3))
    table = search_table(genome, guides, SPCAS9, 3, executor="serial")
    assert sum(served) == sum(r["bytes"] for r in table.reads)
    assert len(served) == sum(r["requests"] for r in table.reads)


def test_many_guides_read_the_partition_whole_into_the_worker_cache(
    sars_on_both, tmp_path, monkeypatch
):
    """Past the threshold a task downloads the partition into the worker cache
    (SANDGRAIN_CACHE_DIR) and the next search finds it there, reading nothing."""
    monkeypatch.setenv("SANDGRAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(search_mod, "WHOLE_FRACTION", 0.0)
    search_mod._load_partition.cache_clear()  # this process mapped copies of another cache
    genome, index = sars_on_both["s3"]
    seqs = sars_seqs()
    guides = guides_of(next(iter(seqs.values())), 3, random.Random(5))
    first = search_table(genome, guides, SPCAS9, 3, executor="serial")
    assert {r["mode"] for r in first.reads} == {"whole"}
    cached = list((tmp_path / "cache" / "siteindex").rglob("*.npy"))
    assert len(cached) == len(index.manifest["files"])
    again = search_table(genome, guides, SPCAS9, 3, executor="serial")
    assert {r["mode"] for r in again.reads} == {"cached"}
    assert sum(r["bytes"] for r in again.reads) == 0
    want = reference_offtargets(seqs, guides, list(SPCAS9.pams), 20, "3", 3)
    assert as_set(first) == as_set(again) == want


def test_ranged_rows_equal_the_arrays(sars_on_both):
    """Row ranges read from the stored .npy files equal slices of the arrays."""
    _, index = sars_on_both["s3"]
    reader = RangedPartition(index, 1)
    whole = np.load(index.local_path("part-00001/a_rest.npy"))
    rng = np.random.default_rng(1)
    starts = np.sort(rng.integers(0, len(whole), 50))
    ends = starts + rng.integers(0, 30, 50)
    ends = np.minimum(ends, len(whole))
    got = reader.rows("a_rest", starts, ends)
    want = [whole[a:b] for a, b in zip(starts, ends, strict=True)]
    assert np.array_equal(got, np.concatenate(want))
    codes = np.load(index.local_path("part-00001/n_codes.npy"))
    assert np.array_equal(reader.whole("n_codes"), codes)


def test_merge_ranges_and_npy_headers(tmp_path):
    m0, m1 = merge_ranges(np.array([50, 0, 10, 200]), np.array([60, 5, 12, 200]), gap=10)
    assert m0.tolist() == [0, 50] and m1.tolist() == [12, 60]  # empty range dropped
    arr = np.arange(12, dtype=np.uint16).reshape(4, 3)
    np.save(tmp_path / "x.npy", arr)
    data = (tmp_path / "x.npy").read_bytes()
    assert npy_layout(data[:20]) is None  # header not complete yet
    lay = npy_layout(data)
    assert lay.shape == (4, 3) and lay.dtype == np.uint16 and lay.row_bytes == 6
    assert data[lay.offset :] == arr.tobytes()
