#!/usr/bin/env python
"""The Beacon's AWS Lambda handler, measured in-process: the cost inputs of a serverless Beacon.

What it measures
    The packaged handler (``sandgrain.web.lambda_handler``) answering API Gateway HTTP API
    events (payload format 2.0) in a process of its own, the way one Lambda instance would,
    against a store on a loopback S3 server (moto) holding the shared 1000 Genomes test
    datasets (chr22 20-21 Mbp with 191 samples and sample metadata, chr1 10-175 kbp with 2,504
    samples) and, when its cached copy exists, the synthetic 2,504 samples x 1,000,000 records
    VCF of benchmarks/beacon.py (167 MB stored), ingested by the parent process. Security
    config: the defaults (public data at count level, small counts protected, rare alleles
    hidden, audit log on), query budget off.

    1. **Cold start**: import of the handler module (Python, numpy, pyarrow, FastAPI, Mangum),
       building the app, and the first query, each timed; peak RSS after each.
    2. **Warm queries**: for each case, one warm-up and then ``--requests`` events: wall time
       of ``handler(event, context)`` (what Lambda bills, rounded up to 1 ms), p50 / p95 /
       mean / max, and the S3 requests each made (counted from s3fs' request log: GET,
       HEAD, LIST). Cases: a sequence query (boolean, GET), a 100 kbp range (count, GET), a
       range with records (``limit=10``, POST body) that the config answers at count, a
       filtered individuals query (count), and ``/datasets``; on the synthetic dataset a
       sequence query of a common SNP and a 100 kbp range around it (count). The first query
       of each case (cold partitions: S3 reads) is reported apart. Every answer is checked
       (status 200, the expected ``exists``).
    3. **Peak memory** of the instance process (``ru_maxrss``) at the end: the smallest Lambda
       memory setting that fits, before headroom.

    The JSON also gives GB-seconds per warm query at ``--memory-mb`` (Lambda bills configured
    memory × billed duration), the figure docs/beacon-serverless.md's cost table uses.

Usage::

    python benchmarks/beacon_lambda.py                   # 200 requests per case (~1 min)
    python benchmarks/beacon_lambda.py --quick           # 20 per case
    python benchmarks/beacon_lambda.py --requests 50 --memory-mb 1769

Results go to ``--out`` (JSON, written atomically) and a summary table to stdout. Exit status: 0
ok, 1 a wrong answer or a failed step, 2 a bad setup (no shared data).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
CHR22 = DATA / "variants" / "1000g-chr22-20-21M-191samples.vcf"
CHR1 = DATA / "variants" / "1000g-chr1-10177-174799-2504samples.vcf.gz"
SYNTHETIC = REPO / "benchmarks/results/cache/synth-g1-s2504-v1000000-seed1-chr1to22.vcf.gz"
BASE = "/api/beacon"
#: (name, method, path, query or body, expected exists or None)
CASES = [
    # the sequence query's variant is drawn from the VCF by the driver (a common SNP)
    ("sequence, boolean (GET)", "GET", "/g_variants", {}, True),
    ("range 100 kbp, count (GET)", "GET", "/g_variants",
     {"referenceName": "22", "start": "20000000", "end": "20100000",
      "requestedGranularity": "count"}, True),
    ("range 10 kbp, records asked (POST)", "POST", "/g_variants",
     {"meta": {"apiVersion": "v2.0"},
      "query": {"requestParameters": {"referenceName": "1", "start": [10000], "end": [20000]},
                "requestedGranularity": "record", "pagination": {"skip": 0, "limit": 10}}},
     True),
    ("individuals by phenotype, count (GET)", "GET", "/individuals",
     {"filters": "NCIT:C16576", "requestedGranularity": "count"}, True),
    ("datasets (GET)", "GET", "/datasets", {}, True),
]  # fmt: skip


def synthetic_cases(v: dict) -> list[tuple]:
    """Queries of the synthetic dataset around one of its common SNPs ``v``."""
    pos = int(v["start"])
    seq = dict(v, datasetIds="synthetic", requestedGranularity="count")
    window = {
        "referenceName": v["referenceName"], "start": str(max(pos - 50_000, 0)),
        "end": str(pos + 50_000), "datasetIds": "synthetic", "requestedGranularity": "count",
    }  # fmt: skip
    return [
        ("synthetic 2,504 x 1M: sequence, count", "GET", "/g_variants", seq, True),
        ("synthetic 2,504 x 1M: range 100 kbp, count", "GET", "/g_variants", window, True),
    ]


def common_snp(vcf: Path, min_carriers: int = 50) -> dict:
    """The first biallelic SNP of ``vcf`` carried by at least ``min_carriers`` samples."""
    import pysam

    with pysam.VariantFile(str(vcf)) as f:
        for rec in f:
            if len(rec.alts or ()) != 1 or len(rec.ref) != 1 or len(rec.alts[0]) != 1:
                continue
            carriers = sum(1 for s in rec.samples.values() if 1 in (s["GT"] or ()))
            if carriers >= min_carriers:
                return {
                    "referenceName": rec.chrom, "start": str(rec.pos - 1),
                    "referenceBases": rec.ref, "alternateBases": rec.alts[0],
                }  # fmt: skip
    raise SystemExit(f"no SNP with {min_carriers} carriers in {vcf}")


# -- the instance (child process) ------------------------------------------------------------------
class Context:
    function_name = "sandgrain-beacon"
    memory_limit_in_mb = 1024
    aws_request_id = "benchmark"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


class S3Calls(logging.Handler):
    """Counts the S3 requests s3fs makes (its ``CALL: method`` debug lines)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.calls: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("CALL:") and record.args:
            key = record.args[2].get("Key") or record.args[2].get("Prefix") or ""
            self.calls.append(f"{record.args[0]} {key.rsplit('/', 1)[-1] or key}")


def event(method: str, path: str, payload: dict, n: int) -> dict:
    query = urllib.parse.urlencode(payload) if method == "GET" else ""
    data = json.dumps(payload).encode() if method == "POST" else None
    out = {
        "version": "2.0",
        "routeKey": f"ANY {BASE}/{{proxy+}}",
        "rawPath": BASE + path,
        "rawQueryString": query,
        "headers": {
            "accept": "application/json",
            "host": "abc123.execute-api.eu-west-1.amazonaws.com",
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
        },
        "requestContext": {
            "http": {
                "method": method,
                "path": BASE + path,
                "protocol": "HTTP/1.1",
                "sourceIp": f"198.51.100.{n % 250 + 1}",
                "userAgent": "benchmark",
            },
            "requestId": f"r{n}",
            "routeKey": f"ANY {BASE}/{{proxy+}}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    if data is not None:
        out["headers"]["content-type"] = "application/json"
        out["body"] = data.decode()
    return out


def rss_mb() -> float:
    """Peak RSS of this process (``VmHWM``: ``ru_maxrss`` would keep the parent's across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def instance(spec: dict) -> dict:
    """One Lambda instance's life: cold start, then warm queries."""
    s3 = S3Calls()
    logging.getLogger("s3fs").addHandler(s3)
    logging.getLogger("s3fs").setLevel(logging.DEBUG)
    CASES[0] = (*CASES[0][:3], spec["sequence"], True)
    if spec.get("synthetic"):
        CASES.extend(synthetic_cases(spec["synthetic"]))
    out: dict = {"rss_start_mb": rss_mb()}
    t0 = time.perf_counter()
    from sandgrain.config import Settings
    from sandgrain.web.lambda_handler import make_handler

    out["import_s"] = time.perf_counter() - t0
    out["rss_after_import_mb"] = rss_mb()
    t1 = time.perf_counter()
    handler = make_handler(Settings.from_env(spec["env"]))
    out["build_app_s"] = time.perf_counter() - t1
    n = 0

    def call(case) -> tuple[float, list[str], dict]:
        nonlocal n
        name, method, path, payload, expected = case
        n += 1
        before = len(s3.calls)
        started = time.perf_counter()
        reply = handler(event(method, path, payload, n), Context())
        took = time.perf_counter() - started
        text = reply["body"]
        if reply.get("isBase64Encoded"):
            text = base64.b64decode(text)
        doc = json.loads(text)
        if reply["statusCode"] != 200:
            raise SystemExit(f"{name}: HTTP {reply['statusCode']}: {text[:300]}")
        exists = doc.get("responseSummary", {}).get("exists")
        if expected is not None and exists is not expected:
            raise SystemExit(f"{name}: exists is {exists}, expected {expected}")
        return took, s3.calls[before:], doc

    took, calls, _ = call(CASES[1])
    out["cold_first_query_s"] = took
    out["cold_first_query_s3_requests"] = len(calls)
    out["cold_first_query_s3_calls"] = calls
    out["cold_total_s"] = time.perf_counter() - t0
    out["rss_after_first_query_mb"] = rss_mb()
    cases = []
    for case in CASES:
        first, first_calls, _ = call(case)  # the partitions it reads are cached from here on
        times, requests, kinds, granularity = [], [], {}, None
        for _ in range(spec["requests"]):
            took, calls, doc = call(case)
            times.append(took * 1e3)
            requests.append(len(calls))
            for c in calls:
                kind = c.split()[0]
                kinds[kind] = kinds.get(kind, 0) + 1 / spec["requests"]
            granularity = doc.get("meta", {}).get("returnedGranularity")
        times.sort()
        cases.append(
            {
                "case": case[0],
                "first_ms": first * 1e3,
                "first_s3_requests": len(first_calls),
                "requests": len(times),
                "returned_granularity": granularity,
                "p50_ms": statistics.median(times),
                "p95_ms": times[int(0.95 * (len(times) - 1))],
                "mean_ms": statistics.fmean(times),
                "max_ms": times[-1],
                "s3_requests_per_query": statistics.fmean(requests),
                "s3_requests_per_query_by_kind": kinds,
                "s3_calls_of_last_query": calls,
            }
        )
    out["cases"] = cases
    out["rss_peak_mb"] = rss_mb()
    out["s3_request_kinds"] = sorted(set(s3.calls))
    return out


# -- the driver ------------------------------------------------------------------------------------
def machine() -> dict:
    import psutil

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def write_atomically(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="events per case")
    parser.add_argument("--quick", action="store_true", help="20 events per case (a smoke test)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="Lambda memory for GB-s")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/beacon_lambda.json")
    parser.add_argument(
        "--synthetic", type=Path, default=SYNTHETIC,
        help="also the 2,504 x 1,000,000 VCF of benchmarks/beacon.py (default: its cached copy)",
    )  # fmt: skip
    parser.add_argument("--no-synthetic", action="store_true", help="only the shared test data")
    parser.add_argument("--instance", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.requests = 20
    if args.instance:  # the child: one Lambda instance
        print(json.dumps(instance(json.loads(args.instance.read_text()))))
        return 0
    if not CHR22.exists() or not CHR1.exists():
        print(f"beacon_lambda: shared data not found under {DATA}", file=sys.stderr)
        return 2

    sys.path.insert(0, str(REPO / "tests" / "beacon"))
    from beacon_fixtures import write_individuals
    from beacon_truth import Truth

    from sandgrain.beacon.ingest import ingest
    from sandgrain.storage import Store
    from sandgrain.testing.s3 import LoopbackS3

    result: dict = {
        "benchmark": "beacon_lambda",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "requests_per_case": args.requests,
        "memory_mb": args.memory_mb,
    }
    with tempfile.TemporaryDirectory() as tmp, LoopbackS3() as s3:
        root = Path(tmp)
        bucket = s3.create_bucket("sandgrain-beacon-bench")
        url = f"{bucket}/beacon"
        store = Store(url, {"client_kwargs": {"endpoint_url": s3.endpoint}})
        people = root / "people.tsv"
        truth = Truth.read(CHR22, root)
        write_individuals(truth.samples, people)
        common = next(v for v in truth.variants if v.kind == "SNP" and v.counts()[2] >= 20)
        sequence = {
            "referenceName": "22", "start": str(common.start0),
            "referenceBases": common.ref, "alternateBases": common.alt,
        }  # fmt: skip
        started = time.perf_counter()
        ingest(store, "g1k-chr22", CHR22, assembly="GRCh37", individuals=people, executor="serial")
        ingest(store, "g1k-chr1", CHR1, assembly="GRCh37", executor="serial")
        result["ingest_s"] = time.perf_counter() - started
        result["test_data_stored_bytes"] = sum(store.sizes("beacon").values())
        synthetic = None
        if not args.no_synthetic and args.synthetic.exists():
            started = time.perf_counter()
            ingest(store, "synthetic", args.synthetic, assembly="GRCh37", executor="local:2")
            result["synthetic_ingest_s"] = time.perf_counter() - started
            result["synthetic_vcf"] = args.synthetic.name
            synthetic = common_snp(args.synthetic)
        result["stored_bytes_total"] = sum(store.sizes("beacon").values())
        config = root / "beacon.json"
        config.write_text(json.dumps({"budget_limit": 0, "audit_db": str(root / "audit.db")}))
        env = {
            "SANDGRAIN_HOME": str(root / "home"),
            "SANDGRAIN_STORE": url,
            "SANDGRAIN_S3_ENDPOINT": s3.endpoint,
            "SANDGRAIN_EXECUTOR": "serial",
            "SANDGRAIN_BEACON_CONFIG": str(config),
        }
        spec = root / "spec.json"
        spec.write_text(
            json.dumps(
                {"env": env, "requests": args.requests, "sequence": sequence,
                 "synthetic": synthetic}
            )
        )  # fmt: skip
        child = subprocess.run(
            [sys.executable, __file__, "--instance", str(spec)],
            capture_output=True, text=True, env={**os.environ, **s3.env()}, check=False,
        )  # fmt: skip
        if child.returncode != 0:
            print(child.stderr[-3000:], file=sys.stderr)
            result["error"] = child.stderr[-1000:]
            write_atomically(args.out, result)
            return 1
        result["instance"] = json.loads(child.stdout.strip().splitlines()[-1])
    inst = result["instance"]
    warm = [c["mean_ms"] for c in inst["cases"]]
    mean_ms = statistics.fmean(warm)
    result["warm_mean_ms_over_cases"] = mean_ms
    # Lambda bills configured memory × duration rounded up to 1 ms.
    result["gb_s_per_warm_query"] = args.memory_mb / 1024 * (int(mean_ms) + 1) / 1000
    write_atomically(args.out, result)

    print(f"beacon_lambda: {result['machine']['platform']}, {result['machine']['cpus']} CPUs")
    print(
        f"cold start: import {inst['import_s']:.2f} s, app {inst['build_app_s']:.2f} s, "
        f"first query {inst['cold_first_query_s']:.2f} s "
        f"({inst['cold_first_query_s3_requests']} S3 requests); "
        f"peak RSS {inst['rss_peak_mb']:.0f} MB"
    )
    print(
        f"{'case':44} {'first ms':>9} {'S3 req':>6} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} "
        f"{'S3 req':>6}  granularity"
    )
    for c in inst["cases"]:
        print(
            f"{c['case']:44} {c['first_ms']:9.1f} {c['first_s3_requests']:6d} {c['p50_ms']:8.1f} "
            f"{c['p95_ms']:8.1f} {c['mean_ms']:8.1f} {c['s3_requests_per_query']:6.2f}  "
            f"{c['returned_granularity']}"
        )
    print(
        f"warm mean over cases {mean_ms:.1f} ms → {result['gb_s_per_warm_query']:.4f} GB-s per "
        f"query at {args.memory_mb} MB; results in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
