"""The guide table behind the result page, against plain twins: a stored document streamed in
chunks of any size reads back as ``json.loads`` reads it (byte ranges included), is written back
whole or with its off-target lists cut, and sorts and filters as a plain Python sort and filter
of the parsed guides do."""

from __future__ import annotations

import json
import math
import random

import pytest

from sandgrain.errors import InputError
from sandgrain.web.guide_table import (
    SORT_KEYS,
    build_table,
    guide_flags,
    iter_document,
    stream_document,
)

FLAGS = ("tttt", "offtarget_0mm", "offtarget_1mm", "gc_low", "late_cds")


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def random_document(rng: random.Random, n: int | None = None, non_ascii: bool = False) -> dict:
    k = rng.randint(0, 4)
    guides = []
    for rank in range(1, (rng.randint(0, 40) if n is None else n) + 1):
        counts = [rng.choice((0, 0, 0, 1, 2, 7)) for _ in range(k + 1)]
        maybe = lambda v: None if rng.random() < 0.15 else v  # noqa: E731
        guides.append(
            {
                "rank": rank,
                "tier": maybe(rng.randint(1, 3)),
                "flags": rng.sample(FLAGS, rng.randint(0, 2)),
                "sequence": "".join(rng.choice("ACGT") for _ in range(20)),
                "pam": rng.choice(("AGG", "CGG", "TGG")),
                "chrom": rng.choice(("I", "II", "X", "chr10", "chr2")),
                "start": rng.randint(1, 10_000),
                "end": None,
                "strand": rng.choice("+-"),
                "gc": rng.random(),
                "efficiency": maybe(rng.gauss(0, 1)),
                "mit_specificity": maybe(rng.uniform(0, 100)),
                "cfd_specificity": maybe(rng.uniform(0, 100)),
                "score": rng.uniform(0, 100),
                "tttt": rng.random() < 0.2,
                "note": "é" if non_ascii and rng.random() < 0.3 else 'a},{"rank":',
                "offtarget_counts": counts,
                "offtargets_total": sum(counts),
                "offtargets": [
                    {"chrom": "I", "start": j, "mismatches": 3, "genes": ['"offtargets":[']}
                    for j in range(rng.randint(0, 12))
                ],
            }
        )
        guides[-1]["end"] = guides[-1]["start"] + 19
    return {
        "provenance": {"command": "guides design", "parameters": {"max_offtargets_listed": None}},
        "genome": "yeast",
        "target": {"type": "region", "name": "I:1-10000"},
        "max_mismatches": k,
        "ranking": {"rule": "tiers, then efficiency"},
        "guides": guides,
    }


def encode(doc: dict, ensure_ascii: bool = True) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=ensure_ascii).encode()


@pytest.mark.parametrize("seed", range(40))
def test_streamed_reading_equals_json_loads(seed):
    rng = random.Random(seed)
    doc = random_document(rng, non_ascii=seed % 4 == 0)
    data = encode(doc, ensure_ascii=seed % 2 == 0)
    spans: list = []
    entries = list(iter_document(chunked(data, rng.choice((1, 7, 64, 4096))), spans))
    guides = [v for k, v in entries if k == "guide"]
    head = {k: v for k, v in entries if k not in ("guide", "guides")}
    assert guides == doc["guides"]
    assert head == {k: v for k, v in doc.items() if k != "guides"}
    if data.isascii():
        assert len(spans) == len(guides)
        assert [json.loads(data[a:b]) for a, b in spans] == guides
    else:
        assert spans == [None]  # byte ranges are only kept for ASCII documents


@pytest.mark.parametrize("seed", range(20))
def test_written_back_whole_or_cut(seed):
    rng = random.Random(seed)
    doc = random_document(rng)
    data = encode(doc)
    chunks = chunked(data, rng.choice((3, 100, 1 << 20)))
    whole = b"".join(stream_document(chunks, None))
    assert whole == data  # the stored document, byte for byte
    limit = rng.randint(0, 5)
    cut = json.loads(b"".join(stream_document(chunks, limit, {"max_offtargets_listed": limit})))
    assert list(cut) == list(doc)
    assert cut["provenance"]["parameters"]["max_offtargets_listed"] == limit
    for got, want in zip(cut["guides"], doc["guides"], strict=True):
        assert got["offtargets"] == want["offtargets"][:limit]
        assert got.get("offtargets_listed_truncated") == (
            True if len(want["offtargets"]) > limit else None
        )
        assert {
            k: v for k, v in got.items() if k not in ("offtargets", "offtargets_listed_truncated")
        } == {k: v for k, v in want.items() if k != "offtargets"}


def test_empty_documents():
    for doc in ({}, {"genome": "y", "guides": []}):
        data = encode(doc)
        assert json.loads(b"".join(stream_document(chunked(data, 2), None))) == doc
        table = build_table("k", iter_document([data], raw=True), [])
        assert len(table) == 0 and table.order("gc").tolist() == []


# --------------------------------------------------------------------------------------------
# sorting and filtering: the plain twin
# --------------------------------------------------------------------------------------------


def _natural(text: str) -> tuple:
    import re

    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text))


def reference_order(guides: list[dict], key: str, descending: bool) -> list[int]:
    """Ranks sorted by ``key`` with plain Python: ties by rank, missing values last."""

    def value(g):
        if key == "position":
            return None if g["start"] is None else (_natural(g["chrom"]), g["start"])
        if key.startswith("mm"):
            m = int(key[2:])
            counts = g["offtarget_counts"]
            return counts[m] if m < len(counts) else None
        v = g.get(key)
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    present = [g for g in guides if value(g) is not None]
    missing = [g for g in guides if value(g) is None]
    present.sort(key=lambda g: g["rank"])
    present.sort(key=value, reverse=descending)  # stable: ties keep rank order
    if key == "rank" and descending:
        present.sort(key=lambda g: -g["rank"])
    return [g["rank"] for g in present] + [g["rank"] for g in missing]


def reference_filter(guides, text, hide_mm, exclude, max_tier) -> list[int]:
    kept = []
    for g in guides:
        counts = g["offtarget_counts"]
        if hide_mm is not None and any(counts[: hide_mm + 1]):
            continue
        if set(exclude) & set(guide_flags(g)):
            continue
        if max_tier is not None and g["tier"] is not None and g["tier"] > max_tier:
            continue
        position = f"{g['chrom']}:{g['start']}-{g['end']}"
        hay = " ".join([g["sequence"], g["pam"], position, g["strand"], *guide_flags(g)]).lower()
        if all(w in hay for w in text.lower().split()):
            kept.append(g["rank"])
    return kept


@pytest.mark.parametrize("seed", range(12))
def test_sorting_and_filtering_equal_a_plain_twin(seed):
    rng = random.Random(seed)
    doc = random_document(rng, n=rng.randint(1, 60))
    data = encode(doc)
    spans: list = []
    table = build_table("k", iter_document(chunked(data, 97), spans, raw=True), spans)
    guides = doc["guides"]
    assert len(table) == len(guides) and table.max_mismatches == doc["max_mismatches"]
    assert [json.loads(r) for r in table.rows] == [
        {k: v for k, v in g.items() if k != "offtargets"} for g in guides
    ]
    keys = [k for k in SORT_KEYS if k in ("rank", "position", "gc", "efficiency", "tier")]
    keys += ["sequence", "mit_specificity", "mm0", f"mm{doc['max_mismatches']}", "mm5"]
    for key in keys:
        for descending in (False, True):
            got = [guides[i]["rank"] for i in table.order(key, descending)]
            if key in ("sequence", "pam", "strand"):
                want = sorted(guides, key=lambda g: g["rank"])
                want.sort(key=lambda g: g[key], reverse=descending)
                assert got == [g["rank"] for g in want], key
            else:
                assert got == reference_order(guides, key, descending), (key, descending)
    for _ in range(10):
        text = rng.choice(["", "a", "ag", "tttt", "chr10:", guides[0]["sequence"][:6].lower()])
        hide = rng.choice([None, 0, 1, 3])
        exclude = tuple(rng.sample(FLAGS, rng.randint(0, 2)))
        tier = rng.choice([None, 1, 2])
        mask = table.mask(text, hide, exclude, tier)
        got = [guides[i]["rank"] for i in range(len(guides)) if mask[i]]
        assert got == reference_filter(guides, text, hide, exclude, tier)
    with pytest.raises(InputError, match="cannot sort by 'bogus'"):
        table.order("bogus")


def test_rows_find_their_guide_by_rank():
    doc = random_document(random.Random(3), n=25)
    data = encode(doc)
    spans: list = []
    table = build_table("k", iter_document([data], spans, raw=True), spans)
    assert table.index_of_rank(1) == 0 and table.index_of_rank(25) == 24
    assert table.index_of_rank(26) is None and table.index_of_rank(0) is None
    a, b = table.spans[7]
    assert json.loads(data[a:b]) == doc["guides"][7]  # one guide read alone, off-targets and all
