"""A development OIDC and GA4GH visa issuer on loopback (``sandgrain beacon dev-issuer``).

**Not for production.** It lets a data steward try the Beacon's ``registered`` and
``controlled`` tiers before wiring the institution's real issuer, as mock-oauth2-server or
Keycloak's dev mode do for other services: anyone who can run ``dev-issuer token`` on this
machine mints any identity and any dataset grant.

An issuer lives in a folder (:meth:`DevIssuer.init`):

- ``signing-key.pem``: an RSA private key (RS256), mode 0600;
- ``issuer.json``: its issuer id (``http://127.0.0.1:PORT``), audience, host, port and ``kid``;
- ``beacon-config.json``: a ``SANDGRAIN_BEACON_CONFIG`` trusting it both as a login issuer
  (``oidc_issuers``) and as a visa issuer (``visa_issuers``), with ``jwks_uri``
  ``http://127.0.0.1:PORT/jwks``.

:meth:`DevIssuer.server` serves the public key (``/jwks``) and an OpenID discovery document
(``/.well-known/openid-configuration``) on loopback only; :meth:`DevIssuer.token` signs an access
token carrying a GA4GH passport (``ga4gh_passport_v1``) of one ``ControlledAccessGrants`` visa per
dataset, the claims :mod:`sandgrain.beacon.tokens` verifies.

The signing pieces (:class:`SigningKey`, :func:`jwks`, :func:`access_token_claims`,
:func:`visa_claims`, :class:`LoopbackJsonServer`) are shared with the tests' identity provider,
:mod:`sandgrain.testing.auth`, which adds the deliberately wrong tokens.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sandgrain.errors import ConflictError, InputError, NotFoundError

from .policy import is_loopback
from .tokens import CONTROLLED_ACCESS_GRANTS

KEY_FILE = "signing-key.pem"
ISSUER_FILE = "issuer.json"
CONFIG_FILE = "beacon-config.json"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_AUDIENCE = "sandgrain-beacon"
#: Said by every command's help and by ``serve`` when it starts.
WARNING = (
    "For development only, not for production: anyone who can read its folder can sign any "
    "identity and any dataset grant."
)


# --------------------------------------------------------------------------------------------
# Keys, JWKS and claims (shared with sandgrain.testing.auth)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """A private key with its ``kid`` and JWS algorithm."""

    private_key: Any
    kid: str
    alg: str

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()

    def jwk(self) -> dict:
        """The public key as a JWK (with ``kid``, ``alg`` and ``use: sig``)."""
        if self.alg.startswith(("RS", "PS")):
            data = jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        else:
            data = jwt.algorithms.ECAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def rsa_key(kid: str | None = None, alg: str = "RS256") -> SigningKey:
    """A fresh 2048-bit RSA key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(private, kid or f"rsa-{uuid.uuid4().hex[:8]}", alg)


def ec_key(kid: str | None = None) -> SigningKey:
    """A fresh P-256 key for ES256."""
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(private, kid or f"ec-{uuid.uuid4().hex[:8]}", "ES256")


def jwks(*keys: SigningKey) -> dict:
    """A JWKS document publishing the public halves of ``keys``."""
    return {"keys": [k.jwk() for k in keys]}


def sign_jwt(
    claims: dict,
    key: SigningKey,
    *,
    alg: str | None = None,
    kid: str | None = None,
    headers: dict | None = None,
) -> str:
    """Sign ``claims`` as a JWS with ``key`` (its own ``alg`` and ``kid`` unless given)."""
    header = dict(headers or {})
    header.setdefault("kid", kid or key.kid)
    return jwt.encode(claims, key.private_key, algorithm=alg or key.alg, headers=header)


def access_token_claims(
    *,
    issuer: str,
    audience: str | list[str],
    subject: str | None = "user-1",
    expires_in: float | None = 300,
    not_before: float | None = None,
    issued_at: float | None = None,
    visas: list[str] | None = None,
    extra: dict | None = None,
) -> dict:
    """The claims of an OIDC access token: ``iss``, ``aud``, ``iat``, ``sub``, ``exp`` (what
    :func:`sandgrain.beacon.tokens.verify_access_token` requires), ``nbf`` when given, and
    ``visas`` as the ``ga4gh_passport_v1`` claim. ``expires_in`` negative: already expired;
    ``None``: no ``exp``; ``subject`` ``None``: no ``sub``."""
    now = time.time()
    claims: dict[str, Any] = {"iss": issuer, "aud": audience, "iat": int(issued_at or now)}
    if subject is not None:
        claims["sub"] = subject
    if expires_in is not None:
        claims["exp"] = int(now + expires_in)
    if not_before is not None:
        claims["nbf"] = int(not_before)
    if visas is not None:
        claims["ga4gh_passport_v1"] = visas
    claims.update(extra or {})
    return claims


def visa_claims(
    *,
    issuer: str,
    subject: str,
    value: str,
    visa_type: str = CONTROLLED_ACCESS_GRANTS,
    source: str = "https://dac.example.org",
    by: str | None = "dac",
    asserted: float | None = None,
    expires_in: float | None = 3600,
    conditions: list | None = None,
    extra_visa: dict | None = None,
) -> dict:
    """The claims of a GA4GH Passport v1.2 visa: ``iss``, ``sub``, ``iat``, ``jti``, ``exp`` and
    ``ga4gh_visa_v1`` with ``type``, ``asserted`` (default a day ago), ``value``, ``source`` and
    ``by``. A ``ControlledAccessGrants`` visa's ``value`` names the dataset it grants (the
    dataset id, unless the Beacon's ``visa_values`` maps the dataset to other strings)."""
    now = time.time()
    body: dict[str, Any] = {
        "type": visa_type,
        "asserted": int(asserted if asserted is not None else now - 86400),
        "value": value,
        "source": source,
    }
    if by is not None:
        body["by"] = by
    if conditions is not None:
        body["conditions"] = conditions
    body.update(extra_visa or {})
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "iat": int(now),
        "jti": uuid.uuid4().hex,
        "ga4gh_visa_v1": body,
    }
    if expires_in is not None:
        claims["exp"] = int(now + expires_in)
    return claims


# --------------------------------------------------------------------------------------------
# A loopback HTTP server of JSON documents
# --------------------------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up (timeouts) leave broken pipes behind


class _QuietServer6(_QuietServer):
    address_family = socket.AF_INET6


class LoopbackJsonServer:
    """A tiny HTTP server on a loopback address serving JSON documents at paths.

    ``host`` must be loopback (``127.0.0.1``, ``::1``, ``localhost``): anything else is refused
    with :class:`InputError`. ``port`` 0 lets the OS choose. ``set(path, doc)`` publishes (or
    replaces: key rotation) a document; ``hits[path]`` counts requests. Use as a context manager
    (serving on a thread), call :meth:`start` and :meth:`stop`, or :meth:`serve_forever`.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0) -> None:
        if not is_loopback(host):
            raise InputError(
                f"refusing to listen on {host!r}: this server is for loopback only "
                "(127.0.0.1, ::1 or localhost)"
            )
        self.docs: dict[str, Any] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                doc = server._document(self.path.split("?", 1)[0])
                if doc is None:
                    self.send_error(404)
                    return
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server_class = _QuietServer6 if ":" in host else _QuietServer  # ::1: IPv6
        try:
            self._httpd = server_class((host.strip("[]"), port), Handler)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        self._thread: threading.Thread | None = None

    def _document(self, path: str) -> Any:
        """The document at ``path`` (``None``: 404); counts the request."""
        with self._lock:
            self.hits[path] += 1
            return self.docs.get(path)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def set(self, path: str, doc: Any) -> str:
        """Serve ``doc`` (e.g. :func:`jwks`) at ``path``; return its URL."""
        with self._lock:
            self.docs[path] = doc
        return self.url(path)

    def start(self) -> LoopbackJsonServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until interrupted (Ctrl-C), then close the socket."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LoopbackJsonServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# The development issuer
# --------------------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``1h`` or ``2d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match or float(match[1]) <= 0:
        raise InputError(f"a duration is a number and s, m, h or d (1h, 15m), not {text!r}")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _issuer_id(host: str, port: int) -> str:
    return f"http://[{host.strip('[]')}]:{port}" if ":" in host else f"http://{host}:{port}"


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file only its owner can read and write (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class DevIssuer:
    """A development issuer kept in ``directory`` (see the module's docstring)."""

    directory: Path
    issuer: str
    audience: str
    host: str
    port: int
    key: SigningKey

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/jwks"

    @classmethod
    def init(
        cls,
        directory: str | os.PathLike[str],
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        audience: str = DEFAULT_AUDIENCE,
        force: bool = False,
    ) -> DevIssuer:
        """Make a new issuer in ``directory`` (created if missing): a signing key (0600),
        ``issuer.json`` and ``beacon-config.json``. An issuer already there is
        :class:`ConflictError` unless ``force``, which replaces its key (tokens signed before
        stop working)."""
        if not is_loopback(host):
            raise InputError(
                f"the dev issuer listens on loopback only (127.0.0.1, ::1, localhost), not {host!r}"
            )
        if not 1 <= port <= 65535:
            raise InputError(f"--port must be 1 to 65535, not {port}")
        if not audience:
            raise InputError("the audience must not be empty")
        directory = Path(directory)
        key_path = directory / KEY_FILE
        if key_path.exists() or (directory / ISSUER_FILE).exists():
            if not force:
                raise ConflictError(
                    f"{directory} already holds a dev issuer (--force replaces its key)"
                )
            key_path.unlink(missing_ok=True)
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa_key(f"dev-{uuid.uuid4().hex[:12]}")
        _write_private(key_path, key.private_pem())
        issuer = cls(directory, _issuer_id(host, port), audience, host, port, key)
        state = {
            "issuer": issuer.issuer,
            "audience": audience,
            "host": host,
            "port": port,
            "kid": key.kid,
            "alg": key.alg,
            "jwks_uri": issuer.jwks_uri,
            "warning": WARNING,
        }
        (directory / ISSUER_FILE).write_text(json.dumps(state, indent=2) + "\n")
        (directory / CONFIG_FILE).write_text(json.dumps(issuer.beacon_config(), indent=2) + "\n")
        return issuer

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> DevIssuer:
        """The issuer :meth:`init` made in ``directory``. A signing key others may read is
        refused (as ssh refuses such a private key)."""
        directory = Path(directory)
        try:
            state = json.loads((directory / ISSUER_FILE).read_text())
            key_path = directory / KEY_FILE
            mode = stat.S_IMODE(key_path.stat().st_mode)
            pem = key_path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"no dev issuer in {directory} (make one with `sandgrain beacon dev-issuer init "
                f"--dir {directory}`)"
            ) from None
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the dev issuer in {directory}: {exc}") from None
        if mode & 0o077:
            raise InputError(
                f"{key_path} may be read by others (mode {mode:04o}); run `chmod 600 {key_path}`"
            )
        try:
            private = serialization.load_pem_private_key(pem, password=None)
            key = SigningKey(private, state["kid"], state["alg"])
            return cls(
                directory, state["issuer"], state["audience"], state["host"], int(state["port"]),
                key,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"the dev issuer in {directory} is damaged: {exc}") from None

    def beacon_config(self) -> dict:
        """A ``SANDGRAIN_BEACON_CONFIG`` trusting this issuer for access tokens and visas."""
        return {
            "oidc_issuers": [
                {"issuer": self.issuer, "audience": self.audience, "jwks_uri": self.jwks_uri}
            ],
            "visa_issuers": [{"issuer": self.issuer, "jwks_uri": self.jwks_uri}],
        }

    def discovery(self) -> dict:
        """The OpenID Provider metadata this issuer can honestly state (no login endpoints)."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "id_token_signing_alg_values_supported": [self.key.alg],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "ga4gh_passport_v1"],
        }

    def server(self, host: str | None = None, port: int | None = None) -> LoopbackJsonServer:
        """A server (not started) publishing the JWKS and discovery document. ``host`` and
        ``port`` default to the issuer's own; other values are refused, since tokens and the
        Beacon config name these."""
        host = self.host if host is None else host
        port = self.port if port is None else port
        if not is_loopback(host):
            raise InputError(
                f"refusing to listen on {host!r}: the dev issuer is for loopback only "
                "(127.0.0.1, ::1 or localhost); it is not for production"
            )
        if (host, port) != (self.host, self.port):
            raise InputError(
                f"this issuer is {self.issuer} (its tokens and {CONFIG_FILE} name it); to serve "
                f"on {host}:{port}, make it again with `dev-issuer init --dir {self.directory} "
                f"--host {host} --port {port} --force`"
            )
        server = LoopbackJsonServer(host, port)
        server.set("/jwks", jwks(self.key))
        server.set("/.well-known/openid-configuration", self.discovery())
        return server

    def token(
        self,
        subject: str,
        datasets: Sequence[str] = (),
        *,
        expires_in: float = 3600,
        source: str | None = None,
    ) -> str:
        """An access token of ``subject`` valid ``expires_in`` seconds; with ``datasets``, it
        carries a passport of one ``ControlledAccessGrants`` visa per dataset (value = the
        dataset id or ``visa_values`` string given), each valid as long as the token."""
        if not subject:
            raise InputError("the user (token subject) must not be empty")
        visas = [
            sign_jwt(
                visa_claims(
                    issuer=self.issuer,
                    subject=subject,
                    value=value,
                    source=source or self.issuer + "/dac",
                    expires_in=expires_in,
                ),
                self.key,
            )
            for value in datasets
        ]
        claims = access_token_claims(
            issuer=self.issuer,
            audience=self.audience,
            subject=subject,
            expires_in=expires_in,
            visas=visas or None,
            extra={"jti": uuid.uuid4().hex, "scope": "openid ga4gh_passport_v1"},
        )
        return sign_jwt(claims, self.key)
