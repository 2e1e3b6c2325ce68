"""Gene tables per assembly: import, look-up by gene name, and the size-bounded cache."""

from __future__ import annotations

import pytest

from sandgrain.errors import InputError
from sandgrain.genome import gene_tables
from sandgrain.genome.gene_tables import (
    BoundedCache,
    gene_regions,
    import_gene_table,
    parse_gene_list,
)
from sandgrain.storage import Store


def _import(store: Store, tmp_path, assembly: str, text: str, name: str = "genes.tsv") -> int:
    path = tmp_path / f"{assembly}-{name}"
    path.write_text(text)
    return import_gene_table(store, assembly, path, path.read_bytes())


@pytest.fixture
def small_cache(monkeypatch) -> BoundedCache:
    cache = BoundedCache(2)
    monkeypatch.setattr(gene_tables, "_cache", cache)
    return cache


# -- the cache itself -------------------------------------------------------------------------


def test_cache_keeps_the_most_recently_used_entries():
    cache = BoundedCache(2)
    cache.put("a", "v1", 1)
    cache.put("b", "v1", 2)
    assert cache.get("a", "v1") == 1  # "a" is now the most recently used
    cache.put("c", "v1", 3)
    assert len(cache) == 2
    assert "b" not in cache and cache.get("a", "v1") == 1 and cache.get("c", "v1") == 3


def test_cache_answers_only_for_the_version_asked():
    cache = BoundedCache(4)
    cache.put("a", "v1", 1)
    assert cache.get("a", "v2") is None
    cache.put("a", "v2", 2)
    assert cache.get("a", "v1") is None and cache.get("a", "v2") == 2 and len(cache) == 1
    cache.discard("a")
    cache.discard("never there")
    assert len(cache) == 0


def test_cache_needs_room_for_one_entry():
    with pytest.raises(ValueError):
        BoundedCache(0)


def test_cache_stays_bounded_under_many_keys():
    cache = BoundedCache(3)
    for i in range(100):
        cache.put(("store", f"asm{i}"), "v", i)
        assert len(cache) <= 3
    assert [cache.get(("store", f"asm{i}"), "v") for i in (97, 98, 99)] == [97, 98, 99]


# -- gene tables in a store -------------------------------------------------------------------


def test_gene_regions_by_assembly_alias(local_store, tmp_path, small_cache):
    n = _import(local_store, tmp_path, "hg19", "20\t100\t200\tGENE1\n20\t300\t400\tgene2\n")
    assert n == 2
    assert local_store.has_dataset(gene_tables.KIND, "GRCh37")
    assert gene_regions([local_store], "GRCh37.p13", "gene1") == [("20", 100, 200)]
    assert gene_regions([local_store], "b37", "GENE2") == [("20", 300, 400)]
    assert gene_regions([local_store], "GRCh37", "NOPE") == []
    assert gene_regions([local_store], "GRCh38", "GENE1") is None  # no table, no genome
    with pytest.raises(InputError, match="is not a gene name"):
        gene_regions([local_store], "GRCh37", "two words")


def test_loaded_tables_are_bounded_and_replaced_tables_reloaded(local_store, tmp_path, small_cache):
    for i, assembly in enumerate(("GRCh37", "GRCh38", "R64")):
        _import(local_store, tmp_path, assembly, f"1\t{i}\t{i + 10}\tG\n")
        assert gene_regions([local_store], assembly, "G") == [("1", i, i + 10)]
        assert len(small_cache) <= 2
    assert (local_store.url, "GRCh37") not in small_cache  # the least recently used went
    assert gene_regions([local_store], "GRCh37", "G") == [("1", 0, 10)]  # read again
    _import(local_store, tmp_path, "GRCh37", "2\t5\t50\tG\n", name="new.tsv")
    assert gene_regions([local_store], "GRCh37", "G") == [("2", 5, 50)]


def test_gene_tables_from_gtf(local_store, tmp_path, small_cache):
    gtf = '1\tsrc\tgene\t11\t20\t.\t+\t.\tgene_id "G1"; gene_name "ABC";\n'
    assert _import(local_store, tmp_path, "GRCh38", gtf, name="genes.gtf") == 1
    assert gene_regions([local_store], "hg38", "abc") == [("1", 10, 20)]


def test_gene_list_errors():
    with pytest.raises(InputError, match="line 1: expected 'chrom start end symbol'"):
        parse_gene_list(b"1 x 2 A\n", "g.tsv")
    with pytest.raises(InputError, match="end 5 is not after start 9"):
        parse_gene_list(b"# header\n1 9 5 A\n", "g.tsv")
    with pytest.raises(InputError, match="no genes found"):
        parse_gene_list(b"track name=x\n", "g.tsv")
