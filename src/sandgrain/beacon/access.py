"""Who may see which dataset, and how much of it.

Every dataset has an access tier (``public``, ``registered``, ``controlled``); the security
config's ``max_granularity`` says how much a dataset of each tier may reveal. A request is
answered at the lowest of what was asked and what each dataset it reads allows, so a dataset
never reveals more than its tier permits. Anything about one named individual is
individual-level data and needs record-level access, whatever granularity is asked for; and
filters may not narrow a dataset below ``min_count`` individuals for a caller who may not see
individuals, since the answer would then be theirs (Shringarpure & Bustamante 2015).

References
----------
- Shringarpure SS, Bustamante CD (2015). Privacy risks from genomic data-sharing beacons.
  Am J Hum Genet 97(5):631-646.
- GA4GH Passport specification v1.2 (``ControlledAccessGrants`` visas grant controlled
  datasets).
"""

from __future__ import annotations

from sandgrain.errors import InputError, NotFoundError

from .errors import AuthenticationError, ForbiddenError
from .policy import TIERS, SecurityConfig, check_granularity_setting
from .query import on_current_version, subset_for
from .request import GRANULARITIES
from .store import BeaconCatalog, BeaconDataset
from .tokens import Principal

#: A dataset the request reads, with the most it may reveal to this caller.
Visible = list[tuple[BeaconDataset, str]]


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
    check_granularity_setting(requested, "requested granularity")
    check_granularity_setting(allowed, "allowed granularity")
    return min(requested, allowed, key=GRANULARITIES.index)


def visible(
    catalog: BeaconCatalog,
    principal: Principal,
    dataset_ids: list[str] | None,
    config: SecurityConfig,
) -> Visible:
    """The datasets a request reads, each with the most it may reveal.

    With ``dataset_ids`` (the request named datasets), each must exist (404) and be visible to
    the caller (401 when a token would help, 403 when it does not); without, every dataset the
    caller may see.
    """
    datasets = catalog.datasets()
    if dataset_ids is None:
        out = []
        for ds in datasets:
            allowed = granularity_for(principal, ds.id, ds.access, config)
            if allowed is not None:
                out.append((ds, allowed))
        return out
    by_id = {d.id: d for d in datasets}
    out = []
    for ident in dataset_ids:
        ds = by_id.get(ident)
        if ds is None:
            raise NotFoundError(f"no dataset {ident!r}")
        allowed = granularity_for(principal, ds.id, ds.access, config)
        if allowed is None:
            if not principal.authenticated:
                raise AuthenticationError(f"dataset {ident} is {ds.access}: send a bearer token")
            raise ForbiddenError(f"you have no access to dataset {ident} ({ds.access})")
        out.append((ds, allowed))
    return out


def record_level(seen: Visible, what: str) -> Visible:
    """Only the datasets this caller may read at record level: anything about one named
    individual is individual-level data, whatever granularity is asked for."""
    kept = [(ds, g) for ds, g in seen if g == "record"]
    if seen and not kept:
        raise ForbiddenError(f"{what} needs record-level access to the dataset")
    return kept


def check_group_sizes(filters: list[str], seen: Visible, config: SecurityConfig) -> None:
    """Filters must not narrow a dataset below ``min_count`` individuals for a caller who may
    not see individuals (Shringarpure & Bustamante 2015): the answer would be theirs."""
    minimum = config.min_count
    if not minimum or not filters:
        return
    for ds, allowed in seen:
        if allowed == "record":
            continue
        group = on_current_version(ds, lambda ds: subset_for(ds, filters))
        size = int(group.mask.sum()) if group.mask is not None else len(ds.samples)
        if 0 < size < minimum:
            raise ForbiddenError(
                f"the filters match fewer than {minimum} individuals of dataset {ds.id}; "
                "widen them"
            )


def granted(requested: str, seen: Visible) -> str:
    """The granularity of the answer: the lowest of ``requested`` and what each dataset
    allows."""
    answered = requested
    for _, allowed in seen:
        answered = clamp(answered, allowed)
    return answered


def is_admin(principal: Principal, config: SecurityConfig) -> bool:
    """Whether ``principal`` may use the admin API: ``admins`` lists ``issuer|subject`` (or a
    bare subject when one issuer is trusted)."""
    if not principal.authenticated or not principal.subject:
        return False
    admins = set(config.admins)
    if f"{principal.issuer}|{principal.subject}" in admins:
        return True
    return len(config.oidc_issuers) == 1 and principal.subject in admins
