"""Running the real installers (pip, uv, poetry, pdm) in clean environments.

Every client runs with a fresh HOME and none of the caller's PIP_/UV_/POETRY_/
PDM_ variables or config files, so only the index under test can satisfy it.
Tools other than pip and uv are installed once into a cache folder
(``FROMSOURCE_TEST_TOOLS``, default ``~/.cache/fromsource-tests/tools``);
that first install needs the package registry, so tests using them are
marked ``network``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

UV = str(Path(sys.executable).with_name("uv"))
TOOLS = Path(os.environ.get("FROMSOURCE_TEST_TOOLS", Path.home() / ".cache" / "fromsource-tests" / "tools"))
TOOL_SPECS = {"poetry": "poetry==2.2.1", "pdm": "pdm[locked]==2.26.1"}


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with only what a client needs and a private HOME."""
    home.mkdir(parents=True, exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")}
    env = {
        **keep,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_DIRS": str(home / "no-system-config"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": str(home / ".cache" / "uv"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    env.update(extra or {})
    return env


def run(cmd: Sequence[str], env: Mapping[str, str], cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run *cmd*, capturing text output (never raises on a non-zero exit)."""
    return subprocess.run(
        list(cmd), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, check=False,
    )


def write_netrc(home: Path, host: str, user: str, password: str) -> None:
    """``~/.netrc`` with mode 0600, as every client expects."""
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host}\nlogin {user}\npassword {password}\n")
    netrc.chmod(0o600)


def tool(name: str) -> Path:
    """The path of client *name* (poetry, pdm), installing it once if needed."""
    venv = TOOLS / name
    exe = venv / "bin" / name
    if exe.exists():
        return exe
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [UV, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), TOOL_SPECS[name]],
        check=True,
    )
    return exe


def tool_or_skip(name: str) -> str:
    """The path of client *name*, installed from the package registry on first use; the
    test is skipped, saying why, where it cannot be installed (offline)."""
    try:
        return str(tool(name))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"{name} is not installed in {TOOLS} and could not be installed ({exc})")


def bare_venv(path: Path) -> Path:
    """A new venv without pip at *path*; returns its python (install with :func:`pip_for`)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def pip_for(python: Path) -> list[str]:
    """The project's current pip, installing into the venv of *python* (``pip --python``)."""
    return [sys.executable, "-m", "pip", "--python", str(python)]
