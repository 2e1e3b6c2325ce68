"""The wide random forest: split search, trees, OOB and importances against plain Python twins."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from conftest import DATA

from sandgrain.association import forest as F
from sandgrain.association import forest_kernels as K
from sandgrain.association.importance import bh_qvalues, janitza_pvalues

MASK = (1 << 64) - 1
HIPSTER = DATA / "association" / "variantspark" / "hipster.vcf.bgz"
HIPSTER_LABELS = DATA / "association" / "variantspark" / "hipster_labels_covariates.txt"


# -- plain Python twins ---------------------------------------------------------------------------
class Rng:
    """SplitMix64 (Steele, Lea & Flood 2014) in plain Python integers."""

    def __init__(self, seed: int) -> None:
        self.s = seed & MASK

    def next(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n


def ref_decrease(codes, labels, t, classification):
    """Impurity decrease × node size of the split ``code <= t``, from the textbook formulas."""
    left = [lab for c, lab in zip(codes, labels, strict=True) if c <= t]
    right = [lab for c, lab in zip(codes, labels, strict=True) if c > t]

    def n_impurity(vals):
        n = len(vals)
        if n == 0:
            return 0.0
        if classification:
            return n * (1 - sum((vals.count(k) / n) ** 2 for k in set(vals)))
        mean = sum(vals) / n
        return sum((v - mean) ** 2 for v in vals)

    return n_impurity(list(labels)) - n_impurity(left) - n_impurity(right), len(left), len(right)


def ref_best(X, levels, samples, labels, features, min_leaf, classification):
    best = (-1, -1, 0.0)
    for f in features:
        codes = [int(X[f, i]) for i in samples]
        for t in range(levels[f] - 1):
            d, nl, nr = ref_decrease(codes, labels, t, classification)
            if nl >= min_leaf and nr >= min_leaf and d > best[2] + 1e-12:
                best = (f, t, d)
    return best


def ref_tree(X, levels, cls, n_classes, seed, mtry, min_leaf, max_depth, air):
    """Grow a tree the obvious way: lists, dicts and the same random stream as the kernel."""
    n_real, n = X.shape
    rng = Rng(seed)
    counts = [0] * n
    for _ in range(n):
        counts[rng.below(n)] += 1
    idx = [i for i in range(n) for _ in range(counts[i])]
    perm = list(range(n))
    if air:
        for i in range(n - 1, 0, -1):
            j = rng.below(i + 1)
            perm[i], perm[j] = perm[j], perm[i]
    n_cand = 2 * n_real if air else n_real
    fperm = list(range(n_cand))

    def code(f, i):
        return int(X[f, i]) if f < n_real else int(X[f - n_real, perm[i]])

    nodes = {0: None}
    stack = [(0, idx, 0)]
    n_nodes = 1
    while stack:
        node, samples, depth = stack.pop()
        labels = [int(cls[i]) for i in samples]
        value = [labels.count(k) / len(labels) for k in range(n_classes)]
        nodes[node] = {"feature": -1, "threshold": -1, "value": value}
        if len(set(labels)) == 1 or len(samples) < 2 * min_leaf or depth == max_depth:
            continue
        for k in range(min(mtry, n_cand)):
            j = k + rng.below(n_cand - k)
            fperm[k], fperm[j] = fperm[j], fperm[k]
        best = (-1, -1, 0.0)
        for f in fperm[: min(mtry, n_cand)]:
            codes = [code(f, i) for i in samples]
            for t in range(levels[f % n_real] - 1):
                d, nl, nr = ref_decrease(codes, labels, t, True)
                if nl >= min_leaf and nr >= min_leaf and d > best[2] + 1e-9:
                    best = (f, t, d)
        f, t, _ = best
        if f < 0:
            continue
        nodes[node].update(feature=f, threshold=t, left=n_nodes, right=n_nodes + 1)
        left = [i for i in samples if code(f, i) <= t]
        right = [i for i in samples if code(f, i) > t]
        stack.append((n_nodes + 1, right, depth + 1))
        stack.append((n_nodes, left, depth + 1))
        n_nodes += 2
    return nodes, counts, perm


def ref_predict(nodes, X, perm, i):
    n_real = X.shape[0]
    node = nodes[0]
    while node["feature"] >= 0:
        f = node["feature"]
        c = X[f, i] if f < n_real else X[f - n_real, perm[i]]
        node = nodes[node["left"] if c <= node["threshold"] else node["right"]]
    return node["value"]


def random_data(seed, n=40, p=12, n_classes=2):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, (p, n)).astype(np.uint8)
    levels = np.full(p, 3, dtype=np.int64)
    X[-1] = rng.integers(0, 7, n)  # a binned covariate with 7 codes
    levels[-1] = 7
    cls = ((X[0] + X[1] + rng.integers(0, 3, n)) % n_classes).astype(np.int64)
    return X, levels, cls


# -- the split search -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("classification", [True, False])
def test_split_search_equals_brute_force(seed, classification):
    X, levels, cls = random_data(seed, n_classes=2 + seed % 3)
    rng = np.random.default_rng(100 + seed)
    yv = rng.normal(size=X.shape[1]) + X[2]
    idx = rng.integers(0, X.shape[1], 30)  # a bootstrap-like node, with repeats
    features = rng.choice(X.shape[0], 6, replace=False)
    min_leaf = 1 + seed % 3
    n_classes = int(cls.max()) + 1 if classification else 0
    feats = F.Features.from_codes(X, levels)
    f, t, score = K.best_split(
        feats.packed,
        feats.other,
        feats.n_geno,
        levels,
        X.shape[0],
        np.arange(X.shape[1]),
        idx,
        0,
        len(idx),
        cls,
        yv.astype(np.float64),
        n_classes,
        features,
        min_leaf,
    )
    labels = [int(cls[i]) if classification else float(yv[i]) for i in idx]
    bf, bt, bscore = ref_best(X, levels, idx, labels, features, min_leaf, classification)
    assert score == pytest.approx(bscore, rel=1e-9, abs=1e-9)
    if bf < 0:
        assert f == -1
    else:  # the kernel's choice reaches the best decrease (ties may pick either)
        d, _, _ = ref_decrease([int(X[f, i]) for i in idx], labels, t, classification)
        assert d == pytest.approx(bscore, rel=1e-9, abs=1e-9)


# -- a tiny forest against the plain twin ---------------------------------------------------------
@pytest.mark.parametrize("air", [True, False])
def test_trees_equal_plain_python_forest(air):
    X, levels, cls = random_data(7, n=50, p=10, n_classes=3)
    params = F.ForestParams(trees=6, mtry=4, min_leaf=2, max_depth=6, seed=42, air=air, batch=4)
    forest = F.fit_forest(X, levels, cls.astype(float), params, classification=True)
    for t, tree in enumerate(forest.trees):
        nodes, _, _ = ref_tree(X, levels, cls, 3, K.tree_seed(42, t), 4, 2, 6, air)
        assert len(nodes) == len(tree["feature"])
        for k, node in nodes.items():
            assert tree["feature"][k] == node["feature"]
            assert tree["threshold"][k] == node["threshold"]
            if node["feature"] >= 0:
                assert (tree["left"][k], tree["right"][k]) == (node["left"], node["right"])
            np.testing.assert_allclose(tree["value"][k], node["value"])


def test_oob_error_two_ways():
    X, levels, _ = random_data(3, n=60, p=15)
    cls = (X[0].astype(int) + X[1] >= 2).astype(np.int64)
    y = cls.astype(float)
    params = F.ForestParams(trees=20, mtry=5, seed=9, batch=7)
    forest = F.fit_forest(X, levels, y, params, classification=True)
    # Way 2: rebuild each tree's bootstrap and shadow permutation in plain Python, predict the
    # left-out samples tree by tree and vote.
    votes = np.zeros((X.shape[1], 2))
    for t, tree in enumerate(forest.trees):
        _, counts, perm = ref_tree(X, levels, cls, 2, K.tree_seed(9, t), 5, 1, -1, True)
        nodes = {
            k: {
                "feature": int(tree["feature"][k]),
                "threshold": int(tree["threshold"][k]),
                "left": int(tree["left"][k]),
                "right": int(tree["right"][k]),
                "value": tree["value"][k],
            }
            for k in range(len(tree["feature"]))
        }
        for i in range(X.shape[1]):
            if counts[i] == 0:
                votes[i] += ref_predict(nodes, X, perm, i)
    seen = votes.sum(axis=1) > 0
    np.testing.assert_allclose(votes, forest.oob_sum)
    expected = np.mean(np.argmax(votes[seen], axis=1) != cls[seen])
    assert forest.oob_error(y) == pytest.approx(expected)
    assert 0 < forest.oob_error(y) < 0.3


# -- importances and p-values ---------------------------------------------------------------------
def test_janitza_and_bh_against_their_definitions():
    rng = np.random.default_rng(1)
    air = np.concatenate([rng.normal(0, 1, 500), [0, 0, 8, 9]])
    p = janitza_pvalues(air)
    null = np.concatenate([air[air < 0], -air[air < 0], air[air == 0]])
    for x, px in zip(air[:50], p[:50], strict=True):
        assert px == pytest.approx(np.mean(null >= x))
    assert p[-1] == 0 and p[-2] == 0
    # Importances of exactly 0 (never-tried variants) are no evidence: ties count in the tail.
    wide = np.concatenate([np.zeros(1000), -rng.uniform(0, 1, 20), [5.0]])
    pw = janitza_pvalues(wide)
    assert (pw[:1000] > 0.9).all() and pw[-1] == 0
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(bh_qvalues(p), multipletests(p, method="fdr_bh")[1])
    assert np.isnan(janitza_pvalues(np.array([0.0, 1.0]))).all()


def planted(seed=0, n=300, p=300):
    rng = np.random.default_rng(seed)
    X = rng.binomial(2, rng.uniform(0.1, 0.5, p)[:, None], (p, n)).astype(np.uint8)
    logit = 1.5 * (X[0] - 1.0) + 1.5 * (X[1] - 1.0) + 1.2 * (X[2] - 1.0)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    return X, np.full(p, 3), y


def test_planted_signal_ranks_top_and_null_pvalues_are_uniform():
    X, levels, y = planted()
    forest = F.fit_forest(
        X, levels, y, F.ForestParams(trees=300, mtry=40, min_leaf=3, seed=5), classification=True
    )
    cols = forest.importance_columns(0.05)
    assert set(np.argsort(cols["rank"])[:3]) == {0, 1, 2}
    assert (cols["p_value"][:3] < 0.01).all()
    null = cols["p_value"][3:]
    from scipy import stats

    assert stats.kstest(null, "uniform").pvalue > 0.001
    assert np.mean(null < 0.05) < 0.1
    assert forest.oob_error(y) < 0.4


def test_regression_forest_finds_the_quantitative_signal():
    X, levels, _ = planted(seed=2, n=200, p=100)
    y = X[5] * 1.0 + X[7] * 0.8 + np.random.default_rng(0).normal(0, 0.5, X.shape[1])
    forest = F.fit_forest(
        X, levels, y, F.ForestParams(trees=100, mtry=60, min_leaf=5, seed=1), classification=False
    )
    assert set(np.argsort(forest.importance_columns()["rank"])[:2]) == {5, 7}
    assert forest.oob_error(y) < np.var(y)


def test_deterministic_on_serial_and_local2(tmp_path):
    X, levels, y = planted(seed=3, n=120, p=80)
    params = F.ForestParams(trees=24, mtry=10, seed=11, batch=5)
    a = F.fit_forest(X, levels, y, params, classification=True, executor="serial")
    b = F.fit_forest(X, levels, y, params, classification=True, executor="local:2")
    # The plan of batch tasks in worker processes (the path of Dask and Lithops).
    p = F.fit_forest(
        X, levels, y, params, classification=True, executor="local:2", in_process=False
    )
    assert len(a.trees) == len(b.trees) == len(p.trees) == 24
    for other in (b, p):
        for ta, tb in zip(a.trees, other.trees, strict=True):
            for key in ta:
                np.testing.assert_array_equal(ta[key], tb[key])
        for key in ("gini", "shadow", "splits", "oob_sum", "oob_n"):
            np.testing.assert_array_equal(getattr(a, key), getattr(other, key))
    # Saved and loaded, it predicts as before.
    a.save(tmp_path / "f.npz", {"note": "x"})
    c = F.Forest.load(tmp_path / "f.npz")
    np.testing.assert_array_equal(c.predict(X)[1], a.predict(X)[1])
    assert c.meta == {"note": "x"}


def test_bad_input_is_refused():
    from sandgrain.errors import InputError

    X, levels, y = planted(n=20, p=5)
    with pytest.raises(InputError, match="single class"):
        F.fit_forest(X, levels, np.zeros(20), F.ForestParams(trees=2), classification=True)
    with pytest.raises(InputError, match="1 tree"):
        F.ForestParams(trees=0)
    with pytest.raises(InputError, match="at or above"):
        F.fit_forest(X, np.full(5, 2), y, F.ForestParams(trees=2), classification=True)


def test_genotype_codes_impute_the_rounded_mean():
    block = np.array([[0, 2, 2, 3], [3, 3, 3, 3], [1, 0, 0, 3]], dtype=np.uint8)
    np.testing.assert_array_equal(
        F.genotype_codes(block), [[0, 2, 2, 1], [0, 0, 0, 0], [1, 0, 0, 0]]
    )


def test_covariate_codes_keep_order():
    cov = np.random.default_rng(0).normal(size=(500, 2))
    cov[:, 1] = np.round(cov[:, 1])  # few distinct values: one code each
    codes, edges = F.encode_covariates(cov)
    assert codes[0].max() < F.MAX_COVARIATE_LEVELS and len(edges[1]) == len(np.unique(cov[:, 1]))
    for j in range(2):
        o = np.argsort(cov[:, j], kind="stable")
        assert (np.diff(codes[j][o].astype(int)) >= 0).all()


# -- the shared hipster data ----------------------------------------------------------------------
#: The loci the hipster score is made of, found from the score column (docs/association.md):
#: forward selection of variants on the score (R² 0.42, 0.65, 0.84, 0.95, then flat).
HIPSTER_CAUSAL = {("2", 223034082), ("4", 54511913), ("5", 126626044), ("7", 17284577)}


@pytest.mark.skipif(not HIPSTER.exists(), reason="shared hipster data not present")
def test_hipster_forest_ranks_the_causal_loci_top():
    from sandgrain.association.genotypes import GenotypeMatrix
    from sandgrain.association.phenotypes_table import load_traits

    gm = GenotypeMatrix.from_vcf(HIPSTER)
    y, _, _, kept = load_traits(HIPSTER_LABELS, "label", (), gm.samples)
    X, levels, _ = F.feature_matrix(gm, kept)
    chrom = gm.variants.column("chrom").to_pylist()
    pos = gm.variants.column("pos").to_pylist()
    causal = [i for i, k in enumerate(zip(chrom, pos, strict=True)) if k in HIPSTER_CAUSAL]
    assert len(causal) == 4
    # A slice: the causal loci among 1,500 others (keeps the test to seconds).
    rest = np.random.default_rng(0).choice(
        np.setdiff1d(np.arange(len(chrom)), causal), 1500, replace=False
    )
    rows = np.sort(np.concatenate([causal, rest]))
    Xs = X[rows]
    forest = F.fit_forest(
        Xs, levels[rows], y, F.ForestParams(trees=60, mtry=120, seed=1), classification=True
    )
    cols = forest.importance_columns(0.05)
    rank = {int(r): int(cols["rank"][k]) for k, r in enumerate(rows)}
    # All four in the top five (a variant in LD with 5:126626044 may come in between).
    assert max(rank[c] for c in causal) <= 5
    assert (cols["p_value"][np.searchsorted(rows, causal)] < 0.01).all()
    assert forest.oob_error(y) < 0.35


# -- the command line -----------------------------------------------------------------------------
def write_vcf(path, X, samples):
    lines = [
        "##fileformat=VCFv4.2",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="GT">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples),
    ]
    gt = {0: "0/0", 1: "0/1", 2: "1/1", 3: "./."}
    for j, row in enumerate(X):
        calls = "\t".join(gt[int(c)] for c in row)
        lines.append(f"1\t{1000 + j}\tv{j}\tA\tG\t.\tPASS\t.\tGT\t{calls}")
    path.write_text("\n".join(lines) + "\n")


def cli_app(tmp_path):
    from sandgrain.cli.association_forest import forest_cmd, predict_cmd
    from sandgrain.config import Settings

    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = Settings.from_env(
            {"SANDGRAIN_HOME": str(tmp_path / "home"), "SANDGRAIN_EXECUTOR": "serial"}
        )

    app.command("forest")(forest_cmd)
    app.command("predict")(predict_cmd)
    return app


def test_cli_forest_then_predict(tmp_path):
    from typer.testing import CliRunner

    X, _, y = planted(seed=4, n=120, p=40)
    X[5, :3] = 3  # a few missing calls
    samples = [f"S{i}" for i in range(X.shape[1])]
    write_vcf(tmp_path / "g.vcf", X, samples)
    age = np.random.default_rng(0).uniform(20, 80, X.shape[1])
    rows = ["samples,label,age"] + [
        f"{s},{int(v)},{a}" for s, v, a in zip(samples, y, age, strict=True)
    ]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    runner = CliRunner()
    app = cli_app(tmp_path)
    res = runner.invoke(
        app,
        [
            "forest",
            "--vcf",
            str(tmp_path / "g.vcf"),
            "--phenotypes",
            str(tmp_path / "p.csv"),
            "--trait",
            "label",
            "--covariates",
            "age",
            "--trees",
            "50",
            "--seed",
            "3",
            "--model",
            str(tmp_path / "m.npz"),
            "-q",
            "-o",
            str(tmp_path / "imp.tsv"),
        ],
    )
    assert res.exit_code == 0, res.output
    text = (tmp_path / "imp.tsv").read_text().splitlines()
    assert text[0].startswith("# provenance: ") and '"sha256"' in text[0]
    header = [line for line in text if not line.startswith("#")][0].split("\t")
    assert header == [
        "chrom",
        "pos",
        "id",
        "ref",
        "alt",
        "importance",
        "air",
        "split_count",
        "p_value",
        "q_value",
        "rank",
    ]
    body = [line.split("\t") for line in text if not line.startswith("#")][1:]
    assert len(body) == 41 and {"v0", "v1"} <= {b[2] for b in body[:3]}
    assert "age" in {b[2] for b in body}
    res = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(tmp_path / "m.npz"),
            "--vcf",
            str(tmp_path / "g.vcf"),
            "--phenotypes",
            str(tmp_path / "p.csv"),
            "-o",
            str(tmp_path / "pred.tsv"),
        ],
    )
    assert res.exit_code == 0, res.output
    pred = [r.split("\t") for r in (tmp_path / "pred.tsv").read_text().splitlines()[2:]]
    assert len(pred) == 120
    acc = np.mean([float(p[1]) == v for p, v in zip(pred, y, strict=True)])
    assert acc > 0.8  # training samples: most are predicted right


def test_packed_features_equal_the_plain_codes():
    from sandgrain.association.genotypes import GenotypeMatrix, pack

    rng = np.random.default_rng(8)
    dos = rng.integers(0, 3, (37, 23)).astype(np.uint8)
    dos[rng.uniform(size=dos.shape) < 0.2] = 3  # missing calls
    dos[4] = 3  # a variant never called
    import pyarrow as pa

    variants = pa.table({"chrom": ["1"] * 37, "pos": list(range(1, 38))})
    gm = GenotypeMatrix([f"S{i}" for i in range(23)], variants, packed=pack(dos))
    kept = np.array([0, 2, 3, 5, 8, 9, 10, 13, 17, 22])
    feats, _ = F.forest_features(gm, kept, block=8)
    np.testing.assert_array_equal(feats.dense(), F.genotype_codes(dos[:, kept]))
    np.testing.assert_array_equal(feats.packed, pack(F.genotype_codes(dos[:, kept])))
