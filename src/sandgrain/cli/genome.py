"""``sandgrain genome …``: import genomes, look at them, read regions and genes."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from ..genome.composition import composition
from ..genome.regions import Region
from ..genome.store import add_genome, list_genomes, open_genome, remove_genome
from ..storage import Store
from .progress import byte_progress, task_progress

app = typer.Typer(help="Import genomes and read sequences and genes.", no_args_is_help=True)
# piped output is never cut to 80 columns (MD5s, long names stay whole)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 250)


def _store(ctx: typer.Context) -> Store:
    return Store.from_settings(ctx.obj)


def _json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name of the genome in the store, e.g. yeast or hg38."),
    fasta: str = typer.Option(
        ..., "--fasta", help="FASTA (plain or gzipped): a path or an http(s)/ftp URL."
    ),
    annotation: str = typer.Option(
        None,
        "--annotation",
        help="Genes: GTF, GFF3, SGD features table or GenBank; path or URL.",
        metavar="FILE",
    ),
    annotation_format: str = typer.Option(
        None,
        "--annotation-format",
        help="gtf, gff3, sgd or genbank (default: from the file).",
        metavar="[gtf|gff3|sgd|genbank]",
    ),
    alias: list[str] = typer.Option(
        [], "--alias", help="Another name for the genome (repeatable).", metavar="NAME"
    ),
    assembly: str = typer.Option(
        None, "--assembly", help="Assembly name, e.g. GRCh38 or R64-1-1.", metavar="NAME"
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Replace an existing genome of that name."
    ),
    iupac_to_n: bool = typer.Option(
        False,
        "--iupac-to-n",
        help="Turn IUPAC ambiguity codes (R, Y, …) into N instead of refusing them.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Import a genome: sequence to an indexed bgzipped FASTA, annotation to a gene table."""
    with byte_progress(quiet) as progress:
        genome = add_genome(
            _store(ctx),
            name,
            fasta,
            annotation=annotation,
            annotation_format=annotation_format,
            aliases=alias,
            assembly=assembly,
            replace=replace,
            iupac_to_n=iupac_to_n,
            progress=progress,
        )
    s = genome.summary()
    typer.echo(
        f"added genome {s['name']}: {s['sequences']} sequences, {s['total_length']:,} bp, "
        f"{s['genes']:,} genes",
        err=True,
    )


@app.command("list")
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="JSON output.")
) -> None:
    """List the genomes in the store."""
    rows = [g.summary() for g in list_genomes(_store(ctx))]
    if as_json:
        _json(rows)
        return
    if not rows:
        typer.echo(
            "no genomes yet: add one with `sandgrain genome add NAME --fasta FILE`", err=True
        )
        return
    table = Table("name", "aliases", "assembly", "sequences", "length (bp)", "genes", box=None)
    for r in rows:
        table.add_row(
            r["name"],
            ", ".join(r["aliases"]),
            r["assembly"] or "",
            str(r["sequences"]),
            f"{r['total_length']:,}",
            f"{r['genes']:,}",
        )
    out.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Genome name or alias."),
    as_json: bool = typer.Option(False, "--json", help="The whole manifest as JSON."),
) -> None:
    """Show a genome: sequences, lengths, masking, checksums and provenance."""
    genome = open_genome(_store(ctx), name)
    if as_json:
        _json(genome.dataset.manifest)
        return
    s = genome.summary()
    out.print(
        f"[bold]{s['name']}[/bold]  aliases: {', '.join(s['aliases']) or '-'}  "
        f"assembly: {s['assembly'] or '-'}  genes: {s['genes']:,}"
    )
    prov = genome.dataset.manifest.get("provenance", {})
    for inp in prov.get("inputs", []):
        out.print(f"{inp.get('role', 'input')}: {inp['source']}  sha256 {inp['sha256']}")
    out.print(
        f"imported {genome.dataset.manifest.get('created')} by sandgrain {prov.get('version')}"
    )
    table = Table("sequence", "aliases", "length (bp)", "N", "soft-masked", "GC", "MD5", box=None)
    for c in genome.chromosomes:
        acgt = c["length"] - c["n_count"]
        table.add_row(
            c["name"],
            ", ".join(genome.names.aliases_of(c["name"])),
            f"{c['length']:,}",
            f"{c['n_count']:,}",
            f"{100 * c['masked'] / c['length']:.1f}%",
            f"{100 * c['gc'] / acgt:.1f}%" if acgt else "-",
            c["md5"],
        )
    out.print(table)


@app.command("region")
def region(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Genome name or alias."),
    regions: list[str] = typer.Argument(
        ..., help="chrom:start-end, 1-based inclusive (samtools).", metavar="REGION"
    ),
    strand: str = typer.Option(
        "+", "--strand", help="'-' gives the reverse complement.", metavar="[+|-]"
    ),
    width: int = typer.Option(60, "--width", min=1, help="Bases per FASTA line."),
) -> None:
    """Print regions as FASTA (like `samtools faidx`; soft-masking kept)."""
    genome = open_genome(_store(ctx), name)
    parsed: list[Region] = [genome.region(text, strand) for text in regions]  # check all first
    step = width * 16_384  # about 1 Mb at a time: memory stays small for whole chromosomes
    for reg in parsed:
        sys.stdout.write(f">{reg}{'/rc' if reg.strand == '-' else ''}\n")
        # full chunks first in reading order, so FASTA lines stay `width` long
        if reg.strand == "+":
            chunks = [(s, min(s + step, reg.end0)) for s in range(reg.start0, reg.end0, step)]
        else:
            chunks = [(max(reg.start0, e - step), e) for e in range(reg.end0, reg.start0, -step)]
        for s, e in chunks:
            seq = genome.fetch(Region(reg.chrom, s, e, reg.strand))
            sys.stdout.write("".join(seq[i : i + width] + "\n" for i in range(0, len(seq), width)))


@app.command("gene")
def gene(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Genome name or alias."),
    symbol: str = typer.Argument(..., help="Gene symbol, alias or ID (case-insensitive)."),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
) -> None:
    """Show a gene: coordinates (1-based inclusive), strand, exons and CDS."""
    g = open_genome(_store(ctx), name).gene(symbol)
    record = {
        "symbol": g.symbol,
        "gene_id": g.gene_id,
        "aliases": list(g.aliases),
        "ids": list(g.ids),
        "chrom": g.chrom,
        "start": g.start0 + 1,
        "end": g.end0,
        "strand": g.strand,
        "biotype": g.biotype,
        "location": f"{g.chrom}:{g.start0 + 1}-{g.end0}",
        "exons": [{"start": s + 1, "end": e} for s, e in g.exons],
        "cds": [{"start": s + 1, "end": e} for s, e in g.cds],
        "description": g.description,
    }
    if as_json:
        _json(record)
        return
    out.print(
        f"[bold]{g.symbol}[/bold] ({g.gene_id})  {record['location']}  strand {g.strand}  "
        f"{g.end0 - g.start0:,} bp  {g.biotype or ''}"
    )
    if g.aliases:
        out.print("aliases: " + ", ".join(g.aliases))
    if g.ids:
        out.print("ids: " + ", ".join(g.ids))
    for kind in ("exons", "cds"):
        parts = record[kind]
        if parts:
            out.print(f"{kind}: " + ", ".join(f"{p['start']}-{p['end']}" for p in parts))
    if g.description:
        out.print(g.description)


@app.command("remove")
def remove(
    ctx: typer.Context, name: str = typer.Argument(..., help="Genome name or alias.")
) -> None:
    """Remove a genome from the store."""
    remove_genome(_store(ctx), name)
    typer.echo(f"removed genome {name}", err=True)


@app.command("verify")
def verify(
    ctx: typer.Context, name: str = typer.Argument(..., help="Genome name or alias.")
) -> None:
    """Re-read every stored file and check its size and SHA-256 against the manifest."""
    genome = open_genome(_store(ctx), name)
    problems = genome.dataset.verify()
    if problems:
        raise typer.Exit(code=_report(problems))
    typer.echo(
        f"genome {genome.name}: all {len(genome.dataset.manifest['files'])} files intact", err=True
    )


def _report(problems: list[str]) -> int:
    for p in problems:
        typer.echo(f"sandgrain: error: {p}", err=True)
    return 1


@app.command("composition")
def composition_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Genome name or alias."),
    max_size: int = typer.Option(
        4_000_000, "--max-size", min=1000, help="A task bigger than this many bp splits itself."
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Count bases per chromosome by fanning out over the genome on the configured executor."""
    settings = ctx.obj
    genome = open_genome(_store(ctx), name)
    with task_progress(f"composition of {genome.name}", quiet, unit="bases") as progress:
        rows = composition(
            genome,
            settings.executor,
            max_size=max_size,
            retries=settings.retries,
            progress=progress,
        )
    if as_json:
        _json(rows)
        return
    table = Table("sequence", "length", "A", "C", "G", "T", "N", "soft-masked", box=None)
    for r in rows:
        table.add_row(
            r["chrom"], *(f"{r[k]:,}" for k in ("length", "A", "C", "G", "T", "N", "masked"))
        )
    out.print(table)
