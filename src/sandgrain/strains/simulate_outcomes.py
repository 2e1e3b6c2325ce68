"""Clinical outcomes for a synthetic genome collection: planted causal mutations, and confounding.

:func:`simulate_outcomes` takes the folder ``sandgrain strains simulate`` wrote (``metadata.tsv``
and ``truth.tsv``, plain TSV) and gives every genome a free-text patient status, as GISAID's
"Patient status" is written, so that the association of mutations with outcome can be checked
against a known truth. The model, on the logit scale::

    logit P(severe) = baseline + country_log_or·[country = Brazil] + per_year·years
                      + log_or·(number of causal mutations the genome carries)

- **Causal mutations** (``causal`` of them) are *planted*: substitutions (a transition of the
  reference base) at seeded positions that no genome of the simulation has a mutation near
  (within 12 bases), written into the genomes (``sequences.fasta`` and ``truth.tsv`` are
  rewritten) of a random ``causal_freq`` share of them, independently of the tree, as
  convergent mutations arise; a genome that does not read the position (N) does not get it.
- **Confounding**, the temporal and geographic kind Sokhansanj & Rosen (2022) warn about in
  GISAID-based outcome studies: one lineage — the genomes carrying one substitution of the
  simulation, the one of 15–45 % frequency whose carriers are sampled latest relative to the
  others — is sampled mostly in one country (``Brazil``, probability ``lineage_share``;
  other genomes ``other_share``) whose sequenced cases are more often severe (a sampling and
  reporting bias: ``country_log_or``), and outcomes grow more severe with time (``per_year``)
  while the lineage is more common later. The lineage's mutation has no effect of its own, yet
  it is associated with outcome unless date and country are accounted for.
- The country column is drawn again for that (the simulation's own countries follow its tree),
  among five countries; ``region`` follows it.
- Status texts: a severe genome gets one of "Hospitalized", "Deceased", "ICU",
  "Hospitalized, ICU"; a mild one "Mild", "Outpatient", "Home isolation", "Asymptomatic",
  "Released"; ``unknown_share`` of genomes get "unknown" or "Live" (which the phenotypes
  domain cannot place on either side of hospitalisation).

The folder's ``metadata.tsv`` is rewritten with the new ``country``, ``region`` and status
column (and ``sequences.fasta``, ``truth.tsv`` with the planted mutations), and
``outcomes.json`` holds the truth (causal mutations, the confounded mutation and
country), the parameters and the provenance. The same seed gives the same files.

References
----------
.. [1] Sokhansanj BA, Rosen GL. "Mapping data to deep understanding: making the most of the
   deluge of SARS-CoV-2 genome sequences." mSystems 7:e00035-22, 2022.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..provenance import provenance, sha256_file
from .collection import read_fasta
from .kmers import genome_from_calls
from .simulate import TrueCalls, read_truth

__all__ = ["OutcomeParams", "simulate_outcomes"]

COUNTRIES = (
    ("Brazil", "South America"),
    ("Germany", "Europe"),
    ("India", "Asia"),
    ("USA", "North America"),
    ("South Africa", "Africa"),
)
SEVERE = ("Hospitalized", "Deceased", "ICU", "Hospitalized, ICU")
MILD = ("Mild", "Outpatient", "Home isolation", "Asymptomatic", "Released")
UNKNOWN = ("unknown", "Live")
_TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}


@dataclass(frozen=True)
class OutcomeParams:
    """The knobs of :func:`simulate_outcomes` (module docstring)."""

    seed: int = 0
    causal: int = 2
    log_or: float = 2.0
    baseline: float = -2.0
    country_log_or: float = 2.5
    per_year: float = 1.0
    lineage_share: float = 0.8
    other_share: float = 0.15
    unknown_share: float = 0.05
    causal_freq: float = 0.25
    column: str = "Patient status"

    def check(self) -> None:
        for name in ("lineage_share", "other_share", "unknown_share", "causal_freq"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} is a probability, not {getattr(self, name)}")
        if self.causal < 0:
            raise InputError("the number of causal mutations is 0 or more")
        if not self.column.strip() or "\t" in self.column:
            raise InputError(f"{self.column!r} is not a column name")


def _read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise InputError(f"no such file: {path} (a folder written by `sandgrain strains simulate`)")
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    return header, rows


@contextlib.contextmanager
def _atomic(path: Path):
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def simulate_outcomes(
    folder: str | os.PathLike, reference: str, params: OutcomeParams
) -> dict[str, Any]:
    """Plant causal substitutions in a simulated collection, draw a confounded country and a
    patient status for every genome; returns what ``outcomes.json`` holds (module docstring).
    ``reference`` is the sequence the collection was simulated from."""
    params.check()
    folder = Path(folder)
    reference = reference.upper()
    header, rows = _read_tsv(folder / "metadata.tsv")
    t_header, _ = _read_tsv(folder / "truth.tsv")
    fasta = folder / "sequences.fasta"
    if not fasta.is_file():
        raise InputError(f"no {fasta} (simulate without --gzip to plant mutations)")
    for need in ("strain", "date"):
        if need not in header:
            raise InputError(f"{folder / 'metadata.tsv'}: no {need!r} column")
    col = {c: i for i, c in enumerate(header)}
    truth = {t.strain: (row, t) for row, t in read_truth(folder / "truth.tsv")}
    strains = [r[col["strain"]] for r in rows]
    absent = [s for s in strains if s not in truth]
    if absent:
        raise InputError(f"{len(absent)} genome(s) of metadata.tsv are not in truth.tsv")
    n = len(strains)
    if n < 50:
        raise InputError(f"{n} genomes are too few to plant outcomes (50 or more)")
    rng = np.random.default_rng(params.seed)
    # the confounded lineage: a substitution of the tree carried by 15-45 % of the genomes,
    # whose carriers are sampled latest relative to the others
    carriers: dict[str, list[int]] = {}
    near = np.zeros(len(reference) + 2, dtype=bool)  # positions with a mutation within 12
    for g, s in enumerate(strains):
        t = truth[s][1]
        for m in t.substitutions:
            carriers.setdefault(m, []).append(g)
        for p in _positions(t):
            near[max(p - 12, 0) : p + 13] = True
    try:
        dates = np.array([dt.date.fromisoformat(r[col["date"]]).toordinal() for r in rows])
    except ValueError as exc:
        raise InputError(f"metadata.tsv: a date that is not YYYY-MM-DD ({exc})") from None
    years = (dates - dates.min()) / 365.25
    best, lineage = -np.inf, None
    for m, gs in sorted(carriers.items()):
        if 0.15 * n <= len(gs) <= 0.45 * n:
            inside = np.zeros(n, dtype=bool)
            inside[gs] = True
            lag = years[inside].mean() - years[~inside].mean()
            if lag > best:
                best, lineage = lag, m
    if lineage is None:
        raise InputError("no substitution is carried by 15-45 % of the genomes to be a lineage")
    in_lineage = np.zeros(n, dtype=bool)
    in_lineage[carriers[lineage]] = True
    # the planted substitutions: clean positions, random genomes
    free = np.nonzero(~near[1000 : len(reference) - 1000])[0] + 1000
    if len(free) < params.causal:
        raise InputError("the reference has no room for the planted mutations")
    positions = sorted(int(p) for p in rng.choice(free, params.causal, replace=False))
    planted = [f"{reference[p - 1]}{p}{_TRANSITION[reference[p - 1]]}" for p in positions]
    gets = rng.random((params.causal, n)) < params.causal_freq
    dose = np.zeros(n)
    for k, p in enumerate(positions):
        for g in np.nonzero(gets[k])[0]:
            t = truth[strains[g]][1]
            if _reads(t, p):
                t.substitutions.append(planted[k])
                dose[g] += 1
            else:
                gets[k, g] = False
    for g in np.nonzero(gets.any(axis=0))[0]:
        t = truth[strains[g]][1]
        t.substitutions.sort(key=lambda m: int(m[1:-1]))
    # countries: the lineage mostly in the confounding country; then the outcome
    share = np.where(in_lineage, params.lineage_share, params.other_share)
    country_idx = np.where(rng.random(n) < share, 0, rng.integers(1, len(COUNTRIES), n))
    logit = (
        params.baseline
        + params.country_log_or * (country_idx == 0)
        + params.per_year * years
        + params.log_or * dose
    )
    severe = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    unknown = rng.random(n) < params.unknown_share
    texts = np.where(
        unknown,
        np.array(UNKNOWN)[rng.integers(0, len(UNKNOWN), n)],
        np.where(
            severe,
            np.array(SEVERE)[rng.integers(0, len(SEVERE), n)],
            np.array(MILD)[rng.integers(0, len(MILD), n)],
        ),
    )
    _rewrite_genomes(folder, fasta, reference, truth, t_header, set(np.nonzero(gets.any(0))[0]),
                     strains)  # fmt: skip
    out_header = [c for c in header if c not in ("country", "region", params.column)]
    out_header += ["region", "country", params.column]
    with _atomic(folder / "metadata.tsv") as fh:
        fh.write("\t".join(out_header) + "\n")
        for g, r in enumerate(rows):
            country, region = COUNTRIES[int(country_idx[g])]
            values = {**dict(zip(header, r, strict=False)), "country": country, "region": region}
            values[params.column] = str(texts[g])
            fh.write("\t".join(values.get(c, "") for c in out_header) + "\n")
    known = ~unknown
    summary = {
        "causal": planted,
        "confounded": lineage,
        "confounding_country": COUNTRIES[0][0],
        "column": params.column,
        "genomes": n,
        "severe": int((severe & known).sum()),
        "mild": int((~severe & known).sum()),
        "unknown": int(unknown.sum()),
        "carriers": {**{m: int(gets[k].sum()) for k, m in enumerate(planted)},
                     lineage: int(in_lineage.sum())},
        "provenance": provenance(
            "strains simulate-outcomes",
            asdict(params),
            [{"source": str(folder / "truth.tsv"), "sha256": sha256_file(folder / "truth.tsv")}],
        ),
    }  # fmt: skip
    with _atomic(folder / "outcomes.json") as fh:
        fh.write(json.dumps(summary, indent=1) + "\n")
    return summary


def _ranges(items: list[str]) -> list[tuple[int, int]]:
    out = []
    for r in items:
        a, _, b = r.removeprefix("del:").partition("-")
        out.append((int(a), int(b or a)))
    return out


def _positions(t: TrueCalls) -> list[int]:
    """Reference positions a genome's true mutations touch (indels: both ends)."""
    out = [int(m[1:-1]) for m in t.substitutions]
    for a, b in _ranges(t.deletions):
        out += [a, b]
    out += [int(i.split(":")[1]) for i in t.insertions]
    return out


def _reads(t: TrueCalls, p: int) -> bool:
    """Whether the genome reads reference position ``p`` (not missing, not deleted)."""
    return not any(a <= p <= b for a, b in _ranges(t.missing) + _ranges(t.deletions))


def _rewrite_genomes(folder, fasta, reference, truth, t_header, changed, strains) -> None:
    """Write the genomes that got a planted mutation again (from their truth, as the simulator
    does: N ends cut unless the genome was written padded), and the truth."""
    names = {strains[g] for g in changed}
    with _atomic(folder / ".sequences.planted") as out:
        for name, seq in read_fasta(fasta):
            if name in names:
                padded = seq.startswith("N") or seq.endswith("N")
                seq = genome_from_calls(reference, truth[name][1])
                if not padded:
                    seq = seq.strip("N")
            out.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                out.write(seq[i : i + 60] + "\n")
    os.replace(folder / ".sequences.planted", fasta)
    with _atomic(folder / "truth.tsv") as out:
        out.write("\t".join(t_header) + "\n")
        for row, t in truth.values():
            row = dict(row)
            for kind in ("substitutions", "deletions", "insertions", "missing"):
                row[kind] = ",".join(getattr(t, kind))
            out.write("\t".join(row.get(c, "") for c in t_header) + "\n")
