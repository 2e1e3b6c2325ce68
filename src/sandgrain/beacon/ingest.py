"""VCF/BCF → a Beacon dataset: Parquet partitions by genomic window, ingested in parallel.

Pipeline (``sandgrain beacon ingest``):

1. The input is made a bgzipped, tabix-indexed VCF in a scratch folder when it is not one
   already (plain text or plain gzip are recompressed; BCF is converted with pysam's bcftools).
2. Every contig with records is cut into windows of ``window_bp`` (10 Mbp by default); each
   window is one fan-out task that reads only its records through the index, splits
   multi-allelic records (one row per alternate allele, in minimal representation), decodes the
   genotypes, checks REF against the genome store when a genome of that assembly holds the
   chromosome, reads SnpEff ``ANN`` annotations, and writes one Parquet file.
3. Sample metadata becomes individuals; everything is published as one store dataset of kind
   ``beacon`` by a single manifest write, so re-ingesting replaces a dataset atomically.

Each variant row keeps, besides its alleles and counts, the samples carrying it and their
allele dosage, and the samples whose number of called alleles differs from the row's usual
ploidy: counts for any subset of individuals (filters, revoked consent) are then exact.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pysam.bcftools  # BCF input is converted with it

from ..errors import InputError, NotFoundError
from ..fanout import Task, run_plan
from ..fanout.executors import is_remote
from ..genome.assemblies import canonical_assembly, same_assembly
from ..provenance import provenance, sha256_file
from ..registry import capability
from ..storage import Store, check_name, scratch_dir
from .individuals import parse_individuals
from .variants import (
    SKIPPED_ALTS,
    Genotypes,
    aa_short,
    minimal_representation,
    variant_id,
    variant_type,
)

KIND = "beacon"
FORMAT = "sandgrain.beacon"
FORMAT_VERSION = 1
DEFAULT_WINDOW_BP = 10_000_000
ROW_GROUP = 4096
PARTITION_KEYS = ("file", "chrom", "window", "min_start0", "max_end0", "rows")
ACCESS_TIERS = ("public", "registered", "controlled")
_VALID_REF = frozenset("ACGTN")

SCHEMA = pa.schema(
    [
        ("start0", pa.int64()),
        ("end0", pa.int64()),
        ("ref", pa.string()),
        ("alt", pa.string()),
        ("vid", pa.string()),
        ("vtype", pa.string()),
        ("ids", pa.string()),
        ("ac", pa.int32()),
        ("an", pa.int32()),
        ("carriers", pa.int32()),
        ("hom", pa.int32()),
        ("ploidy", pa.int8()),
        ("genes", pa.string()),
        ("effects", pa.string()),
        ("aa", pa.string()),
        ("carrier_idx", pa.list_(pa.int32())),
        ("carrier_dose", pa.list_(pa.int8())),
        ("exc_idx", pa.list_(pa.int32())),
        ("exc_called", pa.list_(pa.int8())),
    ]
)


# -- input preparation ---------------------------------------------------------------------------
def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(18)
    if head[:2] == b"\x1f\x8b":
        bgzf = len(head) >= 16 and head[3] & 4 and head[12:14] == b"BC"
        try:
            with gzip.open(path, "rb") as fh:
                inner = fh.read(5)
        except (OSError, EOFError) as exc:
            raise InputError(f"{path.name}: damaged gzip data ({exc})") from None
        if inner.startswith(b"BCF"):
            return "bcf"
        if not inner.startswith(b"##"):
            raise InputError(f"{path.name}: not a VCF (it must start with ##fileformat=VCF)")
        return "bgzf" if bgzf else "gzip"
    if head.startswith(b"BCF"):
        return "bcf"  # uncompressed BCF
    if head.startswith(b"##"):
        return "text"
    raise InputError(f"{path.name}: not a VCF or BCF file")


def prepare_source(path: str | os.PathLike, scratch: Path) -> Path:
    """A bgzipped, tabix-indexed VCF for ``path`` (the file itself when it already is one)."""
    src = Path(path)
    if not src.exists():
        raise NotFoundError(f"no such file: {src}")
    if src.is_dir():
        raise InputError(f"{src} is a folder, not a VCF file")
    kind = _sniff(src)
    out = scratch / "input.vcf.gz"
    try:
        if kind == "bgzf":
            if Path(f"{src}.tbi").exists() or Path(f"{src}.csi").exists():
                return src
            os.symlink(src.resolve(), out)
        elif kind == "text":
            pysam.tabix_compress(str(src), str(out), force=True)
        elif kind == "gzip":
            with gzip.open(src, "rb") as fin, pysam.BGZFile(str(out), "wb") as fout:
                while chunk := fin.read(4 << 20):
                    fout.write(chunk)
        else:  # BCF → bgzipped VCF (bcftools inside pysam)
            pysam.bcftools.view("-O", "z", "-o", str(out), str(src), catch_stdout=False)
        pysam.tabix_index(str(out), preset="vcf", force=True, keep_original=True)
    except (OSError, EOFError, pysam.utils.SamtoolsError) as exc:
        unsorted = _first_unsorted(out if out.exists() else src)
        if unsorted:
            raise InputError(
                f"{src.name}: records are not sorted by position ({unsorted}); "
                "sort it first, e.g. bcftools sort"
            ) from None
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        message = message.replace(str(scratch), "…")
        raise InputError(f"{src.name}: cannot read it as VCF ({message})") from None
    return out


def _first_unsorted(path: Path) -> str | None:
    """Where a VCF first breaks position order (a record before its predecessor, or a
    chromosome that comes back after another one), or None."""
    opener = gzip.open if _is_gzip(path) else open
    seen: set[str] = set()
    chrom, last = None, -1
    try:
        with opener(path, "rt", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if line.startswith("#"):
                    continue
                fields = line.split("\t", 2)
                if len(fields) < 2 or not fields[1].isdigit():
                    return None
                pos = int(fields[1])
                if fields[0] != chrom:
                    if fields[0] in seen:
                        return f"line {n}: chromosome {fields[0]} comes back after {chrom}"
                    seen.add(fields[0])
                    chrom, last = fields[0], -1
                elif pos < last:
                    return f"line {n}: {chrom}:{pos} after {chrom}:{last}"
                last = pos
    except (OSError, EOFError, UnicodeError):
        return None
    return None


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _contig_windows(tbx: pysam.TabixFile, lengths: dict, window_bp: int) -> list[tuple]:
    windows = []
    for contig in tbx.contigs:
        bound = 1 << 20
        while next(iter(tbx.fetch(contig, bound)), None) is not None:
            bound *= 2
        span = max(bound, lengths.get(contig) or 0)
        for s in range(0, span, window_bp):
            e = min(span, s + window_bp)
            if next(iter(tbx.fetch(contig, s, e)), None) is not None:  # an index look-up
                windows.append((contig, s, e))
    return windows


def _reference_genome(store: Store, assembly: str):
    """The genome in the store whose assembly is ``assembly`` (None if there is none)."""
    from ..genome.store import list_genomes

    for genome in list_genomes(store):
        if same_assembly(genome.meta.get("assembly"), assembly):
            return genome
    return None


# -- one window ------------------------------------------------------------------------------------
def _info_fields(info: str, wanted: tuple[str, ...]) -> dict[str, str]:
    out = {}
    if info == ".":
        return out
    for item in info.split(";"):
        key, _, value = item.partition("=")
        if key in wanted:
            out[key] = value
    return out


def _snpeff(ann: str | None) -> dict[str, tuple[list, list, list]]:
    """SnpEff ``ANN`` (Cingolani et al. 2012, Fly 6:80): per allele → genes, effects, aa changes."""
    out: dict[str, tuple[list, list, list]] = {}
    if not ann:
        return out
    for entry in ann.split(","):
        parts = entry.split("|")
        if len(parts) < 11:
            continue
        genes, effects, changes = out.setdefault(parts[0], ([], [], []))
        if parts[3] and parts[3] not in genes and not parts[3].startswith("CHR_"):
            genes.append(parts[3])
        for effect in parts[1].split("&"):
            if effect and effect not in effects:
                effects.append(effect)
        hgvs_p = parts[10].strip()
        if hgvs_p:
            for form in (hgvs_p, aa_short(hgvs_p)):
                if form not in changes:
                    changes.append(form)
    return out


def _list_array(arrays: list[np.ndarray], dtype) -> pa.Array:
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int32, count=len(arrays))
    offsets = np.zeros(len(arrays) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def stage_source(store: Store, source: Path) -> dict:
    """Copy the prepared (bgzipped, indexed) VCF and its index into the store's scratch area, for
    workers that cannot see this machine's files (a Dask cluster, cloud functions). Returns the
    reference tasks read it by (:func:`open_source`); ``sandgrain store gc`` removes what a
    killed run leaves behind."""
    index = next(p for p in (Path(f"{source}.tbi"), Path(f"{source}.csi")) if p.exists())
    prefix = f"scratch/beacon-ingest-{uuid.uuid4().hex}"
    data_key, index_key = f"{prefix}/input.vcf.gz", f"{prefix}/input.vcf.gz{index.suffix}"
    store.put_file(source, data_key)
    store.put_file(index, index_key)
    return {"store": store.reference(), "prefix": prefix, "key": data_key, "index": index_key,
            "size": source.stat().st_size, "index_size": index.stat().st_size}  # fmt: skip


def open_source(source: str | dict) -> pysam.TabixFile:
    """The VCF a task reads: a path on this machine, or a staged copy in the store
    (:func:`stage_source`), fetched once per worker into its cache (:mod:`sandgrain.cache`)."""
    if isinstance(source, str):
        return pysam.TabixFile(source)
    store = Store.from_reference(source["store"])
    data = store.local_copy(source["key"], source["size"])
    index = store.local_copy(source["index"], source["index_size"])
    return pysam.TabixFile(data, index=index)


def ingest_window(
    store: dict,
    prefix: str,
    source: str | dict,
    n_samples: int,
    part: int,
    chrom: str,
    start0: int,
    end0: int,
    genome: dict | None = None,
) -> dict | None:
    """Fan-out task: read the records starting in ``chrom:[start0, end0)`` and write one file.

    ``source`` is the VCF's path when workers share this machine's files, else a staged copy in
    the store (:func:`stage_source`)."""
    tbx = open_source(source)
    ref_seq, ref_start = None, 0
    if genome is not None:
        from ..genome.store import Genome

        g = Genome.from_reference(genome)
        name = g.names.get(chrom)  # None: the genome lacks this chromosome (not checked then)
        if name is not None and start0 < g.length(name):
            ref_start = start0
            ref_seq = g.sequence(name, start0, min(g.length(name), end0 + 1000)).upper()
    cols: dict[str, list] = {k: [] for k in SCHEMA.names}
    records = skipped = ref_checked = 0
    want = ("END", "SVTYPE", "ANN", "AC", "AN")
    for line in tbx.fetch(chrom, start0, end0):
        fields = line.split("\t", 9)
        pos0 = int(fields[1]) - 1
        if pos0 < start0 or pos0 >= end0:
            continue
        records += 1
        where = f"{chrom}:{pos0 + 1}"
        ref = fields[3].upper()
        if not ref or not set(ref) <= _VALID_REF:
            raise InputError(f"record {where}: REF {fields[3]!r} is not a DNA sequence")
        if ref_seq is not None:
            offset = pos0 - ref_start
            expected = ref_seq[offset : offset + len(ref)]
            if len(expected) == len(ref):
                if any(
                    a != b and a != "N" and b != "N" for a, b in zip(ref, expected, strict=True)
                ):
                    raise InputError(
                        f"record {where}: REF {ref} does not match the reference genome "
                        f"({expected}); is the VCF on this assembly?"
                    )
                ref_checked += 1
        alts = fields[4].split(",")
        info = _info_fields(fields[7], want)
        if n_samples:
            if len(fields) < 10:
                raise InputError(f"record {where}: no genotype columns")
            try:
                g = Genotypes(fields[9], n_samples, fields[8], len(alts))
            except ValueError as exc:
                raise InputError(f"record {where}: {exc}") from None
            per_alt, ploidy, an = g.per_alt, g.ploidy, g.an
            exc, exc_called = g.exc_idx, g.exc_called
        else:  # sites-only VCF: counts from INFO AC/AN
            info_ac = info.get("AC", "").split(",")
            an = int(info["AN"]) if info.get("AN", "").isdigit() else 0
            per_alt = [(np.zeros(0, np.int32), np.zeros(0, np.int8)) for _ in alts]
            ploidy, exc, exc_called = 2, np.zeros(0, np.int32), np.zeros(0, np.int8)
        ann = _snpeff(info.get("ANN"))
        ids = ";".join(i for i in fields[2].split(";") if i and i != ".")
        for k, alt in enumerate(alts):
            alt = alt.upper() if not alt.startswith("<") else alt
            if alt in SKIPPED_ALTS:
                skipped += 1
                continue
            p0, r, a = minimal_representation(pos0, ref, alt)
            vt = variant_type(r, a, info.get("SVTYPE"))
            if a.startswith("<") and info.get("END", "").isdigit():
                e0 = int(info["END"])
            else:
                e0 = p0 + len(r)
            idx, dose = per_alt[k]
            genes, effects, changes = ann.get(fields[4].split(",")[k], ([], [], []))
            cols["start0"].append(p0)
            cols["end0"].append(max(e0, p0 + 1))
            cols["ref"].append(r)
            cols["alt"].append(a)
            cols["vid"].append(variant_id(chrom, p0, r, a))
            cols["vtype"].append(vt)
            cols["ids"].append(ids)
            if n_samples:
                cols["ac"].append(int(dose.sum(dtype=np.int64)))
            else:
                cols["ac"].append(
                    int(info_ac[k]) if k < len(info_ac) and info_ac[k].isdigit() else 0
                )
            cols["an"].append(an)
            cols["carriers"].append(int(idx.size))
            cols["hom"].append(int((dose >= 2).sum()))
            cols["ploidy"].append(ploidy)
            cols["genes"].append(";".join(genes))
            cols["effects"].append(";".join(effects))
            cols["aa"].append(";".join(changes))
            cols["carrier_idx"].append(idx)
            cols["carrier_dose"].append(dose)
            cols["exc_idx"].append(exc)
            cols["exc_called"].append(exc_called)
    if not cols["start0"]:
        return {"part": part, "records": records, "rows": 0, "skipped": skipped}
    order = np.argsort(np.asarray(cols["start0"], dtype=np.int64), kind="stable")
    arrays = []
    for field in SCHEMA:
        values = cols[field.name]
        if pa.types.is_list(field.type):
            values = [values[i] for i in order]
            arrays.append(_list_array(values, field.type.value_type.to_pandas_dtype()))
        else:
            arrays.append(pa.array([values[i] for i in order], type=field.type))
    table = pa.Table.from_arrays(arrays, schema=SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=ROW_GROUP, compression="zstd")
    data = sink.getvalue()
    file = f"variants/p{part:06d}.parquet"
    Store.from_reference(store).write_bytes(f"{prefix}/{file}", data)
    return {
        "part": part,
        "file": file,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "chrom": chrom,
        "window": [start0, end0],
        "min_start0": int(table["start0"][0].as_py()),
        "max_end0": int(np.max(table["end0"].to_numpy())),
        "rows": table.num_rows,
        # alleles someone in the file carries (the ones a Beacon answers)
        "carried": int((table["carriers"].to_numpy() > 0).sum()) if n_samples else table.num_rows,
        "records": records,
        "skipped": skipped,
        "ref_checked": ref_checked,
    }


# -- the whole ingest ------------------------------------------------------------------------------
#: VCF header lines kept in the dataset's metadata: what the biosamples, runs and analyses of the
#: Beacon say about how the genotypes were made (:mod:`sandgrain.beacon.entries`).
HEADER_FACTS = ("fileDate", "source", "reference")


def vcf_header_facts(header) -> dict[str, str]:
    """``##fileDate``, ``##source`` and ``##reference`` of a VCF header (first of each), as
    written; a ``fileDate`` (VCF 4.x: ``YYYYMMDD``) also as ``YYYY-MM-DD`` when it is a date."""
    facts: dict[str, str] = {}
    for record in header.records:
        key = getattr(record, "key", None)
        if key in HEADER_FACTS and key not in facts and record.value:
            facts[key] = str(record.value).strip()[:500]
    text = facts.get("fileDate", "")
    if len(text) == 8 and text.isdigit():
        with contextlib.suppress(ValueError):  # not a calendar date: kept only as written
            facts["fileDateIso"] = date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    return facts


def current_access(store: Store, dataset_id: str) -> str | None:
    """The access tier of the published dataset ``dataset_id``, or ``None`` if there is none."""
    if not store.has_dataset(KIND, dataset_id):
        return None
    return store.open_dataset(KIND, dataset_id).meta.get("access")


def ingest(
    store: Store,
    dataset_id: str,
    vcf: str | os.PathLike,
    *,
    assembly: str,
    individuals: str | os.PathLike | None = None,
    access: str | None = None,
    name: str | None = None,
    description: str | None = None,
    executor="local",
    retries: int = 2,
    window_bp: int = DEFAULT_WINDOW_BP,
    check_ref: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    phenotype_text_columns: Sequence[str] = (),
):
    """Ingest one VCF/BCF as Beacon dataset ``dataset_id`` (replacing it atomically if it exists).

    ``phenotype_text_columns``: free-text columns of ``individuals`` coded into HPO
    ``phenotypicFeatures`` by the phenotypes domain (:mod:`sandgrain.beacon.individuals`); the
    coder's HPO release is recorded in the provenance.

    ``access``: the tier (:data:`ACCESS_TIERS`); ``None`` keeps the tier of the dataset it
    replaces (``public`` for a new one), so re-ingesting a controlled dataset never opens it up
    unless a looser tier is asked for by name.

    Returns the published :class:`~sandgrain.storage.Dataset`.
    """
    check_name(dataset_id, "dataset id")
    if access is None:
        access = current_access(store, dataset_id) or "public"
    if phenotype_text_columns and individuals is None:
        raise InputError("--phenotype-text-column needs --individuals")
    assembly = canonical_assembly(assembly)
    if access not in ACCESS_TIERS:
        raise InputError(f"--access must be one of {', '.join(ACCESS_TIERS)} (got {access!r})")
    if window_bp < 10_000:
        raise InputError("the window must be at least 10,000 bp")
    vcf_path = Path(vcf)
    with scratch_dir("sandgrain-beacon-") as scratch:
        source = prepare_source(vcf_path, scratch)
        quiet = pysam.set_verbosity(0)  # htslib's warnings about odd INFO definitions
        try:
            header = pysam.VariantFile(str(source)).header
        except (OSError, ValueError) as exc:
            raise InputError(f"{vcf_path.name}: cannot read the VCF header ({exc})") from None
        finally:
            pysam.set_verbosity(quiet)
        described_by = vcf_header_facts(header)
        samples = list(header.samples)
        if len(set(samples)) != len(samples):
            raise InputError(f"{vcf_path.name}: sample names repeat in the header")
        lengths = {c: header.contigs[c].length for c in header.contigs}
        people = []
        if individuals is not None:
            meta_path = Path(individuals)
            if not meta_path.is_file():
                raise NotFoundError(f"no such file: {meta_path}")
            people = parse_individuals(
                meta_path.read_bytes(), meta_path.name, samples,
                text_columns=list(phenotype_text_columns),
                features=capability("clinical-text.features") if phenotype_text_columns else None,
            )  # fmt: skip
        described = {p["id"] for p in people}
        people.extend({"id": s} for s in samples if s not in described)
        order = {s: i for i, s in enumerate(samples)}
        people.sort(key=lambda p: order[p["id"]])
        genome = _reference_genome(store, assembly) if check_ref else None
        tbx = pysam.TabixFile(str(source))
        windows = _contig_windows(tbx, lengths, window_bp)
        staged = stage_source(store, Path(source)) if windows and is_remote(executor) else None
        with store.new_dataset(
            KIND, dataset_id, format=FORMAT, format_version=FORMAT_VERSION, replace=True
        ) as ds:
            tasks = [
                Task(
                    "sandgrain.beacon.ingest:ingest_window",
                    dict(
                        store=store.reference(),
                        prefix=ds.prefix,
                        source=staged or str(source),
                        n_samples=len(samples),
                        part=i,
                        chrom=chrom,
                        start0=s,
                        end0=e,
                        genome=genome.reference() if genome is not None else None,
                    ),
                    key=f"{dataset_id} {chrom}:{s + 1}-{e}",
                    weight=e - s,  # bases of the window, for progress
                )
                for i, (chrom, s, e) in enumerate(windows)
            ]
            try:
                results = run_plan(
                    tasks, executor, retries=retries, progress=progress, cancel=cancel,
                    store_probe=store.probe,
                )
            finally:
                if staged:
                    store.delete(staged["prefix"])
            partitions = []
            for r in results:
                if r.get("rows"):
                    ds.add_written(r["file"], r["size"], r["sha256"])
                    partitions.append({k: r[k] for k in PARTITION_KEYS})
            ds.write_bytes("individuals.json", json.dumps(people).encode())
            n_rows = sum(p["rows"] for p in partitions)
            n_variants = sum(r.get("carried", 0) for r in results)
            ds.meta = {
                "id": dataset_id,
                "name": name or dataset_id,
                "description": description or f"Variants of {vcf_path.name}",
                "assembly": assembly,
                "access": access,
                "samples": samples,
                "n_variants": n_variants,
                "n_rows": n_rows,
                "n_records": sum(r["records"] for r in results),
                "n_individuals": len(samples),
                "chromosomes": sorted({p["chrom"] for p in partitions}),
                "partitions": partitions,
                "ref_checked": sum(r.get("ref_checked", 0) for r in results),
                "reference_genome": genome.name if genome is not None else None,
                "skipped_alleles": sum(r.get("skipped", 0) for r in results),
                "vcf_header": described_by,
            }
            inputs = [{"source": str(vcf_path), "sha256": sha256_file(vcf_path)}]
            if individuals is not None:
                inputs.append({"source": str(individuals), "sha256": sha256_file(individuals)})
            ds.provenance = provenance(
                "beacon ingest",
                {
                    "dataset": dataset_id,
                    "assembly": assembly,
                    "access": access,
                    "window_bp": window_bp,
                    "check_ref": check_ref,
                    "normalisation": "multi-allelic split, minimal representation",
                    **(
                        {
                            "phenotype_text_columns": list(phenotype_text_columns),
                            "phenotype_coding": capability("clinical-text.version")(),
                        }
                        if phenotype_text_columns
                        else {}
                    ),
                },
                inputs,
            )
        tbx.close()
    return store.open_dataset(KIND, dataset_id)
