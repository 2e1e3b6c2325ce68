"""The ``sandgrain`` command line.

Errors a user can fix are printed as one line on stderr with a non-zero exit status; a traceback
means a bug in sandgrain.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

try:  # typer ≥ 0.24 carries its own copy of click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as click_exc

from .. import registry
from ..config import Settings
from ..errors import SandgrainError
from . import serve


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
    return root


app = build_app()


def fail(message: str, code: int = 1) -> int:
    """One line on stderr, whatever the message holds (a library's error may span lines)."""
    line = " ".join(str(message).split())
    if len(line) > 600:
        line = line[:597] + "..."
    sys.stderr.write(f"sandgrain: error: {line}\n")
    return code


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn errors into one line on stderr."""
    command = typer.main.get_command(app)
    try:
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
    except (typer.Abort, KeyboardInterrupt):
        rc = fail("interrupted", 130)
    except BrokenPipeError:
        rc = 0
    except OSError as exc:  # the system refused something: a path, a socket, the disk
        rc = fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    sys.exit(rc if isinstance(rc, int) else 0)
