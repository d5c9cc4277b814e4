"""Which URLs an index may make us follow, and URLs fit for messages: pure rules over text.

What a page links to is untrusted (issue 18): :func:`link_allowed` decides on
the text alone, before anything is opened, so an HTTP page can never make
the host read its own files.  :func:`redact` is the one way a URL reaches a
message or a log: without its user info.
"""

from __future__ import annotations

import re
import urllib.parse

from fromsource.errors import IndexClientError

_FOLLOWED = {"file": ("file",), "https": ("https",), "http": ("http", "https")}
"""Link schemes followed from an index of each scheme (upgrades only, never to local files)."""

_USERINFO = re.compile(r"(?<=//)[^/?#]*@")


def redact(url: str) -> str:
    """*url* without any ``user:password@``, for messages and for URLs handed on.

    Works on the text, so it never fails, whatever *url* holds.
    """
    return _USERINFO.sub("", url, count=1)


def link_allowed(index_url: str, link: str) -> bool:
    """Whether a *link* given by the index at *index_url* (a page link or a redirect) may be followed.

    Only the index's own kind of URL: ``file:`` links only from a ``file:``
    index (an HTTP page must never make the host read its own files), an
    ``https:`` index only ``https:`` links, an ``http:`` index also
    ``https:`` ones.  Decided on the text alone, before anything is opened.
    """
    index = urllib.parse.urlsplit(index_url).scheme.lower()
    return urllib.parse.urlsplit(link).scheme.lower() in _FOLLOWED.get(index, ())


def refused_link(what: str, link: str, index_url: str) -> IndexClientError:
    """The one error for a link :func:`link_allowed` refuses (*what* names the file or page).

    The same words whatever the link points at: it names the schemes, never
    the path, and is raised before the path is touched, so it cannot tell
    whether a local file exists.
    """
    scheme = urllib.parse.urlsplit(link).scheme.lower() or "relative"
    index = urllib.parse.urlsplit(index_url).scheme.lower()
    allowed = " or ".join(f"{s}:" for s in _FOLLOWED.get(index, ())) or "no"
    return IndexClientError(
        f"{what}: the index links it with a {scheme}: URL; from a {index}: index only "
        f"{allowed} links are followed, so it was not fetched (check the index URL setting)",
        filename=what,
    )
