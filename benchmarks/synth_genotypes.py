#!/usr/bin/env python
"""Synthetic genotypes written straight into a store, with traits from planted causal variants.

What it writes
    A ``genotypes`` dataset in exactly the format ``sandgrain association import`` publishes
    (``genotypes.bin``: one row of 2-bit calls per variant, packed by
    :func:`sandgrain.association.genotypes.pack`; ``variants.parquet``: chrom, pos, id, ref,
    alt; ``samples.txt``), so ``GenotypeMatrix.open(store, NAME)`` and ``sandgrain association
    test --genotypes NAME`` read it. No VCF is written: 10,000 samples × 1,000,000 variants would
    be ~40 GB of text, the packed calls are 2.5 GB. Variants are generated and written in blocks
    (memory bounded by one block of ``BLOCK_CALLS`` haplotype calls), so the size is limited by
    disk only. Next to it: a traits TSV (``sample``, ``score`` quantitative, ``label`` 0/1,
    covariates ``age``, ``PC0`` … ``PC2``) and ``TRAITS.causal.json`` listing the planted
    variants with their effects. The dataset's meta and provenance say it is simulated, with the
    parameters.

The model (a cheap caricature of a population sample; no demography, no structure)
    - **Allele frequencies**: the alt frequency p of each variant is drawn from Beta(a, a) with
      a = 0.3 (U-shaped: about 28 % of the variants have MAF < 1 %), clipped to [1/(2N), 1 −
      1/(2N)] for N samples, so a few variants have no carrier at all, as in a real subset.
    - **Hardy–Weinberg** holds exactly in expectation: a sample is two independent haplotypes,
      and haplotype h carries the alt allele of variant j when its latent uniform u_h falls in
      an interval of length p_j, [s_j, s_j + p_j) on the circle [0, 1).
    - **LD blocks** by haplotype copying: variants come in blocks (lengths geometric, mean
      ``ld_block`` variants). At a block's start every haplotype draws a fresh u (blocks are
      independent); inside it u is kept from variant to variant (the haplotype "copies" the
      same ancestral segment) except that each haplotype redraws it with probability
      ``switch`` per variant (recombination, decaying LD within the block). The interval
      starts s_j are shared by the variants of one of ``CLADES`` clades of the block, so
      variants of one clade are nested (D′ = 1, r² up to 1 between similar frequencies) and
      variants of different clades overlap at random.
    - **Missing calls**: a fraction ``missing`` of the calls (0.5 % by default), uniformly at
      random, is set to missing (code 3).
    - **Traits**: K causal variants with 0.05 ≤ MAF ≤ 0.5 are picked at random; variant k has
      a per-allele effect β_k = ±√(h²/K / (2 p_k (1 − p_k))) on ``score`` (each explains h²/K of
      its variance; signs at random), computed on the true dosages (before missingness).
      ``score`` = Σ β_k (g_k − 2p_k) + 0.02 (age − 50) + 0.3 PC0 + 0.1 PC2 + ε, with ε normal
      so that the total variance is 1. ``label`` is 1 for the top ``prevalence`` fraction of a
      liability with the same genetic and covariate parts and its own ε (liability threshold
      model, Falconer 1965). ``age`` is uniform on 20–79 years, PC0 … PC2 standard normal
      (covariates only: they are not genetic principal components).

How it is fast
    Per block of variants the haplotype calls are a boolean (variants, 2N) matrix filled one
    variant at a time with two comparisons of the N-vector u (the switches are drawn sparsely,
    ~2N·switch per variant); dosages are the sum of the two haplotype halves, missing calls are
    placed sparsely, and the block is packed and appended. Measured: see docs/association.md
    ("Scale").

Usage::

    python benchmarks/synth_genotypes.py --samples 10000 --variants 1000000 --causal 20 \\
        --seed 1 --store ~/.sandgrain --name syn10k --traits syn10k.tsv

From Python: ``make_genotypes(store, name, samples=…, variants=…, causal=…, seed=…,
traits=path)`` returns a dict of figures.

Reference: Falconer DS (1965) The inheritance of liability to certain diseases, estimated from
the incidence among relatives. Ann Hum Genet 29:51-76.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sandgrain.association.genotypes import (
    FORMAT,
    FORMAT_VERSION,
    KIND,
    MISSING,
    VARIANT_SCHEMA,
    GenotypeMatrix,
    pack,
)
from sandgrain.provenance import provenance
from sandgrain.storage import Store, scratch_dir

#: Bumped whenever the output for given arguments changes.
GENERATOR_VERSION = 1
BETA_SHAPE = 0.3
CLADES = 4
#: Haplotype calls generated per block (bounds memory: ~3 bytes per call at the peak).
BLOCK_CALLS = 24 << 20
MIN_CAUSAL_MAF = 0.05
COVARIATE_EFFECTS = {"age": 0.02, "PC0": 0.3, "PC1": 0.0, "PC2": 0.1}
_BASES = np.array(list("ACGT"))


def _grch37() -> dict[str, int]:
    """Chromosome lengths, from the VCF generator next to this file (one table, not two)."""
    spec = importlib.util.spec_from_file_location(
        "synth_vcf", Path(__file__).resolve().parent / "synth_vcf.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GRCH37


def sample_names(n: int) -> list[str]:
    width = max(5, len(str(n)))
    return [f"SIM{i:0{width}d}" for i in range(1, n + 1)]


def variant_table(rng: np.random.Generator, m: int, chromosomes: int = 22) -> pa.Table:
    """Variants spread over chromosomes 1… in proportion to their GRCh37 lengths, positions
    strictly increasing, random SNP alleles, ids ``sim1`` …"""
    lengths = _grch37()
    names = [str(i) for i in range(1, chromosomes + 1)]
    size = np.array([lengths[c] for c in names], dtype=np.float64)
    share = size / size.sum() * m
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(-(share - counts), kind="stable")[: m - counts.sum()]] += 1
    chrom, pos = [], []
    for name, length, count in zip(names, size.astype(np.int64), counts, strict=True):
        if count > length - 1:
            raise ValueError(f"{count} variants do not fit chromosome {name}")
        gaps = rng.exponential(1.0, count)
        p = np.floor(np.cumsum(gaps) / max(gaps.sum(), 1e-300) * (length - count - 1))
        p = np.maximum.accumulate(p.astype(np.int64)) + np.arange(count) + 1  # strictly up
        chrom.append(np.full(count, name, dtype=object))
        pos.append(p)
    ref = rng.integers(0, 4, m)
    alt = (ref + rng.integers(1, 4, m)) % 4
    return pa.table(
        [
            pa.array(np.concatenate(chrom) if chrom else [], pa.string()),
            pa.array(np.concatenate(pos) if pos else [], pa.int64()),
            pa.array([f"sim{i}" for i in range(1, m + 1)], pa.string()),
            pa.array(_BASES[ref].tolist(), pa.string()),
            pa.array(_BASES[alt].tolist(), pa.string()),
        ],
        schema=VARIANT_SCHEMA,
    )


class HaplotypeSource:
    """Haplotype calls variant by variant, with the LD-block copying model of the module doc."""

    def __init__(
        self, rng, n_samples: int, freqs: np.ndarray, ld_block: float, switch: float, chrom_start
    ):
        self.rng = rng
        self.h = 2 * n_samples
        self.freqs = freqs.astype(np.float32)
        m = len(freqs)
        # block starts, then clade interval starts per block and a clade per variant
        lengths = rng.geometric(1.0 / max(ld_block, 1.0), size=m // max(int(ld_block), 1) + 16)
        starts = np.concatenate([[0], np.cumsum(lengths)])
        starts = starts[starts < m]
        while starts[-1] + lengths.max() < m:  # never short of blocks (tiny ld_block)
            starts = np.concatenate([starts, [starts[-1] + lengths.max()]])
        self.block_start = np.zeros(m, bool)
        self.block_start[starts] = True
        self.block_start[chrom_start] = True  # no LD across chromosomes
        block_of = np.cumsum(self.block_start) - 1
        clade_start = rng.random((int(block_of[-1]) + 1, CLADES)).astype(np.float32)
        self.start = clade_start[block_of, rng.integers(0, CLADES, m)]
        self.switch = switch
        self.u = rng.random(self.h, dtype=np.float32)
        self._lo = np.empty(self.h, bool)
        self._hi = np.empty(self.h, bool)

    def fill(self, first: int, out: np.ndarray) -> None:
        """Haplotype calls of variants ``first : first + len(out)`` into ``out`` (rows, 2N)."""
        rng, u, lo, hi = self.rng, self.u, self._lo, self._hi
        rows = len(out)
        ks = rng.binomial(self.h, self.switch, size=rows)
        where = rng.integers(0, self.h, int(ks.sum()))
        values = rng.random(int(ks.sum()), dtype=np.float32)
        ends = np.cumsum(ks)
        for r in range(rows):
            j = first + r
            if self.block_start[j]:
                u[:] = rng.random(self.h, dtype=np.float32)
            elif ks[r]:
                u[where[ends[r] - ks[r] : ends[r]]] = values[ends[r] - ks[r] : ends[r]]
            a = self.start[j]
            b = a + self.freqs[j]
            np.greater_equal(u, a, out=lo)
            if b <= 1.0:
                np.less(u, b, out=hi)
                np.logical_and(lo, hi, out=out[r])
            else:
                np.less(u, b - np.float32(1.0), out=hi)
                np.logical_or(lo, hi, out=out[r])


def _traits(rng, n, causal_dosages, causal_p, h2, prevalence, signs):
    """(columns of the traits table, per-variant effects on score)."""
    k = len(causal_p)
    beta = signs * np.sqrt(h2 / max(k, 1) / (2 * causal_p * (1 - causal_p))) if k else np.zeros(0)
    genetic = (
        ((causal_dosages - 2 * causal_p[:, None]) * beta[:, None]).sum(0) if k else np.zeros(n)
    )
    age = rng.integers(20, 80, n).astype(np.float64)
    pcs = rng.standard_normal((3, n))
    cov = {"age": age, "PC0": pcs[0], "PC1": pcs[1], "PC2": pcs[2]}
    fixed = sum(COVARIATE_EFFECTS[c] * (v - (50.0 if c == "age" else 0.0)) for c, v in cov.items())
    cov_var = sum(
        COVARIATE_EFFECTS[c] ** 2 * (((80 - 20) ** 2 - 1) / 12 if c == "age" else 1.0) for c in cov
    )
    noise_sd = np.sqrt(max(1.0 - h2 - cov_var, 0.05))
    score = genetic + fixed + noise_sd * rng.standard_normal(n)
    liability = genetic + fixed + noise_sd * rng.standard_normal(n)
    cut = np.quantile(liability, 1.0 - prevalence)
    label = (liability > cut).astype(np.int64)
    return {"score": score, "label": label, **cov}, beta


def _write_traits(path: Path, samples: list[str], cols: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write("\t".join(["sample", *cols]) + "\n")
        text = {
            c: (v.astype(np.int64).astype(str) if c in ("label", "age") else np.char.mod("%.6g", v))
            for c, v in cols.items()
        }
        for i, s in enumerate(samples):
            fh.write("\t".join([s, *(text[c][i] for c in cols)]) + "\n")
    os.replace(tmp, path)


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def make_genotypes(
    store: Store,
    name: str,
    *,
    samples: int,
    variants: int,
    causal: int = 10,
    seed: int = 1,
    traits: str | os.PathLike | None = None,
    h2: float = 0.3,
    prevalence: float = 0.4,
    missing: float = 0.005,
    ld_block: float = 40.0,
    switch: float = 0.01,
    replace: bool = False,
    progress: bool = False,
) -> dict:
    """Generate and publish a ``genotypes`` dataset; write the traits TSV and causal JSON when
    ``traits`` is given. Returns figures (seconds, bytes, counts) and the causal variants."""
    if samples < 2 or variants < 1:
        raise ValueError("need at least 2 samples and 1 variant")
    if not 0 <= missing < 1 or not 0 < prevalence < 1 or not 0 <= h2 < 1:
        raise ValueError("missing in [0, 1), prevalence in (0, 1), h2 in [0, 1)")
    if traits is not None and not Path(traits).resolve().parent.is_dir():
        raise ValueError(f"{Path(traits).parent}: no such folder for the traits TSV")
    t0 = time.perf_counter()
    params = {
        "generator_version": GENERATOR_VERSION,
        "samples": samples,
        "variants": variants,
        "causal": causal,
        "seed": seed,
        "h2": h2,
        "prevalence": prevalence,
        "missing": missing,
        "ld_block": ld_block,
        "switch": switch,
        "beta_shape": BETA_SHAPE,
        "clades": CLADES,
    }
    rng = np.random.default_rng(seed)
    names = sample_names(samples)
    table = variant_table(rng, variants)
    floor = 1.0 / (2 * samples)
    freqs = np.clip(rng.beta(BETA_SHAPE, BETA_SHAPE, variants), floor, 1 - floor)
    maf = np.minimum(freqs, 1 - freqs)
    eligible = np.nonzero(maf >= MIN_CAUSAL_MAF)[0]
    if causal > len(eligible):
        raise ValueError(f"only {len(eligible)} variants have MAF ≥ {MIN_CAUSAL_MAF}")
    causal_idx = np.sort(rng.choice(eligible, causal, replace=False))
    signs = rng.choice([-1.0, 1.0], causal)
    causal_row = {int(j): i for i, j in enumerate(causal_idx)}
    causal_dos = np.zeros((causal, samples), dtype=np.float64)
    chrom = table["chrom"].to_numpy(zero_copy_only=False)
    chrom_start = np.nonzero(np.r_[True, chrom[1:] != chrom[:-1]])[0]
    source = HaplotypeSource(rng, samples, freqs, ld_block, switch, chrom_start)
    block = max(1, BLOCK_CALLS // (2 * samples))
    width = (samples + 3) // 4
    hap = np.empty((block, 2 * samples), dtype=bool)
    sha = hashlib.sha256()
    n_missing = 0
    written = 0
    with (
        scratch_dir("sandgrain-synth-") as tmp,
        store.new_dataset(
            KIND, name, format=FORMAT, format_version=FORMAT_VERSION, replace=replace
        ) as ds,
    ):
        # On a local store the calls go straight to their place in the new version (no copy of
        # gigabytes); elsewhere to a scratch file uploaded at the end.
        final = Path(store.path(f"{ds.prefix}/genotypes.bin")) if store.is_local else None
        bin_path = final.with_name(".genotypes.bin.partial") if final else tmp / "genotypes.bin"
        bin_path.parent.mkdir(parents=True, exist_ok=True)
        with open(bin_path, "wb") as out:
            for first in range(0, variants, block):
                rows = min(block, variants - first)
                h = hap[:rows]
                source.fill(first, h)
                view = h.view(np.uint8)
                dos = view[:, :samples] + view[:, samples:]
                for j in range(first, first + rows):
                    if j in causal_row:
                        causal_dos[causal_row[j]] = dos[j - first]
                if missing:
                    k = int(rng.binomial(rows * samples, missing))
                    dos.reshape(-1)[rng.integers(0, rows * samples, k)] = MISSING
                    n_missing += int((dos == MISSING).sum())
                data = pack(dos).tobytes()
                assert len(data) == rows * width
                sha.update(data)
                out.write(data)
                written += len(data)
                if progress:
                    done = first + rows
                    rate = done / (time.perf_counter() - t0)
                    print(
                        f"\r{done:,}/{variants:,} variants ({rate:,.0f}/s)",
                        end="",
                        file=sys.stderr,
                        flush=True,
                    )
            out.flush()
            os.fsync(out.fileno())
        if progress:
            print(file=sys.stderr)
        t_gen = time.perf_counter() - t0
        if final is not None:
            os.replace(bin_path, final)
            ds.add_written("genotypes.bin", written, sha.hexdigest())
        else:
            ds.put_file("genotypes.bin", bin_path, sha256=sha.hexdigest())
        pq.write_table(table, tmp / "variants.parquet")
        (tmp / "samples.txt").write_text("".join(s + "\n" for s in names))
        for file in ("variants.parquet", "samples.txt"):
            ds.put_file(file, tmp / file)
        causal_list = []
        if traits is not None or causal:
            cols, beta = _traits(
                rng, samples, causal_dos, causal_dos.mean(1) / 2, h2, prevalence, signs
            )
            for i, j in enumerate(causal_idx):
                p = float(causal_dos[i].mean() / 2)
                causal_list.append(
                    {
                        "index": int(j),
                        "chrom": table["chrom"][int(j)].as_py(),
                        "pos": table["pos"][int(j)].as_py(),
                        "id": table["id"][int(j)].as_py(),
                        "ref": table["ref"][int(j)].as_py(),
                        "alt": table["alt"][int(j)].as_py(),
                        "af": p,
                        "beta_score": float(beta[i]),
                        "variance_explained": float(beta[i] ** 2 * 2 * p * (1 - p)),
                    }
                )
        ds.meta.update(
            {
                "n_variants": variants,
                "n_samples": samples,
                "missing_calls": n_missing,
                "bits_per_call": 2,
                "chromosomes": sorted(set(table["chrom"].to_pylist())),
                "simulated": {**params, "causal_variants": [c["id"] for c in causal_list]},
            }
        )
        ds.provenance = provenance(
            "benchmarks/synth_genotypes.py (simulated genotypes)", params, []
        )
    figures = {
        "samples": samples,
        "variants": variants,
        "bytes": written,
        "missing_calls": n_missing,
        "seconds_genotypes": round(t_gen, 2),
        "seconds_total": round(time.perf_counter() - t0, 2),
        "causal": causal_list,
    }
    if traits is not None:
        traits = Path(traits)
        _write_traits(traits, names, cols)
        _atomic_json(
            causal_path(traits),
            {
                "dataset": name,
                "parameters": params,
                "covariate_effects_on_score": COVARIATE_EFFECTS,
                "causal": causal_list,
            },
        )
        figures["traits"] = str(traits)
        figures["causal_json"] = str(causal_path(traits))
    return figures


def causal_path(traits: str | os.PathLike) -> Path:
    """Where the causal variants of a traits TSV are listed: ``X.tsv`` → ``X.causal.json``."""
    traits = Path(traits)
    stem = traits.name[: -len(traits.suffix)] if traits.suffix else traits.name
    return traits.with_name(f"{stem}.causal.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, required=True)
    ap.add_argument("--variants", type=int, required=True)
    ap.add_argument("--causal", type=int, default=10, help="planted causal variants (K)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--store", required=True, help="store URL or folder")
    ap.add_argument("--name", required=True, help="name of the genotypes dataset")
    ap.add_argument("--traits", help="traits TSV to write (and TRAITS.causal.json)")
    ap.add_argument("--h2", type=float, default=0.3, help="variance of score from the causal set")
    ap.add_argument("--prevalence", type=float, default=0.4, help="share of label = 1")
    ap.add_argument("--missing", type=float, default=0.005, help="share of missing calls")
    ap.add_argument("--ld-block", type=float, default=40.0, help="mean LD block, in variants")
    ap.add_argument("--switch", type=float, default=0.01, help="per-variant haplotype switch")
    ap.add_argument("--replace", action="store_true", help="replace a dataset of that name")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        figures = make_genotypes(
            Store(args.store),
            args.name,
            samples=args.samples,
            variants=args.variants,
            causal=args.causal,
            seed=args.seed,
            traits=args.traits,
            h2=args.h2,
            prevalence=args.prevalence,
            missing=args.missing,
            ld_block=args.ld_block,
            switch=args.switch,
            replace=args.replace,
            progress=not args.quiet,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    matrix = GenotypeMatrix.open(Store(args.store), args.name)
    print(json.dumps({k: v for k, v in figures.items() if k != "causal"}, indent=2))
    print(f"{matrix!r}, causal: {', '.join(c['id'] for c in figures['causal'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
