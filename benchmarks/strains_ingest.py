"""Ingest rate of ``strains add``: genomes aligned, called and checked per second.

Adds the 418 shared SARS-CoV-2 genomes (repeated ``--copies`` times under new ids, so the
run is long enough to measure) to a fresh collection in a temporary store, on the executor given
(``local:2`` = two worker processes), and reports genomes/s for the whole command (reading the
FASTA, staging batches, the fan-out, publishing) and for alignment + calls + QC alone in this
process (and for alignment alone). ``--rounds`` repeats the add on fresh collections and keeps
the fastest (on a machine shared with other work the fastest round is the one least disturbed;
the median is written too). Prints a table and writes JSON (``--out``).

    .venv/bin/python benchmarks/strains_ingest.py --copies 5 --executor local:2

To compare two versions of the code on the same machine in the same sitting, run this script
with ``PYTHONPATH`` pointing at the other version's ``src`` (it only uses the public pieces).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SANDGRAIN_TEST_DATA", REPO.parent / "shared" / "data"))
NCOV = DATA / "pathogen/sars-cov-2-ncov-example"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--executor", default="local:2")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", default="strains_ingest.json")
    args = ap.parse_args()
    from sandgrain.genome.store import add_genome
    from sandgrain.storage import Store
    from sandgrain.strains.collection import add_genomes, analyse, read_fasta
    from sandgrain.strains.mutations import coding_sequences

    records = list(read_fasta(NCOV / "example_sequences.fasta.gz"))
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / "genomes.fa.gz"
        with gzip.open(fasta, "wt", compresslevel=1) as fh:
            for k in range(args.copies):
                for name, seq in records:
                    fh.write(f">{name}#{k}\n{seq}\n")
        n = len(records) * args.copies
        store = Store(str(Path(tmp) / "store"))
        genome = add_genome(
            store,
            "MN908947",
            str(NCOV / "reference_seq.fasta"),
            annotation=str(NCOV / "reference_seq.gb"),
        )
        times = []
        for r in range(args.rounds):
            t = time.perf_counter()
            add_genomes(
                store,
                f"bench{r}",
                reference="MN908947",
                fasta=fasta,
                executor=args.executor,
                batch=args.batch,
            )
            times.append(time.perf_counter() - t)
        add_s = min(times)
        from sandgrain.strains.align import Reference, align

        seq = genome.sequence("MN908947", 0, genome.length("MN908947"))
        ref, cds = Reference.from_sequence(seq), coding_sequences(genome.genes, len(seq))
        analyse(ref, cds, *records[0])  # compile the kernels first
        one_core = align_only = 0.0
        for _ in range(args.rounds):  # the fastest round, as for the add
            t = time.perf_counter()
            for name, s in records:
                analyse(ref, cds, name, s)
            one_core = max(one_core, len(records) / (time.perf_counter() - t))
            t = time.perf_counter()
            for _, s in records:
                align(ref, s)
            align_only = max(align_only, len(records) / (time.perf_counter() - t))
    result = {
        "genomes": n,
        "executor": args.executor,
        "batch": args.batch,
        "add_s": round(add_s, 2),
        "add_genomes_per_s": round(n / add_s, 1),
        "add_rounds_s": [round(x, 2) for x in times],
        "add_median_genomes_per_s": round(n / statistics.median(times), 1),
        "one_process_genomes_per_s": round(one_core, 1),
        "one_process_align_only_per_s": round(align_only, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{'genomes':>8} {'executor':>9} {'add s':>7} {'add g/s':>8} {'1-proc g/s':>11} "
        f"{'align g/s':>10}"
    )
    print(
        f"{n:>8} {args.executor:>9} {add_s:>7.1f} {n / add_s:>8.1f} {one_core:>11.1f} "
        f"{align_only:>10.1f}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
