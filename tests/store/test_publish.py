"""Publishing when the blob store fails: a clear error and nothing visible, deterministically.

The crash test (tests/hardening/test_crash.py) kills a publisher at random moments;
these fail each blob write of a publish in turn, so "a row visible before its blobs are
written" is caught at once, on every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fromsource.dist.names import Sha256
from fromsource.errors import PublishError, StoreError
from fromsource.store.blobs import BlobStore, FileBlobStore
from fromsource.store.catalog import all_files
from fromsource.store.db import Database, open_database
from fromsource.store.fsck import run_fsck
from fromsource.store.publish import publish_file
from tests.factories import make_wheel

PROVENANCE = b'{"payloadType": "application/vnd.in-toto+json"}'
SBOM = b'{"bomFormat": "CycloneDX"}'
PUTS = ("wheel", "metadata", "provenance", "sbom")
"""The blob writes of a publish with provenance and SBOM, in the order they happen."""


class FailingBlobs:
    """A BlobStore over a real folder whose put number *fail_at* (1-based) fails.

    It fails as a full disk or a refused upload does in the real backends: with
    StoreError, having stored nothing for that put.
    """

    def __init__(self, inner: FileBlobStore, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.puts = 0

    def _count(self) -> None:
        self.puts += 1
        if self.puts == self.fail_at:
            raise StoreError(f"blob store {self.inner.root}: no space left on device (injected)")

    def put_file(self, path: Path, expected: Sha256 | None = None) -> tuple[Sha256, int]:
        self._count()
        return self.inner.put_file(path, expected)

    def put_bytes(self, data: bytes) -> Sha256:
        self._count()
        return self.inner.put_bytes(data)

    def exists(self, digest: Sha256) -> bool:
        return self.inner.exists(digest)

    def size(self, digest: Sha256) -> int:
        return self.inner.size(digest)

    def read_bytes(self, digest: Sha256, limit: int | None = None) -> bytes:
        return self.inner.read_bytes(digest, limit)

    def local_path(self, digest: Sha256) -> Path | None:
        return self.inner.local_path(digest)

    def iter_range(self, digest: Sha256, start: int, end: int) -> Iterator[bytes]:
        return self.inner.iter_range(digest, start, end)

    def delete(self, digest: Sha256) -> None:
        self.inner.delete(digest)

    def digests(self) -> Iterator[Sha256]:
        return self.inner.digests()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'fromsource.db'}")
    try:
        yield database
    finally:
        database.dispose()


def _assert_nothing_visible_or_half_written(db: Database, blobs: FileBlobStore) -> None:
    """No row, no change for the servers to notice, no partial or temporary blob."""
    assert all_files(db) == []
    assert db.generation() == 0
    for digest in blobs.digests():  # whole blobs only (orphans, which fsck removes)
        assert hashlib.sha256(blobs.read_bytes(digest)).hexdigest() == digest
    assert list((blobs.root / "tmp").iterdir()) == []
    report = run_fsck(db, blobs)
    assert report.references == 0 and not report.missing and not report.mismatched


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4], ids=[f"{p}-put-fails" for p in PUTS])
def test_a_failed_blob_write_publishes_nothing(db: Database, tmp_path: Path, fail_at: int) -> None:
    wheel = make_wheel(tmp_path / "wheels", "demo-pkg", "1.0")
    real = FileBlobStore(tmp_path / "blobs")
    failing = FailingBlobs(real, fail_at)
    store: BlobStore = failing  # it is the Protocol: publish cannot tell it from a backend

    with pytest.raises(PublishError) as raised:
        publish_file(db, store, wheel, "python", provenance=PROVENANCE, sbom=SBOM)
    message = raised.value.message
    assert message.startswith(f"{wheel.name} was not published in python: ")
    assert "no space left on device" in message
    assert failing.puts == fail_at  # nothing was written after the failure
    _assert_nothing_visible_or_half_written(db, real)
    assert len(list(real.digests())) == fail_at - 1

    # Once the store works again the same publish succeeds, with every blob in place.
    published = publish_file(db, real, wheel, "python", provenance=PROVENANCE, sbom=SBOM)
    assert not published.already_present
    [row] = all_files(db)
    assert row.filename == wheel.name and db.generation() == 1
    report = run_fsck(db, real)
    assert report.references == 4 and report.problems == 0 and not report.orphans


def test_a_real_folder_that_refuses_the_blob_publishes_nothing(
    db: Database, tmp_path: Path
) -> None:
    """The file store itself failing (its fan-out folder is a file, which stops root too):
    the temporary copy is removed and the error says what failed and what to do."""
    wheel = make_wheel(tmp_path / "wheels", "demo-pkg", "1.0")
    blobs = FileBlobStore(tmp_path / "blobs")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (blobs.root / digest[:2]).write_bytes(b"")

    with pytest.raises(PublishError) as raised:
        publish_file(db, blobs, wheel, "python", provenance=PROVENANCE, sbom=SBOM)
    message = raised.value.message
    assert message.startswith(f"{wheel.name} was not published in python: blob store ")
    assert "Not a directory" in message and "free space and the permissions" in message
    _assert_nothing_visible_or_half_written(db, blobs)
    assert list(blobs.digests()) == []
