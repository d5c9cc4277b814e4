"""BlobStore implementations for tests: real folders underneath, with one fault injected."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fromsource.dist.names import Sha256
from fromsource.errors import StoreError
from fromsource.store.blobs import FileBlobStore


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

    def scratch_dir(self) -> Path | None:
        return self.inner.scratch_dir()

    def iter_range(self, digest: Sha256, start: int, end: int) -> Iterator[bytes]:
        return self.inner.iter_range(digest, start, end)

    def delete(self, digest: Sha256) -> None:
        self.inner.delete(digest)

    def digests(self) -> Iterator[Sha256]:
        return self.inner.digests()
