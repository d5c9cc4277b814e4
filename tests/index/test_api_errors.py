"""The management API answers each error with the status of its type (index/statuses.py).

The API runs in process over a real database and a real blob folder, so a
blob store that fails (tests/blobstores.py) can be handed to it as the
BlobStore Protocol, which a server started from settings cannot take.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fromsource.config import Settings
from fromsource.index.api import make_api
from fromsource.index.state import IndexState
from fromsource.store.blobs import BlobStore, FileBlobStore
from fromsource.store.db import Database, open_database
from fromsource.store.tokens import create_token
from tests.blobstores import FailingBlobs
from tests.factories import make_wheel


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'fromsource.db'}")
    try:
        yield database
    finally:
        database.dispose()


def _call(
    db: Database, blobs: BlobStore, method: str, path: str, settings: Settings, **kwargs: Any
) -> httpx.Response:
    """One admin request to the API over *db* and *blobs*, in process."""
    admin = create_token(db, org="ops", repos=[], admin=True)
    header = "Basic " + base64.b64encode(f"{admin.info.id}:{admin.secret}".encode()).decode()
    app = make_api(IndexState(settings, db, blobs))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://index.test") as client:
            return await client.request(method, path, headers={"Authorization": header}, **kwargs)

    return asyncio.run(go())


def _upload(wheel: Path) -> dict[str, Any]:
    return {"files": {"file": (wheel.name, wheel.read_bytes())}}


def test_the_same_filename_with_other_bytes_is_409(db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth_failures_per_minute=0)
    blobs = FileBlobStore(tmp_path / "blobs")
    first = make_wheel(tmp_path / "a", "demo-pkg", "1.0")
    other = make_wheel(tmp_path / "b", "demo-pkg", "1.0", files={"demo_pkg/__init__.py": "x = 2\n"})
    assert first.name == other.name and first.read_bytes() != other.read_bytes()
    url = "/api/repos/python/files"

    created = _call(db, blobs, "POST", url, settings, **_upload(first))
    assert created.status_code == 201, created.text
    again = _call(db, blobs, "POST", url, settings, **_upload(first))
    assert again.status_code == 201 and again.json()["already_present"] is True  # idempotent

    refused = _call(db, blobs, "POST", url, settings, **_upload(other))
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert detail["error"] == "ImmutableFileError" and detail["filename"] == first.name
    assert "already published in python" in detail["message"]
    listed = _call(db, blobs, "GET", "/api/repos/python/projects/demo-pkg", settings)
    assert [f["sha256"] for f in listed.json()] == [created.json()["sha256"]]


@pytest.mark.parametrize("fail_at", [1, 2], ids=["wheel-put-fails", "metadata-put-fails"])
def test_a_failing_blob_store_is_503_with_its_message(
    db: Database, tmp_path: Path, fail_at: int
) -> None:
    settings = Settings(data_dir=tmp_path, auth_failures_per_minute=0)
    real = FileBlobStore(tmp_path / "blobs")
    wheel = make_wheel(tmp_path / "wheels", "demo-pkg", "1.0")

    failed = _call(
        db,
        FailingBlobs(real, fail_at),
        "POST",
        "/api/repos/python/files",
        settings,
        **_upload(wheel),
    )
    assert failed.status_code == 503, failed.text
    detail = failed.json()["detail"]
    assert detail["error"] == "PublishStorageError"
    assert detail["message"].startswith(f"{wheel.name} was not published in python: ")
    assert "no space left on device" in detail["message"]
    assert _call(db, real, "GET", "/api/repos/python/projects", settings).json() == []

    # The same upload succeeds once the store works: a 503 is worth a retry.
    retried = _call(db, real, "POST", "/api/repos/python/files", settings, **_upload(wheel))
    assert retried.status_code == 201 and retried.json()["already_present"] is False


def test_over_the_metadata_cap_is_413(db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth_failures_per_minute=0, max_metadata_bytes=1000)
    wheel = make_wheel(tmp_path / "wheels", "big-meta", "1.0", requires_dist=["y" * 2000])

    refused = _call(
        db,
        FileBlobStore(tmp_path / "blobs"),
        "POST",
        "/api/repos/python/files",
        settings,
        **_upload(wheel),
    )
    assert refused.status_code == 413, refused.text
    assert refused.json()["detail"]["error"] == "OversizedError"


def test_unknown_files_and_tokens_are_404(db: Database, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auth_failures_per_minute=0)
    blobs = FileBlobStore(tmp_path / "blobs")

    yank = _call(db, blobs, "POST", "/api/repos/python/files/nothing-1.0.tar.gz/yank", settings)
    assert yank.status_code == 404 and yank.json()["detail"]["error"] == "NotPublishedError"
    revoke = _call(db, blobs, "DELETE", "/api/tokens/ops/nobody", settings)
    assert revoke.status_code == 404 and revoke.json()["detail"]["error"] == "UnknownTokenError"
    bad = _call(db, blobs, "POST", "/api/tokens", settings, json={"org": "x", "expires": "5y"})
    assert bad.status_code == 400 and bad.json()["detail"]["error"] == "AuthError"
