"""Project pages as values: PEP 691 JSON and PEP 503 HTML parse alike; hostile pages are refused."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from fromsource.errors import IndexClientError
from fromsource.index.pages import PageFile, render_project_html, render_project_json
from fromsource.index.pages import ProjectPage as ServedPage
from fromsource.indexclient import (
    JSON_TYPE,
    ProjectFile,
    parse_html_page,
    parse_json_page,
    parse_page,
)

PAGE = "https://index.invalid/python/simple/demo-pkg/"
DIGEST = "ab" * 32
WHEN = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def _served() -> ServedPage:
    """A page as the fromsource index renders it: yanked, metadata, provenance, relative URLs."""
    return ServedPage(
        name="demo-pkg",
        versions=("1.0", "1.1"),
        files=(
            PageFile(
                "demo_pkg-1.0.tar.gz",
                "../../files/demo-pkg/1.0/demo_pkg-1.0.tar.gz",
                DIGEST,
                11,
                WHEN,
                ">=3.8",
                True,
                "broken build",
                None,
                None,
            ),
            PageFile(
                "demo_pkg-1.1-py3-none-any.whl",
                "../../files/demo-pkg/1.1/demo_pkg-1.1-py3-none-any.whl",
                "cd" * 32,
                22,
                WHEN,
                None,
                False,
                None,
                "ef" * 32,
                "../../integrity/demo-pkg/1.1/demo_pkg-1.1-py3-none-any.whl/provenance",
            ),
        ),
    )


def test_json_and_html_forms_of_one_page_give_the_same_files() -> None:
    served = _served()
    from_json = parse_page(render_project_json(served), JSON_TYPE, PAGE)
    from_html = parse_page(render_project_html(served), "text/html", PAGE)
    assert from_json.name == "demo-pkg" and from_json.versions == ("1.0", "1.1")
    assert from_json.api_version == from_html.api_version == "1.1"
    assert from_html.name is None and from_html.versions == ()
    sdist, wheel = from_json.files
    assert sdist == ProjectFile(
        filename="demo_pkg-1.0.tar.gz",
        url="https://index.invalid/python/files/demo-pkg/1.0/demo_pkg-1.0.tar.gz",
        sha256=DIGEST,  # type: ignore[arg-type]
        size=11,
        requires_python=">=3.8",
        yanked=True,
        upload_time=WHEN,
        yanked_reason="broken build",
    )
    assert wheel.metadata and wheel.metadata_sha256 == "ef" * 32
    assert wheel.provenance_url == (
        "https://index.invalid/python/integrity/demo-pkg/1.1/"
        "demo_pkg-1.1-py3-none-any.whl/provenance"
    )
    # HTML carries everything but size and upload time (PEP 700 is JSON only).
    assert [replace(f, size=None, upload_time=None) for f in from_json.files] == list(
        from_html.files
    )


def test_html_page_with_base_and_entities() -> None:
    text = (
        '<html><head><base href="https://files.invalid/pkgs/"></head><body>'
        f'<a href="demo_pkg-1.0.tar.gz#sha256={DIGEST.upper()}" '
        'data-requires-python="&gt;=3.8" data-yanked>demo_pkg-1.0.tar.gz</a>'
        '<a href="/x/demo_pkg-1.1.tar.gz#md5=00"></a><a name="no-href">ignored</a></body></html>'
    )
    first, second = parse_html_page(text, PAGE).files
    assert first == ProjectFile(
        "demo_pkg-1.0.tar.gz",
        "https://files.invalid/pkgs/demo_pkg-1.0.tar.gz",
        DIGEST,  # type: ignore[arg-type]
        requires_python=">=3.8",
        yanked=True,
    )
    assert second.filename == "demo_pkg-1.1.tar.gz" and second.sha256 is None
    assert second.url == "https://files.invalid/x/demo_pkg-1.1.tar.gz"


def test_json_relative_urls_fragment_hashes_and_missing_hashes() -> None:
    page = {
        "files": [
            {
                "filename": "a-1.0.tar.gz",
                "url": f"../../f/a-1.0.tar.gz#sha256={DIGEST}",
                "hashes": {},
                "yanked": True,
            },
            {"filename": "a-1.1.tar.gz", "url": "/abs/a-1.1.tar.gz"},
            {"filename": "a-1.2.tar.gz", "url": "a-1.2.tar.gz", "hashes": {"sha256": "f00"}},
            {
                "filename": "a-1.3.tar.gz",
                "url": "https://elsewhere.invalid/a-1.3.tar.gz",
                "hashes": {"sha256": DIGEST.upper(), "md5": "00"},
            },
        ]
    }
    first, second, third, fourth = parse_json_page(json.dumps(page).encode(), PAGE).files
    assert first.sha256 == DIGEST and first.yanked and first.yanked_reason is None
    assert first.url == "https://index.invalid/python/f/a-1.0.tar.gz"
    assert (second.url, second.sha256) == ("https://index.invalid/abs/a-1.1.tar.gz", None)
    assert (third.url, third.sha256) == (PAGE + "a-1.2.tar.gz", None)  # not a sha256
    assert (fourth.url, fourth.sha256) == ("https://elsewhere.invalid/a-1.3.tar.gz", DIGEST)


def test_malformed_entries_are_skipped_and_odd_values_dropped() -> None:
    page = {
        "files": [
            "not an object",
            {"url": "nameless.tar.gz"},
            {"filename": "urlless-1.0.tar.gz"},
            {"filename": 7, "url": "x"},
            {
                "filename": "ok-1.0.tar.gz",
                "url": "ok-1.0.tar.gz",
                "hashes": ["sha256"],
                "size": True,
                "requires-python": 3,
                "upload-time": "yesterday",
                "core-metadata": {"sha256": 5},
                "provenance": {"url": "x"},
            },
        ]
    }
    (only,) = parse_json_page(json.dumps(page).encode(), PAGE).files
    assert only == ProjectFile("ok-1.0.tar.gz", PAGE + "ok-1.0.tar.gz", None, metadata=True)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b"[]", "no list of files"),
        (b'{"files": {}}', "no list of files"),
        (b'{"meta": {"api-version": "2.0"}, "files": []}', "unsupported simple API version 2.0"),
    ],
)
def test_hostile_json_pages_are_refused(body: bytes, why: str) -> None:
    with pytest.raises(IndexClientError, match=why) as info:
        parse_json_page(body, "https://acme:s3cret@index.invalid/simple/a/")
    assert "s3cret" not in info.value.message
    assert info.value.facts["url"] == "https://index.invalid/simple/a/"


def test_an_html_page_of_another_api_version_is_refused() -> None:
    text = '<meta name="pypi:repository-version" content="2.0"><a href="a-1.tar.gz">a</a>'
    with pytest.raises(IndexClientError, match="unsupported simple API version 2.0"):
        parse_page(text.encode(), "text/html", PAGE)


def test_the_fromsource_mark_of_an_upstream_file_reads_back_from_json_and_html() -> None:
    marked = replace(
        _served().files[1], provenance_url=None, origin="upstream", policy_generation=7
    )
    page = ServedPage("demo-pkg", ("1.0", "1.1"), (_served().files[0], marked))
    json_page = parse_json_page(render_project_json(page), PAGE)
    html_page = parse_html_page(render_project_html(page), PAGE)
    for parsed in (json_page, html_page):
        own, upstream = parsed.files
        assert (own.origin, own.policy_generation) == (None, None)
        assert (upstream.origin, upstream.policy_generation) == ("upstream", 7)
    document = json.loads(render_project_json(page))
    assert document["files"][1]["_fromsource"] == {"origin": "upstream", "policy_generation": 7}
    assert "_fromsource" not in document["files"][0]
    assert 'data-fromsource-origin="upstream"' in render_project_html(page).decode()
    # A malformed mark is ignored rather than trusted.
    odd = {
        "meta": {"api-version": "1.1"},
        "files": [
            {"filename": "a-1.0.tar.gz", "url": "a", "_fromsource": "upstream"},
            {"filename": "a-1.1.tar.gz", "url": "b", "_fromsource": {"policy_generation": -1}},
        ],
    }
    for file in parse_json_page(json.dumps(odd).encode(), PAGE).files:
        assert (file.origin, file.policy_generation) == (None, None)
