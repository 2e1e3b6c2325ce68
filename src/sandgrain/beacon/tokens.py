"""Who is asking: OIDC access tokens, their issuers' signing keys, and GA4GH passport visas.

:func:`authenticate` turns the ``Authorization`` header into a :class:`Principal`. No header:
anonymous. ``Bearer <jwt>``: an OIDC access token whose signature is checked against its
issuer's JWKS (fetched over HTTP and cached by :class:`JwksCache`), with ``iss``, ``aud``,
``exp`` (required), ``nbf`` and ``iat`` verified. GA4GH passport visas ride in the token's
``ga4gh_passport_v1`` claim ("passport in the access token"); each visa is a JWT whose signature
is verified against a trusted visa issuer's JWKS. Unsigned visas are rejected (the EGA Beacon
implementation accepts them; a forged grant would otherwise unlock controlled data). Every
failure is an :class:`~sandgrain.beacon.errors.AuthenticationError` (401) whose message never
contains the token.

References
----------
- GA4GH Passport specification v1.2 (visa format, ``ControlledAccessGrants``) and the GA4GH AAI
  OIDC profile (2022).
- RFC 7519 (JWT), RFC 7517 (JWK), RFC 8725 (JWT best current practice: explicit algorithm
  allow-lists, which defeat the "none" and HMAC key-confusion attacks).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import AuthenticationError
from .policy import SecurityConfig, is_loopback

logger = logging.getLogger(__name__)

#: The visa type that grants access to datasets.
CONTROLLED_ACCESS_GRANTS = "ControlledAccessGrants"
#: At most this many visas of one passport are examined (each costs a signature check).
MAX_VISAS = 100
_MAX_JWKS_BYTES = 1 << 20


# --------------------------------------------------------------------------------------------
# JWKS
# --------------------------------------------------------------------------------------------


def _http_get_json(uri: str, timeout_s: float) -> dict:
    host = urllib.parse.urlsplit(uri).hostname
    # Loopback never goes through a proxy (an http_proxy variable must not capture it).
    handlers = [urllib.request.ProxyHandler({})] if is_loopback(host) else []
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(uri, headers={"Accept": "application/json"})
    with opener.open(request, timeout=timeout_s) as response:
        body = response.read(_MAX_JWKS_BYTES + 1)
    if len(body) > _MAX_JWKS_BYTES:
        raise ValueError("JWKS document larger than 1 MiB")
    return json.loads(body)


class JwksCache:
    """Signing keys of issuers, fetched from their ``jwks_uri`` and kept ``ttl_s`` seconds.

    A token whose ``kid`` is not in the cached set triggers one refetch (keys rotate), but at
    most once per ``min_refetch_s`` per URI, so tokens with made-up ``kid`` values cannot turn
    the Beacon into a flood of requests to the issuer. Thread-safe; one instance per app.
    """

    def __init__(
        self,
        *,
        ttl_s: float = 300,
        timeout_s: float = 5,
        min_refetch_s: float = 10,
        clock: Callable[[], float] = time.monotonic,
        fetch: Callable[[str, float], dict] = _http_get_json,
    ):
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.min_refetch_s = min_refetch_s
        self._clock = clock
        self._fetch = fetch
        self._docs: dict[str, tuple[float, list[dict]]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @classmethod
    def for_config(cls, config: SecurityConfig, **kwargs: Any) -> JwksCache:
        return cls(ttl_s=config.jwks_ttl_s, timeout_s=config.http_timeout_s, **kwargs)

    def _lock(self, uri: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uri, threading.Lock())

    def _load(self, uri: str, who: str) -> list[dict]:
        try:
            doc = self._fetch(uri, self.timeout_s)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # also timeouts, bad JSON
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code}"
            else:
                reason = getattr(exc, "reason", None) or exc.__class__.__name__
            if isinstance(exc, TimeoutError) or "timed out" in str(reason):
                reason = f"timed out after {self.timeout_s:g} s"
            raise AuthenticationError(
                f"cannot fetch the signing keys of {who} from {uri}: {reason}"
            ) from None
        keys = doc.get("keys") if isinstance(doc, dict) else None
        if not isinstance(keys, list):
            raise AuthenticationError(f"the JWKS of {who} at {uri} has no 'keys' list")
        keys = [k for k in keys if isinstance(k, dict)]
        self._docs[uri] = (self._clock(), keys)
        return keys

    def keys(self, uri: str, who: str, *, refresh: bool = False) -> tuple[list[dict], bool]:
        """The keys at ``uri`` and whether they were fetched just now.

        ``refresh`` asks for a refetch, granted unless the last fetch is under
        ``min_refetch_s`` old.
        """
        with self._lock(uri):
            now = self._clock()
            cached = self._docs.get(uri)
            if cached is not None:
                age = now - cached[0]
                if age < self.ttl_s and not (refresh and age >= self.min_refetch_s):
                    return cached[1], False
            return self._load(uri, who), True

    def signing_key(self, uri: str, kid: str | None, alg: str, who: str) -> Any:
        """The public key to verify a JWS with this ``kid`` and ``alg``."""
        keys, fresh = self.keys(uri, who)
        found = _select_key(keys, kid, alg)
        if found is None and not fresh:
            keys, fresh = self.keys(uri, who, refresh=True)
            found = _select_key(keys, kid, alg)
        if found is None:
            if kid is None:
                raise AuthenticationError(
                    f"the token has no 'kid' and {who} does not publish exactly one {alg} key"
                )
            raise AuthenticationError(f"no key with the token's kid among the keys of {who}")
        try:
            return jwt.PyJWK(found, algorithm=alg).key
        except jwt.PyJWTError:
            raise AuthenticationError(f"the key of {who} does not suit algorithm {alg}") from None


_KTY_FOR_ALG = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _select_key(keys: list[dict], kid: str | None, alg: str) -> dict | None:
    kty = _KTY_FOR_ALG.get(alg[:2])
    usable = [
        k
        for k in keys
        if k.get("kty") == kty
        and k.get("use", "sig") == "sig"
        and k.get("alg", alg) == alg  # a key that names its algorithm is only used with it
    ]
    if kid is None:
        return usable[0] if len(usable) == 1 else None
    return next((k for k in usable if k.get("kid") == kid), None)


# --------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is asking.

    ``granted_datasets`` are the dataset ids unlocked by valid ``ControlledAccessGrants`` visas;
    ``rejected_visas`` says, one line per visa, why a visa was not accepted (for audit and
    debugging; never shown to other users).
    """

    subject: str | None = None
    issuer: str | None = None
    ip: str = ""
    authenticated: bool = False
    granted_datasets: frozenset[str] = frozenset()
    rejected_visas: tuple[str, ...] = ()

    @property
    def budget_key(self) -> str:
        """The key of this principal's query budget: the token subject, else the IP address."""
        if self.authenticated and self.subject:
            return f"sub:{self.issuer}|{self.subject}"
        return f"ip:{self.ip}"


def _jwt_error_message(exc: jwt.PyJWTError, what: str) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return f"the {what} has expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return f"the {what} is not valid yet (nbf/iat in the future)"
    if isinstance(exc, jwt.InvalidAudienceError):
        return f"the {what} is not meant for this Beacon (wrong audience)"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"the {what} issuer does not match"
    if isinstance(exc, jwt.InvalidSignatureError):
        return f"the {what} signature is invalid"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the {what} lacks the required '{exc.claim}' claim"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return f"the {what} algorithm is not allowed"
    if isinstance(exc, jwt.DecodeError):
        return f"the {what} is malformed"
    return f"the {what} is invalid ({exc.__class__.__name__})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "...'"


def _unverified(token: str, what: str) -> tuple[dict, dict]:
    """Header and claims, unverified: only used to pick the issuer and key."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthenticationError(f"the {what} is malformed") from None
    return header, claims


def verify_access_token(token: str, config: SecurityConfig, jwks_cache: JwksCache) -> dict:
    """Verify an OIDC access token and return its claims; :class:`AuthenticationError` if not."""
    header, unverified = _unverified(token, "bearer token")
    alg = header.get("alg")
    if alg not in config.algorithms:
        raise AuthenticationError(f"bearer token algorithm {_short(alg)} is not accepted")
    iss = unverified.get("iss")
    issuer = config.oidc_issuer(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise AuthenticationError(f"bearer token issuer {_short(iss)} is not trusted")
    key = jwks_cache.signing_key(issuer.jwks_uri, header.get("kid"), alg, f"issuer {iss}")
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=config.leeway_s,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationError(_jwt_error_message(exc, "bearer token")) from None


def verify_visa(visa: Any, subject: str, config: SecurityConfig, jwks_cache: JwksCache) -> set[str]:
    """Verify one GA4GH visa of ``subject``; return the dataset ids it grants.

    Raises :class:`AuthenticationError` with the reason when the visa is not acceptable: not a
    signed JWT with an allowed algorithm, issuer not trusted, ``jku`` header other than the
    issuer's configured JWKS, bad signature, expired (``exp`` required), another subject, not of
    type ``ControlledAccessGrants``, missing ``value``/``source``/``asserted``, asserted in the
    future, or carrying ``conditions`` (which this Beacon cannot evaluate, so it must not honour
    the visa). ``by`` is optional, as in the Passport spec.
    """
    if not isinstance(visa, str):
        raise AuthenticationError("visa is not a JWT string")
    header, unverified = _unverified(visa, "visa")
    alg = header.get("alg")
    if alg not in config.algorithms:
        raise AuthenticationError(f"visa algorithm {_short(alg)} is not accepted")
    iss = unverified.get("iss")
    issuer = config.visa_issuer(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise AuthenticationError(f"visa issuer {_short(iss)} is not trusted")
    if "jku" in header and header["jku"] != issuer.jwks_uri:
        raise AuthenticationError(f"visa jku is not the configured JWKS of issuer {iss}")
    key = jwks_cache.signing_key(issuer.jwks_uri, header.get("kid"), alg, f"visa issuer {iss}")
    try:
        claims = jwt.decode(
            visa,
            key,
            algorithms=[alg],
            issuer=issuer.issuer,
            leeway=config.leeway_s,
            options={"require": ["exp", "iss", "sub"], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationError(_jwt_error_message(exc, "visa")) from None
    if claims.get("sub") != subject:
        raise AuthenticationError("visa subject is not the token subject")
    body = claims.get("ga4gh_visa_v1")
    if not isinstance(body, dict):
        raise AuthenticationError("visa lacks the ga4gh_visa_v1 claim")
    if body.get("type") != CONTROLLED_ACCESS_GRANTS:
        raise AuthenticationError(f"visa type {_short(body.get('type'))} grants no dataset")
    for name in ("value", "source"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise AuthenticationError(f"visa lacks ga4gh_visa_v1.{name}")
    asserted = body.get("asserted")
    if isinstance(asserted, bool) or not isinstance(asserted, int | float):
        raise AuthenticationError("visa lacks ga4gh_visa_v1.asserted")
    if asserted > time.time() + config.leeway_s:
        raise AuthenticationError("visa is asserted in the future")
    if body.get("conditions"):
        raise AuthenticationError("visa has conditions, which this Beacon does not evaluate")
    return config.datasets_granted_by(body["value"])


def authenticate(
    authorization: str | None,
    client_ip: str,
    config: SecurityConfig,
    jwks_cache: JwksCache,
) -> Principal:
    """The :class:`Principal` behind an ``Authorization`` header.

    ``None`` or an empty header → anonymous. ``Bearer <jwt>`` → the token is verified (see
    :func:`verify_access_token`) and the visas of its ``ga4gh_passport_v1`` claim (a list of visa
    JWTs: the "passport in the access token" form) are checked one by one with
    :func:`verify_visa`. A bad visa is not fatal: it grants nothing and its reason is kept in
    :attr:`Principal.rejected_visas`. Anything wrong with the header or the token raises
    :class:`AuthenticationError` (401).
    """
    if authorization is None or not authorization.strip():
        return Principal(ip=client_ip)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    claims = verify_access_token(token, config, jwks_cache)
    subject = str(claims["sub"])
    granted: set[str] = set()
    rejected: list[str] = []
    passport = claims.get("ga4gh_passport_v1", [])
    if not isinstance(passport, list):
        rejected.append("ga4gh_passport_v1 is not a list of visas")
        passport = []
    if len(passport) > MAX_VISAS:
        rejected.append(f"only the first {MAX_VISAS} of {len(passport)} visas were examined")
    for i, visa in enumerate(passport[:MAX_VISAS]):
        try:
            granted |= verify_visa(visa, subject, config, jwks_cache)
        except AuthenticationError as exc:
            rejected.append(f"visa {i}: {exc}")
    if rejected:
        logger.info("subject %s: %d visa(s) rejected: %s", subject, len(rejected), rejected)
    return Principal(
        subject=subject,
        issuer=str(claims["iss"]),
        ip=client_ip,
        authenticated=True,
        granted_datasets=frozenset(granted),
        rejected_visas=tuple(rejected),
    )
