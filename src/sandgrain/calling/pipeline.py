"""Reads to variants for one sample or a cohort, scattered over the fan-out engine.

Stages, each resumable from the work folder:

1. **read** (here): each sample's FASTQ checked and cut into chunks (:mod:`.fastq`);
2. **align** (tasks, one per chunk of every sample): minimap2 → fixmate → sort (:mod:`.align`);
3. **mark duplicates** (tasks, one per sample): merge the chunks, ``samtools markdup``, index;
4. **plan** (here): regions cut by coverage from the BAM indexes, cuts moved off variants
   (:mod:`.regions`);
5. **call** (tasks, one per shard of regions): ``bcftools mpileup | call`` over every sample's
   BAM — a joint call for a cohort (:mod:`.call`);
6. **gather** (here): the shards' records in genome order under one header carrying the
   provenance (sandgrain and tool versions, parameters, input SHA-256), bgzipped and
   tabix-indexed, written under a temporary name and renamed.

A stage's outputs appear under their final names only when complete, so a run stopped at any
point (a crash, Ctrl-C, a lost worker) is resumed by running the same command again: finished
chunks and shards are not redone. The work folder is removed after success unless kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import InputError, NotFoundError
from ..fanout import Task, open_executor, run_plan
from . import call, fastq, regions, tools
from .reference import Reference

__all__ = ["CallingReport", "SampleInput", "call_samples", "read_samples_file"]

#: Parameters that change the result; a work folder made with others is refused.
_RESULT_PARAMS = ("chunk_reads", "gvcf", "ploidy", "max_read_length", "shards")
Progress = Callable[[str, str | None], contextlib.AbstractContextManager]


@dataclass(frozen=True)
class SampleInput:
    """One sample: paired or single FASTQ, or an aligned, indexed BAM/CRAM."""

    sample: str
    reads1: str | None = None
    reads2: str | None = None
    bam: str | None = None

    def __post_init__(self) -> None:
        if not self.sample or any(c.isspace() or c in "/\\" for c in self.sample):
            raise InputError(f"a sample name has no spaces or slashes: {self.sample!r}")
        if (self.reads1 is None) == (self.bam is None):
            raise InputError(f"sample {self.sample}: give reads (FASTQ) or a BAM, not both")
        if self.reads2 is not None and self.reads1 is None:
            raise InputError(f"sample {self.sample}: a second reads file without a first")


@dataclass
class CallingReport:
    """What a run did, for the user and the benchmarks."""

    out: str
    samples: list[str]
    reads: int = 0
    bases: int = 0
    chunks: int = 0
    chunks_reused: int = 0
    shards: int = 0
    shards_reused: int = 0
    records: int = 0
    genome_bp: int = 0
    bam: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def reads_per_second(self) -> float:
        t = self.seconds.get("align", 0.0)
        return self.reads / t if t else 0.0

    @property
    def called_mbp_per_second(self) -> float:
        t = self.seconds.get("call", 0.0)
        return self.genome_bp / 1e6 / t if t else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "reads_per_second": self.reads_per_second,
                "called_mbp_per_second": self.called_mbp_per_second}  # fmt: skip


def read_samples_file(path: str | os.PathLike) -> list[SampleInput]:
    """A cohort's samples: a TSV with a header naming ``sample`` and ``reads1`` [``reads2``]
    or ``bam``; relative paths are relative to the file."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"no such samples file: {p}")
    lines = [ln for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise InputError(f"{p.name}: no samples")
    header = lines[0].split("\t")
    if "sample" not in header or not ({"reads1", "bam"} & set(header)):
        raise InputError(f"{p.name}: the header names 'sample' and 'reads1' (and 'reads2') or "
                         f"'bam', tab-separated; it has {header}")  # fmt: skip
    out, seen = [], set()
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(header):
            raise InputError(f"{p.name}: line {n} has {len(cells)} fields, the header "
                             f"{len(header)}")  # fmt: skip
        row = dict(zip(header, cells, strict=True))

        def path_of(key: str, row=row) -> str | None:
            value = (row.get(key) or "").strip()
            return str((p.parent / value).resolve()) if value else None

        sample = SampleInput(row["sample"].strip(), path_of("reads1"), path_of("reads2"),
                             path_of("bam"))  # fmt: skip
        if sample.sample in seen:
            raise InputError(f"{p.name}: sample {sample.sample} is listed twice")
        seen.add(sample.sample)
        out.append(sample)
    return out


def _check_work(work: Path, params: dict) -> None:
    record = work / "params.json"
    wanted = {k: params.get(k) for k in _RESULT_PARAMS} | {"inputs": params["inputs"]}
    if record.is_file():
        try:
            found = json.loads(record.read_text())
        except ValueError:
            found = None
        if found != wanted:
            raise InputError(
                f"the work folder {work} holds a run with other inputs or parameters: remove it "
                "or give another --work"
            )
        return
    work.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(wanted))
    os.replace(tmp, record)


@contextlib.contextmanager
def _no_progress(stage: str, unit: str | None):
    yield None


def call_samples(
    reference: Reference,
    samples: Sequence[SampleInput],
    out: str | os.PathLike,
    *,
    bam_out: str | os.PathLike | None = None,
    work: str | os.PathLike | None = None,
    executor="local",
    retries: int = 2,
    chunk_reads: int = fastq.DEFAULT_CHUNK_READS,
    shards: int | None = None,
    gvcf: bool = False,
    ploidy: str | None = None,
    max_read_length: int | None = None,
    keep_work: bool = False,
    threads: int = 2,
    progress: Progress = _no_progress,
    command: str = "sandgrain calling run",
) -> CallingReport:
    """Reads (or BAMs) of one or more samples to one VCF (see the module doc)."""
    out = Path(out)
    if not out.name.endswith(".vcf.gz"):
        raise InputError(f"the output is a bgzipped VCF named *.vcf.gz, not {out.name}")
    if not out.parent.is_dir():
        raise NotFoundError(f"no such folder for the output: {out.parent}")
    if not samples:
        raise InputError("no samples")
    names = [s.sample for s in samples]
    if len(set(names)) != len(names):
        raise InputError("sample names repeat")
    if bam_out is not None and (len(samples) != 1 or samples[0].bam is not None):
        raise InputError("--bam writes the one sample's alignments (reads in, not a BAM)")
    if bam_out is not None and not str(bam_out).endswith((".bam", ".cram")):
        raise InputError(f"--bam names a .bam or .cram file, not {bam_out}")
    if shards is not None and shards < 1:
        raise InputError(f"--regions must be at least 1, not {shards}")
    for s in samples:
        for f in (s.reads1, s.reads2, s.bam):
            if f is not None and not Path(f).is_file():
                raise NotFoundError(f"sample {s.sample}: no such file: {f}")
    for name in ("minimap2", "samtools", "bcftools"):
        tools.find(name)
    work = Path(work) if work else out.with_name(out.name[: -len(".vcf.gz")] + ".work")
    params = {
        "chunk_reads": chunk_reads, "gvcf": gvcf, "ploidy": ploidy,
        "max_read_length": max_read_length, "shards": shards,
        "inputs": {"reference": reference.sha256,
                   "samples": [[s.sample, s.reads1, s.reads2, s.bam] for s in samples]},
    }  # fmt: skip
    created = not work.exists()
    _check_work(work, params)
    try:
        return _call(reference, samples, out, work, params, bam_out=bam_out, executor=executor,
                     retries=retries, chunk_reads=chunk_reads, shards=shards, gvcf=gvcf,
                     ploidy=ploidy, max_read_length=max_read_length, keep_work=keep_work,
                     threads=threads, progress=progress, command=command)  # fmt: skip
    except InputError:
        if created and not any(work.glob("*/aligned/*.bam")):  # nothing worth resuming
            shutil.rmtree(work, ignore_errors=True)
        raise


def _absolute(path: str) -> str:
    """An input's path as the VCF header names it: absolute, links resolved (the rule
    :func:`~sandgrain.calling.fastq.chunk_reads` records the FASTQ by)."""
    return str(Path(path).resolve())


def _call(reference, samples, out, work, params, *, bam_out, executor, retries, chunk_reads,
          shards, gvcf, ploidy, max_read_length, keep_work, threads, progress,
          command) -> CallingReport:  # fmt: skip
    names = [s.sample for s in samples]
    report = CallingReport(out=str(out), samples=names, genome_bp=reference.length)
    # every input named by its absolute path, however it was given (as the FASTQ's are read)
    inputs: list[dict] = [{"source": _absolute(reference.fasta), "sha256": reference.sha256,
                           "role": "reference"}]  # fmt: skip
    with contextlib.ExitStack() as stack:
        ex = stack.enter_context(open_executor(executor)) if isinstance(executor, str) else executor
        # 1. read and chunk
        t0 = time.monotonic()
        plans: dict[str, fastq.ChunkPlan] = {}
        for s in samples:
            if s.reads1 is None:
                inputs.append({"source": _absolute(s.bam), "role": f"{s.sample} alignments",
                               "sha256": None})  # fmt: skip
                continue
            swork = work / s.sample
            plan = fastq.read_chunk_plan(s.reads1, s.reads2, swork, chunk_reads=chunk_reads,
                                         max_read_length=max_read_length)  # fmt: skip
            if plan is None:
                _forget_alignments(work, swork)  # the reads changed: nothing after is valid
                with progress(f"read {s.sample}", "bytes") as cb:
                    plan = fastq.chunk_reads(
                        s.reads1, s.reads2, swork, chunk_reads=chunk_reads,
                        max_read_length=max_read_length,
                        progress=None if cb is None else (lambda st, d, t, cb=cb: cb(0, 1, d, t)),
                    )  # fmt: skip
            plans[s.sample] = plan
            for info in plan.inputs:
                inputs.append({"source": _absolute(info["path"]), "sha256": info["sha256"],
                               "role": f"{s.sample} reads"})  # fmt: skip
            report.reads += plan.reads * (2 if plan.paired else 1)
            report.bases += plan.bases
        report.seconds["read"] = time.monotonic() - t0
        # 2. align
        t0 = time.monotonic()
        tasks = []
        for s in samples:
            plan = plans.get(s.sample)
            if plan is None:
                continue
            swork = work / s.sample
            rg = _read_group(s.sample)
            for i, n in enumerate(plan.chunks):
                tasks.append(Task(
                    "sandgrain.calling.align:align_chunk",
                    {"work": str(swork), "chunk": i,
                     "files": [str(f) for f in plan.files(swork, i)],
                     "mmi": reference.mmi, "read_group": rg},
                    key=f"align {s.sample} chunk {i}", weight=n * (2 if plan.paired else 1),
                ))  # fmt: skip
        report.chunks = len(tasks)
        if tasks:
            with progress("align", "reads") as cb:
                results = run_plan(tasks, ex, retries=retries, progress=cb)
            report.chunks_reused = sum(1 for r in results if r["reused"])
        report.seconds["align"] = time.monotonic() - t0
        # 3. merge and mark duplicates, one task per sample
        t0 = time.monotonic()
        bams: list[str] = []
        dedup = []
        for s in samples:
            if s.bam is not None:
                _check_indexed(s.bam)
                bams.append(s.bam)
                continue
            target = work / s.sample / f"{s.sample}.bam"
            bams.append(str(target))
            dedup.append(Task(
                "sandgrain.calling.align:markdup_task",
                {"work": str(work / s.sample), "out": str(target),
                 "chunks": len(plans[s.sample].chunks), "threads": threads},
                key=f"mark duplicates {s.sample}",
            ))  # fmt: skip
        if dedup:
            with progress("mark duplicates", None) as cb:
                run_plan(dedup, ex, retries=retries, progress=cb)
        report.seconds["markdup"] = time.monotonic() - t0
        # 4. plan regions by coverage
        t0 = time.monotonic()
        n = shards or 4 * max(1, ex.parallelism)
        planned = _plan(work, reference, bams, n)
        report.shards = len(planned)
        report.seconds["plan"] = time.monotonic() - t0
        # 5. call
        t0 = time.monotonic()
        tasks = [
            Task("sandgrain.calling.call:call_shard",
                 {"work": str(work), "shard": i, "fasta": reference.fasta, "gvcf": gvcf,
                  "ploidy": ploidy},
                 key=f"call {_describe(shard)}", weight=shard.bases)
            for i, shard in enumerate(planned)
        ]  # fmt: skip
        with progress("call", "bases") as cb:
            results = run_plan(tasks, ex, retries=retries, progress=cb)
        report.shards_reused = sum(1 for r in results if r["reused"])
        report.seconds["call"] = time.monotonic() - t0
    # 6. gather
    t0 = time.monotonic()
    provenance = {
        "sandgrain": __version__, "command": command,
        "tools": tools.versions(), "parameters": {k: params[k] for k in _RESULT_PARAMS},
        "shards": len(planned),
    }  # fmt: skip
    report.records = _gather(work, len(planned), out, provenance, inputs, gvcf)
    if bam_out is not None:
        report.bam = str(_deliver_bam(Path(bams[0]), Path(bam_out), reference,
                                      move=not keep_work))  # fmt: skip
    report.seconds["gather"] = time.monotonic() - t0
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _forget_alignments(work: Path, swork: Path) -> None:
    """Remove what a former run derived from a sample's reads: its aligned chunks and BAM, and
    the cohort's regions and calls."""
    stale = [swork / "aligned", work / "called"]
    if any(p.exists() for p in stale) or any(swork.glob("*.bam")):
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        for p in [*swork.glob("*.bam"), *swork.glob("*.bam.bai"), work / call.SHARDS]:
            p.unlink(missing_ok=True)


def _read_group(sample: str) -> str:
    from .align import read_group_line

    return read_group_line(sample)


def _check_indexed(bam: str) -> None:
    p = Path(bam)
    for idx in (p.with_name(p.name + ".bai"), p.with_name(p.name + ".crai"),
                p.with_suffix(".bai"), p.with_name(p.name + ".csi")):  # fmt: skip
        if idx.is_file():
            return
    raise InputError(f"{p.name} has no index: run `samtools index {p.name}` first")


def _describe(shard: regions.Shard) -> str:
    c, s, _ = shard.regions[0]
    c2, _, e = shard.regions[-1]
    return f"{c}:{s + 1}-{e}" if c == c2 else f"{c}:{s + 1}-{c2}:{e}"


def _plan(work: Path, reference: Reference, bams: list[str], n: int) -> list[regions.Shard]:
    """The shards, planned once per work folder (a resumed run keeps the same cuts)."""
    listing = work / call.BAM_LIST
    tmp = listing.with_suffix(".tmp")
    tmp.write_text("".join(f"{b}\n" for b in bams))
    os.replace(tmp, listing)
    record = work / call.SHARDS
    if record.is_file():
        data = json.loads(record.read_text())
        return [regions.Shard(tuple(tuple(r) for r in s["regions"]), s["weight"], s["bases"])
                for s in data]  # fmt: skip
    import numpy as np
    import pysam

    contigs = list(reference.contigs)
    total = {name: np.zeros(-(-length // regions.WINDOW), dtype=np.int64)
             for name, length in contigs}  # fmt: skip
    for bam in bams:
        with pysam.AlignmentFile(bam) as fh:
            bam_contigs = list(zip(fh.references, fh.lengths, strict=True))
        if dict(bam_contigs) != dict(contigs):
            raise InputError(f"{Path(bam).name} was aligned to another reference "
                             "(its sequences differ from the genome's)")  # fmt: skip
        bai = Path(bam + ".bai")
        if bai.is_file():
            for name, w in regions.linear_weights(bai, bam_contigs).items():
                total[name] += w
        else:  # a CRAM or a CSI index: weigh by reads mapped per sequence
            with pysam.AlignmentFile(bam) as fh:
                for st in fh.get_index_statistics():
                    total[st.contig] += st.mapped // max(1, total[st.contig].size)
    planned = regions.refine(regions.plan_shards(contigs, total, n), bams)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"regions": s.as_args(), "weight": s.weight, "bases": s.bases}
                               for s in planned]))  # fmt: skip
    os.replace(tmp, record)
    return planned


_DROP = (b"##bcftools_mpileupCommand=", b"##bcftools_callCommand=", b"##bcftools_mpileupVersion",
         b"##bcftools_callVersion")  # fmt: skip


def _header(work: Path, provenance: dict, inputs: list[dict], gvcf: bool) -> bytes:
    first = call.shard_path(work, 0)
    lines = first.with_name(first.name + ".header").read_bytes().splitlines(keepends=True)
    kept = [ln for ln in lines if not ln.startswith(_DROP) and not ln.startswith(b"#CHROM")]
    chrom = [ln for ln in lines if ln.startswith(b"#CHROM")]
    bcf = tools.version("bcftools")
    mp = " ".join(["bcftools", "mpileup", "-f", "<genome>", *call.mpileup_args(gvcf), "<bams>"])
    cl = " ".join(["bcftools", "call", *call.call_args(gvcf)])
    extra = [
        f"##bcftools_mpileupVersion={bcf}\n", f"##bcftools_mpileupCommand={mp}\n",
        f"##bcftools_callVersion={bcf}\n", f"##bcftools_callCommand={cl}\n",
        f"##sandgrain_version={__version__}\n",
        f"##sandgrain_command={provenance['command']}\n",
        f"##sandgrain_tools={json.dumps(provenance['tools'], sort_keys=True)}\n",
        f"##sandgrain_parameters={json.dumps(provenance['parameters'], sort_keys=True)}\n",
    ]  # fmt: skip
    for info in inputs:
        fields = ",".join(f'{k}="{v}"' for k, v in info.items() if v is not None)
        extra.append(f"##sandgrain_input=<{fields}>\n")
    return b"".join(kept) + "".join(extra).encode() + b"".join(chrom)


def _gather(work: Path, n: int, out: Path, provenance: dict, inputs: list[dict],
            gvcf: bool) -> int:  # fmt: skip
    """The shards' records, in order, into ``out`` (bgzip + tabix), atomically; the record
    count."""
    import gzip

    import pysam

    records = 0
    with tools.publishing(out, ".tbi") as (partial, _):
        with pysam.BGZFile(str(partial), "wb") as fh:
            fh.write(_header(work, provenance, inputs, gvcf))
            for i in range(n):
                with gzip.open(call.shard_path(work, i), "rb") as part:
                    while block := part.read(1 << 20):
                        records += block.count(b"\n")
                        fh.write(block)
        pysam.tabix_index(str(partial), preset="vcf", force=True)  # writes partial + ".tbi"
    return records


def _deliver_bam(bam: Path, target: Path, reference: Reference, move: bool) -> Path:
    """The sample's marked BAM to ``target`` (BAM, or CRAM against the genome), with index;
    ``move`` moves a BAM out of the work folder instead of copying it."""
    index_suffix = ".crai" if target.suffix == ".cram" else ".bai"
    with tools.publishing(target, index_suffix) as (partial, partial_index):
        if target.suffix == ".cram":
            tools.run(["samtools", "view", "-C", "-T", reference.fasta, "-o", partial, bam],
                      what="write the CRAM")  # fmt: skip
            tools.run(["samtools", "index", partial, partial_index], what="index the CRAM")
        else:
            put = shutil.move if move else shutil.copyfile
            put(f"{bam}.bai", partial_index)
            put(bam, partial)
    return target
