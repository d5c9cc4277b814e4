"""Where ``serve`` sends builds: a Celery broker when one is configured, else its own threads.

:class:`BuildQueue` is the small interface; :class:`InProcessQueue` is the
embedded default (a few daemon threads in the server process run
:func:`~fromsource.workers.runner.run_request`), :class:`CeleryQueue` sends
the request to ``fromsource worker`` processes through Redis.  Both go
through the same claims, so several replicas building in-process over one
database still build each release once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from fromsource.config import Settings
from fromsource.workers.request import BuildRequest, new_owner

if TYPE_CHECKING:
    from fromsource.build.pipeline import BuildContext

__all__ = ["BuildQueue", "CeleryQueue", "InProcessQueue", "open_queue"]

log = logging.getLogger("fromsource.workers")


class BuildQueue(Protocol):
    """Accepts build requests; builds them somewhere, some time soon."""

    kind: str
    """``in-process`` or ``celery`` (shown by the API)."""

    def submit(self, request: BuildRequest) -> None:
        """Queue *request*; returns at once (never waits for the build)."""

    def close(self) -> None:
        """Stop taking requests and release resources."""


class InProcessQueue:
    """Builds on *threads* daemon threads of this process (the embedded default).

    Requests already waiting or running here are not queued twice.  The
    build context is made on first use by *context*.  A request whose
    release another process is building is dropped: that builder settles it
    (and if it dies, the next request for the release takes its claim over).
    """

    kind = "in-process"

    def __init__(
        self,
        context: Callable[[], BuildContext],
        *,
        threads: int = 1,
        lease_seconds: float = 60.0,
    ) -> None:
        self._context_factory = context
        self._context: BuildContext | None = None
        self._threads = max(1, threads)
        self.lease_seconds = lease_seconds
        self._queue: queue.Queue[BuildRequest | None] = queue.Queue()
        self._pending: set[tuple[str, str, bool]] = set()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._closed = False
        self.idle = threading.Event()
        self.idle.set()

    @staticmethod
    def _key(request: BuildRequest) -> tuple[str, str, bool]:
        return (request.repo, request.requirement, request.with_deps)

    def submit(self, request: BuildRequest) -> None:
        with self._lock:
            if self._closed or self._key(request) in self._pending:
                return
            self._pending.add(self._key(request))
            self.idle.clear()
            if not self._workers:
                for number in range(self._threads):
                    thread = threading.Thread(
                        target=self._loop, name=f"build-{number}", daemon=True
                    )
                    thread.start()
                    self._workers.append(thread)
        self._queue.put(request)

    def _ctx(self) -> BuildContext:
        with self._lock:
            if self._context is None:
                self._context = self._context_factory()
            return self._context

    def _loop(self) -> None:
        while (request := self._queue.get()) is not None:
            try:
                from fromsource.workers.runner import run_request

                result = run_request(
                    self._ctx(), request, owner=new_owner("serve"), lease_seconds=self.lease_seconds
                )
                log.info("%s: %s %s", request.requirement, result.status, result.message)
                for follow in result.follow_up:
                    self.submit(follow)
            except Exception:
                log.exception("build of %s failed unexpectedly", request.requirement)
            finally:
                with self._lock:
                    self._pending.discard(self._key(request))
                    if not self._pending:
                        self.idle.set()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        for _ in workers:
            self._queue.put(None)


class CeleryQueue:
    """Sends requests to ``fromsource worker`` processes through a Redis broker."""

    kind = "celery"

    def __init__(self, broker_url: str) -> None:
        from fromsource.workers.celery_app import make_app

        self.app: Any = make_app(broker_url)

    def submit(self, request: BuildRequest) -> None:
        from fromsource.workers.celery_app import TASK_NAME

        self.app.send_task(TASK_NAME, kwargs=request.to_json(), queue=request.queue)

    def close(self) -> None:
        self.app.close()


def open_queue(settings: Settings, context: Callable[[], BuildContext] | None = None) -> BuildQueue:
    """The queue *settings* ask for: Celery when ``broker_url`` is set, in-process otherwise."""
    if settings.broker_url:
        return CeleryQueue(settings.broker_url)

    def from_settings() -> BuildContext:
        from fromsource.build.pipeline import BuildContext

        return BuildContext.from_settings(settings)

    return InProcessQueue(context or from_settings)
