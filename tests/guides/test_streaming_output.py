"""Off-target sites streamed from columns, batch by batch (``guides/output.py``), are the plain
writers' output byte for byte, whatever the batches; memory follows a batch, not the hits."""

from __future__ import annotations

import gc
import io
import json
import random
import re
import tracemalloc

import pyarrow.parquet as pq
import pytest
from offtarget_reference import reference_offtargets
from test_offtargets import FAMILIES, as_set, guides_from, random_genome, write_fasta

from sandgrain.cli import main
from sandgrain.fanout import SerialExecutor, open_executor
from sandgrain.genome.store import add_genome
from sandgrain.guides import search as search_module
from sandgrain.guides.batch import ThreadExecutor, search_executor
from sandgrain.guides.design import score_search, search_guides
from sandgrain.guides.formats import (
    OFFTARGET_COLUMNS,
    to_casoffinder,
    to_json,
    to_offtargets_tsv,
)
from sandgrain.guides.nucleases import custom_nuclease, get_nuclease
from sandgrain.guides.output import FORMATS, write_offtargets
from sandgrain.guides.request import ScoreRequest
from sandgrain.guides.search import search_table
from sandgrain.guides.siteindex import SiteFamily, build_index

SPCAS9 = get_nuclease("SpCas9")
FAMILY = SiteFamily.of(SPCAS9)
TY1 = ("I", 160596, 164187)  # YAR009C, a Ty1 element: ~30 copies in the genome


@pytest.fixture(scope="module")
def indexed(yeast):
    build_index(yeast, FAMILY, executor="serial", partition_bp=4_000_000)
    return yeast


def ty1_guides(genome) -> list[str]:
    """Protospacers of NGG sites in a Ty1 element (dozens of sites each at 4 mismatches), one
    twice, plus a guide with no site."""
    seq = genome.sequence(*TY1).upper()
    starts = [m.start() for m in re.finditer(r"(?=[ACGT]{21}GG)", seq)]
    guides = [seq[s : s + 20] for s in starts[::37]][:10]
    return [*guides, guides[1], "GGTGAAGGTGGTGCTTACCC"]


def request_of(guides, *, listed=None, exclude=False, nuclease=SPCAS9) -> ScoreRequest:
    limits = [4] * len(guides)
    limits[2], limits[4] = 2, 0  # a guide line's own mismatch column
    return ScoreRequest(
        guides,
        nuclease=nuclease,
        max_mismatches=4,
        guide_mismatches=limits,
        max_offtargets_listed=listed,
        list_offtargets=True,
        exclude_on_target=exclude,
    )


def plain(genome, request: ScoreRequest, fmt: str) -> str:
    """The output as the plain writers make it: Python objects per site, one string."""
    search = search_guides(genome, request, executor="serial")
    if fmt == "casoffinder":
        listed = request.max_offtargets_listed
        sites = [search.sites(i, listed) for i in range(len(search.guides))]
        return to_casoffinder(sites, search.guides, search.nuclease)
    doc = score_search(search, command="guides offtargets")
    return to_offtargets_tsv(doc) if fmt == "tsv" else to_json(doc)


def streamed(genome, request: ScoreRequest, fmt: str, **options) -> str:
    out = io.StringIO()
    write_offtargets(genome, request, fmt, stream=out, **{"executor": "serial", **options})
    return out.getvalue()


def same_document(a: str, b: str) -> bool:
    """Equal text but for the provenance record's time (seconds apart)."""
    return re.sub(r'"time": "[^"]*"', "", a) == re.sub(r'"time": "[^"]*"', "", b)


CASES = [
    (fmt, listed, exclude)
    for fmt in ("casoffinder", "tsv", "json")
    for listed, exclude in ((None, False), (3, False), (None, True))
    if not (fmt == "casoffinder" and exclude)  # Cas-OFFinder's output lists every site
]


@pytest.mark.parametrize(("fmt", "listed", "exclude"), CASES)
def test_streamed_output_equals_the_plain_writers(indexed, fmt, listed, exclude):
    request = request_of(ty1_guides(indexed), listed=listed, exclude=exclude)
    want = plain(indexed, request, fmt)
    assert want.count("\n") > (15 if listed else 150)  # many sites, a batch of a guide each
    one_batch = streamed(indexed, request, fmt)
    many = streamed(indexed, request, fmt, batch_hits=25, first_batch=1)  # a batch a guide
    assert same_document(one_batch, want)
    assert same_document(many, want)
    if fmt == "json":
        doc = json.loads(many)
        assert [g["sequence"] for g in doc["guides"]] == list(request.guides)
        assert sorted(g["rank"] for g in doc["guides"]) == list(range(1, len(request.guides) + 1))


def test_batches_searched_ahead_write_the_same(indexed):
    """The next batch is searched while this one is written: by threads of this process (what
    a local pool URL runs as) or by an open process pool."""
    request = request_of(ty1_guides(indexed), listed=5)
    threads, owned = search_executor("local:2")
    assert isinstance(threads, ThreadExecutor) and threads.workers == 2 and owned
    threads.close()
    want = {fmt: plain(indexed, request, fmt) for fmt in ("casoffinder", "json")}
    with open_executor("local:2") as pool:
        for executor in ("local:2", pool):
            for fmt, text in want.items():
                got = streamed(
                    indexed, request, fmt, executor=executor, batch_hits=40, first_batch=2
                )
                assert same_document(got, text), (executor, fmt)


def test_parquet_holds_the_tsv_rows_typed(indexed, tmp_path):
    request = request_of(ty1_guides(indexed))
    path = tmp_path / "sites.parquet"
    written = write_offtargets(
        indexed, request, "parquet", path, executor="serial", batch_hits=50, first_batch=2
    )
    assert [p.name for p in tmp_path.iterdir()] == ["sites.parquet"]  # no temporary file left
    assert written.batches > 3
    table = pq.read_table(path)
    assert table.schema.names == list(OFFTARGET_COLUMNS)
    assert str(table.schema.field("mismatch_positions").type) == "list<element: int8>"
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    meta = json.loads(table.schema.metadata[b"sandgrain"])
    assert meta["provenance"]["command"] == "guides offtargets" and meta["genome"] == "yeast"
    tsv = plain(indexed, request, "tsv").splitlines()
    rows = [dict(zip(OFFTARGET_COLUMNS, line.split("\t"), strict=True)) for line in tsv[1:]]
    assert table.num_rows == len(rows) == int(written.listed.sum())
    for got, want in zip(table.to_pylist(), rows, strict=True):
        assert got["chrom"] == want["chrom"] and str(got["start"]) == want["start"]
        assert got["sequence"] + got["pam"] == want["sequence"] + want["pam"]
        assert ",".join(map(str, got["mismatch_positions"])) == want["mismatch_positions"]
        assert abs(got["cfd"] - float(want["cfd"])) < 1e-6 * max(1, got["cfd"])
        assert ",".join(got["annotation.genes"]) == want["annotation.genes"]
        assert got["annotation.class"] == want["annotation.class"]


@pytest.fixture(scope="module")
def cas12a_genome(tmp_path_factory):
    from sandgrain.storage import Store

    tmp = tmp_path_factory.mktemp("cas12a")
    seqs = random_genome(random.Random(12), [40_000, 15_000])
    genome = add_genome(Store(str(tmp / "store")), "rand", write_fasta(tmp / "r.fa", seqs))
    build_index(genome, FAMILIES["Cas12a"], executor="serial", partition_bp=20_000)
    return genome, seqs


def test_a_5prime_pam_without_scores(cas12a_genome):
    """Cas12a: PAM first, mismatch positions from the 3' end, no MIT/CFD (empty, null)."""
    genome, seqs = cas12a_genome
    nuc = custom_nuclease("TTTV", guide_length=23, pam_side="5")
    guides = guides_from(seqs, FAMILIES["Cas12a"], 8, random.Random(4))
    request = request_of(guides, nuclease=nuc, listed=4)
    for fmt in ("casoffinder", "tsv", "json"):
        want = plain(genome, request, fmt)
        assert same_document(streamed(genome, request, fmt, batch_hits=10, first_batch=1), want)
    assert '"cfd": null' in want


def test_guides_split_over_tasks_find_what_a_plain_scan_finds(local_store, tmp_path, monkeypatch):
    """Fewer partitions than workers: each partition's guides go to several tasks."""
    monkeypatch.setattr(search_module, "MIN_TASK_GUIDES", 1)
    seqs = random_genome(random.Random(21), [30_000, 9_000])
    genome = add_genome(local_store, "split", write_fasta(tmp_path / "s.fa", seqs))
    build_index(genome, FAMILIES["SpCas9+NAG+NGA"], executor="serial", partition_bp=50_000)
    guides = guides_from(seqs, FAMILY, 14, random.Random(22))
    workers = SerialExecutor()
    workers.workers = 3  # as a pool of three: 9 tasks for the one partition
    assert search_module.guide_parts(len(guides), 1, 3) == 9
    for pams in (("NGG", "NAG", "NGA"), ("NGA", "NGG")):  # the index's PAMs, and a subset
        fam = SiteFamily(pams, 20, "3")
        table = search_table(genome, guides, fam, 4, executor=workers)
        assert len(table.reads) == 9
        got = as_set([table.per_guide()[i] for i in range(len(guides))])
        assert got == reference_offtargets(seqs, guides, list(pams), 20, "3", 4), pams
        assert (table.guide[:-1] <= table.guide[1:]).all()  # by guide, then genome order
        serial = search_table(genome, guides, fam, 4, executor="serial")
        assert table.per_guide() == serial.per_guide()


@pytest.fixture(scope="module")
def repeats(tmp_path_factory):
    """A genome of 800 mutated copies of a 2.5 kb unit: every guide from the unit has hundreds
    of sites within 4 mismatches."""
    from sandgrain.storage import Store

    rng = random.Random(7)
    unit = "".join(rng.choice("ACGT") for _ in range(2500))
    copies = []
    for _ in range(800):
        copy = list(unit)
        for _ in range(25):  # 1% substitutions: most sites keep 0–2 mismatches
            copy[rng.randrange(len(copy))] = rng.choice("ACGT")
        copies.append("".join(copy))
    tmp = tmp_path_factory.mktemp("repeats")
    seqs = {"rep": "".join(copies)}
    genome = add_genome(Store(str(tmp / "store")), "rep", write_fasta(tmp / "rep.fa", seqs))
    build_index(genome, FAMILY, executor="serial")
    sites = [m.start() for m in re.finditer(r"(?=[ACGT]{21}GG)", unit)]
    return genome, [unit[s : s + 20] for s in sites[:180]]


def _peak(genome, guides, path, **options) -> tuple[int, int]:
    """Peak traced memory of writing the sites of ``guides`` to ``path``, and the sites."""
    request = ScoreRequest(guides, nuclease=SPCAS9, max_mismatches=4, exclude_on_target=False)
    gc.collect()
    tracemalloc.start()
    try:
        written = write_offtargets(
            genome, request, "casoffinder", path, executor="serial", **options
        )
        return tracemalloc.get_traced_memory()[1], int(written.totals.sum())
    finally:
        tracemalloc.stop()


def test_memory_follows_a_batch_not_the_hits(repeats, tmp_path):
    genome, guides = repeats
    budget = dict(batch_hits=2_000, first_batch=1)
    _peak(genome, guides, tmp_path / "0.txt", **budget)  # caches (kernels, index) warmed up
    third, some = _peak(genome, guides[:40], tmp_path / "a.txt", **budget)
    small, hits = _peak(genome, guides, tmp_path / "b.txt", **budget)
    whole, _ = _peak(genome, guides, tmp_path / "c.txt", batch_hits=10**9)
    assert hits > 2.5 * some and hits > 100_000
    assert (tmp_path / "b.txt").read_bytes() == (tmp_path / "c.txt").read_bytes()
    # all hits held at once: the table alone takes 64 bytes a hit, and the measure sees it
    assert whole - small > 30 * hits, (whole, small, hits)
    # in batches of ~2,000 hits: 2.5 times the hits, hardly more memory; far below 100 B a hit
    assert small < third + 300_000, (small, third)
    assert small < 20 * hits, (small, hits)


@pytest.fixture
def cli(indexed, demo_store, monkeypatch, capsys):
    """``sandgrain ARGS…`` in-process on the demo store; returns (code, stdout, stderr)."""
    monkeypatch.setenv("SANDGRAIN_STORE", demo_store.url)
    monkeypatch.setenv("SANDGRAIN_EXECUTOR", "serial")

    def run(*args):
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    return run


def test_cli_streams_every_format(cli, indexed, tmp_path, monkeypatch):
    guides = ty1_guides(indexed)
    path = tmp_path / "guides.txt"
    path.write_text("\n".join(guides) + "\n")
    request = ScoreRequest(guides, nuclease=SPCAS9, max_mismatches=3, exclude_on_target=False)
    for fmt in FORMATS:
        out = tmp_path / f"out.{fmt}"
        code, stdout, err = cli(
            "guides", "offtargets", "-g", "yeast", "-m", "3", "-f", fmt, "-o", out, path
        )
        assert code == 0 and stdout == "", err
        if fmt != "parquet":
            assert same_document(out.read_text(), plain(indexed, request, fmt)), fmt
    assert pq.read_table(tmp_path / "out.parquet").num_rows > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["guides.txt", *(f"out.{f}" for f in FORMATS)]
    )  # no temporary file left
    code, stdout, err = cli("guides", "offtargets", "-g", "yeast", "-m", "3", path)
    assert code == 0 and stdout == (tmp_path / "out.casoffinder").read_text()
    code, stdout, err = cli(
        "guides", "offtargets", "-g", "yeast", "-f", "tsv", "--max-offtargets-listed", "2", path
    )
    assert code == 0 and "off-target listing cut to 2 per guide" in err and "exact" in err
    listed = [line.split("\t")[0] for line in stdout.splitlines()[1:]]
    assert all(listed.count(g) == 2 * guides.count(g) for g in guides[:-1])
