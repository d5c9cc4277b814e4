"""Tests for fromsource.build.upstream_pages: page parsing as values in, values out."""

from __future__ import annotations

import json

import pytest
from packaging.version import Version

from fromsource.build.upstream_pages import (
    UpstreamFile,
    dist_of,
    link_allowed,
    parse_html_page,
    parse_json_page,
    python_ok,
    redact,
    refused_link,
)
from fromsource.errors import UpstreamError

PAGE = "https://index.invalid/simple/demo-pkg/"
DIGEST = "ab" * 32


def _file(name: str, requires: str | None = None) -> UpstreamFile:
    return UpstreamFile(name, PAGE + name, None, requires_python=requires)


@pytest.mark.parametrize(
    ("filename", "project", "kind", "version"),
    [
        ("demo_pkg-1.0.tar.gz", "Demo.Pkg", "sdist", "1.0"),
        ("demo-pkg-extra-2.0.zip", "demo-pkg-extra", "sdist", "2.0"),
        ("Demo-Pkg-1.0.post1.tar.bz2", "demo-pkg", "sdist", "1.0.post1"),
        ("demo_pkg-1.0-py3-none-any.whl", "demo-pkg", "wheel", "1.0"),
    ],
)
def test_dist_of(filename: str, project: str, kind: str, version: str) -> None:
    dist = dist_of(_file(filename), project)
    assert dist is not None and dist.kind == kind and dist.version == Version(version)


@pytest.mark.parametrize(
    "filename", ["other-1.0.tar.gz", "demo_pkg-1.0.exe", "demo_pkg-not!a!version.tar.gz"]
)
def test_dist_of_skips_foreign_files(filename: str) -> None:
    assert dist_of(_file(filename), "demo-pkg") is None


def test_html_page_with_base_and_entities() -> None:
    text = (
        '<html><head><base href="https://files.invalid/pkgs/"></head><body>'
        f'<a href="demo_pkg-1.0.tar.gz#sha256={DIGEST.upper()}" '
        'data-requires-python="&gt;=3.8" data-yanked>demo_pkg-1.0.tar.gz</a>'
        '<a href="/x/demo_pkg-1.1.tar.gz#md5=00"></a></body></html>'
    )
    first, second = parse_html_page(text, PAGE)
    assert first == UpstreamFile(
        "demo_pkg-1.0.tar.gz",
        "https://files.invalid/pkgs/demo_pkg-1.0.tar.gz",
        DIGEST,  # type: ignore[arg-type]
        requires_python=">=3.8",
        yanked=True,
    )
    assert second.filename == "demo_pkg-1.1.tar.gz" and second.sha256 is None
    assert second.url == "https://files.invalid/x/demo_pkg-1.1.tar.gz"


def test_json_page_fragment_hash_and_versions() -> None:
    page = {
        "meta": {"api-version": "1.0"},
        "files": [
            {
                "filename": "a-1.0.tar.gz",
                "url": f"../../f/a-1.0.tar.gz#sha256={DIGEST}",
                "hashes": {},
                "yanked": True,
            }
        ],
    }
    (file,) = parse_json_page(json.dumps(page).encode(), PAGE)
    assert file.sha256 == DIGEST and file.yanked and file.yanked_reason is None
    assert file.url == "https://index.invalid/f/a-1.0.tar.gz"
    page["meta"] = {"api-version": "2.0"}
    with pytest.raises(UpstreamError, match="unsupported simple API version 2"):
        parse_json_page(json.dumps(page).encode(), PAGE)
    with pytest.raises(UpstreamError, match="not a PEP 691 project page"):
        parse_json_page(b"<html>", PAGE)


def test_python_ok_and_redact() -> None:
    assert python_ok(_file("a-1.tar.gz", ">=3.8"), "3.11")
    assert not python_ok(_file("a-1.tar.gz", ">=3.8"), "2.7")
    assert python_ok(_file("a-1.tar.gz", "garbage!"), "2.7")
    assert redact("https://me:secret@host.invalid/simple/") == "https://host.invalid/simple/"


@pytest.mark.parametrize(
    ("index", "link", "allowed"),
    [
        ("http://127.0.0.1:1/simple/", "http://127.0.0.1:1/files/a-1.tar.gz", True),
        ("http://127.0.0.1:1/simple/", "https://files.invalid/a-1.tar.gz", True),  # an upgrade
        ("https://index.invalid/simple/", "https://files.invalid/a-1.tar.gz", True),
        ("https://index.invalid/simple/", "http://files.invalid/a-1.tar.gz", False),
        ("http://127.0.0.1:1/simple/", "file:///srv/keys/signing-key.pem", False),
        ("https://index.invalid/simple/", "FILE:///dev/zero", False),
        ("http://127.0.0.1:1/simple/", "ftp://files.invalid/a-1.tar.gz", False),
        ("http://127.0.0.1:1/simple/", "fromsource:python/files/a/1/a-1.whl", False),
        ("file:///srv/mirror/simple/", "file:///srv/mirror/files/a-1.tar.gz", True),
        ("file:///srv/mirror/simple/", "https://files.invalid/a-1.tar.gz", False),
    ],
)
def test_links_are_followed_only_with_the_index_scheme(
    index: str, link: str, allowed: bool
) -> None:
    assert link_allowed(index, link) is allowed


def test_a_refused_link_is_one_message_that_never_names_the_path() -> None:
    index = "http://user:s3cret@127.0.0.1:1/simple/"
    present = refused_link("a-1.tar.gz", "file:///srv/keys/signing-key.pem", index)
    absent = refused_link("a-1.tar.gz", "file:///srv/keys/no-such-key.pem", index)
    assert present.message == absent.message
    assert "/srv" not in present.message and "s3cret" not in present.message
    assert "file:" in present.message and present.facts["category"] == "upstream-error"
