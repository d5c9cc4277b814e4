"""``poetry.lock``: add the index's hashes to each package's ``files`` (multi-hash format).

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

from tomlkit.items import Table
from tomlkit.toml_document import TOMLDocument

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

FORMAT = "poetry.lock"


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
    for pkg in _toml.tables(doc, "package"):
        name = str(_toml.plain(pkg.get("name", "?")))
        version = _toml.plain(pkg.get("version"))
        source = _toml.plain(pkg.get("source"))
        kind = source.get("type") if isinstance(source, dict) else None
        if kind not in (None, "legacy"):
            reports.append(skipped(name, version, f"a {kind} package, not from an index"))
            continue
        found = find_release(lookup, name, version)
        if isinstance(found, PackageReport):
            reports.append(found)
            continue
        home, key = _files_home(doc, pkg, name)
        current = home.get(key)
        existing = [e for e in (_toml.plain(current) or []) if isinstance(e, dict)]
        texts = [] if replace else [item.as_string().strip() for item in (current or [])]
        have = set() if replace else {(e.get("file"), e.get("hash")) for e in existing}
        for f in found.files:
            pair = (f.filename, f"sha256:{f.sha256}")
            if pair not in have:
                texts.append(_toml.inline(
                    [("file", _toml.string(pair[0])), ("hash", _toml.string(pair[1]))],
                    spaced=False))
                have.add(pair)
        changed = _toml.put(home, key, _toml.array(
            texts, multiline=True, indent=_toml.indent_of(home, key)))
        if not same_version(version, found.version):
            changed |= _toml.put(pkg, "version", _toml.string(found.version))
        reports.append(outcome(name, version, found, changed))
    return LockUpdate(FORMAT, doc.as_string(), tuple(reports))
