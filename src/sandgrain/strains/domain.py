"""The strains domain registers itself: pathogen genome collections, QC, mutations and a k-mer map.

See :mod:`sandgrain.registry` for the contract. Collections are datasets of kind ``strains``
(:mod:`sandgrain.strains.collection`); their genomes are aligned, called and checked by fan-out
tasks, one per batch of genomes.
"""

from ..registry import Domain

DOMAIN = Domain(
    name="strains",
    summary="Pathogen surveillance: genome collections, QC, mutations and a k-mer map over time.",
    cli="sandgrain.cli.strains:app",
    routers=(
        "sandgrain.web.strains_paths:router",
        "sandgrain.web.strains:router",
        "sandgrain.web.strains_trace:pages",  # before /strains/{collection}
        "sandgrain.web.strains:pages",
    ),
    cli_extensions=(
        ("strains", "drift", "sandgrain.cli.strains_map:drift_cmd"),
        ("strains", "simulate", "sandgrain.cli.strains_map:simulate_cmd"),
        ("strains", "simulate-outcomes", "sandgrain.cli.strains_outcomes:simulate_outcomes_cmd"),
        ("strains", "nearest", "sandgrain.cli.strains_paths:nearest_cmd"),
        ("strains", "access", "sandgrain.cli.strains_paths:access_cmd"),
        ("strains", "tree", "sandgrain.cli.strains_tree:tree_cmd"),
        ("strains", "place", "sandgrain.cli.strains_tree:place_cmd"),
        ("strains", "profile", "sandgrain.cli.strains_profile:profile_cmd"),
    ),
    dataset_kinds={
        "strains": "a genome collection: reference, metadata and per-genome calls and QC",
        "strainmaps": "a collection's k-mer map: PCA components, mean, per-strain coordinates",
        "strainaccess": "who sees a collection through the API: its tier and subjects",
        "straintrees": "a collection's tree: Newick topology, node mutations (parsimony), leaves",
    },
    tasks=(
        "sandgrain.strains.collection:call_batch",
        "sandgrain.strains.nearest:nearest_task",
        "sandgrain.strains.profile:profile_task",
    ),
    demo="sandgrain.strains.demo:demo",
    # What other domains use through sandgrain.registry.capability (the association domain).
    provides={"strains.mutation-features": "sandgrain.strains.features:mutation_features"},
)
