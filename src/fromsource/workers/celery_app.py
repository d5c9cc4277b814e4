"""The Celery side: the app, the ``fromsource.build`` task, the worker and its sweeper.

Delivery is at-least-once and the claims make it exactly-once per release:

- ``acks_late``: a message is acknowledged only after its task returned, so a
  worker that dies mid-build leaves it unacknowledged; Redis hands it out
  again after the broker's visibility timeout.  ``task_reject_on_worker_lost``
  does the same at once when only a pool process dies.
- Faster than the visibility timeout, every worker runs a *sweeper*: each
  lease period it re-enqueues the stored request of every claim whose lease
  expired (its builder stopped renewing it), so a killed worker's build is
  retried within about two leases.
- A task whose release another worker holds retries itself after a short
  countdown until that build settled; a duplicate message of a settled
  release is a no-op.  So two workers asked for the same build produce one
  build row and one published file.
- When independent builds must agree (``agree`` 2, the fleet's default,
  issue 17), a request for a release becomes one task per build (a *slot*):
  the worker that takes it builds slot 1 and sends the others.  A worker that
  built one slot of a release is refused the others (the claims): it passes
  the task on, alternately sent at once while it holds its place for a
  second (so an idle worker fetches it) and retried after a countdown.  One
  worker alone never publishes.

- Each worker advertises its build targets (:mod:`fromsource.workers.registry`,
  refreshed by its sweeper) and consumes one queue per target beside the
  queue of whole releases (:func:`~fromsource.workers.routing.worker_queues`).
  A release is led by a worker with its oldest wanted target (others
  forward the request to that target's queue), which builds its own targets
  and sends each other target the release still needs to that target's
  queue (issue 12, :mod:`fromsource.workers.runner`).

The task runs in threads of the worker process (``pool="threads"``): builds
spend their time in sandbox subprocesses, and one
:class:`~fromsource.build.pipeline.BuildContext` (database pool, blob store,
upstream client, signing key) serves all of them.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fromsource.build.pipeline import BuildContext
from fromsource.errors import ConfigError
from fromsource.workers import claims, registry
from fromsource.workers.request import BuildRequest, new_owner, worker_id
from fromsource.workers.routing import QUEUE, Advert, FleetView, fleet_view, worker_queues
from fromsource.workers.runner import run_request

__all__ = [
    "QUEUE",
    "TASK_NAME",
    "Sweeper",
    "WorkerConfig",
    "make_app",
    "queue_depths",
    "start_worker",
]

log = logging.getLogger("fromsource.workers")

TASK_NAME = "fromsource.build"
HANDOFF_SECONDS = 1.0
"""How long a worker refused a build keeps its place busy after sending the task on, so
that an idle worker fetches it (issue 17)."""
VISIBILITY_TIMEOUT = 3600.0
"""Seconds Redis waits before handing an unacknowledged message out again."""


def make_app(broker_url: str, *, visibility_timeout: float = VISIBILITY_TIMEOUT) -> Any:
    """A Celery app on *broker_url* (``redis://host:port/db``) with the build task.

    Returns ``celery.Celery`` (typed ``Any``: Celery ships no type hints).
    Raises ConfigError for a broker URL that is not Redis.
    """
    if not broker_url.startswith(("redis://", "rediss://", "redis+socket://")):
        raise ConfigError(f"broker URL {broker_url!r} is not a Redis URL; use redis://host:6379/0")
    from celery import Celery  # type: ignore[import-untyped]

    app = Celery("fromsource", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # Look for unacknowledged messages to restore every few seconds.
            "unacked_restore_interval": max(1, min(10, int(visibility_timeout / 4))),
            "unacked_restore_throttle": 1,
        },
    )
    app.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
        ignore_result=True,
    )(_build)
    return app


def queue_depths(broker_url: str, queues: Sequence[str]) -> dict[str, int]:
    """How many requests wait in each of *queues* (0 for a queue never used)."""
    from kombu.exceptions import ChannelError

    app = make_app(broker_url)
    depths: dict[str, int] = {}
    try:
        with app.connection_for_write() as connection:
            for name in queues:
                channel = connection.channel()
                try:
                    depths[name] = int(channel.queue_declare(name, passive=True).message_count)
                except ChannelError:  # a queue nobody sent to yet does not exist
                    depths[name] = 0
                finally:
                    channel.close()
    finally:
        app.close()
    return depths


@dataclass(frozen=True)
class WorkerConfig:
    """What the task needs inside a worker process: the build context, and the
    ``build_pythons`` setting that, over what the workers advertise, says which targets the
    fleet builds."""

    ctx: BuildContext
    lease_seconds: float = 60.0
    retry_seconds: float = 5.0
    build_pythons: tuple[str, ...] = field(default_factory=tuple)

    def fleet(self) -> FleetView:
        """The fleet as it is now (the workers' adverts), seen from this worker."""
        adverts = registry.adverts(self.ctx.db)
        local = self.ctx.build_targets()
        return fleet_view(adverts, local, self.build_pythons, datetime.now(UTC))


_config: WorkerConfig | None = None


def _build(
    task: Any,
    requirement: str,
    repo: str = "python",
    with_deps: bool = False,
    requested_at: str | None = None,
    slot: int | None = None,
    handoffs: int = 0,
    target: str | None = None,
    lead: str | None = None,
    under_policy: bool = False,
) -> dict[str, object]:
    """The ``fromsource.build`` task: build one requirement (one slot of it, for one target
    or led here) under its claim.

    *handoffs* counts how often a worker that may not build this slot passed it on.
    """
    config = _config
    if config is None:
        raise RuntimeError("the fromsource.build task runs only inside `fromsource worker`")
    request = BuildRequest.from_json(
        {
            "requirement": requirement,
            "repo": repo,
            "with_deps": with_deps,
            "requested_at": requested_at,
            "slot": slot,
            "target": target,
            "lead": lead,
            "under_policy": under_policy,
        }
    )
    agree = config.ctx.agree
    if agree > 1 and request.slot is None:
        # One task per independent build: this one builds the first, other workers the rest.
        request = dataclasses.replace(request, slot=1)
        for number in range(2, agree + 1):
            other = dataclasses.replace(request, slot=number)
            task.app.send_task(TASK_NAME, kwargs=other.to_json(), queue=other.queue)
    result = run_request(
        config.ctx,
        request,
        owner=new_owner(),
        lease_seconds=config.lease_seconds,
        fleet=config.fleet(),
    )
    for routed in result.routed:
        task.app.send_task(TASK_NAME, kwargs=routed.to_json(), queue=routed.queue)
    if result.status == "forwarded":
        log.info("%s: %s", requirement, result.message)
        return result.to_json()
    if result.status == "waiting":
        log.info("%s: %s", requirement, result.message)
        # Another worker must take it.  A retry with a countdown is an ETA message that
        # the first worker to fetch it holds, often this one again (it was just waiting
        # on the queue).  So every other time the task is sent at once while this
        # worker's place stays busy for a moment: any idle worker fetches it then.  In
        # between, a timed retry waits without taking a place.
        again = {**request.to_json(), "handoffs": handoffs + 1}
        if handoffs % 2 == 0:
            task.app.send_task(TASK_NAME, kwargs=again, queue=request.queue)
            time.sleep(HANDOFF_SECONDS)
            return result.to_json()
        raise task.retry(
            kwargs=again, countdown=config.retry_seconds, max_retries=None, queue=request.queue
        )
    if result.status == "busy":
        # With the request's slot: a retried request is not split again.
        raise task.retry(
            kwargs=request.to_json(),
            countdown=config.retry_seconds,
            max_retries=None,
            queue=request.queue,
        )
    for follow in result.follow_up:
        task.app.send_task(TASK_NAME, kwargs=follow.to_json(), queue=follow.queue)
    log.info("%s: %s %s", requirement, result.status, result.message)
    return result.to_json()


class Sweeper:
    """Every lease period: re-enqueues builds whose worker died (expired leases) and
    refreshes this worker's advert (its build targets, :mod:`fromsource.workers.registry`)."""

    def __init__(self, ctx: BuildContext, app: Any, lease_seconds: float) -> None:
        self.ctx = ctx
        self.app = app
        self.lease_seconds = lease_seconds
        self.owner = new_owner("sweeper")
        self.worker = worker_id()
        self.started = datetime.now(UTC)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="claim-sweeper", daemon=True)

    def sweep(self) -> int:
        """One pass: re-enqueue every expired claim this sweeper wins; return how many."""
        won = claims.requeue_expired(self.ctx.db, self.owner, lease_seconds=self.lease_seconds)
        for view in won:
            request = dict(view.request) or {"requirement": f"{view.project}=={view.version}"}
            request["requirement"] = f"{view.project}=={view.version}"
            request.setdefault("repo", view.repo)
            queue = BuildRequest.from_json(request).queue
            self.app.send_task(TASK_NAME, kwargs=request, queue=queue)
            log.warning(
                "re-enqueued %s %s to %s: its worker %s stopped",
                view.project, view.version, queue, view.owner,
            )
        return len(won)

    def advertise(self) -> None:
        """Write this worker's advert now (and drop the rows of workers gone for a day)."""
        advert = Advert(
            worker=self.worker,
            host=socket.gethostname(),
            targets=self.ctx.build_targets(),
            started=self.started,
            last_seen=datetime.now(UTC),
            interval=self.lease_seconds,
        )
        registry.advertise(self.ctx.db, advert)
        registry.prune(self.ctx.db)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds):
            try:
                self.advertise()
            except Exception:
                log.exception("refreshing this worker's advert failed")
            try:
                self.sweep()
            except Exception:
                log.exception("sweeping expired build claims failed")

    def start(self) -> None:
        """Advertise, then sweep and advertise every lease period in a daemon thread."""
        self.advertise()
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass and withdraw the advert."""
        self._stop.set()
        try:
            registry.forget(self.ctx.db, self.worker)
        except Exception:
            log.exception("withdrawing this worker's advert failed")


def start_worker(
    ctx: BuildContext,
    broker_url: str,
    *,
    concurrency: int = 1,
    lease_seconds: float = 60.0,
    visibility_timeout: float = VISIBILITY_TIMEOUT,
    loglevel: str = "INFO",
    hostname: str | None = None,
    build_pythons: Sequence[str] = (),
) -> int:
    """Consume builds until shut down (SIGTERM: finish running builds; SIGQUIT: at once).

    Consumes the queue of whole releases and one queue per build target of
    *ctx*; *build_pythons* is the setting of that name (which targets the
    fleet builds).  Returns the worker's exit code.
    """
    global _config
    app = make_app(broker_url, visibility_timeout=visibility_timeout)
    _config = WorkerConfig(
        ctx,
        lease_seconds=lease_seconds,
        retry_seconds=max(0.5, min(5.0, lease_seconds / 2)),
        build_pythons=tuple(build_pythons),
    )
    queues = worker_queues(ctx.build_targets())
    from celery.signals import worker_ready  # type: ignore[import-untyped]

    def ready(**_: object) -> None:
        log.info("fromsource worker ready: consuming %s", ", ".join(queues))
        print("fromsource worker ready", file=sys.stderr, flush=True)

    worker_ready.connect(ready, weak=False)
    sweeper = Sweeper(ctx, app, lease_seconds)
    sweeper.start()
    worker = app.Worker(
        pool="threads",
        concurrency=concurrency,
        loglevel=loglevel,
        hostname=hostname or f"fromsource@{socket.gethostname()}",
        queues=list(queues),
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        optimization="fair",
    )
    try:
        worker.start()
    finally:
        sweeper.stop()
    return int(worker.exitcode or 0)
