"""Genomic variant and individual queries over Beacon datasets.

All six genomic query forms of Beacon v2 (coordinates 0-based, as in the specification):

sequence
    ``referenceName``, ``start`` (one value), ``alternateBases`` and optionally
    ``referenceBases``: the variant starting there with those alleles. ``N`` in either allele
    matches any base. Alleles are compared in minimal representation, as they are stored.
range
    ``referenceName``, ``start``, ``end``: every variant overlapping ``[start, end)``; may be
    narrowed by ``variantType``, ``alternateBases``, ``referenceBases`` or ``aminoacidChange``.
bracket
    ``start = [s1, s2]``, ``end = [e1, e2]``: variants with ``s1 ≤ start ≤ s2`` and
    ``e1 ≤ end ≤ e2`` (structural variants with uncertain breakpoints).
geneId
    variants overlapping the gene (coordinates from :mod:`sandgrain.genome.gene_tables`), or
    annotated to it when no gene table of the assembly exists.
aminoacidChange
    ``V600E`` or ``p.Val600Glu``, from SnpEff ``ANN`` annotations; usually with ``geneId``.
genomicAlleleShortForm
    HGVS genomic notation: ``NC_000001.10:g.69224A>T``, ``…:g.123_125del``,
    ``…:g.123_124insAC``, ``…:g.123dup``, ``…:g.123_125delinsAG`` (``1:g.…`` also works).

A subset of individuals — ontology filters, revoked consent, or one individual — makes every
count exact for that subset: allele counts, allele numbers and carriers are recomputed from the
stored carrier lists, and a variant no remaining individual carries is not returned.

There is no range cap: a query spanning more than :data:`FANOUT_MIN_PARTITIONS` partitions
fans out on the fan-out engine, one task per group of partitions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..fanout import Split, Task, TaskBudget, run_plan
from ..fanout.budget import halves
from ..genome.assemblies import same_assembly
from ..genome.gene_tables import gene_regions
from .consent import revoked_ids
from .errors import DatasetChangedError
from .filters import filter_mask
from .request import MAX_LIMIT, check_count, check_granularity
from .store import BeaconCatalog, BeaconDataset, Partition
from .variants import TYPE_MATCHES, aa_short, minimal_representation, parse_variant_id

#: A query over more partitions than this fans out (when the caller gives an executor).
FANOUT_MIN_PARTITIONS = 16
#: Partitions one fan-out task scans.
PARTITIONS_PER_TASK = 8
#: Longest allele a query may give (with ``N`` wildcards, which become a pattern: shorter).
MAX_ALLELE = 100_000
MAX_WILDCARD_ALLELE = 1_000
_AA_CHANGE = re.compile(r"^[A-Z*]+\d+")
#: variantType values that mean structural variants: symbolic alleles and breakends only.
STRUCTURAL_QUERY_TYPES = {"CNV", "SV", "DUP", "INV", "BND"}
_ALLELE = re.compile(r"^[ACGTN]+$")
_HGVS = re.compile(
    r"(?P<seq>[^:\s]+):g\.(?P<s>[0-9]{1,12})(?:_(?P<e>[0-9]{1,12}))?"
    r"(?:(?P<sub>[ACGTN])>(?P<alt>[ACGTN])|(?P<op>delins|del|ins|dup)(?P<bases>[ACGTN]*))"
)


def _ints(value, what: str) -> list[int]:
    if value is None or value == "" or value == []:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    out = []
    for item in items:
        try:
            number = int(str(item).strip())
        except ValueError:
            raise InputError(f"{what} must be whole numbers (got {item!r})") from None
        if number < 0:
            raise InputError(f"{what} must not be negative (got {number})")
        out.append(number)
    if len(out) > 2:
        raise InputError(f"{what} takes one or two values (got {len(out)})")
    return out


def _bases(value, what: str) -> str | None:
    if value is None or value == "":
        return None
    text = _text(value, what).upper()
    if not _ALLELE.match(text):
        raise InputError(f"{what} must be DNA bases A, C, G, T or N (got {value!r:.60})")
    limit = MAX_WILDCARD_ALLELE if "N" in text else MAX_ALLELE
    if len(text) > limit:
        raise InputError(f"{what} may have at most {limit:,} bases here (got {len(text):,})")
    return text


def _text(value, what: str) -> str:
    """A request parameter that must be one word (a string, or a number for a name)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"{what} must be a single value, not {type(value).__name__}")
    return str(value).strip()


@dataclass
class VariantQuery:
    """One genomic query, in Beacon's request-parameter terms (see the module docstring)."""

    reference_name: str | None = None
    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    reference_bases: str | None = None
    alternate_bases: str | None = None
    variant_type: str | None = None
    aminoacid_change: str | None = None
    gene_id: str | None = None
    allele_short_form: str | None = None
    variant_id: str | None = None
    individual_id: str | None = None
    assembly_id: str | None = None
    min_length: int | None = None
    max_length: int | None = None

    PARAMS = {
        "referenceName": "reference_name",
        "start": "start",
        "end": "end",
        "referenceBases": "reference_bases",
        "alternateBases": "alternate_bases",
        "variantType": "variant_type",
        "aminoacidChange": "aminoacid_change",
        "geneId": "gene_id",
        "genomicAlleleShortForm": "allele_short_form",
        "assemblyId": "assembly_id",
        "variantMinLength": "min_length",
        "variantMaxLength": "max_length",
    }

    @classmethod
    def from_params(cls, params: dict) -> VariantQuery:
        """From Beacon ``requestParameters`` (GET query strings or a POST body alike)."""
        if "mateName" in params:
            raise InputError("mateName (fusion) queries are not supported by this Beacon")
        unknown = sorted(set(params) - set(cls.PARAMS))
        if unknown:
            raise InputError(
                f"unknown request parameter {unknown[0]!r}; known: {', '.join(cls.PARAMS)}"
            )
        kw = {cls.PARAMS[k]: v for k, v in params.items() if k in cls.PARAMS}
        names = {v: k for k, v in cls.PARAMS.items()}
        words = {}
        for name in ("reference_name", "variant_type", "aminoacid_change", "gene_id",
                     "allele_short_form", "assembly_id"):  # fmt: skip
            value = kw.get(name)
            words[name] = _text(value, names[name]) or None if value not in (None, "") else None
        lengths = {}
        for name in ("min_length", "max_length"):
            value = kw.get(name)
            lengths[name] = _ints(value, names[name])[0] if value not in (None, "", []) else None
        q = cls(
            start=_ints(kw.get("start"), "start"),
            end=_ints(kw.get("end"), "end"),
            reference_bases=_bases(kw.get("reference_bases"), "referenceBases"),
            alternate_bases=_bases(kw.get("alternate_bases"), "alternateBases"),
            **{k: v for k, v in words.items()},
            **lengths,
        )
        if q.variant_type:
            q.variant_type = q.variant_type.upper()
        q.check()
        return q

    @property
    def form(self) -> str:
        if self.variant_id:
            return "id"
        if self.allele_short_form:
            return "genomicAlleleShortForm"
        if len(self.start) == 2:
            return "bracket"
        if self.start and self.end:
            return "range"
        if self.start:
            return "sequence"
        if self.gene_id:
            return "geneId"
        if self.aminoacid_change:
            return "aminoacidChange"
        if self.individual_id:
            return "individual"
        return "none"

    def check(self) -> None:
        if self.aminoacid_change and not _AA_CHANGE.match(aa_short(self.aminoacid_change)):
            raise InputError(
                f"aminoacidChange {self.aminoacid_change!r:.60} is not a protein change like "
                "V600E or p.Val600Glu"
            )
        if self.variant_type and self.variant_type not in TYPE_MATCHES:
            raise InputError(
                f"variantType {self.variant_type!r} is not one of {', '.join(TYPE_MATCHES)}"
            )
        if (self.start or self.end) and not self.reference_name:
            raise InputError("start/end need referenceName")
        if self.reference_name and not self.start and not self.gene_id:
            raise InputError("referenceName needs start (and end for a range)")
        if self.end and not self.start:
            raise InputError("end needs start")
        form = self.form
        if form == "sequence" and not self.alternate_bases:
            raise InputError(
                "a sequence query needs alternateBases (or give end for a range query)"
            )
        if form == "range" and (len(self.end) != 1 or self.end[0] <= self.start[0]):
            raise InputError("a range query needs one end greater than start")
        if form == "bracket":
            if len(self.end) != 2:
                raise InputError("a bracket query needs start=[s1,s2] and end=[e1,e2]")
            if self.start[0] > self.start[1] or self.end[0] > self.end[1]:
                raise InputError(
                    "bracket bounds must be in order: start[0] ≤ start[1], end[0] ≤ end[1]"
                )
        if form == "genomicAlleleShortForm":
            parse_hgvs(self.allele_short_form)
        if form == "none":
            raise InputError(
                "no query: give referenceName with start (and end), geneId, aminoacidChange "
                "or genomicAlleleShortForm"
            )


@dataclass
class Hgvs:
    chrom: str
    accession: str
    start0: int  # first affected base, 0-based
    end0: int  # after the last affected base
    op: str  # sub, del, ins, dup, delins
    ref: str = ""
    alt: str = ""


def parse_hgvs(text: str) -> Hgvs:
    """Parse an HGVS genomic allele (den Dunnen et al. 2016, Hum Mutat 37:564)."""
    m = _HGVS.fullmatch(text.strip().replace(" ", ""))
    if not m:
        raise InputError(
            f"genomicAlleleShortForm {text!r} is not HGVS genomic notation like "
            "NC_000017.10:g.41245466G>A, …:g.123_125del, …:g.123_124insAC or …:g.123dup"
        )
    seq = m.group("seq")
    chrom = seq  # an accession or a name: each dataset resolves it by its own assembly
    s = int(m.group("s"))
    e = int(m.group("e") or s)
    if s < 1 or e < s:
        raise InputError(f"genomicAlleleShortForm {text!r}: positions must be 1-based and ordered")
    if m.group("sub"):
        if m.group("e"):
            raise InputError(f"{text!r}: a substitution is at one position (g.N, not g.N_M)")
        return Hgvs(chrom, seq, s - 1, s, "sub", m.group("sub"), m.group("alt"))
    op, bases = m.group("op"), m.group("bases") or ""
    if op == "ins":
        if e != s + 1 or not bases:
            raise InputError(f"{text!r}: an insertion is written g.N_N+1insBASES")
        return Hgvs(chrom, seq, s, s, "ins", "", bases)
    if op == "delins" and not bases:
        raise InputError(f"{text!r}: delins needs the inserted bases")
    if op == "del" and bases and len(bases) != e - s + 1:
        raise InputError(f"{text!r}: the deleted bases do not match the positions")
    return Hgvs(
        chrom, seq, s - 1, e, op, bases if op == "del" else "", bases if op != "del" else ""
    )


# -- individuals subsets ---------------------------------------------------------------------------
@dataclass
class Subset:
    """The individuals of one dataset a query counts: a boolean mask, or None for all."""

    mask: np.ndarray | None
    warnings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.mask is not None and not self.mask.any()


def subset_for(ds: BeaconDataset, filters: list[str], individual_id: str | None = None) -> Subset:
    warnings = []
    revoked = revoked_ids(ds.store, ds.id)
    n = len(ds.samples)
    mask = None
    if revoked:
        mask = np.ones(n, dtype=bool)
        for ident in revoked:
            i = ds.sample_index.get(ident)
            if i is not None:
                mask[i] = False
    if filters:  # canonical filter texts (:mod:`sandgrain.beacon.filters`)
        keep, missing = filter_mask(ds.individuals, ds.sample_index, filters, revoked)
        if missing:
            warnings.append(f"filter(s) not used in dataset {ds.id}: {', '.join(missing)}")
        mask = keep if mask is None else mask & keep
    if individual_id is not None:
        only = np.zeros(n, dtype=bool)
        i = ds.sample_index.get(individual_id)
        if i is not None:
            only[i] = True
        mask = only if mask is None else mask & only
    return Subset(mask, warnings)


# -- scanning --------------------------------------------------------------------------------------
@dataclass
class Matches:
    """Rows of one partition that match, with their (possibly subset-adjusted) counts."""

    part: Partition
    idx: np.ndarray
    ac: np.ndarray
    an: np.ndarray
    carriers: np.ndarray
    hom: np.ndarray
    hidden: int = 0  # rows dropped as rare (``pred["rare"]``)


T = TypeVar("T")


def on_current_version(ds: BeaconDataset, read: Callable[[BeaconDataset], T]) -> T:
    """``read(ds)``; if the dataset was re-ingested or removed while it was read
    (:class:`DatasetChangedError`), the catalog is refreshed and ``read`` runs once more on the
    version now published. The one place where a query asks again."""
    try:
        return read(ds)
    except DatasetChangedError:
        ds.catalog.refresh()
        return read(ds.catalog.get(ds.id))


@dataclass
class ScanPlan:
    """What a query reads from one dataset: the regions to scan ``[(chrom, start0, end0)]``
    (``chrom`` None: every chromosome; ``end0`` None: to its end) and the row predicate.

    Made once per dataset and query (:func:`plan_scan`); fan-out tasks get it as JSON
    (:meth:`to_json`) and scan with it, so no worker plans the query again.
    """

    regions: list[tuple]
    pred: dict

    def to_json(self) -> dict:
        pred = dict(self.pred)
        if "hgvs" in pred:
            pred["hgvs"] = asdict(pred["hgvs"])
        return {"regions": [list(r) for r in self.regions], "pred": pred}

    @classmethod
    def from_json(cls, doc: dict) -> ScanPlan:
        pred = dict(doc["pred"])
        if "hgvs" in pred:
            pred["hgvs"] = Hgvs(**pred["hgvs"])
        return cls([tuple(r) for r in doc["regions"]], pred)


def plan_scan(ds: BeaconDataset, q: VariantQuery, stores) -> ScanPlan:
    """The :class:`ScanPlan` of query ``q`` on ``ds`` (``stores`` hold the reference genomes and
    gene tables it may need)."""
    return ScanPlan(*_plan(ds, q, stores))


def _plan(ds: BeaconDataset, q: VariantQuery, stores) -> tuple[list[tuple], dict]:
    """Regions to scan [(chrom, start0, end0)] and the row predicate of a query on ``ds``."""
    # an allele no individual of the dataset carries is not there (sites-only VCFs excepted)
    pred: dict = {"carried": bool(ds.samples)}
    form = q.form
    chrom = None
    if q.reference_name:
        chrom = ds.resolve_chrom(q.reference_name)
        if chrom is None:
            return [], pred
    if form == "id":
        parsed = parse_variant_id(q.variant_id or "")
        if parsed is None:
            return [], pred
        c = ds.resolve_chrom(parsed[0])
        pred["vid"] = q.variant_id
        return ([(c, parsed[1], parsed[1] + 1)] if c else []), pred
    if form == "sequence":
        s = q.start[0]
        ref, alt = q.reference_bases, q.alternate_bases
        if ref and alt and "N" not in ref + alt:
            s, ref, alt = minimal_representation(s, ref, alt)
        pred["start_eq"] = s
        pred["ref"], pred["alt"] = ref, alt
        regions = [(chrom, s, s + 1)]
    elif form == "range":
        regions = [(chrom, q.start[0], q.end[0])]
        pred["overlap"] = (q.start[0], q.end[0])
    elif form == "bracket":
        regions = [(chrom, q.start[0], q.end[1])]
        pred["bracket"] = (q.start[0], q.start[1], q.end[0], q.end[1])
    elif form == "genomicAlleleShortForm":
        h = parse_hgvs(q.allele_short_form or "")
        c = ds.resolve_chrom(h.chrom)
        if c is None:
            return [], pred
        vcf = hgvs_to_vcf(h, stores, ds.assembly)
        if vcf is None:  # no reference genome: match the positions VCF uses
            pred["hgvs"] = h
            regions = [(c, max(0, h.start0 - 2), h.end0 + 1)]
        elif vcf is False:  # the HGVS bases contradict the reference
            return [], pred
        else:
            pred["start_eq"], pred["ref"], pred["alt"] = vcf
            regions = [(c, vcf[0], vcf[0] + 1)]
    elif form in ("geneId", "aminoacidChange", "individual"):
        regions = []
        if q.gene_id:
            found = gene_regions(stores, ds.assembly, q.gene_id)
            if found is None:
                pred["gene"] = q.gene_id
                regions = [(None, 0, None)]
            else:
                for c, s, e in found:
                    rc = ds.resolve_chrom(c)
                    if rc is not None:
                        regions.append((rc, s, e))
                        pred.setdefault("overlap_any", []).append((rc, s, e))
        else:
            regions = [(None, 0, None)]
    else:  # pragma: no cover - check() rejects it
        raise InputError("no query")
    if q.gene_id and form in ("sequence", "range", "bracket"):
        found = gene_regions(stores, ds.assembly, q.gene_id)
        if found is None:  # no gene table: the variants' own annotations
            pred["gene"] = q.gene_id
        else:
            pred["overlap_any"] = [
                (ds.resolve_chrom(c), s, e) for c, s, e in found if ds.resolve_chrom(c)
            ]
    if form != "sequence":
        if q.alternate_bases:
            pred["alt"] = q.alternate_bases
        if q.reference_bases:
            pred["ref"] = q.reference_bases
    if q.variant_type:
        pred["vtype"] = sorted(TYPE_MATCHES[q.variant_type])
        pred["symbolic"] = q.variant_type in STRUCTURAL_QUERY_TYPES
    if q.aminoacid_change:
        pred["aa"] = aa_short(q.aminoacid_change)
    if q.min_length is not None or q.max_length is not None:
        pred["span"] = (q.min_length or 0, q.max_length)
    return regions, pred


def hgvs_to_vcf(h: Hgvs, stores, assembly: str):
    """The left-aligned VCF form ``(start0, ref, alt)`` of an HGVS allele, with the reference
    genome of ``assembly`` from the stores (HGVS puts indels in repeats at their 3'-most
    position and writes copies as ``dup``; VCF left-aligns them). None when no genome of that
    assembly holds the chromosome; False when the HGVS's bases contradict the reference."""
    from .ingest import _reference_genome

    genome = None
    for store in stores:
        genome = _reference_genome(store, assembly)
        if genome is not None:
            break
    if genome is None:
        return None
    chrom = genome.names.get(h.chrom)  # None: not a chromosome of this genome
    if chrom is None:
        return None
    length = genome.length(chrom)
    if h.end0 > length:
        return False
    lo = max(0, h.start0 - 2000)
    seq = genome.sequence(chrom, lo, min(length, h.end0 + 1)).upper()

    def at(i: int) -> str:
        return seq[i - lo]

    if h.op == "sub":
        return (h.start0, h.ref, h.alt) if at(h.start0) == h.ref else False
    if h.op == "delins":
        ref = seq[h.start0 - lo : h.end0 - lo]
        return minimal_representation(h.start0, ref, h.alt)
    if h.op == "del":
        s0, e0 = h.start0, h.end0
        if h.ref and seq[s0 - lo : e0 - lo] != h.ref:
            return False
        while s0 - 1 > lo and at(s0 - 1) == at(e0 - 1):
            s0, e0 = s0 - 1, e0 - 1
        if s0 == 0:  # no base before it: VCF anchors on the base after (VCF 4.3, section 1.6.1)
            return (0, seq[: e0 + 1], at(e0)) if e0 < length else False
        return s0 - 1, seq[s0 - 1 - lo : e0 - lo], at(s0 - 1)
    # insertion (before 0-based h.start0) or duplication of [start0, end0) (inserted after it)
    inserted = h.alt if h.op == "ins" else seq[h.start0 - lo : h.end0 - lo]
    point = h.start0 if h.op == "ins" else h.end0
    while point - 1 > lo and at(point - 1) == inserted[-1]:
        inserted = inserted[-1] + inserted[:-1]
        point -= 1
    return point - 1, at(point - 1), at(point - 1) + inserted


def _allele_match(column: pa.Array, allele: str) -> np.ndarray:
    if "N" in allele:
        pattern = "^" + allele.replace("N", "[ACGTN]") + "$"
        return pc.match_substring_regex(column, pattern).to_numpy(zero_copy_only=False)
    return pc.equal(column, allele).to_numpy(zero_copy_only=False)


def _token_match(column: pa.Array, token: str, ignore_case: bool = False) -> np.ndarray:
    pattern = f"(^|;){re.escape(token)}(;|$)"
    return pc.match_substring_regex(column, pattern, ignore_case=ignore_case).to_numpy(
        zero_copy_only=False
    )


def _scan(part: Partition, region: tuple, pred: dict, subset: Subset, chrom: str) -> Matches:
    start0, end0 = part.start0, part.end0
    _, rs, re_ = region
    if "start_eq" in pred:
        lo = np.searchsorted(start0, pred["start_eq"], "left")
        hi = np.searchsorted(start0, pred["start_eq"], "right")
        idx = np.arange(lo, hi)
    elif re_ is None:
        idx = np.arange(start0.size)
    else:
        hi = np.searchsorted(start0, re_, "left")
        idx = np.flatnonzero(end0[:hi] > rs)
    if idx.size and "bracket" in pred:
        s1, s2, e1, e2 = pred["bracket"]
        s, e = start0[idx], end0[idx]
        idx = idx[(s >= s1) & (s <= s2) & (e >= e1) & (e <= e2)]
    if idx.size and "span" in pred:  # variantMin/MaxLength: the span on the reference
        lo, hi = pred["span"]
        span = end0[idx] - start0[idx]
        idx = idx[(span >= lo) & ((span <= hi) if hi is not None else True)]
    if idx.size and "overlap_any" in pred:
        keep = np.zeros(idx.size, dtype=bool)
        for c, s, e in pred["overlap_any"]:
            if c == chrom:
                keep |= (start0[idx] < e) & (end0[idx] > s)
        idx = idx[keep]
    t = part.table
    if idx.size and any(k in pred for k in ("ref", "alt", "vtype", "vid")):
        sub = t.take(pa.array(idx))
        keep = np.ones(idx.size, dtype=bool)
        if pred.get("ref"):
            keep &= _allele_match(sub.column("ref").combine_chunks(), pred["ref"])
        if pred.get("alt"):
            keep &= _allele_match(sub.column("alt").combine_chunks(), pred["alt"])
        if pred.get("vtype"):
            keep &= pc.is_in(sub.column("vtype"), pa.array(pred["vtype"])).to_numpy(
                zero_copy_only=False
            )
        if pred.get("symbolic"):  # structural: symbolic alleles and breakends only
            alts = sub.column("alt").combine_chunks()
            keep &= pc.match_substring_regex(alts, r"^<|\[|\]").to_numpy(zero_copy_only=False)
        if pred.get("vid"):
            keep &= pc.equal(sub.column("vid"), pred["vid"]).to_numpy(zero_copy_only=False)
        idx = idx[keep]
    if idx.size and ("gene" in pred or "aa" in pred):
        sub = t.take(pa.array(idx))
        keep = np.ones(idx.size, dtype=bool)
        if pred.get("gene"):
            keep &= _token_match(sub.column("genes").combine_chunks(), pred["gene"], True)
        if pred.get("aa"):
            keep &= _token_match(sub.column("aa").combine_chunks(), pred["aa"])
        idx = idx[keep]
    if idx.size and "hgvs" in pred:
        idx = idx[[_hgvs_match(pred["hgvs"], t, int(i)) for i in idx]]
    idx = idx.astype(np.int64)
    ac = t.column("ac").to_numpy()[idx].astype(np.int64)
    an = t.column("an").to_numpy()[idx].astype(np.int64)
    carriers = t.column("carriers").to_numpy()[idx].astype(np.int64)
    hom = t.column("hom").to_numpy()[idx].astype(np.int64)
    m = Matches(part, idx, ac, an, carriers, hom)
    if subset.mask is not None and idx.size:
        _restrict(m, subset.mask)
    elif pred.get("carried") and idx.size:
        _keep(m, carriers > 0)
    if pred.get("rare") and m.idx.size:
        _hide_rare(m, pred)
    return m


def _keep(m: Matches, keep: np.ndarray) -> None:
    for name in ("idx", "ac", "an", "carriers", "hom"):
        setattr(m, name, getattr(m, name)[keep])


def _hide_rare(m: Matches, pred: dict) -> None:
    """Drop the rows of rare alleles (:mod:`sandgrain.beacon.risk`): carried by fewer than
    ``pred["rare"]["carriers"]`` individuals of the answering group (alleles, for a dataset
    without genotypes), or below ``pred["rare"]["frequency"]``. A hidden row is answered as an
    absent one: the scan never sees it."""
    rule = pred["rare"]
    people = m.carriers if pred.get("carried") else m.ac
    rare = people < int(rule.get("carriers", 0))
    frequency = float(rule.get("frequency", 0.0))
    if frequency > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            rare |= (m.an > 0) & (m.ac / np.maximum(m.an, 1) < frequency)
    m.hidden = int(rare.sum())
    if m.hidden:
        _keep(m, ~rare)


def _hgvs_match(h, t: pa.Table, i: int) -> bool:
    s0 = int(t.column("start0")[i].as_py())
    ref = t.column("ref")[i].as_py()
    alt = t.column("alt")[i].as_py()
    if h.op == "sub":
        return s0 == h.start0 and ref == h.ref and alt == h.alt
    if h.op == "del":  # stored anchored: REF = anchor + deleted bases, ALT = anchor
        n = h.end0 - h.start0
        return (
            s0 == h.start0 - 1 and len(alt) == 1 and len(ref) == n + 1 and ref[0] == alt
            and (not h.ref or ref[1:] == h.ref)
        )  # fmt: skip
    if h.op in ("ins", "dup"):
        inserted = alt[1:] if len(ref) == 1 and len(alt) > 1 and alt[0] == ref else None
        if inserted is None:
            return False
        if h.op == "ins":
            return s0 == h.start0 - 1 and inserted == h.alt
        # a duplication of [start0, end0) is stored left-aligned before it, or after it
        n = h.end0 - h.start0
        return len(inserted) == n and s0 in (h.start0 - 1, h.end0 - 1)
    # delins: ref spans the affected bases (in minimal representation)
    return s0 == h.start0 and len(ref) == h.end0 - h.start0 and alt == h.alt


def _restrict(m: Matches, mask: np.ndarray) -> None:
    """Recompute the counts of matched rows for the individuals in ``mask``; drop rows that no
    individual of the subset carries."""
    heavy = m.part.heavy
    assert heavy is not None, "subset queries read the genotype columns"
    take = pa.array(m.idx)
    n = m.idx.size
    ci = heavy.column("carrier_idx").take(take).combine_chunks()
    cd = heavy.column("carrier_dose").take(take).combine_chunks()
    ei = heavy.column("exc_idx").take(take).combine_chunks()
    ec = heavy.column("exc_called").take(take).combine_chunks()
    ploidy = heavy.column("ploidy").to_numpy()[m.idx].astype(np.int64)
    values = ci.flatten().to_numpy()
    doses = cd.flatten().to_numpy().astype(np.int64)
    rows = np.repeat(np.arange(n), np.diff(ci.offsets.to_numpy()))
    inside = mask[values]
    m.carriers = np.bincount(rows, weights=inside, minlength=n).astype(np.int64)
    m.ac = np.bincount(rows, weights=inside * doses, minlength=n).astype(np.int64)
    m.hom = np.bincount(rows, weights=inside & (doses >= 2), minlength=n).astype(np.int64)
    evalues = ei.flatten().to_numpy()
    ecalled = ec.flatten().to_numpy().astype(np.int64)
    erows = np.repeat(np.arange(n), np.diff(ei.offsets.to_numpy()))
    missing = np.bincount(
        erows, weights=mask[evalues] * (ploidy[erows] - ecalled), minlength=n
    ).astype(np.int64)
    m.an = ploidy * int(mask.sum()) - missing
    _keep(m, m.carriers > 0)


def _row(ds_id: str, assembly: str, chrom: str, m: Matches, j: int, mask, samples) -> dict:
    t = m.part.table
    i = int(m.idx[j])
    ac, an = int(m.ac[j]), int(m.an[j])
    get = lambda name: t.column(name)[i].as_py()  # noqa: E731
    split = lambda name: [x for x in (get(name) or "").split(";") if x]  # noqa: E731
    row = {
        "dataset": ds_id,
        "assembly": assembly,
        "variant_id": get("vid"),
        "chrom": chrom,
        "start0": int(get("start0")),
        "end0": int(get("end0")),
        "ref": get("ref"),
        "alt": get("alt"),
        "variant_type": get("vtype"),
        "ids": split("ids"),
        "ac": ac,
        "an": an,
        "af": (ac / an) if an else None,
        "carriers": int(m.carriers[j]),
        "hom": int(m.hom[j]),
        "genes": split("genes"),
        "aa_changes": split("aa"),
        "effects": split("effects"),
    }
    if samples is not None:
        heavy = m.part.heavy
        idx = heavy.column("carrier_idx")[i].values.to_numpy()
        dose = heavy.column("carrier_dose")[i].values.to_numpy()
        if mask is not None:
            keep = mask[idx]
            idx, dose = idx[keep], dose[keep]
        row["carrier_ids"] = [samples[k] for k in idx]
        row["carrier_dosage"] = [int(d) for d in dose]
    return row


@dataclass
class DatasetAnswer:
    """The answer of one dataset: the number of matches and the requested page of rows."""

    dataset: str
    count: int
    rows: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: rows answered as absent because their allele is rare (never shown to the caller)
    hidden: int = 0
    #: the lowest allele frequency among the counted rows (None: none, or no called alleles)
    rarest: float | None = None

    def add_stats(self, hidden: int, rarest: float | None) -> None:
        self.hidden += hidden
        if rarest is not None and (self.rarest is None or rarest < self.rarest):
            self.rarest = rarest


def scan_dataset(
    ds: BeaconDataset,
    plan: ScanPlan,
    *,
    subset: Subset,
    skip: int = 0,
    limit: int = 10,
    records: bool = False,
    carriers: bool = False,
    partitions: list[str] | None = None,
) -> DatasetAnswer:
    """Scan (some of) a dataset's partitions in this process, as ``plan`` says."""
    answer = DatasetAnswer(ds.id, 0, warnings=list(subset.warnings))
    if not plan.regions or subset.empty:
        return answer
    for p, region in scan_order(ds, plan.regions, partitions):
        _scan_into(answer, ds, p, region, plan.pred, subset, skip, limit, records, carriers)
    return answer


def scan_order(ds: BeaconDataset, regions: list[tuple], partitions=None) -> list[tuple]:
    """The partitions a scan of ``regions`` reads, each with the region it is scanned for,
    ``[(partition, region)]`` in the order their rows are returned: regions in order, each
    partition once (for the first region it overlaps), only those in ``partitions`` if given.
    A subset of the partitions keeps the same relative order, so answers of any grouping of
    them, merged in order, equal the answer of one scan."""
    wanted = None if partitions is None else set(partitions)
    seen: set[str] = set()
    order = []
    for region in regions:
        chrom, rs, re_ = region
        for p in ds.partitions_for(chrom, rs, re_):
            if p["file"] in seen or (wanted is not None and p["file"] not in wanted):
                continue
            seen.add(p["file"])
            order.append((p, region))
    return order


def _scan_into(answer, ds, p, region, pred, subset, skip, limit, records, carriers) -> None:
    """Scan partition ``p`` for ``region`` into ``answer``: its count, and its rows that fall
    in the page ``[skip, skip + limit)`` of the rows counted so far."""
    part = ds.partition(p["file"], heavy=subset.mask is not None or carriers)
    m = _scan(part, region, pred, subset, p["chrom"])
    n = int(m.idx.size)
    called = m.an > 0
    answer.add_stats(m.hidden, float((m.ac[called] / m.an[called]).min()) if called.any() else None)
    if records and n:
        samples = ds.samples if carriers else None
        lo = max(0, skip - answer.count)
        hi = min(n, skip + limit - answer.count)
        for j in range(lo, hi):
            answer.rows.append(_row(ds.id, ds.assembly, p["chrom"], m, j, subset.mask, samples))
    answer.count += n


def scan_task(
    store: dict, dataset: str, version: str, plan: dict, filters: list[str],
    individual_id: str | None, files: list[str], keep: int, carriers: bool,
    budget: dict | None = None,
) -> dict | Split:  # fmt: skip
    """Fan-out task: scan ``files`` of one dataset version with the query's ``plan``
    (:meth:`ScanPlan.to_json`) → the count and first ``keep`` rows.

    The task measures itself against its ``budget`` (:class:`~sandgrain.fanout.TaskBudget`
    JSON: time and bytes read) after each partition; once over, it returns what it scanned as
    ``Split(done=…)`` and the partitions left as two new scan tasks (which may split again), so
    a group too big for one function finishes in several. Each part keeps its own first
    ``keep`` rows, so the merge in plan order (:func:`_fan_out`) is the same whatever the split.
    """
    from ..storage import Store
    from .ingest import KIND

    st = Store.from_reference(store)
    catalog = BeaconCatalog([st], ttl=1e9)
    ds = BeaconDataset(st.open_dataset(KIND, dataset, version), catalog)
    subset = subset_for(ds, filters, individual_id)
    scan = ScanPlan.from_json(plan)
    answer = DatasetAnswer(ds.id, 0)
    if not scan.regions or subset.empty:
        return {"count": 0, "rows": [], "hidden": 0, "rarest": None}
    order = scan_order(ds, scan.regions, files)
    sizes = ds.dataset.manifest.get("files", {})
    meter = TaskBudget.from_json(budget).meter()
    for n, (p, region) in enumerate(order):
        if meter.over():
            rows = {q["file"]: q.get("rows", 0) for q, _ in order}
            rest = [q["file"] for q, _ in order[n:]]
            args = dict(
                store=store, dataset=dataset, version=version, plan=plan, filters=filters,
                individual_id=individual_id, keep=keep, carriers=carriers, budget=budget,
            )  # fmt: skip
            tasks = tuple(
                Task(
                    "sandgrain.beacon.query:scan_task",
                    dict(args, files=part),
                    key=f"{dataset} partitions {part[0]}…",
                    weight=sum(rows[f] for f in part),
                )
                for part in halves(rest)
            )
            done = {
                "count": answer.count, "rows": answer.rows, "hidden": answer.hidden,
                "rarest": answer.rarest,
            }  # fmt: skip
            return Split(tasks, done=done, done_weight=sum(rows[q["file"]] for q, _ in order[:n]))
        _scan_into(answer, ds, p, region, scan.pred, subset, 0, keep, keep > 0, carriers)
        meter.add(sizes.get(p["file"], {}).get("size", 0))
    return {
        "count": answer.count, "rows": answer.rows, "hidden": answer.hidden,
        "rarest": answer.rarest,
    }  # fmt: skip


def query_variants(
    catalog: BeaconCatalog,
    datasets: list[BeaconDataset],
    q: VariantQuery,
    *,
    filters: list[str] = (),
    skip: int = 0,
    limit: int = 10,
    granularity: str = "record",
    carriers: bool = False,
    executor=None,
    task_budget: TaskBudget | None = None,
) -> list[DatasetAnswer]:
    """Answer ``q`` from each dataset (one :class:`DatasetAnswer` each, in order).

    ``skip``, ``limit`` (lowered to :data:`MAX_LIMIT`) and ``granularity`` are checked here, for
    callers that did not build a :class:`~sandgrain.beacon.request.BeaconRequest`; then see
    :func:`answer_variants`.
    """
    check_granularity(granularity)
    skip = check_count(skip, "skip")
    limit = min(check_count(limit, "limit"), MAX_LIMIT)
    return answer_variants(
        catalog, datasets, q, filters=filters, skip=skip, limit=limit,
        records=granularity == "record", carriers=carriers, executor=executor,
        task_budget=task_budget,
    )  # fmt: skip


def answer_variants(
    catalog: BeaconCatalog,
    datasets: list[BeaconDataset],
    q: VariantQuery,
    *,
    filters: list[str] = (),
    skip: int = 0,
    limit: int = 10,
    records: bool = False,
    carriers: bool = False,
    executor=None,
    task_budget: TaskBudget | None = None,
    rare: dict[str, dict] | None = None,
) -> list[DatasetAnswer]:
    """Answer ``q`` from each dataset, with paging already checked (by a
    :class:`~sandgrain.beacon.request.BeaconRequest` or :func:`query_variants`).

    ``records`` lists the page of matching rows, ``carriers`` adds the carrying individuals to
    them. With an ``executor`` (a URL, an open fan-out executor, or a function returning one
    when first needed), a dataset whose scan spans more than :data:`FANOUT_MIN_PARTITIONS`
    partitions is scanned by fan-out tasks, each within ``task_budget`` (a
    :class:`~sandgrain.fanout.TaskBudget`; default: no time limit): a task over it hands the
    partitions it has not scanned on as new tasks (:func:`scan_task`), with the same answer. A
    dataset re-ingested meanwhile is answered from its new version (:func:`on_current_version`).

    ``rare`` maps a dataset id to its rare-allele rule (``{"carriers": n, "frequency": f}``,
    :mod:`sandgrain.beacon.risk`): rows of rarer alleles are answered as absent.
    """
    filters = list(filters)
    rare = rare or {}
    return [
        on_current_version(ds, lambda ds: _answer_one(
            catalog, ds, q, filters, skip, limit, records, carriers, executor, task_budget,
            rare.get(ds.id)))
        for ds in datasets
    ]  # fmt: skip


def _answer_one(catalog, ds, q, filters, skip, limit, records, carriers, executor, budget, rare):
    if q.assembly_id and not same_assembly(q.assembly_id, ds.assembly):
        return DatasetAnswer(ds.id, 0)
    subset = subset_for(ds, filters, q.individual_id)
    plan = plan_scan(ds, q, catalog.stores)
    if rare:
        plan.pred["rare"] = dict(rare)
    files = []
    for chrom, rs, re_ in plan.regions:
        files.extend(p["file"] for p in ds.partitions_for(chrom, rs, re_))
    files = list(dict.fromkeys(files))
    if executor is not None and len(files) > FANOUT_MIN_PARTITIONS and not subset.empty:
        ex = executor() if callable(executor) else executor
        return _fan_out(
            ds, q, filters, files, skip, limit, records, carriers, ex, subset, plan, budget
        )
    return scan_dataset(
        ds, plan, subset=subset, skip=skip, limit=limit, records=records, carriers=carriers,
    )  # fmt: skip


def _fan_out(ds, q, filters, files, skip, limit, records, carriers, executor, subset, plan,
             budget=None):  # fmt: skip
    groups = [files[i : i + PARTITIONS_PER_TASK] for i in range(0, len(files), PARTITIONS_PER_TASK)]
    keep = skip + limit if records else 0
    rows = {p["file"]: p.get("rows", 0) for p in ds.meta.get("partitions", [])}
    tasks = [
        Task(
            "sandgrain.beacon.query:scan_task",
            dict(
                store=ds.store.reference(),
                dataset=ds.id,
                version=ds.version,
                plan=plan.to_json(),
                filters=filters,
                individual_id=q.individual_id,
                files=group,
                keep=keep,
                carriers=carriers,
                budget=(budget or TaskBudget()).to_json(),
            ),  # fmt: skip
            key=f"{ds.id} partitions {group[0]}…",
            weight=sum(rows.get(f, 0) for f in group),  # records scanned, for progress
        )
        for group in groups
    ]
    results = run_plan(tasks, executor, retries=1, store_probe=ds.store.probe)
    answer = DatasetAnswer(ds.id, sum(r["count"] for r in results), warnings=list(subset.warnings))
    for r in results:
        answer.add_stats(r.get("hidden", 0), r.get("rarest"))
    if records:
        # each task kept its first rows; in plan order, the first skip+limit overall are here
        ordered, before = [], 0
        for r in results:
            ordered.extend(r["rows"][: max(0, skip + limit - before)])
            before += r["count"]
            if before >= skip + limit:
                break
        answer.rows = ordered[skip : skip + limit]
    return answer


# -- individuals -----------------------------------------------------------------------------------
def query_individuals(
    ds: BeaconDataset,
    *,
    filters: list[str] = (),
    individual_id: str | None = None,
    variant_id: str | None = None,
    catalog: BeaconCatalog | None = None,
    skip: int = 0,
    limit: int = 10,
) -> DatasetAnswer:
    """Individuals of one dataset matching the filters (and carrying ``variant_id`` if given),
    never a revoked one. ``skip`` and ``limit`` (lowered to :data:`MAX_LIMIT`) are checked
    here; then see :func:`answer_individuals`."""
    skip = check_count(skip, "skip")
    limit = min(check_count(limit, "limit"), MAX_LIMIT)
    return answer_individuals(
        ds, filters=filters, individual_id=individual_id, variant_id=variant_id,
        catalog=catalog, skip=skip, limit=limit,
    )  # fmt: skip


def answer_individuals(
    ds: BeaconDataset,
    *,
    filters: list[str] = (),
    individual_id: str | None = None,
    variant_id: str | None = None,
    catalog: BeaconCatalog | None = None,
    skip: int = 0,
    limit: int = 10,
    rare: dict | None = None,
) -> DatasetAnswer:
    """:func:`query_individuals` with paging already checked; a dataset re-ingested meanwhile
    is answered from its new version (:func:`on_current_version`). With a ``rare`` rule
    (:func:`answer_variants`), the carriers of a rare ``variant_id`` are not counted: the
    variant is answered as absent."""
    return on_current_version(ds, lambda ds: _individuals_of(
        ds, list(filters), individual_id, variant_id, catalog, skip, limit, rare))  # fmt: skip


def _individuals_of(ds, filters, individual_id, variant_id, catalog, skip, limit, rare=None):
    subset = subset_for(ds, filters, individual_id)
    mask = subset.mask if subset.mask is not None else np.ones(len(ds.samples), dtype=bool)
    if individual_id is not None and individual_id not in ds.sample_index:
        mask = np.zeros(len(ds.samples), dtype=bool)
    if variant_id is not None:
        q = VariantQuery(variant_id=variant_id)
        plan = plan_scan(ds, q, catalog.stores if catalog else [ds.store])
        if rare:
            plan.pred["rare"] = dict(rare)
        a = scan_dataset(ds, plan, subset=Subset(mask), limit=1, records=True, carriers=True)
        carrying = np.zeros(len(ds.samples), dtype=bool)
        for row in a.rows:
            for ident in row["carrier_ids"]:
                carrying[ds.sample_index[ident]] = True
        mask = mask & carrying
    chosen = np.flatnonzero(mask)
    answer = DatasetAnswer(ds.id, int(chosen.size), warnings=subset.warnings)
    if variant_id is not None:
        answer.add_stats(a.hidden, a.rarest)
    people = ds.individuals
    answer.rows = [dict(people[i], dataset=ds.id) for i in chosen[skip : skip + limit]]
    return answer
