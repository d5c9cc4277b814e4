"""A scriptable HTTP server on loopback for the index client: routes, failures, a request log."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Route:
    """What one path answers: *status*, *body* and *headers*, after *fail* failures.

    A failure answers *fail_status* or, when that is 0, drops the connection
    without an answer.  *delay* seconds pass before every answer.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    fail: int = 0
    fail_status: int = 503
    delay: float = 0.0
    length: bool = True  # send Content-Length (else the body ends when the connection closes)


@dataclass
class Loopback:
    """A running server on 127.0.0.1: its URL, its routes and the requests it saw."""

    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        """The paths asked for, in order."""
        with self.lock:
            return [path for path, _headers in self.seen]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        site: Loopback = self.server.site  # type: ignore[attr-defined]
        with site.lock:
            site.seen.append((self.path, dict(self.headers.items())))
            route = site.routes.get(self.path.split("?")[0])
            failing = route is not None and route.fail > 0
            if route is not None and failing:
                route.fail -= 1
        if route is None:
            return self._answer(404, b"not found", {}, length=True)
        time.sleep(route.delay)
        if failing and route.fail_status == 0:
            self.close_connection = True  # the client sees the connection drop
            return None
        if failing:
            return self._answer(route.fail_status, b"busy", {}, length=True)
        return self._answer(route.status, route.body, route.headers, length=route.length)

    def _answer(self, status: int, body: bytes, headers: dict[str, str], *, length: bool) -> None:
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if length:
                self.send_header("Content-Length", str(len(body)))
            else:
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True


def serve(port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread, Loopback]:
    """Start a server on 127.0.0.1:*port* (0: any free port)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    site = Loopback(f"http://127.0.0.1:{server.server_address[1]}/")
    server.site = site  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread, site


def stop(server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    """Stop a server :func:`serve` started."""
    server.shutdown()
    server.server_close()
    thread.join()


def _running() -> Iterator[Loopback]:
    server, thread, site = serve()
    try:
        yield site
    finally:
        stop(server, thread)


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    """A server on 127.0.0.1 with no routes yet."""
    yield from _running()


@pytest.fixture
def other_origin() -> Iterator[Loopback]:
    """A second server: another port, so another origin."""
    yield from _running()
