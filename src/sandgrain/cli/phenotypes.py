"""``sandgrain phenotypes …``: clinical free text → HPO terms (``code``), and through
:mod:`sandgrain.cli.phenotypes_fhir`, outcomes and FHIR bundles (``fhir``, ``outcome``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import InputError

__all__ = ["app", "code_cmd"]

app = typer.Typer(
    help="Clinical free text to HPO phenotype terms (present, negated, uncertain, history, "
    "family), outcomes and FHIR.",
    no_args_is_help=True,
)

#: Largest --file read (bytes).
MAX_FILE = 200_000_000
_TSV_HEADER = ("note", "context", "id", "label", "text", "start", "end")


def _read_notes(text: str | None, file: Path | None, whole: bool) -> tuple[list[str], str]:
    """The notes to code and where they came from."""
    from ..phenotypes.coder import MAX_TEXT

    if (text is None) == (file is None):
        raise InputError("give the note as TEXT or as --file FILE (one of them)")
    if text is not None:
        if text == "-":
            return _split(sys.stdin.read(), whole), "stdin"
        return [text], "argument"
    if str(file) == "-":
        return _split(sys.stdin.read(), whole), "stdin"
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    if file.stat().st_size > MAX_FILE:
        raise InputError(f"{file} is larger than {MAX_FILE:,} bytes")
    try:
        data = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{file} is not UTF-8 text") from None
    notes = _split(data, whole)
    for i, note in enumerate(notes, 1):
        if len(note) > MAX_TEXT:
            raise InputError(f"{file}: note {i} is longer than {MAX_TEXT:,} characters")
    return notes, str(file)


def _split(data: str, whole: bool) -> list[str]:
    if whole:
        return [data]
    return [line for line in data.splitlines() if line.strip()]


@app.command("code")
def code_cmd(
    text: str = typer.Argument(
        None, help="The note to code (- reads standard input).", metavar="TEXT"
    ),
    file: Path = typer.Option(
        None,
        "--file",
        "-f",
        help="Notes to code: one note per line (or the whole file as one note with --whole; - "
        "for standard input).",
        metavar="FILE",
    ),
    whole: bool = typer.Option(
        False, "--whole", help="Read --file (or standard input) as one note, not one per line."
    ),
    fmt: str = typer.Option(
        "json", "--format", help="json (one object per note) or tsv.", metavar="[json|tsv]"
    ),
) -> None:
    """HPO terms found in clinical free text, each with its context.

    JSON, one object per note: {"present": [{"id", "label", "text", "start", "end"}], "negated":
    […], "uncertain": […], "family_history": […], "history": […], "provenance": {…}} (offsets
    are 0-based characters, end exclusive; with several notes, each object also has "note", its
    1-based number). TSV: one row per finding, columns note, context, id, label, text, start,
    end, after a "#"-line of provenance.
    """
    from ..phenotypes.coder import LISTS, code_text, coding_provenance

    if fmt not in ("json", "tsv"):
        raise InputError(f"--format is json or tsv, not {fmt!r}")
    notes, source = _read_notes(text, file, whole)
    prov = coding_provenance(notes, source=source, notes=len(notes), whole=whole)
    codings = [code_text(n, with_provenance=False) for n in notes]
    out = sys.stdout
    if fmt == "json":
        for i, coding in enumerate(codings, 1):
            doc = coding.to_dict()
            if len(notes) > 1:
                doc = {"note": i, **doc}
            doc["provenance"] = prov
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return
    out.write("# " + json.dumps(prov, ensure_ascii=False) + "\n")
    out.write("\t".join(_TSV_HEADER) + "\n")
    for i, coding in enumerate(codings, 1):
        for which in LISTS:
            for m in getattr(coding, which):
                cells = (i, which, m.id, m.label, _cell(m.text), m.start, m.end)
                out.write("\t".join(str(c) for c in cells) + "\n")


def _cell(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _mount_fhir_commands() -> None:
    """Helper B's commands (``fhir``, ``outcome``) live in their own module."""
    try:
        from .phenotypes_fhir import fhir_cmd, outcome_cmd
    except ModuleNotFoundError as exc:  # only while that module is not written yet
        if exc.name != f"{__package__}.phenotypes_fhir":
            raise
        return
    app.command("fhir")(fhir_cmd)
    app.command("outcome")(outcome_cmd)


_mount_fhir_commands()
