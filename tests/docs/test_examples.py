"""Every code example in README.md and docs/*.md runs as written.

Each fenced block is extracted and run in a subprocess:

- ```` ```python ```` blocks with this venv's Python;
- ```` ```sh ````, ```` ```bash ```` and ```` ```shell ```` blocks with ``bash`` under
  ``set -euo pipefail``;
- ```` ```console ```` blocks the same way, taking only the lines after a ``$ `` prompt (the
  other lines are the output the page shows).

Other fences (json, toml, yaml, text, a diagram) are not code to run.

Each block runs in a workspace of its own: the working directory is ``<tmp>/project`` with
``<tmp>/shared/data`` a link to the shared data folder, so the docs' ``../shared/data/…`` paths
resolve as they do from the project root; ``SANDGRAIN_HOME`` is ``<tmp>/home``, holding a copy of
the store ``sandgrain demo --data <shared data>`` builds (once per session): the genomes yeast and
sars-cov-2 with their SpCas9 site indexes, the Beacon datasets 1000g-chr1 and 1000g-chr22 and the
GRCh37 gene table; ``SANDGRAIN_TEST_DATA`` is the shared data folder; every other
``SANDGRAIN_*`` variable is cleared; this venv's ``bin`` comes first on ``PATH``, so ``python`` and
``sandgrain`` are the venv's, as the docs assume. A block must exit 0 within
:data:`TIMEOUT_S`.

An HTML comment on the line right before a fence (blank lines between are allowed) changes that:

- ``<!-- example: skip (why) -->``: the block is not run (it needs a cloud account, a cluster, a
  server left running, ``make``, an installation, or minutes of benchmark); the reason is
  required and pytest reports it, so no block is left out silently;
- ``<!-- example: empty -->``: the block starts from an empty store instead of the demo's;
- ``<!-- example: continues -->``: the block runs in the working directory and store the block
  before it on the page left (e.g. it uses an index or a file that block made).

``pytest -v -rs tests/docs`` lists every block with its status and every skip with its reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DATA, REPO

#: Seconds one block may run.
TIMEOUT_S = 120

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PYTHON_LANGS = {"python", "py"}
SHELL_LANGS = {"sh", "bash", "shell"}
CONSOLE_LANGS = {"console"}
RUN_LANGS = PYTHON_LANGS | SHELL_LANGS | CONSOLE_LANGS
MARKER_KINDS = {"skip", "empty", "continues"}

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*example:\s*(?P<kind>[\w-]+)\s*(?:\((?P<reason>.*)\))?\s*-->\s*$")
ANY_MARKER = re.compile(r"<!--\s*example\b")


@dataclass(frozen=True)
class Example:
    """One fenced block of a page."""

    page: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None = None
    reason: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.lang in RUN_LANGS


def extract(path: Path) -> list[Example]:
    """The fenced blocks of one Markdown page, with the marker before each, in page order."""
    lines = path.read_text(encoding="utf-8").split("\n")
    page = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
    blocks: list[Example] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        # a fence indented in a list item: its lines lose that indentation, no more
        body = "\n".join(line[indent:] if not line[:indent].strip() else line
                         for line in lines[i + 1 : end])
        marker = reason = None
        before = i - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        if before >= 0 and (found := MARKER.match(lines[before])):
            marker, reason = found["kind"], found["reason"]
        blocks.append(Example(page, i + 1, match["lang"].lower(), body + "\n", marker, reason))
        i = end + 1
    return blocks


ALL = [block for path in DOCS for block in extract(path)]
RUNNABLE = [block for block in ALL if block.runnable]


def test_markers_are_well_formed():
    """A marker names a known kind, a skip says why, and every marker sits right before a fence
    of code to run (a stray or misspelt marker would leave a block unchecked silently)."""
    problems = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").split("\n")
        marked = {b.line for b in extract(path) if b.marker}
        for number, text in enumerate(lines, 1):
            if not ANY_MARKER.search(text):
                continue
            where = f"{path.relative_to(REPO)}:{number}"
            match = MARKER.match(text)
            if match is None:
                problems.append(f"{where}: not of the form <!-- example: KIND (reason) -->")
                continue
            if match["kind"] not in MARKER_KINDS:
                problems.append(f"{where}: unknown marker {match['kind']!r}")
            if match["kind"] == "skip" and not (match["reason"] or "").strip():
                problems.append(f"{where}: a skip marker needs a reason in parentheses")
            following = next((n for n in range(number + 1, len(lines) + 1)
                              if lines[n - 1].strip()), None)
            if following not in marked:
                problems.append(f"{where}: the marker is not right before a fence")
    for block in ALL:
        if block.marker and not block.runnable:
            problems.append(f"{block.id}: a marker on a {block.lang or 'plain'} block, "
                            "which is never run")
        if block.marker == "continues" and _previous(block) is None:
            problems.append(f"{block.id}: 'continues' with no runnable block before it")
    assert not problems, "\n".join(problems)


def test_extraction_finds_the_examples():
    """The extractor sees every page's blocks (a regression guard for the fence parser)."""
    pages = {block.page for block in RUNNABLE}
    assert {"README.md", "docs/fanout.md", "docs/guides.md"} <= pages
    fanout_first = next(b for b in RUNNABLE if b.page == "docs/fanout.md")
    assert fanout_first.lang == "python" and "run_plan" in fanout_first.code


def test_extract_reads_markers_languages_and_console_prompts(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n<!-- example: skip (needs a cluster) -->\n```sh\nsandgrain serve\n```\n\n"
        "- a list item:\n\n  <!-- example: continues -->\n  ```console\n"
        "  $ sandgrain genome list \\\n      --help\n  output line\n  ```\n\n"
        "```json\n{}\n```\n",
        encoding="utf-8",
    )
    skip, console, data = extract(page)
    assert (skip.line, skip.lang, skip.marker, skip.reason) == (4, "sh", "skip", "needs a cluster")
    assert skip.code == "sandgrain serve\n"
    assert (console.marker, console.lang) == ("continues", "console")
    assert _console_commands(console.code) == "sandgrain genome list \\\n    --help\n"
    assert data.lang == "json" and not data.runnable and data.marker is None


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A SANDGRAIN_HOME with the demo store, built once by ``sandgrain demo``."""
    home = tmp_path_factory.mktemp("docs-demo-home")
    result = subprocess.run(
        ["sandgrain", "demo", "--data", str(DATA), "--quiet"],
        env=_environment(home, tmp_path_factory.mktemp("docs-demo-cache")),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return home


#: Workspaces of blocks that ran and exited 0, by block id, for the blocks that continue them.
_FINISHED: dict[str, Path] = {}


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.id}[{b.lang}]" for b in RUNNABLE])
def test_example_runs(block: Example, demo_home: Path, tmp_path: Path):
    if block.marker == "skip":
        pytest.skip(f"{block.id}: {block.reason}")
    workspace = _workspace_for(block, demo_home, tmp_path)
    _run(block, workspace)
    _FINISHED[block.id] = workspace


def _previous(block: Example) -> Example | None:
    same_page = [b for b in RUNNABLE if b.page == block.page and b.line < block.line]
    return same_page[-1] if same_page else None


def _workspace_for(block: Example, demo_home: Path, tmp_path: Path) -> Path:
    """A fresh workspace, or the one the block before it left (run again if it is not at hand,
    e.g. when this block is selected alone)."""
    if block.marker == "continues":
        previous = _previous(block)
        assert previous is not None and previous.marker != "skip", (
            f"{block.id} continues a block that is not run"
        )
        if previous.id not in _FINISHED:
            workspace = _workspace_for(previous, demo_home, tmp_path)
            _run(previous, workspace)
            _FINISHED[previous.id] = workspace
        return _FINISHED[previous.id]
    workspace = tmp_path / f"ws-{block.line}"
    (workspace / "project").mkdir(parents=True)
    (workspace / "shared").mkdir()
    (workspace / "shared" / "data").symlink_to(DATA, target_is_directory=True)
    if block.marker == "empty":
        (workspace / "home").mkdir()
    else:
        shutil.copytree(demo_home, workspace / "home", symlinks=True)
    return workspace


def _environment(home: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDGRAIN_")}
    venv_bin = Path(sys.executable).parent
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv_bin.parent),
        SANDGRAIN_HOME=str(home),
        SANDGRAIN_TEST_DATA=str(DATA),
        SANDGRAIN_CACHE_DIR=str(cache),
    )
    env.pop("PYTHONPATH", None)
    return env


def _command(block: Example, workspace: Path) -> list[str]:
    script = workspace / f"example-{block.line}"
    if block.lang in PYTHON_LANGS:
        script = script.with_suffix(".py")
        script.write_text(block.code, encoding="utf-8")
        return [sys.executable, str(script)]
    code = block.code
    if block.lang in CONSOLE_LANGS:
        code = _console_commands(code)
    script = script.with_suffix(".sh")
    script.write_text("set -euo pipefail\n" + code, encoding="utf-8")
    return ["bash", str(script)]


def _console_commands(text: str) -> str:
    """The commands of a console transcript: lines after a ``$ `` prompt, with the lines a
    trailing backslash continues; the rest is output."""
    commands: list[str] = []
    continuing = False
    for line in text.splitlines():
        if continuing or line.startswith("$ "):
            command = line if continuing else line[2:]
            commands.append(command)
            continuing = command.rstrip().endswith("\\")
    return "\n".join(commands) + "\n"


def _run(block: Example, workspace: Path) -> None:
    process = subprocess.Popen(
        _command(block, workspace),
        cwd=workspace / "project",
        env=_environment(workspace / "home", workspace / "cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a timeout ends the block's whole process group (pool workers)
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{block.id} ran over {TIMEOUT_S} s:\n{block.code}\n{output[-4000:]}")
    assert process.returncode == 0, (
        f"{block.id} [{block.lang}] exited {process.returncode}:\n{block.code}\n"
        f"--- output ---\n{output[-4000:]}"
    )
