"""``sandgrain genome index``: the guides domain's command in the genome group.

The off-target site index belongs to the guides domain; it registers this command under
``sandgrain genome`` (``Domain.cli_extensions``) because users index a genome right after
importing it. The genome CLI itself never builds guide indexes.
"""

from __future__ import annotations

import typer

from ..errors import InputError
from .progress import task_progress


def index_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Genome name or alias."),
    nuclease: str = typer.Option(
        "SpCas9",
        "--nuclease",
        help="SpCas9, SaCas9, AsCas12a, LbCas12a (or --pam for your own).",
        metavar="NAME",
    ),
    offtarget_pams: str = typer.Option(
        None,
        "--offtarget-pams",
        help="PAMs indexed besides the nuclease's own, e.g. NAG,NGA (SpCas9's weaker PAMs).",
        metavar="PAMS",
    ),
    pam: str = typer.Option(None, "--pam", help="A custom PAM in IUPAC letters, e.g. NNGRRT."),
    guide_length: int = typer.Option(None, "--guide-length", help="Custom protospacer length."),
    pam_side: str = typer.Option(
        "3", "--pam-side", help="Custom PAM side: 3 (Cas9) or 5 (Cas12a).", metavar="[3|5]"
    ),
    partition_bp: int = typer.Option(
        256_000_000,
        "--partition-bp",
        min=1000,
        help="Most genome bases per index partition (task); fewer when one task would not fit "
        "SANDGRAIN_TASK_MEMORY_MB / SANDGRAIN_TASK_DISK_MB.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build the off-target site index of a genome for a nuclease (once per genome and PAM)."""
    # here, not at the top: `sandgrain genome --help` lists this command without numba
    from ..fanout import TaskBudget
    from ..genome.store import open_genome
    from ..guides.nucleases import custom_nuclease, get_nuclease
    from ..guides.siteindex import SiteFamily, build_index
    from ..storage import Store

    settings = ctx.obj
    genome = open_genome(Store.from_settings(settings), name)
    if pam or guide_length:
        if not (pam and guide_length):
            raise InputError("a custom nuclease needs both --pam and --guide-length")
        nuc = custom_nuclease(pam, guide_length, pam_side)
    else:
        nuc = get_nuclease(nuclease)
    extra = [p.strip() for p in offtarget_pams.split(",") if p.strip()] if offtarget_pams else None
    family = SiteFamily.of(nuc, extra)
    title = f"index {genome.name} for {','.join(family.pams)}"
    with task_progress(title, quiet, unit="bases") as progress:
        ds = build_index(
            genome,
            family,
            executor=settings.executor,
            partition_bp=partition_bp,
            retries=settings.retries,
            progress=progress,
            budget=TaskBudget.from_settings(settings),
        )
    size = ds.manifest["total_size"]
    typer.echo(
        f"indexed {genome.name}: {ds.meta['sites']:,} sites for {','.join(family.pams)} "
        f"({len(ds.meta['partitions'])} partitions, {size / 1e6:,.1f} MB)",
        err=True,
    )
    plan = ds.meta["plan"]
    typer.echo(
        f"plan: {plan['tasks']} task{'s' if plan['tasks'] != 1 else ''} of at most "
        f"{plan['partition_bp']:,} bases; a search task "
        f"reads at most {plan['task_bytes'] / 1e6:,.1f} MB",
        err=True,
    )
