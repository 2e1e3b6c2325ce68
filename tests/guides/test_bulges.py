"""The bulge search returns exactly what a plain aligner finds trying every PAM of the genome and
every bulge placement; Cas-OFFinder 3 input and output; full FASTA headers."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random

import pytest
from test_offtargets import guides_from, random_genome, write_fasta

from sandgrain.errors import InputError
from sandgrain.genome.store import add_genome
from sandgrain.guides import bulges
from sandgrain.guides.bulges import (
    CASOFFINDER3_HEADER,
    index_queries,
    placements,
    search_bulges,
)
from sandgrain.guides.formats import parse_guides, read_guide_input
from sandgrain.guides.iupac import CODES
from sandgrain.guides.request import resolve_nuclease
from sandgrain.guides.search import search_offtargets
from sandgrain.guides.siteindex import SiteFamily, build_index

NUCLEASES = {
    "SpCas9": dict(pam="NGG"),
    "SpCas9+NAG+NGA": dict(pam="NGG", offtarget_pams="NAG,NGA"),
    "SaCas9": dict(pam="NNGRRT", guide_length=21, pam_side="3"),
    "Cas12a": dict(pam="TTTV", guide_length=23, pam_side="5"),
}
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


# --------------------------------------------------------------------------------------------
# the plain twin
# --------------------------------------------------------------------------------------------


def gapped(guide: str, proto: str, kind: str, b: int, j: int) -> tuple[str, str, int]:
    """Guide and protospacer written one above the other with '-' for unpaired bases; the
    DNA's mismatched bases in lower case; the number of mismatches."""
    top = guide[:j] + "-" * b + guide[j:] if kind == "DNA" else guide
    bottom = proto[:j] + "-" * b + proto[j:] if kind == "RNA" else proto
    assert len(top) == len(bottom)
    mism, marked = 0, []
    for x, y in zip(top, bottom, strict=True):
        if x != "-" and y != "-" and x != y:
            mism += 1
            marked.append(y.lower())
        else:
            marked.append(y)
    return top, "".join(marked), mism


def plain_bulge_scan(seqs, guides, pams, length, pam_side, dna, rna, k) -> set[tuple]:
    """{(guide index, chrom, location, strand, bulge type, bulge size, crRNA, DNA, mismatches,
    PAM pattern)}: every PAM on both strands (the first pattern that matches; a genome N only
    matches a pattern N), every protospacer length and bulge placement, read off the strings."""
    P = len(pams[0])
    shapes = [("X", 0, 0)]
    shapes += [("DNA", b, j) for b in range(1, dna + 1) for j in range(1, length)]
    shapes += [("RNA", b, j) for b in range(1, rna + 1) for j in range(1, length - b)]
    allowed = {p: [CODES[c] + ("N" if c == "N" else "") for c in p] for p in pams}
    hits = set()
    for chrom, seq in seqs.items():
        fwd = seq.upper()
        n = len(fwd)
        for strand in "+-":
            text = fwd if strand == "+" else fwd[::-1].translate(COMPLEMENT)
            for p in range(n - P + 1):
                pam = text[p : p + P]
                pattern = next(
                    (x for x in pams if all(c in a for c, a in zip(pam, allowed[x], strict=True))),
                    None,
                )
                if pattern is None:
                    continue
                for kind, b, j in shapes:
                    size = length + (b if kind == "DNA" else -b if kind == "RNA" else 0)
                    if pam_side == "3":
                        first, last = p - size, p + P
                        proto = text[first:p]
                    else:
                        first, last = p, p + P + size
                        proto = text[p + P : last]
                    if first < 0 or last > n:
                        continue
                    location = first if strand == "+" else n - last
                    for gi, guide in enumerate(guides):
                        top, bottom, mism = gapped(guide, proto, kind, b, j)
                        if mism > k:
                            continue
                        if pam_side == "3":
                            crrna, site = top + "N" * P, bottom + pam
                        else:
                            crrna, site = "N" * P + top, pam + bottom
                        hits.add((gi, chrom, location, strand, kind, b, crrna, site, mism, pattern))
    return hits


def fast_set(search) -> set[tuple]:
    t = search.table
    start = t.site_start()
    out = set()
    for i in range(len(search.guides)):
        rows = search.rows(i)
        for r, (crrna, dna, _, _) in zip(rows.tolist(), t.aligned(rows), strict=True):
            out.add(
                (i, t.chroms[t.chrom[r]], int(start[r]), "-" if t.minus[r] else "+",
                 ("X", "DNA", "RNA")[t.kind[r]], int(t.size[r]), crrna, dna,
                 int(t.mismatches[r]), t.family.pams[t.pattern[r]])
            )  # fmt: skip
    assert len(out) == sum(len(search.rows(i)) for i in range(len(search.guides)))  # no repeats
    return out


def within(hits: set[tuple], dna: int, rna: int, k: int) -> set[tuple]:
    """The twin's hits of a smaller search."""
    limit = {"X": 0, "DNA": dna, "RNA": rna}
    return {h for h in hits if h[8] <= k and h[5] <= limit[h[4]]}


# --------------------------------------------------------------------------------------------
# test data
# --------------------------------------------------------------------------------------------


def bulged_guides(seqs, fam: SiteFamily, n: int, rng: random.Random) -> list[str]:
    """Guides that pair with a genome site through a DNA or RNA bulge of 1–2 bases (and 0–1
    mismatches): a protospacer of L ± b bases next to a PAM, with b bases taken out or put in."""
    L, P = fam.length, fam.pam_length
    names = [c for c in seqs if len(seqs[c]) > L + 10]
    out = []
    while len(out) < n:
        seq = seqs[rng.choice(names)].upper()
        kind, b = ("DNA", "RNA")[len(out) % 2], rng.choice([1, 2])
        size = L + b if kind == "DNA" else L - b
        p = rng.randrange(P + 1, len(seq) - size - P - 1)
        proto = seq[p : p + size]
        pam = seq[p + size : p + size + P] if fam.pam_side == "3" else seq[p - P : p]
        if "N" in proto or not all(c in CODES[x] for c, x in zip(pam, fam.pams[0], strict=True)):
            continue
        j = rng.randrange(1, L - b)
        if kind == "DNA":
            g = proto[:j] + proto[j + b :]
        else:
            g = proto[:j] + "".join(rng.choice("ACGT") for _ in range(b)) + proto[j:]
        g = list(g)
        if rng.random() < 0.5:
            g[rng.randrange(L)] = rng.choice("ACGT")
        out.append("".join(g))
    return out


def edge_genome(rng: random.Random, guide: str) -> dict[str, str]:
    """Sites the index alone would miss: an RNA-bulge site whose protospacer starts at a
    chromosome's first base (its 20 indexed bases would start before it), the same at the end
    on the minus strand, an N as a DNA bulge, and an N just beyond an RNA-bulge site."""

    def rand(n):
        return "".join(rng.choice("ACGT") for _ in range(n))

    def rc(s):
        return s[::-1].translate(COMPLEMENT)

    short1 = guide[:5] + guide[6:]  # RNA bulge of 1 at j = 5
    short2 = guide[:7] + guide[9:]  # RNA bulge of 2 at j = 7
    dna_n = guide[:9] + "N" + guide[9:]  # an N as a DNA bulge at j = 9
    return {
        "start": short1 + "AGG" + rand(300),
        "start2": guide[0] + short2 + "CGG" + rand(200),
        "end": rand(300) + rc(short2 + "TGG"),
        "ns": rand(150) + dna_n + "GGG" + rand(40) + "NN" + short1 + "AGG" + rand(150),
        "tiny": short2 + "GG",  # shorter than any site
    }


@pytest.fixture(scope="module")
def random_case(tmp_path_factory):
    """A small random genome (N runs, soft-masking, repeats) with SpCas9 guides: copied ones,
    bulged ones and the edge cases, and the twin's hits for the largest search."""
    from sandgrain.storage import Store

    tmp = tmp_path_factory.mktemp("bulges")
    rng = random.Random(11)
    nuc = resolve_nuclease(**NUCLEASES["SpCas9"])
    fam = SiteFamily.of(nuc)
    seqs = random_genome(rng, [9_000, 2_500])
    guides = guides_from(seqs, fam, 2, rng)[:3] + bulged_guides(seqs, fam, 3, rng)
    seqs.update(edge_genome(rng, guides[0]))
    store = Store(str(tmp / "store"))
    genome = add_genome(store, "bulgy", write_fasta(tmp / "b.fa", seqs))
    build_index(genome, fam, executor="serial", partition_bp=4_000)
    twin = plain_bulge_scan(seqs, guides, list(fam.pams), fam.length, "3", 2, 2, 3)
    return genome, nuc, guides, twin


# --------------------------------------------------------------------------------------------
# the search equals the twin
# --------------------------------------------------------------------------------------------


def test_placements_follow_casoffinder3():
    got = placements(20, 2, 2)
    assert got[0] == (0, 0, 0)
    assert [j for k, b, j in got if (k, b) == (1, 1)] == list(range(1, 20))  # never at an end
    assert [j for k, b, j in got if (k, b) == (2, 2)] == list(range(1, 18))  # last base kept
    assert len(got) == 1 + 19 + 19 + 18 + 17


def test_index_queries_cover_each_variant():
    guide = "ACGTTGCATGCAGGTCAGTC"
    queries = index_queries(guide, "3", 1, 1)
    assert guide in queries and all(len(q) == 20 and set(q) <= set("ACGT") for q in queries)
    # an RNA bulge at j = 4: the 19 kept bases, after any distal base
    assert {b + guide[:4] + guide[5:] for b in "ACGT"} <= set(queries)
    # a DNA bulge of one at j = 10, 5' PAM side: the first 20 of the 21 aligned bases
    assert {guide[:10] + b + guide[10:19] for b in "ACGT"} <= set(index_queries(guide, "5", 1, 0))


def test_equals_plain_aligner_over_the_grid(random_case):
    genome, nuc, guides, twin = random_case
    kinds = set()
    for dna, rna, k in itertools.product(range(3), range(3), range(4)):
        got = fast_set(search_bulges(genome, guides, nuc, k, dna, rna, executor="serial"))
        want = within(twin, dna, rna, k)
        assert got == want, ((dna, rna, k), sorted(got ^ want)[:4])
        kinds |= {(h[4], h[5]) for h in got}
    assert kinds == {("X", 0), ("DNA", 1), ("DNA", 2), ("RNA", 1), ("RNA", 2)}


def test_edges_and_ns_are_found(random_case):
    """The sites the index cannot reach are there: the twin's set holds them, and so must the
    search's (the grid above compares every one)."""
    genome, nuc, guides, twin = random_case
    got = fast_set(search_bulges(genome, guides[:1], nuc, 0, 2, 2, executor="serial"))
    edges = {(h[1], h[2], h[3], h[4], h[5]) for h in got}
    assert ("start", 0, "+", "RNA", 1) in edges
    assert ("start2", 1, "+", "RNA", 2) in edges
    assert ("end", 300, "-", "RNA", 2) in edges
    assert ("ns", 150, "+", "DNA", 1) in edges
    assert ("ns", 150 + 24 + 40 + 2, "+", "RNA", 1) in edges
    assert any(h[7] == guides[0][:9] + "N" + guides[0][9:] + "GGG" for h in got)


def test_no_bulge_equals_the_plain_search(random_case):
    genome, nuc, guides, _ = random_case
    search = search_bulges(genome, guides, nuc, 3, 0, 0, executor="serial")
    fam = SiteFamily.of(nuc)
    plain = search_offtargets(genome, guides, fam, 3, executor="serial")
    got = {(h[0], h[1], h[2], h[3], h[8]) for h in fast_set(search)}
    want = {(s.guide, s.chrom, s.pos0, s.strand, s.mismatches) for ss in plain for s in ss}
    assert got == want and got


def test_guide_limits_ids_and_repeats(random_case):
    genome, nuc, guides, twin = random_case
    given = [guides[1], guides[3], guides[1]]
    search = search_bulges(
        genome, given, nuc, [1, 2, 0], 1, 2, ids=["a", None, "c"], executor="serial"
    )
    assert search.ids == ["a", "1", "c"] and len(search.table.guides) == 2
    per = [{h[1:] for h in fast_set(search) if h[0] == i} for i in range(3)]
    for i, (g, k) in enumerate(zip(given, [1, 2, 0], strict=True)):
        want = {h[1:] for h in within(twin, 1, 2, k) if guides[h[0]] == g}
        assert per[i] == want
    assert per[2] < per[0]


def test_batches_of_one_guide_and_few_candidates(random_case, monkeypatch):
    """Memory is bounded by batches: a fan-out a guide, a few candidates aligned at a time."""
    genome, nuc, guides, twin = random_case
    monkeypatch.setattr(bulges, "VARIANT_BATCH", 1)
    monkeypatch.setattr(bulges, "ALIGN_BATCH", 7)
    ticks = []
    search = search_bulges(
        genome, guides, nuc, 2, 2, 1, executor="serial", progress=lambda d, t: ticks.append((d, t))
    )
    assert fast_set(search) == within(twin, 2, 1, 2)
    assert ticks[-1][0] == ticks[-1][1] and [d for d, _ in ticks] == sorted(d for d, _ in ticks)


@pytest.mark.parametrize("name", ["SpCas9+NAG+NGA", "SaCas9", "Cas12a"])
def test_equals_plain_aligner_for_other_pams(local_store, tmp_path, name):
    rng = random.Random(name)
    nuc = resolve_nuclease(**NUCLEASES[name])
    fam = SiteFamily.of(nuc)
    seqs = random_genome(rng, [7_000, 1_500])
    guides = guides_from(seqs, fam, 1, rng)[:2] + bulged_guides(seqs, fam, 2, rng)
    genome = add_genome(local_store, "other", write_fasta(tmp_path / "o.fa", seqs))
    build_index(genome, fam, executor="serial", partition_bp=3_000)
    twin = plain_bulge_scan(seqs, guides, list(fam.pams), fam.length, fam.pam_side, 2, 2, 2)
    for dna, rna, k in [(2, 2, 2), (1, 0, 1), (0, 2, 2), (2, 1, 0)]:
        got = fast_set(search_bulges(genome, guides, nuc, k, dna, rna, executor="serial"))
        assert got == within(twin, dna, rna, k), (dna, rna, k)
    assert {h[4] for h in twin} == {"X", "DNA", "RNA"}


def test_equals_plain_aligner_on_yeast_slices(yeast, local_store, tmp_path):
    """Real sequence: slices of three yeast chromosomes (a telomere's repeats among them)."""
    slices = {f"{c}:{s}": yeast.sequence(c, s, s + n) for c, s, n in
              [("I", 0, 6_000), ("IV", 500_000, 5_000), ("XII", 460_000, 5_000)]}  # fmt: skip
    nuc = resolve_nuclease(**NUCLEASES["SpCas9"])
    fam = SiteFamily.of(nuc)
    rng = random.Random(4)
    guides = guides_from(slices, fam, 1, rng)[:2] + bulged_guides(slices, fam, 2, rng)
    genome = add_genome(local_store, "slices", write_fasta(tmp_path / "y.fa", slices))
    build_index(genome, fam, executor="serial", partition_bp=7_000)
    twin = plain_bulge_scan(slices, guides, list(fam.pams), 20, "3", 2, 2, 3)
    for dna, rna, k in [(2, 2, 3), (1, 1, 2), (0, 1, 3), (2, 0, 1)]:
        got = fast_set(search_bulges(genome, guides, nuc, k, dna, rna, executor="serial"))
        assert got == within(twin, dna, rna, k), (dna, rna, k)
    assert len({h[4] for h in within(twin, 2, 2, 3)}) == 3


def test_bad_arguments(random_case):
    genome, nuc, guides, _ = random_case
    with pytest.raises(InputError, match="DNA bulge size must be a whole number 0–2"):
        search_bulges(genome, guides, nuc, 2, 3, 0)
    with pytest.raises(InputError, match="RNA bulge size"):
        search_bulges(genome, guides, nuc, 2, 0, -1)
    with pytest.raises(InputError, match="0–5"):
        search_bulges(genome, guides, nuc, 6, 1, 1)
    with pytest.raises(InputError, match="has 19 bases"):
        search_bulges(genome, [guides[0][:19]], nuc, 2, 1, 1)


# --------------------------------------------------------------------------------------------
# Cas-OFFinder 3 input
# --------------------------------------------------------------------------------------------


SPCAS9 = resolve_nuclease(pam="NGG")
G1, G2 = "GGCCGACCTGTCGCTGACGC", "CGCCAGCGTCAGCGACAGGT"


def test_pattern_line_with_bulge_sizes_is_read():
    text = (
        f"/var/chromosomes/human_grch38\nNNNNNNNNNNNNNNNNNNNNNGG 2 1\n{G1}NNN 5 first\n{G2}NNN 3\n"
    )
    got = read_guide_input(text, SPCAS9)
    assert (got.dna_bulge, got.rna_bulge, got.pattern_lineno) == (2, 1, 2)
    assert [(g.sequence, g.max_mismatches, g.guide_id) for g in got.lines] == [
        (G1, 5, "first"),
        (G2, 3, None),
    ]
    plain = read_guide_input(f"hg19\nNNNNNNNNNNNNNNNNNNNNNGG\n{G1}NNN 2\n", SPCAS9)
    assert (plain.dna_bulge, plain.rna_bulge) == (0, 0)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("NNNNNNNNNNNNNNNNNNNNNGG 3 0", "DNA bulge size of the pattern line must be a number 0–2"),
        ("NNNNNNNNNNNNNNNNNNNNNGG 1 x", "RNA bulge size of the pattern line must be a number"),
        ("NNNNNNNNNNNNNNNNNNNNNGG 1", "pattern alone or followed by the DNA and RNA bulge sizes"),
    ],
)
def test_bad_pattern_lines(pattern, message):
    with pytest.raises(InputError, match=message):
        read_guide_input(f"/genomes/hg38\n{pattern}\n{G1}NNN 3\n", SPCAS9)


def test_commands_without_bulges_refuse_a_bulge_input():
    """Before, the sizes were dropped silently and the search ran without bulges."""
    with pytest.raises(InputError, match="line 2: .* DNA bulges of up to 2 and RNA bulges of up"):
        parse_guides(f"/genomes/hg38\nNNNNNNNNNNNNNNNNNNNNNGG 2 1\n{G1}NNN 3\n", SPCAS9)
    assert parse_guides(f"/g\nNNNNNNNNNNNNNNNNNNNNNGG 0 0\n{G1}NNN 3\n", SPCAS9)[0].sequence == G1


# --------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------


@pytest.fixture
def bulge_cli(cli, tmp_path):
    """The CLI with a small indexed genome whose FASTA headers carry descriptions."""
    rng = random.Random(3)
    seqs = random_genome(rng, [6_000, 2_000])
    fa = tmp_path / "h.fa"
    with open(fa, "w") as fh:
        for i, (name, seq) in enumerate(seqs.items()):
            fh.write(f">{name} dna:chromosome  chromosome:test:{i}:1 REF\n{seq}\n")
    genome = add_genome(cli.store, "heads", str(fa))
    fam = SiteFamily.of(SPCAS9)
    build_index(genome, fam, executor="serial")
    guides = guides_from(seqs, fam, 1, rng)[:1] + bulged_guides(seqs, fam, 1, rng)
    cli.genome, cli.seqs, cli.guides = genome, seqs, guides
    return cli


def test_cli_reads_a_casoffinder3_input_and_prints_its_format(bulge_cli, tmp_path):
    cli, guides = bulge_cli, bulge_cli.guides
    path = tmp_path / "in.txt"
    path.write_text(
        f"/genomes\nNNNNNNNNNNNNNNNNNNNNNGG 2 1\n{guides[0]}NNN 2 g0\n{guides[1]}NNN 3\n"
    )
    code, out, err = cli("guides", "offtargets", "-g", "heads", "--pam", "NGG", "-q", path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("##Generated by sandgrain") and lines[1] == CASOFFINDER3_HEADER
    rows = {tuple(line.split("\t")) for line in lines[2:]}
    want = set()
    twin = plain_bulge_scan(cli.seqs, guides, ["NGG"], 20, "3", 2, 1, 3)
    for gi, chrom, loc, strand, kind, b, crrna, dna, mism, _ in twin:
        if mism <= [2, 3][gi]:
            want.add(
                (["g0", "1"][gi], kind, crrna, dna, chrom, str(loc), strand, str(mism), str(b))
            )
    assert rows == want and {r[1] for r in rows} == {"X", "DNA", "RNA"}

    # --full-header: the chromosome column is the FASTA header line, as Cas-OFFinder prints it
    code, out2, err = cli(
        "guides", "offtargets", "-g", "heads", "--pam", "NGG", "-q", "--full-header", path
    )
    assert code == 0, err
    heads = {r.split("\t")[4] for r in out2.splitlines()[2:]}
    assert heads <= {"chr1 dna:chromosome  chromosome:test:0:1 REF",
                     "chr2 dna:chromosome  chromosome:test:1:1 REF"}  # fmt: skip
    assert len(out2.splitlines()) == len(lines)

    # options win over the file: no bulges, so Cas-OFFinder 2's six columns
    code, out3, err = cli(
        "guides", "offtargets", "-g", "heads", "--pam", "NGG", "-q", "--dna-bulge", "0",
        "--rna-bulge", "0", "--full-header", path,
    )  # fmt: skip
    assert code == 0, err
    six = [r.split("\t") for r in out3.splitlines()]
    x_rows = {r for r in rows if r[1] == "X"}
    assert len(six) == len(x_rows) and all(len(r) == 6 for r in six)
    assert {r[1] for r in six} <= heads


def test_cli_bulge_options_tsv_and_json(bulge_cli, tmp_path):
    cli, guides = bulge_cli, bulge_cli.guides
    listing = tmp_path / "g.txt"
    listing.write_text("\n".join(guides) + "\n")
    args = ["guides", "offtargets", "-g", "heads", "--pam", "NGG", "-q", "-m", "2",
            "--dna-bulge", "1", "--rna-bulge", "2"]  # fmt: skip
    code, out, err = cli(*args, "-f", "tsv", listing)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out), delimiter="\t"))
    twin = within(plain_bulge_scan(cli.seqs, guides, ["NGG"], 20, "3", 1, 2, 2), 1, 2, 2)
    assert len(rows) == len(twin)
    got = {(r["guide"], r["chrom"], r["strand"], r["bulge_type"], r["bulge_size"], r["crrna"],
            r["dna"], r["mismatches"]) for r in rows}  # fmt: skip
    assert got == {(guides[h[0]], h[1], h[3], h[4], str(h[5]), h[6], h[7], str(h[8])) for h in twin}
    for r in rows:  # the protospacer and PAM as in the genome, at the span given
        seq = cli.seqs[r["chrom"]][int(r["start"]) - 1 : int(r["end"])].upper()
        if r["strand"] == "-":
            seq = seq[::-1].translate(COMPLEMENT)
        assert seq == r["sequence"] == r["dna"][:-3].replace("-", "").upper()
        assert (r["bulge_position"] == "") == (r["bulge_type"] == "X")

    out_json = tmp_path / "o.json"
    code, _, err = cli(*args, "-f", "json", "--max-offtargets-listed", "2", "-o", out_json, listing)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["dna_bulge"] == 1 and doc["rna_bulge"] == 2
    assert doc["provenance"]["parameters"]["rna_bulge"] == 2
    for g in doc["guides"]:
        assert set(g["offtarget_counts"]) == {"X", "DNA1", "RNA1", "RNA2"}
        assert sum(map(sum, g["offtarget_counts"].values())) == g["offtargets_total"]
        assert len(g["offtargets"]) == min(2, g["offtargets_total"])
        assert g["offtargets_listed_truncated"] == (g["offtargets_total"] > 2)
    assert sum(g["offtargets_total"] for g in doc["guides"]) == len(rows)


def test_cli_full_header_without_bulges(bulge_cli, tmp_path):
    cli = bulge_cli
    listing = tmp_path / "g.txt"
    listing.write_text(cli.guides[0] + "\n")
    code, out, err = cli("guides", "offtargets", "-g", "heads", "--pam", "NGG", "-q", listing)
    assert code == 0, err
    plain = [r.split("\t") for r in out.splitlines()]
    code, out, err = cli(
        "guides", "offtargets", "-g", "heads", "--pam", "NGG", "-q", "--full-header", listing
    )
    assert code == 0, err
    full = [r.split("\t") for r in out.splitlines()]
    assert plain and [r[1] for r in full] == [cli.genome.fasta_headers()[r[1]] for r in plain]
    assert [r[:1] + r[2:] for r in full] == [r[:1] + r[2:] for r in plain]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dna-bulge", "3"], "DNA bulge size (--dna-bulge) must be a whole number 0–2"),
        (["--rna-bulge", "-1"], "RNA bulge size (--rna-bulge) must be a whole number 0–2"),
    ],
)
def test_cli_bad_bulge_options(bulge_cli, tmp_path, args, message):
    listing = tmp_path / "g.txt"
    listing.write_text(bulge_cli.guides[0] + "\n")
    code, out, err = bulge_cli("guides", "offtargets", "-g", "heads", *args, listing)
    assert code != 0 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_score_refuses_a_bulge_input(bulge_cli, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text(f"/g\nNNNNNNNNNNNNNNNNNNNNNGG 1 1\n{bulge_cli.guides[0]}NNN 2\n")
    code, out, err = bulge_cli("guides", "score", "-g", "heads", "--pam", "NGG", path)
    assert code != 0 and out == "" and "only `sandgrain guides offtargets` searches bulges" in err


def test_full_header_is_stored_at_import(bulge_cli):
    heads = bulge_cli.genome.fasta_headers()
    assert heads["chr1"] == "chr1 dna:chromosome  chromosome:test:0:1 REF"  # two spaces kept
    assert bulge_cli.genome.chromosomes[0]["description"].startswith("dna:chromosome")
