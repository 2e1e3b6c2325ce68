"""``sandgrain demo`` (and ``make run``) puts the 418 shared SARS-CoV-2 genomes in a collection
with its k-mer map, and leaves them alone when run again."""

from __future__ import annotations

import contextlib

from conftest import DATA

from sandgrain.config import Settings
from sandgrain.genome.store import add_genome, demo_genomes
from sandgrain.registry import DemoContext
from sandgrain.storage import Store
from sandgrain.strains.collection import Collection
from sandgrain.strains.demo import DEMO_COLLECTION, DEMO_REFERENCE, demo
from sandgrain.strains.embed import load_map


def test_demo_adds_the_shared_genomes_and_their_map(tmp_path):
    store = Store(str(tmp_path / "store"))
    (sars,) = [d for d in demo_genomes(DATA) if d.name == DEMO_REFERENCE]
    add_genome(store, sars.name, sars.fasta, annotation=sars.annotation, aliases=sars.aliases,
               assembly=sars.assembly)  # fmt: skip
    lines: list[str] = []

    @contextlib.contextmanager
    def progress(_label):
        yield lambda done, total: None

    ctx = DemoContext(
        store=store, data=DATA, settings=Settings(home=str(tmp_path), executor="serial"),
        progress=progress, byte_progress=progress, echo=lines.append,
    )  # fmt: skip
    demo(ctx)
    coll = Collection.open(store, DEMO_COLLECTION)
    assert len(coll.strains()) == 418
    assert coll.metadata().num_rows == 418
    built = load_map(store, DEMO_COLLECTION)
    assert len(built.strains) == 418 and built.coords.shape[0] == 418
    version = store.open_dataset("strains", DEMO_COLLECTION).manifest["version"]
    demo(ctx)  # again: nothing redone
    assert store.open_dataset("strains", DEMO_COLLECTION).manifest["version"] == version
    assert any("up to date" in line for line in lines)
