"""Simple-index project pages as typed values: pure parsers of PEP 691 JSON and PEP 503 HTML.

Both forms of one page parse to the same :class:`ProjectPage` (the JSON
form may say more: size, upload time, PEP 700 versions).  A page is
untrusted input: the top level must be a page of API version 1.x or
:class:`~fromsource.errors.IndexClientError` is raised; a single malformed
file entry is skipped rather than failing the whole page.  URLs are made
absolute against the page's URL (or its ``<base href>``) and lose their
fragment, whose ``sha256=`` becomes the digest when the page gives none.
Nothing here touches the network or the disk.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser

from fromsource.dist.names import Sha256
from fromsource.errors import IndexClientError
from fromsource.indexclient.links import redact

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT = f"{JSON_TYPE}, {HTML_TYPE};q=0.2, text/html;q=0.01"
"""What a client asks for: JSON (PEP 691) first, HTML (PEP 503) as the fallback."""


@dataclass(frozen=True)
class ProjectFile:
    """One file listed on a project page.

    *url* is absolute and has no fragment; *sha256* is None when the page
    gives no valid sha256 digest.  *metadata* says the index serves the
    file's core metadata (PEP 658/714), *metadata_sha256* its digest when
    given; *provenance_url* is the PEP 740 provenance link, absolute.
    *origin* is what a fromsource index says about where the file comes from
    (``upstream``: served from the upstream index under policy, not built
    here), from the JSON key ``_fromsource`` or the HTML attribute
    ``data-fromsource-origin``; *policy_generation* the policy it was served under.
    """

    filename: str
    url: str
    sha256: Sha256 | None
    size: int | None = None
    requires_python: str | None = None
    yanked: bool = False
    upload_time: datetime | None = None
    yanked_reason: str | None = None
    metadata: bool = False
    metadata_sha256: Sha256 | None = None
    provenance_url: str | None = None
    origin: str | None = None
    policy_generation: int | None = None


@dataclass(frozen=True)
class ProjectPage:
    """A parsed project page: its files in page order.

    *name* and *versions* (PEP 700) come from a JSON page only (None and
    ``()`` for HTML); *api_version* is the page's ``api-version`` (``1.0``
    when it names none).
    """

    files: tuple[ProjectFile, ...]
    name: str | None = None
    versions: tuple[str, ...] = ()
    api_version: str = "1.0"


def parse_page(body: bytes, content_type: str, page_url: str) -> ProjectPage:
    """The page in *body*, parsed by its *content_type*: JSON when it says so, else HTML."""
    if "json" in content_type.lower():
        return parse_json_page(body, page_url)
    return parse_html_page(body, page_url)


def parse_json_page(body: bytes, page_url: str) -> ProjectPage:
    """The PEP 691 JSON project page in *body*, fetched from *page_url*.

    Raises IndexClientError for invalid JSON, a document that is not a
    project page, or an api-version other than 1.x.
    """
    where = redact(page_url)
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise _not_a_page(where, f"invalid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise _not_a_page(where, "no list of files")
    meta = document.get("meta")
    version = str(meta.get("api-version", "1.0")) if isinstance(meta, dict) else "1.0"
    _check_version(version, where)
    found = (_json_file(entry, page_url) for entry in document["files"])
    files = tuple(f for f in found if f is not None)
    name = document.get("name")
    versions = document.get("versions")
    return ProjectPage(
        files=files,
        name=name if isinstance(name, str) else None,
        versions=tuple(str(v) for v in versions) if isinstance(versions, list) else (),
        api_version=version,
    )


def parse_html_page(body: bytes | str, page_url: str) -> ProjectPage:
    """The PEP 503 HTML project page in *body*, fetched from *page_url*.

    Honours ``<base href>``; the sha256 comes from the URL fragment; a
    file's name is the anchor text, or the URL's last path segment when
    that is empty.  Raises IndexClientError for a
    ``pypi:repository-version`` other than 1.x.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    parser = _Anchors()
    parser.feed(text)
    parser.close()
    version = parser.version or "1.0"
    _check_version(version, redact(page_url))
    base = urllib.parse.urljoin(page_url, parser.base) if parser.base else page_url
    files = []
    for attrs, label in parser.anchors:
        url, fragment_sha = _split_fragment(urllib.parse.urljoin(base, attrs["href"] or ""))
        metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
        provenance = attrs.get("data-provenance")
        files.append(
            ProjectFile(
                filename=label or urllib.parse.unquote(url.rstrip("/").rsplit("/", 1)[-1]),
                url=url,
                sha256=fragment_sha,
                requires_python=attrs.get("data-requires-python") or None,
                yanked="data-yanked" in attrs,
                yanked_reason=attrs.get("data-yanked") or None,
                metadata=metadata is not None and metadata.lower() != "false",
                metadata_sha256=_split_hash(metadata or ""),
                provenance_url=urllib.parse.urljoin(base, provenance) if provenance else None,
                origin=attrs.get("data-fromsource-origin") or None,
                policy_generation=_count(attrs.get("data-fromsource-policy-generation")),
            )
        )
    return ProjectPage(files=tuple(files), api_version=version)


def _not_a_page(where: str, why: str) -> IndexClientError:
    return IndexClientError(f"{where}: not a PEP 691 project page ({why})", url=where)


def _check_version(version: str, where: str) -> None:
    major = version.split(".")[0].strip()
    if major != "1":
        raise IndexClientError(
            f"{where}: unsupported simple API version {version} (this client reads 1.x); "
            "use an index that serves version 1",
            url=where,
        )


def _json_file(entry: object, page_url: str) -> ProjectFile | None:
    """One file entry of a JSON page; None when it has no string filename and URL."""
    if not isinstance(entry, dict):
        return None
    filename, link = entry.get("filename"), entry.get("url")
    if not isinstance(filename, str) or not filename or not isinstance(link, str):
        return None
    url, fragment_sha = _split_fragment(urllib.parse.urljoin(page_url, link))
    hashes = entry.get("hashes")
    yanked, size = entry.get("yanked", False), entry.get("size")
    metadata = entry.get("core-metadata", entry.get("dist-info-metadata", False))
    provenance, requires = entry.get("provenance"), entry.get("requires-python")
    # PEP 691 reserves keys beginning with "_" for the index: ours says where a file came from.
    mark = entry.get("_fromsource")
    mark = mark if isinstance(mark, dict) else {}
    origin = mark.get("origin")
    return ProjectFile(
        filename=filename,
        url=url,
        sha256=_sha256(hashes.get("sha256") if isinstance(hashes, dict) else None) or fragment_sha,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        requires_python=requires if isinstance(requires, str) and requires else None,
        yanked=bool(yanked),
        upload_time=_time(entry.get("upload-time")),
        yanked_reason=yanked if isinstance(yanked, str) and yanked else None,
        metadata=bool(metadata),
        metadata_sha256=_sha256(metadata.get("sha256")) if isinstance(metadata, dict) else None,
        provenance_url=urllib.parse.urljoin(page_url, provenance)
        if isinstance(provenance, str) and provenance
        else None,
        origin=origin if isinstance(origin, str) and origin else None,
        policy_generation=_count(mark.get("policy_generation")),
    )


def _count(value: object) -> int | None:
    """A non-negative integer from JSON or an HTML attribute, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _sha256(value: object) -> Sha256 | None:
    text = value.lower() if isinstance(value, str) else ""
    ok = len(text) == 64 and all(c in "0123456789abcdef" for c in text)
    return Sha256(text) if ok else None


def _split_hash(text: str) -> Sha256 | None:
    """The digest of ``sha256=<hex>`` (a URL fragment, a ``data-core-metadata`` value)."""
    algo, _, digest = text.partition("=")
    return _sha256(digest) if algo.lower() == "sha256" else None


def _split_fragment(url: str) -> tuple[str, Sha256 | None]:
    base, _, fragment = url.partition("#")
    return base, _split_hash(fragment)


def _time(value: object) -> datetime | None:
    """A PEP 700 upload-time; naive times are taken as UTC, unparsable ones as None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Anchors(HTMLParser):
    """Collects ``<a>`` tags (attributes and text), ``<base href>`` and the API version."""

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
