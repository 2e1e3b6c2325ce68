"""The synthetic collection generator: its truth is exactly its FASTA, seeded, clock-like."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import numpy as np
import pytest
from conftest import DATA

from sandgrain.errors import InputError
from sandgrain.strains.drift import decimal_years
from sandgrain.strains.kmers import genome_from_calls
from sandgrain.strains.simulate import SimulationParams, read_truth, simulate, write_collection

SARS_REF = DATA / "pathogen/sars-cov-2-ncov-example/reference_seq.fasta"


@pytest.fixture(scope="module")
def reference() -> str:
    return "".join(SARS_REF.read_text().splitlines()[1:])


@pytest.fixture(scope="module")
def genomes(reference):
    return list(simulate(reference, SimulationParams(n=1500, seed=42, bad_fraction=0.05)))


def read_fasta(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    records, name, seq = {}, None, []
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                if name:
                    records[name] = "".join(seq)
                name, seq = line[1:].strip(), []
            else:
                seq.append(line.strip())
    records[name] = "".join(seq)
    return records


def test_the_truth_rebuilds_each_genome_exactly(genomes, reference):
    for g in genomes:
        rebuilt = genome_from_calls(reference, g.calls)
        assert len(rebuilt) == len(reference) + sum(
            len(i.split(":")[2]) for i in g.calls.insertions
        ) - sum(int(d[4:].split("-")[1]) - int(d[4:].split("-")[0]) + 1 for d in g.calls.deletions)
        assert g.sequence in (rebuilt, rebuilt.strip("N"))
        if g.calls.missing and g.calls.missing[0].startswith("1-"):
            assert g.sequence[0] == "N" or g.sequence == rebuilt.strip("N")


def test_indels_are_placed_where_no_aligner_can_shift_them(genomes, reference):
    n = 0
    for g in genomes:
        for d in g.calls.deletions:
            a, b = (int(x) for x in d[4:].split("-"))
            a0, b0 = a - 1, b  # 0-based half-open
            assert reference[a0 - 1] != reference[b0 - 1] and reference[a0] != reference[b0]
            subs = [int(s[1:-1]) for s in g.calls.substitutions]
            assert all(p < a - 12 or p > b + 12 for p in subs) or g.defect == "snp_cluster"
            n += 1
        for i in g.calls.insertions:
            _, p, bases = i.split(":")
            p = int(p)
            assert bases[-1] != reference[p - 1] and bases[0] != reference[p]
            n += 1
    assert n > 50


def test_missing_ranges_are_sorted_disjoint_and_hide_what_they_cover(genomes):
    for g in genomes:
        ranges = [tuple(int(x) for x in (m.split("-") * 2)[:2]) for m in g.calls.missing]
        assert all(b1 + 1 < a2 for (_, b1), (a2, _) in zip(ranges, ranges[1:], strict=False))
        for s in g.calls.substitutions:
            assert not any(a <= int(s[1:-1]) <= b for a, b in ranges)


def test_the_mix_of_genomes_is_realistic(genomes, reference):
    defects = Counter(g.defect for g in genomes)
    assert 0.03 < sum(v for k, v in defects.items() if k) / len(genomes) < 0.08
    assert set(defects) == {"", "many_n", "snp_cluster", "short_indel"}
    clustered = []
    for g in genomes:
        if g.defect == "many_n":
            assert g.sequence.count("N") / len(reference) > 0.05
        if g.defect == "snp_cluster":  # Nextclade flags 6 or more private mutations in 100 nt
            pos = sorted(int(s[1:-1]) for s in g.calls.substitutions)
            clustered.append(max(sum(1 for q in pos if p <= q < p + 100) for p in pos) >= 6)
    assert sum(clustered) >= 0.8 * len(clustered) > 5  # an N run may hide part of a cluster
    mixed = [s for g in genomes for s in g.calls.substitutions if s[-1] not in "ACGT"]
    assert 10 < len(mixed) < 120
    trimmed = sum(
        g.calls.missing[:1] != [] and g.calls.missing[0].startswith("1-") for g in genomes
    )
    assert trimmed > 0.9 * len(genomes)
    transitions = {("A", "G"), ("G", "A"), ("C", "T"), ("T", "C")}
    subs = [(s[0], s[-1]) for g in genomes for s in g.calls.substitutions if s[-1] in "ACGT"]
    assert 0.55 < sum(p in transitions for p in subs) / len(subs) < 0.8  # κ = 4: 2/3 (+ reversals)
    assert len({g.country for g in genomes}) >= 6 and len({g.clade for g in genomes}) > 3


def test_the_clock_ticks_at_the_planted_rate(genomes):
    years = decimal_years([g.date for g in genomes])
    true = np.array([g.n_true_substitutions for g in genomes])
    rate = np.polyfit(years, true, 1)[0]
    assert 15 < rate < 35  # one tree: shared ancestry spreads the slope around 24
    assert genomes[0].date == "2019-12-26" or genomes[0].date > "2019-12-26"
    assert [g.date for g in genomes] == sorted(g.date for g in genomes)
    strains = {g.strain for g in genomes}
    assert all(g.parent is None or g.parent in strains for g in genomes)


def test_seeded_and_written_atomically(reference, tmp_path):
    params = SimulationParams(n=40, seed=9)
    one = write_collection(reference, params, tmp_path / "a", compress=True)
    write_collection(reference, params, tmp_path / "b")
    other = write_collection(reference, SimulationParams(n=40, seed=10), tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "metadata.tsv", "sequences.fasta.gz", "simulation.json", "truth.tsv",
    ]  # fmt: skip
    a, b = read_fasta(tmp_path / "a/sequences.fasta.gz"), read_fasta(tmp_path / "b/sequences.fasta")
    assert a == b and a != read_fasta(tmp_path / "c/sequences.fasta")
    assert (tmp_path / "a/truth.tsv").read_text() == (tmp_path / "b/truth.tsv").read_text()
    assert one["genomes"] == 40 and other["genomes"] == 40
    meta = (tmp_path / "a/metadata.tsv").read_text().splitlines()
    assert meta[0] == "strain\tdate\tregion\tcountry\tlength" and len(meta) == 41
    saved = json.loads((tmp_path / "a/simulation.json").read_text())
    assert saved["provenance"]["parameters"]["seed"] == 9
    assert len(saved["provenance"]["inputs"][0]["sha256"]) == 64
    for row, calls in read_truth(tmp_path / "a/truth.tsv"):
        assert a[row["strain"]].strip("N") == genome_from_calls(reference, calls).strip("N")


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(n=0), "1 or more"),
        (dict(n=5, start="26/12/2019"), "YYYY-MM-DD"),
        (dict(n=5, dropout_prob=2.0), "probability"),
        (dict(n=5, rate=-1), "negative"),
    ],
)
def test_bad_parameters_are_refused(reference, bad, message):
    with pytest.raises(InputError, match=message):
        next(simulate(reference, SimulationParams(**bad)))


def test_the_reference_must_be_plain_bases():
    with pytest.raises(InputError, match="A, C, G and T"):
        next(simulate("ACGN" * 500, SimulationParams(n=1)))


def test_purifying_selection_keeps_premature_stops_out(reference):
    """With the reference's coding sequences, no lineage gains a premature stop codon (their
    truth called with the same caller as the collection's has none, the planted defects aside);
    without them, neutral evolution over two years makes many."""
    from strains_fixtures import cds
    from strains_fixtures import reference as aligned_reference

    from sandgrain.strains.align import align
    from sandgrain.strains.mutations import call_mutations

    def stops(genomes) -> int:
        with_stop = 0
        for g in genomes:
            if g.defect:
                continue
            sequence = genome_from_calls(reference, g.calls).strip("N")
            ref = aligned_reference()
            calls = call_mutations(ref, cds(), align(ref, sequence), g.strain)
            with_stop += bool(calls.stop_codons)
        return with_stop

    params = SimulationParams(n=150, seed=5, span_days=730)
    assert stops(simulate(reference, params, cds())) == 0
    assert stops(simulate(reference, params)) > 20  # the same tree without selection
