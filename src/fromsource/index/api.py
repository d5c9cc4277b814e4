"""The JSON management API under ``/api/`` (FastAPI, OpenAPI at ``/api/openapi.json``).

Every route needs an admin token (HTTP Basic or ``Authorization: Bearer
id:secret``), except what any reader of the index may see: the advisories
it holds (``/api/advisories``, read by ``verify --index``) and the API's own
description (``/api/openapi.json``, ``/api/docs``), which need any valid
token, or none when a repository is anonymous.  Publishing here is for
operators and the build pipeline only: the promise of the index is "built
here", so pull tokens can never upload.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from pydantic import BaseModel, Field

from fromsource.bounded import OutputLimits
from fromsource.build.history import log_digest
from fromsource.config import ALL_REPOSITORIES, REPOSITORIES
from fromsource.dist.names import Sha256, normalize, parse_filename
from fromsource.errors import FromsourceError, StoreError
from fromsource.index.auth import AuthResult, Decision
from fromsource.index.ratelimit import client_of, too_many_message
from fromsource.index.state import IndexState
from fromsource.index.statuses import status_for
from fromsource.provenance.dsse import parse_envelope
from fromsource.remediate.store import advisories_for, all_advisories
from fromsource.store.catalog import list_projects, project_files
from fromsource.store.models import BuildRow
from fromsource.store.publish import publish_file, set_yanked
from fromsource.store.tokens import create_token, list_tokens, parse_lifetime, revoke_token
from fromsource.workers.request import BuildRequest


def _state(request: Request) -> IndexState:
    state: IndexState = request.app.state.index
    return state


def authorize(
    state: IndexState,
    request: Request,
    check: Callable[[str | None], AuthResult],
    *,
    challenge: str,
    forbidden: str,
) -> AuthResult:
    """Decide a request with *check*, raising 429, 401 (with the challenge) or 403.

    Shared by every framework route that needs a token, so the failed-sign-in
    budget and the challenge are the same everywhere.
    """
    state.refresh()
    client = client_of(request.scope)
    wait = state.failures.retry_after(client)
    if wait:
        raise HTTPException(429, too_many_message(wait).strip(), headers={"Retry-After": str(wait)})
    header = request.headers.get("authorization")
    result = check(header)
    if result.decision is Decision.CHALLENGE:
        if header is not None:
            state.failures.failed(client)
        raise HTTPException(
            401, challenge, headers={"WWW-Authenticate": f'Basic realm="{state.settings.realm}"'}
        )
    if result.decision is Decision.FORBIDDEN:
        raise HTTPException(403, forbidden)
    return result


def require_admin(request: Request) -> str:
    """FastAPI dependency: the admin token id, or 401/403/429."""
    state = _state(request)
    result = authorize(
        state,
        request,
        state.auth.check_admin,
        challenge="send an admin token with HTTP Basic auth",
        forbidden="this token is not an admin token",
    )
    assert result.token_id is not None
    return result.token_id


def require_reader(request: Request) -> str | None:
    """FastAPI dependency: any valid token's id (None when anonymous reading is on), or 401/429."""
    state = _state(request)
    result = authorize(
        state,
        request,
        state.auth.check_reader,
        challenge="send a token (a pull or admin token) with HTTP Basic auth",
        forbidden="this token may not read this index",
    )
    return result.token_id


Admin = Annotated[str, Depends(require_admin)]
Reader = Annotated[str | None, Depends(require_reader)]
router = APIRouter(prefix="/api")


class TokenRequest(BaseModel):
    """A request for a new token."""

    org: str = Field(description="lower-case org name, the part before '/' in the id")
    repos: list[str] = Field(default_factory=list, description=f"any of {list(ALL_REPOSITORIES)}")
    admin: bool = False
    expires: str = Field("30d", description="lifetime like 30d, 12h, 2w; at most 365d")
    description: str = ""


def _fail(exc: FromsourceError) -> HTTPException:
    """*exc* as an HTTP error: its status from :func:`status_for`, its JSON as the detail."""
    return HTTPException(status_for(exc), exc.to_json())


@router.get("/tokens", summary="List tokens (never their secrets)")
def tokens_list(request: Request, _admin: Admin, state: str | None = None) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    return [t.to_json(now) for t in list_tokens(_state(request).db, state=state, now=now)]


@router.post("/tokens", status_code=201, summary="Create a token; the secret is shown only here")
def tokens_create(request: Request, body: TokenRequest, _admin: Admin) -> dict[str, object]:
    index = _state(request)
    try:
        new = create_token(
            index.db,
            org=body.org,
            repos=body.repos,
            admin=body.admin,
            lifetime=parse_lifetime(body.expires),
            description=body.description,
        )
    except FromsourceError as exc:
        raise _fail(exc) from exc
    index.refresh(force=True)
    return {**new.info.to_json(datetime.now(UTC)), "secret": new.secret}


@router.delete("/tokens/{token_id:path}", summary="Revoke a token (takes effect at once)")
def tokens_revoke(request: Request, token_id: str, _admin: Admin) -> dict[str, object]:
    index = _state(request)
    try:
        info = revoke_token(index.db, token_id)
    except FromsourceError as exc:
        raise _fail(exc) from exc
    index.refresh(force=True)
    return info.to_json(datetime.now(UTC))


@router.get("/repos", summary="Repositories this index serves")
def repos(_admin: Admin) -> list[str]:
    return list(ALL_REPOSITORIES)


@router.get("/repos/{repo}/projects", summary="Projects in a repository")
def projects(request: Request, repo: str, _admin: Admin) -> list[str]:
    _check_repo(repo)
    return list(list_projects(_state(request).db, repo))


@router.get("/repos/{repo}/projects/{project}", summary="Files of a project")
def project(request: Request, repo: str, project: str, _admin: Admin) -> list[dict[str, Any]]:
    _check_repo(repo)
    files = project_files(_state(request).db, repo, normalize(project))
    if not files:
        raise HTTPException(404, f"no project {normalize(project)} in {repo}")
    return [
        {
            "filename": f.filename,
            "version": f.version,
            "sha256": f.sha256,
            "size": f.size,
            "repo": f.repo,
            "yanked": f.yanked,
            "build_id": f.build_id,
            "upload_time": f.upload_time.isoformat(),
        }
        for f in files
    ]


@router.post("/repos/{repo}/files", status_code=201, summary="Publish a file (operators only)")
async def publish(
    request: Request,
    repo: str,
    _admin: Admin,
    file: Annotated[UploadFile, File(description="a wheel or sdist")],
    attestation: Annotated[UploadFile | None, File(description="DSSE envelope JSON")] = None,
    sbom: Annotated[UploadFile | None, File(description="CycloneDX JSON")] = None,
) -> dict[str, object]:
    if repo not in REPOSITORIES:
        raise HTTPException(400, f"files are published into one of {list(REPOSITORIES)}")
    index = _state(request)
    name = Path(file.filename or "").name
    if not name:
        raise HTTPException(400, "the upload has no filename")
    try:
        parse_filename(name)  # before the name touches the disk: refuses "..", NUL, non-dists
    except FromsourceError as exc:
        raise _fail(exc) from exc
    # Inside the blob store's tmp/ when there is one, so a server killed mid-upload
    # leaves nothing in the system's temp folder (fsck removes it after the grace).
    spool = index.blobs.scratch_dir()
    with tempfile.TemporaryDirectory(prefix="fromsource-upload-", dir=spool) as tmp:
        path = Path(tmp) / name
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        provenance = await attestation.read() if attestation else None
        if provenance is not None:
            try:  # served later as PEP 740 provenance: refuse what could never be read
                parse_envelope(provenance)
            except FromsourceError as exc:
                raise _fail(exc) from exc
        sbom_bytes = await sbom.read() if sbom else None
        try:
            published = publish_file(
                index.db,
                index.blobs,
                path,
                repo,
                provenance=provenance,
                sbom=sbom_bytes,
                limits=OutputLimits.from_settings(index.settings),
            )
        except FromsourceError as exc:
            raise _fail(exc) from exc
    index.refresh(force=True)
    return {
        "filename": published.filename,
        "sha256": published.sha256,
        "already_present": published.already_present,
    }


@router.post("/repos/{repo}/files/{filename}/yank", summary="Yank a file (PEP 592)")
def yank(
    request: Request, repo: str, filename: str, _admin: Admin, reason: Annotated[str, Form()] = ""
) -> dict[str, str]:
    index = _state(request)
    try:
        set_yanked(index.db, repo, filename, reason or None, True)
    except FromsourceError as exc:
        raise _fail(exc) from exc
    index.refresh(force=True)
    return {"filename": filename, "yanked": reason}


@router.get("/builds", summary="Recent builds, or the progress of one build job (?job=ID)")
def builds_list(
    request: Request,
    _admin: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    job: Annotated[
        str | None,
        Query(
            pattern="^[0-9a-f]{32}$",
            description="a job id from POST /api/builds with a lock file: its progress "
            "(done/running/queued/failed counts and the per-package coverage report)",
        ),
    ] = None,
) -> list[dict[str, Any]] | dict[str, Any]:
    if job is not None:
        from fromsource.build.jobs import get_job, job_status  # loaded on the first job only

        found = get_job(_state(request).db, job)
        if found is None:
            raise HTTPException(404, f"no build job {job}")
        status = job_status(_state(request).db, found)
        ondemand = getattr(request.app.state, "ondemand", None)
        if ondemand is not None and ondemand.queue.kind == "in-process":
            # In-process requests die with their process (a restart): queue what is still
            # queued again.  One waiting here is not queued twice; one another process
            # builds is dropped at its claim.
            for requirement in status.queued():
                ondemand.request(BuildRequest(requirement, repo=found.repo))
        return status.to_json()
    with _state(request).db.session() as session:
        rows = session.scalars(sa.select(BuildRow).order_by(BuildRow.id.desc()).limit(limit)).all()
    return [build_json(r, with_log=False) for r in rows]


@router.get("/builds/{build_id}", summary="One build with its log")
def builds_show(
    request: Request, build_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)], _admin: Admin
) -> dict[str, Any]:
    with _state(request).db.session() as session:
        row = session.get(BuildRow, build_id)
    if row is None:
        raise HTTPException(404, f"no build {build_id}")
    return build_json(row, with_log=True)


@router.get(
    "/builds/{build_id}/log",
    summary="One build's full log as text (streamed)",
    response_class=PlainTextResponse,
)
def builds_log(
    request: Request, build_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)], _admin: Admin
) -> Response:
    index = _state(request)
    with index.db.session() as session:
        row = session.get(BuildRow, build_id)
    if row is None:
        raise HTTPException(404, f"no build {build_id}")
    digest = log_digest(row.details or {})
    if digest is None:  # an older build, or one that failed before the sandbox
        return PlainTextResponse(row.log or "")
    try:
        size = index.blobs.size(Sha256(digest))
    except StoreError as exc:
        unreadable = StoreError(
            f"build {build_id}: its log blob is unreadable ({exc.message}); "
            "the operator should run `fromsource fsck`",
            build_id=build_id,
        )
        raise _fail(unreadable) from exc
    chunks = index.blobs.iter_range(Sha256(digest), 0, size - 1) if size else iter(())
    return StreamingResponse(
        chunks,
        media_type="text/plain; charset=utf-8",
        headers={"content-length": str(size)},
    )


_MAX_CACHED = 1000


def _advisories_document(request: Request, project: str | None) -> bytes:
    """The stored OSV records naming *project* (every record for None), as JSON bytes.

    ``{"project": name, "advisories": [record, ...]}`` (no ``project`` key for
    every record), records as imported, sorted by id.  Built once per change
    of the store, in this process.
    """
    index = _state(request)
    cache: dict[tuple[int, str | None], bytes] = request.app.state.advisory_documents
    key = (index.generation, project)
    cached = cache.get(key)
    if cached is None:
        if project is None:
            found, head = all_advisories(index.db), {}
        else:
            found, head = advisories_for(index.db, project), {"project": project}
        cached = json.dumps({**head, "advisories": [a.to_json() for a in found]}).encode()
        if len(cache) >= _MAX_CACHED:
            cache.clear()
        cache[key] = cached
    return cached


@router.get("/advisories", summary="Every OSV advisory the index holds (any token)")
def advisories_list(request: Request, _reader: Reader) -> Response:
    return Response(_advisories_document(request, None), media_type="application/json")


@router.get("/advisories/{project}", summary="OSV advisories about one project (any token)")
def advisories_project(request: Request, project: str, _reader: Reader) -> Response:
    # 200 with an empty list for a project no advisory names: "none known" is an answer.
    return Response(_advisories_document(request, normalize(project)), media_type="application/json")


def build_json(row: BuildRow, *, with_log: bool) -> dict[str, Any]:
    """A build row as the API shows it."""
    out: dict[str, Any] = {
        "id": row.id,
        "key": row.key,
        "project": row.project,
        "version": row.version,
        "repo": row.repo,
        "status": row.status,
        "error": row.error,
        "details": row.details,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }
    if with_log:
        out["log"] = row.log
    return out


def _check_repo(repo: str) -> None:
    if repo not in ALL_REPOSITORIES:
        raise HTTPException(404, f"no repository {repo!r}; known: {', '.join(ALL_REPOSITORIES)}")


def make_api(state: IndexState) -> FastAPI:
    """The FastAPI app for everything that is not the simple API hot path.

    The API description is served by routes of our own rather than FastAPI's,
    so that it needs a token like every other page (issue 18).
    """
    app = FastAPI(
        title="fromsource",
        version=__import__("fromsource").__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.index = state
    app.state.advisory_documents = {}
    app.include_router(router)

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi_document(_reader: Reader) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/docs", include_in_schema=False)
    def openapi_docs(_reader: Reader) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="fromsource API")

    return app
