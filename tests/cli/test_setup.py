"""`fromsource setup` in-process: dry run, output, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.cli.main import main

SECRET = "fs_topsecret_value"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("FROMSOURCE_USERNAME", "acme/abc")
    monkeypatch.setenv("FROMSOURCE_PASSWORD", SECRET)
    for name in ("PIP_CONFIG_FILE", "NETRC", "POETRY_CONFIG_DIR", "PDM_CONFIG_FILE", "FROMSOURCE_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_dry_run_writes_nothing_and_masks(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", "netrc", "--index", "https://pkgs.example/", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "would change" in out.out and "password ********" in out.out
    assert SECRET not in out.out + out.err
    assert not (home / ".netrc").exists()


def test_write_then_unchanged(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup", "pip", "--index", "https://pkgs.example/", "-q"]) == 0
    first = capsys.readouterr().out
    assert "created:" in first and "---" not in first  # -q: no diff
    assert main(["setup", "pip", "--index", "https://pkgs.example/"]) == 0
    second = capsys.readouterr().out
    assert "unchanged:" in second and "pip cache purge" in second
    assert SECRET in (home / ".config/pip/pip.conf").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["setup", "poetry", "--index", "https://h/"], "--project"),
        (["setup", "pip", "--index", "https://h/python/simple/"], "server root"),
        (["setup", "pip", "--index", "https://h/", "--repo", "python-all", "--repo", "python"], "combines"),
    ],
)
def test_errors_exit_2_with_message(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_missing_credentials_and_conflicting_scope(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("FROMSOURCE_PASSWORD")
    assert main(["setup", "uv", "--index", "https://h/"]) == 2
    assert "FROMSOURCE_PASSWORD" in capsys.readouterr().err
    assert main(["setup", "uv", "--index", "https://h/", "--no-credentials"]) == 0
    assert main(["setup", "uv", "--index", "https://h/", "--global", "--project", str(tmp_path)]) == 2
