"""Shared fixtures: a real index server on loopback, tokens, test wheels."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from fromsource.store.blobs import open_blob_store
from fromsource.store.db import open_database
from fromsource.store.publish import publish_file
from fromsource.store.tokens import create_token
from tests.factories import make_wheel

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class IndexServer:
    """A running ``fromsource serve`` and handles on its data dir."""

    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'fromsource.db'}"

    def token(self, *repos: str, admin: bool = False, org: str = "acme") -> tuple[str, str]:
        """Create a token directly in the database; returns (id, secret)."""
        db = open_database(self.database_url)
        new = create_token(db, org=org, repos=list(repos), admin=admin)
        db.dispose()
        wait_for_generation(self)
        return new.info.id, new.secret

    def publish(self, wheel: Path, repo: str = "python", **kwargs: object) -> None:
        """Publish a file through the store (as the build pipeline does)."""
        db = open_database(self.database_url)
        publish_file(db, open_blob_store(f"file://{self.data_dir / 'blobs'}"), wheel, repo, **kwargs)  # type: ignore[arg-type]
        db.dispose()
        wait_for_generation(self)

    def simple(self, repo: str = "python") -> str:
        return f"{self.url}{repo}/simple/"

    def cred_url(self, repo: str, token: tuple[str, str]) -> str:
        """The simple URL with credentials in pip's ``_`` form."""
        user = token[0].replace("/", "_")
        host = self.url.split("://", 1)[1]
        return f"http://{user}:{token[1]}@{host}{repo}/simple/"


def wait_for_generation(server: IndexServer) -> None:
    """Give the server one poll interval to notice a change made behind its back."""
    time.sleep(0.15)


def start_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None, port: int | None = None
) -> IndexServer:
    """Start ``fromsource serve`` on a free (or the given) loopback port and wait until it answers."""
    port = port or free_port()
    log = data_dir.parent / f"server-{port}.log"
    environment = {**os.environ, "FROMSOURCE_POLL_INTERVAL": "0.05", **(env or {})}
    with log.open("wb") as log_handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "fromsource.cli.main", "--data-dir", str(data_dir),
             "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
            stdout=log_handle, stderr=subprocess.STDOUT, env=environment,
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "healthz", timeout=1).status_code == 200:
                return IndexServer(url, data_dir, process, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stop_server(server: IndexServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def index_server(tmp_path: Path) -> Iterator[IndexServer]:
    """A fresh index over an empty data dir in *tmp_path*."""
    server = start_server(tmp_path / "data")
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """One index per test module, with a few tiny projects published:
    ``demo-pkg`` 1.0 and 1.1 (1.1 needs Python >=3.8) and ``dep-pkg`` 0.1 in ``python``;
    ``demo-pkg`` 1.0+fs.1 in ``python-remediated``."""
    base = tmp_path_factory.mktemp("shared-index")
    server = start_server(base / "data")
    wheels = base / "wheels"
    server.publish(make_wheel(wheels, "dep-pkg", "0.1"))
    server.publish(make_wheel(wheels, "demo-pkg", "1.0", requires_dist=["dep-pkg"]))
    server.publish(make_wheel(wheels, "demo-pkg", "1.1", requires_python=">=3.8", requires_dist=["dep-pkg"]))
    server.publish(make_wheel(wheels, "demo-pkg", "1.0+fs.1", requires_dist=["dep-pkg"]), repo="python-remediated")
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="session")
def venv_factory(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Make fresh virtual environments (with pip) quickly."""
    def make(name: str = "venv") -> Path:
        path = tmp_path_factory.mktemp(name) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        return path
    return make
