"""IUPAC nucleotide codes for PAM patterns.

A *pattern* (a PAM such as ``NGG`` or ``TTTV``) is written in the IUPAC codes of the
Nomenclature Committee of the International Union of Biochemistry (1985): ``A C G T`` and the
ambiguity codes ``R Y S W K M B D H V N``. A *sequence* is DNA as stored in a genome: usually
``A C G T N`` in either case (lowercase = soft-masked repeat).

Matching rule
-------------
A sequence letter matches a pattern code when every base the letter may stand for is allowed by
the code. So ``A`` matches ``A``, ``R``, ``N``…; a genome ``N`` (a base nobody could read) matches
only the pattern code ``N`` — it never satisfies a specific code like the ``G`` of ``NGG``. Case is
ignored. :func:`matches` follows this rule; :func:`compile_regex` follows it with
``ambiguous=True`` and by default matches concrete bases only (what a site scan wants: a site with
an ``N`` in its PAM is not a site).
"""

from __future__ import annotations

import itertools
import re

from ..errors import InputError
from ..genome.iupac import CODES

__all__ = [
    "CODES",
    "bases",
    "check_pattern",
    "compile_regex",
    "expand",
    "matches",
    "reverse_complement_pattern",
]

_VALID = " ".join(CODES)
_BASES = {code: frozenset(b) for code, b in CODES.items()}
_BY_BASES = {frozenset(b): code for code, b in CODES.items()}
_COMPLEMENT_BASE = {"A": "T", "C": "G", "G": "C", "T": "A"}
#: Each code and the codes whose bases it contains (itself included): the letters it matches.
_MATCHED_BY = {code: "".join(c for c in CODES if _BASES[c] <= _BASES[code]) for code in CODES}


def check_pattern(pattern: str, what: str = "PAM") -> str:
    """The pattern in uppercase, or :class:`~sandgrain.errors.InputError` naming the bad letter.

    ``what`` names the pattern in the message (``"PAM"``, ``"off-target PAM"``…).
    """
    if not isinstance(pattern, str):
        raise InputError(f"{what} must be text in IUPAC codes ({_VALID}), not {pattern!r}")
    text = pattern.strip().upper()
    if not text:
        raise InputError(f"{what} is empty: give it in IUPAC codes ({_VALID})")
    for i, letter in enumerate(text):
        if letter not in CODES:
            raise InputError(
                f"{what} {pattern.strip()!r} has an invalid letter {letter!r} at position {i + 1}; "
                f"valid IUPAC codes are {_VALID}"
            )
    return text


def bases(code: str) -> frozenset[str]:
    """The concrete bases (subset of ``ACGT``) an IUPAC code stands for."""
    try:
        return _BASES[code.upper()]
    except KeyError:
        raise InputError(f"invalid IUPAC code {code!r}; valid codes are {_VALID}") from None


def expand(pattern: str) -> list[str]:
    """Every concrete sequence the pattern stands for, in lexicographic order.

    >>> expand("NGR")[:3]
    ['AGA', 'AGG', 'CGA']
    """
    text = check_pattern(pattern, "pattern")
    return ["".join(p) for p in itertools.product(*(CODES[c] for c in text))]


def matches(pattern: str, seq: str) -> bool:
    """Whether ``seq`` matches ``pattern`` letter by letter (see the module's matching rule).

    Sequences of another length never match; letters that are no IUPAC code (``-``, ``.``) match
    nothing.
    """
    text = check_pattern(pattern, "pattern")
    if len(seq) != len(text):
        return False
    return all(s in _MATCHED_BY[p] for p, s in zip(text, seq.upper(), strict=True))


def reverse_complement_pattern(pattern: str) -> str:
    """The pattern read on the other strand: ``NGG`` → ``CCN``, ``TTTV`` → ``BAAA``."""
    text = check_pattern(pattern, "pattern")
    out = []
    for code in reversed(text):
        out.append(_BY_BASES[frozenset(_COMPLEMENT_BASE[b] for b in _BASES[code])])
    return "".join(out)


def compile_regex(pattern: str, *, ambiguous: bool = False, ignore_case: bool = False):
    """A compiled regular expression matching the pattern, one character per code.

    By default each code becomes the class of the concrete, uppercase bases it stands for
    (``N`` → ``[ACGT]``), so the expression matches exactly the strings of :func:`expand`. With
    ``ambiguous=True`` each code also accepts the sequence letters :func:`matches` accepts
    (``N`` → ``[ACGTRYSWKMBDHVN]``, ``G`` → ``G``). ``ignore_case`` accepts lowercase too.

    The expression is not anchored and consumes what it matches: to find overlapping sites wrap
    it in a look-ahead, ``re.compile(f"(?=({rx.pattern}))")``.
    """
    text = check_pattern(pattern, "pattern")
    table = _MATCHED_BY if ambiguous else CODES
    parts = []
    for code in text:
        letters = table[code]
        parts.append(letters if len(letters) == 1 else f"[{letters}]")
    return re.compile("".join(parts), re.IGNORECASE if ignore_case else 0)
