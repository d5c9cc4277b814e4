"""Fetch sdists (and bootstrap wheels) from an upstream PEP 503 / PEP 691 index.

The index URL always comes from configuration
(:func:`fromsource.config.upstream_url`).  :class:`Upstream` talks to it
through :class:`~fromsource.indexclient.IndexClient` (credentials bound to
the index's origin, retries, caps, the link rules of issue 18, ``file://``
indexes) and its pages parse to :class:`~fromsource.indexclient.ProjectFile`
values.  What this module adds is the builder's view: an optional ETag page
cache and a file cache by sha256, the choice of sdist or wheel for a
release, checked downloads into a folder, and every failure as an
:class:`~fromsource.errors.UpstreamError`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Self, Unpack

import httpx
from packaging.tags import Tag, sys_tags
from packaging.version import Version

from fromsource.build.upstream_pages import SDIST_SUFFIXES, dist_of, python_ok
from fromsource.config import Settings, upstream_url
from fromsource.dist.names import normalize
from fromsource.errors import HashMismatchError, IndexClientError, UpstreamError
from fromsource.indexclient import (
    Answer,
    ClientOptions,
    IndexClient,
    ProjectFile,
    link_allowed,
    parse_page,
    redact,
    refused_link,
)
from fromsource.indexclient.transfer import copy_file

__all__ = ["Upstream", "upstream_error"]

_ADVICE = {
    401: "put credentials in the upstream URL (user:token@ before the host)",
    403: "put credentials with access in the upstream URL (user:token@ before the host)",
    404: "check the name and the upstream index setting",
}


def upstream_error(exc: IndexClientError, advice: str = "") -> UpstreamError:
    """*exc* (from the index client) as the builder's UpstreamError, facts kept.

    The ``category`` is ``not-found`` for a 404, else ``upstream-error``;
    *advice* (what to do next) is appended to the message.
    """
    facts = dict(exc.facts)
    facts.setdefault("category", "not-found" if facts.get("status") == 404 else "upstream-error")
    message = f"{exc.message}; {advice}" if advice else exc.message
    return UpstreamError(message, **facts)


@contextmanager
def _as_upstream_error() -> Iterator[None]:
    try:
        yield
    except IndexClientError as exc:
        raise upstream_error(exc) from exc


class Upstream:
    """An upstream simple index: project pages, sdists and bootstrap wheels.

    *base_url* is the index root (``.../simple/``); ``user:pass@`` in it
    becomes Basic auth for that origin only, never sent to other hosts.
    ``file://`` roots are read from disk.  *cache_dir* keeps pages
    (revalidated by ETag) and files (by sha256).  Transient failures
    (connection errors, 429, 5xx) are tried *tries* times with exponential
    *backoff* seconds.  A project's parsed page is reused for *page_ttl*
    seconds, so one build asks for it once.  A file larger than
    *max_bytes*, or a page larger than *max_page_bytes*, is refused
    (UpstreamError) as soon as the cap is passed.  These and the other
    *options* (*timeout*, 60 s here; *transport* for tests) are those of
    :class:`~fromsource.indexclient.IndexClient`.
    """

    def __init__(
        self,
        base_url: str,
        cache_dir: Path | None = None,
        *,
        page_ttl: float = 60.0,
        **options: Unpack[ClientOptions],
    ) -> None:
        options.setdefault("timeout", 60.0)
        self.client = IndexClient(base_url, **options)
        self.base_url = self.client.base_url
        self.cache_dir = cache_dir
        self.page_ttl = page_ttl
        self._pages: dict[str, tuple[float, list[ProjectFile]]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Self:
        """The upstream named by *settings* (or pip's configuration)."""
        return cls(upstream_url(settings), **kwargs)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pages ---------------------------------------------------------------------

    def project_files(self, name: str) -> list[ProjectFile]:
        """Every file the index lists for project *name*, in page order.

        Raises UpstreamError when the project is unknown or the index fails.
        """
        key = normalize(name)
        memo = self._pages.get(key)
        if memo is not None and time.monotonic() - memo[0] < self.page_ttl:
            return list(memo[1])
        answer = self._fetch_page(name)
        with _as_upstream_error():
            files = list(parse_page(answer.body, answer.content_type, answer.url).files)
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

    def find_sdist(self, name: str, version: str | Version) -> ProjectFile:
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

        def rank(f: ProjectFile) -> tuple[bool, int]:
            ext = next(i for i, s in enumerate(SDIST_SUFFIXES) if f.filename.lower().endswith(s))
            return f.yanked, ext

        return min(found, key=rank)

    def find_wheel(
        self, name: str, version: str | Version, tags: Iterable[Tag] | None = None
    ) -> ProjectFile:
        """The wheel of *name* *version* best matching *tags* (default: this
        interpreter's, most specific first), for bootstrapping build deps.

        Raises UpstreamError when no wheel matches.
        """
        order = {tag: i for i, tag in enumerate(tags if tags is not None else sys_tags())}
        wanted = Version(str(version))
        best: tuple[tuple[bool, int], ProjectFile] | None = None
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

    def download(self, file: ProjectFile, dest_dir: Path, *, require_hash: bool = True) -> Path:
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
        if not link_allowed(self.base_url, file.url):  # even when the cache holds the digest
            raise upstream_error(refused_link(name, file.url, self.base_url))
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
                digest = self._from_cache(file, out)
                if digest is None:
                    with _as_upstream_error():
                        digest = self.client.download(file.url, out, what=name, size=file.size)
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

    def _from_cache(self, file: ProjectFile, out: BinaryIO) -> str | None:
        """Copy *file* from the file cache; None (and a clean *out*) on a miss."""
        if self.cache_dir is None or file.sha256 is None:
            return None
        cached = self.cache_dir / "files" / file.sha256
        try:
            digest = copy_file(cached.open("rb"), out)
        except OSError:
            digest = None
        if digest != file.sha256:  # missing or damaged: drop it, fetch again
            cached.unlink(missing_ok=True)
            out.seek(0)
            out.truncate()
            return None
        return digest

    def _store_file(self, path: Path, digest: str) -> None:
        if self.cache_dir is None:
            return
        target = self.cache_dir / "files" / digest
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # A name of its own: two threads of one process may store the same file (the
            # two independent builds of one release download its sdist at once, issue 17).
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{digest}.", suffix=".part")
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)

    # -- the page cache ------------------------------------------------------------

    def _fetch_page(self, name: str) -> Answer:
        """Project *name*'s page (a 2xx answer), revalidated from the cache by ETag.

        Raises UpstreamError for any other answer.
        """
        meta_path = body_path = None
        cached: dict[str, str] | None = None
        headers: dict[str, str] = {}
        if self.cache_dir is not None:
            meta_path = self.cache_dir / "pages" / f"{normalize(name)}.json"
            body_path = meta_path.with_suffix(".body")
            try:
                cached = json.loads(meta_path.read_text())
                headers["If-None-Match"] = cached["etag"]
            except (OSError, ValueError, KeyError, TypeError):
                cached = None
        with _as_upstream_error():
            answer = self.client.page(name, headers)
            if answer.status == 304 and cached is not None and body_path is not None:
                try:
                    body = body_path.read_bytes()
                    found = httpx.Headers({"content-type": cached["content_type"]})
                    return Answer(200, found, body, cached["url"])
                except OSError:  # the body went missing: ask again without the ETag
                    answer = self.client.page(name)
        if not 200 <= answer.status < 300:
            raise self._refused(answer, name)
        etag = answer.headers.get("etag")
        if etag and meta_path is not None and body_path is not None:
            meta = {"etag": etag, "content_type": answer.content_type, "url": answer.url}
            _write_atomic(body_path, answer.body)
            _write_atomic(meta_path, json.dumps(meta).encode())
        return answer

    def _refused(self, answer: Answer, name: str) -> UpstreamError:
        advice = _ADVICE.get(answer.status, "retry later")
        if answer.status == 404 and self.base_url.startswith("file:"):
            advice = (
                f"a file:// upstream must be a simple index with {normalize(name)}/index.html "
                "(or index.json)"
            )
        return upstream_error(answer.refusal(f"project {name}"), advice)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
