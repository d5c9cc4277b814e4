"""Finding this host's interpreters: PATH, pyenv's versions folder, shims, broken ones.

Real interpreters run the real probe: the fake PATH and pyenv folders hold
links to the interpreter running the tests, next to scripts that stand for
shims, broken and hanging interpreters.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import pytest

from fromsource.build.commands import SubprocessRunner
from fromsource.build.interpreters import discover_targets, probe_interpreter
from fromsource.build.targets import Target

BASE = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
MINOR = sys.version_info[1]
HERE = f"3.{MINOR}"


def script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def link(path: Path, to: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(to)
    return path


@pytest.fixture
def host(tmp_path: Path) -> tuple[str, Path, Path]:
    """(PATH, pyenv root, marker folder) of a small fake host.

    PATH: ``bin`` (this Python as python3.X, a broken python3.90, a hanging
    python3.91) and ``shims`` (pyenv shims). pyenv: this Python as version
    3.X.99 and a 3.8 that must never be run (it would leave a marker).
    """
    marks = tmp_path / "marks"
    marks.mkdir()
    bin_dir, shims, pyenv = tmp_path / "bin", tmp_path / "pyenv" / "shims", tmp_path / "pyenv"
    link(bin_dir / f"python{HERE}", BASE)
    link(bin_dir / "python3.90", Path("/bin/false"))  # an ELF that fails
    script(bin_dir / "python3.91", "exec sleep 30\n")
    shim = 'exec "/opt/pyenv/libexec/pyenv" exec "$program" "$@"\n'
    script(shims / f"python{HERE}", shim)
    script(shims / "python3.8", shim)
    link(pyenv / "versions" / f"{HERE}.99" / "bin" / f"python{HERE}", BASE)
    script(pyenv / "versions" / "3.8.18" / "bin" / "python3.8", f"touch {marks}/ran-3.8\n")
    return f"{shims}{os.pathsep}{bin_dir}", pyenv, marks


def test_probe_reports_this_interpreter() -> None:
    found = probe_interpreter(BASE)
    assert isinstance(found, Target)
    assert found.version == HERE and found.full_version == platform.python_version()
    assert found.python_tag == f"cp3{MINOR}" and found.abi_tag == f"cp3{MINOR}{sys.abiflags}"
    assert found.platform_tag == "linux_x86_64" or not sys.platform.startswith("linux")
    assert found.interpreter == str(BASE)
    libc, libc_version = platform.libc_ver()
    assert found.glibc == (".".join(libc_version.split(".")[:2]) if libc == "glibc" else None)


def test_discovery_finds_each_interpreter_once_and_says_why_others_are_skipped(
    host: tuple[str, Path, Path],
) -> None:
    path_env, pyenv, marks = host
    start = time.monotonic()
    found = discover_targets(path_env=path_env, pyenv_root=pyenv, include_running=False, timeout=2)
    assert time.monotonic() - start < 10
    # this Python is reached as a shim, a PATH link and a pyenv version: one target
    assert [t.tag for t in found.targets] == [f"cp3{MINOR}-cp3{MINOR}{sys.abiflags}-linux_x86_64"]
    reasons = {Path(s.candidate).name: s.reason for s in found.skipped}
    assert "exit status 1" in reasons["python3.90"]
    assert "did not answer the probe within 2 s" in reasons["python3.91"]
    assert "older than 3.9" in reasons["python3.8"]
    assert not list(marks.iterdir()), "a Python older than 3.9 was run"
    assert f"python{HERE}" not in reasons, "the same interpreter under other names is no skip"


def test_a_shim_without_a_pyenv_version_is_never_run(tmp_path: Path) -> None:
    marks = tmp_path / "ran"
    shims = tmp_path / "shims"
    script(shims / "python3.12", f'# pyenv shim\ntouch {marks}\nexec pyenv exec "$@"\n')
    found = discover_targets(
        path_env=str(shims), pyenv_root=tmp_path / "nopyenv", include_running=False
    )
    assert found.targets == ()
    assert "pyenv shim" in found.skipped[0].reason
    assert not marks.exists()


def test_explicit_versions_paths_and_names(host: tuple[str, Path, Path]) -> None:
    path_env, pyenv, _ = host
    found = discover_targets(
        [HERE, "3.90", str(Path("/nonexistent/python3.12")), "python3.77"],
        path_env=path_env,
        pyenv_root=pyenv,
        timeout=2,
    )
    assert [t.version for t in found.targets] == [HERE]
    assert found.unresolved == ("3.90", "/nonexistent/python3.12", "python3.77")
    reasons = {s.candidate: s.reason for s in found.skipped}
    assert reasons["/nonexistent/python3.12"] == "does not exist"
    assert reasons["python3.77"] == "no python3.77 on PATH"


def test_the_same_version_installed_twice_is_one_target(tmp_path: Path) -> None:
    # a copy is another binary (another real path) of the same target: the first found wins
    other = tmp_path / "other" / f"python{HERE}"
    other.parent.mkdir()
    other.write_bytes(BASE.read_bytes())
    other.chmod(0o755)
    first = link(tmp_path / "first" / f"python{HERE}", BASE)
    path_env = f"{first.parent}{os.pathsep}{other.parent}"
    found = discover_targets(path_env=path_env, pyenv_root=tmp_path, include_running=False)
    if not found.targets:
        pytest.skip(f"a copied interpreter does not run here: {found.skipped}")
    assert [t.interpreter for t in found.targets] == [str(BASE)]
    assert found.skipped[0].candidate == str(other)
    assert "the same target" in found.skipped[0].reason


def test_this_host_has_the_running_python_and_no_shim() -> None:
    found = discover_targets()
    assert HERE in [t.version for t in found.targets]
    assert all("/shims/" not in t.interpreter for t in found.targets)
    assert all(t.version_tuple >= (3, 9) for t in found.targets)


def test_subprocess_runner_kills_the_whole_group_at_the_timeout(tmp_path: Path) -> None:
    child = tmp_path / "child.pid"
    run = SubprocessRunner()
    result = run(
        ["/bin/sh", "-c", f"sleep 30 & echo $! > {child}; wait"],
        env={"PATH": os.defpath},
        timeout=1,
    )
    assert result.timed_out and not result.ok
    pid = int(child.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the command's child survived the timeout"


def alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie waiting for its reaper does not)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
