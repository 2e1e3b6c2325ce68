"""The command line as a user meets it: output on stdout, one clear error line on stderr."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from conftest import SARS_FASTA, SARS_GBK, YEAST_FASTA


@pytest.fixture
def sars_cli(cli):
    code, _, err = cli(
        "genome",
        "add",
        "sars",
        "--fasta",
        SARS_FASTA,
        "--annotation",
        SARS_GBK,
        "--alias",
        "wuhCor1",
        "-q",
    )
    assert code == 0, err
    return cli


def test_add_list_show_region_gene(sars_cli):
    code, out, _ = sars_cli("genome", "list", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert (row["name"], row["genes"], row["total_length"]) == ("sars", 11, 29903)

    code, out, _ = sars_cli("genome", "show", "wuhCor1")
    assert code == 0 and "NC_045512.2" in out and "29,903" in out
    md5 = __import__("hashlib").md5("".join(SARS_FASTA.read_text().splitlines()[1:]).encode())
    assert md5.hexdigest() in out  # piped output is not cut to 80 columns

    code, out, _ = sars_cli("genome", "region", "sars", "NC_045512.2:21563-21580")
    assert out == ">NC_045512.2:21563-21580\nATGTTTGTTTTTCTTGTT\n"
    code, out, _ = sars_cli("genome", "region", "sars", "NC_045512.2:21563-21580", "--strand", "-")
    assert out == ">NC_045512.2:21563-21580/rc\nAACAAGAAAAACAAACAT\n"

    code, out, _ = sars_cli("genome", "gene", "sars", "s", "--json")
    gene = json.loads(out)
    assert (gene["start"], gene["end"], gene["strand"]) == (21563, 25384, "+")
    code, out, _ = sars_cli("genome", "gene", "sars", "ORF1ab")
    assert code == 0 and "266-21555" in out and "exons" in out


def test_composition_fans_out(sars_cli):
    code, out, err = sars_cli("genome", "composition", "sars", "--max-size", "4000", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    seq = "".join(SARS_FASTA.read_text().splitlines()[1:])
    assert row["length"] == len(seq) and row["A"] == seq.count("A") and row["T"] == seq.count("T")


def test_verify_and_remove(sars_cli):
    assert sars_cli("genome", "verify", "sars")[0] == 0
    assert sars_cli("genome", "remove", "sars")[0] == 0
    assert sars_cli.store.list() == []


def write_gz(path, text: str) -> str:
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    return str(path)


def truncated_gzip(tmp_path) -> str:
    data = YEAST_FASTA.read_bytes()[:200_000]
    path = tmp_path / "truncated.fa.gz"
    path.write_bytes(data)
    return str(path)


BAD_FASTA = {
    "truncated gzip": (truncated_gzip, "truncated or corrupt"),
    "not FASTA": (lambda p: str(SARS_GBK), "not a FASTA file"),
    "binary": (
        lambda p: (p / "b.bin").write_bytes(b"\x00\x01>x\n") and str(p / "b.bin"),
        "not a FASTA file",
    ),
    "duplicate names": (
        lambda p: write_gz(p / "d.fa.gz", ">a\nACGT\n>b\nAC\n>a\nGG\n"),
        "duplicate sequence name 'a'",
    ),
    "empty sequence": (
        lambda p: write_gz(p / "e.fa.gz", ">a\nACGT\n>b\n>c\nAC\n"),
        "sequence 'b' is empty",
    ),
    "IUPAC code": (
        lambda p: write_gz(p / "i.fa.gz", ">a\nACGTACGTRACG\n"),
        "IUPAC ambiguity code 'R' at position 9",
    ),
    "invalid letter": (
        lambda p: write_gz(p / "x.fa.gz", ">a\nACGT\nAC-GT\n"),
        "invalid character '-'",
    ),
    "empty file": (lambda p: write_gz(p / "z.fa.gz", ""), "is empty"),
    "missing file": (lambda p: str(p / "nope.fa"), "no such file"),
    "unreachable URL": (lambda p: "http://127.0.0.1:9/genome.fa.gz", "cannot download"),
}


@pytest.mark.parametrize("case", list(BAD_FASTA))
def test_bad_fasta_is_one_clear_line_and_stores_nothing(cli, tmp_path, case):
    make, message = BAD_FASTA[case]
    code, out, err = cli("genome", "add", "bad", "--fasta", make(tmp_path), "-q")
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("sandgrain: error: "), err
    assert message in err
    assert "Traceback" not in err
    assert cli.store.list() == []  # nothing half-stored


def test_iupac_codes_can_become_n(cli, tmp_path):
    fasta = write_gz(tmp_path / "i.fa.gz", ">a\nACGTrYACG\n")
    code, _, err = cli("genome", "add", "amb", "--fasta", fasta, "--iupac-to-n", "-q")
    assert code == 0, err
    _, out, _ = cli("genome", "region", "amb", "a:1-9")
    assert out.splitlines()[1] == "ACGTnNACG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["genome", "region", "sars", "chr9:1-10"], "unknown chromosome 'chr9'"),
        (["genome", "region", "sars", "NC_045512.2:1-40000"], "out of range"),
        (["genome", "region", "sars", "NC_045512.2:500-100"], "before start"),
        (["genome", "gene", "sars", "BRCA1"], "unknown gene 'BRCA1'"),
        (["genome", "show", "mouse"], "unknown genome 'mouse'"),
        (["genome", "add", "sars", "--fasta", str(SARS_FASTA)], "already exists"),
        (["genome", "add", "bad name", "--fasta", str(SARS_FASTA)], "invalid genome name"),
        (["genome", "region", "sars"], "Missing argument"),
        (["--executor", "warp-drive", "genome", "composition", "sars"], "executor"),
    ],
)
def test_bad_requests(sars_cli, args, message):
    code, out, err = sars_cli(*args)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_console_script_runs(tmp_path):
    """The installed entry point, as a user types it."""
    env = {"SANDGRAIN_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    bin_dir = __import__("pathlib").Path(sys.executable).parent
    done = subprocess.run(
        [str(bin_dir / "sandgrain"), "genome", "show", "nothing"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("sandgrain: error: unknown genome 'nothing'")
    done = subprocess.run(
        [str(bin_dir / "sandgrain"), "--version"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and done.stdout.startswith("sandgrain ")


def test_long_minus_strand_region_streams_in_whole_lines(cli):
    """Width 3 makes the CLI read 49,152-base pieces: a 200 kb region takes five, back to front."""
    assert cli("genome", "add", "yeast", "--fasta", YEAST_FASTA, "-q")[0] == 0
    _, plus, _ = cli("genome", "region", "yeast", "IV:100001-300000", "--width", "3")
    _, minus, _ = cli(
        "genome", "region", "yeast", "IV:100001-300000", "--width", "3", "--strand", "-"
    )
    fwd = "".join(plus.splitlines()[1:])
    rev_lines = minus.splitlines()[1:]
    assert len(fwd) == 200_000 and minus.startswith(">IV:100001-300000/rc\n")
    assert all(len(line) == 3 for line in rev_lines[:-1]) and len(rev_lines[-1]) == 2
    table = str.maketrans("ACGTNacgtn", "TGCANtgcan")
    assert "".join(rev_lines) == fwd.translate(table)[::-1]


def test_demo_imports_and_indexes_once(cli):
    from conftest import DATA

    code, _, err = cli("--executor", "serial", "demo", "--data", DATA, "-q")
    assert code == 0, err
    assert "imported demo genome yeast: 7,136 genes" in err
    assert "indexed demo genome yeast for SpCas9" in err
    assert cli.store.dataset_names("siteindex") == [
        "sars-cov-2.NGG_NAG_NGA.20.3p",  # SpCas9's NAG and NGA off-targets are searched too
        "yeast.NGG_NAG_NGA.20.3p",
    ]
    # calling's read set: the three BAMs' read pairs back as FASTQ (samtools fastq)
    assert "stored the demo read set 1000g-chr17: 3 samples, 482 read pairs over 4,200 bp" in err
    assert cli.store.dataset_names("readsets") == ["1000g-chr17"]
    # the last line: each domain's time
    last = err.strip().splitlines()[-1]
    assert last.startswith("sandgrain: demo ready in ") and "calling" in last and "guides" in last
    code, _, err = cli("demo", "--data", DATA, "-q")
    assert code == 0 and "yeast is up to date" in err and "indexed" not in err
    assert "demo read set 1000g-chr17 is up to date" in err
    code, _, err = cli("demo", "--data", "/nonexistent", "-q")
    assert code == 0 and "starting with an empty store" in err
