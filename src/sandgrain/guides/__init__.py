"""CRISPR guide design: nucleases, candidate sites, scores and genome-wide off-target search.

:func:`design_guides` and :func:`score_guides` (from :mod:`.design`) are imported on first use,
so importing a light module such as :mod:`.nucleases` does not load the search kernels.
"""

from __future__ import annotations

__all__ = ["design_guides", "score_guides"]


def __getattr__(name: str):
    if name in __all__:
        from . import design

        return getattr(design, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
