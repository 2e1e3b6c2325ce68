"""Free text → HPO terms: each phrasing class the coder promises, measurement thresholds at
their boundaries, most-specific selection, offsets and the output shape; the fast matcher held
against a brute-force twin."""

from __future__ import annotations

import itertools
import random

import pytest

from sandgrain.errors import InputError
from sandgrain.phenotypes.coder import MAX_TEXT, code_text, code_texts
from sandgrain.phenotypes.lexicon import lay_entries, lexicon, tokenize
from sandgrain.phenotypes.ontology import hpo

FEVER, ANOSMIA, AGEUSIA = "HP:0001945", "HP:0000458", "HP:0041051"
DYSPNEA, VOMITING, NAUSEA = "HP:0002094", "HP:0002013", "HP:0002018"
HYPOXEMIA, TACHYCARDIA = "HP:0012418", "HP:0001649"
COUGH, DRY_COUGH = "HP:0012735", "HP:0031246"


def present(text: str) -> set[str]:
    return set(code_text(text).ids("present"))


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # lay phrases and HPO's own synonyms
        ("She lost her sense of smell.", {ANOSMIA}),
        ("can't smell anything", {ANOSMIA}),
        ("unable to smell since Tuesday", {ANOSMIA}),
        ("runny nose and a sore throat", {"HP:0031417", "HP:0033050"}),
        ("he throws up after every meal", {VOMITING}),
        ("loss of taste", {AGEUSIA}),
        ("lost smell and taste", {ANOSMIA, AGEUSIA}),
        ("tummy ache and the runs", {"HP:0002027", "HP:0002014"}),
        ("pyrexia", {FEVER}),
        ("feeling feverish", {FEVER}),
        ("muscle aches", {"HP:0003326"}),
        ("chest pain", {"HP:0100749"}),
        # inflections and UK spellings
        ("coughing all night", {COUGH}),
        ("she coughed", {COUGH}),
        ("vomited twice", {VOMITING}),
        ("Headaches", {"HP:0002315"}),
        ("diarrhoea", {"HP:0002014"}),
        ("dyspnoea", {DYSPNEA}),
        # word order
        ("smell loss", {ANOSMIA}),
        ("breath shortness", {DYSPNEA}),
        ("pain in the chest", {"HP:0100749"}),
        # shorthand as written
        ("SOB", {DYSPNEA}),
        ("N/V", {NAUSEA, VOMITING}),
        ("c/o HA and ST elevation", {"HP:0002315"}),
        ("ARDS on day 9", {"HP:0033677"}),
    ],
)
def test_phrasings(text, want):
    assert present(text) == want


def test_shorthand_is_case_sensitive():
    assert present("sob") == set()  # "sob" is a word; "SOB" is shortness of breath
    assert present("SOB") == {DYSPNEA}


def test_words_do_not_match_across_punctuation():
    assert ANOSMIA not in present("smell: fine. loss of weight")
    assert present("chest. pain") == {"HP:0012531"}  # only the bare word Pain


@pytest.mark.parametrize(
    ("text", "present_ids", "negated_ids"),
    [
        ("febrile to 39.2C", {FEVER}, set()),
        ("temp 101.3F", {FEVER}, set()),
        ("T 38.5", {FEVER}, set()),
        ("T 38.0", {FEVER}, set()),
        ("T 37.9", set(), {FEVER}),
        ("temperature 100.4 F", {FEVER}, set()),
        ("temperature 100.3 F", set(), {FEVER}),
        ("39.5 °C overnight", {FEVER}, set()),
        ("Tmax 41.5C", {"HP:0033031"}, set()),  # hyperpyrexia
        ("temp 34.2C", {"HP:0002045"}, set()),  # hypothermia
        ("SpO2 88%", {HYPOXEMIA}, set()),
        ("sats 93% on RA", {HYPOXEMIA}, set()),
        ("SpO2 94%", set(), {HYPOXEMIA}),
        ("HR 120", {TACHYCARDIA}, set()),
        ("HR 101 bpm", {TACHYCARDIA}, set()),
        ("HR 100", set(), set()),
        ("pulse 48", {"HP:0001662"}, set()),
        ("RR 28", {"HP:0002789"}, set()),
        ("BP 165/95", {"HP:0000822"}, set()),
        ("BP 82/50", {"HP:0002615"}, set()),
        ("BP 120/80", set(), set()),
        ("temp 39", {FEVER}, set()),  # no unit: a body temperature in Celsius
        ("T 3 days ago", set(), set()),  # not a temperature
        ("low grade temp 37.8C", {"HP:0011134"}, set()),  # the clinician's words win
    ],
)
def test_measurements_with_thresholds(text, present_ids, negated_ids):
    coding = code_text(text)
    assert set(coding.ids("present")) == present_ids
    assert set(coding.ids("negated")) == negated_ids


def test_measurement_and_keyword_are_one_finding():
    coding = code_text("Febrile to 39.2C overnight")
    (m,) = coding.present
    assert (m.id, m.text) == (FEVER, "Febrile to 39.2C")


def test_most_specific_term_when_several_nest():
    assert present("dry cough") == {DRY_COUGH}
    assert present("cough, mostly a dry cough") == {DRY_COUGH}  # Cough is its parent
    assert present("neck pain and back pain") == {"HP:0030833", "HP:0003418"}
    # siblings both stay
    assert present("dry cough then productive cough") == {DRY_COUGH, "HP:0031245"}


def test_offsets_point_at_the_words_read():
    text = "45F, 3 days of dry cough; lost her sense of smell. SpO2 91%."
    coding = code_text(text)
    assert coding.present
    for m in coding.present:
        assert text[m.start : m.end] == m.text
    assert {m.text for m in coding.present} == {"dry cough", "lost her sense of smell", "SpO2 91%"}


def test_output_shape_and_provenance():
    doc = code_text("Lost her sense of smell, no fever.").to_dict()
    assert list(doc) == [
        "present",
        "negated",
        "uncertain",
        "family_history",
        "history",
        "provenance",
    ]
    assert doc["present"] == [
        {
            "id": ANOSMIA,
            "label": "Anosmia",
            "text": "Lost her sense of smell",
            "start": 0,
            "end": 23,
        }
    ]
    assert doc["negated"][0]["id"] == FEVER
    prov = doc["provenance"]
    assert prov["parameters"]["hpo_version"] == hpo().version
    assert len(prov["inputs"][0]["sha256"]) == 64


def test_bad_input():
    with pytest.raises(InputError):
        code_text(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="characters"):
        code_text("x" * (MAX_TEXT + 1))
    assert code_text("").to_dict()["present"] == []
    assert code_texts(["fever", "cough"])[1].ids() == [COUGH]


def test_every_lay_phrase_codes_its_own_terms():
    """Each phrase of the data file, alone, comes out as the terms it lists (present, or
    negated for a normal finding), so no entry is shadowed by another."""
    for line, phrase, ids, kind in lay_entries():
        coding = code_text(phrase, with_provenance=False)
        which = "negated" if kind.endswith("normal") else "present"
        got = set(coding.ids(which)) | set(coding.ids("present"))
        assert set(ids) <= got | _descendants_found(ids, got), f"line {line}: {phrase!r} → {got}"


def _descendants_found(ids, got):
    onto = hpo()
    return {i for i in ids if any(onto.is_a(g, i) for g in got)}


# -- the fast matcher against a brute-force twin ----------------------------------------------
def brute_force_entries(text: str) -> set[tuple[str, ...]]:
    """Which lexicon entries occur in ``text`` (their ids), by trying every entry at every
    combination of positions: obviously correct and slow."""
    lex = lexicon()
    tokens = tokenize(text)
    content = [i for i, t in enumerate(tokens) if not t.stop]
    seg, s = {}, 0
    for i, t in enumerate(tokens):
        s += t.barrier
        seg[i] = s
    stems = [tokens[i].stem for i in content]
    where: dict[str, list[int]] = {}
    for ci, st in enumerate(stems):
        where.setdefault(st, []).append(ci)
    found = set()
    for e in lex.entries:
        if not e.key <= where.keys():
            continue
        width = len(e.key) + (0 if e.normal else 1)
        for combo in itertools.product(*(where[k] for k in sorted(e.key))):
            if len(set(combo)) != len(combo) or max(combo) - min(combo) >= width:
                continue
            if len({seg[content[c]] for c in combo}) == 1:
                found.add(e.ids)
                break
    for i, t in enumerate(tokens):
        for e in lex.by_raw.get(t.raw, ()):
            if tuple(x.raw for x in tokens[i : i + len(e.raw_tokens)]) == e.raw_tokens:
                found.add(e.ids)
    return found


def fast_entries(text: str) -> set[tuple[str, ...]]:
    from sandgrain.phenotypes.coder import _lexical

    return {c.ids for c in _lexical(tokenize(text), lexicon())}


def random_notes(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    phrases = [p for _, p, _, _ in lay_entries()]
    filler = ["and", "the", "no", "of", "with", "but", ",", ".", ";", "for", "since", "3"]
    filler += ["days", "mild", "severe", "left", "pain"]
    out = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(3, 8)):
            words += rng.choice(phrases).split() if rng.random() < 0.6 else [rng.choice(filler)]
        rng.shuffle(words) if rng.random() < 0.3 else None
        out.append(" ".join(words))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_matcher_equals_brute_force(seed):
    for note in random_notes(25, seed):
        assert fast_entries(note) == brute_force_entries(note), note
