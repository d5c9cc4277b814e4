"""``fromsource build``, ``rebuild --check`` and ``builds list|show``.

Thin: parse, build a :class:`~fromsource.build.pipeline.BuildContext` from
the settings, call the pipeline, print.  Progress goes to stderr (a live
display on a TTY, one line per finished build otherwise); results go to
stdout.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from fromsource.build.batch import build_many
from fromsource.build.history import get_build, list_builds, log_digest
from fromsource.build.outcome import STEPS, BuildOutcome, ProgressEvent
from fromsource.build.rebuild import rebuild_matrix
from fromsource.cli.build_options import (
    SandboxOptions,
    closure_options,
    live_progress,
    sandbox_options,
)
from fromsource.cli.closure import BuildOptions, build_locks, print_report, read_locks
from fromsource.cli.common import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    EXIT_FINDINGS,
    err,
    handle_errors,
    out,
    print_json,
    recover_lost_builds,
    settings_from,
)
from fromsource.config import REPOSITORIES
from fromsource.dist.names import Sha256
from fromsource.store.blobs import open_blob_store
from fromsource.store.db import open_database

__all__ = ["build", "builds", "rebuild"]

class _Display:
    """Progress for many concurrent builds: a rich live view on a TTY, plain lines otherwise."""

    def __init__(self, console: Console, live: bool, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.lock = threading.Lock()
        self.progress = (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                TextColumn("{task.fields[step]}"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            )
            if live and not quiet
            else None
        )
        self.tasks: dict[tuple[str, str], TaskID] = {}

    def __enter__(self) -> Self:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        with self.lock:
            name = f"{event.project} {event.version}"
            if self.progress is None:
                if event.step == "" and not self.quiet:
                    detail = event.message if event.state != "failed" else "(see below)"
                    self.console.print(f"{name}: {event.state} {detail}", highlight=False)
                return
            node = (event.project, event.version)
            if node not in self.tasks:
                self.tasks[node] = self.progress.add_task(name, total=len(STEPS), step="queued")
            task = self.tasks[node]
            if event.step and event.state == "start":
                self.progress.update(task, step=event.step)
            elif event.step and event.state == "done":
                self.progress.advance(task)
            elif not event.step:
                self.progress.update(task, completed=len(STEPS), step=event.state)


def _summary(outcomes: Sequence[BuildOutcome]) -> Table:
    table = Table(title="builds")
    categories = max((len(o.category or "") for o in outcomes), default=0)
    columns = ("project", "version", "abi", "status", "category", "seconds", "wheel", "build")
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("seconds", "build") else "left",
            min_width=categories if column == "category" else None,
        )
    for outcome in sorted(outcomes, key=lambda o: (o.project, o.version, o.target or "")):
        style = {"succeeded": "green", "failed": "red", "skipped": "yellow"}.get(outcome.status)
        # The target's ABI tag (cp312, cp313t): the python tag repeats it, the platform is
        # the host's.
        abi = outcome.target.split("-")[1] if outcome.target else ""
        table.add_row(
            outcome.project,
            outcome.version,
            abi,
            f"[{style}]{outcome.status}[/]",
            outcome.category or "",
            f"{outcome.seconds:.1f}",
            outcome.wheel or "",
            str(outcome.build_id or ""),
        )
    return table


def _failures(outcomes: Sequence[BuildOutcome]) -> None:
    """One paragraph per failed build, on stderr, with where to read its log."""
    for outcome in outcomes:
        if outcome.status == "failed":
            err.print(
                f"{outcome.project} {outcome.version} failed [{outcome.category}]: "
                f"{outcome.message}\n  log: fromsource builds show {outcome.build_id}",
                highlight=False,
                markup=False,
            )


@click.command(
    help="Build REQUIREMENTS (name==version, or name / name>=x for the newest match) from "
    "their upstream sdists in the sandbox, and publish the wheels with SBOM and signed "
    "provenance.\n\nWith -r FILE or --lock FILE (requirements, uv.lock, poetry.lock, pdm.lock, "
    "pylock.toml, Pipfile.lock) build exactly the versions the file pins, and report the "
    "coverage: per package built, already built, failed or skipped (why), and the totals "
    "(docs/adopt.md).\n\n" + EXIT_CODES_HELP + " (1: some build failed)"
)
@click.argument("requirements", nargs=-1)
@click.option(
    "-r",
    "--requirement",
    "requirement_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Build the pins of this requirements file (with its -r/-c includes); repeatable.",
)
@click.option(
    "--lock",
    "lock_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Build the pins of this lock file (format detected); repeatable.",
)
@click.option("--with-deps", is_flag=True, help="Also build the runtime dependencies, recursively.")
@closure_options
@click.option("--repo", type=click.Choice(REPOSITORIES), default="python", show_default=True)
@click.option(
    "--agree",
    type=click.IntRange(1, 2),
    default=None,
    help="Independent builds that must make the same wheel before it is published "
    "[default: FROMSOURCE_AGREE, else 2 with a broker configured, else 1].",
)
@click.option(
    "--publish-irreproducible",
    is_flag=True,
    help="With --agree 2: publish even when the two builds differ (recorded in the provenance).",
)
@sandbox_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
@handle_errors
def build(
    ctx: click.Context,
    requirements: tuple[str, ...],
    requirement_files: tuple[Path, ...],
    lock_files: tuple[Path, ...],
    with_deps: bool,
    with_build_deps: bool,
    retry_failed: bool,
    jobs: int,
    repo: str,
    agree: int | None,
    publish_irreproducible: bool,
    sandbox: SandboxOptions,
    fmt: str,
    quiet: bool,
) -> None:
    if requirement_files or lock_files:
        if requirements or with_deps:
            raise click.UsageError(
                "-r/--lock build exactly what the files pin: give no REQUIREMENTS nor --with-deps"
            )
        report = build_locks(
            settings_from(ctx),
            read_locks(requirement_files, lock_files),
            BuildOptions(sandbox, jobs, repo, with_build_deps, retry_failed),
            live=live_progress(fmt),
            quiet=quiet,
        )
        print_report(report, fmt)
        if report.failed:
            sys.exit(EXIT_FINDINGS)
        return
    if not requirements:
        raise click.UsageError("give REQUIREMENTS, or -r/--lock files")
    build_ctx = sandbox.context(settings_from(ctx), agree=agree)
    if publish_irreproducible:
        if build_ctx.agree < 2:
            build_ctx.close()
            raise click.UsageError("--publish-irreproducible needs --agree 2")
        build_ctx = dataclasses.replace(build_ctx, publish_irreproducible=True)
    try:
        recover_lost_builds(build_ctx.db, settings_from(ctx), "build")
        build_ctx.tool()  # refuse early, with the message, when there is no sandbox
        with _Display(err, live_progress(fmt), quiet) as display:
            outcomes = build_many(
                build_ctx,
                list(requirements),
                with_deps=with_deps,
                with_build_deps=with_build_deps,
                jobs=jobs,
                repo=repo,
                progress=display,
                retry_failed=retry_failed,
            )
    finally:
        build_ctx.close()
    if fmt == "json":
        print_json({"schema_version": 1, "builds": [o.to_json() for o in outcomes]})
    else:
        out.print(_summary(outcomes))
        _failures(outcomes)
    if any(o.status == "failed" for o in outcomes):
        sys.exit(EXIT_FINDINGS)


@click.command(
    help="Build NAME==VERSION again from another path with exactly the recorded build "
    "dependencies (the same files by sha256) and interpreter, and compare it bit for bit with "
    "the published wheel (or, if none, with a first build): once per distinct wheel over the "
    "build targets (--python: only those). Nothing is published.\n\n"
    + EXIT_CODES_HELP
    + " (1: the wheels differ; 2 also when a recorded build dependency is gone everywhere: "
    "the message names it)"
)
@click.argument("requirement")
@click.option("--check", is_flag=True, required=True, help="Compare (the only mode for now).")
@click.option(
    "--python",
    "pythons",
    multiple=True,
    metavar="VERSION",
    help="Check only the wheel this target installs (3.12, 3.13t or an ABI tag); repeatable.",
)
@click.option("--repo", type=click.Choice(REPOSITORIES), default="python", show_default=True)
@sandbox_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
@handle_errors
def rebuild(
    ctx: click.Context,
    requirement: str,
    check: bool,
    pythons: tuple[str, ...],
    repo: str,
    sandbox: SandboxOptions,
    fmt: str,
) -> None:
    if not check:
        raise click.UsageError("rebuild needs --check")
    build_ctx = sandbox.context(settings_from(ctx))
    try:
        build_ctx.tool()
        reports = rebuild_matrix(build_ctx, requirement, pythons=pythons, repo=repo)
    finally:
        build_ctx.close()
    identical = all(r.identical for r in reports)
    if fmt == "json":
        checks = [r.to_json() for r in reports]
        print_json({"schema_version": 2, "identical": identical, "checks": checks})
    else:
        for report in reports:
            verdict = "[green]identical[/]" if report.identical else "[red]DIFFERENT[/]"
            target = escape(report.target or "")
            out.print(f"{report.project} {report.version} {target}: {verdict}", highlight=False)
            out.print(f"  wheel      {report.wheel}", highlight=False, markup=False)
            out.print(
                f"  reference  {report.reference_sha256}  {report.reference}", highlight=False
            )
            out.print(f"  rebuilt    {report.rebuilt_sha256}", highlight=False)
            for name in report.differing:
                out.print(f"  differs:   {name}", highlight=False)
            for name in report.only_in_reference:
                out.print(f"  only in reference: {name}", highlight=False)
            for name in report.only_in_rebuild:
                out.print(f"  only in rebuild:   {name}", highlight=False)
    if not identical:
        sys.exit(EXIT_FINDINGS)


@click.group(help="The build history: list builds and show one with its log.")
def builds() -> None:
    pass


@builds.command("list", help="List builds, newest first.")
@click.option("--project", help="Only this project (normalized name).")
@click.option(
    "--status", type=click.Choice(["queued", "running", "succeeded", "failed", "skipped"])
)
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
@handle_errors
def list_(
    ctx: click.Context, project: str | None, status: str | None, limit: int, fmt: str
) -> None:
    db = open_database(settings_from(ctx).resolved_database_url)
    records = list_builds(db, project=project, status=status, limit=limit)
    if fmt == "json":
        print_json({"schema_version": 1, "builds": [r.to_json(with_log=False) for r in records]})
        return
    table = Table(title="builds")
    for column in ("id", "project", "version", "repo", "status", "category", "seconds", "finished"):
        table.add_column(column)
    for r in records:
        seconds = f"{r.seconds:.1f}" if r.seconds is not None else ""
        finished = r.finished_at.strftime("%Y-%m-%d %H:%M:%S") if r.finished_at else ""
        table.add_row(
            str(r.id),
            r.project,
            r.version,
            r.repo,
            r.status,
            str(r.details.get("category") or ""),
            seconds,
            finished,
        )
    out.print(table)


@builds.command("show", help="Show one build: its facts and the end of its log.")
@click.argument("build_id", type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--full-log",
    is_flag=True,
    help="Print the whole stored log (the sandbox output, up to its cap) instead of its end.",
)
@click.pass_context
@handle_errors
def show(ctx: click.Context, build_id: int, fmt: str, full_log: bool) -> None:
    settings = settings_from(ctx)
    db = open_database(settings.resolved_database_url)
    record = get_build(db, build_id)
    if record is None:
        click.echo(f"error: there is no build {build_id}; see fromsource builds list", err=True)
        sys.exit(EXIT_ERROR)
    if fmt == "json":
        print_json({"schema_version": 1, **record.to_json()})
        return
    data = record.to_json(with_log=False)
    for key in (
        "id",
        "project",
        "version",
        "repo",
        "status",
        "category",
        "error",
        "key",
        "created_at",
        "started_at",
        "finished_at",
        "seconds",
    ):
        if data.get(key) is not None:
            click.echo(f"{key + ':':12} {data[key]}")
    wheel = record.details.get("wheel")
    if isinstance(wheel, dict):
        click.echo(f"{'wheel:':12} {wheel.get('filename')} sha256 {wheel.get('sha256')}")
    click.echo("")
    digest = log_digest(record.details) if full_log else None
    if digest is None:
        click.echo(record.log)
        return
    blobs = open_blob_store(settings.resolved_blob_url)
    size = blobs.size(Sha256(digest))
    sys.stdout.flush()
    for chunk in blobs.iter_range(Sha256(digest), 0, size - 1) if size else ():
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
