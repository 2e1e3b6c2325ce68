"""The calling domain registers itself: reads to variants, scattered over the genome.

See :mod:`sandgrain.registry` for the contract. Its tasks align chunks of reads, mark
duplicates per sample and call shards of regions; the tools are Debian's minimap2, samtools and
bcftools (``make sysdeps``).
"""

from ..registry import Domain

DOMAIN = Domain(
    name="calling",
    summary="Reads to variants: align, mark duplicates and call, scattered over the genome.",
    cli="sandgrain.cli.calling:app",
    cli_extensions=(
        ("calling", "simulate", "sandgrain.cli.calling_truth:simulate_cmd"),
        ("calling", "compare", "sandgrain.cli.calling_truth:compare_cmd"),
    ),
    tasks=(
        "sandgrain.calling.align:align_chunk",
        "sandgrain.calling.align:markdup_task",
        "sandgrain.calling.call:call_shard",
    ),
)
