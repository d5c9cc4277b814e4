"""TOML configuration of uv, poetry and pdm, edited in place with tomlkit.

Every function takes a file's text and returns the new text; comments,
ordering and unrelated settings survive, and a second run returns its input.
Entries that point into the same index (same root URL) but are no longer
wanted are removed, so switching from ``python-all`` to two repositories
does not leave the old source behind.  Each function also returns notes for
changes the user might not expect (another source losing ``default``).
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSequence
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Table

from fromsource.errors import ConfigError
from fromsource.indexclient import Credentials
from fromsource.setup.model import IndexSpec, Source

Edited = tuple[str, tuple[str, ...]]


def _parse(text: str, what: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"{what} is not valid TOML ({exc}); fix it and run setup again") from exc


def _dump(doc: tomlkit.TOMLDocument) -> str:
    text = tomlkit.dumps(doc)
    return text if not text or text.endswith("\n") else text + "\n"


def _table(
    parent: MutableMapping[str, Any], key: str, what: str, *, holder: bool = True
) -> MutableMapping[str, Any]:
    """``parent[key]`` as a table, created if missing (as a super table when it only
    *holds* other tables, so no empty ``[tool]`` header is written)."""
    if key not in parent:
        parent[key] = tomlkit.table(is_super_table=holder)
    value = parent[key]
    if not isinstance(value, MutableMapping):
        raise ConfigError(f"{what}: {key} is not a table; fix it and run setup again")
    return value


def _entry_list(parent: MutableMapping[str, Any], key: str, what: str) -> MutableSequence[Any]:
    if key not in parent:
        parent[key] = tomlkit.aot()
    value = parent[key]
    if not isinstance(value, MutableSequence):
        raise ConfigError(f"{what}: {key} is not an array of tables; fix it and run setup again")
    return value


def _merge_entries(
    entries: MutableSequence[Any],
    wanted: list[dict[str, Any]],
    spec: IndexSpec,
    drop_keys: tuple[str, ...] = (),
) -> None:
    """Update entries by name, drop stale ones of this index, append the missing ones.

    Keys of *drop_keys* absent from a wanted entry are removed from it.
    """
    names = {w["name"] for w in wanted}
    for i in range(len(entries) - 1, -1, -1):
        item = entries[i]
        if not isinstance(item, MutableMapping):
            continue
        if item.get("name") not in names and spec.owns(str(item.get("url", ""))):
            del entries[i]
    for want in wanted:
        current = next(
            (e for e in entries if isinstance(e, MutableMapping) and e.get("name") == want["name"]),
            None,
        )
        if current is None:
            table = tomlkit.table() if isinstance(entries, AoT) else tomlkit.inline_table()
            table.update(want)
            entries.append(table)
            continue
        for key, value in want.items():
            if current.get(key) != value:
                current[key] = value
        for key in drop_keys:
            if key not in want and key in current:
                del current[key]


def _uv_wanted(spec: IndexSpec) -> list[dict[str, Any]]:
    sources = spec.sources()
    wanted: list[dict[str, Any]] = []
    for i, source in enumerate(sources):
        entry: dict[str, Any] = {"name": source.name, "url": source.url, "authenticate": "always"}
        if i == len(sources) - 1:
            entry["default"] = True
        wanted.append(entry)
    return wanted


def set_uv_indexes(text: str, spec: IndexSpec, *, pyproject: bool) -> Edited:
    """``[[index]]`` (uv.toml) or ``[[tool.uv.index]]`` (pyproject.toml) for *spec*.

    Each repository becomes an index with ``authenticate = "always"`` (uv then
    never tries anonymously and never takes a 401 for "not here"); the last
    is ``default = true`` (it replaces the public default index).  Two or more
    repositories also set ``index-strategy = "unsafe-best-match"`` so a
    version in the second index is found even when the first has the project.
    """
    what = "pyproject.toml" if pyproject else "uv.toml"
    doc = _parse(text, what)
    base: MutableMapping[str, Any] = doc
    if pyproject:
        base = _table(_table(doc, "tool", what), "uv", what)
    notes: list[str] = []
    entries = _entry_list(base, "index", what)
    wanted = _uv_wanted(spec)
    ours = {w["name"] for w in wanted}
    for item in entries:
        if (
            isinstance(item, MutableMapping)
            and item.get("default")
            and item.get("name") not in ours
            and not spec.owns(str(item.get("url", "")))
        ):
            del item["default"]
            notes.append(
                f"{what}: index {item.get('name')!r} is no longer the default index "
                f"({spec.sources()[-1].name!r} is)"
            )
    _merge_entries(entries, wanted, spec, drop_keys=("default",))
    if len(spec.repos) > 1 and base.get("index-strategy") != "unsafe-best-match":
        base["index-strategy"] = "unsafe-best-match"
    return _dump(doc), tuple(notes)


def set_poetry_sources(text: str, spec: IndexSpec) -> Edited:
    """``[[tool.poetry.source]]`` entries with ``priority = "primary"`` for *spec*.

    With a primary source configured poetry no longer uses the public index;
    several primary sources are searched together, so a remediated ``+fs.N``
    version (which sorts above the upstream one) wins.
    """
    doc = _parse(text, "pyproject.toml")
    poetry = _table(_table(doc, "tool", "pyproject.toml"), "poetry", "pyproject.toml")
    entries = _entry_list(poetry, "source", "pyproject.toml")
    wanted = [{"name": s.name, "url": s.url, "priority": "primary"} for s in spec.sources()]
    _merge_entries(entries, wanted, spec)
    return _dump(doc), ()


def set_poetry_auth(text: str, sources: tuple[Source, ...], credentials: Credentials) -> Edited:
    """poetry's ``auth.toml`` with ``[http-basic.<source>]`` username and password.

    poetry reads a password stored here before asking a keyring, so this
    works with or without one.
    """
    doc = _parse(text, "auth.toml")
    basic = _table(doc, "http-basic", "auth.toml")
    for source in sources:
        entry = basic.get(source.name)
        want = {"username": credentials.username, "password": credentials.password}
        if not isinstance(entry, MutableMapping):
            table = tomlkit.table()
            table.update(want)
            basic[source.name] = table
            continue
        for key, value in want.items():
            if entry.get(key) != value:
                entry[key] = value
    return _dump(doc), ()


_SOURCE_TABLES = {"uv": ("uv", "index"), "poetry": ("poetry", "source"), "pdm": ("pdm", "source")}


def named_sources(text: str, target: str) -> tuple[tuple[str, str], ...]:
    """The (name, URL) of each index a project's pyproject.toml names for *target*
    (uv, poetry or pdm).  Pure; () for another target or a file without such a table."""
    if target not in _SOURCE_TABLES:
        return ()
    tool, key = _SOURCE_TABLES[target]
    doc = _parse(text, "pyproject.toml")
    entries = doc.get("tool", {}).get(tool, {}).get(key, [])
    return tuple(
        (str(e.get("name", "")), str(e["url"]))
        for e in entries
        if isinstance(e, MutableMapping) and e.get("url")
    )


def foreign_sources(text: str, target: str, spec: IndexSpec) -> tuple[tuple[str, str], ...]:
    """The sources of :func:`named_sources` that are not this index: the client may
    still take packages from them."""
    return tuple((n, url) for n, url in named_sources(text, target) if not spec.owns(url))


PDM_DEFAULT = "pypi"


def pdm_sources(spec: IndexSpec) -> tuple[Source, ...]:
    """pdm source names: the first repository takes the name ``pypi``, which makes
    pdm use it *instead of* the public index; the others keep their names."""
    sources = spec.sources()
    first = sources[0]
    return (Source(PDM_DEFAULT, first.repo, first.url), *sources[1:])


def set_pdm_sources(text: str, spec: IndexSpec) -> Edited:
    """``[[tool.pdm.source]]`` entries for *spec* (see :func:`pdm_sources`)."""
    doc = _parse(text, "pyproject.toml")
    pdm = _table(_table(doc, "tool", "pyproject.toml"), "pdm", "pyproject.toml")
    entries = _entry_list(pdm, "source", "pyproject.toml")
    wanted = [{"name": s.name, "url": s.url} for s in pdm_sources(spec)]
    notes = []
    for item in entries:
        if (
            isinstance(item, MutableMapping)
            and item.get("name") == PDM_DEFAULT
            and not spec.owns(str(item.get("url", "")))
        ):
            notes.append(f"pyproject.toml: the source 'pypi' pointed at {item.get('url')}; it now "
                         "points at this index")
    _merge_entries(entries, wanted, spec)
    return _dump(doc), tuple(notes)


def set_pdm_config(text: str, spec: IndexSpec, credentials: Credentials | None) -> Edited:
    """pdm's global ``config.toml``: ``[pypi]`` url (and credentials) for the first
    repository, ``[pypi.<name>]`` for the others.

    The user name is written in its ``_`` form: pdm puts it into the URL.
    """
    doc = _parse(text, "config.toml")
    pypi = _table(doc, "pypi", "config.toml", holder=False)
    sources = pdm_sources(spec)
    names = {s.name for s in sources[1:]}
    for key in list(pypi.keys()):
        value = pypi[key]
        if isinstance(value, Table) and key not in names and spec.owns(str(value.get("url", ""))):
            del pypi[key]
    login = (
        {"username": credentials.url_username, "password": credentials.password}
        if credentials
        else {}
    )
    for key, value in {"url": sources[0].url, **login}.items():
        if pypi.get(key) != value:
            pypi[key] = value
    for source in sources[1:]:
        want = {"url": source.url, **login}
        entry = pypi.get(source.name)
        if not isinstance(entry, MutableMapping):
            table = tomlkit.table()
            table.update(want)
            pypi[source.name] = table
            continue
        for key, value in want.items():
            if entry.get(key) != value:
                entry[key] = value
    return _dump(doc), ()
