"""Tests for fromsource.index.statuses: one table from error types to HTTP statuses."""

from __future__ import annotations

import pytest

from fromsource.errors import (
    AuthError,
    BlobNotFoundError,
    FromsourceError,
    HashMismatchError,
    ImmutableFileError,
    InvalidDistributionError,
    NotPublishedError,
    OversizedError,
    ProvenanceError,
    PublishError,
    PublishStorageError,
    SignatureError,
    StoreError,
    UnknownTokenError,
)
from fromsource.index.statuses import STATUS_BY_ERROR, status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidDistributionError("x.whl is not a zip"), 400),  # bad input, by the root's row
        (AuthError("expiry '0d' is not like 30d"), 400),
        (HashMismatchError("bytes changed"), 400),
        (SignatureError("no trusted key"), 400),  # a leaf of a branch without a row
        (OversizedError("METADATA is over the cap", size=10, limit=1), 413),
        (UnknownTokenError("no token 'ops/x'"), 404),
        (NotPublishedError("x.whl is not published in python"), 404),
        (ImmutableFileError("x.whl is already published with other bytes"), 409),
        (PublishError("cannot publish into 'nowhere'"), 400),
        (PublishStorageError("x.whl was not published: no space left"), 503),
        (StoreError("the database is locked"), 503),
        (BlobNotFoundError("blob abc is missing"), 503),  # a row without its bytes: fsck
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_each_error_type_answers_its_status(error: FromsourceError, status: int) -> None:
    assert status_for(error) == status


def test_the_message_does_not_pick_the_status() -> None:
    # The old route answered 409 whenever "immutable" appeared in any message.
    assert status_for(PublishError("files are immutable; this one is not")) == 400
    assert status_for(ImmutableFileError("a message without the word")) == 409


def test_a_new_leaf_answers_like_its_branch() -> None:
    class QuotaError(StoreError):
        """A leaf the table has no row for."""

    class LostLeaf(ProvenanceError):
        """A leaf of a branch without a row."""

    assert status_for(QuotaError("over quota")) == 503
    assert status_for(LostLeaf("x")) == 400


def test_the_table_names_only_error_types_and_http_error_statuses() -> None:
    assert FromsourceError in STATUS_BY_ERROR
    for cls, status in STATUS_BY_ERROR.items():
        assert issubclass(cls, FromsourceError)
        assert 400 <= status <= 599
