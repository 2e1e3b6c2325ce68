"""A GA4GH Beacon v2 over variant datasets kept in their owner's storage.

``ingest`` (VCF/BCF → Parquet partitions on the fan-out engine), ``store`` (the datasets of one or
more stores), ``query`` (the six genomic query forms, individuals, exact subset counts),
``consent`` (revoke/restore), ``request`` (a request, validated
once), ``service`` (one call in, one audited Beacon document out), ``access`` (tiers,
visas' grants, group sizes), ``policy`` (security settings), ``tokens`` (OIDC tokens, visas),
``protection`` (small counts), ``budget`` (query budget), ``audit`` (audit log), ``responses`` and
``records`` (the Beacon v2 envelopes and model records), ``schemas`` (their offline validation),
``errors``. The HTTP router is :mod:`sandgrain.web.beacon`. See ``docs/beacon.md``.
"""
