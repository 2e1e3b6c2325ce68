"""Genome import and region reads, checked against pysam and pyfaidx reading the original FASTA."""

from __future__ import annotations

import gzip
import hashlib
import random
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pyfaidx
import pysam
import pytest
from Bio import SeqIO
from conftest import CHR22_FASTA, CHRX_FASTA, SARS_FASTA, SARS_GBK, YEAST_FASTA, YEAST_GTF

from sandgrain.errors import AmbiguousNameError, ConflictError, InputError, NotFoundError
from sandgrain.genome.regions import Region, reverse_complement
from sandgrain.genome.store import (
    add_genome,
    list_genomes,
    open_genome,
    open_reference_genome,
    remove_genome,
)
from sandgrain.provenance import sha256_file


@pytest.fixture(scope="module")
def yeast_plain(tmp_path_factory):
    """The yeast FASTA decompressed, for pyfaidx to read as the reference."""
    path = tmp_path_factory.mktemp("ref") / "yeast.fa"
    with gzip.open(YEAST_FASTA, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return pyfaidx.Fasta(str(path), sequence_always_upper=False)


def random_regions(lengths: dict[str, int], n: int, rng: random.Random):
    """Random regions of assorted sizes, with chromosome starts and ends always included."""
    out = []
    for chrom, length in lengths.items():
        out += [
            (chrom, 0, 1),
            (chrom, length - 1, length),
            (chrom, 0, min(length, 5000)),
            (chrom, max(0, length - 7001), length),
        ]
    for _ in range(n):
        chrom = rng.choice(list(lengths))
        size = min(lengths[chrom], rng.choice([1, 20, 23, 61, 1000, 65_280, 200_000]))
        start = rng.randrange(0, lengths[chrom] - size + 1)
        out.append((chrom, start, start + size))
    return out


def test_yeast_regions_equal_pyfaidx(yeast, yeast_plain):
    lengths = {c["name"]: c["length"] for c in yeast.chromosomes}
    assert lengths == {name: len(yeast_plain[name]) for name in list(yeast_plain.keys())}
    for chrom, s, e in random_regions(lengths, 400, random.Random(1)):
        assert yeast.sequence(chrom, s, e) == yeast_plain[chrom][s:e].seq, (chrom, s, e)
        if e - s <= 1000:
            minus = yeast.sequence(chrom, s, e, "-")
            assert minus == yeast_plain[chrom][s:e].reverse.complement.seq


def test_stored_files_are_standard_bgzf(yeast, tmp_path):
    """samtools/pysam open what we store, and our indexes equal the ones htslib builds."""
    ds = yeast.dataset
    for f in ("sequence.fa.gz", "sequence.fa.gz.fai", "sequence.fa.gz.gzi"):
        (tmp_path / f).write_bytes(ds.read_bytes(f))
    fa = pysam.FastaFile(str(tmp_path / "sequence.fa.gz"))
    assert fa.fetch("XV", 564475, 566191) == yeast.sequence("XV", 564475, 566191)
    ours = {f: (tmp_path / f).read_bytes() for f in ("sequence.fa.gz.fai", "sequence.fa.gz.gzi")}
    copy = tmp_path / "copy.fa.gz"
    shutil.copy(tmp_path / "sequence.fa.gz", copy)
    pysam.faidx(str(copy))  # htslib writes copy.fa.gz.fai and .gzi
    assert (tmp_path / "copy.fa.gz.fai").read_bytes() == ours["sequence.fa.gz.fai"]
    assert (tmp_path / "copy.fa.gz.gzi").read_bytes() == ours["sequence.fa.gz.gzi"]
    assert ds.verify() == []


def test_manifest_carries_provenance_and_stats(yeast):
    m = yeast.dataset.manifest
    assert m["format"] == "sandgrain.genome" and m["format_version"] == 1
    prov = m["provenance"]
    assert prov["command"] == "genome add" and prov["version"]
    roles = {i["role"]: i for i in prov["inputs"]}
    assert roles["fasta"]["sha256"] == sha256_file(YEAST_FASTA)
    assert roles["annotation"]["sha256"]
    xv = next(c for c in yeast.chromosomes if c["name"] == "XV")
    assert xv["length"] == 1_091_291
    seq = yeast.sequence("XV", 0, xv["length"])
    assert xv["md5"] == hashlib.md5(seq.upper().encode()).hexdigest()
    assert xv["gc"] == seq.upper().count("G") + seq.upper().count("C")
    assert yeast.total_length == 12_157_105


def test_yeast_genes(yeast):
    ade2 = yeast.gene("ade2")
    assert (ade2.chrom, ade2.start0 + 1, ade2.end0, ade2.strand) == ("XV", 564476, 566191, "-")
    assert yeast.gene("YOR128C") == ade2 == yeast.gene("S000005654")
    ura3 = yeast.gene("URA3")
    assert (ura3.chrom, ura3.start0 + 1, ura3.end0) == ("V", 116167, 116970)
    gal1 = yeast.gene("Gal1")
    assert (gal1.chrom, gal1.start0 + 1, gal1.end0, gal1.strand) == ("II", 279021, 280607, "+")
    # ADE2's coding sequence starts with ATG and ends with a stop codon on the minus strand
    cds = yeast.sequence("XV", ade2.start0, ade2.end0, "-").upper()
    assert cds.startswith("ATG") and cds[-3:] in ("TAA", "TAG", "TGA")
    with pytest.raises(NotFoundError, match="unknown gene"):
        yeast.gene("NOSUCHGENE1")


def test_chromosome_aliases_both_ways(yeast, demo_store):
    assert yeast.resolve_chrom("chrI") == "I"
    assert yeast.resolve_chrom("chrM") == yeast.resolve_chrom("MT") == "Mito"
    assert yeast.region("chrXV:564476-564480") == Region("XV", 564475, 564480)
    assert yeast.region("XV") == Region("XV", 0, 1_091_291)
    with pytest.raises(NotFoundError, match="chrZZ"):
        yeast.region("chrZZ:1-10")
    assert open_genome(demo_store, "sacCer3").name == "yeast"  # genome alias


@pytest.mark.parametrize(
    "text, message",
    [
        ("XV:0-5", "positions start at 1"),
        ("XV:100-50", "before start"),
        ("XV:1-2000000", "out of range"),
        ("XV:2000000-2000001", "out of range"),
        ("XV:a-b", "cannot read region"),
    ],
)
def test_bad_regions(yeast, text, message):
    with pytest.raises(InputError, match=message):
        yeast.region(text)


def test_sars_cov_2(demo_store):
    g = open_genome(demo_store, "sars-cov-2")
    truth = str(next(SeqIO.parse(str(SARS_FASTA), "fasta")).seq)
    assert g.sequence("NC_045512.2", 0, len(truth)) == truth
    s = g.gene("S")
    assert (s.start0 + 1, s.end0, s.strand) == (21563, 25384, "+")
    assert g.sequence(s.chrom, s.start0, s.start0 + 3) == "ATG"
    assert g.summary()["genes"] == 11


def test_human_slices_with_soft_masking_and_n_runs(local_store, tmp_path):
    """70 Mb of human chrX (real repeats, N runs) and the chr22 slice whose name contains ':'."""
    x = add_genome(local_store, "hs-chrX", str(CHRX_FASTA))
    plain = tmp_path / "x.fa"
    with gzip.open(CHRX_FASTA, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    ref = pyfaidx.Fasta(str(plain), sequence_always_upper=False)
    (name,) = ref.keys()
    assert x.chromosomes[0]["length"] == len(ref[name]) == 69_999_930
    rng = random.Random(7)
    for chrom, s, e in random_regions({name: len(ref[name])}, 300, rng):
        assert x.sequence(chrom, s, e) == ref[name][s:e].seq
    whole = ref[name][:].seq
    stats = x.chromosomes[0]
    assert stats["n_count"] == whole.count("N") > 1_000_000  # N runs kept
    assert stats["masked"] == sum(whole.count(b) for b in "acgtn")
    assert x.sequence(name, 0, 10) == "NNNNNNNNNN"

    c22 = add_genome(local_store, "hs-chr22-slice", str(CHR22_FASTA))

    rec = next(SeqIO.parse(str(CHR22_FASTA), "fasta"))
    assert rec.id == "22:20000001-21000000"
    assert c22.region("22:20000001-21000000") == Region(rec.id, 0, len(rec.seq))
    assert c22.fetch(c22.region("22:20000001-21000000:101-160")) == str(rec.seq[100:160])
    assert reverse_complement("ACGTNacgtn") == "nacgtNACGT"


def test_gtf_annotation_and_listing(local_store):
    g = add_genome(
        local_store, "yeast-ens", str(YEAST_FASTA), annotation=str(YEAST_GTF), aliases=["R64-ens"]
    )
    ade2 = g.gene("YOR128C")
    assert (ade2.chrom, ade2.start0 + 1, ade2.end0, ade2.strand) == ("XV", 564476, 566191, "-")
    assert g.summary()["genes"] == 7036
    assert [x.name for x in list_genomes(local_store)] == ["yeast-ens"]
    with pytest.raises(ConflictError):
        add_genome(local_store, "yeast-ens", str(SARS_FASTA))
    with pytest.raises(ConflictError, match="alias"):
        add_genome(local_store, "other", str(SARS_FASTA), aliases=["R64-ens"])
    remove_genome(local_store, "R64-ens")
    assert list_genomes(local_store) == [] and local_store.list("genomes") == []


def test_import_and_read_through_s3(s3_store):
    """The same genome in object storage: regions come from ranged reads of the BGZF blocks."""
    g = add_genome(s3_store, "sars", str(SARS_FASTA), annotation=str(SARS_GBK))
    truth = str(next(SeqIO.parse(str(SARS_FASTA), "fasta")).seq)
    again = open_genome(s3_store, "sars")
    rng = random.Random(3)
    for _, s, e in random_regions({"NC_045512.2": len(truth)}, 50, rng):
        assert again.sequence("NC_045512.2", s, e) == truth[s:e]
    assert g.gene("ORF1ab").strand == "+"


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_import_from_url(local_store, http_server):
    root, base = http_server
    shutil.copy(SARS_FASTA, root / "sars.fasta")
    shutil.copy(SARS_GBK, root / "sars.gbk")
    g = add_genome(local_store, "sars", f"{base}/sars.fasta", annotation=f"{base}/sars.gbk")
    inputs = {i["role"]: i for i in g.dataset.manifest["provenance"]["inputs"]}
    assert inputs["fasta"]["source"] == f"{base}/sars.fasta"
    assert inputs["fasta"]["sha256"] == sha256_file(SARS_FASTA)
    assert inputs["annotation"]["sha256"] == sha256_file(SARS_GBK)
    assert g.summary()["genes"] == 11


def test_ambiguous_gene_name_lists_candidates(yeast):
    # find a name that SGD gives to more than one gene as an alias
    from collections import Counter

    counts = Counter(a.lower() for gene in yeast.genes for a in gene.aliases)
    symbols = {gene.symbol.lower() for gene in yeast.genes}
    ambiguous = next(a for a, n in counts.items() if n > 1 and a not in symbols)
    with pytest.raises(AmbiguousNameError) as err:
        yeast.gene(ambiguous)
    assert len(err.value.candidates) > 1


def test_soft_masking_and_n_runs_survive(local_store, tmp_path):
    """Lowercase (repeat-masked) bases and N runs come back exactly, across line and block ends."""
    rng = random.Random(11)
    seqs = {}
    for i, length in enumerate([1, 59, 60, 61, 130_001, 70_000]):
        parts = []
        while sum(map(len, parts)) < length:
            kind = rng.random()
            run = rng.randint(1, 5000)
            if kind < 0.1:
                parts.append("N" * run)
            elif kind < 0.15:
                parts.append("n" * run)
            else:
                parts.append("".join(rng.choice("ACGTacgt") for _ in range(run)))
        seqs[f"seq{i}"] = "".join(parts)[:length]
    fasta = tmp_path / "masked.fa"
    # odd line width on input: the store re-wraps at 60
    fasta.write_text(
        "".join(
            f">{n} some description\n" + "".join(s[i : i + 77] + "\n" for i in range(0, len(s), 77))
            for n, s in seqs.items()
        )
    )
    g = add_genome(local_store, "masked", str(fasta))
    for name, seq in seqs.items():
        assert g.sequence(name, 0, len(seq)) == seq
        for _ in range(30):
            s = rng.randrange(len(seq))
            e = rng.randint(s + 1, len(seq))
            assert g.sequence(name, s, e) == seq[s:e]
        stats = next(c for c in g.chromosomes if c["name"] == name)
        assert stats["masked"] == sum(seq.count(b) for b in "acgtn")
        assert stats["n_count"] == seq.upper().count("N")
        assert stats["description"] == "some description"


def test_one_line_chromosome_streams(local_store, tmp_path):
    """A chromosome on a single 9 Mb line is read in bounded pieces, not as one line."""
    import numpy as np

    rng = np.random.default_rng(4)
    seq = np.frombuffer(b"ACGTacgtN", np.uint8)[rng.integers(0, 9, 9_000_001)].tobytes().decode()
    path = tmp_path / "oneline.fa"
    path.write_text(f">big\n{seq}\n>small\nACGT")
    g = add_genome(local_store, "oneline", str(path))
    assert g.sequence("big", 0, len(seq)) == seq
    assert g.sequence("big", 4_194_300, 4_194_400) == seq[4_194_300:4_194_400]
    assert g.sequence("small", 0, 4) == "ACGT"


def test_annotation_beyond_chromosome_end_is_refused(local_store, tmp_path):
    gtf = tmp_path / "bad.gtf"
    gtf.write_text('NC_045512.2\tx\tgene\t1\t50000\t.\t+\t.\tgene_id "g1"; gene_name "BIG";\n')
    with pytest.raises(InputError, match="beyond the end of NC_045512.2"):
        add_genome(local_store, "s", str(SARS_FASTA), annotation=str(gtf))
    assert local_store.list() == []


def test_name_cannot_shadow_another_genomes_alias(demo_store, tmp_path):
    with pytest.raises(ConflictError, match="alias of genome 'yeast'"):
        add_genome(demo_store, "sacCer3", str(SARS_FASTA))


def test_a_reference_is_found_by_its_assembly_or_accession(demo_store, local_store):
    """``MN908947`` (the usual accession of SARS-CoV-2, the default reference of ``strains
    simulate``) finds the genome imported as ``sars-cov-2``; a name still wins over an assembly."""
    with pytest.raises(NotFoundError):
        open_genome(demo_store, "MN908947")  # a genome's own name or alias only
    for name in ("MN908947", "MN908947.3", "genbank:MN908947.3", "NC_045512.2", "wuhCor1"):
        assert open_reference_genome(demo_store, name).name == "sars-cov-2", name
    assert open_reference_genome(demo_store, "R64").name == "yeast"  # its assembly R64-1-1
    assert open_reference_genome(demo_store, "sacCer3").name == "yeast"  # its alias
    with pytest.raises(NotFoundError, match=r"assembly GRCh37 \(hg19\).*known: sars-cov-2, yeast"):
        open_reference_genome(demo_store, "hg19")
    with pytest.raises(NotFoundError, match=r"unknown genome 'nope' \(known: sars-cov-2, yeast\)"):
        open_reference_genome(demo_store, "nope")
    with pytest.raises(NotFoundError, match="known: none yet"):
        open_reference_genome(local_store, "MN908947")
    add_genome(local_store, "wuhan", str(SARS_FASTA))
    add_genome(local_store, "wuhan-again", str(SARS_FASTA))
    with pytest.raises(AmbiguousNameError, match="wuhan, wuhan-again") as e:
        open_reference_genome(local_store, "MN908947")
    assert e.value.candidates == ["wuhan", "wuhan-again"]
    assert open_reference_genome(local_store, "wuhan").name == "wuhan"
