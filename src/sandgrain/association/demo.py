"""The association demo step: the shared hipster genotypes and their trait table in the store, so
the association page (``/association``) opens with a real example.

Needs ``association/variantspark/`` under the data folder: ``hipster.vcf.bgz`` (1000 Genomes,
17,090 variant rows × 2,504 samples, GRCh37) and ``hipster_labels_covariates.txt`` (VariantSpark's
synthetic score and label, age and three principal components). Importing the genotypes takes a
few seconds; a dataset already made from the same file (same SHA-256) is left as it is.
"""

from __future__ import annotations

from ..provenance import sha256_file
from ..registry import DemoContext
from .genotypes import KIND as GENOTYPES_KIND
from .genotypes import import_vcf
from .trait_tables import KIND as TRAITS_KIND
from .trait_tables import import_trait_table

#: The demo's genotypes and trait table (both named ``hipster``) and where they lie.
DEMO_NAME = "hipster"
DEMO_FOLDER = "association/variantspark"
DEMO_VCF = "hipster.vcf.bgz"
DEMO_TABLE = "hipster_labels_covariates.txt"
#: The example the page's form starts with when the demo data are in the store: the hipster
#: label (1 where the synthetic score is above 10) by the logistic score test with the
#: covariates, about a second and a half. The VCF's contigs say ``assembly=b37``.
DEMO_EXAMPLE = {
    "genotypes": DEMO_NAME,
    "traits": DEMO_NAME,
    "trait": "label",
    "method": "test",
    "test": "logistic",
    "statistic": "score",
    "covariates": ["age", "PC0", "PC1", "PC2"],
    "assembly": "GRCh37",
}


def _up_to_date(store, kind: str, path) -> bool:
    if not store.has_dataset(kind, DEMO_NAME):
        return False
    inputs = store.open_dataset(kind, DEMO_NAME).manifest.get("provenance", {}).get("inputs", [])
    digest = sha256_file(path)
    return any(isinstance(i, dict) and i.get("sha256") == digest for i in inputs)


def demo(ctx: DemoContext) -> None:
    """Import the hipster genotypes and trait table when missing or out of date."""
    store = ctx.store
    folder = ctx.data / DEMO_FOLDER
    vcf, table = folder / DEMO_VCF, folder / DEMO_TABLE
    if not (vcf.exists() and table.exists()):
        return
    if _up_to_date(store, GENOTYPES_KIND, vcf):
        ctx.echo(f"demo genotypes {DEMO_NAME} are up to date")
    else:
        matrix = import_vcf(store, vcf, DEMO_NAME, replace=True)
        ctx.echo(
            f"imported the demo genotypes {DEMO_NAME}: {matrix.n_variants:,} variants × "
            f"{matrix.n_samples:,} samples"
        )
    if not _up_to_date(store, TRAITS_KIND, table):
        import_trait_table(store, DEMO_NAME, table.read_bytes(), source=str(table), replace=True)
        ctx.echo(f"stored the demo trait table {DEMO_NAME}")
