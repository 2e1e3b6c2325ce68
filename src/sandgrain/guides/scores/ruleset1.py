"""Rule Set 1 on-target activity score (Doench et al. 2014).

Input is a 30-mer on the guide's strand: 4 nt 5' context + 20 nt protospacer + ``NGG`` PAM + 3 nt
3' context. The logistic model is::

    x = intercept + |10 - gc| * w_gc + sum(weights of the terms that match)
    RS1 = 1 / (1 + exp(-x))

with ``gc`` the G+C count of the protospacer (30-mer positions 4..23), ``w_gc = -0.2026259`` when
``gc <= 10`` and ``-0.1665878`` otherwise, intercept ``0.59763615``, and the published
position-specific single- and dinucleotide terms (:data:`RULESET1_WEIGHTS`, 0-based positions in
the 30-mer; 39 single and 31 dinucleotide terms), shipped in ``data/ruleset1.tsv``.

Candidates without the full context (fewer than 4 nt before or 3 nt after, at a chromosome end) or
with a base other than A, C, G, T in it get **no score** (``None``), never a wrong one. The PAM
bases are not checked: the model was fitted on ``NGG`` sites and is meaningless for others.

References
----------
.. [1] Doench JG, Hartenian E, Graham DB, et al. "Rational design of highly active sgRNAs for
   CRISPR-Cas9-mediated gene inactivation." Nature Biotechnology 32(12):1262-1267, 2014.
   doi:10.1038/nbt.3026
"""

from __future__ import annotations

import math
from importlib import resources
from typing import NamedTuple

__all__ = [
    "RULESET1_GC_HIGH",
    "RULESET1_GC_LOW",
    "RULESET1_INTERCEPT",
    "RULESET1_WEIGHTS",
    "RuleSet1Term",
    "ruleset1",
]

#: Intercept of the logistic model.
RULESET1_INTERCEPT = 0.59763615
#: Weight of ``|10 - gc|`` when the protospacer has at most 10 G+C.
RULESET1_GC_LOW = -0.2026259
#: Weight of ``|10 - gc|`` when the protospacer has more than 10 G+C.
RULESET1_GC_HIGH = -0.1665878

_LENGTH = 30
_BASES = frozenset("ACGT")


class RuleSet1Term(NamedTuple):
    """One published term: ``sequence`` found at 0-based ``position`` of the 30-mer adds weight."""

    position: int
    sequence: str
    weight: float


def _load_weights() -> tuple[RuleSet1Term, ...]:
    text = resources.files("sandgrain.guides.scores").joinpath("data", "ruleset1.tsv")
    lines = [
        line
        for line in text.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if not lines or lines[0].split("\t") != ["position", "sequence", "weight"]:
        raise RuntimeError("packaged table ruleset1.tsv lacks its header")
    terms = []
    for line in lines[1:]:
        position, sequence, weight = line.split("\t")
        terms.append(RuleSet1Term(int(position), sequence, float(weight)))
    return tuple(terms)


#: The 70 position-specific terms (39 single, 31 dinucleotide) of Doench et al. 2014.
RULESET1_WEIGHTS: tuple[RuleSet1Term, ...] = _load_weights()


def ruleset1(context30: str) -> float | None:
    """Rule Set 1 score (0-1) of one candidate, or ``None`` when it cannot be scored.

    Parameters
    ----------
    context30 : str
        4 nt 5' context + 20 nt protospacer + PAM (``NGG``) + 3 nt 3' context, on the guide's
        strand; case is ignored.

    Returns
    -------
    float or None
        The predicted activity; ``None`` when ``context30`` is not exactly 30 nt long (a
        candidate near a chromosome end) or holds a base other than A, C, G, T.

    References
    ----------
    Doench et al. 2014, Nature Biotechnology 32:1262, doi:10.1038/nbt.3026.
    """
    if len(context30) != _LENGTH:
        return None
    seq = context30.upper()
    if not set(seq) <= _BASES:
        return None
    protospacer = seq[4:24]
    gc = protospacer.count("G") + protospacer.count("C")
    x = RULESET1_INTERCEPT + abs(10 - gc) * (RULESET1_GC_LOW if gc <= 10 else RULESET1_GC_HIGH)
    for term in RULESET1_WEIGHTS:
        if seq.startswith(term.sequence, term.position):
            x += term.weight
    return 1.0 / (1.0 + math.exp(-x))
