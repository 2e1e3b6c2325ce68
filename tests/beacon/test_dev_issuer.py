"""``sandgrain beacon dev-issuer``: a development issuer on loopback, end to end.

The real CLI (the installed console script, in subprocesses) makes an issuer, serves its JWKS on
a free loopback port and prints tokens; a Beacon app built from settings whose
``SANDGRAIN_BEACON_CONFIG`` is the generated config answers them: anonymous → public only, a
plain token → registered too, a token whose passport grants ``tier-controlled`` → that dataset
at record level, a token signed by another key → 401.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from beacon_fixtures import BASE, body, check, records, sets
from conftest import DATA
from fastapi.testclient import TestClient

from sandgrain.beacon import dev_issuer
from sandgrain.beacon.ingest import ingest
from sandgrain.beacon.policy import SecurityConfig
from sandgrain.config import Settings
from sandgrain.errors import InputError
from sandgrain.storage import Store
from sandgrain.testing.auth import unused_port
from sandgrain.web.app import create_app

CHR22 = DATA / "variants" / "1000g-chr22-20-21M-191samples.vcf"
PUB, REG, CTL = "tier-public", "tier-registered", "tier-controlled"
RANGE = {"referenceName": "22", "start": [20000000], "end": [21000000]}
SANDGRAIN = str(Path(sys.executable).parent / "sandgrain")


def sandgrain(*args: str, home: Path, check_rc: bool = True) -> subprocess.CompletedProcess:
    """``sandgrain ARGS`` as a user types it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDGRAIN_")}
    env["SANDGRAIN_HOME"] = str(home)
    done = subprocess.run(
        [SANDGRAIN, *map(str, args)], capture_output=True, text=True, env=env, timeout=60
    )
    if check_rc:
        assert done.returncode == 0, done.stderr
    return done


def wait_for(url: str, process: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        assert process.poll() is None, process.stderr.read()
        try:
            with opener.open(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@dataclass
class DevWorld:
    root: Path
    directory: Path
    port: int
    client: TestClient

    def token(self, *args: str, directory: Path | None = None) -> str:
        done = sandgrain(
            "beacon", "dev-issuer", "token", "--dir", directory or self.directory, *args,
            home=self.root / "home",
        )  # fmt: skip
        token = done.stdout.strip()
        assert token.count(".") == 2 and "\n" not in token
        return token

    def ask(self, token: str | None = None, status: int = 200, **kw) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = self.client.post(BASE + "/g_variants", json=body(RANGE, **kw), headers=headers)
        assert r.status_code == status, (r.status_code, r.text[:400])
        return check(r.json(), r.status_code)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("dev-issuer")
    store = Store(str(root / "store"))
    for ds, access in ((PUB, "public"), (REG, "registered"), (CTL, "controlled")):
        ingest(store, ds, CHR22, assembly="GRCh37", access=access, executor="serial")
    directory, port = root / "issuer", unused_port()
    sandgrain("beacon", "dev-issuer", "init", "--dir", directory, "--port", port, home=root)
    serving = subprocess.Popen(
        [SANDGRAIN, "beacon", "dev-issuer", "serve", "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SANDGRAIN_HOME": str(root / "home")},
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/jwks", serving)
        settings = Settings.from_env(
            {
                "SANDGRAIN_HOME": str(root / "home"),
                "SANDGRAIN_STORE": store.url,
                "SANDGRAIN_EXECUTOR": "serial",
                "SANDGRAIN_BEACON_CONFIG": str(directory / dev_issuer.CONFIG_FILE),
            }
        )
        with TestClient(create_app(settings)) as client:
            yield DevWorld(root, directory, port, client)
    finally:
        serving.terminate()
        serving.wait(timeout=10)


def test_init_writes_a_private_key_and_a_config_trusting_the_issuer(world):
    key = world.directory / dev_issuer.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    issuer = f"http://127.0.0.1:{world.port}"
    config = SecurityConfig.from_file(world.directory / dev_issuer.CONFIG_FILE)
    jwks_uri = f"{issuer}/jwks"
    assert [(i.issuer, i.audience, i.jwks_uri) for i in config.oidc_issuers] == [
        (issuer, "sandgrain-beacon", jwks_uri)
    ]
    assert [(i.issuer, i.jwks_uri) for i in config.visa_issuers] == [(issuer, jwks_uri)]
    state = json.loads((world.directory / dev_issuer.ISSUER_FILE).read_text())
    assert state["issuer"] == issuer and "not for production" in state["warning"]


def test_the_key_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        sandgrain("beacon", "dev-issuer", "init", "--dir", tmp_path / "d", home=tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "d" / dev_issuer.KEY_FILE).stat().st_mode) == 0o600


def test_serve_publishes_the_public_key_and_discovery_on_loopback(world):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    base = f"http://127.0.0.1:{world.port}"
    with opener.open(base + "/jwks") as r:
        (key,) = json.load(r)["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert "d" not in key and "p" not in key  # the public half only
    with opener.open(base + "/.well-known/openid-configuration") as r:
        assert json.load(r) == {
            "issuer": base,
            "jwks_uri": base + "/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "ga4gh_passport_v1"],
        }


def test_a_token_carries_a_ga4gh_passport(world):
    token = world.token("--user", "alice", "--dataset", CTL, "--expires", "15m")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == f"http://127.0.0.1:{world.port}"
    assert claims["aud"] == "sandgrain-beacon" and claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 900
    (visa,) = claims["ga4gh_passport_v1"]
    assert jwt.get_unverified_header(visa)["alg"] == "RS256"
    visa_claims = jwt.decode(visa, options={"verify_signature": False})
    assert visa_claims["iss"] == claims["iss"] and visa_claims["sub"] == "alice"
    body_ = visa_claims["ga4gh_visa_v1"]
    assert body_["type"] == "ControlledAccessGrants" and body_["value"] == CTL
    assert body_["by"] == "dac" and body_["source"] == claims["iss"] + "/dac"
    assert body_["asserted"] <= time.time() and visa_claims["exp"] == claims["exp"]
    plain = jwt.decode(world.token("--user", "bob"), options={"verify_signature": False})
    assert "ga4gh_passport_v1" not in plain


def test_anonymous_sees_public_data_only(world):
    doc = world.ask(granularity="record")
    assert set(sets(doc)) == {PUB}
    assert doc["meta"]["returnedGranularity"] == "count"
    r = world.client.post(BASE + "/g_variants", json=body({**RANGE, "datasetIds": [CTL]}))
    assert r.status_code == 401  # a controlled dataset asked by name: log in first


def test_a_token_without_visas_sees_registered_data(world):
    token = world.token("--user", "rita")
    doc = world.ask(token, granularity="count")
    assert set(sets(doc)) == {PUB, REG}
    r = world.client.post(
        BASE + "/g_variants",
        json=body({**RANGE, "datasetIds": [CTL]}),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403 and CTL in r.json()["error"]["errorMessage"]


def test_a_visa_for_the_controlled_dataset_gives_its_records(world):
    token = world.token("--user", "carol", "--dataset", CTL)
    assert set(sets(world.ask(token, granularity="count"))) == {PUB, REG, CTL}
    r = world.client.post(
        BASE + "/g_variants",
        json=body({**RANGE, "datasetIds": [CTL]}, granularity="record", limit=5),
        headers={"Authorization": f"Bearer {token}"},
    )
    doc = check(r.json(), r.status_code)
    assert r.status_code == 200 and doc["meta"]["returnedGranularity"] == "record"
    assert set(sets(doc)) == {CTL} and len(records(doc)) == 5
    assert all(rec.get("caseLevelData") for rec in records(doc))  # carriers, record level


def test_a_token_signed_by_another_key_is_refused(world, tmp_path):
    forger = tmp_path / "forger"  # same issuer id and port, another key
    sandgrain("beacon", "dev-issuer", "init", "--dir", forger, "--port", world.port, home=tmp_path)
    forged = world.token("--user", "mallory", "--dataset", CTL, directory=forger)
    doc = world.ask(forged, status=401)
    assert "kid" in doc["error"]["errorMessage"]
    other = tmp_path / "other"  # an issuer the Beacon does not trust
    sandgrain("beacon", "dev-issuer", "init", "--dir", other, "--port", unused_port(),
              home=tmp_path)  # fmt: skip
    doc = world.ask(world.token("--user", "mallory", directory=other), status=401)
    assert "not trusted" in doc["error"]["errorMessage"]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::"])
def test_serve_refuses_a_non_loopback_host(world, host):
    done = sandgrain(
        "beacon", "dev-issuer", "serve", "--dir", world.directory, "--host", host,
        home=world.root / "home", check_rc=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "loopback only" in done.stderr and "not for production" in done.stderr


def test_init_refuses_a_non_loopback_host_and_serve_another_port(world, tmp_path):
    done = sandgrain(
        "beacon", "dev-issuer", "init", "--dir", tmp_path / "d", "--host", "0.0.0.0",
        home=tmp_path, check_rc=False,
    )  # fmt: skip
    assert done.returncode != 0 and "loopback only" in done.stderr
    assert not (tmp_path / "d").exists()
    done = sandgrain(
        "beacon", "dev-issuer", "serve", "--dir", world.directory, "--port", world.port + 1,
        home=tmp_path, check_rc=False,
    )  # fmt: skip
    assert done.returncode != 0 and "--force" in done.stderr


def test_init_keeps_an_issuer_unless_forced_and_a_readable_key_is_refused(tmp_path):
    d = tmp_path / "d"
    sandgrain("beacon", "dev-issuer", "init", "--dir", d, home=tmp_path)
    kid = json.loads((d / dev_issuer.ISSUER_FILE).read_text())["kid"]
    done = sandgrain("beacon", "dev-issuer", "init", "--dir", d, home=tmp_path, check_rc=False)
    assert done.returncode != 0 and "already holds" in done.stderr
    sandgrain("beacon", "dev-issuer", "init", "--dir", d, "--force", home=tmp_path)
    assert json.loads((d / dev_issuer.ISSUER_FILE).read_text())["kid"] != kid
    assert stat.S_IMODE((d / dev_issuer.KEY_FILE).stat().st_mode) == 0o600
    (d / dev_issuer.KEY_FILE).chmod(0o644)
    done = sandgrain(
        "beacon", "dev-issuer", "token", "--dir", d, "--user", "a", home=tmp_path, check_rc=False
    )
    assert done.returncode != 0 and "chmod 600" in done.stderr and done.stdout == ""


def test_help_says_it_is_not_for_production(tmp_path):
    for command in ([], ["init"], ["serve"], ["token"]):
        done = sandgrain("beacon", "dev-issuer", *command, "--help", home=tmp_path)
        assert "not for production" in " ".join(done.stdout.split()), command


@pytest.mark.parametrize(
    "text,seconds", [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)]
)
def test_durations(text, seconds):
    assert dev_issuer.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1h", "1w", "h"])
def test_bad_durations(text):
    with pytest.raises(InputError):
        dev_issuer.parse_duration(text)


def test_the_loopback_server_refuses_other_hosts():
    with pytest.raises(InputError, match="loopback only"):
        dev_issuer.LoopbackJsonServer("0.0.0.0")
