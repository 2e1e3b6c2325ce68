#!/usr/bin/env python
"""Genome import and region-read benchmark for sandgrain.

What it measures
    1. Importing the 70 Mbp human chrX slice (gzipped FASTA from the shared data folder) into a
       local store: wall time, throughput (input MB/s of the file as given, Mbp/s of bases) and
       peak memory. Every import runs in a fresh child process (this script with ``--child``),
       so the peak RSS is that import's alone.
    2. A synthetic genome of ``--synthetic-gbp`` Gbp (default 3.1, the human genome's size): a
       plain FASTA written in a streaming fashion (24 chromosomes scaled from the GRCh38 lengths,
       random ACGT, ~50% soft-masked stretches, N runs, 60-character lines), then imported in a
       child process the same way. The FASTA and the store are deleted afterwards.
    3. Region read latency on the chrX genome in a local store and in an S3 store served by moto
       on loopback (the S3 import is timed too): cold (open_genome + first read) and warm reads of
       23 bp, 1 kb and 100 kb; p50 / p95 / mean in ms. Every read is checked against pyfaidx on a
       decompressed copy of the FASTA; a benchmark that returns wrong data fails.

Peak RSS is the child's ``VmHWM`` (the high-water mark of its own address space). ``ru_maxrss``
is not used for this: Linux carries it across ``execve``, so a child started with vfork/exec
reports at least its parent's RSS at the time it was started.

Usage::

    python benchmarks/genome_import.py                 # full run (several minutes)
    python benchmarks/genome_import.py --quick         # smoke test, < 1 minute
    python benchmarks/genome_import.py --skip-synthetic --regions 200

Results go to ``--out`` (JSON, written atomically) and a summary table to stdout; progress lines
go to stderr. Exit status: 0 ok, 1 a failed check or error, 2 a bad setup (no disk space…).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gzip
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHRX_FASTA = "genomes/human-grch37-chrX-1-70M/hs37chrXtrunc.fa.gz"
DEFAULT_OUT = "benchmarks/results/genome_import.json"
READ_SIZES = (23, 1_000, 100_000)
LINE = 60
#: Bases per generation chunk: a multiple of the line width, so only a chromosome's last chunk
#: ends in a partial line.
GEN_CHUNK = LINE * 65_536
MASK_MEAN_RUN = 1_000  # mean length of soft-masked and of unmasked stretches

#: GRCh38 primary assembly chromosome lengths; the synthetic genome is scaled from these.
GRCH38 = (
    ("chr1", 248_956_422),
    ("chr2", 242_193_529),
    ("chr3", 198_295_559),
    ("chr4", 190_214_555),
    ("chr5", 181_538_259),
    ("chr6", 170_805_979),
    ("chr7", 159_345_973),
    ("chr8", 145_138_636),
    ("chr9", 138_394_717),
    ("chr10", 133_797_422),
    ("chr11", 135_086_622),
    ("chr12", 133_275_309),
    ("chr13", 114_364_328),
    ("chr14", 107_043_718),
    ("chr15", 101_991_189),
    ("chr16", 90_338_345),
    ("chr17", 83_257_441),
    ("chr18", 80_373_285),
    ("chr19", 58_617_616),
    ("chr20", 64_444_167),
    ("chr21", 46_709_983),
    ("chr22", 50_818_468),
    ("chrX", 156_040_895),
    ("chrY", 57_227_415),
)

#: Start of the run (wall clock), shared with the child processes so their log lines line up.
_T0 = float(os.environ.get("SANDGRAIN_BENCH_T0", time.time()))
MiB = 1 << 20


class BenchmarkError(Exception):
    """A failed check or step: reported, recorded in the JSON, exit status 1."""


class SetupError(BenchmarkError):
    """The benchmark cannot run here (no data, no disk space): exit status 2."""


def log(msg: str) -> None:
    print(f"[genome_import {time.time() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def vm_hwm_bytes() -> int:
    """Peak RSS of this process image (``VmHWM``), in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise BenchmarkError("no VmHWM in /proc/self/status (Linux only)")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def busy_cpu_seconds() -> float:
    """CPU time spent by the whole machine so far (all processes), from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (imports, the S3 server)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# ---------------------------------------------------------------------------------------------
# Child mode: one import in a fresh process
# ---------------------------------------------------------------------------------------------


def child_main(spec_path: str) -> int:
    """Run one ``add_genome`` described by a JSON spec; write the measurements as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    baseline_start = rss_bytes()
    from sandgrain.genome.store import add_genome
    from sandgrain.storage import Store

    baseline = rss_bytes()
    label = spec["label"]
    every = float(spec.get("progress_every_s", 10.0))
    samples: list[tuple[float, int]] = []  # (fraction of input read, RSS bytes)
    stages: dict[str, float] = {}
    state = {"last_log": time.monotonic(), "t0": 0.0}

    def progress(stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if stage not in stages:
            stages[stage] = now - state["t0"]
        if stage == "import sequence" and total:
            samples.append((done / total, rss_bytes()))
            if now - state["last_log"] >= every:
                state["last_log"] = now
                el = now - state["t0"]
                log(
                    f"  [{label}] {done / total:6.1%} of input read, {el:6.1f}s, "
                    f"RSS {rss_bytes() / MiB:.0f} MiB"
                )
        elif stage == "store":
            log(f"  [{label}] conversion done in {now - state['t0']:.1f}s; writing to the store")

    store = Store(spec["store_url"], spec.get("storage_options") or None)
    state["t0"] = time.monotonic()
    t0 = time.perf_counter()
    genome = add_genome(
        store,
        spec["name"],
        spec["fasta"],
        compression_level=spec["compression_level"],
        threads=spec["threads"],
        replace=True,
        progress=progress,
    )
    wall = time.perf_counter() - t0
    peak = vm_hwm_bytes()
    store_at = stages.get("store")
    chroms = genome.chromosomes
    # Downsample the RSS trace to about 20 points (first, last and evenly spaced in between).
    if len(samples) > 20:
        idx = sorted({round(i * (len(samples) - 1) / 19) for i in range(20)})
        samples = [samples[i] for i in idx]
    result = {
        "wall_s": wall,
        "convert_s": store_at,
        "store_s": (wall - store_at) if store_at is not None else None,
        "peak_rss_bytes": peak,
        "baseline_rss_bytes": baseline,
        "interpreter_rss_bytes": baseline_start,
        "rss_trace": [[round(f, 4), r] for f, r in samples],
        "bases": sum(c["length"] for c in chroms),
        "sequences": len(chroms),
        "n_count": sum(c["n_count"] for c in chroms),
        "masked": sum(c["masked"] for c in chroms),
        "stored_bytes": genome.dataset.manifest["total_size"],
        "sequence_bytes": genome.dataset.manifest["files"]["sequence.fa.gz"]["size"],
        "chromosomes": [{k: c[k] for k in ("name", "length", "n_count", "masked")} for c in chroms],
    }
    write_json_atomic(Path(spec["result_path"]), result)
    return 0


def run_import(
    workdir: Path,
    label: str,
    fasta: Path,
    store_url: str,
    storage_options: dict | None,
    name: str,
    args,
) -> dict:
    """Import ``fasta`` in a fresh child process and return its measurements."""
    tag = uuid.uuid4().hex[:8]
    spec_path = workdir / f"child-{tag}.json"
    result_path = workdir / f"child-{tag}.result.json"
    spec = {
        "label": label,
        "fasta": str(fasta),
        "store_url": store_url,
        "storage_options": storage_options,
        "name": name,
        "compression_level": args.level,
        "threads": args.threads,
        "result_path": str(result_path),
        "progress_every_s": 10.0,
    }
    spec_path.write_text(json.dumps(spec))
    env = os.environ.copy()
    env["TMPDIR"] = str(workdir)  # add_genome's scratch BGZF goes here and is cleaned with it
    env["SANDGRAIN_BENCH_T0"] = repr(_T0)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)]
    log(f"import {label}: child process starting")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    try:
        _, status, _rusage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    process_s = time.perf_counter() - t0
    spec_path.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise BenchmarkError(f"import {label}: child process failed (exit {proc.returncode})")
    res = json.loads(result_path.read_text())
    result_path.unlink()
    input_bytes = fasta.stat().st_size
    res.update(
        {
            "label": label,
            "process_s": process_s,
            "input_bytes": input_bytes,
            "input_mb_s": input_bytes / 1e6 / res["wall_s"],
            "mbp_s": res["bases"] / 1e6 / res["wall_s"],
            "peak_rss_mib": res["peak_rss_bytes"] / MiB,
            "baseline_rss_mib": res["baseline_rss_bytes"] / MiB,
            "stored_bits_per_base": 8 * res["sequence_bytes"] / res["bases"],
        }
    )
    log(
        f"import {label}: {res['wall_s']:.1f}s, {res['mbp_s']:.1f} Mbp/s, "
        f"{res['input_mb_s']:.1f} input MB/s, peak RSS {res['peak_rss_mib']:.0f} MiB"
    )
    return res


# ---------------------------------------------------------------------------------------------
# Synthetic genome
# ---------------------------------------------------------------------------------------------


def chromosome_sizes(total_bp: int) -> list[tuple[str, int]]:
    """The GRCh38 chromosomes scaled to ``total_bp`` bases in all."""
    ref_total = sum(n for _, n in GRCH38)
    sizes = [(name, max(1, round(n * total_bp / ref_total))) for name, n in GRCH38]
    sizes[0] = (sizes[0][0], sizes[0][1] + total_bp - sum(n for _, n in sizes))
    return sizes


def header_line(name: str) -> bytes:
    return f">{name} synthetic sandgrain benchmark sequence\n".encode()


def fasta_size(sizes: list[tuple[str, int]]) -> int:
    return sum(len(header_line(n)) + length + -(-length // LINE) for n, length in sizes)


def n_runs(rng: np.random.Generator, length: int) -> list[tuple[int, int]]:
    """N runs of one chromosome: 100 kb at the start, 10 kb at the end, three inside."""
    runs = [(0, min(100_000, length // 10)), (length - min(10_000, length // 20), length)]
    for _ in range(3):
        size = min(int(rng.integers(10_000, 200_001)), length // 50)
        if size > 0:
            start = int(rng.integers(0, length - size + 1))
            runs.append((start, start + size))
    return [(a, b) for a, b in runs if b > a]


class MaskRuns:
    """Alternating unmasked / soft-masked stretches of geometric length, across chunks."""

    def __init__(self, rng: np.random.Generator, mean: int):
        self.rng = rng
        self.mean = mean
        self.lower = False  # state of the current run
        self.left = 0  # bases of the current run not yet handed out

    def take(self, n: int) -> np.ndarray:
        values: list[np.ndarray] = []
        lengths: list[np.ndarray] = []
        need = n
        if self.left:
            got = min(self.left, need)
            values.append(np.array([self.lower]))
            lengths.append(np.array([got]))
            self.left -= got
            need -= got
        while need > 0:
            k = 2 * need // self.mean + 16
            runs = self.rng.geometric(1.0 / self.mean, size=k)
            states = np.empty(k, dtype=bool)
            states[0::2] = not self.lower
            states[1::2] = self.lower
            ends = np.cumsum(runs)
            i = int(np.searchsorted(ends, need))  # first run reaching `need`
            if i == k:
                values.append(states)
                lengths.append(runs)
                need -= int(ends[-1])
                self.lower = bool(states[-1])
                continue
            used = need - (int(ends[i - 1]) if i else 0)
            self.left = int(runs[i]) - used
            runs = runs[: i + 1].copy()
            runs[i] = used
            values.append(states[: i + 1])
            lengths.append(runs)
            self.lower = bool(states[i])
            need = 0
        return np.repeat(np.concatenate(values), np.concatenate(lengths))


def generate_fasta(path: Path, sizes: list[tuple[str, int]], seed: int) -> dict:
    """Write the synthetic FASTA chunk by chunk; return per-chromosome facts for checking."""
    rng = np.random.default_rng(seed)
    lut = np.frombuffer(b"ACGT", dtype=np.uint8)
    total = sum(n for _, n in sizes)
    done = 0
    last_log = time.monotonic()
    chroms = []
    with open(path, "wb", buffering=1 << 22) as out:
        for name, length in sizes:
            out.write(header_line(name))
            seq_offset = out.tell()
            runs = n_runs(rng, length)
            mask = MaskRuns(rng, MASK_MEAN_RUN)
            n_count = masked = 0
            pos = 0
            while pos < length:
                n = min(GEN_CHUNK, length - pos)
                seq = lut[np.frombuffer(rng.bytes(n), dtype=np.uint8) & 3]
                np.bitwise_or(seq, 0x20, out=seq, where=mask.take(n))  # lowercase
                for a, b in runs:
                    lo, hi = max(a, pos), min(b, pos + n)
                    if lo < hi:
                        seq[lo - pos : hi - pos] = ord("N")
                n_count += int(np.count_nonzero(seq == ord("N")))
                masked += int(np.count_nonzero(seq >= ord("a")))
                full = n - n % LINE
                if full:
                    lines = np.empty((full // LINE, LINE + 1), dtype=np.uint8)
                    lines[:, :LINE] = seq[:full].reshape(-1, LINE)
                    lines[:, LINE] = ord("\n")
                    out.write(memoryview(lines).cast("B"))
                if full < n:
                    out.write(seq[full:].tobytes() + b"\n")
                pos += n
                done += n
                now = time.monotonic()
                if now - last_log >= 10:
                    last_log = now
                    log(f"  generate: {done / total:6.1%} ({done / 1e9:.2f} Gbp)")
            chroms.append(
                {
                    "name": name,
                    "length": length,
                    "n_count": n_count,
                    "masked": masked,
                    "seq_offset": seq_offset,
                }
            )
    return {"chromosomes": chroms}


def read_plain_fasta(fh, chrom: dict, start0: int, end0: int) -> str:
    """A region read straight from the generated FASTA (60-base lines) by computing offsets."""

    def offset(pos: int) -> int:
        return chrom["seq_offset"] + pos // LINE * (LINE + 1) + pos % LINE

    a, b = offset(start0), offset(end0 - 1) + 1
    fh.seek(a)
    return fh.read(b - a).replace(b"\n", b"").decode("ascii")


def synthetic_plan(workdir: Path, args) -> tuple[int, list[tuple[str, int]], int]:
    """Bases, chromosome sizes and FASTA bytes of the synthetic genome; checks the disk space."""
    total_bp = round(args.synthetic_gbp * 1e9)
    sizes = chromosome_sizes(total_bp)
    if min(n for _, n in sizes) < 1_000:
        raise SetupError(f"--synthetic-gbp {args.synthetic_gbp} is too small (use at least 0.001)")
    size = fasta_size(sizes)
    free = shutil.disk_usage(workdir).free
    need = 2 * size
    if free < need:
        raise SetupError(
            f"not enough disk space in {workdir}: the synthetic {args.synthetic_gbp:g} Gbp genome "
            f"needs about {need / 1e9:.1f} GB (the {size / 1e9:.1f} GB FASTA plus its import), "
            f"only {free / 1e9:.1f} GB are free; use --workdir on a larger disk, a smaller "
            "--synthetic-gbp, or --skip-synthetic"
        )
    return total_bp, sizes, size


def bench_synthetic(workdir: Path, args, rng: np.random.Generator) -> dict:
    from sandgrain.genome.store import open_genome
    from sandgrain.storage import Store

    total_bp, sizes, size = synthetic_plan(workdir, args)
    fasta = workdir / "synthetic.fa"
    store_dir = workdir / "store-synthetic"
    out: dict = {
        "requested_gbp": args.synthetic_gbp,
        "bases": total_bp,
        "sequences": len(sizes),
        "fasta_bytes": size,
        "line_width": LINE,
        "seed": args.seed,
    }
    try:
        log(f"synthetic: generating a {total_bp / 1e9:.3g} Gbp FASTA ({size / 1e9:.2f} GB)")
        t0 = time.perf_counter()
        facts = generate_fasta(fasta, sizes, args.seed)
        gen_s = time.perf_counter() - t0
        if fasta.stat().st_size != size:
            raise BenchmarkError(f"generated FASTA is {fasta.stat().st_size} bytes, not {size}")
        n_total = sum(c["n_count"] for c in facts["chromosomes"])
        m_total = sum(c["masked"] for c in facts["chromosomes"])
        out.update(
            {
                "generate_s": gen_s,
                "generate_mb_s": size / 1e6 / gen_s,
                "n_count": n_total,
                "masked": m_total,
                "masked_fraction": m_total / total_bp,
            }
        )
        log(f"synthetic: generated in {gen_s:.1f}s ({size / 1e6 / gen_s:.0f} MB/s)")

        imp = run_import(
            workdir, "synthetic → local", fasta, str(store_dir), None, "synthetic", args
        )
        out["import"] = imp

        # Check the import: per-chromosome lengths, N and soft-masked counts, and sample reads
        # against the generated file itself.
        problems = []
        got = {c["name"]: c for c in imp.pop("chromosomes")}
        for c in facts["chromosomes"]:
            g = got.get(c["name"])
            if g is None:
                problems.append(f"{c['name']} missing")
                continue
            for key in ("length", "n_count", "masked"):
                if g[key] != c[key]:
                    problems.append(f"{c['name']} {key}: stored {g[key]} != generated {c[key]}")
        if len(got) != len(facts["chromosomes"]):
            problems.append(f"{len(got)} sequences stored, {len(facts['chromosomes'])} generated")
        t0 = time.perf_counter()
        genome = open_genome(Store(str(store_dir)), "synthetic")
        first = None
        times = []
        n_checks = max(20, args.regions // 10)
        lengths = np.array([c["length"] for c in facts["chromosomes"]], dtype=float)
        with open(fasta, "rb") as fh:
            for _ in range(n_checks):
                c = facts["chromosomes"][int(rng.choice(len(lengths), p=lengths / lengths.sum()))]
                span = min(1_000, c["length"])
                a = int(rng.integers(0, c["length"] - span + 1))
                t1 = time.perf_counter()
                seq = genome.sequence(c["name"], a, a + span)
                t2 = time.perf_counter()
                if first is None:
                    first = t2 - t0
                else:
                    times.append(t2 - t1)
                if seq != read_plain_fasta(fh, c, a, a + span):
                    problems.append(f"read {c['name']}:{a + 1}-{a + span} differs from the FASTA")
        out["verification"] = {
            "chromosome_stats_checked": len(facts["chromosomes"]),
            "reads_checked": n_checks,
            "problems": problems,
        }
        out["reads_1kb"] = {
            "cold_open_and_first_read_ms": first * 1e3,
            "p50_ms": statistics.median(times) * 1e3,
        }
        if problems:
            raise BenchmarkError("synthetic genome check failed: " + "; ".join(problems[:5]))
        log(f"synthetic: verified stats of {len(got)} sequences and {n_checks} reads")
    finally:
        with contextlib.suppress(FileNotFoundError):
            fasta.unlink()
        shutil.rmtree(store_dir, ignore_errors=True)
        out["cleaned_up"] = not fasta.exists() and not store_dir.exists()
        log("synthetic: FASTA and store deleted")
    return out


# ---------------------------------------------------------------------------------------------
# chrX: import and region reads
# ---------------------------------------------------------------------------------------------


def decompress(src: Path, dest: Path) -> int:
    with gzip.open(src, "rb") as fin, open(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 22)
    return dest.stat().st_size


def latency_stats(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1e3
    return {
        "n": int(ms.size),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
    }


def make_regions(rng, chroms: list[dict], n: int) -> dict[int, list[tuple[str, int, int]]]:
    lengths = np.array([c["length"] for c in chroms], dtype=float)
    regions = {}
    for size in READ_SIZES:
        picks = []
        for _ in range(n):
            c = chroms[int(rng.choice(len(chroms), p=lengths / lengths.sum()))]
            span = min(size, c["length"])
            a = int(rng.integers(0, c["length"] - span + 1))
            picks.append((c["name"], a, a + span))
        regions[size] = picks
    return regions


def bench_reads(
    label: str,
    open_store,
    name: str,
    regions: dict[int, list[tuple[str, int, int]]],
    reference,
    cold_repeats: int,
    digests: dict | None,
) -> dict:
    """Cold and warm region reads, every one checked against ``reference`` (pyfaidx).

    ``digests`` maps (chrom, start, end) to the SHA-1 of the sequence read from the first store
    benchmarked; later stores are checked to return identical bytes.
    """
    from sandgrain.genome.store import open_genome

    first_region = regions[READ_SIZES[1]][0]
    cold = {"open_ms": [], "first_read_ms": [], "total_ms": []}
    genome = None
    for _ in range(cold_repeats):
        store = open_store()
        t0 = time.perf_counter()
        genome = open_genome(store, name)
        t1 = time.perf_counter()
        genome.sequence(*first_region)
        t2 = time.perf_counter()
        cold["open_ms"].append((t1 - t0) * 1e3)
        cold["first_read_ms"].append((t2 - t1) * 1e3)
        cold["total_ms"].append((t2 - t0) * 1e3)
    out: dict = {
        "cold": {k: statistics.median(v) for k, v in cold.items()}
        | {"repeats": cold_repeats, "total_ms_all": cold["total_ms"]},
        "sizes": {},
    }
    mismatches = []
    checked = 0
    for size, picks in regions.items():
        times = []
        for chrom, a, b in picks:
            t0 = time.perf_counter()
            seq = genome.sequence(chrom, a, b)
            times.append(time.perf_counter() - t0)
            expect = reference[chrom][a:b]
            checked += 1
            if seq != expect:
                mismatches.append(f"{label} {chrom}:{a + 1}-{b} differs from pyfaidx")
            digest = hashlib.sha1(seq.encode()).hexdigest()
            if digests is not None:
                if (chrom, a, b) in digests and digests[(chrom, a, b)] != digest:
                    mismatches.append(f"{label} {chrom}:{a + 1}-{b} differs from the local store")
                digests.setdefault((chrom, a, b), digest)
        st = latency_stats(times)
        st["mb_s"] = size * len(picks) / 1e6 / sum(times)
        out["sizes"][str(size)] = st
        log(
            f"reads {label} {size:>7,} bp: p50 {st['p50_ms']:.2f} ms, p95 {st['p95_ms']:.2f} ms, "
            f"mean {st['mean_ms']:.2f} ms"
        )
    out["reads_checked"] = checked
    out["mismatches"] = mismatches
    if mismatches:
        raise BenchmarkError(f"{len(mismatches)} wrong reads, e.g. {mismatches[0]}")
    return out


def bench_chrx(workdir: Path, args, rng: np.random.Generator, chrx: Path) -> dict:
    import pyfaidx

    from sandgrain.storage import Store
    from sandgrain.testing.s3 import LoopbackS3

    out: dict = {"fasta": str(chrx), "fasta_bytes": chrx.stat().st_size}
    plain = workdir / "chrX.fa"
    t0 = time.perf_counter()
    out["uncompressed_bytes"] = decompress(chrx, plain)
    out["decompress_s"] = time.perf_counter() - t0
    reference = pyfaidx.Fasta(str(plain), as_raw=True, sequence_always_upper=False)
    log(f"chrX: decompressed copy for pyfaidx in {out['decompress_s']:.1f}s")

    # 1. local imports, each in a fresh child process
    store_dir = workdir / "store-local"
    runs = []
    for i in range(args.repeat):
        shutil.rmtree(store_dir, ignore_errors=True)
        runs.append(
            run_import(workdir, f"chrX → local #{i + 1}", chrx, str(store_dir), None, "chrx", args)
        )
    chroms = runs[-1]["chromosomes"]
    for r in runs:
        r.pop("chromosomes", None)
    out["bases"] = runs[-1]["bases"]
    out["sequences"] = runs[-1]["sequences"]
    out["uncompressed_mb_s"] = [out["uncompressed_bytes"] / 1e6 / r["wall_s"] for r in runs]
    out["import_local"] = {"runs": runs, "median": _median_run(runs)}
    for c in chroms:
        if len(reference[c["name"]]) != c["length"]:
            raise BenchmarkError(f"chrX: {c['name']} length differs from pyfaidx")

    regions = make_regions(rng, chroms, args.regions)
    digests: dict = {}
    out["reads"] = {}
    out["reads"]["local"] = bench_reads(
        "local",
        lambda: Store(str(store_dir)),
        "chrx",
        regions,
        reference,
        args.cold_repeats,
        digests,
    )

    # 2. S3 on loopback: import straight into the bucket, then the same reads
    log("chrX: starting the loopback S3 server (moto)")
    with LoopbackS3() as s3:
        url = s3.create_bucket("sandgrain-bench") + "/store"
        options = {"client_kwargs": {"endpoint_url": s3.endpoint}}
        imp = run_import(workdir, "chrX → S3 (moto)", chrx, url, options, "chrx", args)
        imp.pop("chromosomes", None)
        out["import_s3"] = imp

        def fresh_s3_store():
            # a new S3 filesystem object (new HTTP session), not fsspec's cached instance
            return Store(url, options | {"skip_instance_cache": True})

        out["reads"]["s3"] = bench_reads(
            "S3", fresh_s3_store, "chrx", regions, reference, args.cold_repeats, digests
        )
    out["verification"] = {
        "reads_checked_against_pyfaidx": out["reads"]["local"]["reads_checked"]
        + out["reads"]["s3"]["reads_checked"],
        "s3_equals_local": True,
    }
    reference.close()
    shutil.rmtree(store_dir, ignore_errors=True)
    plain.unlink(missing_ok=True)
    Path(str(plain) + ".fai").unlink(missing_ok=True)
    return out


def _median_run(runs: list[dict]) -> dict:
    keys = ("wall_s", "input_mb_s", "mbp_s", "peak_rss_mib", "process_s")
    return {k: statistics.median(r[k] for r in runs) for k in keys}


# ---------------------------------------------------------------------------------------------
# Machine info, summary, main
# ---------------------------------------------------------------------------------------------


def machine_info(workdir: Path) -> dict:
    import sandgrain

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
                break
    import zlib

    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "ram_bytes": mem,
        "ram_gib": round(mem / (1 << 30), 1) if mem else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sandgrain": sandgrain.__version__,
        "numpy": np.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "workdir_free_gb": round(shutil.disk_usage(workdir).free / 1e9, 1),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def summary(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"genome_import  {m['cpu_model']}, {m['cpus_usable']} cores, {m['ram_gib']} GiB RAM, "
        f"Python {m['python']}, sandgrain {m['sandgrain']}",
        "",
        f"{'import':<40}{'bases':>11}{'wall s':>9}{'input MB/s':>12}{'Mbp/s':>8}"
        f"{'peak RSS MiB':>14}",
    ]
    rows = []
    chrx = result.get("chrx")
    if chrx:
        med = chrx["import_local"]["median"]
        n = len(chrx["import_local"]["runs"])
        label = f"chrX 70M .fa.gz → local (median of {n})" if n > 1 else "chrX 70M .fa.gz → local"
        rows.append((label, chrx, med))
        rows.append(("chrX 70M .fa.gz → S3 (moto)", chrx, chrx["import_s3"]))
    syn = result.get("synthetic")
    if syn and "import" in syn:
        rows.append((f"synthetic {syn['requested_gbp']:g} Gbp .fa → local", syn, syn["import"]))
    for label, src, r in rows:
        lines.append(
            f"{label:<40}{src['bases'] / 1e6:>8.1f}Mbp{r['wall_s']:>9.1f}{r['input_mb_s']:>12.1f}"
            f"{r['mbp_s']:>8.1f}{r['peak_rss_mib']:>14.0f}"
        )
    if syn and "generate_s" in syn:
        lines.append(
            f"{'(synthetic FASTA generation)':<40}{syn['bases'] / 1e6:>8.1f}Mbp"
            f"{syn['generate_s']:>9.1f}{syn['generate_mb_s']:>12.1f} (output MB/s)"
        )
    if chrx:
        lines += [
            "",
            f"{'region reads, ms':<20}{'cold open+read':>15}"
            + "".join(f"{f'{s:,} bp p50/p95':>20}" for s in READ_SIZES),
        ]
        for key, label in (("local", "local store"), ("s3", "S3 (moto loopback)")):
            rd = chrx["reads"][key]
            pairs = [
                f"{rd['sizes'][str(s)]['p50_ms']:.2f} / {rd['sizes'][str(s)]['p95_ms']:.2f}"
                for s in READ_SIZES
            ]
            cells = "".join(f"{p:>20}" for p in pairs)
            lines.append(f"{label:<20}{rd['cold']['total_ms']:>15.1f}{cells}")
        lines.append(
            f"verified: {chrx['verification']['reads_checked_against_pyfaidx']} reads equal "
            "pyfaidx on the decompressed FASTA; S3 reads equal local reads"
        )
    parts = []
    if chrx:
        r = chrx["reads"]
        parts.append(
            f"chrX import {chrx['import_local']['median']['mbp_s']:.1f} Mbp/s "
            f"(peak {chrx['import_local']['median']['peak_rss_mib']:.0f} MiB)"
        )
        parts.append(
            f"1 kb read p50 {r['local']['sizes']['1000']['p50_ms']:.2f} ms local / "
            f"{r['s3']['sizes']['1000']['p50_ms']:.2f} ms S3"
        )
    if syn and "import" in syn:
        parts.append(
            f"synthetic {syn['requested_gbp']:g} Gbp import {syn['import']['wall_s']:.0f} s "
            f"({syn['import']['mbp_s']:.1f} Mbp/s, peak {syn['import']['peak_rss_mib']:.0f} MiB)"
        )
    other = result.get("other_cpu_fraction")
    if other is not None and other > 0.1:
        lines.append(
            f"note: other processes used {other:.0%} of the machine's CPU time during the run "
            "(timings include that contention)"
        )
    lines += ["", "SUMMARY genome_import: " + "; ".join(parts) + f"; run {result['run_s']:.0f} s"]
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark genome import (throughput, peak memory) and region reads.",
    )
    p.add_argument("--quick", action="store_true", help="a small run (< 1 minute) for smoke tests")
    p.add_argument(
        "--synthetic-gbp",
        type=float,
        default=None,
        help="size of the synthetic genome in Gbp (default 3.1; 0.05 with --quick)",
    )
    p.add_argument("--skip-synthetic", action="store_true", help="skip the synthetic genome")
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
        "--regions", type=int, default=None, help="reads per size (default 500; 50 with --quick)"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="local chrX imports to run, the median is reported (default 3; 1 with --quick)",
    )
    p.add_argument("--cold-repeats", type=int, default=None, help="cold reads (default 5)")
    p.add_argument("--threads", type=int, default=2, help="add_genome compression threads")
    p.add_argument("--level", type=int, default=4, help="add_genome compression level")
    p.add_argument("--seed", type=int, default=20240601, help="random seed")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.synthetic_gbp is None:
        args.synthetic_gbp = 0.05 if args.quick else 3.1
    if args.regions is None:
        args.regions = 50 if args.quick else 500
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.cold_repeats is None:
        args.cold_repeats = 2 if args.quick else 5
    if args.synthetic_gbp <= 0 or args.regions < 1 or args.repeat < 1 or args.cold_repeats < 1:
        p.error("--synthetic-gbp, --regions, --repeat and --cold-repeats must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)

    # SIGTERM unwinds like Ctrl-C, so temporary files, the S3 server and children are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out_path = Path(args.out)
    if not out_path.is_absolute():
        out_path = Path.cwd() / out_path
    base = Path(args.workdir).expanduser() if args.workdir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="sandgrain-bench-", dir=base))
    rng = np.random.default_rng(args.seed)
    started = utc_now()
    t_start = time.perf_counter()
    busy_start, own_start = busy_cpu_seconds(), own_cpu_seconds()
    result: dict = {
        "benchmark": "genome_import",
        "status": "running",
        "started": started,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "config": {
            k: getattr(args, k)
            for k in (
                "quick",
                "synthetic_gbp",
                "skip_synthetic",
                "regions",
                "repeat",
                "cold_repeats",
                "threads",
                "level",
                "seed",
            )
        }
        | {"read_sizes": list(READ_SIZES), "workdir": str(workdir)},
    }
    code = 0
    try:
        result["machine"] = machine_info(workdir)
        log(f"workdir {workdir}; results to {out_path}")
        if not args.skip_synthetic:
            synthetic_plan(workdir, args)  # fail now, not after the chrX part, if disk is short
        chrx = Path(args.data) / CHRX_FASTA
        if chrx.exists():
            result["chrx"] = bench_chrx(workdir, args, rng, chrx)
        else:
            result["chrx_skipped"] = f"no {chrx} (set SANDGRAIN_TEST_DATA or --data)"
            log(f"chrX skipped: {result['chrx_skipped']}")
        if not args.skip_synthetic:
            result["synthetic"] = bench_synthetic(workdir, args, rng)
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
        shutil.rmtree(workdir, ignore_errors=True)
        result["finished"] = utc_now()
        if "machine" in result:
            result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["run_s"] = time.perf_counter() - t_start
        # CPU time used by other processes on this machine meanwhile: a busy machine slows
        # every figure above, so say how busy it was.
        other = (busy_cpu_seconds() - busy_start) - (own_cpu_seconds() - own_start)
        result["other_cpu_s"] = round(max(other, 0.0), 1)
        result["other_cpu_fraction"] = round(
            max(other, 0.0) / (result["run_s"] * len(os.sched_getaffinity(0))), 3
        )
        write_json_atomic(out_path, result)
    if result["status"] == "ok":
        print(summary(result))
    log(f"results written to {out_path} ({result['status']}, {result['run_s']:.0f} s)")
    return code


if __name__ == "__main__":
    sys.exit(main())
