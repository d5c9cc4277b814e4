"""Build on demand, and build requests through the management API.

``install(api, state)`` (called by the app when this module exists):

- with ``build_on_demand``, a request for a project the ``python``
  repository lacks queues a build of its newest release that policy lets
  through now, with its runtime dependencies (``state.on_missing_project``;
  :func:`plan_missing` reads the upstream page and asks
  :func:`fromsource.proxy.offers.on_demand`, the decisions ``follow`` and
  ``python-upstream`` make: a release in its cooldown, named by a malware
  record or blocked is not built automatically, an allow rule lets one
  through; what it holds back is logged and audited as ``build-refused``);
  each project is planned at most once per :data:`DEBOUNCE_SECONDS` per
  server process, and the hot path never waits (a background thread plans
  and hands requests over);
- ``POST /api/builds`` (admin) queues builds of named requirements, or of
  every pin of a lock or requirements file as a job whose progress
  ``GET /api/builds?job=ID`` shows (fromsource/build/jobs.py).

Requests go to a :class:`~fromsource.workers.queue.BuildQueue`: Celery when
``broker_url`` is set, this process's own threads otherwise, made on first
use so a server that never builds never opens a broker connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from packaging.requirements import InvalidRequirement, Requirement
from pydantic import BaseModel, Field

from fromsource.config import Settings
from fromsource.errors import FromsourceError
from fromsource.index.api import Admin
from fromsource.index.state import IndexState
from fromsource.index.statuses import status_for
from fromsource.proxy.offers import on_demand
from fromsource.workers.queue import BuildQueue, open_queue
from fromsource.workers.request import BuildRequest

__all__ = ["DEBOUNCE_SECONDS", "OnDemand", "install", "plan_missing"]

_log = logging.getLogger(__name__)

MAX_LOCK_CHARS = 8 << 20
"""The longest lock file ``POST /api/builds`` reads (a 300-package hashed lock is ~300 KiB)."""

LockFormat = Literal[
    "requirements", "uv.lock", "poetry.lock", "pdm.lock", "pylock.toml", "Pipfile.lock"
]
"""fromsource.lockfiles.FORMATS, spelled out for the API's schema."""

DEBOUNCE_SECONDS = 60.0
"""A missing project is queued again only after this long (pip asks for it many times)."""


def plan_missing(
    state: IndexState, project: str, now: datetime | None = None
) -> BuildRequest | None:
    """The build request for *project*, missing from ``python``, under policy; None for none.

    Reads the project's upstream page through ``python-upstream``'s proxy
    and asks :func:`~fromsource.proxy.offers.on_demand` at *now*: the
    request is ``name<=V`` for the newest release V policy lets through
    (leaving out older ones it denies), with runtime dependencies, marked
    :attr:`~fromsource.workers.request.BuildRequest.under_policy` (the builder decides
    again, and so chooses each dependency's version under the same policy).  What
    policy holds back is audited (``build-refused``, actor ``on-demand``)
    and logged; so is an allow rule that lets the release through
    (``build-allowed``).  Nothing is queued when the upstream page cannot be
    read (a cooldown that cannot be checked must not pass), lacks the
    project, or lists no release policy lets through.
    """
    try:
        page = state.upstream.proxy.page(project)
    except FromsourceError as exc:  # no upstream index could be found
        _log.warning("build-on-demand: %s not queued: %s", project, exc.message)
        return None
    if page.error is not None:
        _log.warning(
            "build-on-demand: %s not queued: its upstream page could not be read (%s)",
            project,
            page.error,
        )
        return None
    if page.files is None:
        _log.info("build-on-demand: %s not queued: the upstream has no such project", project)
        return None
    demand = on_demand(project, page.files, policy=state.policy, now=now or datetime.now(UTC))
    state.audit([(a, d, None) for a, d in demand.audited], "python", actor="on-demand")
    requirement = demand.requirement
    if requirement is None:
        _log.warning("build-on-demand: %s", demand.message)
        return None
    _log.info("build-on-demand: %s", demand.message)
    return BuildRequest(requirement, repo="python", with_deps=True, under_policy=True)


class OnDemand:
    """Turns "missing project" events and API calls into queued build requests.

    *plan* turns a missing project into the request to queue, or None
    (:func:`plan_missing` in the server); it runs on the hand-off thread.
    """

    def __init__(
        self,
        settings: Settings,
        queue_factory: Callable[[], BuildQueue],
        plan: Callable[[str], BuildRequest | None],
        *,
        debounce: float = DEBOUNCE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.plan = plan
        self._queue_factory = queue_factory
        self._queue: BuildQueue | None = None
        self.debounce = debounce
        self.clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._handoff = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ondemand")

    @property
    def queue(self) -> BuildQueue:
        """The build queue (opened on first use)."""
        with self._lock:
            if self._queue is None:
                self._queue = self._queue_factory()
            return self._queue

    def missing(self, project: str) -> None:
        """A client asked for *project* and ``python`` has none: plan and queue its build
        (debounced), off the request's thread."""
        now = self.clock()
        with self._lock:
            last = self._last.get(project)
            if last is not None and now - last < self.debounce:
                return
            if len(self._last) > 10_000:
                self._last.clear()
            self._last[project] = now
        self._handoff.submit(self._queue_missing, project)

    def _queue_missing(self, project: str) -> None:
        try:
            request = self.plan(project)
            if request is not None:
                self.queue.submit(request)
        except Exception:  # noqa: BLE001 - the hand-off thread must outlive one failure
            _log.exception("build-on-demand: %s was not queued", project)

    def request(self, request: BuildRequest) -> None:
        """Queue *request* now (the API path: no debouncing)."""
        self.queue.submit(request)


class LockFile(BaseModel):
    """A lock or requirements file sent as text."""

    text: str = Field(max_length=MAX_LOCK_CHARS, description="the file's text")
    name: str = Field(
        "requirements.txt",
        min_length=1,
        max_length=255,
        description="its file name (uv.lock, poetry.lock, pdm.lock, pylock.toml, "
        "Pipfile.lock; anything else is read as requirements unless the text says otherwise)",
    )
    format: LockFormat | None = Field(
        None, description="the format, when the name does not tell it"
    )


class BuildsRequest(BaseModel):
    """Builds to queue: named requirements, or every pin of one lock file."""

    requirements: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="requirements such as flask==2.0.0 or flask (newest)",
    )
    lock: LockFile | None = Field(
        None,
        description="a lock or requirements file: its exact pins are built (a job: "
        "GET /api/builds?job=ID shows its progress)",
    )
    repo: str = Field(
        "python",
        description="python (remediated versions are built with `fromsource remediate`)",
    )
    with_deps: bool = Field(False, description="also build the runtime dependencies")


router = APIRouter(prefix="/api")


@router.post(
    "/builds",
    status_code=202,
    summary="Queue builds of requirements, or of a lock file's pins as a job (in-process or to the workers)",
)
def builds_create(request: Request, body: BuildsRequest, admin: Admin) -> dict[str, object]:
    ondemand: OnDemand = request.app.state.ondemand
    if body.repo != "python":
        raise HTTPException(
            400,
            f"builds are requested into python, not {body.repo!r}; remediated versions are "
            "built with `fromsource remediate`",
        )
    if (body.lock is None) == (not body.requirements):
        raise HTTPException(400, "send either requirements or a lock file (not both)")
    if body.lock is not None:
        if body.with_deps:
            raise HTTPException(
                400, "a lock pins its whole closure: with_deps goes with requirements only"
            )
        return _lock_job(request, ondemand, body.lock, body.repo, admin)
    for text in body.requirements:
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise HTTPException(
                400, f"{text!r} is not a requirement such as flask==2.0.0: {exc}"
            ) from exc
    queued = []
    for text in body.requirements:
        build = BuildRequest(text, repo=body.repo, with_deps=body.with_deps)
        ondemand.request(build)
        queued.append(build.to_json())
    return {"queue": ondemand.queue.kind, "queued": queued}


def _lock_job(
    request: Request, ondemand: OnDemand, upload: LockFile, repo: str, admin: str
) -> dict[str, object]:
    """Plan the closure of *upload*, store it as a job, queue what is not built yet."""
    # The pipeline's planning and the job store are loaded on the first lock only.
    from fromsource.build.closure import plan_closure, target_environments
    from fromsource.build.context import build_targets
    from fromsource.build.jobs import create_job, job_status, unbuilt
    from fromsource.config import upstream_url
    from fromsource.lockfiles import Lock, detect_format, parse_lock
    from fromsource.lockfiles.reqfile import parse_requirements

    state: IndexState = request.app.state.index
    name = upload.name.replace("\\", "/").rsplit("/", 1)[-1] or "requirements.txt"
    try:
        fmt = upload.format or detect_format(name, upload.text)
        if fmt == "requirements" and parse_requirements(upload.text, name).includes:
            raise HTTPException(
                400,
                f"{name} includes other files (-r/-c), which an uploaded file cannot reach; "
                "send one file with every pin (pip-compile and uv pip compile write one)",
            )
        lock = Lock(fmt, name, parse_lock(fmt, upload.text, name), files=(name,))
    except FromsourceError as exc:
        raise HTTPException(status_for(exc), exc.to_json()) from exc
    targets = target_environments(build_targets(state.settings))
    plan = plan_closure([lock], targets, upstream_url=upstream_url(state.settings))
    job = create_job(state.db, plan, repo=repo, created_by=admin)
    for requirement in unbuilt(state.db, job):
        ondemand.request(BuildRequest(requirement, repo=repo))
    return {
        "queue": ondemand.queue.kind,
        "status_url": f"/api/builds?job={job.id}",
        **job_status(state.db, job).to_json(),
    }


def install(api: FastAPI, state: IndexState) -> None:
    """Register ``POST /api/builds`` and, with build-on-demand, the missing-project hook."""
    ondemand = OnDemand(
        state.settings, lambda: open_queue(state.settings), lambda p: plan_missing(state, p)
    )
    api.state.ondemand = ondemand
    api.include_router(router)
    if state.settings.build_on_demand:
        state.on_missing_project = ondemand.missing
