"""A stored guide design, read once into columns, so that the page and the API can sort, filter
and page through its guides without sending (or parsing) the whole document again.

A design of a 1 Mb region holds 76,541 guides and every off-target of each: far too much to send
to a browser, and too much to parse on every request. :func:`read_design` streams the stored
JSON document (:func:`iter_document`, one guide at a time, memory bounded by the largest guide)
into a :class:`GuideTable`: each guide's record without its off-target list as compact JSON,
the byte range of the whole guide in the stored file (so one guide's off-targets are read alone),
and numpy columns for sorting and filtering. :func:`stream_document` writes a document back guide
by guide, its off-target lists cut or complete.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..storage import Store

__all__ = [
    "DOCUMENT_CHUNK",
    "FILTERED_FLAGS",
    "SORT_KEYS",
    "GuideTable",
    "iter_document",
    "read_design",
    "stream_document",
]

#: Bytes read from the store at a time when streaming a stored document.
DOCUMENT_CHUNK = 1 << 20

#: Numeric guide fields a table sorts on (missing values, ``None``, sort last either way).
NUMERIC_FIELDS = (
    "rank",
    "tier",
    "start",
    "end",
    "gc",
    "efficiency",
    "rs3",
    "ruleset1",
    "crisprscan",
    "out_of_frame",
    "mit_specificity",
    "cfd_specificity",
    "score",
    "exon",
    "cds_percent",
    "offtargets_total",
    "offtargets_exon",
    "offtargets_intron",
    "offtargets_intergenic",
)
#: Text guide fields a table sorts on.
TEXT_FIELDS = ("sequence", "pam", "strand")
#: Largest mismatch count a document may hold (``mm0`` … ``mm5`` sort keys).
_MAX_MM = 5
#: Every sort key: the fields above, ``position`` (chromosome in natural order, then start) and
#: ``mm0`` … ``mm5`` (off-targets with that many mismatches).
SORT_KEYS = (
    "rank",
    "position",
    *TEXT_FIELDS,
    *(f for f in NUMERIC_FIELDS if f not in ("rank", "start", "end")),
    *(f"mm{m}" for m in range(_MAX_MM + 1)),
)
#: Flags a guide gets from its record even when the document has no ``flags`` field.
FILTERED_FLAGS = ("tttt", "offtarget_0mm")

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_NATURAL = re.compile(r"(\d+)")


# --------------------------------------------------------------------------------------------
# streaming a stored document
# --------------------------------------------------------------------------------------------


class _Reader:
    """Top-level JSON values read from text arriving in chunks (``raw_decode`` on a buffer that
    grows geometrically when a value does not fit, so a large value is parsed a bounded number
    of times). Tracks the absolute offset of the buffer's start."""

    def __init__(self, chunks: Iterator[str]):
        self.chunks = chunks
        self.buf = ""
        self.pos = 0
        self.base = 0  # offset of buf[0] in the whole text
        self.eof = False

    def _more(self) -> bool:
        """Append at least as much text as the buffer holds (at least one chunk)."""
        if self.eof:
            return False
        self.base += self.pos
        keep = self.buf[self.pos :]
        self.pos = 0
        pieces = [keep]
        added = 0
        while added == 0 or added < len(keep):
            try:
                piece = next(self.chunks)
            except StopIteration:
                self.eof = True
                break
            pieces.append(piece)
            added += len(piece)
        self.buf = "".join(pieces)
        return added > 0

    def offset(self) -> int:
        return self.base + self.pos

    def peek(self) -> str:
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise ValueError(f"expected one of {chars!r} at offset {self.offset()}, not {c!r}")
        self.pos += 1
        return c

    def value(self):
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self._more():
                    continue
                raise
            # a number or literal that ends the buffer may go on in the next chunk
            if end == len(self.buf) and not isinstance(value, dict | list | str) and self._more():
                continue
            self.pos = end
            return value


def _text_chunks(chunks: Iterable[bytes], ascii_only: list[bool]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    for chunk in chunks:
        if ascii_only[0] and not chunk.isascii():
            ascii_only[0] = False
        yield decoder.decode(chunk)
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def _store_chunks(store: Store, key: str, chunk: int = DOCUMENT_CHUNK) -> Iterator[bytes]:
    size = store.size(key)
    for start in range(0, size, chunk):
        yield store.read_range(key, start, min(size, start + chunk))


def iter_document(
    chunks: Iterable[bytes], spans: list[tuple[int, int]] | None = None, *, raw: bool = False
) -> Iterator[tuple[str, object]]:
    """The top-level entries of a JSON document given as byte chunks, in order: ``(key,
    value)`` for each entry but ``guides``, and ``("guide", record)`` for each guide.

    When ``spans`` is a list, the byte range ``(start, end)`` of each guide in the document is
    appended to it — exact only for an ASCII document (what the design jobs write); for any
    other the list is emptied and set to ``None`` at its end (``spans.append(None)``). With
    ``raw``, each guide comes as ``(record, its JSON text)``.
    """
    ascii_only = [True]
    reader = _Reader(_text_chunks(iter(chunks), ascii_only))
    reader.expect("{")
    if reader.peek() == "}":
        return
    while True:
        key = reader.value()
        if not isinstance(key, str):
            raise ValueError("a JSON object key is not a string")
        reader.expect(":")
        if key == "guides" and reader.peek() == "[":
            reader.expect("[")
            if reader.peek() == "]":
                reader.expect("]")
                yield "guides", []
            else:
                while True:
                    reader.peek()
                    start = reader.offset()
                    guide = reader.value()  # the buffer keeps the text from `start` on
                    if spans is not None:
                        spans.append((start, reader.offset()))
                    if raw:
                        guide = (guide, reader.buf[start - reader.base : reader.pos])
                    yield "guide", guide
                    if reader.expect(",]") == "]":
                        break
        else:
            yield key, reader.value()
        if reader.expect(",}") == "}":
            break
    if spans is not None and not ascii_only[0]:
        spans.clear()
        spans.append(None)


def stream_document(
    chunks: Iterable[bytes], limit: int | None, parameters: dict | None = None
) -> Iterator[bytes]:
    """A stored guide document again as compact JSON, written guide by guide: each guide's
    off-target list cut to its first ``limit`` entries (the most dangerous) with
    ``offtargets_listed_truncated`` set, or complete for ``None``. ``parameters`` (when given)
    are merged into ``provenance.parameters``. Memory is bounded by the largest guide."""
    dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    first, in_guides = True, False
    for key, value in iter_document(chunks):
        if key == "guide":
            listed = value.get("offtargets")
            if limit is not None and listed is not None and len(listed) > limit:
                value = {**value, "offtargets": listed[:limit], "offtargets_listed_truncated": True}
            prefix = "," if in_guides else ("" if first else ",") + '"guides":['
            in_guides, first = True, False
            yield (prefix + dumps(value)).encode()
            continue
        if in_guides:
            yield b"]"
            in_guides = False
        if key == "provenance" and parameters and isinstance(value, dict):
            params = value.get("parameters")
            if isinstance(params, dict):
                value = {**value, "parameters": {**params, **parameters}}
        yield (("{" if first else ",") + dumps(key) + ":" + dumps(value)).encode()
        first = False
    if in_guides:
        yield b"]"
    yield b"{}" if first else b"}"


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


def _natural(text: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p.lower() for p in _NATURAL.split(text))


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value)


def guide_flags(guide: dict) -> list[str]:
    """A guide's flags: its ``flags`` field, with ``tttt`` and ``offtarget_0mm`` added from its
    record when the document predates that field."""
    flags = [str(f) for f in guide.get("flags") or []]
    counts = guide.get("offtarget_counts") or []
    if guide.get("tttt") and "tttt" not in flags:
        flags.append("tttt")
    if counts and counts[0] and "offtarget_0mm" not in flags:
        flags.append("offtarget_0mm")
    return flags


def _haystack(guide: dict, flags: list[str]) -> str:
    words = [str(guide.get("sequence") or ""), str(guide.get("pam") or "")]
    chrom, start, end = guide.get("chrom"), guide.get("start"), guide.get("end")
    if chrom is not None and start is not None and end is not None:
        words += [f"{chrom}:{start}-{end}", f"{chrom}:{start:,}-{end:,}"]
    words += [str(guide.get("strand") or ""), *flags]
    return " ".join(words).lower()


@dataclass
class GuideTable:
    """The guides of one stored design document, as columns (see the module doc).

    ``head`` is the document without its guides; ``rows[i]`` the ``i``-th guide (document
    order, best first) as compact JSON without ``offtargets``; ``spans[i]`` its byte range in
    the stored document (``None`` when the document is not ASCII).
    """

    key: str
    head: dict
    rows: list[bytes]
    spans: list[tuple[int, int]] | None
    numbers: dict[str, np.ndarray]
    texts: dict[str, np.ndarray]
    chroms: list[str]
    chrom_code: np.ndarray
    counts: np.ndarray
    flags: dict[str, np.ndarray]
    haystack: list[str]
    _orders: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def max_mismatches(self) -> int:
        k = self.head.get("max_mismatches")
        return int(k) if isinstance(k, int) else max(0, self.counts.shape[1] - 1)

    @property
    def nbytes(self) -> int:
        """About how much memory the table holds."""
        arrays = [*self.numbers.values(), *self.texts.values(), *self.flags.values()]
        return (
            sum(len(r) + 33 for r in self.rows)
            + sum(len(h) + 49 for h in self.haystack)
            + sum(a.nbytes for a in arrays)
            + self.counts.nbytes
            + self.chrom_code.nbytes
            + (len(self.spans) * 72 if self.spans else 0)
        )

    def index_of_rank(self, rank: int) -> int | None:
        """The row of the guide of ``rank``, or ``None``."""
        ranks = self.numbers["rank"]
        i = rank - 1
        if 0 <= i < len(ranks) and ranks[i] == rank:
            return i
        found = np.flatnonzero(ranks == rank)
        return int(found[0]) if len(found) else None

    # -- sorting and filtering ----------------------------------------------------------------

    def _sort_values(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, missing) of a sort key, values numeric."""
        if key in self.numbers:
            v = self.numbers[key]
            missing = np.isnan(v)
            return np.where(missing, 0.0, v), missing
        if key in self.texts:
            v = self.texts[key]
            missing = v == ""
            _, codes = np.unique(v, return_inverse=True)
            return codes.astype(np.float64), missing
        m = int(key[2:])
        if m < self.counts.shape[1]:
            return self.counts[:, m].astype(np.float64), np.zeros(len(self), bool)
        return np.zeros(len(self)), np.ones(len(self), bool)

    def order(self, key: str, descending: bool = False) -> np.ndarray:
        """Row numbers sorted by ``key`` (:data:`SORT_KEYS`), ties by rank; missing values last
        in either direction."""
        cached = self._orders.get((key, descending))
        if cached is not None:
            return cached
        if key not in SORT_KEYS:
            raise InputError(f"cannot sort by {key!r}; sort by one of {', '.join(SORT_KEYS)}")
        rank = self.numbers["rank"]
        sign = -1.0 if descending else 1.0
        if key == "rank":
            out = np.argsort(sign * rank, kind="stable")
        elif key == "position":
            start = self.numbers["start"]
            missing = np.isnan(start) | (self.chrom_code < 0)
            out = np.lexsort((rank, sign * np.nan_to_num(start), sign * self.chrom_code, missing))
        else:
            values, missing = self._sort_values(key)
            out = np.lexsort((rank, sign * values, missing))
        if len(self._orders) > 16:
            self._orders.clear()
        self._orders[(key, descending)] = out
        return out

    def mask(
        self,
        text: str = "",
        hide_mismatches: int | None = None,
        exclude_flags: Iterable[str] = (),
        max_tier: int | None = None,
    ) -> np.ndarray:
        """Which guides pass the filters: every word of ``text`` in the guide's sequence, PAM,
        position, strand or flags; no off-target with ``hide_mismatches`` mismatches or fewer;
        none of ``exclude_flags``; ``tier`` at most ``max_tier`` (a guide without a tier
        passes)."""
        keep = np.ones(len(self), bool)
        if hide_mismatches is not None and hide_mismatches >= 0 and self.counts.size:
            upto = min(hide_mismatches + 1, self.counts.shape[1])
            keep &= self.counts[:, :upto].sum(axis=1) == 0
        for flag in exclude_flags:
            if flag in self.flags:
                keep &= ~self.flags[flag]
        if max_tier is not None:
            tier = self.numbers["tier"]
            keep &= ~(tier > max_tier)  # NaN (no tier) passes
        words = text.lower().split()
        if words:
            hay = self.haystack
            idx = np.flatnonzero(keep)
            hits = [i for i in idx if all(w in hay[i] for w in words)]
            keep = np.zeros(len(self), bool)
            keep[hits] = True
        return keep


def build_table(key: str, entries: Iterable[tuple[str, object]], spans) -> GuideTable:
    """A :class:`GuideTable` from :func:`iter_document`'s entries (``raw=True``)."""
    dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    head: dict = {}
    rows: list[bytes] = []
    numbers: dict[str, list[float]] = {f: [] for f in NUMERIC_FIELDS}
    texts: dict[str, list[str]] = {f: [] for f in TEXT_FIELDS}
    chroms: list[str | None] = []
    counts: list[list[int]] = []
    flag_rows: list[list[str]] = []
    haystack: list[str] = []
    for name, value in entries:
        if name != "guide":
            if name != "guides":
                head[name] = value
            continue
        guide, text = value
        cut = text.rfind(',"offtargets":')
        if cut > 0 and next(reversed(guide)) == "offtargets":
            # the record's JSON up to its last key, as written (quotes inside JSON strings are
            # escaped, so this key is the record's own): no need to encode it again
            rows.append(text[:cut].encode() + b"}")
            guide.pop("offtargets")
        else:
            guide = dict(guide)
            guide.pop("offtargets", None)
            rows.append(dumps(guide).encode())
        for f in NUMERIC_FIELDS:
            numbers[f].append(_number(guide.get(f)))
        for f in TEXT_FIELDS:
            v = guide.get(f)
            texts[f].append("" if v is None else str(v))
        chrom = guide.get("chrom")
        chroms.append(None if chrom is None else str(chrom))
        counts.append([int(c) for c in guide.get("offtarget_counts") or []])
        flags = guide_flags(guide)
        flag_rows.append(flags)
        haystack.append(_haystack(guide, flags))
    n = len(rows)
    k = head.get("max_mismatches")
    width = (int(k) + 1) if isinstance(k, int) else max((len(c) for c in counts), default=0)
    count_array = np.zeros((n, width), np.int64)
    for i, c in enumerate(counts):
        count_array[i, : min(width, len(c))] = c[:width]
    names = sorted({c for c in chroms if c is not None}, key=_natural)
    code = {c: i for i, c in enumerate(names)}
    chrom_code = np.array([code.get(c, -1) if c is not None else -1 for c in chroms], np.int64)
    flag_names = sorted({f for fl in flag_rows for f in fl} | set(FILTERED_FLAGS))
    flag_arrays = {f: np.zeros(n, bool) for f in flag_names}
    for i, fl in enumerate(flag_rows):
        for f in fl:
            flag_arrays[f][i] = True
    if spans is not None and spans[-1:] == [None]:
        spans = None
    return GuideTable(
        key=key,
        head=head,
        rows=rows,
        spans=spans,
        numbers={f: np.array(v, np.float64) for f, v in numbers.items()},
        texts={f: np.array(v, dtype=str) if v else np.array([], str) for f, v in texts.items()},
        chroms=names,
        chrom_code=chrom_code,
        counts=count_array,
        flags=flag_arrays,
        haystack=haystack,
    )


def read_design(store: Store, key: str) -> GuideTable:
    """The :class:`GuideTable` of the design document stored at ``key``, streamed."""
    spans: list = []
    return build_table(key, iter_document(_store_chunks(store, key), spans, raw=True), spans)


def read_guide(store: Store, table: GuideTable, i: int) -> dict:
    """The whole ``i``-th guide of the table's stored document (its off-targets included),
    read alone when the table knows where it lies."""
    if table.spans is not None:
        start, end = table.spans[i]
        return json.loads(store.read_range(table.key, start, end))
    guides = (v for name, v in iter_document(_store_chunks(store, table.key)) if name == "guide")
    for n, guide in enumerate(guides):
        if n == i:
            return guide
    raise IndexError(i)


def document_chunks(store: Store, key: str) -> Iterator[bytes]:
    """The stored document at ``key`` as byte chunks of :data:`DOCUMENT_CHUNK`."""
    return _store_chunks(store, key)
