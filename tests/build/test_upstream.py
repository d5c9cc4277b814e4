"""Tests for fromsource.build.upstream against a small index served on loopback."""

from __future__ import annotations

import hashlib
import html
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.tags import Tag
from packaging.version import Version

from fromsource.build.upstream import Upstream
from fromsource.config import Settings, upstream_url
from fromsource.errors import HashMismatchError, UpstreamError
from fromsource.indexclient import ACCEPT, ProjectFile

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def _blob(filename: str) -> bytes:
    return f"contents of {filename}\n".encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# filename -> (requires-python, yanked)
DEMO_FILES: dict[str, tuple[str | None, bool]] = {
    "demo_pkg-1.0.tar.gz": (None, False),
    "demo_pkg-1.0-py3-none-any.whl": (None, False),
    "demo_pkg-2.0.zip": (">=3.8", False),
    "demo_pkg-2.0.tar.gz": (">=3.8", False),
    "demo_pkg-2.0-cp311-cp311-manylinux_2_17_x86_64.whl": (">=3.8", False),
    "demo_pkg-2.0-py3-none-any.whl": (">=3.8", False),
    "demo_pkg-2.1rc1.tar.gz": (">=3.8", False),
    "demo_pkg-2.5-py3-none-any.whl": (">=3.8", False),
    "demo_pkg-3.0.tar.gz": (">=3.8", True),
    "bad_hash-1.0.tar.gz": (None, False),
}


@dataclass
class Site:
    """What the test index serves, and a log of the requests it saw."""

    json_pages: bool = True
    etag: str | None = None
    files_host: str = ""  # absolute origin for file URLs; "" means relative URLs
    redirect_pages: bool = False
    redirect_origin: str = ""  # where page redirects point; "" means the same origin
    require_auth: str | None = None  # expected Authorization header on pages
    fail_files: int = 0  # answer 503 to that many file requests first
    extra: list[tuple[str, str, str]] = field(default_factory=list)  # (name, url, sha256) links
    file_redirect: str = ""  # answer file requests with a redirect to this prefix + name
    no_length: bool = False  # send files without Content-Length (the body ends at close)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, as_json: bool) -> tuple[str, bytes]:
        prefix = self.files_host + "/files/" if self.files_host else "../../files/"
        if self.redirect_pages and not self.files_host:
            prefix = "../../../files/"  # the page lives one level deeper after the redirect
        entries = []
        for name, (requires, yanked) in DEMO_FILES.items():
            digest = _sha(_blob(name)) if not name.startswith("bad") else "0" * 64
            entries.append((name, prefix + name, digest, requires, yanked))
        entries += [(name, url, digest, None, False) for name, url, digest in self.extra]
        if as_json:
            files = [
                {
                    "filename": name,
                    "url": url,
                    "hashes": {"sha256": digest},
                    "requires-python": requires,
                    "yanked": "broken" if yanked else False,
                    "size": len(_blob(name)),
                    "upload-time": "2021-05-11T21:26:28.089893Z",
                }
                for name, url, digest, requires, yanked in entries
            ]
            body = {"meta": {"api-version": "1.1"}, "name": "demo-pkg", "files": files}
            return JSON_TYPE, json.dumps(body).encode()
        anchors = []
        for name, url, digest, requires, yanked in entries:
            attrs = f' data-requires-python="{html.escape(requires)}"' if requires else ""
            attrs += ' data-yanked="broken"' if yanked else ""
            anchors.append(f'<a href="{url}#sha256={digest}"{attrs}>{name}</a><br/>')
        text = "<!DOCTYPE html><html><body>" + "\n".join(anchors) + "</body></html>"
        return "text/html", text.encode()


class _Handler(BaseHTTPRequestHandler):
    site: Site

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        site = self.server.site  # type: ignore[attr-defined]
        with site.lock:
            site.requests.append((self.path, dict(self.headers.items())))
        path = self.path.split("?")[0]
        if path in ("/simple/demo-pkg/", "/mirror/simple/demo-pkg/"):
            if site.require_auth and self.headers.get("Authorization") != site.require_auth:
                return self._send(401, "text/plain", b"no", {"WWW-Authenticate": "Basic"})
            if site.redirect_pages and path.startswith("/simple/"):
                where = site.redirect_origin + "/mirror" + path
                return self._send(301, "text/plain", b"", {"Location": where})
            if site.etag and self.headers.get("If-None-Match") == site.etag:
                return self._send(304, "text/plain", b"", {"ETag": site.etag})
            ctype, body = site.page("json" in self.headers.get("Accept", ""))
            return self._send(200, ctype, body, {"ETag": site.etag} if site.etag else {})
        if path.startswith("/files/") and path[7:] in DEMO_FILES:
            with site.lock:
                failing = site.fail_files > 0
                site.fail_files -= 1
            if failing:
                return self._send(503, "text/plain", b"busy")
            if site.file_redirect:
                return self._send(
                    302, "text/plain", b"", {"Location": site.file_redirect + path[7:]}
                )
            if site.no_length:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(_blob(path[7:]))
                return None
            return self._send(200, "application/octet-stream", _blob(path[7:]))
        if path.startswith("/elsewhere/") and path[11:] in DEMO_FILES:
            return self._send(200, "application/octet-stream", _blob(path[11:]))
        self._send(404, "text/plain", b"not found")

    def _send(
        self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[tuple[Site, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.site = Site()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.site, server.server_address[1]  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def make_upstream() -> Iterator[Callable[..., Upstream]]:
    made: list[Upstream] = []

    def make(base_url: str, **kwargs: object) -> Upstream:
        kwargs.setdefault("backoff", 0.0)
        upstream = Upstream(base_url, **kwargs)  # type: ignore[arg-type]
        made.append(upstream)
        return upstream

    yield make
    for upstream in made:
        upstream.close()


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "html"])
def test_project_files_from_json_or_html(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], as_json: bool
) -> None:
    server, port = site
    server.json_pages = as_json
    up = make_upstream(f"http://127.0.0.1:{port}/simple")
    files = {f.filename: f for f in up.project_files("Demo.Pkg")}
    assert set(files) == set(DEMO_FILES)
    sdist = files["demo_pkg-2.0.tar.gz"]
    assert sdist.url == f"http://127.0.0.1:{port}/files/demo_pkg-2.0.tar.gz"
    assert sdist.sha256 == _sha(_blob("demo_pkg-2.0.tar.gz"))
    assert sdist.requires_python == ">=3.8"
    assert files["demo_pkg-3.0.tar.gz"].yanked
    assert files["demo_pkg-3.0.tar.gz"].yanked_reason == "broken"
    assert not files["demo_pkg-1.0.tar.gz"].yanked
    if as_json:
        assert sdist.size == len(_blob("demo_pkg-2.0.tar.gz"))
        assert sdist.upload_time is not None and sdist.upload_time.year == 2021
    path, headers = server.requests[-1]
    assert path == "/simple/demo-pkg/"
    assert headers["Accept"] == ACCEPT


def test_versions_and_latest(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream]
) -> None:
    up = make_upstream(f"http://127.0.0.1:{site[1]}/simple/")
    v = Version
    assert up.versions("demo-pkg") == [v("1.0"), v("2.0"), v("2.5")]
    assert up.versions("demo-pkg", prereleases=True, yanked=True)[-2:] == [v("2.5"), v("3.0")]
    assert v("2.1rc1") in up.versions("demo-pkg", prereleases=True)
    assert up.latest_version("demo-pkg") == v("2.0")  # 2.5 has no sdist, 3.0 is yanked
    assert up.latest_version("demo-pkg", require_sdist=False) == v("2.5")
    assert up.latest_version("demo-pkg", python_version="2.7") == v("1.0")
    assert up.latest_version("demo-pkg", prereleases=True) == v("2.1rc1")


def test_find_sdist_prefers_tar_gz(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream]
) -> None:
    up = make_upstream(f"http://127.0.0.1:{site[1]}/simple/")
    assert up.find_sdist("demo_pkg", "2.0").filename == "demo_pkg-2.0.tar.gz"
    assert up.find_sdist("demo-pkg", Version("2.0.0")).filename == "demo_pkg-2.0.tar.gz"


def test_missing_sdist_is_a_clear_error(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream]
) -> None:
    base = f"http://127.0.0.1:{site[1]}/simple/"
    up = make_upstream(base)
    with pytest.raises(UpstreamError) as info:
        up.find_sdist("demo-pkg", "2.5")
    assert str(info.value) == (
        f"no sdist for demo-pkg 2.5 on {base}; fromsource builds only from source"
    )
    with pytest.raises(UpstreamError, match="not found"):
        up.project_files("no-such-project")


def test_find_wheel_by_tags(site: tuple[Site, int], make_upstream: Callable[..., Upstream]) -> None:
    up = make_upstream(f"http://127.0.0.1:{site[1]}/simple/")
    native = Tag("cp311", "cp311", "manylinux_2_17_x86_64")
    pure = Tag("py3", "none", "any")
    assert up.find_wheel("demo-pkg", "2.0", [native, pure]).filename.endswith("x86_64.whl")
    assert up.find_wheel("demo-pkg", "2.0", [pure]).filename == "demo_pkg-2.0-py3-none-any.whl"
    with pytest.raises(UpstreamError, match="no wheel of demo-pkg 2.0"):
        up.find_wheel("demo-pkg", "2.0", [Tag("cp27", "cp27mu", "win32")])


def test_download_checks_sha256(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    up = make_upstream(f"http://127.0.0.1:{site[1]}/simple/")
    sdist = up.find_sdist("demo-pkg", "1.0")
    path = up.download(sdist, tmp_path / "dl")
    assert path == tmp_path / "dl" / "demo_pkg-1.0.tar.gz"
    assert path.read_bytes() == _blob("demo_pkg-1.0.tar.gz")

    bad = next(f for f in up.project_files("demo-pkg") if f.filename.startswith("bad_hash"))
    with pytest.raises(HashMismatchError) as info:
        up.download(bad, tmp_path / "dl")
    actual = _sha(_blob(bad.filename))
    assert "0" * 64 in str(info.value) and actual in str(info.value)
    assert info.value.facts["actual"] == actual
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["demo_pkg-1.0.tar.gz"]


def test_threads_downloading_one_file_into_one_cache_all_get_it(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    # Issue 17: the two independent builds of a release fetch its sdist at the same time.
    up = make_upstream(f"http://127.0.0.1:{site[1]}/simple/", cache_dir=tmp_path / "cache")
    sdist = up.find_sdist("demo-pkg", "1.0")
    errors: list[BaseException] = []

    def fetch(number: int) -> None:
        try:
            for round_ in range(5):
                up.download(sdist, tmp_path / f"dl-{number}-{round_}")
                (tmp_path / "cache" / "files" / (sdist.sha256 or "")).unlink(missing_ok=True)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not [
        p.name for p in (tmp_path / "cache" / "files").iterdir() if p.name.endswith(".part")
    ]


def test_download_refuses_unhashed_and_unsafe_names(
    make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    up = make_upstream("http://127.0.0.1:9/simple/")
    with pytest.raises(UpstreamError, match="no sha256"):
        up.download(ProjectFile("x-1.0.tar.gz", "http://127.0.0.1:9/x", None), tmp_path)
    with pytest.raises(UpstreamError, match="unsafe filename"):
        up.download(ProjectFile("../x-1.0.tar.gz", "http://127.0.0.1:9/x", None), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_transient_errors_are_retried(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    server, port = site
    up = make_upstream(f"http://127.0.0.1:{port}/simple/")
    sdist = up.find_sdist("demo-pkg", "1.0")
    server.fail_files = 2
    assert up.download(sdist, tmp_path).read_bytes() == _blob(sdist.filename)
    server.fail_files = 3
    with pytest.raises(UpstreamError, match="after 3 tries"):
        up.download(sdist, tmp_path / "again")
    assert list((tmp_path / "again").iterdir()) == []


def test_redirects_are_followed_and_urls_resolved(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    server, port = site
    server.redirect_pages = True
    up = make_upstream(f"http://127.0.0.1:{port}/simple/")
    sdist = up.find_sdist("demo-pkg", "2.0")
    assert sdist.url == f"http://127.0.0.1:{port}/files/demo_pkg-2.0.tar.gz"
    assert up.latest_version("demo-pkg") == Version("2.0")  # the page is asked for once
    assert [p for p, _ in server.requests] == ["/simple/demo-pkg/", "/mirror/simple/demo-pkg/"]
    assert up.download(sdist, tmp_path).name == "demo_pkg-2.0.tar.gz"


def test_credentials_go_only_to_the_index_host(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    server, port = site
    server.require_auth = "Basic dXNlcjpzM2NyZXQ="  # user:s3cret
    server.files_host = f"http://localhost:{port}"  # another host name, same server
    up = make_upstream(f"http://user:s3cret@127.0.0.1:{port}/simple/", page_ttl=0)
    assert "s3cret" not in up.base_url
    up.download(up.find_sdist("demo-pkg", "1.0"), tmp_path)
    (page_path, page_headers), (file_path, file_headers) = server.requests
    assert page_path == "/simple/demo-pkg/" and "Authorization" in page_headers
    assert file_path.startswith("/files/") and "Authorization" not in file_headers

    # A redirect to another host does not carry the credentials along.
    server.redirect_pages, server.redirect_origin = True, f"http://localhost:{port}"
    with pytest.raises(UpstreamError, match="answered 401"):
        up.project_files("demo-pkg")
    redirected = [h for p, h in server.requests if p.startswith("/mirror/")]
    assert redirected and all("Authorization" not in h for h in redirected)

    server.redirect_pages = False
    anonymous = make_upstream(f"http://127.0.0.1:{port}/simple/")
    with pytest.raises(UpstreamError, match="answered 401") as info:
        anonymous.project_files("demo-pkg")
    assert "s3cret" not in str(info.value)


def test_page_cache_revalidates_with_etag(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    server, port = site
    server.etag = '"v1"'
    base = f"http://127.0.0.1:{port}/simple/"
    first = make_upstream(base, cache_dir=tmp_path / "cache").project_files("demo-pkg")
    again = make_upstream(base, cache_dir=tmp_path / "cache").project_files("demo-pkg")
    assert again == first
    assert server.requests[-1][1].get("If-None-Match") == '"v1"'


def test_file_cache_by_sha256(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    server, port = site
    up = make_upstream(f"http://127.0.0.1:{port}/simple/", cache_dir=tmp_path / "cache")
    sdist = up.find_sdist("demo-pkg", "1.0")
    up.download(sdist, tmp_path / "one")
    seen = len(server.requests)
    assert up.download(sdist, tmp_path / "two").read_bytes() == _blob(sdist.filename)
    assert len(server.requests) == seen  # served from the cache


def test_file_url_index(make_upstream: Callable[..., Upstream], tmp_path: Path) -> None:
    files = tmp_path / "index" / "files"
    files.mkdir(parents=True)
    anchors = []
    for name in ("demo_pkg-1.0.tar.gz", "demo_pkg-1.0-py3-none-any.whl"):
        (files / name).write_bytes(_blob(name))
        anchors.append(f'<a href="../../files/{name}#sha256={_sha(_blob(name))}">{name}</a>')
    page = tmp_path / "index" / "simple" / "demo-pkg" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html><body>" + "".join(anchors) + "</body></html>")
    up = make_upstream((tmp_path / "index" / "simple").as_uri())
    sdist = up.find_sdist("Demo_Pkg", "1.0")
    assert sdist.url == (files / "demo_pkg-1.0.tar.gz").as_uri()
    assert up.download(sdist, tmp_path / "dl").read_bytes() == _blob("demo_pkg-1.0.tar.gz")
    with pytest.raises(UpstreamError, match="file:// upstream must be a simple index"):
        up.project_files("missing")


def _within(seconds: float, call: Callable[[], Path]) -> Path:
    """*call*'s result, failing the test if it blocks (as an open of a FIFO would)."""
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]


def test_file_links_from_an_http_index_are_refused_before_anything_is_opened(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    # Issue 18: such links made the host (root) hash a private key, told a present key
    # from a missing one, and copied /dev/zero without end.
    server, port = site
    keys = tmp_path / "keys"
    keys.mkdir()
    key = keys / "signing-key.pem"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot for the build log\n")
    os.mkfifo(tmp_path / "pipe")
    links = {
        "leak-1.0.tar.gz": key.as_uri(),
        "probe-1.0.tar.gz": (keys / "missing.pem").as_uri(),
        "zero-1.0.tar.gz": "file:///dev/zero",
        "pipe-1.0.tar.gz": (tmp_path / "pipe").as_uri(),
    }
    server.extra = [(name, url, "0" * 64) for name, url in links.items()]
    up = make_upstream(f"http://127.0.0.1:{port}/simple/", cache_dir=tmp_path / "cache")
    listed = {f.filename: f for f in up.project_files("demo-pkg") if f.filename in links}
    assert {name: f.url for name, f in listed.items()} == links
    messages = set()
    for name, file in listed.items():
        with pytest.raises(UpstreamError) as info:
            _within(10, lambda: up.download(file, tmp_path / "dl"))  # noqa: B023
        assert info.value.facts["category"] == "upstream-error"
        messages.add(info.value.message.replace(name, "NAME"))
    (message,) = messages  # one message, whatever the link points at
    assert "not fetched" in message and "file:" in message
    assert str(tmp_path) not in message and _sha(key.read_bytes()) not in message
    assert not (tmp_path / "dl").exists()


def test_a_redirect_to_another_scheme_is_refused_the_same_way(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    server, port = site
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "demo_pkg-1.0.tar.gz").write_bytes(b"a local file named like the sdist")
    up = make_upstream(f"http://127.0.0.1:{port}/simple/")
    sdist = up.find_sdist("demo-pkg", "1.0")
    messages = set()
    for folder in (secrets, tmp_path / "nothing-here"):
        server.file_redirect = folder.as_uri() + "/"
        before = len(server.requests)
        with pytest.raises(UpstreamError) as info:
            up.download(sdist, tmp_path / "dl")
        assert len(server.requests) == before + 1  # refused, not retried
        messages.add(info.value.message)
    (message,) = messages
    assert "file:" in message and str(tmp_path) not in message
    assert list((tmp_path / "dl").iterdir()) == []


def test_a_redirect_to_another_origin_does_not_carry_the_credentials(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    server, port = site
    server.require_auth = "Basic dXNlcjpzM2NyZXQ="  # user:s3cret
    up = make_upstream(f"http://user:s3cret@127.0.0.1:{port}/simple/")
    sdist = up.find_sdist("demo-pkg", "1.0")
    server.file_redirect = f"http://localhost:{port}/elsewhere/"  # another origin
    assert up.download(sdist, tmp_path).read_bytes() == _blob(sdist.filename)
    headers = {path.split("/")[1]: h for path, h in server.requests}
    assert "Authorization" in headers["files"]  # the index's own origin
    assert "Authorization" not in headers["elsewhere"]


def test_downloads_and_pages_are_capped(
    site: tuple[Site, int], make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    server, port = site
    base = f"http://127.0.0.1:{port}/simple/"
    up = make_upstream(base, max_bytes=10)
    sdist = up.find_sdist("demo-pkg", "1.0")
    with pytest.raises(UpstreamError, match="larger than the 10-byte limit"):
        up.download(sdist, tmp_path / "dl")  # refused by its Content-Length
    server.no_length = True
    with pytest.raises(UpstreamError, match="larger than the 10-byte limit"):
        up.download(sdist, tmp_path / "dl")  # stopped while streaming
    assert list((tmp_path / "dl").iterdir()) == []
    assert make_upstream(base).download(sdist, tmp_path / "ok").read_bytes() == _blob(
        sdist.filename
    )
    with pytest.raises(UpstreamError, match="project demo-pkg: larger than the 100-byte"):
        make_upstream(base, max_page_bytes=100).project_files("demo-pkg")


def test_a_file_index_reads_only_regular_files_under_the_cap(
    make_upstream: Callable[..., Upstream], tmp_path: Path
) -> None:
    files = tmp_path / "index" / "files"
    files.mkdir(parents=True)
    (files / "demo_pkg-1.0.tar.gz").write_bytes(_blob("demo_pkg-1.0.tar.gz"))
    os.mkfifo(files / "pipe-1.0.tar.gz")
    (files / "link-1.0.tar.gz").symlink_to(files / "demo_pkg-1.0.tar.gz")
    hrefs = {
        "demo_pkg-1.0.tar.gz": "../../files/demo_pkg-1.0.tar.gz",
        "pipe-1.0.tar.gz": "../../files/pipe-1.0.tar.gz",
        "link-1.0.tar.gz": "../../files/link-1.0.tar.gz",
        "zero-1.0.tar.gz": "file:///dev/zero",
    }
    digest = _sha(_blob("demo_pkg-1.0.tar.gz"))
    anchors = "".join(f'<a href="{h}#sha256={digest}">{n}</a>' for n, h in hrefs.items())
    page = tmp_path / "index" / "simple" / "demo-pkg" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(f"<html><body>{anchors}</body></html>")
    up = make_upstream((tmp_path / "index" / "simple").as_uri())
    listed = {f.filename: f for f in up.project_files("demo-pkg")}
    for name, why in (
        ("pipe-1.0.tar.gz", "is not a regular file"),
        ("zero-1.0.tar.gz", "is not a regular file"),
        ("link-1.0.tar.gz", "a symbolic link is not followed"),
    ):
        with pytest.raises(UpstreamError, match=why):
            _within(10, lambda: up.download(listed[name], tmp_path / "dl"))  # noqa: B023
    assert list((tmp_path / "dl").iterdir()) == []
    small = make_upstream((tmp_path / "index" / "simple").as_uri(), max_bytes=5)
    with pytest.raises(UpstreamError, match="larger than the 5-byte limit"):
        small.download(listed["demo_pkg-1.0.tar.gz"], tmp_path / "dl")
    assert up.download(listed["demo_pkg-1.0.tar.gz"], tmp_path / "dl").is_file()


@pytest.mark.network
def test_flask_2_0_0_sdist_on_configured_upstream(tmp_path: Path) -> None:
    with Upstream(upstream_url(Settings())) as up:
        sdist = up.find_sdist("Flask", "2.0.0")
        assert sdist.filename.lower() == "flask-2.0.0.tar.gz"
        assert sdist.sha256 is not None
        assert Version("2.0.0") in up.versions("flask")
