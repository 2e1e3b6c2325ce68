"""``sandgrain guides …`` as a user meets it: files and formats out, one clear line on error."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from sandgrain.cli import main
from sandgrain.guides.nucleases import get_nuclease
from sandgrain.guides.search import search_offtargets
from sandgrain.guides.siteindex import SiteFamily, build_index

FAMILY = SiteFamily.of(get_nuclease("SpCas9"))
# two ADE2 guides and a TEF1 guide with a perfect copy in TEF2
ADE2_GUIDES = ["CTGCTCATAGAACTCCACAT", "AATTGTAGAGACTATCCACA"]


@pytest.fixture(scope="module")
def indexed(yeast):
    build_index(yeast, FAMILY, executor="serial", partition_bp=4_000_000)
    return yeast


@pytest.fixture
def cli(indexed, demo_store, monkeypatch, capsys):
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


def test_design_writes_json_tsv_and_bed(cli, tmp_path):
    out = tmp_path / "ade2.json"
    code, stdout, err = cli(
        "guides", "design", "--genome", "yeast", "--gene", "ADE2", "--format", "json",
        "--out", out, "--max-mismatches", "3",
    )  # fmt: skip
    assert code == 0, err
    assert stdout == "" and "guides for gene ADE2" in err
    doc = json.loads(out.read_text())
    assert (
        doc["target"]["name"] == "ADE2" and doc["provenance"]["parameters"]["max_mismatches"] == 3
    )
    assert all(len(g["offtarget_counts"]) == 4 for g in doc["guides"])
    assert [p.name for p in tmp_path.iterdir()] == ["ade2.json"]  # no temporary file left

    code, stdout, _ = cli(
        "guides", "design", "-g", "sacCer3", "--gene", "ADE2", "-m", "3", "-q"
    )  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout), delimiter="\t"))
    assert [r["sequence"] for r in rows] == [g["sequence"] for g in doc["guides"]]
    keys = [k for k in doc["guides"][0] if k != "offtargets"]
    nested = {
        "on_target": ("chrom", "start", "end", "strand"),
        "oligos": ("forward", "reverse"),
        "primers": ("left", "right", "product_size", "unique"),
    }
    want = []
    for key in keys:
        want += [f"{key}.{sub}" for sub in nested[key]] if key in nested else [key]
        if key == "offtarget_counts":
            want += ["mm0", "mm1", "mm2", "mm3"]
    assert list(rows[0]) == want
    assert rows[0]["on_target.chrom"] == "XV" and rows[0]["offtargets_total"] != ""

    code, stdout, _ = cli(
        "guides", "design", "-g", "yeast", "--region", "XV:564476-564700", "-f", "bed", "-q"
    )
    assert code == 0
    # a UCSC/IGV track names chromosomes as the browser does: chrXV, and opens on the target
    lines = stdout.splitlines()
    assert lines[0] == "browser position chrXV:564476-564700"
    assert lines[1].startswith("track ") and len(lines) > 5
    for line in lines[2:]:
        fields = line.split("\t")
        assert len(fields) >= 6 and fields[0] == "chrXV" and 0 <= int(fields[4]) <= 1000
    assert "1000 / (1 + sum of off-target CFD)" in lines[1]
    code, stored, _ = cli(
        "guides", "design", "-g", "yeast", "--region", "XV:564476-564700", "-f", "bed", "-q",
        "--chrom-names", "stored",
    )  # fmt: skip
    assert code == 0 and stored.splitlines()[0] == lines[1]  # no browser line
    assert [r.split("\t") for r in stored.splitlines()[1:]] == [
        ["XV", *line.split("\t")[1:]] for line in lines[2:]
    ]
    code, _, err = cli(
        "guides", "design", "-g", "yeast", "--gene", "ADE2", "-f", "bed", "--chrom-names", "ncbi"
    )
    assert code == 1
    assert err.strip() == "sandgrain: error: --chrom-names must be one of ucsc, stored, not 'ncbi'"


def test_design_sequence_target_on_target_and_bed(cli, indexed, tmp_path):
    text = indexed.sequence("XV", 564600, 564800)  # from ADE2
    code, stdout, err = cli("guides", "design", "-g", "yeast", "--sequence", text, "-f", "json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["guides"]
    for g in doc["guides"]:
        assert g["offtarget_counts"][0] == 0
        assert g["on_target"]["chrom"] == "XV"
        assert g["on_target"]["start"] == g["start"] + 564600
    code, stdout, err = cli(
        "guides", "design", "-g", "yeast", "--sequence", text, "-f", "json",
        "--no-exclude-on-target",
    )  # fmt: skip
    assert code == 0, err
    kept = json.loads(stdout)
    assert all(g["offtarget_counts"][0] == 1 and g["on_target"] is None for g in kept["guides"])
    code, stdout, err = cli("guides", "design", "-g", "yeast", "--sequence", text, "-f", "bed")
    assert code == 0, err
    lines = stdout.splitlines()
    assert "relative to the given sequence" in lines[0]
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == len(doc["guides"]) and {r[0] for r in rows} == {"sequence"}
    assert all(0 <= int(r[1]) < int(r[2]) <= 200 for r in rows)


def test_offtargets_reads_a_casoffinder_input_and_prints_its_format(cli, indexed, tmp_path):
    guides = ADE2_GUIDES + ["GGTGAAGGTGGTGCTTACCC"]  # the last one is not in yeast
    path = tmp_path / "input.txt"
    path.write_text(
        "/data/genomes/yeast\n"
        "NNNNNNNNNNNNNNNNNNNNNGG\n"
        f"{guides[0]}NNN 3\n"
        f"{guides[1].lower()}NNN\n"
        f"{guides[2]}\t4\n"
    )
    code, stdout, err = cli(
        "guides", "offtargets", "--genome", "yeast", "--pam", "NGG", "--max-mismatches", "2", path
    )  # fmt: skip
    assert code == 0, err
    rows = [line.split("\t") for line in stdout.splitlines()]
    assert rows and all(len(r) == 6 for r in rows)
    got = {(r[0], r[1], int(r[2]), r[3], r[4], int(r[5])) for r in rows}
    # limits: 3 from the line, 2 from --max-mismatches, 4 from the line
    want = set()
    # the PAM given (NGG) is searched alone, as Cas-OFFinder searches its pattern
    ngg = SiteFamily(("NGG",), 20, "3")
    results = search_offtargets(indexed, guides, ngg, 4, executor="serial")
    for guide, limit, sites in zip(guides, [3, 2, 4], results, strict=True):
        for s in sites:
            if s.mismatches <= limit:
                site = "".join(
                    b if b == g else b.lower() for g, b in zip(guide, s.protospacer, strict=True)
                )
                want.add((guide + "NNN", s.chrom, s.pos0, site + s.pam, s.strand, s.mismatches))
    assert got == want
    own = [r for r in rows if r[0].startswith(guides[0]) and r[5] == "0"]
    assert own == [[guides[0] + "NNN", "XV", "564856", guides[0] + "AGG", "-", "0"]]


def test_offtargets_tsv_json_and_truncation(cli, tmp_path):
    guides = tmp_path / "g.txt"
    guides.write_text("\n".join(["# TEF1", "CAAGATGTTTACAAGATTGG", "GAAACCGGTGTCATCAAGCC"]) + "\n")
    code, stdout, err = cli("guides", "offtargets", "-g", "yeast", "-f", "json", guides)
    assert code == 0, err
    full = json.loads(stdout)
    totals = [g["offtargets_total"] for g in full["guides"]]
    assert all(t >= 2 for t in totals)
    code, stdout, err = cli(
        "guides", "offtargets", "-g", "yeast", "-f", "tsv", "--max-offtargets-listed", "1", guides
    )  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout), delimiter="\t"))
    assert len(rows) == 2 and {r["guide"] for r in rows} == {
        "CAAGATGTTTACAAGATTGG", "GAAACCGGTGTCATCAAGCC",
    }  # fmt: skip
    assert {"annotation.class", "annotation.genes", "mismatch_positions", "cfd"} <= set(rows[0])
    assert "counts are exact" in err and f"{totals[0]:,}" in err
    code, stdout, err = cli(
        "guides", "offtargets", "-g", "yeast", "--max-offtargets-listed", "1", guides
    )  # fmt: skip
    assert code == 0 and len(stdout.splitlines()) == 2 and "counts are exact" in err


def test_score_reads_stdin(cli):
    code, stdout, err = cli(
        "guides", "score", "--genome", "yeast", "-", "-f", "json",
        stdin="\n".join(ADE2_GUIDES) + "\n",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(stdout)
    assert [g["sequence"] for g in doc["guides"]] == ADE2_GUIDES
    own = [("XV", 564860, "-"), ("XV", 565549, "-")]  # where the two ADE2 guides sit
    for g, (chrom, start, strand) in zip(doc["guides"], own, strict=True):
        assert g["offtarget_counts"][0] == 0  # its own site is the on-target, left out
        assert g["on_target"] == {
            "chrom": chrom, "start": start, "end": start + 19, "strand": strand,
        }  # fmt: skip
    code, stdout, _ = cli("guides", "score", "-g", "yeast", "-", stdin=ADE2_GUIDES[0] + "\n")
    assert code == 0
    (row,) = csv.DictReader(io.StringIO(stdout), delimiter="\t")
    assert row["sequence"] == ADE2_GUIDES[0] and row["mm0"] == "0"
    assert row["on_target.start"] == "564860"
    # placed at that site, as `guides design --gene ADE2` shows it (docs/guides.md)
    assert (row["pam"], row["chrom"], row["start"], row["cut"]) == ("AGG", "XV", "564860", "564862")
    assert (row["gene"], row["ruleset1"]) == ("ADE2", "0.8519601")
    assert row["efficiency"] and row["context30"] and row["oligos.forward"]
    code, stdout, _ = cli(
        "guides", "score", "-g", "yeast", "-", "--no-exclude-on-target",
        stdin=ADE2_GUIDES[0] + "\n",
    )  # fmt: skip
    assert code == 0
    (row,) = csv.DictReader(io.StringIO(stdout), delimiter="\t")
    assert row["mm0"] == "1" and row["on_target.chrom"] == ""  # the old behaviour: all count
    assert float(row["mit_specificity"]) < 51  # its own perfect site scores 100


def test_casoffinder_input_with_a_bare_genome_folder_name(cli, tmp_path):
    path = tmp_path / "input.txt"
    path.write_text(f"hg19\nNNNNNNNNNNNNNNNNNNNNNGG\n{ADE2_GUIDES[0]}NNN 0\n")
    code, stdout, err = cli("guides", "offtargets", "-g", "yeast", "--pam", "NGG", path)
    assert code == 0, err
    assert stdout == f"{ADE2_GUIDES[0]}NNN\tXV\t564856\t{ADE2_GUIDES[0]}AGG\t-\t0\n"
    # a bare name is the folder line only where a Cas-OFFinder input has it: before the pattern
    path.write_text(f"hg19\n{ADE2_GUIDES[0]}\n")
    code, stdout, err = cli("guides", "offtargets", "-g", "yeast", path)
    assert code != 0 and stdout == "" and "has 4 bases" in err


@pytest.mark.parametrize(
    ("first", "want"),
    [
        ("/data/genomes/hg19", []),  # skipped: a path
        ("hg19", []),  # skipped: a bare name before the pattern line
        ("GRCh38.p14_primary-assembly", []),
        ("ACGTNACGTN", ["ACGTNACGTN"]),  # all A/C/G/T/N: a (bad) guide, checked by the search
        ("NNNNNNNNNNNNNNNNNNNNNGG", []),  # the pattern line itself
    ],
)
def test_folder_line_rule(first, want):
    from sandgrain.guides.formats import parse_guides

    text = f"{first}\nNNNNNNNNNNNNNNNNNNNNNGG\n{ADE2_GUIDES[0]}\n"
    got = [g.sequence for g in parse_guides(text, get_nuclease("SpCas9"))]
    assert got == [*want, ADE2_GUIDES[0]]


BAD = {
    "two targets": (["design", "--gene", "ADE2", "--region", "XV:1-100"], "exactly one target"),
    "no target": (["design"], "exactly one target"),
    "unknown gene": (["design", "--gene", "NOSUCHGENE1"], "unknown gene 'NOSUCHGENE1'"),
    "unknown nuclease": (["design", "--gene", "ADE2", "--nuclease", "Cas42"], "unknown nuclease"),
    "bad PAM": (["design", "--gene", "ADE2", "--pam", "NXG"], "NXG"),
    "region too large": (
        ["design", "--region", "XV:1-5000", "--max-target-bp", "1000"],
        "more than the limit of 1,000 bp",
    ),
    "too many mismatches": (["design", "--gene", "ADE2", "-m", "7"], "0–5"),
    "bad format": (["design", "--gene", "ADE2", "--format", "xml"], "--format must be one of"),
    "custom length without PAM": (["design", "--gene", "ADE2", "--guide-length", "21"], "--pam"),
    "non-ACGT guide": (["offtargets", "@guides:ACGTACGTACGTACGTACGX"], "contains 'X'"),
    "wrong length": (["offtargets", "@guides:ACGTACGTACGTACGTAC"], "has 18 bases"),
    "bad mismatch column": (["score", "@guides:ACGTACGTACGTACGTACGT 9"], "mismatch column"),
    "empty guide list": (["score", "@guides:# nothing\n"], "no guides"),
    "missing guide file": (["score", "no-such-file.txt"], "no such file"),
    "not indexed": (
        ["design", "--gene", "S", "--nuclease", "SaCas9", "--genome", "sars-cov-2"],
        "`sandgrain genome index sars-cov-2 --nuclease SaCas9`",
    ),
    "unknown genome": (["design", "--gene", "ADE2", "--genome", "mouse"], "unknown genome"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_no_file(cli, tmp_path, case):
    words, message = BAD[case]
    args = ["guides"]
    for w in words:
        if w.startswith("@guides:"):
            (tmp_path / "guides.txt").write_text(w.removeprefix("@guides:") + "\n")
            w = str(tmp_path / "guides.txt")
        args.append(w)
    if "--genome" not in args:
        args += ["--genome", "yeast"]
    out = tmp_path / "out.tsv"
    code, stdout, err = cli(*args, "--out", out)
    assert code != 0 and stdout == ""
    assert err.count("\n") == 1 and err.startswith("sandgrain: error: "), err
    assert message in err and "Traceback" not in err
    assert not out.exists()
    assert all(p.name == "guides.txt" for p in tmp_path.iterdir())


def test_out_into_a_missing_directory_fails_before_searching(cli, tmp_path):
    out = tmp_path / "nowhere" / "x.tsv"
    code, _, err = cli("guides", "design", "-g", "yeast", "--gene", "ADE2", "--out", out)
    assert code != 0 and "no such directory" in err and not out.parent.exists()
