"""One patient's free text, status and vaccination → a FHIR Bundle or a Phenopacket.

The request is checked here, once, for the CLI and the API alike (:func:`export_patient`).
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .outcomes import parse_status, parse_vaccination

__all__ = ["FORMATS", "MAX_FIELD", "export_patient", "outcome_result"]

FORMATS = ("fhir", "phenopacket")
#: Longest status or vaccination text accepted (characters).
MAX_FIELD = 1000


def _field(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"{name} is text")
    if len(value) > MAX_FIELD:
        raise InputError(f"{name} is at most {MAX_FIELD:,} characters")
    return value


def export_patient(
    patient_id: str,
    text: str | None = None,
    *,
    status: str | None = None,
    vaccination: str | None = None,
    fmt: str = "fhir",
    coding=None,
) -> dict[str, Any]:
    """Code ``text`` (HPO terms), read ``status`` (WHO scale) and ``vaccination`` (CVX) and
    return the FHIR R4 Bundle (``fmt="fhir"``) or the Phenopacket v2 (``"phenopacket"``).
    ``coding`` (a :class:`~sandgrain.phenotypes.coder.Coding`, e.g. a curator's edited list)
    replaces coding the text: the text is then only hashed into the provenance."""
    from .coder import MAX_TEXT, code_text
    from .fhir import build_bundle
    from .ontology import hpo
    from .phenopackets import build_phenopacket

    if fmt not in FORMATS:
        raise InputError(f"format is fhir or phenopacket, not {fmt!r}")
    if text is not None and not isinstance(text, str):
        raise InputError("text is the note, as text")
    if text is not None and len(text) > MAX_TEXT:
        raise InputError(f"the text is longer than {MAX_TEXT:,} characters")
    status, vaccination = _field("status", status), _field("vaccination", vaccination)
    if coding is None:
        coding = code_text(text) if text else None
    outcome = parse_status(status) if status is not None else None
    version = hpo().version
    if fmt == "phenopacket":
        return build_phenopacket(
            patient_id, coding, outcome=outcome, text=text or "", hpo_version=version
        )
    vac = parse_vaccination(vaccination) if vaccination is not None else None
    return build_bundle(
        patient_id, coding, outcome=outcome, vaccination=vac, text=text or "", hpo_version=version
    )


def outcome_result(text: str, kind: str = "status") -> dict[str, Any]:
    """A patient status (``kind="status"``) or vaccination status read as :mod:`outcomes`
    reads it, with provenance."""
    import hashlib

    from ..provenance import provenance

    if kind not in ("status", "vaccination"):
        raise InputError(f"kind is status or vaccination, not {kind!r}")
    text = _field(kind, text)
    if text is None:
        raise InputError(f"give the {kind} text")
    result = (parse_status(text) if kind == "status" else parse_vaccination(text)).to_dict()
    scale = "WHO clinical progression scale (WHO Working Group 2020)" if kind == "status" else "CVX"
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    result["provenance"] = provenance(
        "phenotypes outcome", {"kind": kind, "scale": scale}, [{"source": kind, "sha256": sha}]
    )
    return result
