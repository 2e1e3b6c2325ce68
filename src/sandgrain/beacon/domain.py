"""The Beacon domain registers itself: a GA4GH Beacon v2 over variant datasets in the store.

See :mod:`sandgrain.registry` for the contract.
"""

from ..registry import Domain, Page

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
    # An API, not a page: its card links to the service's info, an example query and the docs.
    pages=(
        Page(
            "/api/beacon/info",
            "GA4GH Beacon v2",
            "Whether a variant, a region or a gene's variants are seen in the variant datasets, "
            "answered as Beacon v2 JSON with the privacy protections on.",
            "The service's description; its example query asks whether chr1:10,177 A>AC is seen "
            "in the 1000 Genomes demo datasets (GRCh37).",
            links=(
                ("Example query", "/api/beacon/g_variants?referenceName=1&start=10176"
                 "&referenceBases=A&alternateBases=AC"),
                ("Beacon API docs", "/docs#/beacon"),
            ),
            nav=False,
        ),
    ),
    # A dataset's per-sample dosages for operator-side analyses (association --beacon); no HTTP
    # route serves them (sandgrain.beacon.genotypes_export).
    # Ingest of a VCF as a dataset, for domains that make VCFs (calling --beacon): the same
    # function as `sandgrain beacon ingest` (store, dataset_id, vcf, *, assembly, …).
    provides={
        "beacon.genotypes": "sandgrain.beacon.genotypes_export:dataset_genotypes",
        "beacon.ingest-vcf": "sandgrain.beacon.ingest:ingest",
    },
)
