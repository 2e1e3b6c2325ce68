"""One batched off-target search for many guides, each with its own mismatch limit.

Design, scoring and ``guides offtargets`` all search the same way: every *distinct* protospacer
once, in one fan-out over the site index (:func:`~sandgrain.guides.search.search_table`), up to
the largest limit asked for; each guide then sees its own rows within its own limit. The result,
a :class:`GuideSearch`, stays column-wise: Python objects are made only on request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..genome.store import Genome
from ..storage import Dataset
from .nucleases import NUCLEASES, Nuclease
from .request import ScoreRequest
from .search import OffTargetSite, OffTargetTable, search_table
from .siteindex import SiteFamily, open_index

__all__ = ["Cancel", "GuideSearch", "Progress", "open_guide_index", "run_search"]

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


@dataclass
class GuideSearch:
    """Guides and their genome-wide sites (every site, nothing excluded yet), column-wise.

    ``table`` holds the sites of every *distinct* guide once (``table.guides``; ``slots[i]`` is
    the row of ``guides[i]`` there; ``None`` when there are no guides). :meth:`rows` gives the
    table rows of ``guides[i]`` within its own limit ``limits[i]``, in genome order; Python
    objects are made only on request (:meth:`sites`, :attr:`results`). ``request`` is the
    :class:`~sandgrain.guides.request.ScoreRequest` searched, when the guides were given.
    """

    genome: Genome
    nuclease: Nuclease
    family: SiteFamily
    index: Dataset
    guides: list[str]
    limits: list[int]
    table: OffTargetTable | None = None
    slots: list[int] = field(default_factory=list)
    request: ScoreRequest | None = None
    _bounds: np.ndarray | None = field(default=None, repr=False)

    @property
    def max_mismatches(self) -> int:
        return max(self.limits, default=0)

    @property
    def bounds(self) -> np.ndarray:
        """Row ranges of the distinct guides in :attr:`table` (see ``OffTargetTable.bounds``)."""
        if self._bounds is None:
            self._bounds = self.table.bounds() if self.table is not None else np.zeros(1, np.int64)
        return self._bounds

    def rows(self, i: int) -> np.ndarray:
        """Table rows of ``guides[i]``: its sites within ``limits[i]`` mismatches, genome order."""
        if self.table is None:
            return np.zeros(0, np.int64)
        u = self.slots[i]
        rows = np.arange(self.bounds[u], self.bounds[u + 1], dtype=np.int64)
        if self.limits[i] < self.max_mismatches:
            rows = rows[self.table.mismatches[rows] <= self.limits[i]]
        return rows

    def count(self, i: int) -> int:
        """How many sites ``guides[i]`` has (exact)."""
        return len(self.rows(i))

    def sites(self, i: int, max_listed: int | None = None) -> list[OffTargetSite]:
        """Sites of ``guides[i]`` as objects, in genome order: all, or the ``max_listed`` with
        fewest mismatches (genome order among equals), as
        :func:`~sandgrain.guides.formats.select_listed` chooses them."""
        rows = self.rows(i)
        if max_listed is not None and len(rows) > max_listed:
            keep = np.lexsort((rows, self.table.mismatches[rows]))[:max_listed]
            rows = rows[np.sort(keep)]
        return self.table.sites(rows) if len(rows) else []

    @property
    def results(self) -> list[list[OffTargetSite]]:
        """Every site of every guide as objects (``results[i]`` for ``guides[i]``). Costly for
        guides with many sites: prefer :meth:`rows` and the table's columns."""
        return [self.sites(i) for i in range(len(self.guides))]


def index_hint(nuclease: Nuclease) -> str | None:
    """The shipped name to put in the index command, when the nuclease is one."""
    return nuclease.name if nuclease.name in NUCLEASES else None


def open_guide_index(genome: Genome, nuclease: Nuclease) -> tuple[SiteFamily, Dataset]:
    """The site family of ``nuclease`` and the genome's index answering it; a
    :class:`~sandgrain.guides.errors.MissingIndexError` naming the command otherwise."""
    family = SiteFamily.of(nuclease)
    return family, open_index(genome, family, index_hint(nuclease))


def run_search(
    genome: Genome,
    guides: list[str],
    limits: list[int],
    nuclease: Nuclease,
    family: SiteFamily,
    index: Dataset,
    *,
    executor,
    retries: int,
    progress: Progress | None,
    cancel: Cancel | None,
    request: ScoreRequest | None = None,
) -> GuideSearch:
    """One batched search for all guides (each distinct protospacer once), guides already
    checked (:class:`~sandgrain.guides.request.ScoreRequest` or candidate protospacers)."""
    found = GuideSearch(
        genome, nuclease, family, index, list(guides), list(limits), request=request
    )
    if not guides:
        return found
    unique = list(dict.fromkeys(guides))
    found.table = search_table(
        genome,
        unique,
        family,
        max(limits),
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
        nuclease=index_hint(nuclease),
    )
    slot = {g: i for i, g in enumerate(unique)}
    found.slots = [slot[g] for g in guides]
    return found
