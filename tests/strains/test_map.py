"""The k-mer map: PCA on sparse deltas equals a dense PCA, projections never move, refits keep
their bearings, and the map round-trips through the store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from conftest import DATA, SARS_FASTA
from scipy import sparse

from sandgrain.errors import InputError, NotFoundError
from sandgrain.storage import Store
from sandgrain.strains import embed
from sandgrain.strains.embed import (
    align_map,
    build_map,
    fit_map,
    load_map,
    panel_strains,
    reader_from_calls,
    reader_from_profiles,
    second_embedding,
)
from sandgrain.strains.kmers import KmerSpace, ProfileBatch, count_kmers, genome_from_calls
from sandgrain.strains.simulate import SimulationParams, simulate

SARS_REF = DATA / "pathogen/sars-cov-2-ncov-example/reference_seq.fasta"


@pytest.fixture(scope="module")
def reference() -> str:
    return "".join(SARS_REF.read_text().splitlines()[1:])


@pytest.fixture(scope="module")
def genomes(reference):
    """600 synthetic genomes with clades (founder bursts make lineages the map must show)."""
    params = SimulationParams(n=600, seed=11, clade_prob=0.02, saltation=10, bad_fraction=0.0)
    return list(simulate(reference, params))


@pytest.fixture(scope="module")
def space(reference) -> KmerSpace:
    return KmerSpace(reference)


def batches_of(calls, size=97):
    return [calls[i : i + size] for i in range(0, len(calls), size)]


def dense_pca(batch: ProfileBatch, n_components: int):
    """The plain twin: densify the deltas over their k-mers, centre, full SVD."""
    vocab = np.unique(batch.codes)
    d = sparse.csr_matrix(
        (batch.counts.astype(float), np.searchsorted(vocab, batch.codes), batch.indptr),
        shape=(len(batch), len(vocab)),
    ).toarray()
    centred = d - d.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return vocab, centred, s[:n_components] ** 2 / (len(d) - 1), vt[:n_components]


def test_sparse_pca_equals_a_dense_pca_and_scikit_learn(genomes, space):
    batch = space.deltas([g.calls for g in genomes[100:250]])
    kmap = fit_map(batch, 6)
    vocab, centred, eigen, vt = dense_pca(batch, 6)
    assert np.array_equal(kmap.vocabulary, vocab)
    assert np.allclose(kmap.eigenvalues, eigen, rtol=1e-9)
    assert np.isclose(kmap.total_variance, (centred**2).sum() / (len(centred) - 1), rtol=1e-12)
    for mine, theirs in zip(kmap.components, vt, strict=True):
        assert np.allclose(mine, theirs, atol=1e-8) or np.allclose(mine, -theirs, atol=1e-8)
    coords = kmap.project(batch)
    assert np.allclose(np.abs(coords), np.abs(centred @ vt.T), atol=1e-8)
    # scikit-learn's PCA on sparse input (implicit centring, ARPACK) as the outside peer
    from sklearn.decomposition import PCA

    csr = sparse.csr_matrix(
        (batch.counts.astype(float), np.searchsorted(vocab, batch.codes), batch.indptr),
        shape=(len(batch), len(vocab)),
    )
    peer = PCA(6, svd_solver="arpack", random_state=0).fit(csr)
    assert np.allclose(kmap.eigenvalues, peer.explained_variance_, rtol=1e-9)
    assert np.allclose(kmap.explained_variance_ratio, peer.explained_variance_ratio_, rtol=1e-9)
    assert kmap.explained_variance_ratio[0] > kmap.explained_variance_ratio[1] > 0


def read_real_genomes(limit: int) -> list[tuple[str, str]]:
    import gzip

    records: list[tuple[str, str]] = []
    name, seq = None, []
    with gzip.open(SARS_REF.parent / "example_sequences.fasta.gz", "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                if name:
                    records.append((name, "".join(seq)))
                    if len(records) == limit:
                        return records
                name, seq = line[1:].strip(), []
            else:
                seq.append(line.strip())
    records.append((name, "".join(seq)))
    return records[:limit]


def test_real_genomes_whole_profiles_map_like_a_dense_pca(space):
    """The shared SARS-CoV-2 genomes, counted whole (the abstract input): the sparse PCA equals
    the dense one, and projected genomes keep their place."""
    real = [(name, count_kmers(seq)) for name, seq in read_real_genomes(120)]
    read = reader_from_profiles(lambda: real, space.profile, space.fingerprint, batch=50)
    batch = ProfileBatch.concat(list(read(None)))
    kmap = fit_map(batch, 5)
    _, centred, eigen, vt = dense_pca(batch, 5)
    assert np.allclose(kmap.eigenvalues, eigen, rtol=1e-9)
    assert np.allclose(np.abs(kmap.project(batch)), np.abs(centred @ vt.T), atol=1e-8)
    older = reader_from_profiles(lambda: real[:80], space.profile, space.fingerprint)
    first = build_map(older, None, n_components=5, space=space)
    grown = build_map(read, None, previous=first, space=space)
    assert np.array_equal(grown.coords[:80], first.coords) and len(grown.strains) == 120
    one = ProfileBatch.from_profiles(real[100:101], space.profile, space.fingerprint)
    assert np.allclose(first.kmap.project(one)[0], grown.coords[100], rtol=0, atol=1e-12)


def test_uncentred_svd_is_not_the_pca(genomes, space):
    """Why the centring matters: a truncated SVD of the raw deltas finds the mean first."""
    from sklearn.decomposition import TruncatedSVD

    batch = space.deltas([g.calls for g in genomes[:300]])
    kmap = fit_map(batch, 4)
    csr = sparse.csr_matrix(
        (batch.counts.astype(float), np.searchsorted(kmap.vocabulary, batch.codes), batch.indptr)
    )
    lsa = TruncatedSVD(4, algorithm="arpack").fit(csr)
    mean_dir = kmap.mean_delta / np.linalg.norm(kmap.mean_delta)
    assert abs(lsa.components_[0] @ mean_dir) > 0.95  # its first axis is the mean
    centred = csr.toarray() - kmap.mean_delta
    along_lsa = ((centred @ lsa.components_[0]) ** 2).sum() / (len(centred) - 1)
    assert along_lsa < 0.9 * kmap.eigenvalues[0]  # and misses part of the spread of PC1


def test_coordinates_never_move_when_genomes_are_added(genomes, space):
    calls = [g.calls for g in genomes]
    first = calls[:400]
    read_first = reader_from_calls(lambda: batches_of(first), space)
    built = build_map(read_first, [c.strain for c in first], n_components=5, space=space)
    read_all = reader_from_calls(lambda: batches_of(calls, 53), space)
    grown = build_map(read_all, [c.strain for c in calls], previous=built, space=space)
    assert grown.kmap is built.kmap
    assert grown.strains[:400] == built.strains
    assert np.array_equal(grown.coords[:400], built.coords)  # copied, bit for bit
    # and a projection is the genome's own: any batch, any company, the same coordinates
    again = np.concatenate([built.kmap.project(b) for b in read_all(None)])
    assert np.allclose(again, grown.coords, rtol=0, atol=1e-12)
    alone = built.kmap.project(space.deltas([calls[450]]))
    assert np.allclose(alone[0], grown.coords[450], rtol=0, atol=1e-12)


def test_a_refit_on_the_same_panel_reproduces_the_coordinates(genomes, space):
    calls = [g.calls for g in genomes[:300]]
    read = reader_from_calls(lambda: batches_of(calls), space)
    strains = [c.strain for c in calls]
    first = build_map(read, strains, n_components=4, seed=0, space=space)
    # another ARPACK start vector: signs and rounding may differ, the aligned map may not
    again = build_map(
        read, strains, previous=first, refit=True, n_components=4, seed=7, space=space
    )
    assert np.allclose(again.coords, first.coords, rtol=0, atol=1e-7)
    assert again.info["refit"]["rmsd_after"] < 1e-7
    assert np.allclose(again.kmap.axis_variance, first.kmap.axis_variance, rtol=1e-6)
    # the folded map projects to the aligned coordinates
    assert np.allclose(again.kmap.project(space.deltas(calls[:20])), again.coords[:20], atol=1e-8)


def _refit_against(old_calls, calls, space):
    """(old map, aligned refit, unaligned fresh fit) and the old genomes' 2-D positions on each."""
    old = build_map(
        reader_from_calls(lambda: batches_of(old_calls), space), None, n_components=4, space=space
    )
    read_all = reader_from_calls(lambda: batches_of(calls), space)
    refit = build_map(read_all, None, previous=old, refit=True, n_components=4, space=space)
    raw = build_map(read_all, None, n_components=4, space=space)
    rows = [refit.strains.index(s) for s in old.strains]
    return old, refit, refit.coords[rows, :2], raw.coords[rows, :2], old.coords[:, :2]


def rmsd(a, b):
    return float(np.sqrt(((a - b) ** 2).sum(axis=1).mean()))


def test_a_refit_with_more_genomes_keeps_its_bearings(genomes, space):
    calls = [g.calls for g in genomes]
    # more genomes of the same epidemic (every other genome, then all): the map barely moves
    old, refit, aligned, raw, before = _refit_against(calls[::2], calls, space)
    spread = rmsd(before, before.mean(axis=0))
    assert rmsd(aligned, before) < 0.1 * spread
    assert rmsd(aligned, before) < rmsd(raw, before)
    for axis in range(2):
        assert np.corrcoef(aligned[:, axis], before[:, axis])[0, 1] > 0.99
    assert np.isclose(refit.kmap.axis_variance.sum(), refit.kmap.eigenvalues.sum())
    # a year later, with new lineages: the axes must change, the alignment keeps what it can
    old, refit, aligned, raw, before = _refit_against(calls[:300], calls, space)
    report = refit.info["refit"]
    assert report["rmsd_after"] < 0.5 * report["rmsd_before"]
    assert rmsd(aligned, before) < 0.6 * rmsd(raw, before)
    assert np.corrcoef(aligned[:, 0], before[:, 0])[0, 1] > 0.9


def test_align_map_undoes_a_rotation_and_shift():
    rng = np.random.default_rng(1)
    old = rng.normal(size=(50, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    new = old @ q + [5.0, -2.0, 1.0]
    kmap = embed.KmerMap(
        base="b", vocabulary=np.arange(3, dtype=np.uint64), mean_delta=np.zeros(3),
        components=np.eye(3), offset=np.zeros(3), eigenvalues=np.ones(3),
        axis_variance=np.ones(3), total_variance=3.0, n_panel=50,
    )  # fmt: skip
    aligned, report = align_map(kmap, new, old)
    assert report["rmsd_after"] < 1e-12 < report["rmsd_before"]
    assert np.allclose(new @ aligned.rotation + report["shift"], old)
    assert np.allclose(aligned.components @ aligned.components.T, np.eye(3))


def test_whole_profiles_are_an_input_too(genomes, space, reference):
    items = [(g.strain, count_kmers(genome_from_calls(reference, g.calls))) for g in genomes[:60]]
    read = reader_from_profiles(lambda: items, space.profile, space.fingerprint, batch=25)
    via_profiles = build_map(read, None, n_components=3, space=space)
    calls = [g.calls for g in genomes[:60]]
    via_calls = build_map(
        reader_from_calls(lambda: batches_of(calls), space), None, n_components=3, space=space
    )
    assert np.allclose(via_profiles.coords, via_calls.coords, atol=1e-9)


def test_panel_is_a_sample_independent_of_order():
    names = [f"s{i}" for i in range(1000)]
    panel = panel_strains(names, 100)
    assert panel == panel_strains(reversed(names), 100) and len(panel) == 100
    assert len(set(panel) & set(panel_strains(names + [f"t{i}" for i in range(100)], 110))) > 80
    assert panel_strains(names[:10], 100) == sorted(names[:10])


def test_the_map_separates_clades(genomes, space):
    calls = [g.calls for g in genomes]
    built = build_map(reader_from_calls(lambda: batches_of(calls), space), None, space=space)
    clade = np.array([g.clade for g in genomes])
    big = [c for c in set(clade) if (clade == c).sum() >= 30]
    assert len(big) >= 2
    xy = built.coords[:, :2]
    centres = {c: xy[clade == c].mean(axis=0) for c in big}
    spread = np.mean([xy[clade == c].std(axis=0).mean() for c in big])
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in big for b in big if a < b]
    assert max(gaps) > 2 * spread


def clade_purity(xy: np.ndarray, clade: np.ndarray, k: int = 5) -> float:
    """How often a genome's k nearest neighbours on a map share its clade."""
    from sklearn.neighbors import NearestNeighbors

    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(xy).kneighbors(xy)
    return float((clade[idx[:, 1:]] == clade[:, None]).mean())


def test_second_embeddings_are_labelled_and_resolve_clades_at_least_as_well(genomes, space):
    sample = genomes[::2]
    batch = space.deltas([g.calls for g in sample])
    clade = np.array([g.clade for g in sample])
    coords = fit_map(batch, 10).project(batch)
    pca = clade_purity(coords[:, :2], clade)
    tsne = second_embedding("tsne", coords=coords, seed=0)
    assert tsne.shape == (300, 2) and np.isfinite(tsne).all()
    assert clade_purity(tsne, clade) >= pca
    mds = second_embedding("mds", profiles=batch, seed=0)
    assert mds.shape == (300, 2) and clade_purity(mds, clade) >= pca
    with pytest.raises(InputError, match="one of"):
        second_embedding("umap", coords=coords)
    assert "not a projection" in embed.SECOND_LABELS["tsne"]


def test_a_map_round_trips_through_the_store(genomes, space, tmp_path):
    store = Store(str(tmp_path / "store"))
    calls = [g.calls for g in genomes[:120]]
    read = reader_from_calls(lambda: batches_of(calls), space)
    built = build_map(read, None, n_components=3, space=space)
    ds = embed.publish_map(
        store, "demo", built, space=space, parameters={"k": 10},
        inputs=[{"source": "test", "sha256": "0" * 64}],
        second=("tsne", built.strains, second_embedding("tsne", coords=built.coords)),
    )  # fmt: skip
    assert ds.meta["explained_variance_ratio"][0] > 0
    assert ds.manifest["provenance"]["command"] == "strains map"
    assert ds.meta["profile"]["k"] == 10 and ds.meta["second_embedding"]["method"] == "tsne"
    loaded = load_map(store, "demo")
    assert loaded.strains == built.strains
    assert np.array_equal(loaded.coords, built.coords)
    assert np.array_equal(loaded.kmap.project(read(None).__next__()), built.coords[:97])
    assert set(loaded.added) == {ds.manifest["version"]}
    table = embed.export_table(store, "demo")
    assert table.column_names == ["strain", "x", "y", "tsne_x", "tsne_y"]
    assert table.num_rows == 120


def test_bad_inputs_are_refused(genomes, space):
    batch = space.deltas([g.calls for g in genomes[:2]])
    with pytest.raises(InputError, match="at least 3 genomes"):
        fit_map(batch, 2)
    other = KmerSpace(space.reference, 9)
    kmap = fit_map(space.deltas([g.calls for g in genomes[:30]]), 2)
    with pytest.raises(InputError, match="refit"):
        kmap.project(other.deltas([genomes[0].calls]))


# -- the commands (map, map export, drift, simulate), on a collection made by the generator ------


class SimulatedCollection:
    """What the map commands read of a strains collection, over a simulated one."""

    def __init__(self, name, reference, genomes):
        self.name, self._reference, self._genomes = name, reference, genomes

    def reference(self) -> str:
        return self._reference

    def iter_calls(self, batch=1000):
        calls = [g.calls for g in self._genomes]
        for i in range(0, len(calls), batch):
            yield calls[i : i + batch]

    def metadata(self):
        import pyarrow as pa

        return pa.table(
            {
                "strain": [g.strain for g in self._genomes],
                "date": [g.date for g in self._genomes],
                "country": [g.country for g in self._genomes],
            }
        )


@pytest.fixture
def cli(tmp_path, monkeypatch, reference, genomes):
    """The strains map commands mounted as the strains CLI mounts them, on a fresh store."""
    from typer.testing import CliRunner

    from sandgrain.cli import strains_map
    from sandgrain.config import Settings

    collections = {"sim": SimulatedCollection("sim", reference, genomes[:200])}
    monkeypatch.setattr(strains_map, "open_collection", lambda ctx, name: collections[name])
    root = typer.Typer()

    @root.callback()
    def settings(ctx: typer.Context) -> None:
        ctx.obj = Settings.from_env({}, store_url=str(tmp_path / "store"))

    root.add_typer(strains_map.app, name="map")
    root.command("drift")(strains_map.drift_cmd)
    root.command("simulate")(strains_map.simulate_cmd)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(root, list(args), catch_exceptions=True)

    run.collections = collections
    run.store = Store(str(tmp_path / "store"))
    return run


def test_map_build_update_refit_and_export_commands(cli, genomes, reference, tmp_path):
    built = cli("map", "--collection", "sim", "--components", "4")
    assert built.exit_code == 0, built.output
    assert "fitted on 200 genomes" in built.output
    first = load_map(cli.store, "sim")
    cli.collections["sim"] = SimulatedCollection("sim", reference, genomes[:260])
    grown = cli("map", "-c", "sim", "--json")
    summary = json.loads(grown.stdout)
    assert summary["update"] == {"projected": 60, "kept": 200}
    assert summary["previous_version"] == first.info["version"]
    second = load_map(cli.store, "sim")
    assert np.array_equal(second.coords[:200], first.coords)
    assert set(second.added[:200]) == {first.info["version"]}
    refit = cli("map", "-c", "sim", "--refit", "--second", "tsne")
    assert refit.exit_code == 0 and "aligned to the previous map on 260 genomes" in refit.output
    out = tmp_path / "coords.tsv"
    exported = cli("map", "export", "-c", "sim", "-o", str(out))
    assert exported.exit_code == 0, exported.output
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == ["strain", "x", "y", "date", "tsne_x", "tsne_y", "country"]
    assert len(lines) == 261 and lines[1].split("\t")[3] == genomes[0].date
    missing = cli("map")
    assert isinstance(missing.exception, InputError) and "--collection" in str(missing.exception)


def test_drift_command_text_json_and_plot(cli, tmp_path):
    text = cli("drift", "-c", "sim", "--window-days", "60")
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[0].startswith("genomes\t200")
    assert "published SARS-CoV-2 clock" in text.stdout
    png = tmp_path / "drift.png"
    as_json = cli("drift", "-c", "sim", "--json", "--root", "earliest", "--plot", str(png))
    result = json.loads(as_json.stdout)
    assert result["n"] == 200 and result["provenance"]["parameters"]["root"] == "earliest"
    assert png.read_bytes()[:4] == b"\x89PNG"
    bad = cli("drift", "-c", "sim", "--metric", "hamming")
    assert isinstance(bad.exception, InputError)


def test_simulate_command(cli, tmp_path):
    done = cli("simulate", "-n", "25", "-o", str(tmp_path / "sim"), "--seed", "3",
               "--reference", str(SARS_REF), "--gzip")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "wrote 25 genomes" in done.output
    assert (tmp_path / "sim/sequences.fasta.gz").stat().st_size > 10_000
    absent = cli("simulate", "-n", "5", "-o", str(tmp_path / "x"), "--reference", "nope")
    assert absent.exit_code != 0 and "nope" in str(absent.exception)


def test_simulate_default_reference_is_the_stores_sars_cov_2(cli, tmp_path):
    """The default ``MN908947`` finds SARS-CoV-2 imported under another name (the demo store's
    ``sars-cov-2``); without one the error says so and names the genomes there are."""
    from sandgrain.genome.store import add_genome

    none = cli("simulate", "-n", "5", "-o", str(tmp_path / "none"))
    assert isinstance(none.exception, NotFoundError)
    assert "--reference MN908947: no such FASTA file" in str(none.exception)
    assert "known: none yet" in str(none.exception)
    add_genome(cli.store, "sars-cov-2", str(SARS_FASTA))
    done = cli("simulate", "-n", "5", "-o", str(tmp_path / "sim"), "--seed", "1")
    assert done.exit_code == 0, done.output
    assert "wrote 5 genomes" in done.output
    made = json.loads((tmp_path / "sim/simulation.json").read_text())
    assert "genome sars-cov-2" in json.dumps(made)
    human = cli("simulate", "-n", "5", "-o", str(tmp_path / "h"), "--reference", "hg19")
    assert isinstance(human.exception, NotFoundError)
    assert "known: sars-cov-2" in str(human.exception)


def test_an_n_run_does_not_move_a_genome_on_a_map_that_reads_missing_as_reference(
    genomes, reference
):
    """A genome read with a 300-base N run lands on its full self on the map (missing read as
    the reference), not away from it by the run (missing k-mers dropped)."""
    import dataclasses

    calls = [g.calls for g in genomes]
    spread = {}
    for missing in ("reference", "drop"):
        space = KmerSpace(reference, missing=missing)
        read = reader_from_calls(lambda s=space: batches_of(calls), space)
        built = build_map(read, [c.strain for c in calls], n_components=5, space=space)
        moved = []
        for i in range(0, 600, 60):
            c = calls[i]
            a = 5000 + 997 * (i // 60)
            gapped = dataclasses.replace(c, missing=[*c.missing, f"{a}-{a + 299}"])
            gapped.substitutions = [s for s in c.substitutions if not a <= int(s[1:-1]) <= a + 299]
            gapped.deletions = [
                d for d in c.deletions if not a - 20 <= int(d[4:].split("-")[0]) <= a + 320
            ]
            gapped.insertions = [
                x for x in c.insertions if not a - 20 <= int(x.split(":")[1]) <= a + 320
            ]
            full = built.kmap.project(space.deltas([c]))[0, :2]
            part = built.kmap.project(space.deltas([gapped]))[0, :2]
            moved.append(np.linalg.norm(full - part))
        scale = np.linalg.norm(built.coords[:, :2].std(0))
        spread[missing] = float(np.median(moved) / scale)
    assert spread["reference"] < 0.1  # beside its full self (a few mutations lost, at most)
    assert spread["drop"] > 3 * spread["reference"]
