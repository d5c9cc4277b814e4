"""OpenVEX documents: shape, grouping of ids, per-project filtering (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fromsource.remediate.openvex import (
    OPENVEX_CONTEXT,
    RemediatedRelease,
    group_vulnerabilities,
    openvex_document,
    remediation_statements,
)
from fromsource.remediate.osv import parse_advisory

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
FLASK_FIXES = ("PYSEC-2023-62", "CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq")

RELEASES = [
    RemediatedRelease("Flask", "2.0.0+fs.1", T0, (("0001-vary.patch", FLASK_FIXES),)),
    RemediatedRelease("flask", "2.0.0+fs.2", T0 + timedelta(days=1),
                      (("0001-vary.patch", FLASK_FIXES),)),
    RemediatedRelease("jinja2", "3.1.2+fs.1", T0, (
        ("0001-space.patch", ("GHSA-h5c8-rqwp-cp95", "CVE-2024-22195")),
        ("0002-more.patch", ("GHSA-h75v-3vvj-5mfj", "CVE-2024-34064")),
    )),
]


def test_purl_encodes_the_local_version() -> None:
    assert RELEASES[0].purl == "pkg:pypi/flask@2.0.0%2Bfs.1"


def test_statements_one_per_vulnerability() -> None:
    statements = remediation_statements(RELEASES)
    assert [s.vulnerability for s in statements] == [
        "CVE-2023-30861", "CVE-2024-22195", "CVE-2024-34064"]
    flask = statements[0]
    assert flask.aliases == ("GHSA-m2qf-hxjv-5gpq", "PYSEC-2023-62")
    assert flask.products == ("pkg:pypi/flask@2.0.0%2Bfs.1", "pkg:pypi/flask@2.0.0%2Bfs.2")
    assert flask.status == "fixed"
    assert flask.timestamp == T0 + timedelta(days=1)
    assert "0001-vary.patch" in flask.notes


def test_document_shape() -> None:
    doc = openvex_document(remediation_statements(RELEASES), now=T0 + timedelta(days=9),
                           author="fromsource index at https://index.example")
    assert doc["@context"] == OPENVEX_CONTEXT == "https://openvex.dev/ns/v0.2.0"
    assert doc["@id"].startswith("urn:fromsource:openvex:")
    assert doc["timestamp"] == "2025-01-11T03:04:05Z"
    assert doc["last_updated"] == "2025-01-03T03:04:05Z"
    assert doc["version"] == 1 and doc["author"]
    first = doc["statements"][0]
    assert set(first) == {"vulnerability", "timestamp", "products", "status", "status_notes"}
    assert first["vulnerability"] == {
        "name": "CVE-2023-30861", "aliases": ["GHSA-m2qf-hxjv-5gpq", "PYSEC-2023-62"]}
    assert first["products"][0] == {"@id": "pkg:pypi/flask@2.0.0%2Bfs.1",
                                    "identifiers": {"purl": "pkg:pypi/flask@2.0.0%2Bfs.1"}}
    assert first["status"] == "fixed"
    json.dumps(doc)  # JSON-ready
    # the same content gets the same id
    again = openvex_document(remediation_statements(RELEASES), now=T0, author="x")
    assert again["@id"] == doc["@id"]


def test_per_project_document() -> None:
    statements = remediation_statements(RELEASES)
    doc = openvex_document(statements, now=T0, author="x", project="Jinja2")
    assert [s["vulnerability"]["name"] for s in doc["statements"]] == [
        "CVE-2024-22195", "CVE-2024-34064"]
    assert all(p["@id"].startswith("pkg:pypi/jinja2@")
               for s in doc["statements"] for p in s["products"])
    empty = openvex_document(statements, now=T0, author="x", project="nothing")
    assert empty["statements"] == [] and "last_updated" not in empty


def test_grouping_uses_advisories_and_splits_multi_cve_patches() -> None:
    # one patch naming two CVEs without advisories: two vulnerabilities
    groups = group_vulnerabilities([("CVE-1", "CVE-2")])
    assert groups == [("CVE-1",), ("CVE-2",)]
    # advisories join a PYSEC id to its CVE
    advisory = parse_advisory({"id": "PYSEC-9", "aliases": ["CVE-1"]})
    assert group_vulnerabilities([("CVE-1", "CVE-2"), ("PYSEC-9",)], [advisory]) == [
        ("CVE-1", "PYSEC-9"), ("CVE-2",)]
    statements = remediation_statements(
        [RemediatedRelease("demo", "1.0+fs.1", T0, (("p", ("PYSEC-9",)),))], [advisory])
    assert statements[0].vulnerability == "CVE-1"
    assert statements[0].aliases == ("PYSEC-9",)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        openvex_document([], now=datetime(2025, 1, 1), author="x")
