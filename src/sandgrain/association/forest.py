"""A random forest for wide data (many more variants than samples), with unbiased importances.

Breiman (2001), "Random forests", Machine Learning 45:5: trees grown on bootstrap samples, ``mtry``
features tried per node, out-of-bag (OOB) error from the samples each tree did not see. Built for
genotype matrices: features are ``uint8`` codes held variant-major (0/1/2 dosages; covariates
quantile-binned to at most :data:`MAX_COVARIATE_LEVELS` codes), so the exact best split of a node
costs one counting pass per candidate feature (see :mod:`.forest_kernels`).

Importances per feature:

- ``importance``: the Gini importance (mean decrease in impurity, Breiman 2001): the impurity
  decrease of every split on the feature, weighted by node size, summed over a tree, averaged over
  trees and divided by the number of samples.
- ``air``: the actual impurity reduction importance (Nembrini, König & Wright 2018, Bioinformatics
  34:3711): each tree also grows on a permuted shadow of every feature, and AIR is the feature's
  Gini importance minus its shadow's. It removes the Gini importance's bias towards features with
  many split points and is centred on zero for null features, which gives p-values by Janitza,
  Celik & Boulesteix (2018) (:mod:`.importance`).
- ``split_count``: how many nodes split on the feature.

Trees are grown in batches as fan-out tasks (:func:`grow_batch`); each tree's randomness comes
from a seed derived from the forest's seed and the tree's index alone, and batch results are
summed in plan order, so the forest is the same on every executor.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from . import forest_kernels as K
from .importance import bh_qvalues, janitza_pvalues

__all__ = [
    "FOREST_FORMAT",
    "GENOTYPE_LEVELS",
    "MAX_COVARIATE_LEVELS",
    "Forest",
    "Features",
    "ForestParams",
    "as_features",
    "encode_covariates",
    "feature_matrix",
    "forest_features",
    "fit_forest",
    "genotype_codes",
    "grow_batch",
]

#: Codes a genotype feature takes (0/1/2 alternate alleles).
GENOTYPE_LEVELS = 3
#: Most quantile bins a covariate is cut into.
MAX_COVARIATE_LEVELS = 64
#: Format name and version of a saved forest.
FOREST_FORMAT = ("sandgrain-forest", 1)
#: Added to a tree's seed to draw the shadow permutation of samples it predicts.
_PREDICT_SALT = 0x5EED


@dataclass(frozen=True)
class ForestParams:
    """How a forest is grown; checked once, here.

    Parameters
    ----------
    trees : int
        Number of trees (1 or more).
    mtry : int
        Features tried per node (among real and shadow features when ``air``).
    min_leaf : int
        Fewest bootstrap samples a child node may hold (scikit-learn's ``min_samples_leaf``).
    max_depth : int
        Deepest a tree grows; -1 for no limit.
    seed : int
        Seed of the forest (0 to 2**63-1).
    air : bool
        Grow with shadow features, for AIR importances and their p-values.
    batch : int
        Trees per fan-out task (does not change the forest).
    """

    trees: int = 500
    mtry: int = 1
    min_leaf: int = 1
    max_depth: int = -1
    seed: int = 0
    air: bool = True
    batch: int = 10

    def __post_init__(self) -> None:
        if self.trees < 1:
            raise InputError(f"the forest needs 1 tree or more, not {self.trees}")
        if self.mtry < 1:
            raise InputError(f"mtry must be 1 or more, not {self.mtry}")
        if self.min_leaf < 1:
            raise InputError(f"the minimum node size must be 1 or more, not {self.min_leaf}")
        if self.max_depth < -1 or self.max_depth == 0:
            raise InputError(f"max depth must be 1 or more (or -1: none), not {self.max_depth}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"the seed must be between 0 and 2**63-1, not {self.seed}")
        if self.batch < 1:
            raise InputError(f"trees per batch must be 1 or more, not {self.batch}")


def genotype_codes(block: np.ndarray) -> np.ndarray:
    """0/1/2 codes of a dosage block (variants × samples, 3 = missing), missing imputed.

    A missing call takes the variant's mean dosage over its called samples rounded to the
    nearest code (the "mean" rule of PLINK and VariantSpark, made a genotype); a variant
    never called becomes 0.
    """
    block = np.asarray(block, dtype=np.uint8)
    missing = block == 3
    if not missing.any():
        return block.copy()
    called = (~missing).sum(axis=1)
    total = np.where(missing, 0, block).sum(axis=1, dtype=np.int64)
    mean = np.divide(total, called, out=np.zeros(len(block)), where=called > 0)
    fill = np.rint(mean).astype(np.uint8)
    return np.where(missing, fill[:, None], block).astype(np.uint8)


def encode_covariates(
    cov: np.ndarray, edges: list[np.ndarray] | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Covariates (samples × c) as ordinal codes (c × samples, uint8) and their bin edges.

    A covariate with at most :data:`MAX_COVARIATE_LEVELS` distinct values keeps one code per
    value; otherwise it is cut at its quantiles. Code ``k`` holds ``edges[k-1] < x <= edges[k]``
    (values above the last edge, met only when predicting, take the last code). Pass the
    ``edges`` of a fitted forest to code new samples the same way.
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2:
        raise InputError("covariates must be a samples × covariates table")
    if edges is None:
        edges = []
        for col in cov.T:
            uniq = np.unique(col)
            if uniq.size > MAX_COVARIATE_LEVELS:
                q = np.linspace(0, 1, MAX_COVARIATE_LEVELS + 1)[1:]
                uniq = np.unique(np.quantile(col, q, method="inverted_cdf"))
            edges.append(uniq)
    codes = np.empty((cov.shape[1], cov.shape[0]), dtype=np.uint8)
    for j, e in enumerate(edges):
        codes[j] = np.minimum(np.searchsorted(e, cov[:, j], side="left"), len(e) - 1)
    return codes, edges


@dataclass
class Features:
    """The features a forest grows on: genotypes packed 2 bits a call, then other features.

    ``packed`` holds the first ``n_geno`` features (codes 0-3, 4 samples a byte, the layout of
    :func:`sandgrain.association.genotypes.pack`), ``other`` the rest one byte a sample (covariate
    codes); ``levels`` gives each feature's number of codes. 10,000 samples × 1,000,000 variants
    take 2.5 GB here against 10 GB one byte a call.
    """

    packed: np.ndarray
    other: np.ndarray
    levels: np.ndarray
    n_samples: int

    @property
    def n_geno(self) -> int:
        return int(self.packed.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.levels.shape[0])

    @classmethod
    def from_codes(cls, X: np.ndarray, levels: np.ndarray) -> Features:
        """From a features × samples matrix of codes: the leading rows of at most 4 codes are
        packed, the rest kept one byte a sample."""
        from .genotypes import pack

        X = np.asarray(X, dtype=np.uint8)
        levels = np.asarray(levels, dtype=np.int64)
        wide = np.flatnonzero(levels > 4)
        n_geno = int(wide[0]) if wide.size else X.shape[0]
        return cls(
            packed=pack(X[:n_geno]) if n_geno else np.zeros((0, (X.shape[1] + 3) // 4), np.uint8),
            other=np.ascontiguousarray(X[n_geno:]),
            levels=levels,
            n_samples=int(X.shape[1]),
        )

    def dense(self) -> np.ndarray:
        """All features as one features × samples ``uint8`` matrix (small data only)."""
        from .genotypes import unpack

        return np.concatenate([unpack(self.packed, self.n_samples), self.other])


def as_features(X: np.ndarray | Features, levels: np.ndarray | None = None) -> Features:
    """``X`` as :class:`Features` (a codes matrix is packed with :meth:`Features.from_codes`)."""
    if isinstance(X, Features):
        return X
    X = np.asarray(X, dtype=np.uint8)
    if X.ndim != 2:
        raise InputError("features must be a features × samples matrix")
    if levels is None:
        raise InputError("a codes matrix needs the levels of its features")
    levels = np.asarray(levels, dtype=np.int64)
    if levels.shape[0] != X.shape[0] or (levels < 1).any() or (levels > 255).any():
        raise InputError("levels must give 1-255 codes for every feature")
    if X.size and (X.max(axis=1) >= levels).any():
        raise InputError("a feature has a code at or above its number of levels")
    return Features.from_codes(X, levels)


@dataclass
class Forest:
    """A grown forest: node arrays per tree and what growing it measured.

    ``trees`` holds one dict per tree (``feature``, ``threshold``, ``left``, ``right``,
    ``value``; ``feature >= n_features`` is a shadow). ``classes`` is the sorted trait values of a
    classification forest, None for regression. ``oob_sum``/``oob_n``: the summed OOB
    predictions per sample and the number of trees that left each sample out.
    """

    params: ForestParams
    n_features: int
    levels: np.ndarray
    classes: np.ndarray | None
    trees: list[dict[str, np.ndarray]]
    gini: np.ndarray
    shadow: np.ndarray
    splits: np.ndarray
    oob_sum: np.ndarray
    oob_n: np.ndarray
    n_samples: int
    meta: dict[str, Any] = field(default_factory=dict)

    # -- importances ------------------------------------------------------------------------
    @property
    def importance(self) -> np.ndarray:
        """Gini importance (mean decrease in impurity) per feature."""
        return self.gini / (len(self.trees) * self.n_samples)

    @property
    def air(self) -> np.ndarray:
        """AIR (Nembrini 2018): Gini importance minus the shadow's; NaN without shadows."""
        if not self.params.air:
            return np.full(self.n_features, np.nan)
        return (self.gini - self.shadow) / (len(self.trees) * self.n_samples)

    def pvalues(self) -> np.ndarray:
        """Janitza (2018) p-values of the AIR importances."""
        return janitza_pvalues(self.air)

    # -- out of bag -------------------------------------------------------------------------
    def oob_prediction(self) -> np.ndarray:
        """OOB prediction per sample (class index, or mean trait); NaN where never out of bag."""
        seen = self.oob_n > 0
        out = np.full(self.n_samples, np.nan)
        if self.classes is None:
            out[seen] = self.oob_sum[seen, 0] / self.oob_n[seen]
        else:
            out[seen] = np.argmax(self.oob_sum[seen], axis=1)
        return out

    def oob_error(self, y: np.ndarray) -> float:
        """OOB misclassification rate (classes) or mean squared error (regression)."""
        pred = self.oob_prediction()
        seen = ~np.isnan(pred)
        target = self._targets(y)
        if self.classes is None:
            return float(np.mean((pred[seen] - target[seen]) ** 2))
        return float(np.mean(pred[seen] != target[seen]))

    def _targets(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if self.classes is None:
            return y
        return np.searchsorted(self.classes, y).astype(np.float64)

    # -- prediction -------------------------------------------------------------------------
    def predict_sum(self, X: np.ndarray | Features) -> np.ndarray:
        """Summed leaf values over trees for samples ``X`` (:class:`Features`, or a features ×
        samples codes matrix)."""
        if not isinstance(X, Features):
            X = np.ascontiguousarray(X, dtype=np.uint8)
            if X.ndim != 2 or X.shape[0] != self.n_features:
                raise InputError(
                    f"the forest has {self.n_features} features, the data {X.shape[0]}"
                )
            X = Features.from_codes(X, self.levels)
        if X.n_features != self.n_features:
            raise InputError(f"the forest has {self.n_features} features, the data {X.n_features}")
        n = X.n_samples
        width = 1 if self.classes is None else len(self.classes)
        out = np.zeros((n, width))
        rows = np.arange(n)
        for t, tree in enumerate(self.trees):
            state = np.array(
                [(tree_seed_of(self.params.seed, t) + _PREDICT_SALT) & K.MASK64], dtype=np.uint64
            )
            perm = K.shadow_permutation(state, n)
            K.predict_tree(
                X.packed,
                X.other,
                X.n_geno,
                self.n_features,
                tree["feature"],
                tree["threshold"],
                tree["left"],
                tree["right"],
                tree["value"],
                perm,
                rows,
                out,
            )
        return out

    def predict(self, X: np.ndarray | Features) -> tuple[np.ndarray, np.ndarray]:
        """Predicted trait per sample, and the class probabilities (or the mean) per sample."""
        mean = self.predict_sum(X) / len(self.trees)
        if self.classes is None:
            return mean[:, 0], mean
        return self.classes[np.argmax(mean, axis=1)], mean

    # -- storage ----------------------------------------------------------------------------
    def save(self, path: Path | str, meta: dict[str, Any] | None = None) -> None:
        """Write the forest as one compressed ``.npz`` (node arrays concatenated) with its
        metadata (parameters, provenance, feature table) as JSON inside."""
        meta = {**self.meta, **(meta or {})}
        offsets = np.cumsum([0] + [len(t["feature"]) for t in self.trees])
        cat = {k: np.concatenate([t[k] for t in self.trees]) for k in self.trees[0]}
        header = {
            "format": FOREST_FORMAT[0],
            "format_version": FOREST_FORMAT[1],
            "params": self.params.__dict__,
            "n_features": self.n_features,
            "n_samples": self.n_samples,
            "classes": None if self.classes is None else self.classes.tolist(),
            "meta": meta,
        }
        with open(path, "wb") as fh:
            np.savez_compressed(
                fh,
                header=np.array(json.dumps(header)),
                offsets=offsets,
                levels=self.levels,
                gini=self.gini,
                shadow=self.shadow,
                splits=self.splits,
                oob_sum=self.oob_sum,
                oob_n=self.oob_n,
                **cat,
            )

    @classmethod
    def load(cls, path: Path | str) -> Forest:
        """Read a forest written by :meth:`save`."""
        try:
            z = np.load(path, allow_pickle=False)
            header = json.loads(str(z["header"]))
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path} is not a saved sandgrain forest ({exc})") from None
        if header.get("format") != FOREST_FORMAT[0]:
            raise InputError(f"{path} is not a saved sandgrain forest")
        if header.get("format_version") != FOREST_FORMAT[1]:
            raise InputError(
                f"{path}: forest format version {header.get('format_version')} "
                f"is not supported (this sandgrain reads {FOREST_FORMAT[1]})"
            )
        off = z["offsets"]
        keys = ("feature", "threshold", "left", "right", "value")
        trees = [{k: z[k][off[t] : off[t + 1]] for k in keys} for t in range(len(off) - 1)]
        classes = header["classes"]
        return cls(
            params=ForestParams(**header["params"]),
            n_features=header["n_features"],
            levels=z["levels"],
            classes=None if classes is None else np.array(classes),
            trees=trees,
            gini=z["gini"],
            shadow=z["shadow"],
            splits=z["splits"],
            oob_sum=z["oob_sum"],
            oob_n=z["oob_n"],
            n_samples=header["n_samples"],
            meta=header["meta"],
        )

    def importance_columns(self, fdr: float | None = None) -> dict[str, np.ndarray]:
        """``importance``, ``air``, ``split_count``, ``p_value``, ``q_value``, ``rank`` (1 = the
        highest AIR, or Gini importance without shadows; ties keep feature order) and, with
        ``fdr``, ``significant`` (q-value at most ``fdr``)."""
        air = self.air
        p = self.pvalues() if self.params.air else np.full(self.n_features, np.nan)
        q = bh_qvalues(p)
        key = air if self.params.air else self.importance
        order = np.argsort(-key, kind="stable")
        rank = np.empty(self.n_features, dtype=np.int64)
        rank[order] = np.arange(1, self.n_features + 1)
        cols = {
            "importance": self.importance,
            "air": air,
            "split_count": self.splits,
            "p_value": p,
            "q_value": q,
            "rank": rank,
        }
        if fdr is not None:
            cols["significant"] = q <= fdr
        return cols


def tree_seed_of(seed: int, tree: int) -> int:
    """The seed of tree ``tree`` (see :func:`.forest_kernels.tree_seed`)."""
    return K.tree_seed(seed, tree)


# -- growing ----------------------------------------------------------------------------------
#: Files of a training bundle handed to worker processes (one ``.npy`` each, memory-mapped).
_BUNDLE_FILES = ("packed", "other", "levels", "cls", "y")


@lru_cache(maxsize=2)
def _bundle(path: str) -> dict[str, np.ndarray]:
    """The training data a batch task grows on, memory-mapped once per worker process (workers
    on one machine share the pages)."""
    return {k: np.load(Path(path) / f"{k}.npy", mmap_mode="r") for k in _BUNDLE_FILES}


def _grow(
    data: dict[str, np.ndarray],
    first: int,
    count: int,
    seed: int,
    mtry: int,
    min_leaf: int,
    max_depth: int,
    air: bool,
    n_classes: int,
) -> dict[str, Any]:
    """Grow trees ``first .. first+count-1`` and sum what they measured, in tree order."""
    G, C, levels, cls, yv = (data[k] for k in _BUNDLE_FILES)
    n_feat, n = levels.shape[0], cls.shape[0]
    n_geno = G.shape[0]
    width = n_classes if n_classes > 0 else 1
    gini = np.zeros(n_feat)
    shadow = np.zeros(n_feat)
    splits = np.zeros(n_feat, dtype=np.int64)
    oob_sum = np.zeros((n, width))
    oob_n = np.zeros(n, dtype=np.int64)
    trees = []
    for t in range(first, first + count):
        feat, thr, left, right, value, _, g, s, sp, inbag, perm = K.grow_tree(
            G,
            C,
            n_geno,
            levels,
            cls,
            yv,
            n_classes,
            np.uint64(K.tree_seed(seed, t)),
            mtry,
            min_leaf,
            max_depth,
            air,
        )
        trees.append(
            {"feature": feat, "threshold": thr, "left": left, "right": right, "value": value}
        )
        gini += g
        shadow += s
        splits += sp
        rows = np.flatnonzero(inbag == 0)
        K.predict_tree(G, C, n_geno, n_feat, feat, thr, left, right, value, perm, rows, oob_sum)
        oob_n[rows] += 1
    return {
        "trees": trees,
        "gini": gini,
        "shadow": shadow,
        "splits": splits,
        "oob_sum": oob_sum,
        "oob_n": oob_n,
    }


def grow_batch(
    bundle: str,
    first: int,
    count: int,
    seed: int,
    mtry: int,
    min_leaf: int,
    max_depth: int,
    air: bool,
    n_classes: int,
) -> dict[str, Any]:
    """Fan-out task: grow trees ``first .. first+count-1`` on the training bundle (a folder of
    ``.npy`` files) at ``bundle``.

    Returns the trees' node arrays, their summed Gini, shadow and split counts, and their summed
    OOB predictions (each tree predicts the samples it left out, with its own shadow
    permutation).
    """
    return _grow(_bundle(bundle), first, count, seed, mtry, min_leaf, max_depth, air, n_classes)


def _threads_for(executor: Any) -> int | None:
    """Threads to grow on in this process for a serial or local executor; None for the others
    (Dask, Lithops), which get the plan of batch tasks."""
    from ..fanout.executors import LocalExecutor, SerialExecutor, open_executor

    if isinstance(executor, SerialExecutor):
        return 1
    if isinstance(executor, LocalExecutor):
        return executor.workers
    if isinstance(executor, str):
        text = executor.strip()
        if text == "serial":
            return 1
        if text == "local" or text.startswith("local:"):
            return open_executor(text).workers  # nothing starts before a first submit
    return None


def _grow_in_process(data, batches, threads, kwargs, progress) -> list[dict[str, Any]]:
    """Grow the batches on ``threads`` threads of this process (the kernels release the GIL):
    no worker start-up and one copy of the matrix. Results in batch order."""
    import concurrent.futures as cf

    total_work = sum(c for _, c in batches)
    results: list[Any] = [None] * len(batches)
    done = done_work = 0

    def report() -> None:
        if progress is not None:
            try:
                progress(done, len(batches), done_work, total_work)
            except TypeError:
                progress(done, len(batches))

    report()
    with cf.ThreadPoolExecutor(max_workers=threads) as pool:
        futures = {
            pool.submit(_grow, data, first, count, **kwargs): (k, count)
            for k, (first, count) in enumerate(batches)
        }
        try:
            for fut in cf.as_completed(futures):
                k, count = futures[fut]
                results[k] = fut.result()
                done += 1
                done_work += count
                report()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return results


def fit_forest(
    X: np.ndarray | Features,
    levels: np.ndarray | None,
    y: np.ndarray,
    params: ForestParams,
    *,
    classification: bool,
    executor: Any = "serial",
    retries: int = 2,
    progress: Any = None,
    in_process: bool | None = None,
) -> Forest:
    """Grow a forest on features ``X`` (features × samples, uint8 codes below ``levels``).

    Parameters
    ----------
    X : Features, or array (features, samples) of uint8
        Feature codes, variant-major (genotypes from :func:`genotype_codes`, then covariates
        from :func:`encode_covariates`); :func:`forest_features` builds them packed.
    levels : array of int, or None
        Number of codes of each feature (3 for genotypes); None with :class:`Features`.
    y : array of float
        The trait per sample (no missing values).
    params : ForestParams
    classification : bool
        Classes (Gini) or a quantitative trait (variance).
    executor : str or Executor
        Where the batches of trees run (``serial``, ``local:N``, ``dask-local:N`` …); the forest
        is the same on each. ``serial`` and ``local:N`` grow on 1 or N threads of this process;
        the others get one fan-out task per batch, which reads the matrix from a bundle of
        memory-mapped files.
    in_process : bool, optional
        Force threads (True) or the plan of tasks (False) whatever the executor.

    Returns
    -------
    Forest
    """
    from ..fanout import Task, run_plan

    feats = as_features(X, levels)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or feats.n_samples != y.shape[0]:
        raise InputError(f"features have {feats.n_samples} samples but the trait has {y.size}")
    if feats.n_samples < 2:
        raise InputError("a forest needs 2 samples or more")
    if np.isnan(y).any():
        raise InputError("the trait has missing values; drop those samples first")
    if classification:
        classes = np.unique(y)
        if classes.size < 2:
            raise InputError("the trait has a single class: nothing to classify")
        cls = np.searchsorted(classes, y).astype(np.int64)
        n_classes = int(classes.size)
    else:
        if y.min() == y.max():
            raise InputError(f"the trait has one value only ({y[0]:g}): nothing to learn")
        classes, cls, n_classes = None, np.zeros(len(y), dtype=np.int64), 0
    data = {
        "packed": np.ascontiguousarray(feats.packed),
        "other": np.ascontiguousarray(feats.other),
        "levels": np.asarray(feats.levels, dtype=np.int64),
        "cls": cls,
        "y": y,
    }
    kwargs = {
        "seed": params.seed,
        "mtry": params.mtry,
        "min_leaf": params.min_leaf,
        "max_depth": params.max_depth,
        "air": params.air,
        "n_classes": n_classes,
    }
    batches = [
        (first, min(params.batch, params.trees - first))
        for first in range(0, params.trees, params.batch)
    ]
    threads = _threads_for(executor)
    if in_process is True and threads is None:
        threads = 1
    if in_process is not False and threads is not None:
        results = _grow_in_process(data, batches, threads, kwargs, progress)
    else:
        with tempfile.TemporaryDirectory(prefix="sandgrain-forest-") as tmp:
            for k, arr in data.items():
                np.save(Path(tmp) / f"{k}.npy", arr)
            tasks = [
                Task(
                    "sandgrain.association.forest:grow_batch",
                    {"bundle": tmp, "first": first, "count": count, **kwargs},
                    key=f"trees {first}-{first + count - 1}",
                    weight=count,
                )
                for first, count in batches
            ]
            results = run_plan(tasks, executor, retries=retries, progress=progress)
        _bundle.cache_clear()
    n_feat, n = feats.n_features, feats.n_samples
    width = n_classes if n_classes > 0 else 1
    forest = Forest(
        params=params,
        n_features=n_feat,
        levels=data["levels"],
        classes=classes,
        trees=[],
        gini=np.zeros(n_feat),
        shadow=np.zeros(n_feat),
        splits=np.zeros(n_feat, dtype=np.int64),
        oob_sum=np.zeros((n, width)),
        oob_n=np.zeros(n, dtype=np.int64),
        n_samples=n,
    )
    for r in results:  # batch order: the same sums on every executor
        forest.trees.extend(r["trees"])
        forest.gini += r["gini"]
        forest.shadow += r["shadow"]
        forest.splits += r["splits"]
        forest.oob_sum += r["oob_sum"]
        forest.oob_n += r["oob_n"]
    return forest


# -- from genotypes and traits ----------------------------------------------------------------
def forest_features(
    genotypes: Any,
    kept: np.ndarray,
    covariates: np.ndarray | None = None,
    edges: list[np.ndarray] | None = None,
    block: int = 4096,
) -> tuple[Features, list[np.ndarray]]:
    """Features of a forest, packed: the genotypes of samples ``kept`` (missing imputed by
    :func:`genotype_codes`), then the covariates' codes; returns ``(features, edges)``.

    ``genotypes`` is a :class:`~sandgrain.association.genotypes.GenotypeMatrix`, read a block of
    variants at a time, so only the packed result (2 bits a call) is held.
    """
    kept = np.asarray(kept, dtype=np.int64)
    packed = np.empty((genotypes.n_variants, (kept.size + 3) // 4), dtype=np.uint8)
    for start in range(0, genotypes.n_variants, block):
        rows = genotypes.packed(start, start + block)
        K.impute_pack(rows, kept, packed[start : start + len(rows)])
    levels = [np.full(genotypes.n_variants, GENOTYPE_LEVELS, dtype=np.int64)]
    other = np.zeros((0, kept.size), dtype=np.uint8)
    edges = edges or []
    if covariates is not None and covariates.shape[1]:
        other, edges = encode_covariates(covariates, edges or None)
        levels.append(np.array([len(e) for e in edges], dtype=np.int64))
    return Features(packed, other, np.concatenate(levels), int(kept.size)), edges


def feature_matrix(
    genotypes: Any,
    kept: np.ndarray,
    covariates: np.ndarray | None = None,
    edges: list[np.ndarray] | None = None,
    block: int = 4096,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """:func:`forest_features` as one features × samples ``uint8`` matrix: ``(X, levels,
    edges)`` (small data; a forest grows on the packed form)."""
    feats, edges = forest_features(genotypes, kept, covariates, edges, block)
    return feats.dense(), feats.levels, edges


def default_mtry(n_candidates: int, classification: bool, fraction: float | None) -> int:
    """Features tried per node: ``fraction`` of the candidates (rounded up), by default
    ``sqrt(candidates)`` for classes and a third of them for a quantitative trait (Breiman
    2001; Liaw & Wiener 2002)."""
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise InputError(f"--mtry-fraction must be in (0, 1], not {fraction}")
        return max(1, int(np.ceil(fraction * n_candidates)))
    if classification:
        return max(1, int(np.floor(np.sqrt(n_candidates))))
    return max(1, n_candidates // 3)
