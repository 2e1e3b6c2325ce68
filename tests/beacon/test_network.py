"""Beacon Network (aggregator mode) against real Beacons on loopback ports.

Two sandgrain Beacons run under uvicorn in threads, each with its own store (``hosp-a``: the
chr22 1000 Genomes slice with individuals, public at record level; ``hosp-b``: the chr1 slice at
the default count level, and a registered chr22 dataset). The aggregator holds a chr22 dataset
of its own and lists both, a dead port, a remote that never answers and one that answers
something that is not a Beacon response. Every merged answer is validated against the Beacon v2
schemas and compared with what each Beacon answers when asked directly.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import uvicorn
from beacon_fixtures import BASE, body, check, get_params, record_key, sets, write_individuals
from beacon_truth import Truth
from conftest import DATA
from fastapi.testclient import TestClient

from sandgrain.beacon import schemas
from sandgrain.beacon.ingest import ingest
from sandgrain.beacon.network import (
    HOPS_HEADER,
    LOCAL,
    RemoteBeacon,
    forward_body,
    forward_query,
)
from sandgrain.beacon.policy import SecurityConfig
from sandgrain.beacon.request import parse_request
from sandgrain.beacon.responses import BeaconIdentity
from sandgrain.beacon.service import BeaconService
from sandgrain.config import Settings
from sandgrain.errors import InputError
from sandgrain.storage import Store
from sandgrain.testing.auth import LoopbackIdP
from sandgrain.testing.s3 import free_port
from sandgrain.web.app import create_app

CHR1 = DATA / "variants" / "1000g-chr1-10177-174799-2504samples.vcf.gz"
CHR22 = DATA / "variants" / "1000g-chr22-20-21M-191samples.vcf"
AGG, A22, B1, BREG = "agg-chr22", "a-chr22", "b-chr1", "b-chr22-registered"
SLOW_S = 0.5
RANGE22 = {"referenceName": "22", "start": [20000000], "end": [20100000]}
RANGE1 = {"referenceName": "1", "start": [10000], "end": [60000]}
SEIZURE = "HP:0001250"


class Served:
    """A FastAPI app under uvicorn on a loopback port, in a thread."""

    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{BASE}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Recorder:
    """An HTTP server that records every request; below ``/hang`` it never answers (until
    stopped), below ``/junk`` it answers JSON that is not a Beacon response."""

    def __init__(self):
        self.requests: list[dict] = []
        self.stop = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": self.rfile.read(size) if size else b"",
                    }
                )
                if self.path.startswith("/hang"):
                    recorder.stop.wait(20)
                    return
                data = json.dumps({"hello": "not a beacon"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _any  # noqa: N815 (http.server's naming)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Recorder:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Net:
    root: Path
    idp: LoopbackIdP
    recorder: Recorder
    dead: str
    a: Served | None = None
    b: Served | None = None
    n: int = 0

    def beacon(self, name: str, stores: list[Store], **config) -> BeaconService:
        self.n += 1
        config.setdefault("audit_db", str(self.root / f"audit-{name}-{self.n}.db"))
        config.setdefault("budget_limit", 0)
        settings = Settings(home=str(self.root / f"home-{name}"), executor="serial")
        return BeaconService(
            settings, stores=stores, security=self.idp.config(**config),
            identity=BeaconIdentity(id=f"org.example.{name}", name=f"Beacon {name}"),
        )  # fmt: skip

    def aggregator(self, *remotes: dict, **config) -> TestClient:
        store = Store(str(self.root / "agg-store"))
        config.setdefault("max_granularity", {"public": "record"})
        svc = self.beacon("agg", [store], network=list(remotes), **config)
        app = create_app(svc.settings)
        app.state.beacon = svc
        return TestClient(app)

    def remote(self, which: str, **more) -> dict:
        url = {"a": self.a.url, "b": self.b.url, "dead": self.dead}.get(which)
        if url is None:  # a recorder path
            url = self.recorder.base + which
        return {"url": url, "name": more.pop("name", which), "timeout_s": SLOW_S * 4, **more}

    def everyone(self) -> TestClient:
        return self.aggregator(
            self.remote("a"), self.remote("b"), self.remote("dead"),
            self.remote("/hang/api/beacon", name="slow", timeout_s=SLOW_S),
            self.remote("/junk/api/beacon", name="junk"),
        )  # fmt: skip


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    root = tmp_path_factory.mktemp("beacon-network")
    people = root / "people.tsv"
    write_individuals(Truth.read(CHR22, root).samples, people)
    stores = {k: Store(str(root / f"{k}-store")) for k in ("agg", "a", "b")}
    ingest(stores["agg"], AGG, CHR22, assembly="GRCh37", individuals=people, executor="serial")
    ingest(stores["a"], A22, CHR22, assembly="GRCh37", individuals=people, executor="serial")
    ingest(stores["b"], B1, CHR1, assembly="GRCh37", executor="serial")
    ingest(stores["b"], BREG, CHR22, assembly="GRCh37", access="registered", executor="serial")
    with LoopbackIdP() as idp, Recorder() as recorder:
        dead = f"http://127.0.0.1:{free_port()}{BASE}"  # nothing listens there
        net = Net(root, idp, recorder, dead)
        apps = {}
        for name, config in (("a", {"max_granularity": {"public": "record"}}), ("b", {})):
            svc = net.beacon(name, [stores[name]], **config)
            apps[name] = create_app(svc.settings)
            apps[name].state.beacon = svc
        with Served(apps["a"]) as net.a, Served(apps["b"]) as net.b:
            yield net


def direct(served: Served, path: str, params=None, token=None, **kw) -> dict:
    """Ask one Beacon itself (POST)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(served.url + path, json=body(params, **kw), headers=headers, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return check(r.json())


def ask(client, path, params=None, status=200, method="POST", headers=None, **kw) -> dict:
    if method == "GET":
        r = client.get(BASE + path, params=get_params(params, **kw), headers=headers)
    else:
        r = client.post(BASE + path, json=body(params, **kw), headers=headers)
    assert r.status_code == status, (r.status_code, r.text[:500])
    return r.json() if path == "/filtering_terms" else check(r.json(), r.status_code)


def beacons(doc: dict) -> dict[str, dict]:
    return {b["name"]: b for b in doc["info"]["network"]["beacons"]}


def plain(result_set: dict) -> dict:
    """A merged result set without the network's tags, as its Beacon answered it."""
    return {k: v for k, v in result_set.items() if k not in ("beaconId", "beaconName")}


# -- configuration ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "entry, message",
    [
        ({"url": "http://example.org/api/beacon"}, "https://"),
        ({"url": "https://b.example.org/api/beacon", "token": "x"}, "unknown network setting"),
        ({"url": "https://b.example.org/api/beacon", "timeout_s": 0}, "timeout_s"),
        ({"url": "https://b.example.org/api/beacon", "forward_token": "yes"}, "forward_token"),
        ({"url": "https://b.example.org/api/beacon", "name": LOCAL}, "name"),
        ({"url": "https://user:pw@b.example.org/api/beacon"}, "plain base URL"),
        ({"name": "b"}, "needs a url"),
    ],
)
def test_network_settings_are_checked(entry, message):
    with pytest.raises(InputError, match=message):
        SecurityConfig.from_dict({"network": [entry]})


def test_network_settings_read_from_a_config_file(tmp_path):
    path = tmp_path / "beacon.json"
    path.write_text(json.dumps({"network": [{"url": "https://b.example.org/api/beacon/"}]}))
    (remote,) = SecurityConfig.from_file(path).network
    assert remote == RemoteBeacon("https://b.example.org/api/beacon", "b.example.org")
    with pytest.raises(InputError, match="unique"):
        SecurityConfig(network=({"url": "https://x.org/a"}, {"url": "https://x.org/b"}))


def test_forwarded_requests_are_rebuilt_from_the_validated_request():
    sent = {
        "meta": {"apiVersion": "v2.0"},
        "query": {
            "requestParameters": {"referenceName": "1", "start": [10176]},
            "filters": [{"id": SEIZURE}],
            "pagination": {"skip": 0, "limit": 3},
        },
    }
    req = parse_request("POST", (), json.dumps(sent).encode())
    out = forward_body(req, ["d1"])
    assert set(out) == {"meta", "query"}
    again = parse_request("POST", (), json.dumps(out).encode())
    assert (again.params, again.filters, again.limit) == (req.params, req.filters, 3)
    assert again.dataset_ids == ["d1"]
    pairs = forward_query(parse_request("GET", [("referenceName", "1"), ("start", "5")], b""), None)
    assert dict(pairs)["referenceName"] == "1" and "datasetIds" not in dict(pairs)


# -- merged answers --------------------------------------------------------------------------------
def test_variant_query_merges_every_beacon_and_marks_the_missing(net):
    client = net.everyone()
    started = time.perf_counter()
    doc = ask(client, "/g_variants", RANGE22, granularity="count", include="ALL")
    took = time.perf_counter() - started
    status = {name: b["status"] for name, b in beacons(doc).items()}
    assert status == {
        LOCAL: "ok", "a": "ok", "b": "ok", "dead": "unreachable", "slow": "timeout",
        "junk": "invalid",
    }  # fmt: skip
    assert doc["info"]["network"]["partial"] is True
    # the slow remote was waited for until its timeout, and the answer did not wait for it
    # longer than that (loose bounds: this is about the timeout, not about speed)
    assert SLOW_S * 0.9 < beacons(doc)["slow"]["elapsedMs"] / 1e3 < SLOW_S + 10
    assert took < 19  # the recorder holds the slow request for 20 s
    # a count answer (hosp-b gives counts only): every dataset's set, each tagged with its Beacon
    assert doc["meta"]["returnedGranularity"] == "count"
    got = sets(doc)
    assert set(got) == {AGG, A22, B1}
    assert {s["id"]: (s["beaconId"], s["beaconName"]) for s in got.values()} == {
        AGG: ("org.example.agg", LOCAL), A22: ("org.example.a", "a"), B1: ("org.example.b", "b"),
    }  # fmt: skip
    # each set is what its Beacon answers when asked itself
    for served, ds in ((net.a, A22), (net.b, B1)):
        alone = direct(served, "/g_variants", RANGE22, granularity="count", include="ALL")
        assert plain(got[ds]) == sets(alone)[ds]
    # the same data at the aggregator and at hosp-a: the same answer
    assert got[AGG]["resultsCount"] == got[A22]["resultsCount"] > 0
    assert got[B1]["resultsCount"] == 0 and got[B1]["exists"] is False
    total = sum(s["resultsCount"] for s in got.values())
    assert doc["responseSummary"] == {"exists": True, "numTotalResults": total}
    # provenance of every part that answered
    assert beacons(doc)["a"]["provenance"]["datasets"][A22]["inputs_sha256"]
    assert doc["info"]["provenance"]["datasets"][AGG]


def test_a_variant_only_a_remote_holds_exists(net):
    client = net.aggregator(net.remote("a"), net.remote("b"))
    doc = ask(client, "/g_variants", RANGE1, granularity="boolean")
    assert doc["responseSummary"] == {"exists": True}
    assert doc["info"]["network"]["partial"] is False
    assert beacons(doc)["b"]["exists"] is True and beacons(doc)[LOCAL]["exists"] is False
    assert doc["meta"]["returnedGranularity"] == "boolean"


def test_record_answers_stay_records_where_every_beacon_gives_them(net):
    client = net.aggregator(net.remote("a"), net.remote("b"))
    q = dict(RANGE22, end=[20010000])
    # with hosp-b (counts only) in the answer, the whole answer is a count answer
    mixed = ask(client, "/g_variants", q, granularity="record", limit=5)
    assert mixed["meta"]["returnedGranularity"] == "count"
    # routed to the two record-level Beacons only: records, as each gives them
    routed = body(q, granularity="record", limit=5)
    routed["query"]["datasets"] = {"datasetIds": [AGG, A22]}
    r = client.post(BASE + "/g_variants", json=routed)
    doc = check(r.json(), r.status_code)
    assert doc["meta"]["returnedGranularity"] == "record"
    assert beacons(doc)["b"]["status"] == "skipped"
    got = sets(doc)
    alone = direct(net.a, "/g_variants", q, granularity="record", limit=5)
    assert plain(got[A22]) == sets(alone)[A22]
    assert len(got[AGG]["results"]) == 5
    assert [record_key(v) for v in got[AGG]["results"]] == [
        record_key(v) for v in got[A22]["results"]
    ]


def test_get_and_post_give_the_same_network_answer(net):
    client = net.aggregator(net.remote("a"), net.remote("b"))
    got = ask(client, "/g_variants", RANGE22, method="GET", granularity="count")
    posted = ask(client, "/g_variants", RANGE22, granularity="count")
    assert got["responseSummary"] == posted["responseSummary"]
    assert got["response"] == posted["response"]


def test_individuals_by_filter_across_the_network(net):
    client = net.aggregator(net.remote("a"), net.remote("b"))
    doc = ask(client, "/individuals", filters=[SEIZURE], granularity="count")
    got = sets(doc)
    alone = direct(net.a, "/individuals", filters=[SEIZURE], granularity="count")
    assert plain(got[A22]) == sets(alone)[A22]
    assert got[AGG]["resultsCount"] == got[A22]["resultsCount"] >= 5
    assert B1 not in got  # no individuals described: no hit


def test_datasets_cohorts_and_filtering_terms_are_merged(net):
    client = net.aggregator(net.remote("a"), net.remote("b"), net.remote("dead"))
    listed = ask(client, "/datasets")
    items = {c["id"]: c["beaconName"] for c in listed["response"]["collections"]}
    assert items == {AGG: LOCAL, A22: "a", B1: "b"}  # the registered one needs a token
    assert listed["responseSummary"]["numTotalResults"] == 3
    assert beacons(listed)["dead"]["status"] == "unreachable"
    cohorts = ask(client, "/cohorts")
    assert {c["id"] for c in cohorts["response"]["collections"]} == {AGG, A22, B1}
    terms = ask(client, "/filtering_terms")
    schemas.validate("beaconFilteringTermsResponse", terms)
    ids = [t["id"] for t in terms["response"]["filteringTerms"]]
    assert SEIZURE in ids and len(ids) == len(set(ids))
    a_terms = httpx.get(net.a.url + "/filtering_terms").json()["response"]["filteringTerms"]
    assert {t["id"] for t in a_terms} <= set(ids)


def test_dataset_ids_are_routed_to_the_beacon_that_holds_them(net):
    client = net.aggregator(net.remote("a"), net.remote("b"))
    before = len(net.recorder.requests)
    r = client.get(BASE + "/g_variants", params=get_params(RANGE1) | {"datasetIds": B1})
    doc = check(r.json(), r.status_code)
    assert beacons(doc)["a"]["status"] == "skipped" and beacons(doc)["b"]["status"] == "ok"
    assert doc["responseSummary"]["exists"] is True
    # nobody holds it: this Beacon's own 404
    r = client.get(BASE + "/g_variants", params=get_params(RANGE1) | {"datasetIds": "nope"})
    assert r.status_code == 404 and "nope" in check(r.json(), 404)["error"]["errorMessage"]
    assert len(net.recorder.requests) == before


def test_an_unknown_dataset_with_a_remote_down_is_a_partial_answer(net):
    client = net.aggregator(net.remote("a"), net.remote("dead"))
    r = client.get(BASE + "/g_variants", params=get_params(RANGE22) | {"datasetIds": f"{A22},x"})
    doc = check(r.json(), r.status_code)
    assert doc["info"]["network"]["partial"] is True
    assert set(sets(doc)) <= {A22} and doc["responseSummary"]["exists"] is True


# -- what is forwarded -----------------------------------------------------------------------------
def test_tokens_are_forwarded_only_where_configured(net):
    token = net.idp.token("rita")
    client = net.aggregator(
        net.remote("b", name="b-trusted", forward_token=True),
        net.remote("/hang/kept/api/beacon", name="kept", timeout_s=SLOW_S),
        net.remote("/hang/sent/api/beacon", name="sent", timeout_s=SLOW_S, forward_token=True),
    )
    before = len(net.recorder.requests)
    doc = ask(client, "/datasets", headers={"Authorization": f"Bearer {token}"})
    got = {c["id"] for c in doc["response"]["collections"]}
    assert BREG in got  # hosp-b saw the caller's token
    seen = {r["path"].split("/")[2]: r["headers"] for r in net.recorder.requests[before:]}
    assert "authorization" not in seen["kept"]
    assert seen["sent"]["authorization"] == f"Bearer {token}"
    for headers in seen.values():
        assert headers[HOPS_HEADER.lower()] == "1" and "cookie" not in headers
    # without forwarding, hosp-b answers the aggregator as anyone
    plain_client = net.aggregator(net.remote("b"))
    doc = ask(plain_client, "/datasets", headers={"Authorization": f"Bearer {token}"})
    assert BREG not in {c["id"] for c in doc["response"]["collections"]}


def test_a_bad_request_is_refused_before_anything_goes_out(net):
    client = net.everyone()
    before = len(net.recorder.requests)
    r = client.post(BASE + "/g_variants", json=body({"referenceName": "22"}, granularity="all"))
    assert r.status_code == 400
    check(r.json(), 400)
    r = client.get(BASE + "/g_variants", headers={"Authorization": "Bearer forged"})
    assert r.status_code == 401
    assert len(net.recorder.requests) == before


def test_forwarded_calls_are_answered_locally(net):
    client = net.everyone()
    doc = ask(client, "/g_variants", RANGE22, granularity="count", headers={HOPS_HEADER: "1"})
    assert "network" not in (doc.get("info") or {})
    assert set(sets(doc)) == {AGG}
