"""Real pip, uv and poetry install from a live index with pull-token auth."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.clients import UV, bare_venv, clean_env, pip_for, run, tool, write_netrc
from tests.conftest import IndexServer


@pytest.fixture(scope="module")
def reader(shared_index: IndexServer) -> tuple[str, str]:
    return shared_index.token("python", "python-remediated")




def _installed(python: Path, env: dict[str, str]) -> dict[str, str]:
    out = run([*pip_for(python), "list", "--format", "freeze"], env).stdout
    return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)


def _host(server: IndexServer) -> str:
    return server.url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]


def test_pip_with_credentials_in_url(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    result = run([*pip_for(python), "install", "--no-cache-dir", "--index-url",
                  shared_index.cred_url("python", reader), "demo-pkg"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(python, env)["demo-pkg"] == "1.1"
    assert reader[1] not in result.stdout + result.stderr


def test_pip_with_netrc(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = clean_env(home)
    write_netrc(home, _host(shared_index), reader[0], reader[1])
    python = bare_venv(tmp_path / "venv")
    result = run([*pip_for(python), "install", "--no-cache-dir", "--index-url",
                  shared_index.simple("python"), "demo-pkg==1.0"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(python, env)["demo-pkg"] == "1.0"


def test_pip_with_pip_conf(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    conf = home / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(f"[global]\nindex-url = {shared_index.cred_url('python', reader)}\nno-cache-dir = true\n")
    env = clean_env(home)
    del env["PIP_CONFIG_FILE"]
    python = bare_venv(tmp_path / "venv")
    result = run([*pip_for(python), "install", "dep-pkg"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dep-pkg" in _installed(python, env)


def test_pip_refused_without_or_with_bad_credentials(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    bad = run([*pip_for(python), "install", "-v", "--no-cache-dir", "--index-url",
               shared_index.cred_url("python", (reader[0], "wrong")), "demo-pkg"], env)
    assert bad.returncode != 0 and "401" in bad.stdout + bad.stderr
    before = _count_401(shared_index)
    none = run([*pip_for(python), "install", "-v", "--no-cache-dir", "--index-url",
                shared_index.simple("python"), "demo-pkg"], env)
    # pip without credentials does not print the status; the server's counter shows it.
    assert none.returncode != 0 and _count_401(shared_index) > before


def _count_401(server: IndexServer) -> int:
    import httpx

    for line in httpx.get(server.url + "metrics").text.splitlines():
        if line.startswith('fromsource_requests_total{area="simple",status="401"}'):
            return int(line.rsplit(" ", 1)[1])
    return 0


def test_pip_remediated_local_version_wins(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    result = run([*pip_for(python), "install", "--no-cache-dir", "--index-url",
                  shared_index.cred_url("python-all", reader), "demo-pkg==1.0"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(python, env)["demo-pkg"] == "1.0+fs.1"


def test_python_remediated_alone_cannot_resolve_dependencies(
    shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path
) -> None:
    # docs/remediation.md: use python-all (or two indexes); python-remediated holds only
    # the +fs.N files, so demo-pkg 1.0+fs.1's dependency dep-pkg is not found there.
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    result = run([*pip_for(python), "install", "--no-cache-dir", "--index-url",
                  shared_index.cred_url("python-remediated", reader), "demo-pkg==1.0"], env)
    assert result.returncode != 0
    assert "dep-pkg" in result.stdout + result.stderr
    assert "demo-pkg" not in _installed(python, env)


def test_uv_pip_install_url_and_netrc(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = clean_env(home)
    venv = tmp_path / "venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)], env).returncode == 0
    url_user = reader[0].replace("/", "%2F")
    host = shared_index.url.split("://", 1)[1]
    result = run([UV, "pip", "install", "--python", str(venv / "bin" / "python"), "--no-cache",
                  "--index-url", f"http://{url_user}:{reader[1]}@{host}python/simple/", "demo-pkg==1.0"], env)
    assert result.returncode == 0, result.stderr
    write_netrc(home, _host(shared_index), reader[0], reader[1])
    result = run([UV, "pip", "install", "--python", str(venv / "bin" / "python"), "--no-cache",
                  "--index-url", shared_index.simple("python"), "demo-pkg==1.1"], env)
    assert result.returncode == 0, result.stderr
    assert reader[1] not in result.stderr


def test_uv_project_two_indexes_authenticate_always(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["demo-pkg==1.0"]\n\n'
        '[tool.uv]\nindex-strategy = "unsafe-best-match"\npackage = false\n\n'
        f'[[tool.uv.index]]\nname = "remediated"\nurl = "{shared_index.simple("python-remediated")}"\nauthenticate = "always"\n\n'
        f'[[tool.uv.index]]\nname = "private"\nurl = "{shared_index.simple("python")}"\ndefault = true\nauthenticate = "always"\n'
    )
    env = clean_env(tmp_path / "home", {
        "UV_INDEX_PRIVATE_USERNAME": reader[0], "UV_INDEX_PRIVATE_PASSWORD": reader[1],
        "UV_INDEX_REMEDIATED_USERNAME": reader[0], "UV_INDEX_REMEDIATED_PASSWORD": reader[1],
    })
    del env["UV_NO_CONFIG"]
    lock = run([UV, "lock", "--python", sys.executable], env, cwd=project)
    assert lock.returncode == 0, lock.stderr
    text = (project / "uv.lock").read_text()
    assert 'version = "1.0+fs.1"' in text
    sync = run([UV, "sync", "--locked", "--python", sys.executable], env, cwd=project)
    assert sync.returncode == 0, sync.stderr
    assert reader[1] not in text


@pytest.mark.network
def test_poetry_primary_source_with_http_basic(shared_index: IndexServer, reader: tuple[str, str], tmp_path: Path) -> None:
    poetry = str(tool("poetry"))
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["demo-pkg==1.1"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "private"\nurl = "{shared_index.simple("python")}"\npriority = "primary"\n'
    )
    home = tmp_path / "home"
    env = clean_env(home, {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "POETRY_CACHE_DIR": str(home / "pcache")})
    assert run([poetry, "config", "http-basic.private", reader[0], reader[1]], env, cwd=project).returncode == 0
    lock = run([poetry, "lock", "--no-interaction"], env, cwd=project)
    assert lock.returncode == 0, lock.stdout + lock.stderr
    install = run([poetry, "install", "--no-interaction"], env, cwd=project)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (project / ".venv").is_dir()
    assert reader[1] not in lock.stdout + install.stdout
