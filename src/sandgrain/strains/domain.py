"""The strains domain registers itself: pathogen genome collections, QC, mutations and a k-mer map.

See :mod:`sandgrain.registry` for the contract. Collections are datasets of kind ``strains``
(:mod:`sandgrain.strains.collection`); their genomes are aligned, called and checked by fan-out
tasks, one per batch of genomes.
"""

from ..registry import Domain, Page

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
    pages=(
        Page(
            "/strains",
            "Strain map",
            "A collection's genomes on their k-mer map by date and place, its drift over time and "
            "each genome's mutations and QC.",
            "The 418 SARS-CoV-2 genomes of Nextstrain's ncov example (Dec 2019 – May 2020).",
        ),
        Page(
            "/strains/trace",
            "Trace a sample",
            "A new genome's nearest strains, its place on the map and the tree, and who else "
            "carries its mutations, when and where.",
            "The mutations that define lineage B.1 (C241T, C3037T, C14408T, A23403G: spike "
            "D614G) against the 418 genomes.",
        ),
    ),
    # What other domains use through sandgrain.registry.capability (the association domain).
    provides={"strains.mutation-features": "sandgrain.strains.features:mutation_features"},
)
