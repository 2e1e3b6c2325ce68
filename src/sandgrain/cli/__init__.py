"""The ``sandgrain`` command line.

Errors a user can fix are printed as one line on stderr with a non-zero exit status; a traceback
means a bug in sandgrain.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

import typer

try:  # typer ≥ 0.24 carries its own copy of click
    from typer._click import exceptions as click_exc
    from typer._click import globals as click_globals
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exc
    from click import globals as click_globals

from .. import registry
from ..config import Settings
from ..errors import SandgrainError
from . import progress, serve
from .store import app as store_app


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"sandgrain {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    home: str = typer.Option(None, "--home", help="Data home (env SANDGRAIN_HOME)."),
    store: str = typer.Option(
        None,
        "--store",
        help="Storage URL: a directory or s3://bucket/prefix (env SANDGRAIN_STORE).",
    ),
    s3_endpoint: str = typer.Option(
        None, "--s3-endpoint", help="S3-compatible endpoint URL (env SANDGRAIN_S3_ENDPOINT)."
    ),
    executor: str = typer.Option(
        None,
        "--executor",
        help="Where fan-out tasks run: local, local:N, serial, dask://host:port, dask-local, "
        "lithops, lithops:localhost (env SANDGRAIN_EXECUTOR).",
    ),
    retries: int = typer.Option(
        None, "--retries", help="Retries of a failed task (env SANDGRAIN_RETRIES)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    progress.show_warnings()  # a retried task, say: one "sandgrain: warning: ..." line each
    ctx.obj = Settings.from_env(
        home=home, store_url=store, s3_endpoint=s3_endpoint, executor=executor, retries=retries
    )


def build_app(domains: Sequence[registry.Domain] | None = None) -> typer.Typer:
    """The ``sandgrain`` command: global options, each registered domain's sub-app as
    ``sandgrain <domain>``, the commands domains add to each other's groups (see
    :mod:`sandgrain.registry`), then ``serve`` and ``demo``."""
    domains = registry.domains() if domains is None else domains
    root = typer.Typer(
        name="sandgrain",
        help="sandgrain — a search engine for genomes.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_root)
    groups: dict[str, typer.Typer] = {}
    for domain in domains:
        if domain.cli:
            groups[domain.name] = registry.resolve(domain.cli)
            root.add_typer(groups[domain.name], name=domain.name, help=domain.summary)
    for domain in domains:
        for group, name, reference in domain.cli_extensions:
            if group not in groups:
                raise TypeError(f"domain {domain.name} extends {group!r}, which has no CLI")
            known = {c.name for c in groups[group].registered_commands}
            if name not in known:  # a domain's sub-app is one object: add a command once
                groups[group].command(name)(registry.resolve(reference))
    serve.register(root, domains)
    root.add_typer(store_app, name="store", help=store_app.info.help)
    return root


app = build_app()


def fail(message: str, code: int = 1) -> int:
    """One line on stderr, whatever the message holds (a library's error may span lines)."""
    line = " ".join(str(message).split())
    if len(line) > 600:
        line = line[:597] + "..."
    sys.stderr.write(f"sandgrain: error: {line}\n")
    return code


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[tuple[int, str]]]:
    """SIGINT and SIGTERM both raise :class:`KeyboardInterrupt` in the main thread, so a
    SIGTERM (Slurm's ``scancel``, Kubernetes, systemd) unwinds like Ctrl-C: fan-out pools are
    closed (their workers killed), partial dataset versions and scratch folders removed. Yields
    the list where the first signal and the command it stopped are recorded."""
    stops: list[tuple[int, str]] = []
    if threading.current_thread() is not threading.main_thread():
        yield stops  # signal handlers can only be set there
        return

    def stop(signum: int, frame: object) -> None:
        if not stops:
            ctx = click_globals.get_current_context(silent=True)
            stops.append((signum, ctx.command_path if ctx else "sandgrain"))
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stops
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def stopped(signum: int, command_path: str) -> int:
    """One line on stderr saying which command a signal stopped, then end by that signal once
    the cleanup is done, as a process without a handler would: shells report the exit status
    128 + the signal number (130 for SIGINT, 143 for SIGTERM), a shell script stops on Ctrl-C,
    and systemd counts a stop by SIGTERM as clean. Returns 128 + the signal number where the
    signal cannot end the process."""
    command = command_path.partition(" ")[2] or command_path
    name = signal.Signals(signum).name
    how = "interrupted" if signum == signal.SIGINT else f"terminated ({name})"
    sys.stderr.write(f"sandgrain: {how}: `{command}` stopped; nothing was published\n")
    sys.stderr.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)
    return 128 + signum


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn errors into one line on stderr."""
    with _stop_signals() as stops:
        rc = _run(argv)
    if stops:
        rc = stopped(*stops[0])
    sys.exit(rc if isinstance(rc, int) else 0)


def _run(argv: list[str] | None) -> int | None:
    command = typer.main.get_command(app)
    try:
        # typer turns a KeyboardInterrupt in a command into the return value 130
        rc = command.main(args=argv, prog_name="sandgrain", standalone_mode=False)
    except SandgrainError as exc:
        rc = fail(str(exc), exc.exit_code)
    except click_exc.NoArgsIsHelpError as exc:
        text = exc.ctx.get_help() if exc.ctx else ""  # typer's rich help prints itself
        if text:
            sys.stdout.write(text + "\n")
        rc = 2
    except click_exc.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        rc = fail(exc.format_message().replace("\n", " ") + hint, 2)
    except click_exc.ClickException as exc:
        rc = fail(exc.format_message().replace("\n", " "), exc.exit_code)
    except typer.Abort:
        rc = fail("interrupted", 130)
    except KeyboardInterrupt:  # outside a command (while parsing); main() prints the line
        rc = 130
    except BrokenPipeError:
        rc = 0
    except OSError as exc:  # the system refused something: a path, a socket, the disk
        rc = fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    return rc
