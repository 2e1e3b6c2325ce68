"""A small domain defined outside sandgrain's source, the way a new domain registers itself.

``tests/architecture/test_registry.py`` adds it to the registry and checks that the CLI, the web
app and the job manager pick it up without any interface file naming it.
"""

from __future__ import annotations

import typer
from fastapi import APIRouter, Request

from sandgrain.genome.store import open_genome
from sandgrain.registry import Domain, Page, Services
from sandgrain.storage import Store

cli = typer.Typer(help="Count GC in a genome (an example domain).", no_args_is_help=True)


def gc_fraction(genome, chrom: str) -> float:
    seq = genome.sequence(chrom, 0, genome.length(chrom)).upper()
    acgt = sum(seq.count(b) for b in "ACGT")
    return (seq.count("G") + seq.count("C")) / acgt if acgt else 0.0


@cli.command("gc")
def gc_cmd(ctx: typer.Context, genome: str, chrom: str) -> None:
    """Print the GC fraction of one sequence."""
    g = open_genome(Store.from_settings(ctx.obj), genome)
    typer.echo(f"{gc_fraction(g, chrom):.4f}")


router = APIRouter(prefix="/api/example")


@router.get("/gc/{genome}/{chrom}")
def gc_route(request: Request, genome: str, chrom: str) -> dict:
    return {"gc": gc_fraction(request.app.state.services.genome(genome), chrom)}


def gc_job(services: Services):
    def handle(ctx) -> str:
        key = f"results/example/{ctx.id}.txt"
        g = services.genome(ctx.params["genome"])
        services.store.write_bytes(key, f"{gc_fraction(g, ctx.params['chrom']):.4f}".encode())
        return key

    return handle


def demo(ctx) -> None:
    """Its demo step: the GC of the demo SARS-CoV-2 genome (imported by the genome domain's
    step, which runs first), stored as a small result."""
    assert "genome" in ctx.done
    g = open_genome(ctx.store, "sars-cov-2")
    gc = gc_fraction(g, "NC_045512.2")
    ctx.store.write_bytes("results/example/demo.txt", f"{gc:.4f}".encode())
    ctx.echo("example: GC of the demo SARS-CoV-2 genome stored")


class Counter:
    """Per-app state: closed when the app stops."""

    closed = 0

    def __init__(self, services: Services):
        self.services = services

    def close(self) -> None:
        Counter.closed += 1


DOMAIN = Domain(
    name="example",
    summary="Count GC in a genome (an example domain).",
    cli="example_domain:cli",
    routers=("example_domain:router",),
    job_kinds={"example.gc": "example_domain:gc_job"},
    dataset_kinds={"example-results": "nothing real"},
    demo="example_domain:demo",
    web_state="example_domain:Counter",
    # an API answer rather than a page: on the home page, off the navigation bar
    pages=(
        Page("/api/example/gc/sars-cov-2/NC_045512.2", "GC content", "A sequence's GC fraction.",
             "SARS-CoV-2's NC_045512.2.", nav=False),
    ),
)
