"""The Beacon's query budget: at most so many genomic queries per user in a sliding window.

:class:`QueryBudget` keeps one timestamped row per charge in the ``beacon_budget`` table of the
metadata database (:mod:`sandgrain.db`: the SQLite file under ``SANDGRAIN_HOME`` or PostgreSQL),
so every server process and serverless function sharing that database shares each user's
budget.

References
----------
- Raisaro JL, Tramèr F, Ji Z, et al. (2017). Addressing Beacon re-identification attacks:
  quantification and mitigation of privacy risks. J Am Med Inform Assoc 24(4):799-805 (query
  budgets against repeated-query attacks).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandgrain.config import Settings
from sandgrain.db import Database, connect

from .errors import BudgetExceededError
from .policy import SecurityConfig, _check_number

_SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS beacon_budget (
        key TEXT NOT NULL,
        t {float} NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS beacon_budget_by_key ON beacon_budget (key, t)",
)


class QueryBudget:
    """At most ``limit`` charges per key in any ``window_s`` seconds (a sliding window).

    Each charge is a timestamped row; a charge is refused while ``limit`` rows of the key are
    younger than ``window_s``, and allowed again as soon as the oldest of them ages out. A sliding
    window, unlike a fixed one, gives no burst of twice the limit around a window boundary.
    The check and the insert happen in one write transaction whose writers of the same key take
    turns (:meth:`sandgrain.db.Database.transaction`), so several threads and processes sharing
    the database never overspend. ``limit == 0`` means unlimited.

    ``database`` is a URL or path (:mod:`sandgrain.db`) or an open
    :class:`~sandgrain.db.Database`. Keys are :attr:`Principal.budget_key`. The API charges only
    queries that answer with genomic data, before running them; a refused query is not charged.
    """

    _PRUNE_EVERY = 1000

    def __init__(
        self,
        database: str | os.PathLike[str] | Database,
        *,
        limit: int = 1000,
        window_s: float = 3600,
        clock: Callable[[], float] = time.time,
    ):
        _check_number(limit, "budget limit", minimum=0, integer=True)
        _check_number(window_s, "budget window", minimum=1)
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._owns_db = not isinstance(database, Database)
        self._db = connect(database)
        self._db.ensure_schema("beacon_budget", _SCHEMA_VERSION, _SCHEMA)
        self._charges = 0

    @classmethod
    def from_config(
        cls, config: SecurityConfig, settings: Settings | None = None, **kwargs: Any
    ) -> QueryBudget:
        return cls(
            config.database_url(settings),
            limit=config.budget_limit,
            window_s=config.budget_window_s,
            **kwargs,
        )

    def charge(self, key: str) -> int:
        """Spend one query of ``key``'s budget; return how many remain in the window (-1 when
        the budget is unlimited).

        Raises :class:`BudgetExceededError` (429) when none remain; the message says when the
        next query will be allowed.
        """
        if self.limit == 0:
            return -1
        now = self._clock()
        start = now - self.window_s
        with self._db.transaction(write=True, scope=f"beacon_budget:{key}") as tx:
            self._charges += 1
            if self._charges % self._PRUNE_EVERY == 0:
                tx.execute("DELETE FROM beacon_budget WHERE t <= ?", (start,))
            else:
                tx.execute("DELETE FROM beacon_budget WHERE key = ? AND t <= ?", (key, start))
            used, oldest = tx.execute(
                "SELECT COUNT(*), MIN(t) FROM beacon_budget WHERE key = ?", (key,)
            ).fetchone()
            if used < self.limit:
                tx.execute("INSERT INTO beacon_budget (key, t) VALUES (?, ?)", (key, now))
                return self.limit - used - 1
        reset = oldest + self.window_s
        wait = max(1, math.ceil(reset - now))
        when = datetime.fromtimestamp(reset, UTC).replace(microsecond=0)
        raise BudgetExceededError(
            f"query budget used up: {self.limit} genomic queries per {self.window_s:g} s; "
            f"the next one is allowed at {when.strftime('%Y-%m-%dT%H:%M:%SZ')} (in {wait} s)",
            retry_after_s=wait,
        )

    def remaining(self, key: str) -> int:
        """Queries ``key`` may still make in the current window, without spending one."""
        if self.limit == 0:
            return -1
        start = self._clock() - self.window_s
        ((used,),) = self._db.query(
            "SELECT COUNT(*) FROM beacon_budget WHERE key = ? AND t > ?", (key, start)
        )
        return max(0, self.limit - used)

    def close(self) -> None:
        if self._owns_db:
            self._db.close()
