"""Rule Set 3 on-target activity score, sequence model (DeWeirdt et al. 2022).

Rule Set 3 is a gradient-boosted (LightGBM) model of SpCas9 knockout activity trained on several
tiled screens. Its sequence model takes the same 30-mer as Rule Set 1 -- 4 nt 5' context + 20 nt
protospacer + ``NGG`` PAM + 3 nt 3' context, on the guide's strand -- and the tracrRNA the guide
will be expressed with, one of :data:`RS3_TRACRS`:

* ``"Hsu2013"`` -- the original tracrRNA (the rs3 README's default, and ours);
* ``"Chen2013"`` -- the modified tracrRNA of Chen et al. 2013 (A-U flip and extended hairpin).

Scores are **unbounded z-score-like values** (around -1 poor, 0 average, above 1 good), not 0-1.

The trained model and its featurisation are the Doench lab's, used through the ``rs3`` package
(Apache-2.0) as a dependency; nothing of it is copied here. rs3 0.0.18 pins scikit-learn <= 1.0.2,
lightgbm <= 3.3.5 and numpy <= 1.26.4, which do not install on Python 3.11 next to numpy 2, so it
is installed with ``pip install --no-deps rs3`` next to current LightGBM, pandas, joblib and
sglearn (see the Makefile). ``rs3.seq.predict_seq`` then fails inside the pickled scikit-learn
wrapper; the LightGBM booster inside it does not, and predicting with it on the features of
``rs3.seq.featurize_context`` reproduces the values of the rs3 README exactly (see the tests).

Candidates without the full 30-mer (chromosome ends) or with a base other than A, C, G, T get
``NaN``. The PAM bases are not checked: the model was fitted on ``NGG`` sites only.

References
----------
.. [1] DeWeirdt PC, McGee AV, Zheng F, et al. "Accounting for small variations in the tracrRNA
   sequence improves sgRNA activity predictions for CRISPR screening." Nature Communications
   13:5255, 2022. doi:10.1038/s41467-022-32900-2
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from importlib import metadata, resources
from typing import Any

import numpy as np

from sandgrain.errors import InputError

__all__ = ["RS3_CONTEXT_LENGTH", "RS3_TRACRS", "rs3_score", "rs3_scores", "rs3_version"]

#: The tracrRNAs the sequence model knows (rs3's ``ref_tracrs``).
RS3_TRACRS = ("Hsu2013", "Chen2013")
#: Length of the context the model scores: 4 + 20 + 3 (PAM) + 3.
RS3_CONTEXT_LENGTH = 30

_BASES = frozenset("ACGT")
#: Contexts featurised at once: bounds the feature frame (632 columns) to a few tens of MB.
_BATCH = 4096


def rs3_version() -> str | None:
    """Version of the installed ``rs3`` package (for provenance), or ``None`` if it is absent."""
    try:
        return metadata.version("rs3")
    except metadata.PackageNotFoundError:
        return None


def _quiet(_iterable: Any, *_args: Any, **_kwargs: Any) -> Any:
    """Stand-in for sglearn's ``tqdm``: iterate without drawing a progress bar on stderr."""
    return _iterable


@functools.cache
def _model() -> tuple[Any, Any]:
    """The LightGBM booster of Rule Set 3 and rs3's featuriser, loaded once per process."""
    try:
        import joblib
        import rs3.seq
        import sglearn.featurization
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "Rule Set 3 needs the rs3 package: pip install --no-deps 'rs3>=0.0.18' "
            "(its own pins cannot install on Python 3.11; see the Makefile)"
        ) from exc
    # sglearn wraps every featurisation in a tqdm progress bar on stderr; replacing the name in
    # its module silences it without touching sys.stderr, which other threads may be using.
    sglearn.featurization.tqdm = _quiet
    path = resources.files("rs3").joinpath("RuleSet3.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster = joblib.load(str(path)).booster_
    return booster, rs3.seq.featurize_context


def _featurize(featurize: Any, booster: Any, contexts: list[str], tracr: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = featurize(contexts, sequence_tracr=tracr)
    # LightGBM stores the training column names with spaces replaced by underscores; a
    # different rs3/sglearn featurisation must fail loudly, never be scored in the wrong order.
    names = [str(c).replace(" ", "_") for c in frame.columns]
    if names != booster.feature_name():
        raise RuntimeError(
            f"rs3 {rs3_version()} featurisation does not match the Rule Set 3 model's features"
        )
    return frame.to_numpy(dtype=np.float64)


def _clean(context: str | None) -> str | None:
    if not isinstance(context, str) or len(context) != RS3_CONTEXT_LENGTH:
        return None
    seq = context.upper()
    return seq if set(seq) <= _BASES else None


def rs3_scores(contexts30: Sequence[str | None], tracr: str = "Hsu2013") -> np.ndarray:
    """Rule Set 3 (sequence model) scores of many candidates, ``NaN`` where one cannot be scored.

    Parameters
    ----------
    contexts30 : sequence of str or None
        Per candidate, 4 nt 5' context + 20 nt protospacer + PAM (``NGG``) + 3 nt 3' context on
        the guide's strand (case ignored), or ``None`` where the candidate has no full context.
    tracr : str
        The tracrRNA the guides will be expressed with, one of :data:`RS3_TRACRS`.

    Returns
    -------
    numpy.ndarray
        ``float64`` scores in input order; ``NaN`` for ``None``, a context not 30 nt long or one
        with a base other than A, C, G, T.

    Raises
    ------
    InputError
        ``tracr`` is not one of :data:`RS3_TRACRS`.

    References
    ----------
    DeWeirdt et al. 2022, Nature Communications 13:5255, doi:10.1038/s41467-022-32900-2.
    """
    if tracr not in RS3_TRACRS:
        raise InputError(f"unknown tracrRNA {tracr!r} for Rule Set 3; use one of {RS3_TRACRS}")
    if isinstance(contexts30, str):
        raise InputError("rs3_scores takes a sequence of 30-mers, not one string")
    out = np.full(len(contexts30), np.nan, dtype=np.float64)
    index = []
    valid = []
    for i, context in enumerate(contexts30):
        seq = _clean(context)
        if seq is not None:
            index.append(i)
            valid.append(seq)
    if not valid:
        return out
    booster, featurize = _model()
    for start in range(0, len(valid), _BATCH):
        batch = valid[start : start + _BATCH]
        features = _featurize(featurize, booster, batch, tracr)
        out[index[start : start + _BATCH]] = booster.predict(features)
    return out


def rs3_score(context30: str | None, tracr: str = "Hsu2013") -> float | None:
    """Rule Set 3 score of one candidate, or ``None`` when it cannot be scored.

    The scalar form of :func:`rs3_scores` (one model call per candidate: score many at once
    with :func:`rs3_scores`).
    """
    value = float(rs3_scores([context30], tracr)[0])
    return None if np.isnan(value) else value
