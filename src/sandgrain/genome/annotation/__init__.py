"""Gene annotations (GTF, GFF3, the SGD features table, GenBank) read into one
:class:`~sandgrain.genome.annotation.genes.GeneTable`.

One module per idea:

* :mod:`~sandgrain.genome.annotation.genes` — :class:`Gene`, :class:`GeneTable` (name look-up,
  overlap queries, Parquet) and the interval helpers;
* :mod:`~sandgrain.genome.annotation.builder` — what the readers share;
* one reader per format: :mod:`~sandgrain.genome.annotation.gtf`,
  :mod:`~sandgrain.genome.annotation.gff3`, :mod:`~sandgrain.genome.annotation.sgd`,
  :mod:`~sandgrain.genome.annotation.genbank`;
* :mod:`~sandgrain.genome.annotation.read` — format detection and the entry points
  :func:`read_annotation` (a file) and :func:`parse_annotation` (bytes in memory).

This package exposes that public API::

    table = read_annotation("SGD_features.tab", genome="yeast")
    table.lookup("GAL4").location   # 'XVI:79711-82356'
"""

from __future__ import annotations

from .genes import Gene, GeneTable
from .read import FORMATS, detect_format, parse_annotation, read_annotation
from .sgd import SGD_CHROMOSOMES, SGD_GENE_TYPES

__all__ = [
    "FORMATS",
    "SGD_CHROMOSOMES",
    "SGD_GENE_TYPES",
    "Gene",
    "GeneTable",
    "detect_format",
    "parse_annotation",
    "read_annotation",
]
