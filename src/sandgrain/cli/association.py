"""``sandgrain association …``: genotypes in the store (``import``), classical per-variant tests
(``test``) and, through :mod:`sandgrain.cli.association_forest`, the wide random forest
(``forest``, ``predict``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import InputError

__all__ = ["app", "import_cmd", "test_cmd"]

app = typer.Typer(
    help="Variants and traits: classical tests, a wide random forest, Manhattan and QQ plots.",
    no_args_is_help=True,
)


def _store(ctx: typer.Context):
    from ..storage import Store

    return Store.from_settings(ctx.obj)


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    vcf: Path = typer.Option(..., "--vcf", help="VCF/BCF (plain, gzip or bgzip).", metavar="FILE"),
    name: str = typer.Option(..., "--name", help="Name of the genotypes dataset.", metavar="NAME"),
    replace: bool = typer.Option(False, "--replace", help="Replace a dataset of that name."),
) -> None:
    """Read a VCF once into the store, 2 bits per call (multi-allelic sites split)."""
    from ..association.genotypes import import_vcf

    matrix = import_vcf(_store(ctx), vcf, name, replace=replace)
    typer.echo(
        f"genotypes {name}: {matrix.n_variants} variants × {matrix.n_samples} samples "
        f"({matrix.n_variants * matrix.row_bytes} bytes of calls)"
    )


def _fmt(x: float) -> str:
    if x != x:  # NaN
        return "NA"
    return f"{x:.6g}"


def write_tsv(results, out, header_lines: list[str]) -> None:
    """The results table as TSV, after ``#`` comment lines (λ, provenance)."""
    table = results.table
    cols = table.column_names
    data = [table[c].to_pylist() for c in cols]
    floats = {"beta", "se", "statistic", "p", "af"}
    for line in header_lines:
        out.write(f"# {line}\n")
    out.write("\t".join(cols) + "\n")
    for row in zip(*data, strict=True):
        out.write(
            "\t".join(_fmt(v) if c in floats else str(v) for c, v in zip(cols, row, strict=True))
            + "\n"
        )


@app.command("test")
def test_cmd(
    ctx: typer.Context,
    vcf: Path = typer.Option(None, "--vcf", help="Genotypes from a VCF/BCF.", metavar="FILE"),
    genotypes: str = typer.Option(
        None, "--genotypes", help="Genotypes imported into the store.", metavar="NAME"
    ),
    phenotypes: Path = typer.Option(
        ..., "--phenotypes", help="CSV/TSV of traits by sample id.", metavar="FILE"
    ),
    trait: str = typer.Option(..., "--trait", help="The trait column.", metavar="COLUMN"),
    test: str = typer.Option(
        "linear",
        "--test",
        help="linear (quantitative trait); logistic, firth, fisher, trend (0/1 trait).",
        metavar="linear|logistic|firth|fisher|trend",
    ),
    statistic: str = typer.Option(
        "wald",
        "--statistic",
        help="For logistic and firth: wald (default, as PLINK 2 --glm), lrt, score (logistic).",
        metavar="wald|lrt|score",
    ),
    covariates: str = typer.Option(
        "", "--covariates", help="Covariate columns, comma-separated.", metavar="A,B,…"
    ),
    impute_rule: str = typer.Option(
        "mean",
        "--impute",
        help="Missing calls in regressions: mean or mode dosage.",
        metavar="mean|mode",
    ),
    out: Path = typer.Option(
        ..., "--output", "-o", help="Results TSV ('-' for stdout).", metavar="FILE"
    ),
    plot: Path = typer.Option(
        None,
        "--plot",
        help="Write PREFIX.manhattan.{png,svg} and PREFIX.qq.{png,svg}.",
        metavar="PREFIX",
    ),
) -> None:
    """Per-variant association tests: beta, SE, statistic, p, alt allele frequency, N."""
    from ..association.genotypes import GenotypeMatrix
    from ..association.phenotypes_table import load_traits
    from ..association.tests_classical import association_test
    from ..provenance import provenance, sha256_file

    if (vcf is None) == (genotypes is None):
        raise InputError("give the genotypes as --vcf FILE or --genotypes NAME (one of them)")
    if test not in ("linear", "logistic", "firth", "fisher", "trend"):
        raise InputError(f"--test {test!r}: use linear, logistic, firth, fisher or trend")
    if not phenotypes.is_file():
        raise InputError(f"no such file: {phenotypes}")
    if vcf is not None and not vcf.is_file():
        raise InputError(f"no such file: {vcf}")
    covs = [c.strip() for c in covariates.split(",") if c.strip()]
    matrix = (
        GenotypeMatrix.from_vcf(vcf)
        if vcf is not None
        else GenotypeMatrix.open(_store(ctx), genotypes)
    )
    traits = load_traits(phenotypes, trait, covs, matrix.samples)
    results = association_test(matrix, traits, test, statistic=statistic, impute_rule=impute_rule)
    inputs = [{"source": str(phenotypes), "sha256": sha256_file(phenotypes)}]
    if vcf is not None:
        inputs.append({"source": str(vcf), "sha256": sha256_file(vcf)})
    else:
        inputs.append({"source": f"genotypes/{genotypes}", "version": matrix.source["version"]})
    prov = provenance(
        "association test",
        {
            "test": test,
            "statistic": statistic,
            "trait": trait,
            "covariates": covs,
            "impute": impute_rule,
        },
        inputs,
    )
    summary = results.summary()
    header = [
        f"sandgrain association test: {test} ({results.statistic}), trait {trait}, "
        f"{results.n_samples} samples, {results.table.num_rows} variants",
        f"lambda_gc = {results.lambda_gc:.4f}",
        "provenance " + json.dumps(prov, sort_keys=True),
    ]
    if str(out) == "-":
        write_tsv(results, sys.stdout, header)
    else:
        with open(out, "w") as fh:
            write_tsv(results, fh, header)
    if plot is not None:
        from ..association.plots import write_plots

        write_plots(results.table, plot, title=f"{trait} ({test})")
    msg = (
        f"{summary['tested']} of {summary['variants']} variants tested on {summary['samples']} "
        f"samples ({summary['dropped_samples']} dropped: no trait or covariate); "
        f"lambda_gc = {results.lambda_gc:.3f}"
    )
    typer.echo(msg, err=str(out) == "-")


# The forest commands live in their own module (helper B's), mounted here.
from .association_forest import forest_cmd, predict_cmd  # noqa: E402

app.command("forest")(forest_cmd)
app.command("predict")(predict_cmd)
