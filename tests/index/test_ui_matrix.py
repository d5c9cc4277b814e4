"""The version page's matrix (issue 12, item 6): target × status × wheel, and the sdist.

A live index holds ``mat-pkg`` 1.0 as the matrix would leave it: wheels for
cp311 and cp312 with their build rows, a failed cp313 build that made no
wheel, a skipped build, and the upstream sdist with its signed "mirrored
source" statement.  The rendered HTML is read back.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.provenance.source import SourceFacts, source_statement
from fromsource.provenance.statement import sign_statement
from fromsource.store.db import open_database
from fromsource.store.models import BuildRow
from tests.conftest import IndexServer, start_server, stop_server
from tests.factories import make_wheel
from tests.packages import make_sdist

UPSTREAM = "http://127.0.0.1:9/upstream/mat_pkg-1.0.tar.gz"


def _build(server: IndexServer, status: str, details: dict[str, Any]) -> int:
    db = open_database(server.database_url)
    now = datetime.now(UTC)
    with db.session() as session, session.begin():
        row = BuildRow(
            project="mat-pkg",
            version="1.0",
            repo="python",
            status=status,
            error="it broke" if status == "failed" else None,
            log="",
            details=details,
            created_at=now,
            started_at=now,
            finished_at=now + timedelta(seconds=2),
        )
        session.add(row)
        session.flush()
        build_id = row.id
    db.dispose()
    return build_id


def _target(version: str) -> dict[str, str]:
    tag = f"cp{version.replace('.', '')}"
    return {"version": version, "python_tag": tag, "abi_tag": tag, "platform_tag": "linux_x86_64"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    base = tmp_path_factory.mktemp("ui-matrix")
    server = start_server(base / "data")
    try:
        for version in ("3.11", "3.12"):
            tag = f"cp{version.replace('.', '')}"
            wheel = make_wheel(base / "w", "mat-pkg", "1.0", tag=f"{tag}-{tag}-linux_x86_64")
            build_id = _build(server, "succeeded", {"target": _target(version)})
            server.publish(wheel, build_id=build_id, sbom=b'{"bomFormat": "CycloneDX"}')
        _build(server, "failed", {"target": _target("3.13"), "category": "missing-system-library"})
        _build(server, "skipped", {"target": _target("3.11")})
        sdist = make_sdist(base / "up", "mat-pkg", "1.0", "in-tree")
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        moment = datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
        facts = SourceFacts(
            project="mat-pkg",
            version="1.0",
            repository="python",
            upstream_url=UPSTREAM,
            upstream_sha256=digest,
            fetched=moment,
            published=moment,
            invocation_id="build-1",
        )
        key = load_or_create_signing_key(server.data_dir / "keys")
        envelope = sign_statement(source_statement(sdist.name, digest, facts), key)
        server.publish(sdist, provenance=envelope, build_id=1)
        yield server
    finally:
        stop_server(server)


def _rows(page: str) -> list[list[str]]:
    """The matrix table's rows, each as its cells' visible text."""
    table = re.search(r'<table class="matrix">(.*?)</table>', page, re.DOTALL)
    assert table is not None
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.DOTALL)[1:]:
        cells = re.findall(r"<td>(.*?)</td>", row, re.DOTALL)
        rows.append([" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells])
    return rows


def test_the_version_page_shows_the_matrix_and_the_sdist(server: IndexServer) -> None:
    token = server.token("python")
    response = httpx.get(server.url + "ui/python/mat-pkg/1.0/", auth=token)
    assert response.status_code == 200
    rows = _rows(response.text)
    assert [r[:4] for r in rows] == [
        ["cp311", "cp311", "linux_x86_64", "succeeded"],
        ["cp312", "cp312", "linux_x86_64", "succeeded"],
        ["cp313", "cp313", "linux_x86_64", "failed missing-system-library"],
        ["source", "any", "any", "mirrored source"],
    ]
    assert [r[4] for r in rows] == [
        "mat_pkg-1.0-cp311-cp311-linux_x86_64.whl",
        "mat_pkg-1.0-cp312-cp312-linux_x86_64.whl",
        "no file",
        "mat_pkg-1.0.tar.gz",
    ]
    assert rows[0][5] == "SBOM · build #1" and rows[3][5] == "provenance · build #1"
    assert 'href="/python/integrity/mat-pkg/1.0/mat_pkg-1.0.tar.gz/provenance"' in response.text
    assert 'href="/python/files/mat-pkg/1.0/mat_pkg-1.0-cp312-cp312-linux_x86_64.whl"' in (
        response.text
    )
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())
    # Every build row of the version, with its status, is listed below the matrix.
    assert "Builds of this version (4)" in text
    assert "#4 skipped cp311-cp311-linux_x86_64" in text and "#3 failed cp313" in text
    # The sdist's own section: its statement checked against the index's key.
    assert "Mirrored source, signed by this index: signature verified with key sha256:" in text
    assert UPSTREAM in text and "exactly the upstream file (same sha256)" in text
    assert "Fetched 2025-03-04 05:06 UTC" in text


def test_a_page_without_sdists_when_they_are_off(server: IndexServer) -> None:
    other = start_server(server.data_dir, env={"FROMSOURCE_SERVE_SDISTS": "0"})
    try:
        page = httpx.get(other.url + "ui/python/mat-pkg/1.0/", auth=other.token("python")).text
        assert [r[0] for r in _rows(page)] == ["cp311", "cp312", "cp313"]
        assert "mat_pkg-1.0.tar.gz" not in page
    finally:
        stop_server(other)
