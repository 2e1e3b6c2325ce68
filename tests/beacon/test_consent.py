"""Dynamic consent in the store: one object per revoked person, so concurrent revocations are
never lost; any sample name is a safe key; the older single-object layout is read and folded in."""

from __future__ import annotations

import threading

import pytest

from sandgrain.beacon import consent
from sandgrain.beacon.ingest import ingest
from sandgrain.beacon.query import VariantQuery, query_variants
from sandgrain.beacon.store import BeaconCatalog
from sandgrain.errors import NotFoundError
from sandgrain.storage import Store

LONG = "S" * 400  # longer than a file name may be, once encoded
ODD = "patient 7/α+β=?"  # spaces, a slash, non-ASCII, '+', '=' and '?'
SAMPLES = [f"P{i:02d}" for i in range(40)] + [LONG, ODD]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A dataset of 42 people who all carry one allele (so the carrier count shows revocations)."""
    root = tmp_path_factory.mktemp("consent")
    vcf = root / "c.vcf"
    header = "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                        *SAMPLES])  # fmt: skip
    row = "\t".join(["1", "1000", ".", "A", "G", ".", "PASS", ".", "GT", *["0/1"] * len(SAMPLES)])
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=1,length=5000>\n"
                   '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
                   f"{header}\n{row}\n")  # fmt: skip
    store = Store(str(root / "store"))
    ingest(store, "c", vcf, assembly="GRCh37", executor="serial", check_ref=False)
    return store


def carriers(store) -> int:
    catalog = BeaconCatalog([store], ttl=0)
    q = VariantQuery(reference_name="1", start=[999], reference_bases="A", alternate_bases="G")
    rows = query_variants(catalog, [catalog.get("c")], q, carriers=True)[0].rows
    return rows[0]["carriers"] if rows else 0


def test_concurrent_revocations_are_all_kept(dataset):
    people = SAMPLES[:40]
    barrier = threading.Barrier(8)

    def revoke(chunk):
        barrier.wait()
        for who in chunk:
            consent.revoke(dataset, "c", who, by="admin", reason="withdrawn")

    threads = [threading.Thread(target=revoke, args=(people[i::8],)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert consent.revoked_ids(dataset, "c") == set(people)
        assert carriers(dataset) == 2
        details = consent.revoked(dataset, "c")
        assert set(details) == set(people) and details["P07"]["reason"] == "withdrawn"
    finally:
        for who in people:
            consent.restore(dataset, "c", who)
    assert consent.revoked_ids(dataset, "c") == set() and carriers(dataset) == 42


def test_any_sample_name_round_trips(dataset):
    try:
        for who in (LONG, ODD):
            first = consent.revoke(dataset, "c", who, reason="first")
            assert consent.revoke(dataset, "c", who, reason="again") == first  # first one stands
        assert consent.revoked_ids(dataset, "c") == {LONG, ODD}
        assert carriers(dataset) == 40
    finally:
        assert consent.restore(dataset, "c", LONG) and consent.restore(dataset, "c", ODD)
    assert consent.restore(dataset, "c", ODD) is False
    with pytest.raises(NotFoundError):
        consent.revoke(dataset, "c", "nobody")


def test_the_single_object_layout_is_read_and_folded_in(dataset):
    dataset.write_json("beacon-consent/c.json",
                       {"dataset": "c", "revoked": {"P01": {"time": "t", "by": "", "reason": ""}}})
    try:
        assert consent.revoked_ids(dataset, "c") == {"P01"} and carriers(dataset) == 41
        consent.revoke(dataset, "c", "P02")
        assert not dataset.exists("beacon-consent/c.json")
        assert consent.revoked_ids(dataset, "c") == {"P01", "P02"}
        assert consent.restore(dataset, "c", "P01")
        assert consent.revoked_ids(dataset, "c") == {"P02"}
    finally:
        consent.forget(dataset, "c")
    assert consent.revoked_ids(dataset, "c") == set()
