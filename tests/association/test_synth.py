"""The synthetic genotypes of the scale benchmark (benchmarks/synth_genotypes.py): the dataset
reads back as an imported one, the model's stated properties hold, and the planted causal
variants are what the linear test finds. Then the tests fanned out over variant ranges
(sandgrain.association.scatter): the same table on serial and local:2 as in one process, and
``association test --genotypes`` through it, refusing a missing output folder before any work."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from sandgrain.association.genotypes import (
    MISSING,
    VARIANT_SCHEMA,
    GenotypeMatrix,
    impute,
    pack,
)
from sandgrain.association.phenotypes_table import load_traits, read_table
from sandgrain.association.scatter import partition, scatter_test
from sandgrain.association.tests_classical import COLUMNS, association_test
from sandgrain.config import Settings
from sandgrain.errors import InputError
from sandgrain.storage import Store

REPO = Path(__file__).resolve().parents[2]
SAMPLES, VARIANTS, CAUSAL = 400, 3_000, 3
COVS = ["age", "PC0", "PC1", "PC2"]


def _load():
    spec = importlib.util.spec_from_file_location(
        "synth_genotypes", REPO / "benchmarks/synth_genotypes.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synth = _load()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    store = Store(str(root / "store"))
    # a small block size, so the dataset is written in several blocks
    saved, synth.BLOCK_CALLS = synth.BLOCK_CALLS, 2 * SAMPLES * 700
    try:
        figures = synth.make_genotypes(
            store,
            "syn",
            samples=SAMPLES,
            variants=VARIANTS,
            causal=CAUSAL,
            seed=11,
            traits=root / "traits.tsv",
            h2=0.5,
        )
    finally:
        synth.BLOCK_CALLS = saved
    return store, root, figures


def test_round_trip_as_an_imported_dataset(made):
    store, root, figures = made
    m = GenotypeMatrix.open(store, "syn")
    assert (m.n_variants, m.n_samples) == (VARIANTS, SAMPLES)
    assert m.variants.schema.equals(VARIANT_SCHEMA)
    assert m.samples == synth.sample_names(SAMPLES)
    ds = store.open_dataset("genotypes", "syn")
    assert ds.verify() == []
    assert ds.meta["n_variants"] == VARIANTS and ds.meta["bits_per_call"] == 2
    assert ds.meta["simulated"]["seed"] == 11
    assert "simulated" in ds.manifest["provenance"]["command"]
    D = m.dosages(0, VARIANTS)
    assert D.max() <= MISSING
    # the stored rows are exactly `pack` of the dosages (padding bits zero)
    assert np.array_equal(m.packed(0, VARIANTS), pack(D))
    assert ds.meta["missing_calls"] == int((D == MISSING).sum()) == figures["missing_calls"]
    assert 0.003 < (D == MISSING).mean() < 0.007
    # positions strictly increase within each chromosome, chromosomes in order 1, 2, …
    chrom = np.array([int(c) for c in m.variants["chrom"].to_pylist()])
    pos = m.variants["pos"].to_numpy()
    assert (np.diff(chrom) >= 0).all()
    assert (np.diff(pos)[np.diff(chrom) == 0] > 0).all()
    assert pa.compute.count_distinct(m.variants["id"]).as_py() == VARIANTS


def test_frequencies_hardy_weinberg_and_ld(made):
    store, _, _ = made
    m = GenotypeMatrix.open(store, "syn")
    D = m.dosages(0, VARIANTS)
    called = D != MISSING
    af = np.where(called, D, 0).sum(1) / (2 * called.sum(1))
    maf = np.minimum(af, 1 - af)
    assert 0.15 < (maf < 0.01).mean() < 0.45  # many rare variants (U-shaped spectrum)
    assert (maf > 0.2).mean() > 0.2
    common = maf > 0.1
    het = (D == 1).sum(1) / called.sum(1)
    ratio = het[common] / (2 * af[common] * (1 - af[common]))
    assert abs(np.median(ratio) - 1) < 0.05  # Hardy–Weinberg heterozygosity
    G = impute(D)

    def mean_r2(lag):
        pairs = [
            (j, j + lag)
            for j in range(VARIANTS - lag)
            if maf[j] > 0.05
            and maf[j + lag] > 0.05
            and m.variants["chrom"][j] == m.variants["chrom"][j + lag]
        ][:400]
        return np.mean([np.corrcoef(G[a], G[b])[0, 1] ** 2 for a, b in pairs])

    near, far = mean_r2(1), mean_r2(200)
    assert near > 0.08 and far < 0.02 and near > 5 * far  # LD between neighbours only


def test_planted_variants_are_found_by_the_linear_test(made):
    store, root, figures = made
    listed = json.loads((root / "traits.causal.json").read_text())
    assert listed["causal"] == figures["causal"] and len(listed["causal"]) == CAUSAL
    ids, cols = read_table(root / "traits.tsv")
    assert list(cols) == ["sample", "score", "label", *COVS]
    assert ids == synth.sample_names(SAMPLES)
    labels = np.array(cols["label"], dtype=int)
    assert set(labels) == {0, 1} and abs(labels.mean() - 0.4) < 0.01
    m = GenotypeMatrix.open(store, "syn")
    tr = load_traits(root / "traits.tsv", "score", COVS, m.samples)
    res = association_test(m, tr, "linear")
    p = res.table["p"].to_numpy(zero_copy_only=False)
    for c in listed["causal"]:
        assert min(c["af"], 1 - c["af"]) > 0.03  # drawn with MAF ≥ 0.05
        j = c["index"]
        assert m.variants["id"][j].as_py() == c["id"]
        assert p[j] < 1e-7, c  # each explains h²/K = 1/6 of the variance: t ≈ 9
        assert np.sign(res.table["beta"][j].as_py()) == np.sign(c["beta_score"])
    # nothing far from a causal variant is that significant (the rest is null)
    far = np.ones(VARIANTS, bool)
    for c in listed["causal"]:
        far[max(0, c["index"] - 150) : c["index"] + 150] = False
    assert np.nanmin(p[far]) > 1e-7
    # the label follows the same liability: the causal variants are associated with it too
    lab = load_traits(root / "traits.tsv", "label", COVS, m.samples)
    pl = association_test(m, lab, "logistic").table["p"].to_numpy(zero_copy_only=False)
    assert np.nanmin(pl[[c["index"] for c in listed["causal"]]]) < 1e-4


def same_columns(a, b) -> None:
    assert a.table.select(["chrom", "pos", "id"]).equals(b.table.select(["chrom", "pos", "id"]))
    for c in COLUMNS:
        x, y = (t.table[c].to_numpy(zero_copy_only=False) for t in (a, b))
        assert np.array_equal(x, y, equal_nan=c != "n"), c  # bit for bit
    assert a.lambda_gc == b.lambda_gc


def test_partition_on_block_boundaries():
    assert partition(0) == []
    assert partition(10, chunk=4, block=2) == [(0, 4), (4, 8), (8, 10)]
    assert partition(10, chunk=3, block=2) == [(0, 4), (4, 8), (8, 10)]  # rounded up
    million = [(a, min(a + 61_440, 10**6)) for a in range(0, 10**6, 61_440)]
    assert partition(10**6, n_samples=10_000) == million  # 16 tasks
    assert len(partition(17_090, n_samples=2_504)) == 2  # hipster: tasks of ≥ 2**25 calls
    assert partition(1_000, n_samples=10_000) == [(0, 1_000)]
    assert all(b - a <= 200_000 for a, b in partition(10**8))


def test_scatter_equals_one_process_on_serial_and_local(made):
    store, root, _ = made
    m = GenotypeMatrix.open(store, "syn")
    for test, trait in (("linear", "score"), ("logistic", "label")):
        tr = load_traits(root / "traits.tsv", trait, COVS, m.samples)
        ref = association_test(m, tr, test, block=256)
        for executor in ("serial", "local:2"):
            got = scatter_test(
                m, tr, test, store=store, executor=executor, chunk=1000, block=256
            )  # 3 ranges of 1,024 variants
            same_columns(ref, got)
    assert store.list("scratch") == []  # the staged traits are removed


def cli(store_root):
    from sandgrain.cli.association import app

    root = typer.Typer()

    @root.callback()
    def _root(ctx: typer.Context):
        ctx.obj = Settings.from_env(
            {}, home=str(store_root.parent / "home"), store_url=str(store_root), executor="serial"
        )

    root.add_typer(app, name="association")
    return root


def test_cli_genotypes_and_output_folder(made):
    store, root, _ = made
    app = cli(Path(store.url))
    args = ["association", "test", "--genotypes", "syn", "--phenotypes", str(root / "traits.tsv")]
    args += ["--trait", "score", "--covariates", ",".join(COVS), "-q"]
    runner = CliRunner()
    r = runner.invoke(app, [*args, "-o", str(root / "missing" / "out.tsv")])
    assert r.exit_code != 0 and "no such folder" in str(r.exception)
    r = runner.invoke(app, [*args, "-o", str(root)])
    assert r.exit_code != 0 and "is a folder" in str(r.exception)
    out = root / "out.tsv"
    r = runner.invoke(app, [*args, "-o", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[3].split("\t")[:3] == ["chrom", "pos", "id"] and len(lines) == 4 + VARIANTS
    assert [p.name for p in root.iterdir() if p.name.startswith(".out.tsv")] == []
    m = GenotypeMatrix.open(store, "syn")
    ref = association_test(m, load_traits(root / "traits.tsv", "score", COVS, m.samples), "linear")
    p_cli = [float("nan") if f[8] == "NA" else float(f[8]) for f in map(str.split, lines[4:])]
    assert np.allclose(p_cli, ref.table["p"].to_numpy(), rtol=1e-5, equal_nan=True)


def test_firth_fallback_replaces_failed_logistic_fits(made):
    store, root, _ = made
    full = GenotypeMatrix.open(store, "syn")
    m = GenotypeMatrix(full.samples, full.variants.slice(0, 600), packed=full.packed(0, 600))
    tr = load_traits(root / "traits.tsv", "label", COVS, m.samples)
    plain = association_test(m, tr, "logistic").table
    fb = association_test(m, tr, "logistic", firth_fallback=True)
    firth = association_test(m, tr, "firth").table
    flag = fb.table["firth"].to_numpy().astype(bool)
    p0, p1 = (t["p"].to_numpy(zero_copy_only=False) for t in (plain, fb.table))
    af = plain["af"].to_numpy(zero_copy_only=False)
    poly = (af > 0) & (af < 1)
    assert flag.sum() > 5 and fb.summary()["firth_fallback"] == flag.sum()
    assert np.array_equal(flag, np.isnan(p0) & poly)  # exactly the failed fits
    assert np.array_equal(p1[~flag], p0[~flag], equal_nan=True)  # the others untouched
    fp = firth["p"].to_numpy(zero_copy_only=False)
    assert np.allclose(p1[flag], fp[flag], rtol=1e-6, equal_nan=True)  # as Firth fits them
    assert np.isfinite(p1[flag]).sum() >= 5  # Firth fits some that logistic cannot
    with pytest.raises(InputError, match="firth-fallback"):
        association_test(m, tr, "logistic", statistic="score", firth_fallback=True)
