"""``sandgrain association …``: genotypes in the store (``import``), classical per-variant tests
(``test``) and, through :mod:`sandgrain.cli.association_forest`, the wide random forest
(``forest``, ``predict``)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer

from ..errors import InputError
from . import association_options as O

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
    assembly: str = typer.Option(
        None,
        "--assembly",
        help="Reference assembly (e.g. GRCh37); default: the one the VCF header names.",
        metavar="NAME",
    ),
) -> None:
    """Read a VCF once into the store, 2 bits per call (multi-allelic sites split)."""
    from ..association.genotypes import import_vcf

    matrix = import_vcf(_store(ctx), vcf, name, replace=replace, assembly=assembly)
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
    floats = {"beta", "se", "statistic", "p", "af"}
    for line in header_lines:
        out.write(f"# {line}\n")
    out.write("\t".join(cols) + "\n")
    for first in range(0, table.num_rows, 65536):  # a slice at a time: memory stays bounded
        part = table.slice(first, 65536)
        data = [part[c].to_pylist() for c in cols]
        out.write(
            "".join(
                "\t".join(
                    _fmt(v) if c in floats else str(v) for c, v in zip(cols, row, strict=True)
                )
                + "\n"
                for row in zip(*data, strict=True)
            )
        )


def _write_atomic(path: Path, write) -> None:
    """``write(fh)`` into a temporary file next to ``path``, renamed onto it when complete."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _beacon_matrix(ctx: typer.Context, dataset: str):
    """A Beacon dataset's genotypes, read from the operator's own store (consent respected)."""
    from ..association.beacon_input import open_beacon

    return open_beacon(_store(ctx), dataset)


@app.command("test")
def test_cmd(
    ctx: typer.Context,
    vcf: Path = typer.Option(None, "--vcf", help="Genotypes from a VCF/BCF.", metavar="FILE"),
    genotypes: str = typer.Option(
        None, "--genotypes", help="Genotypes imported into the store.", metavar="NAME"
    ),
    beacon: O.Beacon = None,
    phenotypes: O.Phenotypes = None,
    trait: str = typer.Option(..., "--trait", help="The trait column.", metavar="COLUMN"),
    test: str = typer.Option(
        "auto",
        "--test",
        help="linear (quantitative trait); logistic, firth, fisher, trend (0/1 trait); "
        "auto: logistic for a 0/1 trait, else linear (as PLINK 2 --glm).",
        metavar="[auto|linear|logistic|firth|fisher|trend]",
    ),
    statistic: str = typer.Option(
        "wald",
        "--statistic",
        help="For logistic and firth: wald (default, as PLINK 2 --glm), lrt, score (logistic).",
        metavar="[wald|lrt|score]",
    ),
    covariates: str = typer.Option(
        "", "--covariates", help="Covariate columns, comma-separated.", metavar="A,B,…"
    ),
    impute_rule: str = typer.Option(
        "mean",
        "--impute",
        help="Missing calls in regressions: mean or mode dosage.",
        metavar="[mean|mode]",
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    firth_fallback: bool = typer.Option(
        False,
        "--firth-fallback",
        help="logistic: fit a variant whose fit fails (separation) by Firth instead, marked in "
        "a column firth (as PLINK 2 --glm firth-fallback).",
    ),
    collection: O.Collection = None,
    outcome_column: O.OutcomeColumn = None,
    outcome_threshold: O.OutcomeThreshold = 4,
    strata: str = typer.Option(
        "",
        "--strata",
        help="With --collection and --test fisher|trend: metadata columns to stratify by "
        "(Cochran-Mantel-Haenszel test), e.g. country,date.",
        metavar="A,B,…",
    ),
    date_bin: str = typer.Option(
        "quarter",
        "--date-bin",
        help="Strata of date: month, quarter or year.",
        metavar="[month|quarter|year]",
    ),
    features: O.Features = "substitutions,deletions,insertions",
    min_count: O.MinCount = 5,
    qc: O.Qc = "good,mediocre,bad",
) -> None:
    """Per-variant association tests: beta, SE, statistic, p, alt allele frequency, N."""
    from ..association.genotypes import GenotypeMatrix
    from ..association.phenotypes_table import load_traits
    from ..association.tests_classical import association_test
    from ..provenance import provenance, sha256_file

    if collection is not None:  # a strains collection (sandgrain.association.collection)
        if any(x is not None for x in (vcf, genotypes, beacon, phenotypes)):
            raise InputError("--collection takes no --vcf, --genotypes, --beacon or --phenotypes")
        options = {
            "covariates": covariates, "strata": strata, "outcome_column": outcome_column,
            "outcome_threshold": outcome_threshold, "features": features,
            "min_count": min_count, "qc": qc, "date_bin": date_bin,
        }  # fmt: skip
        _collection_test(ctx, collection, trait, test, statistic, impute_rule, options, out, plot)
        return
    if phenotypes is None:
        raise InputError("give the traits as --phenotypes FILE (or test a --collection)")

    if sum(x is not None for x in (vcf, genotypes, beacon)) != 1:
        raise InputError(
            "give the genotypes as --vcf FILE, --genotypes NAME or --beacon DATASET (one of them)"
        )
    if test not in TESTS:
        raise InputError(f"--test {test!r}: use auto, linear, logistic, firth, fisher or trend")
    if not phenotypes.is_file():
        raise InputError(f"no such file: {phenotypes}")
    if str(out) != "-" and not out.absolute().parent.is_dir():  # before any work
        raise InputError(f"cannot write {out}: no such folder {out.absolute().parent}")
    if str(out) != "-" and out.is_dir():
        raise InputError(f"cannot write {out}: it is a folder")
    if vcf is not None and not vcf.is_file():
        raise InputError(f"no such file: {vcf}")
    covs = [c.strip() for c in covariates.split(",") if c.strip()]
    matrix = (
        GenotypeMatrix.from_vcf(vcf)
        if vcf is not None
        else GenotypeMatrix.open(_store(ctx), genotypes)
        if genotypes is not None
        else _beacon_matrix(ctx, beacon)
    )
    traits = load_traits(phenotypes, trait, covs, matrix.samples)
    test = _auto_test(test, traits.binary)
    if genotypes is not None:  # a stored matrix: variant ranges fanned out (--executor)
        from ..association.scatter import scatter_test
        from .progress import task_progress

        settings = ctx.obj
        with task_progress(f"{test} test", quiet, unit="variants") as progress:
            results = scatter_test(
                matrix,
                traits,
                test,
                store=_store(ctx),
                statistic=statistic,
                impute_rule=impute_rule,
                executor=settings.executor,
                retries=settings.retries,
                progress=progress,
                firth_fallback=firth_fallback,
            )
    else:
        results = association_test(
            matrix,
            traits,
            test,
            statistic=statistic,
            impute_rule=impute_rule,
            firth_fallback=firth_fallback,
        )
    inputs = [{"source": str(phenotypes), "sha256": sha256_file(phenotypes)}]
    if vcf is not None:
        inputs.append({"source": str(vcf), "sha256": sha256_file(vcf)})
    elif genotypes is not None:
        inputs.append({"source": f"genotypes/{genotypes}", "version": matrix.source["version"]})
    else:
        inputs.append({"source": f"beacon/{beacon}", **matrix.source})
    prov = provenance(
        "association test",
        {
            "test": test,
            "statistic": statistic,
            "trait": trait,
            "covariates": covs,
            "impute": impute_rule,
            **({"firth_fallback": True} if firth_fallback else {}),
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
        _write_atomic(out, lambda fh: write_tsv(results, fh, header))
    if plot is not None:
        from ..association.plots import write_plots

        write_plots(results.table, plot, title=f"{trait} ({test})")
    msg = (
        f"{summary['tested']} of {summary['variants']} variants tested on {summary['samples']} "
        f"samples ({summary['dropped_samples']} dropped: no trait or covariate); "
        f"lambda_gc = {results.lambda_gc:.3f}"
    )
    if "firth_fallback" in summary:
        msg += f"; {summary['firth_fallback']} fitted by Firth (logistic failed)"
    typer.echo(msg, err=str(out) == "-")


#: The values of ``--test``.
TESTS = ("auto", "linear", "logistic", "firth", "fisher", "trend")


def _auto_test(test: str, binary: bool) -> str:
    """``--test auto``: logistic for a 0/1 trait, linear otherwise (PLINK 2 ``--glm`` picks its
    model from the phenotype the same way)."""
    if test != "auto":
        return test
    return "logistic" if binary else "linear"


def _names(text: str) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def collection_options(options: dict) -> dict:
    """``collection_inputs`` keywords from the CLI's --collection options (shared with forest)."""
    return {
        "strata": _names(options.get("strata", "")),
        "outcome_column": options["outcome_column"],
        "outcome_threshold": options["outcome_threshold"],
        "kinds": _names(options["features"]),
        "min_count": options["min_count"],
        "statuses": _names(options["qc"]),
        "date_bin": options.get("date_bin", "quarter"),
    }


def _collection_test(ctx, collection, trait, test, statistic, impute_rule, options, out, plot):
    """``association test --collection``: mutations of a strains collection against a trait."""
    from ..association.collection import collection_inputs, collection_test
    from ..provenance import provenance

    if str(out) != "-" and not out.absolute().parent.is_dir():  # before any work
        raise InputError(f"cannot write {out}: no such folder {out.absolute().parent}")
    inputs = collection_inputs(
        _store(ctx), collection, trait, _names(options["covariates"]),
        **collection_options(options),
    )  # fmt: skip
    if test not in TESTS:
        raise InputError(f"--test {test!r}: use auto, linear, logistic, firth, fisher or trend")
    test = _auto_test(test, inputs.traits.binary)
    results = collection_test(inputs, test, statistic=statistic, impute_rule=impute_rule)
    parameters = {**inputs.parameters, "test": results.test, "statistic": statistic,
                  "impute": impute_rule}  # fmt: skip
    prov = provenance("association test", parameters, [inputs.source])
    header = [
        f"sandgrain association test: {results.test} ({results.statistic}), trait {trait}, "
        f"collection {collection} version {inputs.parameters['collection_version']}, "
        f"{results.n_samples} genomes, {results.table.num_rows} mutations",
        f"lambda_gc = {results.lambda_gc:.4f}",
        *inputs.notes,
        "provenance " + json.dumps(prov, sort_keys=True),
    ]
    if str(out) == "-":
        write_tsv(results, sys.stdout, header)
    else:
        _write_atomic(out, lambda fh: write_tsv(results, fh, header))
    if plot is not None:
        from ..association.plots import write_plots

        write_plots(results.table, plot, title=f"{trait} ({results.test}), {collection}")
    typer.echo(
        f"{results.summary()['tested']} of {results.table.num_rows} mutations tested on "
        f"{results.n_samples} genomes ({len(inputs.traits.dropped)} dropped: no trait, "
        f"covariate or stratum); lambda_gc = {results.lambda_gc:.3f}",
        err=str(out) == "-",
    )


# The forest commands live in their own module (helper B's), mounted here.
from .association_forest import forest_cmd, predict_cmd  # noqa: E402

app.command("forest")(forest_cmd)
app.command("predict")(predict_cmd)
