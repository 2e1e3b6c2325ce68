"""Published guide scores, each in its own module citing its paper.

* :mod:`.mit` -- MIT off-target site score and specificity (Hsu et al. 2013, doi:10.1038/nbt.2647)
* :mod:`.cfd` -- CFD off-target site score and aggregate (Doench et al. 2016,
  doi:10.1038/nbt.3437)
* :mod:`.ruleset1` -- Rule Set 1 on-target activity (Doench et al. 2014, doi:10.1038/nbt.3026)
* :mod:`.ruleset3` -- Rule Set 3 on-target activity through the ``rs3`` package (DeWeirdt et al.
  2022, doi:10.1038/s41467-022-32900-2)
* :mod:`.crisprscan` -- CRISPRscan on-target activity (Moreno-Mateos et al. 2015,
  doi:10.1038/nmeth.3543)
* :mod:`.outframe` -- microhomology and out-of-frame scores of a cut (Bae et al. 2014,
  doi:10.1038/nmeth.3015)

Vectorised variants take sequences as ``uint8`` codes A=0, C=1, G=2, T=3, N=4; the on-target
scores of Rule Set 3, CRISPRscan and out-of-frame take context strings.
"""

from sandgrain.guides.scores.cfd import (
    CFD_MISMATCH,
    CFD_PAM,
    cfd_site_score,
    cfd_site_scores,
    cfd_specificity,
)
from sandgrain.guides.scores.crisprscan import (
    CRISPRSCAN_FLANK_3,
    CRISPRSCAN_FLANK_5,
    CRISPRSCAN_WEIGHTS,
    crisprscan,
    crisprscan_scores,
)
from sandgrain.guides.scores.mit import (
    MIT_WEIGHTS,
    mit_site_score,
    mit_site_scores,
    mit_specificity,
)
from sandgrain.guides.scores.outframe import (
    OUT_OF_FRAME_FLANK,
    MicrohomologyPattern,
    microhomology_patterns,
    microhomology_score,
    out_of_frame,
    out_of_frame_scores,
)
from sandgrain.guides.scores.ruleset1 import RULESET1_WEIGHTS, RuleSet1Term, ruleset1
from sandgrain.guides.scores.ruleset3 import RS3_TRACRS, rs3_score, rs3_scores, rs3_version

__all__ = [
    "CFD_MISMATCH",
    "CFD_PAM",
    "CRISPRSCAN_FLANK_3",
    "CRISPRSCAN_FLANK_5",
    "CRISPRSCAN_WEIGHTS",
    "MIT_WEIGHTS",
    "OUT_OF_FRAME_FLANK",
    "RS3_TRACRS",
    "RULESET1_WEIGHTS",
    "MicrohomologyPattern",
    "RuleSet1Term",
    "cfd_site_score",
    "cfd_site_scores",
    "cfd_specificity",
    "crisprscan",
    "crisprscan_scores",
    "microhomology_patterns",
    "microhomology_score",
    "mit_site_score",
    "mit_site_scores",
    "mit_specificity",
    "out_of_frame",
    "out_of_frame_scores",
    "rs3_score",
    "rs3_scores",
    "rs3_version",
    "ruleset1",
]
