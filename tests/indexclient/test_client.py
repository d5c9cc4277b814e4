"""The index client against real servers on loopback: retries, origins, redaction, timeouts, caps."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from fromsource import __version__
from fromsource.errors import IndexClientError
from fromsource.indexclient import JSON_TYPE, Credentials, IndexClient, parse_page
from tests.indexclient.conftest import Loopback, Route, serve, stop

PAGE = json.dumps(
    {
        "meta": {"api-version": "1.1"},
        "name": "demo",
        "files": [
            {"filename": "demo-1.0.tar.gz", "url": "../../files/demo-1.0.tar.gz", "hashes": {}}
        ],
    }
).encode()
BASIC = "Basic " + base64.b64encode(b"acme/ci:s3cret").decode()


def _client(url: str, **kwargs: object) -> IndexClient:
    kwargs.setdefault("backoff", 0.01)
    return IndexClient(url, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("fail_status", [503, 500, 429, 0], ids=["503", "500", "429", "dropped"])
def test_transient_failures_are_tried_again(loopback: Loopback, fail_status: int) -> None:
    loopback.routes["/simple/demo/"] = Route(
        body=PAGE, headers={"Content-Type": JSON_TYPE}, fail=2, fail_status=fail_status
    )
    with _client(loopback.url + "simple/", tries=3) as client:
        answer = client.page("Demo")
    assert answer.status == 200 and answer.url == loopback.url + "simple/demo/"
    assert parse_page(answer.body, answer.content_type, answer.url).name == "demo"
    assert loopback.paths() == ["/simple/demo/"] * 3


def test_the_last_transient_answer_is_returned_when_the_tries_are_spent(
    loopback: Loopback,
) -> None:
    loopback.routes["/simple/demo/"] = Route(body=PAGE, fail=5)
    with _client(loopback.url + "simple/", tries=2) as client:
        answer = client.page("demo")
    assert answer.status == 503 and len(loopback.paths()) == 2
    error = answer.refusal("project demo")
    assert error.facts["status"] == 503 and "answered 503 (a server error)" in error.message


def test_downloads_are_tried_again_then_fail_with_the_count(loopback: Loopback) -> None:
    loopback.routes["/files/demo-1.0.tar.gz"] = Route(body=b"sdist bytes", fail=2)
    out = io.BytesIO()
    with _client(loopback.url + "simple/", tries=3) as client:
        digest = client.download(loopback.url + "files/demo-1.0.tar.gz", out, what="demo")
    assert out.getvalue() == b"sdist bytes" and len(digest) == 64
    loopback.routes["/files/demo-1.0.tar.gz"].fail = 3
    with (
        _client(loopback.url + "simple/", tries=3) as client,
        pytest.raises(
            IndexClientError, match=r"demo: request to .* failed after 3 tries \(HTTP 503\)"
        ),
    ):
        client.download(loopback.url + "files/demo-1.0.tar.gz", out, what="demo")


def test_an_error_answer_to_a_download_is_not_tried_again(loopback: Loopback) -> None:
    with (
        _client(loopback.url + "simple/", tries=3) as client,
        pytest.raises(IndexClientError, match="answered 404 \\(not found\\)") as info,
    ):
        client.download(loopback.url + "files/gone.tar.gz", io.BytesIO(), what="gone.tar.gz")
    assert info.value.facts["status"] == 404 and loopback.paths() == ["/files/gone.tar.gz"]


def test_connection_refused_is_tried_again_until_the_index_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started: list[tuple[object, threading.Thread, Loopback]] = []

    def start_later() -> None:
        time.sleep(0.3)
        server, thread, site = serve(port)
        site.routes["/simple/demo/"] = Route(body=PAGE, headers={"Content-Type": JSON_TYPE})
        started.append((server, thread, site))

    later = threading.Thread(target=start_later)
    later.start()
    try:
        with _client(f"http://127.0.0.1:{port}/simple/", tries=6, backoff=0.1) as client:
            answer = client.page("demo")
    finally:
        later.join()
    server, thread, site = started[0]
    stop(server, thread)  # type: ignore[arg-type]
    assert answer.status == 200 and site.paths() == ["/simple/demo/"]


def test_an_unreachable_index_fails_after_the_tries_without_the_secret() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _client(f"http://acme%2Fci:s3cret@127.0.0.1:{port}/simple/", tries=2) as client:
        assert "s3cret" not in client.base_url and "acme" not in client.base_url
        with pytest.raises(IndexClientError, match="failed after 2 tries") as info:
            client.page("demo")
    assert "s3cret" not in info.value.message and "s3cret" not in str(info.value.facts)


def test_a_slow_index_times_out(loopback: Loopback) -> None:
    loopback.routes["/simple/demo/"] = Route(body=PAGE, delay=2.0)
    started = time.monotonic()
    with (
        _client(loopback.url + "simple/", tries=2, timeout=0.3) as client,
        pytest.raises(IndexClientError, match="failed after 2 tries"),
    ):
        client.page("demo")
    assert time.monotonic() - started < 1.9  # neither try waited for the answer


def test_credentials_go_only_to_the_index_origin(
    loopback: Loopback, other_origin: Loopback
) -> None:
    # The page redirects to another origin; a file link points at a third path there.
    loopback.routes["/simple/demo/"] = Route(
        301, headers={"Location": other_origin.url + "mirror/demo/"}
    )
    loopback.routes["/files/own.tar.gz"] = Route(body=b"own")
    other_origin.routes["/mirror/demo/"] = Route(body=PAGE, headers={"Content-Type": JSON_TYPE})
    other_origin.routes["/files/far.tar.gz"] = Route(body=b"far")
    creds = Credentials("acme/ci", "s3cret")
    with _client(loopback.url + "simple/", credentials=creds) as client:
        assert client.page("demo").url == other_origin.url + "mirror/demo/"
        client.download(loopback.url + "files/own.tar.gz", io.BytesIO(), what="own")
        client.download(other_origin.url + "files/far.tar.gz", io.BytesIO(), what="far")
    own = {path: headers.get("Authorization") for path, headers in loopback.seen}
    assert own == {"/simple/demo/": BASIC, "/files/own.tar.gz": BASIC}
    assert [headers.get("Authorization") for _p, headers in other_origin.seen] == [None, None]


def test_credentials_in_the_url_are_bound_to_its_origin(
    loopback: Loopback, other_origin: Loopback
) -> None:
    loopback.routes["/simple/demo/"] = Route(body=PAGE)
    other_origin.routes["/f"] = Route(body=b"x")
    with _client(loopback.url.replace("//", "//acme%2Fci:s3cret@") + "simple") as client:
        assert client.base_url == loopback.url + "simple/"
        client.page("demo")
        client.download(other_origin.url + "f", io.BytesIO(), what="f")
    assert loopback.seen[0][1]["Authorization"] == BASIC
    assert "Authorization" not in other_origin.seen[0][1]
    assert loopback.seen[0][1]["User-Agent"] == f"fromsource/{__version__}"


def test_the_client_tells_which_urls_get_its_credentials() -> None:
    with _client("http://acme:s3cret@127.0.0.1:8080/simple/") as client:
        assert client.sends_credentials("http://127.0.0.1:8080/files/a-1.tar.gz")
        for other in ("http://127.0.0.1:8081/f", "https://127.0.0.1:8080/f", "http://[::1]:8080/"):
            assert not client.sends_credentials(other)
        assert not client.sends_credentials("http://127.0.0.1:bad/")
    with _client("http://127.0.0.1:8080/simple/") as client:
        assert not client.sends_credentials("http://127.0.0.1:8080/files/a-1.tar.gz")


def test_a_redirect_to_a_local_file_is_refused_the_same_whether_it_exists(
    loopback: Loopback, tmp_path: Path
) -> None:
    secret = tmp_path / "key.pem"
    secret.write_text("not for the log")
    messages = set()
    for target in (secret, tmp_path / "missing.pem"):
        loopback.routes["/files/a.tar.gz"] = Route(302, headers={"Location": target.as_uri()})
        with _client(loopback.url + "simple/") as client, pytest.raises(IndexClientError) as info:
            client.download(loopback.url + "files/a.tar.gz", io.BytesIO(), what="a.tar.gz")
        messages.add(info.value.message)
    (message,) = messages
    assert "not fetched" in message and str(tmp_path) not in message
    assert loopback.paths() == ["/files/a.tar.gz"] * 2  # refused, not tried again


def test_a_file_link_from_an_http_index_is_refused_before_anything_is_opened(
    loopback: Loopback, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it would block
    with (
        _client(loopback.url + "simple/") as client,
        pytest.raises(IndexClientError, match="file: URL"),
    ):
        client.download((tmp_path / "pipe").as_uri(), io.BytesIO(), what="pipe")


def test_pages_and_downloads_are_capped(loopback: Loopback) -> None:
    loopback.routes["/simple/demo/"] = Route(body=PAGE)
    loopback.routes["/big"] = Route(body=b"x" * 100)
    loopback.routes["/streamed"] = Route(body=b"x" * 100, length=False)
    with _client(loopback.url + "simple/", max_bytes=50, max_page_bytes=20) as client:
        with pytest.raises(IndexClientError, match="project demo: larger than the 20-byte"):
            client.page("demo")
        for path in ("big", "streamed"):
            with pytest.raises(IndexClientError, match="larger than the 50-byte limit"):
                client.download(loopback.url + path, io.BytesIO(), what=path)
        with pytest.raises(IndexClientError, match="more than the 10 bytes the index lists"):
            client.download(loopback.url + "streamed", io.BytesIO(), what="s", size=10)


def test_a_file_index_is_read_from_disk_regular_files_only(tmp_path: Path) -> None:
    simple = tmp_path / "simple"
    (simple / "demo").mkdir(parents=True)
    (simple / "demo" / "index.json").write_bytes(PAGE)
    (simple / "Odd_Name").mkdir()
    (simple / "Odd_Name" / "index.html").write_text('<a href="x-1.0.tar.gz">x-1.0.tar.gz</a>')
    (simple / "linked").mkdir()
    (simple / "linked" / "index.html").symlink_to(simple / "Odd_Name" / "index.html")
    with _client(simple.as_uri()) as client:
        demo = client.page("Demo")
        assert demo.status == 200 and demo.content_type == JSON_TYPE
        assert parse_page(demo.body, demo.content_type, demo.url).files[0].url == (
            (tmp_path / "files" / "demo-1.0.tar.gz").as_uri()
        )
        odd = client.page("Odd_Name")  # a folder named as given, not normalized
        assert odd.status == 200 and odd.content_type == "text/html"
        assert client.page("missing").status == 404
        assert client.page("../simple/demo").status == 404  # never outside the index
        with pytest.raises(IndexClientError, match="a symbolic link is not followed"):
            client.page("linked")
        out = io.BytesIO()
        client.download((simple / "demo" / "index.json").as_uri(), out, what="page")
        assert out.getvalue() == PAGE
