"""PCR primers around the cut: Primer3's pair on the genome, and each primer's genome sites
counted by the chunked scan exactly as a plain string search counts them."""

from __future__ import annotations

import random

import pytest

from sandgrain.errors import InputError
from sandgrain.genome.store import add_genome
from sandgrain.guides import primers as primers_module
from sandgrain.guides.primers import (
    MAX_LISTED_SITES,
    MAX_MISMATCHES,
    MIN_DISTANCE,
    SEED,
    count_primer_sites,
    design_primers,
    design_primers_batch,
)

COMP = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def rc(s: str) -> str:
    return s.translate(COMP)[::-1]


def mismatches(a: str, b: str) -> int:
    return sum(x != y or x == "N" for x, y in zip(a, b, strict=True))


def reference_sites(seqs: dict[str, str], primers: list[str]) -> list[list[tuple]]:
    """The sites each primer binds, by plain string search: on the plus strand where its last
    SEED bases occur and the bases before them differ in at most MAX_MISMATCHES places; on the
    minus strand the same for its reverse complement, whose first SEED bases must occur. The
    whole primer must lie on the chromosome. Genome order."""
    out = []
    for p in primers:
        n, r = len(p), rc(p)
        found = []
        for name, raw in seqs.items():
            s = raw.upper()
            i = s.find(p[-SEED:])
            while i >= 0:
                start = i + SEED - n
                if start >= 0 and mismatches(s[start:i], p[: n - SEED]) <= MAX_MISMATCHES:
                    found.append((name, start, "+"))
                i = s.find(p[-SEED:], i + 1)
            i = s.find(r[:SEED])
            while i >= 0:
                if i + n <= len(s) and mismatches(s[i + SEED : i + n], r[SEED:]) <= MAX_MISMATCHES:
                    found.append((name, i, "-"))
                i = s.find(r[:SEED], i + 1)
        order = list(seqs)
        found.sort(key=lambda t: (order.index(t[0]), t[1], t[2]))
        out.append(found)
    return out


def assert_same(got: dict, want: list[list[tuple]]):
    assert got["counts"] == [len(w) for w in want]
    assert got["sites"] == [w[:MAX_LISTED_SITES] for w in want]


def mutate(seq: str, n: int, rng: random.Random, where: range | None = None) -> str:
    s = list(seq)
    for i in rng.sample(list(where or range(len(s))), n):
        s[i] = rng.choice([b for b in "ACGT" if b != s[i].upper()])
    return "".join(s)


def planted_genome(rng: random.Random):
    """Random chromosomes holding primers' copies on both strands with 0–3 mismatches (in the
    seed too), soft-masked or with an N, and cut off by chromosome ends."""
    sizes = [40_000, 9_000, 2_500]
    seqs = {f"chr{i + 1}": list(rng.choice("ACGT") for _ in range(n)) for i, n in enumerate(sizes)}
    flat = "".join("".join(v) for v in seqs.values())
    primers = []
    for _ in range(24):
        n = rng.randint(18, 25)
        if rng.random() < 0.7:
            at = rng.randrange(len(flat) - n)
            primers.append(flat[at : at + n])
        else:
            primers.append("".join(rng.choice("ACGT") for _ in range(n)))
    primers.append(primers[0])  # the same primer twice
    primers.append(primers[1][:-1] + rng.choice("ACGT"))  # a primer sharing a 5' part
    names = list(seqs)
    for p in primers[:20]:
        for _ in range(rng.randint(1, 14)):
            n = len(p)
            kind = rng.random()
            if kind < 0.5:
                copy = mutate(p, rng.choice([0, 1, 2, 3]), rng, range(n - SEED))
            elif kind < 0.7:
                copy = mutate(p, 1, rng, range(n - SEED, n))  # a seed mismatch: no site
            elif kind < 0.8:
                i = rng.randrange(n - SEED)
                copy = p[:i] + "N" + p[i + 1 :]
            else:
                copy = mutate(p, rng.choice([0, 1, 2]), rng, range(n - SEED)).lower()
            if rng.random() < 0.5:
                copy = rc(copy)
            chrom = seqs[rng.choice(names)]
            edge = rng.random()
            if edge < 0.1:  # cut off at the chromosome's start or end
                cut = rng.randint(1, n - SEED)
                if rng.random() < 0.5:
                    chrom[: n - cut] = copy[cut:]
                else:
                    chrom[-(n - cut) :] = copy[: n - cut]
                continue
            at = rng.randrange(len(chrom) - n)
            chrom[at : at + n] = copy
    for _ in range(25):  # a repeat: more sites than are listed
        n, copy = len(primers[2]), primers[2]
        copy = mutate(copy, rng.choice([0, 1, 2]), rng, range(n - SEED))
        chrom = seqs[rng.choice(names)]
        at = rng.randrange(len(chrom) - n)
        chrom[at : at + n] = rc(copy) if rng.random() < 0.5 else copy
    for name in seqs:
        s = seqs[name]
        for _ in range(5):  # N runs
            at, run = rng.randrange(len(s) - 30), rng.randint(1, 30)
            s[at : at + run] = ["N"] * run
    return {k: "".join(v) for k, v in seqs.items()}, primers


def write_fasta(path, seqs: dict[str, str]) -> str:
    with open(path, "w") as fh:
        for name, seq in seqs.items():
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                fh.write(seq[i : i + 60] + "\n")
    return str(path)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from sandgrain.storage import Store

    tmp = tmp_path_factory.mktemp("primers")
    seqs, primers = planted_genome(random.Random(12))
    store = Store(str(tmp / "store"))
    genome = add_genome(store, "planted", write_fasta(tmp / "planted.fa", seqs))
    seqs = {c["name"]: genome.sequence(c["name"], 0, c["length"]) for c in genome.chromosomes}
    return genome, seqs, primers


def test_counts_equal_a_plain_search_on_a_planted_genome(planted, monkeypatch):
    genome, seqs, primers = planted
    want = reference_sites(seqs, primers)
    assert sum(len(w) for w in want) > 3 * len(primers)  # the planted copies are there
    assert any(len(w) > MAX_LISTED_SITES for w in want)
    assert any(s[2] == "-" for w in want for s in w)
    monkeypatch.setattr(primers_module, "CHUNK_BP", 997)  # many chunk borders
    for task_bp in (None, 3_000):
        assert_same(count_primer_sites(genome, primers, task_bp=task_bp), want)


def test_counts_are_the_same_on_local_processes(planted):
    genome, seqs, primers = planted
    got = count_primer_sites(genome, primers, executor="local:2", task_bp=7_000)
    assert_same(got, reference_sites(seqs, primers))


def test_counts_equal_a_plain_search_on_random_primers_and_sequences(tmp_path):
    from sandgrain.storage import Store

    rng = random.Random(3)
    # a small alphabet-skewed genome: many seed hits, mismatches decide
    seqs = {"a": "".join(rng.choice("AACGT") for _ in range(20_000)), "b": "ACGT" * 50}
    genome = add_genome(Store(str(tmp_path / "s")), "r", write_fasta(tmp_path / "r.fa", seqs))
    primers = []
    for _ in range(40):
        n = rng.randint(15, 30)
        at = rng.randrange(len(seqs["a"]) - n)
        primers.append(mutate(seqs["a"][at : at + n], rng.choice([0, 2, 3]), rng))
    primers = [p if set(p) <= set("ACGT") else p.replace("N", "A") for p in primers]
    primers += ["ACGTACGTACGTACGTACGT", "CGTACGTACGTACGTACG"]
    assert_same(count_primer_sites(genome, primers), reference_sites(seqs, primers))


def test_primers_are_checked():
    with pytest.raises(InputError, match="A, C, G, T"):
        primers_module.check_primers(["ACGTACGTACGTACGTNN"])
    with pytest.raises(InputError):
        primers_module.check_primers(["ACGTACGT"])


# -- yeast ------------------------------------------------------------------------------------
CUTS = [("V", 116_500), ("XV", 565_000), ("II", 280_000), ("chrIV", 1_000_000)]


@pytest.fixture(scope="module")
def yeast_seqs(yeast):
    return {c["name"]: yeast.sequence(c["name"], 0, c["length"]) for c in yeast.chromosomes}


def test_primers_flank_the_cut_on_yeast(yeast, yeast_seqs):
    results = design_primers_batch(yeast, CUTS)
    for (chrom, cut), r in zip(CUTS, results, strict=True):
        assert r is not None, (chrom, cut)
        name = yeast.resolve_chrom(chrom)
        left_end = r["left_start"] + len(r["left"])
        right_start = r["right_end"] - len(r["right"])
        assert yeast_seqs[name][r["left_start"] : left_end].upper() == r["left"]
        assert rc(yeast_seqs[name][right_start : r["right_end"]].upper()) == r["right"]
        assert left_end <= cut - MIN_DISTANCE and right_start >= cut + MIN_DISTANCE
        assert r["product_size"] == r["right_end"] - r["left_start"]
        assert 150 <= r["product_size"] <= 250
        assert 57 <= r["tm_left"] <= 63 and 57 <= r["tm_right"] <= 63
        assert r["unique"] is True and r["left_sites"] == r["right_sites"] == 1
    assert results[0] == design_primers(yeast, *CUTS[0])


def test_primer_sites_on_yeast_equal_a_plain_search(yeast, yeast_seqs):
    rng = random.Random(8)
    designed = [r for r in design_primers_batch(yeast, CUTS, check_unique=False) if r]
    primers = [r[side] for r in designed for side in ("left", "right")]
    # telomeric X/Y' elements and near copies of genome 20-mers (1–2 mismatches at the 5' end)
    primers += [yeast_seqs["I"][a : a + 22].upper() for a in (1_000, 3_000, 228_000)]
    primers += [yeast_seqs["XII"][a : a + 20].upper() for a in (460_000, 1_070_000)]
    for _ in range(4):
        name = rng.choice(list(yeast_seqs))
        at = rng.randrange(len(yeast_seqs[name]) - 20)
        primers.append(mutate(yeast_seqs[name][at : at + 20].upper(), rng.choice([1, 2]), rng,
                              range(5)))  # fmt: skip
    primers = [p for p in primers if set(p) <= set("ACGT")]
    want = reference_sites(yeast_seqs, primers)
    assert max(len(w) for w in want) > 5  # a repeated primer is among them
    assert_same(count_primer_sites(yeast, primers), want)


def test_unchecked_design_and_impossible_cuts(yeast):
    r = design_primers(yeast, "V", 116_500, check_unique=False)
    assert r["left_sites"] is None and r["right_sites"] is None and r["unique"] is None
    assert design_primers(yeast, "I", 20) is None  # too close to the chromosome's start
    with pytest.raises(InputError, match="product size"):
        design_primers(yeast, "V", 116_500, product=(100, 120))
    with pytest.raises(InputError, match="not inside"):
        design_primers(yeast, "V", 10**9)
