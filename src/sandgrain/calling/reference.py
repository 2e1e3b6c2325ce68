"""The reference a sample is aligned to and called against: a FASTA with its indexes.

Three files make a reference usable: the FASTA (plain, or bgzip-compressed with its ``.gzi``),
its samtools ``.fai`` (region access for ``bcftools mpileup -f``) and a minimap2 index ``.mmi``
built with the short-read preset (``minimap2 -x sr -d``). ``sandgrain calling index`` makes the
two indexes once; a run refuses a genome without them (building a human minimap2 index takes
minutes and 7 GB: it is never done silently inside a run).

``--genome`` is a FASTA path or the name of a genome in the store (``sandgrain genome add``):
the store keeps its sequence bgzip-compressed with ``.fai`` and ``.gzi``, and the minimap2 index
goes to the worker cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InputError, NotFoundError
from ..provenance import sha256_file
from . import tools

__all__ = ["PRESET", "Reference", "index_reference", "open_reference"]

#: minimap2's preset for short genomic reads (Illumina), used to build the index and to align.
PRESET = "sr"
_SIDECAR = ".sandgrain.json"


@dataclass(frozen=True)
class Reference:
    """A FASTA ready for alignment and calling (all paths local to the machine that runs)."""

    name: str
    fasta: str
    mmi: str
    sha256: str
    contigs: tuple[tuple[str, int], ...]

    def as_args(self) -> dict:
        """The reference as fan-out task arguments (paths, not data)."""
        return {"name": self.name, "fasta": self.fasta, "mmi": self.mmi, "sha256": self.sha256}

    @property
    def length(self) -> int:
        return sum(n for _, n in self.contigs)


def _contigs(fai: Path) -> tuple[tuple[str, int], ...]:
    rows = []
    for line in fai.read_text().splitlines():
        if line.strip():
            name, length, *_ = line.split("\t")
            rows.append((name, int(length)))
    if not rows:
        raise InputError(f"{fai}: the FASTA index lists no sequences")
    return tuple(rows)


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _is_bgzf(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(18)
    return len(head) == 18 and head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


def default_mmi(fasta: Path) -> Path:
    return fasta.with_name(fasta.name + ".mmi")


def index_reference(fasta: str | os.PathLike, mmi: str | os.PathLike | None = None) -> Reference:
    """Write the ``.fai`` (and ``.gzi``) and the minimap2 ``.mmi`` of a FASTA; return it ready.

    A gzip (not bgzip) FASTA cannot be indexed for region access: recompress it with
    ``bgzip``. The index is written to a temporary name and renamed, so a stopped run leaves no
    half-written index that a later run would trust.
    """
    import pysam

    path = Path(fasta)
    if not path.is_file():
        raise NotFoundError(f"no such FASTA: {path}")
    if is_gzip(path) and not _is_bgzf(path):
        raise InputError(
            f"{path.name} is gzip-compressed but not with bgzip: region access needs "
            f"`zcat {path.name} | bgzip > {path.stem}.bgz.fa.gz` (or an uncompressed FASTA)"
        )
    fai = path.with_name(path.name + ".fai")
    if not fai.is_file():
        try:
            pysam.faidx(str(path))
        except pysam.utils.SamtoolsError as exc:
            raise InputError(f"{path.name}: not a FASTA samtools can index ({exc})") from None
    target = Path(mmi) if mmi else default_mmi(path)
    partial = target.with_name(target.name + ".partial")
    tools.run(["minimap2", "-x", PRESET, "-d", partial, path], what=f"index {path.name}")
    os.replace(partial, target)
    ref = Reference(
        name=path.name,
        fasta=str(path),
        mmi=str(target),
        sha256=sha256_file(path),
        contigs=_contigs(fai),
    )
    facts = {**asdict(ref), "minimap2": tools.version("minimap2"), "preset": PRESET}
    sidecar = target.with_name(target.name + _SIDECAR)
    sidecar.with_suffix(".tmp").write_text(json.dumps(facts))
    os.replace(sidecar.with_suffix(".tmp"), sidecar)
    return ref


def _from_paths(name: str, fasta: Path, mmi: Path) -> Reference:
    fai = fasta.with_name(fasta.name + ".fai")
    if not fai.is_file() or not mmi.is_file():
        missing = ", ".join(str(p.name) for p in (fai, mmi) if not p.is_file())
        raise InputError(
            f"genome {name} has no index ({missing}): run `sandgrain calling index --genome "
            f"{name}` once first"
        )
    if is_gzip(fasta) and not fasta.with_name(fasta.name + ".gzi").is_file():
        raise InputError(f"{fasta.name} is compressed but has no .gzi: run `sandgrain calling "
                         f"index --genome {name}` (bgzip-compressed FASTA only)")
    sidecar = mmi.with_name(mmi.name + _SIDECAR)
    sha = ""
    if sidecar.is_file():
        facts = json.loads(sidecar.read_text())
        if facts.get("fasta") == str(fasta) or Path(facts.get("fasta", "")).name == fasta.name:
            sha = facts.get("sha256", "")
    if not sha:
        sha = sha256_file(fasta)
    return Reference(name=name, fasta=str(fasta), mmi=str(mmi), sha256=sha,
                     contigs=_contigs(fai))  # fmt: skip


def store_genome_paths(store, name: str, cache_dir: str) -> tuple[str, Path, Path]:
    """A store genome's local bgzip FASTA (with .fai/.gzi beside it) and its .mmi's place."""
    from ..genome.store import SEQUENCE, open_genome

    genome = open_genome(store, name)
    ds = genome.dataset
    fasta = Path(ds.local_path(SEQUENCE))
    for extra in (SEQUENCE + ".fai", SEQUENCE + ".gzi"):
        local = Path(ds.local_path(extra))
        if local.parent != fasta.parent:  # a cached copy: keep the index beside the sequence
            raise InputError(f"genome {name}: its index files are not beside its sequence")
    version = ds.manifest.get("version", "1")
    mmi = Path(cache_dir).expanduser() / "calling" / f"{genome.name}-{version}.mmi"
    return genome.name, fasta, mmi


def open_reference(genome: str, *, store=None, cache_dir: str | None = None,
                   mmi: str | None = None) -> Reference:  # fmt: skip
    """The reference named by ``--genome``: a FASTA path, or a genome in the store."""
    path = Path(genome).expanduser()
    if path.is_file():
        return _from_paths(genome, path, Path(mmi) if mmi else default_mmi(path))
    if store is None or os.sep in genome or genome.endswith((".fa", ".fasta", ".gz")):
        raise NotFoundError(f"no such FASTA: {genome}")
    name, fasta, store_mmi = store_genome_paths(store, genome, cache_dir or ".")
    return _from_paths(name, fasta, Path(mmi) if mmi else store_mmi)
