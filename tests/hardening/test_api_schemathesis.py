"""Schemathesis against the management API's OpenAPI description, in process (ASGI).

Every operation gets a bounded number of generated requests (positive and
negative data) with an admin token; none may answer with a server error.
The app is the whole server (hot path in front of the API), over a fresh
data dir with a published wheel and a recorded build, so the generated
requests meet real rows.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from fromsource.build.history import create_build
from fromsource.config import Settings
from fromsource.index.app import create_app
from fromsource.store.blobs import FileBlobStore
from fromsource.store.db import open_database
from fromsource.store.publish import publish_file
from fromsource.store.tokens import create_token
from tests.factories import make_wheel

EXAMPLES = 25


@pytest.fixture(scope="module")
def api_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    publish_file(db, FileBlobStore(data / "blobs"), make_wheel(data.parent, "demo-pkg", "1.0"), "python")
    create_build(db, "demo-pkg", "1.0", "python")
    admin = create_token(db, org="ops", repos=[], admin=True)
    db.dispose()
    app = create_app(Settings(data_dir=data, auth_failures_per_minute=0))
    header = "Basic " + base64.b64encode(f"{admin.info.id}:{admin.secret}".encode()).decode()
    yield app, header


@pytest.fixture(scope="module")
def api_schema(api_app: tuple[object, str]) -> schemathesis.BaseSchema:
    app, header = api_app
    # The description itself needs a token (issue 18, item 8).
    return schemathesis.openapi.from_asgi("/api/openapi.json", app, headers={"Authorization": header})


def _operations(api_schema: schemathesis.BaseSchema) -> list[Any]:
    """Every operation of the schema (schemathesis's own types are not worth spelling)."""
    results: list[Any] = list(api_schema.get_all_operations())
    return [result.ok() for result in results]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(
    api_app: tuple[object, str], api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    """Every operation, EXAMPLES generated requests each (schemathesis's pytest plugin
    does not load under pytest 9, so hypothesis drives the strategies directly)."""
    _app, header = api_app
    failures: dict[str, str] = {}
    tried = 0
    for operation in _operations(api_schema):
        path_parameters = None
        if operation.method.upper() == "DELETE" and operation.path.startswith("/api/tokens/"):
            # Never revoke the admin token the run depends on (ids are random, but be sure).
            path_parameters = {"token_id": "ops_0000000000000000"}

        @given(case=operation.as_strategy(mode, path_parameters=path_parameters))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            nonlocal tried
            tried += 1
            case.call_and_validate(headers={"Authorization": header}, checks=[not_a_server_error])

        try:
            run()
        except Unsatisfiable:
            continue  # no invalid request can be made for it (nothing constrained)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:1500]}"
    print(f"\nschemathesis {mode.value}: {tried} requests")
    assert failures == {}, "\n".join(f"{k}: {v}" for k, v in failures.items())


def test_the_schema_covers_the_api(api_schema: schemathesis.BaseSchema) -> None:
    labels = {op.label for op in _operations(api_schema)}
    assert "POST /api/tokens" in labels and "POST /api/repos/{repo}/files" in labels
    assert len(labels) >= 8


def _call(api_app: tuple[object, str], method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request to the app in process (httpx's ASGI transport)."""
    app, header = api_app

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
        base = "http://index.example.invalid"
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            return await client.request(method, path, headers={"Authorization": header}, **kwargs)

    return asyncio.run(go())


@pytest.mark.parametrize("name", ["..", "../..", "a\x00b.whl", "x.txt", "/", "demo-1.0.tar.gz/.."])
def test_upload_names_are_checked_before_they_touch_the_disk(
    api_app: tuple[object, str], name: str
) -> None:
    # Regression: an upload named ".." opened the spool folder itself for writing (500).
    response = _call(
        api_app, "POST", "/api/repos/python/files", files={"file": (name, b"PK\x03\x04 not a wheel")}
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/builds?limit=99999999999999999999", None),  # was: OverflowError, 500
        ("GET", "/api/builds?limit=-1", None),
        ("GET", "/api/builds/99999999999999999999", None),  # was: OverflowError, 500
        ("GET", "/api/builds/0", None),
        ("POST", "/api/tokens", {"org": "x", "repos": ["python"], "expires": "99999999999d"}),
        ("POST", "/api/tokens", {"org": "x", "repos": ["python"], "expires": "\u0663d"}),
    ],
)
def test_out_of_range_numbers_are_client_errors(
    api_app: tuple[object, str], method: str, path: str, body: dict[str, object] | None
) -> None:
    response = _call(api_app, method, path, json=body)
    assert 400 <= response.status_code < 500, response.text


def test_an_attestation_that_is_no_dsse_envelope_is_refused(api_app: tuple[object, str], tmp_path: Path) -> None:
    # Regression: anything was stored, and serving it as PEP 740 later gave a 500.
    wheel = make_wheel(tmp_path, "attested-pkg", "1.0").read_bytes()
    for attestation in (b"garbage", b'{"payloadType": "x", "payload": "", "signatures": ["x"]}'):
        response = _call(
            api_app, "POST", "/api/repos/python/files",
            files={"file": ("attested_pkg-1.0-py3-none-any.whl", wheel), "attestation": ("a.json", attestation)},
        )
        assert response.status_code == 400, response.text
        assert "DSSE" in response.text
