"""Build dependencies: parsing, resolving (uv, offline), our own wheels first, the cache."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag

from fromsource.build.deps import (
    OwnRepository,
    ResolvedWheel,
    Resolver,
    best_wheel,
    check_requirements,
    read_resolution,
    satisfied,
)
from fromsource.build.upstream import Upstream
from fromsource.build.wheelcache import WheelCache
from fromsource.dist.names import ProjectName, Sha256
from fromsource.errors import DependencyError, UpstreamError
from fromsource.store.blobs import FileBlobStore
from fromsource.store.db import Database, open_database
from fromsource.store.publish import publish_file
from tests.factories import make_wheel
from tests.packages import LocalIndex, local_index  # noqa: F401

PYLOCK = """
lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "Flit_Core"
version = "3.9.0"
wheels = [{ url = "https://files.example/flit_core-3.9.0-py3-none-any.whl", hashes = { sha256 = "ABCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC" } }]

[[packages]]
name = "cython"
version = "3.0.12"
wheels = [
    { url = "https://files.example/Cython-3.0.12-cp311-cp311-manylinux_2_17_x86_64.whl", hashes = { sha256 = "0111111111111111111111111111111111111111111111111111111111111111" } },
    { url = "https://files.example/Cython-3.0.12-py2.py3-none-any.whl", hashes = { sha256 = "0222222222222222222222222222222222222222222222222222222222222222" } },
]
"""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield database
    database.dispose()


def test_url_and_malformed_requirements_are_refused() -> None:
    assert [r.name for r in check_requirements(["setuptools>=61", "wheel"], what="x")] == [
        "setuptools",
        "wheel",
    ]
    with pytest.raises(DependencyError, match="points at a URL") as url:
        check_requirements(["evil @ https://example.invalid/evil.whl"], what="x.tar.gz")
    assert url.value.facts["category"] == "bad-build-requirement"
    with pytest.raises(DependencyError, match="not a valid PEP 508"):
        check_requirements(["--index-url http://elsewhere/"], what="x.tar.gz")


def test_read_resolution_normalizes_names_and_digests() -> None:
    packages = read_resolution(PYLOCK)
    assert [(p.name, p.version) for p in packages] == [
        ("flit-core", "3.9.0"),
        ("cython", "3.0.12"),
    ]
    assert packages[0].files[0].sha256 == "ab" + "c" * 62
    assert packages[0].files[0].filename == "flit_core-3.9.0-py3-none-any.whl"


@pytest.mark.parametrize(
    "entry",
    [
        'name = "x"\nversion = "1"\nsdist = { url = "https://f.example/x-1.tar.gz" }\n',
        'name = "x"\nversion = "1"\nwheels = [{ url = "https://f.example/x-1-py3-none-any.whl" }]\n',
        'name = "x"\nwheels = [{ url = "https://f.example/x-1-py3-none-any.whl", '
        'hashes = { sha256 = "' + "a" * 64 + '" } }]\n',
    ],
)
def test_a_resolution_without_a_hashed_wheel_is_refused(entry: str) -> None:
    with pytest.raises(DependencyError, match="no wheel with a sha256") as refused:
        read_resolution(f'lock-version = "1.0"\n[[packages]]\n{entry}')
    assert refused.value.facts["category"] == "build-deps-unresolvable"
    with pytest.raises(DependencyError, match="unreadable pylock.toml"):
        read_resolution("[[packages]\n")


def test_best_wheel_follows_the_tag_order() -> None:
    tags = [Tag("cp311", "cp311", "manylinux_2_17_x86_64"), Tag("py3", "none", "any")]
    names = [
        "Cython-3.0.12-py2.py3-none-any.whl",
        "Cython-3.0.12-cp311-cp311-manylinux_2_17_x86_64.whl",
    ]
    assert best_wheel(names, tags) == 1
    assert best_wheel(["x-1-cp312-cp312-win_amd64.whl"], tags) is None


def test_satisfied_checks_versions_and_markers() -> None:
    wheel = ResolvedWheel(
        ProjectName("wheel"),
        "0.45.0",
        "wheel-0.45.0-py3-none-any.whl",
        Sha256("0" * 64),
        "u",
        "bootstrap",
    )
    assert satisfied([Requirement("wheel>=0.40")], [wheel])
    assert not satisfied([Requirement("wheel>=0.46")], [wheel])
    assert satisfied([Requirement("other; python_version < '3'")], [wheel])
    assert not satisfied([Requirement("other")], [wheel])


def test_resolve_from_upstream_marks_bootstrap(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
) -> None:
    resolver = Resolver(upstream_url=local_index.url, work_dir=tmp_path / "resolve")
    wheels = resolver.resolve([Requirement("hatchling")], what="test")
    names = {w.project for w in wheels}
    assert {"hatchling", "packaging", "pathspec", "pluggy", "trove-classifiers"} <= names
    for wheel in wheels:
        assert wheel.source == "bootstrap"
        assert wheel.url.startswith(local_index.url.rsplit("/simple/", 1)[0])
        (path,) = [p for ps in local_index.files.values() for p in ps if p.name == wheel.filename]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == wheel.sha256


def test_unresolvable_requirements_say_why(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
) -> None:
    resolver = Resolver(upstream_url=local_index.url, work_dir=tmp_path / "resolve")
    with pytest.raises(DependencyError) as info:
        resolver.resolve([Requirement("setuptools>=9999")], what="demo-1.0.tar.gz")
    assert info.value.facts["category"] == "build-deps-unresolvable"
    assert "setuptools>=9999" in info.value.message


def test_our_own_wheels_are_preferred(
    tmp_path: Path,
    db: Database,
    local_index: LocalIndex,  # noqa: F811
) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    wheels = {p.name.split("-")[0]: p for ps in local_index.files.values() for p in ps}
    publish_file(db, blobs, wheels["flit_core"], "python")
    publish_file(db, blobs, wheels["packaging"], "python")
    own = OwnRepository(db, blobs, public_url="https://index.example/")
    resolver = Resolver(upstream_url=local_index.url, work_dir=tmp_path / "resolve", own=own)

    # Everything needed is ours: resolved without asking upstream at all.
    before = len(local_index.requests)
    (flit,) = resolver.resolve([Requirement("flit_core")], what="t")
    assert flit.source == "fromsource" and local_index.requests[before:] == []
    assert flit.url.startswith("https://index.example/python/files/flit-core/")

    # A mix: ours where we have the version, upstream for the rest.
    mixed = {w.project: w.source for w in resolver.resolve([Requirement("wheel")], what="t")}
    assert mixed == {"wheel": "bootstrap", "packaging": "fromsource"}


@pytest.fixture
def page_linking() -> Iterator[tuple[dict[str, str], str]]:
    """An HTTP index whose page for each project in the dict is one anchor to the given href."""
    links: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            project = self.path.strip("/").split("/")[-1]
            if project not in links:
                self.send_response(404)
                self.end_headers()
                return
            href = links[project]
            name = href.split("#")[0].rsplit("/", 1)[-1]
            body = f'<html><body><a href="{href}">{name}</a></body></html>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield links, f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_file_links_are_not_taken_from_an_http_upstream(
    tmp_path: Path, page_linking: tuple[dict[str, str], str]
) -> None:
    links, index = page_linking
    wheel = make_wheel(tmp_path / "local", "demo-local-link", "1.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    links["demo-local-link"] = f"{wheel.as_uri()}#sha256={digest}"

    # uv itself reads the link while resolving; what it pins is refused before any fetch.
    resolver = Resolver(upstream_url=index, work_dir=tmp_path / "resolve")
    with pytest.raises(UpstreamError) as refused:
        resolver.resolve([Requirement("demo-local-link")], what="demo-1.0.tar.gz")
    assert "not fetched" in refused.value.message and str(tmp_path) not in refused.value.message

    # A recorded (or forged) pin with a file: URL is refused by the cache the same way.
    pin = ResolvedWheel(
        ProjectName("demo-local-link"),
        "1.0",
        wheel.name,
        Sha256(digest),
        wheel.as_uri(),
        "bootstrap",
    )
    cache = WheelCache(tmp_path / "cache", Upstream(index, tries=1))
    with pytest.raises(UpstreamError) as again:
        cache.fetch(pin)
    assert again.value.message == refused.value.message
    assert not cache.path(pin).parent.exists()
