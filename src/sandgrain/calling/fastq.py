"""Reads in, checked and cut into chunks for the aligner.

One pass over the FASTQ (plain or gzip; one file, or two of a pair) checks every record — four
lines, ``@`` name, ``+`` separator, as many qualities as bases, no read longer than declared —
and that mates pair up (the same name, bar a ``/1`` ``/2`` suffix, in the same order), and cuts
the reads into chunks of ``chunk_reads`` records (pairs) written gzip level 1 into the work
folder. The input's SHA-256 is taken in the same pass, for provenance. A truncated file, a
malformed record or an odd pair stops the run with one line naming the file and record, before
any output exists.

The chunk list is written last, atomically (``chunks.json``): a run that finds it, for the same
inputs (path, size, modification time) and chunk size, does not read the FASTQ again.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import InputError, NotFoundError

__all__ = ["ChunkPlan", "chunk_reads", "read_chunk_plan"]

#: Records (pairs) per alignment task: ~2 minutes of minimap2 on one core.
DEFAULT_CHUNK_READS = 500_000
PLAN = "chunks.json"


@dataclass
class ChunkPlan:
    """The chunks of one sample's reads in its work folder."""

    inputs: list[dict]
    chunk_reads: int
    paired: bool
    chunks: list[int] = field(default_factory=list)  # reads (pairs) per chunk
    reads: int = 0  # records (pairs count once)
    bases: int = 0
    longest: int = 0
    max_read_length: int | None = None

    def files(self, work: Path, i: int) -> list[Path]:
        ends = ("_1", "_2") if self.paired else ("",)
        return [work / "chunks" / f"chunk-{i:05d}{e}.fq.gz" for e in ends]


class _Hashing(io.RawIOBase):
    """A raw file read through, its bytes hashed and counted on the way."""

    def __init__(self, fh):
        self.fh = fh
        self.sha = hashlib.sha256()
        self.nbytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.fh.readinto(buffer)
        if n:
            self.sha.update(memoryview(buffer)[:n])
            self.nbytes += n
        return n or 0


def _identity(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class _Reader:
    """FASTQ records of one file, checked, with the place of each for messages."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise NotFoundError(f"no such FASTQ: {path}")
        self.path = path
        self.raw = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.hashing = _Hashing(self.raw)
        buffered = io.BufferedReader(self.hashing, 1 << 20)
        gz = buffered.peek(2)[:2] == b"\x1f\x8b"
        self.stream = gzip.GzipFile(fileobj=buffered) if gz else buffered
        self.stream = io.BufferedReader(self.stream, 1 << 20) if gz else self.stream
        self.record = 0

    def close(self) -> None:
        self.raw.close()

    def _fail(self, what: str) -> InputError:
        return InputError(f"{self.path.name}: record {self.record:,}: {what}")

    def next(self) -> tuple[bytes, bytes, bytes] | None:
        """``(name, sequence, qualities)`` of the next record, or None at a clean end."""
        try:
            head = self.stream.readline()
            if not head:
                return None
            self.record += 1
            seq = self.stream.readline()
            plus = self.stream.readline()
            qual = self.stream.readline()
        except EOFError:
            raise InputError(
                f"{self.path.name}: truncated (the compressed stream ends early, after "
                f"{self.record:,} records)"
            ) from None
        except (OSError, zlib.error) as exc:
            raise InputError(f"{self.path.name}: cannot be read as FASTQ ({exc})") from None
        # the last line of the file: complete, or cut short
        if not qual.endswith(b"\n") and (
            not qual or not plus or len(qual.rstrip(b"\r")) != len(seq.rstrip(b"\r\n"))
        ):
            raise InputError(
                f"{self.path.name}: truncated (the file ends inside record {self.record:,})"
            )
        if head[:1] != b"@":
            raise self._fail("a FASTQ record starts with '@' (is this FASTQ?)")
        if plus[:1] != b"+":
            raise self._fail("the third line of a record starts with '+'")
        seq = seq.rstrip(b"\r\n")
        qual = qual.rstrip(b"\r\n")
        if not seq:
            raise self._fail("empty read")
        if len(seq) != len(qual):
            raise self._fail(f"{len(seq)} bases but {len(qual)} quality values")
        name = head[1:].split(None, 1)[0] if head[1:].strip() else b""
        if not name:
            raise self._fail("a read without a name")
        return name, seq, qual


def _mate_name(name: bytes) -> bytes:
    return name[:-2] if name[-2:] in (b"/1", b"/2") else name


def chunk_reads(
    reads1: str | os.PathLike,
    reads2: str | os.PathLike | None,
    work: Path,
    *,
    chunk_reads: int = DEFAULT_CHUNK_READS,
    max_read_length: int | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> ChunkPlan:
    """Check the reads and cut them into chunks under ``work/chunks`` (see the module doc).

    ``progress(stage, done_bytes, total_bytes)`` is called as the input is read.
    """
    if chunk_reads < 1:
        raise InputError(f"a chunk holds at least one read, not {chunk_reads}")
    if max_read_length is not None and max_read_length < 1:
        raise InputError(f"--read-length must be at least 1, not {max_read_length}")
    paths = [Path(reads1)] + ([Path(reads2)] if reads2 else [])
    readers = [_Reader(p) for p in paths]
    if len(paths) == 2 and paths[0].resolve() == paths[1].resolve():
        raise InputError("the two reads files of a pair are the same file")
    inputs = [_identity(p) for p in paths]
    plan = ChunkPlan(inputs=inputs, chunk_reads=chunk_reads, paired=len(paths) == 2,
                     max_read_length=max_read_length)  # fmt: skip
    total = sum(i["size"] for i in inputs)
    (work / "chunks").mkdir(parents=True, exist_ok=True)
    outs: list = []
    in_chunk = 0

    def open_chunk() -> None:
        nonlocal outs
        files = plan.files(work, len(plan.chunks))
        outs = [gzip.open(f, "wb", compresslevel=1) for f in files]  # noqa: SIM115
        plan.chunks.append(0)

    try:
        while True:
            records = [r.next() for r in readers]
            if records[0] is None or (len(records) == 2 and records[1] is None):
                if any(r is not None for r in records):
                    longer = paths[0] if records[0] is not None else paths[1]
                    shorter = paths[1] if records[0] is not None else paths[0]
                    raise InputError(
                        f"mismatched pair: {shorter.name} ends after {plan.reads:,} reads but "
                        f"{longer.name} has more"
                    )
                break
            if len(records) == 2 and _mate_name(records[0][0]) != _mate_name(records[1][0]):
                raise InputError(
                    f"mismatched pair at read {plan.reads + 1:,}: {paths[0].name} has "
                    f"{records[0][0].decode(errors='replace')!r}, {paths[1].name} has "
                    f"{records[1][0].decode(errors='replace')!r} (the files must list mates in "
                    "the same order)"
                )
            for r, rec in zip(readers, records, strict=True):
                n = len(rec[1])
                if max_read_length is not None and n > max_read_length:
                    raise InputError(
                        f"{r.path.name}: read {rec[0].decode(errors='replace')} is {n} bp, "
                        f"longer than the declared --read-length {max_read_length}"
                    )
                plan.longest = max(plan.longest, n)
                plan.bases += n
            if not outs or in_chunk == chunk_reads:
                for o in outs:
                    o.close()
                open_chunk()
                in_chunk = 0
            for o, (name, seq, qual) in zip(outs, records, strict=True):
                o.write(b"@" + _mate_name(name) + b"\n" + seq + b"\n+\n" + qual + b"\n")
            in_chunk += 1
            plan.chunks[-1] += 1
            plan.reads += 1
            if progress is not None and plan.reads % 65536 == 0:
                progress("read FASTQ", sum(r.hashing.nbytes for r in readers), total)
    finally:
        for o in outs:
            o.close()
        for r in readers:
            r.close()
    if plan.reads == 0:
        raise InputError(f"{paths[0].name}: no reads")
    for info, r in zip(inputs, readers, strict=True):
        info["sha256"] = r.hashing.sha.hexdigest()
    if progress is not None:
        progress("read FASTQ", total, total)
    _write_json(work / PLAN, asdict(plan))
    return plan


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_chunk_plan(
    reads1: str | os.PathLike, reads2: str | os.PathLike | None, work: Path, *,
    chunk_reads: int, max_read_length: int | None,
) -> ChunkPlan | None:  # fmt: skip
    """The chunks a former run of the same inputs and chunk size left in ``work``, if any."""
    path = work / PLAN
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        plan = ChunkPlan(**data)
    except (ValueError, TypeError):
        return None
    paths = [Path(reads1)] + ([Path(reads2)] if reads2 else [])
    current = [_identity(p) for p in paths if p.is_file()]
    recorded = [{k: v for k, v in i.items() if k != "sha256"} for i in plan.inputs]
    if current != recorded or plan.chunk_reads != chunk_reads:
        return None
    if plan.max_read_length != max_read_length:
        return None
    return plan
