"""``pylock.toml`` (PEP 751): read its pins; point index packages at the index's files.

:func:`read_pylock` gives one :class:`PinnedPackage` per ``[[packages]]``:
``vcs`` makes it a VCS package, ``directory`` a local folder (editable or
not), ``archive`` a direct URL or local archive (listed as its one file),
else it comes from the ``index`` it names (or an unnamed one) with its
``sdist`` and ``wheels``; ``marker`` is read as written.

Each ``[[packages]]`` entry lists its wheels and sdist with one URL and a
``hashes`` table each; installers fetch those URLs.  For every package found
on the index the editor replaces, in place: ``index`` (the repository's
simple URL), ``wheels`` (url, upload-time, size, hashes, as uv writes them),
``sdist`` (or removes it when the index serves none) and, for a remediated
release, ``version``; ``dependencies`` entries of other packages that name
the old version follow.  VCS, directory and archive packages are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC

from tomlkit.items import InlineTable, Table

from fromsource.dist.names import normalize
from fromsource.errors import LockError
from fromsource.lockfiles import _fields, _toml
from fromsource.lockfiles.model import (
    IndexFile,
    LockUpdate,
    Lookup,
    PackageReport,
    outcome,
    same_version,
)
from fromsource.lockfiles.pinned import PinnedFile, PinnedPackage, Source

FORMAT = "pylock.toml"
_ADVICE = "regenerate the file with the tool that wrote it"


def read_pylock(text: str, origin: str = FORMAT) -> tuple[PinnedPackage, ...]:
    """The pins of the PEP 751 lock *text*, in order (pure); LockError names file and line."""
    spot = _fields.Spot(FORMAT, origin, None, "", _ADVICE)
    return _fields.read_tables(text, "packages", spot, pylock_package)


def pylock_package(entry: Mapping[str, object], spot: _fields.Spot) -> PinnedPackage:
    """One ``[[packages]]`` table of a pylock.toml (read at *spot*)."""
    name, spot = _fields.named(entry, spot)
    forms = [form for form in ("vcs", "directory", "archive") if form in entry]
    if len(forms) > 1:
        raise spot.error(f"it has {' and '.join(forms)}; a package comes from one of them")
    files: list[PinnedFile] = []
    form = forms[0] if forms else "index"
    table = (_fields.table(entry, form, spot) or {}) if forms else {}
    if form == "vcs":
        source = Source("vcs", _fields.text(table, "url", spot) or _fields.text(table, "path", spot),
                        _fields.text(table, "type", spot) or "vcs")
    elif form == "directory":
        source = Source("path", _fields.required_text(table, "path", spot), "directory",
                        _fields.flag(table, "editable", spot))
    elif form == "archive":
        files.append(_pylock_file(table, spot))
        url = _fields.text(table, "url", spot)
        source = Source("url" if url else "path", url or _fields.text(table, "path", spot),
                        "archive")
    else:
        source = Source("index", _fields.text(entry, "index", spot))
        sdist = _fields.table(entry, "sdist", spot)
        files += [_pylock_file(f, spot) for f in [*([sdist] if sdist is not None else []),
                                                 *_fields.tables(entry, "wheels", spot)]]
    return PinnedPackage(
        normalize(name), name, _fields.text(entry, "version", spot), spot.origin, spot.line,
        source, marker=_fields.marker(entry, "marker", spot),
        hashes=frozenset(f.sha256 for f in files if f.sha256), files=tuple(files))


def _pylock_file(entry: Mapping[str, object], spot: _fields.Spot) -> PinnedFile:
    url, path = _fields.text(entry, "url", spot), _fields.text(entry, "path", spot)
    filename = _fields.text(entry, "name", spot) or _fields.filename_of(url or path or "")
    if not filename:
        raise spot.error("a file entry has no name, url or path")
    return PinnedFile(filename, url, _fields.hash_table(entry, "hashes", spot), path)


def _entry(f: IndexFile, with_name: bool) -> str:
    pairs: list[tuple[str, str]] = []
    if with_name:
        pairs.append(("name", _toml.string(f.filename)))
    pairs.append(("url", _toml.string(f.url)))
    if f.upload_time is not None:
        pairs.append(("upload-time", f.upload_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
    if f.size is not None:
        pairs.append(("size", str(f.size)))
    pairs.append(("hashes", _toml.inline([("sha256", _toml.string(f.sha256))], spaced=True)))
    return _toml.inline(pairs, spaced=True)


def _names_files(pkg: Table) -> bool:
    """Whether the entry's files carry a ``name`` key (the rewrite keeps that layout)."""
    wheels = _toml.plain(pkg.get("wheels")) or []
    sdist = _toml.plain(pkg.get("sdist"))
    entries = [*wheels, *([sdist] if isinstance(sdist, dict) else [])]
    return any(isinstance(e, dict) and "name" in e for e in entries)


def update_pylock(text: str, lookup: Lookup, *, replace: bool = False,
                  origin: str = "pylock.toml") -> LockUpdate:
    """Point every index package of the PEP 751 lock *text* at the index's files.

    Pure.  Raises LockError when *text* is not TOML or has no ``[[packages]]``.
    """
    del replace  # single-hash format: always replaced
    doc = _toml.parse(text, origin, "lock file")
    if "packages" not in doc:
        raise LockError(f"{origin}: no [[packages]]; is this a PEP 751 lock file?", path=origin)
    reports: list[PackageReport] = []
    notes: list[str] = []
    moved: dict[str, tuple[str, str]] = {}
    spot = _fields.Spot(FORMAT, origin, None, "", _ADVICE)
    for found in _toml.found_on_index(doc, "packages", text, spot, pylock_package, lookup,
                                      reports):
        pkg, name, version, release = found.table, found.pinned.label, found.version, found.release
        with_name = _names_files(pkg)
        changed = _toml.put_after(pkg, "index", _toml.string(release.index_url), after="version")
        if release.sdist is not None:
            changed |= _toml.put_after(pkg, "sdist", _entry(release.sdist, with_name), after="index")
        elif _toml.remove(pkg, "sdist"):
            changed = True
            notes.append(f"{name}: sdist entry removed, the index serves none")
        wheels = [_entry(f, with_name) for f in release.wheels]
        if wheels:
            multiline = len(wheels) > 1 or _toml.is_multiline(pkg, "wheels")
            changed |= _toml.put(pkg, "wheels", _toml.array(
                wheels, multiline=multiline, indent=_toml.indent_of(pkg, "wheels")))
        else:
            changed |= _toml.remove(pkg, "wheels")
        if not same_version(version, release.version):
            changed |= _toml.put(pkg, "version", _toml.string(release.version))
            moved[normalize(name)] = (version, release.version)
        reports.append(outcome(name, version, release, changed))
    for pkg in _toml.tables(doc, "packages"):
        for ref in pkg.get("dependencies") or []:
            if isinstance(ref, InlineTable):
                _retarget(ref, moved)
    return LockUpdate(FORMAT, doc.as_string(), tuple(reports), tuple(notes))


def _retarget(ref: InlineTable, moved: dict[str, tuple[str, str]]) -> None:
    name, version = ref.get("name"), _toml.plain(ref.get("version"))
    if not isinstance(name, str) or not isinstance(version, str):
        return
    old_new = moved.get(normalize(name))
    if old_new and same_version(version, old_new[0]):
        ref["version"] = old_new[1]
