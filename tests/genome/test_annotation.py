"""Gene annotations: SGD, GTF, GFF3 and GenBank readers, name look-up, overlap queries, Parquet."""

from __future__ import annotations

import csv
import gzip
import random
from pathlib import Path

import pytest
from conftest import DATA

from sandgrain.errors import AmbiguousNameError, InputError, NotFoundError
from sandgrain.genome.annotation.genes import Gene, GeneTable
from sandgrain.genome.annotation.read import detect_format, parse_annotation, read_annotation

YEAST_DIR = DATA / "genomes" / "yeast-R64"
SGD_TAB = YEAST_DIR / "SGD_features.tab"
YEAST_GTF = YEAST_DIR / "Saccharomyces_cerevisiae.R64-1-1.96.gtf.gz"
SARS_GBK = DATA / "genomes" / "sars-cov-2" / "NC_045512.2.gbk"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"test data not found: {path} (set SANDGRAIN_TEST_DATA)")
    return path


@pytest.fixture(scope="module")
def sgd() -> GeneTable:
    return read_annotation(_need(SGD_TAB), genome="yeast")


@pytest.fixture(scope="module")
def yeast_gtf() -> GeneTable:
    return read_annotation(_need(YEAST_GTF), genome="yeast")


@pytest.fixture(scope="module")
def sars() -> GeneTable:
    return read_annotation(_need(SARS_GBK), genome="sars-cov-2")


# --------------------------------------------------------------------------------------------
# SGD features table (real data)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "location", "strand", "gene_id"),
    [
        ("ADE2", "XV:564476-566191", "-", "YOR128C"),
        ("URA3", "V:116167-116970", "+", "YEL021W"),
        ("GAL1", "II:279021-280607", "+", "YBR020W"),
    ],
)
def test_sgd_well_known_genes(sgd, name, location, strand, gene_id):
    gene = sgd.lookup(name)
    assert gene.symbol == name
    assert gene.location == location
    assert gene.strand == strand
    assert gene.gene_id == gene_id


def test_sgd_ade2_in_detail(sgd):
    ade2 = sgd.lookup("ADE2")
    assert (ade2.chrom, ade2.start0, ade2.end0) == ("XV", 564475, 566191)
    assert (ade2.start1, ade2.end1) == (564476, 566191)
    assert "S000005654" in ade2.ids
    assert ade2.biotype == "ORF:Verified"
    assert ade2.exons == ade2.cds == ((564475, 566191),)
    assert "carboxylase" in ade2.description


def test_sgd_lookup_by_systematic_name_sgdid_alias_and_any_case(sgd):
    ade2 = sgd.lookup("ADE2")
    assert sgd.lookup("YOR128C") is ade2
    assert sgd.lookup("S000005654") is ade2
    assert sgd.lookup("ade2") is ade2
    assert sgd.lookup("yor128c") is ade2
    act1 = sgd.lookup("ACT1")
    assert sgd.lookup("END7") is act1  # an alias
    assert sgd.lookup("abY1") is act1


def test_sgd_gene_count_and_every_named_orf(sgd):
    # ~6,600 ORFs + ~300 tRNAs + ~100 other RNA genes + 90 transposon genes + pseudogenes
    assert 6_900 <= len(sgd) <= 7_400
    orfs = [g for g in sgd if g.biotype.startswith("ORF")]
    assert 6_500 <= len(orfs) <= 6_700
    with open(SGD_TAB, newline="") as fh:
        named = [
            (row[3], row[4])
            for row in csv.reader(fh, delimiter="\t")
            if row[1] == "ORF" and row[6].startswith("chromosome") and row[4]
        ]
    assert len(named) > 4_000
    for systematic, standard in named:
        gene = sgd.lookup(standard)
        assert gene.gene_id == systematic


def test_sgd_rna_genes_and_chromosome_names(sgd):
    biotypes = {g.biotype for g in sgd}
    assert {"tRNA", "snoRNA", "rRNA", "ncRNA", "snRNA", "pseudogene"} <= biotypes
    assert "transposable_element_gene" in biotypes
    assert sgd.chromosomes() == [
        "I", "II", "III", "IV", "V", "VI", "VII", "VIII",
        "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI", "Mito",
    ]  # fmt: skip
    assert sgd.lookup("COX1").chrom == "Mito"


@pytest.mark.parametrize("name", ["ARS102", "TEL01L", "CEN1", "YALWdelta1", "FLP1"])
def test_sgd_non_genes_are_left_out(sgd, name):
    # replication origins, telomeres, centromeres, LTRs, and the 2-micron plasmid's genes
    with pytest.raises(NotFoundError):
        sgd.lookup(name)


def test_sgd_intron_containing_genes_have_several_exons(sgd):
    act1 = sgd.lookup("ACT1")
    assert act1.gene_id == "YFL039C"
    assert act1.exons == ((53259, 54377), (54686, 54696))
    assert act1.cds == act1.exons
    assert act1.location == "VI:53260-54696"
    # tRNA genes take their exons from the noncoding_exon rows
    trn1 = sgd.lookup("TRN1")
    assert trn1.biotype == "tRNA"
    assert len(trn1.exons) == 2
    assert trn1.cds == ()
    assert sum(len(g.exons) >= 2 for g in sgd) > 300


def test_sgd_frameshift_genes_keep_both_cds_parts(sgd):
    est3 = sgd.lookup("EST3")  # +1 programmed frameshift: the CDS skips one base
    assert est3.cds == ((335665, 335935), (335936, 336212))


SGD_SMALL = (
    "S000005654\tORF\tVerified\tYOR128C\tADE2\tade2 alias|ADE2\tchromosome 15\tL000000032\t15"
    "\t566191\t564476\tC\t64\t2011-02-03\t1996-07-31\tPhosphoribosylaminoimidazole carboxylase\n"
    "S000005654\tORF\tVerified\tYOR128C\tADE2\tade2 alias|ADE2\tchromosome 15\tL000000032\t15"
    "\t566191\t564476\tC\t\t\t\t\n"
    "S000035306\tCDS\t\t\t\t\tYOR128C\t\t15\t566191\t564476\tC\t\t2011-02-03\t1996-07-31\t\n"
    "S000029207\tnot physically mapped\t\tHEM10\tHEM10\t\tchromosome 7\tL000000763\t7"
    "\t\t\t\t\t\t\t\n"
    "S000077380\tARS\t\tARS1529\t\t\tchromosome 15\t\t15\t565000\t565200\t\t\t\t\t\n"
    "S000006680\ttRNA\t\ttP(UGG)A\tTRN1\t\tchromosome 1\tL000003601\t1\t139152\t139254\tW"
    "\t\t\t\t\n"
    "S000200001\tnoncoding_exon\t\t\t\t\ttP(UGG)A\t\t1\t139152\t139187\tW\t\t\t\t\n"
    "S000200002\tnoncoding_exon\t\t\t\t\ttP(UGG)A\t\t1\t139219\t139254\tW\t\t\t\t\n"
)


def test_sgd_reader_skips_repeats_unmapped_rows_and_non_genes(tmp_path):
    path = tmp_path / "SGD_features.tab"
    path.write_text(SGD_SMALL)
    table = read_annotation(path)
    assert [g.symbol for g in table] == ["TRN1", "ADE2"]
    ade2 = table.lookup("ADE2")
    assert ade2.aliases == ("ade2 alias",)
    assert ade2.ids == ("S000005654", "L000000032")
    assert table.lookup("TRN1").exons == ((139151, 139187), (139218, 139254))


def test_sgd_chromosome_numbers_can_be_mapped(tmp_path):
    path = tmp_path / "features.tab"
    path.write_text(SGD_SMALL)
    table = read_annotation(path, chrom_map={"15": "chrXV", "1": "chrI"})
    assert table.lookup("ADE2").location == "chrXV:564476-566191"
    assert table.chromosomes() == ["chrI", "chrXV"]
    # the default names work as keys too
    table = read_annotation(path, chrom_map={"XV": "chr15"})
    assert table.lookup("ADE2").chrom == "chr15"
    assert table.lookup("TRN1").chrom == "I"


# --------------------------------------------------------------------------------------------
# GTF (real data and small files)
# --------------------------------------------------------------------------------------------


def test_ensembl_yeast_gtf(yeast_gtf, sgd):
    assert len(yeast_gtf) == 7036
    ade2 = yeast_gtf.lookup("YOR128C")
    assert ade2.location == sgd.lookup("ADE2").location == "XV:564476-566191"
    assert ade2.strand == "-"
    assert ade2.biotype == "protein_coding"
    # GTF CDS lines leave out the stop codon; the reader puts it back, as SGD has it
    assert ade2.cds == ((564475, 566191),)
    act1 = yeast_gtf.lookup("ACT1")  # one of the genes with a gene_name
    assert act1.gene_id == "YFL039C"
    assert act1.exons == sgd.lookup("ACT1").exons


def test_ensembl_gtf_agrees_with_sgd(yeast_gtf, sgd):
    same = 0
    for gene in yeast_gtf:
        other = sgd.find(gene.gene_id)
        if len(other) == 1 and other[0].location == gene.location:
            same += 1
    assert same / len(yeast_gtf) > 0.99


GTF_NO_GENE_LINES = """\
#!genome-build test
chr5\tHAVANA\ttranscript\t100\t900\t.\t-\t.\tgene_id "ENSG00000001.3"; transcript_id "T1"; \
gene_type "lncRNA"; gene_name "ABC"; tag "basic"; tag "CCDS"; note "semi;colon";
chr5\tHAVANA\texon\t100\t300\t.\t-\t.\tgene_id "ENSG00000001.3"; transcript_id "T1"; \
exon_number 1; gene_name "ABC";
chr5\tHAVANA\texon\t700\t900\t.\t-\t.\tgene_id "ENSG00000001.3"; transcript_id "T1";
chr5\tHAVANA\texon\t250\t400\t.\t-\t.\tgene_id "ENSG00000001.3"; transcript_id "T2";
chr5\tHAVANA\texon\t650\t1000\t.\t-\t.\tgene_id "ENSG00000001.3"; transcript_id "T2";
chr2\tHAVANA\tCDS\t10\t30\t.\t+\t0\tgene_id "G2"; transcript_id "T3";
chr2\tHAVANA\tstop_codon\t31\t33\t.\t+\t0\tgene_id "G2"; transcript_id "T3";
"""


def test_gtf_without_gene_lines_derives_genes_from_their_lines(tmp_path):
    path = tmp_path / "mini.gtf"
    path.write_text(GTF_NO_GENE_LINES)
    table = read_annotation(path)
    assert len(table) == 2
    abc = table.lookup("ABC")
    assert abc.gene_id == "ENSG00000001.3"
    assert table.lookup("ENSG00000001") is abc  # the unversioned ID works too
    assert (abc.chrom, abc.start0, abc.end0, abc.strand) == ("chr5", 99, 1000, "-")
    assert abc.biotype == "lncRNA"
    # exons merged over the two transcripts
    assert abc.exons == ((99, 400), (649, 1000))
    assert abc.cds == ()
    g2 = table.lookup("g2")
    assert g2.symbol == "G2"  # no gene_name: the ID stands in
    assert g2.cds == g2.exons == ((9, 33),)
    assert table.chromosomes() == ["chr5", "chr2"]  # order of first appearance


def test_gtf_gzip_and_content_sniffing(tmp_path):
    path = tmp_path / "annotation.dat"  # a name that says nothing
    path.write_bytes(gzip.compress(GTF_NO_GENE_LINES.encode()))
    assert detect_format(path) == "gtf"
    assert len(read_annotation(path)) == 2
    assert len(parse_annotation(GTF_NO_GENE_LINES.encode())) == 2


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ('chr1\tx\texon\tabc\t200\t.\t+\t.\tgene_id "A";', "whole numbers"),
        ('chr1\tx\texon\t300\t200\t.\t+\t.\tgene_id "A";', "bad coordinates"),
        ('chr1\tx\texon\t100\t200\t.\t*\t.\tgene_id "A";', "strand"),
        ('chr1\tx\texon\t100\t200\t.\t+\t.\tgene_id "A', "malformed GTF attribute"),
        ('chr1\tx\texon\t100\t200\t.\t+\t.\ttranscript_id "T";', "gene_id"),
        ("chr1\tx\texon\t100\t200\t.\t+", "9 tab-separated columns"),
    ],
)
def test_malformed_gtf_names_file_and_line(tmp_path, line, complaint):
    path = tmp_path / "bad.gtf"
    path.write_text('#!comment\nchr1\tx\tgene\t1\t500\t.\t+\t.\tgene_id "A";\n' + line + "\n")
    with pytest.raises(InputError) as err:
        read_annotation(path)
    message = str(err.value)
    assert f"{path}:3:" in message
    assert complaint in message
    assert "\n" not in message


# --------------------------------------------------------------------------------------------
# GFF3
# --------------------------------------------------------------------------------------------

GFF3 = """\
##gff-version 3
##sequence-region chr1 1 10000
chr1\tt\tgene\t1000\t5000\t.\t+\t.\tID=gene:G1;gene_id=G1;Name=FOO%3B1;\
Alias=foo-alias,weird%2Calias;Dbxref=GeneID:101,HGNC:HGNC:42;biotype=protein_coding;\
description=first%20gene
chr1\tt\tmRNA\t1000\t5000\t.\t+\t.\tID=tx1;Parent=gene:G1
chr1\tt\tmRNA\t1000\t4000\t.\t+\t.\tID=tx2;Parent=gene:G1
chr1\tt\texon\t1000\t1200\t.\t+\t.\tID=e1;Parent=tx1,tx2
chr1\tt\texon\t2000\t2500\t.\t+\t.\tParent=tx1
chr1\tt\texon\t4500\t5000\t.\t+\t.\tParent=tx1
chr1\tt\texon\t2300\t2600\t.\t+\t.\tParent=tx2
chr1\tt\texon\t3800\t4000\t.\t+\t.\tParent=tx2
chr1\tt\tCDS\t1100\t1200\t.\t+\t0\tID=cds1;Parent=tx1
chr1\tt\tCDS\t2000\t2500\t.\t+\t2\tID=cds1;Parent=tx1
chr1\tt\tCDS\t4500\t4700\t.\t+\t0\tID=cds1;Parent=tx1
chr1\tt\trepeat_region\t5500\t5600\t.\t.\t.\tID=rep1
chr1\tt\tncRNA_gene\t6000\t6300\t.\t-\t.\tID=G2;Name=BAR
chr1\tt\tncRNA\t6000\t6300\t.\t-\t.\tID=nc1;Parent=G2
chr1\tt\texon\t6000\t6100\t.\t-\t.\tParent=nc1
chr1\tt\texon\t6200\t6300\t.\t-\t.\tParent=nc1
chr2\tt\tmRNA\t100\t400\t.\t+\t.\tID=orphan;Name=LONER
chr2\tt\texon\t100\t400\t.\t+\t.\tParent=orphan
chr2\tt\tpseudogene\t800\t900\t.\t+\t.\tID=P1;Name=PSI1;Note=broken,really
###
##FASTA
>chr1
ACGTACGTACGT
"""


@pytest.fixture()
def gff3_table(tmp_path) -> GeneTable:
    path = tmp_path / "mini.gff3.gz"
    path.write_bytes(gzip.compress(GFF3.encode()))
    return read_annotation(path, genome="test")


def test_gff3_genes_and_attributes(gff3_table):
    assert [g.symbol for g in gff3_table] == ["FOO;1", "BAR", "LONER", "PSI1"]
    foo = gff3_table.lookup("FOO;1")  # %3B decoded
    assert foo.gene_id == "G1"
    assert "gene:G1" in foo.ids
    assert {"GeneID:101", "HGNC:HGNC:42"} <= set(foo.ids)
    assert foo.aliases == ("foo-alias", "weird,alias")  # %2C inside a value is not a separator
    assert foo.biotype == "protein_coding"
    assert foo.description == "first gene"
    assert gff3_table.lookup("weird,alias") is foo
    assert gff3_table.lookup("GeneID:101") is foo


def test_gff3_exons_follow_parent_chains_with_several_parents(gff3_table):
    foo = gff3_table.lookup("G1")
    # tx1 and tx2 share exon e1; neither transcript covers the other, so the union is kept
    assert foo.exons == ((999, 1200), (1999, 2600), (3799, 4000), (4499, 5000))
    assert foo.cds == ((1099, 1200), (1999, 2500), (4499, 4700))
    bar = gff3_table.lookup("BAR")
    assert (bar.strand, bar.biotype) == ("-", "ncRNA_gene")
    assert bar.exons == ((5999, 6100), (6199, 6300))


def test_gff3_transcript_without_gene_and_childless_pseudogene(gff3_table):
    loner = gff3_table.lookup("loner")
    assert loner.location == "chr2:100-400"
    assert loner.biotype == "protein_coding"
    assert loner.exons == ((99, 400),)
    psi = gff3_table.lookup("P1")
    assert psi.biotype == "pseudogene"
    assert psi.exons == ((799, 900),)  # no exon features: the gene is its own exon
    assert psi.description == "broken; really"
    with pytest.raises(NotFoundError):
        gff3_table.lookup("rep1")  # a repeat is not a gene


def test_gff3_cds_without_gene_is_a_gene(tmp_path):
    # prokaryotic annotations (Prokka) may list bare CDS features; one CDS may span several lines
    text = (
        "##gff-version 3\n"
        "contig_1\tProkka\tCDS\t10\t99\t.\t+\t0\tID=P_001;Name=dnaA;product=DnaA\n"
        "contig_1\tProkka\tCDS\t200\t300\t.\t-\t0\tID=P_002;locus_tag=P_002\n"
        "contig_1\tProkka\tCDS\t400\t450\t.\t-\t0\tID=P_002;locus_tag=P_002\n"
    )
    table = parse_annotation(text.encode(), source="prokka.gff")
    assert [g.symbol for g in table] == ["dnaA", "P_002"]
    assert table.lookup("P_001").cds == ((9, 99),)
    p2 = table.lookup("P_002")
    assert (p2.start0, p2.end0, p2.strand, p2.biotype) == (199, 450, "-", "protein_coding")
    assert p2.cds == p2.exons == ((199, 300), (399, 450))


def test_gff3_errors(tmp_path):
    path = tmp_path / "bad.gff3"
    path.write_text("##gff-version 3\nchr1\tt\tgene\t1\t10\t.\t+\t.\tID=a;oops\n")
    with pytest.raises(InputError, match=r"bad\.gff3:2: malformed GFF3 attribute 'oops'"):
        read_annotation(path)
    path.write_text("##gff-version 3\nchr1\tt\tgene\t1\t10\t.\t+\t.\tID=a\n\n"
                    "chr1\tt\texon\t1\t10\t.\t+\t.\tParent=b\n")  # fmt: skip
    with pytest.raises(InputError, match=r"bad\.gff3:4: Parent 'b'"):
        read_annotation(path)


# --------------------------------------------------------------------------------------------
# GenBank
# --------------------------------------------------------------------------------------------


def test_sars_cov_2_genbank(sars):
    assert len(sars) == 11
    assert sars.chromosomes() == ["NC_045512.2"]
    s = sars.lookup("S")
    assert s.location == "NC_045512.2:21563-25384"
    assert s.strand == "+"
    assert s.gene_id == "GU280_gp02"
    assert "GeneID:43740568" in s.ids
    assert sars.lookup("spike glycoprotein") is s  # /gene_synonym
    assert sars.lookup("YP_009724390.1") is s  # /protein_id of its CDS


def test_sars_cov_2_orf1ab_ribosomal_slippage(sars):
    orf1ab = sars.lookup("ORF1ab")
    assert orf1ab.location == "NC_045512.2:266-21555"
    # join(266..13468,13468..21555): two parts overlapping by the slipped base
    assert orf1ab.cds == ((265, 13468), (13467, 21555))
    assert orf1ab.exons == orf1ab.cds
    assert sars.lookup("ORF1a") is orf1ab  # the shorter product of the same gene


def test_genbank_cds_without_gene_feature(tmp_path):
    from Bio.Seq import Seq
    from Bio.SeqFeature import CompoundLocation, SeqFeature, SimpleLocation
    from Bio.SeqIO import write
    from Bio.SeqRecord import SeqRecord

    record = SeqRecord(Seq("ACGT" * 300), id="TEST_1.1", name="TEST_1", description="test")
    record.annotations["molecule_type"] = "DNA"
    record.features = [
        SeqFeature(SimpleLocation(0, 1200, 1), type="source"),
        SeqFeature(
            CompoundLocation([SimpleLocation(10, 50, -1), SimpleLocation(100, 200, -1)]),
            type="CDS",
            qualifiers={"gene": ["abcA"], "product": ["A protein"], "db_xref": ["GeneID:7"]},
        ),
        SeqFeature(SimpleLocation(500, 600, 1), type="gene", qualifiers={"locus_tag": ["T_02"]}),
        SeqFeature(SimpleLocation(500, 600, 1), type="tRNA", qualifiers={"locus_tag": ["T_02"]}),
    ]
    path = tmp_path / "test.gb"
    write([record], path, "genbank")
    table = read_annotation(path, chrom_map={"TEST_1.1": "contig1"})
    assert len(table) == 2
    abc = table.lookup("abcA")
    assert (abc.chrom, abc.start0, abc.end0, abc.strand) == ("contig1", 10, 200, "-")
    assert abc.cds == abc.exons == ((10, 50), (100, 200))
    assert abc.description == "A protein"
    trna = table.lookup("T_02")
    assert trna.biotype == "tRNA"
    assert trna.cds == ()


@pytest.mark.filterwarnings("ignore::Bio.BiopythonParserWarning")
def test_genbank_garbage_is_an_input_error(tmp_path):
    path = tmp_path / "broken.gbk"
    path.write_text("LOCUS       X 10 bp DNA\nFEATURES\n  nonsense\n//\n")
    with pytest.raises(InputError, match="broken.gbk"):
        read_annotation(path)


# --------------------------------------------------------------------------------------------
# formats
# --------------------------------------------------------------------------------------------


def test_format_from_name_and_content(tmp_path):
    assert detect_format("x.gtf.gz") == "gtf"
    assert detect_format("x.GFF") == "gff3"
    assert detect_format("x.gff3.gz") == "gff3"
    assert detect_format("SGD_features.tab") == "sgd"
    assert detect_format("x.gbk") == "genbank"
    assert detect_format("x.genbank") == "genbank"
    unnamed = tmp_path / "annotation"
    unnamed.write_text(GFF3)
    assert detect_format(unnamed) == "gff3"
    unnamed.write_text(SGD_SMALL)
    assert detect_format(unnamed) == "sgd"


def test_unknown_format_is_one_line_input_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    with pytest.raises(InputError) as err:
        read_annotation(path)
    assert "cannot tell the annotation format" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="unknown annotation format 'bed'"):
        read_annotation(path, format="bed")
    with pytest.raises(NotFoundError):
        read_annotation(tmp_path / "missing.gtf")


def test_truncated_gzip_is_an_input_error(tmp_path):
    path = tmp_path / "cut.gtf.gz"
    path.write_bytes(gzip.compress(GTF_NO_GENE_LINES.encode() * 50)[:300])
    with pytest.raises(InputError, match="cut.gtf.gz: corrupt gzip data"):
        read_annotation(path)


def test_malformed_sgd_line(tmp_path):
    path = tmp_path / "SGD_features.tab"
    path.write_text(SGD_SMALL + "S1\tORF\t\tYX\t\t\tchromosome 1\t\t1\tfive\t9\tW\t\t\t\t\n")
    with pytest.raises(InputError, match=r"SGD_features\.tab:9: coordinates must be whole"):
        read_annotation(path)


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------


def test_unknown_gene_suggests_close_names(sgd):
    with pytest.raises(NotFoundError) as err:
        sgd.lookup("FOOBARBAZ")
    assert str(err.value) == "unknown gene 'FOOBARBAZ' in genome yeast"
    with pytest.raises(NotFoundError) as err:
        sgd.lookup("ADE22")
    assert str(err.value).startswith("unknown gene 'ADE22' in genome yeast; did you mean ")
    assert "ADE2" in str(err.value)


def test_alias_shared_by_several_genes_is_ambiguous(sgd):
    with pytest.raises(AmbiguousNameError) as err:
        sgd.lookup("BOB1")
    candidates = err.value.candidates
    assert len(candidates) >= 2
    for label in candidates:  # "SYMBOL (ID, chrom:start-end)"
        assert label.count("(") == 1
        assert ":" in label
        assert label in str(err.value)


def test_symbol_wins_over_another_genes_alias(sgd):
    # TIP1 is the standard name of one gene and an alias of another
    alias_owners = [g for g in sgd if "TIP1" in {a.upper() for a in g.aliases}]
    assert alias_owners
    tip1 = sgd.lookup("TIP1")
    assert tip1.symbol == "TIP1"
    assert tip1 not in alias_owners


def test_search_prefix_for_autocomplete(sgd):
    hits = sgd.search_prefix("ade")
    symbols = [g.symbol for g in hits]
    assert "ADE2" in symbols
    assert all(s.upper().startswith("ADE") for s in symbols)
    # the exact name first, then shorter names first, then alphabetical
    assert symbols == sorted(symbols, key=lambda s: (len(s), s))
    assert [g.symbol for g in sgd.search_prefix("ade2", limit=3)][0] == "ADE2"
    assert [g.symbol for g in sgd.search_prefix("ADE", limit=3)] == ["ADE1", "ADE2", "ADE3"]
    assert len(sgd.search_prefix("Y", limit=7)) == 7
    assert sgd.search_prefix("yor128") == [sgd.lookup("ADE2")]
    assert sgd.search_prefix("S00000565")  # SGDIDs are IDs too
    assert sgd.search_prefix("") == []
    assert sgd.search_prefix("zzzz") == []


# --------------------------------------------------------------------------------------------
# positions, renaming, Parquet
# --------------------------------------------------------------------------------------------


def _brute_force(table: GeneTable, chrom: str, start0: int, end0: int) -> list[Gene]:
    return [g for g in table if g.chrom == chrom and g.start0 < end0 and g.end0 > start0]


def test_genes_in_matches_brute_force_on_yeast(sgd):
    rng = random.Random(7)
    chroms = sgd.chromosomes()
    for _ in range(300):
        chrom = rng.choice(chroms)
        start0 = rng.randrange(0, 1_600_000)
        end0 = start0 + rng.choice([0, 1, 10, 500, 5_000, 50_000])
        assert sgd.genes_in(chrom, start0, end0) == _brute_force(sgd, chrom, start0, end0)
    assert [g.symbol for g in sgd.genes_in("XV", 565000, 565001)] == ["ADE2"]
    assert sgd.genes_in("XV", 566191, 566192) != [sgd.lookup("ADE2")]  # half-open end
    assert sgd.genes_in("chrZZ", 0, 100) == []


def test_genes_in_with_nested_long_genes():
    rng = random.Random(11)
    genes = []
    for i in range(400):
        start0 = rng.randrange(0, 100_000)
        length = rng.choice([1, 50, 500, 5_000, 60_000])
        genes.append(
            Gene(f"G{i}", f"S{i}", (), (), rng.choice(["a", "b"]), start0, start0 + length,
                 "+", "x", ((start0, start0 + length),), ())
        )  # fmt: skip
    table = GeneTable(genes)
    for _ in range(500):
        chrom = rng.choice(["a", "b"])
        start0 = rng.randrange(0, 170_000)
        end0 = start0 + rng.randrange(0, 3_000)
        assert table.genes_in(chrom, start0, end0) == _brute_force(table, chrom, start0, end0)
    with pytest.raises(InputError):
        table.genes_in("a", 10, 5)


def test_rename_chromosomes_returns_a_new_table(sgd):
    ucsc = sgd.rename_chromosomes({"Mito": "chrM"} | {c: "chr" + c for c in sgd.chromosomes()[:-1]})
    assert ucsc.lookup("ADE2").location == "chrXV:564476-566191"
    assert ucsc.chromosomes()[0] == "chrI"
    assert ucsc.chromosomes()[-1] == "chrM"
    assert len(ucsc) == len(sgd)
    assert sgd.lookup("ADE2").chrom == "XV"  # the original is unchanged
    assert [g.symbol for g in ucsc.genes_in("chrXV", 565000, 565001)] == ["ADE2"]


def test_parquet_round_trip(sgd, sars, gff3_table):
    for table in (sgd, sars, gff3_table):
        data = table.to_parquet_bytes()
        again = GeneTable.from_parquet_bytes(data)
        assert again == table
        assert list(again) == list(table)
        assert again.genome == table.genome
        assert again.chromosomes() == table.chromosomes()
    assert GeneTable.from_parquet_bytes(sars.to_parquet_bytes()).lookup("ORF1ab").cds == (
        (265, 13468),
        (13467, 21555),
    )
    with pytest.raises(InputError):
        GeneTable.from_parquet_bytes(b"not parquet")
