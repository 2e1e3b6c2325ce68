"""Query genomes for the searches over a collection: a FASTA aligned and called against the
collection's own reference, or a mutation list typed by hand.

Both give :class:`~sandgrain.strains.mutations.Calls`, the form every search reads: a FASTA record
is aligned, called and checked exactly as ``strains add`` does it (same reference, same coding
sequences), so a query and a collection genome made from the same sequence have the same calls.
A query must look like a genome first, which ``strains add`` (whose QC grades a poor genome
instead) does not ask: nucleotide letters only, at least :data:`MIN_QUERY_BASES` of them A, C,
G or T, and alignable.
A mutation list (``C241T,A23403G,del:11288-11296,ins:22204:GAG``) is a genome that covers the
whole reference and differs from it by those mutations only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InputError
from .collection import Collection, analyse, read_fasta
from .mutations import Calls, CodingSequence

__all__ = [
    "MAX_QUERIES",
    "calls_from_fasta",
    "calls_from_mutations",
    "calls_from_sequences",
    "collection_reference",
    "parse_mutation",
    "read_fasta_text",
]

#: The most query genomes one search takes (a FASTA of more is refused, not truncated).
MAX_QUERIES = 10_000

#: The fewest unambiguous bases (A, C, G, T) a query genome must have: Nextclade's default
#: ``--min-length`` (100 nt; shorter sequences are not aligned). Below it the aligner still
#: places a few bases somewhere, and every genome of a collection would tie at distance 0.
MIN_QUERY_BASES = 100

#: The letters a nucleotide FASTA may hold: IUPAC codes (U read as T), X (masked, read as N as
#: the aligner reads it), gaps and the stop ``*`` some exporters write; whitespace inside a
#: line (blocks of ten) is dropped first. Anything else (a protein, digits of a GenBank flat
#: file, a text file) is not a genome.
_NOT_NUCLEOTIDE = re.compile(r"[^ACGTUNRYKMSWBDHVXacgtunrykmswbdhvx\-.*]")
_SPACE = re.compile(r"\s+")

_SUB = re.compile(r"^([ACGT])(\d+)([ACGT])$")
_DEL = re.compile(r"^del:(\d+)-(\d+)$")
_DEL1 = re.compile(r"^del:(\d+)$")
_INS = re.compile(r"^ins:(\d+):([ACGT]+)$")


def collection_reference(coll: Collection):
    """``(Reference, coding sequences)`` of a collection, as its genomes were called with."""
    import json

    from .align import Reference

    cds = [
        CodingSequence(c["name"], np.asarray(c["positions"], dtype=np.int64), c["strand"])
        for c in json.loads(coll.dataset.read_bytes("cds.json"))
    ]
    return Reference.from_sequence(coll.reference()), cds


def calls_from_sequences(coll: Collection, records) -> Iterator[Calls]:
    """The calls of each ``(name, sequence)`` against the collection's reference."""
    ref, cds = collection_reference(coll)
    for k, (name, seq) in enumerate(records):
        if k >= MAX_QUERIES:
            raise InputError(f"at most {MAX_QUERIES:,} query genomes at a time")
        if not seq:
            raise InputError(f"query {name!r} has no sequence")
        seq = _SPACE.sub("", seq)
        if bad := _NOT_NUCLEOTIDE.search(seq):
            raise InputError(
                f"query {name!r} is not a nucleotide sequence: {bad[0]!r} at character "
                f"{bad.start() + 1}"
            )
        bases = sum(seq.upper().count(b) for b in "ACGTU")
        if bases < MIN_QUERY_BASES:
            raise InputError(
                f"query {name!r} has {bases} unambiguous bases; a query genome needs at least "
                f"{MIN_QUERY_BASES} (Nextclade's minimum length)"
            )
        calls = analyse(ref, cds, name, seq)
        if calls.error:
            raise InputError(f"query {name!r} could not be aligned: {calls.error}")
        yield calls


def calls_from_fasta(coll: Collection, fasta: str | os.PathLike) -> list[Calls]:
    """The calls of every record of a FASTA (plain or gzip) against the collection's reference."""
    path = Path(fasta)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    out = list(calls_from_sequences(coll, read_fasta(path)))
    if not out:
        raise InputError(f"{path.name}: no FASTA records")
    return out


def read_fasta_text(text: str, limit: int = MAX_QUERIES) -> Iterator[tuple[str, str]]:
    """``(id, sequence)`` of each record of FASTA text (a pasted sample); more than ``limit``
    records, or text that is not FASTA, is refused."""
    name, parts, n = None, [], 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith(">"):
            if name is not None:
                yield name, "".join(parts)
            n += 1
            if n > limit:
                raise InputError(f"at most {limit:,} query genomes at a time")
            fields = line[1:].split()
            if not fields:
                raise InputError(f"line {lineno}: a FASTA header without an id")
            name, parts = fields[0], []
        elif name is None:
            if line.strip():
                raise InputError("not FASTA text (no '>' header first)")
        else:
            parts.append(line.strip())
    if name is None:
        raise InputError("no FASTA records")
    yield name, "".join(parts)


def parse_mutation(text: str, reference: str) -> tuple[str, str]:
    """``(field, canonical text)`` of one nucleotide mutation, checked against the reference:
    ``C241T`` (substitutions), ``del:11288-11296`` or ``del:11288`` (deletions),
    ``ins:22204:GAG`` (insertions)."""
    t = text.strip().upper().replace("DEL:", "del:").replace("INS:", "ins:")
    n = len(reference)
    if m := _SUB.match(t):
        pos = int(m[2])
        if not 1 <= pos <= n:
            raise InputError(f"mutation {text!r}: position {pos} is outside 1-{n}")
        if reference[pos - 1] != m[1]:
            raise InputError(
                f"mutation {text!r}: the reference has {reference[pos - 1]} at {pos}, not {m[1]}"
            )
        if m[1] == m[3]:
            raise InputError(f"mutation {text!r} changes nothing")
        return "substitutions", t
    if (m := _DEL.match(t)) or (m := _DEL1.match(t)):
        a = int(m[1])
        b = int(m[2]) if m.re is _DEL else a
        if not 1 <= a <= b <= n:
            raise InputError(f"mutation {text!r}: not a range within 1-{n}")
        return "deletions", f"del:{a}-{b}"
    if m := _INS.match(t):
        pos = int(m[1])
        if not 0 <= pos <= n:
            raise InputError(f"mutation {text!r}: position {pos} is outside 0-{n}")
        return "insertions", t
    raise InputError(
        f"not a nucleotide mutation: {text!r} (forms: C241T, del:11288-11296, ins:22204:GAG)"
    )


def calls_from_mutations(text: str, reference: str, name: str = "query") -> Calls:
    """A query genome given as a comma- or space-separated mutation list; it covers the whole
    reference (no missing data). Substitutions at the same position, or overlapping deletions,
    are refused."""
    items = [s for s in re.split(r"[,\s]+", text or "") if s]
    if not items:
        raise InputError("the mutation list is empty")
    if len(items) > 5000:
        raise InputError("at most 5,000 mutations in a query")
    calls = Calls(strain=name)
    taken: dict[int, str] = {}
    for item in items:
        fld, canon = parse_mutation(item, reference)
        if fld == "substitutions":
            span = [int(canon[1:-1])]
        elif fld == "deletions":
            a, b = (int(x) for x in canon[4:].split("-"))
            span = list(range(a, b + 1))
        else:
            span = []
        for p in span:
            if p in taken:
                raise InputError(f"mutations {taken[p]!r} and {item!r} overlap at {p}")
            taken[p] = item
        lst = getattr(calls, fld)
        if canon not in lst:
            lst.append(canon)
    calls.substitutions.sort(key=lambda s: int(s[1:-1]))
    calls.deletions.sort(key=lambda s: int(s[4:].split("-")[0]))
    calls.insertions.sort(key=lambda s: int(s.split(":")[1]))
    calls.alignment_start, calls.alignment_end = 1, len(reference)
    calls.length = len(reference)
    return calls
