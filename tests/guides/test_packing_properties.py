"""Properties of the 2-bit encoding of sequences (guides' search and site index).

Bases are coded A=0, C=1, G=2, T=3 and anything else 4 (:func:`sandgrain.guides.kernels.encode`,
soft-masked bases like upper-case ones); a protospacer of up to 32 bases is packed 2 bits a base,
first base in the highest bits (:func:`sandgrain.guides.search.pack`), and split into the
first-half and second-half keys the site index buckets on. Each is checked against a plain,
letter-by-letter reference on random sequences, N and soft-masking included, at the edge lengths.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sandgrain.guides.kernels import encode, mismatches, popcount64
from sandgrain.guides.search import (
    codes_to_strings,
    pack,
    prepare_guides,
    unpack,
    unpack_codes,
)
from sandgrain.guides.siteindex import SiteFamily, split_keys

FAST = settings(max_examples=200, deadline=None)

acgt = st.text(alphabet="ACGT", min_size=1, max_size=32)
genome_text = st.text(alphabet="ACGTNacgtnRY-", max_size=200)


def plain_code(letter: str) -> int:
    return "ACGT".index(letter.upper()) if letter.upper() in "ACGT" else 4


def plain_pack(seq: str) -> int:
    """Σ code(seq[i]) · 4^(n-1-i): the first base in the highest bits."""
    return sum("ACGT".index(b) * 4 ** (len(seq) - 1 - i) for i, b in enumerate(seq))


@FAST
@given(genome_text)
def test_encode_codes_each_letter(seq):
    assert encode(seq).tolist() == [plain_code(c) for c in seq]
    assert encode(seq.encode()).tolist() == encode(seq).tolist()


@FAST
@given(acgt)
def test_pack_and_unpack_round_trip(seq):
    assert pack(seq) == plain_pack(seq)
    packed = np.array([pack(seq)], np.uint64)
    assert unpack(packed, len(seq)) == [seq]
    assert unpack_codes(packed, len(seq))[0].tolist() == encode(seq).tolist()


@FAST
@given(st.lists(st.text(alphabet="ACGTN", min_size=5, max_size=5), max_size=20))
def test_codes_to_strings_reads_n_back(rows):
    codes = np.array([encode(r) for r in rows], np.uint8).reshape(len(rows), 5)
    assert codes_to_strings(codes) == rows


@FAST
@given(st.integers(1, 32), st.data())
def test_the_packed_mismatch_count_is_the_hamming_distance(n, data):
    a = data.draw(st.text(alphabet="ACGT", min_size=n, max_size=n))
    b = data.draw(st.text(alphabet="ACGT", min_size=n, max_size=n))
    want = sum(x != y for x, y in zip(a, b, strict=True))
    assert mismatches(np.uint64(pack(a)), np.uint64(pack(b)), n) == want
    # bits above the 2n used ones do not count
    junk = np.uint64(pack(a)) | (np.uint64(0) if n == 32 else np.uint64(1) << np.uint64(2 * n))
    assert mismatches(junk, np.uint64(pack(b)), n) == want


@FAST
@given(st.integers(0, 2**64 - 1))
def test_popcount(x):
    assert popcount64(np.uint64(x)) == bin(x).count("1")


@FAST
@given(st.integers(16, 27), st.data())
def test_index_keys_split_and_rejoin(length, data):
    fam = SiteFamily(("NGG",), length, "3")
    guides = data.draw(
        st.lists(st.text(alphabet="ACGT", min_size=length, max_size=length), min_size=1, max_size=5)
    )
    packed = np.array([pack(g) for g in guides], np.uint64)
    key_a, rest_a, key_b, rest_b = split_keys(packed, fam)
    L, h, ka, kb = fam.length, fam.half, fam.key_a, fam.key_b
    b_low = L - h - kb
    for i, g in enumerate(guides):
        # key A: the first ka bases; rest A: all the others
        assert int(key_a[i]) == plain_pack(g[:ka]) and int(rest_a[i]) == plain_pack(g[ka:])
        # key B: kb bases of the second half, ending b_low bases before its end; rest B: the
        # first half then those b_low bases
        assert int(key_b[i]) == plain_pack(g[h : h + kb])
        assert int(rest_b[i]) == plain_pack(g[:h] + g[h + kb :])
        assert L - (h + kb) == b_low
    # the guides' side of the search splits them the same way
    prep = prepare_guides(guides, fam, 0)
    assert prep["rest_a"].tolist() == rest_a.astype(np.uint64).tolist()
    assert prep["rest_b"].tolist() == rest_b.astype(np.uint64).tolist()
