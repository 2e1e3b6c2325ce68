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


def _demo(store, tmp_path, echo=lambda line: None) -> DemoContext:
    """Import the SARS-CoV-2 demo genome into ``store`` and run the strains demo step; returns
    the context, to run it again."""
    (sars,) = [d for d in demo_genomes(DATA) if d.name == DEMO_REFERENCE]
    add_genome(store, sars.name, sars.fasta, annotation=sars.annotation, aliases=sars.aliases,
               assembly=sars.assembly)  # fmt: skip

    @contextlib.contextmanager
    def progress(_label):
        yield lambda done, total: None

    ctx = DemoContext(
        store=store, data=DATA, settings=Settings(home=str(tmp_path), executor="serial"),
        progress=progress, byte_progress=progress, echo=echo,
    )  # fmt: skip
    demo(ctx)
    return ctx


def test_demo_adds_the_shared_genomes_and_their_map(tmp_path):
    store = Store(str(tmp_path / "store"))
    lines: list[str] = []
    ctx = _demo(store, tmp_path, lines.append)
    coll = Collection.open(store, DEMO_COLLECTION)
    assert len(coll.strains()) == 418
    assert coll.metadata().num_rows == 418
    built = load_map(store, DEMO_COLLECTION)
    assert len(built.strains) == 418 and built.coords.shape[0] == 418
    version = store.open_dataset("strains", DEMO_COLLECTION).manifest["version"]
    demo(ctx)  # again: nothing redone
    assert store.open_dataset("strains", DEMO_COLLECTION).manifest["version"] == version
    assert any("up to date" in line for line in lines)


def test_drift_and_map_leave_bad_genomes_out_of_the_fit(cli, tmp_path):
    """Bad genomes (missing data, frame shifts) do not shape the drift rate or the map's axes
    by default; ``--qc all`` counts them; every genome is still placed on the map."""
    import json

    from sandgrain.strains.embed import PANEL_QC

    store = cli.store
    _demo(store, tmp_path)
    statuses = Collection.open(store, DEMO_COLLECTION).qc_table().column("status").to_pylist()
    bad = statuses.count("bad")
    assert 0 < bad < len(statuses)
    code, out, err = cli("strains", "drift", "-c", DEMO_COLLECTION, "--json")
    assert code == 0, err
    default = json.loads(out)
    assert default["qc_left_out"] == bad
    code, out, err = cli("strains", "drift", "-c", DEMO_COLLECTION, "--json", "--qc", "all")
    everyone = json.loads(out)
    assert everyone["qc_left_out"] == 0 and everyone["n"] > default["n"]
    code, _, err = cli("strains", "drift", "-c", DEMO_COLLECTION, "--qc", "great")
    assert code != 0 and "--qc" in err
    built = load_map(store, DEMO_COLLECTION)
    assert len(built.strains) == len(statuses)  # every genome placed
    status_of = dict(
        zip(Collection.open(store, DEMO_COLLECTION).qc_table().column("strain").to_pylist(),
            statuses, strict=True)
    )  # fmt: skip
    panel = [s for s, p in zip(built.strains, built.panel, strict=True) if p]
    assert panel and all(status_of[s] in PANEL_QC for s in panel)
