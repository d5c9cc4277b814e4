"""POST /api/builds with a lock file: a job that builds its exact closure in the server,
and GET /api/builds?job=ID showing its progress until it settles (as CI would wait)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fromsource.build.sandbox import tool_available
from tests.cli.lock_world import upstream_files
from tests.conftest import IndexServer, start_server, stop_server
from tests.packages import LocalIndex, local_index  # noqa: F401

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")

REQUIREMENTS = """\
closure-base==0.1
closure-top==1.0
broken-pkg==1.0
closure-extra==2.0 ; sys_platform == "no-such-platform"
git+https://git.example.invalid/tool.git@v1#egg=some-tool
"""


@pytest.fixture(scope="module")
def building_index(
    tmp_path_factory: pytest.TempPathFactory,
    local_index: LocalIndex,  # noqa: F811
) -> Iterator[tuple[IndexServer, tuple[str, str], tuple[str, str]]]:
    """An index that builds in-process from the test upstream; (server, admin, reader)."""
    base = tmp_path_factory.mktemp("build-jobs")
    local_index.add(*upstream_files(base / "upstream"))
    server = start_server(base / "data", "--upstream", local_index.url)
    try:
        yield server, server.token(admin=True, org="ops"), server.token("python")
    finally:
        stop_server(server)


def _wait(server: IndexServer, admin: tuple[str, str], job: str) -> dict[str, object]:
    """Poll the job until it has settled, as CI would."""
    deadline = time.monotonic() + 180
    while True:
        answer = httpx.get(f"{server.url}api/builds", params={"job": job}, auth=admin)
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        if body["state"] == "done":
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.3)


def test_a_lock_job_builds_the_closure_and_reports_progress(
    building_index: tuple[IndexServer, tuple[str, str], tuple[str, str]],
) -> None:
    server, admin, reader = building_index
    posted = httpx.post(
        f"{server.url}api/builds",
        auth=admin,
        json={"lock": {"text": REQUIREMENTS, "name": "requirements.txt"}},
    )
    assert posted.status_code == 202, posted.text
    first = posted.json()
    job = first["job"]
    assert first["status_url"] == f"/api/builds?job={job}" and first["queue"] == "in-process"
    assert first["state"] == "running" and first["created_by"].startswith("ops/")
    assert first["counts"]["skipped"] == 2 and first["counts"]["failed"] == 0

    body = _wait(server, admin, job)
    assert body["counts"] == {"done": 2, "running": 0, "queued": 0, "failed": 1, "skipped": 2}
    report = body["report"]
    assert report["schema_version"] == 1 and report["format"] == "requirements"  # type: ignore[index]
    packages = {p["name"]: p for p in report["packages"]}  # type: ignore[index]
    assert packages["closure-top"]["status"] == "built"
    assert packages["closure-top"]["wheel"] == "closure_top-1.0-py3-none-any.whl"
    broken = packages["broken-pkg"]
    assert (broken["status"], broken["category"]) == ("failed", "build-failed")
    assert broken["build_id"] and "build_wheel" in broken["reason"]
    assert packages["closure-extra"]["category"] == "marker"
    assert report["summary"]["text"] == (  # type: ignore[index]
        "2 of 4 pinned packages built from source for every target (50.0 %)"
    )
    # The build's log stays where it was: the build's own route.
    log = httpx.get(f"{server.url}api/builds/{broken['build_id']}/log", auth=admin)
    assert "broken on purpose" in log.text
    assert httpx.get(f"{server.url}python/simple/closure-top/", auth=reader).status_code == 200

    # A uv.lock of what is built now: nothing to queue, done at once.
    uv_lock = (
        'version = 1\nrequires-python = ">=3.11"\n\n'
        '[[package]]\nname = "closure-base"\nversion = "0.1"\n'
        f'source = {{ registry = "{server.url}python/simple/" }}\n'
    )
    again = httpx.post(
        f"{server.url}api/builds", auth=admin, json={"lock": {"text": uv_lock, "name": "uv.lock"}}
    )
    assert again.status_code == 202, again.text
    assert again.json()["state"] == "done"
    assert again.json()["counts"]["done"] == 1 and again.json()["report"]["format"] == "uv.lock"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"lock": {"text": "-r other.txt\nflask==2.0\n"}}, 400, "includes other files"),
        ({"lock": {"text": "x==1\n"}, "requirements": ["x==1"]}, 400, "not both"),
        ({}, 400, "either requirements or a lock"),
        ({"lock": {"text": "x==1\n"}, "with_deps": True}, 400, "whole closure"),
        ({"lock": {"text": "[[package]\n", "name": "uv.lock"}}, 400, "uv.lock"),
        ({"lock": {"text": "x==1\n", "format": "setup.py"}}, 422, "format"),
    ],
)
def test_bad_lock_requests_are_client_errors(
    building_index: tuple[IndexServer, tuple[str, str], tuple[str, str]],
    body: dict[str, object],
    status: int,
    says: str,
) -> None:
    server, admin, _reader = building_index
    answer = httpx.post(f"{server.url}api/builds", auth=admin, json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.text


def test_jobs_need_an_admin_and_a_known_id(
    building_index: tuple[IndexServer, tuple[str, str], tuple[str, str]],
) -> None:
    server, admin, reader = building_index
    lock = {"lock": {"text": "closure-base==0.1\n"}}
    assert httpx.post(f"{server.url}api/builds", auth=reader, json=lock).status_code == 403
    unknown = httpx.get(f"{server.url}api/builds", params={"job": "0" * 32}, auth=admin)
    assert unknown.status_code == 404 and "no build job" in unknown.text
    malformed = httpx.get(f"{server.url}api/builds", params={"job": "../x"}, auth=admin)
    assert malformed.status_code == 422
    assert isinstance(httpx.get(f"{server.url}api/builds", auth=admin).json(), list)


def test_a_finished_job_reads_the_same_from_its_stored_plan(tmp_path: Path) -> None:
    from fromsource.build.closure import TargetEnvironment, plan_closure
    from fromsource.build.jobs import create_job, get_job, job_status
    from fromsource.lockfiles import Lock, parse_lock
    from fromsource.store.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'jobs.db'}")
    lock = Lock(
        "requirements", "r.txt", parse_lock("requirements", REQUIREMENTS, "r.txt"), files=("r.txt",)
    )
    plan = plan_closure([lock], [TargetEnvironment("t", {"sys_platform": "linux"})])
    job = create_job(db, plan, repo="python", created_by="ops/1")
    stored = get_job(db, job.id)
    assert stored is not None and stored.entries == job.entries and stored.files == ("r.txt",)
    status = job_status(db, stored)
    assert status.state == "running" and status.counts()["queued"] == 3
    db.dispose()


def test_a_job_whose_requests_died_with_an_earlier_process_is_queued_again_when_polled(
    building_index: tuple[IndexServer, tuple[str, str], tuple[str, str]],
) -> None:
    """A job stored but never queued here (its in-process requests were lost in a restart)
    is built when CI polls it."""
    from fromsource.build.closure import TargetEnvironment, plan_closure
    from fromsource.build.jobs import create_job
    from fromsource.lockfiles import Lock, parse_lock
    from fromsource.store.db import open_database

    server, admin, _ = building_index
    text = "closure-extra==2.0\n"  # built by no other test here
    lock = Lock("requirements", "r.txt", parse_lock("requirements", text, "r.txt"), files=("r.txt",))
    plan = plan_closure([lock], [TargetEnvironment("t", {"sys_platform": "linux"})])
    db = open_database(f"sqlite:///{server.data_dir / 'fromsource.db'}")
    try:
        job = create_job(db, plan, repo="python", created_by="ops/1")
    finally:
        db.dispose()
    body = _wait(server, admin, job.id)
    packages = {p["name"]: p for p in body["report"]["packages"]}  # type: ignore[index]
    assert packages["closure-extra"]["status"] == "built", packages
