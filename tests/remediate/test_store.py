"""Advisories in the database and the releases python-remediated holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fromsource.dist.record import RecordEntry
from fromsource.provenance import BuildFacts, PatchInfo, SigningKey, key_id
from fromsource.provenance.statement import build_statement, sign_statement
from fromsource.remediate.feed import published_releases
from fromsource.remediate.osv import Advisory, load_advisories, parse_advisory
from fromsource.remediate.store import advisories_for, all_advisories, import_advisories
from fromsource.store.blobs import open_blob_store, sha256_file
from fromsource.store.db import Database, open_database
from fromsource.store.publish import publish_file, set_yanked
from tests.factories import make_wheel

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "advisories"


def record(ident: str, modified: str, summary: str = "s", *projects: str) -> Advisory:
    return parse_advisory({
        "id": ident, "aliases": [f"CVE-{ident}"], "summary": summary, "modified": modified,
        "affected": [{"package": {"ecosystem": "PyPI", "name": p},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}
                     for p in projects or ("Demo_Pkg",)],
    })


def db_at(tmp_path: Path) -> Database:
    return open_database(f"sqlite:///{tmp_path / 'fs.db'}")


def test_import_is_idempotent_and_keeps_newer(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    first = import_advisories(db, [record("A", "2024-01-01T00:00:00Z", "s", "demo-pkg", "other"),
                                   parse_advisory({"id": "NPM-1", "affected": [
                                       {"package": {"ecosystem": "npm", "name": "x"}}]})])
    assert (first.added, first.updated, first.unchanged, first.skipped) == (2, 0, 0, ("NPM-1",))
    generation = db.generation()
    again = import_advisories(db, [record("A", "2024-01-01T00:00:00Z", "s", "demo-pkg", "other")])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert db.generation() == generation  # nothing changed, nothing to re-render
    older = import_advisories(db, [record("A", "2023-01-01T00:00:00Z", "old", "demo-pkg")])
    assert (older.updated, older.unchanged) == (0, 1)
    newer = import_advisories(db, [record("A", "2024-06-01T00:00:00.5Z", "new", "demo-pkg")])
    assert newer.updated == 1
    [stored] = advisories_for(db, "Demo.Pkg")
    assert stored.summary == "new" and stored.aliases == ("CVE-A",)
    assert [a.id for a in all_advisories(db)] == ["A"]
    assert advisories_for(db, "nothing") == []


def test_shared_advisories_round_trip(tmp_path: Path) -> None:
    if not SHARED.is_dir():
        return
    db = db_at(tmp_path)
    records = load_advisories(SHARED / "flask")
    import_advisories(db, records)
    assert advisories_for(db, "flask") == sorted(records, key=lambda a: a.id)


def signed_provenance(wheel: Path, patches: tuple[PatchInfo, ...]) -> bytes:
    private = Ed25519PrivateKey.generate()
    key = SigningKey(private, key_id(private.public_key()))
    digest, _ = sha256_file(wheel)
    facts = BuildFacts(
        project="demo-pkg", version="1.0+fs.2", repository="python-remediated",
        sdist_url="http://127.0.0.1:9/demo-pkg-1.0.tar.gz", sdist_sha256="3" * 64,
        patches=patches, dependencies=(), build_key="f" * 64, python="3.11.7",
        platform="linux-x86_64", source_date_epoch=1_620_000_000, sandbox={},
        invocation_id="build-1", started=datetime(2024, 5, 1, tzinfo=UTC),
        finished=datetime(2024, 5, 1, 1, tzinfo=UTC),
    )
    record = [RecordEntry("demo_pkg/__init__.py", "1" * 64, 10)]
    return sign_statement(build_statement(wheel.name, digest, record, facts), key)


def test_published_releases(tmp_path: Path) -> None:
    db = db_at(tmp_path)
    blobs = open_blob_store(f"file://{tmp_path / 'blobs'}")
    series_root = tmp_path / "series"
    (series_root / "demo-pkg" / "1.0").mkdir(parents=True)
    (series_root / "demo-pkg" / "1.0" / "series.toml").write_text(
        'project = "demo-pkg"\nversion = "1.0"\n[[patch]]\nfile = "0001-a.patch"\n'
        'fixes = ["PYSEC-1", "CVE-1"]\n')
    (series_root / "demo-pkg" / "1.0" / "0001-a.patch").write_text("--- a/x\n+++ b/x\n")
    wheels = tmp_path / "wheels"
    when = datetime(2025, 3, 1, tzinfo=UTC)
    publish_file(db, blobs, make_wheel(wheels, "demo-pkg", "1.0"), "python", now=when)
    publish_file(db, blobs, make_wheel(wheels, "demo-pkg", "1.0+fs.1"), "python-remediated",
                 now=when)
    second = make_wheel(wheels, "demo-pkg", "1.0+fs.2")
    provenance = signed_provenance(second, (PatchInfo("0001-a.patch", "4" * 64, ("PYSEC-1",)),
                                            PatchInfo("0002-b.patch", "5" * 64, ("GHSA-2",))))
    publish_file(db, blobs, second, "python-remediated", provenance=provenance, now=when)
    yanked = make_wheel(wheels, "demo-pkg", "1.0+fs.3")
    publish_file(db, blobs, yanked, "python-remediated", now=when)
    set_yanked(db, "python-remediated", yanked.name, "broken", True)

    releases = published_releases(db, blobs, series_root=series_root)
    assert [r.version for r in releases] == ["1.0+fs.1", "1.0+fs.2"]
    fs1, fs2 = releases
    # without provenance: the shipped series; with it: what the build recorded
    assert fs1.patches == (("0001-a.patch", ("PYSEC-1", "CVE-1")),)
    assert fs2.patches == (("0001-a.patch", ("PYSEC-1",)), ("0002-b.patch", ("GHSA-2",)))
    assert fs1.published == when
    assert replace(fs1, patches=()).fixes == ()
