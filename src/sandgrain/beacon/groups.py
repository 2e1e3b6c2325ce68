"""Differencing ("tracker") defence: answered filter groups never isolate a few people.

A filtered query answers about the group of individuals its filters select. Each group alone
may be large enough (``min_count``), yet two answered groups can differ by one person: person X
and 9 others have HP:0001250, only the 9 also have HP:0000707, so ``exists`` for
``HP:0001250`` and for ``HP:0001250 + HP:0000707`` together tell whether X carries the allele.
This is the *tracker* of statistical databases (Denning, Denning & Schwartz 1979), and a
query-set-size check alone cannot stop it (Denning & Schlörer 1980). Three groups can do what
two cannot: with A = {X, 1…10}, B = {1…5}, C = {6…10}, every pairwise difference has 6 people
but A ∖ (B ∪ C) = {X}.

The defence here is *auditing* (Chin & Özsoyoğlu 1982; surveyed by Adam & Wortmann 1989):
keep the groups that have been answered, and refuse a new one when, together with them, it
would split the dataset's individuals into an *atom* — a set of people who are in exactly the
same answered groups — of 1 to ``min_count − 1`` people. Any answer about a union, difference
or intersection of answered groups is then an answer about a union of atoms, each of at least
``min_count`` people (or none), so no combination of answers singles anyone out. The unfiltered
dataset is always an answered group (anyone may ask without filters), so a group that leaves
out fewer than ``min_count`` people is refused too.

The refusal depends only on who is in which group (phenotypes, which the filters already
reveal to the size of a group), never on genotypes, so it tells nothing about the allele asked.

Scope (``SecurityConfig.group_tracking``):

``global`` (default)
    the answered groups of a dataset are shared by all callers, so colluding or anonymous
    callers with many IP addresses cannot combine their answers. The price: a group is refused
    to everyone once someone else's groups would make it isolating.
``requester``
    one set of groups per caller (token subject, else IP address): no caller is refused because
    of another's queries, but colluding callers are not defended against.
``off``
    no tracking (the stateless group-size check of :func:`sandgrain.beacon.access.check_group_sizes`
    still applies).

Not defended (documented): answers before and after a dataset changes (individuals added, or a
consent revoked) differ by the people who changed; publish additions in batches of at least
``min_count`` people. Groups are kept per dataset, in the metadata database (shared by every
server process and serverless function), and are never forgotten.

References
----------
- Denning DE, Denning PJ, Schwartz MD (1979). The tracker: a threat to statistical database
  security. ACM Trans Database Syst 4(1):76-96.
- Denning DE, Schlörer J (1980). A fast procedure for finding a tracker in a statistical
  database. ACM Trans Database Syst 5(1):88-102.
- Chin FY, Özsoyoğlu G (1982). Auditing and inference control in statistical databases. IEEE
  Trans Softw Eng SE-8(6):574-582.
- Adam NR, Wortmann JC (1989). Security-control methods for statistical databases: a
  comparative study. ACM Comput Surv 21(4):515-556.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from sandgrain.db import Database, connect

from .errors import ForbiddenError

_SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS beacon_groups (
        dataset TEXT NOT NULL,
        scope TEXT NOT NULL,
        filters TEXT NOT NULL,
        t {float} NOT NULL,
        PRIMARY KEY (dataset, scope, filters)
    )""",
)
#: Scopes of tracking.
TRACKING = ("global", "requester", "off")


def canonical(filters: list[str]) -> str:
    """One text per filter set, whatever its order or repeats."""
    return json.dumps(sorted(set(filters)), separators=(",", ":"))


def smallest_atom(universe: np.ndarray, groups: list[np.ndarray]) -> int:
    """The size of the smallest non-empty atom the ``groups`` cut ``universe`` into (the sets of
    individuals of ``universe`` that belong to exactly the same groups); 0 when ``universe`` is
    empty. Masks are boolean arrays over the dataset's individuals."""
    members = np.flatnonzero(universe)
    if members.size == 0:
        return 0
    if not groups:
        return int(members.size)
    bits = np.stack([g[members] for g in groups], axis=1)  # person × group
    packed = np.packbits(bits, axis=1)
    _, counts = np.unique(packed, axis=0, return_counts=True)
    return int(counts.min())


class GroupAudit:
    """The answered filter groups of each dataset, and the check that a new group is safe.

    ``database`` is a URL or path (:mod:`sandgrain.db`) or an open
    :class:`~sandgrain.db.Database`. ``max_groups`` bounds the groups kept per dataset and
    scope: past it, new filter sets are refused (existing ones are still answered), so the
    check's cost stays bounded (it is linear in groups × individuals).
    """

    def __init__(
        self,
        database: str | os.PathLike[str] | Database,
        *,
        max_groups: int = 10_000,
        clock: Callable[[], float] = time.time,
    ):
        self._owns_db = not isinstance(database, Database)
        self._db = connect(database)
        self._db.ensure_schema("beacon_groups", _SCHEMA_VERSION, _SCHEMA)
        self.max_groups = max_groups
        self._clock = clock
        self._masks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def check(
        self,
        dataset_key: str,
        scope: str,
        filters: list[str],
        *,
        min_count: int,
        universe: np.ndarray,
        mask_of: Callable[[list[str]], np.ndarray],
    ) -> None:
        """Record the group of ``filters`` as answered in ``dataset_key`` for ``scope``, or
        raise :class:`ForbiddenError` (403) when, with the groups already answered there, it
        would make an atom of 1 to ``min_count − 1`` individuals of ``universe``.

        ``dataset_key`` names the dataset's version (a group answered on another version is
        another group); ``mask_of(filters)`` is the boolean mask of a filter set's individuals.
        The check and the record happen in one write transaction whose writers of the same
        dataset take turns, so two concurrent queries cannot each pass alone and together
        isolate someone.
        """
        if not filters or min_count < 2:
            return
        key = canonical(filters)
        # a filter set answered before is answered again without taking the write turn (groups
        # are only ever added, so what was safe stays safe)
        known = self._db.query(
            "SELECT 1 FROM beacon_groups WHERE dataset = ? AND scope = ? AND filters = ?",
            (dataset_key, scope, key),
        )
        if known:
            return
        with self._db.transaction(write=True, scope=f"beacon_groups:{dataset_key}") as tx:
            rows = tx.execute(
                "SELECT filters FROM beacon_groups WHERE dataset = ? AND scope = ?",
                (dataset_key, scope),
            ).fetchall()
            answered = [r[0] for r in rows]
            if key in answered:
                return
            if len(answered) >= self.max_groups:
                raise ForbiddenError(
                    f"this dataset has answered {len(answered):,} different filter sets, the most "
                    "it tracks; ask with a filter set used before, or without filters"
                )
            groups = [self._mask(dataset_key, f, mask_of) for f in answered]
            new = self._mask(dataset_key, key, mask_of)
            smallest = smallest_atom(universe, [*groups, new])
            if 0 < smallest < min_count:
                raise ForbiddenError(
                    f"these filters, with filter sets answered before, would single out fewer "
                    f"than {min_count} individuals (a differencing attack); use other filters"
                )
            tx.execute(
                "INSERT INTO beacon_groups (dataset, scope, filters, t) VALUES (?, ?, ?, ?)",
                (dataset_key, scope, key, self._clock()),
            )

    def answered(self, dataset_key: str, scope: str) -> list[list[str]]:
        """The filter sets answered in ``dataset_key`` for ``scope``, oldest first."""
        rows = self._db.query(
            "SELECT filters FROM beacon_groups WHERE dataset = ? AND scope = ? ORDER BY t",
            (dataset_key, scope),
        )
        return [json.loads(r[0]) for r in rows]

    def _mask(self, dataset_key: str, key: str, mask_of) -> np.ndarray:
        cache_key = (dataset_key, key)
        with self._lock:
            mask = self._masks.get(cache_key)
            if mask is not None:
                self._masks.move_to_end(cache_key)
                return mask
        mask = np.asarray(mask_of(json.loads(key)), dtype=bool)
        with self._lock:
            self._masks[cache_key] = mask
            while len(self._masks) > 4 * self.max_groups:
                self._masks.popitem(last=False)
        return mask

    def close(self) -> None:
        if self._owns_db:
            self._db.close()
