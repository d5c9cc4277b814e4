"""The rules for files an installer writes or rewrites, and where wheel members land.

Pure functions over paths and bytes, used by ``decide`` (comparisons) and
``inputs`` (which files get shebang variants).  Documented, rule by rule, in
``docs/verify.md`` ("Files an installer writes").
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping

from fromsource.verify.model import InstalledFile

__all__ = ["INSTALLER_METADATA", "attested_location", "installer_rule", "shebang_variants"]

INSTALLER_METADATA = frozenset({"INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json"})
"""dist-info files an installer writes (PEP 376, PEP 610 and uv's cache marker)."""

_SCRIPT_DIRS = frozenset({"bin", "Scripts"})
_WHEEL_SHEBANGS = (b"#!python", b"#!pythonw", b"#!python3")


def installer_rule(path: str, dist_info: str, scripts: frozenset[str]) -> str | None:
    """The installer rule that accounts for an installed RECORD *path*, or None.

    Rules: the dist-info's RECORD, INSTALLER, REQUESTED, direct_url.json and
    uv_cache.json; bytecode under ``__pycache__``; console/GUI script
    launchers (named in entry_points.txt) in a ``bin``/``Scripts`` folder.
    """
    head, _, tail = path.rpartition("/")
    if head == dist_info and (tail == "RECORD" or tail in INSTALLER_METADATA):
        return "installer metadata"
    if tail.endswith((".pyc", ".pyo")) and "__pycache__" in head.split("/"):
        return "bytecode"
    if head.rpartition("/")[2] in _SCRIPT_DIRS and path.startswith(("../", "/")):
        stem = tail
        for suffix in (".exe", "-script.pyw", "-script.py"):
            stem = stem.removesuffix(suffix)
        if stem in scripts:
            return "script launcher"
    return None


def shebang_variants(data: bytes) -> frozenset[str]:
    """Digests of *data* with an installer-rewritten shebang put back to a wheel's ``#!python``.

    Installers replace a first line ``#!python…`` with the environment's
    interpreter, or (for long paths) with a three-line ``/bin/sh`` trampoline.
    Empty when *data* does not start with ``#!``.
    """
    if not data.startswith(b"#!"):
        return frozenset()
    bodies = []
    first_end = data.find(b"\n")
    if first_end >= 0:
        bodies.append(data[first_end + 1 :])
    if data.startswith(b"#!/bin/sh\n'''exec'"):
        marker = data.find(b"\n' '''\n")
        if marker >= 0:
            bodies.append(data[marker + len(b"\n' '''\n") :])
    ending = b"\r\n" if data[:first_end].endswith(b"\r") else b"\n"
    return frozenset(
        hashlib.sha256(shebang + ending + body).hexdigest()
        for shebang in _WHEEL_SHEBANGS
        for body in bodies
    )


def attested_location(attested: str, installed: Mapping[str, InstalledFile]) -> str | None:
    """Where a wheel member *attested* was installed, as an installed RECORD path.

    Members under ``<name>.data/purelib|platlib/`` go into site-packages;
    ``scripts`` into a ``bin``/``Scripts`` folder; ``data`` and ``headers``
    below the prefix (matched by the path's tail, since RECORD holds them
    relative to site-packages).  None when no RECORD row matches.
    """
    top, sep, rest = attested.partition("/")
    if not (sep and top.endswith(".data")):
        return attested if attested in installed else None
    scheme, _, tail = rest.partition("/")
    if scheme in ("purelib", "platlib"):
        return tail if tail in installed else None
    for path in installed:
        if not path.startswith(("../", "/")):
            continue
        norm = posixpath.normpath(path)
        if scheme == "scripts":
            folder, _, base = norm.rpartition("/")
            if base == tail and folder.rpartition("/")[2] in _SCRIPT_DIRS:
                return path
        elif norm.endswith("/" + tail):
            return path
    return None
