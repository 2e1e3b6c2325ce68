"""Candidate target sites: every place in a target where a nuclease could cut.

Coordinates
-----------
A :class:`Candidate`'s ``start0``/``end0`` is the protospacer's span on the forward strand,
0-based half-open, whichever strand it reads on; ``start``/``end`` give it 1-based inclusive for
output. ``strand`` is the strand the protospacer reads 5'→3' on: on ``-`` its sequence is the
reverse complement of the forward bases ``start0..end0``.

``cut`` is a boundary, not a base: the cut lies between forward-strand bases ``cut - 1`` and
``cut`` (0-based). The same number is the 1-based position of the last base before the cut, which
is how outputs report it. From the nuclease's ``cut_offset`` (protospacer bases before the cut,
counted from the protospacer's 5' end, see :mod:`sandgrain.guides.nucleases`):
``cut = start0 + cut_offset`` on ``+`` and ``cut = end0 - cut_offset`` on ``-``.

Which sites a target yields
---------------------------
Both strands are scanned. A site counts for a target region when its **cut lies within the
region, edges included**: ``region.start0 <= cut <= region.end0``. A cut at the very edge of an
exon still breaks it, and a site whose protospacer hangs out of the region is found because the
scan reads flanks past both ends. (``cut_within=False`` instead keeps every site that overlaps the
region by at least one base.) Sites whose protospacer or PAM holds an ``N`` (or any letter other
than A/C/G/T) are skipped. Soft-masked (lowercase) bases are scanned like any other; the
protospacer is reported in uppercase and :attr:`Candidate.masked` counts its lowercase bases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from ..errors import InputError
from ..genome.regions import Region, reverse_complement
from .iupac import compile_regex, reverse_complement_pattern
from .nucleases import Nuclease, get_nuclease

__all__ = [
    "CONTEXT_FLANK_3",
    "CONTEXT_FLANK_5",
    "MAX_TARGET_BP",
    "WITHIN",
    "Candidate",
    "check_target_size",
    "check_within",
    "clean_sequence",
    "find_candidates",
    "find_candidates_in_regions",
    "find_candidates_in_sequence",
    "gene_regions",
    "site_candidate",
]

#: Largest target (bp, summed over its regions) designed at once unless ``max_bp`` says otherwise.
MAX_TARGET_BP = 1_000_000

#: Bases before the protospacer and after the PAM in :attr:`Candidate.context30` (Rule Set 1's
#: 30-mer, Doench et al. 2014: 4 + 20 + 3 + 3).
CONTEXT_FLANK_5 = 4
CONTEXT_FLANK_3 = 3

#: What of a gene :func:`gene_regions` can target.
WITHIN = ("exons", "cds", "gene")


@dataclass(frozen=True)
class Candidate:
    """One candidate target site (see the module's coordinate conventions).

    Attributes
    ----------
    protospacer
        Uppercase, 5'→3' on ``strand``; the guide's spacer (T for U).
    pam
        The PAM as it stands in the genome on ``strand``, uppercase.
    chrom, start0, end0
        The protospacer's span on the forward strand, 0-based half-open.
    strand
        ``+`` or ``-``: the strand the protospacer reads on.
    cut
        The cut boundary on the forward strand: between bases ``cut - 1`` and ``cut``.
    gc
        GC fraction of the protospacer, 0..1.
    tttt
        The protospacer holds ``TTTT``, which ends Pol III (U6) transcription early.
    masked
        Number of soft-masked (lowercase) protospacer bases in the genome as stored.
    context30
        For 20-nt nucleases with a 3-nt 3' PAM (SpCas9-like): 4 nt 5' + protospacer + PAM + 3 nt
        3' on ``strand``, uppercase, as Rule Set 1 wants; ``None`` when those flanks run off the
        chromosome (or the sequence), and for other nucleases.
    pam_side
        The nuclease's PAM side (``"3"`` or ``"5"``), so the site's full span can be derived.
    """

    protospacer: str
    pam: str
    chrom: str
    start0: int
    end0: int
    strand: str
    cut: int
    gc: float
    tttt: bool
    masked: int
    context30: str | None = None
    pam_side: str = "3"

    @property
    def start(self) -> int:
        """First protospacer base on the forward strand, 1-based."""
        return self.start0 + 1

    @property
    def end(self) -> int:
        """Last protospacer base on the forward strand, 1-based inclusive."""
        return self.end0

    @property
    def site(self) -> str:
        """Protospacer and PAM in their 5'→3' order on ``strand``."""
        return self.protospacer + self.pam if self.pam_side == "3" else self.pam + self.protospacer

    @property
    def site_start0(self) -> int:
        """Start of protospacer + PAM on the forward strand (0-based)."""
        pam_left = (self.strand == "+") == (self.pam_side == "5")
        return self.start0 - len(self.pam) if pam_left else self.start0

    @property
    def site_end0(self) -> int:
        """End of protospacer + PAM on the forward strand (0-based, exclusive)."""
        pam_left = (self.strand == "+") == (self.pam_side == "5")
        return self.end0 if pam_left else self.end0 + len(self.pam)

    @property
    def region(self) -> Region:
        """The protospacer as a :class:`~sandgrain.genome.regions.Region` on its strand."""
        return Region(self.chrom, self.start0, self.end0, self.strand)

    def to_dict(self) -> dict:
        """Output fields: ``sequence`` (the protospacer), ``start``/``end`` 1-based inclusive,
        ``cut`` as the 1-based position of the last base before the cut (forward strand)."""
        d = asdict(self)
        d.pop("start0")
        d.pop("end0")
        d.pop("pam_side")
        return {
            "sequence": d.pop("protospacer"),
            "pam": d.pop("pam"),
            "chrom": d.pop("chrom"),
            "start": self.start,
            "end": self.end,
            **d,
        }


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------


def _merge(parts: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for s, e in sorted(parts):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def check_within(within: str) -> str:
    """``within`` normalised (``exons``, ``cds`` or ``gene``), or an InputError."""
    key = str(within).strip().lower()
    if key not in WITHIN:
        raise InputError(f"--within must be one of {', '.join(WITHIN)}, not {within!r}")
    return key


def gene_regions(gene, within: str = "exons") -> list[Region]:
    """The parts of a gene to target, sorted and disjoint (overlapping or abutting parts joined).

    ``within``: ``exons`` (default; a gene without exon records is one exon, itself), ``cds``
    (coding parts; a gene without CDS, e.g. a tRNA, is an error) or ``gene`` (its whole span,
    introns included). Regions carry the gene's strand; a gene whose strand the annotation does
    not give (``.``, as GFF3 allows) is read on ``+`` (guides are searched on both strands
    anyway; only positions measured along the gene, such as % into the CDS, assume it).
    """
    key = check_within(within)
    name = getattr(gene, "symbol", None) or getattr(gene, "gene_id", "the gene")
    if key == "gene":
        parts = [(gene.start0, gene.end0)]
    elif key == "exons":
        parts = list(gene.exons) or [(gene.start0, gene.end0)]
    else:
        parts = list(gene.cds)
        if not parts:
            biotype = getattr(gene, "biotype", "")
            kind = f" ({biotype})" if biotype else ""
            raise InputError(
                f"gene {name}{kind} has no CDS: it codes for no protein in the annotation; "
                f"target its exons (--within exons) or its whole span (--within gene)"
            )
    strand = gene.strand if gene.strand in ("+", "-") else "+"
    return [Region(gene.chrom, s, e, strand) for s, e in _merge(parts)]


def check_target_size(total: int, what: str, max_bp: int | None) -> None:
    """An InputError when a target of ``total`` bp is over ``max_bp`` (``None``:
    :data:`MAX_TARGET_BP`; 0: no limit); ``what`` names the target in the message."""
    limit = MAX_TARGET_BP if max_bp is None else max_bp
    if limit and total > limit:
        raise InputError(
            f"{what} is {total:,} bp, more than the limit of {limit:,} bp for one design; "
            f"choose a smaller target or raise the limit (max_bp=…, --max-target-bp on the "
            f"command line)"
        )


# --------------------------------------------------------------------------------------------
# scanning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SitePatterns:
    """Look-ahead expressions finding every site on each strand in forward-strand text."""

    plus: re.Pattern
    minus: re.Pattern


def _site_patterns(nuclease: Nuclease) -> _SitePatterns:
    proto = "N" * nuclease.guide_length
    site = proto + nuclease.pam if nuclease.pam_side == "3" else nuclease.pam + proto
    # N → [ACGT]: a protospacer or PAM with an N (or another ambiguity letter) is no site.
    plus = compile_regex(site)
    minus = compile_regex(reverse_complement_pattern(site))
    return _SitePatterns(re.compile(f"(?=({plus.pattern}))"), re.compile(f"(?=({minus.pattern}))"))


def _has_context30(nuclease: Nuclease) -> bool:
    return nuclease.pam_side == "3" and nuclease.guide_length == 20 and len(nuclease.pam) == 3


def _scan(
    text: str,
    offset: int,
    chrom: str,
    chrom_length: int,
    lo: int,
    hi: int,
    nuclease: Nuclease,
    cut_within: bool,
) -> list[Candidate]:
    """Sites in ``text`` (forward strand, as stored, starting at ``offset`` on a chromosome of
    ``chrom_length``) that belong to the target region ``lo..hi`` (0-based half-open), by the
    module's rule: ``lo <= cut <= hi``, or the site overlapping it when not ``cut_within``."""
    upper = text.upper()
    patterns = _site_patterns(nuclease)
    context = _has_context30(nuclease)
    out: list[Candidate] = []
    for strand, rx in (("+", patterns.plus), ("-", patterns.minus)):
        for m in rx.finditer(upper):
            c = _candidate(text, m.start(), offset, chrom, chrom_length, strand, nuclease, context)
            keep = lo <= c.cut <= hi if cut_within else c.site_start0 < hi and c.site_end0 > lo
            if keep:
                out.append(c)
    out.sort(key=lambda c: (c.start0, c.strand))
    return out


def _candidate(
    text: str,
    i: int,
    offset: int,
    chrom: str,
    chrom_length: int,
    strand: str,
    nuclease: Nuclease,
    context: bool,
) -> Candidate:
    glen, plen, slen = nuclease.guide_length, len(nuclease.pam), nuclease.site_length
    fwd = text[i : i + slen]
    site = fwd if strand == "+" else reverse_complement(fwd)
    if nuclease.pam_side == "3":
        proto, pam = site[:glen], site[glen:]
    else:
        pam, proto = site[:plen], site[plen:]
    # forward-strand span of the protospacer
    left = (strand == "+") == (nuclease.pam_side == "3")
    start0 = offset + i + (0 if left else plen)
    end0 = start0 + glen
    cut = start0 + nuclease.cut_offset if strand == "+" else end0 - nuclease.cut_offset
    upper = proto.upper()
    gc = (upper.count("G") + upper.count("C")) / glen
    ctx = None
    if context:
        site0 = offset + i
        if strand == "+":
            lo, hi = site0 - CONTEXT_FLANK_5, site0 + slen + CONTEXT_FLANK_3
        else:
            lo, hi = site0 - CONTEXT_FLANK_3, site0 + slen + CONTEXT_FLANK_5
        if lo >= 0 and hi <= chrom_length and lo >= offset and hi <= offset + len(text):
            piece = text[lo - offset : hi - offset].upper()
            ctx = piece if strand == "+" else reverse_complement(piece)
    return Candidate(
        protospacer=upper,
        pam=pam.upper(),
        chrom=chrom,
        start0=start0,
        end0=end0,
        strand=strand,
        cut=cut,
        gc=gc,
        tttt="TTTT" in upper,
        masked=sum(1 for b in proto if b.islower()),
        context30=ctx,
        pam_side=nuclease.pam_side,
    )


def site_candidate(genome, chrom: str, start0: int, strand: str, nuclease: Nuclease) -> Candidate:
    """The candidate whose protospacer spans ``start0`` … on ``strand`` of ``chrom`` (a site an
    off-target search found, e.g. a given guide's perfect site), read from ``genome`` as a scan
    would make it: PAM as it stands there (whichever PAM it matched), cut, soft-masked bases and
    the 30-mer context. An :class:`~sandgrain.errors.InputError` when its PAM runs off the
    chromosome."""
    chrom = genome.resolve_chrom(chrom)
    length = genome.length(chrom)
    pam_left = (strand == "+") == (nuclease.pam_side == "5")
    site0 = start0 - len(nuclease.pam) if pam_left else start0
    if site0 < 0 or site0 + nuclease.site_length > length:
        raise InputError(f"the site at {chrom}:{start0 + 1} ({strand}) runs off the chromosome")
    margin = _margin(nuclease)
    lo, hi = max(0, site0 - margin), min(length, site0 + nuclease.site_length + margin)
    text = genome.sequence(chrom, lo, hi)
    return _candidate(
        text, site0 - lo, lo, chrom, length, strand, nuclease, _has_context30(nuclease)
    )


def _margin(nuclease: Nuclease) -> int:
    # a kept site lies within one site length of the region; its 30-mer reaches a few bases more
    return nuclease.site_length + CONTEXT_FLANK_5 + CONTEXT_FLANK_3


def find_candidates(
    genome,
    region: Region,
    nuclease: Nuclease | str,
    *,
    cut_within: bool = True,
    max_bp: int | None = None,
) -> list[Candidate]:
    """Every candidate site of ``nuclease`` for ``region`` of ``genome``, both strands.

    Kept: sites whose cut lies within the region, edges included (or, with
    ``cut_within=False``, every site overlapping it); see the module's rules. Sorted by
    ``(start0, strand)``. A region longer than ``max_bp`` (default :data:`MAX_TARGET_BP`; 0 for no
    limit) is an :class:`~sandgrain.errors.InputError`.
    """
    nuclease = get_nuclease(nuclease)
    chrom = genome.resolve_chrom(region.chrom)
    length = genome.length(chrom)
    if region.end0 > length:
        raise InputError(f"region {region} is out of range: chromosome {chrom} has {length:,} bp")
    check_target_size(region.length, f"target {region}", max_bp)
    margin = _margin(nuclease)
    lo, hi = max(0, region.start0 - margin), min(length, region.end0 + margin)
    text = genome.sequence(chrom, lo, hi)
    return _scan(text, lo, chrom, length, region.start0, region.end0, nuclease, cut_within)


def find_candidates_in_regions(
    genome,
    regions: Sequence[Region],
    nuclease: Nuclease | str,
    *,
    cut_within: bool = True,
    max_bp: int | None = None,
) -> list[Candidate]:
    """Candidates of several regions (a gene's exons), each site once, sorted by
    ``(chrom order of first appearance, start0, strand)``. The size limit applies to the sum."""
    nuclease = get_nuclease(nuclease)
    total = sum(r.length for r in regions)
    what = f"target {regions[0]}" if len(regions) == 1 else f"target of {len(regions)} regions"
    check_target_size(total, what, max_bp)
    seen: dict[tuple[str, int, str], Candidate] = {}
    order: dict[str, int] = {}
    for region in regions:
        for c in find_candidates(genome, region, nuclease, cut_within=cut_within, max_bp=0):
            order.setdefault(c.chrom, len(order))
            seen.setdefault((c.chrom, c.start0, c.strand), c)
    return sorted(seen.values(), key=lambda c: (order[c.chrom], c.start0, c.strand))


_SEQ_LETTERS = re.compile(r"[^ACGTRYSWKMBDHVNacgtryswkmbdhvn]")
_SPACE = re.compile(r"\s+")


def clean_sequence(seq: str | None, name: str = "sequence") -> str:
    """A raw DNA sequence without its whitespace, checked: not empty, IUPAC letters only
    (either case). ``name`` names it in the messages."""
    text = _SPACE.sub("", seq or "")
    if not text:
        raise InputError(f"{name} is empty: give a DNA sequence (A, C, G, T, N)")
    bad = _SEQ_LETTERS.search(text)
    if bad:
        raise InputError(
            f"{name} has an invalid letter {bad.group()!r} at position {bad.start() + 1}; "
            f"a DNA sequence uses A, C, G, T, N (and IUPAC codes)"
        )
    return text


def find_candidates_in_sequence(
    seq: str,
    nuclease: Nuclease | str,
    name: str = "sequence",
    *,
    max_bp: int | None = None,
) -> list[Candidate]:
    """Candidates in a raw sequence (``--sequence ACGT…`` or one FASTA record).

    Coordinates are relative to the sequence (``chrom`` is ``name``; position 0 is its first
    base). Whitespace is ignored; lowercase counts as soft-masked; IUPAC ambiguity letters are
    accepted but, like N, never part of a site. Only sites lying wholly in the sequence exist, and
    ``context30`` is ``None`` when its flanks run off either end.
    """
    nuclease = get_nuclease(nuclease)
    text = clean_sequence(seq, name)
    check_target_size(len(text), name, max_bp)
    return _scan(text, 0, name, len(text), 0, len(text), nuclease, cut_within=True)
