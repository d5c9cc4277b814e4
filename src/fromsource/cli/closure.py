"""Building a lock's closure from the CLI: ``build -r/--lock`` and ``adopt`` share this.

Reads the lock files, plans (:func:`fromsource.build.closure.plan_closure`),
builds with one progress display for the whole closure, and prints the
coverage report.  Progress goes to stderr: on a terminal one live view
(a bar, done / running / queued / failed, the package and step of each
job, an ETA); otherwise one line per finished build.  Build logs stay in
``fromsource builds show ID``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from fromsource.build.board import Board
from fromsource.build.closure import (
    ClosurePlan,
    build_closure,
    plan_closure,
    target_environments,
)
from fromsource.build.coverage import CoverageReport, PackageCoverage
from fromsource.build.outcome import ProgressEvent
from fromsource.build.pipeline import BuildContext
from fromsource.cli.build_options import SandboxOptions
from fromsource.cli.common import err, out, print_json, recover_lost_builds
from fromsource.config import Settings
from fromsource.lockfiles import Lock, read_lock

__all__ = [
    "BoardDisplay",
    "BuildOptions",
    "build_locks",
    "plan_locks",
    "print_report",
    "read_locks",
    "unserved_lines",
]


def read_locks(requirements: Sequence[Path], locks: Sequence[Path]) -> list[Lock]:
    """The files of ``-r`` (read as requirements) and ``--lock`` (any format, detected)."""
    return [
        *(read_lock(path, fmt="requirements") for path in requirements),
        *(read_lock(path) for path in locks),
    ]


class BoardDisplay:
    """Progress of a whole closure: a live view on a terminal, plain lines otherwise."""

    def __init__(self, console: Console, board: Board, *, live: bool, quiet: bool) -> None:
        self.console = console
        self.board = board
        self.quiet = quiet
        self.lock = threading.Lock()
        self.live = (
            Live(
                get_renderable=self._render,
                console=console,
                refresh_per_second=4,
                transient=True,
            )
            if live and not quiet
            else None
        )

    def __enter__(self) -> Self:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
            self.console.print(self._headline(), highlight=False)

    def __call__(self, event: ProgressEvent) -> None:
        final = self.board.update(event, threading.current_thread().name)
        if final is None or self.live is not None or self.quiet:
            return
        view = self.board.view()
        detail = f": {event.message.splitlines()[0]}" if event.message and final != "failed" else ""
        with self.lock:
            self.console.print(
                f"[{view.counts_text()}] {event.project} {event.version} {final}{detail}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    def _headline(self) -> Text:
        view = self.board.view()
        return Text(f"builds: {view.counts_text()}, {view.elapsed:.0f}s elapsed")

    def _render(self) -> RenderableType:
        view = self.board.view()
        head = Table.grid(padding=(0, 1))
        head.add_row(
            ProgressBar(total=max(view.total, 1), completed=view.done + view.failed, width=30),
            Text(view.counts_text()),
            Text(view.eta_text(), style="cyan"),
        )
        jobs = Table.grid(padding=(0, 2))
        for line in view.jobs:
            jobs.add_row(
                Text(line.job, style="dim"),
                Text(f"{line.project} {line.version}"),
                Text(line.step, style="yellow"),
            )
        return Group(head, jobs)


@dataclass(frozen=True)
class BuildOptions:
    """The build options ``build`` and ``adopt`` share (see ``fromsource build --help``)."""

    sandbox: SandboxOptions
    jobs: int = 1
    repo: str = "python"
    with_build_deps: bool = False
    retry_failed: bool = False


def build_locks(
    settings: Settings, locks: Sequence[Lock], options: BuildOptions, *, live: bool, quiet: bool
) -> CoverageReport:
    """Build the closure of *locks* with the stores of *settings*; the coverage report.

    Closes builds left open by dead processes first, and refuses (SandboxError)
    before building anything when there is no sandbox.
    """
    ctx = options.sandbox.context(settings)
    try:
        recover_lost_builds(ctx.db, settings, "build")
        ctx.tool()
        plan = plan_locks(ctx, locks)
        board = Board([e.node for e in plan.entries if e.node is not None], options.jobs)
        with BoardDisplay(err, board, live=live, quiet=quiet) as display:
            return build_closure(
                ctx,
                plan,
                jobs=options.jobs,
                repo=options.repo,
                progress=display,
                with_build_deps=options.with_build_deps,
                retry_failed=options.retry_failed,
            )
    finally:
        ctx.close()


def plan_locks(ctx: BuildContext, locks: Sequence[Lock]) -> ClosurePlan:
    """The plan of *locks* for the targets builds are made for (markers evaluated per target)."""
    return plan_closure(locks, target_environments(ctx.build_targets()), upstream_url=ctx.upstream_url)


_STYLE = {"built": "green", "already-built": "green", "failed": "red", "skipped": "yellow"}


def _row(entry: PackageCoverage) -> tuple[str, ...]:
    style = _STYLE.get(entry.status, "")
    reason = entry.reason.splitlines()[0] if entry.reason else ""
    if entry.status == "failed" and entry.build_id:
        reason = f"{reason} (fromsource builds show {entry.build_id})"
    return (
        entry.name,
        entry.version or "",
        f"[{style}]{entry.status}[/]" if style else entry.status,
        entry.category or "",
        reason if entry.status in ("failed", "skipped") else (entry.wheel or ""),
    )


def unserved_lines(report: CoverageReport) -> list[str]:
    """One line per counted package the index does not serve: name, version, where, why."""
    lines = []
    for entry in report.unserved:
        pin = f"{entry.name}=={entry.version}" if entry.version else entry.name
        why = entry.reason.splitlines()[0] if entry.reason else entry.status
        category = f" [{entry.category}]" if entry.category else ""
        lines.append(f"{pin} ({entry.location}){category}: {why}")
    return lines


def print_report(report: CoverageReport, fmt: str) -> None:
    """The coverage report on stdout: a table and the totals, or JSON."""
    if fmt == "json":
        print_json(report.to_json())
        return
    table = Table(title=f"coverage of {', '.join(report.files)} ({report.format})")
    for column in ("package", "version", "status", "category", "wheel / reason"):
        table.add_column(column, overflow="fold")
    for entry in report.packages:
        table.add_row(*(_row(entry)))
    out.print(table)
    if report.build_dependencies:
        deps = Table(title="build dependencies built from source on the way")
        for column in ("package", "version", "status", "category", "wheel / reason"):
            deps.add_column(column, overflow="fold")
        for entry in report.build_dependencies:
            deps.add_row(*_row(entry))
        out.print(deps)
    out.print(report.summary(), highlight=False)
    for entry in report.packages:
        if entry.status == "failed":
            err.print(
                f"{entry.name} {entry.version} failed [{entry.category}]: {entry.reason}"
                f"\n  log: fromsource builds show {entry.build_id}",
                highlight=False,
                markup=False,
            )
