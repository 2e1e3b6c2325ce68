"""Mutations of a strains collection against a coded clinical outcome (issue 17 §5).

One synthetic collection (400 genomes evolved along a dated tree, two planted causal
substitutions, a lineage confounded by country and date; :mod:`sandgrain.strains.simulate_outcomes`)
serves every test. Checked: the strains features against a plain twin read from the calls, the
outcome coding, Fisher and the Cochran–Mantel–Haenszel test against scipy and statsmodels, the
adjusted logistic test against statsmodels, and that covariates or strata put the planted
mutations first and drop the confounded one while the crude test ranks it among the top.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from conftest import SARS_FASTA, SARS_GBK
from scipy import stats

from sandgrain.association import forest as F
from sandgrain.association.collection import (
    cmh_counts,
    collection_inputs,
    collection_test,
    outcome_from_who,
    stratum_tables,
)
from sandgrain.association.tests_classical import fisher_counts
from sandgrain.errors import InputError
from sandgrain.genome.store import add_genome
from sandgrain.registry import capability
from sandgrain.storage import Store
from sandgrain.strains.collection import Collection, add_genomes
from sandgrain.strains.simulate import SimulationParams, write_collection
from sandgrain.strains.simulate_outcomes import OutcomeParams, simulate_outcomes

COLL = "outcomes"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """(store, truth of the outcomes): 400 genomes over a year, outcomes planted."""
    root = tmp_path_factory.mktemp("collection-outcomes")
    store = Store(str(root / "store"))
    add_genome(store, "sars-cov-2", str(SARS_FASTA), annotation=str(SARS_GBK))
    reference = "".join(SARS_FASTA.read_text().split("\n", 1)[1].split())
    write_collection(reference, SimulationParams(n=400, seed=1, span_days=365), root / "sim")
    truth = simulate_outcomes(root / "sim", reference, OutcomeParams(seed=1))
    add_genomes(store, COLL, reference="sars-cov-2", fasta=root / "sim/sequences.fasta",
                metadata=root / "sim/metadata.tsv", executor="serial")  # fmt: skip
    return store, truth


def _ranks(results) -> dict[str, int]:
    table = results.table
    p = table["p"].to_numpy(zero_copy_only=False)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    ids = table["id"].to_pylist()
    return {ids[i]: r + 1 for r, i in enumerate(order)}


def _p(results, label: str) -> float:
    return results.table["p"].to_pylist()[results.table["id"].to_pylist().index(label)]


# -- the features ------------------------------------------------------------------------------
def _plain_codes(coll: Collection, features, strains: list[str]) -> np.ndarray:
    """The codes read straight from each genome's calls: 3 where a missing range, a mixed site or
    a failed alignment touches the feature's site, 1 where the calls list the mutation."""
    calls = {c.strain: c for batch in coll.iter_calls() for c in batch}
    rows = features.to_pylist()
    out = np.zeros((len(rows), len(strains)), dtype=np.uint8)
    for g, s in enumerate(strains):
        c = calls[s]
        gaps = []
        for r in c.missing:
            a, _, b = r.partition("-")
            gaps.append((int(a), int(b or a)))
        gaps += [(int(m[1:-1]), int(m[1:-1])) for m in c.mixed]
        listed = set(c.substitutions + c.deletions + c.insertions + c.aa_substitutions
                     + c.aa_deletions)  # fmt: skip
        for f, row in enumerate(rows):
            if c.error or any(a <= row["end"] and row["start"] <= b for a, b in gaps):
                out[f, g] = 3
            if row["id"] in listed:
                out[f, g] = 1
    return out


def test_features_equal_the_calls_read_plainly(sim):
    store, truth = sim
    feats = capability("strains.mutation-features")(
        store, COLL, kinds=["substitutions", "deletions", "insertions", "aa"], min_count=2
    )
    coll = Collection.open(store, COLL)
    assert feats.version == coll.dataset.manifest["version"] and len(feats.strains) == 400
    kinds = set(feats.features["kind"].to_pylist())
    assert {"substitution", "deletion", "aa"} <= kinds
    plain = _plain_codes(coll, feats.features, feats.strains)
    assert (feats.codes == 3).sum() > 50, "unknown sites are coded 3, not absent"
    np.testing.assert_array_equal(feats.codes, plain)
    # the carriers and the minor-count filter
    carriers = (feats.codes == 1).sum(axis=1)
    called = (feats.codes != 3).sum(axis=1)
    assert carriers.tolist() == feats.features["carriers"].to_pylist()
    assert (carriers >= 2).all() and (called - carriers >= 2).all()
    # VCF-style rows: a substitution is itself, a deletion is anchored on the base before
    ref = coll.reference()
    for row in feats.features.to_pylist():
        if row["kind"] == "substitution":
            assert row["id"] == f"{row['ref']}{row['pos']}{row['alt']}"
        elif row["kind"] == "deletion":
            assert ref[row["pos"] - 1 : row["pos"] - 1 + len(row["ref"])] == row["ref"]
            assert row["alt"] == row["ref"][0] and row["pos"] == row["start"] - 1
    # a planted mutation is present exactly where the simulation planted it
    ids = feats.features["id"].to_pylist()
    for label in truth["causal"]:
        assert carriers[ids.index(label)] == truth["carriers"][label]


def test_feature_options_are_checked(sim):
    store, _ = sim
    features = capability("strains.mutation-features")
    with pytest.raises(InputError, match="feature kinds"):
        features(store, COLL, kinds=["snps"])
    with pytest.raises(InputError, match="QC statuses"):
        features(store, COLL, statuses=["fine"])
    with pytest.raises(InputError, match="at least 1"):
        features(store, COLL, min_count=0)


# -- the outcome -------------------------------------------------------------------------------
def test_outcome_from_the_who_scale():
    values = ["10", "4-9", "6-9", "1-3", "1", "1-9", "", "junk"]
    got = outcome_from_who(values, 4)
    np.testing.assert_array_equal(got, [1, 1, 1, 0, 0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(outcome_from_who(values, 10), [1, 0, 0, 0, 0, 0, np.nan, np.nan])
    with pytest.raises(InputError):
        outcome_from_who(values, 0)


def test_status_texts_are_coded_by_the_phenotypes_domain(sim):
    store, truth = sim
    inputs = collection_inputs(store, COLL, "outcome", min_count=5)
    out = inputs.parameters["outcome"]
    assert out["column"] == "Patient status"
    assert (out["severe"], out["not_severe"], out["missing"]) == (
        truth["severe"], truth["mild"], truth["unknown"],
    )  # fmt: skip
    assert set(out["missing_texts"]) <= {"unknown", "Live"}
    assert out["coding"]["ontology"] == "HPO"
    assert len(inputs.traits.y) == 400 - truth["unknown"] and len(inputs.traits.dropped) == 18
    assert inputs.source["source"] == f"strains/{COLL}@{inputs.parameters['collection_version']}"
    # a threshold of 10 (death) and an explicit column give another, smaller case set
    dead = collection_inputs(store, COLL, "outcome", outcome_column="Patient status",
                             outcome_threshold=10)  # fmt: skip
    assert 0 < dead.traits.y.sum() < inputs.traits.y.sum()


def test_bad_requests_are_refused(sim):
    store, _ = sim
    with pytest.raises(InputError, match="no metadata column 'clade'"):
        collection_inputs(store, COLL, "outcome", ["clade"])
    with pytest.raises(InputError, match="not numeric"):
        collection_inputs(store, COLL, "country")
    with pytest.raises(InputError, match="--date-bin"):
        collection_inputs(store, COLL, "outcome", strata=["date"], date_bin="week")
    inputs = collection_inputs(store, COLL, "outcome", strata=["country"])
    with pytest.raises(InputError, match="fisher or trend"):
        collection_test(inputs, "logistic")


# -- the statistics against references ---------------------------------------------------------
def test_fisher_counts_equal_scipy():
    rng = np.random.default_rng(3)
    tables = rng.integers(0, 25, size=(60, 4))
    tables[0] = (0, 5, 7, 0)
    beta, se, odds, p = fisher_counts(*tables.T)
    for j, (a, b, c, d) in enumerate(tables):
        ref = stats.fisher_exact([[a, b], [c, d]])
        assert p[j] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        if np.isfinite(ref.statistic) and ref.statistic > 0:
            assert odds[j] == pytest.approx(ref.statistic, rel=1e-12)


@pytest.mark.parametrize("correction", [True, False])
def test_cmh_equals_statsmodels_stratified_table(correction):
    from statsmodels.stats.contingency_tables import StratifiedTable

    rng = np.random.default_rng(5)
    tests, strata = 25, 6
    a, b, c, d = (rng.integers(0, 20, size=(tests, strata)) for _ in range(4))
    a[:, 0], b[:, 0] = rng.integers(1, 3, tests), 0  # a sparse stratum
    beta, se, chi2, p = cmh_counts(a, b, c, d, correction=correction)
    for j in range(tests):
        ref = StratifiedTable(np.stack([[a[j], b[j]], [c[j], d[j]]]).astype(float))
        null = ref.test_null_odds(correction=correction)
        assert chi2[j] == pytest.approx(null.statistic, rel=1e-10)
        assert p[j] == pytest.approx(null.pvalue, rel=1e-8, abs=1e-300)
        assert np.exp(beta[j]) == pytest.approx(ref.oddsratio_pooled, rel=1e-10)
        assert se[j] == pytest.approx(ref.logodds_pooled_se, rel=1e-10)


def test_stratum_tables_count_genomes():
    rng = np.random.default_rng(2)
    D = rng.choice(np.array([0, 2, 3], np.uint8), size=(7, 90), p=[0.6, 0.3, 0.1])
    case = rng.random(90) < 0.4
    strata = rng.integers(0, 4, 90)
    a, b, c, d = stratum_tables(D, case, strata, 4)
    for f in range(7):
        for k in range(4):
            s = strata == k
            assert a[f, k] == np.sum((D[f] == 2) & case & s)
            assert b[f, k] == np.sum((D[f] == 2) & ~case & s)
            assert c[f, k] == np.sum((D[f] == 0) & case & s)
            assert d[f, k] == np.sum((D[f] == 0) & ~case & s)


def test_adjusted_logistic_equals_statsmodels(sim):
    import statsmodels.api as sm

    store, truth = sim
    inputs = collection_inputs(store, COLL, "outcome", ["date", "country"])
    results = collection_test(inputs, "logistic")
    traits = inputs.traits
    D = inputs.matrix.dosages(0, inputs.matrix.n_variants)[:, traits.kept]
    ids = results.table["id"].to_pylist()
    checked = 0
    for label in [*truth["causal"], truth["confounded"], *ids[::40]]:
        j = ids.index(label)
        row = D[j]
        known = row != 3
        present = (row[known] > 0).astype(float)
        X = np.column_stack([np.ones(known.sum()), traits.covariates[known], present])
        fit = sm.Logit(traits.y[known], X).fit(disp=0)
        if (row == 3).any():  # the test imputes the mean presence: compare its own design
            filled = np.where(known, row > 0, present.mean()).astype(float)
            X = np.column_stack([np.ones(len(row)), traits.covariates, filled])
            fit = sm.Logit(traits.y, X).fit(disp=0)
        assert results.table["beta"][j].as_py() == pytest.approx(fit.params[-1], rel=1e-6)
        assert results.table["se"][j].as_py() == pytest.approx(fit.bse[-1], rel=1e-6)
        assert results.table["p"][j].as_py() == pytest.approx(fit.pvalues[-1], rel=1e-5)
        af = results.table["af"][j].as_py()
        assert af == pytest.approx(present.mean())
        checked += 1
    assert checked >= 5


# -- planted and confounded ---------------------------------------------------------------------
def test_covariates_and_strata_find_the_planted_mutations_not_the_confounded_one(sim):
    store, truth = sim
    causal, confounded = set(truth["causal"]), truth["confounded"]
    crude = collection_test(collection_inputs(store, COLL, "outcome"), "logistic")
    ranks = _ranks(crude)
    # without covariates the lineage's mutation is among the strongest hits
    assert ranks[confounded] <= 3 and _p(crude, confounded) < 1e-4
    assert crude.lambda_gc > 1.2
    adjusted = collection_test(
        collection_inputs(store, COLL, "outcome", ["date", "country"]), "logistic"
    )
    top = sorted(_ranks(adjusted), key=_ranks(adjusted).get)
    assert set(top[:2]) == causal
    assert max(_p(adjusted, m) for m in causal) < 1e-5
    assert _p(adjusted, confounded) > 0.05
    assert adjusted.extra["collection"] == COLL
    cmh = collection_test(
        collection_inputs(store, COLL, "outcome", strata=["country", "date"]), "fisher"
    )
    assert cmh.test == "cmh" and cmh.statistic == "cmh"
    top = sorted(_ranks(cmh), key=_ranks(cmh).get)
    assert set(top[:2]) == causal and _p(cmh, confounded) > 0.05


def _cli(store):
    from typer.testing import CliRunner

    from sandgrain.cli.association import app as association
    from sandgrain.config import Settings

    root = typer.Typer()

    @root.callback()
    def settings(ctx: typer.Context) -> None:
        ctx.obj = Settings.from_env({}, store_url=store.url, executor="serial")

    root.add_typer(association, name="association")
    runner = CliRunner()
    return lambda *args: runner.invoke(root, ["association", *args], catch_exceptions=True)


def _table(path) -> tuple[list[str], list[dict]]:
    lines = path.read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    body = [line.split("\t") for line in lines if not line.startswith("#")]
    return comments, [dict(zip(body[0], row, strict=True)) for row in body[1:]]


def test_commands_test_and_forest_on_a_collection(sim, tmp_path):
    store, truth = sim
    cli = _cli(store)
    version = Collection.open(store, COLL).dataset.manifest["version"]
    done = cli("test", "--collection", COLL, "--trait", "outcome", "--test", "fisher",
               "--strata", "country,date", "-o", str(tmp_path / "cmh.tsv"))  # fmt: skip
    assert done.exit_code == 0, done.output
    comments, rows = _table(tmp_path / "cmh.tsv")
    prov = json.loads(comments[-1].split(" ", 2)[2])
    assert prov["inputs"][0]["source"] == f"strains/{COLL}@{version}"
    assert prov["parameters"]["strata"] == ["country", "date"]
    assert prov["parameters"]["outcome"]["column"] == "Patient status"
    best = sorted(rows, key=lambda r: float(r["p"]) if r["p"] != "NA" else 2.0)
    assert {r["id"] for r in best[:2]} == set(truth["causal"])
    # the forest on the same features, date and country as features too
    done = cli("forest", "--collection", COLL, "--trait", "outcome", "--covariates",
               "date,country", "--trees", "120", "--seed", "2", "-q",
               "-o", str(tmp_path / "forest.tsv"))  # fmt: skip
    assert done.exit_code == 0, done.output
    comments, rows = _table(tmp_path / "forest.tsv")
    assert f'"collection_version": "{version}"' in comments[0]
    assert {r["id"] for r in rows[:2]} == set(truth["causal"])
    assert {"date", "country=Germany"} <= {r["id"] for r in rows}
    bad = cli("test", "--collection", COLL, "--trait", "outcome", "--vcf", "x.vcf", "-o", "-")
    assert bad.exit_code != 0 and isinstance(bad.exception, InputError)


def test_forest_features_of_a_collection_are_haploid(sim):
    store, _ = sim
    inputs = collection_inputs(store, COLL, "outcome", ["date"])
    D = inputs.matrix.dosages(0, inputs.matrix.n_variants)
    assert set(np.unique(D).tolist()) <= {0, 2, 3}
    feats, _ = F.forest_features(inputs.matrix, inputs.traits.kept, inputs.traits.covariates)
    assert feats.n_features == inputs.matrix.n_variants + 1
