"""Errors of the guides domain (see :mod:`sandgrain.errors` for the base types)."""

from __future__ import annotations

from ..errors import NotFoundError

__all__ = ["MissingIndexError"]


class MissingIndexError(NotFoundError):
    """The genome has no up-to-date site index for the nuclease; the message names the command
    that builds it.

    It is a :class:`~sandgrain.errors.NotFoundError` (the index was not found), answered over
    HTTP as ``409 Conflict``: the request is sound, the store's state does not allow it yet.
    """

    http_status = 409
    title = "Site index missing"
