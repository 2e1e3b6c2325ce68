"""Guide requests are checked once, when made: every rule and its message, no genome needed."""

from __future__ import annotations

import dataclasses
import gzip

import pytest

from sandgrain.errors import InputError, NotFoundError
from sandgrain.guides.nucleases import NUCLEASES
from sandgrain.guides.request import DesignRequest, ScoreRequest, check_one_target

GUIDE = "CTGCTCATAGAACTCCACAT"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give exactly one target — a gene, a region, a sequence or a FASTA file — not none"),
        ({"gene": "ADE2", "region": "XV:1-100"}, "not gene and region"),
        ({"gene": "ADE2", "max_mismatches": 6}, "whole number 0–5, not 6"),
        ({"gene": "ADE2", "max_mismatches": True}, "0–5, not True"),
        ({"gene": "ADE2", "max_offtargets_listed": -1}, "listing limit must be a whole number ≥ 0"),
        ({"gene": "ADE2", "max_target_bp": -5}, "max_target_bp"),
        ({"gene": "ADE2", "within": "introns"}, "--within must be one of exons, cds, gene"),
        ({"gene": "ADE2", "nuclease": "SpCas9", "pam": "NGG"}, "not both"),
        ({"gene": "ADE2", "guide_length": 21}, r"give its PAM too \(--pam\)"),
        ({"gene": "ADE2", "pam": "NXG"}, "NXG"),
        ({"sequence": "ACGTXACGT"}, "invalid letter 'X' at position 5"),
        ({"sequence": "  \n"}, "is empty"),
        ({"sequence": "ACGT" * 300, "max_target_bp": 1000}, "more than the limit of 1,000 bp"),
        # too short for one site (20-nt protospacer + NGG): refused, not an empty design
        ({"sequence": "ACGTACGTACGTACGTACGTAG"}, r"22 bp, shorter than one SpCas9 site \(23 bp"),
        ({"sequence": ">a\nACGU\n>b\nACGTACGT"}, "every record is shorter .* longest is 8 bp"),
        ({"sequence": "A" * 26, "nuclease": "SaCas9"}, r"shorter than one SaCas9 site \(27 bp"),
        ({"sequence": "ACGT\n>x\nACGT" * 6}, "text before its first FASTA header"),
        ({"sequence": (">x\n" + "A" * 30 + "\n") * 2}, "two records named 'x'"),
        ({"sequence": ">x\nACGTACGTACGTACGTACGTZGG"}, "record 'x' has an invalid letter 'Z'"),
    ],
)
def test_bad_design_requests(options, message):
    with pytest.raises(InputError, match=message):
        DesignRequest(**options)


def test_unknown_nuclease_is_not_found():
    with pytest.raises(NotFoundError, match="unknown nuclease 'Cas42'"):
        DesignRequest(gene="ADE2", nuclease="Cas42")


def test_a_request_is_normalised_once_and_stays_valid():
    req = DesignRequest(region="XV:1-100", within=" CDS ", pam="NGG", offtarget_pams="NAG")
    assert req.nuclease is not None and req.nuclease.pam == "NGG"
    assert req.nuclease.default_offtarget_pams == ("NAG",)
    assert req.pam is None and req.offtarget_pams is None  # folded into the nuclease
    assert req.within == "cds" and req.max_target_bp == 1_000_000 and req.target_kind == "region"
    again = dataclasses.replace(req, max_mismatches=2)  # checked again, unchanged otherwise
    assert again.nuclease == req.nuclease and again.max_mismatches == 2
    seq = "ac gt\nAC" + "T" * 20
    assert DesignRequest(sequence=seq).records == (("sequence", "acgtAC" + "T" * 20),)


def test_pasted_sequences_may_be_rna_or_fasta():
    site = "GAUUACAGAUUACAGAUUACAGG"  # RNA: U is read as T, case kept
    assert DesignRequest(sequence=site.lower()).records == (
        ("sequence", site.lower().replace("u", "t")),
    )
    text = f">first one\n{site[:10]}\n{site[10:]}\n; a comment\n\n>second\nacgu\n"
    assert DesignRequest(sequence=text).records == (
        ("first", site.replace("U", "T")),
        ("second", "acgt"),
    )


def test_fasta_targets_are_read_with_the_genome_reader(tmp_path):
    path = tmp_path / "t.fa.gz"
    path.write_bytes(
        gzip.compress(b">one first\nACGT\nacgt\n\n>two\nGGGG\nUUUUUUUUUUUUUUUUUUUUAGG\n")
    )
    req = DesignRequest(fasta=path)
    assert req.records == (("one", "ACGTacgt"), ("two", "GGGG" + "T" * 20 + "AGG"))
    with pytest.raises(InputError, match="more than the limit of 10 bp; choose a smaller"):
        DesignRequest(fasta=path, max_target_bp=10)
    (tmp_path / "short.fa").write_text(">a\nACGT\n")
    with pytest.raises(InputError, match="4 bp, shorter than one SpCas9 site"):
        DesignRequest(fasta=tmp_path / "short.fa")
    (tmp_path / "dup.fa").write_text(">a\nACGT\n>a\nACGT\n")
    with pytest.raises(InputError, match="duplicate sequence name 'a'"):
        DesignRequest(fasta=tmp_path / "dup.fa")
    (tmp_path / "bad.fa").write_text(">a\nACGTZ\n")
    with pytest.raises(InputError, match="a has an invalid letter 'Z'"):
        DesignRequest(fasta=tmp_path / "bad.fa")


def test_the_web_api_subset_of_targets():
    assert check_one_target(gene="ADE2", region=None, sequence=None) == "gene"
    with pytest.raises(InputError, match="— a gene, a region or a sequence — not none"):
        check_one_target(gene=None, region=None, sequence=None)


def test_score_requests():
    req = ScoreRequest([GUIDE.lower(), GUIDE], guide_mismatches=[None, 2], max_mismatches=3)
    assert req.guides == (GUIDE, GUIDE) and req.limits == (3, 2)
    assert req.nuclease is NUCLEASES["SpCas9"]
    with pytest.raises(InputError, match="has 19 bases"):
        ScoreRequest([GUIDE[:-1]])
    with pytest.raises(InputError, match="contains 'N'"):
        ScoreRequest([GUIDE[:-1] + "N"])
    with pytest.raises(InputError, match="no guides given"):
        ScoreRequest([])
    with pytest.raises(InputError, match="1 mismatch limits given for 2 guides"):
        ScoreRequest([GUIDE, GUIDE], guide_mismatches=[1])
    with pytest.raises(InputError, match="0–5, not 9"):
        ScoreRequest([GUIDE], guide_mismatches=[9])


def test_spcas9_searches_nag_and_nga_by_default_but_a_given_pam_alone():
    from sandgrain.guides.request import resolve_nuclease

    by_name = resolve_nuclease("SpCas9")
    assert by_name.searched_pams == ("NGG", "NAG", "NGA")  # as CRISPOR does
    by_pam = resolve_nuclease(pam="NGG")  # a Cas-OFFinder pattern: searched as given
    assert by_pam.name == "SpCas9" and by_pam.searched_pams == ("NGG",)
    assert by_pam.pam_weight("NAG") > 0  # CFD's PAM table still applies
    assert resolve_nuclease("SpCas9", offtarget_pams="none").searched_pams == ("NGG",)
    assert resolve_nuclease("SpCas9", offtarget_pams="").searched_pams == ("NGG",)
    assert resolve_nuclease(pam="NGG", offtarget_pams="NAG").searched_pams == ("NGG", "NAG")
