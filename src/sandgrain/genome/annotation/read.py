"""Reading an annotation file: the format from the name or the content, then its reader.

:func:`read_annotation` picks the reader from the file name (``.gtf``, ``.gff``/``.gff3``,
``.tab`` or a name with ``SGD_features``, ``.gb``/``.gbk``/``.gbff``/``.genbank``; each with or
without ``.gz``) and, when the name says nothing, from the first lines of the content. Gzip is
recognised by its magic bytes. :func:`parse_annotation` does the same for bytes in memory (an
upload). A malformed line raises :class:`~sandgrain.errors.InputError` naming the file and the line.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from ...errors import InputError, NotFoundError
from .builder import build_table, chrom_renamer
from .genbank import read_genbank
from .genes import GeneTable
from .gff3 import read_gff3
from .gtf import read_gtf
from .sgd import read_sgd, sgd_chrom

__all__ = [
    "FORMATS",
    "detect_format",
    "format_from_name",
    "normalise_format",
    "open_text",
    "parse_annotation",
    "read_annotation",
    "sniff_format",
]

#: Format names accepted by :func:`read_annotation` (and their aliases).
FORMATS: dict[str, str] = {
    "gtf": "gtf",
    "gff2": "gtf",
    "gff3": "gff3",
    "gff": "gff3",
    "sgd": "sgd",
    "tab": "sgd",
    "genbank": "genbank",
    "gb": "genbank",
    "gbk": "genbank",
    "gbff": "genbank",
}


def format_from_name(name: str) -> str | None:
    low = name.lower()
    for z in (".gz", ".bgz", ".gzip"):
        if low.endswith(z):
            low = low[: -len(z)]
            break
    base = os.path.basename(low)
    if base.endswith(".gtf") or base.endswith(".gff2"):
        return "gtf"
    if base.endswith((".gff3", ".gff")):
        return "gff3"
    if base.endswith((".gb", ".gbk", ".gbff", ".genbank")):
        return "genbank"
    if base.endswith(".tab") or "sgd_features" in base:
        return "sgd"
    return None


def sniff_format(head: str) -> str | None:
    """The format of a file from its first lines, or ``None``."""
    for line in head.splitlines():
        if not line.strip():
            continue
        if line.startswith("LOCUS "):
            return "genbank"
        if line.startswith("##gff-version"):
            return "gff3" if line.split()[1:2] and line.split()[1].startswith("3") else "gtf"
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) >= 9 and cols[3].strip().isdigit() and cols[4].strip().isdigit():
            attrs = cols[8].strip()
            if re.match(r'^[^\s=;"]+\s+"', attrs):
                return "gtf"
            if re.match(r"^[^\s=;]+=", attrs) or attrs == ".":
                return "gff3"
        if len(cols) == 16 and re.match(r"^S\d{9}$", cols[0]):
            return "sgd"
        return None
    return None


def detect_format(path: str | os.PathLike[str], head: str | None = None) -> str:
    """``gtf``, ``gff3``, ``sgd`` or ``genbank`` for ``path`` (name first, then content)."""
    fmt = format_from_name(os.fspath(path))
    if fmt is None:
        if head is None:
            try:
                with open_text(Path(path)) as fh:
                    head = fh.read(64 * 1024)
            except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error):
                head = ""  # binary or corrupt: not any annotation format
        fmt = sniff_format(head)
    if fmt is None:
        raise InputError(
            f"{os.fspath(path)}: cannot tell the annotation format; expected GTF, GFF3, "
            "an SGD features table or GenBank (name the file .gtf, .gff3, .tab or .gbk)"
        )
    return fmt


def normalise_format(fmt: str) -> str:
    try:
        return FORMATS[fmt.lower().lstrip(".")]
    except KeyError:
        raise InputError(
            f"unknown annotation format '{fmt}'; use one of gtf, gff3, sgd, genbank"
        ) from None


def open_text(path: Path) -> IO[str]:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except FileNotFoundError:
        raise NotFoundError(f"annotation file not found: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read annotation file {path}: {e.strerror}") from None
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _parse(
    handle: IO[str],
    fmt: str,
    source: str,
    chrom_map: Mapping[str, str] | None,
    genome: str | None,
    chrom_order: Sequence[str] | None,
) -> GeneTable:
    rename = chrom_renamer(chrom_map)
    try:
        if fmt == "gtf":
            builders = read_gtf(handle, source, rename)
            order = chrom_order
        elif fmt == "gff3":
            builders = read_gff3(handle, source, rename)
            order = chrom_order
        elif fmt == "sgd":
            builders = read_sgd(handle, source, chrom_map)
            order = chrom_order or [sgd_chrom(str(i), chrom_map) for i in range(1, 18)]
        else:
            builders, rec_order = read_genbank(handle, source, rename)
            order = chrom_order or rec_order
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise InputError(f"{source}: corrupt gzip data: {e}") from None
    if not builders:
        raise InputError(f"{source}: no genes found in this {fmt.upper()} file")
    return build_table(builders, genome, order)


def read_annotation(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    chrom_map: Mapping[str, str] | None = None,
    genome: str | None = None,
    chrom_order: Sequence[str] | None = None,
) -> GeneTable:
    """Read a gene annotation file (GTF, GFF3, SGD features table or GenBank; gzip or plain).

    ``format`` is ``gtf``, ``gff3``, ``sgd`` or ``genbank`` (or an alias in :data:`FORMATS`);
    ``None`` detects it. ``chrom_map`` renames chromosomes as they are read (for SGD it maps the
    chromosome numbers, on top of :data:`SGD_CHROMOSOMES`). ``genome`` names the genome in error
    messages; ``chrom_order`` orders the table's chromosomes (e.g. as in the FASTA).
    """
    p = Path(path)
    fmt = normalise_format(format) if format else detect_format(p)
    with open_text(p) as fh:
        return _parse(fh, fmt, str(p), chrom_map, genome, chrom_order)


def parse_annotation(
    data: bytes | str,
    format: str | None = None,
    *,
    source: str = "<annotation>",
    chrom_map: Mapping[str, str] | None = None,
    genome: str | None = None,
    chrom_order: Sequence[str] | None = None,
) -> GeneTable:
    """Like :func:`read_annotation` for content in memory; ``source`` is its name in messages
    (and, when ``format`` is ``None``, the file name the format is guessed from)."""
    if isinstance(data, bytes):
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as e:
                raise InputError(f"{source}: corrupt gzip data: {e}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    else:
        text = data
    if format:
        fmt = normalise_format(format)
    else:
        fmt = format_from_name(source) or sniff_format(text[: 64 * 1024])
        if fmt is None:
            raise InputError(
                f"{source}: cannot tell the annotation format; expected GTF, GFF3, "
                "an SGD features table or GenBank"
            )
    return _parse(io.StringIO(text), fmt, source, chrom_map, genome, chrom_order)
