"""On-target efficiency of candidate guides: every published score that applies, and the one
the ranking uses.

For SpCas9-like nucleases (20-nt spacer, 3-nt PAM on the 3' side; :mod:`.nucleases`):

``rs3``
    Rule Set 3 sequence score (DeWeirdt et al. 2022, Nat Commun 13:5255) on the 30-mer, with
    the tracrRNA chosen (``Hsu2013`` default, or ``Chen2013``); from the ``rs3`` package.
    Roughly a z-score of activity: 0 is an average guide, above 1 a very active one.
``ruleset1``
    Rule Set 1 (Doench et al. 2014), 0–1, on the same 30-mer.
``crisprscan``
    CRISPRscan (Moreno-Mateos et al. 2015), on a 35-mer; trained on zebrafish embryos injected
    with in vitro-transcribed guides, so it is the score to use for such experiments.
``out_of_frame``
    Out-of-frame score (Bae et al. 2014), 0–100: the share of microhomology-mediated deletions
    at the cut that shift the frame.

``efficiency`` is the score the ranking uses: Rule Set 3, the Doench lab's current model (CRISPick
uses it), for guides with a 30-mer; ``None`` where no score applies (other nucleases, a site
too near a sequence end).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence

from ..fanout import Task, run_plan
from ..storage import Store
from .candidates import CONTEXT_FLANK_3, CONTEXT_FLANK_5, Candidate
from .context import ContextReader
from .nucleases import Nuclease, is_spcas9_like
from .scores import ruleset1

__all__ = ["EFFICIENCY_MODEL", "efficiency_fields"]

#: The model behind ``efficiency`` for SpCas9-like guides.
EFFICIENCY_MODEL = "rs3"


#: Candidates scored by one fan-out task: Rule Set 3 costs about 1 ms a guide (featurising and
#: a 2,279-tree LightGBM model), so a large target (a 1 Mb region has ~80,000 candidates) is
#: scored in parallel; smaller ones in process, without a pool to start.
CHUNK = 2048


def _value(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def score_windows(c30: list, c35: list, windows: list, tracr: str) -> dict:
    """The on-target scores of candidates given their windows (``None`` where a window runs off
    the sequence): ``{"rs3", "ruleset1", "crisprscan", "out_of_frame"}``, lists of floats or
    ``None``."""
    from .scores.crisprscan import crisprscan_scores
    from .scores.outframe import OUT_OF_FRAME_FLANK, out_of_frame
    from .scores.ruleset3 import rs3_scores

    rs3 = rs3_scores(c30, tracr=tracr)
    scan = crisprscan_scores(c35)
    return {
        "rs3": [_value(float(x)) for x in rs3],
        "ruleset1": [ruleset1(c) if c else None for c in c30],
        "crisprscan": [_value(float(x)) for x in scan],
        "out_of_frame": [out_of_frame(w, OUT_OF_FRAME_FLANK) if w else None for w in windows],
    }


def score_task(store: dict, key: str, tracr: str) -> dict:
    """Fan-out task: :func:`score_windows` of one chunk staged in the store at ``key``."""
    st = Store.from_reference(store)
    c30, c35, windows = json.loads(st.read_bytes(key))
    return score_windows(c30, c35, windows, tracr)


def _run_chunks(store: Store, c30, c35, windows, tracr, executor, retries, cancel) -> dict:
    """:func:`score_windows` over chunks of :data:`CHUNK` candidates as fan-out tasks, each
    chunk staged in the store's scratch space (task arguments carry references, not data)."""
    run = uuid.uuid4().hex
    keys = []
    tasks = []
    try:
        for i, lo in enumerate(range(0, len(c30), CHUNK)):
            hi = lo + CHUNK
            key = f"scratch/ontarget-{run}-{i}.json"
            store.write_bytes(key, json.dumps([c30[lo:hi], c35[lo:hi], windows[lo:hi]]).encode())
            keys.append(key)
            tasks.append(
                Task(
                    "sandgrain.guides.efficiency:score_task",
                    dict(store=store.reference(), key=key, tracr=tracr),
                    key=f"on-target scores {lo + 1:,}–{min(hi, len(c30)):,}",
                    weight=min(hi, len(c30)) - lo,
                )
            )
        parts = run_plan(tasks, executor, retries=retries, cancel=cancel, store_probe=store.probe)
    finally:
        for key in keys:
            store.delete(key)
    return {name: [v for part in parts for v in part[name]] for name in parts[0]}


def efficiency_fields(
    candidates: Sequence[Candidate],
    reader: ContextReader,
    nuclease: Nuclease,
    *,
    tracr: str = "Hsu2013",
    store: Store | None = None,
    executor="serial",
    retries: int = 2,
    cancel=None,
) -> list[dict]:
    """``{"efficiency", "rs3", "ruleset1", "crisprscan", "out_of_frame"}`` for each candidate
    (module doc); every value ``None`` for nucleases the scores were not trained on. More than
    :data:`CHUNK` candidates are scored in parallel on ``executor`` (staged through ``store``)."""
    n = len(candidates)
    empty = {"efficiency": None, "rs3": None, "ruleset1": None, "crisprscan": None,
             "out_of_frame": None}  # fmt: skip
    if not is_spcas9_like(nuclease) or not n:
        return [dict(empty) for _ in range(n)]
    from .scores.crisprscan import CRISPRSCAN_FLANK_3, CRISPRSCAN_FLANK_5
    from .scores.outframe import OUT_OF_FRAME_FLANK

    c30 = [reader.flanked(c, CONTEXT_FLANK_5, CONTEXT_FLANK_3) or c.context30 for c in candidates]
    c35 = [reader.flanked(c, CRISPRSCAN_FLANK_5, CRISPRSCAN_FLANK_3) for c in candidates]
    oof = [reader.around_cut(c, OUT_OF_FRAME_FLANK, OUT_OF_FRAME_FLANK) for c in candidates]
    if n > CHUNK and store is not None and executor != "serial":
        scores = _run_chunks(store, c30, c35, oof, tracr, executor, retries, cancel)
    else:
        scores = score_windows(c30, c35, oof, tracr)
    return [
        {
            "efficiency": scores["rs3"][i],
            "rs3": scores["rs3"][i],
            "ruleset1": scores["ruleset1"][i],
            "crisprscan": scores["crisprscan"][i],
            "out_of_frame": scores["out_of_frame"][i],
        }
        for i in range(n)
    ]
