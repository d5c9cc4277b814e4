"""The server's in-memory state: pages rendered once per change, tokens, lookups.

Everything cached here is dropped when the database change counter moves.
The counter is polled at most every ``poll_interval`` seconds (by the request
that finds it stale), so several replicas over one database converge within
that interval without any broker.  A publish through this process refreshes
at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from fromsource.config import ALL_REPOSITORIES, Settings
from fromsource.dist.names import normalize
from fromsource.index import pages
from fromsource.index.auth import Authenticator
from fromsource.index.ratelimit import FailureBudget, FailurePolicy
from fromsource.provenance.keys import SigningKey
from fromsource.store.blobs import BlobStore
from fromsource.store.catalog import FileInfo, list_projects, project_files
from fromsource.store.db import Database
from fromsource.store.tokens import load_tokens


@dataclass(frozen=True)
class CachedPage:
    """Rendered bytes with their strong ETag and media type."""

    body: bytes
    etag: str
    media_type: str


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass
class Metrics:
    """Request counters for ``/metrics`` (per process)."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    started: float = field(default_factory=time.time)


class IndexState:
    """Shared by every request of one server process."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        blobs: BlobStore,
        signing_key: SigningKey | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.settings = settings
        self.db = db
        self.blobs = blobs
        self.signing_key = signing_key
        self.poll_interval = poll_interval
        self.metrics = Metrics()
        self.auth = Authenticator(
            lambda: load_tokens(db), anonymous_repos=frozenset(settings.anonymous_repos)
        )
        self.failures = FailureBudget(FailurePolicy.from_setting(settings.auth_failures_per_minute))
        self.on_missing_project: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        self._generation = db.generation()
        self._checked = time.monotonic()
        self._pages: dict[tuple[str, str, str], CachedPage | None] = {}
        self._files: dict[tuple[str, str], list[FileInfo]] = {}

    def refresh(self, force: bool = False) -> None:
        """Drop caches if the change counter moved (checked at most every poll_interval)."""
        now = time.monotonic()
        if not force and now - self._checked < self.poll_interval:
            return
        self._checked = now
        generation = self.db.generation()
        if force or generation != self._generation:
            with self._lock:
                self._generation = generation
                self._pages = {}
                self._files = {}
                self.auth.reload()

    @property
    def generation(self) -> int:
        """The change counter this process's caches reflect."""
        return self._generation

    def files(self, repo: str, project: str) -> list[FileInfo]:
        """Files of *project* in *repo* (cached until the next change)."""
        key = (repo, project)
        cached = self._files.get(key)
        if cached is None:
            cached = project_files(self.db, repo, project)
            self._files[key] = cached
        return cached

    def find_file(self, repo: str, project: str, filename: str) -> FileInfo | None:
        """The published file *filename* of *project* in *repo*, or None."""
        for info in self.files(repo, normalize(project)):
            if info.filename == filename:
                return info
        return None

    def project_page(self, repo: str, project: str, media_type: str) -> CachedPage | None:
        """The rendered page of *project* (None when it has no files)."""
        key = (repo, project, media_type)
        if key in self._pages:
            return self._pages[key]
        files = self.files(repo, project)
        page: CachedPage | None = None
        if files:
            value = pages.project_page(project, files)
            body = (
                pages.render_project_json(value)
                if media_type == pages.JSON_TYPE
                else pages.render_project_html(value)
            )
            page = CachedPage(body, _etag(body), media_type)
        self._pages[key] = page
        return page

    def root_page(self, repo: str, media_type: str) -> CachedPage:
        """The rendered project list of *repo*."""
        key = (repo, "", media_type)
        cached = self._pages.get(key)
        if cached is None:
            projects = list_projects(self.db, repo)
            body = (
                pages.render_root_json(projects)
                if media_type == pages.JSON_TYPE
                else pages.render_root_html(projects)
            )
            cached = CachedPage(body, _etag(body), media_type)
            self._pages[key] = cached
        return cached

    @staticmethod
    def is_repo(name: str) -> bool:
        """Whether *name* is a repository this index serves."""
        return name in ALL_REPOSITORIES
