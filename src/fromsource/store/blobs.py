"""Content-addressed blob storage: bytes named by their sha256.

:class:`BlobStore` is the small interface every backend fills;
:class:`FileBlobStore` keeps blobs in a folder (``ab/cd/abcd…``).  Writes are
atomic: the bytes go to a temporary file in the same folder, are fsynced,
then renamed into place, so a reader sees a whole blob or none.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from fromsource.bounded import read_file
from fromsource.dist.names import Sha256
from fromsource.errors import BlobNotFoundError, ConfigError, HashMismatchError, StoreError

_CHUNK = 1 << 20


class BlobStore(Protocol):
    """Where file bytes live, addressed by sha256."""

    def put_file(self, path: Path, expected: Sha256 | None = None) -> tuple[Sha256, int]:
        """Store the file at *path*; return its digest and size.

        Raises HashMismatchError when *expected* is given and differs, StoreError
        when the bytes cannot be stored (nothing is then stored under the digest).
        """

    def put_bytes(self, data: bytes) -> Sha256:
        """Store *data*; return its digest.  StoreError when it cannot be stored."""

    def exists(self, digest: Sha256) -> bool:
        """Whether a blob with *digest* is stored."""

    def size(self, digest: Sha256) -> int:
        """The size of a stored blob; BlobNotFoundError when absent."""

    def read_bytes(self, digest: Sha256, limit: int | None = None) -> bytes:
        """All bytes of a (small) blob; BlobNotFoundError when absent.

        With *limit*, a larger blob raises OversizedError (its ``size`` in
        the facts) before it is read: callers that serve or copy blobs of any
        size stream them with :meth:`iter_range` instead.
        """

    def local_path(self, digest: Sha256) -> Path | None:
        """A local path to the blob if this backend has one (for sendfile)."""

    def scratch_dir(self) -> Path | None:
        """A folder beside the blobs for temporary files; None for a backend without local files.

        A backend that has one keeps every blob as a local file, so for it a
        None from :meth:`local_path` means the blob is missing.  Files left in
        it (a killed upload) are removed by ``fsck`` after its grace period.
        """

    def iter_range(self, digest: Sha256, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive) of the blob, in chunks."""

    def delete(self, digest: Sha256) -> None:
        """Remove a blob (used only by fsck for orphans)."""

    def digests(self) -> Iterator[Sha256]:
        """Every stored digest."""


def copy_blob(blobs: BlobStore, digest: Sha256, dest: Path) -> int:
    """Write the blob *digest* to the new file *dest*, streamed; its size.

    Raises BlobNotFoundError when the blob is absent.
    """
    local = blobs.local_path(digest)
    if local is not None:
        shutil.copyfile(local, dest)
        return dest.stat().st_size
    size = blobs.size(digest)
    written = 0
    with dest.open("wb") as out:
        for chunk in blobs.iter_range(digest, 0, size - 1) if size else ():
            out.write(chunk)
            written += len(chunk)
    return written


def sha256_file(path: Path) -> tuple[Sha256, int]:
    """The sha256 and size of the file at *path*."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return Sha256(digest.hexdigest()), size


class FileBlobStore:
    """Blobs in a local folder, two levels of fan-out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "tmp").mkdir(exist_ok=True)

    def _path(self, digest: Sha256) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise BlobNotFoundError(f"{digest!r} is not a sha256 digest", digest=digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def _write(self, source: BinaryIO, expected: Sha256 | None) -> tuple[Sha256, int]:
        try:
            return self._write_atomically(source, expected)
        except OSError as exc:
            # A full disk or a refused folder: the same StoreError as every other backend's.
            raise StoreError(
                f"blob store {self.root}: a blob could not be written ({exc}); check the "
                "free space and the permissions of that folder, then try again",
                errno=exc.errno,
            ) from exc

    def _write_atomically(self, source: BinaryIO, expected: Sha256 | None) -> tuple[Sha256, int]:
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", prefix="blob-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = Sha256(digest.hexdigest())
            if expected is not None and actual != expected:
                raise HashMismatchError(
                    f"blob has sha256 {actual}, expected {expected}; nothing was stored",
                    expected=expected,
                    actual=actual,
                )
            final = self._path(actual)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            return actual, size
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, path: Path, expected: Sha256 | None = None) -> tuple[Sha256, int]:
        with path.open("rb") as handle:
            return self._write(handle, expected)

    def put_bytes(self, data: bytes) -> Sha256:
        import io

        return self._write(io.BytesIO(data), None)[0]

    def exists(self, digest: Sha256) -> bool:
        try:
            return self._path(digest).is_file()
        except BlobNotFoundError:
            return False

    def size(self, digest: Sha256) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"blob {digest} is missing", digest=digest) from exc

    def read_bytes(self, digest: Sha256, limit: int | None = None) -> bytes:
        path = self._path(digest)
        try:
            if limit is None:
                return path.read_bytes()
            return read_file(path, limit, what=f"blob {digest}")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"blob {digest} is missing", digest=digest) from exc

    def local_path(self, digest: Sha256) -> Path | None:
        path = self._path(digest)
        return path if path.is_file() else None

    def scratch_dir(self) -> Path:
        return self.root / "tmp"

    def iter_range(self, digest: Sha256, start: int, end: int) -> Iterator[bytes]:
        try:
            handle = self._path(digest).open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"blob {digest} is missing", digest=digest) from exc
        with handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = handle.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def delete(self, digest: Sha256) -> None:
        self._path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[Sha256]:
        for path in self.root.glob("??/??/*"):
            if len(path.name) == 64:
                yield Sha256(path.name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_blob_store(url: str) -> BlobStore:
    """The blob store for *url*: ``file:///path`` (or a bare path) or ``s3://bucket/prefix``."""
    if url.startswith("file://"):
        return FileBlobStore(Path(url[len("file://") :]))
    if "://" not in url:
        return FileBlobStore(Path(url))
    if url.startswith("s3://"):
        from fromsource.store.s3 import open_s3_store

        return open_s3_store(url)
    raise ConfigError(f"unsupported blob store URL {url!r}; use file:///path or s3://bucket/prefix")
