"""A fleet whose workers have different interpreters: each build goes to a worker that has it.

Two ``fromsource worker`` processes on one PostgreSQL, S3 (moto) and Redis:
one has CPython 3.11 only, the other 3.12 only (``FROMSOURCE_PYTHONS``), and
the index builds 3.11, 3.12 and 3.13 (``FROMSOURCE_BUILD_PYTHONS``), which no
worker has at first.  Each worker advertises its target and consumes that
target's queue.  A C extension the test writes is built once per
interpreter, each by the worker that has it, both wheels are published, and
the 3.13 build waits in its queue (the lead's log and ``fromsource workers``
say so) until a worker with 3.13 starts; a pure package is built once, by
one worker.  Real sandboxed builds from a local upstream index.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fromsource.build.interpreters import discover_targets
from fromsource.build.owner import Owner
from fromsource.build.sandbox import tool_available
from fromsource.cli.main import main
from fromsource.store.models import BuildRow, ClaimRow
from fromsource.workers.claims import worker_of
from fromsource.workers.routing import queue_name
from tests.fleet.conftest import FLEET, Fleet, Worker
from tests.packages import make_sdist

pytest.importorskip("auditwheel", reason="manylinux repair needs auditwheel")
_FOUND = discover_targets(["3.11", "3.12"])
pytestmark = [
    *FLEET,
    pytest.mark.skipif(
        not tool_available("bwrap") or shutil.which("gcc") is None,
        reason="needs bubblewrap and a C compiler",
    ),
    pytest.mark.skipif(
        bool(_FOUND.unresolved) or len(_FOUND.targets) != 2,
        reason=f"needs CPython 3.11 and 3.12 (pyenv or PATH); missing: {_FOUND.unresolved}",
    ),
]

PY311, PY312 = (t.tag for t in _FOUND.targets) if len(_FOUND.targets) == 2 else ("", "")
PY313 = PY312.replace("cp312", "cp313")
BUILD_PYTHONS = "3.11,3.12,3.13"
FLEET_ENV = {"FROMSOURCE_AGREE": "1", "FROMSOURCE_BUILD_PYTHONS": BUILD_PYTHONS}
FLEET_WORKERS = {
    "worker-311": {"FROMSOURCE_PYTHONS": "3.11"},
    "worker-312": {"FROMSOURCE_PYTHONS": "3.12"},
}


def _workers_report(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, dict[str, object], str]:
    """``fromsource workers --format json`` against the fleet: exit code, report, stderr."""
    assert fleet.backend.broker_url
    monkeypatch.setenv("FROMSOURCE_DATABASE_URL", fleet.backend.database_url)
    monkeypatch.setenv("FROMSOURCE_BROKER_URL", fleet.backend.broker_url)
    monkeypatch.setenv("FROMSOURCE_BUILD_PYTHONS", BUILD_PYTHONS)
    capsys.readouterr()
    code = main(["--data-dir", str(tmp_path), "workers", "--format", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _built_by(fleet: Fleet, build: BuildRow) -> Worker:
    """The worker process whose build *build* was (by the pid on its row)."""
    owner = Owner.from_text(build.owner)
    assert owner is not None, build.owner
    (worker,) = [w for w in fleet.workers if w.pid == owner.pid]
    return worker


def _tag(build: BuildRow) -> str:
    tag = build.details["target"]["tag"]
    assert isinstance(tag, str)
    return tag


def test_each_worker_advertises_its_target_and_the_missing_one_is_named(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    w311, w312 = fleet.workers
    code, report, err = _workers_report(fleet, tmp_path, monkeypatch, capsys)
    workers = report["workers"]
    assert isinstance(workers, list)
    advertised = {int(w["id"].rsplit(":", 1)[1]): [t["tag"] for t in w["targets"]] for w in workers}
    assert advertised == {w311.pid: [PY311], w312.pid: [PY312]}
    assert all(w["live"] for w in workers)
    wanted = report["wanted"]
    assert isinstance(wanted, list)
    assert [(w["tag"], len(w["live_workers"]), w["waiting"]) for w in wanted] == [
        (PY311, 1, 0),
        (PY312, 1, 0),
        (PY313, 0, 0),
    ]
    assert report["unserved"] == [PY313]
    assert code == 1 and f"no live worker has the build target 3.13 ({PY313})" in err
    assert f"consuming fromsource-builds, {queue_name(PY311)}" in w311.log.read_text()
    assert f"consuming fromsource-builds, {queue_name(PY312)}" in w312.log.read_text()


def test_a_pure_package_is_built_once_by_one_worker(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fleet.upstream.add(make_sdist(fleet.base / "sdists", "routed-pure", "1.0", "in-tree"))
    fleet.request_build("routed-pure==1.0")
    fleet.wait(120, lambda: any(b.status == "succeeded" for b in fleet.builds("routed-pure")))
    (build,) = fleet.builds("routed-pure")
    (wheel,) = fleet.wheels("routed-pure")
    assert wheel.filename == "routed_pure-1.0-py3-none-any.whl"
    # led by the worker with the oldest target, whichever worker took the request
    assert _tag(build) == PY311 and _built_by(fleet, build) is fleet.workers[0]
    (claim,) = fleet.rows(ClaimRow, "routed-pure")
    assert claim.state == "succeeded" and "target" not in claim.request
    # the pure wheel serves 3.12 and 3.13: nothing was sent to their queues
    _, report, _ = _workers_report(fleet, tmp_path, monkeypatch, capsys)
    wanted = report["wanted"]
    assert isinstance(wanted, list) and [w["waiting"] for w in wanted] == [0, 0, 0]


def test_a_c_extension_is_built_for_each_interpreter_by_the_worker_that_has_it(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    w311, w312 = fleet.workers
    fleet.upstream.add(make_sdist(fleet.base / "sdists", "routed-ext", "1.0", "setuptools-c"))
    fleet.request_build("routed-ext==1.0")
    fleet.wait(300, lambda: len(fleet.wheels("routed-ext")) == 2)
    fleet.wait(30, lambda: all(b.status == "succeeded" for b in fleet.builds("routed-ext")))
    builds = fleet.builds("routed-ext")
    # no target built twice: one build per interpreter, each by the worker that has it
    assert sorted(_tag(b) for b in builds) == [PY311, PY312]
    by_tag = {_tag(b): b for b in builds}
    assert _built_by(fleet, by_tag[PY311]) is w311
    assert _built_by(fleet, by_tag[PY312]) is w312
    wheels = {w.build_id: w.filename for w in fleet.wheels("routed-ext")}
    assert wheels[by_tag[PY311].id].startswith("routed_ext-1.0-cp311-cp311-manylinux")
    assert wheels[by_tag[PY312].id].startswith("routed_ext-1.0-cp312-cp312-manylinux")
    # the claims name the workers: the release's is the lead's, 3.12's its own (each
    # settled just after its build row)
    fleet.wait(30, lambda: all(c.state == "succeeded" for c in fleet.rows(ClaimRow, "routed-ext")))
    claims = {c.request.get("target"): c for c in fleet.rows(ClaimRow, "routed-ext")}
    assert set(claims) == {None, PY312}
    assert int(worker_of(claims[None].owner).rsplit(":", 1)[1]) == w311.pid
    assert int(worker_of(claims[PY312].owner).rsplit(":", 1)[1]) == w312.pid
    # 3.13: no worker has it; its build waits in its queue, and the lead said so
    fleet.wait(30, lambda: f"no live worker has the build target 3.13 ({PY313})" in fleet.logs())
    code, report, _ = _workers_report(fleet, tmp_path, monkeypatch, capsys)
    wanted = report["wanted"]
    assert isinstance(wanted, list)
    assert [(w["tag"], w["waiting"]) for w in wanted] == [(PY311, 0), (PY312, 0), (PY313, 1)]
    assert code == 1 and report["unserved"] == [PY313]


def test_the_waiting_target_is_built_once_a_worker_with_it_starts(
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if discover_targets(["3.13"]).unresolved:
        pytest.skip("needs CPython 3.13 (pyenv or PATH) for a third worker")
    if len(fleet.wheels("routed-ext")) != 2:
        pytest.skip("needs the C extension of the test before")
    w313 = fleet.add_worker("worker-313", FROMSOURCE_PYTHONS="3.13")
    fleet.wait(300, lambda: len(fleet.wheels("routed-ext")) == 3)
    fleet.wait(30, lambda: all(b.status == "succeeded" for b in fleet.builds("routed-ext")))
    builds = fleet.builds("routed-ext")
    assert sorted(_tag(b) for b in builds) == [PY311, PY312, PY313]
    (newest,) = [b for b in builds if _tag(b) == PY313]
    assert _built_by(fleet, newest) is w313
    code, report, err = _workers_report(fleet, tmp_path, monkeypatch, capsys)
    assert code == 0 and report["unserved"] == [] and err == ""
