"""Score the phenotype coder on the hand-written corpus (``corpus.tsv`` beside this file).

Each corpus row is one sentence with the HPO terms a curator codes for it: ``present``,
``negated`` (stated absent), ``uncertain``, ``family_history`` (of a relative) and ``history``
(the patient's past). The scores:

- precision, recall and F1 of *present* terms, by exact id (micro-averaged over the corpus);
- the same "within one ontology step": a predicted term counts when it is the curator's term,
  its parent or its child (the relaxed match of the GSC+ evaluations of PhenoTagger and
  FastHPOCR), and a curator's term is found when such a term was predicted;
- ``negated_as_present``: predicted present terms that the curator coded as negated, or that
  lie on the same is_a branch as a negated term (the coder says "low-grade fever" where the
  text says "no fever"), unless the curator also coded that term as present. It must be 0;
- ``family_as_present`` and ``history_as_present``, counted the same way (reported; the first
  must be 0 as well: "mother has seizures" is not the patient's seizure).

Run ``python tests/phenotypes/score_corpus.py [--corpus FILE] [--json FILE]`` for the table;
the test ``test_corpus.py`` guards the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).with_name("corpus.tsv")
#: Sentences written after the coder was tuned, and scored once without changing either: the
#: coder's builders read ``corpus.tsv`` while writing it, so its figures are optimistic.
HELDOUT = Path(__file__).with_name("corpus_heldout.tsv")
KINDS = ("present", "negated", "uncertain", "family_history", "history")


@dataclass(frozen=True)
class Row:
    id: str
    style: str
    text: str
    gold: dict[str, frozenset[str]]


def read_corpus(path: Path = CORPUS) -> list[Row]:
    """The corpus rows; term columns are ``;``-separated HPO ids."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            gold = {k: frozenset(t for t in (rec[k] or "").split(";") if t) for k in KINDS}
            rows.append(Row(rec["id"], rec["style"], rec["text"], gold))
    return rows


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    near_pred_hit: int = 0
    near_gold_hit: int = 0
    pred: int = 0
    gold: int = 0
    negated_as_present: int = 0
    family_as_present: int = 0
    history_as_present: int = 0
    sentences: int = 0
    errors: list[dict] = field(default_factory=list)

    @staticmethod
    def _f1(p: float, r: float) -> float:
        return 2 * p * r / (p + r) if p + r else 0.0

    def figures(self) -> dict[str, float | int]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        p1 = self.near_pred_hit / self.pred if self.pred else 1.0
        r1 = self.near_gold_hit / self.gold if self.gold else 1.0
        return {
            "sentences": self.sentences,
            "gold_present": self.gold,
            "predicted_present": self.pred,
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(self._f1(p, r), 4),
            "precision_1step": round(p1, 4),
            "recall_1step": round(r1, 4),
            "f1_1step": round(self._f1(p1, r1), 4),
            "negated_as_present": self.negated_as_present,
            "family_as_present": self.family_as_present,
            "history_as_present": self.history_as_present,
        }


def _near(onto, a: str, b: str) -> bool:
    """The same term, or parent and child."""
    d = onto.distance(a, b)
    return d is not None and d <= 1


def _same_branch(onto, a: str, b: str) -> bool:
    return onto.is_a(a, b) or onto.is_a(b, a)


def score(
    rows: Iterable[Row], predict: Callable[[str], set[str]], onto
) -> tuple[Tally, dict[str, Tally]]:
    """Tally the predictions of ``predict`` (text → present HPO ids) over ``rows``, overall and
    per style; ``onto`` gives ``distance`` and ``is_a`` (``sandgrain.phenotypes.ontology``)."""
    total, by_style = Tally(), {}
    for row in rows:
        pred = set(predict(row.text))
        gold = set(row.gold["present"])
        for t in (total, by_style.setdefault(row.style, Tally())):
            t.sentences += 1
            t.tp += len(pred & gold)
            t.fp += len(pred - gold)
            t.fn += len(gold - pred)
            t.pred += len(pred)
            t.gold += len(gold)
            t.near_pred_hit += sum(any(_near(onto, p, g) for g in gold) for p in pred)
            t.near_gold_hit += sum(any(_near(onto, p, g) for p in pred) for g in gold)
            for kind, attr in (
                ("negated", "negated_as_present"),
                ("family_history", "family_as_present"),
                ("history", "history_as_present"),
            ):
                wrong = sorted(
                    p for p in pred - gold if any(_same_branch(onto, p, g) for g in row.gold[kind])
                )
                setattr(t, attr, getattr(t, attr) + len(wrong))
                if wrong and t is total:
                    t.errors.append({"id": row.id, "text": row.text, kind: wrong})
            if t is total and (pred - gold or gold - pred):
                t.errors.append(
                    {
                        "id": row.id,
                        "text": row.text,
                        "extra": sorted(pred - gold),
                        "missed": sorted(gold - pred),
                    }  # fmt: skip
                )
    return total, by_style


def coder_predict() -> Callable[[str], set[str]]:
    """Present ids as the sandgrain coder finds them."""
    from sandgrain.phenotypes.coder import code_text

    return lambda text: {m.id for m in code_text(text).present}


def table(total: Tally, by_style: dict[str, Tally]) -> str:
    cols = ("sentences", "precision", "recall", "f1", "precision_1step", "recall_1step",
            "f1_1step", "negated_as_present", "family_as_present")  # fmt: skip
    lines = ["\t".join(("style", *cols))]
    for name, t in [*sorted(by_style.items()), ("ALL", total)]:
        f = t.figures()
        lines.append("\t".join([name, *(str(f[c]) for c in cols)]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", metavar="FILE", help="write the figures and errors as JSON")
    ap.add_argument("--errors", action="store_true", help="print each sentence scored wrong")
    ap.add_argument(
        "--corpus", metavar="FILE", type=Path, default=CORPUS, help="the corpus (corpus.tsv)"
    )
    args = ap.parse_args(argv)
    from sandgrain.phenotypes.ontology import hpo

    started = time.perf_counter()
    onto = hpo()
    predict = coder_predict()
    rows = read_corpus(args.corpus)
    total, by_style = score(rows, predict, onto)
    print(table(total, by_style))
    print(f"# HPO {onto.version}; {len(rows)} sentences; {time.perf_counter() - started:.2f} s")
    if args.errors:
        for e in total.errors:
            print(json.dumps(e), file=sys.stderr)
    if args.json:
        doc = {
            "corpus": args.corpus.name,
            "hpo_version": onto.version,
            "overall": total.figures(),
            "by_style": {k: v.figures() for k, v in sorted(by_style.items())},
            "errors": total.errors,
        }
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
