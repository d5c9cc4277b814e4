"""Build on demand, and build requests through the management API.

``install(api, state)`` (called by the app when this module exists):

- with ``build_on_demand``, a request for a project the ``python``
  repository lacks queues a build of its newest release with its runtime
  dependencies (``state.on_missing_project``); each project is queued at
  most once per :data:`DEBOUNCE_SECONDS` per server process, and the hot
  path never waits for the queue (a background thread hands requests over);
- ``POST /api/builds`` (admin) queues builds of named requirements.

Requests go to a :class:`~fromsource.workers.queue.BuildQueue`: Celery when
``broker_url`` is set, this process's own threads otherwise, made on first
use so a server that never builds never opens a broker connection.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, FastAPI, HTTPException, Request
from packaging.requirements import InvalidRequirement, Requirement
from pydantic import BaseModel, Field

from fromsource.config import Settings
from fromsource.index.api import Admin
from fromsource.index.state import IndexState
from fromsource.workers.queue import BuildQueue, open_queue
from fromsource.workers.request import BuildRequest

__all__ = ["DEBOUNCE_SECONDS", "OnDemand", "install"]

DEBOUNCE_SECONDS = 60.0
"""A missing project is queued again only after this long (pip asks for it many times)."""


class OnDemand:
    """Turns "missing project" events and API calls into queued build requests."""

    def __init__(
        self,
        settings: Settings,
        queue_factory: Callable[[], BuildQueue],
        *,
        debounce: float = DEBOUNCE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
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
        """A client asked for *project* and ``python`` has none: queue its build (debounced)."""
        now = self.clock()
        with self._lock:
            last = self._last.get(project)
            if last is not None and now - last < self.debounce:
                return
            if len(self._last) > 10_000:
                self._last.clear()
            self._last[project] = now
        request = BuildRequest(project, repo="python", with_deps=True)
        self._handoff.submit(self.queue.submit, request)

    def request(self, request: BuildRequest) -> None:
        """Queue *request* now (the API path: no debouncing)."""
        self.queue.submit(request)


class BuildsRequest(BaseModel):
    """Builds to queue."""

    requirements: list[str] = Field(
        min_length=1, description="requirements such as flask==2.0.0 or flask (newest)"
    )
    repo: str = Field(
        "python",
        description="python (remediated versions are built with `fromsource remediate`)",
    )
    with_deps: bool = Field(False, description="also build the runtime dependencies")


router = APIRouter(prefix="/api")


@router.post("/builds", status_code=202, summary="Queue builds (in-process or to the workers)")
def builds_create(request: Request, body: BuildsRequest, _admin: Admin) -> dict[str, object]:
    ondemand: OnDemand = request.app.state.ondemand
    if body.repo != "python":
        raise HTTPException(
            400,
            f"builds are requested into python, not {body.repo!r}; remediated versions are "
            "built with `fromsource remediate`",
        )
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


def install(api: FastAPI, state: IndexState) -> None:
    """Register ``POST /api/builds`` and, with build-on-demand, the missing-project hook."""
    ondemand = OnDemand(state.settings, lambda: open_queue(state.settings))
    api.state.ondemand = ondemand
    api.include_router(router)
    if state.settings.build_on_demand:
        state.on_missing_project = ondemand.missing
