"""Credentials for an index, and where a client finds them: flags, the URL, the environment, netrc.

:func:`split_index_url` reads an ``--index`` URL once (root, repository,
user info); :func:`resolve_credentials` applies the one precedence every
client command shares.  Nothing here sends anything: the client binds the
credentials to the index's origin (:class:`~fromsource.indexclient.client.OriginAuth`).
"""

from __future__ import annotations

import netrc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from fromsource.errors import IndexClientError
from fromsource.indexclient.links import redact

CREDENTIALS_HINT = (
    "pass --username/--password, set FROMSOURCE_USERNAME/FROMSOURCE_PASSWORD or add "
    "the host to ~/.netrc"
)
"""Where :func:`resolve_credentials` looks, as advice for a refused request."""


@dataclass(frozen=True)
class Credentials:
    """A user name (a token's id) and password (its secret) for HTTP Basic auth.

    The password is never in repr or messages.
    """

    username: str
    password: str = field(repr=False)

    @property
    def url_username(self) -> str:
        """The id as written in URLs: ``/`` becomes ``_`` (a fromsource index accepts both)."""
        return self.username.replace("/", "_")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every spelling of the secret that may end up in a file (for masking)."""
        encoded = quote(self.password, safe="")
        return (self.password,) if encoded == self.password else (self.password, encoded)


@dataclass(frozen=True)
class IndexURL:
    """An ``--index`` URL read once: the root (no user info, ends with ``/``), the
    repository it names (None for the root itself) and its percent-decoded user info."""

    root: str
    repo: str | None
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def split_index_url(url: str) -> IndexURL:
    """The parts of an ``--index`` URL of a fromsource index.

    The origin alone (or with a path prefix) is the root;
    ``<origin>/<prefix>/<repo>/simple/`` names that repository.  Raises
    IndexClientError, without the user info, for a URL that is not http(s).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise IndexClientError(
            f"--index {redact(url)}: expected an http(s) URL: the index's root, or one "
            "repository's simple page (root followed by python/simple/)"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host + (f":{parts.port}" if parts.port else "")
    segments = [s for s in parts.path.split("/") if s]
    repo = None
    if len(segments) >= 2 and segments[-1] == "simple":
        repo, segments = segments[-2], segments[:-2]
    path = "/" + "".join(f"{s}/" for s in segments)
    return IndexURL(
        urlunsplit((parts.scheme, netloc, path, "", "")),
        repo,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


def resolve_credentials(
    url: str,
    username: str | None,
    password: str | None,
    environ: Mapping[str, str],
    netrc_path: Path | None,
) -> tuple[Credentials | None, list[str]]:
    """Credentials for *url*: flags, then the URL, then FROMSOURCE_USERNAME/PASSWORD, then netrc.

    Returns the credentials (or None) and warnings (e.g. an unreadable
    netrc).  Raises IndexClientError when *url* is not an index URL.
    """
    parsed = split_index_url(url)
    if username:
        return Credentials(username, password or ""), []
    if parsed.username:
        return Credentials(parsed.username, parsed.password or ""), []
    if environ.get("FROMSOURCE_USERNAME"):
        return Credentials(
            environ["FROMSOURCE_USERNAME"], environ.get("FROMSOURCE_PASSWORD", "")
        ), []
    if netrc_path is None or not netrc_path.is_file():
        return None, []
    host = urlsplit(url).hostname or ""
    try:
        entry = netrc.netrc(str(netrc_path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        return None, [f"{netrc_path}: ignored, it cannot be read ({exc.__class__.__name__})"]
    if entry and entry[0]:
        return Credentials(entry[0], entry[2] or ""), []
    return None, []


def default_netrc(environ: Mapping[str, str]) -> Path:
    """The netrc file pip and curl would read: ``$NETRC`` or ``~/.netrc``."""
    return Path(environ.get("NETRC") or Path.home() / ".netrc")
