"""Shared pieces of the strains tests: the MN908947 reference, its coding sequences, the 418
shared genomes, and a planter of changes that knows what it planted."""

from __future__ import annotations

import gzip
from functools import cache

from conftest import DATA

from sandgrain.genome.annotation.read import read_annotation
from sandgrain.strains.align import Reference
from sandgrain.strains.mutations import coding_sequences

NCOV = DATA / "pathogen/sars-cov-2-ncov-example"
REF_FASTA = NCOV / "reference_seq.fasta"
REF_GB = NCOV / "reference_seq.gb"
GENOMES = NCOV / "example_sequences.fasta.gz"
METADATA = NCOV / "example_metadata.tsv"


@cache
def reference_text() -> str:
    return "".join(REF_FASTA.read_text().split("\n", 1)[1].split())


@cache
def reference() -> Reference:
    return Reference.from_sequence(reference_text())


@cache
def cds():
    table = read_annotation(str(REF_GB))
    return coding_sequences(list(table), len(reference_text()))


@cache
def genomes() -> tuple[tuple[str, str], ...]:
    out, name, parts = [], None, []
    with gzip.open(GENOMES, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                if name:
                    out.append((name, "".join(parts)))
                name, parts = line[1:].split()[0], []
            else:
                parts.append(line.strip())
    out.append((name, "".join(parts)))
    return tuple(out)
