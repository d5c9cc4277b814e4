"""pip's configuration: ``pip.conf`` (INI) and the option lines of a requirements file.

Edits keep every line they do not own (comments, other keys, other
sections) as it was, and give the same text when run again.  pip reads
``index-url`` and ``index_url`` alike and lets ``[install]`` override
``[global]``, so the same key in ``[install]`` or ``[download]`` is removed
rather than left to shadow the new value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY = re.compile(r"^([A-Za-z0-9_.-]+)\s*[=:]")
_SHADOWING = ("install", "download", "wheel")


def _norm(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def _blocks(lines: list[str]) -> list[tuple[str | None, str | None, int, int]]:
    """(section, key, start, end) for every key and its continuation lines."""
    found: list[tuple[str | None, str | None, int, int]] = []
    section: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        head = _SECTION.match(line)
        if head:
            section = head.group(1).strip().lower()
            i += 1
            continue
        key = _KEY.match(line)
        if key and not line[:1].isspace():
            j = i + 1
            while j < len(lines) and lines[j][:1] in (" ", "\t") and lines[j].strip():
                j += 1
            found.append((section, _norm(key.group(1)), i, j))
            i = j
            continue
        i += 1
    return found


def _format(key: str, values: Sequence[str]) -> list[str]:
    if len(values) == 1:
        return [f"{key} = {values[0]}\n"]
    return [f"{key} =\n"] + [f"    {v}\n" for v in values]


def set_pip_conf(text: str, values: dict[str, Sequence[str]]) -> str:
    """*text* (a pip.conf, possibly empty) with each key of *values* set in ``[global]``.

    An empty sequence removes the key.  Keys are pip option names
    (``index-url``, ``extra-index-url``).  The same keys are removed from the
    sections that would override ``[global]`` for pip install.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    wanted = {_norm(k): list(v) for k, v in values.items()}
    # Work from the end so earlier line numbers stay valid.
    written: set[str] = set()
    for section, key, start, end in reversed(_blocks(lines)):
        if key not in wanted:
            continue
        if section == "global" and key not in written and wanted[key]:
            lines[start:end] = _format(key, wanted[key])
            written.add(key)
        elif section == "global" or section in _SHADOWING:
            del lines[start:end]
    missing = [k for k in wanted if wanted[k] and k not in written]
    if missing:
        new = [line for k in missing for line in _format(k, wanted[k])]
        at = _section_end(lines, "global")
        if at is None:
            if lines and lines[-1].strip():
                lines.append("\n")
            lines += ["[global]\n", *new]
        else:
            lines[at:at] = new
    return "".join(lines)


def _section_end(lines: list[str], name: str) -> int | None:
    """Index just after the last non-blank line of section *name*, or None."""
    inside = False
    last: int | None = None
    for i, line in enumerate(lines):
        head = _SECTION.match(line)
        if head:
            if inside:
                break
            inside = head.group(1).strip().lower() == name
            if inside:
                last = i + 1
            continue
        if inside and line.strip():
            last = i + 1
    return last


_REQ_INDEX = re.compile(r"^\s*(-i|--index-url|--extra-index-url)(\s|=|$)")


def set_requirements_index(text: str, index_url: str, extra_urls: Sequence[str] = ()) -> str:
    """*text* (a requirements file) with its index options replaced by ours.

    Existing ``-i``/``--index-url``/``--extra-index-url`` lines are removed;
    ours go where the first of them was, or at the top.  Every other line is
    kept as it was.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    ours = [f"--index-url {index_url}\n"] + [f"--extra-index-url {u}\n" for u in extra_urls]
    position: int | None = None
    kept: list[str] = []
    for line in lines:
        if _REQ_INDEX.match(line):
            if position is None:
                position = len(kept)
            continue
        kept.append(line)
    at = 0 if position is None else position
    return "".join(kept[:at] + ours + kept[at:])
