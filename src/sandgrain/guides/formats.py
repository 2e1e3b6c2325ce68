"""Reading guide lists and writing guide-design results: JSON, TSV, BED and Cas-OFFinder.

Writers take the documents of :mod:`sandgrain.guides.design` (:mod:`.document`; or, for
Cas-OFFinder, the raw search results) and return text. :func:`write_output` puts text on stdout
or atomically into a file: a temporary file in the same directory, then :func:`os.replace`, so a
failed run never leaves a partial file.

TSV conventions (every column sortable as plain values): a header line with the JSON keys as
column names; numbers in plain decimal notation (7 significant digits), booleans ``true`` /
``false``, a missing value (``None``) as an empty cell, lists joined with commas. Nested records
are flattened with dotted names, as ``pandas.json_normalize`` does (``annotation.class``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, TextIO

from ..errors import InputError
from .bulges import MAX_BULGE
from .document import GUIDE_FIELDS
from .iupac import check_pattern
from .nucleases import Nuclease
from .search import MAX_MISMATCHES, OffTargetSite

__all__ = [
    "CASOFFINDER_COLUMNS",
    "OFFTARGET_COLUMNS",
    "NESTED_GUIDE_FIELDS",
    "GuideInput",
    "GuideLine",
    "bed_score",
    "check_output_path",
    "parse_guides",
    "read_guide_input",
    "select_listed",
    "to_bed",
    "to_casoffinder",
    "to_json",
    "to_offtargets_tsv",
    "to_tsv",
    "write_output",
]

#: What each of Cas-OFFinder 2.4's six output columns holds (the output itself has no header).
CASOFFINDER_COLUMNS = ("query", "chrom", "position", "site", "strand", "mismatches")

#: Columns of the per-site TSV of ``guides offtargets`` (JSON off-target keys, flattened).
OFFTARGET_COLUMNS = (
    "guide",
    "chrom",
    "start",
    "end",
    "strand",
    "sequence",
    "pam",
    "pam_pattern",
    "mismatches",
    "mismatch_positions",
    "mit",
    "cfd",
    "annotation.class",
    "annotation.genes",
)


# --------------------------------------------------------------------------------------------
# cells
# --------------------------------------------------------------------------------------------


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        text = f"{value:.7g}"
        if "e" in text:  # plain decimals sort everywhere; 7 significant digits kept
            digits = max(0, 6 - math.floor(math.log10(abs(value))))
            text = f"{value:.{digits}f}"
            text = text.rstrip("0").rstrip(".") if "." in text else text
        return text
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value)
    text = str(value)
    return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _row(values: Iterable) -> str:
    return "\t".join(_cell(v) for v in values) + "\n"


# --------------------------------------------------------------------------------------------
# design and score documents
# --------------------------------------------------------------------------------------------


def to_json(doc: dict) -> str:
    """The document as indented JSON (a trailing newline included)."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


#: Nested guide fields and the keys they are flattened to in TSV (``on_target.chrom`` …).
NESTED_GUIDE_FIELDS = {
    "on_target": ("chrom", "start", "end", "strand"),
    "oligos": ("forward", "reverse"),
    "primers": ("left", "right", "product_size", "unique"),
}


def _variant_cells(variants: list[dict] | None) -> list[str] | None:
    """Known variants in a guide's site as ``chrom:pos:REF>ALT[/ALT…]`` (one TSV cell)."""
    if variants is None:
        return None
    return [f"{v['chrom']}:{v['pos']}:{v['ref']}>{'/'.join(v['alt'])}" for v in variants]


def _guide_columns(doc: dict) -> list[str]:
    guides = doc.get("guides") or []
    keys = list(guides[0]) if guides else list(GUIDE_FIELDS)
    return [k for k in keys if k != "offtargets"]


def _max_mismatches(doc: dict) -> int:
    if "max_mismatches" in doc:
        return int(doc["max_mismatches"])
    guides = doc.get("guides") or []
    return len(guides[0]["offtarget_counts"]) - 1 if guides else 0


def to_tsv(doc: dict) -> str:
    """One row per guide (in the document's order), columns named like the guide's JSON keys.

    Every key but ``offtargets`` (a nested list; see :func:`to_offtargets_tsv`) is a column;
    ``offtarget_counts`` is written joined by commas *and*, right after it, as one column per
    number of mismatches, ``mm0`` … ``mmK``, so that each count sorts on its own. Nested
    records (``on_target``, ``oligos``, ``primers``: :data:`NESTED_GUIDE_FIELDS`) are flattened
    to dotted columns (``on_target.chrom``, …), empty when ``None``; ``variants`` are written
    ``chrom:pos:REF>ALT`` and lists joined with commas.
    """
    keys = _guide_columns(doc)
    k = _max_mismatches(doc)
    mm = [f"mm{i}" for i in range(k + 1)]
    header: list[str] = []
    for key in keys:
        if key in NESTED_GUIDE_FIELDS:
            header += [f"{key}.{sub}" for sub in NESTED_GUIDE_FIELDS[key]]
            continue
        header.append(key)
        if key == "offtarget_counts":
            header += mm
    lines = ["\t".join(header) + "\n"]
    for guide in doc.get("guides") or []:
        values = []
        for key in keys:
            if key in NESTED_GUIDE_FIELDS:
                inner = guide.get(key) or {}
                values += [inner.get(sub) for sub in NESTED_GUIDE_FIELDS[key]]
                continue
            values.append(_variant_cells(guide[key]) if key == "variants" else guide.get(key))
            if key == "offtarget_counts":
                counts = list(guide.get(key) or [])
                values += counts + [None] * (k + 1 - len(counts))
        lines.append(_row(values))
    return "".join(lines)


def _bed_text(text: str) -> str:
    return str(text).replace('"', "'").replace("\n", " ")


def bed_score(guide: dict) -> int:
    """A guide's BED score, 0–1000: ``round(1000 / (1 + Σ CFD))`` over its off-targets (1000
    for none), which is ten times ``cfd_specificity = 100 / (1 + Σ CFD)``. Where CFD does not
    apply, ten times the count specificity in ``score`` (``100 / (1 + Σ 4^-m)``, ``m`` each
    off-target's mismatches: a perfect off-target weighs 1 like a perfect CFD site)."""
    spec = guide.get("cfd_specificity")
    if spec is None:
        spec = guide.get("score")
    if spec is None:
        return 0
    return min(1000, max(0, int(round(10.0 * spec))))


def to_bed(doc: dict, chrom_names: Mapping[str, str] | None = None) -> str:
    """The guides as a BED track (BED6 + thickStart/thickEnd) that IGV and UCSC open.

    ``chrom_names`` maps the genome's chromosome names to those the track is to say (the UCSC
    names of :meth:`sandgrain.genome.store.Genome.ucsc_names`: ``XV`` → ``chrXV``, ``Mito`` →
    ``chrM``); a chromosome it leaves out keeps its own name. With it, a gene or region
    target's track starts with a ``browser position`` line, where the UCSC browser opens.

    Each guide spans its protospacer and PAM (0-based half-open); the thick part is the
    protospacer. ``name`` is ``RANK_PROTOSPACER_PAM``; ``score`` (0–1000, ``useScore=1`` shades
    by it) is :func:`bed_score`: ``round(1000 / (1 + Σ CFD))``, 1000 for a guide without
    off-targets. Lines are sorted by chromosome name and start, as ``sort -k1,1 -k2,2n`` does
    (bedtools wants that). Guides without a position (given guides) are left out. For a
    sequence or FASTA target the chromosome column is the record name (``sequence`` for
    ``--sequence``) and positions are relative to that sequence, not to the genome (the track
    description says so).
    """
    nuclease = doc.get("nuclease") or {}
    side = str(nuclease.get("pam_side", "3"))
    target = doc.get("target") or {}
    label = f"{doc.get('genome', '')} {target.get('name', '')}".strip()
    relative = ""
    if target.get("type") in ("sequence", "fasta"):
        relative = "; positions relative to the given sequence, not the genome"
        chrom_names = None  # record names, not the genome's chromosomes
    rename = dict(chrom_names or {})
    browser = ""
    regions = [r for r in target.get("regions") or () if r.get("chrom") in rename]
    if regions and not relative:
        first = regions[0]["chrom"]
        on_first = [r for r in regions if r["chrom"] == first]
        start = min(r["start"] for r in on_first)
        end = max(r["end"] for r in on_first)
        browser = f"browser position {rename[first]}:{start}-{end}\n"
    track = (
        f'track name="sandgrain {_bed_text(label)}" '
        f'description="sandgrain guides for {_bed_text(label)} '
        f"({_bed_text(nuclease.get('name', ''))}); score = 1000 / (1 + sum of off-target CFD)"
        f'{relative}" useScore=1\n'
    )
    track = browser + track
    rows = []
    for g in doc.get("guides") or []:
        if g.get("chrom") is None or g.get("start") is None:
            continue
        start0, end0 = g["start"] - 1, g["end"]
        plen = len(g.get("pam") or "")
        pam_right = (g["strand"] == "+") == (side == "3")
        site0, site1 = (start0, end0 + plen) if pam_right else (start0 - plen, end0)
        name = f"{g.get('rank')}_{g['sequence']}_{g.get('pam') or ''}".rstrip("_")
        chrom = rename.get(str(g["chrom"]), str(g["chrom"])).replace(" ", "_")
        rows.append((chrom, site0, site1, name, bed_score(g), g["strand"], start0, end0))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[5]))
    return track + "".join("\t".join(str(v) for v in r) + "\n" for r in rows)


def to_offtargets_tsv(doc: dict) -> str:
    """One row per listed off-target site of every guide (:data:`OFFTARGET_COLUMNS`).

    ``guide`` is the guide's protospacer; the other columns are the off-target's JSON keys,
    ``annotation`` flattened to ``annotation.class`` and ``annotation.genes``.
    """
    lines = ["\t".join(OFFTARGET_COLUMNS) + "\n"]
    for g in doc.get("guides") or []:
        for o in g.get("offtargets") or []:
            note = o.get("annotation") or {}
            flat = {**o, "guide": g["sequence"]}
            flat["annotation.class"] = note.get("class")
            flat["annotation.genes"] = note.get("genes")
            lines.append(_row(flat.get(c) for c in OFFTARGET_COLUMNS))
    return "".join(lines)


# --------------------------------------------------------------------------------------------
# Cas-OFFinder
# --------------------------------------------------------------------------------------------


def select_listed(sites: Sequence[OffTargetSite], limit: int | None) -> list[OffTargetSite]:
    """The sites to list: all of them, or the ``limit`` with fewest mismatches (genome order
    among equals), kept in genome order."""
    if limit is None or len(sites) <= limit:
        return list(sites)
    keep = sorted(range(len(sites)), key=lambda i: (sites[i].mismatches, i))[:limit]
    return [sites[i] for i in sorted(keep)]


def _casoffinder_query(guide: str, nuclease: Nuclease) -> str:
    pad = "N" * nuclease.pam_length
    return guide + pad if nuclease.pam_side == "3" else pad + guide


def _casoffinder_site(guide: str, site: OffTargetSite, pam_side: str) -> str:
    proto = "".join(
        b if b == g else b.lower() for g, b in zip(guide, site.protospacer, strict=True)
    )
    return proto + site.pam if pam_side == "3" else site.pam + proto


def to_casoffinder(
    results: Sequence[Sequence[OffTargetSite]],
    guides: Sequence[str],
    nuclease: Nuclease,
    *,
    max_listed: int | None = None,
    chrom_labels: Mapping[str, str] | None = None,
) -> str:
    """Sites in Cas-OFFinder 2.4's output format: six tab-separated columns, no header.

    1. the query as Cas-OFFinder prints it: the guide followed by one ``N`` per PAM base
       (preceded by them for a 5' PAM), e.g. ``GGCCGACCTGTCGCTGACGCNNN``;
    2. the chromosome name, or its label in ``chrom_labels`` (Cas-OFFinder prints the whole
       FASTA header line: :meth:`~sandgrain.genome.store.Genome.fasta_headers`);
    3. the 0-based forward-strand position of the site's leftmost base (protospacer + PAM);
    4. the site on the guide's strand (protospacer + PAM; PAM first for a 5' PAM), mismatched
       protospacer bases in lowercase;
    5. the strand; 6. the number of mismatches.

    Guides in the order given, each one's sites in genome order; ``max_listed`` keeps, per guide,
    the sites with fewest mismatches (see :func:`select_listed`).
    """
    side = nuclease.pam_side
    labels = chrom_labels or {}
    lines = []
    for guide, sites in zip(guides, results, strict=True):
        query = _casoffinder_query(guide, nuclease)
        for s in select_listed(sites, max_listed):
            site = _casoffinder_site(guide, s, side)
            chrom = labels.get(s.chrom, s.chrom)
            lines.append(f"{query}\t{chrom}\t{s.pos0}\t{site}\t{s.strand}\t{s.mismatches}\n")
    return "".join(lines)


# --------------------------------------------------------------------------------------------
# reading guides
# --------------------------------------------------------------------------------------------


class GuideLine(NamedTuple):
    """One guide read from a list."""

    sequence: str
    max_mismatches: int | None  # from the line's second column, if any
    lineno: int
    guide_id: str | None = None  # from the line's third column (Cas-OFFinder 3's ID), if any


class GuideInput(NamedTuple):
    """A guide list as :func:`read_guide_input` reads it."""

    lines: list[GuideLine]
    dna_bulge: int  # the largest DNA bulge a Cas-OFFinder 3 pattern line asks for, else 0
    rna_bulge: int  # the largest RNA bulge it asks for, else 0
    pattern_lineno: int | None  # the line of the pattern, if the list has one


def _is_pattern_line(seq: str, nuclease: Nuclease) -> str | None:
    """The PAM of a Cas-OFFinder pattern line (``NNNNNNNNNNNNNNNNNNNNNRG``), else None."""
    L, P = nuclease.guide_length, nuclease.pam_length
    if len(seq) != L + P:
        return None
    proto, pam = (seq[:L], seq[L:]) if nuclease.pam_side == "3" else (seq[P:], seq[:P])
    return pam if set(proto) == {"N"} else None


_FOLDER_TOKEN = re.compile(r"[A-Za-z0-9._-]+")


def _is_folder_line(line: str, next_line: str | None, nuclease: Nuclease) -> bool:
    """Whether the first line of a list is a Cas-OFFinder input's genome folder line: it holds a
    ``/`` or ``\\``, or it is one bare name (letters, digits, ``._-``; not all A/C/G/T/N, so
    not a guide) followed by the input's pattern line (``NNNNNNNNNNNNNNNNNNNNNGG``)."""
    if "/" in line or "\\" in line:
        return True
    if not _FOLDER_TOKEN.fullmatch(line) or not set(line.upper()) - set("ACGTN"):
        return False
    if _is_pattern_line(line.upper(), nuclease) is not None or next_line is None:
        return False
    return _is_pattern_line(next_line.split()[0].upper(), nuclease) is not None


def parse_guides(text: str, nuclease: Nuclease) -> list[GuideLine]:
    """Guides from a list, one a line, as ``guides offtargets`` and ``guides score`` read them.

    - blank lines and lines starting with ``#`` are skipped; case is ignored;
    - a guide may carry Cas-OFFinder's N padding for the PAM (``GGCC…GACGCNNN``; leading N's
      for a 5' PAM), which is removed;
    - a second column, when present, is that guide's maximum number of mismatches (0–5), as in
      a Cas-OFFinder input file; a third column is the guide's ID (Cas-OFFinder 3's);
    - a whole Cas-OFFinder input file is accepted: its first line (the genome's folder: a path
      with a ``/``, or a bare name such as ``hg19`` — one token of letters, digits and ``._-``
      that is not all A/C/G/T/N — when the pattern line follows it) and its pattern line
      (``NNNNNNNNNNNNNNNNNNNNNGG``, whose PAM must be the nuclease's) are skipped;
    - a Cas-OFFinder 3 pattern line asking for bulges (``NNNNNNNNNNNNNNNNNNNNNGG 2 1``) is an
      error here: :func:`read_guide_input` reads its bulge sizes, for the one command that
      searches bulges (``guides offtargets``).

    The sequences themselves are checked by the search (A, C, G, T and the right length).
    """
    read = read_guide_input(text, nuclease)
    if read.dna_bulge or read.rna_bulge:
        raise InputError(
            f"line {read.pattern_lineno}: the Cas-OFFinder pattern line asks for DNA bulges of up "
            f"to {read.dna_bulge} and RNA bulges of up to {read.rna_bulge} bases; only "
            "`sandgrain guides offtargets` searches bulges"
        )
    return read.lines


def _bulge_size(text: str, lineno: int, kind: str) -> int:
    if not text.isdigit() or int(text) > MAX_BULGE:
        raise InputError(
            f"line {lineno}: the {kind} bulge size of the pattern line must be a number "
            f"0–{MAX_BULGE}, not {text!r}"
        )
    return int(text)


def read_guide_input(text: str, nuclease: Nuclease) -> GuideInput:
    """The guides of a list as :func:`parse_guides` reads them, with the bulge sizes of a
    Cas-OFFinder 3 input: its pattern line may be followed by the largest DNA and RNA bulge
    (``NNNNNNNNNNNNNNNNNNNNNGG 2 1``: DNA bulges of 1–2 bases, RNA bulges of 1; each 0–2)."""
    L, P = nuclease.guide_length, nuclease.pam_length
    dna_bulge = rna_bulge = 0
    pattern_lineno = None
    out: list[GuideLine] = []
    lines = [(n, raw.strip()) for n, raw in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    for index, (lineno, line) in enumerate(lines):
        if index == 0:
            following = lines[1][1] if len(lines) > 1 else None
            if _is_folder_line(line, following, nuclease):
                continue  # the genome folder line of a Cas-OFFinder input
        fields = line.split()
        seq = fields[0].upper()
        pattern_pam = _is_pattern_line(seq, nuclease)
        if pattern_pam is not None:
            if check_pattern(pattern_pam) != nuclease.pam:
                raise InputError(
                    f"line {lineno}: the Cas-OFFinder pattern {seq} asks for the PAM "
                    f"{pattern_pam}, but the search is for {nuclease.pam} ({nuclease.name}); "
                    f"give --pam {pattern_pam}"
                )
            if len(fields) not in (1, 3):
                raise InputError(
                    f"line {lineno}: a Cas-OFFinder pattern line is the pattern alone or "
                    f"followed by the DNA and RNA bulge sizes ({seq} 2 1), not {line!r}"
                )
            if len(fields) == 3:
                dna_bulge = _bulge_size(fields[1], lineno, "DNA")
                rna_bulge = _bulge_size(fields[2], lineno, "RNA")
            pattern_lineno = lineno
            continue
        if len(seq) == L + P:
            pad = seq[L:] if nuclease.pam_side == "3" else seq[:P]
            if set(pad) == {"N"}:
                seq = seq[:L] if nuclease.pam_side == "3" else seq[P:]
        limit = None
        if len(fields) > 3:
            raise InputError(
                f"line {lineno}: expected a guide, optionally followed by its maximum number of "
                f"mismatches (and an ID), not {line!r}"
            )
        if len(fields) >= 2:
            if not fields[1].isdigit() or int(fields[1]) > MAX_MISMATCHES:
                raise InputError(
                    f"line {lineno}: the mismatch column must be a number 0–{MAX_MISMATCHES}, "
                    f"not {fields[1]!r}"
                )
            limit = int(fields[1])
        out.append(GuideLine(seq, limit, lineno, fields[2] if len(fields) == 3 else None))
    if not out:
        raise InputError("no guides given: the list is empty")
    return GuideInput(out, dna_bulge, rna_bulge, pattern_lineno)


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def check_output_path(path: str | os.PathLike | None) -> None:
    """Fail early, before any work, when ``path`` cannot be written."""
    if path is None or os.fspath(path) == "-":
        return
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        raise InputError(f"cannot write {path}: it is a directory")
    if not os.path.isdir(folder):
        raise InputError(f"cannot write {path}: no such directory {folder}")
    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {path}: the directory {folder} is not writable")


def write_output(text: str, path: str | os.PathLike | None = None, stream: TextIO | None = None):
    """Write ``text`` to ``stream`` (default stdout) or, atomically, to the file ``path``."""
    if path is None or os.fspath(path) == "-":
        (stream or sys.stdout).write(text)
        return
    with atomic_output(path) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, binary: bool = False) -> Iterator:
    """A file to write ``path`` through: a temporary file in the same directory, synced and
    renamed onto ``path`` (:func:`os.replace`) when the block ends without an error, removed
    when it raises, so a failed run never leaves a partial file. Text (UTF-8) or ``binary``."""
    check_output_path(path)
    target = os.path.abspath(os.fspath(path))
    fd, tmp = tempfile.mkstemp(
        dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.", suffix=".part"
    )
    try:
        text = {} if binary else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, "wb" if binary else "w", **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
