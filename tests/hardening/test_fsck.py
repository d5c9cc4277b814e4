"""``fromsource fsck``: orphans, missing blobs, digest mismatches, and their repair;
and what the index answers for a file whose bytes are gone."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from fromsource.build.history import create_build, update_build
from fromsource.cli.main import main
from fromsource.dist.names import Sha256
from fromsource.errors import StoreError
from fromsource.store.blobs import FileBlobStore
from fromsource.store.catalog import all_files
from fromsource.store.db import open_database
from fromsource.store.fsck import BlobRef, classify, run_fsck
from fromsource.store.models import FileRow
from fromsource.store.publish import publish_file
from tests.conftest import IndexServer, start_server, stop_server, wait_for_generation
from tests.factories import make_wheel

LATER = timedelta(hours=2)


class Store:
    """A data dir with a database and a blob store, and two published wheels."""

    def __init__(self, base: Path) -> None:
        self.data = base / "data"
        self.db = open_database(f"sqlite:///{self.data / 'fromsource.db'}")
        self.blobs = FileBlobStore(self.data / "blobs")
        wheels = base / "wheels"
        for version in ("1.0", "2.0"):
            publish_file(
                self.db, self.blobs, make_wheel(wheels, "demo", version), "python",
                provenance=f'{{"v": "{version}"}}'.encode(), sbom=f"sbom {version}".encode(),
            )

    def row(self, version: str) -> FileRow:
        with self.db.session() as session:
            row = session.scalar(sa.select(FileRow).where(FileRow.version == version))
        assert row is not None
        return row

    def path(self, digest: str) -> Path:
        return self.data / "blobs" / digest[:2] / digest[2:4] / digest


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(tmp_path)
    yield made
    made.db.dispose()


def _later() -> float:
    return time.time() + LATER.total_seconds()


def test_classify_is_set_difference() -> None:
    refs = [BlobRef(Sha256("a" * 64), "file", "python", "x.whl"),
            BlobRef(Sha256("b" * 64), "sbom", "python", "x.whl")]
    orphans, missing = classify(refs, ["a" * 64, "c" * 64])
    assert orphans == {"c" * 64}
    assert [m.digest for m in missing] == ["b" * 64]


def test_a_clean_store_is_ok(store: Store) -> None:
    report = run_fsck(store.db, store.blobs)
    assert report.ok and report.database == "ok"
    assert report.references == 8 and report.blobs == 8  # wheel, metadata, provenance, sbom x2


def test_young_orphans_are_kept_old_ones_are_problems_until_repaired(store: Store) -> None:
    orphan = store.blobs.put_bytes(b"left behind by a crash")
    young = run_fsck(store.db, store.blobs, repair=True)
    assert young.ok and [o.action for o in young.orphans] == ["young"]
    assert store.blobs.exists(orphan)
    old = run_fsck(store.db, store.blobs, clock=_later)
    assert not old.ok and [o.action for o in old.orphans] == ["stale"]
    repaired = run_fsck(store.db, store.blobs, repair=True, clock=_later)
    assert repaired.ok and [o.action for o in repaired.orphans] == ["removed"]
    assert not store.blobs.exists(orphan)
    assert run_fsck(store.db, store.blobs).ok


def test_temp_files_of_killed_writers_are_removed_after_the_grace(store: Store) -> None:
    leftover = store.data / "blobs" / "tmp" / "blob-killed"
    leftover.write_bytes(b"half a wheel")
    assert run_fsck(store.db, store.blobs, repair=True).temp_files_removed == 0
    assert run_fsck(store.db, store.blobs, repair=True, clock=_later).temp_files_removed == 1
    assert not leftover.exists()


def test_missing_metadata_is_restored_from_the_wheel(store: Store) -> None:
    row = store.row("1.0")
    store.path(row.metadata_sha256 or "").unlink()
    found = run_fsck(store.db, store.blobs)
    assert not found.ok and [m.ref.role for m in found.missing] == ["metadata"]
    repaired = run_fsck(store.db, store.blobs, repair=True)
    assert repaired.ok and repaired.missing[0].action == "restored from the wheel"
    assert run_fsck(store.db, store.blobs).ok


def test_a_corrupt_blob_is_moved_aside_and_restored_when_it_can_be(store: Store) -> None:
    row = store.row("2.0")
    store.path(row.metadata_sha256 or "").write_bytes(b"bit rot")
    found = run_fsck(store.db, store.blobs)
    assert [m.digest for m in found.mismatched] == [row.metadata_sha256]
    assert not found.ok
    repaired = run_fsck(store.db, store.blobs, repair=True)
    assert repaired.ok
    assert repaired.mismatched[0].action.startswith("moved to tmp/quarantine-")
    assert store.blobs.read_bytes(Sha256(row.metadata_sha256 or "")).startswith(b"Metadata-Version")


def test_a_missing_wheel_is_yanked_and_stays_a_problem(store: Store) -> None:
    row = store.row("1.0")
    store.path(row.sha256).unlink()
    report = run_fsck(store.db, store.blobs, repair=True)
    assert not report.ok and report.problems == 1
    assert report.missing[0].ref.role == "file" and report.missing[0].action.startswith("yanked")
    yanked = [f for f in all_files(store.db) if f.filename == row.filename]
    assert yanked[0].yanked and "fsck" in (yanked[0].yanked_reason or "")


def test_an_empty_blob_store_is_not_repaired_into_yanking_everything(store: Store, tmp_path: Path) -> None:
    elsewhere = FileBlobStore(tmp_path / "wrong-mount")
    with pytest.raises(StoreError, match="check the blob store URL"):
        run_fsck(store.db, elsewhere, repair=True)
    assert not any(f.yanked for f in all_files(store.db))
    assert len(run_fsck(store.db, elsewhere).missing) == 8


def test_archived_sdists_of_builds_are_not_orphans(store: Store) -> None:
    sdist = store.blobs.put_bytes(b"an sdist, the source of truth")
    build = create_build(store.db, "demo", "3.0", "python")
    update_build(store.db, build, details={"sdist": {"filename": "demo-3.0.tar.gz", "sha256": sdist}})
    report = run_fsck(store.db, store.blobs, repair=True, clock=_later)
    assert report.ok and store.blobs.exists(sdist)
    store.blobs.delete(sdist)
    missing = run_fsck(store.db, store.blobs)
    assert [(m.ref.role, m.ref.name) for m in missing.missing] == [("sdist", f"build {build}")]


def test_cli_exit_codes_and_json(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data-dir", str(store.data), "fsck", "--format", "json"]
    assert main(args) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema_version"] == 1 and document["ok"] is True
    orphan = store.blobs.put_bytes(b"orphan")
    old = time.time() - 7200
    os.utime(store.path(orphan), (old, old))
    assert main(args) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["problems"] == 1 and document["orphans"][0]["action"] == "stale"
    assert main([*args, "--repair"]) == 0
    assert json.loads(capsys.readouterr().out)["orphans"][0]["action"] == "removed"
    assert main(["--data-dir", str(store.data), "fsck", "--grace", "soon"]) == 2
    assert main(["--data-dir", str(store.data), "fsck"]) == 0
    assert "the database and the blob store agree" in capsys.readouterr().out


def test_the_index_answers_503_for_bytes_that_are_gone(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        wheel = make_wheel(tmp_path / "wheels", "gone-pkg", "1.0")
        server.publish(wheel, sbom=b"{}")
        server.publish(make_wheel(tmp_path / "wheels", "kept-pkg", "1.0"))
        token = server.token("python")
        db = open_database(server.database_url)
        (info,) = [f for f in all_files(db) if f.project == "gone-pkg"]
        blobs = FileBlobStore(server.data_dir / "blobs")
        base = f"{server.url}python/files/gone-pkg/1.0/{wheel.name}"
        sbom = f"{server.url}python/integrity/gone-pkg/1.0/{wheel.name}/sbom"
        for digest in (info.sha256, info.metadata_sha256, info.sbom_sha256):
            assert digest is not None
            blobs.delete(digest)
        for url in (base, base + ".metadata", sbom):
            response = httpx.get(url, auth=token)
            assert response.status_code == 503, url
            assert "fromsource fsck" in response.text
        assert httpx.get(server.url + "healthz").status_code == 200
        assert main(["--data-dir", str(server.data_dir), "fsck", "--repair"]) == 1
        _assert_yanked(server, token)
        db.dispose()
    finally:
        stop_server(server)


def _assert_yanked(server: IndexServer, token: tuple[str, str]) -> None:
    wait_for_generation(server)
    page = httpx.get(
        f"{server.url}python/simple/gone-pkg/",
        auth=token,
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    ).json()
    (entry,) = page["files"]
    assert entry["yanked"] and "fsck" in entry["yanked"]


def test_the_full_logs_of_builds_are_not_orphans(store: Store) -> None:
    log = store.blobs.put_bytes(b"$ build_wheel\nthe whole sandbox output\n")
    build = create_build(store.db, "demo", "4.0", "python")
    update_build(store.db, build, details={"log": {"sha256": log, "truncated": False}})
    report = run_fsck(store.db, store.blobs, repair=True, clock=_later)
    assert report.ok and store.blobs.exists(log)
