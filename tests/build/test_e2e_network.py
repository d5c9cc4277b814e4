"""End to end with the real upstream: build flask 2.0.0 with its dependencies, install, verify.

``fromsource build flask==2.0.0 --with-deps`` (in-process, the upstream index
from the settings) builds flask and the newest releases its requirements
allow; the real index then serves them, real pip installs flask from it into
a fresh venv with nothing else configured, and ``fromsource verify`` checks
that every installed distribution is one of the index's signed builds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fromsource.build.sandbox import tool_available
from fromsource.cli.main import main
from fromsource.dist.names import normalize
from tests.clients import clean_env, run
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
