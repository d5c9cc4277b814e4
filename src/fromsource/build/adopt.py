"""``fromsource adopt``: the decisions of the guided path from a lock file to an install.

Pure.  Adopting a lock builds its closure (:mod:`fromsource.build.closure`),
rewrites its hashes (:mod:`fromsource.lockfiles`), points the client at the
index (:mod:`fromsource.setup`), then names the one install command and what
the index cannot serve.  This module decides which client a lock format
belongs to, the install command, and the list of what cannot be served;
``fromsource.cli.adopt`` runs the steps.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from fromsource.build.coverage import CoverageReport
from fromsource.dist.names import normalize
from fromsource.lockfiles import FileResult
from fromsource.setup import Target

__all__ = [
    "SETUP_TARGETS",
    "Unserved",
    "install_command",
    "lock_files_to_update",
    "setup_target",
    "unserved",
]

SETUP_TARGETS: dict[str, Target] = {
    "uv.lock": "uv",
    "poetry.lock": "poetry",
    "pdm.lock": "pdm",
    "requirements": "pip",
    "pylock.toml": "netrc",
    "Pipfile.lock": "netrc",
}
"""The ``setup`` target for each lock format.  pip installs a ``pylock.toml`` from the
file URLs it holds (which ``update-hashes`` pointed at the index), so only the
credentials are written for it; pipenv is no ``setup`` target, so a Pipfile.lock gets
the credentials too, and its Pipfile's ``[[source]]`` must name the index."""

_COMMANDS = {
    "uv.lock": "uv sync --locked",
    # poetry.lock records a hash of pyproject.toml's sources, which setup changed, and
    # `poetry install` refuses a lock whose hash differs; `poetry lock` (poetry 2 keeps
    # every locked version) records it again, with the files of the index.
    "poetry.lock": "poetry lock && poetry install",
    "pdm.lock": "pdm install --frozen-lockfile",
    "Pipfile.lock": "pipenv sync",
}


def setup_target(fmt: str) -> Target:
    """The ``setup`` target for lock format *fmt* (pip for anything unknown)."""
    return SETUP_TARGETS.get(fmt, "pip")


def install_command(fmt: str, lock: PurePath, cwd: PurePath) -> str:
    """The one command that installs the adopted lock, run from *cwd*.

    The lock's folder is entered first when it is not *cwd*; pip is given
    the file itself (a requirements file or ``pylock.toml``).
    """
    folder = lock.parent
    if fmt in _COMMANDS:
        command = _COMMANDS[fmt]
    else:
        command = f"pip install -r {shlex.quote(lock.name)}"
    if folder == cwd or str(folder) in ("", "."):
        return command
    return f"cd {shlex.quote(str(folder))} && {command}"


@dataclass(frozen=True)
class Unserved:
    """A pinned package the index cannot serve, and why."""

    name: str
    version: str | None
    location: str
    category: str
    reason: str

    def line(self) -> str:
        """``name==version (file:line) [category]: reason``."""
        pin = f"{self.name}=={self.version}" if self.version else self.name
        return f"{pin} ({self.location}) [{self.category}]: {self.reason}"

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "name": self.name,
            "version": self.version,
            "location": self.location,
            "category": self.category,
            "reason": self.reason,
        }


def unserved(report: CoverageReport, updates: Sequence[FileResult] = ()) -> list[Unserved]:
    """What the index cannot serve: the coverage's unserved pins, then pins the index lacks.

    A pin the build reported (failed, skipped) is listed once, with the
    build's reason.  A pin ``lock update-hashes`` found ``missing`` on the
    index is added (category ``not-on-index``, at the build's location for
    it) unless the build listed it already or no target installs it (a
    Windows-only pin on a Linux index is not missing).
    """
    found = [
        Unserved(
            e.name,
            e.version,
            e.location,
            e.category or e.status,
            (e.reason.splitlines() or [e.status])[0],
        )
        for e in report.unserved
    ]
    entries = {(normalize(e.name), e.version): e for e in report.packages}
    named = {(normalize(u.name), u.version) for u in found}
    for result in updates:
        for package in result.packages:
            key = (normalize(package.name), package.version)
            entry = entries.get(key)
            if package.status != "missing" or key in named or (entry and not entry.counted):
                continue
            named.add(key)
            where = entry.location if entry else result.path
            found.append(
                Unserved(package.name, package.version, where, "not-on-index", package.detail)
            )
    return found


def lock_files_to_update(files: Iterable[str], constraint_files: Iterable[str]) -> list[str]:
    """The files whose hashes ``adopt`` rewrites: every file read but constraints-only ones."""
    constraints = set(constraint_files)
    return [f for f in files if f not in constraints]
