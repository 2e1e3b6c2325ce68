"""BGZF: the blocked gzip format of htslib (SAM/BAM specification, section 4.1).

A BGZF file is a series of gzip members of at most 64 KiB each, so that any byte of the
uncompressed stream can be reached by decompressing one block. Together with a ``.gzi`` index
(pairs of compressed / uncompressed block offsets, as written by ``bgzip -i`` and
``samtools faidx``) and a ``.fai`` index, a bgzipped FASTA gives random access to any region —
also through ranged reads from object storage, which is why the genome store keeps sequences so.

This module writes BGZF (compressing blocks on several threads; zlib releases the GIL) and reads
byte ranges of the uncompressed stream given only a function that fetches compressed byte ranges.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..errors import InputError

#: Uncompressed bytes per block; bgzip's choice, which guarantees a block fits in 64 KiB.
BLOCK_SIZE = 0xFF00
_HEADER = struct.Struct("<BBBBIBBHBBHH")
#: The empty block every BGZF file ends with (SAM specification 4.1.2).
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def compress_block(data: bytes, level: int) -> bytes:
    """One BGZF block holding ``data`` (at most :data:`BLOCK_SIZE` bytes)."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    cdata = comp.compress(data) + comp.flush()
    if len(cdata) + 26 > 0x10000:  # incompressible: store it
        comp = zlib.compressobj(0, zlib.DEFLATED, -15)
        cdata = comp.compress(data) + comp.flush()
    header = _HEADER.pack(31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(cdata) + 25)
    return header + cdata + struct.pack("<II", zlib.crc32(data), len(data))


class BgzfWriter:
    """Write a BGZF stream to a binary file object and record its block index.

    Parameters
    ----------
    fh
        A binary file object open for writing.
    level
        zlib compression level (bgzip's default is 6).
    threads
        Threads compressing blocks in parallel.
    """

    def __init__(self, fh, level: int = 6, threads: int = 2, batch_blocks: int = 64):
        self._fh = fh
        self._level = level
        self._pool = ThreadPoolExecutor(max(1, threads)) if threads > 1 else None
        self._batch = batch_blocks * BLOCK_SIZE
        self._buf = bytearray()
        self._pending = None  # a batch being compressed while the caller produces the next
        self.compressed_offset = 0
        self.uncompressed_offset = 0  # of bytes handed to the writer so far
        self._flushed_uncompressed = 0
        #: (compressed offset, uncompressed offset) of every block start but the first.
        self.index: list[tuple[int, int]] = []

    def write(self, data: bytes) -> None:
        self._buf += data
        self.uncompressed_offset += len(data)
        if len(self._buf) >= self._batch:
            cut = len(self._buf) - len(self._buf) % BLOCK_SIZE
            self._submit(bytes(self._buf[:cut]))
            del self._buf[:cut]

    def _submit(self, data: bytes) -> None:
        pieces = [data[i : i + BLOCK_SIZE] for i in range(0, len(data), BLOCK_SIZE)]
        if self._pool is None:
            self._emit(pieces, [compress_block(p, self._level) for p in pieces])
            return
        future = self._pool.map(compress_block, pieces, [self._level] * len(pieces))
        self._drain()
        self._pending = (pieces, future)

    def _drain(self) -> None:
        if self._pending is not None:
            pieces, future = self._pending
            self._pending = None
            self._emit(pieces, list(future))

    def _emit(self, pieces: list[bytes], blocks: list[bytes]) -> None:
        for piece, block in zip(pieces, blocks, strict=True):
            if self.compressed_offset:
                self.index.append((self.compressed_offset, self._flushed_uncompressed))
            self._fh.write(block)
            self.compressed_offset += len(block)
            self._flushed_uncompressed += len(piece)

    def close(self) -> None:
        if self._buf:
            self._submit(bytes(self._buf))
            self._buf.clear()
        self._drain()
        self._fh.write(EOF_BLOCK)
        self.compressed_offset += len(EOF_BLOCK)
        if self._pool is not None:
            self._pool.shutdown()

    def gzi_bytes(self) -> bytes:
        """The ``.gzi`` index in htslib's layout: a count, then offset pairs (little-endian)."""
        out = [struct.pack("<Q", len(self.index))]
        out.extend(struct.pack("<QQ", c, u) for c, u in self.index)
        return b"".join(out)


def parse_gzi(data: bytes) -> list[tuple[int, int]]:
    """Block starts ``[(compressed, uncompressed), …]`` including the first block at (0, 0)."""
    if len(data) < 8:
        raise InputError("corrupt .gzi index: too short")
    (n,) = struct.unpack_from("<Q", data, 0)
    if len(data) != 8 + 16 * n:
        raise InputError("corrupt .gzi index: wrong length")
    pairs = [(0, 0)]
    pairs.extend(struct.iter_unpack("<QQ", data[8:]))
    return pairs


def _inflate_blocks(data: bytes) -> bytes:
    out = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"\x1f\x8b\x08\x04":
            raise InputError("corrupt BGZF data: bad block header")
        (bsize,) = struct.unpack_from("<H", data, pos + 16)
        end = pos + bsize + 1
        out.append(zlib.decompress(data[pos + 18 : end - 8], -15))
        pos = end
    return b"".join(out)


class BgzfRangeReader:
    """Read uncompressed byte ranges of a BGZF object through ranged reads of compressed bytes.

    Parameters
    ----------
    fetch
        ``fetch(start, end)`` returns compressed bytes ``[start, end)`` (a local read or an HTTP
        range request to object storage).
    gzi
        Parsed block index (:func:`parse_gzi`).
    compressed_size
        Size of the BGZF object in bytes.
    """

    def __init__(self, fetch: Callable[[int, int], bytes], gzi, compressed_size: int):
        self._fetch = fetch
        self._coffsets = [c for c, _ in gzi] + [compressed_size]
        self._uoffsets = [u for _, u in gzi]

    def read(self, ustart: int, uend: int) -> bytes:
        """Uncompressed bytes ``[ustart, uend)``."""
        if uend <= ustart:
            return b""
        first = bisect.bisect_right(self._uoffsets, ustart) - 1
        last = bisect.bisect_right(self._uoffsets, uend - 1) - 1
        raw = self._fetch(self._coffsets[first], self._coffsets[last + 1])
        data = _inflate_blocks(raw)
        base = self._uoffsets[first]
        return data[ustart - base : uend - base]
