"""Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph, R2, ...), with boto3.

``s3://bucket/prefix`` names a bucket and a key prefix; a blob lives at
``<prefix>/sha256/ab/cd/abcd…``.  Endpoint and credentials come from the
standard AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, profiles, instance roles) plus
``FROMSOURCE_S3_ENDPOINT_URL`` for a non-AWS endpoint (which switches to
path-style addressing unless ``FROMSOURCE_S3_ADDRESSING_STYLE`` says
otherwise).

Atomicity: the digest of a file is computed *before* the upload, so the
object is written straight to its final content-addressed key, and S3 makes
an object visible only once its PUT (or its multipart upload) completes: a
reader sees the whole blob or nothing.  The database row that points at a
blob is committed only after the upload returned (store/publish.py), so the
index never lists a file whose bytes are incomplete.

Small blobs (core metadata, provenance, SBOMs) are read on every install;
they are immutable, so :meth:`S3BlobStore.read_bytes` keeps them in a
bounded in-memory LRU cache.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fromsource.bounded import read_stream
from fromsource.dist.names import Sha256
from fromsource.errors import (
    BlobNotFoundError,
    ConfigError,
    HashMismatchError,
    OversizedError,
    StoreError,
)
from fromsource.store.blobs import sha256_file

__all__ = ["S3BlobStore", "object_key", "open_s3_store", "parse_s3_url"]

_RANGE_CHUNK = 8 << 20
"""Bytes per ranged GET when streaming a blob."""
_READ_CHUNK = 1 << 20
_CACHE_ITEM_LIMIT = 256 << 10
_CACHE_TOTAL_LIMIT = 64 << 20
PRESIGN_SECONDS = 900
"""Lifetime of a presigned download URL: long enough for a slow client to start."""


def parse_s3_url(url: str) -> tuple[str, str, dict[str, str]]:
    """Split ``s3://bucket/prefix?option=value`` into bucket, prefix and options.

    Raises ConfigError when the URL has no bucket.  Options: ``endpoint_url``,
    ``region``, ``addressing_style`` (override the environment).
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(
            f"blob store URL {url!r} is not s3://bucket/prefix; name the bucket after s3://"
        )
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return parts.netloc, parts.path.strip("/"), options


def object_key(prefix: str, digest: Sha256) -> str:
    """The object key of *digest* under *prefix* (two levels of fan-out, like the file store)."""
    tail = f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    return f"{prefix}/{tail}" if prefix else tail


def _check_digest(digest: str) -> Sha256:
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise BlobNotFoundError(f"{digest!r} is not a sha256 digest", digest=digest)
    return Sha256(digest)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """A :class:`~fromsource.store.blobs.BlobStore` over one bucket and key prefix.

    *client* is a boto3 S3 client (``Any``: boto3 ships no types); the store
    never creates the bucket.  Every boto3/botocore failure surfaces as
    StoreError (BlobNotFoundError for a missing object) with the bucket and
    key in the message.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "", *, where: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.where = where or f"s3://{bucket}/{self.prefix}"
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._presigned: dict[tuple[str, str, str, int], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _key(self, digest: str) -> str:
        return object_key(self.prefix, _check_digest(digest))

    def _fail(self, exc: Exception, action: str, digest: str) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        code = _error_code(exc)
        if code in ("404", "NoSuchKey", "NotFound"):
            return BlobNotFoundError(
                f"blob {digest} is missing from {self.where}; run fromsource fsck",
                digest=digest,
            )
        return StoreError(
            f"object store {self.where}: {action} {digest} failed "
            f"({code or type(exc).__name__}); check the endpoint, the credentials and "
            "the bucket policy",
            digest=digest,
            code=code,
        )

    # -- writing ---------------------------------------------------------------

    def put_file(self, path: Path, expected: Sha256 | None = None) -> tuple[Sha256, int]:
        """Upload the file at *path* under its digest (skipped when already stored).

        Raises HashMismatchError (nothing uploaded) when *expected* differs.
        """
        digest, size = sha256_file(path)
        if expected is not None and digest != expected:
            raise HashMismatchError(
                f"{path.name} has sha256 {digest}, expected {expected}; nothing was stored",
                expected=expected,
                actual=digest,
            )
        if not self.exists(digest):
            try:
                # upload_file switches to a multipart upload for large files; the
                # object appears only when CompleteMultipartUpload succeeds.
                self.client.upload_file(
                    str(path),
                    self.bucket,
                    self._key(digest),
                    ExtraArgs={"ContentType": "application/octet-stream"},
                )
            except Exception as exc:
                raise self._fail(exc, "upload of", digest) from exc
        return digest, size

    def put_bytes(self, data: bytes) -> Sha256:
        """Upload *data* under its digest (skipped when already stored)."""
        digest = Sha256(hashlib.sha256(data).hexdigest())
        if not self.exists(digest):
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(digest),
                    Body=data,
                    ContentType="application/octet-stream",
                )
            except Exception as exc:
                raise self._fail(exc, "upload of", digest) from exc
        return digest

    # -- reading ---------------------------------------------------------------

    def _head(self, digest: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(
                Bucket=self.bucket, Key=self._key(digest)
            )
        except Exception as exc:
            failure = self._fail(exc, "lookup of", digest)
            if isinstance(failure, BlobNotFoundError):
                return None
            raise failure from exc
        return head

    def exists(self, digest: Sha256) -> bool:
        """Whether the object for *digest* exists (a HEAD request)."""
        try:
            return digest in self._cache or self._head(digest) is not None
        except BlobNotFoundError:  # not a digest at all
            return False

    def size(self, digest: Sha256) -> int:
        """The object's Content-Length; BlobNotFoundError when absent."""
        head = self._head(digest)
        if head is None:
            raise BlobNotFoundError(f"blob {digest} is missing from {self.where}", digest=digest)
        return int(head["ContentLength"])

    def read_bytes(self, digest: Sha256, limit: int | None = None) -> bytes:
        """The whole object (small ones are cached in memory: they never change).

        With *limit*, a larger object raises OversizedError before its body
        is read (the length comes with the response headers).
        """
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None:
                self._cache.move_to_end(digest)
                return cached
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(digest))
            body = response["Body"]
        except Exception as exc:
            raise self._fail(exc, "download of", digest) from exc
        what = f"blob {digest} in {self.where}"
        try:
            size = int(response.get("ContentLength", 0))
            if limit is not None and size > limit:
                raise OversizedError(
                    f"{what} is {size} bytes, over the {limit} bytes read whole; stream it",
                    what=what,
                    size=size,
                    limit=limit,
                    category="oversized-output",
                )
            data: bytes = body.read() if limit is None else read_stream(body, limit, what=what)
        except OversizedError:
            raise
        except Exception as exc:
            raise self._fail(exc, "download of", digest) from exc
        finally:
            body.close()
        if len(data) <= _CACHE_ITEM_LIMIT:
            self._remember(digest, data)
        return data

    def _remember(self, digest: str, data: bytes) -> None:
        with self._lock:
            if digest in self._cache:
                return
            self._cache[digest] = data
            self._cache_bytes += len(data)
            while self._cache_bytes > _CACHE_TOTAL_LIMIT:
                _, evicted = self._cache.popitem(last=False)
                self._cache_bytes -= len(evicted)

    def modified(self, digest: Sha256) -> float | None:
        """When the object was written (epoch seconds; fsck's grace period), None if absent."""
        head = self._head(digest)
        moment = head.get("LastModified") if head else None
        return moment.timestamp() if moment is not None else None

    def local_path(self, digest: Sha256) -> Path | None:
        """Always None: object storage has no local file to sendfile from."""
        return None

    def scratch_dir(self) -> Path | None:
        """Always None: object storage has no local folder."""
        return None

    def iter_range(self, digest: Sha256, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive), fetched with ranged GETs of 8 MiB."""
        position = start
        while position <= end:
            last = min(end, position + _RANGE_CHUNK - 1)
            try:
                response = self.client.get_object(
                    Bucket=self.bucket, Key=self._key(digest), Range=f"bytes={position}-{last}"
                )
                body = response["Body"]
                chunks = body.iter_chunks(_READ_CHUNK)
            except Exception as exc:
                raise self._fail(exc, "download of", digest) from exc
            received = 0
            try:
                for chunk in chunks:
                    received += len(chunk)
                    yield chunk
            finally:
                body.close()
            if received == 0:
                return
            position += received

    def presigned_url(
        self,
        digest: Sha256,
        *,
        method: str = "GET",
        filename: str | None = None,
        expires: int = PRESIGN_SECONDS,
    ) -> str:
        """A URL that lets anyone GET (or HEAD) the object for *expires* seconds.

        With *filename*, S3 answers with ``Content-Disposition: attachment;
        filename=…`` so a client that names files after the response still
        gets the wheel's name.  The signature covers the method, which is why
        a HEAD on the index is redirected to a HEAD-signed URL.  A URL is
        reused while two thirds of its lifetime remain (signing is slow).
        """
        operation = "head_object" if method.upper() == "HEAD" else "get_object"
        wanted = (digest, operation, filename or "", expires)
        now = time.monotonic()
        with self._lock:
            cached = self._presigned.get(wanted)
            # Signing costs more than serving a cached page; a URL is handed out
            # again while at least two thirds of its lifetime remain.
            if cached is not None and cached[1] - now > expires * 2 / 3:
                return cached[0]
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._key(digest)}
        if filename and operation == "get_object":
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        try:
            url: str = self.client.generate_presigned_url(
                operation, Params=params, ExpiresIn=expires
            )
        except Exception as exc:
            raise self._fail(exc, "presigning", digest) from exc
        with self._lock:
            if len(self._presigned) > 10_000:
                self._presigned.clear()
            self._presigned[wanted] = (url, now + expires)
        return url

    # -- maintenance -----------------------------------------------------------

    def delete(self, digest: Sha256) -> None:
        """Remove the object (fsck, for orphans only)."""
        with self._lock:
            data = self._cache.pop(digest, None)
            if data is not None:
                self._cache_bytes -= len(data)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(digest))
        except Exception as exc:
            raise self._fail(exc, "deletion of", digest) from exc

    def digests(self) -> Iterator[Sha256]:
        """Every stored digest (a paginated listing of ``<prefix>/sha256/``)."""
        root = object_key(self.prefix, Sha256("0" * 64)).rsplit("/", 3)[0] + "/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"]).rsplit("/", 1)[-1]
                    if len(name) == 64:
                        yield Sha256(name)
        except Exception as exc:
            raise StoreError(
                f"object store {self.where}: listing failed ({_error_code(exc) or exc}); "
                "check the credentials (ListBucket permission)"
            ) from exc


def open_s3_store(url: str) -> S3BlobStore:
    """The S3 blob store for ``s3://bucket/prefix`` (endpoint from the environment).

    Checks that the bucket is reachable, so a misconfiguration fails at start
    with ConfigError rather than on the first download.
    """
    bucket, prefix, options = parse_s3_url(url)
    try:
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise ConfigError("s3:// blob stores need boto3: pip install boto3") from exc
    endpoint = options.get("endpoint_url") or os.environ.get("FROMSOURCE_S3_ENDPOINT_URL")
    region = (
        options.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    style = options.get("addressing_style") or os.environ.get("FROMSOURCE_S3_ADDRESSING_STYLE")
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": style or ("path" if endpoint else "auto")},
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=32,
    )
    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint or None, region_name=region, config=config
    )
    where = f"s3://{bucket}/{prefix}" + (f" at {endpoint}" if endpoint else "")
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        code = _error_code(exc) or type(exc).__name__
        raise ConfigError(
            f"object store {where}: the bucket is not reachable ({code}); create it, check "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and FROMSOURCE_S3_ENDPOINT_URL",
            bucket=bucket,
        ) from exc
    return S3BlobStore(client, bucket, prefix, where=where)
