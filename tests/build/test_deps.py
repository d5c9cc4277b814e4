"""Build dependencies: parsing, resolving (uv, offline), our own wheels first, the cache."""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
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
from fromsource.build.indexproxy import IndexProxy
from fromsource.build.upstream import Upstream
from fromsource.build.wheelcache import WheelCache
from fromsource.dist.names import ProjectName, Sha256
from fromsource.errors import DependencyError, UpstreamError
from fromsource.indexclient import JSON_TYPE
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


def _anchor(href: str, attributes: str = "") -> str:
    name = href.split("#")[0].rsplit("/", 1)[-1]
    return f'<a href="{html.escape(href)}"{attributes}>{html.escape(name)}</a>\n'


@pytest.fixture
def page_linking() -> Iterator[tuple[dict[str, str], str]]:
    """An HTTP index whose page for each project in the dict is the given anchors (HTML)."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            project = self.path.strip("/").split("/")[-1]
            if project not in pages:
                self.send_response(404)
                self.end_headers()
                return
            body = f"<html><body>{pages[project]}</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield pages, f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def _readers_of(fifo: Path) -> Iterator[list[str]]:
    """Notes (and feeds junk to) whatever opens the FIFO *fifo* for reading meanwhile.

    Opening a FIFO blocks until a writer comes, so no reader can slip by unseen.
    """
    opened: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader (ENXIO), or no FIFO any more
                stop.wait(0.005)
                continue
            opened.append(str(fifo))
            with suppress(OSError):
                os.write(fd, b"not a wheel")
            os.close(fd)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        stop.set()
        thread.join()


def test_an_http_upstream_cannot_make_the_resolver_open_local_files(
    tmp_path: Path,
    page_linking: tuple[dict[str, str], str],
    local_index: LocalIndex,  # noqa: F811
) -> None:
    pages, index = page_linking
    good = make_wheel(tmp_path / "good", "demo-secret", "1.0")
    local_index.add(good)
    served = local_index.url.replace("/simple/", "/files/") + good.name
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    # Newer versions linked as local paths: one there (a FIFO, so a read is seen), one not.
    (tmp_path / "keys").mkdir()
    secret = tmp_path / "keys" / "demo_secret-2.0-py3-none-any.whl"
    os.mkfifo(secret)
    missing = tmp_path / "keys" / "demo_secret-3.0-py3-none-any.whl"
    pages["demo-secret"] = "".join(
        _anchor(href) for href in (f"{served}#sha256={digest}", secret.as_uri(), missing.as_uri())
    )

    def resolve(work: str) -> tuple[list[ResolvedWheel], str]:
        resolver = Resolver(upstream_url=index, work_dir=tmp_path / work)
        with _readers_of(secret) as opened:
            pins = resolver.resolve([Requirement("demo-secret")], what="demo-1.0.tar.gz")
        assert opened == []
        return pins, "\n".join(resolver.log) + (tmp_path / work / "pylock.toml").read_text()

    # uv is given the upstream's page without the local links: it pins the one it may use.
    (pin,), said = resolve("present")
    assert (pin.version, pin.url, pin.sha256) == ("1.0", served, digest)
    assert str(secret.parent) not in said
    secret.unlink()
    assert resolve("absent")[0] == [pin]

    # Only local links: nothing to resolve to, in the same words whether the files exist or not.
    local = make_wheel(tmp_path / "keys", "demo-local-link", "1.0")
    pages["demo-local-link"] = _anchor(local.as_uri())
    messages = []
    for work in ("there", "gone"):
        resolver = Resolver(upstream_url=index, work_dir=tmp_path / work)
        with pytest.raises(DependencyError) as unresolvable:
            resolver.resolve([Requirement("demo-local-link")], what="demo-1.0.tar.gz")
        assert unresolvable.value.facts["category"] == "build-deps-unresolvable"
        messages.append(unresolvable.value.message)
        local.unlink(missing_ok=True)
    assert messages[0] == messages[1] and str(secret.parent) not in messages[0]

    # A recorded (or forged) pin with a file: URL is refused by the cache before any read.
    forged = ResolvedWheel(
        ProjectName("demo-secret"),
        "2.0",
        secret.name,
        Sha256(digest),
        secret.as_uri(),
        "bootstrap",
    )
    os.mkfifo(secret)
    cache = WheelCache(tmp_path / "cache", Upstream(index, tries=1))
    with _readers_of(secret) as opened, pytest.raises(UpstreamError) as refused:
        cache.fetch(forged)
    assert opened == [] and "not fetched" in refused.value.message
    assert str(secret.parent) not in refused.value.message
    assert not cache.path(forged).parent.exists()


def test_the_resolvers_index_keeps_what_uv_needs_and_drops_what_it_may_not_follow(
    page_linking: tuple[dict[str, str], str],
) -> None:
    pages, index = page_linking
    wheel, metadata = "b" * 64, "a" * 64
    kept = "http://127.0.0.1:9/files/demo_kept-1.0-py3-none-any.whl"
    details = f' data-requires-python="&gt;=3.9" data-core-metadata="sha256={metadata}"'
    pages["demo-kept"] = "".join(
        [
            _anchor(f"{kept}#sha256={wheel}", details + ' data-yanked="broken"'),
            _anchor("https://files.invalid/demo_kept-0.9-py3-none-any.whl"),
            _anchor("file:///srv/keys/demo_kept-2.0-py3-none-any.whl"),
            _anchor("ftp://127.0.0.1/demo_kept-3.0-py3-none-any.whl"),
        ]
    )
    with IndexProxy(index) as proxy:
        answer = httpx.get(f"{proxy.url}demo_Kept/")
        assert answer.headers["content-type"] == JSON_TYPE
        assert answer.json()["files"] == [
            {
                "filename": "demo_kept-1.0-py3-none-any.whl",
                "url": kept,
                "hashes": {"sha256": wheel},
                "yanked": "broken",
                "requires-python": ">=3.9",
                "core-metadata": {"sha256": metadata},
            },
            {
                "filename": "demo_kept-0.9-py3-none-any.whl",
                "url": "https://files.invalid/demo_kept-0.9-py3-none-any.whl",
                "hashes": {},
                "yanked": False,
            },
        ]
        assert httpx.get(f"{proxy.url}demo-unknown/").status_code == 404
        # Served only under its random path, which only the resolver is told.
        port = proxy.url.split("/")[2]
        assert httpx.get(f"http://{port}/simple/demo-kept/").status_code == 404
        assert proxy.errors == []


@pytest.mark.parametrize("core_metadata", [False, True], ids=["wheels", "core-metadata"])
def test_an_upstreams_credentials_stay_in_the_proxy(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    local_index: LocalIndex,  # noqa: F811
    core_metadata: bool,
) -> None:
    index = LocalIndex()
    for paths in local_index.files.values():
        index.add(*paths)
    index.credentials = ("builder", "s3cret-t0ken")
    index.core_metadata = core_metadata
    commands: list[str] = []
    run = subprocess.run

    def recording(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        commands.append(" ".join(command) + " " + " ".join(kwargs["env"].values()))
        return run(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", recording)
    with index.serve():
        upstream = index.url.replace("http://", "http://builder:s3cret-t0ken@")
        resolver = Resolver(
            upstream_url=upstream, work_dir=tmp_path / "resolve", uv_cache=tmp_path / "uv"
        )
        wheels = resolver.resolve([Requirement("hatchling")], what="demo-1.0.tar.gz")
        assert {"hatchling", "packaging", "pluggy"} <= {w.project for w in wheels}
        # uv read the metadata through the proxy (PEP 658 files, else whole wheels) ...
        assert any(r.endswith(".metadata") for r in index.requests) == core_metadata
        # ... and the pins name the upstream's files, which download with the credentials.
        files = index.url.replace("/simple/", "/files/")
        assert all(w.url == files + w.filename for w in wheels)
        WheelCache(tmp_path / "cache", Upstream(upstream, tries=1)).wheelhouse(
            wheels, tmp_path / "house"
        )
        assert all((tmp_path / "house" / w.filename).is_file() for w in wheels)

        # Without them the upstream refuses, and the message says so.
        anonymous = Resolver(upstream_url=index.url, work_dir=tmp_path / "anonymous")
        with pytest.raises(DependencyError) as refused:
            anonymous.resolve([Requirement("hatchling")], what="demo-1.0.tar.gz")
        assert "answered 401, the index wants credentials" in refused.value.message
        # URLs in it are the upstream's, not those of the resolver's passing index.
        port = index.url.split(":")[2].split("/")[0]
        assert set(re.findall(r"127\.0\.0\.1:(\d+)", refused.value.message)) == {port}

    # Never on uv's command line or in its environment, its cache, its output or our log.
    assert len(commands) == 2 and "s3cret" not in "\n".join(commands + resolver.log)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    assert written and not [p for p in written if b"s3cret" in p.read_bytes()]


def test_a_file_upstream_is_resolved_directly_with_its_own_file_links(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "mirror" / "files", "demo-mirrored", "1.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    page = tmp_path / "mirror" / "simple" / "demo-mirrored" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(_anchor(f"../../files/{wheel.name}#sha256={digest}"))
    upstream = page.parent.parent.as_uri() + "/"

    resolver = Resolver(upstream_url=upstream, work_dir=tmp_path / "resolve")
    (pin,) = resolver.resolve([Requirement("demo-mirrored")], what="demo-1.0.tar.gz")
    assert (pin.url, pin.sha256) == (wheel.as_uri(), digest)
    cached = WheelCache(tmp_path / "cache", Upstream(upstream)).fetch(pin)
    assert cached.read_bytes() == wheel.read_bytes()
