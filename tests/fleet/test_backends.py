"""The index over real HTTP on both backends: sqlite + files, and PostgreSQL + S3.

Publish, fetch (pages, files, ranges, HEAD, metadata) and auth (401, 403,
revocation) must behave the same whichever backend holds the data.  S3 is
moto in server mode over HTTP (no S3 server package is reachable here);
downloads from it are streamed by the index (the redirect mode has its own
tests in test_redirect.py).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import IndexServer, stop_server
from tests.factories import make_wheel
from tests.fleet.conftest import FLEET, Backend, accepted, fleet_test, make_backend, serve, upload

JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Served:
    server: IndexServer
    backend: Backend
    admin: tuple[str, str]
    reader: tuple[str, str]


@pytest.fixture(scope="module", params=["sqlite-files", pytest.param("postgres-s3", marks=FLEET)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp(f"backend-{request.param}")
    backend = make_backend(request.param, request, base)
    server = serve(backend, base, "replica")
    try:
        admin = backend.token(admin=True)
        reader = backend.token("python", "python-remediated")
        accepted(server, admin)
        wheels = base / "wheels"
        payload = {"demo_pkg/data.bin": bytes(range(256)) * 4096}  # 1 MiB: several chunks
        upload(server, admin, make_wheel(wheels, "dep-pkg", "0.1"))
        upload(server, admin, make_wheel(wheels, "demo-pkg", "1.0", files=payload, requires_dist=["dep-pkg"]))
        upload(server, admin, make_wheel(wheels, "demo-pkg", "1.0+fs.1"), repo="python-remediated")
        served = Served(server, backend, admin, reader)
        _accepted(served, reader)
        yield served
    finally:
        stop_server(server)


def _accepted(served: Served, token: tuple[str, str]) -> None:
    """Wait for the server to see a token made in the database behind its back (one poll)."""
    deadline = time.monotonic() + 10
    while _get(served, "python/simple/", token).status_code != 200:
        assert time.monotonic() < deadline, "the server never accepted the new token"
        time.sleep(0.05)


def _get(served: Served, path: str, auth: tuple[str, str] | None, **headers: str) -> httpx.Response:
    return httpx.get(served.server.url + path, auth=auth, headers=headers, timeout=30)


def test_pages_list_published_files(served: Served) -> None:
    doc = _get(served, "python/simple/demo-pkg/", served.reader, Accept=JSON).json()
    assert doc["versions"] == ["1.0"]
    root = _get(served, "python-all/simple/", served.reader, Accept=JSON).json()
    assert {p["name"] for p in root["projects"]} == {"demo-pkg", "dep-pkg"}
    both = _get(served, "python-all/simple/demo-pkg/", served.reader, Accept=JSON).json()
    assert both["versions"] == ["1.0", "1.0+fs.1"]


def test_file_bytes_ranges_head_and_metadata(served: Served) -> None:
    doc = _get(served, "python/simple/demo-pkg/", served.reader, Accept=JSON).json()
    (entry,) = doc["files"]
    url = httpx.URL(served.server.url + "python/simple/demo-pkg/").join(entry["url"])
    whole = httpx.get(url, auth=served.reader, timeout=30)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).hexdigest() == entry["hashes"]["sha256"]
    assert int(whole.headers["content-length"]) == entry["size"] == len(whole.content)
    assert "immutable" in whole.headers["cache-control"]
    part = httpx.get(url, auth=served.reader, headers={"Range": "bytes=100-4099"}, timeout=30)
    assert part.status_code == 206 and part.content == whole.content[100:4100]
    assert part.headers["content-range"] == f"bytes 100-4099/{entry['size']}"
    tail = httpx.get(url, auth=served.reader, headers={"Range": "bytes=-10"}, timeout=30)
    assert tail.status_code == 206 and tail.content == whole.content[-10:]
    bad = httpx.get(url, auth=served.reader, headers={"Range": f"bytes={entry['size']}-"}, timeout=30)
    assert bad.status_code == 416
    head = httpx.head(url, auth=served.reader, timeout=30)
    assert head.status_code == 200 and head.headers["content-length"] == str(entry["size"])
    assert head.content == b""
    meta = httpx.get(str(url) + ".metadata", auth=served.reader, timeout=30)
    assert hashlib.sha256(meta.content).hexdigest() == entry["core-metadata"]["sha256"]


def test_auth_challenge_forbidden_and_revocation(served: Served) -> None:
    none = _get(served, "python/simple/demo-pkg/", None)
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Basic")
    assert _get(served, "python/simple/", (served.reader[0], "wrong")).status_code == 401
    only_python = served.backend.token("python")
    _accepted(served, only_python)
    assert _get(served, "python-remediated/simple/", only_python).status_code == 403
    revoked = httpx.delete(
        served.server.url + "api/tokens/" + only_python[0].replace("/", "_"), auth=served.admin
    )
    assert revoked.status_code == 200
    assert _get(served, "python/simple/", only_python).status_code == 401


def test_publish_is_visible_at_once(served: Served, tmp_path: Path) -> None:
    upload(served.server, served.admin, make_wheel(tmp_path, "dep-pkg", "0.2"))
    doc = _get(served, "python/simple/dep-pkg/", served.reader, Accept=JSON).json()
    assert doc["versions"] == ["0.1", "0.2"]
    same = make_wheel(tmp_path / "again", "dep-pkg", "0.2")
    upload(served.server, served.admin, same)  # identical bytes: idempotent
    other = make_wheel(tmp_path / "other", "dep-pkg", "0.2", files={"dep_pkg/x.py": "x = 1\n"})
    with other.open("rb") as handle:
        clash = httpx.post(
            served.server.url + "api/repos/python/files",
            auth=served.admin,
            files={"file": (other.name, handle)},
        )
    assert clash.status_code in (400, 409), clash.text


@fleet_test
def test_db_upgrade_on_postgresql(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    from fromsource.cli.main import main

    url = request.getfixturevalue("postgres").database()
    assert main(["--database-url", url, "db", "upgrade"]) == 0
    assert main(["--database-url", url, "db", "upgrade"]) == 0  # idempotent
    assert "newest schema" in capsys.readouterr().out


_OPEN_DATABASE = (
    "import sys; from fromsource.store.db import open_database; open_database(sys.argv[1]).dispose()"
)


@fleet_test
def test_processes_starting_together_migrate_once(request: pytest.FixtureRequest) -> None:
    """Replicas and workers of a fleet open a fresh database at the same moment."""
    import subprocess
    import sys

    url = request.getfixturevalue("postgres").database()
    upgrades = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_DATABASE, url],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for _ in range(4)
    ]
    outputs = [u.communicate(timeout=120)[0].decode() for u in upgrades]
    assert [u.returncode for u in upgrades] == [0, 0, 0, 0], outputs
