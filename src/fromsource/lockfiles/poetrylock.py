"""``poetry.lock``: read its pins; add the index's hashes to each package's ``files`` (multi-hash).

:func:`read_poetrylock` gives one :class:`PinnedPackage` per ``[[package]]``:
without ``[package.source]`` it comes from the project's primary index
(unnamed in the lock), ``type = "legacy"`` names another index's URL,
``git`` is a VCS package, ``directory``/``file`` local ones (``develop =
true``: editable), ``url`` a direct URL.  ``markers`` (a string, or a table
per dependency group, joined with ``or``) and the ``files`` list (or, in
lock-version 1.x, ``[metadata.files]``) are read as written.  Before
lock-version 2.1 Poetry wrote no package markers, only one per dependency
(``colorama = {version = "*", markers = "platform_system == \"Windows\""}``
under ``[package.dependencies]``): there each package's marker is derived
from that graph (:mod:`fromsource.lockfiles._graph`), the packages nobody
depends on taken as the roots (the project itself is not in the lock, so
its own direct dependencies count as always needed).

Poetry keeps ``files = [{file = ..., hash = ...}]`` per package and accepts a
download whose filename and hash appear there.  Our entries are appended
(``replace=True`` swaps the list for ours); for a remediated release the
``version`` becomes ``X.Y.Z+fs.N`` (dependents' constraints such as ``1.0``
still match it under PEP 440's local-version rule, so they stay).

Poetry downloads through the source named in ``pyproject.toml`` (the lock's
``[package.source]`` only names it), so the lock records no URL to change;
the install must reach the index through that source.  Lock files of
lock-version 1.x keep the lists under ``[metadata.files]``; those are edited
there.  Git, directory, file and URL packages are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from tomlkit.items import Table
from tomlkit.toml_document import TOMLDocument

from fromsource.dist.names import normalize
from fromsource.lockfiles import _fields, _graph, _toml
from fromsource.lockfiles.model import LockUpdate, Lookup, PackageReport, outcome, same_version
from fromsource.lockfiles.pinned import INDEX, PinnedFile, PinnedPackage, Source, SourceKind

FORMAT = "poetry.lock"
_ADVICE = "regenerate the file with `poetry lock`"
_SOURCES: dict[str, SourceKind] = {"legacy": "index", "git": "vcs", "directory": "path",
                                   "file": "path", "url": "url"}


def read_poetrylock(text: str, origin: str = FORMAT) -> tuple[PinnedPackage, ...]:
    """The pins of the poetry.lock *text*, in order (pure); LockError names file and line.

    Before lock-version 2.1 each pin's marker is derived from the dependency graph.
    """
    doc = _fields.load_toml(text, origin, _ADVICE)
    spot = _fields.Spot(FORMAT, origin, None, "", _ADVICE)
    legacy = _legacy_files(doc, spot)
    entries = _fields.package_tables(doc, "package", text, spot)
    pins = [poetry_package(entry, at, legacy) for entry, at in entries]
    if _records_markers(doc, spot):
        return tuple(pins)
    markers = _graph.needed_markers(len(pins), [], _edges(entries, pins),
                                    [p.marker for p in pins])
    return tuple(replace(pin, marker=marker) for pin, marker in zip(pins, markers, strict=True))


def _records_markers(doc: Mapping[str, object], spot: _fields.Spot) -> bool:
    """Whether the lock gives each package the markers under which it is installed (Poetry
    writes them from lock-version 2.1; a package without is installed everywhere)."""
    metadata = _fields.table(doc, "metadata", spot.named("[metadata]")) or {}
    written = metadata.get("lock-version")
    try:
        return isinstance(written, str) and Version(written) >= Version("2.1")
    except InvalidVersion:
        return False


def _edges(entries: Sequence[tuple[Mapping[str, object], _fields.Spot]],
           pins: Sequence[PinnedPackage]) -> list[_graph.Edge]:
    """The ``[package.dependencies]`` edges between *pins*, each with its ``markers``.

    A dependency names a package by name and a version constraint (or a list
    of them, each with its markers); where the lock holds several versions of
    that name, the constraint picks those it allows, and one that picks none
    (or is not PEP 440) is taken to mean each.
    """
    by_name: dict[str, list[int]] = {}
    for n, pin in enumerate(pins):
        by_name.setdefault(pin.name or pin.label, []).append(n)
    edges: list[_graph.Edge] = []
    for parent, (entry, spot) in enumerate(entries):
        spot = spot.named(f"package {pins[parent].label}")
        for name, value in (_fields.table(entry, "dependencies", spot) or {}).items():
            for constraint in value if isinstance(value, list) else [value]:
                version: str | None
                if isinstance(constraint, str):
                    version, marker = constraint, None
                elif isinstance(constraint, Mapping):
                    version = _fields.text(constraint, "version", spot)
                    marker = _fields.marker(constraint, "markers", spot)
                else:
                    raise spot.error(f"dependency {name!r} is not a constraint or a table")
                candidates = by_name.get(normalize(name), [])
                picked = [n for n in candidates if _allows(version, pins[n].version)]
                edges += [_graph.Edge(parent, child, marker) for child in picked or candidates]
    return edges


def _allows(constraint: str | None, version: str | None) -> bool:
    """Whether the PEP 440 *constraint* allows *version* (True when either is not PEP 440)."""
    if not constraint or version is None:
        return True
    try:
        return SpecifierSet(constraint).contains(version, prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return True


def _legacy_files(doc: Mapping[str, object], spot: _fields.Spot) -> Mapping[str, object]:
    """``[metadata.files]`` of a lock-version 1.x file (file lists by package name), or {}."""
    metadata = _fields.table(doc, "metadata", spot.named("[metadata]")) or {}
    return _fields.table(metadata, "files", spot.named("[metadata]")) or {}


def poetry_package(entry: Mapping[str, object], spot: _fields.Spot,
                   legacy_files: Mapping[str, object]) -> PinnedPackage:
    """One ``[[package]]`` table of a poetry.lock (read at *spot*).

    *legacy_files* is ``[metadata.files]``, where lock-version 1.x keeps the
    file lists.
    """
    name, spot = _fields.named(entry, spot)
    source = INDEX
    table = _fields.table(entry, "source", spot)
    if table is not None:
        form = _fields.required_text(table, "type", spot)
        if form not in _SOURCES:
            raise spot.error(f"unknown source type {form!r}")
        source = Source(_SOURCES[form], _fields.text(table, "url", spot), form,
                        _fields.flag(entry, "develop", spot))
    listed = (_fields.tables(legacy_files, name, spot)
              if "files" not in entry and name in legacy_files
              else _fields.tables(entry, "files", spot))
    files = [PinnedFile(_fields.required_text(item, "file", spot), None,
                        _fields.prefixed_hash(_fields.required_text(item, "hash", spot), spot))
             for item in listed]
    return PinnedPackage(
        normalize(name), name, _fields.text(entry, "version", spot), spot.origin, spot.line,
        source, marker=_fields.marker(entry, "markers", spot),
        hashes=frozenset(f.sha256 for f in files if f.sha256), files=tuple(files))


def _files_home(doc: TOMLDocument, pkg: Table, name: str) -> tuple[Table, str]:
    """The table and key holding *pkg*'s file list (the package, or ``[metadata.files]``)."""
    if "files" not in pkg:
        metadata = doc.get("metadata")
        files = metadata.get("files") if isinstance(metadata, Table) else None
        if isinstance(files, Table) and name in files:
            return files, name
    return pkg, "files"


def update_poetrylock(text: str, lookup: Lookup, *, replace: bool = False,
                      origin: str = "poetry.lock") -> LockUpdate:
    """Add (or, with *replace*, swap in) the index's hashes in the poetry.lock *text*.

    Pure.  Raises LockError when *text* is not TOML.
    """
    doc = _toml.parse(text, origin, "lock file with `poetry lock`")
    reports: list[PackageReport] = []
    spot = _fields.Spot(FORMAT, origin, None, "", _ADVICE)
    legacy = _legacy_files(doc.unwrap(), spot)
    for found in _toml.found_on_index(
            doc, "package", text, spot, lambda entry, at: poetry_package(entry, at, legacy),
            lookup, reports):
        pkg, version, release = found.table, found.version, found.release
        home, key = _files_home(doc, pkg, found.pinned.label)
        current = home.get(key)
        texts = [] if replace else [item.as_string().strip() for item in (current or [])]
        have = set() if replace else {(f.filename, f"sha256:{f.sha256}")
                                      for f in found.pinned.files}
        for f in release.files:
            pair = (f.filename, f"sha256:{f.sha256}")
            if pair not in have:
                texts.append(_toml.inline(
                    [("file", _toml.string(pair[0])), ("hash", _toml.string(pair[1]))],
                    spaced=False))
                have.add(pair)
        changed = _toml.put(home, key, _toml.array(
            texts, multiline=True, indent=_toml.indent_of(home, key)))
        if not same_version(version, release.version):
            changed |= _toml.put(pkg, "version", _toml.string(release.version))
        reports.append(outcome(found.pinned.label, version, release, changed))
    return LockUpdate(FORMAT, doc.as_string(), tuple(reports))
