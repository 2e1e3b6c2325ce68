"""The guides domain registers itself: CRISPR guide design with a genome-wide off-target search.

See :mod:`sandgrain.registry` for the contract. The site index command sits in the genome group
(``sandgrain genome index``), where users look for it after importing a genome.
"""

from ..registry import Domain

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
)
