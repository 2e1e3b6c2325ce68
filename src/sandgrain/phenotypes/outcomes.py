"""Free-text patient status and vaccination status → standard, coded values.

Patient status → the WHO clinical progression scale
---------------------------------------------------
GISAID's only clinical field is a free-text "patient status" ("Hospitalized", "Released",
"ICU", "deceased", "mild symptoms", misspellings). :func:`parse_status` maps it onto the ordinal
scale of the WHO Working Group on the Clinical Characterisation and Management of COVID-19
infection, "A minimal common outcome measure set for COVID-19 clinical research", *Lancet Infect
Dis* 2020; 20(8): e192–e197:

==  ======================================================================
0   uninfected, no viral RNA detected
1   ambulatory, mild disease: asymptomatic, viral RNA detected
2   ambulatory, mild disease: symptomatic, independent
3   ambulatory, mild disease: symptomatic, assistance needed
4   hospitalised, moderate disease: no oxygen therapy
5   hospitalised, moderate disease: oxygen by mask or nasal prongs
6   hospitalised, severe disease: oxygen by non-invasive ventilation or high flow
7   hospitalised, severe disease: intubation and mechanical ventilation, pO2/FiO2 ≥ 150
8   hospitalised, severe disease: mechanical ventilation pO2/FiO2 < 150, or vasopressors
9   hospitalised, severe disease: ventilation with vasopressors, dialysis or ECMO
10  dead
==  ======================================================================

Most status texts fix only a band ("hospitalized" is 4–9), so every answer is a range
``[low, high]``; ``low`` is the lowest score the text makes certain, ``score`` is set only when
``low == high``. Each phrase of the text is a constraint and the answer is their intersection
("Hospitalized, ICU" = 4–9 ∩ 6–9 = 6–9); a later state replaces an earlier one (death after
anything; release, discharge or recovery after hospitalisation). Text that matches no phrase,
negates a phrase we have no negated reading for, or whose phrases contradict each other is
reported as ``{"status": "unknown", "text": …, "reason": …}`` — never guessed.

Misspellings are read with a bounded optimal-string-alignment (Damerau–Levenshtein) distance:
0 edits for words up to 4 letters, 1 up to 8, 2 beyond; a word is corrected only when exactly
one vocabulary word is that close, and never when it is itself a known English word that means
something else ("diseased" is not "deceased").

Vaccination → FHIR Immunization with a CVX code
-----------------------------------------------
:func:`parse_vaccination` reads "2 doses Pfizer", "Moderna booster", "AstraZeneca x2",
"Sinovac", "unvaccinated". Vaccine codes are CDC's CVX ("Vaccines administered", CDC National
Center for Immunization and Respiratory Diseases; system ``http://hl7.org/fhir/sid/cvx``). A
brand name names a product but not its formulation; we code the product's first adult
formulation (Pfizer-BioNTech 208, Moderna 207) and keep the text, and a vaccination whose
product is not named gets 213 (SARS-COV-2 vaccine, unspecified formulation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CVX_SYSTEM",
    "SNOMED_SYSTEM",
    "WHO_SCALE",
    "Outcome",
    "Vaccination",
    "VaccineDose",
    "edit_distance",
    "parse_status",
    "parse_vaccination",
]

SNOMED_SYSTEM = "http://snomed.info/sct"
CVX_SYSTEM = "http://hl7.org/fhir/sid/cvx"

#: The WHO clinical progression scale (WHO Working Group 2020), score → description.
WHO_SCALE: dict[int, str] = {
    0: "Uninfected; no viral RNA detected",
    1: "Ambulatory, mild disease: asymptomatic; viral RNA detected",
    2: "Ambulatory, mild disease: symptomatic; independent",
    3: "Ambulatory, mild disease: symptomatic; assistance needed",
    4: "Hospitalised, moderate disease: no oxygen therapy",
    5: "Hospitalised, moderate disease: oxygen by mask or nasal prongs",
    6: "Hospitalised, severe disease: oxygen by non-invasive ventilation or high flow",
    7: "Hospitalised, severe disease: intubation and mechanical ventilation, pO2/FiO2 >= 150",
    8: "Hospitalised, severe disease: mechanical ventilation pO2/FiO2 < 150, or vasopressors",
    9: "Hospitalised, severe disease: ventilation plus vasopressors, dialysis or ECMO",
    10: "Dead",
}

#: The scale's bands, by name, for labels of ranges.
_BANDS = ((0, 0, "uninfected"), (1, 3, "ambulatory, mild disease"),
          (4, 5, "hospitalised, moderate disease"), (6, 9, "hospitalised, severe disease"),
          (10, 10, "dead"))  # fmt: skip

# -- phrases ---------------------------------------------------------------------------------
# Kinds: "state" constrains the current state; "after_hospital" (release, discharge, recovery)
# replaces hospital states; "death" replaces everything. A range is (low, high) on the scale.
# GISAID samples are infected (viral RNA detected), so "alive" and "not hospitalised" start at 1.
_PHRASES: dict[str, tuple[str, int, int]] = {}


def _phrases(kind: str, low: int, high: int, *texts: str) -> None:
    for text in texts:
        _PHRASES[text] = (kind, low, high)


_phrases("state", 0, 0, "uninfected", "not infected", "never infected")
_phrases("state", 1, 1, "asymptomatic", "no symptoms", "without symptoms", "symptom free",
         "asymptomatic carrier", "not symptomatic")  # fmt: skip
_phrases("state", 2, 3, "symptomatic", "mild symptoms", "mildly symptomatic", "mild symptom")
_phrases("state", 1, 3, "mild", "mild disease", "mild illness", "mild case", "outpatient",
         "out patient", "ambulatory", "home isolation", "isolation at home", "home quarantine",
         "self isolation", "self isolating", "quarantine", "quarantined", "isolated at home",
         "at home", "home", "not hospitalized", "not hospitalised", "non hospitalized",
         "non hospitalised", "never hospitalized", "never hospitalised", "not admitted",
         "managed at home", "home care")  # fmt: skip
_phrases("state", 4, 9, "hospitalized", "hospitalised", "hospitalization", "hospitalisation",
         "hospital", "in hospital", "inpatient", "in patient", "admitted", "hospital admission",
         "ward")  # fmt: skip
_phrases("state", 4, 4, "no oxygen", "without oxygen", "room air", "no oxygen therapy")
_phrases("state", 5, 5, "oxygen by mask", "nasal prongs", "nasal cannula", "oxygen mask",
         "face mask oxygen", "low flow oxygen")  # fmt: skip
_phrases("state", 5, 9, "oxygen", "supplemental oxygen", "oxygen therapy", "on oxygen", "o2")
_phrases("state", 6, 6, "high flow", "high flow oxygen", "hfnc", "hfno", "niv", "cpap", "bipap",
         "non invasive ventilation", "noninvasive ventilation")  # fmt: skip
# ICU admission is the usual marker of the scale's "severe" band (6–9); the text alone does not
# say which level of support, so the whole band is reported.
_phrases("state", 6, 9, "icu", "intensive care", "intensive care unit", "critical",
         "critically ill", "itu", "severe icu")  # fmt: skip
_phrases("state", 7, 9, "intubated", "intubation", "mechanical ventilation",
         "mechanically ventilated", "ventilated", "ventilator", "on ventilator", "invasive "
         "ventilation")  # fmt: skip
_phrases("state", 8, 9, "vasopressors", "pressors", "inotropes")
_phrases("state", 9, 9, "ecmo", "dialysis", "renal replacement therapy")
_ALIVE = frozenset({"live", "alive", "living", "survived", "not deceased", "not dead"})
_phrases("state", 1, 9, *sorted(_ALIVE))
_phrases("after_hospital", 1, 3, "released", "discharged", "recovered", "recovering",
         "released from hospital", "discharged from hospital", "discharged home", "cured",
         "convalescent", "resolved")  # fmt: skip
_phrases("death", 10, 10, "deceased", "died", "dead", "death", "expired", "passed away",
         "fatal", "fatality", "demise")  # fmt: skip

#: Words that carry no status: dropped before matching (and never reported as unmatched).
_FILLER_WORDS = (
    "a an and the of at in on to from with was is has had been be patient pt case status "
    "currently now then later after since still covid covid19 19 sars cov 2 due for by"
)
_FILLER = frozenset(_FILLER_WORDS.split())
#: Negation cues: a phrase after one of these is read only through an explicit negated phrase
#: ("not hospitalized"); any other negated phrase makes the text unknown.
_NEGATION = frozenset({"not", "no", "non", "never", "without"})
#: English words one edit away from a vocabulary word that mean something else.
_NOT_MISSPELLINGS = frozenset({"diseased", "disease", "diseases",
                               "deceive", "hospice", "mold", "wild", "child", "homes",
                               "life", "lives", "cue", "cute", "diced", "dies"})  # fmt: skip

#: SNOMED CT findings for the states that have a well-known one (Dead 419099009, Alive
#: 438949009, Symptom free 162467007); hospital states have none that is a *finding* (admission
#: codes are procedures), so they are coded by the WHO scale value alone.
_SNOMED = {
    "death": ("419099009", "Dead"),
    "alive": ("438949009", "Alive"),
    "asymptomatic": ("162467007", "Symptom free"),
}

_WORD = re.compile(r"[a-z0-9]+")


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance between ``a`` and ``b`` (insertions, deletions,
    substitutions and transpositions of adjacent letters; Damerau 1964), or ``limit + 1`` as
    soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        # Every later cell costs at least the smallest of this row, or one more than the
        # smallest of the row before (a transposition reaches back two rows).
        if min(cur) > limit and min(prev) + 1 > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


def _allowed_edits(word: str) -> int:
    return 0 if len(word) <= 4 else 1 if len(word) <= 8 else 2


def _corrector(vocabulary: set[str]):
    """A function word → (the vocabulary word it is read as, or None)."""

    def correct(word: str) -> str | None:
        if word in vocabulary:
            return word
        if word in _NOT_MISSPELLINGS or word.isdigit():
            return None
        limit = _allowed_edits(word)
        if not limit:
            return None
        best, found = limit + 1, []
        for v in vocabulary:
            if _allowed_edits(v) < 1:
                continue
            d = edit_distance(word, v, limit)
            if d < best:
                best, found = d, [v]
            elif d == best:
                found.append(v)
        return found[0] if best <= limit and len(found) == 1 else None

    return correct


_STATUS_WORDS = {w for p in _PHRASES for w in p.split()} - _FILLER - _NEGATION
_correct_status = _corrector(_STATUS_WORDS)
_LONGEST = max(len(p.split()) for p in _PHRASES)


@dataclass(frozen=True)
class Outcome:
    """A patient status read onto the WHO clinical progression scale."""

    text: str
    status: str  # "coded" or "unknown"
    low: int | None = None
    high: int | None = None
    matched: tuple[str, ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    unmatched: tuple[str, ...] = ()
    reason: str | None = None
    snomed: tuple[str, str] | None = None

    @property
    def score(self) -> int | None:
        """The exact score, when the text fixes one."""
        return self.low if self.status == "coded" and self.low == self.high else None

    @property
    def label(self) -> str | None:
        """The scale's words for the score or the band(s) the range spans."""
        if self.status != "coded":
            return None
        if self.score is not None:
            return WHO_SCALE[self.score]
        names = [n for lo, hi, n in _BANDS if lo <= self.high and hi >= self.low]
        return " to ".join(dict.fromkeys([names[0], names[-1]]))

    def to_dict(self) -> dict[str, Any]:
        if self.status != "coded":
            return {"status": "unknown", "text": self.text, "reason": self.reason}
        out: dict[str, Any] = {
            "status": "coded",
            "text": self.text,
            "who_scale": {
                "score": self.score,
                "range": [self.low, self.high],
                "at_least": self.low,
                "label": self.label,
            },
            "matched": list(self.matched),
            "corrections": [{"text": a, "read_as": b} for a, b in self.corrections],
            "unmatched": list(self.unmatched),
            "coding": (
                [{"system": SNOMED_SYSTEM, "code": self.snomed[0], "display": self.snomed[1]}]
                if self.snomed
                else []
            ),
        }
        return out


def _unknown(text: str, reason: str) -> Outcome:
    return Outcome(text=text, status="unknown", reason=reason)


def _match_phrases(words: list[str]) -> tuple[list[tuple[int, str]], list[str]]:
    """Greedy longest-first phrase matching over corrected words: (position, phrase) found and
    the content words left over."""
    found, leftover, i = [], [], 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            if phrase in _PHRASES:
                found.append((i, phrase))
                i += n
                break
        else:
            leftover.append(words[i])
            i += 1
    return found, leftover


def parse_status(text: str) -> Outcome:
    """Read a free-text patient status onto the WHO clinical progression scale (module doc)."""
    if not isinstance(text, str):
        raise TypeError("the status is text")
    lowered = re.sub(r"\b(in|out)[\s-]+patient\b", r"\1patient", text.lower())
    raw = _WORD.findall(lowered.replace("-", " ").replace("_", " "))
    if not raw:
        return _unknown(text, "no words")
    words, corrections = [], []
    for w in raw:
        if w in _FILLER or w in _NEGATION:
            words.append(w)
            continue
        c = _correct_status(w)
        if c is None:
            words.append(w)
        else:
            if c != w:
                corrections.append((w, c))
            words.append(c)
    found, leftover = _match_phrases([w for w in words if w not in _FILLER or w in _NEGATION])
    unmatched = tuple(w for w in leftover if w not in _FILLER and w not in _NEGATION)
    if not found:
        return _unknown(text, "no patient-status phrase recognised")
    # A negation cue right before a phrase that is not itself a negated phrase: unknown.
    kept = [w for w in words if w not in _FILLER or w in _NEGATION]
    for pos, phrase in found:
        if pos > 0 and kept[pos - 1] in _NEGATION and phrase.split()[0] not in _NEGATION:
            return _unknown(text, f"negated status {kept[pos - 1]!r} {phrase!r} not understood")
    kinds = {phrase: _PHRASES[phrase] for _, phrase in found}
    matched = tuple(kinds)
    if any(k == "death" for k, _, _ in kinds.values()):
        alive = [p for p in kinds if p in _ALIVE]
        if alive:
            return _unknown(text, f"contradictory: dead and {alive[0]!r}")
        return Outcome(text, "coded", 10, 10, matched, tuple(corrections), unmatched,
                       snomed=_SNOMED["death"])  # fmt: skip
    ranges = [(lo, hi) for k, lo, hi in kinds.values() if k == "after_hospital"]
    if ranges:
        # Released or recovered: any hospital phrase describes an earlier state.
        ranges += [(lo, hi) for k, lo, hi in kinds.values() if k == "state" and hi <= 3]
    else:
        ranges = [(lo, hi) for _, lo, hi in kinds.values()]
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if low > high:
        return _unknown(text, f"contradictory phrases: {', '.join(matched)}")
    snomed = None
    if low == high == 1:
        snomed = _SNOMED["asymptomatic"]
    elif low >= 1 and set(matched) <= _ALIVE:
        snomed = _SNOMED["alive"]
    return Outcome(text, "coded", low, high, matched, tuple(corrections), unmatched,
                   snomed=snomed)  # fmt: skip


# -- vaccination -----------------------------------------------------------------------------

#: CVX codes (CDC) of COVID-19 vaccines, code → display; checked against the CDC table as
#: republished in WHO's DDCC implementation guide (CVX snapshot, February 2023).
CVX: dict[str, str] = {
    "207": "COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose",
    "208": "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose",
    "210": "COVID-19 vaccine, vector-nr, rS-ChAdOx1, PF, 0.5 mL",
    "211": "COVID-19, subunit, rS-nanoparticle+Matrix-M1 Adjuvant, PF, 0.5 mL",
    "212": "COVID-19 vaccine, vector-nr, rS-Ad26, PF, 0.5 mL",
    "213": "SARS-COV-2 (COVID-19) vaccine, UNSPECIFIED",
    "502": "COVID-19 IV Non-US Vaccine (COVAXIN)",
    "504": "COVID-19 VVnr Non-US Vaccine (Sputnik Light)",
    "505": "COVID-19 VVnr Non-US Vaccine (Sputnik V)",
    "506": "COVID-19 VVnr Non-US Vaccine (CanSino Biological Inc./Beijing Institute of "
    "Biotechnology)",
    "510": "COVID-19 IV Non-US Vaccine (BIBP, Sinopharm)",
    "511": "COVID-19 IV Non-US Vaccine (CoronaVac, Sinovac)",
}

#: Product names as people write them → (CVX code, product name).
_PRODUCTS: dict[str, tuple[str, str]] = {}


def _product(cvx: str, name: str, *texts: str) -> None:
    for t in texts:
        _PRODUCTS[t] = (cvx, name)


_product("208", "Pfizer-BioNTech", "pfizer", "biontech", "pfizer biontech", "comirnaty",
         "bnt162b2", "bnt")  # fmt: skip
_product("207", "Moderna", "moderna", "spikevax", "mrna 1273")
_product("210", "AstraZeneca", "astrazeneca", "astra zeneca", "az", "vaxzevria", "chadox1",
         "oxford astrazeneca")  # fmt: skip
_product("211", "Novavax", "novavax", "nuvaxovid")
_product(
    "212", "Janssen", "janssen", "johnson", "johnson and johnson", "j j", "j and j", "jnj", "jansen"
)
_product("511", "Sinovac CoronaVac", "sinovac", "coronavac")
_product("510", "Sinopharm BIBP", "sinopharm", "bbibp", "bbibp corv")
_product("502", "Covaxin", "covaxin", "bharat biotech")
_product("505", "Sputnik V", "sputnik v", "sputnik", "gam covid vac")
_product("504", "Sputnik Light", "sputnik light")
_product("506", "CanSino", "cansino", "convidecia")

_UNVACCINATED = ("unvaccinated", "not vaccinated", "non vaccinated", "never vaccinated",
                 "no vaccine", "no vaccines", "no vaccination", "no covid vaccine",
                 "not immunized", "not immunised", "unimmunized", "0 doses", "zero doses",
                 "none")  # fmt: skip
_VACCINATED = ("vaccinated", "fully vaccinated", "partially vaccinated", "immunized",
               "immunised", "vaccine", "vaccination", "jab", "jabbed", "shot", "dose", "doses",
               "boosted", "booster", "double vaccinated", "triple vaccinated")  # fmt: skip
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "single": 1, "double": 2,
            "triple": 3, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5,
            "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5}  # fmt: skip
_N = r"(\d|one|two|three|four|five|single|double|triple|first|second|third|fourth|fifth|" \
     r"1st|2nd|3rd|4th|5th)"  # fmt: skip
_DOSE_PATTERNS = (
    re.compile(rf"\b{_N}\s*(?:doses?|shots?|jabs?|vaccinations?)\b"),
    re.compile(rf"\b(?:dose|shot)\s*(?:no\.?\s*|#\s*)?{_N}\b"),
    re.compile(rf"\bx\s*{_N}\b"),
    re.compile(rf"\b{_N}\s*x\b"),
    re.compile(rf"\b{_N}\s+vaccinated\b"),
)
_SEGMENTS = re.compile(r"[,;+/]|\band\b|\bthen\b|\bfollowed by\b|\bplus\b")
_VACCINE_WORDS = (
    {w for p in _PRODUCTS for w in p.split()}
    | {w for p in _UNVACCINATED + _VACCINATED for w in p.split()}
) - {"no", "not", "non", "never", "and", "covid"}
_correct_vaccine = _corrector(_VACCINE_WORDS)


@dataclass(frozen=True)
class VaccineDose:
    """One vaccine product named in the text, with the highest dose number stated for it."""

    cvx: str
    product: str | None
    dose_number: int | None = None
    booster: bool = False

    @property
    def display(self) -> str:
        return CVX[self.cvx]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cvx": self.cvx,
            "display": self.display,
            "product": self.product,
            "dose_number": self.dose_number,
            "booster": self.booster,
        }


@dataclass(frozen=True)
class Vaccination:
    """Vaccination status read from text: ``completed`` (with the doses named), ``not-done``
    (unvaccinated) or ``unknown``."""

    text: str
    status: str
    doses: tuple[VaccineDose, ...] = field(default=())
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "text": self.text}
        if self.status == "unknown":
            out["reason"] = self.reason
        else:
            out["vaccines"] = [d.to_dict() for d in self.doses]
        return out


def _normalise_vaccine_text(text: str) -> str:
    text = text.lower().replace("&", " and ").replace("-", " ").replace("_", " ")
    words = []
    for w in re.findall(r"[a-z0-9#.]+|[,;+/]", text):
        c = _correct_vaccine(w) if w.isalpha() and len(w) > 4 else None
        words.append(c or w)
    return " ".join(words)


def _find_products(segment: str) -> list[tuple[str, str]]:
    found, taken = [], segment
    for name in sorted(_PRODUCTS, key=len, reverse=True):
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        if pattern.search(taken):
            found.append(_PRODUCTS[name])
            taken = pattern.sub(" ", taken)
    return list(dict.fromkeys(found))


def _dose_number(segment: str) -> int | None:
    numbers = []
    for pattern in _DOSE_PATTERNS:
        for m in pattern.finditer(segment):
            g = m.group(1)
            numbers.append(int(g) if g.isdigit() else _NUMBERS[g])
    return max(numbers) if numbers else None


def _has_phrase(text: str, phrases) -> bool:
    return any(re.search(rf"\b{re.escape(p)}\b", text) for p in phrases)


def parse_vaccination(text: str) -> Vaccination:
    """Read a vaccination status ("2 doses Pfizer", "Moderna booster", "unvaccinated") into
    the vaccines given, each with its CVX code (CDC) and the dose number stated (module doc).
    """
    if not isinstance(text, str):
        raise TypeError("the vaccination status is text")
    norm = _normalise_vaccine_text(text)
    if not norm.strip():
        return Vaccination(text, "unknown", reason="no words")
    products = _find_products(norm)
    unvaccinated = _has_phrase(norm, _UNVACCINATED)
    if unvaccinated:
        if products or _dose_number(norm):
            return Vaccination(text, "unknown", reason="says both unvaccinated and vaccinated")
        return Vaccination(text, "not-done", (VaccineDose("213", None),))
    if not products and not _has_phrase(norm, _VACCINATED) and _dose_number(norm) is None:
        return Vaccination(text, "unknown", reason="no vaccine or vaccination status recognised")
    segments = [norm] if len(products) <= 1 else [s for s in _SEGMENTS.split(norm) if s.strip()]
    doses: list[VaccineDose] = []
    for seg in segments:
        named = _find_products(seg) or ([] if len(products) > 1 else [("213", None)])
        if len(named) > 1:
            return Vaccination(text, "unknown", reason="several vaccines named together")
        for cvx, name in named:
            booster = _has_phrase(seg, ("booster", "boosted", "boost"))
            doses.append(VaccineDose(cvx, name, _dose_number(seg), booster))
    if not doses:
        return Vaccination(text, "unknown", reason="no vaccine or vaccination status recognised")
    return Vaccination(text, "completed", tuple(doses))
