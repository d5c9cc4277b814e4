"""``Pipfile.lock``: add the index's hashes to each package's ``hashes`` (multi-hash format).

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
from typing import Any

from fromsource.errors import LockError
from fromsource.lockfiles.model import (
    LockUpdate,
    Lookup,
    PackageReport,
    find_release,
    outcome,
    same_version,
    skipped,
)

FORMAT = "Pipfile.lock"


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

    Pure.  Raises LockError when *text* is not a JSON object.
    """
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise LockError(f"{origin}: not valid JSON ({exc}); regenerate it with `pipenv lock`",
                        path=origin) from exc
    if not isinstance(doc, dict):
        raise LockError(f"{origin}: not a Pipfile.lock (no top-level object)", path=origin)
    layout = _layout(text)
    notes: list[str] = []
    if _dump(doc, layout, text) != text:
        notes.append("the file's layout could not be reproduced exactly; "
                     f"rewritten with indent {layout['indent']!r}")
    reports: list[PackageReport] = []
    changed_any = False
    for section, packages in doc.items():
        if section == "_meta" or not isinstance(packages, dict):
            continue
        for name, entry in packages.items():
            if not isinstance(entry, dict):
                continue
            spec = entry.get("version")
            if not isinstance(spec, str) or not spec.startswith("=="):
                kind = next((k for k in ("git", "path", "file", "editable") if k in entry), "unpinned")
                reports.append(skipped(name, None, f"a {kind} entry, not pinned with =="))
                continue
            version = spec.lstrip("=")
            found = find_release(lookup, name, version)
            if isinstance(found, PackageReport):
                reports.append(found)
                continue
            old = [h for h in entry.get("hashes", []) if isinstance(h, str)]
            ours = [f"sha256:{digest}" for digest in found.sha256s]
            hashes = ours if replace else old + [h for h in ours if h not in old]
            if not replace and old == sorted(old):
                hashes = sorted(hashes)
            changed = hashes != entry.get("hashes")
            if changed:
                was_sorted = list(entry) == sorted(entry)
                entry["hashes"] = hashes
                if was_sorted:
                    packages[name] = entry = dict(sorted(entry.items()))
            if not same_version(version, found.version):
                entry["version"] = "==" + found.version
                changed = True
            changed_any |= changed
            reports.append(outcome(name, version, found, changed))
    new_text = _dump(doc, layout, text) if changed_any else text
    return LockUpdate(FORMAT, new_text, tuple(reports), tuple(notes))
