"""The guides domain registers itself: CRISPR guide design with a genome-wide off-target search.

See :mod:`sandgrain.registry` for the contract. The site index command sits in the genome group
(``sandgrain genome index``), where users look for it after importing a genome.
"""

from ..registry import Domain, Page

DOMAIN = Domain(
    name="guides",
    summary="Design CRISPR guides and search a genome for their off-targets.",
    cli="sandgrain.cli.guides:app",
    cli_extensions=(("genome", "index", "sandgrain.cli.guides_index:index_cmd"),),
    routers=("sandgrain.web.guides:router", "sandgrain.web.pages:router"),
    job_kinds={"guides.design": "sandgrain.guides.jobs:guides_design_job"},
    dataset_kinds={"siteindex": "a genome's off-target site index for one PAM family"},
    tasks=(
        "sandgrain.guides.siteindex:build_partition",
        "sandgrain.guides.search:search_partition",
    ),
    demo="sandgrain.guides.demo:demo",
    pages=(
        Page(
            "/guides",
            "Design guides",
            "CRISPR guides for a gene, a region or a sequence, ranked by on-target score, each "
            "with its genome-wide off-targets.",
            "Yeast ADE2 (YOR128C, the red-colony marker) with SpCas9 on R64.",
            href="/guides?genome=yeast&gene=ADE2",
            moved_from="/",  # the form was the home page; its links carry the form's query
        ),
    ),
)
