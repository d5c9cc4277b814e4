"""The progress display of a whole closure: what the live view draws, the plain lines."""

from __future__ import annotations

import io

from rich.console import Console

from fromsource.build.board import Board
from fromsource.build.outcome import ProgressEvent
from fromsource.cli.closure import BoardDisplay


def test_the_live_view_shows_counts_eta_and_each_jobs_package() -> None:
    now = [0.0]
    board = Board([("a", "1"), ("b", "1"), ("c", "1")], jobs=2, clock=lambda: now[0])
    board.update(ProgressEvent("a", "1", "fetch", "start"), "build_0")
    now[0] = 20.0
    board.update(ProgressEvent("a", "1", "", "succeeded"), "build_0")
    board.update(ProgressEvent("b", "1", "build", "start"), "build_0")
    board.update(ProgressEvent("c", "1", "deps", "start"), "build_1")
    screen = Console(file=io.StringIO(), width=100, color_system=None)
    display = BoardDisplay(screen, board, live=False, quiet=False)
    screen.print(display._render())
    drawn = screen.file.getvalue()  # type: ignore[attr-defined]
    assert "1/3 done, 2 running, 0 queued, 0 failed" in drawn and "ETA 10s" in drawn
    assert "build_0  b 1  build" in drawn and "build_1  c 1  deps" in drawn


def test_plain_lines_and_quiet() -> None:
    board = Board([("a", "1")])
    plain = Console(file=io.StringIO(), width=40, color_system=None)
    display = BoardDisplay(plain, board, live=False, quiet=False)
    display(ProgressEvent("a", "1", "fetch", "start"))
    display(ProgressEvent("a", "1", "", "succeeded", "published a-1-py3-none-any.whl in python"))
    assert plain.file.getvalue() == (  # type: ignore[attr-defined]
        "[1/1 done, 0 running, 0 queued, 0 failed] a 1 succeeded: published "
        "a-1-py3-none-any.whl in python\n"
    )
    quiet = Console(file=io.StringIO())
    BoardDisplay(quiet, Board([("a", "1")]), live=False, quiet=True)(
        ProgressEvent("a", "1", "", "failed", "boom")
    )
    assert quiet.file.getvalue() == ""  # type: ignore[attr-defined]
