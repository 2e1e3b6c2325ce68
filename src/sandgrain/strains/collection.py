"""Genome collections: consensus genomes and their metadata, aligned and called, in the store.

A collection is a dataset of kind :data:`KIND` (``strains/<name>/<version>/``), published
atomically like every dataset (:mod:`sandgrain.storage`)::

    reference.fa          the reference sequence the genomes were aligned to (a copy)
    cds.json              its coding sequences (name, strand, 0-based positions as parts)
    metadata.parquet      one row per genome: every metadata column, as text
    calls/p000000.parquet one row per genome: its calls and QC (columns: mutations.CALL_FIELDS)

Adding genomes (:func:`add_genomes`) streams the FASTA (plain or gzipped, any size) once, in
batches of ``batch`` genomes; each batch is staged in the store's scratch area (as plain text)
and aligned, called and checked by one fan-out task (:func:`call_batch`), which writes one calls
file. Adding to an existing collection publishes a new version holding the old files and the
new ones. A genome whose id is already in the collection, or repeats in the FASTA, is refused
(``on_duplicate="refuse"``, nothing is published; duplicates are decided at the end of the pass,
before any task runs) or replaces the earlier one (``"replace"``: the last copy wins).
Metadata rows without a genome and genomes without metadata are counted, listed (the first
:data:`REPORT_LIMIT`) in the dataset's metadata and provenance, and returned.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConflictError, InputError, NotFoundError
from ..fanout import Task, run_plan
from ..provenance import provenance, sha256_file
from ..registry import capability
from ..storage import Dataset, Store, check_name
from .align import AlignmentFailed, Reference, align
from .index import build_part, index_file, part_from_table
from .mutations import (
    CALL_FIELDS,
    LIST_FIELDS,
    Calls,
    CodingSequence,
    call_mutations,
    coding_sequences,
)
from .qc import qc

__all__ = [
    "KIND",
    "AddReport",
    "Collection",
    "add_genomes",
    "call_batch",
    "list_collections",
    "read_fasta",
]

KIND = "strains"
FORMAT = "sandgrain.strains"
FORMAT_VERSION = 1
DEFAULT_BATCH = 500
#: The first batch of an add without an explicit batch size (then 2×, 4×, … up to the batch).
RAMP_START = 50
REPORT_LIMIT = 100
_LIST_FIELDS = frozenset(LIST_FIELDS)
_INT_FIELDS = {
    "length",
    "n_count",
    "longest_n_run",
    "alignment_start",
    "alignment_end",
    "alignment_score",
}
CALLS_SCHEMA = pa.schema(
    [
        (
            name,
            pa.list_(pa.string())
            if name in _LIST_FIELDS
            else pa.int64()
            if name in _INT_FIELDS
            else pa.string(),
        )
        for name in CALL_FIELDS
    ]
    + [("status", pa.string())]
)


# -- FASTA -----------------------------------------------------------------------------------------
def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"no such file: {p}")
    with open(p, "rb") as fh:
        magic = fh.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    return io.TextIOWrapper(opener(p, "rb"), encoding="ascii", errors="replace")


def read_fasta(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """``(id, sequence)`` of each record, one at a time (the id is the header's first word)."""
    name = None
    parts: list[str] = []
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if line.startswith(">"):
                if name is not None:
                    yield name, "".join(parts)
                fields = line[1:].split()
                if not fields:
                    raise InputError(f"{Path(path).name}:{lineno}: a FASTA header without an id")
                name, parts = fields[0], []
            elif name is None:
                if line.strip():
                    raise InputError(f"{Path(path).name}: not a FASTA file (no '>' header first)")
            else:
                parts.append(line.strip())
    if name is not None:
        yield name, "".join(parts)


# -- metadata --------------------------------------------------------------------------------------
def read_metadata(path: str | os.PathLike, id_column: str) -> pa.Table:
    """A metadata table (TSV or CSV, by the first line's tabs), every column as text, the id
    column first and renamed ``strain``; ids must be unique."""
    import pyarrow.csv as pacsv

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"no such file: {p}")
    with _open_text(p) as fh:
        head = fh.readline()
    delimiter = "\t" if "\t" in head else ","
    columns = [c.strip() for c in head.rstrip("\r\n").split(delimiter)]
    if id_column not in columns:
        raise InputError(
            f"{p.name}: no id column {id_column!r} (columns: {', '.join(columns[:12])}); "
            "name it with --id-column"
        )
    try:
        table = pacsv.read_csv(
            p,
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char=False if delimiter == "\t" else '"'
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{p.name}: cannot read the metadata table: {exc}") from None
    ids = table[id_column].to_pylist()
    if len(set(ids)) != len(ids):
        seen, dup = set(), []
        for i in ids:
            if i in seen:
                dup.append(i)
            seen.add(i)
        raise InputError(f"{p.name}: ids repeat in column {id_column!r}: {', '.join(dup[:5])}")
    rest = [c for c in table.column_names if c != id_column and c != "strain"]
    return pa.table({"strain": table[id_column], **{c: table[c] for c in rest}})


# -- the fan-out task ------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _prepared(store_url: str, store_opts: str, prefix: str) -> tuple[Reference, list]:
    """The reference and CDS of a collection version, read once per worker."""
    store = Store.from_reference({"url": store_url, "storage_options": json.loads(store_opts)})
    text = store.read_bytes(f"{prefix}/reference.fa").decode()
    sequence = "".join(text.split("\n", 1)[1].split())
    cds = [
        CodingSequence(c["name"], np.asarray(c["positions"], dtype=np.int64), c["strand"])
        for c in json.loads(store.read_bytes(f"{prefix}/cds.json"))
    ]
    return Reference.from_sequence(sequence), cds


def analyse(ref: Reference, cds: list[CodingSequence], strain: str, sequence: str) -> Calls:
    """Align, call and check one genome (a genome that cannot be aligned gets ``error``)."""
    try:
        alignment = align(ref, sequence)
    except AlignmentFailed as exc:
        calls = Calls(strain=strain, error=str(exc))
    else:
        calls = call_mutations(ref, cds, alignment, strain)
    if calls.error:
        calls.length = len(sequence)
    calls.qc = qc(calls, len(ref))
    return calls


def calls_table(calls: list[Calls]) -> pa.Table:
    cols = {name: [getattr(c, name) for c in calls] for name in CALL_FIELDS}
    cols["qc"] = [json.dumps(q, sort_keys=True) for q in cols["qc"]]
    cols["status"] = [c.qc.get("status", "") for c in calls]
    return pa.Table.from_pydict(cols, schema=CALLS_SCHEMA)


def call_batch(
    store: dict, batch_key: str, prefix: str, part: int, skip: list[int] | None = None
) -> dict:
    """Fan-out task: align, call and check the genomes of one staged batch (but the records
    numbered in ``skip``: earlier copies of a replaced id); write one calls file under the
    collection version ``prefix``; return what the manifest needs."""
    st = Store.from_reference(store)
    ref, cds = _prepared(st.url, json.dumps(st.storage_options, sort_keys=True), prefix)
    dropped = set(skip or ())
    calls = [
        analyse(ref, cds, strain, seq)
        for k, (strain, seq) in enumerate(_read_staged(st.read_bytes(batch_key)))
        if k not in dropped
    ]
    sink = io.BytesIO()
    pq.write_table(calls_table(calls), sink, compression="zstd")
    data = sink.getvalue()
    file = f"calls/p{part:06d}.parquet"
    st.write_bytes(f"{prefix}/{file}", data)
    index = build_part(calls, len(ref)).to_bytes()
    st.write_bytes(f"{prefix}/{index_file(file)}", index)
    statuses = {s: sum(c.qc.get("status") == s for c in calls) for s in ("good", "mediocre", "bad")}
    return {
        "file": file,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "index": [index_file(file), len(index), hashlib.sha256(index).hexdigest()],
        "genomes": len(calls),
        "statuses": statuses,
    }


# -- reading ---------------------------------------------------------------------------------------
def _calls_from_row(row: dict) -> Calls:
    row = dict(row)
    row.pop("status", None)
    row["qc"] = json.loads(row["qc"]) if row.get("qc") else {}
    for name in _LIST_FIELDS:
        row[name] = list(row.get(name) or [])
    return Calls(**row)


@dataclass
class Collection:
    """A published collection (see the module docstring for its files)."""

    dataset: Dataset

    @classmethod
    def open(cls, store: Store, name: str) -> Collection:
        try:
            return cls(store.open_dataset(KIND, name))
        except NotFoundError:
            known = ", ".join(store.dataset_names(KIND)) or "none yet"
            raise NotFoundError(
                f"no collection {name!r} (known: {known}); add genomes with "
                "`sandgrain strains add --collection NAME …`"
            ) from None

    @property
    def name(self) -> str:
        return self.dataset.name

    @property
    def meta(self) -> dict:
        return self.dataset.meta

    def reference(self) -> str:
        """The reference sequence the genomes were aligned to."""
        text = self.dataset.read_bytes("reference.fa").decode()
        return "".join(text.split("\n", 1)[1].split())

    def parts(self) -> list[str]:
        return sorted(f for f in self.dataset.manifest["files"] if f.startswith("calls/"))

    def _read_part(self, file: str, columns: list[str] | None = None) -> pa.Table:
        # Parquet is read on one thread throughout sandgrain: with Arrow's reader threads a
        # process aborted at exit about one run in six ("terminate called without an active
        # exception", pyarrow 25 and 26); the files read are one part each, small.
        return pq.read_table(
            io.BytesIO(self.dataset.read_bytes(file)), columns=columns, use_threads=False
        )

    def iter_calls(self, batch: int = 1000, strains=None) -> Iterator[list[Calls]]:
        """The calls of every genome (or of ``strains``), in batches of at most ``batch``."""
        wanted = set(strains) if strains is not None else None
        out: list[Calls] = []
        for file in self.parts():
            table = self._read_part(file)
            if wanted is not None:
                import pyarrow.compute as pc

                table = table.filter(pc.is_in(table["strain"], pa.array(sorted(wanted))))
            for row in table.to_pylist():
                out.append(_calls_from_row(row))
                if len(out) >= batch:
                    yield out
                    out = []
        if out:
            yield out

    def calls(self, strain: str) -> Calls:
        for batch in self.iter_calls(strains=[strain]):
            return batch[0]
        raise NotFoundError(f"no genome {strain!r} in collection {self.name!r}")

    def strains(self) -> list[str]:
        out: list[str] = []
        for file in self.parts():
            out.extend(self._read_part(file, ["strain"])["strain"].to_pylist())
        return out

    def metadata(self) -> pa.Table:
        """Every genome's metadata: ``strain`` first, then the metadata file's columns (text)."""
        return pq.read_table(
            io.BytesIO(self.dataset.read_bytes("metadata.parquet")), use_threads=False
        )

    def qc_table(self) -> pa.Table:
        """One row per genome: strain, status, score, reasons and each rule's score."""
        rows: dict[str, list] = {"strain": [], "status": [], "score": [], "reasons": []}
        rules = (
            "missing_data",
            "mixed_sites",
            "private_mutations",
            "snp_clusters",
            "frame_shifts",
            "stop_codons",
        )
        for r in rules:
            rows[r] = []
        for file in self.parts():
            table = self._read_part(file, ["strain", "qc"])
            for strain, text in zip(
                table["strain"].to_pylist(), table["qc"].to_pylist(), strict=True
            ):
                q = json.loads(text)
                rows["strain"].append(strain)
                rows["status"].append(q.get("status"))
                rows["score"].append(q.get("score"))
                rows["reasons"].append("; ".join(q.get("reasons", [])))
                for r in rules:
                    rows[r].append(q.get("rules", {}).get(r, {}).get("score"))
        return pa.table(rows)

    def summary(self) -> dict:
        m = self.meta
        return {
            "collection": self.name,
            "genomes": m.get("genomes", 0),
            "reference": m.get("reference", {}).get("genome"),
            "statuses": m.get("statuses", {}),
            "version": self.dataset.manifest["version"],
            "created": self.dataset.manifest.get("created"),
        }


def list_collections(store: Store) -> list[Collection]:
    return [Collection.open(store, name) for name in store.dataset_names(KIND)]


# -- adding genomes --------------------------------------------------------------------------------
@dataclass
class AddReport:
    """What one ``strains add`` did."""

    collection: str
    added: int = 0
    replaced: int = 0
    total: int = 0
    metadata_without_genome: list[str] = field(default_factory=list)
    n_metadata_without_genome: int = 0
    genomes_without_metadata: list[str] = field(default_factory=list)
    n_genomes_without_metadata: int = 0
    statuses: dict = field(default_factory=dict)
    version: str = ""

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _reference_of(genome) -> tuple[str, str, list[CodingSequence]]:
    if len(genome.chromosomes) != 1:
        raise InputError(
            f"genome {genome.name} has {len(genome.chromosomes)} sequences; a strains reference "
            "is one sequence (a virus genome)"
        )
    chrom = genome.chromosomes[0]["name"]
    sequence = genome.sequence(chrom, 0, genome.length(chrom)).upper()
    genes = [g for g in genome.genes if g.chrom == chrom] if genome.has_genes else []
    return chrom, sequence, coding_sequences(genes, len(sequence))


def _cds_json(cds: list[CodingSequence]) -> bytes:
    return json.dumps(
        [{"name": c.name, "strand": c.strand, "positions": c.positions.tolist()} for c in cds]
    ).encode()


def add_genomes(
    store: Store,
    collection: str,
    *,
    reference: str,
    fasta: str | os.PathLike,
    metadata: str | os.PathLike | None = None,
    id_column: str = "strain",
    date_column: str | None = "date",
    on_duplicate: str = "refuse",
    batch: int | None = None,
    executor="local",
    retries: int = 2,
    progress: Callable[[int, int], None] | None = None,
    clinical_columns: Sequence[str] = (),
    status_column: str | None = None,
) -> AddReport:
    """Add the genomes of a FASTA (and their metadata) to a collection, creating it if need be.

    Parameters
    ----------
    reference
        A genome in the genome store (``sandgrain genome add``), with its genes for amino-acid
        calls; a collection keeps the reference it was created with.
    on_duplicate
        ``"refuse"`` (an id already in the collection or repeated in the FASTA stops the whole
        add, nothing is published) or ``"replace"`` (the last copy wins).
    date_column
        The metadata column of collection dates (checked to exist when metadata is given and
        the column was asked for explicitly; ``None`` or a missing default ``date`` is fine).
    clinical_columns, status_column
        Free-text metadata columns (symptoms, notes) coded into HPO terms, and a free-text
        patient status (GISAID's) read onto the WHO clinical progression scale, by the
        phenotypes domain's ``"clinical-text.code-columns"`` capability
        (:func:`sandgrain.registry.capability`): new columns ``<col>_hpo``,
        ``<col>_hpo_absent``, ``outcome_who`` and ``outcome_status``; the coder's HPO release
        goes into the provenance.

    Returns
    -------
    AddReport
    """
    from ..genome.store import open_reference_genome

    check_name(collection, "collection name")
    if on_duplicate not in ("refuse", "replace"):
        raise InputError(f"--on-duplicate is refuse or replace, not {on_duplicate!r}")
    ramp = batch is None  # the default: batches of DEFAULT_BATCH, the first ones smaller
    batch = DEFAULT_BATCH if batch is None else batch
    if batch < 1:
        raise InputError("the batch size must be at least 1")
    fasta = Path(fasta)
    if not fasta.is_file():
        raise NotFoundError(f"no such file: {fasta}")
    genome = open_reference_genome(store, reference)
    chrom, ref_seq, cds = _reference_of(genome)
    old = Collection.open(store, collection) if store.has_dataset(KIND, collection) else None
    if old is not None and old.meta["reference"]["genome"] != genome.name:
        raise InputError(
            f"collection {collection!r} was aligned to {old.meta['reference']['genome']}, "
            f"not {genome.name}; use another collection name"
        )
    if old is not None and old.reference() != ref_seq:
        raise InputError(
            f"genome {genome.name} changed since collection {collection!r} was made (its "
            "sequence differs); use another collection name"
        )
    meta_table = read_metadata(metadata, id_column) if metadata is not None else None
    if meta_table is not None and date_column and date_column not in meta_table.column_names:
        if date_column != "date":
            raise InputError(f"{Path(metadata).name}: no date column {date_column!r}")
        date_column = None
    clinical_coding = None
    if clinical_columns or status_column:
        if meta_table is None:
            raise InputError("--clinical-column and --status-column need --metadata")
        code_columns = capability("clinical-text.code-columns")
        try:
            meta_table, clinical_coding = code_columns(
                meta_table, list(clinical_columns), status_column=status_column
            )
        except InputError as exc:
            raise InputError(f"{Path(metadata).name}: {exc}") from None
    existing = set(old.strains()) if old is not None else set()
    report = AddReport(collection)
    scratch = f"scratch/strains-add-{uuid.uuid4().hex}"
    with store.new_dataset(
        KIND, collection, format=FORMAT, format_version=FORMAT_VERSION, replace=old is not None
    ) as ds:
        ds.write_bytes("reference.fa", f">{chrom}\n{ref_seq}\n".encode())
        ds.write_bytes("cds.json", _cds_json(cds))
        try:
            # One pass over the FASTA: batches are staged as they are read, and duplicates are
            # decided at the end, before any task runs (a refused add stages nothing more once
            # it knows, runs nothing and publishes nothing).
            staged = _stage_batches(store, scratch, fasta, batch, existing, on_duplicate, ramp=ramp)
            ids, last_index = staged.ids, staged.last_index
            if not ids:
                raise InputError(f"{fasta.name}: no FASTA records")
            counts = Counter(ids)
            repeated = sorted(s for s, c in counts.items() if c > 1)
            clashing = sorted(existing & set(last_index))
            if on_duplicate == "refuse" and (repeated or clashing):
                what = []
                if clashing:
                    what.append(
                        f"{len(clashing)} already in the collection ({', '.join(clashing[:3])})"
                    )
                if repeated:
                    what.append(
                        f"{len(repeated)} repeated in the FASTA ({', '.join(repeated[:3])})"
                    )
                raise ConflictError(
                    f"{'; '.join(what)}: nothing added; use --on-duplicate replace to replace them"
                )
            new_ids = list(last_index)
            if meta_table is not None:
                described = set(meta_table["strain"].to_pylist())
                without_genome = [
                    s for s in meta_table["strain"].to_pylist() if s not in last_index
                ]
                without_meta = [s for s in new_ids if s not in described]
                report.n_metadata_without_genome = len(without_genome)
                report.metadata_without_genome = without_genome[:REPORT_LIMIT]
                report.n_genomes_without_metadata = len(without_meta)
                report.genomes_without_metadata = without_meta[:REPORT_LIMIT]
            replaced = set(clashing)
            first_part = _carry_over(old, ds, replaced)
            tasks = []
            for k, (key, start, n) in enumerate(staged.batches):
                # earlier copies of an id repeated in the FASTA (on_duplicate="replace")
                skip = [i - start for i in range(start, start + n) if last_index[ids[i]] != i]
                if len(skip) == n:  # every genome of the batch comes again later
                    continue
                tasks.append(
                    Task(
                        "sandgrain.strains.collection:call_batch",
                        {
                            "store": store.reference(),
                            "batch_key": key,
                            "prefix": ds.prefix,
                            "part": first_part + k,
                            "skip": skip,
                        },
                        key=f"{collection} batch {k + 1}",
                        weight=n - len(skip),
                    )
                )
            results = run_plan(
                tasks, executor, retries=retries, progress=progress, store_probe=store.probe
            )
        finally:
            store.delete(scratch)
        for r in results:
            ds.add_written(r["file"], r["size"], r["sha256"])
            ds.add_written(*r["index"])
        statuses = _count_statuses(store, ds)
        table = _merged_metadata(old, meta_table, new_ids)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        ds.write_bytes("metadata.parquet", sink.getvalue())
        report.added = len(new_ids) - len(replaced)
        report.replaced = len(replaced)
        report.total = table.num_rows
        report.statuses = statuses
        report.version = ds.version
        inputs = [{"source": str(fasta), "sha256": sha256_file(fasta), "role": "fasta"}]
        if metadata is not None:
            inputs.append(
                {"source": str(metadata), "sha256": sha256_file(metadata), "role": "metadata"}
            )
        if old is not None:
            inputs.append(
                {
                    "source": f"{KIND}/{collection}@{old.dataset.manifest['version']}",
                    "role": "previous version",
                }
            )
        reported = {k: v for k, v in report.to_dict().items() if k not in ("collection", "version")}
        # genomes per calls part (the searches plan partitions with them); a part that lost
        # replaced genomes is counted again when it is read
        part_genomes = {r["file"]: r["genomes"] for r in results}
        if old is not None and not replaced:
            part_genomes.update(old.meta.get("part_genomes") or {})
        ds.meta = {
            "genomes": table.num_rows,
            "reference": {
                "genome": genome.name,
                "version": genome.dataset.manifest["version"],
                "sequence": chrom,
                "length": len(ref_seq),
                "cds": [c.name for c in cds],
            },
            "id_column": id_column,
            "date_column": date_column or (old.meta.get("date_column") if old else None),
            "statuses": statuses,
            "part_genomes": part_genomes,
            "last_add": reported,
            "history": (old.meta.get("history", []) if old else [])
            + [
                {
                    "version": ds.version,
                    "added": report.added,
                    "replaced": report.replaced,
                    "fasta": str(fasta),
                }
            ],
        }
        ds.provenance = provenance(
            "strains add",
            {
                "collection": collection,
                "reference": genome.name,
                "id_column": id_column,
                "date_column": date_column,
                "on_duplicate": on_duplicate,
                "batch": batch,
                "batch_ramp": ramp,
                "report": reported,
                **({"clinical_coding": clinical_coding} if clinical_coding else {}),
            },
            inputs,
        )
    return report


@dataclass
class _Staged:
    """What one pass over a FASTA staged: every id in file order, the index of each id's last
    copy, and the batches as ``(store key, index of the first record, records)``."""

    ids: list[str] = field(default_factory=list)
    last_index: dict[str, int] = field(default_factory=dict)
    batches: list[tuple[str, int, int]] = field(default_factory=list)


def _stage_batches(
    store: Store, scratch: str, fasta: Path, size: int, existing: set[str], on_duplicate: str,
    ramp: bool = False,
) -> _Staged:  # fmt: skip
    """Read the FASTA once and write its records to the store's scratch area in batches of
    ``size``, as plain ``>id\nsequence\n`` text (what :func:`call_batch` reads back: no JSON,
    no compression; the store is a local disk or a bucket in the same region). Once a refused
    duplicate is seen, the rest is only read for its ids. With ``ramp`` the first batches are
    smaller (:data:`RAMP_START` genomes, doubling up to ``size``), so that a small add still
    gives every worker a task and a large one starts all workers at once."""
    out = _Staged()
    chunk: list[bytes] = []
    start = 0
    conflict = False

    def flush() -> None:
        key = f"{scratch}/b{len(out.batches):06d}.fa"
        store.write_bytes(key, b"".join(chunk))
        out.batches.append((key, start, len(chunk)))
        chunk.clear()

    for i, (strain, seq) in enumerate(_records(fasta)):
        if on_duplicate == "refuse" and (strain in out.last_index or strain in existing):
            conflict = True
        out.ids.append(strain)
        out.last_index[strain] = i
        if conflict:
            continue
        chunk.append(b">%s\n%s\n" % (strain.encode(), seq.encode("ascii", "replace")))
        if len(chunk) >= (min(size, RAMP_START << len(out.batches)) if ramp else size):
            flush()
            start = i + 1
    if chunk and not conflict:
        flush()
    return out


def _records(fasta: Path) -> Iterator[tuple[str, str]]:
    """:func:`read_fasta`, but a file with no header at all has no FASTA records."""
    try:
        yield from read_fasta(fasta)
    except InputError:
        with _open_text(fasta) as fh:
            if not any(line.startswith(">") for line in fh):
                raise InputError(f"{fasta.name}: no FASTA records") from None
        raise


def _read_staged(data: bytes) -> Iterator[tuple[str, bytes]]:
    """``(id, sequence)`` of a staged batch (:func:`_stage_batches`)."""
    lines = data.split(b"\n")
    for k in range(0, len(lines) - 1, 2):
        yield lines[k][1:].decode(), lines[k + 1]


def _carry_over(old: Collection | None, ds, replaced: set[str]) -> int:
    """Copy the previous version's calls files into the new version (without the replaced
    genomes); returns the next free part number."""
    if old is None:
        return 0
    import pyarrow.compute as pc

    last = -1
    length = int(old.meta["reference"]["length"])
    have = set(old.dataset.manifest["files"])
    for file in old.parts():
        last = max(last, int(file.split("/p")[1].split(".")[0]))
        data = old.dataset.read_bytes(file)
        table = None
        if replaced:
            table = pq.read_table(io.BytesIO(data), use_threads=False)
            keep = pc.invert(pc.is_in(table["strain"], pa.array(sorted(replaced))))
            if not pc.all(keep).as_py():
                table = table.filter(keep)
                if table.num_rows == 0:
                    continue
                sink = io.BytesIO()
                pq.write_table(table, sink, compression="zstd")
                data = sink.getvalue()
            else:
                table = None
        ds.write_bytes(file, data)
        # the part's index: copied when the part is unchanged, made again when it lost genomes
        if table is None and index_file(file) in have:
            ds.write_bytes(index_file(file), old.dataset.read_bytes(index_file(file)))
        else:
            if table is None:
                table = pq.read_table(io.BytesIO(data), use_threads=False)
            ds.write_bytes(index_file(file), part_from_table(table, length).to_bytes())
    return last + 1


def _count_statuses(store: Store, ds) -> dict[str, int]:
    counts = {"good": 0, "mediocre": 0, "bad": 0}
    for file in ds.files:
        if file.startswith("calls/"):
            table = pq.read_table(
                io.BytesIO(store.read_bytes(f"{ds.prefix}/{file}")),
                columns=["status"],
                use_threads=False,
            )
            for s in table["status"].to_pylist():
                counts[s] = counts.get(s, 0) + 1
    return counts


def _merged_metadata(old: Collection | None, new: pa.Table | None, new_ids: list[str]) -> pa.Table:
    """The previous metadata (without replaced genomes), then the new genomes' rows (a genome
    without metadata gets empty fields); columns are the union, as text."""
    tables = []
    if old is not None:
        prev = old.metadata()
        import pyarrow.compute as pc

        keep = pc.invert(pc.is_in(prev["strain"], pa.array(new_ids, pa.string())))
        tables.append(prev.filter(keep))
    rows = pa.table({"strain": pa.array(new_ids, pa.string())})
    if new is not None:
        rows = rows.join(new, "strain", join_type="left outer")
        order = {s: i for i, s in enumerate(new_ids)}
        idx = np.argsort([order[s] for s in rows["strain"].to_pylist()], kind="stable")
        rows = rows.take(pa.array(idx))
    tables.append(rows)
    columns: list[str] = []
    for t in tables:
        columns += [c for c in t.column_names if c not in columns]
    out = []
    for t in tables:
        n = t.num_rows
        out.append(
            pa.table(
                {
                    c: t[c].fill_null("")
                    if c in t.column_names
                    else pa.array([""] * n, pa.string())
                    for c in columns
                }
            )
        )
    return pa.concat_tables(out)
