"""``pylock.toml`` (PEP 751): point index packages at the index's files (single-hash format).

Each ``[[packages]]`` entry lists its wheels and sdist with one URL and a
``hashes`` table each; installers fetch those URLs.  For every package found
on the index the editor replaces, in place: ``index`` (the repository's
simple URL), ``wheels`` (url, upload-time, size, hashes, as uv writes them),
``sdist`` (or removes it when the index serves none) and, for a remediated
release, ``version``; ``dependencies`` entries of other packages that name
the old version follow.  VCS, directory and archive packages are skipped.
"""

from __future__ import annotations

from datetime import UTC

from tomlkit.items import InlineTable, Table

from fromsource.dist.names import normalize
from fromsource.errors import LockError
from fromsource.lockfiles import _toml
from fromsource.lockfiles.model import (
    IndexFile,
    LockUpdate,
    Lookup,
    PackageReport,
    find_release,
    outcome,
    same_version,
    skipped,
)

FORMAT = "pylock.toml"


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
    for pkg in _toml.tables(doc, "packages"):
        name = str(_toml.plain(pkg.get("name", "?")))
        version = _toml.plain(pkg.get("version"))
        kind = next((k for k in ("vcs", "directory", "archive") if k in pkg), None)
        if kind is not None:
            reports.append(skipped(name, version, f"a {kind} package, not from an index"))
            continue
        found = find_release(lookup, name, version)
        if isinstance(found, PackageReport):
            reports.append(found)
            continue
        with_name = _names_files(pkg)
        changed = _toml.put_after(pkg, "index", _toml.string(found.index_url), after="version")
        if found.sdist is not None:
            changed |= _toml.put_after(pkg, "sdist", _entry(found.sdist, with_name), after="index")
        elif _toml.remove(pkg, "sdist"):
            changed = True
            notes.append(f"{name}: sdist entry removed, the index serves none")
        wheels = [_entry(f, with_name) for f in found.wheels]
        if wheels:
            multiline = len(wheels) > 1 or _toml.is_multiline(pkg, "wheels")
            changed |= _toml.put(pkg, "wheels", _toml.array(
                wheels, multiline=multiline, indent=_toml.indent_of(pkg, "wheels")))
        else:
            changed |= _toml.remove(pkg, "wheels")
        if not same_version(version, found.version):
            changed |= _toml.put(pkg, "version", _toml.string(found.version))
            moved[normalize(name)] = (version, found.version)
        reports.append(outcome(name, version, found, changed))
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
