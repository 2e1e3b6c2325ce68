"""Collections from the command line: add (new, append, duplicates), list, mutations, qc."""

from __future__ import annotations

import gzip
import json

import pytest
from strains_fixtures import GENOMES, METADATA, REF_FASTA, REF_GB, genomes

from sandgrain.errors import ConflictError
from sandgrain.storage import Store
from sandgrain.strains.collection import Collection, add_genomes


def write_fasta(path, records, gz=False):
    text = "".join(f">{n} some description\n{s[:30000]}\n" for n, s in records)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture
def with_reference(cli):
    code, _, err = cli(
        "genome", "add", "MN908947", "--fasta", REF_FASTA, "--annotation", REF_GB, "-q"
    )
    assert code == 0, err
    return cli


def test_add_the_shared_genomes_and_read_them_back(with_reference):
    cli = with_reference
    code, out, err = cli(
        "strains",
        "add",
        "--collection",
        "ncov",
        "--reference",
        "MN908947",
        "--fasta",
        GENOMES,
        "--metadata",
        METADATA,
        "-q",
    )
    assert code == 0, err
    assert "418 genomes added" in out
    code, out, _ = cli("strains", "list", "--json")
    (row,) = json.loads(out)
    assert row["collection"] == "ncov" and row["genomes"] == 418
    # without --batch the first tasks are smaller, so a small add still keeps every worker busy
    parts = Collection.open(cli.store, "ncov").meta["part_genomes"]
    assert [parts[f] for f in sorted(parts)] == [50, 100, 200, 68]
    assert sum(row["statuses"].values()) == 418
    code, out, _ = cli(
        "strains", "mutations", "--collection", "ncov", "--strain", "USA/WA-UW-6162/2020"
    )
    (line,) = out.splitlines()
    got = json.loads(line)
    assert set(got) >= {
        "strain",
        "substitutions",
        "deletions",
        "insertions",
        "missing",
        "aa_substitutions",
        "qc",
    }
    assert got["deletions"] == ["del:21991-21993"] and "S:Y144-" in got["aa_deletions"]
    assert got["qc"]["status"] in ("good", "mediocre", "bad")
    code, out, _ = cli("strains", "mutations", "--collection", "ncov", "--format", "tsv")
    lines = out.splitlines()
    assert len(lines) == 419 and lines[0].split("\t")[0] == "strain"
    assert sum("A23403G" in ln.split("\t")[1] for ln in lines[1:]) >= 250
    code, out, _ = cli("strains", "qc", "--collection", "ncov")
    rows = out.splitlines()
    assert rows[0].startswith("strain\tstatus\tscore") and len(rows) == 419
    coll = Collection.open(cli.store, "ncov")
    meta = coll.metadata()
    assert meta.num_rows == 418 and {"strain", "date", "country"} <= set(meta.column_names)
    assert len(coll.reference()) == 29903
    batches = list(coll.iter_calls(batch=100))
    assert [len(b) for b in batches] == [100, 100, 100, 100, 18]
    prov = coll.dataset.manifest["provenance"]
    assert prov["command"] == "strains add" and prov["inputs"][0]["sha256"]


def test_append_duplicates_and_reports(with_reference, tmp_path):
    cli = with_reference
    recs = list(genomes()[:30])
    first = write_fasta(tmp_path / "a.fa", recs[:20])
    second = write_fasta(tmp_path / "b.fa.gz", recs[15:30], gz=True)
    meta = tmp_path / "m.csv"
    meta.write_text(
        "name,date,country\n"
        + "".join(f"{n},2020-03-0{i % 9 + 1},X\n" for i, (n, _) in enumerate(recs[:10]))
        + "nobody/2020,2020-01-01,Y\n"
    )
    code, out, err = cli(
        "strains",
        "add",
        "--collection",
        "c",
        "--reference",
        "MN908947",
        "--fasta",
        first,
        "--metadata",
        meta,
        "--id-column",
        "name",
        "-q",
    )
    assert code == 0, err
    assert "10 genomes without metadata" in err and "1 metadata rows without a genome" in err
    coll = Collection.open(cli.store, "c")
    report = coll.dataset.manifest["provenance"]["parameters"]["report"]
    assert report["metadata_without_genome"] == ["nobody/2020"]
    assert report["n_genomes_without_metadata"] == 10
    version = coll.dataset.manifest["version"]
    # the second FASTA repeats 5 genomes: refused, and nothing changes
    code, _, err = cli(
        "strains", "add", "--collection", "c", "--reference", "MN908947", "--fasta", second, "-q"
    )
    assert code != 0 and "already in the collection" in err and len(err.splitlines()) == 1
    assert Collection.open(cli.store, "c").dataset.manifest["version"] == version
    code, out, err = cli(
        "strains",
        "add",
        "--collection",
        "c",
        "--reference",
        "MN908947",
        "--fasta",
        second,
        "--on-duplicate",
        "replace",
        "-q",
    )
    assert code == 0, err
    assert "10 genomes added, 5 replaced, 30 in all" in out
    coll = Collection.open(cli.store, "c")
    assert sorted(coll.strains()) == sorted(n for n, _ in recs)
    meta = coll.metadata()
    assert meta.num_rows == 30 and meta.column_names[0] == "strain"
    dated = dict(zip(meta["strain"].to_pylist(), meta["date"].to_pylist(), strict=True))
    assert dated[recs[0][0]].startswith("2020-03") and dated[recs[25][0]] == ""
    assert len(coll.meta["history"]) == 2


def test_short_collection_option_and_qc_statuses(with_reference, tmp_path):
    """``-c`` is ``--collection`` in add, mutations and qc as in every other strains command;
    qc's ``--status`` is also spelled ``--qc`` and takes comma-separated statuses like theirs."""
    cli = with_reference
    recs = list(genomes()[:12])
    fasta = write_fasta(tmp_path / "s.fa", recs)
    code, out, err = cli("strains", "add", "-c", "s", "--reference", "MN908947", "--fasta",
                         fasta, "-q")  # fmt: skip
    assert code == 0, err
    assert "12 genomes added" in out
    code, out, err = cli("strains", "mutations", "-c", "s", "--strain", recs[0][0])
    assert code == 0, err
    assert json.loads(out)["strain"] == recs[0][0]
    code, out, err = cli("strains", "qc", "-c", "s")
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    status = {r[0]: r[1] for r in rows[1:]}
    assert len(status) == 12
    for flag in ("--status", "--qc"):
        code, out, err = cli("strains", "qc", "-c", "s", flag, "good,mediocre")
        assert code == 0, err
        kept = [line.split("\t")[0] for line in out.splitlines()[1:]]
        assert kept == [n for n, st in status.items() if st in ("good", "mediocre")]
    code, _, err = cli("strains", "qc", "-c", "s", "--qc", "good,fine")
    assert code != 0 and "'good,fine'" in err and len(err.strip().splitlines()) == 1


def test_repeated_ids_in_one_fasta(with_reference, tmp_path):
    cli = with_reference
    (a, sa), (b, sb) = genomes()[1], genomes()[2]
    fasta = write_fasta(tmp_path / "r.fa", [(a, sa), (b, sb), (a, sb)])
    code, _, err = cli(
        "strains", "add", "--collection", "r", "--reference", "MN908947", "--fasta", fasta, "-q"
    )
    assert code != 0 and "repeated in the FASTA" in err
    code, _, err = cli(
        "strains",
        "add",
        "--collection",
        "r",
        "--reference",
        "MN908947",
        "--fasta",
        fasta,
        "--on-duplicate",
        "replace",
        "-q",
    )
    assert code == 0, err
    coll = Collection.open(cli.store, "r")
    assert sorted(coll.strains()) == sorted([a, b])
    # the last copy of a won: it is b's sequence, so a's calls equal b's
    assert coll.calls(a).substitutions == coll.calls(b).substitutions


def test_bad_input_is_one_line(with_reference, tmp_path):
    cli = with_reference
    code, _, err = cli(
        "strains", "add", "--collection", "x", "--reference", "nope", "--fasta", GENOMES, "-q"
    )
    assert code != 0 and len(err.strip().splitlines()) == 1
    notfasta = tmp_path / "x.fa"
    notfasta.write_text("hello\n")
    code, _, err = cli(
        "strains", "add", "--collection", "x", "--reference", "MN908947", "--fasta", notfasta, "-q"
    )
    assert code != 0 and "no FASTA records" in err
    code, _, err = cli("strains", "mutations", "--collection", "missing")
    assert code != 0 and "no collection" in err


def test_a_failed_add_publishes_nothing(tmp_path, monkeypatch):
    from sandgrain.genome.store import add_genome

    store = Store(str(tmp_path / "store"))
    add_genome(store, "MN908947", str(REF_FASTA), annotation=str(REF_GB))
    fasta = write_fasta(tmp_path / "a.fa", genomes()[:5])

    def boom(*args, **kwargs):
        raise ConflictError("simulated failure")

    monkeypatch.setattr("sandgrain.strains.collection.run_plan", boom)
    with pytest.raises(ConflictError):
        add_genomes(store, "c", reference="MN908947", fasta=fasta, executor="serial")
    assert not store.has_dataset("strains", "c")
    assert store.list("scratch") == []


def test_the_reference_accession_finds_the_genome_under_another_name(tmp_path):
    """``--reference MN908947`` on a store whose SARS-CoV-2 is ``sars-cov-2`` (the demo's)."""
    from sandgrain.genome.store import add_genome

    store = Store(str(tmp_path / "store"))
    add_genome(store, "sars-cov-2", str(REF_FASTA), annotation=str(REF_GB))
    fasta = write_fasta(tmp_path / "a.fa", genomes()[:3])
    report = add_genomes(store, "c", reference="MN908947", fasta=fasta, executor="serial")
    assert report.total == 3
    assert Collection.open(store, "c").meta["reference"]["genome"] == "sars-cov-2"


def test_the_same_plan_on_a_process_pool(tmp_path):
    from sandgrain.genome.store import add_genome

    store = Store(str(tmp_path / "store"))
    add_genome(store, "MN908947", str(REF_FASTA), annotation=str(REF_GB))
    fasta = write_fasta(tmp_path / "a.fa", genomes()[:40])
    serial = add_genomes(store, "s", reference="MN908947", fasta=fasta, executor="serial", batch=7)
    pooled = add_genomes(store, "p", reference="MN908947", fasta=fasta, executor="local:2", batch=7)
    assert serial.statuses == pooled.statuses
    rows = [
        [c.to_dict() for b in Collection.open(store, n).iter_calls() for c in b] for n in ("s", "p")
    ]
    assert rows[0] == rows[1]
