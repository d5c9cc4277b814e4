"""Hostile HTTP against a live index: bad credentials, huge headers, traversal, odd names,
wrong Accept values, Range abuse, odd methods and request lines.

Every case must get an answer below 500 (or, for bytes no HTTP server must
accept, a closed connection), no answer may carry a byte of a file outside
the blob store, and the server must keep serving afterwards.
"""

from __future__ import annotations

import base64
import re

import pytest

from tests.hardening.conftest import SENTINEL, RawResponse, Target, get_raw, raw_request

JSON = "application/vnd.pypi.simple.v1+json"


def _basic(user: str | bytes, password: str | bytes = b"") -> str:
    raw = (user.encode() if isinstance(user, str) else user) + b":" + (
        password.encode() if isinstance(password, str) else password
    )
    return "Basic " + base64.b64encode(raw).decode()


def _auth(target: Target) -> str:
    return "Authorization: " + _basic(*target.reader)


def _no_leak(response: RawResponse, target: Target) -> None:
    assert SENTINEL.encode() not in response.body
    assert b"root:x:0:0" not in response.body
    assert target.reader[1].encode() not in response.body
    assert target.admin[1].encode() not in response.body
    if response.status is not None:
        assert response.status < 500, (response.status, response.body[:300])


# -- credentials ----------------------------------------------------------------------

MALFORMED_AUTH: list[str | bytes] = [
    "",
    "Basic",
    "Basic ",
    "Basic !!!",
    "Basic ====",
    "Basic " + base64.b64encode(b"nocolon").decode(),
    _basic(""),
    _basic("acme/0000000000000000"),
    _basic("", "secret"),
    _basic("acme_0000000000000000", "fs_wrong"),
    _basic("acme%2F0000000000000000", "fs_wrong"),
    _basic("../../etc/passwd", "x"),
    _basic("a" * 3000, "b" * 3000),
    _basic(b"\xff\xfe", b"\xff"),
    _basic("acme/x", "secret\x00"),
    "Basic " + "A" * 5000,
    "Basic " + base64.b64encode(b"user:pass").decode() + "====",
    "Basic " + base64.b64encode(b"user:pass").decode()[:-1],
    "Basic\t" + base64.b64encode(b"user:pass").decode(),
    "BASIC " + base64.b64encode(b"user:pass").decode(),
    "Basic    " + base64.b64encode(b"user:pass").decode(),
    "Bearer",
    "Bearer ",
    "Bearer :",
    "Bearer a:b",
    "Bearer nocolon",
    "Bearer " + "x" * 10000,
    "Digest username=\"acme\", realm=\"fromsource\"",
    "Negotiate YII=",
    "Token abc",
    b"Basic \xff\xfe\xfd",
    "Basic =?utf-8?b?YWJj?=",
]


@pytest.mark.parametrize("value", MALFORMED_AUTH, ids=range(len(MALFORMED_AUTH)))
@pytest.mark.parametrize("path", ["/python/simple/", "/python/simple/demo-pkg/", "/api/tokens"])
def test_malformed_authorization_is_401(target: Target, value: str | bytes, path: str) -> None:
    header = b"Authorization: " + (value.encode("latin-1") if isinstance(value, str) else value)
    response = get_raw(target, path, header)
    _no_leak(response, target)
    assert response.status == 401, (value, response.body[:200])
    assert response.headers["www-authenticate"].startswith("Basic realm=")


def test_credentials_are_not_mixed(target: Target) -> None:
    reader_id, reader_secret = target.reader
    admin_id, admin_secret = target.admin
    cases = [
        (_basic(reader_id, admin_secret), 401),
        (_basic(admin_id, reader_secret), 401),
        (_basic(reader_id.upper(), reader_secret), 401),
        (_basic(reader_id, reader_secret + " "), 401),
        (_basic(reader_id, reader_secret[:-1]), 401),
        (_basic(reader_id, reader_secret), 200),
        ("Bearer " + reader_id + ":" + reader_secret, 200),
    ]
    for value, status in cases:
        response = get_raw(target, "/python/simple/", "Authorization: " + value)
        _no_leak(response, target)
        assert response.status == status, value


def test_two_authorization_headers_do_not_confuse(target: Target) -> None:
    good = _auth(target)
    bad = "Authorization: " + _basic("acme/0000000000000000", "nope")
    for first, second in ((good, bad), (bad, good)):
        response = get_raw(target, "/python/simple/", first, second)
        _no_leak(response, target)
        assert response.status in (200, 400, 401)
    assert target.healthy()


# -- huge and broken requests -------------------------------------------------------------

HUGE: list[tuple[str, list[bytes | str]]] = [
    ("64 KiB header", ["X-Big: " + "a" * 65536]),
    ("64 KiB authorization", ["Authorization: Basic " + "A" * 65536]),
    ("64 KiB accept", ["Accept: " + ("text/html;q=0.1," * 4096)]),
    ("64 KiB range", ["Range: bytes=" + ",".join(["0-0"] * 16384)]),
    ("2000 headers", [f"X-H{i}: {i}" for i in range(2000)]),
    ("1 MiB header", ["X-Big: " + "b" * (1 << 20)]),
]


@pytest.mark.parametrize(("label", "headers"), HUGE, ids=[h[0] for h in HUGE])
def test_huge_headers_are_refused_or_answered(target: Target, label: str, headers: list[bytes | str]) -> None:
    response = get_raw(target, target.wheel_path, _auth(target), *headers)
    _no_leak(response, target)
    assert response.status in (None, 200, 400, 401, 413, 431), label
    assert target.healthy()


def test_huge_path_and_query(target: Target) -> None:
    for path in ("/python/simple/" + "a" * 65536 + "/", "/python/simple/?" + "q=" * 32768,
                 "/python/files/" + "x/" * 20000):
        response = get_raw(target, path, _auth(target))
        _no_leak(response, target)
        assert response.status in (None, 301, 400, 404, 414, 431)
    assert target.healthy()


BROKEN_REQUESTS = [
    b"GET /python/simple/ HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET\r\n\r\n",
    b"\x00\x01\x02\x03garbage\r\n\r\n",
    b"GET /python/simple/ HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    b"GET /python/simple/ HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    b"GET /python/simple/ HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    b"GET /python/simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /python/simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"GET /python/simple/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /python/simple/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /python/simple/\xff\xfe/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /python/simple/ HTTP/1.0\r\n\r\n",
    b"GET http://evil.example.invalid/python/simple/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET python/simple/ HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", BROKEN_REQUESTS, ids=range(len(BROKEN_REQUESTS)))
def test_broken_request_lines_and_headers(target: Target, request_bytes: bytes) -> None:
    response = raw_request(target.host, request_bytes, timeout=10)
    _no_leak(response, target)
    assert target.healthy()


# -- traversal ------------------------------------------------------------------------------

TRAVERSAL = [
    "/python/files/../../etc/passwd",
    "/python/files/demo-pkg/1.0/../../../../../etc/passwd",
    "/python/files/demo-pkg/1.0/..%2F..%2F..%2Fsecret.txt",
    "/python/files/demo-pkg/1.0/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    "/python/files/demo-pkg/1.0/%252e%252e%252fsecret.txt",
    "/python/files/%2e%2e/%2e%2e/secret.txt",
    "/python/files/demo-pkg/1.0/..\\..\\..\\secret.txt",
    "/python/files/demo-pkg/1.0/%00",
    "/python/files/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl%00.txt",
    "/python/files/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl/../../../../secret.txt",
    "/python/files/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl/..%2f..%2fsecret.txt",
    "/python/files/demo-pkg/%2e%2e/demo_pkg-1.0-py3-none-any.whl",
    "/python/files/demo-pkg/1.0/%2fetc%2fpasswd",
    "/python/files/demo-pkg/1.0//etc/passwd",
    "/python/files/demo-pkg/1.0/secret.txt.metadata",
    "/python/files/demo-pkg/1.0/..%2f..%2f..%2fsecret.txt.metadata",
    "/python/simple/../../secret.txt",
    "/python/simple/%2e%2e/%2e%2e/secret.txt",
    "/python/simple/..%2f..%2fsecret.txt/",
    "/python/integrity/demo-pkg/1.0/..%2f..%2fsecret.txt/sbom",
    "/python/integrity/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl/../../../../../secret.txt",
    "/python/integrity/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl/%2e%2e",
    "/../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd",
    "/ui/static/../../../../../../etc/passwd",
    "/ui/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/ui/static/..%2f..%2f..%2f..%2fconfig.py",
    "/ui/static/%2e%2e%2f%2e%2e%2fapp.py",
    "/ui/python/demo-pkg/..%2f..%2f..%2fsecret.txt/",
    "/api/tokens/..%2f..%2f..%2fsecret.txt",
    "/api/repos/..%2f..%2fsecret.txt/projects",
    "/python-all/files/demo-pkg/1.0/..%2f..%2f..%2fsecret.txt",
    "/blobs/../secret.txt",
    "/data/secret.txt",
    "/secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSAL)
def test_traversal_never_reaches_a_file_outside_the_blob_store(target: Target, path: str) -> None:
    response = get_raw(target, path, _auth(target))
    _no_leak(response, target)
    assert response.status is not None
    if response.status == 200:
        # Only a page or the wheel itself may come back (a path that normalizes to one).
        assert response.body == target.wheel_bytes or b"<html" in response.body.lower(), path


def test_a_blob_cannot_be_fetched_by_digest(target: Target) -> None:
    import hashlib

    digest = hashlib.sha256(target.wheel_bytes).hexdigest()
    for path in (f"/python/files/demo-pkg/1.0/{digest}", f"/python/files/{digest[:2]}/{digest[2:4]}/{digest}",
                 f"/blobs/{digest[:2]}/{digest[2:4]}/{digest}", f"/python/files/demo-pkg/{digest}/x"):
        response = get_raw(target, path, _auth(target))
        _no_leak(response, target)
        assert response.status == 404, path


# -- names --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name", ["Demo_Pkg", "DEMO.PKG", "demo__pkg", "demo-_.pkg", "Demo-Pkg", "demo.pkg"]
)
def test_non_normalized_names_redirect_to_the_normal_form(target: Target, name: str) -> None:
    for suffix in ("/", ""):
        response = get_raw(target, f"/python/simple/{name}{suffix}", _auth(target))
        assert response.status == 301, name
        assert response.headers["location"] == "/python/simple/demo-pkg/"


ODD_NAMES = [
    "demo-pkg%0d%0aX-Injected:%20yes",
    "demo%0aX-Injected:%20yes",
    "%E2%80%AEdemo",
    "d%C3%A9mo",
    "demo%00pkg",
    "-",
    "_",
    "..",
    "%2e%2e",
    "a" * 300,
    "demo pkg",
    "demo%20pkg",
    "<script>alert(1)<%2fscript>",
    "demo-pkg?x=%ff",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_project_names_are_harmless(target: Target, name: str) -> None:
    response = get_raw(target, f"/python/simple/{name}/", _auth(target), f"Accept: {JSON}")
    _no_leak(response, target)
    assert response.status in (301, 400, 404), name
    assert "x-injected" not in response.headers
    location = response.headers.get("location", "")
    assert "\r" not in location and "\n" not in location
    assert b"<script>" not in response.body


# -- content negotiation -----------------------------------------------------------------------

ACCEPTS = [
    ("application/json", 406),
    ("text/plain", 406),
    ("image/png", 406),
    ("*/*;q=0", 406),
    (f"{JSON};q=0", 406),
    ("garbage", 406),
    (", , ,", 200),
    (";;;", 200),
    ("text/html;q=nan", None),
    ("text/html;q=abc", 406),
    ("*/*;q=-1", 406),
    ("*/*;q=1e999", 200),
    (f"{JSON};q=0.5, text/html;q=0.5", 200),
    ("application/*", 200),
    ("text/*", 200),
    ("TEXT/HTML", 200),
    ("application/vnd.pypi.simple.v2+json", 406),
    ("application/vnd.pypi.simple.latest+json", 200),
    ("application/vnd.pypi.simple.latest+html", 200),
    ("\u00e9/\u00e9", 406),
]


@pytest.mark.parametrize(("accept", "status"), ACCEPTS)
def test_wrong_accept_values(target: Target, accept: str, status: int | None) -> None:
    response = get_raw(target, "/python/simple/demo-pkg/", _auth(target), f"Accept: {accept}")
    _no_leak(response, target)
    if status is None:
        assert response.status in (200, 406)
    else:
        assert response.status == status, accept
    if response.status == 200:
        kind = response.headers["content-type"]
        assert kind.startswith((JSON, "application/vnd.pypi.simple.v1+html", "text/html"))


# -- ranges ------------------------------------------------------------------------------------

RANGES = [
    ",".join(f"{i}-{i}" for i in range(2000)),
    "bytes=" + ",".join(f"{i}-{i}" for i in range(2000)),
    "bytes=0-0,-1",
    "bytes=-1",
    "bytes=-0",
    "bytes=0-0",
    "bytes=999999999999999999999999-",
    "bytes=0-999999999999999999999999",
    "bytes=-999999999999999999999999",
    "bytes=" + "9" * 5000 + "-",
    "bytes=5-2",
    "bytes=-5-10",
    "bytes=--1",
    "bytes=1-2-3",
    "bytes=abc-def",
    "bytes=0x10-0x20",
    "bytes=",
    "bytes=-",
    "bytes= 1 - 2 ",
    "bytes=1_0-2_0",
    "bytes=+1-+2",
    "items=0-1",
    "bytes=0-1;q=1",
    "bytes=\xb2-\xb3",
]


def _expected_span(header: str, size: int) -> tuple[int, int] | None:
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", header)
    if match:
        start = int(match.group(1))
        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
        return (start, end) if start <= end and start < size else None
    match = re.fullmatch(r"bytes=-(\d+)", header)
    if match and int(match.group(1)) > 0:
        return max(size - int(match.group(1)), 0), size - 1
    return None


@pytest.mark.parametrize("value", RANGES, ids=range(len(RANGES)))
def test_range_abuse(target: Target, value: str) -> None:
    response = get_raw(target, target.wheel_path, _auth(target), f"Range: {value}")
    _no_leak(response, target)
    size = len(target.wheel_bytes)
    assert response.status in (200, 206, 416), value
    if response.status == 200:
        assert response.body == target.wheel_bytes
    elif response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", response.headers["content-range"])
        assert match, response.headers
        start, end, total = map(int, match.groups())
        assert total == size and 0 <= start <= end < size
        assert response.body == target.wheel_bytes[start : end + 1]
        assert int(response.headers["content-length"]) == end - start + 1
        assert (start, end) == _expected_span(value, size)
    else:
        assert response.headers["content-range"] == f"bytes */{size}"


def test_many_range_headers_and_head(target: Target) -> None:
    response = get_raw(target, target.wheel_path, _auth(target), "Range: bytes=0-1", "Range: bytes=2-3")
    _no_leak(response, target)
    assert response.status in (200, 206, 400)
    head = get_raw(target, target.wheel_path, _auth(target), "Range: bytes=-10", method="HEAD")
    assert head.status == 206 and head.body == b""


# -- methods --------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"])
@pytest.mark.parametrize("path", ["/python/simple/", "/python/files/demo-pkg/1.0/x.whl"])
def test_other_methods_on_repository_paths(target: Target, method: str, path: str) -> None:
    response = get_raw(target, path, _auth(target), "Content-Length: 0", method=method)
    _no_leak(response, target)
    assert response.status in (400, 405, 501), (method, response.status)


def test_the_server_is_still_serving(target: Target) -> None:
    response = get_raw(target, target.wheel_path, _auth(target))
    assert response.status == 200 and response.body == target.wheel_bytes
