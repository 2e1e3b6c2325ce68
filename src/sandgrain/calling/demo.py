"""The calling demo step: three 1000 Genomes samples' reads over a 4.2 kb slice of chr17, as the
read set ``1000g-chr17`` (:mod:`.readsets`), for the calling page (``/calling``) and its API.

Needs ``reads/bcftools-mpileup/`` under the data folder: the slice (GRCh37; its contig is named
``17`` and counts from 1) and the BAMs of HG00100, HG00101 and HG00102 (101 bp pairs), from
bcftools' tests. Their reads go back to FASTQ (a fraction of a second). A read set already made
from the same files (same SHA-256) is left as it is.
"""

from __future__ import annotations

from ..provenance import sha256_file
from ..registry import DemoContext
from .readsets import KIND, import_bam_readset

#: The demo read set's name, where its files lie and its samples (BAM → sample, as their @RG SM).
DEMO_READSET = "1000g-chr17"
DEMO_FOLDER = "reads/bcftools-mpileup"
DEMO_REFERENCE = "mpileup.ref.fa"
DEMO_SAMPLES = (("HG00100", "mpileup.1.bam"), ("HG00101", "mpileup.2.bam"),
                ("HG00102", "mpileup.3.bam"))  # fmt: skip
DEMO_DESCRIPTION = "1000 Genomes reads of HG00100-HG00102 over 4.2 kb of chr17 (101 bp pairs)"


def _up_to_date(store, files) -> bool:
    if not store.has_dataset(KIND, DEMO_READSET):
        return False
    inputs = store.open_dataset(KIND, DEMO_READSET).manifest.get("provenance", {}).get("inputs", [])
    have = {i.get("sha256") for i in inputs if isinstance(i, dict)}
    return all(sha256_file(f) in have for f in files)


def demo(ctx: DemoContext) -> None:
    """Store the demo read set when missing or out of date."""
    folder = ctx.data / DEMO_FOLDER
    reference = folder / DEMO_REFERENCE
    samples = [(s, folder / bam) for s, bam in DEMO_SAMPLES]
    files = [reference, *(bam for _, bam in samples)]
    if not all(f.exists() for f in files):
        return
    if _up_to_date(ctx.store, files):
        ctx.echo(f"demo read set {DEMO_READSET} is up to date")
        return
    ds = import_bam_readset(ctx.store, DEMO_READSET, reference, samples,
                            description=DEMO_DESCRIPTION, replace=True)  # fmt: skip
    pairs = sum(s["pairs"] for s in ds.meta["samples"])
    ctx.echo(f"stored the demo read set {DEMO_READSET}: {len(samples)} samples, {pairs:,} read "
             f"pairs over {ds.meta['reference_bp']:,} bp")  # fmt: skip
