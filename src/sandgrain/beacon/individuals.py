"""Sample metadata → Beacon individuals, and ontology filters on them.

The metadata file (CSV, TSV or JSON) has one row per sample. Columns, any order, names
case-insensitive:

``id`` (or ``individualId``, ``sample``)
    the VCF sample name (required).
``sex``
    ``male``/``female``/``unknown``/``M``/``F`` or an ontology term (``NCIT:C20197``).
``ethnicity``, ``geographicOrigin`` (or ``geographic_origin``)
    one term.
``diseases``, ``phenotypicFeatures`` (or ``phenotypic_features``, ``phenotypes``)
    terms separated by ``;`` or ``,``.

``age``
    age at data collection: years (``45``) or an ISO 8601 duration (``P45Y6M``); filtered with
    ``age>5`` (:mod:`sandgrain.beacon.filters`).
``cohorts`` (or ``cohort``)
    names of the study-defined cohorts the individual belongs to, separated by ``;`` or ``,``;
    each name becomes a cohort ``<dataset>:<name>`` beside the dataset's beacon-defined one.
``biosampleStatus``, ``sampleOriginType`` (terms), ``collectionDate`` (``YYYY-MM-DD``)
    the sample's biosample (without them: ``NCIT:C17998`` unknown, see
    :mod:`sandgrain.beacon.entries`).
``runDate`` (``YYYY-MM-DD``), ``platform``, ``libraryStrategy``, ``librarySelection``,
``libraryLayout``
    the sequencing run; an individual has a run only when its ``runDate`` is given.
``analysisDate`` (``YYYY-MM-DD``), ``pipelineName``, ``variantCaller``, ``aligner``
    the analysis that called the sample's genotypes (else the VCF header's, see
    :mod:`sandgrain.beacon.entries`).

A term is ``CURIE`` or ``CURIE|label`` (``HP:0001250|Seizure``); a word without a prefix is kept
as a label-only term with an id ``sandgrain:<word>``. JSON may be a list of such rows, or of
objects whose term fields are already ``{"id": …, "label": …}``.

Free-text phenotype columns (``--phenotype-text-column``, any names, matched exactly) are coded
into ``phenotypicFeatures`` by the phenotypes domain (the ``"clinical-text.features"``
capability, :func:`sandgrain.registry.capability`): a finding the text negates ("denies fever")
is kept with ``excluded: true`` and is never matched by a filter; a term the structured column
already lists is not added twice.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from datetime import date

from ..errors import InputError

#: NCIt codes Beacon v2 examples use for sex (NCIT:C20197 male, NCIT:C16576 female).
SEX_TERMS = {
    "male": ("NCIT:C20197", "male"),
    "m": ("NCIT:C20197", "male"),
    "1": ("NCIT:C20197", "male"),
    "female": ("NCIT:C16576", "female"),
    "f": ("NCIT:C16576", "female"),
    "2": ("NCIT:C16576", "female"),
    "unknown": ("NCIT:C17998", "unknown"),
    "u": ("NCIT:C17998", "unknown"),
    "0": ("NCIT:C17998", "unknown"),
}
SEX_LABELS = {v[0]: v[1] for v in SEX_TERMS.values()}
_CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*:[A-Za-z0-9_.\-]+$")
_ALIASES = {
    "id": "id",
    "individualid": "id",
    "individual_id": "id",
    "sample": "id",
    "sample_id": "id",
    "sampleid": "id",
    "sex": "sex",
    "ethnicity": "ethnicity",
    "geographicorigin": "geographic_origin",
    "geographic_origin": "geographic_origin",
    "diseases": "diseases",
    "disease": "diseases",
    "phenotypicfeatures": "phenotypic_features",
    "phenotypic_features": "phenotypic_features",
    "phenotypes": "phenotypic_features",
    "age": "age",
    "cohorts": "cohorts",
    "cohort": "cohorts",
    "biosamplestatus": "biosample_status",
    "sampleorigintype": "sample_origin_type",
    "collectiondate": "collection_date",
    "rundate": "run_date",
    "platform": "platform",
    "librarystrategy": "library_strategy",
    "libraryselection": "library_selection",
    "librarylayout": "library_layout",
    "analysisdate": "analysis_date",
    "pipelinename": "pipeline_name",
    "variantcaller": "variant_caller",
    "aligner": "aligner",
}
#: Fields of the sample's biosample, run and analysis (record key → its fields).
SAMPLE_FIELDS = {
    "biosample": ("biosample_status", "sample_origin_type", "collection_date"),
    "run": ("run_date", "platform", "library_strategy", "library_selection", "library_layout"),
    "analysis": ("analysis_date", "pipeline_name", "variant_caller", "aligner"),
}
_TERM_SAMPLE_FIELDS = ("biosample_status", "sample_origin_type")
_DATE_FIELDS = ("collection_date", "run_date", "analysis_date")
_COHORT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Scopes of the terms individuals carry: every entry type answers through its individuals.
TERM_SCOPES = ["individual", "biosample", "run", "analysis", "genomicVariation"]
TERM_FIELDS = ("sex", "ethnicity", "geographic_origin")
LIST_FIELDS = ("diseases", "phenotypic_features")


def term(value, *, field: str) -> dict | None:
    """One ontology term from ``CURIE``, ``CURIE|label``, a label, or ``{"id", "label"}``."""
    if value is None:
        return None
    if isinstance(value, dict):
        if "id" not in value:
            raise InputError(f"{field}: a term needs an 'id' (got {value!r})")
        return {"id": str(value["id"]), **({"label": value["label"]} if value.get("label") else {})}
    text = str(value).strip()
    if not text:
        return None
    if field == "sex" and text.lower() in SEX_TERMS:
        code, label = SEX_TERMS[text.lower()]
        return {"id": code, "label": label}
    code, _, label = text.partition("|")
    code, label = code.strip(), label.strip()
    if not _CURIE.match(code):
        if label:
            raise InputError(f"{field}: {code!r} is not an ontology term like HP:0001250")
        return {"id": f"sandgrain:{re.sub(r'[^A-Za-z0-9_.-]+', '_', code)}", "label": code}
    if not label and field == "sex":
        label = SEX_LABELS.get(code, "")
    return {"id": code, **({"label": label} if label else {})}


def _terms(value, field: str) -> list[dict]:
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else re.split(r"[;,]", str(value))
    return [t for t in (term(v, field=field) for v in items) if t]


def parse_individuals(
    data: bytes,
    filename: str,
    samples: list[str],
    *,
    text_columns: Sequence[str] = (),
    features: Callable[[str], list[dict]] | None = None,
) -> list[dict]:
    """Rows of a metadata file → individual records (see the module docstring).

    ``text_columns`` are free-text phenotype columns, each coded by ``features`` (text →
    ``[{"featureType": {"id", "label"}, "excluded": bool}]``) into the phenotypic features.
    """
    text = data.decode("utf-8-sig", errors="replace")
    if filename.lower().endswith(".json") or text.lstrip()[:1] in "[{":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{filename}: not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from None
        if isinstance(rows, dict):
            rows = rows.get("individuals", rows.get("results", []))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputError(f"{filename}: expected a JSON list of individuals")
    else:
        dialect = "excel-tab" if "\t" in text.split("\n", 1)[0] else "excel"
        rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    if not rows:
        raise InputError(f"{filename}: no individuals in the file")
    header = list(dict.fromkeys(k for r in rows for k in r))
    for column in text_columns:
        if column not in header:
            raise InputError(
                f"{filename}: no phenotype text column {column!r} "
                f"(columns: {', '.join(map(str, header[:12]))})"
            )
    if text_columns and features is None:  # pragma: no cover - ingest always passes it
        raise InputError("phenotype text columns need a coder (the phenotypes domain)")
    known = set(samples)
    out, seen = [], set()
    for n, row in enumerate(rows, 1):
        fields = {}
        for key, value in row.items():
            if key in text_columns:
                continue  # free text, coded below, never read as terms
            name = _ALIASES.get(str(key).strip().lower().replace(" ", ""))
            if name:
                fields[name] = value
        ident = str(fields.get("id") or "").strip()
        if not ident:
            raise InputError(f"{filename}: row {n} has no id (a column id, individualId or sample)")
        if ident in seen:
            raise InputError(f"{filename}: individual {ident!r} is listed twice")
        if ident not in known:
            raise InputError(
                f"{filename}: individual {ident!r} (row {n}) is not a sample of the VCF"
            )
        seen.add(ident)
        record = {"id": ident}
        for f in TERM_FIELDS:
            record[f] = term(fields.get(f), field=f)
        for f in LIST_FIELDS:
            record[f] = _terms(fields.get(f), f)
        for column in text_columns:
            _add_coded(record["phenotypic_features"], features(_text(row.get(column))))
        where = f"{filename}: individual {ident!r}"
        age = _age(fields.get("age"), where)
        if age:
            record["age"] = age
        cohorts = _cohorts(fields.get("cohorts"), where)
        if cohorts:
            record["cohorts"] = cohorts
        for key, names in SAMPLE_FIELDS.items():
            part = {}
            for name in names:
                value = _sample_field(name, fields.get(name), where)
                if value is not None:
                    part[name] = value
            if part:
                record[key] = part
        out.append(record)
    return out


def _add_coded(terms: list[dict], coded: list[dict]) -> None:
    """Add coded features to an individual's terms: one entry per term id; an observed one
    replaces an excluded one of the same id."""
    at = {t["id"]: i for i, t in enumerate(terms)}
    for feature in coded:
        t = term(feature["featureType"], field="phenotypic_features")
        if feature.get("excluded"):
            t["excluded"] = True
        if t["id"] not in at:
            at[t["id"]] = len(terms)
            terms.append(t)
        elif terms[at[t["id"]]].get("excluded") and not t.get("excluded"):
            terms[at[t["id"]]] = t


def observed(terms) -> list[dict]:
    """The terms of a list that were observed (not ``excluded``: looked for and absent)."""
    return [t for t in terms or () if not t.get("excluded")]


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _age(value, where: str) -> dict | None:
    from .filters import years

    text = _text(value)
    if not text:
        return None
    try:
        years(text)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    text = text.upper()
    return {"iso8601duration": text if text.startswith("P") else f"P{text}Y"}


def _cohorts(value, where: str) -> list[str]:
    items = value if isinstance(value, list) else re.split(r"[;,]", _text(value))
    names = [_text(v) for v in items if _text(v)]
    for name in names:
        if not _COHORT.match(name):
            raise InputError(
                f"{where}: cohort name {name!r:.40} must be letters, digits, '.', '_' or '-'"
            )
    return list(dict.fromkeys(names))


def _sample_field(name: str, value, where: str):
    if name in _TERM_SAMPLE_FIELDS:
        return term(value, field=name)
    text = _text(value)
    if not text:
        return None
    if name in _DATE_FIELDS:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise InputError(f"{where}: {name} {text!r:.40} is not a date YYYY-MM-DD") from None
    if name == "library_layout":
        if text.upper() not in ("PAIRED", "SINGLE"):
            raise InputError(f"{where}: libraryLayout is PAIRED or SINGLE (got {text!r:.20})")
        return text.upper()
    return text


def individual_terms(record: dict) -> set[str]:
    """Every ontology term id attached to an individual (what filters match)."""
    ids = {record[f]["id"] for f in TERM_FIELDS if record.get(f)}
    for f in LIST_FIELDS:
        ids.update(t["id"] for t in observed(record.get(f)))
    return ids


def filtering_terms(individuals: list[dict]) -> dict[str, dict]:
    """Every term used by any individual (its biosample's included), and the alphanumeric
    fields they have (``age``, ``sex``, ``cohort``): id → {id, label?, type?, scopes, values?}.

    Every entry type answers through its individuals (variants through their carriers), so
    every term's scopes are all of :data:`TERM_SCOPES`. Only terms some individual carries
    are listed; a filter on an ancestor (``HP:0000707``) works too (descendant terms).
    """
    found: dict[str, dict] = {}
    fields: dict[str, set[str]] = {}
    for record in individuals:
        terms = [record[f] for f in TERM_FIELDS if record.get(f)]
        for f in LIST_FIELDS:
            terms.extend(observed(record.get(f)))
        sample = record.get("biosample") or {}
        terms.extend(sample[f] for f in _TERM_SAMPLE_FIELDS if sample.get(f))
        for t in terms:
            entry = found.setdefault(
                t["id"], {"id": t["id"], "type": "ontologyTerm", "scopes": list(TERM_SCOPES)}
            )
            if t.get("label") and "label" not in entry:
                entry["label"] = t["label"]
        if record.get("sex"):
            fields.setdefault("sex", set()).add(record["sex"].get("label") or record["sex"]["id"])
        if record.get("age"):
            fields.setdefault("age", set())
        if record.get("cohorts"):
            fields.setdefault("cohort", set()).update(record["cohorts"])
    for name, values in fields.items():
        entry = {"id": name, "type": "alphanumeric", "scopes": list(TERM_SCOPES)}
        if values:
            entry["values"] = sorted(values)
        found[name] = entry
    return found
