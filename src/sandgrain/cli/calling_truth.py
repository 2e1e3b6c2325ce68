"""``sandgrain calling simulate`` and ``sandgrain calling compare``: a sample with known
variants and its reads, and the score of calls against a truth set.

Both are plain commands the calling domain adds through ``cli_extensions``; the work is done by
:mod:`sandgrain.calling.simulate` and :mod:`sandgrain.calling.accuracy`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError

__all__ = ["compare_cmd", "simulate_cmd"]


def simulate_cmd(
    genome: Annotated[
        Path,
        typer.Option(
            "--genome",
            help="Reference FASTA (plain or gzip) to plant variants in.",
            metavar="FASTA",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for truth.vcf.gz, hap1.fa, hap2.fa and the "
            "reads (reads_1.fastq.gz, reads_2.fastq.gz).",
            metavar="DIR",
        ),
    ],
    depth: Annotated[
        float, typer.Option("--depth", help="Fold coverage of the sample.", metavar="X")
    ] = 20.0,
    read_length: Annotated[
        int, typer.Option("--read-length", help="Read length (HS25: up to 150).", metavar="BP")
    ] = 150,
    fragment_mean: Annotated[
        int, typer.Option("--fragment-mean", help="Mean fragment size.", metavar="BP")
    ] = 400,
    fragment_sd: Annotated[
        int, typer.Option("--fragment-sd", help="Fragment size SD.", metavar="BP")
    ] = 50,
    snv_rate: Annotated[
        float, typer.Option("--snv-rate", help="SNVs per base.", metavar="RATE")
    ] = 1e-3,
    indel_rate: Annotated[
        float, typer.Option("--indel-rate", help="Indels per base.", metavar="RATE")
    ] = 1.5e-4,
    max_indel: Annotated[
        int, typer.Option("--max-indel", help="Longest indel.", metavar="BP")
    ] = 50,
    profile: Annotated[
        str, typer.Option("--profile", help="ART error profile (HS25, MSv3, …).", metavar="NAME")
    ] = "HS25",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.", metavar="N")] = 1,
) -> None:
    """Plant phased SNVs and indels into a genome and simulate Illumina reads of the sample
    (ART): a truth VCF and a FASTQ pair to test calling with."""
    from ..calling.simulate import confident_regions, plant_variants, simulate_reads

    truth = plant_variants(
        genome,
        out,
        seed=seed,
        snv_rate=snv_rate,
        indel_rate=indel_rate,
        max_indel=max_indel,
    )
    r1, r2, pairs = simulate_reads(
        truth.haplotypes,
        out / "reads",
        depth=depth,
        read_length=read_length,
        fragment_mean=fragment_mean,
        fragment_sd=fragment_sd,
        seed=seed,
        profile=profile,
    )
    typer.echo(
        f"truth: {truth.vcf} ({truth.snv:,} SNVs, {truth.indel:,} indels; "
        f"{truth.het:,} het, {truth.hom:,} hom)"
    )
    typer.echo(f"haplotypes: {truth.hap1} {truth.hap2}")
    typer.echo(f"reads: {r1} {r2} ({pairs:,} pairs, {depth:g}x, {read_length} bp)")
    bed, confident, total = confident_regions(genome, out / "confident.bed",
                                              read_length=read_length)  # fmt: skip
    typer.echo(f"confident regions (uniquely mappable): {bed} ({confident:,} of {total:,} bp; "
               "score with `calling compare --regions`)")  # fmt: skip


def compare_cmd(
    truth: Annotated[
        Path, typer.Option("--truth", help="Truth VCF (plain or gzip).", metavar="VCF")
    ],
    calls: Annotated[
        Path, typer.Option("--calls", help="Calls VCF to score (plain or gzip).", metavar="VCF")
    ],
    genome: Annotated[
        Path,
        typer.Option(
            "--genome",
            help="Reference FASTA both VCFs are on (plain, gzip or bgzip).",
            metavar="FASTA",
        ),
    ],
    sample: Annotated[
        str | None,
        typer.Option(
            "--sample", help="Sample of the calls (needed when there are several).", metavar="NAME"
        ),
    ] = None,
    truth_sample: Annotated[
        str | None,
        typer.Option(
            "--truth-sample", help="Sample of the truth (when there are several).", metavar="NAME"
        ),
    ] = None,
    regions: Annotated[
        Path | None,
        typer.Option(
            "--regions", help="Confident regions: count only variants inside.", metavar="BED"
        ),
    ] = None,
    min_qual: Annotated[
        float, typer.Option("--min-qual", help="Ignore calls with QUAL below this.", metavar="Q")
    ] = 0.0,
    pass_only: Annotated[
        bool, typer.Option("--pass-only", help="Ignore calls whose FILTER is not PASS.")
    ] = False,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay/--no-replay",
            help="Replay clusters of unmatched records as haplotypes, as vcfeval does (default); "
            "--no-replay matches records by position and alleles only.",
        ),
    ] = True,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the figures as JSON here.", metavar="FILE"),
    ] = None,
) -> None:
    """Score calls against a truth set: TP, FP, FN, precision, recall, F1 and genotype
    concordance for SNVs and indels, after normalising both (bcftools norm); records matched by
    position and alleles, then the clusters left over replayed as haplotypes."""
    from ..calling.accuracy import compare

    report = compare(
        truth,
        calls,
        genome,
        sample=sample,
        truth_sample=truth_sample,
        regions_bed=regions,
        min_qual=min_qual,
        pass_only=pass_only,
        replay=replay,
    )
    typer.echo(f"calls {report.sample} vs truth {report.truth_sample}")
    typer.echo(report.table())
    if replay:
        typer.echo(
            f"{report.replayed:,} clusters of records matched as haplotypes, not record by record"
        )
    if json_path is not None:
        tmp = json_path.with_name(f".{json_path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(report.as_dict(), indent=1) + "\n")
            os.replace(tmp, json_path)
        except OSError as exc:
            raise InputError(f"cannot write {json_path}: {exc.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)
        typer.echo(f"figures: {json_path}")
