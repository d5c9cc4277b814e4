"""The S3 blob store against moto in server mode (real HTTP, real boto3).

No S3 server package is reachable here, so the object store is moto's S3
running as a server on 127.0.0.1; the store talks to it exactly as to any
S3-compatible endpoint (FROMSOURCE_S3_ENDPOINT_URL).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fromsource.dist.names import Sha256
from fromsource.errors import BlobNotFoundError, ConfigError, HashMismatchError, OversizedError
from fromsource.store.blobs import open_blob_store
from fromsource.store.s3 import S3BlobStore, object_key, parse_s3_url

pytest.importorskip("moto", reason="moto[server] is not installed (the S3 stand-in)")
pytest.importorskip("boto3", reason="boto3 is not installed")

from tests.fleet.services import Moto, start_moto


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(moto_server: Moto, monkeypatch: pytest.MonkeyPatch) -> S3BlobStore:
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    url = moto_server.bucket()
    opened = open_blob_store(url)
    assert isinstance(opened, S3BlobStore)
    return opened


def test_url_parsing_and_keys() -> None:
    assert parse_s3_url("s3://bucket/some/prefix/") == ("bucket", "some/prefix", {})
    assert parse_s3_url("s3://bucket?region=eu-west-1")[2] == {"region": "eu-west-1"}
    with pytest.raises(ConfigError, match="name the bucket"):
        parse_s3_url("s3:///prefix")
    digest = Sha256("ab" * 32)
    assert object_key("p", digest) == f"p/sha256/ab/ab/{digest}"
    assert object_key("", digest) == f"sha256/ab/ab/{digest}"


def test_put_read_range_and_list(store: S3BlobStore, tmp_path: Path) -> None:
    data = os.urandom(9 << 20)  # past the multipart threshold and one ranged GET
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    expected = Sha256(hashlib.sha256(data).hexdigest())
    digest, size = store.put_file(path, expected=expected)
    assert (digest, size) == (expected, len(data))
    assert store.exists(digest) and store.size(digest) == len(data)
    assert store.local_path(digest) is None
    written = store.modified(digest)
    assert written is not None and abs(written - time.time()) < 300
    assert b"".join(store.iter_range(digest, 0, size - 1)) == data
    start, end = (8 << 20) - 5, (8 << 20) + 5  # across the 8 MiB request boundary
    assert b"".join(store.iter_range(digest, start, end)) == data[start : end + 1]
    small = store.put_bytes(b"metadata")
    assert store.read_bytes(small) == b"metadata"
    assert store.read_bytes(small) == b"metadata"  # from the in-memory cache
    assert set(store.digests()) == {digest, small}
    assert store.put_file(path) == (digest, size)  # already there: no second upload
    store.delete(small)
    assert not store.exists(small)
    with pytest.raises(BlobNotFoundError):
        store.read_bytes(small)
    with pytest.raises(BlobNotFoundError):
        store.size(small)


def test_a_read_with_a_limit_refuses_a_large_object_before_its_body(
    store: S3BlobStore, tmp_path: Path
) -> None:
    # The server reads small blobs whole (and caches them) and streams the rest: the
    # limit must refuse from the length in the response headers, never by reading.
    data = b"m" * (2 << 20)
    digest = store.put_bytes(data)
    with pytest.raises(OversizedError) as info:
        store.read_bytes(digest, limit=1 << 20)
    assert info.value.facts["size"] == len(data)
    assert info.value.facts["category"] == "oversized-output"
    assert digest not in store._cache  # nothing of it was kept
    assert store.read_bytes(digest, limit=len(data)) == data
    small = store.put_bytes(b"core metadata")
    assert store.read_bytes(small, limit=1 << 20) == b"core metadata"


def test_hash_mismatch_stores_nothing(store: S3BlobStore, tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    with pytest.raises(HashMismatchError):
        store.put_file(path, expected=Sha256("0" * 64))
    assert list(store.digests()) == []
    assert not store.exists(Sha256("not-a-digest"))


def test_presigned_urls_work_without_credentials(store: S3BlobStore) -> None:
    digest = store.put_bytes(b"wheel bytes")
    got = httpx.get(store.presigned_url(digest, filename="demo-1.0-py3-none-any.whl"))
    assert got.status_code == 200 and got.content == b"wheel bytes"
    assert "demo-1.0-py3-none-any.whl" in got.headers.get("content-disposition", "")
    head = httpx.head(store.presigned_url(digest, method="HEAD"))
    assert head.status_code == 200 and head.headers["content-length"] == "11"


def test_missing_bucket_fails_at_open(moto_server: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in moto_server.env().items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="bucket is not reachable"):
        open_blob_store("s3://no-such-bucket/blobs")
    with pytest.raises(ConfigError, match="s3://bucket/prefix"):
        open_blob_store("gs://elsewhere/blobs")
