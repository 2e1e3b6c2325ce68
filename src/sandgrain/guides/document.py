"""The guide design document: its records, their ranking, and its provenance.

Every guide record has the fields of :data:`GUIDE_FIELDS`, in that order (a field that does not
apply is ``None``). ``score`` (0–100, higher is better) is the guide's specificity (see
:mod:`sandgrain.guides.hits`). Guides are ranked (``rank`` 1 = best) by, in order:

1. unflagged first: guides whose protospacer holds ``TTTT`` (ends U6 transcription) or that have
   an off-target with 0 mismatches go last;
2. ``score`` — the CFD specificity, unrounded — higher first;
3. ``mit_specificity``, higher first;
4. ``ruleset1``, higher first (a guide without it after those with it);
5. genome order (input order for given guides).

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

__all__ = ["GUIDE_FIELDS", "assign_ranks", "inputs", "nuclease_parameters", "record"]

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


def record(fields: dict) -> dict:
    """A guide record with every field, in the documented order."""
    return {key: fields.get(key) for key in GUIDE_FIELDS}


def rank_key(record: dict, i: int) -> tuple:
    """The sort key of the ``i``-th record (module doc): smaller is better."""
    flagged = bool(record["tttt"]) or record["offtarget_counts"][0] > 0
    rs1 = record["ruleset1"]
    return (
        flagged,
        -record["score"],  # the CFD specificity, unrounded (count specificity: other nucleases)
        -(record["mit_specificity"] or 0.0),
        -(rs1 if rs1 is not None else -1.0),
        i,
    )


def assign_ranks(records: list[dict]) -> list[dict]:
    """Set ``rank`` on each record (module doc); returns them best first."""
    order = sorted(range(len(records)), key=lambda i: rank_key(records[i], i))
    for rank, i in enumerate(order, 1):
        records[i]["rank"] = rank
    return [records[i] for i in order]


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
