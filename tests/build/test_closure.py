"""The plan of a lock's closure, its coverage report and the progress board: pure values."""

from __future__ import annotations

import json
from pathlib import Path

from fromsource.build.board import Board
from fromsource.build.closure import TargetEnvironment, host_target, plan_closure, settle
from fromsource.build.coverage import CoverageReport, PackageCoverage, percent_text
from fromsource.build.outcome import BuildOutcome, ProgressEvent
from fromsource.lockfiles import Lock, parse_lock, read_lock

LINUX = TargetEnvironment("cp311-linux", {**host_target().environment, "sys_platform": "linux"})
WINDOWS = TargetEnvironment("cp311-win", {**host_target().environment, "sys_platform": "win32"})

UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1"
source = { virtual = "." }
dependencies = [{ name = "demo-pkg" }]

[[package]]
name = "demo-pkg"
version = "1.0"
source = { registry = "https://upstream.example/simple/" }

[[package]]
name = "torchish"
version = "2.0"
source = { registry = "https://wheels.example/cpu/" }

[[package]]
name = "gitdep"
version = "0.3"
source = { git = "https://git.example/gitdep?rev=abc#abc" }
"""


def _lock(fmt: str, text: str, origin: str = "lock") -> Lock:
    return Lock(fmt, origin, parse_lock(fmt, text, origin), files=(origin,))


def _by_name(entries: object) -> dict[str, PackageCoverage]:
    return {e.name: e for e in entries}  # type: ignore[attr-defined]


def test_uv_lock_plan_builds_main_index_pins_and_reports_the_rest() -> None:
    plan = plan_closure([_lock("uv.lock", UV_LOCK)], [LINUX])
    assert plan.requirements == ("demo-pkg==1.0",)
    entries = _by_name(e.entry for e in plan.entries)
    assert (entries["app"].status, entries["app"].category, entries["app"].counted) == (
        "skipped",
        "project",
        False,
    )
    assert entries["torchish"].category == "other-index"
    assert "https://wheels.example/cpu/" in entries["torchish"].reason
    assert entries["gitdep"].category == "vcs" and "git.example" in entries["gitdep"].reason
    assert entries["demo-pkg"].status == "queued" and entries["demo-pkg"].location == "lock:10"
    # The upstream fromsource builds from is never "another index".
    upstream = plan_closure(
        [_lock("uv.lock", UV_LOCK)], [LINUX], upstream_url="https://wheels.example/cpu"
    )
    assert upstream.requirements == ("demo-pkg==1.0", "torchish==2.0")


def test_requirements_markers_are_evaluated_per_target(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("shared==1.0\nwinonly==2.0 ; sys_platform == 'win32'\n")
    (tmp_path / "requirements.txt").write_text(
        "-r base.txt\n-c constraints.txt\nshared==1.0\nloose>=1\n"
        "./vendored/pkg\nhttps://files.example/direct-1.0.tar.gz\n-e .\nlocal==1.0+fs.2\n"
    )
    (tmp_path / "constraints.txt").write_text("constrained==9\n")
    lock = read_lock(tmp_path / "requirements.txt", origin="requirements.txt")

    plan = plan_closure([lock], [LINUX])
    entries = _by_name(e.entry for e in plan.entries)
    assert plan.requirements == ("shared==1.0",)
    assert entries["shared"].location == "base.txt:1", "planned once, where first pinned"
    assert "constrained" not in entries
    assert (entries["winonly"].category, entries["winonly"].counted) == ("marker", False)
    assert 'sys_platform == "win32"' in entries["winonly"].reason
    assert "cp311-linux" in entries["winonly"].reason
    assert entries["loose"].category == "not-pinned" and entries["loose"].counted
    assert entries["./vendored/pkg"].category == "path"
    assert entries["https://files.example/direct-1.0.tar.gz"].category == "url"
    assert (entries["."].category, entries["."].counted) == ("project", False)  # -e .
    assert entries["local"].category == "remediated"

    both = plan_closure([lock], [LINUX, WINDOWS])
    assert both.requirements == ("shared==1.0", "winonly==2.0")
    assert _by_name(e.entry for e in both.entries)["winonly"].targets == ("cp311-win",)


def test_settle_maps_outcomes_and_counts_totals() -> None:
    text = "a==1.0\nb==2.0\nc==3.0\ngit+https://git.example/d#egg=d\nwin==1 ; sys_platform == 'win32'\n"
    plan = plan_closure([_lock("requirements", text, "r.txt")], [LINUX])
    outcomes = [
        BuildOutcome("setuptools", "80.0", "succeeded", build_id=1, wheel="setuptools.whl"),
        BuildOutcome("a", "1.0", "succeeded", build_id=2, wheel="a-1.0-py3-none-any.whl"),
        BuildOutcome("b", "2.0", "skipped", build_id=3, message="b is already published"),
        BuildOutcome("c", "3.0", "succeeded", build_id=5),  # built for one target ...
        BuildOutcome(
            "c", "3.0", "failed", build_id=4, category="build-failed", message="the backend failed"
        ),
    ]
    report = settle(plan, outcomes)
    entries = _by_name(report.packages)
    assert entries["a"].status == "built" and entries["a"].wheel == "a-1.0-py3-none-any.whl"
    assert entries["b"].status == "already-built"
    assert (entries["c"].status, entries["c"].category, entries["c"].build_id) == (
        "failed",
        "build-failed",
        4,
    )  # ... but not for every target
    assert [d.name for d in report.build_dependencies] == ["setuptools"]
    assert report.failed
    assert (report.built, report.pinned) == (2, 4)  # win is for no target: not counted
    assert report.summary() == "2 of 4 pinned packages built from source for every target (50.0 %)"
    data = json.loads(json.dumps(report.to_json()))
    assert data["schema_version"] == 1
    assert data["summary"]["failed"] == 1 and data["summary"]["skipped"] == 2
    assert [p["name"] for p in data["packages"]] == ["a", "b", "c", "d", "win"]
    assert [u.name for u in report.unserved] == ["c", "d"]
    assert entries["d"].reason.startswith("git+https://git.example/d#egg=d: pinned to a VCS")


def test_percent_is_only_100_when_everything_is_built() -> None:
    assert percent_text(3, 3) == "100"
    assert percent_text(0, 0) == "100"
    assert percent_text(1999, 2000) == "99.9"
    assert percent_text(1, 3) == "33.3"
    empty = CoverageReport(("x",), "requirements", ("t",), ())
    assert empty.summary().endswith("(100 %)") and not empty.failed


def test_board_counts_jobs_and_eta() -> None:
    now = [0.0]
    board = Board([("a", "1"), ("b", "1"), ("c", "1")], jobs=2, clock=lambda: now[0])
    assert board.view().eta_seconds is None and board.view().queued == 3
    board.update(ProgressEvent("a", "1", "fetch", "start"), "build_0")
    board.update(ProgressEvent("b", "1", "fetch", "start"), "build_1")
    board.update(ProgressEvent("setuptools", "80", "fetch", "start"), "build_1")  # a build dep
    view = board.view()
    assert (view.total, view.running, view.queued) == (4, 3, 1)
    assert [(j.job, j.project, j.step) for j in view.jobs] == [
        ("build_0", "a", "fetch"),
        ("build_1", "setuptools", "fetch"),
    ]
    now[0] = 10.0
    assert (
        board.update(ProgressEvent("setuptools", "80", "", "succeeded"), "build_1") == "succeeded"
    )
    assert board.update(ProgressEvent("a", "1", "build", "start"), "build_0") is None
    assert board.update(ProgressEvent("a", "1", "", "failed"), "build_0") == "failed"
    view = board.view()
    assert (view.done, view.failed, view.running, view.queued) == (1, 1, 1, 1)
    assert [(j.job, j.project) for j in view.jobs] == [("build_1", "b")]
    assert view.eta_seconds == 15.0  # one more wave of 10 s, and half of one for the running
    assert view.counts_text() == "2/4 done, 1 running, 1 queued, 1 failed"
    assert view.eta_text() == "ETA 15s"
