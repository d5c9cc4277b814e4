"""``Pipfile.lock``: read its pins; add the index's hashes to each package's ``hashes``.

:func:`read_pipfilelock` gives one :class:`PinnedPackage` per entry of each
package category: ``git``/``hg``/``svn``/``bzr`` make it a VCS package,
``path`` a local one, ``file`` a direct URL, else it comes from the index
its ``index`` names in ``_meta.sources`` (or an unnamed one).  A ``==X``
version allows local versions (pip reads it), ``===X`` does not; anything
else pins no version.  The format lists hashes, not files.

The file is JSON; it is read with its key order and written back with the
indentation, separators and final newline it had (pipenv writes 4 spaces,
sorted keys and a newline), so only the edited values change.  Our
``sha256:`` entries are appended (``replace=True`` swaps the list for ours),
kept sorted when the list was sorted; for a remediated release ``version``
becomes ``==X.Y.Z+fs.N``.  Every top-level section but ``_meta`` is a package
category (``default``, ``develop`` and custom ones).  Entries without a
``==`` version (git, path, file, editable) are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fromsource.dist.names import normalize
from fromsource.errors import LockError
from fromsource.lockfiles import _fields
from fromsource.lockfiles.model import (
    LockUpdate,
    Lookup,
    PackageReport,
    index_release,
    outcome,
    same_version,
)
from fromsource.lockfiles.pinned import INDEX, PinnedPackage, Source, SourceKind

FORMAT = "Pipfile.lock"
_ADVICE = "regenerate the file with `pipenv lock`"
_SOURCES: dict[str, SourceKind] = {"git": "vcs", "hg": "vcs", "svn": "vcs", "bzr": "vcs",
                                   "path": "path", "file": "url"}
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"\s*:|"(?:[^"\\]|\\.)*"|[{}\[\]\n]')


def read_pipfilelock(text: str, origin: str = FORMAT) -> tuple[PinnedPackage, ...]:
    """The pins of the Pipfile.lock *text*, in order (pure); LockError names file and line."""
    doc = _load(text, origin)
    sources = _sources(doc, origin)
    return tuple(pipfile_package(name, entry, sources, spot)
                 for _packages, name, entry, spot in _entries(doc, text, origin))


def _load(text: str, origin: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise LockError(f"{origin}: not valid JSON ({exc}); {_ADVICE}", path=origin) from exc
    if not isinstance(doc, dict):
        raise LockError(f"{origin}: not a Pipfile.lock (no top-level object)", path=origin)
    return doc


def _sources(doc: Mapping[str, object], origin: str) -> dict[str, str]:
    """The index URLs of ``_meta.sources`` by name."""
    spot = _fields.Spot(FORMAT, origin, None, "_meta", _ADVICE)
    meta = _fields.table(doc, "_meta", spot) or {}
    return {_fields.required_text(s, "name", spot): _fields.required_text(s, "url", spot)
            for s in _fields.tables(meta, "sources", spot)}


def _entry_lines(text: str) -> dict[tuple[str, str], int]:
    """The line of each ``"category": {"name": {`` entry, by (category, name)."""
    lines: dict[tuple[str, str], int] = {}
    keys: list[str | None] = []  # the key of each open object or array
    key: str | None = None
    line = 1
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token == "\n":
            line += 1
        elif token in "{[":
            keys.append(key)
            if token == "{" and len(keys) == 3 and keys[1] is not None and keys[2] is not None:
                lines.setdefault((keys[1], keys[2]), line)
            key = None
        elif token in "}]":
            keys = keys[:-1]
            key = None
        else:
            key = json.loads(token[:-1].rstrip()) if token.endswith(":") else None
    return lines


def _entries(doc: dict[str, Any], text: str, origin: str
             ) -> Iterator[tuple[dict[str, Any], str, dict[str, Any], _fields.Spot]]:
    """(category, name, entry, spot) of every package entry; LockError for a malformed one."""
    lines = _entry_lines(text)
    for section, packages in doc.items():
        if section == "_meta":
            continue
        if not isinstance(packages, dict):
            raise _fields.Spot(FORMAT, origin, None, section, _ADVICE).error(
                "a package category is not an object")
        for name, entry in packages.items():
            spot = _fields.Spot(FORMAT, origin, lines.get((section, name)),
                                f"{section}.{name}", _ADVICE)
            if not isinstance(entry, dict):
                raise spot.error("the entry is not an object")
            yield packages, name, entry, spot


def pipfile_package(name: str, entry: Mapping[str, object], sources: Mapping[str, str],
                    spot: _fields.Spot) -> PinnedPackage:
    """One package entry of a Pipfile.lock category (read at *spot*).

    *sources* maps ``_meta.sources`` names to index URLs.
    """
    spec = _fields.text(entry, "version", spot) or ""
    exact = spec.startswith("===")
    version = spec[3:] if exact else spec[2:] if spec.startswith("==") else None
    editable = _fields.flag(entry, "editable", spot)
    index = _fields.text(entry, "index", spot)
    if index is not None and index not in sources:
        raise spot.error(f"index {index!r} is not in _meta.sources")
    source = Source("index", sources[index]) if index is not None else INDEX
    for form, kind in _SOURCES.items():
        location = _fields.text(entry, form, spot)
        if location is not None:
            source = Source(kind, location, form, editable)
            break
    return PinnedPackage(
        normalize(name), name, version or None, spot.origin, spot.line, source,
        frozenset(normalize(e) for e in _fields.strings(entry, "extras", spot)),
        _fields.marker(entry, "markers", spot),
        frozenset(h for h in (_fields.prefixed_hash(v, spot)
                              for v in _fields.strings(entry, "hashes", spot)) if h),
        allows_local=version is not None and not exact)


def _layout(text: str) -> dict[str, Any]:
    """json.dumps keyword arguments that reproduce *text*'s layout."""
    match = re.match(r"\s*[\[{]\r?\n([ \t]+)", text)
    indent: str | None = match.group(1) if match else None
    key_sep = ": " if re.search(r'"\s*:\s', text) else ":"
    item_sep = "," if indent is not None else (", " if re.search(r",\s", text) else ",")
    return {
        "indent": indent,
        "separators": (item_sep, key_sep),
        "ensure_ascii": "\\u" in text or text.isascii(),
    }


def _dump(doc: object, layout: dict[str, Any], text: str) -> str:
    out = json.dumps(doc, **layout)
    ending = text[len(text.rstrip()):]
    if "\r\n" in text:
        out = out.replace("\n", "\r\n")
    return out + ending



def update_pipfilelock(text: str, lookup: Lookup, *, replace: bool = False,
                       origin: str = "Pipfile.lock") -> LockUpdate:
    """Add (or, with *replace*, swap in) the index's hashes in the Pipfile.lock *text*.

    Pure.  Raises LockError when *text* is not a JSON object or holds a
    malformed entry.
    """
    doc = _load(text, origin)
    sources = _sources(doc, origin)
    layout = _layout(text)
    notes: list[str] = []
    if _dump(doc, layout, text) != text:
        notes.append("the file's layout could not be reproduced exactly; "
                     f"rewritten with indent {layout['indent']!r}")
    reports: list[PackageReport] = []
    changed_any = False
    for packages, name, entry, spot in _entries(doc, text, origin):
        found = index_release(lookup, pipfile_package(name, entry, sources, spot))
        if isinstance(found, PackageReport):
            reports.append(found)
            continue
        version, release = found
        old = [h for h in entry.get("hashes", []) if isinstance(h, str)]
        ours = [f"sha256:{digest}" for digest in release.sha256s]
        hashes = ours if replace else old + [h for h in ours if h not in old]
        if not replace and old == sorted(old):
            hashes = sorted(hashes)
        changed = hashes != entry.get("hashes")
        if changed:
            was_sorted = list(entry) == sorted(entry)
            entry["hashes"] = hashes
            if was_sorted:
                packages[name] = entry = dict(sorted(entry.items()))
        if not same_version(version, release.version):
            entry["version"] = "==" + release.version
            changed = True
        changed_any |= changed
        reports.append(outcome(name, version, release, changed))
    new_text = _dump(doc, layout, text) if changed_any else text
    return LockUpdate(FORMAT, new_text, tuple(reports), tuple(notes))
