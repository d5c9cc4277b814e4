"""Attestation sources: the offline folder, and the index over HTTP (credentials, errors).

Index URLs and credential precedence are tested in tests/indexclient/test_credentials.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from fromsource.errors import VerifyError
from fromsource.indexclient import Credentials
from fromsource.provenance.dsse import parse_envelope
from fromsource.provenance.pep740 import to_pep740
from fromsource.verify.fetch import IndexSource, OfflineSource, load_keys
from tests.verify.conftest import MakeAttested, write_attestation, write_keys


def test_offline_source(tmp_path: Path, make_attested: MakeAttested, signing_key) -> None:  # type: ignore[no-untyped-def]
    item = make_attested("off-line", "1.0")
    folder = tmp_path / "att"
    write_attestation(folder, item)
    write_attestation(folder, item, form="dsse")
    (folder / "junk.provenance.json").write_text("{}")
    source = OfflineSource(folder, load_keys(write_keys(tmp_path / "keys.json", signing_key)))
    listed = source.listing("Off_Line", "1.0")
    assert {item.wheel.name} == {i.filename for i in listed} and len(listed) == 2
    assert all(source.fetch(i).envelope for i in listed)
    assert source.versions("off-line") == ["1.0"]
    assert source.listing("off-line", "2.0") == []
    assert any("junk.provenance.json" in w for w in source.warnings)


def test_bad_keys_file(tmp_path: Path) -> None:
    bad = tmp_path / "keys.json"
    bad.write_text(json.dumps({"keys": [{"keyid": "sha256:00", "public_key": "AAAA"}]}))
    with pytest.raises(VerifyError, match="keys.json"):
        load_keys(bad)
    with pytest.raises(VerifyError):
        load_keys(tmp_path / "missing.json")


class _Recorder(BaseHTTPRequestHandler):
    """Serves canned bodies by path and records the Authorization header of each request."""

    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        status, body = type(self).routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(routes: dict[str, tuple[int, bytes]]) -> tuple[ThreadingHTTPServer, type[_Recorder]]:
    handler = type("Handler", (_Recorder,), {"routes": routes, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def two_hosts(make_attested: MakeAttested) -> Iterator[tuple[str, type[_Recorder], type[_Recorder], str]]:
    """An "index" whose page points the provenance at a second origin."""
    item = make_attested("far-away", "1.0")
    other, other_log = _serve({})
    other_url = f"http://127.0.0.1:{other.server_address[1]}/"
    provenance = json.dumps(to_pep740(parse_envelope(item.envelope), "b")).encode()
    other_log.routes["/prov"] = (200, provenance)
    page = {"name": "far-away", "files": [{
        "filename": item.wheel.name, "url": "x", "hashes": {"sha256": item.sha256},
        "provenance": other_url + "prov"}]}
    index, index_log = _serve({"/python/simple/far-away/": (200, json.dumps(page).encode())})
    try:
        yield f"http://127.0.0.1:{index.server_address[1]}/python/simple/", index_log, other_log, item.wheel.name
    finally:
        index.shutdown()
        other.shutdown()
        index.server_close()
        other.server_close()


def test_credentials_never_go_to_another_host(two_hosts, signing_key) -> None:  # type: ignore[no-untyped-def]
    url, index_log, other_log, filename = two_hosts
    source = IndexSource(url, Credentials("acme/ci", "secret"), {signing_key.keyid: signing_key.public})
    try:
        (listed,) = source.listing("far-away", "1.0")
        assert listed.filename == filename
        assert source.fetch(listed).envelope
    finally:
        source.close()
    assert index_log.seen and all(auth and auth.startswith("Basic ") for _, auth in index_log.seen)
    assert other_log.seen == [("/prov", None)]


def test_http_errors_are_verify_errors(two_hosts) -> None:  # type: ignore[no-untyped-def]
    url, index_log, _other, _ = two_hosts
    index_log.routes["/python/simple/locked/"] = (401, b"no")
    index_log.routes["/python/simple/broken/"] = (500, b"oops")
    index_log.routes["/python/simple/html/"] = (200, b"<html>")
    source = IndexSource(url, Credentials("acme/ci", "topsecret"), {})
    try:
        with pytest.raises(VerifyError, match="401") as err:
            source.listing("locked", "1.0")
        assert "topsecret" not in err.value.message
        with pytest.raises(VerifyError, match="500"):
            source.listing("broken", "1.0")
        with pytest.raises(VerifyError, match="PEP 691"):
            source.listing("html", "1.0")
        assert source.listing("unknown", "1.0") == []
        with pytest.raises(VerifyError, match="keys"):
            IndexSource(url).trusted_keys()
    finally:
        source.close()
    unreachable = IndexSource("http://127.0.0.1:9/", timeout=2)
    with pytest.raises(VerifyError, match="failed after 3 tries.*check --index"):
        unreachable.listing("x", "1")
    unreachable.close()


def test_an_index_without_advisories_is_asked_once_and_said_so(two_hosts) -> None:  # type: ignore[no-untyped-def]
    url, index_log, _other, _ = two_hosts
    source = IndexSource(url, Credentials("acme/ci", "secret"), {})
    try:
        assert source.advisories("far-away") is None
        assert source.advisories("other") is None
    finally:
        source.close()
    asked = [path for path, _auth in index_log.seen if path.startswith("/api/advisories/")]
    assert asked == ["/api/advisories/far-away"]
    (warning,) = source.warnings
    assert "404" in warning and "not checked" in warning and "--advisories DIR" in warning


def test_advisories_from_the_index_are_parsed_or_refused(two_hosts) -> None:  # type: ignore[no-untyped-def]
    url, index_log, _other, _ = two_hosts
    record = {"id": "PYSEC-2099-3", "modified": "2099-01-01T00:00:00Z", "affected": [
        {"package": {"name": "far-away", "ecosystem": "PyPI"},
         "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}]}]}
    index_log.routes["/api/advisories/far-away"] = (
        200, json.dumps({"project": "far-away", "advisories": [record]}).encode())
    index_log.routes["/api/advisories/listless"] = (200, b'{"advisories": {}}')
    index_log.routes["/api/advisories/bad-record"] = (200, b'{"advisories": [{"summary": "no id"}]}')
    source = IndexSource(url, None, {})
    try:
        (advisory,) = source.advisories("Far_Away") or []
        assert advisory.id == "PYSEC-2099-3" and advisory.fixed_versions("far-away") == ("1.1",)
        with pytest.raises(VerifyError, match="not an advisories document"):
            source.advisories("listless")
        with pytest.raises(VerifyError, match="api/advisories/bad-record"):
            source.advisories("bad-record")
    finally:
        source.close()
    assert source.warnings == []
