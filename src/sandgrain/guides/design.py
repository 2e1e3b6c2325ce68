"""Guide design and guide scoring: the domain functions the CLI and the web API call.

:func:`design_guides` finds every candidate site of a nuclease in a target (a gene, a region, a
raw sequence or a FASTA file), searches the whole genome for each candidate's off-targets in one
batched call, scores and annotates them, ranks the guides and returns one JSON-able document.
:func:`score_guides` does the same for guides the user gives (no target). :func:`search_guides`
is the shared search step, also behind ``sandgrain guides offtargets``.

Conventions
-----------
Coordinates
    Output positions are 1-based inclusive (``start``/``end`` of the protospacer alone, on the
    forward strand, whichever strand it reads on); ``cut`` is the 1-based position of the last
    forward-strand base before the cut. For ``sequence``/``fasta`` targets the guides'
    ``chrom``/``start``/``end`` refer to the given sequence, the off-targets' to the genome.
On-target exclusion
    Off-target counts, lists and specificities leave out the **on-target site**: for a genome
    target (gene or region) the site with 0 mismatches at the candidate's own position and
    strand. Any other 0-mismatch site (a second copy of the target) *is* an off-target. For
    ``sequence``/``fasta`` targets and for given guides (:func:`score_guides`) **no site is
    excluded**: a guide that occurs in the genome counts its own site(s) under 0 mismatches.
Scores (see :mod:`sandgrain.guides.scores` for each paper)
    MIT (Hsu et al. 2013) and CFD (Doench et al. 2016) per off-target and the guide aggregates
    ``mit_specificity = 100·100/(100 + Σ MIT)`` and ``cfd_specificity = 100·100/(100 + Σ CFD)``
    are given for *SpCas9-like* nucleases only: 20-nt protospacers with an ``NGG`` PAM on the 3'
    side (off-target sites next to other PAMs such as NAG are scored too: CFD weighs the PAM).
    Rule Set 1 (Doench et al. 2014) needs the 30-mer context as well; it is ``None`` near a
    sequence end, for given guides, and for other nucleases. Scores not defined are ``None``.
``mismatch_positions``
    1-based, counted from the protospacer's PAM-distal end (for a 3' PAM the 5' end, for a 5'
    PAM such as Cas12a's the 3' end), as in the score papers. ``N`` in the genome is a mismatch.

Ranking
-------
``score`` (0–100, higher is better) is the guide's specificity: ``cfd_specificity`` for
SpCas9-like nucleases; for others, where no published per-site score applies, a *count
specificity* ``100·100/(100 + Σ 100/4^m)`` over the off-targets, ``m`` each one's mismatches (a
perfect off-target weighs 100 like MIT's, each further mismatch divides by four). Guides are
ranked (``rank`` 1 = best) by, in order:

1. unflagged first: guides whose protospacer holds ``TTTT`` (ends U6 transcription) or that have
   an off-target with 0 mismatches go last;
2. ``score`` rounded to a whole number, higher first (differences below one point are noise
   next to efficiency);
3. ``ruleset1``, higher first (a guide without it after those with it);
4. ``score`` unrounded, then ``mit_specificity``, higher first;
5. genome order (input order for given guides).

Every list is exact: ``offtarget_counts`` (by number of mismatches, 0…k), ``offtargets_total``
and the counts by location class are never capped. Only the *listing* of off-targets may be cut,
by ``max_offtargets_listed``; then ``offtargets_listed_truncated`` is true. Listed off-targets
come most dangerous first: fewest mismatches, then highest CFD (when scored), then genome order.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..genome.fasta import open_maybe_gzip
from ..genome.store import SEQUENCE, Genome
from ..provenance import provenance
from ..storage import Dataset
from .annotate import CLASSES, SiteAnnotator
from .candidates import (
    MAX_TARGET_BP,
    Candidate,
    find_candidates,
    find_candidates_in_regions,
    find_candidates_in_sequence,
    gene_regions,
)
from .kernels import encode
from .nucleases import NUCLEASES, Nuclease, custom_nuclease, get_nuclease
from .scores import cfd_site_scores, cfd_specificity, mit_site_scores, mit_specificity, ruleset1
from .search import MAX_MISMATCHES, OffTargetSite, check_guides, search_offtargets
from .siteindex import SiteFamily, open_index

__all__ = [
    "GUIDE_FIELDS",
    "GuideSearch",
    "design_guides",
    "is_spcas9_like",
    "resolve_nuclease",
    "score_guides",
    "score_search",
    "search_guides",
]

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]

#: Default protospacer length of a custom nuclease given by its PAM alone.
DEFAULT_GUIDE_LENGTH = 20


# --------------------------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------------------------


def resolve_nuclease(
    nuclease: str | Nuclease | None = None,
    *,
    pam: str | None = None,
    guide_length: int | None = None,
    pam_side: str | int | None = None,
    offtarget_pams: str | Sequence[str] | None = None,
) -> Nuclease:
    """The nuclease a user asked for: by name (default SpCas9) or by PAM.

    ``pam`` (with ``guide_length``, default 20, and ``pam_side``, default 3) describes a custom
    nuclease; when it equals a shipped one's (``NGG``, 20, 3 is SpCas9) that one is used, so its
    scores and off-target PAM weights apply. ``offtarget_pams`` (a list or ``"NAG,NGA"``) sets the
    extra PAMs searched for off-targets; ``None`` keeps the nuclease's defaults, ``""`` none.
    """
    if pam is None or not str(pam).strip():
        if guide_length is not None or pam_side is not None:
            raise InputError(
                "a guide length or PAM side describes a custom nuclease: give its PAM too (--pam)"
            )
        chosen = get_nuclease(nuclease if nuclease is not None else "SpCas9")
    else:
        if nuclease is not None:
            raise InputError("give either a nuclease name or a custom PAM (--pam), not both")
        length = DEFAULT_GUIDE_LENGTH if guide_length is None else guide_length
        chosen = custom_nuclease(pam, length, "3" if pam_side is None else pam_side)
        for shipped in NUCLEASES.values():
            shape = (shipped.pam, shipped.guide_length, shipped.pam_side)
            if shape == (chosen.pam, chosen.guide_length, chosen.pam_side):
                chosen = shipped
                break
    if offtarget_pams is not None:
        chosen = chosen.with_offtarget_pams(offtarget_pams)
    return chosen


def is_spcas9_like(nuclease: Nuclease) -> bool:
    """Whether MIT, CFD and Rule Set 1 apply: 20-nt protospacers with an ``NGG`` 3' PAM."""
    return nuclease.pam == "NGG" and nuclease.pam_side == "3" and nuclease.guide_length == 20


def _check_max_mismatches(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= MAX_MISMATCHES:
        raise InputError(f"maximum mismatches must be a whole number 0–{MAX_MISMATCHES}, not {k!r}")
    return int(k)


def _check_listed(limit) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0:
        raise InputError(f"the off-target listing limit must be a whole number ≥ 0, not {limit!r}")
    return int(limit)


def _index_hint(nuclease: Nuclease) -> str | None:
    """The shipped name to put in the index command, when the nuclease is one."""
    return nuclease.name if nuclease.name in NUCLEASES else None


# --------------------------------------------------------------------------------------------
# the search step shared by design, score and offtargets
# --------------------------------------------------------------------------------------------


@dataclass
class GuideSearch:
    """Guides and their genome-wide sites (every site, nothing excluded yet).

    ``results[i]`` holds the sites of ``guides[i]`` with at most ``limits[i]`` mismatches, in
    genome order. (Repeated guides are searched once, so a site's ``guide`` field numbers the
    distinct guides; use the position in ``results`` instead.)
    """

    genome: Genome
    nuclease: Nuclease
    family: SiteFamily
    index: Dataset
    guides: list[str]
    limits: list[int]
    results: list[list[OffTargetSite]] = field(default_factory=list)

    @property
    def max_mismatches(self) -> int:
        return max(self.limits, default=0)


def _open_index(genome: Genome, nuclease: Nuclease) -> tuple[SiteFamily, Dataset]:
    family = SiteFamily.of(nuclease)
    return family, open_index(genome, family, _index_hint(nuclease))


def _search(
    genome: Genome,
    guides: list[str],
    limits: list[int],
    nuclease: Nuclease,
    family: SiteFamily,
    *,
    executor,
    retries: int,
    progress: Progress | None,
    cancel: Cancel | None,
) -> list[list[OffTargetSite]]:
    """One batched search for all guides (each distinct protospacer once), then per-guide
    limits applied."""
    if not guides:
        return []
    unique = list(dict.fromkeys(guides))
    found = search_offtargets(
        genome,
        unique,
        family,
        max(limits),
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
        nuclease=_index_hint(nuclease),
    )
    by_guide = dict(zip(unique, found, strict=True))
    return [
        [s for s in by_guide[g] if s.mismatches <= k] for g, k in zip(guides, limits, strict=True)
    ]


def search_guides(
    genome: Genome,
    guides: Sequence[str],
    *,
    nuclease: str | Nuclease = "SpCas9",
    offtarget_pams: str | Sequence[str] | None = None,
    max_mismatches: int = 4,
    guide_mismatches: Sequence[int | None] | None = None,
    executor="local",
    retries: int = 2,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> GuideSearch:
    """Every site within the mismatch limit of each given guide, the guide's own included.

    ``guides`` are protospacers without PAM (A, C, G, T; case ignored). ``guide_mismatches``
    optionally gives each guide its own limit (``None`` entries use ``max_mismatches``), as the
    mismatch column of a Cas-OFFinder input does. One search covers all guides.
    """
    nuc = resolve_nuclease(nuclease, offtarget_pams=offtarget_pams)
    clean = check_guides(list(guides), nuc.guide_length)
    k = _check_max_mismatches(max_mismatches)
    if guide_mismatches is None:
        limits = [k] * len(clean)
    else:
        if len(guide_mismatches) != len(clean):
            raise InputError(
                f"{len(guide_mismatches)} mismatch limits given for {len(clean)} guides"
            )
        limits = [k if m is None else _check_max_mismatches(m) for m in guide_mismatches]
    family, index = _open_index(genome, nuc)
    results = _search(
        genome,
        clean,
        limits,
        nuc,
        family,
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
    )
    return GuideSearch(genome, nuc, family, index, clean, limits, results)


# --------------------------------------------------------------------------------------------
# per-guide summaries: counts, scores, annotation, listing
# --------------------------------------------------------------------------------------------


def _codes(seqs: list[str], width: int) -> np.ndarray:
    return encode("".join(seqs)).reshape(len(seqs), width)


def _mismatch_positions(guide: str, site: str, pam_side: str) -> list[int]:
    L = len(guide)
    if pam_side == "3":
        return [i + 1 for i in range(L) if guide[i] != site[i]]
    return sorted(L - i for i in range(L) if guide[i] != site[i])


def _count_specificity(counts: Sequence[int]) -> float:
    return 100.0 * 100.0 / (100.0 + sum(n * 100.0 / 4**m for m, n in enumerate(counts)))


def _summarise(
    guide: str,
    sites: list[OffTargetSite],
    nuclease: Nuclease,
    k: int,
    annotate: SiteAnnotator,
    max_listed: int | None,
    on_target: tuple[str, int, str] | None,
) -> dict:
    """The off-target fields of one guide's record (see the module doc)."""
    if on_target is not None:
        sites = [s for s in sites if s.mismatches or (s.chrom, s.pos0, s.strand) != on_target]
    n = len(sites)
    counts = [0] * (k + 1)
    for s in sites:
        counts[s.mismatches] += 1
    P, side = nuclease.pam_length, nuclease.pam_side
    spans = [s.protospacer_span(P, side) for s in sites]
    notes = [annotate(s.chrom, a, b) for s, (a, b) in zip(sites, spans, strict=True)]
    by_class = dict.fromkeys(CLASSES, 0)
    for note in notes:
        by_class[note["class"]] += 1

    scored = is_spcas9_like(nuclease)
    mit = cfd = None
    if scored and n:
        gcodes = encode(guide)
        scodes = _codes([s.protospacer for s in sites], nuclease.guide_length)
        mit = mit_site_scores(gcodes, scodes)
        cfd = cfd_site_scores(gcodes, scodes, _codes([s.pam[-2:] for s in sites], 2))
    if scored:
        mit_spec = mit_specificity(mit if mit is not None else [])
        cfd_spec = cfd_specificity(cfd if cfd is not None else [])
        score = cfd_spec
    else:
        mit_spec = cfd_spec = None
        score = _count_specificity(counts)

    if cfd is not None:
        order = sorted(range(n), key=lambda i: (sites[i].mismatches, -cfd[i], i))
    else:
        order = sorted(range(n), key=lambda i: (sites[i].mismatches, i))
    truncated = max_listed is not None and n > max_listed
    if truncated:
        order = order[:max_listed]
    listed = []
    for i in order:
        s = sites[i]
        start0, end0 = spans[i]
        listed.append(
            {
                "chrom": s.chrom,
                "start": start0 + 1,
                "end": end0,
                "strand": s.strand,
                "sequence": s.protospacer,
                "pam": s.pam,
                "pam_pattern": s.pam_pattern,
                "mismatches": s.mismatches,
                "mismatch_positions": _mismatch_positions(guide, s.protospacer, side),
                "mit": float(mit[i]) if mit is not None else None,
                "cfd": float(cfd[i]) if cfd is not None else None,
                "annotation": {"class": notes[i]["class"], "genes": list(notes[i]["genes"])},
            }
        )
    return {
        "mit_specificity": mit_spec,
        "cfd_specificity": cfd_spec,
        "score": score,
        "offtarget_counts": counts,
        "offtargets_total": n,
        **{f"offtargets_{c}": by_class[c] for c in CLASSES},
        "offtargets_listed_truncated": truncated,
        "offtargets": listed,
    }


#: The fields of a guide record, in order (every record has all of them; unknown ones None).
GUIDE_FIELDS = (
    "rank",
    "score",
    "sequence",
    "pam",
    "chrom",
    "start",
    "end",
    "strand",
    "cut",
    "gc",
    "tttt",
    "masked",
    "context30",
    "ruleset1",
    "mit_specificity",
    "cfd_specificity",
    "offtarget_counts",
    "offtargets_total",
    *(f"offtargets_{c}" for c in CLASSES),
    "offtargets_listed_truncated",
    "offtargets",
)


def _record(fields: dict) -> dict:
    """A guide record with every field, in the documented order."""
    return {key: fields.get(key) for key in GUIDE_FIELDS}


def _rank_key(record: dict, i: int) -> tuple:
    flagged = bool(record["tttt"]) or record["offtarget_counts"][0] > 0
    score = record["score"]
    rs1 = record["ruleset1"]
    return (
        flagged,
        -math.floor(score + 0.5),
        -(rs1 if rs1 is not None else -1.0),
        -score,
        -(record["mit_specificity"] or 0.0),
        i,
    )


def _assign_ranks(records: list[dict]) -> list[dict]:
    """Set ``rank`` on each record (module doc, "Ranking"); returns them best first."""
    order = sorted(range(len(records)), key=lambda i: _rank_key(records[i], i))
    for rank, i in enumerate(order, 1):
        records[i]["rank"] = rank
    return [records[i] for i in order]


# --------------------------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------------------------


def _inputs(genome: Genome, index: Dataset, extra: Sequence[dict] = ()) -> list[dict]:
    manifest = genome.dataset.manifest
    files = json.dumps(index.manifest.get("files", {}), sort_keys=True).encode()
    return [
        {
            "source": f"genome:{genome.name}",
            "role": "genome",
            "version": manifest["version"],
            "sha256": manifest["files"][SEQUENCE]["sha256"],
        },
        {
            "source": f"siteindex:{index.name}",
            "role": "site index",
            "version": index.manifest["version"],
            "format_version": index.manifest.get("format_version"),
            # the index is many files: this is the SHA-256 of its manifest's file list
            "sha256": hashlib.sha256(files).hexdigest(),
        },
        *extra,
    ]


def _nuclease_parameters(nuclease: Nuclease) -> dict:
    return {
        "nuclease": nuclease.name,
        "pam": nuclease.pam,
        "pam_side": nuclease.pam_side,
        "guide_length": nuclease.guide_length,
        "offtarget_pams": list(nuclease.default_offtarget_pams),
    }


# --------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------


def _limit(max_target_bp: int | None) -> int:
    return MAX_TARGET_BP if max_target_bp is None else max_target_bp


def _read_fasta(path, max_bp: int) -> list[tuple[str, str]]:
    """``(name, sequence)`` records of a small FASTA file (plain or gzipped), size-checked while
    reading so that a whole genome given by mistake fails fast."""
    label = os.fspath(path)
    try:
        raw = open(label, "rb")  # noqa: SIM115 - closed below, wrapped by the gzip reader
    except FileNotFoundError:
        raise InputError(f"cannot read FASTA {label}: no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read FASTA {label}: {exc.strerror or exc}") from None
    records: list[tuple[str, list[str]]] = []
    total = 0
    try:
        with raw, open_maybe_gzip(raw) as fh:
            for lineno, line in enumerate(fh, 1):
                text = line.decode("ascii", errors="replace").strip()
                if not text:
                    continue
                if text.startswith(">"):
                    name = text[1:].split(maxsplit=1)[0] if text[1:].strip() else ""
                    if not name:
                        raise InputError(f"FASTA {label} line {lineno}: a record without a name")
                    if any(name == r[0] for r in records):
                        raise InputError(f"FASTA {label}: duplicate sequence name {name!r}")
                    records.append((name, []))
                    continue
                if not records:
                    raise InputError(f"{label} is not a FASTA file: it must start with '>name'")
                total += len(text)
                if max_bp and total > max_bp:
                    raise InputError(
                        f"FASTA {label} holds more than the limit of {max_bp:,} bp for one "
                        "design; choose a smaller target or raise the limit (--max-target-bp)"
                    )
                records[-1][1].append(text)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read FASTA {label}: {exc}") from None
    if not records:
        raise InputError(f"FASTA {label} is empty")
    return [(name, "".join(parts)) for name, parts in records]


def _region_dict(chrom: str, start0: int, end0: int, strand: str = "+") -> dict:
    return {"chrom": chrom, "start": start0 + 1, "end": end0, "strand": strand}


def _sequence_candidates(
    records: list[tuple[str, str]], nuclease: Nuclease, max_bp: int
) -> tuple[list[Candidate], list[dict]]:
    total = sum(len("".join(seq.split())) for _, seq in records)
    if max_bp and total > max_bp:
        raise InputError(
            f"the target sequence is {total:,} bp, more than the limit of {max_bp:,} bp for one "
            "design; choose a smaller target or raise the limit (--max-target-bp)"
        )
    candidates: list[Candidate] = []
    summary = []
    for name, seq in records:
        found = find_candidates_in_sequence(seq, nuclease, name, max_bp=0)
        candidates += found
        length = len("".join(seq.split()))
        summary.append(
            {
                "name": name,
                "length": length,
                "sha256": hashlib.sha256("".join(seq.split()).upper().encode()).hexdigest(),
            }
        )
    return candidates, summary


def _target(
    genome: Genome,
    nuclease: Nuclease,
    *,
    gene,
    region,
    sequence,
    fasta,
    within: str,
    max_bp: int,
) -> tuple[dict, list[Candidate], list[dict], bool]:
    """The target's description, its candidates, extra provenance inputs, and whether the
    candidates lie in the genome (so that their on-target sites are excluded)."""
    given = [
        name
        for name, value in (
            ("gene", gene),
            ("region", region),
            ("sequence", sequence),
            ("fasta", fasta),
        )
        if value is not None
    ]
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise InputError(
            f"give exactly one target — a gene, a region, a sequence or a FASTA file — not {what}"
        )
    if gene is not None:
        g = genome.gene(str(gene))
        regions = gene_regions(g, within)
        candidates = find_candidates_in_regions(genome, regions, nuclease, max_bp=max_bp)
        target = {
            "type": "gene",
            "name": g.symbol or g.gene_id,
            "gene_id": g.gene_id,
            "location": g.location,
            "strand": g.strand,
            "within": str(within).strip().lower(),
            "length": sum(r.length for r in regions),
            "regions": [_region_dict(r.chrom, r.start0, r.end0, r.strand) for r in regions],
        }
        return target, candidates, [], True
    if region is not None:
        r = genome.region(str(region))
        candidates = find_candidates(genome, r, nuclease, max_bp=max_bp)
        target = {
            "type": "region",
            "name": str(r),
            "length": r.length,
            "regions": [_region_dict(r.chrom, r.start0, r.end0)],
        }
        return target, candidates, [], True
    if sequence is not None:
        records = [("sequence", str(sequence))]
        candidates, summary = _sequence_candidates(records, nuclease, max_bp)
        (info,) = summary
        target = {
            "type": "sequence",
            "name": "sequence",
            "length": info["length"],
            "regions": [_region_dict("sequence", 0, info["length"])],
        }
        extra = [{"source": "sequence", "role": "target", "sha256": info["sha256"]}]
        return target, candidates, extra, False
    records = _read_fasta(fasta, max_bp)
    candidates, summary = _sequence_candidates(records, nuclease, max_bp)
    label = os.fspath(fasta)
    target = {
        "type": "fasta",
        "name": os.path.basename(label),
        "length": sum(s["length"] for s in summary),
        "regions": [_region_dict(s["name"], 0, s["length"]) for s in summary],
    }
    extra = [
        {"source": f"{label}#{s['name']}", "role": "target", "sha256": s["sha256"]} for s in summary
    ]
    return target, candidates, extra, False


# --------------------------------------------------------------------------------------------
# the domain functions
# --------------------------------------------------------------------------------------------


def design_guides(
    genome: Genome,
    *,
    gene: str | None = None,
    region: str | None = None,
    sequence: str | None = None,
    fasta: str | os.PathLike | None = None,
    nuclease: str | Nuclease = "SpCas9",
    offtarget_pams: str | Sequence[str] | None = None,
    within: str = "exons",
    max_mismatches: int = 4,
    executor="local",
    retries: int = 2,
    max_target_bp: int | None = MAX_TARGET_BP,
    max_offtargets_listed: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> dict:
    """Design guides for one target of ``genome`` and search their off-targets genome-wide.

    Parameters
    ----------
    genome
        An open :class:`~sandgrain.genome.store.Genome` with a site index for the nuclease
        (``sandgrain genome index NAME --nuclease …``; otherwise a
        :class:`~sandgrain.errors.NotFoundError` names that command).
    gene, region, sequence, fasta
        Exactly one target: a gene symbol/alias/ID; ``chrom:start-end`` (1-based inclusive); a
        raw DNA sequence; or the path of a FASTA file (plain or gzipped, one or more records).
    nuclease
        A shipped name (``SpCas9``, ``SaCas9``, ``AsCas12a``, ``LbCas12a``) or a
        :class:`~sandgrain.guides.nucleases.Nuclease` (see :func:`resolve_nuclease`).
    offtarget_pams
        Extra PAMs searched for off-targets (``"NAG,NGA"``); ``None`` keeps the nuclease's.
    within
        For a gene: ``exons`` (default), ``cds`` or ``gene``.
    max_mismatches
        Off-targets with up to this many mismatches (0–5) are searched.
    executor, retries, progress, cancel
        Passed to the fan-out engine (one batched off-target search for all candidates).
    max_target_bp
        Largest target in bp (default :data:`~sandgrain.guides.candidates.MAX_TARGET_BP`;
        0 for no limit).
    max_offtargets_listed
        List at most this many off-targets per guide (counts stay exact); ``None`` lists all.

    Returns
    -------
    dict
        ``{"provenance", "genome", "target", "nuclease", "max_mismatches", "guides"}`` with the
        guides best first; each guide's fields and the conventions are in the module doc.

    Raises
    ------
    InputError, NotFoundError
        Bad options, an unknown gene or nuclease, a target over the limit, a missing index —
        all before any search starts.
    """
    nuc = resolve_nuclease(nuclease, offtarget_pams=offtarget_pams)
    k = _check_max_mismatches(max_mismatches)
    listed = _check_listed(max_offtargets_listed)
    max_bp = _limit(max_target_bp)
    target, candidates, extra, in_genome = _target(
        genome,
        nuc,
        gene=gene,
        region=region,
        sequence=sequence,
        fasta=fasta,
        within=within,
        max_bp=max_bp,
    )
    family, index = _open_index(genome, nuc)
    protospacers = [c.protospacer for c in candidates]
    results = _search(
        genome,
        protospacers,
        [k] * len(protospacers),
        nuc,
        family,
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
    )
    annotate = SiteAnnotator(genome.genes)
    scored = is_spcas9_like(nuc)
    records = []
    for c, sites in zip(candidates, results, strict=True):
        on_target = (c.chrom, c.site_start0, c.strand) if in_genome else None
        fields = c.to_dict()
        fields["ruleset1"] = ruleset1(c.context30) if scored and c.context30 else None
        fields.update(_summarise(c.protospacer, sites, nuc, k, annotate, listed, on_target))
        records.append(_record(fields))
    parameters = {
        "target": {"type": target["type"], "name": target["name"]},
        **_nuclease_parameters(nuc),
        "within": target.get("within"),
        "max_mismatches": k,
        "max_target_bp": max_bp,
        "max_offtargets_listed": listed,
        "on_target_excluded": in_genome,
    }
    return {
        "provenance": provenance("guides design", parameters, _inputs(genome, index, extra)),
        "genome": genome.name,
        "target": target,
        "nuclease": nuc.to_dict(),
        "max_mismatches": k,
        "guides": _assign_ranks(records),
    }


def score_search(
    search: GuideSearch,
    *,
    max_offtargets_listed: int | None = None,
    command: str = "guides score",
) -> dict:
    """The document of :func:`score_guides` from a finished :func:`search_guides`
    (``command`` names the command in the provenance record)."""
    listed = _check_listed(max_offtargets_listed)
    nuc = search.nuclease
    annotate = SiteAnnotator(search.genome.genes)
    k = search.max_mismatches
    records = []
    for guide, limit, sites in zip(search.guides, search.limits, search.results, strict=True):
        upper = guide.upper()
        fields = {
            "sequence": upper,
            "gc": (upper.count("G") + upper.count("C")) / len(upper),
            "tttt": "TTTT" in upper,
        }
        # counts run to this guide's own limit: beyond it nothing was searched
        fields.update(_summarise(guide, sites, nuc, limit, annotate, listed, None))
        records.append(_record(fields))
    _assign_ranks(records)  # ranks set; the records stay in input order
    parameters = {
        "guides": len(search.guides),
        **_nuclease_parameters(nuc),
        "max_mismatches": k,
        "guide_mismatches": search.limits if len(set(search.limits)) > 1 else None,
        "max_offtargets_listed": listed,
        "on_target_excluded": False,
    }
    return {
        "provenance": provenance(command, parameters, _inputs(search.genome, search.index)),
        "genome": search.genome.name,
        "target": {"type": "guides", "name": "given guides", "count": len(search.guides)},
        "nuclease": nuc.to_dict(),
        "max_mismatches": k,
        "guides": records,
    }


def score_guides(
    genome: Genome,
    guides: Sequence[str],
    *,
    nuclease: str | Nuclease = "SpCas9",
    offtarget_pams: str | Sequence[str] | None = None,
    max_mismatches: int = 4,
    guide_mismatches: Sequence[int | None] | None = None,
    executor="local",
    retries: int = 2,
    max_offtargets_listed: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> dict:
    """Score given guides (protospacers without PAM) against ``genome``.

    The same document as :func:`design_guides` (``target`` is ``{"type": "guides"}``), with the
    guides in the order given and ``rank`` set. Nothing is excluded: the guides' positions are
    not known, so a guide present in the genome counts its own site(s) under 0 mismatches (and
    is flagged by the ranking; its specificities include its own site). Position fields
    (``pam``, ``chrom``, ``start``…) and ``ruleset1`` (no 30-mer context) are ``None``.
    """
    search = search_guides(
        genome,
        guides,
        nuclease=nuclease,
        offtarget_pams=offtarget_pams,
        max_mismatches=max_mismatches,
        guide_mismatches=guide_mismatches,
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
    )
    return score_search(search, max_offtargets_listed=max_offtargets_listed)
