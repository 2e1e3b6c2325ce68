"""Too few samples for an association analysis to mean anything: one warning, before the work.

The rule is the *limiting sample size* m of Harrell (Regression Modeling Strategies, 2nd ed.
2015, §4.4): for a binary trait the smaller of the number of cases and of controls, for a
quantitative trait the number of samples. A model may estimate about m/10 variables; with fewer
than :data:`EVENTS_PER_VARIABLE` = 10 events per variable a logistic regression's coefficients
are biased and its Wald tests have the wrong size (Peduzzi et al. 1996, J Clin Epidemiol
49:1373-1379; the origin of the "10 events per variable" rule), and a linear regression's
estimates do not replicate (Harrell 2015, §4.4). The variables counted are those each test
estimates besides the intercept: the variant's dosage and each covariate.

The count tests (Fisher's, the trend test) and the forest get the same rule with the same count
of variables: Fisher's test stays exact on any table, but with fewer than 10 cases or controls
no variant can come near a genome-wide threshold, and a forest's importances and out-of-bag
error on so few samples are noise.

Nothing is refused here: a test that cannot be computed at all (one trait value, fewer samples
than parameters) is refused where it is prepared (:func:`.tests_classical.prepare`,
:func:`.forest.fit_forest`).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["EVENTS_PER_VARIABLE", "sample_size_warning", "warn_small_sample"]

#: Fewest events (limiting sample size m) per estimated variable before a warning.
EVENTS_PER_VARIABLE = 10

logger = logging.getLogger(__name__)


def sample_size_warning(y: np.ndarray, binary: bool, n_variables: int, what: str) -> str | None:
    """The warning for ``what`` (``"the logistic test"``) on trait ``y`` estimating
    ``n_variables`` variables (the variant and each covariate), or ``None`` when the samples are
    enough (module doc). ``binary``: ``y`` holds classes (0/1 for cases and controls), and the
    smallest class is the limiting sample size."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    k = max(int(n_variables), 1)
    need = EVENTS_PER_VARIABLE * k
    variables = "the variant" if k == 1 else f"the variant and {k - 1} covariates"
    if binary:
        values, counts = np.unique(y, return_counts=True)
        m = int(counts.min()) if len(counts) else 0
        if m >= need:
            return None
        if set(values.tolist()) == {0.0, 1.0}:
            cases, controls = int(counts[1]), int(counts[0])
            counted = (
                f"{cases} case{'s' * (cases != 1)} and {controls} control{'s' * (controls != 1)}"
            )
        else:
            counted = f"{n} samples (the smallest class {m})"
        rule = "Peduzzi et al. 1996"
    else:
        m = n
        if m >= need:
            return None
        counted = f"{n} samples"
        rule = "Harrell 2015, limiting sample size"
    return (
        f"{what} on {counted} means little: it needs at least {need} "
        f"{'of the smaller class' if binary else 'samples'} ({EVENTS_PER_VARIABLE} per variable: "
        f"{variables}; {rule})"
    )


def warn_small_sample(y: np.ndarray, binary: bool, n_variables: int, what: str) -> str | None:
    """:func:`sample_size_warning`, logged as a warning (the CLI prints it as one line on
    stderr); returns it."""
    message = sample_size_warning(y, binary, n_variables, what)
    if message is not None:
        logger.warning(message)
    return message
