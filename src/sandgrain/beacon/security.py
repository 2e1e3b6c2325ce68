"""Who may ask the Beacon what, how precisely it answers, and a record of every answer.

The module is framework-free: the API layer hands it the ``Authorization`` header and the client
address as strings and turns the errors raised here into Beacon error responses
(:class:`AuthenticationError` → 401, :class:`BudgetExceededError` → 429).

The pieces, in the order a request meets them:

1. :func:`authenticate` turns the ``Authorization`` header into a :class:`Principal`. No header:
   anonymous. ``Bearer <jwt>``: an OIDC access token whose signature is checked against its
   issuer's JWKS (fetched over HTTP and cached by :class:`JwksCache`), with ``iss``, ``aud``,
   ``exp`` (required), ``nbf`` and ``iat`` verified. GA4GH passport visas ride in the token's
   ``ga4gh_passport_v1`` claim ("passport in the access token"); each visa is a JWT whose
   signature is verified against a trusted visa issuer's JWKS. Unsigned visas are rejected (the
   EGA Beacon implementation accepts them; a forged grant would otherwise unlock controlled data).
2. :func:`granularity_for` says how much of one dataset a principal may see, from the dataset's
   access tier (public, registered, controlled) and :attr:`SecurityConfig.max_granularity`;
   :func:`clamp` lowers a requested granularity to it.
3. :func:`protect_count` hides or coarsens small counts (re-identification defence).
4. :class:`QueryBudget` limits genomic queries per user (or per IP address when anonymous).
5. :class:`AuditLog` records who asked what, when, and what was answered.

Why counts and budgets
----------------------
Shringarpure & Bustamante (2015) showed that a few hundred yes/no queries about rare alleles
suffice to tell whether a known genome is in a Beacon; Raisaro et al. (2017) sharpened the attack
and proposed the defences used here: hide answers about alleles carried by very few people and cap
the number of queries a user can ask.

References
----------
- Shringarpure SS, Bustamante CD (2015). Privacy risks from genomic data-sharing beacons.
  Am J Hum Genet 97(5):631-646.
- Raisaro JL, Tramèr F, Ji Z, et al. (2017). Addressing Beacon re-identification attacks:
  quantification and mitigation of privacy risks. J Am Med Inform Assoc 24(4):799-805.
- GA4GH Passport specification v1.2 (visa format, ``ControlledAccessGrants``) and the GA4GH AAI
  OIDC profile (2022).
- RFC 7519 (JWT), RFC 7517 (JWK), RFC 8725 (JWT best current practice: explicit algorithm
  allow-lists, which defeat the "none" and HMAC key-confusion attacks).
- Beacon v2.2.0 ``countPrecision`` / ``countAdjustedTo`` (ga4gh-beacon/beacon-v2 PR #220, #223).
"""

from __future__ import annotations

import dataclasses
import http.client
import ipaddress
import json
import logging
import math
import os
import sqlite3
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import jwt

from sandgrain.config import Settings
from sandgrain.errors import InputError, SandgrainError

logger = logging.getLogger(__name__)

#: Granularities from least to most revealing (the spec's ``aggregated`` is not served).
GRANULARITIES = ("boolean", "count", "record")
#: Dataset access tiers.
TIERS = ("public", "registered", "controlled")
#: Signature algorithms that may ever be allowed: asymmetric only. ``none`` and the HMAC family
#: (HS256…) are absent on purpose: with HMAC a public key becomes the secret (key confusion).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Audit event kinds and outcomes.
AUDIT_KINDS = ("query", "revoke", "restore", "admin")
AUDIT_OUTCOMES = ("ok", "denied", "error")
#: The env var naming the security config file.
CONFIG_ENV = "SANDGRAIN_BEACON_CONFIG"
#: The visa type that grants access to datasets.
CONTROLLED_ACCESS_GRANTS = "ControlledAccessGrants"
#: At most this many visas of one passport are examined (each costs a signature check).
MAX_VISAS = 100
_MAX_JWKS_BYTES = 1 << 20


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class AuthenticationError(SandgrainError):
    """The bearer token could not be verified. The message never contains the token."""

    http_status = 401
    title = "Unauthorized"


class BudgetExceededError(SandgrainError):
    """The user (or IP address) used up its query budget; ``retry_after_s`` says for how long."""

    http_status = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after_s: int = 0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcIssuer:
    """A trusted login (OIDC) issuer: tokens with ``iss == issuer`` and ``aud`` containing
    ``audience`` are verified with the keys published at ``jwks_uri``."""

    issuer: str
    audience: str
    jwks_uri: str


@dataclass(frozen=True)
class VisaIssuer:
    """A trusted GA4GH visa issuer (a passport broker or DAC) and its JWKS."""

    issuer: str
    jwks_uri: str


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_jwks_uri(uri: str, what: str) -> None:
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return
    raise InputError(
        f"{what} jwks_uri must be an https:// URL (http:// only on loopback), not {uri!r}"
    )


@dataclass(frozen=True)
class SecurityConfig:
    """Security and privacy settings of the Beacon.

    Attributes
    ----------
    max_granularity
        The most a dataset of each access tier may reveal, per tier: ``{"public": "count",
        "registered": "record", "controlled": "record"}`` by default; tiers left out keep their
        default. Values: ``boolean`` < ``count`` < ``record``.
    oidc_issuers
        Trusted login issuers (``issuer``, ``audience``, ``jwks_uri``). A token from any other
        issuer is refused (401). Empty: nobody can log in, only public datasets are visible.
    algorithms
        JWT signature algorithms accepted for tokens and visas (default ``RS256``, ``ES256``).
        Only asymmetric algorithms may be listed; ``none`` and ``HS*`` are refused.
    leeway_s
        Clock skew tolerated on ``exp``, ``nbf`` and ``iat``, seconds (default 30).
    visa_issuers
        Trusted GA4GH visa issuers (``issuer``, ``jwks_uri``). Visas from anyone else grant
        nothing.
    visa_values
        Controlled dataset id → the ``ga4gh_visa_v1.value`` strings that grant it (e.g. the
        dataset's URL at the DAC). A dataset not listed is granted by a visa whose value is the
        dataset id itself; a listed dataset only by its listed values.
    min_count
        Counts from 1 to ``min_count - 1`` are never reported exactly (0 = off; e.g. 5); see
        :func:`protect_count`.
    count_precision
        How counts are reported (Beacon v2.2 ``countPrecision``): ``exact`` (default: counts as
        they are, apart from the ``min_count`` rule), ``imprecise`` (the same, but ``min_count``
        must be set, so small counts are always adjusted), ``rounded`` (counts rounded up to a
        multiple of ``round_to``).
    round_to
        The rounding step of ``count_precision = "rounded"`` (default 10).
    small_counts
        What a count below ``min_count`` is reported as: ``threshold`` (default: ``min_count``
        itself, as the GA4GH reference implementation does), ``zero`` (0) or ``hide`` (``None``:
        the API must not give a count, e.g. answer that dataset at boolean granularity).
    budget_limit
        Genomic queries allowed per user (token subject) or, anonymously, per IP address in any
        ``budget_window_s`` seconds (default 1000; 0 = unlimited).
    budget_window_s
        Length of the sliding budget window, seconds (default 3600).
    audit_db
        SQLite file of the audit log and the query budget (default
        ``<Settings.home>/beacon-audit.sqlite``; see :meth:`db_path`).
    jwks_ttl_s
        How long a fetched JWKS is trusted before it is fetched again, seconds (default 300).
    http_timeout_s
        Timeout of one JWKS fetch, seconds (default 5): an unreachable issuer costs a request at
        most this long, then 401.
    admins
        Token subjects (``sub`` of a valid access token) allowed to use the admin API
        (``/api/beacon/admin/…``: revoke and restore consent). Empty: no admin API.
    stores
        More stores to answer from besides the main one (federation): a list of
        ``{"url": "s3://bucket/prefix", "storage_options": {…}}``.
    """

    max_granularity: Mapping[str, str] = field(
        default_factory=lambda: {"public": "count", "registered": "record", "controlled": "record"}
    )
    oidc_issuers: tuple[OidcIssuer, ...] = ()
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_s: float = 30
    visa_issuers: tuple[VisaIssuer, ...] = ()
    visa_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    min_count: int = 0
    count_precision: Literal["exact", "imprecise", "rounded"] = "exact"
    round_to: int = 10
    small_counts: Literal["threshold", "zero", "hide"] = "threshold"
    budget_limit: int = 1000
    budget_window_s: float = 3600
    audit_db: str | None = None
    jwks_ttl_s: float = 300
    http_timeout_s: float = 5
    admins: tuple[str, ...] = ()
    stores: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # Normalise containers that came from JSON/TOML (lists, dicts) into immutable forms.
        set_ = object.__setattr__
        set_(self, "oidc_issuers", tuple(_as_issuer(i, OidcIssuer) for i in self.oidc_issuers))
        set_(self, "visa_issuers", tuple(_as_issuer(i, VisaIssuer) for i in self.visa_issuers))
        set_(self, "algorithms", tuple(self.algorithms))
        set_(self, "admins", tuple(str(a) for a in self.admins))
        for spec in self.stores:
            if not isinstance(spec, Mapping) or not spec.get("url"):
                raise InputError("each entry of stores needs a url")
        set_(self, "stores", tuple(dict(spec) for spec in self.stores))
        if isinstance(self.max_granularity, Mapping):
            set_(self, "max_granularity", {**_DEFAULT_MAX, **dict(self.max_granularity)})
        if isinstance(self.visa_values, Mapping):
            values = {}
            for ds, vals in self.visa_values.items():
                vals = [vals] if isinstance(vals, str) else vals
                if not isinstance(vals, list | tuple) or not all(isinstance(v, str) for v in vals):
                    raise InputError(f"visa_values[{ds!r}] must be a list of strings")
                values[str(ds)] = tuple(vals)
            set_(self, "visa_values", values)
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.max_granularity, Mapping):
            raise InputError("max_granularity must map each tier to a granularity")
        for tier, gran in self.max_granularity.items():
            if tier not in TIERS:
                raise InputError(f"max_granularity: unknown tier {tier!r}; use {', '.join(TIERS)}")
            _check_granularity(gran, f"max_granularity[{tier!r}]")
        if not self.algorithms:
            raise InputError("algorithms must list at least one signature algorithm")
        for alg in self.algorithms:
            if alg not in ASYMMETRIC_ALGORITHMS:
                raise InputError(
                    f"algorithm {alg!r} is not allowed; use asymmetric ones such as RS256, ES256"
                )
        seen: set[str] = set()
        for iss in (*self.oidc_issuers, *self.visa_issuers):
            _check_jwks_uri(iss.jwks_uri, f"issuer {iss.issuer!r}")
        for iss in self.oidc_issuers:
            if iss.issuer in seen:
                raise InputError(f"OIDC issuer {iss.issuer!r} is listed twice")
            seen.add(iss.issuer)
            if not iss.audience:
                raise InputError(f"OIDC issuer {iss.issuer!r} needs an audience")
        _check_number(self.leeway_s, "leeway_s", minimum=0)
        _check_number(self.min_count, "min_count", minimum=0, integer=True)
        _check_number(self.round_to, "round_to", minimum=1, integer=True)
        _check_number(self.budget_limit, "budget_limit", minimum=0, integer=True)
        _check_number(self.budget_window_s, "budget_window_s", minimum=1)
        _check_number(self.jwks_ttl_s, "jwks_ttl_s", minimum=0)
        _check_number(self.http_timeout_s, "http_timeout_s", minimum=0.01)
        if self.count_precision not in ("exact", "imprecise", "rounded"):
            raise InputError(
                f"count_precision must be exact, imprecise or rounded, not {self.count_precision!r}"
            )
        if self.count_precision == "imprecise" and self.min_count < 1:
            raise InputError("count_precision 'imprecise' needs min_count of 1 or more (e.g. 5)")
        if self.small_counts not in ("threshold", "zero", "hide"):
            raise InputError(
                f"small_counts must be threshold, zero or hide, not {self.small_counts!r}"
            )

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SecurityConfig:
        """Build from a plain mapping whose keys are the attribute names; unknown keys are an
        error (a mistyped security setting must not be silently ignored)."""
        if not isinstance(data, Mapping):
            raise InputError("the beacon security config must be a JSON object / TOML table")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(
                f"unknown beacon security setting(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )
        return cls(**dict(data))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SecurityConfig:
        """Read a JSON file, or TOML when the name ends in ``.toml``."""
        path = Path(path).expanduser()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read beacon security config {path}: {exc.strerror}") from None
        try:
            if path.suffix.lower() == ".toml":
                data = tomllib.loads(raw.decode("utf-8"))
            else:
                data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"beacon security config {path} is not valid: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SecurityConfig:
        """The file named by ``SANDGRAIN_BEACON_CONFIG``; defaults when it is unset."""
        env = os.environ if env is None else env
        path = env.get(CONFIG_ENV)
        return cls.from_file(path) if path else cls()

    # -- derived ------------------------------------------------------------------------------

    def db_path(self, settings: Settings | None = None) -> str:
        """The audit/budget SQLite file: ``audit_db`` or ``<settings.home>/beacon-audit.sqlite``."""
        if self.audit_db:
            return str(Path(self.audit_db).expanduser())
        settings = settings or Settings.from_env()
        return str(Path(settings.home).expanduser() / "beacon-audit.sqlite")

    def oidc_issuer(self, iss: str) -> OidcIssuer | None:
        return next((i for i in self.oidc_issuers if i.issuer == iss), None)

    def visa_issuer(self, iss: str) -> VisaIssuer | None:
        return next((i for i in self.visa_issuers if i.issuer == iss), None)

    def datasets_granted_by(self, value: str) -> set[str]:
        """Dataset ids that a ``ControlledAccessGrants`` visa with this ``value`` grants."""
        granted = {ds for ds, values in self.visa_values.items() if value in values}
        if value not in self.visa_values:  # default: the value is the dataset id
            granted.add(value)
        return granted


_DEFAULT_MAX = {"public": "count", "registered": "record", "controlled": "record"}


def _as_issuer(item: Any, kind: type) -> Any:
    if isinstance(item, kind):
        return item
    names = [f.name for f in dataclasses.fields(kind)]
    if not isinstance(item, Mapping) or set(item) != set(names):
        raise InputError(f"each {kind.__name__} needs exactly the keys {', '.join(names)}")
    if not all(isinstance(item[n], str) and item[n] for n in names):
        raise InputError(f"{kind.__name__} fields must be non-empty strings")
    return kind(**{n: item[n] for n in names})


def _check_number(value: Any, name: str, *, minimum: float, integer: bool = False) -> None:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or value < minimum:
        kind = "a whole number" if integer else "a number"
        raise InputError(f"{name} must be {kind} ≥ {minimum}, not {value!r}")


def _check_granularity(value: Any, what: str = "granularity") -> str:
    if value not in GRANULARITIES:
        raise InputError(f"{what} must be one of {', '.join(GRANULARITIES)}, not {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# JWKS
# --------------------------------------------------------------------------------------------


def _http_get_json(uri: str, timeout_s: float) -> dict:
    host = urllib.parse.urlsplit(uri).hostname
    # Loopback never goes through a proxy (an http_proxy variable must not capture it).
    handlers = [urllib.request.ProxyHandler({})] if _is_loopback(host) else []
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


# --------------------------------------------------------------------------------------------
# Authorisation
# --------------------------------------------------------------------------------------------


def granularity_for(
    principal: Principal, dataset_id: str, tier: str, config: SecurityConfig
) -> str | None:
    """The most detailed granularity ``principal`` may get for a dataset of this access tier.

    ``None``: the dataset is not visible at all to this principal (registered data for an
    anonymous caller; controlled data without a valid visa granting ``dataset_id``). The answer
    depends on the dataset's tier only, not on who asks: a logged-in user gets no more of a
    public dataset than ``max_granularity["public"]``.
    """
    if tier not in TIERS:
        raise InputError(f"dataset {dataset_id!r} has unknown access tier {tier!r}")
    if tier == "registered" and not principal.authenticated:
        return None
    if tier == "controlled" and not (
        principal.authenticated and dataset_id in principal.granted_datasets
    ):
        return None
    return config.max_granularity[tier]


def clamp(requested: str, allowed: str) -> str:
    """The lower of two granularities (``boolean`` < ``count`` < ``record``)."""
    _check_granularity(requested, "requested granularity")
    _check_granularity(allowed, "allowed granularity")
    return min(requested, allowed, key=GRANULARITIES.index)


# --------------------------------------------------------------------------------------------
# Small counts
# --------------------------------------------------------------------------------------------


def protect_count(n: int, config: SecurityConfig) -> tuple[int | None, dict[str, Any]]:
    """The count to report for a true count ``n``, and the Beacon v2.2 fields describing it.

    Returns ``(reported, info)``; ``info`` holds ``countPrecision`` (``exact`` | ``imprecise`` |
    ``rounded``) and, when the count was changed, ``countAdjustedTo`` (a list with the value it
    was adjusted to); the API copies both into the result set and the response summary. Rules:

    1. ``n == 0`` → ``0``, exact: absence is already told by ``exists: false``.
    2. ``0 < n < min_count`` → per ``small_counts``: ``min_count`` (threshold), ``0`` (zero) or
       ``None`` (hide: give no count at all), with ``countAdjustedTo = [min_count]`` and
       ``countPrecision = "imprecise"``. A count of one or two carriers is exactly what the
       re-identification attacks of Shringarpure & Bustamante (2015) and Raisaro et al. (2017)
       test for, so it is never reported as such.
    3. otherwise, ``count_precision == "rounded"`` → ``n`` rounded up to a multiple of
       ``round_to`` (23 → 30 with step 10; 30 stays 30), ``countAdjustedTo = [reported]``,
       ``"rounded"`` -- for every such count, so the flag does not single out exact ones.
    4. otherwise ``n`` exactly, ``countPrecision = "exact"``.

    The v2.1.1 schemas do not name these two fields yet, but allow them (result sets and the
    count summary accept additional properties).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"a count must be a whole number ≥ 0, not {n!r}")
    if n == 0:
        return 0, {"countPrecision": "exact"}
    if n < config.min_count:
        reported = {"threshold": config.min_count, "zero": 0, "hide": None}[config.small_counts]
        return reported, {"countAdjustedTo": [config.min_count], "countPrecision": "imprecise"}
    if config.count_precision == "rounded":
        # Marked rounded even when n is already a multiple: an "exact" flag on 30 but not on
        # 23 would tell which counts are exact.
        reported = math.ceil(n / config.round_to) * config.round_to
        return reported, {"countAdjustedTo": [reported], "countPrecision": "rounded"}
    return n, {"countPrecision": "exact"}


# --------------------------------------------------------------------------------------------
# SQLite: query budget and audit log share one file
# --------------------------------------------------------------------------------------------


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS beacon_budget (
        key TEXT NOT NULL,
        t REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS beacon_budget_by_key ON beacon_budget (key, t)",
    """CREATE TABLE IF NOT EXISTS beacon_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT,
        issuer TEXT,
        ip TEXT,
        endpoint TEXT,
        method TEXT,
        query TEXT,
        datasets TEXT,
        granularity TEXT,
        counts TEXT,
        outcome TEXT NOT NULL,
        detail TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS beacon_audit_by_time ON beacon_audit (time)",
)


def _iso(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z``: sorts lexicographically in time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _normalise_time(value: Any, what: str) -> str:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"{what} must be an ISO-8601 time, not {value!r}") from None
    else:
        raise InputError(f"{what} must be an ISO-8601 time, not {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _iso(moment)


class _SqliteFile:
    """One connection to the shared file, guarded by a lock, reopened after a fork."""

    def __init__(self, path: str | os.PathLike[str], synchronous: str):
        self.path = Path(path).expanduser()
        if str(path) == ":memory:":
            raise InputError("the beacon audit database needs a file; ':memory:' is not shared")
        self._synchronous = synchronous
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    class _Tx:
        def __init__(self, owner: _SqliteFile, write: bool):
            self.owner = owner
            self.begin = "BEGIN IMMEDIATE" if write else "BEGIN"

        def __enter__(self) -> sqlite3.Connection:
            self.owner._lock.acquire()
            try:
                self.conn = self.owner._connection()
                self.conn.execute(self.begin)
            except BaseException:
                self.owner._lock.release()
                raise
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.owner._lock.release()

    def transaction(self, *, write: bool = True) -> _SqliteFile._Tx:
        """``with db.transaction() as conn``: an immediate (write-locking) transaction, or a
        plain read transaction with ``write=False``."""
        return _SqliteFile._Tx(self, write)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class QueryBudget:
    """At most ``limit`` charges per key in any ``window_s`` seconds (a sliding window).

    Each charge is a timestamped row; a charge is refused while ``limit`` rows of the key are
    younger than ``window_s``, and allowed again as soon as the oldest of them ages out. A sliding
    window, unlike a fixed one, gives no burst of twice the limit around a window boundary.
    The check and the insert happen in one immediate transaction, so several threads and
    processes sharing the file never overspend. ``limit == 0`` means unlimited.

    Keys are :attr:`Principal.budget_key`. The API charges only queries that answer with genomic
    data, before running them; a refused query is not charged.
    """

    _PRUNE_EVERY = 1000

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limit: int = 1000,
        window_s: float = 3600,
        clock: Callable[[], float] = time.time,
    ):
        _check_number(limit, "budget limit", minimum=0, integer=True)
        _check_number(window_s, "budget window", minimum=1)
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._db = _SqliteFile(path, "NORMAL")
        self._charges = 0

    @classmethod
    def from_config(
        cls, config: SecurityConfig, settings: Settings | None = None, **kwargs: Any
    ) -> QueryBudget:
        return cls(
            config.db_path(settings),
            limit=config.budget_limit,
            window_s=config.budget_window_s,
            **kwargs,
        )

    def charge(self, key: str) -> int:
        """Spend one query of ``key``'s budget; return how many remain in the window (-1 when
        the budget is unlimited).

        Raises :class:`BudgetExceededError` (429) when none remain; the message says when the
        next query will be allowed.
        """
        if self.limit == 0:
            return -1
        now = self._clock()
        start = now - self.window_s
        with self._db.transaction() as conn:
            self._charges += 1
            if self._charges % self._PRUNE_EVERY == 0:
                conn.execute("DELETE FROM beacon_budget WHERE t <= ?", (start,))
            else:
                conn.execute("DELETE FROM beacon_budget WHERE key = ? AND t <= ?", (key, start))
            used, oldest = conn.execute(
                "SELECT COUNT(*), MIN(t) FROM beacon_budget WHERE key = ?", (key,)
            ).fetchone()
            if used < self.limit:
                conn.execute("INSERT INTO beacon_budget (key, t) VALUES (?, ?)", (key, now))
                return self.limit - used - 1
        reset = oldest + self.window_s
        wait = max(1, math.ceil(reset - now))
        when = _iso(datetime.fromtimestamp(reset, UTC).replace(microsecond=0))
        raise BudgetExceededError(
            f"query budget used up: {self.limit} genomic queries per {self.window_s:g} s; "
            f"the next one is allowed at {when.replace('.000000', '')} (in {wait} s)",
            retry_after_s=wait,
        )

    def remaining(self, key: str) -> int:
        """Queries ``key`` may still make in the current window, without spending one."""
        if self.limit == 0:
            return -1
        start = self._clock() - self.window_s
        with self._db.transaction(write=False) as conn:
            (used,) = conn.execute(
                "SELECT COUNT(*) FROM beacon_budget WHERE key = ? AND t > ?", (key, start)
            ).fetchone()
        return max(0, self.limit - used)

    def close(self) -> None:
        self._db.close()


_AUDIT_FIELDS = (
    "time",
    "kind",
    "subject",
    "issuer",
    "ip",
    "endpoint",
    "method",
    "query",
    "datasets",
    "granularity",
    "counts",
    "outcome",
    "detail",
)
_AUDIT_JSON = ("query", "datasets", "counts")


def audit_event(principal: Principal, **fields: Any) -> dict[str, Any]:
    """An audit event for ``principal`` (subject, issuer, ip filled in) plus ``fields``."""
    return {
        "subject": principal.subject,
        "issuer": principal.issuer,
        "ip": principal.ip,
        **fields,
    }


class AuditLog:
    """Every query, revocation, restoration and admin action, one SQLite row each.

    An event is a dict with the keys: ``kind`` (``query`` | ``revoke`` | ``restore`` |
    ``admin``, required), ``outcome`` (``ok`` | ``denied`` | ``error``, required), ``time``
    (default now; stored as ISO-8601 UTC), ``subject`` (alias ``user``), ``issuer``, ``ip``,
    ``endpoint``, ``method``, ``query`` (any JSON: the request parameters), ``datasets`` (the
    dataset ids answered), ``granularity`` (the granularity answered), ``counts`` (JSON: e.g.
    dataset → count returned) and ``detail`` (free text, e.g. why it was denied).

    Each event is committed on its own with ``synchronous = FULL``, so an acknowledged query is
    on disk. :meth:`record` never raises because the database failed (it logs the failure and
    returns ``None``); it raises :class:`~sandgrain.errors.InputError` only for a malformed event,
    which is a programming error.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self._db = _SqliteFile(path, "FULL")

    @classmethod
    def from_config(cls, config: SecurityConfig, settings: Settings | None = None) -> AuditLog:
        return cls(config.db_path(settings))

    def record(self, event: Mapping[str, Any]) -> int | None:
        """Store one event; return its id (``None`` if the database could not be written)."""
        row = self._row(event)
        try:
            with self._db.transaction() as conn:
                cursor = conn.execute(
                    f"INSERT INTO beacon_audit ({', '.join(_AUDIT_FIELDS)}) "
                    f"VALUES ({', '.join('?' * len(_AUDIT_FIELDS))})",
                    [row[name] for name in _AUDIT_FIELDS],
                )
                return cursor.lastrowid
        except (sqlite3.Error, OSError):
            logger.exception("could not write a beacon audit event (%s)", row["kind"])
            return None

    @staticmethod
    def _row(event: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(event, Mapping):
            raise InputError("an audit event must be a dict")
        event = dict(event)
        if "user" in event:
            if event.get("subject") not in (None, event["user"]):
                raise InputError("an audit event has both 'user' and 'subject'")
            event["subject"] = event.pop("user")
        unknown = sorted(set(event) - set(_AUDIT_FIELDS))
        if unknown:
            raise InputError(f"unknown audit event field(s): {', '.join(unknown)}")
        if event.get("kind") not in AUDIT_KINDS:
            raise InputError(f"audit kind must be one of {', '.join(AUDIT_KINDS)}")
        if event.get("outcome") not in AUDIT_OUTCOMES:
            raise InputError(f"audit outcome must be one of {', '.join(AUDIT_OUTCOMES)}")
        row = {name: event.get(name) for name in _AUDIT_FIELDS}
        row["time"] = _normalise_time(event.get("time") or datetime.now(UTC), "audit time")
        for name in _AUDIT_JSON:
            if row[name] is not None:
                try:
                    row[name] = json.dumps(row[name], sort_keys=True, default=str)
                except (TypeError, ValueError) as exc:
                    raise InputError(
                        f"audit field {name} is not JSON-serialisable: {exc}"
                    ) from None
        for name in ("subject", "issuer", "ip", "endpoint", "method", "granularity", "detail"):
            if row[name] is not None:
                row[name] = str(row[name])
        return row

    def events(
        self,
        since: str | datetime | None = None,
        limit: int = 1000,
        *,
        kind: str | None = None,
        subject: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events at or after ``since`` (oldest first), at most ``limit``; optionally only of
        one ``kind`` or ``subject``. JSON fields come back decoded; each event has its ``id``."""
        _check_number(limit, "limit", minimum=1, integer=True)
        where, args = [], []
        if since is not None:
            where.append("time >= ?")
            args.append(_normalise_time(since, "since"))
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if subject is not None:
            where.append("subject = ?")
            args.append(subject)
        sql = f"SELECT id, {', '.join(_AUDIT_FIELDS)} FROM beacon_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(sql, [*args, limit]).fetchall()
        out = []
        for row in rows:
            event = dict(zip(("id", *_AUDIT_FIELDS), row, strict=True))
            for name in _AUDIT_JSON:
                if event[name] is not None:
                    event[name] = json.loads(event[name])
            out.append(event)
        return out

    def close(self) -> None:
        self._db.close()
