"""Two independent builds on two workers must agree before a wheel is published (issue 17).

A fleet (PostgreSQL, S3 as moto, Redis, ``fromsource worker`` processes)
builds with ``agree`` 2, its default: a request for a release is split into
one task per build, and a worker that built one of them is refused the
other.  So a single worker alone never publishes (its second build waits
for another worker, and the state says so); once a second worker is there,
it builds the other one, and the provenance names both builds and both
workers.  The builds are real sandboxed builds of tiny sdists served by a
local upstream index.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from fromsource.build.sandbox import tool_available
from fromsource.dist.names import Sha256
from fromsource.provenance.statement import parse_statement
from fromsource.store.models import ClaimRow, FileRow
from fromsource.workers.claims import worker_of
from tests.fleet.conftest import FLEET, Fleet
from tests.packages import make_sdist

pytestmark = [
    *FLEET,
    pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here"),
]

# One worker at first (agree 2, the fleet's default): the tests add the second.
FLEET_WORKERS: dict[str, dict[str, str]] = {"worker-a": {}}


def _agreement(fleet: Fleet, project: str) -> dict[str, object]:
    (file,) = fleet.wheels(project)
    blobs = fleet.backend.blobs()
    assert file.provenance_sha256 is not None
    envelope = json.loads(blobs.read_bytes(Sha256(file.provenance_sha256)))
    statement = parse_statement(base64.b64decode(envelope["payload"]))
    assert statement.agreement is not None
    return statement.raw["predicate"]["buildDefinition"]["internalParameters"]["agreement"]  # type: ignore[no-any-return]


def test_one_worker_alone_never_publishes_and_a_second_one_completes_the_pair(
    fleet: Fleet,
) -> None:
    fleet.upstream.add(make_sdist(fleet.base / "sdists", "alone-pkg", "1.0", "in-tree"))
    fleet.request_build("alone-pkg==1.0")

    def first_built() -> bool:
        return any(b.status == "succeeded" for b in fleet.builds("alone-pkg"))

    fleet.wait(90, first_built)
    # Several retry rounds of the second build's task (every lease/2 s) on the only worker:
    # nothing is published, and what is there says it waits for a second builder.
    time.sleep(8)
    assert fleet.rows(FileRow, "alone-pkg") == []
    (only,) = fleet.builds("alone-pkg")
    assert only.status == "succeeded" and only.file_id is None
    assert "waits for a second, independent builder" in only.log
    assert only.details["agreement"]["state"] == "waiting"
    assert "waiting for a second builder" in fleet.logs()
    claims = fleet.rows(ClaimRow, "alone-pkg")
    assert sorted(c.state for c in claims) == ["succeeded", "waiting"]

    fleet.add_worker("worker-b")
    fleet.wait(120, lambda: len(fleet.wheels("alone-pkg")) == 1)
    # The row finishes after the wheel (and then its sdist) is published.
    fleet.wait(30, lambda: [b.status for b in fleet.builds("alone-pkg")] == ["succeeded"] * 2)
    first, second = fleet.builds("alone-pkg")
    assert [first.status, second.status] == ["succeeded", "succeeded"]
    assert first.owner != second.owner
    agreement = _agreement(fleet, "alone-pkg")
    assert agreement["agreed"] is True and agreement["required"] == 2
    builds = agreement["builds"]
    assert isinstance(builds, list)
    assert [b["invocationId"] for b in builds] == [f"build-{first.id}", f"build-{second.id}"]
    workers = {b["worker"] for b in builds}
    assert len(workers) == 2
    pids = {int(w.rsplit(":", 1)[1]) for w in workers}
    assert pids == {w.pid for w in fleet.workers}
    (file,) = fleet.wheels("alone-pkg")
    assert file.build_id == second.id


def test_two_workers_each_build_one_of_the_two(fleet: Fleet) -> None:
    if len(fleet.workers) < 2:
        fleet.add_worker("worker-b")
    fleet.upstream.add(make_sdist(fleet.base / "sdists", "pair-pkg", "1.0", "in-tree"))
    fleet.request_build("pair-pkg==1.0")
    fleet.wait(120, lambda: len(fleet.wheels("pair-pkg")) == 1)

    def settled() -> list[ClaimRow]:
        return [c for c in fleet.rows(ClaimRow, "pair-pkg") if c.state == "succeeded"]

    # Each slot's claim is settled just after its build published or voted.
    fleet.wait(30, lambda: len(settled()) == 2)
    fleet.wait(30, lambda: all(b.status == "succeeded" for b in fleet.builds("pair-pkg")))
    builds = fleet.builds("pair-pkg")
    assert [b.status for b in builds] == ["succeeded", "succeeded"]
    slots = settled()
    assert len(slots) == 2
    assert len({worker_of(c.owner) for c in slots}) == 2
    agreement = _agreement(fleet, "pair-pkg")
    builds_json = agreement["builds"]
    assert isinstance(builds_json, list) and len({b["worker"] for b in builds_json}) == 2
    assert {b["worker"] for b in builds_json} == {worker_of(c.owner) for c in slots}
