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
SANDGRAIN_DATABASE      the metadata database (jobs, Beacon audit log and query budgets): a SQLite
                        file path or ``sqlite:///path``, or ``postgresql://user:pw@host:5432/db``
                        to share it between servers (default: ``$SANDGRAIN_HOME/sandgrain.sqlite``)
SANDGRAIN_TEST_DATA     the shared data folder `sandgrain demo` imports (default ../shared/data)
SANDGRAIN_CACHE_DIR     the worker cache: local copies of dataset files read from object storage
                        (default ``$SANDGRAIN_HOME/cache``; see :mod:`sandgrain.cache`)
SANDGRAIN_CACHE_MB      the worker cache's size cap in MB, least recently used files evicted first
                        (default 10240: the 10 GB of ``/tmp`` an AWS Lambda function may have)
SANDGRAIN_TASK_SECONDS  a fan-out task that can split itself hands the rest of its work on as new
                        tasks after this many seconds (default: no limit; see
                        :mod:`sandgrain.fanout.budget`)
SANDGRAIN_TASK_READ_MB  … or after reading this many MB (default: no limit)
SANDGRAIN_TASK_MEMORY_MB  memory one fan-out task may use: partitions are sized to fit
                        (default 10240, an AWS Lambda function's largest)
SANDGRAIN_TASK_DISK_MB  local disk one fan-out task may fill (default 10240, Lambda's ``/tmp``)

Each domain reads its own variables through a settings section (:class:`SettingsSection`, e.g.
``SANDGRAIN_BEACON_*``): ``settings.section(BeaconSettings)``. No domain reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_type_hints

import platformdirs

from .errors import InputError

ENV_PREFIX = "SANDGRAIN_"
DEFAULT_DATA = "../shared/data"
DEFAULT_CACHE_MB = 10240
#: A fan-out task's memory and disk budgets when none are set: an AWS Lambda function's largest.
DEFAULT_TASK_MEMORY_MB = 10240
DEFAULT_TASK_DISK_MB = 10240

S = TypeVar("S", bound="SettingsSection")


class SettingsSection:
    """Base of a domain's settings section: a frozen dataclass read from ``SANDGRAIN_<PREFIX>_*``.

    A subclass sets :attr:`prefix` (``"BEACON"``) and declares typed fields with defaults; field
    ``cache_mb`` is read from ``SANDGRAIN_BEACON_CACHE_MB`` unless its metadata names another
    variable (``field(default=…, metadata={"env": "SANDGRAIN_BEACON_SCHEMAS"})``). Values are
    converted to the field's type (``str``, ``int``, ``float``, ``bool``) with one clear error.
    """

    prefix: ClassVar[str] = ""

    @classmethod
    def from_env(cls: type[S], env: Mapping[str, str]) -> S:
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            var = f.metadata.get("env") or f"{ENV_PREFIX}{cls.prefix}_{f.name.upper()}"
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(raw, hints.get(f.name), var)
        return cls(**values)


def _convert(raw: str, kind: Any, var: str) -> Any:
    text = str(kind)
    try:
        if kind is bool or text.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind is int or text.startswith("int"):
            return int(raw)
        if kind is float or text.startswith("float"):
            return float(raw)
    except ValueError:
        raise InputError(f"{var} must be {text.split(' ')[0]}-valued, not {raw!r}") from None
    return raw


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
    database: str | None = None
    data: str = DEFAULT_DATA
    cache_dir: str | None = None
    cache_mb: int = DEFAULT_CACHE_MB
    task_seconds: float | None = None
    task_read_mb: int | None = None
    task_memory_mb: int = DEFAULT_TASK_MEMORY_MB
    task_disk_mb: int = DEFAULT_TASK_DISK_MB
    #: The ``SANDGRAIN_*`` variables these settings were built from (for :meth:`section`).
    env: tuple[tuple[str, str], ...] = ()

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
            ("database", "DATABASE"),
            ("data", "TEST_DATA"),
            ("cache_dir", "CACHE_DIR"),
            ("cache_mb", "CACHE_MB"),
            ("task_seconds", "TASK_SECONDS"),
            ("task_read_mb", "TASK_READ_MB"),
            ("task_memory_mb", "TASK_MEMORY_MB"),
            ("task_disk_mb", "TASK_DISK_MB"),
        ):
            raw = env.get(ENV_PREFIX + var)
            if raw:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault(
            "env", tuple(sorted((k, v) for k, v in env.items() if k.startswith(ENV_PREFIX)))
        )
        for name, (kind, least, unit, label) in _NUMBERS.items():
            if values.get(name) is not None:
                values[name] = _number(values[name], kind, least, unit, label)
        return cls(**values)

    @property
    def store(self) -> str:
        """The storage URL in force (defaults to ``<home>/store``)."""
        return self.store_url or str(Path(self.home) / "store")

    @property
    def cache_path(self) -> str:
        """The worker cache directory in force (defaults to ``<home>/cache``)."""
        return str(Path(self.cache_dir or Path(self.home) / "cache").expanduser())

    @property
    def database_url(self) -> str:
        """The metadata database in force (see :mod:`sandgrain.db`): ``database``, or the SQLite
        file ``<home>/sandgrain.sqlite``."""
        if self.database:
            return self.database
        return "sqlite:///" + str(Path(self.home).expanduser() / "sandgrain.sqlite")

    def section(self, cls: type[S]) -> S:
        """A domain's settings section, read from the variables these settings were built from."""
        return _section(cls, self.env)

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def storage_options(self) -> dict:
        """fsspec options for the store (the S3 endpoint when one is set)."""
        if self.s3_endpoint and self.store.startswith("s3://"):
            return {"client_kwargs": {"endpoint_url": self.s3_endpoint}}
        return {}


#: Numeric settings: name → (type, least value, what a value is, its name in messages), checked
#: by :func:`_number`.
_NUMBERS: dict[str, tuple[type, int, str, str]] = {
    "retries": (int, 0, "a whole number", "retries"),  # a flag too: --retries
    "cache_mb": (int, 0, "a whole number of MB", "SANDGRAIN_CACHE_MB"),
    "task_seconds": (float, 0, "a number of seconds", "SANDGRAIN_TASK_SECONDS"),
    "task_read_mb": (int, 0, "a whole number of MB", "SANDGRAIN_TASK_READ_MB"),
    "task_memory_mb": (int, 1, "a whole number of MB", "SANDGRAIN_TASK_MEMORY_MB"),
    "task_disk_mb": (int, 1, "a whole number of MB", "SANDGRAIN_TASK_DISK_MB"),
}


def _number(raw: Any, kind: type, least: int, unit: str, label: str) -> int | float:
    """``raw`` (a flag's or a variable's value) as a finite ``kind`` of at least ``least``."""
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        value = None
    if value is None or value != value or value in (float("inf"), float("-inf")):
        raise InputError(f"{label} must be {unit}, not {raw!r}")
    if value < least:
        raise InputError(f"{label} must be {least} or more, not {value}")
    return value


_SECTIONS: dict[tuple[type, tuple], Any] = {}


def _section(cls: type[S], env: tuple[tuple[str, str], ...]) -> S:
    key = (cls, env)
    if key not in _SECTIONS:
        if len(_SECTIONS) > 256:  # settings objects are few; never let this grow unbounded
            _SECTIONS.clear()
        _SECTIONS[key] = cls.from_env(dict(env))
    return _SECTIONS[key]
