"""Genomic regions and their text form.

Internally a region is 0-based half-open (``start0``, ``end0``), as in BED and Python slices. On
the command line and in messages it is ``chrom:start-end``, 1-based inclusive, as in samtools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError

_COMPLEMENT = bytes.maketrans(b"ACGTNacgtnRYKMSWBDHVrykmswbdhv", b"TGCANtgcanYRMKSWVHDByrmkswvhdb")
#: ASCII digits only (as samtools), with , or _ as thousands separators; at most 24 characters a
#: number (far past any chromosome, and short of Python's limit on converting long digit strings).
_RANGE_RE = re.compile(r"(?P<start>[0-9][0-9,_]{0,23})(?:-(?P<end>[0-9][0-9,_]{0,23}))?")


def reverse_complement(seq: str) -> str:
    """Reverse complement keeping case (soft-masking) and N."""
    return seq.encode("ascii").translate(_COMPLEMENT)[::-1].decode("ascii")


@dataclass(frozen=True)
class Region:
    """A stretch of one chromosome, 0-based half-open, on one strand."""

    chrom: str
    start0: int
    end0: int
    strand: str = "+"

    def __post_init__(self):
        if self.start0 < 0 or self.end0 < self.start0:
            raise InputError(f"invalid region {self.chrom}:{self.start0 + 1}-{self.end0}")
        if self.strand not in ("+", "-"):
            raise InputError(f"strand must be '+' or '-', not {self.strand!r}")

    @property
    def length(self) -> int:
        return self.end0 - self.start0

    def __str__(self) -> str:
        return f"{self.chrom}:{self.start0 + 1}-{self.end0}"


def split_region_text(text: str, is_chromosome) -> tuple[str, str | None]:
    """Split ``chrom[:start[-end]]`` into its name and range parts.

    Chromosome names may themselves contain ':' (e.g. ``22:20000001-21000000``), so, like samtools,
    the whole text is tried as a name first.
    """
    text = text.strip()
    if not text:
        raise InputError("empty region: use chrom:start-end (1-based, inclusive)")
    if is_chromosome(text):
        return text, None
    name, sep, rng = text.rpartition(":")
    if not sep or not name:
        return text, None
    return name, rng


def parse_range(chrom: str, rng: str | None, length: int, text: str) -> tuple[int, int]:
    """1-based inclusive ``start-end`` (or ``start`` = to the end) → 0-based half-open, checked."""
    if rng is None:
        return 0, length
    m = _RANGE_RE.fullmatch(rng.strip())
    if not m:
        raise InputError(f"cannot read region {text!r}: use chrom:start-end (1-based, inclusive)")
    start = int(m["start"].replace(",", "").replace("_", ""))
    end = int(m["end"].replace(",", "").replace("_", "")) if m["end"] else length
    if start < 1:
        raise InputError(f"region {text!r}: positions start at 1")
    if end < start:
        raise InputError(f"region {text!r}: end {end:,} is before start {start:,}")
    if end > length or start > length:
        raise InputError(f"region {text!r} is out of range: chromosome {chrom} has {length:,} bp")
    return start - 1, end
