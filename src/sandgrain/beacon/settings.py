"""The Beacon's settings section: ``SANDGRAIN_BEACON_*``, read once by :mod:`sandgrain.config`.

=============================  ===============================================================
``SANDGRAIN_BEACON_CONFIG``    the security/identity config file (JSON, or TOML by its name)
``SANDGRAIN_BEACON_STORES``    more stores to answer from (federation): comma-separated URLs,
                               or a JSON list of ``{"url": …, "storage_options": {…}}``
``SANDGRAIN_BEACON_CACHE_MB``  memory for cached partitions, per server (default 1,024 MiB)
``SANDGRAIN_BEACON_SCHEMAS``   the Beacon v2 schema folder (default: the shared data's
                               ``beacon-v2-schemas``)
``SANDGRAIN_BEACON_MAX_BODY``  largest request body in bytes (default 1,048,576); a larger one
                               is refused with 413 before it is read whole
``SANDGRAIN_BEACON_AUDIT_FAIL_CLOSED``
                               ``true`` (default): a query whose audit event cannot be written
                               is answered 503; ``false``: the failure is logged, the query
                               answered
``SANDGRAIN_BEACON_CORS_ORIGINS``
                               origins whose browser pages may call the Beacon (comma-separated,
                               e.g. ``https://ui.example.org``; ``*`` for any); none by default
=============================  ===============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Settings, SettingsSection
from ..errors import InputError

#: Memory for decoded partitions when none is set (MiB).
DEFAULT_CACHE_MB = 1024
#: Largest request body when none is set (bytes); a Beacon request is a few hundred bytes.
DEFAULT_MAX_BODY = 1 << 20


@dataclass(frozen=True)
class BeaconSettings(SettingsSection):
    prefix = "BEACON"

    config: str = ""
    stores: str = ""
    cache_mb: int = DEFAULT_CACHE_MB
    schemas: str = ""
    cors_origins: str = ""
    max_body: int = DEFAULT_MAX_BODY
    audit_fail_closed: bool = True

    def __post_init__(self) -> None:
        if self.max_body < 1:
            raise InputError(
                f"SANDGRAIN_BEACON_MAX_BODY must be 1 byte or more, not {self.max_body}"
            )

    def schema_dir(self, settings: Settings) -> Path:
        """The Beacon v2 schema folder: ``schemas``, else ``<data>/beacon-v2-schemas``."""
        return Path(self.schemas) if self.schemas else Path(settings.data) / "beacon-v2-schemas"
