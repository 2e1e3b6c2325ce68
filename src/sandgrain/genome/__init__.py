"""Genomes: sequences, chromosome names and gene annotations."""
