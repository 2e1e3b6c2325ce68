"""Patient status → WHO clinical progression scale, and vaccination text → CVX: the GISAID-like
strings, misspellings within the edit bound, ranges with their lowest certain score, and text
that is reported as unknown rather than guessed."""

from __future__ import annotations

import pytest

from sandgrain.phenotypes.outcomes import edit_distance, parse_status, parse_vaccination


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("Hospitalized", 4, 9),
        ("hospitalised", 4, 9),
        ("Released", 1, 3),
        ("Live", 1, 9),
        ("ICU", 6, 9),
        ("Deceased", 10, 10),
        ("Died", 10, 10),
        ("mild symptoms", 2, 3),
        ("asymptomatic", 1, 1),
        ("Outpatient", 1, 3),
        ("home isolation", 1, 3),
        ("recovered", 1, 3),
        ("Hospitalized, ICU", 6, 9),
        ("Hospitalized (intubated, ECMO)", 9, 9),
        ("Hospitalized; deceased", 10, 10),
        ("hospitalized then released", 1, 3),
        ("not hospitalized", 1, 3),
        ("HFNC", 6, 6),
        ("Patient status: In patient", 4, 9),
    ],
)
def test_status_strings_map_to_the_who_scale(text, low, high):
    out = parse_status(text)
    assert out.status == "coded", out
    assert (out.low, out.high) == (low, high)
    d = out.to_dict()["who_scale"]
    assert d["range"] == [low, high] and d["at_least"] == low
    assert d["score"] == (low if low == high else None)


@pytest.mark.parametrize(
    ("typed", "read_as", "low"),
    [("hopsitalized", "hospitalized", 4), ("deseased", "deceased", 10),
     ("Hosptalized", "hospitalized", 4), ("asymptomatc", "asymptomatic", 1)],
)  # fmt: skip
def test_misspellings_within_the_bound_are_read_and_reported(typed, read_as, low):
    out = parse_status(typed)
    assert out.low == low
    assert out.corrections == ((typed.lower(), read_as),)


@pytest.mark.parametrize(
    "text",
    ["unknown", "", "n/a", "fever", "diseased", "Outpatient, ICU", "Live, deceased",
     "Hospitalized, not ICU", "hzzpitalizd", "severe"],
)  # fmt: skip
def test_what_is_not_understood_is_unknown_never_guessed(text):
    out = parse_status(text)
    assert out.status == "unknown" and out.low is None
    d = out.to_dict()
    assert d["status"] == "unknown" and d["text"] == text and d["reason"]


def test_snomed_findings_only_where_one_applies():
    assert parse_status("Deceased").snomed == ("419099009", "Dead")
    assert parse_status("Live").snomed == ("438949009", "Alive")
    assert parse_status("asymptomatic").snomed == ("162467007", "Symptom free")
    assert parse_status("Hospitalized").snomed is None


def test_edit_distance_counts_transpositions_as_one_and_stops_at_the_limit():
    assert edit_distance("hopsital", "hospital", 2) == 1
    assert edit_distance("deseased", "deceased", 2) == 1
    assert edit_distance("diseased", "deceased", 3) == 2
    assert edit_distance("abcdef", "uvwxyz", 2) == 3
    assert edit_distance("", "abc", 5) == 3


@pytest.mark.parametrize(
    ("text", "status", "vaccines"),
    [
        ("2 doses Pfizer", "completed", [("208", 2, False)]),
        ("Moderna booster", "completed", [("207", None, True)]),
        ("AstraZeneca x2", "completed", [("210", 2, False)]),
        ("Sinovac", "completed", [("511", None, False)]),
        ("Janssen", "completed", [("212", None, False)]),
        ("J&J", "completed", [("212", None, False)]),
        ("fully vaccinated, two doses", "completed", [("213", 2, False)]),
        ("2 doses Pfizer, Moderna booster", "completed", [("208", 2, False), ("207", None, True)]),
        ("Pfizer 3rd dose", "completed", [("208", 3, False)]),
        ("Modena", "completed", [("207", None, False)]),
        ("unvaccinated", "not-done", [("213", None, False)]),
        ("Not vaccinated", "not-done", [("213", None, False)]),
    ],
)
def test_vaccination_text_gives_cvx_codes_and_dose_numbers(text, status, vaccines):
    out = parse_vaccination(text)
    assert out.status == status
    assert [(d.cvx, d.dose_number, d.booster) for d in out.doses] == vaccines


@pytest.mark.parametrize("text", ["unknown", "", "Pfizer but unvaccinated", "yes?"])
def test_unclear_vaccination_text_is_unknown(text):
    out = parse_vaccination(text)
    assert out.status == "unknown" and out.reason
    assert "vaccines" not in out.to_dict()


def _osa_reference(a: str, b: str) -> int:
    """Optimal string alignment distance by the full table, no early stop (the plain twin)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def test_bounded_edit_distance_equals_the_full_table_on_random_words():
    import random

    rng = random.Random(16)
    for _ in range(2000):
        a = "".join(rng.choice("abcde") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("abcde") for _ in range(rng.randint(0, 9)))
        limit = rng.randint(0, 4)
        want = _osa_reference(a, b)
        got = edit_distance(a, b, limit)
        assert got == (want if want <= limit else limit + 1), (a, b, limit)


def test_every_product_code_is_in_the_cvx_table():
    from sandgrain.phenotypes.outcomes import _PRODUCTS, CVX, WHO_SCALE

    assert {code for code, _ in _PRODUCTS.values()} | {"213"} <= set(CVX)
    assert sorted(WHO_SCALE) == list(range(11))
