"""``~/.netrc``: set the login and password of one ``machine``, keep everything else.

The file is a stream of whitespace-separated tokens; an entry starts at
``machine``, ``default`` or ``macdef`` (whose body runs to the next blank
line).  Only the entries for our host are rewritten: the first becomes ours,
later duplicates are dropped (clients read the first match anyway).
"""

from __future__ import annotations

import re

from fromsource.errors import ConfigError

_TOKEN = re.compile(r"\S+")
_STARTS = ("machine", "default", "macdef")


def _entries(text: str) -> list[tuple[str, str | None, int, int]]:
    """(kind, machine name or None, start offset, end offset) of every entry."""
    tokens = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    entries: list[tuple[str, str | None, int, int]] = []
    i = 0
    while i < len(tokens):
        word, start, _ = tokens[i]
        if word.startswith("#"):
            # A comment runs to the end of its line.
            eol = text.find("\n", start)
            eol = len(text) if eol < 0 else eol
            while i < len(tokens) and tokens[i][1] < eol:
                i += 1
            continue
        if word not in _STARTS:
            i += 1
            continue
        if word == "macdef":
            blank = text.find("\n\n", start)
            end = len(text) if blank < 0 else blank + 1
            entries.append(("macdef", None, start, end))
            while i < len(tokens) and tokens[i][1] < end:
                i += 1
            continue
        name = tokens[i + 1][0] if word == "machine" and i + 1 < len(tokens) else None
        j = i + (2 if word == "machine" else 1)
        while j < len(tokens) and tokens[j][0] not in _STARTS and not tokens[j][0].startswith("#"):
            j += 1
        end = tokens[j - 1][2] if j > i else tokens[i][2]
        entries.append((word, name, start, end))
        i = j
    return entries


def _check(value: str, what: str) -> None:
    if not value or any(c.isspace() for c in value) or value.startswith("#") or '"' in value:
        raise ConfigError(
            f"the {what} cannot be written to .netrc (empty, or holds whitespace, '#' or '\"'); "
            "use the client's own credential settings instead"
        )


def set_netrc(text: str, host: str, login: str, password: str) -> str:
    """*text* (a netrc, possibly empty) with ``machine host login .. password ..``.

    Raises ConfigError when a value cannot be expressed as a netrc token.
    The entry is placed where the host's first entry was, else before a
    ``default`` entry (which would otherwise match first), else at the end.
    """
    _check(host, "host")
    _check(login, "token id")
    _check(password, "secret")
    ours = f"machine {host}\nlogin {login}\npassword {password}\n"
    entries = _entries(text)
    mine = [e for e in entries if e[0] == "machine" and e[1] == host]
    if not mine:
        default = next((e for e in entries if e[0] == "default"), None)
        if default is not None:
            return text[: default[2]] + ours + text[default[2]:]
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + ours
    out = text
    for _kind, _name, start, end in reversed(mine[1:]):
        out = out[:start] + out[end:].lstrip("\n")
    first = mine[0]
    tail = out[first[3]:]
    return out[: first[2]] + ours + tail.removeprefix("\n")
