"""``sandgrain guides …``: design guides, score given guides, list off-target sites.

Every command checks its options, its guides and the output path before searching, and writes
its output only once everything succeeded (``--out`` atomically), so a failed run leaves no file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import InputError
from ..genome.store import open_genome
from ..guides.candidates import MAX_TARGET_BP
from ..guides.design import design_guides, score_search, search_guides
from ..guides.formats import (
    check_output_path,
    parse_guides,
    to_bed,
    to_casoffinder,
    to_json,
    to_offtargets_tsv,
    to_tsv,
    write_output,
)
from ..guides.request import DesignRequest, ScoreRequest, resolve_nuclease
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


@app.command("design")
def design(
    ctx: typer.Context,
    genome: str = typer.Option(..., "--genome", "-g", help="Genome name or alias."),
    gene: str = typer.Option(None, "--gene", help="Target gene: symbol, alias or ID."),
    region: str = typer.Option(
        None, "--region", help="Target region chrom:start-end (1-based, inclusive)."
    ),
    sequence: str = typer.Option(None, "--sequence", help="Target DNA sequence (ACGT…)."),
    fasta: str = typer.Option(None, "--fasta", help="Target sequence(s) in a FASTA file."),
    nuclease: str = typer.Option(None, "--nuclease", help=_NUCLEASE_HELP),
    pam: str = typer.Option(None, "--pam", help="A custom PAM in IUPAC letters, e.g. NNGRRT."),
    guide_length: int = typer.Option(
        None, "--guide-length", help="Custom protospacer length (default 20 with --pam)."
    ),
    pam_side: str = typer.Option(
        None, "--pam-side", help="Custom PAM side: 3 (like Cas9, default) or 5 (like Cas12a)."
    ),
    offtarget_pams: str = typer.Option(
        None,
        "--offtarget-pams",
        help="Extra PAMs searched for off-targets, e.g. NAG,NGA (the index must hold them).",
    ),
    within: str = typer.Option("exons", "--within", help="For --gene: exons, cds or gene."),
    max_mismatches: int = typer.Option(
        4, "--max-mismatches", "-m", help="Off-targets with up to this many mismatches (0-5)."
    ),
    fmt: str = typer.Option("tsv", "--format", "-f", help="tsv, json or bed."),
    out: str = typer.Option(None, "--out", "-o", help="Write to this file (default stdout)."),
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
) -> None:
    """Design guides for a gene, region or sequence; rank them by genome-wide specificity."""
    fmt = _choice(fmt, ("tsv", "json", "bed"), "--format")
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
    )
    check_output_path(out)
    settings = ctx.obj
    g = open_genome(_store(ctx), genome)
    with task_progress(f"off-target search in {g.name}", quiet, unit="sites") as progress:
        doc = design_guides(
            g, request, executor=settings.executor, retries=settings.retries, progress=progress
        )
    text = {"tsv": to_tsv, "json": to_json, "bed": to_bed}[fmt](doc)
    write_output(text, out)
    if not quiet:
        target = doc["target"]
        _note(
            f"{len(doc['guides'])} {request.nuclease.name} guides for {target['type']} "
            f"{target['name']} in {g.name}, off-targets up to {doc['max_mismatches']} mismatches"
            + (f"; written to {out}" if out else "")
        )
    _truncation_notes(doc, max_offtargets_listed)


def _search(
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
    quiet: bool,
):
    """Shared by ``score`` and ``offtargets``: read the guides, search them once."""
    check_output_path(out)
    nuc = resolve_nuclease(
        nuclease,
        pam=pam,
        guide_length=guide_length,
        pam_side=pam_side,
        offtarget_pams=offtarget_pams,
    )
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
    settings = ctx.obj
    g = open_genome(_store(ctx), genome)
    with task_progress(f"off-target search in {g.name}", quiet, unit="sites") as progress:
        return search_guides(
            g, request, executor=settings.executor, retries=settings.retries, progress=progress
        )


_GUIDES_HELP = (
    "File of guides, one per line (protospacers without PAM; Cas-OFFinder input lines too), "
    "or - for stdin."
)


@app.command("score")
def score(
    ctx: typer.Context,
    guides: str = typer.Argument(..., help=_GUIDES_HELP),
    genome: str = typer.Option(..., "--genome", "-g", help="Genome name or alias."),
    nuclease: str = typer.Option(None, "--nuclease", help=_NUCLEASE_HELP),
    pam: str = typer.Option(None, "--pam", help="A custom PAM in IUPAC letters."),
    guide_length: int = typer.Option(None, "--guide-length", help="Custom protospacer length."),
    pam_side: str = typer.Option(None, "--pam-side", help="Custom PAM side: 3 or 5."),
    offtarget_pams: str = typer.Option(
        None, "--offtarget-pams", help="Extra PAMs searched for off-targets, e.g. NAG,NGA."
    ),
    max_mismatches: int = typer.Option(
        4, "--max-mismatches", "-m", help="Sites with up to this many mismatches (0-5)."
    ),
    fmt: str = typer.Option("tsv", "--format", "-f", help="tsv or json."),
    out: str = typer.Option(None, "--out", "-o", help="Write to this file (default stdout)."),
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
    of each guide taken as its on-target)."""
    fmt = _choice(fmt, ("tsv", "json"), "--format")
    search = _search(
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
        quiet=quiet,
    )
    doc = score_search(search)
    write_output(to_tsv(doc) if fmt == "tsv" else to_json(doc), out)
    if fmt == "json":
        _truncation_notes(doc, max_offtargets_listed)


@app.command("offtargets")
def offtargets(
    ctx: typer.Context,
    guides: str = typer.Argument(..., help=_GUIDES_HELP),
    genome: str = typer.Option(..., "--genome", "-g", help="Genome name or alias."),
    pam: str = typer.Option(None, "--pam", help="PAM in IUPAC letters, e.g. NGG (as SpCas9)."),
    guide_length: int = typer.Option(
        None, "--guide-length", help="Protospacer length (default 20 with --pam)."
    ),
    pam_side: str = typer.Option(None, "--pam-side", help="PAM side: 3 (default) or 5."),
    nuclease: str = typer.Option(None, "--nuclease", help="A shipped nuclease instead of --pam."),
    offtarget_pams: str = typer.Option(
        None, "--offtarget-pams", help="Extra PAMs searched, e.g. NAG,NGA."
    ),
    max_mismatches: int = typer.Option(
        4,
        "--max-mismatches",
        "-m",
        help="Sites with up to this many mismatches (0-5); a guide line's own number wins.",
    ),
    fmt: str = typer.Option("casoffinder", "--format", "-f", help="casoffinder, tsv or json."),
    out: str = typer.Option(None, "--out", "-o", help="Write to this file (default stdout)."),
    max_offtargets_listed: int = typer.Option(
        None, "--max-offtargets-listed", help="List at most N sites per guide (fewest mismatches)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Every site of each guide in the genome, its own included; a drop-in for Cas-OFFinder 2.4."""
    fmt = _choice(fmt, ("casoffinder", "tsv", "json"), "--format")
    search = _search(
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
        quiet=quiet,
    )
    limit = search.request.max_offtargets_listed
    if fmt == "casoffinder":
        # objects only for the sites printed: the listing limit is applied on the columns
        listed = [search.sites(i, limit) for i in range(len(search.guides))]
        text = to_casoffinder(listed, search.guides, search.nuclease)
        write_output(text, out)
        cut = [(g, search.count(i)) for i, g in enumerate(search.guides)]
        cut = [(g, n) for g, n in cut if limit is not None and n > limit]
        if cut:
            _note(
                f"listing cut to {limit:,} sites per guide (--max-offtargets-listed) for "
                f"{len(cut)} guide(s); counts are exact: "
                + ", ".join(f"{g} {n:,}" for g, n in cut[:10])
                + (", …" if len(cut) > 10 else "")
            )
        return
    doc = score_search(search, command="guides offtargets")
    write_output(to_offtargets_tsv(doc) if fmt == "tsv" else to_json(doc), out)
    _truncation_notes(doc, limit)
