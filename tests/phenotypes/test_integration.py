"""The coder as other domains call it (registry capabilities): metadata columns coded into
``<col>_hpo`` / ``<col>_hpo_absent`` / ``outcome_who`` / ``outcome_status``, and one note into
Beacon ``phenotypicFeatures``. The strains and beacon tests run them end to end."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sandgrain.errors import InputError
from sandgrain.phenotypes.integration import code_columns, phenotypic_features

ROWS = [
    {"id": "a", "notes": "Lost her sense of smell, denies fever", "status": "Deceased"},
    {"id": "b", "notes": "possible pneumonia; mother has seizures", "status": "Hospitalized"},
    {"id": "c", "notes": None, "status": "no idea"},
]


def test_rows_and_tables_are_coded_alike():
    rows, summary = code_columns(ROWS, ["notes"], status_column="status")
    table, _ = code_columns(pa.Table.from_pylist(ROWS), ["notes"], status_column="status")
    assert table.to_pylist() == rows
    assert [(r["notes_hpo"], r["notes_hpo_absent"]) for r in rows] == [
        ("HP:0000458", "HP:0001945"),
        ("", ""),  # uncertain and family findings are not the patient's present/absent terms
        ("", ""),
    ]
    assert [(r["outcome_who"], r["outcome_status"]) for r in rows] == [
        ("10", "known"),
        ("4-9", "known"),
        ("", "unknown"),
    ]
    assert ROWS[0].keys() == {"id", "notes", "status"}  # the input is not changed
    assert summary["columns"]["notes"]["rows_with_present_terms"] == 1
    assert summary["columns"]["status"]["rows_known"] == 2
    assert summary["hpo_version"] and summary["ontology"] == "HPO"


def test_bad_columns_are_named():
    with pytest.raises(InputError, match="no metadata column 'symptoms'"):
        code_columns(ROWS, ["symptoms"])
    with pytest.raises(InputError, match="already has column 'notes_hpo'"):
        code_columns([{**ROWS[0], "notes_hpo": "x"}], ["notes"])
    with pytest.raises(InputError, match="pyarrow Table or a list of dicts"):
        code_columns("notes", ["notes"])


def test_features_mark_negated_findings_excluded():
    assert phenotypic_features("Lost her sense of smell, denies fever") == [
        {"featureType": {"id": "HP:0000458", "label": "Anosmia"}, "excluded": False},
        {"featureType": {"id": "HP:0001945", "label": "Fever"}, "excluded": True},
    ]
    assert phenotypic_features("  ") == []
    with pytest.raises(InputError):
        phenotypic_features(None)
