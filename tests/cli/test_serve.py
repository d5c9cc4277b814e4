"""``fromsource serve``: its workers die with it, and it closes builds left by killed processes.

Only processes these tests started are signalled, by their pid.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from fromsource.build.history import create_build, get_build, update_build
from fromsource.build.owner import Owner, process_start, this_host
from fromsource.store.db import open_database
from tests.conftest import start_server, stop_server


def _children(pid: int) -> dict[int, int | None]:
    """The child processes of *pid*, with their start times."""
    children: dict[int, int | None] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            children[int(child)] = process_start(int(child))
    return children


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize(("server", "workers"), [("granian", "1"), ("uvicorn", "2")])
def test_workers_stop_when_serve_is_killed_and_a_restart_gets_the_port(
    tmp_path: Path, server: str, workers: str
) -> None:
    index = start_server(tmp_path / "data", "--server", server, "--workers", workers)
    port = int(index.url.rsplit(":", 1)[1].strip("/"))
    children = _children(index.process.pid)
    try:
        assert children, "the server started no worker process"
        os.kill(index.process.pid, signal.SIGKILL)
        index.process.wait(10)
        killed = time.monotonic()
        while time.monotonic() - killed < 10 and (
            _answers(port) or any(process_start(c) == s for c, s in children.items())
        ):
            time.sleep(0.1)
        waited = time.monotonic() - killed
        assert not _answers(port), "an orphaned worker still answers on the port"
        left = [c for c, s in children.items() if process_start(c) == s]
        assert left == [], f"workers still running {waited:.1f} s after serve was killed"
        assert waited < 5, waited
    finally:
        for child, started in children.items():  # only the ones this test started
            if process_start(child) == started:
                os.kill(child, signal.SIGKILL)
    again = start_server(tmp_path / "data", "--server", server, port=port)
    stop_server(again)


def test_serve_closes_builds_whose_process_is_gone_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    here = this_host()
    build_id = create_build(db, "demo", "1.0", "python")
    tree = data / "work" / f"build-{build_id}-0a0b0c0d"
    tree.mkdir(parents=True)
    dead = Owner(here.name, "a-boot-before-this-one", 12345, 678)  # the host rebooted since
    update_build(db, build_id, status="running", owner=dead.to_text(), details={"work": str(tree)})
    index = start_server(data)
    stop_server(index)
    record = get_build(db, build_id)
    db.dispose()
    assert record is not None and record.status == "failed"
    assert record.details["category"] == "worker-lost"
    assert "`fromsource serve` at start closed it" in (record.error or "")
    assert not tree.exists()
    assert f"closed build(s) {build_id} as worker-lost" in index.log.read_text()
