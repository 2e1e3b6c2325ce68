"""Guide design and guide scoring: the domain functions the CLI and the web API call.

:func:`design_guides` takes a :class:`~sandgrain.guides.request.DesignRequest`, locates its
target (:mod:`.targets`: a gene, a region, a raw sequence or a FASTA file), finds every candidate
site of the nuclease there, searches the whole genome for each candidate's off-targets in one
batched call (:mod:`.batch`), summarises them on columns (:mod:`.hits`, :mod:`.ontarget`), ranks
the guides and returns one JSON-able document (:mod:`.document`). :func:`score_guides` does the
same for guides the user gives (a :class:`~sandgrain.guides.request.ScoreRequest`, no target).
:func:`search_guides` is the shared search step, also behind ``sandgrain guides offtargets``;
:func:`check_design` makes the checks of a design that need the genome, without searching.

Conventions
-----------
Coordinates
    Output positions are 1-based inclusive (``start``/``end`` of the protospacer alone, on the
    forward strand, whichever strand it reads on); ``cut`` is the 1-based position of the last
    forward-strand base before the cut. For ``sequence``/``fasta`` targets the guides'
    ``chrom``/``start``/``end`` refer to the given sequence, the off-targets' to the genome.
On-target exclusion
    Off-target counts, lists and specificities leave out each guide's **on-target site**, and
    the guide record's ``on_target`` (``{chrom, start, end, strand}`` of its protospacer, as the
    off-targets give theirs; ``None`` when none was left out) says which site that was. For a
    genome target (gene or region) it is the site with 0 mismatches at the candidate's own
    position and strand. For ``sequence``/``fasta`` targets, when the guide has 0-mismatch
    sites in the genome, exactly one is taken: the first in genome order whose **context**
    equals the input sequence around the candidate — the Rule Set 1 30-mer (4 bp 5', the site,
    3 bp 3') for SpCas9-like guides, else the site with :data:`ON_TARGET_FLANK` bp each side,
    both as much of it as the input holds — and when none does, the first 0-mismatch site. For
    given guides (:func:`score_guides`) it is the first 0-mismatch site in genome order. Any
    other 0-mismatch site (a second copy of the target) *is* an off-target. With
    ``exclude_on_target=False`` no site is left out (a guide then counts its own site(s) under 0
    mismatches). ``guides offtargets`` lists every site, the guide's own included.
Scores (see :mod:`sandgrain.guides.scores` for each paper)
    Specificity: MIT (Hsu et al. 2013) and CFD (Doench et al. 2016) per off-target and the
    guide aggregates ``mit_specificity = 100·100/(100 + Σ MIT)`` (CRISPOR's) and
    ``cfd_specificity = 100/(1 + Σ CFD)`` (GuideScan 2's) for *SpCas9-like* nucleases only:
    20-nt protospacers with an ``NGG`` PAM on the 3' side (off-target sites next to NAG and NGA,
    searched by default, are scored too: CFD weighs the PAM). Efficiency: Rule Set 3, Rule Set 1,
    CRISPRscan and the out-of-frame score (:mod:`.efficiency`), which need the bases around the
    site; ``None`` near a sequence end, for a given guide with no perfect site (or one next to
    another PAM than the nuclease's), and for other nucleases. Scores not
    defined are ``None``. Where the cut falls in a coding gene: ``gene``, ``exon``,
    ``exon_count`` and ``cds_percent`` (:mod:`.cds`).
``mismatch_positions``
    1-based, counted from the protospacer's PAM-distal end (for a 3' PAM the 5' end, for a 5'
    PAM such as Cas12a's the 3' end), as in the score papers. ``N`` in the genome is a mismatch.

Ranking
-------
``flags``, ``tier`` and ``rank`` as :mod:`.document` says: tier (no flag; soft flags only; a
second perfect site or ``TTTT``), then efficiency, then CFD and MIT specificity, then genome
order. The document's ``ranking`` entry states the rule. ``score`` (0–100) is the guide's
specificity: ``cfd_specificity`` for SpCas9-like nucleases, else a count specificity
(:mod:`.hits`).

Every list is exact: ``offtarget_counts`` (by number of mismatches, 0…k), ``offtargets_total``
and the counts by location class are never capped. Only the *listing* of off-targets may be cut,
by ``max_offtargets_listed``; then ``offtargets_listed_truncated`` is true. Listed off-targets
come most dangerous first: fewest mismatches, then highest CFD (when scored), then genome order.

Counts, scores, specificities and location classes are computed on the columns of one batched
search (:class:`~sandgrain.guides.search.OffTargetTable`); Python objects are made only for the
off-targets that are listed — none with ``list_offtargets=False``, as for TSV and BED — so a
guide with a million sites costs arrays, not a million dicts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from ..genome.store import Genome
from ..provenance import provenance
from .batch import (
    BATCH_HITS,
    FIRST_BATCH,
    Cancel,
    GuideSearch,
    Progress,
    iter_search,
    open_guide_index,
    run_search,
)
from .candidates import Candidate, site_candidate
from .cds import cds_position, gene_at_cut
from .context import ContextReader
from .document import assign_ranks, guide_flags, inputs, nuclease_parameters, ranking, record
from .efficiency import EFFICIENCY_MODEL, efficiency_fields
from .features import (
    CHOPCHOP_BACKBONE,
    cloning_oligos,
    feature_flags,
    self_complementarity,
)
from .fields import feature_fields, guide_fields, scaffold_for
from .hits import Hits
from .iupac import compile_regex
from .nucleases import Nuclease, is_spcas9_like
from .ontarget import ContextMatcher
from .request import DesignRequest, ScoreRequest, resolve_nuclease
from .targets import Target, locate_target, target_candidates

__all__ = [
    "GuideSearch",
    "check_design",
    "check_index",
    "design_guides",
    "score_guides",
    "score_search",
    "search_guides",
]


def _request(cls, request, options: dict):
    """``request`` when it is a ``cls``; else a ``cls`` built from the keyword form, with
    ``request`` (when given: the guides of a score request) as its first field."""
    if isinstance(request, cls):
        if options:
            raise TypeError(f"give a {cls.__name__} or its fields as keywords, not both")
        return request
    return cls(**options) if request is None else cls(request, **options)


def check_index(genome: Genome, nuclease: str | Nuclease) -> None:
    """That ``genome`` has a site index for ``nuclease`` (a shipped name or a
    :class:`~sandgrain.guides.nucleases.Nuclease`): a
    :class:`~sandgrain.guides.errors.MissingIndexError` naming the command that builds it
    otherwise, an unknown name a :class:`~sandgrain.errors.NotFoundError`."""
    open_guide_index(genome, resolve_nuclease(nuclease))


def check_design(genome: Genome, request: DesignRequest) -> Target:
    """The checks of a design that need ``genome``, without scanning or searching: the target
    exists and fits (:func:`~sandgrain.guides.targets.locate_target`) and the genome has a site
    index for the nuclease (a :class:`~sandgrain.guides.errors.MissingIndexError` naming the
    command that builds it otherwise). Returns the located target."""
    target = locate_target(genome, request)
    check_index(genome, request.nuclease)
    return target


def _primers(genome, target, candidates, req, executor, retries, cancel) -> list | None:
    """PCR primers around each candidate's cut (genome targets, when asked)."""
    if not req.primers or not target.in_genome or not candidates:
        return None
    from .primers import design_primers_batch

    cuts = [(c.chrom, c.cut) for c in candidates]
    return design_primers_batch(genome, cuts, executor=executor, retries=retries, cancel=cancel)


def _variants(genome, target, candidates, req) -> list | None:
    """Known variants in each candidate's protospacer or PAM (genome targets, when asked)."""
    if req.variants is None or not target.in_genome:
        return None
    from .variants import VariantOverlaps

    found = VariantOverlaps(req.variants, assembly=genome.meta.get("assembly"))
    sites = []
    for c in candidates:
        pam = (c.site_start0, c.start0) if c.site_start0 < c.start0 else (c.end0, c.site_end0)
        sites.append((c.chrom, c.start0, c.end0, *pam))
    return found.for_sites(sites)


def design_guides(
    genome: Genome,
    request: DesignRequest | None = None,
    /,
    *,
    executor="local",
    retries: int = 2,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    **options,
) -> dict:
    """Design guides for one target of ``genome`` and search their off-targets genome-wide.

    Parameters
    ----------
    genome
        An open :class:`~sandgrain.genome.store.Genome` with a site index for the nuclease
        (``sandgrain genome index NAME --nuclease …``; otherwise a
        :class:`~sandgrain.guides.errors.MissingIndexError` names that command).
    request
        What to design (:class:`~sandgrain.guides.request.DesignRequest`: the target, the
        nuclease, the mismatch limit, the size and listing limits, on-target exclusion). Its
        fields may be given as keywords instead: ``design_guides(genome, gene="ADE2")``.
    executor, retries, progress, cancel
        Passed to the fan-out engine (one batched off-target search for all candidates).

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
    req = _request(DesignRequest, request, options)
    nuc = req.nuclease
    target = check_design(genome, req)
    candidates = target_candidates(genome, target, nuc)
    family, index = open_guide_index(genome, nuc)
    protospacers = [c.protospacer for c in candidates]
    search = run_search(
        genome,
        protospacers,
        [req.max_mismatches] * len(protospacers),
        nuc,
        family,
        index,
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
    )
    hits = Hits(search)
    matcher = None if target.in_genome else ContextMatcher(hits, genome, target.records, nuc)
    scored = is_spcas9_like(nuc)
    reader = ContextReader(genome, candidates, target.records)
    efficiency = efficiency_fields(
        candidates,
        reader,
        nuc,
        tracr=req.tracr,
        store=genome.dataset.store,
        executor=executor,
        retries=retries,
        cancel=cancel,
    )
    genes = genome.genes if target.in_genome else None
    scaffold = CHOPCHOP_BACKBONE if scored else None
    primers = _primers(genome, target, candidates, req, executor, retries, cancel)
    variants = _variants(genome, target, candidates, req)
    k = req.max_mismatches
    records = []
    for i, c in enumerate(candidates):
        own = None
        if req.exclude_on_target:
            if matcher is None:
                own = hits.site_row(i, c.chrom, c.site_start0, c.strand)
            else:
                own = matcher.choose(i, c)
        fields = guide_fields(c, i, efficiency[i], genes, target.gene, hits, req, own)
        fields.update(feature_fields(c, reader, scored))
        fields["primers"] = primers[i] if primers is not None else None
        fields["variants"] = variants[i] if variants is not None else None
        extra = feature_flags(c.protospacer, scaffold) + (["variant"] if fields["variants"] else [])
        fields["flags"] = guide_flags(fields, extra)
        records.append(record(fields))
    if not req.exclude_on_target:
        rule = None
    elif target.in_genome:
        rule = "the candidate's own site"
    else:
        rule = "the 0-mismatch site whose context matches the target sequence, else the first"
    description = target.description
    parameters = {
        "target": {"type": description["type"], "name": description["name"]},
        **nuclease_parameters(nuc),
        "within": description.get("within"),
        "max_mismatches": k,
        "max_target_bp": req.max_target_bp,
        "max_offtargets_listed": req.max_offtargets_listed,
        "on_target_excluded": req.exclude_on_target,
        "on_target_rule": rule,
        "tracr": req.tracr if scored else None,
    }
    return {
        "provenance": provenance("guides design", parameters, inputs(genome, index, target.inputs)),
        "genome": genome.name,
        "target": description,
        "nuclease": nuc.to_dict(),
        "max_mismatches": k,
        "ranking": ranking(EFFICIENCY_MODEL if scored else None),
        "guides": assign_ranks(records),
    }


def search_guides(
    genome: Genome,
    request: ScoreRequest | Sequence[str],
    /,
    *,
    executor="local",
    retries: int = 2,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    **options,
) -> GuideSearch:
    """Every site within the mismatch limit of each given guide, the guide's own included.

    ``request`` is a :class:`~sandgrain.guides.request.ScoreRequest`, or the guides with the
    request's other fields as keywords (``search_guides(genome, guides, max_mismatches=3)``).
    One search covers all guides; the result keeps the request (``GuideSearch.request``).
    """
    req = _request(ScoreRequest, request, options)
    family, index = open_guide_index(genome, req.nuclease)
    return run_search(
        genome,
        list(req.guides),
        list(req.limits),
        req.nuclease,
        family,
        index,
        executor=executor,
        retries=retries,
        progress=progress,
        cancel=cancel,
        request=req,
    )


def score_search(
    search: GuideSearch,
    *,
    command: str = "guides score",
    executor="serial",
    retries: int = 2,
    cancel: Cancel | None = None,
) -> dict:
    """The document of :func:`score_guides` from a finished :func:`search_guides`, with the
    listing and on-target options of its request (``command`` names the command in the
    provenance record; ``executor``, ``retries``, ``cancel``: for the efficiency scores of many
    guides, :func:`~sandgrain.guides.efficiency.efficiency_fields`)."""
    records = _score_records(search, executor=executor, retries=retries, cancel=cancel)
    return _score_document(search, records, command)


def _first_perfect_site(search: GuideSearch, i: int) -> int | None:
    """The row of ``guides[i]``'s first 0-mismatch site in genome order, if it has one."""
    rows = search.rows(i)
    zero = rows[search.table.mismatches[rows] == 0] if len(rows) else rows
    return int(zero[0]) if len(zero) else None


def _located(search: GuideSearch, hits: Hits, firsts: list[int | None]) -> dict[int, Candidate]:
    """Each guide with a perfect site placed there, as the candidate a design would have made
    (PAM, cut, 30-mer context, read from the genome)."""
    out = {}
    for i, row in enumerate(firsts):
        if row is not None:
            site = hits.on_target_dict(row)
            out[i] = site_candidate(
                search.genome, site["chrom"], site["start"] - 1, site["strand"], search.nuclease
            )
    return out


def _score_records(
    search: GuideSearch, *, executor="serial", retries: int = 2, cancel: Cancel | None = None
) -> list[dict]:
    """The guide records of a finished search (in its guides' order, ranks not set).

    A guide with a perfect site in the genome is placed at the first one in genome order (its
    on-target, the same rule): position, PAM, cut, the exon and % of CDS it cuts, the 30-mer
    and the efficiency scores there (these only at a site next to the nuclease's own PAM: the
    models were trained on NGG sites), and the features around the cut, as ``design`` gives
    them. A guide with no perfect site has only what its sequence tells (GC, TTTT,
    self-complementarity, cloning oligos)."""
    req = search.request
    nuc = search.nuclease
    hits = Hits(search)
    scored = is_spcas9_like(nuc)
    scaffold = scaffold_for(scored)
    firsts = [_first_perfect_site(search, i) for i in range(len(search.guides))]
    located = _located(search, hits, firsts)
    own_pam = compile_regex(nuc.pam)
    efficient = [i for i, c in located.items() if own_pam.fullmatch(c.pam)]
    cands = [located[i] for i in efficient]
    reader = ContextReader(search.genome, list(located.values()))
    efficiency = dict(
        zip(
            efficient,
            efficiency_fields(
                cands,
                reader,
                nuc,
                store=search.genome.dataset.store,
                executor=executor,
                retries=retries,
                cancel=cancel,
            ),  # fmt: skip
            strict=True,
        )
    )
    genes = search.genome.genes if located and search.genome.has_genes else None
    records = []
    for i, (guide, limit) in enumerate(zip(search.guides, search.limits, strict=True)):
        upper = guide.upper()
        c = located.get(i)
        if c is not None:
            fields = c.to_dict()
            fields.update(efficiency.get(i, {}))
            gene = gene_at_cut(genes, c.chrom, c.cut) if genes else None
            if gene is not None:
                fields.update(cds_position(gene, c.cut))
            fields.update(feature_fields(c, reader, scored))
        else:
            fields = {
                "sequence": upper,
                "gc": (upper.count("G") + upper.count("C")) / len(upper),
                "tttt": "TTTT" in upper,
                "self_complementarity": self_complementarity(upper, scaffold),
                "oligos": cloning_oligos(upper) if scored else None,
            }
        own = firsts[i] if req.exclude_on_target else None
        # counts run to this guide's own limit: beyond it nothing was searched
        listing = hits.summary(i, limit, req.max_offtargets_listed, req.list_offtargets, own)
        fields.update(listing)
        fields["on_target"] = hits.on_target_dict(own) if own is not None else None
        fields["flags"] = guide_flags(fields, feature_flags(upper, scaffold))
        records.append(record(fields))
    return records


def _score_document(search: GuideSearch, records: list[dict], command: str) -> dict:
    """The score document of ``search``'s guides (a finished search, or the empty one that
    names them all) from their ``records``."""
    req = search.request
    nuc = search.nuclease
    k = search.max_mismatches
    assign_ranks(records)  # ranks set; the records stay in input order
    parameters = {
        "guides": len(search.guides),
        **nuclease_parameters(nuc),
        "max_mismatches": k,
        "guide_mismatches": search.limits if len(set(search.limits)) > 1 else None,
        "max_offtargets_listed": req.max_offtargets_listed,
        "on_target_excluded": req.exclude_on_target,
        "on_target_rule": "the first 0-mismatch site" if req.exclude_on_target else None,
    }
    return {
        "provenance": provenance(command, parameters, inputs(search.genome, search.index)),
        "genome": search.genome.name,
        "target": {"type": "guides", "name": "given guides", "count": len(search.guides)},
        "nuclease": nuc.to_dict(),
        "max_mismatches": k,
        "ranking": ranking(EFFICIENCY_MODEL if is_spcas9_like(nuc) else None),
        "guides": records,
    }


def score_guides(
    genome: Genome,
    request: ScoreRequest | Sequence[str],
    /,
    *,
    executor="local",
    retries: int = 2,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    command: str = "guides score",
    batch_hits: int = BATCH_HITS,
    first_batch: int = FIRST_BATCH,
    **options,
) -> dict:
    """Score given guides (protospacers without PAM) against ``genome``.

    ``request`` is a :class:`~sandgrain.guides.request.ScoreRequest`, or the guides with the
    request's other fields as keywords (``score_guides(genome, guides, nuclease="SaCas9")``).
    The same document as :func:`design_guides` (``target`` is ``{"type": "guides"}``), with the
    guides in the order given and ``rank`` set. The guides' positions are not given: when a
    guide has 0-mismatch sites in the genome, the first in genome order is taken as its
    on-target, left out of its counts, list and specificities, and reported as ``on_target``
    (``exclude_on_target=False`` leaves every site in: a guide from the genome then counts its
    own site under 0 mismatches and is flagged by the ranking). Each guide is placed at that
    first perfect site (whether or not it is left out): position, PAM, cut, gene, exon and % of
    CDS, the 30-mer and the efficiency scores there, as :func:`design_guides` gives them; a
    guide with no perfect site in the genome has those fields ``None``.

    The guides are searched in batches whose hits fit a memory budget (``batch_hits``; see
    :func:`~sandgrain.guides.batch.iter_search`): each batch is scored and its hits let go, so
    memory is bounded by a batch and the guide records, never by all the sites (``first_batch``:
    the guides of the first batch).
    """
    req = _request(ScoreRequest, request, options)
    nuc = req.nuclease
    family, index = open_guide_index(genome, nuc)
    guides, limits = list(req.guides), list(req.limits)
    records: list[dict] = []
    batches = iter_search(
        genome, guides, limits, nuc, family, index, executor=executor, retries=retries,
        progress=progress, cancel=cancel, request=req, batch_hits=batch_hits,
        first_batch=first_batch,
    )  # fmt: skip
    with contextlib.closing(batches):
        for _, search in batches:
            records.extend(
                _score_records(search, executor=executor, retries=retries, cancel=cancel)
            )
            del search
    whole = GuideSearch(genome, nuc, family, index, guides, limits, request=req)
    return _score_document(whole, records, command)
