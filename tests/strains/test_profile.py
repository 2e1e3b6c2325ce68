"""Profile search: the expression language, and counts that equal a plain per-genome evaluation
of the calls with Kleene's three-valued logic, on the shared genomes and on a synthetic
collection full of missing data."""

from __future__ import annotations

import json
import random
from itertools import combinations

import pytest
import typer
from conftest import SARS_FASTA, SARS_GBK
from strains_fixtures import GENOMES, METADATA

from sandgrain.errors import InputError
from sandgrain.genome.store import add_genome
from sandgrain.storage import Store
from sandgrain.strains.collection import Collection, add_genomes
from sandgrain.strains.profile import (
    MAX_DEPTH,
    MAX_TERMS,
    _context,
    parse_profile,
    profile_search,
)
from sandgrain.strains.simulate import SimulationParams, write_collection


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """The 418 shared genomes (``ncov``, in two calls parts) and 240 synthetic genomes with
    many N runs and ambiguity codes (``sim``)."""
    root = tmp_path_factory.mktemp("profile")
    st = Store(str(root / "store"))
    add_genome(st, "sars-cov-2", str(SARS_FASTA), annotation=str(SARS_GBK))
    add_genomes(st, "ncov", reference="sars-cov-2", fasta=GENOMES, metadata=METADATA,
                batch=250, executor="serial")  # fmt: skip
    reference = Collection.open(st, "ncov").reference()
    params = SimulationParams(n=240, seed=7, dropout_prob=0.6, mixed_prob=0.4, indel_rate=3.0,
                              clade_prob=0.05, bad_fraction=0.1, span_days=200)  # fmt: skip
    write_collection(reference, params, root / "sim")
    add_genomes(st, "sim", reference="sars-cov-2", fasta=root / "sim/sequences.fasta",
                metadata=root / "sim/metadata.tsv", batch=100, executor="serial")  # fmt: skip
    return st


@pytest.fixture(scope="module")
def ncov(store) -> Collection:
    return Collection.open(store, "ncov")


@pytest.fixture(scope="module")
def sim(store) -> Collection:
    return Collection.open(store, "sim")


# -- the plain twin ----------------------------------------------------------------------------
def _uncovered(calls, length: int) -> set[int]:
    if calls.error:
        return set(range(1, length + 1))
    out = set()
    for r in calls.missing:
        a, _, b = r.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    out.update(int(m[1:-1]) for m in calls.mixed)
    return out


def _events(calls) -> list[tuple[str, int]]:
    """(text, position) of every nucleotide event; an insertion sits at the base it follows."""
    out = [(s, int(s[1:-1])) for s in calls.substitutions]
    out += [(d, int(d[4:].split("-")[0])) for d in calls.deletions]
    out += [(i, int(i.split(":")[1])) for i in calls.insertions]
    return out


def plain_literal(text: str, calls, genes: dict, length: int):
    """True, False or None (unknown) for one literal of one genome, straight from its calls."""
    gap = _uncovered(calls, length)
    seen = {t for t, p in _events(calls) if max(p, 1) not in gap}  # an event under N: no evidence
    tokens = set(calls.aa_substitutions) | set(calls.aa_deletions)
    if text.startswith("region:"):
        a, b = map(int, text[7:].split("-"))
        has = any(a <= p <= b and max(p, 1) not in gap for _, p in _events(calls))
        needs = range(a, b + 1)
    elif text.endswith(":*"):
        gene = text[:-2]
        has = any(t.split(":")[0] == gene for t in tokens)
        needs = [int(p) + 1 for p in genes[gene]]
    elif ":" in text and not text.startswith(("del:", "ins:")):
        gene, change = text.split(":")
        has = text in tokens
        codon = int(change[1:-1])
        needs = [int(p) + 1 for p in genes[gene][3 * (codon - 1) : 3 * codon]]
    elif text.startswith("del:"):
        a, b = map(int, text[4:].split("-"))
        has, needs = text in seen, range(a, b + 1)
    elif text.startswith("ins:"):
        has, needs = text in seen, [max(int(text.split(":")[1]), 1)]
    else:
        has, needs = text in seen, [int(text[1:-1])]
    if has:
        return True
    return None if any(p in gap for p in needs) else False


def plain_eval(node, values):
    op = node[0]
    if op == "lit":
        return values[node[1]]
    if op == "not":
        v = plain_eval(node[1], values)
        return None if v is None else not v
    vs = [plain_eval(x, values) for x in node[1]]
    if op == "and":
        return False if False in vs else (None if None in vs else True)
    return True if True in vs else (None if None in vs else False)


def plain_search(coll: Collection, expression: str, qc=("good", "mediocre", "bad")) -> dict:
    """Everything a search answers, genome by genome."""
    ctx = _context(coll)
    profile = parse_profile(expression, ctx)
    meta = {r["strain"]: r for r in coll.metadata().to_pylist()}
    rows = []
    for batch in coll.iter_calls():
        for c in batch:
            status = "error" if c.error else c.qc.get("status", "bad")
            if status not in qc:
                continue
            vals = [plain_literal(lit.text, c, ctx.genes, ctx.length) for lit in profile.literals]
            rows.append((c.strain, plain_eval(profile.tree, vals), vals))
    return {"profile": profile, "rows": rows, "meta": meta}


def check_against_plain(coll, expression, answer=None):
    truth = plain_search(coll, expression)
    got = answer or profile_search([coll], expression, by=("week", "month", "country", "region"))
    values = [v for _, v, _ in truth["rows"]]
    t, f, u = values.count(True), values.count(False), values.count(None)
    assert (got["count"], got["unknown"], got["searched"]) == (t, u, len(values)), expression
    assert got["frequency"] == (t / (t + f) if t + f else None)
    # breakdowns by month and country, genome by genome
    for group in ("month", "country"):
        want: dict = {}
        for strain, v, _ in truth["rows"]:
            row = truth["meta"].get(strain, {})
            label = row.get("date", "")[:7] if group == "month" else row.get(group, "")
            if group == "month" and not (len(label) == 7 and label[4] == "-"):
                label = ""
            acc = want.setdefault(label, [0, 0, 0])
            acc[0] += v is True
            acc[1] += v is None
            acc[2] += 1
        have = {d[group]: [d["count"], d["unknown"], d["searched"]] for d in got["by"][group]}
        assert have == want, (expression, group)
    for group in ("week", "month", "country", "region"):
        items = got["by"][group]
        assert sum(d["count"] for d in items) == got["count"]
        assert sum(d["searched"] for d in items) == got["searched"]
    assert got["histogram"] == got["by"]["week"]
    return truth, got


# -- the language ------------------------------------------------------------------------------
def test_precedence_words_and_canonical_text(ncov):
    ctx = _context(ncov)
    p = parse_profile("C241T | A23403G & !C14408T", ctx)
    assert p.tree == ("or", [("lit", 0), ("and", [("lit", 1), ("not", ("lit", 2))])])
    assert p.text() == "C241T | (A23403G & !C14408T)"
    q = parse_profile("(c241t OR A23403G) and not C14408T && C241T", ctx)
    assert q.tree == ("and", [("or", [("lit", 0), ("lit", 1)]), ("not", ("lit", 2)), ("lit", 0)])
    assert [lit.text for lit in q.literals] == ["C241T", "A23403G", "C14408T"]
    kinds = parse_profile(
        "del:11288-11296 | ins:22204:gag | s:d614g | S:del69 | ORF1AB:* | gene:N | 21563-25384 "
        "| region:241",
        ctx,
    ).literals
    assert [(lit.kind, lit.text) for lit in kinds] == [
        ("event", "del:11288-11296"), ("event", "ins:22204:GAG"), ("aa", "S:D614G"),
        ("aa", "S:H69-"), ("gene", "orf1ab:*"), ("gene", "N:*"),
        ("region", "region:21563-25384"), ("region", "region:241-241"),
    ]  # fmt: skip
    assert kinds[2].cover == ((23402, 23404),)  # the codon of S:614


@pytest.mark.parametrize(
    "expr, message",
    [
        ("", "empty"),
        ("C241T &", "ends where a mutation"),
        ("C241T A23403G", "join terms"),
        ("(C241T | A23403G", "misses a ')'"),
        ("C241T)", "unexpected ')'"),
        ("& C241T", "'&' at character 1"),
        ("G241T", "the reference has C at 241"),
        ("C241C", "not a change"),
        ("C99999T", "positions are 1 to 29,903"),
        ("S:A614G", "S has D at codon 614"),
        ("Spike:D614G", "no gene 'Spike'"),
        ("S:D9999G", "codons 1 to"),
        ("del:20-10", "ends before"),
        ("hello", "not a mutation"),
        (" | ".join(["C241T"] * (MAX_TERMS + 1)), f"at most {MAX_TERMS}"),
        ("(" * (MAX_DEPTH + 1) + "C241T" + ")" * (MAX_DEPTH + 1), "deeper than"),
        ("!" * (MAX_DEPTH + 1) + "C241T", "deeper than"),
    ],
)
def test_bad_expressions_are_refused_clearly(ncov, expr, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_profile(expr, _context(ncov))


def test_limits_are_inclusive(ncov):
    ctx = _context(ncov)
    assert parse_profile("(" * MAX_DEPTH + "C241T" + ")" * MAX_DEPTH, ctx).tree == ("lit", 0)
    assert len(parse_profile(" | ".join(["C241T"] * MAX_TERMS), ctx).tree[1]) == MAX_TERMS


# -- evaluation against the plain twin ---------------------------------------------------------
@pytest.mark.parametrize(
    "expr",
    [
        "C14408T & A23403G",
        "S:D614G & !C241T",
        "A23403G & C14408T & !G25563T",
        "!(C241T | C3037T) | ORF3a:Q57H",
        "S:* & !orf1ab:*",
        "region:21563-25384 | del:11288-11296",
        "ORF8:L84S | !(C8782T & T28144C)",
        "gene:N & 28881-28883",
    ],
)
def test_shared_genomes_equal_the_plain_evaluation(ncov, expr):
    truth, got = check_against_plain(ncov, expr)
    assert got["count"] + got["unknown"] > 0  # not a vacuous comparison


def test_kleene_logic_on_a_genome_with_missing_data(ncov):
    """A genome that does not reach 241 is unknown for C241T and for its negation, but known
    for ``C241T | A23403G`` when it carries A23403G."""
    truth = plain_search(ncov, "C241T | A23403G")
    gap = [s for s, v, vals in truth["rows"] if vals[0] is None and vals[1] is True]
    assert gap, "the shared genomes have trimmed starts"
    got = profile_search([ncov], "!C241T")
    plain_not = plain_search(ncov, "!C241T")
    assert got["unknown"] == sum(v is None for _, v, _ in plain_not["rows"]) > 0


def test_synthetic_collection_with_many_gaps_equals_the_plain_evaluation(sim):
    rng = random.Random(3)
    literals: list[str] = []
    for batch in sim.iter_calls():
        for c in batch:
            literals += c.substitutions[:3] + c.deletions[:1] + c.insertions[:1]
            literals += c.aa_substitutions[:1] + c.aa_deletions[:1]
    literals = sorted(set(literals))
    assert any(x.startswith("ins:") for x in literals) and any(
        x.startswith("del:") for x in literals
    )
    literals += ["S:*", "gene:ORF1ab", "region:2000-2600", "100-29800", "C241T"]

    def expression(depth=0):
        r = rng.random()
        if depth > 2 or r < 0.35:
            return rng.choice(literals)
        if r < 0.5:
            return "!" + expression(depth + 1)
        op = rng.choice([" & ", " | ", " and ", " or "])
        return "(" + op.join(expression(depth + 1) for _ in range(rng.randint(2, 3))) + ")"

    unknowns = 0
    for _ in range(12):
        _, got = check_against_plain(sim, expression())
        unknowns += got["unknown"]
    assert unknowns > 0


def test_partitions_collections_and_executors_add_up(ncov, sim):
    one = profile_search([ncov], "S:D614G", partition_genomes=1)
    assert one["provenance"]["parameters"]["tasks"] == 2  # the two calls parts
    whole = profile_search([ncov], "S:D614G")
    assert {k: whole[k] for k in ("count", "unknown", "searched", "by", "histogram")} == {
        k: one[k] for k in ("count", "unknown", "searched", "by", "histogram")
    }
    both = profile_search([ncov, sim], "C241T & !A23403G", by=["country"], executor="local:2")
    parts = [profile_search([c], "C241T & !A23403G") for c in (ncov, sim)]
    assert both["count"] == sum(p["count"] for p in parts)
    assert (
        both["searched"]
        == sum(p["searched"] for p in parts)
        == 418
        + 240
        - sum(n for c in (ncov, sim) for s, n in c.meta["statuses"].items() if s == "error")
    )
    assert [c["collection"] for c in both["collections"]] == ["ncov", "sim"]
    assert both["provenance"]["inputs"][1]["source"].startswith("strains/sim@")


def test_qc_filters_what_is_searched(sim):
    everyone = profile_search([sim], "C241T")
    good = profile_search([sim], "C241T", qc=["good"])
    assert good["searched"] < everyone["searched"]
    truth = plain_search(sim, "C241T", qc=("good",))
    assert good["searched"] == len(truth["rows"])
    with pytest.raises(InputError, match="QC statuses"):
        profile_search([sim], "C241T", qc=["error"])
    with pytest.raises(InputError, match="breakdowns"):
        profile_search([sim], "C241T", by=["planet"])


# -- similar profiles --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "coll_name, expr",
    [
        ("ncov", "C241T & C3037T & C14408T & A23403G & G25563T & ORF8:L84S"),
        ("sim", None),  # the most frequent substitutions of the synthetic genomes
    ],
)
def test_similar_profiles_equal_brute_force(store, coll_name, expr):
    coll = Collection.open(store, coll_name)
    if expr is None:
        from collections import Counter

        seen = Counter(s for b in coll.iter_calls() for c in b for s in c.substitutions)
        expr = " | ".join(s for s, _ in seen.most_common(7))
    got = profile_search([coll], expr, similar=True)["similar"]
    truth = plain_search(coll, expr)
    names = [lit.text for lit in truth["profile"].literals]
    assert got["mutations"] == names
    m = len(names)
    for entry in got["subsets"]:
        size = entry["size"]
        counts = {}
        for combo in combinations(range(m), size):
            carriers = sum(all(vals[i] is True for i in combo) for _, _, vals in truth["rows"])
            covered = sum(all(vals[i] is not None for i in combo) for _, _, vals in truth["rows"])
            counts[tuple(names[i] for i in combo)] = (carriers, covered)
        ranked = sorted(counts.items(), key=lambda kv: -kv[1][0])
        best = [(tuple(b["mutations"]), (b["genomes"], b["covered"])) for b in entry["best"]]
        for subset, value in best:
            assert counts[subset] == value
        assert [v[0] for _, v in best] == [v[0] for _, v in ranked[: len(best)]]
    # exact patterns: genomes by the set of the query's mutations they carry
    from collections import Counter

    patterns = Counter(
        tuple(names[i] for i in range(m) if vals[i] is True) for _, _, vals in truth["rows"]
    )
    for p in got["patterns"]:
        assert patterns[tuple(p["mutations"])] == p["genomes"]
    assert got["patterns"][0]["genomes"] == max(patterns.values())


def test_similar_refuses_more_than_sixteen_mutations(ncov):
    ref = ncov.reference()
    subs = [f"C{p}T" for p in range(1, len(ref) + 1) if ref[p - 1] == "C"][:17]
    with pytest.raises(InputError, match="at most 16"):
        profile_search([ncov], " | ".join(subs), similar=True)


# -- the command -------------------------------------------------------------------------------
@pytest.fixture
def cli(store):
    """``strains profile`` mounted as the strains CLI mounts it, on the test store."""
    from typer.testing import CliRunner

    from sandgrain.cli.strains_profile import profile_cmd
    from sandgrain.config import Settings

    root = typer.Typer()

    @root.callback()
    def settings(ctx: typer.Context) -> None:
        ctx.obj = Settings.from_env({}, store_url=store.url, executor="serial")

    root.command("profile")(profile_cmd)
    runner = CliRunner()
    return lambda *args: runner.invoke(root, ["profile", *args], catch_exceptions=True)


def test_profile_command_json_and_tsv(cli, ncov):
    done = cli("-c", "ncov", "C14408T & A23403G", "--by", "week", "--by", "country", "-q")
    assert done.exit_code == 0, done.output
    got = json.loads(done.stdout)
    assert set(got["by"]) == {"week", "country"}
    assert got["count"] == profile_search([ncov], "C14408T & A23403G")["count"]
    tsv = cli("-c", "ncov", "S:D614G", "--format", "tsv", "--similar", "-q")
    assert tsv.exit_code == 0, tsv.output
    lines = [line.split("\t") for line in tsv.stdout.splitlines()]
    assert lines[0] == ["group", "value", "count", "unknown", "searched", "frequency"]
    assert lines[1][:2] == ["all", "S:D614G"] and int(lines[1][2]) > 0
    assert {row[0] for row in lines[2:]} >= {"collection", "month", "country", "histogram"}
    bad = cli("-c", "ncov", "C241T &&", "-q")
    assert bad.exit_code != 0 and isinstance(bad.exception, InputError)


def test_coverage_index_equals_brute_force_at_every_boundary():
    """Leading, trailing, short and long interior gaps, probed at and around their edges."""
    import numpy as np

    from sandgrain.strains.index import Partition, build_part
    from sandgrain.strains.mutations import Calls
    from sandgrain.strains.profile import _SHORT, _build_postings

    rng = random.Random(5)
    length = 5000
    genomes = []
    for g in range(120):
        cuts = sorted(rng.sample(range(1, length + 1), 2 * rng.randint(0, 4)))
        ranges = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)]
        if rng.random() < 0.4:
            ranges.append((1, rng.randint(1, 300)))
        if rng.random() < 0.4:
            ranges.append((rng.randint(length - 300, length), length))
        if rng.random() < 0.2:
            a = rng.randint(1, length - _SHORT - 10)
            ranges.append((a, a + _SHORT + rng.randint(-1, 1)))  # at the short/long edge
        mixed = [f"A{rng.randint(1, length)}R" for _ in range(rng.randint(0, 2))]
        genomes.append(Calls(strain=f"g{g}", missing=[f"{a}-{b}" for a, b in ranges], mixed=mixed))
    part = Partition("t", "v", 0, (), build_part(genomes, length))
    post = _build_postings(part)
    gaps = [_uncovered(c, length) for c in genomes]
    edges = sorted({int(x) for x in part.index.ms_start} | {int(x) for x in part.index.ms_end})
    probes = [(p + d, p + d + w) for p in edges for d in (-1, 0) for w in (0, 2)]
    probes += [(1, 1), (length, length), (1, length)]
    for a, b in probes:
        if not 1 <= a <= b <= length:
            continue
        want = np.array([any(p in gap for p in range(a, b + 1)) for gap in gaps])
        assert np.array_equal(post.uncovered([(a, b)]), want), (a, b)
    two = [(100, 110), (4000, 4010)]
    want = np.array([any(p in gap for a, b in two for p in range(a, b + 1)) for gap in gaps])
    assert np.array_equal(post.uncovered(two), want)
