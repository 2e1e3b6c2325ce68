"""Test helpers of the calling domain: a VCF's record lines, and the plain reference a scattered
run is held to — one ``bcftools mpileup | bcftools call`` over the whole genome."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sandgrain.calling.call import MPILEUP_ARGS


def vcf_records(path: str | Path) -> list[str]:
    """The record lines of a (gzipped) VCF, header left out, newline kept."""
    with gzip.open(path, "rt") as fh:
        return [ln for ln in fh if not ln.startswith("#")]


def bcftools_once(fasta: str | Path, bams: Sequence[str | Path]) -> list[str]:
    """Record lines of one unscattered ``bcftools mpileup -f FASTA … BAMS | bcftools call -m -v``
    with the options sandgrain gives each region."""
    mp = subprocess.run(["bcftools", "mpileup", "-Ou", "-f", str(fasta), *MPILEUP_ARGS,
                         *map(str, bams)], check=True, capture_output=True).stdout  # fmt: skip
    out = subprocess.run(["bcftools", "call", "-m", "-v"], input=mp, check=True,
                         capture_output=True).stdout.decode()  # fmt: skip
    return [ln + "\n" for ln in out.splitlines() if not ln.startswith("#")]
