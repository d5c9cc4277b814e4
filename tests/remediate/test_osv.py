"""OSV parsing: every shipped advisory, YAML quirks, folders, zips and broken files."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from fromsource.errors import RemediateError
from fromsource.remediate.osv import load_advisories, parse_advisory, parse_document
from fromsource.remediate.series import own_advisories_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_ADVISORIES = REPO_ROOT / ".." / "shared" / "advisories"

needs_shared = pytest.mark.skipif(
    not SHARED_ADVISORIES.is_dir(), reason="../shared/advisories is not present"
)


@needs_shared
def test_every_shared_advisory_parses() -> None:
    files = sorted(SHARED_ADVISORIES.rglob("*.yaml"))
    advisories = load_advisories(SHARED_ADVISORIES)
    assert len(advisories) == len(files) > 100
    for advisory in advisories:
        assert advisory.id.startswith("PYSEC-")
        assert advisory.projects, advisory.id
        assert advisory.modified and "T" in advisory.modified
        # the record survives a round trip through its canonical JSON
        assert parse_advisory(advisory.to_json(), origin="again") == advisory


@needs_shared
def test_flask_record_fields() -> None:
    path = SHARED_ADVISORIES / "flask" / "PYSEC-2023-62.yaml"
    [advisory] = load_advisories(path)
    assert advisory.aliases == ("CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq")
    assert advisory.projects == ("flask",)
    assert advisory.fixed_versions("Flask") == ("2.2.5", "2.3.2")
    [entry] = advisory.affected
    assert [r.type for r in entry.ranges] == ["GIT", "ECOSYSTEM"]
    # quoted "0.10" and unquoted 0.10.1 both stay strings
    assert "0.10" in entry.versions and "0.10.1" in entry.versions
    assert advisory.modified == "2023-06-05T01:12:52.229549Z"


@needs_shared
def test_unquoted_yaml_timestamp_stays_text() -> None:
    [advisory] = load_advisories(SHARED_ADVISORIES / "urllib3" / "PYSEC-2023-192.yaml")
    assert advisory.modified == "2023-10-10T14:28:19.389317Z"
    assert advisory.published == "2023-10-04T17:15:00Z"


def test_yaml_numbers_are_not_floats(tmp_path: Path) -> None:
    path = tmp_path / "X-1.yaml"
    path.write_text(
        "id: X-1\nmodified: 2024-01-01T00:00:00Z\naffected:\n- package: {ecosystem: PyPI, "
        "name: Demo_Pkg}\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n"
        "    - fixed: 1.10\n  versions: [1.0, 1.10]\n"
    )
    [advisory] = load_advisories(path)
    [entry] = advisory.affected
    assert entry.versions == ("1.0", "1.10")
    assert [(e.kind, e.value) for e in entry.ranges[0].events] == [
        ("introduced", "0"), ("fixed", "1.10")]
    assert advisory.projects == ("demo-pkg",)


def test_json_list_and_vulns_wrapper() -> None:
    record = {"id": "OSV-1", "modified": "2024-01-01T00:00:00Z", "affected": []}
    assert [a.id for a in parse_document(json.dumps([record]).encode(), origin="a.json")] == [
        "OSV-1"]
    wrapped = json.dumps({"vulns": [record, {**record, "id": "OSV-2"}]}).encode()
    assert [a.id for a in parse_document(wrapped, origin="b.json")] == ["OSV-1", "OSV-2"]


def test_folder_and_zip(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    (folder / "demo").mkdir(parents=True)
    (folder / "demo" / "A-1.json").write_text(json.dumps({"id": "A-1", "affected": []}))
    (folder / "demo" / "A-2.yaml").write_text("id: A-2\n")
    (folder / "README.md").write_text("not an advisory")
    assert [a.id for a in load_advisories(folder)] == ["A-1", "A-2"]
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("A-3.json", json.dumps({"id": "A-3"}))
        zf.writestr("notes.txt", "ignored")
    [advisory] = load_advisories(archive)
    assert advisory.id == "A-3" and advisory.origin.endswith("all.zip!A-3.json")


def test_own_advisories_parse() -> None:
    ids = {a.id: a for a in load_advisories(own_advisories_dir())}
    assert set(ids) == {"GHSA-h5c8-rqwp-cp95", "GHSA-h75v-3vvj-5mfj"}
    assert ids["GHSA-h5c8-rqwp-cp95"].aliases == ("CVE-2024-22195",)
    assert ids["GHSA-h75v-3vvj-5mfj"].fixed_versions("jinja2") == ("3.1.4",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot be decoded"),
        ('{"summary": "no id"}', "id is missing"),
        (('{"id": "X", "affected": [{"ranges": [{"type": "ECOSYSTEM", "events": '
         '[{"introduced": "0", "fixed": "1"}]}]}]}'), "exactly one of"),
        ('{"id": "X", "aliases": "CVE-1"}', "aliases must be a list"),
    ],
)
def test_broken_records_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(RemediateError, match=message) as info:
        load_advisories(path)
    assert str(path) in info.value.message
    assert info.value.facts["origin"] == str(path)


def test_missing_path_and_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(RemediateError, match="no such file"):
        load_advisories(tmp_path / "nope")
    other = tmp_path / "x.txt"
    other.write_text("")
    with pytest.raises(RemediateError, match="unknown advisory file type"):
        load_advisories(other)
