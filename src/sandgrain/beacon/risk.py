"""Rare-allele defences: a risk budget that charges more for rare alleles, and a query-pattern
check that stops a caller who keeps probing rare alleles.

A Beacon's membership attack (Shringarpure & Bustamante 2015) asks about the alleles of a known
genome; each "yes" for a rare allele says much more than one for a common allele, because few
people other than the target could have caused it. Raisaro et al. (2017) answered with three
defences, which the Beacon applies where a caller may not see individual records:

1. **Hide rare alleles.** An allele carried by fewer than ``rare_min_carriers`` individuals of
   the answering group (or below ``rare_allele_frequency``) is answered as absent, for datasets
   whose access tier is in ``rare_hidden_tiers`` (default: public). "Absent" and "hidden" give
   the same answer, so asking cannot tell them apart (:mod:`sandgrain.beacon.query` drops those
   rows in the scan itself).
2. **A risk budget, per caller.** Each genomic query costs 1, and an answer that reveals a rare
   allele costs more: :func:`query_cost` (``1 + ⌈log2(rare_cost_frequency / f)⌉`` for the rarest
   allele frequency ``f`` the answer shows, capped at ``max_query_cost``). The budget
   (``risk_budget`` per ``budget_window_s``) is checked before a query runs — there must be room
   for the costliest answer — and charged after it, with what the answer revealed; a hidden
   allele costs what an absent one costs, so the charge tells nothing the answer does not.
3. **Query-pattern detection** (the repeated-probing pattern of von Thenen et al. 2019, who
   showed that answers about alleles in linkage disequilibrium with the target's leak it too):
   a caller whose queries touched rare alleles — shown or hidden — more than
   ``rare_query_limit`` times in the window is refused all genomic queries until the window has
   passed. The refusal tells only that the limit was reached, not which query reached it.

Raisaro's third defence budgets each *individual's* risk per caller; this module budgets the
caller's, which needs no per-person bookkeeping and bounds the same attack (the number of
rare-allele answers any one caller gets).

References
----------
- Shringarpure SS, Bustamante CD (2015). Privacy risks from genomic data-sharing beacons.
  Am J Hum Genet 97(5):631-646.
- Raisaro JL, Tramèr F, Ji Z, et al. (2017). Addressing Beacon re-identification attacks:
  quantification and mitigation of privacy risks. J Am Med Inform Assoc 24(4):799-805.
- von Thenen N, Ayday E, Cicek AE (2019). Re-identification of individuals in genomic
  data-sharing beacons via allele inference. Bioinformatics 35(3):365-371.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sandgrain.db import Database, connect

from .errors import BudgetExceededError

_SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS beacon_risk (
        key TEXT NOT NULL,
        t {float} NOT NULL,
        cost {float} NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS beacon_risk_by_key ON beacon_risk (key, t)",
)


def query_cost(rarest: float | None, *, rare_frequency: float, max_cost: int) -> int:
    """The risk cost of an answer whose rarest shown allele has frequency ``rarest`` (``None``:
    the answer showed no allele): 1, plus ``⌈log2(rare_frequency / rarest)⌉`` when ``rarest``
    is below ``rare_frequency``; at most ``max_cost``.

    With the default ``rare_frequency`` 0.01, an allele at 0.5 % costs 2, at 0.1 % 5, and a
    singleton among 2,504 people (0.02 %) 7: each halving of the frequency doubles how much a
    "yes" says about the few people who carry it.
    """
    if rarest is None or rarest >= rare_frequency:
        return 1
    if rarest <= 0:
        return max_cost
    return min(max_cost, 1 + math.ceil(math.log2(rare_frequency / rarest)))


class RiskBudget:
    """Weighted charges per key in a sliding window: the risk budget and the rare-query count.

    Keys: ``risk|<caller>`` (costs of answers) and ``rare|<caller>`` (one per query that touched
    a rare allele). ``limit == 0`` means unlimited. Writers of the same key take turns
    (:meth:`sandgrain.db.Database.transaction`), so processes sharing the database never
    overspend.
    """

    def __init__(
        self,
        database: str | os.PathLike[str] | Database,
        *,
        window_s: float = 3600,
        clock: Callable[[], float] = time.time,
    ):
        self.window_s = window_s
        self._clock = clock
        self._owns_db = not isinstance(database, Database)
        self._db = connect(database)
        self._db.ensure_schema("beacon_risk", _SCHEMA_VERSION, _SCHEMA)

    def used(self, key: str) -> tuple[float, float | None]:
        """The cost spent by ``key`` in the window, and when its oldest charge was made."""
        start = self._clock() - self.window_s
        ((used, oldest),) = self._db.query(
            "SELECT COALESCE(SUM(cost), 0), MIN(t) FROM beacon_risk WHERE key = ? AND t > ?",
            (key, start),
        )
        return float(used), oldest

    def require(self, key: str, room: float, limit: float, what: str) -> None:
        """Raise :class:`BudgetExceededError` (429) unless ``key`` has ``room`` left of
        ``limit`` in the window."""
        if not limit:
            return
        used, oldest = self.used(key)
        if used + room <= limit:
            return
        reset = (oldest if oldest is not None else self._clock()) + self.window_s
        wait = max(1, math.ceil(reset - self._clock()))
        when = datetime.fromtimestamp(reset, UTC).replace(microsecond=0)
        raise BudgetExceededError(
            f"{what}: the limit is {limit:g} per {self.window_s:g} s; queries are allowed again "
            f"at {when.strftime('%Y-%m-%dT%H:%M:%SZ')} (in {wait} s)",
            retry_after_s=wait,
        )

    def charge(self, key: str, cost: float) -> None:
        """Spend ``cost`` of ``key``'s budget (old charges of the key are pruned)."""
        now = self._clock()
        with self._db.transaction(write=True, scope=f"beacon_risk:{key}") as tx:
            start = now - self.window_s
            tx.execute("DELETE FROM beacon_risk WHERE key = ? AND t <= ?", (key, start))
            tx.execute("INSERT INTO beacon_risk (key, t, cost) VALUES (?, ?, ?)", (key, now, cost))

    def close(self) -> None:
        if self._owns_db:
            self._db.close()
