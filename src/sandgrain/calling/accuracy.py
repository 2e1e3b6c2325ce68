"""How well calls agree with a truth set: precision, recall, F1 and genotype concordance for
SNVs and indels.

Records are matched **by position and alleles after normalisation**, then **as haplotypes**.
Both VCFs go through Debian's ``bcftools norm -f REF -a --atom-overlaps . -m -any`` (Danecek et
al. 2021, GigaScience 10:giab008): indels are left-aligned and trimmed against the reference
(Tan et al. 2015, Bioinformatics 31:2202), complex records and MNPs are decomposed into SNVs and
indels (``-a``), and multi-allelic records are split into one record per ALT (``-m -any``). A
variant is then the key ``(chrom, pos, ref, alt)``: a true positive when the key is in both
sets, a false positive when only in the calls, a false negative when only in the truth. Each
key's genotype is the sample's dosage of that ALT (0, 1 or 2 copies); genotype concordance is
the share of true positives whose dosages agree.

The same haplotype can be written as different records (a cluster of nearby SNVs and indels
that a caller merges or splits otherwise than the truth, so that atomisation gives other
primitives). The records left unmatched are therefore grouped into clusters (each within
:data:`REPLAY_GAP` bases of the next) and replayed, as RTG vcfeval does (Cleary et al. 2015):
each side's records of the cluster, with the key-matched records inside its span, are applied
to the reference in every phasing, and where both sides can make the same pair of haplotype
sequences, all of the cluster's records count as true positives with matching genotypes. This
is genotype-level matching within small clusters, not vcfeval's full search over a whole
chromosome: a cluster with one side only (a plain FP or FN) or with more than
:data:`REPLAY_MAX_HET` heterozygous records is not replayed, and a call whose alleles are right
but genotype wrong stays FP + FN when its representation differs. Precision counts the calls'
matched records (``tp_calls``), recall the truth's (``tp``), as vcfeval's TP-call and
TP-baseline. Phase is ignored (``0|1`` equals ``1|0``).

Rules:

* SNV: REF and ALT of length 1 after atomisation; INDEL: lengths differ. Records with REF and
  ALT of equal length above 1 (none remain after ``-a``) would count as SNVs.
* Skipped: symbolic ALTs (``<DEL>``, ``<*>``), the overlap placeholder ``*``, records where the
  sample's genotype carries no copy of the ALT or is missing, and — in the calls only — records
  with QUAL below ``min_qual`` (a missing QUAL passes only when ``min_qual`` is 0) or, with
  ``pass_only``, FILTER other than ``PASS`` or ``.``.
* Two records with the same key in one set (rare after splitting) add their dosages, at most 2.
* ``regions_bed`` keeps records whose first REF base (after normalisation) lies in a region.
"""

from __future__ import annotations

import bisect
import gzip
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, NotFoundError
from . import tools

__all__ = [
    "AccuracyReport",
    "Record",
    "TypeCounts",
    "compare",
    "match",
    "normalised_records",
    "read_bed",
]

TYPES = ("SNV", "INDEL")

#: ``bcftools norm`` options besides the reference: atomise (MNPs and complex records into SNVs
#: and indels, overlapping alleles set missing rather than ``*``) and split multi-allelic records.
NORM_OPTIONS = ("-a", "--atom-overlaps", ".", "-m", "-any")


@dataclass(frozen=True)
class Record:
    """One normalised, bi-allelic record: ``pos`` is 1-based as in the VCF."""

    chrom: str
    pos: int
    ref: str
    alt: str
    dosage: int
    qual: float | None = None
    filter: str = "."

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.chrom, self.pos, self.ref, self.alt)

    @property
    def kind(self) -> str:
        return "INDEL" if len(self.ref) != len(self.alt) else "SNV"


@dataclass
class TypeCounts:
    """True and false positives, false negatives and genotype agreement for one variant type."""

    tp: int = 0  #: truth records matched (recall's numerator)
    fp: int = 0
    fn: int = 0
    gt_match: int = 0
    #: calls records matched (precision's numerator): equal to ``tp`` but where a replayed
    #: cluster matched a different number of records on each side (vcfeval's TP-call)
    tp_calls: int = 0

    @property
    def precision(self) -> float | None:
        n = self.tp_calls + self.fp
        return self.tp_calls / n if n else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    @property
    def gt_concordance(self) -> float | None:
        return self.gt_match / self.tp if self.tp else None

    def __add__(self, other: TypeCounts) -> TypeCounts:
        return TypeCounts(
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.gt_match + other.gt_match,
            self.tp_calls + other.tp_calls,
        )

    def as_dict(self) -> dict:
        return {
            "tp": self.tp,
            "tp_calls": self.tp_calls,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "gt_concordance": self.gt_concordance,
        }


@dataclass
class AccuracyReport:
    """The comparison's figures per type (``SNV``, ``INDEL``) and the disagreeing records."""

    types: dict[str, TypeCounts]
    truth_sample: str
    sample: str
    min_qual: float = 0.0
    pass_only: bool = False
    regions_bed: str | None = None
    false_positives: list[Record] = field(default_factory=list, repr=False)
    false_negatives: list[Record] = field(default_factory=list, repr=False)
    genotype_mismatches: list[tuple[Record, Record]] = field(default_factory=list, repr=False)
    replay: bool = True
    replayed: int = 0  #: clusters whose records agree as haplotypes though not record by record

    @property
    def all(self) -> TypeCounts:
        total = TypeCounts()
        for counts in self.types.values():
            total = total + counts
        return total

    def __getitem__(self, kind: str) -> TypeCounts:
        return self.all if kind == "ALL" else self.types[kind]

    def as_dict(self) -> dict:
        return {
            "method": (
                "position/allele match after bcftools norm -a -m -any, then the clusters left "
                "unmatched replayed as haplotypes (genotype-level)"
                if self.replay
                else "position/allele match after bcftools norm -a -m -any (not haplotype-aware)"
            ),
            "replayed_clusters": self.replayed,
            "truth_sample": self.truth_sample,
            "sample": self.sample,
            "min_qual": self.min_qual,
            "pass_only": self.pass_only,
            "regions_bed": self.regions_bed,
            "types": {
                **{k: c.as_dict() for k, c in self.types.items()},
                "ALL": self.all.as_dict(),
            },
        }

    def table(self) -> str:
        """The figures as an aligned text table (one row per type, then all)."""

        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.4f}"

        # TP counts the truth's matched records (recall), TP-call the calls' (precision): they
        # differ where a replayed cluster says the same haplotypes in more or fewer records
        head = ("type", "TP", "FP", "FN", "TP-call", "precision", "recall", "F1", "GT concordance")
        rows = [head]
        for kind in (*self.types, "ALL"):
            c = self[kind]
            rows.append(
                (kind, f"{c.tp:,}", f"{c.fp:,}", f"{c.fn:,}", f"{c.tp_calls:,}", fmt(c.precision),
                 fmt(c.recall), fmt(c.f1), fmt(c.gt_concordance))
            )  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        for r in rows:
            cells = [r[0].ljust(widths[0])] + [
                v.rjust(w) for v, w in zip(r[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# reference and normalisation


def _is_bgzf(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(18)
    return len(head) >= 16 and head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


def _usable_reference(reference: Path, tmpdir: Path) -> Path:
    """``reference`` itself when bcftools can read it as is, else an indexed plain copy."""
    import pysam

    if not reference.is_file():
        raise NotFoundError(f"reference FASTA not found: {reference}")
    fai = Path(str(reference) + ".fai")
    with open(reference, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if fai.is_file() and (not gz or (_is_bgzf(reference) and Path(f"{reference}.gzi").is_file())):
        return reference
    copy = tmpdir / "reference.fa"
    try:
        with (
            gzip.open(reference, "rb") if gz else open(reference, "rb") as src,
            open(copy, "wb") as dst,
        ):
            while block := src.read(1 << 20):
                dst.write(block)
        pysam.faidx(str(copy))
    except (OSError, EOFError, pysam.SamtoolsError) as exc:
        raise InputError(f"{reference}: cannot index as FASTA ({str(exc).strip()})") from None
    return copy


def _normalise(vcf: Path, reference: Path, fai: Path, out: Path) -> None:
    """``bcftools reheader --fai`` (contig lines from the reference) ``| bcftools norm``."""
    with open(out, "wb") as fh:
        tools.pipe(
            [
                ["bcftools", "reheader", "--fai", str(fai), str(vcf)],
                ["bcftools", "norm", "-f", str(reference), *NORM_OPTIONS, "-O", "v", "-"],
            ],
            what=f"normalising {vcf.name}",
            stdout=fh,
        )


def _dosage(gt: str) -> int | None:
    """Copies of allele 1 in a GT string; ``None`` when the genotype is missing."""
    alleles = gt.replace("|", "/").split("/")
    if all(a == "." for a in alleles):
        return None
    return sum(1 for a in alleles if a == "1")


def _parse(
    path: Path, sample: str | None, label: str, *, min_qual: float, pass_only: bool
) -> tuple[str, list[Record]]:
    records: list[Record] = []
    column = None
    chosen = ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("##"):
                continue
            if line.startswith("#CHROM"):
                names = line.rstrip("\n").split("\t")[9:]
                if not names:
                    raise InputError(f"{label} has no sample column (a sites-only VCF)")
                if sample is None:
                    if len(names) > 1:
                        shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
                        raise InputError(f"{label} has {len(names)} samples ({shown}): choose one")
                    chosen = names[0]
                elif sample in names:
                    chosen = sample
                else:
                    raise NotFoundError(f"sample {sample!r} is not in {label}")
                column = 9 + names.index(chosen)
                continue
            if column is None:
                raise InputError(f"{label}: records before the #CHROM header line")
            cols = line.rstrip("\n").split("\t")
            alt = cols[4]
            if alt == "*" or alt.startswith("<") or alt == ".":
                continue
            qual = None if cols[5] == "." else float(cols[5])
            if min_qual > 0 and (qual is None or qual < min_qual):
                continue
            if pass_only and cols[6] not in ("PASS", "."):
                continue
            fmt = cols[8].split(":")
            if "GT" not in fmt:
                raise InputError(f"{label}: record at {cols[0]}:{cols[1]} has no GT field")
            values = cols[column].split(":")
            gi = fmt.index("GT")
            dosage = _dosage(values[gi]) if gi < len(values) else None
            if not dosage:
                continue
            records.append(
                Record(cols[0], int(cols[1]), cols[3].upper(), alt.upper(), dosage, qual, cols[6])
            )
    if column is None:
        raise InputError(f"{label}: no #CHROM header line (is it a VCF?)")
    return chosen, records


def normalised_records(
    vcf: str | os.PathLike,
    reference: str | os.PathLike,
    *,
    sample: str | None = None,
    min_qual: float = 0.0,
    pass_only: bool = False,
    label: str | None = None,
) -> tuple[str, list[Record]]:
    """The sample's name and its normalised, bi-allelic, non-reference records of ``vcf``.

    Parameters
    ----------
    vcf
        VCF, plain, gzip or bgzip.
    reference
        The FASTA the VCF is on: plain or bgzip; without a ``.fai`` (or gzip, not bgzip) an
        indexed plain copy is made in a temporary folder.
    sample
        The sample column; ``None`` when the VCF has exactly one.
    min_qual, pass_only
        Drop records with QUAL below ``min_qual``, or (``pass_only``) not PASS.
    """
    vcf = Path(vcf)
    label = label or str(vcf)
    if not vcf.is_file():
        raise NotFoundError(f"VCF not found: {vcf}")
    with tempfile.TemporaryDirectory(prefix="sandgrain-accuracy-") as tmpdir:
        ref = _usable_reference(Path(reference), Path(tmpdir))
        out = Path(tmpdir) / "norm.vcf"
        _normalise(vcf, ref, Path(str(ref) + ".fai"), out)
        return _parse(out, sample, label, min_qual=min_qual, pass_only=pass_only)


# --------------------------------------------------------------------------------------------
# regions and matching


def read_bed(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{chrom: (starts0, ends0)}``: a BED file's intervals, merged and sorted."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"regions BED not found: {path}")
    raw: dict[str, list[tuple[int, int]]] = {}
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            cols = line.rstrip("\n").split("\t")
            try:
                start0, end0 = int(cols[1]), int(cols[2])
            except (IndexError, ValueError):
                raise InputError(f"{path}: line {lineno}: not BED (chrom, start, end)") from None
            if start0 < 0 or end0 < start0:
                raise InputError(f"{path}: line {lineno}: bad interval {start0}-{end0}")
            raw.setdefault(cols[0], []).append((start0, end0))
    merged = {}
    for chrom, ivs in raw.items():
        ivs.sort()
        out: list[list[int]] = []
        for s, e in ivs:
            if out and s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        arr = np.array(out, dtype=np.int64).reshape(-1, 2)
        merged[chrom] = (arr[:, 0], arr[:, 1])
    return merged


def _in_regions(records: list[Record], regions) -> list[Record]:
    kept = []
    for r in records:
        ivs = regions.get(r.chrom)
        if ivs is None:
            continue
        starts, ends = ivs
        i = int(np.searchsorted(starts, r.pos - 1, side="right")) - 1
        if i >= 0 and r.pos - 1 < ends[i]:
            kept.append(r)
    return kept


def _by_key(records: Iterable[Record]) -> dict[tuple, Record]:
    out: dict[tuple, Record] = {}
    for r in records:
        seen = out.get(r.key)
        if seen is not None:
            r = Record(*r.key, min(2, seen.dosage + r.dosage), seen.qual, seen.filter)
        out[r.key] = r
    return out


#: Unmatched records with at most this many bases between one's end and the next one's start
#: are replayed together; a cluster with more heterozygous records than this on one side is not
#: replayed (2ⁿ⁻¹ phasings). Key-matched records longer than LONG_REF are kept apart for the
#: search of the ones inside a cluster.
REPLAY_GAP = 10
REPLAY_MAX_HET = 10
LONG_REF = 100


def _clusters(records: list[tuple[str, Record]]) -> list[list[tuple[str, Record]]]:
    """Runs of ``(side, record)`` on one chromosome, each within :data:`REPLAY_GAP` of the run."""
    out: list[list[tuple[str, Record]]] = []
    end = None
    for side, r in sorted(records, key=lambda x: (x[1].chrom, x[1].pos, x[0])):
        near = end is not None and r.pos <= end + REPLAY_GAP + 1
        if out and r.chrom == out[-1][0][1].chrom and near:
            out[-1].append((side, r))
        else:
            out.append([(side, r)])
            end = None
        end = max(end or 0, r.pos + len(r.ref) - 1)
    return out


def _event(r: Record) -> tuple[int, int, str]:
    """``(start, end, bases)``: the reference bases start..end-1 (1-based) a record replaces.
    An indel's shared first base (the VCF's anchor) is dropped, so an insertion is the empty
    span at the base after its anchor, and an SNV on that anchor base does not overlap it."""
    if len(r.ref) != len(r.alt) and r.ref[:1] == r.alt[:1]:
        return r.pos + 1, r.pos + len(r.ref), r.alt[1:]
    return r.pos, r.pos + len(r.ref), r.alt


def _haplotype_pairs(records: list[Record], start: int, ref: str) -> set[tuple[str, str]] | None:
    """Every unordered pair of sequences the records can make of ``ref`` (which begins at the
    1-based ``start``): a homozygous record on both haplotypes, each heterozygous one on either;
    phasings that put overlapping records (or two insertions at one point) on one haplotype are
    impossible and skipped. ``None`` when there are too many heterozygous records to try every
    phasing."""
    het = [_event(r) for r in records if r.dosage == 1]
    hom = [_event(r) for r in records if r.dosage >= 2]
    if len(het) > REPLAY_MAX_HET:
        return None
    pairs = set()
    # the first heterozygous record on haplotype 0: its mirror phasing gives the same pair
    for phase in range(1 << max(len(het) - 1, 0)):
        seqs = []
        for h in (0, 1):
            on = sorted(
                hom + [e for i, e in enumerate(het) if (phase << 1 >> i) & 1 == h],
                key=lambda e: (e[0], e[1]),
            )
            parts, at, point = [], start, None
            for a, b, bases in on:
                if a < at or (a == b and a == point):  # an overlap, or two insertions at a
                    break
                parts += [ref[at - start : a - start], bases]
                at, point = b, (a if a == b else None)
            else:
                parts.append(ref[at - start :])
                seqs.append("".join(parts))
                continue
            break
        if len(seqs) == 2:
            pairs.add((min(seqs), max(seqs)))
    return pairs


def match(
    truth: Iterable[Record],
    calls: Iterable[Record],
    fetch: Callable[[str, int, int], str] | None = None,
) -> tuple[dict[str, TypeCounts], list[Record], list[Record], list[tuple[Record, Record]], int]:
    """Counts per type, false positives, false negatives, genotype mismatches and the number of
    replayed clusters.

    Records match by key first. Then, when ``fetch(chrom, start, end)`` gives the reference
    (1-based, inclusive), the records left unmatched are grouped into clusters and each cluster
    replayed, as RTG vcfeval does for whole haplotypes (Cleary et al. 2015, bioRxiv 023754):
    the truth's records of the cluster and the calls' are applied to the reference, each in
    every phasing, and where one pair of haplotype sequences comes out of both, the two sides
    say the same thing in different records (a deletion and an SNV written as one shifted
    insertion) — all of the cluster's records then count as true positives with their
    genotypes matching. Key-matched records inside a cluster's span join its replay on both
    sides, so a shared record does not break the haplotypes."""
    t = _by_key(truth)
    c = _by_key(calls)
    counts = {k: TypeCounts() for k in TYPES}
    both = t.keys() & c.keys()
    fps = sorted((c[k] for k in c.keys() - both), key=lambda r: r.key)
    fns = sorted((t[k] for k in t.keys() - both), key=lambda r: r.key)
    replayed = 0
    if fetch is not None and fps and fns:
        # the key-matched records by chromosome, sorted, for a binary search per cluster (a
        # genome's millions of them are never scanned per cluster)
        shared: dict[str, list[Record]] = {}
        long_shared: dict[str, list[Record]] = {}
        for r in sorted((t[k] for k in both), key=lambda r: (r.chrom, r.pos)):
            (long_shared if len(r.ref) > LONG_REF else shared).setdefault(r.chrom, []).append(r)
        starts = {chrom: [r.pos for r in rs] for chrom, rs in shared.items()}
        rescued_fp, rescued_fn = set(), set()
        for group in _clusters([("fn", r) for r in fns] + [("fp", r) for r in fps]):
            sides = {side for side, _ in group}
            if sides != {"fn", "fp"}:
                continue
            chrom = group[0][1].chrom
            lo = min(r.pos for _, r in group)
            hi = max(r.pos + len(r.ref) - 1 for _, r in group)
            rs, ps = shared.get(chrom, []), starts.get(chrom, [])
            near = rs[bisect.bisect_left(ps, lo - LONG_REF) : bisect.bisect_right(ps, hi)]
            near += [r for r in long_shared.get(chrom, []) if r.pos <= hi]
            inside = [r for r in near if r.pos + len(r.ref) - 1 >= lo]
            lo = min([lo] + [r.pos for r in inside]) - 1
            hi = max([hi] + [r.pos + len(r.ref) - 1 for r in inside]) + 1
            lo = max(lo, 1)
            ref = fetch(chrom, lo, hi)
            tr = [r for side, r in group if side == "fn"] + inside
            cr = [r for side, r in group if side == "fp"] + [c[r.key] for r in inside]
            a = _haplotype_pairs(tr, lo, ref)
            b = _haplotype_pairs(cr, lo, ref)
            if a and b and a & b:
                replayed += 1
                rescued_fn.update(r.key for side, r in group if side == "fn")
                rescued_fp.update(r.key for side, r in group if side == "fp")
        for r in fns:
            if r.key in rescued_fn:
                counts[r.kind].tp += 1
                counts[r.kind].gt_match += 1
        for r in fps:
            if r.key in rescued_fp:
                counts[r.kind].tp_calls += 1
        fns = [r for r in fns if r.key not in rescued_fn]
        fps = [r for r in fps if r.key not in rescued_fp]
    mismatches = []
    for k in both:
        counts[t[k].kind].tp += 1
        counts[c[k].kind].tp_calls += 1
        if t[k].dosage == c[k].dosage:
            counts[t[k].kind].gt_match += 1
        else:
            mismatches.append((t[k], c[k]))
    for r in fps:
        counts[r.kind].fp += 1
    for r in fns:
        counts[r.kind].fn += 1
    mismatches.sort(key=lambda pair: pair[0].key)
    return counts, fps, fns, mismatches, replayed


def compare(
    truth_vcf: str | os.PathLike,
    calls_vcf: str | os.PathLike,
    reference: str | os.PathLike,
    *,
    sample: str | None = None,
    truth_sample: str | None = None,
    regions_bed: str | os.PathLike | None = None,
    min_qual: float = 0.0,
    pass_only: bool = False,
    replay: bool = True,
) -> AccuracyReport:
    """Score ``calls_vcf`` against ``truth_vcf`` (see the module's description of the method).

    Parameters
    ----------
    truth_vcf, calls_vcf
        VCFs (plain, gzip or bgzip) on ``reference``.
    reference
        FASTA, plain or bgzip (indexed or not) or gzip.
    sample, truth_sample
        The sample column of each; ``None`` when the file has exactly one.
    regions_bed
        Confident regions: only variants starting inside them count, in both sets.
    min_qual, pass_only
        Filters on the calls: QUAL at least ``min_qual``; FILTER ``PASS`` (or ``.``).
    replay
        Replay clusters of unmatched records as haplotypes (:func:`match`); ``False``: match
        by key only.

    Returns
    -------
    AccuracyReport
        TP, FP, FN, precision, recall, F1 and genotype concordance for SNVs and indels.
    """
    if min_qual < 0 or math.isnan(min_qual):
        raise InputError(f"min_qual must be 0 or more, not {min_qual}")
    regions = read_bed(regions_bed) if regions_bed is not None else None
    truth_vcf, calls_vcf = Path(truth_vcf), Path(calls_vcf)
    for label, path in (("truth VCF", truth_vcf), ("calls VCF", calls_vcf)):
        if not path.is_file():
            raise NotFoundError(f"{label} not found: {path}")
    with tempfile.TemporaryDirectory(prefix="sandgrain-accuracy-") as tmpdir:
        ref = _usable_reference(Path(reference), Path(tmpdir))
        results = []
        for label, path, name, mq, po in (
            (f"truth VCF {truth_vcf}", truth_vcf, truth_sample, 0.0, False),
            (f"calls VCF {calls_vcf}", calls_vcf, sample, min_qual, pass_only),
        ):
            out = Path(tmpdir) / "norm.vcf"
            _normalise(path, ref, Path(str(ref) + ".fai"), out)
            results.append(_parse(out, name, label, min_qual=mq, pass_only=po))
        (truth_name, truth), (call_name, calls) = results
        if regions is not None:
            truth, calls = _in_regions(truth, regions), _in_regions(calls, regions)
        if replay:
            import pysam

            with pysam.FastaFile(str(ref)) as fasta:
                counts, fps, fns, mismatches, replayed = match(
                    truth, calls, lambda chrom, a, b: fasta.fetch(chrom, a - 1, b).upper()
                )
        else:
            counts, fps, fns, mismatches, replayed = match(truth, calls)
    return AccuracyReport(
        types=counts,
        truth_sample=truth_name,
        sample=call_name,
        min_qual=min_qual,
        pass_only=pass_only,
        regions_bed=None if regions_bed is None else str(regions_bed),
        false_positives=fps,
        false_negatives=fns,
        genotype_mismatches=mismatches,
        replay=replay,
        replayed=replayed,
    )
