"""Fixtures of the hardening suite: a populated index to attack, and a raw HTTP client.

The raw client writes request bytes as given, so paths with ``..``, percent
escapes, odd header bytes and oversized headers reach the server unchanged
(httpx would normalize or refuse some of them).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import IndexServer, start_server, stop_server
from tests.factories import make_wheel

SENTINEL = "fromsource-sentinel-7f3a9c"
"""Text of a file planted in the data dir outside the blob store: no answer may carry it."""

TOKEN_ENV = {"FROMSOURCE_AUTH_FAILURES_PER_MINUTE": "100000"}
"""The attacked index counts failed sign-ins but never blocks (the budget has its own tests)."""


@dataclass
class Target:
    """The attacked index with the credentials and files the tests use."""

    server: IndexServer
    reader: tuple[str, str]
    admin: tuple[str, str]
    wheel_path: str
    wheel_bytes: bytes
    planted: list[Path] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.server.url.split("://", 1)[1].rstrip("/")

    def healthy(self) -> bool:
        return httpx.get(self.server.url + "healthz", timeout=10).status_code == 200


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """An index with demo-pkg 1.0 published, a reader and an admin token, and planted files."""
    base = tmp_path_factory.mktemp("hostile")
    data = base / "data"
    data.mkdir()
    planted = [data / "secret.txt", base / "secret.txt"]
    for path in planted:
        path.write_text(SENTINEL)
    server = start_server(data, env=TOKEN_ENV)
    try:
        wheel = make_wheel(base / "wheels", "demo-pkg", "1.0")
        server.publish(wheel, provenance=None, sbom=b'{"bomFormat": "CycloneDX"}')
        reader = server.token("python", "python-remediated")
        admin = server.token(admin=True, org="ops")
        yield Target(
            server,
            reader,
            admin,
            f"/python/files/demo-pkg/1.0/{wheel.name}",
            wheel.read_bytes(),
            planted,
        )
    finally:
        stop_server(server)


@dataclass(frozen=True)
class RawResponse:
    """What came back for a raw request; status None when the server closed without answering."""

    status: int | None
    headers: dict[str, str]
    body: bytes


def raw_request(host: str, request: bytes, timeout: float = 15.0) -> RawResponse:
    """Send *request* (bytes as is, ``Connection: close`` expected) to *host* and read to EOF."""
    name, port = host.rsplit(":", 1)
    chunks: list[bytes] = []
    with socket.create_connection((name, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (and close) before reading everything
        while not _complete(b"".join(chunks)):
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    if not data.startswith(b"HTTP/"):
        return RawResponse(None, {}, data)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return RawResponse(status, headers, body)


def _complete(data: bytes) -> bool:
    """Whether *data* holds a whole response with a Content-Length (keep-alive answers)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False


def get_raw(target: Target, path: bytes | str, *headers: bytes | str, method: str = "GET") -> RawResponse:
    """A raw GET of *path* (bytes as is) with *headers* lines added."""
    raw_path = path.encode("latin-1") if isinstance(path, str) else path
    lines = [f"{method} ".encode() + raw_path + b" HTTP/1.1", f"Host: {target.host}".encode()]
    lines += [h.encode("latin-1") if isinstance(h, str) else h for h in headers]
    lines.append(b"Connection: close")
    return raw_request(target.host, b"\r\n".join(lines) + b"\r\n\r\n")
