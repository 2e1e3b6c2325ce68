"""The pigeonhole off-target kernel against its plain twin, on random sequences.

A partition's site index is built in memory from a random sequence (N and soft-masked bases
included, lengths down to shorter than one site) with the index's own functions
(``segment_sites`` and ``site_arrays`` of :mod:`sandgrain.guides.siteindex`), searched with the
search's own (``prepare_guides`` and ``search_arrays`` of :mod:`sandgrain.guides.search`), and
the hits compared with :func:`offtarget_reference.reference_offtargets`, a window-by-window scan
of the same sequence. Guides are random, or copies of a site of the sequence with a few bases
changed, so that every mismatch count up to ``k`` turns up.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from offtarget_reference import reference_offtargets

from sandgrain.genome.regions import reverse_complement
from sandgrain.guides.kernels import encode
from sandgrain.guides.search import codes_to_strings, prepare_guides, search_arrays, unpack
from sandgrain.guides.siteindex import SiteFamily, segment_sites, site_arrays

FAMILIES = [
    SiteFamily(("NGG", "NAG"), 20, "3"),  # SpCas9 with its NAG off-target PAM
    SiteFamily(("TTTV",), 23, "5"),  # Cas12a: the PAM 5' of the protospacer
    SiteFamily(("NNGRRT",), 16, "3"),  # the shortest protospacer, a long PAM
]


def kernel_hits(seq: str, guides: list[str], fam: SiteFamily, k: int) -> set[tuple]:
    """{(guide, pos0, strand, mismatches, protospacer, PAM pattern)} from the index's path."""
    codes = encode(seq)
    sites, nsites = segment_sites(codes, 0, len(codes), fam, 0, 0)
    arrays = site_arrays([sites], [nsites], fam)
    out = search_arrays(arrays, prepare_guides(guides, fam, k), fam, k)
    found = set()
    parts = [(out, unpack(out["packed"], fam.length))]
    if "n" in out:
        parts.append((out["n"], codes_to_strings(out["n"]["codes"])))
    for part, protos in parts:
        for g, loc, mm, proto in zip(part["g"], part["loc"], part["mm"], protos, strict=True):
            loc = int(loc)
            strand = "-" if (loc >> 52) & 1 else "+"
            pattern = fam.pams[(loc >> 53) & 7]
            found.add((int(g), loc & 0xFFFFFFFF, strand, int(mm), proto, pattern))
    return found


def plain_hits(seq: str, guides: list[str], fam: SiteFamily, k: int) -> set[tuple]:
    hits = reference_offtargets({"c": seq}, guides, list(fam.pams), fam.length, fam.pam_side, k)
    return {(g, pos, strand, mm, proto, pat) for g, _, pos, strand, mm, proto, _, pat in hits}


def mutate(data, site: str, k: int) -> str:
    """``site`` with up to ``k + 1`` bases changed (so some land just past the limit)."""
    bases = list(site)
    for _ in range(data.draw(st.integers(0, k + 1))):
        i = data.draw(st.integers(0, len(bases) - 1))
        bases[i] = data.draw(st.sampled_from("ACGT"))
    return "".join(bases)


@st.composite
def sequences(draw) -> str:
    """A random sequence (G-rich, so PAMs abound; some N and soft-masked bases), at times
    shorter than one site, with mutated copies of its own pieces, either way round, appended:
    off-targets at every distance."""
    length = draw(st.one_of(st.integers(0, 40), st.integers(100, 300)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_rate = draw(st.sampled_from([0.0, 0.01, 0.05]))
    p = np.array([0.22, 0.22, 0.34, 0.22]) * (1 - n_rate)
    seq = "".join(rng.choice(list("ACGTN"), size=length, p=[*p, n_rate]))
    pieces = [seq]
    for _ in range(draw(st.integers(0, 3)) if length > 40 else 0):
        start = draw(st.integers(0, length - 40))
        piece = mutate_rng(rng, seq[start : start + 40], draw(st.integers(0, 6)))
        pieces.append(piece if draw(st.booleans()) else reverse_complement(piece))
    text = "".join(pieces)
    masked = rng.random(len(text)) < draw(st.sampled_from([0.0, 0.2]))
    return "".join(c.lower() if m else c for c, m in zip(text, masked, strict=True))


def mutate_rng(rng, piece: str, n: int) -> str:
    bases = list(piece)
    for i in rng.choice(len(bases), size=min(n, len(bases)), replace=False):
        bases[i] = "ACGT"[rng.integers(4)]
    return "".join(bases)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FAMILIES), st.integers(0, 4), sequences(), st.data())
def test_kernel_equals_the_plain_scan(fam, k, seq, data):
    L = fam.length
    guides = data.draw(st.lists(st.text(alphabet="ACGT", min_size=L, max_size=L), max_size=2))
    (packed, _, _), _ = segment_sites(encode(seq), 0, len(seq), fam, 0, 0)
    sites = unpack(packed, L)
    if sites:
        for _ in range(data.draw(st.integers(1, 3))):
            guides.append(mutate(data, data.draw(st.sampled_from(sites)), k))
    if not guides:
        guides = ["A" * L]
    got = kernel_hits(seq, guides, fam, k)
    assert got == plain_hits(seq, guides, fam, k)
