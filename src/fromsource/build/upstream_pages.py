"""Reading upstream simple-index pages: pure functions over page bytes.

PEP 691 JSON and PEP 503 HTML project pages parse to the same
:class:`UpstreamFile` values; :func:`dist_of` says what a listed file is.
Nothing here touches the network or the disk; :mod:`fromsource.build.upstream`
does the fetching.  :func:`link_allowed` decides which links may be followed
at all (issue 18: an HTTP page must not make the host read its own files).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any, Literal

import httpx
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fromsource.build.targets import requires_python_allows
from fromsource.dist.names import Sha256
from fromsource.errors import UpstreamError

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar")
"""Sdist extensions, in order of preference when a release has several."""


@dataclass(frozen=True)
class UpstreamFile:
    """One file listed on an upstream project page."""

    filename: str
    url: str
    sha256: Sha256 | None
    size: int | None = None
    requires_python: str | None = None
    yanked: bool = False
    upload_time: datetime | None = None
    yanked_reason: str | None = None


@dataclass(frozen=True)
class DistInfo:
    """What a file's name says it is: sdist or wheel, version, wheel tags."""

    kind: Literal["sdist", "wheel"]
    version: Version
    tags: frozenset[Tag] = frozenset()


def dist_of(file: UpstreamFile, project: str) -> DistInfo | None:
    """What *file* is for *project* (sdist or wheel, version), or None.

    Files of other projects, unparsable names and non-PEP 440 versions give
    None, so they are skipped rather than failing a whole page.
    """
    name = file.filename
    if name.endswith(".whl"):
        try:
            wname, version, _build, tags = parse_wheel_filename(name)
        except (InvalidWheelFilename, InvalidVersion):
            return None
        return DistInfo("wheel", version, tags) if wname == canonicalize_name(project) else None
    suffix = next((s for s in SDIST_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    # The name part may itself hold dashes: try every split, as pip does.
    for i, char in enumerate(stem):
        if char == "-" and canonicalize_name(stem[:i]) == canonicalize_name(project):
            try:
                return DistInfo("sdist", Version(stem[i + 1 :]))
            except InvalidVersion:
                return None
    return None


def _sha256(value: object) -> Sha256 | None:
    text = str(value).lower() if value else ""
    ok = len(text) == 64 and all(c in "0123456789abcdef" for c in text)
    return Sha256(text) if ok else None


def _split_fragment(url: str) -> tuple[str, Sha256 | None]:
    base, _, fragment = url.partition("#")
    algo, _, digest = fragment.partition("=")
    return base, _sha256(digest) if algo == "sha256" else None


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def parse_json_page(data: bytes, page_url: str) -> list[UpstreamFile]:
    """The files of a PEP 691 JSON project page fetched from *page_url*.

    Relative URLs are resolved against *page_url*.  Raises UpstreamError for
    invalid JSON or an api-version other than 1.x.
    """
    try:
        page = json.loads(data)
        major = str(page.get("meta", {}).get("api-version", "1.0")).split(".")[0]
        entries: list[dict[str, Any]] = page["files"]
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise UpstreamError(f"{redact(page_url)}: not a PEP 691 project page ({exc})") from exc
    if major != "1":
        raise UpstreamError(f"{redact(page_url)}: unsupported simple API version {major}")
    files = []
    for entry in entries:
        url, frag_hash = _split_fragment(urllib.parse.urljoin(page_url, str(entry["url"])))
        yanked = entry.get("yanked", False)
        size = entry.get("size")
        files.append(
            UpstreamFile(
                filename=str(entry["filename"]),
                url=url,
                sha256=_sha256((entry.get("hashes") or {}).get("sha256")) or frag_hash,
                size=size if isinstance(size, int) else None,
                requires_python=entry.get("requires-python") or None,
                yanked=bool(yanked),
                upload_time=_time(entry.get("upload-time")),
                yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
            )
        )
    return files


class _Anchors(HTMLParser):
    """Collects ``<a>`` tags (attributes and text) and ``<base href>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.version: str | None = None
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._open: tuple[dict[str, str | None], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "base" and self.base is None and found.get("href"):
            self.base = found["href"]
        elif tag == "meta" and found.get("name") == "pypi:repository-version":
            self.version = found.get("content")
        elif tag == "a" and found.get("href"):
            self._open = (found, [])

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.anchors.append((self._open[0], "".join(self._open[1]).strip()))
            self._open = None


def parse_html_page(text: str, page_url: str) -> list[UpstreamFile]:
    """The files of a PEP 503 HTML project page fetched from *page_url*.

    Honours ``<base href>``; the sha256 comes from the URL fragment; a file's
    name is the anchor text, or the URL's last path segment when empty.
    """
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    if parser.version and parser.version.split(".")[0] != "1":
        raise UpstreamError(f"{redact(page_url)}: unsupported simple API version")
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    files = []
    for attrs, label in parser.anchors:
        url, sha = _split_fragment(urllib.parse.urljoin(base, attrs["href"] or ""))
        name = label or urllib.parse.unquote(url.rstrip("/").rsplit("/", 1)[-1])
        files.append(
            UpstreamFile(
                filename=name,
                url=url,
                sha256=sha,
                requires_python=attrs.get("data-requires-python") or None,
                yanked="data-yanked" in attrs,
                yanked_reason=attrs.get("data-yanked") or None,
            )
        )
    return files


def python_ok(file: UpstreamFile, python_version: str | None) -> bool:
    """Whether *file*'s Requires-Python admits *python_version* (None: any Python)."""
    return python_version is None or requires_python_allows(file.requires_python, python_version)


_FOLLOWED = {"file": ("file",), "https": ("https",), "http": ("http", "https")}
"""Link schemes followed from an index of each scheme (upgrades only, never to local files)."""


def link_allowed(index_url: str, link: str) -> bool:
    """Whether a file *link* listed by the index at *index_url* may be followed.

    Only the index's own kind of URL: ``file:`` links only from a ``file:``
    index (an HTTP page must never make the host read its own files), an
    ``https:`` index only ``https:`` links, an ``http:`` index also
    ``https:`` ones.  Decided on the text alone, before anything is opened.
    """
    index = urllib.parse.urlsplit(index_url).scheme.lower()
    return urllib.parse.urlsplit(link).scheme.lower() in _FOLLOWED.get(index, ())


def refused_link(filename: str, link: str, index_url: str) -> UpstreamError:
    """The one error for a link :func:`link_allowed` refuses.

    The same words whatever the link points at: it names the schemes, never
    the path, and is raised before the path is touched, so it cannot tell
    whether a local file exists.
    """
    scheme = urllib.parse.urlsplit(link).scheme.lower() or "relative"
    index = urllib.parse.urlsplit(index_url).scheme.lower()
    allowed = " or ".join(f"{s}:" for s in _FOLLOWED.get(index, ())) or "no"
    return UpstreamError(
        f"{filename}: the upstream index links it with a {scheme}: URL; from a {index}: "
        f"index only {allowed} links are followed, so it was not fetched (check the "
        "upstream index setting)",
        category="upstream-error",
        filename=filename,
    )


def redact(url: str) -> str:
    """*url* without any user:password, for messages."""
    try:
        return str(httpx.URL(url).copy_with(username=None, password=None))
    except (httpx.InvalidURL, TypeError):
        return url.split("@")[-1]
