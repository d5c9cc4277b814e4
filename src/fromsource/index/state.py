"""The server's in-memory state: pages rendered once per change, tokens, lookups, policy.

Everything cached here is dropped when the database change counter or the
policy counter moves: pages are cached per (store generation, policy
generation).  The counters are polled at most every ``poll_interval``
seconds (by the request that finds them stale), so several replicas over one
database converge within that interval without any broker.  A publish
through this process refreshes at once.

Policy (:mod:`fromsource.policy`) is applied here, to what every repository
shows: a release policy denies is left off its project page, its files
answer ``409`` (malware, block rules) or ``404`` (cooldown), and a project
denied whole answers ``409`` on its page.  Each decision that hides, refuses
or lets something through is written to the audit log once per process and
policy generation.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import SQLAlchemyError

from fromsource.config import ALL_REPOSITORIES, Settings
from fromsource.dist.names import normalize
from fromsource.index import pages
from fromsource.index.auth import Authenticator
from fromsource.index.ratelimit import FailureBudget, FailurePolicy
from fromsource.policy.decide import Decision, Policy, decide, project_refusal
from fromsource.policy.store import Action, AuditEntry, load_policy, record
from fromsource.provenance.keys import SigningKey
from fromsource.store.blobs import BlobStore
from fromsource.store.catalog import FileInfo, list_projects, project_files
from fromsource.store.db import GENERATION, POLICY_GENERATION, Database
from fromsource.store.tokens import load_tokens

if TYPE_CHECKING:
    from fromsource.index.upstream import UpstreamRepository


class Background(Protocol):
    """A task that runs beside the server in a thread of its own (``follow``)."""

    def start(self) -> None:
        """Start it (returns at once)."""

    def stop(self) -> None:
        """Ask it to stop (returns at once)."""


@dataclass(frozen=True)
class CachedPage:
    """Rendered bytes with their strong ETag and media type."""

    body: bytes
    etag: str
    media_type: str


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


_log = logging.getLogger(__name__)
_REASONS = {404: "Not Found", 409: "Conflict"}


def refusal_body(decision: Decision) -> bytes:
    """The text a refused page or file answers with: status, then why (the MAL id and summary)."""
    status = decision.status
    return f"{status} {_REASONS.get(status, '')}: {decision.reason}\n".encode()


_AuditKey = tuple[str, str, str, str | None, str | None]
_AUDITED_LIMIT = 100_000
"""Decisions remembered as audited per process; past it, some are written once more."""


@dataclass
class Metrics:
    """Request counters for ``/metrics`` (per process)."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    started: float = field(default_factory=time.time)
    sources: list[Callable[[], list[str]]] = field(default_factory=list)
    """More Prometheus lines, from the parts that have counts of their own (upstream, follow)."""


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
        self._generation, self._policy_generation = db.counters(GENERATION, POLICY_GENERATION)
        self._checked = time.monotonic()
        self._pages: dict[tuple[str, str, str], CachedPage | None] = {}
        self._files: dict[tuple[str, str], list[FileInfo]] = {}
        self.policy: Policy = load_policy(db)
        self._decisions: dict[tuple[str, str, str], Decision] = {}
        self._audited: set[_AuditKey] = set()
        self._upstream: UpstreamRepository | None = None
        self.background: list[Background] = []
        """Tasks that run beside the server (``follow``): started and stopped with it."""

    def refresh(self, force: bool = False) -> None:
        """Drop caches if the change or policy counter moved (checked at most every poll_interval)."""
        now = time.monotonic()
        if not force and now - self._checked < self.poll_interval:
            return
        self._checked = now
        generation, policy_generation = self.db.counters(GENERATION, POLICY_GENERATION)
        if force or (generation, policy_generation) != (self._generation, self._policy_generation):
            # The policy is read again only when its own counter moved: a publish
            # does not make every process re-read every malware record.
            policy = load_policy(self.db) if policy_generation != self._policy_generation else None
            with self._lock:
                if policy is not None:
                    self.policy = policy
                    self._decisions = {}
                    self._audited = set()
                self._generation = generation
                self._policy_generation = policy_generation
                self._pages = {}
                self._files = {}
                self.auth.reload()

    @property
    def generation(self) -> int:
        """The change counter this process's caches reflect."""
        return self._generation

    @property
    def policy_generation(self) -> int:
        """The policy counter this process's pages reflect."""
        return self._policy_generation

    def decision(self, info: FileInfo) -> Decision:
        """What policy says about the release of *info* (and the file's own sha256)."""
        key = (info.project, info.version, info.sha256)
        found = self._decisions.get(key)
        if found is None:
            found = decide(info.project, info.version, policy=self.policy, sha256s=[info.sha256])
            self._decisions[key] = found
        return found

    def project_refusal(self, repo: str, project: str) -> Decision | None:
        """The denial of every version of *project* (audited), or None."""
        refusal = project_refusal(project, self.policy)
        if refusal is not None:
            self.audit([("refused", refusal, None)], repo)
        return refusal

    def file_refusal(self, repo: str, info: FileInfo) -> Decision | None:
        """The denial of the file *info* asked for in *repo* (audited), or None to serve it.

        A file an allow rule lets through is served, and that is audited too.
        """
        refusal = project_refusal(info.project, self.policy)
        decision = refusal or self.decision(info)
        if decision.audited:
            self.audit(
                [("served" if decision.allowed else "refused", decision, info.filename)], repo
            )
        return None if decision.allowed else decision

    def audit(
        self, events: list[tuple[Action, Decision, str | None]], repo: str, actor: str = "index"
    ) -> None:
        """Write the decisions not yet written by this process under this policy generation.

        Each event is (action, decision, filename or None), made in *repo* by *actor*.
        """
        fresh: list[tuple[_AuditKey, AuditEntry]] = []
        now = datetime.now(UTC)
        for action, decision, filename in events:
            key: _AuditKey = (action, repo, decision.project, decision.version, filename)
            if key in self._audited:
                continue
            entry = AuditEntry.of(
                decision,
                action,
                at=now,
                actor=actor,
                generation=self.policy.generation,
                repo=repo,
                filename=filename,
            )
            fresh.append((key, entry))
        if not fresh:
            return
        try:
            record(self.db, [entry for _key, entry in fresh])
        except SQLAlchemyError as exc:  # the answer stands; the entry is written next time
            _log.warning("policy audit entries not written (%s); retried on the next request", exc)
            return
        if len(self._audited) > _AUDITED_LIMIT:  # upstream pages can name any project
            self._audited.clear()
        self._audited.update(key for key, _entry in fresh)

    def files(self, repo: str, project: str) -> list[FileInfo]:
        """Files of *project* in *repo* (cached until the next change).

        Without ``serve_sdists`` no sdist is among them: none is listed or served.
        """
        key = (repo, project)
        cached = self._files.get(key)
        if cached is None:
            cached = project_files(self.db, repo, project)
            if not self.settings.serve_sdists:
                cached = [f for f in cached if f.kind != "sdist"]
            self._files[key] = cached
        return cached

    def find_file(self, repo: str, project: str, filename: str) -> FileInfo | None:
        """The published file *filename* of *project* in *repo*, or None."""
        for info in self.files(repo, normalize(project)):
            if info.filename == filename:
                return info
        return None

    def listed_files(self, repo: str, project: str) -> list[FileInfo]:
        """The files of *project* in *repo* that policy lets a client see (audited)."""
        shown: list[FileInfo] = []
        events: list[tuple[Action, Decision, str | None]] = []
        for info in self.files(repo, project):
            decision = self.decision(info)
            if decision.allowed:
                shown.append(info)
                if decision.audited:
                    events.append(("listed", decision, info.filename))
            else:
                events.append(("hidden", decision, info.filename))
        self.audit(events, repo)
        return shown

    def project_page(self, repo: str, project: str, media_type: str) -> CachedPage | None:
        """The rendered page of *project* (None when policy leaves it no file to list)."""
        key = (repo, project, media_type)
        if key in self._pages:
            return self._pages[key]
        files = self.listed_files(repo, project)
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
            projects = []
            hidden: list[tuple[Action, Decision, str | None]] = []
            for name in list_projects(self.db, repo):
                refusal = project_refusal(name, self.policy)
                if refusal is None:
                    projects.append(name)
                else:
                    hidden.append(("hidden", refusal, None))
            self.audit(hidden, repo)
            body = (
                pages.render_root_json(projects)
                if media_type == pages.JSON_TYPE
                else pages.render_root_html(projects)
            )
            cached = CachedPage(body, _etag(body), media_type)
            self._pages[key] = cached
        return cached

    @property
    def upstream(self) -> UpstreamRepository:
        """``python-upstream`` (made on first use: it reads the upstream setting then).

        Raises ConfigError when no upstream index can be found.
        """
        with self._lock:
            if self._upstream is None:
                from fromsource.index.upstream import UpstreamRepository

                self._upstream = UpstreamRepository.from_state(self)
            return self._upstream

    @property
    def upstream_started(self) -> UpstreamRepository | None:
        """``python-upstream`` if a request has used it in this process, else None."""
        return self._upstream

    def start_background(self) -> None:
        """Start the background tasks (the server calls this once it serves)."""
        for task in self.background:
            task.start()

    def stop_background(self) -> None:
        """Stop the background tasks (the server calls this when it stops)."""
        for task in self.background:
            task.stop()

    @staticmethod
    def is_repo(name: str) -> bool:
        """Whether *name* is a repository this index serves."""
        return name in ALL_REPOSITORIES
