"""A PEP 517 backend that builds a remediated release as its ``X.Y.Z+fs.N`` local version.

fromsource serves a remediated release as a repacked sdist.  Most backends
compute the version (``dynamic``, setup.cfg ``attr:``, a ``setup.py``
argument, a VCS plugin), so a build from the patched tree says ``X.Y.Z``,
and installers refuse a build whose version is not the ``+fs.N`` of the
sdist's name.  The repack (:mod:`fromsource.build.repack`) therefore copies
this file into the sdist as
``.fromsource-backend/fromsource_local_version_backend.py``, writes
``.fromsource-backend/local_version.json`` beside it (the original backend,
its ``backend-path`` and the local version) and names it as the sdist's
build backend.  On the client, this module:

- imports the original backend (its ``backend-path`` entries, relative to
  the source tree as PEP 517 says, first on ``sys.path``) and hands every
  hook to it; the optional hooks (``get_requires_for_build_*``,
  ``prepare_metadata_for_build_*``, ``build_editable``) exist here only when
  the original has them, so a frontend falls back exactly as it would;
- rewrites what a hook made to the local version: a wheel's file name, its
  ``.dist-info`` and ``.data`` folders, ``Version`` in METADATA and RECORD
  (the renamed paths, METADATA's new hash and size); a prepared metadata
  folder's name and METADATA; an sdist's file name, top folder and
  ``PKG-INFO``, adding this backend's files and pyproject.toml when the
  original backend left them out.

It runs in the client's build environment, which holds only the original
``requires``: it uses the standard library alone, never imports fromsource,
and keeps to Python 3.6 syntax (no ``from __future__ import annotations``,
no module ``__getattr__``), as old pinned releases are built by old Pythons.
The host relabels the wheels it builds with :mod:`fromsource.build.relabel`
instead, which reads the sandbox's output through the bounded readers.
"""

# The client may run Python 3.6: typing's generics, not 3.9's or 3.10's syntax.
# ruff: noqa: UP006, UP035, UP045

import base64
import csv
import hashlib
import importlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import zipfile
from typing import Any, Callable, Dict, List, Optional, Set

FOLDER = ".fromsource-backend"
"""The sdist folder holding this backend; a name no package finder takes for a package."""
MODULE = "fromsource_local_version_backend"
"""This file's module name in the sdist (the ``build-backend`` the sdist names)."""
CONFIG = "local_version.json"
"""The settings beside it: ``backend``, ``backend-path`` and ``version``."""
OPTIONAL_HOOKS = (
    "get_requires_for_build_wheel",
    "get_requires_for_build_sdist",
    "prepare_metadata_for_build_wheel",
    "get_requires_for_build_editable",
    "prepare_metadata_for_build_editable",
    "build_editable",
)

_CHUNK = 1 << 20
_VERSION_LINE = re.compile(rb"^Version:[ \t]*([^\r\n]*)", re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def load_backend(spec: str, backend_path: List[str]) -> Any:
    """The backend object *spec* names (``module`` or ``module:object.attr``, PEP 517).

    The *backend_path* entries, relative to the working folder (the source
    tree), are put first on ``sys.path`` beforehand.  Raises what importing
    the backend raises.
    """
    for entry in reversed(backend_path):
        sys.path.insert(0, os.path.abspath(entry))
    module_name, _, attrs = spec.partition(":")
    backend: Any = importlib.import_module(module_name.strip())
    for attr in attrs.strip().split(".") if attrs.strip() else []:
        backend = getattr(backend, attr)
    return backend


def metadata_version(data: bytes) -> Optional[str]:
    """The ``Version`` header of core metadata (METADATA, PKG-INFO), None when it has none."""
    match = _VERSION_LINE.search(data[: _header_end(data)])
    return match.group(1).decode("utf-8").strip() if match else None


def set_metadata_version(data: bytes, version: str) -> bytes:
    """Core metadata *data* with its ``Version`` header set to *version*.

    Only the headers are looked at, never the description.  Raises
    ValueError when there is no ``Version`` header.
    """
    end = _header_end(data)
    head, count = _VERSION_LINE.subn(b"Version: " + version.encode("utf-8"), data[:end], 1)
    if not count:
        raise ValueError("the core metadata has no Version header to set to " + version)
    return head + data[end:]


def _header_end(data: bytes) -> int:
    match = _HEADER_END.search(data)
    return match.start() if match else len(data)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _dist_info(names: List[str], what: str) -> str:
    """The one top-level ``.dist-info`` folder holding a METADATA among *names*."""
    found = sorted(
        {n.split("/")[0] for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")}
    )
    if len(found) != 1:
        raise ValueError(f"{what}: {len(found)} .dist-info folders with a METADATA")
    return found[0]


def relabel_wheel(wheel_directory: str, filename: str, version: str) -> str:
    """Rewrite the wheel *filename* in *wheel_directory* to *version*; its new file name.

    A wheel whose file name and METADATA already say *version* is left as
    is.  Otherwise a new file replaces it, its members in the same order:
    ``.dist-info`` and ``.data`` renamed, ``Version`` in METADATA set, RECORD
    listing the renamed paths and METADATA's new hash and size.  Raises
    ValueError when the wheel has not exactly one ``.dist-info`` with a
    METADATA.
    """
    parts = filename[: -len(".whl")].split("-")
    path = os.path.join(wheel_directory, filename)
    with zipfile.ZipFile(path) as source:
        info_dir = _dist_info(source.namelist(), filename)
        metadata = source.read(info_dir + "/METADATA")
        if parts[1] == version and metadata_version(metadata) == version:
            return filename
        prefix = parts[0] + "-" + version
        renames = {info_dir: prefix + ".dist-info", info_dir[: -len(".dist-info")] + ".data":
                   prefix + ".data"}

        def renamed(member: str) -> str:
            top, sep, rest = member.partition("/")
            return renames.get(top, top) + sep + rest if sep else member

        new_metadata = set_metadata_version(metadata, version)
        new_filename = "-".join([parts[0], version] + parts[2:]) + ".whl"
        target = os.path.join(wheel_directory, new_filename)
        partial = os.path.join(wheel_directory, "." + new_filename + ".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for item in source.infolist():
                copy = zipfile.ZipInfo(renamed(item.filename), item.date_time)
                copy.external_attr = item.external_attr
                copy.compress_type = item.compress_type
                if item.filename == info_dir + "/METADATA":
                    out.writestr(copy, new_metadata)
                elif item.filename == info_dir + "/RECORD":
                    record = source.read(item).decode("utf-8")
                    out.writestr(copy, _record(record, renamed, copy.filename, new_metadata))
                elif item.is_dir():
                    out.writestr(copy, b"")
                else:
                    copy.file_size = item.file_size  # decides ZIP64 before the data is written
                    with source.open(item) as reader, out.open(copy, "w") as writer:
                        shutil.copyfileobj(reader, writer, _CHUNK)
    os.replace(partial, target)
    if target != path:
        os.remove(path)
    return new_filename


def _record(
    text: str, renamed: Callable[[str], str], record_path: str, metadata: bytes
) -> bytes:
    """RECORD *text* with every path *renamed* and METADATA's hash and size updated."""
    metadata_path = record_path.rsplit("/", 1)[0] + "/METADATA"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        member = renamed(row[0])
        if member == metadata_path:
            writer.writerow([member, _record_hash(metadata), str(len(metadata))])
        elif member == record_path:
            writer.writerow([member, "", ""])
        else:
            writer.writerow([member] + row[1:])
    return out.getvalue().encode("utf-8")


def relabel_metadata_directory(metadata_directory: str, basename: str, version: str) -> str:
    """Set the prepared ``.dist-info`` *basename* in *metadata_directory* to *version*.

    ``Version`` in its METADATA is set and the folder renamed
    ``{name}-{version}.dist-info``; the new basename is returned.
    """
    folder = os.path.join(metadata_directory, basename)
    metadata_path = os.path.join(folder, "METADATA")
    with open(metadata_path, "rb") as handle:
        metadata = handle.read()
    if metadata_version(metadata) != version:
        with open(metadata_path, "wb") as handle:
            handle.write(set_metadata_version(metadata, version))
    new_basename = basename.split("-")[0] + "-" + version + ".dist-info"
    if new_basename != basename:
        os.rename(folder, os.path.join(metadata_directory, new_basename))
    return new_basename


def relabel_sdist(sdist_directory: str, filename: str, version: str, tree: str) -> str:
    """Rewrite the sdist *filename* in *sdist_directory* to *version*; its new file name.

    The new ``{name}-{version}.tar.gz`` has every member under
    ``{name}-{version}/``, ``Version`` in its PKG-INFO set, and this backend's
    files and pyproject.toml taken from the source *tree* when the original
    backend left them out, so that it builds as *version* in turn.
    """
    if not filename.endswith(".tar.gz"):
        raise ValueError(filename + ": an sdist is a .tar.gz (PEP 517)")
    stem = filename[: -len(".tar.gz")]
    new_stem = stem.rsplit("-", 1)[0] + "-" + version
    new_filename = new_stem + ".tar.gz"
    path = os.path.join(sdist_directory, filename)
    partial = os.path.join(sdist_directory, "." + new_filename + ".part")
    carried = ["pyproject.toml", FOLDER + "/" + MODULE + ".py", FOLDER + "/" + CONFIG]
    with tarfile.open(path, "r:gz") as source, tarfile.open(
        partial, "w:gz", format=tarfile.PAX_FORMAT
    ) as out:
        seen: Set[str] = set()
        mtime = 0.0
        for member in source.getmembers():
            member.name = _moved(member.name, stem, new_stem)
            if member.islnk():
                member.linkname = _moved(member.linkname, stem, new_stem)
            seen.add(member.name)
            if member.name == new_stem + "/PKG-INFO" and member.isfile():
                data = set_metadata_version(_read_member(source, member), version)
                member.size, mtime = len(data), member.mtime
                out.addfile(member, io.BytesIO(data))
            elif member.isfile():
                out.addfile(member, source.extractfile(member))
            else:
                out.addfile(member)
        for relative in carried:
            name = new_stem + "/" + relative
            if name not in seen:
                with open(os.path.join(tree, relative), "rb") as handle:
                    data = handle.read()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, mtime
                out.addfile(info, io.BytesIO(data))
    os.replace(partial, os.path.join(sdist_directory, new_filename))
    if new_filename != filename:
        os.remove(path)
    return new_filename


def _moved(name: str, stem: str, new_stem: str) -> str:
    top, sep, rest = name.partition("/")
    return new_stem + sep + rest if top == stem else name


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)  # by its offset: the member may be renamed already
    if handle is None:
        raise ValueError(member.name + ": not a regular file")
    with handle:
        return handle.read()


# -- the hooks --------------------------------------------------------------------------------

_SETTINGS: Optional[Dict[str, Any]] = None
_BACKEND: Any = None


def _original() -> Any:
    if _SETTINGS is None:
        raise RuntimeError(
            f"{__file__}: no {CONFIG} beside this backend; it runs only inside a repacked sdist"
        )
    return _BACKEND


def _version() -> str:
    _original()
    assert _SETTINGS is not None
    version: str = _SETTINGS["version"]
    return version


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Dict[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    """PEP 517 ``build_wheel``: the original backend's wheel, relabelled to the local version.

    *metadata_directory* is not handed on: it holds the relabelled metadata,
    not the original backend's (PEP 517 lets a frontend omit it); the
    original builds its own, relabelled the same way.
    """
    filename = _original().build_wheel(wheel_directory, config_settings)
    return relabel_wheel(wheel_directory, filename, _version())


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    """PEP 517 ``build_sdist``: the original backend's sdist, relabelled to the local version."""
    filename = _original().build_sdist(sdist_directory, config_settings)
    return relabel_sdist(sdist_directory, filename, _version(), os.getcwd())


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    """PEP 517: the original backend's answer."""
    requires: List[str] = _original().get_requires_for_build_wheel(config_settings)
    return requires


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    """PEP 517: the original backend's answer."""
    requires: List[str] = _original().get_requires_for_build_sdist(config_settings)
    return requires


def get_requires_for_build_editable(
    config_settings: Optional[Dict[str, Any]] = None,
) -> List[str]:
    """PEP 660: the original backend's answer."""
    requires: List[str] = _original().get_requires_for_build_editable(config_settings)
    return requires


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None
) -> str:
    """PEP 517: the original backend's ``.dist-info``, relabelled to the local version."""
    basename = _original().prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    return relabel_metadata_directory(metadata_directory, basename, _version())


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None
) -> str:
    """PEP 660: the original backend's ``.dist-info``, relabelled to the local version."""
    basename = _original().prepare_metadata_for_build_editable(
        metadata_directory, config_settings
    )
    return relabel_metadata_directory(metadata_directory, basename, _version())


def build_editable(
    wheel_directory: str,
    config_settings: Optional[Dict[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    """PEP 660 ``build_editable``: the original backend's wheel, relabelled (see build_wheel)."""
    filename = _original().build_editable(wheel_directory, config_settings)
    return relabel_wheel(wheel_directory, filename, _version())


def _configure() -> None:
    """Inside a repacked sdist (the settings beside this file): load the original backend
    and drop the optional hooks it lacks, so a frontend sees the hooks it would see."""
    global _SETTINGS, _BACKEND
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), CONFIG)
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as handle:
        settings = json.load(handle)
    _BACKEND = load_backend(settings["backend"], settings["backend-path"])
    _SETTINGS = settings
    for name in OPTIONAL_HOOKS:
        if not hasattr(_BACKEND, name):
            del globals()[name]


_configure()
