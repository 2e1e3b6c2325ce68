"""Offline validation against the official GA4GH Beacon v2 JSON schemas (v2.1.1).

The spec's files have no ``$id`` and refer to each other both by relative paths and by absolute
``https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/...`` URLs. Every JSON file of a
local copy of the spec is registered in a :class:`referencing.Registry` under its file URI *and*
under that GitHub URL, and the registry's retrieve function refuses anything else: validation never
touches the network.

Known problems of the v2.1.1 files, worked around here:

- ``models/.../{analyses,biosamples,datasets,individuals,runs}/defaultSchema.json`` refer to
  ``../common/info.json``, which does not exist in the model tree; the framework's
  ``framework/json/common/info.json`` is registered at that address too.
- ``models/.../genomicVariations/defaultSchema.json`` refers to VRS 1.3 on ``w3id.org``; the
  spec's own dereferenced ``bin/deref_schemas/genomicVariations/defaultSchema.json`` (no
  references left) is used instead.
- Several example files fail the schemas; they are registered (harmless) but never used as truth.

The service itself does not need the spec: only :func:`validator_for` and :func:`validate` do, and
they raise :class:`SchemaUnavailableError` with a clear message when the files are absent.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from ..config import Settings
from .errors import SchemaNetworkError, SchemaUnavailableError, SchemaValidationError
from .settings import BeaconSettings

#: Environment variable naming the spec folder (the one holding ``framework/`` and ``models/``).
ENV_VAR = "SANDGRAIN_BEACON_SCHEMAS"
#: Where the spec's absolute references point.
GITHUB_BASE = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/"
#: The spec version these files are (for messages and documentation).
SPEC_VERSION = "v2.1.1"

_MODEL = "models/json/beacon-v2-default-model/"
_RESPONSES = "framework/json/responses/"

#: Name → path of the schema inside the spec directory (optionally ``#`` + JSON pointer).
SCHEMA_PATHS: dict[str, str] = {
    # framework: responses
    "beaconBooleanResponse": _RESPONSES + "beaconBooleanResponse.json",
    "beaconCountResponse": _RESPONSES + "beaconCountResponse.json",
    "beaconResultsetsResponse": _RESPONSES + "beaconResultsetsResponse.json",
    "beaconCollectionsResponse": _RESPONSES + "beaconCollectionsResponse.json",
    "beaconInfoResponse": _RESPONSES + "beaconInfoResponse.json",
    "beaconConfigurationResponse": _RESPONSES + "beaconConfigurationResponse.json",
    "beaconMapResponse": _RESPONSES + "beaconMapResponse.json",
    "beaconEntryTypesResponse": _RESPONSES + "beaconEntryTypesResponse.json",
    "beaconFilteringTermsResponse": _RESPONSES + "beaconFilteringTermsResponse.json",
    "beaconErrorResponse": _RESPONSES + "beaconErrorResponse.json",
    "ga4gh-service-info": _RESPONSES + "ga4gh-service-info-1-0-0-schema.json",
    # framework: requests
    "beaconRequestBody": "framework/json/requests/beaconRequestBody.json",
    # default model: the entry types this beacon serves
    "genomicVariations": "bin/deref_schemas/genomicVariations/defaultSchema.json",
    "individuals": _MODEL + "individuals/defaultSchema.json",
    "datasets": _MODEL + "datasets/defaultSchema.json",
    "cohorts": _MODEL + "cohorts/defaultSchema.json",
    "biosamples": _MODEL + "biosamples/defaultSchema.json",
    "runs": _MODEL + "runs/defaultSchema.json",
    "analyses": _MODEL + "analyses/defaultSchema.json",
    # the model's genomic-variation request parameters (a flat object: referenceName, start …)
    "g_variantRequestParameters": _MODEL + "genomicVariations/requestParameters.json#/g_variant",
}
#: Other names accepted by :func:`validator_for`.
ALIASES = {
    "serviceInfo": "ga4gh-service-info",
    "service-info": "ga4gh-service-info",
    "genomicVariant": "genomicVariations",
    "genomicVariation": "genomicVariations",
    "individual": "individuals",
    "dataset": "datasets",
    "cohort": "cohorts",
    "biosample": "biosamples",
    "run": "runs",
    "analysis": "analyses",
}
#: Files the spec refers to at an address where they do not exist: missing path → real path.
_MISPLACED = {
    _MODEL + "common/info.json": "framework/json/common/info.json",
}


def schema_dir(path: str | os.PathLike | None = None, settings: Settings | None = None) -> Path:
    """The spec directory: *path*, else the settings' ``SANDGRAIN_BEACON_SCHEMAS``, else
    ``beacon-v2-schemas`` in the shared data folder (``SANDGRAIN_TEST_DATA``, default
    ``../shared/data``). Raises :class:`SchemaUnavailableError` when it holds no spec."""
    if path is not None:
        candidate = Path(path)
    else:
        settings = settings or Settings.from_env()
        candidate = settings.section(BeaconSettings).schema_dir(settings)
    if not (candidate / "framework" / "json").is_dir():
        raise SchemaUnavailableError(
            f"the Beacon {SPEC_VERSION} schemas are not in {candidate.resolve()}; "
            f"set {ENV_VAR} to the folder holding framework/ and models/"
        )
    return candidate.resolve()


def available(path: str | os.PathLike | None = None) -> bool:
    """Whether the spec files can be found (see :func:`schema_dir`)."""
    try:
        schema_dir(path)
    except SchemaUnavailableError:
        return False
    return True


def _refuse(uri: str):
    # The registry's retrieve hook: anything not registered would come from the network.
    raise SchemaNetworkError(f"refusing to fetch {uri}: Beacon schemas are resolved offline only")


@lru_cache(maxsize=4)
def registry(root: Path) -> Registry:
    """Every JSON file under *root* as a resource, at its file URI and its GitHub URL."""
    resources = []
    for file in sorted(root.rglob("*.json")):
        relative = file.relative_to(root).as_posix()
        try:
            contents = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaUnavailableError(f"cannot read Beacon schema {file}: {exc}") from exc
        # Files declare odd "$schema" values (e.g. examples pointing at a sibling file); all
        # of the spec is draft 2020-12, so that is declared rather than sniffed.
        resource = DRAFT202012.create_resource(contents)
        resources.append((file.as_uri(), resource))
        resources.append((GITHUB_BASE + relative, resource))
        for missing, real in _MISPLACED.items():
            if relative == real:
                resources.append(((root / missing).as_uri(), resource))
                resources.append((GITHUB_BASE + missing, resource))
    return Registry(retrieve=_refuse).with_resources(resources)


def _canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in SCHEMA_PATHS:
        raise KeyError(f"unknown Beacon schema {name!r}; known: {', '.join(sorted(SCHEMA_PATHS))}")
    return name


def validator_for(name: str, path: str | os.PathLike | None = None) -> Draft202012Validator:
    """A draft 2020-12 validator (formats checked) for schema *name*, cached per spec folder.

    *name* is a key of :data:`SCHEMA_PATHS` or :data:`ALIASES`: the framework responses, the
    request body, ``ga4gh-service-info`` and the default-model entry types."""
    return _validator(_canonical(name), schema_dir(path))


@lru_cache(maxsize=64)
def _validator(name: str, root: Path) -> Draft202012Validator:
    relative, _, pointer = SCHEMA_PATHS[name].partition("#")
    if not (root / relative).is_file():
        raise SchemaUnavailableError(f"Beacon schema {name} not found at {root / relative}")
    uri = (root / relative).as_uri() + (f"#{pointer}" if pointer else "")
    # A "$ref" to the registered URI keeps the file's own URI as the base of its relative refs.
    return Draft202012Validator(
        {"$ref": uri},
        registry=registry(root),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _describe(error: ValidationError) -> str:
    # For oneOf/anyOf the top error only says "not valid under any"; the best sub-error says why.
    if error.context:
        error = best_match(error.context)
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return f"{where}: {message}"


def errors(name: str, document: Any, path: str | os.PathLike | None = None) -> list[str]:
    """Every way *document* violates schema *name*, as ``"json/path: message"`` lines."""
    validator = validator_for(name, path)
    try:
        found = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    except Unresolvable as exc:
        # Everything in the spec folder is registered, so this is a reference to the outside.
        raise SchemaNetworkError(
            f"schema {name}: {exc} is not in the local spec and is never fetched"
        ) from exc
    return [_describe(e) for e in found]


def validate(name: str, document: Any, path: str | os.PathLike | None = None) -> None:
    """Raise :class:`SchemaValidationError` listing every error if *document* violates *name*."""
    found = errors(name, document, path)
    if found:
        raise SchemaValidationError(name, found)
