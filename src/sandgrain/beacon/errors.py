"""Exceptions of the Beacon domain, in one place.

Each derives from a :mod:`sandgrain.errors` type, so the interfaces turn it into a Beacon error
response (or a CLI message) by its :attr:`~sandgrain.errors.SandgrainError.http_status`:
401 for a token that cannot be verified, 403 for data the caller may not see, 429 for a used-up
query budget, 413 for a request body over the size limit, 503 when a dataset changed under a
query, the spec files are missing or the audit log cannot be written.
"""

from __future__ import annotations

from sandgrain.errors import SandgrainError, StorageError


class AuthenticationError(SandgrainError):
    """The bearer token could not be verified. The message never contains the token."""

    http_status = 401
    title = "Unauthorized"


class ForbiddenError(SandgrainError):
    """The caller may not see what was asked for (e.g. record-level data, or the admin API)."""

    http_status = 403
    title = "Forbidden"


class BudgetExceededError(SandgrainError):
    """The user (or IP address) used up its query budget; ``retry_after_s`` says for how long."""

    http_status = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after_s: int = 0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RequestTooLargeError(SandgrainError):
    """A request body over the Beacon's size limit (``SANDGRAIN_BEACON_MAX_BODY``)."""

    http_status = 413
    title = "Content too large"


class AuditUnavailableError(StorageError):
    """The audit log could not be written, and the Beacon fails closed: no answer goes out
    that is not in the log."""


class AuditChainBrokenError(SandgrainError):
    """The audit log's hash chain does not hold: a row was changed, inserted or deleted."""

    http_status = 500
    title = "Audit log tampered with"


class DatasetChangedError(StorageError):
    """A dataset was replaced (re-ingested) or removed while a query read it; asking again
    reads the current version."""


class SchemaUnavailableError(SandgrainError):
    """The Beacon v2 spec files are not where they were looked for."""

    http_status = 503
    title = "Beacon schemas unavailable"


class SchemaNetworkError(SandgrainError):
    """A schema referred to something outside the local spec; it is never fetched."""

    http_status = 500
    title = "Schema reference not available offline"


class SchemaValidationError(SandgrainError, ValueError):
    """A document does not conform to its Beacon v2 schema; :attr:`errors` lists why."""

    http_status = 500
    title = "Document does not conform to the Beacon v2 schema"

    def __init__(self, name: str, errors: list[str]):
        shown = "\n  ".join(errors[:20])
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} error(s) against {name}:\n  {shown}{more}")
        self.name = name
        self.errors = errors
