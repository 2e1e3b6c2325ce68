"""Coded phenotypes of one patient as a GA4GH Phenopacket (schema v2.0), in its JSON form.

Phenopackets v2 (Jacobsen et al., "The GA4GH Phenopacket schema defines a computable
representation of clinical data", *Nature Biotechnology* 2022; 40: 817–820) is the format
Beacon v2 individuals use for phenotypes. We write the elements the coder can fill:

- ``id`` and ``subject`` (``Individual``: ``id``, and ``vitalStatus`` when a patient status
  was given: ``DECEASED`` for a WHO score of 10, ``ALIVE`` for any other coded status,
  ``UNKNOWN_STATUS`` when the status was not understood);
- ``phenotypicFeatures``: one ``PhenotypicFeature`` per HPO term, ``type`` an ``OntologyClass``
  (``id``, ``label``), ``excluded: true`` for a term the text states is absent, and the words
  it was read from as ``description``. Uncertain terms and terms of relatives are left out: a
  phenotypic feature is an observation of the subject, present or excluded;
- ``metaData``: ``created``, ``createdBy``, ``phenopacketSchemaVersion: "2.0"``, and the HPO
  as a ``Resource`` with its release as ``version``; the SHA-256 of the input text is an
  ``externalReference``.

The JSON uses the protobuf JSON mapping's lowerCamelCase field names, as the schema's own
examples do.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from .. import __version__
from ..errors import InputError
from ..provenance import utc_now
from .fhir import MAX_PATIENT_ID, hpo_release, mentions
from .outcomes import Outcome

__all__ = ["PHENOPACKET_SCHEMA_VERSION", "build_phenopacket"]

PHENOPACKET_SCHEMA_VERSION = "2.0"
_NAMESPACE = uuid.UUID("b4d6e0a1-7c3e-5f0b-8d1e-70686e6f7061")


def _vital_status(outcome: Outcome) -> dict[str, str]:
    if outcome.status != "coded":
        return {"status": "UNKNOWN_STATUS"}
    return {"status": "DECEASED" if outcome.low == 10 else "ALIVE"}


def _feature(m: dict, excluded: bool) -> dict[str, Any]:
    feature: dict[str, Any] = {"type": {"id": m["id"], "label": m.get("label") or m["id"]}}
    if excluded:
        feature["excluded"] = True
    if m.get("text"):
        feature["description"] = m["text"]
    return feature


def build_phenopacket(
    patient_id: str,
    coding: Any = None,
    *,
    outcome: Outcome | None = None,
    text: str = "",
    hpo_version: str | None = None,
) -> dict[str, Any]:
    """A Phenopacket v2 (JSON form) of one patient's coded text (module doc)."""
    if not isinstance(patient_id, str) or not patient_id.strip():
        raise InputError("give a patient id (--patient)")
    if len(patient_id) > MAX_PATIENT_ID or any(ord(c) < 32 for c in patient_id):
        raise InputError(f"a patient id is printable text of at most {MAX_PATIENT_ID} characters")
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    subject: dict[str, Any] = {"id": patient_id}
    if outcome is not None:
        subject["vitalStatus"] = _vital_status(outcome)
    features: list[dict[str, Any]] = []
    seen: set[tuple[str, bool]] = set()
    if coding is not None:
        for kind, excluded in (("present", False), ("negated", True)):
            for m in mentions(coding, kind):
                if (m["id"], excluded) not in seen:  # one feature per term and polarity
                    seen.add((m["id"], excluded))
                    features.append(_feature(m, excluded))
    version = hpo_version or hpo_release()
    packet: dict[str, Any] = {
        "id": str(uuid.uuid5(_NAMESPACE, f"{patient_id}\x00{sha}")),
        "subject": subject,
        "phenotypicFeatures": features,
        "metaData": {
            "created": utc_now(),
            "createdBy": f"sandgrain {__version__}",
            "resources": [
                {
                    "id": "hp",
                    "name": "human phenotype ontology",
                    "url": "http://purl.obolibrary.org/obo/hp.owl",
                    "version": version,
                    "namespacePrefix": "HP",
                    "iriPrefix": "http://purl.obolibrary.org/obo/HP_",
                }
            ],
            "phenopacketSchemaVersion": PHENOPACKET_SCHEMA_VERSION,
            "externalReferences": [
                {"id": f"sha256:{sha}", "description": "SHA-256 of the free text coded"}
            ],
        },
    }
    return packet
