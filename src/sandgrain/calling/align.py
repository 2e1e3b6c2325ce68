"""Alignment of one chunk of reads: a fan-out task.

``minimap2 -ax sr -E 2,0`` (Li 2018, *Bioinformatics* 34:3094) aligns the chunk with the sample's
read group (:data:`MINIMAP2_ARGS` says why the long-gap extension is 0); ``samtools fixmate -m``
adds the mate tags duplicate marking needs (the chunk comes out of minimap2 with mates
together, as fixmate wants); ``samtools sort`` writes a coordinate-sorted BAM. The BAM appears
under its final name only once complete, so a run that stopped is resumed by skipping chunks
whose BAM exists; the chunk's FASTQ is then removed.

After every chunk is aligned, :func:`merge_markdup` merges them and marks duplicates
(``samtools markdup``, which finds duplicate pairs by the 5' ends of both mates and their
orientations, as Picard MarkDuplicates does) into one indexed BAM.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import InputError
from . import tools

#: minimap2's options. The short-read preset scores a gap of k bases min(12 + 2k, 24 + k) in
#: Debian's minimap2 2.24 (measured from alignment scores; some manuals print 32 for the 24):
#: a 40-base insertion costs 64, so minimap2 clips reads at it instead, mpileup (which calls
#: indels from gaps in alignments only) never sees it, and 20–50 bp indels are lost — 10 of
#: 50 missed ones had two reads carrying them. With the long-gap extension at 0 (``-E 2,0``: a
#: long gap costs its opening, 24, whatever its length; short ones as before) 42 of the 50 do.
#: On the benchmark's simulated 20× sample (10 Mbp of chrX, 1,444 indels up to 50 bp): indel
#: recall 0.953 → 0.976, precision 0.980 → 0.982, SNVs unchanged (docs/calling.md).
MINIMAP2_ARGS = ("-ax", "sr", "-E", "2,0", "--MD", "--secondary=no")

__all__ = ["MINIMAP2_ARGS", "align_chunk", "merge_markdup", "read_group_line"]


def read_group_line(sample: str, read_group: str | None = None, library: str | None = None,
                    platform: str = "ILLUMINA") -> str:  # fmt: skip
    """The SAM ``@RG`` header line (with literal ``\\t`` as minimap2's ``-R`` takes it)."""
    for label, value in (("sample", sample), ("read group", read_group), ("library", library)):
        if value is not None and (not value or any(c.isspace() for c in value) or "\\" in value):
            raise InputError(f"the {label} name {value!r} must be non-empty, without spaces")
    rg = read_group or sample
    return f"@RG\\tID:{rg}\\tSM:{sample}\\tLB:{library or sample}\\tPL:{platform}"


def align_chunk(
    work: str, chunk: int, files: list[str], mmi: str, read_group: str, threads: int = 1,
    sort_mb: int = 768, keep_reads: bool = False,
) -> dict:  # fmt: skip
    """Align one chunk to ``work/aligned/chunk-NNNNN.bam``; returns ``{"chunk", "reused"}``."""
    target = Path(work) / "aligned" / f"chunk-{chunk:05d}.bam"
    if target.is_file():
        return {"chunk": chunk, "reused": True}
    _visible(files, work)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        tools.pipe(
            [
                ["minimap2", *MINIMAP2_ARGS, "-t", threads, "-R", read_group, mmi, *files],
                ["samtools", "fixmate", "-m", "-u", "-", "-"],
                ["samtools", "sort", "-l", "1", "-m", f"{sort_mb}M", "-T",
                 f"{partial}.tmp", "-o", partial, "-"],
            ],
            what=f"align chunk {chunk}",
        )  # fmt: skip
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    if not keep_reads:
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                Path(f).unlink()
    return {"chunk": chunk, "reused": False}


def _visible(files: list[str], work: str) -> None:
    """Fail clearly where a worker does not see the work folder (it must be shared)."""
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise InputError(f"{missing[0]} is not visible to this worker: the work folder {work} "
                         "must be on a filesystem every worker sees")  # fmt: skip


def merge_markdup(chunks: list[Path], out: Path, *, threads: int = 2) -> Path:
    """Merge sorted chunk BAMs, mark duplicates and index: ``out`` (BAM) with ``out.bai``.

    Written under a temporary name and renamed; an existing ``out`` with its index is reused.
    """
    index = out.with_name(out.name + ".bai")
    if out.is_file() and index.is_file():
        return out
    with tools.publishing(out, ".bai") as (partial, partial_index):
        tools.pipe(
            [
                ["samtools", "merge", "-u", "-c", "-p", "-o", "-", *chunks],
                ["samtools", "markdup", "-@", threads, "-T", f"{partial}.tmp", "-", partial],
            ],
            what="merge and mark duplicates",
        )
        tools.run(["samtools", "index", "-@", threads, partial, partial_index],
                  what="index the BAM")  # fmt: skip
    return out


def markdup_task(work: str, out: str, chunks: int, threads: int = 2) -> dict:
    """Fan-out task: :func:`merge_markdup` of one sample's ``chunks`` aligned chunks."""
    files = [Path(work) / "aligned" / f"chunk-{i:05d}.bam" for i in range(chunks)]
    if not (Path(out).is_file() and Path(f"{out}.bai").is_file()):
        _visible([str(f) for f in files], work)
    merge_markdup(files, Path(out), threads=threads)
    return {"bam": out}
