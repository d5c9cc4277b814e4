"""What a lock or requirements file pins: one value per package, and where each came from.

Pure values.  The readers (one per format: :mod:`~fromsource.lockfiles.reqfile`,
:mod:`~fromsource.lockfiles.uvlock`, :mod:`~fromsource.lockfiles.poetrylock`,
:mod:`~fromsource.lockfiles.pdmlock`, :mod:`~fromsource.lockfiles.pylock`,
:mod:`~fromsource.lockfiles.pipfilelock`) make them; ``verify``, ``lock
update-hashes`` and the build of a lock's closure read them.  A value reports
what the file says and nothing more: a source the file does not name is not
guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.markers import Marker

from fromsource.dist.names import ProjectName, Sha256

SourceKind = Literal["index", "vcs", "path", "url"]
"""``index``: a package index; ``vcs``: a VCS checkout; ``path``: a local directory
or file; ``url``: a direct archive URL."""


@dataclass(frozen=True)
class Source:
    """Where a pinned package is installed from, as the file records it.

    *location* is, for ``index``, the index URL the file names (None: the
    file names none, so the installer's configured index is meant); for the
    other kinds the VCS URL, path or URL as written.  *form* is the format's
    own word for the source (``registry``, ``legacy``, ``git``, ``directory``,
    ``editable``, ``virtual``...); *editable* is True for an editable install
    (``-e``, a workspace project).
    """

    kind: SourceKind
    location: str | None = None
    form: str = ""
    editable: bool = False

    def describe(self) -> str:
        """A short human description: ``index``, ``git <repository URL>``, ``editable directory .``."""
        words = [
            w
            for w in (
                "editable" if self.editable else "",
                self.form or self.kind,
                self.location or "",
            )
            if w
        ]
        return " ".join(words)


INDEX = Source("index")
"""A package from whatever index the installer is configured with."""


@dataclass(frozen=True)
class PinnedFile:
    """One distribution file the lock lists for a package.

    *url* is where the lock says to download it (None when it records a
    *path* or only the filename); *sha256* is None when the lock records no
    sha256 for it.
    """

    filename: str
    url: str | None
    sha256: Sha256 | None
    path: str | None = None

    @property
    def is_wheel(self) -> bool:
        """Whether the file is a wheel."""
        return self.filename.endswith(".whl")


@dataclass(frozen=True)
class PinnedPackage:
    """One package entry of a lock or requirements file.

    *name* is the normalized project name, None when the entry does not say
    it (``-e ./folder``, a URL without ``#egg=``); *label* names the entry in
    messages: the name as written, else the path or URL as written.
    *version* is the pinned version, None when the entry pins none (``>=``,
    a VCS checkout without one).  *hashes* are every sha256 the entry allows
    (its files' and any listed without a file); *files* are the files the
    format lists, in the file's order.  *allows_local* is True when the pin
    is a ``==`` specifier, which PEP 440 lets a local version ``X.Y.Z+fs.N``
    satisfy.  *origin* and *line* say where the entry is written (*line* is
    None where a format gives no line, such as an inline TOML array).
    """

    name: ProjectName | None
    label: str
    version: str | None
    origin: str
    line: int | None
    source: Source = INDEX
    extras: frozenset[str] = frozenset()
    marker: Marker | None = None
    hashes: frozenset[Sha256] = frozenset()
    files: tuple[PinnedFile, ...] = ()
    allows_local: bool = False

    @property
    def location(self) -> str:
        """``origin:line`` (or the origin alone when there is no line), for messages."""
        return self.origin if self.line is None else f"{self.origin}:{self.line}"


@dataclass(frozen=True)
class Lock:
    """A lock or requirements file as read, with the files it includes.

    *packages* are what it installs; *constraints* the entries of
    requirements files included with ``-c`` (they limit versions, install
    nothing).  *files* lists every file read, the top one first.
    """

    format: str
    origin: str
    packages: tuple[PinnedPackage, ...]
    constraints: tuple[PinnedPackage, ...] = ()
    files: tuple[str, ...] = ()
