"""Test helpers for Beacon security: signing keys, a loopback JWKS server, tokens and visas.

Everything runs on 127.0.0.1; nothing here is meant for production. Typical use::

    with LoopbackIdP() as idp:
        config = idp.config(min_count=5)
        token = idp.token("alice", datasets=["ds-controlled"])   # access token + one visa
        headers = {"Authorization": f"Bearer {token}"}

Lower-level pieces: :func:`rsa_key` / :func:`ec_key` make a :class:`SigningKey`;
:class:`JwksServer` serves JWKS documents at paths; :func:`make_token` and :func:`make_visa` sign
claims, or deliberately do it wrong (``alg="none"``, ``hmac_secret=...``, another key, expired,
another audience or issuer).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sandgrain.beacon.policy import OidcIssuer, SecurityConfig, VisaIssuer


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


def unused_port() -> int:
    """A loopback TCP port nothing listens on (for "issuer down" tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out (the hanging-issuer tests) leave broken pipes behind


class JwksServer:
    """A tiny HTTP server on 127.0.0.1 (port chosen by the OS) serving JSON documents at paths.

    ``set(path, doc)`` publishes (or replaces: key rotation) a document; ``delay(path, s)``
    makes a path answer only after ``s`` seconds (a hanging issuer); ``hits[path]`` counts
    requests. Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}
        self.delays: dict[str, float] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.hits[path] += 1
                    doc = server.docs.get(path)
                    delay = server.delays.get(path, 0.0)
                if delay:
                    time.sleep(delay)
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

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def set(self, path: str, doc: Any) -> str:
        """Serve ``doc`` (e.g. :func:`jwks`) at ``path``; return its URL."""
        with self._lock:
            self.docs[path] = doc
        return self.url(path)

    def delay(self, path: str, seconds: float) -> None:
        with self._lock:
            self.delays[path] = seconds

    def start(self) -> JwksServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def sign(
    claims: dict,
    key: SigningKey | None,
    *,
    alg: str | None = None,
    kid: str | None = None,
    headers: dict | None = None,
    hmac_secret: bytes | str | None = None,
) -> str:
    """Sign ``claims`` as a JWS.

    ``alg="none"`` makes an unsigned token; ``hmac_secret`` signs with HMAC (``alg`` default
    HS256), e.g. with a public key's PEM as the secret for the key-confusion attack. ``kid``
    defaults to the key's own.
    """
    header = dict(headers or {})
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none", headers=header or None)
    if hmac_secret is not None:
        # PyJWT refuses PEM-looking HMAC secrets, as it should; an attacker would not, so sign
        # by hand with the standard library.
        return _hmac_jws(claims, hmac_secret, alg or "HS256", header, kid)
    if key is None:
        raise ValueError("a signing key is needed unless alg='none' or hmac_secret is given")
    header.setdefault("kid", kid or key.kid)
    return jwt.encode(claims, key.private_key, algorithm=alg or key.alg, headers=header)


def _hmac_jws(claims: dict, secret: bytes | str, alg: str, header: dict, kid: str | None) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    head = {"alg": alg, "typ": "JWT", **header}
    if kid:
        head["kid"] = kid
    signing_input = b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())
    secret = secret.encode() if isinstance(secret, str) else secret
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return signing_input + "." + b64(signature)


def make_token(
    key: SigningKey | None,
    *,
    issuer: str,
    audience: str | list[str],
    subject: str | None = "user-1",
    expires_in: float | None = 300,
    not_before: float | None = None,
    issued_at: float | None = None,
    visas: list[str] | None = None,
    extra: dict | None = None,
    **sign_options: Any,
) -> str:
    """An OIDC access token. ``expires_in`` negative: already expired; ``None``: no ``exp``.
    ``visas`` go into the ``ga4gh_passport_v1`` claim. ``sign_options`` go to :func:`sign`."""
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
    return sign(claims, key, **sign_options)


def make_visa(
    key: SigningKey | None,
    *,
    issuer: str,
    subject: str,
    value: str,
    visa_type: str = "ControlledAccessGrants",
    source: str = "https://dac.example.org",
    by: str | None = "dac",
    asserted: float | None = None,
    expires_in: float | None = 3600,
    conditions: list | None = None,
    jku: str | None = None,
    extra_visa: dict | None = None,
    **sign_options: Any,
) -> str:
    """A GA4GH Passport visa (a JWT with a ``ga4gh_visa_v1`` claim)."""
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
    if jku is not None:
        sign_options.setdefault("headers", {})["jku"] = jku
    return sign(claims, key, **sign_options)


class LoopbackIdP:
    """A login issuer and a visa issuer on one loopback :class:`JwksServer`.

    ``config(**overrides)`` is a :class:`SecurityConfig` trusting both; ``token(subject,
    datasets=[...])`` is an access token carrying one valid visa per dataset id.
    """

    audience = "sandgrain-beacon"

    def __init__(self) -> None:
        self.server = JwksServer()
        self.login_key = rsa_key("login-1")
        self.visa_key = ec_key("visa-1")

    def __enter__(self) -> LoopbackIdP:
        self.server.start()
        self.issuer = self.server.url("/login")
        self.visa_issuer = self.server.url("/broker")
        self.jwks_uri = self.server.set("/login/jwks", jwks(self.login_key))
        self.visa_jwks_uri = self.server.set("/broker/jwks", jwks(self.visa_key))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()

    def config(self, **overrides: Any) -> SecurityConfig:
        values: dict[str, Any] = {
            "oidc_issuers": (OidcIssuer(self.issuer, self.audience, self.jwks_uri),),
            "visa_issuers": (VisaIssuer(self.visa_issuer, self.visa_jwks_uri),),
            "http_timeout_s": 2,
        }
        values.update(overrides)
        return SecurityConfig(**values)

    def visa(self, subject: str, value: str, **options: Any) -> str:
        return make_visa(
            self.visa_key, issuer=self.visa_issuer, subject=subject, value=value, **options
        )

    def token(
        self,
        subject: str = "user-1",
        *,
        datasets: Sequence[str] = (),
        visas: list[str] | None = None,
        **options: Any,
    ) -> str:
        passport = list(visas or []) + [self.visa(subject, d) for d in datasets]
        return make_token(
            self.login_key,
            issuer=self.issuer,
            audience=self.audience,
            subject=subject,
            visas=passport or None,
            **options,
        )
