"""``sandgrain association forest`` and ``predict``: the wide random forest on the command line.

Mounted on the ``association`` group by :mod:`sandgrain.cli.association`.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import typer

from ..errors import InputError
from . import association_options as O

__all__ = ["forest_cmd", "predict_cmd"]

COLUMNS = (
    "chrom",
    "pos",
    "id",
    "ref",
    "alt",
    "importance",
    "air",
    "split_count",
    "p_value",
    "q_value",
    "rank",
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _open_genotypes(settings, vcf: Path | None, name: str | None, beacon: str | None = None):
    from ..association.genotypes import GenotypeMatrix

    if sum(x is not None for x in (vcf, name, beacon)) != 1:
        raise InputError(
            "give the genotypes as --vcf FILE, --genotypes NAME or --beacon DATASET (one of them)"
        )
    if vcf is not None:
        if not vcf.is_file():
            raise InputError(f"no such VCF: {vcf}")
        return GenotypeMatrix.from_vcf(vcf), {"source": str(vcf), "sha256": _sha256(vcf)}
    from ..storage import Store

    if beacon is not None:  # the operator's own store, read directly (consent respected)
        from ..association.beacon_input import open_beacon

        gm = open_beacon(Store.from_settings(settings), beacon)
        return gm, {"source": f"beacon/{beacon}", **gm.source}
    gm = GenotypeMatrix.open(Store.from_settings(settings), name)
    return gm, {"source": f"genotypes/{name}", **gm.source}


def _fmt(x) -> str:
    if isinstance(x, float):
        return "NA" if x != x else f"{x:.6g}"
    return str(x)


def forest_cmd(
    ctx: typer.Context,
    vcf: Path = typer.Option(
        None, "--vcf", help="Genotypes (VCF/BCF, plain or bgzip).", metavar="FILE"
    ),
    genotypes: str = typer.Option(
        None, "--genotypes", help="Genotypes imported into the store instead.", metavar="NAME"
    ),
    beacon: O.Beacon = None,
    phenotypes: O.Phenotypes = None,
    trait: str = typer.Option(..., "--trait", help="The trait column.", metavar="COLUMN"),
    covariates: str = typer.Option(
        "",
        "--covariates",
        help="Covariate columns, comma-separated (they enter the forest as features).",
        metavar="A,B,…",
    ),
    mode: str = typer.Option(
        "auto",
        "--mode",
        help="classification (0/1 or few classes), "
        "regression, or auto (classes when the trait is 0/1).",
        metavar="[auto|classification|regression]",
    ),
    trees: int = typer.Option(500, "--trees", help="Number of trees.", metavar="N"),
    mtry_fraction: float = typer.Option(
        None,
        "--mtry-fraction",
        help="Share of candidate features (variants, covariates "
        "and their shadows) tried per node (default: sqrt of "
        "their number for classes, a third for regression).",
        metavar="F",
    ),
    min_node_size: int = typer.Option(
        1, "--min-node-size", help="Fewest samples in a leaf.", metavar="N"
    ),
    max_depth: int = typer.Option(
        -1, "--max-depth", help="Deepest a tree grows (-1: no limit).", metavar="D"
    ),
    seed: int = typer.Option(
        0, "--seed", help="Seed: the same forest on every executor.", metavar="S"
    ),
    fdr: float = typer.Option(
        0.05, "--fdr", help="FDR for the 'significant' count reported.", metavar="Q"
    ),
    executor: str = typer.Option(
        None,
        "--executor",
        help="Where trees grow (default: the configured executor).",
        metavar="SPEC",
    ),
    model: Path = typer.Option(
        None, "--model", help="Also save the forest here (for predict).", metavar="FILE"
    ),
    out: Path = typer.Option(
        ..., "-o", "--output", help="Importance table (TSV; - = stdout).", metavar="FILE"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    collection: O.Collection = None,
    outcome_column: O.OutcomeColumn = None,
    outcome_threshold: O.OutcomeThreshold = 4,
    features: O.Features = "substitutions,deletions,insertions",
    min_count: O.MinCount = 5,
    qc: O.Qc = "good,mediocre,bad",
) -> None:
    """Rank variants by random-forest importance, with AIR p-values and q-values.

    Writes one row per variant (then one per covariate) with the columns chrom, pos, id, ref, alt,
    importance (Gini), air (Nembrini 2018), split_count, p_value (Janitza 2018), q_value
    (Benjamini-Hochberg), rank; '#' lines before the header carry the provenance and the OOB error.
    """
    import json

    import numpy as np

    from ..association import forest as F
    from ..association.phenotypes_table import load_traits
    from ..association.sample_size import warn_small_sample
    from ..provenance import provenance
    from ..storage import Store
    from .progress import task_progress

    settings = ctx.obj
    if mode not in ("auto", "classification", "regression"):
        raise InputError(f"--mode is auto, classification or regression, not {mode!r}")
    if not 0 < fdr < 1:
        raise InputError(f"--fdr must be between 0 and 1, not {fdr}")
    cov_names = [c.strip() for c in covariates.split(",") if c.strip()]
    collection_parameters: dict = {}
    if collection is not None:  # a strains collection (sandgrain.association.collection)
        from ..association.collection import collection_inputs
        from .association import collection_options

        if any(x is not None for x in (vcf, genotypes, beacon, phenotypes)):
            raise InputError("--collection takes no --vcf, --genotypes, --beacon or --phenotypes")
        options = {
            "outcome_column": outcome_column, "outcome_threshold": outcome_threshold,
            "features": features, "min_count": min_count, "qc": qc,
        }  # fmt: skip
        inputs = collection_inputs(
            Store.from_settings(settings), collection, trait, cov_names,
            **collection_options(options),
        )  # fmt: skip
        gm, traits, source = inputs.matrix, inputs.traits, inputs.source
        cov_names = list(traits.cov_names)  # indicator columns named column=level
        collection_parameters = inputs.parameters
        trait_inputs = []
    else:
        if phenotypes is None:
            raise InputError("give the traits as --phenotypes FILE (or use a --collection)")
        if not phenotypes.is_file():
            raise InputError(f"no such phenotype table: {phenotypes}")
        gm, source = _open_genotypes(settings, vcf, genotypes, beacon)
        traits = load_traits(phenotypes, trait, cov_names, gm.samples)
        trait_inputs = [{"source": str(phenotypes), "sha256": _sha256(phenotypes)}]
    y, cov, _, kept = traits
    classification = traits.binary if mode == "auto" else mode == "classification"
    warn_small_sample(y, classification, 1 + len(cov_names), "the forest")
    feats, edges = F.forest_features(gm, kept, cov if cov_names else None)
    n_cand = feats.n_features * 2
    params = F.ForestParams(
        trees=trees,
        mtry=F.default_mtry(n_cand, classification, mtry_fraction),
        min_leaf=min_node_size,
        max_depth=max_depth,
        seed=seed,
    )
    with task_progress("forest", quiet, unit="trees") as progress:
        forest = F.fit_forest(
            feats,
            None,
            y,
            params,
            classification=classification,
            executor=executor or settings.executor,
            retries=settings.retries,
            progress=progress,
        )
    oob = forest.oob_error(y)
    cols = forest.importance_columns(fdr)
    parameters = {
        **collection_parameters,
        "trait": trait,
        "covariates": cov_names,
        "mode": "classification" if classification else "regression",
        **params.__dict__,
        "fdr": fdr,
        "samples": int(len(y)),
        "dropped_samples": len(traits.dropped),
    }
    prov = provenance(
        "association forest",
        parameters,
        [source, *trait_inputs],
    )
    v = gm.variants
    chrom = v.column("chrom").to_pylist() + ["."] * len(cov_names)
    pos = v.column("pos").to_pylist() + ["."] * len(cov_names)
    ids = v.column("id").to_pylist() + cov_names
    ref = v.column("ref").to_pylist() + ["."] * len(cov_names)
    alt = v.column("alt").to_pylist() + ["."] * len(cov_names)
    if model is not None:
        forest.save(
            model,
            {
                "provenance": prov,
                "features": {"chrom": chrom, "pos": pos, "id": ids, "ref": ref, "alt": alt},
                "covariates": cov_names,
                "edges": [e.tolist() for e in edges],
                "oob_error": oob,
            },
        )
    significant = int(np.sum(cols["significant"]))
    lines = [
        f"# provenance: {json.dumps(prov)}",
        f"# oob_error: {oob:.6g} ({'misclassification' if classification else 'MSE'})",
        f"# significant at FDR {fdr}: {significant}",
        "\t".join(COLUMNS),
    ]
    order = np.argsort(cols["rank"], kind="stable")
    for i in order:
        row = (
            chrom[i],
            pos[i],
            ids[i],
            ref[i],
            alt[i],
            float(cols["importance"][i]),
            float(cols["air"][i]),
            int(cols["split_count"][i]),
            float(cols["p_value"][i]),
            float(cols["q_value"][i]),
            int(cols["rank"][i]),
        )
        lines.append("\t".join(_fmt(x) for x in row))
    text = "\n".join(lines) + "\n"
    if str(out) == "-":
        sys.stdout.write(text)
    else:
        out.write_text(text)
    if not quiet:
        sys.stderr.write(f"OOB error {oob:.4g}; {significant} features at FDR {fdr}\n")


def predict_cmd(
    ctx: typer.Context,
    model: Path = typer.Option(
        ..., "--model", help="A forest saved by `forest --model`.", metavar="FILE"
    ),
    vcf: Path = typer.Option(
        None, "--vcf", help="Genotypes of the samples to predict.", metavar="FILE"
    ),
    genotypes: str = typer.Option(
        None, "--genotypes", help="Or genotypes in the store.", metavar="NAME"
    ),
    phenotypes: Path = typer.Option(
        None,
        "--phenotypes",
        help="Covariates of those samples (needed when the forest has covariates).",
        metavar="FILE",
    ),
    out: Path = typer.Option(
        ..., "-o", "--output", help="Predictions (TSV; - = stdout).", metavar="FILE"
    ),
) -> None:
    """Predict the trait of new samples with a saved forest.

    Variants are matched to the forest's by chrom, pos, ref and alt; a forest variant absent from
    the VCF counts as missing and takes code 0 (no alt allele). Columns: sample, prediction, then
    the probability of each class (classification) or nothing more (regression).
    """
    import json

    import numpy as np

    from ..association import forest as F
    from ..association.phenotypes_table import load_traits
    from ..provenance import provenance

    if not model.is_file():
        raise InputError(f"no such model: {model}")
    forest = F.Forest.load(model)
    feats = forest.meta["features"]
    cov_names = forest.meta["covariates"]
    n_var = forest.n_features - len(cov_names)
    gm, source = _open_genotypes(ctx.obj, vcf, genotypes)
    kept = np.arange(gm.n_samples)
    cov = None
    if cov_names:
        if phenotypes is None:
            raise InputError(
                f"the forest uses covariates {', '.join(cov_names)}: give --phenotypes with them"
            )
        traits = load_traits(phenotypes, cov_names[0], cov_names, gm.samples)
        kept, cov = traits.kept, traits.covariates
    gfeats, _ = F.forest_features(gm, kept)
    v = gm.variants
    where = {
        k: i
        for i, k in enumerate(
            zip(
                v.column("chrom").to_pylist(),
                v.column("pos").to_pylist(),
                v.column("ref").to_pylist(),
                v.column("alt").to_pylist(),
                strict=True,
            )
        )
    }
    # The forest's variants in its order, packed; one it has that the data lacks reads as 0.
    packed = np.zeros((n_var, gfeats.packed.shape[1]), dtype=np.uint8)
    found = 0
    for j in range(n_var):
        i = where.get((feats["chrom"][j], feats["pos"][j], feats["ref"][j], feats["alt"][j]))
        if i is not None:
            packed[j] = gfeats.packed[i]
            found += 1
    other = np.zeros((0, len(kept)), dtype=np.uint8)
    if cov_names:
        edges = [np.asarray(e) for e in forest.meta["edges"]]
        other, _ = F.encode_covariates(cov, edges)
    X = F.Features(packed, other, forest.levels, len(kept))
    pred, prob = forest.predict(X)
    prov = provenance(
        "association predict",
        {"model": str(model), "variants_found": found, "variants_in_forest": n_var},
        [source, {"source": str(model), "sha256": _sha256(model)}],
    )
    samples = [gm.samples[i] for i in kept]
    head = ["sample", "prediction"]
    if forest.classes is not None:
        head += [f"p_{_fmt(float(c))}" for c in forest.classes]
    lines = [f"# provenance: {json.dumps(prov)}", "\t".join(head)]
    for k, s in enumerate(samples):
        row = [s, _fmt(float(pred[k]))]
        if forest.classes is not None:
            row += [_fmt(float(p)) for p in prob[k]]
        lines.append("\t".join(row))
    text = "\n".join(lines) + "\n"
    if str(out) == "-":
        sys.stdout.write(text)
    else:
        out.write_text(text)
