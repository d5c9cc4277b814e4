"""Each lock format end to end: the real tool locks against upstream-like wheels,
``update-hashes`` points the lock at a live fromsource index, and the real
installer, with hashes enforced, installs our builds without asking upstream.

Pipfile.lock is the exception: the file is hand-written (installing pipenv is
heavier than this suite wants) and its hashes are enforced by pip.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from fromsource.cli.main import main
from fromsource.lockfiles.read import read_lock
from tests.clients import UV, clean_env, run, tool, write_netrc
from tests.conftest import IndexServer
from tests.lockfiles.conftest import UPSTREAM_MARK, upstream_wheels
from tests.lockfiles.upstream import FolderIndex


def _update(lock: Path, index: str, token: tuple[str, str], *extra: str) -> int:
    return main(["lock", "update-hashes", str(lock), "--index", index,
                 "--username", token[0], "--password", token[1], *extra])


def _site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


def _assert_ours(venv: Path, version: str = "1.0") -> None:
    """demo-pkg and dep-pkg in *venv* are the index's builds, at *version* for demo-pkg."""
    site = _site_packages(venv)
    demo = (site / "demo_pkg" / "__init__.py").read_text()
    assert UPSTREAM_MARK not in demo and f'__version__ = "{version}"' in demo
    assert UPSTREAM_MARK not in (site / "dep_pkg" / "__init__.py").read_text()


def _assert_read(lock: Path, upstream: FolderIndex) -> None:
    """The lock the real tool wrote reads as demo-pkg 1.0 and dep-pkg 0.1 with upstream's hashes."""
    pins = [p for p in read_lock(lock).packages if p.source.kind == "index"]
    assert sorted((p.name, p.version) for p in pins) == [("demo-pkg", "1.0"), ("dep-pkg", "0.1")]
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in upstream.folder.glob("*.whl")}
    assert {h for p in pins for h in p.hashes} == digests
    assert all(p.line is not None for p in pins)


def _host(server: IndexServer) -> str:
    return server.url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]


def _uv_project(path: Path, index_url: str) -> Path:
    path.mkdir()
    (path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["demo-pkg==1.0"]\n\n[tool.uv]\npackage = false\n\n'
        f'[[tool.uv.index]]\nname = "upstream"\nurl = "{index_url}"\ndefault = true\n')
    return path


def _uv_env(home: Path) -> dict[str, str]:
    env = clean_env(home)
    del env["UV_NO_CONFIG"]  # the project's [[tool.uv.index]] must be read
    return env


def test_requirements_pip_require_hashes(shared_index: IndexServer, reader: tuple[str, str],
                                         upstream: FolderIndex, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    (tmp_path / "requirements.in").write_text("demo-pkg==1.0\n")
    compiled = run([UV, "pip", "compile", "--generate-hashes", "--index-url", upstream.simple,
                    "--python", sys.executable, "requirements.in", "-o", "requirements.txt"],
                   env, cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    lock = tmp_path / "requirements.txt"
    _assert_read(lock, upstream)
    before = lock.read_text()
    upstream_hashes = [line.strip(" \\") for line in before.splitlines() if "--hash" in line]

    assert _update(lock, shared_index.url, reader) == 0
    after = lock.read_text()
    assert all(h in after for h in upstream_hashes), "multi-hash format: upstream hashes kept"
    assert after.count("--hash=") == 2 * len(upstream_hashes)
    assert reader[1] not in after and reader[0] not in after

    venv = tmp_path / "venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)], env).returncode == 0
    asked = len(upstream.requests)
    install = run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                   "install", "--no-cache-dir", "--require-hashes", "--index-url",
                   shared_index.cred_url("python", reader), "-r", str(lock)], env)
    assert install.returncode == 0, install.stdout + install.stderr
    assert len(upstream.requests) == asked
    _assert_ours(venv)


def test_requirements_remediated_replace(shared_index: IndexServer, reader: tuple[str, str],
                                         upstream: FolderIndex, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    (tmp_path / "requirements.in").write_text("demo-pkg==1.0\n")
    assert run([UV, "pip", "compile", "--generate-hashes", "--index-url", upstream.simple,
                "--python", sys.executable, "requirements.in", "-o", "requirements.txt"],
               env, cwd=tmp_path).returncode == 0
    lock = tmp_path / "requirements.txt"
    assert _update(lock, shared_index.url, reader, "--remediated", "--replace") == 0
    text = lock.read_text()
    assert "demo-pkg==1.0+fs.1 \\\n" in text and "dep-pkg==0.1 \\\n" in text
    assert text.count("--hash=") == 2  # upstream hashes swapped out

    venv = tmp_path / "venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)], env).returncode == 0
    install = run([UV, "pip", "install", "--no-cache", "--require-hashes", "--python",
                   str(venv / "bin" / "python"), "--index-url",
                   shared_index.cred_url("python-all", reader), "-r", str(lock)], env)
    assert install.returncode == 0, install.stderr
    _assert_ours(venv, "1.0+fs.1")


def test_uv_lock_sync_frozen_remediated(shared_index: IndexServer, reader: tuple[str, str],
                                        upstream: FolderIndex, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _uv_env(home)
    project = _uv_project(tmp_path / "proj", upstream.simple)
    locked = run([UV, "lock", "--python", sys.executable], env, cwd=project)
    assert locked.returncode == 0, locked.stderr
    lock = project / "uv.lock"
    _assert_read(lock, upstream)
    app = next(p for p in read_lock(lock).packages if p.name == "app")
    assert (app.source.kind, app.source.form) == ("path", "virtual")
    before = lock.read_text()

    assert _update(lock, shared_index.url, reader, "--remediated") == 0
    after = lock.read_text()
    assert upstream.url not in after, "every URL now points at the index"
    assert 'version = "1.0+fs.1"' in after
    assert f'source = {{ registry = "{shared_index.simple("python-all")}" }}' in after
    assert reader[1] not in after
    unchanged = [line for line in before.splitlines() if upstream.url not in line
                 and line != 'version = "1.0"']
    assert all(line in after.splitlines() for line in unchanged)

    write_netrc(home, _host(shared_index), reader[0], reader[1])
    asked = len(upstream.requests)
    synced = run([UV, "sync", "--frozen", "--python", sys.executable], env, cwd=project)
    assert synced.returncode == 0, synced.stderr
    assert len(upstream.requests) == asked
    _assert_ours(project / ".venv", "1.0+fs.1")
    # Once pyproject.toml names the index too, uv considers the lock current.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(upstream.simple,
                                                       shared_index.simple("python-all")))
    checked = run([UV, "lock", "--check", "--python", sys.executable], env, cwd=project)
    assert checked.returncode == 0, checked.stderr


def test_pylock_uv_pip_install(shared_index: IndexServer, reader: tuple[str, str],
                               upstream: FolderIndex, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _uv_env(home)
    project = _uv_project(tmp_path / "proj", upstream.simple)
    exported = run([UV, "export", "--format", "pylock.toml", "-o", "pylock.toml",
                    "--python", sys.executable], env, cwd=project)
    assert exported.returncode == 0, exported.stderr
    lock = project / "pylock.toml"
    _assert_read(lock, upstream)
    assert all(f.url and f.url.startswith(upstream.url) for p in read_lock(lock).packages
               for f in p.files)

    assert _update(lock, shared_index.simple("python"), reader) == 0
    text = lock.read_text()
    assert upstream.url not in text and f'index = "{shared_index.simple("python")}"' in text

    write_netrc(home, _host(shared_index), reader[0], reader[1])
    venv = tmp_path / "venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)], env).returncode == 0
    asked = len(upstream.requests)
    install = run([UV, "pip", "install", "--no-cache", "--python", str(venv / "bin" / "python"),
                   "-r", str(lock)], env, cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    assert len(upstream.requests) == asked
    _assert_ours(venv)


@pytest.mark.network
def test_poetry_lock_install(shared_index: IndexServer, reader: tuple[str, str],
                             tmp_path: Path) -> None:
    # Poetry downloads through the source named in pyproject.toml, and changing that
    # source's URL makes the lock stale; so the source is a stable URL whose backend
    # moves from upstream to the index, as with a repository manager.
    poetry = str(tool("poetry"))
    stable = FolderIndex(upstream_wheels(tmp_path / "upstream"))
    try:
        project = tmp_path / "proj"
        project.mkdir()
        (project / "pyproject.toml").write_text(
            '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
            'dependencies = ["demo-pkg==1.0"]\n\n[tool.poetry]\npackage-mode = false\n\n'
            f'[[tool.poetry.source]]\nname = "private"\nurl = "{stable.simple}"\n'
            'priority = "primary"\n')
        home = tmp_path / "home"
        env = clean_env(home, {"POETRY_VIRTUALENVS_IN_PROJECT": "true",
                               "POETRY_CACHE_DIR": str(home / "pcache")})
        assert run([poetry, "config", "http-basic.private", reader[0], reader[1]], env,
                   cwd=project).returncode == 0
        locked = run([poetry, "lock", "--no-interaction"], env, cwd=project)
        assert locked.returncode == 0, locked.stdout + locked.stderr
        lock = project / "poetry.lock"

        assert _update(lock, shared_index.url, reader) == 0
        assert reader[1] not in lock.read_text()

        stable.forward_to(shared_index.url + "python/")
        install = run([poetry, "install", "--no-interaction"], env, cwd=project)
        assert install.returncode == 0, install.stdout + install.stderr
        _assert_ours(project / ".venv")
    finally:
        stable.close()


@pytest.mark.network
def test_pdm_lock_install_frozen(shared_index: IndexServer, reader: tuple[str, str],
                                 upstream: FolderIndex, tmp_path: Path) -> None:
    pdm = str(tool("pdm"))
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["demo-pkg==1.0"]\n\n[tool.pdm]\ndistribution = false\n')
    home = tmp_path / "home"
    # PDM installs into the interpreter it is given: give it the project's own venv.
    venv = project / ".venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)],
               clean_env(home)).returncode == 0
    base = {"PDM_CHECK_UPDATE": "false", "PDM_CACHE_DIR": str(home / "pdm-cache"),
            "PDM_PYTHON": str(venv / "bin" / "python")}
    locked = run([pdm, "lock"], clean_env(home, {**base, "PDM_PYPI_URL": upstream.simple}),
                 cwd=project)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    lock = project / "pdm.lock"

    assert _update(lock, shared_index.url, reader) == 0
    assert reader[1] not in lock.read_text()

    asked = len(upstream.requests)
    env = clean_env(home, {**base, "PDM_PYPI_URL": shared_index.simple("python"),
                           "PDM_PYPI_USERNAME": reader[0], "PDM_PYPI_PASSWORD": reader[1]})
    install = run([pdm, "install", "--frozen-lockfile"], env, cwd=project)
    assert install.returncode == 0, install.stdout + install.stderr
    assert len(upstream.requests) == asked
    _assert_ours(venv)


def test_pipfile_lock_hashes_enforced_by_pip(shared_index: IndexServer, reader: tuple[str, str],
                                             upstream: FolderIndex, tmp_path: Path) -> None:
    digests = {p.name.split("-")[0]: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in upstream.folder.glob("*.whl")}
    doc = {
        "_meta": {"hash": {"sha256": "0" * 64}, "pipfile-spec": 6,
                  "requires": {"python_version": "3.11"},
                  "sources": [{"name": "upstream", "url": upstream.simple, "verify_ssl": False}]},
        "default": {
            "demo-pkg": {"hashes": [f"sha256:{digests['demo_pkg']}"], "index": "upstream",
                         "version": "==1.0"},
            "dep-pkg": {"hashes": [f"sha256:{digests['dep_pkg']}"], "index": "upstream",
                        "version": "==0.1"},
        },
        "develop": {},
    }
    lock = tmp_path / "Pipfile.lock"
    lock.write_text(json.dumps(doc, indent=4, sort_keys=True) + "\n")

    assert _update(lock, shared_index.url, reader) == 0
    updated = json.loads(lock.read_text())
    assert lock.read_text() == json.dumps(updated, indent=4, sort_keys=True) + "\n"
    assert len(updated["default"]["demo-pkg"]["hashes"]) == 2

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join(
        f"{name}{entry['version']} " + " ".join(f"--hash={h}" for h in entry["hashes"]) + "\n"
        for name, entry in updated["default"].items()))
    env = clean_env(tmp_path / "home")
    venv = tmp_path / "venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)], env).returncode == 0
    install = run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                   "install", "--no-cache-dir", "--require-hashes", "--index-url",
                   shared_index.cred_url("python", reader), "-r", str(requirements)], env)
    assert install.returncode == 0, install.stdout + install.stderr
    _assert_ours(venv)
