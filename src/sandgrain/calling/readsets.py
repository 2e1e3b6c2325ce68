"""Read sets: a reference and a cohort's paired reads kept together in the store (kind
``readsets``), so that a calling job (:mod:`.jobs`) or a person finds them by name.

A read set holds ``reference.fa`` (plain FASTA), each sample's ``<sample>_1.fq.gz`` and
``<sample>_2.fq.gz`` and ``samples.tsv`` — the sample sheet of ``sandgrain calling joint``
(``sample``, ``reads1``, ``reads2``, relative to the sheet). :func:`import_bam_readset` makes
one from aligned BAMs: their reads go back to FASTQ (``samtools collate | samtools fastq``, pairs
only) so that calling runs the whole way, alignment included.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..provenance import provenance, sha256_file
from ..storage import Store, scratch_dir
from . import tools
from .pipeline import SampleInput, read_samples_file

__all__ = ["KIND", "ReadSet", "import_bam_readset", "list_readsets", "open_readset"]

KIND = "readsets"
FORMAT = "sandgrain-readset"
FORMAT_VERSION = 1
REFERENCE = "reference.fa"
SAMPLES = "samples.tsv"


def _bam_to_fastq(bam: Path, out1: Path, out2: Path, tmp: Path) -> int:
    """A BAM's read pairs as two gzipped FASTQ (original orientation); returns the pairs."""
    tools.pipe(
        [["samtools", "collate", "-u", "-O", str(bam), str(tmp / "collate")],
         ["samtools", "fastq", "-F", "0x900", "-1", str(out1), "-2", str(out2),
          "-s", "/dev/null", "-0", "/dev/null", "-"]],
        what=f"reads of {bam.name}",
    )  # fmt: skip
    with gzip.open(out1, "rb") as fh:
        pairs = sum(1 for _ in fh) // 4
    if pairs == 0:
        raise InputError(f"{bam.name}: no read pairs")
    return pairs


def _contigs(fasta: Path) -> list[list]:
    contigs: list[list] = []
    with open(fasta, "rb") as fh:
        for line in fh:
            if line.startswith(b">"):
                contigs.append([line[1:].split()[0].decode(), 0])
            elif contigs:
                contigs[-1][1] += len(line.strip())
    if not contigs:
        raise InputError(f"{fasta.name}: no FASTA sequence")
    return contigs


def import_bam_readset(
    store: Store,
    name: str,
    reference: str | Path,
    samples: Sequence[tuple[str, str | Path]],
    *,
    description: str = "",
    replace: bool = False,
):
    """Store ``samples`` (``(sample, bam)`` pairs) as FASTQ with ``reference`` as read set
    ``name``; returns the dataset."""
    reference = Path(reference)
    if reference.suffix == ".gz":
        raise InputError("the read set's reference is a plain FASTA")
    contigs = _contigs(reference)
    inputs = [{"source": str(reference), "role": "reference", "sha256": sha256_file(reference)}]
    rows, meta_samples = ["sample\treads1\treads2"], []
    with scratch_dir("sandgrain-readset-") as tmp:
        files: dict[str, Path] = {}
        for sample, bam in samples:
            SampleInput(sample, "r1")  # the name's rules
            bam = Path(bam)
            r1, r2 = tmp / f"{sample}_1.fq.gz", tmp / f"{sample}_2.fq.gz"
            work = tmp / f"{sample}.collate"
            work.mkdir()
            pairs = _bam_to_fastq(bam, r1, r2, work)
            shutil.rmtree(work)
            files[r1.name], files[r2.name] = r1, r2
            rows.append(f"{sample}\t{r1.name}\t{r2.name}")
            meta_samples.append({"sample": sample, "pairs": pairs})
            inputs.append({"source": str(bam), "role": "reads", "sample": sample,
                           "sha256": sha256_file(bam)})  # fmt: skip
        (tmp / SAMPLES).write_text("\n".join(rows) + "\n")
        with store.new_dataset(
            KIND, name, format=FORMAT, format_version=FORMAT_VERSION, replace=replace
        ) as ds:
            ds.put_file(REFERENCE, reference)
            ds.put_file(SAMPLES, tmp / SAMPLES)
            for file, path in files.items():
                ds.put_file(file, path)
            ds.meta.update(
                description=description,
                contigs=contigs,
                reference_bp=sum(n for _, n in contigs),
                samples=meta_samples,
            )
            ds.provenance = provenance("calling readset import", {"name": name}, inputs)
    return store.open_dataset(KIND, name)


class ReadSet:
    """A stored read set, its files made local (a local store's own, or cached copies)."""

    def __init__(self, store: Store, name: str):
        self.dataset = store.open_dataset(KIND, name)
        self.name = name

    @property
    def meta(self) -> dict:
        return self.dataset.meta

    def reference(self) -> Path:
        return Path(self.dataset.local_path(REFERENCE))

    def samples(self) -> list[SampleInput]:
        """The sample sheet with each FASTQ's local path."""
        ds = self.dataset
        local = {f: ds.local_path(f) for f in ds.manifest["files"] if f.endswith(".fq.gz")}
        sheet = Path(ds.local_path(SAMPLES))
        out = []
        for s in read_samples_file(sheet):
            r1, r2 = (Path(p).name if p else None for p in (s.reads1, s.reads2))
            out.append(SampleInput(s.sample, local[r1], local.get(r2) if r2 else None))
        return out

    def summary(self) -> dict:
        return {
            "name": self.name,
            "version": self.dataset.manifest["version"],
            "description": self.meta.get("description", ""),
            "contigs": self.meta.get("contigs", []),
            "reference_bp": self.meta.get("reference_bp"),
            "samples": self.meta.get("samples", []),
        }


def open_readset(store: Store, name: str) -> ReadSet:
    """A stored read set by name (404 when missing)."""
    return ReadSet(store, name)


def list_readsets(store: Store) -> list[dict]:
    """Every read set's summary."""
    return [ReadSet(store, n).summary() for n in store.dataset_names(KIND)]
