"""The calling domain registers itself: reads to variants, scattered over the genome.

See :mod:`sandgrain.registry` for the contract. Its tasks align chunks of reads, mark
duplicates per sample and call shards of regions; the tools are Debian's minimap2, samtools and
bcftools (``make sysdeps``).
"""

from ..registry import Domain, Page

DOMAIN = Domain(
    name="calling",
    summary="Reads to variants: align, mark duplicates and call, scattered over the genome.",
    cli="sandgrain.cli.calling:app",
    cli_extensions=(
        ("calling", "simulate", "sandgrain.cli.calling_truth:simulate_cmd"),
        ("calling", "compare", "sandgrain.cli.calling_truth:compare_cmd"),
    ),
    routers=("sandgrain.web.calling:router", "sandgrain.web.calling:pages"),
    job_kinds={"calling.joint": "sandgrain.calling.jobs:joint_job"},
    dataset_kinds={
        "readsets": "a reference and a cohort's paired reads (FASTQ) with their sample sheet",
    },
    demo="sandgrain.calling.demo:demo",
    pages=(
        Page(
            "/calling",
            "Call variants",
            "A read set's reads aligned, duplicates marked and all samples called together, as a "
            "job; the VCF's records on the page and as a download.",
            "1000 Genomes reads of HG00100, HG00101 and HG00102 over 4.2 kb of chr17 "
            "(GRCh37), called jointly in about two seconds.",
        ),
    ),
    tasks=(
        "sandgrain.calling.align:align_chunk",
        "sandgrain.calling.align:markdup_task",
        "sandgrain.calling.call:call_shard",
    ),
)
