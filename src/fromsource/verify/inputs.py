"""Read what ``verify`` is pointed at: a virtualenv, site-packages, wheels.

The I/O edge: finds site-packages folders, reads each installed
distribution's metadata and RECORD, hashes the files RECORD lists, and
reads wheel archives.  Lock files are read by ``fromsource.lockfiles``.  Everything comes
back as the values of ``model``; nothing is decided here.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from types import MappingProxyType

from fromsource.bounded import open_zip
from fromsource.dist.distinfo import parse_wheel_file
from fromsource.dist.metadata import CoreMetadata, parse_metadata
from fromsource.dist.names import parse_filename
from fromsource.dist.record import parse_record
from fromsource.errors import InvalidDistributionError, OversizedError, VerifyError
from fromsource.verify.model import ArtifactType, InstalledDist, InstalledFile, WheelFile
from fromsource.verify.rules import installer_rule, shebang_variants

_SMALL = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_LOCK_NAMES = {"uv.lock": "uv-lock", "pylock.toml": "pylock"}


def detect(path: Path) -> ArtifactType:
    """What kind of artifact *path* is.

    Raises VerifyError when it does not exist or is none of a virtualenv,
    site-packages folder, wheel, folder of wheels, pylock.toml, uv.lock or
    requirements file.
    """
    if not path.exists():
        raise VerifyError(f"{path}: no such file or folder; pass a virtualenv, "
                          "site-packages folder, wheel, folder of wheels or lock file",
                          path=str(path))
    if path.is_file():
        name = path.name
        if name.endswith(".whl"):
            return "wheel"
        if name in _LOCK_NAMES:
            return "pylock" if name == "pylock.toml" else "uv-lock"
        if name.startswith("pylock.") and name.endswith(".toml"):
            return "pylock"
        if name.endswith((".txt", ".in")):
            return "requirements"
        raise VerifyError(
            f"{path}: not a wheel (.whl), pylock.toml, uv.lock or requirements file (.txt)",
            path=str(path),
        )
    if (path / "pyvenv.cfg").is_file() or site_packages_dirs(path):
        return "environment"
    if any(path.glob("*.whl")):
        return "wheels"
    raise VerifyError(
        f"{path}: no virtualenv (pyvenv.cfg), installed distributions (*.dist-info) or "
        "wheels (*.whl) found here; point verify at one of those",
        path=str(path),
    )


def site_packages_dirs(path: Path) -> list[Path]:
    """The site-packages folders of the environment or folder at *path*, deduplicated.

    A folder named ``site-packages`` or holding ``*.dist-info`` or
    ``*.egg-info`` is taken as a site-packages folder itself; otherwise the
    POSIX and Windows venv layouts are searched.  Empty when none is found.
    """
    if path.name == "site-packages" or _holds_dists(path):
        return [path]
    found: list[Path] = []
    seen: set[Path] = set()
    for pattern in ("lib/python*/site-packages", "lib64/python*/site-packages",
                    "Lib/site-packages", "lib/pypy*/site-packages"):
        for candidate in sorted(path.glob(pattern)):
            real = candidate.resolve()
            if candidate.is_dir() and real not in seen:
                seen.add(real)
                found.append(candidate)
    return found


def _holds_dists(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(e.name.endswith((".dist-info", ".egg-info")) for e in entries)
    except OSError:
        return False


def dist_folders(site: Path) -> list[Path]:
    """The ``.dist-info`` and ``.egg-info`` entries of one site-packages folder, sorted."""
    try:
        with os.scandir(site) as entries:
            return sorted(
                site / e.name for e in entries if e.name.endswith((".dist-info", ".egg-info"))
            )
    except OSError as exc:
        raise VerifyError(f"{site}: cannot list the folder ({exc.strerror})", path=str(site)) from exc


def environment_folders(path: Path) -> list[tuple[Path, Path]]:
    """(site-packages, dist folder) for every distribution of the environment at *path*.

    Raises VerifyError when no site-packages folder is found.
    """
    sites = site_packages_dirs(path)
    if not sites:
        raise VerifyError(
            f"{path}: no site-packages folder found (looked for lib/python*/site-packages and "
            "Lib/site-packages); pass the site-packages folder itself",
            path=str(path),
        )
    return [(site, folder) for site in sites for folder in dist_folders(site)]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _read_metadata(path: Path) -> CoreMetadata:
    """The header fields of the METADATA or PKG-INFO at *path*; all None when unreadable."""
    return parse_metadata(_read_bytes(path), headers_only=True)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _script_names(text: str | None) -> frozenset[str]:
    if not text:
        return frozenset()
    names: set[str] = set()
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section in ("console_scripts", "gui_scripts") and "=" in line:
            names.add(line.split("=", 1)[0].strip())
    return frozenset(names)


def read_dist(site: Path, folder: Path, root: Path) -> InstalledDist:
    """One installed distribution: metadata, WHEEL tags, entry points, RECORD and file digests.

    Never raises for a broken distribution: an unreadable RECORD becomes
    ``files=None`` with the reason in ``problem``.
    """
    location = _display(folder, root)
    stem = folder.name.rsplit(".", 1)[0]
    guess_name, _, guess_version = stem.partition("-")
    if folder.name.endswith(".egg-info"):
        head = _read_metadata(folder / "PKG-INFO" if folder.is_dir() else folder)
        return InstalledDist(
            head.name or guess_name, head.version or guess_version.split("-")[0],
            folder.name, location, None,
            problem="installed as .egg-info (a legacy install) without a RECORD",
        )
    head = _read_metadata(folder / "METADATA")
    name, version = head.name or guess_name, head.version or guess_version
    tags = parse_wheel_file(_read_bytes(folder / "WHEEL")).tags
    scripts = _script_names(_read_text(folder / "entry_points.txt"))
    record_text = _read_text(folder / "RECORD")
    if record_text is None:
        return InstalledDist(name, version, folder.name, location, None, tags, scripts,
                             problem="no RECORD file")
    try:
        rows = parse_record(record_text)
    except InvalidDistributionError as exc:
        return InstalledDist(name, version, folder.name, location, None, tags, scripts,
                             problem=f"RECORD is unreadable ({exc.message})")
    files: dict[str, InstalledFile] = {}
    prefix = os.fspath(site) + os.sep
    for row in rows:
        target = row.path if os.path.isabs(row.path) else prefix + row.path
        if row.sha256 is None and installer_rule(row.path, folder.name, scripts):
            files[row.path] = InstalledFile(row.path, None, None)
            continue
        external = row.path.startswith(("../", "/"))
        actual, variants = hash_file(target, scripts=external)
        files[row.path] = InstalledFile(row.path, row.sha256, actual, variants)
    return InstalledDist(name, version, folder.name, location, MappingProxyType(files), tags, scripts)


def hash_file(path: str | Path, scripts: bool = False) -> tuple[str | None, frozenset[str]]:
    """The sha256 of the file at *path* (None when missing, unreadable or not a file).

    With *scripts*, also the digests with a rewritten shebang put back
    (see ``decide.shebang_variants``) for a small file starting with ``#!``.
    Plain ``os.open``/``os.read``: this runs once per installed file, and
    buffered file objects cost more than the hashing of a small module.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None, frozenset()
    try:
        data = os.read(fd, _SMALL + 1)
        if len(data) <= _SMALL:
            digest = hashlib.sha256(data).hexdigest()
            return digest, shebang_variants(data) if scripts else frozenset()
        hasher = hashlib.sha256(data)
        while chunk := os.read(fd, _SMALL):
            hasher.update(chunk)
        return hasher.hexdigest(), frozenset()
    except OSError:  # EISDIR and friends: not a regular file
        return None, frozenset()
    finally:
        os.close(fd)


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent if root.is_file() else root)) or path.name
    except ValueError:
        return str(path)


def read_wheel(path: Path, root: Path | None = None) -> WheelFile:
    """A wheel file: parsed filename, sha256 of the file, sha256 of every member.

    Raises VerifyError when the file cannot be read, is not a zip archive or
    its name is not a wheel filename.
    """
    try:
        parsed = parse_filename(path.name)
    except InvalidDistributionError as exc:
        raise VerifyError(f"{path}: {exc.message}", path=str(path)) from exc
    try:
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_SMALL):
                hasher.update(chunk)
        members: dict[str, str] = {}
        with open_zip(path, what=str(path)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                member = hashlib.sha256()
                with archive.open(info) as stream:
                    while chunk := stream.read(_SMALL):
                        member.update(chunk)
                members[info.filename] = member.hexdigest()
    except OversizedError as exc:
        raise VerifyError(exc.message, path=str(path)) from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise VerifyError(f"{path}: cannot read the wheel ({exc})", path=str(path)) from exc
    return WheelFile(
        path.name, _display(path, root or path), str(parsed.project), str(parsed.version),
        hasher.hexdigest(), MappingProxyType(members),
    )


def read_wheels(folder: Path) -> list[WheelFile]:
    """Every ``*.whl`` directly inside *folder*, sorted by filename."""
    return [read_wheel(p, folder) for p in sorted(folder.glob("*.whl"))]


