"""Genotypes from a Beacon dataset already in the store (``--beacon``): the same dosages, the
same test results and the same forest as the VCF it was ingested from — multi-allelic sites
split, missing and half-missing calls, haploid chrX calls, several partitions and row groups —
with revoked individuals left out and the dataset's name and version in the provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sandgrain import registry
from sandgrain.association.beacon_input import open_beacon
from sandgrain.association.genotypes import MISSING, GenotypeMatrix
from sandgrain.beacon import consent
from sandgrain.beacon import ingest as beacon_ingest
from sandgrain.beacon.genotypes_export import dataset_genotypes
from sandgrain.cli import main
from sandgrain.errors import InputError, NotFoundError
from sandgrain.storage import Store

N = 40  # samples
FEMALES = 26  # the first 26; the other 14 are male, haploid on chrX (where rows are diploid)
SAMPLES = [f"S{i:02d}" for i in range(N)]
HEADER = (
    "##fileformat=VCFv4.2\n##contig=<ID=1,length=100000>\n##contig=<ID=X,length=100000>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    "#" + "\t".join(["CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"])
)


def write_vcf(path, rng) -> None:
    """Biallelic and tri-allelic SNPs and an insertion on chr1 (over three 20-kb windows) with
    missing (``./.``) and half-missing (``./1``) calls, then chrX with haploid males."""
    lines = [HEADER + "\t" + "\t".join(SAMPLES)]
    diploid = ["0/0", "0|1", "1/1", "0/0", "./.", "0/0:7", "1|0"]
    triploid_alts = ["0/0", "1/2", "2/2", "0/2", "0/1", "./.", "./1", "2|1"]
    for j in range(36):
        pos = 100 + j * 1700
        if j % 5 == 2:  # a tri-allelic site, split in two rows
            calls = rng.choice(triploid_alts, N, p=[0.3, 0.15, 0.1, 0.15, 0.15, 0.05, 0.05, 0.05])
            ref, alt, fmt = "A", "C,G", "GT"
        else:
            calls = rng.choice(diploid, N, p=[0.4, 0.2, 0.1, 0.1, 0.05, 0.1, 0.05])
            ref, alt, fmt = ("A", "AT", "GT:DP") if j == 8 else ("C", "T", "GT:DP")
            calls = [c if ":" in c else f"{c}:9" for c in calls]
        rid = f"rs{j}" if j % 3 else "."
        lines.append("\t".join(["1", str(pos), rid, ref, alt, ".", "PASS", ".", fmt, *calls]))
    for j in range(6):  # chrX: females diploid, males haploid (0, 1 or missing)
        calls = list(rng.choice(["0/0", "0/1", "1/1", "./."], FEMALES, p=[0.4, 0.3, 0.2, 0.1]))
        calls += list(rng.choice(["0", "1", "."], N - FEMALES, p=[0.5, 0.4, 0.1]))
        lines.append("\t".join(["X", str(500 + 900 * j), f"x{j}", "G", "A", ".", ".", ".", "GT",
                                *calls]))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def beacon(tmp_path_factory):
    """The VCF, its phenotypes, and a store holding it as Beacon dataset ``cohort`` (written in
    row groups of 5 rows, so blocks cross row groups as well as partitions)."""
    root = tmp_path_factory.mktemp("beacon-input")
    rng = np.random.default_rng(17)
    vcf = root / "cohort.vcf"
    write_vcf(vcf, rng)
    dos = GenotypeMatrix.from_vcf(vcf).dosages(0, 10_000).astype(float)
    signal = np.where(dos[4] == MISSING, 1.0, dos[4])
    score = signal + rng.normal(0, 0.3, N)
    age = rng.uniform(20, 70, N)
    rows = ["samples,score,label,age"] + [
        f"{s},{v:.4f},{int(v > np.median(score))},{a:.1f}"
        for s, v, a in zip(SAMPLES, score, age, strict=True)
    ]
    (root / "traits.csv").write_text("\n".join(rows) + "\n")
    store = Store(str(root / "store"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(beacon_ingest, "ROW_GROUP", 5)
        beacon_ingest.ingest(
            store, "cohort", vcf, assembly="GRCh37", executor="serial", check_ref=False,
            window_bp=20_000,
        )  # fmt: skip
    return store, vcf, root / "traits.csv"


def test_the_capability_comes_from_the_beacon_domain():
    assert registry.capability("beacon.genotypes") is dataset_genotypes


def test_dosages_equal_the_vcfs_in_any_blocks(beacon):
    store, vcf, _ = beacon
    from_vcf = GenotypeMatrix.from_vcf(vcf)
    matrix = open_beacon(store, "cohort")
    ds = store.open_dataset("beacon", "cohort")
    assert len(ds.meta["partitions"]) >= 3  # several windows on chr1, one on chrX
    assert matrix.samples == from_vcf.samples == SAMPLES
    assert matrix.variants.equals(from_vcf.variants)
    assert matrix.n_variants == 36 + 7 + 6  # seven tri-allelic sites, split in two rows
    expected = from_vcf.dosages(0, from_vcf.n_variants)
    assert (expected == MISSING).any() and (expected[-6:, FEMALES:] == 2).any()
    for size in (3, 7, 1000):
        got = np.concatenate([d for _, d in matrix.iter_blocks(size)])
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(matrix.packed(11, 29), from_vcf.packed(11, 29))
    assert matrix.source == {"beacon": "cohort", "version": ds.manifest["version"],
                             "revoked_left_out": 0}  # fmt: skip


@pytest.fixture
def cli(beacon, monkeypatch, capsys):
    """``sandgrain ARGS…`` in-process on the fixture's store; returns (code, stdout, stderr)."""
    store = beacon[0]
    monkeypatch.setenv("SANDGRAIN_STORE", store.url)
    monkeypatch.setenv("SANDGRAIN_EXECUTOR", "serial")

    def run(*args) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    return run


def body(path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.startswith("#")]


def provenance_of(path, prefix: str) -> dict:
    line = next(x for x in path.read_text().splitlines() if x.startswith(prefix))
    return json.loads(line.removeprefix(prefix))


@pytest.mark.parametrize(("test", "statistic"), [("linear", "wald"), ("logistic", "score")])
def test_association_test_from_the_beacon_equals_the_vcf(beacon, cli, tmp_path, test, statistic):
    store, vcf, traits = beacon
    trait = "score" if test == "linear" else "label"
    outs = {}
    for source, value in (("--vcf", vcf), ("--beacon", "cohort")):
        outs[source] = tmp_path / f"{source[2:]}.tsv"
        code, _, err = cli(
            "association", "test", source, value, "--phenotypes", traits, "--trait", trait,
            "--test", test, "--statistic", statistic, "--covariates", "age", "-o", outs[source],
        )  # fmt: skip
        assert code == 0, err
    rows = body(outs["--beacon"])
    assert rows == body(outs["--vcf"]) and len(rows) == 1 + 36 + 7 + 6
    tested = [r.split("\t") for r in rows[1:] if r.split("\t")[8] != "NA"]
    best = min(tested, key=lambda r: float(r[8]))
    assert best[:2] == ["1", str(100 + 3 * 1700)]  # the variant the trait follows (row 4)
    prov = provenance_of(outs["--beacon"], "# provenance ")
    version = store.open_dataset("beacon", "cohort").manifest["version"]
    assert {"source": "beacon/cohort", "beacon": "cohort", "version": version,
            "revoked_left_out": 0} in prov["inputs"]  # fmt: skip


def test_forest_from_the_beacon_equals_the_vcf(beacon, cli, tmp_path):
    _, vcf, traits = beacon
    outs = {}
    for source, value in (("--vcf", vcf), ("--beacon", "cohort")):
        outs[source] = tmp_path / f"{source[2:]}.tsv"
        code, _, err = cli(
            "association", "forest", source, value, "--phenotypes", traits, "--trait", "label",
            "--trees", 30, "--seed", 5, "-q", "-o", outs[source],
        )  # fmt: skip
        assert code == 0, err
    assert body(outs["--beacon"]) == body(outs["--vcf"])
    prov = provenance_of(outs["--beacon"], "# provenance: ")
    assert any(i.get("beacon") == "cohort" and i.get("version") for i in prov["inputs"])


def test_unknown_dataset_and_two_sources_are_clear_errors(beacon, cli, tmp_path):
    _, vcf, traits = beacon
    args = ("--phenotypes", traits, "--trait", "score", "-o", tmp_path / "x.tsv")
    code, _, err = cli("association", "test", "--beacon", "nope", *args)
    assert code != 0
    assert err.count("\n") == 1 and "no Beacon dataset 'nope'" in err and "cohort" in err
    code, _, err = cli("association", "test", "--beacon", "cohort", "--vcf", vcf, *args)
    assert code != 0 and "one of them" in err
    with pytest.raises(NotFoundError, match="no Beacon dataset"):
        dataset_genotypes(beacon[0], "nope")


def test_revoked_individuals_are_left_out(beacon):
    store, vcf, _ = beacon
    gone = ["S03", "S31"]
    try:
        for who in gone:
            consent.revoke(store, "cohort", who, by="test", reason="withdrawn")
        matrix = open_beacon(store, "cohort")
        kept = [s for s in SAMPLES if s not in gone]
        assert matrix.samples == kept and matrix.source["revoked_left_out"] == 2
        expected = GenotypeMatrix.from_vcf(vcf, samples=kept)
        np.testing.assert_array_equal(
            matrix.dosages(0, matrix.n_variants), expected.dosages(0, expected.n_variants)
        )
        everyone = dataset_genotypes(store, "cohort", include_revoked=True)
        assert everyone.samples == SAMPLES
    finally:
        for who in gone:
            consent.restore(store, "cohort", who)


def test_a_sites_only_dataset_has_no_genotypes(tmp_path):
    vcf = tmp_path / "sites.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1,length=5000>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t100\t.\tA\tG\t.\tPASS\tAC=1;AN=2\n"
    )
    store = Store(str(tmp_path / "store"))
    beacon_ingest.ingest(store, "sites", vcf, assembly="GRCh37", executor="serial",
                         check_ref=False)  # fmt: skip
    with pytest.raises(InputError, match="no samples"):
        dataset_genotypes(store, "sites")
