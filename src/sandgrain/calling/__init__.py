"""Calling: reads to variants, scattered over the genome.

Reads are aligned in chunks with minimap2 (:mod:`.align`), merged with duplicates marked, and
called with ``bcftools mpileup | bcftools call`` in regions cut by coverage
(:mod:`.regions`, :mod:`.call`); :mod:`.pipeline` runs it on the fan-out engine for one sample
or a cohort. :mod:`.simulate` plants variants and simulates reads; :mod:`.accuracy` scores calls
against a truth set.
"""
