"""Every picture README.md and the docs pages show is in the repository and can be made again.

A picture a page embeds (``![alt](path)`` or ``<img src="path">``, outside code blocks) must be a
file of the repository that git does not ignore (a clone has it), tracked by git, a PNG no larger
than :data:`MAX_BYTES`, under ``docs/images/``, and an entry of the table of
``scripts/screenshots.py`` (``SHOTS``) that names the embedding page, so ``make screenshots``
makes it again. Every file under ``docs/images/`` is such an entry, and no page links to
``test-artifacts/`` (a git-ignored folder the browser tests write).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

#: Largest picture, in bytes (the script aims at 150 kB: a palette of 256 colours or fewer).
MAX_BYTES = 200_000
IMAGES = REPO / "docs/images"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

FENCED = re.compile(r"^(\s*)(`{3,}|~{3,}).*?^\1\2\s*$", re.M | re.S)
MD_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_IMAGE = re.compile(r"<img\b[^>]*\bsrc=[\"']([^\"']+)[\"']", re.I)
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)|\b(?:src|href)=[\"']([^\"']+)[\"']", re.I)


def _screenshots():
    """scripts/screenshots.py as a module (it imports Playwright only when it runs)."""
    name = "sandgrain_docs_screenshots"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts/screenshots.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


SHOTS = {shot.name: shot for shot in _screenshots().SHOTS}


def _prose(page: Path) -> str:
    """The page without its code blocks (an example may show markup that is not the page's)."""
    return FENCED.sub("", page.read_text(encoding="utf-8"))


def _embedded() -> list[tuple[str, str]]:
    """(page, target) for every picture every page embeds."""
    found = []
    for page in PAGES:
        text = _prose(page)
        rel = page.relative_to(REPO).as_posix()
        for pattern in (MD_IMAGE, HTML_IMAGE):
            found += [(rel, m.group(1)) for m in pattern.finditer(text)]
    return found


EMBEDDED = _embedded()


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)


def _in_git() -> bool:
    return shutil.which("git") is not None and _git("rev-parse", "--git-dir").returncode == 0


def test_the_pages_embed_pictures():
    """The scan sees the pictures (a broken pattern would pass every test below)."""
    assert any(t.endswith("images/strains-map.png") for _, t in EMBEDDED), EMBEDDED
    assert len(EMBEDDED) >= 8


@pytest.mark.parametrize(("page", "target"), EMBEDDED, ids=[f"{p}:{t}" for p, t in EMBEDDED])
def test_an_embedded_picture_is_committed_small_and_made_by_the_script(page, target):
    assert "://" not in target and not target.startswith("data:"), (
        f"{page} embeds {target}: pictures are files of the repository, not fetched"
    )
    path = (REPO / page).parent / target.split("#")[0]
    rel = path.resolve().relative_to(REPO.resolve()).as_posix()
    assert path.is_file(), f"{page} embeds {target}, which is not in the repository"
    assert path.resolve().parent == IMAGES.resolve(), f"{page}: {target} is not under docs/images/"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{rel} is not a PNG"
    size = path.stat().st_size
    assert size <= MAX_BYTES, f"{rel} is {size:,} bytes, more than {MAX_BYTES:,}"
    shot = SHOTS.get(path.name)
    assert shot is not None, f"{rel} is not in scripts/screenshots.py's SHOTS: it cannot be remade"
    assert page in shot.pages, f"SHOTS' entry {path.name} does not name {page}, which embeds it"
    if _in_git():
        assert _git("check-ignore", "-q", rel).returncode == 1, f"{rel} is git-ignored"
        tracked = _git("ls-files", "--error-unmatch", rel).returncode == 0
        assert tracked or _git("ls-files", "--others", "--exclude-standard", rel).stdout.strip(), (
            f"{rel} is neither tracked nor a new file git would add"
        )


def test_every_file_under_docs_images_is_made_by_the_script():
    files = sorted(p.name for p in IMAGES.iterdir() if p.is_file())
    assert files, "docs/images/ is empty"
    assert [f for f in files if f not in SHOTS] == []
    for name in files:
        assert (IMAGES / name).stat().st_size <= MAX_BYTES, name


def test_the_table_names_each_picture_once_and_real_pages():
    names = [shot.name for shot in _screenshots().SHOTS]
    assert len(names) == len(set(names))
    for shot in SHOTS.values():
        assert shot.name.endswith(".png") and "/" not in shot.name
        assert all(p == "README.md" or re.fullmatch(r"docs/[\w./-]+\.md", p) for p in shot.pages)


def test_no_page_links_to_test_artifacts():
    bad = []
    for page in PAGES:
        for m in LINK_TARGET.finditer(_prose(page)):
            target = m.group(1) or m.group(2)
            if "test-artifacts/" in target:
                bad.append(f"{page.relative_to(REPO)}: {target}")
    assert bad == []
