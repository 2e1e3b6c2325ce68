"""Free-text clinical columns at ``sandgrain strains add --metadata``: ``--clinical-column``
codes symptoms/notes into ``<col>_hpo`` / ``<col>_hpo_absent`` columns of the collection's
metadata and ``--status-column`` reads a GISAID-style patient status onto the WHO clinical
progression scale (``outcome_who``, ``outcome_status``); the coder's HPO release is in the
provenance. The metadata is a few rows of the shared ncov example with two columns added."""

from __future__ import annotations

import csv

import pytest
from strains_fixtures import METADATA, REF_FASTA, REF_GB, genomes

from sandgrain.strains.collection import Collection

ANOSMIA, FEVER, DRY_COUGH, DYSPNEA, AGEUSIA = (
    "HP:0000458", "HP:0001945", "HP:0031246", "HP:0002094", "HP:0041051",
)  # fmt: skip
#: strain order → (symptoms, patient status, expected _hpo, _hpo_absent, outcome_who, status)
CLINICAL = [
    ("Lost her sense of smell, denies fever", "Hospitalized", ANOSMIA, FEVER, "4-9", "known"),
    ("dry cough and shortness of breath", "Deceased", f"{DRY_COUGH};{DYSPNEA}", "", "10", "known"),
    ("no loss of taste", "unknown", "", AGEUSIA, "", "unknown"),
    ("", "", "", "", "", "unknown"),
    ("Lost her sense of smell, denies fever", "asymptomatic", ANOSMIA, FEVER, "1", "known"),
]


@pytest.fixture
def files(tmp_path):
    """A FASTA of the first genomes and a copy of their metadata rows with clinical columns
    (plus one row without a genome)."""
    records = genomes()[: len(CLINICAL) - 1]
    fasta = tmp_path / "g.fasta"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in records))
    with METADATA.open() as fh:
        rows = {r["strain"]: r for r in csv.DictReader(fh, delimiter="\t")}
    names = [n for n, _ in records] + [next(s for s in rows if s not in dict(records))]
    header = [*next(iter(rows.values())), "symptoms", "Patient status"]
    lines = ["\t".join(header)]
    for name, (symptoms, status, *_) in zip(names, CLINICAL, strict=True):
        lines.append("\t".join([*rows[name].values(), symptoms, status]))
    metadata = tmp_path / "meta.tsv"
    metadata.write_text("\n".join(lines) + "\n")
    return fasta, metadata, names


@pytest.fixture
def with_reference(cli):
    code, _, err = cli(
        "genome", "add", "MN908947", "--fasta", REF_FASTA, "--annotation", REF_GB, "-q"
    )
    assert code == 0, err
    return cli


def add(cli, fasta, metadata, *options):
    return cli(
        "strains", "add", "--collection", "clin", "--reference", "MN908947", "--fasta", fasta,
        "--metadata", metadata, *options, "-q",
    )  # fmt: skip


def test_clinical_and_status_columns_are_coded_into_the_collection(with_reference, files):
    fasta, metadata, names = files
    code, out, err = add(
        with_reference, fasta, metadata, "--clinical-column", "symptoms",
        "--status-column", "Patient status",
    )  # fmt: skip
    assert code == 0, err
    assert f"{len(names) - 1} genomes added" in out
    coll = Collection.open(with_reference.store, "clin")
    table = coll.metadata()
    assert {"symptoms_hpo", "symptoms_hpo_absent", "outcome_who", "outcome_status"} <= set(
        table.column_names
    )
    got = {r["strain"]: r for r in table.to_pylist()}
    for name, (_, _, present, absent, who, status) in zip(names, CLINICAL, strict=True):
        if name not in got:  # the metadata row without a genome is not in the collection
            assert name == names[-1]
            continue
        row = got[name]
        assert (row["symptoms_hpo"], row["symptoms_hpo_absent"]) == (present, absent), name
        assert (row["outcome_who"], row["outcome_status"]) == (who, status), name
    assert got[names[0]]["symptoms"] == CLINICAL[0][0]  # the free text is kept
    params = coll.dataset.manifest["provenance"]["parameters"]
    coding = params["clinical_coding"]
    assert coding["ontology"] == "HPO" and coding["hpo_version"][:2] == "20"
    assert coding["columns"]["symptoms"]["written"] == ["symptoms_hpo", "symptoms_hpo_absent"]
    assert coding["columns"]["Patient status"]["written"] == ["outcome_who", "outcome_status"]


def test_a_column_not_in_the_metadata_is_one_line_on_stderr(with_reference, files):
    fasta, metadata, _ = files
    code, _, err = add(with_reference, fasta, metadata, "--clinical-column", "notes")
    assert code != 0
    assert "meta.tsv: no metadata column 'notes'" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = add(with_reference, fasta, metadata, "--status-column", "status")
    assert code != 0 and "no metadata column 'status'" in err
    assert not with_reference.store.has_dataset("strains", "clin")  # nothing published


def test_clinical_columns_need_metadata(with_reference, files):
    fasta, _, _ = files
    code, _, err = with_reference(
        "strains", "add", "--collection", "clin", "--reference", "MN908947", "--fasta", fasta,
        "--clinical-column", "symptoms", "-q",
    )  # fmt: skip
    assert code != 0 and "need --metadata" in err
