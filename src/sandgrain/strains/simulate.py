"""Synthetic genome collections: genomes evolved from a reference along a random dated tree.

The generator stands in for a surveillance feed of any size (benchmarks at 10 k to 1 M genomes)
and, since it knows every genome's true differences, checks alignment, mutation calling, QC and
the drift estimate against the truth.

The model
---------
**Tree.** Sampling dates are drawn uniformly over ``span_days`` from ``start`` and the genomes
are generated in date order. Each genome descends from an earlier *sampled* genome, whose date
lies about ``parent_lag_days`` (exponential) before its own, picked at random among the genomes
of the week around that date, or from the root (the reference, at ``start``) when there is none.
Densely sampled epidemics do contain sampled ancestors (Gavryushkina et al. 2014), and this
recursive, date-ordered tree needs one pass and O(n) memory for any n.

**Clock.** Along a branch from date t₁ to t₂, a genome gains Poisson(∫ r(t) dt) substitutions,
with r(t) = ``rate`` × (1 + ``rate_growth`` × years since ``start``): a strict clock of ``rate``
substitutions per genome per year (24 by default: ≈ 8 × 10⁻⁴ per site per year × 29,903 sites,
the SARS-CoV-2 rate used by Nextstrain), accelerating when ``rate_growth`` > 0. A substitution
is a transition with probability κ/(κ + 2) (``kappa`` = 4, a transition/transversion rate ratio
in the range reported for SARS-CoV-2), else one of the two transversions. A genome may found a
new clade (``clade_prob``), with a burst of ``saltation`` extra substitutions on that branch, as
the variants of concern arose (Tay et al. 2022). Indels (``indel_rate`` per genome per year)
are in-frame: deletions or insertions of 3, 6, 9 or 12 bases.

**Unambiguous truth.** An indel in a repeat can be written at several places, and a
substitution right beside an indel can be aligned two ways. So that any exact aligner must find
exactly the planted calls, indels are placed only where they cannot shift (the bases on both
sides differ from the ones they would trade places with), and no two differences of a genome
among indels and substitutions come within ``guard`` bases of an indel.

**Sequencing artefacts** (per genome, not inherited): trimmed ends (up to ``trim_start_max`` and
``trim_end_max`` bases, cut from the FASTA or, for ``padded_ends_prob`` of genomes, written as
N), amplicon dropouts (N runs of 150-350 bases, the unique part of an ARTIC amplicon, with
probability ``dropout_prob``), a mixed site (an IUPAC code, with probability ``mixed_prob``), and
``bad_fraction`` of *bad* genomes with one defect: ``many_n`` (5-15 % N in dropouts),
``snp_cluster`` (8 private substitutions within 80 bases, what Nextclade's SNP-cluster rule
flags) or ``short_indel`` (a private 1- or 2-base deletion: a frame shift inside a gene).

What a differences caller sees is written as the truth: substitutions and indels hidden by N are
left out (an indel touching an N run is absorbed into it), so ``genome_from_calls(reference,
truth)`` is exactly the genome written to the FASTA (with its ends' N cut where they were cut).

References
----------
.. [1] Gavryushkina A, Welch D, Stadler T, Drummond AJ. "Bayesian inference of sampled ancestor
   trees for epidemiology and fossil calibration." PLoS Comput Biol 10:e1003919, 2014.
.. [2] Tay JH, Porter AF, Wirth W, Duchene S. "The emergence of SARS-CoV-2 variants of concern
   is driven by acceleration of the substitution rate." Mol Biol Evol 39:msac013, 2022.
.. [3] Hadfield J, et al. "Nextstrain: real-time tracking of pathogen evolution."
   Bioinformatics 34:4121-4123, 2018 (the SARS-CoV-2 workflow's clock rate, 8 × 10⁻⁴).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..provenance import provenance
from .kmers import genome_from_calls
from .mutations import CodingSequence

__all__ = ["SimulatedGenome", "SimulationParams", "TrueCalls", "simulate", "write_collection"]

_TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}
_TRANSVERSIONS = {"A": "CT", "G": "CT", "C": "AG", "T": "AG"}
_COMPLEMENT = str.maketrans("ACGT", "TGCA")
_STOPS = frozenset({"TAA", "TAG", "TGA"})
_IUPAC_PAIR = {
    frozenset("AG"): "R", frozenset("CT"): "Y", frozenset("CG"): "S",
    frozenset("AT"): "W", frozenset("GT"): "K", frozenset("AC"): "M",
}  # fmt: skip
#: (country, region): where simulated genomes are sampled; a child stays in its parent's
#: country with probability ``SimulationParams.stay``.
COUNTRIES = (
    ("China", "Asia"),
    ("Australia", "Oceania"),
    ("USA", "North America"),
    ("United Kingdom", "Europe"),
    ("Germany", "Europe"),
    ("Brazil", "South America"),
    ("South Africa", "Africa"),
    ("India", "Asia"),
)
DEFECTS = ("many_n", "snp_cluster", "short_indel")


@dataclass(frozen=True)
class SimulationParams:
    """The knobs of the generator (see the module docstring); every default is documented."""

    n: int
    seed: int = 0
    start: str = "2019-12-26"
    span_days: int = 730
    rate: float = 24.0
    rate_growth: float = 0.0
    kappa: float = 4.0
    indel_rate: float = 0.4
    insertion_share: float = 0.2
    parent_lag_days: float = 21.0
    clade_prob: float = 0.004
    saltation: float = 6.0
    stay: float = 0.9
    guard: int = 12
    trim_start_max: int = 60
    trim_end_max: int = 120
    padded_ends_prob: float = 0.2
    dropout_prob: float = 0.15
    mixed_prob: float = 0.03
    bad_fraction: float = 0.03

    def check(self) -> None:
        if self.n < 1:
            raise InputError(f"the number of genomes must be 1 or more, not {self.n}")
        if self.span_days < 1:
            raise InputError("the sampling span must be at least one day")
        try:
            dt.date.fromisoformat(self.start)
        except ValueError:
            raise InputError(f"the start date {self.start!r} is not YYYY-MM-DD") from None
        for name in ("padded_ends_prob", "dropout_prob", "mixed_prob", "bad_fraction", "stay",
                     "clade_prob", "insertion_share"):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} is a probability, not {getattr(self, name)}")
        for name in ("rate", "kappa", "indel_rate", "parent_lag_days", "saltation"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative")
        if self.rate_growth < -0.9 / max(self.span_days / 365.25, 1e-9):
            raise InputError("rate_growth would make the clock rate negative within the span")


@dataclass
class TrueCalls:
    """A genome's differences as a perfect caller reports them (Nextclade's notation)."""

    strain: str
    substitutions: list[str] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    insertions: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class SimulatedGenome:
    """One synthetic genome with its metadata and its truth."""

    strain: str
    date: str
    country: str
    region: str
    sequence: str
    calls: TrueCalls
    parent: str | None
    clade: str
    defect: str
    n_true_substitutions: int  # along its whole lineage, masked ones included


@dataclass
class _State:
    """A lineage's differences from the reference (0-based positions)."""

    subs: dict[int, str] = field(default_factory=dict)
    dels: dict[int, int] = field(default_factory=dict)  # start → end (exclusive)
    ins: dict[int, str] = field(default_factory=dict)  # boundary → bases

    def near_indel(self, lo: int, hi: int, guard: int) -> bool:
        """Does [lo, hi) come within ``guard`` bases of an indel?"""
        return any(a - guard < hi and lo < b + guard for a, b in self.dels.items()) or any(
            p - guard < hi and lo <= p + guard for p in self.ins
        )

    def near_sub(self, lo: int, hi: int, guard: int) -> bool:
        return any(lo - guard <= p < hi + guard for p in self.subs)


def _apply(state: _State, mutation: tuple, reference: str) -> None:
    kind, pos, value = mutation
    if kind == "s":
        if value == reference[pos]:
            state.subs.pop(pos, None)
        else:
            state.subs[pos] = value
    elif kind == "d":
        state.dels[pos] = value
    else:
        state.ins[pos] = value


class _Evolver:
    """Draws a branch's mutations given the lineage state at its start."""

    def __init__(
        self,
        reference: str,
        params: SimulationParams,
        rng: np.random.Generator,
        coding: Sequence[CodingSequence] = (),
    ):
        self.ref = reference
        self.p = params
        self.rng = rng
        self.lo, self.hi = params.guard + 1, len(reference) - params.guard - 16
        # every sense codon of every CDS (the last one is the gene's own stop), by each of its
        # three reference positions: a substitution there must not make it a stop
        self.codons: dict[int, list[tuple[tuple[int, int, int], bool]]] = {}
        # plus-strand CDS as (positions in reading order, position → index), for indels
        self.frames: list[tuple[list[int], dict[int, int]]] = []
        for cds in coding:
            pos = [int(x) for x in cds.positions]
            if cds.strand != "-":
                self.frames.append((pos, {x: i for i, x in enumerate(pos)}))
            for k in range(0, len(pos) - 3, 3):
                triple = (pos[k], pos[k + 1], pos[k + 2])
                for x in triple:
                    self.codons.setdefault(x, []).append((triple, cds.strand == "-"))

    def indel_makes_stop(self, state: _State, mutation: tuple) -> bool:
        """Would an in-frame indel make a premature stop where it joins the reading frame (a
        deletion's junction codon, an insertion's new codons)? Plus-strand CDS only."""
        kind, a, value = mutation

        def base(x: int) -> str:
            return state.subs.get(x, self.ref[x])

        for pos, index in self.frames:
            i = index.get(a)
            if i is None:
                continue
            k = i - i % 3
            before = "".join(base(x) for x in pos[k:i])
            if kind == "d":
                j = index.get(value - 1)
                if j is None or j - i != value - 1 - a:
                    continue  # not one stretch of this CDS
                new = before + "".join(base(x) for x in pos[j + 1 : j + 4])
            else:
                new = before + value + "".join(base(x) for x in pos[i : i + 3])
            last = len(pos) // 3 - 1
            for c in range(0, len(new) - 2, 3):
                if k // 3 + c // 3 < last and new[c : c + 3] in _STOPS:
                    return True
        return False

    def makes_stop(self, state: _State, pos: int, base: str) -> bool:
        """Would ``base`` at ``pos`` turn a sense codon of a CDS into a premature stop?"""
        for triple, minus in self.codons.get(pos, ()):
            codon = "".join(base if x == pos else state.subs.get(x, self.ref[x]) for x in triple)
            if minus:
                codon = codon.translate(_COMPLEMENT)
            if codon in _STOPS:
                return True
        return False

    def base_change(self, current: str) -> str:
        p_ts = self.p.kappa / (self.p.kappa + 2.0)
        if current not in _TRANSITION:
            return "A"
        if self.rng.random() < p_ts:
            return _TRANSITION[current]
        return _TRANSVERSIONS[current][int(self.rng.integers(2))]

    def substitution(self, state: _State, lo: int | None = None, hi: int | None = None):
        lo, hi = (self.lo, self.hi) if lo is None else (lo, hi)
        for _ in range(50):
            pos = int(self.rng.integers(lo, hi))
            if not state.near_indel(pos, pos + 1, self.p.guard):
                current = state.subs.get(pos, self.ref[pos])
                base = self.base_change(current)
                if self.codons and self.makes_stop(state, pos, base):
                    continue  # purifying selection: such a lineage does not survive
                return ("s", pos, base)
        return None

    def deletion_fits(self, state: _State, a: int, b: int) -> bool:
        ref, g = self.ref, self.p.guard
        return (
            ref[a - 1] != ref[b - 1]  # cannot shift left
            and ref[a] != ref[b]  # cannot shift right
            and not state.near_indel(a, b, g)
            and not state.near_sub(a, b, g)
        )

    def indel(self, state: _State, lengths=(3, 6, 9, 12), insertion: bool | None = None):
        if insertion is None:
            insertion = self.rng.random() < self.p.insertion_share
        for _ in range(50):
            size = int(self.rng.choice(lengths))
            a = int(self.rng.integers(self.lo, self.hi - size))
            if insertion:
                bases = "".join(self.rng.choice(list("ACGT"), size))
                if (
                    bases[-1] != self.ref[a - 1]
                    and bases[0] != self.ref[a]
                    and not state.near_indel(a, a, self.p.guard)
                    and not state.near_sub(a, a, self.p.guard)
                    and not (self.frames and self.indel_makes_stop(state, ("i", a, bases)))
                ):
                    return ("i", a, bases)
            elif self.deletion_fits(state, a, a + size) and not (
                self.frames and self.indel_makes_stop(state, ("d", a, a + size))
            ):
                return ("d", a, a + size)
        return None

    def branch(self, state: _State, years0: float, years1: float, founder: bool) -> list[tuple]:
        p = self.p
        clock = (years1 - years0) + p.rate_growth / 2 * (years1**2 - years0**2)
        n_sub = int(self.rng.poisson(p.rate * max(clock, 0.0)))
        if founder:
            n_sub += int(self.rng.poisson(p.saltation))
        n_indel = int(self.rng.poisson(p.indel_rate * max(years1 - years0, 0.0)))
        out = []
        for _ in range(n_indel):
            m = self.indel(state)
            if m:
                _apply(state, m, self.ref)
                out.append(m)
        for _ in range(n_sub):
            m = self.substitution(state)
            if m:
                _apply(state, m, self.ref)
                out.append(m)
        return out


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _observe(state: _State, ev: _Evolver, strain: str) -> tuple[TrueCalls, str, bool]:
    """Sequencing artefacts and a possible defect, then what a caller would report."""
    p, rng, ref, length = ev.p, ev.rng, ev.ref, len(ev.ref)
    state = _State(dict(state.subs), dict(state.dels), dict(state.ins))  # private changes
    mixed: dict[int, str] = {}
    missing: list[tuple[int, int]] = []
    trim_a = int(rng.integers(0, p.trim_start_max + 1))
    trim_b = int(rng.integers(0, p.trim_end_max + 1))
    if trim_a:
        missing.append((0, trim_a))
    if trim_b:
        missing.append((length - trim_b, length))

    def dropout() -> None:
        size = int(rng.integers(150, 351))
        a = int(rng.integers(0, length - size))
        missing.append((a, a + size))

    if rng.random() < p.dropout_prob:
        for _ in range(1 + int(rng.poisson(0.5))):
            dropout()
    defect = ""
    if rng.random() < p.bad_fraction:
        defect = DEFECTS[int(rng.integers(len(DEFECTS)))]
        if defect == "many_n":
            target = rng.uniform(0.05, 0.15) * length
            while sum(b - a for a, b in _merge(missing)) < target:
                dropout()
        elif defect == "snp_cluster":
            start = int(rng.integers(ev.lo, ev.hi - 80))
            placed = 0
            for _ in range(200):
                m = ev.substitution(state, start, start + 80)
                if m and m[1] not in state.subs:
                    _apply(state, m, ref)
                    placed += m[1] in state.subs
                if placed == 8:
                    break
        else:
            m = ev.indel(state, lengths=(1, 2), insertion=False)
            if m:
                _apply(state, m, ref)
    if rng.random() < p.mixed_prob:
        for _ in range(20):
            pos = int(rng.integers(ev.lo, ev.hi))
            if pos not in state.subs and not state.near_indel(pos, pos + 1, p.guard):
                other = ev.base_change(ref[pos])
                mixed[pos] = _IUPAC_PAIR[frozenset((ref[pos], other))]
                break
    # an indel touching an N run disappears into it; repeat until nothing changes
    missing = _merge(missing)
    while True:
        grown = list(missing)
        for a, b in state.dels.items():
            if any(lo <= b and a <= hi for lo, hi in missing):
                grown.append((a, b))
        grown = _merge(grown)
        if grown == missing:
            break
        missing = grown
    calls = TrueCalls(strain)
    hidden = lambda lo, hi: any(a <= hi and lo <= b for a, b in missing)  # noqa: E731
    inside = lambda pos: any(a <= pos < b for a, b in missing)  # noqa: E731
    for pos in sorted({**state.subs, **mixed}):
        if not inside(pos):
            alt = mixed.get(pos) or state.subs[pos]
            calls.substitutions.append(f"{ref[pos]}{pos + 1}{alt}")
    for a, b in sorted(state.dels.items()):
        if not hidden(a, b):
            calls.deletions.append(f"del:{a + 1}-{b}")
    for pos, bases in sorted(state.ins.items()):
        if not hidden(pos, pos):
            calls.insertions.append(f"ins:{pos}:{bases}")
    calls.missing = [f"{a + 1}-{b}" if b > a + 1 else f"{a + 1}" for a, b in missing]
    padded = bool(rng.random() < p.padded_ends_prob)
    return calls, defect, padded


def simulate(
    reference: str, params: SimulationParams, coding: Sequence[CodingSequence] = ()
) -> Iterator[SimulatedGenome]:
    """Generate ``params.n`` genomes in date order, one at a time (memory: a few small arrays
    per genome for the tree, never the sequences). With the reference's ``coding`` sequences
    (:func:`~sandgrain.strains.mutations.coding_sequences`), no substitution, nor in-frame indel of
    a plus-strand gene, makes a premature stop codon (purifying selection; the ``snp_cluster``
    and ``short_indel`` defects aside)."""
    params.check()
    reference = reference.upper()
    if len(reference) < 1000 or set(reference) - set("ACGT"):
        raise InputError("the reference must be at least 1,000 bases of A, C, G and T only")
    rng = np.random.default_rng(params.seed)
    ev = _Evolver(reference, params, rng, coding)
    start = dt.date.fromisoformat(params.start)
    days = np.sort(rng.integers(0, params.span_days + 1, params.n))
    parents = np.full(params.n, -1, np.int64)
    own: list[list[tuple]] = []
    clade_of: list[int] = []
    country_of = np.zeros(params.n, np.int8)
    n_true = np.zeros(params.n, np.int32)
    n_clades = 0
    for i in range(params.n):
        lag = rng.exponential(params.parent_lag_days)
        target = days[i] - lag
        lo = int(np.searchsorted(days, target - 7, "left"))
        hi = min(int(np.searchsorted(days, target, "right")), i)
        parent = int(rng.integers(lo, hi)) if hi > lo else -1
        parents[i] = parent
        # the parent's lineage state, replayed from the root
        chain = []
        j = parent
        while j >= 0:
            chain.append(j)
            j = int(parents[j])
        state = _State()
        for j in reversed(chain):
            for m in own[j]:
                _apply(state, m, reference)
        founder = bool(rng.random() < params.clade_prob)
        y0 = (days[parent] if parent >= 0 else 0) / 365.25
        mutations = ev.branch(state, y0, days[i] / 365.25, founder)
        own.append(mutations)
        if founder:
            n_clades += 1
            clade_of.append(n_clades)
        else:
            clade_of.append(clade_of[parent] if parent >= 0 else 0)
        if parent >= 0 and rng.random() < params.stay:
            country_of[i] = country_of[parent]
        else:
            country_of[i] = 0 if parent < 0 else int(rng.integers(len(COUNTRIES)))
        n_true[i] = len(state.subs)
        country, region = COUNTRIES[int(country_of[i])]
        date = start + dt.timedelta(days=int(days[i]))
        strain = f"SIM/{country.replace(' ', '')}-{i + 1:07d}/{date.year}"
        calls, defect, padded = _observe(state, ev, strain)
        sequence = genome_from_calls(reference, calls)
        if not padded:
            sequence = sequence.strip("N")
        yield SimulatedGenome(
            strain=strain,
            date=date.isoformat(),
            country=country,
            region=region,
            sequence=sequence,
            calls=calls,
            parent=None if parent < 0 else _strain_name(parent, country_of, days, start),
            clade=f"C{clade_of[i]}" if clade_of[i] else "root",
            defect=defect,
            n_true_substitutions=int(n_true[i]),
        )


def _strain_name(i: int, country_of, days, start: dt.date) -> str:
    country = COUNTRIES[int(country_of[i])][0].replace(" ", "")
    year = (start + dt.timedelta(days=int(days[i]))).year
    return f"SIM/{country}-{i + 1:07d}/{year}"


@contextlib.contextmanager
def _atomic(path: Path, mode: str = "wt", compress: bool = False):
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    opener = gzip.open if compress else open
    kwargs = {"compresslevel": 1} if compress else {}
    try:
        with opener(tmp, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


METADATA_COLUMNS = ("strain", "date", "region", "country", "length")
TRUTH_COLUMNS = (
    "strain", "parent", "clade", "defect", "n_true_substitutions",
    "substitutions", "deletions", "insertions", "missing",
)  # fmt: skip


def write_collection(
    reference: str,
    params: SimulationParams,
    out_dir: str | os.PathLike,
    *,
    compress: bool = False,
    reference_source: str = "reference",
    progress=None,
    coding: Sequence[CodingSequence] = (),
) -> dict[str, Any]:
    """Write a synthetic collection: ``sequences.fasta`` (``.fasta.gz`` with ``compress``),
    ``metadata.tsv``, the truth ``truth.tsv`` and ``simulation.json`` (parameters, provenance,
    counts), each file atomically. Returns what ``simulation.json`` holds."""
    params.check()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {out}: {exc.strerror}") from None
    fasta = out / ("sequences.fasta.gz" if compress else "sequences.fasta")
    counts = {"genomes": 0, "bad": 0, "clades": set(), "bases": 0}
    with (
        _atomic(fasta, compress=compress) as fa,
        _atomic(out / "metadata.tsv") as meta,
        _atomic(out / "truth.tsv") as truth,
    ):
        meta.write("\t".join(METADATA_COLUMNS) + "\n")
        truth.write("\t".join(TRUTH_COLUMNS) + "\n")
        for g in simulate(reference, params, coding):
            fa.write(f">{g.strain}\n")
            for i in range(0, len(g.sequence), 60):
                fa.write(g.sequence[i : i + 60] + "\n")
            meta.write(f"{g.strain}\t{g.date}\t{g.region}\t{g.country}\t{len(g.sequence)}\n")
            c = g.calls
            truth.write(
                "\t".join(
                    [g.strain, g.parent or "", g.clade, g.defect, str(g.n_true_substitutions)]
                    + [",".join(x) for x in (c.substitutions, c.deletions, c.insertions, c.missing)]
                )
                + "\n"
            )
            counts["genomes"] += 1
            counts["bad"] += bool(g.defect)
            counts["clades"].add(g.clade)
            counts["bases"] += len(g.sequence)
            if progress is not None:
                progress(counts["genomes"], params.n)
    summary = {
        "files": {
            "sequences": fasta.name,
            "metadata": "metadata.tsv",
            "truth": "truth.tsv",
        },
        "genomes": counts["genomes"],
        "bad_genomes": counts["bad"],
        "clades": len(counts["clades"]),
        "bases": counts["bases"],
        "provenance": provenance(
            "strains simulate",
            {**asdict(params), "coding_sequences": [c.name for c in coding]},
            [
                {
                    "source": reference_source,
                    "sha256": hashlib.sha256(reference.upper().encode()).hexdigest(),
                    "length": len(reference),
                }
            ],
        ),
    }
    with _atomic(out / "simulation.json") as fh:
        fh.write(json.dumps(summary, indent=1) + "\n")
    return summary


def read_truth(path: str | os.PathLike) -> Iterator[tuple[dict[str, str], TrueCalls]]:
    """The rows of a ``truth.tsv``: its columns, and the calls as :class:`TrueCalls`."""
    with open(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        for line in fh:
            row = dict(zip(header, line.rstrip("\n").split("\t"), strict=True))
            lists = {
                k: [x for x in row[k].split(",") if x]
                for k in ("substitutions", "deletions", "insertions", "missing")
            }
            yield row, TrueCalls(row["strain"], **lists)
