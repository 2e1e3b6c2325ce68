"""Exceptions of sandgrain, in one place.

Every exception a user can cause derives from :class:`SandgrainError`. Its message is one line a
user can act on; the CLI prints it on stderr and exits non-zero, the web API turns it into an
RFC 9457 problem+json response with :attr:`SandgrainError.http_status`.
"""

from __future__ import annotations


class SandgrainError(Exception):
    """Base of every error a user can cause or fix."""

    http_status = 400
    exit_code = 1
    title = "Bad request"


class InputError(SandgrainError, ValueError):
    """Input that cannot be used: a malformed file, bad coordinates, an invalid option."""

    title = "Invalid input"


class NotFoundError(SandgrainError, LookupError):
    """A named thing (genome, chromosome, gene, job, stored object) does not exist."""

    http_status = 404
    title = "Not found"


class AmbiguousNameError(SandgrainError, LookupError):
    """A name matches several things; the message lists the candidates."""

    http_status = 409
    title = "Ambiguous name"

    def __init__(self, message: str, candidates: list[str] | None = None):
        super().__init__(message)
        self.candidates = list(candidates or [])


class ConflictError(SandgrainError):
    """The request conflicts with the current state (e.g. a name already taken)."""

    http_status = 409
    title = "Conflict"


class StorageError(SandgrainError):
    """The store could not be read or written (unreachable endpoint, corrupt object)."""

    http_status = 503
    title = "Storage unavailable"


class DownloadError(SandgrainError):
    """A URL could not be fetched."""

    title = "Download failed"


class TaskFailedError(SandgrainError):
    """A fan-out task failed after all its retries; the message names the task."""

    http_status = 500
    title = "Task failed"

    def __init__(self, message: str, task_key: str | None = None):
        super().__init__(message)
        self.task_key = task_key


class CancelledError(SandgrainError):
    """Work was cancelled on request."""

    http_status = 409
    exit_code = 130
    title = "Cancelled"
