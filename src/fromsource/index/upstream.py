"""``python-upstream`` in the server, and the upstream part of ``python-all``.

A project page of ``python-upstream`` is the upstream's page filtered by
policy (:func:`fromsource.proxy.offers.offers`) and rendered again by
:mod:`fromsource.index.pages`, every link pointing at this index
(``/python-upstream/files/<project>/<version>/<filename>``) and marked as
upstream (``_fromsource`` in JSON, ``data-fromsource-origin`` in HTML).
For a token entitled to ``python-upstream``, ``python-all`` lists the same
links after its own files, except where the index's own files win
(:func:`fromsource.proxy.offers.shadowed`).  A file is fetched on its first
request (:class:`~fromsource.proxy.source.UpstreamProxy`) and served from
the blob store afterwards, after policy is asked again every time.

Rendered pages are kept per upstream fetch, change counter and policy
counter, at most as many as the proxy keeps pages.  Every decision that
hides, refuses or lets something through is audited like the index's own.
Everything here blocks (database, upstream): the ASGI app calls it from a
worker thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from fromsource.config import UPSTREAM_REPOSITORY, upstream_url
from fromsource.dist.names import normalize
from fromsource.errors import FromsourceError, HashMismatchError, IndexClientError
from fromsource.index import pages
from fromsource.index.state import CachedPage, IndexState
from fromsource.policy.decide import Decision, project_refusal
from fromsource.policy.store import Action
from fromsource.proxy.offers import Offer, decide_file, offers, shadowed
from fromsource.proxy.source import UpstreamPage, UpstreamProxy
from fromsource.store.catalog import FileInfo

__all__ = ["ORIGIN", "FileAnswer", "PageAnswer", "UpstreamRepository"]

ORIGIN = "upstream"
"""The ``origin`` of the ``_fromsource`` mark on files served from the upstream."""


@dataclass(frozen=True)
class PageAnswer:
    """A page to send (*page*), or the status and message to answer instead."""

    page: CachedPage | None
    status: int = 200
    message: str = ""


@dataclass(frozen=True)
class FileAnswer:
    """A file to serve (*info*), a policy refusal (*refusal*) or another status with a message."""

    info: FileInfo | None = None
    refusal: Decision | None = None
    status: int = 200
    message: str = ""


def _link(offer: Offer, prefix: str, generation: int) -> pages.PageFile:
    """The link to *offer* below *prefix* (``/python-upstream/`` from the page), marked."""
    path = f"files/{offer.project}/{quote(offer.version)}/{quote(offer.filename)}"
    return pages.PageFile(
        filename=offer.filename,
        url=prefix + path,
        sha256=offer.sha256,
        size=offer.file.size,
        upload_time=offer.file.upload_time,
        requires_python=offer.file.requires_python,
        yanked=offer.file.yanked,
        yanked_reason=offer.file.yanked_reason,
        metadata_sha256=None,
        provenance_url=None,
        origin=ORIGIN,
        policy_generation=generation,
    )


class UpstreamRepository:
    """The upstream part of one server process: pages, files, their caches and audit."""

    def __init__(self, state: IndexState, proxy: UpstreamProxy) -> None:
        self.state = state
        self.proxy = proxy
        self._lock = threading.Lock()
        self._offers: OrderedDict[str, tuple[tuple[int, int], list[Offer]]] = OrderedDict()
        self._rendered: OrderedDict[tuple[str, str, str], tuple[tuple[int, ...], CachedPage]] = (
            OrderedDict()
        )

    @classmethod
    def from_state(cls, state: IndexState) -> UpstreamRepository:
        """The upstream of *state*'s settings (or pip's configuration); ConfigError if none."""
        settings = state.settings
        proxy = UpstreamProxy(
            state.db,
            state.blobs,
            upstream_url(settings),
            page_ttl=settings.upstream_page_ttl,
            max_pages=settings.upstream_cache_pages,
        )
        repository = cls(state, proxy)
        state.metrics.sources.append(repository.metric_lines)
        return repository

    # -- offers --------------------------------------------------------------------------

    def _offers_of(self, page: UpstreamPage) -> list[Offer]:
        """The offers of *page* under the policy in force (kept per fetch and policy counter)."""
        stamp = (page.serial, self.state.policy_generation)
        with self._lock:
            kept = self._offers.get(page.project)
            if kept is not None and kept[0] == stamp:
                return kept[1]
        found = offers(
            page.project, page.files or (), policy=self.state.policy, now=datetime.now(UTC)
        )
        with self._lock:
            self._offers[page.project] = (stamp, found)
            self._offers.move_to_end(page.project)
            while len(self._offers) > self.proxy.max_pages:
                self._offers.popitem(last=False)
        return found

    # -- pages ---------------------------------------------------------------------------

    def page(self, repo: str, project: str, media_type: str) -> PageAnswer:
        """The page of *project* in *repo* (``python-upstream``, or ``python-all`` with upstream).

        ``python-upstream``: 404 when the upstream has no such project or
        policy leaves no file, 502 when the upstream cannot be read.
        ``python-all``: the index's own files, then the upstream's that they
        do not shadow; when the upstream cannot be read, the own files alone.
        """
        upstream = self.proxy.page(project)
        own = self.state.listed_files(repo, project) if repo != UPSTREAM_REPOSITORY else []
        stamp = (upstream.serial, self.state.generation, self.state.policy_generation)
        key = (repo, project, media_type)
        with self._lock:
            kept = self._rendered.get(key)
            if kept is not None and kept[0] == stamp:
                self._rendered.move_to_end(key)
                return PageAnswer(kept[1])
        if upstream.error is not None and (repo == UPSTREAM_REPOSITORY or not own):
            return PageAnswer(
                None,
                502,
                f"502 Bad Gateway: the upstream index {self.proxy.description} could not be "
                f"read for {project}: {upstream.error}\n",
            )
        links = self._links(repo, upstream, [f.filename for f in own])
        if not own and not links:
            return PageAnswer(None, 404, f"404 Not Found: no project {project} in {repo}\n")
        value = pages.project_page(project, own, extra=links)
        body = (
            pages.render_project_json(value)
            if media_type == pages.JSON_TYPE
            else pages.render_project_html(value)
        )
        cached = CachedPage(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', media_type)
        if upstream.error is None:  # a page without its upstream part is not kept
            with self._lock:
                self._rendered[key] = (stamp, cached)
                while len(self._rendered) > 2 * self.proxy.max_pages:
                    self._rendered.popitem(last=False)
        return PageAnswer(cached)

    def _links(
        self, repo: str, upstream: UpstreamPage, own: list[str]
    ) -> list[tuple[str, pages.PageFile]]:
        """The upstream links *repo*'s page shows, auditing what policy hid or let through."""
        prefix = "../../" if repo == UPSTREAM_REPOSITORY else f"../../../{UPSTREAM_REPOSITORY}/"
        events: list[tuple[Action, Decision, str | None]] = []
        links = []
        generation = self.state.policy.generation
        for offer in self._offers_of(upstream):
            if repo != UPSTREAM_REPOSITORY and shadowed(offer, own):
                continue
            if not offer.decision.allowed:
                events.append(("hidden", offer.decision, offer.filename))
                continue
            if offer.decision.audited:
                events.append(("listed", offer.decision, offer.filename))
            links.append((offer.version, _link(offer, prefix, generation)))
        self.state.audit(events, repo)
        return links

    # -- files ---------------------------------------------------------------------------

    def file(self, project: str, version: str, filename: str) -> FileAnswer:
        """The answer for ``/python-upstream/files/<project>/<version>/<filename>``.

        A kept copy is served after policy is asked again (with the file's
        upstream upload time and digest, and its release's other digests when
        the upstream page is at hand); otherwise the upstream page must list
        the file, policy must let it through, and it is fetched now.  404 for
        a file the upstream does not list, 502 when the upstream fails, 503
        when the blob store does.
        """
        name = normalize(project)
        if name != project:
            return FileAnswer(status=404, message=f"404 Not Found: {filename}\n")
        whole = project_refusal(name, self.state.policy)
        if whole is not None:  # refused before the upstream is asked anything
            return self._checked(None, whole, filename)
        kept = self.proxy.cached(filename)
        if kept is not None and kept.project == name and kept.version == version:
            return self._checked(kept, self._kept_decision(kept))
        upstream = self.proxy.page(name)
        if upstream.error is not None:
            return FileAnswer(status=502, message=f"502 Bad Gateway: {upstream.error}\n")
        offer = next(
            (
                o
                for o in self._offers_of(upstream)
                if o.filename == filename and o.version == version
            ),
            None,
        )
        if offer is None:
            return FileAnswer(status=404, message=f"404 Not Found: {filename}\n")
        if not offer.decision.allowed:
            return self._checked(None, offer.decision, filename)
        try:
            info = self.proxy.fetch(offer)
        except (IndexClientError, HashMismatchError) as exc:
            return FileAnswer(status=502, message=f"502 Bad Gateway: {exc.message}\n")
        except FromsourceError as exc:  # the blob store or the database
            return FileAnswer(status=503, message=f"503 Service Unavailable: {exc.message}\n")
        return self._checked(info, offer.decision)

    def _kept_decision(self, info: FileInfo) -> Decision:
        """Policy on a kept file: from the upstream page at hand, else from the file's own facts."""
        upstream = self.proxy.peek(info.project)
        if upstream is not None and upstream.files is not None:
            for offer in self._offers_of(upstream):
                if offer.filename == info.filename and offer.sha256 == info.sha256:
                    return offer.decision
        return decide_file(
            info.project,
            info.version,
            policy=self.state.policy,
            upload_time=info.upload_time,
            sha256s=[info.sha256],
            now=datetime.now(UTC),
        )

    def _checked(
        self, info: FileInfo | None, decision: Decision, filename: str | None = None
    ) -> FileAnswer:
        """Serve *info* when *decision* allows, else refuse; audited either way when it matters."""
        decision = project_refusal(decision.project, self.state.policy) or decision
        name = filename or (info.filename if info else None)
        if decision.audited:
            action: Action = "served" if decision.allowed else "refused"
            self.state.audit([(action, decision, name)], UPSTREAM_REPOSITORY)
        if not decision.allowed or info is None:
            return FileAnswer(refusal=decision, status=decision.status)
        return FileAnswer(info=info)

    def metric_lines(self) -> list[str]:
        """Prometheus lines for what this process fetched from the upstream."""
        lines = [
            "# HELP fromsource_upstream_total python-upstream fetches by this process, by kind.",
            "# TYPE fromsource_upstream_total counter",
        ]
        for kind in ("page_fetches", "page_errors", "files_fetched", "file_errors"):
            lines.append(f'fromsource_upstream_total{{kind="{kind}"}} {self.proxy.counts[kind]}')
        lines += [
            "# HELP fromsource_upstream_bytes_total Bytes of upstream files fetched and stored.",
            "# TYPE fromsource_upstream_bytes_total counter",
            f"fromsource_upstream_bytes_total {self.proxy.counts['bytes_fetched']}",
        ]
        return lines
