"""The build pipeline refuses releases policy denies, before fetching anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fromsource.build.history import get_build
from fromsource.build.outcome import CATEGORIES
from fromsource.build.pipeline import BuildContext, build_one
from fromsource.cli.main import main
from fromsource.policy.store import add_rule, read_log
from fromsource.remediate.store import import_advisories
from tests.packages import LocalIndex, build_context
from tests.policy.malware_records import fake_record, real_record


@pytest.fixture
def upstream() -> Iterator[LocalIndex]:
    """An empty upstream index: any request the build makes is recorded in ``requests``."""
    index = LocalIndex()
    with index.serve():
        yield index


@pytest.fixture
def ctx(tmp_path: Path, upstream: LocalIndex) -> Iterator[BuildContext]:
    context = build_context(tmp_path / "data", upstream.url)
    yield context
    context.close()


def test_a_malicious_version_is_refused_with_the_category_and_nothing_is_fetched(
    ctx: BuildContext, upstream: LocalIndex
) -> None:
    import_advisories(ctx.db, [real_record("litellm")])
    outcome = build_one(ctx, "litellm==1.82.7")
    assert (outcome.status, outcome.category) == ("failed", "blocked-by-policy")
    assert "blocked-by-policy" in CATEGORIES
    assert "MAL-2026-2144" in outcome.message and "policy test pkg:pypi/litellm@1.82.7" in (
        outcome.message
    )
    assert upstream.requests == []  # refused before the fetch step
    assert outcome.build_id is not None
    row = get_build(ctx.db, outcome.build_id)
    assert row is not None and row.details["category"] == "blocked-by-policy"
    (entry,) = read_log(ctx.db)
    assert (entry.action, entry.mal_id, entry.version, entry.actor) == (
        "build-refused",
        "MAL-2026-2144",
        "1.82.7",
        "build",
    )
    # The remediated repository refuses its X.Y.Z+fs.N builds of it too.
    remediated = build_one(ctx, "litellm==1.82.7", repo="python-remediated", local_version="fs.1")
    assert remediated.category == "blocked-by-policy"


def test_a_block_rule_refuses_and_an_allow_rule_lets_the_build_through_audited(
    ctx: BuildContext, upstream: LocalIndex
) -> None:
    import_advisories(ctx.db, [fake_record("MAL-2026-77", "demo-evil", versions=("1.1",))])
    add_rule(ctx.db, "block", "pkg:pypi/demo-blocked", versions="<2")
    assert build_one(ctx, "demo-blocked==1.5").category == "blocked-by-policy"
    assert build_one(ctx, "demo-blocked==2.0").category == "not-found"  # went upstream

    add_rule(ctx.db, "allow", "pkg:pypi/demo-evil@1.1", reason="a test lab")
    through = build_one(ctx, "demo-evil==1.1")
    # Policy let it through: the build went on to ask upstream (which has nothing).
    assert through.category == "not-found" and any("demo-evil" in r for r in upstream.requests)
    allowed = read_log(ctx.db, actions=["build-allowed"])
    assert [(e.project, e.verdict, e.mal_id) for e in allowed] == [
        ("demo-evil", "allow", "MAL-2026-77")
    ]
    assert "a test lab" in allowed[0].reason


def test_the_build_command_reports_the_refusal(
    tmp_path: Path, upstream: LocalIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    records = tmp_path / "records" / "MAL-2026-77.json"
    records.parent.mkdir()
    records.write_text(
        json.dumps(fake_record("MAL-2026-77", "demo-evil", versions=("1.1",)).to_json())
    )
    assert main([*data, "advisories", "import", str(records)]) == 0
    capsys.readouterr()
    args = ["build", "demo-evil==1.1", "--upstream", upstream.url, "--allow-unsandboxed"]
    assert main([*data, *args, "--format", "json"]) == 1
    (built,) = json.loads(capsys.readouterr().out)["builds"]
    assert built["status"] == "failed" and built["category"] == "blocked-by-policy"
    assert "MAL-2026-77" in built["message"]
