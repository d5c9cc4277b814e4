"""An "upstream-like" index for lock-file tests: PEP 503 HTML over a folder, on loopback.

It serves ``/simple/``, ``/simple/<project>/`` (links ``../../files/<file>#sha256=``)
and ``/files/<file>`` from a folder of wheels built differently from the ones the
fromsource index serves, so that a lock made against it carries other hashes.
:meth:`FolderIndex.forward_to` turns it into a plain proxy in front of another
index: a stable URL whose backend moves, as a repository manager does.
"""

from __future__ import annotations

import hashlib
import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from fromsource.dist.names import normalize, parse_filename


class FolderIndex:
    """A PEP 503 index over *folder* on 127.0.0.1 (a thread); ``close()`` stops it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[str] = []
        self._target: str | None = None
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                if index._target is not None:
                    self._forward(index._target)
                else:
                    self._serve()

            def do_HEAD(self) -> None:
                self.send_error(405)

            def _serve(self) -> None:
                parts = [p for p in self.path.split("?", 1)[0].split("/") if p]
                body: bytes | None = None
                kind = "text/html"
                if parts == ["simple"]:
                    names = sorted({str(parse_filename(p.name).project) for p in index._files()})
                    body = _html("".join(f'<a href="{n}/">{n}</a>\n' for n in names))
                elif len(parts) == 2 and parts[0] == "simple":
                    links = [
                        f'<a href="../../files/{html.escape(p.name)}#sha256='
                        f'{hashlib.sha256(p.read_bytes()).hexdigest()}">{html.escape(p.name)}</a>\n'
                        for p in index._files() if parse_filename(p.name).project == normalize(parts[1])
                    ]
                    body = _html("".join(links)) if links else None
                elif len(parts) == 2 and parts[0] == "files" and (index.folder / parts[1]).is_file():
                    body, kind = (index.folder / parts[1]).read_bytes(), "application/octet-stream"
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, target: str) -> None:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "accept")}
                answer = httpx.get(target + self.path.lstrip("/"), headers=headers)
                self.send_response(answer.status_code)
                for key in ("content-type", "www-authenticate", "etag"):
                    if key in answer.headers:
                        self.send_header(key, answer.headers[key])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def simple(self) -> str:
        """The simple index URL."""
        return self.url + "simple/"

    def _files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.name.endswith((".whl", ".tar.gz")))

    def forward_to(self, target: str | None) -> None:
        """Forward every request to *target* (``http://host/<repo>/``), or serve the folder again."""
        self._target = target

    def close(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _html(links: str) -> bytes:
    return f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n".encode()
