"""Requests whose version policy chooses (build-on-demand's, and the dependency requests they
lead to): the cooldown holds back a young dependency release; an operator's request does not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from packaging.requirements import Requirement

from fromsource.build.interpreters import running_target
from fromsource.build.outcome import BuildOutcome
from fromsource.build.pipeline import BuildContext
from fromsource.build.sandbox import tool_available
from fromsource.policy.store import add_rule, read_log
from fromsource.store.models import BuildRow
from fromsource.workers.queue import InProcessQueue
from fromsource.workers.request import BuildRequest
from fromsource.workers.runner import _follow_ups, run_request
from tests.packages import (  # noqa: F401
    LocalIndex,
    _minimal_backend,
    build_context,
    local_index,
    make_sdist,
)

OLD = datetime.now(UTC) - timedelta(days=40)
YOUNG = datetime.now(UTC) - timedelta(days=1)
sandboxed = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


def test_under_policy_round_trips_and_passes_to_the_dependency_requests() -> None:
    request = BuildRequest("flask<=3.0,!=2.9", with_deps=True, under_policy=True)
    assert request.to_json()["under_policy"] is True
    assert BuildRequest.from_json(request.to_json()) == request
    operator = BuildRequest("flask", with_deps=True)
    assert "under_policy" not in operator.to_json()
    assert BuildRequest.from_json(operator.to_json()).under_policy is False
    assert BuildRequest.from_json({"requirement": "x", "under_policy": False}).under_policy is False

    outcome = BuildOutcome(
        "flask", "3.0", "succeeded", requires_dist=("werkzeug>=3", "click[color]>=8")
    )
    for asked in (request, operator):
        follow = _follow_ups(asked, Requirement(asked.requirement), outcome, [running_target()])
        assert sorted(f.requirement for f in follow) == ["click[color]>=8", "werkzeug>=3"]
        assert {(f.with_deps, f.under_policy) for f in follow} == {(True, asked.under_policy)}


def _sdist(dest: Path, name: str, version: str, requires: str | None = None) -> Path:
    code = _minimal_backend(name, version)
    if requires:
        head = f"Version: {version}\\n"
        code = code.replace(f"{head}\\n", f"{head}Requires-Dist: {requires}\\n\\n")
        assert "Requires-Dist" in code
    return make_sdist(dest, name, version, "in-tree", backend_code=code)


@pytest.fixture
def upstream(tmp_path: Path, local_index: LocalIndex) -> Iterator[LocalIndex]:  # noqa: F811
    """``held-top`` 1.0 (old) requires ``held-dep>=1``; ``held-dep`` 1.0 is old, 2.0 a day
    old (inside the default cooldown of 7 days)."""
    for name, version, requires, when in (
        ("held-top", "1.0", "held-dep>=1", OLD),
        ("held-dep", "1.0", None, OLD),
        ("held-dep", "2.0", None, YOUNG),
    ):
        path = _sdist(tmp_path / "sdists", name, version, requires)
        local_index.add(path)
        local_index.upload_times[path.name] = when
    yield local_index


def _built(ctx: BuildContext, project: str) -> dict[str, str]:
    with ctx.db.session() as session:
        rows = session.scalars(sa.select(BuildRow).where(BuildRow.project == project))
        return {r.version: r.status for r in rows}


def _refused(ctx: BuildContext, project: str) -> list[str]:
    entries = read_log(ctx.db, project=project, actions=["build-refused"])
    return [f"{e.version} {e.actor}" for e in entries]


def _build_all(ctx: BuildContext, request: BuildRequest) -> None:
    queue = InProcessQueue(lambda: ctx, threads=1, lease_seconds=5)
    queue.submit(request)
    assert queue.idle.wait(240), "builds did not finish"
    queue.close()


@sandboxed
def test_dependencies_of_a_request_policy_chooses_wait_for_their_cooldown(
    tmp_path: Path, upstream: LocalIndex
) -> None:
    ctx = build_context(tmp_path / "policy", upstream.url)
    try:
        _build_all(ctx, BuildRequest("held-top<=1.0", with_deps=True, under_policy=True))
        assert _built(ctx, "held-top") == {"1.0": "succeeded"}
        assert _built(ctx, "held-dep") == {"1.0": "succeeded"}
        assert _refused(ctx, "held-dep") == ["2.0 on-demand"]

        # Nothing policy lets through: skipped without a build row, audited once per
        # policy generation; an allow rule still wins.
        young = BuildRequest("held-dep>=2", under_policy=True)
        for _ in range(2):
            result = run_request(ctx, young, owner="t")
            assert result.status == "skipped" and result.build_id is None
            assert result.message.startswith("held-dep>=2 is not built: policy lets none")
            assert "held-dep 2.0 was published 1 day(s) ago" in result.message
        assert _built(ctx, "held-dep") == {"1.0": "succeeded"}
        assert _refused(ctx, "held-dep") == ["2.0 on-demand"]
        add_rule(ctx.db, "allow", "pkg:pypi/held-dep@2.0", reason="reviewed", actor="test")
        allowed = run_request(ctx, young, owner="t")
        assert allowed.status == "succeeded" and allowed.version == "2.0"
        (entry,) = read_log(ctx.db, project="held-dep", actions=["build-allowed"])
        assert entry.actor == "on-demand" and "reviewed" in entry.reason
    finally:
        ctx.close()

    # An operator's request (not under policy) takes the newest release, cooldown or not.
    ctx = build_context(tmp_path / "operator", upstream.url)
    try:
        _build_all(ctx, BuildRequest("held-top<=1.0", with_deps=True))
        assert _built(ctx, "held-top") == {"1.0": "succeeded"}
        assert _built(ctx, "held-dep") == {"2.0": "succeeded"}
        assert _refused(ctx, "held-dep") == []
    finally:
        ctx.close()

