"""The hot path: ``/<repo>/simple/…``, ``/<repo>/files/…``, ``/<repo>/integrity/…``.

A bare ASGI callable, no framework routing, because every install hits these
paths many times: a cached page with a Basic-auth check is a dictionary
lookup, a digest comparison and one ``send``.  Anything it does not own goes
to the fallback app (the management API and web UI).

URL layout (stable forever: Nexus and friends cache pages that point here):

- ``/<repo>/simple/`` and ``/<repo>/simple/<project>/``: PEP 503/691 pages.
- ``/<repo>/files/<project>/<version>/<filename>``: the file, and the same URL
  plus ``.metadata`` for its core metadata (PEP 658/714).
- ``/<repo>/integrity/<project>/<version>/<filename>/provenance|sbom``.

No blob is read whole to answer (issue 18): files, ``.metadata`` and SBOMs
are streamed (small ones sent from one read), with ETag, HEAD and one byte
range; only provenance, re-wrapped as PEP 740, is read whole, within a cap.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import FileResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fromsource.bounded import DEFAULT_LIMITS
from fromsource.config import UPSTREAM_REPOSITORY
from fromsource.dist.names import Sha256, normalize
from fromsource.errors import BlobNotFoundError, FromsourceError, OversizedError
from fromsource.index.auth import Decision
from fromsource.index.negotiate import choose
from fromsource.index.ranges import Unsatisfiable, parse_range
from fromsource.index.ratelimit import client_of, too_many_message
from fromsource.index.state import CachedPage, IndexState, refusal_body
from fromsource.provenance.dsse import parse_envelope
from fromsource.provenance.pep740 import to_pep740

_IMMUTABLE = "public, max-age=31536000, immutable"
_INLINE_LIMIT = 1 << 20
_DOCUMENT_LIMIT = DEFAULT_LIMITS.document_bytes
_PAGE_CACHE = "private, max-age=60, must-revalidate"
_BUILDER_ID = "urn:fromsource:builder"

Headers = list[tuple[bytes, bytes]]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _send_simple(
    send: Send,
    status: int,
    body: bytes = b"",
    headers: Headers | None = None,
    head: bool = False,
    content_type: bytes = b"text/plain; charset=utf-8",
) -> None:
    out: Headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    out.extend(headers or [])
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": b"" if head else body})


class SimpleApp:
    """ASGI app serving the simple API and files; delegates the rest to *fallback*."""

    def __init__(self, state: IndexState, fallback: ASGIApp) -> None:
        self.state = state
        self.fallback = fallback
        self._challenge = (
            b"www-authenticate",
            f'Basic realm="{state.settings.realm}", charset="UTF-8"'.encode(),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.fallback(scope, self._lifespan(receive), send)
            return
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        parts = scope["path"].split("/")
        # parts[0] is "" (the path starts with "/"); parts[1] is the repository.
        if len(parts) < 3 or not self.state.is_repo(parts[1]) or parts[2] not in (
            "simple",
            "files",
            "integrity",
        ):
            await self.fallback(scope, receive, send)
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _send_simple(send, 405, b"405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")])
            return
        self.state.refresh()
        repo = parts[1]
        head = method == "HEAD"
        client = client_of(scope)
        wait = self.state.failures.retry_after(client)
        if wait:  # over the failed-sign-in budget: credentials are not even looked at
            self.state.metrics.requests[(parts[2], 429)] += 1
            await _send_simple(
                send, 429, too_many_message(wait).encode(), [(b"retry-after", str(wait).encode())], head
            )
            return
        authorization = _header(scope, b"authorization")
        result = self.state.auth.check_repo(authorization, repo)
        status = 200
        try:
            if result.decision is Decision.CHALLENGE:
                if authorization is not None:
                    self.state.failures.failed(client)
                status = 401
                await _send_simple(
                    send,
                    401,
                    b"401 Unauthorized: send a pull token with HTTP Basic auth "
                    b"(user = token id, password = secret)\n",
                    [self._challenge],
                    head,
                )
            elif result.decision is Decision.FORBIDDEN:
                status = 403
                await _send_simple(
                    send,
                    403,
                    f"403 Forbidden: this token has no access to the {repo} repository\n".encode(),
                    head=head,
                )
            elif parts[2] == "simple":
                upstream = repo == UPSTREAM_REPOSITORY or (
                    repo == "python-all"
                    and self.state.auth.names_repo(authorization, UPSTREAM_REPOSITORY)
                )
                status = await self._simple(scope, send, repo, parts[3:], head, upstream)
            elif parts[2] == "files" and repo == UPSTREAM_REPOSITORY:
                status = await self._upstream_file(scope, receive, send, parts[3:], head)
            elif parts[2] == "files":
                status = await self._files(scope, receive, send, repo, parts[3:], head)
            else:
                status = await self._integrity(scope, receive, send, repo, parts[3:], head)
        finally:
            self.state.metrics.requests[(parts[2], status)] += 1

    def _lifespan(self, receive: Receive) -> Receive:
        """*receive*, starting the state's background tasks with the server and stopping them."""

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.state.start_background()
            elif message["type"] == "lifespan.shutdown":
                self.state.stop_background()
            return message

        return wrapped

    async def _redirect(self, scope: Scope, send: Send, location: str) -> int:
        query = scope.get("query_string", b"")
        target = location + ("?" + query.decode("latin-1") if query else "")
        await _send_simple(send, 301, b"", [(b"location", target.encode())])
        return 301

    async def _simple(
        self, scope: Scope, send: Send, repo: str, rest: list[str], head: bool, upstream: bool
    ) -> int:
        # rest: [""] for the root, [project, ""] for a project page; *upstream*: the page
        # (of python-upstream, or of python-all for a token entitled to it) has upstream files.
        if not rest:
            return await self._redirect(scope, send, f"/{repo}/simple/")
        if len(rest) > 2 or (len(rest) == 2 and rest[1] != ""):
            await _send_simple(send, 404, b"404 Not Found\n", head=head)
            return 404
        media = choose(_header(scope, b"accept"))
        if media is None:
            await _send_simple(
                send,
                406,
                b"406 Not Acceptable: this index serves application/vnd.pypi.simple.v1+json, "
                b"application/vnd.pypi.simple.v1+html and text/html\n",
                head=head,
            )
            return 406
        if rest == [""]:
            page: CachedPage | None = self.state.root_page(repo, _kind(media))
        else:
            project = rest[0]
            canonical = normalize(project)
            if project != canonical or len(rest) == 1:
                return await self._redirect(scope, send, f"/{repo}/simple/{quote(canonical)}/")
            if (refusal := self.state.project_refusal(repo, canonical)) is not None:
                await _send_simple(send, refusal.status, refusal_body(refusal), head=head)
                return refusal.status
            if upstream:
                return await self._upstream_page(scope, send, repo, canonical, media, head)
            page = self.state.project_page(repo, canonical, _kind(media))
            if page is None:
                if self.state.on_missing_project is not None and repo in ("python", "python-all"):
                    self.state.on_missing_project(canonical)
                await _send_simple(
                    send, 404, f"404 Not Found: no project {canonical} in {repo}\n".encode(), head=head
                )
                return 404
        assert page is not None
        return await self._send_page(scope, send, page, media, head)

    async def _upstream_page(
        self, scope: Scope, send: Send, repo: str, project: str, media: str, head: bool
    ) -> int:
        """A page with upstream files (:mod:`fromsource.index.upstream`), built off the loop."""
        missing = self.state.on_missing_project
        if missing and repo != UPSTREAM_REPOSITORY and not self.state.files(repo, project):
            missing(project)  # the upstream fills in while the index builds it
        try:
            answer = await run_in_threadpool(self.state.upstream.page, repo, project, _kind(media))
        except FromsourceError as exc:  # no upstream index could be found
            await _send_simple(send, 502, f"502 Bad Gateway: {exc.message}\n".encode(), head=head)
            return 502
        if answer.page is None:
            await _send_simple(send, answer.status, answer.message.encode(), head=head)
            return answer.status
        return await self._send_page(scope, send, answer.page, media, head)

    async def _send_page(
        self, scope: Scope, send: Send, page: CachedPage, media: str, head: bool
    ) -> int:
        headers: Headers = [
            (b"etag", page.etag.encode()),
            (b"cache-control", _PAGE_CACHE.encode()),
            (b"vary", b"Accept, Authorization"),
        ]
        if _header(scope, b"if-none-match") in (page.etag, "*"):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 304
        content_type = "text/html; charset=utf-8" if media == "text/html" else media
        await _send_simple(send, 200, page.body, headers, head, content_type.encode())
        return 200

    async def _files(
        self, scope: Scope, receive: Receive, send: Send, repo: str, rest: list[str], head: bool
    ) -> int:
        if len(rest) != 3:
            await _send_simple(send, 404, b"404 Not Found\n", head=head)
            return 404
        project, version, filename = rest
        metadata = filename.endswith(".metadata")
        if metadata:
            filename = filename[: -len(".metadata")]
        info = self.state.find_file(repo, project, filename)
        if info is None or info.version != version or info.project != project:
            await _send_simple(send, 404, f"404 Not Found: {filename}\n".encode(), head=head)
            return 404
        if (refusal := self.state.file_refusal(repo, info)) is not None:
            await _send_simple(send, refusal.status, refusal_body(refusal), head=head)
            return refusal.status
        if metadata:
            if info.metadata_sha256 is None:
                await _send_simple(send, 404, b"404 Not Found: no metadata file\n", head=head)
                return 404
            return await self._send_stored(
                scope, receive, send, info.metadata_sha256, head, b"application/octet-stream"
            )
        return await self._send_blob(
            scope, receive, send, info.sha256, info.size, head, filename=info.filename
        )

    async def _upstream_file(
        self, scope: Scope, receive: Receive, send: Send, rest: list[str], head: bool
    ) -> int:
        """``/python-upstream/files/...``: fetched on first request, then from the blob store."""
        if len(rest) != 3 or rest[2].endswith(".metadata"):
            # No core metadata for upstream files (PEP 658 lets an index omit it).
            await _send_simple(send, 404, b"404 Not Found\n", head=head)
            return 404
        project, version, filename = rest
        try:
            answer = await run_in_threadpool(self.state.upstream.file, project, version, filename)
        except FromsourceError as exc:  # no upstream index could be found
            await _send_simple(send, 502, f"502 Bad Gateway: {exc.message}\n".encode(), head=head)
            return 502
        if answer.refusal is not None:
            await _send_simple(send, answer.status, refusal_body(answer.refusal), head=head)
            return answer.status
        if answer.info is None:
            await _send_simple(send, answer.status, answer.message.encode(), head=head)
            return answer.status
        info = answer.info
        return await self._send_blob(
            scope, receive, send, info.sha256, info.size, head, filename=info.filename
        )

    async def _send_stored(
        self, scope: Scope, receive: Receive, send: Send, digest: Sha256, head: bool, media: bytes
    ) -> int:
        """A stored document (core metadata, SBOM) as *media*: streamed, never read whole.

        A small one is sent from memory (object storage keeps it in its cache,
        so a hot ``.metadata`` costs no request); a larger one goes through
        :meth:`_send_blob` like a wheel (ranges, sendfile, ranged GETs), but
        is never redirected: clients read these from the index itself.
        """
        blobs = self.state.blobs
        path = blobs.local_path(digest)
        body: bytes | None = None
        try:
            if path is not None:
                size = path.stat().st_size
            elif blobs.scratch_dir() is not None:  # a local store: no path, no blob
                return await _missing_blob(send, head)
            else:
                body = blobs.read_bytes(digest, limit=_INLINE_LIMIT)
                size = len(body)
        except (BlobNotFoundError, FileNotFoundError):
            return await _missing_blob(send, head)
        except OversizedError as exc:
            size = int(str(exc.facts["size"]))
        return await self._send_blob(
            scope, receive, send, digest, size, head, media=media, redirect=False, body=body
        )

    async def _send_blob(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        digest: Sha256,
        size: int,
        head: bool,
        filename: str | None = None,
        media: bytes = b"application/octet-stream",
        redirect: bool = True,
        body: bytes | None = None,
    ) -> int:
        """The blob with caching headers, honouring one byte range.

        Small blobs are read in one go (they sit in the page cache; a thread
        hop per chunk costs more than the read); large ones are handed to the
        server's sendfile path (ASGI ``pathsend``) when it offers one.  A blob
        in object storage is streamed with ranged GETs or, with
        ``blob_redirect`` and *redirect*, answered by a 302 to a presigned
        URL.  *body* is the blob when the caller already holds it (a small
        one).  Returns the status sent.
        """
        headers: Headers = [
            (b"cache-control", _IMMUTABLE.encode()),
            (b"etag", f'"{digest}"'.encode()),
            (b"accept-ranges", b"bytes"),
            (b"content-type", media),
        ]
        path = self.state.blobs.local_path(digest) if body is None else None
        if body is None and path is None and self.state.blobs.scratch_dir() is not None:
            return await _missing_blob(send, head)  # a local store keeps every blob as a file
        presign = getattr(self.state.blobs, "presigned_url", None)
        if (
            body is None
            and path is None
            and redirect
            and callable(presign)
            and self.state.settings.blob_redirect
        ):
            # Empty body, so a repository manager never caches the redirect as
            # the wheel; HEAD goes to a HEAD-signed URL, so it answers like GET.
            url = presign(digest, method="HEAD" if head else "GET", filename=filename)
            await _send_simple(
                send, 302, b"", [(b"location", url.encode()), (b"cache-control", b"no-store")], head
            )
            return 302
        span = parse_range(_header(scope, b"range"), size)
        if isinstance(span, Unsatisfiable):
            await _send_simple(send, 416, b"", [(b"content-range", f"bytes */{span.size}".encode())], head)
            return 416
        if path is not None and span is None and size > _INLINE_LIMIT and not head:
            if "http.response.pathsend" in scope.get("extensions", {}):
                headers.append((b"content-length", str(size).encode()))
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.pathsend", "path": str(path)})
                return 200
            await FileResponse(path, headers={k.decode(): v.decode() for k, v in headers})(scope, receive, send)
            return 200
        start, end = span if span is not None else (0, size - 1)
        length = end - start + 1
        status = 206 if span is not None else 200
        if span is not None:
            headers.append((b"content-range", f"bytes {start}-{end}/{size}".encode()))
        headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if head or length <= 0:
            await send({"type": "http.response.body", "body": b""})
            return status
        if body is not None:
            await send({"type": "http.response.body", "body": body[start : end + 1]})
            return status
        if path is None:
            await self._stream_remote(send, digest, start, end)
            return status
        with path.open("rb") as handle:
            handle.seek(start)
            remaining = length
            while remaining > 0:
                chunk = handle.read(min(_INLINE_LIMIT, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining > 0:  # the blob shrank under us: end the body anyway
            await send({"type": "http.response.body", "body": b""})
        return status

    async def _stream_remote(self, send: Send, digest: Sha256, start: int, end: int) -> None:
        """Bytes ``start..end`` of a blob without a local file (object storage, ranged GETs)."""
        async for chunk in iterate_in_threadpool(self.state.blobs.iter_range(digest, start, end)):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _integrity(
        self, scope: Scope, receive: Receive, send: Send, repo: str, rest: list[str], head: bool
    ) -> int:
        if len(rest) != 4 or rest[3] not in ("provenance", "sbom"):
            await _send_simple(send, 404, b"404 Not Found\n", head=head)
            return 404
        project, version, filename, document = rest
        info = self.state.find_file(repo, project, filename)
        digest = None
        if info is not None and info.version == version:
            digest = info.provenance_sha256 if document == "provenance" else info.sbom_sha256
        if digest is None:
            await _send_simple(send, 404, f"404 Not Found: no {document} for {filename}\n".encode(), head=head)
            return 404
        if document == "sbom":
            return await self._send_stored(
                scope, receive, send, digest, head, b"application/vnd.cyclonedx+json"
            )
        # Provenance is re-wrapped (DSSE → PEP 740), so it is read whole, within a cap.
        try:
            raw = self.state.blobs.read_bytes(digest, limit=_DOCUMENT_LIMIT)
        except BlobNotFoundError:
            return await _missing_blob(send, head)
        except OversizedError:
            await _send_simple(send, 500, b"500: stored provenance is over the size served\n", head=head)
            return 500
        try:
            body = json.dumps(to_pep740(parse_envelope(raw), _BUILDER_ID)).encode()
        except FromsourceError:
            await _send_simple(send, 500, b"500: stored provenance is unreadable; run fromsource fsck\n")
            return 500
        media = b"application/vnd.pypi.integrity.v1+json"
        await _send_simple(
            send, 200, body, [(b"cache-control", _IMMUTABLE.encode())], head, media
        )
        return 200


async def _missing_blob(send: Send, head: bool) -> int:
    """503 for a published file whose bytes are gone (a disk fault, not the client's)."""
    await _send_simple(
        send,
        503,
        b"503 Service Unavailable: this file's bytes are missing from the blob store; "
        b"the operator should run `fromsource fsck`\n",
        head=head,
    )
    return 503


def _kind(media: str) -> str:
    from fromsource.index.pages import HTML_TYPE, JSON_TYPE

    return JSON_TYPE if media == JSON_TYPE else HTML_TYPE


__all__ = ["SimpleApp"]
