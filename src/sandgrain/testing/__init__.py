"""Helpers for tests and benchmarks only; production code never imports this package.

- :mod:`sandgrain.testing.s3` — a real S3-protocol server (moto) on loopback.
- :mod:`sandgrain.testing.fanout_tasks` — small fan-out tasks (sums, flaky and slow tasks) that
  exercise every executor; they live in the installed package so Dask workers and Lithops
  functions can import them by name.
- :mod:`sandgrain.testing.auth` — a loopback OpenID Connect provider, tokens and visas for the
  Beacon's security tests.

A test in ``tests/architecture`` checks that no runtime module imports this package.
"""
