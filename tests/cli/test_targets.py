"""``fromsource targets``: the listing, the build_pythons setting, and the exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fromsource.cli.main import main

BASE = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_json_lists_the_named_interpreter_as_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--data-dir", str(tmp_path), "targets", "--format", "json", "--python", str(BASE)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["schema_version"] == 1
    [target] = report["targets"]
    assert (target["version"], target["interpreter"], target["built"]) == (HERE, str(BASE), True)
    assert target["tag"] == f"{target['python_tag']}-{target['abi_tag']}-{target['platform_tag']}"


def test_text_table_and_the_build_pythons_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FROMSOURCE_PYTHONS", f"{BASE}, /nonexistent/python3.12")
    monkeypatch.setenv("FROMSOURCE_BUILD_PYTHONS", "3.99")
    code = main(["--data-dir", str(tmp_path), "targets"])
    out, err = capsys.readouterr()
    header, row = out.splitlines()
    assert header.split() == ["version", "abi", "platform", "glibc", "built", "interpreter"]
    assert row.split()[4:] == ["no", str(BASE)]  # not in build_pythons
    # an explicit entry that gives no target is an error, after the listing
    assert code == 2
    assert "skipped /nonexistent/python3.12: does not exist" in err
    assert "no target for /nonexistent/python3.12" in err


def test_no_interpreter_at_all_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "python3.12"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    code = main(
        ["--data-dir", str(tmp_path), "targets", "--format", "json", "--python", str(broken)]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert report["targets"] == []
    assert "exit status 3" in report["skipped"][0]["reason"]
