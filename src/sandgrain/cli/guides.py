"""``sandgrain guides …``: design guides, score given guides, list off-target sites.

Every command checks its options, its guides and the output path before searching, and writes
its output only once everything succeeded (``--out`` atomically), so a failed run leaves no file.
``offtargets`` streams (a batch of guides at a time, :mod:`sandgrain.guides.output`): its file
is still written atomically, but standard output gets the sites as they are found.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import InputError
from ..genome.store import open_genome
from ..guides.candidates import MAX_TARGET_BP
from ..guides.document import RANKING_RULE
from ..storage import Store
from .progress import task_progress

app = typer.Typer(
    help="Design CRISPR guides, score guides, and search off-targets genome-wide.",
    no_args_is_help=True,
)

_NUCLEASE_HELP = "SpCas9 (default), SaCas9, AsCas12a or LbCas12a; or --pam for your own."


def _store(ctx: typer.Context) -> Store:
    return Store.from_settings(ctx.obj)


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    key = str(value).strip().lower()
    if key not in allowed:
        raise InputError(f"{option} must be one of {', '.join(allowed)}, not {value!r}")
    return key


def _read_guides_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"cannot read guides from {source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read guides from {source}: it is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read guides from {source}: {exc.strerror or exc}") from None


def _note(message: str) -> None:
    typer.echo(f"sandgrain: note: {message}", err=True)


def _truncation_notes(doc: dict, limit: int | None) -> None:
    cut = [g for g in doc["guides"] if g.get("offtargets_listed_truncated")]
    if cut:
        _note(
            f"off-target listing cut to {limit:,} per guide (--max-offtargets-listed) for "
            f"{len(cut)} guide(s); counts are exact: "
            + ", ".join(f"{g['sequence']} {g['offtargets_total']:,}" for g in cut[:10])
            + (", …" if len(cut) > 10 else "")
        )


_DESIGN_HELP = (
    "Design guides for a gene, region or sequence, search each one's off-targets genome-wide, "
    "and rank them.\n\n"
    "Each guide shows its efficiency (Rule Set 3, Rule Set 1, CRISPRscan, out-of-frame) and its "
    "specificity (MIT and CFD guide scores) separately, with flags and the exon and % of the "
    "CDS where it cuts.\n\nRanking: " + RANKING_RULE
)


@app.command("design", help=_DESIGN_HELP)
def design(
    ctx: typer.Context,
    genome: str = typer.Option(..., "--genome", "-g", help="Genome name or alias.", metavar="NAME"),
    gene: str = typer.Option(None, "--gene", help="Target gene: symbol, alias or ID."),
    region: str = typer.Option(
        None, "--region", help="Target region chrom:start-end (1-based, inclusive)."
    ),
    sequence: str = typer.Option(None, "--sequence", help="Target DNA sequence (ACGT…)."),
    fasta: str = typer.Option(None, "--fasta", help="Target sequence(s) in a FASTA file."),
    nuclease: str = typer.Option(None, "--nuclease", help=_NUCLEASE_HELP, metavar="NAME"),
    pam: str = typer.Option(None, "--pam", help="A custom PAM in IUPAC letters, e.g. NNGRRT."),
    guide_length: int = typer.Option(
        None, "--guide-length", help="Custom protospacer length (default 20 with --pam)."
    ),
    pam_side: str = typer.Option(
        None,
        "--pam-side",
        help="Custom PAM side: 3 (like Cas9, default) or 5 (like Cas12a).",
        metavar="[3|5]",
    ),
    offtarget_pams: str = typer.Option(
        None,
        "--offtarget-pams",
        help="Extra PAMs searched for off-targets, e.g. NAG,NGA (the index must hold them).",
        metavar="PAMS",
    ),
    within: str = typer.Option(
        "exons", "--within", help="For --gene: exons, cds or gene.", metavar="[exons|cds|gene]"
    ),
    max_mismatches: int = typer.Option(
        4, "--max-mismatches", "-m", help="Off-targets with up to this many mismatches (0-5)."
    ),
    fmt: str = typer.Option(
        "tsv", "--format", "-f", help="tsv, json or bed.", metavar="[tsv|json|bed]"
    ),
    out: str = typer.Option(
        None, "--out", "-o", help="Write to this file (default stdout).", metavar="FILE"
    ),
    max_offtargets_listed: int = typer.Option(
        None,
        "--max-offtargets-listed",
        help="List at most N off-targets per guide (counts stay exact).",
    ),
    max_target_bp: int = typer.Option(
        MAX_TARGET_BP, "--max-target-bp", help="Largest target in bp (0: no limit)."
    ),
    no_exclude_on_target: bool = typer.Option(
        False,
        "--no-exclude-on-target",
        help="Count every site, each guide's own on-target site included.",
    ),
    tracr: str = typer.Option(
        "Hsu2013",
        "--tracr",
        help="tracrRNA for Rule Set 3: Hsu2013 (default) or Chen2013 (no T at position 5).",
        metavar="NAME",
    ),
    primers: bool = typer.Option(
        False, "--primers", help="Design PCR primers around each cut; check their uniqueness."
    ),
    variants: str = typer.Option(
        None,
        "--variants",
        metavar="VCF",
        help="Known variants (VCF/BCF): flag guides whose protospacer or PAM overlaps one.",
    ),
    chrom_names: str = typer.Option(
        "ucsc",
        "--chrom-names",
        metavar="[ucsc|stored]",
        help="BED: chromosome names as UCSC and IGV call them (chrXV, chrM) where the genome "
        "is of a known assembly, or as stored (XV, Mito).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    from ..guides.design import design_guides
    from ..guides.formats import check_output_path, to_bed, to_json, to_tsv, write_output
    from ..guides.request import DesignRequest

    fmt = _choice(fmt, ("tsv", "json", "bed"), "--format")
    chrom_names = _choice(chrom_names, ("ucsc", "stored"), "--chrom-names")
    request = DesignRequest(
        gene=gene,
        region=region,
        sequence=sequence,
        fasta=fasta,
        nuclease=nuclease,
        pam=pam,
        guide_length=guide_length,
        pam_side=pam_side,
        offtarget_pams=offtarget_pams,
        within=within,
        max_mismatches=max_mismatches,
        max_target_bp=max_target_bp,
        max_offtargets_listed=max_offtargets_listed,
        list_offtargets=fmt == "json",  # TSV and BED list no off-target
        exclude_on_target=not no_exclude_on_target,
        tracr=tracr,
        primers=primers,
        variants=variants,
    )
    check_output_path(out)
    settings = ctx.obj
    g = open_genome(_store(ctx), genome)
    with task_progress(f"off-target search in {g.name}", quiet, unit="sites") as progress:
        doc = design_guides(
            g, request, executor=settings.executor, retries=settings.retries, progress=progress
        )
    if fmt == "bed":
        text = to_bed(doc, g.ucsc_names() if chrom_names == "ucsc" else None)
    else:
        text = {"tsv": to_tsv, "json": to_json}[fmt](doc)
    write_output(text, out)
    if not quiet:
        target = doc["target"]
        _note(
            f"{len(doc['guides'])} {request.nuclease.name} guides for {target['type']} "
            f"{target['name']} in {g.name}, off-targets up to {doc['max_mismatches']} mismatches"
            + (f"; written to {out}" if out else "")
        )
    _truncation_notes(doc, max_offtargets_listed)


def _score_request(
    ctx: typer.Context,
    genome: str,
    guides_source: str,
    *,
    nuclease,
    pam,
    guide_length,
    pam_side,
    offtarget_pams,
    max_mismatches: int,
    max_offtargets_listed: int | None,
    list_offtargets: bool,
    exclude_on_target: bool,
    out: str | None,
    lines=None,
):
    """The genome and the checked request of ``score`` and ``offtargets``: the guides read
    (unless ``lines`` were read already), the output path checked, before any search."""
    from ..guides.formats import check_output_path, parse_guides
    from ..guides.request import ScoreRequest, resolve_nuclease

    check_output_path(out)
    nuc = resolve_nuclease(
        nuclease,
        pam=pam,
        guide_length=guide_length,
        pam_side=pam_side,
        offtarget_pams=offtarget_pams,
    )
    if lines is None:
        lines = parse_guides(_read_guides_text(guides_source), nuc)
    request = ScoreRequest(
        [line.sequence for line in lines],
        nuclease=nuc,
        max_mismatches=max_mismatches,
        guide_mismatches=[line.max_mismatches for line in lines],
        max_offtargets_listed=max_offtargets_listed,
        list_offtargets=list_offtargets,
        exclude_on_target=exclude_on_target,
    )
    return open_genome(_store(ctx), genome), request


_GUIDES_HELP = (
    "File of guides, one per line (protospacers without PAM; Cas-OFFinder input lines too), "
    "or - for stdin."
)


@app.command("score")
def score(
    ctx: typer.Context,
    guides: str = typer.Argument(..., help=_GUIDES_HELP),
    genome: str = typer.Option(..., "--genome", "-g", help="Genome name or alias.", metavar="NAME"),
    nuclease: str = typer.Option(None, "--nuclease", help=_NUCLEASE_HELP, metavar="NAME"),
    pam: str = typer.Option(None, "--pam", help="A custom PAM in IUPAC letters."),
    guide_length: int = typer.Option(None, "--guide-length", help="Custom protospacer length."),
    pam_side: str = typer.Option(
        None, "--pam-side", help="Custom PAM side: 3 or 5.", metavar="[3|5]"
    ),
    offtarget_pams: str = typer.Option(
        None,
        "--offtarget-pams",
        help="Extra PAMs searched for off-targets, e.g. NAG,NGA.",
        metavar="PAMS",
    ),
    max_mismatches: int = typer.Option(
        4, "--max-mismatches", "-m", help="Sites with up to this many mismatches (0-5)."
    ),
    fmt: str = typer.Option("tsv", "--format", "-f", help="tsv or json.", metavar="[tsv|json]"),
    out: str = typer.Option(
        None, "--out", "-o", help="Write to this file (default stdout).", metavar="FILE"
    ),
    max_offtargets_listed: int = typer.Option(
        None, "--max-offtargets-listed", help="List at most N sites per guide (JSON)."
    ),
    no_exclude_on_target: bool = typer.Option(
        False,
        "--no-exclude-on-target",
        help="Count every site; by default each guide's first 0-mismatch site is its on-target.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Score given guides: genome-wide sites, MIT/CFD specificity, rank (the first perfect site
    of each guide taken as its on-target); placed at that site, each gets its position, gene,
    exon and efficiency scores there as design gives them."""
    from ..guides.design import score_guides
    from ..guides.formats import to_json, to_tsv, write_output

    fmt = _choice(fmt, ("tsv", "json"), "--format")
    g, request = _score_request(
        ctx,
        genome,
        guides,
        nuclease=nuclease,
        pam=pam,
        guide_length=guide_length,
        pam_side=pam_side,
        offtarget_pams=offtarget_pams,
        max_mismatches=max_mismatches,
        max_offtargets_listed=max_offtargets_listed,
        list_offtargets=fmt == "json",
        exclude_on_target=not no_exclude_on_target,
        out=out,
    )
    settings = ctx.obj
    # a batch of guides at a time: memory bounded by a batch's sites, not by all of them
    with task_progress(f"off-target search in {g.name}", quiet, unit="sites") as progress:
        doc = score_guides(
            g, request, executor=settings.executor, retries=settings.retries, progress=progress
        )
    write_output(to_tsv(doc) if fmt == "tsv" else to_json(doc), out)
    if fmt == "json":
        _truncation_notes(doc, max_offtargets_listed)


@app.command("offtargets")
def offtargets(
    ctx: typer.Context,
    guides: str = typer.Argument(..., help=_GUIDES_HELP),
    genome: str = typer.Option(..., "--genome", "-g", help="Genome name or alias.", metavar="NAME"),
    pam: str = typer.Option(None, "--pam", help="PAM in IUPAC letters, e.g. NGG (as SpCas9)."),
    guide_length: int = typer.Option(
        None, "--guide-length", help="Protospacer length (default 20 with --pam)."
    ),
    pam_side: str = typer.Option(
        None, "--pam-side", help="PAM side: 3 (default) or 5.", metavar="[3|5]"
    ),
    nuclease: str = typer.Option(
        None, "--nuclease", help="A shipped nuclease instead of --pam.", metavar="NAME"
    ),
    offtarget_pams: str = typer.Option(
        None, "--offtarget-pams", help="Extra PAMs searched, e.g. NAG,NGA.", metavar="PAMS"
    ),
    max_mismatches: int = typer.Option(
        4,
        "--max-mismatches",
        "-m",
        help="Sites with up to this many mismatches (0-5); a guide line's own number wins.",
    ),
    fmt: str = typer.Option(
        "casoffinder",
        "--format",
        "-f",
        help="casoffinder, tsv, json or parquet.",
        metavar="[casoffinder|tsv|json|parquet]",
    ),
    out: str = typer.Option(
        None, "--out", "-o", help="Write to this file (default stdout).", metavar="FILE"
    ),
    max_offtargets_listed: int = typer.Option(
        None, "--max-offtargets-listed", help="List at most N sites per guide (fewest mismatches)."
    ),
    dna_bulge: int = typer.Option(
        None,
        "--dna-bulge",
        help="Also sites with a DNA bulge of up to N bases (0-2); wins over the input's pattern "
        "line (Cas-OFFinder 3: NNNNNNNNNNNNNNNNNNNNNGG 2 1).",
    ),
    rna_bulge: int = typer.Option(
        None, "--rna-bulge", help="Also sites with an RNA bulge of up to N bases (0-2); as above."
    ),
    full_header: bool = typer.Option(
        False,
        "--full-header",
        help="-f casoffinder: the chromosome column is the whole FASTA header line, as "
        "Cas-OFFinder prints it.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Every site of each guide in the genome, its own included; a drop-in for Cas-OFFinder 2.4,
    and for Cas-OFFinder 3 with bulges (its output format then).

    Sites are written as they are found, a batch of guides at a time, so memory stays bounded
    whatever their number; -f parquet writes the TSV's columns typed."""
    from ..guides.output import FORMATS, write_offtargets

    fmt = _choice(fmt, FORMATS, "--format")
    if full_header and fmt != "casoffinder":
        raise InputError("--full-header is for -f casoffinder only")
    options = dict(nuclease=nuclease, pam=pam, guide_length=guide_length, pam_side=pam_side,
                   offtarget_pams=offtarget_pams)  # fmt: skip
    read = _read_bulge_input(guides, options, dna_bulge, rna_bulge)
    if read["dna_bulge"] or read["rna_bulge"]:
        _bulge_offtargets(
            ctx, genome, read, max_mismatches=max_mismatches, fmt=fmt, out=out,
            max_listed=max_offtargets_listed, full_header=full_header, quiet=quiet,
        )  # fmt: skip
        return
    g, request = _score_request(
        ctx,
        genome,
        guides,
        nuclease=nuclease,
        pam=pam,
        guide_length=guide_length,
        pam_side=pam_side,
        offtarget_pams=offtarget_pams,
        max_mismatches=max_mismatches,
        max_offtargets_listed=max_offtargets_listed,
        list_offtargets=True,
        exclude_on_target=False,  # every site, the guide's own included
        out=out,
        lines=read["lines"],
    )
    settings = ctx.obj
    # streamed: a batch of guides at a time, its sites written from columns (guides/output.py)
    with task_progress(f"off-target search in {g.name}", quiet, unit="sites") as progress:
        written = write_offtargets(
            g, request, fmt, out, executor=settings.executor, retries=settings.retries,
            progress=progress, chrom_labels=g.fasta_headers() if full_header else None,
        )  # fmt: skip
    limit = request.max_offtargets_listed
    cut = [(written.guides[i], int(written.totals[i])) for i in written.truncated()]
    if cut:
        what = (
            f"listing cut to {limit:,} sites"
            if fmt == "casoffinder"
            else (f"off-target listing cut to {limit:,}")
        )
        _note(
            what
            + f" per guide (--max-offtargets-listed) for {len(cut)} guide(s); counts are exact: "
            + ", ".join(f"{seq} {n:,}" for seq, n in cut[:10])
            + (", …" if len(cut) > 10 else "")
        )  # fmt: skip


def _read_bulge_input(source: str, options: dict, dna_bulge, rna_bulge) -> dict:
    """The guides of ``offtargets`` and the bulge sizes to search: the options' when given, else
    those of a Cas-OFFinder 3 pattern line (0 without one)."""
    from ..guides.bulges import check_bulge
    from ..guides.formats import read_guide_input
    from ..guides.request import resolve_nuclease

    nuc = resolve_nuclease(**options)
    read = read_guide_input(_read_guides_text(source), nuc)
    return {
        "nuclease": nuc,
        "lines": read.lines,
        "dna_bulge": check_bulge(read.dna_bulge if dna_bulge is None else dna_bulge,
                                 "the DNA bulge size (--dna-bulge)"),
        "rna_bulge": check_bulge(read.rna_bulge if rna_bulge is None else rna_bulge,
                                 "the RNA bulge size (--rna-bulge)"),
    }  # fmt: skip


def _bulge_offtargets(
    ctx: typer.Context,
    genome: str,
    read: dict,
    *,
    max_mismatches: int,
    fmt: str,
    out: str | None,
    max_listed: int | None,
    full_header: bool,
    quiet: bool,
) -> None:
    """``offtargets`` with bulges: Cas-OFFinder 3's output, or TSV/JSON with the bulge fields."""
    from ..guides.bulges import (
        bulges_document,
        bulges_json,
        search_bulges,
        to_bulges_tsv,
        to_casoffinder3,
    )
    from ..guides.formats import check_output_path, write_output
    from ..guides.request import ScoreRequest

    if fmt not in ("casoffinder", "tsv", "json"):
        raise InputError(f"-f {fmt} does not list bulges: give casoffinder, tsv or json")
    lines = read["lines"]
    request = ScoreRequest(  # checks the guides, their limits and the listing limit
        [line.sequence for line in lines],
        nuclease=read["nuclease"],
        max_mismatches=max_mismatches,
        guide_mismatches=[line.max_mismatches for line in lines],
        max_offtargets_listed=max_listed,
    )
    check_output_path(out)
    settings = ctx.obj
    g = open_genome(_store(ctx), genome)
    with task_progress(f"bulge search in {g.name} (index queries)", quiet) as progress:
        search = search_bulges(
            g, request.guides, request.nuclease, list(request.limits), read["dna_bulge"],
            read["rna_bulge"], ids=[line.guide_id for line in lines],
            executor=settings.executor, retries=settings.retries, progress=progress,
        )  # fmt: skip
    limit = request.max_offtargets_listed
    if fmt == "casoffinder":
        labels = g.fasta_headers() if full_header else None
        text = to_casoffinder3(search, max_listed=limit, chrom_labels=labels)
    elif fmt == "tsv":
        text = to_bulges_tsv(search, max_listed=limit)
    else:
        text = bulges_json(bulges_document(search, max_listed=limit))
    write_output(text, out)
    cut = [(seq, search.count(i)) for i, seq in enumerate(search.guides)]
    cut = [(seq, n) for seq, n in cut if limit is not None and n > limit]
    if cut:
        _note(
            f"listing cut to {limit:,} alignments per guide (--max-offtargets-listed) for "
            f"{len(cut)} guide(s); counts are exact: "
            + ", ".join(f"{g} {n:,}" for g, n in cut[:10])
            + (", …" if len(cut) > 10 else "")
        )


_LIBRARY_HELP = (
    "Design a genome-wide library: the best N guides of every gene (or of the genes of a list), "
    "each with its full genome-wide off-target search, ranked as `guides design` ranks them.\n\n"
    "Genes go in batches; each finished batch is saved in a work directory (OUT.parts), so a run "
    "that was stopped resumes where it was when the same command is run again.\n\n"
    "Ranking: " + RANKING_RULE
)


@app.command("library", help=_LIBRARY_HELP)
def library(
    ctx: typer.Context,
    genome: str = typer.Option(..., "--genome", "-g", help="Genome name or alias.", metavar="NAME"),
    per_gene: int = typer.Option(4, "--per-gene", "-n", help="Guides kept per gene (≥ 1)."),
    genes: str = typer.Option(
        None,
        "--genes",
        metavar="FILE",
        help="Only these genes: one symbol or ID per line (- for stdin); default every gene.",
    ),
    within: str = typer.Option(
        "auto",
        "--within",
        help="Target part: auto (CDS of coding genes, exons of the others), cds, exons or gene.",
        metavar="[auto|cds|exons|gene]",
    ),
    nuclease: str = typer.Option(None, "--nuclease", help=_NUCLEASE_HELP, metavar="NAME"),
    pam: str = typer.Option(None, "--pam", help="A custom PAM in IUPAC letters, e.g. NNGRRT."),
    guide_length: int = typer.Option(
        None, "--guide-length", help="Custom protospacer length (default 20 with --pam)."
    ),
    pam_side: str = typer.Option(
        None,
        "--pam-side",
        help="Custom PAM side: 3 (like Cas9, default) or 5 (like Cas12a).",
        metavar="[3|5]",
    ),
    offtarget_pams: str = typer.Option(
        None,
        "--offtarget-pams",
        help="Extra PAMs searched for off-targets, e.g. NAG,NGA.",
        metavar="PAMS",
    ),
    max_mismatches: int = typer.Option(
        4, "--max-mismatches", "-m", help="Off-targets with up to this many mismatches (0-5)."
    ),
    tracr: str = typer.Option(
        "Hsu2013",
        "--tracr",
        help="tracrRNA for Rule Set 3: Hsu2013 (default) or Chen2013.",
        metavar="NAME",
    ),
    fmt: str = typer.Option("tsv", "--format", "-f", help="tsv or json.", metavar="[tsv|json]"),
    out: str = typer.Option(
        None, "--out", "-o", help="Write to this file (default stdout).", metavar="FILE"
    ),
    work_dir: str = typer.Option(
        None,
        "--work-dir",
        help="Keep finished batches here (default OUT.parts beside --out; without --out, a "
        "temporary folder: no resume).",
        metavar="DIR",
    ),
    keep_parts: bool = typer.Option(
        False, "--keep-parts", help="Keep the work directory's parts once the output is written."
    ),
    max_offtargets_listed: int = typer.Option(
        None, "--max-offtargets-listed", help="JSON: list at most N off-targets per guide."
    ),
    max_target_bp: int = typer.Option(
        MAX_TARGET_BP,
        "--max-target-bp",
        help="Skip genes whose target part is longer (0: no limit).",
    ),
    batch_genes: int = typer.Option(100, "--batch-genes", help="Most genes in one batch."),
    batch_bp: int = typer.Option(
        150_000, "--batch-bp", help="About how many target bases one batch holds."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    import contextlib
    import tempfile

    from ..guides.formats import check_output_path
    from ..guides.library import (
        LibraryRequest,
        build_library,
        default_work_dir,
        parse_gene_list,
        plan_library,
        remove_parts,
        write_library,
    )

    fmt = _choice(fmt, ("tsv", "json"), "--format")
    names = None
    if genes is not None:
        source = "stdin" if genes == "-" else genes
        names = parse_gene_list(_read_text(genes, "gene names"), f"the gene list {source}")
    request = LibraryRequest(
        per_gene=per_gene,
        genes=names,
        within=within,
        nuclease=nuclease,
        pam=pam,
        guide_length=guide_length,
        pam_side=pam_side,
        offtarget_pams=offtarget_pams,
        max_mismatches=max_mismatches,
        max_target_bp=max_target_bp,
        list_offtargets=fmt == "json",
        max_offtargets_listed=max_offtargets_listed,
        tracr=tracr,
        batch_genes=batch_genes,
        batch_bp=batch_bp,
    )
    check_output_path(out)
    settings = ctx.obj
    g = open_genome(_store(ctx), genome)
    plan = plan_library(g, request)
    _library_notes(plan)
    with contextlib.ExitStack() as stack:
        if work_dir is not None:
            folder = Path(work_dir)
        elif out is not None and out != "-":
            folder = default_work_dir(out)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="library-")))
        title = f"library of {g.name}"
        try:
            with task_progress(title, quiet, unit="genes") as progress:
                run = build_library(
                    g,
                    plan,
                    folder,
                    executor=settings.executor,
                    retries=settings.retries,
                    progress=progress,
                )
        except BaseException:
            saved = len(list(folder.glob("part-*.json"))) if folder.is_dir() else 0
            if saved and (work_dir is not None or out not in (None, "-")):
                _note(
                    f"{saved} of {len(plan.batches)} batches are saved in {folder}: run the same "
                    "command again to resume"
                )
            raise
        write_library(run, out, fmt)
        if not keep_parts:
            remove_parts(run)
    if run.resumed and not quiet:
        _note(f"resumed: {run.resumed} of {len(plan.batches)} batches were already done")
    if run.short:
        shown = ", ".join(run.short[:10]) + (", …" if len(run.short) > 10 else "")
        _note(f"{len(run.short)} gene(s) have fewer than {per_gene} guides: {shown}")
    if not quiet:
        _note(
            f"library of {run.guides:,} {request.nuclease.name} guides for {plan.genes:,} genes "
            f"of {g.name} ({per_gene} per gene, off-targets up to {max_mismatches} mismatches)"
            + (f"; written to {out}" if out not in (None, "-") else "")
        )


def _read_text(source: str, what: str) -> str:
    """The text of a file named on the command line, or of stdin for ``-``."""
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise InputError(f"cannot read {what} from {source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"cannot read {what} from {source}: it is a directory") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} from {source}: {exc.strerror or exc}") from None


def _library_notes(plan) -> None:
    """Genes of the list that are not designed, one note line each kind, before any work."""

    def names(items) -> str:
        items = list(items)
        return ", ".join(items[:10]) + (f" and {len(items) - 10} more" if len(items) > 10 else "")

    if plan.unknown:
        _note(f"{len(plan.unknown)} unknown gene name(s) left out: {names(plan.unknown)}")
    if plan.ambiguous:
        _note(
            f"{len(plan.ambiguous)} ambiguous gene name(s) left out (each names several "
            f"genes; give an ID): {names(plan.ambiguous)}"
        )
    if plan.skipped:
        reasons: dict[str, int] = {}
        for s in plan.skipped:
            reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
        why = "; ".join(f"{n} {reason}" for reason, n in reasons.items())
        _note(
            f"{len(plan.skipped)} gene(s) skipped ({why}): "
            + names(s["gene"] for s in plan.skipped)
        )
