"""The read-only web UI: search, project and version pages, sign-in with a pull token.

Server-side Jinja2 templates, no JavaScript.  Routes (registered by
:func:`install`, which ``create_app`` calls):

- ``/``: search and browse the projects of the repositories the visitor may read;
- ``/ui/<repo>/<project>/``: versions and files;
- ``/ui/<repo>/<project>/<version>/``: per file the provenance (signature
  checked against the index's keys), SBOM summary, build log, and the
  advisories the version fixes or is affected by;
- ``/ui/signin`` (GET form, POST id + secret), ``/ui/signout`` (POST).

A visitor is anonymous, or signed in by a session cookie
(:mod:`fromsource.index.ui_session`), or sends HTTP Basic / Bearer
credentials like any client.  Repositories the visitor may not read are
not shown.  Pages are cached per change counter like the simple API, keyed
by what the visitor may see, and answered with a strong ETag.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from packaging.version import InvalidVersion, Version
from starlette.staticfiles import StaticFiles

from fromsource.bounded import DEFAULT_LIMITS
from fromsource.build.history import version_builds
from fromsource.config import ALL_REPOSITORIES, REPOSITORIES
from fromsource.dist.names import Sha256, normalize
from fromsource.errors import BlobNotFoundError, OversizedError
from fromsource.index.auth import entitled
from fromsource.index.ratelimit import client_of, too_many_message
from fromsource.index.state import IndexState
from fromsource.index.ui_session import (
    COOKIE,
    load_or_create_session_key,
    make_cookie,
    read_cookie,
    session_expiry,
)
from fromsource.index.ui_views import (
    MatrixBuild,
    build_matrix,
    build_view,
    fixed_advisories,
    group_versions,
    human_size,
    provenance_view,
    sbom_view,
    search,
    target_of,
    utc,
)
from fromsource.provenance.keystore import published_keys
from fromsource.proxy.follow import follow_counts
from fromsource.remediate.feed import release_patches
from fromsource.remediate.match import classify
from fromsource.remediate.store import advisories_for
from fromsource.store.catalog import FileInfo, backing_repos, list_projects
from fromsource.store.models import BuildRow
from fromsource.store.tokens import TokenInfo, load_tokens

_HERE = Path(__file__).parent
_PAGE_LIMIT = 2048
_SEARCH_LIMIT = 200
_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}

Rendered = tuple[int, str]


class WebUI:
    """Templates, the session key and the per-generation caches of one process."""

    def __init__(self, state: IndexState) -> None:
        self.state = state
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["size"] = human_size
        self.env.filters["utc"] = utc
        self.env.filters["path"] = lambda s: quote(str(s), safe="")
        self.key = load_or_create_session_key(state.settings.data_dir)
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._pages: OrderedDict[tuple[object, ...], tuple[int, bytes, str]] = OrderedDict()
        self._memo: dict[tuple[object, ...], Any] = {}

    # -- caches ----------------------------------------------------------------

    def sync(self) -> None:
        """Drop every cache when the index's change counter moved."""
        self.state.refresh()
        if self.state.generation != self._generation:
            with self._lock:
                self._generation = self.state.generation
                self._pages.clear()
                self._memo.clear()

    def _memoized(self, key: tuple[object, ...], compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def tokens(self) -> dict[str, TokenInfo]:
        """Every token by id (this generation)."""
        result: dict[str, TokenInfo] = self._memoized(("tokens",), lambda: load_tokens(self.state.db))
        return result

    def projects(self, repo: str) -> list[str]:
        """Project names of *repo* (this generation)."""
        result: list[str] = self._memoized(("projects", repo), lambda: list_projects(self.state.db, repo))
        return result

    # -- visitors ----------------------------------------------------------------

    def visitor(self, request: Request) -> TokenInfo | None:
        """The token behind the request's credentials or session cookie, or None."""
        header = request.headers.get("authorization")
        if header:
            client = client_of(request.scope)
            if self.state.failures.retry_after(client):
                return None  # over the failed-sign-in budget: the header is not looked at
            token = self.state.auth.identify(header)
            if token is None:
                self.state.failures.failed(client)
            return token
        return read_cookie(
            self.key, request.cookies.get(COOKIE), self.tokens().get, datetime.now(UTC)
        )

    def visible(self, token: TokenInfo | None) -> tuple[str, ...]:
        """The repositories *token* (or an anonymous visitor) may read, in index order."""
        anonymous = self.state.auth.anonymous_repos
        return tuple(
            r for r in ALL_REPOSITORIES if r in anonymous or (token is not None and entitled(token, r))
        )

    # -- rendering ---------------------------------------------------------------

    def render(self, template: str, token: TokenInfo | None, **values: Any) -> str:
        """*template* with the layout's values (visitor, visible repositories) added."""
        return self.env.get_template(template).render(
            visitor=token.id if token else None, repos=self.visible(token), **values
        )

    def page(self, request: Request, key: tuple[object, ...], build: Callable[[TokenInfo | None], Rendered]) -> Response:
        """A cached page: rendered once per generation and visitor view, then served with an ETag."""
        self.sync()
        token = self.visitor(request)
        full_key = (*key, token.id if token else None, self.visible(token))
        cached = self._pages.get(full_key)
        if cached is None:
            status, html = build(token)
            body = html.encode()
            cached = (status, body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
            with self._lock:
                self._pages[full_key] = cached
                while len(self._pages) > _PAGE_LIMIT:
                    self._pages.popitem(last=False)
        status, body, etag = cached
        headers = {
            **_SECURITY_HEADERS,
            "etag": etag,
            "cache-control": "private, no-cache",
            "vary": "Cookie, Authorization",
        }
        if status == 200 and request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return HTMLResponse(body, status_code=status, headers=headers)

    def error(self, token: TokenInfo | None, status: int, title: str, message: str) -> Rendered:
        """An error page."""
        return status, self.render("error.html", token, title=title, message=message, status=status)

    def guard(self, request: Request, repo: str) -> Response | None:
        """None when the visitor may read *repo*; else a sign-in redirect or an error page."""
        if repo not in ALL_REPOSITORIES:
            return self.page(request, ("404", repo), lambda t: self.error(
                t, 404, "No such repository", f"This index serves {', '.join(ALL_REPOSITORIES)}."))
        self.sync()
        token = self.visitor(request)
        if repo in self.visible(token):
            return None
        if token is None:
            target = "/ui/signin?next=" + quote(request.url.path, safe="")
            return RedirectResponse(target, status_code=303, headers=_SECURITY_HEADERS)
        return self.page(request, ("403", repo), lambda t: self.error(
            t, 403, "Not allowed", f"Your token cannot read the {repo} repository."))

    # -- pages ---------------------------------------------------------------------

    def home(self, token: TokenInfo | None, query: str, only: str) -> Rendered:
        """The search / browse page."""
        visible = self.visible(token)
        real = [r for r in REPOSITORIES if r in visible]
        searched = real or [r for r in visible if r not in REPOSITORIES]
        if only in searched:
            searched = [only]
        hits, total = search({r: self.projects(r) for r in searched}, query, _SEARCH_LIMIT)
        preferred = "python-all" if "python-all" in visible else None
        counts = {r: len(self.projects(r)) for r in visible}
        return 200, self.render(
            "home.html", token, query=query, only=only, hits=hits, total=total,
            limit=_SEARCH_LIMIT, preferred=preferred, counts=counts, searched=searched,
            follow=follow_counts(self.state.db),
        )

    def project(self, token: TokenInfo | None, repo: str, project: str) -> Rendered:
        """The project page: versions and files."""
        files = self.state.files(repo, project)
        if not files:
            return self.error(token, 404, "Not found", f"There is no project {project} in {repo}.")
        others = [r for r in self.visible(token) if r != repo and self.state.files(r, project)]
        return 200, self.render(
            "project.html", token, repo=repo, project=project, versions=group_versions(files),
            others=others,
        )

    def version(self, token: TokenInfo | None, repo: str, project: str, version: str) -> Rendered:
        """The version page: per file provenance, SBOM and build; advisories."""
        all_files = self.state.files(repo, project)
        files = [f for f in all_files if f.version == version]
        if not files:
            return self.error(token, 404, "Not found", f"{project} {version} is not in {repo}.")
        keys = self._memoized(("keys",), lambda: published_keys(self.state.settings.key_dir))
        details = [self._file_detail(info, keys) for info in sorted(files, key=lambda f: f.filename)]
        patches: list[tuple[str, tuple[str, ...]]] = []
        for detail in details:
            attestation = detail["provenance"].attestation
            if attestation is not None:
                patches = [(p.name, p.fixes) for p in attestation.patches]
                break
        else:
            if any(v.remediated for v in group_versions(files)):
                root = self.state.settings.series_root
                patches = [(n, tuple(f)) for n, f in release_patches(files, series_root=root)]
        builds = self._builds(repo, project, version)
        sources = {
            d["info"].id: "repacked with patches" if source.repacked else "mirrored source"
            for d in details if (source := d["provenance"].source) is not None
        }
        matrix = build_matrix(files, builds, sources)
        advisories = advisories_for(self.state.db, project)
        fixed = fixed_advisories(patches, advisories)
        try:
            status = classify(advisories, project, version, fixes={i for _, ids in patches for i in ids})
            affecting = list(status.affecting)
        except InvalidVersion:
            affecting = []
        return 200, self.render(
            "version.html", token, repo=repo, project=project, version=version,
            summary=group_versions(files)[0], details=details, fixed=fixed, affecting=affecting,
            remedies=self._remedies(token, project, version) if affecting else [],
            matrix=matrix, builds=builds,
        )

    def _builds(self, repo: str, project: str, version: str) -> list[MatrixBuild]:
        """The build rows of *project* *version* behind *repo*, newest first, as the matrix needs."""
        return [
            MatrixBuild(b.id, b.status, b.details.get("category"), target_of(b.details), b.file_id)
            for b in version_builds(self.state.db, project, version, backing_repos(repo))
        ]

    def _file_detail(self, info: FileInfo, keys: Any) -> dict[str, Any]:
        provenance = self._blob(info.provenance_sha256)
        sbom = self._blob(info.sbom_sha256)
        build = None
        if info.build_id is not None:
            with self.state.db.session() as session:
                row = session.get(BuildRow, info.build_id)
                if row is not None:
                    build = build_view(row.id, row.status, row.error, row.log or "", row.created_at,
                                       row.started_at, row.finished_at)
        tail = f"{quote(info.project)}/{quote(info.version)}/{quote(info.filename)}"
        return {
            "info": info,
            "provenance": provenance_view(provenance, keys, info),
            "sbom": sbom_view(sbom),
            "build": build,
            "download": f"/{info.repo}/files/{tail}",
            "integrity": f"/{info.repo}/integrity/{tail}",
        }

    def _blob(self, digest: Sha256 | None) -> bytes | None:
        """A small blob's bytes; None when absent, lost (fsck reports lost blobs) or too large."""
        if digest is None:
            return None
        try:
            return self.state.blobs.read_bytes(digest, limit=DEFAULT_LIMITS.document_bytes)
        except (BlobNotFoundError, OversizedError):
            return None

    def _remedies(self, token: TokenInfo | None, project: str, version: str) -> list[tuple[str, str]]:
        """(repo, version) of remediated builds of the same upstream version the visitor may read."""
        try:
            public = Version(version).public
        except InvalidVersion:
            return []
        if "python-remediated" not in self.visible(token):
            return []
        found = {f.version for f in self.state.files("python-remediated", project)
                 if Version(f.version).public == public and f.version != version}
        return [("python-remediated", v) for v in sorted(found, key=Version, reverse=True)]

    def signin(self, token: TokenInfo | None, next_: str, error: str = "", status: int = 200) -> Rendered:
        """The sign-in form."""
        return status, self.render("signin.html", token, next=next_, error=error)


def _safe_next(value: str | None) -> str:
    """A local path to go to after signing in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


def _same_origin(request: Request) -> bool:
    """False when a form post comes from another site (a browser always sends Origin)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def install(api: FastAPI, state: IndexState) -> None:
    """Register the web UI routes and its static files on *api*."""
    ui = WebUI(state)
    api.state.ui = ui
    api.mount("/ui/static", StaticFiles(directory=_HERE / "static"), name="ui-static")
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home(request: Request, q: str = "", repo: str = "") -> Response:
        q, repo = q[:200], repo[:64]  # bounded: they are part of the cache key
        followed = follow_counts(ui.state.db).runs  # a run changes the home page's last line
        return ui.page(request, ("home", q, repo, followed), lambda t: ui.home(t, q, repo))

    @router.get("/ui/signin")
    def signin_form(request: Request, next: str = "/") -> Response:
        target = _safe_next(next)
        return ui.page(request, ("signin", target), lambda t: ui.signin(t, target))

    @router.post("/ui/signin")
    def signin(
        request: Request,
        token_id: str = Form("", alias="id"),
        secret: str = Form(""),
        next: str = Form("/"),
    ) -> Response:
        ui.sync()
        target = _safe_next(next)
        if not _same_origin(request):
            return HTMLResponse("cross-site sign-in refused", 403, headers=_SECURITY_HEADERS)
        client = client_of(request.scope)
        wait = ui.state.failures.retry_after(client)
        if wait:
            return HTMLResponse(too_many_message(wait), 429, headers={
                **_SECURITY_HEADERS, "cache-control": "no-store", "retry-after": str(wait)})
        header = "Basic " + base64.b64encode(f"{token_id.strip()}:{secret.strip()}".encode()).decode()
        token = ui.state.auth.identify(header) if token_id and secret else None
        if token is None:
            if token_id or secret:
                ui.state.failures.failed(client)
            status, html = ui.signin(
                None, target, "That token id and secret do not match an active token.", 400
            )
            return HTMLResponse(html, status, headers={**_SECURITY_HEADERS, "cache-control": "no-store"})
        now = datetime.now(UTC)
        response = RedirectResponse(target, status_code=303, headers=_SECURITY_HEADERS)
        response.set_cookie(
            COOKIE,
            make_cookie(ui.key, token, now),
            max_age=int((session_expiry(token, now) - now).total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/ui/signout")
    def signout(request: Request) -> Response:
        response = RedirectResponse("/", status_code=303, headers=_SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @router.get("/ui/{repo}/{project}/")
    def project(request: Request, repo: str, project: str) -> Response:
        canonical = normalize(project)
        if canonical != project:
            return RedirectResponse(f"/ui/{repo}/{quote(canonical)}/", status_code=301)
        denied = ui.guard(request, repo)
        if denied is not None:
            return denied
        return ui.page(request, ("project", repo, project), lambda t: ui.project(t, repo, project))

    @router.get("/ui/{repo}/{project}/{version}/")
    def version(request: Request, repo: str, project: str, version: str) -> Response:
        canonical = normalize(project)
        if canonical != project:
            return RedirectResponse(f"/ui/{repo}/{quote(canonical)}/{quote(version)}/", status_code=301)
        denied = ui.guard(request, repo)
        if denied is not None:
            return denied
        return ui.page(
            request, ("version", repo, project, version), lambda t: ui.version(t, repo, project, version)
        )

    api.include_router(router)


__all__ = ["WebUI", "install"]
