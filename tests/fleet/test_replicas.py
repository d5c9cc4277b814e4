"""Stateless replicas: two ``serve`` processes on one PostgreSQL and one S3 bucket.

Each replica caches rendered pages and tokens in memory and drops them when
the database change counter moves; it polls the counter at most every
``poll_interval`` seconds (here 0.5 s, the default).  So a publish or a
token revocation through one replica is served by the other within one
poll interval, with no broker involved.  S3 is moto in server mode over
HTTP (no S3 server package is reachable here).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.conftest import IndexServer, stop_server
from tests.factories import make_wheel
from tests.fleet.conftest import FLEET, Backend, accepted, make_backend, serve, upload

pytestmark = FLEET

JSON = "application/vnd.pypi.simple.v1+json"
POLL = 0.5
SLACK = 0.75
"""Time allowed beyond one poll interval (request round trips on a loaded 2-core machine)."""


@dataclass
class Pair:
    a: IndexServer
    b: IndexServer
    backend: Backend
    admin: tuple[str, str]
    reader: tuple[str, str]


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("replicas")
    backend = make_backend("postgres-s3", request, base)
    a = serve(backend, base, "replica-a", FROMSOURCE_POLL_INTERVAL=str(POLL))
    try:
        b = serve(backend, base, "replica-b", FROMSOURCE_POLL_INTERVAL=str(POLL))
        try:
            admin = backend.token(admin=True)
            reader = backend.token("python")
            accepted(a, admin)
            upload(a, admin, make_wheel(base / "wheels", "first-pkg", "1.0"))
            for server in (a, b):  # tokens made behind the replicas' backs: one poll
                _within(POLL + SLACK, partial(_serves, server, "first-pkg", reader))
            yield Pair(a, b, backend, admin, reader)
        finally:
            stop_server(b)
    finally:
        stop_server(a)


def _within(deadline: float, check: Callable[[], bool]) -> float:
    """Seconds until *check* held (polled every 20 ms), or fail after *deadline* seconds."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > deadline:
            pytest.fail(f"not seen within {deadline} s")
        time.sleep(0.02)


def _page(server: IndexServer, project: str, auth: tuple[str, str]) -> httpx.Response:
    return httpx.get(f"{server.url}python/simple/{project}/", auth=auth, headers={"Accept": JSON})


def _serves(server: IndexServer, project: str, auth: tuple[str, str]) -> bool:
    return _page(server, project, auth).status_code == 200


def test_publish_through_one_other_serves_it_within_the_poll_interval(
    pair: Pair, tmp_path: Path
) -> None:
    assert _page(pair.b, "fresh-pkg", pair.reader).status_code == 404  # now cached as missing
    wheel = make_wheel(tmp_path, "fresh-pkg", "2.0")
    upload(pair.a, pair.admin, wheel)
    assert _page(pair.a, "fresh-pkg", pair.reader).status_code == 200  # the publisher at once
    seconds = _within(POLL + SLACK, lambda: _page(pair.b, "fresh-pkg", pair.reader).status_code == 200)
    assert seconds <= POLL + SLACK
    (entry,) = _page(pair.b, "fresh-pkg", pair.reader).json()["files"]
    url = httpx.URL(pair.b.url + "python/simple/fresh-pkg/").join(entry["url"])
    body = httpx.get(url, auth=pair.reader).content
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_both_replicas_render_the_same_page_and_etag(pair: Pair) -> None:
    _within(POLL + SLACK, lambda: _page(pair.b, "first-pkg", pair.reader).status_code == 200)
    a, b = _page(pair.a, "first-pkg", pair.reader), _page(pair.b, "first-pkg", pair.reader)
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    again = httpx.get(
        f"{pair.b.url}python/simple/first-pkg/",
        auth=pair.reader,
        headers={"Accept": JSON, "If-None-Match": a.headers["etag"]},
    )
    assert again.status_code == 304


def test_revoked_token_stops_on_both(pair: Pair) -> None:
    token = pair.backend.token("python")
    for server in (pair.a, pair.b):
        _within(POLL + SLACK, partial(_serves, server, "first-pkg", token))
    revoked = httpx.delete(f"{pair.a.url}api/tokens/{token[0].replace('/', '_')}", auth=pair.admin)
    assert revoked.status_code == 200
    assert _page(pair.a, "first-pkg", token).status_code == 401
    _within(POLL + SLACK, lambda: _page(pair.b, "first-pkg", token).status_code == 401)
    assert _page(pair.b, "first-pkg", pair.reader).status_code == 200
