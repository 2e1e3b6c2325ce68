"""sandgrain — a search engine for genomes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sandgrain")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "design_guides", "score_guides"]


def __getattr__(name: str):
    # imported on first use: `import sandgrain` stays cheap (no numpy, numba or storage)
    if name in ("design_guides", "score_guides"):
        from .guides import design

        return getattr(design, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
