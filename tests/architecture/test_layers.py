"""The import graph keeps the layers: cli → web → domains → genome → storage/jobs →
fanout/db/provenance/registry → config → errors, with no domain importing another (except
genome, the shared vocabulary), no runtime module importing the test helpers, and no module but
``config`` reading the environment. Read from the source with :mod:`ast`, so a lazy import
inside a function counts too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import sandgrain
from sandgrain import registry

SRC = Path(sandgrain.__file__).parent

#: Layer of each top-level module or package; a module may import only lower layers (and its
#: own package). Registered domains other than genome sit at DOMAINS.
LAYERS = {
    "errors": 0,
    "__version__": 0,
    "config": 1,
    "fanout": 2, "provenance": 2, "registry": 2, "db": 2, "cache": 2,
    "storage": 3, "jobs": 3,
    "genome": 4,
    "web": 6,
    "cli": 7,
}  # fmt: skip
DOMAINS = 5
#: Test helpers (``sandgrain.testing``) sit beside the runtime and are never imported by it.
TEST_ONLY = "testing"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module:
                found.add(target)
            else:
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {t for t in found if t == "sandgrain" or t.startswith("sandgrain.")}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(top: str) -> int:
    return LAYERS.get(top, DOMAINS)


SOURCES = sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)
GRAPH = {_module(p): _imports(p) for p in SOURCES}


def test_the_graph_is_not_empty():
    assert len(GRAPH) > 50 and sum(map(len, GRAPH.values())) > 200


def test_every_import_goes_down_a_layer():
    wrong = []
    for module, targets in GRAPH.items():
        here = _top(module)
        if here == TEST_ONLY:
            continue
        for target in targets:
            there = _top(target)
            if there in ("", here):
                continue
            if there == TEST_ONLY:
                wrong.append(f"{module} imports the test helpers {target}")
            elif _layer(there) >= _layer(here):
                wrong.append(f"{module} (layer {_layer(here)}) imports {target} "
                             f"(layer {_layer(there)})")
    assert not wrong, "\n".join(wrong)


def test_registered_domains_are_packages_at_the_domain_layer():
    for domain in registry.domains():
        assert (SRC / domain.name / "domain.py").exists(), domain.name
        assert _layer(domain.name) in (LAYERS["genome"], DOMAINS)


def test_no_cycles_between_packages():
    edges = defaultdict(set)
    for module, targets in GRAPH.items():
        for target in targets:
            if _top(target) and _top(target) != _top(module):
                edges[_top(module)].add(_top(target))

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n)))
                   for n in edges[start])

    assert not [p for p in list(edges) if reaches(p, p)]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SRC)))
def test_only_config_reads_the_environment(path):
    if _module(path) == "sandgrain.config" or _top(_module(path)) == TEST_ONLY:
        return
    text = path.read_text()
    assert "os.environ" not in text and "getenv(" not in text, (
        f"{path.relative_to(SRC)} reads the environment: take a Settings (section) instead"
    )
