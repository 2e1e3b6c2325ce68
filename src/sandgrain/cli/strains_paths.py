"""``sandgrain strains nearest``: the closest known genomes to new samples (the Path Beacon).

Registered on the ``strains`` group through the domain's ``cli_extensions``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import InputError

__all__ = ["access_cmd", "nearest_cmd", "open_sources"]


def open_sources(settings, specs: list[str]) -> list:
    """The collections named on the command line: ``NAME`` (in the configured store) or
    ``STORE#NAME`` (a collection in another store: a folder, or an ``s3://`` bucket and prefix,
    read in place; the configured S3 endpoint applies to ``s3://`` stores)."""
    from ..storage import Store
    from ..strains.collection import Collection

    if not specs:
        raise InputError("give at least one --collection")
    stores: dict[str, Store] = {}
    out = []
    for spec in specs:
        url, sep, name = spec.rpartition("#")
        if not sep:
            url = settings.store
        if url not in stores:
            opts = {}
            if settings.s3_endpoint and url.startswith("s3://"):
                opts = {"client_kwargs": {"endpoint_url": settings.s3_endpoint}}
            stores[url] = (
                Store.from_settings(settings)
                if url == settings.store
                else Store(url, opts, create=False)
            )
        out.append(Collection.open(stores[url], name))
    return out


def nearest_cmd(
    ctx: typer.Context,
    collection: list[str] = typer.Option(
        ...,
        "--collection",
        "-c",
        help="A collection to search: NAME, or STORE#NAME for one in another store (a folder or "
        "s3://bucket/prefix, read in place). Repeat to search several.",
        metavar="[STORE#]NAME",
    ),
    fasta: Path = typer.Option(
        None, "--fasta", help="Query genomes (FASTA, plain or gzip).", metavar="FILE"
    ),
    mutations: str = typer.Option(
        None,
        "--mutations",
        help="A query given as mutations instead, e.g. C241T,A23403G,del:11288-11296 (it "
        "covers the whole genome).",
        metavar="MUTATIONS",
    ),
    k: int = typer.Option(10, "-k", help="Neighbours per query (1-1000).", metavar="N"),
    max_distance: int = typer.Option(
        None, "--max-distance", help="Only neighbours this close or closer.", metavar="D"
    ),
    metric: str = typer.Option(
        "covered",
        "--distance",
        help="covered: mutation events either genome lacks over positions both cover (missing "
        "data never counts); nextclade: Nextclade's placement distance over substitutions.",
        metavar="[covered|nextclade]",
    ),
    qc: str = typer.Option(
        "good,mediocre,bad",
        "--qc",
        help="Search only genomes of these QC statuses (comma-separated).",
        metavar="STATUSES",
    ),
    fmt: str = typer.Option(
        "json", "--format", help="json (one object per query) or tsv.", metavar="[json|tsv]"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """The k closest genomes to each query, exactly, over one or more collections.

    Each query is aligned to the collections' reference and its mutations called as `strains
    add` does. Distance: mutation events (substitutions, deletions, insertions) one genome has
    and the other lacks, over the positions both cover; ties are broken by covered length
    (more first), then strain id. JSON: {"query", "neighbours": [{"strain", "distance",
    "covered", "shared", "query_only", "strain_only", "date", "country", "collection"}],
    "ties_at_k", "searched", "provenance"}.
    """
    from ..fanout import TaskBudget
    from ..strains.nearest import nearest, nearest_provenance
    from ..strains.query import calls_from_fasta, calls_from_mutations
    from .progress import task_progress

    settings = ctx.obj
    if fmt not in ("json", "tsv"):
        raise InputError(f"--format is json or tsv, not {fmt!r}")
    if (fasta is None) == (mutations is None):
        raise InputError("give the query as --fasta FILE or as --mutations LIST (one of them)")
    colls = open_sources(settings, list(collection))
    if fasta is not None:
        queries = calls_from_fasta(colls[0], fasta)
    else:
        queries = [calls_from_mutations(mutations, colls[0].reference())]
    statuses = [s.strip() for s in qc.split(",") if s.strip()]
    budget = TaskBudget.from_settings(settings)
    if budget.seconds is None:
        budget = TaskBudget(seconds=DEFAULT_TASK_SECONDS, memory_bytes=budget.memory_bytes)
    stats: dict = {}
    with task_progress("nearest strains", quiet, unit="genomes") as progress:
        answers = nearest(
            colls[0].dataset.store,
            colls,
            queries,
            k=k,
            max_distance=max_distance,
            metric=metric,
            qc=statuses,
            executor=settings.executor,
            budget=budget,
            retries=settings.retries,
            progress=progress,
            stats=stats,
        )
    prov = nearest_provenance(
        colls,
        {"k": k, "max_distance": max_distance, "distance": metric, "qc": statuses,
         "query": str(fasta) if fasta else mutations, **stats},
    )  # fmt: skip
    write = sys.stdout.write
    if fmt == "json":
        for a in answers:
            write(json.dumps({**a, "provenance": prov}) + "\n")
        return
    cols = ("query", "rank", "strain", "distance", "covered", "collection", "date", "country")
    lists = ("shared", "query_only", "strain_only")
    write("\t".join((*cols, *lists)) + "\n")
    for a in answers:
        for rank, n in enumerate(a["neighbours"], 1):
            row = {**n, "query": a["query"], "rank": rank}
            write("\t".join([str(row[c]) for c in cols] + [",".join(n[f]) for f in lists]) + "\n")


#: A search task's time budget when ``SANDGRAIN_TASK_SECONDS`` is not set: past it, a task
#: hands the rest of its genomes to new tasks.
DEFAULT_TASK_SECONDS = 5.0


def access_cmd(
    ctx: typer.Context,
    collection: str = typer.Option(
        ..., "--collection", "-c", help="The collection's name.", metavar="COLLECTION"
    ),
    tier: str = typer.Option(
        None,
        "--tier",
        help="public (anyone), registered (signed-in callers; others see counts) or controlled "
        "(the named subjects or visa holders; others see counts). Without it: show the tier.",
        metavar="[public|registered|controlled]",
    ),
    subject: list[str] = typer.Option(
        None,
        "--subject",
        help="A subject (token 'sub') who sees a controlled collection.",
        metavar="SUB",
    ),
) -> None:
    """Show or set who sees a collection's genomes through the web API (the command line, which
    reads the store itself, always sees everything)."""
    from ..storage import Store
    from ..strains.access import access_of, set_access

    store = Store.from_settings(ctx.obj)
    access = (
        set_access(store, collection, tier, list(subject or ()))
        if tier is not None
        else access_of(store, collection)
    )
    sys.stdout.write(json.dumps({"collection": collection, "tier": access.tier,
                                 "subjects": list(access.subjects)}) + "\n")  # fmt: skip
