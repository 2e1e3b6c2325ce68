"""The Beacon API on AWS Lambda: ``sandgrain.web.lambda_handler.handler(event, context)``.

API Gateway (an HTTP API, payload format 2.0, or a REST API) hands each request to the
function as an event; Mangum turns the event into an ASGI request for the same FastAPI app
``sandgrain serve`` runs, and the app's response back into the event API Gateway expects. The
function is configured through its environment like the server (``SANDGRAIN_STORE``,
``SANDGRAIN_HOME``, ``SANDGRAIN_BEACON_CONFIG``, …; see docs/beacon-serverless.md and
deploy/aws/template.yaml).

The app is built on the first event an instance receives (the cold start) and reused while the
instance stays warm, so the Beacon's catalog, decoded partitions and JWKS cache survive between
queries. The app's lifespan is not run: it would start and stop the job manager around every
event; Lambda serves the Beacon, whose service is made on first use and lives as long as the
instance, and no long-running jobs.

Reference: Mangum (ASGI adapter for AWS Lambda), https://mangum.fastapiexpert.com/.
"""

from __future__ import annotations

from typing import Any

from mangum import Mangum

from .. import registry
from ..config import Settings
from .app import create_app

#: The domains whose routes the function serves (the job API needs a long-lived server).
DOMAINS = ("beacon",)

_handler: Mangum | None = None  # one per Lambda instance, built by its first event


def make_handler(settings: Settings | None = None) -> Mangum:
    """A Lambda handler serving the Beacon API with ``settings`` (default: the environment)."""
    settings = settings or Settings.from_env()
    app = create_app(settings, domains=[registry.get(name) for name in DOMAINS])
    return Mangum(app, lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point: answer one API Gateway event."""
    global _handler
    if _handler is None:
        _handler = make_handler()
    return _handler(event, context)
