"""Nearest strains: the kernel and the whole search against a plain all-pairs computation.

The reference here reads the calls' text (never the index) and applies the definitions of
:mod:`sandgrain.strains.nearest` position by position; for genomes that differ by substitutions
and missing data only, the distance is also checked to be the Hamming distance of the rebuilt
sequences over the positions both cover.
"""

from __future__ import annotations

import gzip
import json
import random

import pytest
from strains_fixtures import GENOMES, METADATA, REF_FASTA, REF_GB, genomes, reference_text

from sandgrain.errors import InputError
from sandgrain.fanout import TaskBudget
from sandgrain.storage import Store
from sandgrain.strains import nearest as nearest_mod
from sandgrain.strains.collection import Collection, add_genomes
from sandgrain.strains.index import build_part
from sandgrain.strains.kmers import genome_from_calls
from sandgrain.strains.mutations import Calls
from sandgrain.strains.nearest import nearest, query_from_calls, rank, rank_many
from sandgrain.strains.query import calls_from_mutations, calls_from_sequences

# -- the plain reference ---------------------------------------------------------------------


def coverage(c: Calls, length: int) -> set[int]:
    if c.error:
        return set()
    cov = set(range(1, length + 1))
    for r in c.missing:
        a, _, b = r.partition("-")
        cov -= set(range(int(a), int(b or a) + 1))
    for m in c.mixed:
        cov.discard(int(m[1:-1]))
    return cov


def events(c: Calls, cov: set[int]) -> dict[tuple[int, str], object]:
    ev: dict[tuple[int, str], object] = {}
    for s in c.substitutions:
        ev[(int(s[1:-1]), "base")] = s[-1]
    for d in c.deletions:
        a, _, b = d[4:].partition("-")
        ev[(int(a), "base")] = ("del", int(b or a) - int(a) + 1)
    for i in c.insertions:
        _, p, seq = i.split(":", 2)
        ev[(int(p), "ins")] = seq
    return {k: v for k, v in ev.items() if max(k[0], 1) in cov}


def plain_distance(q: Calls, g: Calls, length: int, metric: str = "covered") -> tuple[int, int]:
    cq, cg = coverage(q, length), coverage(g, length)
    both = cq & cg
    eq, eg = events(q, cq), events(g, cg)
    if metric == "covered":
        keys = set(eq) | set(eg)
        d = sum(1 for key in keys if max(key[0], 1) in both and eq.get(key) != eg.get(key))
        return d, len(both)
    sq = {p: v for (p, kind), v in eq.items() if kind == "base" and isinstance(v, str)}
    sg = {p: v for (p, kind), v in eg.items() if kind == "base" and isinstance(v, str)}
    deleted = set()
    for (p, kind), v in eq.items():
        if kind == "base" and isinstance(v, tuple):
            deleted |= set(range(p, p + v[1]))
    unknown = {p for p in sg if p not in cq or p in deleted}
    agree = sum(1 for p in sg if p not in unknown and sq.get(p) == sg[p])
    disagree = sum(1 for p in sg if p not in unknown and p in sq and sq[p] != sg[p])
    return len(sg) + len(sq) - 2 * agree - disagree - len(unknown), len(both)


def plain_rank(q: Calls, pool: list[Calls], length: int, k: int, metric="covered", qc=None):
    rows = []
    for g in pool:
        if g.error or (qc is not None and g.qc.get("status") not in qc):
            continue
        d, cov = plain_distance(q, g, length, metric)
        rows.append((d, -cov, g.strain))
    rows.sort()
    top = rows[:k]
    ties = sum(1 for r in rows if r[0] == top[-1][0]) if len(top) == k else 0
    return [(s, d, -c) for d, c, s in top], ties


# -- random calls ------------------------------------------------------------------------------


def random_calls(rng: random.Random, ref: str, n: int, subs_only: bool = False) -> list[Calls]:
    L = len(ref)
    pool = sorted(rng.sample(range(2, L - 2), 40))  # shared sites make near neighbours
    out = []
    for i in range(n):
        c = Calls(strain=f"g{i:03d}")
        used: set[int] = set()
        for p in rng.sample(pool, rng.randint(0, 12)) + rng.sample(range(1, L + 1), 3):
            if p in used:
                continue
            used.add(p)
            alt = rng.choice([b for b in "ACGT" if b != ref[p - 1]])
            c.substitutions.append(f"{ref[p - 1]}{p}{alt}")
        if not subs_only:
            for _ in range(rng.randint(0, 2)):
                a = rng.randint(1, L - 10)
                b = a + rng.randint(0, 5)
                if used & set(range(a, b + 1)):
                    continue
                used |= set(range(a, b + 1))
                c.deletions.append(f"del:{a}-{b}")
            for _ in range(rng.randint(0, 1)):
                p = rng.choice(pool)
                c.insertions.append(f"ins:{p}:{rng.choice(['A', 'GG', 'TCA'])}")
            free = [p for p in rng.sample(range(1, L + 1), 3) if p not in used]
            for p in free[: rng.randint(0, 2)]:
                c.mixed.append(f"{ref[p - 1]}{p}Y")
                used.add(p)
        missing = []
        if rng.random() < 0.7:
            missing.append(f"1-{rng.randint(1, 15)}")
        for _ in range(rng.randint(0, 2)):
            a = rng.randint(20, L - 40)
            missing.append(f"{a}-{a + rng.randint(0, 30)}")
        if rng.random() < 0.5:
            missing.append(f"{L - rng.randint(0, 20)}-{L}")
        # a genome's events at its own missing positions are what an aligner never reports
        cov = coverage(Calls("x", missing=missing), L)
        c.substitutions = [s for s in c.substitutions if int(s[1:-1]) in cov]
        c.deletions = [d for d in c.deletions if int(d[4:].split("-")[0]) in cov]
        c.mixed = [m for m in c.mixed if int(m[1:-1]) in cov]
        gaps = sorted(set(range(1, L + 1)) - cov)  # as a caller reports them: merged ranges
        c.missing = []
        for p in gaps:
            if c.missing and int(c.missing[-1].split("-")[1]) == p - 1:
                c.missing[-1] = f"{c.missing[-1].split('-')[0]}-{p}"
            else:
                c.missing.append(f"{p}-{p}")
        c.alignment_start, c.alignment_end = 1, L
        if rng.random() < 0.03:
            c = Calls(strain=c.strain, error="could not align")
        c.qc = {"status": rng.choice(["good", "good", "mediocre", "bad"])}
        out.append(c)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("metric", ["covered", "nextclade"])
def test_kernel_equals_the_plain_distance_on_random_genomes(seed, metric):
    rng = random.Random(seed)
    ref = "".join(rng.choice("ACGT") for _ in range(300))
    pool = random_calls(rng, ref, 80)
    index = build_part(pool, len(ref))
    for q in random_calls(rng, ref, 6):
        if q.error:
            continue
        query = query_from_calls(q, len(ref))
        got = rank(index, query, len(pool), metric=metric)
        want, _ = plain_rank(q, pool, len(ref), len(pool), metric)
        assert got == want
        for k in (1, 3, 10):
            assert rank(index, query, k, metric=metric) == want[:k]
        # QC filter and the largest distance
        got = rank(index, query, 10, metric=metric, qc=("good",), max_distance=6)
        want, _ = plain_rank(q, pool, len(ref), len(pool), metric, qc={"good"})
        assert got == [w for w in want if w[1] <= 6][:10]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("states", ["int16", "int32"])
def test_queries_in_blocks_rank_as_one_at_a_time(seed, states, monkeypatch):
    rng = random.Random(100 + seed)
    ref = "".join(rng.choice("ACGT") for _ in range(300))
    index = build_part(random_calls(rng, ref, 120), len(ref))
    queries = [query_from_calls(q, len(ref)) for q in random_calls(rng, ref, 12) if not q.error]
    if states == "int32":  # a partition whose states do not fit 16 bits takes the int32 kernel
        monkeypatch.setattr(nearest_mod, "_state16", lambda ix: None)
    # blocks of 5, and a short last one
    monkeypatch.setattr(nearest_mod, "BLOCK", 5)
    monkeypatch.setattr(nearest_mod, "BLOCK16", 5)
    for kw in ({}, {"qc": ("good", "bad")}, {"max_distance": 7}):
        assert rank_many(index, queries, 9, **kw) == [rank(index, q, 9, **kw) for q in queries]


def test_distance_is_hamming_over_covered_positions_for_substitutions():
    rng = random.Random(7)
    ref = "".join(rng.choice("ACGT") for _ in range(250))
    pool = [c for c in random_calls(rng, ref, 40, subs_only=True) if not c.error]
    index = build_part(pool, len(ref))
    seqs = {c.strain: genome_from_calls(ref, c) for c in pool}
    for q in pool[:8]:
        query = query_from_calls(q, len(ref))
        for strain, d, cov in rank(index, query, len(pool)):
            a, b = seqs[q.strain], seqs[strain]
            both = [i for i in range(len(ref)) if a[i] != "N" and b[i] != "N"]
            assert cov == len(both)
            assert d == sum(1 for i in both if a[i] != b[i])


# -- whole searches over real and simulated collections ----------------------------------------


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    from sandgrain.genome.store import add_genome

    root = tmp_path_factory.mktemp("nearest")
    store = Store(str(root / "store"))
    add_genome(store, "MN908947", str(REF_FASTA), annotation=str(REF_GB))
    add_genomes(
        store, "ncov", reference="MN908947", fasta=GENOMES, metadata=METADATA, executor="serial"
    )
    return store


def with_n_runs(seq: str, rng: random.Random) -> str:
    s = list(seq)
    for _ in range(3):
        a = rng.randrange(100, len(s) - 600)
        s[a : a + rng.randint(50, 500)] = "N" * len(s[a : a + rng.randint(50, 500)])
    return "".join(s)


def check_answers(answers, queries, pool, length, k, metric="covered"):
    by_name = {c.strain: c for c in pool}
    for a, q in zip(answers, queries, strict=True):
        want, ties = plain_rank(q, pool, length, k, metric)
        got = [(n["strain"], n["distance"], n["covered"]) for n in a["neighbours"]]
        assert got == want, a["query"]
        assert a["ties_at_k"] == ties
        for n in a["neighbours"]:  # the listed differences are the distance, one by one
            g = by_name[n["strain"]]
            if metric == "covered":
                assert len(set(n["query_only"]) | set(n["strain_only"])) >= n["distance"]
                positions = {x for x in n["query_only"] + n["strain_only"]}
                assert len(positions) == len(n["query_only"]) + len(n["strain_only"])
            assert set(n["shared"]) <= set(q.substitutions + q.deletions + q.insertions)
            assert set(n["strain_only"]) <= set(g.substitutions + g.deletions + g.insertions)


def test_nearest_on_the_shared_genomes_is_exact(shared_store):
    coll = Collection.open(shared_store, "ncov")
    pool = [c for batch in coll.iter_calls() for c in batch]
    rng = random.Random(3)
    picked = rng.sample(list(genomes()), 5)
    records = [(f"q{i}", with_n_runs(seq, rng)) for i, (_, seq) in enumerate(picked)]
    queries = list(calls_from_sequences(coll, records))
    queries.append(calls_from_mutations("C241T,C3037T,A23403G,C14408T", reference_text(), "q-list"))
    for metric in ("covered", "nextclade"):
        answers = nearest(shared_store, [coll], queries, k=10, metric=metric)
        check_answers(answers, queries, pool, len(reference_text()), 10, metric)
    answers = nearest(shared_store, [coll], queries[:1], k=10)
    assert answers[0]["neighbours"][0]["date"] and answers[0]["neighbours"][0]["country"]
    assert answers[0]["searched"] == 418


def test_the_search_splits_itself_and_gives_the_same_answer(shared_store):
    coll = Collection.open(shared_store, "ncov")
    rng = random.Random(11)
    records = [(f"q{i}", with_n_runs(s, rng)) for i, (_, s) in enumerate(rng.sample(genomes(), 3))]
    queries = list(calls_from_sequences(coll, records))
    plain = nearest(shared_store, [coll], queries, k=7)
    for executor in ("serial", "local:2", "dask-local:2", "lithops:localhost"):
        stats: dict = {}
        split = nearest(
            shared_store, [coll], queries, k=7, executor=executor,
            budget=TaskBudget(seconds=0), chunk_rows=40, stats=stats,
        )  # fmt: skip
        assert split == plain
        # one partition planned; with no time to spare every chunk after the first splits off
        assert stats["tasks_planned"] == 1 and stats["tasks_answered"] > 5
    pool = [c for batch in coll.iter_calls() for c in batch]
    check_answers(plain, queries, pool, len(reference_text()), 7)


def test_simulated_collection_with_missing_data(tmp_path):
    from sandgrain.genome.store import add_genome
    from sandgrain.strains.simulate import SimulationParams, write_collection

    ref = reference_text()
    info = write_collection(
        ref, SimulationParams(n=300, seed=5, dropout_prob=0.4), tmp_path / "sim"
    )
    assert info["genomes"] == 300
    store = Store(str(tmp_path / "store"))
    add_genome(store, "MN908947", str(REF_FASTA), annotation=str(REF_GB))
    # two collections in two adds, searched together with partitions of 60 genomes
    fasta = tmp_path / "sim" / "sequences.fasta"
    records = fasta.read_text().split(">")[1:]
    for name, part in (("simA", records[:150]), ("simB", records[150:280])):
        f = tmp_path / f"{name}.fa"
        f.write_text("".join(">" + r for r in part))
        add_genomes(store, name, reference="MN908947", fasta=f, batch=37, executor="serial")
    colls = [Collection.open(store, n) for n in ("simA", "simB")]
    held_out = [
        (r.split("\n", 1)[0].split()[0], r.split("\n", 1)[1].replace("\n", ""))
        for r in records[280:]
    ]
    rng = random.Random(2)
    queries = list(
        calls_from_sequences(colls[0], [(n, with_n_runs(s, rng)) for n, s in held_out[:8]])
    )
    answers = nearest(store, colls, queries, k=12, partition_genomes=60)
    pool = [c for coll in colls for batch in coll.iter_calls() for c in batch]
    check_answers(answers, queries, pool, len(ref), 12)
    assert {n["collection"] for a in answers for n in a["neighbours"]} <= {"simA", "simB"}


def test_a_collection_in_another_store_is_read_in_place(shared_store, s3_store, tmp_path):
    """A lab's private collection on its own (S3) store, searched with the shared one."""
    from sandgrain.genome.store import add_genome

    add_genome(s3_store, "MN908947", str(REF_FASTA), annotation=str(REF_GB))
    private = tmp_path / "private.fa"
    rng = random.Random(5)
    lab = [(f"lab/{i}", with_n_runs(s, rng)) for i, (_, s) in enumerate(rng.sample(genomes(), 12))]
    private.write_text("".join(f">{n}\n{s}\n" for n, s in lab))
    add_genomes(s3_store, "lab", reference="MN908947", fasta=private, executor="serial")
    colls = [Collection.open(shared_store, "ncov"), Collection.open(s3_store, "lab")]
    queries = list(calls_from_sequences(colls[0], lab[:2]))
    answers = nearest(shared_store, colls, queries, k=5)
    for a in answers:
        first = a["neighbours"][0]
        assert (first["strain"], first["collection"], first["distance"]) == (a["query"], "lab", 0)
    pool = [c for coll in colls for batch in coll.iter_calls() for c in batch]
    # the same strain can sit in both collections (the lab's copy of a shared genome): the
    # reference ranking keeps both
    for a, q in zip(answers, queries, strict=True):
        want, _ = plain_rank(q, pool, len(reference_text()), 5)
        assert [n["distance"] for n in a["neighbours"]] == [d for _, d, _ in want]
    assert not any(k.startswith("strains/lab") for k in shared_store.list("strains"))


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli_with_ncov(cli):
    code, _, err = cli(
        "genome", "add", "MN908947", "--fasta", REF_FASTA, "--annotation", REF_GB, "-q"
    )
    assert code == 0, err
    code, _, err = cli(
        "strains", "add", "--collection", "ncov", "--reference", "MN908947", "--fasta", GENOMES,
        "--metadata", METADATA, "-q",
    )  # fmt: skip
    assert code == 0, err
    return cli


def test_cli_nearest_json_tsv_and_errors(cli_with_ncov, tmp_path):
    cli = cli_with_ncov
    name, seq = genomes()[10]
    q = tmp_path / "q.fa.gz"
    q.write_bytes(gzip.compress(f">sample1\n{seq}\n".encode()))
    code, out, err = cli("strains", "nearest", "-c", "ncov", "--fasta", q, "-k", "3", "-q")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["query"] == "sample1" and len(doc["neighbours"]) == 3
    assert doc["neighbours"][0] == {**doc["neighbours"][0], "strain": name, "distance": 0}
    assert doc["provenance"]["parameters"]["k"] == 3
    code, out, err = cli(
        "strains", "nearest", "-c", "ncov", "--mutations", "C241T,A23403G", "--format", "tsv",
        "-k", "2", "-q",
    )  # fmt: skip
    assert code == 0, err
    head, *rows = out.splitlines()
    assert head.split("\t")[:4] == ["query", "rank", "strain", "distance"] and len(rows) >= 2
    blocks = tmp_path / "blocks.fa"  # lower case, in blocks of ten as some exporters write
    blocks.write_text(
        ">sample1\n" + " ".join(seq[i : i + 10].lower() for i in range(0, len(seq), 10))
    )
    code, out, err = cli("strains", "nearest", "-c", "ncov", "--fasta", blocks, "-k", "1", "-q")
    assert code == 0 and json.loads(out)["neighbours"][0]["distance"] == 0, err
    short, protein = tmp_path / "short.fa", tmp_path / "protein.fa"
    short.write_text(">s1\nACGT\n")
    protein.write_text(">p1\nMEEPQSDPSVEPPLSQETFSDLWKLLPENNVLSPLPSQAMDDLMLSPDDIEQWFTEDPGP\n")
    for args, msg in (
        (("-c", "nope", "--fasta", q), "no collection 'nope'"),
        (("-c", "ncov"), "--fasta FILE or as --mutations"),
        (("-c", "ncov", "--mutations", "G241T"), "the reference has C at 241"),
        (("-c", "ncov", "--mutations", "C241T", "-k", "0"), "k is 1 to 1000"),
        (("-c", "ncov", "--mutations", "C241T", "--distance", "hamming"), "the distance is one of"),
        (("-c", "ncov", "--mutations", "C241T", "--qc", "great"), "QC statuses are"),
        (("-c", "ncov", "--fasta", tmp_path / "none.fa"), "no such file"),
        (("-c", "ncov", "--fasta", short), "has 4 unambiguous bases; a query genome needs"),
        (("-c", "ncov", "--fasta", protein), "is not a nucleotide sequence: 'E' at character 2"),
    ):
        code, out, err = cli("strains", "nearest", *args, "-q")
        assert code != 0 and msg in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and not out


def test_query_mutation_lists_are_checked():
    ref = reference_text()
    c = calls_from_mutations("a23403g, del:11288-11296 ins:22204:GAG", ref)
    assert c.substitutions == ["A23403G"] and c.deletions == ["del:11288-11296"]
    assert c.insertions == ["ins:22204:GAG"] and not c.missing
    for bad in ("", "X1Y", "C241T,C241A", "del:11288-11296,A11290G", "C99999T"):
        with pytest.raises(InputError):
            calls_from_mutations(bad, ref)


def test_cli_access_sets_and_shows_the_tier(cli_with_ncov):
    cli = cli_with_ncov
    code, out, err = cli("strains", "access", "-c", "ncov")
    assert code == 0 and json.loads(out)["tier"] == "public", err
    code, out, err = cli(
        "strains", "access", "-c", "ncov", "--tier", "controlled", "--subject", "alice"
    )
    assert code == 0, err
    assert json.loads(out) == {"collection": "ncov", "tier": "controlled", "subjects": ["alice"]}
    code, out, _ = cli("strains", "access", "-c", "ncov")
    assert json.loads(out)["subjects"] == ["alice"]
    for args, msg in (
        (("-c", "ncov", "--tier", "secret"), "the tier is one of"),
        (("-c", "ncov", "--tier", "public", "--subject", "bob"), "controlled collection only"),
        (("-c", "nope", "--tier", "public"), "no collection 'nope'"),
    ):
        code, out, err = cli("strains", "access", *args)
        assert code != 0 and msg in err and len(err.strip().splitlines()) == 1, err
