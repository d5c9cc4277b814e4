"""``fromsource adopt`` end to end: a uv project adopted with real uv; a requirements file
with what the index cannot serve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fromsource.build.sandbox import tool_available
from tests.cli.lock_world import World
from tests.clients import UV, clean_env, run, tool_or_skip
from tests.lockfiles.conftest import UPSTREAM_MARK

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


def _adopt(world: World, capsys: pytest.CaptureFixture[str], lock: Path, *extra: str) -> int:
    capsys.readouterr()
    return world.fromsource(
        "adopt",
        str(lock),
        "--index",
        world.server.url,
        "--upstream",
        world.upstream.url,
        "--username",
        world.reader[0],
        "--password",
        world.reader[1],
        "--quiet",
        *extra,
    )


def test_adopt_a_uv_project(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    env = clean_env(home)
    del env["UV_NO_CONFIG"]  # the project's own [[tool.uv.index]] must be read
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["closure-top==1.0"]\n\n[tool.uv]\npackage = false\n\n'
        f'[[tool.uv.index]]\nname = "upstream"\nurl = "{world.upstream.url}"\ndefault = true\n'
    )
    assert run([UV, "lock", "--python", sys.executable], env, cwd=project).returncode == 0
    monkeypatch.setenv("HOME", str(home))  # setup writes ~/.netrc
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.chdir(tmp_path)

    assert _adopt(world, capsys, Path("proj/uv.lock"), "--format", "json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["schema_version"] == 1 and result["format"] == "uv.lock"
    assert result["coverage"]["summary"]["text"] == (
        "2 of 2 pinned packages built from source for every target (100 %)"
    )
    assert result["install"] == "cd proj && uv sync --locked"
    assert result["cannot_serve"] == []
    assert result["setup"]["client"] == "uv"
    assert any(f"'upstream' ({world.upstream.url})" in n for n in result["setup"]["notes"])
    assert {Path(c["path"]).name for c in result["setup"]["changes"]} == {
        "pyproject.toml",
        ".netrc",
    }
    (update,) = result["lock_update"]
    assert update["changed"] and {p["status"] for p in update["packages"]} >= {"updated"}
    assert world.reader[1] not in (project / "pyproject.toml").read_text()
    assert world.reader[1] not in (project / "uv.lock").read_text()
    assert world.reader[1] in (home / ".netrc").read_text()

    asked = len(world.upstream.requests)
    # The printed command, as a user would run it: uv on PATH, this Python for the venv.
    shell = {**env, "PATH": f"{Path(UV).parent}:{env['PATH']}", "UV_PYTHON": sys.executable}
    install = subprocess.run(
        result["install"],
        shell=True,
        cwd=tmp_path,
        env=shell,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    assert len(world.upstream.requests) == asked, "installed from the index only"
    site = next((project / ".venv").glob("lib/python3*/site-packages"))
    for module in ("closure_top", "closure_base"):
        assert UPSTREAM_MARK not in (site / module / "__init__.py").read_text()

    # Again, as text: nothing left to build or change.
    assert _adopt(world, capsys, Path("proj/uv.lock")) == 0
    text = capsys.readouterr().out
    assert "2 of 2 pinned packages built from source for every target (100 %)" in text
    assert "already-built" in text and "unchanged: " in text
    assert "== 4. install\n  cd proj && uv sync --locked\n" in text
    assert "The index serves every pinned package, built from source." in text


def test_adopt_lists_what_the_index_cannot_serve(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NETRC", raising=False)
    lock = tmp_path / "requirements.txt"
    lock.write_text(
        "closure-base==0.1\nbroken-pkg==1.0\n"
        "git+https://git.example.invalid/tool.git@v1#egg=some-tool\n"
    )

    assert _adopt(world, capsys, lock) == 1
    text = capsys.readouterr().out
    assert "1 of 3 pinned packages built from source for every target (33.3 %)" in text
    assert f"== 4. install\n  cd {tmp_path} && pip install -r requirements.txt\n" in text
    cannot = [
        line.strip() for line in text.split("cannot serve 2 pinned package(s):\n")[1].splitlines()
    ]
    assert cannot[0].startswith(f"broken-pkg==1.0 ({lock}:2) [build-failed]: ")
    assert cannot[1].startswith(
        f"some-tool ({lock}:3) [vcs]: git+https://git.example.invalid/tool.git@v1#egg=some-tool"
    )
    edited = lock.read_text()
    assert edited.startswith(f"--index-url {world.server.url}python-all/simple/\n")
    assert "closure-base==0.1 \\\n    --hash=sha256:" in edited
    assert world.reader[1] not in edited


def _tool(name: str) -> str:
    return tool_or_skip(name)


@pytest.mark.parametrize("client", ["poetry", "pdm"])
def test_adopt_poetry_and_pdm_projects(
    world: World,
    tmp_path: Path,
    client: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exe = _tool(client)
    home = tmp_path / "home"
    project = tmp_path / "proj"
    project.mkdir()
    table = (
        "[tool.poetry]\npackage-mode = false\n"
        if client == "poetry"
        else "[tool.pdm]\ndistribution = false\n"
    )
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["closure-top==1.0"]\n\n{table}'
    )
    venv = project / ".venv"
    base = clean_env(
        home,
        {
            "POETRY_VIRTUALENVS_IN_PROJECT": "true",
            "POETRY_CACHE_DIR": str(home / "pcache"),
            "PDM_CHECK_UPDATE": "false",
            "PDM_CACHE_DIR": str(home / "pdm-cache"),
            "PDM_PYTHON": str(venv / "bin" / "python"),
        },
    )
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)], base).returncode == 0
    if client == "poetry":
        (project / "pyproject.toml").write_text(
            (project / "pyproject.toml").read_text()
            + f'\n[[tool.poetry.source]]\nname = "upstream"\nurl = "{world.upstream.url}"\n'
            'priority = "primary"\n'
        )
        locked = run([exe, "lock", "--no-interaction"], base, cwd=project)
    else:
        locked = run([exe, "lock"], {**base, "PDM_PYPI_URL": world.upstream.url}, cwd=project)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    for key in ("HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(key, base[key])
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.chdir(project)

    lock = Path(f"{client}.lock")
    assert _adopt(world, capsys, lock, "--format", "json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["coverage"]["summary"]["percent"] == 100.0 and result["cannot_serve"] == []
    if client == "poetry":
        # The lock names its source "upstream": that source now points at the index
        # (poetry keeps locked versions only from a source of the same name).
        text = (project / "pyproject.toml").read_text()
        assert f'name = "upstream"\nurl = "{world.server.url}python-all/simple/"' in text
        assert world.upstream.url not in text and result["setup"]["notes"]
        assert not [n for n in result["setup"]["notes"] if "still names" in n]
        assert result["install"] == "poetry lock && poetry install"
    else:
        assert result["install"] == "pdm install --frozen-lockfile"
    asked = len(world.upstream.requests)
    shell = {**base, "PATH": f"{Path(exe).parent}:{base['PATH']}"}
    for purge in result["setup"]["purge"]:  # as adopt says: wheels fetched before must go
        assert (
            run(
                ["sh", "-c", purge + " --no-interaction" if purge.startswith("poetry") else purge],
                shell,
                cwd=project,
            ).returncode
            == 0
        )
    install = subprocess.run(
        result["install"],
        shell=True,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=shell,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert len(world.upstream.requests) == asked, "installed from the index only"
    site = next(venv.glob("lib/python3*/site-packages"))
    for module in ("closure_top", "closure_base"):
        assert UPSTREAM_MARK not in (site / module / "__init__.py").read_text()
