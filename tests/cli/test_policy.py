"""``fromsource policy list|add|remove|test|log``, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fromsource.cli.main import main
from tests.policy.malware_records import fake_record


def run(tmp_path: Path, *args: str) -> int:
    return main(["--data-dir", str(tmp_path / "data"), *args])


def out_json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    value = json.loads(capsys.readouterr().out)
    assert isinstance(value, dict) and value["schema_version"] == 1
    return value


def test_add_list_test_remove_and_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "MAL-2026-77.json"
    record.write_text(
        json.dumps(fake_record("MAL-2026-77", "demo-evil", versions=("1.1",)).to_json())
    )
    assert run(tmp_path, "advisories", "import", str(record)) == 0
    capsys.readouterr()

    assert (
        run(
            tmp_path,
            "policy",
            "add",
            "block",
            "pkg:pypi/Demo_Old",
            "--versions",
            "<2",
            "--reason",
            "too old",
            "--format",
            "json",
        )
        == 0
    )
    block = out_json(capsys)["rule"]
    assert isinstance(block, dict) and block["project"] == "demo-old" and block["versions"] == "<2"
    assert run(tmp_path, "policy", "add", "cooldown", "pkg:pypi/*", "--days", "3") == 0
    assert "cooldown  pkg:pypi/*  3 day(s)" in capsys.readouterr().out

    assert run(tmp_path, "policy", "list", "--format", "json") == 0
    listing = out_json(capsys)
    assert listing["default_cooldown_days"] == 3 and listing["malware_records"] == 1
    assert listing["policy_generation"] == 3  # one import, two rules

    # test: exit 1 when denied, 0 when allowed; nothing is written to the log.
    assert run(tmp_path, "policy", "test", "pkg:pypi/demo-evil@1.1") == 1
    assert "denied (409) [malware] demo-evil 1.1 is malware: MAL-2026-77" in capsys.readouterr().out
    assert run(tmp_path, "policy", "test", "pkg:pypi/demo-old@1.0", "--format", "json") == 1
    assert out_json(capsys)["verdict"] == "block"
    assert run(tmp_path, "policy", "test", "pkg:pypi/demo-old@2.0") == 0
    capsys.readouterr()
    assert (
        run(
            tmp_path,
            "policy",
            "test",
            "pkg:pypi/fresh@1.0",
            "--upload-time",
            "2999-01-01T00:00:00Z",
            "--format",
            "json",
        )
        == 1
    )
    assert out_json(capsys)["status"] == 404
    assert run(tmp_path, "policy", "test", "pkg:pypi/demo-old") == 0  # not blocked whole
    capsys.readouterr()

    assert (
        run(
            tmp_path,
            "policy",
            "add",
            "allow",
            "pkg:pypi/demo-evil@1.1",
            "--reason",
            "lab",
            "--format",
            "json",
        )
        == 0
    )
    allow = out_json(capsys)["rule"]
    assert isinstance(allow, dict)
    assert run(tmp_path, "policy", "test", "pkg:pypi/demo-evil@1.1") == 0
    assert "allowed [allow]" in capsys.readouterr().out

    assert run(tmp_path, "policy", "remove", str(allow["id"])) == 0
    assert "removed:" in capsys.readouterr().out
    assert run(tmp_path, "policy", "log", "--format", "json") == 0
    entries = out_json(capsys)["entries"]
    assert isinstance(entries, list)
    assert [e["action"] for e in entries] == [
        "rule-removed",
        "rule-added",
        "rule-added",
        "rule-added",
    ]
    assert entries[0]["actor"].startswith("cli")
    assert run(tmp_path, "policy", "log", "--project", "demo-old") == 0
    assert "rule-added" in capsys.readouterr().out


def test_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "policy", "add", "allow", "pkg:pypi/x@1.0") == 2
    assert "--reason" in capsys.readouterr().err
    assert run(tmp_path, "policy", "add", "block", "requests") == 2
    assert "pkg:pypi/requests" in capsys.readouterr().err
    assert run(tmp_path, "policy", "remove", "42") == 2
    assert "no policy rule 42" in capsys.readouterr().err
    assert run(tmp_path, "policy", "test", "pkg:pypi/x@1", "--upload-time", "yesterday") == 2
    assert run(tmp_path, "policy", "test", "pkg:pypi/*") == 2
    assert run(tmp_path, "policy", "add", "deny", "pkg:pypi/x") == 2
