"""What a build job says of each release: the pure rule over its claim and build row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fromsource.build.coverage import PackageCoverage
from fromsource.build.jobs import BuildFacts, settle_entry
from fromsource.workers.claims import ClaimView

JOB = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ENTRY = PackageCoverage("Demo", "1.0", "r.txt:1", "queued", targets=("t",))


def _claim(state: str, finished: datetime | None = None, build_id: int | None = 7) -> ClaimView:
    return ClaimView("k", "python", "demo", "1.0", state, "w", JOB, build_id, 1, 1, {}, finished)


def _build(status: str, created: datetime, category: str | None = None) -> BuildFacts:
    return BuildFacts(
        7,
        status,
        "it broke" if status == "failed" else None,
        category,
        "demo-1.0-py3-none-any.whl",
        created,
    )


def test_settle_entry() -> None:
    later, earlier = JOB + timedelta(seconds=5), JOB - timedelta(days=1)
    assert settle_entry(ENTRY, None, None, None, JOB).status == "queued"
    published = settle_entry(ENTRY, None, None, "demo-1.0-py3-none-any.whl", JOB)
    assert (published.status, published.wheel) == ("already-built", "demo-1.0-py3-none-any.whl")
    running = settle_entry(ENTRY, _claim("running"), None, None, JOB)
    assert (running.status, running.build_id) == ("running", 7)
    built = settle_entry(ENTRY, _claim("succeeded", later), _build("succeeded", later), None, JOB)
    assert (built.status, built.wheel) == ("built", "demo-1.0-py3-none-any.whl")
    before = settle_entry(
        ENTRY, _claim("succeeded", earlier), _build("succeeded", earlier), None, JOB
    )
    assert before.status == "already-built"
    skipped = settle_entry(ENTRY, _claim("succeeded", later), _build("skipped", later), None, JOB)
    assert skipped.status == "already-built"
    failed = settle_entry(
        ENTRY, _claim("failed", later), _build("failed", later, "timeout"), None, JOB
    )
    assert (failed.status, failed.category, failed.reason) == ("failed", "timeout", "it broke")
    old_failure = settle_entry(
        ENTRY, _claim("failed", earlier), _build("failed", earlier), None, JOB
    )
    assert old_failure.status == "queued", "the job's own request builds it again"
    assert settle_entry(ENTRY, _claim("queued"), None, None, JOB).status == "queued"
    assert built.targets == ("t",) and built.location == "r.txt:1"
