"""Pathogen surveillance: genome collections, QC, mutations, and a k-mer map over time."""
