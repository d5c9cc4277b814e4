"""``fromsource fsck``: check that the database and the blob store agree, and repair.

It also looks for builds whose process died (:mod:`fromsource.build.lost`).
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta

import click

from fromsource.build.lost import recover
from fromsource.cli.common import EXIT_FINDINGS, EXIT_OK, handle_errors, print_json, settings_from
from fromsource.policy.withdraw import withdraw_malicious
from fromsource.store.blobs import open_blob_store
from fromsource.store.db import open_database
from fromsource.store.fsck import DEFAULT_GRACE, run_fsck, summary_lines

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_grace(text: str) -> timedelta:
    """``0``, ``90s``, ``30m``, ``1h`` or ``2d`` as a timedelta; BadParameter otherwise."""
    match = _DURATION.match(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 0, 90s, 30m, 1h or 2d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@click.command(
    help="Check that the database and the blob store agree: orphan blobs (referenced by no "
    "file or build), references whose blob is missing, blobs whose bytes do not match their "
    "sha256, and the database's own integrity; and builds left queued or running by a process "
    "of this host that is gone (killed), with their work trees.\n\n"
    "--repair deletes orphans older than --grace (default 1h, so a publish in flight is never "
    "touched; use 0 only when nothing publishes), restores missing metadata from its wheel, "
    "moves mismatched blobs aside and yanks files whose bytes are gone; it closes the builds "
    "of dead processes as failed (worker-lost) and removes work trees no running build owns "
    "(one no build names only once older than --grace).\n\n"
    "It lists the built files of releases a malware record (MAL-) names: withdrawn ones, and "
    "any not yet withdrawn (a problem; --repair yanks them with the MAL id as the reason).\n\n"
    "Exit codes: 0 everything agrees (or was repaired), 1 problems left, 2 operational error."
)
@click.option("--repair", is_flag=True, help="Fix what can be fixed (see above).")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="Orphans and temporary files younger than this are left alone.",
)
@click.option(
    "--skip-digests", is_flag=True, help="Do not re-hash every blob (much faster on big stores)."
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
@handle_errors
def fsck(ctx: click.Context, repair: bool, grace: str, skip_digests: bool, fmt: str) -> None:
    settings = settings_from(ctx)
    window = parse_grace(grace) if grace else DEFAULT_GRACE
    db = open_database(settings.resolved_database_url)
    try:
        report = run_fsck(
            db,
            open_blob_store(settings.resolved_blob_url),
            repair=repair,
            grace=window,
            verify_digests=not skip_digests,
        )
        builds = recover(
            db, settings.work_root, repair=repair, grace=window, closed_by="fsck --repair"
        )
        malware = withdraw_malicious(db, repair=repair, actor="fsck --repair")
    finally:
        db.dispose()
    problems = report.problems + builds.problems + malware.problems
    if fmt == "json":
        print_json(
            {
                **report.to_json(),
                "ok": not problems,
                "problems": problems,
                "builds": builds.to_json(),
                "malware": malware.to_json(),
            }
        )
    else:
        extra = [*builds.lines(), *malware.lines()]
        for line in summary_lines(report, extra, builds.problems + malware.problems):
            click.echo(line)
    sys.exit(EXIT_FINDINGS if problems else EXIT_OK)
