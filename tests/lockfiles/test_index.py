"""Reading the index: page parsing and release choice (pure), and IndexLookup against a live index."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from fromsource.dist.names import ProjectName
from fromsource.errors import IndexClientError, LockError
from fromsource.indexclient import Credentials, parse_json_page
from fromsource.lockfiles.index import (
    IndexLookup,
    choose_release,
    index_target,
    pinnable_files,
)
from tests.conftest import IndexServer

PAGE = "https://fs.example/python-all/simple/demo-pkg/"
NAME = ProjectName("demo-pkg")


def _file(filename: str, digest: str, **extra: object) -> dict[str, object]:
    return {"filename": filename, "url": f"../../files/demo-pkg/x/{filename}",
            "hashes": {"sha256": digest}, **extra}


DOC = {"files": [
    _file("demo_pkg-1.0-py3-none-any.whl", "A" * 64, size=5, **{"upload-time": "2025-01-02T03:04:05.123456Z"}),
    _file("demo_pkg-1.0.tar.gz", "b" * 64),
    _file("demo_pkg-1.0+fs.1-py3-none-any.whl", "c" * 64),
    _file("demo_pkg-1.0+fs.2-py3-none-any.whl", "d" * 64),
    _file("demo_pkg-1.0+fs.3-py3-none-any.whl", "e" * 64, yanked="broken"),
    _file("demo_pkg-1.1-py3-none-any.whl", "f" * 64),
    _file("demo_pkg-1.0-py3-none-any.whl.metadata", "0" * 64),
    {"filename": "demo_pkg-1.0-py2-none-any.whl", "url": "x.whl", "hashes": {}},
]}


def test_index_target() -> None:
    assert index_target("https://u:p@fs.example/", False) == ("https://fs.example/", "python")
    assert index_target("https://fs.example/", True) == ("https://fs.example/", "python-all")
    assert index_target("http://fs.example:8080/pfx/python-remediated/simple", True) == (
        "http://fs.example:8080/pfx/", "python-remediated")
    with pytest.raises(IndexClientError, match="expected an http"):
        index_target("file:///tmp/x", False)


def test_pinnable_files_have_absolute_urls_and_no_unusable_files() -> None:
    files = pinnable_files(parse_json_page(json.dumps(DOC).encode(), PAGE))
    names = [f.filename for _v, f in files]
    assert names == ["demo_pkg-1.0-py3-none-any.whl", "demo_pkg-1.0.tar.gz",
                     "demo_pkg-1.0+fs.1-py3-none-any.whl", "demo_pkg-1.0+fs.2-py3-none-any.whl",
                     "demo_pkg-1.1-py3-none-any.whl"]
    first = files[0][1]
    assert first.url == "https://fs.example/python-all/files/demo-pkg/x/demo_pkg-1.0-py3-none-any.whl"
    assert first.sha256 == "a" * 64 and first.size == 5 and first.kind == "wheel"
    assert first.upload_time == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def test_choose_release_exact_and_remediated() -> None:
    files = pinnable_files(parse_json_page(json.dumps(DOC).encode(), PAGE))
    plain = choose_release(NAME, "1.0.0", files, remediated=False, index_url="i")
    assert plain is not None and plain.version == "1.0"
    assert [f.filename for f in plain.files] == ["demo_pkg-1.0-py3-none-any.whl", "demo_pkg-1.0.tar.gz"]
    fixed = choose_release(NAME, "1.0", files, remediated=True, index_url="i")
    assert fixed is not None and fixed.version == "1.0+fs.2"  # +fs.3 is yanked
    assert choose_release(NAME, "1.0+fs.1", files, remediated=True, index_url="i").version == "1.0+fs.2"  # type: ignore[union-attr]
    assert choose_release(NAME, "1.1", files, remediated=True, index_url="i").version == "1.1"  # type: ignore[union-attr]
    assert choose_release(NAME, "2.0", files, remediated=False, index_url="i") is None


def test_lookup_against_a_live_index(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    creds = Credentials(*reader)
    with IndexLookup(shared_index.url, creds, remediated=True) as lookup:
        lookup.prefetch(["demo-pkg", "Dep_Pkg", "nothing-here"])
        demo = lookup(ProjectName("demo-pkg"), "1.0")
        assert demo is not None and demo.version == "1.0+fs.1"
        assert demo.index_url == shared_index.simple("python-all")
        assert httpx.get(demo.files[0].url, auth=reader).content[:2] == b"PK"
        dep = lookup(ProjectName("dep-pkg"), "0.1")
        assert dep is not None and dep.version == "0.1"
        assert lookup(ProjectName("nothing-here"), "1.0") is None
    with IndexLookup(shared_index.url) as anonymous, pytest.raises(LockError, match="401"):
        anonymous(ProjectName("demo-pkg"), "1.0")
    only_python = shared_index.token("python")
    target = shared_index.simple("python-remediated")
    with IndexLookup(target, Credentials(*only_python)) as refused, \
            pytest.raises(LockError, match="403.*--repo python-remediated"):
        refused(ProjectName("demo-pkg"), "1.0")


def test_credentials_go_only_to_the_index_origin() -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[str(request.url.host)] = request.headers.get("authorization")
        if request.url.host == "fs.example":
            return httpx.Response(302, headers={"Location": "https://elsewhere.example/page/"})
        return httpx.Response(200, json={"files": [_file("demo_pkg-1.0-py3-none-any.whl", "a" * 64)]})

    with IndexLookup("https://fs.example/", Credentials("acme/1", "s3cret"),
                     transport=httpx.MockTransport(handler)) as lookup:
        found = lookup(NAME, "1.0")
    assert seen["fs.example"] is not None and seen["elsewhere.example"] is None
    assert found is not None and found.files[0].url.startswith("https://elsewhere.example/")

