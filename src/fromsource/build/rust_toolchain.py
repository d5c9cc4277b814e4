"""The Rust toolchain builds use: cargo and rustc from a configured folder or the host.

Nothing is downloaded (issue 13).  A toolchain is a folder holding
``bin/cargo``, ``bin/rustc`` and ``lib/`` (rustc's own libraries and the
standard library): the folder ``FROMSOURCE_RUST_TOOLCHAIN`` names, or else the
sysroot of the ``rustc`` on ``PATH`` (for rustup that is the toolchain folder
behind its proxies, which the sandbox can run without rustup).  Its versions
(``rustc -vV``, ``cargo -V``) go into the provenance and the build key.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fromsource.errors import ToolchainError

__all__ = ["Toolchain", "find_toolchain", "parse_rustc_version"]

_TIMEOUT = 60


@dataclass(frozen=True)
class Toolchain:
    """A Rust toolchain on the host and what it says about itself.

    *rustc_version* is the first line of ``rustc -vV``
    (``rustc 1.95.0 (59807616e 2026-04-14)``), *cargo_version* that of
    ``cargo -V``; *host* the target triple it builds for by default;
    *commit* and *llvm* identify the compiler exactly.
    """

    root: Path
    rustc_version: str
    cargo_version: str
    host: str
    release: str
    commit: str
    llvm: str

    @property
    def key(self) -> str:
        """What the build key holds of it: the exact compiler and cargo."""
        return (
            f"{self.rustc_version}; commit {self.commit}; host {self.host}; LLVM {self.llvm}; "
            f"{self.cargo_version}"
        )

    def to_json(self) -> dict[str, object]:
        """The toolchain as the provenance records it (no host path: it says nothing)."""
        return {
            "rustc": self.rustc_version,
            "cargo": self.cargo_version,
            "host": self.host,
            "release": self.release,
            "commit_hash": self.commit,
            "llvm": self.llvm,
        }


def parse_rustc_version(text: str) -> tuple[str, dict[str, str]]:
    """The first line of ``rustc -vV`` output and its ``key: value`` lines."""
    lines = text.strip().splitlines()
    fields: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return (lines[0].strip() if lines else ""), fields


def _run(argv: list[str], env: dict[str, str] | None, what: str) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_TIMEOUT, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(
            f"{what} could not be run ({exc}); install Rust (cargo and rustc) or set "
            "FROMSOURCE_RUST_TOOLCHAIN to a toolchain folder",
            category="rust-toolchain-unavailable",
        ) from exc
    if done.returncode != 0:
        raise ToolchainError(
            f"{what} failed with exit status {done.returncode}: {done.stderr.strip()[-500:]}; "
            "fix the toolchain or set FROMSOURCE_RUST_TOOLCHAIN",
            category="rust-toolchain-unavailable",
        )
    return done.stdout


def _host_root() -> Path:
    rustc = shutil.which("rustc")
    if rustc is None:
        raise ToolchainError(
            "the build needs Rust, but no rustc is on PATH and FROMSOURCE_RUST_TOOLCHAIN is not "
            "set; install Rust (cargo and rustc) or point the setting at a toolchain folder",
            category="rust-toolchain-unavailable",
        )
    # A rustup proxy answers for its default toolchain; it needs the caller's HOME.
    sysroot = _run([rustc, "--print", "sysroot"], None, f"{rustc} --print sysroot").strip()
    return Path(sysroot)


@cache
def find_toolchain(configured: Path | None = None) -> Toolchain:
    """The toolchain in *configured* (a folder with ``bin/`` and ``lib/``), else the host's.

    Asked once per process and folder.  Raises ToolchainError (category
    ``rust-toolchain-unavailable``) when there is none, when ``cargo`` is not
    beside ``rustc``, or when either cannot tell its version.
    """
    root = (configured if configured is not None else _host_root()).resolve()
    for name in ("rustc", "cargo"):
        if not os.access(root / "bin" / name, os.X_OK):
            raise ToolchainError(
                f"{root}/bin/{name} is missing or not executable: a toolchain folder holds "
                "bin/cargo, bin/rustc and lib/; set FROMSOURCE_RUST_TOOLCHAIN to one",
                category="rust-toolchain-unavailable",
            )
    with tempfile.TemporaryDirectory(prefix="fromsource-rust-") as home:
        # As the sandbox runs it: no rustup, no user configuration.
        env = {"PATH": f"{root}/bin:/usr/bin:/bin", "HOME": home, "CARGO_HOME": home}
        verbose = _run([str(root / "bin" / "rustc"), "-vV"], env, "rustc -vV")
        cargo = _run([str(root / "bin" / "cargo"), "-V"], env, "cargo -V").strip()
    first, fields = parse_rustc_version(verbose)
    return Toolchain(
        root=root,
        rustc_version=first,
        cargo_version=cargo,
        host=fields.get("host", ""),
        release=fields.get("release", ""),
        commit=fields.get("commit-hash", ""),
        llvm=fields.get("LLVM version", ""),
    )
