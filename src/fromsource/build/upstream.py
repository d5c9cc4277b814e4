"""Fetch sdists (and bootstrap wheels) from an upstream PEP 503 / PEP 691 index.

The index URL always comes from configuration
(:func:`fromsource.config.upstream_url`).  Pages are asked for as PEP 691
JSON through ``Accept``, with a PEP 503 HTML fallback; both parse to the
same :class:`UpstreamFile` values (see :mod:`fromsource.build.upstream_pages`).  :class:`Upstream` does
the I/O: HTTP(S) with retries, Basic auth from ``user:pass@`` in the base URL
sent only to that origin, an optional ETag page cache and a file cache by
sha256, and ``file://`` indexes read from disk (``<name>/index.json`` or
``<name>/index.html``, the layout pip reads).

What a page links to is untrusted (issue 18): a link is followed only when
:func:`~fromsource.build.upstream_pages.link_allowed` says its scheme fits the
index's (``file:`` links only from a ``file:`` index), redirects to another
scheme are refused the same way, every page and file is read under a byte
cap, and local files are opened without following a final symlink and only
when they are regular files.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Self

import httpx
from packaging.tags import Tag, sys_tags
from packaging.version import Version

from fromsource.build.upstream_pages import (
    SDIST_SUFFIXES,
    UpstreamFile,
    dist_of,
    link_allowed,
    parse_html_page,
    parse_json_page,
    python_ok,
    redact,
    refused_link,
)
from fromsource.config import Settings, upstream_url
from fromsource.dist.names import normalize
from fromsource.errors import HashMismatchError, UpstreamError

__all__ = ["ACCEPT", "MAX_DOWNLOAD_BYTES", "MAX_PAGE_BYTES", "Upstream", "UpstreamFile"]

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)
_TRANSIENT = {429, 500, 502, 503, 504}
_CHUNK = 1 << 16
_MIB = 1 << 20
MAX_DOWNLOAD_BYTES = 1024 * _MIB
"""Default cap on one downloaded file (sdist or build-dependency wheel): the
unpacker's limit on an sdist's whole content (``UnpackLimits.max_total_bytes``)."""
MAX_PAGE_BYTES = 64 * _MIB
"""Default cap on one project page (the largest public pages are a few MB)."""


class _OriginAuth(httpx.Auth):
    """Basic auth added only to requests for one origin (scheme, host, port)."""

    def __init__(self, origin: tuple[str, str, int | None], user: str, password: str) -> None:
        self.origin = origin
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._header = f"Basic {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url = request.url
        if (url.scheme, url.host, url.port) == self.origin:
            request.headers["Authorization"] = self._header
        yield request


class Upstream:
    """An upstream simple index: project pages, sdists and bootstrap wheels.

    *base_url* is the index root (``.../simple/``); ``user:pass@`` in it
    becomes Basic auth for that origin only, never sent to other hosts
    (httpx also drops it on cross-origin redirects).  ``file://`` roots are
    read from disk.  *cache_dir* keeps pages (revalidated by ETag) and files
    (by sha256).  Transient failures (connection errors, 429, 5xx) are tried
    *tries* times with exponential *backoff* seconds.  A project's parsed
    page is reused for *page_ttl* seconds, so one build asks for it once.
    A file larger than *max_bytes*, or a page larger than *max_page_bytes*,
    is refused (UpstreamError) as soon as the cap is passed.
    """

    def __init__(
        self,
        base_url: str,
        client: httpx.Client | None = None,
        cache_dir: Path | None = None,
        *,
        timeout: float = 60.0,
        tries: int = 3,
        backoff: float = 0.5,
        page_ttl: float = 60.0,
        max_bytes: int = MAX_DOWNLOAD_BYTES,
        max_page_bytes: int = MAX_PAGE_BYTES,
    ) -> None:
        url = httpx.URL(base_url if base_url.endswith("/") else base_url + "/")
        # Only when credentials are given do we override the client's own auth.
        self._auth_kw: dict[str, Any] = {}
        if url.username or url.password:
            origin = (url.scheme, url.host, url.port)
            self._auth_kw["auth"] = _OriginAuth(origin, url.username, url.password)
            url = url.copy_with(username=None, password=None)
        self.base_url = str(url)
        self.cache_dir = cache_dir
        self.tries, self.backoff = max(1, tries), backoff
        self.page_ttl = page_ttl
        self.max_bytes, self.max_page_bytes = max_bytes, max_page_bytes
        self._pages: dict[str, tuple[float, list[UpstreamFile]]] = {}
        self._owns = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=True)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Self:
        """The upstream named by *settings* (or pip's configuration)."""
        return cls(upstream_url(settings), **kwargs)

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pages ---------------------------------------------------------------------

    def project_files(self, name: str) -> list[UpstreamFile]:
        """Every file the index lists for project *name*, in page order.

        Raises UpstreamError when the project is unknown or the index fails.
        """
        key = normalize(name)
        memo = self._pages.get(key)
        if memo is not None and time.monotonic() - memo[0] < self.page_ttl:
            return list(memo[1])
        page_url = self.base_url + key + "/"
        if page_url.startswith("file:"):
            files = self._file_page(name, page_url)
        else:
            content_type, body, final_url = self._fetch_page(name, page_url)
            if "json" in content_type:
                files = parse_json_page(body, final_url)
            else:
                files = parse_html_page(body.decode("utf-8", "replace"), final_url)
        self._pages[key] = (time.monotonic(), files)
        return list(files)

    def versions(
        self, name: str, *, prereleases: bool = False, yanked: bool = False
    ) -> list[Version]:
        """The versions *name* has files for, ascending; final releases only
        unless *prereleases*, and without yanked files unless *yanked*."""
        found = set()
        for file in self.project_files(name):
            dist = dist_of(file, name)
            if dist is None or (file.yanked and not yanked):
                continue
            if dist.version.is_prerelease and not prereleases:
                continue
            found.add(dist.version)
        return sorted(found)

    def latest_version(
        self,
        name: str,
        python_version: str | None = None,
        *,
        prereleases: bool = False,
        require_sdist: bool = True,
    ) -> Version:
        """The newest non-yanked version of *name* with a file usable here.

        With *require_sdist* (the default, as fromsource builds from source)
        only versions with an sdist count; *python_version* ("3.11") skips
        files whose Requires-Python excludes it.  UpstreamError when none.
        """
        best: Version | None = None
        for file in self.project_files(name):
            dist = dist_of(file, name)
            if dist is None or file.yanked or (require_sdist and dist.kind != "sdist"):
                continue
            if (dist.version.is_prerelease and not prereleases) or not python_ok(
                file, python_version
            ):
                continue
            best = dist.version if best is None else max(best, dist.version)
        if best is None:
            what = "an sdist" if require_sdist else "files"
            py = f" for Python {python_version}" if python_version else ""
            raise UpstreamError(
                f"no release of {name} with {what}{py} on {redact(self.base_url)}; "
                "pin a version or check the upstream index setting",
                project=name,
            )
        return best

    def find_sdist(self, name: str, version: str | Version) -> UpstreamFile:
        """The sdist of *name* *version* (non-yanked and .tar.gz preferred).

        Raises UpstreamError when the release has no sdist.
        """
        wanted = Version(str(version))
        found = []
        for file in self.project_files(name):
            dist = dist_of(file, name)
            if dist is not None and dist.kind == "sdist" and dist.version == wanted:
                found.append(file)
        if not found:
            raise UpstreamError(
                f"no sdist for {name} {version} on {redact(self.base_url)}; "
                "fromsource builds only from source",
                project=name,
                version=str(version),
            )

        def rank(f: UpstreamFile) -> tuple[bool, int]:
            ext = next(i for i, s in enumerate(SDIST_SUFFIXES) if f.filename.lower().endswith(s))
            return f.yanked, ext

        return min(found, key=rank)

    def find_wheel(
        self, name: str, version: str | Version, tags: Iterable[Tag] | None = None
    ) -> UpstreamFile:
        """The wheel of *name* *version* best matching *tags* (default: this
        interpreter's, most specific first), for bootstrapping build deps.

        Raises UpstreamError when no wheel matches.
        """
        order = {tag: i for i, tag in enumerate(tags if tags is not None else sys_tags())}
        wanted = Version(str(version))
        best: tuple[tuple[bool, int], UpstreamFile] | None = None
        for file in self.project_files(name):
            dist = dist_of(file, name)
            if dist is None or dist.kind != "wheel" or dist.version != wanted:
                continue
            ranks = [order[t] for t in dist.tags if t in order]
            if ranks and (best is None or (file.yanked, min(ranks)) < best[0]):
                best = ((file.yanked, min(ranks)), file)
        if best is None:
            raise UpstreamError(
                f"no wheel of {name} {version} for this interpreter on "
                f"{redact(self.base_url)}; build it from source first",
                project=name,
                version=str(version),
            )
        return best[1]

    # -- files ---------------------------------------------------------------------

    def download(self, file: UpstreamFile, dest_dir: Path, *, require_hash: bool = True) -> Path:
        """Download *file* into *dest_dir*; return the path of the checked file.

        Streams to a temporary file beside the target, checks the sha256
        against the index's (HashMismatchError with both digests; the file is
        removed) and renames it into place.  Raises UpstreamError for a link
        this index may not follow (refused before anything is opened, in the
        same words whether or not the target exists), an unsafe filename, a
        missing digest (unless not *require_hash*), a file past the size cap,
        a local file that is not a regular file, or a failure that persists
        after retries.
        """
        name = file.filename
        if not link_allowed(self.base_url, file.url):
            raise refused_link(name, file.url, self.base_url)
        if not name or name.startswith(".") or "/" in name or "\\" in name:
            raise UpstreamError(f"{name!r}: unsafe filename from the upstream index; not fetched")
        if file.sha256 is None and require_hash:
            raise UpstreamError(
                f"{name}: the upstream index gives no sha256, so it cannot be checked; "
                "use an index that lists sha256 digests",
                filename=name,
            )
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / name
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w+b") as out:
                digest = self._from_cache(file, out) or self._fetch_file(file, out)
            if file.sha256 is not None and digest != file.sha256:
                raise HashMismatchError(
                    f"{name} from {redact(file.url)}: sha256 is {digest} but the index says "
                    f"{file.sha256}; the download was removed, retry or check the upstream",
                    filename=name,
                    expected=file.sha256,
                    actual=digest,
                )
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._store_file(target, digest)
        return target

    def _from_cache(self, file: UpstreamFile, out: BinaryIO) -> str | None:
        """Copy *file* from the file cache; None (and a clean *out*) on a miss."""
        if self.cache_dir is None or file.sha256 is None:
            return None
        cached = self.cache_dir / "files" / file.sha256
        try:
            digest = _copy(cached.open("rb"), out)
        except OSError:
            digest = None
        if digest != file.sha256:  # missing or damaged: drop it, fetch again
            cached.unlink(missing_ok=True)
            out.seek(0)
            out.truncate()
            return None
        return digest

    def _fetch_file(self, file: UpstreamFile, out: BinaryIO) -> str:
        cap = _Cap(file.filename, self.max_bytes, file.size)
        if file.url.startswith("file:"):  # only reached from a file: index (link_allowed)
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(file.url).path))
            return _copy(_open_regular(path, file.filename), out, cap)
        for attempt in range(self.tries):
            out.seek(0)
            out.truncate()
            try:
                with self._stream(file.url, {}, file.filename) as resp:
                    if resp.status_code in _TRANSIENT:
                        raise _Retry(f"HTTP {resp.status_code}")
                    self._check_status(resp.status_code, file.filename)
                    return _copy_response(resp, out, cap)
            except (httpx.TransportError, _Retry) as exc:
                if attempt + 1 >= self.tries:
                    raise UpstreamError(
                        f"{file.filename}: download from {redact(file.url)} failed "
                        f"after {self.tries} tries ({_why(exc)}); retry later",
                        filename=file.filename,
                    ) from exc
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- plumbing ------------------------------------------------------------------

    @contextmanager
    def _stream(self, url: str, headers: dict[str, str], what: str) -> Iterator[httpx.Response]:
        """A streamed GET of *url* whose final URL (after redirects) this index may follow.

        A redirect to a scheme :func:`link_allowed` refuses (``file:`` among
        them, which httpx cannot open anyway) raises the same UpstreamError
        as such a link on a page, before any body is read.
        """
        try:
            with self._client.stream(
                "GET", url, headers=headers, follow_redirects=True, **self._auth_kw
            ) as resp:
                if not link_allowed(self.base_url, str(resp.url)):
                    raise refused_link(what, str(resp.url), self.base_url)
                yield resp
        except httpx.UnsupportedProtocol as exc:
            raise refused_link(what, _target(exc), self.base_url) from exc

    def _check_status(self, status: int, what: str) -> None:
        if status == 404:
            raise UpstreamError(
                f"{what} not found on {redact(self.base_url)} (404); check the name "
                "and the upstream index setting",
                status=404,
            )
        if status in (401, 403):
            raise UpstreamError(
                f"{what}: the upstream index refused access ({status}); put "
                "credentials in the upstream URL (user:token@ before the host)",
                status=status,
            )
        if status >= 400:
            raise UpstreamError(
                f"{what}: the upstream index answered {status}; retry later",
                status=status,
            )

    def _fetch_page(self, name: str, page_url: str) -> tuple[str, bytes, str]:
        """(content type, body, final URL) of a project page, via the cache."""
        meta_path = body_path = None
        cached: dict[str, str] | None = None
        headers = {"Accept": ACCEPT}
        if self.cache_dir is not None:
            meta_path = self.cache_dir / "pages" / f"{normalize(name)}.json"
            body_path = meta_path.with_suffix(".body")
            try:
                cached = json.loads(meta_path.read_text())
                headers["If-None-Match"] = cached["etag"]
            except (OSError, ValueError, KeyError, TypeError):
                cached = None
        answer = self._get(page_url, headers, name)
        if answer.status == 304 and cached is not None and body_path is not None:
            try:
                return cached["content_type"], body_path.read_bytes(), cached["url"]
            except OSError:  # the body went missing: ask again without the ETag
                headers.pop("If-None-Match")
                answer = self._get(page_url, headers, name)
        self._check_status(answer.status, f"project {name}")
        content_type = answer.headers.get("content-type", "text/html")
        etag = answer.headers.get("etag")
        if etag and meta_path is not None and body_path is not None:
            meta = {"etag": etag, "content_type": content_type, "url": answer.url}
            _write_atomic(body_path, answer.body)
            _write_atomic(meta_path, json.dumps(meta).encode())
        return content_type, answer.body, answer.url

    def _get(self, url: str, headers: dict[str, str], what: str) -> _Answer:
        for attempt in range(self.tries):
            try:
                with self._stream(url, headers, f"project {what}") as resp:
                    if resp.status_code not in _TRANSIENT or attempt + 1 >= self.tries:
                        body = io.BytesIO()
                        _copy_response(resp, body, _Cap(f"project {what}", self.max_page_bytes))
                        return _Answer(
                            resp.status_code, resp.headers, body.getvalue(), str(resp.url)
                        )
            except httpx.TransportError as exc:
                if attempt + 1 >= self.tries:
                    raise UpstreamError(
                        f"project {what}: {redact(url)} unreachable after {self.tries} "
                        f"tries ({_why(exc)}); check the network and the upstream setting",
                        project=what,
                    ) from exc
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _file_page(self, name: str, page_url: str) -> list[UpstreamFile]:
        folder = Path(urllib.request.url2pathname(urllib.parse.urlsplit(page_url).path))
        for candidate in (folder, folder.parent / name):
            for page, parse in (("index.json", parse_json_page), ("index.html", _parse_html)):
                if (candidate / page).is_file():
                    body = io.BytesIO()
                    cap = _Cap(f"project {name}", self.max_page_bytes)
                    _copy(_open_regular(candidate / page, cap.what), body, cap)
                    return parse(body.getvalue(), page_url)
        raise UpstreamError(
            f"project {name} not found under {self.base_url}: a file:// upstream must be a "
            f"simple index with {normalize(name)}/index.html (or index.json)",
            project=name,
        )

    def _store_file(self, path: Path, digest: str) -> None:
        if self.cache_dir is None:
            return
        target = self.cache_dir / "files" / digest
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{digest}.{os.getpid()}.part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)


@dataclass(frozen=True)
class _Answer:
    """A page response, read (under the page cap) and closed."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: str


def _parse_html(data: bytes, page_url: str) -> list[UpstreamFile]:
    return parse_html_page(data.decode("utf-8", "replace"), page_url)


@dataclass(frozen=True)
class _Cap:
    """How many bytes one download of *what* may hold: the *limit*, or fewer when *listed*."""

    what: str
    limit: int
    listed: int | None = None

    @property
    def bytes(self) -> int:
        return self.limit if self.listed is None else min(self.limit, self.listed)

    def exceeded(self) -> UpstreamError:
        if self.listed is not None and self.listed < self.limit:
            why = f"more than the {self.listed} bytes the index lists"
        else:
            why = f"larger than the {self.limit}-byte limit for one download"
        return UpstreamError(
            f"{self.what}: {why}; the download was stopped and removed",
            category="upstream-error",
            limit=self.bytes,
        )


def _open_regular(path: Path, what: str) -> BinaryIO:
    """*path* opened for reading when it is a regular file (not a final symlink, FIFO or device).

    ``O_NONBLOCK`` keeps a FIFO from blocking the open; the type is checked
    on the open descriptor, so nothing can swap the file in between.
    Raises UpstreamError otherwise.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UpstreamError(
            f"{what}: cannot open {path} ({exc.strerror}; a symbolic link is not followed)",
            category="upstream-error",
        ) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UpstreamError(
            f"{what}: {path} is not a regular file; it was not read", category="upstream-error"
        )
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _copy(src: BinaryIO, out: BinaryIO, cap: _Cap | None = None) -> str:
    """Copy *src* (closed afterwards) into *out*; return the sha256 hex digest.

    UpstreamError as soon as *src* holds more than the *cap* allows.
    """
    with src:
        return _copy_chunks(iter(lambda: src.read(_CHUNK), b""), out, cap)


def _copy_response(resp: httpx.Response, out: BinaryIO, cap: _Cap) -> str:
    """Copy a streamed response body into *out* under *cap*; the sha256 hex digest."""
    length = resp.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap.bytes:
        raise cap.exceeded()
    return _copy_chunks(resp.iter_bytes(_CHUNK), out, cap)


def _copy_chunks(chunks: Iterable[bytes], out: BinaryIO, cap: _Cap | None) -> str:
    digest = hashlib.sha256()
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if cap is not None and seen > cap.bytes:
            raise cap.exceeded()
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


def _target(exc: httpx.UnsupportedProtocol) -> str:
    """The URL a refused request was for (a redirect's target), or a placeholder."""
    try:
        return str(exc.request.url)
    except RuntimeError:
        return "unknown:"


def _why(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


class _Retry(Exception):
    """Internal: a transient HTTP status worth another try."""


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
