"""``uv.lock``: read its pins; point registry packages at the index's files (single-hash format).

:func:`read_uvlock` gives one :class:`PinnedPackage` per ``[[package]]``:
``source = { registry = URL }`` is an index package, ``git`` a VCS one,
``path``/``directory``/``editable``/``virtual`` a local path (the last two
are workspace projects), ``url`` a direct URL.

The marker says where the package is installed.  uv writes a universal
lock and puts the condition on the edge (``dependencies = [{ name =
"pywin32", marker = "sys_platform == 'win32'" }]``), listing the package
itself with none, so the reader derives it from the dependency graph
(:mod:`fromsource.lockfiles._graph`): the roots are the workspace (a
``virtual``, ``editable`` or ``directory`` source, or a name in ``[manifest]
members``; packages nobody depends on are roots too), the edges are each
package's ``dependencies`` and every group of its ``optional-dependencies``
and ``dev-dependencies`` (extras and groups are not known here, so all
count) with their markers, and a package is installed where some root
reaches it through edges whose markers hold, and where its own
``resolution-markers`` hold.  Where the lock holds several versions of one
name (uv's forks) an edge names the one it means with ``version`` and
``source``; an edge that matches none of them is taken to mean each.  A
marker that would grow too large is given up for none (installed
everywhere), and an edge marker naming ``extra`` (uv's conflict markers)
counts as true: a pin is never left out by a guess.

uv records one URL and one hash per wheel and sdist, and ``uv sync --frozen``
downloads exactly those URLs, so for each package found on the index the
editor replaces, in place and in uv's own layout:

- ``source = { registry = ... }`` with the index's repository URL;
- ``wheels`` with the index's wheels (url, hash, size and, when the lock
  records upload times, upload-time);
- ``sdist`` with the index's sdist, or removes it when the index serves none
  (keeping an upstream sdist would let an install fall back to it);
- ``version`` with ``X.Y.Z+fs.N`` when a remediated release was chosen;

and rewrites the references other packages hold to it (``dependencies``
entries that name its old registry or version).  ``replace`` makes no
difference here: a single-hash format is always replaced.  Packages with a
non-registry source (the project itself, git, path, URL) are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tomlkit.items import InlineTable, Table
from tomlkit.toml_document import TOMLDocument

from fromsource.dist.names import normalize
from fromsource.lockfiles import _fields, _graph, _toml
from fromsource.lockfiles.model import (
    IndexFile,
    LockUpdate,
    Lookup,
    PackageReport,
    outcome,
    same_version,
)
from fromsource.lockfiles.pinned import PinnedFile, PinnedPackage, Source, SourceKind

FORMAT = "uv.lock"
_ADVICE = "regenerate the file with `uv lock`"
_SOURCES: dict[str, SourceKind] = {"registry": "index", "git": "vcs", "url": "url",
                                   "path": "path", "directory": "path", "editable": "path",
                                   "virtual": "path"}
_MEMBER_FORMS = ("virtual", "editable", "directory")
_REFERENCE_KEYS = ("dependencies", "optional-dependencies", "dev-dependencies")


def read_uvlock(text: str, origin: str = FORMAT) -> tuple[PinnedPackage, ...]:
    """The pins of the uv.lock *text*, in order, each with the marker under which it is
    installed (from the dependency graph); pure; LockError names file and line."""
    spot = _fields.Spot(FORMAT, origin, None, "", _ADVICE)
    doc = _fields.load_toml(text, origin, _ADVICE)
    entries = _fields.package_tables(doc, "package", text, spot)
    pins = [uv_package(entry, at) for entry, at in entries]
    markers = _graph.needed_markers(
        len(pins), _roots(doc, pins, spot), _edges(entries, pins), [p.marker for p in pins])
    return tuple(replace(pin, marker=marker) for pin, marker in zip(pins, markers, strict=True))


def _roots(doc: Mapping[str, object], pins: Sequence[PinnedPackage],
           spot: _fields.Spot) -> list[int]:
    """The workspace's packages: a virtual, editable or directory source, or a name in
    ``[manifest] members``."""
    manifest = _fields.table(doc, "manifest", spot.named("[manifest]")) or {}
    members = {normalize(m) for m in _fields.strings(manifest, "members", spot.named("[manifest]"))}
    return [n for n, pin in enumerate(pins)
            if pin.source.form in _MEMBER_FORMS or pin.name in members]


def _dependencies(entry: Mapping[str, object], spot: _fields.Spot) -> list[Mapping[str, object]]:
    """Every dependency *entry* lists: ``dependencies`` and each group of
    ``optional-dependencies`` and ``dev-dependencies`` (all of them: extras and groups are
    not known here, so all count)."""
    found = list(_fields.tables(entry, "dependencies", spot))
    for key in _REFERENCE_KEYS[1:]:
        groups = _fields.table(entry, key, spot) or {}
        for group in groups:
            found += _fields.tables(groups, group, spot)
    return found


def _edges(entries: Sequence[tuple[Mapping[str, object], _fields.Spot]],
           pins: Sequence[PinnedPackage]) -> list[_graph.Edge]:
    """The dependency edges between *pins*, each with its ``marker``.

    A dependency names a package by name; where the lock holds several
    versions of that name (uv's forks) it also gives ``version`` and
    ``source``, which pick the one meant.  A dependency that picks none of
    them is taken to mean each (so nothing is left out); one naming a package
    the lock does not list is ignored.
    """
    by_name: dict[str, list[int]] = {}
    for n, pin in enumerate(pins):
        by_name.setdefault(pin.name or pin.label, []).append(n)
    edges: list[_graph.Edge] = []
    for parent, (entry, spot) in enumerate(entries):
        spot = spot.named(f"package {pins[parent].label}")
        for dep in _dependencies(entry, spot):
            name = normalize(_fields.required_text(dep, "name", spot))
            marker = _fields.marker(dep, "marker", spot)
            candidates = by_name.get(name, [])
            if len(candidates) > 1:
                version = _fields.text(dep, "version", spot)
                source = _fields.table(dep, "source", spot)
                picked = [n for n in candidates
                          if (version is None or same_version(version, pins[n].version or ""))
                          and (source is None or source == entries[n][0].get("source"))]
                candidates = picked or candidates
            edges += [_graph.Edge(parent, child, marker) for child in candidates]
    return edges


def uv_package(entry: Mapping[str, object], spot: _fields.Spot) -> PinnedPackage:
    """One ``[[package]]`` table of a uv.lock (read at *spot*)."""
    name, spot = _fields.named(entry, spot)
    source = _uv_source(_fields.table(entry, "source", spot), spot)
    sdist = _fields.table(entry, "sdist", spot)
    files = [_uv_file(f, source, spot)
             for f in [*([sdist] if sdist is not None else []),
                       *_fields.tables(entry, "wheels", spot)]]
    return PinnedPackage(
        normalize(name), name, _fields.text(entry, "version", spot), spot.origin, spot.line,
        source, marker=_fields.marker(entry, "resolution-markers", spot),
        hashes=frozenset(f.sha256 for f in files if f.sha256), files=tuple(files))


def _uv_source(source: Mapping[str, object] | None, spot: _fields.Spot) -> Source:
    forms = [key for key in source or {} if key in _SOURCES]
    if source is None or len(forms) != 1:
        raise spot.error(f"`source` names {len(forms)} of {', '.join(_SOURCES)}, not one")
    form = forms[0]
    return Source(_SOURCES[form], _fields.required_text(source, form, spot), form,
                  editable=form == "editable")


def _uv_file(entry: Mapping[str, object], source: Source, spot: _fields.Spot) -> PinnedFile:
    url, path = _fields.text(entry, "url", spot), _fields.text(entry, "path", spot)
    where = url or path or (source.location if source.kind == "url" else None)
    filename = _fields.text(entry, "filename", spot) or (_fields.filename_of(where) if where else "")
    if not filename:
        raise spot.error("a file entry has no url, path or filename")
    digest = _fields.text(entry, "hash", spot)
    return PinnedFile(filename, url, _fields.prefixed_hash(digest, spot) if digest else None, path)


@dataclass(frozen=True)
class _Moved:
    name: str
    old_version: str
    old_registry: str
    new_version: str
    new_registry: str


def uv_time(moment: datetime) -> str:
    """A timestamp as uv writes it: UTC, milliseconds, ``Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _wants_upload_time(doc: TOMLDocument) -> bool:
    """Whether this lock records upload times (newer revisions, or any entry already has one)."""
    revision = _toml.plain(doc.get("revision"))
    if isinstance(revision, int) and revision >= 3:
        return True
    for pkg in _toml.tables(doc, "package"):
        entries = list(_toml.plain(pkg.get("wheels")) or [])
        sdist = _toml.plain(pkg.get("sdist"))
        if isinstance(sdist, dict):
            entries.append(sdist)
        if any(isinstance(e, dict) and "upload-time" in e for e in entries):
            return True
    return False


def _entry(f: IndexFile, upload_time: bool) -> str:
    pairs = [("url", _toml.string(f.url)), ("hash", _toml.string(f"sha256:{f.sha256}"))]
    if f.size is not None:
        pairs.append(("size", str(f.size)))
    if upload_time and f.upload_time is not None:
        pairs.append(("upload-time", _toml.string(uv_time(f.upload_time))))
    return _toml.inline(pairs, spaced=True)


def _key_before(pkg: Table, key: str) -> str | None:
    keys = list(pkg.keys())
    if key in keys and keys.index(key) > 0:
        return str(keys[keys.index(key) - 1])
    return str(keys[-1]) if keys and key not in keys else None


def update_uvlock(text: str, lookup: Lookup, *, replace: bool = False,
                  origin: str = "uv.lock") -> LockUpdate:
    """Point every registry package of the uv.lock *text* at the index's files.

    Pure.  Raises LockError when *text* is not TOML.
    """
    del replace  # single-hash format: always replaced
    doc = _toml.parse(text, origin, "lock file with `uv lock`")
    upload_time = _wants_upload_time(doc)
    reports: list[PackageReport] = []
    notes: list[str] = []
    moved: list[_Moved] = []
    spot = _fields.Spot(FORMAT, origin, None, "", _ADVICE)
    for found in _toml.found_on_index(doc, "package", text, spot, uv_package, lookup, reports):
        pkg, pinned, version, release = found.table, found.pinned, found.version, found.release
        changed = _toml.put(pkg, "source", _toml.inline(
            [("registry", _toml.string(release.index_url))], spaced=True))
        if release.sdist is not None:
            changed |= _toml.put_after(pkg, "sdist", _entry(release.sdist, upload_time),
                                       after=_key_before(pkg, "wheels") or "version")
        elif _toml.remove(pkg, "sdist"):
            changed = True
            notes.append(f"{pinned.label}: sdist entry removed, the index serves none")
        wheels = [_entry(f, upload_time) for f in release.wheels]
        if wheels:
            indent = _toml.indent_of(pkg, "wheels")
            changed |= _toml.put(pkg, "wheels", _toml.array(wheels, multiline=True, indent=indent))
        else:
            changed |= _toml.remove(pkg, "wheels")
        if not same_version(version, release.version):
            changed |= _toml.put(pkg, "version", _toml.string(release.version))
        reports.append(outcome(pinned.label, version, release, changed))
        if changed:
            moved.append(_Moved(pinned.label, version, pinned.source.location or "",
                                release.version, release.index_url))
    for pkg in _toml.tables(doc, "package"):
        for ref in _references(pkg):
            _retarget(ref, moved)
    return LockUpdate(FORMAT, doc.as_string(), tuple(reports), tuple(notes))


def _references(pkg: Table) -> list[InlineTable]:
    """The inline tables in *pkg* that name another package (dependencies and extras)."""
    found: list[InlineTable] = []
    for key in _REFERENCE_KEYS:
        value: Any = pkg.get(key)
        groups = value.values() if isinstance(value, Table) else [value]
        for group in groups:
            if isinstance(group, list):
                found.extend(item for item in group if isinstance(item, InlineTable))
    return found


def _retarget(ref: InlineTable, moved: list[_Moved]) -> None:
    """Follow a package's move in a reference that pins its registry or version."""
    name = ref.get("name")
    if not isinstance(name, str):
        return
    for move in moved:
        if normalize(name) != normalize(move.name):
            continue
        version = _toml.plain(ref.get("version"))
        if isinstance(version, str) and not same_version(version, move.old_version):
            continue
        source = _toml.plain(ref.get("source"))
        if isinstance(source, dict) and source.get("registry") not in (None, move.old_registry):
            continue
        if isinstance(version, str) and not same_version(version, move.new_version):
            ref["version"] = move.new_version
        if isinstance(source, dict) and source.get("registry") != move.new_registry:
            ref["source"] = _toml.value("source", _toml.inline(
                [("registry", _toml.string(move.new_registry))], spaced=True))
        return
