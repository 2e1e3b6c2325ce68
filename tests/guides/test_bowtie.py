"""Cross-check with a peer: bowtie's ``-v 3 -a`` alignments of 100 guides on yeast, filtered to
NGG-adjacent hits, equal sandgrain's ≤ 3-mismatch SpCas9 sites."""

from __future__ import annotations

import gzip
import random
import shutil
import subprocess

import pytest
from conftest import YEAST_FASTA

from sandgrain.guides.search import search_offtargets
from sandgrain.guides.siteindex import SiteFamily, build_index

SPCAS9 = SiteFamily(("NGG",), 20, "3")


def bowtie_hits(tmp_path, guides: list[str], seqs: dict[str, str]) -> set[tuple]:
    """{(guide, chrom, pos0, strand, mismatches)} from bowtie, keeping NGG-adjacent hits."""
    for tool in ("bowtie", "bowtie-build"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: `make test` installs Debian's bowtie")
    fasta = tmp_path / "yeast.fa"
    with gzip.open(YEAST_FASTA, "rb") as src, open(fasta, "wb") as dst:
        shutil.copyfileobj(src, dst)
    subprocess.run(
        ["bowtie-build", "--threads", "2", "-q", str(fasta), str(tmp_path / "y")],
        check=True,
        capture_output=True,
    )
    reads = tmp_path / "guides.fa"
    reads.write_text("".join(f">{i}\n{g}\n" for i, g in enumerate(guides)))
    out = subprocess.run(
        ["bowtie", "-f", "-v", "3", "-a", "--threads", "2", str(tmp_path / "y"), str(reads)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    hits = set()
    for line in out.splitlines():
        name, strand, chrom, offset, _seq, _qual, _count, *rest = line.split("\t")
        chrom = chrom.split()[0]
        o = int(offset)
        seq = seqs[chrom].upper()
        mismatches = len(rest[0].split(",")) if rest and rest[0] else 0
        if strand == "+" and o + 23 <= len(seq) and seq[o + 21 : o + 23] == "GG":
            hits.add((int(name), chrom, o, "+", mismatches))
        elif strand == "-" and o >= 3 and seq[o - 3 : o - 1] == "CC":
            hits.add((int(name), chrom, o - 3, "-", mismatches))
    return hits


def test_bowtie_agrees_on_100_yeast_guides(yeast, tmp_path):
    build_index(yeast, SPCAS9, executor="local:2", partition_bp=2_000_000)
    seqs = {c["name"]: yeast.sequence(c["name"], 0, c["length"]) for c in yeast.chromosomes}
    rng = random.Random(2024)
    guides = []
    while len(guides) < 100:
        chrom = rng.choice(list(seqs))
        s = seqs[chrom].upper()
        p = rng.randrange(len(s) - 23)
        if s[p + 21 : p + 23] == "GG" and "N" not in s[p : p + 20]:
            guides.append(s[p : p + 20])
    ours = {
        (site.guide, site.chrom, site.pos0, site.strand, site.mismatches)
        for sites in search_offtargets(yeast, guides, SPCAS9, 3, executor="local:2")
        for site in sites
    }
    theirs = bowtie_hits(tmp_path, guides, seqs)
    assert ours == theirs
    assert len(ours) >= 100 and any(h[4] == 3 for h in ours)
