"""The in-process build queue and run_request: real sandboxed builds on SQLite, offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fromsource.build.pipeline import BuildContext
from fromsource.build.sandbox import tool_available
from fromsource.config import Settings
from fromsource.errors import BuildError
from fromsource.store.models import BuildRow, FileRow
from fromsource.workers.claims import Target, get_claim
from fromsource.workers.queue import InProcessQueue, open_queue
from fromsource.workers.request import BuildRequest
from fromsource.workers.routing import FleetView, placeholder, queue_name
from fromsource.workers.runner import run_request
from tests.packages import LocalIndex, _minimal_backend, build_context, local_index, make_sdist  # noqa: F401

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


def _sdist(dest: Path, name: str, requires: str | None = None) -> Path:
    code = _minimal_backend(name, "1.0")
    if requires:
        code = code.replace("Version: 1.0\\n\\n", f"Version: 1.0\\nRequires-Dist: {requires}\\n\\n")
        assert "Requires-Dist" in code
    return make_sdist(dest, name, "1.0", "in-tree", backend_code=code)


@pytest.fixture
def ctx(tmp_path: Path, local_index: LocalIndex) -> Iterator[BuildContext]:  # noqa: F811
    local_index.add(_sdist(tmp_path / "sdists", "top-pkg", requires="leaf-pkg>=1"))
    local_index.add(_sdist(tmp_path / "sdists", "leaf-pkg"))
    context = build_context(tmp_path / "data", local_index.url)
    yield context
    context.close()


def _rows(ctx: BuildContext, model: type, project: str) -> list[object]:
    with ctx.db.session() as session:
        return list(session.scalars(sa.select(model).where(model.project == project)))  # type: ignore[attr-defined]


def test_in_process_queue_builds_with_dependencies_once(ctx: BuildContext) -> None:
    queue = InProcessQueue(lambda: ctx, threads=2, lease_seconds=5)
    request = BuildRequest("top-pkg==1.0", with_deps=True)
    queue.submit(request)
    queue.submit(request)  # already pending: not queued twice
    assert queue.idle.wait(240), "builds did not finish"
    queue.close()
    for project in ("top-pkg", "leaf-pkg"):
        assert [b.status for b in _rows(ctx, BuildRow, project)] == ["succeeded"]  # type: ignore[attr-defined]
        # Built once: one wheel (and the release's sdist beside it).
        assert sorted(f.kind for f in _rows(ctx, FileRow, project)) == ["sdist", "wheel"]  # type: ignore[attr-defined]
        claim = get_claim(ctx.db, Target("python", project, "1.0").key)
        assert claim is not None and claim.state == "succeeded"
    again = run_request(ctx, BuildRequest("top-pkg==1.0", with_deps=True), owner="t")
    assert again.status == "done" and again.follow_up == ()
    assert len(_rows(ctx, BuildRow, "top-pkg")) == 1


def test_unknown_projects_and_bad_requests(ctx: BuildContext) -> None:
    result = run_request(ctx, BuildRequest("no-such-pkg"), owner="t")
    assert result.status == "failed" and result.build_id is not None
    with pytest.raises(BuildError, match="not a requirement"):
        run_request(ctx, BuildRequest("not a requirement!"), owner="t")
    for repo in ("python-all", "python-remediated"):
        with pytest.raises(BuildError, match="fromsource remediate"):
            run_request(ctx, BuildRequest("top-pkg==1.0", repo=repo), owner="t")


def test_request_json_round_trip_and_queue_choice(tmp_path: Path) -> None:
    request = BuildRequest("flask[async]>=2", repo="python-remediated", with_deps=True)
    assert BuildRequest.from_json(request.to_json()) == request
    assert BuildRequest.from_json({"requirement": "x"}).repo == "python"
    settings = Settings(data_dir=tmp_path)
    assert open_queue(settings).kind == "in-process"


def test_in_a_fleet_the_worker_with_the_oldest_target_leads_the_release(
    ctx: BuildContext,
) -> None:
    here = ctx.build_targets()[0]
    older = placeholder(f"3.{here.version_tuple[1] - 1}", here)
    assert older is not None
    fleet = FleetView(wanted=(older, here), live=frozenset({older.tag, here.tag}))
    # This worker lacks the oldest target: the request goes to that target's queue, unbuilt.
    result = run_request(ctx, BuildRequest("top-pkg==1.0"), owner="worker@a:1:x", fleet=fleet)
    assert result.status == "forwarded" and f"sent to {queue_name(older.tag)}" in result.message
    (forwarded,) = result.routed
    assert forwarded.lead == older.tag and forwarded.queue == queue_name(older.tag)
    assert _rows(ctx, BuildRow, "top-pkg") == []
    assert get_claim(ctx.db, Target("python", "top-pkg", "1.0").key) is None
    # A request for a target this worker does not have goes back to its queue.
    routed = BuildRequest("top-pkg==1.0", target=older.tag)
    back = run_request(ctx, routed, owner="worker@a:1:x", fleet=fleet)
    assert back.status == "waiting" and f"goes back to {routed.queue}" in back.message
    # Whoever takes the forwarded request leads it (never forwarded twice); the pure
    # wheel serves the older target too, so nothing is routed.
    led = run_request(ctx, forwarded, owner="worker@a:1:y", fleet=fleet)
    assert led.status == "succeeded" and led.routed == ()
    assert [b.status for b in _rows(ctx, BuildRow, "top-pkg")] == ["succeeded"]  # type: ignore[attr-defined]


def test_asked_again_a_settled_release_routes_the_targets_no_wheel_serves_yet(
    tmp_path: Path, local_index: LocalIndex  # noqa: F811
) -> None:
    context = build_context(tmp_path / "data", local_index.url)
    try:
        here = context.build_targets()[0]
        newer = placeholder(f"3.{here.version_tuple[1] + 1}", here)
        assert newer is not None
        # A wheel for this interpreter only (no code to compile: the backend writes the tag).
        code = _minimal_backend("plat-pkg", "1.0").replace("py3-none-any", here.tag)
        code = code.replace("Root-Is-Purelib: true", "Root-Is-Purelib: false")
        local_index.add(make_sdist(tmp_path / "sdists", "plat-pkg", "1.0", "in-tree",
                                   backend_code=code))
        fleet = FleetView(wanted=(here, newer), live=frozenset({here.tag}))
        first = run_request(context, BuildRequest("plat-pkg==1.0"), owner="worker@a:1:x",
                            fleet=fleet)
        assert first.status == "succeeded", first.message
        assert [r.target for r in first.routed] == [newer.tag]
        # The lead stopped before sending them: the next request for the release sends them.
        again = run_request(context, BuildRequest("plat-pkg==1.0"), owner="worker@b:1:x",
                            fleet=fleet)
        assert again.status == "done" and [r.target for r in again.routed] == [newer.tag]
        assert "no live worker has the build target" in again.message
        assert len(_rows(context, BuildRow, "plat-pkg")) == 1
    finally:
        context.close()
