"""The vectorised classical tests against their plain twins — statsmodels OLS and Logit, scipy's
fisher_exact, Cochran–Armitage from the formula, an unvectorised Firth fit — on random
variants of the hipster data (with its covariates) and of chr22_1000 with its labels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from association_reference import firth_optimum, firth_plain, trend_plain
from conftest import DATA
from firthmodels import FirthLogisticRegression
from scipy import stats

from sandgrain.association.genotypes import GenotypeMatrix, impute
from sandgrain.association.phenotypes_table import load_traits
from sandgrain.association.tests_classical import (
    association_test,
    firth_block,
    fisher_block,
    genomic_inflation,
    linear_block,
    logistic_block,
    trend_block,
)
from sandgrain.errors import InputError

VS = DATA / "association" / "variantspark"
COVS = ["age", "PC0", "PC1", "PC2"]


@pytest.fixture(scope="module")
def hipster():
    """The whole hipster VCF (17,090 rows after the split; read once per module, ~3 s)."""
    m = GenotypeMatrix.from_vcf(VS / "hipster.vcf.bgz")
    return m


@pytest.fixture(scope="module")
def chr22():
    return GenotypeMatrix.from_vcf(VS / "chr22_1000.vcf.gz")


def pick(matrix, kept, n, seed, min_mac=3):
    """``n`` random polymorphic variants with at least ``min_mac`` minor allele copies."""
    rng = np.random.default_rng(seed)
    D = matrix.dosages(0, min(matrix.n_variants, 3000))[:, kept]
    G = impute(D)
    mac = np.minimum(G.sum(1), 2 * G.shape[1] - G.sum(1))
    ok = np.nonzero(mac >= min_mac)[0]
    idx = np.sort(rng.choice(ok, size=n, replace=False))
    return idx, D[idx], G[idx]


def design(traits):
    return np.column_stack([np.ones(len(traits.y)), traits.covariates])


def test_linear_equals_statsmodels_ols(hipster, chr22):
    for matrix, path, trait, covs in (
        (hipster, VS / "hipster_labels_covariates.txt", "score", COVS),
        (chr22, VS / "chr22-labels.csv", "22_16050408", []),
    ):
        tr = load_traits(path, trait, covs, matrix.samples)
        _, _, G = pick(matrix, tr.kept, 25, seed=1)
        C = design(tr)
        beta, se, t, p = linear_block(G, tr.y, C)
        for j in range(len(G)):
            fit = sm.OLS(tr.y, np.column_stack([C, G[j]])).fit()
            assert beta[j] == pytest.approx(fit.params[-1], rel=1e-8, abs=1e-12)
            assert se[j] == pytest.approx(fit.bse[-1], rel=1e-8)
            assert t[j] == pytest.approx(fit.tvalues[-1], rel=1e-8)
            assert p[j] == pytest.approx(fit.pvalues[-1], rel=1e-6, abs=1e-300)


def test_logistic_wald_and_lrt_equal_statsmodels_logit(hipster):
    tr = load_traits(VS / "hipster_labels_covariates.txt", "label", COVS, hipster.samples)
    _, _, G = pick(hipster, tr.kept, 20, seed=2, min_mac=20)
    C = design(tr)
    wald = logistic_block(G, tr.y, C, "wald")
    lrt = logistic_block(G, tr.y, C, "lrt")
    null = sm.Logit(tr.y, C).fit(disp=0, tol=1e-12)
    for j in range(len(G)):
        fit = sm.Logit(tr.y, np.column_stack([C, G[j]])).fit(disp=0, tol=1e-12)
        assert wald[0][j] == pytest.approx(fit.params[-1], rel=1e-7, abs=1e-10)
        assert wald[1][j] == pytest.approx(fit.bse[-1], rel=1e-7)
        assert wald[3][j] == pytest.approx(fit.pvalues[-1], rel=1e-6)
        chi2 = 2 * (fit.llf - null.llf)
        assert lrt[2][j] == pytest.approx(chi2, rel=1e-6, abs=1e-9)
        assert lrt[3][j] == pytest.approx(stats.chi2.sf(chi2, 1), rel=1e-5)


def test_logistic_score_equals_plain_formula(chr22):
    """Rao's score statistic Uᵀ I⁻¹ U at the null fit, from the full information matrix."""
    tr = load_traits(VS / "chr22-labels.csv", "22_16051107", [], chr22.samples)
    _, _, G = pick(chr22, tr.kept, 20, seed=3)
    C = design(tr)
    _, _, chi2, p = logistic_block(G, tr.y, C, "score")
    null = sm.Logit(tr.y, C).fit(disp=0, tol=1e-12)
    mu = 1 / (1 + np.exp(-(C @ null.params)))
    for j in range(len(G)):
        X = np.column_stack([C, G[j]])
        u = X.T @ (tr.y - mu)
        info = X.T @ (X * (mu * (1 - mu))[:, None])
        assert chi2[j] == pytest.approx(u @ np.linalg.solve(info, u), rel=1e-7)


def test_firth_equals_plain_newton(chr22, hipster):
    tr = load_traits(VS / "chr22-labels.csv", "22_16050408", [], chr22.samples)
    _, _, G = pick(chr22, tr.kept, 10, seed=4, min_mac=3)
    C = design(tr)
    beta, se, _, _ = firth_block(G, tr.y, C)
    for j in range(len(G)):
        b, s, _ = firth_plain(np.column_stack([C, G[j]]), tr.y)
        assert beta[j] == pytest.approx(b[-1], rel=1e-5, abs=1e-8)
        assert se[j] == pytest.approx(s[-1], rel=1e-5)
    # with covariates, and the penalised LRT against a plain constrained fit's likelihood
    tr = load_traits(VS / "hipster_labels_covariates.txt", "label", COVS[:2], hipster.samples)
    _, _, G = pick(hipster, tr.kept, 5, seed=5, min_mac=3)
    C = design(tr)
    beta, se, _, _ = firth_block(G, tr.y, C)
    _, _, chi2, _ = firth_block(G, tr.y, C, "lrt")
    for j in range(len(G)):
        b, s, pll = firth_plain(np.column_stack([C, G[j]]), tr.y)
        assert beta[j] == pytest.approx(b[-1], rel=1e-5, abs=1e-8)
        assert se[j] == pytest.approx(s[-1], rel=1e-5)
        assert chi2[j] >= 0


def test_firth_fits_singletons_and_doubletons(hipster):
    """Rare variants are what Firth is for. A singleton's penalised optimum is one the Newton
    step with I(β) overshoots by half (its leverage stays 1), back and forth for ever: every
    singleton and doubleton picked must converge to the optimum a general optimiser finds."""
    tr = load_traits(VS / "hipster_labels_covariates.txt", "label", COVS[:2], hipster.samples)
    D = hipster.dosages(0, 3000)[:, tr.kept]
    G = impute(D)
    mac = np.minimum(G.sum(1), 2 * G.shape[1] - G.sum(1))
    rng = np.random.default_rng(11)
    idx = np.sort(
        np.r_[
            rng.choice(np.nonzero(mac == 1)[0], 8, False),
            rng.choice(np.nonzero(mac == 2)[0], 4, False),
        ]
    )
    C = design(tr)
    beta, se, _, p = firth_block(G[idx], tr.y, C)
    _, _, chi2, _ = firth_block(G[idx], tr.y, C, "lrt")
    assert np.isfinite(beta).all() and np.isfinite(p).all()
    peer = FirthLogisticRegression(max_iter=200, gtol=1e-9, xtol=1e-9, backend="numpy")
    for j, row in enumerate(G[idx]):
        b, pll = firth_optimum(np.column_stack([C, row]), tr.y)
        assert beta[j] == pytest.approx(b[-1], rel=1e-4, abs=1e-6)
        _, pll0 = firth_optimum(np.column_stack([C, row]), tr.y, last_fixed=True)
        assert chi2[j] == pytest.approx(2 * (pll - pll0), rel=1e-5, abs=1e-8)  # penalised LRT
        # firthmodels (logistf's algorithm): the same estimate. Its SE is from the augmented
        # information Σ(1 + hᵢ)wᵢxᵢxᵢᵀ; ours, as logistf's `var`, from I(β̂)⁻¹ = (XᵀWX)⁻¹
        fit = peer.fit(np.column_stack([C[:, 1:], row]), tr.y)
        assert beta[j] == pytest.approx(fit.coef_[-1], rel=1e-5, abs=1e-7)


def test_firth_under_separation_where_logistic_fails():
    """A variant carried by cases only: plain logistic diverges (NaN here, statsmodels warns of
    separation), Firth's estimate is finite and equals the plain fit."""
    rng = np.random.default_rng(6)
    y = np.r_[np.ones(60), np.zeros(60)]
    g = np.zeros(120)
    g[rng.choice(60, 8, replace=False)] = 1
    g[:3] = 2
    G = g[None, :]
    C = np.column_stack([np.ones(120), rng.normal(size=120)])
    assert np.isnan(logistic_block(G, y, C)[3][0])
    beta, se, _, p = firth_block(G, y, C)
    b, s, _ = firth_plain(np.column_stack([C, g]), y)
    assert np.isfinite(beta[0]) and beta[0] == pytest.approx(b[-1], rel=1e-5)
    assert se[0] == pytest.approx(s[-1], rel=1e-5) and 0 < p[0] < 0.05


def test_fisher_and_trend_equal_scipy_and_formula(chr22):
    tr = load_traits(VS / "chr22-labels.csv", "22_16050408", [], chr22.samples)
    _, D, _ = pick(chr22, tr.kept, 30, seed=7, min_mac=1)
    D = D.copy()
    D[0, :50] = 3  # some missing calls: both tests count called genotypes only
    case = tr.y == 1
    beta, _, odds, p = fisher_block(D, case)
    _, _, z, pt = trend_block(D, case)
    for j in range(len(D)):
        called = D[j] != 3
        d, c = D[j][called].astype(int), case[called]
        table = [
            [d[c].sum(), 2 * c.sum() - d[c].sum()],
            [d[~c].sum(), 2 * (~c).sum() - d[~c].sum()],
        ]
        ref = stats.fisher_exact(table)
        assert p[j] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        assert odds[j] == pytest.approx(ref.statistic, rel=1e-12) or np.isnan(ref.statistic)
        zr, pr = trend_plain(d, c)
        assert z[j] == pytest.approx(zr, rel=1e-10)
        assert pt[j] == pytest.approx(pr, rel=1e-8, abs=1e-300)


def test_genomic_inflation():
    p = np.linspace(0.001, 0.999, 999)
    assert genomic_inflation(p) == pytest.approx(1.0, abs=1e-3)
    chi = stats.chi2.isf(p, 1) * 1.3
    assert genomic_inflation(stats.chi2.sf(chi, 1)) == pytest.approx(1.3, rel=1e-3)
    assert np.isnan(genomic_inflation([np.nan]))


def test_driver_columns_and_causal_locus(hipster):
    """On hipster the linear test of ``score`` puts the chr5:126.6 Mb locus first (see
    docs/association.md for the loci)."""
    tr = load_traits(VS / "hipster_labels_covariates.txt", "score", [], hipster.samples)
    res = association_test(hipster, tr, "linear")
    t = res.table
    assert t.column_names == [
        "chrom",
        "pos",
        "id",
        "ref",
        "alt",
        "beta",
        "se",
        "statistic",
        "p",
        "af",
        "n",
    ]
    assert t.num_rows == hipster.n_variants and res.lambda_gc > 1
    best = int(np.nanargmin(t["p"].to_numpy()))
    assert t["chrom"][best].as_py() == "5" and 126_000_000 < t["pos"][best].as_py() < 127_000_000


def test_bad_requests(chr22):
    tr = load_traits(
        VS / "hipster_labels_covariates.txt", "score", COVS, chr22.samples[:0] or ["HG00096"]
    )
    with pytest.raises(InputError, match="binary"):
        association_test(chr22, tr, "logistic")
    bin_ = load_traits(VS / "chr22-labels.csv", "22_16050408", [], chr22.samples)
    with pytest.raises(InputError, match="test"):
        association_test(chr22, bin_, "anova")
    with pytest.raises(InputError, match="statistic"):
        association_test(chr22, bin_, "fisher", statistic="lrt")


def test_too_few_samples_warn_by_ten_events_per_variable():
    """The limiting sample size (the smaller class of a 0/1 trait, every sample of a
    quantitative one) under 10 per variable estimated warns; at 10 it does not."""
    from sandgrain.association.sample_size import sample_size_warning

    nine = np.r_[np.ones(9), np.zeros(50)]
    msg = sample_size_warning(nine, True, 1, "the logistic test")
    assert msg.startswith("the logistic test on 9 cases and 50 controls means little")
    assert "at least 10 of the smaller class" in msg and "Peduzzi" in msg
    assert sample_size_warning(np.r_[np.ones(10), np.zeros(50)], True, 1, "x") is None
    # each covariate is one more variable: 4 covariates need 50 of the smaller class
    forty = np.r_[np.ones(40), np.zeros(40)]
    assert "the variant and 4 covariates" in sample_size_warning(forty, True, 5, "x")
    assert sample_size_warning(np.r_[np.ones(50), np.zeros(50)], True, 5, "x") is None
    quantitative = sample_size_warning(np.arange(3.0), False, 1, "the linear test")
    assert quantitative.startswith("the linear test on 3 samples") and "Harrell" in quantitative
    assert sample_size_warning(np.arange(10.0), False, 1, "x") is None
    assert "\n" not in msg + quantitative  # one line each


def test_three_samples_warn_and_a_constant_trait_is_refused(chr22, tmp_path, caplog):
    table = tmp_path / "three.csv"
    table.write_text("sample,bmi,case,flat\nHG00096,22.1,1,5\nHG00097,27.4,0,5\nHG00099,31,1,5\n")
    bmi = load_traits(table, "bmi", [], chr22.samples)
    with caplog.at_level("WARNING", logger="sandgrain"):
        res = association_test(chr22, bmi, "linear")
    assert res.n_samples == 3
    (warned,) = [r.getMessage() for r in caplog.records]
    assert warned.startswith("the linear test on 3 samples means little")
    caplog.clear()
    case = load_traits(table, "case", [], chr22.samples)
    with caplog.at_level("WARNING", logger="sandgrain"):
        association_test(chr22, case, "fisher")
    (warned,) = [r.getMessage() for r in caplog.records]
    assert warned.startswith("the fisher test on 2 cases and 1 control means little")
    caplog.clear()
    big = load_traits(VS / "chr22-labels.csv", "22_16051107", [], chr22.samples)
    with caplog.at_level("WARNING", logger="sandgrain"):
        association_test(chr22, big, "logistic", statistic="score")
    assert not caplog.records  # 1,092 samples: nothing to say
    # what cannot be computed at all is refused, before any variant is read
    flat = load_traits(table, "flat", [], chr22.samples)
    with pytest.raises(InputError, match="one value only"):
        association_test(chr22, flat, "linear")
    two = load_traits(table, "bmi", [], chr22.samples[:2])
    with pytest.raises(InputError, match="2 samples are too few for 2 parameters"):
        association_test(chr22, two, "linear")


def test_cli_warns_in_one_line_on_three_samples(cli, tmp_path):
    """``association test`` and ``forest`` run on three people, each with one warning line on
    stderr; on the whole cohort, none."""
    table = tmp_path / "three.csv"
    table.write_text("sample,bmi,case\nHG00096,22.1,1\nHG00097,27.4,0\nHG00099,31,1\n")
    vcf = VS / "chr22_1000.vcf.gz"
    code, _, err = cli("association", "test", "--vcf", vcf, "--phenotypes", table, "--trait",
                       "bmi", "-o", tmp_path / "bmi.tsv", "-q")  # fmt: skip
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [
        "sandgrain: warning: the linear test on 3 samples means little: it needs at least 10 "
        "samples (10 per variable: the variant; Harrell 2015, limiting sample size)"
    ]
    code, _, err = cli("association", "forest", "--vcf", vcf, "--phenotypes", table, "--trait",
                       "case", "--trees", "20", "-o", tmp_path / "f.tsv", "-q")  # fmt: skip
    assert code == 0, err
    (warning,) = [line for line in err.splitlines() if "warning" in line]
    assert warning.startswith("sandgrain: warning: the forest on 2 cases and 1 control means")
    code, _, err = cli("association", "test", "--vcf", vcf, "--phenotypes",
                       VS / "chr22-labels.csv", "--trait", "22_16051107", "--statistic", "score",
                       "-o", tmp_path / "all.tsv", "-q")  # fmt: skip
    assert code == 0, err
    assert "warning" not in err
    table.write_text("sample,bmi\nHG00096,5\nHG00097,5\nHG00099,5\n")
    code, _, err = cli("association", "test", "--vcf", vcf, "--phenotypes", table, "--trait",
                       "bmi", "-o", tmp_path / "flat.tsv", "-q")  # fmt: skip
    assert code != 0 and err.count("\n") == 1 and "one value only" in err
    assert not (tmp_path / "flat.tsv").exists()
