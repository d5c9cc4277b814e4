"""The host facts that go into a build key: Python, platform, compiler and C library."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sysconfig
from functools import cache

__all__ = ["host_facts"]


@cache
def host_facts() -> tuple[str, str, str]:
    """(Python version, platform, toolchain) of the builds this process runs."""
    toolchain = "no C compiler"
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler:
        try:
            done = subprocess.run(
                [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
            )
            toolchain = (done.stdout.splitlines() or [toolchain])[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
    libc = " ".join(platform.libc_ver())
    return platform.python_version(), sysconfig.get_platform(), f"{toolchain}; {libc}".strip()
