"""Beacon security: tokens, visas, tiers, small counts, query budgets and the audit log.

The budget and audit tests run on a SQLite file and on PostgreSQL (the ``database`` fixture).

Every token and visa here is signed with keys made on the spot and verified against JWKS
documents served on 127.0.0.1 (see sandgrain.testing.auth).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from conftest import DATA
from jsonschema import Draft202012Validator

from sandgrain.beacon.access import clamp, granularity_for
from sandgrain.beacon.audit import AuditLog, audit_event
from sandgrain.beacon.budget import QueryBudget
from sandgrain.beacon.errors import AuthenticationError, BudgetExceededError
from sandgrain.beacon.policy import OidcIssuer, SecurityConfig, VisaIssuer
from sandgrain.beacon.protection import protect_count
from sandgrain.beacon.tokens import JwksCache, Principal, authenticate
from sandgrain.config import Settings
from sandgrain.errors import InputError, SandgrainError, StorageError
from sandgrain.jobs import JobStore
from sandgrain.testing.auth import (
    LoopbackIdP,
    ec_key,
    jwks,
    make_token,
    make_visa,
    rsa_key,
    unused_port,
)

IP = "203.0.113.7"


@pytest.fixture(scope="module")
def idp():
    with LoopbackIdP() as idp:
        yield idp


@pytest.fixture
def config(idp):
    return idp.config()


@pytest.fixture
def cache(config):
    return JwksCache.for_config(config)


def auth(token: str | None, config, cache) -> Principal:
    header = None if token is None else f"Bearer {token}"
    return authenticate(header, IP, config, cache)


def refused(token: str, config, cache) -> str:
    """The 401 message for a token that must be refused; it never contains the token."""
    with pytest.raises(AuthenticationError) as info:
        auth(token, config, cache)
    assert info.value.http_status == 401
    message = str(info.value)
    assert token not in message and "\n" not in message
    return message


# --------------------------------------------------------------------------------------------
# Access tokens
# --------------------------------------------------------------------------------------------


def test_no_header_is_anonymous(config, cache):
    for header in (None, "", "   "):
        p = authenticate(header, IP, config, cache)
        assert p == Principal(ip=IP)
        assert not p.authenticated and p.budget_key == f"ip:{IP}"


def test_valid_token_makes_an_authenticated_principal(idp, config, cache):
    p = auth(idp.token("alice"), config, cache)
    assert p.authenticated and p.subject == "alice" and p.issuer == idp.issuer and p.ip == IP
    assert p.granted_datasets == frozenset() and p.rejected_visas == ()
    assert p.budget_key == f"sub:{idp.issuer}|alice"


def test_es256_login_issuer(idp):
    key = ec_key("login-ec")
    uri = idp.server.set("/ec/jwks", jwks(key))
    issuer = idp.server.url("/ec")
    config = idp.config(oidc_issuers=[{"issuer": issuer, "audience": "b", "jwks_uri": uri}])
    token = make_token(key, issuer=issuer, audience="b", subject="eve")
    assert auth(token, config, JwksCache()).subject == "eve"


def test_expired_token_is_refused_but_leeway_applies(idp, config, cache):
    assert "expired" in refused(idp.token(expires_in=-120), config, cache)
    assert auth(idp.token(expires_in=-10), config, cache).authenticated  # within 30 s leeway
    strict = idp.config(leeway_s=0)
    assert "expired" in refused(idp.token(expires_in=-10), strict, cache)


def test_token_not_valid_yet_is_refused(idp, config, cache):
    assert "not valid yet" in refused(idp.token(not_before=time.time() + 600), config, cache)


def test_token_without_exp_is_refused(idp, config, cache):
    assert "'exp'" in refused(idp.token(expires_in=None), config, cache)


def test_token_without_sub_is_refused(idp, config, cache):
    assert "'sub'" in refused(idp.token(subject=None), config, cache)


def test_wrong_audience_is_refused(idp, config, cache):
    token = make_token(idp.login_key, issuer=idp.issuer, audience="another-service")
    assert "audience" in refused(token, config, cache)


def test_untrusted_issuer_is_refused(idp, config, cache):
    token = make_token(idp.login_key, issuer="https://evil.example.org", audience=idp.audience)
    assert "not trusted" in refused(token, config, cache)


def test_signature_by_another_key_is_refused(idp, config, cache):
    forger = rsa_key(kid=idp.login_key.kid)  # same kid, other key
    token = make_token(forger, issuer=idp.issuer, audience=idp.audience)
    assert "signature is invalid" in refused(token, config, cache)
    stranger = rsa_key()  # a kid the issuer never published
    token = make_token(stranger, issuer=idp.issuer, audience=idp.audience)
    assert "no key with the token's kid" in refused(token, config, cache)


def test_unsigned_token_is_refused(idp, config, cache):
    token = make_token(None, issuer=idp.issuer, audience=idp.audience, alg="none")
    assert token.endswith(".")  # really unsigned
    assert "algorithm 'none' is not accepted" in refused(token, config, cache)


def test_hmac_key_confusion_is_refused(idp, config, cache):
    # The classic attack: sign with HS256 using the issuer's public key as the HMAC secret.
    pem = idp.login_key.public_pem()
    token = make_token(
        None, issuer=idp.issuer, audience=idp.audience, hmac_secret=pem, kid=idp.login_key.kid
    )
    assert "algorithm 'HS256' is not accepted" in refused(token, config, cache)


@pytest.mark.parametrize("algorithms", [("none",), ("HS256",), ("RS256", "HS512")])
def test_config_refuses_symmetric_and_none_algorithms(algorithms):
    with pytest.raises(InputError, match="not allowed"):
        SecurityConfig(algorithms=algorithms)


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer not-a-jwt", "Token abc.d.e"]
)
def test_malformed_authorization_header_is_refused(header, config, cache):
    with pytest.raises(AuthenticationError) as info:
        authenticate(header, IP, config, cache)
    assert info.value.http_status == 401
    assert "dXNlcjpwYXNz" not in str(info.value) and "not-a-jwt" not in str(info.value)


def test_unknown_kid_refetches_the_jwks_once(idp):
    server = idp.server
    old, new = rsa_key("old"), rsa_key("new")
    uri = server.set("/rot/jwks", jwks(old))
    issuer = server.url("/rot")
    config = idp.config(oidc_issuers=[OidcIssuer(issuer, "b", uri)])
    cache = JwksCache(min_refetch_s=0)
    assert auth(make_token(old, issuer=issuer, audience="b"), config, cache).authenticated
    assert server.hits["/rot/jwks"] == 1
    assert auth(make_token(old, issuer=issuer, audience="b"), config, cache).authenticated
    assert server.hits["/rot/jwks"] == 1  # cached
    server.set("/rot/jwks", jwks(new))  # the issuer rotates its key
    assert auth(make_token(new, issuer=issuer, audience="b"), config, cache).subject == "user-1"
    assert server.hits["/rot/jwks"] == 2


def test_refetches_are_rate_limited_and_ttl_expires(idp):
    server = idp.server
    key = rsa_key("k1")
    uri = server.set("/rl/jwks", jwks(key))
    issuer = server.url("/rl")
    config = idp.config(oidc_issuers=[OidcIssuer(issuer, "b", uri)])
    now = [1000.0]
    cache = JwksCache(ttl_s=300, min_refetch_s=10, clock=lambda: now[0])
    assert auth(make_token(key, issuer=issuer, audience="b"), config, cache).authenticated
    bogus = make_token(rsa_key("made-up"), issuer=issuer, audience="b")
    for _ in range(5):
        now[0] += 1
        refused(bogus, config, cache)
    assert server.hits["/rl/jwks"] == 1  # made-up kids within 10 s do not hammer the issuer
    now[0] += 10
    refused(bogus, config, cache)
    assert server.hits["/rl/jwks"] == 2
    now[0] += 300  # TTL over: the next token fetches the keys again
    assert auth(make_token(key, issuer=issuer, audience="b"), config, cache).authenticated
    assert server.hits["/rl/jwks"] == 3


def test_jwks_server_down_is_a_quick_clear_401(idp):
    key = rsa_key()
    uri = f"http://127.0.0.1:{unused_port()}/jwks"
    config = idp.config(oidc_issuers=[OidcIssuer("https://down.example", "b", uri)])
    token = make_token(key, issuer="https://down.example", audience="b")
    started = time.monotonic()
    message = refused(token, config, JwksCache.for_config(config))
    assert time.monotonic() - started < 5
    assert message.startswith("cannot fetch the signing keys of issuer https://down.example")


def test_hanging_jwks_server_times_out(idp):
    key = rsa_key()
    uri = idp.server.set("/slow/jwks", jwks(key))
    idp.server.delay("/slow/jwks", 3)
    config = idp.config(
        oidc_issuers=[OidcIssuer("https://slow.example", "b", uri)], http_timeout_s=0.5
    )
    token = make_token(key, issuer="https://slow.example", audience="b")
    started = time.monotonic()
    message = refused(token, config, JwksCache.for_config(config))
    assert time.monotonic() - started < 2.5
    assert "timed out after 0.5 s" in message


def test_missing_jwks_document_is_a_401(idp):
    key = rsa_key()
    uri = idp.server.url("/nothing-here/jwks")
    config = idp.config(oidc_issuers=[OidcIssuer("https://gone.example", "b", uri)])
    token = make_token(key, issuer="https://gone.example", audience="b")
    assert "HTTP 404" in refused(token, config, JwksCache())


# --------------------------------------------------------------------------------------------
# Passport visas
# --------------------------------------------------------------------------------------------


def granted(idp, config, cache, *visas, subject="alice"):
    p = auth(idp.token(subject, visas=list(visas)), config, cache)
    return p.granted_datasets, p.rejected_visas


def test_valid_visa_grants_its_dataset(idp, config, cache):
    p = auth(idp.token("alice", datasets=["ds-c", "ds-d"]), config, cache)
    assert p.granted_datasets == {"ds-c", "ds-d"} and p.rejected_visas == ()


def test_unsigned_visa_grants_nothing(idp, config, cache):
    visa = idp.visa("alice", "ds-c", alg="none")
    grants, rejected = granted(idp, config, cache, visa)
    assert grants == set() and "algorithm 'none' is not accepted" in rejected[0]


def test_hmac_visa_with_public_key_grants_nothing(idp, config, cache):
    pem = idp.visa_key.public_pem()
    visa = idp.visa("alice", "ds-c", hmac_secret=pem, kid=idp.visa_key.kid)
    grants, rejected = granted(idp, config, cache, visa)
    assert grants == set() and "HS256" in rejected[0]


def test_visa_from_untrusted_issuer_grants_nothing(idp, config, cache):
    rogue = ec_key("rogue")
    rogue_issuer = idp.server.url("/rogue")
    idp.server.set("/rogue/jwks", jwks(rogue))  # it does publish keys; we just don't trust it
    visa = make_visa(rogue, issuer=rogue_issuer, subject="alice", value="ds-c")
    grants, rejected = granted(idp, config, cache, visa)
    assert grants == set() and "not trusted" in rejected[0]


def test_visa_forged_in_trusted_issuers_name_grants_nothing(idp, config, cache):
    forger = ec_key(kid=idp.visa_key.kid)
    visa = make_visa(forger, issuer=idp.visa_issuer, subject="alice", value="ds-c")
    grants, rejected = granted(idp, config, cache, visa)
    assert grants == set() and "signature is invalid" in rejected[0]


def test_visa_of_another_subject_grants_nothing(idp, config, cache):
    grants, rejected = granted(idp, config, cache, idp.visa("bob", "ds-c"))
    assert grants == set() and "subject" in rejected[0]


def test_expired_visa_grants_nothing(idp, config, cache):
    grants, rejected = granted(idp, config, cache, idp.visa("alice", "ds-c", expires_in=-3600))
    assert grants == set() and "expired" in rejected[0]


def test_visa_without_exp_grants_nothing(idp, config, cache):
    grants, rejected = granted(idp, config, cache, idp.visa("alice", "ds-c", expires_in=None))
    assert grants == set() and "'exp'" in rejected[0]


def test_visa_of_another_type_grants_nothing(idp, config, cache):
    visa = idp.visa("alice", "faculty@uni.example", visa_type="AffiliationAndRole")
    grants, rejected = granted(idp, config, cache, visa)
    assert grants == set() and "AffiliationAndRole" in rejected[0]


def test_visa_with_conditions_or_future_assertion_grants_nothing(idp, config, cache):
    conditional = idp.visa("alice", "ds-c", conditions=[[{"type": "AffiliationAndRole"}]])
    future = idp.visa("alice", "ds-c", asserted=time.time() + 3600)
    grants, rejected = granted(idp, config, cache, conditional, future)
    assert grants == set()
    assert "conditions" in rejected[0] and "future" in rejected[1]


def test_visa_jku_must_be_the_configured_jwks(idp, config, cache):
    good = idp.visa("alice", "ds-c", jku=idp.visa_jwks_uri)
    bad = idp.visa("alice", "ds-d", jku=idp.server.url("/rogue/jwks"))
    grants, rejected = granted(idp, config, cache, good, bad)
    assert grants == {"ds-c"} and "jku" in rejected[0]


def test_bad_visas_do_not_spoil_good_ones(idp, config, cache):
    visas = [idp.visa("bob", "ds-x"), "not a jwt", idp.visa("alice", "ds-c")]
    grants, rejected = granted(idp, config, cache, *visas)
    assert grants == {"ds-c"}
    assert [r.split(":")[0] for r in rejected] == ["visa 0", "visa 1"]


def test_passport_claim_must_be_a_list(idp, config, cache):
    token = idp.token("alice", extra={"ga4gh_passport_v1": idp.visa("alice", "ds-c")})
    p = auth(token, config, cache)
    assert p.authenticated and p.granted_datasets == set()
    assert p.rejected_visas == ("ga4gh_passport_v1 is not a list of visas",)


def test_visa_values_map_to_datasets(idp, cache):
    config = idp.config(visa_values={"ds-egad": ["https://ega.example/datasets/EGAD1"]})
    grants, _ = granted(idp, config, cache, idp.visa("alice", "https://ega.example/datasets/EGAD1"))
    assert "ds-egad" in grants
    # A mapped dataset is granted only by its listed values, not by its bare id.
    grants, _ = granted(idp, config, cache, idp.visa("alice", "ds-egad"))
    assert "ds-egad" not in grants


# --------------------------------------------------------------------------------------------
# Tiers and granularity
# --------------------------------------------------------------------------------------------


def test_granularity_matrix(idp, config, cache):
    anonymous = auth(None, config, cache)
    registered = auth(idp.token("alice"), config, cache)
    holder = auth(idp.token("alice", datasets=["ds"]), config, cache)
    other = auth(idp.token("alice", datasets=["another"]), config, cache)
    expected = {
        "anonymous": {"public": "count", "registered": None, "controlled": None},
        "registered": {"public": "count", "registered": "count", "controlled": None},
        "holder": {"public": "count", "registered": "count", "controlled": "record"},
        "other": {"public": "count", "registered": "count", "controlled": None},
    }
    people = {"anonymous": anonymous, "registered": registered, "holder": holder, "other": other}
    got = {
        who: {tier: granularity_for(p, "ds", tier, config) for tier in expected[who]}
        for who, p in people.items()
    }
    assert got == expected


def test_max_granularity_is_configurable(idp, cache):
    config = idp.config(max_granularity={"public": "boolean", "controlled": "count"})
    holder = auth(idp.token("alice", datasets=["ds"]), config, cache)
    assert granularity_for(holder, "ds", "public", config) == "boolean"
    assert granularity_for(holder, "ds", "registered", config) == "count"  # default kept
    assert granularity_for(holder, "ds", "controlled", config) == "count"


def test_unauthenticated_principal_with_grants_sees_no_controlled_data(config):
    # Only authenticate() makes principals; one built by hand without authentication gets nothing.
    forged = Principal(ip=IP, granted_datasets=frozenset({"ds"}))
    assert granularity_for(forged, "ds", "controlled", config) is None


def test_clamp():
    assert clamp("record", "count") == "count"
    assert clamp("boolean", "record") == "boolean"
    assert clamp("count", "count") == "count"
    with pytest.raises(InputError):
        clamp("aggregated", "record")
    with pytest.raises(InputError):
        granularity_for(Principal(), "ds", "secret", SecurityConfig())


# --------------------------------------------------------------------------------------------
# Small counts
# --------------------------------------------------------------------------------------------


def test_protect_count_on_by_default_and_can_be_turned_off():
    config = SecurityConfig()
    assert [protect_count(n, config)[0] for n in (0, 1, 2, 7, 1000)] == [0, 5, 5, 7, 1000]
    off = SecurityConfig(min_count=0)
    assert [protect_count(n, off)[0] for n in (0, 1, 2, 7, 1000)] == [0, 1, 2, 7, 1000]
    assert protect_count(1, off)[1] == {"countPrecision": "exact"}


def test_protect_count_threshold():
    config = SecurityConfig(min_count=5)
    assert protect_count(0, config) == (0, {"countPrecision": "exact"})
    for n in (1, 4):
        assert protect_count(n, config) == (
            5,
            {"countAdjustedTo": [5], "countPrecision": "imprecise"},
        )
    assert protect_count(5, config) == (5, {"countPrecision": "exact"})
    assert protect_count(6, config) == (6, {"countPrecision": "exact"})


def test_protect_count_zero_and_hide():
    zero = SecurityConfig(min_count=5, small_counts="zero", count_precision="imprecise")
    hide = SecurityConfig(min_count=5, small_counts="hide")
    adjusted = {"countAdjustedTo": [5], "countPrecision": "imprecise"}
    assert protect_count(3, zero) == (0, adjusted)
    assert protect_count(3, hide) == (None, adjusted)
    assert protect_count(9, hide) == (9, {"countPrecision": "exact"})


def test_protect_count_rounded():
    config = SecurityConfig(min_count=5, count_precision="rounded", round_to=10)
    assert protect_count(3, config)[0] == 5
    assert protect_count(23, config) == (30, {"countAdjustedTo": [30], "countPrecision": "rounded"})
    # A count that is already a multiple is still marked rounded: the flag must not leak.
    assert protect_count(30, config) == (30, {"countAdjustedTo": [30], "countPrecision": "rounded"})
    assert protect_count(31, config)[0] == 40


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_protect_count_refuses_non_counts(bad):
    with pytest.raises(InputError):
        protect_count(bad, SecurityConfig(min_count=5))


def test_protected_counts_fit_the_beacon_resultset_schema():
    schema = json.loads(
        (
            DATA / "beacon-v2-schemas/framework/json/responses/sections/beaconResultsets.json"
        ).read_text()
    )
    reported, info = protect_count(2, SecurityConfig(min_count=5))
    resultset = {"id": "ds", "setType": "dataset", "exists": True, "results": []}
    document = {"resultSets": [{**resultset, "resultsCount": reported, **info}]}
    assert list(Draft202012Validator(schema).iter_errors(document)) == []
    hidden, _ = protect_count(2, SecurityConfig(min_count=5, small_counts="hide"))
    document = {"resultSets": [{**resultset, "resultsCount": hidden, **info}]}
    assert list(Draft202012Validator(schema).iter_errors(document))  # None is not a count


# --------------------------------------------------------------------------------------------
# Query budget
# --------------------------------------------------------------------------------------------


class Clock:
    def __init__(self, t: float = 1_700_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_budget_allows_n_then_429(database):
    clock = Clock()
    budget = QueryBudget(database, limit=3, window_s=60, clock=clock)
    assert [budget.charge("ip:1.2.3.4") for _ in range(3)] == [2, 1, 0]
    with pytest.raises(BudgetExceededError) as info:
        budget.charge("ip:1.2.3.4")
    error = info.value
    assert isinstance(error, SandgrainError) and error.http_status == 429
    assert error.retry_after_s == 60
    assert "3 genomic queries per 60 s" in str(error) and "(in 60 s)" in str(error)
    assert "2023-11-14T22:14:20Z" in str(error)  # clock + 60 s
    assert budget.remaining("ip:1.2.3.4") == 0


def test_budget_is_per_user_and_per_ip(database, idp, config, cache):
    budget = QueryBudget(database, limit=2, window_s=60, clock=Clock())
    anonymous = auth(None, config, cache)
    alice = auth(idp.token("alice"), config, cache)  # same IP address as the anonymous caller
    bob = auth(idp.token("bob"), config, cache)
    assert len({anonymous.budget_key, alice.budget_key, bob.budget_key}) == 3
    for _ in range(2):
        budget.charge(anonymous.budget_key)
    with pytest.raises(BudgetExceededError):
        budget.charge(anonymous.budget_key)
    assert budget.charge(alice.budget_key) == 1
    assert budget.charge(bob.budget_key) == 1
    assert budget.charge(Principal(ip="198.51.100.1").budget_key) == 1


def test_budget_window_slides(database):
    clock = Clock(1000.0)
    budget = QueryBudget(database, limit=3, window_s=60, clock=clock)
    for t in (1000, 1010, 1020):
        clock.t = t
        budget.charge("u")
    clock.t = 1059
    with pytest.raises(BudgetExceededError) as info:
        budget.charge("u")
    assert info.value.retry_after_s == 1
    clock.t = 1060.5  # the charge at 1000 has aged out: one query free again, not three
    assert budget.charge("u") == 0
    clock.t = 1065
    with pytest.raises(BudgetExceededError) as info:
        budget.charge("u")
    assert info.value.retry_after_s == 5  # the charge at 1010 frees up at 1070
    clock.t = 2000  # a full window later everything is free
    assert budget.remaining("u") == 3 and budget.charge("u") == 2


def test_budget_is_shared_between_instances_and_threads(database):
    # Separate instances have separate connections, as separate processes would.
    budgets = [QueryBudget(database, limit=50, window_s=60) for _ in range(4)]
    allowed, refused_count = [], []

    def spend(budget):
        for _ in range(20):
            try:
                budget.charge("u")
                allowed.append(1)
            except BudgetExceededError:
                refused_count.append(1)

    threads = [threading.Thread(target=spend, args=(budgets[i % 4],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 50 and len(refused_count) == 160 - 50


def test_budget_limit_zero_is_unlimited(database):
    budget = QueryBudget(database, limit=0, window_s=60)
    assert all(budget.charge("u") == -1 for _ in range(100))


def test_budget_and_audit_use_the_metadata_database(tmp_path, database):
    config = SecurityConfig(budget_limit=1, budget_window_s=10)
    settings = Settings(home=str(tmp_path / "home"), database=database)
    budget = QueryBudget.from_config(config, settings)
    budget.charge("u")
    with pytest.raises(BudgetExceededError):
        budget.charge("u")
    AuditLog.from_config(config, settings).record({"kind": "admin", "outcome": "ok"})
    # one database holds jobs, budgets and audit rows
    tables = JobStore(settings.database_url).db.query(
        "SELECT (SELECT COUNT(*) FROM beacon_budget), (SELECT COUNT(*) FROM beacon_audit), "
        "(SELECT COUNT(*) FROM jobs)"
    )
    assert tuple(tables[0]) == (1, 1, 0)


def test_budget_and_audit_default_to_the_sqlite_file_under_home(tmp_path):
    settings = Settings(home=str(tmp_path))
    QueryBudget.from_config(SecurityConfig(), settings).charge("u")
    AuditLog.from_config(SecurityConfig(), settings).record({"kind": "admin", "outcome": "ok"})
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == ["sandgrain.sqlite"]
    own = SecurityConfig(audit_db=str(tmp_path / "audit.sqlite"))
    assert own.database_url(settings) == str(tmp_path / "audit.sqlite")


# --------------------------------------------------------------------------------------------
# Audit log
# --------------------------------------------------------------------------------------------


def test_audit_records_are_written_and_read_back(database, idp, config, cache):
    log = AuditLog(database)
    alice = auth(idp.token("alice", datasets=["ds"]), config, cache)
    query = {"referenceName": "1", "start": [10176], "alternateBases": "C"}
    first = log.record(
        audit_event(
            alice,
            kind="query",
            endpoint="/api/beacon/g_variants",
            method="POST",
            query=query,
            datasets=["ds"],
            granularity="count",
            counts={"ds": 5},
            outcome="ok",
        )
    )
    log.record({"kind": "query", "outcome": "denied", "ip": IP, "detail": "budget"})
    log.record({"kind": "revoke", "outcome": "ok", "user": "admin", "query": {"id": "NA1"}})
    assert isinstance(first, int)
    # A new instance (as after a restart) sees every event: each was committed.
    events = AuditLog(database).events()
    assert [e["kind"] for e in events] == ["query", "query", "revoke"]
    e = events[0]
    assert e["subject"] == "alice" and e["issuer"] == idp.issuer and e["ip"] == IP
    assert e["query"] == query and e["datasets"] == ["ds"] and e["counts"] == {"ds": 5}
    assert e["granularity"] == "count" and e["method"] == "POST" and e["outcome"] == "ok"
    assert e["time"].endswith("Z") and e["time"] <= events[-1]["time"]
    assert events[2]["subject"] == "admin"
    assert [x["kind"] for x in log.events(kind="revoke")] == ["revoke"]
    assert [x["id"] for x in log.events(subject="alice")] == [first]
    assert len(log.events(limit=2)) == 2


def test_audit_since_filter_and_time_normalisation(database):
    log = AuditLog(database)
    log.record({"kind": "admin", "outcome": "ok", "time": "2024-01-01T00:00:00+02:00"})
    log.record({"kind": "admin", "outcome": "ok", "time": "2024-06-01T12:00:00Z"})
    times = [e["time"] for e in log.events()]
    assert times == ["2023-12-31T22:00:00.000000Z", "2024-06-01T12:00:00.000000Z"]
    assert [e["time"] for e in log.events(since="2024-01-01")] == times[1:]


@pytest.mark.parametrize(
    "event",
    [
        {"kind": "query"},  # no outcome
        {"kind": "delete", "outcome": "ok"},
        {"kind": "query", "outcome": "maybe"},
        {"kind": "query", "outcome": "ok", "statuss": 200},  # a typo must not pass silently
        {"kind": "query", "outcome": "ok", "time": "yesterday"},
    ],
)
def test_malformed_audit_events_are_refused(database, event):
    with pytest.raises(InputError):
        AuditLog(database).record(event)


def test_audit_failures_do_not_reach_the_request_when_failing_open(database, monkeypatch, caplog):
    log = AuditLog(database, fail_closed=False)

    def broken(**kwargs):
        raise StorageError("cannot commit to database x: disk I/O error")

    monkeypatch.setattr(log._db, "transaction", broken)
    assert log.record({"kind": "query", "outcome": "ok"}) is None
    assert "could not write a beacon audit event" in caplog.text


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def test_config_defaults(tmp_path):
    config = SecurityConfig()
    assert config.max_granularity == {
        "public": "count",
        "registered": "count",  # record level (carrier ids) is an explicit choice
        "controlled": "record",
    }
    assert config.algorithms == ("RS256", "ES256") and config.leeway_s == 30
    assert config.min_count == 5 and config.budget_limit == 1000
    assert config.group_tracking == "global" and config.rare_hidden_tiers == ("public",)
    assert config.rare_min_carriers == 5 and config.risk_budget == 2000
    assert config.budget_window_s == 3600
    home = Settings(home=str(tmp_path))
    assert config.database_url(home) == home.database_url
    assert home.database_url == f"sqlite:///{tmp_path}/sandgrain.sqlite"


EXAMPLE = {
    "max_granularity": {"public": "boolean"},
    "oidc_issuers": [
        {
            "issuer": "https://login.example.org",
            "audience": "beacon",
            "jwks_uri": "https://login.example.org/jwks",
        }
    ],
    "visa_issuers": [{"issuer": "https://ega.example", "jwks_uri": "https://ega.example/jwks"}],
    "visa_values": {"ds1": ["https://ega.example/EGAD1"]},
    "min_count": 5,
    "count_precision": "rounded",
    "round_to": 10,
    "budget_limit": 100,
    "budget_window_s": 600,
    "audit_db": "/var/lib/sandgrain/audit.sqlite",
}

EXAMPLE_TOML = """
min_count = 5
count_precision = "rounded"
round_to = 10
budget_limit = 100
budget_window_s = 600
audit_db = "/var/lib/sandgrain/audit.sqlite"
visa_values = { ds1 = ["https://ega.example/EGAD1"] }

[max_granularity]
public = "boolean"

[[oidc_issuers]]
issuer = "https://login.example.org"
audience = "beacon"
jwks_uri = "https://login.example.org/jwks"

[[visa_issuers]]
issuer = "https://ega.example"
jwks_uri = "https://ega.example/jwks"
"""


def test_config_from_json_toml_and_env(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(EXAMPLE))
    (tmp_path / "c.toml").write_text(EXAMPLE_TOML)
    from_json = SecurityConfig.from_file(tmp_path / "c.json")
    from_toml = SecurityConfig.from_file(tmp_path / "c.toml")
    assert from_json == from_toml
    assert from_json.max_granularity["public"] == "boolean"
    assert from_json.max_granularity["controlled"] == "record"
    assert from_json.oidc_issuers[0] == OidcIssuer(
        "https://login.example.org", "beacon", "https://login.example.org/jwks"
    )
    assert from_json.visa_issuers[0] == VisaIssuer(
        "https://ega.example", "https://ega.example/jwks"
    )
    assert "ds1" in from_json.datasets_granted_by("https://ega.example/EGAD1")
    assert "ds1" not in from_json.datasets_granted_by("ds1")
    assert from_json.database_url() == "/var/lib/sandgrain/audit.sqlite"
    env = {"SANDGRAIN_BEACON_CONFIG": str(tmp_path / "c.toml")}
    assert SecurityConfig.from_settings(Settings.from_env(env)) == from_toml
    assert SecurityConfig.from_settings(Settings.from_env({})) == SecurityConfig()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"min_cuont": 5}, "unknown beacon security setting"),
        ({"max_granularity": {"public": "everything"}}, "max_granularity"),
        ({"max_granularity": {"secret": "count"}}, "unknown tier"),
        ({"count_precision": "fuzzy"}, "count_precision"),
        ({"count_precision": "imprecise", "min_count": 0}, "needs min_count"),
        ({"min_count": -1}, "min_count"),
        ({"budget_limit": 1.5}, "budget_limit"),
        ({"oidc_issuers": [{"issuer": "x", "audience": "a"}]}, "exactly the keys"),
        (
            {"oidc_issuers": [{"issuer": "x", "audience": "a", "jwks_uri": "http://x.org/j"}]},
            "https://",
        ),
        ({"visa_issuers": [{"issuer": "x", "jwks_uri": "file:///etc/passwd"}]}, "https://"),
    ],
)
def test_config_errors_are_clear(tmp_path, change, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({**EXAMPLE, **change}))
    with pytest.raises(InputError, match=message):
        SecurityConfig.from_file(path)


def test_config_file_problems(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        SecurityConfig.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.toml"
    bad.write_text("min_count = ")
    with pytest.raises(InputError, match="not valid"):
        SecurityConfig.from_file(bad)
    assert Path(bad).exists()
