"""`fromsource setup TARGET` then the real client installs from a live index with that config.

The command runs in-process with HOME pointing at a private folder; each
client then runs in a clean environment over the same HOME, so only the
written configuration can get it to the index and past its authentication.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fromsource.cli.main import main
from tests.clients import UV, clean_env, run, tool
from tests.conftest import IndexServer

APP = '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\ndependencies = [{deps}]\n'


@pytest.fixture(scope="module")
def reader(shared_index: IndexServer) -> tuple[str, str]:
    return shared_index.token("python", "python-remediated")


def setup_cmd(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    home: Path,
    token: tuple[str, str],
    *args: str,
) -> str:
    """Run ``fromsource setup ARGS`` with HOME=*home*; returns stdout+stderr (asserts exit 0)."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("FROMSOURCE_USERNAME", token[0])
    monkeypatch.setenv("FROMSOURCE_PASSWORD", token[1])
    for name in ("PIP_CONFIG_FILE", "NETRC", "POETRY_CONFIG_DIR", "PDM_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()
    code = main(["setup", *args])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 0, output
    assert token[1] not in output
    return output


def _venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def _pip(python: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "--python", str(python)]


def _installed(python: Path, env: dict[str, str]) -> dict[str, str]:
    out = run([*_pip(python), "list", "--format", "freeze"], env).stdout
    return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)


def test_pip_global_pip_conf(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    out = setup_cmd(monkeypatch, capsys, home, reader, "pip", "--index", shared_index.url)
    assert "pip cache purge" in out
    conf = home / ".config" / "pip" / "pip.conf"
    assert conf.stat().st_mode & 0o777 == 0o600
    again = setup_cmd(monkeypatch, capsys, home, reader, "pip", "--index", shared_index.url)
    assert f"unchanged: {conf}" in again
    env = clean_env(home)
    del env["PIP_CONFIG_FILE"]
    python = _venv(tmp_path / "venv")
    result = run([*_pip(python), "install", "--no-cache-dir", "demo-pkg==1.0"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(python, env)["demo-pkg"] == "1.0+fs.1"  # python-all: remediated first


def test_pip_project_requirements_and_netrc(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    (project / "requirements.txt").write_text("demo-pkg==1.1\n")
    setup_cmd(monkeypatch, capsys, home, reader, "pip", "--project", str(project),
              "--repo", "python", "--index", shared_index.url)
    requirements = (project / "requirements.txt").read_text()
    assert requirements == f"--index-url {shared_index.simple('python')}\ndemo-pkg==1.1\n"
    assert (home / ".netrc").stat().st_mode & 0o777 == 0o600
    env = clean_env(home)
    python = _venv(tmp_path / "venv")
    result = run([*_pip(python), "install", "--no-cache-dir", "-r", str(project / "requirements.txt")], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(python, env)["demo-pkg"] == "1.1"


def test_netrc_alone_serves_pip_and_uv(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    out = setup_cmd(monkeypatch, capsys, home, reader, "netrc", "--index", shared_index.url)
    assert "uv cache clean" in out
    env = clean_env(home)
    python = _venv(tmp_path / "venv")
    result = run([*_pip(python), "install", "--no-cache-dir", "--index-url",
                  shared_index.simple("python"), "dep-pkg"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run([UV, "pip", "install", "--python", str(python), "--no-cache",
                  "--index-url", shared_index.simple("python"), "demo-pkg==1.0"], env)
    assert result.returncode == 0, result.stderr


def test_uv_global_uv_toml(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    home, project = tmp_path / "home", tmp_path / "proj"
    setup_cmd(monkeypatch, capsys, home, reader, "uv", "--global", "--index", shared_index.url)
    assert (home / ".config" / "uv" / "uv.toml").exists()
    project.mkdir()
    (project / "pyproject.toml").write_text(APP.format(deps='"demo-pkg==1.0"') + "\n[tool.uv]\npackage = false\n")
    env = clean_env(home)
    del env["UV_NO_CONFIG"]
    result = run([UV, "sync", "--python", sys.executable], env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert 'version = "1.0+fs.1"' in (project / "uv.lock").read_text()


def test_uv_project_two_repositories(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(APP.format(deps='"demo-pkg==1.0"') + "\n[tool.uv]\npackage = false\n")
    setup_cmd(monkeypatch, capsys, home, reader, "uv", "--project", str(project), "--index", shared_index.url,
              "--repo", "python-remediated", "--repo", "python")
    env = clean_env(home)
    del env["UV_NO_CONFIG"]
    result = run([UV, "sync", "--python", sys.executable], env, cwd=project)
    assert result.returncode == 0, result.stderr
    lock = (project / "uv.lock").read_text()
    assert 'version = "1.0+fs.1"' in lock  # from python-remediated
    assert "python/simple" in lock and 'name = "dep-pkg"' in lock  # dep-pkg only in python
    assert reader[1] not in lock


@pytest.mark.network
def test_poetry_project(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    poetry = str(tool("poetry"))
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        APP.format(deps='"demo-pkg==1.0"') + "\n[tool.poetry]\npackage-mode = false\n")
    out = setup_cmd(monkeypatch, capsys, home, reader, "poetry", "--project", str(project),
                    "--index", shared_index.url)
    assert "poetry cache clear --all fromsource" in out
    assert (home / ".config" / "pypoetry" / "auth.toml").stat().st_mode & 0o777 == 0o600
    env = clean_env(home, {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "POETRY_CACHE_DIR": str(home / "pcache")})
    lock = run([poetry, "lock", "--no-interaction"], env, cwd=project)
    assert lock.returncode == 0, lock.stdout + lock.stderr
    install = run([poetry, "install", "--no-interaction"], env, cwd=project)
    assert install.returncode == 0, install.stdout + install.stderr
    assert 'version = "1.0+fs.1"' in (project / "poetry.lock").read_text()
    assert reader[1] not in lock.stdout + install.stdout


def _pdm_env(home: Path, python: Path) -> dict[str, str]:
    # PDM_PYTHON names a fresh venv: pdm installs into the venv its interpreter lives in.
    return clean_env(home, {"PDM_CHECK_UPDATE": "false", "PDM_PYTHON": str(python),
                            "PDM_CACHE_DIR": str(home / "pdmcache")})


@pytest.mark.network
def test_pdm_project(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    pdm = str(tool("pdm"))
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        APP.format(deps='"demo-pkg==1.0"') + "\n[tool.pdm]\ndistribution = false\n")
    setup_cmd(monkeypatch, capsys, home, reader, "pdm", "--project", str(project),
              "--index", shared_index.url, "--repo", "python-remediated", "--repo", "python")
    python = _venv(tmp_path / "venv")
    result = run([pdm, "install", "--no-self"], _pdm_env(home, python), cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    # pdm locks "1.0" with both files listed and installs the best one.
    assert 'name = "dep-pkg"' in (project / "pdm.lock").read_text()
    assert _installed(python, clean_env(home)) == {"demo-pkg": "1.0+fs.1", "dep-pkg": "0.1"}


@pytest.mark.network
def test_pdm_global_config(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    pdm = str(tool("pdm"))
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        APP.format(deps='"demo-pkg==1.1"') + "\n[tool.pdm]\ndistribution = false\n")
    setup_cmd(monkeypatch, capsys, home, reader, "pdm", "--index", shared_index.url)
    assert (home / ".config" / "pdm" / "config.toml").stat().st_mode & 0o777 == 0o600
    python = _venv(tmp_path / "venv")
    result = run([pdm, "install", "--no-self"], _pdm_env(home, python), cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(python, clean_env(home))["demo-pkg"] == "1.1"
