"""Build requests and their results: the values queues, tasks and the API pass around.

Kept free of heavy imports so the server can build requests without
loading the build pipeline.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from fromsource.workers.routing import QUEUE, queue_name

__all__ = ["BuildRequest", "RunResult", "RunStatus", "new_owner", "worker_id"]

RunStatus = Literal["succeeded", "skipped", "failed", "busy", "done", "waiting", "forwarded"]
"""``busy``: another builder holds the release; ``waiting``: this worker built another of
the release's independent builds, so another worker must build this one (issue 17), or it
lacks the request's target; ``forwarded``: a worker with the release's oldest target must
lead it (issue 12); ``skipped``: nothing was built, on purpose (no build target the
release admits, or, for an :attr:`~BuildRequest.under_policy` request, no release policy lets
through now: then there is no build row)."""


def worker_id(kind: str = "worker") -> str:
    """This process as claims, ballots and adverts name it: ``kind@host:pid``."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def new_owner(kind: str = "worker") -> str:
    """A unique name for one build attempt: host, process and a random tag."""
    return f"{worker_id(kind)}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class BuildRequest:
    """A request to build one requirement into a repository (the task's arguments)."""

    requirement: str
    repo: str = "python"
    with_deps: bool = False
    requested_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    slot: int | None = None
    """Which of the release's independent builds this request is (issue 17); None: a
    request for the release, which a fleet worker splits into one task per build."""
    target: str | None = None
    """Build only for the build target with this wheel tag (a request a worker routed to
    that target's queue, issue 12); None: the whole release."""
    lead: str | None = None
    """The whole release, to be led by a worker that has the target with this wheel tag (the
    release's oldest; sent to that target's queue and never forwarded again)."""
    under_policy: bool = False
    """Policy chooses the version, as for build-on-demand: only a release policy lets through
    now is built (its cooldown weighed too; :func:`~fromsource.proxy.offers.on_demand`).
    Set by build-on-demand and passed on to the dependency requests; an operator's build
    (False) takes the newest release the requirement admits."""

    @property
    def queue(self) -> str:
        """The Celery queue this request goes to: its target's (or lead's), else the
        queue of whole-release requests."""
        tag = self.target or self.lead
        return queue_name(tag) if tag else QUEUE

    def to_json(self) -> dict[str, object]:
        """The request as JSON-ready keyword arguments of the ``build`` task."""
        data: dict[str, object] = {
            "requirement": self.requirement,
            "repo": self.repo,
            "with_deps": self.with_deps,
            "requested_at": self.requested_at.isoformat(),
        }
        if self.slot is not None:
            data["slot"] = self.slot
        if self.target is not None:
            data["target"] = self.target
        if self.lead is not None:
            data["lead"] = self.lead
        if self.under_policy:
            data["under_policy"] = True
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> BuildRequest:
        """Parse what :meth:`to_json` wrote (a missing time means now)."""
        when = data.get("requested_at")
        moment = datetime.fromisoformat(str(when)) if when else datetime.now(UTC)
        return cls(
            requirement=str(data["requirement"]),
            repo=str(data.get("repo") or "python"),
            with_deps=bool(data.get("with_deps", False)),
            requested_at=moment if moment.tzinfo else moment.replace(tzinfo=UTC),
            slot=int(str(data["slot"])) if data.get("slot") is not None else None,
            target=str(data["target"]) if data.get("target") else None,
            lead=str(data["lead"]) if data.get("lead") else None,
            under_policy=bool(data.get("under_policy", False)),
        )


@dataclass(frozen=True)
class RunResult:
    """What became of one request."""

    status: RunStatus
    requirement: str
    project: str | None = None
    version: str | None = None
    build_id: int | None = None
    message: str = ""
    follow_up: tuple[BuildRequest, ...] = ()
    """Requests for the dependencies (``with_deps``)."""
    routed: tuple[BuildRequest, ...] = ()
    """Requests for the other workers: the release's targets this worker does not have
    (each to its target's queue), or the whole release forwarded to its lead's."""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary (the Celery task's return value)."""
        return {
            "status": self.status,
            "requirement": self.requirement,
            "project": self.project,
            "version": self.version,
            "build_id": self.build_id,
            "message": self.message,
            "follow_up": [r.requirement for r in self.follow_up],
            "routed": [r.queue for r in self.routed],
        }
