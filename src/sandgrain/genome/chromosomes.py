"""Chromosome names and their aliases.

Genomes name their sequences differently: UCSC says ``chrI`` and ``chrM``, Ensembl says ``I`` and
``Mito``, NCBI says ``MT``. Users type any of them. This module maps whatever a user gives to the
name the genome actually uses.

Two pieces:

* :func:`alias_candidates` — the other spellings of one name, without knowing the genome:
  the ``chr`` prefix added or removed (its case ignored) and the usual names of the mitochondrial
  genome (``chrM``, ``M``, ``MT``, ``chrMT``, ``Mito``, ``mitochondrion``) treated as one.
  Numbers are never turned into roman numerals or back: SGD's ``chromosome 15`` is mapped to
  ``XV`` by the SGD reader in :mod:`sandgrain.genome.annotation.sgd`, not here.
* :class:`ChromosomeNames` — the genome's own names, in order, and :meth:`ChromosomeNames.resolve`,
  which tries an exact match, then a case-insensitive one, then the alias candidates, then — for
  a genome of a known assembly — the chromosome's other names and accessions from
  :mod:`sandgrain.genome.assemblies` (``NC_000020.10``, ``refseq:NC_000020.10``, ``CM000682.1``).

Example::

    names = ChromosomeNames(["I", "II", "Mito"], genome="yeast")
    names.resolve("chrI")   # -> "I"
    names.resolve("chrM")   # -> "Mito"
    names.resolve("chrZZ")  # NotFoundError: unknown chromosome 'chrZZ' in genome yeast; known: ...
    ChromosomeNames(["chr20"], assembly="hg19").resolve("refseq:NC_000020.10")  # -> "chr20"
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from ..errors import AmbiguousNameError, InputError, NotFoundError
from .assemblies import MITO_NAMES, accession_chrom, find_assembly, strip_curie

__all__ = ["ChromosomeNames", "alias_candidates"]

_MITO_LOWER = frozenset(n.lower() for n in MITO_NAMES)

#: How many names an error message lists in full before it shortens the list.
_MAX_LISTED = 20


def _strip_chr(name: str) -> tuple[str, bool]:
    """``("I", True)`` for ``"chrI"`` (any case of ``chr``), ``(name, False)`` otherwise."""
    if len(name) > 3 and name[:3].lower() == "chr":
        return name[3:], True
    return name, False


def alias_candidates(name: str) -> list[str]:
    """Other spellings of the chromosome ``name``, most usual first; ``name`` itself is left out.

    >>> alias_candidates("chrI")
    ['I']
    >>> alias_candidates("22")
    ['chr22']
    >>> alias_candidates("MT")
    ['chrM', 'M', 'chrMT', 'Mito', 'chrMito', 'mitochondrion']
    """
    name = name.strip()
    if not name:
        return []
    if name.lower() in _MITO_LOWER:
        return [n for n in MITO_NAMES if n.lower() != name.lower()]
    base, had_prefix = _strip_chr(name)
    return [base] if had_prefix else ["chr" + base]


def _format_known(names: Sequence[str]) -> str:
    """``"I, II, III"``; long lists keep their head and tail: ``"1, 2, …, Y (455 in all)"``."""
    if len(names) <= _MAX_LISTED:
        return ", ".join(names)
    head = ", ".join(names[: _MAX_LISTED - 3])
    tail = ", ".join(names[-2:])
    return f"{head}, …, {tail} ({len(names)} in all)"


class ChromosomeNames:
    """The chromosome names of one genome, and resolution of user-given names to them.

    ``names`` are the genome's own names in genome order (e.g. the FASTA order); ``genome`` is only
    used in error messages; ``assembly`` (any alias, e.g. ``hg19``) lets accessions resolve.

    Resolution rules of :meth:`resolve`, first that applies wins:

    1. the name is one of the genome's names, exactly;
    2. the name equals exactly one genome name ignoring case (two → :class:`AmbiguousNameError`);
    3. one of its :func:`alias_candidates` equals a genome name ignoring case; candidates that
       match several genome names (say the genome has both ``M`` and ``MT``) raise
       :class:`AmbiguousNameError`;
    4. rules 1–3 for the name without a CURIE prefix (``refseq:NC_045512.2`` → ``NC_045512.2``);
    5. the name is a spelling of a chromosome of the genome's assembly (its accessions, UCSC
       name, … see :mod:`sandgrain.genome.assemblies`) and rules 1–3 find one genome name for
       that chromosome's spellings; when the assembly is not a known one, an accession of any
       known assembly (:func:`~sandgrain.genome.assemblies.accession_chrom`) is tried instead;
    6. otherwise :class:`NotFoundError`, listing the known names.
    """

    def __init__(
        self, names: Iterable[str], genome: str | None = None, assembly: str | None = None
    ):
        self._names: tuple[str, ...] = tuple(dict.fromkeys(names))
        self.genome = genome
        self.assembly = find_assembly(assembly)
        self._lower: dict[str, list[str]] = {}
        for n in self._names:
            self._lower.setdefault(n.lower(), []).append(n)

    @property
    def names(self) -> tuple[str, ...]:
        """The genome's names, in order."""
        return self._names

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __repr__(self) -> str:
        assembly = self.assembly.name if self.assembly else None
        return f"ChromosomeNames({list(self._names)!r}, genome={self.genome!r}, {assembly=!r})"

    def _where(self) -> str:
        return f" in genome {self.genome}" if self.genome else ""

    def _matches(self, name: str) -> list[str]:
        """Genome names that ``name`` can mean, by rules 1–5 (the first rule with a match)."""
        found = self._matches_spelling(name)
        if found:
            return found
        bare = strip_curie(name)
        if bare != name:
            found = self._matches_spelling(bare)
            if found:
                return found
        if self.assembly is not None:
            chrom = self.assembly.find(name)
            spellings = chrom.spellings() if chrom else ()
        else:
            canonical = accession_chrom(name)
            spellings = (canonical,) if canonical else ()
        for spelling in spellings:
            for n in self._matches_spelling(spelling):
                if n not in found:
                    found.append(n)
        return found

    def _matches_spelling(self, name: str) -> list[str]:
        """Genome names that ``name`` can mean, by rules 1–3 (the first rule with a match)."""
        if name in self._names:
            return [name]
        same = self._lower.get(name.lower())
        if same:
            return list(same)
        found: list[str] = []
        for candidate in alias_candidates(name):
            for n in self._lower.get(candidate.lower(), ()):
                if n not in found:
                    found.append(n)
        return found

    def resolve(self, name: str) -> str:
        """The genome's name for ``name``; see the class docstring for the rules."""
        if not isinstance(name, str) or not name.strip():
            raise InputError("empty chromosome name")
        name = name.strip()
        found = self._matches(name)
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousNameError(
                f"ambiguous chromosome '{name}'{self._where()}: could be {', '.join(found)}",
                found,
            )
        raise NotFoundError(
            f"unknown chromosome '{name}'{self._where()}; known: {_format_known(self._names)}"
        )

    def get(self, name: str) -> str | None:
        """Like :meth:`resolve`, but ``None`` for an unknown or ambiguous name."""
        try:
            return self.resolve(name)
        except (NotFoundError, AmbiguousNameError, InputError):
            return None

    def __contains__(self, name: object) -> bool:
        """True when ``name`` resolves to exactly one of the genome's names."""
        return isinstance(name, str) and self.get(name) is not None

    def aliases_of(self, canonical: str) -> list[str]:
        """Other names that :meth:`resolve` maps to ``canonical`` (for display), usual first.

        Only spellings that resolve unambiguously to ``canonical`` are listed; ``canonical`` must be
        one of the genome's names (else :class:`NotFoundError`).
        """
        if canonical not in self._names:
            raise NotFoundError(
                f"unknown chromosome '{canonical}'{self._where()}; "
                f"known: {_format_known(self._names)}"
            )
        return [a for a in alias_candidates(canonical) if self.get(a) == canonical]
