"""Builds whose process died: found, closed as worker-lost, their work trees removed (issue 18).

The last test kills a real ``fromsource build`` with SIGKILL in the middle of
a sandboxed build, then lets ``fsck`` and a fresh ``build`` clean up after it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fromsource.build.history import create_build, get_build, update_build
from fromsource.build.lost import OpenBuild, classify_trees, recover
from fromsource.build.owner import Owner, process_start, this_host, this_process
from fromsource.build.sandbox import tool_available
from fromsource.cli.main import main
from fromsource.store.db import Database, open_database
from tests.packages import LocalIndex, local_index, make_sdist  # noqa: F401

HOUR = 3600.0


def test_classify_trees_keeps_live_trees_and_young_strangers() -> None:
    entries = {
        "build-1-aa": 5.0,  # live build 1
        "build-2-bb": 5.0,  # build 2's process is gone
        "build-3-cc": 9 * HOUR,  # build 3 is finished (not open)
        "build-4-dd": 5.0,  # another host's build: not ours to judge
        "rebuild-check-01": 9 * HOUR,  # named by live build 5
        "rebuild-check-02": 5.0,  # nobody names it, but it is young (being set up)
        "rebuild-check-03": 2 * HOUR,  # nobody names it, old
        "rebuild-check-04": 5.0,  # named by build 6, whose process is gone
        "notes-of-the-operator": 9 * HOUR,  # not a work tree: never touched
    }
    builds = [
        OpenBuild(1, "alive", "build-1-aa"),
        OpenBuild(2, "gone", "build-2-bb"),
        OpenBuild(4, "elsewhere", "build-4-dd"),
        OpenBuild(5, "alive", "rebuild-check-01"),
        OpenBuild(6, "gone", "rebuild-check-04"),
        OpenBuild(7, "unknown", None),
    ]
    stale = classify_trees(entries, builds, grace_seconds=HOUR)
    assert set(stale) == {"build-2-bb", "build-3-cc", "rebuild-check-03", "rebuild-check-04"}
    assert "build 2" in stale["build-2-bb"] and "gone" in stale["build-2-bb"]
    assert "build 3 is no longer running" in stale["build-3-cc"]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'fromsource.db'}")
    yield database
    database.dispose()


def _running(db: Database, work_root: Path, name: str, owner: Owner | None) -> tuple[int, Path]:
    build_id = create_build(db, name, "1.0", "python")
    tree = work_root / f"build-{build_id}-0123abcd"
    (tree / "build").mkdir(parents=True)
    (tree / "build" / "blob").write_bytes(b"x" * 4096)
    update_build(
        db,
        build_id,
        status="running",
        owner=owner.to_text() if owner else None,
        details={"work": str(tree)},
    )
    return build_id, tree


def test_recover_closes_only_builds_of_dead_processes_here(db: Database, tmp_path: Path) -> None:
    work = tmp_path / "work"
    me, here = this_process(), this_host()
    alive_id, alive_tree = _running(db, work, "alive", me)
    rebooted = Owner(here.name, "a-boot-before-this-one", me.pid, me.started)
    gone_id, gone_tree = _running(db, work, "gone", rebooted)
    other = Owner("another-builder", here.boot, 1, 1)
    foreign_id, foreign_tree = _running(db, work, "foreign", other)
    legacy_id, legacy_tree = _running(db, work, "legacy", None)
    finished_id, finished_tree = _running(db, work, "finished", me)
    update_build(db, finished_id, status="succeeded")

    report = recover(db, work, repair=False, closed_by="the test")
    assert [b.id for b in report.lost] == [gone_id] and not report.lost[0].closed
    assert {t.name for t in report.trees} == {gone_tree.name, finished_tree.name}
    assert all(t.size >= 4096 and not t.removed for t in report.trees)
    assert report.unowned == (legacy_id,) and report.problems == 3
    record = get_build(db, gone_id)
    assert record is not None and record.status == "running" and gone_tree.exists()

    report = recover(db, work, repair=True, closed_by="the test")
    assert report.problems == 0 and report.changed
    record = get_build(db, gone_id)
    assert record is not None and record.status == "failed"
    assert record.details["category"] == "worker-lost"
    assert f"process {me.pid} on {here.name}" in (record.error or "")
    assert "the test closed it" in (record.error or "")
    assert not gone_tree.exists() and not finished_tree.exists()
    for build_id, tree in (
        (alive_id, alive_tree),
        (foreign_id, foreign_tree),
        (legacy_id, legacy_tree),
    ):
        record = get_build(db, build_id)
        assert record is not None and record.status == "running" and tree.exists()
    assert recover(db, work, repair=True, closed_by="the test").problems == 0


def test_a_queued_row_records_its_creator_and_running_its_runner(db: Database) -> None:
    build_id = create_build(db, "demo", "1.0", "python")
    record = get_build(db, build_id)
    assert record is not None and Owner.from_text(record.owner) == this_process()
    update_build(db, build_id, owner="someone-else 1 1 -")
    update_build(db, build_id, status="running")
    record = get_build(db, build_id)
    assert record is not None and Owner.from_text(record.owner) == this_process()


def test_fsck_grace_protects_a_young_tree_nobody_names(db: Database, tmp_path: Path) -> None:
    work = tmp_path / "work"
    young = work / "rebuild-check-abcdef01"
    young.mkdir(parents=True)
    assert recover(db, work, repair=True, closed_by="t").trees == ()
    assert young.exists()
    old = time.time() - 2 * HOUR
    os.utime(young, (old, old))
    report = recover(db, work, repair=True, closed_by="t", grace=timedelta(hours=1))
    assert [t.name for t in report.trees] == [young.name] and not young.exists()


# --- a real `fromsource build`, killed with SIGKILL mid-build ----------------------------


_SLEEPER = textwrap.dedent("""\
    import os, subprocess, sys, time
    def get_requires_for_build_wheel(config_settings=None):
        return []
    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        open("building", "w").close()
        subprocess.run([sys.executable, "-c", "import time; time.sleep(600)", MARKER])
        time.sleep(600)
    """)


def _start_build(
    data: Path, index: LocalIndex, requirement: str, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fromsource.cli.main",
                "--data-dir",
                str(data),
                "build",
                requirement,
                "--upstream",
                index.url,
                "--timeout",
                "900",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def _wait_mid_build(process: subprocess.Popen[bytes], work: Path, log: Path) -> Path:
    """The work tree of the build once its backend runs (the backend touched ``building``)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        found = list(work.glob("build-*/**/building")) if work.is_dir() else []
        if found:
            return work / found[0].relative_to(work).parts[0]
        time.sleep(0.2)
    raise AssertionError(f"the build never reached its backend: {log.read_text()}")


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")
@pytest.mark.parametrize("cleaner", ["fsck", "build"])
def test_a_build_killed_mid_build_is_closed_as_worker_lost_and_its_tree_removed(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    cleaner: str,
) -> None:
    marker = f"fromsource-killed-build-{os.getpid()}-{time.monotonic_ns()}"
    name = f"demo-killed-{cleaner}"
    backend = _SLEEPER.replace("MARKER", repr(marker))
    local_index.add(make_sdist(tmp_path / "sdists", name, "1.0", "in-tree", backend_code=backend))
    data, log = tmp_path / "data", tmp_path / "build.log"
    process = _start_build(data, local_index, f"{name}==1.0", log)
    try:
        tree = _wait_mid_build(process, data / "work", log)
        build_id = int(tree.name.split("-")[1])
        db = open_database(f"sqlite:///{data / 'fromsource.db'}")
        record = get_build(db, build_id)
        assert record is not None and record.status == "running"
        owner = Owner.from_text(record.owner)
        assert owner is not None and owner.pid == process.pid
        assert owner.started == process_start(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # The sandbox dies with the build (bwrap --die-with-parent): nothing of it runs on.
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(marker) == []
    record = get_build(db, build_id)
    assert record is not None and record.status == "running" and tree.is_dir()
    capsys.readouterr()
    args = ["--data-dir", str(data)]

    if cleaner == "fsck":
        assert main([*args, "fsck", "--format", "json"]) == 1
        found = json.loads(capsys.readouterr().out)
        assert found["ok"] is False and found["problems"] == 2
        (lost,) = found["builds"]["lost"]
        assert lost["build_id"] == build_id and lost["closed"] is False
        assert f"process {process.pid}" in lost["owner"]
        (stale,) = found["builds"]["work_trees"]
        assert stale["name"] == tree.name and stale["bytes"] > 0 and not stale["removed"]
        assert main([*args, "fsck"]) == 1
        text = capsys.readouterr().out
        assert f"build {build_id} ({name} 1.0)" in text and "still open" in text
        assert "2 problem(s) left; `fromsource fsck --repair`" in text
        assert tree.is_dir()
        assert main([*args, "fsck", "--repair", "--format", "json"]) == 0
        repaired = json.loads(capsys.readouterr().out)
        assert repaired["ok"] is True and repaired["builds"]["lost"][0]["closed"] is True
        assert repaired["builds"]["work_trees"][0]["removed"] is True
        closer = "fsck --repair closed it"
    else:
        # Any build at all: the start of the command cleans up before it builds.
        upstream = ["--upstream", local_index.url]
        assert main([*args, "build", "not-on-the-index==1.0", *upstream]) == 1
        said = capsys.readouterr().err
        assert f"closed build(s) {build_id} as worker-lost" in said
        assert "removed 1 stale work tree(s)" in said
        closer = "`fromsource build` at start closed it"

    record = get_build(db, build_id)
    db.dispose()
    assert record is not None and record.status == "failed"
    assert record.details["category"] == "worker-lost" and record.finished_at is not None
    assert f"process {process.pid}" in (record.error or "") and closer in (record.error or "")
    assert not tree.exists()
    assert main([*args, "fsck", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["builds"] == {
        "lost": [],
        "work_trees": [],
        "unowned": [],
    }
