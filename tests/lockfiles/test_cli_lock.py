"""``fromsource lock update-hashes`` in-process against the live shared index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fromsource.cli.main import main
from tests.conftest import IndexServer
from tests.lockfiles.samples import digest

UPSTREAM = digest("9")
TEXT = (f"demo-pkg==1.0 \\\n    --hash=sha256:{UPSTREAM}\n"
        f"left-pad==9.9 \\\n    --hash=sha256:{digest('8')}\n    # via nothing\n")


def _run(*args: str) -> int:
    return main(["lock", "update-hashes", *args])


def test_missing_package_unchanged_and_exit_1(shared_index: IndexServer, reader: tuple[str, str],
                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text(TEXT)
    code = _run(str(lock), "--index", shared_index.url, "--username", reader[0],
                "--password", reader[1])
    out, err = capsys.readouterr()
    assert code == 1
    text = lock.read_text()
    assert text.endswith(f"left-pad==9.9 \\\n    --hash=sha256:{digest('8')}\n    # via nothing\n")
    assert text.startswith(f"demo-pkg==1.0 \\\n    --hash=sha256:{UPSTREAM} \\\n    --hash=sha256:")
    assert "NOT ON INDEX  left-pad==9.9" in out and "--allow-missing" in err
    assert reader[1] not in out + err + text

    lock.write_text(TEXT)
    code = _run(str(lock), "--index", shared_index.url, "--username", reader[0],
                "--password", reader[1], "--allow-missing", "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["schema_version"] == 1
    assert report["summary"] == {"updated": 1, "already-ours": 0, "missing": 1, "skipped": 0}
    assert report["files"][0]["written"] is True
    assert [p["status"] for p in report["files"][0]["packages"]] == ["updated", "missing"]


def test_dry_run_writes_nothing(shared_index: IndexServer, reader: tuple[str, str],
                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FROMSOURCE_USERNAME", reader[0])
    monkeypatch.setenv("FROMSOURCE_PASSWORD", reader[1])
    lock = tmp_path / "requirements.txt"
    lock.write_text(TEXT)
    code = _run(str(lock), "--index", shared_index.simple("python"), "--dry-run",
                "--allow-missing", "--format", "json")
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and lock.read_text() == TEXT
    assert report["dry_run"] is True
    assert report["files"][0]["changed"] is True and report["files"][0]["written"] is False


def test_netrc_credentials(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {reader[0]}\npassword {reader[1]}\n")
    netrc.chmod(0o600)
    monkeypatch.delenv("FROMSOURCE_USERNAME", raising=False)
    monkeypatch.setenv("NETRC", str(netrc))
    lock = tmp_path / "requirements.txt"
    lock.write_text("dep-pkg==0.1\n")
    assert _run(str(lock), "--index", shared_index.url) == 0
    assert lock.read_text().startswith("dep-pkg==0.1 \\\n    --hash=sha256:")


def test_errors_exit_2_and_write_nothing(shared_index: IndexServer, reader: tuple[str, str],
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("FROMSOURCE_USERNAME", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    good = tmp_path / "requirements.txt"
    good.write_text(TEXT)
    assert _run(str(good), "--index", shared_index.url) == 2
    assert "401" in capsys.readouterr().err and good.read_text() == TEXT

    broken = tmp_path / "uv.lock"
    broken.write_text("[[package]\n")
    assert _run(str(good), str(broken), "--index", shared_index.url, "--username", reader[0],
                "--password", reader[1]) == 2
    assert "not valid TOML" in capsys.readouterr().err and good.read_text() == TEXT
    assert _run(str(tmp_path / "absent.txt"), "--index", shared_index.url) == 2
    assert _run(str(good), "--index", "ftp://nowhere/") == 2
    assert main(["lock", "update-hashes", str(good)]) == 2  # --index is required
