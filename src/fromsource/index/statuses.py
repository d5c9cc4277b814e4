"""The HTTP status of each error a request can cause: one table, pure.

A route hands a :class:`~fromsource.errors.FromsourceError` to
:func:`status_for` rather than choosing a code itself, and never by reading
the message.  The most specific class the table names wins, so a new leaf
answers like its branch until it is given a row of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fromsource.errors import (
    BlobNotFoundError,
    FromsourceError,
    ImmutableFileError,
    NotPublishedError,
    OversizedError,
    PublishError,
    PublishStorageError,
    StoreError,
    UnknownTokenError,
)

__all__ = ["STATUS_BY_ERROR", "status_for"]

STATUS_BY_ERROR: Mapping[type[FromsourceError], int] = MappingProxyType(
    {
        # Anything else fromsource refuses on purpose is the request's fault.
        FromsourceError: 400,
        OversizedError: 413,
        UnknownTokenError: 404,
        NotPublishedError: 404,
        ImmutableFileError: 409,
        # The database or the blob store failed: not the client's fault, worth a retry.
        StoreError: 503,
        # A stored row whose blob is gone is a disk fault too (fsck repairs it), not a 404.
        BlobNotFoundError: 503,
        # Under StoreError only because nothing was stored; an unknown repository is bad input.
        PublishError: 400,
        PublishStorageError: 503,
    }
)


def status_for(exc: FromsourceError) -> int:
    """The HTTP status answering *exc*: the row of its most specific class in the table."""
    for cls in type(exc).__mro__:
        status = STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    raise AssertionError("unreachable: FromsourceError has a row")  # pragma: no cover
