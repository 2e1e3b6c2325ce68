"""Genome-wide guide libraries: the best ``per_gene`` guides of every gene of a genome, or of a
list of genes, each gene designed as ``guides design --gene`` designs it.

What a library row is
---------------------
For each gene, every candidate site of the nuclease in its **target part** is found
(:mod:`.candidates`; ``within="auto"``, the default, takes the CDS of a gene that has one and
the exons of any other, e.g. a tRNA), its off-targets are searched genome-wide up to
``max_mismatches``, its record is made with the same fields and the same ranking rule as
:func:`~sandgrain.guides.design.design_guides` (:mod:`.document`), and the first ``per_gene``
records by rank are kept. A library row is that record with the gene it was designed for in
front: ``target`` (symbol, else ID), ``target_id`` and ``within``; its ``rank`` is the guide's
rank among its gene's candidates (the record's own ``gene`` is the gene whose CDS the cut falls
in, as in ``guides design``). So the rows of a gene equal the first ``per_gene`` guides of
``guides design --gene GENE --within PART`` (the tests hold them together).

How the work is cut
-------------------
Genes go in **batches** (:func:`plan_library`): consecutive genes, at most ``batch_genes`` of
them and about ``batch_bp`` target bases, decided from the gene table alone, so the same request
always cuts the same batches. A batch is one fan-out task (:func:`design_batch`) that scans its
genes' candidates and searches their off-targets in a few large batched searches (far faster
than one search per gene): at most :data:`SEARCH_CHUNK` guides each, and fewer where the guides
met so far have many off-target sites, so that a search holds about :data:`CHUNK_SITES` sites.
A worker's memory is bounded by one such search and the records of one batch, never by the
genome or by a gene.
Batches run on the executor side by side, so every core works whatever the number of index
partitions. The ranking needs, of every candidate, its off-target summary and its
``efficiency`` (Rule Set 3); the fields only shown — the other efficiency scores,
self-complementarity, restriction sites, cloning oligos — are computed for the guides kept
alone (:func:`ranking_records`, :func:`complete_records`).

Resuming
--------
Each finished batch is written, atomically, as one part file in a work directory
(``part-00012.json``) by its task as soon as it is done (by the caller, a window of batches at a
time, for executors whose workers do not see this machine's files). Each part carries a key: the
SHA-256 of everything that shapes its rows (the genome and site index versions, the nuclease,
every option, the batch's genes, the software version).
A run skips the batches whose part exists with the right key, so a run stopped by a crash, a
kill or Ctrl-C is resumed by running it again: only unfinished batches are computed. Parts made
with other options are recomputed, never mixed in. The output is assembled from the parts in
gene order and written atomically (:func:`write_library`).

Genes asked for by name
-----------------------
A gene list names genes by symbol, alias or ID (:meth:`~sandgrain.genome.annotation.genes.
GeneTable.find`). Unknown and ambiguous names are not fatal: they are reported (the CLI prints
them on stderr) and listed in the output's provenance; a list that names no gene of the genome
is an :class:`~sandgrain.errors.InputError`. Genes whose target part is missing (``within="cds"``
for a tRNA) or over ``max_target_bp`` are skipped and listed with the reason.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TextIO

from .. import __version__
from ..errors import InputError, NotFoundError
from ..fanout import Executor, Task, open_executor, run_plan
from ..fanout.executors import is_remote
from ..genome.store import Genome
from ..provenance import provenance
from .batch import Cancel, open_guide_index, run_search
from .candidates import (
    CONTEXT_FLANK_3,
    CONTEXT_FLANK_5,
    MAX_TARGET_BP,
    WITHIN,
    Candidate,
    find_candidates_in_regions,
    gene_regions,
)
from .context import ContextReader
from .document import assign_ranks, guide_flags, inputs, nuclease_parameters, ranking, record
from .efficiency import EFFICIENCY_MODEL, efficiency_fields
from .features import (
    CHOPCHOP_BACKBONE,
    feature_flags,
)
from .fields import feature_fields, guide_fields
from .formats import check_output_path, to_tsv
from .hits import Hits
from .nucleases import Nuclease, is_spcas9_like
from .request import DesignRequest, check_tracr, resolve_nuclease
from .scores.ruleset3 import rs3_scores
from .search import check_max_mismatches
from .targets import Target, region_dict

__all__ = [
    "DEFAULT_BATCH_BP",
    "DEFAULT_BATCH_GENES",
    "GENE_FIELDS",
    "CHUNK_SITES",
    "SEARCH_CHUNK",
    "WITHIN_CHOICES",
    "LibraryPlan",
    "LibraryRequest",
    "LibraryRun",
    "build_library",
    "complete_records",
    "ranking_records",
    "design_batch",
    "parse_gene_list",
    "plan_library",
    "write_library",
]

#: ``within`` values of a library: ``auto`` (CDS when the gene has one, else exons) or one part.
WITHIN_CHOICES = ("auto", *WITHIN)

#: Most genes in one batch (one fan-out task, one part file).
DEFAULT_BATCH_GENES = 100

#: Most genes a batch may be given (a task's arguments list them, and stay small).
MAX_BATCH_GENES = 1000

#: About how many target bases one batch holds (a batch closes once it reaches this).
DEFAULT_BATCH_BP = 150_000

#: Most candidate guides searched at once inside a batch.
SEARCH_CHUNK = 2048

#: Off-target sites one search of a batch aims at: the next search takes as many guides as the
#: sites per guide seen so far say fit (a site costs about 64 bytes in the table and four times
#: that while it is built, so a worker stays within a few hundred MB).
CHUNK_SITES = 2_000_000

#: Guides in a batch's first search, before its guides' sites per guide are known.
FIRST_CHUNK = 256

#: The gene columns in front of each library row.
GENE_FIELDS = ("target", "target_id", "within")

#: Part files: format name and version (a part of another version is recomputed).
PART_FORMAT = "sandgrain.guide-library-part"
PART_VERSION = 1

#: Gene names listed in messages before "and N more".
_SHOWN = 10


# --------------------------------------------------------------------------------------------
# request
# --------------------------------------------------------------------------------------------


def _count(value, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{what} must be a whole number ≥ {minimum}, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class LibraryRequest:
    """A genome-wide library to design, checked on construction.

    Attributes
    ----------
    per_gene
        Guides kept per gene, best first (≥ 1).
    genes
        Gene names (symbols, aliases or IDs), in the order wanted; ``None`` designs every gene
        of the genome, in genome order. Repeated names are kept once.
    within
        ``auto`` (default: the CDS of a gene that has one, its exons otherwise), ``cds``,
        ``exons`` or ``gene``.
    nuclease, pam, guide_length, pam_side, offtarget_pams
        The nuclease, as for :class:`~sandgrain.guides.request.DesignRequest`; once checked,
        ``nuclease`` holds the resolved :class:`~sandgrain.guides.nucleases.Nuclease`.
    max_mismatches
        Off-targets with up to this many mismatches (0–5) are searched.
    max_target_bp
        Largest target part of one gene (``None``: the design limit; 0: no limit); a gene over
        it is skipped and reported.
    list_offtargets, max_offtargets_listed
        Whether the kept guides list their off-targets (JSON), and at most how many each.
    tracr
        The tracrRNA for Rule Set 3 (:data:`~sandgrain.guides.request.TRACRS`).
    batch_genes, batch_bp
        How genes are cut into batches (see the module doc).
    """

    per_gene: int = 4
    genes: Sequence[str] | None = None
    within: str = "auto"
    nuclease: str | Nuclease | None = None
    pam: str | None = None
    guide_length: int | None = None
    pam_side: str | int | None = None
    offtarget_pams: str | Sequence[str] | None = None
    max_mismatches: int = 4
    max_target_bp: int | None = MAX_TARGET_BP
    list_offtargets: bool = False
    max_offtargets_listed: int | None = None
    tracr: str = "Hsu2013"
    batch_genes: int = DEFAULT_BATCH_GENES
    batch_bp: int = DEFAULT_BATCH_BP

    def __post_init__(self):
        per_gene = _count(self.per_gene, "the number of guides per gene (--per-gene)", 1)
        within = str(self.within).strip().lower()
        if within not in WITHIN_CHOICES:
            raise InputError(
                f"--within must be one of {', '.join(WITHIN_CHOICES)}, not {self.within!r}"
            )
        genes = self.genes
        if genes is not None:
            if isinstance(genes, str):
                raise InputError("give the genes as a list of names, not one string")
            genes = tuple(dict.fromkeys(str(g).strip() for g in genes if str(g).strip()))
            if not genes:
                raise InputError("the gene list is empty: give at least one gene name")
        nuclease = resolve_nuclease(
            self.nuclease,
            pam=self.pam,
            guide_length=self.guide_length,
            pam_side=self.pam_side,
            offtarget_pams=self.offtarget_pams,
        )
        max_bp = MAX_TARGET_BP if self.max_target_bp is None else self.max_target_bp
        listed = self.max_offtargets_listed
        values = {
            "per_gene": per_gene,
            "within": within,
            "genes": genes,
            "nuclease": nuclease,
            "pam": None,
            "guide_length": None,
            "pam_side": None,
            "offtarget_pams": None,
            "max_mismatches": check_max_mismatches(self.max_mismatches),
            "max_target_bp": _count(max_bp, "the largest target (--max-target-bp)", 0),
            "list_offtargets": bool(self.list_offtargets),
            "max_offtargets_listed": None
            if listed is None
            else _count(listed, "the off-target listing limit", 0),
            "tracr": check_tracr(self.tracr),
            "batch_genes": _count(self.batch_genes, "the genes per batch (--batch-genes)", 1),
            "batch_bp": _count(self.batch_bp, "the bases per batch (--batch-bp)", 1),
        }
        if values["batch_genes"] > MAX_BATCH_GENES:
            raise InputError(
                f"at most {MAX_BATCH_GENES:,} genes go in one batch (--batch-genes), "
                f"not {values['batch_genes']:,}"
            )
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def options(self) -> dict:
        """The options that shape every row (JSON-able; no gene names): for keys, provenance
        and the tasks' arguments."""
        return {
            "per_gene": self.per_gene,
            "within": self.within,
            "nuclease": _nuclease_args(self.nuclease),
            "max_mismatches": self.max_mismatches,
            "max_target_bp": self.max_target_bp,
            "list_offtargets": self.list_offtargets,
            "max_offtargets_listed": self.max_offtargets_listed,
            "tracr": self.tracr,
        }


def _nuclease_args(nuc: Nuclease) -> dict:
    """A nuclease as plain data that rebuilds it exactly (:func:`_nuclease_from`)."""
    fields = asdict(nuc)
    fields["offtarget_pams"] = [list(p) for p in nuc.offtarget_pams]
    fields["default_offtarget_pams"] = list(nuc.default_offtarget_pams)
    return fields


def _nuclease_from(fields: dict) -> Nuclease:
    fields = dict(fields)
    fields["offtarget_pams"] = tuple(tuple(p) for p in fields["offtarget_pams"])
    fields["default_offtarget_pams"] = tuple(fields["default_offtarget_pams"])
    return Nuclease(**fields)


def parse_gene_list(text: str, source: str = "the gene list") -> list[str]:
    """Gene names from a list: one a line (its first word: a tab-separated table's first column
    will do); blank lines and lines starting with ``#`` skipped. An empty list, or one that is
    not text, is an :class:`~sandgrain.errors.InputError` naming ``source``."""
    if "\x00" in text:
        raise InputError(f"{source} is not a text file of gene names")
    names = []
    for line in text.splitlines():
        word = line.strip().split(maxsplit=1)[0] if line.strip() else ""
        if word and not word.startswith("#"):
            names.append(word)
    if not names:
        raise InputError(f"{source} names no gene: give one gene symbol or ID per line")
    return names


# --------------------------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------------------------


@dataclass
class LibraryPlan:
    """What a library run will do: the genes in output order (rows of the genome's gene table)
    with their target part, cut into batches, and what was left out.

    ``unknown`` are names of no gene, ``ambiguous`` names of several (name → their labels),
    ``duplicates`` names of a gene already named, ``skipped`` genes not designed (``{"gene",
    "gene_id", "reason"}``).
    """

    genome: Genome
    request: LibraryRequest
    index: object
    rows: list[int]
    within: list[str]
    batches: list[list[int]]
    unknown: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    @property
    def genes(self) -> int:
        return len(self.rows)

    def inputs(self) -> list[dict]:
        """Provenance inputs: the genome and the site index searched."""
        return inputs(self.genome, self.index)

    def batch_keys(self) -> list[str]:
        """The key of each batch's part: the SHA-256 of all that shapes its rows (the genome
        and index versions, the options, the batch's genes, the software version)."""
        genes = self.genome.genes.genes
        common = {
            "format": [PART_FORMAT, PART_VERSION, __version__],
            "inputs": [(i["source"], i["version"], i["sha256"]) for i in self.inputs()],
            "options": self.request.options(),
        }
        keys = []
        for b in range(len(self.batches)):
            batch = [(genes[r].gene_id, self.within[j]) for j, r in self.batch_rows(b)]
            text = json.dumps({**common, "genes": batch}, sort_keys=True, separators=(",", ":"))
            keys.append(hashlib.sha256(text.encode()).hexdigest())
        return keys

    def batch_rows(self, b: int) -> list[tuple[int, int]]:
        """``(position in the plan, gene table row)`` of batch ``b``'s genes."""
        return [(j, self.rows[j]) for j in self.batches[b]]


def _target_parts(gene, within: str) -> str:
    if within != "auto":
        return within
    return "cds" if gene.cds else "exons"


def _choose_genes(genome: Genome, request: LibraryRequest, plan: LibraryPlan) -> list[int]:
    """Gene table rows in output order; fills the plan's unknown/ambiguous/duplicate names."""
    table = genome.genes
    if request.genes is None:
        return list(range(len(table)))
    row_of = {id(g): r for r, g in enumerate(table.genes)}
    chosen: dict[int, None] = {}
    for name in request.genes:
        found = table.find(name)
        if not found:
            plan.unknown.append(name)
        elif len(found) > 1:
            plan.ambiguous[name] = [g.label for g in found]
        elif row_of[id(found[0])] in chosen:
            plan.duplicates.append(name)
        else:
            chosen[row_of[id(found[0])]] = None
    if not chosen:
        shown = ", ".join(request.genes[:_SHOWN])
        more = f" and {len(request.genes) - _SHOWN} more" if len(request.genes) > _SHOWN else ""
        raise InputError(
            f"none of the {len(request.genes)} gene names given ({shown}{more}) is a gene of "
            f"genome {genome.name}"
        )
    return list(chosen)


def plan_library(genome: Genome, request: LibraryRequest) -> LibraryPlan:
    """Check a library request against ``genome`` and cut it into batches, before any search:
    the genome has genes and a site index for the nuclease
    (:class:`~sandgrain.guides.errors.MissingIndexError` otherwise), the named genes are
    resolved, each gene's target part is chosen and its size checked."""
    if not genome.has_genes:
        raise NotFoundError(
            f"genome {genome.name} has no gene annotation; add one with "
            f"`sandgrain genome add {genome.name} --fasta … --annotation FILE --replace`"
        )
    _family, index = open_guide_index(genome, request.nuclease)
    plan = LibraryPlan(genome, request, index, [], [], [])
    genes = genome.genes.genes
    batch: list[int] = []
    bases = 0
    for row in _choose_genes(genome, request, plan):
        gene = genes[row]
        within = _target_parts(gene, request.within)
        reason = None
        if within == "cds" and not gene.cds:
            reason = "without a CDS"
        else:
            size = sum(r.length for r in _regions(gene, within))
            if request.max_target_bp and size > request.max_target_bp:
                reason = f"over {request.max_target_bp:,} bp (--max-target-bp)"
        if reason is not None:
            plan.skipped.append({"gene": _label(gene), "gene_id": gene.gene_id, "reason": reason})
            continue
        plan.rows.append(row)
        plan.within.append(within)
        batch.append(len(plan.rows) - 1)
        bases += size
        if len(batch) >= request.batch_genes or bases >= request.batch_bp:
            plan.batches.append(batch)
            batch, bases = [], 0
    if batch:
        plan.batches.append(batch)
    return plan


def _label(gene) -> str:
    return gene.symbol or gene.gene_id


# --------------------------------------------------------------------------------------------
# one batch (a fan-out task)
# --------------------------------------------------------------------------------------------


def _regions(gene, within: str) -> list:
    """The gene's target regions; a gene without a strand in its annotation (a list of gene
    coordinates) gets ``+`` regions: candidates are found on both strands all the same."""
    if gene.strand not in ("+", "-"):
        gene = replace(gene, strand="+")
    return gene_regions(gene, within)


def gene_target(gene, within: str) -> Target:
    """A gene's target part as :func:`~sandgrain.guides.targets.locate_target` describes it
    (size limits are checked by the plan)."""
    regions = _regions(gene, within)
    description = {
        "type": "gene",
        "name": _label(gene),
        "gene_id": gene.gene_id,
        "location": gene.location,
        "strand": gene.strand,
        "within": within,
        "length": sum(r.length for r in regions),
        "regions": [region_dict(r.chrom, r.start0, r.end0, r.strand) for r in regions],
    }
    return Target(description, regions=regions, gene=gene)


class _Clock:
    """Seconds spent by step: wall clock and CPU time of this process (all its threads), so a
    benchmark on a busy machine can tell work from waiting."""

    def __init__(self, steps: Sequence[str]):
        self.wall = dict.fromkeys(steps, 0.0)
        self.cpu = dict.fromkeys(steps, 0.0)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - wall
            self.cpu[name] += time.process_time() - cpu

    def exclude(self, outer: str, inner: str) -> None:
        """Take the time of step ``inner``, measured inside ``outer``, out of ``outer``."""
        self.wall[outer] -= self.wall[inner]
        self.cpu[outer] -= self.cpu[inner]


def ranking_records(
    genome: Genome,
    candidates: Sequence[Candidate],
    targets: Sequence[Target],
    hits: Hits,
    request: DesignRequest,
    *,
    clock: _Clock | None = None,
) -> list[dict]:
    """Guide records (unranked, in candidate order) of genome candidates, as
    :func:`~sandgrain.guides.design.design_guides` makes them for a gene or region target, with
    every field the ranking reads but without the ones it does not (:func:`complete_records`
    adds those to the records kept).

    ``candidates[i]`` is ``hits.search.guides[i]`` and lies in ``targets[i]``, so one batched
    search, and one call of each batched score, serves the candidates of many genes. The
    options of ``request`` apply (mismatches, listing, tracrRNA); its own target is not used.
    Of the efficiency scores only ``efficiency`` itself is computed (:func:`_ranking_efficiency`):
    the others cost as much again and only the kept guides need them. ``clock``, when given,
    counts the time that score took as its ``efficiency`` step.
    """
    nuc = request.nuclease
    reader = ContextReader(genome, list(candidates))
    with clock.step("efficiency") if clock is not None else contextlib.nullcontext():
        efficiency = _ranking_efficiency(candidates, reader, nuc, request.tracr)
    genes = genome.genes
    scaffold = CHOPCHOP_BACKBONE if is_spcas9_like(nuc) else None
    out = []
    for i, c in enumerate(candidates):
        own = None
        if request.exclude_on_target:
            own = hits.site_row(i, c.chrom, c.site_start0, c.strand)
        fields = guide_fields(c, i, efficiency[i], genes, targets[i].gene, hits, request, own)
        fields["flags"] = guide_flags(fields, feature_flags(c.protospacer, scaffold))
        out.append(record(fields))
    return out


def complete_records(
    genome: Genome, records: list[dict], candidates: list[Candidate], request: DesignRequest
) -> None:
    """Add to records of :func:`ranking_records` (``records[j]`` of ``candidates[j]``) the
    fields the ranking does not read, as :func:`~sandgrain.guides.design.design_guides` makes
    them: every efficiency score, self-complementarity, restriction sites at the cut and the
    cloning oligos. (Primers and variants are not designed for a library: ``None``.)"""
    if not records:
        return
    nuc = request.nuclease
    scored = is_spcas9_like(nuc)
    reader = ContextReader(genome, candidates)
    efficiency = efficiency_fields(candidates, reader, nuc, tracr=request.tracr)
    for rec, c, values in zip(records, candidates, efficiency, strict=True):
        if rec["efficiency"] != values["efficiency"]:  # the ranking used this very score
            raise RuntimeError("the library's ranking efficiency differs from the design's")
        rec.update(values)
        rec.update(feature_fields(c, reader, scored))


def _ranking_efficiency(
    candidates: Sequence[Candidate], reader: ContextReader, nuc: Nuclease, tracr: str
) -> list[dict]:
    """``{"efficiency": …}`` of each candidate as :func:`~sandgrain.guides.efficiency.
    efficiency_fields` gives it (Rule Set 3 on the 30-mer for SpCas9-like nucleases, else
    ``None``), without the other scores. Falls back to every score when the ranking's model is
    not Rule Set 3."""
    if EFFICIENCY_MODEL != "rs3":
        return efficiency_fields(candidates, reader, nuc, tracr=tracr)
    if not is_spcas9_like(nuc):
        return [{"efficiency": None} for _ in candidates]
    c30 = [reader.flanked(c, CONTEXT_FLANK_5, CONTEXT_FLANK_3) or c.context30 for c in candidates]
    scores = rs3_scores(c30, tracr=tracr)
    return [{"efficiency": None if math.isnan(v) else float(v)} for v in scores.tolist()]


def _listing(hits: Hits, i: int, c: Candidate, request: DesignRequest) -> list[dict]:
    """The off-target listing of candidate ``i`` (its record was made without one)."""
    own = hits.site_row(i, c.chrom, c.site_start0, c.strand)
    k = request.max_mismatches
    return hits.summary(i, k, request.max_offtargets_listed, True, own)["offtargets"]


@functools.lru_cache(maxsize=4)
def _open_genome(reference: str) -> Genome:
    """The genome of a task, opened once per worker process (with its gene table)."""
    return Genome.from_reference(json.loads(reference))


def design_batch(genome: dict, options: dict, rows: list[int], within: list[str]) -> dict:
    """The kept guides of one batch of genes (the work of one fan-out task).

    ``genome`` is :meth:`Genome.reference`, ``options`` :meth:`LibraryRequest.options`, ``rows``
    the genes' rows in the genome's gene table and ``within`` their target parts. Returns
    ``{"genes", "stats"}``: under ``genes`` one entry per gene, in order, ``{"row", "target",
    "target_id", "within", "candidates", "guides"}`` with the gene's best ``per_gene`` records
    (``rank`` within the gene); under ``stats`` the candidates, off-target sites, and the
    seconds (wall clock; ``cpu_seconds``: CPU time of the worker) spent by step (``scan``,
    ``search``, ``efficiency``, ``records``, ``complete``).

    The candidates of all the genes are searched in turn in chunks of at most
    :data:`SEARCH_CHUNK` guides and about :data:`CHUNK_SITES` sites (:func:`_chunk_limit`); each
    chunk's hits are summed up into records and let go before the next. The records of a gene
    are then ranked, its best kept and completed (:func:`complete_records`), and when asked the
    kept guides' off-targets are listed from one more search of those guides alone.
    """
    g = _open_genome(json.dumps(genome, sort_keys=True))
    nuc = _nuclease_from(options["nuclease"])
    table = g.genes.genes
    family, index = open_guide_index(g, nuc)
    request = DesignRequest(
        gene=table[rows[0]].gene_id,  # options only: each candidate's target is its gene's
        nuclease=nuc,
        max_mismatches=options["max_mismatches"],
        max_target_bp=0,  # checked by the plan
        max_offtargets_listed=options["max_offtargets_listed"],
        list_offtargets=False,  # listed at the end for the kept guides alone
        tracr=options["tracr"],
    )
    clock = _Clock(("scan", "search", "efficiency", "records", "complete"))
    genes = []
    with clock.step("scan"):
        for row, part in zip(rows, within, strict=True):
            target = gene_target(table[row], part)
            cands = find_candidates_in_regions(g, target.regions, nuc, max_bp=0)
            genes.append((row, target, cands))

    def search(cands: list[Candidate]) -> Hits:
        found = run_search(
            g,
            [c.protospacer for c in cands],
            [request.max_mismatches] * len(cands),
            nuc,
            family,
            index,
            executor="serial",  # the batch is the unit of parallel work
            retries=0,
            progress=None,
            cancel=None,
        )
        return Hits(found)

    flat = [(n, c) for n, (_, _, cands) in enumerate(genes) for c in cands]
    records: list[list[dict]] = [[] for _ in genes]
    sites = start = 0
    while start < len(flat):
        piece = flat[start : start + _chunk_limit(sites, start)]
        cands = [c for _, c in piece]
        with clock.step("search"):
            hits = search(cands)
        sites += len(hits.table) if hits.table is not None else 0
        with clock.step("records"):
            targets = [genes[n][1] for n, _ in piece]
            made = ranking_records(g, cands, targets, hits, request, clock=clock)
            for (n, _), rec in zip(piece, made, strict=True):
                records[n].append(rec)
        start += len(piece)
        del hits, made

    out, kept_records, kept_candidates = [], [], []
    with clock.step("records"):  # ranking each gene's records
        for (row, target, cands), mine in zip(genes, records, strict=True):
            position = {id(r): j for j, r in enumerate(mine)}
            kept = assign_ranks(mine)[: options["per_gene"]]
            kept_records += kept
            kept_candidates += [cands[position[id(rec)]] for rec in kept]
            gene = target.gene
            out.append(
                {
                    "row": row,
                    "target": _label(gene),
                    "target_id": gene.gene_id,
                    "within": target.description["within"],
                    "candidates": len(cands),
                    "guides": kept,
                }
            )
    clock.exclude("records", "efficiency")  # timed inside the records' steps
    with clock.step("complete"):
        complete_records(g, kept_records, kept_candidates, request)
        if options["list_offtargets"] and kept_candidates:
            hits = search(kept_candidates)
            for j, (rec, c) in enumerate(zip(kept_records, kept_candidates, strict=True)):
                rec["offtargets"] = _listing(hits, j, c, request)
    stats = {"candidates": len(flat), "sites": sites, "seconds": clock.wall}
    return {"genes": out, "stats": {**stats, "cpu_seconds": clock.cpu}}


def _chunk_limit(sites: int, searched: int) -> int:
    """Guides for the next search of a batch, from the sites per guide of those searched."""
    if not searched:
        return FIRST_CHUNK
    per_guide = max(sites / searched, 1e-9)
    return max(1, min(SEARCH_CHUNK, int(CHUNK_SITES / per_guide)))


# --------------------------------------------------------------------------------------------
# the run: batches → parts
# --------------------------------------------------------------------------------------------

#: ``progress(batches_done, batches, genes_done, genes)`` over the batches this run computes.
LibraryProgress = Callable[[int, int, int, int], None]

_WITHIN_CODES = {"cds": "c", "exons": "e", "gene": "g"}
_WITHIN_NAMES = {v: k for k, v in _WITHIN_CODES.items()}


@dataclass
class LibraryRun:
    """A finished library run: its plan, the work directory holding one part per batch, how
    many batches this run computed and how many it found finished, and what the parts hold."""

    plan: LibraryPlan
    work_dir: Path
    computed: int
    resumed: int
    guides: int = 0
    short: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def part(self, b: int) -> Path:
        return _part_path(self.work_dir, b)

    def report(self) -> dict:
        """Which genes were designed, and which were not and why (for the provenance)."""
        plan = self.plan
        return {
            "asked": "all" if plan.request.genes is None else len(plan.request.genes),
            "designed": plan.genes,
            "with_fewer_guides": self.short,
            "unknown": plan.unknown,
            "ambiguous": plan.ambiguous,
            "duplicates": plan.duplicates,
            "skipped": plan.skipped,
        }

    def document_head(self) -> dict:
        """The JSON document without its ``guides``."""
        plan = self.plan
        req = plan.request
        nuc = req.nuclease
        parameters = {
            "per_gene": req.per_gene,
            "within": req.within,
            **nuclease_parameters(nuc),
            "max_mismatches": req.max_mismatches,
            "max_target_bp": req.max_target_bp,
            "max_offtargets_listed": req.max_offtargets_listed if req.list_offtargets else 0,
            "on_target_excluded": True,
            "on_target_rule": "the candidate's own site",
            "batches": len(plan.batches),
            "batch_genes": req.batch_genes,
            "batch_bp": req.batch_bp,
            "tracr": req.tracr if is_spcas9_like(nuc) else None,
            "resumed_batches": self.resumed,
            "genes": self.report(),
        }
        return {
            "provenance": provenance("guides library", parameters, plan.inputs()),
            "genome": plan.genome.name,
            "nuclease": nuc.to_dict(),
            "max_mismatches": req.max_mismatches,
            "ranking": ranking(EFFICIENCY_MODEL if is_spcas9_like(nuc) else None),
            "per_gene": req.per_gene,
            "genes": plan.genes,
            "candidates": self.stats.get("candidates"),
            "guide_count": self.guides,
        }


def _part_path(work_dir: Path, b: int) -> Path:
    return work_dir / f"part-{b:05d}.json"


def _part_key(path: Path) -> str | None:
    """The key of a finished part, or None when there is none (or it is not one of ours)."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(head, dict) or head.get("format") != PART_FORMAT:
        return None
    if head.get("version") != PART_VERSION:
        return None
    return head.get("key")


def _write_atomic(path: Path, write: Callable[[TextIO], None]) -> None:
    """Write a file through ``write(fh)`` into a temporary file beside it, then rename it into
    place: a reader sees the whole file or none."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_part(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _task(plan: LibraryPlan, b: int, part: dict | None) -> Task:
    pairs = plan.batch_rows(b)
    return Task(
        "sandgrain.guides.library:design_batch_task",
        {
            "genome": plan.genome.reference(),
            "options": plan.request.options(),
            "rows": [row for _, row in pairs],
            "within": "".join(_WITHIN_CODES[plan.within[j]] for j, _ in pairs),
            "part": part,
        },
        key=f"library batch {b + 1} of {len(plan.batches)}",
        weight=len(pairs),
    )


def design_batch_task(
    genome: dict, options: dict, rows: list[int], within: str, part: dict | None = None
) -> dict:
    """Fan-out task: :func:`design_batch`, the target parts given as one letter a gene (``c``,
    ``e``, ``g``) to keep the arguments small. With ``part`` (``{"path", "key", "batch"}``: the
    worker sees the work directory) the task writes its part itself as soon as it is done and
    returns ``{"written": True}``; else it returns the batch for the caller to write."""
    result = design_batch(genome, options, rows, [_WITHIN_NAMES[w] for w in within])
    if part is None:
        return result
    _write_part(Path(part["path"]), part["key"], part["batch"], result)
    return {"written": True}


def _write_part(path: Path, key: str, b: int, result: dict) -> None:
    head = {"format": PART_FORMAT, "version": PART_VERSION, "key": key, "batch": b}

    def write(fh) -> None:
        json.dump({**head, **result}, fh, allow_nan=False)

    _write_atomic(path, write)


def build_library(
    genome: Genome,
    request: LibraryRequest | LibraryPlan,
    work_dir: str | os.PathLike,
    *,
    executor: Executor | str = "local",
    retries: int = 2,
    progress: LibraryProgress | None = None,
    cancel: Cancel | None = None,
    window: int | None = None,
) -> LibraryRun:
    """Design a library into ``work_dir``: one part per batch, finished parts kept.

    Parameters
    ----------
    genome
        An open genome with genes and a site index for the nuclease.
    request
        A :class:`LibraryRequest`, or the :class:`LibraryPlan` made of it by
        :func:`plan_library`.
    work_dir
        Where the parts go (made if missing). A part already there with this run's key is not
        computed again: running the same request again after a crash resumes it.
    executor, retries, cancel
        The fan-out executor the batches run on (one task a batch) and its options.
    progress
        ``progress(batches_done, batches, genes_done, genes)`` over this run's batches.
    window
        Where the executor's workers see this machine's files (in process, a local pool) each
        batch task writes its part as it finishes. Elsewhere (Dask, Lithops) batches are handed
        over ``window`` at a time (default: as many as the executor keeps in flight) and their
        parts written here as each window ends, so a stop loses at most one window's work.

    Returns
    -------
    LibraryRun
        Hand it to :func:`write_library` for the output.
    """
    plan = request if isinstance(request, LibraryPlan) else plan_library(genome, request)
    folder = Path(work_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot use {folder} as the work directory: {exc.strerror}") from None
    keys = plan.batch_keys()
    todo = [b for b, key in enumerate(keys) if _part_key(_part_path(folder, b)) != key]
    run = LibraryRun(plan, folder, computed=0, resumed=len(plan.batches) - len(todo))
    if todo:
        own = isinstance(executor, str)
        ex = open_executor(executor) if own else executor
        try:
            _run_batches(plan, folder, keys, todo, ex, retries, progress, cancel, window, run)
        finally:
            if own:
                ex.close()
    run.stats = {"candidates": 0, "sites": 0, "seconds": {}, "cpu_seconds": {}}
    for b in range(len(plan.batches)):
        part = _read_part(_part_path(folder, b))
        for entry in part["genes"]:
            run.guides += len(entry["guides"])
            if len(entry["guides"]) < plan.request.per_gene:
                run.short.append(entry["target"])
        run.stats["candidates"] += part["stats"]["candidates"]
        run.stats["sites"] += part["stats"]["sites"]
        for kind in ("seconds", "cpu_seconds"):
            for step, value in part["stats"][kind].items():
                run.stats[kind][step] = run.stats[kind].get(step, 0.0) + value
    return run


def _run_batches(plan, folder, keys, todo, ex, retries, progress, cancel, window, run) -> None:
    local = not is_remote(ex)  # the workers see the work directory: tasks write their parts
    size = max(1, window or (len(todo) if local else getattr(ex, "max_in_flight", 1)))
    genes_total = sum(len(plan.batches[b]) for b in todo)
    done_batches = done_genes = 0

    def report(done: int, _total: int, done_work: int, _total_work: int) -> None:
        if progress is not None:
            progress(done_batches + done, len(todo), done_genes + done_work, genes_total)

    report(0, 0, 0, 0)
    store = plan.genome.dataset.store
    for lo in range(0, len(todo), size):
        batch_ids = todo[lo : lo + size]
        parts = [
            {"path": str(_part_path(folder, b).resolve()), "key": keys[b], "batch": b}
            if local
            else None
            for b in batch_ids
        ]
        results = run_plan(
            [_task(plan, b, part) for b, part in zip(batch_ids, parts, strict=True)],
            ex,
            retries=retries,
            progress=report,
            cancel=cancel,
            store_probe=store.probe,
        )
        for b, result in zip(batch_ids, results, strict=True):
            if not result.get("written"):
                _write_part(_part_path(folder, b), keys[b], b, result)
            run.computed += 1
            done_batches += 1
            done_genes += len(plan.batches[b])


def remove_parts(run: LibraryRun) -> None:
    """Delete the run's part files, and its work directory when that leaves it empty."""
    for b in range(len(run.plan.batches)):
        run.part(b).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        run.work_dir.rmdir()


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def _rows(run: LibraryRun) -> Iterator[dict]:
    """Every library row, in gene order, one part in memory at a time."""
    for b in range(len(run.plan.batches)):
        for entry in _read_part(run.part(b))["genes"]:
            front = {key: entry[key] for key in GENE_FIELDS}
            for guide in entry["guides"]:
                yield {**front, **guide}


def _tsv_header(k: int) -> str:
    template = {**dict.fromkeys(GENE_FIELDS), **record({})}
    return to_tsv({"max_mismatches": k, "guides": [template]}).split("\n", 1)[0] + "\n"


def _write_tsv(run: LibraryRun, fh: TextIO) -> None:
    k = run.plan.request.max_mismatches
    header = _tsv_header(k)
    fh.write(header)
    for row in _rows(run):
        text = to_tsv({"max_mismatches": k, "guides": [row]})
        head, line = text.split("\n", 1)
        if head + "\n" != header:  # every record has every field, in one order
            raise RuntimeError("library rows do not share one set of columns")
        fh.write(line)


def _write_json(run: LibraryRun, fh: TextIO) -> None:
    head = json.dumps(run.document_head(), indent=2, allow_nan=False)
    fh.write(head[:-2] + ',\n  "guides": [')  # the head's closing "\n}" reopened
    first = True
    for row in _rows(run):
        fh.write(("\n    " if first else ",\n    ") + json.dumps(row, allow_nan=False))
        first = False
    fh.write("\n  ]\n}\n" if not first else "]\n}\n")


def write_library(
    run: LibraryRun, out: str | os.PathLike | None = None, fmt: str = "tsv", stream=None
) -> None:
    """Write the library from its parts, in gene order: TSV (one row per guide: the gene
    columns :data:`GENE_FIELDS`, then the guide's, as ``guides design`` writes them) or JSON
    (the document of :meth:`LibraryRun.document_head` with every row under ``guides``). To the
    file ``out``, atomically, or to ``stream`` (default stdout) when ``out`` is None or ``-``.
    Memory holds one part at a time."""
    writers = {"tsv": _write_tsv, "json": _write_json}
    if fmt not in writers:
        raise InputError(f"--format must be one of {', '.join(writers)}, not {fmt!r}")
    write = functools.partial(writers[fmt], run)
    if out is None or os.fspath(out) == "-":
        write(stream or sys.stdout)
        return
    check_output_path(out)
    _write_atomic(Path(os.path.abspath(os.fspath(out))), write)


def default_work_dir(out: str | os.PathLike) -> Path:
    """Where a library written to ``out`` keeps its parts by default: ``OUT.parts`` beside it."""
    path = Path(os.path.abspath(os.fspath(out)))
    return path.with_name(path.name + ".parts")
