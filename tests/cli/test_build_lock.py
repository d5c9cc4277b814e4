"""``fromsource build --lock`` / ``-r`` end to end, per lock format, with the real tools.

For each format the real tool (uv, poetry, pdm; pip for requirements) locks a
small project against an upstream-like index (sdists, and wheels built
differently from ours), ``build --lock`` builds exactly the pinned releases
from their sdists, ``lock update-hashes`` points the lock at the index, and
the real installer installs with hashes enforced from the index alone; the
coverage report says 100 %.  Pipfile.lock is written by hand (pipenv is not
installed here) and its hashes are enforced by pip, as in
tests/lockfiles/test_real_tools.py.  poetry and pdm are installed into the
test tools folder on first use (tests/clients.py); where they cannot be
(offline), their tests are skipped, saying why.

One index server and one upstream per module; builds happen once, later
tests find them ``already-built``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from fromsource.build.sandbox import tool_available
from tests.cli.lock_world import World
from tests.clients import UV, clean_env, run, tool_or_skip, write_netrc
from tests.factories import make_wheel
from tests.lockfiles.conftest import UPSTREAM_MARK
from tests.lockfiles.upstream import FolderIndex
from tests.packages import make_sdist

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


def _assert_full(report: dict[str, object], names: set[str]) -> None:
    """Every pinned package in *names* is served built from source: 100 %."""
    packages = {p["name"]: p for p in report["packages"]}  # type: ignore[attr-defined]
    served = {n for n, p in packages.items() if p["status"] in ("built", "already-built")}
    assert served == names, packages
    summary = report["summary"]
    assert summary["percent"] == 100.0, summary  # type: ignore[index]
    assert summary["text"] == (  # type: ignore[index]
        f"{len(names)} of {len(names)} pinned packages built from source for every target (100 %)"
    )


def _assert_ours(venv: Path) -> None:
    site = next(venv.glob("lib/python3*/site-packages"))
    for module in ("closure_top", "closure_base"):
        text = (site / module / "__init__.py").read_text()
        assert UPSTREAM_MARK not in text and "__version__" in text, module


def _venv(path: Path, env: dict[str, str]) -> Path:
    assert run([UV, "venv", "-q", "--python", sys.executable, str(path)], env).returncode == 0
    return path / "bin" / "python"


def _project(path: Path, tool_table: str = "") -> Path:
    path.mkdir()
    (path / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["closure-top==1.0"]\n\n{tool_table}'
    )
    return path


def _tool(name: str) -> str:
    return tool_or_skip(name)


# What a format's flow hands back after writing its lock: the lock file, and the install
# (run after ``lock update-hashes``) that returns the virtual environment it installed into.
Install = Callable[[], Path]
Locked = tuple[Path, Install]


def _uv_lock(world: World, tmp_path: Path, stack: ExitStack) -> Locked:
    home = tmp_path / "home"
    env = clean_env(home)
    del env["UV_NO_CONFIG"]  # the project's [[tool.uv.index]] must be read
    project = _project(
        tmp_path / "proj",
        "[tool.uv]\npackage = false\n\n[[tool.uv.index]]\n"
        f'name = "upstream"\nurl = "{world.upstream.url}"\ndefault = true\n',
    )
    locked = run([UV, "lock", "--python", sys.executable], env, cwd=project)
    assert locked.returncode == 0, locked.stderr

    def install() -> Path:
        write_netrc(home, world.host, *world.reader)
        synced = run([UV, "sync", "--frozen", "--python", sys.executable], env, cwd=project)
        assert synced.returncode == 0, synced.stderr
        return project / ".venv"

    return project / "uv.lock", install


def _requirements(world: World, tmp_path: Path, stack: ExitStack) -> Locked:
    env = clean_env(tmp_path / "home")
    (tmp_path / "requirements.in").write_text("closure-top==1.0\n")
    compiled = run(
        [
            UV,
            "pip",
            "compile",
            "--generate-hashes",
            "--index-url",
            world.upstream.url,
            "--python",
            sys.executable,
            "requirements.in",
            "-o",
            "requirements.txt",
        ],
        env,
        cwd=tmp_path,
    )
    assert compiled.returncode == 0, compiled.stderr
    lock = tmp_path / "requirements.txt"

    def install() -> Path:
        return _pip_install(world, tmp_path / "venv", env, "--require-hashes", "-r", str(lock))

    return lock, install


def _pylock(world: World, tmp_path: Path, stack: ExitStack) -> Locked:
    home = tmp_path / "home"
    env = clean_env(home)
    del env["UV_NO_CONFIG"]
    project = _project(
        tmp_path / "proj",
        "[tool.uv]\npackage = false\n\n[[tool.uv.index]]\n"
        f'name = "upstream"\nurl = "{world.upstream.url}"\ndefault = true\n',
    )
    exported = run(
        [UV, "export", "--format", "pylock.toml", "-o", "pylock.toml", "--python", sys.executable],
        env,
        cwd=project,
    )
    assert exported.returncode == 0, exported.stderr
    lock = project / "pylock.toml"

    def install() -> Path:
        # pylock.toml holds the files' URLs: pip takes them from the lock, no index option.
        assert world.upstream_root not in lock.read_text()
        write_netrc(home, world.host, *world.reader)
        return _pip_install(world, tmp_path / "venv", env, "-r", str(lock), index=False)

    return lock, install


def _poetry_lock(world: World, tmp_path: Path, stack: ExitStack) -> Locked:
    poetry = _tool("poetry")
    # Poetry downloads through the source pyproject.toml names, and a new URL there makes
    # the lock stale: the source is a stable URL whose backend moves from upstream to the
    # index, as with a repository manager (as in tests/lockfiles/test_real_tools.py).
    stable = FolderIndex(tmp_path / "empty")
    stack.callback(stable.close)
    (tmp_path / "empty").mkdir()
    stable.forward_to(world.upstream_root)
    project = _project(
        tmp_path / "proj",
        "[tool.poetry]\npackage-mode = false\n\n"
        f'[[tool.poetry.source]]\nname = "private"\nurl = "{stable.simple}"\n'
        'priority = "primary"\n',
    )
    home = tmp_path / "home"
    env = clean_env(
        home,
        {"POETRY_VIRTUALENVS_IN_PROJECT": "true", "POETRY_CACHE_DIR": str(home / "pcache")},
    )
    configured = run([poetry, "config", "http-basic.private", *world.reader], env, cwd=project)
    assert configured.returncode == 0
    locked = run([poetry, "lock", "--no-interaction"], env, cwd=project)
    assert locked.returncode == 0, locked.stdout + locked.stderr

    def install() -> Path:
        stable.forward_to(world.server.url + "python/")
        installed = run([poetry, "install", "--no-interaction"], env, cwd=project)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        return project / ".venv"

    return project / "poetry.lock", install


def _pdm_lock(world: World, tmp_path: Path, stack: ExitStack) -> Locked:
    pdm = _tool("pdm")
    project = _project(tmp_path / "proj", "[tool.pdm]\ndistribution = false\n")
    home = tmp_path / "home"
    venv = project / ".venv"
    _venv(venv, clean_env(home))
    base = {
        "PDM_CHECK_UPDATE": "false",
        "PDM_CACHE_DIR": str(home / "pdm-cache"),
        "PDM_PYTHON": str(venv / "bin" / "python"),
    }
    locked = run(
        [pdm, "lock"], clean_env(home, {**base, "PDM_PYPI_URL": world.upstream.url}), cwd=project
    )
    assert locked.returncode == 0, locked.stdout + locked.stderr

    def install() -> Path:
        env = clean_env(
            home,
            {
                **base,
                "PDM_PYPI_URL": world.server.simple("python"),
                "PDM_PYPI_USERNAME": world.reader[0],
                "PDM_PYPI_PASSWORD": world.reader[1],
            },
        )
        installed = run([pdm, "install", "--frozen-lockfile"], env, cwd=project)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        return venv

    return project / "pdm.lock", install


def _pipfile_lock(world: World, tmp_path: Path, stack: ExitStack) -> Locked:
    """Written by hand (pipenv is not installed here); pip enforces its hashes."""
    digests = {
        p.name.split("-")[0]: hashlib.sha256(p.read_bytes()).hexdigest()
        for paths in world.upstream.files.values()
        for p in paths
        if p.name.startswith("closure_") and p.name.endswith(".whl")
    }
    doc = {
        "_meta": {
            "hash": {"sha256": "0" * 64},
            "pipfile-spec": 6,
            "requires": {"python_version": "3.11"},
            "sources": [{"name": "upstream", "url": world.upstream.url, "verify_ssl": False}],
        },
        "default": {
            "closure-top": {
                "hashes": [f"sha256:{digests['closure_top']}"],
                "index": "upstream",
                "version": "==1.0",
            },
            "closure-base": {
                "hashes": [f"sha256:{digests['closure_base']}"],
                "index": "upstream",
                "version": "==0.1",
            },
        },
        "develop": {},
    }
    lock = tmp_path / "Pipfile.lock"
    lock.write_text(json.dumps(doc, indent=4, sort_keys=True) + "\n")

    def install() -> Path:
        updated = json.loads(lock.read_text())
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(
            "".join(
                f"{name}{entry['version']} "
                + " ".join(f"--hash={h}" for h in entry["hashes"])
                + "\n"
                for name, entry in updated["default"].items()
            )
        )
        env = clean_env(tmp_path / "home")
        return _pip_install(
            world, tmp_path / "venv", env, "--require-hashes", "-r", str(requirements)
        )

    return lock, install


def _pip_install(
    world: World, venv: Path, env: dict[str, str], *args: str, index: bool = True
) -> Path:
    """pip installs *args* into a new *venv*, from the index (the reader's credentials in
    the URL) unless *index* is False; returns *venv*."""
    python = _venv(venv, env)
    index_url = ["--index-url", world.server.cred_url("python", world.reader)] if index else []
    install = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-cache-dir",
            *args,
            *index_url,
        ],
        env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return venv


@dataclass(frozen=True)
class _Format:
    """One lock format's flow: its report name, the build option, how its lock is written."""

    name: str
    option: str
    lock: Callable[[World, Path, ExitStack], Locked]
    lists_project: bool = False
    """Whether the lock lists the project itself (uv.lock): reported skipped, not counted."""


_FORMATS = [
    _Format("uv.lock", "--lock", _uv_lock, lists_project=True),
    _Format("requirements", "-r", _requirements),
    _Format("pylock.toml", "--lock", _pylock),
    _Format("poetry.lock", "--lock", _poetry_lock),
    _Format("pdm.lock", "--lock", _pdm_lock),
    _Format("Pipfile.lock", "--lock", _pipfile_lock),
]


@pytest.mark.parametrize("fmt", _FORMATS, ids=[f.name for f in _FORMATS])
def test_lock_is_built_pointed_at_the_index_and_installed_with_hashes(
    fmt: _Format, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real tool writes the lock; ``build`` makes every pin from source (100 %);
    ``lock update-hashes`` points it at the index; the real installer installs our
    wheels from the index alone."""
    with ExitStack() as stack:
        lock, install = fmt.lock(world, tmp_path, stack)

        code, report = world.build(capsys, fmt.option, str(lock))
        assert code == 0, report
        _assert_full(report, {"closure-top", "closure-base"})
        assert report["format"] == fmt.name
        if fmt.lists_project:
            packages = report["packages"]
            app = next(p for p in packages if p["name"] == "app")  # type: ignore[attr-defined]
            assert (app["status"], app["category"], app["counted"]) == ("skipped", "project", False)

        assert world.update(lock) == 0
        asked = len(world.upstream.requests)
        venv = install()
        assert len(world.upstream.requests) == asked, "installed from the index only"
        _assert_ours(venv)


def test_a_windows_only_dependency_without_an_sdist_is_skipped_by_its_edge_marker(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """uv lists a dependency reached only on Windows with no marker of its own (the marker
    is on the edge): ``build --lock`` reports it skipped by marker, not failed for want of
    an sdist (its upstream has only a wheel), and the lock is covered 100 %."""
    folder = tmp_path / "upstream"
    needs = ["win-only-dep==1.0 ; sys_platform == 'win32'"]
    world.upstream.add(
        make_sdist(folder, "plat-top", "1.0", "flit-core", dependencies=needs),
        make_wheel(folder, "plat-top", "1.0", requires_dist=needs),
        make_wheel(folder, "win-only-dep", "1.0"),
    )
    home = tmp_path / "home"
    env = clean_env(home)
    del env["UV_NO_CONFIG"]
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["plat-top==1.0"]\n\n[tool.uv]\npackage = false\n\n'
        f'[[tool.uv.index]]\nname = "upstream"\nurl = "{world.upstream.url}"\ndefault = true\n'
    )
    locked = run([UV, "lock", "--python", sys.executable], env, cwd=project)
    assert locked.returncode == 0, locked.stderr
    lock = (project / "uv.lock").read_text()
    assert '[[package]]\nname = "win-only-dep"\nversion = "1.0"\nsource' in lock, lock

    code, report = world.build(capsys, "--lock", str(project / "uv.lock"))
    assert code == 0, report
    packages = {p["name"]: p for p in report["packages"]}  # type: ignore[attr-defined]
    assert packages["plat-top"]["status"] in ("built", "already-built")
    win = packages["win-only-dep"]
    assert (win["status"], win["category"], win["counted"]) == ("skipped", "marker", False)
    assert "win32" in win["reason"]
    assert report["summary"]["text"] == (  # type: ignore[index]
        "1 of 1 pinned packages built from source for every target (100 %)"
    )


def test_requirements_includes_markers_and_sources(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "base.txt").write_text(
        "closure-base==0.1\nclosure-extra==2.0 ; sys_platform == 'no-such-platform'\n"
    )
    (tmp_path / "constraints.txt").write_text("closure-top<2\n")
    (tmp_path / "requirements.txt").write_text(
        "-r base.txt\n-c constraints.txt\n"
        "closure-top==1.0 ; python_version >= '3'\n"
        "closure-base==0.1\n"
        "git+https://git.example.invalid/tool.git@v1#egg=some-tool\n"
    )

    code, report = world.build(capsys, "-r", str(tmp_path / "requirements.txt"))
    assert code == 0, report
    packages = {p["name"]: p for p in report["packages"]}  # type: ignore[attr-defined]
    assert list(packages) == ["closure-base", "closure-extra", "closure-top", "some-tool"]
    assert packages["closure-base"]["location"].endswith("base.txt:1")
    extra = packages["closure-extra"]
    assert (extra["status"], extra["category"], extra["counted"]) == ("skipped", "marker", False)
    assert "no-such-platform" in extra["reason"] and "excludes every target" in extra["reason"]
    assert packages["closure-top"]["status"] in ("built", "already-built")
    vcs = packages["some-tool"]
    assert (vcs["status"], vcs["category"]) == ("skipped", "vcs")
    assert report["files"] == [
        str(tmp_path / "requirements.txt"),
        str(tmp_path / "base.txt"),
        str(tmp_path / "constraints.txt"),
    ]
    assert report["summary"]["text"] == (  # type: ignore[index]
        "2 of 3 pinned packages built from source for every target (66.6 %)"
    )


def test_a_package_that_cannot_be_built_is_named_and_exits_1(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("closure-base==0.1\nbroken-pkg==1.0\n")
    code, report = world.build(capsys, "-r", str(lock))
    assert code == 1
    packages = {p["name"]: p for p in report["packages"]}  # type: ignore[attr-defined]
    broken = packages["broken-pkg"]
    assert (broken["status"], broken["category"]) == ("failed", "build-failed")
    assert "broken on purpose" in world_log(world, broken["build_id"], capsys)
    assert report["summary"]["text"] == (  # type: ignore[index]
        "1 of 2 pinned packages built from source for every target (50.0 %)"
    )

    capsys.readouterr()
    assert world.fromsource("build", "-r", str(lock), "--upstream", world.upstream.url) == 1
    captured = capsys.readouterr()
    # Not a terminal: one plain line per finished build, with the counts so far.
    assert "[1/2 done, 0 running, 1 queued, 0 failed] closure-base 0.1 skipped: " in captured.err
    assert "[2/2 done, 0 running, 0 queued, 1 failed] broken-pkg 1.0 failed\n" in captured.err
    assert "broken-pkg" in captured.out and "failed" in captured.out
    assert "1 of 2 pinned packages built from source for every target (50.0 %)" in captured.out
    assert "broken-pkg 1.0 failed [build-failed]" in captured.err
    assert "fromsource builds show" in captured.err


def world_log(world: World, build_id: int, capsys: pytest.CaptureFixture[str]) -> str:
    """The stored log of build *build_id* (``builds show --full-log``)."""
    capsys.readouterr()
    assert world.fromsource("builds", "show", str(build_id), "--full-log") == 0
    return capsys.readouterr().out


def test_usage_errors(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.fromsource("build") == 2
    assert "give REQUIREMENTS, or -r/--lock files" in capsys.readouterr().err
    (tmp_path / "r.txt").write_text("closure-base==0.1\n")
    assert world.fromsource("build", "closure-base==0.1", "-r", str(tmp_path / "r.txt")) == 2
    assert world.fromsource("build", "--with-deps", "--lock", str(tmp_path / "r.txt")) == 2
    assert "exactly what the files pin" in capsys.readouterr().err
    assert world.fromsource("build", "--lock", str(tmp_path / "missing.lock")) == 2
    assert "missing.lock: cannot read" in capsys.readouterr().err
