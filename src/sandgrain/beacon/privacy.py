"""The Beacon's re-identification defences, in the order a query meets them.

For every dataset a caller may not read at record level (:mod:`sandgrain.beacon.access`):

1. a filtered group smaller than ``min_count`` is refused (:func:`access.check_group_sizes`);
2. a filtered group that would isolate fewer than ``min_count`` people together with the groups
   answered before is refused (:mod:`sandgrain.beacon.groups`, the differencing defence);
3. a caller over its risk budget, or past its limit of queries touching rare alleles, is refused
   (429) before the query runs (:mod:`sandgrain.beacon.risk`);
4. rare alleles are answered as absent at the tiers that hide them;
5. counts of *individuals* from 1 to ``min_count − 1`` are reported as ``min_count``
   (:func:`sandgrain.beacon.protection.protect_count`; counts of variants are not people and are
   reported as they are, since every variant shown has at least ``rare_min_carriers`` carriers);
6. the answer's cost is charged to the caller's risk budget.

A caller with record-level access to a dataset sees its individuals anyway; none of this
applies to that dataset.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from sandgrain.config import Settings

from .groups import GroupAudit
from .policy import SecurityConfig
from .query import DatasetAnswer, on_current_version, subset_for
from .risk import RiskBudget, query_cost
from .store import BeaconDataset
from .tokens import Principal

Visible = list[tuple[BeaconDataset, str]]


class Guard:
    """The stateful defences of one Beacon service: answered groups and risk budgets, kept in
    the audit/budget database (``SecurityConfig.database_url``), so every server process shares
    them."""

    def __init__(self, config: SecurityConfig, settings: Settings | None = None):
        self.config = config
        url = config.database_url(settings)
        self.groups = GroupAudit(url, max_groups=config.max_tracked_groups)
        self.risk = RiskBudget(url, window_s=config.budget_window_s)

    # -- before the query -------------------------------------------------------------------
    def before(self, principal: Principal, filters: list[str], seen: Visible) -> dict[str, dict]:
        """Refuse the query if a defence says so; return the rare-allele rule of each guarded
        dataset that hides rare alleles (for :func:`sandgrain.beacon.query.answer_variants`)."""
        guarded = [ds for ds, allowed in seen if allowed != "record"]
        if not guarded:
            return {}
        self._check_groups(principal, filters, guarded)
        key = principal.budget_key
        c = self.config
        self.risk.require(f"risk|{key}", c.max_query_cost, c.risk_budget, "risk budget used up")
        self.risk.require(
            f"rare|{key}", 1, c.rare_query_limit,
            "too many queries about rare alleles (a re-identification pattern)",
        )  # fmt: skip
        return self.rare_rules(guarded)

    def rare_rules(self, datasets: Iterable[BeaconDataset]) -> dict[str, dict]:
        c = self.config
        if not (c.rare_min_carriers or c.rare_allele_frequency):
            return {}
        rule = {"carriers": c.rare_min_carriers, "frequency": c.rare_allele_frequency}
        return {ds.id: rule for ds in datasets if ds.access in c.rare_hidden_tiers}

    def _check_groups(self, principal: Principal, filters: list[str], guarded) -> None:
        c = self.config
        if not filters or c.group_tracking == "off" or c.min_count < 2:
            return
        scope = "*" if c.group_tracking == "global" else principal.budget_key
        for ds in guarded:
            on_current_version(ds, lambda ds: self._check_one(ds, scope, filters))

    def _check_one(self, ds: BeaconDataset, scope: str, filters: list[str]) -> None:
        n = len(ds.samples)
        if n == 0:
            return

        def mask_of(fs: list[str]) -> np.ndarray:
            mask = subset_for(ds, fs).mask
            return np.ones(n, dtype=bool) if mask is None else mask

        self.groups.check(
            f"{ds.id}@{ds.version}", scope, filters, min_count=self.config.min_count,
            universe=mask_of([]), mask_of=mask_of,
        )  # fmt: skip

    # -- after the answer -------------------------------------------------------------------
    def after(self, principal: Principal, seen: Visible, answers: Iterable[DatasetAnswer]) -> int:
        """Charge the answer's risk to the caller; return the cost (0: nothing guarded)."""
        guarded = {ds.id for ds, allowed in seen if allowed != "record"}
        mine = [a for a in answers if a.dataset in guarded]
        if not guarded:
            return 0
        c = self.config
        shown = [a.rarest for a in mine if a.count and a.rarest is not None]
        cost = query_cost(
            min(shown) if shown else None, rare_frequency=c.rare_cost_frequency,
            max_cost=c.max_query_cost,
        )  # fmt: skip
        key = principal.budget_key
        if c.risk_budget:
            self.risk.charge(f"risk|{key}", cost)
        touched = any(a.hidden for a in mine) or cost > 1
        if touched and c.rare_query_limit:
            self.risk.charge(f"rare|{key}", 1)
        return cost

    def close(self) -> None:
        self.groups.close()
        self.risk.close()
