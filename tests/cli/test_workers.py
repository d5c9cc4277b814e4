"""``fromsource workers``: the workers and their targets, the wanted ones, the exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fromsource.cli.main import main
from fromsource.store.db import open_database
from fromsource.workers import registry
from fromsource.workers.routing import Advert
from tests.workers.test_routing import PY311, PY312


def _advertise(data: Path, *adverts: Advert) -> None:
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    try:
        for advert in adverts:
            registry.advertise(db, advert)
    finally:
        db.dispose()


def test_lists_live_and_stale_workers_and_every_wanted_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    _advertise(
        tmp_path,
        Advert("worker@a:1", "a", (PY311,), now, now, 2.0),
        Advert("worker@b:2", "b", (PY312,), now, now - timedelta(minutes=5), 2.0),
    )
    monkeypatch.setenv("FROMSOURCE_BUILD_PYTHONS", "3.11,3.12")
    code = main(["--data-dir", str(tmp_path), "workers"])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["worker", "host", "state", "last", "seen", "targets"]
    assert lines[1].split()[:3] == ["worker@a:1", "a", "live"]
    assert lines[1].endswith(f"3.11 ({PY311.tag})")
    assert lines[2].split()[:3] == ["worker@b:2", "b", "stale"] and "5 min ago" in lines[2]
    assert lines[4].split() == ["wanted", "tag", "live", "workers", "waiting", "queue"]
    assert lines[5].split() == ["3.11", PY311.tag, "1", "-", f"fromsource-builds.{PY311.tag}"]
    assert lines[6].split() == ["3.12", PY312.tag, "0", "-", f"fromsource-builds.{PY312.tag}"]
    # 3.12 is wanted, and its only worker stopped refreshing: its builds wait, and we say so
    assert code == 1
    assert f"no live worker has the build target 3.12 ({PY312.tag})" in err
    assert f"wait in the queue fromsource-builds.{PY312.tag}" in err


def test_json_and_exit_0_when_every_wanted_target_has_a_live_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    _advertise(tmp_path, Advert("worker@a:1", "a", (PY311, PY312), now, now, 60.0))
    code = main(["--data-dir", str(tmp_path), "workers", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["schema_version"] == 1
    [worker] = report["workers"]
    assert worker["id"] == "worker@a:1" and worker["live"] is True
    assert [t["tag"] for t in worker["targets"]] == [PY311.tag, PY312.tag]
    assert [(w["tag"], w["live_workers"], w["waiting"]) for w in report["wanted"]] == [
        (PY311.tag, ["worker@a:1"], None),
        (PY312.tag, ["worker@a:1"], None),
    ]
    assert report["unserved"] == []


def test_no_worker_at_all_is_a_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--data-dir", str(tmp_path), "workers"])
    assert code == 1
    assert "no worker has advertised itself" in capsys.readouterr().out
