"""Celery build workers on Redis, one PostgreSQL database and one S3 bucket.

Two ``fromsource worker`` processes consume the same queue.  A build is
claimed in the database (one builder per release, with a lease renewed by a
heartbeat), so: a worker killed with SIGKILL mid-build leaves its build to
the other worker (its lease expires, a sweeper enqueues it again), and two
requests for the same build give one build row and one published file.
The builds are real (sandboxed, signed) builds of tiny sdists whose in-tree
backend sleeps, served by a local upstream index.  S3 is moto in server
mode over HTTP (no S3 server package is reachable here).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from fromsource.build.sandbox import tool_available
from fromsource.store.models import BuildRow, ClaimRow, FileRow
from tests.conftest import IndexServer, stop_server
from tests.fleet.conftest import (
    FLEET,
    Backend,
    Worker,
    accepted,
    make_backend,
    serve,
    spawn_worker,
    stop_worker,
    wait_ready,
)
from tests.packages import LocalIndex, _minimal_backend, local_index, make_sdist  # noqa: F401

pytestmark = [
    *FLEET,
    pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here"),
]

LEASE = 2.0


def _sleeping_sdist(dest: Path, name: str, seconds: float) -> Path:
    """An sdist whose in-tree backend sleeps *seconds* in build_wheel."""
    code = _minimal_backend(name, "1.0").replace(
        "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n",
        "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
        f"    import time; time.sleep({seconds})\n",
    )
    assert "time.sleep" in code
    return make_sdist(dest, name, "1.0", "in-tree", backend_code=code)


@dataclass
class Fleet:
    backend: Backend
    index: IndexServer
    workers: list[Worker]
    admin: tuple[str, str]
    reader: tuple[str, str]
    upstream: LocalIndex
    base: Path

    def rows(self, model: type, project: str) -> list[object]:
        db = self.backend.db()
        try:
            with db.session() as session:
                return list(session.scalars(sa.select(model).where(model.project == project)))  # type: ignore[attr-defined]
        finally:
            db.dispose()

    def request_build(self, requirement: str) -> None:
        response = httpx.post(
            f"{self.index.url}api/builds",
            auth=self.admin,
            json={"requirements": [requirement]},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        assert response.json()["queue"] == "celery"


@pytest.fixture(scope="module")
def fleet(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    local_index: LocalIndex,  # noqa: F811
) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("workers")
    backend = make_backend("postgres-s3", request, base, broker=True)
    # One build per release: these tests are about the claims.  Two builds that must
    # agree (the fleet's default, issue 17) are tests/fleet/test_agreement.py's.
    backend.extra_env["FROMSOURCE_AGREE"] = "1"
    workers = [
        spawn_worker(backend, backend.data_dir(base, name), local_index.url, lease=LEASE)
        for name in ("worker-a", "worker-b")
    ]
    index: IndexServer | None = None
    try:
        index = serve(backend, base, "replica")
        for worker in workers:
            wait_ready(worker)
        admin = backend.token(admin=True)
        reader = backend.token("python")
        accepted(index, admin)
        accepted(index, reader, "python/simple/")
        yield Fleet(backend, index, workers, admin, reader, local_index, base)
    finally:
        for worker in workers:
            stop_worker(worker)
        if index is not None:
            stop_server(index)


def _wait(seconds: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {seconds} s")
        time.sleep(0.1)


def _logs(fleet: Fleet) -> str:
    return "\n".join(w.log.read_text(errors="replace")[-3000:] for w in fleet.workers)


def test_two_requests_for_one_build_give_one_build(fleet: Fleet) -> None:
    fleet.upstream.add(_sleeping_sdist(fleet.base / "sdists", "twice-pkg", 3))
    fleet.request_build("twice-pkg==1.0")
    fleet.request_build("twice-pkg==1.0")
    try:
        _wait(90, lambda: any(c.state == "succeeded" for c in fleet.rows(ClaimRow, "twice-pkg")))  # type: ignore[attr-defined]
    except BaseException:
        print(_logs(fleet))
        raise
    # The second request retried while the first was building, then found it settled.
    _wait(30, lambda: "twice-pkg==1.0: done" in _logs(fleet))
    builds = fleet.rows(BuildRow, "twice-pkg")
    assert [b.status for b in builds] == ["succeeded"], _logs(fleet)  # type: ignore[attr-defined]
    assert [f.kind for f in fleet.rows(FileRow, "twice-pkg")].count("wheel") == 1  # type: ignore[attr-defined]
    (claim,) = fleet.rows(ClaimRow, "twice-pkg")
    assert claim.attempts == 1  # type: ignore[attr-defined]


def test_a_worker_killed_mid_build_is_replaced_by_the_other(fleet: Fleet) -> None:
    fleet.upstream.add(_sleeping_sdist(fleet.base / "sdists", "killed-pkg", 5))
    fleet.request_build("killed-pkg==1.0")

    def building() -> bool:
        rows = fleet.rows(BuildRow, "killed-pkg")
        return bool(rows) and "deps" in (rows[0].details or {}).get("steps", {})  # type: ignore[attr-defined]

    _wait(60, building)
    (claim,) = fleet.rows(ClaimRow, "killed-pkg")
    owner_pid = int(claim.owner.split(":")[1])  # type: ignore[attr-defined]
    (victim,) = [w for w in fleet.workers if w.pid == owner_pid]
    survivor = next(w for w in fleet.workers if w is not victim)
    time.sleep(1)  # now inside the sleeping build_wheel
    victim.kill()
    try:
        # The claim settles last: after the wheel, its sdist and the build row.
        _wait(90, lambda: any(c.state == "succeeded" for c in fleet.rows(ClaimRow, "killed-pkg")))  # type: ignore[attr-defined]
    except BaseException:
        print(_logs(fleet))
        raise
    builds = sorted(fleet.rows(BuildRow, "killed-pkg"), key=lambda b: b.id)  # type: ignore[attr-defined]
    assert [b.status for b in builds] == ["failed", "succeeded"]  # type: ignore[attr-defined]
    assert builds[0].details["category"] == "worker-lost"  # type: ignore[attr-defined]
    (claim,) = fleet.rows(ClaimRow, "killed-pkg")
    assert claim.state == "succeeded" and claim.attempts == 2  # type: ignore[attr-defined]
    assert int(claim.owner.split(":")[1]) == survivor.pid  # type: ignore[attr-defined]
    assert survivor.process.poll() is None
    page = httpx.get(
        f"{fleet.index.url}python/simple/killed-pkg/",
        auth=fleet.reader,
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    wheels = [f["filename"] for f in page.json()["files"] if f["filename"].endswith(".whl")]
    assert wheels == ["killed_pkg-1.0-py3-none-any.whl"]  # the sdist is listed beside it
