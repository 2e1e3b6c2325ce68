"""Published guide scores, each in its own module citing its paper.

* :mod:`.mit` -- MIT off-target site score and specificity (Hsu et al. 2013, doi:10.1038/nbt.2647)
* :mod:`.cfd` -- CFD off-target site score and aggregate (Doench et al. 2016,
  doi:10.1038/nbt.3437)
* :mod:`.ruleset1` -- Rule Set 1 on-target activity (Doench et al. 2014, doi:10.1038/nbt.3026)

Vectorised variants take sequences as ``uint8`` codes A=0, C=1, G=2, T=3, N=4.
"""

from sandgrain.guides.scores.cfd import (
    CFD_MISMATCH,
    CFD_PAM,
    cfd_site_score,
    cfd_site_scores,
    cfd_specificity,
)
from sandgrain.guides.scores.mit import (
    MIT_WEIGHTS,
    mit_site_score,
    mit_site_scores,
    mit_specificity,
)
from sandgrain.guides.scores.ruleset1 import RULESET1_WEIGHTS, RuleSet1Term, ruleset1

__all__ = [
    "CFD_MISMATCH",
    "CFD_PAM",
    "MIT_WEIGHTS",
    "RULESET1_WEIGHTS",
    "RuleSet1Term",
    "cfd_site_score",
    "cfd_site_scores",
    "cfd_specificity",
    "mit_site_score",
    "mit_site_scores",
    "mit_specificity",
    "ruleset1",
]
