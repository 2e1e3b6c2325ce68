"""``sandgrain beacon dev-issuer …``: a development OIDC and visa issuer on loopback, to try the
Beacon's registered and controlled tiers (:mod:`sandgrain.beacon.dev_issuer`). Not for
production."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from ..beacon import dev_issuer as dev

app = typer.Typer(
    help="A development OIDC and visa issuer on loopback, to try the registered and controlled "
    "tiers. Not for production.\n\nIt signs access tokens carrying GA4GH passports, as your "
    "institution's issuer will, so the Beacon's tiers can be tried before it is wired. "
    + dev.WARNING,
    no_args_is_help=True,
)

_DIR = typer.Option(
    ...,
    "--dir",
    help="The issuer's folder (its key, issuer.json, beacon-config.json).",
    metavar="DIR",
    file_okay=False,
)


@app.command("init")
def init_cmd(
    directory: Path = _DIR,
    host: str = typer.Option(
        dev.DEFAULT_HOST, "--host", help="Loopback address it will listen on.", metavar="ADDRESS"
    ),
    port: int = typer.Option(dev.DEFAULT_PORT, "--port", help="Port it will listen on."),
    audience: str = typer.Option(
        dev.DEFAULT_AUDIENCE, "--audience", help="The aud of its tokens.", metavar="TEXT"
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an issuer already in the folder (a new key)."
    ),
) -> None:
    """Make a dev issuer: a signing key (mode 0600) and DIR/beacon-config.json for the Beacon.

    DIR/beacon-config.json is a SANDGRAIN_BEACON_CONFIG trusting the issuer for access tokens
    and visas, its keys at http://HOST:PORT/jwks. For development only, not for production.
    """
    issuer = dev.DevIssuer.init(directory, host=host, port=port, audience=audience, force=force)
    config = directory / dev.CONFIG_FILE
    typer.echo(
        f"dev issuer {issuer.issuer} in {directory} (for development only, not for production)"
    )
    typer.echo(f"signing key: {directory / dev.KEY_FILE} (mode 0600)")
    typer.echo(f"Beacon config: SANDGRAIN_BEACON_CONFIG={config.resolve()}")
    typer.echo(f"serve it with: sandgrain beacon dev-issuer serve --dir {directory}")


@app.command("serve")
def serve_cmd(
    directory: Path = _DIR,
    host: str = typer.Option(
        None,
        "--host",
        help="Loopback address (default: the one given to init); any other is refused.",
        metavar="ADDRESS",
    ),
    port: int = typer.Option(None, "--port", help="Port (default: the one given to init)."),
) -> None:
    """Serve the issuer's public key (/jwks) on loopback until stopped (Ctrl-C).

    Also /.well-known/openid-configuration. A non-loopback --host is refused. For development
    only, not for production.
    """
    server = dev.DevIssuer.load(directory).server(host, port)
    typer.echo(
        f"dev issuer: serving {server.url('/jwks')} until stopped (Ctrl-C). {dev.WARNING}",
        err=True,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        server.serve_forever()


@app.command("token")
def token_cmd(
    directory: Path = _DIR,
    user: str = typer.Option(..., "--user", help="Who the token is for (its sub).", metavar="ID"),
    datasets: list[str] = typer.Option(
        [],
        "--dataset",
        help="Grant this dataset: one ControlledAccessGrants visa whose value is "
        "the id (or a visa_values string of the Beacon config). Repeatable.",
        metavar="ID",
    ),
    expires: str = typer.Option(
        "1h",
        "--expires",
        help="Lifetime of the token and its visas: 90s, 15m, 1h, 2d.",
        metavar="DURATION",
    ),
) -> None:
    """Print an access token for --user, with a GA4GH passport granting each --dataset.

    Without --dataset it reaches registered datasets only. For development only, not for
    production.
    """
    issuer = dev.DevIssuer.load(directory)
    typer.echo(issuer.token(user, datasets, expires_in=dev.parse_duration(expires)))
