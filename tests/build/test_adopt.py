"""adopt's decisions: the client per lock format, the install command, what cannot be served."""

from __future__ import annotations

from pathlib import PurePath

from fromsource.build.adopt import install_command, lock_files_to_update, setup_target, unserved
from fromsource.build.coverage import CoverageReport, PackageCoverage
from fromsource.lockfiles import FileResult
from fromsource.lockfiles.model import PackageReport


def test_client_and_install_command_per_format() -> None:
    here = PurePath("/home/me/app")
    assert [
        setup_target(f)
        for f in (
            "uv.lock",
            "poetry.lock",
            "pdm.lock",
            "requirements",
            "pylock.toml",
            "Pipfile.lock",
        )
    ] == ["uv", "poetry", "pdm", "pip", "netrc", "netrc"]
    assert install_command("uv.lock", here / "uv.lock", here) == "uv sync --locked"
    assert install_command("pdm.lock", here / "pdm.lock", PurePath("/")) == (
        "cd /home/me/app && pdm install --frozen-lockfile"
    )
    assert (
        install_command("requirements", PurePath("reqs/dev requirements.txt"), PurePath("."))
        == "cd reqs && pip install -r 'dev requirements.txt'"
    )
    assert install_command("pylock.toml", PurePath("pylock.toml"), PurePath(".")) == (
        "pip install -r pylock.toml"
    )


def test_unserved_joins_the_build_and_the_index() -> None:
    report = CoverageReport(
        ("r.txt",),
        "requirements",
        ("t",),
        (
            PackageCoverage("ok", "1", "r.txt:1", "built"),
            PackageCoverage("broken", "1", "r.txt:2", "failed", "build-failed", "it broke\nlog"),
            PackageCoverage("pywin32", "311", "r.txt:3", "skipped", "marker", "no", counted=False),
            PackageCoverage("tool", None, "r.txt:4", "skipped", "vcs", "git+https://x/tool"),
            PackageCoverage("App", "0.1", "r.txt:5", "skipped", "project", "-e .", counted=False),
        ),
    )
    update = FileResult(
        "r.txt",
        "requirements",
        True,
        True,
        (
            PackageReport("ok", "1", "updated", "1 file"),
            PackageReport("Broken", "1", "missing", "not on the index; left unchanged"),
            PackageReport("pywin32", "311", "missing", "not on the index; left unchanged"),
            PackageReport("lost", "2", "missing", "not on the index; left unchanged"),
        ),
    )
    lines = [u.line() for u in unserved(report, [update])]
    assert lines == [
        "broken==1 (r.txt:2) [build-failed]: it broke",
        "tool (r.txt:4) [vcs]: git+https://x/tool",
        "lost==2 (r.txt) [not-on-index]: not on the index; left unchanged",
    ]
    assert lock_files_to_update(["a.txt", "c.txt", "b.txt"], {"c.txt"}) == ["a.txt", "b.txt"]
