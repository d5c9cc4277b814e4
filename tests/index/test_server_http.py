"""The simple API over real HTTP: auth, negotiation, caching, redirects, files."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.conftest import IndexServer

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def reader(shared_index: IndexServer) -> tuple[str, str]:
    return shared_index.token("python", "python-remediated")


def _get(server: IndexServer, path: str, auth: tuple[str, str] | None, **headers: str) -> httpx.Response:
    return httpx.get(server.url + path, auth=auth, headers=headers, follow_redirects=False)


def test_no_credentials_gets_401_with_challenge_on_every_page(shared_index: IndexServer) -> None:
    for path in ("python/simple/", "python/simple/demo-pkg/", "python-all/simple/",
                 "python/files/demo-pkg/1.0/demo_pkg-1.0-py3-none-any.whl"):
        response = _get(shared_index, path, None)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith('Basic realm="fromsource"')


def test_wrong_secret_and_malformed_headers_get_401(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    assert _get(shared_index, "python/simple/", (reader[0], "wrong")).status_code == 401
    for header in ("Basic", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(),
                   "Bearer", "Digest x", "Basic " + "A" * 5000, "Basic " + base64.b64encode(b"\xff\xfe:x").decode()):
        response = _get(shared_index, "python/simple/", None, Authorization=header)
        assert response.status_code == 401, header


def test_identity_spellings_accepted(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    ident, secret = reader
    for user in (ident, ident.replace("/", "_"), ident.replace("/", "%2F")):
        assert _get(shared_index, "python/simple/", (user, secret)).status_code == 200, user


def test_token_without_entitlement_gets_403(shared_index: IndexServer) -> None:
    only_python = shared_index.token("python")
    assert _get(shared_index, "python/simple/", only_python).status_code == 200
    assert _get(shared_index, "python-remediated/simple/", only_python).status_code == 403
    assert _get(shared_index, "python-all/simple/", only_python).status_code == 403


def test_revoked_token_stops_at_once(shared_index: IndexServer) -> None:
    from fromsource.store.db import open_database
    from fromsource.store.tokens import revoke_token
    from tests.conftest import wait_for_generation

    token = shared_index.token("python")
    assert _get(shared_index, "python/simple/", token).status_code == 200
    revoke_token(open_database(shared_index.database_url), token[0])
    wait_for_generation(shared_index)
    assert _get(shared_index, "python/simple/", token).status_code == 401


def test_expired_token_gets_401(shared_index: IndexServer) -> None:
    from datetime import UTC, datetime, timedelta

    from fromsource.store.db import open_database
    from fromsource.store.tokens import create_token
    from tests.conftest import wait_for_generation

    past = datetime.now(UTC) - timedelta(days=40)
    new = create_token(open_database(shared_index.database_url), org="acme", repos=["python"], now=past)
    wait_for_generation(shared_index)
    assert _get(shared_index, "python/simple/", (new.info.id, new.secret)).status_code == 401


def test_json_and_html_negotiation(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    response = _get(shared_index, "python/simple/demo-pkg/", reader, Accept=JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    doc = response.json()
    assert doc["name"] == "demo-pkg"
    assert doc["versions"] == ["1.0", "1.1"]
    assert {f["filename"] for f in doc["files"]} == {
        "demo_pkg-1.0-py3-none-any.whl", "demo_pkg-1.1-py3-none-any.whl"}
    html = _get(shared_index, "python/simple/demo-pkg/", reader, Accept="text/html")
    assert html.headers["content-type"].startswith("text/html")
    assert "data-requires-python=\"&gt;=3.8\"" in html.text
    assert _get(shared_index, "python/simple/demo-pkg/", reader, Accept="application/xml").status_code == 406


def test_virtual_repo_lists_both(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    doc = _get(shared_index, "python-all/simple/demo-pkg/", reader, Accept=JSON).json()
    assert doc["versions"] == ["1.0", "1.0+fs.1", "1.1"]
    root = _get(shared_index, "python-remediated/simple/", reader, Accept=JSON).json()
    assert root["projects"] == [{"name": "demo-pkg"}]


def test_etag_and_304(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    first = _get(shared_index, "python/simple/demo-pkg/", reader, Accept=JSON)
    etag = first.headers["etag"]
    again = _get(shared_index, "python/simple/demo-pkg/", reader, Accept=JSON, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_page_changes_after_publish(shared_index: IndexServer, reader: tuple[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import make_wheel

    before = _get(shared_index, "python/simple/dep-pkg/", reader, Accept=JSON)
    shared_index.publish(make_wheel(tmp_path, "dep-pkg", "0.2"))
    after = _get(shared_index, "python/simple/dep-pkg/", reader, Accept=JSON)
    assert after.headers["etag"] != before.headers["etag"]
    assert "0.2" in after.json()["versions"]


def test_redirects_to_normalized_name(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    for path in ("python/simple/Demo_Pkg/", "python/simple/demo.pkg/", "python/simple/demo-pkg"):
        response = _get(shared_index, path, reader)
        assert response.status_code == 301, path
        assert response.headers["location"] == "/python/simple/demo-pkg/"
    assert _get(shared_index, "python/simple", reader).headers["location"] == "/python/simple/"


def test_unknown_project_and_repo_404(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    assert _get(shared_index, "python/simple/nope/", reader).status_code == 404
    assert _get(shared_index, "nope/simple/", reader).status_code == 404


def test_file_download_range_metadata(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    doc = _get(shared_index, "python/simple/demo-pkg/", reader, Accept=JSON).json()
    entry = doc["files"][0]
    url = httpx.URL(shared_index.url + "python/simple/demo-pkg/").join(entry["url"])
    whole = httpx.get(url, auth=reader)
    assert whole.status_code == 200
    assert int(whole.headers["content-length"]) == entry["size"] == len(whole.content)
    assert "immutable" in whole.headers["cache-control"]
    import hashlib

    assert hashlib.sha256(whole.content).hexdigest() == entry["hashes"]["sha256"]
    part = httpx.get(url, auth=reader, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole.content[:10]
    head = httpx.head(url, auth=reader)
    assert head.status_code == 200 and head.headers["content-length"] == str(entry["size"])
    meta = httpx.get(str(url) + ".metadata", auth=reader)
    assert meta.status_code == 200
    assert hashlib.sha256(meta.content).hexdigest() == entry["core-metadata"]["sha256"]
    assert b"Name: demo-pkg" in meta.content


def test_traversal_and_bogus_file_paths(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    for path in ("python/files/../../../etc/passwd", "python/files/demo-pkg/1.0/..%2F..%2Fx",
                 "python/files/demo-pkg/1.0/%2e%2e/x", "python/files/demo-pkg/9.9/demo_pkg-1.0-py3-none-any.whl",
                 "python/integrity/demo-pkg/1.0/x/provenance", "python/files/x"):
        response = httpx.get(shared_index.url + path, auth=reader)
        assert response.status_code in (404, 400), path


def test_health_metrics_keys_openapi(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    assert httpx.get(shared_index.url + "healthz").json()["status"] == "ok"
    metrics = httpx.get(shared_index.url + "metrics").text
    assert "fromsource_requests_total" in metrics
    keys = httpx.get(shared_index.url + ".well-known/fromsource/keys.json").json()
    assert keys["keys"][0]["algorithm"] == "ed25519"
    spec = _get(shared_index, "api/openapi.json", reader).json()
    assert "/api/tokens" in spec["paths"] and "/api/advisories/{project}" in spec["paths"]


@pytest.mark.parametrize("path", ["api/openapi.json", "api/docs"])
def test_the_api_description_needs_a_token(
    shared_index: IndexServer, reader: tuple[str, str], path: str
) -> None:
    # Regression (issue 18, item 8): both answered without credentials.
    for auth in (None, (reader[0], reader[1][:-1] + ("0" if reader[1][-1] != "0" else "1"))):
        refused = _get(shared_index, path, auth)
        assert refused.status_code == 401, auth
        assert refused.headers["www-authenticate"].startswith("Basic ")
        assert "/api/tokens" not in refused.text and "swagger" not in refused.text.lower()
    # Any valid token may read it: a pull token (users of /api/advisories) or an admin one.
    for auth in (reader, shared_index.token(admin=True)):
        answer = _get(shared_index, path, auth)
        assert answer.status_code == 200
        assert ("/api/tokens" in answer.text) if path.endswith(".json") else (
            "/api/openapi.json" in answer.text and "text/html" in answer.headers["content-type"])
    bearer = _get(shared_index, path, None, authorization=f"Bearer {reader[0]}:{reader[1]}")
    assert bearer.status_code == 200


def test_management_api_needs_admin(shared_index: IndexServer, reader: tuple[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import make_wheel

    assert httpx.get(shared_index.url + "api/tokens").status_code == 401
    assert httpx.get(shared_index.url + "api/tokens", auth=reader).status_code == 403
    admin = shared_index.token(admin=True)
    listed = httpx.get(shared_index.url + "api/tokens", auth=admin).json()
    assert all("secret" not in t and "secret_hash" not in t for t in listed)
    created = httpx.post(shared_index.url + "api/tokens", auth=admin,
                         json={"org": "ci", "repos": ["python"], "expires": "7d"})
    assert created.status_code == 201
    new = (created.json()["id"], created.json()["secret"])
    assert _get(shared_index, "python/simple/", new).status_code == 200
    wheel = make_wheel(tmp_path, "uploaded", "1.0")
    with wheel.open("rb") as handle:
        up = httpx.post(shared_index.url + "api/repos/python/files", auth=admin, files={"file": (wheel.name, handle)})
    assert up.status_code == 201, up.text
    assert _get(shared_index, "python/simple/uploaded/", new).status_code == 200
    with wheel.open("rb") as handle:
        denied = httpx.post(shared_index.url + "api/repos/python/files", auth=new, files={"file": (wheel.name, handle)})
    assert denied.status_code == 403
    revoked = httpx.delete(shared_index.url + "api/tokens/" + new[0].replace("/", "_"), auth=admin)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert _get(shared_index, "python/simple/", new).status_code == 401
    assert json.loads(httpx.get(shared_index.url + "api/tokens?state=revoked", auth=admin).text)


def test_a_builds_full_log_is_streamed_from_its_blob(shared_index: IndexServer, reader: tuple[str, str]) -> None:
    from fromsource.build.history import create_build, update_build
    from fromsource.store.blobs import FileBlobStore
    from fromsource.store.db import open_database

    db = open_database(shared_index.database_url)
    whole = b"".join(b"line %06d of the sandbox output\n" % n for n in range(100_000))
    digest = FileBlobStore(shared_index.data_dir / "blobs").put_bytes(whole)
    kept = create_build(db, "demo-pkg", "1.0", "python")
    update_build(db, kept, log="== the end only\n", details={"log": {"sha256": digest}})
    older = create_build(db, "demo-pkg", "1.1", "python")
    update_build(db, older, log="== a log from before blobs\n")
    db.dispose()
    admin = shared_index.token(admin=True)
    response = httpx.get(f"{shared_index.url}api/builds/{kept}/log", auth=admin)
    assert response.status_code == 200 and response.content == whole
    assert response.headers["content-type"].startswith("text/plain")
    shown = httpx.get(f"{shared_index.url}api/builds/{kept}", auth=admin).json()
    assert shown["log"] == "== the end only\n" and shown["details"]["log"]["sha256"] == digest
    assert httpx.get(f"{shared_index.url}api/builds/{older}/log", auth=admin).text == (
        "== a log from before blobs\n"
    )
    assert httpx.get(f"{shared_index.url}api/builds/{kept}/log", auth=reader).status_code == 403
    assert httpx.get(f"{shared_index.url}api/builds/999999/log", auth=admin).status_code == 404
