"""Genome-wide libraries on real genomes: each gene's rows are the best guides that
``design_guides`` gives for that gene alone (the slow, obviously-correct twin: one design, one
search per gene), whatever the batches and search chunks; a stopped run resumes without
redoing finished batches; bad requests and gene lists fail with one clear sentence."""

from __future__ import annotations

import io
import json
import sys

import pytest
from conftest import SARS_FASTA

from sandgrain.cli import main
from sandgrain.errors import InputError, NotFoundError
from sandgrain.genome.store import add_genome, open_genome
from sandgrain.guides import library
from sandgrain.guides.design import design_guides
from sandgrain.guides.library import (
    GENE_FIELDS,
    LibraryRequest,
    build_library,
    parse_gene_list,
    plan_library,
    remove_parts,
    write_library,
)
from sandgrain.guides.nucleases import get_nuclease
from sandgrain.guides.siteindex import SiteFamily, build_index
from sandgrain.storage import Store

FAMILY = SiteFamily.of(get_nuclease("SpCas9"))
#: Coding genes (TEF1 has a perfect copy of much of itself in TEF2, ADE2 and URA3 have none),
#: a tRNA (no CDS: its exons are designed) and a short coding gene.
YEAST_GENES = ["ADE2", "TEF1", "SUP61", "URA3", "YAL064W-B"]


@pytest.fixture(scope="module")
def yeast_indexed(yeast):
    build_index(yeast, FAMILY, executor="serial", partition_bp=4_000_000)
    return yeast


@pytest.fixture(scope="module")
def sars(demo_store):
    genome = open_genome(demo_store, "sars-cov-2")
    build_index(genome, FAMILY, executor="serial")
    return genome


def roundtrip(value):
    """What a value reads back as from the JSON part files and output."""
    return json.loads(json.dumps(value))


def design_top(genome, gene: str, within: str, n: int, **options) -> list[dict]:
    """The twin: the best ``n`` guides of one gene from a design of that gene alone."""
    options.setdefault("list_offtargets", False)
    doc = design_guides(genome, gene=gene, within=within, executor="serial", **options)
    return roundtrip(doc["guides"][:n])


def library_rows(genome, request: LibraryRequest, work_dir, **options) -> tuple[list, object]:
    run = build_library(genome, request, work_dir, executor="serial", **options)
    text = io.StringIO()
    write_library(run, None, "json", stream=text)
    return json.loads(text.getvalue()), run


def by_gene(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["target_id"], []).append(row)
    return out


def without_gene(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in GENE_FIELDS}


def test_each_genes_rows_are_the_top_of_its_own_design(yeast_indexed, tmp_path, monkeypatch):
    # small batches and search chunks, so genes are cut every way the library cuts them
    monkeypatch.setattr(library, "SEARCH_CHUNK", 150)
    request = LibraryRequest(per_gene=4, genes=YEAST_GENES, batch_genes=2)
    doc, run = library_rows(yeast_indexed, request, tmp_path / "parts")
    assert len(run.plan.batches) == 3 and run.computed == 3 and run.resumed == 0
    rows = by_gene(doc["guides"])
    table = yeast_indexed.genes
    assert list(rows) == [table.lookup(name).gene_id for name in YEAST_GENES]  # list order
    for name in YEAST_GENES:
        gene = table.lookup(name)
        mine = rows[gene.gene_id]
        within = "cds" if gene.cds else "exons"
        assert {r["within"] for r in mine} == {within}
        assert {r["target"] for r in mine} == {gene.symbol or gene.gene_id}
        twin = design_top(yeast_indexed, gene.gene_id, within, 4)
        assert len(twin) == 4, name
        assert [without_gene(r) for r in mine] == twin, name
        assert [r["rank"] for r in mine] == [1, 2, 3, 4]
    assert doc["guide_count"] == 20 and doc["genes"] == 5
    assert doc["provenance"]["command"] == "guides library"
    assert doc["ranking"]["rule"]
    for mine in rows.values():
        assert [r["tier"] for r in mine] == sorted(r["tier"] for r in mine)
    # TEF1 shares most of its sequence with TEF2: no guide of it is free of close off-targets
    assert all(r["tier"] > 1 for r in rows[table.lookup("TEF1").gene_id])


def test_searches_shrink_where_guides_have_many_sites(yeast_indexed, tmp_path, monkeypatch):
    # a few hundred sites a search: TEF1's guides (a copy in TEF2) make the searches small
    monkeypatch.setattr(library, "CHUNK_SITES", 300)
    monkeypatch.setattr(library, "FIRST_CHUNK", 40)
    sizes: list[int] = []
    real = library.run_search

    def recorded(genome, guides, *args, **kwargs):
        sizes.append(len(guides))
        return real(genome, guides, *args, **kwargs)

    monkeypatch.setattr(library, "run_search", recorded)
    names = ["TEF1", "URA3", "HIS3", "TRP1"]
    doc, run = library_rows(yeast_indexed, LibraryRequest(per_gene=3, genes=names), tmp_path)
    assert len(sizes) > 2 and run.stats["candidates"] == sum(sizes)
    for name, mine in zip(names, by_gene(doc["guides"]).values(), strict=True):
        twin = design_top(yeast_indexed, yeast_indexed.gene(name).gene_id, "cds", 3)
        assert [without_gene(r) for r in mine] == twin, name


def test_every_gene_of_a_genome_in_genome_order(sars, tmp_path):
    request = LibraryRequest(per_gene=3, batch_genes=4, max_mismatches=3)
    doc, run = library_rows(sars, request, tmp_path / "parts")
    genes = sars.genes.genes
    assert run.plan.genes == len(genes) and len(run.plan.batches) == -(-len(genes) // 4)
    rows = by_gene(doc["guides"])
    assert list(rows) == [g.gene_id for g in genes if g.gene_id in rows]
    assert run.short == [g.symbol for g in genes if len(rows.get(g.gene_id, [])) < 3]
    for gene in genes:
        twin = design_top(sars, gene.gene_id, "cds", 3, max_mismatches=3)
        assert [without_gene(r) for r in rows.get(gene.gene_id, [])] == twin, gene.symbol
    stats = run.stats
    assert stats["candidates"] > len(doc["guides"]) and stats["seconds"]["search"] > 0


def test_json_lists_the_offtargets_of_the_kept_guides(yeast_indexed, tmp_path):
    request = LibraryRequest(
        per_gene=3, genes=["TEF1", "URA3"], list_offtargets=True, max_offtargets_listed=5
    )
    doc, _ = library_rows(yeast_indexed, request, tmp_path / "parts")
    rows = by_gene(doc["guides"])
    for name in ("TEF1", "URA3"):
        gene = yeast_indexed.gene(name)
        twin = design_top(
            yeast_indexed, gene.gene_id, "cds", 3, list_offtargets=True, max_offtargets_listed=5
        )
        assert [without_gene(r) for r in rows[gene.gene_id]] == twin
    assert any(r["offtargets"] for r in doc["guides"])


def test_tsv_has_the_gene_columns_then_the_designs(yeast_indexed, tmp_path):
    request = LibraryRequest(per_gene=2, genes=["URA3", "ADE2"])
    run = build_library(yeast_indexed, request, tmp_path / "parts", executor="serial")
    out = tmp_path / "library.tsv"
    write_library(run, out, "tsv")
    lines = out.read_text().splitlines()
    header = lines[0].split("\t")
    assert header[:4] == [*GENE_FIELDS, "rank"] and "offtargets" not in header
    assert [line.split("\t")[0] for line in lines[1:]] == ["URA3", "URA3", "ADE2", "ADE2"]
    assert all(len(line.split("\t")) == len(header) for line in lines[1:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library.tsv", "parts"]  # no temp file


def test_a_stopped_run_resumes_with_only_the_unfinished_batches(
    yeast_indexed, tmp_path, monkeypatch
):
    genes = ["ADE2", "URA3", "HIS3", "LEU2", "TRP1"]
    request = LibraryRequest(per_gene=3, genes=genes, batch_genes=1)
    reference, _ = library_rows(yeast_indexed, request, tmp_path / "reference")

    scanned: list[str] = []
    real_scan = library.find_candidates_in_regions

    def crash_on_the_fourth_gene(genome, regions, *args, **kwargs):
        scanned.append(regions[0].chrom + ":" + str(regions[0].start0))
        if len(scanned) == 4:
            raise RuntimeError("simulated crash")
        return real_scan(genome, regions, *args, **kwargs)

    monkeypatch.setattr(library, "find_candidates_in_regions", crash_on_the_fourth_gene)
    work = tmp_path / "parts"
    with pytest.raises(Exception, match="simulated crash"):
        build_library(yeast_indexed, request, work, executor="serial", retries=0, window=1)
    assert sorted(p.name for p in work.glob("part-*.json")) == [
        "part-00000.json",
        "part-00001.json",
        "part-00002.json",
    ]
    assert not list(work.glob(".*"))  # no partial part left behind

    scanned.clear()
    monkeypatch.setattr(library, "find_candidates_in_regions", _counting(real_scan, scanned))
    doc, run = library_rows(yeast_indexed, request, work)
    assert run.resumed == 3 and run.computed == 2 and len(scanned) == 2  # HIS3… not redone
    assert doc["guides"] == reference["guides"]
    assert doc["provenance"]["parameters"]["resumed_batches"] == 3

    scanned.clear()
    _, again = library_rows(yeast_indexed, request, work)  # all done: nothing is computed
    assert again.computed == 0 and again.resumed == 5 and scanned == []
    remove_parts(again)
    assert not work.exists()


def _counting(scan, calls: list):
    def counted(genome, regions, *args, **kwargs):
        calls.append(regions[0].chrom)
        return scan(genome, regions, *args, **kwargs)

    return counted


def test_parts_of_other_options_or_damaged_are_recomputed(yeast_indexed, tmp_path):
    work = tmp_path / "parts"
    first = LibraryRequest(per_gene=2, genes=["URA3", "ADE2"])
    run = build_library(yeast_indexed, first, work, executor="serial")
    assert run.computed == 1
    (work / "part-00000.json").write_text('{"format": "sandgrain.guide-library-part", "ver')
    damaged = build_library(yeast_indexed, first, work, executor="serial")
    assert damaged.computed == 1 and damaged.guides == 4
    other = LibraryRequest(per_gene=3, genes=["URA3", "ADE2"])
    changed = build_library(yeast_indexed, other, work, executor="serial")
    assert changed.computed == 1 and changed.resumed == 0 and changed.guides == 6
    fewer = LibraryRequest(per_gene=3, genes=["URA3"])  # another batch: other genes
    assert build_library(yeast_indexed, fewer, work, executor="serial").computed == 1


def test_unknown_ambiguous_and_repeated_names_are_reported(yeast_indexed, tmp_path):
    names = ["ADE2", "NOSUCHGENE", "YOR128C", "ura3", "ALSONOTAGENE"]
    plan = plan_library(yeast_indexed, LibraryRequest(genes=names, per_gene=1))
    assert plan.unknown == ["NOSUCHGENE", "ALSONOTAGENE"]
    assert plan.duplicates == ["YOR128C"]  # ADE2's systematic name: designed once
    assert plan.genes == 2
    doc, _ = library_rows(yeast_indexed, plan, tmp_path / "parts")
    report = doc["provenance"]["parameters"]["genes"]
    assert report["unknown"] == ["NOSUCHGENE", "ALSONOTAGENE"] and report["asked"] == 5
    with pytest.raises(InputError, match="none of the 2 gene names"):
        plan_library(yeast_indexed, LibraryRequest(genes=["NOPE1", "NOPE2"]))


def test_within_cds_skips_genes_without_one(yeast_indexed):
    plan = plan_library(yeast_indexed, LibraryRequest(genes=["SUP61", "ADE2"], within="cds"))
    assert [s["gene"] for s in plan.skipped] == ["SUP61"]
    assert plan.skipped[0]["reason"] == "without a CDS" and plan.genes == 1
    small = plan_library(yeast_indexed, LibraryRequest(genes=["ADE2"], max_target_bp=100))
    assert small.genes == 0 and "over 100 bp" in small.skipped[0]["reason"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"per_gene": 0}, "guides per gene"),
        ({"per_gene": -2}, "guides per gene"),
        ({"per_gene": True}, "guides per gene"),
        ({"per_gene": 2.5}, "guides per gene"),
        ({"within": "introns"}, "--within must be one of auto"),
        ({"genes": "ADE2"}, "list of names"),
        ({"genes": ["", "  "]}, "gene list is empty"),
        ({"batch_genes": 0}, "genes per batch"),
        ({"batch_genes": 5000}, "at most 1,000 genes"),
        ({"max_mismatches": 9}, "mismatch"),
        ({"tracr": "Nope2020"}, "tracrRNA"),
    ],
)
def test_bad_requests_fail_before_any_work(options, message):
    with pytest.raises(InputError, match=message):
        LibraryRequest(**options)


def test_an_unknown_nuclease_or_a_genome_without_genes(demo_store, tmp_path):
    with pytest.raises(NotFoundError, match="unknown nuclease"):
        LibraryRequest(nuclease="Cas99")
    bare = add_genome(Store(str(tmp_path / "store")), "bare", str(SARS_FASTA))
    with pytest.raises(NotFoundError, match="no gene annotation"):
        plan_library(bare, LibraryRequest())


def test_gene_lists():
    text = "# my screen\nADE2\n\nURA3\turacil\n  LEU2  \n#HIS3\n"
    assert parse_gene_list(text) == ["ADE2", "URA3", "LEU2"]
    with pytest.raises(InputError, match="names no gene"):
        parse_gene_list("# only a comment\n\n", "genes.txt")
    with pytest.raises(InputError, match="not a text file"):
        parse_gene_list("ADE2\x00\x01", "genes.bin")


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------


@pytest.fixture
def cli(sars, demo_store, monkeypatch, capsys):
    """Run ``sandgrain ARGS…`` in-process on the demo store; returns (code, stdout, stderr)."""
    monkeypatch.setenv("SANDGRAIN_STORE", demo_store.url)
    monkeypatch.setenv("SANDGRAIN_EXECUTOR", "serial")

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return exit_.value.code, out, err

    return run


def test_cli_writes_the_library_and_reports_unknown_genes(cli, sars, tmp_path):
    genes = tmp_path / "genes.txt"
    genes.write_text("S\nN\nNOT_A_GENE\nE\n")
    out = tmp_path / "library.tsv"
    code, stdout, err = cli(
        "guides", "library", "-g", "sars-cov-2", "--genes", genes, "--per-gene", "2",
        "-m", "3", "-o", out, "--batch-genes", "2",
    )  # fmt: skip
    assert code == 0, err
    assert stdout == ""
    assert "1 unknown gene name(s) left out: NOT_A_GENE" in err
    assert "library of 6 SpCas9 guides for 3 genes of sars-cov-2" in err
    lines = out.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == ["S", "S", "N", "N", "E", "E"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genes.txt", "library.tsv"]

    code, stdout, err = cli(
        "guides", "library", "-g", "sars-cov-2", "--genes", "-", "-n", "1", "-m", "3",
        "-f", "json", "-q",
    stdin="M\nNOPE\n")  # fmt: skip
    assert code == 0, err
    doc = json.loads(stdout)
    assert [g["target"] for g in doc["guides"]] == ["M"]
    assert doc["provenance"]["parameters"]["genes"]["unknown"] == ["NOPE"]
    assert "NOPE" in err  # reported even when quiet


def test_cli_keeps_parts_for_a_resume_only_when_asked(cli, tmp_path):
    out = tmp_path / "library.tsv"
    args = ["guides", "library", "-g", "sars-cov-2", "-n", "1", "-m", "2", "-o", out, "-q"]
    code, _, err = cli(*args, "--keep-parts", "--batch-genes", "5")
    assert code == 0, err
    parts = sorted(p.name for p in (tmp_path / "library.tsv.parts").iterdir())
    assert parts == ["part-00000.json", "part-00001.json", "part-00002.json"]
    first = out.read_text()
    code, _, err = cli(*args, "--batch-genes", "5")
    assert code == 0 and "resumed" not in err  # -q
    assert out.read_text() == first and not (tmp_path / "library.tsv.parts").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--genes", "/no/such/genes.txt"], "cannot read gene names from /no/such/genes.txt"),
        (["--genes", "."], "it is a directory"),
        (["--per-gene", "0"], "guides per gene (--per-gene) must be a whole number ≥ 1"),
        (["--within", "utr"], "--within must be one of"),
        (["--format", "bed"], "--format must be one of tsv, json"),
        (["--out", "/no/such/dir/lib.tsv"], "no such directory"),
    ],
)
def test_cli_bad_input_is_one_line(cli, args, message):
    code, stdout, err = cli("guides", "library", "-g", "sars-cov-2", *args)
    assert code != 0 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_cli_empty_or_unknown_gene_lists(cli, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    code, _, err = cli("guides", "library", "-g", "sars-cov-2", "--genes", empty)
    assert code != 0 and "names no gene" in err
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("TP53\nBRCA1\n")
    code, _, err = cli("guides", "library", "-g", "sars-cov-2", "--genes", unknown)
    assert code != 0 and "none of the 2 gene names given (TP53, BRCA1)" in err
