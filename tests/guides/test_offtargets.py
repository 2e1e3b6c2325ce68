"""The off-target search returns exactly what a plain scan of the whole genome returns."""

from __future__ import annotations

import random

import pytest
from conftest import CHRX_FASTA
from offtarget_reference import reference_offtargets

from sandgrain.errors import InputError, NotFoundError
from sandgrain.genome.store import add_genome
from sandgrain.guides.iupac import matches
from sandgrain.guides.search import search_offtargets
from sandgrain.guides.siteindex import SiteFamily, build_index, plan_partitions

SPCAS9 = SiteFamily(("NGG",), 20, "3")


def as_set(results):
    return {
        (s.guide, s.chrom, s.pos0, s.strand, s.mismatches, s.protospacer, s.pam, s.pam_pattern)
        for sites in results
        for s in sites
    }


def random_genome(rng: random.Random, sizes: list[int]) -> dict[str, str]:
    """Random chromosomes with soft-masked stretches, N runs, and repeated copies of a motif."""
    motif = "".join(rng.choice("ACGT") for _ in range(40))
    seqs = {}
    for ci, size in enumerate(sizes):
        parts, total = [], 0
        while total < size:
            r = rng.random()
            if r < 0.03:
                part = "N" * rng.randint(1, 60)
            elif r < 0.10:
                part = motif  # exact copies: guides from it hit many places
            elif r < 0.2:
                part = "".join(rng.choice("acgt") for _ in range(rng.randint(5, 300)))
            else:
                part = "".join(rng.choice("ACGT") for _ in range(rng.randint(5, 300)))
            parts.append(part)
            total += len(part)
        seqs[f"chr{ci + 1}"] = "".join(parts)[:size]
    return seqs


def guides_from(seqs: dict[str, str], fam: SiteFamily, n: int, rng: random.Random) -> list[str]:
    """Guides copied from the genome with 0–3 random substitutions, plus random ones."""
    guides = []
    names = list(seqs)
    while len(guides) < n:
        seq = seqs[rng.choice(names)].upper()
        if len(seq) <= fam.length:
            continue
        P = fam.pam_length
        p = rng.randrange(P, len(seq) - fam.length - P)
        g = list(seq[p : p + fam.length])
        pam = seq[p + fam.length : p + fam.length + P] if fam.pam_side == "3" else seq[p - P : p]
        if "N" in g or not matches(fam.pams[0], pam):
            continue
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            g[rng.randrange(len(g))] = rng.choice("ACGT")
        guides.append("".join(g))
    guides += ["".join(rng.choice("ACGT") for _ in range(fam.length)) for _ in range(3)]
    return guides


def write_fasta(path, seqs: dict[str, str]) -> str:
    with open(path, "w") as fh:
        for name, seq in seqs.items():
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 70):
                fh.write(seq[i : i + 70] + "\n")
    return str(path)


FAMILIES = {
    "SpCas9": SPCAS9,
    "SpCas9+NAG+NGA": SiteFamily(("NGG", "NAG", "NGA"), 20, "3"),
    "SaCas9": SiteFamily(("NNGRRT",), 21, "3"),
    "Cas12a": SiteFamily(("TTTV",), 23, "5"),
    "custom-16-NRG": SiteFamily(("NRG",), 16, "3"),
}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("seed", [1, 2])
def test_equals_plain_scan_on_random_genomes(local_store, tmp_path, family, seed):
    fam = FAMILIES[family]
    rng = random.Random(seed)
    # a chromosome shorter than one site, and partitions that cut chromosomes mid-way
    seqs = random_genome(rng, [30_000, 7, 12_345, 2_000])
    genome = add_genome(local_store, "rand", write_fasta(tmp_path / "r.fa", seqs))
    build_index(genome, fam, executor="serial", partition_bp=9_000)
    guides = guides_from(seqs, fam, 12, rng)
    for k in range(0, 6):
        got = as_set(search_offtargets(genome, guides, fam, k, executor="serial"))
        want = reference_offtargets(seqs, guides, list(fam.pams), fam.length, fam.pam_side, k)
        assert got == want, (family, k, sorted(got ^ want)[:5])
    assert any(hit[4] == 0 for hit in got)  # the copied guides find themselves
    assert len({hit[4] for hit in got}) >= 2  # and hits at other distances


def test_partitions_cover_every_window_once():
    chroms = [{"name": "a", "length": 25}, {"name": "b", "length": 7}, {"name": "c", "length": 40}]
    parts = plan_partitions(chroms, 10)
    covered = [(c, p) for part in parts for c, s, e in part for p in range(s, e)]
    assert sorted(covered) == sorted((c["name"], p) for c in chroms for p in range(c["length"]))
    assert all(sum(e - s for _, s, e in part) <= 10 for part in parts)


@pytest.fixture(scope="module")
def yeast_index(yeast):
    build_index(yeast, SPCAS9, executor="local:2", partition_bp=2_000_000)
    return yeast


@pytest.fixture(scope="module")
def yeast_seqs(yeast):
    return {c["name"]: yeast.sequence(c["name"], 0, c["length"]) for c in yeast.chromosomes}


def test_equals_plain_scan_on_yeast(yeast_index, yeast_seqs):
    rng = random.Random(5)
    guides = guides_from(yeast_seqs, SPCAS9, 12, rng)
    got = as_set(search_offtargets(yeast_index, guides, SPCAS9, 4, executor="serial"))
    want = reference_offtargets(yeast_seqs, guides, ["NGG"], 20, "3", 4)
    assert got == want and len(got) > len(guides)


@pytest.mark.parametrize("executor", ["local:2", "dask-local:2", "lithops:localhost"])
def test_same_hits_on_every_executor(yeast_index, yeast_seqs, executor):
    guides = guides_from(yeast_seqs, SPCAS9, 8, random.Random(9))
    serial = search_offtargets(yeast_index, guides, SPCAS9, 3, executor="serial")
    assert search_offtargets(yeast_index, guides, SPCAS9, 3, executor=executor) == serial


def test_repeat_guide_counts_are_not_capped(local_store, tmp_path):
    unit = "ACGTTGCATGCAGGTCAGTCAGG"  # a protospacer + NGG, repeated 5,000 times
    seqs = {"rep": unit * 5000 + "A" * 10}
    genome = add_genome(local_store, "rep", write_fasta(tmp_path / "rep.fa", seqs))
    build_index(genome, SPCAS9, executor="serial")
    (sites,) = search_offtargets(genome, [unit[:20]], SPCAS9, 0, executor="serial")
    assert len([s for s in sites if s.strand == "+"]) == 5000


@pytest.mark.slow
def test_equals_plain_scan_on_human_chrx(local_store):
    """70 Mb of real human sequence with Alu/L1 repeats and N runs."""
    genome = add_genome(local_store, "chrx", str(CHRX_FASTA))
    build_index(genome, SPCAS9, executor="local:2", partition_bp=16_000_000)
    (name,) = [c["name"] for c in genome.chromosomes]
    seqs = {name: genome.sequence(name, 0, genome.length(name))}
    guides = guides_from(seqs, SPCAS9, 2, random.Random(3))
    got = as_set(search_offtargets(genome, guides, SPCAS9, 3, executor="local:2"))
    assert got == reference_offtargets(seqs, guides, ["NGG"], 20, "3", 3)


def test_errors(yeast_index):
    with pytest.raises(InputError, match="has 19 bases"):
        search_offtargets(yeast_index, ["ACGTACGTACGTACGTACG"], SPCAS9, 3, executor="serial")
    with pytest.raises(InputError, match="contains 'N'"):
        search_offtargets(yeast_index, ["ACGTACGTACGTACGTACGN"], SPCAS9, 3, executor="serial")
    with pytest.raises(InputError, match="0–5"):
        search_offtargets(yeast_index, ["ACGTACGTACGTACGTACGT"], SPCAS9, 6, executor="serial")
    sa = SiteFamily(("NNGRRT",), 21, "3")
    with pytest.raises(NotFoundError, match="sandgrain genome index yeast"):
        search_offtargets(yeast_index, ["ACGTACGTACGTACGTACGTA"], sa, 3, executor="serial")


def test_a_larger_index_answers_a_subset_of_its_pams(local_store, tmp_path):
    rng = random.Random(8)
    seqs = random_genome(rng, [20_000, 9_000])
    genome = add_genome(local_store, "sub", write_fasta(tmp_path / "s.fa", seqs))
    build_index(genome, FAMILIES["SpCas9+NAG+NGA"], executor="serial", partition_bp=7_000)
    guides = guides_from(seqs, SPCAS9, 10, rng)
    for pams in (("NGG",), ("NAG",), ("NGA", "NGG")):
        fam = SiteFamily(pams, 20, "3")
        got = as_set(search_offtargets(genome, guides, fam, 4, executor="serial"))
        assert got == reference_offtargets(seqs, guides, list(pams), 20, "3", 4), pams
    with pytest.raises(NotFoundError, match="NRG"):
        search_offtargets(genome, guides, SiteFamily(("NRG",), 20, "3"), 2, executor="serial")
