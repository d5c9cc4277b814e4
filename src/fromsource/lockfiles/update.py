"""Run the format editors over lock files: detect the format, edit, write atomically.

:func:`update_text` is pure (formats are detected by
:func:`fromsource.lockfiles.read.detect_format`); :func:`update_files` reads
every file first, edits them all, and only then writes the changed
ones (each atomically: a temporary file in the same folder, fsynced, then
renamed), so an unreadable file stops the run before anything is written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fromsource.errors import LockError
from fromsource.lockfiles.model import LockUpdate, Lookup, PackageReport
from fromsource.lockfiles.pdmlock import update_pdmlock
from fromsource.lockfiles.pipfilelock import update_pipfilelock
from fromsource.lockfiles.poetrylock import update_poetrylock
from fromsource.lockfiles.pylock import update_pylock
from fromsource.lockfiles.read import FORMATS, detect_format, parse_lock, read_text
from fromsource.lockfiles.requirements import update_requirements
from fromsource.lockfiles.uvlock import update_uvlock


@dataclass(frozen=True)
class FileResult:
    """What happened to one lock file."""

    path: str
    format: str
    changed: bool
    written: bool
    packages: tuple[PackageReport, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "path": self.path,
            "format": self.format,
            "changed": self.changed,
            "written": self.written,
            "packages": [p.to_json() for p in self.packages],
            "notes": list(self.notes),
        }


def update_text(fmt: str, text: str, lookup: Lookup, *, replace: bool = False,
                origin: str = "") -> LockUpdate:
    """Edit the lock *text* of format *fmt* with the releases *lookup* gives.

    Pure (apart from what *lookup* does).  Raises LockError for an unknown
    format or a file the format's editor cannot read.
    """
    origin = origin or fmt
    editors = {
        "requirements": update_requirements,
        "uv.lock": update_uvlock,
        "poetry.lock": update_poetrylock,
        "pdm.lock": update_pdmlock,
        "pylock.toml": update_pylock,
        "Pipfile.lock": update_pipfilelock,
    }
    if fmt not in editors:
        raise LockError(f"{origin}: unknown lock format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        return editors[fmt](text, lookup, replace=replace, origin=origin)
    except (TypeError, AttributeError, ValueError) as exc:
        # A lock file is input: a value of the wrong type where the format wants a
        # list or table (found by tests/hardening/test_fuzz.py) is the file's fault;
        # ValueError covers tomlkit re-reading what an editor built from such values.
        raise LockError(
            f"{origin}: not a well-formed {fmt} ({type(exc).__name__}: {exc}); "
            "regenerate the lock file with its tool",
            path=origin,
        ) from exc


def pinned_names(fmt: str, text: str, origin: str = "") -> set[str]:
    """The project names the editor would look up in *text* (to fetch their pages early)."""
    return {p.name for p in parse_lock(fmt, text, origin or fmt)
            if p.name and p.source.kind == "index" and p.version is not None}


def write_atomic(path: Path, text: str) -> None:
    """Replace *path* with *text*: temp file in the same folder, fsync, rename; mode kept."""
    target = path.resolve()
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o644
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise LockError(f"{path}: cannot write ({exc.strerror or exc}); the file was left "
                        "unchanged", path=str(path)) from exc


def update_files(
    paths: Sequence[Path],
    lookup: Lookup,
    *,
    replace: bool = False,
    dry_run: bool = False,
    prefetch: Callable[[Iterable[str]], None] | None = None,
) -> list[FileResult]:
    """Update every lock file in *paths*; write the changed ones unless *dry_run*.

    *prefetch*, when given, receives every pinned name first (so an HTTP
    lookup can fetch pages in parallel).  Raises LockError when a file
    cannot be read, parsed or written; nothing is written when any file
    cannot be read or parsed.
    """
    texts = [(path, read_text(path)) for path in paths]
    formats = [detect_format(path.name, text) for path, text in texts]
    if prefetch is not None:
        names: set[str] = set()
        for (path, text), fmt in zip(texts, formats, strict=True):
            names |= pinned_names(fmt, text, str(path))
        prefetch(names)
    updates = [update_text(fmt, text, lookup, replace=replace, origin=str(path))
               for (path, text), fmt in zip(texts, formats, strict=True)]
    results: list[FileResult] = []
    for (path, text), update in zip(texts, updates, strict=True):
        changed = update.text != text
        if changed and not dry_run:
            write_atomic(path, update.text)
        results.append(FileResult(str(path), update.format, changed, changed and not dry_run,
                                  update.packages, update.notes))
    return results
