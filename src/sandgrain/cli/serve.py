"""``sandgrain serve`` and ``sandgrain demo``: the web app and the demo data of every domain."""

from __future__ import annotations

import functools
from pathlib import Path

import typer

from .. import registry
from ..storage import Store
from .progress import byte_progress, task_progress


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Start the web app and REST API."""
    import uvicorn

    from ..web.app import create_app

    typer.echo(f"sandgrain: serving store {ctx.obj.store} on http://{host}:{port}", err=True)
    uvicorn.run(create_app(ctx.obj), host=host, port=port, log_level="info")


def demo(
    ctx: typer.Context,
    data: str = typer.Option(
        None, "--data", help="The shared data folder (env SANDGRAIN_TEST_DATA; ../shared/data)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Put every domain's demo data in the store (data already imported is kept).

    The demo genomes (yeast R64 with SGD genes, SARS-CoV-2) and their SpCas9 site indexes, the
    demo Beacon datasets (1000 Genomes slices, GRCh37 genes), and what other registered domains
    add; what was already imported from the same files (same SHA-256) is left as it is.
    """
    settings = ctx.obj
    folder = Path(data or settings.data)
    if not folder.is_dir():
        typer.echo(f"sandgrain: no demo data at {folder}; starting with an empty store", err=True)
        return
    demo_ctx = registry.DemoContext(
        store=Store.from_settings(settings),
        data=folder,
        settings=settings,
        progress=functools.partial(task_progress, quiet=quiet),
        byte_progress=functools.partial(byte_progress, quiet),
        echo=lambda line: typer.echo(line, err=True),
    )
    for domain in registry.domains():
        if domain.demo:
            registry.resolve(domain.demo)(demo_ctx)
            demo_ctx.done.append(domain.name)
