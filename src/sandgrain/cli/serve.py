"""``sandgrain serve`` and ``sandgrain demo``: the web app and the demo data of every domain."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import typer

from .. import registry
from ..storage import Store
from .progress import byte_progress, task_progress


def register(app: typer.Typer, domains: Sequence[registry.Domain]) -> None:
    """``serve`` and ``demo`` on the root app; ``demo`` runs the demo step of each of
    ``domains``."""
    app.command("serve")(serve)

    @app.command("demo")
    def demo(
        ctx: typer.Context,
        data: str = typer.Option(
            None, "--data", help="The shared data folder (env SANDGRAIN_TEST_DATA; ../shared/data)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Put every domain's demo data in the store (data already imported is kept).

        Genomes (yeast, SARS-CoV-2) with SpCas9 indexes, Beacon datasets, and each domain's own.
        """
        run_demo(ctx.obj, data, quiet, domains)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Start the web app and REST API."""
    import uvicorn

    from ..fanout.executors import preload_in_workers
    from ..web.app import create_app

    # the worker pools of jobs start with every domain's task modules imported, once
    preload_in_workers(
        ref.partition(":")[0] for domain in registry.domains() for ref in domain.tasks
    )
    typer.echo(f"sandgrain: serving store {ctx.obj.store} on http://{host}:{port}", err=True)
    uvicorn.run(create_app(ctx.obj), host=host, port=port, log_level="info")


def run_demo(settings, data: str | None, quiet: bool, domains: Sequence[registry.Domain]) -> None:
    """Each domain's demo step, in registration order, on the data folder (if it exists)."""
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
    for domain in domains:
        if domain.demo:
            registry.resolve(domain.demo)(demo_ctx)
            demo_ctx.done.append(domain.name)
