"""``fromsource follow`` and ``serve --follow-interval`` against a local upstream the tests make:
exactly the new releases past the cooldown that policy allows are queued, and built for real."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fromsource.build.sandbox import tool_available
from fromsource.cli.main import main
from fromsource.proxy.follow import claim_run, follow_counts
from fromsource.store.catalog import project_files
from fromsource.store.db import open_database
from tests.conftest import start_server, stop_server
from tests.factories import make_wheel
from tests.packages import LocalIndex, local_index, make_sdist  # noqa: F401
from tests.policy.malware_records import fake_record

OLD = datetime.now(UTC) - timedelta(days=30)
YOUNG = datetime.now(UTC) - timedelta(hours=5)
needs_sandbox = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


def _carry(data: Path, upstream: LocalIndex, name: str, tmp: Path) -> list[str]:
    """The index carries *name* 1.0; the upstream has releases 1.0 to 2.0rc1 of it.

    Returns the versions a follow run must queue: only 1.1 (1.2 is young, 1.3 is
    malware, 1.4 has no sdist, 2.0rc1 is a pre-release, 0.9 is older).
    """
    sdists = tmp / "sdists"
    releases = [
        ("0.9", OLD),
        ("1.0", OLD),
        ("1.1", OLD),
        ("1.2", YOUNG),
        ("1.3", OLD),
        ("2.0rc1", OLD),
    ]
    for version, when in releases:
        path = make_sdist(sdists, name, version, "in-tree")
        upstream.add(path)
        upstream.upload_times[path.name] = when
    wheel_only = make_wheel(tmp / "upstream-wheels", name, "1.4")
    upstream.add(wheel_only)
    upstream.upload_times[wheel_only.name] = OLD
    run = ["--data-dir", str(data)]
    assert main([*run, "publish", str(make_wheel(tmp / "ours", name, "1.0"))]) == 0
    records = tmp / "records"
    records.mkdir()
    record = fake_record(f"MAL-2026-{name}", name, versions=("1.3",))
    (records / f"{record.id}.json").write_text(json.dumps(record.to_json()))
    assert main([*run, "advisories", "import", str(records)]) == 0
    return ["1.1"]


def _follow(
    data: Path, upstream: LocalIndex, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, Any]:
    capsys.readouterr()  # what the set-up printed
    code = main(
        ["--data-dir", str(data), "follow", "--upstream", upstream.url, "--format", "json", *args]
    )
    return code, json.loads(capsys.readouterr().out)


def test_a_dry_run_names_exactly_the_new_releases_past_the_cooldown(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    expected = _carry(data, local_index, "follow-dry", tmp_path)
    code, report = _follow(data, local_index, capsys, "--once", "--dry-run")
    assert code == 0
    assert [(r["project"], r["version"]) for r in report["queued"]] == [
        ("follow-dry", v) for v in expected
    ]
    held = {r["version"]: r["verdict"] for r in report["held"]}
    assert held == {"1.2": "cooldown", "1.3": "malware"}
    assert report["builds"] is None and report["dry_run"] is True
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    assert follow_counts(db).runs == 0  # a dry run counts nothing
    db.dispose()


@needs_sandbox
def test_follow_once_builds_exactly_the_new_releases_and_then_nothing(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    expected = _carry(data, local_index, "follow-once", tmp_path)
    code, report = _follow(data, local_index, capsys, "--once")
    assert code == 0, report
    assert [b["version"] for b in report["builds"]] == expected
    assert {b["status"] for b in report["builds"]} == {"succeeded"}
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    try:
        versions = sorted({f.version for f in project_files(db, "python", "follow-once")})
        assert versions == ["1.0", "1.1"]
        code, again = _follow(data, local_index, capsys, "--once")
        assert code == 0 and again["queued"] == []
        counts = follow_counts(db)
        assert (counts.runs, counts.queued, counts.last_queued) == (2, 1, 0)
        assert counts.last_run is not None
        # One run per interval across processes: the first claim wins, the next waits.
        assert claim_run(db, 60, now=1000.0) and not claim_run(db, 60, now=1030.0)
        assert claim_run(db, 60, now=1061.0)
    finally:
        db.dispose()


@needs_sandbox
def test_serve_follows_in_the_background_with_counts_in_metrics_and_the_ui(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
) -> None:
    data = tmp_path / "data"
    expected = _carry(data, local_index, "follow-serve", tmp_path)
    server = start_server(data, "--upstream", local_index.url, "--follow-interval", "2")
    try:
        admin = server.token(admin=True)
        deadline = time.monotonic() + 240
        built: list[str] = []
        while time.monotonic() < deadline and not built:
            builds = httpx.get(server.url + "api/builds", auth=admin, timeout=30).json()
            built = [
                b["version"]
                for b in builds
                if b["project"] == "follow-serve" and b["status"] == "succeeded"
            ]
            time.sleep(1)
        assert built == expected, server.log.read_text()
        metrics = httpx.get(server.url + "metrics", timeout=30).text
        assert "fromsource_follow_queued_total 1" in metrics
        runs = next(
            line for line in metrics.splitlines() if line.startswith("fromsource_follow_runs_total")
        )
        assert int(runs.split()[1]) >= 1
        home = httpx.get(server.url, auth=admin, timeout=30).text
        assert "Following upstream:" in home and "1 new release queued" in home
    finally:
        stop_server(server)
