"""End to end: flask 2.0.0 and the dependencies of its era built from source into
``python``, flask remediated into ``python-remediated``; then real pip and uv
resolve ``flask==2.0.0`` to ``2.0.0+fs.1`` (PEP 440 local versions) while its
dependencies, which are not remediated, come from ``python``; the installed
flask behaves fixed (``Vary: Cookie``), and ``fromsource verify`` reports it
as remediated with the advisory it fixes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fromsource.cli.main import main
from tests.clients import UV, bare_venv, clean_env, pip_for, run
from tests.conftest import IndexServer, start_server, stop_server
from tests.remediate.probes import CASES, FLASK_PROBE

pytestmark = pytest.mark.network

ERA = CASES["flask"].deps  # Werkzeug 2.0.3, Jinja2 3.0.3, itsdangerous 2.0.1, MarkupSafe 2.0.1, click


@pytest.fixture(scope="module")
def remediated_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    base = tmp_path_factory.mktemp("e2e-remediated")
    data = base / "data"
    assert main(["--data-dir", str(data), "build", "flask==2.0.0", *ERA, "--jobs", "2", "-q"]) == 0
    assert main(["--data-dir", str(data), "remediate", "flask==2.0.0"]) == 0
    server = start_server(data)
    try:
        yield server
    finally:
        stop_server(server)


def _freeze(python: Path, env: dict[str, str]) -> dict[str, str]:
    out = run([*pip_for(python), "list", "--format", "freeze"], env).stdout
    return {k.lower(): v for k, v in (line.split("==", 1) for line in out.splitlines() if "==" in line)}


def test_pip_from_python_all_installs_remediated_and_verify_says_so(
    remediated_index: IndexServer, tmp_path: Path
) -> None:
    token = remediated_index.token("python", "python-remediated")
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    result = run([*pip_for(python), "install", "--no-cache-dir", "--index-url",
                  remediated_index.cred_url("python-all", token), "flask==2.0.0", *ERA], env)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = _freeze(python, env)
    assert installed["flask"] == "2.0.0+fs.1"
    assert installed["werkzeug"] == "2.0.3"

    probe = subprocess.run([str(python), "-c", FLASK_PROBE], capture_output=True, text=True, check=True)
    assert json.loads(probe.stdout) == {"set_cookie": True, "vary": "Cookie"}

    verify_env = {"FROMSOURCE_USERNAME": token[0], "FROMSOURCE_PASSWORD": token[1]}
    out = subprocess.run(  # noqa: PLW1510 - the exit code is asserted below
        [sys.executable, "-m", "fromsource.cli.main", "verify", str(tmp_path / "venv"),
         "--index", remediated_index.url, "--format", "json", "--fail-under", "100"],
        capture_output=True, text=True, env={**clean_env(tmp_path / "home2"), **verify_env},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["coverage_percentage"] == 100.0
    [flask] = [r for r in report["results"] if r["name"].lower() == "flask"]
    assert flask["status"] == "verified-remediated"
    assert "CVE-2023-30861" in flask["provenance"]["fixes"] or "PYSEC-2023-62" in flask["provenance"]["fixes"]


def test_pip_from_python_remediated_alone_takes_local_version(
    remediated_index: IndexServer, tmp_path: Path
) -> None:
    token = remediated_index.token("python", "python-remediated")
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    result = run([*pip_for(python), "install", "--no-cache-dir", "--no-deps", "--index-url",
                  remediated_index.cred_url("python-remediated", token), "flask==2.0.0"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _freeze(python, env)["flask"] == "2.0.0+fs.1"


def test_uv_two_indexes_unsafe_best_match(remediated_index: IndexServer, tmp_path: Path) -> None:
    token = remediated_index.token("python", "python-remediated")
    project = tmp_path / "app"
    project.mkdir()
    deps = ", ".join(f'"{d}"' for d in ("flask==2.0.0", *ERA))
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\ndependencies = [{deps}]\n\n'
        '[tool.uv]\nindex-strategy = "unsafe-best-match"\npackage = false\n'
        # Only Linux was built here (click needs colorama on Windows, which we did not build).
        'environments = ["sys_platform == \'linux\'"]\n\n'
        f'[[tool.uv.index]]\nname = "remediated"\nurl = "{remediated_index.simple("python-remediated")}"\n'
        'authenticate = "always"\n\n'
        f'[[tool.uv.index]]\nname = "fromsource"\nurl = "{remediated_index.simple("python")}"\n'
        'default = true\nauthenticate = "always"\n'
    )
    env = clean_env(tmp_path / "home", {
        "UV_INDEX_FROMSOURCE_USERNAME": token[0], "UV_INDEX_FROMSOURCE_PASSWORD": token[1],
        "UV_INDEX_REMEDIATED_USERNAME": token[0], "UV_INDEX_REMEDIATED_PASSWORD": token[1],
    })
    del env["UV_NO_CONFIG"]
    lock = run([UV, "lock", "--python", sys.executable], env, cwd=project)
    assert lock.returncode == 0, lock.stderr
    text = (project / "uv.lock").read_text()
    assert 'name = "flask"\nversion = "2.0.0+fs.1"' in text
    sync = run([UV, "sync", "--locked", "--python", sys.executable], env, cwd=project)
    assert sync.returncode == 0, sync.stderr
    probe = subprocess.run([str(project / ".venv" / "bin" / "python"), "-c", FLASK_PROBE],
                           capture_output=True, text=True, check=True)
    assert json.loads(probe.stdout)["vary"] == "Cookie"
