"""A patched source tree repacked as a reproducible ``X.Y.Z+fs.N`` sdist.

A remediated release is served as an sdist too: the upstream sdist's tree
with the patch series applied, its version raised to the local version the
wheel carries, packed so that the same tree gives the same bytes:

- members sorted by path, regular files and symlinks only (no directory
  entries), under the one top folder ``{name}-{version}/``;
- every mtime SOURCE_DATE_EPOCH, uid and gid 0 with empty owner names, mode
  0644 (0755 when the file had any execute bit), POSIX pax format;
- gzip with mtime 0, no file name in its header, level 9.

The version is rewritten where it is written down: ``PKG-INFO`` always, the
static ``version`` of pyproject.toml's ``[project]`` table and the literal
``version`` of setup.cfg's ``[metadata]``.  A backend that computes its
version (``dynamic``, ``attr:``, a ``setup.py`` argument, a VCS plugin) still
says ``X.Y.Z`` when built locally, and installers refuse that build as
inconsistent with the ``+fs.N`` file name; :func:`repack_sdist` says so in
its result.
"""

from __future__ import annotations

import configparser
import gzip
import os
import re
import stat
import tarfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from fromsource.build.unpack import unpack_sdist
from fromsource.errors import BuildError

__all__ = ["Repacked", "repack_sdist", "sdist_stem", "set_version", "write_sdist"]

_CHUNK = 1 << 20
_PKG_INFO_VERSION = re.compile(rb"^Version:[ \t]*[^\r\n]*", re.MULTILINE)
_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
_TOML_VERSION = re.compile(r"""^\s*version\s*=\s*(["'])(?P<value>[^"'\n]*)\1""")
_CFG_VERSION = re.compile(r"^version\s*[=:]\s*(?P<value>[^\s#;][^\n#;]*?)\s*$")


@dataclass(frozen=True)
class Repacked:
    """The repacked sdist and which files now carry its version."""

    path: Path
    version_files: tuple[str, ...]

    @property
    def static_version(self) -> bool:
        """Whether a build metadata file (not only PKG-INFO) carries the new version."""
        return any(f != "PKG-INFO" for f in self.version_files)


def sdist_stem(project: str, version: str) -> str:
    """``{name}-{version}`` as PEP 625 spells an sdist: normalized name with underscores."""
    return f"{canonicalize_name(project).replace('-', '_')}-{Version(version)}"


def _replace_in_table(text: str, table: str, pattern: re.Pattern[str], value: str) -> str | None:
    """*text* with the ``value`` group of the first *pattern* line in ``[table]`` set, or None."""
    lines = text.splitlines(keepends=True)
    inside = False
    for i, line in enumerate(lines):
        header = _TABLE.match(line)
        if header:
            inside = header.group(1).strip() == table
            continue
        if inside and (match := pattern.match(line)):
            lines[i] = line[: match.start("value")] + value + line[match.end("value") :]
            return "".join(lines)
    return None


def _pyproject(text: str, version: str) -> str | None:
    try:
        project = tomllib.loads(text).get("project")
    except tomllib.TOMLDecodeError:
        return None
    if not isinstance(project, dict) or "version" not in project:
        return None
    if "version" in (project.get("dynamic") or []):
        return None
    changed = _replace_in_table(text, "project", _TOML_VERSION, version)
    if changed is None:
        return None
    try:  # only a rewrite that still parses to the new version is kept
        again = tomllib.loads(changed)["project"]["version"]
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        return None
    return changed if again == version else None


def _setup_cfg(text: str, version: str) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
        current = parser.get("metadata", "version", fallback=None)
    except configparser.Error:
        return None
    if current is None or current.strip().startswith(("attr:", "file:")):
        return None
    return _replace_in_table(text, "metadata", _CFG_VERSION, version)


def set_version(tree: Path, version: str) -> tuple[str, ...]:
    """Write *version* into the tree's PKG-INFO and static build metadata; the files changed.

    Raises BuildError when the tree has no PKG-INFO with a ``Version:`` line.
    """
    changed: list[str] = []
    pkg_info = tree / "PKG-INFO"
    raw = pkg_info.read_bytes() if pkg_info.is_file() else b""
    new, count = _PKG_INFO_VERSION.subn(b"Version: " + version.encode(), raw, count=1)
    if not count:
        raise BuildError(
            f"{tree.name}: PKG-INFO has no Version line to raise to {version}; "
            "the sdist was not repacked",
            category="build-failed",
        )
    pkg_info.write_bytes(new)
    changed.append("PKG-INFO")
    for name, rewrite in (("pyproject.toml", _pyproject), ("setup.cfg", _setup_cfg)):
        path = tree / name
        if path.is_file() and not path.is_symlink():
            text = path.read_text(encoding="utf-8")
            result = rewrite(text, version)
            if result is not None and result != text:
                path.write_text(result, encoding="utf-8")
                changed.append(name)
    return tuple(changed)


def _members(tree: Path) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, path) of every file and symlink below *tree*, sorted by path."""
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(tree):
        here = Path(folder)
        for name in dirs:
            if (here / name).is_symlink():
                files.append(name)  # a link to a folder is a member, never followed
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
        for name in files:
            path = here / name
            found.append((path.relative_to(tree).as_posix(), path))
    return iter(sorted(found))


def write_sdist(tree: Path, top: str, dest: Path, epoch: int) -> Path:
    """Pack *tree* as ``dest/{top}.tar.gz`` with every member under ``{top}/``; return it.

    The same tree, *top* and *epoch* always give the same bytes (with the
    same zlib).  Raises BuildError when something in the tree is neither a
    regular file nor a symlink.
    """
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{top}.tar.gz"
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for relative, path in _members(tree):
            info = tarfile.TarInfo(f"{top}/{relative}")
            info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
                tar.addfile(info)
                continue
            if not stat.S_ISREG(mode):
                raise BuildError(
                    f"{path}: not a regular file or symlink; the patched tree cannot be "
                    "packed as an sdist",
                    category="build-failed",
                )
            info.mode = 0o755 if mode & 0o111 else 0o644
            info.size = path.stat().st_size
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return target


def repack_sdist(
    archive: Path,
    work: Path,
    *,
    project: str,
    version: str,
    epoch: int,
    patch_tree: Callable[[Path], None] | None,
) -> Repacked:
    """The sdist *archive* unpacked afresh in *work*, patched, relabelled *version*, repacked.

    The tree the wheel was built from cannot serve: the build wrote into it.
    So the archive is unpacked again (with the unpack step's checks) and
    *patch_tree* applied again, which gives the same tree.  Raises as
    :func:`~fromsource.build.unpack.unpack_sdist`, *patch_tree* and
    :func:`write_sdist`.
    """
    tree = unpack_sdist(archive, work / "tree").root
    if patch_tree is not None:
        patch_tree(tree)
    changed = set_version(tree, version)
    path = write_sdist(tree, sdist_stem(project, version), work / "dist", epoch)
    return Repacked(path, changed)
