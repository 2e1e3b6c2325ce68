"""Known variants in guide sites: flag guides whose protospacer or PAM overlaps a VCF record.

A guide designed on the reference may not cut a person's or a strain's genome when a known
variant changes its protospacer or destroys its PAM (CRISPOR shows such variants from dbSNP and
gnomAD; Haeussler et al. 2016, Genome Biol 17:148). :class:`VariantOverlaps` reads a VCF or
BCF:

* bgzipped and indexed (``.tbi`` or ``.csi`` beside it): region queries through
  ``pysam.VariantFile.fetch``, one per cluster of nearby sites;
* plain, or compressed without an index: the file is streamed once per :meth:`for_sites` call
  and only records that overlap a requested site are kept, so memory is bounded by the sites
  and their variants, not by the VCF.

A record overlaps a site when its reference span intersects the protospacer or the PAM: 0-based
``[POS − 1, POS − 1 + len(REF))``, or ``[POS − 1, END)`` for a structural variant with an INFO
``END`` (the span htslib gives a record and ``bcftools view -r`` uses). Chromosome names
are matched through :class:`~sandgrain.genome.chromosomes.ChromosomeNames`: ``chr22``, ``22``,
``chrM``/``MT`` and, with an ``assembly``, accessions such as ``NC_000022.10`` all meet.

A Beacon dataset in the store is not (yet) a variant source here.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence

from ..errors import InputError
from ..genome.chromosomes import ChromosomeNames

__all__ = ["MERGE_GAP", "VariantOverlaps"]

#: Sites closer than this (bp) are fetched from an indexed file in one region query.
MERGE_GAP = 1000


def _float(x) -> float | None:
    """A VCF float (single precision in htslib) to 6 significant digits: 0.0032, not
    0.0031999999."""
    return None if x is None else float(f"{float(x):.6g}")


def _record(rec, chrom: str, where: str) -> dict:
    af = None
    try:
        value = rec.info.get("AF")
    except (KeyError, ValueError):
        value = None
    if isinstance(value, tuple):
        af = [_float(x) for x in value]
    elif value is not None:
        af = _float(value)
    return {
        "chrom": chrom,
        "pos": int(rec.pos),
        "id": rec.id,
        "ref": rec.ref,
        "alt": list(rec.alts or ()),
        "in": where,
        "af": af,
    }


class VariantOverlaps:
    """Variants of one VCF/BCF file that overlap guide sites.

    Parameters
    ----------
    path
        A VCF or BCF file, plain, gzip or bgzip; indexed (``.tbi``/``.csi``) or not.
    assembly
        The genome's assembly (``hg19``, ``GRCh38``…), so that accession-named contigs match.

    Raises
    ------
    InputError
        When the file is missing or is not a VCF/BCF.
    """

    def __init__(self, path, *, assembly: str | None = None):
        self.path = os.fspath(path)
        self.assembly = assembly
        if not os.path.isfile(self.path):
            raise InputError(f"variant file {self.path} does not exist")
        with self._open() as vf:
            self.indexed = vf.index is not None
            self.contigs = list(vf.index) if self.indexed else list(vf.header.contigs)

    def __repr__(self) -> str:
        kind = "indexed" if self.indexed else "streamed"
        return f"VariantOverlaps({self.path!r}, {kind})"

    def _open(self):
        import pysam  # here, not at the top: most designs read no VCF

        try:
            return pysam.VariantFile(self.path, drop_samples=True)
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path} is not a readable VCF or BCF file ({exc})") from None

    def for_sites(self, sites: Sequence[tuple]) -> list[list[dict]]:
        """For each site ``(chrom, start0, end0, pam_start0, pam_end0)`` — protospacer and PAM
        as 0-based half-open forward-strand spans (PAM ``None, None`` for none) — the variants
        overlapping it, in file order: ``{"chrom", "pos", "id", "ref", "alt", "in", "af"}``
        with ``chrom`` the site's own name, ``pos`` 1-based as in the VCF, ``id`` None for
        ``.``, ``alt`` a list, ``in`` ``"pam"`` when the record overlaps the PAM (the site is
        likely lost), else ``"protospacer"``, and ``af`` the INFO ``AF`` as the file gives it
        (a number, a list per ALT, or None)."""
        spans = self._spans(sites)
        out: list[list[dict]] = [[] for _ in sites]
        if not spans:
            return out
        if self.indexed:
            self._fetch(spans, out)
        else:
            self._stream(spans, out)
        return out

    @staticmethod
    def _spans(sites: Sequence[tuple]) -> dict[str, list[tuple[int, int, int, int, int, int]]]:
        """Per chromosome, sorted ``(lo, hi, idx, start0, end0, pam_start0/pam_end0…)``."""
        by_chrom: dict[str, list] = {}
        for idx, site in enumerate(sites):
            try:
                chrom, start0, end0, pam_start0, pam_end0 = site
                start0, end0 = int(start0), int(end0)
                pam = (int(pam_start0), int(pam_end0)) if pam_start0 is not None else (0, 0)
            except (TypeError, ValueError):
                raise InputError(
                    f"site {idx + 1} {site!r} is not (chrom, start0, end0, pam_start0, pam_end0)"
                ) from None
            if not 0 <= start0 < end0 or pam[0] > pam[1]:
                raise InputError(f"site {idx + 1} {site!r} has an empty or negative span")
            lo = min(start0, pam[0]) if pam[1] > pam[0] else start0
            hi = max(end0, pam[1])
            by_chrom.setdefault(str(chrom), []).append((lo, hi, idx, start0, end0, *pam))
        for spans in by_chrom.values():
            spans.sort()
        return by_chrom

    @staticmethod
    def _assign(rec, chrom: str, spans: list, starts: list[int], longest: int, out) -> None:
        """Add ``rec`` to every site in ``spans`` (sorted; ``starts`` their ``lo``) it overlaps."""
        r0, r1 = rec.start, max(rec.stop, rec.start + 1)
        i = bisect.bisect_left(starts, r0 - longest)
        while i < len(spans) and spans[i][0] < r1:
            lo, hi, idx, s0, s1, p0, p1 = spans[i]
            if hi > r0:
                if p0 < r1 and r0 < p1:
                    out[idx].append(_record(rec, chrom, "pam"))
                elif s0 < r1 and r0 < s1:
                    out[idx].append(_record(rec, chrom, "protospacer"))
            i += 1

    def _fetch(self, spans: dict[str, list], out) -> None:
        names = ChromosomeNames(self.contigs, assembly=self.assembly)
        with self._open() as vf:
            for chrom, chrom_spans in spans.items():
                contig = names.get(chrom)
                if contig is None:
                    continue
                starts = [s[0] for s in chrom_spans]
                longest = max(s[1] - s[0] for s in chrom_spans)
                # clusters of nearby sites, one region query each
                c_lo, c_hi, first = chrom_spans[0][0], chrom_spans[0][1], 0
                for k in range(1, len(chrom_spans) + 1):
                    if k < len(chrom_spans) and chrom_spans[k][0] <= c_hi + MERGE_GAP:
                        c_hi = max(c_hi, chrom_spans[k][1])
                        continue
                    group = chrom_spans[first:k]
                    for rec in vf.fetch(contig, c_lo, c_hi):
                        self._assign(rec, chrom, group, starts[first:k], longest, out)
                    if k < len(chrom_spans):
                        c_lo, c_hi, first = chrom_spans[k][0], chrom_spans[k][1], k
        for found in out:
            found.sort(key=lambda v: v["pos"])

    def _stream(self, spans: dict[str, list], out) -> None:
        names = ChromosomeNames(list(spans), assembly=self.assembly)
        mapped: dict[str, str | None] = {}
        starts = {c: [s[0] for s in v] for c, v in spans.items()}
        longest = {c: max(s[1] - s[0] for s in v) for c, v in spans.items()}
        with self._open() as vf:
            try:
                for rec in vf:
                    contig = rec.chrom
                    if contig not in mapped:
                        mapped[contig] = names.get(contig)
                    chrom = mapped[contig]
                    if chrom is not None:
                        self._assign(rec, chrom, spans[chrom], starts[chrom], longest[chrom], out)
            except (OSError, ValueError) as exc:
                raise InputError(f"{self.path}: unreadable VCF record ({exc})") from None
