"""Build on demand: a missing project queues its build under policy (the cooldown too);
POST /api/builds queues builds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from fromsource.build.sandbox import tool_available
from fromsource.cli.main import main
from fromsource.config import Settings
from fromsource.index.ondemand import OnDemand
from fromsource.policy.store import read_log
from fromsource.store.db import open_database
from fromsource.store.models import BuildRow
from fromsource.workers.request import BuildRequest
from tests.conftest import IndexServer, start_server, stop_server, wait_for_generation
from tests.packages import LocalIndex, local_index, make_sdist  # noqa: F401

JSON = "application/vnd.pypi.simple.v1+json"
OLD = datetime.now(UTC) - timedelta(days=40)
YOUNG = datetime.now(UTC) - timedelta(days=1)


class _ListQueue:
    """A BuildQueue that remembers what it was given."""

    kind = "list"

    def __init__(self) -> None:
        self.requests: list[BuildRequest] = []

    def submit(self, request: BuildRequest) -> None:
        self.requests.append(request)

    def close(self) -> None:
        pass


def test_missing_projects_are_queued_once_per_debounce_window(tmp_path: Path) -> None:
    queue = _ListQueue()
    now = [100.0]
    planned: list[str] = []

    def plan(project: str) -> BuildRequest | None:
        planned.append(project)
        if project == "werkzeug":
            return None  # policy lets no release through: nothing is queued
        if project == "broken":
            raise RuntimeError("the hand-off thread outlives this")
        return BuildRequest(f"{project}<=2.0", repo="python", with_deps=True)

    ondemand = OnDemand(
        Settings(data_dir=tmp_path), lambda: queue, plan, debounce=60, clock=lambda: now[0]
    )
    for _ in range(5):
        ondemand.missing("flask")
    ondemand.missing("werkzeug")
    ondemand.missing("broken")
    now[0] += 61
    ondemand.missing("flask")
    ondemand._handoff.shutdown(wait=True)
    assert planned == ["flask", "werkzeug", "broken", "flask"]
    assert [(r.requirement, r.repo, r.with_deps) for r in queue.requests] == [
        ("flask<=2.0", "python", True),
        ("flask<=2.0", "python", True),
    ]


@pytest.fixture
def on_demand_index(
    tmp_path: Path, local_index: LocalIndex  # noqa: F811
) -> Iterator[tuple[IndexServer, tuple[str, str], tuple[str, str]]]:
    wanted = make_sdist(tmp_path / "sdists", "wanted-pkg", "1.0", "in-tree")
    local_index.add(wanted)
    # Past its cooldown: a release without an upload time is not built on demand.
    local_index.upload_times[wanted.name] = OLD
    local_index.add(make_sdist(tmp_path / "sdists", "asked-pkg", "1.0", "in-tree"))
    server = start_server(tmp_path / "data", "--build-on-demand", "--upstream", local_index.url)
    try:
        yield server, server.token("python"), server.token(admin=True)
    finally:
        stop_server(server)


def _until(seconds: float, check: object) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not built in time"
        time.sleep(0.2)


@pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")
def test_a_missing_project_is_built_in_process_and_then_served(
    on_demand_index: tuple[IndexServer, tuple[str, str], tuple[str, str]],
) -> None:
    server, reader, admin = on_demand_index
    page = f"{server.url}python/simple/wanted-pkg/"
    assert httpx.get(page, auth=reader).status_code == 404
    _until(120, lambda: httpx.get(page, auth=reader).status_code == 200)
    doc = httpx.get(page, auth=reader, headers={"Accept": JSON}).json()
    # The wheel is published first (the sdist beside it a moment later).
    wheels = [f for f in doc["files"] if f["filename"].endswith(".whl")]
    assert [f["filename"] for f in wheels] == ["wanted_pkg-1.0-py3-none-any.whl"]
    assert wheels[0]["provenance"]

    queued = httpx.post(f"{server.url}api/builds", auth=admin,
                        json={"requirements": ["asked-pkg==1.0"]})
    assert queued.status_code == 202 and queued.json()["queue"] == "in-process"
    _until(120, lambda: httpx.get(f"{server.url}python/simple/asked-pkg/", auth=reader).status_code == 200)
    bad = httpx.post(f"{server.url}api/builds", auth=admin, json={"requirements": ["not valid!"]})
    assert bad.status_code == 400
    elsewhere = httpx.post(f"{server.url}api/builds", auth=admin,
                           json={"requirements": ["x==1"], "repo": "python-remediated"})
    assert elsewhere.status_code == 400 and "fromsource remediate" in elsewhere.text
    assert httpx.post(f"{server.url}api/builds", auth=reader,
                      json={"requirements": ["x"]}).status_code == 403


@pytest.fixture
def cooldown_index(
    tmp_path: Path, local_index: LocalIndex  # noqa: F811
) -> Iterator[tuple[IndexServer, tuple[str, str]]]:
    """An upstream with ``cool-pkg`` 1.0 (old) and 2.0 (a day old), ``fresh-only`` 1.0 and
    ``vetted-pkg`` 1.0 (a day old; an allow rule names it), behind an index building on demand."""
    sdists = tmp_path / "sdists"
    for name, version, when in (
        ("cool-pkg", "1.0", OLD),
        ("cool-pkg", "2.0", YOUNG),
        ("fresh-only", "1.0", YOUNG),
        ("vetted-pkg", "1.0", YOUNG),
    ):
        path = make_sdist(sdists, name, version, "in-tree")
        local_index.add(path)
        local_index.upload_times[path.name] = when
    server = start_server(tmp_path / "data", "--build-on-demand", "--upstream", local_index.url)
    try:
        run = ["--data-dir", str(server.data_dir), "policy", "add", "allow"]
        assert main([*run, "pkg:pypi/vetted-pkg@1.0", "--reason", "reviewed"]) == 0
        wait_for_generation(server)
        yield server, server.token("python")
    finally:
        stop_server(server)


def _built(server: IndexServer, project: str) -> set[str]:
    db = open_database(server.database_url)
    try:
        with db.session() as session:
            query = sa.select(BuildRow.version).where(BuildRow.project == project)
            return set(session.scalars(query))
    finally:
        db.dispose()


def _audited(server: IndexServer, project: str, action: str) -> list[str]:
    db = open_database(server.database_url)
    try:
        return [e.reason for e in read_log(db, project=project, actions=[action])
                if e.actor == "on-demand"]
    finally:
        db.dispose()


@pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")
def test_build_on_demand_leaves_a_release_in_its_cooldown_alone(
    cooldown_index: tuple[IndexServer, tuple[str, str]],
) -> None:
    # Regression: the missing project was queued by name and its newest release, published
    # a day ago, was built although its cooldown (7 days by default) had not passed.
    server, reader = cooldown_index
    page = f"{server.url}python/simple/cool-pkg/"
    assert httpx.get(page, auth=reader).status_code == 404
    _until(120, lambda: httpx.get(page, auth=reader).status_code == 200)
    doc = httpx.get(page, auth=reader, headers={"Accept": JSON}).json()
    wheels = [f["filename"] for f in doc["files"] if f["filename"].endswith(".whl")]
    assert wheels == ["cool_pkg-1.0-py3-none-any.whl"]
    assert _built(server, "cool-pkg") == {"1.0"}
    (held,) = _audited(server, "cool-pkg", "build-refused")
    assert held.startswith("cool-pkg 2.0 was published 1 day(s) ago; the cooldown (the default)")

    # A project whose only release is in its cooldown is not queued at all: audited instead.
    fresh = f"{server.url}python/simple/fresh-only/"
    assert httpx.get(fresh, auth=reader).status_code == 404
    _until(30, lambda: _audited(server, "fresh-only", "build-refused"))
    assert _built(server, "fresh-only") == set()

    # An allow rule still wins: its release is built inside the cooldown, and that is audited.
    vetted = f"{server.url}python/simple/vetted-pkg/"
    assert httpx.get(vetted, auth=reader).status_code == 404
    _until(120, lambda: httpx.get(vetted, auth=reader).status_code == 200)
    assert _built(server, "vetted-pkg") == {"1.0"}
    (allowed,) = _audited(server, "vetted-pkg", "build-allowed")
    assert "let through by allow rule" in allowed and "reviewed" in allowed
    assert httpx.get(fresh, auth=reader).status_code == 404
    assert _built(server, "fresh-only") == set()
