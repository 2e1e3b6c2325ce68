"""What a user asks the guides domain for, as typed requests checked once.

:class:`DesignRequest` (design guides for one target) and :class:`ScoreRequest` (score or search
given guides) hold every option of :func:`~sandgrain.guides.design.design_guides`,
:func:`~sandgrain.guides.design.score_guides` and
:func:`~sandgrain.guides.design.search_guides`. Their constructors are where the rules live:
exactly one target, the size limits of a raw sequence or FASTA target, the mismatch limit, the
listing limit, the nuclease (a shipped name, or a custom PAM, guide length and PAM side), the
gene part (``within``) and the guides themselves. A request that exists is valid; the CLI and
the REST API only translate flags and JSON into one, and an invalid one is an
:class:`~sandgrain.errors.InputError` (or :class:`~sandgrain.errors.NotFoundError` for an
unknown nuclease) with one sentence a user can act on, before any genome is opened.

What needs the genome — whether the gene or region exists, the size of a gene's exons, the site
index — is checked by :func:`~sandgrain.guides.targets.locate_target` and
:func:`~sandgrain.guides.design.check_design`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..genome.fasta import read_fasta_records
from .candidates import MAX_TARGET_BP, check_target_size, check_within, clean_sequence
from .nucleases import NUCLEASES, Nuclease, custom_nuclease, get_nuclease
from .search import check_guides, check_max_mismatches

__all__ = [
    "DEFAULT_GUIDE_LENGTH",
    "TARGET_KINDS",
    "TRACRS",
    "DesignRequest",
    "ScoreRequest",
    "check_one_target",
    "check_tracr",
    "resolve_nuclease",
]

#: Default protospacer length of a custom nuclease given by its PAM alone.
DEFAULT_GUIDE_LENGTH = 20

#: The kinds of design target, in the order the messages name them.
TARGET_KINDS = ("gene", "region", "sequence", "fasta")

_TARGET_WORDS = {
    "gene": "a gene",
    "region": "a region",
    "sequence": "a sequence",
    "fasta": "a FASTA file",
}

_LIMIT_HINT = "choose a smaller target or raise the limit (--max-target-bp)"


def resolve_nuclease(
    nuclease: str | Nuclease | None = None,
    *,
    pam: str | None = None,
    guide_length: int | None = None,
    pam_side: str | int | None = None,
    offtarget_pams: str | Sequence[str] | None = None,
) -> Nuclease:
    """The nuclease a user asked for: by name (default SpCas9) or by PAM.

    ``pam`` (with ``guide_length``, default 20, and ``pam_side``, default 3) describes a custom
    nuclease; when it equals a shipped one's (``NGG``, 20, 3 is SpCas9) that one is used, so its
    scores and off-target PAM weights apply — but a PAM given is searched alone (as Cas-OFFinder
    searches the pattern it is given), while a shipped nuclease by name searches its default
    off-target PAMs too (SpCas9: NAG and NGA, as CRISPOR does). ``offtarget_pams`` (a list or
    ``"NAG,NGA"``) sets the extra PAMs searched for off-targets; ``None`` keeps the defaults just
    described, ``""`` or ``"none"`` searches none.
    """
    if isinstance(offtarget_pams, str) and offtarget_pams.strip().lower() == "none":
        offtarget_pams = ""
    if pam is None or not str(pam).strip():
        if guide_length is not None or pam_side is not None:
            raise InputError(
                "a guide length or PAM side describes a custom nuclease: give its PAM too (--pam)"
            )
        chosen = get_nuclease(nuclease if nuclease is not None else "SpCas9")
    else:
        if nuclease is not None:
            raise InputError("give either a nuclease name or a custom PAM (--pam), not both")
        length = DEFAULT_GUIDE_LENGTH if guide_length is None else guide_length
        chosen = custom_nuclease(pam, length, "3" if pam_side is None else pam_side)
        for shipped in NUCLEASES.values():
            shape = (shipped.pam, shipped.guide_length, shipped.pam_side)
            if shape == (chosen.pam, chosen.guide_length, chosen.pam_side):
                chosen = shipped.with_offtarget_pams(())
                break
    if offtarget_pams is not None:
        chosen = chosen.with_offtarget_pams(offtarget_pams)
    return chosen


#: The tracrRNAs Rule Set 3 knows (the rs3 package's names).
TRACRS = ("Hsu2013", "Chen2013")


def check_tracr(tracr: str) -> str:
    """``tracr`` in its canonical spelling (:data:`TRACRS`, case ignored), or an InputError."""
    for known in TRACRS:
        if str(tracr).strip().lower() == known.lower():
            return known
    raise InputError(f"tracrRNA must be one of {', '.join(TRACRS)}, not {tracr!r}")


def _existing_file(path, what: str):
    """``path`` as a string when it names a readable file (``None`` stays ``None``)."""
    if path is None or str(path) == "":
        return None
    text = os.fspath(path)
    if not os.path.isfile(text):
        raise InputError(f"{what} {text} does not exist or is not a file")
    return text


def check_one_target(**targets) -> str:
    """The kind of the one target given (``gene=…``, ``region=…``, ``sequence=…`` or
    ``fasta=…``; ``None`` is not given), or an InputError naming what was given instead."""
    given = [name for name in TARGET_KINDS if targets.get(name) is not None]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        offered = [_TARGET_WORDS[name] for name in TARGET_KINDS if name in targets]
        choices = ", ".join(offered[:-1]) + f" or {offered[-1]}" if len(offered) > 1 else offered[0]
        raise InputError(f"give exactly one target — {choices} — not {what}")
    return given[0]


def _dna(text: str) -> str:
    """RNA read as DNA: ``U`` becomes ``T`` (case kept)."""
    return text.replace("U", "T").replace("u", "t")


def sequence_records(text: str) -> tuple[tuple[str, str], ...]:
    """The ``(name, sequence)`` records of a pasted target sequence, checked.

    Raw DNA is one record named ``sequence``; FASTA text (``>name description`` header lines,
    each record named by the first word of its header; ``;`` comment lines skipped) gives one
    record per header. RNA is read as DNA (``U`` as ``T``); whitespace is ignored; the letters
    are checked by :func:`~sandgrain.guides.candidates.clean_sequence`.
    """
    lines = text.splitlines()
    if not any(line.lstrip().startswith(">") for line in lines):
        return (("sequence", clean_sequence(_dna(text), "the sequence")),)
    records: list[tuple[str, list[str]]] = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            words = line[1:].split(maxsplit=1)
            name = words[0] if words else f"sequence{len(records) + 1}"
            if any(name == known for known, _ in records):
                raise InputError(f"the FASTA text has two records named {name!r}; rename one")
            records.append((name, []))
        elif not records:
            raise InputError(
                f"the sequence has text before its first FASTA header (line {number}): start "
                "with a '>name' line, or paste the bare sequence without headers"
            )
        else:
            records[-1][1].append(line)
    return tuple(
        (name, clean_sequence(_dna("".join(parts)), f"FASTA record {name!r}"))
        for name, parts in records
    )


def check_room_for_a_site(records: Sequence[tuple[str, str]], nuclease: Nuclease) -> None:
    """An InputError when every record is shorter than one site of ``nuclease`` (protospacer
    and PAM): no guide could lie in it, and a design would succeed with none."""
    longest = max((len(seq) for _, seq in records), default=0)
    need = nuclease.site_length
    if longest >= need:
        return
    what = (
        f"the sequence is {longest} bp"
        if len(records) == 1
        else f"every record is shorter (the longest is {longest} bp)"
    )
    raise InputError(
        f"{what}, shorter than one {nuclease.name} site ({need} bp: a "
        f"{nuclease.guide_length}-nt protospacer and its {nuclease.pam} PAM), so no guide can "
        f"lie in it; give at least {need} bp"
    )


def _whole(value, what: str, *, allow_none: bool = False) -> int | None:
    """``value`` as an int when it is a whole number ≥ 0 (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InputError(f"{what} must be a whole number ≥ 0, not {value!r}")
    return int(value)


def _set(obj, **values) -> None:
    for name, value in values.items():
        object.__setattr__(obj, name, value)


def _nuclease_of(request) -> Nuclease:
    """Resolve the request's nuclease options into one :class:`Nuclease` (they are folded
    into it: ``pam``, ``guide_length``, ``pam_side`` and ``offtarget_pams`` become ``None``,
    so that :func:`dataclasses.replace` on a checked request checks it again unchanged)."""
    nuclease = resolve_nuclease(
        request.nuclease,
        pam=request.pam,
        guide_length=request.guide_length,
        pam_side=request.pam_side,
        offtarget_pams=request.offtarget_pams,
    )
    _set(request, nuclease=nuclease, pam=None, guide_length=None, pam_side=None)
    _set(request, offtarget_pams=None)
    return nuclease


@dataclass(frozen=True)
class DesignRequest:
    """Design guides for one target of a genome (the options of
    :func:`~sandgrain.guides.design.design_guides`), checked on construction.

    Attributes
    ----------
    gene, region, sequence, fasta
        Exactly one target: a gene symbol/alias/ID; ``chrom:start-end`` (1-based inclusive); a
        pasted sequence — raw DNA or RNA (IUPAC letters, ``U`` read as ``T``, whitespace
        ignored) or FASTA text with ``>name`` headers (:func:`sequence_records`); or the path
        of a FASTA file (plain or gzipped, one or more records), read here, within the size
        limit. A sequence with no record as long as one site of the nuclease is refused.
    nuclease, pam, guide_length, pam_side, offtarget_pams
        The nuclease: a shipped name (default SpCas9) or a custom PAM (see
        :func:`resolve_nuclease`). Once checked, ``nuclease`` holds the resolved
        :class:`~sandgrain.guides.nucleases.Nuclease` and the other four are ``None``.
    within
        For a gene: ``exons`` (default), ``cds`` or ``gene`` (normalised to lower case).
    max_mismatches
        Off-targets with up to this many mismatches (0–5) are searched.
    max_target_bp
        Largest target in bp (``None``: :data:`~sandgrain.guides.candidates.MAX_TARGET_BP`;
        0: no limit); once checked, an int.
    max_offtargets_listed
        List at most this many off-targets per guide (counts stay exact); ``None`` lists all.
    list_offtargets
        ``False`` lists no off-target (TSV and BED need none); counts stay exact.
    exclude_on_target
        Leave each guide's on-target site out of its counts and list.
    tracr
        The tracrRNA the guides will be used with, for Rule Set 3: ``Hsu2013`` (default) or
        ``Chen2013`` (the rs3 package's advice: Chen2013 for tracrRNAs without a T at position 5).
    primers
        Design PCR primers around each guide's cut site and check their genome uniqueness.
    variants
        A VCF/BCF of known variants: guides whose protospacer or PAM overlaps one are flagged.
    records
        Set on construction for a sequence or FASTA target: its ``(name, sequence)`` records,
        whitespace removed, RNA as DNA (``("sequence", …)`` for a raw sequence); ``None``
        otherwise.
    """

    gene: str | None = None
    region: str | None = None
    sequence: str | None = None
    fasta: str | os.PathLike | None = None
    nuclease: str | Nuclease | None = None
    pam: str | None = None
    guide_length: int | None = None
    pam_side: str | int | None = None
    offtarget_pams: str | Sequence[str] | None = None
    within: str = "exons"
    max_mismatches: int = 4
    max_target_bp: int | None = MAX_TARGET_BP
    max_offtargets_listed: int | None = None
    list_offtargets: bool = True
    exclude_on_target: bool = True
    tracr: str = "Hsu2013"
    primers: bool = False
    variants: str | os.PathLike | None = None
    records: tuple[tuple[str, str], ...] | None = field(default=None, init=False, compare=False)

    def __post_init__(self):
        kind = check_one_target(
            gene=self.gene, region=self.region, sequence=self.sequence, fasta=self.fasta
        )
        _nuclease_of(self)
        max_bp = MAX_TARGET_BP if self.max_target_bp is None else self.max_target_bp
        _set(
            self,
            within=check_within(self.within),
            max_mismatches=check_max_mismatches(self.max_mismatches),
            max_target_bp=_whole(max_bp, "the largest target (max_target_bp)"),
            max_offtargets_listed=_whole(
                self.max_offtargets_listed, "the off-target listing limit", allow_none=True
            ),
            list_offtargets=bool(self.list_offtargets),
            exclude_on_target=bool(self.exclude_on_target),
            tracr=check_tracr(self.tracr),
            primers=bool(self.primers),
            variants=_existing_file(self.variants, "variants file"),
        )
        if kind == "sequence":
            records = sequence_records(str(self.sequence))
            total = sum(len(text) for _, text in records)
            check_target_size(total, "the target sequence", self.max_target_bp)
            check_room_for_a_site(records, self.nuclease)
            _set(self, records=records)
        elif kind == "fasta":
            records = read_fasta_records(
                self.fasta, max_bp=self.max_target_bp, limit_hint=_LIMIT_HINT
            )
            records = tuple((name, clean_sequence(_dna(seq), name)) for name, seq in records)
            check_room_for_a_site(records, self.nuclease)
            _set(self, records=records)

    @property
    def target_kind(self) -> str:
        """``gene``, ``region``, ``sequence`` or ``fasta``."""
        return next(k for k in TARGET_KINDS if getattr(self, k) is not None)


@dataclass(frozen=True)
class ScoreRequest:
    """Score (or list the sites of) given guides: the options of
    :func:`~sandgrain.guides.design.score_guides` and
    :func:`~sandgrain.guides.design.search_guides`, checked on construction.

    Attributes
    ----------
    guides
        Protospacers without PAM (A, C, G, T; case ignored), each as long as the nuclease's;
        once checked, a tuple of upper-case strings.
    nuclease, pam, guide_length, pam_side, offtarget_pams
        As for :class:`DesignRequest`.
    max_mismatches
        Sites with up to this many mismatches (0–5).
    guide_mismatches
        Optionally each guide's own limit (``None`` entries use ``max_mismatches``), as the
        mismatch column of a Cas-OFFinder input gives it.
    max_offtargets_listed, list_offtargets, exclude_on_target
        As for :class:`DesignRequest`.
    limits
        Set on construction: each guide's mismatch limit.
    """

    guides: Sequence[str]
    nuclease: str | Nuclease | None = None
    pam: str | None = None
    guide_length: int | None = None
    pam_side: str | int | None = None
    offtarget_pams: str | Sequence[str] | None = None
    max_mismatches: int = 4
    guide_mismatches: Sequence[int | None] | None = None
    max_offtargets_listed: int | None = None
    list_offtargets: bool = True
    exclude_on_target: bool = True
    limits: tuple[int, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self):
        nuclease = _nuclease_of(self)
        if isinstance(self.guides, str):
            raise InputError("give the guides as a list of sequences, not one string")
        guides = tuple(check_guides(list(self.guides), nuclease.guide_length))
        k = check_max_mismatches(self.max_mismatches)
        if self.guide_mismatches is None:
            limits = (k,) * len(guides)
        else:
            if len(self.guide_mismatches) != len(guides):
                raise InputError(
                    f"{len(self.guide_mismatches)} mismatch limits given for {len(guides)} guides"
                )
            limits = tuple(
                k if m is None else check_max_mismatches(m) for m in self.guide_mismatches
            )
        _set(
            self,
            guides=guides,
            max_mismatches=k,
            guide_mismatches=None if self.guide_mismatches is None else limits,
            limits=limits,
            max_offtargets_listed=_whole(
                self.max_offtargets_listed, "the off-target listing limit", allow_none=True
            ),
            list_offtargets=bool(self.list_offtargets),
            exclude_on_target=bool(self.exclude_on_target),
        )
