"""What the index serves for each pinned distribution: PEP 691 JSON project pages over HTTP.

:func:`pinnable_files` and :func:`choose_release` are pure; :class:`IndexLookup`
fetches one page per project (cached, optionally in parallel) through
:class:`~fromsource.indexclient.IndexClient` and is the
:data:`~fromsource.lockfiles.model.Lookup` the format editors call.
Credentials are sent only to the index's own origin (scheme, host, port);
file URLs handed to the editors never carry credentials.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Self

import httpx
from packaging.version import InvalidVersion, Version

from fromsource.dist.names import ProjectName, fs_revision, normalize, parse_filename
from fromsource.errors import IndexClientError, InvalidDistributionError, LockError
from fromsource.indexclient import (
    CREDENTIALS_HINT,
    JSON_TYPE,
    Credentials,
    IndexClient,
    ProjectPage,
    parse_json_page,
    redact,
    split_index_url,
)
from fromsource.lockfiles.model import IndexFile, Release


def index_target(url: str, remediated: bool) -> tuple[str, str]:
    """(root URL, repository) for an ``--index`` URL, without credentials.

    ``http://index.example.invalid/`` names the index root: the ``python`` repository, or
    ``python-all`` (remediated first, then ``python``) with *remediated*.
    ``http://index.example.invalid/<repo>/simple/`` names that repository.  Raises
    IndexClientError for a URL that is not http(s).
    """
    parsed = split_index_url(url)
    return parsed.root, parsed.repo or ("python-all" if remediated else "python")


def pinnable_files(page: ProjectPage) -> list[tuple[Version, IndexFile]]:
    """The files of *page* a lock may pin, each with its version.

    Pure.  Yanked files (PEP 592), files without a sha256 and files that are
    neither wheels nor sdists are left out; URLs lose any user info.
    """
    found: list[tuple[Version, IndexFile]] = []
    for file in page.files:
        if file.yanked or file.sha256 is None:
            continue
        try:
            parsed = parse_filename(file.filename)
        except InvalidDistributionError:
            continue
        found.append(
            (
                parsed.version,
                IndexFile(
                    filename=file.filename,
                    url=redact(file.url),
                    sha256=file.sha256,
                    kind=parsed.kind,
                    size=file.size,
                    upload_time=file.upload_time,
                ),
            )
        )
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
        revisions = [
            v for v, _f in files if v.public == wanted.public and fs_revision(v) is not None
        ]
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
        self._client = IndexClient(
            self.root, credentials, timeout=timeout, agent="fromsource-lock", transport=transport
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
        return choose_release(
            normalize(name), version, files, remediated=self.remediated, index_url=self.index_url
        )

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
        files = self._fetch(name)
        with self._lock:
            self._pages[name] = files
        return files

    def _fetch(self, name: ProjectName) -> list[tuple[Version, IndexFile]]:
        what = f"project {name}"
        try:
            answer = self._client.get(f"{self.index_url}{name}/", what=what, accept=JSON_TYPE)
        except IndexClientError as exc:
            raise _lock_error(exc, "check --index and that the index is reachable") from exc
        if answer.status == 404:
            return []
        if answer.status == 401:
            raise _lock_error(answer.refusal(what), CREDENTIALS_HINT)
        if answer.status == 403:
            raise _lock_error(answer.refusal(what), f"use a token created with --repo {self.repo}")
        if answer.status >= 400:
            raise _lock_error(answer.refusal(what), "try again later or ask its operator")
        try:
            page = parse_json_page(answer.body, answer.url)
        except IndexClientError as exc:
            raise _lock_error(exc, "is --index a fromsource index?") from exc
        return pinnable_files(page)


def _lock_error(exc: IndexClientError, advice: str) -> LockError:
    """*exc* as the lock's error, with what to do next; its facts kept."""
    return LockError(f"{exc.message}; {advice}", **exc.facts)
