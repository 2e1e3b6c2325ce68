"""The Beacon's security and privacy settings (:class:`SecurityConfig`).

Who may log in (trusted OIDC issuers), whose visas count (trusted GA4GH visa issuers), which
signature algorithms are accepted, how much each access tier may reveal, how small counts are
reported, the query budget, where the audit log lives, and who the admins are. Read from a JSON
or TOML file named by ``SANDGRAIN_BEACON_CONFIG`` (:meth:`SecurityConfig.from_settings`); every
value is checked when the config is built, and an unknown key is an error, never ignored.

References
----------
- GA4GH Passport specification v1.2 and the GA4GH AAI OIDC profile (2022).
- RFC 8725 (JWT best current practice: explicit algorithm allow-lists, which defeat the "none"
  and HMAC key-confusion attacks).
- Beacon v2.2.0 ``countPrecision`` / ``countAdjustedTo`` (ga4gh-beacon/beacon-v2 PR #220, #223).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sandgrain.config import Settings
from sandgrain.errors import InputError

from .network import RemoteBeacon, remote_beacons
from .request import GRANULARITIES
from .settings import BeaconSettings

#: Dataset access tiers.
TIERS = ("public", "registered", "controlled")
#: Signature algorithms that may ever be allowed: asymmetric only. ``none`` and the HMAC family
#: (HS256…) are absent on purpose: with HMAC a public key becomes the secret (key confusion).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


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


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
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
    if parts.scheme == "http" and is_loopback(parts.hostname):
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
        "registered": "count", "controlled": "record"}`` by default (record level, which lists
        carriers, is an explicit choice for registered data); tiers left out keep their
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
        Counts of *individuals* from 1 to ``min_count - 1`` are never reported exactly (default
        5; 0 = off); see :func:`protect_count`. Filtered groups smaller than this, or that
        would isolate fewer people together with groups answered before, are refused.
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
        A database of its own for the audit log and the query budget: a SQLite file or a
        database URL (default: the metadata database, ``Settings.database_url``; see
        :meth:`database_url`).
    jwks_ttl_s
        How long a fetched JWKS is trusted before it is fetched again, seconds (default 300).
    http_timeout_s
        Timeout of one JWKS fetch, seconds (default 5): an unreachable issuer costs a request at
        most this long, then 401.
    group_tracking
        The differencing defence (:mod:`sandgrain.beacon.groups`): ``global`` (default: the
        answered filter groups of a dataset are shared by all callers, so colluding callers
        cannot combine answers), ``requester`` (one set per caller) or ``off``. Needs
        ``min_count`` ≥ 2.
    max_tracked_groups
        Filter sets remembered per dataset (default 10,000); past it new ones are refused.
    rare_hidden_tiers
        Access tiers whose rare alleles are answered as absent to callers without record-level
        access (default ``["public"]``; :mod:`sandgrain.beacon.risk`).
    rare_min_carriers
        An allele carried by fewer individuals of the answering group is rare (default 5;
        0 = off).
    rare_allele_frequency
        An allele below this frequency in the answering group is rare too (default 0 = off).
    risk_budget
        Risk a caller may spend per ``budget_window_s`` (default 2,000; 0 = unlimited): a query
        costs 1, an answer showing a rare allele more (:func:`sandgrain.beacon.risk.query_cost`).
    rare_cost_frequency
        Shown alleles below this frequency cost more than 1 (default 0.01).
    max_query_cost
        The most one query costs (default 16).
    rare_query_limit
        Queries touching rare alleles (shown or hidden) a caller may make per window before all
        its genomic queries are refused (default 200; 0 = unlimited).
    admins
        Token subjects (``sub`` of a valid access token) allowed to use the admin API
        (``/api/beacon/admin/…``: revoke and restore consent). Empty: no admin API.
    stores
        More stores to answer from besides the main one (federation): a list of
        ``{"url": "s3://bucket/prefix", "storage_options": {…}}``.
    network
        Remote Beacons this one also asks (Beacon Network aggregator mode,
        :mod:`sandgrain.beacon.network`): a list of ``{"url", "name", "timeout_s",
        "forward_token", "max_bytes"}`` (:class:`~sandgrain.beacon.network.RemoteBeacon`; only
        ``url`` is required). Empty (default): no network.
    """

    max_granularity: Mapping[str, str] = field(default_factory=lambda: dict(_DEFAULT_MAX))
    oidc_issuers: tuple[OidcIssuer, ...] = ()
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_s: float = 30
    visa_issuers: tuple[VisaIssuer, ...] = ()
    visa_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    min_count: int = 5
    count_precision: Literal["exact", "imprecise", "rounded"] = "exact"
    round_to: int = 10
    small_counts: Literal["threshold", "zero", "hide"] = "threshold"
    budget_limit: int = 1000
    budget_window_s: float = 3600
    audit_db: str | None = None
    jwks_ttl_s: float = 300
    http_timeout_s: float = 5
    group_tracking: Literal["global", "requester", "off"] = "global"
    max_tracked_groups: int = 10_000
    rare_hidden_tiers: tuple[str, ...] = ("public",)
    rare_min_carriers: int = 5
    rare_allele_frequency: float = 0.0
    risk_budget: float = 2000
    rare_cost_frequency: float = 0.01
    max_query_cost: int = 16
    rare_query_limit: int = 200
    admins: tuple[str, ...] = ()
    stores: tuple[Mapping[str, Any], ...] = ()
    network: tuple[RemoteBeacon, ...] = ()

    def __post_init__(self) -> None:
        # Normalise containers that came from JSON/TOML (lists, dicts) into immutable forms.
        set_ = object.__setattr__
        set_(self, "oidc_issuers", tuple(_as_issuer(i, OidcIssuer) for i in self.oidc_issuers))
        set_(self, "visa_issuers", tuple(_as_issuer(i, VisaIssuer) for i in self.visa_issuers))
        set_(self, "algorithms", tuple(self.algorithms))
        set_(self, "admins", tuple(str(a) for a in self.admins))
        if isinstance(self.rare_hidden_tiers, str):
            set_(self, "rare_hidden_tiers", (self.rare_hidden_tiers,))
        set_(self, "rare_hidden_tiers", tuple(self.rare_hidden_tiers))
        for spec in self.stores:
            if not isinstance(spec, Mapping) or not spec.get("url"):
                raise InputError("each entry of stores needs a url")
        set_(self, "stores", tuple(dict(spec) for spec in self.stores))
        set_(self, "network", remote_beacons(self.network))
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
            check_granularity_setting(gran, f"max_granularity[{tier!r}]")
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
        for tier in self.rare_hidden_tiers:
            if tier not in TIERS:
                raise InputError(
                    f"rare_hidden_tiers: unknown tier {tier!r}; use {', '.join(TIERS)}"
                )
        if self.group_tracking not in ("global", "requester", "off"):
            raise InputError(
                f"group_tracking must be global, requester or off, not {self.group_tracking!r}"
            )
        _check_number(self.max_tracked_groups, "max_tracked_groups", minimum=1, integer=True)
        _check_number(self.rare_min_carriers, "rare_min_carriers", minimum=0, integer=True)
        _check_number(self.risk_budget, "risk_budget", minimum=0)
        _check_number(self.max_query_cost, "max_query_cost", minimum=1, integer=True)
        _check_number(self.rare_query_limit, "rare_query_limit", minimum=0, integer=True)
        for name in ("rare_allele_frequency", "rare_cost_frequency"):
            value = getattr(self, name)
            _check_number(value, name, minimum=0)
            if value >= 1:
                raise InputError(f"{name} must be below 1, not {value!r}")
        if self.risk_budget and self.risk_budget < self.max_query_cost:
            raise InputError("risk_budget must be at least max_query_cost (or 0: unlimited)")
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
    def from_settings(cls, settings: Settings) -> SecurityConfig:
        """The file named by ``SANDGRAIN_BEACON_CONFIG`` (the Beacon's settings section);
        defaults when it is unset."""
        path = settings.section(BeaconSettings).config
        return cls.from_file(path) if path else cls()

    # -- derived ------------------------------------------------------------------------------

    def database_url(self, settings: Settings | None = None) -> str:
        """The audit/budget database: ``audit_db``, or the settings' metadata database."""
        if self.audit_db and "://" in self.audit_db:
            return self.audit_db
        if self.audit_db:
            return str(Path(self.audit_db).expanduser())
        return (settings or Settings.from_env()).database_url

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


_DEFAULT_MAX = {"public": "count", "registered": "count", "controlled": "record"}


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


def check_granularity_setting(value: Any, what: str = "granularity") -> str:
    """``value`` if it is a granularity; :class:`InputError` naming the setting ``what``."""
    if value not in GRANULARITIES:
        raise InputError(f"{what} must be one of {', '.join(GRANULARITIES)}, not {value!r}")
    return value
