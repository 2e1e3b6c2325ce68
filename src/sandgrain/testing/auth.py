"""Test helpers for Beacon security: signing keys, a loopback JWKS server, tokens and visas.

Everything runs on 127.0.0.1; nothing here is meant for production. Typical use::

    with LoopbackIdP() as idp:
        config = idp.config(min_count=5)
        token = idp.token("alice", datasets=["ds-controlled"])   # access token + one visa
        headers = {"Authorization": f"Bearer {token}"}

Lower-level pieces: :func:`rsa_key` / :func:`ec_key` make a :class:`SigningKey`;
:class:`JwksServer` serves JWKS documents at paths; :func:`make_token` and :func:`make_visa` sign
claims, or deliberately do it wrong (``alg="none"``, ``hmac_secret=...``, another key, expired,
another audience or issuer). The keys, JWKS, claims and the loopback server are those of the
development issuer (:mod:`sandgrain.beacon.dev_issuer`, ``sandgrain beacon dev-issuer``); this
module adds what only tests need: hanging servers and deliberately wrong tokens.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from typing import Any

import jwt

from sandgrain.beacon.dev_issuer import (
    LoopbackJsonServer,
    SigningKey,
    access_token_claims,
    ec_key,
    jwks,
    rsa_key,
    sign_jwt,
    visa_claims,
)
from sandgrain.beacon.policy import OidcIssuer, SecurityConfig, VisaIssuer

__all__ = [
    "JwksServer",
    "LoopbackIdP",
    "SigningKey",
    "ec_key",
    "jwks",
    "make_token",
    "make_visa",
    "rsa_key",
    "sign",
    "unused_port",
]


def unused_port() -> int:
    """A loopback TCP port nothing listens on (for "issuer down" tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JwksServer(LoopbackJsonServer):
    """A :class:`~sandgrain.beacon.dev_issuer.LoopbackJsonServer` on 127.0.0.1 (port chosen by
    the OS) that can also hang: ``delay(path, s)`` makes a path answer only after ``s`` seconds
    (a hanging issuer). ``set(path, doc)`` publishes (or replaces: key rotation) a document;
    ``hits[path]`` counts requests. Use as a context manager, or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(self) -> None:
        super().__init__("127.0.0.1", 0)
        self.delays: dict[str, float] = {}

    def _document(self, path: str) -> Any:
        with self._lock:
            delay = self.delays.get(path, 0.0)
        if delay:
            time.sleep(delay)
        return super()._document(path)

    def delay(self, path: str, seconds: float) -> None:
        with self._lock:
            self.delays[path] = seconds


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
    return sign_jwt(claims, key, alg=alg, kid=kid, headers=header)


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
    """An OIDC access token (:func:`~sandgrain.beacon.dev_issuer.access_token_claims`).
    ``expires_in`` negative: already expired; ``None``: no ``exp``. ``visas`` go into the
    ``ga4gh_passport_v1`` claim. ``sign_options`` go to :func:`sign`."""
    claims = access_token_claims(
        issuer=issuer,
        audience=audience,
        subject=subject,
        expires_in=expires_in,
        not_before=not_before,
        issued_at=issued_at,
        visas=visas,
        extra=extra,
    )
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
    """A GA4GH Passport visa (:func:`~sandgrain.beacon.dev_issuer.visa_claims`), with a ``jku``
    header when given. ``sign_options`` go to :func:`sign`."""
    claims = visa_claims(
        issuer=issuer,
        subject=subject,
        value=value,
        visa_type=visa_type,
        source=source,
        by=by,
        asserted=asserted,
        expires_in=expires_in,
        conditions=conditions,
        extra_visa=extra_visa,
    )
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
