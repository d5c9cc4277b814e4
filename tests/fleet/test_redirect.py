"""Downloads redirected to presigned object-store URLs, and real installers following them.

With ``FROMSOURCE_BLOB_REDIRECT=1`` and an S3 blob store, a file request is
answered by a 302 to a presigned URL (empty body, so a repository manager
never caches the redirect as the wheel; HEAD redirected to a HEAD-signed
URL, so it answers like GET).  Installers differ in how they carry
credentials across a redirect; each one here must still install.  S3 is
moto in server mode over HTTP (no S3 server package is reachable here),
addressed as ``localhost`` so its host differs from the index's
``127.0.0.1`` as a real object store's would.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.clients import UV, clean_env, run, tool, write_netrc
from tests.conftest import IndexServer, stop_server
from tests.factories import make_wheel
from tests.fleet.conftest import FLEET, accepted, make_backend, serve, upload

pytestmark = FLEET

JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Redirecting:
    server: IndexServer
    reader: tuple[str, str]


@pytest.fixture(scope="module")
def redirecting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Redirecting]:
    base = tmp_path_factory.mktemp("redirect")
    backend = make_backend("postgres-s3", request, base)
    server = serve(backend, base, "replica", FROMSOURCE_BLOB_REDIRECT="1")
    try:
        admin = backend.token(admin=True)
        accepted(server, admin)
        wheels = base / "wheels"
        upload(server, admin, make_wheel(wheels, "dep-pkg", "0.1"))
        upload(server, admin, make_wheel(wheels, "demo-pkg", "1.0", requires_dist=["dep-pkg"]))
        reader = backend.token("python")
        accepted(server, reader, "python/simple/")
        yield Redirecting(server, reader)
    finally:
        stop_server(server)


def _file_url(r: Redirecting, project: str) -> tuple[str, str]:
    doc = httpx.get(
        f"{r.server.url}python/simple/{project}/", auth=r.reader, headers={"Accept": JSON}
    ).json()
    entry = doc["files"][0]
    url = str(httpx.URL(f"{r.server.url}python/simple/{project}/").join(entry["url"]))
    return url, entry["hashes"]["sha256"]


def test_get_and_head_redirect_with_an_empty_body(redirecting: Redirecting) -> None:
    url, digest = _file_url(redirecting, "demo-pkg")
    moved = httpx.get(url, auth=redirecting.reader)
    assert moved.status_code == 302 and moved.content == b""
    assert moved.headers["cache-control"] == "no-store"
    location = moved.headers["location"]
    assert location.startswith("http://localhost:") and "X-Amz-Signature=" in location
    fetched = httpx.get(location)  # no credentials: the signature is the authorization
    assert fetched.status_code == 200
    assert hashlib.sha256(fetched.content).hexdigest() == digest
    head = httpx.head(url, auth=redirecting.reader)
    assert head.status_code == 302 and head.content == b""
    followed = httpx.head(head.headers["location"])
    assert followed.status_code == 200
    assert followed.headers["content-length"] == str(len(fetched.content))
    # Metadata stays on the index (small, immutable, cached in memory).
    meta = httpx.get(url + ".metadata", auth=redirecting.reader)
    assert meta.status_code == 200 and b"Name: demo-pkg" in meta.content
    assert httpx.get(url).status_code == 401  # no token, no redirect


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def _pip(python: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "--python", str(python)]


def test_pip_installs_through_the_redirect(redirecting: Redirecting, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    python = _venv(tmp_path / "venv")
    result = run([*_pip(python), "install", "--no-cache-dir", "--index-url",
                  redirecting.server.cred_url("python", redirecting.reader), "demo-pkg"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = run([*_pip(python), "list", "--format", "freeze"], env).stdout
    assert "demo-pkg==1.0" in listed and "dep-pkg==0.1" in listed


def test_pip_with_netrc_installs_through_the_redirect(
    redirecting: Redirecting, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = clean_env(home)
    write_netrc(home, "127.0.0.1", redirecting.reader[0], redirecting.reader[1])
    python = _venv(tmp_path / "venv")
    result = run([*_pip(python), "install", "--no-cache-dir", "--index-url",
                  redirecting.server.simple("python"), "dep-pkg"], env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_uv_installs_through_the_redirect(redirecting: Redirecting, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    venv = tmp_path / "venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)], env).returncode == 0
    user = redirecting.reader[0].replace("/", "%2F")
    host = redirecting.server.url.split("://", 1)[1]
    result = run([UV, "pip", "install", "--python", str(venv / "bin" / "python"), "--no-cache",
                  "--index-url", f"http://{user}:{redirecting.reader[1]}@{host}python/simple/",
                  "demo-pkg"], env)
    assert result.returncode == 0, result.stderr
    assert redirecting.reader[1] not in result.stderr


@pytest.mark.network
def test_poetry_installs_through_the_redirect(redirecting: Redirecting, tmp_path: Path) -> None:
    poetry = str(tool("poetry"))
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["demo-pkg==1.0"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "private"\nurl = "{redirecting.server.simple("python")}"\n'
        'priority = "primary"\n'
    )
    home = tmp_path / "home"
    env = clean_env(home, {"POETRY_VIRTUALENVS_IN_PROJECT": "true",
                           "POETRY_CACHE_DIR": str(home / "pcache")})
    reader = redirecting.reader
    assert run([poetry, "config", "http-basic.private", *reader], env, cwd=project).returncode == 0
    lock = run([poetry, "lock", "--no-interaction"], env, cwd=project)
    assert lock.returncode == 0, lock.stdout + lock.stderr
    install = run([poetry, "install", "--no-interaction"], env, cwd=project)
    assert install.returncode == 0, install.stdout + install.stderr
