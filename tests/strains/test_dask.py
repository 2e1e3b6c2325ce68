"""The same ``strains add`` plan on a Dask cluster: the calls equal those of the serial run.

The cluster is a real local one (``dask-local:2``: a scheduler and two single-threaded worker
processes); the add reaches it by its ``dask://HOST:PORT`` URL, as it would reach a cluster
started elsewhere (``dask scheduler`` / ``dask worker``). Nothing in the strains code knows
which executor runs it. The plan's staged batches are checked here too (a batch whose genomes
are all replaced later in the FASTA).
"""

from __future__ import annotations

import pytest
from strains_fixtures import REF_FASTA, REF_GB, genomes

from sandgrain.fanout import open_executor
from sandgrain.storage import Store
from sandgrain.strains.collection import Collection, add_genomes


@pytest.fixture(scope="module")
def dask_url():
    executor = open_executor("dask-local:2")
    try:
        yield "dask://" + executor.scheduler_address.removeprefix("tcp://")
    finally:
        executor.close()


def _rows(store: Store, name: str) -> list[dict]:
    return [c.to_dict() for batch in Collection.open(store, name).iter_calls() for c in batch]


def test_add_on_a_dask_cluster_calls_as_the_serial_run(tmp_path, dask_url):
    from sandgrain.genome.store import add_genome

    store = Store(str(tmp_path / "store"))
    add_genome(store, "MN908947", str(REF_FASTA), annotation=str(REF_GB))
    records = list(genomes()[:24])
    # an id given twice: with "replace" its last copy wins, on every executor
    records.append((records[3][0], genomes()[30][1]))
    fasta = tmp_path / "a.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in records))
    kwargs = dict(reference="MN908947", fasta=fasta, batch=5, on_duplicate="replace")
    serial = add_genomes(store, "serial", executor="serial", **kwargs)
    on_dask = add_genomes(store, "dask", executor=dask_url, **kwargs)
    assert on_dask.added == serial.added == 24
    assert on_dask.statuses == serial.statuses
    rows = _rows(store, "dask")
    assert rows == _rows(store, "serial")
    assert len(rows) == 24
    replaced = next(r for r in rows if r["strain"] == records[3][0])
    assert replaced["length"] == len(records[-1][1].replace("-", ""))
    assert store.list("scratch") == []


def test_a_batch_whose_genomes_all_come_again_is_not_run(tmp_path):
    """With ``replace``, the last copy of an id wins even when every genome of a staged batch
    is replaced by a later one: the add equals that of the FASTA without the earlier copies."""
    from sandgrain.genome.store import add_genome

    store = Store(str(tmp_path / "store"))
    add_genome(store, "MN908947", str(REF_FASTA), annotation=str(REF_GB))
    g = genomes()
    again = [(g[0][0], g[10][1]), (g[1][0], g[11][1])]
    repeated = tmp_path / "repeated.fa"
    repeated.write_text("".join(f">{n}\n{s}\n" for n, s in [g[0], g[1], g[2], g[3], *again]))
    deduplicated = tmp_path / "deduplicated.fa"
    deduplicated.write_text("".join(f">{n}\n{s}\n" for n, s in [g[2], g[3], *again]))
    kwargs = dict(reference="MN908947", executor="serial", batch=2)
    report = add_genomes(store, "r", fasta=repeated, on_duplicate="replace", **kwargs)
    add_genomes(store, "d", fasta=deduplicated, **kwargs)
    assert report.added == 4 and report.total == 4
    assert _rows(store, "r") == _rows(store, "d")
    assert len(Collection.open(store, "r").parts()) == 2  # the first batch made no calls file
