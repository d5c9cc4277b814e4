"""``fromsource build``, ``rebuild --check`` and ``builds list|show``, in-process and offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fromsource.build.sandbox import tool_available
from fromsource.cli.main import main
from tests.packages import LocalIndex, local_index, make_sdist  # noqa: F401

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


def run(tmp_path: Path, *args: str) -> int:
    return main(["--data-dir", str(tmp_path / "data"), *args])


def test_build_list_show_and_rebuild_check(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    local_index.add(make_sdist(tmp_path / "sdists", "demo-cli", "1.0", "flit-core"))
    upstream = ["--upstream", local_index.url]

    assert run(tmp_path, "build", "demo-cli==1.0", *upstream, "--format", "json") == 0
    (built,) = json.loads(capsys.readouterr().out)["builds"]
    assert built["status"] == "succeeded"
    assert built["wheel"] == "demo_cli-1.0-py3-none-any.whl"
    assert set(built["steps"]) >= {"fetch", "unpack", "deps", "build", "normalize", "publish"}

    assert run(tmp_path, "build", "demo-cli==1.0", *upstream) == 0
    assert "skipped" in capsys.readouterr().out

    assert run(tmp_path, "builds", "list", "--format", "json") == 0
    listed = json.loads(capsys.readouterr().out)["builds"]
    assert [b["status"] for b in listed] == ["skipped", "succeeded"]

    assert run(tmp_path, "builds", "show", str(built["build_id"])) == 0
    shown = capsys.readouterr().out
    assert "succeeded" in shown and "$ build_wheel" in shown and "== publish" in shown
    assert run(tmp_path, "builds", "show", str(built["build_id"]), "--full-log") == 0
    full = capsys.readouterr().out  # the stored sandbox output, not our step lines
    assert "succeeded" in full and "$ build_wheel" in full and "== publish" not in full

    assert run(tmp_path, "rebuild", "--check", "demo-cli==1.0", *upstream) == 0
    assert "identical" in capsys.readouterr().out

    # One check per distinct wheel: the pure wheel serves every target, so asking for
    # the running Python's checks it once, with the interpreter that built it.
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    args = ["rebuild", "--check", "demo-cli==1.0", "--python", python, "--format", "json"]
    assert run(tmp_path, *args, *upstream) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema_version"] == 2 and report["identical"] is True
    (check,) = report["checks"]
    assert check["wheel"] == built["wheel"] and check["target"] == built["target"]
    assert run(tmp_path, "rebuild", "--check", "demo-cli==1.0", "--python", "2.7", *upstream) == 2
    assert "names none of the build targets" in capsys.readouterr().err


def test_failures_and_usage_errors_have_exit_codes(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    upstream = ["--upstream", local_index.url]
    assert run(tmp_path, "build", "not-on-the-index==1.0", *upstream) == 1
    captured = capsys.readouterr()
    assert "not-found" in captured.out
    assert "not-on-the-index 1.0 failed [not-found]" in captured.err
    assert run(tmp_path, "build", "bad requirement !!", *upstream) == 2
    assert "not a requirement" in capsys.readouterr().err
    assert run(tmp_path, "builds", "show", "999") == 2
    assert run(tmp_path, "rebuild", "demo==1.0", *upstream) == 2


def test_build_agree_2_from_the_command_line(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    local_index.add(make_sdist(tmp_path / "sdists", "demo-cli-agree", "1.0", "in-tree"))
    upstream = ["--upstream", local_index.url]
    args = ["build", "demo-cli-agree==1.0", *upstream]
    assert run(tmp_path, *args, "--publish-irreproducible") == 2  # needs --agree 2
    assert "--publish-irreproducible needs --agree 2" in capsys.readouterr().err
    assert run(tmp_path, *args, "--agree", "2", "--format", "json") == 0
    (built,) = json.loads(capsys.readouterr().out)["builds"]
    assert built["status"] == "succeeded" and "agree" in built["steps"]
    assert "2 independent builds agreed" in built["message"]
    assert run(tmp_path, "builds", "list", "--format", "json") == 0
    assert len(json.loads(capsys.readouterr().out)["builds"]) == 2
