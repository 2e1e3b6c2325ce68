"""Manhattan and QQ plots, and ``sandgrain association test|import`` end to end on chr22."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import typer
from conftest import DATA
from typer.testing import CliRunner

from sandgrain.association.plots import chrom_order, manhattan, qq, write_plots
from sandgrain.config import Settings

VS = DATA / "association" / "variantspark"


def results_table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    chrom = rng.choice(["1", "2", "10", "X"], size=n)
    p = rng.uniform(size=n)
    p[:3] = [1e-12, 1e-9, 1e-6]
    return pa.table(
        {
            "chrom": chrom,
            "pos": rng.integers(1, 10**7, n),
            "id": [f"rs{i}" for i in range(n)],
            "p": p,
        }
    )


def test_chromosome_order():
    names = ["X", "10", "chr2", "1", "MT", "Y", "GL000.1"]
    assert sorted(names, key=chrom_order) == ["1", "chr2", "10", "X", "Y", "MT", "GL000.1"]


def test_manhattan_labels_top_hits_and_qq_lambda():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = results_table()
    fig, (a, b) = plt.subplots(1, 2)
    labels = manhattan(t, a, top=5)
    assert labels[:2] == ["rs0", "rs1"] and "rs2" in labels  # only hits below 1e-5
    assert [tick.get_text() for tick in a.get_xticklabels()] == ["1", "2", "10", "X"]
    lam = qq(t, b)
    assert 0.7 < lam < 1.4
    assert any(f"{lam:.3f}" in txt.get_text() for txt in b.texts)
    plt.close(fig)


def test_write_plots_png_and_svg(tmp_path):
    paths = write_plots(results_table(), tmp_path / "run")
    assert sorted(p.name for p in paths) == [
        "run.manhattan.png",
        "run.manhattan.svg",
        "run.qq.png",
        "run.qq.svg",
    ]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()[:500]


def cli(home):
    from sandgrain.cli.association import app

    root = typer.Typer()

    @root.callback()
    def _root(ctx: typer.Context):
        ctx.obj = Settings.from_env({}, home=str(home))

    root.add_typer(app, name="association")
    return root


def test_cli_import_then_test_with_plots(tmp_path):
    runner = CliRunner()
    app = cli(tmp_path / "home")
    r = runner.invoke(
        app, ["association", "import", "--vcf", str(VS / "chr22_1000.vcf.gz"), "--name", "chr22"]
    )
    assert r.exit_code == 0, r.output
    assert "1988 variants × 1092 samples" in r.output
    out = tmp_path / "res.tsv"
    r = runner.invoke(
        app,
        [
            "association",
            "test",
            "--genotypes",
            "chr22",
            "--phenotypes",
            str(VS / "chr22-labels.csv"),
            "--trait",
            "22_16051107",  # a 0/1 trait: --test auto runs the logistic regression
            "--statistic",
            "score",
            "-o",
            str(out),
            "--plot",
            str(tmp_path / "plots" / "chr22"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "lambda_gc" in r.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# sandgrain association test: logistic (score)")
    assert lines[1].startswith("# lambda_gc = ") and lines[2].startswith("# provenance {")
    assert lines[3].split("\t") == [
        "chrom",
        "pos",
        "id",
        "ref",
        "alt",
        "beta",
        "se",
        "statistic",
        "p",
        "af",
        "n",
    ]
    assert len(lines) == 4 + 1988
    rows = [line.split("\t") for line in lines[4:]]
    best = min((r for r in rows if r[8] != "NA"), key=lambda r: float(r[8]))
    assert best[1] == "16051107"  # the label was made from this variant
    assert (tmp_path / "plots" / "chr22.qq.svg").is_file()
    r = runner.invoke(
        app,
        [
            "association",
            "test",
            "--vcf",
            str(VS / "chr22_1000.vcf.gz"),
            "--phenotypes",
            str(VS / "chr22-labels.csv"),
            "--trait",
            "nope",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code != 0 and "no column 'nope'" in str(r.exception)


def _chromosomes_table(names, per=30, seed=1):
    rng = np.random.default_rng(seed)
    chrom = np.repeat(names, per)
    return pa.table(
        {
            "chrom": chrom,
            "pos": rng.integers(1, 10**8, len(chrom)),
            "id": [f"rs{i}" for i in range(len(chrom))],
            "p": rng.uniform(size=len(chrom)),
        }
    )


HUMAN = [str(i) for i in range(1, 23)] + ["X", "Y", "MT"]
CONTIGS = HUMAN + [f"GL000{i}.1" for i in range(191, 250)]


@pytest.mark.parametrize(
    "names, layout",
    [
        (HUMAN, "row"),
        ([str(i) for i in range(1, 60)], "alternate"),
        (CONTIGS, "upright"),
        ([f"scaffold_{i}" for i in range(1, 400)], "upright"),
    ],
    ids=["human", "59 chromosomes", "GRCh37 contigs", "399 scaffolds"],
)
def test_every_chromosome_is_named_and_no_name_hides_another(names, layout):
    """Each chromosome of the table has its name under its slot, in order, and the names are
    laid out (one row, two alternating rows, upright) so that no two overlap on the figure
    ``--plot`` draws."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sandgrain.association.plots import fit_chromosome_labels, manhattan_size

    fig, ax = plt.subplots(figsize=manhattan_size(len(names)), dpi=120)  # as write_plots draws
    try:
        manhattan(_chromosomes_table(names), ax)
        fig.tight_layout()
        assert fit_chromosome_labels(ax) == layout
        fig.canvas.draw()
        labels = ax.get_xticklabels()
        assert [t.get_text() for t in labels] == names
        boxes = [t.get_window_extent() for t in labels]
        for a, b in zip(boxes, boxes[1:], strict=False):
            assert not a.overlaps(b), (a, b)
        if layout == "alternate":  # every other name a line lower
            assert [t.get_pad() for t in ax.xaxis.get_major_ticks()[:3]] == [3.5, 15.5, 3.5]
    finally:
        plt.close(fig)


def test_a_chromosome_without_a_testable_variant_keeps_its_named_slot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = results_table()
    p = t["p"].to_numpy().copy()
    p[np.asarray(t["chrom"].to_pylist()) == "2"] = np.nan  # chromosome 2: nothing tested
    t = t.set_column(t.column_names.index("p"), "p", pa.array(p))
    fig, ax = plt.subplots()
    manhattan(t, ax)
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["1", "2", "10", "X"]
    plt.close(fig)


def test_yeast_chromosomes_in_their_numbered_order():
    from sandgrain.association.plots import is_roman_genome

    yeast = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII",
             "XIV", "XV", "XVI", "Mito"]  # fmt: skip
    shuffled = sorted(yeast)
    roman = is_roman_genome(shuffled)
    assert roman and not is_roman_genome(HUMAN)
    assert sorted(shuffled, key=lambda n: chrom_order(n, roman)) == yeast
