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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import sqlalchemy as sa

from fromsource.build.sandbox import tool_available
from fromsource.dist.names import Sha256
from fromsource.provenance.statement import parse_statement
from fromsource.store.models import BuildRow, ClaimRow, FileRow
from fromsource.workers.claims import worker_of
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
from tests.packages import LocalIndex, local_index, make_sdist  # noqa: F401

pytestmark = [
    *FLEET,
    pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here"),
]

LEASE = 2.0
T = TypeVar("T", BuildRow, ClaimRow, FileRow)


@dataclass
class Fleet:
    backend: Backend
    index: IndexServer
    workers: list[Worker]
    admin: tuple[str, str]
    upstream: LocalIndex
    base: Path

    def rows(self, model: type[T], project: str) -> list[T]:
        db = self.backend.db()
        try:
            with db.session() as session:
                column = getattr(model, "project")  # noqa: B009 - every model here has one
                return list(session.scalars(sa.select(model).where(column == project)))
        finally:
            db.dispose()

    def builds(self, project: str) -> list[BuildRow]:
        return sorted(self.rows(BuildRow, project), key=lambda b: b.id)

    def request_build(self, requirement: str) -> None:
        response = httpx.post(
            f"{self.index.url}api/builds",
            auth=self.admin,
            json={"requirements": [requirement]},
            timeout=30,
        )
        assert response.status_code == 202, response.text

    def add_worker(self, name: str) -> Worker:
        worker = spawn_worker(
            self.backend, self.backend.data_dir(self.base, name), self.upstream.url, lease=LEASE
        )
        self.workers.append(worker)
        wait_ready(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(w.log.read_text(errors="replace")[-4000:] for w in self.workers)


@pytest.fixture(scope="module")
def fleet(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    local_index: LocalIndex,  # noqa: F811
) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("agreement")
    backend = make_backend("postgres-s3", request, base, broker=True)
    index: IndexServer | None = None
    workers: list[Worker] = []
    try:
        index = serve(backend, base, "replica")
        admin = backend.token(admin=True)
        accepted(index, admin)
        fleet = Fleet(backend, index, workers, admin, local_index, base)
        fleet.add_worker("worker-a")
        yield fleet
    finally:
        for worker in workers:
            stop_worker(worker)
        if index is not None:
            stop_server(index)


def _wait(seconds: float, check: Callable[[], bool], fleet: Fleet) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            print(fleet.logs())
            pytest.fail(f"condition not met within {seconds} s")
        time.sleep(0.2)


def _wheels(fleet: Fleet, project: str) -> list[FileRow]:
    """The project's published wheels (its sdist is listed beside them)."""
    return [f for f in fleet.rows(FileRow, project) if f.filename.endswith(".whl")]


def _agreement(fleet: Fleet, project: str) -> dict[str, object]:
    (file,) = _wheels(fleet, project)
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

    _wait(90, first_built, fleet)
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
    _wait(120, lambda: len(_wheels(fleet, "alone-pkg")) == 1, fleet)
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
    (file,) = _wheels(fleet, "alone-pkg")
    assert file.build_id == second.id


def test_two_workers_each_build_one_of_the_two(fleet: Fleet) -> None:
    if len(fleet.workers) < 2:
        fleet.add_worker("worker-b")
    fleet.upstream.add(make_sdist(fleet.base / "sdists", "pair-pkg", "1.0", "in-tree"))
    fleet.request_build("pair-pkg==1.0")
    _wait(120, lambda: len(_wheels(fleet, "pair-pkg")) == 1, fleet)
    builds = fleet.builds("pair-pkg")
    assert [b.status for b in builds] == ["succeeded", "succeeded"]
    slots = [c for c in fleet.rows(ClaimRow, "pair-pkg") if c.state == "succeeded"]
    assert len(slots) == 2
    assert len({worker_of(c.owner) for c in slots}) == 2
    agreement = _agreement(fleet, "pair-pkg")
    builds_json = agreement["builds"]
    assert isinstance(builds_json, list) and len({b["worker"] for b in builds_json}) == 2
    assert {b["worker"] for b in builds_json} == {worker_of(c.owner) for c in slots}
