"""Is a finding the patient's, present now, and asserted? Negation, uncertainty, history and
family (another person) context, after NegEx and ConText.

Our own implementation of the published algorithms: NegEx (Chapman et al. 2001, "A simple
algorithm for identifying negated findings and diseases in discharge summaries", J Biomed Inform
34:301) — trigger phrases before ("no", "denies", "negative for") or after ("ruled out",
"absent") a finding, pseudo-triggers that look like negation but are not ("no increase", "not
only", "gram negative"), and terminations ("but", "however") that end a trigger's scope — and
ConText (Harkema et al. 2009, "ConText: an algorithm for determining negation, experiencer, and
temporal status from clinical reports", J Biomed Inform 42:839), which extends the same scheme
to uncertainty (ConText's *hypothetical*/*possible*), history (*historical*) and experiencer
(*other*: family members and contacts) and sets a trigger's scope to the end of the sentence or
the first termination term. The trigger lists below are written for sandgrain from those papers'
categories and from common clinical shorthand (r/o, h/o, FHx, w/o); they are facts about clinical
language, not copied lists.

Rules, in order:

- a trigger inside a matched finding is not a trigger ("no sense of smell" is one finding);
- pseudo-triggers are consumed first and trigger nothing;
- a *pre* trigger covers findings after it up to the sentence end, a termination term of its
  category, or :data:`MAX_PRE` tokens; a *post* trigger covers findings before it back to the
  sentence start or a termination, up to :data:`MAX_POST` tokens;
- sentences end at ``. ! ? ;`` and line breaks; ``?`` directly before a word ("?PE") is a pre
  uncertainty trigger, after a finding ("fever?") a post one;
- when several apply: family (another person) > negated > uncertain > history > present. A
  negated family statement ("no family history of seizures") is reported as negated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .lexicon import Token

__all__ = ["MAX_POST", "MAX_PRE", "TRIGGERS", "Trigger", "classify", "find_triggers"]

#: Tokens a pre trigger reaches forward (long enough for "denies fever, chills, cough, …").
MAX_PRE = 24
#: Tokens a post trigger reaches back.
MAX_POST = 8

NEGATED, UNCERTAIN, HISTORY, FAMILY, TERMINATE, PSEUDO, AFFIRM = (
    "negated",
    "uncertain",
    "history",
    "family",
    "terminate",
    "pseudo",
    "affirm",
)


def _phrase_words(text: str) -> list[str]:
    return text.split()


def _phrases(text: str) -> list[tuple[str, ...]]:
    return [tuple(p.split()) for p in text.strip().split("|") if p.strip()]


#: Words that start a new positive assertion: they end negation and uncertainty scope
#: ("no fever but has cough", "denies chills, reports cough").
_ASSERTING = """has | reports | reported | endorses | endorsed | complains | complaining | c/o |
    presents | presented | presenting | positive for | pos for | notable for | significant for |
    remarkable for | admits | developed | developing"""

# (category, direction) → phrases, "|"-separated, tokens as the tokeniser writes them, lower case.
_LISTS: dict[tuple[str, str], str] = {
    (NEGATED, "pre"): """no | not | denies | denied | deny | denying | without | w/o | never | nor |
        neither | negative for | neg for | free of | absence of | absent | no signs of |
        no sign of | no evidence of | no evidence for | no complaints of | not complaining of |
        no c/o | nil | none | fails to reveal | failed to reveal | rules out | ruled out for |
        ruled out |
        resolution of | doesn't | didn't | don't | isn't | wasn't | hasn't | haven't | won't |
        no longer | not any | unremarkable for | no new | no further evidence of | - ve for""",
    (NEGATED, "post"): """absent | negative | neg | ruled out | was ruled out | is ruled out |
        been ruled out | not present | not seen | not noted | not detected | not found |
        not observed | not appreciated | denied | none | free | not reported | resolved |
        has resolved | have resolved | gone""",
    (UNCERTAIN, "pre"): """possible | possibly | probable | probably | likely | suspected |
        suspect | suspicion of | suspicious for | suspicious of | concern for | concerning for |
        query | questionable | r/o | rule out | to rule out | rule-out | cannot exclude |
        can't exclude | cannot rule out | can't rule out | could not rule out | could be |
        may be | may have | might have | might be | maybe | presumed | presumptive |
        differential | ddx | vs | versus | evaluate for | eval for | assess for |
        screen for | screening for | worried about | worry about | question of | uncertain |
        unclear if | not sure if | not certain if | equivocal | if | should he develop |
        should she develop | in case of | return if | watch for | monitor for |
        look out for | ?""",
    (UNCERTAIN, "post"): """? | suspected | is possible | cannot be excluded |
        can't be excluded | not excluded | not ruled out | not been ruled out |
        to be ruled out | unlikely | is likely | vs | versus | is suspected |
        was suspected | is queried | query""",
    (
        HISTORY,
        "pre",
    ): """history of | hx of | h/o | hx | pmh | pmhx | pmh of | past medical history |
        past history of | previous | previously | prior | status post | s/p |
        background of | known history of | remote history of | childhood""",
    (HISTORY, "post"): """in the past | years ago | year ago | as a child | in childhood |
        previously | in the past year | last year | in 2019 | in 2020 | in 2021 | recovered |
        fully recovered | has recovered | now recovered""",
    (FAMILY, "pre"): """mother | father | mom | mum | dad | sister | brother | sibling | siblings |
        aunt | uncle | grandmother | grandfather | grandma | grandpa | grandparent |
        grandparents | cousin | son | daughter | parent | parents | family history of |
        family history | family hx | fhx | fh | fh of | family member | family members |
        relative | relatives | husband | wife | partner | spouse | household contact |
        household contacts | close contact | sick contact | sick contacts | contact with |
        roommate | coworker | co - worker | colleague | friend | twin""",
    (FAMILY, "post"): """in the family | in her mother | in his mother | in her father |
        in his father | in family | runs in the family | in a sibling | in siblings |
        in relatives | household | in the household | in contacts""",
    (AFFIRM, "post"): """present | noted | seen | observed | improving | worsening | ongoing |
        persists | persisting | persistent | continues | continuing | remains | better | worse""",
    (TERMINATE, "all"): """but | however | although | though | except | aside from | apart from |
        yet | while | whereas | which | nevertheless""",
    (TERMINATE, NEGATED): _ASSERTING,
    (TERMINATE, UNCERTAIN): _ASSERTING,
    (TERMINATE, FAMILY): """patient | pt | pt's | she | he | herself | himself | the patient""",
    (PSEUDO, ""): """no increase | no change | no significant change | not only | not necessarily |
        no further | not cause | not caused | gram negative | gram - negative | without difficulty |
        not certain whether | not drain | no interval change | not extend | no suspicious change |
        mother reports | mother states | mother says | mother notes | mother noticed |
        mother noted | mother reported | mom reports | mom says | mom states | mum reports |
        mum says | father reports | father states | dad reports | parents report |
        parents state | parents noticed | parent reports | per mother | per mom | per mum |
        per father | per parents | per family | per wife | per husband | according to mother |
        according to family | family reports | family states | wife reports | wife states |
        husband reports | husband states | daughter reports | son reports | brought in by |
        contact tracing | if any | not limited to | no other | prior to | the past |
        in the past few | in the past week | in the past day | in the past days""",
}


#: Triggers that are not triggers before these words ("in the past 3 days" is the present
#: illness, "in the past" alone is history).
_NOT_BEFORE = {
    ("in", "the", "past"): frozenset(
        _phrase_words(
            "few several couple 1 2 3 4 5 6 7 8 9 10 14 24 48 72 day days week weeks month hour"
            " hours two three four five six seven"
        )
    ),
}


@dataclass(frozen=True, slots=True)
class Trigger:
    """A trigger phrase found in the text: its category, direction and token span."""

    category: str
    direction: str
    start: int
    end: int  # exclusive, token indices


def _build() -> dict[str, list[tuple[tuple[str, ...], str, str]]]:
    index: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
    for (category, direction), text in _LISTS.items():
        for phrase in _phrases(text):
            index.setdefault(phrase[0], []).append((phrase, category, direction))
    for rows in index.values():
        rows.sort(key=lambda r: -len(r[0]))
    return index


#: First token → [(phrase, category, direction)], longest first.
TRIGGERS = _build()
_SENTENCE_END = frozenset(".!?;\n")


def _low(tok: Token) -> str:
    return tok.raw.lower().replace("’", "'")


def _sentences(tokens: Sequence[Token]) -> list[int]:
    """Sentence number of each token: ``?`` directly before a word belongs to the next one."""
    out, n = [], 0
    for i, t in enumerate(tokens):
        out.append(n)
        if t.raw in _SENTENCE_END:
            glued = (
                t.raw == "?"
                and i + 1 < len(tokens)
                and (
                    (tokens[i + 1].start == t.end and tokens[i + 1].raw[:1].isalnum())
                    or i == 0
                    or tokens[i - 1].raw in _SENTENCE_END
                )
            )
            if glued:
                out[-1] = n + 1
            n += 1
    return out


def find_triggers(tokens: Sequence[Token], covered: Sequence[bool]) -> list[Trigger]:
    """Every trigger, termination and pseudo-trigger, leftmost-longest, skipping tokens that
    belong to a matched finding (``covered``)."""
    found = []
    i, n = 0, len(tokens)
    while i < n:
        rows = TRIGGERS.get(_low(tokens[i])) if not covered[i] else None
        hit = None
        for phrase, category, direction in rows or ():
            j = i + len(phrase)
            if j <= n and all(
                not covered[i + k] and _low(tokens[i + k]) == phrase[k] for k in range(len(phrase))
            ):
                hit = Trigger(category, direction, i, j)
                break
        if (
            hit is not None
            and hit.end < n
            and _low(tokens[hit.end])
            in _NOT_BEFORE.get(tuple(_low(t) for t in tokens[hit.start : hit.end]), ())
        ):
            hit = None
        if hit is None:
            i += 1
            continue
        if hit.category == UNCERTAIN and tokens[i].raw == "?":
            glued = i + 1 < n and tokens[i + 1].start == tokens[i].end
            opening = i == 0 or tokens[i - 1].raw in _SENTENCE_END
            hit = Trigger(UNCERTAIN, "pre" if glued or opening else "post", i, hit.end)
        found.append(hit)
        # several rows may share the phrase (e.g. "vs" pre and post): keep them all
        for phrase, category, direction in rows or ():
            if (
                len(phrase) == hit.end - hit.start
                and (category, direction) != (hit.category, hit.direction)
                and all(_low(tokens[i + k]) == phrase[k] for k in range(len(phrase)))
                and tokens[i].raw != "?"
            ):
                found.append(Trigger(category, direction, i, hit.end))
        i = hit.end
    return found


def _terminates(trig: Trigger, category: str) -> bool:
    if trig.category != TERMINATE:
        return False
    return trig.direction in ("all", category)


_SCOPED = (NEGATED, UNCERTAIN, HISTORY, FAMILY)


#: A finding that starts with one of these verbs after a comma is a clause of its own, not an item
#: of the list a trigger covers: "no fever, lost sense of smell".
_CLAUSE_VERBS = frozenset(
    _phrase_words("lost losing lose can't cannot couldn't unable has have had developed started")
)


def _pre_applies(trig, a, tokens, triggers, sent) -> bool:
    """Whether pre trigger ``trig`` reaches the finding starting at token ``a``."""
    if sent[trig.start] != sent[a] or a - trig.end > MAX_PRE:
        return False
    if (
        trig.category in (NEGATED, UNCERTAIN)
        and _low(tokens[a]) in _CLAUSE_VERBS
        and any(tokens[k].barrier for k in range(trig.end, a))
    ):
        return False
    for t in triggers:
        if t.start < trig.end or t.end > a:
            continue
        if t.start == trig.end:
            continue  # right after the trigger it belongs to it: "no longer has", "FHx:"
        if _terminates(t, trig.category):
            return False
        if t.direction == "pre" and t.category in _SCOPED and t.category != trig.category:
            return False  # a nearer assertion of another kind: "no rash, possible jaundice"
    for k in range(trig.end + 1, a):
        raw = tokens[k].raw
        if raw == ":" and trig.category == UNCERTAIN:
            return False  # "r/o meningitis: photophobia" — the colon starts what was found
        if tokens[k].barrier and tokens[trig.start].raw == "?":
            return False  # "? conjunctivitis, eyes red": ? marks one item
    return True


def _post_applies(trig, b, tokens, triggers, sent) -> bool:
    """Whether post trigger ``trig`` reaches back to the finding ending at token ``b``."""
    if sent[trig.end - 1] != sent[b - 1] or trig.start - b > MAX_POST:
        return False
    if trig.category == AFFIRM:  # only the finding right before it: "SOB improving"
        return all(tokens[k].stop and not tokens[k].barrier for k in range(b, trig.start))
    return not any(
        _terminates(t, trig.category) for t in triggers if t.start >= b and t.end <= trig.start
    )


def classify(tokens: Sequence[Token], spans: Sequence[tuple[int, int]]) -> list[set[str]]:
    """The context categories of each finding (token span ``[start, end)``): a subset of
    {"negated", "uncertain", "history", "family"}; empty means present.

    A negation found only by a post trigger yields to history ("Hx of seizures, none in past
    year" is history), and a finding affirmed right after it ("SOB improving", "constipation
    present") is not negated.
    """
    covered = [False] * len(tokens)
    for a, b in spans:
        for k in range(a, b):
            covered[k] = True
    sent = _sentences(tokens)
    triggers = [t for t in find_triggers(tokens, covered) if t.category != PSEUDO]
    out = []
    for a, b in spans:
        pre: set[str] = set()
        post: set[str] = set()
        for trig in triggers:
            if trig.category == TERMINATE:
                continue
            if trig.direction == "pre" and trig.end <= a:
                if _pre_applies(trig, a, tokens, triggers, sent):
                    pre.add(trig.category)
            elif (
                trig.direction == "post"
                and trig.start >= b
                and _post_applies(trig, b, tokens, triggers, sent)
            ):
                post.add(trig.category)
        cats = pre | (post - {AFFIRM})
        if AFFIRM in post:
            cats.discard(NEGATED)
        if NEGATED in cats and NEGATED not in pre and HISTORY in cats:
            cats.discard(NEGATED)
        out.append(cats)
    return out


def verdict(cats: set[str], normal: bool = False) -> str | None:
    """The list a finding goes to: ``present``, ``negated``, ``uncertain``, ``history`` or
    ``family_history``; ``None`` for a normal finding whose meaning is unclear (negated or
    hedged normals: "lungs not clear")."""
    if normal:
        return "negated" if not cats else None
    if FAMILY in cats:
        return NEGATED if NEGATED in cats else "family_history"
    for category in (NEGATED, UNCERTAIN, HISTORY):
        if category in cats:
            return category
    return "present"
