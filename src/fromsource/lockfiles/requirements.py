"""Hashed requirements files (pip-tools, ``uv pip compile --generate-hashes``): text edits.

Each requirement is a block of physical lines joined by trailing backslashes,
as pip reads them.  Only the hash options of a block that pins
``name==version`` are touched (and, for a remediated release, the version
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

from packaging.requirements import InvalidRequirement, Requirement

from fromsource.lockfiles.model import (
    LockUpdate,
    Lookup,
    PackageReport,
    Release,
    find_release,
    outcome,
    same_version,
    skipped,
)

FORMAT = "requirements"

_COMMENT = re.compile(r"(^|\s+)#.*$")
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


def _pin(block: list[_Line]) -> tuple[str, str | None, str | None] | None:
    """(name, pinned version or None, why it is skipped) for a requirement block, else None."""
    logical = " ".join(_COMMENT.sub("", line.body) for line in block).strip()
    if not logical or logical.startswith("-"):
        return None
    tokens: list[str] = []
    for token in logical.split():
        if token.startswith("-"):
            break
        tokens.append(token)
    text = " ".join(tokens)
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return (text, None, "not a name==version requirement (a path or URL)")
    if req.url:
        return (req.name, None, "a direct URL requirement, not from an index")
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
        return (req.name, None, f"not pinned with == ({req.specifier or 'no version'})")
    return (req.name, specs[0].version, None)


def _hashes(block: list[_Line]) -> list[tuple[str, str]]:
    return [(m.group(1).lower(), m.group(2).lower())
            for line in block for m in _HASH_OPTION.finditer(_COMMENT.sub("", line.body))]


def _with_version(block: list[_Line], old: str, new: str) -> list[_Line]:
    pattern = re.compile(r"(?<![<>!~=])(===?\s*)" + re.escape(old) + r"(?![\w.+!*-])")
    for number, line in enumerate(block):
        body, count = pattern.subn(lambda m: m.group(1) + new, line.body, count=1)
        if count:
            return [*block[:number], dc_replace(line, body=body), *block[number + 1:]]
    return block


def _edit(block: list[_Line], release: Release, version: str, replace: bool, eol: str) -> list[_Line]:
    """The block with our hashes (and the release's version)."""
    existing = _hashes(block)
    hash_lines = [line for line in block[1:] if line.body.lstrip().startswith("--hash")]
    multiline = bool(hash_lines) or not existing
    indent = hash_lines[0].body[: len(hash_lines[0].body) - len(hash_lines[0].body.lstrip())] \
        if hash_lines else "    "
    lines = list(block)
    if replace:
        lines = [dc_replace(line, body=_HASH_OPTION.sub("", line.body)) for line in lines]
        lines = [lines[0]] + [line for line in lines[1:] if line.body.strip()]
    if not same_version(version, release.version):
        lines = _with_version(lines, version, release.version)
    have = set() if replace else {digest for algo, digest in existing if algo == "sha256"}
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


def update_requirements(text: str, lookup: Lookup, *, replace: bool = False) -> LockUpdate:
    """Write the index's sha256 into every ``name==version`` requirement of *text*.

    Pure.  Entries the index lacks stay byte-for-byte unchanged and are
    reported ``missing``; editable, path, URL and unpinned requirements are
    ``skipped``.
    """
    eol = "\r\n" if "\r\n" in text else "\n"
    out: list[str] = []
    reports: list[PackageReport] = []
    for block in _blocks(text):
        pin = _pin(block)
        if pin is None:
            out.extend(line.render() for line in block)
            continue
        name, version, why = pin
        if version is None:
            reports.append(skipped(name, None, why or "not pinned"))
            out.extend(line.render() for line in block)
            continue
        found = find_release(lookup, name, version)
        if isinstance(found, PackageReport):
            reports.append(found)
            out.extend(line.render() for line in block)
            continue
        edited = _edit(block, found, version, replace, eol)
        before = "".join(line.render() for line in block)
        after = "".join(line.render() for line in edited)
        reports.append(outcome(name, version, found, before != after))
        out.append(after)
    notes: tuple[str, ...] = ()
    if re.search(r"^\s*(-r|--requirement|-c|--constraint)\b", text, re.MULTILINE):
        notes = ("files included with -r/-c are not followed; pass them to update-hashes too",)
    return LockUpdate(FORMAT, "".join(out), tuple(reports), notes)
