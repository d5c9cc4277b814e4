"""``fromsource workers``: the fleet's workers, the build targets each has, and who builds what."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import click

from fromsource.build.targets import Target
from fromsource.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    handle_errors,
    print_json,
    settings_from,
)
from fromsource.errors import FromsourceError
from fromsource.workers.routing import Advert, FleetView, fleet_view, queue_name, unserved

__all__ = ["render_text", "workers"]


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in rows
    ]


def _live_workers(target: Target, adverts: Sequence[Advert], now: datetime) -> list[str]:
    return [a.worker for a in adverts if a.live(now) and target.tag in a.tags]


def render_text(
    adverts: Sequence[Advert],
    fleet: FleetView,
    depths: Mapping[str, int] | None,
    now: datetime,
) -> list[str]:
    """The workers (state, last seen, targets), then the wanted targets (live workers,
    requests waiting in their queue when *depths* is known, the queue)."""
    lines: list[str] = []
    if adverts:
        rows = [("worker", "host", "state", "last seen", "targets")]
        rows += [
            (
                a.worker,
                a.host,
                "live" if a.live(now) else "stale",
                _ago(a.last_seen, now),
                ", ".join(f"{t.name} ({t.tag})" for t in a.targets) or "-",
            )
            for a in adverts
        ]
        lines += _table(rows)
    else:
        lines.append("no worker has advertised itself (start `fromsource worker`)")
    if fleet.wanted:
        lines.append("")
        rows = [("wanted", "tag", "live workers", "waiting", "queue")]
        for target in fleet.wanted:
            queue = queue_name(target.tag)
            waiting = "-" if depths is None else str(depths.get(queue, 0))
            live = len(_live_workers(target, adverts, now))
            rows.append((target.name, target.tag, str(live), waiting, queue))
        lines += _table(rows)
    return lines


@click.command(
    help="List the fleet's build workers: each `fromsource worker` process with its host, "
    "whether it is live (it refreshes its row every --lease), when it was last seen and the "
    "build targets it has; then the targets the fleet builds (the build_pythons setting over "
    "what the workers have), how many live workers have each, and how many requests wait in "
    "its queue (with a broker). A request for a release goes to the workers that have its "
    "targets; the requests of a target no live worker has wait in its queue.\n\n"
    "Exit codes: 0 ok, 1 a wanted target has no live worker (or no worker is known), "
    "2 operational error."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
@handle_errors
def workers(ctx: click.Context, fmt: str) -> None:
    from fromsource.build.interpreters import running_target
    from fromsource.store.db import open_database
    from fromsource.workers import registry

    settings = settings_from(ctx)
    db = open_database(settings.resolved_database_url)
    try:
        adverts = registry.adverts(db)
    finally:
        db.dispose()
    now = datetime.now(UTC)
    like: Target | None = None
    if not any(a.targets for a in adverts):
        try:
            like = running_target()
        except FromsourceError:
            like = None
    fleet = fleet_view(adverts, (), settings.build_pythons, now, like=like)
    depths: dict[str, int] | None = None
    if settings.broker_url:
        depths = _depths(settings.broker_url, [queue_name(t.tag) for t in fleet.wanted])
    missing = unserved(fleet.wanted, fleet.live)
    if fmt == "json":
        print_json(
            {
                "schema_version": 1,
                "workers": [
                    {
                        "id": a.worker,
                        "host": a.host,
                        "live": a.live(now),
                        "started": a.started.isoformat(),
                        "last_seen": a.last_seen.isoformat(),
                        "refresh_seconds": a.interval,
                        "targets": [t.to_json() for t in a.targets],
                    }
                    for a in adverts
                ],
                "wanted": [
                    {
                        "name": t.name,
                        "tag": t.tag,
                        "queue": queue_name(t.tag),
                        "live_workers": _live_workers(t, adverts, now),
                        "waiting": None if depths is None else depths.get(queue_name(t.tag), 0),
                    }
                    for t in fleet.wanted
                ],
                "unserved": [t.tag for t in missing],
            }
        )
    else:
        for line in render_text(adverts, fleet, depths, now):
            click.echo(line)
    for target in missing:
        click.echo(
            f"warning: no live worker has the build target {target.name} ({target.tag}); "
            f"its builds wait in the queue {queue_name(target.tag)} until a worker with that "
            "interpreter starts (fromsource targets on that machine shows what it has)",
            err=True,
        )
    sys.exit(EXIT_FINDINGS if missing or not adverts else EXIT_OK)


def _depths(broker_url: str, queues: list[str]) -> dict[str, int] | None:
    """Requests waiting per queue, or None (with a warning) when the broker cannot be read."""
    from kombu.exceptions import OperationalError

    from fromsource.workers.celery_app import queue_depths

    try:
        return queue_depths(broker_url, queues)
    except (OperationalError, OSError) as exc:
        click.echo(f"warning: could not read the broker's queues ({exc})", err=True)
        return None
