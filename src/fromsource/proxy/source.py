"""The upstream behind ``python-upstream``: its pages, kept a while, and its files, kept for good.

:class:`UpstreamProxy` reads the configured upstream index through the one
index client (:class:`~fromsource.indexclient.IndexClient`: credentials
bound to its origin, retries, caps, the link rules).  A project page is
kept ``page_ttl`` seconds (a missing project too; a failure a shorter
while, so a broken upstream does not slow every request), at most
``max_pages`` of them, least recently used dropped first.  A file is
downloaded on its first request, checked against the sha256 the page
lists, stored as a blob and recorded as a ``files`` row of
``python-upstream`` (its upstream upload time kept, for the cooldown), so
every later request is answered from the blob store.  Recording such a row
does not move the change counter: fetching a file changes no page.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import tempfile
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Unpack

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fromsource.config import UPSTREAM_REPOSITORY
from fromsource.dist.names import ProjectName, Sha256, normalize
from fromsource.errors import HashMismatchError, IndexClientError
from fromsource.indexclient import ClientOptions, IndexClient, ProjectFile, parse_page, redact
from fromsource.proxy.offers import Offer
from fromsource.store.blobs import BlobStore
from fromsource.store.catalog import FileInfo
from fromsource.store.db import Database
from fromsource.store.models import FileRow

__all__ = ["ERROR_TTL", "UpstreamPage", "UpstreamProxy"]

ERROR_TTL = 15.0
"""Seconds a failed page fetch is remembered (at most the page TTL) before it is tried again."""

_log = logging.getLogger(__name__)
_serials = itertools.count(1)


@dataclass(frozen=True)
class UpstreamPage:
    """One fetch of a project's upstream page.

    *files* is None when the upstream has no such project (404 or 410);
    *error* says why the fetch failed (then *files* is None too).  *serial*
    is unique per fetch, so what is derived from a page can be cached by it.
    """

    project: ProjectName
    files: tuple[ProjectFile, ...] | None
    fetched: float
    serial: int
    error: str | None = None


class _KeyedLocks:
    """One lock per key, made on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class UpstreamProxy:
    """Pages and files of the upstream index at *base_url*, for ``python-upstream``.

    *db* and *blobs* are where fetched files go; *clock* (monotonic seconds)
    times the page cache.  The other *options* are the index client's
    (tests pass a *transport*); a request is tried twice by default, so a
    failing upstream costs a request little time.  :attr:`counts` holds
    what this process fetched, for ``/metrics``.
    """

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        base_url: str,
        *,
        page_ttl: float = 300.0,
        max_pages: int = 2000,
        clock: Callable[[], float] = time.monotonic,
        **options: Unpack[ClientOptions],
    ) -> None:
        options.setdefault("tries", 2)
        options.setdefault("backoff", 0.2)
        options.setdefault("timeout", 30.0)
        options.setdefault("agent", "fromsource-proxy")
        self.client = IndexClient(base_url, **options)
        self.db = db
        self.blobs = blobs
        self.page_ttl = page_ttl
        self.max_pages = max(1, max_pages)
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._pages: OrderedDict[str, UpstreamPage] = OrderedDict()
        self._guard = threading.Lock()
        self._page_locks = _KeyedLocks()
        self._file_locks = _KeyedLocks()

    @property
    def description(self) -> str:
        """The upstream's URL, without credentials."""
        return redact(self.client.base_url)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    # -- pages -------------------------------------------------------------------------

    def peek(self, project: str) -> UpstreamPage | None:
        """The page last fetched for *project*, however old, without asking the upstream."""
        with self._guard:
            return self._pages.get(normalize(project))

    def page(self, project: str) -> UpstreamPage:
        """*project*'s upstream page, fetched when the kept one is older than the TTL.

        A failure is an :class:`UpstreamPage` with *error* set (kept
        :data:`ERROR_TTL` seconds), never an exception.
        """
        name = normalize(project)
        kept = self._fresh(name)
        if kept is not None:
            return kept
        with self._page_locks.hold(name):
            kept = self._fresh(name)  # another request fetched it while this one waited
            if kept is not None:
                return kept
            page = self._fetch_page(name)
            with self._guard:
                self._pages[name] = page
                self._pages.move_to_end(name)
                while len(self._pages) > self.max_pages:
                    self._pages.popitem(last=False)
            return page

    def _fresh(self, name: ProjectName) -> UpstreamPage | None:
        with self._guard:
            page = self._pages.get(name)
            if page is None:
                return None
            ttl = min(self.page_ttl, ERROR_TTL) if page.error else self.page_ttl
            if self.clock() - page.fetched >= ttl:
                return None
            self._pages.move_to_end(name)
            return page

    def _fetch_page(self, name: ProjectName) -> UpstreamPage:
        self.counts["page_fetches"] += 1
        now = self.clock()
        try:
            answer = self.client.page(name)
            if answer.status in (404, 410):
                return UpstreamPage(name, None, now, next(_serials))
            if not 200 <= answer.status < 300:
                raise answer.refusal(f"upstream project {name}")
            files = parse_page(answer.body, answer.content_type, answer.url).files
        except IndexClientError as exc:
            self.counts["page_errors"] += 1
            _log.warning("python-upstream: %s", exc.message)
            return UpstreamPage(name, None, now, next(_serials), error=exc.message)
        return UpstreamPage(name, tuple(files), now, next(_serials))

    # -- files -------------------------------------------------------------------------

    def cached(self, filename: str) -> FileInfo | None:
        """The ``python-upstream`` row of *filename* (a file fetched before), or None."""
        with self.db.session() as session:
            row = session.scalar(
                sa.select(FileRow).where(
                    FileRow.repo == UPSTREAM_REPOSITORY, FileRow.filename == filename
                )
            )
            return FileInfo.from_row(row) if row is not None else None

    def fetch(self, offer: Offer) -> FileInfo:
        """The file of *offer*, downloaded and stored now unless a copy is kept already.

        One download per file however many requests ask at once.  Raises
        IndexClientError when the upstream cannot deliver it (or lists
        another digest than the kept copy has), HashMismatchError when the
        bytes do not have the listed sha256, StoreError when the blob store
        fails; nothing is recorded then.
        """
        with self._file_locks.hold(offer.filename):
            kept = self.cached(offer.filename)
            if kept is None:
                kept = self._download(offer)
            if kept.sha256 != offer.sha256:
                raise IndexClientError(
                    f"{offer.filename}: the upstream now lists sha256 {offer.sha256}, but the "
                    f"copy fetched before has {kept.sha256}; it is not served (an upstream file "
                    "must never change: ask the upstream's operator)",
                    filename=offer.filename,
                )
            return kept

    def _download(self, offer: Offer) -> FileInfo:
        scratch = self.blobs.scratch_dir()
        if scratch is not None:
            scratch.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=scratch, prefix="upstream-", suffix=".part")
        path = Path(name)
        try:
            with os.fdopen(fd, "w+b") as out:
                digest = self.client.download(
                    offer.file.url, out, what=offer.filename, size=offer.file.size
                )
            if digest != offer.sha256:
                self.counts["file_errors"] += 1
                raise HashMismatchError(
                    f"{offer.filename} from {redact(offer.file.url)}: sha256 is {digest} but the "
                    f"upstream page lists {offer.sha256}; it was not stored or served, retry "
                    "later or ask the upstream's operator",
                    filename=offer.filename,
                    expected=offer.sha256,
                    actual=digest,
                )
            stored, size = self.blobs.put_file(path, expected=Sha256(digest))
        except IndexClientError:
            self.counts["file_errors"] += 1
            raise
        finally:
            path.unlink(missing_ok=True)
        self.counts["files_fetched"] += 1
        self.counts["bytes_fetched"] += size
        return self._record(offer, stored, size)

    def _record(self, offer: Offer, digest: Sha256, size: int) -> FileInfo:
        row = FileRow(
            repo=UPSTREAM_REPOSITORY,
            project=offer.project,
            version=offer.version,
            filename=offer.filename,
            kind=offer.kind,
            sha256=digest,
            size=size,
            requires_python=offer.file.requires_python,
            yanked=offer.file.yanked,
            yanked_reason=offer.file.yanked_reason,
            metadata_sha256=None,
            provenance_sha256=None,
            sbom_sha256=None,
            build_id=None,
            # The cooldown weighs the upstream upload time; unknown, the time it was fetched.
            upload_time=offer.file.upload_time or datetime.now(UTC),
        )
        try:
            with self.db.session() as session, session.begin():
                session.add(row)
        except IntegrityError:  # another process recorded it first: the same bytes
            kept = self.cached(offer.filename)
            if kept is None:  # pragma: no cover - the constraint named this row
                raise
            return kept
        return FileInfo.from_row(row)
