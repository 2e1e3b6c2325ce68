"""``sandgrain calling …``: reads to variants (``run`` one sample, ``joint`` a cohort),
scattered over the fan-out engine, and the genome ``index`` they need."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from .progress import task_progress

__all__ = ["app", "index_cmd", "joint_cmd", "run_cmd"]

app = typer.Typer(
    help="Reads to variants: align, mark duplicates and call, scattered over the genome.",
    no_args_is_help=True,
)

Genome = Annotated[
    str,
    typer.Option(
        "--genome",
        help="Reference FASTA (plain or bgzip), or a genome in the store; index it once with "
        "`sandgrain calling index`.",
        metavar="FASTA|NAME",
    ),
]
Output = Annotated[
    Path, typer.Option("--output", "-o", help="The VCF to write (.vcf.gz).", metavar="VCF")
]
Work = Annotated[
    Path | None,
    typer.Option(
        "--work",
        help="Work folder (default: beside the output). Running the same command again "
        "resumes there.",
        metavar="DIR",
    ),
]
Regions = Annotated[
    int | None,
    typer.Option(
        "--regions",
        help="Calling tasks, cut by coverage (default: 4 per worker).",
        metavar="N",
    ),
]
ChunkReads = Annotated[
    int,
    typer.Option("--chunk-reads", help="Reads (pairs) per alignment task.", metavar="N"),
]
Gvcf = Annotated[bool, typer.Option("--gvcf", help="Write a gVCF (reference blocks too).")]
Ploidy = Annotated[
    str | None,
    typer.Option(
        "--ploidy", help="bcftools' ploidy setting (e.g. GRCh38, 1); default 2.", metavar="NAME"
    ),
]
ReadLength = Annotated[
    int | None,
    typer.Option(
        "--read-length", help="Longest read expected: a longer one is an error.", metavar="BP"
    ),
]
KeepWork = Annotated[
    bool, typer.Option("--keep-work", help="Keep the work folder after success.")
]
Beacon = Annotated[
    str | None,
    typer.Option("--beacon", help="Also ingest the VCF into this Beacon dataset (reads become "
                 "shareable variants in one step).", metavar="DATASET"),
]  # fmt: skip
Assembly = Annotated[
    str | None,
    typer.Option("--assembly", help="With --beacon: the genome's assembly (GRCh37, GRCh38, …).",
                 metavar="NAME"),
]  # fmt: skip
Access = Annotated[
    str | None,
    typer.Option("--access", help="With --beacon: who may query the dataset, as `beacon ingest "
                 "--access` [default: the tier of the dataset it replaces, public for a new one].",
                 metavar="[public|registered|controlled]"),
]  # fmt: skip
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Json = Annotated[
    Path | None,
    typer.Option("--report", help="Write the run's figures (JSON) here.", metavar="FILE"),
]


def _store(ctx: typer.Context):
    from ..storage import Store

    return Store.from_settings(ctx.obj)


def _reference(ctx: typer.Context, genome: str):
    from ..calling.reference import open_reference

    store = None if Path(genome).expanduser().is_file() else _store(ctx)
    return open_reference(genome, store=store, cache_dir=ctx.obj.cache_path)


def _progress(quiet: bool):
    @contextlib.contextmanager
    def factory(stage: str, unit: str | None):
        with task_progress(stage, quiet, unit=unit) as update:
            yield update

    return factory


def _summary(report, quiet: bool, json_path: Path | None) -> None:
    s = report.seconds
    parts = [
        f"{report.out}: {report.records:,} records from {len(report.samples)} sample"
        f"{'s' if len(report.samples) != 1 else ''}",
        f"{report.reads:,} reads aligned in {s.get('align', 0):.1f} s "
        f"({report.reads_per_second:,.0f} reads/s)" if report.reads else "",
        f"{report.genome_bp / 1e6:,.2f} Mbp called in {s.get('call', 0):.1f} s over "
        f"{report.shards} regions ({report.called_mbp_per_second:.2f} Mbp/s)",
    ]
    reused = report.chunks_reused + report.shards_reused
    if reused:
        parts.append(f"resumed: {report.chunks_reused} chunks and {report.shards_reused} "
                     "regions reused")  # fmt: skip
    typer.echo("; ".join(p for p in parts if p))
    if report.bam:
        typer.echo(f"alignments: {report.bam}")
    if json_path is not None:
        tmp = json_path.with_name(json_path.name + ".tmp")
        tmp.write_text(json.dumps(report.as_dict(), indent=1))
        tmp.replace(json_path)


def _ingest(ctx: typer.Context, vcf: Path, dataset: str, assembly: str | None,
            access: str | None, quiet: bool):  # fmt: skip
    from .. import registry

    ingest = registry.capability("beacon.ingest-vcf")
    settings = ctx.obj
    with task_progress(f"ingest into beacon {dataset}", quiet, unit="bases") as cb:
        ds = ingest(_store(ctx), dataset, vcf, assembly=assembly, access=access,
                    executor=settings.executor, retries=settings.retries, progress=cb,
                    check_ref=False)  # fmt: skip
    typer.echo(
        f"beacon dataset {dataset}: version {ds.manifest.get('version')}, access "
        f"{ds.meta.get('access', access)}"
    )


#: The Beacon's access tiers (``beacon ingest --access``), its default first.
ACCESS_TIERS = ("public", "registered", "controlled")


def _call(ctx: typer.Context, genome: str, samples, output: Path, beacon: str | None,
          assembly: str | None, access: str | None, report_json: Path | None, quiet: bool,
          **options) -> None:  # fmt: skip
    """What `run` and `joint` share: call, summarise, and share through the Beacon."""
    from ..calling.pipeline import call_samples
    from ..errors import InputError

    # before hours of work, not after
    if beacon and not assembly:
        raise InputError("--beacon needs --assembly (e.g. GRCh37)")
    if access is not None and access not in ACCESS_TIERS:
        raise InputError(f"--access must be one of {', '.join(ACCESS_TIERS)} (got {access!r})")
    if access is not None and not beacon:
        raise InputError(f"--access {access} is for the Beacon dataset: give --beacon DATASET")
    settings = ctx.obj
    report = call_samples(
        _reference(ctx, genome), samples, output, executor=settings.executor,
        retries=settings.retries, progress=_progress(quiet),
        command=shlex.join(["sandgrain", *sys.argv[1:]]), **options,
    )  # fmt: skip
    _summary(report, quiet, report_json)
    if beacon:
        _ingest(ctx, output, beacon, assembly, access, quiet)


@app.command("index")
def index_cmd(ctx: typer.Context, genome: Genome) -> None:
    """Index a genome for calling: samtools .fai and minimap2 .mmi (short-read preset)."""
    from ..calling.reference import index_reference, store_genome_paths

    path = Path(genome).expanduser()
    if path.is_file():
        ref = index_reference(path)
    else:
        _, fasta, mmi = store_genome_paths(_store(ctx), genome, ctx.obj.cache_path)
        mmi.parent.mkdir(parents=True, exist_ok=True)
        ref = index_reference(fasta, mmi)
    typer.echo(f"{genome}: {len(ref.contigs):,} sequences, {ref.length:,} bp; index {ref.mmi}")


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    genome: Genome,
    reads: Annotated[
        list[Path],
        typer.Option("--reads", help="FASTQ (plain or gzip): once, or twice for a pair "
                     "(R1 then R2).", metavar="FASTQ"),
    ],  # fmt: skip
    sample: Annotated[
        str, typer.Option("--sample", help="Sample name (the read group's SM).", metavar="NAME")
    ],
    output: Output,
    bam: Annotated[
        Path | None,
        typer.Option("--bam", help="Also keep the alignments (.bam or .cram, indexed).",
                     metavar="FILE"),
    ] = None,  # fmt: skip
    work: Work = None,
    regions: Regions = None,
    chunk_reads: ChunkReads = 500_000,
    gvcf: Gvcf = False,
    ploidy: Ploidy = None,
    read_length: ReadLength = None,
    keep_work: KeepWork = False,
    beacon: Beacon = None,
    assembly: Assembly = None,
    access: Access = None,
    report_json: Json = None,
    quiet: Quiet = False,
) -> None:
    """One sample's reads to a VCF: align in chunks, mark duplicates, call in regions cut by
    coverage, gather one sorted, bgzipped, indexed VCF (resumable)."""
    from ..calling.pipeline import SampleInput
    from ..errors import InputError

    if len(reads) not in (1, 2):
        raise InputError("--reads is given once (single-end) or twice (R1, R2)")
    one = SampleInput(sample, str(reads[0]), str(reads[1]) if len(reads) == 2 else None)
    _call(ctx, genome, [one], output, beacon, assembly, access, report_json, quiet, bam_out=bam,
          work=work, chunk_reads=chunk_reads, shards=regions, gvcf=gvcf, ploidy=ploidy,
          max_read_length=read_length, keep_work=keep_work)  # fmt: skip


@app.command("joint")
def joint_cmd(
    ctx: typer.Context,
    genome: Genome,
    samples: Annotated[
        Path,
        typer.Option("--samples", help="TSV with a header: sample, reads1 [, reads2] or bam.",
                     metavar="TSV"),
    ],  # fmt: skip
    output: Output,
    work: Work = None,
    regions: Regions = None,
    chunk_reads: ChunkReads = 500_000,
    gvcf: Gvcf = False,
    ploidy: Ploidy = None,
    read_length: ReadLength = None,
    keep_work: KeepWork = False,
    beacon: Beacon = None,
    assembly: Assembly = None,
    access: Access = None,
    report_json: Json = None,
    quiet: Quiet = False,
) -> None:
    """A cohort: each sample's reads aligned, then all samples called together per region
    (bcftools' multi-sample call) into one multi-sample VCF; --beacon shares it (--access
    controlled: only to holders of a visa for the dataset)."""
    from ..calling.pipeline import read_samples_file

    _call(ctx, genome, read_samples_file(samples), output, beacon, assembly, access, report_json,
          quiet, work=work, chunk_reads=chunk_reads, shards=regions, gvcf=gvcf, ploidy=ploidy,
          max_read_length=read_length, keep_work=keep_work)  # fmt: skip
