"""Variant records: allele normalisation, variant types, identifiers and genotype decoding.

Shared by the ingest (which stores what these functions compute) and the query engine (which
normalises a user's alleles the same way before comparing). Coordinates are 0-based half-open
(``start0``/``end0``) as in Beacon v2 requests.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from numba import njit

#: Symbolic alternate alleles (``<DEL>``) and the Beacon variant type each stands for.
SYMBOLIC_TYPES = {"DEL": "DEL", "DUP": "DUP", "CNV": "CNV", "INV": "INV", "INS": "INS"}
#: Variant types a query may ask for, and the stored types each one matches.
TYPE_MATCHES = {
    "SNP": {"SNP"},
    "SNV": {"SNP"},
    "MNP": {"MNP"},
    "INS": {"INS"},
    "DEL": {"DEL"},
    "INDEL": {"INS", "DEL", "INDEL"},
    "DUP": {"DUP"},
    "CNV": {"CNV", "DUP", "DEL"},
    "INV": {"INV"},
    "BND": {"BND"},
    "SV": {"DUP", "CNV", "INV", "BND", "DEL", "INS"},
}
#: Alleles that are not variants (no-call placeholders, spanning deletions, gVCF ``<*>``).
SKIPPED_ALTS = {".", "*", "<*>", "<NON_REF>", "<X>"}
_BASES = re.compile(r"^[ACGTN]+$")
MAX_PLAIN_ID = 40


def minimal_representation(pos0: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Trim the bases a REF/ALT pair shares at the end, then at the start, keeping one base.

    This is the "minimal representation" of split multi-allelic records (as used by ExAC/gnomAD,
    Lek et al. 2016, Nature 536:285): ``AT → ATT`` becomes ``A → AT``, ``CTT → CT`` becomes
    ``CT → C``. Symbolic alleles are returned unchanged.
    """
    if alt.startswith("<") or "[" in alt or "]" in alt:
        return pos0, ref, alt
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
        pos0 += 1
    return pos0, ref, alt


def variant_type(ref: str, alt: str, info_svtype: str | None = None) -> str:
    """SNP, MNP, INS, DEL or INDEL for sequence alleles; DEL/DUP/CNV/INV/INS/BND for symbolic."""
    if alt.startswith("<"):
        inner = alt[1:-1].split(":")[0].upper()
        return SYMBOLIC_TYPES.get(inner, (info_svtype or inner or "SV").upper())
    if "[" in alt or "]" in alt:
        return "BND"
    if len(ref) == len(alt):
        return "SNP" if len(ref) == 1 else "MNP"
    if len(ref) == 1 and alt[0] == ref[0]:
        return "INS"
    if len(alt) == 1 and ref[0] == alt[0]:
        return "DEL"
    return "INDEL"


def variant_id(chrom: str, pos0: int, ref: str, alt: str) -> str:
    """A stable, URL-safe identifier: ``chrom-pos1-ref-alt``; long or symbolic alleles hashed.

    >>> variant_id("1", 10176, "A", "AC")
    '1-10177-A-AC'
    """
    if len(ref) + len(alt) <= MAX_PLAIN_ID and _BASES.match(ref) and _BASES.match(alt):
        return f"{chrom}-{pos0 + 1}-{ref}-{alt}"
    digest = hashlib.sha1(f"{ref}>{alt}".encode()).hexdigest()[:16]
    return f"{chrom}-{pos0 + 1}-h{digest}"


def parse_variant_id(text: str) -> tuple[str, int] | None:
    """The chromosome and 0-based start of a :func:`variant_id`, or None if it is not one."""
    m = re.fullmatch(r"(.+)-([0-9]{1,12})-(?:[ACGTN]+-[ACGTN]+|h[0-9a-f]{16})", text)
    if not m:
        return None
    return m.group(1), int(m.group(2)) - 1


# -- amino-acid changes --------------------------------------------------------------------------
AA3 = {
    "Ala": "A", "Arg": "R", "Asn": "N", "Asp": "D", "Cys": "C", "Gln": "Q", "Glu": "E",
    "Gly": "G", "His": "H", "Ile": "I", "Leu": "L", "Lys": "K", "Met": "M", "Phe": "F",
    "Pro": "P", "Ser": "S", "Thr": "T", "Trp": "W", "Tyr": "Y", "Val": "V", "Ter": "*",
    "Sec": "U", "Pyl": "O", "Xaa": "X",
}  # fmt: skip
_AA3_RE = re.compile("|".join(AA3))


def aa_short(change: str) -> str:
    """An HGVS protein change in the one-letter short form Beacon queries use.

    >>> aa_short("p.Val600Glu"), aa_short("V600E"), aa_short("p.(Arg117His)")
    ('V600E', 'V600E', 'R117H')
    """
    text = change.strip()
    text = text.split(":", 1)[1] if ":" in text else text
    text = text.removeprefix("p.").strip("()")
    return _AA3_RE.sub(lambda m: AA3[m.group(0)], text)


# -- genotypes -------------------------------------------------------------------------------------
@njit(cache=True)
def _gt_kernel(buf, n, n_alts, called, samples, alleles, doses, hist):  # pragma: no cover
    """One pass over the sample columns of a VCF line (compiled).

    Fills ``called`` (alleles called per sample), ``hist`` (how many samples called 0, 1, 2,
    3+ alleles) and, for every sample carrying a non-reference allele, one entry per distinct
    allele: ``samples``, ``alleles``, ``doses`` (copies). Only the first sub-field (GT) of each
    column is read. Returns the number of entries, or -1 when the columns do not match ``n``
    samples, -2 on a character that is not part of a genotype, -3 on an allele number beyond
    the ALT alleles.
    """
    size = buf.size
    i = 0
    found = 0
    for sample in range(n):
        if i > size:
            return -1
        if (
            i + 3 < size
            and buf[i] == 48
            and (buf[i + 1] == 124 or buf[i + 1] == 47)
            and buf[i + 2] == 48
            and buf[i + 3] == 9
        ):  # "0|0" or "0/0", by far the most common genotype of a large cohort
            called[sample] = 2
            hist[2] += 1
            i += 4
            continue
        n_called = 0
        value = -1  # -1: no digit yet in this allele
        first = found  # this sample's first entry
        in_gt = True
        while True:
            c = buf[i] if i < size else 9
            if in_gt and 48 <= c <= 57:
                value = (0 if value < 0 else value * 10) + (c - 48)
            elif in_gt and c == 46:  # "." is a missing allele
                pass
            elif in_gt and (c == 124 or c == 47 or c == 58 or c == 9):
                if value >= 0:
                    n_called += 1
                    if value > n_alts:
                        return -3
                    if value > 0:
                        j = first
                        while j < found and alleles[j] != value:
                            j += 1
                        if j < found:
                            doses[j] += 1
                        else:
                            samples[found] = sample
                            alleles[found] = value
                            doses[found] = 1
                            found += 1
                value = -1
                if c == 58:
                    in_gt = False
            elif in_gt:
                return -2
            if c == 9:
                break
            i += 1
        called[sample] = n_called
        hist[min(n_called, 3)] += 1
        i += 1  # past the tab
    if i < size:
        return -1
    return found


class Genotypes:
    """The genotypes of one VCF line in sparse form (what the ingest stores), decoded by the
    compiled kernel; the tests compare it with a plain per-sample parse on random genotypes
    (phased, unphased, haploid, mixed ploidy, missing, alleles ≥ 10, extra FORMAT fields)."""

    __slots__ = ("called", "an", "ploidy", "exc_idx", "exc_called", "per_alt")

    def __init__(self, gts: str, n_samples: int, format_field: str, n_alts: int):
        called = np.zeros(n_samples, dtype=np.int8)
        hist = np.zeros(4, dtype=np.int64)
        if not format_field.startswith("GT"):
            found, samples, alleles, doses = 0, None, None, None
            hist[0] = n_samples
        else:
            buf = np.frombuffer(gts.encode("ascii", "replace"), dtype=np.uint8)
            cap = buf.size // 2 + 1
            samples = np.empty(cap, dtype=np.int32)
            alleles = np.empty(cap, dtype=np.int16)
            doses = np.empty(cap, dtype=np.int8)
            found = _gt_kernel(buf, n_samples, n_alts, called, samples, alleles, doses, hist)
            if found == -1:
                raise ValueError(
                    f"the sample columns do not match the {n_samples} samples of the header"
                )
            if found == -2:
                raise ValueError("a genotype is not in VCF notation (0|1, 1/1, ., …)")
            if found == -3:
                raise ValueError(f"a genotype names an allele beyond the {n_alts} ALT allele(s)")
        self.called = called
        self.an = int(np.dot(hist[:3], np.arange(3))) + (
            int(called[called >= 3].sum(dtype=np.int64)) if hist[3] else 0
        )
        ploidy = int(hist.argmax())
        if ploidy == 3:  # polyploid: the most common number of called alleles
            ploidy = int(np.bincount(called).argmax())
        self.ploidy = ploidy
        if hist[min(ploidy, 3)] == n_samples and ploidy < 3:
            self.exc_idx = _EMPTY_I32
            self.exc_called = _EMPTY_I8
        else:
            self.exc_idx = np.flatnonzero(called != ploidy).astype(np.int32)
            self.exc_called = called[self.exc_idx]
        if found == 0:
            self.per_alt = [(_EMPTY_I32, _EMPTY_I8)] * n_alts
        elif n_alts == 1:
            self.per_alt = [(samples[:found], doses[:found])]
        else:
            alleles = alleles[:found]
            self.per_alt = [
                (samples[:found][alleles == k], doses[:found][alleles == k])
                for k in range(1, n_alts + 1)
            ]


_EMPTY_I32 = np.zeros(0, dtype=np.int32)
_EMPTY_I8 = np.zeros(0, dtype=np.int8)
