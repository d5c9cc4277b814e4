"""The upstream as the build-dependency resolver sees it: a link-filtering index on loopback.

uv follows whatever a project page links while it resolves: from an HTTP
upstream, a ``file:`` link would make it open a path of this host (outside
any sandbox) to read a wheel's metadata, a read and an existence oracle.  So
the resolver never gives uv the upstream itself but an :class:`IndexProxy`:
a PEP 691 index on 127.0.0.1, under a random path, running for one
resolution.  Each page it serves is the upstream's, fetched through
:class:`~fromsource.indexclient.IndexClient` (credentials, caps; uv itself
tries a failed request again) and parsed, keeping only the files whose link
:func:`~fromsource.indexclient.link_allowed` allows, with their digests,
Requires-Python, yanked state and core-metadata flag.

Files keep their absolute upstream URLs, so uv fetches metadata from the
upstream directly, except the files the upstream's credentials are sent to
(its own origin, when its URL carries credentials): the proxy serves those
itself, through the same client, so the credentials never leave this
process (not on uv's command line, in its cache or in the pylock.toml it
writes).  :meth:`IndexProxy.upstream_url` turns such a proxy URL back into
the upstream's.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import shutil
import sys
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO, Self, Unpack

from fromsource.errors import IndexClientError
from fromsource.indexclient import (
    JSON_TYPE,
    ClientOptions,
    IndexClient,
    ProjectFile,
    link_allowed,
    parse_page,
)

__all__ = ["IndexProxy"]

_BYTES = "application/octet-stream"


class IndexProxy:
    """A filtering PEP 691 view of the upstream at *upstream_url*, served on 127.0.0.1.

    Use it as a context manager: the server runs (in threads) inside the
    block, and :attr:`url` is its simple root there.  *options* are those
    of :class:`~fromsource.indexclient.IndexClient`.  What the upstream
    refused or failed on is in :attr:`errors` (redacted messages).
    """

    def __init__(self, upstream_url: str, **options: Unpack[ClientOptions]) -> None:
        # One try each: uv tries a failed request (a 502 here) again itself, as it did when
        # it asked the upstream directly; retrying here too would multiply the waits.
        options.setdefault("tries", 1)
        self.client = IndexClient(upstream_url, **options)
        self.errors: list[str] = []
        self._prefix = f"/{secrets.token_urlsafe(16)}"
        self._proxied: list[ProjectFile] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self, self._prefix))
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>/<random>/``: what only the resolver is told."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._prefix}/"

    @property
    def url(self) -> str:
        """The simple index root to give uv."""
        return f"{self.root}simple/"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self.client.close()

    def upstream_url(self, url: str) -> str:
        """The upstream URL of a file URL this proxy gave out (any other URL as it is)."""
        match = re.fullmatch(re.escape(self.root) + r"files/(\d+)/[^/]+", url)
        file = self.proxied(int(match.group(1))) if match else None
        return file.url if file else url

    def proxied(self, key: int) -> ProjectFile | None:
        """The file this proxy serves as number *key*, if any."""
        with self._lock:
            return self._proxied[key] if key < len(self._proxied) else None

    def note(self, message: str) -> None:
        """Keep *message* (once) among :attr:`errors`."""
        with self._lock:
            if message not in self.errors:
                self.errors.append(message)

    def page(self, name: str) -> tuple[int, bytes]:
        """(status, PEP 691 JSON body) of project *name*'s filtered page."""
        try:
            answer = self.client.page(name)
            if answer.status != 200:
                if answer.status not in (404, 410):
                    self.note(answer.refusal(f"project {name}").message)
                return (404 if answer.status == 410 else answer.status), b""
            page = parse_page(answer.body, answer.content_type, answer.url)
        except IndexClientError as exc:
            self.note(exc.message)
            return 502, b""
        files = [self._entry(f) for f in page.files if link_allowed(self.client.base_url, f.url)]
        # 1.0: the upstream's PEP 700 "versions" may name versions whose files were left out.
        document = {"meta": {"api-version": "1.0"}, "name": page.name or name, "files": files}
        return 200, json.dumps(document).encode()

    def file(self, key: int, metadata: bool, out: BinaryIO) -> int:
        """Copy proxied file *key* (its core metadata when *metadata*) into *out*; the status."""
        file = self.proxied(key)
        if file is None:
            return 404
        try:
            if not metadata:
                digest = self.client.download(file.url, out, what=file.filename, size=file.size)
                if file.sha256 is None or digest == file.sha256:
                    return 200
                self.note(f"{file.filename}: sha256 is {digest}, the index says {file.sha256}")
                return 502
            what = f"{file.filename}.metadata"
            answer = self.client.get(f"{file.url}.metadata", what=what, accept="*/*")
            if answer.status != 200:
                raise answer.refusal(what)
            out.write(answer.body)
            return 200
        except IndexClientError as exc:
            self.note(exc.message)
            return 502

    def _entry(self, file: ProjectFile) -> dict[str, object]:
        url = file.url
        if self.client.sends_credentials(url):
            with self._lock:
                self._proxied.append(file)
                key = len(self._proxied) - 1
            url = f"{self.root}files/{key}/{urllib.parse.quote(file.filename)}"
        entry: dict[str, object] = {
            "filename": file.filename,
            "url": url,
            "hashes": {"sha256": file.sha256} if file.sha256 else {},
            "yanked": (file.yanked_reason or True) if file.yanked else False,
        }
        if file.requires_python:
            entry["requires-python"] = file.requires_python
        if file.size is not None:
            entry["size"] = file.size
        if file.upload_time is not None:
            entry["upload-time"] = file.upload_time.isoformat()
        if file.metadata:
            entry["core-metadata"] = (
                {"sha256": file.metadata_sha256} if file.metadata_sha256 else True
            )
        return entry


class _Server(ThreadingHTTPServer):
    """Joins its request threads on close; keeps what broke a request among the errors."""

    proxy: IndexProxy

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):  # uv hung up: nothing to report
            self.proxy.note(f"the resolver's index failed: {exc!r}")


def _handler(proxy: IndexProxy, prefix: str) -> type[BaseHTTPRequestHandler]:
    page = re.compile(re.escape(prefix) + r"/simple/([A-Za-z0-9._-]+)/?")
    file = re.compile(re.escape(prefix) + r"/files/(\d+)/[^/]+?(\.metadata)?")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            # uv asks whether a wheel serves byte ranges (no), then GETs all of it.
            found = file.fullmatch(self.path)
            known = proxy.proxied(int(found.group(1))) if found else None
            size = known.size if known and found and not found.group(2) else None
            self._send(200 if known else 404, io.BytesIO(), size)

        def do_GET(self) -> None:
            if found := page.fullmatch(self.path):
                status, body = proxy.page(found.group(1))
                return self._send(status, io.BytesIO(body), len(body), JSON_TYPE)
            if found := file.fullmatch(self.path):
                with tempfile.TemporaryFile() as out:
                    status = proxy.file(int(found.group(1)), bool(found.group(2)), out)
                    size = out.tell() if status == 200 else 0
                    out.seek(0)
                    return self._send(status, out, size)
            self._send(404, io.BytesIO(), 0)

        def _send(
            self, status: int, body: BinaryIO, size: int | None, kind: str = _BYTES
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            if size is not None:
                self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD" and size:
                shutil.copyfileobj(body, self.wfile)

    return Handler
