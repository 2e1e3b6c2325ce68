"""``sandgrain phenotypes fhir`` and ``sandgrain phenotypes outcome``: a patient's coded text as
a FHIR R4 Bundle or a GA4GH Phenopacket, and a patient or vaccination status read onto the WHO
clinical progression scale or CVX.

Mounted on the ``phenotypes`` group by :mod:`sandgrain.cli.phenotypes`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..errors import InputError

__all__ = ["fhir_cmd", "outcome_cmd"]

#: Largest note file read (bytes).
MAX_FILE = 1_000_000


def _read_text(text: str | None, file: Path | None) -> str | None:
    if text is not None and file is not None:
        raise InputError("give the note as --text or as --file (one of them)")
    if file is None:
        return text
    if str(file) == "-":
        data = sys.stdin.buffer.read(MAX_FILE + 1)
    else:
        if not file.is_file():
            raise InputError(f"no such file: {file}")
        with open(file, "rb") as fh:
            data = fh.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise InputError(f"{file} is larger than {MAX_FILE:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{file} is not UTF-8 text") from None


def fhir_cmd(
    patient: str = typer.Option(..., "--patient", help="The patient's id.", metavar="ID"),
    text: str = typer.Option(None, "--text", help="The clinical note.", metavar="TEXT"),
    file: Path = typer.Option(
        None, "--file", help="Read the note from a file ('-' for stdin).", metavar="FILE"
    ),
    status: str = typer.Option(
        None, "--status", help="Free-text patient status, e.g. 'Hospitalized'.", metavar="TEXT"
    ),
    vaccination: str = typer.Option(
        None,
        "--vaccination",
        help="Free-text vaccination status, e.g. '2 doses Pfizer' (FHIR only).",
        metavar="TEXT",
    ),
    fmt: str = typer.Option(
        "fhir",
        "--format",
        help="fhir (R4 Bundle) or phenopacket (v2).",
        metavar="[fhir|phenopacket]",
    ),
) -> None:
    """A patient's note, status and vaccination as a FHIR R4 Bundle (Patient, an Observation
    per HPO term, present or absent, the WHO-scale outcome, Immunizations with CVX codes,
    Provenance) or a GA4GH Phenopacket v2, as JSON on stdout."""
    from ..phenotypes.export import export_patient

    note = _read_text(text, file)
    if note is None and status is None and vaccination is None:
        raise InputError("give at least one of --text/--file, --status, --vaccination")
    if fmt == "phenopacket" and vaccination is not None:
        raise InputError("--vaccination goes into the FHIR Bundle only (--format fhir)")
    doc = export_patient(patient, note, status=status, vaccination=vaccination, fmt=fmt)
    sys.stdout.write(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


def outcome_cmd(
    text: str = typer.Argument(..., help="The status text, e.g. 'Hospitalized'.", metavar="TEXT"),
    vaccination: bool = typer.Option(
        False, "--vaccination", help="Read TEXT as a vaccination status (CVX) instead."
    ),
) -> None:
    """A free-text patient status on the WHO clinical progression scale (0-10: a score, or the
    range the text fixes and the lowest certain score), or 'unknown' with the reason; with
    --vaccination, the vaccines named with their CVX codes. JSON on stdout."""
    from ..phenotypes.export import outcome_result

    doc = outcome_result(text, "vaccination" if vaccination else "status")
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
