"""Blob responses of the simple API are streamed: no ``.metadata`` or SBOM is read whole.

Issue 18: the server read a 268 MB ``.metadata`` blob whole on every request.
The store here refuses any whole read larger than what is sent from memory,
so a route that reads a blob whole fails; it runs the real app in-process,
once over a local folder (sendfile path) and once without a local path (the
object-storage path: ranged reads).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from fromsource.config import Settings
from fromsource.dist.names import Sha256
from fromsource.index.simple import SimpleApp
from fromsource.index.state import IndexState
from fromsource.store.blobs import FileBlobStore
from fromsource.store.db import Database, open_database
from fromsource.store.publish import publish_file
from tests.factories import make_wheel

_SENT_FROM_MEMORY = 1 << 20


class WholeReadsRefused:
    """A BlobStore over a folder that fails the test when a large blob is read whole.

    With *local* false it also hides the files, as object storage does.
    """

    def __init__(self, inner: FileBlobStore, *, local: bool) -> None:
        self.inner = inner
        self.local = local

    def put_file(self, path: Path, expected: Sha256 | None = None) -> tuple[Sha256, int]:
        return self.inner.put_file(path, expected)

    def put_bytes(self, data: bytes) -> Sha256:
        return self.inner.put_bytes(data)

    def exists(self, digest: Sha256) -> bool:
        return self.inner.exists(digest)

    def size(self, digest: Sha256) -> int:
        return self.inner.size(digest)

    def read_bytes(self, digest: Sha256, limit: int | None = None) -> bytes:
        assert limit is not None and limit <= _SENT_FROM_MEMORY, "a blob was read whole to answer"
        return self.inner.read_bytes(digest, limit)

    def local_path(self, digest: Sha256) -> Path | None:
        return self.inner.local_path(digest) if self.local else None

    def scratch_dir(self) -> Path | None:
        return self.inner.scratch_dir() if self.local else None

    def iter_range(self, digest: Sha256, start: int, end: int) -> Iterator[bytes]:
        return self.inner.iter_range(digest, start, end)

    def delete(self, digest: Sha256) -> None:
        self.inner.delete(digest)

    def digests(self) -> Iterator[Sha256]:
        return self.inner.digests()


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Database, FileBlobStore, bytes]:
    """A store with a wheel whose METADATA and SBOM are 3 MiB each, and a small wheel."""
    base = tmp_path_factory.mktemp("streamed")
    db = open_database(f"sqlite:///{base / 'db.sqlite'}")
    blobs = FileBlobStore(base / "blobs")
    big = make_wheel(base / "wheels", "big-meta", "1.0", requires_dist=["y" * (3 << 20)])
    sbom = b'{"bomFormat": "CycloneDX", "pad": "' + b"z" * (3 << 20) + b'"}'
    publish_file(db, blobs, big, "python", sbom=sbom)
    publish_file(db, blobs, make_wheel(base / "wheels", "small-meta", "1.0"), "python", sbom=b"{}")
    return db, blobs, sbom


def _client(published: tuple[Database, FileBlobStore, bytes], local: bool) -> httpx.AsyncClient:
    db, blobs, _sbom = published
    settings = Settings(data_dir=Path(str(blobs.root.parent)), anonymous_repos=["python"])
    state = IndexState(settings, db, WholeReadsRefused(blobs, local=local))
    transport = httpx.ASGITransport(app=SimpleApp(state, _not_found))
    return httpx.AsyncClient(transport=transport, base_url="http://index.test")


@pytest.mark.parametrize("local", [True, False], ids=["folder", "object-store"])
def test_metadata_and_sbom_are_streamed_with_range_head_and_etag(
    published: tuple[Database, FileBlobStore, bytes], local: bool
) -> None:
    _db, _blobs, sbom = published
    base = "/python/files/big-meta/1.0/big_meta-1.0-py3-none-any.whl"

    async def scenario() -> None:
        async with _client(published, local) as client:
            whole = await client.get(base + ".metadata")
            assert whole.status_code == 200, whole.text[:200]
            assert len(whole.content) > 3 << 20 and whole.content.startswith(b"Metadata-Version")
            digest = hashlib.sha256(whole.content).hexdigest()
            assert whole.headers["etag"] == f'"{digest}"'
            assert whole.headers["content-length"] == str(len(whole.content))
            assert "immutable" in whole.headers["cache-control"]
            part = await client.get(base + ".metadata", headers={"Range": "bytes=0-15"})
            assert part.status_code == 206 and part.content == whole.content[:16]
            end = await client.get(base + ".metadata", headers={"Range": "bytes=-5"})
            assert end.status_code == 206 and end.content == whole.content[-5:]
            head = await client.head(base + ".metadata")
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == str(len(whole.content))
            document = await client.get(
                "/python/integrity/big-meta/1.0/big_meta-1.0-py3-none-any.whl/sbom"
            )
            assert document.status_code == 200 and document.content == sbom
            assert document.headers["content-type"] == "application/vnd.cyclonedx+json"
            small = "/python/files/small-meta/1.0/small_meta-1.0-py3-none-any.whl"
            inline = await client.get(small + ".metadata")
            assert inline.status_code == 200 and b"Name: small-meta" in inline.content
            assert (
                await client.get(small + ".metadata", headers={"Range": "bytes=0-7"})
            ).content == (b"Metadata")

    asyncio.run(scenario())
