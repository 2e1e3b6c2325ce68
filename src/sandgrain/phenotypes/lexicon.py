"""What the coder matches: HPO labels and synonyms plus sandgrain's own lay phrases, as
normalised token sets, and the tokeniser and light stemmer both sides share.

Sources, in priority order when the same words name several things:

1. ``data/lay_terms.tsv`` (written for sandgrain): lay phrases ("runny nose", "can't smell"),
   clinical shorthand ("SOB", "N/V", matched case-sensitively) and normal findings ("lungs
   clear"), each mapped to HPO ids checked against the bundled ontology by the tests;
2. HPO term labels, then their EXACT synonyms (of any type: layperson, UK spelling, plural),
   then RELATED synonyms of the layperson type ("Hearing loss"); other RELATED, BROAD and
   NARROW synonyms are not matched (they name other concepts). Only terms
   under *Phenotypic abnormality* (HP:0000118) are matched, so modifiers ("Mild", "Acute") and
   modes of inheritance never come out as findings.

Normalisation: Unicode NFKC, lower case, British → American vowel spellings
(``oe``/``ae`` → ``e``: diarrhoea, haemoptysis, oedema), a light suffix stemmer of our own
(:func:`stem`: plurals, ``-ing``, ``-ed``, final ``e``), a few irregular forms (lost → loss,
threw → throw), and stop words dropped so that word order and small words do not matter.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources

from .ontology import HPO, hpo

__all__ = [
    "Entry",
    "Lexicon",
    "STOP_WORDS",
    "Token",
    "lay_entries",
    "lexicon",
    "stem",
    "tokenize",
]

#: Tokens: short slash/ampersand abbreviations (N/V, r/o, A&O), words (with an apostrophe
#: contraction), numbers (with a decimal part), newlines, and single punctuation marks.
_TOKEN = re.compile(
    r"[A-Za-z]{1,2}[/&+][A-Za-z]{1,2}(?:/[A-Za-z]{1,2})?(?![A-Za-z0-9])"
    r"|[A-Za-z][A-Za-z0-9]*(?:['’][A-Za-z]+)?"
    r"|\d+(?:\.\d+)?"
    r"|\n|[^\sA-Za-z0-9]"
)

#: Punctuation a multi-word match may not cross.
BARRIERS = frozenset(".,;:!?()[]{}/\n|•")


#: Function words that matching ignores (negation words are *not* here: "no sense of smell").
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _words(
    """a an the of in on at to for from by with and or as is are was were be been being am has
    have had having do does did her his their its my your our this that these those it she he
    they them him me i we you there here some any very also both all which who whom whose
    than then so such per about around patient patients pt pts mr mrs ms"""
)

_IRREGULAR = {
    "lost": "loss",
    "lose": "loss",
    "losing": "loss",
    "loses": "loss",
    "threw": "throw",
    "thrown": "throw",
    "felt": "feel",
    "feeling": "feel",
    "feels": "feel",
    "can't": "cannot",
    "cant": "cannot",
    "couldn't": "cannot",
    "couldnt": "cannot",
    "unable": "cannot",
    "won't": "not",
    "isn't": "not",
    "wasn't": "not",
    "doesn't": "not",
    "didn't": "not",
    "don't": "not",
    "aren't": "not",
    "weren't": "not",
    "haven't": "not",
    "hasn't": "not",
    "swollen": "swell",
    "ran": "run",
    "bled": "bleed",
    "breathing": "breath",
    "breathe": "breath",
    "breathes": "breath",
}


@functools.lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light stemmer of our own (Porter 1980's first step, much reduced): the same stem for
    ``cough/coughs/coughing/coughed``, ``headache/headaches``, ``vomit/vomiting/vomited``;
    UK spellings folded (``diarrhoea`` → ``diarrhea``). Not a linguistic stemmer: it only has to
    map the text and the lexicon the same way."""
    w = word.lower().replace("’", "'")
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w.endswith("n't"):
        return "not"
    w = w.replace("'", "")
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.startswith("oe") and len(w) > 4:
        w = "e" + w[2:]
    if len(w) > 5:
        w = w[0] + w[1:].replace("ae", "e").replace("oe", "e")
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("ches", "shes", "xes", "zes", "sses")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            base = w[: -len(suffix)]
            if suffix == "ed" and base.endswith("i"):
                base = base[:-1] + "y"
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]
            w = base
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


def fold(text: str) -> str:
    """Unicode-normalised text with the same length as ``text`` (offsets stay valid)."""
    out = unicodedata.normalize("NFKC", text)
    return out if len(out) == len(text) else text


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its text as written, its stem, character offsets, and whether matching
    ignores it (a stop word) or it ends a match (punctuation, newline)."""

    raw: str
    stem: str
    start: int
    end: int
    stop: bool
    barrier: bool


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text`` with offsets into it."""
    out = []
    for m in _TOKEN.finditer(fold(text)):
        raw = m.group()
        if raw in BARRIERS or (len(raw) == 1 and not raw.isalnum()):
            out.append(Token(raw, raw, m.start(), m.end(), True, raw in BARRIERS))
            continue
        low = raw.lower()
        out.append(Token(raw, stem(low), m.start(), m.end(), low in STOP_WORDS, False))
    return out


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing the coder can match: the normalised token set (``key``), the HPO ids it codes,
    where it came from (``lay``/``abbr``/``normal``/``label``/``exact``/``related``), the phrase as
    written, and for case-sensitive shorthand the exact token sequence."""

    key: frozenset[str]
    ids: tuple[str, ...]
    source: str
    phrase: str
    normal: bool = False
    raw_tokens: tuple[str, ...] = ()
    priority: int = 0


#: Source → priority (lower wins when the same words name several things).
_PRIORITY = {"lay": 0, "abbr": 0, "normal": 0, "label": 1, "exact": 2, "related": 3}

#: HPO synonyms that are everyday words in notes, never findings on their own.
_SKIP_SYNONYMS = _words(
    """tall short small large big thin cold hot positive negative normal abnormal increased
    decreased high low stable acute chronic mild severe moderate sick ill well fine episodic
    progressive recurrent intermittent weird strange odd funny hard soft dry wet red blue cutting
    collecting ordering arranging hopping bouncing mouthing fisting dribbling mole corn boil
    inaction inactivity dullness hostile impulsive twirling slowness restiveness sad jumping
    spinning rosette inertia"""
)
#: HPO abbreviations that mean something else in everyday clinical notes (LFT = liver function
#: tests, RAD = reactive airway disease, ASD/BPD have two HPO readings).
_SKIP_ABBREVIATIONS = _words(
    "LFT RAD ASD BPD AOB CWPs MEMA DDN NDD VMA VMT CIU CyN TMD CVI AEA OME AOP RBD"
)


def _key(phrase: str) -> tuple[str, ...]:
    toks = [t for t in tokenize(phrase) if not t.barrier and t.raw not in "-'’"]
    return tuple(t.stem for t in toks if not t.stop)


def _lay_rows():
    text = resources.files("sandgrain.phenotypes").joinpath("data/lay_terms.tsv").read_text("utf-8")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#") or line.startswith("phrase\t"):
            continue
        phrase, ids, kind = line.split("\t")
        yield n, phrase, tuple(ids.split(";")), kind


def lay_entries() -> list[tuple[int, str, tuple[str, ...], str]]:
    """The rows of ``data/lay_terms.tsv``: (line number, phrase, HPO ids, kind)."""
    return list(_lay_rows())


class Lexicon:
    """Every matchable entry, indexed for the coder: token-set entries by their rarest stem
    (``by_anchor``), shorthand by its first token as written (``by_raw``)."""

    def __init__(self, onto: HPO):
        self.onto = onto
        entries: dict[tuple[frozenset[str], bool], Entry] = {}
        abbrs: list[Entry] = []
        for _, phrase, ids, kind in _lay_rows():
            normal = kind.endswith("normal")
            if kind.startswith("abbr"):
                raw = tuple(t.raw for t in tokenize(phrase))
                abbrs.append(Entry(frozenset(), ids, "abbr", phrase, normal, raw))
                continue
            key = frozenset(_key(phrase))
            if key and (key, normal) not in entries:
                entries[(key, normal)] = Entry(key, ids, kind, phrase, normal, (), 0)
        for term in onto.terms.values():
            if not onto.in_phenotypic_abnormality(term.id):
                continue
            names = [(term.label, "label")]
            names += [(s.text, "exact") for s in term.synonym_details if s.scope == "EXACT"]
            names += [
                (s.text, "related")
                for s in term.synonym_details
                if s.scope == "RELATED" and s.type == "layperson"
            ]
            for text, source in names:
                if text.lower() in _SKIP_SYNONYMS or text in _SKIP_ABBREVIATIONS:
                    continue
                if source == "exact" and _is_abbreviation(text, term):
                    if len(text) >= 3 and text.lower() not in STOP_WORDS:
                        raw = tuple(t.raw for t in tokenize(text))
                        abbrs.append(Entry(frozenset(), (term.id,), "abbr", text, False, raw, 3))
                    continue
                words = _key(text)
                key = frozenset(words)
                if not key or (len(key) == 1 and len(text.split()) > 1):
                    continue  # "Under breathing" must not match "breathing"
                old = entries.get((key, False))
                new = Entry(key, (term.id,), source, text, False, (), _PRIORITY[source])
                if old is None or _better(new, old, onto):
                    entries[(key, False)] = new
        self.entries = list(entries.values())
        df: dict[str, int] = {}
        for e in self.entries:
            for s in e.key:
                df[s] = df.get(s, 0) + 1
        self.by_anchor: dict[str, list[Entry]] = {}
        for e in self.entries:
            anchor = min(e.key, key=lambda s: (df[s], s))
            self.by_anchor.setdefault(anchor, []).append(e)
        self.by_raw: dict[str, list[Entry]] = {}
        for e in abbrs:
            self.by_raw.setdefault(e.raw_tokens[0], []).append(e)
        self.max_key = max(len(e.key) for e in self.entries)


def _is_abbreviation(text: str, term) -> bool:
    for s in term.synonym_details:
        if s.text == text:
            return s.type == "abbreviation" or (text.isupper() and len(text) <= 6)
    return False


def _better(new: Entry, old: Entry, onto: HPO) -> bool:
    """Two HPO terms share the same words: the label beats a synonym, then the more specific
    (deeper) term wins, then the lower id (so the choice is stable)."""
    if new.priority != old.priority:
        return new.priority < old.priority
    dn, do = onto.depth(new.ids[0]), onto.depth(old.ids[0])
    if dn != do:
        return dn > do
    return new.ids[0] < old.ids[0]


@functools.cache
def lexicon() -> Lexicon:
    """The lexicon over the bundled HPO, built once per process."""
    return Lexicon(hpo())
