"""``fromsource follow``: queue builds of new upstream releases of every project the index carries."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import click

from fromsource.cli.common import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    handle_errors,
    print_json,
    recover_lost_builds,
    settings_from,
)
from fromsource.config import Settings, upstream_url
from fromsource.proxy.follow import FollowReport, claim_run, follow_once
from fromsource.proxy.offers import Release
from fromsource.proxy.source import UpstreamProxy
from fromsource.store.blobs import open_blob_store
from fromsource.store.db import Database, open_database
from fromsource.workers.queue import BuildQueue, InProcessQueue, open_queue

SCHEMA_VERSION = 1


def _builds(db: Database, queued: Sequence[Release]) -> list[dict[str, object]]:
    """The newest build into ``python`` of each queued release (after an in-process run)."""
    from fromsource.build.history import list_builds

    found = []
    for release in queued:
        record = next(
            (
                b
                for b in list_builds(db, project=release.project, limit=20)
                if b.version == release.version and b.repo == "python"
            ),
            None,
        )
        found.append(
            {
                "project": release.project,
                "version": release.version,
                "build_id": record.id if record else None,
                "status": record.status if record else "queued",
                "category": record.details.get("category") if record else None,
            }
        )
    return found


def _print(
    report: FollowReport, builds: list[dict[str, object]] | None, fmt: str, dry_run: bool
) -> None:
    if fmt == "json":
        document = {"schema_version": SCHEMA_VERSION, "dry_run": dry_run, **report.to_json()}
        print_json({**document, "builds": builds})
        return
    queued = "to queue (dry run)" if dry_run else "queued"
    click.echo(
        f"follow: {report.projects} project(s), {len(report.queued)} new release(s) {queued}, "
        f"{len(report.held)} held by policy, {len(report.errors)} upstream error(s)",
        err=True,
    )
    for release in report.queued:
        click.echo(f"{'would queue' if dry_run else 'queued'}  {release.project} {release.version}")
    for release in report.held:
        click.echo(
            f"held    {release.project} {release.version}  [{release.decision.verdict}] "
            f"{release.decision.reason}"
        )
    for project, message in report.errors:
        click.echo(f"error   {project}: {message}")
    for build in builds or ():
        category = f" [{build['category']}]" if build["category"] else ""
        click.echo(
            f"build   {build['project']} {build['version']}: {build['status']}{category}"
            + (f" (build {build['build_id']})" if build["build_id"] else "")
        )


@click.command(
    help="Queue builds of new upstream releases: for every project with a file in `python`, "
    "the upstream releases newer than the newest the index has that are past their cooldown "
    "and allowed by policy (malware records, block and allow rules), and were never built "
    "before. Without a broker (--broker-url) the builds run in this process. With --once, run "
    "once, wait for the builds and exit (1 when one failed, 2 when an upstream page could not "
    "be read); otherwise run every --interval seconds (one run per interval across every "
    "`follow` and `serve --follow-interval` on this database). See docs/policy.md.",
)
@click.option("--once", is_flag=True, help="Run once, wait for the builds it queued, exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=3600.0,
    show_default=True,
    help="Seconds between runs (without --once).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be queued; queue nothing.")
@click.option("--project", "projects", multiple=True, help="Only this project (repeatable).")
@click.option("--upstream", help="Upstream simple index (default: the configured one, or pip's).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
@handle_errors
def follow(
    ctx: click.Context,
    once: bool,
    interval: float,
    dry_run: bool,
    projects: tuple[str, ...],
    upstream: str | None,
    fmt: str,
) -> None:
    settings: Settings = settings_from(ctx)
    if upstream:
        settings = settings.model_copy(update={"upstream": upstream})
    db = open_database(settings.resolved_database_url)
    # Fresh pages on every run: a run is rare, and must see a release the moment it is out.
    blobs = open_blob_store(settings.resolved_blob_url)
    proxy = UpstreamProxy(db, blobs, upstream_url(settings), page_ttl=0)
    queue: BuildQueue | None = None
    if not dry_run:
        recover_lost_builds(db, settings, "follow")
        queue = open_queue(settings)
    try:
        while True:
            if once or dry_run or claim_run(db, interval):
                report = follow_once(
                    db,
                    proxy.page,
                    queue.submit if queue is not None else None,
                    projects=projects or None,
                )
                builds = None
                if isinstance(queue, InProcessQueue):  # the builds run here: wait for them
                    queue.idle.wait()
                    builds = _builds(db, report.queued)
                _print(report, builds, fmt, dry_run)
                if once or dry_run:
                    failed = any(b["status"] == "failed" for b in builds or ())
                    code = EXIT_ERROR if report.errors else EXIT_FINDINGS if failed else EXIT_OK
                    sys.exit(code)
            time.sleep(min(interval, 5.0))
    finally:
        if queue is not None:
            queue.close()
        proxy.close()
        db.dispose()
