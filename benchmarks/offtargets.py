#!/usr/bin/env python
"""Off-target search benchmark for sandgrain (issue 3 §7).

What it measures, for SpCas9 (NGG PAM, 20-nt protospacers) on (a) yeast R64, (b) the real human
chrX 1–70 Mb slice and (c) a synthetic genome of ``--synthetic-gbp`` Gbp (default 3.1) that the
script writes with the generator of ``benchmarks/genome_import.py``:

1. **Index build**: ``build_index`` twice, each in a fresh child process: with
   ``executor="serial"`` (one process does every partition, so the child's ``VmHWM`` is the
   peak of one partition worker) and with ``executor="local:2"`` (the wall time a 2-core user
   gets). For the local:2 build the summed memory of the whole process tree (coordinator,
   forkserver, workers) is sampled every 0.25 s from ``/proc``: the sum of PSS (shared pages
   split between the processes that map them) and the sum of RSS.
2. **Search**: ``search_table`` for 100 and 1,000 guides at 3 and 4 mismatches, for two kinds of
   guides: *drawn* (protospacers of real NGG sites drawn from the genome: each has at least its
   own site as a hit, and in real genomes many sit in repeats with thousands of hits) and
   *random* (uniform random 20-mers); and a *gene* set: the first 200 NGG sites (both strands)
   of a random 5 kb window, about one gene's worth. Every search runs twice in the same process:
   *cold* first (the index files evicted from the page cache with ``posix_fadvise(DONTNEED)``
   and the in-process caches cleared, so it reads the index from disk through mmap) and *warm*
   second. Three executors: ``serial`` (in process); ``local:2`` passed as a URL (a new pool of
   2 worker processes per call, so every call pays for the pool start and the workers' imports
   and JIT-cache load); and an open ``local:2`` pool passed as an ``Executor`` (started once per
   case, timed apart, then cold and warm runs). The very first search of the search process is
   reported on its own: it also loads numba's JIT cache. Hits are counted and checked: both runs
   and all executors must return identical tables; each drawn guide must hit its own site.
3. **Peer**: Debian's bowtie 1 (``bowtie-build``, then ``bowtie -f -v 3 -a --threads 2``) on
   yeast and chrX for the same 100 and 1,000 drawn guides (3 mismatches is bowtie's maximum).
   Bowtie's alignments next to an NGG are compared with sandgrain's 3-mismatch hits.
4. **Targets** of issue 3 on 3.1 Gbp, each PASS or MISS: 1,000 guides × 4 mismatches ≤ 10 s once
   the index is loaded (warm); ~200 guides ≤ 2 s (warm); index build ≤ 30 min and ≤ 16 GB.

The heavy steps run in child processes (this script with ``--child``) started in their own
process group; the parent samples their memory and stops a step that goes over the memory or
time limit (``--max-build-gb``, ``--max-build-min``) instead of letting it thrash the machine.

Usage::

    python benchmarks/offtargets.py                  # full run (~20–40 minutes, ~14 GB of disk)
    python benchmarks/offtargets.py --quick          # yeast + chrX, 100 / 200 guides, < 3 min
    python benchmarks/offtargets.py --skip-synthetic --workdir /big/tmp

Results go to ``--out`` (JSON, written atomically) and a summary table to stdout; progress lines
go to stderr. Exit status: 0 ok, 1 a failed check or error, 2 a bad setup (no data, no disk).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import gzip
import hashlib
import importlib.util
import json
import mmap
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np


def _load_genome_import():
    """``benchmarks/genome_import.py`` as a module: its generator and machine helpers."""
    path = Path(__file__).resolve().with_name("genome_import.py")
    spec = importlib.util.spec_from_file_location("_sandgrain_bench_genome_import", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gi = _load_genome_import()
BenchmarkError = gi.BenchmarkError
SetupError = gi.SetupError
write_json_atomic = gi.write_json_atomic
vm_hwm_bytes = gi.vm_hwm_bytes
utc_now = gi.utc_now

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = "benchmarks/results/offtargets.json"
GENOMES = {
    "yeast": ("genomes/yeast-R64/Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz", "yeast R64"),
    "chrx": ("genomes/human-grch37-chrX-1-70M/hs37chrXtrunc.fa.gz", "human chrX 1–70 Mb"),
}
PAM, LENGTH, PAM_SIDE = "NGG", 20, "3"
GENE_GUIDES = 200
GENE_WINDOW = 5_000
DRAW_WINDOW = 1_000
MODES = ("serial", "local:2", "local:2 pool")
MiB = 1 << 20
GB = 1e9
_T0 = float(os.environ.get("SANDGRAIN_BENCH_T0", time.time()))
_COMP = str.maketrans("ACGTN", "TGCAN")
_SITE_PLUS = re.compile(r"(?=([ACGT]{20})[ACGT]GG)")
_SITE_MINUS = re.compile(r"(?=CC[ACGT]([ACGT]{20}))")


def log(msg: str) -> None:
    print(f"[offtargets {time.time() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


# ---------------------------------------------------------------------------------------------
# Page cache and process-tree memory
# ---------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
_PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_fraction(paths: list[str]) -> float:
    """Share of the bytes of ``paths`` that sit in the page cache (``mincore``)."""
    total = resident = 0
    for p in paths:
        size = os.path.getsize(p)
        if size == 0:
            continue
        pages = -(-size // _PAGE)
        fd = os.open(p, os.O_RDONLY)
        try:
            addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                raise OSError(ctypes.get_errno(), f"mmap {p}")
            try:
                vec = (ctypes.c_ubyte * pages)()
                if _libc.mincore(addr, size, vec) != 0:
                    raise OSError(ctypes.get_errno(), f"mincore {p}")
                resident += int((np.frombuffer(vec, np.uint8) & 1).sum())
            finally:
                _libc.munmap(addr, size)
        finally:
            os.close(fd)
        total += pages
    return resident / total if total else 0.0


def evict(paths: list[str]) -> None:
    """Drop ``paths`` from the page cache (their pages must not be mapped by a live process)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fdatasync(fd)  # dirty pages cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _set_subreaper() -> bool:
    """Make orphaned descendants (a pool's forkserver) our children, so we reap them and their
    CPU time counts as ours, not as 'other load'."""
    try:
        return _libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (AttributeError, OSError):
        return False


def _reap_orphans(wait_s: float = 5.0) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out


def _mem_of(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) of a process in bytes; None if it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            rss = int(fh.read().split()[1]) * _PAGE
        pss = rss
        with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
        return rss, pss
    except (OSError, IndexError, ValueError):
        return None


def mem_available() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


class TreeSampler(threading.Thread):
    """Samples the memory of all descendants of this process (not itself) every ``interval``.

    Stops the step (``trip``) when their summed PSS goes over ``limit`` bytes or the machine's
    available memory falls under ``floor`` bytes.
    """

    def __init__(self, interval: float, limit: float | None, floor: float):
        super().__init__(daemon=True)
        self.interval = interval
        self.limit = limit
        self.floor = floor
        self.stop_event = threading.Event()
        self.peak_pss = self.peak_rss = self.peak_procs = 0
        self.max_single_rss = 0
        self.min_available = mem_available()
        self.samples = 0
        self.tripped: str | None = None

    def run(self) -> None:
        me = os.getpid()
        while not self.stop_event.is_set():
            rss = pss = procs = 0
            for pid in _descendants(me):
                m = _mem_of(pid)
                if m is None:
                    continue
                rss += m[0]
                pss += m[1]
                procs += 1
                self.max_single_rss = max(self.max_single_rss, m[0])
            avail = mem_available()
            self.samples += 1
            self.min_available = min(self.min_available, avail)
            if pss > self.peak_pss:
                self.peak_pss, self.peak_procs = pss, procs
            self.peak_rss = max(self.peak_rss, rss)
            if self.limit is not None and pss > self.limit and not self.tripped:
                self.tripped = f"memory: the process tree reached {pss / GB:.1f} GB PSS"
            if avail < self.floor and not self.tripped:
                self.tripped = f"memory: only {avail / GB:.1f} GB left available on the machine"
            self.stop_event.wait(self.interval)

    def stats(self) -> dict:
        return {
            "tree_peak_pss_mib": self.peak_pss / MiB,
            "tree_peak_rss_mib": self.peak_rss / MiB,
            "tree_processes_at_peak": self.peak_procs,
            "largest_process_rss_mib": self.max_single_rss / MiB,
            "machine_min_available_gib": self.min_available / (1 << 30),
            "samples": self.samples,
            "interval_s": self.interval,
        }


_running: dict[int, subprocess.Popen] = {}


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_child(
    workdir: Path,
    op: str,
    spec: dict,
    label: str,
    *,
    time_limit: float | None = None,
    mem_limit: float | None = None,
    interval: float = 0.25,
    floor: float = 1.0 * (1 << 30),
) -> dict:
    """Run ``op`` in a fresh child process (own process group) and return its result dict."""
    tag = uuid.uuid4().hex[:8]
    spec_path = workdir / f"child-{tag}.json"
    result_path = workdir / f"child-{tag}.result.json"
    spec = dict(spec, op=op, label=label, result_path=str(result_path))
    spec_path.write_text(json.dumps(spec))
    env = os.environ.copy()
    env["TMPDIR"] = str(workdir)  # index scratch files go here and are cleaned with it
    env["SANDGRAIN_BENCH_T0"] = repr(_T0)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)]
    log(f"{label}: child process starting")
    sampler = TreeSampler(interval, mem_limit, floor)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    _running[proc.pid] = proc
    sampler.start()
    stopped = None
    try:
        while True:
            pid, status, _ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if sampler.tripped and not stopped:
                stopped = sampler.tripped
            if time_limit is not None and time.perf_counter() - t0 > time_limit and not stopped:
                stopped = f"time: still running after {time_limit / 60:.0f} min"
            if stopped:
                log(f"{label}: stopping it ({stopped})")
                _kill_group(proc)
            time.sleep(0.1)
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        _running.pop(proc.pid, None)
        sampler.stop_event.set()
        sampler.join()
        _kill_group(proc)  # leftovers of the group (a forkserver), if any
        _reap_orphans()
        spec_path.unlink(missing_ok=True)
    process_s = time.perf_counter() - t0
    if stopped:
        result_path.unlink(missing_ok=True)
        raise LimitExceeded(f"{label} stopped at {process_s:.0f} s: over the limit on {stopped}")
    if proc.returncode != 0:
        raise BenchmarkError(f"{label}: child process failed (exit {proc.returncode})")
    res = json.loads(result_path.read_text())
    result_path.unlink()
    res["process_s"] = process_s
    res["tree"] = sampler.stats()
    return res


class LimitExceeded(BenchmarkError):
    """A step went over its memory or time limit and was stopped."""


# ---------------------------------------------------------------------------------------------
# Child mode
# ---------------------------------------------------------------------------------------------


def _family():
    from sandgrain.guides.siteindex import SiteFamily

    return SiteFamily((PAM,), LENGTH, PAM_SIDE)


def child_import(spec: dict) -> dict:
    from sandgrain.genome.store import add_genome
    from sandgrain.storage import Store

    t0 = time.perf_counter()
    genome = add_genome(Store(spec["store"]), spec["name"], spec["fasta"], replace=True)
    wall = time.perf_counter() - t0
    chroms = genome.chromosomes
    return {
        "wall_s": wall,
        "peak_rss_mib": vm_hwm_bytes() / MiB,
        "bases": sum(c["length"] for c in chroms),
        "sequences": len(chroms),
        "n_count": sum(c["n_count"] for c in chroms),
        "masked": sum(c["masked"] for c in chroms),
        "stored_bytes": genome.dataset.manifest["total_size"],
    }


def child_build(spec: dict) -> dict:
    t0 = time.perf_counter()
    from sandgrain.genome.store import open_genome
    from sandgrain.guides.siteindex import build_index
    from sandgrain.storage import Store

    imports_s = time.perf_counter() - t0
    base_rss = vm_hwm_bytes()
    genome = open_genome(Store(spec["store"]), spec["name"])
    label = spec["label"]
    state = {"last": time.monotonic(), "t0": time.monotonic()}

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - state["last"] >= 15:
            state["last"] = now
            log(f"  [{label}] {done}/{total} partitions, {now - state['t0']:.0f} s")

    t0 = time.perf_counter()
    ds = build_index(
        genome,
        _family(),
        executor=spec["executor"],
        partition_bp=spec["partition_bp"],
        progress=progress,
    )
    wall = time.perf_counter() - t0
    files = ds.manifest["files"]
    digest = hashlib.sha256(
        json.dumps(sorted((f, i["sha256"]) for f, i in files.items())).encode()
    ).hexdigest()
    meta = ds.meta
    return {
        "executor": spec["executor"],
        "wall_s": wall,
        "imports_s": imports_s,
        "peak_rss_mib": vm_hwm_bytes() / MiB,
        "interpreter_rss_mib": base_rss / MiB,
        "sites": meta["sites"],
        "n_sites": sum(p["n_sites"] for p in meta["partitions"]),
        "partitions": len(meta["partitions"]),
        "index_bytes": ds.manifest["total_size"],
        "files": len(files),
        "content_digest": digest,
    }


def _table_facts(tab, k: int) -> dict:
    counts = tab.counts(k)
    per_guide = counts.sum(axis=1)
    h = hashlib.sha1()
    for col in (tab.guide, tab.chrom, tab.pos0, tab.minus, tab.mismatches, tab.pattern):
        h.update(np.ascontiguousarray(col).tobytes())
    return {
        "hits": int(len(tab)),
        "hits_by_mismatches": counts.sum(axis=0).tolist(),
        "hits_per_guide": {
            "min": int(per_guide.min()),
            "median": float(np.median(per_guide)),
            "p90": float(np.percentile(per_guide, 90)),
            "max": int(per_guide.max()),
            "guides_without_hits": int((per_guide == 0).sum()),
            "guides_over_1000_hits": int((per_guide > 1000).sum()),
        },
        "digest": h.hexdigest(),
    }


def warm_worker(store: dict, index: str, version: str, guides_key: str, pause: float) -> int:
    """Pool warm-up task: this worker imports the search code and loads numba's JIT cache.

    The pause keeps the worker busy, so the other worker of the pool takes the other warm-up
    task. The worker's caches are cleared afterwards, so it maps no index page.
    """
    time.sleep(pause)
    from sandgrain.guides import search as sg

    sg.search_partition(store, index, version, 0, guides_key, 4)
    for name in ("_load_partition", "_prepared"):
        fn = getattr(sg, name, None)
        if hasattr(fn, "cache_clear"):
            fn.cache_clear()
    gc.collect()
    return os.getpid()


def child_search(spec: dict) -> dict:
    t0 = time.perf_counter()
    from sandgrain.fanout import Task, open_executor, run_plan
    from sandgrain.genome.store import open_genome
    from sandgrain.guides import search as sg
    from sandgrain.guides.siteindex import open_index
    from sandgrain.storage import Store

    imports_s = time.perf_counter() - t0
    label = spec["label"]
    fam = _family()
    store = Store(spec["store"])
    genome = open_genome(store, spec["name"])
    ds = open_index(genome, fam)
    files = [ds.local_path(f) for f in ds.manifest["files"]]
    guides: dict[str, list[str]] = spec["guides"]
    do_evict = spec["evict"]

    def clear_caches() -> None:
        for name in ("_load_partition", "_prepared"):
            fn = getattr(sg, name, None)
            if hasattr(fn, "cache_clear"):
                fn.cache_clear()
        gc.collect()

    def go_cold() -> float:
        clear_caches()  # this process must not map the index, or its pages stay cached
        if do_evict:
            evict(files)
        return resident_fraction(files)

    def search(kind: str, n: int, k: int, executor):
        t = time.perf_counter()
        tab = sg.search_table(genome, guides[kind][:n], fam, k, executor=executor)
        return time.perf_counter() - t, tab

    out: dict = {"imports_s": imports_s, "index_files": len(files), "cases": []}
    # The very first search of this process: numba loads its cache of compiled kernels here.
    first = spec["cases"][0]
    resident = go_cold()
    first_s, tab = search(first["kind"], first["n"], first["k"], "serial")
    out["first_search"] = {
        "case": first,
        "seconds": first_s,
        "index_resident_before": resident,
        "hits": len(tab),
    }
    del tab
    log(
        f"  [{label}] first search of the process ({first['kind']} {first['n']}, "
        f"k={first['k']}): {first_s:.2f} s"
    )
    for case in spec["cases"]:
        kind, n, k = case["kind"], case["n"], case["k"]
        rec: dict = dict(case, runs={})
        digest = None
        for mode in spec["modes"]:
            run: dict = {}
            ex = None
            try:
                if mode == "serial":
                    executor = "serial"
                elif mode == "local:2":
                    executor = "local:2"
                else:  # an open pool, passed as an Executor, started and warmed up first
                    warm_key = f"scratch/bench-warmup-{uuid.uuid4().hex}.json"
                    store.write_bytes(warm_key, json.dumps(["ACGT" * (LENGTH // 4)]).encode())
                    pause = 0.5
                    warm_args = {
                        "store": store.reference(),
                        "index": ds.name,
                        "version": ds.manifest["version"],
                        "guides_key": warm_key,
                        "pause": pause,
                    }
                    t = time.perf_counter()
                    ex = open_executor("local:2")
                    pids = run_plan(
                        [Task(f"{Path(__file__).stem}:warm_worker", warm_args) for _ in range(2)],
                        ex,
                    )
                    run["pool_start_s"] = time.perf_counter() - t - pause
                    run["pool_workers_warmed"] = len(set(pids))
                    store.delete(warm_key)
                    executor = ex
                run["index_resident_before_cold"] = go_cold()
                run["cold_s"], tab = search(kind, n, k, executor)
                facts = _table_facts(tab, k)
                if kind == "drawn" and facts["hits_per_guide"]["min"] < 1:
                    raise BenchmarkError(f"{label}: a drawn guide does not hit its own site")
                del tab
                run["index_resident_before_warm"] = resident_fraction(files)
                run["warm_s"], tab = search(kind, n, k, executor)
                facts2 = _table_facts(tab, k)
                if case.get("save_hits") and mode == "serial":
                    np.savez(
                        case["save_hits"],
                        guide=tab.guide,
                        chrom=tab.chrom,
                        pos0=tab.pos0,
                        minus=tab.minus,
                        mismatches=tab.mismatches,
                        has_n=(tab.protospacer > 3).any(axis=1),
                        chroms=np.array(tab.chroms),
                    )
                del tab
            finally:
                if ex is not None:
                    ex.close()
            if facts2["digest"] != facts["digest"]:
                raise BenchmarkError(f"{label}: {kind} {n} k={k} {mode}: runs differ")
            if digest is None:
                digest = facts["digest"]
                rec.update(facts)
            elif facts["digest"] != digest:
                raise BenchmarkError(f"{label}: {kind} {n} k={k}: {mode} differs from serial")
            rec["runs"][mode] = run
            log(
                f"  [{label}] {kind:>6} {n:>5} k={k} {mode:<12} cold {run['cold_s']:7.2f} s  "
                f"warm {run['warm_s']:7.2f} s  hits {facts['hits']:,}"
                + (f"  (pool start {run['pool_start_s']:.2f} s)" if "pool_start_s" in run else "")
            )
        out["cases"].append(rec)
    out["peak_rss_mib"] = vm_hwm_bytes() / MiB
    return out


def child_main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    ops = {"import": child_import, "build": child_build, "search": child_search}
    result = ops[spec["op"]](spec)
    write_json_atomic(Path(spec["result_path"]), result)
    return 0


# ---------------------------------------------------------------------------------------------
# Guides
# ---------------------------------------------------------------------------------------------


def _sites_in(seq: str) -> list[tuple[int, str, str]]:
    """NGG sites of a window, both strands: (offset of protospacer+PAM, strand, protospacer)."""
    sites = [(m.start(), "+", m.group(1)) for m in _SITE_PLUS.finditer(seq)]
    sites += [(m.start(), "-", revcomp(m.group(1))) for m in _SITE_MINUS.finditer(seq)]
    return sites


def draw_guides(genome, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct protospacers of NGG sites: one random site from each random 1 kb window."""
    chroms = [c for c in genome.chromosomes if c["length"] >= DRAW_WINDOW]
    weights = np.array([c["length"] for c in chroms], dtype=float)
    weights /= weights.sum()
    seen: set[str] = set()
    out: list[str] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n:
            raise BenchmarkError(f"could not draw {n} NGG sites from {genome.name}")
        c = chroms[int(rng.choice(len(chroms), p=weights))]
        a = int(rng.integers(0, c["length"] - DRAW_WINDOW + 1))
        sites = _sites_in(genome.sequence(c["name"], a, a + DRAW_WINDOW).upper())
        if not sites:
            continue
        guide = sites[int(rng.integers(len(sites)))][2]
        if guide not in seen:
            seen.add(guide)
            out.append(guide)
    return out


def gene_guides(genome, rng: np.random.Generator) -> tuple[list[str], str]:
    """The first 200 distinct NGG protospacers of a random window (about one gene's worth)."""
    chroms = [c for c in genome.chromosomes if c["length"] >= 10 * GENE_WINDOW]
    weights = np.array([c["length"] for c in chroms], dtype=float)
    weights /= weights.sum()
    for _ in range(1000):
        c = chroms[int(rng.choice(len(chroms), p=weights))]
        a = int(rng.integers(0, c["length"] - GENE_WINDOW + 1))
        sites = sorted(_sites_in(genome.sequence(c["name"], a, a + GENE_WINDOW).upper()))
        out = list(dict.fromkeys(s[2] for s in sites))[:GENE_GUIDES]
        if len(out) == GENE_GUIDES:
            return out, f"{c['name']}:{a + 1}-{a + GENE_WINDOW}"
    raise BenchmarkError(f"no window with {GENE_GUIDES} NGG sites in {genome.name}")


def random_guides(n: int, rng: np.random.Generator) -> list[str]:
    letters = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, size=(n, LENGTH))]
    return [row.tobytes().decode() for row in letters]


# ---------------------------------------------------------------------------------------------
# Bowtie
# ---------------------------------------------------------------------------------------------


def _timed(cmd: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float | None]:
    """Run ``cmd``; return (wall seconds, peak RSS MiB via /usr/bin/time, or None)."""
    time_bin = shutil.which("time") or (
        "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    )
    peak = None
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = [time_bin, "-f", "%M", "-o", tf.name, *cmd] if time_bin else cmd
        t0 = time.perf_counter()
        proc = subprocess.run(full, stdout=stdout, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise BenchmarkError(f"{cmd[0]} failed (exit {proc.returncode}): {proc.stderr[-500:]}")
        if time_bin:
            with contextlib.suppress(ValueError, IndexError):
                peak = int(Path(tf.name).read_text().split()[-1]) / 1024
    return wall, peak


def bench_bowtie(workdir: Path, fasta_gz: Path, guides: list[str], sizes, hits_files) -> dict:
    """bowtie-build and ``bowtie -f -v 3 -a --threads 2``; compare NGG hits with sandgrain."""
    version = subprocess.run(["bowtie", "--version"], capture_output=True, text=True).stdout
    out: dict = {"version": version.splitlines()[0].split()[-1] if version else None}
    bdir = workdir / "bowtie"
    bdir.mkdir(exist_ok=True)
    try:
        plain = bdir / "genome.fa"
        with gzip.open(fasta_gz, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        seqs: dict[str, str] = {}
        name, parts = None, []
        with open(plain) as fh:
            for line in fh:
                if line.startswith(">"):
                    if name is not None:
                        seqs[name] = "".join(parts).upper()
                    name, parts = line[1:].split()[0], []
                else:
                    parts.append(line.strip())
        if name is not None:
            seqs[name] = "".join(parts).upper()
        idx = bdir / "idx"
        log("bowtie-build --threads 2 …")
        out["build_s"], out["build_peak_rss_mib"] = _timed(
            ["bowtie-build", "--threads", "2", "-q", str(plain), str(idx)]
        )
        out["index_bytes"] = sum(p.stat().st_size for p in bdir.glob("idx*.ebwt"))
        log(f"bowtie-build: {out['build_s']:.1f} s")
        out["searches"] = {}
        for n in sizes:
            reads = bdir / f"guides-{n}.fa"
            reads.write_text("".join(f">{i}\n{g}\n" for i, g in enumerate(guides[:n])))
            res = bdir / f"hits-{n}.txt"
            cmd = [
                "bowtie",
                "-f",
                "-v",
                "3",
                "-a",
                "--threads",
                "2",
                "-x",
                str(idx),
                str(reads),
                str(res),
            ]
            runs = [_timed(cmd) for _ in range(2)]
            rec = {
                "run1_s": runs[0][0],
                "run2_s": runs[1][0],
                "peak_rss_mib": max((r[1] or 0) for r in runs) or None,
            }
            theirs: set[tuple] = set()
            alignments = 0
            with open(res) as fh:
                for line in fh:
                    alignments += 1
                    f = line.rstrip("\n").split("\t")
                    g, strand, chrom, o = int(f[0]), f[1], f[2].split()[0], int(f[3])
                    mm = len(f[7].split(",")) if len(f) > 7 and f[7] else 0
                    s = seqs[chrom]
                    if strand == "+" and o + 23 <= len(s) and s[o + 21 : o + 23] == "GG":
                        theirs.add((g, chrom, o, 0, mm))
                    elif strand == "-" and o >= 3 and s[o - 3 : o - 1] == "CC":
                        theirs.add((g, chrom, o - 3, 1, mm))
            res.unlink()
            rec["alignments"] = alignments
            rec["ngg_hits"] = len(theirs)
            hf = hits_files.get(n)
            if hf is not None and hf.exists():
                with np.load(hf) as z:
                    names = [str(x) for x in z["chroms"]]
                    rows = list(
                        zip(
                            z["guide"].tolist(),
                            [names[c] for c in z["chrom"].tolist()],
                            z["pos0"].tolist(),
                            z["minus"].astype(int).tolist(),
                            z["mismatches"].tolist(),
                            strict=True,
                        )
                    )
                    has_n = z["has_n"].tolist()
                ours = set(rows)
                with_n = {r for r, hn in zip(rows, has_n, strict=True) if hn}
                only_ours, only_theirs = ours - theirs, theirs - ours
                rec.update(
                    {
                        "sandgrain_hits": len(ours),
                        "identical": not only_ours and not only_theirs,
                        "only_sandgrain": len(only_ours),
                        "only_sandgrain_with_n": len(only_ours & with_n),
                        "only_bowtie": len(only_theirs),
                        "examples_only_sandgrain": sorted(only_ours)[:3],
                        "examples_only_bowtie": sorted(only_theirs)[:3],
                    }
                )
                hf.unlink()
            out["searches"][str(n)] = rec
            log(
                f"bowtie {n} guides: {rec['run1_s']:.2f} / {rec['run2_s']:.2f} s, "
                f"{alignments:,} alignments, {len(theirs):,} next to NGG"
                + (
                    f", sandgrain {rec['sandgrain_hits']:,}, identical: {rec['identical']}"
                    if "identical" in rec
                    else ""
                )
            )
    finally:
        shutil.rmtree(bdir, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------------------
# One genome
# ---------------------------------------------------------------------------------------------


def bench_genome(
    workdir: Path,
    args,
    key: str,
    title: str,
    fasta: Path,
    rng: np.random.Generator,
    out: dict,
    *,
    synthetic: dict | None = None,
    bowtie: bool = False,
) -> dict:
    """Import, index (twice) and search one genome; figures go into ``out`` as they come."""
    from sandgrain.genome.store import open_genome
    from sandgrain.guides.siteindex import KIND, index_name
    from sandgrain.storage import Store

    store_dir = workdir / f"store-{key}"
    out.update({"title": title, "fasta": str(fasta)})
    if synthetic:
        out["synthetic"] = synthetic
    try:
        try:
            out["import"] = run_child(
                workdir,
                "import",
                {"store": str(store_dir), "name": key, "fasta": str(fasta)},
                f"{key} import",
            )
        finally:
            if synthetic:
                fasta.unlink(missing_ok=True)  # the 3 GB FASTA goes as soon as it is imported
        imp = out["import"]
        out["bases"] = imp["bases"]
        log(f"{key}: imported {imp['bases'] / 1e6:.1f} Mbp in {imp['wall_s']:.1f} s")

        store = Store(str(store_dir))
        genome = open_genome(store, key)
        n_max = max(args.sizes)
        t0 = time.perf_counter()
        guides = {
            "drawn": draw_guides(genome, n_max, rng),
            "random": random_guides(n_max, rng),
        }
        guides["gene"], window = gene_guides(genome, rng)
        out["guides"] = {
            "drawn": f"{n_max} distinct protospacers of NGG sites, one random site from each of "
            f"random {DRAW_WINDOW:,} bp windows (both strands)",
            "random": f"{n_max} uniform random 20-mers",
            "gene": f"the first {GENE_GUIDES} distinct NGG protospacers of {window}",
            "gene_window": window,
            "draw_s": time.perf_counter() - t0,
            "examples": {kind: g[:5] for kind, g in guides.items()},
        }

        # Index builds: serial (clean per-worker peak), then local:2 (the wall time of 2 cores).
        out["builds"] = {}
        iname = index_name(key, _family())
        for executor in ("serial", "local:2"):
            if store.has_dataset(KIND, iname):
                store.delete_dataset(KIND, iname)  # never two indexes on disk at once
            try:
                b = run_child(
                    workdir,
                    "build",
                    {
                        "store": str(store_dir),
                        "name": key,
                        "executor": executor,
                        "partition_bp": args.partition_bp,
                    },
                    f"{key} index build ({executor})",
                    time_limit=args.max_build_min * 60,
                    mem_limit=args.max_build_gb * GB,
                )
            except LimitExceeded as exc:
                out["build_failed"] = {
                    "executor": executor,
                    "limit": "memory" if "over the limit on memory" in str(exc) else "time",
                    "reason": str(exc),
                }
                raise
            out["builds"][executor] = b
            log(
                f"{key}: index build {executor}: {b['wall_s']:.1f} s, {b['sites']:,} sites, "
                f"{b['index_bytes'] / GB:.2f} GB, peak RSS {b['peak_rss_mib']:.0f} MiB "
                f"(tree PSS {b['tree']['tree_peak_pss_mib']:.0f} MiB)"
            )
        bs, bl = out["builds"]["serial"], out["builds"]["local:2"]
        out["index"] = {
            "sites": bl["sites"],
            "sites_with_n": bl["n_sites"],
            "partitions": bl["partitions"],
            "bytes": bl["index_bytes"],
            "bytes_per_site": bl["index_bytes"] / max(bl["sites"], 1),
            "builds_identical": bs["content_digest"] == bl["content_digest"],
        }

        # Searches, all in one child process
        cases = []
        hits_files = {}
        for kind in ("drawn", "random"):
            for n in args.sizes:
                for k in args.mismatches:
                    case = {"kind": kind, "n": n, "k": k}
                    if bowtie and kind == "drawn" and k == 3:
                        hits_files[n] = workdir / f"hits-{key}-{n}.npz"
                        case["save_hits"] = str(hits_files[n])
                    cases.append(case)
        cases += [
            {"kind": "gene", "n": GENE_GUIDES, "k": k}
            for k in sorted(args.mismatches, reverse=True)
        ]
        cases.sort(key=lambda c: c["kind"] != "gene")  # the gene set first: the process's
        # first search is a one-gene query, what a user designing guides waits for
        out["search"] = run_child(
            workdir,
            "search",
            {
                "store": str(store_dir),
                "name": key,
                "guides": guides,
                "cases": cases,
                "modes": list(MODES),
                "evict": not args.no_evict,
            },
            f"{key} searches",
            interval=0.5,
            mem_limit=args.max_build_gb * GB,
        )
        if bowtie:
            out["bowtie"] = bench_bowtie(workdir, fasta, guides["drawn"], args.sizes, hits_files)
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
        for p in workdir.glob(f"hits-{key}-*.npz"):
            p.unlink()
    return out


def bench_synthetic(workdir: Path, args, rng: np.random.Generator, out: dict) -> dict:
    total_bp = round(args.synthetic_gbp * 1e9)
    sizes = gi.chromosome_sizes(total_bp)
    fasta = workdir / "synthetic.fa"
    size = gi.fasta_size(sizes)
    log(f"synthetic: generating a {total_bp / 1e9:.3g} Gbp FASTA ({size / 1e9:.2f} GB)")
    t0 = time.perf_counter()
    try:
        facts = gi.generate_fasta(fasta, sizes, args.seed)
    except BaseException:
        fasta.unlink(missing_ok=True)
        raise
    gen_s = time.perf_counter() - t0
    chroms = facts["chromosomes"]
    info = {
        "requested_gbp": args.synthetic_gbp,
        "sequences": len(sizes),
        "fasta_bytes": size,
        "generate_s": gen_s,
        "n_count": sum(c["n_count"] for c in chroms),
        "masked_fraction": sum(c["masked"] for c in chroms) / total_bp,
        "generator": "benchmarks/genome_import.py generate_fasta (random ACGT, ~50 % soft-masked, "
        "N runs, GRCh38 chromosome sizes scaled)",
    }
    log(f"synthetic: generated in {gen_s:.1f} s")
    return bench_genome(
        workdir,
        args,
        "synthetic",
        f"synthetic {args.synthetic_gbp:g} Gbp",
        fasta,
        rng,
        out,
        synthetic=info,
    )


def disk_plan(workdir: Path, args) -> dict:
    """Free disk needed: the synthetic FASTA, its genome, one index (~2.8 B/bp) and scratch."""
    if args.skip_synthetic:
        return {"needed_bytes": 2 * GB}
    total_bp = round(args.synthetic_gbp * 1e9)
    fasta = gi.fasta_size(gi.chromosome_sizes(total_bp))
    need = int(fasta + 3.5 * total_bp + 2 * GB)
    free = shutil.disk_usage(workdir).free
    if free < need:
        raise SetupError(
            f"not enough disk space in {workdir}: the synthetic {args.synthetic_gbp:g} Gbp run "
            f"needs about {need / GB:.1f} GB, only {free / GB:.1f} GB are free; use --workdir on "
            "a larger disk, a smaller --synthetic-gbp, or --skip-synthetic"
        )
    return {"needed_bytes": need, "free_bytes": free}


# ---------------------------------------------------------------------------------------------
# Targets, machine, summary, main
# ---------------------------------------------------------------------------------------------


def _case(g: dict, kind: str, n: int, k: int) -> dict | None:
    for c in g.get("search", {}).get("cases", []):
        if c["kind"] == kind and c["n"] == n and c["k"] == k:
            return c
    return None


def _best_warm(case: dict) -> tuple[float, str]:
    """The fastest warm time of a case over the executors whose pool is already up."""
    opts = [(case["runs"][m]["warm_s"], m) for m in ("serial", "local:2 pool") if m in case["runs"]]
    return min(opts)


def evaluate_targets(result: dict) -> list[dict]:
    syn = result.get("genomes", {}).get("synthetic")
    gbp = result["config"]["synthetic_gbp"]
    targets = []

    def add(name, limit, unit, measured, detail):
        status = "not measured" if measured is None else ("PASS" if measured <= limit else "MISS")
        targets.append(
            {
                "target": name,
                "limit": limit,
                "unit": unit,
                "measured": measured,
                "status": status,
                "detail": detail,
            }
        )

    scale_note = "" if abs(gbp - 3.1) < 1e-9 else f" (measured on {gbp:g} Gbp, not 3.1)"
    # 1. 1,000 guides × 4 mismatches, warm
    measured, parts = None, []
    if syn and 1000 in result["config"]["sizes"] and 4 in result["config"]["mismatches"]:
        worst = 0.0
        for kind in ("drawn", "random"):
            c = _case(syn, kind, 1000, 4)
            if c:
                s, mode = _best_warm(c)
                worst = max(worst, s)
                parts.append(
                    f"{kind}: {s:.2f} s warm ({mode}), cold {c['runs']['serial']['cold_s']:.2f} s "
                    f"serial; {c['hits']:,} hits"
                )
        measured = worst if parts else None
    add(
        f"1,000 guides × 4 mismatches against 3.1 Gbp, index loaded{scale_note}",
        10.0,
        "s",
        measured,
        "; ".join(parts) or "needs the synthetic genome and 1,000 guides",
    )
    # 2. one gene's guides
    measured, detail = None, "needs the synthetic genome"
    c = _case(syn, "gene", GENE_GUIDES, 4) if syn else None
    if c:
        measured, mode = _best_warm(c)
        first = syn["search"]["first_search"]
        detail = (
            f"{GENE_GUIDES} guides × 4 mismatches: {measured:.2f} s warm ({mode}); cold (index "
            f"from disk) {c['runs']['serial']['cold_s']:.2f} s serial; first search of a fresh "
            f"process (+ JIT cache) {first['seconds']:.2f} s; {c['hits']:,} hits"
        )
    add(
        f"~200 guides (one gene) × 4 mismatches against 3.1 Gbp{scale_note}",
        2.0,
        "s",
        measured,
        detail,
    )
    # 3. build time and memory
    b = syn.get("builds", {}) if syn else {}
    if "local:2" in b:
        bl, bs = b["local:2"], b.get("serial")
        add(
            f"index build ≤ 30 min for 3.1 Gbp{scale_note}",
            30.0,
            "min",
            bl["wall_s"] / 60,
            f"local:2 {bl['wall_s'] / 60:.1f} min"
            + (f"; serial {bs['wall_s'] / 60:.1f} min" if bs else ""),
        )
        peak = bl["tree"]["tree_peak_pss_mib"] * MiB / GB
        rss_sum = bl["tree"]["tree_peak_rss_mib"] * MiB / GB
        worker = bs["peak_rss_mib"] * MiB / GB if bs else None
        add(
            f"index build ≤ 16 GB for 3.1 Gbp{scale_note}",
            16.0,
            "GB",
            peak,
            f"local:2 process tree peak {peak:.1f} GB PSS (sampled every "
            f"{bl['tree']['interval_s']} s; RSS sum {rss_sum:.1f} GB)"
            + (f"; serial build (one partition worker) VmHWM {worker:.1f} GB" if bs else ""),
        )
    else:
        failed = (syn or {}).get("build_failed")
        for name, unit, limit in (
            ("index build ≤ 30 min for 3.1 Gbp", "min", "time"),
            ("index build ≤ 16 GB for 3.1 Gbp", "GB", "memory"),
        ):
            missed = bool(failed) and failed["limit"] == limit
            targets.append(
                {
                    "target": name + scale_note,
                    "limit": 30.0 if unit == "min" else 16.0,
                    "unit": unit,
                    "measured": None,
                    "status": "MISS" if missed else "not measured",
                    "detail": failed["reason"] if failed else "needs the synthetic genome",
                }
            )
    return targets


def machine_info(workdir: Path) -> dict:
    info = gi.machine_info(workdir)
    with contextlib.suppress(Exception):
        import numba

        info["numba"] = numba.__version__
    return info


def _f(x, fmt=".2f") -> str:
    return "—" if x is None else format(x, fmt)


def summary(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"offtargets  {m['cpu_model']}, {m['cpus_usable']} cores, {m['ram_gib']} GiB RAM, "
        f"Python {m['python']}, sandgrain {m['sandgrain']}; SpCas9 (NGG, 20 nt)",
        "",
        f"{'index build':<16}{'bases':>11}{'sites':>9}{'index':>8}{'serial s':>10}"
        f"{'peak MiB':>10}{'local:2 s':>11}{'tree PSS MiB':>14}",
    ]
    genomes = result.get("genomes", {})
    for key, g in genomes.items():
        b = g.get("builds", {})
        if "local:2" not in b:
            continue
        bs, bl = b["serial"], b["local:2"]
        lines.append(
            f"{key:<16}{g['bases'] / 1e6:>8.1f}Mbp{bl['sites'] / 1e6:>8.1f}M"
            f"{bl['index_bytes'] / GB:>6.2f}GB{bs['wall_s']:>10.1f}{bs['peak_rss_mib']:>10.0f}"
            f"{bl['wall_s']:>11.1f}{bl['tree']['tree_peak_pss_mib']:>14.0f}"
        )
    lines += [
        "",
        "search seconds, cold / warm (cold: index evicted from the page cache)",
        f"{'genome':<11}{'guides':<13}{'k':>2}{'hits':>11}{'serial':>17}{'local:2 per call':>19}"
        f"{'local:2 open pool':>19}",
    ]
    for key, g in genomes.items():
        for c in g.get("search", {}).get("cases", []):
            cells = []
            for mode in MODES:
                r = c["runs"].get(mode)
                cells.append(f"{r['cold_s']:.2f} / {r['warm_s']:.2f}" if r else "—")
            lines.append(
                f"{key:<11}{c['kind'] + ' ' + str(c['n']):<13}{c['k']:>2}{c['hits']:>11,}"
                f"{cells[0]:>17}{cells[1]:>19}{cells[2]:>19}"
            )
        s = g.get("search")
        if s:
            pools = [
                c["runs"]["local:2 pool"]["pool_start_s"]
                for c in s["cases"]
                if "local:2 pool" in c["runs"]
            ]
            lines.append(
                f"{'':<11}first search of the process {s['first_search']['seconds']:.2f} s "
                f"(+ JIT cache load); imports {s['imports_s']:.2f} s; pool start median "
                f"{statistics.median(pools) if pools else float('nan'):.2f} s; "
                f"search process peak RSS {s['peak_rss_mib']:.0f} MiB"
            )
    bow = [(k, g["bowtie"]) for k, g in genomes.items() if "bowtie" in g]
    if bow:
        lines += [
            "",
            f"bowtie {bow[0][1]['version']} (-v 3 -a, 2 threads) vs sandgrain, 3 mismatches, "
            "drawn guides",
            f"{'genome':<8}{'build s':>8}{'guides':>7}{'bowtie run1/run2 s':>20}"
            f"{'sandgrain serial cold/warm':>28}{'pool warm':>10}{'NGG hits bt/sg':>18}{'same':>6}",
        ]
        for key, bt in bow:
            for n, r in bt["searches"].items():
                c = _case(genomes[key], "drawn", int(n), 3)
                sr = c["runs"]["serial"] if c else None
                pw = c["runs"].get("local:2 pool", {}).get("warm_s") if c else None
                ours = f"{sr['cold_s']:.2f} / {sr['warm_s']:.2f}" if sr else "—"
                both = f"{r['ngg_hits']:,}/{r.get('sandgrain_hits', 0):,}"
                theirs = f"{r['run1_s']:.2f} / {r['run2_s']:.2f}"
                lines.append(
                    f"{key:<8}{bt['build_s']:>8.1f}{n:>7}{theirs:>20}{ours:>28}{_f(pw):>10}"
                    f"{both:>18}{str(r.get('identical', '—')):>6}"
                )
    lines += ["", "targets (issue 3)"]
    for t in result.get("targets", []):
        meas = "—" if t["measured"] is None else f"{t['measured']:.2f} {t['unit']}"
        lines.append(f"  {t['status']:<5} {t['target']}: {meas} (limit {t['limit']:g} {t['unit']})")
        lines.append(f"        {t['detail']}")
    other = result.get("other_cpu_fraction")
    if other is not None and other > 0.1:
        lines.append(
            f"note: other processes used {other:.0%} of the machine's CPU time during the run "
            "(timings include that contention)"
        )
    parts = []
    syn = genomes.get("synthetic")
    if syn and "local:2" in syn.get("builds", {}):
        bl = syn["builds"]["local:2"]
        parts.append(
            f"{syn['title']} index {bl['wall_s'] / 60:.1f} min local:2, "
            f"{bl['tree']['tree_peak_pss_mib'] * MiB / GB:.1f} GB"
        )
        c = _case(syn, "drawn", 1000, 4)
        if c:
            parts.append(f"1,000 drawn guides × 4 mm {_best_warm(c)[0]:.2f} s warm")
        c = _case(syn, "gene", GENE_GUIDES, 4)
        if c:
            parts.append(f"200 gene guides × 4 mm {_best_warm(c)[0]:.2f} s warm")
    elif "chrx" in genomes and "search" in genomes["chrx"]:
        c = _case(genomes["chrx"], "drawn", max(result["config"]["sizes"]), 4)
        if c:
            parts.append(f"chrX {c['n']} drawn guides × 4 mm {_best_warm(c)[0]:.2f} s warm")
    statuses = [t["status"] for t in result.get("targets", [])]
    parts.append(
        f"targets {statuses.count('PASS')} PASS / {statuses.count('MISS')} MISS"
        + (
            f" / {statuses.count('not measured')} not measured"
            if "not measured" in statuses
            else ""
        )
    )
    lines += ["", "SUMMARY offtargets: " + "; ".join(parts) + f"; run {result['run_s']:.0f} s"]
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark the site index build and the off-target search (SpCas9).",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="yeast + chrX only, 100 guides (+ the 200-guide gene set), < 3 minutes",
    )
    p.add_argument(
        "--synthetic-gbp",
        type=float,
        default=3.1,
        help="size of the synthetic genome in Gbp (default 3.1)",
    )
    p.add_argument("--skip-synthetic", action="store_true", help="skip the synthetic genome")
    p.add_argument("--skip-bowtie", action="store_true", help="skip the bowtie comparison")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"JSON results file (default {DEFAULT_OUT})")
    p.add_argument(
        "--workdir",
        default=None,
        help="where temporary files go (a new subdirectory, removed afterwards; default: TMPDIR)",
    )
    p.add_argument(
        "--data",
        default=os.environ.get("SANDGRAIN_TEST_DATA", str(REPO.parent / "shared" / "data")),
        help="shared data folder (default $SANDGRAIN_TEST_DATA or ../shared/data)",
    )
    p.add_argument(
        "--sizes",
        type=_int_list,
        default=None,
        help="guide counts, comma-separated (default 100,1000; 100 with --quick)",
    )
    p.add_argument(
        "--mismatches",
        type=_int_list,
        default=[3, 4],
        help="mismatch limits, comma-separated (default 3,4)",
    )
    p.add_argument(
        "--partition-bp",
        type=int,
        default=256_000_000,
        help="index partition size (default 256,000,000, the library default)",
    )
    p.add_argument(
        "--max-build-gb",
        type=float,
        default=16.0,
        help="stop a step whose process tree goes over this PSS (default 16)",
    )
    p.add_argument(
        "--max-build-min",
        type=float,
        default=30.0,
        help="stop an index build running longer than this (default 30)",
    )
    p.add_argument(
        "--no-evict",
        action="store_true",
        help="do not evict the index from the page cache before cold searches",
    )
    p.add_argument("--seed", type=int, default=20240603, help="random seed")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = [100] if args.quick else [100, 1000]
    if args.quick:
        args.skip_synthetic = True
    if not args.sizes or min(args.sizes) < 1 or not args.mismatches:
        p.error("--sizes and --mismatches need positive values")
    if not all(0 <= k <= 5 for k in args.mismatches):
        p.error("--mismatches must be 0–5")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out_path = Path(args.out)
    if not out_path.is_absolute():
        out_path = Path.cwd() / out_path
    base = Path(args.workdir).expanduser() if args.workdir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="sandgrain-offtargets-", dir=base))
    rng = np.random.default_rng(args.seed)
    t_start = time.perf_counter()
    busy_start, own_start = gi.busy_cpu_seconds(), gi.own_cpu_seconds()
    subreaper = _set_subreaper()
    result: dict = {
        "benchmark": "offtargets",
        "status": "running",
        "started": utc_now(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "config": {
            "quick": args.quick,
            "synthetic_gbp": args.synthetic_gbp,
            "skip_synthetic": args.skip_synthetic,
            "skip_bowtie": args.skip_bowtie,
            "sizes": args.sizes,
            "mismatches": args.mismatches,
            "gene_guides": GENE_GUIDES,
            "partition_bp": args.partition_bp,
            "max_build_gb": args.max_build_gb,
            "max_build_min": args.max_build_min,
            "evict_before_cold": not args.no_evict,
            "seed": args.seed,
            "nuclease": {"pam": PAM, "length": LENGTH, "pam_side": PAM_SIDE},
            "modes": list(MODES),
            "workdir": str(workdir),
            "subreaper": subreaper,
        },
        "genomes": {},
    }
    code = 0
    try:
        result["machine"] = machine_info(workdir)
        if shutil.which("bowtie"):
            v = subprocess.run(["bowtie", "--version"], capture_output=True, text=True).stdout
            result["machine"]["bowtie"] = v.splitlines()[0].split()[-1] if v else None
        log(f"workdir {workdir}; results to {out_path}")
        result["disk_plan"] = disk_plan(workdir, args)
        data = Path(args.data)
        for rel, _title in GENOMES.values():
            fasta = data / rel
            if not fasta.exists():
                raise SetupError(f"no {fasta} (set SANDGRAIN_TEST_DATA or --data)")
        bowtie_ok = not args.skip_bowtie and shutil.which("bowtie") and shutil.which("bowtie-build")
        if not args.skip_bowtie and not bowtie_ok:
            result["bowtie_skipped"] = (
                "bowtie or bowtie-build not installed (apt-get install bowtie)"
            )
        for key, (rel, title) in GENOMES.items():
            use_bowtie = bool(bowtie_ok) and (key == "yeast" or not args.quick)
            result["genomes"][key] = {}
            bench_genome(
                workdir,
                args,
                key,
                title,
                data / rel,
                rng,
                result["genomes"][key],
                bowtie=use_bowtie,
            )
            write_json_atomic(out_path, result)  # partial results survive a later failure
        if not args.skip_synthetic:
            result["genomes"]["synthetic"] = {}
            bench_synthetic(workdir, args, rng, result["genomes"]["synthetic"])
        result["status"] = "ok"
    except (BenchmarkError, KeyboardInterrupt, SystemExit) as exc:
        code = 2 if isinstance(exc, SetupError) else 1
        if isinstance(exc, SystemExit | KeyboardInterrupt):
            code = 130 if isinstance(exc, KeyboardInterrupt) else 143
            exc = "interrupted (Ctrl-C)" if code == 130 else "interrupted (SIGTERM)"
        result["status"] = "failed"
        result["error"] = str(exc) if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        log(f"FAILED: {result['error']}")
    except Exception as exc:
        code = 1
        result["status"] = "failed"
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"FAILED with an unexpected error: {type(exc).__name__}: {exc}")
        import traceback

        traceback.print_exc()
    finally:
        for proc in list(_running.values()):
            _kill_group(proc)
        shutil.rmtree(workdir, ignore_errors=True)
        result["finished"] = utc_now()
        if "machine" in result:
            result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["run_s"] = time.perf_counter() - t_start
        other = (gi.busy_cpu_seconds() - busy_start) - (gi.own_cpu_seconds() - own_start)
        result["other_cpu_s"] = round(max(other, 0.0), 1)
        result["other_cpu_fraction"] = round(
            max(other, 0.0) / (result["run_s"] * len(os.sched_getaffinity(0))), 3
        )
        with contextlib.suppress(Exception):
            result["targets"] = evaluate_targets(result)
        write_json_atomic(out_path, result)
    if result["status"] == "ok" or result.get("targets"):
        with contextlib.suppress(Exception):
            print(summary(result))
    log(f"results written to {out_path} ({result['status']}, {result['run_s']:.0f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
