"""The one HTTP client for a simple index: origin-bound credentials, retries, timeouts and caps.

:class:`IndexClient` is what the upstream fetch, build-dependency downloads,
``verify`` and ``lock`` talk to an index through.  Credentials go only to
the index's own origin (scheme, host, port), never to a file host or a
redirect target elsewhere; every URL in a message is redacted.  Connection
errors and transient answers (429, 5xx) are tried again with exponential
backoff.  Every page and file is read under a byte cap, a link or redirect
is followed only where :func:`~fromsource.indexclient.links.link_allowed`
allows it, and a ``file:`` index is read from disk (``<name>/index.json``
or ``<name>/index.html``, the layout pip reads), regular files only.
"""

from __future__ import annotations

import io
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self, TypedDict, TypeVar

import httpx

from fromsource import __version__
from fromsource.dist.names import normalize
from fromsource.errors import IndexClientError
from fromsource.indexclient.credentials import Credentials
from fromsource.indexclient.links import link_allowed, redact, refused_link
from fromsource.indexclient.pages import ACCEPT, JSON_TYPE
from fromsource.indexclient.transfer import (
    CHUNK,
    MAX_DOWNLOAD_BYTES,
    MAX_PAGE_BYTES,
    Cap,
    copy_chunks,
    copy_file,
    open_regular,
)

_T = TypeVar("_T")

TRANSIENT = frozenset({429, 500, 502, 503, 504})
"""Answers worth another try: the index is busy or briefly broken."""

_MEANING = {
    401: ", the index wants credentials (none were accepted)",
    403: ", the credentials have no access",
    404: " (not found)",
    429: " (too many requests)",
}


class OriginAuth(httpx.Auth):
    """HTTP Basic auth added only to requests for one origin (scheme, host, port).

    httpx itself drops the header when a redirect leaves the origin; this
    keeps it off every other request the client makes (a file host, a
    provenance link on another host).
    """

    def __init__(self, origin_url: str, credentials: Credentials) -> None:
        url = httpx.URL(origin_url)
        self.origin = (url.scheme, url.host, url.port)
        self._basic = httpx.BasicAuth(credentials.username, credentials.password)

    def applies(self, url: httpx.URL) -> bool:
        """Whether a request for *url* gets the credentials (its origin is the index's)."""
        return (url.scheme, url.host, url.port) == self.origin

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.applies(request.url):
            yield from self._basic.auth_flow(request)
        else:
            yield request


class ClientOptions(TypedDict, total=False):
    """The keyword options of :class:`IndexClient`, for a wrapper that passes them on."""

    timeout: float
    tries: int
    backoff: float
    agent: str
    max_bytes: int
    max_page_bytes: int
    transport: httpx.BaseTransport | None


@dataclass(frozen=True)
class Answer:
    """A response read in full (under the page cap) and closed; *url* is the final URL."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: str

    @property
    def content_type(self) -> str:
        """The Content-Type header, "" when there is none."""
        return str(self.headers.get("content-type", ""))

    def refusal(self, what: str) -> IndexClientError:
        """The error for this answer when its status is not one the caller can use."""
        return refusal(self.status, self.url, what)


def refusal(status: int, url: str, what: str) -> IndexClientError:
    """The error for an answer with *status* from *url* (*what* names the request).

    States the fact (who answered what); the caller adds what to do next.
    """
    meaning = _MEANING.get(status, " (a server error)" if status >= 500 else "")
    return IndexClientError(
        f"{what}: {redact(url)} answered {status}{meaning}", url=redact(url), status=status
    )


class IndexClient:
    """HTTP(S) or ``file:`` access to one simple index rooted at *base_url*.

    *credentials* (or ``user:pass@`` in *base_url*, which is then removed
    from :attr:`base_url`) are sent only to the origin of *base_url*.  A
    request is tried *tries* times in all, waiting *backoff* seconds times
    2**attempt between tries; each waits at most *timeout* seconds for the
    network.  Pages and small documents are capped at *max_page_bytes*,
    downloads at *max_bytes*.  The User-Agent is ``<agent>/<version>``.
    *transport* lets tests aim the client at anything httpx takes.
    Every failure raises :class:`~fromsource.errors.IndexClientError`.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        tries: int = 3,
        backoff: float = 0.5,
        agent: str = "fromsource",
        max_bytes: int = MAX_DOWNLOAD_BYTES,
        max_page_bytes: int = MAX_PAGE_BYTES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url if base_url.endswith("/") else base_url + "/")
        if credentials is None and (url.username or url.password):
            credentials = Credentials(url.username, url.password)
        self.base_url = str(url.copy_with(username=None, password=None))
        self.tries, self.backoff = max(1, tries), backoff
        self.max_bytes, self.max_page_bytes = max_bytes, max_page_bytes
        self._auth = OriginAuth(self.base_url, credentials) if credentials else None
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            auth=self._auth,
            headers={"User-Agent": f"{agent}/{__version__}"},
            transport=transport,
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sends_credentials(self, url: str) -> bool:
        """Whether this client sends credentials with a request for *url* (the index's origin)."""
        try:
            return self._auth is not None and self._auth.applies(httpx.URL(url))
        except httpx.InvalidURL:
            return False

    def page_url(self, name: str) -> str:
        """The URL of project *name*'s page: ``<base_url><normalized name>/``."""
        return f"{self.base_url}{normalize(name)}/"

    def page(self, name: str, headers: dict[str, str] | None = None) -> Answer:
        """Project *name*'s page, JSON preferred (see :data:`ACCEPT`), as an :class:`Answer`.

        From a ``file:`` index: ``index.json`` or ``index.html`` in the
        project's folder (its normalized name, else *name* as given), or a
        404 answer when there is neither.  *headers* are added to an HTTP
        request (e.g. ``If-None-Match``).
        """
        url = self.page_url(name)
        if not url.startswith("file:"):
            return self.get(url, what=f"project {name}", headers=headers)
        folder = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        given = [] if "/" in name or name.startswith(".") else [folder.parent / name]
        for candidate in [folder, *given]:
            for filename, content_type in (("index.json", JSON_TYPE), ("index.html", "text/html")):
                if (candidate / filename).is_file():
                    body = io.BytesIO()
                    cap = Cap(f"project {name}", self.max_page_bytes)
                    copy_file(open_regular(candidate / filename, cap.what), body, cap)
                    found = httpx.Headers({"content-type": content_type})
                    return Answer(200, found, body.getvalue(), url)
        return Answer(404, httpx.Headers(), b"", url)

    def get(
        self,
        url: str,
        *,
        what: str,
        accept: str = ACCEPT,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """GET *url* (*what* names it in messages), read under the page cap.

        Returns the answer whatever its status, once it is not transient or
        the tries are spent; the caller decides what a status means.
        Raises IndexClientError when the index stays unreachable, for a
        link or redirect the index may not make us follow, and for a body
        past the cap.
        """
        sent = {"Accept": accept, **(headers or {})}

        def once(last: bool) -> Answer:
            with self._stream(url, sent, what) as resp:
                if resp.status_code in TRANSIENT and not last:
                    raise _Retry(f"HTTP {resp.status_code}")
                body = io.BytesIO()
                _copy_response(resp, body, Cap(what, self.max_page_bytes))
                return Answer(resp.status_code, resp.headers, body.getvalue(), str(resp.url))

        return self._tried(url, what, once)

    def download(self, url: str, out: BinaryIO, *, what: str, size: int | None = None) -> str:
        """Copy the file at *url* into *out* (from its start); return its sha256 hex digest.

        *what* names the file in messages; *size*, when the index lists one,
        lowers the cap.  A link the index may not make us follow is refused
        before anything is opened, in the same words whether or not its
        target exists.  Raises IndexClientError for that, for a file past the
        cap, a local file that is not a regular file, an error answer
        (``status`` fact) or a failure that persists after the tries.
        """
        if not link_allowed(self.base_url, url):
            raise refused_link(what, url, self.base_url)
        cap = Cap(what, self.max_bytes, size)
        if url.startswith("file:"):
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
            return copy_file(open_regular(path, what), out, cap)

        def once(_last: bool) -> str:
            out.seek(0)
            out.truncate()
            with self._stream(url, {}, what) as resp:
                if resp.status_code in TRANSIENT:
                    raise _Retry(f"HTTP {resp.status_code}")
                if resp.status_code >= 400:
                    raise refusal(resp.status_code, str(resp.url), what)
                return _copy_response(resp, out, cap)

        return self._tried(url, what, once)

    def _tried(self, url: str, what: str, once: Callable[[bool], _T]) -> _T:
        """``once(last)``, tried again after a transport error or a transient answer.

        Up to :attr:`tries` calls, *backoff* * 2**attempt seconds apart;
        *last* tells the final call it is the last.  Raises IndexClientError
        when the last call fails the same way.
        """
        for attempt in range(self.tries):
            last = attempt + 1 >= self.tries
            try:
                return once(last)
            except (httpx.TransportError, _Retry) as exc:
                if last:
                    raise IndexClientError(
                        f"{what}: request to {redact(url)} failed after {self.tries} tries "
                        f"({_why(exc)}); check the network and the index URL, or retry later",
                        url=redact(url),
                    ) from exc
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _stream(self, url: str, headers: dict[str, str], what: str) -> Iterator[httpx.Response]:
        """A streamed GET of *url*, which (and whose final URL) this index may make us follow.

        A refused link or redirect (``file:`` among them, which httpx cannot
        open anyway) raises the error of :func:`refused_link` before any
        body is read.  httpx errors other than transport ones (too many
        redirects, a malformed URL) raise IndexClientError at once.
        """
        if not link_allowed(self.base_url, url):
            raise refused_link(what, url, self.base_url)
        try:
            with self._client.stream("GET", url, headers=headers) as resp:
                if not link_allowed(self.base_url, str(resp.url)):
                    raise refused_link(what, str(resp.url), self.base_url)
                yield resp
        except httpx.UnsupportedProtocol as exc:
            raise refused_link(what, _target(exc), self.base_url) from exc
        except httpx.TransportError:
            raise
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise IndexClientError(
                f"{what}: request to {redact(url)} failed ({_why(exc)})", url=redact(url)
            ) from exc


def _copy_response(resp: httpx.Response, out: BinaryIO, cap: Cap) -> str:
    """Copy a streamed response body into *out* under *cap*; the sha256 hex digest."""
    length = resp.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap.bytes:
        raise cap.exceeded()
    return copy_chunks(resp.iter_bytes(CHUNK), out, cap)


def _target(exc: httpx.UnsupportedProtocol) -> str:
    """The URL a refused request was for (a redirect's target), or a placeholder."""
    try:
        return str(exc.request.url)
    except RuntimeError:
        return "unknown:"


def _why(exc: Exception) -> str:
    return redact(str(exc)) or type(exc).__name__


class _Retry(IndexClientError):
    """Internal: a transient HTTP status worth another try."""
