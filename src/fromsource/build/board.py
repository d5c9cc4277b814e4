"""The state of a batch of builds, for one progress display: counts, each job's package, an ETA.

A :class:`Board` is fed the pipeline's :class:`~fromsource.build.outcome.ProgressEvent`
values with the name of the job (the thread) that sent each, and answers
:meth:`Board.view`: how many builds are done, running, queued and failed,
which package (and step) each job is on, and an estimate of the time
left.  No I/O: the clock is a parameter, and the CLI draws the view.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fromsource.build.outcome import ProgressEvent

__all__ = ["Board", "BoardView", "JobLine"]

_FINAL = ("succeeded", "failed", "skipped")


@dataclass(frozen=True)
class JobLine:
    """What one job is building now (the innermost build, when it builds a build dependency)."""

    job: str
    project: str
    version: str
    step: str


@dataclass(frozen=True)
class BoardView:
    """A snapshot of the batch.

    *total* grows when a build dependency not planned is built on the way.
    *eta_seconds* is None until a build has finished.
    """

    total: int
    done: int
    running: int
    queued: int
    failed: int
    jobs: tuple[JobLine, ...]
    elapsed: float
    eta_seconds: float | None

    def counts_text(self) -> str:
        """``3/10 done, 2 running, 5 queued, 0 failed``."""
        return (
            f"{self.done + self.failed}/{self.total} done, {self.running} running, "
            f"{self.queued} queued, {self.failed} failed"
        )

    def eta_text(self) -> str:
        """``ETA 2m05s``, or ``ETA --`` before the first build has finished."""
        if self.eta_seconds is None:
            return "ETA --"
        seconds = round(self.eta_seconds)
        return f"ETA {seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"ETA {seconds}s"


class Board:
    """Counts and per-job state of a batch of builds; safe to feed from many threads.

    *planned* are the ``(project, version)`` the batch will build; *jobs*
    how many run at once (for the ETA); *clock* gives seconds.
    """

    def __init__(
        self,
        planned: Iterable[tuple[str, str]],
        jobs: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.jobs = max(1, jobs)
        self.started = clock()
        self._lock = threading.Lock()
        self._nodes: dict[tuple[str, str], str] = dict.fromkeys(planned, "queued")
        self._began: dict[tuple[str, str], float] = {}
        self._durations: list[float] = []
        self._stacks: dict[str, list[tuple[str, str, str]]] = {}

    def update(self, event: ProgressEvent, job: str) -> str | None:
        """Take *event*, sent by *job*; returns the final state when a build just ended."""
        node = (event.project, event.version)
        with self._lock:
            stack = self._stacks.setdefault(job, [])
            if event.step == "" and event.state in _FINAL:
                self._nodes[node] = "failed" if event.state == "failed" else "done"
                began = self._began.pop(node, None)
                if began is not None and event.state != "skipped":
                    self._durations.append(self.clock() - began)
                self._stacks[job] = [s for s in stack if (s[0], s[1]) != node]
                return event.state
            if self._nodes.get(node) != "running":
                self._nodes[node] = "running"
                self._began[node] = self.clock()
            step = event.step if event.state == "start" else f"{event.step} done"
            rest = [s for s in stack if (s[0], s[1]) != node]
            if len(rest) < len(stack):  # already on this job's stack: update in place
                self._stacks[job] = [
                    (p, v, step) if (p, v) == node else (p, v, s) for p, v, s in stack
                ]
            else:
                self._stacks[job] = [*stack, (event.project, event.version, step)]
            return None

    def view(self) -> BoardView:
        """The current snapshot."""
        with self._lock:
            states = list(self._nodes.values())
            done, failed = states.count("done"), states.count("failed")
            running, queued = states.count("running"), states.count("queued")
            jobs = tuple(
                JobLine(job, *stack[-1]) for job, stack in sorted(self._stacks.items()) if stack
            )
            average = sum(self._durations) / len(self._durations) if self._durations else None
        eta = None
        if average is not None:
            waves = (queued + self.jobs - 1) // self.jobs
            eta = average * waves + (average / 2 if running else 0.0)
        return BoardView(
            len(states), done, running, queued, failed, jobs, self.clock() - self.started, eta
        )
