"""Hashed requirements files (pip-tools, ``uv pip compile --generate-hashes``): text edits.

The pins come from :mod:`~fromsource.lockfiles.reqfile` (pip's syntax); each
is edited as the block of physical lines joined by trailing backslashes that
starts on its line.  Only the hash options of a block that pins
``name==version`` from an index are touched (and, for a remediated release, the version
after ``==``); every other byte, comments and option lines included, stays.

Multi-hash format: our ``--hash=sha256:`` options are appended after the
existing ones (``replace=True`` removes the existing ones first), in the
block's own layout: one hash per continuation line with the block's
indentation, or inline when the block keeps its hashes on one line.
Requirements files included with ``-r`` are not followed: pass them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import replace as dc_replace

from fromsource.lockfiles.model import (
    LockUpdate,
    Lookup,
    PackageReport,
    Release,
    index_release,
    outcome,
    same_version,
)
from fromsource.lockfiles.pinned import PinnedPackage
from fromsource.lockfiles.reqfile import COMMENT as _COMMENT
from fromsource.lockfiles.reqfile import FORMAT, parse_requirements

_HASH_OPTION = re.compile(r"\s*--hash[=\s]\s*([A-Za-z0-9]+):([^\s\\]+)")
_CONTINUATION = re.compile(r"^(.*?)([ \t]*\\)$", re.DOTALL)


@dataclass(frozen=True)
class _Line:
    """One physical line: its content, its continuation marker (``" \\"`` or ""), its end."""

    body: str
    cont: str
    eol: str

    def render(self) -> str:
        return self.body + self.cont + self.eol


def _split(raw: str) -> _Line:
    eol = "\r\n" if raw.endswith("\r\n") else "\n" if raw.endswith("\n") else ""
    content = raw[: len(raw) - len(eol)]
    if content.endswith("\\") and not _COMMENT.search(content):
        match = _CONTINUATION.match(content)
        assert match is not None
        return _Line(match.group(1), match.group(2), eol)
    return _Line(content, "", eol)


def _blocks(text: str) -> list[list[_Line]]:
    """Physical lines grouped into pip's logical lines."""
    blocks: list[list[_Line]] = []
    current: list[_Line] = []
    for raw in text.splitlines(keepends=True):
        line = _split(raw)
        current.append(line)
        if not line.cont:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _with_version(block: list[_Line], old: str, new: str) -> list[_Line]:
    pattern = re.compile(r"(?<![<>!~=])(===?\s*)" + re.escape(old) + r"(?![\w.+!*-])")
    for number, line in enumerate(block):
        body, count = pattern.subn(lambda m: m.group(1) + new, line.body, count=1)
        if count:
            return [*block[:number], dc_replace(line, body=body), *block[number + 1:]]
    return block


def _edit(block: list[_Line], pinned: PinnedPackage, release: Release, version: str,
          replace: bool, eol: str) -> list[_Line]:
    """The block with our hashes (and the release's version)."""
    hash_lines = [line for line in block[1:] if line.body.lstrip().startswith("--hash")]
    multiline = bool(hash_lines) or not any(_HASH_OPTION.search(line.body) for line in block)
    indent = hash_lines[0].body[: len(hash_lines[0].body) - len(hash_lines[0].body.lstrip())] \
        if hash_lines else "    "
    lines = list(block)
    if replace:
        lines = [dc_replace(line, body=_HASH_OPTION.sub("", line.body)) for line in lines]
        lines = [lines[0]] + [line for line in lines[1:] if line.body.strip()]
    if not same_version(version, release.version):
        lines = _with_version(lines, version, release.version)
    have = set() if replace else pinned.hashes
    new = [digest for digest in release.sha256s if digest not in have]
    if not new:
        return _close(lines, block[-1])
    last = lines[-1]
    comment = _COMMENT.search(last.body)
    code = last.body[: comment.start()] if comment else last.body
    tail = comment.group(0) if comment else ""
    if multiline:
        head = lines[:-1] if not code.strip() and len(lines) > 1 else [
            *lines[:-1], _Line(code.rstrip(), " \\", last.eol or eol)]
        if head and not head[-1].cont:
            head[-1] = dc_replace(head[-1], cont=" \\", eol=head[-1].eol or eol)
        added = [_Line(f"{indent}--hash=sha256:{digest}", " \\", eol) for digest in new]
        added[-1] = _Line(added[-1].body + tail, "", block[-1].eol)
        return head + added
    inline = "".join(f" --hash=sha256:{digest}" for digest in new)
    return [*lines[:-1], _Line(code.rstrip() + inline + tail, "", block[-1].eol)]


def _close(lines: list[_Line], original_last: _Line) -> list[_Line]:
    """Make the last line of *lines* end the block (no continuation), with the original ending."""
    return [*lines[:-1], dc_replace(lines[-1], cont="", eol=original_last.eol)]


def update_requirements(text: str, lookup: Lookup, *, replace: bool = False,
                        origin: str = "requirements.txt") -> LockUpdate:
    """Write the index's sha256 into every ``name==version`` requirement of *text*.

    Pure.  Entries the index lacks stay byte-for-byte unchanged and are
    reported ``missing``; editable, path, URL and unpinned requirements are
    ``skipped``.  Raises LockError for a line pip would refuse.
    """
    parsed = parse_requirements(text, origin)
    pinned = {entry.line: entry for entry in parsed.packages}
    eol = "\r\n" if "\r\n" in text else "\n"
    out: list[str] = []
    reports: list[PackageReport] = []
    line = 1
    for block in _blocks(text):
        entry = pinned.get(line)
        line += len(block)
        found = None if entry is None else index_release(lookup, entry)
        if entry is not None and isinstance(found, tuple):
            version, release = found
            edited = _edit(block, entry, release, version, replace, eol)
            before = "".join(physical.render() for physical in block)
            after = "".join(physical.render() for physical in edited)
            reports.append(outcome(entry.label, version, release, before != after))
            out.append(after)
            continue
        if isinstance(found, PackageReport):
            reports.append(found)
        out.extend(physical.render() for physical in block)
    notes: tuple[str, ...] = ()
    if parsed.includes:
        notes = ("files included with -r/-c are not followed; pass them to update-hashes too",)
    return LockUpdate(FORMAT, "".join(out), tuple(reports), notes)
