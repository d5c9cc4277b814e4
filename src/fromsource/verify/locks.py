"""Read lock files into pinned packages: pylock.toml (PEP 751), uv.lock, hashed requirements.

The ``parse_*`` functions are pure (text in, values out); :func:`read_lock`
reads the file (and, for requirements, the files it includes with ``-r``).
Only sha256 hashes are kept: an attestation's subject digest is sha256.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from fromsource.errors import VerifyError
from fromsource.verify.model import ArtifactType, Excluded, LockedPackage

_HASH = re.compile(r"--hash[= ]\s*([A-Za-z0-9]+):([0-9a-fA-F]+)")
_OPTION_WITH_VALUE = re.compile(r"^(-[ric]|--requirement|--constraint|-e|--editable)\b\s*=?\s*(.*)$")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_INCLUDE_DEPTH = 10


def _sha256s(values: object) -> frozenset[str]:
    if not isinstance(values, Mapping):  # a hand-edited lock may hold anything here
        return frozenset()
    digest = values.get("sha256")
    if isinstance(digest, str) and _HEX64.fullmatch(digest.lower()):
        return frozenset({digest.lower()})
    return frozenset()


def _list(value: object) -> list[object]:
    """*value* when it is a list, else nothing (a lock may hold anything where a list belongs)."""
    return value if isinstance(value, list) else []


def _toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VerifyError(f"{origin}: not valid TOML ({exc}); fix or regenerate the lock file",
                          path=origin) from exc


def parse_pylock(text: str, origin: str) -> tuple[list[LockedPackage], list[Excluded]]:
    """The packages of a PEP 751 ``pylock.toml``.

    Wheel, sdist and archive hashes are collected per package; VCS and
    non-editable directory packages are unverifiable; editable directories
    (the project itself) are excluded.  Raises VerifyError for invalid TOML
    or a document without ``packages``.
    """
    doc = _toml(text, origin)
    packages = doc.get("packages")
    if not isinstance(packages, list):
        raise VerifyError(f"{origin}: no [[packages]] table; is this a PEP 751 lock file?",
                          path=origin)
    found: list[LockedPackage] = []
    excluded: list[Excluded] = []
    for number, pkg in enumerate(packages):
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
            raise VerifyError(f"{origin}: packages[{number}] has no name", path=origin)
        name, version = pkg["name"], pkg.get("version")
        where = f"{origin}: packages[{number}]"
        directory = pkg.get("directory")
        if isinstance(directory, dict) and directory.get("editable"):
            excluded.append(Excluded(name, version, f"editable directory {directory.get('path')}"))
            continue
        hashes: set[str] = set()
        for wheel in _list(pkg.get("wheels")):
            if isinstance(wheel, dict):
                hashes |= _sha256s(wheel.get("hashes"))
        for key in ("sdist", "archive"):
            if isinstance(pkg.get(key), dict):
                hashes |= _sha256s(pkg[key].get("hashes"))
        problem = None
        if isinstance(directory, dict) or "vcs" in pkg:
            problem = "installed from a local directory or VCS checkout, not from an index"
        elif not hashes:
            problem = "no sha256 hash pinned"
        elif not isinstance(version, str):
            problem = "no version pinned"
        found.append(LockedPackage(name, version if isinstance(version, str) else None,
                                   frozenset(hashes), where, unverifiable=problem))
    return found, excluded


def _uv_hash(entry: object) -> frozenset[str]:
    if isinstance(entry, dict) and isinstance(entry.get("hash"), str):
        algorithm, _, digest = entry["hash"].partition(":")
        if algorithm == "sha256" and _HEX64.fullmatch(digest.lower()):
            return frozenset({digest.lower()})
    return frozenset()


def parse_uv_lock(text: str, origin: str) -> tuple[list[LockedPackage], list[Excluded]]:
    """The packages of a ``uv.lock``.

    Editable and virtual sources (the workspace's own projects) are excluded;
    git and directory sources without hashes are unverifiable.  Raises
    VerifyError for invalid TOML or a document without ``package``.
    """
    doc = _toml(text, origin)
    packages = doc.get("package")
    if not isinstance(packages, list):
        raise VerifyError(f"{origin}: no [[package]] table; is this a uv.lock?", path=origin)
    found: list[LockedPackage] = []
    excluded: list[Excluded] = []
    for pkg in packages:
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
            raise VerifyError(f"{origin}: a [[package]] entry has no name", path=origin)
        name, version = pkg["name"], pkg.get("version")
        version = version if isinstance(version, str) else None
        raw_source = pkg.get("source")
        source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
        if "editable" in source or "virtual" in source:
            kind = "editable" if "editable" in source else "virtual"
            excluded.append(Excluded(name, version, f"workspace project ({kind} source)"))
            continue
        hashes = set(_uv_hash(pkg.get("sdist")))
        for wheel in _list(pkg.get("wheels")):
            hashes |= _uv_hash(wheel)
        problem = None
        if not hashes:
            problem = f"no sha256 hash pinned (source {', '.join(source) or 'unknown'})"
        elif version is None:
            problem = "no version pinned"
        found.append(LockedPackage(name, version, frozenset(hashes),
                                   f"{origin}: package {name}", unverifiable=problem))
    return found, excluded


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            lines.append((start, buffer.strip()))
        buffer = ""
    if buffer.strip():
        lines.append((start, buffer.strip()))
    return lines


def parse_requirements(text: str, origin: str) -> tuple[list[LockedPackage], list[str]]:
    """The requirements of a pip requirements file, and the files it includes with ``-r``.

    A package is verifiable when pinned with ``==`` (or ``===``) and at least
    one ``--hash=sha256:``; a ``name @ URL`` requirement takes its version from
    a wheel filename in the URL.  ``-e`` lines are unverifiable; constraint
    files (``-c``) and other options are ignored.
    """
    found: list[LockedPackage] = []
    includes: list[str] = []
    for number, line in _logical_lines(text):
        where = f"{origin}:{number}"
        option = _OPTION_WITH_VALUE.match(line)
        if option:
            flag, value = option.group(1), option.group(2).strip()
            if flag in ("-r", "--requirement"):
                includes.append(value)
            elif flag in ("-e", "--editable"):
                found.append(LockedPackage(value, None, frozenset(), where,
                                           unverifiable="editable install, not from an index"))
            continue
        if line.startswith("-"):
            continue
        hashes = frozenset(
            digest.lower()
            for algorithm, digest in _HASH.findall(line)
            if algorithm == "sha256" and _HEX64.fullmatch(digest.lower())
        )
        spec = _HASH.sub("", line).split(" --")[0].split(" -")[0].strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise VerifyError(f"{where}: not a requirement ({exc})", path=origin) from exc
        version, allow_local = _pinned_version(req)
        problem = None
        if version is None:
            problem = "not pinned to one version with =="
        elif not hashes:
            problem = "no --hash=sha256: pinned"
        found.append(LockedPackage(req.name, version, hashes, where, allow_local, problem))
    return found, includes


def _pinned_version(req: Requirement) -> tuple[str | None, bool]:
    if req.url:
        filename = req.url.rsplit("/", 1)[-1].split("#")[0]
        try:
            return str(parse_wheel_filename(filename)[1]), False
        except (InvalidWheelFilename, ValueError):
            return None, False
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version, specs[0].operator == "=="
    return None, False


def read_lock(
    path: Path, kind: ArtifactType, display: str
) -> tuple[list[LockedPackage], list[Excluded]]:
    """The pinned packages of the lock file at *path* (of *kind*), following ``-r`` includes.

    Raises VerifyError when a file cannot be read or parsed, or includes loop.
    """
    if kind == "pylock":
        return parse_pylock(_read(path), display)
    if kind == "uv-lock":
        return parse_uv_lock(_read(path), display)
    found: list[LockedPackage] = []
    pending: list[tuple[Path, str, int]] = [(path, display, 0)]
    seen: set[Path] = set()
    while pending:
        current, name, depth = pending.pop(0)
        real = current.resolve()
        if real in seen:
            continue
        if depth > _MAX_INCLUDE_DEPTH:
            raise VerifyError(f"{name}: -r includes nest deeper than {_MAX_INCLUDE_DEPTH}",
                              path=name)
        seen.add(real)
        packages, includes = parse_requirements(_read(current), name)
        found += packages
        for include in includes:
            pending.append((current.parent / include, include, depth + 1))
    return found, []


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifyError(f"{path}: cannot read the lock file ({exc})", path=str(path)) from exc
