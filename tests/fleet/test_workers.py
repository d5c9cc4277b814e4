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
from pathlib import Path

import httpx
import pytest

from fromsource.build.sandbox import tool_available
from fromsource.store.models import BuildRow, ClaimRow
from tests.fleet.conftest import FLEET, Fleet
from tests.packages import _minimal_backend, make_sdist

pytestmark = [
    *FLEET,
    pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here"),
]

# One build per release: these tests are about the claims.  Two builds that must
# agree (the fleet's default, issue 17) are tests/fleet/test_agreement.py's.
FLEET_ENV = {"FROMSOURCE_AGREE": "1"}
FLEET_WORKERS: dict[str, dict[str, str]] = {"worker-a": {}, "worker-b": {}}


def _sleeping_sdist(dest: Path, name: str, seconds: float) -> Path:
    """An sdist whose in-tree backend sleeps *seconds* in build_wheel."""
    code = _minimal_backend(name, "1.0").replace(
        "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n",
        "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
        f"    import time; time.sleep({seconds})\n",
    )
    assert "time.sleep" in code
    return make_sdist(dest, name, "1.0", "in-tree", backend_code=code)


def test_two_requests_for_one_build_give_one_build(fleet: Fleet) -> None:
    fleet.upstream.add(_sleeping_sdist(fleet.base / "sdists", "twice-pkg", 3))
    fleet.request_build("twice-pkg==1.0")
    fleet.request_build("twice-pkg==1.0")
    fleet.wait(90, lambda: any(c.state == "succeeded" for c in fleet.rows(ClaimRow, "twice-pkg")))
    # The second request retried while the first was building, then found it settled.
    fleet.wait(30, lambda: "twice-pkg==1.0: done" in fleet.logs())
    builds = fleet.builds("twice-pkg")
    assert [b.status for b in builds] == ["succeeded"], fleet.logs()
    assert len(fleet.wheels("twice-pkg")) == 1
    (claim,) = fleet.rows(ClaimRow, "twice-pkg")
    assert claim.attempts == 1


def test_a_worker_killed_mid_build_is_replaced_by_the_other(fleet: Fleet) -> None:
    fleet.upstream.add(_sleeping_sdist(fleet.base / "sdists", "killed-pkg", 5))
    fleet.request_build("killed-pkg==1.0")

    def building() -> bool:
        rows = fleet.rows(BuildRow, "killed-pkg")
        return bool(rows) and "deps" in (rows[0].details or {}).get("steps", {})

    fleet.wait(60, building)
    (claim,) = fleet.rows(ClaimRow, "killed-pkg")
    owner_pid = int(claim.owner.split(":")[1])
    (victim,) = [w for w in fleet.workers if w.pid == owner_pid]
    survivor = next(w for w in fleet.workers if w is not victim)
    time.sleep(1)  # now inside the sleeping build_wheel
    victim.kill()
    # The claim settles last: after the wheel, its sdist and the build row.
    fleet.wait(90, lambda: any(c.state == "succeeded" for c in fleet.rows(ClaimRow, "killed-pkg")))
    builds = fleet.builds("killed-pkg")
    assert [b.status for b in builds] == ["failed", "succeeded"]
    assert builds[0].details["category"] == "worker-lost"
    (claim,) = fleet.rows(ClaimRow, "killed-pkg")
    assert claim.state == "succeeded" and claim.attempts == 2
    assert int(claim.owner.split(":")[1]) == survivor.pid
    assert survivor.process.poll() is None
    page = httpx.get(
        f"{fleet.index.url}python/simple/killed-pkg/",
        auth=fleet.reader,
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    wheels = [f["filename"] for f in page.json()["files"] if f["filename"].endswith(".whl")]
    assert wheels == ["killed_pkg-1.0-py3-none-any.whl"]  # the sdist is listed beside it
