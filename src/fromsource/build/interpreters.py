"""Find this host's build targets: every CPython >= 3.9 here, found without downloading anything.

Where interpreters are looked for (the first found of each target wins):

1. an explicit list (``--python`` / ``FROMSOURCE_PYTHONS``): versions
   (``3.12``, ``3.13t``: the first interpreter of that version the search
   below finds), command names (``python3.12``, looked up on ``PATH``) or
   paths; when given, nothing else is searched;
2. otherwise the interpreter fromsource runs on (the base one under its
   venv: the one builds used before targets existed), then every
   ``python3.X`` on ``PATH``, then ``$PYENV_ROOT/versions/*/bin/python3.X``
   (``~/.pyenv`` without ``PYENV_ROOT``).

pyenv's shims are never run: they are scripts that dispatch to whichever
version pyenv selects at the moment.  A shim named ``python3.X`` stands for
the binary of that name in pyenv's versions folder (the newest such
version); any other shim is skipped.  Each remaining binary is run once, isolated
(``-I -S``), with a short packaging-free probe that prints its version, ABI
flags, platform and C library, under a timeout.  Whatever cannot be used is
returned as :class:`Skipped` with the reason, never raised.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from fromsource.build.commands import CommandRunner, SubprocessRunner
from fromsource.build.targets import MIN_PYTHON, Target
from fromsource.errors import TargetError

__all__ = [
    "PROBE",
    "Discovery",
    "Skipped",
    "discover_targets",
    "probe_interpreter",
    "running_target",
    "target_from_probe",
]

PROBE_TIMEOUT = 15.0
"""Seconds an interpreter may take to answer the probe."""

# Runs on the candidate interpreter: no f-strings or newer syntax, so that an
# old or unexpected interpreter still answers and is skipped for its version.
PROBE = """\
import json, os, platform, sys, sysconfig
libc = None
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION")
except (AttributeError, ValueError, OSError):
    pass
base = getattr(sys, "_base_executable", None) or sys.executable
print(json.dumps({
    "implementation": sys.implementation.name,
    "version": list(sys.version_info[:2]),
    "full_version": platform.python_version(),
    "abiflags": getattr(sys, "abiflags", ""),
    "platform": sysconfig.get_platform(),
    "is_64bit": sys.maxsize > 2 ** 32,
    "libc": libc,
    "executable": os.path.realpath(base),
}))
"""

Source = Literal["explicit", "running", "path", "pyenv"]

_NAME = re.compile(r"^python3\.(\d+)(t?)$")
_WANTED_VERSION = re.compile(r"^3\.(\d+)(t?)$")
_PYENV_VERSION_DIR = re.compile(r"^3\.(\d+)")


@dataclass(frozen=True)
class Skipped:
    """A candidate that is not a target, and why."""

    candidate: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """``{"candidate": ..., "reason": ...}``."""
        return {"candidate": self.candidate, "reason": self.reason}


@dataclass(frozen=True)
class Discovery:
    """The targets found (oldest first), and the candidates skipped with their reasons.

    *unresolved* lists the explicit entries (``--python``) that gave no target.
    """

    targets: tuple[Target, ...]
    skipped: tuple[Skipped, ...]
    unresolved: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The discovery as JSON-ready data."""
        return {
            "targets": [t.to_json() for t in self.targets],
            "skipped": [s.to_json() for s in self.skipped],
            "unresolved": list(self.unresolved),
        }


@dataclass(frozen=True)
class _Candidate:
    path: Path
    source: Source
    wanted: str | None = None  # the explicit entry it stands for


def _name_version(path: Path) -> tuple[int, int] | None:
    match = _NAME.match(path.name)
    return (3, int(match.group(1))) if match else None


def _path_candidates(path_env: str) -> list[Path]:
    found: list[Path] = []
    for folder in path_env.split(os.pathsep):
        if not folder:
            continue
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        matched = [Path(folder) / n for n in names if _NAME.match(n)]
        found.extend(sorted(matched, key=lambda p: (_name_version(p), p.name)))
    return found


def _pyenv_candidates(pyenv_root: Path | None) -> list[Path]:
    """``versions/*/bin/python3.X`` of every pyenv-installed Python, oldest first."""
    if pyenv_root is None:
        return []
    versions = pyenv_root / "versions"
    try:
        folders = sorted(p for p in versions.iterdir() if p.is_dir())
    except OSError:
        return []

    def order(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", folder.name)[:3])

    found: list[Path] = []
    for folder in sorted(folders, key=order):
        try:
            names = sorted(n for n in os.listdir(folder / "bin") if _NAME.match(n))
        except OSError:
            continue
        found.extend(folder / "bin" / name for name in names)
    return found


def _pyenv_shim(path: Path) -> bool:
    """Whether *path* is a script mentioning pyenv (a shim) rather than an interpreter."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"pyenv" in head


def _too_old(version: tuple[int, int], *, ran: bool = False) -> str:
    return (
        f"Python {version[0]}.{version[1]} is older than {MIN_PYTHON[0]}.{MIN_PYTHON[1]}, "
        "the oldest the index builds for" + ("" if ran else " (not run)")
    )


def target_from_probe(answer: Mapping[str, object]) -> Target | str:
    """The target a probe *answer* (the JSON :data:`PROBE` prints) describes, or why it is none."""
    implementation = answer.get("implementation")
    version = answer.get("version")
    if implementation != "cpython":
        return f"not CPython ({implementation})"
    if not (
        isinstance(version, list) and len(version) == 2 and all(isinstance(v, int) for v in version)
    ):
        return "the probe did not report a version"
    major, minor = int(version[0]), int(version[1])
    if (major, minor) < MIN_PYTHON:
        return _too_old((major, minor), ran=True)
    abiflags, platform, executable = (
        answer.get("abiflags"),
        answer.get("platform"),
        answer.get("executable"),
    )
    full_version = answer.get("full_version")
    if not (
        isinstance(abiflags, str)
        and isinstance(platform, str)
        and isinstance(executable, str)
        and isinstance(full_version, str)
    ):
        return "the probe's answer is incomplete"
    platform_tag = platform.replace("-", "_").replace(".", "_")
    if platform_tag == "linux_x86_64" and answer.get("is_64bit") is False:
        platform_tag = "linux_i686"  # a 32-bit interpreter on a 64-bit kernel (as packaging does)
    libc = answer.get("libc")
    glibc = None
    if isinstance(libc, str) and libc.startswith("glibc "):
        found = re.match(r"(\d+\.\d+)", libc.removeprefix("glibc "))
        glibc = found.group(1) if found else None
    nodot = f"{major}{minor}"
    return Target(
        version=f"{major}.{minor}",
        full_version=full_version,
        python_tag=f"cp{nodot}",
        abi_tag=f"cp{nodot}{abiflags}",
        platform_tag=platform_tag,
        interpreter=executable,
        glibc=glibc,
    )


def probe_interpreter(
    path: Path, runner: CommandRunner | None = None, timeout: float = PROBE_TIMEOUT
) -> Target | str:
    """Run :data:`PROBE` on the interpreter at *path*; its Target, or why it cannot be one."""
    run = runner or SubprocessRunner()
    env = {"PATH": os.defpath, "LC_ALL": "C.UTF-8"}
    try:
        result = run([str(path), "-I", "-S", "-c", PROBE], env=env, timeout=timeout)
    except OSError as exc:
        return f"cannot be run ({exc.strerror or exc})"
    if result.timed_out:
        return f"did not answer the probe within {timeout:g} s"
    if not result.ok:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"the probe failed with exit status {result.returncode}: {last[:200]}"
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return "the probe's answer is not JSON"
    if not isinstance(answer, dict):
        return "the probe's answer is not a JSON object"
    return target_from_probe(answer)


def _running_interpreter() -> Path:
    return Path(getattr(sys, "_base_executable", None) or sys.executable)


@cache
def running_target() -> Target:
    """The target of the interpreter fromsource runs on (its base one), probed once.

    What a build uses when no target is chosen: the one builds used before
    targets existed.  Raises TargetError when it cannot be probed.
    """
    found = probe_interpreter(_running_interpreter())
    if isinstance(found, str):
        raise TargetError(
            f"{_running_interpreter()}: the interpreter fromsource runs on is no build "
            f"target ({found}); name one with FROMSOURCE_PYTHONS",
            interpreter=str(_running_interpreter()),
        )
    return found


def _explicit_candidates(
    entries: Sequence[str], search: list[_Candidate], path_env: str
) -> tuple[list[_Candidate], list[Skipped]]:
    """Candidates for explicit entries: versions pick from *search*, others are paths or names."""
    chosen: list[_Candidate] = []
    skipped: list[Skipped] = []
    for entry in entries:
        version = _WANTED_VERSION.match(entry)
        if version:
            # every interpreter named for that version, in search order: the first usable wins
            wanted = (3, int(version.group(1)))
            matches = [
                _Candidate(c.path, "explicit", entry)
                for c in search
                if _name_version(c.path) == wanted
                and c.path.name.endswith("t") == entry.endswith("t")
            ]
            if not matches:
                skipped.append(
                    Skipped(entry, f"no python{entry} on PATH or in pyenv's versions folder")
                )
            chosen.extend(matches)
            continue
        path = Path(entry).expanduser()
        if os.sep not in entry:
            located = shutil.which(entry, path=path_env)
            if located is None:
                skipped.append(Skipped(entry, f"no {entry} on PATH"))
                continue
            path = Path(located)
        chosen.append(_Candidate(path, "explicit", entry))
    return chosen, skipped


def _search(path_env: str, pyenv_root: Path | None, include_running: bool) -> list[_Candidate]:
    candidates: list[_Candidate] = []
    if include_running:
        candidates.append(_Candidate(_running_interpreter(), "running"))
    candidates.extend(_Candidate(p, "path") for p in _path_candidates(path_env))
    candidates.extend(_Candidate(p, "pyenv") for p in _pyenv_candidates(pyenv_root))
    return candidates


def _shim_target(shim: Path, pyenv_root: Path | None) -> Path | str:
    """The pyenv-installed binary a shim named ``python3.X`` stands for (the newest such
    version), or why there is none: a shim decides at run time, so it is never run."""
    if _NAME.match(shim.name):
        installed = [p for p in _pyenv_candidates(pyenv_root) if p.name == shim.name]
        if installed:
            return installed[-1]
    return (
        "a pyenv shim (a script that runs whichever version pyenv selects) with no "
        f"{shim.name} in pyenv's versions folder; name a version (3.12) or a path instead"
    )


def _pre_check(path: Path, source: Source) -> str | None:
    """Why the binary at *path* is not worth running, without running it; None when it is."""
    if not path.exists():
        return "does not exist"
    if path.is_dir() or not os.access(path, os.X_OK):
        return "is not an executable file"
    version = _name_version(path)
    if source == "pyenv":
        folder = _PYENV_VERSION_DIR.match(path.parent.parent.name)
        version = (3, int(folder.group(1))) if folder else version
    if version is not None and version < MIN_PYTHON:
        return _too_old(version)
    return None


class _Finder:
    """The state of one discovery: what was run, which targets are taken, what was skipped.

    The same binary reached by several names (a venv's link, ``/bin`` and
    ``/usr/bin``, a pyenv shim and its version) is one interpreter, run once
    and not reported as skipped.
    """

    def __init__(
        self, runner: CommandRunner | None, timeout: float, pyenv_root: Path | None
    ) -> None:
        self.runner = runner
        self.pyenv_root = pyenv_root
        self.timeout = timeout
        self.probed: dict[Path, Target | str] = {}  # by real path: each binary runs once
        self.reported: set[Path] = set()
        self.by_tag: dict[str, Target] = {}
        self.skipped: list[Skipped] = []

    def probe(self, candidate: _Candidate) -> tuple[Path, Target | str]:
        """The real binary behind the candidate and its target, or why it has none.

        Each real binary is run once.
        """
        path, source = candidate.path, candidate.source
        if _pyenv_shim(path):
            shim = _shim_target(path, self.pyenv_root)
            if isinstance(shim, str):
                return path, shim
            path, source = shim, "pyenv"
        real = path.resolve()
        if real not in self.probed:
            reason = _pre_check(path, source)
            self.probed[real] = reason or probe_interpreter(path, self.runner, self.timeout)
        return real, self.probed[real]

    def take(self, candidate: _Candidate, real: Path, found: Target | str) -> bool:
        """Record *found* for *candidate*; whether it gave a target (new or already taken)."""
        label = str(candidate.path)
        if isinstance(found, str):
            if real not in self.reported:  # one binary, one line, however many names it has
                self.reported.add(real)
                self._skip(label, found)
            return False
        taken = self.by_tag.setdefault(found.tag, found)
        if taken.interpreter != found.interpreter and real not in self.reported:
            # another installation of the same version: one target, the first found builds it
            self.reported.add(real)
            self._skip(label, f"the same target ({found.tag}) as {taken.interpreter}, found first")
        return True

    def _skip(self, label: str, reason: str) -> None:
        if not any(s.candidate == label for s in self.skipped):
            self.skipped.append(Skipped(label, reason))


def discover_targets(
    explicit: Sequence[str] = (),
    *,
    path_env: str | None = None,
    pyenv_root: Path | None = None,
    runner: CommandRunner | None = None,
    timeout: float = PROBE_TIMEOUT,
    include_running: bool = True,
) -> Discovery:
    """Every CPython >= 3.9 target on this host (see the module docstring for where).

    *path_env* defaults to ``$PATH``, *pyenv_root* to ``$PYENV_ROOT`` or
    ``~/.pyenv``.  Each real binary is run at most once with *runner* (a
    subprocess by default) and *timeout*; the first interpreter found for a
    target tag wins.  Never raises for an interpreter that cannot be used: it
    is in :attr:`Discovery.skipped`, and an explicit entry that gave no
    target is in :attr:`Discovery.unresolved`.
    """
    if path_env is None:
        path_env = os.environ.get("PATH", os.defpath)
    if pyenv_root is None:
        pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    entries = [e.strip() for e in explicit if e.strip()]
    search = _search(path_env, pyenv_root, include_running)
    finder = _Finder(runner, timeout, pyenv_root)
    if not entries:
        for candidate in search:
            finder.take(candidate, *finder.probe(candidate))
        return Discovery(_oldest_first(finder.by_tag.values()), tuple(finder.skipped))
    candidates, not_found = _explicit_candidates(entries, search, path_env)
    finder.skipped.extend(not_found)
    satisfied: set[str] = set()
    for candidate in candidates:
        wanted = candidate.wanted or ""
        if wanted in satisfied:
            continue
        real, found = finder.probe(candidate)
        if isinstance(found, Target) and _WANTED_VERSION.match(wanted) and found.name != wanted:
            found = f"is Python {found.name}, not {wanted}"
        if finder.take(candidate, real, found):
            satisfied.add(wanted)
    unresolved = tuple(e for e in entries if e not in satisfied)
    return Discovery(_oldest_first(finder.by_tag.values()), tuple(finder.skipped), unresolved)


def _oldest_first(targets: Iterable[Target]) -> tuple[Target, ...]:
    return tuple(sorted(targets, key=lambda t: (t.version_tuple, t.free_threaded, t.tag)))
