"""Built files of malicious releases are withdrawn on import and listed by fsck."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from fromsource.build.history import create_build, update_build
from fromsource.cli.main import main
from fromsource.policy.store import add_rule, read_log
from fromsource.policy.withdraw import withdraw_malicious
from fromsource.remediate.store import import_advisories
from fromsource.store.blobs import FileBlobStore
from fromsource.store.catalog import all_files
from fromsource.store.db import Database, open_database
from fromsource.store.models import FileRow
from fromsource.store.publish import publish_file
from tests.factories import make_wheel
from tests.policy.malware_records import fake_record, malware_dir

# Our own test wheels that merely carry the names and versions of the records;
# nothing from the malicious packages themselves is ever fetched or installed.
LITELLM = ("litellm", "1.82.7")


class Store:
    """A data dir with published wheels, opened as the CLI opens it."""

    def __init__(self, base: Path) -> None:
        self.data = base / "data"
        self.db: Database = open_database(f"sqlite:///{self.data / 'fromsource.db'}")
        self.blobs = FileBlobStore(self.data / "blobs")
        self.wheels = base / "wheels"

    def publish(
        self, name: str, version: str, repo: str = "python", build_id: int | None = None
    ) -> str:
        wheel = make_wheel(self.wheels, name, version)
        publish_file(self.db, self.blobs, wheel, repo, build_id=build_id)
        return wheel.name

    def row(self, filename: str) -> FileRow:
        with self.db.session() as session:
            row = session.scalar(sa.select(FileRow).where(FileRow.filename == filename))
        assert row is not None
        return row

    def run(self, *args: str) -> int:
        return main(["--data-dir", str(self.data), *args])


def test_importing_a_real_mal_record_withdraws_the_built_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = malware_dir()
    if folder is None:
        pytest.skip("../shared/malware (the real MAL- records) is not beside this checkout")
    store = Store(tmp_path)
    bad = store.publish(*LITELLM)
    good = store.publish("litellm", "1.82.6")
    remediated = store.publish("litellm", "1.82.7+fs.1", repo="python-remediated")

    assert store.run("advisories", "import", str(folder / "litellm")) == 0
    out = capsys.readouterr().out
    assert f"withdrawn python/{bad}: yanked, MAL-2026-2144: Malicious code in litellm (PyPI)" in out
    assert f"withdrawn python-remediated/{remediated}" in out
    row = store.row(bad)
    assert row.yanked and row.yanked_reason == "MAL-2026-2144: Malicious code in litellm (PyPI)"
    assert not store.row(good).yanked

    log = read_log(store.db, actions=["withdrawn"])
    assert {(e.repo, e.filename, e.mal_id) for e in log} == {
        ("python", bad, "MAL-2026-2144"),
        ("python-remediated", remediated, "MAL-2026-2144"),
    }

    # Importing again changes nothing and withdraws nothing twice.
    assert store.run("advisories", "import", str(folder / "litellm"), "--format", "json") == 0
    again = json.loads(capsys.readouterr().out)
    assert {w["state"] for w in again["withdrawn"]} == {"already withdrawn"}
    assert len(read_log(store.db, actions=["withdrawn"])) == 2

    # fsck lists them (not as problems: they are withdrawn).
    assert store.run("fsck", "--skip-digests") == 0
    fsck_out = capsys.readouterr().out
    assert f"withdrawn python/{bad}: yanked, MAL-2026-2144" in fsck_out


def test_fsck_finds_an_unwithdrawn_file_and_repair_yanks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path)
    # The record arrives through a path that does not withdraw (the store API directly).
    import_advisories(store.db, [fake_record("MAL-2026-50", "demo-evil", versions=("1.1",))])
    bad = store.publish("demo-evil", "1.1")
    assert store.run("fsck", "--skip-digests", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["malware"] == [
        {
            "repo": "python",
            "filename": bad,
            "project": "demo-evil",
            "version": "1.1",
            "mal_id": "MAL-2026-50",
            "reason": "MAL-2026-50: Malicious code in demo-evil (PyPI)",
            "state": "not withdrawn",
        }
    ]
    assert not store.row(bad).yanked
    assert store.run("fsck", "--skip-digests", "--repair") == 0
    assert f"withdrawn python/{bad}: yanked, MAL-2026-50" in capsys.readouterr().out
    assert store.row(bad).yanked


def test_files_match_by_their_own_hash_or_their_sdists_and_allow_rules_spare_them(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    build_id = create_build(store.db, "renamed", "2.0", "python")
    update_build(store.db, build_id, details={"sdist": {"sha256": "ee" * 32}})
    from_bad_sdist = store.publish("renamed", "2.0", build_id=build_id)
    plain = store.publish("plain", "1.0")
    plain_sha = store.row(plain).sha256
    spared = store.publish("spared", "1.0")
    import_advisories(
        store.db,
        [
            fake_record("MAL-2026-61", "something-else", sha256="ee" * 32, filename="x.tar.gz"),
            fake_record("MAL-2026-62", "other", sha256=plain_sha, filename=plain),
            fake_record("MAL-2026-63", "spared", versions=("1.0",)),
        ],
    )
    add_rule(store.db, "allow", "pkg:pypi/spared@1.0", reason="kept for the audit")
    report = withdraw_malicious(store.db, actor="test")
    assert {(w.filename, w.mal_id) for w in report.newly_withdrawn} == {
        (from_bad_sdist, "MAL-2026-61"),
        (plain, "MAL-2026-62"),
    }
    yanked = {f.filename for f in all_files(store.db) if f.yanked}
    assert yanked == {from_bad_sdist, plain} and spared not in yanked
