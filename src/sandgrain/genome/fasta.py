"""Streaming FASTA import into an indexed bgzipped FASTA (``.fa.gz`` + ``.fai`` + ``.gzi``).

The input (plain or gzipped, any size) is read in chunks of a few MiB, checked, re-wrapped at a
fixed line width and compressed as BGZF, so the memory used does not grow with the genome. The
``.fai`` follows samtools' layout (name, length, offset, line bases, line width) and the ``.gzi``
htslib's, so samtools, pysam and IGV open the result directly.

Checks: the file starts with a header line; names are present and unique; no sequence is empty;
sequence letters are A, C, G, T, N in either case (soft-masking and N runs are kept as they are).
IUPAC ambiguity codes (R, Y, K, M, S, W, B, D, H, V) are refused unless ``iupac_to_n`` is set,
in which case they become N (n when soft-masked), and their count is recorded.

:func:`read_fasta_records` reads a small FASTA a user gives (a design target) into memory,
size-limited, keeping its letters as they are.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import InputError
from .bgzf import BgzfWriter

LINE_WIDTH = 60
CHUNK = 1 << 22
_VALID = b"ACGTNacgtn"
_IUPAC = b"RYKMSWBDHVrykmswbdhv"
_IUPAC_TO_N = bytes.maketrans(_IUPAC, b"N" * 10 + b"n" * 10)
_LOWER = b"acgtn"


@dataclass
class SequenceStats:
    """What the import learned about one sequence."""

    name: str
    description: str
    length: int = 0
    header: str = ""  # the header line after '>' as written (Cas-OFFinder's chromosome column)
    offset: int = 0  # of its first base in the uncompressed FASTA (for the .fai)
    n_count: int = 0
    masked: int = 0  # soft-masked (lowercase) bases
    gc: int = 0
    iupac_replaced: int = 0
    _md5: object = field(default_factory=hashlib.md5, repr=False)

    @property
    def md5(self) -> str:
        """MD5 of the upper-cased sequence: the ``M5`` of a SAM header and refget's checksum."""
        return self._md5.hexdigest()

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "header": self.header,
            "length": self.length,
            "n_count": self.n_count,
            "masked": self.masked,
            "gc": self.gc,
            "md5": self.md5,
            "iupac_replaced": self.iupac_replaced,
        }


def open_maybe_gzip(raw) -> io.BufferedIOBase:
    """Wrap a binary stream in a gzip reader when it starts with the gzip magic bytes."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw, 1 << 20)
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    return buffered


class FastaImporter:
    """Read a FASTA stream and write it as BGZF; see the module docstring.

    Parameters
    ----------
    label
        The input's name in error messages (a path or URL).
    iupac_to_n
        Replace IUPAC ambiguity codes with N instead of refusing them.
    """

    def __init__(self, label: str, *, iupac_to_n: bool = False, line_width: int = LINE_WIDTH):
        self.label = label
        self.iupac_to_n = iupac_to_n
        self.width = line_width
        self.sequences: list[SequenceStats] = []
        self._names: set[str] = set()
        self._current: SequenceStats | None = None
        self._wrap = b""  # bases of the current output line not yet written
        self._line = 0  # input line number (for messages)
        self._midline = False  # inside a sequence line whose start was already handled

    # -- reading ----------------------------------------------------------------------------------
    def run(
        self,
        stream,
        writer: BgzfWriter,
        progress: Callable[[], None] | None = None,
    ) -> list[SequenceStats]:
        self._out = writer
        leftover = b""
        first = True
        while True:
            try:
                chunk = stream.read(CHUNK)
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
                raise InputError(f"{self.label} is truncated or corrupt: {exc}") from None
            if first:
                first = False
                if not chunk.strip():
                    raise InputError(f"{self.label} is empty")
                if not chunk.lstrip().startswith(b">"):
                    raise InputError(
                        f"{self.label} is not a FASTA file: it does not start with a '>' header"
                    )
            if not chunk:
                break
            data = leftover + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                leftover = data
                if len(leftover) > CHUNK:  # a line longer than a chunk: keep memory bounded
                    self._partial_line(leftover)
                    leftover = b""
                continue
            self._lines(data[:cut])
            leftover = data[cut:]
            if progress is not None:
                progress()
        if leftover:
            self._lines(leftover + b"\n")
        self._end_sequence()
        if not self.sequences:
            raise InputError(f"{self.label} holds no sequences")
        return self.sequences

    def _partial_line(self, data: bytes) -> None:
        """The start of a very long line (a whole chromosome on one line, say)."""
        if not self._midline and data.startswith(b">"):
            raise InputError(f"{self.label}: a header line is longer than {CHUNK:,} bytes")
        self._sequence(data.translate(None, b"\r"), 0)
        self._midline = True

    def _lines(self, block: bytes) -> None:
        """Handle a block of whole lines."""
        pos = 0
        if self._midline:  # the rest of a long sequence line handed over in part
            eol = block.index(b"\n")
            self._sequence(block[:eol].translate(None, b"\r"), 1)
            self._midline = False
            pos = eol + 1
        while pos < len(block):
            if block[pos] == 0x3E:  # '>'
                eol = block.index(b"\n", pos)
                self._header(block[pos + 1 : eol])
                pos = eol + 1
                continue
            nxt = block.find(b"\n>", pos)
            stop = len(block) if nxt < 0 else nxt + 1
            seq_block = block[pos:stop]
            self._sequence(seq_block.translate(None, b"\r\n"), seq_block.count(b"\n"))
            pos = stop

    def _header(self, line: bytes) -> None:
        self._line += 1
        self._end_sequence()
        text = line.decode("utf-8", "replace").strip()
        name, _, description = text.partition(" ")
        name = name.split("\t")[0]
        if not name:
            raise InputError(f"{self.label}: header at line {self._line} has no sequence name")
        if name in self._names:
            raise InputError(
                f"{self.label}: duplicate sequence name {name!r} (line {self._line}); "
                "sequence names must be unique"
            )
        self._names.add(name)
        self._current = SequenceStats(
            name,
            description.strip(),
            offset=self._out.uncompressed_offset,
            header=line.decode("utf-8", "replace").rstrip("\r\n"),
        )
        header = f">{name}\n".encode()
        self._current.offset += len(header)
        self._out.write(header)

    def _sequence(self, seq: bytes, lines: int) -> None:
        cur = self._current
        first_line = self._line + 1
        self._line += lines
        if not seq:
            return
        if cur is None:
            raise InputError(f"{self.label} is not a FASTA file: sequence before the first header")
        bad = seq.translate(None, _VALID)
        if bad:
            iupac_left = bad.translate(None, _IUPAC)
            if iupac_left:
                ch = chr(iupac_left[0])
                where = cur.length + seq.index(iupac_left[:1]) + 1
                shown = repr(ch) if ch.isprintable() else f"byte 0x{iupac_left[0]:02x}"
                raise InputError(
                    f"{self.label}: invalid character {shown} in sequence {cur.name!r} at position "
                    f"{where:,} (near line {first_line:,}); a FASTA sequence holds only nucleotide "
                    "letters"
                )
            if not self.iupac_to_n:
                where = cur.length + seq.index(bad[:1]) + 1
                raise InputError(
                    f"{self.label}: sequence {cur.name!r} contains the IUPAC ambiguity code "
                    f"{chr(bad[0])!r} at position {where:,}; sandgrain stores A, C, G, T and N "
                    "only — rerun with --iupac-to-n to replace ambiguity codes with N"
                )
            cur.iupac_replaced += len(bad)
            seq = seq.translate(_IUPAC_TO_N)
        upper = seq.upper()
        cur._md5.update(upper)
        cur.length += len(seq)
        cur.n_count += upper.count(b"N")
        cur.gc += upper.count(b"G") + upper.count(b"C")
        cur.masked += len(seq) - len(seq.translate(None, _LOWER))
        self._emit_wrapped(seq)

    def _emit_wrapped(self, seq: bytes) -> None:
        data = self._wrap + seq if self._wrap else seq
        w = self.width
        full = len(data) - len(data) % w
        if full:
            self._out.write(b"\n".join([data[i : i + w] for i in range(0, full, w)]) + b"\n")
        self._wrap = data[full:]

    def _end_sequence(self) -> None:
        cur = self._current
        if cur is None:
            return
        if self._wrap:
            self._out.write(self._wrap + b"\n")
            self._wrap = b""
        if cur.length == 0:
            raise InputError(f"{self.label}: sequence {cur.name!r} is empty")
        self.sequences.append(cur)
        self._current = None

    def fai_text(self) -> str:
        """The ``.fai`` index of what was written (samtools faidx layout)."""
        return "".join(
            f"{s.name}\t{s.length}\t{s.offset}\t{self.width}\t{self.width + 1}\n"
            for s in self.sequences
        )


def read_fasta_records(path, *, max_bp: int = 0, limit_hint: str = "") -> list[tuple[str, str]]:
    """``(name, sequence)`` records of a small FASTA file (plain or gzipped), in file order.

    For targets and queries a user gives, not for genomes (see :class:`FastaImporter`): the
    sequences are kept as they are (case, IUPAC letters; whitespace inside lines dropped), and
    the reader stops with an :class:`~sandgrain.errors.InputError` as soon as more than
    ``max_bp`` bases were read (0: no limit), so a whole genome given by mistake fails fast.
    ``limit_hint`` ends that message (what the user can do about it). Names must be present and
    unique; the file must start with a ``>`` header.
    """
    label = os.fspath(path)
    try:
        raw = open(label, "rb")  # noqa: SIM115 - closed below, wrapped by the gzip reader
    except FileNotFoundError:
        raise InputError(f"cannot read FASTA {label}: no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read FASTA {label}: {exc.strerror or exc}") from None
    records: list[tuple[str, list[str]]] = []
    names: set[str] = set()
    total = 0
    try:
        with raw, open_maybe_gzip(raw) as fh:
            for lineno, line in enumerate(fh, 1):
                text = line.decode("ascii", errors="replace").strip()
                if not text:
                    continue
                if text.startswith(">"):
                    name = text[1:].split(maxsplit=1)[0] if text[1:].strip() else ""
                    if not name:
                        raise InputError(f"FASTA {label} line {lineno}: a record without a name")
                    if name in names:
                        raise InputError(f"FASTA {label}: duplicate sequence name {name!r}")
                    names.add(name)
                    records.append((name, []))
                    continue
                if not records:
                    raise InputError(f"{label} is not a FASTA file: it must start with '>name'")
                text = "".join(text.split())
                total += len(text)
                if max_bp and total > max_bp:
                    raise InputError(
                        f"FASTA {label} holds more than the limit of {max_bp:,} bp"
                        + (f"; {limit_hint}" if limit_hint else "")
                    )
                records[-1][1].append(text)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read FASTA {label}: {exc}") from None
    if not records:
        raise InputError(f"FASTA {label} is empty")
    return [(name, "".join(parts)) for name, parts in records]


@dataclass(frozen=True)
class FaiEntry:
    name: str
    length: int
    offset: int
    line_bases: int
    line_width: int

    def byte_offset(self, pos0: int) -> int:
        """Offset in the uncompressed FASTA of the base at 0-based position ``pos0``."""
        return self.offset + (pos0 // self.line_bases) * self.line_width + pos0 % self.line_bases


def parse_fai(text: str) -> list[FaiEntry]:
    entries = []
    for line in text.splitlines():
        if line.strip():
            name, length, offset, lb, lw = line.split("\t")[:5]
            entries.append(FaiEntry(name, int(length), int(offset), int(lb), int(lw)))
    return entries
