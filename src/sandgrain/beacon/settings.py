"""The Beacon's settings section: ``SANDGRAIN_BEACON_*``, read once by :mod:`sandgrain.config`.

=============================  ===============================================================
``SANDGRAIN_BEACON_CONFIG``    the security/identity config file (JSON, or TOML by its name)
``SANDGRAIN_BEACON_STORES``    more stores to answer from (federation): comma-separated URLs,
                               or a JSON list of ``{"url": …, "storage_options": {…}}``
``SANDGRAIN_BEACON_CACHE_MB``  memory for cached partitions, per server (default 1,024 MiB)
``SANDGRAIN_BEACON_SCHEMAS``   the Beacon v2 schema folder (default: the shared data's
                               ``beacon-v2-schemas``)
=============================  ===============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Settings, SettingsSection

#: Memory for decoded partitions when none is set (MiB).
DEFAULT_CACHE_MB = 1024


@dataclass(frozen=True)
class BeaconSettings(SettingsSection):
    prefix = "BEACON"

    config: str = ""
    stores: str = ""
    cache_mb: int = DEFAULT_CACHE_MB
    schemas: str = ""

    def schema_dir(self, settings: Settings) -> Path:
        """The Beacon v2 schema folder: ``schemas``, else ``<data>/beacon-v2-schemas``."""
        return Path(self.schemas) if self.schemas else Path(settings.data) / "beacon-v2-schemas"
