"""Per-guide off-target summaries computed on the columns of one batched search.

For every guide of a :class:`~sandgrain.guides.batch.GuideSearch`, :class:`Hits` gives the
record fields ``offtarget_counts`` (by number of mismatches, exact), ``offtargets_total``, the
counts by location class (exon, intron, intergenic; :mod:`sandgrain.guides.annotate`), the
specificities and ``score``, and the listing of off-targets, most dangerous first (fewest
mismatches, then highest CFD when scored, then genome order), cut to ``max_listed`` when asked.

Scores
------
MIT (Hsu et al. 2013) and CFD (Doench et al. 2016) per site, and the guide aggregates
``mit_specificity = 100·100/(100 + Σ MIT)`` and ``cfd_specificity = 100/(1 + Σ CFD)``,
are given for *SpCas9-like* nucleases only (:func:`~sandgrain.guides.nucleases.is_spcas9_like`;
see :mod:`sandgrain.guides.scores` for each paper). For other nucleases ``score`` is the *count
specificity* ``100·100/(100 + Σ 100/4^m)`` over the off-targets, ``m`` each one's mismatches (a
perfect off-target weighs 100 like MIT's, each further mismatch divides by four).

Everything is computed on arrays: counts, classes and scores of a guide with a million sites
cost arrays, not a million objects; dicts are made only for the off-targets listed.
``mismatch_positions`` are 1-based from the protospacer's PAM-distal end (for a 5' PAM such as
Cas12a's, the 3' end), as in the score papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .annotate import CLASSES, GeneIntervals
from .batch import GuideSearch
from .kernels import encode
from .nucleases import is_spcas9_like
from .scores import cfd_site_scores, cfd_specificity, mit_site_scores, mit_specificity
from .search import codes_to_strings

__all__ = ["Hits", "count_specificity"]

#: Rows scored at once by the vectorised MIT/CFD functions (bounds their temporary arrays).
_SCORE_CHUNK = 1 << 16


def count_specificity(counts: Sequence[int]) -> float:
    """``100·100/(100 + Σ_m counts[m]·100/4^m)``: the score of a guide whose nuclease has no
    published per-site score (module doc)."""
    return 100.0 * 100.0 / (100.0 + sum(n * 100.0 / 4**m for m, n in enumerate(counts)))


class Hits:
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
        # sites next to the nuclease's own PAM (NGG), as opposed to off-target PAMs (NAG, NGA)
        main = np.array([p == nuc.pam for p in t.family.pams], bool)
        self.main_pam = main[t.pattern] if len(t) else np.zeros(0, bool)
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
            score = count_specificity(counts)
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
        main_zero = 0 if self.table is None else int((self.main_pam[rows] & (mm == 0)).sum())
        return {
            "perfect_main_pam": main_zero,  # read by the flags, not a record field
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
