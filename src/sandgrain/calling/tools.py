"""The field's tools this domain runs: Debian's minimap2, samtools and bcftools.

They are installed by the project's Makefile (``make sysdeps``). Each is found on the ``PATH``;
a missing one is a clear :class:`~sandgrain.errors.InputError` that says how to install it, and a
failed run raises with the tool's own last line of stderr.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import InputError

__all__ = ["ToolError", "find", "pipe", "publishing", "run", "version", "versions"]

#: The Debian package that carries each tool.
PACKAGES = {
    "minimap2": "minimap2",
    "samtools": "samtools",
    "bcftools": "bcftools",
    "bgzip": "tabix",
    "tabix": "tabix",
    "art_illumina": "art-nextgen-simulation-tools",
}


class ToolError(InputError):
    """A tool exited with an error (its input was wrong, or the disk is full)."""


def find(name: str) -> str:
    """The path of tool ``name``, or an :class:`InputError` saying how to install it."""
    path = shutil.which(name)
    if path is None:
        package = PACKAGES.get(name, name)
        raise InputError(
            f"{name} is not installed: `make sysdeps` installs it (Debian package {package})"
        )
    return path


def last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "fail" in ln.lower()]
    return (errors or lines or ["(no message)"])[-1]


def run(argv: Sequence[str], *, what: str = "") -> bytes:
    """Run one tool to the end and return its stdout; raise :class:`ToolError` when it fails."""
    argv = [find(argv[0]), *map(str, argv[1:])]
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ToolError(f"{what or argv[0]}: {last_line(proc.stderr)}")
    return proc.stdout


def pipe(commands: Sequence[Sequence[str]], *, what: str = "", stdout=None) -> None:
    """Run ``a | b | c`` without a shell; raise :class:`ToolError` naming the first that failed.

    ``stdout`` is where the last command writes (a file object), else it is discarded.
    """
    procs: list[subprocess.Popen] = []
    errs = [tempfile.TemporaryFile() for _ in commands]  # noqa: SIM115 - closed below
    upstream = None
    try:
        for i, argv in enumerate(commands):
            last = i == len(commands) - 1
            proc = subprocess.Popen(
                [find(argv[0]), *map(str, argv[1:])],
                stdin=upstream,
                stdout=(subprocess.DEVNULL if stdout is None else stdout)
                if last
                else subprocess.PIPE,
                stderr=errs[i],
            )
            if upstream is not None:
                upstream.close()  # the next process holds it now: a SIGPIPE reaches the writer
            upstream = proc.stdout
            procs.append(proc)
        codes = [p.wait() for p in procs]
        for argv, code, err in zip(commands, codes, errs, strict=True):
            if code != 0:
                err.seek(0)
                raise ToolError(f"{what or argv[0]}: {argv[0]} failed: {last_line(err.read())}")
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        raise
    finally:
        for err in errs:
            err.close()


_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?(?:[-+.][\w.]+)?)")


@functools.cache
def version(name: str) -> str:
    """Tool ``name``'s version as it prints it (``1.16``, ``2.24-r1122``)."""
    flag = "--version"
    out = subprocess.run(
        [find(name), flag], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    ).stdout.decode("utf-8", "replace")
    match = _VERSION.search(out)
    return match.group(1) if match else "unknown"


def versions(names: Sequence[str] = ("minimap2", "samtools", "bcftools")) -> dict[str, str]:
    """``{tool: version}`` for the provenance of a result."""
    return {n: version(n) for n in names}


@contextlib.contextmanager
def publishing(target: str | os.PathLike, index_suffix: str) -> Iterator[tuple[Path, Path]]:
    """Write a file and its index under temporary names beside ``target``; yields
    ``(partial, partial_index)``. When the block ends without error both are renamed into
    place, the index first (a reader never finds the data without it); otherwise both are
    removed: no half-written output is ever left under the target's name."""
    target = Path(target)
    partial = target.with_name(f".{target.name}.partial{''.join(target.suffixes[-2:])}")
    partial_index = Path(f"{partial}{index_suffix}")
    try:
        yield partial, partial_index
        os.replace(partial_index, f"{target}{index_suffix}")
        os.replace(partial, target)
    finally:
        for leftover in (partial, partial_index):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
