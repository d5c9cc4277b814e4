"""The web UI over HTTP against a live index: visibility, sign-in, pages, caching."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import IndexServer
from tests.index.ui_data import LOG_MARKER, Published

Server = tuple[IndexServer, Published]


@pytest.fixture(scope="module")
def server(ui_index: Server) -> IndexServer:
    return ui_index[0]


@pytest.fixture(scope="module")
def reader(server: IndexServer) -> tuple[str, str]:
    return server.token("python", "python-remediated")


def _get(server: IndexServer, path: str, **kwargs: object) -> httpx.Response:
    return httpx.get(server.url.rstrip("/") + path, **kwargs)  # type: ignore[arg-type]


def _text(response: httpx.Response) -> str:
    """The page's visible text, whitespace collapsed."""
    import html

    body = re.sub(r"<[^>]+>", " ", response.text)
    return re.sub(r"\s+", " ", html.unescape(body))


def _sign_in(server: IndexServer, token: tuple[str, str], **extra: str) -> httpx.Response:
    return httpx.post(server.url + "ui/signin", data={"id": token[0], "secret": token[1], **extra})


def test_anonymous_sees_no_repository_and_is_sent_to_sign_in(server: IndexServer) -> None:
    home = _get(server, "/")
    assert home.status_code == 200 and "needs a token" in home.text
    assert "demo-pkg" not in home.text
    page = _get(server, "/ui/python/demo-pkg/")
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/signin?next=%2Fui%2Fpython%2Fdemo-pkg%2F"
    assert "default-src 'none'" in home.headers["content-security-policy"]


def test_search_with_basic_credentials(server: IndexServer, reader: tuple[str, str]) -> None:
    page = _text(_get(server, "/", params={"q": "Demo_Pkg"}, auth=reader))
    assert "demo-pkg" in page and "evil-pkg" not in page
    assert "python-remediated" in page
    assert "No project matches" in _text(_get(server, "/", params={"q": "nothing-like-it"}, auth=reader))
    only = _text(_get(server, "/", params={"repo": "python-remediated"}, auth=reader))
    assert "demo-pkg" in only and "plain-pkg" not in only


def test_sign_in_sets_a_strict_http_only_cookie_without_the_secret(
    server: IndexServer, reader: tuple[str, str]
) -> None:
    response = _sign_in(server, reader, next="/ui/python/demo-pkg/")
    assert response.status_code == 303 and response.headers["location"] == "/ui/python/demo-pkg/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert reader[1] not in cookie and reader[0] not in cookie
    session = response.cookies
    page = _get(server, "/ui/python/demo-pkg/", cookies=session)
    assert page.status_code == 200 and reader[0] in page.text


def test_wrong_secret_and_foreign_origin_and_open_redirect(
    server: IndexServer, reader: tuple[str, str]
) -> None:
    bad = _sign_in(server, (reader[0], "fs_wrong"))
    assert bad.status_code == 400 and "set-cookie" not in bad.headers
    assert "do not match" in bad.text
    foreign = httpx.post(server.url + "ui/signin", data={"id": reader[0], "secret": reader[1]},
                         headers={"origin": "https://elsewhere.example"})
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
    away = _sign_in(server, reader, next="//elsewhere.example/x")
    assert away.headers["location"] == "/"


def test_revoked_token_ends_the_session(server: IndexServer) -> None:
    token = server.token("python")
    cookies = _sign_in(server, token).cookies
    assert _get(server, "/ui/python/demo-pkg/", cookies=cookies).status_code == 200
    from fromsource.store.db import open_database
    from fromsource.store.tokens import revoke_token

    db = open_database(server.database_url)
    revoke_token(db, token[0])
    db.dispose()
    from tests.conftest import wait_for_generation

    wait_for_generation(server)
    assert _get(server, "/ui/python/demo-pkg/", cookies=cookies).status_code == 303


def test_repositories_without_entitlement_are_hidden_and_refused(server: IndexServer) -> None:
    python_only = server.token("python")
    home = _text(_get(server, "/", auth=python_only))
    assert "python-remediated" not in home and "demo-pkg" in home
    refused = _get(server, "/ui/python-remediated/demo-pkg/", auth=python_only)
    assert refused.status_code == 403 and "cannot read the python-remediated" in refused.text
    assert _get(server, "/ui/python-all/demo-pkg/", auth=python_only).status_code == 403


def test_project_page_lists_versions_files_and_yanks(
    ui_index: Server, reader: tuple[str, str]
) -> None:
    server, published = ui_index
    page = _get(server, "/ui/python/demo-pkg/", auth=reader)
    text = _text(page)
    assert text.index("1.1") < text.index("1.0 ")  # newest first
    assert "Requires Python: >=3.8" in text and re.search(r"\b\d+ B\b", text)
    for filename, digest in published.sha256.items():
        if filename.startswith("demo_pkg-1.") and "+fs" not in filename:
            assert digest in text
    assert "python-remediated" in text  # "also in"
    plain = _text(_get(server, "/ui/python/plain-pkg/", auth=reader))
    assert "yanked: broken metadata" in plain
    redirect = _get(server, "/ui/python/Demo_Pkg/", auth=reader)
    assert redirect.status_code == 301 and redirect.headers["location"] == "/ui/python/demo-pkg/"
    assert _get(server, "/ui/python/no-such-thing/", auth=reader).status_code == 404


def test_version_page_shows_verified_provenance_sbom_log_and_fixes(
    server: IndexServer, reader: tuple[str, str]
) -> None:
    page = _text(_get(server, "/ui/python-remediated/demo-pkg/1.0+fs.1/", auth=reader))
    assert "Built from source by this index: signature verified with key sha256:" in page
    assert "http://127.0.0.1:9/upstream/demo_pkg-1.0.tar.gz" in page
    assert "setuptools-80.9.0-py3-none-any.whl" in page and "urn:fromsource:builder" in page
    assert "CycloneDX 1.6" in page and "resolved_with_pedigree" in page
    assert f"{LOG_MARKER}-1.0+fs.1" in page
    assert "Fixed in this build" in page and "PYSEC-2099-1" in page
    assert "demo-pkg leaks cookies to other hosts" in page and "CVE-2099-0001" in page


def test_version_page_says_two_independent_builds_agreed(
    server: IndexServer, reader: tuple[str, str]
) -> None:
    page = _text(_get(server, "/ui/python/demo-pkg/1.1/", auth=reader))
    assert "2 independent builds agreed" in page
    assert "build-7 on worker@builder-7:1007" in page and "build-8 on worker@builder-8:1008" in page
    single = _text(_get(server, "/ui/python/demo-pkg/1.0/", auth=reader))
    assert "independent builds" not in single


def test_upstream_version_page_names_the_advisory_and_the_remedy(
    server: IndexServer, reader: tuple[str, str]
) -> None:
    response = _get(server, "/ui/python/demo-pkg/1.0/", auth=reader)
    page = _text(response)
    assert "Known to affect this version" in page and "PYSEC-2099-1" in page
    assert 'href="/ui/python-remediated/demo-pkg/1.0%2Bfs.1/"' in response.text
    assert "Known to affect" not in _text(_get(server, "/ui/python/demo-pkg/1.1/", auth=reader))


def test_forged_and_missing_provenance(server: IndexServer, reader: tuple[str, str]) -> None:
    evil = _text(_get(server, "/ui/python/evil-pkg/0.1/", auth=reader))
    assert "Do not trust this file's provenance" in evil and "no signature verifies" in evil
    assert "setuptools-80.9.0" not in evil  # unverified contents are not shown
    plain = _text(_get(server, "/ui/python/plain-pkg/2.0/", auth=reader))
    assert "No provenance" in plain and "no SBOM was published" in plain


def test_pages_are_cached_with_etags_until_the_index_changes(
    server: IndexServer, reader: tuple[str, str], tmp_path: object
) -> None:
    first = _get(server, "/ui/python/demo-pkg/", auth=reader)
    etag = first.headers["etag"]
    again = _get(server, "/ui/python/demo-pkg/", auth=reader, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert "Cookie" in first.headers["vary"] and first.headers["cache-control"] == "private, no-cache"
    from pathlib import Path

    from tests.factories import make_wheel

    assert isinstance(tmp_path, Path)
    server.publish(make_wheel(tmp_path, "demo-pkg", "1.2"))
    changed = _get(server, "/ui/python/demo-pkg/", auth=reader, headers={"if-none-match": etag})
    assert changed.status_code == 200 and "1.2" in changed.text and changed.headers["etag"] != etag


def test_static_stylesheet_and_session_key_mode(server: IndexServer, reader: tuple[str, str]) -> None:
    css = _get(server, "/ui/static/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert (server.data_dir / "ui-session.key").stat().st_mode & 0o777 == 0o600
    spec = _get(server, "/api/openapi.json", auth=reader)
    assert spec.status_code == 200 and "/ui/" not in spec.text



def test_version_page_survives_a_lost_provenance_blob(index_server: IndexServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A provenance blob lost from the store (fsck's business) must not make the page fail."""
    import hashlib

    from fromsource.dist.names import Sha256
    from fromsource.store.blobs import open_blob_store
    from tests.factories import make_wheel

    lost = b'{"lost": true}'
    index_server.publish(make_wheel(tmp_path / "w", "lost-pkg", "1.0"), provenance=lost, sbom=b"{}")
    open_blob_store(f"file://{index_server.data_dir / 'blobs'}").delete(
        Sha256(hashlib.sha256(lost).hexdigest())
    )
    token = index_server.token("python")
    response = httpx.get(index_server.url + "ui/python/lost-pkg/1.0/", auth=token)
    assert response.status_code == 200
