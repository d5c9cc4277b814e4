"""``serve --follow-interval``: follow upstream from the server, and the counts in ``/metrics``.

``install(api, state)`` (called by the app) adds the ``follow`` counters to
``/metrics`` and, when ``follow_interval`` is set, a background task
(:class:`~fromsource.proxy.follow.Follower`) that runs
:func:`~fromsource.proxy.follow.follow_once` every interval, reading pages
through ``python-upstream``'s proxy and queueing builds on the server's
build queue (in-process, or the Celery workers with a broker).  Of several
processes on one database, one runs per interval.
"""

from __future__ import annotations

from fastapi import FastAPI

from fromsource.index.state import IndexState
from fromsource.proxy.follow import Follower, FollowReport, follow_counts, follow_once
from fromsource.workers.request import BuildRequest

__all__ = ["install", "metric_lines"]


def metric_lines(state: IndexState) -> list[str]:
    """Prometheus lines for the ``follow`` counters of the database (every process's runs)."""
    counts = follow_counts(state.db)
    last = counts.last_run.timestamp() if counts.last_run else 0
    return [
        "# HELP fromsource_follow_runs_total Runs of follow (every process on this database).",
        "# TYPE fromsource_follow_runs_total counter",
        f"fromsource_follow_runs_total {counts.runs}",
        "# HELP fromsource_follow_queued_total New upstream releases follow queued for build.",
        "# TYPE fromsource_follow_queued_total counter",
        f"fromsource_follow_queued_total {counts.queued}",
        "# HELP fromsource_follow_errors_total Upstream pages follow could not read.",
        "# TYPE fromsource_follow_errors_total counter",
        f"fromsource_follow_errors_total {counts.errors}",
        "# HELP fromsource_follow_last_run_timestamp_seconds When follow last ran (0: never).",
        "# TYPE fromsource_follow_last_run_timestamp_seconds gauge",
        f"fromsource_follow_last_run_timestamp_seconds {last:.0f}",
        "# HELP fromsource_follow_last_queued Releases the last run of follow queued.",
        "# TYPE fromsource_follow_last_queued gauge",
        f"fromsource_follow_last_queued {counts.last_queued}",
    ]


def install(api: FastAPI, state: IndexState) -> None:
    """Add the counters to ``/metrics``; with ``follow_interval``, follow in the background."""
    state.metrics.sources.append(lambda: metric_lines(state))
    interval = state.settings.follow_interval
    if interval <= 0:
        return

    def submit(request: BuildRequest) -> None:
        ondemand = getattr(api.state, "ondemand", None)
        if ondemand is None:  # pragma: no cover - the build-on-demand module ships with this one
            raise RuntimeError("no build queue in this server")
        ondemand.request(request)

    def run() -> FollowReport:
        return follow_once(state.db, state.upstream.proxy.page, submit)

    state.background.append(Follower(state.db, interval, run))
