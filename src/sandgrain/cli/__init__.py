"""The ``sandgrain`` command line.

Errors a user can fix are printed as one line on stderr with a non-zero exit status; a traceback
means a bug in sandgrain.

Start-up is kept short: a domain's command module is imported only when one of its commands
runs or its help is shown (``sandgrain --help`` lists each domain's summary from the registry,
importing none), and command modules import what their work needs (numpy, numba, pyarrow) in
the command itself. ``benchmarks/cli_startup.py`` measures it.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import typer
from typer.core import TyperGroup

try:  # typer ≥ 0.24 carries its own copy of click
    from typer._click import exceptions as click_exc
    from typer._click import globals as click_globals
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exc
    from click import globals as click_globals

from .. import registry
from ..config import Settings
from ..errors import SandgrainError
from . import coercion, metavars, progress, serve
from .store import app as store_app

coercion.install()  # no pydantic for options left out or given as plain strings
metavars.install()  # help says what to give: --genome NAME, flags without a value


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"sandgrain {__version__}")
        raise typer.Exit()


def _root(
    ctx: typer.Context,
    home: str = typer.Option(None, "--home", help="Data home (env SANDGRAIN_HOME).", metavar="DIR"),
    store: str = typer.Option(
        None,
        "--store",
        help="Storage URL: a directory or s3://bucket/prefix (env SANDGRAIN_STORE).",
        metavar="URL",
    ),
    s3_endpoint: str = typer.Option(
        None,
        "--s3-endpoint",
        help="S3-compatible endpoint URL (env SANDGRAIN_S3_ENDPOINT).",
        metavar="URL",
    ),
    executor: str = typer.Option(
        None,
        "--executor",
        help="Where fan-out tasks run: local, local:N, serial, dask://host:port, dask-local, "
        "lithops, lithops:localhost (env SANDGRAIN_EXECUTOR).",
        metavar="SPEC",
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


class _Pending(TyperGroup):
    """A domain's command group as ``sandgrain --help`` lists it, its name and summary, before
    the domain's command module is imported."""


class _Root(TyperGroup):
    """The ``sandgrain`` group: a domain's group is built (its command module imported) the
    first time it is looked up for anything but the listing in ``sandgrain --help``."""

    #: domain name → a function building its group; :func:`build_app` sets it on a subclass
    loaders: ClassVar[Mapping[str, Callable[[], Any]]] = {}
    _listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, _Pending) and not self._listing:
            command = self.commands[cmd_name] = self.loaders[cmd_name]()
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the listing needs each group's name and summary only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _domain_group(domain: registry.Domain, domains: Sequence[registry.Domain]) -> Any:
    """The click group of ``sandgrain <domain>``: the domain's sub-app with the commands
    domains add to it (``Domain.cli_extensions``)."""
    sub = registry.resolve(domain.cli)
    known = {c.name for c in sub.registered_commands}
    for other in domains:
        for group, name, reference in other.cli_extensions:
            if group == domain.name and name not in known:  # a sub-app is one object: add once
                sub.command(name)(registry.resolve(reference))
                known.add(name)
    holder = typer.Typer()
    holder.add_typer(sub, name=domain.name, help=domain.summary)
    return typer.main.get_group(holder).commands[domain.name]


def build_app(domains: Sequence[registry.Domain] | None = None) -> typer.Typer:
    """The ``sandgrain`` command: global options, each registered domain's sub-app as
    ``sandgrain <domain>``, the commands domains add to each other's groups (see
    :mod:`sandgrain.registry`), then ``serve`` and ``demo``.

    A domain's sub-app is imported when the group is first used, not here (see
    :class:`_Root`)."""
    domains = registry.domains() if domains is None else domains
    loaders: dict[str, Callable[[], Any]] = {}
    root = typer.Typer(
        cls=type("SandgrainGroup", (_Root,), {"loaders": loaders, "__module__": __name__}),
        name="sandgrain",
        help="sandgrain — a search engine for genomes.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_root)
    for domain in domains:
        if domain.cli:
            loaders[domain.name] = functools.partial(_domain_group, domain, domains)
            root.add_typer(typer.Typer(cls=_Pending), name=domain.name, help=domain.summary)
    for domain in domains:
        for group, _, _ in domain.cli_extensions:
            if group not in loaders:
                raise TypeError(f"domain {domain.name} extends {group!r}, which has no CLI")
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
