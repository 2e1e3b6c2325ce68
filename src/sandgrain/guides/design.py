"""Guide design and guide scoring: the domain functions the CLI and the web API call.

:func:`design_guides` finds every candidate site of a nuclease in a target (a gene, a region, a
raw sequence or a FASTA file), searches the whole genome for each candidate's off-targets in one
batched call, scores and annotates them, ranks the guides and returns one JSON-able document.
:func:`score_guides` does the same for guides the user gives (no target). :func:`search_guides`
is the shared search step, also behind ``sandgrain guides offtargets``.

Conventions
-----------
Coordinates
    Output positions are 1-based inclusive (``start``/``end`` of the protospacer alone, on the
    forward strand, whichever strand it reads on); ``cut`` is the 1-based position of the last
    forward-strand base before the cut. For ``sequence``/``fasta`` targets the guides'
    ``chrom``/``start``/``end`` refer to the given sequence, the off-targets' to the genome.
On-target exclusion
    Off-target counts, lists and specificities leave out each guide's **on-target site**, and
    the guide record's ``on_target`` (``{chrom, start, end, strand}`` of its protospacer, as the
    off-targets give theirs; ``None`` when none was left out) says which site that was. For a
    genome target (gene or region) it is the site with 0 mismatches at the candidate's own
    position and strand. For ``sequence``/``fasta`` targets, when the guide has 0-mismatch
    sites in the genome, exactly one is taken: the first in genome order whose **context**
    equals the input sequence around the candidate — the Rule Set 1 30-mer (4 bp 5', the site,
    3 bp 3') for SpCas9-like guides, else the site with :data:`ON_TARGET_FLANK` bp each side,
    both as much of it as the input holds — and when none does, the first 0-mismatch site. For
    given guides (:func:`score_guides`) it is the first 0-mismatch site in genome order. Any
    other 0-mismatch site (a second copy of the target) *is* an off-target. With
    ``exclude_on_target=False`` no site is left out (a guide then counts its own site(s) under 0
    mismatches). ``guides offtargets`` lists every site, the guide's own included.
Scores (see :mod:`sandgrain.guides.scores` for each paper)
    MIT (Hsu et al. 2013) and CFD (Doench et al. 2016) per off-target and the guide aggregates
    ``mit_specificity = 100·100/(100 + Σ MIT)`` and ``cfd_specificity = 100·100/(100 + Σ CFD)``
    are given for *SpCas9-like* nucleases only: 20-nt protospacers with an ``NGG`` PAM on the 3'
    side (off-target sites next to other PAMs such as NAG are scored too: CFD weighs the PAM).
    Rule Set 1 (Doench et al. 2014) needs the 30-mer context as well; it is ``None`` near a
    sequence end, for given guides, and for other nucleases. Scores not defined are ``None``.
``mismatch_positions``
    1-based, counted from the protospacer's PAM-distal end (for a 3' PAM the 5' end, for a 5'
    PAM such as Cas12a's the 3' end), as in the score papers. ``N`` in the genome is a mismatch.

Ranking
-------
``score`` (0–100, higher is better) is the guide's specificity: ``cfd_specificity``
(unrounded) for SpCas9-like nucleases; for others, where no published per-site score applies, a
*count specificity* ``100·100/(100 + Σ 100/4^m)`` over the off-targets, ``m`` each one's
mismatches (a perfect off-target weighs 100 like MIT's, each further mismatch divides by four).
Guides are ranked (``rank`` 1 = best) by, in order:

1. unflagged first: guides whose protospacer holds ``TTTT`` (ends U6 transcription) or that have
   an off-target with 0 mismatches go last;
2. ``score`` — the CFD specificity, unrounded — higher first;
3. ``mit_specificity``, higher first;
4. ``ruleset1``, higher first (a guide without it after those with it);
5. genome order (input order for given guides).

Every list is exact: ``offtarget_counts`` (by number of mismatches, 0…k), ``offtargets_total``
and the counts by location class are never capped. Only the *listing* of off-targets may be cut,
by ``max_offtargets_listed``; then ``offtargets_listed_truncated`` is true. Listed off-targets
come most dangerous first: fewest mismatches, then highest CFD (when scored), then genome order.

Counts, scores, specificities and location classes are computed on the columns of one batched
search (:class:`~sandgrain.guides.search.OffTargetTable`); Python objects are made only for the
off-targets that are listed — none with ``list_offtargets=False``, as for TSV and BED — so a
guide with a million sites costs arrays, not a million dicts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..genome.fasta import open_maybe_gzip
from ..genome.regions import reverse_complement
from ..genome.store import SEQUENCE, Genome
from ..provenance import provenance
from ..storage import Dataset
from .annotate import CLASSES, GeneIntervals
from .candidates import (
    CONTEXT_FLANK_3,
    CONTEXT_FLANK_5,
    MAX_TARGET_BP,
    Candidate,
    find_candidates,
    find_candidates_in_regions,
    find_candidates_in_sequence,
    gene_regions,
)
from .kernels import encode
from .nucleases import NUCLEASES, Nuclease, custom_nuclease, get_nuclease
from .scores import cfd_site_scores, cfd_specificity, mit_site_scores, mit_specificity, ruleset1
from .search import (
    MAX_MISMATCHES,
    OffTargetSite,
    OffTargetTable,
    check_guides,
    codes_to_strings,
    search_table,
)
from .siteindex import SiteFamily, open_index

__all__ = [
    "GUIDE_FIELDS",
    "GuideSearch",
    "design_guides",
    "is_spcas9_like",
    "resolve_nuclease",
    "score_guides",
    "score_search",
    "search_guides",
]

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]

#: Default protospacer length of a custom nuclease given by its PAM alone.
DEFAULT_GUIDE_LENGTH = 20


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------


def resolve_nuclease(
    nuclease: str | Nuclease | None = None,
    *,
    pam: str | None = None,
    guide_length: int | None = None,
    pam_side: str | int | None = None,
    offtarget_pams: str | Sequence[str] | None = None,
) -> Nuclease:
    """The nuclease a user asked for: by name (default SpCas9) or by PAM.

    ``pam`` (with ``guide_length``, default 20, and ``pam_side``, default 3) describes a custom
    nuclease; when it equals a shipped one's (``NGG``, 20, 3 is SpCas9) that one is used, so its
    scores and off-target PAM weights apply. ``offtarget_pams`` (a list or ``"NAG,NGA"``) sets the
    extra PAMs searched for off-targets; ``None`` keeps the nuclease's defaults, ``""`` none.
    """
    if pam is None or not str(pam).strip():
        if guide_length is not None or pam_side is not None:
            raise InputError(
                "a guide length or PAM side describes a custom nuclease: give its PAM too (--pam)"
            )
        chosen = get_nuclease(nuclease if nuclease is not None else "SpCas9")
    else:
        if nuclease is not None:
            raise InputError("give either a nuclease name or a custom PAM (--pam), not both")
        length = DEFAULT_GUIDE_LENGTH if guide_length is None else guide_length
        chosen = custom_nuclease(pam, length, "3" if pam_side is None else pam_side)
        for shipped in NUCLEASES.values():
            shape = (shipped.pam, shipped.guide_length, shipped.pam_side)
            if shape == (chosen.pam, chosen.guide_length, chosen.pam_side):
                chosen = shipped
                break
    if offtarget_pams is not None:
        chosen = chosen.with_offtarget_pams(offtarget_pams)
    return chosen


def is_spcas9_like(nuclease: Nuclease) -> bool:
    """Whether MIT, CFD and Rule Set 1 apply: 20-nt protospacers with an ``NGG`` 3' PAM."""
    return nuclease.pam == "NGG" and nuclease.pam_side == "3" and nuclease.guide_length == 20


def _check_max_mismatches(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= MAX_MISMATCHES:
        raise InputError(f"maximum mismatches must be a whole number 0–{MAX_MISMATCHES}, not {k!r}")
    return int(k)


def _check_listed(limit) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0:
        raise InputError(f"the off-target listing limit must be a whole number ≥ 0, not {limit!r}")
    return int(limit)


def _index_hint(nuclease: Nuclease) -> str | None:
    """The shipped name to put in the index command, when the nuclease is one."""
    return nuclease.name if nuclease.name in NUCLEASES else None


# --------------------------------------------------------------------------------------------
# the search step shared by design, score and offtargets
# --------------------------------------------------------------------------------------------


@dataclass
class GuideSearch:
    """Guides and their genome-wide sites (every site, nothing excluded yet), column-wise.

    ``table`` holds the sites of every *distinct* guide once (``table.guides``; ``slots[i]`` is
    the row of ``guides[i]`` there; ``None`` when there are no guides). :meth:`rows` gives the
    table rows of ``guides[i]`` within its own limit ``limits[i]``, in genome order; Python
    objects are made only on request (:meth:`sites`, :attr:`results`).
    """

    genome: Genome
    nuclease: Nuclease
    family: SiteFamily
    index: Dataset
    guides: list[str]
    limits: list[int]
    table: OffTargetTable | None = None
    slots: list[int] = field(default_factory=list)
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


def _open_index(genome: Genome, nuclease: Nuclease) -> tuple[SiteFamily, Dataset]:
    family = SiteFamily.of(nuclease)
    return family, open_index(genome, family, _index_hint(nuclease))


def _search(
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
) -> GuideSearch:
    """One batched search for all guides (each distinct protospacer once)."""
    found = GuideSearch(genome, nuclease, family, index, list(guides), list(limits))
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
        nuclease=_index_hint(nuclease),
    )
    slot = {g: i for i, g in enumerate(unique)}
    found.slots = [slot[g] for g in guides]
    return found


def search_guides(
    genome: Genome,
    guides: Sequence[str],
    *,
    nuclease: str | Nuclease = "SpCas9",
    offtarget_pams: str | Sequence[str] | None = None,
    max_mismatches: int = 4,
    guide_mismatches: Sequence[int | None] | None = None,
    executor="local",
    retries: int = 2,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> GuideSearch:
    """Every site within the mismatch limit of each given guide, the guide's own included.

    ``guides`` are protospacers without PAM (A, C, G, T; case ignored). ``guide_mismatches``
    optionally gives each guide its own limit (``None`` entries use ``max_mismatches``), as the
    mismatch column of a Cas-OFFinder input does. One search covers all guides.
    """
    nuc = resolve_nuclease(nuclease, offtarget_pams=offtarget_pams)
    clean = check_guides(list(guides), nuc.guide_length)
    k = _check_max_mismatches(max_mismatches)
    if guide_mismatches is None:
        limits = [k] * len(clean)
    else:
        if len(guide_mismatches) != len(clean):
            raise InputError(
                f"{len(guide_mismatches)} mismatch limits given for {len(clean)} guides"
            )
        limits = [k if m is None else _check_max_mismatches(m) for m in guide_mismatches]
    family, index = _open_index(genome, nuc)
    return _search(
        genome,
        clean,
        limits,
        nuc,
        family,
        index,
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
    )


# --------------------------------------------------------------------------------------------
# per-guide summaries: counts, scores, annotation, listing — on the table's columns
# --------------------------------------------------------------------------------------------

#: Rows scored at once by the vectorised MIT/CFD functions (bounds their temporary arrays).
_SCORE_CHUNK = 1 << 16


def _count_specificity(counts: Sequence[int]) -> float:
    return 100.0 * 100.0 / (100.0 + sum(n * 100.0 / 4**m for m, n in enumerate(counts)))


class _Hits:
    """What the summaries need of every row of a search table, computed once on its columns:
    the protospacer spans, the location classes, and (SpCas9-like) the MIT and CFD scores."""

    def __init__(self, search: GuideSearch):
        t = search.table
        nuc = search.nuclease
        self.search = search
        self.table = t
        self.genes = search.genome.genes
        self.scored = is_spcas9_like(nuc)
        self.side = nuc.pam_side
        self.chrom_ids = {name: i for i, name in enumerate(t.chroms)} if t is not None else {}
        self._names: dict[tuple[int, int], list[str]] = {}
        if t is None:
            return
        L, P = nuc.guide_length, nuc.pam_length
        before = t.minus if self.side == "3" else ~t.minus  # the PAM left of the protospacer
        self.start0 = t.pos0 + P * before.astype(np.int64)
        self.end0 = self.start0 + L
        # genome order within a guide's rows: (chrom, pos0, minus) as one sortable number
        self.key = (t.chrom << 34) | (t.pos0 << 1) | t.minus.astype(np.int64)
        self.klass = GeneIntervals(self.genes).classes(t.chroms, t.chrom, self.start0, self.end0)
        self.gcodes = np.array([encode(g) for g in t.guides], np.uint8).reshape(len(t.guides), L)
        self.mit = self.cfd = None
        if self.scored:
            self.mit = np.empty(len(t), np.float64)
            self.cfd = np.empty(len(t), np.float64)
            b = search.bounds
            for u in range(len(t.guides)):
                for lo in range(int(b[u]), int(b[u + 1]), _SCORE_CHUNK):
                    hi = min(int(b[u + 1]), lo + _SCORE_CHUNK)
                    proto = t.protospacer[lo:hi]
                    self.mit[lo:hi] = mit_site_scores(self.gcodes[u], proto)
                    self.cfd[lo:hi] = cfd_site_scores(self.gcodes[u], proto, t.pam[lo:hi, -2:])

    # -- the on-target site ---------------------------------------------------------------------

    def site_row(self, i: int, chrom: str, site_start0: int, strand: str) -> int | None:
        """The row of ``guides[i]``'s 0-mismatch site at this position and strand, if any."""
        c = self.chrom_ids.get(chrom)
        if c is None or self.table is None:
            return None
        u = self.search.slots[i]
        lo, hi = int(self.search.bounds[u]), int(self.search.bounds[u + 1])
        want = (c << 34) | (site_start0 << 1) | int(strand == "-")
        a = lo + int(np.searchsorted(self.key[lo:hi], want, side="left"))
        b = lo + int(np.searchsorted(self.key[lo:hi], want, side="right"))
        for r in range(a, b):
            if self.table.mismatches[r] == 0:
                return r
        return None

    def on_target_dict(self, row: int) -> dict:
        t = self.table
        return {
            "chrom": t.chroms[int(t.chrom[row])],
            "start": int(self.start0[row]) + 1,
            "end": int(self.end0[row]),
            "strand": "-" if t.minus[row] else "+",
        }

    # -- one guide's fields ---------------------------------------------------------------------

    def summary(
        self,
        i: int,
        k: int,
        max_listed: int | None,
        listing: bool,
        exclude: int | None,
    ) -> dict:
        """The off-target fields of ``guides[i]``'s record (see the module doc), its sites
        counted up to ``k`` mismatches, the row ``exclude`` (its on-target) left out."""
        rows = self.search.rows(i)
        if exclude is not None:
            rows = rows[rows != exclude]
        n = len(rows)
        if self.table is None:  # no guides were searched: nothing to count
            mm = klass = np.zeros(0, np.int64)
        else:
            mm, klass = self.table.mismatches[rows], self.klass[rows]
        counts = np.bincount(mm, minlength=k + 1)[: k + 1].tolist()
        by_class = np.bincount(klass, minlength=len(CLASSES))
        if self.scored:
            mit_spec = mit_specificity(self.mit[rows] if n else [])
            cfd_spec = cfd_specificity(self.cfd[rows] if n else [])
            score = cfd_spec
        else:
            mit_spec = cfd_spec = None
            score = _count_specificity(counts)
        truncated = max_listed is not None and n > max_listed
        listed = None
        if listing:
            if not n:
                listed = []
            else:
                keys = (rows, -self.cfd[rows], mm) if self.scored else (rows, mm)
                order = np.lexsort(keys)  # fewest mismatches, highest CFD, genome order
                if truncated:
                    order = order[:max_listed]
                listed = self._listing(self.search.slots[i], rows[order])
        return {
            "mit_specificity": mit_spec,
            "cfd_specificity": cfd_spec,
            "score": score,
            "offtarget_counts": counts,
            "offtargets_total": n,
            **{f"offtargets_{c}": int(by_class[j]) for j, c in enumerate(CLASSES)},
            "offtargets_listed_truncated": truncated,
            "offtargets": listed,
        }

    def _gene_names(self, chrom: str, row: int) -> list[str]:
        key = (int(self.table.chrom[row]), int(self.start0[row]))
        found = self._names.get(key)
        if found is None:
            hits = self.genes.genes_in(chrom, int(self.start0[row]), int(self.end0[row]))
            found = self._names[key] = list(dict.fromkeys(g.symbol or g.gene_id for g in hits))
        return found

    def _listing(self, u: int, rows: np.ndarray) -> list[dict]:
        """The off-target dicts of these rows (of distinct guide ``u``), in this order."""
        t = self.table
        protos = codes_to_strings(t.protospacer[rows])
        pams = codes_to_strings(t.pam[rows])
        differs = t.protospacer[rows] != self.gcodes[u][None, :]
        if self.side == "5":  # position 1 is the PAM-distal end: the 3' end for a 5' PAM
            differs = differs[:, ::-1]
        which, where = np.nonzero(differs)
        cuts = np.searchsorted(which, np.arange(1, len(rows)))
        positions = [p.tolist() for p in np.split(where + 1, cuts)]
        chroms = [t.chroms[c] for c in t.chrom[rows].tolist()]
        starts, ends = self.start0[rows].tolist(), self.end0[rows].tolist()
        strands = np.where(t.minus[rows], "-", "+").tolist()
        patterns = [t.family.pams[p] for p in t.pattern[rows].tolist()]
        mms = t.mismatches[rows].tolist()
        mit = self.mit[rows].tolist() if self.scored else [None] * len(rows)
        cfd = self.cfd[rows].tolist() if self.scored else [None] * len(rows)
        classes = [CLASSES[c] for c in self.klass[rows].tolist()]
        out = []
        for j, row in enumerate(rows.tolist()):
            genes = self._gene_names(chroms[j], row) if classes[j] != "intergenic" else []
            out.append(
                {
                    "chrom": chroms[j],
                    "start": starts[j] + 1,
                    "end": ends[j],
                    "strand": strands[j],
                    "sequence": protos[j],
                    "pam": pams[j],
                    "pam_pattern": patterns[j],
                    "mismatches": mms[j],
                    "mismatch_positions": positions[j],
                    "mit": mit[j],
                    "cfd": cfd[j],
                    "annotation": {"class": classes[j], "genes": list(genes)},
                }
            )
        return out


# --------------------------------------------------------------------------------------------
# on-target sites of guides whose genome position is not given
# --------------------------------------------------------------------------------------------

#: Flank (bp each side) compared around a sequence target's candidate for nucleases without a
#: Rule Set 1 30-mer; SpCas9-like guides compare the 30-mer (4 bp 5', 3 bp 3').
ON_TARGET_FLANK = 10

#: Sites whose genome contexts are read and compared at once (bounds the read-back).
_CONTEXT_BATCH = 4096
_CONTEXT_GAP = 1 << 16  # sites closer than this share one read of the genome
_COMPLEMENT = np.array([3, 2, 1, 0, 4], np.uint8)


def _input_context(text: str, c: Candidate, flank5: int, flank3: int) -> tuple[str, int, int]:
    """The candidate's site with up to ``flank5``/``flank3`` bp of the input around it (as much
    as the sequence has), on the guide's strand, and the flanks it got (5', 3')."""
    left, right = (flank5, flank3) if c.strand == "+" else (flank3, flank5)
    left = min(left, c.site_start0)
    right = min(right, len(text) - c.site_end0)
    piece = text[c.site_start0 - left : c.site_end0 + right].upper()
    if c.strand == "-":
        return reverse_complement(piece), right, left
    return piece, left, right


class _ContextMatcher:
    """Picks the on-target site of a sequence target's candidate among the genome's 0-mismatch
    sites of its guide: the first (genome order) whose context equals the candidate's context in
    the input, else the first."""

    def __init__(self, hits: _Hits, genome: Genome, texts: dict[str, str], nuclease: Nuclease):
        self.hits = hits
        self.genome = genome
        self.texts = texts
        rs1 = is_spcas9_like(nuclease)
        self.flank5 = CONTEXT_FLANK_5 if rs1 else ON_TARGET_FLANK
        self.flank3 = CONTEXT_FLANK_3 if rs1 else ON_TARGET_FLANK
        self._reads: dict[tuple[str, int, int], np.ndarray] = {}

    def _read(self, chrom: str, start0: int, end0: int) -> np.ndarray:
        key = (chrom, start0, end0)
        found = self._reads.get(key)
        if found is None:
            if len(self._reads) > 64:
                self._reads.clear()
            found = self._reads[key] = encode(self.genome.sequence(chrom, start0, end0))
        return found

    def choose(self, i: int, c: Candidate) -> int | None:
        t = self.hits.table
        rows = self.hits.search.rows(i)
        zero = rows[t.mismatches[rows] == 0]
        if len(zero) <= 1:
            return int(zero[0]) if len(zero) else None
        context, a5, a3 = _input_context(self.texts[c.chrom], c, self.flank5, self.flank3)
        want = encode(context)
        width = len(want)
        chrom, minus = t.chrom[zero], t.minus[zero]
        lo = t.pos0[zero] - np.where(minus, a3, a5)
        hi = lo + width
        cuts = np.flatnonzero((chrom[1:] != chrom[:-1]) | (lo[1:] - hi[:-1] > _CONTEXT_GAP)) + 1
        starts = [0, *cuts.tolist()]
        ends = [*cuts.tolist(), len(zero)]
        span = np.arange(width)
        for a0, b0 in zip(starts, ends, strict=True):
            for a in range(a0, b0, _CONTEXT_BATCH):
                b = min(b0, a + _CONTEXT_BATCH)
                name = t.chroms[int(chrom[a])]
                length = self.genome.length(name)
                f0, f1 = max(0, int(lo[a:b].min())), min(length, int(hi[a:b].max()))
                idx = (lo[a:b] - f0)[:, None] + span[None, :]
                got = np.full(idx.shape, 4, np.uint8)  # N beyond the chromosome's ends
                if f1 > f0:
                    codes = self._read(name, f0, f1)
                    inside = (idx >= 0) & (idx < len(codes))
                    got[inside] = codes[idx[inside]]
                flip = minus[a:b]
                got[flip] = _COMPLEMENT[got[flip][:, ::-1]]
                same = (got == want[None, :]).all(axis=1)
                if same.any():
                    return int(zero[a + int(np.argmax(same))])
        return int(zero[0])


#: The fields of a guide record, in order (every record has all of them; unknown ones None).
GUIDE_FIELDS = (
    "rank",
    "score",
    "sequence",
    "pam",
    "chrom",
    "start",
    "end",
    "strand",
    "cut",
    "gc",
    "tttt",
    "masked",
    "context30",
    "ruleset1",
    "mit_specificity",
    "cfd_specificity",
    "offtarget_counts",
    "offtargets_total",
    *(f"offtargets_{c}" for c in CLASSES),
    "offtargets_listed_truncated",
    "on_target",
    "offtargets",
)


def _record(fields: dict) -> dict:
    """A guide record with every field, in the documented order."""
    return {key: fields.get(key) for key in GUIDE_FIELDS}


def _rank_key(record: dict, i: int) -> tuple:
    flagged = bool(record["tttt"]) or record["offtarget_counts"][0] > 0
    rs1 = record["ruleset1"]
    return (
        flagged,
        -record["score"],  # the CFD specificity, unrounded (count specificity: other nucleases)
        -(record["mit_specificity"] or 0.0),
        -(rs1 if rs1 is not None else -1.0),
        i,
    )


def _assign_ranks(records: list[dict]) -> list[dict]:
    """Set ``rank`` on each record (module doc, "Ranking"); returns them best first."""
    order = sorted(range(len(records)), key=lambda i: _rank_key(records[i], i))
    for rank, i in enumerate(order, 1):
        records[i]["rank"] = rank
    return [records[i] for i in order]


# --------------------------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------------------------


def _inputs(genome: Genome, index: Dataset, extra: Sequence[dict] = ()) -> list[dict]:
    manifest = genome.dataset.manifest
    files = json.dumps(index.manifest.get("files", {}), sort_keys=True).encode()
    return [
        {
            "source": f"genome:{genome.name}",
            "role": "genome",
            "version": manifest["version"],
            "sha256": manifest["files"][SEQUENCE]["sha256"],
        },
        {
            "source": f"siteindex:{index.name}",
            "role": "site index",
            "version": index.manifest["version"],
            "format_version": index.manifest.get("format_version"),
            # the index is many files: this is the SHA-256 of its manifest's file list
            "sha256": hashlib.sha256(files).hexdigest(),
        },
        *extra,
    ]


def _nuclease_parameters(nuclease: Nuclease) -> dict:
    return {
        "nuclease": nuclease.name,
        "pam": nuclease.pam,
        "pam_side": nuclease.pam_side,
        "guide_length": nuclease.guide_length,
        "offtarget_pams": list(nuclease.default_offtarget_pams),
    }


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------


def _limit(max_target_bp: int | None) -> int:
    return MAX_TARGET_BP if max_target_bp is None else max_target_bp


def _read_fasta(path, max_bp: int) -> list[tuple[str, str]]:
    """``(name, sequence)`` records of a small FASTA file (plain or gzipped), size-checked while
    reading so that a whole genome given by mistake fails fast."""
    label = os.fspath(path)
    try:
        raw = open(label, "rb")  # noqa: SIM115 - closed below, wrapped by the gzip reader
    except FileNotFoundError:
        raise InputError(f"cannot read FASTA {label}: no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read FASTA {label}: {exc.strerror or exc}") from None
    records: list[tuple[str, list[str]]] = []
    total = 0
    try:
        with raw, open_maybe_gzip(raw) as fh:
            for lineno, line in enumerate(fh, 1):
                text = line.decode("ascii", errors="replace").strip()
                if not text:
                    continue
                if text.startswith(">"):
                    name = text[1:].split(maxsplit=1)[0] if text[1:].strip() else ""
                    if not name:
                        raise InputError(f"FASTA {label} line {lineno}: a record without a name")
                    if any(name == r[0] for r in records):
                        raise InputError(f"FASTA {label}: duplicate sequence name {name!r}")
                    records.append((name, []))
                    continue
                if not records:
                    raise InputError(f"{label} is not a FASTA file: it must start with '>name'")
                total += len(text)
                if max_bp and total > max_bp:
                    raise InputError(
                        f"FASTA {label} holds more than the limit of {max_bp:,} bp for one "
                        "design; choose a smaller target or raise the limit (--max-target-bp)"
                    )
                records[-1][1].append(text)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read FASTA {label}: {exc}") from None
    if not records:
        raise InputError(f"FASTA {label} is empty")
    return [(name, "".join(parts)) for name, parts in records]


def _region_dict(chrom: str, start0: int, end0: int, strand: str = "+") -> dict:
    return {"chrom": chrom, "start": start0 + 1, "end": end0, "strand": strand}


def _sequence_candidates(
    records: list[tuple[str, str]], nuclease: Nuclease, max_bp: int
) -> tuple[list[Candidate], list[dict], dict[str, str]]:
    total = sum(len("".join(seq.split())) for _, seq in records)
    if max_bp and total > max_bp:
        raise InputError(
            f"the target sequence is {total:,} bp, more than the limit of {max_bp:,} bp for one "
            "design; choose a smaller target or raise the limit (--max-target-bp)"
        )
    candidates: list[Candidate] = []
    summary = []
    texts = {}
    for name, seq in records:
        found = find_candidates_in_sequence(seq, nuclease, name, max_bp=0)
        candidates += found
        text = texts[name] = "".join(seq.split())
        summary.append(
            {
                "name": name,
                "length": len(text),
                "sha256": hashlib.sha256(text.upper().encode()).hexdigest(),
            }
        )
    return candidates, summary, texts


def _target(
    genome: Genome,
    nuclease: Nuclease,
    *,
    gene,
    region,
    sequence,
    fasta,
    within: str,
    max_bp: int,
) -> tuple[dict, list[Candidate], list[dict], dict[str, str] | None]:
    """The target's description, its candidates, extra provenance inputs, and for a sequence
    or FASTA target its sequences by name (``None`` when the candidates lie in the genome)."""
    given = [
        name
        for name, value in (
            ("gene", gene),
            ("region", region),
            ("sequence", sequence),
            ("fasta", fasta),
        )
        if value is not None
    ]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise InputError(
            f"give exactly one target — a gene, a region, a sequence or a FASTA file — not {what}"
        )
    if gene is not None:
        g = genome.gene(str(gene))
        regions = gene_regions(g, within)
        candidates = find_candidates_in_regions(genome, regions, nuclease, max_bp=max_bp)
        target = {
            "type": "gene",
            "name": g.symbol or g.gene_id,
            "gene_id": g.gene_id,
            "location": g.location,
            "strand": g.strand,
            "within": str(within).strip().lower(),
            "length": sum(r.length for r in regions),
            "regions": [_region_dict(r.chrom, r.start0, r.end0, r.strand) for r in regions],
        }
        return target, candidates, [], None
    if region is not None:
        r = genome.region(str(region))
        candidates = find_candidates(genome, r, nuclease, max_bp=max_bp)
        target = {
            "type": "region",
            "name": str(r),
            "length": r.length,
            "regions": [_region_dict(r.chrom, r.start0, r.end0)],
        }
        return target, candidates, [], None
    if sequence is not None:
        records = [("sequence", str(sequence))]
        candidates, summary, texts = _sequence_candidates(records, nuclease, max_bp)
        (info,) = summary
        target = {
            "type": "sequence",
            "name": "sequence",
            "length": info["length"],
            "regions": [_region_dict("sequence", 0, info["length"])],
        }
        extra = [{"source": "sequence", "role": "target", "sha256": info["sha256"]}]
        return target, candidates, extra, texts
    records = _read_fasta(fasta, max_bp)
    candidates, summary, texts = _sequence_candidates(records, nuclease, max_bp)
    label = os.fspath(fasta)
    target = {
        "type": "fasta",
        "name": os.path.basename(label),
        "length": sum(s["length"] for s in summary),
        "regions": [_region_dict(s["name"], 0, s["length"]) for s in summary],
    }
    extra = [
        {"source": f"{label}#{s['name']}", "role": "target", "sha256": s["sha256"]} for s in summary
    ]
    return target, candidates, extra, texts


# --------------------------------------------------------------------------------------------
# the domain functions
# --------------------------------------------------------------------------------------------


def design_guides(
    genome: Genome,
    *,
    gene: str | None = None,
    region: str | None = None,
    sequence: str | None = None,
    fasta: str | os.PathLike | None = None,
    nuclease: str | Nuclease = "SpCas9",
    offtarget_pams: str | Sequence[str] | None = None,
    within: str = "exons",
    max_mismatches: int = 4,
    executor="local",
    retries: int = 2,
    max_target_bp: int | None = MAX_TARGET_BP,
    max_offtargets_listed: int | None = None,
    list_offtargets: bool = True,
    exclude_on_target: bool = True,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> dict:
    """Design guides for one target of ``genome`` and search their off-targets genome-wide.

    Parameters
    ----------
    genome
        An open :class:`~sandgrain.genome.store.Genome` with a site index for the nuclease
        (``sandgrain genome index NAME --nuclease …``; otherwise a
        :class:`~sandgrain.errors.NotFoundError` names that command).
    gene, region, sequence, fasta
        Exactly one target: a gene symbol/alias/ID; ``chrom:start-end`` (1-based inclusive); a
        raw DNA sequence; or the path of a FASTA file (plain or gzipped, one or more records).
    nuclease
        A shipped name (``SpCas9``, ``SaCas9``, ``AsCas12a``, ``LbCas12a``) or a
        :class:`~sandgrain.guides.nucleases.Nuclease` (see :func:`resolve_nuclease`).
    offtarget_pams
        Extra PAMs searched for off-targets (``"NAG,NGA"``); ``None`` keeps the nuclease's.
    within
        For a gene: ``exons`` (default), ``cds`` or ``gene``.
    max_mismatches
        Off-targets with up to this many mismatches (0–5) are searched.
    executor, retries, progress, cancel
        Passed to the fan-out engine (one batched off-target search for all candidates).
    max_target_bp
        Largest target in bp (default :data:`~sandgrain.guides.candidates.MAX_TARGET_BP`;
        0 for no limit).
    max_offtargets_listed
        List at most this many off-targets per guide (counts stay exact); ``None`` lists all.
    list_offtargets
        ``False`` lists no off-target (each guide's ``offtargets`` is ``None``): counts, scores
        and classes are still exact and computed on columns, and no per-site object is made —
        what TSV and BED output need.
    exclude_on_target
        Leave each guide's on-target site out (module doc, "On-target exclusion"); ``False``
        counts every site, the guide's own included.

    Returns
    -------
    dict
        ``{"provenance", "genome", "target", "nuclease", "max_mismatches", "guides"}`` with the
        guides best first; each guide's fields and the conventions are in the module doc.

    Raises
    ------
    InputError, NotFoundError
        Bad options, an unknown gene or nuclease, a target over the limit, a missing index —
        all before any search starts.
    """
    nuc = resolve_nuclease(nuclease, offtarget_pams=offtarget_pams)
    k = _check_max_mismatches(max_mismatches)
    listed = _check_listed(max_offtargets_listed)
    max_bp = _limit(max_target_bp)
    target, candidates, extra, texts = _target(
        genome,
        nuc,
        gene=gene,
        region=region,
        sequence=sequence,
        fasta=fasta,
        within=within,
        max_bp=max_bp,
    )
    family, index = _open_index(genome, nuc)
    protospacers = [c.protospacer for c in candidates]
    search = _search(
        genome,
        protospacers,
        [k] * len(protospacers),
        nuc,
        family,
        index,
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
    )
    hits = _Hits(search)
    matcher = _ContextMatcher(hits, genome, texts, nuc) if texts is not None else None
    scored = is_spcas9_like(nuc)
    records = []
    for i, c in enumerate(candidates):
        own = None
        if exclude_on_target:
            if matcher is None:
                own = hits.site_row(i, c.chrom, c.site_start0, c.strand)
            else:
                own = matcher.choose(i, c)
        fields = c.to_dict()
        fields["ruleset1"] = ruleset1(c.context30) if scored and c.context30 else None
        fields.update(hits.summary(i, k, listed, list_offtargets, own))
        fields["on_target"] = hits.on_target_dict(own) if own is not None else None
        records.append(_record(fields))
    if not exclude_on_target:
        rule = None
    elif texts is None:
        rule = "the candidate's own site"
    else:
        rule = "the 0-mismatch site whose context matches the target sequence, else the first"
    parameters = {
        "target": {"type": target["type"], "name": target["name"]},
        **_nuclease_parameters(nuc),
        "within": target.get("within"),
        "max_mismatches": k,
        "max_target_bp": max_bp,
        "max_offtargets_listed": listed,
        "on_target_excluded": bool(exclude_on_target),
        "on_target_rule": rule,
    }
    return {
        "provenance": provenance("guides design", parameters, _inputs(genome, index, extra)),
        "genome": genome.name,
        "target": target,
        "nuclease": nuc.to_dict(),
        "max_mismatches": k,
        "guides": _assign_ranks(records),
    }


def score_search(
    search: GuideSearch,
    *,
    max_offtargets_listed: int | None = None,
    command: str = "guides score",
    exclude_on_target: bool = True,
    list_offtargets: bool = True,
) -> dict:
    """The document of :func:`score_guides` from a finished :func:`search_guides`
    (``command`` names the command in the provenance record; ``exclude_on_target`` and
    ``list_offtargets`` as for :func:`score_guides` and :func:`design_guides`)."""
    listed = _check_listed(max_offtargets_listed)
    nuc = search.nuclease
    hits = _Hits(search)
    k = search.max_mismatches
    records = []
    for i, (guide, limit) in enumerate(zip(search.guides, search.limits, strict=True)):
        upper = guide.upper()
        fields = {
            "sequence": upper,
            "gc": (upper.count("G") + upper.count("C")) / len(upper),
            "tttt": "TTTT" in upper,
        }
        own = None
        if exclude_on_target:
            rows = search.rows(i)
            zero = rows[search.table.mismatches[rows] == 0] if len(rows) else rows
            own = int(zero[0]) if len(zero) else None  # the first in genome order
        # counts run to this guide's own limit: beyond it nothing was searched
        fields.update(hits.summary(i, limit, listed, list_offtargets, own))
        fields["on_target"] = hits.on_target_dict(own) if own is not None else None
        records.append(_record(fields))
    _assign_ranks(records)  # ranks set; the records stay in input order
    parameters = {
        "guides": len(search.guides),
        **_nuclease_parameters(nuc),
        "max_mismatches": k,
        "guide_mismatches": search.limits if len(set(search.limits)) > 1 else None,
        "max_offtargets_listed": listed,
        "on_target_excluded": bool(exclude_on_target),
        "on_target_rule": "the first 0-mismatch site" if exclude_on_target else None,
    }
    return {
        "provenance": provenance(command, parameters, _inputs(search.genome, search.index)),
        "genome": search.genome.name,
        "target": {"type": "guides", "name": "given guides", "count": len(search.guides)},
        "nuclease": nuc.to_dict(),
        "max_mismatches": k,
        "guides": records,
    }


def score_guides(
    genome: Genome,
    guides: Sequence[str],
    *,
    nuclease: str | Nuclease = "SpCas9",
    offtarget_pams: str | Sequence[str] | None = None,
    max_mismatches: int = 4,
    guide_mismatches: Sequence[int | None] | None = None,
    executor="local",
    retries: int = 2,
    max_offtargets_listed: int | None = None,
    list_offtargets: bool = True,
    exclude_on_target: bool = True,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> dict:
    """Score given guides (protospacers without PAM) against ``genome``.

    The same document as :func:`design_guides` (``target`` is ``{"type": "guides"}``), with the
    guides in the order given and ``rank`` set. The guides' positions are not given: when a
    guide has 0-mismatch sites in the genome, the first in genome order is taken as its
    on-target, left out of its counts, list and specificities, and reported as ``on_target``
    (``exclude_on_target=False`` leaves every site in: a guide from the genome then counts its
    own site under 0 mismatches and is flagged by the ranking). Position fields (``pam``,
    ``chrom``, ``start``…) and ``ruleset1`` (no 30-mer context) are ``None``.
    """
    search = search_guides(
        genome,
        guides,
        nuclease=nuclease,
        offtarget_pams=offtarget_pams,
        max_mismatches=max_mismatches,
        guide_mismatches=guide_mismatches,
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
    )
    return score_search(
        search,
        max_offtargets_listed=max_offtargets_listed,
        exclude_on_target=exclude_on_target,
        list_offtargets=list_offtargets,
    )
