"""UpstreamProxy: pages kept for their TTL (failures briefly), bounded; files fetched once,
checked against the listed sha256 and recorded in python-upstream.

The upstream is an httpx transport the index client is built to take (a
function answering requests), so the clock, failures and lies are the test's.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fromsource.config import UPSTREAM_REPOSITORY
from fromsource.errors import HashMismatchError
from fromsource.policy import Policy
from fromsource.proxy.offers import offers
from fromsource.proxy.source import ERROR_TTL, UpstreamProxy
from fromsource.store.blobs import FileBlobStore
from fromsource.store.catalog import project_files
from fromsource.store.db import open_database

BODY = b"PK\x03\x04 a wheel's bytes"
WHEN = datetime.now(UTC) - timedelta(days=30)


class Upstream:
    """Answers pages and files; counts requests; can fail pages or lie about digests."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.fail_pages = False
        self.lie = False
        self.slow = 0.0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self.lock:
            self.seen[path] += 1
        if path.startswith("/simple/"):
            project = path.split("/")[2]
            if self.fail_pages:
                return httpx.Response(500, text="down")
            if project != "demo":
                return httpx.Response(404, text="no")
            digest = "0" * 64 if self.lie else hashlib.sha256(BODY).hexdigest()
            page = {
                "meta": {"api-version": "1.1"},
                "files": [
                    {
                        "filename": "demo-1.0-py3-none-any.whl",
                        "url": "../../files/demo-1.0-py3-none-any.whl",
                        "hashes": {"sha256": digest},
                        "upload-time": WHEN.isoformat(),
                        "size": len(BODY),
                    }
                ],
            }
            return httpx.Response(
                200,
                content=json.dumps(page).encode(),
                headers={"content-type": "application/vnd.pypi.simple.v1+json"},
            )
        if path == "/files/demo-1.0-py3-none-any.whl":
            time.sleep(self.slow)
            return httpx.Response(200, content=BODY)
        return httpx.Response(404)


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


def _proxy(tmp_path: Path, upstream: Upstream, clock: list[float], **kw: object) -> UpstreamProxy:
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    return UpstreamProxy(
        db,
        FileBlobStore(tmp_path / "blobs"),
        "http://upstream.invalid/simple/",
        clock=lambda: clock[0],
        transport=httpx.MockTransport(upstream),
        backoff=0,
        **kw,  # type: ignore[arg-type]
    )


def test_pages_are_kept_for_their_ttl_failures_briefly_and_at_most_max_pages(
    tmp_path: Path, upstream: Upstream
) -> None:
    clock = [0.0]
    proxy = _proxy(tmp_path, upstream, clock, page_ttl=100, max_pages=2)
    first = proxy.page("Demo")
    assert first.files is not None and len(first.files) == 1
    assert proxy.page("demo") is first
    clock[0] = 100.0
    again = proxy.page("demo")
    assert again is not first and again.serial > first.serial
    assert upstream.seen["/simple/demo/"] == 2

    missing = proxy.page("absent")
    assert (missing.files, missing.error) == (None, None)
    assert proxy.page("absent") is missing  # a 404 is kept too

    upstream.fail_pages = True
    clock[0] = 250.0
    failed = proxy.page("demo")
    assert failed.error is not None and "500" in failed.error
    assert upstream.seen["/simple/demo/"] == 4  # tried twice, then given up for a while
    assert proxy.page("demo") is failed
    clock[0] += ERROR_TTL
    upstream.fail_pages = False
    assert proxy.page("demo").files is not None

    proxy.page("other")  # a third page: the least recently used one goes
    assert proxy.peek("absent") is None and proxy.peek("demo") is not None
    assert proxy.counts["page_errors"] == 1


def test_a_file_is_fetched_once_checked_stored_and_recorded(
    tmp_path: Path, upstream: Upstream
) -> None:
    clock = [0.0]
    proxy = _proxy(tmp_path, upstream, clock)
    (offer,) = offers(
        "demo", proxy.page("demo").files or (), policy=Policy(), now=datetime.now(UTC)
    )
    upstream.slow = 0.2
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(proxy.fetch(offer))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert upstream.seen["/files/demo-1.0-py3-none-any.whl"] == 1
    assert {r.sha256 for r in results} == {hashlib.sha256(BODY).hexdigest()}
    info = results[0]
    assert (info.repo, info.version, info.kind, info.size) == (
        UPSTREAM_REPOSITORY,
        "1.0",
        "wheel",
        len(BODY),
    )
    assert all(r.upload_time.replace(tzinfo=UTC) == WHEN for r in results)
    assert proxy.blobs.read_bytes(info.sha256) == BODY
    assert [f.filename for f in project_files(proxy.db, UPSTREAM_REPOSITORY, "demo")] == [
        "demo-1.0-py3-none-any.whl"
    ]
    assert proxy.counts["files_fetched"] == 1 and proxy.counts["bytes_fetched"] == len(BODY)


def test_a_file_whose_bytes_are_not_the_listed_ones_is_neither_stored_nor_recorded(
    tmp_path: Path, upstream: Upstream
) -> None:
    clock = [0.0]
    upstream.lie = True
    proxy = _proxy(tmp_path, upstream, clock)
    (offer,) = offers(
        "demo", proxy.page("demo").files or (), policy=Policy(), now=datetime.now(UTC)
    )
    with pytest.raises(HashMismatchError) as caught:
        proxy.fetch(offer)
    assert "not stored or served" in caught.value.message
    assert proxy.cached(offer.filename) is None
    assert list(proxy.blobs.digests()) == []
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []  # no download left behind
