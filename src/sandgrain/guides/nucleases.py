"""Nucleases as data: PAM, PAM side, protospacer length, cut position, off-target PAMs.

Words
-----
*protospacer*
    The genomic stretch the guide's spacer matches, read 5'→3' on the strand that carries the PAM
    (the non-target strand): it has the guide's sequence, with T for U.
*site*
    Protospacer and PAM together: ``protospacer + PAM`` for a 3' PAM (Cas9),
    ``PAM + protospacer`` for a 5' PAM (Cas12a). :attr:`Nuclease.site_length` bases.

Cut convention
--------------
:attr:`Nuclease.cut_offset` is the number of protospacer bases, counted from the protospacer's 5'
end on its own strand, that lie before the cut on that strand: the cut is between protospacer
bases ``cut_offset`` and ``cut_offset + 1`` (1-based). The same rule serves both PAM sides:

* SpCas9 (3' PAM) cuts 3 bp upstream of the PAM, between protospacer positions 17 and 18 of 20 →
  ``cut_offset = 17`` (Jinek et al. 2012). SaCas9, 21 nt, also 3 bp from the PAM → 18
  (Ran et al. 2015).
* Cas12a (5' PAM, so the protospacer's 5' end is next to the PAM) cuts the non-target strand 18 nt
  after the PAM and the target strand about 23 nt after it, leaving a 5' overhang
  (Zetsche et al. 2015). We report the non-target (PAM-strand) cut → ``cut_offset = 18``.

:mod:`sandgrain.guides.candidates` turns the offset into a genome position.

Guide and PAM lengths
---------------------
Protospacers of 16 to 27 nt are accepted. The off-target index packs each site into one 64-bit
word, 2 bits per base: 27 nt take 54 bits and leave room for the PAM's index and flags. Below 16 nt
a guide is not specific (4**16 ≈ 4.3e9: a random 16-mer is expected about once in a human-sized
genome). A PAM has 1 to 8 IUPAC letters.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import InputError, NotFoundError
from .iupac import check_pattern

__all__ = [
    "MAX_GUIDE_LENGTH",
    "MAX_PAM_LENGTH",
    "MIN_GUIDE_LENGTH",
    "NUCLEASES",
    "Nuclease",
    "custom_nuclease",
    "get_nuclease",
    "is_spcas9_like",
    "normalize_pam_side",
]

MIN_GUIDE_LENGTH = 16
MAX_GUIDE_LENGTH = 27
MAX_PAM_LENGTH = 8

_PAM_SIDES = {
    "3": "3",
    "3'": "3",
    "3′": "3",
    "3prime": "3",
    "3p": "3",
    "5": "5",
    "5'": "5",
    "5′": "5",
    "5prime": "5",
    "5p": "5",
}


def normalize_pam_side(side: str | int) -> str:
    """``"3"`` or ``"5"`` from ``3``, ``"3'"``, ``"3prime"``, ``"5"``…"""
    key = str(side).strip().lower().replace(" ", "").replace("_", "").replace("-", "")
    try:
        return _PAM_SIDES[key]
    except KeyError:
        raise InputError(
            f"PAM side must be 3 (PAM 3' of the protospacer, like Cas9) or 5 (like Cas12a), "
            f"not {side!r}"
        ) from None


def _check_guide_length(guide_length) -> int:
    text = str(guide_length).strip()
    if isinstance(guide_length, bool) or not text.isdigit():
        raise InputError(f"guide length must be a whole number, not {guide_length!r}")
    n = int(text)
    if not MIN_GUIDE_LENGTH <= n <= MAX_GUIDE_LENGTH:
        raise InputError(
            f"guide length {n} is out of range: sandgrain supports protospacers of "
            f"{MIN_GUIDE_LENGTH} to {MAX_GUIDE_LENGTH} nt (sites are packed into 64-bit words)"
        )
    return n


def _check_pam(pam: str, what: str = "PAM") -> str:
    text = check_pattern(pam, what)
    if len(text) > MAX_PAM_LENGTH:
        raise InputError(
            f"{what} {text} has {len(text)} letters; at most {MAX_PAM_LENGTH} are supported"
        )
    return text


@dataclass(frozen=True)
class Nuclease:
    """A CRISPR nuclease as the search engine sees it.

    Attributes
    ----------
    name
        As shown to users (``SpCas9``).
    pam
        The PAM in IUPAC codes, read 5'→3' on the protospacer's strand (``NGG``).
    pam_side
        ``"3"``: the PAM follows the protospacer (Cas9); ``"5"``: it precedes it (Cas12a).
    guide_length
        Protospacer length in nt.
    cut_offset
        Where the nuclease cuts, in protospacer bases from the protospacer's 5' end (see the
        module's cut convention).
    offtarget_pams
        Other PAMs an off-target search may consider, each with its weight relative to the main
        PAM (from the CFD PAM table of Doench et al. 2016 for SpCas9).
    default_offtarget_pams
        Those of ``offtarget_pams`` searched unless the user chooses otherwise.
    description
        One line for listings.
    """

    name: str
    pam: str
    pam_side: str
    guide_length: int
    cut_offset: int
    offtarget_pams: tuple[tuple[str, float], ...] = ()
    default_offtarget_pams: tuple[str, ...] = ()
    description: str = field(default="", compare=False)

    def __post_init__(self):
        pam = _check_pam(self.pam)
        length = _check_guide_length(self.guide_length)
        side = normalize_pam_side(self.pam_side)
        try:
            cut = int(self.cut_offset)
        except (TypeError, ValueError):
            msg = f"cut offset must be a whole number, not {self.cut_offset!r}"
            raise InputError(msg) from None
        if not 0 <= cut <= length:
            raise InputError(f"cut offset {cut} must lie within the {length}-nt protospacer")
        extra: dict[str, float] = {}
        for entry in self.offtarget_pams:
            p, w = entry if isinstance(entry, tuple | list) else (entry, 1.0)
            p = _check_pam(p, "off-target PAM")
            if len(p) != len(pam):
                raise InputError(
                    f"off-target PAM {p} has {len(p)} letters but the PAM {pam} has {len(pam)}"
                )
            if not 0 <= float(w) <= 1:
                raise InputError(f"weight of off-target PAM {p} must be between 0 and 1, not {w}")
            if p != pam:
                extra[p] = float(w)
        chosen = (check_pattern(p, "off-target PAM") for p in self.default_offtarget_pams)
        defaults = tuple(dict.fromkeys(chosen))
        for p in defaults:
            if p not in extra:
                raise InputError(
                    f"default off-target PAM {p} is not among the off-target PAMs of {self.name}"
                )
        object.__setattr__(self, "pam", pam)
        object.__setattr__(self, "guide_length", length)
        object.__setattr__(self, "pam_side", side)
        object.__setattr__(self, "cut_offset", cut)
        object.__setattr__(self, "offtarget_pams", tuple(extra.items()))
        object.__setattr__(self, "default_offtarget_pams", defaults)

    # -- shape ------------------------------------------------------------------------------------
    @property
    def pam_length(self) -> int:
        return len(self.pam)

    @property
    def site_length(self) -> int:
        """Protospacer plus PAM, in nt."""
        return self.guide_length + len(self.pam)

    @property
    def searched_pams(self) -> tuple[str, ...]:
        """The PAMs an off-target search considers by default: the main PAM first."""
        return (self.pam, *self.default_offtarget_pams)

    def pam_weight(self, pam: str) -> float:
        """Weight of a PAM pattern: 1 for the main PAM, the table's weight for an off-target PAM,
        0 for any other."""
        text = check_pattern(pam)
        if text == self.pam:
            return 1.0
        return dict(self.offtarget_pams).get(text, 0.0)

    # -- variants ---------------------------------------------------------------------------------
    def with_offtarget_pams(self, pams: list[str] | tuple[str, ...] | str) -> Nuclease:
        """This nuclease with exactly ``pams`` as its default off-target PAMs.

        ``pams`` is a list or a comma-separated string (``"NAG,NGA"``). The main PAM may be
        listed; it is always searched and is dropped from the list. A PAM absent from
        :attr:`offtarget_pams` is added with weight 1 (no published weight is known for it).
        Each must have as many letters as the main PAM.
        """
        if isinstance(pams, str):
            pams = [p for p in pams.split(",") if p.strip()]
        table = dict(self.offtarget_pams)
        chosen: list[str] = []
        for p in pams:
            text = _check_pam(p, "off-target PAM")
            if len(text) != len(self.pam):
                raise InputError(
                    f"off-target PAM {text} has {len(text)} letters but {self.name}'s PAM "
                    f"{self.pam} has {len(self.pam)}"
                )
            if text == self.pam or text in chosen:
                continue
            table.setdefault(text, 1.0)
            chosen.append(text)
        return replace(
            self, offtarget_pams=tuple(table.items()), default_offtarget_pams=tuple(chosen)
        )

    def to_dict(self) -> dict:
        """Plain data for provenance records and JSON output."""
        return {
            "name": self.name,
            "pam": self.pam,
            "pam_side": self.pam_side,
            "guide_length": self.guide_length,
            "cut_offset": self.cut_offset,
            "offtarget_pams": [{"pam": p, "weight": w} for p, w in self.offtarget_pams],
            "default_offtarget_pams": list(self.default_offtarget_pams),
            "description": self.description,
        }

    def __str__(self) -> str:
        side = "3'" if self.pam_side == "3" else "5'"
        return f"{self.name} ({self.pam} {side}, {self.guide_length} nt)"


#: The nucleases shipped with sandgrain, by name.
NUCLEASES: dict[str, Nuclease] = {
    n.name: n
    for n in (
        Nuclease(
            name="SpCas9",
            pam="NGG",
            pam_side="3",
            guide_length=20,
            cut_offset=17,
            # CFD PAM table (Doench et al. 2016): NAG 0.259259259, NGA 0.069444444. Searched
            # by default, as CRISPOR does: SpCas9 cuts at NAG and NGA sites too, and off-target
            # counts are not comparable with CRISPOR's without them.
            offtarget_pams=(("NAG", 0.259259259), ("NGA", 0.069444444)),
            default_offtarget_pams=("NAG", "NGA"),
            description="Streptococcus pyogenes Cas9: NGG PAM 3' of a 20-nt protospacer, "
            "blunt cut 3 bp from the PAM",
        ),
        Nuclease(
            name="SaCas9",
            pam="NNGRRT",
            pam_side="3",
            guide_length=21,
            cut_offset=18,
            description="Staphylococcus aureus Cas9: NNGRRT PAM 3' of a 21-nt protospacer, "
            "cut 3 bp from the PAM",
        ),
        Nuclease(
            name="AsCas12a",
            pam="TTTV",
            pam_side="5",
            guide_length=23,
            cut_offset=18,
            description="Acidaminococcus Cas12a (Cpf1): TTTV PAM 5' of a 23-nt protospacer, "
            "staggered cut 18/23 nt after the PAM",
        ),
        Nuclease(
            name="LbCas12a",
            pam="TTTV",
            pam_side="5",
            guide_length=23,
            cut_offset=18,
            description="Lachnospiraceae Cas12a (Cpf1): TTTV PAM 5' of a 23-nt protospacer, "
            "staggered cut 18/23 nt after the PAM",
        ),
    )
}

_ALIASES = {
    "cas9": "SpCas9",
    "spycas9": "SpCas9",
    "ascpf1": "AsCas12a",
    "lbcpf1": "LbCas12a",
}


def get_nuclease(name: str | Nuclease) -> Nuclease:
    """A shipped nuclease by name, case-insensitive (``spcas9``, ``Cas9``, ``AsCpf1``…)."""
    if isinstance(name, Nuclease):
        return name
    key = str(name).strip().lower()
    for known, nuclease in NUCLEASES.items():
        if known.lower() == key:
            return nuclease
    if key in _ALIASES:
        return NUCLEASES[_ALIASES[key]]
    raise NotFoundError(
        f"unknown nuclease {str(name).strip()!r}; known nucleases: {', '.join(NUCLEASES)} "
        f"(or give your own with --pam, --guide-length and --pam-side)"
    )


def custom_nuclease(
    pam: str,
    guide_length: int,
    pam_side: str | int = "3",
    name: str | None = None,
    *,
    cut_offset: int | None = None,
) -> Nuclease:
    """A user-defined nuclease, checked.

    Without ``cut_offset`` the cut is placed like the shipped nucleases of that side: 3 bp from a
    3' PAM (``guide_length - 3``), 18 nt after a 5' PAM (or at the protospacer's end if shorter).
    The default name is ``custom-<PAM>-<length>nt-<side>'``.
    """
    pam = _check_pam(pam)
    length = _check_guide_length(guide_length)
    side = normalize_pam_side(pam_side)
    if cut_offset is None:
        cut_offset = length - 3 if side == "3" else min(18, length)
    label = name or f"custom-{pam}-{length}nt-{side}'"
    return Nuclease(
        name=label,
        pam=pam,
        pam_side=side,
        guide_length=length,
        cut_offset=cut_offset,
        description=f"user-defined: {pam} PAM {side}' of a {length}-nt protospacer",
    )


def is_spcas9_like(nuclease: Nuclease) -> bool:
    """Whether MIT (Hsu et al. 2013), CFD (Doench et al. 2016) and Rule Set 1 (Doench et al.
    2014) apply: 20-nt protospacers with an ``NGG`` 3' PAM, the shape they were fitted on."""
    return nuclease.pam == "NGG" and nuclease.pam_side == "3" and nuclease.guide_length == 20
