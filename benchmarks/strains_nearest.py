#!/usr/bin/env python
"""Nearest strains at scale (issue 15 §7): the exact k-nearest search on 100,000 and 1,000,000
synthetic genomes, cold through the CLI and warm in process, against a plain numpy brute force
in the same run; index build time and memory; profile search; the self-splitting fan-out on a
local Dask cluster.

For each size N, N + Q genomes are made by :mod:`sandgrain.strains.simulate` (evolved from the
MN908947 reference over two years at 24 substitutions a genome a year, with indels, trimmed ends,
amplicon dropouts, ambiguity codes and 3 % bad genomes). The first N become a collection in a
temporary store **from their true calls** — what ``strains add`` would store if its alignments
were perfect (its own rate is measured by ``benchmarks/strains_ingest.py``; aligning a million
genomes would add ≈ 22 minutes on this machine and change nothing here) — in calls parts of
5,000 genomes, each with its index file, as ``strains add`` writes them. The last Q genomes are
the queries, written as FASTA: the CLI aligns and calls them as a user's samples.

Measured:

1. **index build**: :func:`sandgrain.strains.index.build_part` over all N genomes (the work the
   add tasks do for the index), seconds and µs per genome; the index's size in memory.
2. **CLI, cold** (a fresh process: Python start, imports, reading the index from the store,
   aligning the queries, the search, writing JSON to a file): one query, and Q queries.
3. **warm, in process**: the partition loaded once, then one query at a time
   (:func:`sandgrain.strains.nearest.rank`: median and 95th percentile over 50 queries), and
   :func:`~sandgrain.strains.nearest.nearest` for all Q queries (their calls made beforehand).
4. **peer**: a plain numpy brute force (every genome as a dense row of states over the
   reference, compared with the query row where both cover, 1,000 genomes at a time) for
   ``--peer-queries`` queries; its answers must equal the search's (checked).
5. **profile search** (:func:`sandgrain.strains.profile.profile_search`, warm): three
   expressions, median of 7.
6. **Dask**: the search of 10 queries on a local Dask cluster (``dask-local:2``) with a 0.2 s
   task budget: the tasks planned and the answers they returned (more when tasks split).

Usage::

    python benchmarks/strains_nearest.py                       # N = 100,000 and 1,000,000
    python benchmarks/strains_nearest.py --sizes 20000 --queries 100   # a quick look
    python benchmarks/strains_nearest.py --keep /data/bench   # keep the stores (store-N)
    python benchmarks/strains_nearest.py --sizes 1000000 --keep /data/bench --warm-only

Results go to ``--out`` (JSON, written atomically) and a summary table to stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
NCOV = DATA / "pathogen/sars-cov-2-ncov-example"
PART = 5000
WARM_ONLY = False  # --warm-only: skip the CLI, the brute force, profiles and Dask


class Peak:
    """Peak resident memory of this process while a block runs (sampled every 20 ms)."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def above(self) -> int:
        return self.peak - self.base


def make_collection(store, genome, sims, name: str) -> dict:
    """A collection dataset from true calls, in the layout ``strains add`` publishes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sandgrain.strains.collection import (
        FORMAT,
        FORMAT_VERSION,
        KIND,
        _cds_json,
        _reference_of,
        calls_table,
    )
    from sandgrain.strains.index import build_part, index_file
    from sandgrain.strains.mutations import Calls

    chrom, ref, cds = _reference_of(genome)
    build_s = 0.0
    meta_cols = {"strain": [], "date": [], "country": [], "region": []}
    part_genomes = {}
    statuses = {"good": 0, "mediocre": 0, "bad": 0}
    with store.new_dataset(KIND, name, format=FORMAT, format_version=FORMAT_VERSION) as ds:
        ds.write_bytes("reference.fa", f">{chrom}\n{ref}\n".encode())
        ds.write_bytes("cds.json", _cds_json(cds))
        for p in range(0, len(sims), PART):
            calls = []
            for g in sims[p : p + PART]:
                t = g.calls
                status = "bad" if g.defect else "good"
                statuses[status] += 1
                calls.append(
                    Calls(strain=g.strain, substitutions=t.substitutions, deletions=t.deletions,
                          insertions=t.insertions, missing=t.missing,
                          mixed=list(getattr(t, "mixed", [])), qc={"status": status},
                          alignment_start=1, alignment_end=len(ref))
                )  # fmt: skip
                for c in meta_cols:
                    meta_cols[c].append(g.strain if c == "strain" else getattr(g, c))
            file = f"calls/p{p // PART:06d}.parquet"
            sink = io.BytesIO()
            pq.write_table(calls_table(calls), sink, compression="zstd")
            ds.write_bytes(file, sink.getvalue())
            t0 = time.perf_counter()
            blob = build_part(calls, len(ref)).to_bytes()
            build_s += time.perf_counter() - t0
            ds.write_bytes(index_file(file), blob)
            part_genomes[file] = len(calls)
        sink = io.BytesIO()
        pq.write_table(pa.table(meta_cols), sink, compression="zstd")
        ds.write_bytes("metadata.parquet", sink.getvalue())
        ds.meta = {
            "genomes": len(sims),
            "reference": {"genome": genome.name, "sequence": chrom, "length": len(ref),
                          "cds": [c.name for c in cds]},
            "id_column": "strain", "date_column": "date", "statuses": statuses,
            "part_genomes": part_genomes,
        }  # fmt: skip
        ds.provenance = {"command": "benchmarks/strains_nearest.py", "from": "simulated true calls"}
    return {"index_build_s": build_s, "statuses": statuses}


def numpy_peer(index, query, k: int) -> list[tuple[str, int, int]]:
    """Plain numpy brute force over every event of every genome (no kernel, no index tricks):
    each event is looked up in the query's events with ``np.isin``, each query event's position
    in every genome's missing ranges; the sums per genome give the distance and covered length,
    then the ranking."""
    from sandgrain.strains.nearest import _prepare

    q = _prepare(query, index)
    L = index.length
    rows = np.repeat(np.arange(index.n), np.diff(index.ev_ptr))
    pos = np.maximum(index.ev_slot >> 1, 1)
    q_cov_ev = q.miss[pos] == 0  # the query covers the genome's event
    key = (index.ev_slot.astype(np.int64) << 32) | (index.ev_state.astype(np.int64) & 0xFFFFFFFF)
    q_key = (q.slots.astype(np.int64) << 32) | (q.states.astype(np.int64) & 0xFFFFFFFF)
    agree = np.isin(key, q_key) & q_cov_ev
    same_slot = np.isin(index.ev_slot, q.slots) & q_cov_ev & ~agree
    n_agree = np.bincount(rows[agree], minlength=index.n)
    n_same = np.bincount(rows[same_slot], minlength=index.n)
    n_g_only = np.bincount(rows[q_cov_ev & ~agree], minlength=index.n)
    mrows = np.repeat(np.arange(index.n), np.diff(index.ms_ptr))
    q_missing_in_g = np.zeros(index.n, np.int64)
    for p in np.maximum(q.slots >> 1, 1).tolist():
        inside = (index.ms_start <= p) & (p < index.ms_end)
        q_missing_in_g += np.bincount(mrows[inside], minlength=index.n)
    n_q_cov = q.slots.size - q_missing_in_g
    dist = n_g_only + (n_q_cov - n_agree - n_same)
    lengths = (index.ms_end - index.ms_start) - (
        q.miss_cum[index.ms_end] - q.miss_cum[index.ms_start]
    )
    cov = (
        L
        - q.missing_total
        - np.bincount(mrows, weights=lengths, minlength=index.n).astype(np.int64)
    )
    usable = np.flatnonzero(index.status != 3)
    key = dist[usable] * (L + 2) + (L - cov[usable])
    kth = np.partition(key, min(k, key.size) - 1)[min(k, key.size) - 1]
    cut = usable[key <= kth]  # every genome up to the k-th (distance, covered): ties by name
    best = sorted(cut.tolist(), key=lambda r: (dist[r], -cov[r], index.strains[r]))
    return [(index.strains[r], int(dist[r]), int(cov[r])) for r in best[:k]]


def run_size(
    n: int, q: int, peer_queries: int, workdir: Path, ref: str, genome_src, keep: Path | None
) -> dict:
    from sandgrain.genome.store import add_genome
    from sandgrain.storage import Store
    from sandgrain.strains.simulate import SimulationParams, simulate

    out: dict = {"genomes": n, "queries": q}
    store_root = (keep or workdir) / f"store-{n}"
    saved = (keep or workdir) / f"queries-{n}-{q}.fa"
    if keep is not None and store_root.exists() and saved.exists():
        return measure(n, q, peer_queries, workdir, store_root, saved, out, reused=True)
    t0 = time.perf_counter()
    sims, queries = [], []
    step = (n + q) // q
    have_store = keep is not None and store_root.exists()  # only the queries are missing
    for i, g in enumerate(simulate(ref, SimulationParams(n=n + q, seed=15))):
        # every step-th genome is held out as a query: queries spread over the whole period
        if i % step == 0 and len(queries) < q:
            queries.append(g)
        elif not have_store:
            g.sequence = ""  # the collection needs the calls only (a million sequences: 30 GB)
            sims.append(g)
    out["simulate_s"] = round(time.perf_counter() - t0, 1)
    sims = sims[:n]
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text("".join(f">{g.strain}\n{g.sequence}\n" for g in queries))
    if have_store:
        return measure(n, q, peer_queries, workdir, store_root, saved, out, reused=True)
    store = Store(str(store_root))
    genome = add_genome(store, "MN908947", str(genome_src[0]), annotation=str(genome_src[1]))
    with Peak():
        t0 = time.perf_counter()
        made = make_collection(store, genome, sims, "sim")
        out["collection_write_s"] = round(time.perf_counter() - t0, 1)
    out["index_build_s"] = round(made["index_build_s"], 2)
    out["index_build_us_per_genome"] = round(made["index_build_s"] / n * 1e6, 1)
    del sims
    return measure(n, q, peer_queries, workdir, store_root, saved, out, reused=False)


def measure(n, q, peer_queries, workdir, store_root, saved, out, reused) -> dict:
    """Everything but making the collection: the CLI cold, warm, the peer, profile, Dask."""
    from sandgrain.storage import Store
    from sandgrain.strains.collection import Collection, read_fasta
    from sandgrain.strains.index import load_partition
    from sandgrain.strains.nearest import nearest, query_from_calls, rank
    from sandgrain.strains.query import calls_from_sequences

    out["collection_reused"] = reused
    store = Store(str(store_root))
    records = list(read_fasta(saved))
    fasta1, fastaq = workdir / f"q1-{n}.fa", saved
    fasta1.write_text(f">{records[0][0]}\n{records[0][1]}\n")

    env = {
        **os.environ,
        "SANDGRAIN_STORE": str(store_root),
        "SANDGRAIN_HOME": str(workdir / "home"),
    }
    exe = str(REPO / ".venv" / "bin" / "sandgrain")
    cold = () if WARM_ONLY else (("cli_cold_1_query", fasta1), (f"cli_cold_{q}_queries", fastaq))
    for label, fasta in cold:
        t0 = time.perf_counter()
        with open(workdir / "answer.json", "w") as fh:
            cmd = [exe, "strains", "nearest", "-c", "sim", "--fasta", str(fasta), "-k", "10", "-q"]
            res = subprocess.run(cmd, stdout=fh, stderr=subprocess.PIPE, env=env)
        if res.returncode:
            raise SystemExit(res.stderr.decode())
        out[label + "_s"] = round(time.perf_counter() - t0, 2)
    out["cli_executor"] = os.environ.get("SANDGRAIN_EXECUTOR", "local")

    coll = Collection.open(store, "sim")
    with Peak() as mem:
        t0 = time.perf_counter()
        part = load_partition(coll, coll.parts())
        out["index_load_s"] = round(time.perf_counter() - t0, 2)
    out["index_memory_mb"] = round(mem.above / 2**20, 1)
    ix = part.index
    out["events"] = int(ix.ev_slot.size)
    t0 = time.perf_counter()
    qcalls = list(calls_from_sequences(coll, records))
    out["align_queries_s"] = round(time.perf_counter() - t0, 2)
    length = ix.length
    qs = [query_from_calls(c, length) for c in qcalls]
    rank(ix, qs[0], 10)  # compile / warm
    times = []
    for qq in qs[:50]:
        t0 = time.perf_counter()
        rank(ix, qq, 10)
        times.append(time.perf_counter() - t0)
    out["warm_1_query_ms_median"] = round(float(np.median(times)) * 1e3, 1)
    out["warm_1_query_ms_p95"] = round(float(np.percentile(times, 95)) * 1e3, 1)
    nearest(store, [coll], qcalls[:2], k=10)  # metadata and reference kept, as a server does
    t0 = time.perf_counter()
    answers = nearest(store, [coll], qcalls, k=10)
    out[f"warm_{q}_queries_s"] = round(time.perf_counter() - t0, 2)
    if WARM_ONLY:
        return out

    peer_t = []
    for i in range(min(peer_queries, len(qs))):
        t0 = time.perf_counter()
        want = numpy_peer(ix, qs[i], 10)
        peer_t.append(time.perf_counter() - t0)
        got = [(nb["strain"], nb["distance"], nb["covered"]) for nb in answers[i]["neighbours"]]
        if got != want:
            raise SystemExit(
                f"the search and the brute force differ for {qs[i].name}:\n{got}\n{want}"
            )
    out["peer_queries_checked"] = len(peer_t)
    out["peer_1_query_s"] = round(float(np.mean(peer_t)), 2)
    out["ratio_peer_over_warm"] = round(
        out["peer_1_query_s"] * 1e3 / out["warm_1_query_ms_median"], 0
    )

    from sandgrain.strains.profile import profile_search

    # three common substitutions of the collection (1st, 5th and 20th most frequent)
    is_sub = (ix.ev_slot % 2 == 0) & (ix.ev_state >= 0) & (ix.ev_state < 4)
    keys, counts = np.unique(ix.ev_slot[is_sub].astype(np.int64) * 4 + ix.ev_state[is_sub],
                             return_counts=True)  # fmt: skip
    top = keys[np.argsort(-counts)][[0, 4, 19]]
    ref = coll.reference()
    subs = [f"{ref[k // 8 - 1]}{k // 8}{'ACGT'[k % 4]}" for k in top.tolist()]
    exprs = [f"{subs[0]} & {subs[1]} & !{subs[2]}", " | ".join(subs), "region:21563-25384"]
    profile_search([coll], exprs[0])
    out["profile"] = {}
    for e in exprs:
        ts = []
        for _ in range(7):
            t0 = time.perf_counter()
            doc = profile_search([coll], e)
            ts.append(time.perf_counter() - t0)
        out["profile"][e] = {
            "ms_median": round(float(np.median(ts)) * 1e3, 1),
            "count": doc["count"],
        }

    from sandgrain.fanout import TaskBudget

    stats: dict = {}
    t0 = time.perf_counter()
    dask_answers = nearest(store, [coll], qcalls[:10], k=10, executor="dask-local:2",
                           budget=TaskBudget(seconds=0.2), partition_genomes=max(n // 4, 1),
                           chunk_rows=10_000, stats=stats)  # fmt: skip
    out["dask_10_queries_s"] = round(time.perf_counter() - t0, 1)
    out["dask_tasks_planned"] = stats["tasks_planned"]
    out["dask_answers"] = stats["tasks_answered"]
    out["dask_equal"] = dask_answers == answers[:10]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--peer-queries", type=int, default=2)
    ap.add_argument("--out", default="strains_nearest.json")
    ap.add_argument("--keep", type=Path, help="keep the stores here (store-N), e.g. for the map")
    ap.add_argument(
        "--warm-only",
        action="store_true",
        help="with --keep and a store already there: only the warm search (a quiet re-measure)",
    )
    args = ap.parse_args()
    global WARM_ONLY
    WARM_ONLY = args.warm_only
    ref = "".join((NCOV / "reference_seq.fasta").read_text().split("\n", 1)[1].split())
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "runs": [],
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            load = os.getloadavg()[0]
            row = run_size(n, args.queries, args.peer_queries, Path(tmp), ref,
                           (NCOV / "reference_seq.fasta", NCOV / "reference_seq.gb"),
                           args.keep)  # fmt: skip
            row["load_before"] = round(load, 2)
            row["load_after"] = round(os.getloadavg()[0], 2)
            result["runs"].append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(result, indent=1) + "\n")
    tmp_out.replace(out)
    cols = ("genomes", "index_build_s", "cli_cold_1_query_s", f"cli_cold_{args.queries}_queries_s",
            "warm_1_query_ms_median", f"warm_{args.queries}_queries_s", "peer_1_query_s",
            "ratio_peer_over_warm", "dask_tasks_planned", "dask_answers")  # fmt: skip
    print("\t".join(cols))
    for r in result["runs"]:
        print("\t".join(str(r.get(c)) for c in cols))


if __name__ == "__main__":
    main()
