"""Manhattan and QQ plots of per-variant p-values (matplotlib, Agg), as PNG and SVG.

Manhattan: −log10 p by position, chromosomes in natural order (1…22, X, Y, MT; yeast's I…XVI by
number), one slot of equal width each, in alternating colours; every chromosome of the table
named under its slot (one with no testable variant keeps an empty slot) — on one row when the
names fit, else on two alternating rows, else turned upright, as qqman and PLINK users do, so
that no name hides another (:func:`fit_chromosome_labels`); the genome-wide line at 5×10⁻⁸
and the suggestive line at 10⁻⁵; the top hits labelled, one per locus (hits within 500 kb of a
stronger labelled one are skipped). QQ: observed against expected −log10 p under the null,
with a 95 % band from the order statistics of uniform p-values (the j-th smallest of n is
Beta(j, n − j + 1)) and λ (Devlin & Roeder 1999) in the corner.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
from scipy import stats

from .tests_classical import genomic_inflation

__all__ = [
    "GENOME_WIDE",
    "SUGGESTIVE",
    "chrom_order",
    "fit_chromosome_labels",
    "is_roman_genome",
    "manhattan",
    "manhattan_size",
    "qq",
    "write_plots",
]

GENOME_WIDE = 5e-8
SUGGESTIVE = 1e-5
COLOURS = ("#1f4e79", "#6fa8dc")
LOCUS_BP = 500_000


_ROMAN = {"I": 1, "V": 5, "X": 10}
#: Yeast's chromosome names, I … XVI (X alone is the human X, so two letters at least).
_ROMAN_NAME = re.compile(r"^(?=[IVX]{2,}$)X{0,3}(IX|IV|V?I{0,3})$")


def _roman(text: str) -> int:
    values = [_ROMAN[c] for c in text]
    return sum(-v if v < w else v for v, w in zip(values, [*values[1:], 0], strict=True))


def _bare(name: str) -> str:
    return re.sub(r"^chr", "", name, flags=re.IGNORECASE)


def is_roman_genome(names) -> bool:
    """Whether chromosomes are numbered in Roman numerals (yeast's ``I`` … ``XVI``): a name of
    two or more of the letters I, V, X is one (``X`` alone may be the human X)."""
    return any(_ROMAN_NAME.match(_bare(n)) for n in names)


def chrom_order(name: str, roman: bool = False) -> tuple[int, int, str]:
    """Sort key: numbered chromosomes by number (``I``, ``V`` and ``II`` … ``XVI`` as yeast
    numbers them, and ``X`` as ten too with ``roman``: see :func:`is_roman_genome`), then X, Y,
    MT, then the rest by name, their numbers in order (``scaffold_2`` before ``scaffold_10``)."""
    bare = _bare(name)
    if bare.isdigit():
        return (0, int(bare), "")
    if bare in ("I", "V") or _ROMAN_NAME.match(bare) or (roman and bare == "X"):
        return (0, _roman(bare), "")
    special = {"X": 1, "Y": 2, "XY": 3, "M": 4, "MT": 4, "MITO": 4}
    if bare.upper() in special:
        return (1, special[bare.upper()], "")
    return (2, 0, re.sub(r"\d+", lambda m: m.group().zfill(12), bare))  # scaffold_2 < _10


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _columns(table: pa.Table):
    chrom = np.asarray(table["chrom"].to_pylist(), dtype=object)
    pos = table["pos"].to_numpy(zero_copy_only=False).astype(np.int64)
    p = table["p"].to_numpy(zero_copy_only=False).astype(np.float64)
    ids = table["id"].to_pylist()
    ok = np.isfinite(p) & (p > 0) | (p == 0)
    p = np.where(p == 0, np.finfo(float).tiny, p)
    return chrom[ok], pos[ok], p[ok], [i for i, keep in zip(ids, ok, strict=True) if keep]


#: Pixels kept free between two chromosome names on one row.
LABEL_GAP_PX = 3
#: Smallest type the chromosome names are set in (hundreds of contigs).
MIN_LABEL_POINTS = 4


def _overlap(boxes, step: int) -> bool:
    """Whether a name runs into the one ``step`` further along the row."""
    return any(b.x0 < a.x1 + LABEL_GAP_PX for a, b in zip(boxes, boxes[step:], strict=False))


def fit_chromosome_labels(ax) -> str:
    """Lay out the chromosome names under a Manhattan plot so that none hides another:
    ``"row"`` when all fit side by side, ``"alternate"`` (every other name one line lower, as
    PLINK and qqman users do for the small chromosomes) when every other one fits, else
    ``"upright"`` (turned 90°). Measured on the figure as it will be drawn: call it again after
    the figure's layout changes (``tight_layout``). Returns the layout chosen."""
    ticks = ax.xaxis.get_major_ticks()
    base = ax.xaxis.get_tick_params(which="major").get("pad", 3.5)
    import matplotlib

    ax.tick_params(axis="x", labelrotation=0, labelsize=matplotlib.rcParams["xtick.labelsize"])
    for tick in ticks:
        tick.set_pad(base)
    renderer = ax.figure.canvas.get_renderer()
    texts = [t.label1 for t in ticks if t.label1.get_text()]
    boxes = [t.get_window_extent(renderer) for t in texts]
    if len(boxes) < 2 or not _overlap(boxes, 1):
        return "row"
    if not _overlap(boxes, 2):
        lower = base + 1.2 * texts[0].get_fontsize()  # points, as the pad is
        for tick in ticks[1::2]:
            tick.set_pad(lower)
        return "alternate"
    ax.tick_params(axis="x", labelrotation=90)
    boxes = [t.get_window_extent(renderer) for t in texts]
    if _overlap(boxes, 1):  # hundreds of contigs: smaller type, never below MIN_LABEL_POINTS
        slot = (boxes[-1].x0 - boxes[0].x0) / (len(boxes) - 1)
        size = texts[0].get_fontsize() * slot / (boxes[0].width + LABEL_GAP_PX)
        ax.tick_params(axis="x", labelsize=max(MIN_LABEL_POINTS, size))
    return "upright"


def manhattan(table: pa.Table, ax, *, top: int = 5, title: str | None = None) -> list[str]:
    """Draw the Manhattan plot of ``table`` (chrom, pos, id, p) on ``ax``; returns the labels."""
    chrom, pos, p, ids = _columns(table)
    logp = -np.log10(p)
    # every chromosome of the table, those whose variants have no p-value too (all untested)
    present = set(table["chrom"].to_pylist())
    roman = is_roman_genome(present)
    names = sorted(present, key=lambda n: chrom_order(n, roman))
    # One slot of equal width per chromosome: panels and exomes cover chromosomes sparsely, and
    # a slot per chromosome keeps each readable whatever its span.
    x = np.zeros(len(pos), dtype=float)
    ticks = []
    for i, name in enumerate(names):
        sel = chrom == name
        ticks.append(i + 0.5)
        if not sel.any():
            continue
        lo, hi = pos[sel].min(), pos[sel].max()
        x[sel] = i + 0.05 + 0.9 * (pos[sel] - lo) / max(hi - lo, 1)
        ax.scatter(x[sel], logp[sel], s=4, c=COLOURS[i % 2], linewidths=0, rasterized=True)
    ax.set_xlim(0, max(len(names), 1))
    ax.set_xticks(ticks, [re.sub(r"^chr", "", n) for n in names])
    fit_chromosome_labels(ax)
    ax.axhline(-np.log10(GENOME_WIDE), color="#c00000", lw=0.8, ls="--", label="5×10⁻⁸")
    ax.axhline(-np.log10(SUGGESTIVE), color="#7f7f7f", lw=0.8, ls=":", label="10⁻⁵")
    ax.set_xlabel("chromosome")
    ax.set_ylabel("−log₁₀ p")
    ax.set_ylim(0, max(float(logp.max(initial=0)) * 1.12, -np.log10(GENOME_WIDE) + 1))
    ax.legend(loc="upper right", fontsize=7, frameon=False)
    if title:
        ax.set_title(title)
    labels: list[str] = []
    placed: list[tuple[str, int]] = []
    for j in np.argsort(p, kind="stable"):
        if len(labels) >= top or p[j] > SUGGESTIVE:
            break
        if any(c == chrom[j] and abs(q - pos[j]) < LOCUS_BP for c, q in placed):
            continue
        label = ids[j] if ids[j] not in (".", "", None) else f"{chrom[j]}:{pos[j]}"
        ax.annotate(label, (x[j], logp[j]), xytext=(3, 3), textcoords="offset points", fontsize=7)
        placed.append((chrom[j], int(pos[j])))
        labels.append(label)
    return labels


def qq(table: pa.Table, ax, *, title: str | None = None) -> float:
    """Draw the QQ plot with a 95 % band and λ on ``ax``; returns λ."""
    _, _, p, _ = _columns(table)
    n = len(p)
    lam = genomic_inflation(p)
    observed = -np.log10(np.sort(p))
    j = np.arange(1, n + 1)
    expected = -np.log10(j / (n + 1))
    band = np.unique(np.geomspace(1, max(n, 1), num=min(n, 400)).astype(int)) if n else j
    lo = -np.log10(stats.beta.ppf(0.975, band, n - band + 1))
    hi = -np.log10(stats.beta.ppf(0.025, band, n - band + 1))
    ax.fill_between(expected[band - 1], lo, hi, color="#d9d9d9", lw=0, label="95 % band")
    ax.plot([0, expected.max(initial=1)], [0, expected.max(initial=1)], color="#7f7f7f", lw=0.8)
    ax.scatter(expected, observed, s=4, c=COLOURS[0], linewidths=0, rasterized=True)
    ax.set_xlabel("expected −log₁₀ p")
    ax.set_ylabel("observed −log₁₀ p")
    ax.text(0.04, 0.94, f"λ = {lam:.3f}", transform=ax.transAxes, va="top")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    if title:
        ax.set_title(title)
    return lam


#: Inches of Manhattan plot per chromosome beyond the usual 11: room for its name upright.
INCHES_PER_CHROMOSOME = 0.12


def manhattan_size(n_chromosomes: int) -> tuple[float, float]:
    """The Manhattan figure's size (inches): 11 × 4, wider for so many chromosomes (a draft
    assembly's scaffolds) that their names would not fit upright."""
    return (max(11.0, 1.5 + INCHES_PER_CHROMOSOME * n_chromosomes), 4.0)


def write_plots(table: pa.Table, prefix: str | Path, *, title: str | None = None) -> list[Path]:
    """Write ``PREFIX.manhattan.{png,svg}`` and ``PREFIX.qq.{png,svg}``; returns the paths."""
    plt = _pyplot()
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    out = []
    wide = manhattan_size(len(set(table["chrom"].to_pylist())))
    for kind, size, draw in (("manhattan", wide, manhattan), ("qq", (5, 5), qq)):
        fig, ax = plt.subplots(figsize=size, dpi=120)
        try:
            draw(table, ax, title=title)
            fig.tight_layout()
            if draw is manhattan:  # the layout narrowed the axes: fit the names again
                fit_chromosome_labels(ax)
                fig.tight_layout()
            for ext in ("png", "svg"):
                path = prefix.with_name(f"{prefix.name}.{kind}.{ext}")
                fig.savefig(path, metadata={"Date": None} if ext == "svg" else None)
                out.append(path)
        finally:
            plt.close(fig)
    return out
