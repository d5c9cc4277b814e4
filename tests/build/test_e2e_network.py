"""End to end with the real upstream: what a team does, and what it gets.

- ``fromsource build flask==2.0.0 --with-deps`` (in-process, the upstream
  index from the settings) builds flask and the newest releases its
  requirements allow; the real index then serves them, real pip installs
  flask from it into a fresh venv with nothing else configured, and
  ``fromsource verify`` checks that every installed distribution is one of
  the index's signed builds.
- The measure of success: a real application's lock file (uv, for
  ``requires-python >=3.10`` on linux) is built with ``build --lock`` for
  every target found, pointed at the index with ``lock update-hashes``, and
  ``uv sync --frozen`` installs it from the index alone on every CPython of
  3.10 to 3.13 this host has, with ``verify`` at 100 % on each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fromsource.build.interpreters import discover_targets
from fromsource.build.sandbox import tool_available
from fromsource.cli.main import main
from fromsource.config import Settings, upstream_url
from fromsource.dist.names import normalize
from tests.clients import UV, clean_env, run, write_netrc
from tests.conftest import start_server, stop_server

pytestmark = [
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here"),
]

FLASK_DEPENDENCIES = {"werkzeug", "jinja2", "itsdangerous", "click", "markupsafe"}


def test_flask_built_with_its_dependencies_installs_from_the_index_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    code = main(
        ["--data-dir", str(data), "build", "flask==2.0.0", "--with-deps", "--jobs", "2"]
        + ["--format", "json", "--quiet"]
    )
    builds = json.loads(capsys.readouterr().out)["builds"]
    status = {b["project"]: (b["status"], b["category"], b["message"][:300]) for b in builds}
    assert code == 0, status
    assert status["flask"][0] == "succeeded" and status["flask"][1] is None
    assert FLASK_DEPENDENCIES <= set(status), status
    assert all(b["status"] == "succeeded" for b in builds), status

    server = start_server(data)
    try:
        token = server.token("python")
        env = clean_env(tmp_path / "home")
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        install = run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir"]
            + ["--index-url", server.cred_url("python", token), "flask==2.0.0"],
            env,
        )
        assert install.returncode == 0, install.stdout + install.stderr
        assert token[1] not in install.stdout + install.stderr

        verify = run(
            [sys.executable, "-m", "fromsource.cli.main", "verify", str(venv)]
            + ["--index", server.url, "--username", token[0], "--password", token[1]]
            + ["--format", "json", "--fail-under", "100"],
            env,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        report = json.loads(verify.stdout)
        installed = {normalize(r["name"]) for r in report["results"]}
        assert {"flask", *FLASK_DEPENDENCIES} <= installed, installed
        assert report["coverage_percentage"] == 100.0
        assert report["verified"] == report["total"] == len(installed)
        assert all(r["status"] == "verified" for r in report["results"]), report["results"]
        assert all(r["provenance"]["repository"] == "python" for r in report["results"])
    finally:
        stop_server(server)


APPLICATION = ("flask==3.1.3", "httpx==0.28.1", "python-dateutil==2.9.0.post0", "certifi==2026.7.22")
"""A small web application's direct dependencies (releases of the public corpus): pure
packages, a C extension (markupsafe, under jinja2) and conditional dependencies.  certifi
is pinned because some of its newest releases are published as wheels only (no sdist:
``no-sdist``, which the coverage report names)."""


def test_an_applications_uv_lock_installs_on_every_python_from_the_index_with_verify_at_100(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = discover_targets(["3.10", "3.11", "3.12", "3.13"])
    pythons = {t.name: t.interpreter for t in found.targets}
    if len(pythons) < 3:
        pytest.skip(f"needs at least three of CPython 3.10-3.13; found {sorted(pythons)}")
    home = tmp_path / "home"
    env = clean_env(home)
    del env["UV_NO_CONFIG"]  # the project's [[tool.uv.index]] must be read
    project = tmp_path / "app"
    project.mkdir()
    dependencies = ", ".join(f'"{d}"' for d in APPLICATION)
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        f"dependencies = [{dependencies}]\n\n"
        '[tool.uv]\npackage = false\nenvironments = ["sys_platform == \'linux\'"]\n\n'
        f'[[tool.uv.index]]\nname = "upstream"\nurl = "{upstream_url(Settings())}"\n'
        "default = true\n"
    )
    locked = run([UV, "lock", "--python", pythons["3.11"]], env, cwd=project)
    assert locked.returncode == 0, locked.stderr
    lock = project / "uv.lock"

    data = tmp_path / "data"
    code = main(
        ["--data-dir", str(data), "build", "--lock", str(lock), "--jobs", "2"]
        + ["--format", "json", "--quiet"]
    )
    report = json.loads(capsys.readouterr().out)
    failed = [p for p in report["packages"] if p["status"] not in ("built", "already-built")]
    assert code == 0, [(p["name"], p["status"], p.get("category"), p.get("reason")) for p in failed]
    assert report["summary"]["percent"] == 100.0, failed
    pinned = {p["name"] for p in report["packages"] if p["counted"]}
    assert {"flask", "httpx", "markupsafe", "jinja2", "anyio", "six"} <= pinned, pinned

    server = start_server(data)
    try:
        reader = server.token("python")
        host = server.url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
        assert main(
            ["lock", "update-hashes", str(lock), "--index", server.url]
            + ["--username", reader[0], "--password", reader[1]]
        ) == 0
        text = lock.read_text()
        assert server.url in text and reader[1] not in text
        write_netrc(home, host, *reader)
        for name, interpreter in sorted(pythons.items()):
            venv = tmp_path / f"venv-{name}"
            synced = run(
                [UV, "sync", "--frozen", "--python", interpreter],
                {**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
                cwd=project,
            )
            assert synced.returncode == 0, (name, synced.stderr)
            probe = run(
                [str(venv / "bin" / "python"), "-c", "import flask, httpx, markupsafe, dateutil"],
                env,
            )
            assert probe.returncode == 0, (name, probe.stderr)
            capsys.readouterr()
            code = main(
                ["verify", str(venv), "--index", server.url, "--username", reader[0]]
                + ["--password", reader[1], "--format", "json", "--fail-under", "100"]
            )
            verified = json.loads(capsys.readouterr().out)
            assert code == 0, (name, verified["results"])
            assert verified["coverage_percentage"] == 100.0, name
            assert {normalize(r["name"]) for r in verified["results"]} >= {"flask", "markupsafe"}
            wheels = [r for r in verified["results"] if normalize(r["name"]) == "markupsafe"]
            assert wheels and all(r["status"] == "verified" for r in wheels), name
    finally:
        stop_server(server)
