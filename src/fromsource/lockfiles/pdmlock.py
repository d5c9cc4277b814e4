"""``pdm.lock``: read its pins; replace each package's ``files`` with the index's (single-hash).

:func:`read_pdmlock` gives one :class:`PinnedPackage` per ``[[package]]``
(PDM writes one per requested set of ``extras``): a ``git``/``hg``/``svn``/
``bzr`` key makes it a VCS package, ``path`` a local one, ``url`` a direct
URL, else it comes from an index the lock does not name; ``marker`` and
``files`` (``{file|url, hash}``) are read as written.

PDM lists one hash per file (``{file = ..., hash = ...}``, or ``{url = ...,
hash = ...}`` with the ``static_urls`` strategy) and looks a download's hash
up by file, so our files replace the list: by filename, or by absolute URL
on the index when the lock records URLs.  For a remediated release
``version`` becomes ``X.Y.Z+fs.N`` (dependents' ``==X.Y.Z`` still match it
under PEP 440's local-version rule).  ``content_hash`` covers
``pyproject.toml`` only and stays.  Path, URL and VCS packages are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping

from fromsource.dist.names import normalize
from fromsource.lockfiles import _fields, _toml
from fromsource.lockfiles.model import (
    LockUpdate,
    Lookup,
    PackageReport,
    outcome,
    same_version,
)
from fromsource.lockfiles.pinned import INDEX, PinnedFile, PinnedPackage, Source, SourceKind

FORMAT = "pdm.lock"
_ADVICE = "regenerate the file with `pdm lock`"
_SOURCES: dict[str, SourceKind] = {"git": "vcs", "hg": "vcs", "svn": "vcs", "bzr": "vcs",
                                   "path": "path", "url": "url"}


def read_pdmlock(text: str, origin: str = FORMAT) -> tuple[PinnedPackage, ...]:
    """The pins of the pdm.lock *text*, in order (pure); LockError names file and line."""
    spot = _fields.Spot(FORMAT, origin, None, "", _ADVICE)
    return _fields.read_tables(text, "package", spot, pdm_package)


def pdm_package(entry: Mapping[str, object], spot: _fields.Spot) -> PinnedPackage:
    """One ``[[package]]`` table of a pdm.lock (read at *spot*)."""
    name, spot = _fields.named(entry, spot)
    editable = _fields.flag(entry, "editable", spot)
    source = INDEX
    for form, kind in _SOURCES.items():
        location = _fields.text(entry, form, spot)
        if location is not None:
            source = Source(kind, location, form, editable)
            break
    files = []
    for item in _fields.tables(entry, "files", spot):
        url, filename = _fields.text(item, "url", spot), _fields.text(item, "file", spot)
        digest = _fields.text(item, "hash", spot)
        if not (filename or url):
            raise spot.error("a `files` entry has no file or url")
        files.append(PinnedFile(filename or _fields.filename_of(url or ""), url,
                                _fields.prefixed_hash(digest, spot) if digest else None))
    return PinnedPackage(
        normalize(name), name, _fields.text(entry, "version", spot), spot.origin, spot.line,
        source, frozenset(normalize(e) for e in _fields.strings(entry, "extras", spot)),
        _fields.marker(entry, "marker", spot),
        frozenset(f.sha256 for f in files if f.sha256), tuple(files))


def update_pdmlock(text: str, lookup: Lookup, *, replace: bool = False,
                   origin: str = "pdm.lock") -> LockUpdate:
    """Swap in the index's files in every index package of the pdm.lock *text*.

    Pure.  Raises LockError when *text* is not TOML.
    """
    del replace  # single-hash format: always replaced
    doc = _toml.parse(text, origin, "lock file with `pdm lock`")
    reports: list[PackageReport] = []
    spot = _fields.Spot(FORMAT, origin, None, "", _ADVICE)
    for found in _toml.found_on_index(doc, "package", text, spot, pdm_package, lookup, reports):
        pkg, release = found.table, found.release
        by_url = any(f.url for f in found.pinned.files)
        texts = [
            _toml.inline([("url", _toml.string(f.url)) if by_url else ("file", _toml.string(f.filename)),
                          ("hash", _toml.string(f"sha256:{f.sha256}"))], spaced=False)
            for f in release.files
        ]
        changed = _toml.put(pkg, "files", _toml.array(
            texts, multiline=True, indent=_toml.indent_of(pkg, "files")))
        if not same_version(found.version, release.version):
            changed |= _toml.put(pkg, "version", _toml.string(release.version))
        reports.append(outcome(found.pinned.label, found.version, release, changed))
    return LockUpdate(FORMAT, doc.as_string(), tuple(reports))
