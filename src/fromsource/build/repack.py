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
``version`` of setup.cfg's ``[metadata]``.  Only the first binds every
backend (PEP 621: a backend must not change a static field).  Anywhere else
the backend may compute the version (``dynamic``, ``attr:``, a ``setup.py``
argument, which also beats setup.cfg, a VCS plugin) and a client's build
would say ``X.Y.Z``, which installers refuse as inconsistent with the
``+fs.N`` file name.  So unless ``[project]`` pins it, the repack wraps the
build backend (:func:`wrap_backend`): what a client builds from the sdist
runs :mod:`fromsource.build.local_version_backend`, which hands every hook
to the original backend and relabels what it made to the local version.
"""

from __future__ import annotations

import configparser
import gzip
import json
import os
import re
import stat
import tarfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from fromsource.build import local_version_backend as wrapper
from fromsource.build.unpack import unpack_sdist
from fromsource.errors import BuildError

__all__ = [
    "LEGACY_BACKEND",
    "LEGACY_REQUIRES",
    "Repacked",
    "repack_sdist",
    "sdist_stem",
    "set_version",
    "wrap_backend",
    "write_sdist",
]

_CHUNK = 1 << 20
_PKG_INFO_VERSION = re.compile(rb"^Version:[ \t]*[^\r\n]*", re.MULTILINE)
_TABLE = re.compile(r"^\s*\[\[?([^\[\]]+)\]\]?\s*(#.*)?$")  # [table] or [[array.of.tables]]
_TOML_VERSION = re.compile(r"""^\s*version\s*=\s*(["'])(?P<value>[^"'\n]*)\1""")
_CFG_VERSION = re.compile(r"^version\s*[=:]\s*(?P<value>[^\s#;][^\n#;]*?)\s*$")


LEGACY_REQUIRES = ("setuptools>=40.8.0",)
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
"""What frontends build an sdist without ``[build-system]`` with (PEP 517, PEP 518)."""


@dataclass(frozen=True)
class Repacked:
    """The repacked sdist, which files now carry its version, and how a client's build
    gets it: pinned by pyproject's ``[project]`` table, through the wrapper backend, or
    (*unwrapped* says why) not at all."""

    path: Path
    version_files: tuple[str, ...]
    wrapped: bool = False
    unwrapped: str | None = None

    @property
    def pinned(self) -> bool:
        """Whether pyproject.toml's static ``[project] version`` carries the new version."""
        return "pyproject.toml" in self.version_files


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


def _replace_table(text: str, table: str, body: str) -> str:
    """*text* with its ``[table]`` (header to the next header) replaced by *body*, or with
    *body* appended when it has none (appended, a header cannot capture root keys)."""
    lines = text.splitlines(keepends=True)
    start: int | None = None
    for i, line in enumerate(lines):
        header = _TABLE.match(line)
        if header is None:
            continue
        if start is not None:
            return "".join(lines[:start]) + body + "\n" + "".join(lines[i:])
        if header.group(1).strip() == table:
            start = i
    if start is not None:
        return "".join(lines[:start]) + body
    gap = "" if not text else "\n" if text.endswith("\n") else "\n\n"
    return text + gap + body


def _toml_string(value: str) -> str:
    # JSON's escapes are TOML's too; TOML also wants DEL escaped
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _original_build_system(document: dict[str, Any]) -> tuple[list[str], str, list[str]] | str:
    """The tree's (requires, build-backend, backend-path), with PEP 517/518's defaults, or
    why they cannot be read."""
    table = document.get("build-system")
    if table is None:
        return list(LEGACY_REQUIRES), LEGACY_BACKEND, []
    if not isinstance(table, dict):
        return "pyproject.toml's build-system is not a table"
    requires = table.get("requires")
    backend = table.get("build-backend", LEGACY_BACKEND)
    path = table.get("backend-path", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        return "pyproject.toml's [build-system] requires is not a list of strings"
    if not isinstance(backend, str):
        return "pyproject.toml's [build-system] build-backend is not a string"
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        return "pyproject.toml's [build-system] backend-path is not a list of strings"
    return requires, backend, path


def wrap_backend(tree: Path, version: str) -> str | None:
    """Make the tree build as *version* whatever its backend computes; None, else why not.

    Writes :mod:`~fromsource.build.local_version_backend` (its source, as
    shipped) and its settings (the original backend, its ``backend-path``,
    *version*) into ``.fromsource-backend/``, and replaces pyproject.toml's
    ``[build-system]`` (written when missing) with one naming it: the
    original ``requires`` (PEP 518's default ``setuptools>=40.8.0`` when
    there was no table, with the ``__legacy__`` backend), the wrapper as
    ``build-backend``, its folder as ``backend-path``.  The rewrite is kept
    only when it parses back to the same document with that table; when it
    cannot be made (pyproject.toml unreadable, a link, a malformed table),
    nothing is written and the reason is returned.
    """
    pyproject = tree / "pyproject.toml"
    folder = tree / wrapper.FOLDER
    if pyproject.is_symlink() or (pyproject.exists() and not pyproject.is_file()):
        return "pyproject.toml is not a regular file"
    if folder.exists() or folder.is_symlink():
        return f"the tree already has {wrapper.FOLDER}"
    try:
        text = pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""
        document = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return f"pyproject.toml does not parse ({exc})"
    original = _original_build_system(document)
    if isinstance(original, str):
        return original
    requires, backend, backend_path = original
    body = (
        "[build-system]\n"
        f"requires = {_toml_array(requires)}\n"
        f"build-backend = {_toml_string(wrapper.MODULE)}\n"
        f"backend-path = {_toml_array([wrapper.FOLDER])}\n"
    )
    table = {
        "requires": requires,
        "build-backend": wrapper.MODULE,
        "backend-path": [wrapper.FOLDER],
    }
    changed = _replace_table(text, "build-system", body)
    try:
        again = tomllib.loads(changed)
    except tomllib.TOMLDecodeError:
        again = None
    if again != {**document, "build-system": table}:
        return "pyproject.toml's [build-system] could not be rewritten in place"
    settings = {"backend": backend, "backend-path": backend_path, "version": version}
    source = resources.files("fromsource.build").joinpath("local_version_backend.py")
    folder.mkdir()
    (folder / f"{wrapper.MODULE}.py").write_bytes(source.read_bytes())
    (folder / wrapper.CONFIG).write_text(
        json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    pyproject.write_text(changed, encoding="utf-8")
    return None


def _toml_array(values: list[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


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
    *patch_tree* applied again, which gives the same tree.  Unless
    pyproject's ``[project]`` pins the version, the backend is wrapped
    (:func:`wrap_backend`).  Raises as
    :func:`~fromsource.build.unpack.unpack_sdist`, *patch_tree* and
    :func:`write_sdist`.
    """
    tree = unpack_sdist(archive, work / "tree").root
    if patch_tree is not None:
        patch_tree(tree)
    changed = set_version(tree, version)
    unwrapped = None if "pyproject.toml" in changed else wrap_backend(tree, version)
    path = write_sdist(tree, sdist_stem(project, version), work / "dist", epoch)
    wrapped = "pyproject.toml" not in changed and unwrapped is None
    return Repacked(path, changed, wrapped=wrapped, unwrapped=unwrapped)
