"""Negation, uncertainty, history and family context: each published rule (NegEx, Chapman et
al. 2001; ConText, Harkema et al. 2009) with examples, and the promise that a negated finding is
never coded as present, checked over every lay phrase and every negation trigger."""

from __future__ import annotations

import pytest

from sandgrain.phenotypes.coder import code_text
from sandgrain.phenotypes.context import NEGATED, TRIGGERS
from sandgrain.phenotypes.lexicon import lay_entries

FEVER, COUGH, DYSPNEA, SEIZURE = "HP:0001945", "HP:0012735", "HP:0002094", "HP:0001250"
ANOSMIA, PNEUMONIA, ASTHMA = "HP:0000458", "HP:0002090", "HP:0002099"


def lists(text: str) -> dict[str, set[str]]:
    doc = code_text(text, with_provenance=False)
    return {
        k: set(doc.ids(k)) for k in ("present", "negated", "uncertain", "family_history", "history")
    }


def where(text: str, term: str) -> str | None:
    found = [k for k, v in lists(text).items() if term in v]
    assert len(found) <= 1, (text, found)
    return found[0] if found else None


@pytest.mark.parametrize(
    "text",
    [
        "No fever.",
        "denies fever",
        "Pt denied fever or chills.",
        "negative for fever",
        "without fever",
        "w/o fever",
        "free of fever",
        "never had a fever",
        "absence of fever",
        "no signs of fever",
        "Fever: none.",
        "fever absent",
        "fever was ruled out",
        "fever not present",
        "He no longer has a fever.",
        "nil fever",
        "Denies cough, sore throat, myalgia, headache, nausea or fever.",  # a long list
        "fever has resolved",
    ],
)
def test_negation_triggers_before_and_after(text):
    assert where(text, FEVER) == "negated"


@pytest.mark.parametrize(
    ("text", "term", "context"),
    [
        # pseudo-negations trigger nothing
        ("no increase in cough", COUGH, "present"),
        ("not only cough but fever", FEVER, "present"),
        ("gram negative pneumonia", PNEUMONIA, "present"),
        ("no change in his cough", COUGH, "present"),
        # scope ends at a termination term or the sentence end
        ("No fever but has a cough.", COUGH, "present"),
        ("No fever; however cough since Monday.", COUGH, "present"),
        ("No fever. Cough since Monday.", COUGH, "present"),
        ("Denies fever, reports cough.", COUGH, "present"),
        ("no fever, SOB improving", DYSPNEA, "present"),
        ("absence of fever, cough present", COUGH, "present"),
        ("no fever, lost her sense of smell", ANOSMIA, "present"),  # a clause, not a list item
        ("no fever or loss of smell", ANOSMIA, "negated"),
        # a nearer trigger of another kind takes over
        ("no fever, possible pneumonia", PNEUMONIA, "uncertain"),
        # a trigger inside the finding is part of it
        ("no sense of smell", ANOSMIA, "present"),
        ("can't smell", ANOSMIA, "present"),
        ("no loss of smell", ANOSMIA, "negated"),
    ],
)
def test_pseudo_triggers_terminations_and_scope(text, term, context):
    assert where(text, term) == context


@pytest.mark.parametrize(
    "text",
    [
        "possible pneumonia",
        "probable pneumonia",
        "suspected pneumonia",
        "pneumonia suspected",
        "?pneumonia",
        "? pneumonia",
        "pneumonia?",
        "r/o pneumonia",
        "rule out pneumonia",
        "cannot exclude pneumonia",
        "pneumonia cannot be excluded",
        "concern for pneumonia",
        "pneumonia vs bronchitis",
        "return if pneumonia develops",
    ],
)
def test_uncertainty(text):
    assert where(text, PNEUMONIA) == "uncertain"


def test_uncertainty_scope():
    assert where("r/o meningitis: photophobia", "HP:0000613") == "present"
    got = lists("? conjunctivitis, eyes red")
    assert "HP:0000509" in got["uncertain"] and "HP:0025337" in got["present"]


@pytest.mark.parametrize(
    "text",
    [
        "history of asthma",
        "hx of asthma",
        "h/o asthma",
        "PMH: asthma",
        "previous asthma",
        "s/p asthma exacerbation",
        "asthma as a child",
        "asthma, fully recovered",
    ],
)
def test_history(text):
    assert where(text, ASTHMA) == "history"


def test_history_against_current_illness():
    assert where("fever in the past 3 days", FEVER) == "present"
    assert where("fever in the past", FEVER) == "history"
    assert where("no history of asthma", ASTHMA) == "negated"
    assert where("Hx of seizures, none in past year.", SEIZURE) == "history"


@pytest.mark.parametrize(
    "text",
    [
        "Mother has seizures.",
        "mother with seizures",
        "family history of seizures",
        "FHx: seizures",
        "FH of seizures",
        "brother had seizures as a child",
        "seizures in the family",
        "seizures runs in the family",
    ],
)
def test_family(text):
    assert where(text, SEIZURE) == "family_history"


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("Mother reports seizures since Monday.", "present"),  # the mother tells; the child has it
        ("Per mother, seizures twice today.", "present"),
        ("No family history of seizures.", "negated"),
        ("Mother has seizures; patient has fever.", "family_history"),
    ],
)
def test_family_reporter_is_not_the_experiencer(text, context):
    assert where(text, SEIZURE) == context


def test_family_scope_ends_with_the_patient():
    got = lists("Mother has asthma, patient has fever.")
    assert got["family_history"] == {ASTHMA} and got["present"] == {FEVER}


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("Hearing is normal.", "HP:0000365"),
        ("normal hearing", "HP:0000365"),
        ("Lungs clear.", "HP:0030830"),
        ("chest clear to auscultation", "HP:0030828"),
        ("Afebrile.", FEVER),
        ("Sense of smell intact.", "HP:0004408"),
        ("alert and oriented", "HP:0001289"),
    ],
)
def test_normal_findings_negate_the_abnormality(text, term):
    assert where(text, term) == "negated"


def test_a_negated_normal_is_not_guessed():
    got = lists("lungs not clear")
    assert "HP:0030830" not in got["negated"] and "HP:0030830" not in got["present"]


def negation_triggers() -> list[tuple[str, str]]:
    out = []
    for rows in TRIGGERS.values():
        for phrase, category, direction in rows:
            if category == NEGATED:
                out.append((" ".join(phrase), direction))
    return out


def test_a_negated_finding_is_never_present():
    """Every lay phrase and shorthand, under every negation trigger before or after it."""
    triggers = negation_triggers()
    assert len(triggers) > 40
    checked, leaks = 0, []
    lay = {p.lower() for _, p, _, _ in lay_entries()}
    for _, phrase, ids, kind in lay_entries():
        if kind.endswith("normal"):
            continue
        for trigger, direction in triggers:
            if direction == "post" and f"{phrase.split()[-1]} {trigger}".lower() in lay:
                continue  # "smell" + "gone" is itself a phrase ("smell gone": anosmia)
            text = f"{trigger} {phrase}." if direction == "pre" else f"{phrase} {trigger}."
            coding = code_text(text, with_provenance=False)
            if set(ids) & set(coding.ids("present")):
                leaks.append(text)
            checked += 1
    assert not leaks, leaks[:20]
    assert checked > 10_000
