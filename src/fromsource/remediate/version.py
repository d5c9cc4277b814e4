"""Setting a new version (``X.Y.Z+fs.N``) in an unpacked sdist tree.

A build backend takes the version from one of a few places.  We set it in
the build configuration and leave the package's runtime ``__version__``
alone where we can: other packages parse it (requests warns, and fails
under ``-W error``, when ``urllib3.__version__`` is ``1.26.16+fs.1``).

- ``PKG-INFO`` (the sdist's own and any ``*.egg-info/PKG-INFO``): the
  ``Version:`` header, always.  VCS-versioned projects (setuptools-scm,
  hatch-vcs) read it when there is no git checkout.
- ``pyproject.toml``: ``[project] version`` becomes the new literal; when the
  version was ``dynamic`` it is made static (removed from ``dynamic`` and
  from ``[tool.setuptools.dynamic]``), which every PEP 621 backend honours.
  ``[tool.poetry] version`` too.
- ``setup.cfg``: ``[metadata] version`` becomes the literal (also when it
  was ``attr:`` or ``file:``).
- ``setup.py``: the ``version=`` keyword of the ``setup(...)`` call becomes
  the literal, whatever expression it held.
- Only when none of these exists (a backend that reads the version from
  the module, e.g. a ``setup(**kwargs)`` script): assignments
  ``__version__ = "…"`` / ``version = "…"`` / ``VERSION = "…"`` equal to the
  old version in ``setup.py`` and the package's version modules.

Literals are only replaced when they equal (as PEP 440 versions) the old
version; an unexpected PKG-INFO version is an error.  The rewrite functions
are pure (text in, text or None out); :func:`set_version` does the I/O.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from packaging.version import InvalidVersion, Version
from tomlkit.exceptions import TOMLKitError

from fromsource.errors import RemediateError

__all__ = [
    "VersionEdit",
    "rewrite_assignments",
    "rewrite_pkg_info",
    "rewrite_pyproject",
    "rewrite_setup_cfg",
    "rewrite_setup_py",
    "set_version",
    "version_setter",
]

_VERSION_MODULES = frozenset({
    "__init__.py", "_version.py", "version.py", "__version__.py", "__about__.py",
    "_about.py", "about.py", "__meta__.py", "_meta.py",
})
_SKIP_DIRS = frozenset({
    "tests", "test", "testing", "docs", "doc", "examples", "example", "build", "dist",
    "benchmarks", "node_modules", "site-packages",
})
_MAX_DEPTH = 5
_ASSIGNMENT = re.compile(
    r"""(?P<lead>\b(?:__version__|version|VERSION)\s*(?::\s*str\s*)?=\s*)"""
    r"""(?P<q>['"])(?P<value>[^'"\n\\]+)(?P=q)"""
)
_PKG_INFO_VERSION = re.compile(r"^(Version:[ \t]*)(\S+)([ \t]*)$", re.MULTILINE)
_CFG_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\][ \t]*$", re.MULTILINE)
_CFG_VERSION = re.compile(r"^(?P<lead>version[ \t]*[=:][ \t]*)(?P<value>.*?)[ \t]*$",
                          re.MULTILINE)


@dataclass(frozen=True)
class VersionEdit:
    """One place the version was rewritten: file (relative, POSIX) and what was changed."""

    path: str
    what: str


def _same(found: str, old: str) -> bool:
    try:
        return Version(found) == Version(old)
    except InvalidVersion:
        return found == old


def rewrite_pkg_info(text: str, old: str, new: str) -> str | None:
    """*text* (a PKG-INFO / METADATA file) with its ``Version:`` header set to *new*.

    Returns None when the header is missing.  Raises RemediateError when it
    holds a version other than *old* (the tree is not the sdist we expected).
    """
    head, sep, body = text.partition("\n\n")
    match = _PKG_INFO_VERSION.search(head)
    if match is None:
        return None
    if not _same(match.group(2), old):
        raise RemediateError(
            f"PKG-INFO says version {match.group(2)}, expected {old}; this is not the sdist "
            "the series was written for", found=match.group(2), expected=old,
        )
    head = head[: match.start(2)] + new + head[match.end(2):]
    return head + sep + body


def rewrite_assignments(text: str, old: str, new: str) -> str | None:
    """Python source *text* with every version assignment or keyword equal to *old* set to *new*.

    Covers ``__version__ = "…"``, ``__version__: str = "…"``,
    ``__version__ = version = "…"``, ``VERSION = "…"`` and ``version="…"``.
    Returns None when nothing matched.
    """
    changed = False

    def swap(m: re.Match[str]) -> str:
        nonlocal changed
        if not _same(m.group("value"), old):
            return m.group(0)
        changed = True
        return f"{m.group('lead')}{m.group('q')}{new}{m.group('q')}"

    result = _ASSIGNMENT.sub(swap, text)
    return result if changed else None


def _metadata_section(text: str) -> tuple[int, int] | None:
    sections = list(_CFG_SECTION.finditer(text))
    for i, match in enumerate(sections):
        if match.group("name").strip() == "metadata":
            end = sections[i + 1].start() if i + 1 < len(sections) else len(text)
            return match.end(), end
    return None


def rewrite_setup_cfg(text: str, old: str, new: str) -> str | None:
    """setup.cfg *text* with ``[metadata] version`` set to the literal *new*.

    A literal equal to *old*, an ``attr:`` or a ``file:`` value is replaced;
    returns None when there is no such key or it is a literal other than *old*.
    """
    span = _metadata_section(text)
    if span is None:
        return None
    match = _CFG_VERSION.search(text, span[0], span[1])
    if match is None:
        return None
    value = match.group("value")
    if not (value.startswith(("attr:", "file:")) or _same(value, old)):
        return None
    return text[: match.start("value")] + new + text[match.end("value"):]


def _is_setup_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "setup") or (
        isinstance(func, ast.Attribute) and func.attr == "setup"
    )


def rewrite_setup_py(text: str, old: str, new: str) -> str | None:
    """setup.py *text* with the ``version=`` keyword of each ``setup(...)`` call set to ``"new"``.

    Any expression is replaced (``version=about["__version__"]``), except a
    string literal other than *old*.  Returns None when there is no such
    keyword or the file is not Python 3 syntax.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    raw = text.encode("utf-8")
    starts = [0]
    for line in raw.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if not _is_setup_call(node):
            continue
        assert isinstance(node, ast.Call)
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg != "version" or value.end_lineno is None or value.end_col_offset is None:
                continue
            if isinstance(value, ast.Constant) and not (
                isinstance(value.value, str) and _same(value.value, old)
            ):
                continue
            # ast offsets count UTF-8 bytes within a line.
            spans.append((starts[value.lineno - 1] + value.col_offset,
                          starts[value.end_lineno - 1] + value.end_col_offset))
    if not spans:
        return None
    for begin, end in sorted(spans, reverse=True):
        raw = raw[:begin] + f'"{new}"'.encode() + raw[end:]
    return raw.decode("utf-8")


def rewrite_pyproject(text: str, old: str, new: str) -> tuple[str, list[str]] | None:
    """pyproject.toml *text* with the version set to *new* where backends read it.

    ``[project] version`` equal to *old* is replaced; a ``dynamic`` version
    is made static (``version`` leaves ``dynamic`` and
    ``[tool.setuptools.dynamic]``); ``[tool.poetry] version`` equal to *old*
    is replaced.  Formatting and comments stay.  Returns ``(text, [what
    changed])`` or None.  Raises RemediateError for invalid TOML.
    """
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise RemediateError(f"pyproject.toml is not valid TOML ({exc})") from exc
    changed: list[str] = []
    project = doc.get("project")
    if isinstance(project, dict):
        dynamic = project.get("dynamic")
        if isinstance(project.get("version"), str) and _same(str(project["version"]), old):
            project["version"] = new
            changed.append("[project] version")
        elif isinstance(dynamic, list) and "version" in dynamic:
            dynamic.remove("version")
            if not dynamic:
                del project["dynamic"]
            project["version"] = new
            changed.append("[project] version (was dynamic)")
    tool = doc.get("tool")
    if isinstance(tool, dict):
        setuptools = tool.get("setuptools")
        dyn = setuptools.get("dynamic") if isinstance(setuptools, dict) else None
        if isinstance(dyn, dict) and "version" in dyn and changed:
            del dyn["version"]
            changed.append("[tool.setuptools.dynamic] version removed")
        poetry = tool.get("poetry")
        poetry_version = poetry.get("version") if isinstance(poetry, dict) else None
        if isinstance(poetry_version, str) and _same(poetry_version, old):
            assert isinstance(poetry, dict)
            poetry["version"] = new
            changed.append("[tool.poetry] version")
    return (tomlkit.dumps(doc), changed) if changed else None


def _python_candidates(tree: Path) -> list[Path]:
    found: list[Path] = []
    if (tree / "setup.py").is_file():
        found.append(tree / "setup.py")

    def walk(folder: Path, depth: int) -> None:
        for child in sorted(folder.iterdir()):
            if child.is_symlink():
                continue
            if child.is_dir():
                if depth < _MAX_DEPTH and child.name not in _SKIP_DIRS and not (
                    child.name.startswith(".") or child.name.endswith(".egg-info")
                ):
                    walk(child, depth + 1)
            elif child.name in _VERSION_MODULES:
                found.append(child)

    walk(tree, 1)
    return found


def _edit(path: Path, rewrite: Callable[[str], str | None]) -> bool:
    text = path.read_text("utf-8")
    result = rewrite(text)
    if result is None or result == text:
        return False
    path.write_text(result, "utf-8")
    return True


def set_version(tree: Path, old: str, new: str) -> tuple[VersionEdit, ...]:
    """Rewrite the version of the unpacked sdist at *tree* from *old* to *new*.

    Returns the edits made, in a stable order.  Raises RemediateError when
    *old* or *new* is not a PEP 440 version, the tree has no ``PKG-INFO``, or
    PKG-INFO names another version.  Callers should still check the version
    of the wheel the backend builds (a backend may compute it in ways no
    rewrite can see).
    """
    for value in (old, new):
        try:
            Version(value)
        except InvalidVersion as exc:
            raise RemediateError(f"{value!r} is not a PEP 440 version") from exc
    if not (tree / "PKG-INFO").is_file():
        raise RemediateError(
            f"{tree}: no PKG-INFO at the root; pass the unpacked sdist's top folder",
            tree=str(tree),
        )
    edits: list[VersionEdit] = []

    def rel(path: Path) -> str:
        return path.relative_to(tree).as_posix()

    pkg_infos = [tree / "PKG-INFO", *sorted(tree.glob("*.egg-info/PKG-INFO")),
                 *sorted(tree.glob("src/*.egg-info/PKG-INFO"))]
    for path in pkg_infos:
        if _edit(path, lambda t: rewrite_pkg_info(t, old, new)):
            edits.append(VersionEdit(rel(path), "PKG-INFO Version"))
    backend_edits = len(edits)

    pyproject = tree / "pyproject.toml"
    if pyproject.is_file():
        result = rewrite_pyproject(pyproject.read_text("utf-8"), old, new)
        if result is not None:
            pyproject.write_text(result[0], "utf-8")
            edits.extend(VersionEdit("pyproject.toml", what) for what in result[1])
    setup_cfg = tree / "setup.cfg"
    if setup_cfg.is_file() and _edit(setup_cfg, lambda t: rewrite_setup_cfg(t, old, new)):
        edits.append(VersionEdit("setup.cfg", "[metadata] version"))
    setup_py = tree / "setup.py"
    if setup_py.is_file() and _edit(setup_py, lambda t: rewrite_setup_py(t, old, new)):
        edits.append(VersionEdit("setup.py", "setup(version=...)"))

    if len(edits) == backend_edits:
        # No build configuration names the version: the backend reads it
        # from the code, so the code must carry the new one.
        for path in _python_candidates(tree):
            if _edit(path, lambda t: rewrite_assignments(t, old, new)):
                edits.append(VersionEdit(rel(path), "version assignment"))
    return tuple(edits)


def version_setter(old: str, new: str) -> Callable[[Path], None]:
    """A ``(tree) -> None`` step for the build pipeline that sets the version *old* -> *new*."""

    def apply(tree: Path) -> None:
        set_version(tree, old, new)

    return apply
