"""One settings object shared by the CLI, the web app and the workers.

Precedence: explicit values (command-line flags) > environment variables > defaults.

Environment variables
---------------------
SANDGRAIN_HOME          data home (default: the platform's user data directory)
SANDGRAIN_STORE         storage URL: a local path or ``s3://bucket/prefix``
                        (default: ``$SANDGRAIN_HOME/store``)
SANDGRAIN_S3_ENDPOINT   endpoint URL for S3-compatible object storage (MinIO, Ceph, moto, …)
SANDGRAIN_EXECUTOR      fan-out executor URL: ``local``, ``local:N``, ``serial``, ``dask://host:port``,
                        ``dask-local``, ``lithops``, ``lithops:localhost`` (default ``local``)
SANDGRAIN_RETRIES       retries of a failed fan-out task (default 2)
SANDGRAIN_JOBS_DB       SQLite file of the job store (default: ``$HOME/jobs.sqlite``)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from .errors import InputError

ENV_PREFIX = "SANDGRAIN_"


def _default_home() -> str:
    return platformdirs.user_data_dir("sandgrain", appauthor=False)


@dataclass(frozen=True)
class Settings:
    """Where data lives and where work runs."""

    home: str = field(default_factory=_default_home)
    store_url: str | None = None
    s3_endpoint: str | None = None
    executor: str = "local"
    retries: int = 2
    jobs_db: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> Settings:
        """Build settings from the environment, then apply non-``None`` overrides (flags)."""
        env = os.environ if env is None else env
        values: dict = {}
        for name, var in (
            ("home", "HOME"),
            ("store_url", "STORE"),
            ("s3_endpoint", "S3_ENDPOINT"),
            ("executor", "EXECUTOR"),
            ("retries", "RETRIES"),
            ("jobs_db", "JOBS_DB"),
        ):
            raw = env.get(ENV_PREFIX + var)
            if raw:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "retries" in values:
            try:
                values["retries"] = int(values["retries"])
            except ValueError:
                raise InputError(
                    f"retries must be a whole number, not {values['retries']!r}"
                ) from None
            if values["retries"] < 0:
                raise InputError("retries must be 0 or more")
        return cls(**values)

    @property
    def store(self) -> str:
        """The storage URL in force (defaults to ``<home>/store``)."""
        return self.store_url or str(Path(self.home) / "store")

    @property
    def jobs_path(self) -> str:
        return self.jobs_db or str(Path(self.home) / "jobs.sqlite")

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def storage_options(self) -> dict:
        """fsspec options for the store (the S3 endpoint when one is set)."""
        if self.s3_endpoint and self.store.startswith("s3://"):
            return {"client_kwargs": {"endpoint_url": self.s3_endpoint}}
        return {}
