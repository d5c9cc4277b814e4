"""Fetch sdists (and bootstrap wheels) from an upstream PEP 503 / PEP 691 index.

The index URL always comes from configuration
(:func:`fromsource.config.upstream_url`).  Pages are asked for as PEP 691
JSON through ``Accept``, with a PEP 503 HTML fallback; both parse to the
same :class:`UpstreamFile` values (see :mod:`fromsource.build.upstream_pages`).  :class:`Upstream` does
the I/O: HTTP(S) with retries, Basic auth from ``user:pass@`` in the base URL
sent only to that origin, an optional ETag page cache and a file cache by
sha256, and ``file://`` indexes read from disk (``<name>/index.json`` or
``<name>/index.html``, the layout pip reads).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any, BinaryIO, Self

import httpx
from packaging.tags import Tag, sys_tags
from packaging.version import Version

from fromsource.build.upstream_pages import (
    SDIST_SUFFIXES,
    UpstreamFile,
    dist_of,
    parse_html_page,
    parse_json_page,
    python_ok,
    redact,
)
from fromsource.config import Settings, upstream_url
from fromsource.errors import HashMismatchError, UpstreamError
from fromsource.names import normalize

__all__ = ["ACCEPT", "Upstream", "UpstreamFile"]

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
)
_TRANSIENT = {429, 500, 502, 503, 504}
_CHUNK = 1 << 16


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
        removed) and renames it into place.  Raises UpstreamError for an
        unsafe filename, a missing digest (unless not *require_hash*) or a
        failure that persists after retries.
        """
        name = file.filename
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
        if file.url.startswith("file:"):
            path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(file.url).path))
            try:
                return _copy(path.open("rb"), out)
            except OSError as exc:
                raise UpstreamError(f"{file.filename}: cannot read {path} ({exc})") from exc
        for attempt in range(self.tries):
            out.seek(0)
            out.truncate()
            digest = hashlib.sha256()
            try:
                with self._client.stream(
                    "GET", file.url, follow_redirects=True, **self._auth_kw
                ) as resp:
                    if resp.status_code in _TRANSIENT:
                        raise _Retry(f"HTTP {resp.status_code}")
                    self._check_status(resp, file.filename)
                    seen = 0
                    for chunk in resp.iter_bytes(_CHUNK):
                        seen += len(chunk)
                        if file.size is not None and seen > file.size:
                            raise UpstreamError(
                                f"{file.filename}: more than the {file.size} bytes the index "
                                "lists; the download was stopped and removed",
                                filename=file.filename,
                            )
                        digest.update(chunk)
                        out.write(chunk)
                return digest.hexdigest()
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

    def _check_status(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code == 404:
            raise UpstreamError(
                f"{what} not found on {redact(self.base_url)} (404); check the name "
                "and the upstream index setting",
                status=404,
            )
        if resp.status_code in (401, 403):
            raise UpstreamError(
                f"{what}: the upstream index refused access ({resp.status_code}); put "
                "credentials in the upstream URL (user:token@ before the host)",
                status=resp.status_code,
            )
        if resp.status_code >= 400:
            raise UpstreamError(
                f"{what}: the upstream index answered {resp.status_code}; retry later",
                status=resp.status_code,
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
        resp = self._get(page_url, headers, name)
        if resp.status_code == 304 and cached is not None and body_path is not None:
            try:
                return cached["content_type"], body_path.read_bytes(), cached["url"]
            except OSError:  # the body went missing: ask again without the ETag
                headers.pop("If-None-Match")
                resp = self._get(page_url, headers, name)
        self._check_status(resp, f"project {name}")
        content_type = resp.headers.get("content-type", "text/html")
        etag = resp.headers.get("etag")
        if etag and meta_path is not None and body_path is not None:
            meta = {"etag": etag, "content_type": content_type, "url": str(resp.url)}
            _write_atomic(body_path, resp.content)
            _write_atomic(meta_path, json.dumps(meta).encode())
        return content_type, resp.content, str(resp.url)

    def _get(self, url: str, headers: dict[str, str], what: str) -> httpx.Response:
        for attempt in range(self.tries):
            try:
                resp = self._client.get(
                    url, headers=headers, follow_redirects=True, **self._auth_kw
                )
            except httpx.TransportError as exc:
                if attempt + 1 >= self.tries:
                    raise UpstreamError(
                        f"project {what}: {redact(url)} unreachable after {self.tries} "
                        f"tries ({_why(exc)}); check the network and the upstream setting",
                        project=what,
                    ) from exc
            else:
                if resp.status_code not in _TRANSIENT or attempt + 1 >= self.tries:
                    return resp
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _file_page(self, name: str, page_url: str) -> list[UpstreamFile]:
        folder = Path(urllib.request.url2pathname(urllib.parse.urlsplit(page_url).path))
        for candidate in (folder, folder.parent / name):
            if (candidate / "index.json").is_file():
                return parse_json_page((candidate / "index.json").read_bytes(), page_url)
            if (candidate / "index.html").is_file():
                text = (candidate / "index.html").read_text("utf-8", "replace")
                return parse_html_page(text, page_url)
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


def _copy(src: BinaryIO, out: BinaryIO) -> str:
    """Copy *src* (closed afterwards) into *out*; return the sha256 hex digest."""
    digest = hashlib.sha256()
    with src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


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
