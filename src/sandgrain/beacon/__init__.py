"""A GA4GH Beacon v2 over variant datasets kept in their owner's storage.

``ingest`` (VCF/BCF → Parquet partitions on the fan-out engine), ``store`` (the datasets of one or
more stores), ``query`` (the six genomic query forms, individuals, exact subset counts),
``consent`` (revoke/restore), ``genes`` (gene tables for geneId), ``security`` (tokens, visas,
tiers, count protection, budget, audit), ``responses`` and ``schemas`` (the Beacon v2 documents
and their offline validation), ``api`` (the ``/api/beacon`` router). See ``docs/beacon.md``.
"""
