"""The genome domain registers itself: reference genomes, their names and genes.

Genome is the shared reference vocabulary every other domain may use (assemblies, chromosome
names and accessions, gene tables); see :mod:`sandgrain.registry` for the contract.
"""

from ..registry import Domain

DOMAIN = Domain(
    name="genome",
    summary="Import genomes and read sequences and genes.",
    cli="sandgrain.cli.genome:app",
    routers=("sandgrain.web.genomes:router",),
    job_kinds={"genome.composition": "sandgrain.genome.jobs:composition_job"},
    dataset_kinds={
        "genomes": "an imported genome: bgzipped FASTA, index, names, gene table",
        "gene-tables": "gene coordinates of an assembly, for gene-name queries (Beacon geneId)",
    },
    tasks=("sandgrain.genome.composition:count_region",),
    demo="sandgrain.genome.demo:demo",
)
