"""The Beacon domain registers itself: a GA4GH Beacon v2 over variant datasets in the store.

See :mod:`sandgrain.registry` for the contract.
"""

from ..registry import Domain

DOMAIN = Domain(
    name="beacon",
    summary="A GA4GH Beacon v2: ingest variant datasets and answer queries safely.",
    cli="sandgrain.cli.beacon:app",
    routers=("sandgrain.web.beacon:router",),
    dataset_kinds={
        "beacon": "a variant dataset: Parquet partitions by window, individuals, provenance",
    },
    tasks=("sandgrain.beacon.ingest:ingest_window", "sandgrain.beacon.query:scan_task"),
    demo="sandgrain.beacon.demo:demo",
    web_state="sandgrain.beacon.service:BeaconService.for_app",
    # A dataset's per-sample dosages for operator-side analyses (association --beacon); no HTTP
    # route serves them (sandgrain.beacon.genotypes_export).
    # Ingest of a VCF as a dataset, for domains that make VCFs (calling --beacon): the same
    # function as `sandgrain beacon ingest` (store, dataset_id, vcf, *, assembly, …).
    provides={
        "beacon.genotypes": "sandgrain.beacon.genotypes_export:dataset_genotypes",
        "beacon.ingest-vcf": "sandgrain.beacon.ingest:ingest",
    },
)
