"""``sandgrain serve`` and ``sandgrain demo``: the web app and the demo data of every domain."""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Sequence
from pathlib import Path

import typer

from .. import registry
from ..config import Settings
from ..errors import InputError
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
            None,
            "--data",
            help="The shared data folder (env SANDGRAIN_TEST_DATA; ../shared/data).",
            metavar="DIR",
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
    workers: int = typer.Option(
        1,
        "--workers",
        "-w",
        help="Server processes sharing the port (about one per core). They share the store and "
        "the metadata database (SANDGRAIN_DATABASE: jobs, Beacon budgets and audit log), so "
        "budgets, the audit chain and jobs stay consistent; use PostgreSQL to spread servers "
        "over several machines.",
    ),
) -> None:
    """Start the web app and REST API.

    With --workers N, a supervisor starts N server processes on one listening
    socket (the kernel hands each connection to one of them), restarts one that
    dies, and stops them all on SIGTERM or Ctrl-C; if the supervisor itself is
    killed, they end with it.
    """
    import uvicorn

    if workers < 1:
        raise InputError(f"--workers must be 1 or more, not {workers}")
    settings = ctx.obj
    plural = "es" if workers > 1 else ""
    typer.echo(
        f"sandgrain: serving store {settings.store} on http://{host}:{port} "
        f"({workers} process{plural})",
        err=True,
    )
    if workers == 1:
        uvicorn.run(worker_app(settings, bind=False), host=host, port=port, log_level="info")
        return
    from uvicorn.supervisors import Multiprocess

    # The workers are spawned afresh: each builds its app from these (picklable) settings.
    config = uvicorn.Config(
        functools.partial(worker_app, settings),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )
    sockets = [config.bind_socket()]
    if "target" in inspect.signature(Multiprocess).parameters:  # older uvicorn
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=sockets).run()
    else:
        Multiprocess(config, sockets=sockets).run()


def worker_app(settings: Settings, *, bind: bool = True):
    """The app of one server process; with ``bind``, a worker of ``serve --workers`` that ends
    with its supervisor, even one killed by SIGKILL (:mod:`sandgrain.fanout.lifeline`).

    Nothing a process holds decides an answer alone: query budgets, risk budgets, answered
    groups, the audit chain and jobs live in the metadata database, caches are read-only copies
    of the store.
    """
    from ..fanout import lifeline
    from ..fanout.executors import preload_in_workers
    from ..web.app import create_app

    if bind:
        lifeline.bind_worker(os.getppid())
    # the worker pools of jobs start with every domain's task modules imported, once
    preload_in_workers(
        ref.partition(":")[0] for domain in registry.domains() for ref in domain.tasks
    )
    return create_app(settings)


def run_demo(settings, data: str | None, quiet: bool, domains: Sequence[registry.Domain]) -> None:
    """Each domain's demo step, in registration order, on the data folder (if it exists); the
    last line says how long each took."""
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
    seconds: list[str] = []
    started = time.perf_counter()
    for domain in domains:
        if domain.demo:
            t0 = time.perf_counter()
            registry.resolve(domain.demo)(demo_ctx)
            demo_ctx.done.append(domain.name)
            seconds.append(f"{domain.name} {time.perf_counter() - t0:.1f} s")
    if seconds:
        total = time.perf_counter() - started
        typer.echo(f"sandgrain: demo ready in {total:.1f} s ({', '.join(seconds)})", err=True)
