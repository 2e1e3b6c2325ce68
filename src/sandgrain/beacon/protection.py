"""Small counts are never reported as they are: the Beacon's re-identification defence.

Shringarpure & Bustamante (2015) showed that a few hundred yes/no queries about rare alleles
suffice to tell whether a known genome is in a Beacon; Raisaro et al. (2017) sharpened the attack
and proposed the defences used here: hide answers about alleles carried by very few people (and
cap the number of queries a user can ask: the query budget).

References
----------
- Shringarpure SS, Bustamante CD (2015). Privacy risks from genomic data-sharing beacons.
  Am J Hum Genet 97(5):631-646.
- Raisaro JL, Tramèr F, Ji Z, et al. (2017). Addressing Beacon re-identification attacks:
  quantification and mitigation of privacy risks. J Am Med Inform Assoc 24(4):799-805.
- Beacon v2.2.0 ``countPrecision`` / ``countAdjustedTo`` (ga4gh-beacon/beacon-v2 PR #220, #223).
"""

from __future__ import annotations

import math
from typing import Any

from sandgrain.errors import InputError

from .policy import SecurityConfig


def protect_count(n: int, config: SecurityConfig) -> tuple[int | None, dict[str, Any]]:
    """The count to report for a true count ``n``, and the Beacon v2.2 fields describing it.

    Returns ``(reported, info)``; ``info`` holds ``countPrecision`` (``exact`` | ``imprecise`` |
    ``rounded``) and, when the count was changed, ``countAdjustedTo`` (a list with the value it
    was adjusted to); the API copies both into the result set and the response summary. Rules:

    1. ``n == 0`` → ``0``, exact: absence is already told by ``exists: false``.
    2. ``0 < n < min_count`` → per ``small_counts``: ``min_count`` (threshold), ``0`` (zero) or
       ``None`` (hide: give no count at all), with ``countAdjustedTo = [min_count]`` and
       ``countPrecision = "imprecise"``. A count of one or two carriers is exactly what the
       re-identification attacks of Shringarpure & Bustamante (2015) and Raisaro et al. (2017)
       test for, so it is never reported as such.
    3. otherwise, ``count_precision == "rounded"`` → ``n`` rounded up to a multiple of
       ``round_to`` (23 → 30 with step 10; 30 stays 30), ``countAdjustedTo = [reported]``,
       ``"rounded"`` -- for every such count, so the flag does not single out exact ones.
    4. otherwise ``n`` exactly, ``countPrecision = "exact"``.

    The v2.1.1 schemas do not name these two fields yet, but allow them (result sets and the
    count summary accept additional properties).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"a count must be a whole number ≥ 0, not {n!r}")
    if n == 0:
        return 0, {"countPrecision": "exact"}
    if n < config.min_count:
        reported = {"threshold": config.min_count, "zero": 0, "hide": None}[config.small_counts]
        return reported, {"countAdjustedTo": [config.min_count], "countPrecision": "imprecise"}
    if config.count_precision == "rounded":
        # Marked rounded even when n is already a multiple: an "exact" flag on 30 but not on
        # 23 would tell which counts are exact.
        reported = math.ceil(n / config.round_to) * config.round_to
        return reported, {"countAdjustedTo": [reported], "countPrecision": "rounded"}
    return n, {"countPrecision": "exact"}
