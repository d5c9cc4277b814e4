"""What the index serves for each pinned distribution: PEP 691 JSON project pages over HTTP.

:func:`parse_page` and :func:`choose_release` are pure; :class:`IndexLookup`
fetches one page per project (cached, optionally in parallel) and is the
:data:`~fromsource.lockfiles.model.Lookup` the format editors call.
Credentials are sent only to the index's own origin (scheme, host, port);
file URLs handed to the editors never carry credentials.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from packaging.version import InvalidVersion, Version

from fromsource import __version__
from fromsource.dist.names import ProjectName, Sha256, fs_revision, normalize, parse_filename
from fromsource.errors import InvalidDistributionError, LockError
from fromsource.lockfiles.model import IndexFile, Release
from fromsource.verify.fetch import Credentials, OriginAuth

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def index_target(url: str, remediated: bool) -> tuple[str, str]:
    """(root URL, repository) for an ``--index`` URL, without credentials.

    ``http://index.example.invalid/`` names the index root: the ``python`` repository, or
    ``python-all`` (remediated first, then ``python``) with *remediated*.
    ``http://index.example.invalid/<repo>/simple/`` names that repository.  Raises LockError
    for a URL that is not http(s).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LockError("--index: expected an http(s) URL such as https://index.example.invalid/ or "
                        "https://index.example.invalid/python-all/simple/")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host + (f":{parts.port}" if parts.port else "")
    segments = [s for s in parts.path.split("/") if s]
    repo = "python-all" if remediated else "python"
    if len(segments) >= 2 and segments[-1] == "simple":
        repo, segments = segments[-2], segments[:-2]
    path = "/" + "".join(f"{s}/" for s in segments)
    return urlunsplit((parts.scheme, netloc, path, "", "")), repo


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return urlunsplit(parts._replace(fragment=""))
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1], fragment=""))


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_page(page_url: str, document: Mapping[str, Any]) -> list[tuple[Version, IndexFile]]:
    """The usable files of a PEP 691 project page, each with its version.

    Pure.  File URLs are made absolute against *page_url* and lose any user
    info and fragment.  Yanked files (PEP 592), files without a sha256 and
    files that are neither wheels nor sdists are left out.
    """
    found: list[tuple[Version, IndexFile]] = []
    for entry in document.get("files") or []:
        if not isinstance(entry, dict) or entry.get("yanked"):
            continue
        filename, url = entry.get("filename"), entry.get("url")
        digest = (entry.get("hashes") or {}).get("sha256")
        if not isinstance(filename, str) or not isinstance(url, str) or not isinstance(digest, str):
            continue
        try:
            parsed = parse_filename(filename)
        except InvalidDistributionError:
            continue
        size = entry.get("size")
        found.append((parsed.version, IndexFile(
            filename=filename,
            url=_without_credentials(urljoin(page_url, url)),
            sha256=Sha256(digest.lower()),
            kind=parsed.kind,
            size=size if isinstance(size, int) else None,
            upload_time=_time(entry.get("upload-time")),
        )))
    return found


def choose_release(
    name: ProjectName,
    version: str,
    files: Iterable[tuple[Version, IndexFile]],
    *,
    remediated: bool,
    index_url: str,
) -> Release | None:
    """The files to pin for ``name==version``, or None when there are none.

    Pure.  Without *remediated*: the files of exactly that version.  With
    it: the files of the highest ``+fs.N`` of that version's public part
    (the pin may itself be ``X.Y.Z`` or ``X.Y.Z+fs.M``), else, when the
    index has no remediated release of it, exactly that version.
    """
    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    files = list(files)
    chosen: Version | None = None
    if remediated and (wanted.local is None or fs_revision(wanted) is not None):
        revisions = [v for v, _f in files if v.public == wanted.public and fs_revision(v) is not None]
        chosen = max(revisions, key=lambda v: fs_revision(v) or 0, default=None)
    if chosen is None:
        chosen = wanted
    matching = [(v, f) for v, f in files if v == chosen]
    if not matching:
        return None
    picked = sorted((f for _v, f in matching), key=lambda f: f.filename)
    return Release(name, str(matching[0][0]), index_url, tuple(picked))


class IndexLookup:
    """The index's releases for pinned distributions, from its PEP 691 JSON pages.

    Call it as a Lookup: ``lookup(name, version)``.  *url* is ``--index``
    (see :func:`index_target`); *transport* lets tests aim the client at
    anything httpx takes.  Raises LockError when the index refuses the
    credentials (401/403), answers an error, is unreachable or is not a
    PEP 691 index; a project it does not list (404) is simply absent.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        *,
        remediated: bool = False,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.root, self.repo = index_target(url, remediated)
        self.index_url = f"{self.root}{self.repo}/simple/"
        self.remediated = remediated
        parts = urlsplit(self.root)
        origin = (parts.scheme, parts.hostname or "", parts.port)
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            auth=OriginAuth(origin, credentials) if credentials else None,
            headers={"User-Agent": f"fromsource-lock/{__version__}", "Accept": JSON_TYPE},
            transport=transport,
        )
        self._pages: dict[ProjectName, list[tuple[Version, IndexFile]]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __call__(self, name: ProjectName, version: str) -> Release | None:
        """The release to pin for ``name==version`` (see :func:`choose_release`)."""
        files = self._files(normalize(name))
        return choose_release(normalize(name), version, files,
                              remediated=self.remediated, index_url=self.index_url)

    def prefetch(self, names: Iterable[str], workers: int = 8) -> None:
        """Fetch the pages of *names* in parallel (the first LockError is raised)."""
        todo = sorted({normalize(n) for n in names} - set(self._pages))
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            for _ in pool.map(self._files, todo):
                pass

    def _files(self, name: ProjectName) -> list[tuple[Version, IndexFile]]:
        with self._lock:
            if name in self._pages:
                return self._pages[name]
        page_url = f"{self.index_url}{name}/"
        files = self._fetch(page_url)
        with self._lock:
            self._pages[name] = files
        return files

    def _fetch(self, page_url: str) -> list[tuple[Version, IndexFile]]:
        try:
            response = self._client.get(page_url)
        except httpx.HTTPError as exc:
            raise LockError(f"{page_url}: request failed ({exc.__class__.__name__}); check "
                            "--index and that the index is reachable", url=page_url) from exc
        status = response.status_code
        if status == 404:
            return []
        if status == 401:
            raise LockError(
                f"{page_url}: 401, the index wants credentials (none were accepted); pass "
                "--username/--password, set FROMSOURCE_USERNAME/FROMSOURCE_PASSWORD or add "
                "the host to ~/.netrc", url=page_url, status=401)
        if status == 403:
            raise LockError(
                f"{page_url}: 403, the credentials have no access to the {self.repo} "
                f"repository; use a token created with --repo {self.repo}",
                url=page_url, status=403)
        if status >= 400:
            raise LockError(f"{page_url}: the index answered {status}; try again later or ask "
                            "its operator", url=page_url, status=status)
        try:
            document = response.json()
        except ValueError as exc:
            raise LockError(f"{page_url}: not a PEP 691 JSON page; is --index a fromsource "
                            "index?", url=page_url) from exc
        if not isinstance(document, dict):
            raise LockError(f"{page_url}: not a PEP 691 JSON page", url=page_url)
        return parse_page(str(response.url), document)
