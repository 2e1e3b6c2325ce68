"""Off-target sites written as they are found: Cas-OFFinder text, TSV, JSON and Parquet.

``sandgrain guides offtargets`` can list tens of millions of sites. :func:`write_offtargets`
searches the guides in batches (:func:`~sandgrain.guides.batch.iter_search`: a batch's hits fit a
memory budget) and writes each batch's sites straight from the columns of its table, chunk by
chunk, while the next batch is searched: memory is bounded by two batches, never by the number
of sites, and no Python object is made per site. Chunks go out from a writer thread, so the
writes overlap with making the next chunk. The text of a chunk is laid out by one numba
kernel (:mod:`.textkernel`) from integer columns and a small table of *tokens* (chromosome
names, the guides, each distinct score and mismatch-position list formatted once by the same
Python code the plain writers use), so the output is byte for byte the plain writers' output
(:func:`~sandgrain.guides.formats.to_casoffinder`, :func:`~sandgrain.guides.formats.to_json`,
:func:`~sandgrain.guides.formats.to_offtargets_tsv` of
:func:`~sandgrain.guides.design.score_search`'s document); the tests compare them.

What each format holds, per guide in the order given:

``casoffinder``
    Cas-OFFinder 2.4's six columns (:func:`~sandgrain.guides.formats.to_casoffinder`), the
    sites in genome order; with ``max_offtargets_listed``, the sites with fewest mismatches.
``tsv``
    :data:`~sandgrain.guides.formats.OFFTARGET_COLUMNS`, one row per listed site, most
    dangerous first (fewest mismatches, highest CFD when scored, genome order), as the JSON
    document lists them.
``json``
    The document of :func:`~sandgrain.guides.design.score_search` with every site listed. The
    guide records (counts, specificities, ranks) are made by ``score_search`` itself on each
    batch and ranked over all guides at the end; each guide's off-target list is written to a
    spool file as its batch is done, and copied into the document at the end.
``parquet``
    The rows and columns of ``tsv``, typed (``mismatch_positions`` and ``annotation.genes``
    are lists), one row group per chunk; the schema metadata holds the provenance record
    (``sandgrain`` key: the document without its guides).

Files are written atomically (:func:`~sandgrain.guides.formats.atomic_output`). Standard output
gets the text as it is made, as Cas-OFFinder's does: a run that fails midway has written part
of it, and says so with a non-zero exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import queue
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import InputError
from ..genome.store import Genome
from .annotate import CLASSES, INTERGENIC
from .batch import BATCH_HITS, FIRST_BATCH, GuideSearch, iter_search, open_guide_index
from .document import assign_ranks
from .formats import OFFTARGET_COLUMNS, _cell, atomic_output, check_output_path
from .hits import Hits
from .kernels import encode
from .nucleases import is_spcas9_like
from .request import ScoreRequest
from .textkernel import BYTES, INTEGER, ROW_TOKEN, TOKEN, assemble, mismatch_masks, site_letters

__all__ = ["FORMATS", "OffTargetsWritten", "write_offtargets"]

#: The formats :func:`write_offtargets` writes.
FORMATS = ("casoffinder", "tsv", "json", "parquet")

#: Text a chunk aims at; rows per chunk follow from each format's bytes a row.
CHUNK_BYTES = 16 << 20
_ROW_BYTES = {"casoffinder": 80, "tsv": 140, "json": 640, "parquet": 160}
#: Bytes copied at once from the JSON spool into the document.
_COPY_BYTES = 8 << 20


@dataclass
class OffTargetsWritten:
    """What :func:`write_offtargets` wrote: per guide (in the order given) its sites counted
    (``totals``, exact; its on-target left out when the request says so) and listed."""

    guides: list[str]
    totals: np.ndarray
    listed: np.ndarray
    batches: int

    def truncated(self) -> list[int]:
        """Indices of the guides whose listing was cut."""
        return np.nonzero(self.listed < self.totals)[0].tolist()


# --------------------------------------------------------------------------------------------
# tokens
# --------------------------------------------------------------------------------------------


class Tokens:
    """Texts stored back to back for :func:`~sandgrain.guides.textkernel.assemble`, each
    stored once: the fixed ones of a run (separators, chromosome names, the guides), then the
    formatted values the chunks add (:class:`_Texts`), dropped by :meth:`reset` when they
    pass :data:`TOKENS_MAX`."""

    def __init__(self):
        self._texts: list[bytes] = []
        self._ids: dict[bytes, int] = {}
        self._fixed = 0
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, text: str | bytes) -> int:
        """The number of ``text`` (the same number for the same text)."""
        data = text.encode() if isinstance(text, str) else text
        found = self._ids.get(data)
        if found is None:
            found = self._ids[data] = len(self._texts)
            self._texts.append(data)
            self._arrays = None
        return found

    def add_all(self, texts) -> np.ndarray:
        """Numbers of many texts."""
        return np.array([self.add(t) for t in texts], np.int64)

    def fix(self) -> None:
        """Keep the texts so far through :meth:`reset`."""
        self._fixed = len(self._texts)

    def reset(self) -> None:
        """Drop the texts added since :meth:`fix`."""
        for data in self._texts[self._fixed :]:
            del self._ids[data]
        del self._texts[self._fixed :]
        self._arrays = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(data, offsets)`` for the kernel."""
        if self._arrays is None:
            lengths = np.fromiter(map(len, self._texts), np.int64, len(self._texts))
            off = np.zeros(len(lengths) + 1, np.int64)
            np.cumsum(lengths, out=off[1:])
            self._arrays = (np.frombuffer(b"".join(self._texts), np.uint8), off)
        return self._arrays


#: Texts a run keeps formatted before it starts over (a few tens of MB at most).
TOKENS_MAX = 1 << 20


class _Texts:
    """Token numbers of values (scores, mismatch masks, gene lists), each distinct value
    formatted by ``fmt`` once a run (until the token table starts over)."""

    def __init__(self, tokens: Tokens, fmt: Callable):
        self.tokens, self.fmt = tokens, fmt
        self.known: dict = {}

    def ids(self, values: np.ndarray) -> np.ndarray:
        import pyarrow as pa  # a hash table: 3–20 times np.unique's sort, for these columns

        encoded = pa.array(values).dictionary_encode()
        distinct = encoded.dictionary.to_pylist()
        return self.of(distinct)[encoded.indices.to_numpy(zero_copy_only=False)]

    def of(self, values: list) -> np.ndarray:
        """Token numbers of these values (any hashable ones)."""
        known, out = self.known, np.empty(len(values), np.int64)
        for j, v in enumerate(values):
            t = known.get(v)
            if t is None:
                t = known[v] = self.tokens.add(self.fmt(v))
            out[j] = t
        return out


class _Layout:
    """A line as segments (see :mod:`.textkernel`); ``add`` appends one."""

    def __init__(self):
        self.kind: list[int] = []
        self.arg: list[int] = []
        self.width: list[int] = []

    def add(self, kind: int, arg: int, width: int = 0) -> _Layout:
        self.kind.append(kind)
        self.arg.append(arg)
        self.width.append(width)
        return self

    def text(self, tokens: Tokens, literal: str) -> _Layout:
        return self.add(TOKEN, tokens.add(literal)) if literal else self

    def render(self, cols: list[np.ndarray], fixed: np.ndarray, tokens: Tokens):
        """The chunk's text (``uint8``) and where each line ends in it."""
        table = np.empty((len(fixed), len(cols)), np.int64)
        for j, c in enumerate(cols):
            table[:, j] = c
        data, off = tokens.arrays()
        return assemble(
            np.array(self.kind, np.int64),
            np.array(self.arg, np.int64),
            np.array(self.width, np.int64),
            table,
            np.ascontiguousarray(fixed),
            data,
            off,
        )


# --------------------------------------------------------------------------------------------
# one batch: which rows, in which order, with which columns
# --------------------------------------------------------------------------------------------


@dataclass
class _Batch:
    """One searched batch of guides and the rows to write, in output order."""

    start: int  # index of the batch's first guide in the request
    search: GuideSearch
    rows: np.ndarray  # rows of search.table, output order
    guide: np.ndarray  # index of each row's guide in the batch
    totals: np.ndarray  # per guide of the batch: sites counted
    hits: Hits | None  # scores, spans and classes of every row, when the format needs them


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``starts[0] … starts[0] + counts[0] - 1``, then the next range, …, as one array."""
    offsets = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(starts - offsets, counts)


def _select(search: GuideSearch, hits: Hits | None, request: ScoreRequest, danger: bool):
    """The rows to write, the guide (of the batch) of each, and each guide's sites counted:
    per guide, its rows within its own limit, its on-target (its first 0-mismatch site) left
    out when asked, cut to the listing limit, in genome order (``danger`` false: Cas-OFFinder
    keeps the sites with fewest mismatches, then genome order) or most dangerous first (fewest
    mismatches, highest CFD when scored, genome order; as :class:`~sandgrain.guides.hits.Hits`
    lists them). Whole guides are handled on the columns; only ordering and cutting look at
    one guide at a time."""
    t = search.table
    n = len(search.guides)
    slots = np.asarray(search.slots, np.int64)
    limits = np.asarray(search.limits, np.int64)
    b = search.bounds
    counts = b[slots + 1] - b[slots]
    owner = np.repeat(np.arange(n, dtype=np.int64), counts)
    rows = _ranges(b[slots], counts)  # each guide's rows, in genome order
    if (limits < search.max_mismatches).any():
        keep = t.mismatches[rows] <= limits[owner]
        rows, owner = rows[keep], owner[keep]
    if request.exclude_on_target:
        zero = np.flatnonzero(t.mismatches[rows] == 0)
        _, first = np.unique(owner[zero], return_index=True)
        keep = np.ones(len(rows), bool)
        keep[zero[first]] = False  # each guide's first 0-mismatch site: its on-target
        rows, owner = rows[keep], owner[keep]
    totals = np.bincount(owner, minlength=n)
    if not request.list_offtargets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), totals
    limit = request.max_offtargets_listed
    if not danger and (limit is None or (totals <= limit).all()):
        return rows, owner, totals
    scored = hits is not None and hits.scored
    ends = np.cumsum(totals)
    picked = []
    for i in np.flatnonzero(totals).tolist():
        r = rows[ends[i] - totals[i] : ends[i]]
        mm = t.mismatches[r]
        if danger:
            order = np.lexsort((r, -hits.cfd[r], mm) if scored else (r, mm))
            r = r[order[:limit] if limit is not None else order]
        elif len(r) > limit:
            r = r[np.sort(np.lexsort((r, mm))[:limit])]
        picked.append(r)
    listed = np.minimum(totals, limit) if limit is not None else totals
    rows = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return rows, np.repeat(np.arange(n, dtype=np.int64), listed), totals


def _as_index(rows: np.ndarray):
    """``rows`` as a slice when they are consecutive (a batch's rows usually are, for
    Cas-OFFinder output): columns are then read as views, not copied."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and bool((np.diff(rows) == 1).all()):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


class _Chunk:
    """The columns of some rows of a batch, as the writers need them."""

    def __init__(self, batch: _Batch, lo: int, hi: int, gcodes: np.ndarray):
        t = batch.search.table
        self.table = t
        self.rows = batch.rows[lo:hi]
        r = _as_index(self.rows)
        self.n = len(self.rows)
        self.local = batch.guide[lo:hi]  # guide in the batch
        self.guide = batch.start + self.local  # guide in the request
        self.slot = np.asarray(batch.search.slots, np.int64)[self.local]  # distinct guide
        self.gcodes = gcodes
        self.chrom = t.chrom[r]
        self.pos0 = t.pos0[r]
        self.minus = t.minus[r].astype(np.int64)
        self.mismatches = t.mismatches[r]
        self.pattern = t.pattern[r]
        self.first = np.ones(self.n, bool)  # the first row of its guide in the batch
        self.last = np.ones(self.n, bool)
        if self.n:
            self.first[1:] = self.local[1:] != self.local[:-1]
            self.last[:-1] = self.local[1:] != self.local[:-1]
            self.first[0] = lo == 0 or batch.guide[lo - 1] != self.local[0]
            self.last[-1] = hi == len(batch.rows) or batch.guide[hi] != self.local[-1]
        h = batch.hits
        if h is not None:
            self.start0 = h.start0[r]
            self.end0 = h.end0[r]
            self.klass = h.klass[r].astype(np.int64)
            self.mit = h.mit[r] if h.scored else None
            self.cfd = h.cfd[r] if h.scored else None

    def letters(self, lowercase: bool, pam_first: bool) -> np.ndarray:
        """Protospacer and PAM letters, one row each (:func:`.textkernel.site_letters`)."""
        t = self.table
        return site_letters(
            t.protospacer, t.pam, self.rows, self.gcodes, self.slot, lowercase, pam_first
        )

    def masks(self, side: str) -> np.ndarray:
        """Mismatch positions as bits, counted from the PAM-distal end (the 3' end for a 5'
        PAM), as ``mismatch_positions`` gives them."""
        t = self.table
        return mismatch_masks(t.protospacer, self.rows, self.gcodes, self.slot, side == "5")


@functools.lru_cache(maxsize=1 << 16)
def _positions(mask: int) -> list[int]:
    """The mismatch positions of a mask (:meth:`_Chunk.masks`), 1-based, ascending."""
    return [p + 1 for p in range(mask.bit_length()) if mask >> p & 1]


def _gene_names(chunk: _Chunk, chroms: list[str], genes) -> tuple[np.ndarray, list[tuple]]:
    """Per row, the number of its gene list (0: none) and the lists, as
    :class:`~sandgrain.guides.hits.Hits` names the genes a listed site overlaps: looked up once
    per distinct span, and not at all for intergenic sites."""
    ids = np.zeros(chunk.n, np.int64)
    lists: list[tuple] = [()]
    genic = np.nonzero(chunk.klass != INTERGENIC)[0]
    if not len(genic):
        return ids, lists
    key = (chunk.chrom[genic] << np.int64(33)) | chunk.start0[genic]
    spans, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    number: dict[tuple[str, ...], int] = {(): 0}
    per_span = np.empty(len(spans), np.int64)
    for j, row in enumerate(genic[first].tolist()):
        chrom = chroms[int(chunk.chrom[row])]
        found = genes.genes_in(chrom, int(chunk.start0[row]), int(chunk.end0[row]))
        names = tuple(dict.fromkeys(g.symbol or g.gene_id for g in found))
        if names not in number:
            number[names] = len(lists)
            lists.append(names)
        per_span[j] = number[names]
    ids[genic] = per_span[inverse.reshape(-1)]
    return ids, lists


# --------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """What every writer knows of the run."""

    genome: Genome
    request: ScoreRequest
    chroms: list[str]
    patterns: tuple[str, ...]
    guides: list[str]
    side: str
    L: int
    P: int
    scored: bool
    header: dict | None  # the document without guides (JSON, Parquet)
    labels: Mapping[str, str] | None = None  # Cas-OFFinder's chromosome column, when given


class _Writer:
    """Writes the chunks of one run; ``danger``: rows most dangerous first (else genome order);
    ``needs_hits``: the rows' scores, spans and classes (:class:`~.hits.Hits`). A text writer
    makes its fixed tokens, then :meth:`fixed`; each chunk starts with :meth:`tokens_for`."""

    danger = True
    needs_hits = True

    def __init__(self, run: _Run, sink: BinaryIO):
        self.run = run
        self.sink = sink
        self.tokens = Tokens()
        self.texts: list[_Texts] = []

    def fixed(self, *texts: _Texts) -> None:
        self.tokens.fix()
        self.texts = list(texts)

    def tokens_for(self) -> Tokens:
        """The token table, started over when the formatted values pass :data:`TOKENS_MAX`."""
        if len(self.tokens) > TOKENS_MAX:
            self.tokens.reset()
            for texts in self.texts:
                texts.known.clear()
        return self.tokens

    def begin(self) -> None:
        pass

    def chunk(self, batch: _Batch, chunk: _Chunk) -> None:
        raise NotImplementedError

    def batch_done(self, batch: _Batch) -> None:
        pass

    def finish(self) -> None:
        pass


class _CasOffinderWriter(_Writer):
    """:func:`~sandgrain.guides.formats.to_casoffinder`'s lines. A line is five segments: the
    tabs ride with the texts around them (``query\t``, ``chrom\t``, ``\t-\t``)."""

    danger = False
    needs_hits = False

    def __init__(self, run: _Run, sink: BinaryIO):
        super().__init__(run, sink)
        pad = "N" * run.P
        t = self.tokens
        self.query = t.add_all((g + pad if run.side == "3" else pad + g) + "\t" for g in run.guides)
        labels = run.labels or {}
        self.chrom = t.add_all(labels.get(c, c) + "\t" for c in run.chroms)
        self.strand = t.add_all(["\t+\t", "\t-\t"])
        lay = _Layout().add(ROW_TOKEN, 0).add(ROW_TOKEN, 1).add(INTEGER, 2).text(t, "\t")
        lay.add(BYTES, 0, run.L + run.P).add(ROW_TOKEN, 3).add(INTEGER, 4).text(t, "\n")
        self.layout = lay
        self.fixed()

    def chunk(self, batch: _Batch, c: _Chunk) -> None:
        cols = [
            self.query[c.guide],
            self.chrom[c.chrom],
            c.pos0,
            self.strand[c.minus],
            c.mismatches,
        ]
        letters = c.letters(lowercase=True, pam_first=self.run.side == "5")
        text, _ = self.layout.render(cols, letters, self.tokens)
        self.sink.write(text)


class _TsvWriter(_Writer):
    """:func:`~sandgrain.guides.formats.to_offtargets_tsv`'s rows; cells as ``_cell`` makes
    them (each distinct value formatted once; the tabs ride with the texts around them)."""

    def __init__(self, run: _Run, sink: BinaryIO):
        super().__init__(run, sink)
        t = self.tokens
        self.guide = t.add_all(_cell(g) + "\t" for g in run.guides)
        self.chrom = t.add_all(_cell(c) + "\t" for c in run.chroms)
        self.strand = t.add_all(["\t+\t", "\t-\t"])
        self.pattern = t.add_all("\t" + _cell(p) + "\t" for p in run.patterns)
        self.klass = t.add_all(_cell(c) + "\t" for c in CLASSES)
        lay = _Layout().add(ROW_TOKEN, 0).add(ROW_TOKEN, 1)  # guide, chrom
        lay.add(INTEGER, 2).text(t, "\t").add(INTEGER, 3).add(ROW_TOKEN, 4)  # start, end, strand
        lay.add(BYTES, 0, run.L).text(t, "\t").add(BYTES, run.L, run.P)  # sequence, PAM
        lay.add(ROW_TOKEN, 5).add(INTEGER, 6).text(t, "\t")  # pattern, mismatches
        lay.add(ROW_TOKEN, 7)  # mismatch positions
        if run.scored:
            lay.add(ROW_TOKEN, 8).add(ROW_TOKEN, 9)  # mit, cfd
        else:
            lay.text(t, "\t\t")
        lay.add(ROW_TOKEN, 10).add(ROW_TOKEN, 11)  # class, genes
        self.layout = lay
        self.masks = _Texts(t, lambda m: _cell(_positions(m)) + "\t")
        self.mit = _Texts(t, _cell)
        self.cfd = _Texts(t, lambda v: "\t" + _cell(v) + "\t")
        self.genes = _Texts(t, lambda names: _cell(names) + "\n")
        self.fixed(self.masks, self.mit, self.cfd, self.genes)

    def begin(self) -> None:
        self.sink.write(("\t".join(OFFTARGET_COLUMNS) + "\n").encode())

    def chunk(self, batch: _Batch, c: _Chunk) -> None:
        run = self.run
        tokens = self.tokens_for()
        gene_ids, gene_lists = _gene_names(c, run.chroms, run.genome.genes)
        none = np.zeros(c.n, np.int64)
        cols = [
            self.guide[c.guide],
            self.chrom[c.chrom],
            c.start0 + 1,
            c.end0,
            self.strand[c.minus],
            self.pattern[c.pattern],
            c.mismatches,
            self.masks.ids(c.masks(run.side)),
            self.mit.ids(c.mit) if run.scored else none,
            self.cfd.ids(c.cfd) if run.scored else none,
            self.klass[c.klass],
            self.genes.of(gene_lists)[gene_ids],
        ]
        text, _ = self.layout.render(cols, c.letters(False, False), tokens)
        self.sink.write(text)


#: Indentation of the JSON document (``json.dumps(indent=2)``) at an off-target's keys.
_SITE = " " * 10


def _json_list(items: list[str], indent: int) -> str:
    """A list of JSON texts as ``json.dumps(indent=2)`` writes it at this depth."""
    if not items:
        return "[]"
    inner = " " * (indent + 2)
    return "[\n" + ",\n".join(inner + i for i in items) + "\n" + " " * indent + "]"


class _JsonWriter(_Writer):
    """:func:`~sandgrain.guides.formats.to_json` of the document, streamed (module doc)."""

    _SENTINEL = "\x00sandgrain-offtargets-{}\x00"
    _FOUND = re.compile(r'"\\u0000sandgrain-offtargets-(\d+)\\u0000"')

    def __init__(self, run: _Run, sink: BinaryIO, spool_dir: str | None):
        super().__init__(run, sink)
        t = self.tokens
        # a site's text, its keys riding with the values before them
        self.open = t.add_all(
            [f'[\n        {{\n{_SITE}"chrom": ', f',\n        {{\n{_SITE}"chrom": ']
        )
        self.chrom = t.add_all(json.dumps(c) + f',\n{_SITE}"start": ' for c in run.chroms)
        self.strand = t.add_all(f',\n{_SITE}"strand": "{s}",\n{_SITE}"sequence": "' for s in "+-")
        self.pattern = t.add_all(
            f'",\n{_SITE}"pam_pattern": {json.dumps(p)},\n{_SITE}"mismatches": '
            for p in run.patterns
        )
        self.klass = t.add_all(f'{json.dumps(c)},\n{_SITE}  "genes": ' for c in CLASSES)
        self.close = t.add_all([f"\n{_SITE}}}\n        }}", f"\n{_SITE}}}\n        }}\n      ]"])
        lay = _Layout().add(ROW_TOKEN, 0).add(ROW_TOKEN, 1).add(INTEGER, 2)  # chrom, start
        lay.text(t, f',\n{_SITE}"end": ').add(INTEGER, 3).add(ROW_TOKEN, 4)  # end, strand
        lay.add(BYTES, 0, run.L).text(t, f'",\n{_SITE}"pam": "').add(BYTES, run.L, run.P)
        lay.add(ROW_TOKEN, 5).add(INTEGER, 6)  # pattern, mismatches
        lay.text(t, f',\n{_SITE}"mismatch_positions": ').add(ROW_TOKEN, 7)
        if run.scored:
            lay.add(ROW_TOKEN, 8).add(ROW_TOKEN, 9)  # ",\n mit: …" and ",\n cfd: …"
        else:
            lay.text(t, f',\n{_SITE}"mit": null,\n{_SITE}"cfd": null')
        lay.text(t, f',\n{_SITE}"annotation": {{\n{_SITE}  "class": ').add(ROW_TOKEN, 10)
        lay.add(ROW_TOKEN, 11).add(ROW_TOKEN, 12)  # genes, the end (of the list, after the last)
        self.layout = lay
        self.masks = _Texts(t, lambda m: _json_list([str(p) for p in _positions(m)], 10))
        # json writes a float as float.__repr__ does (finite: scores are)
        self.mit = _Texts(t, lambda v: f',\n{_SITE}"mit": {v!r}')
        self.cfd = _Texts(t, lambda v: f',\n{_SITE}"cfd": {v!r}')
        self.genes = _Texts(t, lambda names: _json_list([json.dumps(n) for n in names], 12))
        self.fixed(self.masks, self.mit, self.cfd, self.genes)
        # closed by finish, or with the process when the run fails
        self.spool = tempfile.TemporaryFile(dir=spool_dir, prefix=".sandgrain-offtargets-")  # noqa: SIM115
        self.spooler = _Background(self.spool)
        self.size = 0
        self.spans: dict[int, tuple[int, int]] = {}
        self.records: list[dict] = []
        self._begun: dict[int, int] = {}

    def chunk(self, batch: _Batch, c: _Chunk) -> None:
        run = self.run
        tokens = self.tokens_for()
        gene_ids, gene_lists = _gene_names(c, run.chroms, run.genome.genes)
        none = np.zeros(c.n, np.int64)
        cols = [
            self.open[(~c.first).astype(np.int64)],
            self.chrom[c.chrom],
            c.start0 + 1,
            c.end0,
            self.strand[c.minus],
            self.pattern[c.pattern],
            c.mismatches,
            self.masks.ids(c.masks(run.side)),
            self.mit.ids(c.mit) if run.scored else none,
            self.cfd.ids(c.cfd) if run.scored else none,
            self.klass[c.klass],
            self.genes.of(gene_lists)[gene_ids],
            self.close[c.last.astype(np.int64)],
        ]
        text, ends = self.layout.render(cols, c.letters(False, False), tokens)
        base = self.size
        self.spooler.write(text)
        self.size += len(text)
        starts = np.concatenate([[0], ends[:-1]]) + base
        for j in np.nonzero(c.first)[0].tolist():
            self._begun[int(c.guide[j])] = int(starts[j])
        for j in np.nonzero(c.last)[0].tolist():
            g = int(c.guide[j])
            self.spans[g] = (self._begun.pop(g), base + int(ends[j]))

    def batch_done(self, batch: _Batch) -> None:
        from .design import score_search  # design imports the batch machinery this uses

        search = dataclasses.replace(
            batch.search, request=dataclasses.replace(self.run.request, list_offtargets=False)
        )
        self.records += score_search(search, command=self.run.header["command"])["guides"]

    def finish(self) -> None:
        self.spooler.close()
        doc = dict(self.run.header["document"])
        records = self.records
        assign_ranks(records)  # over all guides; the records stay in input order
        listing = self.run.request.list_offtargets
        for i, rec in enumerate(records):
            if i in self.spans:
                rec["offtargets"] = self._SENTINEL.format(i)
            else:
                rec["offtargets"] = [] if listing else None
        doc["guides"] = records
        text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
        pieces = self._FOUND.split(text)
        for j, piece in enumerate(pieces):
            if j % 2 == 0:
                self.sink.write(piece.encode())
            else:
                self._copy(*self.spans[int(piece)])
        self.spool.close()

    def _copy(self, start: int, end: int) -> None:
        """Bytes ``start:end`` of the spool onto the sink: in the kernel where it can
        (``copy_file_range`` to a file, ``sendfile`` to a pipe), else through a buffer."""
        self.spool.flush()
        try:
            src, dst = self.spool.fileno(), self.sink.fileno()
            self.sink.flush()
        except (AttributeError, OSError, ValueError):
            src = dst = None
        for move in (_copy_file_range, _sendfile):
            if start < end and dst is not None:
                start = move(src, dst, start, end)
        self.spool.seek(start)
        while start < end:
            block = self.spool.read(min(_COPY_BYTES, end - start))
            self.sink.write(block)
            start += len(block)


def _copy_file_range(src: int, dst: int, start: int, end: int) -> int:
    """Copies ``src[start:end]`` at ``dst``'s position until done or refused; where it got."""
    with contextlib.suppress(OSError, AttributeError):
        while start < end:
            n = os.copy_file_range(src, dst, end - start, start)
            if n <= 0:
                break
            start += n
    return start


def _sendfile(src: int, dst: int, start: int, end: int) -> int:
    """As :func:`_copy_file_range`, with ``sendfile`` (any output, a pipe too)."""
    with contextlib.suppress(OSError, AttributeError):
        while start < end:
            n = os.sendfile(dst, src, start, end - start)
            if n <= 0:
                break
            start += n
    return start


class _ParquetWriter(_Writer):
    """The TSV's rows and columns, typed, one row group per chunk (module doc)."""

    def __init__(self, run: _Run, sink: BinaryIO):
        import pyarrow as pa

        super().__init__(run, sink)
        self.pa = pa
        self.guides = pa.array(run.guides, pa.string())
        self.chroms = pa.array(run.chroms, pa.string())
        self.patterns = pa.array(list(run.patterns), pa.string())
        self.classes = pa.array(list(CLASSES), pa.string())
        self.strands = pa.array(["+", "-"], pa.string())
        self.schema = pa.schema(
            [
                ("guide", pa.string()),
                ("chrom", pa.string()),
                ("start", pa.int64()),
                ("end", pa.int64()),
                ("strand", pa.string()),
                ("sequence", pa.string()),
                ("pam", pa.string()),
                ("pam_pattern", pa.string()),
                ("mismatches", pa.int8()),
                ("mismatch_positions", pa.list_(pa.int8())),
                ("mit", pa.float64()),
                ("cfd", pa.float64()),
                ("annotation.class", pa.string()),
                ("annotation.genes", pa.list_(pa.string())),
            ],
            metadata={"sandgrain": json.dumps(run.header["document"], allow_nan=False)},
        )
        assert tuple(self.schema.names) == OFFTARGET_COLUMNS
        self.writer = None

    def begin(self) -> None:
        import pyarrow.parquet as pq

        # dictionaries for the columns of few distinct values only: a protospacer's column
        # would be tried and dropped every row group
        few = ["guide", "chrom", "strand", "pam", "pam_pattern", "annotation.class"]
        self.writer = pq.ParquetWriter(
            self.sink, self.schema, compression="zstd", use_dictionary=few
        )

    def _strings(self, letters: np.ndarray):
        """Rows of a letters array as one string each, without a copy per row."""
        n, w = letters.shape
        data = self.pa.py_buffer(np.ascontiguousarray(letters))
        offsets = self.pa.py_buffer(np.arange(n + 1, dtype=np.int32) * w)
        return self.pa.StringArray.from_buffers(n, offsets, data)

    def chunk(self, batch: _Batch, c: _Chunk) -> None:
        pa = self.pa
        run = self.run
        distinct, inverse = np.unique(c.masks(run.side), return_inverse=True)
        positions = pa.array([_positions(m) for m in distinct.tolist()], pa.list_(pa.int8()))
        gene_ids, gene_lists = _gene_names(c, run.chroms, run.genome.genes)
        genes = pa.array(gene_lists, pa.list_(pa.string()))
        scores = (c.mit, c.cfd) if run.scored else (None, None)
        letters = c.letters(False, False)
        columns = [
            self.guides.take(pa.array(c.guide)),
            self.chroms.take(pa.array(c.chrom)),
            pa.array(c.start0 + 1, pa.int64()),
            pa.array(c.end0, pa.int64()),
            self.strands.take(pa.array(c.minus)),
            self._strings(letters[:, : run.L]),
            self._strings(letters[:, run.L :]),
            self.patterns.take(pa.array(c.pattern)),
            pa.array(c.mismatches.astype(np.int8), pa.int8()),
            positions.take(pa.array(inverse.reshape(-1))),
            *(
                pa.array(s, pa.float64()) if s is not None else pa.nulls(c.n, pa.float64())
                for s in scores
            ),
            self.classes.take(pa.array(c.klass)),
            genes.take(pa.array(gene_ids)),
        ]
        self.writer.write_batch(pa.record_batch(columns, schema=self.schema))

    def finish(self) -> None:
        self.writer.close()


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------


class _Background:
    """A binary file written from a thread: the writes (which release the GIL) overlap with
    making the next chunk. At most :data:`_QUEUED` chunks wait; an error in the thread is
    raised by the next :meth:`write` or by :meth:`close`. ``flush`` and ``fileno`` wait for
    the queued chunks first."""

    def __init__(self, sink):
        self.sink = sink
        self.queue: queue.Queue = queue.Queue(_QUEUED)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sandgrain-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            data = self.queue.get()
            try:
                if data is None:
                    return
                if self.error is None:
                    self.sink.write(data)
            except BaseException as exc:  # raised in the caller's thread
                self.error = exc
            finally:
                self.queue.task_done()

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def write(self, data) -> int:
        self._check()
        self.queue.put(data)
        return len(data)

    def flush(self) -> None:
        self.queue.join()
        self._check()
        self.sink.flush()

    def fileno(self) -> int:
        self.flush()
        return self.sink.fileno()

    def close(self) -> None:
        """Wait for every chunk to be written; raise the error of one that failed."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self._check()


#: Chunks waiting for the writer thread at most (16 MB each).
_QUEUED = 2


class _TextSink:
    """A binary writer over a text stream without a binary buffer (a test's capture)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, data) -> int:
        text = bytes(data).decode("utf-8")
        self.stream.write(text)
        return len(data)


@contextlib.contextmanager
def _sink(out, stream):
    """A binary file to write to: ``out`` atomically, or ``stream`` (default stdout)."""
    if out is not None and os.fspath(out) != "-":
        with atomic_output(out, binary=True) as fh:
            yield fh
        return
    stream = stream or sys.stdout
    stream.flush()
    raw = getattr(stream, "buffer", None)
    yield raw if raw is not None else _TextSink(stream)
    if raw is not None:
        raw.flush()


def _header(search: GuideSearch, command: str) -> dict:
    """The document of a search not run yet (``search.table`` is None) without its guides:
    provenance, genome, nuclease, limits, as :func:`~sandgrain.guides.design.score_search`
    makes them."""
    from .design import score_search  # design imports the batch machinery this uses

    doc = score_search(search, command=command)
    doc.pop("guides")
    return doc


def write_offtargets(
    genome: Genome,
    request: ScoreRequest,
    fmt: str,
    out: str | os.PathLike | None = None,
    *,
    stream=None,
    executor="local",
    retries: int = 2,
    progress=None,
    cancel=None,
    command: str = "guides offtargets",
    chrom_labels: Mapping[str, str] | None = None,
    batch_hits: int = BATCH_HITS,
    first_batch: int = FIRST_BATCH,
) -> OffTargetsWritten:
    """Search the guides of ``request`` and write their sites in format ``fmt`` (one of
    :data:`FORMATS`; module doc) to the file ``out`` (atomically) or to ``stream`` (default
    stdout), batch by batch (``batch_hits``, ``first_batch``: see
    :func:`~sandgrain.guides.batch.iter_search`).

    The options of ``request`` apply as for :func:`~sandgrain.guides.design.score_search`: the
    listing limit, whether to list at all (JSON; the other formats list always) and whether
    each guide's first 0-mismatch site is left out as its on-target. ``executor``, ``retries``,
    ``progress`` and ``cancel`` go to the fan-out engine; ``command`` names the command in the
    provenance record; ``chrom_labels`` replaces chromosome names in Cas-OFFinder's output
    (its whole FASTA header lines). Returns each guide's counts for the caller's notes."""
    if fmt not in FORMATS:
        raise InputError(f"the format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    check_output_path(out)
    to_stream = out is None or os.fspath(out) == "-"
    if fmt == "parquet" and to_stream and (stream or sys.stdout).isatty():
        raise InputError("Parquet is binary: write it to a file (--out) or a pipe")
    nuc = request.nuclease
    family, index = open_guide_index(genome, nuc)
    guides, limits = list(request.guides), list(request.limits)
    whole = GuideSearch(genome, nuc, family, index, guides, limits, request=request)
    header = None
    if fmt in ("json", "parquet"):
        header = {"command": command, "document": _header(whole, command)}
    if fmt != "json":  # the other formats list every site
        request = dataclasses.replace(request, list_offtargets=True)
    run = _Run(
        genome=genome,
        request=request,
        chroms=list(index.meta["chromosomes"]),
        patterns=tuple(family.pams),
        guides=guides,
        side=nuc.pam_side,
        L=nuc.guide_length,
        P=nuc.pam_length,
        scored=is_spcas9_like(nuc),
        header=header,
        labels=chrom_labels,
    )
    totals = np.zeros(len(guides), np.int64)
    listed = np.zeros(len(guides), np.int64)
    batches = 0
    spool_dir = None if to_stream else os.path.dirname(os.path.abspath(os.fspath(out)))
    rows_per_chunk = max(1, CHUNK_BYTES // _ROW_BYTES[fmt])
    with _sink(out, stream) as raw, contextlib.ExitStack() as done:
        # text goes out from a thread (Parquet's writer buffers and compresses on its own)
        sink = raw if fmt == "parquet" else _Background(raw)
        if sink is not raw:
            done.callback(sink.close)
        if fmt == "casoffinder":
            writer = _CasOffinderWriter(run, sink)
        elif fmt == "tsv":
            writer = _TsvWriter(run, sink)
        elif fmt == "json":
            writer = _JsonWriter(run, sink, spool_dir)
        else:
            writer = _ParquetWriter(run, sink)
        writer.begin()
        searches = iter_search(
            genome,
            guides,
            limits,
            nuc,
            family,
            index,
            executor=executor,
            retries=retries,
            progress=progress,
            cancel=cancel,
            request=request,
            batch_hits=batch_hits,
            first_batch=first_batch,
        )
        with contextlib.closing(searches):
            for start, search in searches:
                batches += 1
                hits = Hits(search) if writer.needs_hits and search.table is not None else None
                rows, guide, batch_totals = _select(search, hits, request, writer.danger)
                batch = _Batch(start, search, rows, guide, batch_totals, hits)
                stop = start + len(search.guides)
                totals[start:stop] = batch_totals
                listed[start:stop] = np.bincount(guide, minlength=stop - start)
                if len(rows):
                    gcodes = _guide_codes(search, run.L)
                    for lo in range(0, len(rows), rows_per_chunk):
                        hi = min(len(rows), lo + rows_per_chunk)
                        writer.chunk(batch, _Chunk(batch, lo, hi, gcodes))
                writer.batch_done(batch)
                del batch, hits, search
        writer.finish()
    return OffTargetsWritten(guides, totals, listed, batches)


def _guide_codes(search: GuideSearch, L: int) -> np.ndarray:
    """Base codes of the distinct guides of a batch, one row each."""
    guides = search.table.guides
    return np.array([encode(g) for g in guides], np.uint8).reshape(len(guides), L)
