"""The association domain registers itself: variants ↔ traits with classical tests and a wide
random forest, Manhattan and QQ plots.

See :mod:`sandgrain.registry` for the contract. Genotypes imported once are datasets of kind
``genotypes`` (:mod:`sandgrain.association.genotypes`), 2 bits per call.
"""

from ..registry import Domain, Page

DOMAIN = Domain(
    name="association",
    summary="Variants and traits: classical tests, a wide random forest, Manhattan and QQ plots.",
    cli="sandgrain.cli.association:app",
    routers=("sandgrain.web.association:router", "sandgrain.web.association:pages"),
    job_kinds={"association.analysis": "sandgrain.association.jobs:analysis_job"},
    dataset_kinds={
        "genotypes": "a VCF's genotypes, 2 bits per call: variant table (parquet) and samples",
        "traits": "a trait table (CSV/TSV by sample id) with its columns' kinds, for analyses",
    },
    tasks=(
        "sandgrain.association.forest:grow_batch",
        "sandgrain.association.scatter:range_columns",
    ),
    demo="sandgrain.association.demo:demo",
    pages=(
        Page(
            "/association",
            "Association",
            "Variants against a trait: classical tests or a wide random forest, with Manhattan "
            "and QQ plots and the top hits linked to the Beacon and UCSC.",
            "VariantSpark's hipster label on 17,010 1000 Genomes variants × 2,504 samples "
            "(logistic score test, age and PC0–PC2 as covariates).",
        ),
    ),
)
