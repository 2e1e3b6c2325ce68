"""Phenotypes: clinical free text → Human Phenotype Ontology terms (and, in the FHIR and
outcome modules, standard outcome codes and FHIR resources)."""
