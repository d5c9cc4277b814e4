"""pip's requirements-file syntax, read into pinned packages and the files it includes.

:func:`parse_requirements` is pure: one file's text in, its entries and its
``-r``/``-c`` includes out (:func:`fromsource.lockfiles.read.read_lock`
follows them).  The rules are pip's:

- a line ending in ``\\`` continues on the next one, unless it is a comment
  line; ``#`` at the start or after white space starts a comment;
- the words of a line up to the first one that starts with ``-`` are the
  requirement, the rest are its options (``--hash``, ``--config-settings``);
  a line of options alone sets options (``-r``, ``-c``, ``-e``,
  ``--index-url``...).  An option pip does not know is refused, as pip
  refuses it, and so is a ``--hash`` that is not sha256, sha384 or sha512;
- a requirement is a URL (VCS, ``file:``, an archive), a local path (it
  holds a slash, starts with ``.`` or ends in an archive suffix) or a PEP 508
  requirement.  A path or URL is named by its ``#egg=`` fragment or its
  wheel filename, else its name is left unknown (pip learns it by building).

Environment variables (``${NAME}``) are not expanded.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from fromsource.dist.names import ProjectName, Sha256, normalize
from fromsource.lockfiles import _fields
from fromsource.lockfiles.pinned import PinnedPackage, Source

FORMAT = "requirements"

COMMENT = re.compile(r"(^|\s+)#.*$")
"""A comment, as pip finds it: ``#`` at the start of a line or after white space."""
_SPACES = re.compile(r"[ \t\r\n]+")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_URL_SCHEMES = ("http", "https", "file", "ftp")
_VCS = ("git", "hg", "svn", "bzr")
_ARCHIVES = (
    ".whl",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz",
    ".tar.xz",
    ".txz",
    ".tar.lz",
    ".tlz",
    ".tar.lzma",
    ".tar",
    ".zip",
)
_NAME_AT_URL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")
_EXTRAS = re.compile(r"^(.+?)\[([^\]]*)\]$")
_EGG = re.compile(r"[#&]egg=([^&]*)")
_EGG_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_STRONG_HASHES = ("sha256", "sha384", "sha512")
_ADVICE = "fix the line"

_VALUE_OPTIONS = (
    "--index-url",
    "--extra-index-url",
    "--constraint",
    "--requirement",
    "--editable",
    "--find-links",
    "--no-binary",
    "--only-binary",
    "--trusted-host",
    "--use-feature",
    "--global-option",
    "--hash",
    "--config-settings",
)
_FLAG_OPTIONS = ("--no-index", "--prefer-binary", "--require-hashes", "--pre")
_SHORT_OPTIONS = {
    "-i": "--index-url",
    "-c": "--constraint",
    "-r": "--requirement",
    "-e": "--editable",
    "-f": "--find-links",
    "-C": "--config-settings",
}


@dataclass(frozen=True)
class Include:
    """A file included by a requirements file: ``-r`` (requirements) or ``-c`` (constraints).

    *target* is the path or URL as written; *line* is where it is named.
    """

    target: str
    constraint: bool
    line: int


@dataclass(frozen=True)
class RequirementsFile:
    """One requirements file's entries (in order) and the files it includes."""

    packages: tuple[PinnedPackage, ...]
    includes: tuple[Include, ...]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """pip's logical lines of *text*: continuations joined, comments and blank lines dropped.

    Each is ``(number of its first physical line, content)``.
    """
    joined: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        is_comment = bool(COMMENT.match(raw))
        if raw.endswith("\\") and not is_comment:
            if not pending:
                start = number
            pending.append(raw.strip("\\"))
            continue
        if pending:
            joined.append((start, "".join([*pending, " " + raw if is_comment else raw])))
            pending = []
        else:
            joined.append((number, raw))
    if pending:
        joined.append((start, "".join(pending)))
    stripped = ((number, COMMENT.sub("", line).strip()) for number, line in joined)
    return [(number, line) for number, line in stripped if line]


def parse_requirements(text: str, origin: str = "requirements.txt") -> RequirementsFile:
    """The entries of the requirements file *text* (named *origin* in messages).

    Pure.  Raises LockError naming the file and line for a line pip would
    refuse: an unknown option, a malformed ``--hash``, an unreadable
    requirement or marker.
    """
    packages: list[PinnedPackage] = []
    includes: list[Include] = []
    for number, line in logical_lines(text):
        spot = _fields.Spot("requirements file", origin, number, line, _ADVICE)
        words = line.split(" ")
        first_option = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
        argument = " ".join(words[:first_option]).strip()
        options = _options(" ".join(words[first_option:]), spot)
        editable = [value for name, value in options if name == "--editable"]
        if argument:
            packages.append(_requirement(argument, options, spot))
        elif editable:
            packages.append(_editable(editable[0], spot))
        else:
            targets = [
                (name == "--constraint", value)
                for name, value in options
                if name in ("--requirement", "--constraint")
            ]
            if targets:  # pip follows one include per line, the first
                includes.append(Include(targets[0][1], targets[0][0], number))
    return RequirementsFile(tuple(packages), tuple(includes))


def _options(text: str, spot: _fields.Spot) -> list[tuple[str, str]]:
    """The ``(long option, value)`` pairs of an options string; flags have the value ""."""
    if not any(quote in text for quote in "'\"\\"):
        words = [w for w in _SPACES.split(text) if w]  # shlex's result, several times faster
    else:
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise spot.error(f"the options cannot be split ({exc})") from exc
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(words):
        word = words[position]
        position += 1
        if not word.startswith("-"):
            continue  # pip ignores stray words after options
        if word.startswith("--"):
            given, equals, value = word.partition("=")
            name = _long_option(given, spot)
            if name in _FLAG_OPTIONS:
                if equals:
                    raise spot.error(f"option {name} takes no value")
                found.append((name, ""))
                continue
        else:
            name = _SHORT_OPTIONS.get(word[:2], "")
            if not name:
                raise spot.error(f"unknown option {word[:2]}")
            equals, value = word[2:], word[2:]
        if not equals:
            if position == len(words):
                raise spot.error(f"option {name} needs a value")
            value = words[position]
            position += 1
        found.append((name, value))
    return found


def _long_option(given: str, spot: _fields.Spot) -> str:
    """The long option *given* names, also by a unique prefix (as pip's option parser allows)."""
    known = (*_VALUE_OPTIONS, *_FLAG_OPTIONS)
    if given in known:
        return given
    matches = [name for name in known if name.startswith(given)]
    if len(matches) != 1:
        raise spot.error(f"unknown option {given}")
    return matches[0]


def _hashes(options: Sequence[tuple[str, str]], spot: _fields.Spot) -> frozenset[Sha256]:
    digests: set[Sha256] = set()
    for name, value in options:
        if name != "--hash":
            continue
        algorithm, colon, digest = value.partition(":")
        if not colon or algorithm not in _STRONG_HASHES:
            raise spot.error(
                f"--hash={value} is not one of {', '.join(_STRONG_HASHES)} "
                "followed by `:` and the digest"
            )
        if algorithm == "sha256":
            digests.add(_fields.sha256(digest, spot))
    return frozenset(digests)


def _scheme(text: str) -> str | None:
    """The URL scheme of *text* when pip reads it as a URL (a VCS or archive URL)."""
    match = _SCHEME.match(text)
    if match is None:
        return None
    scheme = match.group(1).lower()
    return scheme if scheme in _URL_SCHEMES or scheme.split("+")[0] in _VCS else None


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith(".")


def _url_source(url: str, editable: bool = False) -> Source:
    scheme = (_scheme(url) or "").split("+")[0]
    if scheme in _VCS:
        return Source("vcs", url, scheme, editable)
    if scheme == "file":
        return Source("path", url, "file", editable)
    return Source("url", url, "url", editable)


def _named_by(location: str, spot: _fields.Spot) -> tuple[ProjectName | None, str | None]:
    """The (name, version) a path or URL states: its wheel filename, else its ``#egg=``."""
    filename = _fields.filename_of(location)
    if filename.endswith(".whl"):
        try:
            name, version, _build, _tags = parse_wheel_filename(filename)
        except InvalidWheelFilename as exc:
            raise spot.error(f"{filename} is not a valid wheel filename ({exc})") from exc
        return normalize(name), str(version)
    egg = _EGG.search(location)
    if egg is None:
        return None, None
    if not _EGG_NAME.match(egg.group(1)):
        raise spot.error(f"#egg={egg.group(1)} is not a project name")
    return normalize(egg.group(1)), None


def _extras(text: str | None) -> frozenset[str]:
    return frozenset(normalize(e.strip()) for e in (text or "").split(",") if e.strip())


def _requirement(
    argument: str, options: Sequence[tuple[str, str]], spot: _fields.Spot
) -> PinnedPackage:
    """A requirement line: a URL, a local path or a PEP 508 requirement."""
    spot = spot.named(argument)
    separator = "; " if _scheme(argument) else ";"  # pip: a URL may hold ";"
    text, _sep, marker_text = argument.partition(separator)
    text = text.strip()
    marker = _fields.marker({"marker": marker_text.strip() or None}, "marker", spot)
    base = PinnedPackage(
        None, text, None, spot.origin, spot.line, marker=marker, hashes=_hashes(options, spot)
    )
    if _scheme(text) is not None:
        name, version = _named_by(text, spot)
        return replace(base, name=name, version=version, source=_url_source(text))
    if not _NAME_AT_URL.match(text) and (
        _looks_like_path(text) or text.lower().endswith(_ARCHIVES)
    ):
        match = _EXTRAS.match(text)
        location, extras = (match.group(1), match.group(2)) if match else (text, None)
        name, version = _named_by(location, spot)
        return replace(
            base,
            name=name,
            version=version,
            extras=_extras(extras),
            source=Source("path", location, "path"),
        )
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        hint = "; ${...} variables are not expanded" if "${" in text else ""
        raise spot.error(f"not a requirement ({exc}){hint}") from exc
    base = replace(
        base,
        name=normalize(req.name),
        label=req.name,
        extras=frozenset(normalize(e) for e in req.extras),
    )
    if req.url:
        return replace(base, version=_named_by(req.url, spot)[1], source=_url_source(req.url))
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return replace(base, version=specs[0].version, allows_local=specs[0].operator == "==")
    return base


def _editable(value: str, spot: _fields.Spot) -> PinnedPackage:
    """An ``-e`` line: a local project folder or a VCS URL (pip refuses anything else)."""
    spot = spot.named(value)
    match = _EXTRAS.match(value)
    location, extras = (match.group(1), match.group(2)) if match else (value, None)
    scheme = _scheme(location)
    if scheme in ("http", "https", "ftp"):
        raise spot.error(f"an editable requirement is a local folder or a VCS URL, not {scheme}:")
    base = PinnedPackage(None, value, None, spot.origin, spot.line, extras=_extras(extras))
    if scheme is None:
        return replace(base, source=Source("path", location, "path", editable=True))
    return replace(
        base, name=_named_by(location, spot)[0], source=_url_source(location, editable=True)
    )
