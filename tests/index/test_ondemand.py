"""Build on demand: a missing project queues its build; POST /api/builds queues builds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fromsource.build.sandbox import tool_available
from fromsource.config import Settings
from fromsource.index.ondemand import OnDemand
from fromsource.workers.request import BuildRequest
from tests.conftest import IndexServer, start_server, stop_server
from tests.packages import LocalIndex, local_index, make_sdist  # noqa: F401

JSON = "application/vnd.pypi.simple.v1+json"


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
    ondemand = OnDemand(Settings(data_dir=tmp_path), lambda: queue, debounce=60, clock=lambda: now[0])
    for _ in range(5):
        ondemand.missing("flask")
    ondemand.missing("werkzeug")
    now[0] += 61
    ondemand.missing("flask")
    ondemand._handoff.shutdown(wait=True)
    assert [(r.requirement, r.repo, r.with_deps) for r in queue.requests] == [
        ("flask", "python", True),
        ("werkzeug", "python", True),
        ("flask", "python", True),
    ]


@pytest.fixture
def on_demand_index(
    tmp_path: Path, local_index: LocalIndex  # noqa: F811
) -> Iterator[tuple[IndexServer, tuple[str, str], tuple[str, str]]]:
    local_index.add(make_sdist(tmp_path / "sdists", "wanted-pkg", "1.0", "in-tree"))
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
