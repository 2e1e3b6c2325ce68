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
GRCh37 gene table, the strains collection ncov-example with its map, the genotypes and trait table
hipster and the read set 1000g-chr17; ``SANDGRAIN_TEST_DATA`` is the shared data folder; every other
``SANDGRAIN_*`` variable is cleared; this venv's ``bin`` comes first on ``PATH``, so ``python`` and
``sandgrain`` are the venv's, as the docs assume. A block must exit 0 within
:data:`TIMEOUT_S`.

An HTML comment on the line right before a fence (blank lines between are allowed) changes that:

- ``<!-- example: skip (why) -->``: the block is not run (it needs a cloud account, a cluster, a
  server left running, ``make``, an installation, or minutes of benchmark); the reason is
  required and pytest reports it, so no block is left out silently;
- ``<!-- example: empty -->``: the block starts from an empty store instead of the demo's;
- ``<!-- example: continues -->``: the block runs in the working directory and store the block
  before it on the page left (e.g. it uses an index or a file that block made), and a shell or
  console block sees the shell variables and functions the shell blocks before it set (as in one
  terminal: ``API=…`` in one block, ``curl $API/…`` in the next);
- ``<!-- example: server -->``: the block runs while ``sandgrain serve`` listens on
  ``127.0.0.1:8000``, the address the docs write. The server (this venv's, in the blocks'
  environment) starts at the first such block and serves until the session ends, when its
  process group is ended (and the kernel ends it if pytest is killed). It serves a store of its
  own, a copy of the demo store, which every server block has as its ``SANDGRAIN_HOME`` too: what
  a block adds with the command line (a tree) the server sees, as with a terminal beside
  ``sandgrain serve``. Server blocks therefore share one store: one may add to it, never remove
  or replace what another reads. A block that ``continues`` a server block is a server block
  too. In server blocks ``curl`` fails on an HTTP error (a ``.curlrc`` with ``fail-with-body``:
  the body still shows), so a 404 or a 422 fails the block instead of passing as output. If
  something already listens on port 8000 (a ``make run`` of your own), the server blocks are
  skipped, saying so, rather than asking that server; a failing server block shows the end of
  the server's log.

``pytest -v -rs tests/docs`` lists every block with its status and every skip with its reason.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DATA, REPO

from sandgrain.fanout import lifeline

#: Seconds one block may run.
TIMEOUT_S = 120

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PYTHON_LANGS = {"python", "py"}
SHELL_LANGS = {"sh", "bash", "shell"}
CONSOLE_LANGS = {"console"}
RUN_LANGS = PYTHON_LANGS | SHELL_LANGS | CONSOLE_LANGS
MARKER_KINDS = {"skip", "empty", "continues", "server"}

#: Where the docs say ``sandgrain serve`` listens; server blocks run while it does.
SERVER_HOST, SERVER_PORT = "127.0.0.1", 8000
#: Seconds the server may take to answer ``/health``.
SERVER_START_S = 60
#: A shell block's variables and functions, kept in its workspace for a block that continues it.
SHELL_STATE = ".example-shell-state"

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
        "```json\n{}\n```\n\n"
        "<!-- example: server -->\n```sh\nAPI=http://127.0.0.1:8000/api/v1\n```\n\n"
        "```json\n[]\n```\n\n"
        "<!-- example: continues -->\n\n```bash\ncurl -s $API/genomes\n```\n\n"
        "```python\nprint(1)\n```\n",
        encoding="utf-8",
    )
    blocks = extract(page)
    skip, console, data, server, listing, continued, fresh = blocks
    assert (skip.line, skip.lang, skip.marker, skip.reason) == (4, "sh", "skip", "needs a cluster")
    assert skip.code == "sandgrain serve\n"
    assert (console.marker, console.lang) == ("continues", "console")
    assert _console_commands(console.code) == "sandgrain genome list \\\n    --help\n"
    assert data.lang == "json" and not data.runnable and data.marker is None
    assert (server.marker, server.reason, server.code) == ("server", None,
                                                           "API=http://127.0.0.1:8000/api/v1\n")
    # a block continuing a server block runs with the server too (the json between is no code)
    assert _previous(continued, blocks) == server and continued.marker == "continues"
    assert [_is_server(b, blocks) for b in blocks] == [False, False, False, True, False, True,
                                                       False]
    assert not listing.runnable and fresh.marker is None


def test_continued_shell_blocks_keep_variables_and_functions(tmp_path):
    """A shell block continuing another sees the variables (exported or not) and functions the
    shell blocks before it set, as one terminal would, across a Python block between them."""
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- example: empty -->\n```sh\nAPI=http://127.0.0.1:8000/api/v1\nexport TOKEN=abc\n"
        "WORDS=(one two)\nshout() { echo \"$1!\"; }\n```\n\n"
        "<!-- example: continues -->\n```python\nprint('between')\n```\n\n"
        "<!-- example: continues -->\n```console\n$ ID=42\n"
        "$ test \"$API/jobs/$ID ${WORDS[1]} $(shout hi)\" = \\\n"
        "    \"http://127.0.0.1:8000/api/v1/jobs/42 two hi!\"\n"
        "```\n\n"
        "<!-- example: continues -->\n```bash\ntest \"$ID $TOKEN\" = \"42 abc\"\n"
        "python -c 'import os; assert os.environ[\"TOKEN\"] == \"abc\"'\n"
        "python -c 'import os; assert \"API\" not in os.environ'\n```\n",
        encoding="utf-8",
    )
    first, *rest = extract(page)
    workspace = _workspace_for(first, tmp_path / "no-demo", tmp_path, None)
    for block in [first, *rest]:
        _run(block, workspace)


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


@dataclass(frozen=True)
class Server:
    """``sandgrain serve`` on :data:`SERVER_HOST`:data:`SERVER_PORT` for the server blocks."""

    home: Path  # its SANDGRAIN_HOME, and the server blocks'
    log: Path  # its stdout and stderr

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return text[-chars:]


@pytest.fixture(scope="session")
def docs_server(demo_home: Path, tmp_path_factory) -> Iterator[Server]:
    """``sandgrain serve`` on 127.0.0.1:8000 from its own copy of the demo store: started by the
    first server block (only they ask for this fixture), stopped, process group and all, at the
    end of the session."""
    url = f"http://{SERVER_HOST}:{SERVER_PORT}"
    if _port_taken():
        pytest.skip(f"{url} is taken by another server (a `make run`?); the server blocks need "
                    "a `sandgrain serve` of their own there: stop that one to run them")
    root = tmp_path_factory.mktemp("docs-server")
    server = Server(root / "home", root / "serve.log")
    shutil.copytree(demo_home, server.home, symlinks=True)
    with server.log.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "sandgrain"), "serve",
             "--host", SERVER_HOST, "--port", str(SERVER_PORT)],
            cwd=root,
            env=_environment(server.home, root / "cache"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, ended whole
            preexec_fn=lifeline.die_with_parent,  # and killed if pytest is (Linux)
        )
    try:
        _wait_until_serving(process, server, url)
        yield server
    finally:
        _stop(process)


def _port_taken() -> bool:
    """Whether something listens on (or holds) SERVER_PORT of SERVER_HOST already."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((SERVER_HOST, SERVER_PORT))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _wait_until_serving(process: subprocess.Popen, server: Server, url: str) -> None:
    """Wait for the server's /health to answer ok for its own store; skip if another server won
    the port meanwhile, fail with its log if it ends or does not answer in SERVER_START_S."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = server.log_tail()
            if "address already in use" in log.lower():
                pytest.skip(f"{url} was taken by another server while this one started")
            pytest.fail(f"`sandgrain serve` exited {process.returncode} before it answered "
                        f"{url}/health:\n{log}")
        try:
            with opener.open(f"{url}/health", timeout=5) as response:
                health = json.load(response)
        except (OSError, ValueError):  # not listening yet, or 503 while it starts
            time.sleep(0.2)
            continue
        if not str(health.get("store", "")).startswith(str(server.home)):
            pytest.skip(f"{url} is answered by another server (store {health.get('store')})")
        return
    pytest.fail(f"`sandgrain serve` did not answer {url}/health in {SERVER_START_S} s:\n"
                f"{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL to what is left of it."""
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers that outlived it, or a hung server
    process.wait()


#: Workspaces of blocks that ran and exited 0, by block id, for the blocks that continue them.
_FINISHED: dict[str, Path] = {}


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.id}[{b.lang}]" for b in RUNNABLE])
def test_example_runs(block: Example, demo_home: Path, tmp_path: Path,
                      request: pytest.FixtureRequest):
    if block.marker == "skip":
        pytest.skip(f"{block.id}: {block.reason}")
    server = request.getfixturevalue("docs_server") if _is_server(block) else None
    workspace = _workspace_for(block, demo_home, tmp_path, server)
    _run(block, workspace, server)
    _FINISHED[block.id] = workspace


def _previous(block: Example, blocks: list[Example] = RUNNABLE) -> Example | None:
    same_page = [b for b in blocks if b.runnable and b.page == block.page and b.line < block.line]
    return same_page[-1] if same_page else None


def _is_server(block: Example, blocks: list[Example] = RUNNABLE) -> bool:
    """Whether the block runs with the server: it is marked so, or continues one that is."""
    while block.marker == "continues" and (previous := _previous(block, blocks)) is not None:
        block = previous
    return block.marker == "server"


def _workspace_for(block: Example, demo_home: Path, tmp_path: Path,
                   server: Server | None) -> Path:
    """A fresh workspace, or the one the block before it left (run again if it is not at hand,
    e.g. when this block is selected alone)."""
    if block.marker == "continues":
        previous = _previous(block)
        assert previous is not None and previous.marker != "skip", (
            f"{block.id} continues a block that is not run"
        )
        if previous.id not in _FINISHED:
            workspace = _workspace_for(previous, demo_home, tmp_path, server)
            _run(previous, workspace, server)
            _FINISHED[previous.id] = workspace
        return _FINISHED[previous.id]
    workspace = tmp_path / f"ws-{block.line}"
    (workspace / "project").mkdir(parents=True)
    (workspace / "shared").mkdir()
    (workspace / "shared" / "data").symlink_to(DATA, target_is_directory=True)
    if server is not None:  # the server's store is the block's: nothing to copy
        (workspace / "curl").mkdir()
        (workspace / "curl" / ".curlrc").write_text(
            "# an HTTP error fails the block, its body still shown; the server is local\n"
            "fail-with-body\nshow-error\nnoproxy = \"127.0.0.1,localhost\"\n",
            encoding="utf-8",
        )
    elif block.marker == "empty":
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


#: Bash run after a shell block's own lines (only when they all succeeded): writes the variables
#: and functions the block set, or brought from the blocks before it, for the next block.
SAVE_SHELL_STATE = r"""
# the block's shell state, for a block that continues it
for __example_name in $(compgen -v); do
  case $'\n'"$__example_known"$'\n' in *$'\n'"$__example_name"$'\n'*) continue ;; esac
  [[ $__example_name == __example_* || $__example_name == BASH* ]] || declare -p "$__example_name"
done > {state}
for __example_name in $(compgen -A function || true); do
  case $'\n'"$__example_known"$'\n' in *$'\n'"$__example_name"$'\n'*) continue ;; esac
  declare -f "$__example_name"
done >> {state}
"""


def _command(block: Example, workspace: Path) -> list[str]:
    script = workspace / f"example-{block.line}"
    if block.lang in PYTHON_LANGS:
        script = script.with_suffix(".py")
        script.write_text(block.code, encoding="utf-8")
        return [sys.executable, str(script)]
    code = block.code
    if block.lang in CONSOLE_LANGS:
        code = _console_commands(code)
    state = workspace / SHELL_STATE
    lines = ["set -euo pipefail",
             "__example_known=$(compgen -v; compgen -A function || true)"]
    if block.marker == "continues" and state.exists():
        lines.append(f"source {shlex.quote(str(state))}")
    script = script.with_suffix(".sh")
    script.write_text("\n".join(lines) + "\n" + code
                      + SAVE_SHELL_STATE.replace("{state}", shlex.quote(str(state))),
                      encoding="utf-8")
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


def _run(block: Example, workspace: Path, server: Server | None = None) -> None:
    env = _environment(server.home if server else workspace / "home", workspace / "cache")
    if server is not None:
        env["CURL_HOME"] = str(workspace / "curl")
    process = subprocess.Popen(
        _command(block, workspace),
        cwd=workspace / "project",
        env=env,
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
        pytest.fail(f"{block.id} ran over {TIMEOUT_S} s:\n{block.code}\n{output[-4000:]}"
                    + _server_log(server))
    assert process.returncode == 0, (
        f"{block.id} [{block.lang}] exited {process.returncode}:\n{block.code}\n"
        f"--- output ---\n{output[-4000:]}" + _server_log(server)
    )


def _server_log(server: Server | None) -> str:
    return f"\n--- the end of the server's log ---\n{server.log_tail()}" if server else ""
