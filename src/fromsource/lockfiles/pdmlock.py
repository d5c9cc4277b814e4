"""``pdm.lock``: replace each package's ``files`` with the index's files (single-hash format).

PDM lists one hash per file (``{file = ..., hash = ...}``, or ``{url = ...,
hash = ...}`` with the ``static_urls`` strategy) and looks a download's hash
up by file, so our files replace the list: by filename, or by absolute URL
on the index when the lock records URLs.  For a remediated release
``version`` becomes ``X.Y.Z+fs.N`` (dependents' ``==X.Y.Z`` still match it
under PEP 440's local-version rule).  ``content_hash`` covers
``pyproject.toml`` only and stays.  Path, URL and VCS packages are skipped.
"""

from __future__ import annotations

from fromsource.lockfiles import _toml
from fromsource.lockfiles.model import (
    LockUpdate,
    Lookup,
    PackageReport,
    find_release,
    outcome,
    same_version,
    skipped,
)

FORMAT = "pdm.lock"
_NOT_FROM_INDEX = ("path", "url", "git", "hg", "svn", "bzr", "editable")


def update_pdmlock(text: str, lookup: Lookup, *, replace: bool = False,
                   origin: str = "pdm.lock") -> LockUpdate:
    """Swap in the index's files in every index package of the pdm.lock *text*.

    Pure.  Raises LockError when *text* is not TOML.
    """
    del replace  # single-hash format: always replaced
    doc = _toml.parse(text, origin, "lock file with `pdm lock`")
    reports: list[PackageReport] = []
    for pkg in _toml.tables(doc, "package"):
        name = str(_toml.plain(pkg.get("name", "?")))
        version = _toml.plain(pkg.get("version"))
        kind = next((k for k in _NOT_FROM_INDEX if k in pkg), None)
        if kind is not None:
            reports.append(skipped(name, version, f"a {kind} requirement, not from an index"))
            continue
        found = find_release(lookup, name, version)
        if isinstance(found, PackageReport):
            reports.append(found)
            continue
        existing = _toml.plain(pkg.get("files")) or []
        by_url = any(isinstance(e, dict) and "url" in e for e in existing)
        texts = [
            _toml.inline([("url", _toml.string(f.url)) if by_url else ("file", _toml.string(f.filename)),
                          ("hash", _toml.string(f"sha256:{f.sha256}"))], spaced=False)
            for f in found.files
        ]
        changed = _toml.put(pkg, "files", _toml.array(
            texts, multiline=True, indent=_toml.indent_of(pkg, "files")))
        if not same_version(version, found.version):
            changed |= _toml.put(pkg, "version", _toml.string(found.version))
        reports.append(outcome(name, version, found, changed))
    return LockUpdate(FORMAT, doc.as_string(), tuple(reports))
