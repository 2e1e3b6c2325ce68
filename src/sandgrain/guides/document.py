"""The guide design document: its records, their ranking, and its provenance.

Every guide record has the fields of :data:`GUIDE_FIELDS`, in that order (a field that does not
apply is ``None``). Each guide shows its **efficiency** (how well it cuts its target: Rule Set 3,
with Rule Set 1, CRISPRscan and the out-of-frame score beside it) and its **specificity** (how
little it cuts elsewhere: MIT and CFD guide scores) separately; ``score`` is kept as the
specificity (CFD for SpCas9-like nucleases, the count specificity otherwise; see
:mod:`sandgrain.guides.hits`).

Ranking
-------
:data:`RANKING_RULE` is the rule, in the words the page and ``--help`` show. Each guide gets
``flags`` (:data:`FLAGS`) and from them a ``tier``:

1. no flag (GC flags, :data:`INFO_FLAGS`, are shown but not ranked on);
2. only soft flags: an off-target with 1 mismatch (or a perfect one next to NAG/NGA), a cut
   in the last 20 % of the CDS, a self-complementary spacer, low specificity, a known variant
   in the site;
3. a hard flag: a second perfect site next to the nuclease's own PAM, or ``TTTT`` (ends U6
   transcription) — such guides will not do what is asked of them.

Guides are ranked (``rank`` 1 = best) by tier, then by ``efficiency`` (higher first; a guide
without one after those with it), then ``cfd_specificity``, ``mit_specificity`` (higher first)
and genome order (input order for given guides). This follows CHOPCHOP's practice of ranking
guides with close off-targets last before efficiency decides (Labun et al. 2019, Nucleic Acids
Res 47:W171), with CRISPOR's specificity scores (Concordet & Haeussler 2018, Nucleic Acids Res
46:W242) and the Doench lab's efficiency model (Rule Set 3, DeWeirdt et al. 2022).

The provenance record (:mod:`sandgrain.provenance`) names the genome and the site index searched
by version and SHA-256, and the nuclease's parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from ..genome.store import SEQUENCE, Genome
from ..storage import Dataset
from .annotate import CLASSES
from .nucleases import Nuclease

__all__ = [
    "FLAGS",
    "GUIDE_FIELDS",
    "HARD_FLAGS",
    "INFO_FLAGS",
    "LOW_SPECIFICITY",
    "RANKING_RULE",
    "SCORE_BINS",
    "assign_ranks",
    "score_bin",
    "guide_flags",
    "inputs",
    "nuclease_parameters",
    "ranking",
    "record",
]

#: The fields of a guide record, in order (every record has all of them; unknown ones None).
GUIDE_FIELDS = (
    "rank",
    "tier",
    "flags",
    "sequence",
    "pam",
    "chrom",
    "start",
    "end",
    "strand",
    "cut",
    "gene",
    "exon",
    "exon_count",
    "cds_percent",
    "efficiency",
    "rs3",
    "ruleset1",
    "crisprscan",
    "out_of_frame",
    "mit_specificity",
    "cfd_specificity",
    "score",
    "gc",
    "tttt",
    "self_complementarity",
    "masked",
    "context30",
    "restriction_sites",
    "oligos",
    "primers",
    "variants",
    "offtarget_counts",
    "offtargets_total",
    *(f"offtargets_{c}" for c in CLASSES),
    "offtargets_listed_truncated",
    "on_target",
    "offtargets",
)

#: Every flag a guide can carry, and what it means.
FLAGS = {
    "offtarget_0mm": "a second perfect site next to the nuclease's own PAM (NGG for SpCas9)",
    "tttt": "TTTT in the spacer ends U6 (Pol III) transcription",
    "offtarget_0mm_weak_pam": "a perfect site next to an off-target PAM (NAG, NGA: cut less)",
    "offtarget_1mm": "an off-target with 1 mismatch",
    "late_cds": "cuts in the last 20 % of the CDS",
    "gc_low": "GC content under 40% (shown, not ranked on: efficiency weighs GC)",
    "gc_high": "GC content over 70% (shown, not ranked on: efficiency weighs GC)",
    "self_complementary": "the spacer pairs with itself or the sgRNA scaffold",
    "low_specificity": "MIT specificity below 50",
    "variant": "a known variant in the protospacer or PAM",
}

#: Flags that put a guide in the last tier.
HARD_FLAGS = frozenset({"offtarget_0mm", "tttt"})

#: Flags shown but not ranked on: GC content is already weighed by the efficiency models
#: (Rule Set 1 and 3 both have GC features), so counting it again would rank twice on it.
INFO_FLAGS = frozenset({"gc_low", "gc_high"})

#: Specificity below which a guide is flagged ``low_specificity``: CRISPOR's advice that guides
#: with an MIT specificity under 50 have many off-targets worth checking (Haeussler et al. 2016,
#: Genome Biol 17:148). The count specificity is used where MIT does not apply.
LOW_SPECIFICITY = 50.0

#: The ranking rule, as the page and ``--help`` show it.
RANKING_RULE = (
    "Guides are ranked in three tiers: (1) no flag; (2) only soft flags — an off-target with 1 "
    "mismatch or a perfect one at NAG/NGA, a cut in the last 20% of the CDS, self-complementary, "
    "MIT specificity under 50, a known variant in the site; (3) a second perfect NGG site or "
    "TTTT. Within a tier: efficiency (Rule Set 3 for SpCas9), then CFD and MIT specificity, "
    "then position."
)


#: Colour bins of the scores the page shows (:func:`score_bin`): ``good`` at or above,
#: ``poor`` at or below, ``fair`` between. MIT specificity: CRISPOR's advice (50 or under is
#: worth checking; a second perfect site alone brings it to 50). CFD specificity
#: (``100 / (1 + Σ CFD)``): good when more than about half of the predicted cutting is on target
#: (55: a second perfect site, 50, is never green), poor at 20 or under (four times as much
#: cutting elsewhere as on target). Efficiency: the terciles of each score over 22,326 candidate
#: guides of real genes (yeast R64 genes and human chrX gene windows;
#: ``benchmarks/score_bins.py``, figures in docs/guides.md), so green is the best third.
SCORE_BINS = {
    "mit_specificity": {"good": 80.0, "poor": 50.0},
    "cfd_specificity": {"good": 55.0, "poor": 20.0},
    "rs3": {"good": 0.15, "poor": -0.55},
    "ruleset1": {"good": 0.2, "poor": 0.07},
    "crisprscan": {"good": 50.0, "poor": 35.0},
    "out_of_frame": {"good": 68.0, "poor": 62.0},
}


def score_bin(score: str, value: float | None) -> str | None:
    """``"good"``, ``"fair"`` or ``"poor"``: the colour bin of ``value`` of ``score``
    (:data:`SCORE_BINS`); ``None`` for a missing value or a score without bins."""
    bins = SCORE_BINS.get(score)
    if value is None or bins is None:
        return None
    if value >= bins["good"]:
        return "good"
    return "poor" if value <= bins["poor"] else "fair"


def record(fields: dict) -> dict:
    """A guide record with every field, in the documented order."""
    return {key: fields.get(key) for key in GUIDE_FIELDS}


def guide_flags(record: dict, extra: Sequence[str] = ()) -> list[str]:
    """The record's flags from its counts, ``tttt``, specificity and ``cds_percent``, plus
    ``extra`` (GC, self-complementarity, variants: set by the caller), in :data:`FLAGS` order.
    ``record["perfect_main_pam"]``, when present, counts the perfect off-targets next to the
    nuclease's own PAM (the others sit next to weaker off-target PAMs); without it every perfect
    off-target counts as one."""
    from .cds import LATE_CDS_PERCENT

    found = set(extra)
    counts = record.get("offtarget_counts") or []
    perfect = counts[0] if counts else 0
    main = record.get("perfect_main_pam", perfect)  # set by the design from the site columns
    if main > 0:
        found.add("offtarget_0mm")
    if perfect > main:
        found.add("offtarget_0mm_weak_pam")
    if len(counts) > 1 and counts[1] > 0:
        found.add("offtarget_1mm")
    if record.get("tttt"):
        found.add("tttt")
    cds = record.get("cds_percent")
    if cds is not None and cds > LATE_CDS_PERCENT:
        found.add("late_cds")
    spec = record.get("mit_specificity")
    if spec is None:
        spec = record.get("score")
    if spec is not None and spec < LOW_SPECIFICITY:
        found.add("low_specificity")
    unknown = found - set(FLAGS)
    if unknown:
        raise ValueError(f"unknown guide flags: {sorted(unknown)}")
    return [f for f in FLAGS if f in found]


def tier(flags: Sequence[str]) -> int:
    """1 without flags (but informational ones), 3 with a hard flag, else 2 (module doc)."""
    ranked = set(flags) - INFO_FLAGS
    if not ranked:
        return 1
    return 3 if HARD_FLAGS & ranked else 2


def rank_key(record: dict, i: int) -> tuple:
    """The sort key of the ``i``-th record (module doc): smaller is better."""
    eff = record.get("efficiency")
    cfd = record.get("cfd_specificity")
    mit = record.get("mit_specificity")
    return (
        record["tier"],
        eff is None,
        -(eff if eff is not None else 0.0),
        -(cfd if cfd is not None else record.get("score") or 0.0),
        -(mit if mit is not None else 0.0),
        i,
    )


def assign_ranks(records: list[dict]) -> list[dict]:
    """Set ``tier`` (from ``flags``, set when missing) and ``rank`` on each record (module
    doc); returns them best first."""
    for r in records:
        if r.get("flags") is None:
            r["flags"] = guide_flags(r)
        r["tier"] = tier(r["flags"])
    order = sorted(range(len(records)), key=lambda i: rank_key(records[i], i))
    for rank, i in enumerate(order, 1):
        records[i]["rank"] = rank
    return [records[i] for i in order]


def ranking(efficiency_model: str | None) -> dict:
    """The document's ``ranking`` entry: the rule, the efficiency model used and the flags."""
    return {
        "rule": RANKING_RULE,
        "efficiency_model": efficiency_model,
        "flags": dict(FLAGS),
        "bins": {k: dict(v) for k, v in SCORE_BINS.items()},
    }


def inputs(genome: Genome, index: Dataset, extra: Sequence[dict] = ()) -> list[dict]:
    """The provenance inputs of a document: the genome, the site index, and ``extra`` (the
    given target sequences)."""
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


def nuclease_parameters(nuclease: Nuclease) -> dict:
    """The nuclease's part of a provenance record's parameters."""
    return {
        "nuclease": nuclease.name,
        "pam": nuclease.pam,
        "pam_side": nuclease.pam_side,
        "guide_length": nuclease.guide_length,
        "offtarget_pams": list(nuclease.default_offtarget_pams),
    }
