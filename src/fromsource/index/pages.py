"""Simple-repository pages as values, and their PEP 503 HTML / PEP 691 JSON forms.

Pure: a :class:`ProjectPage` is built from published files and rendered by
one function per format.  URLs are relative to the page so the same bytes
are right behind any proxy or host name (PEP 503 and PEP 691 allow this).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from packaging.version import InvalidVersion, Version

from fromsource.store.catalog import FileInfo

API_VERSION = "1.1"
"""PEP 691 v1.0 plus PEP 700 (versions, size, upload-time) = v1.1."""

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


@dataclass(frozen=True)
class PageFile:
    """One file link on a project page.

    *size* and *upload_time* are None only for an upstream file whose page
    did not give them (the keys are then left out).  *origin* marks a file
    this index did not build (``upstream``: served from the upstream under
    policy generation *policy_generation*): the PEP 691 key ``_fromsource``
    and the HTML attribute ``data-fromsource-origin``.
    """

    filename: str
    url: str
    sha256: str
    size: int | None
    upload_time: datetime | None
    requires_python: str | None
    yanked: bool
    yanked_reason: str | None
    metadata_sha256: str | None
    provenance_url: str | None
    origin: str | None = None
    policy_generation: int | None = None


@dataclass(frozen=True)
class ProjectPage:
    """A project's simple page: name, versions and files, sorted."""

    name: str
    versions: tuple[str, ...]
    files: tuple[PageFile, ...]


def file_path(info: FileInfo) -> str:
    """The file's path below ``/<repo>/`` (stable forever: PEP 714 needs it)."""
    return f"files/{info.project}/{quote(info.version)}/{quote(info.filename)}"


def integrity_path(info: FileInfo, document: str) -> str:
    """The path below ``/<repo>/`` of a file's provenance or SBOM."""
    return f"integrity/{info.project}/{quote(info.version)}/{quote(info.filename)}/{document}"


def _version_key(text: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def page_file(info: FileInfo) -> PageFile:
    """The link to the published file *info* on its project page (``../../`` is ``/<repo>/``)."""
    return PageFile(
        filename=info.filename,
        url="../../" + file_path(info),
        sha256=info.sha256,
        size=info.size,
        upload_time=info.upload_time,
        requires_python=info.requires_python,
        yanked=info.yanked,
        yanked_reason=info.yanked_reason,
        metadata_sha256=info.metadata_sha256,
        provenance_url="../../" + integrity_path(info, "provenance")
        if info.provenance_sha256
        else None,
    )


def project_page(
    name: str, files: Iterable[FileInfo], extra: Iterable[tuple[str, PageFile]] = ()
) -> ProjectPage:
    """The page of project *name* listing *files*, links relative to the page URL.

    The page lives at ``/<repo>/simple/<name>/``, so ``../../`` is ``/<repo>/``.
    *extra* adds links made elsewhere, as ``(version, link)`` pairs (the
    upstream files of ``python-upstream`` and ``python-all``); every link is
    sorted by version, then filename.
    """
    entries = [(f.version, page_file(f)) for f in files]
    entries += list(extra)
    entries.sort(key=lambda e: (_version_key(e[0]), e[1].filename))
    versions = tuple(dict.fromkeys(version for version, _ in entries))
    return ProjectPage(name=name, versions=versions, files=tuple(f for _, f in entries))


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render_project_json(page: ProjectPage) -> bytes:
    """PEP 691 JSON (with PEP 700, PEP 714 and PEP 740 keys)."""
    files = []
    for f in page.files:
        entry: dict[str, object] = {
            "filename": f.filename,
            "url": f.url,
            "hashes": {"sha256": f.sha256},
            "requires-python": f.requires_python,
            "yanked": (f.yanked_reason or True) if f.yanked else False,
        }
        if f.size is not None:
            entry["size"] = f.size
        if f.upload_time is not None:
            entry["upload-time"] = _iso(f.upload_time)
        if f.metadata_sha256:
            entry["core-metadata"] = {"sha256": f.metadata_sha256}
            # PEP 714: keep the old key for clients that predate it.
            entry["dist-info-metadata"] = {"sha256": f.metadata_sha256}
        if f.provenance_url:
            entry["provenance"] = f.provenance_url
        if f.origin:
            # PEP 691 reserves keys beginning with "_" for the index itself.
            entry["_fromsource"] = {"origin": f.origin, "policy_generation": f.policy_generation}
        files.append(entry)
    document = {
        "meta": {"api-version": API_VERSION},
        "name": page.name,
        "versions": list(page.versions),
        "files": files,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def render_project_html(page: ProjectPage) -> bytes:
    """PEP 503 HTML with the PEP 592, 658/714 and 740 data attributes."""
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        f"<title>Links for {html.escape(page.name)}</title>",
        "</head>",
        "<body>",
        f"<h1>Links for {html.escape(page.name)}</h1>",
    ]
    for f in page.files:
        attrs = [f'href="{html.escape(f.url)}#sha256={f.sha256}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
        if f.yanked:
            attrs.append(f'data-yanked="{html.escape(f.yanked_reason or "")}"')
        if f.metadata_sha256:
            value = f"sha256={f.metadata_sha256}"
            attrs.append(f'data-core-metadata="{value}"')
            attrs.append(f'data-dist-info-metadata="{value}"')
        if f.provenance_url:
            attrs.append(f'data-provenance="{html.escape(f.provenance_url)}"')
        if f.origin:
            attrs.append(f'data-fromsource-origin="{html.escape(f.origin)}"')
            if f.policy_generation is not None:
                attrs.append(f'data-fromsource-policy-generation="{f.policy_generation}"')
        lines.append(f"<a {' '.join(attrs)}>{html.escape(f.filename)}</a><br>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()


def render_root_json(projects: Sequence[str]) -> bytes:
    """PEP 691 JSON project list."""
    return json.dumps(
        {
            "meta": {"api-version": API_VERSION},
            "projects": [{"name": p} for p in projects],
        },
        separators=(",", ":"),
    ).encode()


def render_root_html(projects: Sequence[str]) -> bytes:
    """PEP 503 HTML project list (links relative to ``/<repo>/simple/``)."""
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "<head>",
        f'<meta name="pypi:repository-version" content="{API_VERSION}">',
        "<title>Simple index</title>",
        "</head>",
        "<body>",
    ]
    lines += [f'<a href="{quote(p)}/">{html.escape(p)}</a><br>' for p in projects]
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode()
