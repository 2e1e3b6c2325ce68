"""Calling one shard of regions: a fan-out task.

``bcftools mpileup`` (BAQ, per-read base and mapping qualities; Li 2011, *Bioinformatics*
27:2987) piped into ``bcftools call -m`` (the multiallelic caller, Danecek et al. 2021,
*GigaScience* 10:giab008), once per region of the shard, each with ``-r chrom:start-end``: a
region's calls are the records whose POS lies in it, computed from every read that overlaps it,
so the shards' records laid end to end are a whole-genome run's. Every BAM given is one sample
(or several read groups of one sample); several BAMs make a joint, multi-sample call.

The shard's records are written under their final name only when complete (resume skips it).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import tempfile
from pathlib import Path

from ..errors import InputError
from . import tools

__all__ = ["MPILEUP_ARGS", "call_args", "call_shard", "shard_path"]

#: mpileup's options beyond its defaults: the per-sample depth and allele depths a user filters
#: on (bcftools' own variant-calling how-to adds the same).
MPILEUP_ARGS = ("-a", "FORMAT/AD,FORMAT/DP")
#: The work folder's plan of shards and list of BAMs (one path a line, bcftools' ``-b``).
SHARDS = "shards.json"
BAM_LIST = "bams.txt"
#: The gVCF depth bands (``-g``): blocks of reference calls split at these minimum depths.
GVCF_BANDS = "0,10,20"


def call_args(gvcf: bool) -> list[str]:
    """``bcftools call``'s options: the multiallelic caller, variant sites only (or gVCF)."""
    return ["-m", "-g", GVCF_BANDS] if gvcf else ["-m", "-v"]


def mpileup_args(gvcf: bool) -> list[str]:
    return [*MPILEUP_ARGS, *(["-g", GVCF_BANDS] if gvcf else [])]


def shard_path(work: str | Path, shard: int) -> Path:
    return Path(work) / "called" / f"shard-{shard:05d}.vcf.gz"


def _region_text(chrom: str, start0: int, end0: int) -> str:
    return f"{chrom}:{start0 + 1}-{end0}"


def call_shard(work: str, shard: int, fasta: str, gvcf: bool = False,
               ploidy: str | None = None) -> dict:  # fmt: skip
    """Call ``regions`` from ``bams``: the records (no header) to ``work/called``; returns
    ``{"shard", "records", "reused"}``. The header of the shard's first region is kept beside
    it (``.header``) for the gather."""
    target = shard_path(work, shard)
    if target.is_file():
        return {"shard": shard, "records": None, "reused": True}
    # The plan lies in the work folder, not in the task: a cohort of thousands of BAMs, or a
    # genome of thousands of sequences, would not fit in a task's arguments.
    plan, bam_list = Path(work) / SHARDS, Path(work) / BAM_LIST
    if not plan.is_file() or not bam_list.is_file():
        raise InputError(f"the work folder {work} is not visible to this worker: it must be on "
                         "a filesystem every worker sees")  # fmt: skip
    regions = json.loads(plan.read_text())[shard]["regions"]
    bams = bam_list.read_text().splitlines()
    missing = [b for b in [fasta, *bams] if not Path(b).is_file()]
    if missing:
        raise InputError(f"{missing[0]} is not visible to this worker: the work folder {work} "
                         "must be on a filesystem every worker sees")  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    header_path = target.with_name(target.name + ".header")
    records = 0
    header: list[bytes] = []
    extra = ["--ploidy", ploidy] if ploidy else []
    # The regions go in a file, not -r: a sequence name may hold ':' ("22:20000001-21000000"),
    # which bcftools 1.16's -r cannot quote. A tab-separated file is 1-based inclusive.
    listing = target.with_name(f".{target.name}.{os.getpid()}.regions.tsv")
    listing.write_text("".join(f"{c}\t{s + 1}\t{e}\n" for c, s, e in regions))
    try:
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(gzip.open(partial, "wb", compresslevel=1))
            mp_err = stack.enter_context(tempfile.TemporaryFile())
            call_err = stack.enter_context(tempfile.TemporaryFile())
            mp = subprocess.Popen(
                [tools.find("bcftools"), "mpileup", "-Ou", "-f", fasta, "-R", listing,
                 *mpileup_args(gvcf), "-b", bam_list],
                stdout=subprocess.PIPE, stderr=mp_err,
            )  # fmt: skip
            call = subprocess.Popen(
                [tools.find("bcftools"), "call", "-Ov", *call_args(gvcf), *extra],
                stdin=mp.stdout, stdout=subprocess.PIPE, stderr=call_err,
            )  # fmt: skip
            mp.stdout.close()
            for line in call.stdout:
                if line.startswith(b"#"):
                    header.append(line)
                    continue
                out.write(line)
                records += 1
            where = f"call {_region_text(*regions[0])}…"
            for proc, err, name in ((mp, mp_err, "mpileup"), (call, call_err, "call")):
                code = proc.wait()
                err.seek(0)
                text = err.read()
                # htslib reports a region it cannot find as an error line and exits 0
                if code != 0 or b"[E::" in text:
                    raise tools.ToolError(f"{where}: bcftools {name} failed: "
                                          f"{tools.last_line(text)}")  # fmt: skip
        header_path.with_suffix(".tmp").write_bytes(b"".join(header))
        os.replace(header_path.with_suffix(".tmp"), header_path)
        os.replace(partial, target)
    finally:
        for leftover in (partial, listing):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return {"shard": shard, "records": records, "reused": False}
