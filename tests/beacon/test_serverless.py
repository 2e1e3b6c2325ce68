"""The Beacon on AWS Lambda, without AWS: the packaged handler
(:mod:`sandgrain.web.lambda_handler`) invoked in-process with API Gateway HTTP API events
(payload format 2.0, as API Gateway sends them) against a store on the loopback S3 server
(moto), and the deployment template (deploy/aws/template.yaml) checked offline by cfn-lint,
SAM transform included.

Answers are validated against the Beacon v2 schemas and compared with truth read from the VCF
with pysam (tests/beacon_truth.py).
"""

from __future__ import annotations

import base64
import itertools
import json
import urllib.parse
import uuid
from pathlib import Path

import pytest
from beacon_fixtures import BASE, body, check, record_key, sets
from beacon_truth import Truth
from cfnlint.api import ManualArgs, lint, lint_file
from conftest import DATA, REPO

from sandgrain.beacon.ingest import ingest
from sandgrain.beacon.policy import SecurityConfig
from sandgrain.config import Settings
from sandgrain.storage import Store
from sandgrain.web import lambda_handler
from sandgrain.web.lambda_handler import make_handler

CHR22 = DATA / "variants" / "1000g-chr22-20-21M-191samples.vcf"
DS = "lambda-chr22"
TEMPLATE = REPO / "deploy" / "aws" / "template.yaml"
CLIENTS = itertools.count(1)
WINDOW = {"referenceName": "22", "start": [20000000], "end": [20020000]}


class Context:
    """What the Lambda runtime passes as ``context`` (the attributes handlers may read)."""

    function_name = "sandgrain-beacon"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:sandgrain-beacon"

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def http_api_event(
    method: str,
    path: str,
    query: dict | list | None = None,
    *,
    json_body: dict | None = None,
    raw_body: bytes | None = None,
    base64_body: bool = False,
    headers: dict | None = None,
    source_ip: str | None = None,
) -> dict:
    """An API Gateway HTTP API event, payload format 2.0, ``$default`` stage, for a route
    ``ANY /api/beacon/{proxy+}`` (fields as AWS documents them)."""
    source_ip = source_ip or f"198.51.100.{next(CLIENTS)}"  # each event its own client
    raw_query = urllib.parse.urlencode(query or {}, doseq=True)
    data = json.dumps(json_body).encode() if json_body is not None else raw_body
    event_headers = {
        "accept": "application/json",
        "host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "curl/8.5.0",
        "x-forwarded-for": source_ip,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **(headers or {}),
    }
    if data is not None:
        event_headers.setdefault("content-type", "application/json")
        event_headers["content-length"] = str(len(data))
    proxy = path.removeprefix(BASE).lstrip("/")
    event = {
        "version": "2.0",
        "routeKey": f"ANY {BASE}/{{proxy+}}" if path.startswith(BASE + "/") else f"ANY {path}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": event_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": f"ANY {BASE}/{{proxy+}}",
            "stage": "$default",
            "time": "04/Dec/2026:19:00:00 +0000",
            "timeEpoch": 1796410800000,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = {
            k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
            for k, v in (query.items() if isinstance(query, dict) else query)
        }
    if proxy and path.startswith(BASE + "/"):
        event["pathParameters"] = {"proxy": proxy}
    if data is not None:
        event["body"] = base64.b64encode(data).decode() if base64_body else data.decode()
    return event


def invoke(handler, event: dict) -> tuple[int, dict, dict | None]:
    """Invoke like the Lambda runtime; (status, headers, JSON body) of the API Gateway reply."""
    out = handler(event, Context())
    assert set(out) >= {"statusCode", "headers", "body", "isBase64Encoded"}
    text = base64.b64decode(out["body"]) if out["isBase64Encoded"] else out["body"]
    return out["statusCode"], out["headers"], json.loads(text) if text else None


@pytest.fixture(scope="module")
def lambda_env(s3_server, tmp_path_factory) -> dict:
    """The function's environment, as the template sets it: the store in a loopback S3
    bucket holding one ingested dataset, ``/tmp``-like home, a security config file."""
    root = tmp_path_factory.mktemp("lambda")
    bucket = s3_server.create_bucket("sandgrain-lambda-beacon")
    store = Store(f"{bucket}/beacon", {"client_kwargs": {"endpoint_url": s3_server.endpoint}})
    ingest(store, DS, CHR22, assembly="GRCh37", executor="serial")
    config = root / "beacon.json"
    config.write_text(
        json.dumps(
            {
                "max_granularity": {"public": "record"},
                "rare_min_carriers": 0,
                "budget_limit": 3,
                "audit_db": str(root / "audit.db"),
            }
        )
    )
    return {
        "SANDGRAIN_HOME": str(root / "home"),
        "SANDGRAIN_STORE": f"{bucket}/beacon",
        "SANDGRAIN_S3_ENDPOINT": s3_server.endpoint,
        "SANDGRAIN_EXECUTOR": "serial",
        "SANDGRAIN_BEACON_CONFIG": str(config),
    }


@pytest.fixture(scope="module")
def truth(tmp_path_factory) -> Truth:
    return Truth.read(CHR22, tmp_path_factory.mktemp("lambda-truth"))


def fresh(env: dict):
    """A cold start: a new handler with its own app (and its own query budget)."""
    return make_handler(Settings.from_env(env))


# -- the handler -----------------------------------------------------------------------------------
def test_a_get_query_through_api_gateway_equals_truth(lambda_env, truth):
    handler = fresh(lambda_env)
    query = {**WINDOW, "requestedGranularity": "record", "limit": 1000}
    status, headers, doc = invoke(handler, http_api_event("GET", BASE + "/g_variants", query))
    assert status == 200 and headers["content-type"] == "application/json"
    check(doc)
    expected = [v for v in truth.range("22", 20000000, 20020000) if v.counts()[2] > 0]
    got = sets(doc)[DS]
    assert got["resultsCount"] == len(expected) > 10
    assert sorted(map(record_key, got["results"])) == sorted(v.key[1:] for v in expected)
    assert doc["info"]["provenance"]["datasets"][DS]["inputs_sha256"]


def test_post_bodies_plain_and_base64_give_the_same_answer(lambda_env, truth):
    handler = fresh(lambda_env)
    v = next(v for v in truth.variants if v.counts()[2] >= 5 and v.kind == "SNP")
    q = {"referenceName": "22", "start": [v.start0], "alternateBases": v.alt}
    request = body(q, granularity="count")
    _, _, plain = invoke(handler, http_api_event("POST", BASE + "/g_variants", json_body=request))
    _, _, encoded = invoke(
        handler,
        http_api_event("POST", BASE + "/g_variants", json_body=request, base64_body=True),
    )
    assert check(plain)["responseSummary"] == check(encoded)["responseSummary"]
    assert plain["responseSummary"] == {"exists": True, "numTotalResults": 1}
    nobody = dict(q, alternateBases="ACGTACGT")
    _, _, doc = invoke(
        handler, http_api_event("POST", BASE + "/g_variants", json_body=body(nobody))
    )
    assert check(doc)["responseSummary"] == {"exists": False}


def test_bad_requests_are_4xx_never_5xx(lambda_env):
    handler = fresh(lambda_env)
    bad = body(WINDOW, granularity="everything")
    status, headers, doc = invoke(
        handler, http_api_event("POST", BASE + "/g_variants", json_body=bad)
    )
    assert status == 400 and "requestedGranularity" in check(doc, 400)["error"]["errorMessage"]
    status, _, doc = invoke(
        handler, http_api_event("POST", BASE + "/g_variants", raw_body=b'{"meta": {"apiV')
    )
    assert status == 400 and check(doc, 400)["error"]["errorCode"] == 400
    # outside the Beacon: RFC 9457 problem details
    status, headers, doc = invoke(handler, http_api_event("POST", "/health", json_body={}))
    assert status == 405 and headers["content-type"] == "application/problem+json"
    assert doc["status"] == 405 and headers["allow"] == "GET"
    status, headers, doc = invoke(handler, http_api_event("GET", "/api/v1/genomes"))
    assert status == 404 and headers["content-type"] == "application/problem+json"


def test_the_caller_ip_comes_from_the_request_context(lambda_env):
    handler = fresh(lambda_env)  # budget_limit = 3 genomic queries per IP
    ask = body(WINDOW, granularity="boolean")
    for _ in range(3):
        status, _, _ = invoke(
            handler,
            http_api_event("POST", BASE + "/g_variants", json_body=ask, source_ip="203.0.113.9"),
        )
        assert status == 200
    status, headers, doc = invoke(
        handler,
        http_api_event("POST", BASE + "/g_variants", json_body=ask, source_ip="203.0.113.9"),
    )
    assert status == 429 and int(headers["retry-after"]) > 0
    check(doc, 429)
    status, _, _ = invoke(
        handler,
        http_api_event("POST", BASE + "/g_variants", json_body=ask, source_ip="203.0.113.10"),
    )
    assert status == 200


def test_informational_endpoints_and_health(lambda_env):
    handler = fresh(lambda_env)
    status, _, doc = invoke(handler, http_api_event("GET", BASE + "/datasets"))
    assert status == 200 and [c["id"] for c in check(doc)["response"]["collections"]] == [DS]
    status, _, doc = invoke(handler, http_api_event("GET", "/health"))
    assert status == 200 and doc["store"] == lambda_env["SANDGRAIN_STORE"]


def test_the_entry_point_reads_its_environment_once(lambda_env, monkeypatch):
    for name, value in lambda_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_handler, "_handler", None)
    status, _, doc = invoke(lambda_handler.handler, http_api_event("GET", BASE + "/info"))
    assert status == 200 and doc["meta"]["beaconId"]
    first = lambda_handler._handler
    invoke(lambda_handler.handler, http_api_event("GET", "/health"))
    assert lambda_handler._handler is first  # a warm instance keeps its app


# -- the template ----------------------------------------------------------------------------------
def _lint(text: str) -> list[str]:
    return [
        f"{m.rule.id} {m.message}" for m in lint(text, config=ManualArgs(regions=["eu-west-1"]))
    ]


def test_the_template_passes_cfn_lint_offline():
    matches = lint_file(TEMPLATE, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert [f"{m.rule.id} {m.message}" for m in matches] == []


@pytest.mark.parametrize(
    "old, new, rule",
    [
        # SAM resources are checked against SAM's own schema (no transform needed)
        ("      PackageType: Image\n", "      PackageType: Image\n      Handler: a.b\n", "E3685"),
        ("      PackageType: Image\n", "      PackageType: Zip\n", "W2533"),
        # references, attributes and conditions across the template
        ("Roles: [!Ref BeaconFunctionRole]", "Roles: [!Ref NoSuchRole]", "E1020"),
        ("!GetAtt LithopsExecutionRole.Arn", "!GetAtt LithopsExecutionRole.Name", "E6101"),
        ("    Condition: WithLithops\n", "    Condition: WithLithop\n", "E3015"),
    ],
)
def test_cfn_lint_would_catch_a_broken_template(old, new, rule):
    text = TEMPLATE.read_text()
    assert old in text
    found = _lint(text.replace(old, new, 1))
    assert any(f.startswith(rule) for f in found), found


def test_the_image_runs_the_packaged_handler_with_a_valid_config():
    dockerfile = (REPO / "deploy" / "aws" / "Dockerfile").read_text()
    assert 'CMD ["sandgrain.web.lambda_handler.handler"]' in dockerfile
    assert callable(lambda_handler.handler)
    config = SecurityConfig.from_file(REPO / "deploy" / "aws" / "beacon.toml")
    assert config.min_count >= 5 and config.max_granularity["public"] == "count"
    assert "SANDGRAIN_BEACON_CONFIG: !If [HasBeaconConfig" in TEMPLATE.read_text()
    assert Path(TEMPLATE).read_text().count("/var/task/beacon.toml") == 1
