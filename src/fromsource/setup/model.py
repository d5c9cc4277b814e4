"""The values ``fromsource setup`` works with: the index, a planned change.

The credentials are :class:`fromsource.indexclient.Credentials`, shared with
``verify`` and ``lock``.

Pure: nothing here reads the disk or the environment.  The index root is
validated once here (:func:`index_spec`) so every client writer can rely on
``root`` ending with ``/`` and carrying no credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit

from fromsource.config import ALL_REPOSITORIES, VIRTUAL_REPOSITORIES
from fromsource.errors import ConfigError
from fromsource.indexclient import Credentials, redact

Target = Literal["pip", "uv", "poetry", "pdm", "netrc"]
TARGETS: tuple[Target, ...] = ("pip", "uv", "poetry", "pdm", "netrc")

DEFAULT_REPOS = ("python-all",)
"""``python-all`` serves remediated versions first, then ``python``: one index, so
every client gets the priority without needing two sources."""

DEFAULT_NAME = "fromsource"
MASK = "********"


@dataclass(frozen=True)
class Source:
    """One repository as a client source: its name in the client's config and its URL."""

    name: str
    repo: str
    url: str


@dataclass(frozen=True)
class IndexSpec:
    """The index root (``https://host/`` or with a path prefix, ending with ``/``),
    the repositories to use in priority order, and the base name for sources."""

    root: str
    repos: tuple[str, ...]
    name: str = DEFAULT_NAME

    @property
    def host(self) -> str:
        """The host name (no port): what ``.netrc`` ``machine`` lines match."""
        return urlsplit(self.root).hostname or ""

    def simple_url(self, repo: str, credentials: Credentials | None = None) -> str:
        """``<root><repo>/simple/``, with ``user:secret@`` when *credentials* are given."""
        url = f"{self.root}{repo}/simple/"
        if credentials is None:
            return url
        scheme, rest = url.split("://", 1)
        user = quote(credentials.url_username, safe="")
        secret = quote(credentials.password, safe="")
        return f"{scheme}://{user}:{secret}@{rest}"

    def sources(self) -> tuple[Source, ...]:
        """The sources to write: one named *name*, or ``<name>-<suffix>`` per repository."""
        if len(self.repos) == 1:
            return (Source(self.name, self.repos[0], self.simple_url(self.repos[0])),)
        return tuple(
            Source(f"{self.name}-{_suffix(repo)}", repo, self.simple_url(repo)) for repo in self.repos
        )

    def owns(self, url: str) -> bool:
        """Whether *url* points into this index (so an entry with it may be replaced)."""
        return redact(url).startswith(self.root)


def _suffix(repo: str) -> str:
    return repo.removeprefix("python-") if repo != "python" else "python"


def index_spec(index: str, repos: tuple[str, ...] = (), name: str = DEFAULT_NAME) -> IndexSpec:
    """Validate the server root URL and the repositories; returns an :class:`IndexSpec`.

    Raises ConfigError for a URL that is not http(s), carries credentials,
    query or fragment, or already names a repository's simple page; for an
    unknown or repeated repository; for ``python-all`` next to one of the
    repositories it combines; or for a name a client cannot take.
    """
    parts = urlsplit(index.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--index {index!r} is not an http(s) URL; pass the server root, "
            "e.g. https://pkgs.example.com/"
        )
    if parts.username or parts.password:
        raise ConfigError(
            "--index must not carry credentials; pass them with --username/--password or "
            "FROMSOURCE_USERNAME/FROMSOURCE_PASSWORD"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"--index {index!r}: remove the query or fragment")
    path = parts.path.rstrip("/")
    segments = path.split("/")
    if segments[-1] == "simple" or (len(segments) >= 1 and segments[-1] in ALL_REPOSITORIES):
        raise ConfigError(
            f"--index {index!r} looks like a repository URL; pass the server root "
            f"(without /<repo>/simple/) and choose repositories with --repo"
        )
    root = f"{parts.scheme}://{parts.netloc}{path}/"
    chosen = repos or DEFAULT_REPOS
    unknown = [r for r in chosen if r not in ALL_REPOSITORIES]
    if unknown:
        raise ConfigError(
            f"unknown repositories {unknown}; choose from {', '.join(ALL_REPOSITORIES)}"
        )
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"--repo lists a repository twice: {list(chosen)}")
    for virtual, backing in VIRTUAL_REPOSITORIES.items():
        if virtual in chosen and len(chosen) > 1:
            raise ConfigError(
                f"{virtual} already combines {' and '.join(backing)}; pass it alone, "
                "or pass the real repositories in priority order instead"
            )
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(f"--name {name!r}: use letters, digits, '-', '_' or '.'")
    return IndexSpec(root, tuple(chosen), name)


@dataclass(frozen=True)
class Change:
    """One file to write: its text before (None when absent) and after.

    *mode* is the permission the file must have afterwards (0o600 when it holds a
    secret); None keeps an existing file's mode and uses the umask for a new one.
    """

    path: Path
    before: str | None
    after: str
    what: str
    mode: int | None = None

    @property
    def changed(self) -> bool:
        """Whether writing would change the file's text."""
        return self.before != self.after


@dataclass(frozen=True)
class Plan:
    """What ``setup`` will do: the file changes, notes for the user, and the
    commands that purge the clients' caches."""

    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()
    purge: tuple[str, ...] = ()


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """*text* with every occurrence of every secret replaced by ``********``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text
