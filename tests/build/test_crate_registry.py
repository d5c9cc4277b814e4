"""A cargo sparse registry on loopback as a crate source: download, absence, failure, caps."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fromsource.build.crate_fetch import BlobCrates, CrateFolder, crate_sources, prepare_crates
from fromsource.build.crate_registry import SparseRegistry, crate_prefix, download_url
from fromsource.build.crates import LockedCrate
from fromsource.build.sandbox import Sandbox
from fromsource.build.unpack import unpack_sdist
from fromsource.errors import CrateError
from fromsource.store.blobs import FileBlobStore
from tests.build.rust_packages import make_crate, rust_sdist
from tests.build.test_crate_fetch import TOOLCHAIN
from tests.conftest import free_port

CRATE = LockedCrate("tinyadd", "0.1.0", "registry+https://registry.invalid/", "a" * 64)


class _Registry:
    """A sparse registry serving ``config.json`` and the crates of one folder."""

    def __init__(self, folder: Path, dl: str = "api/v1/crates") -> None:
        self.folder = folder
        self.dl = dl
        self.requests: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                registry.requests.append(self.path)

            def do_GET(self) -> None:
                if self.path == "/index/config.json":
                    return self._send(200, json.dumps({"dl": registry.dl}).encode())
                parts = self.path.strip("/").split("/")
                if parts[:3] == ["index", "api", "v1"] and parts[-1] == "download":
                    path = registry.folder / f"{parts[-3]}-{parts[-2]}.crate"
                    if path.is_file():
                        return self._send(200, path.read_bytes())
                self._send(404, b"not found")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"sparse+http://127.0.0.1:{self.server.server_address[1]}/index/"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[_Registry]:
    served = _Registry(tmp_path / "served")
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()
        thread.join()


def test_download_urls_follow_cargo_s_template_rules() -> None:
    assert [crate_prefix(n) for n in ("a", "ab", "abc", "Serde")] == ["1", "2", "3/a", "Se/rd"]
    assert download_url("https://r.invalid/dl", CRATE) == (
        "https://r.invalid/dl/tinyadd/0.1.0/download"
    )
    assert download_url(
        "https://r.invalid/{lowerprefix}/{crate}/{crate}-{version}.crate", CRATE
    ) == ("https://r.invalid/ti/ny/tinyadd/tinyadd-0.1.0.crate")
    assert download_url("https://r.invalid/by-sum/{sha256-checksum}", CRATE).endswith("a" * 64)


def test_a_rust_build_takes_its_crates_from_a_registry(tmp_path: Path, registry: _Registry) -> None:
    _, digest = make_crate(registry.folder)
    sdist = rust_sdist(
        tmp_path / "sdist", "rustadd", "maturin", pins=[("tinyadd", "0.1.0", digest)]
    )
    tree = unpack_sdist(sdist, tmp_path / "work" / "build" / "src").root
    blobs = FileBlobStore(tmp_path / "blobs")
    sources = crate_sources([registry.url, str(tmp_path / "no-such-folder")], blobs)
    assert [type(s) for s in sources] == [BlobCrates, SparseRegistry, CrateFolder]
    crates = prepare_crates(
        tree,
        tmp_path / "work" / "rust",
        sandbox=Sandbox(tmp_path / "work" / "build", tool="bwrap"),
        requires=["maturin"],
        sources=sources,
        toolchain=TOOLCHAIN,
    )
    assert crates is not None and [c.checksum for c in crates.crates] == [digest]
    assert "/index/api/v1/crates/tinyadd/0.1.0/download" in registry.requests
    ((_, archive),) = crates.archives
    assert archive.parent == tmp_path / "work" / "rust" / "downloads"


def test_a_crate_the_registry_lacks_is_absent_not_an_error(
    tmp_path: Path, registry: _Registry
) -> None:
    assert SparseRegistry(registry.url).fetch(CRATE, tmp_path) is None


def test_an_unreachable_registry_is_refused_naming_the_crate(tmp_path: Path) -> None:
    source = SparseRegistry(f"sparse+http://127.0.0.1:{free_port()}/index/", timeout=5)
    with pytest.raises(CrateError) as info:
        source.fetch(CRATE, tmp_path)
    assert info.value.facts["category"] == "crates-unavailable"
    assert info.value.message.startswith("crates-unavailable: tinyadd 0.1.0: the crate registry")


def test_an_oversized_crate_is_not_kept(tmp_path: Path, registry: _Registry) -> None:
    make_crate(registry.folder)
    source = SparseRegistry(registry.url, max_bytes=16)
    with pytest.raises(CrateError) as info:
        source.fetch(CRATE, tmp_path / "downloads")
    assert "more than 16 bytes" in info.value.message
    assert list((tmp_path / "downloads").iterdir()) == []


def test_credentials_stay_out_of_messages(tmp_path: Path) -> None:
    source = SparseRegistry(f"http://user:secret@127.0.0.1:{free_port()}/index/", timeout=5)
    assert "secret" not in source.describe()
    with pytest.raises(CrateError) as info:
        source.fetch(CRATE, tmp_path)
    assert "secret" not in info.value.message
