"""What any reader of the index may see under ``/api/``: the advisories and the API description.

The whole app in process (httpx's ASGI transport) over a fresh data dir, with
advisories imported through the real store; access is decided by the real
authenticator.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fromsource.config import Settings
from fromsource.index.app import create_app
from fromsource.remediate.osv import parse_advisory
from fromsource.remediate.store import import_advisories
from fromsource.store.db import open_database
from fromsource.store.tokens import create_token

# Shaped like the PyPA record for flask's Vary: Cookie bug (GIT and ECOSYSTEM ranges).
FLASK = {
    "id": "PYSEC-2023-62", "modified": "2023-06-05T01:13:00Z",
    "aliases": ["CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq"],
    "details": "Responses may be cached and sent to other clients with their session cookie.",
    "affected": [{
        "package": {"name": "flask", "ecosystem": "PyPI", "purl": "pkg:pypi/flask"},
        "ranges": [
            {"type": "GIT", "repo": "https://github.com/pallets/flask",
             "events": [{"introduced": "0"}, {"fixed": "70f906c51ce49c485f1d355703e9cc3386b1cc2b"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.2.5"},
                                             {"introduced": "2.3.0"}, {"fixed": "2.3.2"}]},
        ],
    }],
}
JINJA = {
    "id": "GHSA-h5c8-rqwp-cp95", "modified": "2024-01-11T00:00:00Z", "aliases": ["CVE-2024-22195"],
    "summary": "xmlattr filter allows keys with spaces",
    "affected": [{"package": {"name": "Jinja2", "ecosystem": "PyPI"}, "ranges": [
        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.3"}]}]}],
}


def _app(data: Path, *anonymous: str) -> Any:
    return create_app(Settings(data_dir=data, anonymous_repos=list(anonymous),
                               auth_failures_per_minute=0))


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, tuple[str, str]]]]:
    data = tmp_path_factory.mktemp("readers") / "data"
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    import_advisories(db, [parse_advisory(FLASK), parse_advisory(JINJA)])
    tokens = {}
    for name, repos, admin in (("pull", ["python"], False), ("admin", [], True)):
        new = create_token(db, org="acme", repos=repos, admin=admin)
        tokens[name] = (new.info.id, new.secret)
    db.dispose()
    yield data, tokens


def _get(app: Any, path: str, auth: tuple[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://index.invalid") as c:
            return await c.get(path, auth=auth)

    return asyncio.run(go())


def test_advisories_need_a_token_and_hold_the_imported_records(
    index: tuple[Path, dict[str, tuple[str, str]]],
) -> None:
    data, tokens = index
    app = _app(data)
    for path in ("/api/advisories", "/api/advisories/flask"):
        assert _get(app, path).status_code == 401
        assert _get(app, path, (tokens["pull"][0], "wrong")).status_code == 401
    for who in ("pull", "admin"):
        doc = _get(app, "/api/advisories/Flask", tokens[who]).json()
        assert doc["project"] == "flask"
        (record,) = doc["advisories"]
        assert parse_advisory(record) == parse_advisory(FLASK)  # the record, unchanged
    listed = _get(app, "/api/advisories", tokens["pull"]).json()
    assert [r["id"] for r in listed["advisories"]] == ["GHSA-h5c8-rqwp-cp95", "PYSEC-2023-62"]
    # Any spelling of the name; a project no advisory names is an empty answer, not a 404.
    assert len(_get(app, "/api/advisories/jinja2", tokens["pull"]).json()["advisories"]) == 1
    none = _get(app, "/api/advisories/not-in-any-advisory", tokens["pull"])
    assert none.status_code == 200 and none.json() == {"project": "not-in-any-advisory",
                                                       "advisories": []}


def test_a_new_import_is_served_at_once(
    index: tuple[Path, dict[str, tuple[str, str]]], tmp_path: Path,
) -> None:
    data, tokens = index
    app = _app(data)
    assert _get(app, "/api/advisories/demo", tokens["pull"]).json()["advisories"] == []
    record = json.loads(json.dumps(JINJA).replace("Jinja2", "demo").replace("GHSA-h5c8", "GHSA-dddd"))
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    import_advisories(db, [parse_advisory(record)])
    db.dispose()
    app.state.refresh(force=True)
    ids = [r["id"] for r in _get(app, "/api/advisories/demo", tokens["pull"]).json()["advisories"]]
    assert ids == ["GHSA-dddd-rqwp-cp95"]


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs", "/api/advisories/flask"])
def test_an_index_with_an_anonymous_repository_lets_anyone_read(
    index: tuple[Path, dict[str, tuple[str, str]]], path: str
) -> None:
    # Whoever may read some repository may read what describes the index.
    data, tokens = index
    assert _get(_app(data), path).status_code == 401
    assert _get(_app(data, "python"), path).status_code == 200
    # The admin API itself stays closed.
    assert _get(_app(data, "python"), "/api/tokens").status_code == 401
    assert _get(_app(data, "python"), "/api/tokens", tokens["pull"]).status_code == 403
