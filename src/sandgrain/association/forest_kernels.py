"""Numba kernels of the wide random forest: the split search, tree growing and tree traversal.

The readable layer is :mod:`sandgrain.association.forest`; this module holds only the hot loops
(sgkit's habit: kernels apart from the API). Features are small ordinal codes held variant-major
in two matrices: the first ``n_geno`` features (genotypes, codes 0/1/2) packed four samples a
byte in ``G[feature, sample // 4]`` (bits ``2 * (sample % 4)``, the layout of
:func:`sandgrain.association.genotypes.pack`), so 10,000 samples × 1,000,000 variants take
2.5 GB; the others (covariates, their quantile-bin codes) one byte a sample in
``C[feature - n_geno, sample]``. A split on feature ``f`` at threshold ``t`` sends a sample
left when its code is ``<= t``; so the exact best split of a node over ``mtry`` features needs
one pass over the node's samples per feature to count classes (or sum the trait) per code, then
a scan of the at most ``levels - 1`` thresholds: ``O(n_node * mtry)`` per node (for 0/1/2
genotypes only two thresholds exist; with two classes the counts are integer sums the compiler
vectorises). Every kernel is compiled ``nogil``, so trees grow on threads side by side.

Randomness comes from SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number
generators", OOPSLA), written out here so a plain Python twin (``tests/association``) draws the
same numbers: the bootstrap, the shadow permutation and the features tried at each node all come
from one stream per tree, seeded from the forest's seed and the tree's index, so a forest is the
same whatever executor grows it and however its trees are batched.

Trees follow Breiman (2001, "Random forests", Machine Learning 45:5): a bootstrap sample per tree,
``mtry`` features drawn without replacement at each node, Gini impurity for classes and variance
for a quantitative trait, grown until nodes are pure, too small (``min_leaf`` samples a child) or
``max_depth`` deep. With ``air`` each tree also sees a shadow copy of every feature whose samples
are permuted (Nembrini, König & Wright 2018, "The revival of the Gini importance?",
Bioinformatics 34:3711): shadow ``f + F`` of sample ``i`` is feature ``f`` of sample ``perm[i]``,
so no copy of the matrix is made.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = [
    "MASK64",
    "best_split",
    "bootstrap_indices",
    "grow_tree",
    "impute_pack",
    "predict_tree",
    "shadow_permutation",
    "splitmix64",
    "tree_seed",
]

MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)

_jit = numba.njit(cache=True, nogil=True)


@_jit
def splitmix64(state):
    """Advance a SplitMix64 state (a 1-element uint64 array) and return the next 64-bit output."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@_jit
def randbelow(state, n):
    """A random integer in ``[0, n)``: the next SplitMix64 output modulo ``n`` (the bias,
    below ``n / 2**64``, is immaterial here)."""
    return np.int64(splitmix64(state) % np.uint64(n))


def tree_seed(seed: int, tree: int) -> int:
    """The seed of tree ``tree`` of a forest seeded ``seed``: two SplitMix64 steps from the pair,
    so trees are independent of how they are batched."""
    state = np.array([(seed * 0x100000001B3 + tree) & MASK64], dtype=np.uint64)
    splitmix64(state)
    return int(splitmix64(state))


@_jit
def bootstrap_indices(state, n):
    """Breiman's bootstrap: ``n`` draws with replacement, returned as sample indices in
    ascending order (each repeated as often as drawn) and the in-bag count per sample."""
    counts = np.zeros(n, dtype=np.int32)
    for _ in range(n):
        counts[randbelow(state, n)] += 1
    idx = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        for _ in range(counts[i]):
            idx[k] = i
            k += 1
    return idx, counts


@_jit
def shadow_permutation(state, n):
    """A uniform random permutation of ``range(n)`` (Fisher–Yates, from the end)."""
    perm = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = randbelow(state, i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


@_jit
def impute_pack(rows, kept, out):
    """Genotype codes of samples ``kept`` for the packed dosage ``rows`` (3 = missing), packed
    again into ``out``: a missing call takes the variant's mean dosage over its called kept
    samples rounded half to even (as ``np.rint``), 0 for a variant never called — the rule of
    :func:`sandgrain.association.forest.genotype_codes`, one pass a row."""
    m = kept.shape[0]
    codes = np.empty(m, dtype=np.uint8)
    for r in range(rows.shape[0]):
        total = 0
        called = 0
        for q in range(m):
            i = kept[q]
            c = (rows[r, i >> 2] >> ((i & 3) << 1)) & 3
            codes[q] = c
            if c != 3:
                total += c
                called += 1
        fill = np.uint8(np.rint(total / called)) if called > 0 else np.uint8(0)
        out[r, :] = 0
        for q in range(m):
            c = codes[q]
            if c == 3:
                c = fill
            out[r, q >> 2] |= c << ((q & 3) << 1)


@_jit
def _code(G, C, n_geno, n_real, perm, f, i):
    """The code of feature ``f`` (a shadow when ``f >= n_real``) for sample ``i``."""
    if f >= n_real:
        f -= n_real
        i = perm[i]
    if f < n_geno:
        return (G[f, i >> 2] >> ((i & 3) << 1)) & 3
    return C[f - n_geno, i]


@_jit
def _fill_codes(G, C, n_geno, g, index, lo, hi, out):
    """``out[p - lo]`` = the code of real feature ``g`` for sample ``index[p]``, ``lo <= p < hi``
    (the feature's kind looked up once, not per sample)."""
    if g < n_geno:
        for p in range(lo, hi):
            i = index[p]
            out[p - lo] = (G[g, i >> 2] >> ((i & 3) << 1)) & 3
    else:
        h = g - n_geno
        for p in range(lo, hi):
            out[p - lo] = C[h, index[p]]


@_jit
def _node_codes(G, C, n_geno, n_real, f, idx, start, end, pidx, out):
    """Codes of feature ``f`` (a shadow when ``f >= n_real``) for the node ``idx[start:end]``;
    ``pidx`` holds the node's shadow samples ``perm[idx[p]]``."""
    if f >= n_real:
        _fill_codes(G, C, n_geno, f - n_real, pidx, 0, end - start, out)
    else:
        _fill_codes(G, C, n_geno, f, idx, start, end, out)


@_jit
def _scratch(n, max_levels, width):
    """Work arrays of a split search, allocated once per tree."""
    rows = max(max_levels, 4)
    return (
        np.zeros((rows, width), dtype=np.float64),  # hist
        np.zeros(rows, dtype=np.int64),  # hcount
        np.zeros(width, dtype=np.float64),  # total
        np.zeros(width, dtype=np.float64),  # left
        np.empty(n, dtype=np.int32),  # lab
        np.empty(n, dtype=np.float64),  # val
        np.empty(n, dtype=np.uint8),  # codes
        np.empty(n, dtype=np.int64),  # pidx
    )


@_jit
def best_split(
    G, C, n_geno, levels, n_real, perm, idx, start, end, cls, yv, n_classes, features, min_leaf
):
    """The best split of the node ``idx[start:end]`` over the candidate ``features``.

    Returns ``(feature, threshold, score)``: the split maximising ``score``, the weighted impurity
    decrease times the node size (Gini: ``sum_k nL_k²/nL + sum_k nR_k²/nR - sum_k n_k²/n``;
    variance: ``SL²/nL + SR²/nR - S²/n``), over thresholds leaving ``min_leaf`` samples or more
    on each side. The first best in the order of ``features`` and thresholds wins; ``(-1, -1,
    0.0)`` when no split decreases the impurity. ``n_classes == 0`` means regression on ``yv``.
    """
    max_levels = 1
    for f in features:
        lv = levels[f if f < n_real else f - n_real]
        if lv > max_levels:
            max_levels = lv
    width = n_classes if n_classes > 0 else 1
    scratch = _scratch(end - start, max_levels, width)
    return _split(
        G,
        C,
        n_geno,
        levels,
        n_real,
        perm,
        idx,
        start,
        end,
        cls,
        yv,
        n_classes,
        features,
        min_leaf,
        scratch,
    )


@_jit
def _split(
    G,
    C,
    n_geno,
    levels,
    n_real,
    perm,
    idx,
    start,
    end,
    cls,
    yv,
    n_classes,
    features,
    min_leaf,
    scratch,
):
    """:func:`best_split` on work arrays from :func:`_scratch` (sized for the node or more)."""
    hist, hcount, total, left, lab, val, codes, pidx = scratch
    n = end - start
    width = n_classes if n_classes > 0 else 1
    total[:] = 0.0
    # The node's labels (class or trait) and shadow samples in node order, read once for all
    # candidate features.
    for p in range(start, end):
        i = idx[p]
        pidx[p - start] = perm[i]
        if n_classes > 0:
            lab[p - start] = cls[i]
            total[cls[i]] += 1.0
        else:
            lab[p - start] = 0
            val[p - start] = yv[i]
            total[0] += yv[i]
    parent = 0.0
    for k in range(width):
        parent += total[k] * total[k]
    parent /= n
    best_f = -1
    best_t = -1
    best_score = 0.0
    for f in features:
        lv = levels[f if f < n_real else f - n_real]
        hist[:lv, :] = 0.0
        hcount[:lv] = 0
        _node_codes(G, C, n_geno, n_real, f, idx, start, end, pidx, codes)
        if lv <= 4 and n_classes == 2:
            # Genotype codes, two classes: per code, samples and samples of class 1 as int32
            # sums in registers, a loop the compiler vectorises (no histogram in memory).
            a0 = np.int32(0)
            a1 = np.int32(0)
            a2 = np.int32(0)
            b0 = np.int32(0)
            b1 = np.int32(0)
            b2 = np.int32(0)
            for q in range(n):
                c = np.int32(codes[q])
                k = lab[q]
                e0 = np.int32(c == 0)
                e1 = np.int32(c == 1)
                e2 = np.int32(c == 2)
                a0 += e0
                a1 += e1
                a2 += e2
                b0 += e0 * k
                b1 += e1 * k
                b2 += e2 * k
            hcount[0] = a0
            hcount[1] = a1
            hcount[2] = a2
            hcount[3] = n - a0 - a1 - a2
            hist[0, 0], hist[0, 1] = a0 - b0, b0
            hist[1, 0], hist[1, 1] = a1 - b1, b1
            hist[2, 0], hist[2, 1] = a2 - b2, b2
            b3 = total[1] - b0 - b1 - b2
            hist[3, 0], hist[3, 1] = hcount[3] - b3, b3
        elif n_classes > 0:
            for q in range(n):
                c = codes[q]
                hcount[c] += 1
                hist[c, lab[q]] += 1.0
        else:
            for q in range(n):
                c = codes[q]
                hcount[c] += 1
                hist[c, 0] += val[q]
        left[:] = 0.0
        nl = 0
        for t in range(lv - 1):
            nl += hcount[t]
            for k in range(width):
                left[k] += hist[t, k]
            nr = n - nl
            if hcount[t] == 0 or nl < min_leaf or nr < min_leaf:
                continue
            sl = 0.0
            sr = 0.0
            for k in range(width):
                sl += left[k] * left[k]
                r = total[k] - left[k]
                sr += r * r
            score = sl / nl + sr / nr - parent
            if score > best_score:
                best_score = score
                best_f = f
                best_t = t
    return best_f, best_t, best_score


@_jit
def grow_tree(G, C, n_geno, levels, cls, yv, n_classes, seed, mtry, min_leaf, max_depth, air):
    """Grow one tree from its seed on the features ``G`` (packed) and ``C`` (see above).

    Returns ``(feature, threshold, left, right, value, n_nodes, gini, shadow, splits, inbag,
    perm)``: node arrays (``feature == -1`` marks a leaf; ``value`` holds a leaf's class
    fractions or mean), the impurity decrease per real feature and per shadow (each the sum of
    ``best_split``'s score, i.e. already weighted by node size), split counts per real feature,
    the in-bag count per sample, and the shadow permutation. ``max_depth < 0`` means unlimited.
    """
    n_real = levels.shape[0]
    n = cls.shape[0]
    state = np.empty(1, dtype=np.uint64)
    state[0] = np.uint64(seed)
    idx, inbag = bootstrap_indices(state, n)
    if air:
        perm = shadow_permutation(state, n)
        n_cand = 2 * n_real
    else:
        perm = np.arange(n)
        n_cand = n_real
    m = min(mtry, n_cand)
    fperm = np.arange(n_cand)
    cap = 2 * n + 1
    width = n_classes if n_classes > 0 else 1
    feature = np.full(cap, -1, dtype=np.int32)
    threshold = np.full(cap, -1, dtype=np.int16)
    left_child = np.full(cap, -1, dtype=np.int32)
    right_child = np.full(cap, -1, dtype=np.int32)
    value = np.zeros((cap, width), dtype=np.float64)
    gini = np.zeros(n_real, dtype=np.float64)
    shadow = np.zeros(n_real, dtype=np.float64)
    splits = np.zeros(n_real, dtype=np.int32)
    buf = np.empty(n, dtype=np.int64)
    codes = np.empty(n, dtype=np.uint8)
    scratch = _scratch(n, levels.max() if n_real else 1, width)
    stack = np.empty((cap, 4), dtype=np.int64)  # node, start, end, depth
    stack[0, 0] = 0
    stack[0, 1] = 0
    stack[0, 2] = n
    stack[0, 3] = 0
    top = 1
    n_nodes = 1
    while top > 0:
        top -= 1
        node = stack[top, 0]
        start = stack[top, 1]
        end = stack[top, 2]
        depth = stack[top, 3]
        cnt = end - start
        # The node's value: class fractions, or the mean trait.
        pure = True
        for p in range(start, end):
            i = idx[p]
            if n_classes > 0:
                value[node, cls[i]] += 1.0
                if cls[i] != cls[idx[start]]:
                    pure = False
            else:
                value[node, 0] += yv[i]
                if yv[i] != yv[idx[start]]:
                    pure = False
        for k in range(width):
            value[node, k] /= cnt
        if pure or cnt < 2 * min_leaf or (max_depth >= 0 and depth >= max_depth):
            continue
        # mtry candidates without replacement: a partial Fisher–Yates shuffle of fperm.
        for k in range(m):
            j = k + randbelow(state, n_cand - k)
            fperm[k], fperm[j] = fperm[j], fperm[k]
        f, t, score = _split(
            G,
            C,
            n_geno,
            levels,
            n_real,
            perm,
            idx,
            start,
            end,
            cls,
            yv,
            n_classes,
            fperm[:m],
            min_leaf,
            scratch,
        )
        if f < 0:
            continue
        # Stable partition: left (code <= t) first, both sides in their previous order.
        _node_codes(G, C, n_geno, n_real, f, idx, start, end, scratch[7], codes)
        nl = 0
        for p in range(start, end):
            if codes[p - start] <= t:
                buf[nl] = idx[p]
                nl += 1
        r = nl
        for p in range(start, end):
            if codes[p - start] > t:
                buf[r] = idx[p]
                r += 1
        for p in range(cnt):
            idx[start + p] = buf[p]
        feature[node] = f
        threshold[node] = t
        left_child[node] = n_nodes
        right_child[node] = n_nodes + 1
        if f < n_real:
            gini[f] += score
            splits[f] += 1
        else:
            shadow[f - n_real] += score
        # Right pushed first so the left child is grown first (depth first).
        stack[top, 0] = n_nodes + 1
        stack[top, 1] = start + nl
        stack[top, 2] = end
        stack[top, 3] = depth + 1
        stack[top + 1, 0] = n_nodes
        stack[top + 1, 1] = start
        stack[top + 1, 2] = start + nl
        stack[top + 1, 3] = depth + 1
        top += 2
        n_nodes += 2
    return (
        feature[:n_nodes].copy(),
        threshold[:n_nodes].copy(),
        left_child[:n_nodes].copy(),
        right_child[:n_nodes].copy(),
        value[:n_nodes].copy(),
        n_nodes,
        gini,
        shadow,
        splits,
        inbag,
        perm,
    )


@_jit
def predict_tree(G, C, n_geno, n_real, feature, threshold, left, right, value, perm, rows, out):
    """Add the leaf value of each sample in ``rows`` to ``out[row]``.

    ``G`` and ``C`` hold the ``n_real`` real features; a split on shadow ``f + F`` reads the code
    of feature ``f`` for sample ``perm[i]``, the
    tree's shadow permutation of the predicted samples (a shadow split is a coin toss that does
    not depend on the sample's own genotype, as it was when the tree was grown).
    """
    for i in rows:
        node = 0
        while feature[node] >= 0:
            if _code(G, C, n_geno, n_real, perm, feature[node], i) <= threshold[node]:
                node = left[node]
            else:
                node = right[node]
        for k in range(value.shape[1]):
            out[i, k] += value[node, k]
